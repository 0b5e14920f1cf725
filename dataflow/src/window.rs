//! Tumbling-window operator. Events arrive exchanged by device, stamped with their window's end − 1; the
//! operator keeps one capability per open window and one running aggregate per (window, device). When the
//! frontier (the job's watermark) passes a window's end it emits that window's aggregates as final, exactly
//! once, and forgets them, so state holds only open windows. Every `--trigger` it also emits the live
//! aggregates of open windows that changed, just before each snapshot tick (see `trigger`).
//!
//! Checkpoints are aligned here (Chandy–Lamport on timely's FIFO channels): every source sends a marker to
//! every window operator after the events that belong to the checkpoint. Once a source's marker for the current
//! round has arrived, whatever that source sends next is held back until every active source's marker is in;
//! then the operator emits a `Barrier` carrying its open windows, and releases what it held. Windows do not
//! turn final while anything is held back, so a checkpoint's open windows and final windows never overlap.

use std::cell::Cell;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::Duration;

use compact_str::CompactString;
use model::{Aggregate, Window, WindowAgg};
use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::checkpoint::{PartitionCheckpoint, WindowCheckpoint};
use crate::source::{EventRec, STOP_ID, WindowIn, WorkerStats};

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
/// `id`, together with the open windows it carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Barrier {
    /// Checkpoint id.
    pub id: u64,
    /// Why.
    pub kind: BarrierKind,
    /// Open windows of this worker.
    pub windows: Vec<WindowCheckpoint>,
    /// Partition states at the cut (worker 0 only; it hears every source).
    pub partitions: Vec<PartitionCheckpoint>,
}

/// What the window operator emits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WindowMsg {
    /// A live or final aggregate.
    Agg(WindowOut),
    /// A checkpoint boundary.
    Barrier(Barrier),
    /// A source's counters, on their way to the snapshot writer.
    Stats(WorkerStats),
}

/// Routes a device to a worker; stable across processes and runs.
pub fn device_route(device_id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    device_id.hash(&mut h);
    h.finish()
}

struct DeviceWindow {
    agg: WindowAgg,
    location: CompactString,
    changed: bool,
}

/// Per-device state of a window, keyed by device id with a fast hasher (foldhash: the ids come from the
/// input, so the per-process random seed matters; SipHash cost twice as much per event).
type Devices = HashMap<CompactString, DeviceWindow, foldhash::fast::RandomState>;

struct OpenWindow {
    cap: Capability<u64>,
    devices: Devices,
}

/// Checkpoint alignment state.
struct Alignment {
    active: BTreeSet<u32>,
    last_marker: BTreeMap<u32, u64>,
    round: u64,
    cut: BTreeMap<u32, Vec<PartitionCheckpoint>>,
    retired: BTreeMap<u32, Vec<PartitionCheckpoint>>,
    held: VecDeque<WindowIn>,
    stopped: bool,
}

impl Alignment {
    fn blocked(&self, source: u32) -> bool {
        self.active.contains(&source)
            && self
                .last_marker
                .get(&source)
                .is_some_and(|&m| m >= self.round)
    }
}

struct WindowState {
    open: BTreeMap<u64, OpenWindow>,
    align: Alignment,
    worker: usize,
    window_ms: u64,
    barriers: Vec<Barrier>,
    stats: Vec<WorkerStats>,
}

impl WindowState {
    fn apply(open: &mut OpenWindow, e: EventRec) {
        let d = match open.devices.get_mut(&e.device_id) {
            Some(d) => d,
            None => open
                .devices
                .entry(e.device_id.clone())
                .or_insert_with(|| DeviceWindow {
                    agg: WindowAgg::default(),
                    location: CompactString::default(),
                    changed: true,
                }),
        };
        d.agg.add(e.temperature, e.humidity, e.battery, e.status);
        if d.location != e.location {
            d.location = e.location;
        }
        d.changed = true;
    }

    /// Handles one input item; `mint` makes a capability for a window from the item's message.
    fn handle(&mut self, item: WindowIn, mint: &mut dyn FnMut(u64) -> Capability<u64>) {
        match item {
            WindowIn::Event(e) => {
                let end = e.window_end;
                let slot = self.open.entry(end).or_insert_with(|| OpenWindow {
                    cap: mint(end - 1),
                    devices: Devices::default(),
                });
                if self.align.blocked(e.source) {
                    self.align.held.push_back(WindowIn::Event(e));
                } else {
                    Self::apply(slot, e);
                }
            }
            WindowIn::Restored(w) => {
                let w = *w;
                let end = w.window_end;
                let slot = self.open.entry(end).or_insert_with(|| OpenWindow {
                    cap: mint(end - 1),
                    devices: Devices::default(),
                });
                // Events from other sources may have reached this window before its restored state: merge.
                match slot.devices.get_mut(w.device_id.as_str()) {
                    Some(d) => d.agg.merge(&w.agg),
                    None => {
                        slot.devices.insert(
                            CompactString::from(w.device_id),
                            DeviceWindow {
                                agg: w.agg,
                                location: CompactString::from(w.location),
                                changed: true,
                            },
                        );
                    }
                }
            }
            WindowIn::Marker(m) => {
                if self.align.blocked(m.from) {
                    self.align.held.push_back(WindowIn::Marker(m));
                } else {
                    self.align.last_marker.insert(m.from, m.id);
                    self.align.cut.insert(m.from, m.partitions);
                    self.try_complete(mint);
                }
            }
            WindowIn::Stats(s) => self.stats.push(*s),
            WindowIn::Retire(m) => {
                if self.align.blocked(m.from) {
                    self.align.held.push_back(WindowIn::Retire(m));
                } else {
                    self.align.active.remove(&m.from);
                    self.align.cut.remove(&m.from);
                    self.align.retired.insert(m.from, m.partitions);
                    self.try_complete(mint);
                }
            }
        }
    }

    /// Completes the current round if every active source has delivered its marker.
    fn try_complete(&mut self, mint: &mut dyn FnMut(u64) -> Capability<u64>) {
        let a = &self.align;
        if a.stopped
            || a.active.is_empty()
            || !a
                .active
                .iter()
                .all(|s| a.last_marker.get(s).is_some_and(|&m| m >= a.round))
        {
            return;
        }
        let min = a
            .active
            .iter()
            .map(|s| a.last_marker[s])
            .min()
            .expect("non-empty");
        let (id, kind) = if min == STOP_ID {
            (a.round, BarrierKind::Stop)
        } else {
            (min, BarrierKind::Periodic)
        };
        let barrier = self.barrier(id, kind);
        self.barriers.push(barrier);
        self.align.stopped = kind == BarrierKind::Stop;
        self.align.round = id + 1;
        let held: Vec<WindowIn> = self.align.held.drain(..).collect();
        for item in held {
            self.handle(item, mint);
        }
    }

    fn barrier(&self, id: u64, kind: BarrierKind) -> Barrier {
        let mut windows = Vec::new();
        for (&end, slot) in &self.open {
            for (device, d) in &slot.devices {
                windows.push(WindowCheckpoint {
                    device_id: device.to_string(),
                    window_end: end,
                    location: d.location.to_string(),
                    agg: d.agg,
                });
            }
        }
        let partitions = if self.worker == 0 {
            let mut p: Vec<PartitionCheckpoint> = self
                .align
                .cut
                .values()
                .chain(self.align.retired.values())
                .flatten()
                .cloned()
                .collect();
            p.sort_by_key(|p| p.partition);
            p
        } else {
            Vec::new()
        };
        Barrier {
            id,
            kind,
            windows,
            partitions,
        }
    }

    fn window(&self, end: u64) -> Window {
        Window {
            start: end.saturating_sub(self.window_ms),
            end,
        }
    }
}

/// Builds the window operator. `restored_id` is the checkpoint the job resumed from (0: none); `worker` and
/// `peers` are the global worker index and count; `watermark` receives the operator's input frontier, which is
/// the job's watermark.
pub fn build<'s>(
    input: StreamVec<'s, u64, WindowIn>,
    watermark: Rc<Cell<Option<u64>>>,
    window_ms: u64,
    trigger: Duration,
    restored_id: u64,
    worker: usize,
    peers: usize,
) -> StreamVec<'s, u64, WindowMsg> {
    let scope = input.scope();
    input.unary_frontier(
        Exchange::new(|m: &WindowIn| m.route()),
        "TumblingWindow",
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            // Held at the input frontier, for barriers; released when the input ends.
            let mut held = Some(cap);
            let mut state = WindowState {
                open: BTreeMap::new(),
                align: Alignment {
                    active: (0..peers as u32).collect(),
                    last_marker: (0..peers as u32).map(|s| (s, restored_id)).collect(),
                    round: restored_id + 1,
                    cut: BTreeMap::new(),
                    retired: BTreeMap::new(),
                    held: VecDeque::new(),
                    stopped: false,
                },
                worker,
                window_ms,
                barriers: Vec::new(),
                stats: Vec::new(),
            };
            // Live aggregates go out on the shared grid, just before each snapshot tick (see `trigger`).
            let lead = crate::trigger::lead(trigger);
            let mut next_live = crate::trigger::next_after(model::time::now_ms(), trigger, lead);
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    for item in data.drain(..) {
                        state.handle(item, &mut |time| cap.delayed(&time, 0));
                    }
                });
                let Some(hold) = held.as_mut() else { return };
                for barrier in state.barriers.drain(..) {
                    output.session(&*hold).give(WindowMsg::Barrier(barrier));
                }
                if !state.stats.is_empty() {
                    output
                        .session(&*hold)
                        .give_iterator(state.stats.drain(..).map(WindowMsg::Stats));
                }
                watermark.set(frontier.frontier().first().copied());
                // Final: every window whose end the frontier has reached, unless a checkpoint is being aligned.
                if state.align.held.is_empty() {
                    while let Some((&end, _)) = state.open.first_key_value() {
                        if frontier.less_equal(&(end - 1)) {
                            break;
                        }
                        let slot = state.open.pop_first().expect("non-empty").1;
                        let window = state.window(end);
                        let mut session = output.session(&slot.cap);
                        let mut devices: Vec<_> = slot.devices.into_iter().collect();
                        devices.sort_by(|a, b| a.0.cmp(&b.0));
                        for (device, d) in devices {
                            session.give(WindowMsg::Agg(WindowOut {
                                agg: d.agg.finish(&device, window),
                                location: d.location.into_string(),
                                is_final: true,
                            }));
                        }
                    }
                }
                if frontier.is_empty() {
                    // The input has ended: every window is final; close with a last barrier.
                    let id = state.align.round;
                    let barrier = state.barrier(id, BarrierKind::Final);
                    output.session(&*hold).give(WindowMsg::Barrier(barrier));
                    held = None;
                    return;
                }
                if let Some(&t) = frontier.frontier().first()
                    && t > *hold.time()
                {
                    hold.downgrade(&t);
                }
                // Live: the changed aggregates of open windows, once per trigger.
                if !state.open.is_empty() {
                    let now = model::time::now_ms();
                    if crate::trigger::due(now, &mut next_live, trigger, lead) {
                        let window_ms = state.window_ms;
                        for (&end, slot) in state.open.iter_mut() {
                            let window = Window {
                                start: end.saturating_sub(window_ms),
                                end,
                            };
                            let mut session = output.session(&slot.cap);
                            for (device, d) in slot.devices.iter_mut().filter(|(_, d)| d.changed) {
                                d.changed = false;
                                session.give(WindowMsg::Agg(WindowOut {
                                    agg: d.agg.finish(device, window),
                                    location: d.location.to_string(),
                                    is_final: false,
                                }));
                            }
                        }
                    }
                    activator.activate_after(Duration::from_millis(next_live.saturating_sub(now)));
                }
            }
        },
    )
}
