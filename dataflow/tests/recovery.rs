//! Exactly-once recovery on the real broker: a seeded run of 200,000 events with late and bad ones while the
//! dataflow is killed with SIGKILL at random moments and restarted (with different `-w`, and once after its
//! newest checkpoint was truncated); the history ends up holding every (device, window) exactly once with exact
//! values, and the dead letters every bad and late event. Also: a checkpoint written with other settings is
//! refused, naming the flag.

use std::path::Path;
use std::time::Duration;

use testkit::golden::{assert_dead_letters_match, assert_history_matches, expected};
use testkit::run::{DataflowRun, ProducerRun};
use testkit::{
    Lcg, newest_manifest, read_history, read_latest, read_topic, require_broker, run_ok, temp_dir, unique_topic,
};

/// A job on `topic` that checkpoints and publishes every second.
fn job(brokers: &str, topic: &str, out: &Path, dead: &Path, workers: usize) -> DataflowRun {
    DataflowRun::kafka(brokers, topic)
        .workers(workers)
        .checkpoint_interval(Duration::from_secs(1))
        .trigger(Duration::from_secs(1))
        .out(out)
        .deadletter(dead)
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let brokers = require_broker();
    let topic = unique_topic("recovery");
    testkit::create_topic(&brokers, &topic, 3);
    let mut rng = Lcg::from_env("RECOVERY_SEED");

    // 200,000 events over about 25 s from 40 devices, with late and bad records.
    let producer = ProducerRun::kafka(&brokers, &topic)
        .devices(40)
        .rate(200.0)
        .count(200_000)
        .late_and_bad()
        .seed(23)
        .spawn();

    let dir = temp_dir("recovery");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let schedule = std::env::var("RECOVERY_WORKERS").unwrap_or_else(|_| "2,1,3,2,4,1".into());
    let workers: Vec<usize> = schedule
        .split(',')
        .map(|w| w.parse().expect("RECOVERY_WORKERS: worker counts, e.g. 2,1,3"))
        .collect();
    let truncate_at = std::env::var("RECOVERY_TRUNCATE_AT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3usize);
    let mut kills = 0;
    for (i, w) in workers.iter().enumerate() {
        let mut running = job(&brokers, &topic, &out, &dead, *w).spawn();
        std::thread::sleep(Duration::from_millis(1500 + rng.below(3500)));
        assert!(running.is_running(), "run {i} (-w {w}) exited by itself");
        running.kill9();
        kills += 1;
        if i == truncate_at {
            // A crash in the middle of writing a checkpoint: the newest manifest is cut short.
            if let Some(newest) = newest_manifest(&out) {
                let text = std::fs::read(&newest).unwrap();
                std::fs::write(&newest, &text[..text.len() / 3]).unwrap();
            }
        }
    }
    producer.wait_ok(Duration::from_secs(300));
    assert!(kills >= workers.len().min(5));

    // The last run goes to the end of the topic and finalises every window.
    run_ok(
        &mut job(&brokers, &topic, &out, &dead, 2).bounded().command(),
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
    let latest = read_latest(&out);
    let events: usize = expected.rows.values().map(Vec::len).sum();
    assert_eq!(latest["pipeline"]["events_total"].as_u64(), Some(events as u64));
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
        &mut ProducerRun::kafka(&brokers, &topic).rate(0.0).count(500).command(),
        Duration::from_secs(60),
    );
    let dir = temp_dir("recovery-flags");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let bounded = |workers| job(&brokers, &topic, &out, &dead, workers).bounded();
    run_ok(&mut bounded(1).command(), Duration::from_secs(60));
    assert!(newest_manifest(&out).is_some(), "a bounded run leaves a checkpoint");

    let thirty_seconds = Duration::from_secs(30);
    let refused = testkit::run(
        &mut bounded(1).window(thirty_seconds).command(),
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
    run_ok(&mut bounded(2).command(), Duration::from_secs(60));
    assert_eq!(read_history(&out), before);

    run_ok(
        &mut bounded(1).window(thirty_seconds).fresh().command(),
        Duration::from_secs(60),
    );
}
