//! The `latest.json` document: the live snapshot the dashboard reads (newest and last final window of every
//! device, the pipeline's counters and the fleet views).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::udf::UdfColumn;
use crate::window::AggregateRecord;

/// The whole `latest.json` document. Its records are a `Vec` when read; a writer may hand any sequence of
/// [`AggregateRecord`]s that serialises as one (the job makes each record as it is written, not all first).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatestDoc<R = Vec<AggregateRecord>> {
    /// When the document was written, epoch seconds (a float, as Python's `time.time()` writes it, reads too).
    #[serde(default, deserialize_with = "whole_seconds")]
    pub updated_at: u64,
    /// The job's watermark, RFC 3339 UTC; `null` before the first event.
    pub watermark: Option<String>,
    /// Newest window of every device (live or final) and last final window of every device.
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

/// Epoch seconds as an integer or a float (truncated); negative or absent: 0.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = f64::deserialize(d)?;
    Ok(if v.is_finite() && v > 0.0 { v as u64 } else { 0 })
}

/// Pipeline health counters, one home for `latest.json`, the progress log and Prometheus.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineStats {
    /// Valid, on-time events aggregated since the job started (including restored progress).
    pub events_total: u64,
    /// Late events dead-lettered.
    pub late_total: u64,
    /// Bad events dead-lettered.
    pub bad_total: u64,
    /// Records read per second over the last trigger interval.
    pub input_rate: f64,
    /// Mean time to process one input batch over the last trigger interval, milliseconds.
    pub batch_ms: f64,
    /// Records in Kafka not yet read (sum over partitions; 0 for file input).
    pub lag: u64,
    /// Wall clock minus the watermark, milliseconds.
    pub watermark_delay_ms: i64,
    /// Timely workers across all processes.
    pub workers: usize,
    /// Bad events per reason code.
    #[serde(default)]
    pub bad_by_reason: BTreeMap<String, u64>,
    /// Windows currently open (not yet final).
    #[serde(default)]
    pub open_windows: u64,
    /// Final windows emitted.
    #[serde(default)]
    pub final_windows: u64,
    /// Errors met inside the job's operators (a failed write, a Kafka error), summed over kinds.
    #[serde(default)]
    pub errors_total: u64,
    /// Errors met inside the job's operators, per kind (`parquet_write`, `input_read`, …).
    #[serde(default)]
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Data-loss incidents let through with `--on-data-loss continue`: times a partition's log no longer held
    /// the offset to read next (records removed before they were read, a recreated topic, another cluster).
    #[serde(default)]
    pub data_loss_total: u64,
    /// Records known to be skipped by those incidents (records removed below the log start; a recreated
    /// topic's or another cluster's loss is unknown and counts in `data_loss_total` only).
    #[serde(default)]
    pub skipped_records: u64,
    /// Rows whose UDF value is null because the function failed on them (panic or error), per UDF.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub udf_errors: BTreeMap<String, u64>,
}

/// Fleet-wide views derived from final windows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetView {
    /// Devices that have at least one final window.
    pub devices: u64,
    /// One rollup per location, over each device's latest final window.
    pub locations: Vec<LocationRollup>,
    /// Current alerts, one per (device, kind).
    pub alerts: Vec<Alert>,
}

/// Rollup of the latest final windows of the devices at one location.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocationRollup {
    /// The location.
    pub location: String,
    /// Devices at the location.
    pub devices: u64,
    /// Events in those windows.
    pub events: u64,
    /// Event-weighted mean temperature.
    pub avg_temperature: f64,
    /// Event-weighted mean humidity.
    pub avg_humidity: f64,
    /// Lowest battery.
    pub min_battery: f64,
    /// Warn statuses in those windows.
    pub warn_count: u64,
    /// Error statuses in those windows.
    pub error_count: u64,
}

/// One active alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Device raising it.
    pub device_id: String,
    /// `battery_low`, `status_error`, `temperature_high` or `temperature_low`.
    pub kind: String,
    /// The value that raised it.
    pub value: f64,
    /// End of the window it was seen in, RFC 3339 UTC.
    pub window_end: String,
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
}
