//! What every scenario needs: where the binaries are (built fresh by default, so a figure always belongs to the
//! current source), a scratch folder, the broker address, and the collected results, written to BENCHMARKS.md at
//! the end with `--write`.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::report::{self, Row};

/// Options every scenario shares.
#[derive(Args, Debug)]
pub struct Common {
    /// Append every figure to the run log at the end of BENCHMARKS.md (or of `--write-to`).
    #[arg(long, global = true)]
    write: bool,
    /// The markdown file `--write` appends to (default: BENCHMARKS.md at the workspace root).
    #[arg(long, global = true, value_name = "FILE")]
    write_to: Option<PathBuf>,
    /// Folder with the `dataflow` and `producer` binaries (default: the folder of this binary).
    #[arg(long, global = true)]
    bin_dir: Option<PathBuf>,
    /// Do not run `cargo build --release -p dataflow -p producer` first.
    #[arg(long, global = true)]
    no_build: bool,
    /// Scratch folder: generated inputs (kept and reused), each run's outputs and logs in `run-<pid>/`.
    #[arg(long, global = true, default_value = "/tmp/iot-bench")]
    work: PathBuf,
    /// Keep this run's outputs and logs (`<work>/run-<pid>/`) instead of removing them at the end.
    #[arg(long, global = true)]
    keep: bool,
    /// Kafka bootstrap servers for the `kafka`, `latency` and `memory` scenarios.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    brokers: String,
}

/// The workspace root: the nearest folder at or above the current one that holds this workspace (a `Cargo.toml`
/// beside `bench/Cargo.toml`), else the folder this binary was built from. Run from a checkout, a binary built
/// from another one (a target folder shared by two clones) reads and writes this checkout's files.
pub fn workspace_root() -> PathBuf {
    let built_from = || {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("bench/ has a parent")
            .to_path_buf()
    };
    let Ok(here) = std::env::current_dir() else {
        return built_from();
    };
    here.ancestors()
        .find(|dir| is_workspace_root(dir))
        .map(Path::to_path_buf)
        .unwrap_or_else(built_from)
}

/// Whether `dir` is the root of this workspace.
fn is_workspace_root(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file() && dir.join("bench").join("Cargo.toml").is_file()
}

/// Shared state of one `bench` invocation.
pub struct Ctx {
    bins: PathBuf,
    /// Scratch folder shared by invocations: generated inputs (reused) and the last run's CSVs.
    pub work: PathBuf,
    /// This invocation's own folder under `work` (outputs and logs), so that concurrent runs never collide.
    run_dir: PathBuf,
    keep: bool,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// `git describe` of the measured source (or where the binaries came from, with `--bin-dir`).
    pub commit: String,
    write: Option<PathBuf>,
    rows: RefCell<Vec<Row>>,
}

impl Ctx {
    /// Resolves the binaries (building them unless `--no-build`) and prepares the scratch folder.
    pub fn new(common: &Common) -> Result<Ctx> {
        let bins = match &common.bin_dir {
            Some(dir) => dir.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("this binary has no folder")?
                .to_path_buf(),
        };
        if !common.no_build {
            build(&bins)?;
        }
        for name in ["dataflow", "producer"] {
            if !bins.join(name).is_file() {
                bail!(
                    "{} not found: build it with `cargo build --release -p dataflow -p producer` or pass --bin-dir",
                    bins.join(name).display()
                );
            }
        }
        std::fs::create_dir_all(&common.work)
            .with_context(|| format!("cannot create --work {}", common.work.display()))?;
        let write = common.write.then(|| {
            common
                .write_to
                .clone()
                .unwrap_or_else(|| workspace_root().join("BENCHMARKS.md"))
        });
        Ok(Ctx {
            bins,
            work: common.work.clone(),
            run_dir: common.work.join(format!("run-{}", std::process::id())),
            keep: common.keep,
            brokers: common.brokers.clone(),
            // The figures belong to the binaries' source: say so when they come from elsewhere.
            commit: match &common.bin_dir {
                Some(dir) => format!("binaries in {}", dir.display()),
                None => git_describe(),
            },
            write,
            rows: RefCell::new(Vec::new()),
        })
    }

    /// A command for one of the project's binaries.
    pub fn command(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bins.join(name));
        cmd.env("RUST_LOG", "info");
        cmd
    }

    /// A fresh, empty scratch subfolder of this invocation's folder.
    pub fn scratch(&self, name: &str) -> Result<PathBuf> {
        let dir = self.run_dir.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Prints a figure and keeps it for `--write`.
    pub fn record(&self, row: Row) {
        row.print();
        self.rows.borrow_mut().push(row);
    }

    /// Copies a result file of this run to `<work>/<name>`, where it outlives the run folder.
    pub fn keep_file(&self, from: &Path, name: &str) -> Result<PathBuf> {
        let to = self.work.join(name);
        std::fs::copy(from, &to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        Ok(to)
    }

    /// Writes the kept figures when `--write` was given.
    pub fn finish(&self) -> Result<()> {
        if let Some(file) = &self.write {
            report::append(file, &self.commit, &self.rows.borrow())?;
            println!("appended {} row(s) to {}", self.rows.borrow().len(), file.display());
        }
        Ok(())
    }
}

fn build(bins: &Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--release", "--quiet", "-p", "dataflow", "-p", "producer"]);
    // Build into the target folder this binary runs from (…/target/release → …/target).
    if bins.file_name().is_some_and(|n| n == "release")
        && let Some(target) = bins.parent()
    {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let status = cmd.status().context("cannot run cargo to build the binaries")?;
    if !status.success() {
        bail!("`cargo build --release -p dataflow -p producer` failed ({status}); or pass --no-build");
    }
    Ok(())
}

fn git_describe() -> String {
    Command::new("git")
        .current_dir(workspace_root())
        .args(["describe", "--always", "--dirty", "--exclude", "*"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_root_is_found_from_a_folder_inside_it() {
        let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = bench.parent().unwrap();
        assert!(is_workspace_root(root));
        assert!(!is_workspace_root(bench), "bench/ holds no bench/ of its own");
        // Tests run in the crate's folder, inside the workspace.
        assert_eq!(workspace_root().canonicalize().unwrap(), root.canonicalize().unwrap());
    }
}
