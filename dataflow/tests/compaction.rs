//! Compaction of a multi-day history of many small files by `dataflow compact`, killed repeatedly mid-way (on
//! both sides of a folder's swap, through the `IOT_TEST_COMPACT_CRASH` hook, and at random moments) and then
//! finished: the content stays exactly the same (every window once, every value), each device ends with at
//! most one file per UTC day, files with different UDF columns union by name, and the dashboard's history
//! reader, reading in a loop the whole time, never sees a window twice or misses one. No broker needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use dashboard::history::{HistoryQuery, SpanCache, read_history};
use dataflow::checkpoint::StateStore;
use dataflow::messages::BarrierKind;
use dataflow::sink::parquet::roll::RollPolicy;
use dataflow::sink::parquet::{HistorySetup, ParquetHistory};
use model::history::parse_day_file_name;
use model::udf::{UdfColumn, UdfKind, UdfType, UdfValue};
use model::{Aggregate, partition::partition_dir_name};
use testkit::run::Running;
use testkit::{bin, history_files, read_history as read_all, read_history_column, temp_dir};

const DAY: u64 = 86_400_000;
const DEVICES: [&str; 6] = ["sensor-1", "a/b", "..", "🔥-x", "007", "plain"];

fn column(name: &str, data_type: UdfType) -> UdfColumn {
    UdfColumn {
        name: name.into(),
        kind: UdfKind::Scalar,
        data_type,
    }
}

/// Writes `rolls` rolls of 4 windows per device, 10 s windows from `first` on, the way the job writes them; the
/// rolls cycle through three UDF column sets (none, `heat_index`, `heat_index` + `label`). Returns the rows.
fn write_history(out: &Path, first: u64, rolls: u64) -> Vec<Aggregate> {
    let setup = HistorySetup {
        roll: RollPolicy {
            interval: Duration::ZERO,
            max_rows: 1,
        },
        checkpointed: false,
        sink: false,
    };
    let sets = [
        vec![],
        vec![column("heat_index", UdfType::Float64)],
        vec![column("heat_index", UdfType::Float64), column("label", UdfType::Utf8)],
    ];
    let mut all = Vec::new();
    for roll in 0..rolls {
        let udfs = sets[(roll % 3) as usize].clone();
        let schema = std::sync::Arc::new(model::latest::seed_schema(&udfs));
        let mut h = ParquetHistory::new(&StateStore::new(out), 0, roll + 1, schema.clone(), setup).unwrap();
        for (d, device) in DEVICES.iter().enumerate() {
            for w in 0..4 {
                // Spread over three days: a roll every ~17 min, so the rolls cross midnight twice.
                let start = first + roll * 1_000_000 + w * 10_000;
                let mut a = Aggregate {
                    device_id: device.to_string(),
                    window_start: start,
                    window_end: start + 10_000,
                    count: 1 + (roll + w + d as u64) % 9,
                    avg_temperature: 20.0 + roll as f64 / 7.0 + d as f64,
                    avg_humidity: 40.0 + w as f64 / 3.0,
                    min_battery: 50.0,
                    max_battery: 51.5,
                    stddev_temperature: if w == 0 { f64::NAN } else { 0.25 * w as f64 },
                    warn_count: w,
                    error_count: roll % 2,
                    udf: Default::default(),
                };
                for u in &udfs {
                    let v = match u.data_type {
                        UdfType::Utf8 => UdfValue::Text(format!("r{roll}")),
                        _ => UdfValue::Float(start as f64 / 1e9),
                    };
                    a.udf.insert(u.name.clone(), v);
                }
                h.push(row_of(&a, &schema));
                all.push(a);
            }
        }
        let staged = h.at_barrier(roll + 1, BarrierKind::Final).unwrap();
        // What a checkpoint's commit does to the files it covers: they take their visible names.
        for f in &staged.files {
            std::fs::create_dir_all(f.visible.parent().unwrap()).unwrap();
            std::fs::rename(&f.hidden, &f.visible).unwrap();
        }
    }
    all
}

/// An aggregate as the output row of the built-in job's `schema`.
fn row_of(a: &Aggregate, schema: &model::output::OutputSchema) -> Vec<model::value::Value> {
    use model::value::Value;
    let record = serde_json::to_value(a.to_record(true)).unwrap();
    schema
        .columns()
        .iter()
        .map(|c| match (c.name.as_str(), &record[&c.name]) {
            ("window_start", _) => Value::Timestamp(a.window_start as i64),
            ("window_end", _) => Value::Timestamp(a.window_end as i64),
            (_, serde_json::Value::String(t)) => Value::Text(t.as_str().into()),
            (_, serde_json::Value::Number(n)) if c.ty == model::value::DataType::BigInt => {
                Value::Int(n.as_i64().unwrap())
            }
            (_, serde_json::Value::Number(n)) => Value::Float(n.as_f64().unwrap()),
            _ if c.name == "stddev_temperature" => Value::Float(a.stddev_temperature),
            _ => Value::Null,
        })
        .collect()
}

fn key(a: &Aggregate) -> (String, u64) {
    (a.device_id.clone(), a.window_start)
}

/// Reads every device's history through the dashboard's reader until `stop`, checking each answer is exactly
/// the device's windows; returns how many full reads it made.
fn read_in_a_loop(
    root: PathBuf,
    want: BTreeMap<String, BTreeSet<u64>>,
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let cache = SpanCache::default();
        while !stop.load(Ordering::Relaxed) {
            for (device, starts) in &want {
                let q = HistoryQuery {
                    key: vec![device.clone()],
                    from_ms: None,
                    to_ms: None,
                    limit: 100_000,
                };
                let h = read_history(&root, &model::latest::seed_schema(&[]), &q, &cache).unwrap();
                assert!(h.problems.is_empty(), "{device}: {:?}", h.problems);
                let got: Vec<u64> = h.rows.iter().map(|r| r.window_start).collect();
                let unique: BTreeSet<u64> = got.iter().copied().collect();
                assert_eq!(
                    unique.len(),
                    got.len(),
                    "{device}: a window read twice during compaction"
                );
                assert_eq!(&unique, starts, "{device}: a window missing during compaction");
            }
            reads.fetch_add(1, Ordering::Relaxed);
        }
    })
}

fn compact(out: &Path) -> Command {
    let mut cmd = Command::new(bin("dataflow"));
    cmd.arg("compact").arg("--out").arg(out);
    cmd
}

#[test]
fn compaction_killed_mid_way_then_finished_keeps_every_window_once_in_one_file_per_day() {
    let dir = temp_dir("compaction");
    let out = dir.join("out");
    // 150 rolls from 2026-11-20 20:00 UTC: three days, 900 small files over six devices.
    let first = 1_763_668_800_000;
    let rows = write_history(&out, first, 150);
    let before: usize = history_files(&out).values().map(Vec::len).sum();
    assert_eq!(before, 150 * DEVICES.len());
    let mut want: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for r in &rows {
        want.entry(r.device_id.clone()).or_default().insert(r.window_start);
    }
    let expected_history = {
        let mut e: Vec<_> = rows
            .iter()
            .map(|r| (key(r), r.count, r.avg_temperature.to_bits()))
            .collect();
        e.sort();
        e
    };

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = read_in_a_loop(out.join("parquet"), want.clone(), stop.clone(), reads.clone());

    // Killed right before and right after a folder's swap (the hook), then at a few moments of its work, then
    // left to finish.
    for (point, n) in [
        ("before-swap", 1),
        ("after-swap", 2),
        ("before-swap", 2),
        ("after-swap", 1),
    ] {
        let mut cmd = compact(&out);
        cmd.env("IOT_TEST_COMPACT_CRASH", format!("{point}:{n}"));
        let died = testkit::run(&mut cmd, Duration::from_secs(60));
        assert!(!died.status.success(), "{point}:{n} did not kill the compaction");
        assert!(
            out.join("_checkpoints/compacting").exists(),
            "{point}:{n} left its work behind"
        );
    }
    let compacted = history_files(&out)
        .values()
        .filter(|names| names.iter().all(|n| n.starts_with("day-")))
        .count();
    assert!(
        (2..DEVICES.len()).contains(&compacted),
        "part of the folders swapped: {compacted}"
    );
    let mut killed = 0;
    for wait_ms in [40, 90, 140, 200, 260, 330] {
        let mut running = Running::spawn(&mut compact(&out));
        std::thread::sleep(Duration::from_millis(wait_ms));
        if running.is_running() {
            running.kill9();
            killed += 1;
        } else {
            running.wait_ok(Duration::from_secs(10));
        }
    }
    let report = testkit::run_ok(&mut compact(&out), Duration::from_secs(120));
    println!("{report} (killed {killed} times first)");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("the reader saw every window once, all along");
    assert!(reads.load(Ordering::Relaxed) > 0);

    // At most one file per device per UTC day, all of them day files.
    for (folder, names) in history_files(&out) {
        let days: Vec<i64> = names
            .iter()
            .map(|n| parse_day_file_name(n).unwrap_or_else(|| panic!("{folder}/{n}")))
            .collect();
        assert_eq!(days.len(), 3, "{folder}: {names:?}");
    }
    assert!(!out.join("_checkpoints/compacting").exists(), "nothing left behind");

    // The same windows with the same values, read by another reader (arrow directly).
    let mut after: Vec<_> = read_all(&out)
        .iter()
        .map(|r| {
            (
                (r.device_id.clone(), r.window_start as u64),
                r.count as u64,
                r.avg_temperature.to_bits(),
            )
        })
        .collect();
    after.sort();
    assert_eq!(after, expected_history);
    // The UDF columns, unioned by name: a value where the roll had the column, null where it had not.
    let heat = read_history_column(&out, "heat_index");
    let label = read_history_column(&out, "label");
    for r in &rows {
        let k = (r.device_id.clone(), r.window_start as i64);
        let want_heat = r.udf.get("heat_index").and_then(UdfValue::as_f64);
        assert_eq!(heat.get(&k).copied().flatten(), want_heat, "heat_index of {k:?}");
        assert!(label.contains_key(&k), "label column present in every day file");
    }

    // A second pass has nothing to do.
    let again = testkit::run_ok(&mut compact(&out), Duration::from_secs(60));
    assert!(again.contains("compacted 0 device folders"), "{again}");
    assert_eq!(
        history_files(&out)[&partition_dir_name("a/b")].len(),
        3,
        "still one file per day"
    );
}

#[test]
fn recent_windows_stay_in_their_files_and_a_running_job_blocks_offline_compaction() {
    let dir = temp_dir("compaction-recent");
    let out = dir.join("out");
    let now = model::time::now_ms();
    write_history(&out, now - 2 * DAY, 3);
    write_history(&out, now - 60_000, 1);
    let held = dataflow::runtime::out_lock::OutLock::for_job(&out).unwrap();
    let refused = testkit::run(&mut compact(&out), Duration::from_secs(30));
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("a dataflow job is running") && err.contains("stop it first"),
        "{err}"
    );
    drop(held);
    let mut cmd = compact(&out);
    cmd.args(["--older-than", "1h"]);
    testkit::run_ok(&mut cmd, Duration::from_secs(60));
    for (folder, names) in history_files(&out) {
        let rolled = names.iter().filter(|n| n.starts_with("part-")).count();
        assert_eq!(rolled, 1, "{folder}: the last hour keeps its file: {names:?}");
        assert!(
            names.iter().filter(|n| n.starts_with("day-")).count() >= 1,
            "{folder}: {names:?}"
        );
    }
    let missing = testkit::run(
        Command::new(bin("dataflow"))
            .args(["compact", "--out"])
            .arg(dir.join("nothing")),
        Duration::from_secs(30),
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("has no history"));
}

#[test]
fn a_folder_with_an_unreadable_file_is_left_as_it_is_and_the_others_compacted() {
    let dir = temp_dir("compaction-unreadable");
    let out = dir.join("out");
    write_history(&out, 1_763_668_800_000, 6);
    let broken = out
        .join("parquet")
        .join(partition_dir_name("a/b"))
        .join("part-broken.parquet");
    std::fs::write(&broken, b"not parquet").unwrap();
    let failed = testkit::run(&mut compact(&out), Duration::from_secs(60));
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("1 device folders could not be compacted") && err.contains("a%2Fb"),
        "{err}"
    );
    for (folder, names) in history_files(&out) {
        let rolled = names.iter().filter(|n| n.starts_with("part-")).count();
        if folder == partition_dir_name("a/b") {
            assert_eq!(rolled, 7, "left as it was: {names:?}");
        } else {
            assert_eq!(rolled, 0, "{folder}: {names:?}");
        }
    }
}
