//! The Kafka output's share of the checkpoint protocol (`--sink-topic`; the whole protocol with its invariants is
//! `docs/ARCHITECTURE.md`, "Kafka output, exactly once"), as pure rules apart from Kafka and the file system:
//!
//! - worker `j`'s transaction of checkpoint `n`, `T(j, n)`, holds exactly the final windows of `j`'s segment of
//!   `n` (`checkpoint::segment`: the windows it received between barriers `n − 1` and `n`), and commits only
//!   once manifest `n` has (so a restored job never recomputes what Kafka holds);
//! - a manifest lists the committed segments whose transaction is not yet known to have committed
//!   ([`SinkCheckpoint::unconfirmed`]): each worker's part reports the newest checkpoint its transactions are
//!   committed through, and a segment leaves the list once its writer reported it;
//! - after a crash, Kafka itself says which transactions committed: each `T(j, n)` also commits `n` as the
//!   *register* of writer `j` (an offset of the consumer group named after `j`'s transactional id, tagged with
//!   the checkpoints' lineage); the restored job re-publishes each unconfirmed segment whose checkpoint is above
//!   its writer's register, once, in a transaction that moves the register.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use model::history::PartName;
use serde::{Deserialize, Serialize};

use crate::checkpoint::segment::SegmentName;

/// The Kafka output's part of a manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkCheckpoint {
    /// Committed segments (relative to the output folder) whose rows may not be in the sink topic yet (history
    /// files in manifests written before segments).
    pub unconfirmed: Vec<PathBuf>,
    /// Transactional ids `w0 … w(writers − 1)` that may hold an open transaction (the most workers any run of
    /// these checkpoints had): a restored job fences them all.
    pub writers: usize,
}

/// Who wrote a segment (or, in older manifests, a history file) and for which checkpoint: `(worker, checkpoint)`.
pub fn file_origin(path: &Path) -> Option<(usize, u64)> {
    if let Some(s) = SegmentName::of(path) {
        return Some((s.worker, s.checkpoint));
    }
    let name = PartName::parse(path.file_name()?.to_str()?)?;
    Some((name.worker, name.checkpoint))
}

/// The sink section of the manifest after `previous`: its unconfirmed files and the checkpoint's new `files`,
/// less those whose writer's transactions are committed through their checkpoint (`confirmed`, per writer, as
/// the workers' parts report it). A file whose name does not say its origin stays (it is never dropped unseen).
pub fn next_checkpoint(
    previous: &SinkCheckpoint,
    files: &[PathBuf],
    confirmed: &BTreeMap<usize, u64>,
    workers: usize,
) -> SinkCheckpoint {
    let still_open = |f: &PathBuf| match file_origin(f) {
        Some((writer, checkpoint)) => confirmed.get(&writer).is_none_or(|&c| c < checkpoint),
        None => true,
    };
    let mut unconfirmed: Vec<PathBuf> = previous
        .unconfirmed
        .iter()
        .chain(files)
        .filter(|f| still_open(f))
        .cloned()
        .collect();
    unconfirmed.sort();
    unconfirmed.dedup();
    SinkCheckpoint {
        unconfirmed,
        writers: previous.writers.max(workers),
    }
}

/// The files writer `writer` must publish again: unconfirmed, its own, and of a checkpoint above its register
/// (the newest checkpoint Kafka says its transactions committed; 0 when it has none in this lineage). Sorted by
/// checkpoint, so that a device's windows are re-published in order.
pub fn to_republish(sink: &SinkCheckpoint, writer: usize, register: u64) -> Vec<(u64, PathBuf)> {
    let mut files: Vec<(u64, PathBuf)> = sink
        .unconfirmed
        .iter()
        .filter_map(|f| {
            let (w, checkpoint) = file_origin(f)?;
            (w == writer && checkpoint > register).then(|| (checkpoint, f.clone()))
        })
        .collect();
    files.sort();
    files
}

/// The writers a restored job of `peers` workers recovers: every transactional id the checkpoints may have
/// used, each by the worker `writer % peers`.
pub fn writers_of(sink: &SinkCheckpoint, manifest_workers: usize, peers: usize, worker: usize) -> Vec<usize> {
    let from_files = sink
        .unconfirmed
        .iter()
        .filter_map(|f| file_origin(f))
        .map(|(w, _)| w + 1)
        .max()
        .unwrap_or(0);
    let all = sink.writers.max(manifest_workers).max(peers).max(from_files);
    (0..all).filter(|w| w % peers.max(1) == worker).collect()
}

/// What a restored checkpoint leaves the Kafka output to finish: the rules above, applied to one restored
/// manifest for a job of `peers` workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkRecovery {
    /// The restored checkpoint.
    pub checkpoint: u64,
    /// Its sink section (empty when it was written without `--sink-topic`: its writers are fenced all the same).
    sink: SinkCheckpoint,
    /// The workers that wrote it.
    workers: usize,
    /// Workers of this job.
    peers: usize,
}

impl SinkRecovery {
    /// The recovery of restored checkpoint `checkpoint`, written by `workers` workers.
    pub fn new(checkpoint: u64, sink: Option<SinkCheckpoint>, workers: usize, peers: usize) -> SinkRecovery {
        SinkRecovery {
            checkpoint,
            sink: sink.unwrap_or_default(),
            workers,
            peers,
        }
    }

    /// The writers (transactional ids) worker `worker` of this job recovers ([`writers_of`]).
    pub fn writers(&self, worker: usize) -> Vec<usize> {
        writers_of(&self.sink, self.workers, self.peers, worker)
    }

    /// What writer `writer`, whose register says `register`, publishes again ([`to_republish`]).
    pub fn to_republish(&self, writer: usize, register: u64) -> Vec<(u64, PathBuf)> {
        to_republish(&self.sink, writer, register)
    }
}

/// What became of checkpoint `id` as far as worker `j`'s transaction of it can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Its manifest is committed: commit the transaction.
    Committed,
    /// A newer manifest committed without it (a part or the manifest could not be written): its windows are in
    /// no committed file, so the transaction is aborted, as the history drops them.
    Abandoned,
    /// Not decided yet.
    Pending,
}

/// The fate of checkpoint `id` for writer `worker`, given whether its manifest exists and the newest manifest
/// (its id and its unconfirmed files) when that is newer. A manifest `id` may already have been pruned when the
/// transaction waited long (a broker outage): then a newer manifest lists the writer's files of `id` as
/// unconfirmed iff `id` committed.
pub fn fate(id: u64, worker: usize, manifest_exists: bool, newer: Option<(u64, &SinkCheckpoint)>) -> Fate {
    if manifest_exists {
        return Fate::Committed;
    }
    match newer {
        Some((newest, sink)) if newest > id => {
            let listed = sink.unconfirmed.iter().any(|f| file_origin(f) == Some((worker, id)));
            if listed { Fate::Committed } else { Fate::Abandoned }
        }
        _ => Fate::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(worker: usize, checkpoint: u64) -> PathBuf {
        let name = SegmentName {
            checkpoint,
            run: 7,
            worker,
        };
        PathBuf::from("_checkpoints/segments").join(name.file_name())
    }

    #[test]
    fn history_files_of_older_manifests_still_say_their_origin() {
        let name = PartName {
            checkpoint: 4,
            run: 7,
            worker: 2,
            seq: 9,
        };
        let path = PathBuf::from("parquet/device_id=d").join(name.file_name());
        assert_eq!(file_origin(&path), Some((2, 4)));
        assert_eq!(file_origin(&file(1, 3)), Some((1, 3)));
    }

    #[test]
    fn a_file_stays_unconfirmed_until_its_writer_reports_its_checkpoint_committed() {
        let start = SinkCheckpoint::default();
        let one = next_checkpoint(&start, &[file(0, 1), file(1, 1)], &BTreeMap::new(), 2);
        assert_eq!(one.unconfirmed, vec![file(0, 1), file(1, 1)]);
        assert_eq!(one.writers, 2);
        let two = next_checkpoint(&one, &[file(0, 2)], &[(0, 1), (1, 0)].into(), 2);
        assert_eq!(two.unconfirmed, vec![file(1, 1), file(0, 2)], "sorted by path");
        let three = next_checkpoint(&two, &[], &[(0, 2), (1, 1)].into(), 1);
        assert!(three.unconfirmed.is_empty());
        assert_eq!(three.writers, 2, "the most writers ever used are kept for fencing");
    }

    #[test]
    fn only_the_writers_files_above_its_register_are_published_again_in_checkpoint_order() {
        let sink = SinkCheckpoint {
            unconfirmed: vec![file(1, 5), file(0, 4), file(0, 3), file(0, 5)],
            writers: 2,
        };
        assert_eq!(to_republish(&sink, 0, 3), vec![(4, file(0, 4)), (5, file(0, 5))]);
        assert_eq!(to_republish(&sink, 0, 5), vec![]);
        assert_eq!(to_republish(&sink, 1, 0), vec![(5, file(1, 5))]);
    }

    #[test]
    fn every_writer_ever_used_is_recovered_by_exactly_one_worker() {
        let sink = SinkCheckpoint {
            unconfirmed: vec![file(4, 9)],
            writers: 3,
        };
        let mut all: Vec<usize> = (0..2).flat_map(|w| writers_of(&sink, 3, 2, w)).collect();
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
        assert_eq!(writers_of(&sink, 3, 2, 1), vec![1, 3]);
        assert_eq!(writers_of(&SinkCheckpoint::default(), 0, 4, 2), vec![2]);
    }

    #[test]
    fn a_transaction_commits_when_its_manifest_exists_even_if_pruned_later() {
        let none = SinkCheckpoint::default();
        assert_eq!(fate(4, 0, true, None), Fate::Committed);
        assert_eq!(fate(4, 0, false, None), Fate::Pending);
        assert_eq!(fate(4, 0, false, Some((4, &none))), Fate::Pending);
        let listed = SinkCheckpoint {
            unconfirmed: vec![file(0, 4), file(1, 5)],
            writers: 2,
        };
        assert_eq!(fate(4, 0, false, Some((8, &listed))), Fate::Committed);
        assert_eq!(fate(4, 1, false, Some((8, &listed))), Fate::Abandoned);
        assert_eq!(fate(4, 0, false, Some((8, &none))), Fate::Abandoned);
    }

    #[test]
    fn names_of_other_writers_are_never_dropped() {
        let odd = PathBuf::from("parquet/device_id=d/part-by-someone-else.parquet");
        let next = next_checkpoint(
            &SinkCheckpoint::default(),
            std::slice::from_ref(&odd),
            &[(0, 99)].into(),
            1,
        );
        assert_eq!(next.unconfirmed, vec![odd]);
    }
}
