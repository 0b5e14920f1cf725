//! Noticing a lost process of a cluster. Timely has no heartbeat and its answer to a lost peer is a panic on its
//! network thread; this module turns both a closed connection and a silent peer into one line naming the lost
//! process and a prompt exit with [`PEER_LOST`](super::exit::PEER_LOST) (`docs/operations.md`, "A cluster"):
//!
//! - **Heartbeats through the dataflow**: every worker sends a tick to every worker every [`HEARTBEAT`] on a
//!   small dataflow of its own ([`heartbeat`]), over the same connections as the job's data, so a process that
//!   is stopped (SIGSTOP), hung or cut off without its connection closing falls silent.
//! - **A watchdog thread** per process ([`Watchdog`]) judges every remote process by [`judge`]: silent for
//!   `--peer-timeout` while this process's own ticks still arrive (a process that is itself stalled blames no
//!   one) is lost; a process whose workers all said goodbye (they finished or stopped cleanly) is not expected
//!   to tick again.
//! - **A stop request travels with the heartbeats**: a process asked to stop raises the stop in every other one,
//!   so the cluster takes one stop checkpoint together.
//! - **Timely's panics** on its `timely:send-P` / `timely:recv-P` threads ("timely communication error") name
//!   the lost process P; a panic hook ([`install_panic_hook`]) reports it the same way instead of the panic
//!   text, and any panic that follows the report (a worker finding its channel gone) is silenced.
//!
//! The report is made once ([`report_lost`]); the process then ends at once, as a kill would end it: the
//! checkpoint protocol makes that safe (nothing half-written is ever visible; the next start resumes from the
//! last committed checkpoint, which the line names).

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::{Operator, source};
use timely::scheduling::Activator;
use timely::worker::Worker;

use super::exit::PEER_LOST;

/// How often a worker sends its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// One heartbeat: from global worker `from` to global worker `to`; `bye`: the sender leaves cleanly; `stop`: the
/// sender's process was asked to stop (every process then stops, with one stop checkpoint).
type Tick = (usize, usize, bool, bool);

/// What this process knows of every process's heartbeats (shared by its workers and its watchdog).
pub struct Liveness {
    /// This process's index.
    pub me: usize,
    /// Every process's address, by index.
    pub addresses: Vec<String>,
    /// Workers per process.
    pub workers: usize,
    /// The output folder, whose newest checkpoint a report names.
    pub out: PathBuf,
    /// When the processes were connected.
    started: Instant,
    /// Per process: ms after `started` of its latest tick (0: none yet).
    heard: Vec<AtomicU64>,
    /// Per process: how many of its workers said goodbye.
    byes: Vec<AtomicUsize>,
    /// Raised once this process's own job has ended: the watchdog stops judging.
    ended: AtomicBool,
}

impl Liveness {
    /// The liveness of process `me` among `addresses`, each with `workers` workers, connected now.
    pub fn new(me: usize, addresses: Vec<String>, workers: usize, out: PathBuf) -> Arc<Liveness> {
        let n = addresses.len();
        Arc::new(Liveness {
            me,
            addresses,
            workers,
            out,
            started: Instant::now(),
            heard: (0..n).map(|_| AtomicU64::new(0)).collect(),
            byes: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            ended: AtomicBool::new(false),
        })
    }

    fn now_ms(&self) -> u64 {
        (self.started.elapsed().as_millis() as u64).max(1)
    }

    /// A tick from global worker `from` was received.
    fn heard_from(&self, from: usize, bye: bool) {
        let process = from / self.workers.max(1);
        if let Some(h) = self.heard.get(process) {
            h.store(self.now_ms(), Ordering::Relaxed);
        }
        if bye && let Some(b) = self.byes.get(process) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// This process's job has ended (its workers returned): nothing is judged any more.
    pub fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
    }

    /// The state of process `p` as [`judge`] reads it.
    fn peer(&self, p: usize) -> Peer {
        Peer {
            heard_ms: self.heard[p].load(Ordering::Relaxed),
            all_left: self.byes[p].load(Ordering::Relaxed) >= self.workers,
        }
    }
}

/// What the watchdog knows of one remote process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its latest tick, ms after the connection (0: none yet).
    pub heard_ms: u64,
    /// Every one of its workers said goodbye.
    pub all_left: bool,
}

/// The watchdog's verdict on one remote process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Alive, or left cleanly.
    Fine,
    /// Silent for this long while this process's own ticks kept arriving.
    Silent(Duration),
}

/// The liveness rule, pure: at `now_ms` (after the connection), with this process's own latest tick at
/// `self_ms`, a remote process is lost when it has not ticked for `timeout` although this process has ticked
/// since (a process that is itself stalled blames no one), unless all of its workers said goodbye. Before its
/// first tick a process is given `startup` (building its dataflow, restoring a checkpoint) instead of
/// `timeout`.
pub fn judge(now_ms: u64, self_ms: u64, peer: Peer, timeout: Duration, startup: Duration) -> Verdict {
    if peer.all_left {
        return Verdict::Fine;
    }
    let limit = if peer.heard_ms == 0 { startup } else { timeout }.as_millis() as u64;
    let silent = now_ms.saturating_sub(peer.heard_ms);
    let we_ticked_since = self_ms > peer.heard_ms.saturating_add(limit);
    if silent > limit && we_ticked_since {
        Verdict::Silent(Duration::from_millis(silent))
    } else {
        Verdict::Fine
    }
}

/// A worker's side of the heartbeats: its dataflow's goodbye.
pub struct Heartbeat {
    bye: Rc<Cell<bool>>,
    /// Wakes the heartbeat source for its goodbye.
    activator: Rc<RefCell<Option<Activator>>>,
}

/// Builds this worker's heartbeat dataflow: a tick to every worker every [`HEARTBEAT`], and every tick received
/// recorded in `liveness`. The ticks also carry a stop request: a process asked to stop (Ctrl-C, SIGTERM, a
/// Kubernetes pod deleted) raises `stop` in every other process within a heartbeat, so that the cluster takes
/// its stop checkpoint together; one process cannot stop alone, since the others' stop markers complete the
/// round.
pub fn heartbeat(worker: &mut Worker, liveness: Arc<Liveness>, stop: Arc<AtomicBool>) -> Heartbeat {
    let (me, peers) = (worker.index(), worker.peers());
    let bye = Rc::new(Cell::new(false));
    let leaving = bye.clone();
    let shared = Rc::new(RefCell::new(None));
    let wake = shared.clone();
    let stopping = stop.clone();
    worker.dataflow::<u64, _, _>(|scope| {
        source(scope, "HeartbeatOut", move |capability, info| {
            let activator = scope.activator_for(info.address);
            *wake.borrow_mut() = Some(activator.clone());
            let mut said_bye = false;
            move |output| {
                if said_bye {
                    return;
                }
                said_bye = leaving.get();
                let stop = stopping.load(Ordering::Relaxed);
                let mut ticks: Vec<Tick> = (0..peers).map(|to| (me, to, said_bye, stop)).collect();
                output.session(&capability).give_container(&mut ticks);
                activator.activate_after(HEARTBEAT);
            }
        })
        .sink(
            Exchange::new(|t: &Tick| t.1 as u64),
            "HeartbeatIn",
            move |(input, _)| {
                input.for_each(|_, ticks| {
                    for &(from, _, bye, asked) in ticks.iter() {
                        liveness.heard_from(from, bye);
                        if asked && !stop.swap(true, Ordering::SeqCst) {
                            tracing::info!(
                                process = liveness.me,
                                by = from / liveness.workers.max(1),
                                "another process of the cluster was asked to stop: stopping with it"
                            );
                        }
                    }
                });
            },
        );
    });
    Heartbeat { bye, activator: shared }
}

impl Heartbeat {
    /// Says goodbye to every worker (this worker leaves cleanly: it finished or stopped), stepping the worker
    /// until the goodbye has been handed to the network; once.
    pub fn leave(&self, worker: &mut Worker) {
        if self.bye.replace(true) {
            return;
        }
        if let Some(a) = self.activator.borrow().as_ref() {
            a.activate();
        }
        for _ in 0..3 {
            worker.step();
        }
    }
}

/// The watchdog of one process: a thread that judges the remote processes every [`HEARTBEAT`] / 2 until the
/// job ends, and reports the first that is lost.
pub struct Watchdog;

impl Watchdog {
    /// Starts judging the remote processes of `liveness`.
    pub fn start(liveness: Arc<Liveness>, timeout: Duration, startup: Duration) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("peer-watchdog".into())
            .spawn(move || {
                while !liveness.ended.load(Ordering::SeqCst) {
                    std::thread::sleep(HEARTBEAT / 2);
                    let now = liveness.now_ms();
                    let own = liveness.heard[liveness.me].load(Ordering::Relaxed);
                    for p in (0..liveness.addresses.len()).filter(|p| *p != liveness.me) {
                        if let Verdict::Silent(silent) = judge(now, own, liveness.peer(p), timeout, startup) {
                            if liveness.ended.load(Ordering::SeqCst) {
                                return;
                            }
                            report_lost(
                                &liveness,
                                p,
                                &format!(
                                    "it sent no heartbeat for {:.1} s (--peer-timeout {}): it is stopped, hung or cut \
                                     off",
                                    silent.as_secs_f64(),
                                    humantime::format_duration(timeout)
                                ),
                            );
                        }
                    }
                }
            })
            .map(|_| ())
    }
}

/// The liveness the panic hook reports against (set once per process).
static REPORTING: OnceLock<Arc<Liveness>> = OnceLock::new();
/// Raised by the first report: every later one, and any panic after it, is silent.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// Reports the loss of process `lost` once: one line naming it, the exit status and the checkpoint to resume
/// from, on stderr; then ends the process with [`PEER_LOST`] at once.
pub fn report_lost(liveness: &Liveness, lost: usize, why: &str) -> ! {
    if !REPORTED.swap(true, Ordering::SeqCst) {
        let address = liveness.addresses.get(lost).map_or("?", String::as_str);
        let checkpoint = match crate::checkpoint::newest_committed(&liveness.out) {
            Some((id, path)) => format!("checkpoint {id} ({})", path.display()),
            None => "none yet (the job starts over from --start)".to_string(),
        };
        eprintln!(
            "dataflow: lost process {lost} of {} ({address}): {why}. Process {} stops with exit status {PEER_LOST}; \
             the last committed checkpoint is {checkpoint}. Start every process of the cluster again to resume \
             from it (`dataflow cluster` and Kubernetes do that by themselves).",
            liveness.addresses.len(),
            liveness.me,
        );
    }
    // Like a kill: no destructor runs, no half-done step continues; the checkpoint protocol makes that safe.
    // SAFETY: `_exit` ends the process; it has no precondition.
    unsafe { libc::_exit(PEER_LOST) }
}

/// Installs the panic hook that turns timely's network panics into [`report_lost`] (once per process; the hook
/// keeps the previous one for every other panic until a loss was reported).
pub fn install_panic_hook(liveness: Arc<Liveness>) {
    if REPORTING.set(liveness).is_err() {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if REPORTED.load(Ordering::SeqCst) {
            // A worker that found its channel gone after the report: the process is ending anyway.
            return;
        }
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        let thread = std::thread::current();
        if let (Some(lost), Some(liveness)) = (network_peer(thread.name(), message), REPORTING.get()) {
            let why = message.trim_start_matches("timely communication error: ");
            report_lost(liveness, lost, &format!("its connection failed ({why})"));
        }
        previous(info);
    }));
}

/// The remote process a panic on timely's network thread `thread` names, if it is one ("timely:send-P" or
/// "timely:recv-P" with a "timely communication error" message).
pub fn network_peer(thread: Option<&str>, message: &str) -> Option<usize> {
    let name = thread?;
    let index = name
        .strip_prefix("timely:recv-")
        .or_else(|| name.strip_prefix("timely:send-"))?;
    (message.contains("timely communication error") || message.contains("Clean shutdown followed by data"))
        .then(|| index.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);
    const STARTUP: Duration = Duration::from_secs(60);

    fn peer(heard_ms: u64) -> Peer {
        Peer {
            heard_ms,
            all_left: false,
        }
    }

    #[test]
    fn a_peer_silent_past_the_timeout_while_we_tick_is_lost() {
        assert_eq!(
            judge(21_000, 20_900, peer(10_000), TIMEOUT, STARTUP),
            Verdict::Silent(Duration::from_millis(11_000))
        );
        assert_eq!(judge(19_000, 18_900, peer(10_000), TIMEOUT, STARTUP), Verdict::Fine);
    }

    #[test]
    fn a_process_that_is_itself_stalled_blames_no_one() {
        // Our own ticks stopped arriving at the same time as the peer's: we are the slow one.
        assert_eq!(judge(60_000, 10_100, peer(10_000), TIMEOUT, STARTUP), Verdict::Fine);
    }

    #[test]
    fn a_peer_whose_workers_all_said_goodbye_is_never_lost() {
        let left = Peer {
            heard_ms: 1_000,
            all_left: true,
        };
        assert_eq!(judge(600_000, 599_900, left, TIMEOUT, STARTUP), Verdict::Fine);
    }

    #[test]
    fn a_peer_not_heard_yet_gets_the_startup_grace() {
        assert_eq!(judge(30_000, 29_900, peer(0), TIMEOUT, STARTUP), Verdict::Fine);
        assert!(matches!(
            judge(61_000, 60_900, peer(0), TIMEOUT, STARTUP),
            Verdict::Silent(_)
        ));
    }

    #[test]
    fn timely_network_panics_name_the_remote_process() {
        let msg = "timely communication error: reading data: socket closed";
        assert_eq!(network_peer(Some("timely:recv-2"), msg), Some(2));
        assert_eq!(network_peer(Some("timely:send-0"), msg), Some(0));
        assert_eq!(network_peer(Some("timely:worker-0"), msg), None);
        assert_eq!(network_peer(Some("timely:recv-1"), "index out of bounds"), None);
        assert_eq!(network_peer(None, msg), None);
    }
}
