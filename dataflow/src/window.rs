//! Tumbling-window operator. Events arrive exchanged by device, stamped with their window's end − 1; the
//! operator keeps one capability per open window and one running aggregate per (window, device). When the
//! frontier (the job's watermark) passes a window's end it emits that window's aggregates as final, exactly
//! once, and forgets them, so state holds only open windows. Every `--trigger` it also emits the live
//! aggregates of open windows that changed.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use model::{Aggregate, Window, WindowAgg};
use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::source::EventRec;

/// An aggregate leaving the window operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowOut {
    /// The aggregate.
    pub agg: Aggregate,
    /// Location of the device (as of its latest event in the window).
    pub location: String,
    /// Final (the watermark passed the window end) or live.
    pub is_final: bool,
}

/// Routes a device to a worker; stable across processes and runs.
pub fn device_route(device_id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    device_id.hash(&mut h);
    h.finish()
}

struct DeviceWindow {
    agg: WindowAgg,
    location: String,
    changed: bool,
}

struct OpenWindow {
    cap: Capability<u64>,
    devices: HashMap<String, DeviceWindow>,
}

/// Builds the window operator.
pub fn build<'s>(
    events: StreamVec<'s, u64, EventRec>,
    window_ms: u64,
    trigger: Duration,
) -> StreamVec<'s, u64, WindowOut> {
    let scope = events.scope();
    events.unary_frontier(
        Exchange::new(|e: &EventRec| device_route(&e.device_id)),
        "TumblingWindow",
        move |_cap, info| {
            let activator = scope.activator_for(info.address);
            let mut open: BTreeMap<u64, OpenWindow> = BTreeMap::new();
            // Publish the first live aggregates as soon as data arrives, then once per trigger.
            let mut last_live = Instant::now()
                .checked_sub(trigger)
                .unwrap_or_else(Instant::now);
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    for e in data.drain(..) {
                        // The source stamps an event with its window's end − 1, so that time is never below
                        // the message's stamp and a capability for it can be kept until the window is final.
                        let slot = open.entry(e.window_end).or_insert_with(|| OpenWindow {
                            cap: cap.delayed(&(e.window_end - 1), 0),
                            devices: HashMap::new(),
                        });
                        let d = match slot.devices.get_mut(&e.device_id) {
                            Some(d) => d,
                            None => slot.devices.entry(e.device_id.clone()).or_insert_with(|| {
                                DeviceWindow {
                                    agg: WindowAgg::default(),
                                    location: String::new(),
                                    changed: true,
                                }
                            }),
                        };
                        d.agg.add(e.temperature, e.humidity, e.battery, e.status);
                        if d.location != e.location {
                            d.location = e.location;
                        }
                        d.changed = true;
                    }
                });
                // Final: every window whose end the frontier has reached.
                while let Some((&end, _)) = open.first_key_value() {
                    if frontier.less_equal(&(end - 1)) {
                        break;
                    }
                    let slot = open.pop_first().expect("non-empty").1;
                    let window = Window {
                        start: end.saturating_sub(window_ms),
                        end,
                    };
                    let mut session = output.session(&slot.cap);
                    let mut devices: Vec<_> = slot.devices.into_iter().collect();
                    devices.sort_by(|a, b| a.0.cmp(&b.0));
                    for (device, d) in devices {
                        session.give(WindowOut {
                            agg: d.agg.finish(&device, window),
                            location: d.location,
                            is_final: true,
                        });
                    }
                }
                // Live: the changed aggregates of open windows, once per trigger.
                if !open.is_empty() {
                    if last_live.elapsed() >= trigger {
                        last_live = Instant::now();
                        for (&end, slot) in open.iter_mut() {
                            let window = Window {
                                start: end.saturating_sub(window_ms),
                                end,
                            };
                            let mut session = output.session(&slot.cap);
                            for (device, d) in slot.devices.iter_mut().filter(|(_, d)| d.changed) {
                                d.changed = false;
                                session.give(WindowOut {
                                    agg: d.agg.finish(device, window),
                                    location: d.location.clone(),
                                    is_final: false,
                                });
                            }
                        }
                    }
                    activator.activate_after(trigger.saturating_sub(last_live.elapsed()));
                }
            }
        },
    )
}
