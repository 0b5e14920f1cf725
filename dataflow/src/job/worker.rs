//! One worker's loop: it builds the worker's dataflow, steps it until every sink has flushed for the last time,
//! and runs the stop sequence. On a stop request: the stop checkpoint (awaited for `STOP_WITHIN` at most), a
//! last `latest.json` (worker 0), the dead letters synced, the dataflow dropped. Then the Kafka output commits
//! what the last manifest covers, errors met after the last snapshot reach `latest.json`, and a bounded run
//! whose last windows could not be written fails. An error an operator raises (`JobFailure`) ends the loop
//! with that error and no last checkpoint: the newest committed one stands.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, anyhow};
use timely::worker::Worker;

use super::Prepared;
use super::pipeline;
use crate::checkpoint::{STOP_WITHIN, await_stop_checkpoint};
use crate::runtime::errors::JobFailure;

/// Runs this worker's share of `job` to its end.
pub fn run(worker: &mut Worker, job: &Prepared, stop: Arc<AtomicBool>, failure: Arc<JobFailure>) -> Result<()> {
    let handles = pipeline::build(worker, job, stop.clone(), failure.clone())?;
    while !handles.done.done() {
        if let Some(error) = failure.get() {
            drop_dataflows(worker);
            return Err(anyhow!("{error}"));
        }
        if stop.load(Ordering::Relaxed) {
            if !await_stop_checkpoint(worker, &handles.stopping, &handles.done, STOP_WITHIN) {
                tracing::warn!("the last checkpoint did not complete within 30 s; the previous one stands");
            }
            if worker.index() == 0 {
                handles.latest.borrow_mut().local_errors(&handles.errors);
                handles.latest.borrow_mut().write()?;
            }
            handles.dead.borrow_mut().sync()?;
            // Timely would otherwise keep stepping the (never-ending) dataflow after this closure returns.
            drop_dataflows(worker);
            break;
        }
        worker.step_or_park(Some(Duration::from_millis(100)));
    }
    if let Some(sink) = &handles.sink {
        // The Kafka transactions of the last checkpoint commit once its manifest has.
        sink.finish(STOP_WITHIN);
    }
    // Errors met after the last snapshot (e.g. the final Parquet roll) must still show in latest.json.
    if worker.index() == 0 && !handles.errors.counts().is_empty() {
        handles.latest.borrow_mut().local_errors(&handles.errors);
        handles.latest.borrow_mut().write()?;
    }
    if handles.stopping.final_failed.get() {
        return Err(anyhow!(
            "the last windows of this run could not be written to the Parquet history (see the error above, e.g. \
             a full disk or too few file descriptors); nothing of them was committed"
        ));
    }
    Ok(())
}

/// Drops every dataflow of the worker.
fn drop_dataflows(worker: &mut Worker) {
    for id in worker.installed_dataflows() {
        worker.drop_dataflow(id);
    }
}
