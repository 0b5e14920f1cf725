//! The interface between the source operator and what it reads: a reader owns one worker's partitions (Kafka
//! partitions, or a replay file's byte range) and hands out borrowed records, so that nothing is copied before
//! parsing.

use std::time::Duration;

use crate::messages::RawRecord;

/// A reader of the partitions one worker owns.
pub trait Reader {
    /// The partitions this worker owns.
    fn partitions(&self) -> Vec<i32>;
    /// Reads up to `max` records, handing each to `sink`; returns how many were read.
    fn poll(&mut self, max: usize, sink: &mut dyn FnMut(RawRecord<'_>)) -> anyhow::Result<usize>;
    /// Whether a partition has reached its bounded end (always false when unbounded).
    fn is_done(&self, partition: i32) -> bool;
    /// Records known to be in the owned partitions but not yet read.
    fn lag(&self) -> u64;
    /// The offset the reader will read next in `partition`.
    fn next_offset(&self, partition: i32) -> i64;
    /// Whether a silent `partition` can be trusted to be idle: caught up, and no input trouble within
    /// `idle_timeout` (a broker outage is not idleness).
    fn may_be_idle(&self, partition: i32, idle_timeout: Duration) -> bool;
}
