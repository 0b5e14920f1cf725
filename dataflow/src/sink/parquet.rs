//! The Parquet history sink: final windows, Hive-partitioned by escaped device id
//! (`parquet/device_id=<escaped>/part-….parquet`; schema and names are the contract in `model::history`).
//! Contract of [`stage_history`]: final windows are buffered per device; at each checkpoint barrier they are
//! written to hidden in-progress files (durable before the barrier is answered) and handed on as [`Staged`] to
//! the checkpoint, which renames them into place when it commits (two-phase commit), so a reader never sees a
//! partial or uncommitted file. The device id is the partition column and is not repeated inside the files.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result};
use model::history::{PARQUET_DIR, PartName, schema_with, to_batch_with};
use model::partition::partition_dir_name;
use model::{Aggregate, UdfColumn};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use timely::dataflow::StreamVec;

use crate::durable::{sync_file_system, sync_in_bulk};
use crate::errors::{ErrorKind, ErrorLog};
use crate::in_order::filter_map_in_order;
use crate::messages::{Staged, StagedFile, WindowMsg};

/// Builds the Parquet sink: the window operator's output in, one [`Staged`] per barrier out.
pub fn stage_history<'s>(
    windows: StreamVec<'s, u64, WindowMsg>,
    mut history: ParquetHistory,
    errors: Rc<ErrorLog>,
) -> StreamVec<'s, u64, Staged> {
    filter_map_in_order(windows, "ParquetHistory", move |msg| match msg {
        WindowMsg::Agg(w) if w.is_final => {
            history.push(w.agg);
            None
        }
        WindowMsg::Agg(_) | WindowMsg::Stats(_) | WindowMsg::UdfErrors(..) => None,
        WindowMsg::Barrier(barrier) => {
            let files = history
                .write_in_progress(barrier.id)
                .map_err(|e| {
                    let id = barrier.id;
                    let why = format!("cannot write the history of checkpoint {id}; it will not commit: {e:#}");
                    errors.record(ErrorKind::ParquetWrite, &why)
                })
                .ok();
            Some(Staged { barrier, files })
        }
    })
}

/// One worker's history writer.
pub struct ParquetHistory {
    root: PathBuf,
    worker: usize,
    run: u64,
    seq: u64,
    pending: BTreeMap<String, Vec<Aggregate>>,
    /// The UDF columns written after the contract columns.
    udfs: Vec<UdfColumn>,
}

impl ParquetHistory {
    /// A writer under `out/parquet`, with a column per UDF after the contract columns.
    pub fn new(out: &Path, worker: usize, run: u64, udfs: Vec<UdfColumn>) -> Result<ParquetHistory> {
        let root = out.join(PARQUET_DIR);
        std::fs::create_dir_all(&root).with_context(|| format!("cannot create {} (--out)", root.display()))?;
        Ok(ParquetHistory {
            root,
            worker,
            run,
            seq: 0,
            pending: BTreeMap::new(),
            udfs,
        })
    }

    /// Buffers one final aggregate.
    pub fn push(&mut self, agg: Aggregate) {
        self.pending.entry(agg.device_id.clone()).or_default().push(agg);
    }

    /// Rows buffered and not yet rolled.
    pub fn pending_rows(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }

    /// Writes every buffered row to in-progress files of checkpoint `id` and makes them durable; returns them,
    /// ready to commit.
    pub fn write_in_progress(&mut self, id: u64) -> Result<Vec<StagedFile>> {
        // One schema and one set of properties per roll. Files hold a device's few rows of one checkpoint, so
        // dictionary encoding only costs (each column's interner table is set up and zeroed per file) and
        // saves nothing.
        let schema = schema_with(&self.udfs);
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
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            self.seq += 1;
            let name = PartName {
                checkpoint: id,
                run: self.run,
                worker: self.worker,
                seq: self.seq,
            };
            let hidden = dir.join(name.in_progress_name());
            let file = File::create(&hidden).with_context(|| format!("cannot create {}", hidden.display()))?;
            let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props.clone()))?;
            writer.write(&to_batch_with(&rows, &self.udfs)?)?;
            let file = writer.into_inner()?;
            if !bulk {
                file.sync_all()?;
            }
            files.push(StagedFile {
                hidden,
                visible: dir.join(name.file_name()),
            });
        }
        if bulk {
            sync_file_system(&self.root)?;
        }
        Ok(files)
    }
}

/// The rows of one committed history file, with their device taken from its partition folder.
pub fn read_rows(path: &Path) -> Result<Vec<Aggregate>> {
    let folder = path
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let device = folder
        .strip_prefix(&format!("{}=", model::partition::PARTITION_COLUMN))
        .and_then(model::partition::unescape_partition_value)
        .with_context(|| format!("{} is not in a device folder of the history", path.display()))?;
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.with_context(|| format!("cannot read {}", path.display()))?;
        rows.extend(model::history::from_batch(&batch, &device).with_context(|| format!("in {}", path.display()))?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::store::publish;
    use arrow::array::{RecordBatch, TimestampMillisecondArray};
    use model::history::schema;

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
            udf: Default::default(),
        }
    }

    /// An empty output folder of its own for a test, with a history writer of worker `worker` in it.
    fn fresh(test: &str, worker: usize) -> (PathBuf, ParquetHistory) {
        let out = std::env::temp_dir().join(format!("parquet-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let h = ParquetHistory::new(&out, worker, 1, Vec::new()).unwrap();
        (out, h)
    }

    #[test]
    fn rolled_rows_land_in_their_device_partition_with_logical_types() {
        let (out, mut h) = fresh("rolled", 0);
        h.push(agg("../../etc/passwd", 20_000));
        h.push(agg("../../etc/passwd", 10_000));
        h.push(agg("plain", 0));
        let files = h.write_in_progress(1).unwrap();
        assert_eq!(files.len(), 2);
        publish(&files).unwrap();
        assert_eq!(h.pending_rows(), 0);
        let dir = out.join("parquet").join(partition_dir_name("../../etc/passwd"));
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.starts_with("part-") && name.ends_with(".parquet"), "{name}");
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
        assert_eq!(starts.values().to_vec(), vec![10_000, 20_000], "sorted by window");
    }

    #[test]
    fn in_progress_files_are_hidden_until_committed() {
        let (_out, mut h) = fresh("hidden", 3);
        h.push(agg("d", 0));
        let files = h.write_in_progress(4).unwrap();
        let name = files[0].hidden.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with('.'), "{name}");
        assert!(!files[0].visible.exists());
        publish(&files).unwrap();
        assert!(files[0].visible.exists() && !files[0].hidden.exists());
    }
}
