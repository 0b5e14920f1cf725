//! One worker's transactional writer, on a thread of its own so that no Kafka call ever blocks a timely worker.
//! It takes the worker's final windows and barriers in order; the windows before barrier `n` are checkpoint
//! `n`'s transaction `T(j, n)`. Transactions are worked through in checkpoint order, one open at a time:
//! begin, produce, wait until the checkpoint's fate is known (`kafka_out::fate`: its manifest committed, or a
//! newer one committed without it), then move the register and commit (or abort an abandoned one). Any failure
//! (a broker outage, a transaction the broker timed out) reopens the producer, which fences and resolves what was
//! in flight, and asks the register whether the transaction committed before doing it again: nothing is lost
//! and nothing is published twice. The windows of a transaction are kept until it is committed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use model::output::OutputSchema;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};

use super::SinkSettings;
use crate::checkpoint::{Fate, SinkRecovery, StateStore};
use crate::sink::kafka::out::{OutRecord, Shared, maybe_crash, send};
use crate::sink::kafka::recover;
use crate::sink::kafka::register::{self, CALL_TIMEOUT, Register};

/// What the worker hands its writer, in the order of its window output.
pub enum Command {
    /// A final window.
    Record(OutRecord),
    /// Checkpoint `id`'s barrier: the records since the previous one are its transaction.
    Barrier(u64),
    /// Finish: commit what committed manifests cover, until the deadline; records after the last barrier are
    /// dropped (no manifest covers them: the next run recomputes them).
    Finish(Instant),
}

/// A closed transaction waiting to commit.
struct Closed {
    id: u64,
    records: Vec<OutRecord>,
    /// Produced into the producer's open transaction.
    begun: bool,
}

/// The writer of global worker `worker`.
pub struct Writer {
    sink: SinkSettings,
    store: StateStore,
    schema: Arc<OutputSchema>,
    worker: usize,
    id: String,
    producer: Option<ThreadedProducer<DefaultProducerContext>>,
    register: Option<Register>,
    lineage: Option<String>,
    closed: VecDeque<Closed>,
    current: Vec<OutRecord>,
    shared: Shared,
    recovery: Option<SinkRecovery>,
    commits: u64,
}

impl Writer {
    /// The writer of `worker`; `recovery` is what it must publish again first (from a restored checkpoint).
    pub fn new(
        sink: SinkSettings,
        store: StateStore,
        schema: Arc<OutputSchema>,
        worker: usize,
        recovery: Option<SinkRecovery>,
        shared: Shared,
    ) -> Self {
        Writer {
            id: register::transactional_id(&sink, worker),
            sink,
            store,
            schema,
            worker,
            producer: None,
            register: None,
            lineage: None,
            closed: VecDeque::new(),
            current: Vec::new(),
            shared,
            recovery,
            commits: 0,
        }
    }

    /// Runs until told to finish (or the worker is gone).
    pub fn run(mut self, commands: Receiver<Command>) {
        let mut finish: Option<Instant> = None;
        let mut backoff = Duration::ZERO;
        // At once, while the job reads: fencing and the producer id take several round trips to the broker,
        // which would otherwise delay the first commit (and the end of a bounded run).
        if let Err(e) = self.open() {
            self.shared.error(&e);
        }
        loop {
            let wait = if self.closed.is_empty() && self.recovery.is_none() {
                Duration::from_millis(200)
            } else {
                Duration::from_millis(5).max(backoff)
            };
            match commands.recv_timeout(wait) {
                Ok(c) => self.take(c, &mut finish),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    finish.get_or_insert_with(Instant::now);
                }
            }
            while let Ok(c) = commands.try_recv() {
                self.take(c, &mut finish);
            }
            match self.advance() {
                Ok(()) => backoff = Duration::ZERO,
                Err(e) => {
                    self.shared.error(&e);
                    // Fence and resolve whatever was in flight; the register decides what is left to do.
                    self.producer = None;
                    for c in &mut self.closed {
                        c.begun = false;
                    }
                    backoff = (backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
                }
            }
            if let Some(deadline) = finish
                && ((self.closed.is_empty() && self.recovery.is_none()) || Instant::now() >= deadline)
            {
                if !self.closed.is_empty() {
                    let ids: Vec<u64> = self.closed.iter().map(|c| c.id).collect();
                    tracing::warn!(
                        worker = self.worker,
                        checkpoints = ?ids,
                        "the Kafka output of these checkpoints is not committed yet; the next run publishes it"
                    );
                }
                return;
            }
        }
    }

    fn take(&mut self, command: Command, finish: &mut Option<Instant>) {
        match command {
            Command::Record(r) => self.current.push(r),
            Command::Barrier(id) => {
                if !self.current.is_empty() {
                    self.closed.push_back(Closed {
                        id,
                        records: std::mem::take(&mut self.current),
                        begun: false,
                    });
                }
            }
            Command::Finish(deadline) => {
                self.current.clear();
                *finish = Some(deadline);
            }
        }
    }

    /// Does what can be done now: recovery first, then the transactions in order until one must wait.
    fn advance(&mut self) -> Result<()> {
        if self.recovery.is_none() && self.closed.is_empty() {
            return Ok(());
        }
        self.open()?;
        if let Some(r) = self.recovery.take() {
            let producer = self.producer.as_ref().expect("opened");
            if let Err(e) = recover::run(
                &self.sink,
                &self.store,
                &self.schema,
                self.worker,
                producer,
                &r,
                &self.shared,
            ) {
                self.recovery = Some(r);
                return Err(e);
            }
        }
        while let Some(front) = self.closed.front() {
            let id = front.id;
            let fate = self.store.fate(id, self.worker);
            if !front.begun && fate != Fate::Abandoned {
                self.begin_front()?;
            }
            match fate {
                Fate::Pending => return Ok(()),
                Fate::Abandoned => {
                    if self.closed.front().is_some_and(|c| c.begun) {
                        self.producer()?
                            .abort_transaction(CALL_TIMEOUT)
                            .map_err(|e| anyhow!("cannot abort the transaction of checkpoint {id}: {e}"))?;
                    }
                    tracing::warn!(
                        checkpoint = id,
                        "checkpoint {id} never committed: its windows are in no file, and not published either"
                    );
                    self.closed.pop_front();
                }
                Fate::Committed => {
                    let started = Instant::now();
                    self.commit_front()?;
                    let done = self.closed.pop_front().expect("the front");
                    tracing::debug!(
                        checkpoint = id,
                        records = done.records.len(),
                        ms = started.elapsed().as_millis() as u64,
                        "kafka transaction committed"
                    );
                    self.shared.confirm(self.worker, id);
                }
            }
        }
        Ok(())
    }

    /// Opens the producer (fencing earlier incarnations) and, after a failure, drops the transactions the
    /// register says committed.
    fn open(&mut self) -> Result<()> {
        if self.producer.is_some() {
            return Ok(());
        }
        let producer = register::open_producer(&self.sink, &self.id)?;
        if self.register.is_none() {
            self.register = Some(Register::open(&self.sink, &self.id)?);
        }
        self.producer = Some(producer);
        if self.lineage.is_none() {
            // No lineage yet: no manifest of this job exists, so none of its transactions can have committed.
            self.lineage = self.store.lineage().ok();
        }
        if let Some(lineage) = self.lineage.clone() {
            let committed = self.register.as_ref().expect("opened").read(&lineage)?;
            while self.closed.front().is_some_and(|c| c.id <= committed) {
                let c = self.closed.pop_front().expect("checked");
                tracing::info!(checkpoint = c.id, "its transaction had committed before the failure");
                self.shared.confirm(self.worker, c.id);
            }
        }
        Ok(())
    }

    fn producer(&self) -> Result<&ThreadedProducer<DefaultProducerContext>> {
        self.producer
            .as_ref()
            .ok_or_else(|| anyhow!("the sink producer is not open"))
    }

    /// Begins the front transaction and produces its records.
    fn begin_front(&mut self) -> Result<()> {
        let producer = self.producer()?;
        producer
            .begin_transaction()
            .map_err(|e| anyhow!("cannot begin a transaction on {}: {e}", self.sink.topic))?;
        let front = self.closed.front().expect("a transaction to begin");
        for r in &front.records {
            send(producer, &self.sink.topic, r)?;
        }
        self.closed.front_mut().expect("checked").begun = true;
        Ok(())
    }

    /// Moves the register to the front checkpoint and commits its transaction.
    fn commit_front(&mut self) -> Result<()> {
        let id = self.closed.front().expect("a transaction to commit").id;
        if self.lineage.is_none() {
            self.lineage = Some(self.store.lineage()?);
        }
        let lineage = self.lineage.as_deref().expect("read");
        let producer = self.producer.as_ref().expect("opened");
        self.register.as_ref().expect("opened").move_in(producer, id, lineage)?;
        maybe_crash("commit", &mut self.commits);
        producer.commit_transaction(CALL_TIMEOUT).with_context(|| {
            format!(
                "cannot commit the transaction of checkpoint {id} to {}",
                self.sink.topic
            )
        })
    }
}
