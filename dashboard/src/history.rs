//! The per-device history read from the Parquet output: `<data>/parquet/device_id=<escaped id>/*.parquet`.
//! The only path ever built from a device id goes through [`model::partition::partition_dir_name`], so no id
//! can name a file outside its partition folder. Hidden in-progress files (`.` or `_` prefix) are never read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType};
use model::Aggregate;
use model::partition::{PARTITION_COLUMN, partition_dir_name};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Folder of the Parquet history inside `--data`.
pub const PARQUET_DIR: &str = "parquet";
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

/// The answer: final windows sorted by start, plus the files that could not be read.
#[derive(Debug, Default)]
pub struct History {
    /// Matching windows, oldest first.
    pub rows: Vec<Aggregate>,
    /// True when older matching windows were left out because of `limit`.
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
/// Blocking: call from a blocking context.
pub fn read_history(parquet_root: &Path, query: &HistoryQuery) -> Result<History, HistoryError> {
    let dir = parquet_root.join(partition_dir_name(&query.device_id));
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(History::default()),
        Err(source) => return Err(HistoryError::ListPartition { path: dir, source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| HistoryError::ListPartition {
            path: dir.clone(),
            source,
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_committed_part(name) && entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            files.push(entry.path());
        }
    }
    files.sort();

    let mut history = History::default();
    for file in &files {
        match read_file(file, query, &mut history.rows) {
            Ok(()) => {}
            Err(why) => {
                let name = file.file_name().unwrap_or_default().to_string_lossy();
                tracing::warn!(file = %file.display(), error = %why, "skipping unreadable history file");
                history.problems.push(format!("{name}: {why}"));
            }
        }
    }
    history.rows.sort_by_key(|r| (r.window_start, r.window_end));
    if history.rows.len() > query.limit {
        history.rows.drain(..history.rows.len() - query.limit);
        history.truncated = true;
    }
    Ok(history)
}

/// A committed data file: not hidden or in progress (`.x`, `_x`), and a Parquet file by name.
pub fn is_committed_part(name: &str) -> bool {
    !name.starts_with('.') && !name.starts_with('_') && name.ends_with(".parquet")
}

/// Appends the matching rows of one file to `out`. On error nothing of this file is appended.
fn read_file(path: &Path, query: &HistoryQuery, out: &mut Vec<Aggregate>) -> Result<(), String> {
    let file = fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(8192).build())
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("cannot decode: {e}"))?;
        collect_rows(&batch, query, &mut rows)?;
    }
    out.append(&mut rows);
    Ok(())
}

/// The columns of one batch, normalised to the types of the contract.
struct Columns {
    device_id: Option<ArrayRef>,
    window_start: ArrayRef,
    window_end: ArrayRef,
    count: ArrayRef,
    avg_temperature: ArrayRef,
    avg_humidity: ArrayRef,
    min_battery: ArrayRef,
    max_battery: ArrayRef,
    stddev_temperature: ArrayRef,
    warn_count: ArrayRef,
    error_count: ArrayRef,
}

fn column(batch: &RecordBatch, name: &str) -> Result<ArrayRef, String> {
    batch
        .column_by_name(name)
        .cloned()
        .ok_or_else(|| format!("column `{name}` is missing"))
}

fn as_type(array: &ArrayRef, name: &str, to: &DataType) -> Result<ArrayRef, String> {
    if array.data_type() == to {
        return Ok(Arc::clone(array));
    }
    cast(array, to).map_err(|e| format!("column `{name}` is {}: {e}", array.data_type()))
}

/// Event times as epoch milliseconds, whatever the stored unit: any timestamp unit (its zone kept, so the
/// instant is not shifted) or a plain integer of milliseconds.
fn as_millis(array: &ArrayRef, name: &str) -> Result<ArrayRef, String> {
    match array.data_type() {
        DataType::Timestamp(_, tz) => {
            let ms = as_type(
                array,
                name,
                &DataType::Timestamp(TimeUnit::Millisecond, tz.clone()),
            )?;
            let values = ms
                .as_primitive::<TimestampMillisecondType>()
                .reinterpret_cast::<Int64Type>();
            Ok(Arc::new(values))
        }
        DataType::Int64 | DataType::Int32 | DataType::UInt64 | DataType::UInt32 => {
            as_type(array, name, &DataType::Int64)
        }
        other => Err(format!("column `{name}` is {other}, not a timestamp")),
    }
}

impl Columns {
    fn of(batch: &RecordBatch) -> Result<Columns, String> {
        let f64_col = |name: &str| as_type(&column(batch, name)?, name, &DataType::Float64);
        let i64_col = |name: &str| as_type(&column(batch, name)?, name, &DataType::Int64);
        let time_col = |name: &str| as_millis(&column(batch, name)?, name);
        let device_id = match batch.column_by_name(PARTITION_COLUMN) {
            Some(a) => Some(as_type(a, PARTITION_COLUMN, &DataType::Utf8)?),
            None => None,
        };
        Ok(Columns {
            device_id,
            window_start: time_col("window_start")?,
            window_end: time_col("window_end")?,
            count: i64_col("count")?,
            avg_temperature: f64_col("avg_temperature")?,
            avg_humidity: f64_col("avg_humidity")?,
            min_battery: f64_col("min_battery")?,
            max_battery: f64_col("max_battery")?,
            stddev_temperature: f64_col("stddev_temperature")?,
            warn_count: i64_col("warn_count")?,
            error_count: i64_col("error_count")?,
        })
    }
}

fn collect_rows(
    batch: &RecordBatch,
    query: &HistoryQuery,
    out: &mut Vec<Aggregate>,
) -> Result<(), String> {
    let c = Columns::of(batch)?;
    let ids = c.device_id.as_ref().map(|a| a.as_string::<i32>());
    let start = c.window_start.as_primitive::<Int64Type>();
    let end = c.window_end.as_primitive::<Int64Type>();
    let int = |a: &ArrayRef, i: usize| {
        let a = a.as_primitive::<Int64Type>();
        if a.is_null(i) {
            0
        } else {
            u64::try_from(a.value(i)).unwrap_or(0)
        }
    };
    let float = |a: &ArrayRef, i: usize| {
        let a = a.as_primitive::<Float64Type>();
        if a.is_null(i) { f64::NAN } else { a.value(i) }
    };
    for i in 0..batch.num_rows() {
        // The partition folder decides the device; a device_id column, when the writer kept one, must agree.
        if let Some(ids) = ids
            && (ids.is_null(i) || ids.value(i) != query.device_id)
        {
            continue;
        }
        if start.is_null(i) || end.is_null(i) {
            continue;
        }
        let (ws, we) = (start.value(i), end.value(i));
        if query.from_ms.is_some_and(|from| we <= from) || query.to_ms.is_some_and(|to| ws >= to) {
            continue;
        }
        let (Ok(window_start), Ok(window_end)) = (u64::try_from(ws), u64::try_from(we)) else {
            continue;
        };
        out.push(Aggregate {
            device_id: query.device_id.clone(),
            window_start,
            window_end,
            count: int(&c.count, i),
            avg_temperature: float(&c.avg_temperature, i),
            avg_humidity: float(&c.avg_humidity, i),
            min_battery: float(&c.min_battery, i),
            max_battery: float(&c.max_battery, i),
            stddev_temperature: float(&c.stddev_temperature, i),
            warn_count: int(&c.warn_count, i),
            error_count: int(&c.error_count, i),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_committed_parquet_files_are_read() {
        assert!(is_committed_part("part-00001.parquet"));
        assert!(is_committed_part("3f2a-0.parquet"));
        assert!(!is_committed_part(".part-00001.parquet"));
        assert!(!is_committed_part("_inprogress-1.parquet"));
        assert!(!is_committed_part("_SUCCESS"));
        assert!(!is_committed_part("part-00001.parquet.tmp"));
    }

    #[test]
    fn a_device_without_history_is_an_empty_answer() {
        let root =
            std::env::temp_dir().join(format!("dashboard-history-none-{}", std::process::id()));
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
