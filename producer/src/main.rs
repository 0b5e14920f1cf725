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
use producer::config::Args;
use producer::devices::DeviceTable;
use producer::kafka::KafkaSink;
use producer::sim::{Fleet, Mix};
use producer::summary::Summary;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        // Colours only on a terminal, not in a log file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
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
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read --device-ids-file {}", path.display()))?;
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

fn to_file(args: &Args, mix: &Mix, fleet: &mut Fleet, path: &PathBuf, stop: &AtomicBool) -> Result<Summary> {
    let file = File::create(path).with_context(|| format!("cannot create --to-file {}", path.display()))?;
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
    out.flush().with_context(|| format!("writing {}", path.display()))?;
    summary.acked = summary.sent;
    summary.finish(started.elapsed());
    Ok(summary)
}

fn to_kafka(args: &Args, mix: &Mix, fleet: &mut Fleet, stop: &AtomicBool) -> Result<Summary> {
    let sink = KafkaSink::connect(&args.brokers, &args.kafka_options)?;
    sink.ensure_topic(&args.topic, args.partitions)?;
    let mut table = match &args.devices_topic {
        Some(topic) => Some(DeviceTableOut::start(args, topic, fleet, stop)?),
        None => None,
    };
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
        if let Some(t) = table.as_mut() {
            t.publish_due(started.elapsed(), stop)?;
        }
        let record = fleet.next_record(model::time::now_ms(), mix);
        if !sink.send(&args.topic, &record, stop)? {
            break;
        }
        summary.count(&record.kind);
        if last_progress.elapsed() >= args.progress_every {
            let rate = (summary.sent - sent_at_last_progress) as f64 / last_progress.elapsed().as_secs_f64();
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
    if let Some(t) = table {
        summary.device_rows = t.finish()?;
    }
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

/// The device table on its own producer (its deliveries are not the readings'), its changes spread evenly over
/// the run.
struct DeviceTableOut {
    sink: KafkaSink,
    topic: String,
    table: DeviceTable,
    rate: f64,
    changes: u64,
    rows: u64,
}

impl DeviceTableOut {
    /// Creates the compacted topic and publishes every device's row.
    fn start(args: &Args, topic: &str, fleet: &Fleet, stop: &AtomicBool) -> Result<DeviceTableOut> {
        let sink = KafkaSink::connect(&args.brokers, &args.kafka_options)?;
        sink.ensure_topic_with(topic, args.partitions, &[("cleanup.policy", "compact")])?;
        let table = DeviceTable::new(fleet.devices(), args.seed);
        let mut out = DeviceTableOut {
            sink,
            topic: topic.to_string(),
            table,
            rate: args.device_change_rate,
            changes: 0,
            rows: 0,
        };
        for r in out.table.snapshot(model::time::now_ms()) {
            out.sink.send_raw(&out.topic, r.key.as_bytes(), Some(&r.value), stop)?;
            out.rows += 1;
        }
        tracing::info!(
            topic,
            devices = out.rows,
            change_rate = out.rate,
            "device table published"
        );
        Ok(out)
    }

    /// Publishes the changes due `elapsed` into the run.
    fn publish_due(&mut self, elapsed: Duration, stop: &AtomicBool) -> Result<()> {
        while self.rate > 0.0 && (self.changes as f64) / self.rate <= elapsed.as_secs_f64() {
            let r = self.table.next_change(model::time::now_ms());
            self.sink
                .send_raw(&self.topic, r.key.as_bytes(), Some(&r.value), stop)?;
            self.changes += 1;
            self.rows += 1;
        }
        Ok(())
    }

    /// Waits for every row to be acknowledged; returns how many were published.
    fn finish(self) -> Result<u64> {
        self.sink.flush(Duration::from_secs(30))?;
        let (_, failed) = self.sink.delivered();
        if failed > 0 {
            bail!("{failed} of {} device rows were not acknowledged by Kafka", self.rows);
        }
        Ok(self.rows)
    }
}
