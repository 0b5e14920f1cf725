//! Command-line flags of the simulator, their checks, and the way back: `Args::to_args` writes flags as the
//! command line that parses to them, so the launcher and the tests start a `producer` from typed values and
//! the flag names live here once.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Parser;

use model::cli::flag;

use crate::sim::Mix;

/// Simulated IoT devices publishing sensor readings.
#[derive(Parser, Debug, Clone, PartialEq)]
#[command(name = "producer", version, about, allow_negative_numbers = true)]
pub struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "localhost:9092")]
    pub brokers: String,
    /// Topic to publish to (created when missing).
    #[arg(long, default_value = model::DEFAULT_TOPIC)]
    pub topic: String,
    /// Partitions of the topic when the producer creates it.
    #[arg(long, default_value_t = model::DEFAULT_PARTITIONS, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub partitions: i32,
    /// Number of simulated devices.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub devices: u64,
    /// Messages per second per device; 0 sends as fast as the broker takes them.
    #[arg(long, default_value_t = 4.0)]
    pub rate: f64,
    /// Stop after this long (e.g. `10s`, `5m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many records (bad ones included).
    #[arg(long)]
    pub count: Option<u64>,
    /// Fraction of records that are valid events with a timestamp in the past.
    #[arg(long, default_value_t = 0.0)]
    pub late_fraction: f64,
    /// Largest delay of a late event.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub max_delay: Duration,
    /// Fraction of records that are malformed (truncated, wrong types, missing fields, bad UTF-8, ...).
    #[arg(long, default_value_t = 0.0)]
    pub bad_fraction: f64,
    /// Use the device ids listed in this file (one per line) instead of generated ones; `--devices` is ignored.
    #[arg(long)]
    pub device_ids_file: Option<PathBuf>,
    /// Seed of the device fleet and the readings.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write JSON lines to this file instead of Kafka, on a simulated clock that advances by `1 / (devices *
    /// rate)` per record from `--start-ms`.
    #[arg(long)]
    pub to_file: Option<PathBuf>,
    /// Event time of the first record with `--to-file`, epoch ms (default: now).
    #[arg(long)]
    pub start_ms: Option<u64>,
    /// Seconds between progress lines.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub progress_every: Duration,
    /// Extra librdkafka producer settings, `key=value`, repeatable.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    pub kafka_options: Vec<String>,
    /// Also publish the devices' metadata (site, model, own temperature limit, updated_at) to this compacted
    /// topic, keyed by device, first every row, then changes (`docs/SQL.md`, "Temporal joins").
    #[arg(long, value_name = "TOPIC")]
    pub devices_topic: Option<String>,
    /// Changes of the device table per second over the whole fleet (a device moves to another site, or its
    /// limit changes); 0 publishes the first rows only.
    #[arg(long, default_value_t = 1.0)]
    pub device_change_rate: f64,
}

impl Args {
    /// Checks the flags clap cannot (fractions, rate, file mode) and returns the record mix they ask for.
    pub fn check(&self) -> Result<Mix> {
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
        if !self.device_change_rate.is_finite() || self.device_change_rate < 0.0 {
            bail!(
                "--device-change-rate must be a non-negative number of changes per second, got {}",
                self.device_change_rate
            );
        }
        if self.to_file.is_some() && self.devices_topic.is_some() {
            bail!("--devices-topic publishes to Kafka; --to-file writes readings only: drop one of them");
        }
        if self.devices_topic.as_deref() == Some(self.topic.as_str()) {
            bail!(
                "--devices-topic must differ from --topic ({}): pass another topic",
                self.topic
            );
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

    /// The command line (without the program name) that parses back to exactly these flags. Every flag with a
    /// value is written, so the value here, not the receiving binary's default, decides; optional flags only
    /// when set. The destructuring makes a new field a compile error here until it is written too.
    pub fn to_args(&self) -> Vec<OsString> {
        let Args {
            brokers,
            topic,
            partitions,
            devices,
            rate,
            duration,
            count,
            late_fraction,
            max_delay,
            bad_fraction,
            device_ids_file,
            seed,
            to_file,
            start_ms,
            progress_every,
            kafka_options,
            devices_topic,
            device_change_rate,
        } = self;
        let mut args = vec![
            flag("--brokers", brokers),
            flag("--topic", topic),
            flag("--partitions", partitions.to_string()),
            flag("--devices", devices.to_string()),
            flag("--rate", rate.to_string()),
            flag("--late-fraction", late_fraction.to_string()),
            flag("--max-delay", humantime::format_duration(*max_delay).to_string()),
            flag("--bad-fraction", bad_fraction.to_string()),
            flag("--seed", seed.to_string()),
            flag("--device-change-rate", device_change_rate.to_string()),
            flag(
                "--progress-every",
                humantime::format_duration(*progress_every).to_string(),
            ),
        ];
        let duration = duration.map(|d| humantime::format_duration(d).to_string());
        args.extend(duration.map(|d| flag("--duration", d)));
        args.extend(count.map(|n| flag("--count", n.to_string())));
        args.extend(device_ids_file.iter().map(|p| flag("--device-ids-file", p)));
        args.extend(to_file.iter().map(|p| flag("--to-file", p)));
        args.extend(start_ms.map(|ms| flag("--start-ms", ms.to_string())));
        args.extend(kafka_options.iter().map(|o| flag("--kafka-option", o)));
        args.extend(devices_topic.iter().map(|t| flag("--devices-topic", t)));
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: Into<OsString> + Clone>(args: impl IntoIterator<Item = T>) -> Args {
        let line = std::iter::once("producer".into()).chain(args.into_iter().map(Into::into));
        Args::try_parse_from(line.collect::<Vec<OsString>>()).unwrap()
    }

    #[test]
    fn defaults_match_the_design() {
        let a = parse::<&str>([]);
        assert_eq!(a.brokers, "localhost:9092");
        assert_eq!(a.topic, "iot-metrics");
        assert_eq!((a.partitions, a.devices, a.rate), (3, 8, 4.0));
        assert_eq!(a.max_delay, Duration::from_secs(120));
        assert_eq!((a.late_fraction, a.bad_fraction, a.seed), (0.0, 0.0, 42));
    }

    #[test]
    fn written_flags_parse_back_to_the_same_args() {
        let defaults = parse::<&str>([]);
        assert_eq!(parse(defaults.to_args()), defaults);
        let every_flag = parse(
            [
                ("--brokers", "b1:9092,b2:9092"),
                ("--topic", "t-1"),
                ("--partitions", "7"),
                ("--devices", "13"),
                ("--rate", "0.25"),
                ("--duration", "1m 30s 5ms"),
                ("--count", "99"),
                ("--late-fraction", "0.125"),
                ("--max-delay", "3s"),
                ("--bad-fraction", "0.1"),
                ("--device-ids-file", "ids with space.txt"),
                ("--seed", "18446744073709551615"),
                ("--to-file", "-out.jsonl"),
                ("--start-ms", "1700000000000"),
                ("--progress-every", "250ms"),
                ("--kafka-option", "acks=all"),
                ("--kafka-option", "linger.ms=5"),
            ]
            .map(|(name, value)| format!("{name}={value}")),
        );
        assert_ne!(every_flag, defaults);
        assert_eq!(parse(every_flag.to_args()), every_flag);
    }

    #[test]
    fn fractions_outside_zero_to_one_are_refused_naming_the_flag() {
        let err = parse(["--bad-fraction", "1.5"]).check().unwrap_err();
        assert!(err.to_string().contains("--bad-fraction"), "{err}");
        let err = parse(["--rate", "-1"]).check().unwrap_err();
        assert!(err.to_string().contains("--rate"), "{err}");
    }
}
