//! Window kinds and their assignment rules, apart from any engine (`../shared/DESIGN.md`, "Window kinds"):
//! tumbling, hopping (sliding) and session windows, as the job's window operator follows them.
//!
//! - **Tumbling** `size`: windows `[k·size, (k+1)·size)`; an event is in exactly one.
//! - **Hopping** `size`/`slide` (`0 < slide ≤ size`; the slide need not divide the size): window starts are the
//!   multiples of `slide` since the epoch, and an event is in every window `[start, start + size)` that holds its
//!   `ts`. The earliest-ending of them decides lateness. Every window is a whole number of *panes* of
//!   `gcd(size, slide)`, so an engine can aggregate each event once, into its pane, and combine panes when a
//!   window closes.
//! - **Session** `gap`: per device, an event joins a session when its `ts` is less than `gap` after the session's
//!   last event (and less than `gap` before its first); a session is `[first ts, last ts + gap)`; an event that
//!   bridges two sessions merges them, as Spark's `session_window` does.
//!
//! Lateness, for every kind, is one comparison: an event is on time while the watermark of its partition is at
//! most [`WindowKind::on_time_until`] of its `ts` (so no window it belongs to can already be final).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::window::Window;

/// Why window sizes are refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KindError {
    /// A zero size, slide or gap.
    #[error("{0} must be a positive duration")]
    Zero(&'static str),
    /// A slide longer than the window.
    #[error("--slide ({slide_ms} ms) must not be longer than --window ({size_ms} ms)")]
    SlideTooLong {
        /// Window size, ms.
        size_ms: u64,
        /// Slide, ms.
        slide_ms: u64,
    },
}

/// The job's window kind and its sizes, as written into `latest.json` and compared on restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WindowKind {
    /// `--window SIZE`.
    Tumbling {
        /// Window size, ms.
        size_ms: u64,
    },
    /// `--window SIZE --slide SLIDE`.
    Hopping(Hopping),
    /// `--session-gap GAP`.
    Session {
        /// Gap that ends a session, ms.
        gap_ms: u64,
    },
}

impl WindowKind {
    /// Tumbling windows of `size_ms` (positive).
    pub fn tumbling(size_ms: u64) -> Result<WindowKind, KindError> {
        if size_ms == 0 {
            return Err(KindError::Zero("--window"));
        }
        Ok(WindowKind::Tumbling { size_ms })
    }

    /// Sessions ending after `gap_ms` (positive) without an event.
    pub fn session(gap_ms: u64) -> Result<WindowKind, KindError> {
        if gap_ms == 0 {
            return Err(KindError::Zero("--session-gap"));
        }
        Ok(WindowKind::Session { gap_ms })
    }

    /// The highest partition watermark at which an event at `ts` is still on time: the end of its earliest
    /// window − 1 (tumbling, hopping) or `ts` itself (session: a session ends at least `gap` after its last
    /// event, so an event at or above the watermark can only meet sessions that are still open). The job also
    /// uses it as the event's time in the dataflow.
    #[inline]
    pub fn on_time_until(&self, ts: u64) -> u64 {
        match self {
            WindowKind::Tumbling { size_ms } => Window::of(ts, *size_ms).end - 1,
            WindowKind::Hopping(h) => h.earliest(ts).end - 1,
            WindowKind::Session { .. } => ts,
        }
    }

    /// The end of the earliest window an event at `ts` belongs to (for a session: of the one it would open).
    pub fn earliest_end(&self, ts: u64) -> u64 {
        match self {
            WindowKind::Tumbling { size_ms } => Window::of(ts, *size_ms).end,
            WindowKind::Hopping(h) => h.earliest(ts).end,
            WindowKind::Session { gap_ms } => ts.saturating_add(*gap_ms),
        }
    }

    /// Whether an event at `ts` is late against its partition's `watermark`.
    #[inline]
    pub fn is_late(&self, ts: u64, watermark: u64) -> bool {
        self.on_time_until(ts) < watermark
    }
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |ms: u64| crate::time::duration_text(ms);
        match self {
            WindowKind::Tumbling { size_ms } => write!(f, "tumbling windows of {}", d(*size_ms)),
            WindowKind::Hopping(h) => write!(f, "hopping windows of {} every {}", d(h.size_ms()), d(h.slide_ms())),
            WindowKind::Session { gap_ms } => write!(f, "session windows with a gap of {}", d(*gap_ms)),
        }
    }
}

/// Hopping windows of `size_ms` starting every `slide_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hopping {
    size_ms: u64,
    slide_ms: u64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Hopping {
    /// Checked sizes: both positive, the slide no longer than the window.
    pub fn new(size_ms: u64, slide_ms: u64) -> Result<Hopping, KindError> {
        if size_ms == 0 {
            return Err(KindError::Zero("--window"));
        }
        if slide_ms == 0 {
            return Err(KindError::Zero("--slide"));
        }
        if slide_ms > size_ms {
            return Err(KindError::SlideTooLong { size_ms, slide_ms });
        }
        Ok(Hopping { size_ms, slide_ms })
    }

    /// Window size, ms.
    pub fn size_ms(&self) -> u64 {
        self.size_ms
    }

    /// Slide, ms.
    pub fn slide_ms(&self) -> u64 {
        self.slide_ms
    }

    /// The earliest-ending window that holds `ts`: its start is the smallest multiple of the slide above
    /// `ts - size`.
    #[inline]
    pub fn earliest(&self, ts: u64) -> Window {
        let k = (ts + 1).saturating_sub(self.size_ms).div_ceil(self.slide_ms);
        let start = k * self.slide_ms;
        Window {
            start,
            end: start.saturating_add(self.size_ms),
        }
    }

    /// The latest-ending window that holds `ts`: it starts at the multiple of the slide at or below `ts`.
    #[inline]
    pub fn latest(&self, ts: u64) -> Window {
        let start = ts - ts % self.slide_ms;
        Window {
            start,
            end: start.saturating_add(self.size_ms),
        }
    }

    /// Every window that holds `ts`, earliest-ending first (`ceil(size / slide)` of them, or one fewer).
    pub fn windows_of(&self, ts: u64) -> impl Iterator<Item = Window> + use<> {
        let first = self.earliest(ts).start;
        let (size, slide) = (self.size_ms, self.slide_ms);
        (0..)
            .map(move |i| first + i * slide)
            .take_while(move |&start| start <= ts)
            .map(move |start| Window {
                start,
                end: start.saturating_add(size),
            })
    }

    /// The pane length: the greatest common divisor of size and slide.
    pub fn pane_ms(&self) -> u64 {
        gcd(self.size_ms, self.slide_ms)
    }

    /// The pane that holds `ts`.
    pub fn pane_of(&self, ts: u64) -> Window {
        Window::of(ts, self.pane_ms())
    }

    /// The starts of the panes that make up `window`, in order.
    pub fn panes_of(&self, window: Window) -> impl Iterator<Item = u64> + use<> {
        let pane = self.pane_ms();
        (window.start..window.end).step_by(pane as usize)
    }
}

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

    #[test]
    fn a_hop_assigns_every_window_that_holds_the_event() {
        let h = Hopping::new(30, 10).unwrap();
        assert_eq!(h.windows_of(25).collect::<Vec<_>>(), [w(0, 30), w(10, 40), w(20, 50)]);
        assert_eq!(h.earliest(25), w(0, 30));
    }

    #[test]
    fn an_event_exactly_on_a_boundary_starts_its_window_and_leaves_the_one_ending_there() {
        let h = Hopping::new(30, 10).unwrap();
        assert_eq!(h.windows_of(30).collect::<Vec<_>>(), [w(10, 40), w(20, 50), w(30, 60)]);
        assert_eq!(h.windows_of(29).next(), Some(w(0, 30)));
        assert_eq!(
            h.windows_of(0).collect::<Vec<_>>(),
            [w(0, 30)],
            "no window before the epoch"
        );
    }

    #[test]
    fn a_slide_that_does_not_divide_the_size_still_covers_every_window() {
        let h = Hopping::new(25, 10).unwrap();
        assert_eq!(h.windows_of(27).collect::<Vec<_>>(), [w(10, 35), w(20, 45)]);
        assert_eq!(h.windows_of(24).collect::<Vec<_>>(), [w(0, 25), w(10, 35), w(20, 45)]);
        assert_eq!(h.pane_ms(), 5);
        assert_eq!(h.panes_of(w(10, 35)).collect::<Vec<_>>(), [10, 15, 20, 25, 30]);
        assert_eq!(h.pane_of(27), w(25, 30));
        // Brute force: every window start that is a multiple of the slide and holds the event.
        for ts in 0..200 {
            let brute: Vec<Window> = (0..=ts)
                .filter(|s| s % 10 == 0 && ts < s + 25)
                .map(|s| w(s, s + 25))
                .collect();
            assert_eq!(h.windows_of(ts).collect::<Vec<_>>(), brute, "ts {ts}");
        }
    }

    #[test]
    fn a_slide_equal_to_the_size_is_a_tumbling_window() {
        let h = Hopping::new(10, 10).unwrap();
        for ts in [0, 9, 10, 12_345] {
            assert_eq!(h.windows_of(ts).collect::<Vec<_>>(), [Window::of(ts, 10)]);
        }
    }

    #[test]
    fn bad_hopping_sizes_name_the_flag() {
        assert_eq!(Hopping::new(10, 0), Err(KindError::Zero("--slide")));
        assert_eq!(Hopping::new(0, 0), Err(KindError::Zero("--window")));
        let e = Hopping::new(10, 20).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--slide (20 ms) must not be longer than --window (10 ms)"
        );
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

    #[test]
    fn lateness_per_kind_is_one_comparison_with_the_partition_watermark() {
        let tumbling = WindowKind::tumbling(10).unwrap();
        assert!(!tumbling.is_late(25, 29), "its window [20, 30) is not final at 29");
        assert!(tumbling.is_late(25, 30));
        let hopping = WindowKind::Hopping(Hopping::new(30, 10).unwrap());
        // ts 25 is in [0, 30), [10, 40), [20, 50): late once [0, 30) may be final.
        assert!(!hopping.is_late(25, 29));
        assert!(hopping.is_late(25, 30), "then it is in none of them");
        let session = WindowKind::session(5).unwrap();
        assert!(!session.is_late(25, 25));
        assert!(session.is_late(25, 26));
        assert_eq!(session.earliest_end(25), 30);
    }

    #[test]
    fn kinds_say_their_flags_and_sizes() {
        assert_eq!(WindowKind::session(0), Err(KindError::Zero("--session-gap")));
        assert_eq!(WindowKind::tumbling(0), Err(KindError::Zero("--window")));
        let hopping = WindowKind::Hopping(Hopping::new(60_000, 1_000).unwrap());
        assert_eq!(hopping.to_string(), "hopping windows of 1m every 1s");
        let json = serde_json::to_value(hopping).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "hopping", "size_ms": 60000, "slide_ms": 1000})
        );
        assert_eq!(serde_json::from_value::<WindowKind>(json).unwrap(), hopping);
        let session = serde_json::to_value(WindowKind::session(5_000).unwrap()).unwrap();
        assert_eq!(session, serde_json::json!({"kind": "session", "gap_ms": 5000}));
    }

    #[test]
    fn the_latest_window_of_an_event_starts_at_its_slide() {
        let h = Hopping::new(25, 10).unwrap();
        for ts in 0..200 {
            assert_eq!(Some(h.latest(ts)), h.windows_of(ts).last(), "ts {ts}");
        }
    }
}
