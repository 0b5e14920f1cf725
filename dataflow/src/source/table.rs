//! The versioned table's source: one per worker, reading its share of the table's partitions (an upsert-kafka
//! topic, from the earliest offset, or its byte range of a JSON-lines file). Contract:
//! - every record read becomes a version for the join operators (exchanged by key) or a dead letter with its
//!   reason, the detail naming the table;
//! - after each batch it tells every join operator how far it has read each partition
//!   ([`TableMsg::Progress`]);
//! - it holds its capability at its watermark over the table's version time (per partition: newest version
//!   time − the table's lateness; the minimum over its partitions, idle ones aside by the source's idle rule),
//!   so the join's table frontier *is* the table's watermark; it drops the capability at a bounded end, or at
//!   once when it owns nothing. It does not stop reading on a stop request, since records waiting in the join
//!   still need the table's watermark to pass them and the stop checkpoint waits for them. Instead it treats
//!   the table as idle from then on: its watermark follows the wall clock (− its lateness). A stop does not wait
//!   for a table that is not moving, and a version written later carries a later time.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::{OutputBuilderSession, source};
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::Activator;

use super::reader::{PartitionChange, ReadError, Reader};
use super::watermark::PartitionClock;
use crate::checkpoint::Saved;
use crate::messages::{DeadLetter, DeadLetterOut, TableMsg, Version};
use crate::query::{Query, UdfHost};
use crate::runtime::errors::{ErrorKind, ErrorLog};

/// Records read per activation before yielding to other operators.
const BATCH: usize = 8192;

/// What the table's source of one worker needs besides its reader.
pub struct TableSetup {
    /// Global worker index.
    pub worker: usize,
    /// Workers in all processes.
    pub peers: usize,
    /// The job's compiled query (how a table record is read).
    pub query: Arc<Query>,
    /// This worker's UDF host.
    pub host: Rc<dyn UdfHost>,
    /// This worker's dead-letter output.
    pub dead: Rc<RefCell<dyn DeadLetterOut>>,
    /// This worker's error counters.
    pub errors: Rc<ErrorLog>,
    /// The table's name (for dead letters and logs).
    pub name: String,
    /// The table's watermark lateness, ms.
    pub lateness_ms: u64,
    /// A partition silent this long stops holding the watermark back.
    pub idle_timeout: Duration,
    /// Versions further ahead of the wall clock than this (ms) are bad.
    pub max_future_ms: u64,
    /// This worker's share of the restored checkpoint's versions, sent first.
    pub restored: Vec<Saved>,
    /// Raised on Ctrl-C: from then on the table counts as idle.
    pub stop: Arc<AtomicBool>,
}

type Output<'a> = OutputBuilderSession<'a, u64, CapacityContainerBuilder<Vec<TableMsg>>>;

/// Builds the table's source of this worker.
pub fn versioned_table<'s>(
    scope: Scope<'s, u64>,
    reader: Box<dyn Reader>,
    setup: TableSetup,
) -> StreamVec<'s, u64, TableMsg> {
    source(scope, "VersionedTable", move |capability, info| {
        let activator = scope.activator_for(info.address);
        let mut op = TableSource::new(reader, setup, activator);
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

struct TableSource {
    reader: Box<dyn Reader>,
    setup: TableSetup,
    clock: PartitionClock,
    next: BTreeMap<i32, i64>,
    /// The positions last told to the join operators.
    told: BTreeMap<i32, i64>,
    activator: Activator,
    row: Vec<model::value::Value>,
    pending: Vec<TableMsg>,
    /// Versions older than the table's watermark when they arrived (joined records before them did not see them).
    late: u64,
}

impl TableSource {
    fn new(reader: Box<dyn Reader>, setup: TableSetup, activator: Activator) -> TableSource {
        let owned = reader.partitions();
        let clock = PartitionClock::new(&owned, setup.lateness_ms, setup.idle_timeout);
        let next = owned.iter().map(|&p| (p, reader.next_offset(p))).collect();
        TableSource {
            reader,
            setup,
            clock,
            next,
            told: BTreeMap::new(),
            activator,
            row: Vec::new(),
            pending: Vec::new(),
            late: 0,
        }
    }

    /// One activation; false once the capability is to be dropped (every partition finished, or none owned).
    fn step(&mut self, held: &mut Capability<u64>, output: &mut Output<'_>) -> bool {
        if !self.setup.restored.is_empty() {
            let restored = std::mem::take(&mut self.setup.restored);
            output.session(&*held).give_iterator(restored.into_iter().map(|s| {
                TableMsg::Version(Version {
                    key: s.key,
                    time: s.time,
                    row: s.row,
                })
            }));
        }
        let floor = *held.time();
        let read = self.read_batch(floor);
        for change in self.reader.take_changes() {
            match change {
                PartitionChange::Added { partition, next_offset } => {
                    self.clock.add(partition, floor);
                    self.next.insert(partition, next_offset);
                }
                PartitionChange::Lost {
                    partition, next_offset, ..
                } => {
                    self.next.insert(partition, next_offset);
                }
            }
        }
        for (&p, &next_offset) in &self.next {
            if self.reader.is_done(p) {
                self.clock.finish(p);
            }
            if self.told.insert(p, next_offset) == Some(next_offset) {
                continue;
            }
            for to in 0..self.setup.peers as u32 {
                self.pending.push(TableMsg::Progress {
                    partition: p,
                    next_offset,
                    to,
                });
            }
        }
        if !self.pending.is_empty() {
            output.session(&*held).give_container(&mut self.pending);
            self.pending.clear();
        }
        let reader = &self.reader;
        let idle_timeout = self.setup.idle_timeout;
        let now_ms = model::time::now_ms();
        let Some(mut wm) = self
            .clock
            .worker_watermark(now_ms, &|p| reader.may_be_idle(p, idle_timeout))
        else {
            tracing::info!(
                worker = self.setup.worker,
                table = %self.setup.name,
                late_versions = self.late,
                "versioned table read to its end"
            );
            return false;
        };
        if self.setup.stop.load(Ordering::Relaxed) {
            wm = wm.max(now_ms.saturating_sub(self.setup.lateness_ms));
        }
        if wm > floor {
            held.downgrade(&wm);
        }
        match read {
            Some(n) if n >= BATCH => self.activator.activate(),
            Some(n) => self
                .activator
                .activate_after(Duration::from_millis(if n > 0 { 1 } else { 20 })),
            None => self.activator.activate_after(Duration::from_millis(500)),
        }
        true
    }

    /// Reads one batch into `pending`; `None` when the read failed (counted; tried again).
    fn read_batch(&mut self, floor: u64) -> Option<usize> {
        self.clock.start_batch(Instant::now());
        let now_ms = model::time::now_ms();
        let TableSource {
            reader,
            setup,
            clock,
            next,
            row,
            pending,
            late,
            ..
        } = self;
        let mut dead = setup.dead.borrow_mut();
        let read = reader.poll(BATCH, &mut |raw| {
            next.insert(raw.partition, raw.offset + 1);
            let rules = model::Validation {
                now_ms,
                max_future_ms: setup.max_future_ms,
            };
            let version = setup.query.read_version(&raw, rules, setup.host.as_ref(), row);
            match version {
                Ok(v) => {
                    if clock.observe(raw.partition, v.time, floor) > v.time {
                        *late += 1;
                    }
                    pending.push(TableMsg::Version(v));
                }
                Err(bad) => {
                    clock.touch(raw.partition, floor);
                    let detail = format!("versioned table `{}`: {}", setup.name, bad.detail);
                    dead.write(&DeadLetter::bad(&raw, bad.reason.code(), detail));
                }
            }
        });
        match read {
            Ok(n) => Some(n),
            Err(err) => {
                let what = match &err {
                    ReadError::DataLoss(_) => "the versioned table lost records",
                    ReadError::Other(_) => "reading the versioned table failed",
                };
                setup
                    .errors
                    .record(ErrorKind::InputRead, &format!("{what}; retrying: {err:#}"));
                None
            }
        }
    }
}
