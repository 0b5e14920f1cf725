//! Memory over time: the dataflow runs unbounded on a fresh topic while the producer feeds it at a rate; the
//! job's RSS is sampled every second from `/proc`. Flatness is (max − min) / mean over the second half of the
//! run, once the open windows have filled up to the watermark's reach; the samples go to a CSV beside the logs.
//! With `join`, the job is a SQL job joining each reading, as of its event time, with the simulator's device
//! table (every row changing about once a minute): the table's versions must stay compacted too.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use model::LatestDoc;

use crate::ctx::Ctx;
use crate::input::human;
use crate::kafka::{Topic, paced_producer};
use crate::proc;
use crate::report::{Row, load_average};

/// Parameters of one memory run.
pub struct MemoryRun {
    /// Devices.
    pub devices: u64,
    /// Messages per second per device.
    pub rate: f64,
    /// Producer run time.
    pub duration: Duration,
    /// dataflow -w.
    pub workers: usize,
    /// Extra dataflow flags.
    pub dataflow_args: Vec<String>,
    /// Join the device table (changing every row once a minute) as of event time.
    pub join: bool,
}

/// The built-in job's figures per device, each reading joined with its device's row as of its event time.
const JOIN_JOB: &str = "CREATE TABLE events (
    device_id VARCHAR(64) NOT NULL, ts BIGINT NOT NULL, temperature DOUBLE NOT NULL, humidity DOUBLE NOT NULL,
    battery DOUBLE NOT NULL, status TEXT NOT NULL, location VARCHAR(64) NOT NULL,
    event_time AS TO_TIMESTAMP_LTZ(ts, 3),
    WATERMARK FOR event_time AS event_time - INTERVAL '1' MINUTE
) WITH ('connector' = 'kafka', 'topic' = '{readings}', 'format' = 'json');
CREATE TABLE devices (
    device_id VARCHAR(64), site TEXT, model TEXT, max_temperature DOUBLE, updated_at TIMESTAMP,
    PRIMARY KEY (device_id) NOT ENFORCED, WATERMARK FOR updated_at AS updated_at
) WITH ('connector' = 'upsert-kafka', 'topic' = '{devices}', 'format' = 'json');
SELECT e.device_id, window_start, window_end,
    COUNT(*) AS count, AVG(e.temperature) AS avg_temperature, AVG(e.humidity) AS avg_humidity,
    MIN(e.battery) AS min_battery, MAX(e.battery) AS max_battery, STDDEV_POP(e.temperature) AS stddev_temperature,
    COUNT(*) FILTER (WHERE e.status = 'warn') AS warn_count, COUNT(*) FILTER (WHERE e.status = 'error') AS error_count,
    LAST_VALUE(d.site) AS site, LAST_VALUE(d.max_temperature) AS temperature_limit
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(event_time), INTERVAL '10' SECOND)) AS e
LEFT JOIN devices FOR SYSTEM_TIME AS OF e.event_time AS d ON e.device_id = d.device_id
GROUP BY e.device_id, window_start, window_end;";

struct Sample {
    secs: f64,
    rss_kb: u64,
    events: u64,
    lag: u64,
}

/// How long the job may take, once the producer is done, to show every record sent in its `latest.json`.
const CATCH_UP: Duration = Duration::from_secs(60);

/// The job's last `latest.json`, if there is one to read.
fn read_latest(latest: &std::path::Path) -> Option<LatestDoc> {
    std::fs::read(latest).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

/// Records the job has accounted for (folded, bad or late) in a snapshot.
fn accounted(doc: &LatestDoc) -> u64 {
    doc.pipeline.events_total + doc.pipeline.bad_total + doc.pipeline.late_total
}

/// The `memory` scenario.
pub fn memory(ctx: &Ctx, run: &MemoryRun) -> Result<()> {
    let partitions = 3;
    let topic = Topic::create(&ctx.brokers, "bench-memory", partitions, true)?;
    let dir = ctx.scratch(&format!("memory-d{}", run.devices))?;
    let out = dir.join("aggregates");
    let latest = out.join("latest.json");
    let load = load_average();

    let devices_topic = match run.join {
        true => Some(Topic::create(&ctx.brokers, "bench-memory-devices", partitions, false)?),
        false => None,
    };
    let mut args = run.dataflow_args.clone();
    let input = match &devices_topic {
        Some(devices) => {
            let job = dir.join("join.sql");
            let text = JOIN_JOB
                .replace("{readings}", &topic.name)
                .replace("{devices}", &devices.name);
            std::fs::write(&job, text)?;
            args.extend(["--sql".to_string(), job.display().to_string()]);
            None
        }
        None => Some(topic.name.as_str()),
    };
    let mut dataflow = proc::start_live_job(ctx, &topic.name, input, &args, run.workers, &dir)?;
    let idle_rss = dataflow.rss_kb().map_or(0, |r| r.0);

    let mut cmd = paced_producer(ctx, &topic, partitions, run.devices, run.rate, run.duration);
    if let Some(devices) = &devices_topic {
        // Every device's row changes about once a minute.
        let per_second = run.devices as f64 / 60.0;
        cmd.args([
            "--devices-topic",
            &devices.name,
            "--device-change-rate",
            &per_second.to_string(),
        ]);
    }
    let started = Instant::now();
    let mut producer = Some(proc::spawn(cmd, "producer", &dir)?);
    let mut samples = Vec::new();
    let mut next = Duration::from_secs(1);
    // Samples the job every second while the producer runs, then until its snapshot accounts for every record
    // sent (or `CATCH_UP` has passed): the catch-up's memory counts too, and the job is stopped only then.
    let mut sent = None;
    let mut catch_up_until = None;
    let caught_up = loop {
        if dataflow.has_exited()? {
            bail!(
                "dataflow stopped during the run:\n{}",
                proc::tail(&dir.join("dataflow.err"), 15)
            );
        }
        let exited = match producer.as_mut() {
            Some(p) => p.has_exited()?,
            None => false,
        };
        if exited && let Some(p) = producer.take() {
            let produced = p.wait(Duration::from_secs(60))?.ok("producer")?;
            let summary: serde_json::Value = serde_json::from_str(produced.stdout.trim()).unwrap_or_default();
            sent = Some((
                summary["sent"].as_u64().unwrap_or(0),
                summary["rate"].as_f64().unwrap_or(f64::NAN),
                started.elapsed(),
            ));
            catch_up_until = Some(Instant::now() + CATCH_UP);
        }
        let elapsed = started.elapsed();
        if elapsed >= next {
            next += Duration::from_secs(1);
            let doc = read_latest(&latest);
            if let Some((total, _, done)) = sent
                && doc.as_ref().is_some_and(|d| accounted(d) >= total)
            {
                break Some(elapsed.saturating_sub(done));
            }
            if let Some((rss, _)) = dataflow.rss_kb() {
                samples.push(Sample {
                    secs: elapsed.as_secs_f64(),
                    rss_kb: rss,
                    events: doc.as_ref().map_or(0, |d| d.pipeline.events_total),
                    lag: doc.as_ref().map_or(0, |d| d.pipeline.lag),
                });
            }
        }
        if catch_up_until.is_some_and(|t| Instant::now() >= t) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (sent, sent_rate, _) = sent.unwrap_or((0, f64::NAN, Duration::ZERO));
    let peak_kb = dataflow.rss_kb().map_or(0, |r| r.1);
    let stopped = dataflow.stop(Duration::from_secs(60))?.ok("dataflow")?;
    let doc: LatestDoc =
        serde_json::from_slice(&std::fs::read(&latest).with_context(|| format!("no {}", latest.display()))?)?;

    let mut csv = String::from("secs,rss_kb,events_total,lag\n");
    for s in &samples {
        let _ = writeln!(csv, "{:.1},{},{},{}", s.secs, s.rss_kb, s.events, s.lag);
    }
    std::fs::write(dir.join("rss.csv"), csv)?;
    let csv_path = ctx.keep_file(&dir.join("rss.csv"), &format!("memory-d{}-rss.csv", run.devices))?;

    let half: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.secs >= run.duration.as_secs_f64() / 2.0)
        .collect();
    let caught_up = caught_up.map_or_else(
        || format!("not all shown {} s after the producer ended", CATCH_UP.as_secs()),
        |d| format!("all shown {:.0} s after the producer ended", d.as_secs_f64()),
    );
    ensure!(!half.is_empty(), "no RSS samples in the second half of the run");
    let (min, max) = half
        .iter()
        .fold((u64::MAX, 0), |(lo, hi), s| (lo.min(s.rss_kb), hi.max(s.rss_kb)));
    let mean = half.iter().map(|s| s.rss_kb as f64).sum::<f64>() / half.len() as f64;
    let flatness = (max - min) as f64 / mean;
    let mb = |kb: u64| kb as f64 / 1024.0;
    let lag_end = half.last().map_or(0, |s| s.lag);
    ctx.record(Row::new(
        "memory",
        format!(
            "unbounded{}, {} devices x {} msg/s (sent {}/s), {} s; -w {} {}",
            if run.join {
                ", each reading joined as of its event time with its device's row (every row changing once a minute)"
            } else {
                ""
            },
            run.devices,
            run.rate,
            human(sent_rate),
            run.duration.as_secs(),
            run.workers,
            run.dataflow_args.join(" ")
        ),
        format!(
            "RSS second half {:.0}..{:.0} MB (mean {:.0}), flatness {:.1} %; peak {:.0} MB; idle {:.0} MB; read {} of {} sent ({caught_up}), lag at the last sample {}; join versions held at the end {}; samples in {}",
            mb(min),
            mb(max),
            mean / 1024.0,
            flatness * 100.0,
            mb(peak_kb.max(stopped.max_rss_kb)),
            mb(idle_rss),
            accounted(&doc),
            sent,
            lag_end,
            doc.pipeline.join_versions,
            csv_path.display()
        ),
        load,
    ));
    Ok(())
}
