//! The open tumbling windows of one worker: per device, the running accumulator of each of its open windows, in
//! window order. Windows are opened by events or restored from a checkpoint (merged with events that arrived
//! first), finished when the watermark reaches their end (every device once, sorted by id), and published live
//! for the devices that changed since the last publication. A device's location is that of its last event to
//! arrive. State is bounded by open windows × devices, never by events, except for the inputs kept for
//! aggregate UDFs (their events' fields), which grow with the events of open windows and leave with them.
//!
//! Kept by device rather than by window: one hash entry per device and a short vector of its windows (a
//! device has a few open windows, `lateness / size + 1`), where a map per window repeated every device's id and
//! the map's slack in each window (at 10,000 devices, 70,000 windows: 15 MB against 8).

use std::collections::BTreeSet;

use compact_str::CompactString;
use model::Window;

use crate::messages::{EventRec, OpenWindow, WindowOut};
use crate::window::acc::{DeviceAcc, Devices, OpenState, Udafs};

/// A device's accumulator in a window, and whether it changed since the last live publication.
#[derive(Default)]
pub struct Slot {
    /// The accumulator.
    pub acc: DeviceAcc,
    /// Changed since the last live publication.
    pub changed: bool,
}

/// One device's open windows, by end, oldest first.
type DeviceWindows = Vec<(u64, Slot)>;

/// The open tumbling windows of one worker.
pub struct Tumbling {
    devices: Devices<DeviceWindows>,
    /// The ends of the open windows: which windows the frontier closes.
    ends: BTreeSet<u64>,
    window_ms: u64,
    udafs: Option<Udafs>,
}

impl Tumbling {
    /// No open window; windows are `window_ms` long; `udafs` are the job's aggregate UDFs, if any.
    pub fn new(window_ms: u64, udafs: Option<Udafs>) -> Tumbling {
        Tumbling {
            devices: Devices::default(),
            ends: BTreeSet::new(),
            window_ms,
            udafs,
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
fn slot_in<'w>(windows: &'w mut DeviceWindows, ends: &mut BTreeSet<u64>, end: u64) -> &'w mut Slot {
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
        let windows = match self.devices.get_mut(&e.device_id) {
            Some(w) => w,
            None => self.devices.entry(e.device_id.clone()).or_default(),
        };
        // For tumbling windows an event's time in the dataflow is its window's end − 1.
        let d = slot_in(windows, &mut self.ends, e.at + 1);
        d.acc.add(&e, self.udafs.as_ref(), true);
        d.changed = true;
    }

    fn restore(&mut self, w: OpenWindow) {
        let windows = self.devices.entry(w.device.clone()).or_default();
        let d = slot_in(windows, &mut self.ends, w.end);
        d.acc.absorb(DeviceAcc::of_open(w));
        d.changed = true;
    }

    fn finish(&mut self, frontier: Option<u64>, out: &mut Vec<WindowOut>) {
        let Some(&first) = self.ends.first() else { return };
        if frontier.is_some_and(|f| first > f) {
            return;
        }
        let closes = |end: u64| frontier.is_none_or(|f| end <= f);
        let mut closed: Vec<(u64, CompactString, DeviceAcc)> = Vec::new();
        self.devices.retain(|device, windows| {
            let n = windows.iter().take_while(|(end, _)| closes(*end)).count();
            closed.extend(windows.drain(..n).map(|(end, slot)| (end, device.clone(), slot.acc)));
            !windows.is_empty()
        });
        self.ends.retain(|&end| !closes(end));
        closed.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let window_ms = self.window_ms;
        let udafs = &mut self.udafs;
        out.extend(
            closed
                .into_iter()
                .map(|(end, device, mut acc)| acc.emit(udafs.as_mut(), &device, window_ending(end, window_ms), true)),
        );
    }

    fn live(&mut self, out: &mut Vec<WindowOut>) {
        let window_ms = self.window_ms;
        let udafs = &mut self.udafs;
        for (device, windows) in self.devices.iter_mut() {
            for (end, d) in windows.iter_mut().filter(|(_, d)| d.changed) {
                d.changed = false;
                out.push(
                    d.acc
                        .emit(udafs.as_mut(), device, window_ending(*end, window_ms), false),
                );
            }
        }
    }

    fn each_open(&self, each: &mut dyn FnMut(OpenWindow) -> std::io::Result<()>) -> std::io::Result<()> {
        for (device, windows) in &self.devices {
            for (end, d) in windows {
                each(d.acc.to_open(device, window_ending(*end, self.window_ms).start, *end))?;
            }
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        crate::window::acc::test_event(device, end - 1, end - 1, temperature)
    }

    #[test]
    fn events_fold_into_their_device_and_window() {
        let mut s = Tumbling::new(10_000, None);
        s.add(event("a", 10_000, 20.0));
        s.add(event("a", 10_000, 22.0));
        s.add(event("b", 10_000, 30.0));
        s.add(event("a", 20_000, 25.0));
        let first = finish_at(&mut s, 10_000);
        assert_eq!(first.len(), 2);
        assert_eq!((first[0].agg.device_id.as_str(), first[0].agg.count), ("a", 2));
        assert_eq!(first[0].agg.avg_temperature, 21.0);
        assert_eq!((first[0].agg.window_start, first[0].agg.window_end), (0, 10_000));
        assert!(first.iter().all(|w| w.is_final));
        assert_eq!(s.open_windows().len(), 1, "the later window stays open");
    }

    #[test]
    fn finished_window_lists_devices_in_id_order() {
        let mut s = Tumbling::new(10_000, None);
        for d in ["m", "b", "z", "a"] {
            s.add(event(d, 10_000, 1.0));
        }
        let ids: Vec<String> = finish_at(&mut s, 10_000).into_iter().map(|w| w.agg.device_id).collect();
        assert_eq!(ids, ["a", "b", "m", "z"]);
    }

    #[test]
    fn windows_closing_together_leave_oldest_first_each_in_device_order_and_empty_devices_are_forgotten() {
        let mut s = Tumbling::new(10_000, None);
        for end in [30_000, 10_000, 20_000] {
            for d in ["b", "a"] {
                s.add(event(d, end, 1.0));
            }
        }
        s.add(event("c", 30_000, 1.0));
        let closed: Vec<(u64, String)> = finish_at(&mut s, 20_000)
            .into_iter()
            .map(|w| (w.agg.window_end, w.agg.device_id))
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
        assert!(finish_at(&mut Tumbling::new(10_000, None), 10_000).is_empty());
    }

    #[test]
    fn live_publication_sends_only_what_changed() {
        let mut s = Tumbling::new(10_000, None);
        s.add(event("a", 10_000, 20.0));
        s.add(event("b", 10_000, 20.0));
        let first = live(&mut s);
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|w| !w.is_final));
        assert!(live(&mut s).is_empty(), "nothing changed since");
        s.add(event("b", 10_000, 21.0));
        let next = live(&mut s);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].agg.device_id, "b");
    }

    #[test]
    fn restored_window_merges_with_events_that_came_first() {
        let mut whole = Tumbling::new(10_000, None);
        for t in [20.0, 21.0, 22.0] {
            whole.add(event("a", 10_000, t));
        }
        // The first two events were checkpointed; the third reached the new worker before the restored state.
        let mut before = Tumbling::new(10_000, None);
        before.add(event("a", 10_000, 20.0));
        before.add(event("a", 10_000, 21.0));
        let saved = before.open_windows();
        let mut after = Tumbling::new(10_000, None);
        after.add(event("a", 10_000, 22.0));
        for w in saved {
            after.restore(w);
        }
        assert_eq!(finish_at(&mut after, 10_000), finish_at(&mut whole, 10_000));
    }

    #[test]
    fn checkpointed_windows_restore_to_the_same_results() {
        let mut a = Tumbling::new(10_000, None);
        a.add(event("a", 10_000, 20.0));
        a.add(event("b", 20_000, 30.0));
        let mut b = Tumbling::new(10_000, None);
        for w in a.open_windows() {
            b.restore(w);
        }
        assert_eq!(finish_at(&mut b, 10_000), finish_at(&mut a, 10_000));
        assert_eq!(finish_at(&mut b, 20_000), finish_at(&mut a, 20_000));
    }

    fn sequence_udaf() -> Tumbling {
        Tumbling::new(10_000, Some(crate::window::acc::sequence_udaf()))
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
        assert_eq!(
            live[0].agg.udf["seq"],
            model::UdfValue::Text("21,20".into()),
            "in event-time order"
        );
        let saved = s.open_windows();
        assert_eq!(saved[0].inputs.as_ref().unwrap().len(), 2);
        let mut after = sequence_udaf();
        let mut e = event("a", 10_000, 19.0);
        e.ts = 3;
        after.add(e);
        for w in saved {
            after.restore(w);
        }
        let finals = finish_at(&mut after, 10_000);
        assert_eq!(finals[0].agg.udf["seq"], model::UdfValue::Text("21,19,20".into()));
        assert_eq!(finals[0].agg.count, 3);
    }

    #[test]
    fn without_aggregate_udfs_no_inputs_are_kept() {
        let mut s = Tumbling::new(10_000, None);
        s.add(event("a", 10_000, 20.0));
        assert!(s.open_windows()[0].inputs.is_none());
        assert!(finish_at(&mut s, 10_000)[0].agg.udf.is_empty());
    }

    #[test]
    fn the_latest_location_of_a_device_wins() {
        let mut s = Tumbling::new(10_000, None);
        s.add(event("a", 10_000, 20.0));
        let mut moved = event("a", 10_000, 20.0);
        moved.location = "office".into();
        s.add(moved);
        assert_eq!(finish_at(&mut s, 10_000)[0].location, "office");
    }
}
