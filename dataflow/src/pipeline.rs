//! Wires one worker's dataflow in the order data meets it: source → parse/validate (inside the source) →
//! exchange by device → tumbling windows → sinks (Parquet history on every worker, dead letters on every
//! worker, `latest.json` on worker 0). Every sink holds a capability until it has flushed for the last time, so
//! the probe at the end tells the worker loop when everything is on disk.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Result;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::ProbeHandle;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Map, Partition};
use timely::dataflow::operators::{Concat, Probe};
use timely::worker::Worker;

use crate::config::JobConfig;
use crate::fleet::{self, AlertRow, RollupRow};
use crate::sink::deadletter::DeadLetterWriter;
use crate::sink::latest_json::LatestState;
use crate::sink::parquet::ParquetHistory;
use crate::source::kafka::KafkaReader;
use crate::source::replay::ReplayReader;
use crate::source::{self, Reader, SourceMsg, WorkerStats};
use crate::window::{self, WindowOut};

/// What the worker loop keeps of its dataflow.
pub struct WorkerHandles {
    /// Done once every sink has flushed for the last time.
    pub done: ProbeHandle<u64>,
    /// The snapshot (worker 0 only writes it).
    pub latest: Rc<RefCell<LatestState>>,
    /// This worker's dead-letter writer.
    pub dead: Rc<RefCell<DeadLetterWriter>>,
    /// This worker's Parquet history writer.
    pub history: Rc<RefCell<ParquetHistory>>,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
enum LatestIn {
    Agg(WindowOut),
    Stats(WorkerStats),
    Rollup(String, RollupRow, isize),
    Alert(AlertRow, isize),
}

type Unit = CapacityContainerBuilder<Vec<()>>;

/// Builds the dataflow of one worker. `partitions` is the topic's partition count (unused for file input).
pub fn build(
    worker: &mut Worker,
    config: &JobConfig,
    partitions: usize,
    stop: Arc<AtomicBool>,
) -> Result<WorkerHandles> {
    let index = worker.index();
    let peers = worker.peers();
    let reader: Box<dyn Reader> = match &config.input {
        Some(path) => Box::new(ReplayReader::open(path, index, peers)?),
        None => Box::new(KafkaReader::open(config, partitions, index, peers)?),
    };
    let latest = Rc::new(RefCell::new(LatestState::new(&config.out, peers)));
    let dlq = config
        .dlq_topic
        .as_deref()
        .map(|t| (config.brokers.as_str(), t));
    let dead = Rc::new(RefCell::new(DeadLetterWriter::open(
        &config.deadletter,
        index,
        dlq,
    )?));
    let history = Rc::new(RefCell::new(ParquetHistory::new(&config.out, index)?));
    let done = ProbeHandle::new();
    let watermark = ProbeHandle::new();

    worker.dataflow::<u64, _, _>(|scope| {
        let msgs = source::build(scope, reader, config, index, stop);
        let mut parts = msgs.probe_with(&watermark).partition(3, |m| match m {
            SourceMsg::Event(_) => (0, m),
            SourceMsg::Dead(_) => (1, m),
            SourceMsg::Stats(_) => (2, m),
        });
        let stats = parts.pop().expect("3 parts").flat_map(|m| match m {
            SourceMsg::Stats(s) => Some(s),
            _ => None,
        });
        let dead_letters = parts.pop().expect("3 parts").flat_map(|m| match m {
            SourceMsg::Dead(d) => Some(d),
            _ => None,
        });
        let events = parts.pop().expect("3 parts").flat_map(|m| match m {
            SourceMsg::Event(e) => Some(e),
            _ => None,
        });

        let windows = window::build(events, config.window_ms, config.trigger);
        let views = fleet::build(windows.clone(), config.thresholds);
        let fleet_updates = views
            .rollups
            .inner
            .map(|((location, row), _time, diff)| LatestIn::Rollup(location, row, diff))
            .concat(views.alerts.inner.map(|(alert, _time, diff)| LatestIn::Alert(alert, diff)));

        // Parquet history: final windows, on the worker that computed them.
        let roll_every = config.roll_interval;
        let h = history.clone();
        windows
            .clone()
            .unary_frontier::<Unit, _, _, _>(Pipeline, "ParquetHistory", move |cap, info| {
                let activator = scope.activator_for(info.address);
                let mut cap = Some(cap);
                let mut last_roll = Instant::now();
                move |(input, frontier), _out| {
                    input.for_each(|_, data| {
                        let mut h = h.borrow_mut();
                        for w in data.drain(..).filter(|w| w.is_final) {
                            h.push(w.agg);
                        }
                    });
                    let finished = frontier.is_empty();
                    if cap.is_some() && (finished || last_roll.elapsed() >= roll_every) {
                        last_roll = Instant::now();
                        if let Err(e) = h.borrow_mut().roll() {
                            tracing::error!(error = %format!("{e:#}"), "cannot write the Parquet history");
                        }
                    }
                    if finished {
                        cap = None;
                    } else if h.borrow().pending_rows() > 0 {
                        activator.activate_after(roll_every.saturating_sub(last_roll.elapsed()));
                    }
                }
            })
            .probe_with(&done);

        // Dead letters: on the worker that read them.
        let d = dead.clone();
        let flush_every = config.trigger;
        dead_letters
            .unary_frontier::<Unit, _, _, _>(Pipeline, "DeadLetters", move |cap, info| {
                let activator = scope.activator_for(info.address);
                let mut cap = Some(cap);
                let mut last_flush = Instant::now();
                move |(input, frontier), _out| {
                    let mut d = d.borrow_mut();
                    input.for_each(|_, data| {
                        for letter in data.drain(..) {
                            if let Err(e) = d.write(&letter) {
                                tracing::error!(error = %format!("{e:#}"), "cannot write a dead letter");
                            }
                        }
                    });
                    if frontier.is_empty() || last_flush.elapsed() >= flush_every {
                        last_flush = Instant::now();
                        if let Err(e) = d.flush() {
                            tracing::error!(error = %format!("{e:#}"), "cannot flush dead letters");
                        }
                    }
                    if frontier.is_empty() {
                        cap = None;
                    } else if cap.is_some() {
                        activator.activate_after(flush_every);
                    }
                }
            })
            .probe_with(&done);

        // latest.json: every aggregate and every worker's counters, gathered on worker 0.
        let l = latest.clone();
        let trigger = config.trigger;
        let wm = watermark.clone();
        windows
            .map(LatestIn::Agg)
            .concat(stats.map(LatestIn::Stats))
            .concat(fleet_updates)
            .unary_frontier::<Unit, _, _, _>(Exchange::new(|_: &LatestIn| 0), "LatestJson", move |cap, info| {
                let activator = scope.activator_for(info.address);
                let mut cap = Some(cap);
                let mut last_write: Option<Instant> = None;
                move |(input, frontier), _out| {
                    let mut l = l.borrow_mut();
                    input.for_each(|_, data| {
                        for item in data.drain(..) {
                            match item {
                                LatestIn::Agg(w) => l.aggregate(&w.agg, w.is_final),
                                LatestIn::Stats(s) => l.stats(s),
                                LatestIn::Rollup(location, row, diff) => l.rollup(location, row, diff),
                                LatestIn::Alert(alert, diff) => l.alert(alert, diff),
                            }
                        }
                    });
                    if index != 0 {
                        if frontier.is_empty() {
                            cap = None;
                        }
                        return;
                    }
                    // Time 0 is where every source starts: no event has moved the watermark yet.
                    let current = wm.with_frontier(|f| f.first().copied()).filter(|&t| t > 0);
                    if current.is_some() && current != l.watermark {
                        l.watermark = current;
                        l.touch();
                    }
                    let finished = frontier.is_empty();
                    let due = last_write.is_none_or(|t| t.elapsed() >= trigger);
                    if cap.is_some() && (finished || (due && l.is_dirty())) {
                        last_write = Some(Instant::now());
                        if let Err(e) = l.write() {
                            tracing::error!(error = %format!("{e:#}"), "cannot write latest.json");
                        }
                    }
                    if finished {
                        cap = None;
                    } else {
                        activator.activate_after(trigger.min(Duration::from_secs(1)));
                    }
                }
            })
            .probe_with(&done);
    });

    Ok(WorkerHandles {
        done,
        latest,
        dead,
        history,
    })
}
