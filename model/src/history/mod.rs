//! The Parquet history contract, defined once for its writer (the dataflow), its reader (the dashboard) and the
//! tests: the folder, the column names and their Arrow types, aggregates to and from record batches, and the
//! names of part files.
//!
//! Layout: `<out>/parquet/device_id=<escaped id>/part-<checkpoint:012>-<run>-w<worker>-<seq>.parquet` (a roll of
//! the running job) and `day-<YYYY-MM-DD>.parquet` (compaction: every window of that UTC day of `window_start`
//! that compaction took). The device id is the Hive partition column (escaped by [`crate::partition`]) and is not
//! stored inside the files. A file is written under a hidden name and renamed to its committed name when the
//! checkpoint that covers it commits; readers skip every name that starts with `.` or `_`, so they never see a
//! partial or uncommitted file.
//!
//! The Arrow half (schema, conversions) is behind the `arrow` feature, so that crates without Parquet files do
//! not build Arrow; the reading of files (listing a device folder, reading a file into record batches and
//! aggregates, reading a folder again when compaction swapped it meanwhile) is behind the `parquet` feature.

use std::path::Path;

/// Folder of the history inside the dataflow's `--out`.
pub const PARQUET_DIR: &str = "parquet";

/// Window start, `TIMESTAMP(MILLIS, "UTC")`.
pub const WINDOW_START: &str = "window_start";
/// Window end, `TIMESTAMP(MILLIS, "UTC")`.
pub const WINDOW_END: &str = "window_end";
/// Events in the window, `INT64`.
pub const COUNT: &str = "count";
/// Mean temperature, `DOUBLE`.
pub const AVG_TEMPERATURE: &str = "avg_temperature";
/// Mean humidity, `DOUBLE`.
pub const AVG_HUMIDITY: &str = "avg_humidity";
/// Smallest battery level, `DOUBLE`.
pub const MIN_BATTERY: &str = "min_battery";
/// Largest battery level, `DOUBLE`.
pub const MAX_BATTERY: &str = "max_battery";
/// Population standard deviation of temperature, `DOUBLE`.
pub const STDDEV_TEMPERATURE: &str = "stddev_temperature";
/// Events with status `warn`, `INT64`.
pub const WARN_COUNT: &str = "warn_count";
/// Events with status `error`, `INT64`.
pub const ERROR_COUNT: &str = "error_count";

/// The columns of every history file, in file order. The device id is not among them: it is the partition
/// column [`crate::partition::PARTITION_COLUMN`].
pub const COLUMNS: [&str; 10] = [
    WINDOW_START,
    WINDOW_END,
    COUNT,
    AVG_TEMPERATURE,
    AVG_HUMIDITY,
    MIN_BATTERY,
    MAX_BATTERY,
    STDDEV_TEMPERATURE,
    WARN_COUNT,
    ERROR_COUNT,
];

const PART_PREFIX: &str = "part-";
const PARQUET_SUFFIX: &str = ".parquet";
const IN_PROGRESS_SUFFIX: &str = ".inprogress";

/// The name of one part file: `part-{checkpoint:012}-{run}-w{worker}-{seq}.parquet` once committed,
/// `.part-{checkpoint:012}-{run}-w{worker}-{seq}.parquet.inprogress` before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartName {
    /// The checkpoint whose commit makes the file visible.
    pub checkpoint: u64,
    /// The writing process's start time, so that a fresh start never overwrites an older file.
    pub run: u64,
    /// The writing worker.
    pub worker: usize,
    /// The file's number among that worker's files of the run.
    pub seq: u64,
}

impl PartName {
    /// The committed name.
    pub fn file_name(&self) -> String {
        format!(
            "{PART_PREFIX}{:012}-{}-w{}-{}{PARQUET_SUFFIX}",
            self.checkpoint, self.run, self.worker, self.seq
        )
    }

    /// The hidden name the file has until its checkpoint commits.
    pub fn in_progress_name(&self) -> String {
        format!(".{}{IN_PROGRESS_SUFFIX}", self.file_name())
    }

    /// Reads a committed or an in-progress name back. Only the exact spelling [`PartName::file_name`] and
    /// [`PartName::in_progress_name`] produce is accepted (no sign, no other padding, no other prefix).
    pub fn parse(name: &str) -> Option<PartName> {
        let committed = match name.strip_prefix('.') {
            Some(hidden) => hidden.strip_suffix(IN_PROGRESS_SUFFIX)?,
            None => name,
        };
        let fields = committed.strip_prefix(PART_PREFIX)?.strip_suffix(PARQUET_SUFFIX)?;
        let mut fields = fields.split('-');
        let part = PartName {
            checkpoint: fields.next()?.parse().ok()?,
            run: fields.next()?.parse().ok()?,
            worker: fields.next()?.strip_prefix('w')?.parse().ok()?,
            seq: fields.next()?.parse().ok()?,
        };
        // Formatting again rejects what `parse` alone lets through: `+7`, `007`, an unpadded checkpoint.
        (fields.next().is_none() && part.file_name() == committed).then_some(part)
    }
}

const DAY_PREFIX: &str = "day-";

/// The name of a compacted file: every window of one device whose `window_start` falls on UTC day `day` (days
/// since 1970-01-01) that compaction has taken, `day-YYYY-MM-DD.parquet`.
pub fn day_file_name(day: i64) -> String {
    let date = chrono::DateTime::from_timestamp(day * 86_400, 0)
        .unwrap_or_default()
        .date_naive();
    format!("{DAY_PREFIX}{}{PARQUET_SUFFIX}", date.format("%Y-%m-%d"))
}

/// The UTC day (days since 1970-01-01) a compacted file's name says, if it is one ([`day_file_name`]'s spelling).
pub fn parse_day_file_name(name: &str) -> Option<i64> {
    let date = name.strip_prefix(DAY_PREFIX)?.strip_suffix(PARQUET_SUFFIX)?;
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let days = day.signed_duration_since(chrono::NaiveDate::default()).num_days();
    (day_file_name(days) == name).then_some(days)
}

/// The UTC day (days since 1970-01-01) of an instant in epoch milliseconds.
pub fn utc_day(ms: u64) -> i64 {
    (ms / 86_400_000) as i64
}

/// A name readers skip: it starts with `.` or `_` (in-progress files, `_SUCCESS` markers and the like).
pub fn is_hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

/// An in-progress file of the two-phase commit: hidden by a leading `.` and ending in `.inprogress`. Any name
/// between counts, so that recovery also removes leftovers whose part name does not parse.
pub fn is_in_progress(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(IN_PROGRESS_SUFFIX)
}

/// A file readers take as part of the history: not hidden, and a `.parquet` file. Any writer's file counts, not
/// only names of [`PartName`]'s form, as with pyarrow and DuckDB reading the folder.
pub fn is_committed_file(name: &str) -> bool {
    !is_hidden(name) && name.ends_with(PARQUET_SUFFIX)
}

/// The device a partition folder of the history holds: its name `device_id=<escaped id>` with the value
/// unescaped ([`crate::partition::unescape_partition_value`]); `None` for a folder of any other name.
pub fn device_of(folder: &Path) -> Option<String> {
    let name = folder.file_name()?.to_str()?;
    let escaped = name
        .strip_prefix(crate::partition::PARTITION_COLUMN)?
        .strip_prefix('=')?;
    crate::partition::unescape_partition_value(escaped)
}

#[cfg(feature = "arrow")]
pub use batch::{
    ColumnError, from_batch, from_batch_with_ids, schema, schema_with, to_batch, to_batch_with, to_batch_with_ids,
    udf_columns_of,
};

#[cfg(feature = "arrow")]
mod batch;

#[cfg(feature = "arrow")]
pub mod rows;

#[cfg(feature = "parquet")]
pub use read::{
    Batches, FileError, HistoryFile, ListedFile, READ_ATTEMPTS, ReadError, WindowSpan, committed_files, read_folder,
};

#[cfg(feature = "parquet")]
mod read;

#[cfg(test)]
mod tests {
    use super::*;

    const PART: PartName = PartName {
        checkpoint: 12,
        run: 1_700_000_000_000,
        worker: 0,
        seq: 3,
    };

    #[test]
    fn part_names_keep_the_writers_spelling() {
        assert_eq!(PART.file_name(), "part-000000000012-1700000000000-w0-3.parquet");
        assert_eq!(
            PART.in_progress_name(),
            ".part-000000000012-1700000000000-w0-3.parquet.inprogress"
        );
    }

    #[test]
    fn both_forms_of_a_part_name_parse_back() {
        let far = PartName {
            checkpoint: u64::MAX,
            run: u64::MAX,
            worker: usize::MAX,
            seq: u64::MAX,
        };
        let zero = PartName {
            checkpoint: 0,
            run: 0,
            worker: 0,
            seq: 0,
        };
        for part in [PART, far, zero] {
            assert_eq!(PartName::parse(&part.file_name()), Some(part));
            assert_eq!(PartName::parse(&part.in_progress_name()), Some(part));
        }
        assert_eq!(
            PartName::parse("part-1234567890123-5-w17-2.parquet"),
            Some(PartName {
                checkpoint: 1_234_567_890_123,
                run: 5,
                worker: 17,
                seq: 2,
            })
        );
    }

    #[test]
    fn other_names_are_not_part_names() {
        for name in [
            "part-0001.parquet",
            "part-12-1700000000000-w0-3.parquet",
            "part-0000000000012-1700000000000-w0-3.parquet",
            "part-000000000012-+1700000000000-w0-3.parquet",
            "part-000000000012-1700000000000-w00-3.parquet",
            "part-000000000012-1700000000000-0-3.parquet",
            "part-000000000012-1700000000000-w0-3-4.parquet",
            "part-000000000012-1700000000000-w0.parquet",
            "part-000000000012-1700000000000-w0-3.parquet.tmp",
            "part-000000000012-1700000000000-w0-3.parquet.inprogress",
            ".part-000000000012-1700000000000-w0-3.parquet",
            "_part-000000000012-1700000000000-w0-3.parquet",
            "..part-000000000012-1700000000000-w0-3.parquet.inprogress",
            "part--000000000012-1700000000000-w0-3.parquet",
            "",
        ] {
            assert_eq!(PartName::parse(name), None, "{name}");
        }
    }

    #[test]
    fn day_files_are_named_after_their_utc_day() {
        let day = utc_day(1_764_633_600_000 + 86_399_999);
        assert_eq!(day_file_name(day), "day-2025-12-02.parquet");
        assert_eq!(parse_day_file_name("day-2025-12-02.parquet"), Some(day));
        assert_eq!(parse_day_file_name(&day_file_name(0)), Some(0));
        for name in [
            "day-2025-12-2.parquet",
            "day-2025-13-02.parquet",
            "day-2025-12-02.parquet.tmp",
            "part-1.parquet",
        ] {
            assert_eq!(parse_day_file_name(name), None, "{name}");
        }
        assert!(is_committed_file(&day_file_name(day)));
        assert_eq!(PartName::parse(&day_file_name(day)), None);
    }

    #[test]
    fn hidden_names_are_skipped_by_readers() {
        for name in [
            PART.in_progress_name().as_str(),
            "_SUCCESS",
            "_part-1.parquet",
            ".part-1.parquet",
        ] {
            assert!(is_hidden(name), "{name}");
            assert!(!is_committed_file(name), "{name}");
        }
        assert!(!is_hidden(&PART.file_name()));
        assert!(is_committed_file(&PART.file_name()));
        assert!(is_committed_file("3f2a-0.parquet"));
        assert!(!is_committed_file("part-00001.parquet.tmp"));
        assert!(!is_committed_file("part-00001.parquet.inprogress"));
    }

    #[test]
    fn in_progress_names_are_hidden_and_end_in_inprogress() {
        assert!(is_in_progress(&PART.in_progress_name()));
        assert!(is_in_progress(".anything.inprogress"));
        assert!(!is_in_progress(&PART.file_name()));
        assert!(!is_in_progress("part-1.parquet.inprogress"));
        assert!(!is_in_progress("_part-1.parquet.inprogress"));
        assert!(!is_in_progress(".part-1.parquet"));
    }

    #[test]
    fn a_device_folder_names_its_device() {
        for id in ["device-1", "../../etc/passwd", "\u{1F525} x=y"] {
            let folder = Path::new("/out/parquet").join(crate::partition::partition_dir_name(id));
            assert_eq!(device_of(&folder).as_deref(), Some(id));
        }
        for other in [
            "/out/parquet/sensor=a",
            "/out/parquet/device_id",
            "/out/parquet/device_id=%ff",
            "/",
        ] {
            assert_eq!(device_of(Path::new(other)), None, "{other}");
        }
    }
}
