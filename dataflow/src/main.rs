//! `dataflow`: parses flags, checks the input, and runs the pipeline on timely workers (`-w` threads, `-n/-p/-h`
//! processes) until the input ends (`--bounded`, `--input`) or Ctrl-C, which writes a last snapshot and exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use dataflow::config::Args;
use dataflow::{checkpoint, pipeline, source};

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
        None => source::kafka::partition_count(&config)?,
    };
    let identity = pipeline::identity(&config);
    if config.fresh {
        checkpoint::discard(&config.out)?;
    }
    let restore = match &identity {
        Some(id) => checkpoint::load_newest(&config.out, id)?,
        None => None,
    };
    checkpoint::prepare(&config.out, restore.as_ref())?;
    if let Some(m) = &restore {
        tracing::info!(
            checkpoint = m.id,
            partitions = m.partitions.len(),
            open_windows = m.windows.len(),
            written_by_workers = m.workers,
            "resuming from checkpoint"
        );
    }
    let restore = restore.map(Arc::new);
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
        let handles = pipeline::build(worker, &config, partitions, restore.clone(), stop.clone())?;
        while !handles.done.done() {
            if stop.load(Ordering::Relaxed) {
                // Stopped: the sources mark a last checkpoint and read nothing more; wait until it is written
                // (and, on worker 0, committed), then write a last snapshot. Open windows are not finalised:
                // the checkpoint carries them to the next run.
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                let s = &handles.stopping;
                while !(s.part_written.get() && (worker.index() != 0 || s.committed.get()))
                    && !handles.done.done()
                    && std::time::Instant::now() < deadline
                {
                    worker.step_or_park(Some(Duration::from_millis(10)));
                }
                if std::time::Instant::now() >= deadline {
                    tracing::warn!(
                        "the last checkpoint did not complete within 30 s; the previous one stands"
                    );
                }
                if worker.index() == 0 {
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
        if handles.stopping.final_failed.get() {
            return Err(anyhow!(
                "the last windows of this run could not be written to the Parquet history (see the error \
                 above, e.g. a full disk or too few file descriptors); nothing of them was committed"
            ));
        }
        Ok(())
    })
    .map_err(|e| anyhow!("cannot start the timely workers: {e}"))?;
    for result in guards.join() {
        result.map_err(|e| anyhow!("a worker failed: {e}"))??;
    }
    Ok(())
}
