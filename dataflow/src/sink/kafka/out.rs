//! What the Kafka output's writer and its recovery share: the sink topic's record of a final window (key the
//! group's key, value the `latest.json` record; `model::output`), timestamp the window end) and how it is produced, what a writer
//! thread shares with its worker (how far it committed, its errors), and the crash points of the test hook.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};

use model::output::{JsonRecord, OutputSchema, record_key};
use model::value::Value;

use crate::sink::kafka::register::CALL_TIMEOUT;

/// One record of the sink topic: a group's final window.
#[derive(Clone, Debug, PartialEq)]
pub struct OutRecord {
    /// The group's key (`model::output::record_key`).
    pub key: String,
    /// The `latest.json` record, as JSON.
    pub value: Vec<u8>,
    /// The window's end, epoch ms (the record's timestamp).
    pub timestamp: i64,
}

impl OutRecord {
    /// The record of the final window `row` (of `schema`'s columns).
    pub fn of(schema: &OutputSchema, row: &[Value]) -> OutRecord {
        let record = JsonRecord {
            schema,
            row,
            is_final: true,
        };
        let end = match row.get(schema.window_start() + 1) {
            Some(Value::Timestamp(ms)) => *ms,
            _ => 0,
        };
        OutRecord {
            key: record_key(schema, row),
            value: serde_json::to_vec(&record).expect("a record serialises"),
            timestamp: end,
        }
    }
}

/// What a writer shares with its worker.
#[derive(Clone, Default)]
pub struct Shared {
    /// Per writer this worker speaks for, the newest checkpoint its transactions are committed through (for the
    /// worker's checkpoint parts).
    pub confirmed: Arc<Mutex<BTreeMap<usize, u64>>>,
    /// Errors met since the worker last looked (it counts them).
    pub errors: Arc<Mutex<Vec<String>>>,
}

impl Shared {
    /// Keeps an error for the worker to count.
    pub fn error(&self, e: &anyhow::Error) {
        self.errors.lock().expect("not poisoned").push(format!("{e:#}"));
    }

    /// Records that `writer`'s transactions are committed through checkpoint `id`.
    pub fn confirm(&self, writer: usize, id: u64) {
        let mut c = self.confirmed.lock().expect("not poisoned");
        let entry = c.entry(writer).or_default();
        *entry = (*entry).max(id);
    }
}

/// The Kafka output's crash points (`commit`, `republish`; see `crate::runtime::crash_hook`).
pub fn maybe_crash(point: &str, count: &mut u64) {
    crate::runtime::crash_hook::maybe_crash("IOT_TEST_SINK_CRASH", point, count);
}

/// Produces one record, waiting while librdkafka's queue is full.
pub fn send(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, r: &OutRecord) -> Result<()> {
    let mut record = BaseRecord::to(topic)
        .key(r.key.as_bytes())
        .payload(r.value.as_slice())
        .timestamp(r.timestamp);
    let deadline = Instant::now() + CALL_TIMEOUT;
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) if Instant::now() < deadline => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(anyhow!("cannot produce to {topic}: {e}")),
        }
    }
}
