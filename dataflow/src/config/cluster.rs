//! `dataflow cluster`'s flags: every job flag, `--processes` being the cluster's size, and the restart rule
//! (`cluster::restart`); checked into a [`Supervision`] with no side effect.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use super::{Args, parse_duration};
use crate::cluster::restart::RestartPolicy;
use crate::cluster::supervisor::Supervision;

/// Runs a cluster of `--processes` job processes on this machine (free ports on 127.0.0.1, a host file of its
/// own) and restarts all of them from the last checkpoint when one is lost, with a backoff and a budget.
#[derive(Parser, Debug, Clone)]
#[command(name = "dataflow cluster", version, disable_help_flag = true)]
pub struct ClusterArgs {
    /// Every flag of a job (`dataflow --help`); `--processes` is the number of processes to run.
    #[command(flatten)]
    pub job: Args,
    /// The restart rule.
    #[command(flatten)]
    pub restart: RestartFlags,
}

/// The supervisor's own flags: its restart rule (`cluster::restart`).
#[derive(Parser, Debug, Clone)]
#[command(name = "dataflow cluster")]
pub struct RestartFlags {
    /// Restarts allowed within --restart-window; one more failure and the supervisor gives up (exit status 5).
    #[arg(long, default_value_t = 5)]
    pub max_restarts: u32,
    /// The window failures are counted in; a cluster healthy for this long has its budget and backoff back.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub restart_window: Duration,
    /// The wait before the first restart; it doubles with each failure within the window.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub restart_backoff: Duration,
    /// The longest wait before a restart.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub restart_backoff_max: Duration,
}

impl ClusterArgs {
    /// The supervision these flags ask for; the job's flags are checked as `dataflow` checks them.
    pub fn check(&self) -> Result<Supervision> {
        if self.job.process != 0 || self.job.hostfile.is_some() {
            bail!(
                "dataflow cluster picks the processes' ports and writes their host file itself: leave out -p/--process \
                 and -h/--hostfile (they are for one process of a cluster started by hand)"
            );
        }
        if self.job.restarts != 0 {
            bail!("--restarts is set by dataflow cluster for its processes: leave it out");
        }
        let r = &self.restart;
        if r.restart_backoff.is_zero() || r.restart_backoff > r.restart_backoff_max {
            bail!(
                "--restart-backoff must be positive and at most --restart-backoff-max ({} and {} given)",
                humantime::format_duration(r.restart_backoff),
                humantime::format_duration(r.restart_backoff_max)
            );
        }
        self.job.check()?;
        Ok(Supervision {
            job: self.job.clone(),
            policy: RestartPolicy {
                max_restarts: r.max_restarts,
                window: r.restart_window,
                backoff: r.restart_backoff,
                backoff_max: r.restart_backoff_max,
            },
            program: std::env::current_exe().context("cannot find this program's path to start the processes")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> ClusterArgs {
        ClusterArgs::try_parse_from(std::iter::once("cluster").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn the_job_flags_and_the_restart_rule_are_read() {
        let s = parse(&[
            "--processes",
            "3",
            "-w",
            "2",
            "--bounded",
            "--max-restarts",
            "2",
            "--restart-window",
            "1m",
        ])
        .check()
        .unwrap();
        assert_eq!((s.job.processes, s.job.workers, s.job.bounded), (3, 2, true));
        assert_eq!(s.policy.max_restarts, 2);
        assert_eq!(s.policy.window, Duration::from_secs(60));
    }

    #[test]
    fn the_supervisor_refuses_flags_it_sets_itself() {
        for args in [
            &["-n", "2", "-p", "1"][..],
            &["-n", "2", "-h", "hosts"],
            &["--restart-backoff", "0s"],
        ] {
            let err = parse(args).check().unwrap_err().to_string();
            assert!(
                err.contains("leave out") || err.contains("must be positive"),
                "{args:?}: {err}"
            );
        }
    }
}
