//! The flags of `dataflow compact`, the offline compaction of a history folder.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// `dataflow compact`: merges each device's history files into one file per UTC day of window_start, as a
/// running job does for history older than --compact-older-than. Refused while a job holds the folder.
#[derive(Debug, Parser)]
#[command(name = "dataflow compact")]
pub struct CompactArgs {
    /// The job's output folder (the one holding parquet/ and _checkpoints/).
    #[arg(long, default_value = "data/aggregates")]
    pub out: PathBuf,
    /// Leave the files that hold a window started less than this long ago (default: take everything).
    #[arg(long, default_value = "0s", value_parser = super::parse_duration)]
    pub older_than: Duration,
}
