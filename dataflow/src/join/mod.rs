//! The temporal join stage of a job with `JOIN t FOR SYSTEM_TIME AS OF` (`docs/SQL.md`, "Temporal joins"):
//! `table.rs` reads the versioned table (an upsert-kafka topic or a JSON-lines file) into versions,
//! `versions.rs` holds the as-of rule, and `operator.rs` is the timely operator between the source and the
//! window operator where each record meets the version valid at its event time. [`JoinSettings`] is what the
//! stage takes from the job's settings.

pub mod operator;
pub mod table;
pub mod versions;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use anyhow::Result;

use crate::runtime::errors::ErrorLog;
use crate::source::kafka::KafkaReader;
use crate::source::reader::Reader;
use crate::source::replay::ReplayReader;
use crate::source::{Input, SourceSettings};

/// The join stage's settings.
#[derive(Clone, Debug)]
pub struct JoinSettings {
    /// The versioned table's input (a Kafka topic read from its earliest offset, or a file).
    pub input: Input,
    /// The table topic's partition count (0 for a file).
    pub partitions: usize,
    /// The table's name.
    pub name: String,
    /// The table's watermark lateness, ms.
    pub lateness_ms: u64,
}

/// Opens this worker's reader of the versioned table: its byte range of the file, or its share of the topic's
/// partitions, each at its position in `resume` (else at the earliest offset).
pub fn open_table_reader(
    settings: &JoinSettings,
    source: &SourceSettings,
    worker: usize,
    peers: usize,
    resume: &BTreeMap<i32, i64>,
    errors: Rc<ErrorLog>,
) -> Result<Box<dyn Reader>> {
    Ok(match &settings.input {
        Input::File(path) => Box::new(ReplayReader::open(path, worker, peers)?),
        Input::Kafka(input) => {
            let offsets: HashMap<i32, i64> = resume.iter().map(|(&p, &o)| (p, o)).collect();
            Box::new(KafkaReader::open(
                input,
                source.stats_every,
                settings.partitions,
                worker,
                peers,
                &offsets,
                errors,
            )?)
        }
    })
}
