//! Test data shared by the HTTP tests and the browser-test fixture: `latest.json` documents (tumbling windows or
//! sessions of varying lengths, with or without UDF columns) and a Parquet history in the dataflow's layout (`parquet/device_id=<escaped>/part-*.parquet`, the
//! names, schema and batches of `model::history`, UDF columns after the contract's), written with the parquet
//! crate from a deterministic formula; plus the scaffolding of the tests (temporary folders, a stand-in for the
//! npm install).

// Each user of this module (an integration test, an example) needs a different part of it.
#![allow(dead_code)]

pub mod sensors;
pub mod site;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use model::history::{self, PartName};
use model::latest::{LatestDoc, SeedDoc};
use model::partition::{PARTITION_COLUMN, partition_dir_name};
use model::{
    Aggregate, Alert, FleetView, LocationRollup, PipelineStats, UdfColumn, UdfKind, UdfType, UdfValue, WindowKind,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Window size of the fixtures, milliseconds (the pipeline's default).
pub const WINDOW_MS: u64 = 10_000;

/// Session gap of the session fixtures, milliseconds.
pub const SESSION_GAP_MS: u64 = 5_000;

/// The window kinds of the fixtures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Windows {
    /// Tumbling windows of [`WINDOW_MS`].
    Tumbling,
    /// Sessions with a gap of [`SESSION_GAP_MS`], of varying lengths.
    Sessions,
}

impl Windows {
    /// The kind as `latest.json` states it.
    pub fn kind(self) -> WindowKind {
        match self {
            Windows::Tumbling => WindowKind::Tumbling { size_ms: WINDOW_MS },
            Windows::Sessions => WindowKind::Session { gap_ms: SESSION_GAP_MS },
        }
    }
}

/// Locations of the simulator.
pub const LOCATIONS: [&str; 4] = ["floor-1", "floor-2", "lab", "office"];

/// A small deterministic mixer (SplitMix64) so that fixtures need no random-number crate.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A value in `lo..hi` from `seed`, rounded to two decimals like a real average would print.
fn pick(seed: u64, lo: f64, hi: f64) -> f64 {
    let unit = (mix(seed) >> 11) as f64 / (1u64 << 53) as f64;
    ((lo + unit * (hi - lo)) * 100.0).round() / 100.0
}

fn id_seed(device_id: &str) -> u64 {
    device_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3)
    })
}

/// The aggregate of `device_id` in the window starting at `window_start`: a deterministic function of both.
pub fn aggregate(device_id: &str, window_start: u64) -> Aggregate {
    let s = id_seed(device_id) ^ window_start.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let base = id_seed(device_id);
    let phase = (window_start / WINDOW_MS) as f64 / 9.0;
    // One device in four runs low on battery, so that the fixtures raise battery alerts.
    let battery_band = if base.is_multiple_of(4) {
        (6.0, 19.0)
    } else {
        (25.0, 98.0)
    };
    let min_battery = pick(base ^ 7, battery_band.0, battery_band.1) - ((window_start / WINDOW_MS) % 50) as f64 * 0.01;
    let count = 30 + mix(s ^ 1) % 20;
    Aggregate {
        device_id: device_id.to_string(),
        window_start,
        window_end: window_start + WINDOW_MS,
        count,
        avg_temperature: ((pick(base ^ 3, 18.0, 33.0) + phase.sin() * 1.5 + pick(s ^ 2, -0.3, 0.3)) * 100.0).round()
            / 100.0,
        avg_humidity: ((pick(base ^ 4, 35.0, 70.0) + phase.cos() * 4.0) * 100.0).round() / 100.0,
        min_battery: (min_battery * 100.0).round() / 100.0,
        max_battery: ((min_battery + pick(s ^ 5, 0.1, 1.5)) * 100.0).round() / 100.0,
        stddev_temperature: pick(s ^ 6, 0.05, 0.9),
        warn_count: mix(s ^ 8) % 3,
        error_count: u64::from(mix(s ^ 9).is_multiple_of(4)),
        udf: Default::default(),
    }
}

/// The name of a committed part file of checkpoint `checkpoint` as the dataflow names it (its in-progress form
/// with `.in_progress_name()`).
pub fn part(checkpoint: u64) -> PartName {
    PartName {
        checkpoint,
        run: 1_730_644_200_000,
        worker: 0,
        seq: checkpoint,
    }
}

/// Writes `rows` as one Parquet file at `path` in the contract's schema (Snappy, like the dataflow);
/// `with_device_column` puts the partition column inside the file as well, first, as some writers do (the
/// dataflow does not).
pub fn write_parquet(path: &Path, rows: &[Aggregate], with_device_column: bool) {
    write_parquet_with(path, rows, &[], with_device_column);
}

/// [`write_parquet`] with one nullable column per UDF of `udfs` after the contract columns
/// (`model::history::to_batch_with`), holding each row's value of [`Aggregate::udf`] (null where it has none).
pub fn write_parquet_with(path: &Path, rows: &[Aggregate], udfs: &[UdfColumn], with_device_column: bool) {
    let mut batch = history::to_batch_with(rows, udfs).expect("a valid batch");
    if with_device_column {
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.device_id.as_str())));
        let mut fields = vec![Arc::new(Field::new(PARTITION_COLUMN, DataType::Utf8, false))];
        fields.extend(batch.schema().fields().iter().cloned());
        let mut columns = vec![ids];
        columns.extend(batch.columns().iter().cloned());
        batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("a valid batch");
    }
    let file = fs::File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("a Parquet writer");
    writer.write(&batch).expect("rows written");
    writer.close().expect("file closed");
}

/// Writes `rows` of `device_id` as `<parquet_root>/device_id=<escaped>/<file_name>`; returns the file path.
pub fn write_partition_file(
    parquet_root: &Path,
    device_id: &str,
    file_name: &str,
    rows: &[Aggregate],
    with_device_column: bool,
) -> PathBuf {
    write_partition_file_with(parquet_root, device_id, file_name, rows, &[], with_device_column)
}

/// [`write_partition_file`] with the UDF columns `udfs` in the file ([`write_parquet_with`]).
pub fn write_partition_file_with(
    parquet_root: &Path,
    device_id: &str,
    file_name: &str,
    rows: &[Aggregate],
    udfs: &[UdfColumn],
    with_device_column: bool,
) -> PathBuf {
    let dir = parquet_root.join(partition_dir_name(device_id));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let path = dir.join(file_name);
    write_parquet_with(&path, rows, udfs, with_device_column);
    path
}

/// Replaces `path` atomically (temp file in the same folder, then rename), as the dataflow does.
pub fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("cannot rename to {}: {e}", path.display()));
}

/// Whether device number `i` has an open (live) newest window in the fixtures: two devices out of three.
pub fn is_live(i: usize) -> bool {
    !i.is_multiple_of(3)
}

/// The UDF columns of the fixtures that have UDFs, in `--udf` order: a scalar float (`heat_index`), an aggregate
/// float with nulls (`temperature_p90`) and a scalar string (`comfort`).
pub fn fixture_udfs() -> Vec<UdfColumn> {
    [
        ("heat_index", UdfKind::Scalar, UdfType::Float64),
        ("temperature_p90", UdfKind::Aggregate, UdfType::Float64),
        ("comfort", UdfKind::Scalar, UdfType::Utf8),
    ]
    .map(|(name, kind, data_type)| UdfColumn {
        name: name.to_string(),
        kind,
        data_type,
    })
    .to_vec()
}

/// `a` with the values of [`fixture_udfs`]: the heat index of its averages (the formula of `udfs/heat_index`),
/// a 90th percentile of temperature that is null in one window out of three of each device (as a failing
/// aggregate UDF leaves it; which windows depends on the device), and a comfort label from the heat index.
pub fn with_udf_values(mut a: Aggregate) -> Aggregate {
    let fahrenheit = a.avg_temperature * 9.0 / 5.0 + 32.0;
    let heat_index =
        (0.5 * (fahrenheit + 61.0 + (fahrenheit - 68.0) * 1.2 + a.avg_humidity * 0.094) - 32.0) * 5.0 / 9.0;
    let p90_missing = ((a.window_start / WINDOW_MS) % 3 + id_seed(&a.device_id) % 3).is_multiple_of(3);
    let p90 = if p90_missing {
        UdfValue::Null
    } else {
        UdfValue::Float(((a.avg_temperature + 1.2816 * a.stddev_temperature) * 100.0).round() / 100.0)
    };
    let comfort = match heat_index {
        h if h >= 27.0 => "hot",
        h if h >= 24.0 => "warm",
        _ => "ok",
    };
    a.udf.insert("heat_index".into(), UdfValue::Float(heat_index));
    a.udf.insert("temperature_p90".into(), p90);
    a.udf.insert("comfort".into(), UdfValue::Text(comfort.into()));
    a
}

/// The watermark of the fixture documents at wall-clock `now_ms`, epoch ms: a minute behind the current window.
fn watermark_ms(now_ms: u64) -> u64 {
    now_ms - now_ms % WINDOW_MS - 60_000
}

/// `a` over the session `[start, end)` instead of its window.
fn over(mut a: Aggregate, start: u64, end: u64) -> Aggregate {
    a.window_start = start;
    a.window_end = end;
    a
}

/// The open session of `device_id` at `now_ms`: its last event at most 8 s past the watermark, its first up to
/// 39 s before it.
pub fn open_session(device_id: &str, now_ms: u64) -> Aggregate {
    let seed = id_seed(device_id);
    let watermark = watermark_ms(now_ms);
    let start = watermark - 1000 * (mix(seed ^ 12) % 40);
    let end = watermark + SESSION_GAP_MS + 1000 * (mix(seed ^ 11) % 9);
    over(aggregate(device_id, start), start, end)
}

/// The `n` newest final sessions of `device_id` at `now_ms`, oldest first: each one of 5 s (a single event) to
/// 94 s, followed by a pause of 0 to 19 s before the next one (the newest final one is followed by the open
/// session, [`open_session`]), so that every session ends at or before the next one's first event.
pub fn session_rows(device_id: &str, now_ms: u64, n: u64) -> Vec<Aggregate> {
    let seed = id_seed(device_id);
    let mut next_start = open_session(device_id, now_ms).window_start;
    let mut rows: Vec<Aggregate> = (0..n)
        .map(|k| {
            let end = next_start - 1000 * (mix(seed ^ (k << 8) ^ 13) % 20);
            let start = end - SESSION_GAP_MS - 1000 * (mix(seed ^ (k << 8) ^ 14) % 90);
            next_start = start;
            over(aggregate(device_id, start), start, end)
        })
        .collect();
    rows.reverse();
    rows
}

/// A `latest.json` document of tumbling windows for `ids` at wall-clock `now_ms`: for a live device, its open
/// window and its last final window; for the others, their last final window. Fleet views and counters are
/// filled in. With `udfs` the document announces [`fixture_udfs`], every record carries their values
/// ([`with_udf_values`]) and the pipeline counts a few failures of `temperature_p90`.
pub fn latest_doc(ids: &[String], now_ms: u64, udfs: bool) -> SeedDoc {
    latest_doc_of(Windows::Tumbling, ids, now_ms, udfs)
}

/// [`latest_doc`] for windows of kind `windows`: with [`Windows::Sessions`], a live device's open session
/// ([`open_session`]) and every device's newest final session (the last of [`session_rows`]), of varying lengths.
pub fn latest_doc_of(windows: Windows, ids: &[String], now_ms: u64, udfs: bool) -> SeedDoc {
    let current = now_ms - now_ms % WINDOW_MS;
    let last_final = current - WINDOW_MS;
    let udf_values = |a: Aggregate| if udfs { with_udf_values(a) } else { a };
    let mut records = Vec::new();
    let mut finals = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (fin, open) = match windows {
            Windows::Tumbling => (aggregate(id, last_final), aggregate(id, current)),
            Windows::Sessions => (session_rows(id, now_ms, 1).remove(0), open_session(id, now_ms)),
        };
        let fin = udf_values(fin);
        if is_live(i) {
            records.push(udf_values(open).to_record(false));
        }
        records.push(fin.to_record(true));
        finals.push((LOCATIONS[i % LOCATIONS.len()], fin));
    }
    let mut locations = Vec::new();
    for loc in LOCATIONS {
        let here: Vec<&Aggregate> = finals.iter().filter(|(l, _)| *l == loc).map(|(_, a)| a).collect();
        if here.is_empty() {
            continue;
        }
        let events: u64 = here.iter().map(|a| a.count).sum();
        let weighted =
            |f: fn(&Aggregate) -> f64| here.iter().map(|a| f(a) * a.count as f64).sum::<f64>() / events as f64;
        locations.push(LocationRollup {
            location: loc.to_string(),
            devices: here.len() as u64,
            events,
            avg_temperature: weighted(|a| a.avg_temperature),
            avg_humidity: weighted(|a| a.avg_humidity),
            min_battery: here.iter().map(|a| a.min_battery).fold(f64::INFINITY, f64::min),
            warn_count: here.iter().map(|a| a.warn_count).sum(),
            error_count: here.iter().map(|a| a.error_count).sum(),
        });
    }
    let mut alerts = Vec::new();
    for (_, a) in &finals {
        let end = model::time::rfc3339_ms(a.window_end);
        let mut raise = |kind: &str, value: f64| {
            alerts.push(Alert {
                device_id: a.device_id.clone(),
                kind: kind.to_string(),
                value,
                window_end: end.clone(),
            })
        };
        if a.min_battery < 20.0 {
            raise("battery_low", a.min_battery);
        }
        if a.error_count > 0 {
            raise("status_error", a.error_count as f64);
        }
        if a.avg_temperature > 30.0 {
            raise("temperature_high", a.avg_temperature);
        }
    }
    let events_total: u64 = 1_234_567 + ids.len() as u64 * 31;
    SeedDoc {
        updated_at: now_ms / 1000,
        watermark: Some(model::time::rfc3339_ms(watermark_ms(now_ms))),
        records,
        pipeline: PipelineStats {
            events_total,
            late_total: 42,
            bad_total: 17,
            filtered_total: 9,
            unmatched_total: 7,
            join_versions: 1_200,
            join_keys: 1_000,
            input_rate: 32.5,
            batch_ms: 1.75,
            lag: 128,
            watermark_delay_ms: 61_250,
            workers: 4,
            processes: 2,
            restarts: 1,
            bad_by_reason: [("not_json", 9u64), ("out_of_range", 5), ("missing_field", 3)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            open_windows: ids.iter().enumerate().filter(|(i, _)| is_live(*i)).count() as u64,
            final_windows: 9_876,
            errors_total: 2,
            errors_by_kind: [("parquet_write".to_string(), 2u64)].into_iter().collect(),
            data_loss_total: 2,
            skipped_records: 300,
            udf_errors: if udfs {
                [("temperature_p90".to_string(), 3u64)].into_iter().collect()
            } else {
                Default::default()
            },
        },
        fleet: FleetView {
            devices: ids.len() as u64,
            locations,
            alerts,
            unavailable: None,
        },
        window: Some(windows.kind()),
        udfs: if udfs { fixture_udfs() } else { Vec::new() },
        query: None,
        columns: None,
    }
}

/// The final windows of the fixture history of `device_id`: `windows` consecutive windows, the last one being
/// the latest document's last final window.
pub fn history_rows(device_id: &str, now_ms: u64, windows: u64) -> Vec<Aggregate> {
    let current = now_ms - now_ms % WINDOW_MS;
    let first = current - windows * WINDOW_MS;
    (0..windows)
        .map(|k| aggregate(device_id, first + k * WINDOW_MS))
        .collect()
}

/// Writes `doc` as pretty JSON to `path` atomically; returns the bytes written.
pub fn write_doc<R: serde::Serialize>(path: &Path, doc: &LatestDoc<R>) -> Vec<u8> {
    let bytes = serde_json::to_vec_pretty(doc).expect("a document serialises");
    write_atomically(path, &bytes);
    bytes
}

/// The ids of [`sample_latest`]: two of the three stress escaping.
pub const SAMPLE_IDS: [&str; 3] = ["device-a", "../../etc/passwd", "\u{1F525}-sensor"];

/// A current `latest.json` of the three [`SAMPLE_IDS`], without UDFs.
pub fn sample_latest() -> SeedDoc {
    latest_doc(&SAMPLE_IDS.map(String::from), model::time::now_ms(), false)
}

/// [`sample_latest`] with the UDF columns of [`fixture_udfs`].
pub fn sample_latest_with_udfs() -> SeedDoc {
    latest_doc(&SAMPLE_IDS.map(String::from), model::time::now_ms(), true)
}

/// [`sample_latest`] with sessions instead of tumbling windows.
pub fn sample_latest_sessions() -> SeedDoc {
    latest_doc_of(
        Windows::Sessions,
        &SAMPLE_IDS.map(String::from),
        model::time::now_ms(),
        false,
    )
}

/// A fresh folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty folder whose name holds `name`, the process id and a counter.
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dashboard-test-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Contents of the Chart.js stand-in.
pub const CHART_JS_STUB: &str = "/* chart.js stub */";

/// A stand-in for the npm install under `root` (an `--assets` folder), so that tests do not depend on `npm ci`.
pub fn stub_assets(root: &Path) -> PathBuf {
    let assets = root.join("assets");
    let dist = assets.join("node_modules/chart.js/dist");
    fs::create_dir_all(&dist).unwrap_or_else(|e| panic!("cannot create {}: {e}", dist.display()));
    fs::write(dist.join("chart.umd.js"), CHART_JS_STUB).expect("the Chart.js stand-in is written");
    assets
}
