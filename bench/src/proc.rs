//! Child processes under measurement: spawning the real binaries with their output in log files, waiting for
//! them with the kernel's resource usage (peak RSS from `wait4`), sampling RSS from `/proc` while they run, and
//! interrupting them like Ctrl-C. A process still running when its handle is dropped is killed, so a failed
//! scenario leaves nothing behind.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A spawned child process, timed from spawn.
pub struct Running {
    child: Option<Child>,
    name: String,
    started: Instant,
    stdout: PathBuf,
    stderr: PathBuf,
    done: Option<Finished>,
    hwm_kb: u64,
}

/// How a child ended.
#[derive(Debug)]
pub struct Finished {
    /// Spawn to exit.
    pub wall: Duration,
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Peak resident set size, kB: the last `VmHWM` read while it ran (`ru_maxrss` is not used: for a child
    /// spawned from a large parent it counts the parent's pages from before `exec`).
    pub max_rss_kb: u64,
    /// User plus system CPU time.
    pub cpu: Duration,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// The last lines it printed on stderr.
    pub stderr_tail: String,
}

impl Finished {
    /// Fails with the tail of stderr unless the process exited 0.
    pub fn ok(self, what: &str) -> Result<Finished> {
        if self.code == Some(0) {
            Ok(self)
        } else {
            bail!(
                "{what} exited with {:?}; last lines of its log:\n{}",
                self.code,
                self.stderr_tail
            )
        }
    }
}

/// Spawns `cmd` with stdout and stderr sent to `<logs>/<name>.out|.err`.
pub fn spawn(mut cmd: Command, name: &str, logs: &Path) -> Result<Running> {
    std::fs::create_dir_all(logs)?;
    let stdout = logs.join(format!("{name}.out"));
    let stderr = logs.join(format!("{name}.err"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&stdout)?)
        .stderr(File::create(&stderr)?);
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {name} ({:?})", cmd.get_program()))?;
    Ok(Running {
        child: Some(child),
        name: name.to_string(),
        started,
        stdout,
        stderr,
        done: None,
        hwm_kb: 0,
    })
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Current and peak RSS in kB from `/proc/<pid>/status` (`None` once it has exited).
    pub fn rss_kb(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// Remembers the peak RSS seen so far.
    pub fn note_hwm(&mut self) {
        if let Some((_, hwm)) = self.rss_kb() {
            self.hwm_kb = self.hwm_kb.max(hwm);
        }
    }

    /// Sends SIGINT, as Ctrl-C would.
    pub fn interrupt(&self) {
        if self.child.is_some() && self.done.is_none() {
            // SAFETY: signalling our own child, which has not been reaped yet (it is still in `self.child`).
            unsafe {
                libc::kill(self.pid() as libc::pid_t, libc::SIGINT);
            }
        }
    }

    /// Whether it has exited (it is reaped then, and [`Running::wait`] returns at once).
    pub fn has_exited(&mut self) -> Result<bool> {
        if self.done.is_none() {
            self.note_hwm();
            self.done = self.reap(libc::WNOHANG)?;
        }
        Ok(self.done.is_some())
    }

    /// Waits up to `timeout` for the process to exit; kills it past that and fails.
    pub fn wait(mut self, timeout: Duration) -> Result<Finished> {
        if let Some(done) = self.done.take() {
            return Ok(done);
        }
        let deadline = self.started + timeout;
        let mut polls: u64 = 0;
        loop {
            if polls.is_multiple_of(10) {
                self.note_hwm();
            }
            polls += 1;
            if let Some(done) = self.reap(libc::WNOHANG)? {
                return Ok(done);
            }
            if Instant::now() >= deadline {
                self.kill();
                bail!(
                    "{} did not finish within {timeout:?}; killed. Last lines of its log:\n{}",
                    self.name,
                    tail(&self.stderr, 15)
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends SIGINT and waits up to `timeout` for a clean exit.
    pub fn stop(self, timeout: Duration) -> Result<Finished> {
        self.interrupt();
        let waited = self.started.elapsed();
        self.wait(waited + timeout)
    }

    fn reap(&mut self, flags: libc::c_int) -> Result<Option<Finished>> {
        let Some(child) = self.child.as_ref() else {
            bail!("{} was already reaped", self.name)
        };
        let pid = child.id() as libc::pid_t;
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain old data; wait4 fills it for our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r == 0 {
            return Ok(None);
        }
        if r < 0 {
            bail!("waiting for {}: {}", self.name, std::io::Error::last_os_error());
        }
        let wall = self.started.elapsed();
        // Reaped by hand: std's handle must not try again.
        self.child = None;
        let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        Ok(Some(Finished {
            wall,
            code,
            max_rss_kb: self.hwm_kb,
            cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr_tail: tail(&self.stderr, 15),
        }))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a probe port")?;
    Ok(listener.local_addr()?.port())
}

/// Starts `dataflow` unbounded on `topic` (consumer group of the same name) with `args` and `-w workers`,
/// writing its outputs under `dir` (`aggregates/`, `deadletter/`) and its logs there, and returns once it has
/// written its first `latest.json`, so that start-up is not measured.
pub fn start_live_job(
    ctx: &crate::ctx::Ctx,
    group: &str,
    topic: Option<&str>,
    args: &[String],
    workers: usize,
    dir: &Path,
) -> Result<Running> {
    let out = dir.join("aggregates");
    let mut cmd = ctx.command("dataflow");
    cmd.args(["--brokers", &ctx.brokers]);
    if let Some(topic) = topic {
        cmd.args(["--topic", topic]);
    }
    cmd.args(["--group", group])
        .args(args)
        .arg("--out")
        .arg(&out)
        .arg("--deadletter")
        .arg(dir.join("deadletter"))
        .args(["-w", &workers.to_string()]);
    let mut dataflow = spawn(cmd, "dataflow", dir)?;
    let up = Instant::now();
    while !out.join("latest.json").is_file() {
        if dataflow.has_exited()? || up.elapsed() > Duration::from_secs(60) {
            bail!(
                "dataflow did not come up within 60 s:\n{}",
                tail(&dir.join("dataflow.err"), 15)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(dataflow)
}
