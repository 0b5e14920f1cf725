//! The window stage: event-time tumbling windows per device on the frontier. Contract of [`windows`]:
//! - input is exchanged by device (markers by target worker), so each device's windows live on one worker;
//! - a capability is held per open window (at its end − 1, taken when its first item arrives) and a window is
//!   emitted final exactly once, when the input frontier (the job's watermark) passes its end;
//! - every trigger the changed aggregates of open windows are emitted live, just before the snapshot tick
//!   (see `trigger`);
//! - checkpoint markers are aligned (`checkpoint::align`) and each completed round is emitted as a
//!   [`Barrier`] carrying the open windows; no window turns final while a round is being aligned;
//! - when the input ends, every window is final and a last `Final` barrier closes the output;
//! - with UDFs, every emitted batch of windows (live or final) carries its UDF columns (`crate::udf::eval`), and
//!   the worker's UDF failure counts follow whenever they change.
//!
//! The per-window state itself is [`state::WindowState`].

pub mod state;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::checkpoint::align::{Aligned, Alignment};
use crate::errors::ErrorLog;
use crate::messages::{Barrier, BarrierKind, PartitionState, WindowIn, WindowMsg, WindowOut, WorkerStats};
use crate::udf::Udfs;
use crate::udf::eval::Evaluator;
use state::WindowState;

/// The window operator's settings.
pub struct WindowSetup {
    /// Window size, ms.
    pub window_ms: u64,
    /// Live publication interval.
    pub trigger: Duration,
    /// The checkpoint the job resumed from (0: none).
    pub restored: u64,
    /// Global worker index.
    pub worker: usize,
    /// Workers in all processes.
    pub peers: usize,
    /// Receives the operator's input frontier, which is the job's watermark.
    pub watermark: Rc<Cell<Option<u64>>>,
    /// The job's UDFs (possibly none).
    pub udfs: Arc<Udfs>,
    /// This worker's error counters (UDF failures are counted there too).
    pub errors: Rc<ErrorLog>,
}

/// The aligned side of the operator: window state plus what is to be emitted.
struct Collect {
    state: WindowState,
    barriers: Vec<Barrier>,
    stats: Vec<WorkerStats>,
    worker: usize,
}

impl Aligned for Collect {
    fn apply(&mut self, item: WindowIn) {
        match item {
            WindowIn::Event(e) => self.state.add(e),
            WindowIn::Restored(w) => self.state.restore(*w),
            WindowIn::Stats(s) => self.stats.push(*s),
            WindowIn::Marker(_) | WindowIn::Retire(_) => {
                unreachable!("the alignment keeps markers")
            }
        }
    }

    fn barrier(&mut self, id: u64, kind: BarrierKind, partitions: Vec<PartitionState>) {
        // Worker 0 hears every source, so its barrier carries the partitions for the manifest.
        let partitions = if self.worker == 0 { partitions } else { Vec::new() };
        self.barriers.push(Barrier {
            id,
            kind,
            windows: self.state.open_windows(),
            partitions,
        });
    }
}

/// Builds the window operator over the sources' output.
pub fn windows<'s>(input: StreamVec<'s, u64, WindowIn>, setup: WindowSetup) -> StreamVec<'s, u64, WindowMsg> {
    let scope = input.scope();
    let WindowSetup {
        window_ms,
        trigger,
        restored,
        worker,
        peers,
        watermark,
        udfs,
        errors,
    } = setup;
    let evaluator = (!udfs.is_empty()).then(|| Rc::new(RefCell::new(Evaluator::new(Arc::clone(&udfs), errors))));
    let mut state = WindowState::new(window_ms);
    if let (Some(ev), Some(keep)) = (&evaluator, udfs.input_fields()) {
        let ev = Rc::clone(ev);
        state = state.with_udafs(keep, Box::new(move |inputs| ev.borrow_mut().aggregate(inputs)));
    }
    let mut state = Some(state);
    // Scalar UDF columns of one emitted batch.
    let derive = {
        let evaluator = evaluator.clone();
        move |batch: &mut Vec<WindowOut>| {
            if let Some(ev) = &evaluator {
                ev.borrow_mut().derive(batch);
            }
        }
    };
    input.unary_frontier(
        Exchange::new(|m: &WindowIn| m.route()),
        "TumblingWindow",
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            // Held at the input frontier, for barriers; released when the input ends.
            let mut held = Some(cap);
            let mut caps: BTreeMap<u64, Capability<u64>> = BTreeMap::new();
            let mut align = Alignment::new(peers, restored);
            let mut out = Collect {
                state: state.take().expect("the operator is built once"),
                barriers: Vec::new(),
                stats: Vec::new(),
                worker,
            };
            // Live aggregates go out on the shared grid, just before each snapshot tick (see `trigger`).
            let lead = crate::trigger::lead(trigger);
            let mut next_live = crate::trigger::next_after(model::time::now_ms(), trigger, lead);
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    // A batch carries one time, so its events mostly share one window: look it up once.
                    let mut held_for = None;
                    for item in data.drain(..) {
                        // The window's capability is taken from the batch that first brings it, before the
                        // alignment may hold the item back (a later batch may be at a later time).
                        if let Some(end) = item.window_end()
                            && held_for != Some(end)
                        {
                            caps.entry(end).or_insert_with(|| cap.delayed(&(end - 1), 0));
                            held_for = Some(end);
                        }
                        align.admit(item, &mut out);
                    }
                });
                let Some(hold) = held.as_mut() else { return };
                for barrier in out.barriers.drain(..) {
                    output.session(&*hold).give(WindowMsg::Barrier(barrier));
                }
                if !out.stats.is_empty() {
                    output
                        .session(&*hold)
                        .give_iterator(out.stats.drain(..).map(WindowMsg::Stats));
                }
                watermark.set(frontier.frontier().first().copied());
                // Final: every window whose end the frontier has reached, unless a checkpoint is being aligned.
                if !align.is_holding() {
                    while let Some((&end, _)) = caps.first_key_value() {
                        if frontier.less_equal(&(end - 1)) {
                            break;
                        }
                        let (_, cap) = caps.pop_first().expect("non-empty");
                        let mut finals = out.state.finish(end);
                        derive(&mut finals);
                        output
                            .session(&cap)
                            .give_iterator(finals.into_iter().map(WindowMsg::Agg));
                    }
                }
                if let Some(counts) = evaluator.as_ref().and_then(|ev| ev.borrow_mut().take_changed_errors()) {
                    output.session(&*hold).give(WindowMsg::UdfErrors(worker, counts));
                }
                if frontier.is_empty() {
                    // The input has ended: every window is final; close with a last barrier.
                    let (id, partitions) = align.final_cut();
                    out.barrier(id, BarrierKind::Final, partitions);
                    for barrier in out.barriers.drain(..) {
                        output.session(&*hold).give(WindowMsg::Barrier(barrier));
                    }
                    held = None;
                    return;
                }
                if let Some(&t) = frontier.frontier().first()
                    && t > *hold.time()
                {
                    hold.downgrade(&t);
                }
                // Live: the changed aggregates of open windows, once per trigger.
                if !caps.is_empty() {
                    let now = model::time::now_ms();
                    if crate::trigger::due(now, &mut next_live, trigger, lead) {
                        for (end, mut live) in out.state.live() {
                            derive(&mut live);
                            output
                                .session(&caps[&end])
                                .give_iterator(live.into_iter().map(WindowMsg::Agg));
                        }
                    }
                    activator.activate_after(Duration::from_millis(next_live.saturating_sub(now)));
                }
            }
        },
    )
}
