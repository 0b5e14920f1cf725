//! Command-line flags of the dataflow job and their checks. Bad flags fail before anything starts, with a
//! message that names the flag and the fix. Timely's own cluster flags (`-w -n -p -h`) are parsed here too and
//! turned into a timely configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use crate::sink::parquet::roll::RollPolicy;

mod command_line;
pub mod compact;

/// Where a fresh job starts reading each partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StartAt {
    /// The oldest record still in the topic.
    Earliest,
    /// Only records produced from now on.
    Latest,
}

/// What a job does when a partition's log no longer holds the offset it is to read next (see
/// `source::data_loss`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnDataLoss {
    /// Stop with an error naming the partition, the offsets and the way out (as Spark's `failOnDataLoss`).
    Fail,
    /// Log a warning, count the loss, and go on from the earliest offset that exists.
    Continue,
}

/// Real-time IoT aggregation on timely dataflow: Kafka (or a JSON-lines file) → event-time windows per device
/// (tumbling, hopping or session) → latest.json + Parquet history + dead letters.
#[derive(Parser, Debug, Clone)]
#[command(version, about, disable_help_flag = true)]
pub struct Args {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Worker threads per process.
    #[arg(short = 'w', long = "workers", default_value_t = 1)]
    pub workers: usize,
    /// Number of processes in a cluster.
    #[arg(short = 'n', long = "processes", default_value_t = 1)]
    pub processes: usize,
    /// Index of this process in the cluster (0-based).
    #[arg(short = 'p', long = "process", default_value_t = 0)]
    pub process: usize,
    /// File with one `host:port` per process (default: localhost:2101, 2102, ...).
    #[arg(short = 'h', long = "hostfile")]
    pub hostfile: Option<PathBuf>,
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "localhost:9092")]
    pub brokers: String,
    /// Topic of sensor events.
    #[arg(long, default_value = model::DEFAULT_TOPIC)]
    pub topic: String,
    /// Kafka consumer group (offsets are committed there so lag tools can see them).
    #[arg(long, default_value = "iot-dataflow")]
    pub group: String,
    /// A librdkafka setting for every Kafka client of the job (e.g. security.protocol=SASL_SSL,
    /// queued.max.messages.kbytes=8192); repeatable; overrides the job's own defaults.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    pub kafka_options: Vec<String>,
    /// Window size (tumbling windows; hopping windows with --slide).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub window: Duration,
    /// Hopping windows: a window of --window starts every SLIDE (at most --window; starts are multiples of
    /// SLIDE since the epoch, and an event is in every window that holds it).
    #[arg(long, value_parser = parse_duration, value_name = "SLIDE")]
    pub slide: Option<Duration>,
    /// Session windows per device instead of fixed ones: an event GAP or more after the session's last event
    /// starts a new session; a session is [first event, last event + GAP).
    #[arg(long, value_parser = parse_duration, value_name = "GAP", conflicts_with_all = ["slide", "window"])]
    pub session_gap: Option<Duration>,
    /// How far behind the newest event time of a partition its watermark trails.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub lateness: Duration,
    /// How often the live aggregates of open windows are published (processing time).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub trigger: Duration,
    /// A partition with no records for this long stops holding the watermark back.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Events further ahead of the wall clock than this are bad (`far_future`).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub max_future: Duration,
    /// How often a checkpoint is taken (offsets, watermarks, open windows, the final windows not yet in a
    /// history file), which also commits the Parquet files rolled since the previous one.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub checkpoint_interval: Duration,
    /// Roll policy: the longest a final window waits before it is written to a Parquet file of its device
    /// (checked at each checkpoint; until then it is kept in the checkpoint). A stop and the end of a bounded run
    /// always roll. Files per device per day before compaction: about 1 day / this.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub roll_interval: Duration,
    /// Roll policy: roll at the first checkpoint at which a worker holds this many final windows, whatever
    /// their age (bounds the memory and the checkpoint's carried windows).
    #[arg(long, default_value_t = 50_000, value_name = "N")]
    pub roll_rows: usize,
    /// Compaction: the running job merges each device's history files whose windows all started longer ago
    /// than this into one file per UTC day of window_start (`day-YYYY-MM-DD.parquet`); a pass runs every this
    /// long (at least 10 s, at most an hour apart). `dataflow compact` does the same offline.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub compact_older_than: Duration,
    /// Do not compact the history while running (`dataflow compact --out DIR` can do it later).
    #[arg(long)]
    pub no_compaction: bool,
    /// Output folder: latest.json and parquet/.
    #[arg(long, default_value = "data/aggregates")]
    pub out: PathBuf,
    /// Dead-letter folder (JSON lines).
    #[arg(long, default_value = "data/deadletter")]
    pub deadletter: PathBuf,
    /// Also publish dead letters to this Kafka topic (e.g. iot-metrics-dlq).
    #[arg(long)]
    pub dlq_topic: Option<String>,
    /// Also publish every final window to this Kafka topic (key device_id, value the latest.json record), exactly
    /// once: in Kafka transactions that commit with the checkpoints (read it with isolation.level=read_committed).
    /// Created when missing.
    #[arg(long, value_name = "TOPIC")]
    pub sink_topic: Option<String>,
    /// Partitions of a --sink-topic the job creates [default: those of --topic].
    #[arg(long, value_name = "N", requires = "sink_topic")]
    pub sink_partitions: Option<i32>,
    /// Where a fresh job starts reading.
    #[arg(long, value_enum, default_value_t = StartAt::Earliest)]
    pub start: StartAt,
    /// Read each partition up to the end offsets seen at start (or the file to its end), finalise every window
    /// and exit.
    #[arg(long)]
    pub bounded: bool,
    /// Replay a JSON-lines file instead of reading Kafka (split into byte ranges across workers; implies
    /// --bounded).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Discard the checkpoints in `<out>/_checkpoints` and start over (from `--start`); the Parquet history
    /// already committed is left in place.
    #[arg(long)]
    pub fresh: bool,
    /// When a partition's log no longer holds the offset to read next (records removed by retention before
    /// they were read, the topic deleted and recreated, a checkpoint of another Kafka cluster): `fail` stops
    /// the job naming partition and offsets; `continue` counts the loss (`data_loss_total`,
    /// `skipped_records`) and goes on from the earliest offset that exists.
    #[arg(long, value_enum, default_value_t = OnDataLoss::Fail)]
    pub on_data_loss: OnDataLoss,
    /// Fleet alert: a device's latest final window has a battery below this (percent).
    #[arg(long, default_value_t = 20.0)]
    pub alert_battery_below: f64,
    /// Fleet alert: a device's latest final window has a mean temperature above this (°C).
    #[arg(long, default_value_t = 35.0, allow_negative_numbers = true)]
    pub alert_temperature_above: f64,
    /// Fleet alert: a device's latest final window has a mean temperature below this (°C).
    #[arg(long, default_value_t = 5.0, allow_negative_numbers = true)]
    pub alert_temperature_below: f64,
    /// A UDF crate in Arroyo's `#[udf]` format (repeatable): built (cached), loaded, and its column added to
    /// every window. See udfs/ for examples.
    #[arg(long = "udf", value_name = "DIR")]
    pub udfs: Vec<PathBuf>,
    /// Where UDF crates are built and their libraries cached [default: ~/.cache/iot-pipeline/udf].
    #[arg(long, env = "IOT_UDF_CACHE", value_name = "DIR")]
    pub udf_cache: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (expected e.g. 500ms, 10s, 1m, 1h)"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The topic final windows are published to, exactly once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkTopic {
    /// Its name.
    pub topic: String,
    /// Partitions when the job creates it (`None`: as many as the input topic).
    pub partitions: Option<i32>,
}

/// The checked job settings every worker shares.
#[derive(Clone, Debug)]
pub struct JobConfig {
    /// The window kind and its sizes.
    pub window: model::WindowKind,
    /// Lateness, ms.
    pub lateness_ms: u64,
    /// Live publication interval.
    pub trigger: Duration,
    /// Idle timeout of a partition.
    pub idle_timeout: Duration,
    /// Max future, ms.
    pub max_future_ms: u64,
    /// Checkpoint interval.
    pub checkpoint_interval: Duration,
    /// When history files are rolled.
    pub roll: RollPolicy,
    /// History older than this is compacted by the running job (`None`: `--no-compaction`).
    pub compact_older_than: Option<Duration>,
    /// Output folder.
    pub out: PathBuf,
    /// Dead-letter folder.
    pub deadletter: PathBuf,
    /// Optional dead-letter topic.
    pub dlq_topic: Option<String>,
    /// The Kafka output of final windows (`--sink-topic`, `--sink-partitions`).
    pub sink: Option<SinkTopic>,
    /// Kafka settings.
    pub brokers: String,
    /// Events topic.
    pub topic: String,
    /// Consumer group.
    pub group: String,
    /// Extra librdkafka settings (`--kafka-option`), applied after the job's defaults.
    pub kafka_options: Vec<(String, String)>,
    /// Fresh start position.
    pub start: StartAt,
    /// Stop at the end offsets seen at start.
    pub bounded: bool,
    /// Replay file instead of Kafka.
    pub input: Option<PathBuf>,
    /// Fleet alert thresholds.
    pub thresholds: crate::fleet::Thresholds,
    /// Discard checkpoints and start over.
    pub fresh: bool,
    /// What a lost offset does (`--on-data-loss`).
    pub on_data_loss: OnDataLoss,
    /// The Kafka cluster id of `--brokers`, recorded in each checkpoint (`None`: file input, or not known).
    /// Set on start, once the broker answered.
    pub cluster_id: Option<String>,
    /// Identifies this run in file names (process start time, ms).
    pub run: u64,
    /// The loaded UDFs (`--udf`), shared by every worker of the process.
    pub udfs: std::sync::Arc<crate::udf::Udfs>,
}

impl JobConfig {
    /// A librdkafka client configuration for `--brokers` with `defaults` set first and every `--kafka-option`
    /// after them, so the user's settings win.
    pub fn kafka_client(&self, defaults: &[(&str, &str)]) -> rdkafka::ClientConfig {
        let mut client = rdkafka::ClientConfig::new();
        client.set("bootstrap.servers", &self.brokers);
        for (k, v) in defaults {
            client.set(*k, *v);
        }
        for (k, v) in &self.kafka_options {
            client.set(k, v);
        }
        client
    }
}

impl Args {
    /// Checks every flag; the error names the flag and the fix.
    pub fn check(&self) -> Result<JobConfig> {
        let window = self.window_kind()?;
        if self.trigger.is_zero() {
            bail!("--trigger must be a positive duration such as 5s (got 0)");
        }
        if self.checkpoint_interval.is_zero() {
            bail!("--checkpoint-interval must be a positive duration such as 30s (got 0)");
        }
        if self.roll_rows == 0 {
            bail!("--roll-rows must be at least 1 (e.g. 50000); use --roll-interval 0s to roll at every checkpoint");
        }
        for (flag, v) in [
            ("--alert-battery-below", self.alert_battery_below),
            ("--alert-temperature-above", self.alert_temperature_above),
            ("--alert-temperature-below", self.alert_temperature_below),
        ] {
            if !v.is_finite() {
                bail!("{flag} must be a number, got {v}");
            }
        }
        if self.workers == 0 {
            bail!("-w/--workers must be at least 1");
        }
        if self.processes == 0 || self.process >= self.processes {
            bail!(
                "-p/--process must be below -n/--processes ({} given for {} processes)",
                self.process,
                self.processes
            );
        }
        if let Some(input) = &self.input
            && !input.is_file()
        {
            bail!("--input {} is not a readable file", input.display());
        }
        let mut kafka_options = Vec::new();
        for option in &self.kafka_options {
            match option.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => kafka_options.push((k.trim().to_string(), v.to_string())),
                _ => bail!(
                    "--kafka-option must be KEY=VALUE with a librdkafka setting as KEY (e.g. \
                     queued.max.messages.kbytes=8192), got {option:?}"
                ),
            }
        }
        let sink = self.sink_topic()?;
        ensure_writable(&self.out, "--out")?;
        ensure_writable(&self.deadletter, "--deadletter")?;
        for dir in &self.udfs {
            if !dir.is_dir() {
                bail!(
                    "--udf {} is not a folder; pass the folder of a UDF crate (see udfs/)",
                    dir.display()
                );
            }
        }
        let cache = self
            .udf_cache
            .clone()
            .unwrap_or_else(crate::udf::compile::default_cache);
        let udfs = std::sync::Arc::new(crate::udf::Udfs::load(&self.udfs, &cache)?);
        Ok(JobConfig {
            window,
            lateness_ms: millis(self.lateness),
            trigger: self.trigger,
            idle_timeout: self.idle_timeout,
            max_future_ms: millis(self.max_future),
            checkpoint_interval: self.checkpoint_interval,
            roll: RollPolicy {
                interval: self.roll_interval,
                max_rows: self.roll_rows,
            },
            compact_older_than: (!self.no_compaction).then_some(self.compact_older_than),
            out: self.out.clone(),
            deadletter: self.deadletter.clone(),
            dlq_topic: self.dlq_topic.clone(),
            sink,
            brokers: self.brokers.clone(),
            topic: self.topic.clone(),
            group: self.group.clone(),
            kafka_options,
            start: self.start,
            bounded: self.bounded || self.input.is_some(),
            input: self.input.clone(),
            fresh: self.fresh,
            on_data_loss: self.on_data_loss,
            cluster_id: None,
            run: model::time::now_ms(),
            thresholds: crate::fleet::Thresholds {
                battery_below: self.alert_battery_below,
                temperature_above: self.alert_temperature_above,
                temperature_below: self.alert_temperature_below,
            },
            udfs,
        })
    }

    /// The Kafka output of `--sink-topic` and `--sink-partitions`, checked.
    fn sink_topic(&self) -> Result<Option<SinkTopic>> {
        let Some(topic) = &self.sink_topic else {
            return Ok(None);
        };
        if topic.trim().is_empty() {
            bail!("--sink-topic needs a topic name, e.g. --sink-topic iot-aggregates");
        }
        if self.input.is_some() {
            bail!(
                "--sink-topic publishes with the checkpoints, which a file replay (--input) does not take: read the \
                 events from Kafka (--topic), or leave out --sink-topic"
            );
        }
        if *topic == self.topic || self.dlq_topic.as_ref() == Some(topic) {
            bail!("--sink-topic {topic} is also the job's input or dead-letter topic: pass another topic");
        }
        if let Some(n) = self.sink_partitions
            && n < 1
        {
            bail!("--sink-partitions must be at least 1 (got {n})");
        }
        Ok(Some(SinkTopic {
            topic: topic.clone(),
            partitions: self.sink_partitions,
        }))
    }

    /// The window kind of `--window`, `--slide` and `--session-gap`, checked.
    pub fn window_kind(&self) -> Result<model::WindowKind> {
        use model::window_kind::KindError;
        let kind = match (self.slide, self.session_gap) {
            (Some(_), Some(_)) => bail!("--slide and --session-gap exclude each other: pass one of them"),
            (None, Some(gap)) => model::WindowKind::session(millis(gap)),
            (Some(slide), None) => {
                model::Hopping::new(millis(self.window), millis(slide)).map(model::WindowKind::Hopping)
            }
            (None, None) => model::WindowKind::tumbling(millis(self.window)),
        };
        kind.map_err(|e| match e {
            KindError::Zero(flag) => anyhow::anyhow!("{flag} must be a positive duration such as 10s (got 0)"),
            KindError::SlideTooLong { .. } => {
                anyhow::anyhow!("{e}: pass a shorter --slide, or a longer --window (for one window per slide)")
            }
        })
    }

    /// The timely communication configuration for `-w -n -p -h`.
    pub fn timely_config(&self) -> Result<timely::Config> {
        use timely::CommunicationConfig;
        let communication = if self.processes > 1 {
            let addresses = match &self.hostfile {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read -h/--hostfile {}", path.display()))?;
                    let hosts: Vec<String> = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .take(self.processes)
                        .map(String::from)
                        .collect();
                    if hosts.len() < self.processes {
                        bail!(
                            "-h/--hostfile {} lists {} addresses but -n is {}",
                            path.display(),
                            hosts.len(),
                            self.processes
                        );
                    }
                    hosts
                }
                None => (0..self.processes).map(|i| format!("localhost:{}", 2101 + i)).collect(),
            };
            CommunicationConfig::Cluster {
                threads: self.workers,
                process: self.process,
                addresses,
                report: false,
                zerocopy: false,
            }
        } else if self.workers > 1 {
            CommunicationConfig::Process(self.workers)
        } else {
            CommunicationConfig::Thread
        };
        Ok(timely::Config {
            communication,
            worker: timely::WorkerConfig::default(),
        })
    }
}

fn ensure_writable(dir: &Path, flag: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {flag} folder {}", dir.display()))?;
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| {
        format!(
            "{flag} folder {} is not writable: pick another with {flag}",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("dataflow").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_design() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.window, Duration::from_secs(10));
        assert_eq!(a.lateness, Duration::from_secs(60));
        assert_eq!(a.trigger, Duration::from_secs(5));
        assert_eq!(a.idle_timeout, Duration::from_secs(30));
        assert_eq!(a.max_future, Duration::from_secs(3600));
        assert_eq!(a.topic, "iot-metrics");
        assert_eq!(a.group, "iot-dataflow");
        assert_eq!(a.workers, 1);
        assert_eq!(
            a.on_data_loss,
            OnDataLoss::Fail,
            "a lost offset stops the job unless told otherwise"
        );
    }

    #[test]
    fn timely_short_flags_are_accepted() {
        let a = parse(&["-w", "3", "-n", "2", "-p", "1"]).unwrap();
        assert_eq!((a.workers, a.processes, a.process), (3, 2, 1));
    }

    #[test]
    fn zero_window_is_refused_naming_the_flag() {
        let tmp = std::env::temp_dir().join("dataflow-config-test");
        let a = parse(&["--window", "0s", "--out", tmp.to_str().unwrap()]).unwrap();
        assert!(a.check().unwrap_err().to_string().contains("--window"));
    }

    #[test]
    fn window_kinds_follow_slide_and_session_gap() {
        let kind = |args: &[&str]| parse(args).unwrap().window_kind();
        assert_eq!(kind(&[]).unwrap(), model::WindowKind::Tumbling { size_ms: 10_000 });
        assert_eq!(
            kind(&["--window", "30s", "--slide", "10s"]).unwrap(),
            model::WindowKind::Hopping(model::Hopping::new(30_000, 10_000).unwrap())
        );
        assert_eq!(
            kind(&["--session-gap", "5s"]).unwrap(),
            model::WindowKind::Session { gap_ms: 5_000 }
        );
        let long = kind(&["--window", "10s", "--slide", "20s"]).unwrap_err().to_string();
        assert!(long.contains("--slide") && long.contains("--window"), "{long}");
        assert!(kind(&["--slide", "0s"]).unwrap_err().to_string().contains("--slide"));
        assert!(
            kind(&["--session-gap", "0s"])
                .unwrap_err()
                .to_string()
                .contains("--session-gap")
        );
    }

    #[test]
    fn sink_topic_is_checked_before_anything_starts() {
        let sink = |args: &[&str]| parse(args).unwrap().sink_topic();
        assert_eq!(sink(&[]).unwrap(), None);
        assert_eq!(
            sink(&["--sink-topic", "out", "--sink-partitions", "6"]).unwrap(),
            Some(SinkTopic {
                topic: "out".into(),
                partitions: Some(6)
            })
        );
        let same = sink(&["--sink-topic", "iot-metrics"]).unwrap_err().to_string();
        assert!(same.contains("input or dead-letter topic"), "{same}");
        let file = std::env::temp_dir().join("dataflow-config-sink.jsonl");
        std::fs::write(&file, "").unwrap();
        let replay = sink(&["--sink-topic", "out", "--input", file.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(
            replay.contains("--input") && replay.contains("--sink-topic"),
            "{replay}"
        );
        assert!(sink(&["--sink-topic", "out", "--sink-partitions", "0"]).is_err());
        assert!(
            parse(&["--sink-partitions", "3"]).is_err(),
            "--sink-partitions needs --sink-topic"
        );
    }

    #[test]
    fn session_gap_excludes_slide_and_window_naming_both_flags() {
        for other in [["--slide", "1s"], ["--window", "1m"]] {
            let err = parse(&["--session-gap", "5s", other[0], other[1]])
                .unwrap_err()
                .to_string();
            assert!(err.contains("--session-gap") && err.contains(other[0]), "{err}");
        }
    }

    #[test]
    fn lateness_that_is_not_a_duration_is_refused() {
        let err = parse(&["--lateness", "soon"]).unwrap_err().to_string();
        assert!(err.contains("--lateness"), "{err}");
    }

    #[test]
    fn process_index_must_be_below_process_count() {
        let a = parse(&["-n", "2", "-p", "2"]).unwrap();
        assert!(a.check().unwrap_err().to_string().contains("-p/--process"));
    }

    #[test]
    fn kafka_options_override_the_job_defaults_and_must_be_key_value() {
        let tmp = std::env::temp_dir().join("dataflow-config-kafka-option");
        let (out, dead) = (tmp.join("out"), tmp.join("dead"));
        let base = ["--out", out.to_str().unwrap(), "--deadletter", dead.to_str().unwrap()];
        let with = |extra: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            parse(&args).unwrap().check()
        };
        let config = with(&[
            "--kafka-option",
            "queued.min.messages=5",
            "--kafka-option",
            "client.rack=r1",
        ])
        .unwrap();
        let client = config.kafka_client(&[("queued.min.messages", "20000")]);
        assert_eq!(client.get("queued.min.messages"), Some("5"));
        assert_eq!(client.get("client.rack"), Some("r1"));
        assert_eq!(client.get("bootstrap.servers"), Some("localhost:9092"));
        let err = with(&["--kafka-option", "queued.min.messages"]).unwrap_err();
        assert!(err.to_string().contains("--kafka-option must be KEY=VALUE"), "{err}");
        assert!(with(&["--kafka-option", "=1"]).is_err());
    }
}
