//! What the job asks the broker before any worker starts: the topic's partition count, the cluster id its
//! checkpoints record, and whether a restored checkpoint's offsets are still in the partitions' logs
//! ([`judge_restore`]). The partition watermarks and the data-loss warning are shared with the running reader.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use crate::checkpoint::format::{Manifest, PartitionCheckpoint};
use crate::config::JobConfig;
use crate::source::data_loss::{Clusters, Log, Loss, Moment, Position, judge};

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

/// The Kafka cluster id of `--brokers` (`None` when the broker does not tell), recorded in every checkpoint.
pub fn cluster_id(config: &JobConfig) -> Result<Option<String>> {
    let consumer: BaseConsumer = config
        .kafka_client(&[])
        .create()
        .with_context(|| format!("invalid Kafka settings (--brokers {}, --kafka-option)", config.brokers))?;
    Ok(consumer.client().fetch_cluster_id(Duration::from_secs(10)))
}

/// Checks a restored checkpoint against the broker before any worker starts (see `source::data_loss`): every
/// checkpointed partition's offset must still be in its log, and the checkpoint must be of this cluster. With
/// `--on-data-loss fail` a loss is the error returned; with `continue` the partition resumes at its log start,
/// the loss is counted in its state (`data_loss`, `skipped_records`), and a partition that no longer exists
/// hands its counts to the lowest one that does, so that no total goes back.
pub fn judge_restore(
    config: &JobConfig,
    partitions: usize,
    cluster_now: Option<&str>,
    manifest: &mut Manifest,
) -> Result<()> {
    let consumer: BaseConsumer = config
        .kafka_client(&[])
        .create()
        .with_context(|| format!("invalid Kafka settings (--brokers {}, --kafka-option)", config.brokers))?;
    let clusters = Clusters {
        checkpointed: manifest.cluster_id.as_deref(),
        now: cluster_now,
    };
    let mut kept: Vec<PartitionCheckpoint> = Vec::with_capacity(manifest.partitions.len());
    let mut orphaned = crate::messages::RecordCounts::default();
    for mut p in std::mem::take(&mut manifest.partitions) {
        let log = if p.partition < 0 || p.partition as usize >= partitions {
            Log::Missing { partitions }
        } else {
            let (low, high) = watermarks(&consumer, config, p.partition)?;
            Log::Range { low, high }
        };
        let at = Position {
            topic: &config.topic,
            partition: p.partition,
            offset: p.next_offset,
            moment: Moment::Restore,
        };
        let verdict = judge(at, log, clusters, config.on_data_loss)?;
        if let Some(loss) = &verdict.loss {
            warn_loss(&config.topic, p.partition, p.next_offset, log, loss, verdict.skipped);
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
    manifest.partitions = kept;
    Ok(())
}

pub(super) fn watermarks<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    config: &JobConfig,
    p: i32,
) -> Result<(i64, i64)> {
    consumer
        .fetch_watermarks(&config.topic, p, Duration::from_secs(30))
        .map_err(|e| {
            anyhow!(
                "cannot read offsets of {}/{p} from {} (--brokers): {e}",
                config.topic,
                config.brokers
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
