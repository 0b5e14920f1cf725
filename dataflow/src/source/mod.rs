//! Sources of the dataflow: the Kafka reader and the JSON-lines replay reader, and the timely source operator
//! that drives either. The operator owns the partitions assigned to its worker, parses and validates each
//! record, decides lateness per partition, and holds its capability at the worker's watermark so that the
//! timely frontier *is* the job's event-time watermark.

pub mod kafka;
pub mod replay;
pub mod watermark;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, StreamVec};

use crate::config::JobConfig;
use crate::parse::{Parsed, parse_record};
use watermark::PartitionClock;

/// One record as read from a partition, borrowed from the reader's buffer.
pub struct RawRecord<'a> {
    /// Partition (for a replay file: the worker's byte range).
    pub partition: i32,
    /// Offset within the partition (for a replay file: the line's byte offset).
    pub offset: i64,
    /// Record key.
    pub key: Option<&'a [u8]>,
    /// Record value (`None`: tombstone).
    pub value: Option<&'a [u8]>,
}

/// A reader of the partitions one worker owns.
pub trait Reader {
    /// The partitions this worker owns.
    fn partitions(&self) -> Vec<i32>;
    /// Reads up to `max` records, handing each to `sink`; returns how many were read.
    fn poll(&mut self, max: usize, sink: &mut dyn FnMut(RawRecord<'_>)) -> anyhow::Result<usize>;
    /// Whether a partition has reached its bounded end (always false when unbounded).
    fn is_done(&self, partition: i32) -> bool;
    /// Records known to be in the owned partitions but not yet read.
    fn lag(&self) -> u64;
    /// Called every trigger with the next offset of each owned partition.
    fn commit(&mut self, _next_offsets: &BTreeMap<i32, i64>) {}
}

/// A valid, on-time event on its way to the window operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRec {
    /// Device id.
    pub device_id: String,
    /// Device location.
    pub location: String,
    /// End of the event's window, ms.
    pub window_end: u64,
    /// Temperature.
    pub temperature: f64,
    /// Humidity.
    pub humidity: f64,
    /// Battery.
    pub battery: f64,
    /// Status.
    pub status: model::Status,
}

/// A bad or late record on its way to the dead-letter output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Reason code (`late` or one of `model::BadEvent::CODES`).
    pub reason: String,
    /// Human-readable detail.
    pub detail: String,
    /// Partition it was read from.
    pub partition: i32,
    /// Offset it was read at.
    pub offset: i64,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Original payload.
    pub payload: Option<Vec<u8>>,
    /// Event time, when the event was valid but late.
    pub ts: Option<u64>,
    /// Window end, when the event was valid but late.
    pub window_end: Option<u64>,
    /// Partition watermark it was judged against, when late.
    pub watermark: Option<u64>,
}

/// Cumulative counters of one worker's source, sent to the snapshot writer every trigger.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Global worker index.
    pub worker: usize,
    /// Records read.
    pub records: u64,
    /// Valid on-time events.
    pub events: u64,
    /// Late events.
    pub late: u64,
    /// Bad events per reason.
    pub bad_by_reason: BTreeMap<String, u64>,
    /// Records per second over the last interval.
    pub input_rate: f64,
    /// Mean milliseconds per non-empty batch over the last interval.
    pub batch_ms: f64,
    /// Unread records in owned partitions.
    pub lag: u64,
    /// This worker's watermark (`None` once finished or when it owns nothing).
    pub watermark: Option<u64>,
}

/// What the source emits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SourceMsg {
    /// A valid on-time event.
    Event(EventRec),
    /// A bad or late record.
    Dead(DeadLetter),
    /// Counters.
    Stats(WorkerStats),
}

/// Records read per activation before yielding to other operators.
const BATCH: usize = 8192;

/// Builds the source operator for this worker.
pub fn build<'s>(
    scope: Scope<'s, u64>,
    mut reader: Box<dyn Reader>,
    config: &JobConfig,
    worker: usize,
    stop: Arc<AtomicBool>,
) -> StreamVec<'s, u64, SourceMsg> {
    let config = config.clone();
    source(scope, "Source", move |capability, info| {
        let activator = scope.activator_for(info.address);
        let owned = reader.partitions();
        let mut clock = PartitionClock::new(&owned, config.lateness_ms, config.idle_timeout);
        let mut cap = if owned.is_empty() {
            None
        } else {
            Some(capability)
        };
        let mut stats = WorkerStats {
            worker,
            ..WorkerStats::default()
        };
        let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
        let mut window = IntervalCounters::new();
        let mut pending: HashMap<u64, Vec<SourceMsg>> = HashMap::new();
        let mut dead: Vec<SourceMsg> = Vec::new();
        move |output| {
            let Some(held) = cap.as_mut() else { return };
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let started = Instant::now();
            let rules = model::Validation {
                now_ms: model::time::now_ms(),
                max_future_ms: config.max_future_ms,
            };
            let floor = *held.time();
            let read = reader.poll(BATCH, &mut |raw| {
                next_offsets.insert(raw.partition, raw.offset + 1);
                stats.records += 1;
                match parse_record(&raw, rules, config.window_ms) {
                    Parsed::Event { event, ts } => {
                        let wm = clock.observe(raw.partition, ts, floor);
                        if event.window_end <= wm {
                            stats.late += 1;
                            dead.push(SourceMsg::Dead(crate::parse::late_letter(
                                &raw,
                                ts,
                                event.window_end,
                                wm,
                            )));
                        } else {
                            stats.events += 1;
                            pending
                                .entry(event.window_end - 1)
                                .or_default()
                                .push(SourceMsg::Event(event));
                        }
                    }
                    Parsed::Bad(letter) => {
                        clock.touch(raw.partition, floor);
                        *stats
                            .bad_by_reason
                            .entry(letter.reason.clone())
                            .or_default() += 1;
                        dead.push(SourceMsg::Dead(letter));
                    }
                }
            });
            let read = match read {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(worker, error = %format!("{err:#}"), "reading input failed; retrying");
                    activator.activate_after(Duration::from_millis(500));
                    return;
                }
            };
            for (time, mut batch) in pending.drain() {
                output
                    .session(&held.delayed(&time))
                    .give_container(&mut batch);
            }
            if !dead.is_empty() {
                output.session(&*held).give_container(&mut dead);
            }
            if read > 0 {
                window.batch(read, started.elapsed());
            }
            for &p in &owned {
                if reader.is_done(p) {
                    clock.finish(p);
                }
            }
            let now_ms = model::time::now_ms();
            let watermark = clock.worker_watermark(now_ms);
            if window.due(config.trigger) || watermark.is_none() {
                window.fill(&mut stats);
                stats.lag = reader.lag();
                stats.watermark = watermark;
                output.session(&*held).give(SourceMsg::Stats(stats.clone()));
                reader.commit(&next_offsets);
            }
            match watermark {
                Some(wm) if wm > *held.time() => held.downgrade(&wm),
                Some(_) => {}
                None => {
                    tracing::info!(worker, records = stats.records, "input finished");
                    cap = None;
                    return;
                }
            }
            if read >= BATCH {
                activator.activate();
            } else {
                activator.activate_after(Duration::from_millis(if read > 0 { 1 } else { 20 }));
            }
        }
    })
}

/// Rate and batch-time bookkeeping over one trigger interval.
struct IntervalCounters {
    since: Instant,
    records: u64,
    batches: u64,
    busy: Duration,
}

impl IntervalCounters {
    fn new() -> Self {
        IntervalCounters {
            since: Instant::now(),
            records: 0,
            batches: 0,
            busy: Duration::ZERO,
        }
    }

    fn batch(&mut self, records: usize, took: Duration) {
        self.records += records as u64;
        self.batches += 1;
        self.busy += took;
    }

    fn due(&self, every: Duration) -> bool {
        self.since.elapsed() >= every
    }

    fn fill(&mut self, stats: &mut WorkerStats) {
        let secs = self.since.elapsed().as_secs_f64().max(1e-9);
        stats.input_rate = self.records as f64 / secs;
        stats.batch_ms = if self.batches > 0 {
            self.busy.as_secs_f64() * 1000.0 / self.batches as f64
        } else {
            0.0
        };
        *self = IntervalCounters::new();
    }
}
