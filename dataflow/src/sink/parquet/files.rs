//! One roll's history files, written away from the worker thread: every held final window goes to a hidden
//! in-progress file of its partition (the first key's value) in `_checkpoints/staging/`, made durable, ready
//! for the checkpoint to rename into the partition's folder when it commits. A roll is self-contained ([`RollJob`] owns its rows and settings),
//! so a worker hands it to a thread of its own and goes on reading while the files are made: at 10,000 devices a
//! roll creates 10,000 files, seconds of file-system work during which an idle reader would let librdkafka's
//! fetched records pile up. A roll that fails deletes what it created and gives its rows back.

use std::any::Any;
use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use model::history::PartName;
use model::history::rows::{Row, file_schema, partition_dir, rows_to_batch};
use model::output::OutputSchema;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::messages::StagedFile;
use crate::runtime::durable::{sync_file_system, sync_in_bulk};

/// Where a worker's rolls write, and how their files are named.
#[derive(Clone, Debug)]
pub struct RollTarget {
    /// `parquet/` under the output folder: the device folders.
    pub root: PathBuf,
    /// `_checkpoints/staging/`: the in-progress files.
    pub staging: PathBuf,
    /// The writing process's start time.
    pub run: u64,
    /// The writing worker.
    pub worker: usize,
    /// The query's output columns (a file holds all but the first key, which names its folder).
    pub schema: Arc<OutputSchema>,
}

/// One roll: the rows it writes and where.
pub struct RollJob {
    /// The checkpoint whose barrier rolls.
    pub id: u64,
    /// Final windows of earlier barriers (their segments are the worker's unrolled ones).
    pub held: Vec<Row>,
    /// Final windows since the previous barrier.
    pub fresh: Vec<Row>,
    /// The segment this barrier's fresh windows were written to, if any.
    pub segment: Option<PathBuf>,
    /// The sequence number of the roll's first file (one per device, counting up).
    pub first_seq: u64,
    /// Where the files go.
    pub target: RollTarget,
}

/// What a roll did: its files, or why it failed together with its rows, given back.
pub struct Rolled {
    /// The checkpoint whose barrier rolled.
    pub id: u64,
    /// The in-progress files, one per device, durable; or the failure.
    pub files: Result<Vec<StagedFile>>,
    /// The sequence number of the last file the roll named (used or not).
    pub last_seq: u64,
    /// The segment of the barrier's fresh windows, if one was written.
    pub segment: Option<PathBuf>,
    /// On failure, the rows: `(held, fresh)` as the job had them.
    pub rows_back: Option<(Vec<Row>, Vec<Row>)>,
}

impl RollJob {
    /// Every row of the roll, sorted by key and window: a partition's rows (its first key's) are one run.
    fn sorted_rows(&self) -> Vec<&Row> {
        let w = self.target.schema.window_start();
        let mut rows: Vec<&Row> = self.held.iter().chain(&self.fresh).collect();
        rows.sort_by(|a, b| (&a[..w], &a[w]).cmp(&(&b[..w], &b[w])));
        rows
    }

    /// Writes the files. Never panics: a panic of the writer is a failure like an error. On failure every file
    /// the roll created is deleted and the rows come back in [`Rolled::rows_back`].
    pub fn write(self) -> Rolled {
        let started = std::time::Instant::now();
        let rows = self.sorted_rows();
        let devices = rows.chunk_by(|a, b| a[0] == b[0]).count();
        let mut created = Vec::new();
        let files = catch_unwind(AssertUnwindSafe(|| self.write_files(&rows, devices, &mut created)))
            .unwrap_or_else(|panic| Err(anyhow!("the history writer panicked: {}", panic_text(&*panic))));
        let last_seq = (self.first_seq + devices as u64).saturating_sub(1);
        if files.is_ok() {
            let ms = started.elapsed().as_millis() as u64;
            tracing::info!(
                worker = self.target.worker,
                checkpoint = self.id,
                files = devices,
                ms,
                "history rolled"
            );
        }
        let rows_back = if files.is_err() {
            for f in &created {
                let _ = std::fs::remove_file(f);
            }
            Some((self.held, self.fresh))
        } else {
            None
        };
        Rolled {
            id: self.id,
            files,
            last_seq,
            segment: self.segment,
            rows_back,
        }
    }

    /// One file per partition of `rows` (sorted, `devices` runs); `created` lists each file as soon as it
    /// exists.
    fn write_files(&self, rows: &[&Row], devices: usize, created: &mut Vec<PathBuf>) -> Result<Vec<StagedFile>> {
        let target = &self.target;
        // One schema and one set of properties per roll. Files hold a partition's rows of one roll, so dictionary
        // encoding only costs (each column's interner table is set up and zeroed per file) and saves little.
        let schema = file_schema(&target.schema);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_dictionary_enabled(false)
            .build();
        // Many files: each is closed once written (no descriptor is held across the roll) and one `syncfs`
        // makes them all durable at the end; a few: each is synced as it is written.
        let bulk = sync_in_bulk(devices);
        let mut files = Vec::with_capacity(devices);
        for (seq, device_rows) in (self.first_seq..).zip(rows.chunk_by(|a, b| a[0] == b[0])) {
            let name = PartName {
                checkpoint: self.id,
                run: target.run,
                worker: target.worker,
                seq,
            };
            let hidden = target.staging.join(name.in_progress_name());
            let file = File::create(&hidden).with_context(|| format!("cannot create {}", hidden.display()))?;
            created.push(hidden.clone());
            let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props.clone()))?;
            writer.write(&rows_to_batch(&target.schema, device_rows, false)?)?;
            let file = writer.into_inner()?;
            if !bulk {
                file.sync_all()?;
            }
            // The partition's folder is made now, before the checkpoint can commit, so a folder that cannot be
            // made fails the checkpoint rather than its publication.
            let folder = target.root.join(partition_dir(&target.schema, device_rows[0]));
            std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
            files.push(StagedFile {
                hidden,
                visible: folder.join(name.file_name()),
            });
        }
        if bulk {
            sync_file_system(&target.root)?;
        }
        Ok(files)
    }
}

/// The message of a panic's payload, when it has one.
fn panic_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}
