//! `dataflow cluster --processes N [every job flag]`: runs a cluster of N processes of this binary on this
//! machine and keeps it running (`docs/operations.md`, "A cluster"). It picks N free ports on 127.0.0.1,
//! writes the host file itself, and starts process `i` with the job's flags and `-n N -p i -h FILE`, each
//! process's log lines prefixed with `[process i]`. When a process ends with a failure (any status but 0, or a
//! signal), the others stop by themselves (they notice the lost peer) or are killed after a grace period, and
//! the supervisor starts all of them again, from the last committed checkpoint, after the backoff of
//! [`restart`](super::restart); past the budget it gives up with [`GaveUp`] (exit status
//! [`GAVE_UP`](super::exit::GAVE_UP)). The number of restarts is passed to the processes (`--restarts`) and
//! shows in `latest.json`, Prometheus and the dashboard. A stop (Ctrl-C) is passed to every process, which
//! takes its last checkpoint; a bounded job ends when every process has finished.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::exit::PEER_LOST;
use super::restart::{Decision, RestartPolicy, Restarts};
use crate::config::Args;
use crate::job::{Outcome, StopHandle};

/// How long the other processes get to stop by themselves after one failed, before they are killed.
const GRACE: Duration = Duration::from_secs(20);
/// How long the processes get to take their last checkpoint after a stop, before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(60);

/// The supervisor gave up: too many failures within the window.
#[derive(Debug, thiserror::Error)]
#[error(
    "gave up after {failures} failures within --restart-window {window} (--max-restarts {max}); the last: {last}. \
     The output folder holds the last committed checkpoint: fix the cause and start the cluster again to resume \
     from it"
)]
pub struct GaveUp {
    /// Failures within the window.
    pub failures: usize,
    /// The window, as text.
    pub window: String,
    /// The budget.
    pub max: u32,
    /// The last failure, as text.
    pub last: String,
}

/// What the supervisor runs.
#[derive(Clone, Debug)]
pub struct Supervision {
    /// The job's flags for every process (`--processes` is the cluster's size; `--process` and `--hostfile`
    /// are the supervisor's to set).
    pub job: Args,
    /// The restart rule.
    pub policy: RestartPolicy,
    /// The program to start (this binary).
    pub program: PathBuf,
}

/// One process of the cluster, running.
struct Member {
    index: usize,
    child: Child,
    /// Its last log line, for a failure's message.
    last_line: Arc<Mutex<String>>,
    status: Option<ExitStatus>,
}

/// Runs and supervises the cluster until it finishes, is stopped, or the supervisor gives up.
pub fn run(s: &Supervision, stop: &StopHandle) -> Result<Outcome> {
    let n = s.job.processes;
    let scratch = std::env::temp_dir().join(format!("iot-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let started = Instant::now();
    let mut restarts = Restarts::default();
    let mut first = true;
    loop {
        let hostfile = write_hostfile(&scratch, n)?;
        let mut members = (0..n)
            .map(|i| spawn(s, i, &hostfile, first, restarts.total))
            .collect::<Result<Vec<_>>>()?;
        first = false;
        tracing::info!(processes = n, restarts = restarts.total, hosts = %hostfile.display(), "cluster started");
        match watch(&mut members, stop) {
            Watched::Finished => return Ok(Outcome::Finished),
            Watched::Stopped => return Ok(Outcome::Stopped),
            Watched::Failed(what) => {
                let decision = restarts.on_failure(started.elapsed().as_millis() as u64, &s.policy);
                match decision {
                    Decision::GiveUp(failures) => {
                        return Err(GaveUp {
                            failures,
                            window: humantime::format_duration(s.policy.window).to_string(),
                            max: s.policy.max_restarts,
                            last: what,
                        }
                        .into());
                    }
                    Decision::RestartAfter(delay) => {
                        tracing::warn!(
                            failure = %what,
                            restart = restarts.total,
                            after = %humantime::format_duration(delay),
                            "restarting every process of the cluster from the last committed checkpoint"
                        );
                        let until = Instant::now() + delay;
                        while Instant::now() < until {
                            if stop.is_raised() {
                                return Ok(Outcome::Stopped);
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            }
        }
    }
}

/// How a run of the cluster ended.
enum Watched {
    Finished,
    Stopped,
    /// A process failed: which, and how.
    Failed(String),
}

/// Waits for the cluster's processes: a stop is passed on; the first failure stops the rest.
fn watch(members: &mut [Member], stop: &StopHandle) -> Watched {
    loop {
        if stop.is_raised() {
            tracing::info!("stopping every process of the cluster (each takes its last checkpoint)");
            for m in members.iter_mut() {
                signal(&m.child, libc::SIGINT);
            }
            let all_ok = wait_all(members, STOP_GRACE);
            return if all_ok {
                Watched::Stopped
            } else {
                Watched::Failed(describe_failures(members))
            };
        }
        if reap(members) {
            // The others notice the lost peer and stop by themselves; whatever does not is killed.
            wait_all(members, GRACE);
            // The cause is the process that did not merely lose a peer (those exit with PEER_LOST).
            let cause = members
                .iter()
                .filter(|m| !m.status.is_some_and(|s| s.success()))
                .min_by_key(|m| m.status.and_then(|s| s.code()) == Some(PEER_LOST))
                .map(describe)
                .unwrap_or_default();
            tracing::warn!(failure = %cause, "a process of the cluster failed");
            return Watched::Failed(cause);
        }
        if members.iter().all(|m| m.status.is_some_and(|s| s.success())) {
            return Watched::Finished;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits up to `within` for every process to end; whether all ended with success. Processes still running
/// after it are killed.
fn wait_all(members: &mut [Member], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && members.iter().any(|m| m.status.is_none()) {
        reap(members);
        std::thread::sleep(Duration::from_millis(50));
    }
    for m in members.iter_mut().filter(|m| m.status.is_none()) {
        tracing::warn!(process = m.index, "did not end in time: killed");
        let _ = m.child.kill();
        m.status = m.child.wait().ok();
    }
    members.iter().all(|m| m.status.is_some_and(|s| s.success()))
}

/// Records the status of every process that has ended since the last look; whether one of them failed.
fn reap(members: &mut [Member]) -> bool {
    let mut failed = false;
    for m in members.iter_mut().filter(|m| m.status.is_none()) {
        if let Ok(Some(status)) = m.child.try_wait() {
            m.status = Some(status);
            failed |= !status.success();
        }
    }
    failed
}

fn describe(m: &Member) -> String {
    let status = match m.status {
        Some(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("signal {sig}"),
            _ => "no status".to_string(),
        },
        None => "still running".to_string(),
    };
    let line = m.last_line.lock().map(|l| l.clone()).unwrap_or_default();
    if line.is_empty() {
        format!("process {} ended with {status}", m.index)
    } else {
        format!("process {} ended with {status} ({line})", m.index)
    }
}

fn describe_failures(members: &[Member]) -> String {
    members
        .iter()
        .filter(|m| !m.status.is_some_and(|s| s.success()))
        .map(describe)
        .collect::<Vec<_>>()
        .join("; ")
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: `kill` has no memory precondition; a process that already ended is simply not found.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Picks `n` free ports on 127.0.0.1 and writes them as the host file.
fn write_hostfile(dir: &Path, n: usize) -> Result<PathBuf> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot find free ports on 127.0.0.1 for the cluster")?;
    let mut text = String::new();
    for l in &listeners {
        text += &format!("127.0.0.1:{}\n", l.local_addr()?.port());
    }
    drop(listeners);
    let path = dir.join("hosts");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Starts process `index`; `fresh` only on the first start (a restart resumes from the checkpoint).
fn spawn(s: &Supervision, index: usize, hostfile: &Path, first: bool, restarts: u64) -> Result<Member> {
    let mut job = s.job.clone();
    job.process = index;
    job.hostfile = Some(hostfile.to_path_buf());
    job.fresh = s.job.fresh && first;
    job.restarts = restarts;
    // One health endpoint per process: the given port for process 0, the next ones for the others.
    job.health_addr = s
        .job
        .health_addr
        .map(|a| std::net::SocketAddr::new(a.ip(), a.port().saturating_add(index as u16)));
    let args: Vec<OsString> = job.to_args();
    let mut command = Command::new(&s.program);
    command.args(&args).stdin(Stdio::null()).stderr(Stdio::piped());
    // A supervisor that dies (even by SIGKILL) takes its processes with it: no orphan keeps the ports or the
    // output folder.
    // SAFETY: `prctl` is async-signal-safe, and the closure touches nothing else between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", s.program.display()))?;
    tracing::info!(process = index, pid = child.id(), "started");
    let last_line = Arc::new(Mutex::new(String::new()));
    if let Some(stderr) = child.stderr.take() {
        let last = last_line.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[process {index}] {line}");
                // The process's own last word ("dataflow: error: ...", "dataflow: lost process ...") says most.
                if line.starts_with("dataflow:")
                    && let Ok(mut l) = last.lock()
                {
                    *l = line;
                }
            }
        });
    }
    Ok(Member {
        index,
        child,
        last_line,
        status: None,
    })
}
