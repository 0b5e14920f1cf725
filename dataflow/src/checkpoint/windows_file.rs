//! The open windows of a worker's checkpoint part, `pending-<id>/windows-w<j>.jsonl`: one [`WindowCheckpoint`]
//! per line, written by the window operator at the barrier as it walks its state ([`write_open`]), and streamed
//! by the committer into the manifest ([`Spooled`]), so that no copy of them is held anywhere (at 10 000
//! devices, 70 000 windows): not in the barrier, not in the part, not in the committer.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::ser::{Error as _, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::checkpoint::format::WindowCheckpoint;
use crate::checkpoint::layout::pending_dir;
use crate::messages::OpenWindow;
use crate::runtime::durable::replace_with;

/// The open windows of worker `worker`'s part, in the pending checkpoint folder `pending`.
pub fn path(pending: &Path, worker: usize) -> PathBuf {
    pending.join(format!("windows-w{worker}.jsonl"))
}

/// Hands each open window to the function it is given, stopping at the first error.
pub type Visit<'a> = &'a mut dyn FnMut(OpenWindow) -> std::io::Result<()>;

/// Writes worker `worker`'s open windows of checkpoint `id`, as `walk` hands them out, to their file in the
/// pending checkpoint's folder under `out`, one JSON line each, atomically but not durably (the manifest that
/// takes them in is durable; see `durable::replace_with`); returns how many.
pub fn write_open(
    out: &Path,
    id: u64,
    worker: usize,
    walk: impl FnOnce(Visit<'_>) -> std::io::Result<()>,
) -> Result<usize> {
    let pending = pending_dir(out, id);
    std::fs::create_dir_all(&pending).with_context(|| format!("cannot create {}", pending.display()))?;
    let path = path(&pending, worker);
    let mut count = 0;
    replace_with(&path, |w| {
        walk(&mut |window| {
            serde_json::to_writer(&mut *w, &WindowCheckpoint::from(&window))?;
            count += 1;
            w.write_all(b"\n")
        })
    })
    .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(count)
}

/// Writes `windows` as [`write_open`] does (tests build parts with it).
#[cfg(test)]
pub fn write(out: &Path, id: u64, worker: usize, windows: &[OpenWindow]) -> Result<usize> {
    write_open(out, id, worker, |each| windows.iter().try_for_each(|w| each(w.clone())))
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
