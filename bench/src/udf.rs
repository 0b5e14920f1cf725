//! The `udf` scenario: what the example UDFs of `udfs/` cost on the replay benchmark. `dataflow --input FILE`
//! (bounded, Parquet on) is timed without `--udf`, with the scalar `heat_index` (one call per emitted batch of
//! windows) and with the aggregate `temperature_p90` (its inputs kept per open window, one call per window), on
//! the same file and layout; each is reported with its ratio to the run without UDFs and its extra cost per
//! event. The crates are built (or taken from the UDF cache) by the first run that names them, before timing.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::ctx::Ctx;
use crate::input::{InputSpec, human, warm};
use crate::replay::{Layout, best_and_median, input_args, run_job};
use crate::report::Row;

/// The folder of an example UDF crate of the workspace.
fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("udfs").join(name)
}

/// The `udf` scenario.
pub fn udf(ctx: &Ctx, spec: &InputSpec, workers: usize, repeat: usize) -> Result<()> {
    let path = spec.jsonl(&ctx.work)?;
    let layout = Layout { processes: 1, workers };
    let variants: [(&str, Option<&str>); 3] = [
        ("no UDF", None),
        ("scalar heat_index", Some("heat_index")),
        ("aggregate temperature_p90", Some("temperature_p90")),
    ];
    let mut base = None;
    for (label, crate_name) in variants {
        let mut args = input_args(&path);
        if let Some(name) = crate_name {
            args.extend(["--udf".to_string(), example(name).display().to_string()]);
            // Untimed: builds the crate or finds it cached, so that no timed run includes a build.
            run_job(ctx, &format!("udf-prepare-{name}"), layout, &args, spec.events)?;
        }
        let mut runs = Vec::new();
        for i in 0..repeat.max(1) {
            warm(&path)?;
            runs.push(run_job(
                ctx,
                &format!("udf-{label}-{i}").replace(' ', "-"),
                layout,
                &args,
                spec.events,
            )?);
        }
        let (best, median) = best_and_median(runs);
        let rate = best.rate(spec.events);
        let (base_rate, base_wall) = *base.get_or_insert((rate, best.wall));
        let extra_ns = (best.wall.as_secs_f64() - base_wall.as_secs_f64()) * 1e9 / spec.events as f64;
        ctx.record(Row::new(
            "udf",
            format!(
                "dataflow --input (bounded, Parquet on) {} with {label}; {}; best of {repeat}",
                layout.describe(),
                spec.describe()
            ),
            format!(
                "{}/s best, {}/s median; {:.3}x without UDF; {:+.1} ns per event of wall time; peak RSS {:.0} MB",
                human(rate),
                human(median.rate(spec.events)),
                rate / base_rate,
                extra_ns,
                best.max_rss_kb as f64 / 1024.0
            ),
            best.load,
        ));
    }
    Ok(())
}
