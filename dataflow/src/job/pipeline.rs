//! Wires one worker's dataflow in the order data meets it (see `docs/ARCHITECTURE.md`, "Stage graph"):
//!
//! ```text
//! source ─▶ windows ─┬─▶ parquet history ─▶ checkpoint parts ─▶ committer (worker 0)
//!                    ├─▶ kafka output (--sink-topic; its writer thread commits after the manifest)
//!                    ├─▶ fleet views ─┐
//!                    └────────────────┴─▶ latest.json (worker 0)
//! ```
//!
//! Each stage is a builder of its own module; this file only opens the worker's resources and connects them.
//! The probe at the end tells the worker loop when everything is on disk.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concat, Probe};
use timely::worker::Worker;

use crate::checkpoint::commit::{CommitSetup, commit};
use crate::checkpoint::format::{Identity, Manifest};
use crate::checkpoint::parts::write_parts;
use crate::checkpoint::restore::resume_for;
use crate::checkpoint::stop::StopProgress;
use crate::compact::InJob;
use crate::config::JobConfig;
use crate::errors::{ErrorLog, JobFailure};
use crate::fleet;
use crate::messages::{LatestIn, WindowMsg};
use crate::sink::deadletter::DeadLetterWriter;
use crate::sink::kafka::recover::Recovery;
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

/// Builds the dataflow of one worker. `partitions` is the topic's partition count (unused for file input);
/// `restore` the checkpoint to resume from; `failure` where an operator raises an error that stops the job.
pub fn build(
    worker: &mut Worker,
    config: &JobConfig,
    partitions: usize,
    restore: Option<Arc<Manifest>>,
    stop: Arc<AtomicBool>,
    failure: Arc<JobFailure>,
) -> Result<WorkerHandles> {
    let (index, peers) = (worker.index(), worker.peers());
    let resume = resume_for(restore.as_deref(), index, peers);
    let errors = Rc::new(ErrorLog::default());
    let reader = crate::source::open_reader(config, partitions, index, peers, &resume, errors.clone())?;
    let dlq = config
        .dlq_topic
        .as_deref()
        .map(|t| (config.kafka_client(&[("linger.ms", "20")]), t));
    let dead = Rc::new(RefCell::new(DeadLetterWriter::open(
        &config.deadletter,
        index,
        dlq,
        errors.clone(),
    )?));
    let identity = Identity::of(config);
    let setup = HistorySetup {
        roll: config.roll,
        checkpointed: identity.is_some(),
        sink: config.sink.is_some(),
    };
    let mut history = ParquetHistory::new(&config.out, index, config.run, config.udfs.columns(), setup)?;
    history.restore(resume.checkpoint, &resume.unrolled, peers)?;
    let latest = Rc::new(RefCell::new(
        LatestState::new(&config.out, peers, config.udfs.columns()).with_window(config.window),
    ));
    let stopping = Rc::new(StopProgress::default());
    let done = ProbeHandle::new();
    let watermark = Rc::new(Cell::new(None));
    let sink = match &config.sink {
        Some(topic) => {
            let recovery = Recovery::of(restore.as_deref(), peers);
            Some(Rc::new(KafkaSink::start(
                config,
                topic,
                index,
                recovery,
                errors.clone(),
            )?))
        }
        None => None,
    };
    let lineage_run = restore.as_ref().map_or(config.run, |m| m.lineage_run);
    // Worker 0 commits every file; the job's compaction runs beside it and takes turns with it on the lock.
    let history_lock = Arc::new(Mutex::new(()));
    let compaction = match config.compact_older_than {
        Some(age) if index == 0 && !config.bounded && identity.is_some() => {
            Some(InJob::start(&config.out, age, history_lock.clone(), lineage_run)?)
        }
        _ => None,
    };
    let committer = CommitSetup {
        out: config.out.clone(),
        peers,
        identity: identity.clone(),
        cluster_id: config.cluster_id.clone(),
        sink: config
            .sink
            .as_ref()
            .map(|_| restore.as_ref().and_then(|m| m.sink.clone()).unwrap_or_default()),
        group: config.kafka_client(&[("group.id", config.group.as_str()), ("enable.auto.commit", "false")]),
        restored: resume.checkpoint,
        lineage_run,
        history_lock: history_lock.clone(),
    };
    let window_setup = WindowSetup {
        kind: config.window,
        trigger: config.trigger,
        restored: resume.checkpoint,
        worker: index,
        peers,
        watermark: watermark.clone(),
        udfs: config.udfs.clone(),
        errors: errors.clone(),
        out: Some(config.out.clone()),
    };
    let source_setup = SourceSetup {
        worker: index,
        peers,
        stop,
        resume,
        checkpoints: identity.is_some(),
        dead: dead.clone(),
        errors: errors.clone(),
        failure,
    };

    worker.dataflow::<u64, _, _>(|scope| {
        let windows = windows(read(scope, reader, config, source_setup), window_setup);

        let staged = stage_history(windows.clone(), history, errors.clone());
        let parts = write_parts(
            staged,
            config.out.clone(),
            index,
            sink.clone(),
            stopping.clone(),
            errors.clone(),
        );
        commit(parts, committer, stopping.clone(), errors.clone()).probe_with(&done);
        if let Some(sink) = &sink {
            publish(windows.clone(), sink.clone());
        }

        let fleet = fleet::views(windows.clone(), config.thresholds);
        let to_latest = windows
            .flat_map(|m| match m {
                WindowMsg::Agg(w) => Some(LatestIn::Agg(w)),
                WindowMsg::Stats(s) => Some(LatestIn::Stats(s)),
                WindowMsg::UdfErrors(worker, counts) => Some(LatestIn::UdfErrors(worker, counts)),
                WindowMsg::Barrier(_) => None,
            })
            .concat(fleet);
        write_latest(
            to_latest,
            latest.clone(),
            watermark,
            config.trigger,
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
