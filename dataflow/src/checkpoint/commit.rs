//! Step 5 of the protocol (see `checkpoint/mod.rs`): the committer, on worker 0 (its work on a thread of its
//! own). Once every worker's part of a checkpoint is in, it merges them into the manifest (the commit point),
//! publishes the staged files, and commits the checkpoint's offsets to the consumer group so that standard lag
//! tools show the job's progress (the manifest, not Kafka, is the source of truth: a failed offset commit is
//! only counted).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc::TryRecvError;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::checkpoint::format::{Identity, Manifest, ManifestMeta};
use crate::checkpoint::kafka_out::SinkCheckpoint;
use crate::checkpoint::restore::Restored;
use crate::checkpoint::segment;
use crate::checkpoint::stop::StopProgress;
use crate::checkpoint::store;
use crate::messages::{BarrierKind, PartDone};
use crate::runtime::errors::{ErrorKind, ErrorLog};
use crate::runtime::helper_thread::HelperThread;

/// What the committer needs (all of it moves to the committer's thread).
pub struct CommitSetup {
    /// Output folder.
    out: PathBuf,
    /// Workers in all processes (parts per checkpoint).
    peers: usize,
    /// The job's checkpoint identity (`None`: a file replay, whose files are committed but no manifest kept).
    identity: Option<Identity>,
    /// The Kafka cluster id the checkpoints' offsets belong to.
    cluster_id: Option<String>,
    /// With `--sink-topic`: the sink section of the restored manifest (or an empty one), which the next
    /// manifest carries on.
    sink: Option<SinkCheckpoint>,
    /// The restored checkpoint (0: none).
    restored: u64,
    /// The first run of the checkpoints' lineage (`Manifest::lineage_run`): the restored manifest's, or this
    /// run's on a start without a checkpoint.
    lineage_run: u64,
    /// Held while committed files are renamed into device folders: the in-job compaction swaps a folder only
    /// under it.
    history_lock: Arc<Mutex<()>>,
    /// A client configuration for the consumer group's offset commits.
    group: ClientConfig,
}

impl CommitSetup {
    /// The committer of a job writing to `out` with `peers` workers: `identity` is its checkpoints' (`None`: a
    /// file replay), `restored` the checkpoint it resumed from, `run` this run's id, `with_sink` whether it has a
    /// Kafka output whose section the manifests carry on.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        out: PathBuf,
        peers: usize,
        identity: Option<Identity>,
        cluster_id: Option<String>,
        restored: Option<&Restored>,
        run: u64,
        with_sink: bool,
        history_lock: Arc<Mutex<()>>,
        group: ClientConfig,
    ) -> CommitSetup {
        CommitSetup {
            out,
            peers,
            identity,
            cluster_id,
            sink: with_sink.then(|| restored.and_then(Restored::sink).unwrap_or_default()),
            restored: restored.map_or(0, Restored::id),
            lineage_run: restored.map_or(run, Restored::lineage_run),
            history_lock,
            group,
        }
    }
}

/// The parts received so far, per checkpoint: a checkpoint is complete once `peers` parts are in.
#[derive(Default)]
pub struct PartTally {
    received: BTreeMap<u64, Vec<PartDone>>,
}

impl PartTally {
    /// Adds a part; returns every part of its checkpoint once it is the last one.
    pub fn add(&mut self, done: PartDone, peers: usize) -> Option<Vec<PartDone>> {
        let id = done.id;
        let parts = self.received.entry(id).or_default();
        parts.push(done);
        if parts.len() < peers {
            return None;
        }
        self.received.remove(&id)
    }
}

/// A complete checkpoint, to commit.
struct CommitJob {
    id: u64,
    kinds: Vec<BarrierKind>,
}

/// What a commit did, for the worker: the stop's and the bounded run's progress, and the errors to count.
struct CommitOutcome {
    committed: bool,
    stop: bool,
    last: bool,
    errors: Vec<(ErrorKind, String)>,
}

impl CommitOutcome {
    /// A checkpoint the committer's thread will never answer (it ended): not committed; a bounded run fails.
    fn lost() -> CommitOutcome {
        CommitOutcome {
            committed: false,
            stop: false,
            last: true,
            errors: vec![(ErrorKind::CheckpointCommit, "the committer's thread ended".into())],
        }
    }
}

/// Builds the committer: every worker's written parts in (exchanged to worker 0), nothing out. Each complete
/// checkpoint is committed on the committer's own thread, in checkpoint order, so that worker 0 goes on reading
/// meanwhile (a commit writes the manifest with every open window and renames a roll's files: at 10,000
/// devices a quarter to half a second); the operator holds its capability until the commit is done, so that
/// the end of a bounded run waits for its last commit. `progress` and `errors` are worker 0's.
pub fn commit<'s>(
    parts: StreamVec<'s, u64, PartDone>,
    setup: CommitSetup,
    progress: Rc<StopProgress>,
    errors: Rc<ErrorLog>,
) -> StreamVec<'s, u64, ()> {
    let scope = parts.scope();
    let peers = setup.peers;
    parts.unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Exchange::new(|_: &PartDone| 0),
        "Committer",
        move |_, info| {
            let wake = scope.worker().sync_activator_for(info.address.to_vec());
            let mut state = Some(Committer::new(setup));
            let mut thread: Option<CommitterThread> = None;
            let mut tally = PartTally::default();
            let mut in_flight: VecDeque<Option<Capability<u64>>> = VecDeque::new();
            let mut outcomes: VecDeque<CommitOutcome> = VecDeque::new();
            move |input, _output| {
                input.for_each(|cap, data| {
                    for done in data.drain(..) {
                        let Some(parts) = tally.add(done, peers) else { continue };
                        let job = CommitJob {
                            id: parts[0].id,
                            kinds: parts.iter().map(|p| p.kind).collect(),
                        };
                        // The thread is started at the first commit (only worker 0 ever commits).
                        if thread.is_none()
                            && let Some(committer) = state.take()
                        {
                            let commit = |c: &mut Committer, job: CommitJob| c.commit(&job);
                            match CommitterThread::start("committer".into(), wake.clone(), committer, commit) {
                                Ok(t) => thread = Some(t),
                                Err((committer, e)) => {
                                    tracing::warn!(error = %e, "cannot start the committer's thread; committing on the worker");
                                    state = Some(committer);
                                }
                            }
                        }
                        match (&thread, state.as_mut()) {
                            (Some(t), _) => {
                                in_flight.push_back(cap.retain_least(0));
                                let _ = t.send(job);
                            }
                            (None, Some(committer)) => outcomes.push_back(committer.commit(&job)),
                            (None, None) => outcomes.push_back(CommitOutcome::lost()),
                        }
                    }
                });
                if let Some(t) = &thread {
                    loop {
                        match t.try_recv() {
                            Ok(outcome) => {
                                in_flight.pop_front();
                                outcomes.push_back(outcome);
                            }
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => {
                                // The thread ended (it panicked): what it had not answered did not commit, and
                                // nothing will from now on; the checkpoints already committed stand.
                                for _ in in_flight.drain(..) {
                                    outcomes.push_back(CommitOutcome::lost());
                                }
                                thread = None;
                                break;
                            }
                        }
                    }
                }
                for outcome in outcomes.drain(..) {
                    for (kind, why) in &outcome.errors {
                        errors.record(*kind, why);
                    }
                    if outcome.committed && outcome.stop {
                        progress.committed.set(true);
                    }
                    if !outcome.committed && outcome.last {
                        progress.final_failed.set(true);
                    }
                }
            }
        },
    )
}

/// The committer's thread: commits complete checkpoints in order and wakes the operator with each outcome.
type CommitterThread = HelperThread<CommitJob, CommitOutcome>;

/// The segments the kept manifests name, and the newest committed checkpoint.
struct KeptSegments {
    by_manifest: BTreeMap<u64, Vec<PathBuf>>,
    last: u64,
}

impl KeptSegments {
    fn read(out: &std::path::Path, restored: u64) -> KeptSegments {
        KeptSegments {
            by_manifest: store::kept_segments(out),
            last: restored,
        }
    }

    /// Records manifest `m` and deletes the segments no kept manifest names any more.
    fn committed(&mut self, out: &std::path::Path, m: &Manifest) {
        self.last = m.id;
        self.by_manifest
            .insert(m.id, store::segments_named(m).cloned().collect());
        while self.by_manifest.len() > store::KEEP {
            self.by_manifest.pop_first();
        }
        let keep = self.by_manifest.values().flatten().cloned().collect();
        segment::collect(out, m.id, &keep);
    }
}

/// Commits complete checkpoints, one after the other.
struct Committer {
    setup: CommitSetup,
    offsets: GroupOffsets,
    segments: KeptSegments,
}

impl Committer {
    fn new(setup: CommitSetup) -> Committer {
        Committer {
            offsets: GroupOffsets::new(setup.group.clone()),
            segments: KeptSegments::read(&setup.out, setup.restored),
            setup,
        }
    }

    fn commit(&mut self, job: &CommitJob) -> CommitOutcome {
        let (setup, segments) = (&mut self.setup, &mut self.segments);
        let id = job.id;
        let mut outcome = CommitOutcome {
            committed: false,
            stop: job.kinds.contains(&BarrierKind::Stop),
            last: job.kinds.contains(&BarrierKind::Final),
            errors: Vec::new(),
        };
        let started = Instant::now();
        let turn = setup.history_lock.lock().unwrap_or_else(|e| e.into_inner());
        let meta = ManifestMeta {
            identity: setup.identity.as_ref(),
            cluster_id: setup.cluster_id.as_deref(),
            lineage_run: setup.lineage_run,
        };
        let committed = store::commit(
            &setup.out,
            id,
            setup.peers,
            meta,
            setup.sink.as_ref().map(|s| (segments.last, s)),
        );
        drop(turn);
        match committed {
            Ok(store::Committed { manifest, windows }) => {
                outcome.committed = true;
                if manifest.sink.is_some() {
                    setup.sink.clone_from(&manifest.sink);
                }
                if setup.identity.is_some() {
                    segments.committed(&setup.out, &manifest);
                }
                tracing::info!(
                    checkpoint = id,
                    windows,
                    files = manifest.files.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "checkpoint committed"
                );
                if setup.identity.is_some()
                    && let Err(why) = self.offsets.commit(&manifest)
                {
                    outcome.errors.push((ErrorKind::OffsetCommit, why));
                }
            }
            Err(e) => {
                let why = format!("cannot commit checkpoint {id}: {e:#}");
                outcome.errors.push((ErrorKind::CheckpointCommit, why));
            }
        }
        outcome
    }
}

/// Commits checkpoints' offsets to the consumer group (its consumer is created on first use).
struct GroupOffsets {
    client: ClientConfig,
    consumer: Option<BaseConsumer>,
}

impl GroupOffsets {
    fn new(client: ClientConfig) -> GroupOffsets {
        GroupOffsets { client, consumer: None }
    }

    fn commit(&mut self, manifest: &Manifest) -> Result<(), String> {
        if self.consumer.is_none() {
            let consumer = self
                .client
                .create()
                .map_err(|e| format!("cannot create the offset committer: {e}"))?;
            self.consumer = Some(consumer);
        }
        let Some(c) = self.consumer.as_ref() else {
            return Ok(());
        };
        let mut tpl = TopicPartitionList::new();
        for p in &manifest.partitions {
            let offset = Offset::Offset(p.next_offset);
            tpl.add_partition_offset(&manifest.identity.topic, p.partition, offset)
                .map_err(|e| e.to_string())?;
        }
        c.commit(&tpl, CommitMode::Async)
            .map_err(|e| format!("offset commit to the consumer group failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: u64, worker: usize) -> PartDone {
        PartDone {
            id,
            worker,
            kind: BarrierKind::Periodic,
        }
    }

    #[test]
    fn a_checkpoint_is_complete_once_every_worker_wrote_its_part() {
        let mut t = PartTally::default();
        assert!(t.add(part(1, 0), 3).is_none());
        assert!(t.add(part(2, 0), 3).is_none());
        assert!(t.add(part(1, 2), 3).is_none());
        let all = t.add(part(1, 1), 3).expect("complete");
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|p| p.id == 1));
        assert!(t.add(part(2, 1), 3).is_none(), "checkpoint 2 still lacks a part");
    }

    #[test]
    fn a_single_worker_completes_each_checkpoint_alone() {
        let mut t = PartTally::default();
        assert!(t.add(part(5, 0), 1).is_some());
    }
}
