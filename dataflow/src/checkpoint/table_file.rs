//! The versioned table of a job with a temporal join, as each join operator saves it for a checkpoint:
//! `_checkpoints/table/table-<id>-w<j>.jsonl`, one per worker, written durably when the join sends marker `id`
//! on (before the window operators can align it, so before manifest `id` can commit). The first line is where
//! the table's source stood in each partition as that operator had heard ([`Header`]); then one [`Saved`]
//! version per line; a last line `{"end": <versions>}` shows the file is whole. A restore takes the union of a
//! checkpoint's files (any `-w` wrote them) and resumes each table partition at the lowest position any of them
//! had heard: the versions between that and the others' positions are read again, which changes nothing (a
//! version applied twice is the same version). The files are not merged into the manifest: the table is small
//! beside the stream, and keeping it apart leaves the manifest's format as it is.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use model::value::Value;
use serde::{Deserialize, Serialize};

use crate::checkpoint::layout;
use crate::messages::JoinCounts;
use crate::runtime::durable::write_atomic_with;

/// Where the join operator of worker `worker` had heard the table's source stand, per partition, and its
/// counters.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Header {
    progress: BTreeMap<i32, i64>,
    #[serde(default)]
    counts: JoinCounts,
}

/// One saved version.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Saved {
    /// The primary key.
    pub key: Value,
    /// The version time, epoch ms.
    pub time: u64,
    /// The row (`None`: deleted).
    pub row: Option<Vec<Value>>,
}

/// The last line of a whole file.
#[derive(Debug, Serialize, Deserialize)]
struct End {
    end: usize,
}

/// A checkpoint's versioned table, from every worker's file.
#[derive(Debug, Default)]
pub struct TableSnapshot {
    /// Every version, by the worker whose file held it (in worker order).
    pub versions: Vec<Vec<Saved>>,
    /// Per table partition, the position to resume reading at.
    pub resume: BTreeMap<i32, i64>,
    /// The join operators' counters, summed (the versions and keys held aside).
    pub counts: JoinCounts,
}

fn file_name(id: u64, worker: usize) -> String {
    format!("table-{id:020}-w{worker}.jsonl")
}

/// Writes worker `worker`'s versions of checkpoint `id`, as `walk` hands them out, durably; returns how many.
pub fn write(
    out: &Path,
    id: u64,
    worker: usize,
    progress: &BTreeMap<i32, i64>,
    counts: JoinCounts,
    walk: impl FnOnce(&mut dyn FnMut(&Value, u64, Option<&[Value]>) -> std::io::Result<()>) -> std::io::Result<()>,
) -> Result<usize> {
    let dir = layout::table_dir(out);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(file_name(id, worker));
    let mut count = 0;
    write_atomic_with(&path, |w| {
        serde_json::to_writer(
            &mut *w,
            &Header {
                progress: progress.clone(),
                counts,
            },
        )?;
        w.write_all(b"\n")?;
        walk(&mut |key, time, row| {
            serde_json::to_writer(&mut *w, &SavedRef { key, time, row })?;
            count += 1;
            w.write_all(b"\n")
        })?;
        serde_json::to_writer(&mut *w, &End { end: count })?;
        w.write_all(b"\n")
    })
    .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(count)
}

#[derive(Serialize)]
struct SavedRef<'a> {
    key: &'a Value,
    time: u64,
    row: Option<&'a [Value]>,
}

/// The versioned table of checkpoint `id`, written by `workers` workers; an error names what is missing.
pub fn read(out: &Path, id: u64, workers: usize) -> Result<TableSnapshot> {
    let dir = layout::table_dir(out);
    let mut snapshot = TableSnapshot::default();
    for worker in 0..workers {
        let path = dir.join(file_name(id, worker));
        let (header, versions) = read_one(&path).with_context(|| {
            format!(
                "checkpoint {id} lacks the versioned table's state of worker {worker} ({}); start the job with --fresh",
                path.display()
            )
        })?;
        snapshot.counts.unmatched += header.counts.unmatched;
        snapshot.counts.dropped += header.counts.dropped;
        snapshot.counts.filtered += header.counts.filtered;
        for (p, at) in header.progress {
            let lowest = snapshot.resume.entry(p).or_insert(at);
            *lowest = (*lowest).min(at);
        }
        snapshot.versions.push(versions);
    }
    Ok(snapshot)
}

fn read_one(path: &Path) -> Result<(Header, Vec<Saved>)> {
    let mut lines = BufReader::new(File::open(path)?).lines();
    let header: Header = serde_json::from_str(&lines.next().context("empty")??)?;
    let mut versions = Vec::new();
    for line in lines {
        let line = line?;
        if let Ok(end) = serde_json::from_str::<End>(&line) {
            if end.end != versions.len() {
                bail!("it ends after {} versions but says {}", versions.len(), end.end);
            }
            return Ok((header, versions));
        }
        versions.push(serde_json::from_str(&line)?);
    }
    bail!("it is cut short (no end line)")
}

/// Deletes worker `worker`'s files of checkpoints before `below` (no restore can go back to them).
pub fn prune(out: &Path, worker: usize, below: u64) {
    let suffix = format!("-w{worker}.jsonl");
    for entry in std::fs::read_dir(layout::table_dir(out))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let id = name
            .strip_prefix("table-")
            .and_then(|rest| rest.strip_suffix(&suffix))
            .and_then(|id| id.parse::<u64>().ok());
        if id.is_some_and(|id| id < below) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The file of worker `worker`'s versions of checkpoint `id`.
#[cfg(test)]
pub fn path(out: &Path, id: u64, worker: usize) -> PathBuf {
    layout::table_dir(out).join(file_name(id, worker))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(out: &Path, id: u64, worker: usize, progress: &[(i32, i64)], versions: &[(&str, u64, Option<&str>)]) {
        let progress: BTreeMap<i32, i64> = progress.iter().copied().collect();
        let rows: Vec<(Value, u64, Option<Vec<Value>>)> = versions
            .iter()
            .map(|(k, t, r)| (Value::Text((*k).into()), *t, r.map(|s| vec![Value::Text(s.into())])))
            .collect();
        let counts = JoinCounts {
            unmatched: id,
            ..Default::default()
        };
        write(out, id, worker, &progress, counts, |each| {
            rows.iter().try_for_each(|(k, t, r)| each(k, *t, r.as_deref()))
        })
        .unwrap();
    }

    /// A fresh folder of this test's own.
    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("table-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_checkpoints_files_read_back_as_their_union_resuming_at_the_lowest_position() {
        let dir = folder("union");
        save(
            dir.as_path(),
            4,
            0,
            &[(0, 10), (1, 7)],
            &[("a", 1, Some("x")), ("a", 5, None)],
        );
        save(dir.as_path(), 4, 1, &[(0, 12), (1, 5)], &[("b", 2, Some("y"))]);
        let s = read(dir.as_path(), 4, 2).unwrap();
        assert_eq!(s.resume, BTreeMap::from([(0, 10), (1, 5)]));
        assert_eq!(s.counts.unmatched, 8, "each file's counters (4 each), summed");
        assert_eq!(s.versions.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(s.versions[0][1].row, None, "a deletion reads back as one");
        let e = read(dir.as_path(), 4, 3).unwrap_err();
        assert!(format!("{e:#}").contains("worker 2"), "{e:#}");
    }

    #[test]
    fn a_file_cut_short_is_refused_and_old_files_are_pruned() {
        let dir = folder("cut");
        save(
            dir.as_path(),
            3,
            0,
            &[(0, 1)],
            &[("a", 1, Some("x")), ("b", 1, Some("y"))],
        );
        let p = path(dir.as_path(), 3, 0);
        let text = std::fs::read_to_string(&p).unwrap();
        let cut: Vec<&str> = text.lines().take(2).collect();
        std::fs::write(&p, cut.join("\n")).unwrap();
        assert!(format!("{:#}", read(dir.as_path(), 3, 1).unwrap_err()).contains("cut short"));
        save(dir.as_path(), 5, 0, &[], &[]);
        prune(dir.as_path(), 0, 5);
        assert!(!p.exists());
        assert!(path(dir.as_path(), 5, 0).exists());
    }
}
