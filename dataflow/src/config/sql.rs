//! The flags of `dataflow sql`, the job file's helper: print the built-in job (the query a user starts from), or
//! check a job file as the job would (planned with the UDFs' signatures) and print its output columns.

use std::path::PathBuf;

use clap::Parser;

use crate::job::SqlRequest;

/// `dataflow sql`: prints the built-in job as a job file (`--print-default`, shaped by the same flags as the
/// built-in job), or checks a job file and prints its output columns (`--check FILE`).
#[derive(Debug, Parser)]
#[command(name = "dataflow sql")]
pub struct SqlArgs {
    /// Print the built-in job (the query the dataflow runs without --sql) as a job file to start from.
    #[arg(long, conflicts_with = "check")]
    pub print_default: bool,
    /// Check a job file as `dataflow --sql FILE` would before reading anything, and print its output columns.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
    /// With --print-default: the window size of the built-in job [default: 10s].
    #[arg(long, value_parser = super::parse_duration)]
    pub window: Option<std::time::Duration>,
    /// With --print-default: hopping windows, one every SLIDE.
    #[arg(long, value_parser = super::parse_duration, value_name = "SLIDE")]
    pub slide: Option<std::time::Duration>,
    /// With --print-default: session windows of this gap.
    #[arg(long, value_parser = super::parse_duration, value_name = "GAP", conflicts_with_all = ["slide", "window"])]
    pub session_gap: Option<std::time::Duration>,
    /// With --print-default: the watermark's lateness [default: 1m].
    #[arg(long, value_parser = super::parse_duration)]
    pub lateness: Option<std::time::Duration>,
    /// With --print-default: the topic [default: iot-metrics].
    #[arg(long)]
    pub topic: Option<String>,
    /// A UDF crate the query may call (repeatable); its signature is read, nothing is built.
    #[arg(long = "udf", value_name = "DIR")]
    pub udfs: Vec<PathBuf>,
}

impl SqlArgs {
    /// What these flags ask `dataflow sql` to do; an error names the flag that is missing.
    pub fn request(&self) -> anyhow::Result<SqlRequest> {
        let udfs = self.udfs.clone();
        match &self.check {
            Some(file) => Ok(SqlRequest::Check {
                file: file.clone(),
                udfs,
            }),
            None if self.print_default => {
                let kind = super::window_kind(self.window, self.slide, self.session_gap)?;
                let query = super::builtin(kind, self.lateness, self.topic.clone())?;
                Ok(SqlRequest::PrintDefault { query, udfs })
            }
            None => anyhow::bail!(
                "dataflow sql needs --print-default (the built-in job as a file to start from) or --check FILE"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(args: &[&str]) -> anyhow::Result<SqlRequest> {
        SqlArgs::try_parse_from(std::iter::once("dataflow sql").chain(args.iter().copied()))?.request()
    }

    #[test]
    fn without_a_task_the_error_names_both_flags() {
        let err = request(&[]).unwrap_err().to_string();
        assert!(err.contains("--print-default") && err.contains("--check"), "{err}");
    }

    #[test]
    fn check_asks_for_the_file_with_its_udfs() {
        assert_eq!(
            request(&["--check", "job.sql", "--udf", "udfs/heat_index"]).unwrap(),
            SqlRequest::Check {
                file: "job.sql".into(),
                udfs: vec!["udfs/heat_index".into()],
            }
        );
    }

    #[test]
    fn print_default_is_shaped_by_the_builtin_flags() {
        let hop = request(&["--print-default", "--window", "10s", "--slide", "5s"]).unwrap();
        let SqlRequest::PrintDefault { query, .. } = hop else {
            panic!("{hop:?}")
        };
        let crate::job::QuerySource::Builtin { window, .. } = query else {
            panic!("{query:?}")
        };
        assert_eq!(
            window,
            model::WindowKind::Hopping(model::Hopping::new(10_000, 5_000).unwrap())
        );
    }
}
