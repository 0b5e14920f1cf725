//! The Parquet history sink: final windows, Hive-partitioned by escaped device id
//! (`parquet/device_id=<escaped>/part-….parquet`; schema and names are the contract in `model::history`).
//! Contract of [`stage_history`]: final windows are held per worker until the roll policy ([`roll`]) says the
//! worker rolls them ([`history`]); at each checkpoint barrier the windows received since the previous one are
//! first saved with the checkpoint (`checkpoint::StateStore::save_final_windows`) unless they are rolled at once,
//! and a roll writes them to hidden in-progress files in the checkpoint's staging folder ([`files`], durable
//! before the barrier is answered), handed on as [`Staged`] to the checkpoint, which renames them into their device folders
//! when it commits (two-phase commit), so a reader never sees a partial or uncommitted file. The device id is the
//! partition column and is not repeated inside the files.
//!
//! A roll's files are written on a thread of the roll's own while the worker goes on (reading, windowing,
//! publishing); the sink answers barriers strictly in their order, so whatever arrives during a roll waits in
//! the sink until the roll's answer has left.

pub mod files;
pub mod history;
pub mod roll;

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::mpsc::TryRecvError;

use anyhow::Result;
use model::history::rows::Row;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::SyncActivator;

use crate::messages::{Barrier, Staged, StagedHistory, WindowMsg, WindowSignal};
use crate::runtime::errors::{ErrorKind, ErrorLog};
use crate::runtime::helper_thread::HelperThread;
use files::{RollJob, Rolled};
pub use history::{Answer, HistorySetup, ParquetHistory};

/// Builds the Parquet sink: the window operator's output in, one [`Staged`] per barrier out, in barrier order.
pub fn stage_history<'s>(
    windows: StreamVec<'s, u64, WindowMsg>,
    history: ParquetHistory,
    errors: Rc<ErrorLog>,
) -> StreamVec<'s, u64, Staged> {
    let scope: Scope<'s, u64> = windows.scope();
    windows.unary(Pipeline, "ParquetHistory", move |_, info| {
        let wake = scope.worker().sync_activator_for(info.address.to_vec());
        let mut sink = HistorySink {
            worker: history.worker(),
            history,
            waiting: VecDeque::new(),
            rolling: None,
            roller: None,
            wake,
            errors,
        };
        move |input, output| {
            input.for_each(|cap, data| {
                for msg in data.drain(..) {
                    match msg {
                        WindowMsg::Data(w) if w.is_final => sink.waiting.push_back(Waiting::Final(w.row)),
                        WindowMsg::Signal(WindowSignal::Barrier(barrier)) => {
                            if let Some(cap) = cap.retain_least(0) {
                                sink.waiting.push_back(Waiting::Barrier(cap, barrier));
                            }
                        }
                        WindowMsg::Data(_) | WindowMsg::Signal(_) => {}
                    }
                }
            });
            sink.advance(&mut |cap, staged| output.session(&cap).give(staged));
        }
    })
}

/// What the sink has received and not handled yet, in arrival order.
enum Waiting {
    Final(Row),
    Barrier(Capability<u64>, Barrier),
}

/// The barrier whose roll is being written.
struct InFlight {
    cap: Capability<u64>,
    barrier: Barrier,
}

/// The worker's roll thread: writes a roll's files and wakes the sink with the outcome.
type Roller = HelperThread<RollJob, Rolled>;

/// The sink's state between activations.
struct HistorySink {
    history: ParquetHistory,
    waiting: VecDeque<Waiting>,
    rolling: Option<InFlight>,
    /// Started at the first roll.
    roller: Option<Roller>,
    worker: usize,
    /// Wakes the operator when a roll is done.
    wake: SyncActivator,
    errors: Rc<ErrorLog>,
}

impl HistorySink {
    /// Handles what arrived, in order, up to the next roll that is still being written; answers each barrier.
    fn advance(&mut self, give: &mut impl FnMut(Capability<u64>, Staged)) {
        loop {
            if let Some(flight) = self.rolling.take() {
                let done = self.roller.as_ref().map(Roller::try_recv);
                match done {
                    Some(Ok(rolled)) => {
                        let staged = self.history.finish(rolled);
                        self.answer(flight.cap, flight.barrier, staged, give);
                    }
                    Some(Err(TryRecvError::Empty)) => {
                        self.rolling = Some(flight);
                        return;
                    }
                    Some(Err(TryRecvError::Disconnected)) | None => {
                        // `RollJob::write` catches the writer's panics, so only a thread that could not even
                        // answer is left: the roll's windows are gone with it, and no later checkpoint may
                        // commit without them, so the roll thread is not started again.
                        let why = "the history roll's thread ended without an answer; its windows are lost";
                        self.answer(flight.cap, flight.barrier, Err(anyhow::anyhow!(why)), give);
                        self.history.poison();
                    }
                }
            }
            let Some(next) = self.waiting.pop_front() else { return };
            match next {
                Waiting::Final(row) => self.history.push(row),
                Waiting::Barrier(cap, barrier) => match self.history.begin(barrier.id, barrier.kind) {
                    Ok(Answer::Ready(staged)) => self.answer(cap, barrier, Ok(staged), give),
                    Ok(Answer::Roll(job)) => self.roll(cap, barrier, job, give),
                    Err(e) => self.answer(cap, barrier, Err(e), give),
                },
            }
        }
    }

    /// Hands a roll to the roll thread, or writes it here if that thread cannot be started.
    fn roll(
        &mut self,
        cap: Capability<u64>,
        barrier: Barrier,
        job: RollJob,
        give: &mut impl FnMut(Capability<u64>, Staged),
    ) {
        if self.roller.is_none() {
            let name = format!("history-roll-w{}", self.worker);
            self.roller = Roller::start(name, self.wake.clone(), (), |_, job: RollJob| job.write()).ok();
        }
        let job = match &self.roller {
            Some(roller) => match roller.send(job) {
                Ok(()) => {
                    self.rolling = Some(InFlight { cap, barrier });
                    return;
                }
                Err(job) => job,
            },
            None => job,
        };
        let staged = self.history.finish(job.write());
        self.answer(cap, barrier, staged, give);
    }

    fn answer(
        &self,
        cap: Capability<u64>,
        barrier: Barrier,
        staged: Result<StagedHistory>,
        give: &mut impl FnMut(Capability<u64>, Staged),
    ) {
        let id = barrier.id;
        let history = staged
            .map_err(|e| {
                let why = format!("cannot write the history of checkpoint {id}; it will not commit: {e:#}");
                self.errors.record(ErrorKind::ParquetWrite, &why)
            })
            .ok();
        give(cap, Staged { barrier, history });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{BarrierKind, WindowOut};
    use crate::sink::parquet::history::tests::{agg, fresh, rolling_at, seed_schema};
    use timely::dataflow::InputHandle;
    use timely::dataflow::operators::capture::{Capture, Event};

    fn final_window(device: &str, start: u64) -> WindowMsg {
        WindowMsg::Data(WindowOut {
            key: crate::messages::GroupKey::of([model::value::Value::Text(device.into())]),
            start,
            end: start + 10_000,
            row: agg(device, start),
            side: "lab".into(),
            is_final: true,
        })
    }

    fn barrier(id: u64) -> WindowMsg {
        WindowMsg::Signal(WindowSignal::Barrier(Barrier {
            id,
            kind: BarrierKind::Periodic,
            windows: Default::default(),
            partitions: Vec::new(),
        }))
    }

    #[test]
    fn barriers_are_answered_in_order_while_a_roll_is_written_and_later_windows_wait_for_the_next_segment() {
        let (store, history) = fresh("sink-order", 0, rolling_at(2));
        let staged = timely::execute_directly(move |worker| {
            let mut input = InputHandle::new();
            let errors = Rc::new(ErrorLog::default());
            let rx =
                worker.dataflow::<u64, _, _>(|scope| stage_history(input.to_stream(scope), history, errors).capture());
            // Barrier 1 rolls a and b; c arrives while those files are written and belongs to barrier 2.
            for msg in [
                final_window("a", 0),
                final_window("b", 0),
                barrier(1),
                final_window("c", 0),
                barrier(2),
            ] {
                input.send(msg);
            }
            rx
        });
        let answers: Vec<Staged> = staged
            .try_iter()
            .flat_map(|e| match e {
                Event::Messages(_, data) => data,
                Event::Progress(_) => Vec::new(),
            })
            .collect();
        let ids: Vec<u64> = answers.iter().map(|s| s.barrier.id).collect();
        assert_eq!(ids, [1, 2]);
        let rolled = answers[0].history.as_ref().expect("barrier 1 rolled");
        assert_eq!(rolled.files.len(), 2);
        let held = answers[1].history.as_ref().expect("barrier 2 held");
        assert!(held.files.is_empty());
        let segment = held.segment.clone().expect("c is in barrier 2's segment");
        assert_eq!(held.unrolled, vec![segment.clone()]);
        let rows = store.final_windows(&segment, &seed_schema()).unwrap();
        let devices: Vec<String> = rows.iter().map(|r| r[0].to_string()).collect();
        assert_eq!(devices, ["c"]);
    }
}
