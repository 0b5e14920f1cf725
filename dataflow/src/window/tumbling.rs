//! The open tumbling windows of one worker: per window end, the running accumulator of every device seen in
//! it. Windows are opened by events or restored from a checkpoint (merged with events that arrived first),
//! finished when the watermark reaches their end (every device once, sorted by id), and published live for the
//! devices that changed since the last publication. A device's location is that of its last event to arrive.
//! State is bounded by open windows × devices, never by events, except for the inputs kept for aggregate UDFs
//! (their events' fields), which grow with the events of open windows and leave with them.

use std::collections::{BTreeMap, HashMap};

use compact_str::CompactString;
use model::Window;

use crate::messages::{EventRec, OpenWindow, WindowOut};
use crate::window::acc::{DeviceAcc, OpenState, Udafs};

/// A device's accumulator in a window, and whether it changed since the last live publication.
#[derive(Default)]
pub struct Slot {
    /// The accumulator.
    pub acc: DeviceAcc,
    /// Changed since the last live publication.
    pub changed: bool,
}

/// Per-device state keyed by device id with a fast hasher (foldhash: the ids come from the input, so the
/// per-process random seed matters; SipHash cost twice as much per event).
pub type Devices<T> = HashMap<CompactString, T, foldhash::fast::RandomState>;

/// The open tumbling windows of one worker.
pub struct Tumbling {
    open: BTreeMap<u64, Devices<Slot>>,
    window_ms: u64,
    udafs: Option<Udafs>,
}

impl Tumbling {
    /// No open window; windows are `window_ms` long; `udafs` are the job's aggregate UDFs, if any.
    pub fn new(window_ms: u64, udafs: Option<Udafs>) -> Tumbling {
        Tumbling {
            open: BTreeMap::new(),
            window_ms,
            udafs,
        }
    }

    fn window(&self, end: u64) -> Window {
        Window {
            start: end.saturating_sub(self.window_ms),
            end,
        }
    }

    /// Removes the window ending at `end` and appends its final aggregates, sorted by device.
    fn finish_window(&mut self, end: u64, out: &mut Vec<WindowOut>) {
        let window = self.window(end);
        let mut devices: Vec<_> = self.open.remove(&end).unwrap_or_default().into_iter().collect();
        devices.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let udafs = &mut self.udafs;
        out.extend(
            devices
                .into_iter()
                .map(|(device, mut d)| d.acc.emit(udafs.as_mut(), &device, window, true)),
        );
    }
}

impl OpenState for Tumbling {
    fn add(&mut self, e: EventRec) {
        // For tumbling windows an event's time in the dataflow is its window's end − 1.
        let devices = self.open.entry(e.at + 1).or_default();
        let d = match devices.get_mut(&e.device_id) {
            Some(d) => d,
            None => devices.entry(e.device_id.clone()).or_default(),
        };
        d.acc.add(&e, self.udafs.as_ref(), true);
        d.changed = true;
    }

    fn restore(&mut self, w: OpenWindow) {
        let devices = self.open.entry(w.end).or_default();
        match devices.get_mut(&w.device) {
            Some(d) => {
                d.acc.absorb(DeviceAcc::of_open(w));
                d.changed = true;
            }
            None => {
                let device = w.device.clone();
                devices.insert(
                    device,
                    Slot {
                        acc: DeviceAcc::of_open(w),
                        changed: true,
                    },
                );
            }
        }
    }

    fn finish(&mut self, frontier: Option<u64>, out: &mut Vec<WindowOut>) {
        while let Some((&end, _)) = self.open.first_key_value() {
            if frontier.is_some_and(|f| end > f) {
                break;
            }
            self.finish_window(end, out);
        }
    }

    fn live(&mut self, out: &mut Vec<WindowOut>) {
        let window_ms = self.window_ms;
        let udafs = &mut self.udafs;
        for (&end, devices) in self.open.iter_mut() {
            let window = Window {
                start: end.saturating_sub(window_ms),
                end,
            };
            for (device, d) in devices.iter_mut().filter(|(_, d)| d.changed) {
                d.changed = false;
                out.push(d.acc.emit(udafs.as_mut(), device, window, false));
            }
        }
    }

    fn each_open(&self, each: &mut dyn FnMut(OpenWindow) -> std::io::Result<()>) -> std::io::Result<()> {
        for (&end, devices) in &self.open {
            let start = self.window(end).start;
            for (device, d) in devices {
                each(d.acc.to_open(device, start, end))?;
            }
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.open.is_empty()
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
