//! The IoT dataflow job on timely dataflow. Modules follow the path of an event: `source` (Kafka or replay,
//! watermarks, the per-record rules), `parse` (validation → events or dead letters), `window` (tumbling windows
//! on the frontier), `fleet` (differential views of final windows), `sink` (Parquet history, `latest.json`,
//! dead letters) and `checkpoint` (the exactly-once protocol, in one folder). `messages` holds every type that
//! travels between them and imports none of them; `pipeline` wires the stages for one worker; `config` holds the
//! flags; `errors` counts what fails inside operators; `teardown` bounds the wait for librdkafka clients to
//! close; `durable`, `trigger` and `in_order` are shared rules and shapes. The map of it all is
//! `docs/ARCHITECTURE.md`.

pub mod checkpoint;
pub mod compact;
pub mod config;
pub mod crash_hook;
pub mod durable;
pub mod errors;
pub mod fleet;
pub mod helper_thread;
pub mod in_order;
pub mod messages;
pub mod out_lock;
pub mod parse;
pub mod pipeline;
pub mod sink;
pub mod source;
pub mod teardown;
pub mod trigger;
pub mod udf;
pub mod window;
