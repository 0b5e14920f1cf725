//! `iot-pipeline`: the whole pipeline in one command. Without `--brokers` it starts an embedded
//! Kafka-protocol broker (librdkafka's mock cluster, in this process), then the dashboard, the dataflow and the
//! simulator as separate processes wired to it, prints the dashboard's URL, and on Ctrl-C stops them in order
//! (simulator first, so the dataflow sees every record; dataflow next, which writes a last snapshot; dashboard
//! last). The pieces stay separate binaries for real deployments; this command only wires them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use rdkafka::mocking::MockCluster;
use std::os::unix::process::CommandExt;

/// Runs the simulator, the dataflow and the dashboard together.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// A real Kafka to use instead of the embedded broker.
    #[arg(long)]
    brokers: Option<String>,
    /// Topic of sensor events.
    #[arg(long, default_value = "iot-metrics")]
    topic: String,
    /// Dataflow worker threads.
    #[arg(short = 'w', long = "workers", default_value_t = 2)]
    workers: usize,
    /// Simulated devices.
    #[arg(long, default_value_t = 8)]
    devices: u64,
    /// Messages per second per device.
    #[arg(long, default_value_t = 4.0)]
    rate: f64,
    /// Fraction of late events the simulator sends.
    #[arg(long, default_value_t = 0.0)]
    late_fraction: f64,
    /// Fraction of malformed records the simulator sends.
    #[arg(long, default_value_t = 0.0)]
    bad_fraction: f64,
    /// Tumbling window size.
    #[arg(long, default_value = "10s")]
    window: String,
    /// Watermark lateness.
    #[arg(long, default_value = "1m")]
    lateness: String,
    /// Live publication interval.
    #[arg(long, default_value = "5s")]
    trigger: String,
    /// A silent partition stops holding the watermark back after this long.
    #[arg(long, default_value = "30s")]
    idle_timeout: String,
    /// Dashboard address.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Dashboard port.
    #[arg(long, default_value_t = 5000)]
    port: u16,
    /// Data folder: `<data>/aggregates` and `<data>/deadletter`.
    #[arg(long, default_value = "data")]
    data: PathBuf,
}

/// A child process with a name, stopped with SIGINT.
struct Piece {
    name: &'static str,
    child: Child,
}

impl Piece {
    fn start(name: &'static str, bin: &Path, args: &[String]) -> Result<Piece> {
        let mut cmd = Command::new(bin);
        // Own process group: a terminal Ctrl-C reaches only this launcher, which stops the pieces in order.
        cmd.args(args).process_group(0);
        // SAFETY: prctl is async-signal-safe; it asks the kernel to SIGTERM the piece if the launcher dies, so a
        // killed launcher never leaves pieces running.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(Piece { name, child })
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn stop(&mut self, within: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.exited() {
            return Ok(status);
        }
        // SAFETY: sending a signal to a child we spawned and have not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                eprintln!(
                    "iot-pipeline: {} did not stop within {within:?}; killing it",
                    self.name
                );
                let _ = self.child.kill();
                return Ok(self.child.wait()?);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn main() {
    if let Err(err) = run(Args::parse()) {
        eprintln!("iot-pipeline: error: {err:#}");
        std::process::exit(1);
    }
}

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

fn run(args: Args) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
    }
    if std::net::TcpListener::bind((args.bind.as_str(), args.port)).is_err() {
        bail!(
            "port {} on {} is in use: pick another with --port",
            args.port,
            args.bind
        );
    }
    // The mock cluster lives on this thread for the whole run (it is not Send).
    let mock;
    let brokers = match &args.brokers {
        Some(b) => b.clone(),
        None => {
            mock = MockCluster::new(1).context("cannot start the embedded broker")?;
            mock.create_topic(&args.topic, 3, 1)
                .context("cannot create the topic on the embedded broker")?;
            let b = mock.bootstrap_servers();
            println!(
                "embedded Kafka-protocol broker on {b} (topic {}, 3 partitions)",
                args.topic
            );
            b
        }
    };
    let aggregates = args.data.join("aggregates");
    let deadletter = args.data.join("deadletter");
    let s = |p: &Path| p.display().to_string();

    let mut dashboard = Piece::start(
        "dashboard",
        &sibling("dashboard")?,
        &[
            "--bind".into(),
            args.bind.clone(),
            "--port".into(),
            args.port.to_string(),
            "--data".into(),
            s(&aggregates),
        ],
    )?;
    let mut dataflow = Piece::start(
        "dataflow",
        &sibling("dataflow")?,
        &[
            "-w".into(),
            args.workers.to_string(),
            "--brokers".into(),
            brokers.clone(),
            "--topic".into(),
            args.topic.clone(),
            "--window".into(),
            args.window.clone(),
            "--lateness".into(),
            args.lateness.clone(),
            "--trigger".into(),
            args.trigger.clone(),
            "--idle-timeout".into(),
            args.idle_timeout.clone(),
            "--out".into(),
            s(&aggregates),
            "--deadletter".into(),
            s(&deadletter),
        ],
    )?;
    let mut producer = Piece::start(
        "producer",
        &sibling("producer")?,
        &[
            "--brokers".into(),
            brokers.clone(),
            "--topic".into(),
            args.topic.clone(),
            "--devices".into(),
            args.devices.to_string(),
            "--rate".into(),
            args.rate.to_string(),
            "--late-fraction".into(),
            args.late_fraction.to_string(),
            "--bad-fraction".into(),
            args.bad_fraction.to_string(),
        ],
    )?;
    println!(
        "dashboard: http://{}:{}/  (Ctrl-C stops everything)",
        args.bind, args.port
    );

    let mut failure = None;
    while !stop.load(Ordering::Relaxed) {
        for piece in [&mut dashboard, &mut dataflow, &mut producer] {
            if let Some(status) = piece.exited() {
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
