//! The `udf` scenario: what the example UDFs of `udfs/` cost on the replay benchmark. `dataflow --input FILE`
//! (bounded, Parquet on) is timed without `--udf`, with the scalar `heat_index` (one call per emitted batch of
//! windows) and with the aggregate `temperature_p90` (its inputs kept per open window, one call per window), on
//! the same file and layout; each is reported with its ratio to the run without UDFs and its extra cost per
//! event. The crates are built (or taken from the UDF cache) by the first run that names them, before timing.

use std::path::PathBuf;

use anyhow::Result;

use crate::ctx::Ctx;
use crate::input::{InputSpec, human, warm};
use crate::replay::{Layout, best_and_median, input_args, run_job};
use crate::report::Row;

/// The folder of an example UDF crate of the workspace.
fn example(name: &str) -> PathBuf {
    crate::ctx::workspace_root().join("udfs").join(name)
}

/// The `udf` scenario: the three variants compared by [`compare_variants`].
pub fn udf(ctx: &Ctx, spec: &InputSpec, workers: usize, repeat: usize) -> Result<()> {
    let layout = Layout { processes: 1, workers };
    let variants: Vec<Variant> = [
        ("no UDF", None),
        ("scalar heat_index", Some("heat_index")),
        ("aggregate temperature_p90", Some("temperature_p90")),
    ]
    .into_iter()
    .map(|(label, crate_name)| Variant {
        label: format!("with {label}"),
        args: crate_name
            .map(|name| vec!["--udf".to_string(), example(name).display().to_string()])
            .unwrap_or_default(),
        // The first run that names a crate builds it (or finds it cached): untimed.
        prepare: crate_name.is_some(),
    })
    .collect();
    compare_variants(ctx, "udf", spec, layout, repeat, &variants, "without UDF")
}

/// One way of running the job in a comparison: extra flags after `--input FILE`.
pub struct Variant {
    /// What it is, in the report.
    pub label: String,
    /// Extra `dataflow` flags.
    pub args: Vec<String>,
    /// Run once untimed first (e.g. to build a UDF crate).
    pub prepare: bool,
}

/// Times `dataflow --input FILE` (bounded, Parquet on) once per variant, `repeat` times each, on the same file
/// and layout. Each variant's figures: best and median throughput with their ratios to the first variant (the
/// baseline, named `baseline` in the report), and the median CPU time (all processes) with its ratio and the
/// extra CPU per event.
pub fn compare_variants(
    ctx: &Ctx,
    scenario: &str,
    spec: &InputSpec,
    layout: Layout,
    repeat: usize,
    variants: &[Variant],
    baseline: &str,
) -> Result<()> {
    let path = spec.jsonl(&ctx.work)?;
    let mut base = None;
    for (v, variant) in variants.iter().enumerate() {
        let mut args = input_args(&path);
        args.extend(variant.args.iter().cloned());
        if variant.prepare {
            run_job(ctx, &format!("{scenario}-prepare-{v}"), layout, &args, spec.events)?;
        }
        let mut runs = Vec::new();
        for i in 0..repeat.max(1) {
            warm(&path)?;
            runs.push(run_job(
                ctx,
                &format!("{scenario}-{v}-{i}"),
                layout,
                &args,
                spec.events,
            )?);
        }
        let cpu = {
            let mut cpu: Vec<f64> = runs.iter().map(|r| r.cpu.as_secs_f64()).collect();
            cpu.sort_by(f64::total_cmp);
            cpu[cpu.len() / 2]
        };
        let (best, median) = best_and_median(runs);
        let rate = best.rate(spec.events);
        let median_rate = median.rate(spec.events);
        let (base_rate, base_median, base_cpu) = *base.get_or_insert((rate, median_rate, cpu));
        // CPU time is steadier than wall time on a shared machine: the extra cost per event is taken from it.
        let extra_ns = (cpu - base_cpu) * 1e9 / spec.events as f64;
        ctx.record(Row::new(
            scenario,
            format!(
                "dataflow --input (bounded, Parquet on) {} {}; {}; best of {repeat}",
                layout.describe(),
                variant.label,
                spec.describe()
            ),
            format!(
                "{}/s best, {}/s median ({:.3}x, {:.3}x {baseline}); median CPU {:.2} s ({:.3}x, {:+.1} ns per \
                 event); peak RSS {:.0} MB",
                human(rate),
                human(median_rate),
                rate / base_rate,
                median_rate / base_median,
                cpu,
                cpu / base_cpu,
                extra_ns,
                best.max_rss_kb as f64 / 1024.0
            ),
            best.load,
        ));
    }
    Ok(())
}
