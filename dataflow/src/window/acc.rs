//! What the window kinds share: the map of groups each kind keeps its state in ([`Groups`]), a group's
//! accumulators in one window, pane or session ([`GroupAcc`]: one accumulator per aggregate of the query, and the
//! carried location), the interface every kind's open state offers the operator ([`OpenState`]), and the step
//! that turns an accumulator into an output row ([`GroupAcc::emit`], through the compiled query: `HAVING`, the
//! output columns, user-defined functions).

use std::collections::HashMap;

use compact_str::CompactString;
use model::Window;
use sql::agg::Acc;

use crate::messages::{EventRec, GroupKey, OpenWindow, WindowOut};
use crate::query::Program;

/// Per-group state keyed by the group's key with a fast hasher (foldhash: the keys come from the input, so the
/// per-process random seed matters; SipHash cost twice as much per event).
pub type Groups<T> = HashMap<GroupKey, T, foldhash::fast::RandomState>;

/// The open windows of one worker, of one kind: what the window operator asks of them.
pub trait OpenState {
    /// Folds an on-time event in.
    fn add(&mut self, e: EventRec);
    /// Brings back an open window, pane or session from a checkpoint, merged with what events built first.
    fn restore(&mut self, w: OpenWindow);
    /// Appends to `out` the final rows of every window that ends at or below `frontier` (`None`: the input has
    /// ended, every window), oldest window first and each window's groups in key order.
    fn finish(&mut self, frontier: Option<u64>, out: &mut Vec<WindowOut>);
    /// Appends to `out` the live row of the newest open window of every group that changed since the last call.
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

/// One group's accumulators in one window, pane or session. Empty (no accumulator yet) until its first event or
/// restored part.
#[derive(Clone, Debug, Default)]
pub struct GroupAcc {
    /// One accumulator per aggregate of the query.
    pub accs: Vec<Acc>,
    /// The group's latest location (see each kind for which event is "latest"); empty without one.
    pub side: CompactString,
}

impl GroupAcc {
    /// Folds an event in; its location is taken when `take_side`.
    #[inline]
    pub fn add(&mut self, e: &EventRec, p: &Program, take_side: bool) {
        if self.accs.is_empty() {
            self.accs = p.query.new_accs();
        }
        p.query.fold(&mut self.accs, &e.inputs, e.ts);
        if take_side && self.side != e.side {
            self.side = e.side.clone();
        }
    }

    /// Folds in another part of the same window, pane or session (its location only when this one has none).
    pub fn absorb(&mut self, other: GroupAcc) {
        if self.accs.is_empty() {
            self.accs = other.accs;
        } else {
            for (acc, more) in self.accs.iter_mut().zip(other.accs) {
                acc.merge(more);
            }
        }
        if self.side.is_empty() {
            self.side = other.side;
        }
    }

    /// The accumulator a checkpoint carried.
    pub fn of_open(w: OpenWindow) -> GroupAcc {
        GroupAcc {
            accs: w.accs,
            side: w.side,
        }
    }

    /// This accumulator as a checkpoint carries it.
    pub fn to_open(&self, key: &GroupKey, start: u64, end: u64) -> OpenWindow {
        OpenWindow {
            start,
            end,
            key: key.clone(),
            side: self.side.clone(),
            accs: self.accs.clone(),
        }
    }

    /// The row `key` emits for `window`; `None` when the query's `HAVING` is not true of it.
    pub fn emit(&self, p: &Program, key: &GroupKey, window: Window, is_final: bool) -> Option<WindowOut> {
        let row = p
            .query
            .emit(key, window.start, window.end, &self.accs, p.host.as_ref())?;
        Some(WindowOut {
            key: key.clone(),
            start: window.start,
            end: window.end,
            row,
            side: self.side.clone(),
            is_final,
        })
    }
}

impl model::sessions::SessionAcc for GroupAcc {
    fn absorb_earlier(&mut self, earlier: Self) {
        self.absorb(earlier);
    }
}
