//! `producer`: the IoT device simulator. Publishes seeded sensor readings (key = device id) to a Kafka topic
//! at an even rate, or as fast as the broker takes them with `--rate 0`, or writes them to a JSON-lines file on a
//! simulated clock. Prints a progress line every few seconds and a JSON summary on stdout at the end.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use producer::kafka::KafkaSink;
use producer::sim::{Fleet, Mix};
use producer::summary::Summary;

/// Simulated IoT devices publishing sensor readings.
#[derive(Parser, Debug)]
#[command(version, about, allow_negative_numbers = true)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "localhost:9092")]
    brokers: String,
    /// Topic to publish to (created when missing).
    #[arg(long, default_value = model::DEFAULT_TOPIC)]
    topic: String,
    /// Partitions of the topic when the producer creates it.
    #[arg(long, default_value_t = model::DEFAULT_PARTITIONS, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    partitions: i32,
    /// Number of simulated devices.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    devices: u64,
    /// Messages per second per device; 0 sends as fast as the broker takes them.
    #[arg(long, default_value_t = 4.0)]
    rate: f64,
    /// Stop after this long (e.g. `10s`, `5m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many records (bad ones included).
    #[arg(long)]
    count: Option<u64>,
    /// Fraction of records that are valid events with a timestamp in the past.
    #[arg(long, default_value_t = 0.0)]
    late_fraction: f64,
    /// Largest delay of a late event.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    max_delay: Duration,
    /// Fraction of records that are malformed (truncated, wrong types, missing fields, bad UTF-8, ...).
    #[arg(long, default_value_t = 0.0)]
    bad_fraction: f64,
    /// Use the device ids listed in this file (one per line) instead of generated ones; `--devices` is ignored.
    #[arg(long)]
    device_ids_file: Option<PathBuf>,
    /// Seed of the device fleet and the readings.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Write JSON lines to this file instead of Kafka, on a simulated clock that advances by `1 / (devices *
    /// rate)` per record from `--start-ms`.
    #[arg(long)]
    to_file: Option<PathBuf>,
    /// Event time of the first record with `--to-file`, epoch ms (default: now).
    #[arg(long)]
    start_ms: Option<u64>,
    /// Seconds between progress lines.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    progress_every: Duration,
    /// Extra librdkafka producer settings, `key=value`, repeatable.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    kafka_options: Vec<String>,
}

impl Args {
    fn check(&self) -> Result<Mix> {
        for (name, v) in [
            ("--late-fraction", self.late_fraction),
            ("--bad-fraction", self.bad_fraction),
        ] {
            if !(0.0..=1.0).contains(&v) {
                bail!("{name} must be between 0 and 1, got {v}");
            }
        }
        if self.late_fraction + self.bad_fraction > 1.0 {
            bail!("--late-fraction + --bad-fraction must not exceed 1");
        }
        if !self.rate.is_finite() || self.rate < 0.0 {
            bail!(
                "--rate must be a non-negative number of messages per second per device, got {}",
                self.rate
            );
        }
        if self.to_file.is_some() && self.rate == 0.0 {
            bail!("--to-file runs on a simulated clock: give --rate > 0 to space the events");
        }
        if self.to_file.is_some() && self.count.is_none() && self.duration.is_none() {
            bail!("--to-file needs --count or --duration to know when to stop");
        }
        Ok(Mix {
            late_fraction: self.late_fraction,
            max_delay_ms: u64::try_from(self.max_delay.as_millis()).unwrap_or(u64::MAX),
            bad_fraction: self.bad_fraction,
            tombstones: self.to_file.is_none(),
        })
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(err) = run(Args::parse()) {
        eprintln!("producer: error: {err:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let mix = args.check()?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
    }
    let mut fleet = match &args.device_ids_file {
        Some(path) => Fleet::with_ids(read_ids(path)?, args.seed),
        None => Fleet::new(args.devices as usize, args.seed),
    };
    let summary = match &args.to_file {
        Some(path) => to_file(&args, &mix, &mut fleet, path, &stop)?,
        None => to_kafka(&args, &mix, &mut fleet, &stop)?,
    };
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

fn read_ids(path: &PathBuf) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --device-ids-file {}", path.display()))?;
    let mut ids: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if !ids.iter().any(|i| i == line) {
            ids.push(line.to_string());
        }
    }
    if ids.is_empty() {
        bail!("--device-ids-file {} lists no device ids", path.display());
    }
    Ok(ids)
}

fn to_file(
    args: &Args,
    mix: &Mix,
    fleet: &mut Fleet,
    path: &PathBuf,
    stop: &AtomicBool,
) -> Result<Summary> {
    let file = File::create(path)
        .with_context(|| format!("cannot create --to-file {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let total_rate = fleet.devices().len() as f64 * args.rate;
    let start_ms = args.start_ms.unwrap_or_else(model::time::now_ms);
    let limit = args.count.unwrap_or(u64::MAX);
    let horizon_ms = args.duration.map(|d| d.as_secs_f64() * 1000.0);
    let started = Instant::now();
    let mut summary = Summary::default();
    while summary.sent < limit && !stop.load(Ordering::Relaxed) {
        let offset_ms = summary.sent as f64 * 1000.0 / total_rate;
        if horizon_ms.is_some_and(|h| offset_ms >= h) {
            break;
        }
        let record = fleet.next_record(start_ms + offset_ms as u64, mix);
        summary.count(&record.kind);
        out.write_all(record.value.as_deref().unwrap_or_default())?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    summary.acked = summary.sent;
    summary.finish(started.elapsed());
    Ok(summary)
}

fn to_kafka(args: &Args, mix: &Mix, fleet: &mut Fleet, stop: &AtomicBool) -> Result<Summary> {
    let sink = KafkaSink::connect(&args.brokers, &args.kafka_options)?;
    sink.ensure_topic(&args.topic, args.partitions)?;
    let total_rate = fleet.devices().len() as f64 * args.rate;
    let limit = args.count.unwrap_or(u64::MAX);
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut last_progress = Instant::now();
    let mut sent_at_last_progress = 0;
    tracing::info!(
        brokers = %args.brokers, topic = %args.topic, devices = fleet.devices().len(),
        rate = %if total_rate > 0.0 { format!("{total_rate} msg/s") } else { "unlimited".into() },
        "producing"
    );
    while summary.sent < limit && !stop.load(Ordering::Relaxed) {
        if total_rate > 0.0 {
            // Record i is due at start + i / rate: an even spread with no drift, whatever sleep overshoots.
            let due = Duration::from_secs_f64(summary.sent as f64 / total_rate);
            if args.duration.is_some_and(|d| due >= d) {
                break;
            }
            let elapsed = started.elapsed();
            if due > elapsed {
                std::thread::sleep((due - elapsed).min(Duration::from_millis(200)));
                continue;
            }
        } else if args.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let record = fleet.next_record(model::time::now_ms(), mix);
        if !sink.send(&args.topic, &record, stop)? {
            break;
        }
        summary.count(&record.kind);
        if last_progress.elapsed() >= args.progress_every {
            let rate = (summary.sent - sent_at_last_progress) as f64
                / last_progress.elapsed().as_secs_f64();
            let (acked, failed) = sink.delivered();
            tracing::info!(
                sent = summary.sent,
                acked,
                failed,
                msg_per_s = format!("{rate:.0}"),
                "progress"
            );
            last_progress = Instant::now();
            sent_at_last_progress = summary.sent;
        }
    }
    if stop.load(Ordering::Relaxed) {
        tracing::info!("interrupted: flushing what is in flight");
    }
    sink.flush(Duration::from_secs(30))?;
    let (acked, failed) = sink.delivered();
    summary.acked = acked;
    summary.failed = failed;
    summary.finish(started.elapsed());
    tracing::info!(
        sent = summary.sent,
        acked,
        failed,
        bad = summary.bad,
        late = summary.late,
        msg_per_s = format!("{:.0}", summary.rate),
        "done"
    );
    if failed > 0 {
        bail!(
            "{failed} of {} records were not acknowledged by Kafka (see the log above)",
            summary.sent
        );
    }
    Ok(summary)
}
