//! `dataflow`: parses flags, restores the newest checkpoint, and runs the pipeline on timely workers (`-w`
//! threads, `-n/-p/-h` processes) until the input ends (`--bounded`, `--input`) or Ctrl-C, which takes a last
//! checkpoint, writes a last snapshot and exits. `dataflow compact` compacts a history folder offline. A restored checkpoint is first checked against the broker's
//! logs (`source::data_loss`); an error an operator raises while running (`JobFailure`) ends every worker and
//! the process with a non-zero exit.

#[cfg(not(target_env = "msvc"))]
mod allocator;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use dataflow::checkpoint::{restore, stop};
use dataflow::config::Args;
use dataflow::config::compact::CompactArgs;
use dataflow::errors::JobFailure;
use dataflow::{pipeline, source};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let outcome = match std::env::args_os().nth(1) {
        Some(first) if first == "compact" => compact(CompactArgs::parse_from(std::env::args_os().skip(1))),
        _ => run(Args::parse()),
    };
    outcome.map_or_else(
        |err| {
            eprintln!("dataflow: error: {err:#}");
            std::process::ExitCode::FAILURE
        },
        |()| std::process::ExitCode::SUCCESS,
    )
}

/// `dataflow compact --out DIR [--older-than D]`.
fn compact(args: CompactArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let r = dataflow::compact::offline(&args.out, args.older_than)?;
    if let Some(why) = &r.first_error {
        anyhow::bail!(
            "{} device folders could not be compacted and were left as they were ({} others were); the first: {why}",
            r.failed,
            r.devices
        );
    }
    println!(
        "compacted {} device folders: {} files into {} day files ({} windows) in {:.1} s",
        r.devices,
        r.inputs,
        r.days,
        r.rows,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run(args: Args) -> Result<()> {
    let mut config = args.check()?;
    // Held until the process ends: `dataflow compact` refuses to run under a job.
    let _held = dataflow::out_lock::OutLock::for_job(&config.out)?;
    let timely_config = args.timely_config()?;
    let partitions = match &config.input {
        Some(_) => 0,
        None => source::kafka::partition_count(&config)?,
    };
    if config.input.is_none() {
        config.cluster_id = source::kafka::cluster_id(&config)?;
    }
    let mut restored = restore::on_start(&config)?;
    if let Some(manifest) = restored.as_mut()
        && config.input.is_none()
    {
        source::kafka::judge_restore(&config, partitions, config.cluster_id.as_deref(), manifest)?;
    }
    let restored = restored.map(Arc::new);
    let failure = Arc::new(JobFailure::default());
    if let Some(sink) = &config.sink {
        dataflow::sink::kafka::register::ensure_topic(&config, sink, partitions)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    }
    tracing::info!(
        input = %config.input.as_ref().map_or_else(|| format!("kafka {} topic {}", config.brokers, config.topic), |p| p.display().to_string()),
        partitions, workers = args.workers * args.processes, window = %config.window,
        lateness_ms = config.lateness_ms, bounded = config.bounded, "starting"
    );
    let guards = timely::execute(timely_config, move |worker| -> Result<()> {
        let handles = pipeline::build(
            worker,
            &config,
            partitions,
            restored.clone(),
            stop.clone(),
            failure.clone(),
        )?;
        while !handles.done.done() {
            if let Some(error) = failure.get() {
                // No last checkpoint: the newest committed one stands, and a restart meets the same loss.
                for id in worker.installed_dataflows() {
                    worker.drop_dataflow(id);
                }
                return Err(anyhow!("{error}"));
            }
            if stop.load(Ordering::Relaxed) {
                if !stop::await_stop_checkpoint(worker, &handles.stopping, &handles.done, stop::STOP_WITHIN) {
                    tracing::warn!("the last checkpoint did not complete within 30 s; the previous one stands");
                }
                if worker.index() == 0 {
                    handles.latest.borrow_mut().local_errors(&handles.errors);
                    handles.latest.borrow_mut().write()?;
                }
                handles.dead.borrow_mut().sync()?;
                // Timely would otherwise keep stepping the (never-ending) dataflow after this closure returns.
                for id in worker.installed_dataflows() {
                    worker.drop_dataflow(id);
                }
                break;
            }
            worker.step_or_park(Some(Duration::from_millis(100)));
        }
        if let Some(sink) = &handles.sink {
            // The Kafka transactions of the last checkpoint commit once its manifest has.
            sink.finish(stop::STOP_WITHIN);
        }
        // Errors met after the last snapshot (e.g. the final Parquet roll) must still show in latest.json.
        if worker.index() == 0 && !handles.errors.counts().is_empty() {
            handles.latest.borrow_mut().local_errors(&handles.errors);
            handles.latest.borrow_mut().write()?;
        }
        if handles.stopping.final_failed.get() {
            return Err(anyhow!(
                "the last windows of this run could not be written to the Parquet history (see the error \
                 above, e.g. a full disk or too few file descriptors); nothing of them was committed"
            ));
        }
        Ok(())
    })
    .map_err(|e| anyhow!("cannot start the timely workers: {e}"))?;
    let mut first = None;
    for result in guards.join() {
        let outcome = result.map_err(|e| anyhow!("a worker failed: {e}")).and_then(|r| r);
        if let Err(e) = outcome {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}
