//! The IoT dataflow job on timely dataflow, as a library. Stages in the order an event meets them: `source`
//! (Kafka or replay, watermarks, parse and the per-record rules), `window` (event-time windows on the frontier),
//! `fleet` (differential views of final windows), `sink` (Parquet history, `latest.json`, dead letters, Kafka
//! output); `checkpoint` is the exactly-once protocol, which the stages meet only through its interface, and
//! `compact` the history's compaction. `messages` holds every type that travels between stages and imports none
//! of them; `udf` hosts user-defined functions; `runtime` holds the helpers every stage may use. `job` is the job
//! itself (settings, preparation, the workers' loop, the wiring) and `config` the flags that make its settings;
//! `cluster` connects and watches the processes of a cluster and supervises one (`dataflow cluster`).
//! The map of it all is `docs/ARCHITECTURE.md`.

pub mod checkpoint;
pub mod cluster;
pub mod compact;
pub mod config;
pub mod fleet;
pub mod job;
pub mod join;
pub mod messages;
pub mod query;
pub mod runtime;
pub mod sink;
pub mod source;
pub mod udf;
pub mod window;
