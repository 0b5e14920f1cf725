//! What the stages see of the checkpoint protocol: one [`StateStore`] per output folder, through which a stage
//! saves what it must carry across a crash at a barrier, gets it back on a restore, and learns what committed.
//! The stages never see the checkpoint folder's layout or its files' format (`layout`, `format`, `store`):
//!
//! | stage | saves at a barrier | gets back on a restore | learns |
//! | --- | --- | --- | --- |
//! | window | its open windows ([`StateStore::save_open_windows`]) | them, re-sent by the sources (`Resume::windows`) | |
//! | Parquet history | the final windows since the last barrier ([`StateStore::save_final_windows`]) and its rolled files (staged in [`StateStore::staging_dir`]) | the final windows not rolled yet ([`StateStore::final_windows`]) | |
//! | Kafka output | its transaction of the barrier (the same final windows) | what to publish again ([`super::SinkRecovery`]) | a checkpoint's [`Fate`] ([`StateStore::fate`]) |
//! | compaction | | | which files a restore may still replace ([`StateStore::settled_upto`]) |
//! | temporal join | its versions and where the table's source stood ([`StateStore::save_table`]) | them ([`StateStore::table`]), re-sent by the table's sources | |

use std::path::{Path, PathBuf};

use anyhow::Result;
use model::history::rows::Row;
use model::output::OutputSchema;

use super::kafka_out::{self, Fate};
use super::layout;
use super::segment::{self, SegmentName};
use super::store;
use super::table_file::{self, TableSnapshot};
use super::windows_file::{self, Visit};

/// The checkpoint protocol's storage of one output folder, as the stages use it. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateStore {
    out: PathBuf,
}

impl StateStore {
    /// The store of the output folder `out`.
    pub fn new(out: &Path) -> StateStore {
        StateStore { out: out.to_path_buf() }
    }

    /// The output folder.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// The window stage's save: worker `worker`'s open windows of checkpoint `id`, as `walk` hands them out one
    /// at a time (no copy of them is held); returns how many. A failure means the checkpoint cannot commit.
    pub fn save_open_windows(
        &self,
        id: u64,
        worker: usize,
        walk: impl FnOnce(Visit<'_>) -> std::io::Result<()>,
    ) -> Result<usize> {
        windows_file::write_open(&self.out, id, worker, walk)
    }

    /// The temporal join's save: worker `worker`'s versions of checkpoint `id` (as `walk` hands them out) and
    /// where it had heard the table's source stand (`progress`), and its counters, durably, before it sends
    /// marker `id` on;
    /// returns how many versions. Its files of checkpoints no restore can go back to are deleted.
    pub fn save_table(
        &self,
        id: u64,
        worker: usize,
        progress: &std::collections::BTreeMap<i32, i64>,
        counts: crate::messages::JoinCounts,
        walk: impl FnOnce(
            &mut dyn FnMut(&model::value::Value, u64, Option<&[model::value::Value]>) -> std::io::Result<()>,
        ) -> std::io::Result<()>,
    ) -> Result<usize> {
        let n = table_file::write(&self.out, id, worker, progress, counts, walk)?;
        if let Some((oldest_kept, _)) = self.settled_upto() {
            table_file::prune(&self.out, worker, oldest_kept);
        }
        Ok(n)
    }

    /// The versioned table of checkpoint `id`, which `workers` workers wrote.
    pub fn table(&self, id: u64, workers: usize) -> Result<TableSnapshot> {
        table_file::read(&self.out, id, workers)
    }

    /// Where the history stage writes a roll's files under hidden names until their checkpoint commits.
    pub fn staging_dir(&self) -> PathBuf {
        layout::staging_dir(&self.out)
    }

    /// The history stage's save: the final windows worker `worker` (of run `run`) received before barrier
    /// `checkpoint` and has not rolled yet, durably; returns the reference the checkpoint keeps of them.
    pub fn save_final_windows(
        &self,
        checkpoint: u64,
        run: u64,
        worker: usize,
        rows: &[Row],
        schema: &OutputSchema,
    ) -> Result<PathBuf> {
        let name = SegmentName {
            checkpoint,
            run,
            worker,
        };
        segment::write(&self.out, name, rows, schema)
    }

    /// The final windows a checkpoint kept under `saved` (a reference [`Self::save_final_windows`] returned),
    /// as rows of `schema`.
    pub fn final_windows(&self, saved: &Path, schema: &OutputSchema) -> Result<Vec<Row>> {
        segment::read(&self.out, saved, schema)
    }

    /// The lineage of the checkpoints in this folder (a fresh start begins a new one).
    pub fn lineage(&self) -> Result<String> {
        store::lineage(&self.out)
    }

    /// What became of checkpoint `id` as far as worker `worker`'s Kafka transaction of it can tell.
    pub fn fate(&self, id: u64, worker: usize) -> Fate {
        let exists = store::manifest_exists(&self.out, id);
        let newer = if exists {
            None
        } else {
            store::newest_sink_after(&self.out, id)
        };
        kafka_out::fate(id, worker, exists, newer.as_ref().map(|(n, s)| (*n, s)))
    }

    /// The checkpoint up to which no restore can replace committed history files, and its lineage's first run
    /// (see `store::settled_upto`); `None` when the folder has no checkpoint.
    pub fn settled_upto(&self) -> Option<(u64, u64)> {
        store::settled_upto(&self.out)
    }

    /// Where compaction builds a device folder's new contents before it swaps them in.
    pub fn compacting_dir(&self) -> PathBuf {
        layout::compacting_dir(&self.out)
    }

    /// The checkpoint folder itself (for messages that point a user at it).
    pub fn dir(&self) -> PathBuf {
        layout::dir(&self.out)
    }
}
