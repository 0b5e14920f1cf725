//! Hopping and session windows end to end on the real broker: a scripted topic (devices that pause for less
//! than, exactly, and more than the session gap, out-of-order events, events around the lateness bound, malformed
//! records) → `dataflow --bounded` with `--slide` or `--session-gap` → the Parquet history, compared with windows
//! computed independently (`testkit::golden::expected_for`); the same history for `-w 1`, `-w 3` and `-n 2`; a
//! kill -9 with open sessions restored into another `-w`; and a checkpoint refused after the window kind changed.

use std::path::Path;
use std::time::Duration;

use testkit::golden::{
    Expected, Windows, assert_dead_letters_match, assert_history_matches, dead_letters, expected_for,
};
use testkit::run::DataflowRun;
use testkit::{
    HistoryRow, KeyValue, Lcg, newest_manifest, produce, read_history, read_latest, read_topic, require_broker, run_ok,
    temp_dir, unique_topic,
};

const GAP_MS: u64 = 5_000;

/// The scripted records of `devices` devices from `from_ms` on, `steps` each, in (roughly) arrival order.
fn scripted(seed: u64, devices: u64, steps: u64, from_ms: u64) -> Vec<(u64, KeyValue)> {
    let mut rng = Lcg(seed);
    let mut records = Vec::new();
    for d in 0..devices {
        let device = format!("dev-{d}");
        let mut t = from_ms + d * 137;
        for _ in 0..steps {
            let ts = match rng.below(40) {
                // Out of order, within the lateness.
                0..=3 => t - rng.below(4_000),
                // Around the lateness bound (60 s): some late, some not, depending on the kind.
                4 => t - 50_000 - rng.below(25_000),
                _ => t,
            };
            let value = match rng.below(60) {
                0 => Some(b"{oops".to_vec()),
                1 => Some(format!(r#"{{"device_id":"{device}","ts":{ts}}}"#).into_bytes()),
                2 => None,
                _ => Some(
                    format!(
                        r#"{{"device_id":"{device}","ts":{ts},"temperature":{},"humidity":{},"battery":{},"status":"{}","location":"lab-{}"}}"#,
                        15.0 + rng.below(2000) as f64 / 100.0,
                        30.0 + rng.below(500) as f64 / 10.0,
                        20.0 + rng.below(800) as f64 / 10.0,
                        ["ok", "ok", "ok", "warn", "error"][rng.below(5) as usize],
                        d % 3
                    )
                    .into_bytes(),
                ),
            };
            records.push((t, (Some(device.clone().into_bytes()), value)));
            // Mostly a reading every 0.3–2.5 s; sometimes a pause shorter than, exactly, or longer than the gap.
            t += match rng.below(8) {
                0 => [GAP_MS - 1, GAP_MS, GAP_MS + 1, 3 * GAP_MS, 12_000][rng.below(5) as usize],
                _ => 300 + rng.below(2_200),
            };
        }
    }
    records.sort_by_key(|(t, _)| *t);
    records
}

/// Produces `records` to a new topic of three partitions.
fn topic_of(brokers: &str, prefix: &str, records: &[(u64, KeyValue)]) -> String {
    let topic = unique_topic(prefix);
    testkit::create_topic(brokers, &topic, 3);
    let values: Vec<KeyValue> = records.iter().map(|(_, kv)| kv.clone()).collect();
    produce(brokers, &topic, &values);
    topic
}

/// Three hours ago, on a whole second.
fn start_ms() -> u64 {
    let now = model::time::now_ms();
    now - now % 1_000 - 3 * 3_600_000
}

fn kind_job(brokers: &str, topic: &str, out: &Path, dead: &Path, windows: Windows) -> DataflowRun {
    let job = DataflowRun::kafka(brokers, topic).out(out).deadletter(dead);
    match windows {
        Windows::Tumbling(size) => job.window(Duration::from_millis(size)),
        Windows::Hopping { size, slide } => job
            .window(Duration::from_millis(size))
            .slide(Duration::from_millis(slide)),
        Windows::Session { gap } => job.session_gap(Duration::from_millis(gap)),
    }
}

type Outcome = (
    Vec<(String, i64, i64, i64, [u64; 5], i64, i64)>,
    Vec<(String, i32, i64)>,
);

/// Runs `job` to the end and returns the history's exact bits and the dead letters.
fn outcome(out: &Path, dead: &Path) -> Outcome {
    (
        read_history(out).iter().map(HistoryRow::bits).collect(),
        dead_letters(dead),
    )
}

/// The golden comparison of one bounded run with `workers` workers, returning its outcome.
fn bounded_matches(brokers: &str, topic: &str, windows: Windows, workers: usize, e: &Expected) -> Outcome {
    let dir = temp_dir("kinds");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    run_ok(
        &mut kind_job(brokers, topic, &out, &dead, windows)
            .bounded()
            .workers(workers)
            .command(),
        Duration::from_secs(120),
    );
    assert_history_matches(&read_history(&out), e);
    let lines = assert_dead_letters_match(&dead, e);
    assert_eq!(lines, e.late.len() + e.bad.len(), "each dead letter once");
    let latest = read_latest(&out);
    let events: usize = e.rows.values().map(Vec::len).sum();
    if let Windows::Session { .. } = windows {
        assert_eq!(latest["pipeline"]["events_total"].as_u64(), Some(events as u64));
    }
    assert_eq!(latest["pipeline"]["late_total"].as_u64(), Some(e.late.len() as u64));
    outcome(&out, &dead)
}

/// `-n 2 -w 1` on loopback.
fn two_processes(brokers: &str, topic: &str, windows: Windows) -> Outcome {
    let dir = temp_dir("kinds-cluster");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let hostfile = testkit::loopback_hostfile(&dir, 2);
    let spawn = |process: usize| {
        kind_job(brokers, topic, &out, &dead, windows)
            .bounded()
            .cluster(2, process, &hostfile)
            .spawn()
    };
    for process in [spawn(0), spawn(1)] {
        process.wait_ok(Duration::from_secs(120));
    }
    outcome(&out, &dead)
}

#[test]
fn hopping_windows_equal_independently_computed_ones_for_any_worker_count_and_two_processes() {
    let brokers = require_broker();
    let records = scripted(5, 10, 160, start_ms());
    let topic = topic_of(&brokers, "kinds-hop", &records);
    let consumed = read_topic(&brokers, &topic);
    let windows = Windows::Hopping {
        size: 30_000,
        slide: 10_000,
    };
    let e = expected_for(&consumed, windows);
    // The earliest window of an event ends where its tumbling window of the slide would, not of the size.
    let tumbling = expected_for(&consumed, Windows::Tumbling(30_000));
    assert!(
        !e.late.is_empty() && !e.bad.is_empty() && e.late != tumbling.late,
        "the input has late and bad records, and events late for one kind but not the other"
    );
    let reference = bounded_matches(&brokers, &topic, windows, 1, &e);
    assert_eq!(bounded_matches(&brokers, &topic, windows, 3, &e), reference, "-w 3");
    assert_eq!(two_processes(&brokers, &topic, windows), reference, "-n 2");

    // A slide that does not divide the size (panes of 5 s), checked on its own.
    let uneven = Windows::Hopping {
        size: 25_000,
        slide: 10_000,
    };
    bounded_matches(&brokers, &topic, uneven, 2, &expected_for(&consumed, uneven));

    let dir = temp_dir("kinds-hop-latest");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    run_ok(
        &mut kind_job(&brokers, &topic, &out, &dead, windows).bounded().command(),
        Duration::from_secs(60),
    );
    let latest = read_latest(&out);
    assert_eq!(
        latest["window"],
        serde_json::json!({"kind": "hopping", "size_ms": 30000, "slide_ms": 10000})
    );
}

#[test]
fn session_windows_equal_independently_computed_ones_for_any_worker_count_and_two_processes() {
    let brokers = require_broker();
    let records = scripted(9, 10, 160, start_ms());
    let topic = topic_of(&brokers, "kinds-session", &records);
    let consumed = read_topic(&brokers, &topic);
    let windows = Windows::Session { gap: GAP_MS };
    let e = expected_for(&consumed, windows);
    assert!(!e.late.is_empty() && !e.bad.is_empty());
    let per_device = e.rows.len() as f64 / 10.0;
    assert!(
        per_device > 5.0,
        "devices pause for longer than the gap: {per_device} sessions each"
    );
    let reference = bounded_matches(&brokers, &topic, windows, 1, &e);
    assert_eq!(bounded_matches(&brokers, &topic, windows, 3, &e), reference, "-w 3");
    assert_eq!(two_processes(&brokers, &topic, windows), reference, "-n 2");
}

#[test]
fn open_sessions_survive_kill_9_and_are_restored_into_another_worker_count() {
    let brokers = require_broker();
    let records = scripted(13, 12, 200, start_ms());
    let (first, second) = records.split_at(records.len() / 2);
    let topic = topic_of(&brokers, "kinds-kill", first);
    let windows = Windows::Session { gap: GAP_MS };
    let dir = temp_dir("kinds-kill");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let job = |workers: usize| {
        kind_job(&brokers, &topic, &out, &dead, windows)
            .workers(workers)
            .checkpoint_interval(Duration::from_millis(500))
            .trigger(Duration::from_millis(500))
    };
    let mut running = job(2).spawn();
    // Wait for a checkpoint that holds open sessions, then kill.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let open_sessions = loop {
        let open = newest_manifest(&out)
            .and_then(|m| std::fs::read(m).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map_or(0, |m| m["windows"].as_array().map_or(0, Vec::len));
        if open > 0 {
            break open;
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint with open sessions");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(running.is_running());
    running.kill9();
    // More events: some extend or bridge the restored sessions.
    let values: Vec<KeyValue> = second.iter().map(|(_, kv)| kv.clone()).collect();
    produce(&brokers, &topic, &values);
    run_ok(&mut job(3).bounded().command(), Duration::from_secs(120));

    let e = expected_for(&read_topic(&brokers, &topic), windows);
    assert_history_matches(&read_history(&out), &e);
    assert_dead_letters_match(&dead, &e);
    assert!(open_sessions > 0);
}

#[test]
fn a_checkpoint_of_another_window_kind_is_refused_naming_the_flags() {
    let brokers = require_broker();
    let records = scripted(3, 3, 40, start_ms());
    let topic = topic_of(&brokers, "kinds-refused", &records);
    let dir = temp_dir("kinds-refused");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let hop = Windows::Hopping {
        size: 30_000,
        slide: 10_000,
    };
    let bounded = |windows| kind_job(&brokers, &topic, &out, &dead, windows).bounded();
    run_ok(&mut bounded(hop).command(), Duration::from_secs(60));
    for (other, flags) in [
        (
            Windows::Hopping {
                size: 30_000,
                slide: 5_000,
            },
            "--window 30s --slide 5s",
        ),
        (Windows::Tumbling(30_000), "this run has --window 30s:"),
        (Windows::Session { gap: GAP_MS }, "--session-gap 5s"),
    ] {
        let refused = testkit::run(&mut bounded(other).command(), Duration::from_secs(60));
        assert!(!refused.status.success(), "{other:?}");
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(
            err.contains("written with --window 30s --slide 10s") && err.contains(flags) && err.contains("--fresh"),
            "{err}"
        );
    }
    run_ok(
        &mut bounded(Windows::Session { gap: GAP_MS }).fresh().command(),
        Duration::from_secs(60),
    );
}

#[test]
fn bad_window_flags_fail_fast_naming_the_fix() {
    let dir = temp_dir("kinds-flags");
    for (args, wanted) in [
        (
            vec!["--window", "10s", "--slide", "20s"],
            "--slide (20000 ms) must not be longer than --window",
        ),
        (vec!["--session-gap", "5s", "--slide", "1s"], "--session-gap"),
        (vec!["--session-gap", "5s", "--window", "1m"], "--window"),
        (vec!["--slide", "0s"], "--slide must be a positive duration"),
        (vec!["--session-gap", "0s"], "--session-gap must be a positive duration"),
    ] {
        let output = testkit::run(
            std::process::Command::new(testkit::bin("dataflow"))
                .args(&args)
                .arg("--out")
                .arg(dir.join("out"))
                .arg("--deadletter")
                .arg(dir.join("dead"))
                .arg("--brokers")
                .arg("127.0.0.1:1"),
            Duration::from_secs(30),
        );
        assert!(!output.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(wanted), "{args:?}: {err}");
    }
}
