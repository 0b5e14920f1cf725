//! Wires one worker's dataflow in the order data meets it (see `docs/ARCHITECTURE.md`, "Stage graph"):
//!
//! ```text
//! source ─▶ windows ─┬─▶ parquet history ─▶ checkpoint parts ─▶ committer (worker 0)
//!                    ├─▶ kafka output (--sink-topic; its writer thread commits after the manifest)
//!                    ├─▶ fleet views ─┐
//!                    └────────────────┴─▶ latest.json (worker 0)
//! ```
//!
//! Each stage is a builder of its own module, made from its own settings; this file only opens the worker's
//! resources and connects them. The probe at the end tells the worker loop when everything is on disk.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concat, Probe};
use timely::worker::Worker;

use super::Prepared;
use crate::checkpoint::{CommitReport, CommitSetup, StopProgress, commit, write_parts};
use crate::compact::InJob;
use crate::fleet;
use crate::messages::{LatestIn, WindowMsg, WindowSignal};
use crate::runtime::errors::{ErrorLog, JobFailure};
use crate::sink::deadletter::DeadLetterWriter;
use crate::sink::kafka::{KafkaSink, publish};
use crate::sink::latest_json::{LatestState, write_latest};
use crate::sink::parquet::{HistorySetup, ParquetHistory, stage_history};
use crate::source::operator::{SourceSetup, read};
use crate::window::{WindowSetup, windows};

/// What the worker loop keeps of its dataflow.
pub struct WorkerHandles {
    /// Done once every sink has flushed for the last time.
    pub done: ProbeHandle<u64>,
    /// The snapshot (worker 0 writes it).
    pub latest: Rc<RefCell<LatestState>>,
    /// This worker's dead-letter writer.
    pub dead: Rc<RefCell<DeadLetterWriter>>,
    /// Progress of a requested stop.
    pub stopping: Rc<StopProgress>,
    /// This worker's error counters.
    pub errors: Rc<ErrorLog>,
    /// This worker's Kafka output (`--sink-topic`).
    pub sink: Option<Rc<KafkaSink>>,
    /// The job's history compaction (worker 0 of an unbounded job), stopped when dropped.
    pub compaction: Option<InJob>,
}

/// Builds the dataflow of one worker of `job`; `stop` is raised to stop, `failure` is where an operator raises
/// an error that stops the job.
pub fn build(
    worker: &mut Worker,
    job: &Prepared,
    stop: Arc<AtomicBool>,
    failure: Arc<JobFailure>,
) -> Result<WorkerHandles> {
    let (index, peers) = (worker.index(), worker.peers());
    let settings = &job.settings;
    let resume = job
        .restored
        .as_ref()
        .map(|r| r.resume_for(index, peers))
        .unwrap_or_default();
    let errors = Rc::new(ErrorLog::default());
    let reader = crate::source::open_reader(&settings.source, job.partitions, index, peers, &resume, errors.clone())?;
    let dead = Rc::new(RefCell::new(DeadLetterWriter::open(
        &settings.deadletter,
        index,
        errors.clone(),
    )?));
    let checkpointed = job.identity.is_some();
    let setup = HistorySetup {
        roll: settings.roll,
        checkpointed,
        sink: settings.sink.is_some(),
    };
    let mut history = ParquetHistory::new(&job.store, index, job.run, job.udfs.columns(), setup)?;
    history.restore(resume.checkpoint, &resume.unrolled, peers)?;
    let latest = Rc::new(RefCell::new(
        LatestState::new(&settings.out, peers, job.udfs.columns()).with_window(settings.window.kind),
    ));
    let stopping = Rc::new(StopProgress::default());
    let done = ProbeHandle::new();
    let watermark = Rc::new(Cell::new(None));
    let sink = match &settings.sink {
        Some(sink) => {
            let recovery = job.restored.as_ref().map(|r| r.sink_recovery(peers));
            Some(Rc::new(KafkaSink::start(
                sink,
                &job.store,
                index,
                recovery,
                errors.clone(),
            )?))
        }
        None => None,
    };
    let lineage_run = job.restored.as_ref().map_or(job.run, |r| r.lineage_run());
    // Worker 0 commits every file; the job's compaction runs beside it and takes turns with it on the lock.
    let history_lock = Arc::new(Mutex::new(()));
    let compaction = match settings.compact_older_than {
        Some(age) if index == 0 && !settings.source.input.is_bounded() && checkpointed => {
            Some(InJob::start(&settings.out, age, history_lock.clone(), lineage_run)?)
        }
        _ => None,
    };
    let group = match settings.source.input.kafka() {
        Some(input) => input
            .client
            .config(&[("group.id", input.group.as_str()), ("enable.auto.commit", "false")]),
        None => rdkafka::ClientConfig::new(),
    };
    let committer = CommitSetup::new(
        settings.out.clone(),
        peers,
        job.identity.clone(),
        job.cluster_id.clone(),
        job.restored.as_ref(),
        job.run,
        settings.sink.is_some(),
        history_lock,
        group,
    );
    let window_setup = WindowSetup {
        settings: settings.window,
        restored: resume.checkpoint,
        worker: index,
        peers,
        watermark: watermark.clone(),
        udfs: job.udfs.clone(),
        errors: errors.clone(),
        store: Some(job.store.clone()),
    };
    let source_setup = SourceSetup {
        worker: index,
        peers,
        stop,
        resume,
        checkpoints: checkpointed,
        dead: dead.clone(),
        errors: errors.clone(),
        failure,
    };
    let report = sink.clone().map(|s| s as Rc<dyn CommitReport>);

    worker.dataflow::<u64, _, _>(|scope| {
        let windows = windows(read(scope, reader, &settings.source, source_setup), window_setup);

        let staged = stage_history(windows.clone(), history, errors.clone());
        let parts = write_parts(
            staged,
            settings.out.clone(),
            index,
            report,
            stopping.clone(),
            errors.clone(),
        );
        commit(parts, committer, stopping.clone(), errors.clone()).probe_with(&done);
        if let Some(sink) = &sink {
            publish(windows.clone(), sink.clone());
        }

        let fleet = fleet::views(windows.clone(), settings.fleet);
        let to_latest = windows
            .flat_map(|m| match m {
                WindowMsg::Data(w) => Some(LatestIn::Agg(w)),
                WindowMsg::Signal(WindowSignal::Stats(s)) => Some(LatestIn::Stats(s)),
                WindowMsg::Signal(WindowSignal::UdfErrors(worker, counts)) => Some(LatestIn::UdfErrors(worker, counts)),
                WindowMsg::Signal(WindowSignal::Barrier(_)) => None,
            })
            .concat(fleet);
        write_latest(
            to_latest,
            latest.clone(),
            watermark,
            settings.window.trigger,
            index,
            errors.clone(),
        )
        .probe_with(&done);
    });

    Ok(WorkerHandles {
        done,
        latest,
        dead,
        stopping,
        errors,
        sink,
        compaction,
    })
}
