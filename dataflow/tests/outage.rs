//! A broker outage mid-run: the real broker is stopped for 20 s while the simulator and the dataflow are
//! running, then started again. The job keeps its state, logs the outage, retries, and resumes; the silence of
//! the outage is not taken for idleness (which would push the watermark past the delayed records); after the
//! run the history is exact. (This test stops the shared test broker, so it lives in its own test binary: cargo runs test binaries
//! one after another.)

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::golden::{assert_dead_letters_match, assert_history_matches, expected};
use testkit::{read_history, read_topic, require_broker, run_ok, temp_dir, unique_topic};

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
    testkit::create_topic(&brokers, &topic, 3);
    let dir = temp_dir("outage");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let dataflow = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dataflow"));
        cmd.args([
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--group",
            &topic,
            "-w",
            "2",
        ])
        .args(["--checkpoint-interval", "2s", "--trigger", "1s"])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .arg("--deadletter")
        .arg(&dead);
        cmd
    };
    let mut job = dataflow(&[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _job_guard = testkit::KillGuard(job.id());
    let mut producer = Command::new(testkit::bin("producer"))
        .args([
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--devices",
            "8",
            "--rate",
            "100",
            "--duration",
            "45s",
        ])
        .args([
            "--late-fraction",
            "0.05",
            "--bad-fraction",
            "0.02",
            "--seed",
            "31",
        ])
        .args(["--kafka-option", "message.timeout.ms=300000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _producer_guard = testkit::KillGuard(producer.id());

    std::thread::sleep(Duration::from_secs(10));
    kafka_sh("stop", &brokers);
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(20));
    assert!(
        job.try_wait().unwrap().is_none(),
        "the dataflow must ride out the outage"
    );
    kafka_sh("start", &brokers);
    println!("broker was down for {:?}", stopped.elapsed());

    let status = producer.wait().unwrap();
    assert!(
        status.success(),
        "the producer delivered everything after the outage"
    );

    // Let the job catch up, then stop it (its last checkpoint) and finish with a bounded run.
    std::thread::sleep(Duration::from_secs(5));
    Command::new("kill")
        .args(["-INT", &job.id().to_string()])
        .status()
        .unwrap();
    let out_job = job.wait_with_output().unwrap();
    assert!(
        out_job.status.success(),
        "{}",
        String::from_utf8_lossy(&out_job.stderr)
    );
    run_ok(&mut dataflow(&["--bounded"]), Duration::from_secs(120));

    let records = read_topic(&brokers, &topic);
    assert!(records.len() > 30_000, "{} records", records.len());
    let expected = expected(&records);
    assert_history_matches(&read_history(&out), &expected);
    assert_dead_letters_match(&dead, &expected);
}
