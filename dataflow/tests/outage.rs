//! A broker outage mid-run: the real broker is stopped for 20 s while the simulator and the dataflow are
//! running, then started again. The job keeps its state, logs the outage, retries, and resumes; the silence of
//! the outage is not taken for idleness (which would push the watermark past the delayed records); after the
//! run the history is exact, and so is the exactly-once Kafka output (`--sink-topic`), whose transactions the
//! outage interrupts: a `read_committed` consumer reads each window once. A cluster of two processes under
//! `dataflow cluster` reads the same topic through the same outage: no process takes the outage for a lost peer
//! (no restart), and its history is exact too. (This test stops the shared test broker, so it lives in its own test binary: cargo runs test binaries
//! one after another.)

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::golden::{assert_dead_letters_match, assert_history_matches, expected};
use testkit::run::{DataflowRun, ProducerRun, Running};
use testkit::{
    read_committed, read_history, read_latest, read_topic, require_broker, run_ok, sink_rows, temp_dir, unique_topic,
};

fn kafka_sh(action: &str, brokers: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/kafka.sh");
    let port = brokers.rsplit(':').next().unwrap();
    let out = Command::new("bash")
        .arg(&script)
        .arg(action)
        .env("KAFKA_PORT", port)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "infra/kafka.sh {action} failed (the outage test needs the broker started by infra/kafka.sh):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn twenty_second_broker_outage_loses_and_duplicates_nothing() {
    let brokers = require_broker();
    let topic = unique_topic("outage");
    let sink = unique_topic("outage-sink");
    testkit::create_topic(&brokers, &topic, 3);
    let dir = temp_dir("outage");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let dataflow = DataflowRun::kafka(&brokers, &topic)
        .workers(2)
        .checkpoint_interval(Duration::from_secs(2))
        .trigger(Duration::from_secs(1))
        .out(&out)
        .deadletter(&dead)
        .sink_topic(&sink);
    let mut job = dataflow.spawn();
    // The same topic, read by a supervised cluster of two processes in a consumer group and a folder of its own.
    let cluster_out = dir.join("cluster-out");
    let cluster = DataflowRun::kafka(&brokers, &topic)
        .with(|a| a.group = Some(format!("{topic}-cluster")))
        .checkpoint_interval(Duration::from_secs(2))
        .trigger(Duration::from_secs(1))
        .out(&cluster_out)
        .deadletter(&dir.join("cluster-dead"));
    let mut supervised = Running::spawn(&mut cluster.supervised(2, &[]));
    let producer = ProducerRun::kafka(&brokers, &topic)
        .devices(8)
        .rate(100.0)
        .duration(Duration::from_secs(45))
        .late_and_bad()
        .seed(31)
        .kafka_option("message.timeout.ms=300000")
        .spawn();

    std::thread::sleep(Duration::from_secs(10));
    kafka_sh("stop", &brokers);
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(20));
    assert!(job.is_running(), "the dataflow must ride out the outage");
    assert!(supervised.is_running(), "the cluster must ride out the outage");
    kafka_sh("start", &brokers);
    println!("broker was down for {:?}", stopped.elapsed());

    let delivered = producer.wait(Duration::from_secs(300));
    assert!(
        delivered.status.success(),
        "the producer delivered everything after the outage:\n{}",
        String::from_utf8_lossy(&delivered.stderr)
    );

    // Let the job catch up, then stop it (its last checkpoint) and finish with a bounded run.
    std::thread::sleep(Duration::from_secs(5));
    job.stop_ok(Duration::from_secs(60));
    run_ok(&mut dataflow.bounded().command(), Duration::from_secs(120));
    let log = supervised.stop_ok(Duration::from_secs(90));
    assert_eq!(
        read_latest(&cluster_out)["pipeline"]["restarts"].as_u64(),
        Some(0),
        "the outage was taken for a lost process:\n{}",
        String::from_utf8_lossy(&log.stderr)
    );
    run_ok(&mut cluster.bounded().supervised(2, &[]), Duration::from_secs(120));

    let records = read_topic(&brokers, &topic);
    assert!(records.len() > 30_000, "{} records", records.len());
    let expected = expected(&records);
    let history = read_history(&out);
    assert_history_matches(&history, &expected);
    assert_history_matches(&read_history(&cluster_out), &expected);
    assert_dead_letters_match(&dead, &expected);
    let published = sink_rows(&read_committed(&brokers, &sink));
    assert_history_matches(&published, &expected);
    let windows = |rows: &[testkit::HistoryRow]| {
        rows.iter()
            .map(|r| (r.device_id.clone(), r.window_start, r.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        windows(&published),
        windows(&history),
        "the sink topic holds the history, once"
    );
}
