//! Step 4 of the protocol (see `checkpoint/mod.rs`): each worker writes its part of a checkpoint once its
//! Parquet sink has staged the files of the barrier, and tells the committer. A part that cannot be written
//! (or a barrier whose files could not be staged) is counted and the checkpoint does not commit; for the
//! final checkpoint of a bounded run that fails the run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use timely::dataflow::StreamVec;

use crate::checkpoint::format::{FileCheckpoint, Part, PartitionCheckpoint};
use crate::checkpoint::stop::StopProgress;
use crate::checkpoint::store;
use crate::messages::{BarrierKind, PartDone, Staged};
use crate::runtime::errors::{ErrorKind, ErrorLog};
use crate::runtime::in_order::filter_map_in_order;

/// A stage that commits its own output in two phases with the checkpoints (the Kafka output): each worker's part
/// says how far its commits got, so that the manifest knows which of its transactions are confirmed.
pub trait CommitReport {
    /// Per writer this worker speaks for, the newest checkpoint its commits are confirmed through.
    fn confirmed(&self) -> BTreeMap<usize, u64>;
}

/// This worker's part of the checkpoint a staged barrier closes; `sink_confirmed` is what its Kafka output
/// reports (empty without `--sink-topic`).
pub fn part_of(
    out: &std::path::Path,
    worker: usize,
    staged: &Staged,
    sink_confirmed: BTreeMap<usize, u64>,
) -> Option<Part> {
    let history = staged.history.as_ref()?;
    let b = &staged.barrier;
    Some(Part {
        id: b.id,
        worker,
        windows: b.windows?,
        partitions: b.partitions.iter().map(PartitionCheckpoint::from).collect(),
        files: history.files.iter().map(|f| FileCheckpoint::of(out, f)).collect(),
        segment: history.segment.clone(),
        unrolled: history.unrolled.clone(),
        sink_confirmed,
    })
}

/// Builds the part writer: staged barriers in, written parts out (to the committer). With `report` (a two-phase
/// output), each part says how far this worker's output is committed.
pub fn write_parts<'s>(
    staged: StreamVec<'s, u64, Staged>,
    out: PathBuf,
    worker: usize,
    report: Option<Rc<dyn CommitReport>>,
    progress: Rc<StopProgress>,
    errors: Rc<ErrorLog>,
) -> StreamVec<'s, u64, PartDone> {
    filter_map_in_order(staged, "CheckpointPart", move |s| {
        let (id, kind) = (s.barrier.id, s.barrier.kind);
        let confirmed = report.as_ref().map(|k| k.confirmed()).unwrap_or_default();
        let written = match part_of(&out, worker, &s, confirmed) {
            Some(part) => store::write_part(&out, &part).map_err(|e| {
                let why = format!("cannot write part of checkpoint {id}; it will not commit: {e:#}");
                errors.record(ErrorKind::CheckpointPart, &why)
            }),
            None => Err(()),
        };
        if written.is_err() {
            if kind == BarrierKind::Final {
                progress.final_failed.set(true);
            }
            return None;
        }
        if kind == BarrierKind::Stop {
            progress.part_written.set(true);
        }
        Some(PartDone { id, worker, kind })
    })
}
