//! The on-disk format of checkpoints (`<out>/_checkpoints/`): a partition's and an open window's state, a
//! committed file, a worker's part, the job identity a checkpoint must match to be restored, and the manifest.
//! They are converted with `From` from and to the in-flight payloads of `messages`, so the format can change
//! without touching the operators. The operations on these files are `checkpoint::store`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use compact_str::CompactString;
use model::{WindowAgg, WindowKind};
use serde::{Deserialize, Serialize};

use crate::checkpoint::kafka_out::SinkCheckpoint;
use crate::messages::{ClockState, OpenWindow, PartitionState, RecordCounts, StagedFile, UdafInputs};

/// Format version of manifests.
pub const VERSION: u32 = 1;

/// State of one partition at a checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionCheckpoint {
    /// Partition.
    pub partition: i32,
    /// Next offset to read.
    pub next_offset: i64,
    /// Newest event time seen.
    pub max_ts: Option<u64>,
    /// Lowest watermark the partition may report (set when it woke from idleness).
    pub floor: u64,
    /// Records read, on time, late and bad (stored flat: `records`, `events`, `late`, `bad_by_reason`).
    #[serde(flatten)]
    pub counts: RecordCounts,
}

/// One open window of one device at a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowCheckpoint {
    /// Device.
    pub device_id: CompactString,
    /// Start, ms: of the window (tumbling), the pane (hopping) or the session's first event. Absent in
    /// checkpoints of tumbling windows written before there were other kinds (their start follows from the end).
    #[serde(default)]
    pub window_start: u64,
    /// End, ms: of the window, the pane, or the session's last event + the gap.
    pub window_end: u64,
    /// Location of the device.
    pub location: CompactString,
    /// Running aggregate.
    pub agg: WindowAgg,
    /// The aggregate UDFs' inputs so far (absent without them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Box<UdafInputs>>,
}

/// A Parquet file a checkpoint commits, relative to the output folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    /// Hidden in-progress name.
    pub hidden: PathBuf,
    /// Visible `part-*.parquet` name.
    pub visible: PathBuf,
}

impl From<&PartitionState> for PartitionCheckpoint {
    fn from(p: &PartitionState) -> Self {
        PartitionCheckpoint {
            partition: p.partition,
            next_offset: p.next_offset,
            max_ts: p.clock.max_ts,
            floor: p.clock.floor,
            counts: p.counts.clone(),
        }
    }
}

impl From<&PartitionCheckpoint> for PartitionState {
    fn from(p: &PartitionCheckpoint) -> Self {
        PartitionState {
            partition: p.partition,
            next_offset: p.next_offset,
            clock: ClockState {
                max_ts: p.max_ts,
                floor: p.floor,
            },
            counts: p.counts.clone(),
        }
    }
}

impl From<&OpenWindow> for WindowCheckpoint {
    fn from(w: &OpenWindow) -> Self {
        WindowCheckpoint {
            device_id: w.device.clone(),
            window_start: w.start,
            window_end: w.end,
            location: w.location.clone(),
            agg: w.agg,
            inputs: w.inputs.clone(),
        }
    }
}

impl From<&WindowCheckpoint> for OpenWindow {
    fn from(w: &WindowCheckpoint) -> Self {
        OpenWindow {
            start: w.window_start,
            end: w.window_end,
            device: w.device_id.clone(),
            location: w.location.clone(),
            agg: w.agg,
            inputs: w.inputs.clone(),
        }
    }
}

impl FileCheckpoint {
    /// The checkpoint record of a staged file, relative to the output folder.
    pub fn of(out: &Path, f: &StagedFile) -> FileCheckpoint {
        let rel = |p: &PathBuf| p.strip_prefix(out).unwrap_or(p).to_path_buf();
        FileCheckpoint {
            hidden: rel(&f.hidden),
            visible: rel(&f.visible),
        }
    }

    /// The staged file it records, under `out`.
    pub fn staged(&self, out: &Path) -> StagedFile {
        StagedFile {
            hidden: out.join(&self.hidden),
            visible: out.join(&self.visible),
        }
    }
}

/// One worker's contribution to a checkpoint, but for its open windows: those are written beside it, one
/// [`WindowCheckpoint`] per line (`checkpoint::store::write_part`), and streamed into the manifest, so that
/// neither the worker nor the committer holds a second copy of them (at 10 000 devices, 70 000 windows).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Checkpoint id.
    pub id: u64,
    /// Global worker index.
    pub worker: usize,
    /// How many open windows the worker wrote beside the part.
    pub windows: usize,
    /// Partition states (sent by worker 0, which hears every source).
    pub partitions: Vec<PartitionCheckpoint>,
    /// Files this worker rolled for the checkpoint.
    pub files: Vec<FileCheckpoint>,
    /// The segment of the final windows it received since the previous barrier, when it wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<PathBuf>,
    /// Every segment it holds whose windows are in no committed file yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unrolled: Vec<PathBuf>,
    /// With `--sink-topic`: per Kafka writer this worker speaks for (itself, and the writers it recovered), the
    /// newest checkpoint its transactions are committed through.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sink_confirmed: BTreeMap<usize, u64>,
}

/// What the settings of a job must match to restore a checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// Topic read.
    pub topic: String,
    /// Window size, ms (tumbling and hopping windows; 0 for sessions).
    pub window_ms: u64,
    /// Hopping windows: the slide, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slide_ms: Option<u64>,
    /// Session windows: the gap, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_gap_ms: Option<u64>,
    /// Lateness, ms.
    pub lateness_ms: u64,
    /// The UDFs whose columns and open inputs the checkpoint holds, in `--udf` order (none in checkpoints of
    /// jobs without `--udf`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub udfs: Vec<UdfIdentity>,
}

impl Identity {
    /// The window flags this identity stands for, as a user would type them.
    fn window_flags(&self) -> String {
        let d = model::time::duration_text;
        match (self.slide_ms, self.session_gap_ms) {
            (_, Some(gap)) => format!("--session-gap {}", d(gap)),
            (Some(slide), None) => format!("--window {} --slide {}", d(self.window_ms), d(slide)),
            (None, None) => format!("--window {}", d(self.window_ms)),
        }
    }
}

/// One UDF of a checkpoint's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdfIdentity {
    /// The function's name.
    pub name: String,
    /// SHA-256 of its crate's source (see `udf::compile::source_hash`).
    pub source_hash: String,
}

impl Identity {
    /// The identity of the checkpoints of a job reading `topic` into windows of `window` with `lateness_ms`,
    /// and the UDFs `udfs` (name, source hash), in `--udf` order.
    pub fn new(topic: &str, window: WindowKind, lateness_ms: u64, udfs: Vec<UdfIdentity>) -> Identity {
        let (window_ms, slide_ms, session_gap_ms) = match window {
            WindowKind::Tumbling { size_ms } => (size_ms, None, None),
            WindowKind::Hopping(h) => (h.size_ms(), Some(h.slide_ms()), None),
            WindowKind::Session { gap_ms } => (0, None, Some(gap_ms)),
        };
        Identity {
            topic: topic.to_string(),
            window_ms,
            slide_ms,
            session_gap_ms,
            lateness_ms,
            udfs,
        }
    }
}

/// A complete checkpoint. `W` is how its open windows are held: read back, a vector; while being committed, a
/// stream from the parts' window files (`checkpoint::store`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest<W = Vec<WindowCheckpoint>> {
    /// Format version.
    pub version: u32,
    /// Checkpoint id (increasing).
    pub id: u64,
    /// Settings it was written with.
    pub identity: Identity,
    /// Wall clock when committed, epoch ms.
    pub committed_at: u64,
    /// The Kafka cluster id its offsets belong to (absent in older manifests, and when the broker did not
    /// tell: then the cluster is not checked on restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Workers that wrote it.
    pub workers: usize,
    /// The start time (ms, the `run` of file names) of the first run of these checkpoints' lineage — the run that
    /// started without a checkpoint. History files of an earlier run belong to an earlier lineage (before a
    /// `--fresh`), whose checkpoint numbers say nothing about these. 0 in older manifests: every file counts as
    /// this lineage's.
    #[serde(default)]
    pub lineage_run: u64,
    /// Every partition.
    pub partitions: Vec<PartitionCheckpoint>,
    /// Every open window.
    pub windows: W,
    /// Files it committed.
    pub files: Vec<FileCheckpoint>,
    /// Segments (`checkpoint::segment`) of final windows that are in no history file yet: a restored job's
    /// history writers take them back (absent in manifests written before the roll policy: none).
    #[serde(default)]
    pub unrolled: Vec<PathBuf>,
    /// With `--sink-topic`: what of the history may not be in the sink topic yet (see `checkpoint::kafka_out`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<SinkCheckpoint>,
}

/// What a manifest records besides the parts: the settings, the Kafka cluster, the lineage's first run.
#[derive(Clone, Copy, Debug, Default)]
pub struct ManifestMeta<'a> {
    /// The job's identity (`None`: a file replay, whose files are committed but no manifest kept).
    pub identity: Option<&'a Identity>,
    /// The Kafka cluster id the offsets belong to.
    pub cluster_id: Option<&'a str>,
    /// See [`Manifest::lineage_run`].
    pub lineage_run: u64,
}

impl<W> Manifest<W> {
    /// The same manifest with its open windows held as `windows`.
    pub fn with_windows<V>(self, windows: V) -> Manifest<V> {
        Manifest {
            version: self.version,
            id: self.id,
            identity: self.identity,
            committed_at: self.committed_at,
            cluster_id: self.cluster_id,
            workers: self.workers,
            lineage_run: self.lineage_run,
            partitions: self.partitions,
            windows,
            files: self.files,
            unrolled: self.unrolled,
            sink: self.sink,
        }
    }

    /// Whether a history file of checkpoint `checkpoint` written by run `run` belongs to this manifest's lineage
    /// and is newer than it: a restore of this manifest deletes it (its windows are recomputed).
    pub fn outdates(&self, checkpoint: u64, run: u64) -> bool {
        checkpoint > self.id && run >= self.lineage_run
    }
}

impl Identity {
    /// Whether a checkpoint of this identity may be restored by a job of `wanted`; the error names the flag
    /// that differs and `--fresh` (`folder`: the checkpoint folder).
    pub fn check_restorable(&self, wanted: &Identity, folder: &Path) -> Result<()> {
        let found = self;
        let fix = "pass the same value, or --fresh to discard the checkpoints and start over";
        if found.topic != wanted.topic {
            bail!(
                "the checkpoint in {} was written for --topic {} but this run reads --topic {}: {fix}",
                folder.display(),
                found.topic,
                wanted.topic
            );
        }
        let windows = |i: &Identity| (i.window_ms, i.slide_ms, i.session_gap_ms);
        if windows(found) != windows(wanted) {
            bail!(
                "the checkpoint in {} was written with {} but this run has {}: {fix}",
                folder.display(),
                found.window_flags(),
                wanted.window_flags()
            );
        }
        if found.lateness_ms != wanted.lateness_ms {
            bail!(
                "the checkpoint in {} was written with --lateness {}ms but this run has --lateness {}ms: {fix}",
                folder.display(),
                found.lateness_ms,
                wanted.lateness_ms
            );
        }
        if found.udfs != wanted.udfs {
            let list = |u: &[UdfIdentity]| {
                if u.is_empty() {
                    "no UDF".to_string()
                } else {
                    let names: Vec<String> = u
                        .iter()
                        .map(|u| format!("{} (source {})", u.name, &u.source_hash[..12.min(u.source_hash.len())]))
                        .collect();
                    names.join(", ")
                }
            };
            bail!(
                "the checkpoint in {} was written with {} but this run has {}: pass the same --udf crates unchanged, or \
                 --fresh to discard the checkpoints and start over (the history already written stays)",
                folder.display(),
                list(&found.udfs),
                list(&wanted.udfs)
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_and_window_states_survive_the_file_format() {
        let p = PartitionState {
            partition: 2,
            next_offset: 41,
            clock: ClockState {
                max_ts: Some(9),
                floor: 3,
            },
            counts: RecordCounts {
                records: 5,
                events: 3,
                late: 1,
                bad_by_reason: [("not_json".to_string(), 1)].into(),
                data_loss: 2,
                skipped_records: 17,
            },
        };
        assert_eq!(PartitionState::from(&PartitionCheckpoint::from(&p)), p);
        let w = OpenWindow {
            start: 4_000,
            end: 10_000,
            device: "🔥-sensor".into(),
            location: "lab".into(),
            agg: {
                let mut agg = WindowAgg::default();
                agg.add(20.5, 50.0, 80.0, model::Status::Ok);
                agg
            },
            inputs: Some(Box::new(UdafInputs {
                ts: vec![1, 2],
                temperature: vec![20.5, 21.0],
                ..UdafInputs::default()
            })),
        };
        assert_eq!(OpenWindow::from(&WindowCheckpoint::from(&w)), w);
        let text = serde_json::to_string(&WindowCheckpoint::from(&w)).unwrap();
        let back: WindowCheckpoint = serde_json::from_str(&text).unwrap();
        assert_eq!(OpenWindow::from(&back), w, "UDAF inputs survive the file format");
    }

    #[test]
    fn staged_files_are_recorded_relative_to_the_output_folder() {
        let out = Path::new("/data/out");
        let f = StagedFile {
            hidden: out.join("parquet/device_id=d/.part-1.inprogress"),
            visible: out.join("parquet/device_id=d/part-1.parquet"),
        };
        let c = FileCheckpoint::of(out, &f);
        assert_eq!(c.visible, PathBuf::from("parquet/device_id=d/part-1.parquet"));
        assert_eq!(c.staged(out), f);
    }
}
