//! Parquet history of final windows, Hive-partitioned by escaped device id:
//! `parquet/device_id=<escaped>/part-<checkpoint id>-<run>-w<worker>-<seq>.parquet` (`run`: the process's
//! start time, so that a fresh start never overwrites an older file). Rows are buffered per device and
//! written at each checkpoint to hidden in-progress files (`.part-….inprogress`), which are renamed into place
//! only when the checkpoint that covers them commits (two-phase commit), so a reader never sees a partial or
//! uncommitted file. Rolling at checkpoints, not per batch, keeps small files few. The device id is the
//! partition column and is not repeated inside the files.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use model::Aggregate;
use model::partition::partition_dir_name;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::atomic::{sync_dirs, sync_file_system, sync_in_bulk};

/// The Arrow schema of history files.
pub fn schema() -> Arc<Schema> {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("window_start", ts(), false),
        Field::new("window_end", ts(), false),
        Field::new("count", DataType::Int64, false),
        Field::new("avg_temperature", DataType::Float64, false),
        Field::new("avg_humidity", DataType::Float64, false),
        Field::new("min_battery", DataType::Float64, false),
        Field::new("max_battery", DataType::Float64, false),
        Field::new("stddev_temperature", DataType::Float64, false),
        Field::new("warn_count", DataType::Int64, false),
        Field::new("error_count", DataType::Int64, false),
    ]))
}

fn batch(schema: &Arc<Schema>, rows: &[Aggregate]) -> Result<RecordBatch> {
    let ms = |f: fn(&Aggregate) -> u64| {
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| f(r) as i64))
                .with_timezone("UTC"),
        ) as ArrayRef
    };
    let int = |f: fn(&Aggregate) -> u64| {
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| f(r) as i64),
        )) as ArrayRef
    };
    let float = |f: fn(&Aggregate) -> f64| {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(f))) as ArrayRef
    };
    Ok(RecordBatch::try_new(
        schema.clone(),
        vec![
            ms(|r| r.window_start),
            ms(|r| r.window_end),
            int(|r| r.count),
            float(|r| r.avg_temperature),
            float(|r| r.avg_humidity),
            float(|r| r.min_battery),
            float(|r| r.max_battery),
            float(|r| r.stddev_temperature),
            int(|r| r.warn_count),
            int(|r| r.error_count),
        ],
    )?)
}

/// One worker's history writer.
pub struct ParquetHistory {
    root: PathBuf,
    worker: usize,
    run: u64,
    seq: u64,
    pending: BTreeMap<String, Vec<Aggregate>>,
}

impl ParquetHistory {
    /// A writer under `out/parquet`.
    pub fn new(out: &Path, worker: usize, run: u64) -> Result<ParquetHistory> {
        let root = out.join("parquet");
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {} (--out)", root.display()))?;
        Ok(ParquetHistory {
            root,
            worker,
            run,
            seq: 0,
            pending: BTreeMap::new(),
        })
    }

    /// Buffers one final aggregate.
    pub fn push(&mut self, agg: Aggregate) {
        self.pending
            .entry(agg.device_id.clone())
            .or_default()
            .push(agg);
    }

    /// Rows buffered and not yet rolled.
    pub fn pending_rows(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }

    /// Writes every buffered row to in-progress files of checkpoint `id` and makes them durable; returns them,
    /// ready to commit.
    pub fn write_in_progress(&mut self, id: u64) -> Result<Vec<InProgress>> {
        // One schema and one set of properties per roll. Files hold a device's few rows of one checkpoint, so
        // dictionary encoding only costs (each column's interner table is set up and zeroed per file) and
        // saves nothing.
        let schema = schema();
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_dictionary_enabled(false)
            .build();
        // Many files: each is closed once written (no descriptor is held across the roll) and one `syncfs`
        // makes them all durable at the end; a few: each is synced as it is written.
        let bulk = sync_in_bulk(self.pending.len());
        let mut files = Vec::new();
        for (device, mut rows) in std::mem::take(&mut self.pending) {
            rows.sort_by_key(|r| r.window_start);
            let dir = self.root.join(partition_dir_name(&device));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            self.seq += 1;
            let name = format!(
                "part-{id:012}-{}-w{}-{}.parquet",
                self.run, self.worker, self.seq
            );
            let hidden = dir.join(format!(".{name}.inprogress"));
            let file = File::create(&hidden)
                .with_context(|| format!("cannot create {}", hidden.display()))?;
            let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props.clone()))?;
            writer.write(&batch(&schema, &rows)?)?;
            let file = writer.into_inner()?;
            if !bulk {
                file.sync_all()?;
            }
            files.push(InProgress {
                hidden,
                visible: dir.join(name),
            });
        }
        if bulk {
            sync_file_system(&self.root)?;
        }
        Ok(files)
    }
}

/// A complete file written under a hidden name, waiting to be made visible.
#[derive(Clone, Debug)]
pub struct InProgress {
    /// Hidden path (ignored by readers).
    pub hidden: PathBuf,
    /// Final `part-*.parquet` path.
    pub visible: PathBuf,
}

/// Makes in-progress files visible (rename, then sync each folder).
pub fn commit(files: &[InProgress]) -> Result<()> {
    for f in files {
        std::fs::rename(&f.hidden, &f.visible).with_context(|| {
            format!(
                "cannot commit {} to {}",
                f.hidden.display(),
                f.visible.display()
            )
        })?;
    }
    let mut dirs: Vec<&Path> = files.iter().filter_map(|f| f.visible.parent()).collect();
    dirs.sort();
    dirs.dedup();
    match dirs.first().and_then(|d| d.parent()) {
        Some(root) => Ok(sync_dirs(root, &dirs)?),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn agg(device: &str, start: u64) -> Aggregate {
        Aggregate {
            device_id: device.into(),
            window_start: start,
            window_end: start + 10_000,
            count: 3,
            avg_temperature: 21.5,
            avg_humidity: 50.25,
            min_battery: 80.0,
            max_battery: 81.0,
            stddev_temperature: 0.5,
            warn_count: 1,
            error_count: 0,
        }
    }

    #[test]
    fn rolled_rows_land_in_their_device_partition_with_logical_types() {
        let out = std::env::temp_dir().join(format!("parquet-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let mut h = ParquetHistory::new(&out, 0, 1).unwrap();
        h.push(agg("../../etc/passwd", 20_000));
        h.push(agg("../../etc/passwd", 10_000));
        h.push(agg("plain", 0));
        let files = h.write_in_progress(1).unwrap();
        assert_eq!(files.len(), 2);
        commit(&files).unwrap();
        assert_eq!(h.pending_rows(), 0);
        let dir = out
            .join("parquet")
            .join(partition_dir_name("../../etc/passwd"));
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            name.starts_with("part-") && name.ends_with(".parquet"),
            "{name}"
        );
        assert!(files[0].starts_with(out.join("parquet")));
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0]).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(batches[0].num_rows(), 2);
        assert_eq!(batches[0].schema(), schema());
        let starts = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        assert_eq!(
            starts.values().to_vec(),
            vec![10_000, 20_000],
            "sorted by window"
        );
    }

    #[test]
    fn in_progress_files_are_hidden_until_committed() {
        let out = std::env::temp_dir().join(format!("parquet-test2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let mut h = ParquetHistory::new(&out, 3, 1).unwrap();
        h.push(agg("d", 0));
        let files = h.write_in_progress(4).unwrap();
        let name = files[0].hidden.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with('.'), "{name}");
        assert!(!files[0].visible.exists());
        commit(&files).unwrap();
        assert!(files[0].visible.exists() && !files[0].hidden.exists());
    }
}
