//! The per-device history read from the Parquet output: `<data>/parquet/device_id=<escaped id>/*.parquet`, in
//! the layout and schema of [`model::history`]. The only path ever built from a device id goes through
//! [`model::partition::partition_dir_name`], so no id can name a file outside its partition folder. Hidden
//! in-progress files (`.` or `_` prefix) are never read. The span of every file's windows (from its footer's
//! statistics) and the rows of the files read lately are kept in a [`SpanCache`], keyed by the file's folder,
//! name and inode (all from the folder listing: no file is opened or even `stat`ed to look it up), so a request
//! over thousands of files lists the folder and opens none of the files it has seen before.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, TimeUnit};
use model::Aggregate;
use model::history::{WINDOW_END, WINDOW_START, is_committed_file};
use model::partition::partition_dir_name;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::file::statistics::Statistics;

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
    /// The partition folder exists but cannot be listed.
    #[error("cannot list {path}: {source}")]
    ListPartition {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
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
    span: Span,
    /// Its rows, when it was read lately.
    rows: Option<Arc<Vec<Aggregate>>>,
}

/// The span of one file's windows, epoch ms, from its footer's statistics (`i64::MIN`/`i64::MAX` where they do
/// not say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    min_start: i64,
    max_start: i64,
    max_end: i64,
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

    /// Remembers the files of `dir` now known (the folder's map is replaced: files gone from it are forgotten).
    fn remember(&self, dir: &Path, known: HashMap<FileKey, Known>) {
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
    // A file that vanishes between the listing and its reading was compacted away (the folder was swapped for
    // its compacted version): the whole folder is read again, so no window is missed or read twice.
    for _ in 1..READ_ATTEMPTS {
        if let Some(history) = read_once(parquet_root, query, cache)? {
            return Ok(history);
        }
    }
    read_once(parquet_root, query, cache)?.ok_or_else(|| HistoryError::ListPartition {
        path: parquet_root.join(partition_dir_name(&query.device_id)),
        source: io::Error::other(format!("the folder changed under {READ_ATTEMPTS} reads in a row")),
    })
}

/// Reads of a folder that changes under them before a request gives up.
const READ_ATTEMPTS: usize = 5;

/// One read of the device's folder; `None` when a listed file vanished before it was read.
fn read_once(parquet_root: &Path, query: &HistoryQuery, cache: &SpanCache) -> Result<Option<History>, HistoryError> {
    let dir = parquet_root.join(partition_dir_name(&query.device_id));
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(History::default())),
        Err(source) => return Err(HistoryError::ListPartition { path: dir, source }),
    };
    let mut listed: Vec<FileKey> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| HistoryError::ListPartition {
            path: dir.clone(),
            source,
        })?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if is_committed_file(&name) && entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            listed.push((name, inode(&entry)));
        }
    }

    let mut history = History::default();
    let skip = |path: &Path, why: String, problems: &mut Vec<String>| {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        tracing::warn!(file = %path.display(), error = %why, "skipping unreadable history file");
        problems.push(format!("{name}: {why}"));
    };
    let mut before = cache.take(&dir);
    let mut now: HashMap<FileKey, Known> = HashMap::with_capacity(listed.len());
    let mut candidates: Vec<(FileKey, Span)> = Vec::new();
    for key in listed {
        let known = match before.remove(&key) {
            Some(k) => k,
            None => match PartFile::open(dir.join(&key.0)) {
                Ok(file) => Known {
                    span: file.span,
                    rows: None,
                },
                Err(_) if !dir.join(&key.0).exists() => return Ok(None),
                Err(why) => {
                    skip(&dir.join(&key.0), why, &mut history.problems);
                    continue;
                }
            },
        };
        if query.overlaps(known.span.min_start, known.span.max_end) {
            candidates.push((key.clone(), known.span));
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
                match PartFile::open(path.clone()).and_then(|f| f.read_rows(&query.device_id)) {
                    Ok(r) => {
                        let r = Arc::new(r);
                        known.rows = Some(Arc::clone(&r));
                        r
                    }
                    Err(_) if !path.exists() => return Ok(None),
                    Err(why) => {
                        skip(&path, why, &mut history.problems);
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
    cache.remember(&dir, now);
    rows.sort_by_key(|r: &Aggregate| (r.window_start, r.window_end));
    if rows.len() > query.limit {
        rows.drain(..rows.len() - query.limit);
        history.truncated = true;
    }
    history.rows = rows;
    Ok(Some(history))
}

/// The inode of a listed file (from the listing itself; 0 where the platform has none).
fn inode(entry: &fs::DirEntry) -> u64 {
    #[cfg(unix)]
    return std::os::unix::fs::DirEntryExt::ino(entry);
    #[cfg(not(unix))]
    return 0;
}

/// The `n`-th largest window start among `rows` (`rows.len() >= n >= 1`), as the signed time of the statistics.
fn nth_newest_start(rows: &[Aggregate], n: usize) -> i64 {
    let mut starts: Vec<u64> = rows.iter().map(|r| r.window_start).collect();
    let (_, nth, _) = starts.select_nth_unstable_by(n - 1, |a, b| b.cmp(a));
    i64::try_from(*nth).unwrap_or(i64::MAX)
}

/// One history file whose footer has been read: its schema and the span of its windows.
struct PartFile {
    path: PathBuf,
    metadata: ArrowReaderMetadata,
    span: Span,
}

impl PartFile {
    /// Reads the footer only.
    fn open(path: PathBuf) -> Result<PartFile, String> {
        let file = fs::File::open(&path).map_err(|e| e.to_string())?;
        let metadata = ArrowReaderMetadata::load(&file, Default::default())
            .map_err(|e| format!("not a readable Parquet file: {e}"))?;
        let (min_start, max_start) = column_span(&metadata, WINDOW_START);
        let (_, max_end) = column_span(&metadata, WINDOW_END);
        Ok(PartFile {
            path,
            metadata,
            span: Span {
                min_start,
                max_start,
                max_end,
            },
        })
    }

    /// Every row of this file (of `device_id`).
    fn read_rows(&self, device_id: &str) -> Result<Vec<Aggregate>, String> {
        let file = fs::File::open(&self.path).map_err(|e| e.to_string())?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.metadata.clone())
            .with_batch_size(8192)
            .build()
            .map_err(|e| format!("not a readable Parquet file: {e}"))?;
        let mut rows = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| format!("cannot decode: {e}"))?;
            rows.extend(model::history::from_batch(&batch, device_id).map_err(|e| e.to_string())?);
        }
        Ok(rows)
    }
}

/// Min and max of a time column over all row groups, in epoch ms, from the footer's statistics. Unknown ends
/// (no statistics, an unexpected type) widen to `i64::MIN`/`i64::MAX`, so a file is never wrongly skipped.
fn column_span(metadata: &ArrowReaderMetadata, name: &str) -> (i64, i64) {
    const UNKNOWN: (i64, i64) = (i64::MIN, i64::MAX);
    let to_ms: fn(i64) -> i64 = match metadata.schema().field_with_name(name).map(|f| f.data_type()) {
        Ok(DataType::Timestamp(TimeUnit::Second, _)) => |v| v.saturating_mul(1000),
        Ok(DataType::Timestamp(TimeUnit::Millisecond, _)) | Ok(DataType::Int64) => |v| v,
        Ok(DataType::Timestamp(TimeUnit::Microsecond, _)) => |v| v.div_euclid(1000),
        Ok(DataType::Timestamp(TimeUnit::Nanosecond, _)) => |v| v.div_euclid(1_000_000),
        _ => return UNKNOWN,
    };
    let parquet = metadata.metadata();
    let Some(index) = parquet
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().parts() == [name])
    else {
        return UNKNOWN;
    };
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for group in parquet.row_groups() {
        match group.column(index).statistics() {
            Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(min), Some(max)) => {
                    lo = lo.min(to_ms(*min));
                    // Rounding down a sub-millisecond maximum could skip its row: widen by one.
                    hi = hi.max(to_ms(*max).saturating_add(1));
                }
                _ => return UNKNOWN,
            },
            _ => return UNKNOWN,
        }
    }
    if lo > hi { UNKNOWN } else { (lo, hi) }
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
