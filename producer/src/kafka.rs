//! Publishing to Kafka: connects with a bounded wait (an unreachable broker is a clear error naming
//! `--brokers`, not a hang), creates the topic when missing, sends with back-pressure, and counts deliveries.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use crate::sim::Record;

/// How long to wait for the broker's first answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts acknowledged and failed deliveries.
#[derive(Default)]
pub struct DeliveryCounter {
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((err, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::error!(error = %err, "delivery failed");
                    *self.first_error.lock().expect("not poisoned") = Some(err.to_string());
                }
            }
        }
    }
}

/// A connected Kafka producer.
pub struct KafkaSink {
    brokers: String,
    producer: ThreadedProducer<DeliveryCounter>,
    admin: AdminClient<DefaultClientContext>,
}

impl KafkaSink {
    /// Connects and checks within a few seconds that the broker answers.
    pub fn connect(brokers: &str, extra: &[String]) -> Result<KafkaSink> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "60000");
        for option in extra {
            let (k, v) = option
                .split_once('=')
                .ok_or_else(|| anyhow!("--kafka-option must be KEY=VALUE, got {option:?}"))?;
            config.set(k, v);
        }
        let producer: ThreadedProducer<DeliveryCounter> = config
            .create_with_context(DeliveryCounter::default())
            .with_context(|| format!("invalid Kafka settings for --brokers {brokers}"))?;
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .create()
                .with_context(|| format!("invalid Kafka settings for --brokers {brokers}"))?;
        producer
            .client()
            .fetch_metadata(None, CONNECT_TIMEOUT)
            .map_err(|e| anyhow!("cannot reach Kafka at {brokers} (--brokers): {e}"))?;
        Ok(KafkaSink {
            brokers: brokers.to_string(),
            producer,
            admin,
        })
    }

    /// Creates `topic` with `partitions` partitions if it does not exist; warns if it exists with another count.
    pub fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        self.ensure_topic_with(topic, partitions, &[])
    }

    /// [`Self::ensure_topic`] with topic settings for a new topic (e.g. `cleanup.policy=compact`).
    pub fn ensure_topic_with(&self, topic: &str, partitions: i32, settings: &[(&str, &str)]) -> Result<()> {
        if let Some(existing) = self.partition_count(topic)? {
            if existing != partitions {
                tracing::warn!(
                    topic,
                    existing,
                    requested = partitions,
                    "topic exists with another partition count"
                );
            }
            return Ok(());
        }
        let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        for (key, value) in settings {
            new = new.set(key, value);
        }
        let opts = AdminOptions::new().operation_timeout(Some(CONNECT_TIMEOUT));
        let results = futures_executor::block_on(self.admin.create_topics([&new], &opts))
            .with_context(|| format!("creating topic {topic} on {}", self.brokers))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    bail!("cannot create topic {name} on {}: {code}", self.brokers)
                }
            }
        }
        tracing::info!(topic, partitions, "created topic");
        // Metadata can lag creation by a moment; wait until the partitions are visible.
        for _ in 0..50 {
            if self.partition_count(topic)?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "topic {topic} was created but does not appear in the metadata of {}",
            self.brokers
        )
    }

    fn partition_count(&self, topic: &str) -> Result<Option<i32>> {
        let metadata = self
            .producer
            .client()
            .fetch_metadata(Some(topic), CONNECT_TIMEOUT)
            .map_err(|e| anyhow!("cannot reach Kafka at {} (--brokers): {e}", self.brokers))?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.partitions().len() as i32))
    }

    /// Sends one record, waiting while the local queue is full. Returns `false` (not sent) if `stop` is raised
    /// while waiting.
    pub fn send(&self, topic: &str, record: &Record, stop: &AtomicBool) -> Result<bool> {
        self.send_raw(topic, record.key.as_bytes(), record.value.as_deref(), stop)
    }

    /// Sends one record of `key` and `value` (`None`: a tombstone), as [`Self::send`] does.
    pub fn send_raw(&self, topic: &str, key: &[u8], value: Option<&[u8]>, stop: &AtomicBool) -> Result<bool> {
        loop {
            let mut base = BaseRecord::to(topic).key(key);
            if let Some(value) = value {
                base = base.payload(value);
            }
            match self.producer.send(base) {
                Ok(()) => return Ok(true),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(false);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((err, _)) => {
                    return Err(anyhow!("cannot send to {topic} on {}: {err}", self.brokers));
                }
            }
        }
    }

    /// Acknowledged and failed deliveries so far.
    pub fn delivered(&self) -> (u64, u64) {
        let c = self.producer.context();
        (c.acked.load(Ordering::Relaxed), c.failed.load(Ordering::Relaxed))
    }

    /// Waits until everything sent has been acknowledged or has failed.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.producer.flush(timeout).map_err(|e| {
            anyhow!(
                "could not deliver everything to {} within {timeout:?}: {e}",
                self.brokers
            )
        })
    }
}
