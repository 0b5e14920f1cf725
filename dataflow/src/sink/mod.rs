//! The sinks of the dataflow: the Parquet history of final windows, the live snapshot (`latest.json`), and
//! the dead-letter output.

pub mod deadletter;
pub mod latest_json;
pub mod parquet;
