//! One device's open session windows (`docs/semantics.md`, "Window kinds"; the rule is in `window_kind`):
//! disjoint sessions keyed by their first event time, merged when an event (or a restored session) bridges two,
//! split where the next event comes a gap or more after the last, and finished once the watermark reaches their
//! end. Generic over what a session accumulates, so the job's per-device state and the tests share the rules.

use std::collections::BTreeMap;

use crate::window::Window;

/// What a session accumulates: folded per event by the caller, and combined when sessions merge.
pub trait SessionAcc: Default {
    /// Folds in the accumulator of an *earlier* part of the same session (one whose last event is not after
    /// this one's), as when an event bridges two sessions or a restored session meets new events.
    fn absorb_earlier(&mut self, earlier: Self);
}

impl SessionAcc for crate::window::WindowAgg {
    fn absorb_earlier(&mut self, earlier: Self) {
        self.merge(&earlier);
    }
}

/// One session of one device.
#[derive(Clone, Debug, PartialEq)]
pub struct Session<A> {
    /// Event time of its first event, ms.
    pub first: u64,
    /// Event time of its last event, ms.
    pub last: u64,
    /// What it accumulated.
    pub acc: A,
}

impl<A> Session<A> {
    /// The session's bounds, `[first, last + gap)`.
    pub fn window(&self, gap_ms: u64) -> Window {
        Window {
            start: self.first,
            end: self.last.saturating_add(gap_ms),
        }
    }
}

/// The open sessions of one device, keyed by their first event time. They are disjoint and each ends at least
/// a gap before the next begins, so their ends are in the same order as their starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Sessions<A> {
    open: BTreeMap<u64, Session<A>>,
}

impl<A> Default for Sessions<A> {
    fn default() -> Self {
        Sessions { open: BTreeMap::new() }
    }
}

impl<A: SessionAcc> Sessions<A> {
    /// Folds an event at `ts` into the session it belongs to, merging every session it bridges, or opens a new
    /// one. `fold` adds the event to the session's accumulator; its flag says whether the event is the session's
    /// latest (no event of the session after it). Returns the bounds of the resulting session.
    pub fn add(&mut self, ts: u64, gap_ms: u64, fold: impl FnOnce(&mut A, bool)) -> Window {
        let touching: [Option<u64>; 2] = {
            let mut it = self.touching(ts, ts, gap_ms);
            [it.next(), it.next()]
        };
        // The common case: an event inside (or just after) one session that starts at or before it.
        if let [Some(first), None] = touching
            && first <= ts
        {
            let s = self.open.get_mut(&first).expect("found above");
            let latest = ts >= s.last;
            s.last = s.last.max(ts);
            fold(&mut s.acc, latest);
            return s.window(gap_ms);
        }
        let mut acc = A::default();
        let latest = touching.iter().flatten().all(|f| self.open[f].last <= ts);
        fold(&mut acc, latest);
        self.merge_into(
            Session {
                first: ts,
                last: ts,
                acc,
            },
            touching.into_iter().flatten(),
            gap_ms,
        )
    }

    /// Brings in a whole session (one restored from a checkpoint), merging it with every open session it
    /// touches. Returns its resulting bounds.
    pub fn insert(&mut self, session: Session<A>, gap_ms: u64) -> Window {
        let touching: Vec<u64> = self.touching(session.first, session.last, gap_ms).collect();
        self.merge_into(session, touching, gap_ms)
    }

    /// The open sessions within a gap of `[first, last]`, latest first: the ones that start before `last + gap`
    /// and end after `first` (ends are ordered as starts, so the scan stops at the first that does not). A single
    /// event touches at most two.
    fn touching(&self, first: u64, last: u64, gap_ms: u64) -> impl Iterator<Item = u64> + '_ {
        self.open
            .range(..last.saturating_add(gap_ms))
            .rev()
            .take_while(move |(_, s)| s.last.saturating_add(gap_ms) > first)
            .map(|(&start, _)| start)
    }

    fn merge_into(&mut self, mut merged: Session<A>, touching: impl IntoIterator<Item = u64>, gap_ms: u64) -> Window {
        // Parts are absorbed into the one whose last event is latest, so that it keeps its latest-event state.
        // Open sessions are a gap or more apart, so the union touches nothing that the parts did not.
        for first in touching {
            let s = self.open.remove(&first).expect("listed above");
            merged.first = merged.first.min(s.first);
            if s.last > merged.last {
                merged.last = s.last;
                let mut acc = s.acc;
                acc.absorb_earlier(std::mem::take(&mut merged.acc));
                merged.acc = acc;
            } else {
                merged.acc.absorb_earlier(s.acc);
            }
        }
        let bounds = merged.window(gap_ms);
        self.open.insert(merged.first, merged);
        bounds
    }

    /// Removes and returns, oldest first, every session whose end (`last + gap`) is at or below `watermark`:
    /// no on-time event can reach them any more.
    pub fn finish_up_to(&mut self, watermark: u64, gap_ms: u64) -> Vec<Session<A>> {
        let mut done = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if entry.get().last.saturating_add(gap_ms) > watermark {
                break;
            }
            done.push(entry.remove());
        }
        done
    }

    /// Removes and returns every session, oldest first.
    pub fn finish_all(&mut self) -> Vec<Session<A>> {
        std::mem::take(&mut self.open).into_values().collect()
    }

    /// The end of the oldest open session (the first to become final).
    pub fn first_end(&self, gap_ms: u64) -> Option<u64> {
        self.open.values().next().map(|s| s.last.saturating_add(gap_ms))
    }

    /// The newest open session.
    pub fn newest(&mut self) -> Option<&mut Session<A>> {
        self.open.values_mut().next_back()
    }

    /// No open session.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// The open sessions, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Session<A>> {
        self.open.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Status;
    use crate::window::WindowAgg;

    fn w(start: u64, end: u64) -> Window {
        Window { start, end }
    }

    fn add(s: &mut Sessions<WindowAgg>, ts: u64) -> Window {
        s.add(ts, 5, |a, _| a.add(20.0, 50.0, 80.0, Status::Ok))
    }

    #[test]
    fn events_closer_than_the_gap_share_a_session_and_one_exactly_a_gap_later_starts_a_new_one() {
        let mut s = Sessions::default();
        assert_eq!(add(&mut s, 100), w(100, 105));
        assert_eq!(add(&mut s, 104), w(100, 109));
        assert_eq!(
            add(&mut s, 109),
            w(109, 114),
            "exactly the gap after the last event: a new session"
        );
        let counts: Vec<u64> = s.iter().map(|x| x.acc.count).collect();
        assert_eq!(counts, [2, 1]);
    }

    #[test]
    fn an_event_that_bridges_two_sessions_merges_them_and_an_earlier_one_extends_the_start() {
        let mut s = Sessions::default();
        add(&mut s, 100);
        add(&mut s, 108);
        assert_eq!(s.iter().count(), 2);
        assert_eq!(add(&mut s, 104), w(100, 113), "104 is within the gap of both");
        assert_eq!(s.iter().count(), 1);
        assert_eq!(s.iter().next().unwrap().acc.count, 3);
        assert_eq!(
            add(&mut s, 96),
            w(96, 113),
            "an out-of-order event just before the first"
        );
        assert_eq!(
            add(&mut s, 91),
            w(91, 96),
            "one exactly a gap before the first is its own session"
        );
        assert_eq!(
            add(&mut s, 115),
            w(115, 120),
            "the gap after the last event (108 + 5 = 113) has passed"
        );
        assert_eq!(
            add(&mut s, 112),
            w(96, 120),
            "an event within the gap of both merges them"
        );
        let bounds: Vec<Window> = s.iter().map(|x| x.window(5)).collect();
        assert_eq!(bounds, [w(91, 96), w(96, 120)]);
        assert_eq!(s.iter().map(|x| x.acc.count).sum::<u64>(), 7);
    }

    #[test]
    fn sessions_in_any_arrival_order_equal_the_split_of_the_sorted_events() {
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..200 {
            let gap = 1 + next(10);
            let events: Vec<u64> = (0..1 + next(30)).map(|_| next(200)).collect();
            let mut s = Sessions::<WindowAgg>::default();
            for &ts in &events {
                s.add(ts, gap, |a, _| a.add(ts as f64, 0.0, 0.0, Status::Ok));
            }
            // Brute force: sort, then a new session wherever the next event is a gap or more after the last.
            let mut sorted = events.clone();
            sorted.sort_unstable();
            let mut want: Vec<(u64, u64, u64)> = Vec::new();
            for ts in sorted {
                match want.last_mut() {
                    Some((_, last, n)) if ts < *last + gap => {
                        *last = ts;
                        *n += 1;
                    }
                    _ => want.push((ts, ts, 1)),
                }
            }
            let got: Vec<(u64, u64, u64)> = s.iter().map(|x| (x.first, x.last, x.acc.count)).collect();
            assert_eq!(got, want, "gap {gap}, events {events:?}");
        }
    }

    #[test]
    fn sessions_finish_once_the_watermark_reaches_their_end() {
        let mut s = Sessions::default();
        add(&mut s, 100);
        add(&mut s, 200);
        assert!(s.finish_up_to(104, 5).is_empty());
        let done = s.finish_up_to(105, 5);
        assert_eq!(done.iter().map(|x| x.window(5)).collect::<Vec<_>>(), [w(100, 105)]);
        assert_eq!(s.iter().count(), 1);
    }

    #[test]
    fn the_fold_is_told_whether_the_event_is_the_sessions_latest() {
        let mut s = Sessions::<Vec<(u64, bool)>>::default();
        for ts in [100, 103, 101, 110, 106] {
            s.add(ts, 5, |seen, latest| seen.push((ts, latest)));
        }
        let mut seen: Vec<_> = s.iter().flat_map(|x| x.acc.clone()).collect();
        seen.sort_unstable();
        // 106 bridges [100, 103] and [110]: it is not the latest of the merged session.
        assert_eq!(
            seen,
            [(100, true), (101, false), (103, true), (106, false), (110, true)]
        );
        assert_eq!(s.iter().map(|x| (x.first, x.last)).collect::<Vec<_>>(), [(100, 110)]);
    }

    impl SessionAcc for Vec<(u64, bool)> {
        fn absorb_earlier(&mut self, earlier: Self) {
            self.extend(earlier);
        }
    }

    #[test]
    fn a_restored_session_merges_with_every_session_it_touches() {
        let mut s = Sessions::<WindowAgg>::default();
        for ts in [60, 80, 130] {
            add(&mut s, ts);
        }
        let mut restored = WindowAgg::default();
        restored.add(1.0, 1.0, 1.0, Status::Ok);
        restored.add(2.0, 1.0, 1.0, Status::Ok);
        let bounds = s.insert(
            Session {
                first: 50,
                last: 100,
                acc: restored,
            },
            5,
        );
        assert_eq!(bounds, w(50, 105));
        let parts: Vec<(u64, u64, u64)> = s.iter().map(|x| (x.first, x.last, x.acc.count)).collect();
        assert_eq!(parts, [(50, 100, 4), (130, 130, 1)]);
    }

    #[test]
    fn finishing_takes_the_sessions_that_end_by_the_watermark_oldest_first() {
        let mut s = Sessions::<WindowAgg>::default();
        for ts in [10, 20, 30] {
            add(&mut s, ts);
        }
        assert_eq!(s.first_end(5), Some(15));
        let done: Vec<u64> = s.finish_up_to(25, 5).iter().map(|x| x.first).collect();
        assert_eq!(done, [10, 20]);
        assert_eq!(s.finish_all().len(), 1);
        assert!(s.is_empty());
    }
}
