//! Live latency as the dashboard sees it. The producer runs at a rate against a fresh topic; the dataflow runs
//! unbounded with short `--window/--lateness/--trigger`; `latest.json` is polled every 20 ms. Per window the
//! scenario measures when the snapshots first show it final against (a) the first snapshot whose watermark
//! passes its end and (b) the wall-clock moment the watermark could first pass it (end + lateness: events are
//! stamped with the wall clock), and when a device's window first shows live against the window's start.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use model::latest::SeedDoc as LatestDoc;

use crate::ctx::Ctx;
use crate::input::human;
use crate::kafka::{Topic, paced_producer};
use crate::proc;
use crate::report::{Row, load_average};

/// Polling period of `latest.json`.
const POLL: Duration = Duration::from_millis(20);

/// Parameters of one latency run.
pub struct LatencyRun {
    /// Devices.
    pub devices: u64,
    /// Messages per second per device.
    pub rate: f64,
    /// Producer run time.
    pub duration: Duration,
    /// dataflow --window.
    pub window: Duration,
    /// dataflow --lateness.
    pub lateness: Duration,
    /// dataflow --trigger.
    pub trigger: Duration,
    /// dataflow --idle-timeout (a partition that gets no device must not hold the watermark for long).
    pub idle_timeout: Duration,
    /// dataflow -w.
    pub workers: usize,
}

/// Percentiles of a set of delays, ms.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: i64,
    /// 90th percentile.
    pub p90: i64,
    /// 99th percentile.
    pub p99: i64,
    /// Largest.
    pub max: i64,
}

impl Spread {
    /// Percentiles of `samples` (`None` when empty).
    pub fn of(mut samples: Vec<i64>) -> Option<Spread> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
        Some(Spread {
            n: samples.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: *samples.last().expect("non-empty"),
        })
    }

    fn describe(s: Option<Spread>) -> String {
        match s {
            Some(s) => format!(
                "p50 {} / p90 {} / p99 {} / max {} ms (n={})",
                s.p50, s.p90, s.p99, s.max, s.n
            ),
            None => "no samples".into(),
        }
    }
}

/// What the polling saw.
#[derive(Default)]
struct Seen {
    /// (wall ms, watermark ms) of each distinct snapshot.
    snapshots: Vec<(u64, u64)>,
    /// First time each (device, window start) showed at all (live or final).
    first_live: HashMap<(String, u64), u64>,
    /// First time each (device, window end) showed final.
    first_final: HashMap<(String, u64), u64>,
    /// The largest number of records in one snapshot.
    max_records: usize,
}

fn parse_time(s: &str) -> Result<u64> {
    let t = chrono::DateTime::parse_from_rfc3339(s).with_context(|| format!("bad time {s:?}"))?;
    Ok(t.timestamp_millis().max(0) as u64)
}

impl Seen {
    fn observe(&mut self, now: u64, doc: &LatestDoc) -> Result<()> {
        let wm = match &doc.watermark {
            Some(w) => parse_time(w)?,
            None => 0,
        };
        self.snapshots.push((now, wm));
        self.max_records = self.max_records.max(doc.records.len());
        for r in &doc.records {
            let start = parse_time(&r.window_start)?;
            let end = parse_time(&r.window_end)?;
            self.first_live.entry((r.device_id.clone(), start)).or_insert(now);
            if r.is_final {
                self.first_final.entry((r.device_id.clone(), end)).or_insert(now);
            }
        }
        Ok(())
    }

    /// First snapshot time at which the watermark reached `end`.
    fn watermark_passed(&self, end: u64) -> Option<u64> {
        self.snapshots.iter().find(|(_, wm)| *wm >= end).map(|(t, _)| *t)
    }
}

/// The `latency` scenario.
pub fn latency(ctx: &Ctx, run: &LatencyRun) -> Result<()> {
    let window_ms = run.window.as_millis() as u64;
    let lateness_ms = run.lateness.as_millis() as u64;
    let partitions = 3;
    let topic = Topic::create(&ctx.brokers, "bench-latency", partitions, true)?;
    let dir = ctx.scratch("latency")?;
    let out = dir.join("aggregates");
    let latest = out.join("latest.json");
    let load = load_average();

    let args: Vec<String> = [
        ("window", run.window),
        ("lateness", run.lateness),
        ("trigger", run.trigger),
        ("idle-timeout", run.idle_timeout),
    ]
    .iter()
    .map(|(flag, d)| format!("--{flag}={}", humantime::format_duration(*d)))
    .collect();
    let mut dataflow = proc::start_live_job(ctx, &topic.name, Some(&topic.name), &args, run.workers, &dir)?;

    let cmd = paced_producer(ctx, &topic, partitions, run.devices, run.rate, run.duration);
    let produce_start = model::time::now_ms();
    let mut producer = proc::spawn(cmd, "producer", &dir)?;

    let mut seen = Seen::default();
    let mut last: Vec<u8> = Vec::new();
    let mut produce_end: Option<u64> = None;
    loop {
        let now = model::time::now_ms();
        if let Ok(bytes) = std::fs::read(&latest)
            && bytes != last
        {
            let doc: LatestDoc = serde_json::from_slice(&bytes).context("latest.json is not a LatestDoc")?;
            seen.observe(now, &doc)?;
            last = bytes;
        }
        if dataflow.has_exited()? {
            bail!(
                "dataflow stopped during the run:\n{}",
                proc::tail(&dir.join("dataflow.err"), 15)
            );
        }
        if produce_end.is_none() && producer.has_exited()? {
            produce_end = Some(now);
        }
        // After the producer: long enough for the last full windows to turn final.
        if produce_end.is_some_and(|e| now > e + window_ms + lateness_ms + 3 * run.trigger.as_millis() as u64 + 1000) {
            break;
        }
        std::thread::sleep(POLL);
    }
    let produced = producer.wait(Duration::from_secs(60))?.ok("producer")?;
    dataflow.stop(Duration::from_secs(60))?.ok("dataflow")?;
    let produce_end = produce_end.expect("set before the loop ends");
    let sent_rate = serde_json::from_str::<serde_json::Value>(produced.stdout.trim())
        .ok()
        .and_then(|v| v["rate"].as_f64())
        .unwrap_or(f64::NAN);

    // Windows entirely inside the run whose finality the traffic itself (not the idle timeout) decides.
    let first_start = produce_start - produce_start % window_ms + window_ms;
    let last_end = produce_end.saturating_sub(lateness_ms + window_ms);
    let mut after_watermark = Vec::new();
    let mut after_due = Vec::new();
    for ((_, end), &t) in &seen.first_final {
        if *end < first_start + window_ms || *end > last_end {
            continue;
        }
        if let Some(passed) = seen.watermark_passed(*end) {
            after_watermark.push(t as i64 - passed as i64);
        }
        after_due.push(t as i64 - (*end + lateness_ms) as i64);
    }
    let mut live_by_window: BTreeMap<u64, u64> = BTreeMap::new();
    let mut live = Vec::new();
    for ((_, start), &t) in &seen.first_live {
        if *start < first_start || *start + window_ms > last_end {
            continue;
        }
        live.push(t as i64 - *start as i64);
        let w = live_by_window.entry(*start).or_insert(t);
        *w = (*w).min(t);
    }
    let live_any: Vec<i64> = live_by_window
        .iter()
        .map(|(start, t)| *t as i64 - *start as i64)
        .collect();
    let mut csv = String::from("kind,window_ms,delay_ms\n");
    for ((_, end), &t) in &seen.first_final {
        csv += &format!("final_after_due,{end},{}\n", t as i64 - (*end + lateness_ms) as i64);
    }
    for ((_, start), &t) in &seen.first_live {
        csv += &format!("first_live,{start},{}\n", t as i64 - *start as i64);
    }
    std::fs::write(dir.join("delays.csv"), csv)?;
    ctx.keep_file(&dir.join("delays.csv"), &format!("latency-d{}-delays.csv", run.devices))?;
    ensure!(
        !after_due.is_empty(),
        "no window turned final during the run ({} snapshots seen, {} final windows in all, windows ending \
         {first_start}..={last_end} counted, final ends seen {:?}..{:?}); see {} (kept with --keep)",
        seen.snapshots.len(),
        seen.first_final.len(),
        seen.first_final.keys().map(|k| k.1).min(),
        seen.first_final.keys().map(|k| k.1).max(),
        dir.display()
    );

    let setup = format!(
        "{} devices x {} msg/s (sent {}/s), {} s; --window {} --lateness {} --trigger {} --idle-timeout {}; -w {}; poll {} ms",
        run.devices,
        run.rate,
        human(sent_rate),
        run.duration.as_secs(),
        humantime::format_duration(run.window),
        humantime::format_duration(run.lateness),
        humantime::format_duration(run.trigger),
        humantime::format_duration(run.idle_timeout),
        run.workers,
        POLL.as_millis()
    );
    ctx.record(Row::new(
        "latency",
        setup.clone(),
        format!(
            "final after the snapshot whose watermark passed the end: {}; final after end + lateness (wall): {}",
            Spread::describe(Spread::of(after_watermark)),
            Spread::describe(Spread::of(after_due))
        ),
        load,
    ));
    ctx.record(Row::new(
        "latency",
        setup,
        format!(
            "first live after window start: per device {}, any device {}; up to {} records per snapshot",
            Spread::describe(Spread::of(live)),
            Spread::describe(Spread::of(live_any)),
            seen.max_records
        ),
        load,
    ));
    Ok(())
}
