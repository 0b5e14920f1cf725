//! Kafka reader: one consumer per worker with manual assignment of the partitions that worker owns (partition
//! `p` belongs to global worker `p % workers` ([`owner`]), so every partition has exactly one owner across all
//! processes, also one added while running, whichever worker that falls to). In bounded mode each partition is read up to the high
//! watermark seen at start; unbounded, partitions added to the topic are picked up within
//! [`DISCOVERY_INTERVAL`] and read from their earliest offset. Lag comes from librdkafka's statistics. A restored
//! job seeks every partition to the offset its checkpoint recorded, once [`judge_restore`] (`startup`, with the
//! other queries made before the workers start) has checked that the log still holds it; while running, an offset the log no longer holds surfaces as librdkafka's
//! `auto.offset.reset=error` and is judged by the same rule (`source::data_loss`). Records are read in batches
//! from each owned partition's own fetch queue ([`queues`]); the consumer queue is still polled for statistics,
//! errors and the records that reached it first.

mod queues;
mod startup;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use self::queues::PartitionQueue;
pub use self::startup::{cluster_id, judge_restore, partition_count};
use self::startup::{warn_loss, watermarks};
use super::data_loss::{Clusters, Log, Moment, Position, judge};
use super::reader::{PartitionChange, ReadError, Reader};
use super::{KafkaInput, OnDataLoss, StartAt};
use crate::messages::RawRecord;
use crate::runtime::errors::{ErrorKind, ErrorLog};
use crate::runtime::teardown::{BoundedDrop, CLOSE_WITHIN};

/// How often an unbounded reader looks for partitions added to the topic.
pub const DISCOVERY_INTERVAL: Duration = Duration::from_secs(10);

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

impl LagContext {
    /// Records `partition`'s high watermark (until the next statistics).
    fn set_high(&self, partition: i32, high: i64) {
        self.high.lock().expect("not poisoned").insert(partition, high);
    }
}

/// The global worker that reads `partition`: `partition % peers`, a pure function of the two, so that the output
/// is the same for any layout. A worker that owned no partition when it started still holds its capability
/// while the topic may grow (`source::watermark`), so a partition added later can fall to it too.
pub fn owner(partition: i32, peers: usize) -> usize {
    partition as usize % peers.max(1)
}

/// Finding the partitions added to the topic while running (unbounded readers).
struct Discovery {
    worker: usize,
    peers: usize,
    /// Partitions known now.
    known: usize,
    last: Instant,
}

/// Messages taken from a partition queue per call.
const SLOTS: usize = 4096;

/// Reads the partitions one worker owns.
pub struct KafkaReader {
    /// The owned partitions' fetch queues, read in batches; dropped before `consumer` (see `Drop`).
    queues: Vec<PartitionQueue>,
    /// Room for one batch of messages.
    slots: Vec<*mut rdkafka::bindings::rd_kafka_message_t>,
    /// Which queue a poll starts with (each in turn, so that none waits behind a full one).
    turn: usize,
    /// Closed within a bound when the reader is dropped (see `crate::runtime::teardown`).
    consumer: BoundedDrop<BaseConsumer<LagContext>>,
    topic: String,
    owned: Vec<i32>,
    /// Offsets to read next and (bounded) ends, looked up for every record: a fast hash, not SipHash.
    next: foldhash::HashMap<i32, i64>,
    ends: Option<foldhash::HashMap<i32, i64>>,
    policy: OnDataLoss,
    discovery: Option<Discovery>,
    changes: Vec<PartitionChange>,
    last_error_seen: Option<Instant>,
    errors: Rc<ErrorLog>,
}

impl KafkaReader {
    /// Opens a consumer for the partitions of `topic` that `worker` (of `workers`) owns, starting each at its
    /// offset in `resume` when there is one (already judged by [`judge_restore`]), else at `--start`; on a
    /// restore, a partition the checkpoint does not know is new and starts at its earliest offset.
    pub fn open(
        input: &KafkaInput,
        stats_every: Duration,
        partitions: usize,
        worker: usize,
        workers: usize,
        resume: &HashMap<i32, i64>,
        errors: Rc<ErrorLog>,
    ) -> Result<KafkaReader> {
        let owned: Vec<i32> = (0..partitions as i32)
            .filter(|p| *p as usize % workers == worker)
            .collect();
        let stats_ms = stats_every.as_millis().clamp(1000, 60_000).to_string();
        let consumer: BaseConsumer<LagContext> = input
            .client
            .config(&[
                ("group.id", &input.group),
                ("client.id", &format!("iot-dataflow-w{worker}")),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "false"),
                // Every partition is assigned at an explicit offset (`--start` decides fresh starts), so an
                // out-of-range fetch can only mean records lost to the job: librdkafka reports it instead of
                // jumping silently (`source::data_loss` judges it).
                ("auto.offset.reset", "error"),
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
                topic: input.topic.clone(),
                ..LagContext::default()
            })
            .with_context(|| input.client.invalid())?;
        let mut next = foldhash::HashMap::default();
        let mut ends = input.bounded.then(foldhash::HashMap::default);
        let restoring = !resume.is_empty();
        for &p in &owned {
            let (low, high) = watermarks(&consumer, input, p)?;
            let start = match (resume.get(&p), input.start) {
                (Some(&offset), _) => offset,
                (None, _) if restoring => low,
                (None, StartAt::Earliest) => low,
                (None, StartAt::Latest) => high,
            };
            next.insert(p, start);
            if let Some(ends) = ends.as_mut() {
                ends.insert(p, high);
            }
            consumer.context().set_high(p, high);
        }
        let discovery = (!input.bounded).then(|| Discovery {
            worker,
            peers: workers,
            known: partitions,
            last: Instant::now(),
        });
        let mut reader = KafkaReader {
            queues: Vec::new(),
            slots: vec![std::ptr::null_mut(); SLOTS],
            turn: 0,
            consumer: BoundedDrop::new(consumer, "kafka consumer", CLOSE_WITHIN),
            topic: input.topic.clone(),
            owned,
            next,
            ends,
            policy: input.on_data_loss,
            discovery,
            changes: Vec::new(),
            last_error_seen: None,
            errors,
        };
        reader.assign().context("assigning partitions")?;
        tracing::info!(worker, partitions = ?reader.owned, bounded = input.bounded, "kafka source assigned");
        Ok(reader)
    }

    /// (Re)assigns every owned partition at the offset to read next, and takes each one's fetch queue off the
    /// consumer queue (anew: an assignment may create a partition's fetch state afresh).
    fn assign(&mut self) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for &p in &self.owned {
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(self.next[&p]))?;
        }
        self.consumer.assign(&tpl)?;
        let rk = self.consumer.client().native_ptr();
        self.queues.clear();
        for &p in &self.owned {
            // SAFETY: `rk` is this reader's consumer, which outlives its queues (they are dropped first).
            let queue = unsafe { PartitionQueue::detach(rk, &self.topic, p) }
                .ok_or_else(|| anyhow!("librdkafka has no fetch queue for {}/{p}", self.topic))?;
            self.queues.push(queue);
        }
        Ok(())
    }

    /// librdkafka found a fetch position out of range: finds which owned partitions' logs no longer hold the
    /// offset to read next and applies the data-loss rule (an error with `fail`; with `continue` the partition
    /// goes on at its log start and the loss is reported as a change). Then assigns every partition afresh,
    /// which restarts the fetch librdkafka stopped.
    fn out_of_range(&mut self) -> Result<(), ReadError> {
        for &p in &self.owned {
            let offset = self.next[&p];
            let (low, high) = match self.consumer.fetch_watermarks(&self.topic, p, Duration::from_secs(10)) {
                Ok(w) => w,
                Err(e) => {
                    self.errors.record(
                        ErrorKind::InputRead,
                        &format!(
                            "cannot read offsets of {}/{p} after an out-of-range fetch: {e}",
                            self.topic
                        ),
                    );
                    continue;
                }
            };
            let at = Position {
                topic: &self.topic,
                partition: p,
                offset,
                moment: Moment::Running,
            };
            let log = Log::Range { low, high };
            let verdict = judge(at, log, Clusters::default(), self.policy)?;
            if let (Some(loss), Some(resume)) = (&verdict.loss, verdict.resume_at) {
                warn_loss(&self.topic, p, offset, log, loss, verdict.skipped);
                self.next.insert(p, resume);
                self.consumer.context().set_high(p, high);
                self.changes.push(PartitionChange::Lost {
                    partition: p,
                    next_offset: resume,
                    skipped: verdict.skipped,
                });
            }
        }
        Ok(self
            .assign()
            .context("reassigning partitions after an out-of-range fetch")?)
    }

    /// An error librdkafka reports while it keeps retrying (a broker away, a fetch that failed).
    fn input_error(&mut self, text: &str) {
        self.last_error_seen = Some(Instant::now());
        self.errors.record(
            ErrorKind::InputRead,
            &format!("kafka consumer error; librdkafka keeps retrying: {text}"),
        );
    }

    /// Every [`DISCOVERY_INTERVAL`] (unbounded only): assigns the partitions added to the topic that this worker
    /// owns, at their earliest offset.
    fn discover(&mut self) {
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        // While the broker is in trouble a metadata request would only block the worker for its timeout.
        let troubled = self.last_error_seen.is_some_and(|t| t.elapsed() < DISCOVERY_INTERVAL);
        if d.last.elapsed() < DISCOVERY_INTERVAL || troubled {
            return;
        }
        d.last = Instant::now();
        let count = match self.consumer.fetch_metadata(Some(&self.topic), Duration::from_secs(5)) {
            Ok(md) => md
                .topics()
                .iter()
                .find(|t| t.name() == self.topic && t.error().is_none())
                .map_or(0, |t| t.partitions().len()),
            Err(e) => {
                tracing::debug!(error = %e, "partition discovery: no metadata this time");
                return;
            }
        };
        if count <= d.known {
            return;
        }
        let (worker, peers, known) = (d.worker, d.peers, d.known);
        let mut added = Vec::new();
        for p in known as i32..count as i32 {
            if owner(p, peers) != worker {
                continue;
            }
            let low = match self.consumer.fetch_watermarks(&self.topic, p, Duration::from_secs(10)) {
                Ok((low, high)) => {
                    self.consumer.context().set_high(p, high);
                    low
                }
                Err(e) => {
                    self.errors.record(
                        ErrorKind::InputRead,
                        &format!("cannot read offsets of new partition {}/{p}; retrying: {e}", self.topic),
                    );
                    return;
                }
            };
            added.push((p, low));
        }
        for &(p, low) in &added {
            self.owned.push(p);
            self.next.insert(p, low);
        }
        if let Err(e) = self.assign() {
            for &(p, _) in &added {
                self.owned.retain(|&o| o != p);
                self.next.remove(&p);
            }
            self.errors.record(
                ErrorKind::InputRead,
                &format!("cannot assign new partitions of {}; retrying: {e:#}", self.topic),
            );
            return;
        }
        if let Some(d) = self.discovery.as_mut() {
            d.known = count;
        }
        for (p, low) in added {
            tracing::info!(topic = %self.topic, partition = p, from_offset = low, worker, "partition added to the topic: reading it");
            self.changes.push(PartitionChange::Added {
                partition: p,
                next_offset: low,
            });
        }
    }
}

impl Drop for KafkaReader {
    fn drop(&mut self) {
        // The partition queues hold references into the consumer: let them go before it is destroyed.
        self.queues.clear();
    }
}

/// Whether the record at `offset` of partition `p` is to be read (not past the partition's bounded end, not
/// one already read), recording it as read.
fn accept(
    next: &mut foldhash::HashMap<i32, i64>,
    ends: Option<&foldhash::HashMap<i32, i64>>,
    p: i32,
    offset: i64,
) -> bool {
    if let Some(end) = ends.and_then(|e| e.get(&p))
        && offset >= *end
    {
        // Past the bounded end: ignore (the partition is done).
        return false;
    }
    let slot = next.entry(p).or_insert(offset);
    if offset < *slot {
        return false;
    }
    *slot = offset + 1;
    true
}

impl Reader for KafkaReader {
    fn partitions(&self) -> Vec<i32> {
        self.owned.clone()
    }

    fn poll(&mut self, max: usize, sink: &mut dyn FnMut(RawRecord<'_>)) -> Result<usize, ReadError> {
        let mut n = 0;
        // The consumer queue first: statistics (the lag), errors, and the records of a partition that reached it
        // before the partition's queue was detached, which are older than those waiting in that queue.
        while n < max {
            match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(m)) => {
                    let (p, offset) = (m.partition(), m.offset());
                    if accept(&mut self.next, self.ends.as_ref(), p, offset) {
                        sink(RawRecord {
                            partition: p,
                            offset,
                            key: m.key(),
                            value: m.payload(),
                            timestamp: m.payload().is_none().then(|| m.timestamp().to_millis()).flatten(),
                        });
                        n += 1;
                    }
                }
                Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::AutoOffsetReset) => {
                    self.out_of_range()?;
                    self.discover();
                    return Ok(n);
                }
                Some(Err(e)) => {
                    self.input_error(&e.to_string());
                    break;
                }
            }
        }
        // Then each partition's queue in batches, starting with a different one each time.
        let mut out_of_range = false;
        let mut failures: Vec<String> = Vec::new();
        let count = self.queues.len();
        let mut progress = true;
        while n < max && progress && !out_of_range {
            progress = false;
            for i in 0..count {
                let room = (max - n).min(self.slots.len());
                if room == 0 {
                    break;
                }
                let queue = &self.queues[(self.turn + i) % count];
                let p = queue.partition();
                let (next, ends) = (&mut self.next, self.ends.as_ref());
                let taken = queue.drain(&mut self.slots[..room], |m| match m.error() {
                    Some((RDKafkaErrorCode::AutoOffsetReset, _)) => out_of_range = true,
                    Some((_, text)) => failures.push(text),
                    None => {
                        if accept(next, ends, p, m.offset()) {
                            sink(RawRecord {
                                partition: p,
                                offset: m.offset(),
                                key: m.key(),
                                value: m.payload(),
                                timestamp: m.payload().is_none().then(|| m.timestamp()).flatten(),
                            });
                            n += 1;
                        }
                    }
                });
                progress |= taken > 0;
            }
        }
        self.turn = self.turn.wrapping_add(1);
        for text in failures {
            self.input_error(&text);
        }
        if out_of_range {
            self.out_of_range()?;
        }
        // After the batch: the source takes a new partition over before any of its records is read.
        self.discover();
        Ok(n)
    }

    fn take_changes(&mut self) -> Vec<PartitionChange> {
        std::mem::take(&mut self.changes)
    }

    fn may_gain_partitions(&self) -> bool {
        self.discovery.is_some()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_belong_to_partition_mod_workers_also_when_added_later() {
        for p in 0..12 {
            assert_eq!(owner(p, 3), p as usize % 3);
        }
        // One partition at start, two workers: the partition added later is worker 1's, which read nothing.
        assert_eq!((owner(0, 2), owner(1, 2)), (0, 1));
        // Three partitions at start, four workers: worker 3 takes partition 3 when it is added.
        assert_eq!((owner(3, 4), owner(4, 4), owner(7, 4)), (3, 0, 3));
    }
}
