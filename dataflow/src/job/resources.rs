//! What one worker opens before its dataflow is built, from the prepared job: its reader, dead-letter writer,
//! history writer (with its share of the restored windows), snapshot state, Kafka output, the job's compaction
//! (worker 0 of an unbounded job), and the setups of its source, window operator and committer. `pipeline`
//! connects them; the worker loop keeps what it needs of them ([`WorkerHandles`]).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use timely::dataflow::ProbeHandle;

use super::Prepared;
use crate::checkpoint::{CommitReport, CommitSetup, StopProgress};
use crate::compact::InJob;
use crate::fleet::FleetColumns;
use crate::join::operator::{JoinSetup, JoinState};
use crate::runtime::errors::{ErrorLog, JobFailure};
use crate::sink::deadletter::DeadLetterWriter;
use crate::sink::kafka::KafkaSink;
use crate::sink::latest_json::LatestState;
use crate::sink::latest_json::QueryInfo;
use crate::sink::parquet::{HistorySetup, ParquetHistory};
use crate::source::open_table_reader;
use crate::source::operator::SourceSetup;
use crate::source::reader::Reader;
use crate::source::table::TableSetup;
use crate::udf::host::Host;
use crate::window::WindowSetup;

/// What the worker loop keeps of its dataflow.
pub struct WorkerHandles {
    /// Done once every sink has flushed for the last time.
    pub done: ProbeHandle<u64>,
    /// The windows' frontier: the job's event-time watermark (the health endpoint watches it).
    pub watermark: ProbeHandle<u64>,
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

/// What a worker's temporal join opens: the table's reader and the setups of its source and of the join.
pub struct JoinResources {
    /// The versioned table's reader.
    pub reader: Box<dyn Reader>,
    /// The table source's setup.
    pub table: TableSetup,
    /// The join operator's setup.
    pub setup: JoinSetup,
}

/// One worker's resources, each for the stage it is named after.
pub struct Resources {
    /// The source's reader.
    pub reader: Box<dyn Reader>,
    /// The source's setup.
    pub source: SourceSetup,
    /// The temporal join's, when the query has one.
    pub join: Option<JoinResources>,
    /// The window operator's setup.
    pub window: WindowSetup,
    /// The history writer.
    pub history: ParquetHistory,
    /// The committer's setup (used on worker 0).
    pub committer: CommitSetup,
    /// The Kafka output's commits, as the checkpoint parts report them.
    pub report: Option<Rc<dyn CommitReport>>,
    /// The job's watermark, as the window operator sees it, for the snapshot.
    pub watermark: Rc<Cell<Option<u64>>>,
    /// The fleet views' columns, when the query has them.
    pub fleet: Option<FleetColumns>,
    /// What the worker loop keeps.
    pub handles: WorkerHandles,
}

impl Resources {
    /// Opens worker `index`'s (of `peers`) resources for `job`; `stop` is raised to stop, `failure` is where an
    /// operator raises an error that stops the job.
    pub fn open(
        job: &Prepared,
        index: usize,
        peers: usize,
        stop: Arc<AtomicBool>,
        failure: Arc<JobFailure>,
    ) -> Result<Resources> {
        let settings = &job.settings;
        let resume = job
            .restored
            .as_ref()
            .map(|r| r.resume_for(index, peers))
            .unwrap_or_default();
        let resume_checkpoint = resume.checkpoint;
        let errors = Rc::new(ErrorLog::default());
        let reader = crate::source::open_reader(&job.source, job.partitions, index, peers, &resume, errors.clone())?;
        let dead = Rc::new(RefCell::new(DeadLetterWriter::open(
            &job.deadletter,
            index,
            errors.clone(),
        )?));
        let host = Rc::new(Host::new(job.udfs.clone(), errors.clone()));
        let schema = Arc::new(job.query.schema.clone());
        let checkpointed = job.identity.is_some();
        let setup = HistorySetup {
            roll: settings.roll,
            checkpointed,
            sink: job.sink.is_some(),
        };
        let mut history = ParquetHistory::new(&job.store, index, job.run, schema.clone(), setup)?;
        history.restore(resume.checkpoint, &resume.unrolled, peers)?;
        let fleet = FleetColumns::of(&job.query.schema, job.query.carries_side());
        let info = QueryInfo {
            sql: job.query.text.clone(),
            builtin: job.query.builtin,
        };
        let mut latest = LatestState::new(&settings.out, peers, info, schema.clone())
            .with_window(job.query.window)
            .with_udfs(job.udfs.columns())
            .with_cluster(settings.cluster.processes, settings.cluster.restarts);
        if let Err(why) = &fleet {
            latest = latest.without_fleet(why.clone());
        }
        let latest = Rc::new(RefCell::new(latest));
        let sink = match &job.sink {
            Some(sink) => {
                let recovery = job.restored.as_ref().map(|r| r.sink_recovery(peers));
                Some(Rc::new(KafkaSink::start(
                    sink,
                    &job.store,
                    schema,
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
            Some(age) if index == 0 && !job.source.input.is_bounded() && checkpointed => {
                Some(InJob::start(&settings.out, age, history_lock.clone(), lineage_run)?)
            }
            _ => None,
        };
        let group = match job.source.input.kafka() {
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
            job.sink.is_some(),
            history_lock,
            group,
        );
        let watermark = Rc::new(Cell::new(None));
        let window = WindowSetup {
            settings: job.window,
            restored: resume.checkpoint,
            worker: index,
            peers,
            watermark: watermark.clone(),
            query: job.query.clone(),
            host: host.clone(),
            errors: errors.clone(),
            store: Some(job.store.clone()),
        };
        let join = match &job.table {
            Some(settings) => {
                let restored = job.table_restored.as_ref();
                let resume = restored.map(|t| t.resume.clone()).unwrap_or_default();
                // The versions the old workers saved, every `peers`-th file to this worker; the table's sources
                // send them on to the workers owning their keys.
                let versions = restored
                    .map(|t| {
                        t.versions
                            .iter()
                            .skip(index)
                            .step_by(peers.max(1))
                            .flatten()
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                Some(JoinResources {
                    reader: open_table_reader(settings, &job.source, index, peers, &resume, errors.clone())?,
                    table: TableSetup {
                        worker: index,
                        peers,
                        query: job.query.clone(),
                        host: host.clone(),
                        dead: dead.clone(),
                        errors: errors.clone(),
                        name: settings.name.clone(),
                        lateness_ms: settings.lateness_ms,
                        idle_timeout: job.source.idle_timeout,
                        max_future_ms: job.source.max_future_ms,
                        restored: versions,
                        stop: stop.clone(),
                    },
                    setup: JoinSetup {
                        worker: index,
                        peers,
                        restored: resume_checkpoint,
                        query: job.query.clone(),
                        host: host.clone(),
                        // The restored counters continue on worker 0.
                        state: Rc::new(RefCell::new(JoinState {
                            counts: restored.filter(|_| index == 0).map(|t| t.counts).unwrap_or_default(),
                            ..JoinState::default()
                        })),
                        store: checkpointed.then(|| job.store.clone()),
                        errors: errors.clone(),
                    },
                })
            }
            None => None,
        };
        let source = SourceSetup {
            worker: index,
            peers,
            stop,
            resume,
            checkpoints: checkpointed,
            dead: dead.clone(),
            errors: errors.clone(),
            failure,
            query: job.query.clone(),
            host,
        };
        Ok(Resources {
            reader,
            source,
            join,
            window,
            history,
            committer,
            report: sink.clone().map(|s| s as Rc<dyn CommitReport>),
            watermark,
            fleet: fleet.ok(),
            handles: WorkerHandles {
                done: ProbeHandle::new(),
                watermark: ProbeHandle::new(),
                latest,
                dead,
                stopping: Rc::new(StopProgress::default()),
                errors,
                sink,
                compaction,
            },
        })
    }
}
