//! An operator's helper thread: slow work (a roll's thousands of files, a checkpoint's commit) handed off the
//! worker thread, so the worker keeps reading and windowing meanwhile. Jobs are done one at a time, in the order
//! they were sent; each outcome is sent back before the operator is woken (`SyncActivator`), so a woken operator
//! finds it. The thread ends when the operator drops its handle. What the operator does while a job is out
//! (hold a capability, keep later messages waiting) is its own rule.

use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};

use timely::scheduling::SyncActivator;

/// The operator's end of a helper thread: jobs of type `J` out, outcomes of type `O` back.
pub struct HelperThread<J, O> {
    jobs: Sender<J>,
    done: Receiver<O>,
}

impl<J: Send + 'static, O: Send + 'static> HelperThread<J, O> {
    /// Starts thread `name`, which owns `state` and answers each job with `work(&mut state, job)`. If the thread
    /// cannot be started, `state` comes back with the error, so the operator can do the work itself.
    pub fn start<S: Send + 'static>(
        name: String,
        wake: SyncActivator,
        state: S,
        mut work: impl FnMut(&mut S, J) -> O + Send + 'static,
    ) -> Result<HelperThread<J, O>, (S, std::io::Error)> {
        let (jobs, todo) = channel::<J>();
        let (finished, done) = channel();
        // The state moves into the thread through this slot, so that it can be taken back if the thread never
        // starts (a failed spawn drops the closure, and whatever it owned with it).
        let slot = Arc::new(Mutex::new(Some(state)));
        let mine = Arc::clone(&slot);
        let started = std::thread::Builder::new().name(name).spawn(move || {
            let Some(mut state) = mine.lock().ok().and_then(|mut s| s.take()) else {
                return;
            };
            for job in todo {
                if finished.send(work(&mut state, job)).is_err() {
                    return;
                }
                // After the outcome is sent, so that the woken operator finds it.
                let _ = wake.activate();
            }
        });
        match started {
            Ok(_) => Ok(HelperThread { jobs, done }),
            Err(e) => match slot.lock().ok().and_then(|mut s| s.take()) {
                Some(state) => Err((state, e)),
                None => unreachable!("a thread that did not start took nothing"),
            },
        }
    }

    /// Hands a job to the thread; it comes back if the thread has ended.
    pub fn send(&self, job: J) -> Result<(), J> {
        self.jobs.send(job).map_err(|e| e.0)
    }

    /// The next outcome, if one is ready; `Disconnected` once the thread has ended and every outcome was taken.
    pub fn try_recv(&self) -> Result<O, TryRecvError> {
        self.done.try_recv()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn jobs_are_answered_in_order_with_the_state_the_thread_owns() {
        timely::execute_directly(|worker| {
            let wake = worker.sync_activator_for(vec![0]);
            let thread = HelperThread::start("helper-test".into(), wake, 0u64, |sum, n: u64| {
                *sum += n;
                *sum
            })
            .map_err(|(_, e)| e)
            .unwrap();
            for n in 1..=4 {
                thread.send(n).unwrap();
            }
            let mut got = Vec::new();
            while got.len() < 4 {
                match thread.try_recv() {
                    Ok(o) => got.push(o),
                    Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(1)),
                    Err(TryRecvError::Disconnected) => panic!("the thread ended"),
                }
            }
            assert_eq!(got, vec![1, 3, 6, 10]);
        });
    }
}
