//! Prometheus text exposition (format 0.0.4) of the pipeline counters found in `latest.json`, plus the
//! dashboard's own view of that file.
//!
//! Written by hand rather than with a metrics crate: every scrape renders one document that another process
//! wrote, so there is no live registry to keep; a crate's registry would have to be refilled from the file on
//! each scrape. The format needs only `# HELP`/`# TYPE` lines, escaped label values and Prometheus' spelling of
//! special floats, all of which are tested below.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use chrono::DateTime;
use model::{LatestDoc, WindowKind};

use super::latest::{View, age_seconds};

/// Content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl Family<'_> {
    fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label_value(v));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&format_value(value));
        self.out.push('\n');
        self
    }

    /// One sample per entry of `counts`, labelled `label="<key>"`.
    fn sample_each(&mut self, label: &str, counts: &BTreeMap<String, u64>) -> &mut Self {
        for (key, n) in counts {
            self.sample(&[(label, key)], *n as f64);
        }
        self
    }
}

fn family<'a>(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Family<'a> {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    Family { out, name }
}

/// Label values escape backslash, double quote and line feed.
fn escape_label_value(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Help texts escape backslash and line feed.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Go's float spelling as Prometheus parses it: `NaN`, `+Inf`, `-Inf`, otherwise the shortest exact decimal.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

/// Failures per UDF: every announced UDF (0 when it has not failed, so that its series exists from the start and
/// `rate()` sees the first failure), plus any name the counts hold beyond the announced ones.
fn udf_errors<R>(doc: &LatestDoc<R>) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = doc.udfs.iter().map(|u| (u.name.clone(), 0)).collect();
    counts.extend(doc.pipeline.udf_errors.iter().map(|(name, n)| (name.clone(), *n)));
    counts
}

/// The labels of the window-kind info metric: the kind, then the sizes that kind has, in milliseconds (a label a
/// kind does not have is left out, which Prometheus reads as the empty value).
fn window_labels(kind: &WindowKind) -> Vec<(&'static str, String)> {
    let ms = |v: u64| v.to_string();
    match kind {
        WindowKind::Tumbling { size_ms } => vec![("kind", "tumbling".into()), ("size_ms", ms(*size_ms))],
        WindowKind::Hopping(h) => vec![
            ("kind", "hopping".into()),
            ("size_ms", ms(h.size_ms())),
            ("slide_ms", ms(h.slide_ms())),
        ],
        WindowKind::Session { gap_ms } => vec![("kind", "session".into()), ("gap_ms", ms(*gap_ms))],
    }
}

/// Renders every metric for the current view at wall-clock time `now`.
pub fn render(view: &View, now: SystemTime) -> String {
    let mut out = String::with_capacity(4096);
    let valid = view.snapshot.is_some();
    family(
        &mut out,
        "dashboard_latest_valid",
        "gauge",
        "1 when a valid latest.json has been read (the last good document is served), else 0.",
    )
    .sample(&[], f64::from(u8::from(valid)));
    family(
        &mut out,
        "dashboard_latest_error",
        "gauge",
        "1 while the current latest.json is missing or unusable (the last good document is served meanwhile).",
    )
    .sample(&[], f64::from(u8::from(view.error.is_some())));
    family(
        &mut out,
        "dashboard_latest_read_errors_total",
        "counter",
        "Unusable versions of latest.json seen since the dashboard started.",
    )
    .sample(&[], view.read_errors_total as f64);

    let Some(snapshot) = &view.snapshot else {
        return out;
    };
    let doc = &snapshot.doc;
    let p = &doc.pipeline;
    family(
        &mut out,
        "dashboard_latest_age_seconds",
        "gauge",
        "Seconds since the pipeline wrote the served latest.json (its updated_at).",
    )
    .sample(&[], age_seconds(snapshot, now));
    family(
        &mut out,
        "iot_pipeline_updated_timestamp_seconds",
        "gauge",
        "When the pipeline wrote latest.json, Unix time in seconds.",
    )
    .sample(&[], doc.updated_at as f64);
    family(
        &mut out,
        "iot_pipeline_events_total",
        "counter",
        "Valid, on-time events aggregated.",
    )
    .sample(&[], p.events_total as f64);
    family(
        &mut out,
        "iot_pipeline_late_events_total",
        "counter",
        "Late events sent to the dead-letter output.",
    )
    .sample(&[], p.late_total as f64);
    family(
        &mut out,
        "iot_pipeline_bad_events_total",
        "counter",
        "Bad (invalid) events sent to the dead-letter output.",
    )
    .sample(&[], p.bad_total as f64);
    family(
        &mut out,
        "iot_pipeline_filtered_events_total",
        "counter",
        "Valid events the query's WHERE left out.",
    )
    .sample(&[], p.filtered_total as f64);
    family(
        &mut out,
        "iot_pipeline_unmatched_events_total",
        "counter",
        "Events of a temporal join that met no version of the joined table (NULLs with LEFT JOIN, dropped by an inner join).",
    )
    .sample(&[], p.unmatched_total as f64);
    family(
        &mut out,
        "iot_pipeline_join_versions",
        "gauge",
        "Versions of a temporal join's table held, after compaction.",
    )
    .sample(&[], p.join_versions as f64);
    family(
        &mut out,
        "iot_pipeline_join_keys",
        "gauge",
        "Keys of a temporal join's table held.",
    )
    .sample(&[], p.join_keys as f64);
    family(
        &mut out,
        "iot_pipeline_bad_events_by_reason_total",
        "counter",
        "Bad events sent to the dead-letter output, by reason code.",
    )
    .sample_each("reason", &p.bad_by_reason);
    family(
        &mut out,
        "iot_pipeline_data_loss_total",
        "counter",
        "Times a partition's log no longer held the offset to read next and the job went on \
         (--on-data-loss continue): records removed before they were read, a recreated topic, another cluster.",
    )
    .sample(&[], p.data_loss_total as f64);
    family(
        &mut out,
        "iot_pipeline_skipped_records_total",
        "counter",
        "Records known to be skipped by data-loss incidents (removed below the log start before they were read).",
    )
    .sample(&[], p.skipped_records as f64);
    family(
        &mut out,
        "iot_pipeline_operator_errors_total",
        "counter",
        "Errors met inside the job's operators (failed writes, Kafka errors), by kind.",
    )
    .sample_each("kind", &p.errors_by_kind);
    family(
        &mut out,
        "iot_pipeline_udfs",
        "gauge",
        "User-defined function (UDF) columns each window carries.",
    )
    .sample(&[], doc.udfs.len() as f64);
    family(
        &mut out,
        "iot_pipeline_udf_errors_total",
        "counter",
        "Rows whose UDF value is null because the function failed on them, by UDF.",
    )
    .sample_each("udf", &udf_errors(doc));
    family(
        &mut out,
        "iot_pipeline_input_records_per_second",
        "gauge",
        "Records read per second over the last trigger interval.",
    )
    .sample(&[], p.input_rate);
    family(
        &mut out,
        "iot_pipeline_batch_duration_seconds",
        "gauge",
        "Mean time to process one input batch over the last trigger interval.",
    )
    .sample(&[], p.batch_ms / 1000.0);
    family(
        &mut out,
        "iot_pipeline_lag_records",
        "gauge",
        "Records in Kafka not yet read, summed over partitions (0 for file input).",
    )
    .sample(&[], p.lag as f64);
    family(
        &mut out,
        "iot_pipeline_watermark_delay_seconds",
        "gauge",
        "Wall clock minus the job's watermark when latest.json was written.",
    )
    .sample(&[], p.watermark_delay_ms as f64 / 1000.0);
    if let Some(wm) = doc
        .watermark
        .as_deref()
        .and_then(|w| DateTime::parse_from_rfc3339(w).ok())
    {
        family(
            &mut out,
            "iot_pipeline_watermark_timestamp_seconds",
            "gauge",
            "The job's watermark (event time), Unix time in seconds.",
        )
        .sample(&[], wm.timestamp_millis() as f64 / 1000.0);
    }
    if let Some(kind) = &doc.window {
        let labels = window_labels(kind);
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        family(
            &mut out,
            "iot_pipeline_window_info",
            "gauge",
            "The job's window kind and its sizes in milliseconds, as labels; always 1.",
        )
        .sample(&labels, 1.0);
    }
    family(
        &mut out,
        "iot_pipeline_open_windows",
        "gauge",
        "Windows currently open (not yet final).",
    )
    .sample(&[], p.open_windows as f64);
    family(
        &mut out,
        "iot_pipeline_final_windows_total",
        "counter",
        "Final windows emitted.",
    )
    .sample(&[], p.final_windows as f64);
    family(
        &mut out,
        "iot_pipeline_workers",
        "gauge",
        "Timely workers across all processes.",
    )
    .sample(&[], p.workers as f64);
    family(
        &mut out,
        "iot_pipeline_processes",
        "gauge",
        "Processes of the job's cluster (1 without one).",
    )
    .sample(&[], p.processes.max(1) as f64);
    family(
        &mut out,
        "iot_pipeline_restarts_total",
        "counter",
        "Times dataflow cluster restarted every process of the cluster after a lost one, since it started.",
    )
    .sample(&[], p.restarts as f64);
    family(
        &mut out,
        "iot_pipeline_devices",
        "gauge",
        "Groups present in latest.json (devices, for the built-in job).",
    )
    .sample(&[], snapshot.groups.len() as f64);
    family(
        &mut out,
        "iot_fleet_devices",
        "gauge",
        "Devices with at least one final window.",
    )
    .sample(&[], doc.fleet.devices as f64);
    {
        let mut f = family(
            &mut out,
            "iot_fleet_location_devices",
            "gauge",
            "Devices per location (latest final windows).",
        );
        for loc in &doc.fleet.locations {
            f.sample(&[("location", &loc.location)], loc.devices as f64);
        }
    }
    {
        let mut kinds: Vec<(&str, u64)> = Vec::new();
        for alert in &doc.fleet.alerts {
            match kinds.iter_mut().find(|(k, _)| *k == alert.kind) {
                Some((_, n)) => *n += 1,
                None => kinds.push((&alert.kind, 1)),
            }
        }
        kinds.sort_unstable();
        let mut f = family(&mut out, "iot_fleet_alerts", "gauge", "Active alerts by kind.");
        for (kind, n) in kinds {
            f.sample(&[("kind", kind)], n as f64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::latest::Snapshot;
    use model::{Alert, UdfColumn, UdfKind, UdfType};
    use std::sync::Arc;

    fn view_with(doc: LatestDoc) -> View {
        View {
            generation: 1,
            snapshot: Some(Arc::new(Snapshot::new(b"{}".to_vec(), doc, SystemTime::now()))),
            error: None,
            read_errors_total: 0,
        }
    }

    #[test]
    fn special_floats_use_prometheus_spelling() {
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(1.5), "1.5");
        assert_eq!(format_value(3.0), "3");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let mut doc = LatestDoc::default();
        doc.pipeline.bad_by_reason.insert("not_json".into(), 3);
        doc.pipeline.bad_by_reason.insert("we\"ird".into(), 1);
        doc.pipeline.errors_by_kind.insert("parquet_write".into(), 2);
        doc.fleet.alerts.push(Alert {
            device_id: "d".into(),
            kind: "battery_low".into(),
            value: 4.0,
            window_end: "2024-11-03T14:30:10Z".into(),
        });
        doc.watermark = Some("2024-11-03T14:29:10Z".into());
        let text = render(&view_with(doc), SystemTime::now());
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(declared.last().map(String::as_str), Some(name), "{line}");
            }
        }
        assert!(text.contains("iot_pipeline_bad_events_by_reason_total{reason=\"we\\\"ird\"} 1\n"));
        assert!(text.contains("iot_fleet_alerts{kind=\"battery_low\"} 1\n"));
        assert!(text.contains("iot_pipeline_operator_errors_total{kind=\"parquet_write\"} 2\n"));
        assert!(text.contains("iot_pipeline_watermark_timestamp_seconds 1730644150\n"));
    }

    #[test]
    fn udf_failures_are_counted_per_udf_with_zero_for_those_that_never_failed() {
        let mut doc = LatestDoc {
            udfs: ["heat_index", "temperature_p90", "we\"ird\\name"]
                .map(|name| UdfColumn {
                    name: name.into(),
                    kind: UdfKind::Scalar,
                    data_type: UdfType::Float64,
                })
                .to_vec(),
            ..LatestDoc::default()
        };
        doc.pipeline.udf_errors.insert("temperature_p90".into(), 7);
        doc.pipeline.udf_errors.insert("we\"ird\\name".into(), 1);
        let text = render(&view_with(doc), SystemTime::now());
        assert!(text.contains("# TYPE iot_pipeline_udf_errors_total counter\n"));
        assert!(text.contains("iot_pipeline_udf_errors_total{udf=\"heat_index\"} 0\n"));
        assert!(text.contains("iot_pipeline_udf_errors_total{udf=\"temperature_p90\"} 7\n"));
        assert!(text.contains("iot_pipeline_udf_errors_total{udf=\"we\\\"ird\\\\name\"} 1\n"));
        assert!(text.contains("# TYPE iot_pipeline_udfs gauge\niot_pipeline_udfs 3\n"));
    }

    #[test]
    fn without_udfs_the_udf_families_have_no_failures_and_zero_columns() {
        let text = render(&view_with(LatestDoc::default()), SystemTime::now());
        assert!(text.contains("iot_pipeline_udfs 0\n"));
        assert!(!text.contains("iot_pipeline_udf_errors_total{"));
    }

    #[test]
    fn the_window_kind_is_an_info_metric_with_the_sizes_of_its_kind() {
        let cases = [
            (
                WindowKind::Tumbling { size_ms: 10_000 },
                "iot_pipeline_window_info{kind=\"tumbling\",size_ms=\"10000\"} 1\n",
            ),
            (
                WindowKind::Hopping(model::Hopping::new(30_000, 10_000).unwrap()),
                "iot_pipeline_window_info{kind=\"hopping\",size_ms=\"30000\",slide_ms=\"10000\"} 1\n",
            ),
            (
                WindowKind::Session { gap_ms: 5_000 },
                "iot_pipeline_window_info{kind=\"session\",gap_ms=\"5000\"} 1\n",
            ),
        ];
        for (kind, sample) in cases {
            let doc = LatestDoc {
                window: Some(kind),
                ..LatestDoc::default()
            };
            let text = render(&view_with(doc), SystemTime::now());
            assert!(
                text.contains(&format!("# TYPE iot_pipeline_window_info gauge\n{sample}")),
                "{text}"
            );
            assert_eq!(text.matches("iot_pipeline_window_info{").count(), 1, "{text}");
        }
    }

    #[test]
    fn a_document_that_does_not_state_its_window_kind_has_no_window_info() {
        let text = render(&view_with(LatestDoc::default()), SystemTime::now());
        assert!(!text.contains("iot_pipeline_window_info"), "{text}");
        assert!(text.contains("iot_pipeline_open_windows 0\n"));
    }

    #[test]
    fn data_loss_incidents_and_skipped_records_are_counters_zero_until_a_loss() {
        let text = render(&view_with(LatestDoc::default()), SystemTime::now());
        assert!(text.contains("# TYPE iot_pipeline_data_loss_total counter\niot_pipeline_data_loss_total 0\n"));
        assert!(
            text.contains("# TYPE iot_pipeline_skipped_records_total counter\niot_pipeline_skipped_records_total 0\n")
        );
        let mut doc = LatestDoc::default();
        doc.pipeline.data_loss_total = 3;
        doc.pipeline.skipped_records = 200;
        let text = render(&view_with(doc), SystemTime::now());
        assert!(text.contains("iot_pipeline_data_loss_total 3\n"), "{text}");
        assert!(text.contains("iot_pipeline_skipped_records_total 200\n"), "{text}");
    }

    #[test]
    fn without_a_document_only_the_dashboard_metrics_remain() {
        let view = View {
            error: Some("missing".into()),
            read_errors_total: 2,
            ..View::default()
        };
        let text = render(&view, SystemTime::now());
        assert!(text.contains("dashboard_latest_valid 0\n"));
        assert!(text.contains("dashboard_latest_error 1\n"));
        assert!(text.contains("dashboard_latest_read_errors_total 2\n"));
        assert!(!text.contains("iot_pipeline_events_total"));
    }
}
