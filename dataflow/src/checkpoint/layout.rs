//! The folders of the checkpoint protocol inside the output folder, named once: `_checkpoints/` (manifests,
//! the lineage), `_checkpoints/pending-<id>/` (a checkpoint's parts until it commits), `_checkpoints/staging/` (rolled history files until their checkpoint commits),
//! `_checkpoints/segments/` (final windows carried until they are rolled), `_checkpoints/table/` (a temporal
//! join's versioned table) and `_checkpoints/compacting/` (compaction's device folders before and after their
//! swap).

use std::path::{Path, PathBuf};

/// The checkpoint folder of an output folder.
pub fn dir(out: &Path) -> PathBuf {
    out.join("_checkpoints")
}

/// Where the parts of checkpoint `id` (and each worker's open windows beside its part) wait for the commit.
pub fn pending_dir(out: &Path, id: u64) -> PathBuf {
    dir(out).join(format!("pending-{id:020}"))
}

/// Where rolled files wait for their checkpoint to commit: inside the checkpoint folder, so that a device folder
/// only ever changes by a commit's renames (or a compaction's swap).
pub fn staging_dir(out: &Path) -> PathBuf {
    dir(out).join("staging")
}

/// The folder of segments (`checkpoint::segment`).
pub fn segments_dir(out: &Path) -> PathBuf {
    dir(out).join("segments")
}

/// Where each join operator keeps the versioned table of a job with a temporal join (`checkpoint::table_file`).
pub fn table_dir(out: &Path) -> PathBuf {
    dir(out).join("table")
}

/// Where compaction builds a device folder's new contents before it swaps them in (and where the old contents
/// wait to be deleted after the swap): never read, and emptied before every pass.
pub fn compacting_dir(out: &Path) -> PathBuf {
    dir(out).join("compacting")
}
