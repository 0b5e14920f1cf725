//! `dataflow`: the job's flags, then [`dataflow::job::run`] until the input ends (`--bounded`, `--input`) or
//! Ctrl-C, which takes a last checkpoint, writes a last snapshot and exits; any error exits non-zero with its
//! message and the exit status of `dataflow::cluster::exit`. `dataflow cluster` runs and supervises a cluster of
//! processes of the job on this machine; `dataflow compact` compacts a history folder offline; `dataflow sql`
//! prints the built-in job or checks a job file.

#[cfg(not(target_env = "msvc"))]
mod allocator;

use anyhow::{Context, Result};
use clap::Parser;
use dataflow::cluster::connect::Unreachable;
use dataflow::cluster::exit;
use dataflow::cluster::supervisor::{self, GaveUp};
use dataflow::config::Args;
use dataflow::config::cluster::ClusterArgs;
use dataflow::config::compact::CompactArgs;
use dataflow::config::sql::SqlArgs;
use dataflow::job::{self, StopHandle};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file, a supervisor's pipe or a test reads plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let outcome = match std::env::args_os().nth(1) {
        Some(first) if first == "cluster" => cluster(ClusterArgs::parse_from(std::env::args_os().skip(1))),
        Some(first) if first == "compact" => compact(CompactArgs::parse_from(std::env::args_os().skip(1))),
        Some(first) if first == "sql" => SqlArgs::parse_from(std::env::args_os().skip(1))
            .request()
            .and_then(|request| job::sql_command(&request))
            .map(|text| print!("{text}")),
        _ => run(Args::parse()),
    };
    outcome.map_or_else(
        |err| {
            eprintln!("dataflow: error: {err:#}");
            std::process::ExitCode::from(exit_status(&err) as u8)
        },
        |()| std::process::ExitCode::SUCCESS,
    )
}

/// The job: checked flags, a stop on Ctrl-C, and the run.
fn run(args: Args) -> Result<()> {
    let settings = args.check()?;
    let stop = StopHandle::default();
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.stop()).context("installing the Ctrl-C handler")?;
    }
    job::run(settings, stop).map(|_| ())
}

/// The exit status of an error (`dataflow::cluster::exit`).
fn exit_status(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<Unreachable>().is_some() {
        exit::PEERS_UNREACHABLE
    } else if err.downcast_ref::<GaveUp>().is_some() {
        exit::GAVE_UP
    } else {
        exit::FAILED
    }
}

/// `dataflow cluster --processes N [every job flag]`: the supervised cluster, stopped by Ctrl-C.
fn cluster(args: ClusterArgs) -> Result<()> {
    let supervision = args.check()?;
    let stop = StopHandle::default();
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.stop()).context("installing the Ctrl-C handler")?;
    }
    supervisor::run(&supervision, &stop).map(|_| ())
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
