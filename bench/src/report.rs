//! Results: one `RESULT` line per figure on stdout, and with `--write` one markdown row appended to the run log
//! at the end of BENCHMARKS.md. Every row carries the machine load at the start of the measurement and the
//! commit it was measured on, so that a figure is never separated from the conditions that produced it.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Heading of the appended run log in BENCHMARKS.md.
const LOG_HEADING: &str = "## Run log (appended by `bench --write`)";
const LOG_HEADER: &str =
    "| when (UTC) | commit | scenario | setup | result | load 1 min |\n| --- | --- | --- | --- | --- | --- |";

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Row {
    /// Scenario name (`replay`, `kafka`, ...).
    pub scenario: String,
    /// What was run: sizes, flags, worker counts.
    pub setup: String,
    /// The figures.
    pub result: String,
    /// 1-minute load average when the measurement started.
    pub load: f64,
}

impl Row {
    /// A row measured under `load`.
    pub fn new(scenario: &str, setup: String, result: String, load: f64) -> Row {
        Row {
            scenario: scenario.to_string(),
            setup,
            result,
            load,
        }
    }

    /// Prints the results line.
    pub fn print(&self) {
        println!(
            "RESULT {:<8} | {} | {} | load {:.2}",
            self.scenario, self.setup, self.result, self.load
        );
    }
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Appends `rows` to the run log of `file`, adding the heading the first time.
pub fn append(file: &Path, commit: &str, rows: &[Row]) -> Result<()> {
    let existing = std::fs::read_to_string(file).unwrap_or_default();
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("cannot append to {}", file.display()))?;
    if !existing.contains(LOG_HEADING) {
        let sep = if existing.is_empty() || existing.ends_with("\n\n") {
            ""
        } else if existing.ends_with('\n') {
            "\n"
        } else {
            "\n\n"
        };
        writeln!(out, "{sep}{LOG_HEADING}\n\n{LOG_HEADER}")?;
    }
    let when = model::time::rfc3339_ms(model::time::now_ms() / 1000 * 1000);
    for r in rows {
        writeln!(
            out,
            "| {when} | {commit} | {} | {} | {} | {:.2} |",
            r.scenario,
            r.setup.replace('|', "\\|"),
            r.result.replace('|', "\\|"),
            r.load
        )?;
    }
    Ok(())
}
