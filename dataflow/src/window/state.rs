//! The open tumbling windows of one worker, apart from timely: per window end, the running aggregate and latest
//! location of every device seen in it. Windows are opened by events or restored from a checkpoint (merged with
//! events that arrived first), finished when the watermark passes their end (every device once, sorted by id),
//! and published live for the devices that changed since the last publication. State is bounded by open
//! windows × devices, never by events, except for the inputs kept for aggregate UDFs (their events' fields),
//! which grow with the events of open windows and leave with them.

use std::collections::{BTreeMap, HashMap};

use compact_str::CompactString;
use model::{Aggregate, UdfValues, Window, WindowAgg};

use crate::messages::{EventRec, InputFields, OpenWindow, UdafInputs, WindowOut};

struct DeviceWindow {
    agg: WindowAgg,
    location: CompactString,
    /// Changed since the last live publication.
    changed: bool,
    /// The aggregate UDFs' inputs (only with aggregate UDFs).
    inputs: Option<Box<UdafInputs>>,
}

/// Evaluates the aggregate UDFs over one window's inputs.
pub type UdafEval = Box<dyn FnMut(&mut UdafInputs) -> UdfValues>;

/// Per-device state of a window, keyed by device id with a fast hasher (foldhash: the ids come from the
/// input, so the per-process random seed matters; SipHash cost twice as much per event).
type Devices = HashMap<CompactString, DeviceWindow, foldhash::fast::RandomState>;

/// A device's aggregate of `window`, with the aggregate UDFs' values when the job has any.
fn aggregate(
    udafs: &mut Option<(InputFields, UdafEval)>,
    device: &str,
    d: &mut DeviceWindow,
    window: Window,
) -> Aggregate {
    let mut agg = d.agg.finish(device, window);
    if let (Some((_, eval)), Some(inputs)) = (udafs.as_mut(), d.inputs.as_mut()) {
        agg.udf = eval(inputs);
    }
    agg
}

/// The open windows of one worker.
pub struct WindowState {
    open: BTreeMap<u64, Devices>,
    window_ms: u64,
    /// The fields aggregate UDFs take and their evaluation, when the job has any.
    udafs: Option<(InputFields, UdafEval)>,
}

impl WindowState {
    /// No open window; windows are `window_ms` long.
    pub fn new(window_ms: u64) -> WindowState {
        WindowState {
            open: BTreeMap::new(),
            window_ms,
            udafs: None,
        }
    }

    /// Also keeps the `keep` fields of every on-time event and evaluates `eval` on them whenever a window is
    /// emitted (live or final).
    pub fn with_udafs(mut self, keep: InputFields, eval: UdafEval) -> WindowState {
        self.udafs = Some((keep, eval));
        self
    }

    /// The window ending at `end`.
    pub fn window(&self, end: u64) -> Window {
        Window {
            start: end.saturating_sub(self.window_ms),
            end,
        }
    }

    /// Folds an on-time event into its window, opening it if needed.
    pub fn add(&mut self, e: EventRec) {
        let devices = self.open.entry(e.window_end).or_default();
        let d = match devices.get_mut(&e.device_id) {
            Some(d) => d,
            None => devices.entry(e.device_id.clone()).or_insert_with(|| DeviceWindow {
                agg: WindowAgg::default(),
                location: CompactString::default(),
                changed: true,
                inputs: None,
            }),
        };
        d.agg.add(e.temperature, e.humidity, e.battery, e.status);
        if let Some((keep, _)) = &self.udafs {
            d.inputs.get_or_insert_default().push(&e, *keep);
        }
        if d.location != e.location {
            d.location = e.location;
        }
        d.changed = true;
    }

    /// Brings back a window from a checkpoint. Events from other sources may have reached it before its
    /// restored state did: the two are merged.
    pub fn restore(&mut self, w: OpenWindow) {
        let devices = self.open.entry(w.end).or_default();
        match devices.get_mut(&w.device) {
            Some(d) => {
                d.agg.merge(&w.agg);
                d.changed = true;
                if let Some(inputs) = w.inputs {
                    d.inputs.get_or_insert_default().append(*inputs);
                }
            }
            None => {
                devices.insert(
                    w.device,
                    DeviceWindow {
                        agg: w.agg,
                        location: w.location,
                        changed: true,
                        inputs: w.inputs,
                    },
                );
            }
        }
    }

    /// Removes the window ending at `end` and returns its final aggregates, sorted by device.
    pub fn finish(&mut self, end: u64) -> Vec<WindowOut> {
        let window = self.window(end);
        let mut devices: Vec<_> = self.open.remove(&end).unwrap_or_default().into_iter().collect();
        devices.sort_by(|a, b| a.0.cmp(&b.0));
        let udafs = &mut self.udafs;
        devices
            .into_iter()
            .map(|(device, mut d)| WindowOut {
                agg: aggregate(udafs, &device, &mut d, window),
                location: d.location.into_string(),
                is_final: true,
            })
            .collect()
    }

    /// The live aggregates of the devices that changed since the last call, per window end.
    pub fn live(&mut self) -> Vec<(u64, Vec<WindowOut>)> {
        let window_ms = self.window_ms;
        let udafs = &mut self.udafs;
        let mut out = Vec::new();
        for (&end, devices) in self.open.iter_mut() {
            let window = Window {
                start: end.saturating_sub(window_ms),
                end,
            };
            let changed: Vec<WindowOut> = devices
                .iter_mut()
                .filter(|(_, d)| d.changed)
                .map(|(device, d)| {
                    d.changed = false;
                    WindowOut {
                        agg: aggregate(udafs, device, d, window),
                        location: d.location.to_string(),
                        is_final: false,
                    }
                })
                .collect();
            if !changed.is_empty() {
                out.push((end, changed));
            }
        }
        out
    }

    /// Every device's open window, for a checkpoint.
    pub fn open_windows(&self) -> Vec<OpenWindow> {
        let mut windows = Vec::new();
        for (&end, devices) in &self.open {
            for (device, d) in devices {
                windows.push(OpenWindow {
                    end,
                    device: device.clone(),
                    location: d.location.clone(),
                    agg: d.agg,
                    inputs: d.inputs.clone(),
                });
            }
        }
        windows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(device: &str, end: u64, temperature: f64) -> EventRec {
        EventRec {
            device_id: device.into(),
            location: "lab".into(),
            window_end: end,
            ts: end - 1,
            temperature,
            humidity: 50.0,
            battery: 80.0,
            status: model::Status::Ok,
            source: 0,
        }
    }

    #[test]
    fn events_fold_into_their_device_and_window() {
        let mut s = WindowState::new(10_000);
        s.add(event("a", 10_000, 20.0));
        s.add(event("a", 10_000, 22.0));
        s.add(event("b", 10_000, 30.0));
        s.add(event("a", 20_000, 25.0));
        let first = s.finish(10_000);
        assert_eq!(first.len(), 2);
        assert_eq!((first[0].agg.device_id.as_str(), first[0].agg.count), ("a", 2));
        assert_eq!(first[0].agg.avg_temperature, 21.0);
        assert_eq!((first[0].agg.window_start, first[0].agg.window_end), (0, 10_000));
        assert!(first.iter().all(|w| w.is_final));
        assert_eq!(s.open_windows().len(), 1, "the later window stays open");
    }

    #[test]
    fn finished_window_lists_devices_in_id_order() {
        let mut s = WindowState::new(10_000);
        for d in ["m", "b", "z", "a"] {
            s.add(event(d, 10_000, 1.0));
        }
        let ids: Vec<String> = s.finish(10_000).into_iter().map(|w| w.agg.device_id).collect();
        assert_eq!(ids, ["a", "b", "m", "z"]);
    }

    #[test]
    fn finishing_a_window_that_is_not_open_yields_nothing() {
        assert!(WindowState::new(10_000).finish(10_000).is_empty());
    }

    #[test]
    fn live_publication_sends_only_what_changed() {
        let mut s = WindowState::new(10_000);
        s.add(event("a", 10_000, 20.0));
        s.add(event("b", 10_000, 20.0));
        let live = s.live();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].1.len(), 2);
        assert!(live[0].1.iter().all(|w| !w.is_final));
        assert!(s.live().is_empty(), "nothing changed since");
        s.add(event("b", 10_000, 21.0));
        let live = s.live();
        assert_eq!(live[0].1.len(), 1);
        assert_eq!(live[0].1[0].agg.device_id, "b");
    }

    #[test]
    fn restored_window_merges_with_events_that_came_first() {
        let mut whole = WindowState::new(10_000);
        for t in [20.0, 21.0, 22.0] {
            whole.add(event("a", 10_000, t));
        }
        // The first two events were checkpointed; the third reached the new worker before the restored state.
        let mut before = WindowState::new(10_000);
        before.add(event("a", 10_000, 20.0));
        before.add(event("a", 10_000, 21.0));
        let saved = before.open_windows();
        let mut after = WindowState::new(10_000);
        after.add(event("a", 10_000, 22.0));
        for w in saved {
            after.restore(w);
        }
        assert_eq!(after.finish(10_000), whole.finish(10_000));
    }

    #[test]
    fn checkpointed_windows_restore_to_the_same_results() {
        let mut a = WindowState::new(10_000);
        a.add(event("a", 10_000, 20.0));
        a.add(event("b", 20_000, 30.0));
        let mut b = WindowState::new(10_000);
        for w in a.open_windows() {
            b.restore(w);
        }
        assert_eq!(b.finish(10_000), a.finish(10_000));
        assert_eq!(b.finish(20_000), a.finish(20_000));
    }

    /// A stand-in for an aggregate UDF: the temperatures in the order the UDF would see them.
    fn sequence_udaf() -> WindowState {
        let keep = InputFields {
            temperature: true,
            ..InputFields::default()
        };
        WindowState::new(10_000).with_udafs(
            keep,
            Box::new(|inputs: &mut UdafInputs| {
                inputs.sort();
                let seq: Vec<String> = inputs.temperature.iter().map(|t| t.to_string()).collect();
                [("seq".to_string(), model::UdfValue::Text(seq.join(",")))].into()
            }),
        )
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
        let live = s.live();
        assert_eq!(
            live[0].1[0].agg.udf["seq"],
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
        let finals = after.finish(10_000);
        assert_eq!(finals[0].agg.udf["seq"], model::UdfValue::Text("21,19,20".into()));
        assert_eq!(finals[0].agg.count, 3);
    }

    #[test]
    fn without_aggregate_udfs_no_inputs_are_kept() {
        let mut s = WindowState::new(10_000);
        s.add(event("a", 10_000, 20.0));
        assert!(s.open_windows()[0].inputs.is_none());
        assert!(s.finish(10_000)[0].agg.udf.is_empty());
    }

    #[test]
    fn the_latest_location_of_a_device_wins() {
        let mut s = WindowState::new(10_000);
        s.add(event("a", 10_000, 20.0));
        let mut moved = event("a", 10_000, 20.0);
        moved.location = "office".into();
        s.add(moved);
        assert_eq!(s.finish(10_000)[0].location, "office");
    }
}
