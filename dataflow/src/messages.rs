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
use model::value::Value;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use sql::agg::Acc;

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
    /// A tombstone's timestamp (Kafka's create or log-append time), epoch ms, when it has one: the time a
    /// versioned table's key is deleted from. Left out (`None`) for a record with a value, so that reading a
    /// record costs no call for it.
    pub timestamp: Option<i64>,
}

/// The values of a group's key, in GROUP BY order (one for the built-in job: the device id). Inline for a key
/// of one column: an event's key costs no allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupKey(pub SmallVec<[Value; 1]>);

impl GroupKey {
    /// The key of `values`.
    pub fn of(values: impl IntoIterator<Item = Value>) -> GroupKey {
        GroupKey(values.into_iter().collect())
    }

    /// Its values.
    pub fn values(&self) -> &[Value] {
        &self.0
    }

    /// The exchange route of the group: 64-bit FNV-1a over the key texts (`model::output::key_text`), one byte
    /// 0x1f between two; for a key of one TEXT column, [`device_route`] of it.
    pub fn route(&self) -> u64 {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h = device_route("");
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                h = (h ^ 0x1f).wrapping_mul(PRIME);
            }
            h = match v {
                Value::Text(t) => fnv_more(h, t.as_bytes()),
                other => fnv_more(h, model::output::key_text(other).as_bytes()),
            };
        }
        h
    }

    /// How people read it: the key texts joined by ` / `.
    pub fn label(&self) -> String {
        let texts: Vec<String> = self.0.iter().map(model::output::key_text).collect();
        texts.join(" / ")
    }
}

/// The inputs one event gives its group's aggregates, as the query's program computed them at the source: the
/// values of the distinct argument expressions, and which FILTER conditions held (bit `i`: condition `i`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AggInputs {
    /// Argument values.
    pub values: SmallVec<[Value; 3]>,
    /// Conditions that held.
    pub pass: u64,
}

/// A valid, on-time event on its way to the window operator: its group, its time and what its aggregates take.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRec {
    /// The group's key.
    pub key: GroupKey,
    /// The value the job carries beside the group's windows for the fleet views (its `location`), empty when the
    /// table has none.
    pub side: CompactString,
    /// Its time in the dataflow: the highest partition watermark at which it is on time
    /// (`WindowKind::on_time_until`; for tumbling windows its window's end − 1).
    pub at: u64,
    /// Event time, epoch ms.
    pub ts: u64,
    /// The aggregates' inputs.
    pub inputs: AggInputs,
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

impl DeadLetter {
    /// The dead letter of `raw`, bad for `reason` (a valid record's times left out).
    pub fn bad(raw: &RawRecord<'_>, reason: &str, detail: String) -> DeadLetter {
        DeadLetter {
            reason: reason.to_string(),
            detail,
            partition: raw.partition,
            offset: raw.offset,
            key: raw.key.map(<[u8]>::to_vec),
            payload: raw.value.map(<[u8]>::to_vec),
            ts: None,
            window_end: None,
            watermark: None,
        }
    }
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
    /// Valid records the query's `WHERE` left out (absent in checkpoints written before queries had one).
    #[serde(default)]
    pub filtered: u64,
}

impl RecordCounts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &RecordCounts) {
        self.records += other.records;
        self.events += other.events;
        self.late += other.late;
        self.data_loss += other.data_loss;
        self.skipped_records += other.skipped_records;
        self.filtered += other.filtered;
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
    /// What this worker's temporal join did with the records it met (zero without a join).
    #[serde(default)]
    pub join: JoinCounts,
}

/// What a temporal join did with the records it met, cumulative (restored with its checkpoint).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinCounts {
    /// Records that met no version of the joined table (NULLs with LEFT JOIN; an inner join drops them).
    pub unmatched: u64,
    /// Of those, the ones an inner join dropped.
    pub dropped: u64,
    /// Records the query's `WHERE` left out once joined.
    pub filtered: u64,
    /// Versions held (after compaction) and keys, at the last report.
    pub versions: u64,
    /// Keys held at the last report.
    pub keys: u64,
}

impl JoinCounts {
    /// Adds `other`'s counters (the held versions and keys too: each worker holds its own keys).
    pub fn add(&mut self, other: &JoinCounts) {
        self.unmatched += other.unmatched;
        self.dropped += other.dropped;
        self.filtered += other.filtered;
        self.versions += other.versions;
        self.keys += other.keys;
    }
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
    /// An operator before the windows (a temporal join) could not save its state for this checkpoint: the
    /// checkpoint must not commit.
    pub unsaved: bool,
}

impl Marker {
    /// Marker `id` from worker `from` (or, with `retire`, its goodbye) to each of `peers` workers, carrying
    /// `partitions`.
    pub fn to_every(
        id: u64,
        from: u32,
        peers: usize,
        partitions: Vec<PartitionState>,
        retire: bool,
    ) -> impl Iterator<Item = WindowIn> {
        (0..peers as u32).map(move |to| {
            let m = Marker {
                id,
                from,
                to,
                partitions: partitions.clone(),
                unsaved: false,
            };
            WindowIn::Signal(if retire {
                SourceSignal::Retire(m)
            } else {
                SourceSignal::Marker(m)
            })
        })
    }
}

/// Marker id of the checkpoint taken when the job is asked to stop.
pub const STOP_ID: u64 = u64::MAX;

/// The running state of one group's open window (tumbling), pane (hopping) or session: restored from a
/// checkpoint into the window operator, and carried out of it at a barrier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenWindow {
    /// Start, ms: the window's or pane's start, or the session's first event time.
    pub start: u64,
    /// End, ms: the window's or pane's end (its identity within a group), or the session's last event time +
    /// the gap.
    pub end: u64,
    /// The group.
    pub key: GroupKey,
    /// The carried value (the group's latest location), empty without one.
    pub side: CompactString,
    /// The running aggregates, in the query's order.
    pub accs: Vec<Acc>,
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
    /// A record of a job with a temporal join, on its way to the join (which turns it into an [`EventRec`]); no
    /// probe reaches a window operator.
    Probe(Box<ProbeRec>),
}

/// A valid, on-time record of a job with a temporal join, before the join: its stream row and what the join
/// needs to find the version valid at its event time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeRec {
    /// The value of the stream's join column (routes the record to the worker holding that key's versions).
    pub key: Value,
    /// Event time, epoch ms: the record meets the newest version at or before it.
    pub ts: u64,
    /// Its time in the dataflow, as [`EventRec::at`].
    pub at: u64,
    /// The stream's slots of the input row (the joined table's slots follow once joined).
    pub row: Vec<Value>,
    /// Global index of the worker whose source read it (for checkpoint alignment).
    pub source: u32,
}

impl ProbeRec {
    /// The exchange route of its key: [`GroupKey::route`] of the one value.
    pub fn route(&self) -> u64 {
        GroupKey::of([self.key.clone()]).route()
    }
}

/// What the versioned table's source sends the join operators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TableMsg {
    /// A version of a key's row from `time` on; `row: None` deletes the key from `time` on (a tombstone).
    Version(Version),
    /// Where the table source stands in one partition: every version before `next_offset` has been sent
    /// (broadcast to every join operator, after the versions it covers).
    Progress {
        /// The table's partition.
        partition: i32,
        /// The next offset to read.
        next_offset: i64,
        /// Global index of the receiving worker.
        to: u32,
    },
}

/// One version of one key of the versioned table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// The primary key's value.
    pub key: Value,
    /// Valid from (the version time: the table's WATERMARK column, or a tombstone's record timestamp), epoch ms.
    pub time: u64,
    /// The table's slots (`None`: deleted).
    pub row: Option<Vec<Value>>,
}

impl TableMsg {
    /// The exchange route: by key for versions, by target worker for progress (sent to every worker).
    pub fn route(&self) -> u64 {
        match self {
            TableMsg::Version(v) => GroupKey::of([v.key.clone()]).route(),
            TableMsg::Progress { to, .. } => u64::from(*to),
        }
    }
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
            WindowIn::Data(WindowData::Event(e)) => e.key.route(),
            WindowIn::Data(WindowData::Restored(w)) => w.key.route(),
            WindowIn::Data(WindowData::Probe(p)) => p.route(),
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
    fnv_more(OFFSET, device_id.as_bytes())
}

/// FNV-1a of `bytes` continued from `h`.
fn fnv_more(h: u64, bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// A window's output row leaving the window operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowOut {
    /// The group.
    pub key: GroupKey,
    /// Window start, epoch ms.
    pub start: u64,
    /// Window end, epoch ms.
    pub end: u64,
    /// The output columns' values, in the query's output order (`model::output::OutputSchema`).
    pub row: Vec<Value>,
    /// The carried value (the group's location as of its latest event in the window), empty without one.
    pub side: CompactString,
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
            unavailable: None,
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
            unsaved: false,
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
            filtered: 2,
        };
        let b = RecordCounts {
            records: 2,
            events: 0,
            late: 0,
            bad_by_reason: [("not_json".to_string(), 1), ("tombstone".to_string(), 1)].into(),
            data_loss: 2,
            skipped_records: 0,
            filtered: 1,
        };
        a.add(&b);
        assert_eq!((a.records, a.events, a.late, a.bad()), (5, 1, 1, 3));
        assert_eq!((a.data_loss, a.skipped_records, a.filtered), (3, 40, 3));
        assert_eq!(a.bad_by_reason["not_json"], 2);
    }

    /// Round trip through bincode, as between the processes of a cluster.
    fn across_processes<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
        bincode::deserialize(&bincode::serialize(value).unwrap()).unwrap()
    }

    #[test]
    fn windows_with_any_values_and_accumulators_cross_processes_unchanged() {
        let key = GroupKey::of([Value::Text("d".into()), Value::Int(7)]);
        let out = WindowMsg::Data(WindowOut {
            key: key.clone(),
            start: 0,
            end: 10,
            row: vec![
                Value::Text("d".into()),
                Value::Int(7),
                Value::Timestamp(0),
                Value::Timestamp(10),
                Value::Float(1.5),
                Value::Null,
                Value::Bool(true),
            ],
            side: "lab".into(),
            is_final: true,
        });
        assert_eq!(across_processes(&out), out);
        let open = WindowIn::Data(WindowData::Restored(Box::new(OpenWindow {
            start: 0,
            end: 10,
            key,
            side: "lab".into(),
            accs: vec![Acc::Count(3), Acc::Min(Value::Float(2.5)), Acc::Udaf(Vec::new())],
        })));
        assert_eq!(across_processes(&open), open);
        let event = WindowIn::Data(WindowData::Event(EventRec {
            key: GroupKey::of([Value::Text("d".into())]),
            side: CompactString::default(),
            at: 9,
            ts: 3,
            inputs: AggInputs {
                values: [Value::Float(1.0), Value::Text("x".into())].into_iter().collect(),
                pass: 0b10,
            },
            source: 1,
        }));
        assert_eq!(across_processes(&event), event);
        let errors = WindowMsg::Signal(WindowSignal::UdfErrors(1, [("a".to_string(), 2)].into()));
        assert_eq!(across_processes(&errors), errors);
    }

    #[test]
    fn a_key_of_one_text_column_routes_as_its_text_and_keys_of_several_columns_by_all_of_them() {
        let one = |t: &str| GroupKey::of([Value::Text(t.into())]);
        assert_eq!(one("device-7").route(), device_route("device-7"));
        let two = |a: &str, b: i64| GroupKey::of([Value::Text(a.into()), Value::Int(b)]);
        assert_ne!(two("a", 1).route(), two("a", 2).route());
        assert_ne!(
            two("a1", 2).route(),
            two("a", 12).route(),
            "the separator keeps columns apart"
        );
        assert_eq!(two("site", 3).label(), "site / 3");
    }
}
