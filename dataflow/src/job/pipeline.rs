//! Wires one worker's dataflow in the order data meets it (see `docs/ARCHITECTURE.md`, "Stage graph"):
//!
//! ```text
//! source ─▶ [temporal join ◀─ versioned table] ─▶ windows ─┬─▶ parquet history ─▶ checkpoint parts ─▶ committer (worker 0)
//!                                                          ├─▶ kafka output (--sink-topic; its writer thread commits after the manifest)
//!                                                          ├─▶ fleet views ─┐
//!                                                          └────────────────┴─▶ latest.json (worker 0)
//! ```
//!
//! Each stage is a builder of its own module; the worker's resources are opened by `resources`; this file only
//! connects them. The probe at the end tells the worker loop when everything is on disk.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concat, Probe};
use timely::worker::Worker;

use super::Prepared;
use super::resources::{Resources, WorkerHandles};
use crate::checkpoint::{commit, write_parts};
use crate::fleet;
use crate::join::operator::temporal_join;
use crate::messages::{LatestIn, WindowMsg, WindowSignal};
use crate::runtime::errors::JobFailure;
use crate::sink::kafka::publish;
use crate::sink::latest_json::write_latest;
use crate::sink::parquet::stage_history;
use crate::source::operator::read;
use crate::source::table::versioned_table;
use crate::window::windows;

/// Builds the dataflow of one worker of `job`; `stop` is raised to stop, `failure` is where an operator raises
/// an error that stops the job.
pub fn build(
    worker: &mut Worker,
    job: &Prepared,
    stop: Arc<AtomicBool>,
    failure: Arc<JobFailure>,
) -> Result<WorkerHandles> {
    let (index, settings) = (worker.index(), &job.settings);
    let r = Resources::open(job, index, worker.peers(), stop, failure)?;
    let h = &r.handles;
    let (errors, stopping) = (&h.errors, &h.stopping);

    worker.dataflow::<u64, _, _>(|scope| {
        let records = read(scope, r.reader, &job.source, r.source);
        let records = match r.join {
            Some(j) => temporal_join(records, versioned_table(scope, j.reader, j.table), j.setup),
            None => records,
        };
        // The windows' output frontier is their input frontier: the job's watermark, which the health endpoint
        // watches.
        let windows = windows(records, r.window).probe_with(&h.watermark);

        let staged = stage_history(windows.clone(), r.history, errors.clone());
        let out = settings.out.clone();
        let parts = write_parts(staged, out, index, r.report, stopping.clone(), errors.clone());
        commit(parts, r.committer, stopping.clone(), errors.clone()).probe_with(&h.done);
        if let Some(sink) = &h.sink {
            publish(windows.clone(), sink.clone());
        }

        let fleet = match r.fleet {
            Some(columns) => fleet::views(windows.clone(), columns, settings.fleet),
            None => timely::dataflow::operators::vec::ToStream::to_stream(Vec::new(), scope),
        };
        let to_latest = windows
            .flat_map(|m| match m {
                WindowMsg::Data(w) => Some(LatestIn::Agg(w)),
                WindowMsg::Signal(WindowSignal::Stats(s)) => Some(LatestIn::Stats(s)),
                WindowMsg::Signal(WindowSignal::UdfErrors(worker, counts)) => Some(LatestIn::UdfErrors(worker, counts)),
                WindowMsg::Signal(WindowSignal::Barrier(_)) => None,
            })
            .concat(fleet);
        let trigger = job.window.trigger;
        write_latest(to_latest, h.latest.clone(), r.watermark, trigger, index, errors.clone()).probe_with(&h.done);
    });
    Ok(r.handles)
}
