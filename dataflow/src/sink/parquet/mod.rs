//! The Parquet history sink: final windows, Hive-partitioned by escaped device id
//! (`parquet/device_id=<escaped>/part-….parquet`; schema and names are the contract in `model::history`).
//! Contract of [`stage_history`]: final windows are held per device until the roll policy ([`roll`]) says the
//! worker rolls them; at each checkpoint barrier the windows received since the previous one are first made
//! durable in the checkpoint's segment (`checkpoint::segment`) unless they are rolled at once, and a roll writes
//! them to hidden in-progress files in `_checkpoints/staging/` (durable before the barrier is answered), handed
//! on as [`Staged`] to the checkpoint, which renames them into their device folders when it commits (two-phase
//! commit), so a reader never sees a partial or uncommitted file. The device id is the partition column and is
//! not repeated inside the files.

pub mod roll;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use anyhow::{Context, Result};
use model::history::{PARQUET_DIR, PartName, schema_with, to_batch_with};
use model::partition::partition_dir_name;
use model::{Aggregate, UdfColumn};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use timely::dataflow::StreamVec;

use crate::checkpoint::layout::staging_dir;
use crate::checkpoint::segment::{self, SegmentName};
use crate::durable::{sync_file_system, sync_in_bulk};
use crate::errors::{ErrorKind, ErrorLog};
use crate::in_order::filter_map_in_order;
use crate::messages::{BarrierKind, Staged, StagedFile, StagedHistory, WindowMsg, device_route};
use roll::RollPolicy;

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
            let written = history
                .at_barrier(barrier.id, barrier.kind)
                .map_err(|e| {
                    let id = barrier.id;
                    let why = format!("cannot write the history of checkpoint {id}; it will not commit: {e:#}");
                    errors.record(ErrorKind::ParquetWrite, &why)
                })
                .ok();
            Some(Staged {
                barrier,
                history: written,
            })
        }
    })
}

/// How a worker's history is kept between rolls.
#[derive(Clone, Copy, Debug)]
pub struct HistorySetup {
    /// When to roll.
    pub roll: RollPolicy,
    /// Whether the job keeps checkpoints (Kafka input): then the windows held between rolls are written to the
    /// checkpoint's segments. A file replay keeps none, and holds them in memory only.
    pub checkpointed: bool,
    /// With `--sink-topic` every barrier's windows get a segment, rolled or not: it is the worker's Kafka
    /// transaction of that checkpoint, published again from it after a crash.
    pub sink: bool,
}

/// One worker's history writer.
pub struct ParquetHistory {
    out: PathBuf,
    root: PathBuf,
    staging: PathBuf,
    worker: usize,
    run: u64,
    seq: u64,
    setup: HistorySetup,
    /// Final windows received since the previous barrier.
    fresh: Vec<Aggregate>,
    /// Final windows of earlier barriers, not rolled yet, by device.
    held: BTreeMap<String, Vec<Aggregate>>,
    /// When the oldest held or fresh window arrived.
    oldest: Option<Instant>,
    /// The segments holding `held` (relative to the output folder).
    unrolled: Vec<PathBuf>,
    /// The UDF columns written after the contract columns.
    udfs: Vec<UdfColumn>,
}

impl ParquetHistory {
    /// A writer under `out/parquet`, with a column per UDF after the contract columns.
    pub fn new(
        out: &Path,
        worker: usize,
        run: u64,
        udfs: Vec<UdfColumn>,
        setup: HistorySetup,
    ) -> Result<ParquetHistory> {
        let root = out.join(PARQUET_DIR);
        std::fs::create_dir_all(&root).with_context(|| format!("cannot create {} (--out)", root.display()))?;
        let staging = staging_dir(out);
        std::fs::create_dir_all(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
        Ok(ParquetHistory {
            out: out.to_path_buf(),
            root,
            staging,
            worker,
            run,
            seq: 0,
            setup,
            fresh: Vec::new(),
            held: BTreeMap::new(),
            oldest: None,
            unrolled: Vec::new(),
            udfs,
        })
    }

    /// Takes back, from a restored checkpoint `checkpoint`'s unrolled segments (all of them), the windows of the
    /// devices this worker owns among `peers` (`messages::device_route`), so a device's windows keep going to
    /// one file per roll whatever `-w` wrote the segments. They are written again, as this worker's own segment
    /// of the restored checkpoint, which its parts then name instead of the old ones.
    pub fn restore(&mut self, checkpoint: u64, segments: &[PathBuf], peers: usize) -> Result<()> {
        let mut mine = Vec::new();
        for path in segments {
            let rows = segment::read(&self.out, path)?;
            mine.extend(rows.into_iter().filter(|a| owner(&a.device_id, peers) == self.worker));
        }
        if mine.is_empty() {
            return Ok(());
        }
        let name = SegmentName {
            checkpoint,
            run: self.run,
            worker: self.worker,
        };
        self.unrolled.push(segment::write(&self.out, name, &mine, &self.udfs)?);
        for agg in mine {
            self.held.entry(agg.device_id.clone()).or_default().push(agg);
        }
        self.oldest = Some(Instant::now());
        Ok(())
    }

    /// Takes one final aggregate.
    pub fn push(&mut self, agg: Aggregate) {
        self.oldest.get_or_insert_with(Instant::now);
        self.fresh.push(agg);
    }

    /// Windows held and not yet rolled.
    pub fn pending_rows(&self) -> usize {
        self.fresh.len() + self.held.values().map(Vec::len).sum::<usize>()
    }

    /// Answers barrier `id`: keeps the windows since the previous barrier in a segment when they are not rolled
    /// now (or always, with a Kafka output), and rolls every held window to in-progress files when the policy
    /// says so (always at a stop and at the end of the input).
    pub fn at_barrier(&mut self, id: u64, kind: BarrierKind) -> Result<StagedHistory> {
        let rows = self.pending_rows();
        let waited = self.oldest.map(|t| t.elapsed()).unwrap_or_default();
        let rolls = self.setup.roll.due(kind, rows, waited);
        let mut staged = StagedHistory::default();
        if self.setup.checkpointed && !self.fresh.is_empty() && (!rolls || self.setup.sink) {
            let name = SegmentName {
                checkpoint: id,
                run: self.run,
                worker: self.worker,
            };
            let path = segment::write(&self.out, name, &self.fresh, &self.udfs)?;
            if !rolls {
                self.unrolled.push(path.clone());
            }
            staged.segment = Some(path);
        }
        for agg in self.fresh.drain(..) {
            self.held.entry(agg.device_id.clone()).or_default().push(agg);
        }
        if rolls {
            staged.files = self.write_in_progress(id)?;
            self.unrolled.clear();
            self.oldest = None;
        }
        staged.unrolled.clone_from(&self.unrolled);
        Ok(staged)
    }

    /// Writes every held row to in-progress files of checkpoint `id` and makes them durable; returns them,
    /// ready to commit.
    fn write_in_progress(&mut self, id: u64) -> Result<Vec<StagedFile>> {
        // One schema and one set of properties per roll. Files hold a device's rows of one roll, so dictionary
        // encoding only costs (each column's interner table is set up and zeroed per file) and saves little.
        let schema = schema_with(&self.udfs);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_dictionary_enabled(false)
            .build();
        // Many files: each is closed once written (no descriptor is held across the roll) and one `syncfs`
        // makes them all durable at the end; a few: each is synced as it is written.
        let bulk = sync_in_bulk(self.held.len());
        let mut files = Vec::new();
        for (device, mut rows) in std::mem::take(&mut self.held) {
            rows.sort_by_key(|r| r.window_start);
            self.seq += 1;
            let name = PartName {
                checkpoint: id,
                run: self.run,
                worker: self.worker,
                seq: self.seq,
            };
            let hidden = self.staging.join(name.in_progress_name());
            let file = File::create(&hidden).with_context(|| format!("cannot create {}", hidden.display()))?;
            let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props.clone()))?;
            writer.write(&to_batch_with(&rows, &self.udfs)?)?;
            let file = writer.into_inner()?;
            if !bulk {
                file.sync_all()?;
            }
            // The device folder is made now, before the checkpoint can commit, so a folder that cannot be made
            // fails the checkpoint rather than its publication.
            let folder = self.root.join(partition_dir_name(&device));
            std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
            files.push(StagedFile {
                hidden,
                visible: folder.join(name.file_name()),
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
    let folder = path.parent().unwrap_or(Path::new(""));
    Ok(read_file(path, &device_of(folder)?)?.0)
}

/// The device a partition folder of the history holds.
pub fn device_of(folder: &Path) -> Result<String> {
    let name = folder.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.strip_prefix(&format!("{}=", model::partition::PARTITION_COLUMN))
        .and_then(model::partition::unescape_partition_value)
        .with_context(|| format!("{} is not a device folder of the history", folder.display()))
}

/// A history file's rows (of `device`, its folder's) and the UDF columns it holds, by name.
pub fn read_file(path: &Path, device: &str) -> Result<(Vec<Aggregate>, Vec<UdfColumn>)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).with_context(|| format!("cannot read {}", path.display()))?;
    let udfs = model::history::udf_columns_of(builder.schema());
    let mut rows = Vec::new();
    for batch in builder.build()? {
        let batch = batch.with_context(|| format!("cannot read {}", path.display()))?;
        rows.extend(model::history::from_batch(&batch, device).with_context(|| format!("in {}", path.display()))?);
    }
    Ok((rows, udfs))
}

/// The worker of `peers` that owns a device's windows (the window operator's exchange).
fn owner(device: &str, peers: usize) -> usize {
    (device_route(device) % peers.max(1) as u64) as usize
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

    const HOLD: HistorySetup = HistorySetup {
        roll: RollPolicy {
            interval: std::time::Duration::from_secs(3_600),
            max_rows: 100,
        },
        checkpointed: true,
        sink: false,
    };

    /// An empty output folder of its own for a test, with a history writer of worker `worker` in it.
    fn fresh(test: &str, worker: usize, setup: HistorySetup) -> (PathBuf, ParquetHistory) {
        let out = std::env::temp_dir().join(format!("parquet-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let h = ParquetHistory::new(&out, worker, 1, Vec::new(), setup).unwrap();
        (out, h)
    }

    #[test]
    fn rolled_rows_land_in_their_device_partition_with_logical_types() {
        let (out, mut h) = fresh("rolled", 0, HOLD);
        h.push(agg("../../etc/passwd", 20_000));
        h.push(agg("../../etc/passwd", 10_000));
        h.push(agg("plain", 0));
        let staged = h.at_barrier(1, BarrierKind::Final).unwrap();
        assert_eq!(staged.files.len(), 2);
        assert_eq!(
            (staged.segment, staged.unrolled.len()),
            (None, 0),
            "rolled at once: no segment"
        );
        publish(&staged.files).unwrap();
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
    fn rolled_files_wait_hidden_outside_the_device_folders_until_committed() {
        let (out, mut h) = fresh("hidden", 3, HOLD);
        h.push(agg("d", 0));
        let files = h.at_barrier(4, BarrierKind::Stop).unwrap().files;
        let name = files[0].hidden.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with('.'), "{name}");
        assert!(files[0].hidden.starts_with(staging_dir(&out)));
        assert!(!files[0].visible.exists());
        publish(&files).unwrap();
        assert!(files[0].visible.exists() && !files[0].hidden.exists());
    }

    #[test]
    fn windows_held_between_rolls_are_in_segments_that_another_writer_takes_back() {
        let (out, mut h) = fresh("held", 0, HOLD);
        h.push(agg("a", 0));
        h.push(agg("b", 0));
        let first = h.at_barrier(1, BarrierKind::Periodic).unwrap();
        assert!(first.files.is_empty(), "not due: held");
        let one = first.segment.clone().expect("a segment of barrier 1");
        assert_eq!(first.unrolled, vec![one.clone()]);
        let second = h.at_barrier(2, BarrierKind::Periodic).unwrap();
        assert_eq!(
            (second.segment, second.unrolled),
            (None, vec![one.clone()]),
            "nothing new"
        );
        h.push(agg("a", 10_000));
        let third = h.at_barrier(3, BarrierKind::Periodic).unwrap();
        let three = third.segment.clone().unwrap();
        assert_eq!(third.unrolled, vec![one.clone(), three.clone()]);
        assert_eq!(h.pending_rows(), 3);
        // A restored job of two workers: each takes back the held windows of the devices it owns, keeps them in
        // a segment of its own, and rolls them with its own windows.
        let mut rows: Vec<(String, u64)> = Vec::new();
        for worker in 0..2 {
            let mut other = ParquetHistory::new(&out, worker, 2, Vec::new(), HOLD).unwrap();
            other.restore(3, &third.unrolled, 2).unwrap();
            let held = other.at_barrier(4, BarrierKind::Periodic).unwrap();
            for seg in &held.unrolled {
                assert!(!third.unrolled.contains(seg), "its own segment, not the old ones");
                let rows = segment::read(&out, seg).unwrap();
                assert!(rows.iter().all(|r| owner(&r.device_id, 2) == worker));
            }
            for device in ["a", "b"] {
                if owner(device, 2) == worker {
                    other.push(agg(device, 20_000));
                }
            }
            let rolled = other.at_barrier(5, BarrierKind::Final).unwrap();
            assert!(rolled.unrolled.is_empty() && rolled.segment.is_none());
            assert!(rolled.files.len() <= 2, "one file per device");
            publish(&rolled.files).unwrap();
            rows.extend(
                rolled
                    .files
                    .iter()
                    .flat_map(|f| read_rows(&f.visible).unwrap())
                    .map(|r| (r.device_id, r.window_start)),
            );
        }
        rows.sort();
        let want = [("a", 0), ("a", 10_000), ("a", 20_000), ("b", 0), ("b", 20_000)].map(|(d, s)| (d.to_string(), s));
        assert_eq!(rows, want);
    }

    #[test]
    fn the_policy_rolls_by_size_and_a_kafka_output_gets_every_barriers_segment() {
        let small = HistorySetup {
            roll: RollPolicy {
                interval: std::time::Duration::from_secs(3_600),
                max_rows: 2,
            },
            sink: true,
            ..HOLD
        };
        let (_out, mut h) = fresh("size", 0, small);
        h.push(agg("a", 0));
        let held = h.at_barrier(1, BarrierKind::Periodic).unwrap();
        assert!(held.files.is_empty() && held.segment.is_some());
        h.push(agg("a", 10_000));
        let rolled = h.at_barrier(2, BarrierKind::Periodic).unwrap();
        assert_eq!(rolled.files.len(), 1, "two windows held: rolled");
        assert!(rolled.segment.is_some(), "the Kafka output's transaction of barrier 2");
        assert!(rolled.unrolled.is_empty());
    }

    #[test]
    fn a_file_replay_keeps_no_segments() {
        let replay = HistorySetup {
            checkpointed: false,
            ..HOLD
        };
        let (out, mut h) = fresh("replay", 0, replay);
        h.push(agg("a", 0));
        let held = h.at_barrier(1, BarrierKind::Periodic).unwrap();
        assert!(held.files.is_empty() && held.segment.is_none() && held.unrolled.is_empty());
        assert!(!crate::checkpoint::layout::segments_dir(&out).exists());
        assert_eq!(h.at_barrier(2, BarrierKind::Final).unwrap().files.len(), 1);
    }
}
