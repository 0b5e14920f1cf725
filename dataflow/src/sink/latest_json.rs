//! The live snapshot `latest.json`: for every device its newest window (live or final) and its last final
//! window, the pipeline counters gathered from every worker (errors included), and the fleet views. Contract of
//! [`write_latest`]: everything is gathered on worker 0, which rewrites the file atomically on the ticks of the
//! trigger grid (see `trigger`) when something changed, and once more when the input ends; the worker loop
//! writes it a last time when the job stops.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, Result};
use model::{Aggregate, FleetView, LatestDoc, PipelineStats, UdfColumn};
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;

use crate::messages::{AlertRow, FleetTally, LatestIn, RecordCounts, RollupRow, WorkerStats};
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

#[derive(Default)]
struct DeviceLatest {
    newest: Option<(Aggregate, bool)>,
    last_final: Option<Aggregate>,
}

/// Everything `latest.json` is made of.
pub struct LatestState {
    path: PathBuf,
    devices: BTreeMap<String, DeviceLatest>,
    workers: BTreeMap<usize, WorkerStats>,
    total_workers: usize,
    final_windows: u64,
    /// The job watermark, epoch ms.
    pub watermark: Option<u64>,
    fleet: FleetTally,
    /// The job's UDF columns, announced in the document.
    udfs: Vec<UdfColumn>,
    /// UDF failure counts per window worker, then per UDF.
    udf_errors: BTreeMap<usize, BTreeMap<String, u64>>,
    /// The job's window kind, announced in the document.
    window: Option<model::WindowKind>,
    dirty: bool,
}

impl LatestState {
    /// State writing to `out/latest.json` for a job with these UDF columns.
    pub fn new(out: &std::path::Path, total_workers: usize, udfs: Vec<UdfColumn>) -> LatestState {
        LatestState {
            path: out.join(model::latest::FILE_NAME),
            devices: BTreeMap::new(),
            workers: BTreeMap::new(),
            total_workers,
            final_windows: 0,
            watermark: None,
            fleet: FleetTally::default(),
            udfs,
            udf_errors: BTreeMap::new(),
            window: None,
            dirty: true,
        }
    }

    /// Announces the job's window kind in the document.
    pub fn with_window(mut self, kind: model::WindowKind) -> LatestState {
        self.window = Some(kind);
        self
    }

    /// Folds in one aggregate (live or final).
    pub fn aggregate(&mut self, agg: &Aggregate, is_final: bool) {
        let d = self.devices.entry(agg.device_id.clone()).or_default();
        let newer = d.newest.as_ref().is_none_or(|(n, _)| agg.window_end >= n.window_end);
        if newer {
            d.newest = Some((agg.clone(), is_final));
        }
        if is_final {
            self.final_windows += 1;
            if d.last_final.as_ref().is_none_or(|f| agg.window_end >= f.window_end) {
                d.last_final = Some(agg.clone());
            }
        }
        self.dirty = true;
    }

    /// Folds in one message.
    pub fn apply(&mut self, item: LatestIn) {
        match item {
            LatestIn::Agg(w) => self.aggregate(&w.agg, w.is_final),
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
            final_windows: self.final_windows,
            ..PipelineStats::default()
        };
        let mut batch_ms = Vec::new();
        let mut counts = RecordCounts::default();
        for w in self.workers.values() {
            counts.add(&w.counts);
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
        p.events_total = counts.events;
        p.late_total = counts.late;
        p.bad_total = counts.bad();
        p.bad_by_reason = counts.bad_by_reason;
        p.data_loss_total = counts.data_loss;
        p.skipped_records = counts.skipped_records;
        p.batch_ms = if batch_ms.is_empty() {
            0.0
        } else {
            batch_ms.iter().sum::<f64>() / batch_ms.len() as f64
        };
        p.open_windows = self
            .devices
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

    /// Every device's records in document order, each made when the walk reaches it.
    fn for_each_record(&self, mut each: impl FnMut(&Aggregate, bool)) {
        for d in self.devices.values() {
            if let Some(f) = &d.last_final
                && d.newest.as_ref().is_none_or(|(n, _)| n.window_end != f.window_end)
            {
                each(f, true);
            }
            if let Some((n, is_final)) = &d.newest {
                each(n, *is_final);
            }
        }
    }

    /// The document with its records as `records`.
    fn document_with<R>(&self, records: R) -> LatestDoc<R> {
        let now_ms = model::time::now_ms();
        LatestDoc {
            updated_at: now_ms / 1000,
            watermark: self.watermark.map(model::time::rfc3339_ms),
            records,
            pipeline: self.pipeline(now_ms),
            fleet: self.fleet(),
            window: self.window,
            udfs: self.udfs.clone(),
        }
    }

    /// The document as it would be written now.
    pub fn document(&self) -> LatestDoc {
        let mut records = Vec::with_capacity(self.devices.len() * 2);
        self.for_each_record(|agg, is_final| records.push(agg.to_record(is_final)));
        self.document_with(records)
    }

    /// Writes `latest.json` atomically, each record converted as it is written (at 10,000 devices the records
    /// alone are several MB as a `Vec`).
    pub fn write(&mut self) -> Result<()> {
        let (watermark, pipeline) = {
            let doc = self.document_with(Records(self));
            write_atomic_with(&self.path, |w| Ok(serde_json::to_writer(w, &doc)?))
                .with_context(|| format!("cannot write {}", self.path.display()))?;
            (doc.watermark, doc.pipeline)
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
        self.0.for_each_record(|agg, is_final| {
            if failed.is_none()
                && let Err(e) = seq.serialize_element(&agg.to_record(is_final))
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

    fn agg(device: &str, end: u64, count: u64) -> Aggregate {
        Aggregate {
            device_id: device.into(),
            window_start: end - 10,
            window_end: end,
            count,
            avg_temperature: 1.0,
            avg_humidity: 1.0,
            min_battery: 1.0,
            max_battery: 1.0,
            stddev_temperature: 0.0,
            warn_count: 0,
            error_count: 0,
            udf: Default::default(),
        }
    }

    #[test]
    fn records_hold_newest_and_last_final_window_of_each_device() {
        let mut s = LatestState::new(std::path::Path::new("/nonexistent"), 1, Vec::new());
        s.aggregate(&agg("a", 10_000, 1), true);
        s.aggregate(&agg("a", 20_000, 2), false);
        s.aggregate(&agg("b", 10_000, 3), false);
        s.aggregate(&agg("b", 10_000, 4), true);
        let doc = s.document();
        let got: Vec<_> = doc
            .records
            .iter()
            .map(|r| (r.device_id.as_str(), r.count, r.is_final))
            .collect();
        assert_eq!(got, vec![("a", 1, true), ("a", 2, false), ("b", 4, true)]);
    }

    #[test]
    fn the_written_file_holds_the_same_records_as_the_document() {
        let dir = std::env::temp_dir().join(format!("latest-streamed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = LatestState::new(&dir, 1, Vec::new());
        s.aggregate(&agg("a", 10_000, 1), true);
        s.aggregate(&agg("a", 20_000, 2), false);
        s.aggregate(&agg("b", 10_000, 3), true);
        s.write().unwrap();
        let written: LatestDoc =
            serde_json::from_slice(&std::fs::read(dir.join(model::latest::FILE_NAME)).unwrap()).unwrap();
        assert_eq!(written.records, s.document().records);
        assert_eq!(written.records.len(), 3);
    }

    #[test]
    fn counters_are_summed_over_workers() {
        let mut s = LatestState::new(std::path::Path::new("/nonexistent"), 2, Vec::new());
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
                },
                lag: 5,
                errors: [("parquet_write".to_string(), 1)].into(),
                ..WorkerStats::default()
            });
        }
        let p = s.document().pipeline;
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
        let mut s = LatestState::new(std::path::Path::new("/nonexistent"), 1, Vec::new());
        s.stats(WorkerStats::default());
        let errors = ErrorLog::default();
        errors.record(ErrorKind::SnapshotWrite, &"disk full");
        s.local_errors(&errors);
        assert_eq!(s.document().pipeline.errors_by_kind["snapshot_write"], 1);
    }

    #[test]
    fn a_retracted_alert_leaves_the_alert_set() {
        let mut s = LatestState::new(std::path::Path::new("/nonexistent"), 1, Vec::new());
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
}
