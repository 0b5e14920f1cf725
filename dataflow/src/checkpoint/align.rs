//! Checkpoint alignment in the window operator (Chandy–Lamport on timely's FIFO channels), apart from timely.
//! Every source sends a marker to every window operator after the events that belong to the checkpoint. Once a
//! source's marker for the current round has arrived, whatever that source sends next is held back until every
//! active source's marker is in; then the round completes (a barrier carrying the operator's open windows) and
//! what was held is admitted again. A retired source (finished, or owning nothing) is no longer waited for.
//! After the stop round nothing completes any more.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::messages::{BarrierKind, PartitionState, STOP_ID, SourceSignal, WindowData, WindowIn, WorkerStats};

/// Where aligned items go: the window operator.
pub trait Aligned {
    /// Data that belongs to the current round (an event, a restored window).
    fn apply(&mut self, item: WindowData);
    /// A source's counters (not part of any round).
    fn stats(&mut self, stats: Box<WorkerStats>);
    /// The round `id` completed: everything applied so far belongs to it. `partitions` are the partition
    /// states of every source at the cut; `saved` is false when a marker of the round said that an operator before
    /// could not save its state (the checkpoint must then not commit).
    fn barrier(&mut self, id: u64, kind: BarrierKind, partitions: Vec<PartitionState>, saved: bool);
}

/// The alignment state of one window operator.
pub struct Alignment {
    active: BTreeSet<u32>,
    last_marker: BTreeMap<u32, u64>,
    round: u64,
    cut: BTreeMap<u32, Vec<PartitionState>>,
    retired: BTreeMap<u32, Vec<PartitionState>>,
    held: VecDeque<WindowIn>,
    stopped: bool,
    /// A marker of the current round was unsaved.
    unsaved: bool,
    /// A goodbye was unsaved: the final barrier must not commit.
    final_unsaved: bool,
}

impl Alignment {
    /// Alignment over `peers` sources, after checkpoint `restored` (0: none).
    pub fn new(peers: usize, restored: u64) -> Alignment {
        Alignment {
            active: (0..peers as u32).collect(),
            last_marker: (0..peers as u32).map(|s| (s, restored)).collect(),
            round: restored + 1,
            cut: BTreeMap::new(),
            retired: BTreeMap::new(),
            held: VecDeque::new(),
            stopped: false,
            unsaved: false,
            final_unsaved: false,
        }
    }

    /// Whether items from `source` are held back: its marker for the current round is in.
    fn blocked(&self, source: u32) -> bool {
        self.active.contains(&source) && self.last_marker.get(&source).is_some_and(|&m| m >= self.round)
    }

    /// Whether anything is held back (then no window may turn final: a checkpoint's open and final windows
    /// must not overlap).
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Admits one item: applies it, holds it back, or takes its marker (completing the round if it was the last).
    pub fn admit(&mut self, item: WindowIn, to: &mut dyn Aligned) {
        let from = match &item {
            WindowIn::Data(WindowData::Event(e)) => Some(e.source),
            WindowIn::Data(WindowData::Probe(p)) => Some(p.source),
            WindowIn::Signal(SourceSignal::Marker(m) | SourceSignal::Retire(m)) => Some(m.from),
            WindowIn::Data(WindowData::Restored(_)) | WindowIn::Signal(SourceSignal::Stats(_)) => None,
        };
        if from.is_some_and(|s| self.blocked(s)) {
            self.held.push_back(item);
            return;
        }
        match item {
            WindowIn::Signal(SourceSignal::Marker(m)) => {
                self.unsaved |= m.unsaved;
                self.last_marker.insert(m.from, m.id);
                self.cut.insert(m.from, m.partitions);
                self.try_complete(to);
            }
            WindowIn::Signal(SourceSignal::Retire(m)) => {
                self.final_unsaved |= m.unsaved;
                self.active.remove(&m.from);
                self.cut.remove(&m.from);
                self.retired.insert(m.from, m.partitions);
                self.try_complete(to);
            }
            WindowIn::Signal(SourceSignal::Stats(stats)) => to.stats(stats),
            WindowIn::Data(data) => to.apply(data),
        }
    }

    /// Completes the current round if every active source has delivered its marker.
    fn try_complete(&mut self, to: &mut dyn Aligned) {
        if self.stopped
            || self.active.is_empty()
            || !self
                .active
                .iter()
                .all(|s| self.last_marker.get(s).is_some_and(|&m| m >= self.round))
        {
            return;
        }
        let min = self
            .active
            .iter()
            .map(|s| self.last_marker[s])
            .min()
            .expect("non-empty");
        let (id, kind) = if min == STOP_ID {
            (self.round, BarrierKind::Stop)
        } else {
            (min, BarrierKind::Periodic)
        };
        let saved = !std::mem::take(&mut self.unsaved);
        to.barrier(id, kind, self.partitions(), saved);
        self.stopped = kind == BarrierKind::Stop;
        self.round = id + 1;
        let held: Vec<WindowIn> = self.held.drain(..).collect();
        for item in held {
            self.admit(item, to);
        }
    }

    /// Whether every source has retired (finished, or owning nothing): no marker will come any more.
    pub fn finished(&self) -> bool {
        self.active.is_empty()
    }

    /// The id and partitions of the final barrier, once the input has ended, and whether every operator before
    /// saved its state for it.
    pub fn final_cut(&self) -> (u64, Vec<PartitionState>, bool) {
        (self.round, self.partitions(), !self.final_unsaved)
    }

    /// The partition states of every source at the last cut, sorted by partition.
    fn partitions(&self) -> Vec<PartitionState> {
        let mut p: Vec<PartitionState> = self
            .cut
            .values()
            .chain(self.retired.values())
            .flatten()
            .cloned()
            .collect();
        p.sort_by_key(|p| p.partition);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Marker;

    /// Records what the alignment lets through, in order.
    #[derive(Default)]
    struct Recorder {
        seen: Vec<String>,
    }

    impl Aligned for Recorder {
        fn apply(&mut self, item: WindowData) {
            if let WindowData::Event(e) = item {
                self.seen.push(format!("event {} from {}", e.ts, e.source));
            }
        }
        fn stats(&mut self, _stats: Box<WorkerStats>) {}
        fn barrier(&mut self, id: u64, kind: BarrierKind, partitions: Vec<PartitionState>, saved: bool) {
            let parts: Vec<i32> = partitions.iter().map(|p| p.partition).collect();
            let unsaved = if saved { "" } else { " unsaved" };
            self.seen.push(format!("barrier {id} {kind:?} {parts:?}{unsaved}"));
        }
    }

    /// An event whose event time `n` names it in what the alignment lets through.
    fn event(source: u32, n: u64) -> WindowIn {
        let mut e = crate::query::testing::event("d", n, 9_999, 1.0);
        e.source = source;
        WindowIn::Data(WindowData::Event(e))
    }

    fn marker(id: u64, from: u32) -> Marker {
        Marker {
            id,
            from,
            to: 0,
            partitions: vec![PartitionState {
                partition: from as i32,
                ..Default::default()
            }],
            unsaved: false,
        }
    }

    /// Admits `items` into a fresh alignment over `peers` sources after checkpoint `restored`; returns it and
    /// what it let through.
    fn align(peers: usize, restored: u64, items: Vec<WindowIn>) -> (Alignment, Vec<String>) {
        let mut a = Alignment::new(peers, restored);
        let mut r = Recorder::default();
        for item in items {
            a.admit(item, &mut r);
        }
        (a, r.seen)
    }

    fn mark(id: u64, from: u32) -> WindowIn {
        WindowIn::Signal(SourceSignal::Marker(marker(id, from)))
    }

    #[test]
    fn events_after_a_sources_marker_wait_for_the_other_sources_markers() {
        let items = vec![event(0, 1), mark(1, 0), event(0, 2), event(1, 3)];
        let (mut a, _) = align(2, 0, items);
        assert!(a.is_holding());
        let mut r = Recorder::default();
        a.admit(mark(1, 1), &mut r);
        assert!(!a.is_holding());
        assert_eq!(r.seen, ["barrier 1 Periodic [0, 1]", "event 2 from 0"]);
        let (_, seen) = align(
            2,
            0,
            vec![event(0, 1), mark(1, 0), event(0, 2), event(1, 3), mark(1, 1)],
        );
        assert_eq!(
            seen,
            [
                "event 1 from 0",
                "event 3 from 1",
                "barrier 1 Periodic [0, 1]",
                "event 2 from 0"
            ]
        );
    }

    #[test]
    fn a_retired_source_is_not_waited_for() {
        let (a, seen) = align(
            2,
            0,
            vec![WindowIn::Signal(SourceSignal::Retire(marker(0, 0))), mark(1, 1)],
        );
        assert_eq!(seen, ["barrier 1 Periodic [0, 1]"]);
        assert_eq!(a.final_cut().0, 2);
    }

    #[test]
    fn an_unsaved_marker_makes_its_round_unsaved_and_the_next_one_saved_again() {
        let unsaved = |id, from| {
            let mut m = marker(id, from);
            m.unsaved = true;
            WindowIn::Signal(SourceSignal::Marker(m))
        };
        let (a, seen) = align(2, 0, vec![mark(1, 0), unsaved(1, 1), mark(2, 0), mark(2, 1)]);
        assert_eq!(seen, ["barrier 1 Periodic [0, 1] unsaved", "barrier 2 Periodic [0, 1]"]);
        assert!(a.final_cut().2, "no goodbye was unsaved");
        let mut goodbye = marker(0, 0);
        goodbye.unsaved = true;
        let (a, _) = align(1, 0, vec![WindowIn::Signal(SourceSignal::Retire(goodbye))]);
        assert!(!a.final_cut().2, "the final barrier of an unsaved goodbye");
    }

    #[test]
    fn stop_markers_complete_a_stop_round_and_nothing_after_it() {
        let items = vec![mark(STOP_ID, 0), mark(STOP_ID, 1), mark(6, 0), mark(6, 1)];
        let (_, seen) = align(2, 4, items);
        assert_eq!(
            seen,
            ["barrier 5 Stop [0, 1]"],
            "no round completes after the stop round"
        );
    }

    #[test]
    fn a_round_is_numbered_after_the_restored_checkpoint() {
        assert_eq!(align(1, 7, vec![mark(8, 0)]).1, ["barrier 8 Periodic [0]"]);
    }

    #[test]
    fn a_source_ahead_by_two_rounds_completes_them_in_order() {
        let items = vec![mark(1, 0), mark(2, 0), event(0, 9), mark(1, 1), mark(2, 1)];
        assert_eq!(
            align(2, 0, items).1,
            [
                "barrier 1 Periodic [0, 1]",
                "barrier 2 Periodic [0, 1]",
                "event 9 from 0"
            ]
        );
    }

    #[test]
    fn restored_windows_and_counters_are_never_held() {
        let (a, _) = align(
            2,
            0,
            vec![mark(1, 0), WindowIn::Signal(SourceSignal::Stats(Box::default()))],
        );
        assert!(!a.is_holding());
    }
}
