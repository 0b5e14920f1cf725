//! Wires one worker's dataflow in the order data meets it: source (read, parse/validate, dead letters) →
//! exchange by device → tumbling windows (and checkpoint alignment) → sinks: the Parquet history and this
//! worker's checkpoint part on every worker; on worker 0 the checkpoint committer and `latest.json`, which also
//! receives the differential fleet views. The probe at the end tells the worker loop when everything is on disk.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Result;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::ProbeHandle;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concat, Probe};
use timely::worker::Worker;

use crate::checkpoint::{self, FileCheckpoint, Identity, Manifest, Part};
use crate::config::JobConfig;
use crate::fleet::{self, AlertRow, RollupRow};
use crate::sink::deadletter::DeadLetterWriter;
use crate::sink::latest_json::LatestState;
use crate::sink::parquet::ParquetHistory;
use crate::source::kafka::KafkaReader;
use crate::source::replay::ReplayReader;
use crate::source::{self, Reader, SourceSetup, WorkerStats};
use crate::window::{self, BarrierKind, WindowMsg, WindowOut};

/// Progress of a requested stop, as seen by the worker loop.
#[derive(Default)]
pub struct StopProgress {
    /// This worker's part of the stop checkpoint is written.
    pub part_written: Cell<bool>,
    /// (Worker 0) the stop checkpoint is committed.
    pub committed: Cell<bool>,
    /// The final checkpoint of a bounded run (its Parquet files) could not be written or committed: the run
    /// must not end as a success.
    pub final_failed: Cell<bool>,
}

/// What the worker loop keeps of its dataflow.
pub struct WorkerHandles {
    /// Done once every sink has flushed for the last time.
    pub done: ProbeHandle<u64>,
    /// The snapshot (worker 0 writes it).
    pub latest: Rc<RefCell<LatestState>>,
    /// This worker's dead-letter writer.
    pub dead: Rc<RefCell<DeadLetterWriter>>,
    /// Progress of a requested stop.
    pub stopping: Rc<StopProgress>,
}

#[derive(Clone, Serialize, Deserialize)]
enum LatestIn {
    Agg(WindowOut),
    Stats(WorkerStats),
    Rollup(String, RollupRow, isize),
    Alert(AlertRow, isize),
}

/// A worker's part of checkpoint `id` is written.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PartDone {
    id: u64,
    worker: usize,
    kind: BarrierKind,
}

type Unit = CapacityContainerBuilder<Vec<()>>;

/// The checkpoint identity of a job (for Kafka input; file replays are not checkpointed).
pub fn identity(config: &JobConfig) -> Option<Identity> {
    config.input.is_none().then(|| Identity {
        topic: config.topic.clone(),
        window_ms: config.window_ms,
        lateness_ms: config.lateness_ms,
    })
}

/// Builds the dataflow of one worker. `partitions` is the topic's partition count (unused for file input);
/// `restore` the checkpoint to resume from.
pub fn build(
    worker: &mut Worker,
    config: &JobConfig,
    partitions: usize,
    restore: Option<Arc<Manifest>>,
    stop: Arc<AtomicBool>,
) -> Result<WorkerHandles> {
    let index = worker.index();
    let peers = worker.peers();
    let resume: HashMap<i32, i64> = restore
        .as_ref()
        .map(|m| {
            m.partitions
                .iter()
                .map(|p| (p.partition, p.next_offset))
                .collect()
        })
        .unwrap_or_default();
    let reader: Box<dyn Reader> = match &config.input {
        Some(path) => Box::new(ReplayReader::open(path, index, peers)?),
        None => Box::new(KafkaReader::open(
            config, partitions, index, peers, &resume,
        )?),
    };
    let restored_id = restore.as_ref().map_or(0, |m| m.id);
    let latest = Rc::new(RefCell::new(LatestState::new(&config.out, peers)));
    let dlq = config
        .dlq_topic
        .as_deref()
        .map(|t| (config.kafka_client(&[("linger.ms", "20")]), t));
    let dead = Rc::new(RefCell::new(DeadLetterWriter::open(
        &config.deadletter,
        index,
        dlq,
    )?));
    let history = Rc::new(RefCell::new(ParquetHistory::new(
        &config.out,
        index,
        config.run,
    )?));
    let stopping = Rc::new(StopProgress::default());
    let done = ProbeHandle::new();
    let watermark: Rc<Cell<Option<u64>>> = Rc::new(Cell::new(None));
    let identity = identity(config);

    worker.dataflow::<u64, _, _>(|scope| {
        let setup = SourceSetup {
            worker: index,
            peers,
            stop,
            restore,
            checkpoints: identity.is_some(),
            dead: dead.clone(),
        };
        // The source feeds the window operator's exchange directly (see `source`).
        let window_in = source::build(scope, reader, config, setup);
        let windows = window::build(
            window_in,
            watermark.clone(),
            config.window_ms,
            config.trigger,
            restored_id,
            index,
            peers,
        );
        let views = fleet::build(windows.clone(), config.thresholds);
        let fleet_updates = views
            .rollups
            .inner
            .map(|((location, row), _time, diff)| LatestIn::Rollup(location, row, diff))
            .concat(views.alerts.inner.map(|(alert, _time, diff)| LatestIn::Alert(alert, diff)));

        // Parquet history and this worker's checkpoint part: final windows are buffered and, at each barrier,
        // written to in-progress files that the checkpoint commits.
        let h = history.clone();
        let out = config.out.clone();
        let stop_flags = stopping.clone();
        let part_done = windows.clone().unary::<CapacityContainerBuilder<Vec<PartDone>>, _, _, _>(
            Pipeline,
            "ParquetHistory",
            move |_, _| {
                move |input, output| {
                    input.for_each(|cap, data| {
                        for msg in data.drain(..) {
                            match msg {
                                WindowMsg::Agg(w) if w.is_final => h.borrow_mut().push(w.agg),
                                WindowMsg::Agg(_) | WindowMsg::Stats(_) => {}
                                WindowMsg::Barrier(b) => match write_part(&out, &mut h.borrow_mut(), index, b.id, b.windows, b.partitions) {
                                    Ok(()) => {
                                        output.session(&cap).give(PartDone { id: b.id, worker: index, kind: b.kind });
                                        if b.kind == BarrierKind::Stop {
                                            stop_flags.part_written.set(true);
                                        }
                                    }
                                    Err(e) => {
                                        tracing::error!(
                                            error = %format!("{e:#}"), checkpoint = b.id,
                                            "cannot write the checkpoint part; this checkpoint will not commit"
                                        );
                                        if b.kind == BarrierKind::Final {
                                            stop_flags.final_failed.set(true);
                                        }
                                    }
                                },
                            }
                        }
                    });
                }
            },
        );

        // The committer, on worker 0: once every worker's part of a checkpoint is in, commit it.
        let out = config.out.clone();
        let committer = config.kafka_client(&[
            ("group.id", config.group.as_str()),
            ("enable.auto.commit", "false"),
        ]);
        let stop_flags = stopping.clone();
        part_done
            .unary::<Unit, _, _, _>(Exchange::new(|_: &PartDone| 0), "Committer", move |_, _| {
                let mut received: BTreeMap<u64, Vec<PartDone>> = BTreeMap::new();
                let mut offsets: Option<BaseConsumer> = None;
                move |input, _out| {
                    input.for_each(|_, data| {
                        for done in data.drain(..) {
                            let id = done.id;
                            let all = received.entry(id).or_default();
                            all.push(done);
                            if all.len() < peers {
                                continue;
                            }
                            let parts = received.remove(&id).expect("present");
                            let started = Instant::now();
                            match checkpoint::commit(&out, id, peers, identity.as_ref()) {
                                Ok(manifest) => {
                                    tracing::info!(
                                        checkpoint = id, windows = manifest.windows.len(), files = manifest.files.len(),
                                        ms = started.elapsed().as_millis() as u64, "checkpoint committed"
                                    );
                                    if identity.is_some() {
                                        commit_offsets(&mut offsets, &committer, &manifest);
                                    }
                                    if parts.iter().any(|p| p.kind == BarrierKind::Stop) {
                                        stop_flags.committed.set(true);
                                    }
                                }
                                Err(e) => {
                                    tracing::error!(error = %format!("{e:#}"), checkpoint = id, "cannot commit checkpoint");
                                    if parts.iter().any(|p| p.kind == BarrierKind::Final) {
                                        stop_flags.final_failed.set(true);
                                    }
                                }
                            }
                        }
                    });
                }
            })
            .probe_with(&done);

        // latest.json: every aggregate, every worker's counters and the fleet views, gathered on worker 0.
        let l = latest.clone();
        let trigger = config.trigger;
        let wm = watermark.clone();
        windows
            .flat_map(|m| match m {
                WindowMsg::Agg(w) => Some(LatestIn::Agg(w)),
                WindowMsg::Stats(s) => Some(LatestIn::Stats(s)),
                WindowMsg::Barrier(_) => None,
            })
            .concat(fleet_updates)
            .unary_frontier::<Unit, _, _, _>(Exchange::new(|_: &LatestIn| 0), "LatestJson", move |cap, info| {
                let activator = scope.activator_for(info.address);
                let mut cap = Some(cap);
                // latest.json is rewritten on the shared grid's ticks (see `trigger`), when something changed.
                let mut next_write = crate::trigger::next_after(model::time::now_ms(), trigger, 0);
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
                    let current = wm.get().filter(|&t| t > 0);
                    if current.is_some() && current != l.watermark {
                        l.watermark = current;
                        l.touch();
                    }
                    let finished = frontier.is_empty();
                    let now = model::time::now_ms();
                    let due = crate::trigger::due(now, &mut next_write, trigger, 0);
                    if cap.is_some()
                        && (finished || (due && l.is_dirty()))
                        && let Err(e) = l.write()
                    {
                        tracing::error!(error = %format!("{e:#}"), "cannot write latest.json");
                    }
                    if finished {
                        cap = None;
                    } else {
                        // Also wakes at least every second to follow the watermark.
                        let wait = Duration::from_millis(next_write.saturating_sub(now));
                        activator.activate_after(wait.min(Duration::from_secs(1)));
                    }
                }
            })
            .probe_with(&done);
    });

    Ok(WorkerHandles {
        done,
        latest,
        dead,
        stopping,
    })
}

/// Writes the buffered final windows to in-progress files of checkpoint `id` and this worker's part.
fn write_part(
    out: &Path,
    history: &mut ParquetHistory,
    worker: usize,
    id: u64,
    windows: Vec<checkpoint::WindowCheckpoint>,
    partitions: Vec<checkpoint::PartitionCheckpoint>,
) -> Result<()> {
    let files = history
        .write_in_progress(id)?
        .into_iter()
        .map(|f| FileCheckpoint {
            hidden: f
                .hidden
                .strip_prefix(out)
                .unwrap_or(&f.hidden)
                .to_path_buf(),
            visible: f
                .visible
                .strip_prefix(out)
                .unwrap_or(&f.visible)
                .to_path_buf(),
        })
        .collect();
    checkpoint::write_part(
        out,
        &Part {
            id,
            worker,
            windows,
            partitions,
            files,
        },
    )
}

/// Commits a checkpoint's offsets to the consumer group, so lag tools show the job's progress. The checkpoint,
/// not Kafka, is the source of truth; a failure here is only logged.
fn commit_offsets(consumer: &mut Option<BaseConsumer>, client: &ClientConfig, manifest: &Manifest) {
    if consumer.is_none() {
        *consumer = client
            .create()
            .map_err(|e| tracing::warn!(error = %e, "cannot create the offset committer"))
            .ok();
    }
    let Some(c) = consumer.as_ref() else { return };
    let mut tpl = TopicPartitionList::new();
    for p in &manifest.partitions {
        if tpl
            .add_partition_offset(
                &manifest.identity.topic,
                p.partition,
                Offset::Offset(p.next_offset),
            )
            .is_err()
        {
            return;
        }
    }
    if let Err(e) = c.commit(&tpl, CommitMode::Async) {
        tracing::debug!(error = %e, "offset commit to the consumer group failed");
    }
}
