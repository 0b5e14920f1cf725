//! Restore on start: discard the checkpoints (`--fresh`), load the newest manifest that matches the job's
//! settings, bring the output folder in line with it, and hand each worker its share of it.

use anyhow::Result;

use crate::checkpoint::format::{Identity, Manifest};
use crate::checkpoint::store;
use crate::config::JobConfig;
use crate::messages::{OpenWindow, PartitionState, Resume};

/// Prepares the output folder for a run and returns the checkpoint to resume from, if any. Runs before any
/// worker starts, in every process (it is idempotent).
pub fn on_start(config: &JobConfig) -> Result<Option<Manifest>> {
    if config.fresh {
        store::discard(&config.out)?;
    }
    let restored = match Identity::of(config) {
        Some(id) => store::load_newest(&config.out, &id)?,
        None => None,
    };
    store::prepare(&config.out, restored.as_ref())?;
    if let Some(m) = &restored {
        tracing::info!(
            checkpoint = m.id,
            partitions = m.partitions.len(),
            open_windows = m.windows.len(),
            written_by_workers = m.workers,
            "resuming from checkpoint"
        );
    }
    Ok(restored)
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
                    device_id: format!("d{i}").into(),
                    window_start: 0,
                    window_end: 10_000,
                    location: "lab".into(),
                    agg: model::WindowAgg::default(),
                    inputs: None,
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
                .map(|w| w.device.to_string())
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
