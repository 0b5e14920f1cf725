//! The `latest.json` document: the live snapshot the dashboard reads (newest and last final window of every
//! group of the job's query, the pipeline's counters and the fleet views).
//!
//! A document states its query (`query`) and its output columns (`columns`, a [`OutputSchema`]); its records
//! are output rows of those columns, each a JSON object of column values plus `final` ([`Record`]). A document
//! without `columns` is the seed's: its columns are the built-in job's ([`seed_schema`]) plus any other record
//! field as a nullable value column, and its records read through the seed's typed view ([`AggregateRecord`]).
//! [`LatestDoc::schema`] gives the columns of either, [`LatestDoc::check_records`] fits the records to them.
//!
//! Readers take what writers may leave out: the seed's document is only `updated_at` and `records` (each record
//! the seed's eight fields, see [`AggregateRecord`]), an older job or another producer writes a part of
//! `pipeline` or of the fleet views, and a float written as `null` (how JSON writers spell NaN) reads as NaN.
//! So `records` is the one required part of the document; every other field, down to each counter of
//! `pipeline` and each figure of a rollup or an alert, has a default when absent, and any subset of them reads.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::output::{OutputColumn, OutputSchema, Role, WINDOW_END, WINDOW_START};
use crate::udf::{UdfColumn, UdfType};
use crate::value::{DataType, parse_timestamp};
use crate::window::{AggregateRecord, number_or_null};

/// The document's file name inside the dataflow's `--out` folder (the dashboard's `--data`).
pub const FILE_NAME: &str = "latest.json";

/// The whole `latest.json` document. Its records are a `Vec` of [`Record`]s when read; a writer may hand any
/// sequence of records that serialises as one (the job makes each record as it is written, not all first), and
/// a reader that needs the seed's typed records may read `LatestDoc<Vec<AggregateRecord>>` ([`SeedDoc`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatestDoc<R = Vec<Record>> {
    /// When the document was written, epoch seconds (a float, as Python's `time.time()` writes it, reads too).
    #[serde(default, deserialize_with = "whole_seconds")]
    pub updated_at: u64,
    /// The job's watermark, RFC 3339 UTC; `null` before the first event (and when absent).
    #[serde(default)]
    pub watermark: Option<String>,
    /// For every group (the tuple of its key values): its last final window, then its newest window if that is
    /// another one. The one field a document must have: it is what tells a `latest.json` from any other JSON
    /// object.
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
    /// The job's query (absent in documents of jobs older than SQL jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<JobQuery>,
    /// The columns of every record (absent: the seed's, see [`LatestDoc::schema`]). A list that is not an output
    /// schema (no key first, window bounds out of place, two columns of one name) makes the document unreadable.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "checked_schema"
    )]
    pub columns: Option<OutputSchema>,
}

/// A document read with the seed's typed records, for code that needs the seed's fields by name (it reads only
/// documents whose records have the seed's eight fields).
pub type SeedDoc = LatestDoc<Vec<AggregateRecord>>;

/// The job's query as `latest.json` states it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobQuery {
    /// The job's SQL text, as given.
    pub sql: String,
    /// Whether it is the built-in job (the seed's query, run without `--sql`).
    pub builtin: bool,
}

/// An output schema read from JSON and checked ([`OutputSchema::new`]).
fn checked_schema<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<OutputSchema>, D::Error> {
    match Option::<Vec<OutputColumn>>::deserialize(d)? {
        None => Ok(None),
        Some(columns) => OutputSchema::new(columns)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("`columns`: {e}"))),
    }
}

/// The flag of a record that says its window is final.
pub const FINAL: &str = "final";

/// What joins the key texts of a group's label: `site-a / s-1`.
pub const LABEL_SEPARATOR: &str = " / ";

/// One record of `latest.json`: an output row, each column's value under its name (TEXT a string, BIGINT an
/// integer, DOUBLE a number or `null`, BOOLEAN, TIMESTAMP and window bounds RFC 3339 UTC strings), plus
/// `final`. Any JSON object reads; its fields are kept as written. The seed's typed view of a record is
/// [`AggregateRecord`] (`AggregateRecord::try_from(&record)`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Record(Map<String, Json>);

impl Record {
    /// A record of these fields.
    pub fn new(fields: Map<String, Json>) -> Record {
        Record(fields)
    }

    /// Every field, by name (`final` among them).
    pub fn fields(&self) -> &Map<String, Json> {
        &self.0
    }

    /// The field called `name`, as written (`Some(null)` for a null, `None` when absent).
    pub fn get(&self, name: &str) -> Option<&Json> {
        self.0.get(name)
    }

    /// True once the watermark has passed the window's end (false when the record does not say).
    pub fn is_final(&self) -> bool {
        self.0.get(FINAL).and_then(Json::as_bool).unwrap_or(false)
    }

    /// The field `name` as a finite number (`None` for null, absent, text and the like).
    pub fn number(&self, name: &str) -> Option<f64> {
        self.0.get(name).and_then(Json::as_f64).filter(|v| v.is_finite())
    }

    /// The field `name` as text.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Json::as_str)
    }

    /// The field `name` as a time, epoch ms: RFC 3339, or without a zone (`2024-11-03T14:30:00`, also with a
    /// space for the `T`, as the seed's job writes), which is UTC.
    pub fn time_ms(&self, name: &str) -> Option<i64> {
        self.text(name).and_then(parse_timestamp)
    }

    /// The start of the record's window, epoch ms.
    pub fn window_start_ms(&self) -> Option<i64> {
        self.time_ms(WINDOW_START)
    }

    /// The end of the record's window, epoch ms.
    pub fn window_end_ms(&self) -> Option<i64> {
        self.time_ms(WINDOW_END)
    }

    /// The texts of the record's key values under `schema`, in key order ([`json_key_text`]; an absent key as
    /// the empty text).
    pub fn key_texts(&self, schema: &OutputSchema) -> Vec<String> {
        schema
            .keys()
            .iter()
            .map(|k| self.0.get(&k.name).map_or_else(String::new, json_key_text))
            .collect()
    }

    /// The record's group label under `schema`: its key texts joined by [`LABEL_SEPARATOR`] (for the seed, the
    /// device id).
    pub fn label(&self, schema: &OutputSchema) -> String {
        label_of(&self.key_texts(schema))
    }
}

impl From<AggregateRecord> for Record {
    fn from(r: AggregateRecord) -> Record {
        match serde_json::to_value(r) {
            Ok(Json::Object(fields)) => Record(fields),
            _ => unreachable!("an aggregate record serialises as a JSON object"),
        }
    }
}

impl TryFrom<&Record> for AggregateRecord {
    type Error = serde_json::Error;

    /// The seed's typed view: the seed's eight fields are required, the others default (see
    /// [`AggregateRecord`]); fields beyond the seed's land in [`AggregateRecord::udf`].
    fn try_from(r: &Record) -> Result<AggregateRecord, serde_json::Error> {
        AggregateRecord::deserialize(&r.0)
    }
}

/// The text of a NULL key (a temporally joined table's column where no version matched), as groups are labelled
/// and looked up: the group of `site = NULL` is `NULL` (a text key `"NULL"` would share the label).
pub const NULL_KEY_TEXT: &str = "NULL";

/// A key value's text, as [`crate::output::key_text`] gives it for a typed value: TEXT as it is, BIGINT in
/// decimal, BOOLEAN `true`/`false`, null as [`NULL_KEY_TEXT`] (a number as written, any other JSON as JSON).
pub fn json_key_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => NULL_KEY_TEXT.to_string(),
        other => other.to_string(),
    }
}

/// A group's label: its key texts joined by [`LABEL_SEPARATOR`].
pub fn label_of(key_texts: &[String]) -> String {
    key_texts.join(LABEL_SEPARATOR)
}

/// Why a document's records do not fit its columns.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("record {index} (counting from 0): {reason}")]
pub struct RecordError {
    /// The record's position in `records`.
    pub index: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl<R> LatestDoc<R> {
    /// Whether the document is the built-in job's (the seed's query): it states no columns, or its query is the
    /// built-in one.
    pub fn is_builtin(&self) -> bool {
        self.columns.is_none() || self.query.as_ref().is_some_and(|q| q.builtin)
    }

    /// The document without its records, and its records: for a reader that keeps them apart (the dashboard
    /// holds them grouped) and the rest of the document beside them.
    pub fn split_records(self) -> (LatestDoc<()>, R) {
        let LatestDoc {
            updated_at,
            watermark,
            records,
            pipeline,
            fleet,
            window,
            udfs,
            query,
            columns,
        } = self;
        let rest = LatestDoc {
            updated_at,
            watermark,
            records: (),
            pipeline,
            fleet,
            window,
            udfs,
            query,
            columns,
        };
        (rest, records)
    }
}

impl LatestDoc {
    /// The document's output columns: those it declares, or for a document without `columns` (the seed's) the
    /// built-in job's ([`seed_schema`] with the announced `udfs`) followed by every other field its records hold,
    /// as a nullable value column typed by its values (BOOLEAN, BIGINT, DOUBLE when a value has a fraction, TEXT;
    /// TEXT when every value is null), in name order.
    pub fn schema(&self) -> OutputSchema {
        if let Some(columns) = &self.columns {
            return columns.clone();
        }
        let mut columns = seed_schema(&self.udfs).columns().to_vec();
        let mut extra: BTreeMap<&str, Seen> = BTreeMap::new();
        for r in &self.records {
            for (name, v) in r.fields() {
                if name != FINAL && !columns.iter().any(|c| &c.name == name) {
                    extra.entry(name).or_default().add(v);
                }
            }
        }
        // Names are unique regardless of case in a schema: a field that differs from a column only in case is
        // kept in the records but gets no column of its own.
        let mut taken: BTreeSet<String> = columns.iter().map(|c| c.name.to_ascii_lowercase()).collect();
        taken.insert(FINAL.to_string());
        for (name, seen) in extra {
            if taken.insert(name.to_ascii_lowercase()) {
                columns.push(OutputColumn {
                    name: name.to_string(),
                    ty: seen.data_type(),
                    role: Role::Value,
                    nullable: true,
                });
            }
        }
        OutputSchema::new(columns).expect("the seed's columns and names unique regardless of case make a schema")
    }

    /// Fits the records to the document's columns. A document without `columns` is the seed's: each record is
    /// read through the seed's typed view, so it needs the seed's eight fields and gets the others' defaults
    /// (`stddev_temperature` null, status counts 0, `final` false), as readers of the seed's document always had
    /// them. A document with `columns` keeps its records as written; each needs a value for every key (null only
    /// for a nullable key: a temporally joined table's column) and both window bounds as times (a value column
    /// may be absent or null).
    pub fn check_records(&mut self) -> Result<(), RecordError> {
        let error = |index, reason: String| RecordError { index, reason };
        let Some(schema) = &self.columns else {
            for (index, r) in self.records.iter_mut().enumerate() {
                let typed = AggregateRecord::try_from(&*r).map_err(|e| error(index, e.to_string()))?;
                *r = Record::from(typed);
            }
            return Ok(());
        };
        for (index, r) in self.records.iter().enumerate() {
            for key in schema.keys() {
                let value = r.get(&key.name);
                if value.is_none() || (!key.nullable && value.is_some_and(Json::is_null)) {
                    return Err(error(index, format!("no value for the key `{}`", key.name)));
                }
            }
            for bound in [WINDOW_START, WINDOW_END] {
                if r.time_ms(bound).is_none() {
                    return Err(error(index, format!("`{bound}` is not an RFC 3339 time")));
                }
            }
        }
        Ok(())
    }
}

/// What the records of a seed's document hold in a field beyond the seed's.
#[derive(Default)]
struct Seen {
    boolean: bool,
    integer: bool,
    fraction: bool,
    text: bool,
}

impl Seen {
    fn add(&mut self, v: &Json) {
        match v {
            Json::Bool(_) => self.boolean = true,
            Json::Number(n) if n.is_f64() => self.fraction = true,
            Json::Number(_) => self.integer = true,
            Json::Null => {}
            _ => self.text = true,
        }
    }

    fn data_type(&self) -> DataType {
        match (self.boolean, self.integer || self.fraction, self.text) {
            (true, false, false) => DataType::Boolean,
            (false, true, false) if self.fraction => DataType::Double,
            (false, true, false) => DataType::BigInt,
            _ => DataType::Text,
        }
    }
}

/// The columns of the built-in job (the seed's query): `device_id` (TEXT, key), `window_start`, `window_end`,
/// `count` (BIGINT), `avg_temperature`, `avg_humidity`, `min_battery`, `max_battery`, `stddev_temperature`
/// (DOUBLE, nullable: NaN is written as `null`), `warn_count`, `error_count` (BIGINT), then one nullable value
/// column per UDF of `udfs` (booleans BOOLEAN, integers BIGINT, floats DOUBLE, strings TEXT).
pub fn seed_schema(udfs: &[UdfColumn]) -> OutputSchema {
    let column = |name: &str, ty, role, nullable| OutputColumn {
        name: name.to_string(),
        ty,
        role,
        nullable,
    };
    let mut columns = vec![
        column(crate::partition::PARTITION_COLUMN, DataType::Text, Role::Key, false),
        column(WINDOW_START, DataType::Timestamp, Role::Window, false),
        column(WINDOW_END, DataType::Timestamp, Role::Window, false),
        column("count", DataType::BigInt, Role::Value, false),
    ];
    for name in [
        "avg_temperature",
        "avg_humidity",
        "min_battery",
        "max_battery",
        "stddev_temperature",
    ] {
        columns.push(column(name, DataType::Double, Role::Value, true));
    }
    for name in ["warn_count", "error_count"] {
        columns.push(column(name, DataType::BigInt, Role::Value, false));
    }
    for u in udfs {
        let ty = match u.data_type {
            UdfType::Boolean => DataType::Boolean,
            UdfType::Int32 | UdfType::Int64 | UdfType::UInt32 | UdfType::UInt64 => DataType::BigInt,
            UdfType::Float32 | UdfType::Float64 => DataType::Double,
            UdfType::Utf8 => DataType::Text,
        };
        if !columns.iter().any(|c| c.name.eq_ignore_ascii_case(&u.name)) {
            columns.push(column(&u.name, ty, Role::Value, true));
        }
    }
    OutputSchema::new(columns).expect("the seed's columns make a schema")
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
    /// Valid events the query's `WHERE` left out (they still move the watermark; never dead-lettered).
    pub filtered_total: u64,
    /// With a temporal join: events that met no version of the joined table (NULLs with `LEFT JOIN`; an inner
    /// join drops them).
    pub unmatched_total: u64,
    /// With a temporal join: versions of the joined table held (one version set per key, compacted once no open
    /// window can need an older version).
    pub join_versions: u64,
    /// With a temporal join: keys of the joined table held.
    pub join_keys: u64,
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
    /// Processes of the cluster (1 without one).
    pub processes: usize,
    /// Times `dataflow cluster` restarted every process of the cluster after a lost one, since the supervisor
    /// started (0 without it; on Kubernetes the pods' restarts are Kubernetes' own count).
    pub restarts: u64,
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
    /// Why the fleet views are not kept: one sentence naming the columns the query's output lacks (absent when
    /// they are kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
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
            unavailable: None,
        };
        let back: FleetView = serde_json::from_str(&serde_json::to_string(&fleet).unwrap()).unwrap();
        assert_eq!(back, fleet);
    }

    /// A document of the non-seed example query (one key), as its job writes it.
    const SENSORS: &str = r#"{"updated_at": 1730638580, "watermark": "2024-11-03T14:29:10Z",
        "query": {"sql": "SELECT sensor_id, ... GROUP BY sensor_id, window_start, window_end", "builtin": false},
        "columns": [
          {"name": "sensor_id", "type": "TEXT", "role": "key", "nullable": false},
          {"name": "window_start", "type": "TIMESTAMP", "role": "window", "nullable": false},
          {"name": "window_end", "type": "TIMESTAMP", "role": "window", "nullable": false},
          {"name": "n", "type": "BIGINT", "role": "value", "nullable": false},
          {"name": "avg_pressure", "type": "DOUBLE", "role": "value", "nullable": true},
          {"name": "site", "type": "TEXT", "role": "value", "nullable": true}],
        "records": [
          {"sensor_id": "s-1", "window_start": "2024-11-03T14:30:00Z", "window_end": "2024-11-03T14:30:10Z",
           "n": 4, "avg_pressure": null, "site": "plant-a", "final": true}],
        "fleet": {"devices": 0, "locations": [], "alerts": [],
                  "unavailable": "the output has no avg_temperature, avg_humidity, min_battery"}}"#;

    #[test]
    fn a_document_of_any_query_reads_with_its_query_columns_and_records() {
        let mut doc: LatestDoc = serde_json::from_str(SENSORS).unwrap();
        assert_eq!(doc.query.as_ref().map(|q| q.builtin), Some(false));
        assert!(!doc.is_builtin());
        let schema = doc.schema();
        assert_eq!(Some(&schema), doc.columns.as_ref(), "the declared columns");
        assert_eq!(schema.keys()[0].name, "sensor_id");
        doc.check_records().unwrap();
        let r = &doc.records[0];
        assert_eq!(
            (r.label(&schema), r.is_final(), r.number("n")),
            ("s-1".into(), true, Some(4.0))
        );
        assert_eq!(r.get("avg_pressure"), Some(&Json::Null));
        assert_eq!(r.number("avg_pressure"), None);
        assert_eq!(r.window_start_ms(), Some(1_730_644_200_000));
        assert!(doc.fleet.unavailable.as_deref().unwrap().contains("avg_temperature"));
        // Written again, the document keeps every field it was read with.
        let again: LatestDoc = serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
        assert_eq!(again, doc);
    }

    #[test]
    fn columns_that_are_no_output_schema_make_the_document_unreadable() {
        let no_key = SENSORS.replace(r#""role": "key""#, r#""role": "value""#);
        let err = serde_json::from_str::<LatestDoc>(&no_key).unwrap_err();
        assert!(
            err.to_string().contains("`columns`: an output needs at least one key"),
            "{err}"
        );
    }

    #[test]
    fn a_record_without_its_key_or_window_does_not_fit_its_columns() {
        let mut doc: LatestDoc = serde_json::from_str(&SENSORS.replace(r#""sensor_id": "s-1", "#, "")).unwrap();
        let err = doc.check_records().unwrap_err();
        assert_eq!(
            (err.index, err.reason.as_str()),
            (0, "no value for the key `sensor_id`")
        );
        let mut doc: LatestDoc = serde_json::from_str(&SENSORS.replace("2024-11-03T14:30:10Z", "soon")).unwrap();
        assert!(doc.check_records().unwrap_err().reason.contains("`window_end`"));
        let null_key = SENSORS.replace(r#""sensor_id": "s-1""#, r#""sensor_id": null"#);
        let mut doc: LatestDoc = serde_json::from_str(&null_key).unwrap();
        assert!(doc.check_records().is_err(), "a key that is never NULL");
        // A key of a temporally joined table's column may be NULL (no version matched).
        let nullable = null_key.replace(
            r#"{"name": "sensor_id", "type": "TEXT", "role": "key", "nullable": false}"#,
            r#"{"name": "sensor_id", "type": "TEXT", "role": "key", "nullable": true}"#,
        );
        let mut doc: LatestDoc = serde_json::from_str(&nullable).unwrap();
        doc.check_records().unwrap();
    }

    #[test]
    fn keys_of_two_columns_make_one_label_and_typed_keys_their_text() {
        let schema = OutputSchema::new(vec![
            OutputColumn {
                name: "site".into(),
                ty: DataType::Text,
                role: Role::Key,
                nullable: false,
            },
            OutputColumn {
                name: "line".into(),
                ty: DataType::BigInt,
                role: Role::Key,
                nullable: false,
            },
            OutputColumn {
                name: WINDOW_START.into(),
                ty: DataType::Timestamp,
                role: Role::Window,
                nullable: false,
            },
            OutputColumn {
                name: WINDOW_END.into(),
                ty: DataType::Timestamp,
                role: Role::Window,
                nullable: false,
            },
        ])
        .unwrap();
        let r: Record = serde_json::from_str(r#"{"site": "a/b", "line": -7, "final": false}"#).unwrap();
        assert_eq!(r.key_texts(&schema), ["a/b", "-7"]);
        assert_eq!(r.label(&schema), "a/b / -7");
        assert_eq!(json_key_text(&Json::Bool(true)), "true");
    }

    #[test]
    fn the_seeds_document_has_the_seeds_columns_and_its_extra_fields() {
        let seed = r#"{"records": [
            {"device_id":"d","window_start":"2024-11-03T14:30:00","window_end":"2024-11-03T14:30:10","count":40,
             "avg_temperature":24.5,"avg_humidity":54.8,"min_battery":80.1,"max_battery":85.3,
             "heat_index": 27.5, "comfort": "warm", "alarm": true, "level": 3, "gone": null},
            {"device_id":"e","window_start":"2024-11-03T14:30:00","window_end":"2024-11-03T14:30:10","count":40,
             "avg_temperature":24.5,"avg_humidity":54.8,"min_battery":80.1,"max_battery":85.3,
             "heat_index": null, "level": 3.5, "COUNT": 1}]}"#;
        let doc: LatestDoc = serde_json::from_str(seed).unwrap();
        assert!(doc.is_builtin());
        let schema = doc.schema();
        let names: Vec<&str> = schema.columns().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
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
                "alarm",
                "comfort",
                "gone",
                "heat_index",
                "level"
            ],
            "COUNT differs from count only in case: no column of its own"
        );
        let ty = |name: &str| schema.column(name).unwrap().ty;
        assert_eq!(
            [ty("alarm"), ty("comfort"), ty("gone"), ty("heat_index"), ty("level")],
            [
                DataType::Boolean,
                DataType::Text,
                DataType::Text,
                DataType::Double,
                DataType::Double
            ]
        );
        assert!(
            schema.columns()[11..]
                .iter()
                .all(|c| c.nullable && c.role == Role::Value)
        );
        // Announced UDF columns come first, in `--udf` order, typed from the announcement.
        let udfs = vec![crate::UdfColumn {
            name: "level".into(),
            kind: crate::UdfKind::Scalar,
            data_type: UdfType::Int64,
        }];
        let announced = LatestDoc { udfs, ..doc }.schema();
        assert_eq!(announced.columns()[11].name, "level");
        assert_eq!(announced.columns()[11].ty, DataType::BigInt);
        assert_eq!(seed_schema(&[]).columns().len(), 11);
    }

    #[test]
    fn the_seeds_records_read_through_its_typed_view_with_its_defaults() {
        let seed = r#"{"records": [{"device_id":"d","window_start":"2024-11-03T14:30:00",
            "window_end":"2024-11-03T14:30:10","count":40,"avg_temperature":24.5,"avg_humidity":54.8,
            "min_battery":80.1,"max_battery":85.3,"heat_index":27.5}]}"#;
        let mut doc: LatestDoc = serde_json::from_str(seed).unwrap();
        doc.check_records().unwrap();
        let r = &doc.records[0];
        assert_eq!(r.get("stddev_temperature"), Some(&Json::Null));
        assert_eq!(
            (r.number("warn_count"), r.number("error_count")),
            (Some(0.0), Some(0.0))
        );
        assert_eq!((r.is_final(), r.number("heat_index")), (false, Some(27.5)));
        let typed = AggregateRecord::try_from(r).unwrap();
        assert_eq!((typed.device_id.as_str(), typed.count), ("d", 40));
        assert_eq!(Record::from(typed), *r, "the typed view and the record agree");

        let mut short: LatestDoc = serde_json::from_str(&seed.replace(r#""count":40,"#, "")).unwrap();
        let err = short.check_records().unwrap_err();
        assert!(err.reason.contains("count"), "{err}");
        let typed: SeedDoc = serde_json::from_str(seed).unwrap();
        assert_eq!(
            typed.records[0].avg_temperature, 24.5,
            "the seed's typed reading still works"
        );
    }

    #[test]
    fn a_document_splits_into_its_records_and_the_rest() {
        let doc: LatestDoc = serde_json::from_str(SENSORS).unwrap();
        let (rest, records) = doc.clone().split_records();
        assert_eq!(records, doc.records);
        assert_eq!(
            (rest.columns, rest.query, rest.fleet),
            (doc.columns, doc.query, doc.fleet)
        );
    }

    #[test]
    fn the_seeds_document_is_written_as_before() {
        let doc: LatestDoc = LatestDoc {
            updated_at: 7,
            ..LatestDoc::default()
        };
        let json = serde_json::to_value(&doc).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["fleet", "pipeline", "records", "updated_at", "watermark"]);
        assert_eq!(
            json["fleet"],
            serde_json::json!({"devices": 0, "locations": [], "alerts": []})
        );
    }
}
