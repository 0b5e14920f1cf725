//! Sources of the dataflow: the Kafka reader and the JSON-lines replay reader, and the timely source operator
//! that drives either. The source feeds the window operator's exchange directly: operators such as `map` or
//! `partition` regroup a batch's messages by timestamp, which would move a checkpoint marker ahead of events
//! sent before it. The operator owns the partitions assigned to its worker, parses and validates each
//! record, decides lateness per partition, writes dead letters, and holds its capability at the worker's
//! watermark so that the timely frontier *is* the job's event-time watermark. For checkpoints it sends markers
//! to every window operator on the same channels as its events, after making its dead letters durable.

pub mod kafka;
pub mod replay;
pub mod watermark;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, StreamVec};

use crate::checkpoint::{Manifest, PartitionCheckpoint, WindowCheckpoint};
use crate::config::JobConfig;
use crate::parse::{Parsed, parse_record};
use crate::sink::deadletter::DeadLetterWriter;
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
    /// The offset the reader will read next in `partition`.
    fn next_offset(&self, partition: i32) -> i64;
    /// Whether a silent `partition` can be trusted to be idle: caught up, and no input trouble within
    /// `idle_timeout` (a broker outage is not idleness).
    fn may_be_idle(&self, partition: i32, idle_timeout: Duration) -> bool;
}

/// A valid, on-time event on its way to the window operator. Its strings are `CompactString`s: ids and
/// locations of up to 24 bytes (the usual ones) live inline, so an event costs no heap allocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRec {
    /// Device id.
    pub device_id: CompactString,
    /// Device location.
    pub location: CompactString,
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
    /// Global index of the worker whose source read it (for checkpoint alignment).
    pub source: u32,
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

/// A checkpoint marker (or, as `WindowIn::Retire`, a source's goodbye). Sent by every source to every window
/// operator on the same channels as its events: everything a source sent before its marker belongs to the
/// checkpoint, everything after it to the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// Checkpoint id ([`STOP_ID`] for the last checkpoint before a requested stop).
    pub id: u64,
    /// Global index of the sending source's worker.
    pub from: u32,
    /// Global index of the receiving worker.
    pub to: u32,
    /// State of the sender's partitions at the marker.
    pub partitions: Vec<PartitionCheckpoint>,
}

/// Marker id of the checkpoint taken when the job is asked to stop.
pub const STOP_ID: u64 = u64::MAX;

/// What reaches the window operator, exchanged by device (events, restored windows) or by target worker
/// (markers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WindowIn {
    /// A valid on-time event.
    Event(EventRec),
    /// An open window restored from a checkpoint (boxed, like the counters: the rare variants stay out of the
    /// size of every event on the exchange, 96 bytes instead of 120).
    Restored(Box<WindowCheckpoint>),
    /// A checkpoint marker.
    Marker(Marker),
    /// The source has finished (bounded end) or owns nothing: expect no more markers from it.
    Retire(Marker),
    /// A source's counters, passed on to the snapshot writer (routed to worker 0).
    Stats(Box<WorkerStats>),
}

impl WindowIn {
    /// The exchange route: by device for data, by target worker for markers.
    pub fn route(&self) -> u64 {
        match self {
            WindowIn::Event(e) => crate::window::device_route(&e.device_id),
            WindowIn::Restored(w) => crate::window::device_route(&w.device_id),
            WindowIn::Marker(m) | WindowIn::Retire(m) => m.to as u64,
            WindowIn::Stats(_) => 0,
        }
    }
}

/// Records read per activation before yielding to other operators.
const BATCH: usize = 8192;

/// Everything the source operator needs besides the reader.
pub struct SourceSetup {
    /// Global worker index.
    pub worker: usize,
    /// Workers in all processes.
    pub peers: usize,
    /// Raised on Ctrl-C.
    pub stop: Arc<AtomicBool>,
    /// Checkpoint to resume from.
    pub restore: Option<Arc<Manifest>>,
    /// Whether to take periodic checkpoints (Kafka input).
    pub checkpoints: bool,
    /// This worker's dead-letter writer (dead letters are made durable before each marker).
    pub dead: Rc<RefCell<DeadLetterWriter>>,
}

/// Builds the source operator for this worker.
pub fn build<'s>(
    scope: Scope<'s, u64>,
    mut reader: Box<dyn Reader>,
    config: &JobConfig,
    setup: SourceSetup,
) -> StreamVec<'s, u64, WindowIn> {
    let config = config.clone();
    let SourceSetup {
        worker,
        peers,
        stop,
        restore,
        checkpoints,
        dead,
    } = setup;
    source(scope, "Source", move |capability, info| {
        let activator = scope.activator_for(info.address);
        let owned = reader.partitions();
        let mut clock = PartitionClock::new(&owned, config.lateness_ms, config.idle_timeout);
        let mut parts: BTreeMap<i32, PartitionCheckpoint> = owned
            .iter()
            .map(|&p| {
                (
                    p,
                    PartitionCheckpoint {
                        partition: p,
                        next_offset: reader.next_offset(p),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let mut last_id = restore.as_ref().map_or(0, |m| m.id);
        if let Some(m) = &restore {
            for saved in &m.partitions {
                if let Some(part) = parts.get_mut(&saved.partition) {
                    clock.restore(saved.partition, saved.max_ts, saved.floor);
                    *part = saved.clone();
                }
            }
        }
        let mut restored: Vec<WindowCheckpoint> = restore
            .as_ref()
            .map(|m| {
                m.windows
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % peers == worker)
                    .map(|(_, w)| w.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut cap = Some(capability);
        let mut window = IntervalCounters::new();
        let mut last_stats = Instant::now();
        let mut last_marker = Instant::now();
        let mut stop_sent = false;
        let mut pending: HashMap<u64, Vec<WindowIn>> = HashMap::new();
        let source_index = worker as u32;
        move |output| {
            let Some(held) = cap.as_mut() else { return };
            let markers = |id: u64,
                           parts: &BTreeMap<i32, PartitionCheckpoint>,
                           clock: &PartitionClock,
                           retire: bool| {
                let partitions: Vec<PartitionCheckpoint> = parts
                    .values()
                    .map(|p| {
                        let (max_ts, floor) = clock.state(p.partition);
                        PartitionCheckpoint {
                            max_ts,
                            floor,
                            ..p.clone()
                        }
                    })
                    .collect();
                (0..peers as u32)
                    .map(|to| {
                        let m = Marker {
                            id,
                            from: source_index,
                            to,
                            partitions: partitions.clone(),
                        };
                        if retire {
                            WindowIn::Retire(m)
                        } else {
                            WindowIn::Marker(m)
                        }
                    })
                    .collect::<Vec<_>>()
            };
            if !restored.is_empty() {
                // Restored windows go out first, each at its window's end − 1, to whichever worker owns the device.
                for w in restored.drain(..) {
                    let time = w.window_end - 1;
                    output
                        .session(&held.delayed(&time))
                        .give(WindowIn::Restored(Box::new(w)));
                }
            }
            if stop_sent {
                return;
            }
            if stop.load(Ordering::Relaxed) {
                // Asked to stop: make dead letters durable and mark the last checkpoint; read nothing more.
                if let Err(e) = dead.borrow_mut().sync() {
                    tracing::error!(error = %format!("{e:#}"), "cannot flush dead letters");
                }
                output
                    .session(&*held)
                    .give_iterator(markers(STOP_ID, &parts, &clock, false).into_iter());
                stop_sent = true;
                return;
            }
            let started = Instant::now();
            clock.start_batch(started);
            let rules = model::Validation {
                now_ms: model::time::now_ms(),
                max_future_ms: config.max_future_ms,
            };
            let floor = *held.time();
            let mut dead = dead.borrow_mut();
            let read = reader.poll(BATCH, &mut |raw| {
                let part = parts.get_mut(&raw.partition).expect("owned partition");
                part.next_offset = raw.offset + 1;
                part.records += 1;
                let letter = match parse_record(&raw, rules, config.window_ms) {
                    Parsed::Event { mut event, ts } => {
                        let wm = clock.observe(raw.partition, ts, floor);
                        if event.window_end <= wm {
                            part.late += 1;
                            crate::parse::late_letter(&raw, ts, event.window_end, wm)
                        } else {
                            part.events += 1;
                            event.source = source_index;
                            pending
                                .entry(event.window_end - 1)
                                .or_default()
                                .push(WindowIn::Event(event));
                            return;
                        }
                    }
                    Parsed::Bad(letter) => {
                        clock.touch(raw.partition, floor);
                        *part.bad_by_reason.entry(letter.reason.clone()).or_default() += 1;
                        letter
                    }
                };
                if let Err(e) = dead.write(&letter) {
                    tracing::error!(error = %format!("{e:#}"), "cannot write a dead letter");
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
            if read > 0 {
                window.batch(read, started.elapsed());
            }
            for &p in &owned {
                if reader.is_done(p) {
                    clock.finish(p);
                }
            }
            let idle_timeout = config.idle_timeout;
            let watermark = clock.worker_watermark(model::time::now_ms(), &|p| {
                reader.may_be_idle(p, idle_timeout)
            });
            if checkpoints && watermark.is_some() && last_marker.elapsed() >= config.roll_interval {
                last_marker = Instant::now();
                if let Err(e) = dead.sync() {
                    tracing::error!(error = %format!("{e:#}"), "cannot flush dead letters");
                }
                last_id += 1;
                output
                    .session(&*held)
                    .give_iterator(markers(last_id, &parts, &clock, false).into_iter());
            }
            if last_stats.elapsed() >= config.trigger || watermark.is_none() {
                last_stats = Instant::now();
                let mut stats = WorkerStats {
                    worker,
                    ..WorkerStats::default()
                };
                for p in parts.values() {
                    stats.records += p.records;
                    stats.events += p.events;
                    stats.late += p.late;
                    for (reason, n) in &p.bad_by_reason {
                        *stats.bad_by_reason.entry(reason.clone()).or_default() += n;
                    }
                }
                window.fill(&mut stats);
                stats.lag = reader.lag();
                stats.watermark = watermark;
                output
                    .session(&*held)
                    .give(WindowIn::Stats(Box::new(stats)));
            }
            match watermark {
                Some(wm) if wm > *held.time() => held.downgrade(&wm),
                Some(_) => {}
                None => {
                    // Finished, or owning nothing: say so to every window operator, then release the capability.
                    if let Err(e) = dead.sync() {
                        tracing::error!(error = %format!("{e:#}"), "cannot flush dead letters");
                    }
                    output
                        .session(&*held)
                        .give_iterator(markers(last_id, &parts, &clock, true).into_iter());
                    tracing::info!(worker, partitions = owned.len(), "input finished");
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
