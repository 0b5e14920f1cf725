//! Window kinds and their assignment rules, apart from any engine (`../shared/DESIGN.md`, "Window kinds"):
//! tumbling, hopping (sliding) and session windows. Not yet used by the job, which has tumbling windows only;
//! these are the pure rules its window operator is to follow for the other kinds.
//!
//! - **Hopping** `size`/`slide` (`0 < slide ≤ size`; the slide need not divide the size): window starts are the
//!   multiples of `slide` since the epoch, and an event is in every window `[start, start + size)` that holds its
//!   `ts`. The earliest-ending of them decides lateness. Every window is a whole number of *panes* of
//!   `gcd(size, slide)`, so an engine can aggregate each event once, into its pane, and combine panes when a
//!   window closes.
//! - **Session** `gap`: per device, an event joins a session when its `ts` is less than `gap` after the session's
//!   last event (and less than `gap` before its first); a session is `[first ts, last ts + gap)`; an event that
//!   bridges two sessions merges them, as Spark's `session_window` does.

use std::collections::BTreeMap;

use crate::window::{Window, WindowAgg};

/// Why a hopping window's sizes are refused.
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

/// Hopping windows of `size_ms` starting every `slide_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    pub fn earliest(&self, ts: u64) -> Window {
        let k = (ts + 1).saturating_sub(self.size_ms).div_ceil(self.slide_ms);
        let start = k * self.slide_ms;
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

/// One session of one device.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// Event time of its first event, ms.
    pub first: u64,
    /// Event time of its last event, ms.
    pub last: u64,
    /// Its aggregate.
    pub agg: WindowAgg,
}

impl Session {
    /// The session's bounds, `[first, last + gap)`.
    pub fn window(&self, gap_ms: u64) -> Window {
        Window {
            start: self.first,
            end: self.last.saturating_add(gap_ms),
        }
    }
}

/// The open sessions of one device, keyed by their first event time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sessions {
    open: BTreeMap<u64, Session>,
}

impl Sessions {
    /// Folds an event at `ts` into the session it belongs to, merging every session it bridges, or opens a new
    /// one; `fold` adds the event to the session's aggregate. Returns the bounds of the resulting session.
    pub fn add(&mut self, ts: u64, gap_ms: u64, fold: impl FnOnce(&mut WindowAgg)) -> Window {
        // Sessions are disjoint intervals ordered by start: the ones the event's own `[ts, ts + gap)` overlaps
        // start before `ts + gap` and are the latest of those whose end is above `ts`.
        let touching: Vec<u64> = self
            .open
            .range(..ts.saturating_add(gap_ms))
            .rev()
            .take_while(|(_, s)| s.last.saturating_add(gap_ms) > ts)
            .map(|(&first, _)| first)
            .collect();
        let mut merged = Session {
            first: ts,
            last: ts,
            agg: WindowAgg::default(),
        };
        for first in touching {
            let s = self.open.remove(&first).expect("listed above");
            merged.first = merged.first.min(s.first);
            merged.last = merged.last.max(s.last);
            merged.agg.merge(&s.agg);
        }
        fold(&mut merged.agg);
        let bounds = merged.window(gap_ms);
        self.open.insert(merged.first, merged);
        bounds
    }

    /// Removes and returns, oldest first, every session whose end (`last + gap`) is at or below `watermark`:
    /// no on-time event can reach them any more.
    pub fn finish_up_to(&mut self, watermark: u64, gap_ms: u64) -> Vec<Session> {
        let done: Vec<u64> = self
            .open
            .values()
            .filter(|s| s.last.saturating_add(gap_ms) <= watermark)
            .map(|s| s.first)
            .collect();
        done.into_iter().filter_map(|first| self.open.remove(&first)).collect()
    }

    /// The open sessions, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.open.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Status;

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

    fn add(s: &mut Sessions, ts: u64) -> Window {
        s.add(ts, 5, |a| a.add(20.0, 50.0, 80.0, Status::Ok))
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
        let counts: Vec<u64> = s.iter().map(|x| x.agg.count).collect();
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
        assert_eq!(s.iter().next().unwrap().agg.count, 3);
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
        assert_eq!(s.iter().map(|x| x.agg.count).sum::<u64>(), 7);
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
            let mut s = Sessions::default();
            for &ts in &events {
                s.add(ts, gap, |a| a.add(ts as f64, 0.0, 0.0, Status::Ok));
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
            let got: Vec<(u64, u64, u64)> = s.iter().map(|x| (x.first, x.last, x.agg.count)).collect();
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
}
