//! One worker's loop: it builds the worker's dataflow, steps it until every sink has flushed for the last time,
//! and runs the stop sequence. On a stop request: the stop checkpoint (awaited for `STOP_WITHIN` at most), a
//! last `latest.json` (worker 0), the dead letters synced, the dataflow dropped. Then the Kafka output commits
//! what the last manifest covers, errors met after the last snapshot reach `latest.json`, and a bounded run
//! whose last windows could not be written fails. An error an operator raises (`JobFailure`) ends the loop
//! with that error and no last checkpoint: the newest committed one stands.
//!
//! In a cluster the worker also runs its heartbeat dataflow (`cluster::liveness`), built before the job's so
//! that every worker builds them in the same order; a worker that leaves its loop cleanly (finished or stopped)
//! says goodbye before any work that does not step the worker, so that no peer takes that pause for a lost
//! process. A worker that fails says nothing: its peers notice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, anyhow};
use timely::worker::Worker;

use super::Prepared;
use super::pipeline;
use crate::checkpoint::{STOP_WITHIN, await_stop_checkpoint};
use crate::cluster::health::Health;
use crate::cluster::liveness::{Heartbeat, Liveness, heartbeat};
use crate::runtime::errors::JobFailure;

/// What the workers of one process share.
pub struct Process {
    /// Raised to stop.
    pub stop: Arc<AtomicBool>,
    /// Where an operator raises an error that stops the job.
    pub failure: Arc<JobFailure>,
    /// The cluster's heartbeats (`None`: a single process).
    pub liveness: Option<Arc<Liveness>>,
    /// The process's health endpoint's state.
    pub health: Arc<Health>,
}

/// Runs this worker's share of `job` to its end (with its heartbeats when it is one of a cluster's).
pub fn run(worker: &mut Worker, job: &Prepared, process: Process) -> Result<()> {
    let beat = process
        .liveness
        .clone()
        .map(|l| heartbeat(worker, l, process.stop.clone()));
    let result = run_job(worker, job, &process, beat.as_ref());
    // Whatever is left (the heartbeats; the job's dataflow after an error): timely would step it forever.
    drop_dataflows(worker);
    if let Some(l) = &process.liveness {
        l.end();
    }
    result
}

/// Says goodbye to the peers when the worker has heartbeats.
fn leave(worker: &mut Worker, beat: Option<&Heartbeat>) {
    if let Some(b) = beat {
        b.leave(worker);
    }
}

/// The job's dataflow on this worker, to its end.
fn run_job(worker: &mut Worker, job: &Prepared, process: &Process, beat: Option<&Heartbeat>) -> Result<()> {
    let (stop, failure) = (&process.stop, &process.failure);
    let handles = pipeline::build(worker, job, stop.clone(), failure.clone())?;
    let local = worker.index() % job.settings.cluster.workers.max(1);
    while !handles.done.done() {
        process
            .health
            .observe(local, handles.watermark.with_frontier(|f| f.first().copied()));
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
            leave(worker, beat);
            // Timely would otherwise keep stepping the (never-ending) dataflow after this closure returns.
            drop_dataflows(worker);
            break;
        }
        worker.step_or_park(Some(Duration::from_millis(100)));
    }
    leave(worker, beat);
    process.health.observe(local, None);
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
