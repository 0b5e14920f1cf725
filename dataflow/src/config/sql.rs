//! The flags of `dataflow sql`, the job file's helper: print the built-in job (the query a user starts from), or
//! check a job file as the job would (planned with the UDFs' signatures) and print its output columns.

use std::path::PathBuf;

use clap::Parser;

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
    /// The built-in job these flags shape.
    pub fn builtin(&self) -> anyhow::Result<crate::job::QuerySource> {
        let kind = super::window_kind(self.window, self.slide, self.session_gap)?;
        super::builtin(kind, self.lateness, self.topic.clone())
    }
}
