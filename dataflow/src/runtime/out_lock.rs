//! Who holds an output folder: every process of a running job holds a shared lock on `<out>/.dataflow.lock`,
//! and `dataflow compact` needs it exclusively, so compaction offline never runs under a job (which compacts
//! its history itself). The lock is the operating system's (`flock`): it goes with the process, kill -9
//! included, so a crashed job never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A held lock on an output folder (released on drop).
#[derive(Debug)]
pub struct OutLock {
    _file: File,
}

fn path(out: &Path) -> PathBuf {
    out.join(".dataflow.lock")
}

fn open(out: &Path) -> Result<File> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let p = path(out);
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .with_context(|| format!("cannot open {}", p.display()))
}

impl OutLock {
    /// The lock of a job's process: shared with the other processes of its cluster.
    pub fn for_job(out: &Path) -> Result<OutLock> {
        let file = open(out)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(OutLock { _file: file }),
            Err(TryLockError::WouldBlock) => bail!(
                "{} is being compacted by `dataflow compact`; wait for it to finish, then start the job",
                out.display()
            ),
            Err(TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path(out).display())),
        }
    }

    /// The lock of an offline compaction: refused while a job holds the folder.
    pub fn for_compaction(out: &Path) -> Result<OutLock> {
        let file = open(out)?;
        match file.try_lock() {
            Ok(()) => Ok(OutLock { _file: file }),
            Err(TryLockError::WouldBlock) => bail!(
                "a dataflow job is running on {} (it holds {}): stop it first, or leave the compaction to the \
                 job, which compacts its history older than --compact-older-than by itself",
                out.display(),
                path(out).display()
            ),
            Err(TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path(out).display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_is_refused_while_a_job_holds_the_folder() {
        let out = std::env::temp_dir().join(format!("out-lock-{}", std::process::id()));
        let job = OutLock::for_job(&out).unwrap();
        let other_process = OutLock::for_job(&out).unwrap();
        let err = OutLock::for_compaction(&out).unwrap_err().to_string();
        assert!(
            err.contains("a dataflow job is running") && err.contains("stop it first"),
            "{err}"
        );
        drop((job, other_process));
        let compaction = OutLock::for_compaction(&out).unwrap();
        assert!(
            OutLock::for_job(&out)
                .unwrap_err()
                .to_string()
                .contains("being compacted")
        );
        drop(compaction);
    }
}
