//! Compaction of the Parquet history: a device's rolled files whose windows are older than a cutoff are merged
//! into one file per UTC day of `window_start` (`day-YYYY-MM-DD.parquet`; which files, [`plan`]). It runs in
//! the job (a thread of worker 0, [`InJob`], every `--compact-older-than`) and offline (`dataflow compact`).
//!
//! A device folder changes in one step: its new contents — the day files written anew and a hard link of every
//! file it keeps — are built in `_checkpoints/compacting/<folder>`, then swapped with the device folder by
//! `renameat2(RENAME_EXCHANGE)`, and the old contents (now at the other name) are deleted. So whatever moment the
//! process dies, the visible folder holds either all the old files or all the new ones: nothing is lost or
//! doubled, and the next pass deletes what a dead pass left in `compacting/`. A reader that lists the folder
//! sees one version or the other; one that lists, then opens a file the swap removed, gets "not found" and
//! lists again (the dashboard and the notebooks do), never a window twice. In the job the swap and the
//! committer's renames into device folders take turns on one lock, so no committed file lands in a folder
//! being swapped.

pub mod plan;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc as SharedSchema;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, new_null_array};
use arrow::compute::{SortColumn, cast, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType};
use model::history::{HistoryFile, PARQUET_DIR, PartName, day_file_name, is_committed_file, utc_day};
use model::output::{WINDOW_END, WINDOW_START};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::checkpoint::StateStore;
use crate::runtime::crash_hook::maybe_crash;
use crate::runtime::durable::sync_dir;
use plan::{Listed, Plan};

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Device folders that could not be compacted (left as they were).
    pub failed: usize,
    /// Why the first of them could not.
    pub first_error: Option<String>,
    /// Device folders swapped.
    pub devices: usize,
    /// Files merged away.
    pub inputs: usize,
    /// Day files written.
    pub days: usize,
    /// Rows moved.
    pub rows: usize,
}

/// The history's compactor. It remembers the window span of each file it has read (files never change: a name
/// and an inode are one content), so a pass reads only new files and the ones it merges.
pub struct Compactor {
    store: StateStore,
    spans: HashMap<(PathBuf, u64), Option<(u64, u64)>>,
    /// Swaps so far (for the test hook `IOT_TEST_COMPACT_CRASH`).
    swaps: (u64, u64),
}

impl Compactor {
    /// A compactor of `out`'s history.
    pub fn new(out: &Path) -> Compactor {
        Compactor {
            store: StateStore::new(out),
            spans: HashMap::new(),
            swaps: (0, 0),
        }
    }

    /// The checkpoint up to which no restore can replace a committed file, and the lineage's first run (files of
    /// older runs are settled too); `None` without a checkpoint.
    pub fn settled_upto(&self) -> Option<(u64, u64)> {
        self.store.settled_upto()
    }

    /// Compacts every device folder: files with every window before `cutoff` (epoch ms), of checkpoints up to
    /// `settled` (`None`: any). `lock` is held around each swap; `stop` ends the pass between two folders.
    pub fn pass(
        &mut self,
        cutoff: u64,
        settled: Option<(u64, u64)>,
        lock: &Mutex<()>,
        stop: &AtomicBool,
    ) -> Result<PassReport> {
        let scratch = self.store.compacting_dir();
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch).with_context(|| format!("cannot empty {}", scratch.display()))?;
        }
        let root = self.store.out().join(PARQUET_DIR);
        let mut report = PassReport::default();
        let mut folders: Vec<PathBuf> = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| {
                // A partition folder: `<first key>=<escaped value>`, not hidden.
                let name = e.file_name();
                let name = name.to_string_lossy();
                !name.starts_with(['.', '_']) && name.contains('=')
            })
            .map(|e| e.path())
            .collect();
        folders.sort();
        for folder in folders {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match self.device(&folder, cutoff, settled, lock) {
                Ok(Some(d)) => {
                    report.devices += 1;
                    report.inputs += d.inputs;
                    report.days += d.days;
                    report.rows += d.rows;
                }
                Ok(None) => {}
                // One folder that cannot be compacted (an unreadable file, a full disk) is left as it is: the
                // others are not held back by it.
                Err(e) => {
                    let why = format!("{:#}", e.context(format!("cannot compact {}", folder.display())));
                    tracing::warn!(error = %why, "a device folder was left as it is");
                    report.failed += 1;
                    report.first_error.get_or_insert(why);
                }
            }
        }
        if scratch.exists() {
            let _ = std::fs::remove_dir_all(&scratch);
        }
        Ok(report)
    }

    /// Compacts one device folder; `None` when there was nothing to do.
    fn device(
        &mut self,
        folder: &Path,
        cutoff: u64,
        settled: Option<(u64, u64)>,
        lock: &Mutex<()>,
    ) -> Result<Option<PassReport>> {
        let mut listed = Vec::new();
        for (name, inode) in list(folder)? {
            let key = (folder.join(&name), inode);
            let starts = match self.spans.get(&key) {
                Some(s) => *s,
                None => {
                    let s = span(&read(&key.0)?)?;
                    self.spans.insert(key, s);
                    s
                }
            };
            let settled = match (settled, PartName::parse(&name)) {
                (Some((upto, lineage_run)), Some(part)) => part.checkpoint <= upto || part.run < lineage_run,
                _ => true,
            };
            listed.push(Listed { name, starts, settled });
        }
        let plan = plan::plan(&listed, cutoff);
        if plan.is_empty() {
            return Ok(None);
        }
        let (by_day, rows) = merge(folder, &plan)?;
        let scratch = self.store.compacting_dir();
        let next = scratch.join(folder.file_name().context("a device folder has a name")?);
        std::fs::create_dir_all(&next).with_context(|| format!("cannot create {}", next.display()))?;
        for (day, batch) in &by_day {
            write_day(&next.join(day_file_name(*day)), batch)?;
        }
        {
            // Committed files only arrive under this lock; link what the folder keeps, then swap.
            let _turn = lock.lock().unwrap_or_else(|e| e.into_inner());
            for entry in std::fs::read_dir(folder).with_context(|| format!("cannot list {}", folder.display()))? {
                let entry = entry?;
                let name = entry.file_name();
                if plan.inputs.iter().any(|i| std::ffi::OsStr::new(i) == name) {
                    continue;
                }
                let target = next.join(&name);
                std::fs::hard_link(entry.path(), &target)
                    .with_context(|| format!("cannot link {} into {}", entry.path().display(), next.display()))?;
            }
            sync_dir(&next)?;
            maybe_crash("IOT_TEST_COMPACT_CRASH", "before-swap", &mut self.swaps.0);
            exchange(&next, folder)?;
            sync_dir(folder.parent().unwrap_or(Path::new(".")))?;
            maybe_crash("IOT_TEST_COMPACT_CRASH", "after-swap", &mut self.swaps.1);
        }
        // `next` now holds the old contents.
        std::fs::remove_dir_all(&next).with_context(|| format!("cannot remove {}", next.display()))?;
        let gone: std::collections::HashSet<PathBuf> = plan.inputs.iter().map(|n| folder.join(n)).collect();
        self.spans.retain(|(path, _), _| !gone.contains(path));
        Ok(Some(PassReport {
            devices: 1,
            inputs: plan.inputs.len(),
            days: by_day.len(),
            rows,
            ..PassReport::default()
        }))
    }
}

/// The rows of a plan's inputs, as one batch per UTC day of `window_start`, sorted by window: the inputs' columns
/// unioned by name (a column a file lacks is null in its rows), as readers union files of different UDF sets.
fn merge(folder: &Path, plan: &Plan) -> Result<(BTreeMap<i64, RecordBatch>, usize)> {
    let mut batches = Vec::new();
    for name in &plan.inputs {
        batches.extend(read(&folder.join(name))?);
    }
    let schema = union_schema(&batches);
    let aligned: Vec<RecordBatch> = batches.iter().map(|b| align(b, &schema)).collect::<Result<_>>()?;
    let all = concat_batches(&schema, &aligned)?;
    let total = all.num_rows();
    let sort: Vec<SortColumn> = [WINDOW_START, WINDOW_END]
        .iter()
        .map(|c| {
            Ok(SortColumn {
                values: times(&all, c)?,
                options: None,
            })
        })
        .collect::<Result<_>>()?;
    let sorted = take_record_batch(&all, &lexsort_to_indices(&sort, None)?)?;
    let starts = times(&sorted, WINDOW_START)?;
    let starts = starts.as_primitive::<TimestampMillisecondType>();
    let mut by_day = BTreeMap::new();
    let mut from = 0;
    while from < sorted.num_rows() {
        let day = utc_day(starts.value(from).max(0) as u64);
        let mut to = from + 1;
        while to < sorted.num_rows() && utc_day(starts.value(to).max(0) as u64) == day {
            to += 1;
        }
        by_day.insert(day, sorted.slice(from, to - from));
        from = to;
    }
    Ok((by_day, total))
}

/// Every column of `batches` by name, in first-seen order, typed as first seen.
fn union_schema(batches: &[RecordBatch]) -> SchemaRef {
    let mut fields: Vec<Field> = Vec::new();
    for b in batches {
        for f in b.schema().fields() {
            if !fields.iter().any(|g| g.name() == f.name()) {
                fields.push(f.as_ref().clone().with_nullable(true));
            }
        }
    }
    SharedSchema::new(Schema::new(fields))
}

/// `batch` with the columns of `schema`: cast to its types, a column it lacks all null.
fn align(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => cast(c, f.data_type()).with_context(|| format!("column {} of two types", f.name())),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<_>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// A time column of `batch` as milliseconds.
fn times(batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    let column = batch
        .column_by_name(name)
        .with_context(|| format!("a history file without {name}"))?;
    Ok(cast(
        column,
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
    )?)
}

/// The committed files of a folder, with their inodes.
fn list(folder: &Path) -> Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).with_context(|| format!("cannot list {}", folder.display()))? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if is_committed_file(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
            files.push((name, std::os::unix::fs::DirEntryExt::ino(&entry)));
        }
    }
    files.sort();
    Ok(files)
}

/// Earliest and latest window start of a file's rows (`None`: no row).
fn span(batches: &[RecordBatch]) -> Result<Option<(u64, u64)>> {
    let mut span: Option<(u64, u64)> = None;
    for b in batches {
        let starts = times(b, WINDOW_START)?;
        for v in starts.as_primitive::<TimestampMillisecondType>().iter().flatten() {
            let v = v.max(0) as u64;
            span = Some(span.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
        }
    }
    Ok(span)
}

/// Writes one day file durably.
fn write_day(path: &Path, batch: &RecordBatch) -> Result<()> {
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props))?;
    writer.write(batch)?;
    writer.into_inner()?.sync_all()?;
    Ok(())
}

/// Swaps two folders atomically.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(AT_FDCWD, a, AT_FDCWD, b, RenameFlags::RENAME_EXCHANGE)
        .with_context(|| format!("cannot swap {} with {}", a.display(), b.display()))
}

#[cfg(not(target_os = "linux"))]
fn exchange(a: &Path, b: &Path) -> Result<()> {
    anyhow::bail!(
        "compaction needs Linux (renameat2) to swap {} with {}",
        a.display(),
        b.display()
    )
}

/// The running job's compactor: a thread that runs a pass every `--compact-older-than` (at least 10 s and at most
/// an hour apart, the first 10 s after start), until dropped.
pub struct InJob {
    stop: Arc<AtomicBool>,
    wake: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InJob {
    /// Starts compacting `out`'s history older than `older_than`; `lock` is the committer's, `lineage_run` the
    /// first run of the job's checkpoints (`Manifest::lineage_run`).
    pub fn start(out: &Path, older_than: Duration, lock: Arc<Mutex<()>>, lineage_run: u64) -> Result<InJob> {
        let every = older_than.clamp(MIN_EVERY, MAX_EVERY);
        let stop = Arc::new(AtomicBool::new(false));
        let (wake, sleep) = mpsc::channel::<()>();
        let (out, flag) = (out.to_path_buf(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("compaction".into())
            .spawn(move || {
                let mut compactor = Compactor::new(&out);
                let mut next = Instant::now() + every.min(MIN_EVERY);
                loop {
                    let wait = next.saturating_duration_since(Instant::now());
                    if sleep.recv_timeout(wait) != Err(mpsc::RecvTimeoutError::Timeout) || flag.load(Ordering::Relaxed) {
                        return;
                    }
                    next = Instant::now() + every;
                    let cutoff = model::time::now_ms().saturating_sub(older_than.as_millis() as u64);
                    // Before the first manifest, none of this lineage's files is settled.
                    let settled = compactor.settled_upto().unwrap_or((0, lineage_run));
                    let started = Instant::now();
                    match compactor.pass(cutoff, Some(settled), &lock, &flag) {
                        Ok(r) if r.devices > 0 || r.failed > 0 => tracing::info!(
                            failed = r.failed,
                            devices = r.devices,
                            files = r.inputs,
                            day_files = r.days,
                            rows = r.rows,
                            ms = started.elapsed().as_millis() as u64,
                            "history compacted"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %format!("{e:#}"), "history compaction failed; the next pass tries again"),
                    }
                }
            })
            .context("cannot start the compaction thread")?;
        Ok(InJob {
            stop,
            wake: Some(wake),
            thread: Some(thread),
        })
    }
}

/// Passes run at least this far apart.
const MIN_EVERY: Duration = Duration::from_secs(10);
/// And at most this far.
const MAX_EVERY: Duration = Duration::from_secs(3_600);

impl Drop for InJob {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.wake.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A history file's record batches, whatever its columns.
fn read(path: &Path) -> Result<Vec<RecordBatch>> {
    Ok(HistoryFile::open(path)?.read_batches()?)
}

/// `dataflow compact`: one pass over `out`'s whole history (but the files of the kept checkpoints), refused while
/// a job holds the folder.
pub fn offline(out: &Path, older_than: Duration) -> Result<PassReport> {
    if !out.join(PARQUET_DIR).is_dir() {
        anyhow::bail!(
            "{} has no history ({} is missing): pass the job's --out folder",
            out.display(),
            out.join(PARQUET_DIR).display()
        );
    }
    let _held = crate::runtime::out_lock::OutLock::for_compaction(out)?;
    let cutoff = model::time::now_ms().saturating_sub(older_than.as_millis() as u64);
    // As in the job: the files of the last kept checkpoints stay, since a restart could still fall back to an
    // older kept manifest and recompute them.
    let mut compactor = Compactor::new(out);
    let settled = compactor.settled_upto();
    compactor.pass(cutoff, settled, &Mutex::new(()), &AtomicBool::new(false))
}
