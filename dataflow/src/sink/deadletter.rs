//! Dead-letter output: bad and late records as JSON lines (reason, detail, partition, offset, key, original
//! payload — base64 when not UTF-8), one file per worker in `--deadletter`, appended across restarts; and, when
//! `--dlq-topic` is set, the same lines published to Kafka. The source writes to it through
//! [`DeadLetterOut`], the port the messages module defines, so it never knows this stage.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{Context, Result};
use base64::Engine;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde::Serialize;

use crate::messages::{DeadLetter, DeadLetterOut};
use crate::runtime::errors::{ErrorKind, ErrorLog};
use crate::runtime::kafka_client::KafkaClient;

/// The dead-letter stage's settings.
#[derive(Clone, Debug)]
pub struct DeadLetterSettings {
    /// Folder of the JSON-lines files (`--deadletter`).
    pub dir: PathBuf,
    /// Also publish them to this topic (`--dlq-topic`), through this cluster.
    pub topic: Option<(KafkaClient, String)>,
}

/// The JSON-lines shape of a dead letter.
#[derive(Serialize)]
struct Line<'a> {
    reason: &'a str,
    detail: &'a str,
    partition: i32,
    offset: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_base64: Option<String>,
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window_end: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    watermark: Option<u64>,
    at: String,
}

fn text_or_base64(bytes: Option<&[u8]>) -> (Option<&str>, Option<String>) {
    match bytes {
        None => (None, None),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => (Some(s), None),
            Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(b))),
        },
    }
}

/// Serialises a dead letter as one JSON line (without the newline).
pub fn to_line(letter: &DeadLetter) -> String {
    let (key, key_base64) = text_or_base64(letter.key.as_deref());
    let (payload, payload_base64) = text_or_base64(letter.payload.as_deref());
    serde_json::to_string(&Line {
        reason: &letter.reason,
        detail: &letter.detail,
        partition: letter.partition,
        offset: letter.offset,
        key,
        key_base64,
        payload,
        payload_base64,
        ts: letter.ts,
        window_end: letter.window_end,
        watermark: letter.watermark,
        at: model::time::rfc3339_ms(model::time::now_ms()),
    })
    .expect("dead letter serialises")
}

/// One worker's dead-letter writer.
pub struct DeadLetterWriter {
    file: BufWriter<File>,
    kafka: Option<(ThreadedProducer<DefaultProducerContext>, String)>,
    errors: Rc<ErrorLog>,
}

impl DeadLetterWriter {
    /// Opens (appending) `dir/dead-letters-w<worker>.jsonl`, and a producer when a DLQ topic is given. Errors
    /// of later writes are counted in `errors`.
    pub fn open(settings: &DeadLetterSettings, worker: usize, errors: Rc<ErrorLog>) -> Result<DeadLetterWriter> {
        let path = settings.dir.join(format!("dead-letters-w{worker}.jsonl"));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open dead-letter file {} (--deadletter)", path.display()))?;
        let kafka = match &settings.topic {
            Some((client, topic)) => {
                let producer: ThreadedProducer<DefaultProducerContext> =
                    client.config(&[("linger.ms", "20")]).create().with_context(|| {
                        format!(
                            "cannot create the dead-letter producer for {} (--brokers, --kafka-option)",
                            client.brokers
                        )
                    })?;
                Some((producer, topic.to_string()))
            }
            None => None,
        };
        Ok(DeadLetterWriter {
            file: BufWriter::with_capacity(1 << 16, file),
            kafka,
            errors,
        })
    }

    /// Writes one dead letter; a failure is counted (`deadletter_write`, `deadletter_publish`), never fatal.
    pub fn write(&mut self, letter: &DeadLetter) {
        let line = to_line(letter);
        if let Err(e) = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.write_all(b"\n"))
        {
            self.errors.record(ErrorKind::DeadLetterWrite, &e);
        }
        if let Some((producer, topic)) = &self.kafka {
            let mut record = BaseRecord::to(topic).payload(line.as_bytes());
            if let Some(key) = &letter.key {
                record = record.key(key.as_slice());
            }
            if let Err((e, _)) = producer.send(record) {
                self.errors.record(
                    ErrorKind::DeadLetterPublish,
                    &format!("cannot publish a dead letter to {topic} (it is in the file): {e}"),
                );
            }
        }
    }

    /// Pushes buffered lines to the file and to disk (and to the DLQ topic): everything written so far
    /// survives a crash.
    pub fn sync(&mut self) -> Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_data()?;
        if let Some((producer, _)) = &self.kafka {
            let _ = producer.flush(std::time::Duration::from_secs(10));
        }
        Ok(())
    }
}

impl DeadLetterOut for DeadLetterWriter {
    fn write(&mut self, letter: &DeadLetter) {
        DeadLetterWriter::write(self, letter);
    }

    fn sync_or_count(&mut self) {
        if let Err(e) = self.sync() {
            self.errors
                .record(ErrorKind::DeadLetterWrite, &format!("cannot flush dead letters: {e:#}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(payload: &[u8]) -> DeadLetter {
        DeadLetter {
            reason: "bad_utf8".into(),
            detail: "d".into(),
            partition: 1,
            offset: 9,
            key: Some(b"device-1".to_vec()),
            payload: Some(payload.to_vec()),
            ts: None,
            window_end: None,
            watermark: None,
        }
    }

    #[test]
    fn utf8_payload_is_kept_as_text() {
        let v: serde_json::Value = serde_json::from_str(&to_line(&letter(b"{\"a\":"))).unwrap();
        assert_eq!(v["payload"], "{\"a\":");
        assert_eq!(v["key"], "device-1");
        assert!(v.get("payload_base64").is_none());
        assert_eq!((v["partition"].as_i64(), v["offset"].as_i64()), (Some(1), Some(9)));
    }

    #[test]
    fn non_utf8_payload_is_base64() {
        let v: serde_json::Value = serde_json::from_str(&to_line(&letter(&[0xff, 0x00, b'a']))).unwrap();
        assert!(v["payload"].is_null());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(v["payload_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, vec![0xff, 0x00, b'a']);
    }
}
