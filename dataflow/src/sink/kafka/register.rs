//! The Kafka side of the exactly-once output, apart from the protocol's order: the sink topic (created when
//! missing), a writer's transactional producer (its id stable per writer, so a restarted job fences its
//! zombie), and the writer's *register*: the newest checkpoint whose transaction committed, kept by Kafka itself
//! as the offset of a consumer group named after the transactional id and committed inside each transaction
//! (`send_offsets_to_transaction`), so it moves if and only if the transaction commits.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use super::SinkSettings;

/// How long one Kafka call of the sink may block its thread.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The transactional id of writer `writer` (a global worker index) of the job's output to `sink`.
pub fn transactional_id(sink: &SinkSettings, writer: usize) -> String {
    format!("{}.sink.{}.w{writer}", sink.group, sink.topic)
}

/// Creates the sink topic when it does not exist, with `--sink-partitions` or the input's partition count.
pub fn ensure_topic(sink: &SinkSettings, input_partitions: usize) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = sink
        .client
        .config(&[])
        .create()
        .with_context(|| sink.client.invalid())?;
    let partitions = sink.partitions.unwrap_or(input_partitions.max(1) as i32);
    let topic = NewTopic::new(&sink.topic, partitions, TopicReplication::Fixed(-1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let results = futures_executor::block_on(admin.create_topics([&topic], &opts)).map_err(|e| {
        anyhow!(
            "cannot create --sink-topic {} on {}: {e}",
            sink.topic,
            sink.client.brokers
        )
    })?;
    for r in results {
        match r {
            Ok(_) => tracing::info!(topic = %sink.topic, partitions, "created the sink topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(anyhow!(
                    "cannot create --sink-topic {name} on {}: {code} (create it yourself, or check the \
                     broker's permissions)",
                    sink.client.brokers
                ));
            }
        }
    }
    Ok(())
}

/// A transactional producer for `id`, its earlier incarnations fenced (`init_transactions` aborts what they
/// left open).
pub fn open_producer(sink: &SinkSettings, id: &str) -> Result<ThreadedProducer<DefaultProducerContext>> {
    let producer: ThreadedProducer<DefaultProducerContext> = sink
        .client
        .config(&[
            ("transactional.id", id),
            ("enable.idempotence", "true"),
            // As Java producers do, so that key-partitioned consumers find a device where they expect it.
            ("partitioner", "murmur2_random"),
            ("linger.ms", "20"),
        ])
        .create()
        .with_context(|| format!("cannot create the sink producer {id} (--brokers, --kafka-option)"))?;
    producer
        .init_transactions(CALL_TIMEOUT)
        .map_err(|e| anyhow!("cannot start the transactions of {id} on {}: {e}", sink.client.brokers))?;
    Ok(producer)
}

/// Writer `id`'s register: where it is read from and how a transaction moves it.
pub struct Register {
    consumer: BaseConsumer,
    topic: String,
}

impl Register {
    /// The register of transactional id `id` (a consumer group of that name on partition 0 of the sink topic).
    pub fn open(sink: &SinkSettings, id: &str) -> Result<Register> {
        let consumer: BaseConsumer = sink
            .client
            .config(&[
                ("group.id", id),
                ("enable.auto.commit", "false"),
                ("isolation.level", "read_committed"),
            ])
            .create()
            .with_context(|| format!("cannot create the register reader of {id} (--brokers, --kafka-option)"))?;
        Ok(Register {
            consumer,
            topic: sink.topic.clone(),
        })
    }

    /// The newest checkpoint of `lineage` whose transaction committed (0: none; a register of another lineage,
    /// left by checkpoints discarded with `--fresh`, counts as none).
    pub fn read(&self, lineage: &str) -> Result<u64> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, 0);
        let got = self
            .consumer
            .committed_offsets(tpl, CALL_TIMEOUT)
            .map_err(|e| anyhow!("cannot read the sink's register: {e}"))?;
        let Some(e) = got.find_partition(&self.topic, 0) else {
            return Ok(0);
        };
        Ok(match e.offset() {
            Offset::Offset(n) if n > 0 && e.metadata() == lineage => n as u64,
            _ => 0,
        })
    }

    /// Adds "checkpoint `id` of `lineage` is committed" to `producer`'s open transaction.
    pub fn move_in(&self, producer: &ThreadedProducer<DefaultProducerContext>, id: u64, lineage: &str) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        let mut e = tpl.add_partition(&self.topic, 0);
        e.set_offset(Offset::Offset(id as i64))?;
        e.set_metadata(lineage);
        let group = self
            .consumer
            .group_metadata()
            .ok_or_else(|| anyhow!("the register has no consumer group metadata"))?;
        producer
            .send_offsets_to_transaction(&tpl, &group, CALL_TIMEOUT)
            .map_err(|e| anyhow!("cannot add the register to the transaction: {e}"))
    }
}
