//! Helpers for the integration tests, which run the real binaries against the real Kafka broker started by
//! `infra/kafka.sh` (the suite's `./test.sh` starts it; `IOT_TEST_BROKERS` points elsewhere). A missing broker
//! fails the test with a message saying how to start one: these tests never pass without Kafka. `run` starts
//! the binaries from their typed flags; the rest reads back what they wrote (topics, history, `latest.json`).
//! `sql_golden` checks a SQL job's outputs against the rows a DuckDB query computes from the events it read.

pub mod golden;
pub mod kafka;
pub mod run;
pub mod sql_golden;

pub use kafka::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Path of a binary of this workspace, built next to the running test (`cargo test --workspace` builds them).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "binary {} not built: run `cargo build --release --workspace` or ./test.sh",
        path.display()
    );
    path
}

/// Runs a command to completion with a time limit; returns stdout, panics with stderr on failure.
pub fn run_ok(cmd: &mut Command, limit: Duration) -> String {
    let out = run::Running::spawn(cmd).wait_ok(limit);
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs a command to completion with a time limit (killing it past the limit).
pub fn run(cmd: &mut Command, limit: Duration) -> std::process::Output {
    run::Running::spawn(cmd).wait(limit)
}

/// The `latest.json` a job wrote into its output folder.
pub fn read_latest(out: &std::path::Path) -> serde_json::Value {
    let path = out.join(model::latest::FILE_NAME);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// One row of the Parquet history, with its device id decoded from the partition folder.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    /// Device id (from `device_id=<escaped>`).
    pub device_id: String,
    /// Window start, epoch ms.
    pub window_start: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// Events.
    pub count: i64,
    /// Mean temperature.
    pub avg_temperature: f64,
    /// Mean humidity.
    pub avg_humidity: f64,
    /// Lowest battery.
    pub min_battery: f64,
    /// Highest battery.
    pub max_battery: f64,
    /// Population stddev of temperature.
    pub stddev_temperature: f64,
    /// Warn statuses.
    pub warn_count: i64,
    /// Error statuses.
    pub error_count: i64,
}

impl HistoryRow {
    /// The row with floats as bit patterns, for exact comparisons between runs.
    pub fn bits(&self) -> (String, i64, i64, i64, [u64; 5], i64, i64) {
        (
            self.device_id.clone(),
            self.window_start,
            self.window_end,
            self.count,
            [
                self.avg_temperature.to_bits(),
                self.avg_humidity.to_bits(),
                self.min_battery.to_bits(),
                self.max_battery.to_bits(),
                self.stddev_temperature.to_bits(),
            ],
            self.warn_count,
            self.error_count,
        )
    }
}

/// Reads every visible history file (`part-*.parquet`, `day-*.parquet`) of `<out>/parquet`, sorted by device and
/// window. Panics if a partition folder or file name breaks the layout, or if a file lies outside the folder.
pub fn read_history(out: &std::path::Path) -> Vec<HistoryRow> {
    use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType};

    let mut rows = Vec::new();
    for_each_history_batch(out, |device_id, batch| {
        let ts = |n: &str| {
            assert_eq!(
                batch.column_by_name(n).map(|c| c.data_type().clone()),
                Some(DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))),
                "{n} type"
            );
            column::<TimestampMillisecondType>(batch, n)
        };
        let int = |n: &str| column::<Int64Type>(batch, n);
        let float = |n: &str| column::<Float64Type>(batch, n);
        let (ws, we, count) = (ts("window_start"), ts("window_end"), int("count"));
        let (at, ah) = (float("avg_temperature"), float("avg_humidity"));
        let (minb, maxb, sd) = (float("min_battery"), float("max_battery"), float("stddev_temperature"));
        let (warn, err) = (int("warn_count"), int("error_count"));
        for i in 0..batch.num_rows() {
            rows.push(HistoryRow {
                device_id: device_id.to_string(),
                window_start: ws[i],
                window_end: we[i],
                count: count[i],
                avg_temperature: at[i],
                avg_humidity: ah[i],
                min_battery: minb[i],
                max_battery: maxb[i],
                stddev_temperature: sd[i],
                warn_count: warn[i],
                error_count: err[i],
            });
        }
    });
    rows.sort_by(|a, b| (&a.device_id, a.window_start).cmp(&(&b.device_id, b.window_start)));
    rows
}

/// The values of a primitive column of `batch`; panics naming the column if it is missing or of another type.
fn column<T: arrow::datatypes::ArrowPrimitiveType>(
    batch: &arrow::record_batch::RecordBatch,
    name: &str,
) -> Vec<T::Native> {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"))
        .as_any()
        .downcast_ref::<arrow::array::PrimitiveArray<T>>()
        .unwrap_or_else(|| panic!("column {name} is not {}", T::DATA_TYPE))
        .values()
        .to_vec()
}

/// The folder of a UDF crate of the project's `udfs/` workspace (e.g. `heat_index`, `fixtures/flaky_ratio`).
pub fn udf_crate(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("udfs").join(name);
    assert!(dir.join("Cargo.toml").is_file(), "no UDF crate at {}", dir.display());
    dir
}

/// One column of every visible history file of `<out>/parquet` read by name and cast to `Float64` (null where the
/// file holds null), keyed by (device id, window start in ms); files without the column are left out. The values
/// are read with arrow directly, not through the history's conversions to aggregates (`model::history::from_batch`).
pub fn read_history_column(out: &Path, name: &str) -> BTreeMap<(String, i64), Option<f64>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type, TimestampMillisecondType};

    let mut values = BTreeMap::new();
    for_each_history_batch(out, |device_id, batch| {
        let Some(found) = batch.column_by_name(name) else {
            return;
        };
        let floats = arrow::compute::cast(found, &DataType::Float64).unwrap();
        let floats = floats.as_primitive::<Float64Type>();
        let starts = column::<TimestampMillisecondType>(batch, "window_start");
        for (i, start) in starts.iter().enumerate() {
            let v = (!floats.is_null(i)).then(|| floats.value(i));
            assert!(
                values.insert((device_id.to_string(), *start), v).is_none(),
                "{device_id} {start} twice"
            );
        }
    });
    values
}

/// Calls `f` with the device id (for another query's history: its folder's value as written, after `=`) and each
/// record batch of every visible `part-*.parquet` (rolled) and
/// `day-*.parquet` (compacted) of `<out>/parquet`, listed and read by `model::history` (a device folder that
/// compaction swaps meanwhile is read again whole, so no batch is given twice). The batches are the files' own:
/// their columns and types are the caller's to check. Panics if a partition folder or file name breaks the layout.
fn for_each_history_batch(out: &Path, mut f: impl FnMut(&str, &arrow::record_batch::RecordBatch)) {
    use model::history::{HistoryFile, PARQUET_DIR, device_of, is_hidden, read_folder};

    let Ok(dirs) = std::fs::read_dir(out.join(PARQUET_DIR)) else {
        return;
    };
    for dir in dirs {
        let dir = dir.unwrap().path();
        let device_id = device_of(&dir)
            .or_else(|| {
                let name = dir.file_name()?.to_str()?;
                Some(name.split_once('=')?.1.to_string())
            })
            .unwrap_or_else(|| panic!("unexpected folder {}", dir.display()));
        for file in std::fs::read_dir(&dir).unwrap() {
            let name = file.unwrap().file_name().into_string().expect("utf-8 file name");
            assert!(
                is_hidden(&name)
                    || ((name.starts_with("part-") || name.starts_with("day-")) && name.ends_with(".parquet")),
                "unexpected file {name}"
            );
        }
        let batches = read_folder(&dir, |files| {
            let mut batches = Vec::new();
            for file in files {
                batches.extend(HistoryFile::open(&file.path)?.read_batches()?);
            }
            Ok(batches)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        for batch in &batches {
            f(&device_id, batch);
        }
    }
}

/// The names of every file in each device folder of `<out>/parquet`, by folder name (empty without a history).
pub fn history_files(out: &Path) -> BTreeMap<String, Vec<String>> {
    let mut by = BTreeMap::new();
    for d in std::fs::read_dir(out.join("parquet")).into_iter().flatten() {
        let d = d.unwrap();
        let names = std::fs::read_dir(d.path())
            .unwrap()
            .map(|f| f.unwrap().file_name().into_string().unwrap())
            .collect();
        by.insert(d.file_name().into_string().unwrap(), names);
    }
    by
}

/// A timely host file in `dir` for `processes` processes on loopback, each on a port free at the time of the call.
pub fn loopback_hostfile(dir: &Path, processes: usize) -> PathBuf {
    let lines: String = (0..processes)
        .map(|_| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            format!("127.0.0.1:{port}\n")
        })
        .collect();
    let hostfile = dir.join("hosts");
    std::fs::write(&hostfile, lines).unwrap();
    hostfile
}

/// The newest checkpoint manifest (`_checkpoints/ckpt-*.json`) under `out`, if any.
pub fn newest_manifest(out: &Path) -> Option<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(out.join("_checkpoints"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ckpt-"))
        .collect();
    names.sort();
    names.pop()
}

/// A fresh temporary folder.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_topic(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small deterministic generator for test inputs and schedules (print the seed so a failure can be replayed).
pub struct Lcg(pub u64);

impl Lcg {
    /// A generator seeded from the environment variable `var` when it is set (to replay a failure), else from
    /// the clock; the seed is printed with the variable that replays it.
    pub fn from_env(var: &str) -> Lcg {
        let seed = std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
        println!("kill schedule seed: {seed} ({var}={seed} replays it)");
        Lcg(seed)
    }

    /// The next value below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}
