//! Builds a UDF crate into a loadable library, cached by a hash of its source. The build is `cargo build
//! --release --lib` with a target folder in the cache (outside the crate, shared by every UDF, so their common
//! dependencies build once); the library is copied to `<cache>/lib/<name>-<hash>.<ext>`, and a later run with the
//! same source loads that copy without calling cargo at all.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// Lines of cargo's output kept for the error message of a failed build.
const KEPT_LINES: usize = 60;

/// The default cache folder: `$XDG_CACHE_HOME/iot-pipeline/udf`, else `~/.cache/iot-pipeline/udf`, else a folder
/// under the system's temporary folder.
pub fn default_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("iot-pipeline").join("udf")
}

/// A hash of everything that decides what the crate builds to: `Cargo.toml`, the nearest `Cargo.lock` (the
/// crate's or its workspace's), `build.rs` and every file under `src/`, with their relative paths. Hex, 64 chars.
pub fn source_hash(dir: &Path) -> Result<String> {
    let mut files = vec![dir.join("Cargo.toml")];
    if dir.join("build.rs").is_file() {
        files.push(dir.join("build.rs"));
    }
    let mut src = Vec::new();
    collect_files(&dir.join("src"), &mut src)?;
    src.sort();
    files.extend(src);
    let mut hasher = Sha256::new();
    for f in &files {
        let rel = f.strip_prefix(dir).unwrap_or(f);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0]);
        let bytes = fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    if let Some(lock) = dir.ancestors().map(|d| d.join("Cargo.lock")).find(|l| l.is_file()) {
        hasher.update(b"Cargo.lock\0");
        hasher.update(fs::read(&lock).with_context(|| format!("cannot read {}", lock.display()))?);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The file name of a platform's dynamic library.
fn library_ext() -> &'static str {
    if cfg!(target_os = "macos") { "dylib" } else { "so" }
}

/// The library of the crate in `dir` named `name` whose source hashes to `hash`: the cached copy, or a fresh
/// build. Fails with cargo's own messages when the crate does not build.
pub fn library(dir: &Path, name: &str, hash: &str, cache: &Path) -> Result<PathBuf> {
    let lib_dir = cache.join("lib");
    let cached = lib_dir.join(format!("{name}-{}.{}", &hash[..16], library_ext()));
    if cached.is_file() {
        tracing::info!(udf = name, library = %cached.display(), "UDF library cached for this source");
        return Ok(cached);
    }
    tracing::info!(
        udf = name,
        crate_dir = %dir.display(),
        "building the UDF crate (cargo build --release; the first build of the UDF dependencies takes minutes)"
    );
    let target = cache.join("target");
    let built = cargo_build(dir, &target)?;
    fs::create_dir_all(&lib_dir).with_context(|| format!("cannot create {}", lib_dir.display()))?;
    // Copied under a temporary name, then renamed: two processes building at once both end with a whole file.
    let tmp = lib_dir.join(format!(".{name}-{}.{}.tmp", std::process::id(), library_ext()));
    fs::copy(&built, &tmp).with_context(|| format!("cannot copy {} to {}", built.display(), tmp.display()))?;
    fs::rename(&tmp, &cached).with_context(|| format!("cannot rename {} to {}", tmp.display(), cached.display()))?;
    Ok(cached)
}

/// Runs cargo on the crate and returns the path of its `cdylib`.
fn cargo_build(dir: &Path, target: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = dir.join("Cargo.toml");
    let mut child = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--lib",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot run `{}` to build the UDF crate {}: install Rust (https://rustup.rs) or put cargo on PATH",
                cargo.to_string_lossy(),
                dir.display()
            )
        })?;
    // cargo's progress and diagnostics go on to this process's stderr as they come, and the last lines are kept
    // for the error.
    let stderr = child.stderr.take().expect("piped");
    let relay = std::thread::spawn(move || {
        let mut kept = std::collections::VecDeque::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if kept.len() == KEPT_LINES {
                kept.pop_front();
            }
            kept.push_back(line);
        }
        kept.into_iter().collect::<Vec<_>>().join("\n")
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)
        .context("cannot read cargo's output")?;
    let status = child.wait().context("cargo did not finish")?;
    let messages = relay.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "the UDF crate {} does not build; cargo said:\n{messages}\nfix the crate (or run `cargo build --release` \
             in it) and start the job again",
            dir.display()
        );
    }
    cdylib_of(&stdout, &manifest).with_context(|| {
        format!(
            "cargo built {} but no dynamic library: set `crate-type = [\"cdylib\"]` under `[lib]` in its Cargo.toml",
            dir.display()
        )
    })
}

/// The `cdylib` file among cargo's JSON messages for the package of `manifest`.
fn cdylib_of(messages: &str, manifest: &Path) -> Option<PathBuf> {
    let manifest = fs::canonicalize(manifest).unwrap_or_else(|_| manifest.to_path_buf());
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().is_some_and(|p| Path::new(p) == manifest))
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .find(|f| f.extension().is_some_and(|e| e == library_ext()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_at(root: &Path, body: &str) -> PathBuf {
        let dir = root.join("c");
        fs::create_dir_all(dir.join("src/inner")).unwrap();
        fs::write(dir.join("Cargo.toml"), "[package]\nname = \"c\"\n").unwrap();
        fs::write(dir.join("src/lib.rs"), body).unwrap();
        fs::write(dir.join("src/inner/mod.rs"), "// helper").unwrap();
        dir
    }

    #[test]
    fn the_source_hash_changes_with_any_source_file_and_only_then() {
        let root = std::env::temp_dir().join(format!("udf-hash-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dir = crate_at(&root, "fn a() {}");
        let first = source_hash(&dir).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(source_hash(&dir).unwrap(), first, "stable");
        fs::write(dir.join("src/inner/mod.rs"), "// helper 2").unwrap();
        let second = source_hash(&dir).unwrap();
        assert_ne!(second, first);
        fs::create_dir_all(dir.join("target")).unwrap();
        fs::write(dir.join("target/junk"), "x").unwrap();
        assert_eq!(source_hash(&dir).unwrap(), second, "build output is not source");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_cdylib_is_found_among_cargo_messages() {
        let manifest = Path::new("/nowhere/c/Cargo.toml");
        let messages = [
            r#"{"reason":"compiler-artifact","manifest_path":"/nowhere/dep/Cargo.toml","target":{"kind":["lib"]},"filenames":["/t/libdep.rlib"]}"#,
            r#"{"reason":"compiler-artifact","manifest_path":"/nowhere/c/Cargo.toml","target":{"kind":["cdylib"]},"filenames":["/t/release/libc.so"]}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        if library_ext() == "so" {
            assert_eq!(
                cdylib_of(&messages, manifest),
                Some(PathBuf::from("/t/release/libc.so"))
            );
        }
        assert_eq!(cdylib_of(&messages[..messages.find('\n').unwrap()], manifest), None);
    }
}
