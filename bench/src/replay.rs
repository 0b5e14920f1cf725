//! The file scenarios. `replay` times `dataflow --input FILE` (bounded; Parquet, latest.json and dead-letter
//! sinks as they are) for each worker count and as 2 processes x 1 worker. `core` puts the in-process ceiling
//! (no dataflow) next to the same dataflow run on a file in the page cache, per worker. Each run is checked:
//! `latest.json` must account for every record, or the scenario fails.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};

use crate::ctx::Ctx;
use crate::inproc::{self, Payloads, Variant};
use crate::input::{InputSpec, human, warm};
use crate::operators;
use crate::proc::{self, Finished};
use crate::report::{Row, load_average};

/// Longest a single bounded run may take before it counts as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(1800);

/// One timed run of the job over a whole input.
#[derive(Clone, Copy, Debug)]
pub struct JobRun {
    /// Spawn to exit of the last process.
    pub wall: Duration,
    /// Peak RSS summed over processes, kB.
    pub max_rss_kb: u64,
    /// CPU time summed over processes.
    pub cpu: Duration,
    /// 1-minute load when it started.
    pub load: f64,
}

impl JobRun {
    /// Records per second over the wall time.
    pub fn rate(&self, records: u64) -> f64 {
        records as f64 / self.wall.as_secs_f64()
    }
}

/// How the job is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Processes (`-n`).
    pub processes: usize,
    /// Workers per process (`-w`).
    pub workers: usize,
}

impl Layout {
    /// Short description (`-w 2`, `-n 2 x -w 1`).
    pub fn describe(&self) -> String {
        if self.processes == 1 {
            format!("-w {}", self.workers)
        } else {
            format!("-n {} x -w {}", self.processes, self.workers)
        }
    }
}

/// Runs the job once with `source_args` (e.g. `--input F`), checks that `latest.json` accounts for `records`
/// records (valid + bad + late), and returns the timing.
pub fn run_job(ctx: &Ctx, name: &str, layout: Layout, source_args: &[String], records: u64) -> Result<JobRun> {
    let dir = ctx.scratch(name)?;
    let out = dir.join("aggregates");
    let hosts = dir.join("hosts");
    if layout.processes > 1 {
        let ports: Vec<String> = (0..layout.processes)
            .map(|_| proc::free_port().map(|p| format!("127.0.0.1:{p}")))
            .collect::<Result<_>>()?;
        std::fs::write(&hosts, ports.join("\n") + "\n")?;
    }
    let load = load_average();
    let mut running = Vec::new();
    for p in 0..layout.processes {
        let mut cmd = ctx.command("dataflow");
        cmd.args(source_args)
            .arg("--out")
            .arg(&out)
            .arg("--deadletter")
            .arg(dir.join("deadletter"))
            .args(["-w", &layout.workers.to_string()]);
        if layout.processes > 1 {
            cmd.args(["-n", &layout.processes.to_string(), "-p", &p.to_string()])
                .arg("-h")
                .arg(&hosts);
        }
        running.push(proc::spawn(cmd, &format!("dataflow-p{p}"), &dir)?);
    }
    let mut done: Vec<Finished> = Vec::new();
    for r in running {
        done.push(r.wait(RUN_TIMEOUT)?.ok("dataflow")?);
    }
    let run = JobRun {
        wall: done.iter().map(|f| f.wall).max().unwrap_or_default(),
        max_rss_kb: done.iter().map(|f| f.max_rss_kb).sum(),
        cpu: done.iter().map(|f| f.cpu).sum(),
        load,
    };
    check_accounted(&out, records)?;
    Ok(run)
}

/// Fails unless the final `latest.json` counts every record as valid, bad or late.
pub fn check_accounted(out: &Path, records: u64) -> Result<()> {
    let path = out.join("latest.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("no {}", path.display()))?;
    let doc: model::LatestDoc =
        serde_json::from_str(&text).with_context(|| format!("{} is not a LatestDoc", path.display()))?;
    let p = &doc.pipeline;
    let seen = p.events_total + p.bad_total + p.late_total;
    ensure!(
        seen == records,
        "latest.json accounts for {seen} records ({} valid, {} bad, {} late), expected {records}",
        p.events_total,
        p.bad_total,
        p.late_total
    );
    Ok(())
}

/// Best and median of repeated runs, by wall time.
pub fn best_and_median(mut runs: Vec<JobRun>) -> (JobRun, JobRun) {
    runs.sort_by_key(|r| r.wall);
    (runs[0], runs[runs.len() / 2])
}

pub fn input_args(path: &Path) -> Vec<String> {
    vec!["--input".into(), path.display().to_string()]
}

fn timed_file_runs(ctx: &Ctx, path: &Path, layout: Layout, records: u64, repeat: usize) -> Result<Vec<JobRun>> {
    let mut runs = Vec::new();
    for i in 0..repeat.max(1) {
        warm(path)?;
        runs.push(run_job(
            ctx,
            &format!("replay-{}x{}-{i}", layout.processes, layout.workers),
            layout,
            &input_args(path),
            records,
        )?);
    }
    Ok(runs)
}

/// The figures of a measurement: best and median rate, and the best run's wall time, peak RSS and CPU.
pub fn figures(records: u64, best: &JobRun, median: &JobRun) -> String {
    format!(
        "{}/s best, {}/s median; wall {:.2} s; peak RSS {:.0} MB; CPU {:.2} s",
        human(best.rate(records)),
        human(median.rate(records)),
        best.wall.as_secs_f64(),
        best.max_rss_kb as f64 / 1024.0,
        best.cpu.as_secs_f64()
    )
}

/// The `replay` scenario.
pub fn replay(ctx: &Ctx, spec: &InputSpec, workers: &[usize], cluster: bool, repeat: usize) -> Result<()> {
    let path = spec.jsonl(&ctx.work)?;
    let mut layouts: Vec<Layout> = workers
        .iter()
        .map(|&w| Layout {
            processes: 1,
            workers: w,
        })
        .collect();
    if cluster {
        layouts.push(Layout {
            processes: 2,
            workers: 1,
        });
    }
    let mut first: Option<f64> = None;
    for layout in layouts {
        let runs = timed_file_runs(ctx, &path, layout, spec.events, repeat)?;
        let (best, median) = best_and_median(runs);
        let base = *first.get_or_insert(best.rate(spec.events));
        ctx.record(Row::new(
            "replay",
            format!(
                "dataflow --input (bounded, Parquet on) {}; {}; best of {repeat}",
                layout.describe(),
                spec.describe()
            ),
            format!(
                "{}; {:.2}x the first layout",
                figures(spec.events, &best, &median),
                best.rate(spec.events) / base
            ),
            best.load,
        ));
    }
    Ok(())
}

/// The `core` scenario.
pub fn core(ctx: &Ctx, spec: &InputSpec, loop_events: u64, repeat: usize) -> Result<()> {
    // 1. In process, no dataflow: the ceiling of parse + window + aggregate on one core, and on two.
    let loop_spec = InputSpec {
        events: loop_events,
        ..*spec
    };
    let payloads = Payloads::generate(&loop_spec)?;
    for variant in [Variant::Borrowed, Variant::Owned] {
        let mut one = 0.0;
        for threads in [1, 2] {
            let load = load_average();
            let mut best = Duration::MAX;
            let mut last = None;
            for _ in 0..repeat.max(1) {
                let r = inproc::run(&payloads, threads, variant)?;
                best = best.min(r.elapsed);
                last = Some(r);
            }
            let r = last.expect("at least one run");
            let rate = payloads.len() as f64 / best.as_secs_f64();
            if threads == 1 {
                one = rate;
            }
            ctx.record(Row::new(
                "core",
                format!(
                    "in-process loop, no dataflow ({}): parse_event + window + WindowAgg::add; {threads} thread(s); {}; best of {repeat}",
                    variant.name(),
                    loop_spec.describe()
                ),
                format!(
                    "{}/s total, {}/s per thread, {:.0} ns/event/thread; {:.2}x 1 thread; {} valid, {} bad, {} aggregates",
                    human(rate),
                    human(rate / threads as f64),
                    best.as_secs_f64() * 1e9 * threads as f64 / payloads.len() as f64,
                    rate / one,
                    r.valid,
                    r.bad,
                    r.aggregates
                ),
                load,
            ));
        }
    }
    // 2. The job's own source and window operators in process: in-memory input, null sink, -w 1 and -w 2.
    let payloads = std::sync::Arc::new(payloads);
    let mut one = 0.0;
    for w in [1, 2] {
        let load = load_average();
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..repeat.max(1) {
            let r = operators::run(&payloads, w, &ctx.scratch("operators")?)?;
            times.push(r.elapsed);
            last = Some(r);
        }
        times.sort();
        let r = last.expect("at least one run");
        let rate = payloads.len() as f64 / times[0].as_secs_f64();
        if w == 1 {
            one = rate;
        }
        ctx.record(Row::new(
            "core",
            format!(
                "dataflow operators in process (source + exchange + window, in-memory input, null sink), -w {w}; {}; best of {repeat}",
                loop_spec.describe()
            ),
            format!(
                "{}/s per worker, {}/s total; best {:.2} s, median {:.2} s; {:.2}x -w 1; {} folded, {} dead letters, {} final aggregates",
                human(rate / w as f64),
                human(rate),
                times[0].as_secs_f64(),
                times[times.len() / 2].as_secs_f64(),
                rate / one,
                r.folded,
                r.dead,
                r.aggregates
            ),
            load,
        ));
    }
    drop(payloads);

    // 3. The real job on a file in the page cache, sinks as they are, per worker.
    let path = spec.jsonl(&ctx.work)?;
    let mut one = 0.0;
    for w in [1, 2] {
        let layout = Layout {
            processes: 1,
            workers: w,
        };
        let (best, median) = best_and_median(timed_file_runs(ctx, &path, layout, spec.events, repeat)?);
        let rate = best.rate(spec.events);
        if w == 1 {
            one = rate;
        }
        ctx.record(Row::new(
            "core",
            format!(
                "dataflow --input, file in page cache, sinks as they are, {}; {}; best of {repeat}",
                layout.describe(),
                spec.describe()
            ),
            format!(
                "{}/s per worker; {}; {:.2}x -w 1",
                human(rate / w as f64),
                figures(spec.events, &best, &median),
                rate / one
            ),
            best.load,
        ));
    }
    Ok(())
}
