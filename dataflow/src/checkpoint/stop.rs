//! The stop protocol as the worker loop sees it: on Ctrl-C the sources mark a last checkpoint (`STOP_ID`) and
//! read nothing more; the worker waits until its part of that checkpoint is written and, on worker 0, until it
//! is committed. Open windows are not finalised: the checkpoint carries them to the next run.

use std::cell::Cell;
use std::time::{Duration, Instant};

use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

/// How long a stop waits for its last checkpoint.
pub const STOP_WITHIN: Duration = Duration::from_secs(30);

/// Progress of a requested stop and of the last checkpoint, shared by the operators and the worker loop.
#[derive(Default)]
pub struct StopProgress {
    /// This worker's part of the stop checkpoint is written.
    pub part_written: Cell<bool>,
    /// (Worker 0) the stop checkpoint is committed.
    pub committed: Cell<bool>,
    /// The final checkpoint of a bounded run (its Parquet files) could not be written or committed: the run
    /// must not end as a success.
    pub final_failed: Cell<bool>,
}

impl StopProgress {
    /// Whether this worker has done its share of the stop checkpoint.
    pub fn is_complete(&self, worker: usize) -> bool {
        self.part_written.get() && (worker != 0 || self.committed.get())
    }
}

/// Steps the worker until its share of the stop checkpoint is done, the dataflow is finished, or `within`
/// passes; returns whether the stop checkpoint completed (else the previous one stands).
pub fn await_stop_checkpoint(
    worker: &mut Worker,
    progress: &StopProgress,
    done: &ProbeHandle<u64>,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    while !progress.is_complete(worker.index()) && !done.done() {
        if Instant::now() >= deadline {
            return false;
        }
        worker.step_or_park(Some(Duration::from_millis(10)));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_0_is_done_only_once_the_stop_checkpoint_is_committed() {
        let p = StopProgress::default();
        assert!(!p.is_complete(1));
        p.part_written.set(true);
        assert!(p.is_complete(1));
        assert!(!p.is_complete(0));
        p.committed.set(true);
        assert!(p.is_complete(0));
    }
}
