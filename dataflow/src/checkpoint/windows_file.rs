//! The open windows of a worker's checkpoint part, `pending-<id>/windows-w<j>.jsonl`: one [`WindowCheckpoint`]
//! per line, written as the worker converts them one at a time, and streamed by the committer into the manifest
//! ([`Spooled`]), so that neither holds a second copy of them (at 10 000 devices, 70 000 windows).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::ser::{Error as _, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::checkpoint::format::WindowCheckpoint;
use crate::durable::write_atomic_with;
use crate::messages::OpenWindow;

/// The open windows of worker `worker`'s part, in the pending checkpoint folder `pending`.
pub fn path(pending: &Path, worker: usize) -> PathBuf {
    pending.join(format!("windows-w{worker}.jsonl"))
}

/// Writes `windows` to `path`, one JSON line each, atomically.
pub fn write(path: &Path, windows: &[OpenWindow]) -> Result<()> {
    write_atomic_with(path, |w| {
        for window in windows {
            serde_json::to_writer(&mut *w, &WindowCheckpoint::from(window))?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
    .with_context(|| format!("cannot write {}", path.display()))
}

/// The open windows of a checkpoint's parts, serialised as one sequence straight from their files: each line is
/// read, checked as a [`WindowCheckpoint`] and written out before the next is read.
pub struct Spooled {
    /// The parts' window files, and how many windows each part says it holds.
    pub files: Vec<(PathBuf, usize)>,
}

impl Spooled {
    /// How many windows the parts say they hold.
    pub fn count(&self) -> usize {
        self.files.iter().map(|(_, n)| n).sum()
    }
}

impl Serialize for Spooled {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let fail = |path: &Path, why: &dyn std::fmt::Display| {
            S::Error::custom(format!("checkpoint windows {}: {why}", path.display()))
        };
        let mut seq = serializer.serialize_seq(None)?;
        for (path, expected) in &self.files {
            let file = File::open(path).map_err(|e| fail(path, &e))?;
            let mut read = 0;
            for line in BufReader::with_capacity(256 * 1024, file).lines() {
                let line = line.map_err(|e| fail(path, &e))?;
                let window: WindowCheckpoint = serde_json::from_str(&line).map_err(|e| fail(path, &e))?;
                seq.serialize_element(&window)?;
                read += 1;
            }
            if read != *expected {
                return Err(fail(path, &format!("{read} windows where its part says {expected}")));
            }
        }
        seq.end()
    }
}
