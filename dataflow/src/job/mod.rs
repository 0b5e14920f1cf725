//! The job as a library. [`Settings`] holds each stage's own settings (checked from the flags by
//! `config::Args::check`, with no side effect); [`prepare`] is the one step with side effects before any input
//! (folders, the output lock, UDF builds, the Kafka queries, the restore); [`run`] runs a prepared job on timely
//! workers until its input ends or its [`StopHandle`] is raised, and says how it ended ([`Outcome`]). The binary is
//! flags and `run`; tests and benchmarks run whole jobs in process the same way, stop protocol included.
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

use anyhow::{Result, anyhow};

pub use prepare::{Prepared, prepare};

use crate::fleet::Thresholds;
use crate::runtime::errors::JobFailure;
use crate::sink::deadletter::DeadLetterSettings;
use crate::sink::kafka::SinkSettings;
use crate::sink::parquet::roll::RollPolicy;
use crate::source::SourceSettings;
use crate::udf::UdfSources;
use crate::window::WindowSettings;

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
}

impl ClusterSettings {
    /// One process with `workers` threads.
    pub fn local(workers: usize) -> ClusterSettings {
        ClusterSettings {
            workers,
            processes: 1,
            process: 0,
            hostfile: None,
        }
    }

    /// Workers in all processes.
    pub fn peers(&self) -> usize {
        self.workers * self.processes
    }
}

/// A job's settings, each stage's apart. Checked, but nothing prepared: no folder made, no UDF built, no broker
/// asked.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Processes and threads.
    pub cluster: ClusterSettings,
    /// What is read, and the per-record rules.
    pub source: SourceSettings,
    /// The windows.
    pub window: WindowSettings,
    /// When final windows are rolled into history files.
    pub roll: RollPolicy,
    /// Where bad and late records go.
    pub deadletter: DeadLetterSettings,
    /// The Kafka output of final windows (`--sink-topic`).
    pub sink: Option<SinkSettings>,
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

/// Prepares the job of `settings` and runs it to its end (see [`execute`]).
pub fn run(settings: Settings, stop: StopHandle) -> Result<Outcome> {
    execute(prepare(settings)?, stop)
}

/// Runs a prepared job on its timely workers until the input ends or `stop` is raised. An error an operator
/// raises (a data loss under `--on-data-loss fail`) or a final history that could not be written ends it with
/// an error; so does a worker that fails.
pub fn execute(job: Prepared, stop: StopHandle) -> Result<Outcome> {
    tracing::info!(
        input = %job.settings.source.input.describe(),
        partitions = job.partitions,
        workers = job.settings.cluster.peers(),
        window = %job.settings.window.kind,
        lateness_ms = job.settings.source.lateness_ms,
        bounded = job.settings.source.input.is_bounded(),
        "starting"
    );
    let timely_config = job.timely_config.clone();
    let job = Arc::new(job);
    let failure = Arc::new(JobFailure::default());
    let guards = {
        let stop = stop.clone();
        timely::execute(timely_config, move |worker| {
            worker::run(worker, &job, stop.flag(), failure.clone())
        })
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
