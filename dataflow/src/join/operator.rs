//! The temporal join operator: one per worker, between the source and the window operator of a job with
//! `JOIN t FOR SYSTEM_TIME AS OF`. Contract:
//! - probes (records of the stream, exchanged by their join key) and the table's versions (exchanged by key)
//!   meet here; the operator answers only to probes: a probe at event time `ts` waits until the table's frontier
//!   (its watermark) has passed `ts`, then meets the newest version of its key at or before `ts` (the rule is
//!   `versions.rs`'s) and leaves as an event for its group's windows, or is dropped (an inner join without a
//!   version, or `WHERE` not true of the joined row). A change of the table never re-enriches a record already
//!   joined;
//! - checkpoint markers from the sources are aligned here as in the window operator; a round's marker leaves
//!   only after every probe of the round has left, so a checkpoint's offsets never pass a record still waiting;
//!   the marker then goes on to every window operator as this operator's own (worker 0's carries the partition
//!   states), and so does the goodbye once every source has retired;
//! - it holds one capability, at the lowest of its probe input's frontier and the times (`at`) of the probes it
//!   holds back, so no window a waiting probe belongs to can turn final;
//! - versions no record still to come can meet are compacted away (`VersionStore::compact`).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;

use super::versions::VersionStore;
use crate::checkpoint::{Aligned, Alignment, StateStore};
use crate::messages::{
    BarrierKind, JoinCounts, Marker, PartitionState, ProbeRec, STOP_ID, SourceSignal, TableMsg, WindowData, WindowIn,
    WorkerStats,
};
use crate::query::{Query, Record, UdfHost};
use crate::runtime::errors::{ErrorKind, ErrorLog};

/// What the join operator of one worker needs.
pub struct JoinSetup {
    /// Global worker index.
    pub worker: usize,
    /// Workers in all processes.
    pub peers: usize,
    /// The checkpoint resumed from (0: none).
    pub restored: u64,
    /// The job's compiled query (how a probe meets its version and is read on).
    pub query: Arc<Query>,
    /// This worker's UDF host.
    pub host: Rc<dyn UdfHost>,
    /// The versions this worker holds, shared with whoever reports them.
    pub state: Rc<RefCell<JoinState>>,
    /// Where it saves them at each checkpoint (`None`: a job that takes no checkpoints).
    pub store: Option<StateStore>,
    /// This worker's error counters.
    pub errors: Rc<ErrorLog>,
}

/// The join's state on one worker: the versions it holds, where the table source stands in each partition as
/// far as this operator has heard, and its counts.
#[derive(Debug, Default)]
pub struct JoinState {
    /// The versions of the keys routed to this worker.
    pub versions: VersionStore,
    /// Per table partition, the next offset to read: every version before it has arrived here.
    pub progress: BTreeMap<i32, i64>,
    /// What it did with the records it met (cumulative; restored with the checkpoint).
    pub counts: JoinCounts,
}

/// An item held back in order: a probe, or anything else of the round passed on as it is.
enum Held {
    Probe(Box<ProbeRec>),
    Pass(WindowIn),
}

/// The items of one round, then what closes it.
#[derive(Default)]
struct Round {
    items: Vec<Held>,
    end: Option<End>,
}

/// What closes a round.
enum End {
    /// The sources' markers of a checkpoint, aligned.
    Barrier {
        id: u64,
        kind: BarrierKind,
        partitions: Vec<PartitionState>,
    },
    /// Every source has retired.
    Retire { id: u64, partitions: Vec<PartitionState> },
}

/// Collects what the alignment admits.
struct Rounds {
    rounds: VecDeque<Round>,
    stats: Vec<WorkerStats>,
}

impl Rounds {
    fn open(&mut self) -> &mut Round {
        if self.rounds.back().is_none_or(|r| r.end.is_some()) {
            self.rounds.push_back(Round::default());
        }
        self.rounds.back_mut().expect("a round is open")
    }
}

impl Aligned for Rounds {
    fn apply(&mut self, item: WindowData) {
        let held = match item {
            WindowData::Probe(p) => Held::Probe(p),
            other => Held::Pass(WindowIn::Data(other)),
        };
        self.open().items.push(held);
    }

    fn stats(&mut self, stats: Box<WorkerStats>) {
        self.stats.push(*stats);
    }

    fn barrier(&mut self, id: u64, kind: BarrierKind, partitions: Vec<PartitionState>, _saved: bool) {
        // The sources save nothing of their own: their markers are never unsaved.
        self.open().end = Some(End::Barrier { id, kind, partitions });
    }
}

/// Builds the join operator of this worker: probes and the table's versions in, events for the windows out.
pub fn temporal_join<'s>(
    probes: StreamVec<'s, u64, WindowIn>,
    table: StreamVec<'s, u64, TableMsg>,
    setup: JoinSetup,
) -> StreamVec<'s, u64, WindowIn> {
    let JoinSetup {
        worker,
        peers,
        restored,
        query,
        host,
        state: shared,
        store,
        errors,
    } = setup;
    let floor_span = query.window.max_span_ms();
    probes.binary_frontier(
        table,
        // As the windows' exchange, but a source's counters go to its own worker's join, which adds its own.
        Exchange::new(|m: &WindowIn| match m {
            WindowIn::Signal(SourceSignal::Stats(s)) => s.worker as u64,
            other => other.route(),
        }),
        Exchange::new(|m: &TableMsg| m.route()),
        "TemporalJoin",
        move |cap, _info| {
            let mut held = Some(cap);
            let mut align = Alignment::new(peers, restored);
            let mut rounds = Rounds {
                rounds: VecDeque::new(),
                stats: Vec::new(),
            };
            let mut retired = false;
            let mut last_stats: Option<WorkerStats> = None;
            let mut out: Vec<WindowIn> = Vec::new();
            move |(probe_in, probe_frontier), (table_in, table_frontier), output| {
                let mut state = shared.borrow_mut();
                table_in.for_each(|_, data| {
                    for msg in data.drain(..) {
                        match msg {
                            TableMsg::Version(v) => state.versions.insert(v.key, v.time, v.row),
                            TableMsg::Progress {
                                partition, next_offset, ..
                            } => {
                                let at = state.progress.entry(partition).or_insert(next_offset);
                                *at = (*at).max(next_offset);
                            }
                        }
                    }
                });
                probe_in.for_each(|_, data| {
                    for item in data.drain(..) {
                        align.admit(item, &mut rounds);
                    }
                });
                if !retired && align.finished() {
                    retired = true;
                    let (id, partitions, _) = align.final_cut();
                    rounds.open().end = Some(End::Retire { id, partitions });
                }
                let Some(hold) = held.as_mut() else { return };
                // The table's frontier: every version at or before `ready - 1` is in (`None`: the table ended).
                let ready = table_frontier.frontier().first().copied();
                let mut session = output.session(&*hold);
                // The source of this worker sends its counters here: they leave with this join's.
                let counts = JoinCounts {
                    versions: state.versions.versions() as u64,
                    keys: state.versions.keys() as u64,
                    ..state.counts
                };
                for mut s in rounds.stats.drain(..) {
                    s.join = counts;
                    last_stats = Some(s.clone());
                    session.give(WindowIn::Signal(SourceSignal::Stats(Box::new(s))));
                }
                while let Some(front) = rounds.rounds.front_mut() {
                    let mut waiting = Vec::new();
                    for item in front.items.drain(..) {
                        match item {
                            Held::Pass(m) => out.push(m),
                            Held::Probe(p) if ready.is_some_and(|r| r <= p.ts) => waiting.push(Held::Probe(p)),
                            Held::Probe(p) => {
                                let JoinState { versions, counts, .. } = &mut *state;
                                let version = versions.at(&p.key, p.ts);
                                if version.is_none() {
                                    counts.unmatched += 1;
                                }
                                match query.join(*p, version, host.as_ref()) {
                                    Some(Record::Event(mut e)) => {
                                        e.source = worker as u32;
                                        out.push(WindowIn::Data(WindowData::Event(e)));
                                    }
                                    Some(Record::Filtered { .. }) => counts.filtered += 1,
                                    None => counts.dropped += 1,
                                    Some(Record::Probe(_)) => {}
                                }
                            }
                        }
                    }
                    front.items = waiting;
                    session.give_iterator(out.drain(..));
                    if !front.items.is_empty() || front.end.is_none() {
                        break;
                    }
                    let partitions = |p: Vec<PartitionState>| if worker == 0 { p } else { Vec::new() };
                    let to_all = |id: u64, partitions: Vec<PartitionState>, retire: bool, saved: bool| {
                        Marker::to_every(id, worker as u32, peers, partitions, retire).map(move |mut m| {
                            if let WindowIn::Signal(SourceSignal::Marker(marker) | SourceSignal::Retire(marker)) =
                                &mut m
                            {
                                marker.unsaved = !saved;
                            }
                            m
                        })
                    };
                    match front.end.take() {
                        Some(End::Barrier {
                            id,
                            kind,
                            partitions: p,
                        }) => {
                            // The table as of this marker, durable before any window operator can align it; if it
                            // cannot be saved, the marker says so and the checkpoint does not commit.
                            let saved = save(store.as_ref(), id, worker, &state, &errors);
                            let id = if kind == BarrierKind::Stop { STOP_ID } else { id };
                            session.give_iterator(to_all(id, partitions(p), false, saved));
                        }
                        Some(End::Retire { id, partitions: p }) => {
                            // The windows' final barrier takes the id of the round after the last one.
                            let saved = save(store.as_ref(), id, worker, &state, &errors);
                            // The source's last counters left before the last records were joined.
                            if let Some(mut s) = last_stats.take() {
                                s.join = JoinCounts {
                                    versions: state.versions.versions() as u64,
                                    keys: state.versions.keys() as u64,
                                    ..state.counts
                                };
                                session.give(WindowIn::Signal(SourceSignal::Stats(Box::new(s))));
                            }
                            session.give_iterator(to_all(0, partitions(p), true, saved));
                        }
                        None => {}
                    }
                    rounds.rounds.pop_front();
                }
                drop(session);
                // Versions no record still to come can meet: below the lowest event time of a waiting probe,
                // and of any on-time record the probe input may still bring.
                let lowest_waiting = rounds
                    .rounds
                    .iter()
                    .flat_map(|r| &r.items)
                    .filter_map(|h| match h {
                        Held::Probe(p) => Some(p.ts),
                        Held::Pass(_) => None,
                    })
                    .min();
                let incoming = probe_frontier.frontier().first().map(|f| f.saturating_sub(floor_span));
                if let Some(floor) = [lowest_waiting, incoming].into_iter().flatten().min() {
                    state.versions.compact(floor);
                }
                // The lowest time a held item needs: a probe's `at`, a restored window's end − 1.
                let lowest_at = rounds
                    .rounds
                    .iter()
                    .flat_map(|r| &r.items)
                    .map(|h| match h {
                        Held::Probe(p) => p.at,
                        Held::Pass(WindowIn::Data(WindowData::Restored(w))) => w.end.saturating_sub(1),
                        Held::Pass(_) => *hold.time(),
                    })
                    .min();
                let ends_held = rounds.rounds.iter().any(|r| r.end.is_some());
                let target = [probe_frontier.frontier().first().copied(), lowest_at]
                    .into_iter()
                    .flatten()
                    .min();
                match target {
                    None if !ends_held => held = None,
                    Some(t) if t > *hold.time() => hold.downgrade(&t),
                    _ => {}
                }
            }
        },
    )
}

/// Saves the table as checkpoint `id` holds it (a job that takes checkpoints); returns whether it is saved (a
/// failure is counted, and its checkpoint must not commit).
fn save(store: Option<&StateStore>, id: u64, worker: usize, state: &JoinState, errors: &ErrorLog) -> bool {
    let Some(store) = store else { return true };
    let JoinState {
        versions,
        progress,
        counts,
    } = state;
    let saved = store.save_table(id, worker, progress, *counts, |each| {
        versions.iter().try_for_each(|(k, t, r)| each(k, t, r))
    });
    match saved {
        Ok(_) => true,
        Err(e) => {
            let why = format!("cannot save the versioned table for checkpoint {id}; it will not commit: {e:#}");
            errors.record(ErrorKind::CheckpointPart, &why);
            false
        }
    }
}
