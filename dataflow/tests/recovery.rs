//! Exactly-once recovery on the real broker: a seeded run of 200,000 events with late and bad ones while the
//! dataflow is killed with SIGKILL at random moments and restarted (with different `-w`, and once after its
//! newest checkpoint was truncated); the history ends up holding every (device, window) exactly once with exact
//! values, and the dead letters every bad and late event. Also: a checkpoint written with other settings is
//! refused, naming the flag.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use testkit::golden::{assert_dead_letters_match, assert_history_matches, expected};
use testkit::{read_history, read_topic, require_broker, run_ok, temp_dir, unique_topic};

fn dataflow(brokers: &str, topic: &str, out: &Path, dead: &Path, workers: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dataflow"));
    cmd.args([
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--group",
        topic,
        "-w",
        workers,
    ])
    .args(["--checkpoint-interval", "1s", "--trigger", "1s"])
    .arg("--out")
    .arg(out)
    .arg("--deadletter")
    .arg(dead);
    cmd
}

/// A small deterministic generator for the kill schedule (the seed is printed so a failure can be replayed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn newest_manifest(out: &Path) -> Option<std::path::PathBuf> {
    let mut names: Vec<_> = std::fs::read_dir(out.join("_checkpoints"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("ckpt-")
        })
        .collect();
    names.sort();
    names.pop()
}

fn kill9(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let brokers = require_broker();
    let topic = unique_topic("recovery");
    testkit::create_topic(&brokers, &topic, 3);
    let seed = std::env::var("RECOVERY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("kill schedule seed: {seed} (RECOVERY_SEED={seed} replays it)");
    let mut rng = Lcg(seed);

    // 200,000 events over about 25 s from 40 devices, with late and bad records.
    let mut producer = Command::new(testkit::bin("producer"))
        .args([
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--devices",
            "40",
            "--rate",
            "200",
            "--count",
            "200000",
        ])
        .args([
            "--late-fraction",
            "0.05",
            "--bad-fraction",
            "0.02",
            "--max-delay",
            "120s",
            "--seed",
            "23",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _producer_guard = testkit::KillGuard(producer.id());

    let dir = temp_dir("recovery");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let schedule = std::env::var("RECOVERY_WORKERS").unwrap_or_else(|_| "2,1,3,2,4,1".into());
    let workers: Vec<&str> = schedule.split(',').collect();
    let truncate_at = std::env::var("RECOVERY_TRUNCATE_AT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3usize);
    let mut kills = 0;
    for (i, w) in workers.iter().enumerate() {
        let mut job = dataflow(&brokers, &topic, &out, &dead, w)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _job_guard = testkit::KillGuard(job.id());
        std::thread::sleep(Duration::from_millis(1500 + rng.below(3500)));
        assert!(
            job.try_wait().unwrap().is_none(),
            "run {i} (-w {w}) exited by itself"
        );
        kill9(&mut job);
        kills += 1;
        if i == truncate_at {
            // A crash in the middle of writing a checkpoint: the newest manifest is cut short.
            if let Some(newest) = newest_manifest(&out) {
                let text = std::fs::read(&newest).unwrap();
                std::fs::write(&newest, &text[..text.len() / 3]).unwrap();
            }
        }
    }
    let status = producer.wait().unwrap();
    assert!(status.success());
    assert!(kills >= workers.len().min(5));

    // The last run goes to the end of the topic and finalises every window.
    run_ok(
        dataflow(&brokers, &topic, &out, &dead, "2").arg("--bounded"),
        Duration::from_secs(300),
    );

    let records = read_topic(&brokers, &topic);
    assert_eq!(records.len(), 200_000);
    let expected = expected(&records);
    assert_history_matches(&read_history(&out), &expected);

    // Every bad and late event is dead-lettered; a record read again after a crash may appear twice, always with
    // the same partition and offset.
    assert_dead_letters_match(&dead, &expected);

    // The counters survive restarts: events_total equals the events in the history.
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("latest.json")).unwrap()).unwrap();
    let events: usize = expected.rows.values().map(Vec::len).sum();
    assert_eq!(
        latest["pipeline"]["events_total"].as_u64(),
        Some(events as u64)
    );
    assert_eq!(
        latest["pipeline"]["late_total"].as_u64(),
        Some(expected.late.len() as u64)
    );
    assert_eq!(
        latest["pipeline"]["bad_total"].as_u64(),
        Some(expected.bad.len() as u64)
    );

    // No in-progress file is left visible to readers.
    for d in std::fs::read_dir(out.join("parquet")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let name = f.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                name.starts_with("part-") && name.ends_with(".parquet"),
                "left over: {name}"
            );
        }
    }
}

#[test]
fn checkpoint_for_another_window_size_is_refused_unless_fresh() {
    let brokers = require_broker();
    let topic = unique_topic("recovery-flags");
    run_ok(
        Command::new(testkit::bin("producer")).args([
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--rate",
            "0",
            "--count",
            "500",
        ]),
        Duration::from_secs(60),
    );
    let dir = temp_dir("recovery-flags");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    run_ok(
        dataflow(&brokers, &topic, &out, &dead, "1").arg("--bounded"),
        Duration::from_secs(60),
    );
    assert!(
        newest_manifest(&out).is_some(),
        "a bounded run leaves a checkpoint"
    );

    let refused = testkit::run(
        dataflow(&brokers, &topic, &out, &dead, "1").args(["--bounded", "--window", "30s"]),
        Duration::from_secs(60),
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("--window") && err.contains("--fresh") && err.contains("_checkpoints"),
        "{err}"
    );

    // Same settings: the restored job finds nothing new to read and leaves the history as it was.
    let before = read_history(&out);
    run_ok(
        dataflow(&brokers, &topic, &out, &dead, "2").arg("--bounded"),
        Duration::from_secs(60),
    );
    assert_eq!(read_history(&out), before);

    run_ok(
        dataflow(&brokers, &topic, &out, &dead, "1").args([
            "--bounded",
            "--window",
            "30s",
            "--fresh",
        ]),
        Duration::from_secs(60),
    );
}
