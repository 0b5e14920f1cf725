//! What the window kinds share: the map of devices each kind keeps its state in ([`Devices`]), a device's
//! accumulator in one window, pane or session (the running aggregate, its latest location and, with aggregate
//! UDFs, their inputs), the interface every kind's open state offers the operator ([`OpenState`]), and the step
//! that turns an accumulator into an emitted aggregate.

use std::collections::HashMap;

use compact_str::CompactString;
use model::{Aggregate, UdfValues, Window, WindowAgg};

use crate::messages::{EventRec, InputFields, OpenWindow, UdafInputs, WindowOut};

/// Per-device state keyed by device id with a fast hasher (foldhash: the ids come from the input, so the
/// per-process random seed matters; SipHash cost twice as much per event).
pub type Devices<T> = HashMap<CompactString, T, foldhash::fast::RandomState>;

/// The open windows of one worker, of one kind: what the window operator asks of them.
pub trait OpenState {
    /// Folds an on-time event in.
    fn add(&mut self, e: EventRec);
    /// Brings back an open window, pane or session from a checkpoint, merged with what events built first.
    fn restore(&mut self, w: OpenWindow);
    /// Appends to `out` the final aggregates of every window that ends at or below `frontier` (`None`: the
    /// input has ended, every window), oldest window first and each window's devices in id order.
    fn finish(&mut self, frontier: Option<u64>, out: &mut Vec<WindowOut>);
    /// Appends to `out` the live aggregate of the newest open window of every device that changed since the
    /// last call.
    fn live(&mut self, out: &mut Vec<WindowOut>);
    /// Hands everything open to `each`, one window (pane, session) at a time, for a checkpoint; stops at the
    /// first error `each` returns.
    fn each_open(&self, each: &mut dyn FnMut(OpenWindow) -> std::io::Result<()>) -> std::io::Result<()>;
    /// Everything open, collected.
    #[cfg(test)]
    fn open_windows(&self) -> Vec<OpenWindow> {
        let mut open = Vec::new();
        let _ = self.each_open(&mut |w| {
            open.push(w);
            Ok(())
        });
        open
    }
    /// Nothing is open.
    fn is_empty(&self) -> bool;
}

/// Evaluates the aggregate UDFs over one window's inputs.
pub type UdafEval = Box<dyn FnMut(&mut UdafInputs) -> UdfValues>;

/// The job's aggregate UDFs: the event fields they take and their evaluation.
pub struct Udafs {
    /// Fields kept per event.
    pub keep: InputFields,
    /// Evaluation over a window's inputs.
    pub eval: UdafEval,
}

/// One device's accumulator in one window, pane or session.
#[derive(Clone, Debug, Default)]
pub struct DeviceAcc {
    /// Running aggregate.
    pub agg: WindowAgg,
    /// The device's latest location (see each kind for which event is "latest").
    pub location: CompactString,
    /// The aggregate UDFs' inputs (only with aggregate UDFs).
    pub inputs: Option<Box<UdafInputs>>,
}

impl DeviceAcc {
    /// Folds an event in; its location is taken when `take_location`.
    #[inline]
    pub fn add(&mut self, e: &EventRec, udafs: Option<&Udafs>, take_location: bool) {
        self.agg.add(e.temperature, e.humidity, e.battery, e.status);
        if let Some(u) = udafs {
            self.inputs.get_or_insert_default().push(e, u.keep);
        }
        if take_location && self.location != e.location {
            self.location = e.location.clone();
        }
    }

    /// Folds in another part of the same window, pane or session (its location only when this one has none).
    pub fn absorb(&mut self, other: DeviceAcc) {
        self.agg.merge(&other.agg);
        if self.location.is_empty() {
            self.location = other.location;
        }
        if let Some(inputs) = other.inputs {
            self.inputs.get_or_insert_default().append(*inputs);
        }
    }

    /// The accumulator a checkpoint carried.
    pub fn of_open(w: OpenWindow) -> DeviceAcc {
        DeviceAcc {
            agg: w.agg,
            location: w.location,
            inputs: w.inputs,
        }
    }

    /// This accumulator as a checkpoint carries it.
    pub fn to_open(&self, device: &CompactString, start: u64, end: u64) -> OpenWindow {
        OpenWindow {
            start,
            end,
            device: device.clone(),
            location: self.location.clone(),
            agg: self.agg,
            inputs: self.inputs.clone(),
        }
    }

    /// The aggregate `device` emits for `window`, with the aggregate UDFs' values when the job has any.
    pub fn emit(&mut self, udafs: Option<&mut Udafs>, device: &str, window: Window, is_final: bool) -> WindowOut {
        let mut agg: Aggregate = self.agg.finish(device, window);
        if let (Some(u), Some(inputs)) = (udafs, self.inputs.as_mut()) {
            agg.udf = (u.eval)(inputs);
        }
        WindowOut {
            agg,
            location: self.location.to_string(),
            is_final,
        }
    }
}

impl model::sessions::SessionAcc for DeviceAcc {
    fn absorb_earlier(&mut self, earlier: Self) {
        self.absorb(earlier);
    }
}

/// A stand-in for an aggregate UDF in tests: the temperatures in the order the UDF sees them.
#[cfg(test)]
pub fn sequence_udaf() -> Udafs {
    Udafs {
        keep: InputFields {
            temperature: true,
            ..InputFields::default()
        },
        eval: Box::new(|inputs: &mut UdafInputs| {
            inputs.sort();
            let seq: Vec<String> = inputs.temperature.iter().map(|t| t.to_string()).collect();
            [("seq".to_string(), model::UdfValue::Text(seq.join(",")))].into()
        }),
    }
}

/// An on-time event of `device` at `ts` travelling at `at`, in tests (location `lab`, fixed readings but
/// the temperature).
#[cfg(test)]
pub fn test_event(device: &str, ts: u64, at: u64, temperature: f64) -> EventRec {
    EventRec {
        device_id: device.into(),
        location: "lab".into(),
        at,
        ts,
        temperature,
        humidity: 50.0,
        battery: 80.0,
        status: model::Status::Ok,
        source: 0,
    }
}
