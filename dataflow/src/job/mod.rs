//! The job as a library. [`Settings`] is what the flags say (checked by `config::Args::check`, with no side
//! effect): the query's source (the built-in job or a `--sql` file), the connection, and each stage's own
//! settings; [`prepare`] is the one step with side effects before any input (folders, the output lock, the query
//! read and planned, UDF builds, the Kafka queries, the restore), which resolves each stage's settings against
//! the query; [`run`] runs a prepared job on timely workers until its input ends or its [`StopHandle`] is raised,
//! and says how it ended ([`Outcome`]). The binary is flags and `run`; tests and benchmarks run whole jobs in
//! process the same way, stop protocol included.
//!
//! `resources` opens what one worker's stages need, `pipeline` wires them, and `worker` is each worker's loop
//! and the stop sequence.

pub mod pipeline;
mod prepare;
mod resources;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

pub use prepare::{
    Network, Prepared, plan_query, planned_input, planned_table_topic, prepare, query_text, resolve_input,
};

use crate::cluster::health::Health;
use crate::cluster::liveness::{self, Liveness};
use crate::fleet::Thresholds;
use crate::runtime::errors::JobFailure;
use crate::sink::parquet::roll::RollPolicy;
use crate::source::{OnDataLoss, StartAt};
use crate::udf::UdfSources;

/// The processes and threads a job runs on (timely's `-w -n -p -h`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSettings {
    /// Worker threads per process.
    pub workers: usize,
    /// Processes in the cluster.
    pub processes: usize,
    /// This process's index.
    pub process: usize,
    /// A file with one `host:port` per process (`None`: localhost:2101, 2102, ...).
    pub hostfile: Option<PathBuf>,
    /// How long a process waits at start for the others to answer.
    pub connect_timeout: Duration,
    /// How long a silent process may stay silent before it is lost.
    pub peer_timeout: Duration,
    /// Restarts of the cluster so far (`dataflow cluster` counts them), for `latest.json`.
    pub restarts: u64,
    /// Where this process serves its health endpoint (`None`: it does not).
    pub health_addr: Option<std::net::SocketAddr>,
    /// How long the frontier may stand still before the health endpoint reports a stall.
    pub stall_timeout: Duration,
}

impl ClusterSettings {
    /// One process with `workers` threads.
    pub fn local(workers: usize) -> ClusterSettings {
        ClusterSettings {
            workers,
            processes: 1,
            process: 0,
            hostfile: None,
            connect_timeout: Duration::from_secs(120),
            peer_timeout: Duration::from_secs(10),
            restarts: 0,
            health_addr: None,
            stall_timeout: Duration::from_secs(300),
        }
    }

    /// Workers in all processes.
    pub fn peers(&self) -> usize {
        self.workers * self.processes
    }
}

/// Where the job's query comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum QuerySource {
    /// The built-in job (`sql::default_job_sql`) with these flags' choices.
    Builtin {
        /// Window kind and sizes (`--window`, `--slide`, `--session-gap`).
        window: model::WindowKind,
        /// Lateness, ms (`--lateness`).
        lateness_ms: u64,
        /// Topic (`--topic`).
        topic: String,
    },
    /// A job file (`--sql`).
    File(PathBuf),
}

/// How the job reaches its input, as the flags say; each given flag wins over the query's `WITH` option.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    /// `--brokers`.
    pub brokers: Option<String>,
    /// `--kafka-option`s, applied after the query's `properties.*` and every client's defaults.
    pub options: Vec<(String, String)>,
    /// `--group`.
    pub group: Option<String>,
    /// `--start`.
    pub start: Option<StartAt>,
    /// `--bounded`.
    pub bounded: bool,
    /// `--on-data-loss`.
    pub on_data_loss: OnDataLoss,
    /// `--input`: a file instead of Kafka.
    pub input: Option<PathBuf>,
}

/// The source's rules besides the query's (`--idle-timeout`, `--max-future`, `--checkpoint-interval`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SourceRules {
    /// A partition silent this long stops holding the watermark back.
    pub idle_timeout: Duration,
    /// Events further ahead of the wall clock than this (ms) are bad.
    pub max_future_ms: u64,
    /// How often a checkpoint marker is sent (Kafka input).
    pub checkpoint_interval: Duration,
}

/// The Kafka output as the flags say (`--sink-topic`, `--sink-partitions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkTopic {
    /// Its name.
    pub topic: String,
    /// Partitions when the job creates it (`None`: as many as the input topic).
    pub partitions: Option<i32>,
}

/// A job's settings: what the flags say, checked, nothing prepared (no folder made, no file read, no UDF
/// built, no broker asked).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Processes and threads.
    pub cluster: ClusterSettings,
    /// The query.
    pub query: QuerySource,
    /// How the input is reached.
    pub connection: Connection,
    /// The source's rules besides the query's.
    pub rules: SourceRules,
    /// How often live rows and the counters are published (`--trigger`).
    pub trigger: Duration,
    /// When final windows are rolled into history files.
    pub roll: RollPolicy,
    /// Folder of the dead letters (`--deadletter`).
    pub deadletter: PathBuf,
    /// Also publish dead letters to this topic (`--dlq-topic`).
    pub dlq_topic: Option<String>,
    /// The Kafka output of final windows.
    pub sink: Option<SinkTopic>,
    /// The fleet views' alert thresholds.
    pub fleet: Thresholds,
    /// History older than this is compacted by the running job (`None`: `--no-compaction`).
    pub compact_older_than: Option<Duration>,
    /// The output folder: `latest.json`, the history, the checkpoints.
    pub out: PathBuf,
    /// Discard the checkpoints and start over.
    pub fresh: bool,
    /// The UDF crates.
    pub udfs: UdfSources,
}

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The input ended (a bounded topic, a file): every window is final and committed.
    Finished,
    /// It was asked to stop: a last checkpoint carries the open windows to the next run.
    Stopped,
}

/// Asks a running job to stop (the binary raises it on Ctrl-C; a test or benchmark whenever it likes). The job
/// then takes a last checkpoint, writes a last `latest.json` and returns [`Outcome::Stopped`].
#[derive(Clone, Debug, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// Asks the job to stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The flag the sources watch.
    fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

/// What `dataflow sql` is asked to do, its flags checked.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlRequest {
    /// Print `query` (the built-in job the flags shape) as a job file to start from.
    PrintDefault {
        /// The built-in job.
        query: QuerySource,
        /// The UDF crates whose signatures the printed job may call.
        udfs: Vec<PathBuf>,
    },
    /// Plan `file` as `dataflow --sql FILE` would and list its output columns.
    Check {
        /// The job file.
        file: PathBuf,
        /// The UDF crates the job may call; their signatures are read, nothing is built.
        udfs: Vec<PathBuf>,
    },
}

/// `dataflow sql`: the built-in job's text, or a job file's output columns once it plans, as the text to print.
pub fn sql_command(request: &SqlRequest) -> Result<String> {
    let (SqlRequest::PrintDefault { udfs, .. } | SqlRequest::Check { udfs, .. }) = request;
    let signatures = UdfSources {
        dirs: udfs.clone(),
        cache: PathBuf::new(),
    }
    .signatures()?;
    match request {
        SqlRequest::Check { file, .. } => {
            let q = plan_query(&QuerySource::File(file.clone()), &signatures)?;
            let mut text = format!("{} plans ({}); its output columns:\n", file.display(), q.window);
            for c in q.schema.columns() {
                let null = if c.nullable { "" } else { " NOT NULL" };
                let role = serde_json::to_value(c.role).map(|r| r.as_str().unwrap_or("").to_string());
                text += &format!("  {} {}{null} ({})\n", c.name, c.ty, role.unwrap_or_default());
            }
            Ok(text)
        }
        SqlRequest::PrintDefault { query, .. } => query_text(query, &signatures),
    }
}

/// Prepares the job of `settings` and runs it to its end (see [`execute`]).
pub fn run(settings: Settings, stop: StopHandle) -> Result<Outcome> {
    execute(prepare(settings)?, stop)
}

/// Runs a prepared job on its timely workers until the input ends or `stop` is raised. An error an operator
/// raises (a data loss under `--on-data-loss fail`) or a final history that could not be written ends it with
/// an error; so does a worker that fails.
pub fn execute(job: Prepared, stop: StopHandle) -> Result<Outcome> {
    tracing::info!(
        input = %job.source.input.describe(),
        partitions = job.partitions,
        workers = job.settings.cluster.peers(),
        window = %job.query.window,
        lateness_ms = job.query.lateness_ms(),
        bounded = job.source.input.is_bounded(),
        query = %match &job.settings.query {
            QuerySource::File(file) => file.display().to_string(),
            QuerySource::Builtin { .. } => "built-in".to_string(),
        },
        "starting"
    );
    let (builders, network_guard, liveness) = connect_workers(&job)?;
    let health = Health::new(job.settings.cluster.workers, job.settings.cluster.stall_timeout);
    if let Some(addr) = job.settings.cluster.health_addr {
        crate::cluster::health::serve(addr, health.clone())?;
    }
    let job = Arc::new(job);
    let failure = Arc::new(JobFailure::default());
    let guards = {
        let stop = stop.clone();
        timely::execute::execute_from(
            builders,
            network_guard,
            timely::WorkerConfig::default(),
            move |worker| {
                let process = worker::Process {
                    stop: stop.flag(),
                    failure: failure.clone(),
                    liveness: liveness.clone(),
                    health: health.clone(),
                };
                worker::run(worker, &job, process)
            },
        )
        .map_err(|e| anyhow!("cannot start the timely workers: {e}"))?
    };
    let mut first = None;
    for result in guards.join() {
        let outcome = result.map_err(|e| anyhow!("a worker failed: {e}")).and_then(|r| r);
        if let Err(e) = outcome {
            first.get_or_insert(e);
        }
    }
    match first {
        Some(e) => Err(e),
        None if stop.is_raised() => Ok(Outcome::Stopped),
        None => Ok(Outcome::Finished),
    }
}

/// Timely's allocators for the job's workers and what keeps their network up: a cluster's processes are
/// connected first (`cluster::connect`, bounded), then watched (`cluster::liveness`: heartbeats, a watchdog, and
/// timely's network panics turned into a report of the lost process).
#[allow(clippy::type_complexity)]
fn connect_workers(
    job: &Prepared,
) -> Result<(
    Vec<timely::communication::AllocatorBuilder>,
    Box<dyn std::any::Any + Send>,
    Option<Arc<Liveness>>,
)> {
    use timely::communication::allocator::ProcessBuilder;
    use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
    use timely::communication::{AllocatorBuilder, Hooks};
    match &job.network {
        Network::Local(config) => {
            let (builders, guard) = config
                .communication
                .clone()
                .try_build()
                .map_err(|e| anyhow!("cannot start the timely workers: {e}"))?;
            Ok((builders, guard, None))
        }
        Network::Cluster(addresses) => {
            let c = &job.settings.cluster;
            let sockets = crate::cluster::connect::connect(addresses, c.process, c.connect_timeout)?;
            let liveness = Liveness::new(c.process, addresses.clone(), c.workers, job.settings.out.clone());
            liveness::install_panic_hook(liveness.clone());
            let hooks = Hooks::default();
            let local = ProcessBuilder::new_typed_vector(c.workers, hooks.refill.clone(), hooks.spill.clone());
            let (tcp, guard) = initialize_networking_from_sockets(local, sockets, c.process, c.workers, hooks)
                .context("cannot start the network threads between the processes")?;
            liveness::Watchdog::start(liveness.clone(), c.peer_timeout, c.connect_timeout)
                .context("cannot start the peer watchdog")?;
            let builders = tcp.into_iter().map(AllocatorBuilder::Tcp).collect();
            Ok((builders, Box::new(guard), Some(liveness)))
        }
    }
}
