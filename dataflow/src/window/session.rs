//! The open session windows of one worker (`model::sessions`): per group its open sessions, merged as events
//! bridge them and restored sessions meet new events. A session is final once the watermark reaches its end
//! (last event + gap). Finding those does not cost a scan per event: the operator scans the groups only when the
//! watermark reaches `next_due`, a lower bound of every open session's end. Live, each changed group publishes
//! its newest session. A session's location is that of its latest event (by event time; ties go to the later
//! arrival). State is bounded by open sessions, not by events (aggregate UDF rows aside).

use model::Window;
use model::sessions::{Session, Sessions};

use crate::messages::{EventRec, GroupKey, OpenWindow, WindowOut};
use crate::query::Program;
use crate::window::acc::{GroupAcc, Groups, OpenState};

/// One group's open sessions.
#[derive(Default)]
struct GroupSessions {
    sessions: Sessions<GroupAcc>,
    /// Changed since the last live publication.
    changed: bool,
}

/// The open sessions of one worker.
pub struct SessionWindows {
    gap_ms: u64,
    groups: Groups<GroupSessions>,
    /// At or below the end of every open session (`None`: none open).
    next_due: Option<u64>,
    program: Program,
}

impl SessionWindows {
    /// No open session; sessions end `gap_ms` after their last event; `program` folds and emits them.
    pub fn new(gap_ms: u64, program: Program) -> SessionWindows {
        SessionWindows {
            gap_ms,
            groups: Groups::default(),
            next_due: None,
            program,
        }
    }

    fn due(&mut self, end: u64) {
        if self.next_due.is_none_or(|n| end < n) {
            self.next_due = Some(end);
        }
    }
}

impl OpenState for SessionWindows {
    fn add(&mut self, e: EventRec) {
        let d = match self.groups.get_mut(&e.key) {
            Some(d) => d,
            None => self.groups.entry(e.key.clone()).or_default(),
        };
        let p = &self.program;
        let bounds = d.sessions.add(e.ts, self.gap_ms, |acc, latest| acc.add(&e, p, latest));
        d.changed = true;
        self.due(bounds.end);
    }

    fn restore(&mut self, w: OpenWindow) {
        let (first, last) = (w.start, w.end.saturating_sub(self.gap_ms));
        let d = self.groups.entry(w.key.clone()).or_default();
        let session = Session {
            first,
            last,
            acc: GroupAcc::of_open(w),
        };
        let bounds = d.sessions.insert(session, self.gap_ms);
        d.changed = true;
        self.due(bounds.end);
    }

    fn finish(&mut self, frontier: Option<u64>, out: &mut Vec<WindowOut>) {
        let Some(due) = self.next_due else { return };
        if frontier.is_some_and(|f| due > f) {
            return;
        }
        let gap = self.gap_ms;
        let mut done: Vec<(u64, GroupKey, Session<GroupAcc>)> = Vec::new();
        let mut next_due: Option<u64> = None;
        self.groups.retain(|key, d| {
            let finished = match frontier {
                Some(f) => d.sessions.finish_up_to(f, gap),
                None => d.sessions.finish_all(),
            };
            done.extend(finished.into_iter().map(|s| (s.last + gap, key.clone(), s)));
            if let Some(end) = d.sessions.first_end(gap) {
                next_due = Some(next_due.map_or(end, |n| n.min(end)));
            }
            !d.sessions.is_empty()
        });
        self.next_due = next_due;
        done.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let p = &self.program;
        out.extend(
            done.into_iter()
                .filter_map(|(_, key, s)| s.acc.emit(p, &key, s.window(gap), true)),
        );
    }

    fn live(&mut self, out: &mut Vec<WindowOut>) {
        let (gap, p) = (self.gap_ms, &self.program);
        for (key, d) in self.groups.iter_mut().filter(|(_, d)| d.changed) {
            d.changed = false;
            if let Some(s) = d.sessions.newest() {
                let window: Window = s.window(gap);
                out.extend(s.acc.emit(p, key, window, false));
            }
        }
    }

    fn each_open(&self, each: &mut dyn FnMut(OpenWindow) -> std::io::Result<()>) -> std::io::Result<()> {
        for (key, d) in &self.groups {
            for s in d.sessions.iter() {
                let w = s.window(self.gap_ms);
                each(s.acc.to_open(key, w.start, w.end))?;
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
    use crate::query::testing::{self, count, device, program, sequence};
    use std::collections::BTreeMap;

    const GAP: u64 = 5;

    fn event(device: &str, ts: u64, temperature: f64) -> EventRec {
        testing::located(device, ts, ts, temperature, &format!("at-{ts}"))
    }

    fn all(s: &mut SessionWindows) -> Vec<WindowOut> {
        let mut out = Vec::new();
        s.finish(None, &mut out);
        out
    }

    #[test]
    fn a_device_silent_for_the_gap_gets_a_new_session_and_each_is_final_at_its_end() {
        let mut s = SessionWindows::new(GAP, program());
        for ts in [100, 103, 107, 112] {
            s.add(event("a", ts, 1.0));
        }
        s.add(event("b", 101, 1.0));
        let mut out = Vec::new();
        s.finish(Some(105), &mut out);
        assert!(out.is_empty(), "b's session ends at 106");
        s.finish(Some(112), &mut out);
        let got: Vec<(String, u64, u64, u64)> = out.iter().map(|w| (device(w), w.start, w.end, count(w))).collect();
        assert_eq!(
            got,
            [("b".into(), 101, 106, 1), ("a".into(), 100, 112, 3)],
            "112 is exactly the gap after 107"
        );
        assert!(out.iter().all(|w| w.is_final));
        assert_eq!(out[1].side, "at-107", "the location of the session's latest event");
        let rest = all(&mut s);
        assert_eq!((rest[0].start, rest[0].end), (112, 117));
        assert!(s.is_empty());
    }

    #[test]
    fn live_publishes_the_newest_session_of_each_changed_device() {
        let mut s = SessionWindows::new(GAP, program());
        s.add(event("a", 100, 1.0));
        s.add(event("a", 200, 1.0));
        let mut live = Vec::new();
        s.live(&mut live);
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].start, live[0].end), (200, 205));
        live.clear();
        s.live(&mut live);
        assert!(live.is_empty());
    }

    #[test]
    fn restored_sessions_merge_with_new_events_to_the_same_results() {
        let events: Vec<(u64, f64)> = vec![(10, 1.0), (12, 2.0), (30, 3.0), (14, 4.0), (33, 5.0), (18, 6.0)];
        let mut whole = SessionWindows::new(GAP, testing::sequence_program());
        let mut before = SessionWindows::new(GAP, testing::sequence_program());
        let mut after = SessionWindows::new(GAP, testing::sequence_program());
        for (i, &(ts, t)) in events.iter().enumerate() {
            whole.add(event("a", ts, t));
            if i < 3 {
                before.add(event("a", ts, t));
            } else {
                after.add(event("a", ts, t));
            }
        }
        for w in before.open_windows() {
            after.restore(w);
        }
        let (a, b) = (all(&mut whole), all(&mut after));
        let bounds = |v: &[WindowOut]| {
            v.iter()
                .map(|w| (w.start, w.end, count(w), sequence(w)))
                .collect::<Vec<_>>()
        };
        assert_eq!(bounds(&a), bounds(&b));
        assert_eq!(
            bounds(&a)[0].0..bounds(&a)[0].1,
            10..23,
            "14 and 18 extend the first session"
        );
        assert_eq!(a[0].side, b[0].side);
    }

    #[test]
    fn sessions_match_the_split_of_the_sorted_events_whatever_the_arrival_order_and_finishing() {
        let mut seed = 11u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..50 {
            let mut s = SessionWindows::new(GAP, program());
            let mut accepted: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            let mut out = Vec::new();
            let mut watermark = 0;
            for i in 0..200u64 {
                let ts = (i + next(20)).saturating_sub(10) * (1 + next(2));
                if ts < watermark {
                    continue; // late, as the source would judge it
                }
                let device = format!("d{}", next(3));
                s.add(event(&device, ts, 1.0));
                accepted.entry(device).or_default().push(ts);
                if next(8) == 0 {
                    watermark = watermark.max(ts.saturating_sub(12));
                    s.finish(Some(watermark), &mut out);
                }
            }
            s.finish(None, &mut out);
            let mut want = Vec::new();
            for (device, mut ts) in accepted {
                ts.sort_unstable();
                let mut sessions: Vec<(u64, u64, u64)> = Vec::new();
                for t in ts {
                    match sessions.last_mut() {
                        Some((_, last, n)) if t < *last + GAP => {
                            *last = t;
                            *n += 1;
                        }
                        _ => sessions.push((t, t, 1)),
                    }
                }
                want.extend(sessions.into_iter().map(|(f, l, n)| (device.clone(), f, l + GAP, n)));
            }
            let mut got: Vec<(String, u64, u64, u64)> =
                out.iter().map(|w| (device(w), w.start, w.end, count(w))).collect();
            got.sort();
            assert_eq!(got, want);
        }
    }
}
