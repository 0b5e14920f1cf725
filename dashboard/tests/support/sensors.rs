//! Test data of a query that is not the seed's: the output contract's example (`readings` of plant sensors,
//! 10 s tumbling windows of `COUNT(*) AS n, AVG(pressure) AS avg_pressure, MAX(co2) AS max_co2,
//! STDDEV_SAMP(vibration) AS vibration_sd`), grouped by `sensor_id` (one key, with `LAST_VALUE(site) AS site`
//! as a value) or by `site, sensor_id` (two keys). It gives the output columns, deterministic rows, the
//! `latest.json` the job writes (with `query` and `columns`, fleet views unavailable) and a Parquet history in
//! the contract's layout (`<first key>=<escaped text>/part-*.parquet`, every column but the first key, Arrow
//! types of the contract), its batches made by `model::history::rows` as the job's are.

use model::history::rows::{partition_dir, rows_to_batch};
use model::latest::{JobQuery, LatestDoc, Record};
use model::output::{OutputColumn, OutputSchema, Role};
use model::value::{DataType, Value};
use model::{FleetView, PipelineStats, WindowKind};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::fs;
use std::path::{Path, PathBuf};

use super::{WINDOW_MS, is_live, mix};

/// How the example query groups its windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    /// `GROUP BY sensor_id`: one key; the site is a value (`LAST_VALUE(site) AS site`).
    Sensor,
    /// `GROUP BY site, sensor_id`: two keys.
    SiteAndSensor,
}

/// The sentence the job writes when the fleet views do not apply to its output.
pub const FLEET_UNAVAILABLE: &str = "the fleet views need the columns avg_temperature, avg_humidity, min_battery, \
                                     warn_count and error_count, which this query's output does not have";

/// The job's SQL text.
pub fn sql(keys: Keys) -> String {
    let (select, group) = match keys {
        Keys::Sensor => ("sensor_id", "sensor_id"),
        Keys::SiteAndSensor => ("site, sensor_id", "site, sensor_id"),
    };
    let site_value = if keys == Keys::Sensor {
        ", LAST_VALUE(site) AS site"
    } else {
        ""
    };
    format!(
        "CREATE TABLE readings (\n    sensor_id VARCHAR(64) NOT NULL, site TEXT, event_time TIMESTAMP NOT NULL,\n    \
         pressure DOUBLE, co2 BIGINT, vibration DOUBLE,\n    WATERMARK FOR event_time AS event_time - INTERVAL '30' \
         SECOND\n) WITH ('connector' = 'kafka', 'topic' = 'plant-sensors', 'format' = 'json');\nSELECT {select}, \
         window_start, window_end, COUNT(*) AS n, AVG(pressure) AS avg_pressure,\n       MAX(co2) AS max_co2, \
         STDDEV_SAMP(vibration) AS vibration_sd{site_value}\nFROM TABLE(TUMBLE(TABLE readings, \
         DESCRIPTOR(event_time), INTERVAL '10' SECOND))\nGROUP BY {group}, window_start, window_end;\n"
    )
}

fn column(name: &str, ty: DataType, role: Role, nullable: bool) -> OutputColumn {
    OutputColumn {
        name: name.into(),
        ty,
        role,
        nullable,
    }
}

/// The output columns of the query.
pub fn schema(keys: Keys) -> OutputSchema {
    let mut columns = match keys {
        Keys::Sensor => vec![column("sensor_id", DataType::Text, Role::Key, false)],
        Keys::SiteAndSensor => vec![
            column("site", DataType::Text, Role::Key, false),
            column("sensor_id", DataType::Text, Role::Key, false),
        ],
    };
    columns.extend([
        column("window_start", DataType::Timestamp, Role::Window, false),
        column("window_end", DataType::Timestamp, Role::Window, false),
        column("n", DataType::BigInt, Role::Value, false),
        column("avg_pressure", DataType::Double, Role::Value, true),
        column("max_co2", DataType::BigInt, Role::Value, true),
        column("vibration_sd", DataType::Double, Role::Value, true),
    ]);
    if keys == Keys::Sensor {
        columns.push(column("site", DataType::Text, Role::Value, true));
    }
    OutputSchema::new(columns).expect("the example's columns make a schema")
}

/// One group of the example: a site and a sensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sensor {
    /// The plant site (a key with [`Keys::SiteAndSensor`], a value otherwise).
    pub site: String,
    /// The sensor.
    pub sensor_id: String,
}

/// `n` groups. With [`Keys::Sensor`]: sensors `s-000`, `s-001`, … (the third one `../s/002`, path-like) over
/// three sites. With [`Keys::SiteAndSensor`]: two sites share each sensor id (`site-a / s-000`,
/// `site-b / s-000`, `site-a / s-001`, …), so a site's history folder holds the rows of many sensors.
pub fn sensors(n: usize, keys: Keys) -> Vec<Sensor> {
    (0..n)
        .map(|i| match keys {
            Keys::Sensor => Sensor {
                site: ["site-a", "site-b", "site-c"][i % 3].to_string(),
                sensor_id: if i == 2 {
                    "../s/002".to_string()
                } else {
                    format!("s-{i:03}")
                },
            },
            Keys::SiteAndSensor => Sensor {
                site: ["site-a", "site-b"][i % 2].to_string(),
                sensor_id: format!("s-{:03}", i / 2),
            },
        })
        .collect()
}

/// The row of `sensor` in the window starting at `start`, in the columns of `schema(keys)`: a deterministic
/// function of both, with nulls in the nullable columns now and then. Sensor `s-003` never reports a pressure
/// (its `avg_pressure` is null in every window), so any page of the fixture holds both values and nulls, whatever
/// the wall-clock time it was written at.
pub fn row(keys: Keys, sensor: &Sensor, start: u64) -> Vec<Value> {
    let seed = sensor
        .site
        .bytes()
        .chain(sensor.sensor_id.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3)
        });
    let s = mix(seed ^ start);
    let unit = |k: u64| (mix(s ^ k) >> 11) as f64 / (1u64 << 53) as f64;
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let n = 1 + (mix(s ^ 1) % 40) as i64;
    let pressure = (sensor.sensor_id != "s-003" && !mix(s ^ 2).is_multiple_of(9))
        .then(|| round(950.0 + 100.0 * unit(3) + (seed % 17) as f64));
    let co2 = (!mix(s ^ 4).is_multiple_of(7)).then(|| 400 + (mix(s ^ 5) % 900) as i64);
    let vibration = (n > 1).then(|| round(unit(6) * 3.0));
    let mut values = match keys {
        Keys::Sensor => vec![Value::Text(sensor.sensor_id.as_str().into())],
        Keys::SiteAndSensor => vec![
            Value::Text(sensor.site.as_str().into()),
            Value::Text(sensor.sensor_id.as_str().into()),
        ],
    };
    values.extend([
        Value::Timestamp(start as i64),
        Value::Timestamp((start + WINDOW_MS) as i64),
        Value::Int(n),
        pressure.map_or(Value::Null, Value::Float),
        co2.map_or(Value::Null, Value::Int),
        vibration.map_or(Value::Null, Value::Float),
    ]);
    if keys == Keys::Sensor {
        values.push(Value::Text(sensor.site.as_str().into()));
    }
    values
}

/// A row as a `latest.json` record.
pub fn record(schema: &OutputSchema, row: &[Value], is_final: bool) -> Record {
    let mut fields = serde_json::Map::new();
    for (c, v) in schema.columns().iter().zip(row) {
        fields.insert(c.name.clone(), v.to_json());
    }
    fields.insert("final".into(), is_final.into());
    Record::new(fields)
}

/// The `latest.json` of the query at wall-clock `now_ms`: every sensor's last final window, and for two in
/// three of them the open window after it (first in the records, as the job writes them).
pub fn latest_doc(keys: Keys, sensors: &[Sensor], now_ms: u64) -> LatestDoc {
    let schema = schema(keys);
    let current = now_ms - now_ms % WINDOW_MS;
    let mut records = Vec::new();
    for (i, s) in sensors.iter().enumerate() {
        records.push(record(&schema, &row(keys, s, current - WINDOW_MS), true));
        if is_live(i) {
            records.push(record(&schema, &row(keys, s, current), false));
        }
    }
    LatestDoc {
        updated_at: now_ms / 1000,
        watermark: Some(model::time::rfc3339_ms(current - 40_000)),
        records,
        pipeline: PipelineStats {
            events_total: 98_765,
            late_total: 3,
            bad_total: 5,
            input_rate: 120.5,
            batch_ms: 0.8,
            lag: 12,
            watermark_delay_ms: 41_000,
            workers: 2,
            open_windows: sensors.iter().enumerate().filter(|(i, _)| is_live(*i)).count() as u64,
            final_windows: 4_321,
            ..PipelineStats::default()
        },
        fleet: FleetView {
            unavailable: Some(FLEET_UNAVAILABLE.into()),
            ..FleetView::default()
        },
        window: Some(WindowKind::Tumbling { size_ms: WINDOW_MS }),
        udfs: Vec::new(),
        query: Some(JobQuery {
            sql: sql(keys),
            builtin: false,
        }),
        columns: Some(schema),
    }
}

/// The `windows` final windows of `sensor` before its last final one in `latest_doc` (that one included), oldest
/// first.
pub fn history_rows(keys: Keys, sensor: &Sensor, now_ms: u64, windows: u64) -> Vec<Vec<Value>> {
    let current = now_ms - now_ms % WINDOW_MS;
    (0..windows)
        .map(|k| row(keys, sensor, current - (windows - k) * WINDOW_MS))
        .collect()
}

/// Writes `rows` (all of one first-key value) as `<parquet_root>/<first key>=<escaped text>/<file_name>`, in
/// the contract's layout: every column but the first key, unless `with_first_key` keeps it too (as some writers
/// do). Returns the file's path.
pub fn write_history_file(
    parquet_root: &Path,
    schema: &OutputSchema,
    rows: &[Vec<Value>],
    file_name: &str,
    with_first_key: bool,
) -> PathBuf {
    let folder = parquet_root.join(partition_dir(schema, &rows[0]));
    fs::create_dir_all(&folder).unwrap_or_else(|e| panic!("cannot create {}: {e}", folder.display()));
    let batch = rows_to_batch(schema, rows, with_first_key).expect("a valid batch");
    let path = folder.join(file_name);
    let file = fs::File::create(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("a Parquet writer");
    writer.write(&batch).expect("rows written");
    writer.close().expect("file closed");
    path
}

/// A history row as `/api/history` answers it: the row's record, final.
pub fn history_json(schema: &OutputSchema, row: &[Value]) -> serde_json::Value {
    serde_json::Value::Object(record(schema, row, true).fields().clone())
}
