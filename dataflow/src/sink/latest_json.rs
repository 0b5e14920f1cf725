//! The live snapshot `latest.json` (`docs/contracts.md`): the query and its output columns, for every group its
//! newest window (live or final) and its last final window as records of those columns, the pipeline counters
//! gathered from every worker (errors included), and the fleet views (or why there are none). Contract of
//! [`write_latest`]: everything is gathered on worker 0, which rewrites the file atomically on the ticks of the
//! trigger grid (see `trigger`) when something changed, and once more when the input ends; the worker loop
//! writes it a last time when the job stops.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use std::sync::Arc;

use anyhow::{Context, Result};
use model::output::{JsonRecord, OutputSchema};
use model::value::Value;
use model::{FleetView, PipelineStats, UdfColumn};
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;

use crate::messages::{AlertRow, FleetTally, GroupKey, LatestIn, RecordCounts, RollupRow, WindowOut, WorkerStats};
use crate::runtime::durable::write_atomic_with;
use crate::runtime::errors::{ErrorKind, ErrorLog};

/// Builds the `latest.json` writer: aggregates, counters and fleet updates in (exchanged to worker 0), nothing
/// out. `watermark` is the job's watermark as the window operator sees it.
pub fn write_latest<'s>(
    input: StreamVec<'s, u64, LatestIn>,
    latest: Rc<RefCell<LatestState>>,
    watermark: Rc<Cell<Option<u64>>>,
    trigger: Duration,
    worker: usize,
    errors: Rc<ErrorLog>,
) -> StreamVec<'s, u64, ()> {
    let scope = input.scope();
    input.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Exchange::new(|_: &LatestIn| 0),
        "LatestJson",
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut cap = Some(cap);
            let mut next_write = crate::runtime::trigger::next_after(model::time::now_ms(), trigger, 0);
            move |(input, frontier), _out| {
                let mut l = latest.borrow_mut();
                input.for_each(|_, data| {
                    for item in data.drain(..) {
                        l.apply(item);
                    }
                });
                if worker != 0 {
                    if frontier.is_empty() {
                        cap = None;
                    }
                    return;
                }
                // Time 0 is where every source starts: no event has moved the watermark yet.
                let current = watermark.get().filter(|&t| t > 0);
                if current.is_some() && current != l.watermark {
                    l.watermark = current;
                    l.touch();
                }
                let finished = frontier.is_empty();
                let now = model::time::now_ms();
                let due = crate::runtime::trigger::due(now, &mut next_write, trigger, 0);
                if cap.is_some() && (finished || (due && l.is_dirty())) {
                    l.local_errors(&errors);
                    if let Err(e) = l.write() {
                        errors.record(ErrorKind::SnapshotWrite, &format!("{e:#}"));
                    }
                }
                if finished {
                    cap = None;
                } else {
                    // Also wakes at least every second to follow the watermark.
                    let wait = Duration::from_millis(next_write.saturating_sub(now));
                    activator.activate_after(wait.min(Duration::from_secs(1)));
                }
            }
        },
    )
}

/// A window's row as `latest.json` keeps it.
#[derive(Clone, Debug, PartialEq)]
struct Kept {
    end: u64,
    row: Vec<Value>,
}

#[derive(Default)]
struct GroupLatest {
    newest: Option<(Kept, bool)>,
    last_final: Option<Kept>,
}

/// The job's query as the document announces it.
#[derive(Clone, Debug, Serialize)]
pub struct QueryInfo {
    /// The job's SQL text as given (the built-in job's, generated, without `--sql`).
    pub sql: String,
    /// Whether it is the built-in job.
    pub builtin: bool,
}

/// The document as the job writes it (`docs/contracts.md`, "`latest.json`"); `model::LatestDoc` reads it.
#[derive(Serialize)]
struct Document<'a, R> {
    updated_at: u64,
    watermark: Option<String>,
    query: &'a QueryInfo,
    columns: &'a OutputSchema,
    records: R,
    pipeline: PipelineStats,
    fleet: FleetView,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<model::WindowKind>,
    #[serde(skip_serializing_if = "<[UdfColumn]>::is_empty")]
    udfs: &'a [UdfColumn],
}

/// Everything `latest.json` is made of.
pub struct LatestState {
    path: PathBuf,
    query: QueryInfo,
    schema: Arc<OutputSchema>,
    groups: BTreeMap<GroupKey, GroupLatest>,
    workers: BTreeMap<usize, WorkerStats>,
    total_workers: usize,
    final_windows: u64,
    /// The job watermark, epoch ms.
    pub watermark: Option<u64>,
    fleet: FleetTally,
    /// Why the job has no fleet views (`None`: it has them).
    fleet_unavailable: Option<String>,
    /// The job's UDF columns, announced in the document.
    udfs: Vec<UdfColumn>,
    /// UDF failure counts per window worker, then per UDF.
    udf_errors: BTreeMap<usize, BTreeMap<String, u64>>,
    /// The job's window kind, announced in the document.
    window: Option<model::WindowKind>,
    /// The cluster's processes and its restarts so far.
    cluster: (usize, u64),
    dirty: bool,
}

impl LatestState {
    /// State writing to `out/latest.json` for a job of `query`, whose rows have `schema`'s columns.
    pub fn new(
        out: &std::path::Path,
        total_workers: usize,
        query: QueryInfo,
        schema: Arc<OutputSchema>,
    ) -> LatestState {
        LatestState {
            path: out.join(model::latest::FILE_NAME),
            query,
            schema,
            groups: BTreeMap::new(),
            workers: BTreeMap::new(),
            total_workers,
            final_windows: 0,
            watermark: None,
            fleet: FleetTally::default(),
            fleet_unavailable: None,
            udfs: Vec::new(),
            udf_errors: BTreeMap::new(),
            window: None,
            cluster: (1, 0),
            dirty: true,
        }
    }

    /// The cluster this job runs on: `processes`, restarted `restarts` times so far (by `dataflow cluster`).
    pub fn with_cluster(mut self, processes: usize, restarts: u64) -> LatestState {
        self.cluster = (processes, restarts);
        self
    }

    /// Announces the job's window kind in the document.
    pub fn with_window(mut self, kind: model::WindowKind) -> LatestState {
        self.window = Some(kind);
        self
    }

    /// Announces the job's UDF columns in the document (`udfs`).
    pub fn with_udfs(mut self, udfs: Vec<UdfColumn>) -> LatestState {
        self.udfs = udfs;
        self
    }

    /// Says in the document why the job has no fleet views.
    pub fn without_fleet(mut self, why: String) -> LatestState {
        self.fleet_unavailable = Some(why);
        self
    }

    /// Folds in one window's row (live or final).
    pub fn window(&mut self, w: &WindowOut) {
        let g = self.groups.entry(w.key.clone()).or_default();
        let kept = || Kept {
            end: w.end,
            row: w.row.clone(),
        };
        if g.newest.as_ref().is_none_or(|(n, _)| w.end >= n.end) {
            g.newest = Some((kept(), w.is_final));
        }
        if w.is_final {
            self.final_windows += 1;
            if g.last_final.as_ref().is_none_or(|f| w.end >= f.end) {
                g.last_final = Some(kept());
            }
        }
        self.dirty = true;
    }

    /// Folds in one message.
    pub fn apply(&mut self, item: LatestIn) {
        match item {
            LatestIn::Agg(w) => self.window(&w),
            LatestIn::Stats(s) => self.stats(s),
            LatestIn::UdfErrors(worker, counts) => {
                self.udf_errors.insert(worker, counts);
                self.dirty = true;
            }
            LatestIn::Rollup(location, row, diff) => self.rollup(location, row, diff),
            LatestIn::Alert(alert, diff) => self.alert(alert, diff),
        }
    }

    /// Takes the writing worker's (worker 0's) error counts as they are now: they may have moved since its
    /// source last reported, e.g. a failed write of this very file.
    pub fn local_errors(&mut self, errors: &ErrorLog) {
        self.workers.entry(0).or_default().errors = errors.counts();
    }

    /// Folds in one worker's counters.
    pub fn stats(&mut self, stats: WorkerStats) {
        self.workers.insert(stats.worker, stats);
        self.dirty = true;
    }

    /// Applies a change of the per-location rollup view.
    pub fn rollup(&mut self, location: String, row: RollupRow, diff: isize) {
        self.fleet.rollup(location, row, diff);
        self.dirty = true;
    }

    /// Applies a change of the alert view.
    pub fn alert(&mut self, alert: AlertRow, diff: isize) {
        self.fleet.alert(alert, diff);
        self.dirty = true;
    }

    /// The fleet section: the views as they stand.
    pub fn fleet(&self) -> FleetView {
        self.fleet.view()
    }

    /// Marks the state as changed (e.g. the watermark moved).
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Whether something changed since the last write.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The pipeline counters summed over workers.
    pub fn pipeline(&self, now_ms: u64) -> PipelineStats {
        let mut p = PipelineStats {
            workers: self.total_workers,
            processes: self.cluster.0,
            restarts: self.cluster.1,
            final_windows: self.final_windows,
            ..PipelineStats::default()
        };
        let mut batch_ms = Vec::new();
        let mut counts = RecordCounts::default();
        let mut join = crate::messages::JoinCounts::default();
        for w in self.workers.values() {
            counts.add(&w.counts);
            join.add(&w.join);
            p.input_rate += w.input_rate;
            p.lag += w.lag;
            for (kind, n) in &w.errors {
                *p.errors_by_kind.entry(kind.clone()).or_default() += n;
                p.errors_total += n;
            }
            if w.batch_ms > 0.0 {
                batch_ms.push(w.batch_ms);
            }
        }
        // A temporal join drops some of the events its sources read (an inner join's unmatched ones) and leaves
        // some out by WHERE after joining them.
        p.events_total = counts.events.saturating_sub(join.dropped + join.filtered);
        p.late_total = counts.late;
        p.bad_total = counts.bad();
        p.filtered_total = counts.filtered + join.filtered;
        p.unmatched_total = join.unmatched;
        p.join_versions = join.versions;
        p.join_keys = join.keys;
        p.bad_by_reason = counts.bad_by_reason;
        p.data_loss_total = counts.data_loss;
        p.skipped_records = counts.skipped_records;
        p.batch_ms = if batch_ms.is_empty() {
            0.0
        } else {
            batch_ms.iter().sum::<f64>() / batch_ms.len() as f64
        };
        p.open_windows = self
            .groups
            .values()
            .filter(|d| matches!(d.newest, Some((_, false))))
            .count() as u64;
        p.watermark_delay_ms = self.watermark.map_or(0, |w| now_ms as i64 - w as i64);
        for counts in self.udf_errors.values() {
            for (udf, n) in counts {
                *p.udf_errors.entry(udf.clone()).or_default() += n;
                *p.errors_by_kind
                    .entry(crate::runtime::errors::ErrorKind::Udf.name().to_string())
                    .or_default() += n;
                p.errors_total += n;
            }
        }
        p
    }

    /// Every group's records in document order (by key): its last final window, then its newest one if that
    /// is another.
    fn for_each_record(&self, mut each: impl FnMut(&[Value], bool)) {
        for g in self.groups.values() {
            if let Some(f) = &g.last_final
                && g.newest.as_ref().is_none_or(|(n, _)| n.end != f.end)
            {
                each(&f.row, true);
            }
            if let Some((n, is_final)) = &g.newest {
                each(&n.row, *is_final);
            }
        }
    }

    /// The document with its records as `records`.
    fn document_with<R>(&self, records: R) -> Document<'_, R> {
        let now_ms = model::time::now_ms();
        Document {
            updated_at: now_ms / 1000,
            watermark: self.watermark.map(model::time::rfc3339_ms),
            query: &self.query,
            columns: &self.schema,
            records,
            pipeline: self.pipeline(now_ms),
            fleet: FleetView {
                unavailable: self.fleet_unavailable.clone(),
                ..self.fleet()
            },
            window: self.window,
            udfs: &self.udfs,
        }
    }

    /// The document as it would be written now, as JSON.
    pub fn document(&self) -> serde_json::Value {
        serde_json::to_value(self.document_with(Records(self))).expect("the document serialises")
    }

    /// Writes `latest.json` atomically, each record converted as it is written (at 10,000 devices the records
    /// alone are several MB as a `Vec`).
    pub fn write(&mut self) -> Result<()> {
        let (watermark, pipeline) = {
            let doc = self.document_with(Records(self));
            write_atomic_with(&self.path, |w| Ok(serde_json::to_writer(w, &doc)?))
                .with_context(|| format!("cannot write {}", self.path.display()))?;
            (doc.watermark.clone(), doc.pipeline.clone())
        };
        self.dirty = false;
        tracing::info!(
            events_in = pipeline.events_total,
            msg_per_s = format!("{:.0}", pipeline.input_rate),
            watermark = watermark.as_deref().unwrap_or("-"),
            open_windows = pipeline.open_windows,
            final_windows = pipeline.final_windows,
            late = pipeline.late_total,
            bad = pipeline.bad_total,
            lag = pipeline.lag,
            "snapshot"
        );
        Ok(())
    }
}

/// The records of a state, serialised one at a time as a JSON array.
struct Records<'a>(&'a LatestState);

impl Serialize for Records<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        let mut failed = None;
        let schema = &self.0.schema;
        self.0.for_each_record(|row, is_final| {
            if failed.is_none()
                && let Err(e) = seq.serialize_element(&JsonRecord { schema, row, is_final })
            {
                failed = Some(e);
            }
        });
        match failed {
            Some(e) => Err(e),
            None => seq.end(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(dir: &std::path::Path, workers: usize) -> LatestState {
        let p = crate::query::testing::program();
        let query = QueryInfo {
            sql: p.query.text.clone(),
            builtin: true,
        };
        LatestState::new(dir, workers, query, Arc::new(p.query.schema.clone()))
    }

    fn window(device: &str, end: u64, count: i64, is_final: bool) -> WindowOut {
        let mut row = vec![
            Value::Text(device.into()),
            Value::Timestamp(end as i64 - 10),
            Value::Timestamp(end as i64),
            Value::Int(count),
        ];
        row.extend([1.0, 1.0, 1.0, 1.0, 0.0].map(Value::Float));
        row.extend([Value::Int(0), Value::Int(0)]);
        WindowOut {
            key: GroupKey::of([Value::Text(device.into())]),
            start: end - 10,
            end,
            row,
            side: "lab".into(),
            is_final,
        }
    }

    #[test]
    fn records_hold_newest_and_last_final_window_of_each_device() {
        let mut s = state(std::path::Path::new("/nonexistent"), 1);
        s.window(&window("a", 10_000, 1, true));
        s.window(&window("a", 20_000, 2, false));
        s.window(&window("b", 10_000, 3, false));
        s.window(&window("b", 10_000, 4, true));
        let doc = s.document();
        let got: Vec<_> = doc["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["device_id"].as_str().unwrap().to_string(),
                    r["count"].as_u64().unwrap(),
                    r["final"] == true,
                )
            })
            .collect();
        let want = [("a", 1, true), ("a", 2, false), ("b", 4, true)].map(|(d, c, f)| (d.to_string(), c, f));
        assert_eq!(got, want);
    }

    #[test]
    fn records_are_the_seeds_and_the_document_announces_the_query_and_its_columns() {
        let dir = std::env::temp_dir().join(format!("latest-streamed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = state(&dir, 1);
        s.window(&window("a", 10_000, 1, true));
        s.window(&window("a", 20_000, 2, false));
        s.window(&window("b", 10_000, 3, true));
        s.write().unwrap();
        let text = std::fs::read(dir.join(model::latest::FILE_NAME)).unwrap();
        let written: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(written["records"], s.document()["records"]);
        assert_eq!(written["records"].as_array().unwrap().len(), 3);
        let first = written["records"][0].as_object().unwrap();
        let keys: Vec<&str> = first.keys().map(String::as_str).collect();
        let mut want = vec![
            "device_id",
            "window_start",
            "window_end",
            "count",
            "avg_temperature",
            "avg_humidity",
            "min_battery",
            "max_battery",
            "stddev_temperature",
            "warn_count",
            "error_count",
            "final",
        ];
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want, "the seed's record fields, no other");
        assert_eq!(first["window_start"], "1970-01-01T00:00:09.990Z");
        assert_eq!(written["query"]["builtin"], true);
        assert_eq!(written["columns"][0]["name"], "device_id");
        assert!(written["fleet"].get("unavailable").is_none());
        let read: model::LatestDoc = serde_json::from_slice(&text).unwrap();
        assert_eq!(read.records.len(), 3, "the model's reader reads what the job writes");
    }

    #[test]
    fn counters_are_summed_over_workers() {
        let mut s = state(std::path::Path::new("/nonexistent"), 2);
        for w in 0..2 {
            s.stats(WorkerStats {
                worker: w,
                counts: RecordCounts {
                    records: 13,
                    events: 10,
                    late: 1,
                    bad_by_reason: [("not_json".to_string(), 2)].into(),
                    data_loss: 1,
                    skipped_records: 30,
                    filtered: 0,
                },
                lag: 5,
                errors: [("parquet_write".to_string(), 1)].into(),
                ..WorkerStats::default()
            });
        }
        let p = s.pipeline(0);
        assert_eq!(
            (p.events_total, p.late_total, p.bad_total, p.lag, p.workers),
            (20, 2, 4, 10, 2)
        );
        assert_eq!(p.bad_by_reason["not_json"], 4);
        assert_eq!((p.data_loss_total, p.skipped_records), (2, 60));
        assert_eq!((p.errors_total, p.errors_by_kind["parquet_write"]), (2, 2));
    }

    #[test]
    fn the_writing_workers_own_errors_are_current() {
        let mut s = state(std::path::Path::new("/nonexistent"), 1);
        s.stats(WorkerStats::default());
        let errors = ErrorLog::default();
        errors.record(ErrorKind::SnapshotWrite, &"disk full");
        s.local_errors(&errors);
        assert_eq!(s.pipeline(0).errors_by_kind["snapshot_write"], 1);
    }

    #[test]
    fn a_retracted_alert_leaves_the_alert_set() {
        let mut s = state(std::path::Path::new("/nonexistent"), 1);
        let alert = AlertRow {
            device_id: "d".into(),
            kind: "battery_low".into(),
            value: 10f64.to_bits(),
            window_end: 10_000,
        };
        s.alert(alert.clone(), 1);
        assert_eq!(s.fleet().alerts.len(), 1);
        s.alert(alert, -1);
        assert!(s.fleet().alerts.is_empty());
    }

    #[test]
    fn a_job_without_fleet_views_says_why() {
        let s = state(std::path::Path::new("/nonexistent"), 1).without_fleet("no location".into());
        assert_eq!(s.document()["fleet"]["unavailable"], "no location");
    }
}
