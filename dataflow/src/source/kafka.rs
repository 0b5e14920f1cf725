//! Kafka reader: one consumer per worker with manual assignment of the partitions that worker owns (partition
//! `p` belongs to global worker `p % workers`, so every partition has exactly one owner across all processes).
//! In bounded mode each partition is read up to the high watermark seen at start. Lag comes from librdkafka's
//! statistics. A restored job seeks every partition to the offset its checkpoint recorded.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::reader::Reader;
use crate::config::{JobConfig, StartAt};
use crate::errors::{ErrorKind, ErrorLog};
use crate::messages::RawRecord;

/// High watermarks per partition, refreshed by librdkafka's statistics callback.
#[derive(Default)]
pub struct LagContext {
    high: Mutex<HashMap<i32, i64>>,
    topic: String,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        if let Some(topic) = statistics.topics.get(&self.topic) {
            let mut high = self.high.lock().expect("not poisoned");
            for (p, part) in &topic.partitions {
                if *p >= 0 && part.hi_offset >= 0 {
                    high.insert(*p, part.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for LagContext {}

/// Number of partitions of `topic`, checking on the way that the broker answers.
pub fn partition_count(config: &JobConfig) -> Result<usize> {
    let (brokers, topic) = (config.brokers.as_str(), config.topic.as_str());
    let consumer: BaseConsumer = config
        .kafka_client(&[])
        .create()
        .with_context(|| format!("invalid Kafka settings (--brokers {brokers}, --kafka-option)"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| anyhow!("cannot reach Kafka at {brokers} (--brokers): {e}"))?;
    let t = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| anyhow!("topic {topic} not found on {brokers} (--topic)"))?;
    if t.error().is_some() || t.partitions().is_empty() {
        return Err(anyhow!(
            "topic {topic} does not exist on {brokers} (--topic): create it, or start the producer first"
        ));
    }
    Ok(t.partitions().len())
}

/// Reads the partitions one worker owns.
pub struct KafkaReader {
    consumer: BaseConsumer<LagContext>,
    owned: Vec<i32>,
    next: HashMap<i32, i64>,
    ends: Option<HashMap<i32, i64>>,
    last_error_seen: Option<Instant>,
    errors: Rc<ErrorLog>,
}

impl KafkaReader {
    /// Opens a consumer for the partitions of `topic` that `worker` (of `workers`) owns, starting each at its
    /// offset in `resume` when there is one, else at `--start`.
    pub fn open(
        config: &JobConfig,
        partitions: usize,
        worker: usize,
        workers: usize,
        resume: &HashMap<i32, i64>,
        errors: Rc<ErrorLog>,
    ) -> Result<KafkaReader> {
        let owned: Vec<i32> = (0..partitions as i32)
            .filter(|p| *p as usize % workers == worker)
            .collect();
        let stats_ms = config.trigger.as_millis().clamp(1000, 60_000).to_string();
        let start = match config.start {
            StartAt::Earliest => "earliest",
            StartAt::Latest => "latest",
        };
        let consumer: BaseConsumer<LagContext> = config
            .kafka_client(&[
                ("group.id", &config.group),
                ("client.id", &format!("iot-dataflow-w{worker}")),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "false"),
                ("auto.offset.reset", start),
                ("statistics.interval.ms", &stats_ms),
                // A short pre-fetch queue bounded by bytes keeps memory small (about 16 MB per consumer, not
                // librdkafka's 64 MB); a 10 ms back-off when it is full (librdkafka waits 1 s by default) keeps
                // the consumer fed: 3.2x the throughput of a backlog (see BENCHMARKS.md).
                ("queued.min.messages", "20000"),
                ("queued.max.messages.kbytes", "16384"),
                ("fetch.queue.backoff.ms", "10"),
                ("fetch.wait.max.ms", "50"),
            ])
            .create_with_context(LagContext {
                topic: config.topic.clone(),
                ..LagContext::default()
            })
            .with_context(|| format!("invalid Kafka settings (--brokers {}, --kafka-option)", config.brokers))?;
        let mut tpl = TopicPartitionList::new();
        let mut next = HashMap::new();
        let mut ends = config.bounded.then(HashMap::new);
        for &p in &owned {
            let (low, high) = consumer
                .fetch_watermarks(&config.topic, p, Duration::from_secs(30))
                .map_err(|e| {
                    anyhow!(
                        "cannot read offsets of {}/{p} from {} (--brokers): {e}",
                        config.topic,
                        config.brokers
                    )
                })?;
            let start = match (resume.get(&p), config.start) {
                (Some(&offset), _) => offset.clamp(low, high),
                (None, StartAt::Earliest) => low,
                (None, StartAt::Latest) => high,
            };
            if resume.get(&p).is_some_and(|&o| o < low) {
                tracing::warn!(
                    partition = p,
                    resume = resume[&p],
                    low,
                    "checkpointed offset no longer in Kafka (retention); resuming at the oldest record"
                );
            }
            tpl.add_partition_offset(&config.topic, p, Offset::Offset(start))?;
            next.insert(p, start);
            if let Some(ends) = ends.as_mut() {
                ends.insert(p, high);
            }
            consumer.context().high.lock().expect("not poisoned").insert(p, high);
        }
        consumer.assign(&tpl).context("assigning partitions")?;
        tracing::info!(worker, partitions = ?owned, bounded = config.bounded, "kafka source assigned");
        Ok(KafkaReader {
            consumer,
            owned,
            next,
            ends,
            last_error_seen: None,
            errors,
        })
    }
}

impl Reader for KafkaReader {
    fn partitions(&self) -> Vec<i32> {
        self.owned.clone()
    }

    fn poll(&mut self, max: usize, sink: &mut dyn FnMut(RawRecord<'_>)) -> Result<usize> {
        let mut n = 0;
        while n < max {
            match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(m)) => {
                    let p = m.partition();
                    if let Some(end) = self.ends.as_ref().and_then(|e| e.get(&p))
                        && m.offset() >= *end
                    {
                        // Past the bounded end: ignore (the partition is done).
                        continue;
                    }
                    self.next.insert(p, m.offset() + 1);
                    sink(RawRecord {
                        partition: p,
                        offset: m.offset(),
                        key: m.key(),
                        value: m.payload(),
                    });
                    n += 1;
                }
                Some(Err(e)) => {
                    self.last_error_seen = Some(Instant::now());
                    self.errors.record(
                        ErrorKind::InputRead,
                        &format!("kafka consumer error; librdkafka keeps retrying: {e}"),
                    );
                    break;
                }
            }
        }
        Ok(n)
    }

    fn is_done(&self, partition: i32) -> bool {
        match &self.ends {
            Some(ends) => self.next.get(&partition).copied().unwrap_or(0) >= ends.get(&partition).copied().unwrap_or(0),
            None => false,
        }
    }

    fn lag(&self) -> u64 {
        let high = self.consumer.context().high.lock().expect("not poisoned");
        self.owned
            .iter()
            .map(|p| {
                let h = high.get(p).copied().unwrap_or(0);
                let n = self.next.get(p).copied().unwrap_or(0);
                (h - n).max(0) as u64
            })
            .sum()
    }

    fn next_offset(&self, partition: i32) -> i64 {
        self.next.get(&partition).copied().unwrap_or(0)
    }

    fn may_be_idle(&self, partition: i32, idle_timeout: Duration) -> bool {
        let troubled = self.last_error_seen.is_some_and(|t| t.elapsed() < idle_timeout);
        let high = self
            .consumer
            .context()
            .high
            .lock()
            .expect("not poisoned")
            .get(&partition)
            .copied();
        let caught_up = high.is_none_or(|h| self.next_offset(partition) >= h);
        !troubled && caught_up
    }
}
