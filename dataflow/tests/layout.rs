//! The crate's layout rules, read from its sources (`docs/ARCHITECTURE.md`, "Inside `dataflow`"): no stage
//! imports another stage; a stage reaches the checkpoint protocol only through what `checkpoint` exports, never
//! a submodule of it; no stage imports the flags (`config`) or the job (`job`); every module opens with a `//!`
//! doc saying what it is for.

use std::path::{Path, PathBuf};

/// The stages: a folder or a file of `dataflow/src`.
const STAGES: [&str; 6] = ["source", "join", "window", "sink", "fleet", "compact"];

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The `crate::` paths a file names (in `use` lines or inline).
fn crate_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        paths.push(rest[..end].trim_end_matches(':').to_string());
    }
    paths
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The stage a file belongs to, if any.
fn stage_of(file: &Path) -> Option<&'static str> {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?;
    STAGES.into_iter().find(|s| first == *s || first == format!("{s}.rs"))
}

#[test]
fn stages_meet_each_other_and_the_checkpoint_only_through_interfaces() {
    let mut broken = Vec::new();
    for file in sources(&src()) {
        let Some(stage) = stage_of(&file) else { continue };
        let text = std::fs::read_to_string(&file).unwrap();
        for path in crate_paths(&text) {
            let mut parts = path.split("::");
            let top = parts.next().unwrap_or("");
            let bad = match top {
                t if STAGES.contains(&t) && t != stage => Some("another stage"),
                "config" | "job" => Some("the job's flags or wiring"),
                // `crate::checkpoint::StateStore` is the interface; `crate::checkpoint::store::...` is not.
                "checkpoint" => parts
                    .next()
                    .filter(|item| item.starts_with(|c: char| c.is_lowercase()))
                    .map(|_| "a checkpoint submodule"),
                _ => None,
            };
            if let Some(what) = bad {
                broken.push(format!(
                    "{}: crate::{path} ({what})",
                    file.strip_prefix(src()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports across the layout's lines:\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_module_says_what_it_is_for() {
    let missing: Vec<String> = sources(&src())
        .into_iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().trim_start().starts_with("//!"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "modules without a `//!` doc: {missing:?}");
}
