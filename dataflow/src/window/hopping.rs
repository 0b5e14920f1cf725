//! The open hopping windows of one worker, kept as panes (`model::window_kind`, "Hopping"): every event is
//! folded once, into its group's pane of `gcd(size, slide)`, and a window's accumulators are the combination of
//! its panes when it is emitted, so the cost per event does not grow with `size / slide` and state is bounded by
//! open panes × groups. A pane is dropped once the last window that holds it is final. Windows are finished in
//! end order as the watermark reaches them (every group that has a pane in the window, sorted by key); windows
//! without any pane are skipped. Live, each changed group publishes its newest window (the one that starts at
//! its newest pane's slide), which is what `latest.json` shows. A group's location in a window is that of the
//! last event to arrive in its newest pane of the window.

use std::collections::VecDeque;

use model::Window;

use crate::messages::{EventRec, OpenWindow, WindowOut};
use crate::query::Program;
use crate::window::acc::{GroupAcc, Groups, OpenState};

/// One group's open panes, oldest first.
#[derive(Default)]
struct GroupPanes {
    panes: VecDeque<(u64, GroupAcc)>,
    /// Changed since the last live publication.
    changed: bool,
}

impl GroupPanes {
    /// The pane starting at `start`, created if needed (events mostly arrive for the newest pane).
    fn pane_mut(&mut self, start: u64) -> &mut GroupAcc {
        match self.panes.back() {
            Some((newest, _)) if *newest == start => {}
            Some((newest, _)) if *newest > start => {
                let i = self.panes.partition_point(|(p, _)| *p < start);
                if self.panes.get(i).is_none_or(|(p, _)| *p != start) {
                    self.panes.insert(i, (start, GroupAcc::default()));
                }
                return &mut self.panes[i].1;
            }
            _ => self.panes.push_back((start, GroupAcc::default())),
        }
        &mut self.panes.back_mut().expect("just ensured").1
    }

    /// The group's accumulators over `window`: its panes there combined in order, the newest one's location.
    fn combine(&self, window: Window) -> Option<GroupAcc> {
        let from = self.panes.partition_point(|(p, _)| *p < window.start);
        let mut panes = self.panes.range(from..).take_while(|(p, _)| *p < window.end);
        let (_, first) = panes.next()?;
        let mut acc = first.clone();
        for (_, pane) in panes {
            acc.absorb(pane.clone());
            if !pane.side.is_empty() {
                acc.side.clone_from(&pane.side);
            }
        }
        Some(acc)
    }
}

/// The open hopping windows of one worker.
pub struct Panes {
    hop: model::Hopping,
    pane_ms: u64,
    groups: Groups<GroupPanes>,
    /// The end of the next window to finish (`None`: nothing open).
    next_end: Option<u64>,
    program: Program,
}

impl Panes {
    /// No open pane; `program` folds and emits them.
    pub fn new(hop: model::Hopping, program: Program) -> Panes {
        Panes {
            hop,
            pane_ms: hop.pane_ms(),
            groups: Groups::default(),
            next_end: None,
            program,
        }
    }

    /// A pane starting at `start` is open: the earliest window that holds it is to be finished first.
    fn opened(&mut self, start: u64) {
        let end = self.hop.earliest(start).end;
        self.next_end = Some(self.next_end.map_or(end, |n| n.min(end)));
    }
}

impl OpenState for Panes {
    fn add(&mut self, e: EventRec) {
        let pane = e.ts - e.ts % self.pane_ms;
        let d = match self.groups.get_mut(&e.key) {
            Some(d) => d,
            None => self.groups.entry(e.key.clone()).or_default(),
        };
        d.pane_mut(pane).add(&e, &self.program, true);
        d.changed = true;
        // A pane's windows are its events' windows: the earliest ends at the event's `at` + 1.
        let end = e.at + 1;
        if self.next_end.is_none_or(|n| end < n) {
            self.next_end = Some(end);
        }
    }

    fn restore(&mut self, w: OpenWindow) {
        let start = w.start;
        let d = self.groups.entry(w.key.clone()).or_default();
        d.pane_mut(start).absorb(GroupAcc::of_open(w));
        d.changed = true;
        self.opened(start);
    }

    fn finish(&mut self, frontier: Option<u64>, out: &mut Vec<WindowOut>) {
        let (size, slide) = (self.hop.size_ms(), self.hop.slide_ms());
        while let Some(end) = self.next_end {
            if frontier.is_some_and(|f| end > f) {
                return;
            }
            let window = Window { start: end - size, end };
            // Panes before the next window's start are in no later window.
            let keep_from = window.start + slide;
            let mut finals = Vec::new();
            let mut oldest = u64::MAX;
            let p = &self.program;
            self.groups.retain(|key, d| {
                if let Some(acc) = d.combine(window) {
                    finals.extend(acc.emit(p, key, window, true));
                }
                while d.panes.front().is_some_and(|(p, _)| *p < keep_from) {
                    d.panes.pop_front();
                }
                match d.panes.front() {
                    Some((p, _)) => {
                        oldest = oldest.min(*p);
                        true
                    }
                    None => false,
                }
            });
            finals.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            out.append(&mut finals);
            self.next_end = (!self.groups.is_empty()).then(|| (end + slide).max(self.hop.earliest(oldest).end));
        }
    }

    fn live(&mut self, out: &mut Vec<WindowOut>) {
        let p = &self.program;
        for (key, d) in self.groups.iter_mut().filter(|(_, d)| d.changed) {
            d.changed = false;
            let Some(&(newest, _)) = d.panes.back() else { continue };
            let window = self.hop.latest(newest);
            if let Some(acc) = d.combine(window) {
                out.extend(acc.emit(p, key, window, false));
            }
        }
    }

    fn each_open(&self, each: &mut dyn FnMut(OpenWindow) -> std::io::Result<()>) -> std::io::Result<()> {
        for (key, d) in &self.groups {
            for (start, acc) in &d.panes {
                each(acc.to_open(key, *start, start + self.pane_ms))?;
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
    use std::collections::BTreeMap;

    fn event(device: &str, ts: u64, hop: model::Hopping, temperature: f64) -> EventRec {
        let at = model::WindowKind::Hopping(hop).on_time_until(ts);
        testing::event(device, ts, at, temperature)
    }

    /// (device, start, end) → (count, sum of temperatures): what every emitted window must hold.
    type Expected = BTreeMap<(String, u64, u64), (u64, f64)>;

    fn brute_force(hop: model::Hopping, events: &[(String, u64, f64)]) -> Expected {
        let mut want = Expected::new();
        for (device, ts, t) in events {
            for w in hop.windows_of(*ts) {
                let e = want.entry((device.clone(), w.start, w.end)).or_default();
                e.0 += 1;
                e.1 += t;
            }
        }
        want
    }

    fn got(finals: &[WindowOut]) -> Expected {
        let mut got = Expected::new();
        for w in finals {
            let key = (device(w), w.start, w.end);
            let sum = avg_temperature(w) * count(w) as f64;
            assert!(
                got.insert(key.clone(), (count(w), sum)).is_none(),
                "{key:?} emitted twice"
            );
        }
        got
    }

    fn close(a: &Expected, b: &Expected) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|((ka, va), (kb, vb))| ka == kb && va.0 == vb.0 && (va.1 - vb.1).abs() < 1e-6)
    }

    /// A small deterministic generator (the tests need no external randomness).
    fn rng(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut s = seed;
        move |n| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 33) % n
        }
    }

    #[test]
    fn panes_give_every_window_of_every_event_exactly_once_whatever_the_sizes() {
        for (size, slide) in [(30, 10), (25, 10), (60, 1), (10, 10), (7, 3)] {
            let hop = model::Hopping::new(size, slide).unwrap();
            let mut next = rng(size * 100 + slide);
            let mut s = Panes::new(hop, program());
            let mut events = Vec::new();
            let mut finals = Vec::new();
            let mut watermark = 0u64;
            for i in 0..600u64 {
                // Mostly in order with some disorder; only on-time events are added, as the source guarantees.
                let ts = (i / 3 + next(15)).saturating_sub(5);
                if model::WindowKind::Hopping(hop).is_late(ts, watermark) {
                    continue;
                }
                let device = format!("d{}", next(4));
                let t = next(100) as f64;
                s.add(event(&device, ts, hop, t));
                events.push((device, ts, t));
                if next(10) == 0 {
                    watermark = watermark.max(ts.saturating_sub(8));
                    s.finish(Some(watermark), &mut finals);
                }
            }
            s.finish(None, &mut finals);
            assert!(s.is_empty());
            assert!(
                close(&got(&finals), &brute_force(hop, &events)),
                "size {size} slide {slide}"
            );
            // Per device, windows come out in end order.
            let mut last: BTreeMap<String, u64> = BTreeMap::new();
            for w in &finals {
                let prev = last.insert(device(w), w.end);
                assert!(prev.is_none_or(|p| p < w.end));
            }
        }
    }

    #[test]
    fn an_event_on_a_window_boundary_is_in_the_windows_it_starts_and_not_the_one_ending_there() {
        let hop = model::Hopping::new(30, 10).unwrap();
        let mut s = Panes::new(hop, program());
        s.add(event("a", 30, hop, 1.0));
        let mut finals = Vec::new();
        s.finish(None, &mut finals);
        let bounds: Vec<(u64, u64)> = finals.iter().map(|w| (w.start, w.end)).collect();
        assert_eq!(bounds, [(10, 40), (20, 50), (30, 60)]);
    }

    #[test]
    fn a_window_is_final_only_once_the_watermark_reaches_its_end() {
        let hop = model::Hopping::new(30, 10).unwrap();
        let mut s = Panes::new(hop, program());
        s.add(event("a", 25, hop, 1.0));
        let mut finals = Vec::new();
        s.finish(Some(29), &mut finals);
        assert!(finals.is_empty());
        s.finish(Some(40), &mut finals);
        let ends: Vec<u64> = finals.iter().map(|w| w.end).collect();
        assert_eq!(ends, [30, 40]);
        assert!(!s.is_empty(), "the pane is still in [20, 50)");
    }

    #[test]
    fn checkpointed_panes_restore_to_the_same_windows_merged_with_new_events() {
        let hop = model::Hopping::new(25, 10).unwrap();
        let mut whole = Panes::new(hop, program());
        let mut before = Panes::new(hop, program());
        let mut events = Vec::new();
        for (i, ts) in [3u64, 7, 12, 18, 22, 24, 31].into_iter().enumerate() {
            let e = event(if i % 2 == 0 { "a" } else { "b" }, ts, hop, i as f64);
            events.push(e.clone());
            whole.add(e.clone());
            if ts < 20 {
                before.add(e);
            }
        }
        let mut after = Panes::new(hop, program());
        // Events after the checkpoint may reach the new worker before its restored panes.
        for e in events.iter().filter(|e| e.ts >= 20) {
            after.add(e.clone());
        }
        for w in before.open_windows() {
            after.restore(w);
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        whole.finish(None, &mut a);
        after.finish(None, &mut b);
        assert!(close(&got(&a), &got(&b)));
        assert_eq!(a.len(), b.len());
    }

    #[test]
    fn live_publishes_the_newest_window_of_each_changed_device() {
        let hop = model::Hopping::new(30, 10).unwrap();
        let mut s = Panes::new(hop, program());
        s.add(event("a", 5, hop, 1.0));
        s.add(event("a", 12, hop, 3.0));
        let mut live = Vec::new();
        s.live(&mut live);
        assert_eq!(live.len(), 1);
        let w = &live[0];
        assert_eq!((w.start, w.end, count(w)), (10, 40, 1));
        assert!(!live[0].is_final);
        live.clear();
        s.live(&mut live);
        assert!(live.is_empty(), "nothing changed since");
    }

    #[test]
    fn aggregate_udfs_see_all_the_events_of_the_window_across_its_panes() {
        let hop = model::Hopping::new(30, 10).unwrap();
        let mut s = Panes::new(hop, testing::sequence_program());
        for (ts, t) in [(25, 2.0), (5, 1.0), (35, 3.0)] {
            s.add(event("a", ts, hop, t));
        }
        let mut finals = Vec::new();
        s.finish(None, &mut finals);
        let seqs: Vec<(u64, String)> = finals.iter().map(|w| (w.start, sequence(w))).collect();
        assert_eq!(seqs[0], (0, "1,2".to_string()));
        assert_eq!(seqs[2], (20, "2,3".to_string()));
    }
}
