//! One piece of the pipeline as a child process: started in its own process group (so a terminal's Ctrl-C
//! reaches only the launcher), killed by the kernel if the launcher dies, and stopped with SIGINT.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// A child process with a name, stopped with SIGINT.
pub(crate) struct Piece {
    /// Which piece it is, for messages: `producer`, `dataflow` or `dashboard`.
    pub(crate) name: &'static str,
    child: Child,
}

impl Piece {
    /// Starts `bin` with `args`.
    pub(crate) fn start(
        name: &'static str,
        bin: &Path,
        args: impl IntoIterator<Item = impl AsRef<OsStr>>,
    ) -> Result<Piece> {
        let mut cmd = Command::new(bin);
        // Own process group: a terminal Ctrl-C reaches only this launcher, which stops the pieces in order.
        cmd.args(args).process_group(0);
        // SAFETY: prctl is async-signal-safe; it asks the kernel to SIGTERM the piece if the launcher dies, so a
        // killed launcher never leaves pieces running.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(Piece { name, child })
    }

    /// Its exit status, once it has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stops it with SIGINT, and kills it if it has not exited `within` that time.
    pub(crate) fn stop(&mut self, within: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.exited() {
            return Ok(status);
        }
        // SAFETY: sending a signal to a child we spawned and have not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                eprintln!("iot-pipeline: {} did not stop within {within:?}; killing it", self.name);
                let _ = self.child.kill();
                return Ok(self.child.wait()?);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
