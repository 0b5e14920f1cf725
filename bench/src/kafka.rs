//! The Kafka scenario and the broker chores the live scenarios share: a fresh topic per run (deleted again when
//! its guard is dropped, so repeated runs do not fill the broker's disk), pre-filling it with the real
//! `producer --rate 0`, and timing `dataflow --bounded` on it for each worker count.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::ctx::Ctx;
use crate::input::human;
use crate::proc::{self, Finished};
use crate::replay::{self, Layout, best_and_median};
use crate::report::{Row, load_average};

/// Whether a broker answers at `brokers` within a few seconds.
pub fn reachable(brokers: &str) -> bool {
    let consumer: Result<BaseConsumer, _> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("log_level", "0")
        .create();
    consumer.is_ok_and(|c| c.fetch_metadata(None, Duration::from_secs(5)).is_ok())
}

fn admin(brokers: &str) -> Result<AdminClient<DefaultClientContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .with_context(|| format!("invalid Kafka settings for --brokers {brokers}"))
}

/// A topic made for one run; deleted when dropped.
pub struct Topic {
    brokers: String,
    /// Its name.
    pub name: String,
}

impl Topic {
    /// Creates `<prefix>-<pid>-<ms>` with `partitions` partitions. `short_retention` keeps a long live run from
    /// filling the disk (segments of 64 MiB, deleted after 2 minutes).
    pub fn create(brokers: &str, prefix: &str, partitions: i32, short_retention: bool) -> Result<Topic> {
        if !reachable(brokers) {
            bail!("cannot reach Kafka at {brokers} (--brokers): start one with `bash infra/kafka.sh start`");
        }
        let name = format!("{prefix}-{}-{}", std::process::id(), model::time::now_ms());
        let mut new = NewTopic::new(&name, partitions, TopicReplication::Fixed(1));
        if short_retention {
            new = new.set("retention.ms", "120000").set("segment.bytes", "67108864");
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = futures_executor::block_on(admin(brokers)?.create_topics([&new], &opts))
            .with_context(|| format!("creating topic {name} on {brokers}"))?;
        for r in results {
            r.map_err(|(t, code)| anyhow!("cannot create topic {t} on {brokers}: {code}"))?;
        }
        // Metadata can lag creation by a moment.
        let probe: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
        for _ in 0..100 {
            let md = probe.fetch_metadata(Some(&name), Duration::from_secs(5));
            if md.is_ok_and(|m| {
                m.topics()
                    .iter()
                    .any(|t| t.error().is_none() && t.partitions().len() == partitions as usize)
            }) {
                return Ok(Topic {
                    brokers: brokers.to_string(),
                    name,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("topic {name} was created but does not show in the metadata of {brokers}")
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        let Ok(admin) = admin(&self.brokers) else {
            return;
        };
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let _ = futures_executor::block_on(admin.delete_topics(&[&self.name], &opts));
    }
}

/// Producer arguments for `topic`.
pub fn producer_args(ctx: &Ctx, topic: &Topic, partitions: i32, devices: u64) -> Vec<String> {
    vec![
        "--brokers".into(),
        ctx.brokers.clone(),
        "--topic".into(),
        topic.name.clone(),
        "--partitions".into(),
        partitions.to_string(),
        "--devices".into(),
        devices.to_string(),
        "--progress-every".into(),
        "60s".into(),
    ]
}

/// A producer command for `topic` at `rate` messages per second per device, for `duration`.
pub fn paced_producer(
    ctx: &Ctx,
    topic: &Topic,
    partitions: i32,
    devices: u64,
    rate: f64,
    duration: Duration,
) -> std::process::Command {
    let mut cmd = ctx.command("producer");
    cmd.args(producer_args(ctx, topic, partitions, devices))
        .args(["--rate", &rate.to_string()])
        .arg(format!("--duration={}", humantime::format_duration(duration)));
    cmd
}

/// Fills `topic` with `events` records as fast as the broker takes them.
pub fn prefill(ctx: &Ctx, topic: &Topic, partitions: i32, events: u64, devices: u64) -> Result<Finished> {
    let mut cmd = ctx.command("producer");
    cmd.args(producer_args(ctx, topic, partitions, devices))
        .args(["--rate", "0", "--count", &events.to_string()]);
    let logs = ctx.scratch("kafka-prefill")?;
    proc::spawn(cmd, "producer", &logs)?
        .wait(Duration::from_secs(3600))?
        .ok("producer")
}

/// Parameters of the `kafka` scenario.
pub struct KafkaRun {
    /// Records pre-filled.
    pub events: u64,
    /// Devices.
    pub devices: usize,
    /// Partitions of the topic.
    pub partitions: i32,
    /// Worker counts.
    pub workers: Vec<usize>,
    /// Also 2 processes x 1 worker.
    pub cluster: bool,
    /// Also each layout with `--sink-topic`, alternated with runs without it.
    pub sink: bool,
    /// Repetitions.
    pub repeat: usize,
    /// Extra dataflow flags.
    pub dataflow_args: Vec<String>,
}

/// The `kafka` scenario.
pub fn kafka(ctx: &Ctx, run: &KafkaRun) -> Result<()> {
    let topic = Topic::create(&ctx.brokers, "bench-kafka", run.partitions, false)?;
    let load = load_average();
    let filled = prefill(ctx, &topic, run.partitions, run.events, run.devices as u64)?;
    ctx.record(Row::new(
        "kafka",
        format!(
            "producer --rate 0 --count {} --devices {} into a fresh {}-partition topic",
            run.events, run.devices, run.partitions
        ),
        format!(
            "pre-fill {}/s; wall {:.2} s",
            human(run.events as f64 / filled.wall.as_secs_f64()),
            filled.wall.as_secs_f64()
        ),
        load,
    ));
    let mut layouts: Vec<Layout> = run
        .workers
        .iter()
        .map(|&w| Layout {
            processes: 1,
            workers: w,
        })
        .collect();
    if run.cluster {
        layouts.push(Layout {
            processes: 2,
            workers: 1,
        });
    }
    for layout in layouts {
        let mut runs = Vec::new();
        let mut sunk = Vec::new();
        for i in 0..run.repeat.max(1) {
            let name = format!("{}x{}-{i}", layout.processes, layout.workers);
            let mut args: Vec<String> = vec![
                "--brokers".into(),
                ctx.brokers.clone(),
                "--topic".into(),
                topic.name.clone(),
                "--group".into(),
                format!("{}-{name}", topic.name),
                "--bounded".into(),
            ];
            args.extend(run.dataflow_args.iter().cloned());
            runs.push(replay::run_job(
                ctx,
                &format!("kafka-{name}"),
                layout,
                &args,
                run.events,
            )?);
            if run.sink {
                let sink = Topic::create(&ctx.brokers, "bench-sink", run.partitions, false)?;
                let mut args = args.clone();
                args[5] = format!("{}-sink-{name}", topic.name);
                args.extend(["--sink-topic".into(), sink.name.clone()]);
                sunk.push(replay::run_job(
                    ctx,
                    &format!("kafka-sink-{name}"),
                    layout,
                    &args,
                    run.events,
                )?);
            }
        }
        if run.sink {
            let (plain, _) = best_and_median(runs.clone());
            let (best, median) = best_and_median(sunk);
            ctx.record(Row::new(
                "kafka",
                format!(
                    "dataflow --bounded --sink-topic (exactly-once Kafka output), {}; {} events, {} devices, {} \
                     partitions; alternated with the runs without",
                    layout.describe(),
                    human(run.events as f64),
                    run.devices,
                    run.partitions
                ),
                format!(
                    "{}; best {:.3}x the best without",
                    replay::figures(run.events, &best, &median),
                    best.rate(run.events) / plain.rate(run.events)
                ),
                best.load,
            ));
        }
        let (best, median) = best_and_median(runs);
        let extra: String = run.dataflow_args.iter().map(|a| format!("{a} ")).collect();
        let busy = layout.processes * layout.workers;
        let limit = if busy > run.partitions as usize {
            format!("; only {} of {busy} workers own a partition", run.partitions)
        } else if !(run.partitions as usize).is_multiple_of(busy) {
            format!(
                "; {} partitions over {busy} workers: the busiest owns {}",
                run.partitions,
                (run.partitions as usize).div_ceil(busy)
            )
        } else {
            String::new()
        };
        ctx.record(Row::new(
            "kafka",
            format!(
                "dataflow --bounded {}from the local broker, {}; {} events, {} devices, {} partitions",
                extra,
                layout.describe(),
                human(run.events as f64),
                run.devices,
                run.partitions
            ),
            format!(
                "{}/s best, {}/s median; wall {:.2} s (includes connect and metadata); peak RSS {:.0} MB; CPU {:.2} s{limit}",
                human(best.rate(run.events)),
                human(median.rate(run.events)),
                best.wall.as_secs_f64(),
                best.max_rss_kb as f64 / 1024.0,
                best.cpu.as_secs_f64()
            ),
            best.load,
        ));
    }
    Ok(())
}
