//! A restore or a running job never skips input silently, on the real broker: a topic deleted and recreated,
//! records removed (DeleteRecords, as retention does) before they were read, on restore and while running,
//! stop the job naming topic, partition, offsets, the log's range and `--on-data-loss`; with `continue` the
//! loss is counted in `latest.json` (exactly, when the removed records are known) and what exists is read.
//! Partitions added to the topic while the job runs are read and survive a restart.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dataflow::config::OnDataLoss;
use serde_json::Value;
use testkit::golden::{assert_history_matches, expected};
use testkit::run::{DataflowRun, Running};
use testkit::{
    HistoryRow, KeyValue, create_topic, newest_manifest, produce, produce_to, read_history, read_latest, read_topic,
    require_broker, run_ok, temp_dir, unique_topic,
};

const LIMIT: Duration = Duration::from_secs(120);

/// `n` valid events of 4 devices, `step_ms` apart from `from_ms`.
fn events(from_ms: u64, n: u64, step_ms: u64) -> Vec<KeyValue> {
    (0..n)
        .map(|i| {
            let device = format!("dev-{}", i % 4);
            let value = format!(
                r#"{{"device_id":"{device}","ts":{},"temperature":{},"humidity":50,"battery":80,"status":"ok","location":"lab"}}"#,
                from_ms + i * step_ms,
                20 + i % 7
            );
            (Some(device.into_bytes()), Some(value.into_bytes()))
        })
        .collect()
}

fn now_ms() -> u64 {
    model::time::now_ms()
}

/// Output and dead-letter folders of one test.
struct Dirs {
    out: PathBuf,
    dead: PathBuf,
}

impl Dirs {
    fn new(prefix: &str) -> Dirs {
        let dir = temp_dir(prefix);
        Dirs {
            out: dir.join("out"),
            dead: dir.join("dead"),
        }
    }

    /// A job on `topic` that checkpoints and publishes every second.
    fn job(&self, brokers: &str, topic: &str) -> DataflowRun {
        DataflowRun::kafka(brokers, topic)
            .checkpoint_interval(Duration::from_secs(1))
            .trigger(Duration::from_secs(1))
            .out(&self.out)
            .deadletter(&self.dead)
    }
}

fn pipeline(latest: &Value, field: &str) -> u64 {
    latest["pipeline"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("latest.json has no pipeline.{field}: {latest}"))
}

/// Records read so far according to `latest.json` (0 before the first one is written).
fn records_read(out: &Path) -> u64 {
    if !out.join("latest.json").exists() {
        return 0;
    }
    let l = read_latest(out);
    pipeline(&l, "events_total") + pipeline(&l, "late_total") + pipeline(&l, "bad_total")
}

/// Waits up to `limit` until `done` holds for the job's `latest.json`.
fn wait_for(out: &Path, limit: Duration, what: &str, done: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        if out.join("latest.json").exists() && done(&read_latest(out)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; latest.json: {}",
            std::fs::read_to_string(out.join("latest.json")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_names(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
}

/// The rows of the history whose window starts at or after `from_ms`.
fn history_from(out: &Path, from_ms: u64) -> Vec<HistoryRow> {
    read_history(out)
        .into_iter()
        .filter(|r| r.window_start >= from_ms as i64)
        .collect()
}

/// A one-partition topic read to its end (2,000 events, two hours ago) by a bounded job, then deleted and
/// recreated with 1,000 new events (one hour ago): the checkpoint's offset 2000 is past the new log's end.
fn recreated_topic(prefix: &str) -> (String, String, Dirs, u64) {
    let brokers = require_broker();
    let topic = unique_topic(prefix);
    create_topic(&brokers, &topic, 1);
    let first = now_ms() - 2 * 3_600_000;
    let first = first - first % 10_000;
    produce(&brokers, &topic, &events(first, 2000, 50));
    let dirs = Dirs::new(prefix);
    run_ok(&mut dirs.job(&brokers, &topic).bounded().command(), LIMIT);
    assert_eq!(records_read(&dirs.out), 2000);
    testkit::recreate_topic(&brokers, &topic, 1);
    let second = first + 3_600_000;
    produce(&brokers, &topic, &events(second, 1000, 50));
    (brokers, topic, dirs, second)
}

#[test]
fn a_recreated_topic_stops_the_restore_naming_partition_offsets_range_and_the_way_out() {
    let (brokers, topic, dirs, _) = recreated_topic("loss-recreated");
    let before = read_latest(&dirs.out);
    let refused = testkit::run(&mut dirs.job(&brokers, &topic).bounded().command(), LIMIT);
    assert!(!refused.status.success(), "the restore went on over a recreated topic");
    let err = stderr_of(&refused);
    assert_names(
        &err,
        &[
            &format!("topic {topic} partition 0"),
            "checkpointed offset 2000",
            "[0, 1000)",
            "recreated",
            "--on-data-loss continue",
        ],
    );
    assert!(!err.contains("input finished"), "{err}");
    assert_eq!(
        read_latest(&dirs.out)["pipeline"],
        before["pipeline"],
        "nothing was read"
    );
}

#[test]
fn with_continue_a_recreated_topic_is_read_from_its_start_and_the_loss_counted() {
    let (brokers, topic, dirs, second) = recreated_topic("loss-recreated-continue");
    run_ok(
        &mut dirs
            .job(&brokers, &topic)
            .bounded()
            .on_data_loss(OnDataLoss::Continue)
            .command(),
        LIMIT,
    );
    let latest = read_latest(&dirs.out);
    assert_eq!(
        pipeline(&latest, "events_total"),
        2000 + 1000,
        "the new records are aggregated"
    );
    assert_eq!(pipeline(&latest, "data_loss_total"), 1, "one incident");
    assert_eq!(
        pipeline(&latest, "skipped_records"),
        0,
        "a recreated topic's loss is unknown"
    );
    // The history of the new records is exactly theirs.
    let new_records = read_topic(&brokers, &topic);
    assert_eq!(new_records.len(), 1000);
    assert_history_matches(&history_from(&dirs.out, second), &expected(&new_records));
}

#[test]
fn records_removed_before_they_were_read_stop_the_restore_and_with_continue_are_counted_exactly() {
    let brokers = require_broker();
    let topic = unique_topic("loss-removed");
    create_topic(&brokers, &topic, 1);
    let first = now_ms() - 2 * 3_600_000;
    let first = first - first % 10_000;
    produce(&brokers, &topic, &events(first, 500, 50));
    let dirs = Dirs::new("loss-removed");
    let job = || dirs.job(&brokers, &topic).bounded();
    run_ok(&mut job().command(), LIMIT);

    // 300 more records, of which the first 200 are removed before the job reads them.
    let second = first + 3_600_000;
    produce(&brokers, &topic, &events(second, 300, 50));
    testkit::delete_records(&brokers, &topic, 0, 700);

    let refused = testkit::run(&mut job().command(), LIMIT);
    assert!(!refused.status.success(), "the restore skipped removed records");
    assert_names(
        &stderr_of(&refused),
        &[
            &format!("topic {topic} partition 0"),
            "checkpointed offset 500",
            "[700, 800)",
            "200 unread record(s) were removed",
            "--on-data-loss continue",
        ],
    );

    run_ok(&mut job().on_data_loss(OnDataLoss::Continue).command(), LIMIT);
    let latest = read_latest(&dirs.out);
    assert_eq!(pipeline(&latest, "skipped_records"), 200);
    assert_eq!(pipeline(&latest, "data_loss_total"), 1);
    assert_eq!(pipeline(&latest, "events_total"), 500 + 100);
    let left = read_topic(&brokers, &topic);
    assert_eq!(left.len(), 100);
    assert_history_matches(&history_from(&dirs.out, second), &expected(&left));

    // The counts survive a restart, and the loss, behind the checkpoint now, is not met again.
    run_ok(&mut job().command(), LIMIT);
    let latest = read_latest(&dirs.out);
    assert_eq!(
        (
            pipeline(&latest, "skipped_records"),
            pipeline(&latest, "data_loss_total")
        ),
        (200, 1)
    );
}

/// A one-partition topic with 100 events read by an unbounded job, which is then frozen (SIGSTOP) while 100
/// more records are produced and removed (DeleteRecords up to the log end, 200), and let go on. A frozen
/// consumer has at most one fetch in flight, which may still bring records of the first 50 (they are then read,
/// not lost); the last 50, produced once that fetch has surely returned, are lost for certain: the next fetch is
/// out of range.
fn remove_unread_records_while_running(dirs: &Dirs, brokers: &str, topic: &str, policy: OnDataLoss) -> Running {
    create_topic(brokers, topic, 1);
    produce(brokers, topic, &events(now_ms(), 100, 10));
    let running = dirs
        .job(brokers, topic)
        .idle_timeout(Duration::from_secs(600))
        .on_data_loss(policy)
        .spawn();
    wait_for(
        &dirs.out,
        Duration::from_secs(60),
        "the job read the first 100 records",
        |l| pipeline(l, "events_total") == 100,
    );
    running.pause();
    produce(brokers, topic, &events(now_ms(), 50, 10));
    // No signal tells when the broker answered the fetch in flight; it answers as soon as records arrive.
    std::thread::sleep(Duration::from_millis(1000));
    produce(brokers, topic, &events(now_ms(), 50, 10));
    testkit::delete_records(brokers, topic, 0, 200);
    running.resume();
    running
}

#[test]
fn records_removed_while_the_job_runs_stop_it_naming_the_partition() {
    let brokers = require_broker();
    let topic = unique_topic("loss-running");
    let dirs = Dirs::new("loss-running");
    let running = remove_unread_records_while_running(&dirs, &brokers, &topic, OnDataLoss::Fail);
    let out = running.wait(Duration::from_secs(60));
    assert!(!out.status.success(), "the job went on past removed records");
    assert_names(
        &stderr_of(&out),
        &[
            &format!("topic {topic} partition 0"),
            "the next offset to read 1",
            "[200, 200)",
            "unread record(s) were removed",
            "--on-data-loss continue",
        ],
    );
}

#[test]
fn with_continue_records_removed_while_running_are_counted_and_reading_goes_on() {
    let brokers = require_broker();
    let topic = unique_topic("loss-running-continue");
    let dirs = Dirs::new("loss-running-continue");
    let running = remove_unread_records_while_running(&dirs, &brokers, &topic, OnDataLoss::Continue);
    wait_for(&dirs.out, Duration::from_secs(60), "the loss is counted", |l| {
        pipeline(l, "data_loss_total") == 1
    });
    // Every record of the log is either read or counted as skipped, and at least the last 50 were skipped.
    let latest = read_latest(&dirs.out);
    let (read, skipped) = (pipeline(&latest, "events_total"), pipeline(&latest, "skipped_records"));
    assert_eq!(read + skipped, 200, "read {read}, skipped {skipped}");
    assert!(skipped >= 50, "skipped {skipped}");
    produce(&brokers, &topic, &events(now_ms(), 20, 10));
    wait_for(
        &dirs.out,
        Duration::from_secs(60),
        "records after the loss are read",
        |l| pipeline(l, "events_total") == read + 20,
    );
    running.stop_ok(Duration::from_secs(60));
    let manifest: Value = serde_json::from_slice(&std::fs::read(newest_manifest(&dirs.out).unwrap()).unwrap()).unwrap();
    assert_eq!(manifest["partitions"][0]["next_offset"], 220);
    assert_eq!(manifest["partitions"][0]["skipped_records"], skipped);
}

#[test]
fn partitions_added_while_running_are_read_and_restored_after_a_restart() {
    let brokers = require_broker();
    let topic = unique_topic("loss-new-partitions");
    create_topic(&brokers, &topic, 2);
    let dirs = Dirs::new("loss-new-partitions");
    let job = || dirs.job(&brokers, &topic).idle_timeout(Duration::from_secs(600));
    let running = job().workers(2).spawn();
    // Event times rise across the whole test, so no event is late on any partition, new or old.
    let start = now_ms() - 600_000;
    let batch = |partition: i32, from: u64, n: u64| produce_to(&brokers, &topic, Some(partition), &events(from, n, 10));
    batch(0, start, 50);
    batch(1, start + 500, 50);
    wait_for(
        &dirs.out,
        Duration::from_secs(60),
        "the first 100 records are read",
        |l| pipeline(l, "events_total") == 100,
    );

    testkit::add_partitions(&brokers, &topic, 4);
    batch(2, start + 10_000, 40);
    batch(3, start + 10_500, 40);
    wait_for(
        &dirs.out,
        Duration::from_secs(60),
        "the new partitions' records are read",
        |l| pipeline(l, "events_total") == 180,
    );
    let stopped = running.stop_ok(Duration::from_secs(60));
    assert!(stderr_of(&stopped).contains("partition added to the topic"));
    let manifest: Value = serde_json::from_slice(&std::fs::read(newest_manifest(&dirs.out).unwrap()).unwrap()).unwrap();
    let offsets: Vec<(i64, i64)> = manifest["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["partition"].as_i64().unwrap(), p["next_offset"].as_i64().unwrap()))
        .collect();
    assert_eq!(offsets, vec![(0, 50), (1, 50), (2, 40), (3, 40)]);

    // More on the new partitions; a restart with another worker count goes on where the checkpoint stands.
    batch(2, start + 20_000, 10);
    batch(3, start + 20_500, 10);
    run_ok(&mut job().workers(3).bounded().command(), LIMIT);
    let records = read_topic(&brokers, &topic);
    assert_eq!(records.len(), 200);
    assert_eq!(pipeline(&read_latest(&dirs.out), "events_total"), 200);
    assert_history_matches(&read_history(&dirs.out), &expected(&records));
}

#[test]
fn a_partition_added_for_a_worker_that_owned_none_is_read_by_that_worker() {
    let brokers = require_broker();
    let topic = unique_topic("loss-idle-worker");
    create_topic(&brokers, &topic, 1);
    let dirs = Dirs::new("loss-idle-worker");
    let job = || dirs.job(&brokers, &topic).idle_timeout(Duration::from_secs(600));
    // Two workers for one partition: worker 1 owns nothing at start.
    let running = job().workers(2).spawn();
    // Recent event times: a partition given to a worker that owned none starts at its watermark, wall clock −
    // lateness (docs/semantics.md).
    let start = now_ms() - 20_000;
    produce_to(&brokers, &topic, Some(0), &events(start, 50, 10));
    wait_for(
        &dirs.out,
        Duration::from_secs(60),
        "the first 50 records are read",
        |l| pipeline(l, "events_total") == 50,
    );

    testkit::add_partitions(&brokers, &topic, 2);
    produce_to(&brokers, &topic, Some(1), &events(start + 1_000, 40, 10));
    wait_for(
        &dirs.out,
        Duration::from_secs(60),
        "the new partition's records are read",
        |l| pipeline(l, "events_total") == 90,
    );
    let stopped = stderr_of(&running.stop_ok(Duration::from_secs(60)));
    let added = stopped
        .lines()
        .find(|l| l.contains("partition added to the topic"))
        .unwrap_or_else(|| panic!("no partition was added:\n{stopped}"));
    assert!(added.contains("partition=1") && added.contains("worker=1"), "{added}");

    run_ok(&mut job().workers(1).bounded().command(), LIMIT);
    let records = read_topic(&brokers, &topic);
    assert_eq!(records.len(), 90);
    assert_eq!(pipeline(&read_latest(&dirs.out), "events_total"), 90);
    assert_history_matches(&read_history(&dirs.out), &expected(&records));
}
