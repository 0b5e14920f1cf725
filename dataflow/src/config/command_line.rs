//! The command line of a `dataflow` job written from typed flags ([`Args::to_args`]), for whoever starts a job
//! from values rather than text: the launcher, the benchmarks and the integration tests.

use std::time::Duration;

use clap::ValueEnum;
use model::cli::flag;

use super::Args;

impl Args {
    /// The command line (without the program name) that parses back to exactly these flags, for whoever starts
    /// a `dataflow` from typed values (the launcher, the tests). Every flag with a value is written, so the value
    /// here, not the receiving binary's default, decides; optional flags only when set. The destructuring makes a
    /// new field a compile error here until it is written too.
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        let Args {
            help: _,
            sql,
            workers,
            processes,
            process,
            hostfile,
            connect_timeout,
            peer_timeout,
            restarts,
            health_addr,
            stall_timeout,
            brokers,
            topic,
            group,
            kafka_options,
            window,
            slide,
            session_gap,
            lateness,
            trigger,
            idle_timeout,
            max_future,
            checkpoint_interval,
            roll_interval,
            roll_rows,
            compact_older_than,
            no_compaction,
            out,
            deadletter,
            dlq_topic,
            sink_topic,
            sink_partitions,
            start,
            bounded,
            input,
            fresh,
            on_data_loss,
            alert_battery_below,
            alert_temperature_above,
            alert_temperature_below,
            udfs,
            udf_cache,
        } = self;
        let duration = |d: &Duration| humantime::format_duration(*d).to_string();
        let start = start.map(|s| s.to_possible_value().expect("no start value is skipped"));
        let on_data_loss = on_data_loss.to_possible_value().expect("no policy is skipped");
        let mut args = vec![
            flag("--workers", workers.to_string()),
            flag("--processes", processes.to_string()),
            flag("--process", process.to_string()),
            flag("--connect-timeout", duration(connect_timeout)),
            flag("--peer-timeout", duration(peer_timeout)),
            flag("--restarts", restarts.to_string()),
            flag("--stall-timeout", duration(stall_timeout)),
            flag("--trigger", duration(trigger)),
            flag("--idle-timeout", duration(idle_timeout)),
            flag("--max-future", duration(max_future)),
            flag("--checkpoint-interval", duration(checkpoint_interval)),
            flag("--roll-interval", duration(roll_interval)),
            flag("--roll-rows", roll_rows.to_string()),
            flag("--compact-older-than", duration(compact_older_than)),
            flag("--out", out),
            flag("--deadletter", deadletter),
            flag("--on-data-loss", on_data_loss.get_name()),
            flag("--alert-battery-below", alert_battery_below.to_string()),
            flag("--alert-temperature-above", alert_temperature_above.to_string()),
            flag("--alert-temperature-below", alert_temperature_below.to_string()),
        ];
        // Optional flags only when given: the query flags are refused next to `--sql`, and the connection flags
        // stand back for the file's options when not given.
        args.extend(sql.iter().map(|p| flag("--sql", p)));
        args.extend(brokers.iter().map(|b| flag("--brokers", b)));
        args.extend(topic.iter().map(|t| flag("--topic", t)));
        args.extend(group.iter().map(|g| flag("--group", g)));
        args.extend(start.iter().map(|s| flag("--start", s.get_name())));
        args.extend(window.iter().map(|d| flag("--window", duration(d))));
        args.extend(lateness.iter().map(|d| flag("--lateness", duration(d))));
        args.extend(slide.iter().map(|d| flag("--slide", duration(d))));
        args.extend(session_gap.iter().map(|d| flag("--session-gap", duration(d))));
        args.extend(hostfile.iter().map(|p| flag("--hostfile", p)));
        args.extend(health_addr.iter().map(|a| flag("--health-addr", a.to_string())));
        args.extend(kafka_options.iter().map(|o| flag("--kafka-option", o)));
        args.extend(dlq_topic.iter().map(|t| flag("--dlq-topic", t)));
        args.extend(sink_topic.iter().map(|t| flag("--sink-topic", t)));
        args.extend(sink_partitions.iter().map(|n| flag("--sink-partitions", n.to_string())));
        args.extend(input.iter().map(|p| flag("--input", p)));
        args.extend(udfs.iter().map(|p| flag("--udf", p)));
        args.extend(udf_cache.iter().map(|p| flag("--udf-cache", p)));
        args.extend(bounded.then(|| "--bounded".into()));
        args.extend(no_compaction.then(|| "--no-compaction".into()));
        args.extend(fresh.then(|| "--fresh".into()));
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse<T: Into<std::ffi::OsString> + Clone>(args: impl IntoIterator<Item = T>) -> Args {
        let line = std::iter::once("dataflow".into()).chain(args.into_iter().map(Into::into));
        Args::try_parse_from(line.collect::<Vec<std::ffi::OsString>>()).unwrap()
    }

    // `Args` has no `PartialEq`; its `Debug` text shows every field.
    fn same(a: &Args, b: &Args) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn written_flags_parse_back_to_the_same_args() {
        let defaults = parse::<&str>([]);
        assert!(same(&parse(defaults.to_args()), &defaults));
        let every_flag = parse(
            [
                ("--workers", "3"),
                ("--processes", "2"),
                ("--process", "1"),
                ("--hostfile", "hosts file"),
                ("--connect-timeout", "45s"),
                ("--peer-timeout", "4s"),
                ("--restarts", "2"),
                ("--health-addr", "0.0.0.0:9250"),
                ("--stall-timeout", "2m"),
                ("--brokers", "b1:9092,b2:9092"),
                ("--topic", "t-1"),
                ("--group", "g-1"),
                ("--kafka-option", "client.rack=r1"),
                ("--kafka-option", "fetch.wait.max.ms=5"),
                ("--window", "1m 30s"),
                ("--slide", "15s"),
                ("--lateness", "250ms"),
                ("--trigger", "1s"),
                ("--idle-timeout", "2h"),
                ("--max-future", "0s"),
                ("--checkpoint-interval", "3s"),
                ("--roll-interval", "10m"),
                ("--roll-rows", "7"),
                ("--compact-older-than", "2h"),
                ("--out", "-out dir"),
                ("--deadletter", "dead"),
                ("--dlq-topic", "dlq"),
                ("--sink-topic", "out"),
                ("--sink-partitions", "4"),
                ("--start", "latest"),
                ("--on-data-loss", "continue"),
                ("--input", "in.jsonl"),
                ("--alert-battery-below", "12.5"),
                ("--alert-temperature-above", "-3.25"),
                ("--alert-temperature-below", "-40"),
                ("--udf", "udfs/heat index"),
                ("--udf", "udfs/p90"),
                ("--udf-cache", "cache dir"),
                ("--sql", "jobs/a job.sql"),
            ]
            .map(|(name, value)| format!("{name}={value}"))
            .into_iter()
            .chain(["--bounded".into(), "--fresh".into(), "--no-compaction".into()]),
        );
        assert!(!same(&every_flag, &defaults));
        let written = parse(every_flag.to_args());
        assert!(same(&written, &every_flag), "{written:?}\n{every_flag:?}");
        let sessions = parse(["--session-gap", "5s"]);
        assert!(same(&parse(sessions.to_args()), &sessions));
    }
}
