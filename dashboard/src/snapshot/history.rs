//! The per-device history read from the Parquet output: `<data>/parquet/device_id=<escaped id>/*.parquet`, in
//! the layout and schema of [`model::history`], whose reader lists and opens the files. The only path ever built
//! from a device id goes through [`model::partition::partition_dir_name`], so no id can name a file outside its
//! partition folder. Hidden in-progress files (`.` or `_` prefix) are never read, and a folder that compaction
//! swaps during a request is read again ([`model::history::read_folder`]). The span of every file's windows (from
//! its footer's statistics) and the rows of the files read lately are kept in a [`SpanCache`], keyed by the
//! file's folder, name and inode (all from the folder listing: no file is opened or even `stat`ed to look it up),
//! so a request over thousands of files lists the folder and opens none of the files it has seen before.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use model::Aggregate;
use model::history::{HistoryFile, ListedFile, ReadError, WindowSpan, read_folder};
use model::partition::partition_dir_name;

/// Rows answered when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 10_000;
/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 100_000;

/// One history request, already validated.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryQuery {
    /// The device, exactly as in the data.
    pub device_id: String,
    /// Keep windows that end after this instant (epoch ms).
    pub from_ms: Option<i64>,
    /// Keep windows that start before this instant (epoch ms).
    pub to_ms: Option<i64>,
    /// Keep at most this many of the newest matching windows.
    pub limit: usize,
}

impl HistoryQuery {
    /// Whether the span `[start, end)` (epoch ms) overlaps `[from, to)`.
    fn overlaps(&self, start: i64, end: i64) -> bool {
        !(self.from_ms.is_some_and(|from| end <= from) || self.to_ms.is_some_and(|to| start >= to))
    }
}

/// The answer: final windows sorted by start, plus the files that could not be read.
#[derive(Debug, Default)]
pub struct History {
    /// Matching windows, oldest first.
    pub rows: Vec<Aggregate>,
    /// True when older matching windows were (or, for files not opened, may have been) left out because of
    /// `limit`.
    pub truncated: bool,
    /// Files skipped, each with the reason (the rows of the other files are still answered).
    pub problems: Vec<String>,
}

/// Why a history request cannot be answered at all.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The partition folder exists but cannot be listed, or its files kept vanishing under the reads.
    #[error(transparent)]
    Folder(#[from] ReadError),
}

/// What the history reader keeps of the files it has seen: the span of each file's windows and, for the files
/// read lately, their rows. A file is known by its folder, name and inode: a committed history file is never
/// rewritten in place (it is written under a hidden name and renamed; compaction writes new names), and a file
/// replaced by a rename gets a new inode. Bounded: past [`SpanCache::CAPACITY`] files, or
/// [`SpanCache::ROWS`] cached rows, it starts over.
#[derive(Default)]
pub struct SpanCache {
    files: Mutex<HashMap<PathBuf, HashMap<FileKey, Known>>>,
}

/// A file of a device folder: its name and inode.
type FileKey = (String, u64);

/// What is known of one file.
struct Known {
    span: WindowSpan,
    /// Its rows, when it was read lately.
    rows: Option<Arc<Vec<Aggregate>>>,
}

/// Counts of what the cache holds.
struct Held {
    files: usize,
    rows: usize,
}

impl SpanCache {
    /// Files known at most (about 100 bytes each).
    pub const CAPACITY: usize = 1_000_000;
    /// Rows kept at most (about 200 bytes each).
    pub const ROWS: usize = 200_000;

    /// What is known of the files of `dir`, by key, taken out until [`SpanCache::remember`] puts it back (a
    /// request for the same device meanwhile finds nothing and reads the footers itself).
    fn take(&self, dir: &Path) -> HashMap<FileKey, Known> {
        let mut files = self.files.lock().expect("not poisoned");
        files.remove(dir).unwrap_or_default()
    }

    /// Remembers the files of `dir` now known (the folder's map is replaced: files gone from it are forgotten; a
    /// folder without files, such as that of a device asked for but unknown, is not kept).
    fn remember(&self, dir: &Path, known: HashMap<FileKey, Known>) {
        if known.is_empty() {
            return;
        }
        let mut files = self.files.lock().expect("not poisoned");
        files.insert(dir.to_path_buf(), known);
        let held = Self::held(&files);
        if held.files > Self::CAPACITY {
            files.clear();
        } else if held.rows > Self::ROWS {
            for k in files.values_mut().flat_map(|m| m.values_mut()) {
                k.rows = None;
            }
        }
    }

    fn held(files: &HashMap<PathBuf, HashMap<FileKey, Known>>) -> Held {
        let mut held = Held { files: 0, rows: 0 };
        for k in files.values().flat_map(|m| m.values()) {
            held.files += 1;
            held.rows += k.rows.as_ref().map_or(0, |r| r.len());
        }
        held
    }

    /// Files known.
    pub fn len(&self) -> usize {
        Self::held(&self.files.lock().expect("not poisoned")).files
    }

    /// No file known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads the final windows of one device from the Parquet history under `parquet_root`.
///
/// A device without a partition folder has no final window yet: that is an empty answer, not an error.
/// Files whose statistics put them outside `from`/`to` are not read, and files are read newest first so that a
/// `limit` stops the scan once older files cannot matter: of a long history only the spans of the older files
/// are looked at, from `spans` when they were seen before.
/// Blocking: call from a blocking context.
pub fn read_history(parquet_root: &Path, query: &HistoryQuery, cache: &SpanCache) -> Result<History, HistoryError> {
    let dir = parquet_root.join(partition_dir_name(&query.device_id));
    // A file that vanishes between the listing and its reading was compacted away (the folder was swapped for
    // its compacted version): the whole folder is listed and read again, so no window is missed or read twice.
    Ok(read_folder(&dir, |listed| read_listed(&dir, listed, query, cache))?)
}

/// One read of the device's folder as `listed`. Unreadable files are skipped and named in the answer; the only
/// error is a listed file gone ([`ReadError::is_vanished`]), which makes [`read_folder`] list the folder again.
fn read_listed(
    dir: &Path,
    listed: Vec<ListedFile>,
    query: &HistoryQuery,
    cache: &SpanCache,
) -> Result<History, ReadError> {
    let mut history = History::default();
    let mut before = cache.take(dir);
    let mut now: HashMap<FileKey, Known> = HashMap::with_capacity(listed.len());
    // Footers this request has read of the files it will read, so that no footer is read twice.
    let mut opened: HashMap<FileKey, HistoryFile> = HashMap::new();
    let mut candidates: Vec<(FileKey, WindowSpan)> = Vec::new();
    for file in listed {
        let key = (file.name, file.inode);
        let (known, footer) = match before.remove(&key) {
            Some(k) => (k, None),
            None => match HistoryFile::open(&file.path) {
                Ok(footer) => {
                    let span = footer.window_span();
                    (Known { span, rows: None }, Some(footer))
                }
                Err(e) if e.is_vanished() => return Err(e),
                Err(e) => {
                    skip(&file.path, &e, &mut history.problems);
                    continue;
                }
            },
        };
        if query.overlaps(known.span.min_start, known.span.max_end) {
            candidates.push((key.clone(), known.span));
            if let Some(footer) = footer {
                opened.insert(key.clone(), footer);
            }
        }
        now.insert(key, known);
    }
    candidates.sort_by_key(|(_, span)| std::cmp::Reverse(span.max_start));

    let mut rows = Vec::new();
    for (key, span) in candidates {
        if rows.len() >= query.limit && span.max_start < nth_newest_start(&rows, query.limit) {
            // Every remaining file holds only windows older than the `limit` newest already found.
            history.truncated = true;
            break;
        }
        let known = now.get_mut(&key).expect("listed");
        let file_rows = match &known.rows {
            Some(r) => Arc::clone(r),
            None => {
                let path = dir.join(&key.0);
                let read = match opened.remove(&key) {
                    Some(footer) => Ok(footer),
                    None => HistoryFile::open(&path),
                }
                .and_then(|f| f.read_aggregates(&query.device_id));
                match read {
                    Ok(r) => {
                        let r = Arc::new(r);
                        known.rows = Some(Arc::clone(&r));
                        r
                    }
                    Err(e) if e.is_vanished() => return Err(e),
                    Err(e) => {
                        skip(&path, &e, &mut history.problems);
                        continue;
                    }
                }
            }
        };
        let ms = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
        rows.extend(
            file_rows
                .iter()
                .filter(|r| query.overlaps(ms(r.window_start), ms(r.window_end)))
                .cloned(),
        );
    }
    cache.remember(dir, now);
    rows.sort_by_key(|r: &Aggregate| (r.window_start, r.window_end));
    if rows.len() > query.limit {
        rows.drain(..rows.len() - query.limit);
        history.truncated = true;
    }
    history.rows = rows;
    Ok(history)
}

/// Notes an unreadable file: logged with its path, answered as `<name>: <why>` (no path of the server's).
fn skip(path: &Path, error: &ReadError, problems: &mut Vec<String>) {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let why = error
        .file_error()
        .map_or_else(|| error.to_string(), ToString::to_string);
    tracing::warn!(file = %path.display(), error = %why, "skipping unreadable history file");
    problems.push(format!("{name}: {why}"));
}

/// The `n`-th largest window start among `rows` (`rows.len() >= n >= 1`), as the signed time of the statistics.
fn nth_newest_start(rows: &[Aggregate], n: usize) -> i64 {
    let mut starts: Vec<u64> = rows.iter().map(|r| r.window_start).collect();
    let (_, nth, _) = starts.select_nth_unstable_by(n - 1, |a, b| b.cmp(a));
    i64::try_from(*nth).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_without_history_is_an_empty_answer() {
        let root = std::env::temp_dir().join(format!("dashboard-history-none-{}", std::process::id()));
        let q = HistoryQuery {
            device_id: "../../etc/passwd".into(),
            from_ms: None,
            to_ms: None,
            limit: DEFAULT_LIMIT,
        };
        let h = read_history(&root, &q, &SpanCache::default()).unwrap();
        assert!(h.rows.is_empty() && h.problems.is_empty() && !h.truncated);
    }
}
