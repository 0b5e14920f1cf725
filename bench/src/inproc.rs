//! The single-core ceiling of the core path, measured in process with no dataflow at all: payloads held in
//! memory, `model::parse_event` + window assignment + `WindowAgg::add` into a map keyed by (window, device).
//! Two variants: `borrowed` (the device id stays borrowed from the payload; a key is allocated only for a new
//! device-window) and `owned` (each event first copied into an owned record with two `String`s and batched,
//! as the dataflow's `EventRec` did before it held them inline), so their difference is the price of two
//! allocations per event.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use model::{Status, Validation, Window, WindowAgg, parse_event};

use crate::input::InputSpec;

/// Window size of the in-process loop (the job's default).
const WINDOW_MS: u64 = 10_000;
/// Records per batch in the `owned` variant (the dataflow source's batch).
const BATCH: usize = 8192;

/// Payloads laid end to end in one buffer.
pub struct Payloads {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Payloads {
    /// Generates `spec`'s payloads in memory.
    pub fn generate(spec: &InputSpec) -> Result<Payloads> {
        let mut buf = Vec::with_capacity(spec.events as usize * 140);
        let mut ends = Vec::with_capacity(spec.events as usize);
        spec.generate(|p| {
            buf.extend_from_slice(p);
            ends.push(buf.len());
            Ok(())
        })?;
        Ok(Payloads { buf, ends })
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Record `i`.
    pub fn record(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }

    fn slice(&self, from: usize, to: usize) -> impl Iterator<Item = &[u8]> {
        (from..to).map(move |i| self.record(i))
    }
}

/// Which variant of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Borrow from the payload; allocate a key only for a new (window, device).
    Borrowed,
    /// Copy each event into an owned record (two `String`s), batch, then fold.
    Owned,
}

impl Variant {
    /// Its name in result lines.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Borrowed => "borrowed",
            Variant::Owned => "owned",
        }
    }
}

/// What one run did.
pub struct LoopRun {
    /// Time of the timed part (all threads).
    pub elapsed: Duration,
    /// Valid events folded in.
    pub valid: u64,
    /// Bad records seen.
    pub bad: u64,
    /// (window, device) aggregates at the end.
    pub aggregates: usize,
}

type Aggs = HashMap<u64, HashMap<String, WindowAgg>>;

struct OwnedRec {
    device_id: String,
    location: String,
    window_end: u64,
    temperature: f64,
    humidity: f64,
    battery: f64,
    status: Status,
}

/// Runs the loop over every payload on `threads` threads (contiguous shares, one map each).
pub fn run(payloads: &Payloads, threads: usize, variant: Variant) -> Result<LoopRun> {
    let rules = Validation {
        now_ms: model::time::now_ms(),
        max_future_ms: model::event::DEFAULT_MAX_FUTURE_MS,
    };
    let n = payloads.len();
    let started = Instant::now();
    let results: Vec<(u64, u64, Aggs)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (from, to) = (n * t / threads, n * (t + 1) / threads);
                s.spawn(move || match variant {
                    Variant::Borrowed => borrowed(payloads.slice(from, to), rules),
                    Variant::Owned => owned(payloads.slice(from, to), rules),
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("loop thread panicked"))
            .collect()
    });
    let elapsed = started.elapsed();
    let valid: u64 = results.iter().map(|r| r.0).sum();
    let bad: u64 = results.iter().map(|r| r.1).sum();
    let folded: u64 = results
        .iter()
        .flat_map(|r| r.2.values())
        .flat_map(HashMap::values)
        .map(|a| a.count)
        .sum();
    ensure!(
        folded == valid,
        "in-process loop lost events: {folded} folded of {valid}"
    );
    let mut keys = std::collections::HashSet::new();
    for (_, _, aggs) in &results {
        for (end, devices) in aggs {
            keys.extend(devices.keys().map(|d| (*end, d.as_str())));
        }
    }
    Ok(LoopRun {
        elapsed,
        valid,
        bad,
        aggregates: keys.len(),
    })
}

fn borrowed<'a>(payloads: impl Iterator<Item = &'a [u8]>, rules: Validation) -> (u64, u64, Aggs) {
    let mut aggs: Aggs = HashMap::new();
    let (mut valid, mut bad) = (0, 0);
    for p in payloads {
        match parse_event(Some(p), rules) {
            Ok(e) => {
                valid += 1;
                let end = Window::of(e.ts, WINDOW_MS).end;
                let devices = aggs.entry(end).or_default();
                let agg = match devices.get_mut(&*e.device_id) {
                    Some(agg) => agg,
                    None => devices.entry(e.device_id.into_owned()).or_default(),
                };
                agg.add(e.temperature, e.humidity, e.battery, e.status);
            }
            Err(_) => bad += 1,
        }
    }
    (valid, bad, aggs)
}

fn owned<'a>(payloads: impl Iterator<Item = &'a [u8]>, rules: Validation) -> (u64, u64, Aggs) {
    // Like the dataflow's window state: the aggregate and the device's latest location per (window, device).
    let mut state: HashMap<u64, HashMap<String, (WindowAgg, String)>> = HashMap::new();
    let (mut valid, mut bad) = (0, 0);
    let mut batch: Vec<OwnedRec> = Vec::with_capacity(BATCH);
    let mut fold = |batch: &mut Vec<OwnedRec>| {
        for e in batch.drain(..) {
            let devices = state.entry(e.window_end).or_default();
            let slot = match devices.get_mut(&e.device_id) {
                Some(slot) => slot,
                None => devices.entry(e.device_id.clone()).or_default(),
            };
            slot.0.add(e.temperature, e.humidity, e.battery, e.status);
            if slot.1 != e.location {
                slot.1 = e.location;
            }
        }
    };
    for p in payloads {
        match parse_event(Some(p), rules) {
            Ok(e) => {
                valid += 1;
                batch.push(OwnedRec {
                    window_end: Window::of(e.ts, WINDOW_MS).end,
                    device_id: e.device_id.into_owned(),
                    location: e.location.into_owned(),
                    temperature: e.temperature,
                    humidity: e.humidity,
                    battery: e.battery,
                    status: e.status,
                });
                if batch.len() == BATCH {
                    fold(&mut batch);
                }
            }
            Err(_) => bad += 1,
        }
    }
    fold(&mut batch);
    let aggs = state
        .into_iter()
        .map(|(end, devices)| (end, devices.into_iter().map(|(d, (a, _))| (d, a)).collect()))
        .collect();
    (valid, bad, aggs)
}
