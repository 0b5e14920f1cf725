//! The snapshot side: what the dashboard knows of the dataflow's output, with no HTTP in it. `latest.json` is
//! read once per file version into a table of its groups and a summary ([`latest`], [`devices`], [`changes`]),
//! watched for new versions ([`watcher`]), asked for a page of groups and a histogram ([`devices`],
//! [`histogram`]) and rendered for Prometheus ([`prometheus`]); the Parquet history of a group is read on demand
//! ([`history`], its rows as JSON by [`history_rows`]).
//! The HTTP side (`crate::http`) serves these; nothing here imports it.

pub mod changes;
pub mod devices;
pub mod histogram;
pub mod history;
pub mod history_rows;
pub mod latest;
pub mod prometheus;
pub mod watcher;
