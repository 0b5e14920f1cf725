//! The source stage: what a worker reads and how. `reader` is the interface to the input, `kafka` and `replay`
//! its two implementations, `data_loss` the rule for offsets a partition's log no longer holds, `watermark` the
//! per-partition event-time clocks, `parse` the record → event-or-dead-letter rule, `intake` the per-record
//! rules (parse, validate, late) and `operator` the timely source that drives them and holds the watermark;
//! `table` is the source of a temporal join's versioned table. [`SourceSettings`] and [`TableSettings`] are
//! everything the stage takes from the job's settings.

pub mod data_loss;
pub mod intake;
pub mod kafka;
pub mod operator;
pub mod parse;
pub mod reader;
pub mod replay;
pub mod table;
pub mod watermark;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use anyhow::Result;
use clap::ValueEnum;

use crate::checkpoint::Resume;
use crate::runtime::errors::ErrorLog;
use crate::runtime::kafka_client::KafkaClient;
use kafka::KafkaReader;
use reader::Reader;
use replay::ReplayReader;

/// Where a fresh job starts reading each partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StartAt {
    /// The oldest record still in the topic.
    Earliest,
    /// Only records produced from now on.
    Latest,
}

/// What a job does when a partition's log no longer holds the offset it is to read next (see [`data_loss`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnDataLoss {
    /// Stop with an error naming the partition, the offsets and the way out (as Spark's `failOnDataLoss`).
    Fail,
    /// Log a warning, count the loss, and go on from the earliest offset that exists.
    Continue,
}

/// A Kafka topic as the job's input.
#[derive(Clone, Debug)]
pub struct KafkaInput {
    /// The cluster and the user's librdkafka settings.
    pub client: KafkaClient,
    /// Topic of events.
    pub topic: String,
    /// Consumer group (offsets are committed there for lag tools only).
    pub group: String,
    /// Where a fresh job starts reading.
    pub start: StartAt,
    /// Read each partition up to the end offsets seen at start, then finish.
    pub bounded: bool,
    /// What a lost offset does.
    pub on_data_loss: OnDataLoss,
}

/// What the job reads.
#[derive(Clone, Debug)]
pub enum Input {
    /// A Kafka topic.
    Kafka(KafkaInput),
    /// A JSON-lines file, split into byte ranges across workers (always bounded, never checkpointed).
    File(PathBuf),
}

impl Input {
    /// The Kafka input, if it is one.
    pub fn kafka(&self) -> Option<&KafkaInput> {
        match self {
            Input::Kafka(k) => Some(k),
            Input::File(_) => None,
        }
    }

    /// Whether the input ends (a bounded topic, or a file).
    pub fn is_bounded(&self) -> bool {
        self.kafka().is_none_or(|k| k.bounded)
    }

    /// How the start log names it.
    pub fn describe(&self) -> String {
        match self {
            Input::Kafka(k) => format!("kafka {} topic {}", k.client.brokers, k.topic),
            Input::File(path) => path.display().to_string(),
        }
    }
}

/// The source stage's settings (the query says how a record is read: its schema, window and lateness).
#[derive(Clone, Debug)]
pub struct SourceSettings {
    /// What is read.
    pub input: Input,
    /// A partition silent this long stops holding the watermark back.
    pub idle_timeout: Duration,
    /// Events further ahead of the wall clock than this (ms) are bad.
    pub max_future_ms: u64,
    /// How often a checkpoint marker is sent (Kafka input).
    pub checkpoint_interval: Duration,
    /// How often the source's counters are sent on (the trigger).
    pub stats_every: Duration,
}

/// Opens this worker's reader: its byte range of the file, or its share of the topic's `partitions`, each
/// positioned where `resume` says (else at the input's start).
pub fn open_reader(
    settings: &SourceSettings,
    partitions: usize,
    worker: usize,
    peers: usize,
    resume: &Resume,
    errors: Rc<ErrorLog>,
) -> Result<Box<dyn Reader>> {
    Ok(match &settings.input {
        Input::File(path) => Box::new(ReplayReader::open(path, worker, peers)?),
        Input::Kafka(input) => {
            let offsets: HashMap<i32, i64> = resume.partitions.iter().map(|p| (p.partition, p.next_offset)).collect();
            let stats_every = settings.stats_every;
            Box::new(KafkaReader::open(
                input,
                stats_every,
                partitions,
                worker,
                peers,
                &offsets,
                errors,
            )?)
        }
    })
}

/// The settings of a temporal join's versioned table, as its source reads it.
#[derive(Clone, Debug)]
pub struct TableSettings {
    /// The table's input (a Kafka topic read from its earliest offset, or a file).
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
    table: &TableSettings,
    source: &SourceSettings,
    worker: usize,
    peers: usize,
    resume: &BTreeMap<i32, i64>,
    errors: Rc<ErrorLog>,
) -> Result<Box<dyn Reader>> {
    Ok(match &table.input {
        Input::File(path) => Box::new(ReplayReader::open(path, worker, peers)?),
        Input::Kafka(input) => {
            let offsets: HashMap<i32, i64> = resume.iter().map(|(&p, &o)| (p, o)).collect();
            Box::new(KafkaReader::open(
                input,
                source.stats_every,
                table.partitions,
                worker,
                peers,
                &offsets,
                errors,
            )?)
        }
    })
}
