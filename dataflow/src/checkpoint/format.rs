//! The on-disk format of checkpoints (`<out>/_checkpoints/`): a partition's and an open window's state, a
//! committed file, a worker's part, the job identity a checkpoint must match to be restored, and the manifest.
//! They are converted with `From` from and to the in-flight payloads of `messages`, so the format can change
//! without touching the operators. The operations on these files are `checkpoint::store`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use compact_str::CompactString;
use model::WindowKind;
use model::value::Value;
use serde::{Deserialize, Serialize};
use sql::agg::Acc;

use crate::checkpoint::kafka_out::SinkCheckpoint;
use crate::messages::{ClockState, GroupKey, OpenWindow, PartitionState, RecordCounts, StagedFile};

/// Format version of manifests: 2 since jobs are queries (a group's key and its accumulators, not the seed's
/// aggregate; the query in the identity).
pub const VERSION: u32 = 2;

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

/// One open window (pane, session) of one group at a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowCheckpoint {
    /// The group's key values.
    pub key: Vec<Value>,
    /// Start, ms: of the window (tumbling), the pane (hopping) or the session's first event.
    pub window_start: u64,
    /// End, ms: of the window, the pane, or the session's last event + the gap.
    pub window_end: u64,
    /// The group's carried location (empty without one).
    #[serde(default)]
    pub side: CompactString,
    /// Its accumulators, one per aggregate of the query, as base64 of their bincode form: exact for every float
    /// (NaN and infinities included, which JSON numbers cannot hold) and compact.
    #[serde(with = "accumulators")]
    pub accs: Vec<Acc>,
}

/// The serde form of [`WindowCheckpoint::accs`].
mod accumulators {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};
    use sql::agg::Acc;

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    pub fn serialize<S: Serializer>(accs: &[Acc], s: S) -> Result<S::Ok, S::Error> {
        let bytes = bincode::serialize(accs).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&B64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Acc>, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = B64.decode(text.as_bytes()).map_err(serde::de::Error::custom)?;
        bincode::deserialize(&bytes).map_err(serde::de::Error::custom)
    }
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
            key: w.key.values().to_vec(),
            window_start: w.start,
            window_end: w.end,
            side: w.side.clone(),
            accs: w.accs.clone(),
        }
    }
}

impl From<&WindowCheckpoint> for OpenWindow {
    fn from(w: &WindowCheckpoint) -> Self {
        OpenWindow {
            start: w.window_start,
            end: w.window_end,
            key: GroupKey::of(w.key.iter().cloned()),
            side: w.side.clone(),
            accs: w.accs.clone(),
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
    /// The job's query, normalised (`sql::Job::normalized`): what its open windows' accumulators mean.
    #[serde(default)]
    pub query: String,
    /// Whether the query is the built-in job's (made from the flags): refusals then name the flags. Not compared.
    #[serde(default)]
    pub builtin: bool,
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
    /// the UDFs `udfs` (name, source hash, in `--udf` order) and the query of normalised text `query` (`builtin`:
    /// the built-in job's).
    pub fn new(
        topic: &str,
        window: WindowKind,
        lateness_ms: u64,
        udfs: Vec<UdfIdentity>,
        query: &str,
        builtin: bool,
    ) -> Identity {
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
            query: query.to_string(),
            builtin,
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
        if !wanted.builtin && found.query != wanted.query {
            bail!(
                "the checkpoint in {} was written by another query than this run's --sql file (its open windows hold \
                 that query's aggregates): run the query it was written with, or pass --fresh to discard the \
                 checkpoints and start over (the history already written stays)",
                folder.display()
            );
        }
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
        if found.query != wanted.query {
            bail!(
                "the checkpoint in {} was written by another query than this run's built-in job (a --sql file, or \
                 another version of the built-in job): run that query with --sql, or pass --fresh to discard the \
                 checkpoints and start over (the history already written stays)",
                folder.display()
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
                filtered: 4,
            },
        };
        assert_eq!(PartitionState::from(&PartitionCheckpoint::from(&p)), p);
        let w = OpenWindow {
            start: 4_000,
            end: 10_000,
            key: GroupKey::of([Value::Text("🔥-sensor".into()), Value::Int(-3)]),
            side: "lab".into(),
            accs: vec![
                Acc::Count(2),
                Acc::Max(Value::Float(f64::INFINITY)),
                Acc::Min(Value::Float(f64::NAN)),
                Acc::Udaf(vec![sql::agg::UdafRow {
                    ts_ms: 1,
                    args: vec![Value::Float(20.5)].into(),
                }]),
            ],
        };
        let text = serde_json::to_string(&WindowCheckpoint::from(&w)).unwrap();
        let back: WindowCheckpoint = serde_json::from_str(&text).unwrap();
        let back = OpenWindow::from(&back);
        assert_eq!(
            (&back.key, back.start, back.end, &back.side),
            (&w.key, w.start, w.end, &w.side)
        );
        assert_eq!(back.accs[..2], w.accs[..2]);
        assert!(
            matches!(back.accs[2], Acc::Min(Value::Float(x)) if x.is_nan()),
            "NaN survives the file format"
        );
        assert_eq!(back.accs[3], w.accs[3], "UDAF rows survive the file format");
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
