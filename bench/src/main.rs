//! `bench`: whole-pipeline benchmarks of the IoT pipeline. It generates its own input with the seeded simulator
//! (`producer::sim::Fleet`) and times the real `producer` and `dataflow` binaries from the same target folder:
//! `core`, `replay`, `kafka`, `latency`, `memory`, and `smoke` (all of them, tiny, as a CI check). Each figure
//! is printed as a `RESULT` line; `--write` also appends it to the run log in BENCHMARKS.md.

mod ctx;
mod history;
mod inproc;
mod input;
mod kafka;
mod latency;
mod memory;
mod operators;
mod proc;
mod replay;
mod report;
mod smoke;
mod sql;
mod udf;
mod windows;

use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::ctx::{Common, Ctx};
use crate::input::InputSpec;

/// Throughput, scaling, latency and memory of the IoT pipeline's real binaries.
#[derive(Parser, Debug)]
#[command(about)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Core path: the in-process ceiling (parse + window + aggregate, no dataflow) and `dataflow --input` on a
    /// file in the page cache, per worker and scaling.
    Core(CoreArgs),
    /// `dataflow --input FILE` (bounded, Parquet sink on) for each worker count, plus 2 processes x 1 worker.
    Replay(ReplayArgs),
    /// `dataflow --bounded` from a fresh topic of the real broker, pre-filled by `producer --rate 0`.
    Kafka(KafkaArgs),
    /// Live latency: producer at a rate, dataflow unbounded, `latest.json` polled every 20 ms.
    Latency(LatencyArgs),
    /// RSS of an unbounded dataflow fed at a rate, sampled every second.
    Memory(MemoryArgs),
    /// `dataflow --input FILE` without UDFs, with the scalar and with the aggregate example UDF of `udfs/`.
    Udf(UdfArgs),
    /// `dataflow --input FILE` with tumbling, hopping (3 and 60 windows per event) and session windows.
    Windows(UdfArgs),
    /// `dataflow --input FILE` with the built-in job, the same job as a SQL file, twelve aggregates, and a
    /// COUNT(DISTINCT).
    Sql(UdfArgs),
    /// The dashboard's history reader over one device with thousands of files (first request, cached, uncached).
    History(HistoryArgs),
    /// Every scenario at a tiny size (< 60 s): fails if a scenario fails, never on a speed figure.
    Smoke,
}

/// Input shape shared by the file scenarios.
#[derive(Args, Debug, Clone)]
struct InputArgs {
    /// Records to generate.
    #[arg(long, default_value_t = 5_000_000)]
    events: u64,
    /// Devices in the simulated fleet.
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Simulated event-time rate of the fleet (events per second of event time).
    #[arg(long, default_value_t = 100_000.0)]
    sim_rate: f64,
    /// Share of malformed records.
    #[arg(long, default_value_t = 0.0)]
    bad_fraction: f64,
    /// Fleet seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl InputArgs {
    fn spec(&self) -> InputSpec {
        InputSpec {
            events: self.events,
            devices: self.devices,
            rate: self.sim_rate,
            bad_fraction: self.bad_fraction,
            seed: self.seed,
        }
    }
}

#[derive(Args, Debug)]
struct CoreArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Records held in memory for the in-process loop.
    #[arg(long, default_value_t = 2_000_000)]
    loop_events: u64,
    /// Timed repetitions of each measurement (best and median are reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Worker counts to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    workers: Vec<usize>,
    /// Skip the 2 processes x 1 worker run.
    #[arg(long)]
    no_cluster: bool,
    /// Timed repetitions of each measurement.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

#[derive(Args, Debug)]
struct KafkaArgs {
    /// Records pre-filled into the topic.
    #[arg(long, default_value_t = 5_000_000)]
    events: u64,
    /// Devices in the simulated fleet.
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Partitions of the fresh topic.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Worker counts to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    workers: Vec<usize>,
    /// Also time 2 processes x 1 worker.
    #[arg(long)]
    cluster: bool,
    /// Also time each layout with the exactly-once Kafka output (--sink-topic), alternating with runs without it.
    #[arg(long)]
    sink: bool,
    /// Timed repetitions of each measurement.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Extra dataflow flags, e.g. `--kafka-option=queued.max.messages.kbytes=4096` (repeatable).
    #[arg(long = "dataflow-arg", allow_hyphen_values = true)]
    dataflow_args: Vec<String>,
}

#[derive(Args, Debug)]
struct HistoryArgs {
    /// Files of the device (a day of 30 s checkpoints is 2,880).
    #[arg(long, default_value_t = 3000)]
    files: usize,
    /// Windows per file.
    #[arg(long, default_value_t = 3)]
    rows_per_file: usize,
    /// Rows asked for (the page's default history limit).
    #[arg(long, default_value_t = 360)]
    limit: usize,
    /// Timed requests of each kind.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
}

#[derive(Args, Debug)]
struct LatencyArgs {
    /// Devices.
    #[arg(long, default_value_t = 8)]
    devices: u64,
    /// Messages per second per device (8 x 4 is the seed's rate).
    #[arg(long, default_value_t = 4.0)]
    rate: f64,
    /// How long the producer runs.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// dataflow --window.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    window: Duration,
    /// dataflow --lateness.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    lateness: Duration,
    /// dataflow --trigger.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    trigger: Duration,
    /// dataflow --idle-timeout.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// dataflow -w.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

#[derive(Args, Debug)]
struct MemoryArgs {
    /// Devices.
    #[arg(long, default_value_t = 1000)]
    devices: u64,
    /// Messages per second per device.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// How long the producer runs.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// dataflow -w.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Extra dataflow flags, e.g. `--window=10s` (repeatable).
    #[arg(long = "dataflow-arg", allow_hyphen_values = true)]
    dataflow_args: Vec<String>,
    /// A SQL job joining each reading, as of its event time, with the simulator's device table, every row of
    /// which changes about once a minute.
    #[arg(long)]
    join: bool,
}

/// A comparison of variants of the replay run (`udf`, `windows`, `sql`).
#[derive(Args, Debug)]
struct UdfArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Workers (`-w`).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Timed repetitions of each measurement.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

fn main() {
    let cli = Cli::parse();
    let outcome = run(cli);
    if let Err(err) = outcome {
        eprintln!("bench: error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx::new(&cli.common)?;
    match cli.scenario {
        Scenario::Core(a) => replay::core(&ctx, &a.input.spec(), a.loop_events, a.repeat)?,
        Scenario::Replay(a) => replay::replay(&ctx, &a.input.spec(), &a.workers, !a.no_cluster, a.repeat)?,
        Scenario::Kafka(a) => kafka::kafka(
            &ctx,
            &kafka::KafkaRun {
                events: a.events,
                devices: a.devices,
                partitions: a.partitions,
                workers: a.workers,
                cluster: a.cluster,
                sink: a.sink,
                repeat: a.repeat,
                dataflow_args: a.dataflow_args,
            },
        )?,
        Scenario::Latency(a) => latency::latency(
            &ctx,
            &latency::LatencyRun {
                devices: a.devices,
                rate: a.rate,
                duration: a.duration,
                window: a.window,
                lateness: a.lateness,
                trigger: a.trigger,
                idle_timeout: a.idle_timeout,
                workers: a.workers,
            },
        )?,
        Scenario::Memory(a) => memory::memory(
            &ctx,
            &memory::MemoryRun {
                devices: a.devices,
                rate: a.rate,
                duration: a.duration,
                workers: a.workers,
                dataflow_args: a.dataflow_args,
                join: a.join,
            },
        )?,
        Scenario::Udf(a) => udf::udf(&ctx, &a.input.spec(), a.workers, a.repeat)?,
        Scenario::Windows(a) => windows::windows(&ctx, &a.input.spec(), a.workers, a.repeat)?,
        Scenario::Sql(a) => sql::sql(&ctx, &a.input.spec(), a.workers, a.repeat)?,
        Scenario::History(a) => history::history(
            &ctx,
            &history::HistoryRun {
                files: a.files,
                rows_per_file: a.rows_per_file,
                limit: a.limit,
                repeat: a.repeat,
            },
        )?,
        Scenario::Smoke => smoke::smoke(&ctx)?,
    }
    ctx.finish()
}
