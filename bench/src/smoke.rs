//! `smoke`: every scenario at a tiny size, as a check that the benchmarks still run (under a minute). It fails
//! when a scenario fails — a binary that will not start, a run that loses records, no window turning final —
//! and never on a speed figure. When no broker answers at `--brokers`, it starts the local one with
//! `infra/kafka.sh start` and stops it again at the end.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::ctx::{Ctx, workspace_root};
use crate::input::InputSpec;
use crate::{history, kafka, latency, memory, replay, sql, udf};

/// Stops the broker it started, when dropped.
struct StartedBroker(Option<String>);

impl Drop for StartedBroker {
    fn drop(&mut self) {
        if let Some(port) = self.0.take() {
            let _ = Command::new("bash")
                .arg(workspace_root().join("infra/kafka.sh"))
                .arg("stop")
                .env("KAFKA_PORT", port)
                .status();
        }
    }
}

fn ensure_broker(brokers: &str) -> Result<StartedBroker> {
    if kafka::reachable(brokers) {
        return Ok(StartedBroker(None));
    }
    let port = brokers.rsplit_once(':').map_or("9092", |(_, p)| p).to_string();
    println!("smoke: no broker at {brokers}; starting one with infra/kafka.sh (port {port})");
    let status = Command::new("bash")
        .arg(workspace_root().join("infra/kafka.sh"))
        .arg("start")
        .env("KAFKA_PORT", &port)
        .env("KAFKA_DEFAULT_TOPICS", "")
        .status()?;
    let started = StartedBroker(Some(port));
    if !status.success() || !kafka::reachable(brokers) {
        bail!("cannot start a broker at {brokers} with infra/kafka.sh ({status})");
    }
    Ok(started)
}

/// Runs every scenario small; fails if any failed.
pub fn smoke(ctx: &Ctx) -> Result<()> {
    let began = Instant::now();
    let spec = InputSpec {
        events: 20_000,
        devices: 50,
        rate: 10_000.0,
        bad_fraction: 0.01,
        seed: 7,
    };
    let mut failed = Vec::new();
    let mut step = |name: &str, f: &dyn Fn() -> Result<()>| {
        let t = Instant::now();
        match f() {
            Ok(()) => println!("SMOKE ok     {name} ({:.1} s)", t.elapsed().as_secs_f64()),
            Err(e) => {
                println!("SMOKE FAILED {name}: {e:#}");
                failed.push(name.to_string());
            }
        }
    };
    step("core", &|| replay::core(ctx, &spec, 20_000, 1));
    step("replay", &|| replay::replay(ctx, &spec, &[1, 2], true, 1));
    step("udf", &|| udf::udf(ctx, &spec, 2, 1));
    step("sql", &|| sql::sql(ctx, &spec, 2, 1));
    step("history", &|| {
        let run = history::HistoryRun {
            files: 200,
            rows_per_file: 3,
            limit: 360,
            repeat: 3,
        };
        history::history(ctx, &run)
    });
    let broker = ensure_broker(&ctx.brokers);
    match &broker {
        Ok(_) => {
            step("kafka", &|| {
                kafka::kafka(
                    ctx,
                    &kafka::KafkaRun {
                        events: 20_000,
                        devices: 50,
                        partitions: 3,
                        workers: vec![2],
                        cluster: false,
                        sink: true,
                        repeat: 1,
                        dataflow_args: Vec::new(),
                    },
                )
            });
            step("latency", &|| {
                latency::latency(
                    ctx,
                    &latency::LatencyRun {
                        devices: 8,
                        rate: 20.0,
                        duration: Duration::from_secs(5),
                        window: Duration::from_millis(500),
                        lateness: Duration::from_millis(250),
                        trigger: Duration::from_millis(200),
                        idle_timeout: Duration::from_millis(500),
                        workers: 2,
                    },
                )
            });
            step("memory", &|| {
                memory::memory(
                    ctx,
                    &memory::MemoryRun {
                        devices: 200,
                        rate: 10.0,
                        duration: Duration::from_secs(4),
                        workers: 1,
                        dataflow_args: vec!["--trigger=500ms".into()],
                        join: false,
                    },
                )
            });
            step("memory (temporal join)", &|| {
                memory::memory(
                    ctx,
                    &memory::MemoryRun {
                        devices: 200,
                        rate: 10.0,
                        duration: Duration::from_secs(4),
                        workers: 1,
                        // Once the producer stops, its device table goes quiet: idle after 2 s, not 30.
                        dataflow_args: vec!["--trigger=500ms".into(), "--idle-timeout=2s".into()],
                        join: true,
                    },
                )
            });
        }
        Err(e) => {
            println!("SMOKE FAILED kafka, latency, memory: {e:#}");
            failed.push("broker".into());
        }
    }
    drop(broker);
    println!("smoke: {} failed, {:.1} s", failed.len(), began.elapsed().as_secs_f64());
    if !failed.is_empty() {
        bail!("smoke failed: {}", failed.join(", "));
    }
    Ok(())
}
