//! The messages that travel between the dataflow's operators, in the order data meets them: raw records, events
//! and dead letters (source), checkpoint markers and counters (source → window), aggregates and barriers (window →
//! sinks), staged files and written parts (Parquet sink → checkpoint), and the fleet views' rows (fleet →
//! `latest.json`). This module is the leaf of the crate: it imports no stage, so that stages only import it and
//! never each other's internals. The checkpoint *files* have their own types (`checkpoint::store`); these are the
//! in-flight payloads only. See `docs/ARCHITECTURE.md` ("Message types"). Between the processes of a cluster they
//! are serialised with bincode, which is not self-describing: no field here may be skipped when serialising
//! (`skip_serializing_if`), or the receiver reads the wrong fields.

use std::collections::BTreeMap;
use std::path::PathBuf;

use compact_str::CompactString;
use model::{Aggregate, WindowAgg};
use serde::{Deserialize, Serialize};

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

/// A valid, on-time event on its way to the window operator. Its strings are `CompactString`s: ids and
/// locations of up to 24 bytes (the usual ones) live inline, so an event costs no heap allocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRec {
    /// Device id.
    pub device_id: CompactString,
    /// Device location.
    pub location: CompactString,
    /// Its time in the dataflow: the highest partition watermark at which it is on time
    /// (`WindowKind::on_time_until`; for tumbling windows its window's end − 1).
    pub at: u64,
    /// Event time, epoch ms.
    pub ts: u64,
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
    /// End of its earliest window (for sessions: of the one it would have opened), when valid but late.
    pub window_end: Option<u64>,
    /// Partition watermark it was judged against, when late.
    pub watermark: Option<u64>,
}

/// Where a source's dead letters go (the dead-letter stage implements it): each written as it is met, all of
/// them made durable before each checkpoint marker.
pub trait DeadLetterOut {
    /// Writes one dead letter; a failure is counted, never raised.
    fn write(&mut self, letter: &DeadLetter);
    /// Makes every dead letter written so far durable; a failure is counted, never raised.
    fn sync_or_count(&mut self);
}

/// What a source has counted of the records it read (of one partition, or summed over a worker's).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordCounts {
    /// Records read.
    pub records: u64,
    /// Valid on-time events.
    pub events: u64,
    /// Late events.
    pub late: u64,
    /// Bad events per reason.
    pub bad_by_reason: BTreeMap<String, u64>,
    /// Data-loss incidents let through with `--on-data-loss continue`: each time the partition's log no longer
    /// held the offset to read next (absent in checkpoints written before it was counted).
    #[serde(default)]
    pub data_loss: u64,
    /// Records known to be skipped by those incidents (records removed below the log start before they were
    /// read; a recreated topic or another cluster counts as an incident only, its loss being unknown).
    #[serde(default)]
    pub skipped_records: u64,
}

impl RecordCounts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &RecordCounts) {
        self.records += other.records;
        self.events += other.events;
        self.late += other.late;
        self.data_loss += other.data_loss;
        self.skipped_records += other.skipped_records;
        for (reason, n) in &other.bad_by_reason {
            *self.bad_by_reason.entry(reason.clone()).or_default() += n;
        }
    }

    /// Bad events of every reason.
    pub fn bad(&self) -> u64 {
        self.bad_by_reason.values().sum()
    }
}

/// The event-time state of a partition: what its watermark is made of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockState {
    /// Newest event time seen.
    pub max_ts: Option<u64>,
    /// Lowest watermark the partition may report (set when it woke from idleness).
    pub floor: u64,
}

/// Where a source stands in one partition, as carried by a checkpoint marker.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Partition.
    pub partition: i32,
    /// Next offset to read.
    pub next_offset: i64,
    /// Its event-time clock.
    pub clock: ClockState,
    /// What was read from it so far.
    pub counts: RecordCounts,
}

/// Cumulative counters of one worker, sent to the snapshot writer every trigger.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Global worker index.
    pub worker: usize,
    /// Records read, on time, late and bad, over the worker's partitions.
    pub counts: RecordCounts,
    /// Records per second over the last interval.
    pub input_rate: f64,
    /// Mean milliseconds per non-empty batch over the last interval.
    pub batch_ms: f64,
    /// Unread records in owned partitions.
    pub lag: u64,
    /// This worker's watermark (`None` once finished or when it owns nothing).
    pub watermark: Option<u64>,
    /// Errors met inside this worker's operators, per kind (see `errors`).
    pub errors: BTreeMap<String, u64>,
}

/// A checkpoint marker (or, as [`SourceSignal::Retire`], a source's goodbye). Sent by every source to every window
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
    pub partitions: Vec<PartitionState>,
}

/// Marker id of the checkpoint taken when the job is asked to stop.
pub const STOP_ID: u64 = u64::MAX;

/// The running state of one device's open window (tumbling), pane (hopping) or session: restored from a
/// checkpoint into the window operator, and carried out of it by a barrier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenWindow {
    /// Start, ms: the window's or pane's start, or the session's first event time.
    pub start: u64,
    /// End, ms: the window's or pane's end (its identity within a device), or the session's last event time +
    /// the gap.
    pub end: u64,
    /// Device.
    pub device: CompactString,
    /// The device's latest location in the window.
    pub location: CompactString,
    /// Running aggregate.
    pub agg: WindowAgg,
    /// The on-time events' fields that aggregate UDFs take (absent without them).
    pub inputs: Option<Box<UdafInputs>>,
}

/// Which event fields the job's aggregate UDFs take (the event time is always kept: it orders the values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputFields {
    /// Temperature.
    pub temperature: bool,
    /// Humidity.
    pub humidity: bool,
    /// Battery.
    pub battery: bool,
}

/// The inputs of the aggregate UDFs in one device's open window: one column per kept field, a row per on-time
/// event. Fields no UDF takes stay empty. Unlike the fixed aggregates, this grows with the window's events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UdafInputs {
    /// Event times, epoch ms.
    pub ts: Vec<u64>,
    /// Temperatures.
    pub temperature: Vec<f64>,
    /// Humidities.
    pub humidity: Vec<f64>,
    /// Battery levels.
    pub battery: Vec<f64>,
}

impl UdafInputs {
    /// Appends one event's kept fields.
    pub fn push(&mut self, e: &EventRec, keep: InputFields) {
        self.ts.push(e.ts);
        if keep.temperature {
            self.temperature.push(e.temperature);
        }
        if keep.humidity {
            self.humidity.push(e.humidity);
        }
        if keep.battery {
            self.battery.push(e.battery);
        }
    }

    /// Appends another part of the same window (a restored one, or events that reached it first).
    pub fn append(&mut self, mut other: UdafInputs) {
        self.ts.append(&mut other.ts);
        self.temperature.append(&mut other.temperature);
        self.humidity.append(&mut other.humidity);
        self.battery.append(&mut other.battery);
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// No row.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Puts the rows in event-time order (ties by the kept values), so that a UDF sees the same sequence for any
    /// worker count, arrival order or restore. Cheap when already sorted.
    pub fn sort(&mut self) {
        let n = self.len();
        let key = |c: &Vec<f64>, i: usize| c.get(i).copied().unwrap_or(0.0);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| {
            self.ts[a]
                .cmp(&self.ts[b])
                .then(key(&self.temperature, a).total_cmp(&key(&self.temperature, b)))
                .then(key(&self.humidity, a).total_cmp(&key(&self.humidity, b)))
                .then(key(&self.battery, a).total_cmp(&key(&self.battery, b)))
        });
        if order.iter().enumerate().all(|(i, &o)| i == o) {
            return;
        }
        fn permute<T: Copy>(v: &mut Vec<T>, order: &[usize]) {
            if !v.is_empty() {
                *v = order.iter().map(|&i| v[i]).collect();
            }
        }
        permute(&mut self.ts, &order);
        permute(&mut self.temperature, &order);
        permute(&mut self.humidity, &order);
        permute(&mut self.battery, &order);
    }
}

/// What reaches the window operator, exchanged by device (data) or by target worker (signals): data it
/// aggregates, apart from the signals of the checkpoint protocol and the counters (as Arroyo's
/// `ArrowMessage::{Data, Signal}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WindowIn {
    /// What the windows aggregate.
    Data(WindowData),
    /// What the protocol and the counters carry.
    Signal(SourceSignal),
}

/// The data a source sends the windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WindowData {
    /// A valid on-time event.
    Event(EventRec),
    /// An open window restored from a checkpoint (boxed: the rare variant stays out of the size of every event
    /// on the exchange).
    Restored(Box<OpenWindow>),
}

/// The signals a source sends the windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SourceSignal {
    /// A checkpoint marker.
    Marker(Marker),
    /// The source has finished (bounded end) or owns nothing: expect no more markers from it.
    Retire(Marker),
    /// A source's counters, passed on to the snapshot writer (routed to worker 0).
    Stats(Box<WorkerStats>),
}

impl WindowIn {
    /// The exchange route: by device for data, by target worker for markers, worker 0 for counters.
    pub fn route(&self) -> u64 {
        match self {
            WindowIn::Data(WindowData::Event(e)) => device_route(&e.device_id),
            WindowIn::Data(WindowData::Restored(w)) => device_route(&w.device),
            WindowIn::Signal(SourceSignal::Marker(m) | SourceSignal::Retire(m)) => m.to as u64,
            WindowIn::Signal(SourceSignal::Stats(_)) => 0,
        }
    }
}

/// Routes a device to a worker: 64-bit FNV-1a of the id's bytes. A fixed algorithm (unlike the standard
/// library's `DefaultHasher`, which may change between builds), so every process of a cluster, and every build
/// of a restarted job, sends a device to the same worker.
pub fn device_route(device_id: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    device_id
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// An aggregate leaving the window operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowOut {
    /// The aggregate.
    pub agg: Aggregate,
    /// Location of the device (as of its latest event in the window).
    pub location: String,
    /// Final (the watermark passed the window end) or live.
    pub is_final: bool,
}

/// Why a barrier was emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BarrierKind {
    /// A periodic checkpoint.
    Periodic,
    /// The last checkpoint before a requested stop.
    Stop,
    /// The input has ended: every window is final.
    Final,
}

/// A checkpoint boundary in the window operator's output: every final window before it belongs to checkpoint
/// `id`, together with the open windows it carries. The window operator's output has several consumers and
/// timely clones a batch for each but the last, so the open windows are shared, not copied (at 10 000 devices
/// they are ~35 000 per worker, 136 bytes each).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Barrier {
    /// Checkpoint id.
    pub id: u64,
    /// Why.
    pub kind: BarrierKind,
    /// How many open windows this worker wrote to its part's windows file at the cut
    /// (`checkpoint::windows_file`); `None` when they could not be written, and the checkpoint must not commit.
    pub windows: Option<usize>,
    /// Partition states at the cut (worker 0 only; it hears every source).
    pub partitions: Vec<PartitionState>,
}

/// What the window operator emits: windows, apart from the signals that travel with them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WindowMsg {
    /// A live or final aggregate.
    Data(WindowOut),
    /// A barrier, counters or UDF failure counts.
    Signal(WindowSignal),
}

/// The signals of the window operator's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WindowSignal {
    /// A checkpoint boundary.
    Barrier(Barrier),
    /// A source's counters, on their way to the snapshot writer.
    Stats(WorkerStats),
    /// The window worker's UDF failure counts so far, per UDF: `(worker, counts)`.
    UdfErrors(usize, BTreeMap<String, u64>),
}

impl WindowMsg {
    /// The window, if this is a final one.
    pub fn final_window(&self) -> Option<&WindowOut> {
        match self {
            WindowMsg::Data(w) if w.is_final => Some(w),
            _ => None,
        }
    }
}

/// A complete file written under a hidden name, waiting for its checkpoint to make it visible.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StagedFile {
    /// Hidden in-progress path (ignored by readers).
    pub hidden: PathBuf,
    /// Final `part-*.parquet` path.
    pub visible: PathBuf,
}

/// The Parquet sink's answer to a barrier: the files it rolled, and where the final windows not in a file yet
/// are kept (`None`: they could not be written, and the checkpoint must not commit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Staged {
    /// The barrier.
    pub barrier: Barrier,
    /// What the worker's history wrote for it.
    pub history: Option<StagedHistory>,
}

/// What one worker's Parquet sink wrote at a barrier (paths relative to the output folder for segments).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StagedHistory {
    /// The history files it rolled (empty when the roll policy holds the windows).
    pub files: Vec<StagedFile>,
    /// The segment of the final windows it received since the previous barrier (`checkpoint::segment`), when it
    /// wrote one.
    pub segment: Option<PathBuf>,
    /// Every segment whose windows are in no committed history file yet (empty after a roll).
    pub unrolled: Vec<PathBuf>,
}

/// A worker's part of checkpoint `id` is written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartDone {
    /// Checkpoint id.
    pub id: u64,
    /// Global worker index.
    pub worker: usize,
    /// Why the checkpoint was taken.
    pub kind: BarrierKind,
}

/// The rollup of one location (fleet view). Floats travel as bit patterns so that rows are `Ord` and hashable,
/// as differential dataflow requires.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RollupRow {
    /// Devices.
    pub devices: u64,
    /// Events.
    pub events: u64,
    /// Event-weighted mean temperature (bits).
    pub avg_temperature: u64,
    /// Event-weighted mean humidity (bits).
    pub avg_humidity: u64,
    /// Lowest battery (bits).
    pub min_battery: u64,
    /// Warn statuses.
    pub warn_count: u64,
    /// Error statuses.
    pub error_count: u64,
}

/// One alert of the fleet's alert view.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlertRow {
    /// Device.
    pub device_id: String,
    /// Kind.
    pub kind: String,
    /// Value that raised it (bits).
    pub value: u64,
    /// Window end, ms.
    pub window_end: u64,
}

/// The fleet views as their updates leave them: each view's rows with their multiplicities, folded from the
/// `(row, diff)` changes the differential views emit, and shown as `latest.json`'s fleet section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FleetTally {
    rollups: BTreeMap<(String, RollupRow), isize>,
    alerts: BTreeMap<AlertRow, isize>,
}

impl FleetTally {
    /// Applies a change of the per-location rollup view.
    pub fn rollup(&mut self, location: String, row: RollupRow, diff: isize) {
        add_diff(&mut self.rollups, (location, row), diff);
    }

    /// Applies a change of the alert view.
    pub fn alert(&mut self, alert: AlertRow, diff: isize) {
        add_diff(&mut self.alerts, alert, diff);
    }

    /// The views as they stand.
    pub fn view(&self) -> model::FleetView {
        let locations: Vec<model::LocationRollup> = self
            .rollups
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|((location, r), _)| model::LocationRollup {
                location: location.clone(),
                devices: r.devices,
                events: r.events,
                avg_temperature: f64::from_bits(r.avg_temperature),
                avg_humidity: f64::from_bits(r.avg_humidity),
                min_battery: f64::from_bits(r.min_battery),
                warn_count: r.warn_count,
                error_count: r.error_count,
            })
            .collect();
        model::FleetView {
            devices: locations.iter().map(|l| l.devices).sum(),
            locations,
            alerts: self
                .alerts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(a, _)| model::Alert {
                    device_id: a.device_id.clone(),
                    kind: a.kind.clone(),
                    value: f64::from_bits(a.value),
                    window_end: model::time::rfc3339_ms(a.window_end),
                })
                .collect(),
        }
    }
}

/// Adds `diff` to `key`'s multiplicity, forgetting keys that reach zero.
fn add_diff<K: Ord>(map: &mut BTreeMap<K, isize>, key: K, diff: isize) {
    use std::collections::btree_map::Entry;
    match map.entry(key) {
        Entry::Occupied(mut e) => {
            *e.get_mut() += diff;
            if *e.get() == 0 {
                e.remove();
            }
        }
        Entry::Vacant(e) => {
            if diff != 0 {
                e.insert(diff);
            }
        }
    }
}

/// What reaches the `latest.json` writer on worker 0.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LatestIn {
    /// A live or final aggregate.
    Agg(WindowOut),
    /// A worker's counters.
    Stats(WorkerStats),
    /// A window worker's UDF failure counts so far: `(worker, counts per UDF)`.
    UdfErrors(usize, BTreeMap<String, u64>),
    /// A change of the per-location rollup: `(location, row, diff)`.
    Rollup(String, RollupRow, isize),
    /// A change of the alert set.
    Alert(AlertRow, isize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_route_is_fixed_across_builds() {
        // FNV-1a test vectors: the route of a device must never change, or a restored job would send a device's
        // open windows to another worker than its new events.
        assert_eq!(device_route(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(device_route("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(device_route("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn markers_are_routed_to_their_target_worker_and_counters_to_worker_0() {
        let m = Marker {
            id: 3,
            from: 1,
            to: 2,
            partitions: Vec::new(),
        };
        assert_eq!(WindowIn::Signal(SourceSignal::Marker(m.clone())).route(), 2);
        assert_eq!(WindowIn::Signal(SourceSignal::Retire(m)).route(), 2);
        assert_eq!(WindowIn::Signal(SourceSignal::Stats(Box::default())).route(), 0);
    }

    #[test]
    fn record_counts_add_up_per_reason() {
        let mut a = RecordCounts {
            records: 3,
            events: 1,
            late: 1,
            bad_by_reason: [("not_json".to_string(), 1)].into(),
            data_loss: 1,
            skipped_records: 40,
        };
        let b = RecordCounts {
            records: 2,
            events: 0,
            late: 0,
            bad_by_reason: [("not_json".to_string(), 1), ("tombstone".to_string(), 1)].into(),
            data_loss: 2,
            skipped_records: 0,
        };
        a.add(&b);
        assert_eq!((a.records, a.events, a.late, a.bad()), (5, 1, 1, 3));
        assert_eq!((a.data_loss, a.skipped_records), (3, 40));
        assert_eq!(a.bad_by_reason["not_json"], 2);
    }

    /// Round trip through bincode, as between the processes of a cluster.
    fn across_processes<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
        bincode::deserialize(&bincode::serialize(value).unwrap()).unwrap()
    }

    #[test]
    fn windows_with_udf_values_and_inputs_cross_processes_unchanged() {
        let mut agg = WindowAgg::default().finish("d", model::Window { start: 0, end: 10 });
        agg.udf = [
            ("a".to_string(), model::UdfValue::Float(1.5)),
            ("b".to_string(), model::UdfValue::Null),
            ("c".to_string(), model::UdfValue::Text("x".into())),
        ]
        .into();
        let out = WindowMsg::Data(WindowOut {
            agg,
            location: "lab".into(),
            is_final: true,
        });
        assert_eq!(across_processes(&out), out);
        let open = WindowIn::Data(WindowData::Restored(Box::new(OpenWindow {
            start: 0,
            end: 10,
            device: "d".into(),
            location: "lab".into(),
            agg: WindowAgg::default(),
            inputs: Some(Box::new(UdafInputs {
                ts: vec![1, 2],
                temperature: vec![3.0, 4.0],
                ..UdafInputs::default()
            })),
        })));
        assert_eq!(across_processes(&open), open);
        let errors = WindowMsg::Signal(WindowSignal::UdfErrors(1, [("a".to_string(), 2)].into()));
        assert_eq!(across_processes(&errors), errors);
    }

    #[test]
    fn udaf_inputs_sort_by_event_time_then_values_whatever_the_arrival_order() {
        let keep = InputFields {
            temperature: true,
            humidity: false,
            battery: false,
        };
        let event = |ts: u64, t: f64| EventRec {
            device_id: "d".into(),
            location: "l".into(),
            at: 9_999,
            ts,
            temperature: t,
            humidity: 50.0,
            battery: 80.0,
            status: model::Status::Ok,
            source: 0,
        };
        let mut a = UdafInputs::default();
        for (ts, t) in [(3, 1.0), (1, 9.0), (3, 0.5)] {
            a.push(&event(ts, t), keep);
        }
        let mut b = UdafInputs::default();
        b.push(&event(2, 4.0), keep);
        a.append(b);
        a.sort();
        assert_eq!(a.ts, [1, 2, 3, 3]);
        assert_eq!(a.temperature, [9.0, 4.0, 0.5, 1.0]);
        assert!(
            a.humidity.is_empty() && a.battery.is_empty(),
            "fields no UDF takes are not kept"
        );
    }
}
