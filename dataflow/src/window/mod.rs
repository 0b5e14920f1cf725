//! The window stage: event-time windows per group on the frontier, of the query's kind (tumbling, hopping or
//! session; `model::window_kind`), folded and emitted by the compiled query. Contract of [`windows`]:
//! - input is exchanged by group key (markers by target worker), so each group's windows live on one worker;
//! - a window is emitted final exactly once, when the input frontier (the job's watermark) reaches its end; the
//!   operator holds one capability, at its input frontier, and every output goes out at it;
//! - every trigger the newest open window of every changed group is emitted live, just before the snapshot
//!   tick (see `trigger`);
//! - checkpoint markers are aligned (`checkpoint::align`) and each completed round is emitted as a
//!   [`Barrier`] carrying the open windows (panes, sessions); no window turns final while a round is being
//!   aligned;
//! - when the input ends, every window is final and a last `Final` barrier closes the output;
//! - a window's row holds every output column, UDF columns included (called through the worker's
//!   `udf::host::Host`), and the worker's UDF failure counts follow whenever they change; a group whose row
//!   fails the query's `HAVING` emits nothing.
//!
//! Each kind's open state is its own unit behind [`acc::OpenState`]: [`tumbling::Tumbling`], [`hopping::Panes`],
//! [`session::SessionWindows`].

pub mod acc;
pub mod hopping;
pub mod session;
pub mod tumbling;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use model::WindowKind;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;

use crate::checkpoint::{Aligned, Alignment, StateStore};
use crate::messages::{
    Barrier, BarrierKind, PartitionState, WindowData, WindowIn, WindowMsg, WindowOut, WindowSignal, WorkerStats,
};
use crate::query::Program;
use crate::query::Query;
use crate::runtime::errors::{ErrorKind, ErrorLog};
use crate::udf::host::Host;
use acc::OpenState;

/// The window stage's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowSettings {
    /// Window kind and sizes.
    pub kind: WindowKind,
    /// Live publication interval.
    pub trigger: Duration,
}

/// What one worker's window operator is built with: the stage's settings and the worker's resources.
pub struct WindowSetup {
    /// The stage's settings.
    pub settings: WindowSettings,
    /// The checkpoint the job resumed from (0: none).
    pub restored: u64,
    /// Global worker index.
    pub worker: usize,
    /// Workers in all processes.
    pub peers: usize,
    /// Receives the operator's input frontier, which is the job's watermark.
    pub watermark: Rc<Cell<Option<u64>>>,
    /// The job's compiled query.
    pub query: Arc<Query>,
    /// This worker's UDF host (it counts the UDFs' failures).
    pub host: Rc<Host>,
    /// This worker's error counters.
    pub errors: Rc<ErrorLog>,
    /// Where each checkpoint's open windows are saved at its barrier; `None` in a wiring without checkpoint
    /// parts, where they are only counted.
    pub store: Option<StateStore>,
}

/// The aligned side of the operator: window state plus what is to be emitted.
struct Collect<S> {
    state: S,
    barriers: Vec<Barrier>,
    stats: Vec<WorkerStats>,
    worker: usize,
    store: Option<StateStore>,
    errors: Rc<ErrorLog>,
}

impl<S: OpenState> Aligned for Collect<S> {
    fn apply(&mut self, item: WindowData) {
        match item {
            WindowData::Event(e) => self.state.add(e),
            WindowData::Restored(w) => self.state.restore(*w),
            // The join operator turns every probe into an event before the windows' exchange.
            WindowData::Probe(_) => {}
        }
    }

    fn stats(&mut self, stats: Box<WorkerStats>) {
        self.stats.push(*stats);
    }

    fn barrier(&mut self, id: u64, kind: BarrierKind, partitions: Vec<PartitionState>, saved: bool) {
        // Worker 0 hears every source, so its barrier carries the partitions for the manifest.
        let partitions = if self.worker == 0 { partitions } else { Vec::new() };
        // The open windows go straight from the state to their file: a barrier carries only their number. A
        // checkpoint whose state an operator before could not save gets none: it never commits.
        let state = &self.state;
        let windows = match &self.store {
            Some(_) if !saved => None,
            Some(store) => store
                .save_open_windows(id, self.worker, |each| state.each_open(each))
                .map_err(|e| {
                    let why = format!("cannot write the open windows of checkpoint {id}; it will not commit: {e:#}");
                    self.errors.record(ErrorKind::CheckpointPart, &why)
                })
                .ok(),
            None => {
                let mut count = 0;
                let _ = state.each_open(&mut |_| {
                    count += 1;
                    Ok(())
                });
                Some(count)
            }
        };
        self.barriers.push(Barrier {
            id,
            kind,
            windows,
            partitions,
        });
    }
}

/// Builds the window operator of the query's kind over the sources' output.
pub fn windows<'s>(input: StreamVec<'s, u64, WindowIn>, setup: WindowSetup) -> StreamVec<'s, u64, WindowMsg> {
    let program = Program {
        query: Arc::clone(&setup.query),
        host: setup.host.clone(),
    };
    match setup.settings.kind {
        WindowKind::Tumbling { size_ms } => operator(
            input,
            "TumblingWindow",
            tumbling::Tumbling::new(size_ms, program),
            setup,
        ),
        WindowKind::Hopping(hop) => operator(input, "HoppingWindow", hopping::Panes::new(hop, program), setup),
        WindowKind::Session { gap_ms } => operator(
            input,
            "SessionWindow",
            session::SessionWindows::new(gap_ms, program),
            setup,
        ),
    }
}

/// The operator over one kind's open state.
fn operator<'s, S: OpenState + 'static>(
    input: StreamVec<'s, u64, WindowIn>,
    name: &str,
    state: S,
    setup: WindowSetup,
) -> StreamVec<'s, u64, WindowMsg> {
    let scope = input.scope();
    let WindowSetup {
        settings,
        restored,
        worker,
        peers,
        watermark,
        query: _,
        host,
        errors,
        store,
    } = setup;
    let trigger = settings.trigger;
    let mut state = Some(state);
    input.unary_frontier(Exchange::new(|m: &WindowIn| m.route()), name, move |cap, info| {
        let activator = scope.activator_for(info.address);
        // Held at the input frontier; every output goes out at it. Released when the input ends.
        let mut held = Some(cap);
        let mut align = Alignment::new(peers, restored);
        let mut out = Collect {
            state: state.take().expect("the operator is built once"),
            barriers: Vec::new(),
            stats: Vec::new(),
            worker,
            store: store.clone(),
            errors: errors.clone(),
        };
        let mut batch: Vec<WindowOut> = Vec::new();
        // Live aggregates go out on the shared grid, just before each snapshot tick (see `trigger`).
        let lead = crate::runtime::trigger::lead(trigger);
        let mut next_live = crate::runtime::trigger::next_after(model::time::now_ms(), trigger, lead);
        move |(input, frontier), output| {
            input.for_each(|_, data| {
                for item in data.drain(..) {
                    align.admit(item, &mut out);
                }
            });
            let Some(hold) = held.as_mut() else { return };
            for barrier in out.barriers.drain(..) {
                output
                    .session(&*hold)
                    .give(WindowMsg::Signal(WindowSignal::Barrier(barrier)));
            }
            if !out.stats.is_empty() {
                output
                    .session(&*hold)
                    .give_iterator(out.stats.drain(..).map(|s| WindowMsg::Signal(WindowSignal::Stats(s))));
            }
            let now_at = frontier.frontier().first().copied();
            watermark.set(now_at);
            // Final: every window whose end the frontier has reached, unless a checkpoint is being aligned.
            if !align.is_holding() {
                out.state.finish(now_at, &mut batch);
                if !batch.is_empty() {
                    output
                        .session(&*hold)
                        .give_iterator(batch.drain(..).map(WindowMsg::Data));
                }
            }
            if let Some(counts) = host.take_changed_errors() {
                output
                    .session(&*hold)
                    .give(WindowMsg::Signal(WindowSignal::UdfErrors(worker, counts)));
            }
            let Some(t) = now_at else {
                // The input has ended: every window is final; close with a last barrier.
                let (id, partitions, saved) = align.final_cut();
                out.barrier(id, BarrierKind::Final, partitions, saved);
                for barrier in out.barriers.drain(..) {
                    output
                        .session(&*hold)
                        .give(WindowMsg::Signal(WindowSignal::Barrier(barrier)));
                }
                held = None;
                return;
            };
            if t > *hold.time() {
                hold.downgrade(&t);
            }
            // Live: the changed aggregates of open windows, once per trigger.
            if !out.state.is_empty() {
                let now = model::time::now_ms();
                if crate::runtime::trigger::due(now, &mut next_live, trigger, lead) {
                    out.state.live(&mut batch);
                    if !batch.is_empty() {
                        output
                            .session(&*hold)
                            .give_iterator(batch.drain(..).map(WindowMsg::Data));
                    }
                }
                activator.activate_after(Duration::from_millis(next_live.saturating_sub(now)));
            }
        }
    })
}
