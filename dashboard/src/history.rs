//! The per-device history read from the Parquet output: `<data>/parquet/device_id=<escaped id>/*.parquet`, in
//! the layout and schema of [`model::history`]. The only path ever built from a device id goes through
//! [`model::partition::partition_dir_name`], so no id can name a file outside its partition folder. Hidden
//! in-progress files (`.` or `_` prefix) are never read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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

/// Reads the final windows of one device from the Parquet history under `parquet_root`.
///
/// A device without a partition folder has no final window yet: that is an empty answer, not an error.
/// Files whose statistics put them outside `from`/`to` are not read, and files are read newest first so that a
/// `limit` stops the scan once older files cannot matter: of a long history only the footers of the older
/// files are read.
/// Blocking: call from a blocking context.
pub fn read_history(parquet_root: &Path, query: &HistoryQuery) -> Result<History, HistoryError> {
    let dir = parquet_root.join(partition_dir_name(&query.device_id));
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(History::default()),
        Err(source) => return Err(HistoryError::ListPartition { path: dir, source }),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| HistoryError::ListPartition {
            path: dir.clone(),
            source,
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_committed_file(name) && entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            paths.push(entry.path());
        }
    }
    paths.sort();

    let mut history = History::default();
    let skip = |path: &Path, why: String, problems: &mut Vec<String>| {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        tracing::warn!(file = %path.display(), error = %why, "skipping unreadable history file");
        problems.push(format!("{name}: {why}"));
    };
    let mut files = Vec::new();
    for path in paths {
        match PartFile::open(path.clone()) {
            Ok(file) if file.may_overlap(query) => files.push(file),
            Ok(_) => {}
            Err(why) => skip(&path, why, &mut history.problems),
        }
    }
    files.sort_by_key(|f| std::cmp::Reverse(f.max_start));

    let mut rows = Vec::new();
    for file in &files {
        if rows.len() >= query.limit && file.max_start < nth_newest_start(&rows, query.limit) {
            // Every remaining file holds only windows older than the `limit` newest already found.
            history.truncated = true;
            break;
        }
        if let Err(why) = file.read_rows(query, &mut rows) {
            skip(&file.path, why, &mut history.problems);
        }
    }
    rows.sort_by_key(|r: &Aggregate| (r.window_start, r.window_end));
    if rows.len() > query.limit {
        rows.drain(..rows.len() - query.limit);
        history.truncated = true;
    }
    history.rows = rows;
    Ok(history)
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
    /// Smallest `window_start`, epoch ms (`i64::MIN` when the statistics do not say).
    min_start: i64,
    /// Largest `window_start`, epoch ms (`i64::MAX` when the statistics do not say).
    max_start: i64,
    /// Largest `window_end`, epoch ms (`i64::MAX` when the statistics do not say).
    max_end: i64,
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
            min_start,
            max_start,
            max_end,
        })
    }

    /// Whether a window of this file can overlap `[from, to)`.
    fn may_overlap(&self, query: &HistoryQuery) -> bool {
        query.overlaps(self.min_start, self.max_end)
    }

    /// Appends the matching rows of this file to `out`. On error nothing of this file is appended.
    fn read_rows(&self, query: &HistoryQuery, out: &mut Vec<Aggregate>) -> Result<(), String> {
        let file = fs::File::open(&self.path).map_err(|e| e.to_string())?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.metadata.clone())
            .with_batch_size(8192)
            .build()
            .map_err(|e| format!("not a readable Parquet file: {e}"))?;
        let mut rows = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| format!("cannot decode: {e}"))?;
            let batch_rows = model::history::from_batch(&batch, &query.device_id).map_err(|e| e.to_string())?;
            rows.extend(batch_rows.into_iter().filter(|r| {
                let ms = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
                query.overlaps(ms(r.window_start), ms(r.window_end))
            }));
        }
        out.append(&mut rows);
        Ok(())
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
        let h = read_history(&root, &q).unwrap();
        assert!(h.rows.is_empty() && h.problems.is_empty() && !h.truncated);
    }
}
