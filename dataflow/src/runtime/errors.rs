//! Errors met inside the operators, as internal events: each is counted per kind and logged at a bounded rate
//! (the first of a kind at once, then at most one line per kind every [`LOG_EVERY`], saying how many were not
//! logged). The counts travel with each worker's counters to `latest.json` (`pipeline.errors_by_kind`) and
//! from there to the dashboard's Prometheus endpoint, so a failing sink shows where the pipeline is watched,
//! not only in a log line per record. One handle per worker, shared by its operators.
//!
//! An error that must stop the job (a data loss with `--on-data-loss fail`) is no such event: an operator
//! raises it in the process's [`JobFailure`], which every worker loop checks and returns as its error.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Shortest time between two log lines of one kind.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// The kinds of error an operator can meet. Their names are the keys of `errors_by_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// A dead letter could not be written or flushed to its file.
    DeadLetterWrite,
    /// A dead letter could not be handed to the dead-letter topic.
    DeadLetterPublish,
    /// The input could not be read (a Kafka consumer error, a replay file error).
    InputRead,
    /// Final windows could not be written to the Parquet history.
    ParquetWrite,
    /// A worker's checkpoint part could not be written.
    CheckpointPart,
    /// A checkpoint could not be committed.
    CheckpointCommit,
    /// A checkpoint's offsets could not be committed to the consumer group.
    OffsetCommit,
    /// `latest.json` could not be written.
    SnapshotWrite,
    /// The Kafka output (`--sink-topic`) failed; its writer retries (nothing is lost: see `sink::kafka`).
    SinkPublish,
    /// A UDF failed on a row (its value is null). Logged here; counted per UDF by the window operator, whose
    /// counts reach `latest.json` as `udf_errors` and, summed, as this kind (so [`ErrorLog::counts`] leaves it
    /// out: the sources' counters may leave before the last windows are evaluated).
    Udf,
}

impl ErrorKind {
    /// The kind's name in `latest.json` and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::DeadLetterWrite => "deadletter_write",
            ErrorKind::DeadLetterPublish => "deadletter_publish",
            ErrorKind::InputRead => "input_read",
            ErrorKind::ParquetWrite => "parquet_write",
            ErrorKind::CheckpointPart => "checkpoint_part",
            ErrorKind::CheckpointCommit => "checkpoint_commit",
            ErrorKind::OffsetCommit => "offset_commit",
            ErrorKind::SnapshotWrite => "snapshot_write",
            ErrorKind::SinkPublish => "sink_publish",
            ErrorKind::Udf => "udf",
        }
    }
}

#[derive(Default)]
struct KindState {
    count: u64,
    last_logged: Option<Instant>,
    unlogged: u64,
}

/// What [`ErrorLog::record`] decided about logging one error.
#[derive(Debug, PartialEq, Eq)]
pub enum LogDecision {
    /// Log it, with the number of errors of its kind that were not logged since the last line.
    Log {
        /// Errors of this kind left out of the log since the previous line.
        suppressed: u64,
    },
    /// Count it only.
    Quiet,
}

/// One worker's error counters.
#[derive(Default)]
pub struct ErrorLog {
    kinds: RefCell<BTreeMap<ErrorKind, KindState>>,
}

impl ErrorLog {
    /// Counts one error of `kind` and logs it unless one of its kind was logged within [`LOG_EVERY`].
    pub fn record(&self, kind: ErrorKind, error: &dyn Display) {
        let decision = self.count(kind, Instant::now());
        if let LogDecision::Log { suppressed } = decision {
            tracing::error!(
                kind = kind.name(),
                error = %error,
                not_logged_since_last = suppressed,
                "operator error (counted in latest.json pipeline.errors_by_kind)"
            );
        }
    }

    /// Counts one error of `kind` at `now` and decides whether it is logged (the rate rule, apart from the clock).
    pub fn count(&self, kind: ErrorKind, now: Instant) -> LogDecision {
        let mut kinds = self.kinds.borrow_mut();
        let k = kinds.entry(kind).or_default();
        k.count += 1;
        match k.last_logged {
            Some(t) if now.duration_since(t) < LOG_EVERY => {
                k.unlogged += 1;
                LogDecision::Quiet
            }
            _ => {
                k.last_logged = Some(now);
                LogDecision::Log {
                    suppressed: std::mem::take(&mut k.unlogged),
                }
            }
        }
    }

    /// Errors so far, per kind name.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.kinds
            .borrow()
            .iter()
            .filter(|(k, _)| **k != ErrorKind::Udf)
            .map(|(k, s)| (k.name().to_string(), s.count))
            .collect()
    }
}

/// The error that stops the job, raised by any operator of any worker of the process: the first one raised is
/// kept. The worker loops check it on every step and end with it, so the process exits non-zero.
#[derive(Debug, Default)]
pub struct JobFailure {
    raised: AtomicBool,
    first: Mutex<Option<String>>,
}

impl JobFailure {
    /// Raises `error` (unless an earlier one was raised).
    pub fn raise(&self, error: &dyn Display) {
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(error.to_string());
        }
        self.raised.store(true, Ordering::SeqCst);
    }

    /// The error raised, if any.
    pub fn get(&self) -> Option<String> {
        if !self.raised.load(Ordering::Relaxed) {
            return None;
        }
        self.first.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_raised_is_the_one_kept() {
        let failure = JobFailure::default();
        assert_eq!(failure.get(), None);
        failure.raise(&"data loss on partition 2");
        failure.raise(&"data loss on partition 0");
        assert_eq!(failure.get().as_deref(), Some("data loss on partition 2"));
    }

    #[test]
    fn every_error_is_counted_but_only_one_per_kind_is_logged_per_interval() {
        let log = ErrorLog::default();
        let t0 = Instant::now();
        assert_eq!(
            log.count(ErrorKind::ParquetWrite, t0),
            LogDecision::Log { suppressed: 0 }
        );
        for i in 1..=5 {
            assert_eq!(
                log.count(ErrorKind::ParquetWrite, t0 + Duration::from_secs(i)),
                LogDecision::Quiet
            );
        }
        // Another kind has its own budget.
        assert_eq!(
            log.count(ErrorKind::SnapshotWrite, t0 + Duration::from_secs(1)),
            LogDecision::Log { suppressed: 0 }
        );
        assert_eq!(
            log.count(ErrorKind::ParquetWrite, t0 + LOG_EVERY + Duration::from_secs(1)),
            LogDecision::Log { suppressed: 5 }
        );
        let counts = log.counts();
        assert_eq!(counts["parquet_write"], 7);
        assert_eq!(counts["snapshot_write"], 1);
    }

    #[test]
    fn no_errors_means_no_counters() {
        assert!(ErrorLog::default().counts().is_empty());
    }
}
