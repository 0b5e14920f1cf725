//! The exactly-once Kafka output (`--sink-topic`) on the real broker: a `read_committed` consumer of the sink topic
//! reads every golden (device, window) exactly once — the same rows as the Parquet history — after a job was
//! killed with SIGKILL at random moments, killed between a manifest's commit and its Kafka transaction's commit,
//! killed while re-publishing what such a crash left, and restarted with other worker counts (fewer than the
//! writers it must recover). Also: a `--fresh` start publishes its own lineage once more, whatever the registers
//! of the discarded checkpoints say; the sink topic is created with the input's partition count.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testkit::golden::{assert_history_matches, close, expected};
use testkit::run::{DataflowRun, ProducerRun, Running};
use testkit::{
    HistoryRow, Lcg, partition_count, read_committed, read_history, read_topic, require_broker, run_ok, sink_rows,
    temp_dir, unique_topic,
};

/// A job on `topic` that checkpoints every second and publishes its final windows to `sink`.
fn job(brokers: &str, topic: &str, sink: &str, out: &Path, workers: usize) -> DataflowRun {
    DataflowRun::kafka(brokers, topic)
        .workers(workers)
        .checkpoint_interval(Duration::from_secs(1))
        .trigger(Duration::from_secs(1))
        .out(out)
        .deadletter(&out.join("dead"))
        .sink_topic(sink)
}

/// The job's command with the sink's crash hook set (`commit:N` or `republish:N`).
fn crashing(run: &DataflowRun, hook: &str) -> Command {
    let mut cmd = run.command();
    cmd.env("IOT_TEST_SINK_CRASH", hook);
    cmd
}

/// Asserts that the sink holds each (device, window) once, with the history's values.
fn assert_sink_equals_history(sink: &[HistoryRow], history: &[HistoryRow]) {
    let keys: BTreeSet<(&str, i64)> = sink.iter().map(|r| (r.device_id.as_str(), r.window_start)).collect();
    assert_eq!(keys.len(), sink.len(), "a (device, window) is in the sink topic twice");
    assert_eq!(
        sink.len(),
        history.len(),
        "the sink topic and the Parquet history differ in windows"
    );
    for (s, h) in sink.iter().zip(history) {
        assert_same_window(s, h);
    }
}

/// The same window with the same values. The job writes floats in their shortest exact form; serde_json's
/// default parser (no `float_roundtrip`) may read one back an ulp off, hence `close` for the floats.
fn assert_same_window(s: &HistoryRow, h: &HistoryRow) {
    let exact = |r: &HistoryRow| {
        (
            r.device_id.clone(),
            r.window_start,
            r.window_end,
            r.count,
            r.warn_count,
            r.error_count,
        )
    };
    assert_eq!(exact(s), exact(h));
    let floats = |r: &HistoryRow| {
        [
            r.avg_temperature,
            r.avg_humidity,
            r.min_battery,
            r.max_battery,
            r.stddev_temperature,
        ]
    };
    for (a, b) in floats(s).into_iter().zip(floats(h)) {
        assert!(close(a, b), "{s:?} vs {h:?}");
    }
}

#[test]
fn read_committed_consumer_sees_every_window_once_across_kills_between_manifest_and_transaction() {
    let brokers = require_broker();
    let topic = unique_topic("sink-in");
    let sink = unique_topic("sink-out");
    testkit::create_topic(&brokers, &topic, 3);
    let mut rng = Lcg::from_env("SINK_SEED");

    // 60,000 events over about 15 s from 40 devices, with late and bad records.
    let producer = ProducerRun::kafka(&brokers, &topic)
        .devices(40)
        .rate(100.0)
        .count(60_000)
        .late_and_bad()
        .seed(29)
        .spawn();
    let dir = temp_dir("sink");
    let out = dir.join("out");

    // Killed at a random moment.
    let first = job(&brokers, &topic, &sink, &out, 2).spawn();
    std::thread::sleep(Duration::from_millis(2000 + rng.below(2000)));
    first.kill9();

    // Killed by the hook after a manifest committed and before its Kafka transaction did.
    let between = Running::spawn(&mut crashing(&job(&brokers, &topic, &sink, &out, 3), "commit:2"))
        .wait(Duration::from_secs(120));
    let said = String::from_utf8_lossy(&between.stderr);
    assert!(!between.status.success() && said.contains("test hook"), "{said}");

    // Restored with one worker: it recovers the three writers and dies while re-publishing what the crash left.
    let recovering = Running::spawn(&mut crashing(&job(&brokers, &topic, &sink, &out, 1), "republish:1"))
        .wait(Duration::from_secs(120));
    let said = String::from_utf8_lossy(&recovering.stderr);
    assert!(
        !recovering.status.success() && said.contains("test hook"),
        "the crash between manifest and transaction left windows to publish again:\n{said}"
    );

    // Restored again, killed at a random moment.
    let again = job(&brokers, &topic, &sink, &out, 2).spawn();
    std::thread::sleep(Duration::from_millis(1500 + rng.below(3000)));
    again.kill9();

    producer.wait_ok(Duration::from_secs(300));
    run_ok(
        &mut job(&brokers, &topic, &sink, &out, 2).bounded().command(),
        Duration::from_secs(300),
    );

    let records = read_topic(&brokers, &topic);
    assert_eq!(records.len(), 60_000);
    let expected = expected(&records);
    let history = read_history(&out);
    assert_history_matches(&history, &expected);
    let published = sink_rows(&read_committed(&brokers, &sink));
    assert_history_matches(&published, &expected);
    assert_sink_equals_history(&published, &history);
    assert_eq!(
        partition_count(&brokers, &sink),
        Some(3),
        "created with the input's partitions"
    );
}

#[test]
fn a_fresh_start_publishes_its_windows_once_more_whatever_earlier_registers_say() {
    let brokers = require_broker();
    let topic = testkit::seeded_topic(&brokers, "sink-fresh", 4_000, 5);
    let sink = unique_topic("sink-fresh-out");
    let dir = temp_dir("sink-fresh");
    let out = dir.join("out");
    let run = job(&brokers, &topic, &sink, &out, 2).bounded();
    run_ok(&mut run.command(), Duration::from_secs(120));
    let once = sink_rows(&read_committed(&brokers, &sink));
    assert!(!once.is_empty());
    assert_sink_equals_history(&once, &read_history(&out));

    // Start over: checkpoint ids begin again at 1, below the registers the first run left. The first commit of
    // the new lineage is cut short; the restored run must still publish it.
    let cut = Running::spawn(&mut crashing(&run.clone().fresh(), "commit:1")).wait(Duration::from_secs(120));
    assert!(!cut.status.success(), "{}", String::from_utf8_lossy(&cut.stderr));
    run_ok(&mut run.command(), Duration::from_secs(120));

    let twice = sink_rows(&read_committed(&brokers, &sink));
    assert_eq!(twice.len(), 2 * once.len(), "each lineage published every window once");
    for (pair, one) in twice.chunks(2).zip(&once) {
        assert_same_window(&pair[0], one);
        assert_same_window(&pair[1], one);
    }
}
