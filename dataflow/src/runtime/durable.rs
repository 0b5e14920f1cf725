//! Durable file writes: atomic replacement (write a temporary file in the same folder, fsync it, rename it over
//! the target, fsync the folder), so a reader sees the old file or the new one, never a mixture; the same without
//! the syncs for scratch files a durable write supersedes; and the folder and file-system syncs that make renames
//! durable.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Replaces `path` with `bytes` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Replaces `path` atomically with what `write` writes, through a buffer: large documents (checkpoint
/// manifests, `latest.json` with many devices) are streamed, never built as one byte vector first.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    replace(path, write, true)
}

/// Replaces `path` atomically (a reader sees the old file or the new one) but not durably: for the scratch files
/// of a checkpoint (a worker's part and its open windows), which its manifest, written durably, supersedes;
/// a crash before the manifest discards them anyway. Skipping the `fsync` keeps a worker from waiting on the
/// disk at every checkpoint while its input piles up.
pub fn replace_with(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<()> {
    replace(path, write, false)
}

fn replace(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    durable: bool,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        let mut out = BufWriter::with_capacity(256 * 1024, file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        if durable {
            file.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if durable { sync_dir(dir) } else { Ok(()) }
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Above this many files (or folders) to make durable at once, one `syncfs` is used instead.
const SYNCFS_ABOVE: usize = 64;

/// Whether `count` files or folders changed together are made durable by one [`sync_file_system`] rather than
/// one `fsync` each: one `fsync` waits for a journal commit each (10,000 device files of a roll and their
/// 10,000 folders took 3.4 s of `fsync`). Linux only.
pub fn sync_in_bulk(count: usize) -> bool {
    cfg!(target_os = "linux") && count > SYNCFS_ABOVE
}

/// Makes renames and new files in `dirs` durable; all of them live on the file system of `anchor`.
pub fn sync_dirs(anchor: &Path, dirs: &[&Path]) -> std::io::Result<()> {
    if sync_in_bulk(dirs.len()) {
        return sync_file_system(anchor);
    }
    dirs.iter().try_for_each(|d| sync_dir(d))
}

/// Commits every change of the file system holding `anchor` (`syncfs`).
#[cfg(target_os = "linux")]
pub fn sync_file_system(anchor: &Path) -> std::io::Result<()> {
    Ok(nix::unistd::syncfs(File::open(anchor)?)?)
}

/// Elsewhere [`sync_in_bulk`] is always false; this only syncs `anchor` itself.
#[cfg(not(target_os = "linux"))]
pub fn sync_file_system(anchor: &Path) -> std::io::Result<()> {
    sync_dir(anchor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("atomic-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("snapshot.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("snapshot.json")]);
    }
}
