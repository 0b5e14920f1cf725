//! What the job asks the broker before any worker starts: the topic's partition count, the cluster id its
//! checkpoints record, and whether a restored checkpoint's offsets are still in the partitions' logs
//! ([`judge_restore`]). The partition watermarks and the data-loss warning are shared with the running reader.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use crate::messages::{PartitionState, RecordCounts};
use crate::source::KafkaInput;
use crate::source::data_loss::{Clusters, Log, Loss, Moment, Position, judge};

/// Number of partitions of `topic`, checking on the way that the broker answers.
pub fn partition_count(input: &KafkaInput) -> Result<usize> {
    let (brokers, topic) = (input.client.brokers.as_str(), input.topic.as_str());
    let consumer: BaseConsumer = input
        .client
        .config(&[])
        .create()
        .with_context(|| input.client.invalid())?;
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

/// The Kafka cluster id of `--brokers` (`None` when the broker does not tell), recorded in every checkpoint.
pub fn cluster_id(input: &KafkaInput) -> Result<Option<String>> {
    let consumer: BaseConsumer = input
        .client
        .config(&[])
        .create()
        .with_context(|| input.client.invalid())?;
    Ok(consumer.client().fetch_cluster_id(Duration::from_secs(10)))
}

/// Checks a restored checkpoint's partition states against the broker before any worker starts (see
/// `source::data_loss`): every checkpointed partition's offset must still be in its log, and the checkpoint must
/// be of this cluster (`clusters`). With `--on-data-loss fail` a loss is the error returned; with `continue` the
/// partition resumes at its log start, the loss is counted in its state (`data_loss`, `skipped_records`), and a
/// partition that no longer exists hands its counts to the lowest one that does, so that no total goes back.
/// Returns the states to resume from.
pub fn judge_restore(
    input: &KafkaInput,
    partitions: usize,
    clusters: Clusters<'_>,
    states: Vec<PartitionState>,
) -> Result<Vec<PartitionState>> {
    let consumer: BaseConsumer = input
        .client
        .config(&[])
        .create()
        .with_context(|| input.client.invalid())?;
    let mut kept: Vec<PartitionState> = Vec::with_capacity(states.len());
    let mut orphaned = RecordCounts::default();
    for mut p in states {
        let log = if p.partition < 0 || p.partition as usize >= partitions {
            Log::Missing { partitions }
        } else {
            let (low, high) = watermarks(&consumer, input, p.partition)?;
            Log::Range { low, high }
        };
        let at = Position {
            topic: &input.topic,
            partition: p.partition,
            offset: p.next_offset,
            moment: Moment::Restore,
        };
        let verdict = judge(at, log, clusters, input.on_data_loss)?;
        if let Some(loss) = &verdict.loss {
            warn_loss(&input.topic, p.partition, p.next_offset, log, loss, verdict.skipped);
            p.counts.data_loss += 1;
            p.counts.skipped_records += verdict.skipped;
        }
        match verdict.resume_at {
            Some(offset) => {
                p.next_offset = offset;
                kept.push(p);
            }
            None => orphaned.add(&p.counts),
        }
    }
    if orphaned != Default::default() {
        match kept.first_mut() {
            Some(first) => first.counts.add(&orphaned),
            None => tracing::warn!("no partition of the checkpoint exists any more; its counts start over"),
        }
    }
    Ok(kept)
}

pub(super) fn watermarks<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    input: &KafkaInput,
    p: i32,
) -> Result<(i64, i64)> {
    consumer
        .fetch_watermarks(&input.topic, p, Duration::from_secs(30))
        .map_err(|e| {
            anyhow!(
                "cannot read offsets of {}/{p} from {} (--brokers): {e}",
                input.topic,
                input.client.brokers
            )
        })
}

pub(super) fn warn_loss(topic: &str, partition: i32, offset: i64, log: Log, loss: &Loss, skipped: u64) {
    let (low, high) = match log {
        Log::Range { low, high } => (Some(low), Some(high)),
        Log::Missing { .. } => (None, None),
    };
    tracing::warn!(
        topic,
        partition,
        offset,
        low,
        high,
        skipped_records = skipped,
        loss = ?loss,
        "data loss: the partition's log no longer holds the offset to read next; going on from the earliest \
         offset that exists (--on-data-loss continue)"
    );
}
