//! `iot-pipeline`: the whole pipeline in one command. Without `--brokers` it starts an embedded
//! Kafka-protocol broker (librdkafka's mock cluster, in this process), then the dashboard, the dataflow and the
//! simulator as separate processes wired to it, prints the dashboard's URL, and on Ctrl-C stops them in order
//! (simulator first, so the dataflow sees every record; dataflow next, which writes a last snapshot; dashboard
//! last). The pieces stay separate binaries for real deployments; this command only wires them.
//!
//! The embedded broker is new on every run, with an empty topic: the dataflow's checkpoints (offsets of the
//! previous run's broker, which is gone) are discarded (`--fresh`; the Parquet history stays), so a second run
//! reads its own records from the start. With `--brokers` (a real Kafka) the checkpoints are kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::mocking::MockCluster;

mod args;
mod piece;

pub use args::Args;
use piece::Piece;

/// The binary `name` next to this one (cargo builds the workspace's binaries into one folder).
fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} not found next to {}: build the workspace (./run.sh does)",
            name,
            exe.display()
        );
    }
    Ok(path)
}

/// Runs the whole pipeline until Ctrl-C (or until a piece fails), then stops the pieces in order.
pub fn run(args: Args) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    }
    let (mut sim, mut job, web) = args.pieces()?;
    if std::net::TcpListener::bind((web.bind, web.port)).is_err() {
        bail!("port {} on {} is in use: pick another with --port", web.port, web.bind);
    }
    // Bad values fail here, naming the flag, before any piece starts.
    sim.check()?;
    let settings = job.check()?;
    if args.sql.is_some() {
        // The simulator writes to the topic the query's table reads (a file connector reads no topic).
        if let Some(kafka) = dataflow::job::planned_input(&settings)?.kafka() {
            sim.topic.clone_from(&kafka.topic);
        }
        // And its device table to the topic the query joins.
        if let (Some(topic), Some(_)) = (dataflow::job::planned_table_topic(&settings)?, &sim.devices_topic) {
            sim.devices_topic = Some(topic);
        }
    }
    // The mock cluster lives on this thread for the whole run (it is not Send).
    let mock;
    if args.brokers.is_none() {
        mock = MockCluster::new(1).context("cannot start the embedded broker")?;
        mock.create_topic(&sim.topic, sim.partitions, 1)
            .context("cannot create the topic on the embedded broker")?;
        if let Some(devices) = &sim.devices_topic {
            mock.create_topic(devices, sim.partitions, 1)
                .context("cannot create the device table's topic on the embedded broker")?;
        }
        sim.brokers = mock.bootstrap_servers();
        job.brokers = Some(sim.brokers.clone());
        println!(
            "embedded Kafka-protocol broker on {} (topic {}, {} partitions)",
            sim.brokers, sim.topic, sim.partitions
        );
        println!(
            "the embedded broker starts empty: the dataflow starts its checkpoints afresh (--fresh: {} is \
             cleared; the Parquet history stays)",
            dataflow::checkpoint::StateStore::new(&job.out).dir().display()
        );
    }

    let mut dashboard = Piece::start("dashboard", &sibling("dashboard")?, web.to_args())?;
    // More than one process: `dataflow cluster` runs and supervises them.
    let cluster = (job.processes > 1).then(|| std::ffi::OsString::from("cluster"));
    let mut dataflow = Piece::start(
        "dataflow",
        &sibling("dataflow")?,
        cluster.into_iter().chain(job.to_args()),
    )?;
    let mut producer = Piece::start("producer", &sibling("producer")?, sim.to_args())?;
    println!(
        "dashboard: http://{}:{}/  (Ctrl-C stops everything)",
        web.bind, web.port
    );

    let mut failure = None;
    let mut simulator_done = false;
    while !stop.load(Ordering::Relaxed) {
        for piece in [&mut dashboard, &mut dataflow, &mut producer] {
            if let Some(status) = piece.exited() {
                // With --count the simulator ends by itself; the dataflow and the dashboard go on.
                if piece.name == "producer" && sim.count.is_some() && status.success() {
                    if !simulator_done {
                        println!("simulator sent its {} records", sim.count.unwrap_or_default());
                        simulator_done = true;
                    }
                    continue;
                }
                failure = Some(format!("{} exited unexpectedly ({status})", piece.name));
            }
        }
        if failure.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("stopping: simulator, dataflow, dashboard");
    let results = [
        producer.stop(Duration::from_secs(40))?,
        dataflow.stop(Duration::from_secs(40))?,
        dashboard.stop(Duration::from_secs(10))?,
    ];
    if let Some(f) = failure {
        bail!("{f}");
    }
    for (name, status) in ["producer", "dataflow", "dashboard"].iter().zip(results) {
        if !status.success() {
            bail!("{name} stopped with {status}");
        }
    }
    println!("stopped cleanly; outputs in {}", args.data.display());
    Ok(())
}
