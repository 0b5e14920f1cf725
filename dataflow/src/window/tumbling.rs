//! The open tumbling windows of one worker: per group, the running accumulators of each of its open windows, in
//! window order. Windows are opened by events or restored from a checkpoint (merged with events that arrived
//! first), finished when the watermark reaches their end (every group once, sorted by key), and published live
//! for the groups that changed since the last publication. A group's location is that of its last event to
//! arrive. State is bounded by open windows × groups, never by events, except for the rows kept for aggregate
//! UDFs, which grow with the events of open windows and leave with them.
//!
//! Kept by group rather than by window: one hash entry per group and a short vector of its windows (a group
//! has a few open windows, `lateness / size + 1`), where a map per window repeated every group's key and the
//! map's slack in each window (at 10,000 devices, 70,000 windows: 15 MB against 8).

use std::collections::BTreeSet;

use model::Window;

use crate::messages::{EventRec, GroupKey, OpenWindow, WindowOut};
use crate::query::Program;
use crate::window::acc::{GroupAcc, Groups, OpenState};

/// A group's accumulators in a window, and whether they changed since the last live publication.
#[derive(Default)]
pub struct Slot {
    /// The accumulators.
    pub acc: GroupAcc,
    /// Changed since the last live publication.
    pub changed: bool,
}

/// One group's open windows, by end, oldest first.
type GroupWindows = Vec<(u64, Slot)>;

/// The open tumbling windows of one worker.
pub struct Tumbling {
    groups: Groups<GroupWindows>,
    /// The ends of the open windows: which windows the frontier closes.
    ends: BTreeSet<u64>,
    window_ms: u64,
    program: Program,
}

impl Tumbling {
    /// No open window; windows are `window_ms` long; `program` folds and emits them.
    pub fn new(window_ms: u64, program: Program) -> Tumbling {
        Tumbling {
            groups: Groups::default(),
            ends: BTreeSet::new(),
            window_ms,
            program,
        }
    }
}

/// The tumbling window of `window_ms` ending at `end`.
fn window_ending(end: u64, window_ms: u64) -> Window {
    Window {
        start: end.saturating_sub(window_ms),
        end,
    }
}

/// The slot of the window ending at `end` among a device's `windows`, opened (and its end noted in `ends`) if need
/// be.
fn slot_in<'w>(windows: &'w mut GroupWindows, ends: &mut BTreeSet<u64>, end: u64) -> &'w mut Slot {
    // Events mostly go to the newest window: look from the back.
    let at = match windows.iter().rposition(|(e, _)| *e <= end) {
        Some(i) if windows[i].0 == end => i,
        found => {
            let i = found.map_or(0, |i| i + 1);
            windows.insert(i, (end, Slot::default()));
            ends.insert(end);
            i
        }
    };
    &mut windows[at].1
}

impl OpenState for Tumbling {
    fn add(&mut self, e: EventRec) {
        let windows = match self.groups.get_mut(&e.key) {
            Some(w) => w,
            None => self.groups.entry(e.key.clone()).or_default(),
        };
        // For tumbling windows an event's time in the dataflow is its window's end − 1.
        let d = slot_in(windows, &mut self.ends, e.at + 1);
        d.acc.add(&e, &self.program, true);
        d.changed = true;
    }

    fn restore(&mut self, w: OpenWindow) {
        let windows = self.groups.entry(w.key.clone()).or_default();
        let d = slot_in(windows, &mut self.ends, w.end);
        d.acc.absorb(GroupAcc::of_open(w));
        d.changed = true;
    }

    fn finish(&mut self, frontier: Option<u64>, out: &mut Vec<WindowOut>) {
        let Some(&first) = self.ends.first() else { return };
        if frontier.is_some_and(|f| first > f) {
            return;
        }
        let closes = |end: u64| frontier.is_none_or(|f| end <= f);
        let mut closed: Vec<(u64, GroupKey, GroupAcc)> = Vec::new();
        self.groups.retain(|key, windows| {
            let n = windows.iter().take_while(|(end, _)| closes(*end)).count();
            closed.extend(windows.drain(..n).map(|(end, slot)| (end, key.clone(), slot.acc)));
            !windows.is_empty()
        });
        self.ends.retain(|&end| !closes(end));
        closed.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let (window_ms, p) = (self.window_ms, &self.program);
        out.extend(
            closed
                .into_iter()
                .filter_map(|(end, key, acc)| acc.emit(p, &key, window_ending(end, window_ms), true)),
        );
    }

    fn live(&mut self, out: &mut Vec<WindowOut>) {
        let (window_ms, p) = (self.window_ms, &self.program);
        for (key, windows) in self.groups.iter_mut() {
            for (end, d) in windows.iter_mut().filter(|(_, d)| d.changed) {
                d.changed = false;
                out.extend(d.acc.emit(p, key, window_ending(*end, window_ms), false));
            }
        }
    }

    fn each_open(&self, each: &mut dyn FnMut(OpenWindow) -> std::io::Result<()>) -> std::io::Result<()> {
        for (key, windows) in &self.groups {
            for (end, d) in windows {
                each(d.acc.to_open(key, window_ending(*end, self.window_ms).start, *end))?;
            }
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::testing::{self, avg_temperature, count, device, program, sequence};

    /// The final aggregates of the window ending at `end` (and of any before it).
    fn finish_at(s: &mut Tumbling, end: u64) -> Vec<WindowOut> {
        let mut out = Vec::new();
        s.finish(Some(end), &mut out);
        out
    }

    fn live(s: &mut Tumbling) -> Vec<WindowOut> {
        let mut out = Vec::new();
        s.live(&mut out);
        out
    }

    fn event(device: &str, end: u64, temperature: f64) -> EventRec {
        testing::event(device, end - 1, end - 1, temperature)
    }

    fn tumbling() -> Tumbling {
        Tumbling::new(10_000, program())
    }

    #[test]
    fn events_fold_into_their_device_and_window() {
        let mut s = tumbling();
        s.add(event("a", 10_000, 20.0));
        s.add(event("a", 10_000, 22.0));
        s.add(event("b", 10_000, 30.0));
        s.add(event("a", 20_000, 25.0));
        let first = finish_at(&mut s, 10_000);
        assert_eq!(first.len(), 2);
        assert_eq!((device(&first[0]).as_str(), count(&first[0])), ("a", 2));
        assert_eq!(avg_temperature(&first[0]), 21.0);
        assert_eq!((first[0].start, first[0].end), (0, 10_000));
        assert!(first.iter().all(|w| w.is_final));
        assert_eq!(s.open_windows().len(), 1, "the later window stays open");
    }

    #[test]
    fn finished_window_lists_devices_in_id_order() {
        let mut s = tumbling();
        for d in ["m", "b", "z", "a"] {
            s.add(event(d, 10_000, 1.0));
        }
        let ids: Vec<String> = finish_at(&mut s, 10_000).iter().map(device).collect();
        assert_eq!(ids, ["a", "b", "m", "z"]);
    }

    #[test]
    fn windows_closing_together_leave_oldest_first_each_in_device_order_and_empty_devices_are_forgotten() {
        let mut s = tumbling();
        for end in [30_000, 10_000, 20_000] {
            for d in ["b", "a"] {
                s.add(event(d, end, 1.0));
            }
        }
        s.add(event("c", 30_000, 1.0));
        let closed: Vec<(u64, String)> = finish_at(&mut s, 20_000)
            .into_iter()
            .map(|w| (w.end, device(&w)))
            .collect();
        let want = [(10_000, "a"), (10_000, "b"), (20_000, "a"), (20_000, "b")].map(|(e, d)| (e, d.to_string()));
        assert_eq!(closed, want);
        assert_eq!(s.open_windows().len(), 3, "the three windows ending at 30 s stay open");
        let mut rest = Vec::new();
        s.finish(None, &mut rest);
        assert_eq!(rest.len(), 3);
        assert!(s.is_empty(), "no device is kept without an open window");
    }

    #[test]
    fn finishing_a_window_that_is_not_open_yields_nothing() {
        assert!(finish_at(&mut tumbling(), 10_000).is_empty());
    }

    #[test]
    fn live_publication_sends_only_what_changed() {
        let mut s = tumbling();
        s.add(event("a", 10_000, 20.0));
        s.add(event("b", 10_000, 20.0));
        let first = live(&mut s);
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|w| !w.is_final));
        assert!(live(&mut s).is_empty(), "nothing changed since");
        s.add(event("b", 10_000, 21.0));
        let next = live(&mut s);
        assert_eq!(next.len(), 1);
        assert_eq!(device(&next[0]), "b");
    }

    #[test]
    fn restored_window_merges_with_events_that_came_first() {
        let mut whole = tumbling();
        for t in [20.0, 21.0, 22.0] {
            whole.add(event("a", 10_000, t));
        }
        // The first two events were checkpointed; the third reached the new worker before the restored state.
        let mut before = tumbling();
        before.add(event("a", 10_000, 20.0));
        before.add(event("a", 10_000, 21.0));
        let saved = before.open_windows();
        let mut after = tumbling();
        after.add(event("a", 10_000, 22.0));
        for w in saved {
            after.restore(w);
        }
        assert_eq!(finish_at(&mut after, 10_000), finish_at(&mut whole, 10_000));
    }

    #[test]
    fn checkpointed_windows_restore_to_the_same_results() {
        let mut a = tumbling();
        a.add(event("a", 10_000, 20.0));
        a.add(event("b", 20_000, 30.0));
        let mut b = tumbling();
        for w in a.open_windows() {
            b.restore(w);
        }
        assert_eq!(finish_at(&mut b, 10_000), finish_at(&mut a, 10_000));
        assert_eq!(finish_at(&mut b, 20_000), finish_at(&mut a, 20_000));
    }

    fn sequence_udaf() -> Tumbling {
        Tumbling::new(10_000, testing::sequence_program())
    }

    #[test]
    fn aggregate_udfs_see_every_on_time_event_of_the_window_also_across_a_restore() {
        let mut s = sequence_udaf();
        let mut e = event("a", 10_000, 20.0);
        e.ts = 5;
        s.add(e);
        let mut e = event("a", 10_000, 21.0);
        e.ts = 2;
        s.add(e);
        let live = live(&mut s);
        assert_eq!(sequence(&live[0]), "21,20", "in event-time order");
        let saved = s.open_windows();
        assert!(matches!(saved[0].accs.last(), Some(sql::agg::Acc::Udaf(rows)) if rows.len() == 2));
        let mut after = sequence_udaf();
        let mut e = event("a", 10_000, 19.0);
        e.ts = 3;
        after.add(e);
        for w in saved {
            after.restore(w);
        }
        let finals = finish_at(&mut after, 10_000);
        assert_eq!(sequence(&finals[0]), "21,19,20");
        assert_eq!(count(&finals[0]), 3);
    }

    #[test]
    fn without_aggregate_udfs_no_rows_are_kept() {
        let mut s = tumbling();
        s.add(event("a", 10_000, 20.0));
        let open = s.open_windows();
        assert!(!open[0].accs.iter().any(|a| matches!(a, sql::agg::Acc::Udaf(_))));
        assert_eq!(
            finish_at(&mut s, 10_000)[0].row.len(),
            11,
            "the seed's columns, no other"
        );
    }

    #[test]
    fn the_latest_location_of_a_device_wins() {
        let mut s = tumbling();
        s.add(event("a", 10_000, 20.0));
        s.add(testing::located("a", 9_999, 9_999, 20.0, "office"));
        assert_eq!(finish_at(&mut s, 10_000)[0].side, "office");
    }
}
