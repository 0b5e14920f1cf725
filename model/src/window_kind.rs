//! Window kinds and their assignment rules, apart from any engine (`docs/semantics.md`, "Window kinds"):
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
//!   bridges two sessions merges them, as Spark's `session_window` does. One device's open sessions are
//!   [`crate::sessions::Sessions`].
//!
//! Lateness, for every kind, is one comparison: an event is on time while the watermark of its partition is at
//! most [`WindowKind::on_time_until`] of its `ts` (so no window it belongs to can already be final).

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

    /// How far an event's [`Self::on_time_until`] may lie above its time: an event still on time at watermark
    /// `w` has a time of at least `w - max_span_ms()`.
    pub fn max_span_ms(&self) -> u64 {
        match self {
            WindowKind::Tumbling { size_ms } => *size_ms,
            WindowKind::Hopping(h) => h.size_ms(),
            WindowKind::Session { .. } => 0,
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

#[cfg(test)]
mod tests {
    use super::*;

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
