//! Typed runs of the project's binaries. `DataflowRun` and `ProducerRun` start from the binaries' own flag
//! parsers (so from their defaults), change only what a test names, and write the command line with the
//! binaries' `to_args`: no flag is spelled in a test. `Running` is a started process that drains its output
//! (a full pipe never blocks it), stops with a bounded wait, and is killed if a test panics.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser;

/// The flags of one of the project's binaries: its parser, its defaults and its command line.
pub trait Flags: Parser + Clone {
    /// The binary's name in the target folder.
    const BINARY: &'static str;
    /// The command line that parses back to these flags.
    fn to_args(&self) -> Vec<OsString>;
}

impl Flags for dataflow::config::Args {
    const BINARY: &'static str = "dataflow";
    fn to_args(&self) -> Vec<OsString> {
        dataflow::config::Args::to_args(self)
    }
}

impl Flags for producer::config::Args {
    const BINARY: &'static str = "producer";
    fn to_args(&self) -> Vec<OsString> {
        producer::config::Args::to_args(self)
    }
}

/// A run of one binary of this build: its flags, starting from its defaults.
#[derive(Clone, Debug)]
pub struct Run<A> {
    args: A,
}

/// A `dataflow` job to start.
pub type DataflowRun = Run<dataflow::config::Args>;
/// A `producer` (simulator) run to start.
pub type ProducerRun = Run<producer::config::Args>;

impl<A: Flags> Run<A> {
    /// The binary with every default (a job reads `localhost:9092` and writes into `data/`: set what the test
    /// needs).
    pub fn defaults() -> Run<A> {
        let args = A::try_parse_from([A::BINARY])
            .unwrap_or_else(|e| panic!("the defaults of {} do not parse: {e}", A::BINARY));
        Run { args }
    }

    /// Any change to the flags the named methods do not cover.
    pub fn with(mut self, change: impl FnOnce(&mut A)) -> Run<A> {
        change(&mut self.args);
        self
    }

    /// The flags as they stand.
    pub fn args(&self) -> &A {
        &self.args
    }

    /// The binary of this build with these flags.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(crate::bin(A::BINARY));
        cmd.args(self.args.to_args());
        cmd
    }

    /// Starts it.
    pub fn spawn(&self) -> Running {
        Running::spawn(&mut self.command())
    }
}

impl DataflowRun {
    /// A job reading `topic` on `brokers` and committing to a consumer group named after the topic, so runs
    /// on one topic share their offsets and no two tests do.
    pub fn kafka(brokers: &str, topic: &str) -> DataflowRun {
        DataflowRun::defaults().with(|a| {
            a.brokers = Some(brokers.to_string());
            a.topic = Some(topic.to_string());
            a.group = Some(topic.to_string());
        })
    }

    /// The job of the SQL file `file` (`--sql`): the query says the topic, the window and the lateness, so
    /// those flags are left out.
    pub fn sql(self, file: &Path) -> DataflowRun {
        self.with(|a| {
            a.sql = Some(file.to_path_buf());
            a.topic = None;
            a.window = None;
            a.slide = None;
            a.session_gap = None;
            a.lateness = None;
        })
    }

    /// A job replaying a JSON-lines file (bounded).
    pub fn input(file: &Path) -> DataflowRun {
        DataflowRun::defaults().with(|a| a.input = Some(file.to_path_buf()))
    }

    /// Worker threads (`-w`).
    pub fn workers(self, workers: usize) -> DataflowRun {
        self.with(|a| a.workers = workers)
    }

    /// Process `process` of a cluster of `processes` whose addresses are in `hostfile` (`-n -p -h`).
    pub fn cluster(self, processes: usize, process: usize, hostfile: &Path) -> DataflowRun {
        self.with(|a| {
            a.processes = processes;
            a.process = process;
            a.hostfile = Some(hostfile.to_path_buf());
        })
    }

    /// `dataflow cluster` running this job on `processes` processes of this machine, with the supervisor's own
    /// flags `supervisor` (name, value).
    pub fn supervised(&self, processes: usize, supervisor: &[(&str, &str)]) -> Command {
        let mut args = self.args.clone();
        args.processes = processes;
        let mut cmd = Command::new(crate::bin("dataflow"));
        cmd.arg("cluster").args(args.to_args());
        for (name, value) in supervisor {
            cmd.arg(format!("{name}={value}"));
        }
        cmd
    }

    /// Read to the end offsets seen at start, finalise every window, exit.
    pub fn bounded(self) -> DataflowRun {
        self.with(|a| a.bounded = true)
    }

    /// Discard the checkpoints and start over.
    pub fn fresh(self) -> DataflowRun {
        self.with(|a| a.fresh = true)
    }

    /// Output folder (latest.json, parquet/, _checkpoints/).
    pub fn out(self, dir: &Path) -> DataflowRun {
        self.with(|a| a.out = dir.to_path_buf())
    }

    /// Dead-letter folder.
    pub fn deadletter(self, dir: &Path) -> DataflowRun {
        self.with(|a| a.deadletter = dir.to_path_buf())
    }

    /// Window size.
    pub fn window(self, window: Duration) -> DataflowRun {
        self.with(|a| a.window = Some(window))
    }

    /// Hopping windows of the window size, one every `slide`.
    pub fn slide(self, slide: Duration) -> DataflowRun {
        self.with(|a| a.slide = Some(slide))
    }

    /// Session windows with this gap.
    pub fn session_gap(self, gap: Duration) -> DataflowRun {
        self.with(|a| a.session_gap = Some(gap))
    }

    /// Watermark lateness.
    pub fn lateness(self, lateness: Duration) -> DataflowRun {
        self.with(|a| a.lateness = Some(lateness))
    }

    /// Live publication interval.
    pub fn trigger(self, trigger: Duration) -> DataflowRun {
        self.with(|a| a.trigger = trigger)
    }

    /// How long a silent partition holds the watermark back.
    pub fn idle_timeout(self, idle_timeout: Duration) -> DataflowRun {
        self.with(|a| a.idle_timeout = idle_timeout)
    }

    /// How often a checkpoint is taken.
    pub fn checkpoint_interval(self, interval: Duration) -> DataflowRun {
        self.with(|a| a.checkpoint_interval = interval)
    }

    /// Also publishes final windows to `topic`, exactly once (`--sink-topic`).
    pub fn sink_topic(self, topic: &str) -> DataflowRun {
        self.with(|a| a.sink_topic = Some(topic.to_string()))
    }

    /// What a lost offset does (`--on-data-loss`).
    pub fn on_data_loss(self, policy: dataflow::config::OnDataLoss) -> DataflowRun {
        self.with(|a| a.on_data_loss = policy)
    }

    /// Adds a UDF crate (`--udf`).
    pub fn udf(self, dir: &Path) -> DataflowRun {
        self.with(|a| a.udfs.push(dir.to_path_buf()))
    }
}

impl ProducerRun {
    /// Publishing to `topic` on `brokers` (created with the default partitions when missing).
    pub fn kafka(brokers: &str, topic: &str) -> ProducerRun {
        ProducerRun::defaults().with(|a| {
            a.brokers = brokers.to_string();
            a.topic = topic.to_string();
        })
    }

    /// Also publishing the device table to `topic` (`--devices-topic`), `rate` changes per second.
    pub fn devices_topic(self, topic: &str, rate: f64) -> ProducerRun {
        self.with(|a| {
            a.devices_topic = Some(topic.to_string());
            a.device_change_rate = rate;
        })
    }

    /// Writing JSON lines to `file` on a simulated clock instead of Kafka.
    pub fn to_file(file: &Path) -> ProducerRun {
        ProducerRun::defaults().with(|a| a.to_file = Some(file.to_path_buf()))
    }

    /// Simulated devices.
    pub fn devices(self, devices: u64) -> ProducerRun {
        self.with(|a| a.devices = devices)
    }

    /// Messages per second per device (0: as fast as the broker takes them).
    pub fn rate(self, rate: f64) -> ProducerRun {
        self.with(|a| a.rate = rate)
    }

    /// Stop after this many records.
    pub fn count(self, count: u64) -> ProducerRun {
        self.with(|a| a.count = Some(count))
    }

    /// Stop after this long.
    pub fn duration(self, duration: Duration) -> ProducerRun {
        self.with(|a| a.duration = Some(duration))
    }

    /// Seed of the fleet and its readings.
    pub fn seed(self, seed: u64) -> ProducerRun {
        self.with(|a| a.seed = seed)
    }

    /// Share of valid events stamped in the past, by up to `max_delay`.
    pub fn late(self, fraction: f64, max_delay: Duration) -> ProducerRun {
        self.with(|a| {
            a.late_fraction = fraction;
            a.max_delay = max_delay;
        })
    }

    /// Share of malformed records.
    pub fn bad(self, fraction: f64) -> ProducerRun {
        self.with(|a| a.bad_fraction = fraction)
    }

    /// The input the golden comparisons exercise: 5 % late events (up to 120 s) and 2 % malformed records.
    pub fn late_and_bad(self) -> ProducerRun {
        self.late(0.05, Duration::from_secs(120)).bad(0.02)
    }

    /// A librdkafka producer setting (`KEY=VALUE`).
    pub fn kafka_option(self, option: &str) -> ProducerRun {
        self.with(|a| a.kafka_options.push(option.to_string()))
    }

    /// Event time of the first record of a `to_file` run, epoch ms.
    pub fn start_ms(self, start_ms: u64) -> ProducerRun {
        self.with(|a| a.start_ms = Some(start_ms))
    }
}

/// A started process. Its stdout and stderr are read as it runs and handed over when it ends; dropped while it
/// runs (a failing test), it is killed with SIGKILL.
pub struct Running {
    what: String,
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Running {
    /// Starts `cmd` with no stdin and both outputs captured.
    pub fn spawn(cmd: &mut Command) -> Running {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        Running {
            what,
            child,
            stdout,
            stderr,
        }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has not exited yet.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Sends SIGINT, what Ctrl-C sends.
    fn interrupt(&self) {
        // SAFETY: a signal to our own child, which is not reaped before `self` is gone.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        assert_eq!(sent, 0, "SIGINT to {}", self.what);
    }

    /// Freezes it (SIGSTOP): it reads and writes nothing until [`Running::resume`].
    pub fn pause(&self) {
        // SAFETY: a signal to our own child, which is not reaped before `self` is gone.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGSTOP) };
        assert_eq!(sent, 0, "SIGSTOP to {}", self.what);
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&self) {
        // SAFETY: as in `pause`.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGCONT) };
        assert_eq!(sent, 0, "SIGCONT to {}", self.what);
    }

    /// Kills it with SIGKILL (a crash) and reaps it.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }

    /// Waits up to `limit` for it to exit and returns its status and outputs; past the limit it is killed and
    /// the test fails with what it wrote to stderr.
    pub fn wait(mut self, limit: Duration) -> Output {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = collect(self.stderr.take());
                panic!(
                    "{} did not finish within {limit:?}; stderr:\n{}",
                    self.what,
                    String::from_utf8_lossy(&stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.output(status)
    }

    /// Waits up to `limit` and fails the test, with its stderr, unless it exited with success.
    pub fn wait_ok(self, limit: Duration) -> Output {
        let what = self.what.clone();
        let out = self.wait(limit);
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Ctrl-C, then `wait_ok`: it must stop cleanly within `limit`.
    pub fn stop_ok(self, limit: Duration) -> Output {
        self.interrupt();
        self.wait_ok(limit)
    }

    fn output(&mut self, status: ExitStatus) -> Output {
        Output {
            status,
            stdout: collect(self.stdout.take()),
            stderr: collect(self.stderr.take()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Harmless once it has exited and been reaped: std then sends no signal.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn collect(reader: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    reader.map_or_else(Vec::new, |r| r.join().unwrap_or_default())
}
