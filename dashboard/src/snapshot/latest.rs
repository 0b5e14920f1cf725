//! Reading `latest.json` into a snapshot (the document, its device table and its summary, built once per file
//! version) and keeping the last good one. A missing, partial or corrupt file never replaces a good document:
//! it is recorded as the current error and the last good document keeps being served, so a reader always gets
//! either a complete document or a clear error, never half of one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use model::LatestDoc;
use model::latest::FILE_NAME;
use model::output::OutputSchema;
use serde::Serialize;

use super::changes;
use super::devices::GroupTable;

/// A complete, valid `latest.json` as read from disk.
#[derive(Debug)]
pub struct Snapshot {
    /// The file's bytes, unchanged (what `/metrics` serves).
    pub raw: Arc<[u8]>,
    /// The parsed document without its records (they are in `groups`).
    pub doc: LatestDoc<()>,
    /// Its columns (declared, or the seed's: [`LatestDoc::schema`]).
    pub schema: OutputSchema,
    /// Its groups, for the page's queries and the pushes' changes.
    pub groups: GroupTable,
    /// What the page is told besides the group charts (see [`changes::summary`]).
    pub summary: serde_json::Value,
    /// When this document was read.
    pub read_at: SystemTime,
}

impl Snapshot {
    /// The snapshot of the document `raw`, parsed as `doc`, read at `read_at`.
    pub fn new(raw: Vec<u8>, doc: LatestDoc, read_at: SystemTime) -> Snapshot {
        let schema = doc.schema();
        let builtin = doc.is_builtin();
        let (doc, records) = doc.split_records();
        let groups = GroupTable::of(records, &schema, builtin);
        let summary = changes::summary(&doc, &schema, &changes::pipeline_as_written(&raw), &groups);
        Snapshot {
            raw: raw.into(),
            doc,
            schema,
            groups,
            summary,
            read_at,
        }
    }
}

/// What the dashboard currently knows: the last good document and the current problem, if any.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// Bumped on every change of `snapshot` or `error`.
    pub generation: u64,
    /// The last good document; `None` until one has been read.
    pub snapshot: Option<Arc<Snapshot>>,
    /// Why the current file could not be used (missing, unreadable, not a valid document).
    pub error: Option<String>,
    /// Unusable versions of the file seen since start (each missing/corrupt episode or bad version counts once).
    pub read_errors_total: u64,
}

/// Identity of one version of the file: a rename, a rewrite or an append changes at least one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileSig {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl FileSig {
    fn of(meta: &fs::Metadata) -> FileSig {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        FileSig {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

struct State {
    view: View,
    /// Signature of the file version behind `view.snapshot`; a version that failed is not remembered, so it is
    /// read again on the next check (a writer that does not rename atomically may still be writing it).
    good_sig: Option<FileSig>,
    /// Signature of the last version that failed, so that one bad version counts once in `read_errors_total`.
    failed_sig: Option<Option<FileSig>>,
}

/// The current `latest.json`, re-read when the file changes.
pub struct LatestStore {
    path: PathBuf,
    stale_after: Duration,
    state: Mutex<State>,
}

/// Whether the data is fit to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// A recent, valid document.
    Ok,
    /// A valid document exists but it is old, or the current file cannot be read.
    Stale,
    /// No valid document has ever been read.
    Missing,
}

/// The `/api/health` answer.
#[derive(Clone, Debug, Serialize)]
pub struct Health {
    /// ok, stale or missing.
    pub status: HealthStatus,
    /// Seconds since the document's `updated_at` (by this machine's clock).
    pub age_seconds: Option<f64>,
    /// The document's `updated_at`, epoch seconds.
    pub updated_at: Option<u64>,
    /// The job's watermark, RFC 3339.
    pub watermark: Option<String>,
    /// Wall clock minus watermark as reported by the job, milliseconds (`null` without a watermark: no delay can
    /// be told, which is not a delay of 0).
    pub watermark_delay_ms: Option<i64>,
    /// Groups in the document (devices, for the built-in job).
    pub devices: usize,
    /// Why the current file cannot be used; `null` when it can.
    pub last_error: Option<String>,
    /// Unusable versions of the file seen since the dashboard started.
    pub read_errors_total: u64,
    /// `--stale-after` in seconds.
    pub stale_after_seconds: f64,
    /// The file being watched.
    pub file: String,
}

impl LatestStore {
    /// A store for `<data>/latest.json`; nothing is read until [`LatestStore::refresh`].
    pub fn new(data_dir: &Path, stale_after: Duration) -> LatestStore {
        LatestStore {
            path: data_dir.join(FILE_NAME),
            stale_after,
            state: Mutex::new(State {
                view: View::default(),
                good_sig: None,
                failed_sig: None,
            }),
        }
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `--stale-after`.
    pub fn stale_after(&self) -> Duration {
        self.stale_after
    }

    /// A copy of the current view.
    pub fn view(&self) -> View {
        self.lock().view.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated (every update is one assignment
        // of complete values), so a poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks the file and re-reads it if it changed. Returns the view after the check. Blocking: call from a
    /// blocking context.
    pub fn refresh(&self) -> View {
        let meta = fs::metadata(&self.path);
        let sig = match &meta {
            Ok(m) if m.is_file() => Some(FileSig::of(m)),
            _ => None,
        };
        {
            let state = self.lock();
            if sig.is_some() && sig == state.good_sig && state.view.error.is_none() {
                return state.view.clone();
            }
        }
        let outcome = match meta {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!(
                "{} does not exist (yet): is the dataflow running with --out {}?",
                self.path.display(),
                self.path.parent().unwrap_or(Path::new(".")).display()
            )),
            Err(e) => Err(format!("cannot inspect {}: {e}", self.path.display())),
            Ok(m) if !m.is_file() => Err(format!("{} is not a file", self.path.display())),
            Ok(_) => read_snapshot(&self.path),
        };
        let mut state = self.lock();
        match outcome {
            Ok(snapshot) => {
                if state.view.error.is_some() {
                    tracing::info!(file = %self.path.display(), "latest.json is readable again");
                }
                state.view.snapshot = Some(Arc::new(snapshot));
                state.view.error = None;
                state.view.generation += 1;
                state.good_sig = sig;
                state.failed_sig = None;
            }
            Err(message) => {
                let new_message = state.view.error.as_deref() != Some(message.as_str());
                if new_message || state.failed_sig != Some(sig) {
                    state.view.read_errors_total += 1;
                    state.failed_sig = Some(sig);
                }
                if new_message {
                    tracing::warn!(error = %message, "latest.json not usable; serving the last good document");
                    state.view.error = Some(message);
                    state.view.generation += 1;
                }
            }
        }
        state.view.clone()
    }

    /// The health summary at wall-clock time `now`.
    pub fn health(&self, view: &View, now: SystemTime) -> Health {
        let doc = view.snapshot.as_ref().map(|s| &s.doc);
        let groups = view.snapshot.as_ref().map_or(0, |s| s.groups.len());
        let age_seconds = view.snapshot.as_ref().map(|s| age_seconds(s, now));
        let status = match age_seconds {
            None => HealthStatus::Missing,
            Some(age) if view.error.is_some() || age > self.stale_after.as_secs_f64() => HealthStatus::Stale,
            Some(_) => HealthStatus::Ok,
        };
        Health {
            status,
            age_seconds,
            updated_at: doc.map(|d| d.updated_at),
            watermark: doc.and_then(|d| d.watermark.clone()),
            watermark_delay_ms: doc
                .filter(|d| d.watermark.is_some())
                .map(|d| d.pipeline.watermark_delay_ms),
            devices: groups,
            last_error: view.error.clone(),
            read_errors_total: view.read_errors_total,
            stale_after_seconds: self.stale_after.as_secs_f64(),
            file: self.path.display().to_string(),
        }
    }
}

/// Seconds since the document was written: its `updated_at` if set, else the time it was read.
pub fn age_seconds(snapshot: &Snapshot, now: SystemTime) -> f64 {
    let written = if snapshot.doc.updated_at > 0 {
        UNIX_EPOCH + Duration::from_secs(snapshot.doc.updated_at)
    } else {
        snapshot.read_at
    };
    match now.duration_since(written) {
        Ok(d) => d.as_secs_f64(),
        // A writer whose clock is ahead: the document is as fresh as it gets.
        Err(_) => 0.0,
    }
}

fn read_snapshot(path: &Path) -> Result<Snapshot, String> {
    let raw = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(format!(
            "{} is empty (a writer that does not replace it atomically?)",
            path.display()
        ));
    }
    let mut doc: LatestDoc = serde_json::from_slice(&raw).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "is truncated (partial write?)",
            serde_json::error::Category::Data => "is JSON but not a latest.json document",
            _ => "is not valid JSON",
        };
        format!("{} {what}: {e}", path.display())
    })?;
    doc.check_records()
        .map_err(|e| format!("{} is JSON but not a latest.json document: {e}", path.display()))?;
    Ok(Snapshot::new(raw, doc, SystemTime::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"updated_at": 1730638580, "watermark": "2024-11-03T14:29:10Z",
        "records": [{"device_id":"d1","window_start":"2024-11-03T14:30:00Z","window_end":"2024-11-03T14:30:10Z",
                     "count":40,"avg_temperature":24.52,"avg_humidity":54.87,"min_battery":80.1,"max_battery":85.3,
                     "stddev_temperature":0.4,"warn_count":1,"error_count":0,"final":false}],
        "pipeline": {"events_total":5,"late_total":0,"bad_total":0,"input_rate":0.0,"batch_ms":0.0,"lag":0,
                     "watermark_delay_ms":1200,"workers":1}}"#;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dashboard-latest-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A store on a fresh folder named after `name` holding `GOOD` as `latest.json`; returns the folder too.
    fn store_with_good_file(name: &str) -> (PathBuf, LatestStore) {
        let dir = temp_dir(name);
        fs::write(dir.join(FILE_NAME), GOOD).unwrap();
        let store = LatestStore::new(&dir, Duration::from_secs(30));
        (dir, store)
    }

    #[test]
    fn a_good_file_is_served_byte_for_byte() {
        let (_, store) = store_with_good_file("good");
        let view = store.refresh();
        let snap = view.snapshot.unwrap();
        assert_eq!(&*snap.raw, GOOD.as_bytes());
        assert_eq!(snap.groups.len(), 1);
        assert!(view.error.is_none());
    }

    #[test]
    fn a_corrupt_file_keeps_the_last_good_document() {
        let (dir, store) = store_with_good_file("corrupt");
        let path = dir.join(FILE_NAME);
        let first = store.refresh();
        for bad in ["", "{\"updated_at\": 17", "[1,2]", "not json"] {
            fs::write(&path, bad).unwrap();
            let view = store.refresh();
            assert!(view.error.is_some(), "{bad:?} must be an error");
            assert_eq!(
                view.snapshot.as_ref().unwrap().raw,
                first.snapshot.as_ref().unwrap().raw
            );
        }
        fs::remove_file(&path).unwrap();
        let view = store.refresh();
        assert!(view.error.unwrap().contains("does not exist"));
        assert!(view.snapshot.is_some());
        fs::write(&path, GOOD.replace("\"events_total\":5", "\"events_total\":6")).unwrap();
        let view = store.refresh();
        assert!(view.error.is_none());
        assert_eq!(view.snapshot.unwrap().doc.pipeline.events_total, 6);
    }

    #[test]
    fn health_reports_missing_stale_and_ok() {
        let dir = temp_dir("health");
        let store = LatestStore::new(&dir, Duration::from_secs(30));
        let view = store.refresh();
        assert_eq!(store.health(&view, SystemTime::now()).status, HealthStatus::Missing);
        fs::write(dir.join(FILE_NAME), GOOD).unwrap();
        let view = store.refresh();
        let written = UNIX_EPOCH + Duration::from_secs(1_730_638_580);
        let fresh = store.health(&view, written + Duration::from_secs(5));
        assert_eq!(fresh.status, HealthStatus::Ok);
        assert_eq!(fresh.age_seconds, Some(5.0));
        assert_eq!(fresh.watermark_delay_ms, Some(1200));
        assert_eq!(fresh.devices, 1);
        let old = store.health(&view, written + Duration::from_secs(31));
        assert_eq!(old.status, HealthStatus::Stale);
    }

    #[test]
    fn an_unchanged_file_is_not_read_again() {
        let (_, store) = store_with_good_file("unchanged");
        let a = store.refresh();
        let b = store.refresh();
        assert_eq!(a.generation, b.generation);
        assert!(Arc::ptr_eq(a.snapshot.as_ref().unwrap(), b.snapshot.as_ref().unwrap()));
    }
}
