//! The source operator: one per worker, driving that worker's [`Reader`]. Contract:
//! - every record read becomes an event (sent at the capability, which no on-time event's `at` is below) or a
//!   dead letter ([`Intake`]);
//! - the operator holds its capability at the worker's watermark, so that the timely frontier *is* the job's
//!   event-time watermark, and drops it once every owned partition is finished (a worker owning nothing drops it
//!   at once, unless its reader may be given a partition added later: then it holds it at wall clock −
//!   lateness, see `watermark`, and never stalls the frontier);
//! - for checkpoints it sends a [`Marker`] to every window operator on the same channels as its events, after
//!   making its dead letters durable (see `checkpoint` for the protocol), and, when asked to stop, one last
//!   marker with [`STOP_ID`], after which it reads nothing;
//! - every trigger it sends its counters ([`WorkerStats`]) on towards `latest.json`;
//! - it takes over the reader's [`PartitionChange`]s: a partition added while running joins the intake with
//!   its clock at the worker's watermark, a loss let through is counted; a loss that must stop the job
//!   ([`DataLoss`]) is raised in the process's [`JobFailure`], and the source reads nothing more.
//!
//! The source feeds the window operator's exchange directly: operators such as `map` or `partition` regroup a
//! batch's messages by timestamp, which would move a marker ahead of events sent before it.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::{OutputBuilderSession, source};
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::Activator;

use crate::checkpoint::Resume;
use crate::messages::{DeadLetterOut, Marker, OpenWindow, STOP_ID, SourceSignal, WindowData, WindowIn, WorkerStats};
use crate::query::{Query, UdfHost};
use crate::runtime::errors::{ErrorKind, ErrorLog, JobFailure};
use crate::source::SourceSettings;
use crate::source::intake::{Intake, Outcome};
use crate::source::reader::{PartitionChange, ReadError, Reader};

/// Records read per activation before yielding to other operators.
const BATCH: usize = 8192;

/// Everything the source operator needs besides the reader.
pub struct SourceSetup {
    /// Global worker index.
    pub worker: usize,
    /// Workers in all processes.
    pub peers: usize,
    /// Raised on Ctrl-C.
    pub stop: Arc<AtomicBool>,
    /// Where to resume (the default: a fresh start).
    pub resume: Resume,
    /// Whether to take periodic checkpoints (Kafka input).
    pub checkpoints: bool,
    /// This worker's dead-letter output (dead letters are made durable before each marker).
    pub dead: Rc<RefCell<dyn DeadLetterOut>>,
    /// This worker's error counters.
    pub errors: Rc<ErrorLog>,
    /// Where an error that stops the job is raised (shared by the process's workers).
    pub failure: Arc<JobFailure>,
    /// The job's compiled query: how a record is read.
    pub query: Arc<Query>,
    /// This worker's UDF host (for UDFs in `WHERE`, computed columns and CHECKs).
    pub host: Rc<dyn UdfHost>,
}

type Output<'a> = OutputBuilderSession<'a, u64, CapacityContainerBuilder<Vec<WindowIn>>>;

/// Builds the source operator of this worker: raw records in, [`WindowIn`] out.
pub fn read<'s>(
    scope: Scope<'s, u64>,
    reader: Box<dyn Reader>,
    settings: &SourceSettings,
    setup: SourceSetup,
) -> StreamVec<'s, u64, WindowIn> {
    let settings = settings.clone();
    source(scope, "Source", move |capability, info| {
        let activator = scope.activator_for(info.address);
        let mut op = SourceOperator::new(reader, settings, setup, activator);
        let mut cap = Some(capability);
        move |output| {
            if let Some(held) = cap.as_mut()
                && !op.step(held, output)
            {
                cap = None;
            }
        }
    })
}

/// The state of one worker's source between activations.
struct SourceOperator {
    reader: Box<dyn Reader>,
    settings: SourceSettings,
    intake: Intake,
    owned: Vec<i32>,
    worker: usize,
    peers: usize,
    stop: Arc<AtomicBool>,
    checkpoints: bool,
    dead: Rc<RefCell<dyn DeadLetterOut>>,
    errors: Rc<ErrorLog>,
    failure: Arc<JobFailure>,
    activator: Activator,
    /// Open windows of the restored checkpoint still to send.
    restored: Vec<OpenWindow>,
    last_id: u64,
    stop_sent: bool,
    interval: IntervalCounters,
    last_stats: Instant,
    last_marker: Instant,
    /// A batch's events, sent at the source's capability: every on-time event's time (`EventRec::at`) is at
    /// or above it, so no window an event belongs to can turn final while the event is on its way.
    pending: Vec<WindowIn>,
}

impl SourceOperator {
    fn new(
        reader: Box<dyn Reader>,
        settings: SourceSettings,
        setup: SourceSetup,
        activator: Activator,
    ) -> SourceOperator {
        let owned = reader.partitions();
        let mut intake = Intake::new(
            &owned,
            &|p| reader.next_offset(p),
            setup.worker as u32,
            setup.query.clone(),
            setup.host.clone(),
            settings.idle_timeout,
        );
        intake.restore(&setup.resume.partitions);
        if reader.may_gain_partitions() {
            intake.expect_partitions();
        }
        SourceOperator {
            reader,
            settings,
            intake,
            owned,
            worker: setup.worker,
            peers: setup.peers,
            stop: setup.stop,
            checkpoints: setup.checkpoints,
            dead: setup.dead,
            errors: setup.errors,
            failure: setup.failure,
            activator,
            restored: setup.resume.windows,
            last_id: setup.resume.checkpoint,
            stop_sent: false,
            interval: IntervalCounters::new(),
            last_stats: Instant::now(),
            last_marker: Instant::now(),
            pending: Vec::new(),
        }
    }

    /// One activation; returns false once the capability is to be dropped (input finished).
    fn step(&mut self, held: &mut Capability<u64>, output: &mut Output<'_>) -> bool {
        // Restored windows go out first, each at its window's end − 1, to whichever worker owns the device.
        for w in self.restored.drain(..) {
            let time = w.end - 1;
            output
                .session(&held.delayed(&time))
                .give(WindowIn::Data(WindowData::Restored(Box::new(w))));
        }
        if self.stop_sent || self.failure.get().is_some() {
            return true;
        }
        if self.stop.load(Ordering::Relaxed) {
            // Asked to stop: make dead letters durable and mark the last checkpoint; read nothing more.
            self.dead.borrow_mut().sync_or_count();
            self.send_markers(STOP_ID, false, held, output);
            self.stop_sent = true;
            return true;
        }
        let Some(read) = self.read_batch(held, output) else {
            self.activator.activate_after(Duration::from_millis(500));
            return true;
        };
        self.take_changes(*held.time());
        for &p in &self.owned {
            if self.reader.is_done(p) {
                self.intake.finish(p);
            }
        }
        let reader = &self.reader;
        let idle_timeout = self.settings.idle_timeout;
        let watermark = self
            .intake
            .watermark(model::time::now_ms(), &|p| reader.may_be_idle(p, idle_timeout));
        if self.checkpoints && watermark.is_some() && self.last_marker.elapsed() >= self.settings.checkpoint_interval {
            self.last_marker = Instant::now();
            self.dead.borrow_mut().sync_or_count();
            self.last_id += 1;
            self.send_markers(self.last_id, false, held, output);
        }
        if self.last_stats.elapsed() >= self.settings.stats_every || watermark.is_none() {
            self.last_stats = Instant::now();
            let stats = self.stats(watermark);
            output
                .session(&*held)
                .give(WindowIn::Signal(SourceSignal::Stats(Box::new(stats))));
        }
        let Some(wm) = watermark else {
            // Finished, or owning nothing: say so to every window operator, then release the capability.
            self.dead.borrow_mut().sync_or_count();
            self.send_markers(self.last_id, true, held, output);
            tracing::info!(worker = self.worker, partitions = self.owned.len(), "input finished");
            return false;
        };
        if wm > *held.time() {
            held.downgrade(&wm);
        }
        if read >= BATCH {
            self.activator.activate();
        } else {
            let pause = if read > 0 { 1 } else { 20 };
            self.activator.activate_after(Duration::from_millis(pause));
        }
        true
    }

    /// Reads one batch: events go out grouped by window, dead letters to the writer. `None`: the read failed.
    fn read_batch(&mut self, held: &Capability<u64>, output: &mut Output<'_>) -> Option<usize> {
        let started = Instant::now();
        self.intake.start_batch(started);
        let rules = model::Validation {
            now_ms: model::time::now_ms(),
            max_future_ms: self.settings.max_future_ms,
        };
        let floor = *held.time();
        let mut dead = self.dead.borrow_mut();
        let (intake, pending) = (&mut self.intake, &mut self.pending);
        let read = self
            .reader
            .poll(BATCH, &mut |raw| match intake.take(&raw, rules, floor) {
                Outcome::Event(event) => pending.push(WindowIn::Data(WindowData::Event(event))),
                Outcome::Probe(probe) => pending.push(WindowIn::Data(WindowData::Probe(Box::new(probe)))),
                Outcome::Filtered => {}
                Outcome::Dead(letter) => dead.write(&letter),
            });
        let read = match read {
            Ok(n) => n,
            Err(ReadError::DataLoss(loss)) => {
                tracing::error!(worker = self.worker, error = %loss, "stopping the job");
                self.failure.raise(&loss);
                return None;
            }
            Err(ReadError::Other(err)) => {
                self.errors.record(
                    ErrorKind::InputRead,
                    &format!("reading input failed; retrying: {err:#}"),
                );
                return None;
            }
        };
        if !self.pending.is_empty() {
            output.session(held).give_container(&mut self.pending);
            // Whatever the session hands back (a recycled buffer) is not ours to send again.
            self.pending.clear();
        }
        if read > 0 {
            self.interval.batch(read, started.elapsed());
        }
        Some(read)
    }

    /// Takes over what changed in the reader's partitions; `floor` is the worker's watermark now.
    fn take_changes(&mut self, floor: u64) {
        for change in self.reader.take_changes() {
            match change {
                PartitionChange::Added { partition, next_offset } => {
                    self.intake.add_partition(partition, next_offset, floor);
                    self.owned.push(partition);
                }
                PartitionChange::Lost {
                    partition,
                    next_offset,
                    skipped,
                } => self.intake.lost(partition, next_offset, skipped),
            }
        }
    }

    /// Sends marker `id` (or, with `retire`, this source's goodbye) to every window operator.
    fn send_markers(&self, id: u64, retire: bool, held: &Capability<u64>, output: &mut Output<'_>) {
        let markers = Marker::to_every(id, self.worker as u32, self.peers, self.intake.cut(), retire);
        output.session(held).give_iterator(markers);
    }

    fn stats(&mut self, watermark: Option<u64>) -> WorkerStats {
        let (input_rate, batch_ms) = self.interval.take();
        WorkerStats {
            worker: self.worker,
            counts: self.intake.totals(),
            input_rate,
            batch_ms,
            lag: self.reader.lag(),
            watermark,
            errors: self.errors.counts(),
            join: Default::default(),
        }
    }
}

/// Rate and batch-time bookkeeping over one trigger interval.
struct IntervalCounters {
    since: Instant,
    records: u64,
    batches: u64,
    busy: Duration,
}

impl IntervalCounters {
    fn new() -> Self {
        IntervalCounters {
            since: Instant::now(),
            records: 0,
            batches: 0,
            busy: Duration::ZERO,
        }
    }

    fn batch(&mut self, records: usize, took: Duration) {
        self.records += records as u64;
        self.batches += 1;
        self.busy += took;
    }

    /// `(records per second, mean ms per batch)` since the last call; starts a new interval.
    fn take(&mut self) -> (f64, f64) {
        let secs = self.since.elapsed().as_secs_f64().max(1e-9);
        let rate = self.records as f64 / secs;
        let batch_ms = if self.batches > 0 {
            self.busy.as_secs_f64() * 1000.0 / self.batches as f64
        } else {
            0.0
        };
        *self = IntervalCounters::new();
        (rate, batch_ms)
    }
}
