//! The interface between the source operator and what it reads: a reader owns one worker's partitions (Kafka
//! partitions, or a replay file's byte range) and hands out borrowed records, so that nothing is copied before
//! parsing. Besides records, a reader reports changes to its partitions ([`PartitionChange`]): one added to the
//! topic while running, or a data loss let through.

use std::time::Duration;

use crate::messages::RawRecord;
use crate::source::data_loss::DataLoss;

/// Why a read failed: the kind decides what the source does.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A partition's log no longer holds the offset to read next, and `--on-data-loss fail` says stop: the
    /// source raises it as the job's failure and reads nothing more.
    #[error(transparent)]
    DataLoss(#[from] DataLoss),
    /// Anything else (a broker away, a file that cannot be read): counted, and the read is tried again.
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

/// A change to a reader's partitions that the source must take over (see [`Reader::take_changes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionChange {
    /// A partition added to the topic while running is now read from `next_offset` (its earliest).
    Added {
        /// The new partition.
        partition: i32,
        /// Where reading it starts.
        next_offset: i64,
    },
    /// A loss was let through (`--on-data-loss continue`): reading goes on at `next_offset`, its log start.
    Lost {
        /// The partition.
        partition: i32,
        /// Where reading goes on.
        next_offset: i64,
        /// Records known to be skipped.
        skipped: u64,
    },
}

/// A reader of the partitions one worker owns.
pub trait Reader {
    /// The partitions this worker owns.
    fn partitions(&self) -> Vec<i32>;
    /// Reads up to `max` records, handing each to `sink`; returns how many were read.
    fn poll(&mut self, max: usize, sink: &mut dyn FnMut(RawRecord<'_>)) -> Result<usize, ReadError>;
    /// Whether a partition has reached its bounded end (always false when unbounded).
    fn is_done(&self, partition: i32) -> bool;
    /// Records known to be in the owned partitions but not yet read.
    fn lag(&self) -> u64;
    /// The offset the reader will read next in `partition`.
    fn next_offset(&self, partition: i32) -> i64;
    /// Whether a silent `partition` can be trusted to be idle: caught up, and no input trouble within
    /// `idle_timeout` (a broker outage is not idleness).
    fn may_be_idle(&self, partition: i32, idle_timeout: Duration) -> bool;
    /// Whether partitions added to the input while running can be given to this reader (an unbounded Kafka
    /// reader): owning none now does not mean it is finished.
    fn may_gain_partitions(&self) -> bool {
        false
    }
    /// Partitions added and losses let through since the last call (none for a replay file).
    fn take_changes(&mut self) -> Vec<PartitionChange> {
        Vec::new()
    }
}
