//! End to end on the real broker: producer → Kafka → `dataflow --bounded` → Parquet history and dead letters,
//! compared with aggregates computed independently (`testkit::golden`) from the records read back from the topic.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testkit::golden::{assert_dead_letters_match, assert_history_matches, dead_letters, expected};
use testkit::run::DataflowRun;
use testkit::{
    HistoryRow, read_history, read_latest, read_topic, require_broker, run_ok, seeded_topic, temp_dir, unique_topic,
};

/// A bounded job on `topic` with its outputs in `out` and `dead`.
fn bounded_job(brokers: &str, topic: &str, out: &Path, dead: &Path) -> DataflowRun {
    DataflowRun::kafka(brokers, topic).bounded().out(out).deadletter(dead)
}

#[test]
fn bounded_run_history_equals_independently_computed_aggregates() {
    let brokers = require_broker();
    let topic = seeded_topic(&brokers, "e2e-golden", 6000, 11);
    let records = read_topic(&brokers, &topic);
    let expected = expected(&records);
    assert!(
        !expected.late.is_empty() && !expected.bad.is_empty(),
        "the input exercises late and bad events"
    );

    let dir = temp_dir("e2e-golden");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    run_ok(
        &mut bounded_job(&brokers, &topic, &out, &dead).workers(2).command(),
        Duration::from_secs(120),
    );

    assert_history_matches(&read_history(&out), &expected);

    let lines = assert_dead_letters_match(&dead, &expected);
    assert_eq!(lines, expected.late.len() + expected.bad.len(), "each dead letter once");

    let latest = read_latest(&out);
    let p = &latest["pipeline"];
    let events: usize = expected.rows.values().map(Vec::len).sum();
    assert_eq!(p["events_total"].as_u64(), Some(events as u64));
    assert_eq!(p["late_total"].as_u64(), Some(expected.late.len() as u64));
    assert_eq!(p["bad_total"].as_u64(), Some(expected.bad.len() as u64));
    assert_eq!(p["workers"].as_u64(), Some(2));
    assert!(
        latest["records"].as_array().unwrap().iter().all(|r| r["final"] == true),
        "bounded: all final"
    );
}

#[test]
fn same_history_for_any_worker_count_and_for_two_processes() {
    let brokers = require_broker();
    let topic = seeded_topic(&brokers, "e2e-workers", 4000, 11);
    let run = |workers: usize| {
        let dir = temp_dir("e2e-workers");
        let (out, dead) = (dir.join("out"), dir.join("dead"));
        run_ok(
            &mut bounded_job(&brokers, &topic, &out, &dead).workers(workers).command(),
            Duration::from_secs(120),
        );
        (
            read_history(&out).iter().map(HistoryRow::bits).collect::<Vec<_>>(),
            dead_letters(&dead),
        )
    };
    let reference = run(1);
    assert!(!reference.0.is_empty());
    for workers in [3, 4] {
        assert_eq!(run(workers), reference, "-w {workers}");
    }

    // Two processes × two workers on loopback.
    let dir = temp_dir("e2e-cluster");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let hostfile = testkit::loopback_hostfile(&dir, 2);
    let spawn = |process: usize| {
        bounded_job(&brokers, &topic, &out, &dead)
            .workers(2)
            .cluster(2, process, &hostfile)
            .spawn()
    };
    for process in [spawn(0), spawn(1)] {
        process.wait_ok(Duration::from_secs(120));
    }
    let cluster = (
        read_history(&out).iter().map(HistoryRow::bits).collect::<Vec<_>>(),
        dead_letters(&dead),
    );
    assert_eq!(cluster, reference, "-n 2 -w 2");
    assert_eq!(read_latest(&out)["pipeline"]["workers"].as_u64(), Some(4));
}

#[test]
fn hostile_device_ids_stay_inside_the_parquet_folder_and_round_trip() {
    let brokers = require_broker();
    let topic = unique_topic("e2e-ids");
    testkit::create_topic(&brokers, &topic, 3);
    let long = "x".repeat(64);
    let ids = [
        "../../etc/passwd",
        "a/b",
        "..",
        "\u{1F525}-sensor",
        "100%",
        long.as_str(),
    ];
    let now = 1_700_000_000_000u64;
    let mut records = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let v = serde_json::json!({"device_id": id, "ts": now + i as u64, "temperature": 20.5, "humidity": 40.0,
            "battery": 90.0, "status": "ok", "location": "lab"});
        records.push((Some(id.as_bytes().to_vec()), Some(v.to_string().into_bytes())));
    }
    // A 1,000-character id is not a valid event: it is dead-lettered, never a path.
    let huge = "y".repeat(1000);
    let v = serde_json::json!({"device_id": huge, "ts": now, "temperature": 20.0, "humidity": 40.0,
        "battery": 90.0, "status": "ok", "location": "lab"});
    records.push((Some(b"huge".to_vec()), Some(v.to_string().into_bytes())));
    testkit::produce(&brokers, &topic, &records);

    let dir = temp_dir("e2e-ids");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    run_ok(
        &mut bounded_job(&brokers, &topic, &out, &dead).command(),
        Duration::from_secs(120),
    );

    let history = read_history(&out);
    let got: BTreeSet<&str> = history.iter().map(|r| r.device_id.as_str()).collect();
    assert_eq!(got, ids.iter().copied().collect::<BTreeSet<_>>());
    // Nothing was written outside the output folders.
    for entry in walk(&dir) {
        assert!(
            entry.starts_with(&out)
                || entry.starts_with(&dead)
                || entry == dir.join("out")
                || entry == dir.join("dead")
        );
    }
    let parquet = out.join("parquet");
    for d in std::fs::read_dir(&parquet).unwrap() {
        let d = d.unwrap().path();
        assert_eq!(d.parent().unwrap(), parquet, "{d:?}");
        assert!(d.file_name().unwrap().len() <= 255);
    }
    let letters = dead_letters(&dead);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, "bad_string");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn unreachable_broker_and_bad_flags_fail_fast_with_the_flag_named() {
    let dir = temp_dir("e2e-flags");
    let cases: [(&[&str], &str); 5] = [
        (&["--brokers", "127.0.0.1:1", "--bounded"], "--brokers"),
        (&["--window", "0s"], "--window"),
        (&["--lateness", "soon"], "--lateness"),
        (&["--out", "/proc/version/x"], "--out"),
        (&["--input", "/nonexistent.jsonl"], "--input"),
    ];
    for (args, flag) in cases {
        let out = testkit::run(
            Command::new(env!("CARGO_BIN_EXE_dataflow"))
                .current_dir(&dir)
                .args(args),
            Duration::from_secs(60),
        );
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_roll_of_thousands_of_devices_fits_in_a_small_descriptor_limit() {
    // 3,000 devices replayed under `ulimit -n 256`: a Parquet roll writes one file per device and must not hold
    // a descriptor per file until the end of the roll.
    let dir = temp_dir("e2e-fds");
    let input = dir.join("events.jsonl");
    let now = 1_700_000_000_000u64;
    let mut lines = String::new();
    for i in 0..3000u64 {
        let v = serde_json::json!({"device_id": format!("dev-{i:05}"), "ts": now + i, "temperature": 20.5,
            "humidity": 40.0, "battery": 90.0, "status": "ok", "location": "lab"});
        lines.push_str(&v.to_string());
        lines.push('\n');
    }
    std::fs::write(&input, lines).unwrap();
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let replay = DataflowRun::input(&input).out(&out).deadletter(&dead).command();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"ulimit -n 256 && exec "$0" "$@""#)
        .arg(replay.get_program())
        .args(replay.get_args());
    run_ok(&mut cmd, Duration::from_secs(120));
    let history = read_history(&out);
    assert_eq!(history.len(), 3000);
    let devices: BTreeSet<&str> = history.iter().map(|r| r.device_id.as_str()).collect();
    assert_eq!(devices.len(), 3000);
}

#[test]
fn a_bounded_run_whose_history_cannot_be_written_fails() {
    let dir = temp_dir("e2e-unwritable");
    let input = dir.join("events.jsonl");
    let v = serde_json::json!({"device_id": "dev-a", "ts": 1_700_000_000_000u64, "temperature": 20.5,
        "humidity": 40.0, "battery": 90.0, "status": "ok", "location": "lab"});
    std::fs::write(&input, format!("{v}\n")).unwrap();
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    // The device's partition folder cannot be created: a file stands in its place.
    std::fs::create_dir_all(out.join("parquet")).unwrap();
    std::fs::write(out.join("parquet").join("device_id=dev-a"), b"not a folder").unwrap();
    let output = testkit::run(
        &mut DataflowRun::input(&input).out(&out).deadletter(&dead).command(),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the run succeeded:\n{stderr}");
    assert!(
        stderr.contains("could not be written to the Parquet history"),
        "{stderr}"
    );
    // The failure is counted where the pipeline is watched, not only logged.
    let pipeline = &testkit::read_latest(&out)["pipeline"];
    let failed_writes = pipeline["errors_by_kind"]["parquet_write"].as_u64();
    assert!(failed_writes.is_some_and(|n| n >= 1), "{pipeline}");
    assert!(pipeline["errors_total"].as_u64() >= failed_writes, "{pipeline}");
}
