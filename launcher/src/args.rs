//! The launcher's flags and how they become the three binaries' own: each piece starts from its parser's
//! defaults, and only what was given here is put on top.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

/// Runs the simulator, the dataflow and the dashboard together. The simulator's and the dataflow's flags
/// given here are handed on to them; one left out keeps that binary's own default.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Args {
    /// A real Kafka to use instead of the embedded broker.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Topic of sensor events (default: the simulator's; the dataflow reads the same).
    #[arg(long)]
    pub topic: Option<String>,
    /// Dataflow worker threads.
    #[arg(short = 'w', long = "workers", default_value_t = 2)]
    pub workers: usize,
    /// Dataflow processes: more than 1 runs `dataflow cluster`, which supervises them on this machine and
    /// restarts them all from the last checkpoint when one is lost (docs/operations.md, "A cluster").
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// Simulated devices (default: the simulator's).
    #[arg(long)]
    pub devices: Option<u64>,
    /// Messages per second per device (default: the simulator's).
    #[arg(long)]
    pub rate: Option<f64>,
    /// The simulator stops after this many records (default: it runs until Ctrl-C); the rest keeps running.
    #[arg(long)]
    pub count: Option<u64>,
    /// Fraction of late events the simulator sends (default: the simulator's).
    #[arg(long)]
    pub late_fraction: Option<f64>,
    /// Fraction of malformed records the simulator sends (default: the simulator's).
    #[arg(long)]
    pub bad_fraction: Option<f64>,
    /// A job in SQL for the dataflow (see docs/SQL.md); the simulator writes to the topic its table reads.
    /// Excludes the built-in job's --window, --slide, --session-gap, --lateness and --topic (the query says
    /// them).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["window", "slide", "session_gap", "lateness", "topic"])]
    pub sql: Option<PathBuf>,
    /// Window size (default: the dataflow's).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub window: Option<Duration>,
    /// Hopping windows: a window of --window starts every SLIDE.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "SLIDE")]
    pub slide: Option<Duration>,
    /// Session windows per device, ended by a pause of GAP (excludes --slide and --window).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "GAP", conflicts_with_all = ["slide", "window"])]
    pub session_gap: Option<Duration>,
    /// Watermark lateness (default: the dataflow's).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub lateness: Option<Duration>,
    /// Live publication interval (default: the dataflow's).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub trigger: Option<Duration>,
    /// A silent partition stops holding the watermark back after this long (default: the dataflow's).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Dashboard address (default: the dashboard's).
    #[arg(long)]
    pub bind: Option<std::net::IpAddr>,
    /// Dashboard port (default: the dashboard's).
    #[arg(long)]
    pub port: Option<u16>,
    /// Data folder: `<data>/aggregates` and `<data>/deadletter`.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// A UDF crate the dataflow builds and applies (repeatable; see udfs/).
    #[arg(long = "udf", value_name = "DIR")]
    pub udfs: Vec<PathBuf>,
    /// The dataflow discards its checkpoints and starts over (the history stays).
    #[arg(long)]
    pub fresh: bool,
    /// Compacted topic the simulator publishes its device table to (site, model, own temperature limit), for
    /// jobs that join it (e.g. `--sql jobs/by_site.sql`).
    #[arg(long, default_value = model::DEFAULT_DEVICES_TOPIC, value_name = "TOPIC")]
    pub devices_topic: String,
    /// The simulator publishes no device table.
    #[arg(long)]
    pub no_device_table: bool,
}

impl Args {
    /// The simulator's and the dataflow's flags: each binary's own defaults (its parser given no flags), with
    /// what was given here on top. Both use one topic and one broker list.
    pub fn pieces(&self) -> Result<(producer::config::Args, dataflow::config::Args, dashboard::Flags)> {
        let mut sim = producer::config::Args::try_parse_from(["producer"]).context("the simulator's defaults")?;
        let mut job = dataflow::config::Args::try_parse_from(["dataflow"]).context("the dataflow's defaults")?;
        given(&mut sim.topic, self.topic.clone());
        given(&mut sim.brokers, self.brokers.clone());
        given(&mut sim.devices, self.devices);
        given(&mut sim.rate, self.rate);
        sim.count = self.count.or(sim.count);
        given(&mut sim.late_fraction, self.late_fraction);
        given(&mut sim.bad_fraction, self.bad_fraction);
        sim.devices_topic = (!self.no_device_table).then(|| self.devices_topic.clone());
        // A query names its topic itself (the simulator is pointed at it once the query is planned).
        job.topic = self.sql.is_none().then(|| sim.topic.clone());
        job.brokers = Some(sim.brokers.clone());
        job.workers = self.workers;
        job.processes = self.processes;
        job.sql.clone_from(&self.sql);
        job.window = self.window;
        job.slide = self.slide;
        job.session_gap = self.session_gap;
        job.lateness = self.lateness;
        given(&mut job.trigger, self.trigger);
        given(&mut job.idle_timeout, self.idle_timeout);
        job.udfs.clone_from(&self.udfs);
        // A new embedded broker holds none of the records earlier checkpoints point into.
        job.fresh = self.fresh || self.brokers.is_none();
        job.out = self.data.join("aggregates");
        job.deadletter = self.data.join("deadletter");
        let mut web = dashboard::Flags::try_parse_from(["dashboard"]).context("the dashboard's defaults")?;
        given(&mut web.bind, self.bind);
        given(&mut web.port, self.port);
        web.data.clone_from(&job.out);
        Ok((sim, job, web))
    }
}

fn given<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn pieces(line: &[&str]) -> (producer::config::Args, dataflow::config::Args) {
        let (sim, job, _) = all_pieces(line);
        (sim, job)
    }

    fn all_pieces(line: &[&str]) -> (producer::config::Args, dataflow::config::Args, dashboard::Flags) {
        let args = Args::try_parse_from(std::iter::once("iot-pipeline").chain(line.iter().copied()));
        args.unwrap().pieces().unwrap()
    }

    #[test]
    fn the_dashboard_keeps_its_defaults_and_reads_the_dataflows_output() {
        let (_, job, web) = all_pieces(&["--data", "/tmp/d"]);
        let default = dashboard::Flags::try_parse_from(["dashboard"]).unwrap();
        assert_eq!((web.bind, web.port), (default.bind, default.port));
        assert_eq!(web.data, job.out);
        let (_, _, web) = all_pieces(&["--bind", "0.0.0.0", "--port", "5001"]);
        assert_eq!((web.bind.to_string(), web.port), ("0.0.0.0".to_string(), 5001));
    }

    #[test]
    fn flags_left_out_keep_each_binarys_own_default() {
        let (sim, job) = pieces(&[]);
        let mut sim_default = producer::config::Args::try_parse_from(["producer"]).unwrap();
        let job_default = dataflow::config::Args::try_parse_from(["dataflow"]).unwrap();
        // The launcher's one default of its own: the simulator publishes its device table.
        assert_eq!(sim.devices_topic.as_deref(), Some(model::DEFAULT_DEVICES_TOPIC));
        sim_default.devices_topic = sim.devices_topic.clone();
        assert_eq!(sim, sim_default);
        let (sim, _) = pieces(&["--no-device-table"]);
        assert_eq!(sim.devices_topic, None);
        assert_eq!(
            (job.window, job.lateness, job.trigger, job.idle_timeout),
            (
                job_default.window,
                job_default.lateness,
                job_default.trigger,
                job_default.idle_timeout
            )
        );
        assert_eq!(
            (job.topic.as_deref(), job.brokers.as_deref()),
            (Some(sim.topic.as_str()), Some(sim.brokers.as_str()))
        );
        assert_eq!(job.workers, 2, "the launcher runs two workers");
        assert_eq!(job.processes, 1, "one process unless --processes");
        assert_eq!(job.out, Path::new("data/aggregates"));
        assert_eq!(job.deadletter, Path::new("data/deadletter"));
    }

    #[test]
    fn given_flags_reach_the_simulator_and_the_dataflow() {
        let (sim, job) = pieces(&[
            "--brokers",
            "k1:9092",
            "--topic",
            "t-1",
            "-w",
            "3",
            "--devices",
            "5",
            "--rate",
            "0.5",
            "--late-fraction",
            "0.1",
            "--bad-fraction",
            "0.2",
            "--window",
            "1s",
            "--lateness",
            "2s",
            "--trigger",
            "3s",
            "--idle-timeout",
            "4s",
            "--data",
            "/tmp/d",
            "--udf",
            "udfs/heat_index",
            "--udf",
            "udfs/temperature_p90",
            "--fresh",
        ]);
        assert_eq!(
            job.udfs,
            [Path::new("udfs/heat_index"), Path::new("udfs/temperature_p90")]
        );
        assert!(job.fresh);
        assert_eq!(job.slide, None);
        assert_eq!(sim.count, None);
        assert_eq!((sim.brokers.as_str(), sim.topic.as_str()), ("k1:9092", "t-1"));
        assert_eq!(
            (job.brokers.as_deref(), job.topic.as_deref()),
            (Some("k1:9092"), Some("t-1"))
        );
        assert_eq!(
            (sim.devices, sim.rate, sim.late_fraction, sim.bad_fraction),
            (5, 0.5, 0.1, 0.2)
        );
        let secs = Duration::from_secs;
        assert_eq!(
            (job.workers, job.window, job.lateness, job.trigger, job.idle_timeout),
            (3, Some(secs(1)), Some(secs(2)), secs(3), secs(4))
        );
        assert_eq!(job.out, Path::new("/tmp/d/aggregates"));
    }

    #[test]
    fn the_embedded_broker_starts_the_checkpoints_afresh_and_a_real_kafka_keeps_them() {
        let (sim, job) = pieces(&["--count", "500"]);
        assert!(job.fresh, "a new embedded broker: the old offsets point nowhere");
        assert_eq!(sim.count, Some(500));
        let (_, job) = pieces(&["--brokers", "k1:9092"]);
        assert!(!job.fresh, "a real Kafka keeps the checkpoints");
        let (_, job) = pieces(&["--brokers", "k1:9092", "--fresh"]);
        assert!(job.fresh);
    }

    #[test]
    fn window_kind_flags_are_forwarded_to_the_dataflow() {
        let (_, job) = pieces(&["--window", "30s", "--slide", "10s"]);
        assert_eq!(
            (job.window, job.slide),
            (Some(Duration::from_secs(30)), Some(Duration::from_secs(10)))
        );
        let (_, job) = pieces(&["--session-gap", "5s"]);
        assert_eq!(job.session_gap, Some(Duration::from_secs(5)));
        assert!(job.window_kind().is_ok());
    }

    #[test]
    fn a_sql_job_is_forwarded_and_names_its_own_topic() {
        let (sim, job) = pieces(&["--sql", "jobs/q.sql", "--brokers", "k1:9092"]);
        assert_eq!(job.sql.as_deref(), Some(Path::new("jobs/q.sql")));
        assert_eq!(job.topic, None, "the query's WITH ('topic') names it");
        assert_eq!(job.brokers.as_deref(), Some(sim.brokers.as_str()));
        for clash in [
            ["--window", "5s"],
            ["--lateness", "5s"],
            ["--topic", "t"],
            ["--slide", "5s"],
        ] {
            let line = ["iot-pipeline", "--sql", "q.sql", clash[0], clash[1]];
            assert!(Args::try_parse_from(line).is_err(), "{clash:?} beside --sql");
        }
    }

    #[test]
    fn processes_make_the_job_a_supervised_cluster_of_that_size() {
        let (_, job) = pieces(&["--processes", "3", "-w", "1"]);
        assert_eq!((job.processes, job.workers, job.process), (3, 1, 0));
        assert!(job.hostfile.is_none(), "dataflow cluster writes the host file itself");
        let supervised = dataflow::config::cluster::ClusterArgs::try_parse_from(
            std::iter::once(std::ffi::OsString::from("cluster")).chain(job.to_args()),
        )
        .unwrap();
        assert_eq!(supervised.check().unwrap().job.processes, 3);
    }
}
