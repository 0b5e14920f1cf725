//! Sinks of the dataflow: the live snapshot (`latest.json`), the Parquet history of final windows, and the
//! dead-letter output; plus the one atomic-write helper they share.

pub mod atomic;
pub mod deadletter;
pub mod latest_json;
pub mod parquet;
