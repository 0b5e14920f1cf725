//! Reading the history's files (the `parquet` half of `model::history`), for every reader: the dashboard, the
//! job's own readers (compaction, recovery, the checkpoint's segments) and the tests.
//!
//! - [`committed_files`] lists the files of a device folder a reader takes ([`is_committed_file`]: no hidden or
//!   in-progress name, only `.parquet` files), with their inodes; [`super::device_of`] is the device a folder
//!   holds.
//! - [`HistoryFile`] is one file whose footer has been read: its schema, the span of its windows from the
//!   footer's statistics, and its rows as record batches whatever their columns; [`HistoryFile::read_aggregates`]
//!   (the folder's device) and [`HistoryFile::read_aggregates_with_ids`] (a `device_id` column) convert them
//!   with [`from_batch`] and [`from_batch_with_ids`].
//! - [`read_folder`] reads a folder as one version while compaction swaps it: a file listed but gone when it is
//!   opened ([`ReadError::is_vanished`]) means the folder was swapped for its compacted version, so the folder is
//!   listed and read again, up to [`READ_ATTEMPTS`] times. No window is then missed or read twice.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::errors::ParquetError;
use parquet::file::statistics::Statistics;

use super::{
    ColumnError, WINDOW_END, WINDOW_START, from_batch, from_batch_with_ids, is_committed_file, udf_columns_of,
};
use crate::Aggregate;
use crate::udf::UdfColumn;

/// Reads of a folder that changes under them before [`read_folder`] gives up.
pub const READ_ATTEMPTS: usize = 5;

/// Rows per record batch read.
const BATCH_ROWS: usize = 8192;

/// Why a folder or a file of the history cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A folder exists but cannot be listed.
    #[error("cannot list {}: {source}", path.display())]
    List {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// One file cannot be read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong with it.
        source: FileError,
    },
    /// Files of a folder kept vanishing between its listing and their reading ([`read_folder`]).
    #[error("{} changed under {attempts} reads in a row (compacted while read?): try again", path.display())]
    Unsettled {
        /// The folder.
        path: PathBuf,
        /// Reads made.
        attempts: usize,
    },
}

/// What went wrong with one history file (the file's name is in [`ReadError::File`]).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file cannot be opened; `NotFound` for a file listed before means compaction removed it.
    #[error("cannot open: {0}")]
    Open(io::Error),
    /// Its footer or its row groups are not Parquet.
    #[error("not a readable Parquet file: {0}")]
    NotParquet(ParquetError),
    /// A row group cannot be decoded.
    #[error("cannot decode: {0}")]
    Decode(ArrowError),
    /// Its columns are not the history's ([`from_batch`]).
    #[error(transparent)]
    Columns(ColumnError),
}

impl ReadError {
    /// A file listed before is no longer there: the folder was swapped (compaction), and listing it again gives
    /// the version that holds its windows. (A file once opened stays readable until closed, so only opening
    /// can meet a file gone.)
    pub fn is_vanished(&self) -> bool {
        matches!(
            self,
            ReadError::File {
                source: FileError::Open(e),
                ..
            } if e.kind() == io::ErrorKind::NotFound
        )
    }

    /// The error of one file, without its path (for a reader that names the file its own way).
    pub fn file_error(&self) -> Option<&FileError> {
        match self {
            ReadError::File { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn file_error(path: &Path, source: FileError) -> ReadError {
    ReadError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// One committed file of a device folder, as listed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListedFile {
    /// Its name in the folder.
    pub name: String,
    /// Its inode (from the listing itself; 0 where the platform has none). A committed file is never rewritten
    /// in place, so a name and an inode are one content.
    pub inode: u64,
    /// The folder joined with the name.
    pub path: PathBuf,
}

/// The committed files of a device folder ([`is_committed_file`]: names starting with `.` or `_`, in-progress
/// files among them, and names not ending in `.parquet` are skipped; so are folders, links and names that are not
/// UTF-8), sorted by name. A folder that does not exist holds none: a device has no folder before its first
/// final window is committed. Neither a file is opened nor `stat`ed.
pub fn committed_files(folder: &Path) -> Result<Vec<ListedFile>, ReadError> {
    let list_error = |source| ReadError::List {
        path: folder.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(list_error(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(list_error)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if is_committed_file(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
            files.push(ListedFile {
                inode: inode(&entry),
                path: entry.path(),
                name,
            });
        }
    }
    files.sort();
    Ok(files)
}

/// The inode of a listed file (0 where the platform has none).
fn inode(entry: &fs::DirEntry) -> u64 {
    #[cfg(unix)]
    return std::os::unix::fs::DirEntryExt::ino(entry);
    #[cfg(not(unix))]
    return 0;
}

/// Calls `read` with the committed files of `folder` ([`committed_files`]) and returns its answer; when `read`
/// fails because a listed file has vanished ([`ReadError::is_vanished`]), the folder is listed and `read` called
/// again, up to [`READ_ATTEMPTS`] times in all ([`ReadError::Unsettled`] after that). `read` must start afresh
/// each time (an attempt's partial results belong to a version of the folder that is gone).
pub fn read_folder<T>(
    folder: &Path,
    mut read: impl FnMut(Vec<ListedFile>) -> Result<T, ReadError>,
) -> Result<T, ReadError> {
    for _ in 0..READ_ATTEMPTS {
        match read(committed_files(folder)?) {
            Err(e) if e.is_vanished() => continue,
            answer => return answer,
        }
    }
    Err(ReadError::Unsettled {
        path: folder.to_path_buf(),
        attempts: READ_ATTEMPTS,
    })
}

/// The span of one file's windows, epoch ms, from its footer's statistics: `i64::MIN`/`i64::MAX` where they do
/// not say (no statistics, no such column, an unexpected type), so that a file is never wrongly skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpan {
    /// Earliest window start.
    pub min_start: i64,
    /// Latest window start (plus one when the statistics are finer than milliseconds).
    pub max_start: i64,
    /// Latest window end (plus one when the statistics are finer than milliseconds).
    pub max_end: i64,
}

/// One history file whose footer has been read: its schema and statistics, and its rows on demand. Nothing is
/// assumed of its columns until its rows are converted to [`Aggregate`]s.
#[derive(Clone, Debug)]
pub struct HistoryFile {
    path: PathBuf,
    metadata: ArrowReaderMetadata,
}

impl HistoryFile {
    /// Opens `path` and reads its footer only.
    pub fn open(path: impl Into<PathBuf>) -> Result<HistoryFile, ReadError> {
        let path = path.into();
        let file = File::open(&path).map_err(|e| file_error(&path, FileError::Open(e)))?;
        let metadata = ArrowReaderMetadata::load(&file, Default::default())
            .map_err(|e| file_error(&path, FileError::NotParquet(e)))?;
        Ok(HistoryFile { path, metadata })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its Arrow schema.
    pub fn schema(&self) -> &SchemaRef {
        self.metadata.schema()
    }

    /// The UDF columns it holds beyond the contract's ([`udf_columns_of`]).
    pub fn udf_columns(&self) -> Vec<UdfColumn> {
        udf_columns_of(self.schema())
    }

    /// The span of its windows, from the footer's statistics of [`WINDOW_START`] and [`WINDOW_END`].
    pub fn window_span(&self) -> WindowSpan {
        let (min_start, max_start) = self.column_span(WINDOW_START);
        let (_, max_end) = self.column_span(WINDOW_END);
        WindowSpan {
            min_start,
            max_start,
            max_end,
        }
    }

    /// Its rows as record batches of every column it holds, as stored (the file is opened again: the footer
    /// read by [`HistoryFile::open`] is not read twice).
    pub fn batches(&self) -> Result<Batches, ReadError> {
        let file = File::open(&self.path).map_err(|e| file_error(&self.path, FileError::Open(e)))?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.metadata.clone())
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| file_error(&self.path, FileError::NotParquet(e)))?;
        Ok(Batches {
            path: self.path.clone(),
            reader,
        })
    }

    /// Every record batch of the file ([`HistoryFile::batches`], collected).
    pub fn read_batches(&self) -> Result<Vec<RecordBatch>, ReadError> {
        self.batches()?.collect()
    }

    /// Its rows as aggregates of `device_id`, the device its folder names ([`from_batch`]).
    pub fn read_aggregates(&self, device_id: &str) -> Result<Vec<Aggregate>, ReadError> {
        self.aggregates(|batch| from_batch(batch, device_id))
    }

    /// Its rows as aggregates of the devices its `device_id` column names ([`from_batch_with_ids`]), for a file
    /// of many devices (the checkpoint's segments).
    pub fn read_aggregates_with_ids(&self) -> Result<Vec<Aggregate>, ReadError> {
        self.aggregates(from_batch_with_ids)
    }

    fn aggregates(
        &self,
        convert: impl Fn(&RecordBatch) -> Result<Vec<Aggregate>, ColumnError>,
    ) -> Result<Vec<Aggregate>, ReadError> {
        let mut rows = Vec::new();
        for batch in self.batches()? {
            rows.extend(convert(&batch?).map_err(|e| file_error(&self.path, FileError::Columns(e)))?);
        }
        Ok(rows)
    }

    /// Min and max of a time column over all row groups, in epoch ms. Unknown ends widen to `i64::MIN`/`i64::MAX`.
    fn column_span(&self, name: &str) -> (i64, i64) {
        const UNKNOWN: (i64, i64) = (i64::MIN, i64::MAX);
        let to_ms: fn(i64) -> i64 = match self.schema().field_with_name(name).map(|f| f.data_type()) {
            Ok(DataType::Timestamp(TimeUnit::Second, _)) => |v| v.saturating_mul(1000),
            Ok(DataType::Timestamp(TimeUnit::Millisecond, _)) | Ok(DataType::Int64) => |v| v,
            Ok(DataType::Timestamp(TimeUnit::Microsecond, _)) => |v| v.div_euclid(1000),
            Ok(DataType::Timestamp(TimeUnit::Nanosecond, _)) => |v| v.div_euclid(1_000_000),
            _ => return UNKNOWN,
        };
        let parquet = self.metadata.metadata();
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
}

/// The record batches of one file, in file order ([`HistoryFile::batches`]).
pub struct Batches {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = self.reader.next()?;
        Some(batch.map_err(|e| file_error(&self.path, FileError::Decode(e))))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::ArrowWriter;

    use super::*;
    use crate::history::{PartName, to_batch, to_batch_with_ids};

    /// A fresh folder for one test.
    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("model-history-read-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn agg(device: &str, start: u64) -> Aggregate {
        Aggregate {
            device_id: device.into(),
            window_start: start,
            window_end: start + 10_000,
            count: 3,
            avg_temperature: 21.5,
            avg_humidity: 40.0,
            min_battery: 80.0,
            max_battery: 81.0,
            stddev_temperature: 0.5,
            warn_count: 1,
            error_count: 0,
            udf: Default::default(),
        }
    }

    fn write(path: &Path, batch: &RecordBatch) {
        let mut writer = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap();
    }

    fn part(seq: u64) -> String {
        PartName {
            checkpoint: 1,
            run: 7,
            worker: 0,
            seq,
        }
        .file_name()
    }

    #[test]
    fn errors_cross_threads_into_any_error_type() {
        fn shareable<E: std::error::Error + Send + Sync + 'static>() {}
        shareable::<ReadError>();
    }

    #[test]
    fn only_committed_files_are_listed_sorted_and_a_missing_folder_holds_none() {
        let dir = temp("list");
        let batch = to_batch(&[agg("d", 0)]).unwrap();
        let names = [
            part(2),
            part(1),
            "day-2024-11-03.parquet".to_string(),
            format!(".{}.inprogress", part(3)),
            "_SUCCESS".into(),
            "_part-9.parquet".into(),
            "notes.txt".into(),
        ];
        for name in &names {
            write(&dir.join(name), &batch);
        }
        fs::create_dir(dir.join("folder.parquet")).unwrap();
        let listed: Vec<String> = committed_files(&dir).unwrap().into_iter().map(|f| f.name).collect();
        assert_eq!(listed, ["day-2024-11-03.parquet", part(1).as_str(), part(2).as_str()]);
        let first = &committed_files(&dir).unwrap()[0];
        assert_eq!(first.path, dir.join(&first.name));
        assert!(committed_files(&dir.join("nothing-here")).unwrap().is_empty());
    }

    #[test]
    fn a_file_reads_as_batches_of_any_columns_and_as_aggregates_of_its_folders_device() {
        let dir = temp("file");
        // A history of a user's query: keys, window bounds, then value columns of its own.
        let schema = Arc::new(Schema::new(vec![
            Field::new("sensor", DataType::Utf8, false),
            Field::new(
                WINDOW_START,
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new(
                WINDOW_END,
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("p99_latency", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(TimestampMillisecondArray::from(vec![1_000, 5_000]).with_timezone("UTC")),
                Arc::new(TimestampMillisecondArray::from(vec![2_000, 6_000]).with_timezone("UTC")),
                Arc::new(Float64Array::from(vec![Some(1.5), None])),
            ],
        )
        .unwrap();
        let path = dir.join(part(1));
        write(&path, &batch);
        let file = HistoryFile::open(&path).unwrap();
        assert_eq!(file.read_batches().unwrap(), [batch]);
        assert_eq!(
            file.window_span(),
            WindowSpan {
                min_start: 1_000,
                max_start: 5_001,
                max_end: 6_001
            }
        );
        let err = file.read_aggregates("d").unwrap_err();
        assert!(
            matches!(
                err.file_error(),
                Some(FileError::Columns(ColumnError::Missing("count")))
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");

        let rows = [agg("../../etc/passwd", 0), agg("../../etc/passwd", 10_000)];
        let path = dir.join(part(2));
        write(&path, &to_batch(&rows).unwrap());
        let file = HistoryFile::open(&path).unwrap();
        assert_eq!(file.read_aggregates("../../etc/passwd").unwrap(), rows);
        assert!(file.udf_columns().is_empty());
        assert!(file.read_aggregates_with_ids().is_err(), "no device column");

        let many = [agg("a", 0), agg("b", 10_000)];
        let path = dir.join("seg.parquet");
        write(&path, &to_batch_with_ids(&many, &[]).unwrap());
        assert_eq!(
            HistoryFile::open(&path).unwrap().read_aggregates_with_ids().unwrap(),
            many
        );
    }

    #[test]
    fn unreadable_files_say_why_and_only_a_missing_one_has_vanished() {
        let dir = temp("unreadable");
        let gone = HistoryFile::open(dir.join(part(1))).unwrap_err();
        assert!(gone.is_vanished(), "{gone}");
        fs::write(dir.join(part(2)), b"PAR1 this is not parquet").unwrap();
        let corrupt = HistoryFile::open(dir.join(part(2))).unwrap_err();
        assert!(!corrupt.is_vanished());
        assert!(
            matches!(corrupt.file_error(), Some(FileError::NotParquet(_))),
            "{corrupt}"
        );
        assert!(
            corrupt
                .file_error()
                .unwrap()
                .to_string()
                .starts_with("not a readable Parquet file")
        );
    }

    #[test]
    fn a_file_gone_between_listing_and_reading_makes_the_folder_read_again() {
        let dir = temp("relist");
        let rows = [agg("d", 0)];
        for seq in [1, 2] {
            write(&dir.join(part(seq)), &to_batch(&rows).unwrap());
        }
        // The first attempt finds part 1 gone (as compaction's swap leaves it): the folder is listed again.
        let mut attempts = 0;
        let read = read_folder(&dir, |files| {
            attempts += 1;
            if attempts == 1 {
                fs::remove_file(&files[0].path).unwrap();
            }
            let mut read = Vec::new();
            for f in &files {
                read.extend(HistoryFile::open(&f.path)?.read_aggregates("d")?);
            }
            Ok((files.len(), read))
        })
        .unwrap();
        assert_eq!((attempts, read), (2, (1, rows.to_vec())));

        // A folder that never settles is given up after READ_ATTEMPTS reads.
        let mut calls = 0;
        let err = read_folder(&dir, |_| -> Result<(), ReadError> {
            calls += 1;
            HistoryFile::open(dir.join("gone.parquet")).map(drop)
        })
        .unwrap_err();
        assert_eq!(calls, READ_ATTEMPTS);
        assert!(
            matches!(
                err,
                ReadError::Unsettled {
                    attempts: READ_ATTEMPTS,
                    ..
                }
            ),
            "{err}"
        );
        // Any other error is the answer at once.
        let mut calls = 0;
        let err = read_folder(&dir, |files| {
            calls += 1;
            fs::write(&files[0].path, b"PAR1 not parquet").unwrap();
            HistoryFile::open(&files[0].path).map(drop)
        })
        .unwrap_err();
        assert_eq!(calls, 1);
        assert!(matches!(err.file_error(), Some(FileError::NotParquet(_))), "{err}");
    }

    #[test]
    fn statistics_in_other_units_give_the_span_in_milliseconds() {
        let dir = temp("units");
        let micros = DataType::Timestamp(TimeUnit::Microsecond, None);
        let schema = Arc::new(Schema::new(vec![
            Field::new(WINDOW_START, micros.clone(), false),
            Field::new(WINDOW_END, DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(arrow::array::TimestampMicrosecondArray::from(vec![
                    1_000_500, 3_000_000,
                ])),
                Arc::new(Int64Array::from(vec![2_000, 4_000])),
            ],
        )
        .unwrap();
        let path = dir.join(part(1));
        write(&path, &batch);
        assert_eq!(
            HistoryFile::open(&path).unwrap().window_span(),
            WindowSpan {
                min_start: 1_000,
                max_start: 3_001,
                max_end: 4_001
            }
        );
        let without = Arc::new(Schema::new(vec![Field::new("other", DataType::Int64, false)]));
        let path = dir.join(part(2));
        write(
            &path,
            &RecordBatch::try_new(without, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap(),
        );
        assert_eq!(
            HistoryFile::open(&path).unwrap().window_span(),
            WindowSpan {
                min_start: i64::MIN,
                max_start: i64::MAX,
                max_end: i64::MAX
            }
        );
    }
}
