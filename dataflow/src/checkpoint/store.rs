//! The file operations of the checkpoint protocol under `<out>/_checkpoints/` (see the rules in
//! `checkpoint/mod.rs`): writing a worker's part (`pending-<id>/part-w<j>.json`, its open windows beside it:
//! `checkpoint::windows_file`), merging the parts into the manifest (`ckpt-<id>.json`, written atomically: the commit
//! point; the windows are streamed from the parts' files, never all held), publishing the staged Parquet files a
//! manifest commits, loading the newest manifest on start and bringing the output folder in line with it, and the
//! lineage the Kafka output tags its registers with. The files' format is `checkpoint::format`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use model::history::{PARQUET_DIR, PartName, is_in_progress};
use serde::Deserialize;

use crate::checkpoint::format::{Identity, Manifest, ManifestMeta, Part, VERSION};
use crate::checkpoint::kafka_out::{self, SinkCheckpoint};
use crate::checkpoint::layout::staging_dir;
use crate::checkpoint::segment;
use crate::checkpoint::windows_file::{self, Spooled};
use crate::messages::StagedFile;
use crate::runtime::durable::{replace_with, sync_dir, sync_dirs, write_atomic_with};

/// Manifests kept (older ones are deleted).
pub const KEEP: usize = 3;

pub use crate::checkpoint::layout::dir;
use crate::checkpoint::layout::pending_dir;

fn manifest_path(out: &Path, id: u64) -> PathBuf {
    dir(out).join(format!("ckpt-{id:020}.json"))
}

/// Ids of the manifests present, newest first.
fn manifest_ids(out: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir(out))
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("ckpt-")?.strip_suffix(".json")?.parse().ok()
        })
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

/// The newest manifest that parses, checked against this run's settings. A truncated or corrupt manifest is
/// skipped with a warning. `Ok(None)`: no checkpoint, a fresh start.
pub fn load_newest(out: &Path, identity: &Identity) -> Result<Option<Manifest>> {
    for id in manifest_ids(out) {
        let path = manifest_path(out, id);
        let parsed = std::fs::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|b| serde_json::from_slice::<Manifest>(&b).map_err(anyhow::Error::from));
        let version = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64));
        if let Some(v) = version
            && v != u64::from(VERSION)
        {
            bail!(
                "the checkpoint {} was written by another version of the job (format {v}, this one reads {VERSION}): \
                 its open windows cannot be read; pass --fresh to discard the checkpoints and start over (the history \
                 already written stays)",
                path.display()
            );
        }
        let manifest = match parsed {
            Ok(m) if m.id == id => m,
            Ok(_) => {
                tracing::warn!(path = %path.display(), "skipping a checkpoint whose id is not its file's");
                continue;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "skipping unreadable checkpoint; using an older one");
                continue;
            }
        };
        manifest.identity.check_restorable(identity, &dir(out))?;
        return Ok(Some(manifest));
    }
    Ok(None)
}

fn lineage_path(out: &Path) -> PathBuf {
    dir(out).join("lineage")
}

/// Starts a lineage of checkpoints (before its first manifest): a name no earlier lineage had, with which the
/// Kafka output tags its registers, so that registers left by checkpoints discarded with `--fresh` are ignored.
fn start_lineage(out: &Path) -> Result<()> {
    let path = lineage_path(out);
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir(out)).with_context(|| format!("cannot create {}", dir(out).display()))?;
    let name = format!("{}-{}", model::time::now_ms(), std::process::id());
    write_atomic_with(&path, |w| w.write_all(name.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The lineage of the checkpoints in `out` (there is one once a manifest of a job with `--sink-topic` exists).
pub fn lineage(out: &Path) -> Result<String> {
    let path = lineage_path(out);
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

/// What compaction may take of the files a running job's checkpoints commit: `(oldest kept manifest id, the
/// lineage's first run)`. A restore may fall back to the oldest kept manifest (when the newer ones are
/// unreadable) and would delete this lineage's files of newer checkpoints, so only files it keeps are settled.
/// `None` without a readable manifest.
pub fn settled_upto(out: &Path) -> Option<(u64, u64)> {
    #[derive(Deserialize)]
    struct Lineage {
        #[serde(default)]
        lineage_run: u64,
    }
    let ids = manifest_ids(out);
    let oldest = ids.iter().take(KEEP).min().copied()?;
    let newest = std::fs::read(manifest_path(out, ids[0])).ok()?;
    let lineage: Lineage = serde_json::from_slice(&newest).ok()?;
    Some((oldest, lineage.lineage_run))
}

/// The newest committed manifest's id and path (whatever its settings; `None`: no checkpoint yet).
pub fn newest_committed(out: &Path) -> Option<(u64, PathBuf)> {
    manifest_ids(out).first().map(|&id| (id, manifest_path(out, id)))
}

/// Whether manifest `id` is committed (and not yet pruned).
pub fn manifest_exists(out: &Path, id: u64) -> bool {
    manifest_path(out, id).exists()
}

/// The newest manifest's id and sink section, when it is newer than `than` (its other contents are skipped).
pub fn newest_sink_after(out: &Path, than: u64) -> Option<(u64, SinkCheckpoint)> {
    #[derive(Deserialize)]
    struct SinkOnly {
        id: u64,
        #[serde(default)]
        sink: Option<SinkCheckpoint>,
    }
    let newest = *manifest_ids(out).first()?;
    if newest <= than {
        return None;
    }
    let file = File::open(manifest_path(out, newest)).ok()?;
    let m: SinkOnly = serde_json::from_reader(BufReader::with_capacity(256 * 1024, file)).ok()?;
    Some((m.id, m.sink.unwrap_or_default()))
}

/// Deletes every checkpoint (for `--fresh`).
pub fn discard(out: &Path) -> Result<()> {
    let d = dir(out);
    if d.exists() {
        std::fs::remove_dir_all(&d).with_context(|| format!("cannot remove {}", d.display()))?;
    }
    Ok(())
}

/// Makes staged files visible: renames each into its device folder (created when new), then syncs each folder
/// once, and the history folder when a device folder is new.
pub fn publish(files: &[StagedFile]) -> Result<()> {
    let mut created = false;
    for f in files {
        let renamed = std::fs::rename(&f.hidden, &f.visible);
        let renamed = match (renamed, f.visible.parent()) {
            (Err(e), Some(folder)) if e.kind() == std::io::ErrorKind::NotFound && !folder.exists() => {
                std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
                created = true;
                std::fs::rename(&f.hidden, &f.visible)
            }
            (other, _) => other,
        };
        renamed.with_context(|| format!("cannot commit {} to {}", f.hidden.display(), f.visible.display()))?;
    }
    let mut dirs: Vec<&Path> = files.iter().filter_map(|f| f.visible.parent()).collect();
    dirs.sort();
    dirs.dedup();
    let Some(root) = dirs.first().and_then(|d| d.parent()) else {
        return Ok(());
    };
    if created {
        sync_dir(root)?;
    }
    Ok(sync_dirs(root, &dirs)?)
}

/// Brings the Parquet folder in line with the restored checkpoint: finishes the renames it committed, deletes
/// visible files of checkpoints newer than it (their rows are recomputed from Kafka) and their segments, and —
/// with or without a checkpoint — deletes staged and in-progress files and pending parts. A committed file that
/// is gone (compaction took it) is not renamed again. Idempotent, safe to run in every process.
pub fn prepare(out: &Path, restored: Option<&Manifest>) -> Result<()> {
    let newest = restored.map_or(0, |m| m.id);
    if let Some(m) = restored {
        let files: Vec<StagedFile> = m
            .files
            .iter()
            .filter(|f| out.join(&f.hidden).exists())
            .map(|f| f.staged(out))
            .collect();
        publish(&files)?;
    }
    // Files staged for checkpoints that did not commit, and segments no committed manifest names.
    for staged in std::fs::read_dir(staging_dir(out)).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(staged.path());
    }
    segment::discard_after(out, newest);
    let parquet = out.join(PARQUET_DIR);
    for device_dir in std::fs::read_dir(&parquet).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(device_dir.path()).into_iter().flatten().flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            let staged = is_in_progress(&name);
            let newer =
                restored.is_some_and(|m| PartName::parse(&name).is_some_and(|p| m.outdates(p.checkpoint, p.run)));
            if staged || newer {
                match std::fs::remove_file(file.path()) {
                    Ok(()) => {
                        tracing::info!(file = %file.path().display(), "discarded a file no checkpoint commits")
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot remove {}", file.path().display()));
                    }
                }
            }
        }
    }
    for entry in std::fs::read_dir(dir(out)).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with("pending-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// Writes one worker's part of checkpoint `part.id`, atomically but not durably: the manifest the committer
/// merges the parts into is the durable record (`durable::replace_with`). Its open windows (`part.windows` of
/// them) are already in the windows file beside it: the window operator wrote them at the barrier
/// (`windows_file::write_open`).
pub fn write_part(out: &Path, part: &Part) -> Result<()> {
    let d = pending_dir(out, part.id);
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    let path = d.join(format!("part-w{}.json", part.worker));
    replace_with(&path, |w| Ok(serde_json::to_writer(w, part)?))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A committed checkpoint: its manifest, without the open windows (they went to its file, not held), and
/// their number.
pub struct Committed {
    /// The manifest; its `windows` are left empty.
    pub manifest: Manifest,
    /// How many open windows it holds.
    pub windows: usize,
}

/// Merges the parts of checkpoint `id` from `workers` workers into its manifest (written when `meta.identity` is
/// given: Kafka input, whose cluster id it records) — the commit point — then publishes its files and prunes
/// old checkpoints. With `sink` (the sink section of the previous manifest, committed as checkpoint
/// `previous_id`; `--sink-topic`) the manifest carries the next one. Returns the manifest.
pub fn commit(
    out: &Path,
    id: u64,
    workers: usize,
    meta: ManifestMeta<'_>,
    sink: Option<(u64, &SinkCheckpoint)>,
) -> Result<Committed> {
    let identity = meta.identity;
    let d = pending_dir(out, id);
    let mut manifest = Manifest {
        version: VERSION,
        id,
        identity: identity.cloned().unwrap_or_default(),
        committed_at: model::time::now_ms(),
        cluster_id: meta.cluster_id.map(String::from),
        workers,
        lineage_run: meta.lineage_run,
        partitions: Vec::new(),
        windows: Spooled { files: Vec::new() },
        files: Vec::new(),
        unrolled: Vec::new(),
        sink: None,
    };
    let mut confirmed = BTreeMap::new();
    let mut segments = Vec::new();
    for w in 0..workers {
        let path = d.join(format!("part-w{w}.json"));
        let file = File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let part: Part = serde_json::from_reader(BufReader::with_capacity(256 * 1024, file))
            .with_context(|| format!("corrupt checkpoint part {}", path.display()))?;
        manifest.windows.files.push((windows_file::path(&d, w), part.windows));
        manifest.partitions.extend(part.partitions);
        manifest.files.extend(part.files);
        manifest.unrolled.extend(part.unrolled);
        segments.extend(part.segment);
        confirmed.extend(part.sink_confirmed);
    }
    manifest.partitions.sort_by_key(|p| p.partition);
    if let Some((previous_id, previous)) = sink {
        start_lineage(out)?;
        // A checkpoint that failed to commit left its windows in segments the workers still hold: they commit
        // now, with this one, and so do their transactions.
        let carried = manifest
            .unrolled
            .iter()
            .filter(|p| segment::SegmentName::of(p).is_some_and(|s| s.checkpoint > previous_id));
        segments.extend(carried.cloned());
        manifest.sink = Some(kafka_out::next_checkpoint(previous, &segments, &confirmed, workers));
    }
    if identity.is_some() {
        let path = manifest_path(out, id);
        write_atomic_with(&path, |w| Ok(serde_json::to_writer(w, &manifest)?))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let files: Vec<StagedFile> = manifest.files.iter().map(|f| f.staged(out)).collect();
    publish(&files)?;
    let _ = std::fs::remove_dir_all(&d);
    for old in manifest_ids(out).into_iter().skip(KEEP) {
        let _ = std::fs::remove_file(manifest_path(out, old));
    }
    sync_dir(&dir(out)).ok();
    let windows = manifest.windows.count();
    Ok(Committed {
        manifest: manifest.with_windows(Vec::new()),
        windows,
    })
}

/// The segments a manifest needs: those whose windows are in no file yet, and those the Kafka output may have
/// to publish again.
pub fn segments_named(m: &Manifest) -> impl Iterator<Item = &PathBuf> {
    let unconfirmed = m.sink.iter().flat_map(|s| s.unconfirmed.iter());
    m.unrolled.iter().chain(unconfirmed)
}

/// The segments the kept manifests name, by manifest id (read once when a job starts; the committer then keeps
/// the list up to date itself).
pub fn kept_segments(out: &Path) -> BTreeMap<u64, Vec<PathBuf>> {
    #[derive(Deserialize)]
    struct SegmentsOnly {
        #[serde(default)]
        unrolled: Vec<PathBuf>,
        #[serde(default)]
        sink: Option<SinkCheckpoint>,
    }
    let mut kept = BTreeMap::new();
    for id in manifest_ids(out).into_iter().take(KEEP) {
        let Ok(file) = File::open(manifest_path(out, id)) else {
            continue;
        };
        if let Ok(m) = serde_json::from_reader::<_, SegmentsOnly>(BufReader::with_capacity(256 * 1024, file)) {
            let unconfirmed = m.sink.map(|s| s.unconfirmed).unwrap_or_default();
            kept.insert(id, m.unrolled.into_iter().chain(unconfirmed).collect());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::OpenWindow;

    /// A part with its open windows beside it, as the window operator and the part writer leave them.
    fn write_part_with(out: &Path, part: &Part, windows: &[OpenWindow]) -> Result<()> {
        windows_file::write(out, part.id, part.worker, windows)?;
        write_part(out, part)
    }
    use crate::checkpoint::format::{FileCheckpoint, PartitionCheckpoint, UdfIdentity};
    use crate::checkpoint::segment;

    fn identity() -> Identity {
        Identity {
            topic: "t".into(),
            window_ms: 10_000,
            slide_ms: None,
            session_gap_ms: None,
            lateness_ms: 60_000,
            udfs: Vec::new(),
            query: "SELECT 1".into(),
            builtin: true,
        }
    }

    fn out_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ckpt-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("parquet/device_id=d")).unwrap();
        d
    }

    fn commit_one(out: &Path, id: u64) -> Manifest {
        let hidden = PathBuf::from(format!("parquet/device_id=d/.part-{id:012}-7-w0-1.parquet.inprogress"));
        std::fs::write(out.join(&hidden), b"x").unwrap();
        write_part_with(
            out,
            &Part {
                id,
                worker: 0,
                partitions: vec![PartitionCheckpoint {
                    partition: 0,
                    next_offset: id as i64 * 10,
                    ..Default::default()
                }],
                files: vec![FileCheckpoint {
                    hidden,
                    visible: PathBuf::from(format!("parquet/device_id=d/part-{id:012}-7-w0-1.parquet")),
                }],
                ..Default::default()
            },
            &[],
        )
        .unwrap();
        let identity = identity();
        let meta = ManifestMeta {
            identity: Some(&identity),
            cluster_id: Some("cluster-a"),
            lineage_run: 0,
        };
        commit(out, id, 1, meta, None).unwrap().manifest
    }

    #[test]
    fn newest_checkpoint_is_restored_and_its_files_are_visible() {
        let out = out_dir("newest");
        commit_one(&out, 1);
        commit_one(&out, 2);
        let m = load_newest(&out, &identity()).unwrap().unwrap();
        assert_eq!((m.id, m.partitions[0].next_offset), (2, 20));
        assert_eq!(m.cluster_id.as_deref(), Some("cluster-a"));
        assert!(
            out.join("parquet/device_id=d/part-000000000002-7-w0-1.parquet")
                .exists()
        );
    }

    fn open_window(device: &str, end: u64) -> OpenWindow {
        OpenWindow {
            start: end - 10_000,
            end,
            key: crate::messages::GroupKey::of([model::value::Value::Text(device.into())]),
            side: "hall".into(),
            accs: vec![
                sql::agg::Acc::Count(1),
                sql::agg::Acc::Min(model::value::Value::Float(90.0)),
            ],
        }
    }

    fn part_with_windows(out: &Path, id: u64, worker: usize, windows: &[OpenWindow]) {
        let part = Part {
            id,
            worker,
            windows: windows.len(),
            ..Default::default()
        };
        write_part_with(out, &part, windows).unwrap();
    }

    #[test]
    fn every_workers_open_windows_are_streamed_into_the_manifest_in_worker_order() {
        let out = out_dir("spooled");
        let w0 = [open_window("a", 20_000), open_window("b", 20_000)];
        let w1 = [open_window("c", 30_000)];
        part_with_windows(&out, 1, 0, &w0);
        part_with_windows(&out, 1, 1, &w1);
        let id = identity();
        let meta = ManifestMeta {
            identity: Some(&id),
            ..Default::default()
        };
        let committed = commit(&out, 1, 2, meta, None).unwrap();
        assert_eq!(committed.windows, 3);
        assert!(committed.manifest.windows.is_empty(), "not held after the commit");
        let back = load_newest(&out, &id).unwrap().unwrap();
        let devices: Vec<String> = back.windows.iter().map(|w| w.key[0].to_string()).collect();
        assert_eq!(devices, ["a", "b", "c"]);
        let restored: Vec<OpenWindow> = back.windows.iter().map(OpenWindow::from).collect();
        assert_eq!(restored, [w0.as_slice(), w1.as_slice()].concat());
    }

    #[test]
    fn a_part_whose_windows_file_is_short_does_not_commit() {
        let out = out_dir("short-windows");
        part_with_windows(&out, 1, 0, &[open_window("a", 20_000), open_window("b", 20_000)]);
        let path = windows_file::path(&pending_dir(&out, 1), 0);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.lines().next().unwrap()).unwrap();
        let id = identity();
        let meta = ManifestMeta {
            identity: Some(&id),
            ..Default::default()
        };
        let err = format!("{:#}", commit(&out, 1, 1, meta, None).err().expect("no commit"));
        assert!(err.contains("1 windows where its part says 2"), "{err}");
        assert!(
            !manifest_exists(&out, 1),
            "no manifest for a checkpoint missing windows"
        );
    }

    #[test]
    fn a_manifest_written_before_cluster_ids_loads_without_one() {
        let out = out_dir("no-cluster-id");
        let mut m = commit_one(&out, 1);
        m.cluster_id = None;
        let mut text: serde_json::Value = serde_json::to_value(&m).unwrap();
        assert!(text.as_object_mut().unwrap().remove("cluster_id").is_none());
        std::fs::write(manifest_path(&out, 1), serde_json::to_vec(&text).unwrap()).unwrap();
        let back = load_newest(&out, &identity()).unwrap().unwrap();
        assert_eq!(back.cluster_id, None);
        assert_eq!(back.partitions, m.partitions);
    }

    #[test]
    fn corrupt_newest_checkpoint_falls_back_and_discards_its_files() {
        let out = out_dir("corrupt");
        commit_one(&out, 1);
        commit_one(&out, 2);
        let newest = manifest_path(&out, 2);
        let text = std::fs::read(&newest).unwrap();
        std::fs::write(&newest, &text[..text.len() / 2]).unwrap();
        let m = load_newest(&out, &identity()).unwrap().unwrap();
        assert_eq!(m.id, 1);
        prepare(&out, Some(&m)).unwrap();
        assert!(
            out.join("parquet/device_id=d/part-000000000001-7-w0-1.parquet")
                .exists()
        );
        assert!(
            !out.join("parquet/device_id=d/part-000000000002-7-w0-1.parquet")
                .exists()
        );
    }

    fn seg(checkpoint: u64) -> PathBuf {
        let name = segment::SegmentName {
            checkpoint,
            run: 7,
            worker: 0,
        };
        PathBuf::from("_checkpoints/segments").join(name.file_name())
    }

    #[test]
    fn a_manifest_of_the_kafka_output_carries_its_unconfirmed_segments_and_starts_a_lineage() {
        let out = out_dir("sink");
        let part = Part {
            id: 1,
            segment: Some(seg(1)),
            unrolled: vec![seg(1)],
            ..Default::default()
        };
        write_part_with(&out, &part, &[]).unwrap();
        assert!(lineage(&out).is_err(), "no lineage before the first manifest");
        let id = identity();
        let meta = ManifestMeta {
            identity: Some(&id),
            ..Default::default()
        };
        let m = commit(&out, 1, 1, meta, Some((0, &SinkCheckpoint::default())))
            .unwrap()
            .manifest;
        let sink = m.sink.clone().expect("a sink section");
        assert_eq!((sink.unconfirmed, sink.writers), (vec![seg(1)], 1));
        assert_eq!(m.unrolled, vec![seg(1)]);
        let first = lineage(&out).unwrap();
        assert!(manifest_exists(&out, 1) && !manifest_exists(&out, 2));
        assert_eq!(
            newest_sink_after(&out, 0).map(|(id, s)| (id, s.unconfirmed)),
            Some((1, vec![seg(1)]))
        );
        assert_eq!(newest_sink_after(&out, 1), None);
        // Checkpoint 2 did not commit: its segment, still held, commits with checkpoint 3, and so must its
        // transaction.
        write_part_with(
            &out,
            &Part {
                id: 3,
                segment: Some(seg(3)),
                unrolled: vec![seg(1), seg(2), seg(3)],
                sink_confirmed: [(0, 1)].into(),
                ..Default::default()
            },
            &[],
        )
        .unwrap();
        let m = commit(&out, 3, 1, meta, Some((1, m.sink.as_ref().unwrap())))
            .unwrap()
            .manifest;
        assert_eq!(
            m.sink.as_ref().unwrap().unconfirmed,
            vec![seg(2), seg(3)],
            "1 confirmed by its writer"
        );
        assert_eq!(lineage(&out).unwrap(), first, "a lineage lasts until --fresh");
        let back: Manifest = serde_json::from_slice(&std::fs::read(manifest_path(&out, 3)).unwrap()).unwrap();
        assert!(back.sink.is_some());
        let kept = kept_segments(&out);
        assert_eq!(kept[&1], vec![seg(1), seg(1)]);
        assert_eq!(kept[&3], vec![seg(1), seg(2), seg(3), seg(2), seg(3)]);
        assert_eq!(segments_named(&back).count(), 5);
    }

    #[test]
    fn a_restore_keeps_the_files_of_an_earlier_lineage_whatever_their_checkpoint_numbers() {
        let out = out_dir("lineage");
        let mut m = commit_one(&out, 1);
        let earlier = out.join("parquet/device_id=d/part-000000000900-5-w0-1.parquet");
        let this_lineage = out.join("parquet/device_id=d/part-000000000900-50-w0-1.parquet");
        std::fs::write(&earlier, b"x").unwrap();
        std::fs::write(&this_lineage, b"x").unwrap();
        m.lineage_run = 50;
        prepare(&out, Some(&m)).unwrap();
        assert!(earlier.exists(), "written before a --fresh: not this lineage's");
        assert!(
            !this_lineage.exists(),
            "this lineage's, newer than the checkpoint: recomputed"
        );
    }

    #[test]
    fn only_the_last_few_checkpoints_are_kept() {
        let out = out_dir("keep");
        for id in 1..=5 {
            commit_one(&out, id);
        }
        assert_eq!(manifest_ids(&out), vec![5, 4, 3]);
    }

    #[test]
    fn in_progress_files_without_a_checkpoint_are_discarded_and_history_kept() {
        let out = out_dir("stray");
        let stray = out.join("parquet/device_id=d/.part-000000000007-5-w1-3.parquet.inprogress");
        let kept = out.join("parquet/device_id=d/part-000000000007-5-w1-3.parquet");
        std::fs::write(&stray, b"x").unwrap();
        std::fs::write(&kept, b"x").unwrap();
        prepare(&out, None).unwrap();
        assert!(!stray.exists());
        assert!(kept.exists(), "without a checkpoint, committed history is left alone");
    }

    #[test]
    fn checkpoint_for_other_settings_is_refused_naming_the_flag() {
        let out = out_dir("identity");
        commit_one(&out, 1);
        let mut other = identity();
        other.window_ms = 30_000;
        let err = load_newest(&out, &other).unwrap_err().to_string();
        assert!(
            err.contains("--window") && err.contains("--fresh") && err.contains("_checkpoints"),
            "{err}"
        );
        other = identity();
        other.slide_ms = Some(5_000);
        let err = load_newest(&out, &other).unwrap_err().to_string();
        assert!(
            err.contains("written with --window 10s but this run has --window 10s --slide 5s"),
            "{err}"
        );
        other = identity();
        other.window_ms = 0;
        other.session_gap_ms = Some(5_000);
        let err = load_newest(&out, &other).unwrap_err().to_string();
        assert!(err.contains("this run has --session-gap 5s"), "{err}");
        other = identity();
        other.topic = "u".into();
        assert!(load_newest(&out, &other).unwrap_err().to_string().contains("--topic"));
        other = identity();
        other.udfs = vec![UdfIdentity {
            name: "heat_index".into(),
            source_hash: "ab".repeat(32),
        }];
        let err = load_newest(&out, &other).unwrap_err().to_string();
        assert!(
            err.contains("written with no UDF but this run has heat_index (source abababababab)")
                && err.contains("--fresh"),
            "{err}"
        );
        other = identity();
        other.query = "SELECT 2".into();
        let err = load_newest(&out, &other).unwrap_err().to_string();
        assert!(err.contains("another query") && err.contains("--fresh"), "{err}");
        other.builtin = false;
        let err = load_newest(&out, &other).unwrap_err().to_string();
        assert!(err.contains("--sql") && err.contains("--fresh"), "{err}");
    }

    #[test]
    fn a_checkpoint_of_another_format_version_is_refused_naming_fresh() {
        let out = out_dir("version");
        commit_one(&out, 1);
        let path = manifest_path(&out, 1);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"version\":2", "\"version\":1");
        std::fs::write(&path, text).unwrap();
        let err = load_newest(&out, &identity()).unwrap_err().to_string();
        assert!(err.contains("another version") && err.contains("--fresh"), "{err}");
    }
}
