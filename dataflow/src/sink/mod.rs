//! The sinks of the dataflow: the Parquet history of final windows, the live snapshot (`latest.json`), the
//! dead-letter output, and the exactly-once Kafka output of final windows (`--sink-topic`).

pub mod deadletter;
pub mod kafka;
pub mod latest_json;
pub mod parquet;
