//! The `latest.json` document: the live snapshot the dashboard reads (newest and last final window of every
//! device, the pipeline's counters and the fleet views).
//!
//! Readers take what writers may leave out: the seed's document is only `updated_at` and `records` (each record
//! the seed's eight fields, see [`AggregateRecord`]), an older job or another producer writes a part of
//! `pipeline` or of the fleet views, and a float written as `null` (how JSON writers spell NaN) reads as NaN.
//! So `records` is the one required part of the document; every other field, down to each counter of
//! `pipeline` and each figure of a rollup or an alert, has a default when absent, and any subset of them reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::udf::UdfColumn;
use crate::window::{AggregateRecord, number_or_null};

/// The document's file name inside the dataflow's `--out` folder (the dashboard's `--data`).
pub const FILE_NAME: &str = "latest.json";

/// The whole `latest.json` document. Its records are a `Vec` when read; a writer may hand any sequence of
/// [`AggregateRecord`]s that serialises as one (the job makes each record as it is written, not all first).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatestDoc<R = Vec<AggregateRecord>> {
    /// When the document was written, epoch seconds (a float, as Python's `time.time()` writes it, reads too).
    #[serde(default, deserialize_with = "whole_seconds")]
    pub updated_at: u64,
    /// The job's watermark, RFC 3339 UTC; `null` before the first event (and when absent).
    #[serde(default)]
    pub watermark: Option<String>,
    /// Newest window of every device (live or final) and last final window of every device. The one field a
    /// document must have: it is what tells a `latest.json` from any other JSON object.
    pub records: R,
    /// Pipeline health counters (absent in the seed's document).
    #[serde(default)]
    pub pipeline: PipelineStats,
    /// Fleet views maintained incrementally from final windows.
    #[serde(default)]
    pub fleet: FleetView,
    /// The job's window kind and sizes (absent in documents of older jobs: tumbling windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<crate::window_kind::WindowKind>,
    /// The UDF columns every record carries, in `--udf` order (absent without `--udf`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub udfs: Vec<UdfColumn>,
}

/// Epoch seconds as an integer or a float (truncated); negative, `null` or absent: 0.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = Option::<f64>::deserialize(d)?.unwrap_or(0.0);
    Ok(if v.is_finite() && v > 0.0 { v as u64 } else { 0 })
}

/// Pipeline health counters, one home for `latest.json`, the progress log and Prometheus. Every counter reads as
/// 0 (a rate as 0.0) when the document leaves it out, so a writer of any subset of them is read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineStats {
    /// Valid, on-time events aggregated since the job started (including restored progress).
    pub events_total: u64,
    /// Late events dead-lettered.
    pub late_total: u64,
    /// Bad events dead-lettered.
    pub bad_total: u64,
    /// Records read per second over the last trigger interval.
    #[serde(deserialize_with = "number_or_null")]
    pub input_rate: f64,
    /// Mean time to process one input batch over the last trigger interval, milliseconds.
    #[serde(deserialize_with = "number_or_null")]
    pub batch_ms: f64,
    /// Records in Kafka not yet read (sum over partitions; 0 for file input).
    pub lag: u64,
    /// Wall clock minus the watermark, milliseconds.
    pub watermark_delay_ms: i64,
    /// Timely workers across all processes.
    pub workers: usize,
    /// Bad events per reason code.
    pub bad_by_reason: BTreeMap<String, u64>,
    /// Windows currently open (not yet final).
    pub open_windows: u64,
    /// Final windows emitted.
    pub final_windows: u64,
    /// Errors met inside the job's operators (a failed write, a Kafka error), summed over kinds.
    pub errors_total: u64,
    /// Errors met inside the job's operators, per kind (`parquet_write`, `input_read`, …).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Data-loss incidents let through with `--on-data-loss continue`: times a partition's log no longer held
    /// the offset to read next (records removed before they were read, a recreated topic, another cluster).
    pub data_loss_total: u64,
    /// Records known to be skipped by those incidents (records removed below the log start; a recreated
    /// topic's or another cluster's loss is unknown and counts in `data_loss_total` only).
    pub skipped_records: u64,
    /// Rows whose UDF value is null because the function failed on them (panic or error), per UDF.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub udf_errors: BTreeMap<String, u64>,
}

/// Fleet-wide views derived from final windows (each part empty when the document leaves it out).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetView {
    /// Devices that have at least one final window.
    pub devices: u64,
    /// One rollup per location, over each device's latest final window.
    pub locations: Vec<LocationRollup>,
    /// Current alerts, one per (device, kind).
    pub alerts: Vec<Alert>,
}

/// Rollup of the latest final windows of the devices at one location. A figure the document leaves out reads
/// as 0 for a count and NaN for a mean or a minimum (no number is made up), the location as empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocationRollup {
    /// The location.
    pub location: String,
    /// Devices at the location.
    pub devices: u64,
    /// Events in those windows.
    pub events: u64,
    /// Event-weighted mean temperature.
    #[serde(deserialize_with = "number_or_null")]
    pub avg_temperature: f64,
    /// Event-weighted mean humidity.
    #[serde(deserialize_with = "number_or_null")]
    pub avg_humidity: f64,
    /// Lowest battery.
    #[serde(deserialize_with = "number_or_null")]
    pub min_battery: f64,
    /// Warn statuses in those windows.
    pub warn_count: u64,
    /// Error statuses in those windows.
    pub error_count: u64,
}

/// One active alert. A field the document leaves out reads as empty text, or NaN for the value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Alert {
    /// Device raising it.
    pub device_id: String,
    /// `battery_low`, `status_error`, `temperature_high` or `temperature_low`.
    pub kind: String,
    /// The value that raised it.
    #[serde(deserialize_with = "number_or_null")]
    pub value: f64,
    /// End of the window it was seen in, RFC 3339 UTC.
    pub window_end: String,
}

impl Default for LocationRollup {
    fn default() -> Self {
        LocationRollup {
            location: String::new(),
            devices: 0,
            events: 0,
            avg_temperature: f64::NAN,
            avg_humidity: f64::NAN,
            min_battery: f64::NAN,
            warn_count: 0,
            error_count: 0,
        }
    }
}

impl Default for Alert {
    fn default() -> Self {
        Alert {
            device_id: String::new(),
            kind: String::new(),
            value: f64::NAN,
            window_end: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_minimal_document_reads() {
        let seed = r#"{"updated_at": 1730638580.25,
            "records": [{"device_id":"d","window_start":"2024-11-03T14:30:00","window_end":"2024-11-03T14:30:10",
                         "count":40,"avg_temperature":24.5,"avg_humidity":54.8,"min_battery":80.1,"max_battery":85.3}]}"#;
        let doc: LatestDoc = serde_json::from_str(seed).unwrap();
        assert_eq!((doc.updated_at, doc.records.len()), (1_730_638_580, 1));
        assert_eq!((doc.watermark, doc.pipeline), (None, PipelineStats::default()));
        assert_eq!((doc.window, doc.udfs.len()), (None, 0));
    }

    #[test]
    fn a_document_needs_only_its_records() {
        let doc: LatestDoc = serde_json::from_str(r#"{"records": []}"#).unwrap();
        assert_eq!(doc, LatestDoc::default());
        let nulls: LatestDoc =
            serde_json::from_str(r#"{"updated_at": null, "watermark": null, "records": []}"#).unwrap();
        assert_eq!(nulls, LatestDoc::default());
        let err = serde_json::from_str::<LatestDoc>(r#"{"updated_at": 1}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `records`"), "{err}");
    }

    #[test]
    fn a_pipeline_object_with_any_subset_of_its_counters_reads() {
        let empty: PipelineStats = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, PipelineStats::default());
        let older: PipelineStats =
            serde_json::from_str(r#"{"events_total": 5, "late_total": 2, "bad_total": 1}"#).unwrap();
        assert_eq!(
            older,
            PipelineStats {
                events_total: 5,
                late_total: 2,
                bad_total: 1,
                ..PipelineStats::default()
            }
        );
        let nan: PipelineStats = serde_json::from_str(r#"{"input_rate": null, "lag": 3}"#).unwrap();
        assert!(nan.input_rate.is_nan() && nan.batch_ms == 0.0 && nan.lag == 3);
        let doc: LatestDoc = serde_json::from_str(
            r#"{"records": [], "pipeline": {"events_total": 5, "late_total": 2, "bad_total": 1}}"#,
        )
        .unwrap();
        assert_eq!(doc.pipeline, older);
    }

    #[test]
    fn fleet_views_with_any_subset_of_their_parts_read() {
        let empty: FleetView = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, FleetView::default());
        let devices: FleetView = serde_json::from_str(r#"{"devices": 4}"#).unwrap();
        assert_eq!(
            (devices.devices, devices.locations.len(), devices.alerts.len()),
            (4, 0, 0)
        );
    }

    #[test]
    fn a_location_rollup_with_any_subset_of_its_figures_reads() {
        let r: LocationRollup = serde_json::from_str(r#"{"location": "lab", "devices": 2}"#).unwrap();
        assert_eq!(
            (r.location.as_str(), r.devices, r.events, r.warn_count),
            ("lab", 2, 0, 0)
        );
        assert!(r.avg_temperature.is_nan() && r.avg_humidity.is_nan() && r.min_battery.is_nan());
        let nothing: LocationRollup = serde_json::from_str("{}").unwrap();
        assert_eq!((nothing.location.as_str(), nothing.error_count), ("", 0));
        // A location whose windows hold no event has no mean: its writer spells the NaN `null`.
        let no_events: LocationRollup =
            serde_json::from_str(r#"{"location": "lab", "avg_temperature": null, "min_battery": 80.5}"#).unwrap();
        assert!(no_events.avg_temperature.is_nan());
        assert_eq!(no_events.min_battery, 80.5);
    }

    #[test]
    fn an_alert_with_any_subset_of_its_fields_reads() {
        let a: Alert = serde_json::from_str(r#"{"device_id": "d", "kind": "battery_low"}"#).unwrap();
        assert_eq!(
            (a.device_id.as_str(), a.kind.as_str(), a.window_end.as_str()),
            ("d", "battery_low", "")
        );
        assert!(a.value.is_nan());
        let nothing: Alert = serde_json::from_str("{}").unwrap();
        assert_eq!((nothing.device_id.as_str(), nothing.kind.as_str()), ("", ""));
        let null: Alert = serde_json::from_str(r#"{"value": null}"#).unwrap();
        assert!(null.value.is_nan());
    }

    #[test]
    fn fleet_views_written_in_full_read_back_equal() {
        let fleet = FleetView {
            devices: 1,
            locations: vec![LocationRollup {
                location: "lab".into(),
                devices: 1,
                events: 4,
                avg_temperature: 21.5,
                avg_humidity: 40.0,
                min_battery: 80.0,
                warn_count: 1,
                error_count: 0,
            }],
            alerts: vec![Alert {
                device_id: "d".into(),
                kind: "battery_low".into(),
                value: 9.5,
                window_end: "2024-11-03T14:30:10Z".into(),
            }],
        };
        let back: FleetView = serde_json::from_str(&serde_json::to_string(&fleet).unwrap()).unwrap();
        assert_eq!(back, fleet);
    }
}
