//! The checkpoint's carried windows: final windows that are in no history file yet (the roll policy holds them
//! until the next roll) must survive a crash, so at each barrier a worker writes the final windows it received
//! since the previous barrier to one *segment* file, `_checkpoints/segments/seg-<checkpoint>-<run>-w<worker>.parquet`
//! (every output column of the query, the first key included, made durable before the worker's part names it). A restored job reads
//! the segments its manifest lists as unrolled back into the history writers. With `--sink-topic` a segment is
//! also exactly worker `j`'s transaction of checkpoint `n` (`T(j, n)`), which recovery publishes again when Kafka
//! did not commit it. Segments no kept manifest names are deleted after each commit ([`collect`]).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use model::history::HistoryFile;
use model::history::rows::{Row, batch_to_rows, rows_to_batch};
use model::output::OutputSchema;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::runtime::durable::sync_dir;

use crate::checkpoint::layout::segments_dir as dir;

/// Who wrote a segment, for which checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentName {
    /// The checkpoint whose barrier closed it.
    pub checkpoint: u64,
    /// The writing process's start time (names stay unique across runs).
    pub run: u64,
    /// The writing worker.
    pub worker: usize,
}

const PREFIX: &str = "seg-";
const SUFFIX: &str = ".parquet";

impl SegmentName {
    /// `seg-<checkpoint:020>-<run>-w<worker>.parquet`.
    pub fn file_name(&self) -> String {
        format!("{PREFIX}{:020}-{}-w{}{SUFFIX}", self.checkpoint, self.run, self.worker)
    }

    /// Reads [`SegmentName::file_name`]'s spelling back (and nothing else).
    pub fn parse(name: &str) -> Option<SegmentName> {
        let mut fields = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?.split('-');
        let s = SegmentName {
            checkpoint: fields.next()?.parse().ok()?,
            run: fields.next()?.parse().ok()?,
            worker: fields.next()?.strip_prefix('w')?.parse().ok()?,
        };
        (fields.next().is_none() && s.file_name() == name).then_some(s)
    }

    /// The name of a segment's path, if it is one.
    pub fn of(path: &Path) -> Option<SegmentName> {
        SegmentName::parse(path.file_name()?.to_str()?)
    }
}

/// Writes `rows` (any groups) of `schema` as segment `name` under `out`, durably; returns its path relative to
/// `out`.
pub fn write(out: &Path, name: SegmentName, rows: &[Row], schema: &OutputSchema) -> Result<PathBuf> {
    let folder = dir(out);
    std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let path = folder.join(name.file_name());
    let batch = rows_to_batch(schema, rows, true)?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props))?;
    writer.write(&batch)?;
    writer
        .into_inner()?
        .sync_all()
        .with_context(|| format!("cannot sync {}", path.display()))?;
    sync_dir(&folder)?;
    Ok(path.strip_prefix(out).unwrap_or(&path).to_path_buf())
}

/// The rows of a segment (`path` relative to `out`), as rows of `schema`.
pub fn read(out: &Path, path: &Path, schema: &OutputSchema) -> Result<Vec<Row>> {
    let full = out.join(path);
    let file = HistoryFile::open(&full).context("cannot read the checkpoint's segment")?;
    let mut rows = Vec::new();
    for batch in file.read_batches()? {
        rows.extend(batch_to_rows(&batch, schema, None).with_context(|| format!("in {}", full.display()))?);
    }
    Ok(rows)
}

/// Deletes the segments of checkpoints up to `upto` that none of `keep` (the segments the kept manifests name)
/// is: the newer ones may belong to a checkpoint in flight. Returns how many went.
pub fn collect(out: &Path, upto: u64, keep: &BTreeSet<PathBuf>) -> usize {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir(out)).into_iter().flatten().flatten() {
        let path = entry.path();
        let rel = path.strip_prefix(out).unwrap_or(&path).to_path_buf();
        let unnamed = SegmentName::of(&path).is_some_and(|s| s.checkpoint <= upto && !keep.contains(&rel));
        if unnamed && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Deletes the segments of checkpoints newer than `restored` (0: every segment): no committed manifest names them.
pub fn discard_after(out: &Path, restored: u64) {
    for entry in std::fs::read_dir(dir(out)).into_iter().flatten().flatten() {
        let path = entry.path();
        let newer = SegmentName::of(&path).is_none_or(|s| s.checkpoint > restored);
        if newer {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use model::value::Value;

    fn schema() -> OutputSchema {
        crate::query::testing::program().query.schema.clone()
    }

    fn agg(device: &str, start: i64) -> Row {
        let mut row = vec![
            Value::Text(device.into()),
            Value::Timestamp(start),
            Value::Timestamp(start + 1_000),
            Value::Int(2),
        ];
        row.extend([20.0, 40.0, 90.0, 91.0, f64::NAN].map(Value::Float));
        row.extend([Value::Int(0), Value::Int(1)]);
        row
    }

    fn out(test: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("segment-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn segment_names_parse_back_and_nothing_else_does() {
        let s = SegmentName {
            checkpoint: 12,
            run: 1_700_000_000_000,
            worker: 3,
        };
        assert_eq!(s.file_name(), "seg-00000000000000000012-1700000000000-w3.parquet");
        assert_eq!(SegmentName::parse(&s.file_name()), Some(s));
        for name in [
            "seg-12-1-w3.parquet",
            "seg-00000000000000000012-1-w3.parquet.tmp",
            "part-1.parquet",
        ] {
            assert_eq!(SegmentName::parse(name), None, "{name}");
        }
    }

    #[test]
    fn a_segment_keeps_every_devices_windows() {
        let out = out("rows");
        let rows = vec![agg("a", 0), agg("../b", 1_000), agg("a", 2_000)];
        let name = SegmentName {
            checkpoint: 1,
            run: 5,
            worker: 0,
        };
        let path = write(&out, name, &rows, &schema()).unwrap();
        assert!(path.is_relative() && out.join(&path).exists());
        let back = read(&out, &path, &schema()).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[1][0], Value::Text("../b".into()));
        assert!(matches!(back[0][8], Value::Float(x) if x.is_nan()));
        assert_eq!((&back[2][1], &back[2][10]), (&Value::Timestamp(2_000), &Value::Int(1)));
    }

    #[test]
    fn only_unnamed_segments_of_committed_checkpoints_are_collected() {
        let out = out("collect");
        let seg = |checkpoint| {
            let name = SegmentName {
                checkpoint,
                run: 5,
                worker: 0,
            };
            write(&out, name, &[agg("a", 0)], &schema()).unwrap()
        };
        let (one, two, three, four) = (seg(1), seg(2), seg(3), seg(4));
        let keep: BTreeSet<PathBuf> = [two.clone()].into();
        assert_eq!(collect(&out, 3, &keep), 2);
        assert!(!out.join(&one).exists() && out.join(&two).exists() && !out.join(&three).exists());
        assert!(out.join(&four).exists(), "a checkpoint in flight keeps its segment");
        discard_after(&out, 2);
        assert!(out.join(&two).exists() && !out.join(&four).exists());
    }
}
