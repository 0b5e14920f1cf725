//! The Kafka output (`--sink-topic`): every final window published once, in Kafka transactions that commit with
//! the checkpoints, so that a `read_committed` consumer sees each (device, window) exactly once across crashes,
//! restarts, `-w` changes and broker outages. The protocol's rules are `checkpoint::kafka_out`; this stage is the
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

use anyhow::{Context, Result};
use timely::dataflow::StreamVec;

use crate::config::{JobConfig, SinkTopic};
use crate::errors::{ErrorKind, ErrorLog};
use crate::in_order::filter_map_in_order;
use crate::messages::WindowMsg;
use crate::teardown;
use out::{OutRecord, Shared};
use recover::Recovery;
use txn::{Command, Writer};

/// One worker's Kafka output: the channel to its writer thread and what the thread shares.
pub struct KafkaSink {
    commands: Sender<Command>,
    thread: RefCell<Option<JoinHandle<()>>>,
    shared: Shared,
    errors: Rc<ErrorLog>,
}

impl KafkaSink {
    /// Starts the writer of global worker `worker`; with a restored checkpoint it first finishes what that
    /// checkpoint left (see [`recover`]).
    pub fn start(
        config: &JobConfig,
        sink: &SinkTopic,
        worker: usize,
        recovery: Option<Recovery>,
        errors: Rc<ErrorLog>,
    ) -> Result<KafkaSink> {
        let (commands, receive) = channel();
        let shared = Shared::default();
        let writer = Writer::new(config.clone(), sink.clone(), worker, recovery, shared.clone());
        let thread = std::thread::Builder::new()
            .name(format!("kafka-sink-w{worker}"))
            .spawn(move || writer.run(receive))
            .context("cannot start the Kafka sink's thread")?;
        Ok(KafkaSink {
            commands,
            thread: RefCell::new(Some(thread)),
            shared,
            errors,
        })
    }

    /// Per Kafka writer this worker speaks for, the newest checkpoint its transactions are committed through.
    pub fn confirmed(&self) -> BTreeMap<usize, u64> {
        self.shared.confirmed.lock().expect("not poisoned").clone()
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
            // The thread ends by dropping its producer, which librdkafka may not let go of (`crate::teardown`).
            teardown::join_within(thread, within + teardown::CLOSE_WITHIN, "kafka sink producer");
        }
        self.count_errors();
    }
}

/// Builds the Kafka output of one worker: its window output in (final windows and barriers, in order).
pub fn publish<'s>(windows: StreamVec<'s, u64, WindowMsg>, sink: Rc<KafkaSink>) -> StreamVec<'s, u64, ()> {
    filter_map_in_order(windows, "KafkaSink", move |msg| {
        match msg {
            WindowMsg::Agg(w) if w.is_final => sink.send(Command::Record(OutRecord::of(&w.agg))),
            WindowMsg::Barrier(b) => {
                sink.send(Command::Barrier(b.id));
                sink.count_errors();
            }
            WindowMsg::Agg(_) | WindowMsg::Stats(_) | WindowMsg::UdfErrors(..) => {}
        }
        None
    })
}
