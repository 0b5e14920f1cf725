//! Restore on start: discard the checkpoints (`--fresh`), load the newest manifest that matches the job's
//! identity, bring the output folder in line with it, and hand each worker its share of it ([`Resume`]).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::checkpoint::format::{Identity, Manifest, PartitionCheckpoint};
use crate::checkpoint::kafka_out::{SinkCheckpoint, SinkRecovery};
use crate::checkpoint::store;
use crate::messages::{OpenWindow, PartitionState};

/// What a restored checkpoint hands to one worker's operators: where its sources resume and the open windows it
/// re-injects.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resume {
    /// The checkpoint restored (0: none, a fresh start).
    pub checkpoint: u64,
    /// Every partition's state at that checkpoint (each source takes the ones it owns).
    pub partitions: Vec<PartitionState>,
    /// This worker's share of the checkpoint's open windows (it sends them to the workers owning the devices).
    pub windows: Vec<OpenWindow>,
    /// This worker's share of the final windows not rolled into a file yet (references the history stage reads
    /// back through `StateStore::final_windows`).
    pub unrolled: Vec<PathBuf>,
}

/// The checkpoint a job resumes from, as the job sees it: its partitions' states (which the source's restore
/// rules may revise before the workers start), each worker's share, and what the committer and the Kafka output
/// carry on.
#[derive(Clone, Debug)]
pub struct Restored {
    manifest: Manifest,
}

impl Restored {
    /// Its id.
    pub fn id(&self) -> u64 {
        self.manifest.id
    }

    /// The Kafka cluster id its offsets belong to, when it recorded one.
    pub fn cluster_id(&self) -> Option<&str> {
        self.manifest.cluster_id.as_deref()
    }

    /// Every partition's state at the checkpoint.
    pub fn partitions(&self) -> Vec<PartitionState> {
        self.manifest.partitions.iter().map(PartitionState::from).collect()
    }

    /// Replaces the partitions' states (the source's restore rules moved offsets or counted a loss).
    pub fn set_partitions(&mut self, states: &[PartitionState]) {
        self.manifest.partitions = states.iter().map(PartitionCheckpoint::from).collect();
    }

    /// Worker `worker`'s (of `peers`) share of it (see [`resume_for`]).
    pub fn resume_for(&self, worker: usize, peers: usize) -> Resume {
        resume_for(Some(&self.manifest), worker, peers)
    }

    /// What the Kafka output of a job of `peers` workers finishes first.
    pub fn sink_recovery(&self, peers: usize) -> SinkRecovery {
        SinkRecovery::new(
            self.manifest.id,
            self.manifest.sink.clone(),
            self.manifest.workers,
            peers,
        )
    }

    /// How many workers wrote it.
    pub fn workers(&self) -> usize {
        self.manifest.workers
    }

    /// The first run of its lineage.
    pub fn lineage_run(&self) -> u64 {
        self.manifest.lineage_run
    }

    /// Its Kafka output section (none when written without `--sink-topic`).
    pub fn sink(&self) -> Option<SinkCheckpoint> {
        self.manifest.sink.clone()
    }
}

/// Prepares the output folder `out` for a run and returns the checkpoint to resume from, if any: with `fresh`
/// every checkpoint is discarded first; `identity` is what a checkpoint must match (`None`: a job that takes no
/// checkpoints). Runs before any worker starts, in every process (it is idempotent).
pub fn on_start(out: &Path, fresh: bool, identity: Option<&Identity>) -> Result<Option<Restored>> {
    if fresh {
        store::discard(out)?;
    }
    let restored = match identity {
        Some(id) => store::load_newest(out, id)?,
        None => None,
    };
    store::prepare(out, restored.as_ref())?;
    if let Some(m) = &restored {
        tracing::info!(
            checkpoint = m.id,
            partitions = m.partitions.len(),
            open_windows = m.windows.len(),
            written_by_workers = m.workers,
            "resuming from checkpoint"
        );
    }
    Ok(restored.map(|manifest| Restored { manifest }))
}

/// Worker `worker`'s (of `peers`) share of a restored checkpoint: every partition's state (each source takes its
/// own), every `peers`-th open window (the sources re-send them to the workers owning their devices, so the
/// restored job may have another `-w` than the one that wrote the checkpoint) and every segment of final windows
/// not rolled yet (each worker takes back the windows of the devices it owns).
pub fn resume_for(manifest: Option<&Manifest>, worker: usize, peers: usize) -> Resume {
    let Some(m) = manifest else {
        return Resume::default();
    };
    Resume {
        checkpoint: m.id,
        partitions: m.partitions.iter().map(PartitionState::from).collect(),
        windows: m
            .windows
            .iter()
            .skip(worker)
            .step_by(peers.max(1))
            .map(OpenWindow::from)
            .collect(),
        unrolled: m.unrolled.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::format::{PartitionCheckpoint, VERSION, WindowCheckpoint};

    fn manifest(windows: usize) -> Manifest {
        Manifest {
            version: VERSION,
            id: 4,
            identity: Identity::default(),
            committed_at: 0,
            cluster_id: None,
            workers: 3,
            lineage_run: 0,
            partitions: vec![PartitionCheckpoint {
                partition: 0,
                next_offset: 10,
                ..Default::default()
            }],
            windows: (0..windows)
                .map(|i| WindowCheckpoint {
                    key: vec![model::value::Value::Text(format!("d{i}").into())],
                    window_start: 0,
                    window_end: 10_000,
                    side: "lab".into(),
                    accs: vec![sql::agg::Acc::Count(1)],
                })
                .collect(),
            files: Vec::new(),
            unrolled: (0..5).map(|i| format!("_checkpoints/segments/s{i}").into()).collect(),
            sink: None,
        }
    }

    #[test]
    fn every_open_window_goes_to_exactly_one_worker_and_every_segment_to_all_whatever_the_worker_count() {
        let m = manifest(7);
        for peers in 1..=4 {
            let mut devices: Vec<String> = (0..peers)
                .flat_map(|w| resume_for(Some(&m), w, peers).windows)
                .map(|w| w.key.label())
                .collect();
            devices.sort();
            assert_eq!(devices.len(), 7, "peers {peers}");
            devices.dedup();
            assert_eq!(devices.len(), 7, "peers {peers}");
            let mut segments: Vec<_> = (0..peers)
                .flat_map(|w| resume_for(Some(&m), w, peers).unrolled)
                .collect();
            segments.sort();
            segments.dedup();
            assert_eq!(segments, m.unrolled, "peers {peers}");
        }
    }

    #[test]
    fn every_worker_sees_every_partition_and_the_checkpoint_id() {
        let m = manifest(0);
        for w in 0..2 {
            let r = resume_for(Some(&m), w, 2);
            assert_eq!((r.checkpoint, r.partitions.len()), (4, 1));
            assert_eq!(r.partitions[0].next_offset, 10);
        }
    }

    #[test]
    fn no_checkpoint_is_a_fresh_start() {
        assert_eq!(resume_for(None, 0, 2), Resume::default());
    }
}
