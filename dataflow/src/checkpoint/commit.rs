//! Step 5 of the protocol (see `checkpoint/mod.rs`): the committer, on worker 0. Once every worker's part of a
//! checkpoint is in, it merges them into the manifest (the commit point), publishes the staged files, and
//! commits the checkpoint's offsets to the consumer group so that standard lag tools show the job's progress
//! (the manifest, not Kafka, is the source of truth: a failed offset commit is only counted).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;

use crate::checkpoint::format::{Identity, Manifest, ManifestMeta};
use crate::checkpoint::kafka_out::SinkCheckpoint;
use crate::checkpoint::segment;
use crate::checkpoint::stop::StopProgress;
use crate::checkpoint::store;
use crate::errors::{ErrorKind, ErrorLog};
use crate::messages::{BarrierKind, PartDone};

/// What the committer needs.
pub struct CommitSetup {
    /// Output folder.
    pub out: PathBuf,
    /// Workers in all processes (parts per checkpoint).
    pub peers: usize,
    /// The job's checkpoint identity (`None`: a file replay, whose files are committed but no manifest kept).
    pub identity: Option<Identity>,
    /// The Kafka cluster id the checkpoints' offsets belong to.
    pub cluster_id: Option<String>,
    /// With `--sink-topic`: the sink section of the restored manifest (or an empty one), which the next
    /// manifest carries on.
    pub sink: Option<SinkCheckpoint>,
    /// The restored checkpoint (0: none).
    pub restored: u64,
    /// The first run of the checkpoints' lineage (`Manifest::lineage_run`): the restored manifest's, or this
    /// run's on a start without a checkpoint.
    pub lineage_run: u64,
    /// Held while committed files are renamed into device folders: the in-job compaction swaps a folder only
    /// under it.
    pub history_lock: Arc<Mutex<()>>,
    /// A client configuration for the consumer group's offset commits.
    pub group: ClientConfig,
    /// Progress of a requested stop.
    pub progress: Rc<StopProgress>,
    /// Worker 0's error counters.
    pub errors: Rc<ErrorLog>,
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

/// Builds the committer: every worker's written parts in (exchanged to worker 0), nothing out.
pub fn commit<'s>(parts: StreamVec<'s, u64, PartDone>, setup: CommitSetup) -> StreamVec<'s, u64, ()> {
    parts.unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Exchange::new(|_: &PartDone| 0),
        "Committer",
        move |_, _| {
            let mut tally = PartTally::default();
            let mut offsets = GroupOffsets::new(setup.group.clone());
            let mut segments = KeptSegments::read(&setup.out, setup.restored);
            let mut setup = setup;
            move |input, _output| {
                input.for_each(|_, data| {
                    for done in data.drain(..) {
                        if let Some(parts) = tally.add(done, setup.peers) {
                            commit_one(&mut setup, &parts, &mut offsets, &mut segments);
                        }
                    }
                });
            }
        },
    )
}

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

fn commit_one(setup: &mut CommitSetup, parts: &[PartDone], offsets: &mut GroupOffsets, segments: &mut KeptSegments) {
    let id = parts[0].id;
    let any = |kind| parts.iter().any(|p| p.kind == kind);
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
            if setup.identity.is_some() {
                offsets.commit(&manifest, &setup.errors);
            }
            if any(BarrierKind::Stop) {
                setup.progress.committed.set(true);
            }
        }
        Err(e) => {
            setup.errors.record(
                ErrorKind::CheckpointCommit,
                &format!("cannot commit checkpoint {id}: {e:#}"),
            );
            if any(BarrierKind::Final) {
                setup.progress.final_failed.set(true);
            }
        }
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

    fn commit(&mut self, manifest: &Manifest, errors: &ErrorLog) {
        if self.consumer.is_none() {
            match self.client.create() {
                Ok(c) => self.consumer = Some(c),
                Err(e) => {
                    errors.record(
                        ErrorKind::OffsetCommit,
                        &format!("cannot create the offset committer: {e}"),
                    );
                    return;
                }
            }
        }
        let Some(c) = self.consumer.as_ref() else {
            return;
        };
        let mut tpl = TopicPartitionList::new();
        for p in &manifest.partitions {
            let offset = Offset::Offset(p.next_offset);
            if let Err(e) = tpl.add_partition_offset(&manifest.identity.topic, p.partition, offset) {
                errors.record(ErrorKind::OffsetCommit, &e);
                return;
            }
        }
        if let Err(e) = c.commit(&tpl, CommitMode::Async) {
            errors.record(
                ErrorKind::OffsetCommit,
                &format!("offset commit to the consumer group failed: {e}"),
            );
        }
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
