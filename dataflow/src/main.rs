//! `dataflow`: parses flags, checks the input, and runs the pipeline on timely workers (`-w` threads, `-n/-p/-h`
//! processes) until the input ends (`--bounded`, `--input`) or Ctrl-C, which writes a last snapshot and exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use dataflow::config::Args;
use dataflow::{pipeline, source};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(err) = run(Args::parse()) {
        eprintln!("dataflow: error: {err:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let config = args.check()?;
    let timely_config = args.timely_config()?;
    let partitions = match &config.input {
        Some(_) => 0,
        None => source::kafka::partition_count(&config.brokers, &config.topic)?,
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
    }
    tracing::info!(
        input = %config.input.as_ref().map_or_else(|| format!("kafka {} topic {}", config.brokers, config.topic), |p| p.display().to_string()),
        partitions, workers = args.workers * args.processes, window_ms = config.window_ms,
        lateness_ms = config.lateness_ms, bounded = config.bounded, "starting"
    );
    let guards = timely::execute(timely_config, move |worker| -> Result<()> {
        let handles = pipeline::build(worker, &config, partitions, stop.clone())?;
        while !handles.done.done() {
            if stop.load(Ordering::Relaxed) {
                // Sources read nothing more once stopped; let what is in flight reach the sinks first.
                let drain = std::time::Instant::now();
                while drain.elapsed() < Duration::from_millis(300) {
                    worker.step_or_park(Some(Duration::from_millis(10)));
                }
                // Stopped: flush what is final and write a last snapshot; open windows are not finalised.
                if worker.index() == 0 {
                    handles.latest.borrow_mut().write()?;
                }
                handles.dead.borrow_mut().flush()?;
                handles.history.borrow_mut().roll()?;
                // Timely would otherwise keep stepping the (never-ending) dataflow after this closure returns.
                for id in worker.installed_dataflows() {
                    worker.drop_dataflow(id);
                }
                break;
            }
            worker.step_or_park(Some(Duration::from_millis(100)));
        }
        Ok(())
    })
    .map_err(|e| anyhow!("cannot start the timely workers: {e}"))?;
    for result in guards.join() {
        result.map_err(|e| anyhow!("a worker failed: {e}"))??;
    }
    Ok(())
}
