//! How many history files a running job leaves, on the real broker: with 1 s windows and 1 s checkpoints for
//! about a minute — killed with SIGKILL once, stopped with Ctrl-C, then finished by a bounded run — each device
//! has at most 2 files and the history is exact (the windows held between rolls travel in the checkpoint's
//! segments); and a job compacting while it runs leaves a day file per device, while the dashboard's reader,
//! reading in a loop, never sees a window twice or loses one it saw.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dashboard::history::{HistoryQuery, SpanCache, read_history as dashboard_read};
use testkit::golden::{Windows, assert_history_matches, expected_for};
use testkit::run::{DataflowRun, ProducerRun};
use testkit::{create_topic, read_history, read_topic, require_broker, run_ok, temp_dir, unique_topic};

const DEVICES: u64 = 8;

fn job(brokers: &str, topic: &str, out: &Path, dead: &Path) -> DataflowRun {
    DataflowRun::kafka(brokers, topic)
        .workers(2)
        .window(Duration::from_secs(1))
        .lateness(Duration::from_secs(2))
        .idle_timeout(Duration::from_secs(3))
        .checkpoint_interval(Duration::from_secs(1))
        .trigger(Duration::from_secs(1))
        .out(out)
        .deadletter(dead)
}

/// The history files (`*.parquet`) of each device folder.
fn files_per_device(out: &Path) -> BTreeMap<String, Vec<String>> {
    let mut by = testkit::history_files(out);
    for names in by.values_mut() {
        names.retain(|n| n.ends_with(".parquet"));
    }
    by
}

#[test]
fn a_minute_of_one_second_windows_and_checkpoints_leaves_at_most_two_files_per_device() {
    let brokers = require_broker();
    let topic = unique_topic("roll");
    create_topic(&brokers, &topic, 3);
    let dir = temp_dir("roll");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let started = Instant::now();
    let producer = ProducerRun::kafka(&brokers, &topic)
        .devices(DEVICES)
        .rate(10.0)
        .duration(Duration::from_secs(60))
        .seed(5)
        .spawn();

    // 25 s, then SIGKILL: the final windows so far were held (no roll yet) and are in the checkpoint only.
    let first = job(&brokers, &topic, &out, &dead).spawn();
    std::thread::sleep(Duration::from_secs(25));
    first.kill9();
    assert!(
        files_per_device(&out).values().all(Vec::is_empty),
        "no file before the first roll: {:?}",
        files_per_device(&out)
    );
    // Restored, it runs to about a minute and is stopped with Ctrl-C: the stop rolls what it holds.
    let second = job(&brokers, &topic, &out, &dead).spawn();
    std::thread::sleep(Duration::from_secs(62).saturating_sub(started.elapsed()));
    let stopped = second.stop_ok(Duration::from_secs(30));
    assert!(!String::from_utf8_lossy(&stopped.stderr).contains("panicked"));
    producer.wait_ok(Duration::from_secs(30));
    let after_stop = files_per_device(&out);
    assert_eq!(after_stop.len(), DEVICES as usize);
    assert!(
        after_stop.values().all(|f| f.len() == 1),
        "one roll at the stop: {after_stop:?}"
    );

    // A bounded run finalises the windows still open: one more file each, and every window exactly once.
    run_ok(
        &mut job(&brokers, &topic, &out, &dead).bounded().command(),
        Duration::from_secs(120),
    );
    let files = files_per_device(&out);
    assert!(files.values().all(|f| f.len() <= 2), "{files:?}");
    let records = read_topic(&brokers, &topic);
    assert!(records.len() as u64 >= DEVICES * 10 * 55, "{} records", records.len());
    assert_history_matches(&read_history(&out), &expected_for(&records, Windows::Tumbling(1_000)));
    // Segments only stay while a kept manifest names them (a restore may fall back to any kept manifest).
    let mut named = BTreeSet::new();
    for m in std::fs::read_dir(out.join("_checkpoints")).unwrap() {
        let path = m.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            for s in doc["unrolled"].as_array().into_iter().flatten() {
                named.insert(s.as_str().unwrap().to_string());
            }
        }
    }
    let left: Vec<String> = std::fs::read_dir(out.join("_checkpoints/segments"))
        .unwrap()
        .map(|e| {
            format!(
                "_checkpoints/segments/{}",
                e.unwrap().file_name().into_string().unwrap()
            )
        })
        .collect();
    assert!(left.iter().all(|s| named.contains(s)), "{left:?} vs {named:?}");
    assert!(
        left.len() < 2 * 62,
        "segments of older checkpoints are deleted: {}",
        left.len()
    );
}

#[test]
fn a_job_compacting_while_it_runs_keeps_every_window_once_for_a_reader() {
    let brokers = require_broker();
    let topic = unique_topic("compact-live");
    create_topic(&brokers, &topic, 3);
    let dir = temp_dir("compact-live");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let producer = ProducerRun::kafka(&brokers, &topic)
        .devices(DEVICES)
        .rate(10.0)
        .duration(Duration::from_secs(40))
        .seed(6)
        .spawn();
    let running = job(&brokers, &topic, &out, &dead)
        .with(|a| {
            a.roll_interval = Duration::from_secs(2);
            a.compact_older_than = Duration::from_secs(10);
        })
        .spawn();

    // The dashboard's reader in a loop: never a window twice, never one it saw before gone.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (root, stop) = (out.join("parquet"), stop.clone());
        std::thread::spawn(move || {
            let cache = SpanCache::default();
            let mut seen: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let devices: Vec<String> = std::fs::read_dir(&root)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name().into_string().ok()?;
                        model::partition::unescape_partition_value(name.strip_prefix("device_id=")?)
                    })
                    .collect();
                for device in devices {
                    let q = HistoryQuery {
                        key: vec![device.clone()],
                        from_ms: None,
                        to_ms: None,
                        limit: 100_000,
                    };
                    let h = dashboard_read(&root, &model::latest::seed_schema(&[]), &q, &cache).unwrap();
                    assert!(h.problems.is_empty(), "{device}: {:?}", h.problems);
                    let now: BTreeSet<u64> = h.rows.iter().map(|r| r.window_start).collect();
                    assert_eq!(now.len(), h.rows.len(), "{device}: a window read twice");
                    let before = seen.entry(device.clone()).or_default();
                    assert!(now.is_superset(before), "{device}: a window seen before is gone");
                    *before = now;
                }
                reads += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            reads
        })
    };
    producer.wait_ok(Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(5));
    running.stop_ok(Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("the reader saw every window once");
    assert!(reads > 50, "{reads} reads");

    let files = files_per_device(&out);
    for (device, names) in &files {
        assert!(
            names.iter().any(|n| n.starts_with("day-")),
            "{device}: compacted while running: {names:?}"
        );
        assert!(names.len() <= 12, "{device}: {names:?}");
    }
    run_ok(
        &mut job(&brokers, &topic, &out, &dead).bounded().command(),
        Duration::from_secs(120),
    );
    let records = read_topic(&brokers, &topic);
    assert_history_matches(&read_history(&out), &expected_for(&records, Windows::Tumbling(1_000)));
}
