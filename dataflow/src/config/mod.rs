//! Command-line flags of the dataflow job and their checks. [`Args::check`] turns the flags into the job's
//! [`Settings`] with no side effect: no folder is made, no file read, no UDF built, no broker asked (that is
//! `job::prepare`, which also plans the query). Bad flags fail before anything starts, with a message that names
//! the flag and the fix. Timely's own cluster flags (`-w -n -p -h`) are parsed here too.
//!
//! The flags that describe the query (`--window`, `--slide`, `--session-gap`, `--lateness`, `--topic`) make the
//! built-in job; with `--sql` the file says all of that, and they are refused naming the clause to edit. The
//! connection flags (`--brokers`, `--group`, `--start`, `--kafka-option`, `--input`) win over the file's
//! `WITH` options, so one file runs against any cluster.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Parser;

use crate::fleet::Thresholds;
use crate::job::{ClusterSettings, Connection, QuerySource, Settings, SinkTopic, SourceRules};
use crate::sink::parquet::roll::RollPolicy;
pub use crate::source::{OnDataLoss, StartAt};
use crate::udf::UdfSources;

pub mod cluster;
mod command_line;
pub mod compact;
pub mod sql;

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
    /// A cluster: how long a process waits at start for every other process to answer (each address is tried
    /// every second, and logged) before it stops with exit status 4.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// A cluster: a process from which no heartbeat arrived for this long (it is stopped, hung or cut off) is
    /// lost, and every other process stops with exit status 3 (a closed connection is noticed at once).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub peer_timeout: Duration,
    /// Serve /healthz and /readyz on this address (e.g. 0.0.0.0:9250) for an orchestrator's probes: /healthz
    /// answers 503 once this process's frontier has not moved for --stall-timeout (`dataflow cluster` gives
    /// process i the port + i).
    #[arg(long, value_name = "HOST:PORT")]
    pub health_addr: Option<std::net::SocketAddr>,
    /// How long the frontier may stand still before /healthz reports a stall.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub stall_timeout: Duration,
    /// Restarts of the cluster so far, shown in latest.json (set by `dataflow cluster` when it restarts the
    /// processes).
    #[arg(long, default_value_t = 0, hide = true)]
    pub restarts: u64,
    /// The job as one SQL file: a CREATE TABLE (schema, event time and watermark, connector) and a windowed
    /// SELECT ... GROUP BY (see docs/SQL.md; `dataflow sql --print-default` prints the built-in job). Without
    /// it the job is the built-in one, shaped by --window, --slide, --session-gap, --lateness and --topic.
    #[arg(long, value_name = "FILE")]
    pub sql: Option<PathBuf>,
    /// Kafka bootstrap servers; wins over the file's 'properties.bootstrap.servers' [default: localhost:9092].
    #[arg(long)]
    pub brokers: Option<String>,
    /// Topic of sensor events (the built-in job; a --sql file names its 'topic') [default: iot-metrics].
    #[arg(long)]
    pub topic: Option<String>,
    /// Kafka consumer group (offsets are committed there so lag tools can see them); wins over the file's
    /// 'properties.group.id' [default: iot-dataflow].
    #[arg(long)]
    pub group: Option<String>,
    /// A librdkafka setting for every Kafka client of the job (e.g. security.protocol=SASL_SSL,
    /// queued.max.messages.kbytes=8192); repeatable; overrides the job's own defaults.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    pub kafka_options: Vec<String>,
    /// Window size of the built-in job (tumbling windows; hopping windows with --slide) [default: 10s].
    #[arg(long, value_parser = parse_duration)]
    pub window: Option<Duration>,
    /// Hopping windows: a window of --window starts every SLIDE (at most --window; starts are multiples of
    /// SLIDE since the epoch, and an event is in every window that holds it).
    #[arg(long, value_parser = parse_duration, value_name = "SLIDE")]
    pub slide: Option<Duration>,
    /// Session windows per device instead of fixed ones: an event GAP or more after the session's last event
    /// starts a new session; a session is [first event, last event + GAP).
    #[arg(long, value_parser = parse_duration, value_name = "GAP", conflicts_with_all = ["slide", "window"])]
    pub session_gap: Option<Duration>,
    /// How far behind the newest event time of a partition its watermark trails (the built-in job; a --sql
    /// file's WATERMARK clause says it) [default: 1m].
    #[arg(long, value_parser = parse_duration)]
    pub lateness: Option<Duration>,
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
    /// Where a fresh job starts reading; wins over the file's 'scan.startup.mode' [default: earliest].
    #[arg(long, value_enum)]
    pub start: Option<StartAt>,
    /// Read each partition up to the end offsets seen at start (or the file to its end), finalise every window
    /// and exit.
    #[arg(long)]
    pub bounded: bool,
    /// Replay a JSON-lines file instead of reading Kafka (split into byte ranges across workers; implies
    /// --bounded); wins over the file's connector.
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

/// The built-in job's window kind of `--window`, `--slide` and `--session-gap`, checked.
pub fn window_kind(
    window: Option<Duration>,
    slide: Option<Duration>,
    session_gap: Option<Duration>,
) -> Result<model::WindowKind> {
    use model::window_kind::KindError;
    let window = millis(window.unwrap_or(DEFAULT_WINDOW));
    let kind = match (slide, session_gap) {
        (Some(_), Some(_)) => bail!("--slide and --session-gap exclude each other: pass one of them"),
        (None, Some(gap)) => model::WindowKind::session(millis(gap)),
        (Some(slide), None) => model::Hopping::new(window, millis(slide)).map(model::WindowKind::Hopping),
        (None, None) => model::WindowKind::tumbling(window),
    };
    kind.map_err(|e| match e {
        KindError::Zero(flag) => anyhow::anyhow!("{flag} must be a positive duration such as 10s (got 0)"),
        KindError::SlideTooLong { .. } => {
            anyhow::anyhow!("{e}: pass a shorter --slide, or a longer --window (for one window per slide)")
        }
    })
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (expected e.g. 500ms, 10s, 1m, 1h)"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The built-in job of `window`, `lateness` and `topic` (their defaults when not given).
pub fn builtin(window: model::WindowKind, lateness: Option<Duration>, topic: Option<String>) -> Result<QuerySource> {
    Ok(QuerySource::Builtin {
        window,
        lateness_ms: millis(lateness.unwrap_or(DEFAULT_LATENESS)),
        topic: topic.unwrap_or_else(|| DEFAULT_TOPIC.to_string()),
    })
}

/// The default topic of the built-in job.
pub const DEFAULT_TOPIC: &str = model::DEFAULT_TOPIC;
/// The default window of the built-in job.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// The default lateness of the built-in job.
pub const DEFAULT_LATENESS: Duration = Duration::from_secs(60);

impl Args {
    /// Checks every flag and returns the job's settings; the error names the flag and the fix. Nothing outside
    /// the process is touched (see `job::prepare` for what is).
    pub fn check(&self) -> Result<Settings> {
        let query = self.query_source()?;
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
        if self.peer_timeout < 4 * crate::cluster::liveness::HEARTBEAT {
            bail!(
                "--peer-timeout must be at least {} (heartbeats are sent every {}), got {}",
                humantime::format_duration(4 * crate::cluster::liveness::HEARTBEAT),
                humantime::format_duration(crate::cluster::liveness::HEARTBEAT),
                humantime::format_duration(self.peer_timeout)
            );
        }
        if self.processes == 0 || self.process >= self.processes {
            bail!(
                "-p/--process must be below -n/--processes ({} given for {} processes)",
                self.process,
                self.processes
            );
        }
        Ok(Settings {
            cluster: ClusterSettings {
                workers: self.workers,
                processes: self.processes,
                process: self.process,
                hostfile: self.hostfile.clone(),
                connect_timeout: self.connect_timeout,
                peer_timeout: self.peer_timeout,
                restarts: self.restarts,
                health_addr: self.health_addr,
                stall_timeout: self.stall_timeout,
            },
            query,
            connection: Connection {
                brokers: self.brokers.clone(),
                options: self.kafka_options()?,
                group: self.group.clone(),
                start: self.start,
                bounded: self.bounded,
                on_data_loss: self.on_data_loss,
                input: self.input.clone(),
            },
            rules: SourceRules {
                idle_timeout: self.idle_timeout,
                max_future_ms: millis(self.max_future),
                checkpoint_interval: self.checkpoint_interval,
            },
            trigger: self.trigger,
            roll: RollPolicy {
                interval: self.roll_interval,
                max_rows: self.roll_rows,
            },
            deadletter: self.deadletter.clone(),
            dlq_topic: self.dlq_topic.clone(),
            sink: self.sink_topic()?,
            fleet: Thresholds {
                battery_below: self.alert_battery_below,
                temperature_above: self.alert_temperature_above,
                temperature_below: self.alert_temperature_below,
            },
            compact_older_than: (!self.no_compaction).then_some(self.compact_older_than),
            out: self.out.clone(),
            fresh: self.fresh,
            udfs: UdfSources {
                dirs: self.udfs.clone(),
                cache: self
                    .udf_cache
                    .clone()
                    .unwrap_or_else(crate::udf::compile::default_cache),
            },
        })
    }

    /// The query: the `--sql` file (the flags that describe the built-in job refused beside it, naming the
    /// clause to edit), or the built-in job of those flags.
    fn query_source(&self) -> Result<QuerySource> {
        let Some(file) = &self.sql else {
            return builtin(self.window_kind()?, self.lateness, self.topic.clone());
        };
        let refused = [
            (
                "--window",
                self.window.is_some(),
                "the window's size in the FROM clause (TUMBLE or HOP), or `GROUP BY tumble(...)`",
            ),
            (
                "--slide",
                self.slide.is_some(),
                "the slide of HOP(...) in the FROM clause, or `GROUP BY hop(...)`",
            ),
            (
                "--session-gap",
                self.session_gap.is_some(),
                "the gap of SESSION(...) in the FROM clause, or `GROUP BY session(...)`",
            ),
            (
                "--lateness",
                self.lateness.is_some(),
                "the table's `WATERMARK FOR col AS col - INTERVAL ...` clause",
            ),
            (
                "--topic",
                self.topic.is_some(),
                "the table's `WITH ('topic' = ...)` option",
            ),
        ];
        if let Some((flag, _, clause)) = refused.iter().find(|(_, given, _)| *given) {
            bail!(
                "{flag} shapes the built-in job; with --sql {} the query says it: edit {clause} instead",
                file.display()
            );
        }
        Ok(QuerySource::File(file.clone()))
    }

    /// `--kafka-option KEY=VALUE`s, checked.
    fn kafka_options(&self) -> Result<Vec<(String, String)>> {
        let mut options = Vec::new();
        for option in &self.kafka_options {
            match option.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => options.push((k.trim().to_string(), v.to_string())),
                _ => bail!(
                    "--kafka-option must be KEY=VALUE with a librdkafka setting as KEY (e.g. \
                     queued.max.messages.kbytes=8192), got {option:?}"
                ),
            }
        }
        Ok(options)
    }

    /// The Kafka output of `--sink-topic` and `--sink-partitions`, checked as far as the flags alone tell (its
    /// topic against the input's is checked once the query is planned).
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
        if self.topic.as_ref() == Some(topic) || self.dlq_topic.as_ref() == Some(topic) {
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
        window_kind(self.window, self.slide, self.session_gap)
    }
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
        assert_eq!(
            (DEFAULT_WINDOW, DEFAULT_LATENESS),
            (Duration::from_secs(10), Duration::from_secs(60))
        );
        assert_eq!(a.trigger, Duration::from_secs(5));
        assert_eq!(a.idle_timeout, Duration::from_secs(30));
        assert_eq!(a.max_future, Duration::from_secs(3600));
        assert_eq!(
            a.check().unwrap().query,
            QuerySource::Builtin {
                window: model::WindowKind::Tumbling { size_ms: 10_000 },
                lateness_ms: 60_000,
                topic: "iot-metrics".into()
            }
        );
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
        let a = parse(&["--window", "0s"]).unwrap();
        assert!(a.check().unwrap_err().to_string().contains("--window"));
    }

    #[test]
    fn checking_flags_touches_nothing_outside_the_process() {
        let nowhere = std::env::temp_dir().join(format!("dataflow-check-{}", std::process::id()));
        let (out, dead, udf, input) = (
            nowhere.join("out"),
            nowhere.join("dead"),
            nowhere.join("no-udf"),
            nowhere.join("no-file.jsonl"),
        );
        let a = parse(&[
            "--out",
            out.to_str().unwrap(),
            "--deadletter",
            dead.to_str().unwrap(),
            "--udf",
            udf.to_str().unwrap(),
            "-n",
            "2",
            "-h",
            nowhere.join("no-hosts").to_str().unwrap(),
        ])
        .unwrap();
        let settings = a
            .check()
            .expect("flags alone are fine: folders, crates and files are prepared later");
        assert_eq!((settings.out, settings.udfs.dirs), (out, vec![udf]));
        assert!(!nowhere.exists(), "checking made {}", nowhere.display());
        let replay = parse(&["--input", input.to_str().unwrap()]).unwrap().check().unwrap();
        assert_eq!(replay.connection.input, Some(input));
        let sql = parse(&["--sql", nowhere.join("job.sql").to_str().unwrap()])
            .unwrap()
            .check()
            .unwrap();
        assert_eq!(sql.query, QuerySource::File(nowhere.join("job.sql")));
        assert!(!nowhere.exists());
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
        let sink = |args: &[&str]| parse(args).unwrap().check().map(|s| s.sink);
        assert_eq!(sink(&[]).unwrap(), None);
        let out = sink(&["--sink-topic", "out", "--sink-partitions", "6"])
            .unwrap()
            .unwrap();
        assert_eq!((out.topic.as_str(), out.partitions), ("out", Some(6)));
        let same = sink(&["--topic", "t", "--sink-topic", "t"]).unwrap_err().to_string();
        assert!(same.contains("input or dead-letter topic"), "{same}");
        let replay = sink(&["--sink-topic", "out", "--input", "events.jsonl"])
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
        let with = |extra: &[&str]| parse(extra).unwrap().check();
        let settings = with(&[
            "--kafka-option",
            "queued.min.messages=5",
            "--kafka-option",
            "client.rack=r1",
        ])
        .unwrap();
        assert_eq!(
            settings.connection.options,
            [("queued.min.messages", "5"), ("client.rack", "r1")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let err = with(&["--kafka-option", "queued.min.messages"]).unwrap_err();
        assert!(err.to_string().contains("--kafka-option must be KEY=VALUE"), "{err}");
        assert!(with(&["--kafka-option", "=1"]).is_err());
    }

    #[test]
    fn the_flags_that_shape_the_builtin_job_are_refused_with_a_sql_file_naming_the_clause() {
        for (flag, value, clause) in [
            ("--window", "30s", "TUMBLE"),
            ("--slide", "5s", "HOP"),
            ("--session-gap", "5s", "SESSION"),
            ("--lateness", "2m", "WATERMARK"),
            ("--topic", "t", "'topic'"),
        ] {
            let err = parse(&["--sql", "job.sql", flag, value])
                .unwrap()
                .check()
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(flag) && err.contains(clause) && err.contains("job.sql"),
                "{err}"
            );
        }
        let run_flags = [
            "--sql",
            "job.sql",
            "-w",
            "2",
            "--brokers",
            "b:9092",
            "--group",
            "g",
            "--bounded",
        ];
        assert!(
            parse(&run_flags).unwrap().check().is_ok(),
            "run and connection flags stay"
        );
    }
}
