//! The crate's layout as its module docs state it: the snapshot side (`src/snapshot/`) imports nothing of the
//! HTTP side (`src/http/`) nor warp, so it can be read, tested and benchmarked without a server; and every module
//! opens with a `//!` doc saying what it is for.

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, sorted.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_snapshot_side_imports_nothing_of_the_http_side() {
    let files = sources(&src().join("snapshot"));
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for needle in ["crate::http", "super::super::http", "super::http", "warp"] {
                assert!(
                    !code.contains(needle),
                    "{}:{}: the snapshot side uses `{needle}`: {line}",
                    file.display(),
                    n + 1
                );
            }
        }
    }
}

#[test]
fn every_module_says_what_it_is_for() {
    for file in sources(&src()) {
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//! "),
            "{} does not open with a `//!` doc",
            file.display()
        );
    }
}
