//! The history of one group read from the Parquet output: `<data>/parquet/<first key>=<escaped text>/*.parquet`,
//! in the layout of the output contract (Hive-partitioned by the first key; every other column inside the
//! files), whose reader ([`model::history`]) lists and opens the files. The rows of a query of several keys are
//! those of the folder whose other keys match. The only path ever built from a request is the partition folder:
//! the first key's name (from the document's columns, letters, digits and `_` only) and its text escaped by
//! [`model::partition::escape_partition_value`], so no key can name a file outside its folder. Hidden in-progress
//! files (`.` or `_` prefix) are never read, and a folder that compaction swaps during a request is read again
//! ([`model::history::read_folder`]). The span of every file's windows (from its footer's statistics), its
//! columns and the rows of the files read lately are kept in a [`SpanCache`], keyed by the file's folder, name
//! and inode (all from the folder listing: no file is opened or even `stat`ed to look it up), so a request over
//! thousands of files lists the folder and opens none of the files it has seen before.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use model::history::{FileError, HistoryFile, ListedFile, ReadError, WindowSpan, read_folder};
use model::output::{OutputColumn, OutputSchema};
use model::partition::escape_partition_value;

use super::history_rows::{FileColumn, answer_columns, file_columns, rows_of};
pub use super::history_rows::{HistoryKeys, HistoryRow};

/// Rows answered when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 10_000;
/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 100_000;
/// Longest partition folder name a file system takes.
const MAX_FOLDER_NAME: usize = 255;

/// One history request, already validated.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryQuery {
    /// The texts of the group's key values, in key order (for the built-in job, the device id alone).
    pub key: Vec<String>,
    /// Keep windows that end after this instant (epoch ms).
    pub from_ms: Option<i64>,
    /// Keep windows that start before this instant (epoch ms).
    pub to_ms: Option<i64>,
    /// Keep at most this many of the newest matching windows.
    pub limit: usize,
}

impl HistoryQuery {
    /// The whole history of a group (up to [`DEFAULT_LIMIT`] of its newest windows).
    pub fn of(key: Vec<String>) -> HistoryQuery {
        HistoryQuery {
            key,
            from_ms: None,
            to_ms: None,
            limit: DEFAULT_LIMIT,
        }
    }

    /// Whether the span `[start, end)` (epoch ms) overlaps `[from, to)`.
    fn overlaps(&self, start: i64, end: i64) -> bool {
        !(self.from_ms.is_some_and(|from| end <= from) || self.to_ms.is_some_and(|to| start >= to))
    }
}

/// The answer: final windows sorted by start, their columns, plus the files that could not be read.
#[derive(Debug, Default)]
pub struct History {
    /// Matching windows, oldest first.
    pub rows: Vec<HistoryRow>,
    /// The columns of the rows: the first key, then the columns of the files read, the document's in its order
    /// and any other after them.
    pub columns: Vec<OutputColumn>,
    /// True when older matching windows were (or, for files not opened, may have been) left out because of
    /// `limit`.
    pub truncated: bool,
    /// Files skipped, each with the reason (the rows of the other files are still answered).
    pub problems: Vec<String>,
}

/// Why a history request cannot be answered at all.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The request does not name a group of the query (one text per key), or its folder cannot exist.
    #[error("{0}")]
    Key(String),
    /// The partition folder exists but cannot be listed, or its files kept vanishing under the reads.
    #[error(transparent)]
    Folder(#[from] ReadError),
}

/// What the history reader keeps of the files it has seen: the span of each file's windows, its columns and,
/// for the files read lately, their rows. A file is known by its folder, name and inode: a committed history
/// file is never rewritten in place (it is written under a hidden name and renamed; compaction writes new
/// names), and a file replaced by a rename gets a new inode. Rows depend on the keys they were read for, so a
/// folder read for other keys starts afresh. Bounded: past [`SpanCache::CAPACITY`] files, or [`SpanCache::ROWS`]
/// cached rows, it starts over.
#[derive(Default)]
pub struct SpanCache {
    folders: Mutex<HashMap<PathBuf, Folder>>,
}

/// What is known of one folder's files, read for the keys `keys`.
struct Folder {
    keys: HistoryKeys,
    files: HashMap<FileKey, Known>,
}

/// A file of a folder: its name and inode.
type FileKey = (String, u64);

/// What is known of one file.
struct Known {
    span: WindowSpan,
    columns: Arc<[FileColumn]>,
    /// Its rows, when it was read lately.
    rows: Option<Arc<Vec<HistoryRow>>>,
}

/// Counts of what the cache holds.
struct Held {
    files: usize,
    rows: usize,
}

impl SpanCache {
    /// Files known at most (about 100 bytes each).
    pub const CAPACITY: usize = 1_000_000;
    /// Rows kept at most (about 400 bytes each).
    pub const ROWS: usize = 200_000;

    /// What is known of the files of `dir` read for `keys`, taken out until [`SpanCache::remember`] puts it back
    /// (a request for the same folder meanwhile finds nothing and reads the footers itself).
    fn take(&self, dir: &Path, keys: &HistoryKeys) -> HashMap<FileKey, Known> {
        let mut folders = self.folders.lock().expect("not poisoned");
        match folders.remove(dir) {
            Some(f) if f.keys == *keys => f.files,
            _ => HashMap::new(),
        }
    }

    /// Remembers the files of `dir` now known (the folder's map is replaced: files gone from it are forgotten; a
    /// folder without files, such as that of a group asked for but unknown, is not kept).
    fn remember(&self, dir: &Path, keys: &HistoryKeys, files: HashMap<FileKey, Known>) {
        if files.is_empty() {
            return;
        }
        let mut folders = self.folders.lock().expect("not poisoned");
        folders.insert(
            dir.to_path_buf(),
            Folder {
                keys: keys.clone(),
                files,
            },
        );
        let held = Self::held(&folders);
        if held.files > Self::CAPACITY {
            folders.clear();
        } else if held.rows > Self::ROWS {
            for k in folders.values_mut().flat_map(|f| f.files.values_mut()) {
                k.rows = None;
            }
        }
    }

    fn held(folders: &HashMap<PathBuf, Folder>) -> Held {
        let mut held = Held { files: 0, rows: 0 };
        for k in folders.values().flat_map(|f| f.files.values()) {
            held.files += 1;
            held.rows += k.rows.as_ref().map_or(0, |r| r.len());
        }
        held
    }

    /// Files known.
    pub fn len(&self) -> usize {
        Self::held(&self.folders.lock().expect("not poisoned")).files
    }

    /// No file known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The partition folder of a group whose first key is `keys.first` with the text `text`: `<name>=<escaped>`.
/// A name that is no plain column name, or a folder name too long for a file system, is refused.
pub fn partition_folder(keys: &HistoryKeys, text: &str) -> Result<String, HistoryError> {
    let name = &keys.first.name;
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(HistoryError::Key(format!(
            "the first key `{name}` is not a plain column name: no history folder is read for it"
        )));
    }
    // The group of a NULL first key (a nullable key: a joined table's column) lives in Hive's default folder.
    let folder = if keys.first.nullable && text == model::latest::NULL_KEY_TEXT {
        format!("{name}={}", model::history::rows::NULL_PARTITION)
    } else {
        format!("{name}={}", escape_partition_value(text))
    };
    if folder.len() > MAX_FOLDER_NAME {
        return Err(HistoryError::Key(format!(
            "the `{name}` text is too long to name a history folder ({} bytes escaped, at most {MAX_FOLDER_NAME})",
            folder.len()
        )));
    }
    Ok(folder)
}

/// Reads the final windows of one group of a query whose columns are `schema` from the Parquet history under
/// `parquet_root`.
///
/// A group without a partition folder has no final window yet: that is an empty answer, not an error.
/// Files whose statistics put them outside `from`/`to` are not read, and files are read newest first so that a
/// `limit` stops the scan once older files cannot matter: of a long history only the spans of the older files
/// are looked at, from `cache` when they were seen before.
/// Blocking: call from a blocking context.
pub fn read_history(
    parquet_root: &Path,
    schema: &OutputSchema,
    query: &HistoryQuery,
    cache: &SpanCache,
) -> Result<History, HistoryError> {
    let keys = HistoryKeys::of(schema);
    if query.key.len() != schema.key_count() {
        let names: Vec<&str> = schema.keys().iter().map(|k| k.name.as_str()).collect();
        return Err(HistoryError::Key(format!(
            "the query has {} key(s) ({}); {} value(s) given: give one per key, in order",
            names.len(),
            names.join(", "),
            query.key.len()
        )));
    }
    let dir = parquet_root.join(partition_folder(&keys, &query.key[0])?);
    // A file that vanishes between the listing and its reading was compacted away (the folder was swapped for
    // its compacted version): the whole folder is listed and read again, so no window is missed or read twice.
    let read = read_folder(&dir, |listed| read_listed(&dir, &keys, listed, query, cache))?;
    let mut history = read.history;
    history.columns = answer_columns(schema, &keys, read.columns_read.iter().flat_map(|c| c.iter()));
    Ok(history)
}

/// One read of a folder, with the columns of the files whose rows were taken.
struct Read {
    history: History,
    columns_read: Vec<Arc<[FileColumn]>>,
}

/// One read of the group's folder as `listed`. Unreadable files are skipped and named in the answer; the only
/// error is a listed file gone ([`ReadError::is_vanished`]), which makes [`read_folder`] list the folder again.
fn read_listed(
    dir: &Path,
    keys: &HistoryKeys,
    listed: Vec<ListedFile>,
    query: &HistoryQuery,
    cache: &SpanCache,
) -> Result<Read, ReadError> {
    let mut history = History::default();
    let mut columns_read = Vec::new();
    let mut before = cache.take(dir, keys);
    let mut now: HashMap<FileKey, Known> = HashMap::with_capacity(listed.len());
    // Footers this request has read of the files it will read, so that no footer is read twice.
    let mut opened: HashMap<FileKey, HistoryFile> = HashMap::new();
    let mut candidates: Vec<(FileKey, WindowSpan)> = Vec::new();
    for file in listed {
        let key = (file.name, file.inode);
        let (known, footer) = match before.remove(&key) {
            Some(k) => (k, None),
            None => match HistoryFile::open(&file.path) {
                Ok(footer) => {
                    let known = Known {
                        span: footer.window_span(),
                        columns: file_columns(footer.schema()).into(),
                        rows: None,
                    };
                    (known, Some(footer))
                }
                Err(e) if e.is_vanished() => return Err(e),
                Err(e) => {
                    skip(&file.path, &e, &mut history.problems);
                    continue;
                }
            },
        };
        if query.overlaps(known.span.min_start, known.span.max_end) {
            candidates.push((key.clone(), known.span));
            if let Some(footer) = footer {
                opened.insert(key.clone(), footer);
            }
        }
        now.insert(key, known);
    }
    candidates.sort_by_key(|(_, span)| std::cmp::Reverse(span.max_start));

    let mut rows: Vec<HistoryRow> = Vec::new();
    for (key, span) in candidates {
        if rows.len() >= query.limit && span.max_start < nth_newest_start(&rows, query.limit) {
            // Every remaining file holds only windows older than the `limit` newest already found.
            history.truncated = true;
            break;
        }
        let known = now.get_mut(&key).expect("listed");
        let file_rows = match &known.rows {
            Some(r) => Arc::clone(r),
            None => {
                let path = dir.join(&key.0);
                let read = match opened.remove(&key) {
                    Some(footer) => Ok(footer),
                    None => HistoryFile::open(&path),
                }
                .and_then(|f| read_rows(&f, keys, &query.key[0]));
                match read {
                    Ok(r) => {
                        let r = Arc::new(r);
                        known.rows = Some(Arc::clone(&r));
                        r
                    }
                    Err(e) if e.is_vanished() => return Err(e),
                    Err(e) => {
                        skip(&path, &e, &mut history.problems);
                        continue;
                    }
                }
            }
        };
        columns_read.push(Arc::clone(&known.columns));
        let ms = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
        rows.extend(
            file_rows
                .iter()
                .filter(|r| *r.other_keys == query.key[1..] && query.overlaps(ms(r.window_start), ms(r.window_end)))
                .cloned(),
        );
    }
    cache.remember(dir, keys, now);
    rows.sort_by_key(|r| (r.window_start, r.window_end));
    if rows.len() > query.limit {
        rows.drain(..rows.len() - query.limit);
        history.truncated = true;
    }
    history.rows = rows;
    Ok(Read { history, columns_read })
}

/// Every row of one file of the folder of `first_text`.
fn read_rows(file: &HistoryFile, keys: &HistoryKeys, first_text: &str) -> Result<Vec<HistoryRow>, ReadError> {
    let mut rows = Vec::new();
    for batch in file.batches()? {
        let read = rows_of(&batch?, keys, first_text).map_err(|e| ReadError::File {
            path: file.path().to_path_buf(),
            source: FileError::Columns(e),
        })?;
        rows.extend(read);
    }
    Ok(rows)
}

/// Notes an unreadable file: logged with its path, answered as `<name>: <why>` (no path of the server's).
fn skip(path: &Path, error: &ReadError, problems: &mut Vec<String>) {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let why = error
        .file_error()
        .map_or_else(|| error.to_string(), ToString::to_string);
    tracing::warn!(file = %path.display(), error = %why, "skipping unreadable history file");
    problems.push(format!("{name}: {why}"));
}

/// The `n`-th largest window start among `rows` (`rows.len() >= n >= 1`), as the signed time of the statistics.
fn nth_newest_start(rows: &[HistoryRow], n: usize) -> i64 {
    let mut starts: Vec<u64> = rows.iter().map(|r| r.window_start).collect();
    let (_, nth, _) = starts.select_nth_unstable_by(n - 1, |a, b| b.cmp(a));
    i64::try_from(*nth).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_without_history_is_an_empty_answer() {
        let root = std::env::temp_dir().join(format!("dashboard-history-none-{}", std::process::id()));
        let q = HistoryQuery::of(vec!["../../etc/passwd".into()]);
        let h = read_history(&root, &model::latest::seed_schema(&[]), &q, &SpanCache::default()).unwrap();
        assert!(h.rows.is_empty() && h.problems.is_empty() && !h.truncated);
    }

    #[test]
    fn a_request_names_one_text_per_key_and_a_folder_that_can_exist() {
        let root = std::env::temp_dir();
        let seed = model::latest::seed_schema(&[]);
        let two = HistoryQuery::of(vec!["a".into(), "b".into()]);
        let err = read_history(&root, &seed, &two, &SpanCache::default()).unwrap_err();
        assert!(
            err.to_string().contains("1 key(s) (device_id); 2 value(s) given"),
            "{err}"
        );
        let long = HistoryQuery::of(vec!["/".repeat(100)]);
        let err = read_history(&root, &seed, &long, &SpanCache::default()).unwrap_err();
        assert!(err.to_string().contains("too long"), "{err}");
        let mut odd = HistoryKeys::of(&seed);
        odd.first.name = "../x".into();
        assert!(partition_folder(&odd, "a").is_err());
        assert_eq!(
            partition_folder(&HistoryKeys::of(&seed), "a/b").unwrap(),
            "device_id=a%2Fb",
            "the dataflow's escaping"
        );
        // A nullable first key's NULL group reads Hive's default folder; a key that is never NULL reads `NULL`.
        let mut nullable = HistoryKeys::of(&seed);
        nullable.first.nullable = true;
        assert_eq!(
            partition_folder(&nullable, "NULL").unwrap(),
            "device_id=__HIVE_DEFAULT_PARTITION__"
        );
        assert_eq!(
            partition_folder(&HistoryKeys::of(&seed), "NULL").unwrap(),
            "device_id=NULL"
        );
    }
}
