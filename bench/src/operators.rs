//! The core path on the dataflow's own operators, in process: payloads held in memory feed the job's real source
//! operator (parse, validate, late rule, dead letters, watermark) through the real exchange by device into the
//! real tumbling-window operator, whose output goes to a null sink that only counts the final aggregates. No
//! file is read and no Parquet or `latest.json` is written: this is the "core" of the performance targets
//! (in-memory input, null sink), measured on `-w` worker threads exactly as the job runs them.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use clap::Parser;
use dataflow::checkpoint::Resume;
use dataflow::config::Args;
use dataflow::job::{Settings, plan_query};
use dataflow::messages::{RawRecord, WindowMsg};
use dataflow::runtime::errors::ErrorLog;
use dataflow::sink::deadletter::{DeadLetterSettings, DeadLetterWriter};
use dataflow::source::operator::{SourceSetup, read};
use dataflow::source::reader::{ReadError, Reader};
use dataflow::source::{Input, SourceSettings};
use dataflow::udf::host::Host;
use dataflow::udf::{UdfSources, Udfs};
use dataflow::window::{WindowSettings, WindowSetup, windows};
use model::value::Value;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::vec::Map;

use crate::inproc::Payloads;

/// What one run did.
pub struct OperatorRun {
    /// From the first activation to the last final window (all workers).
    pub elapsed: Duration,
    /// Events folded into final aggregates.
    pub folded: u64,
    /// Dead letters written (bad or late records).
    pub dead: u64,
    /// Final (window, device) aggregates.
    pub aggregates: u64,
}

/// Reads a worker's contiguous share of the payloads as one partition.
struct MemoryReader {
    payloads: Arc<Payloads>,
    partition: i32,
    next: usize,
    end: usize,
}

impl Reader for MemoryReader {
    fn partitions(&self) -> Vec<i32> {
        vec![self.partition]
    }

    fn poll(&mut self, max: usize, sink: &mut dyn FnMut(RawRecord<'_>)) -> Result<usize, ReadError> {
        let to = self.end.min(self.next + max);
        for i in self.next..to {
            sink(RawRecord {
                partition: self.partition,
                offset: i as i64,
                key: None,
                value: Some(self.payloads.record(i)),
                timestamp: None,
            });
        }
        let read = to - self.next;
        self.next = to;
        Ok(read)
    }

    fn is_done(&self, _partition: i32) -> bool {
        self.next >= self.end
    }

    fn lag(&self) -> u64 {
        (self.end - self.next) as u64
    }

    fn next_offset(&self, _partition: i32) -> i64 {
        self.next as i64
    }

    fn may_be_idle(&self, _partition: i32, _idle_timeout: Duration) -> bool {
        self.next >= self.end
    }
}

/// The job's settings with its default flags, writing its dead letters under `work`.
fn job_settings(work: &Path) -> Result<Settings> {
    let out = work.join("operators-out");
    let dead = work.join("operators-deadletter");
    let args = Args::try_parse_from([
        "dataflow".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--deadletter".as_ref(),
        dead.as_os_str(),
    ])?;
    let settings = args.check()?;
    std::fs::create_dir_all(&settings.deadletter).context("creating the dead-letter folder")?;
    Ok(settings)
}

/// Runs the payloads through the source and window operators on `workers` threads.
pub fn run(payloads: &Arc<Payloads>, workers: usize, work: &Path) -> Result<OperatorRun> {
    let config = job_settings(work)?;
    let udfs = Arc::new(Udfs::default());
    // The built-in job, planned as the job plans it.
    let query = Arc::new(plan_query(&config.query, &UdfSources::default().signatures()?)?);
    let count = query
        .schema
        .index_of("count")
        .context("the built-in job counts its events")?;
    let source = SourceSettings {
        input: Input::File("(memory)".into()),
        idle_timeout: config.rules.idle_timeout,
        max_future_ms: config.rules.max_future_ms,
        checkpoint_interval: config.rules.checkpoint_interval,
        stats_every: config.trigger,
    };
    let window = WindowSettings {
        kind: query.window,
        trigger: config.trigger,
    };
    let dead_letters = DeadLetterSettings {
        dir: config.deadletter.clone(),
        topic: None,
    };
    let payloads = payloads.clone();
    let n = payloads.len();
    let started = Instant::now();
    let results = timely::execute(timely::Config::process(workers), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let reader = MemoryReader {
            payloads: payloads.clone(),
            partition: index as i32,
            next: n * index / peers,
            end: n * (index + 1) / peers,
        };
        let errors = Rc::new(ErrorLog::default());
        let dead = Rc::new(RefCell::new(
            DeadLetterWriter::open(&dead_letters, index, errors.clone()).expect("the dead-letter folder is writable"),
        ));
        let folded = Rc::new(Cell::new((0u64, 0u64)));
        let probe = ProbeHandle::new();
        let sink = folded.clone();
        let host = Rc::new(Host::new(udfs.clone(), errors.clone()));
        worker.dataflow::<u64, _, _>(|scope| {
            let setup = SourceSetup {
                worker: index,
                peers,
                stop: Arc::new(AtomicBool::new(false)),
                resume: Resume::default(),
                checkpoints: false,
                dead,
                errors: errors.clone(),
                failure: Arc::default(),
                query: query.clone(),
                host: host.clone(),
            };
            let events = read(scope, Box::new(reader), &source, setup);
            let setup = WindowSetup {
                settings: window,
                restored: 0,
                worker: index,
                peers,
                watermark: Rc::new(Cell::new(None)),
                query: query.clone(),
                host,
                errors,
                store: None,
            };
            windows(events, setup)
                .map(move |msg| {
                    if let WindowMsg::Data(w) = msg
                        && w.is_final
                    {
                        let (events, aggregates) = sink.get();
                        let n = match w.row[count] {
                            Value::Int(n) => n as u64,
                            _ => 0,
                        };
                        sink.set((events + n, aggregates + 1));
                    }
                })
                .probe_with(&probe);
        });
        while !probe.done() {
            worker.step();
        }
        folded.get()
    })
    .map_err(|e| anyhow!("timely: {e}"))?;
    let mut folded = 0;
    let mut aggregates = 0;
    for result in results.join() {
        let (f, a) = result.map_err(|e| anyhow!("worker failed: {e}"))?;
        folded += f;
        aggregates += a;
    }
    let elapsed = started.elapsed();
    let dead_dir = work.join("operators-deadletter");
    let mut dead = 0u64;
    for entry in std::fs::read_dir(&dead_dir)? {
        let bytes = std::fs::read(entry?.path())?;
        dead += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    std::fs::remove_dir_all(&dead_dir).context("removing the dead letters of the operator run")?;
    ensure!(
        folded + dead == n as u64,
        "operator run lost records: {folded} folded + {dead} dead letters of {n}"
    );
    Ok(OperatorRun {
        elapsed,
        folded,
        dead,
        aggregates,
    })
}
