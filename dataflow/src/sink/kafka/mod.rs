//! The Kafka output (`--sink-topic`): every final window published once, in Kafka transactions that commit with
//! the checkpoints, so that a `read_committed` consumer sees each (device, window) exactly once across crashes,
//! restarts, `-w` changes and broker outages. The protocol's rules are the checkpoint's (`SinkRecovery`, `Fate`,
//! reached through its `StateStore`); this stage is the
//! operator that hands a worker's final windows and barriers, in order, to that worker's writer thread
//! ([`txn`]), which owns the producer; [`recover`] finishes what a restored checkpoint left; [`register`] is the
//! Kafka side (topic, producer, register); [`out`] what they share (the record, progress, the test hook).

pub mod out;
pub mod recover;
pub mod register;
pub mod txn;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::sync::Arc;

use anyhow::{Context, Result};
use model::output::OutputSchema;
use timely::dataflow::StreamVec;

use crate::checkpoint::{CommitReport, SinkRecovery, StateStore};
use crate::messages::{WindowMsg, WindowSignal};
use crate::runtime::errors::{ErrorKind, ErrorLog};
use crate::runtime::in_order::filter_map_in_order;
use crate::runtime::kafka_client::KafkaClient;
use crate::runtime::teardown;
use out::{OutRecord, Shared};
use txn::{Command, Writer};

/// The Kafka output's settings (`--sink-topic`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSettings {
    /// The cluster and the user's librdkafka settings.
    pub client: KafkaClient,
    /// The topic final windows are published to.
    pub topic: String,
    /// Its partitions when the job creates it (`None`: as many as the input topic).
    pub partitions: Option<i32>,
    /// The job's consumer group: the writers' transactional ids are named after it.
    pub group: String,
}

/// One worker's Kafka output: the channel to its writer thread and what the thread shares.
pub struct KafkaSink {
    schema: Arc<OutputSchema>,
    commands: Sender<Command>,
    thread: RefCell<Option<JoinHandle<()>>>,
    shared: Shared,
    errors: Rc<ErrorLog>,
}

impl KafkaSink {
    /// Starts the writer of global worker `worker`, whose commits follow the checkpoints of `store`; with a
    /// restored checkpoint it first finishes what that checkpoint left (see [`recover`]).
    pub fn start(
        settings: &SinkSettings,
        store: &StateStore,
        schema: Arc<OutputSchema>,
        worker: usize,
        recovery: Option<SinkRecovery>,
        errors: Rc<ErrorLog>,
    ) -> Result<KafkaSink> {
        let (commands, receive) = channel();
        let shared = Shared::default();
        let writer = Writer::new(
            settings.clone(),
            store.clone(),
            schema.clone(),
            worker,
            recovery,
            shared.clone(),
        );
        let thread = std::thread::Builder::new()
            .name(format!("kafka-sink-w{worker}"))
            .spawn(move || writer.run(receive))
            .context("cannot start the Kafka sink's thread")?;
        Ok(KafkaSink {
            schema,
            commands,
            thread: RefCell::new(Some(thread)),
            shared,
            errors,
        })
    }

    /// Counts the writer's errors met since the last look.
    fn count_errors(&self) {
        for e in self.shared.errors.lock().expect("not poisoned").drain(..) {
            self.errors.record(ErrorKind::SinkPublish, &e);
        }
    }

    fn send(&self, command: Command) {
        // The thread only ends after `finish`; a send after that has nothing left to do.
        let _ = self.commands.send(command);
    }

    /// Lets the writer commit what the committed manifests cover, waiting at most `within`; what it could not
    /// commit by then the next run publishes.
    pub fn finish(&self, within: Duration) {
        self.send(Command::Finish(Instant::now() + within));
        if let Some(thread) = self.thread.borrow_mut().take() {
            // The thread ends by dropping its producer, which librdkafka may not let go of (`crate::runtime::teardown`).
            teardown::join_within(thread, within + teardown::CLOSE_WITHIN, "kafka sink producer");
        }
        self.count_errors();
    }
}

impl CommitReport for KafkaSink {
    /// Per Kafka writer this worker speaks for, the newest checkpoint its transactions are committed through.
    fn confirmed(&self) -> BTreeMap<usize, u64> {
        self.shared.confirmed.lock().expect("not poisoned").clone()
    }
}

/// Builds the Kafka output of one worker: its window output in (final windows and barriers, in order).
pub fn publish<'s>(windows: StreamVec<'s, u64, WindowMsg>, sink: Rc<KafkaSink>) -> StreamVec<'s, u64, ()> {
    filter_map_in_order(windows, "KafkaSink", move |msg| {
        match msg {
            WindowMsg::Data(w) if w.is_final => sink.send(Command::Record(OutRecord::of(&sink.schema, &w.row))),
            WindowMsg::Signal(WindowSignal::Barrier(b)) => {
                sink.send(Command::Barrier(b.id));
                sink.count_errors();
            }
            WindowMsg::Data(_) | WindowMsg::Signal(_) => {}
        }
        None
    })
}
