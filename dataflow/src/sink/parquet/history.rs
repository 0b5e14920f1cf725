//! One worker's history between rolls: the final windows it holds, the segments that keep them across a crash,
//! and the answer to each checkpoint barrier. At a barrier the windows received since the previous one go to the
//! barrier's segment (saved through the checkpoint's `StateStore`) unless the roll policy ([`super::roll`]) rolls now; a roll is handed
//! out as a [`RollJob`] (written on another thread, see [`super::files`]) and its outcome taken back with
//! [`ParquetHistory::finish`]. Held windows are kept in arrival order, not per device: a roll sorts them once.

use std::path::PathBuf;
use std::time::Instant;

use std::sync::Arc;

use anyhow::{Context, Result};
use model::history::PARQUET_DIR;
use model::history::rows::Row;
use model::output::OutputSchema;

use super::files::{RollJob, RollTarget, Rolled};
use super::roll::RollPolicy;
use crate::checkpoint::StateStore;
use crate::messages::{BarrierKind, GroupKey, StagedHistory};

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

/// What a barrier asks of the history.
pub enum Answer {
    /// Nothing to roll: the answer is ready.
    Ready(StagedHistory),
    /// The held windows roll: write the job's files, then hand its outcome to [`ParquetHistory::finish`].
    Roll(RollJob),
}

/// One worker's history writer.
pub struct ParquetHistory {
    store: StateStore,
    target: RollTarget,
    seq: u64,
    setup: HistorySetup,
    /// Final windows received since the previous barrier.
    fresh: Vec<Row>,
    /// Final windows of earlier barriers, not rolled yet, in arrival order.
    held: Vec<Row>,
    /// When the oldest held or fresh window arrived.
    oldest: Option<Instant>,
    /// The segments holding `held` (relative to the output folder).
    unrolled: Vec<PathBuf>,
    /// Windows were lost (a roll that could not give them back): no later checkpoint may commit.
    lost: bool,
}

impl ParquetHistory {
    /// A writer under the output folder's `parquet/` of rows of `schema`; its checkpointed state goes through
    /// `store`.
    pub fn new(
        store: &StateStore,
        worker: usize,
        run: u64,
        schema: Arc<OutputSchema>,
        setup: HistorySetup,
    ) -> Result<ParquetHistory> {
        let root = store.out().join(PARQUET_DIR);
        std::fs::create_dir_all(&root).with_context(|| format!("cannot create {} (--out)", root.display()))?;
        let staging = store.staging_dir();
        std::fs::create_dir_all(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
        Ok(ParquetHistory {
            store: store.clone(),
            target: RollTarget {
                root,
                staging,
                run,
                worker,
                schema,
            },
            seq: 0,
            setup,
            fresh: Vec::new(),
            held: Vec::new(),
            oldest: None,
            unrolled: Vec::new(),
            lost: false,
        })
    }

    /// Takes back, from a restored checkpoint `checkpoint`'s unrolled segments (all of them), the windows of the
    /// groups this worker owns among `peers` (`GroupKey::route`, the window exchange's rule), so a partition's
    /// windows keep going to one file per roll whatever `-w` wrote the segments. They are written again, as this worker's own segment
    /// of the restored checkpoint, which its parts then name instead of the old ones.
    pub fn restore(&mut self, checkpoint: u64, segments: &[PathBuf], peers: usize) -> Result<()> {
        let mut mine = Vec::new();
        for path in segments {
            let rows = self.store.final_windows(path, &self.target.schema)?;
            let keys = self.target.schema.key_count();
            mine.extend(
                rows.into_iter()
                    .filter(|r| owner(&r[..keys], peers) == self.target.worker),
            );
        }
        if mine.is_empty() {
            return Ok(());
        }
        self.unrolled.push(self.save(checkpoint, &mine)?);
        self.held.append(&mut mine);
        self.oldest = Some(Instant::now());
        Ok(())
    }

    /// The worker whose history this is.
    pub fn worker(&self) -> usize {
        self.target.worker
    }

    /// Records that held windows were lost: every later barrier fails, so that no checkpoint commits offsets past
    /// them; a restart recomputes them from the last committed checkpoint.
    pub fn poison(&mut self) {
        self.lost = true;
    }

    /// Takes one final window's row.
    pub fn push(&mut self, row: Row) {
        self.oldest.get_or_insert_with(Instant::now);
        self.fresh.push(row);
    }

    /// Windows held and not yet rolled.
    pub fn pending_rows(&self) -> usize {
        self.fresh.len() + self.held.len()
    }

    /// Saves `rows` as this worker's final windows of checkpoint `checkpoint`, not rolled yet.
    fn save(&self, checkpoint: u64, rows: &[Row]) -> Result<PathBuf> {
        let (run, worker) = (self.target.run, self.target.worker);
        self.store
            .save_final_windows(checkpoint, run, worker, rows, &self.target.schema)
    }

    /// Answers barrier `id`: keeps the windows since the previous barrier in a segment when they are not rolled
    /// now (or always, with a Kafka output), and hands every held window out to a roll when the policy says so
    /// (always at a stop and at the end of the input).
    pub fn begin(&mut self, id: u64, kind: BarrierKind) -> Result<Answer> {
        if self.lost {
            anyhow::bail!("final windows of an earlier roll were lost; restart the job to compute them again");
        }
        let rows = self.pending_rows();
        let waited = self.oldest.map(|t| t.elapsed()).unwrap_or_default();
        let rolls = self.setup.roll.due(kind, rows, waited);
        let mut segment = None;
        if self.setup.checkpointed && !self.fresh.is_empty() && (!rolls || self.setup.sink) {
            segment = Some(self.save(id, &self.fresh)?);
        }
        if !rolls {
            self.unrolled.extend(segment.clone());
            self.held.reserve_exact(self.fresh.len());
            self.held.append(&mut self.fresh);
            return Ok(Answer::Ready(StagedHistory {
                files: Vec::new(),
                segment,
                unrolled: self.unrolled.clone(),
            }));
        }
        let job = RollJob {
            id,
            held: std::mem::take(&mut self.held),
            fresh: std::mem::take(&mut self.fresh),
            segment,
            first_seq: self.seq + 1,
            target: self.target.clone(),
        };
        Ok(Answer::Roll(job))
    }

    /// Takes a roll's outcome back. Rolled: nothing is held any more. Failed: its windows are held again as
    /// before (those of the barrier's own segment, if it wrote one, as held windows of that segment), so a
    /// later roll writes them, and the checkpoint of this barrier does not commit.
    pub fn finish(&mut self, rolled: Rolled) -> Result<StagedHistory> {
        self.seq = self.seq.max(rolled.last_seq);
        let files = match rolled.files {
            Ok(files) => files,
            Err(e) => {
                let (mut held, mut fresh) = rolled.rows_back.unwrap_or_default();
                held.append(&mut self.held);
                self.held = held;
                match rolled.segment {
                    Some(segment) => {
                        self.unrolled.push(segment);
                        self.held.append(&mut fresh);
                    }
                    None => {
                        fresh.append(&mut self.fresh);
                        self.fresh = fresh;
                    }
                }
                return Err(e);
            }
        };
        self.unrolled.clear();
        self.oldest = (!self.fresh.is_empty()).then(Instant::now);
        Ok(StagedHistory {
            files,
            segment: rolled.segment,
            unrolled: Vec::new(),
        })
    }

    /// Answers barrier `id` at once, writing a roll's files on this thread.
    pub fn at_barrier(&mut self, id: u64, kind: BarrierKind) -> Result<StagedHistory> {
        match self.begin(id, kind)? {
            Answer::Ready(staged) => Ok(staged),
            Answer::Roll(job) => self.finish(job.write()),
        }
    }
}

/// The worker of `peers` that owns a group's windows (the window operator's exchange), from its key's values.
fn owner(key: &[model::value::Value], peers: usize) -> usize {
    (GroupKey::of(key.iter().cloned()).route() % peers.max(1) as u64) as usize
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::messages::StagedFile;
    use arrow::array::{RecordBatch, TimestampMillisecondArray};
    use model::history::schema;
    use model::partition::partition_dir_name;
    use model::value::Value;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::fs::File;
    use std::path::Path;

    /// The built-in job's output columns.
    pub(crate) fn seed_schema() -> Arc<OutputSchema> {
        Arc::new(crate::query::testing::program().query.schema.clone())
    }

    /// A final window of the built-in job.
    pub(crate) fn agg(device: &str, start: u64) -> Row {
        let t = |ms: u64| Value::Timestamp(ms as i64);
        vec![
            Value::Text(device.into()),
            t(start),
            t(start + 10_000),
            Value::Int(3),
            Value::Float(21.5),
            Value::Float(50.25),
            Value::Float(80.0),
            Value::Float(81.0),
            Value::Float(0.5),
            Value::Int(1),
            Value::Int(0),
        ]
    }

    /// A row's device and window start.
    fn device_start(r: &Row) -> (String, u64) {
        match (&r[0], &r[1]) {
            (Value::Text(d), Value::Timestamp(s)) => (d.to_string(), *s as u64),
            other => panic!("{other:?}"),
        }
    }

    const HOLD: HistorySetup = rolling_at(100);

    /// Checkpointed, no Kafka output, rolling once a worker holds `rows` windows (never by age in a test).
    pub(crate) const fn rolling_at(rows: usize) -> HistorySetup {
        HistorySetup {
            roll: RollPolicy {
                interval: std::time::Duration::from_secs(3_600),
                max_rows: rows,
            },
            checkpointed: true,
            sink: false,
        }
    }

    /// An empty output folder of its own for a test, with a history writer of worker `worker` in it.
    pub(crate) fn fresh(test: &str, worker: usize, setup: HistorySetup) -> (StateStore, ParquetHistory) {
        let out = std::env::temp_dir().join(format!("parquet-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let store = StateStore::new(&out);
        let h = ParquetHistory::new(&store, worker, 1, seed_schema(), setup).unwrap();
        (store, h)
    }

    /// The rows of a committed history file, as (device, window start), the device from its folder.
    fn read_rows(path: &Path) -> Vec<(String, u64)> {
        let device = model::history::device_of(path.parent().unwrap()).unwrap();
        let aggs = model::history::HistoryFile::open(path)
            .unwrap()
            .read_aggregates(&device)
            .unwrap();
        aggs.into_iter().map(|a| (a.device_id, a.window_start)).collect()
    }

    /// What the commit of a checkpoint does to its staged files: they take their visible names.
    fn publish(files: &[StagedFile]) {
        for f in files {
            std::fs::create_dir_all(f.visible.parent().unwrap()).unwrap();
            std::fs::rename(&f.hidden, &f.visible).unwrap();
        }
    }

    #[test]
    fn rolled_rows_land_in_their_device_partition_with_logical_types() {
        let (store, mut h) = fresh("rolled", 0, HOLD);
        let out = store.out();
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
        publish(&staged.files);
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
        let (store, mut h) = fresh("hidden", 3, HOLD);
        h.push(agg("d", 0));
        let files = h.at_barrier(4, BarrierKind::Stop).unwrap().files;
        let name = files[0].hidden.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with('.'), "{name}");
        assert!(files[0].hidden.starts_with(store.staging_dir()));
        assert!(!files[0].visible.exists());
        publish(&files);
        assert!(files[0].visible.exists() && !files[0].hidden.exists());
    }

    #[test]
    fn windows_held_between_rolls_are_in_segments_that_another_writer_takes_back() {
        let (store, mut h) = fresh("held", 0, HOLD);
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
            let mut other = ParquetHistory::new(&store, worker, 2, seed_schema(), HOLD).unwrap();
            other.restore(3, &third.unrolled, 2).unwrap();
            let held = other.at_barrier(4, BarrierKind::Periodic).unwrap();
            for seg in &held.unrolled {
                assert!(!third.unrolled.contains(seg), "its own segment, not the old ones");
                let rows = store.final_windows(seg, &seed_schema()).unwrap();
                assert!(rows.iter().all(|r| owner(&r[..1], 2) == worker));
            }
            for device in ["a", "b"] {
                if owner(&[Value::Text(device.into())], 2) == worker {
                    other.push(agg(device, 20_000));
                }
            }
            let rolled = other.at_barrier(5, BarrierKind::Final).unwrap();
            assert!(rolled.unrolled.is_empty() && rolled.segment.is_none());
            assert!(rolled.files.len() <= 2, "one file per device");
            publish(&rolled.files);
            rows.extend(rolled.files.iter().flat_map(|f| read_rows(&f.visible)));
        }
        rows.sort();
        let want = [("a", 0), ("a", 10_000), ("a", 20_000), ("b", 0), ("b", 20_000)].map(|(d, s)| (d.to_string(), s));
        assert_eq!(rows, want);
    }

    #[test]
    fn the_policy_rolls_by_size_and_a_kafka_output_gets_every_barriers_segment() {
        let small = HistorySetup {
            sink: true,
            ..rolling_at(2)
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
        let (_store, mut h) = fresh("replay", 0, replay);
        h.push(agg("a", 0));
        let held = h.at_barrier(1, BarrierKind::Periodic).unwrap();
        assert!(held.files.is_empty() && held.segment.is_none() && held.unrolled.is_empty());
        assert_eq!(h.at_barrier(2, BarrierKind::Final).unwrap().files.len(), 1);
    }

    #[test]
    fn a_failed_roll_deletes_its_files_and_the_next_roll_writes_every_window_it_held() {
        let (store, mut h) = fresh("failed-roll", 0, rolling_at(3));
        let out = store.out();
        h.push(agg("a", 0));
        h.push(agg("b", 0));
        let held = h.at_barrier(1, BarrierKind::Periodic).unwrap();
        assert!(
            held.files.is_empty() && held.unrolled.len() == 1,
            "below the size limit: held"
        );
        h.push(agg("a", 10_000));
        // The device folder of `b` cannot be made (a file is in the way): the roll fails after `a`'s file.
        let root = out.join(model::history::PARQUET_DIR);
        let blocker = root.join(model::partition::partition_dir_name("b"));
        std::fs::write(&blocker, b"in the way").unwrap();
        assert!(h.at_barrier(2, BarrierKind::Periodic).is_err());
        let staging = store.staging_dir();
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0, "its files are deleted");
        assert_eq!(h.pending_rows(), 3, "its windows are held again");
        std::fs::remove_file(&blocker).unwrap();
        h.push(agg("b", 10_000));
        let rolled = h.at_barrier(3, BarrierKind::Periodic).unwrap();
        assert_eq!(rolled.files.len(), 2);
        assert!(rolled.unrolled.is_empty());
        publish(&rolled.files);
        let mut rows: Vec<(String, u64)> = rolled.files.iter().flat_map(|f| read_rows(&f.visible)).collect();
        rows.sort();
        let want = [("a", 0), ("a", 10_000), ("b", 0), ("b", 10_000)].map(|(d, s)| (d.to_string(), s));
        assert_eq!(rows, want, "every window once");
    }

    #[test]
    fn a_failed_roll_without_a_segment_keeps_its_fresh_windows_for_the_next_segment() {
        let (store, mut h) = fresh("failed-fresh", 0, rolling_at(1));
        h.push(agg("a", 0));
        let staging = store.staging_dir();
        std::fs::remove_dir_all(&staging).unwrap();
        std::fs::write(&staging, b"in the way").unwrap();
        assert!(
            h.at_barrier(1, BarrierKind::Periodic).is_err(),
            "no staging folder: the roll fails"
        );
        std::fs::remove_file(&staging).unwrap();
        std::fs::create_dir_all(&staging).unwrap();
        // Rolled at once, its window was in no segment: it is fresh again, so a held barrier keeps it in one.
        h.setup = HOLD;
        let held = h.at_barrier(2, BarrierKind::Periodic).unwrap();
        let segment = held.segment.expect("the window is written to barrier 2's segment");
        assert_eq!(held.unrolled, vec![segment.clone()]);
        let rows = store.final_windows(&segment, &seed_schema()).unwrap();
        assert_eq!(
            rows.iter().map(device_start).collect::<Vec<_>>(),
            [("a".to_string(), 0)]
        );
    }
}
