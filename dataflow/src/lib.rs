//! The IoT dataflow job on timely dataflow. Modules follow the path of an event: `source` (Kafka or replay,
//! watermarks), `parse` (validation → events or dead letters), `window` (tumbling windows on the frontier), `fleet` (differential views of final windows),
//! `sink` (latest.json, Parquet history, dead letters), `checkpoint` (exactly-once recovery); `pipeline` wires them for one worker and `config` holds
//! the flags.

pub mod checkpoint;
pub mod config;
pub mod fleet;
pub mod parse;
pub mod pipeline;
pub mod sink;
pub mod source;
pub mod trigger;
pub mod window;
