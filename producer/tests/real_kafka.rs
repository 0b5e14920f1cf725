//! The producer against the real broker: partitioning by device, bad and late records as reported, rate control.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::Duration;

use model::{Validation, parse_event};
use testkit::run::ProducerRun;
use testkit::{Consumed, read_topic, require_broker, run_ok, unique_topic};

fn summary(stdout: &str) -> serde_json::Value {
    let line = stdout.lines().last().expect("summary line");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary {line:?}: {e}"))
}

#[test]
fn seeded_run_partitions_by_device_and_reports_bad_and_late_records() {
    let brokers = require_broker();
    let topic = unique_topic("producer-seeded");
    let seeded = ProducerRun::kafka(&brokers, &topic)
        .devices(8)
        .count(2000)
        .rate(0.0)
        .late(0.05, Duration::from_secs(120))
        .bad(0.02)
        .seed(7);
    let out = run_ok(&mut seeded.command(), Duration::from_secs(120));
    let s = summary(&out);
    assert_eq!(s["sent"], 2000);
    assert_eq!(s["acked"], 2000);
    assert_eq!(s["failed"], 0);
    let reported_bad = s["bad"].as_u64().unwrap();
    let reported_late = s["late"].as_u64().unwrap();
    assert!((20..=80).contains(&reported_bad), "bad {reported_bad}");
    assert!((50..=200).contains(&reported_late), "late {reported_late}");

    assert_eq!(
        testkit::partition_count(&brokers, &topic),
        Some(3),
        "the producer creates 3 partitions"
    );
    let records = read_topic(&brokers, &topic);
    assert_eq!(records.len(), 2000);

    let mut partition_of: HashMap<Vec<u8>, HashSet<i32>> = HashMap::new();
    let (mut bad, mut late) = (0, 0);
    for r in &records {
        let key = r.key.clone().expect("every record has a key");
        partition_of.entry(key.clone()).or_default().insert(r.partition);
        let created = r.timestamp_ms.expect("create time") as u64;
        let rules = Validation {
            now_ms: created,
            max_future_ms: 3_600_000,
        };
        match parse_event(r.value.as_deref(), rules) {
            Err(_) => bad += 1,
            Ok(e) => {
                assert_eq!(e.device_id.as_bytes(), key.as_slice(), "key = device_id");
                // The event time is taken just before the record is handed to Kafka.
                if e.ts + 50 < created {
                    late += 1;
                    assert!(
                        created - e.ts <= 120_000 + 50,
                        "late by {} ms, more than --max-delay",
                        created - e.ts
                    );
                }
            }
        }
    }
    assert_eq!(partition_of.len(), 8, "8 devices");
    for (key, parts) in &partition_of {
        assert_eq!(
            parts.len(),
            1,
            "device {} spread over {parts:?}",
            String::from_utf8_lossy(key)
        );
    }
    let used: HashSet<i32> = partition_of.values().flatten().copied().collect();
    assert!(used.len() >= 2, "8 devices hash onto more than one partition: {used:?}");
    assert_eq!(bad, reported_bad, "records failing validation = producer's bad count");
    // A late delay under 50 ms cannot be told from send latency; such records are rare (delays are 1 ms..120 s).
    assert!(
        late <= reported_late && late + 3 >= reported_late,
        "late {late} vs reported {reported_late}"
    );
}

#[test]
fn default_rate_sends_32_messages_per_second_evenly() {
    let brokers = require_broker();
    let topic = unique_topic("producer-rate");
    let steady = ProducerRun::kafka(&brokers, &topic)
        .devices(8)
        .rate(4.0)
        .duration(Duration::from_secs(10));
    let out = run_ok(&mut steady.command(), Duration::from_secs(60));
    let s = summary(&out);
    let sent = s["sent"].as_u64().unwrap();
    assert!((312..=328).contains(&sent), "sent {sent}, expected 320 ± 8");
    let records: Vec<Consumed> = read_topic(&brokers, &topic);
    assert_eq!(records.len() as u64, sent);
    let mut times: Vec<i64> = records.iter().map(|r| r.timestamp_ms.unwrap()).collect();
    times.sort_unstable();
    let span = times[times.len() - 1] - times[0];
    assert!(
        (9_000..=10_500).contains(&span),
        "records span {span} ms, expected about 10 s"
    );
    // Evenly spread: every whole second of the run holds close to 32 records.
    let first = times[0];
    let mut per_second = [0u32; 10];
    for t in &times {
        let s = ((t - first) / 1000) as usize;
        if s < 10 {
            per_second[s] += 1;
        }
    }
    for (i, n) in per_second.iter().enumerate() {
        assert!((26..=38).contains(n), "second {i} holds {n} records: {per_second:?}");
    }
}

#[test]
fn unreachable_broker_fails_fast_naming_the_flag() {
    let started = std::time::Instant::now();
    let unreachable = ProducerRun::kafka("127.0.0.1:1", model::DEFAULT_TOPIC).count(1);
    let out = testkit::run(&mut unreachable.command(), Duration::from_secs(60));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach Kafka at 127.0.0.1:1 (--brokers)"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn bad_flags_fail_with_a_message_naming_the_flag() {
    for (args, needle) in [
        (&["--bad-fraction", "1.5"][..], "--bad-fraction"),
        (&["--rate", "-1"][..], "--rate"),
        (&["--duration", "ten"][..], "--duration"),
        (
            &["--late-fraction", "0.6", "--bad-fraction", "0.6"][..],
            "--late-fraction",
        ),
    ] {
        let out = testkit::run(
            Command::new(env!("CARGO_BIN_EXE_producer")).args(args),
            Duration::from_secs(30),
        );
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn file_output_is_seeded_and_on_a_simulated_clock() {
    let dir = testkit::temp_dir("producer-file");
    let write = |name: &str| {
        let path = dir.join(name);
        let to_file = ProducerRun::to_file(&path)
            .count(1000)
            .devices(4)
            .rate(10.0)
            .start_ms(1_700_000_000_000)
            .seed(3)
            .bad(0.1);
        run_ok(&mut to_file.command(), Duration::from_secs(30));
        std::fs::read(path).unwrap()
    };
    let a = write("a.jsonl");
    assert_eq!(a, write("b.jsonl"), "same seed, same file");
    let lines: Vec<&[u8]> = a.split(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 1001, "1000 lines and the final newline");
    let rules = Validation {
        now_ms: 1_700_000_000_000 + 100_000,
        max_future_ms: 0,
    };
    let good: Vec<_> = lines[..1000]
        .iter()
        .filter_map(|l| parse_event(Some(l), rules).ok())
        .collect();
    assert!(good.len() > 850 && good.len() < 950, "{} good", good.len());
    // 40 records per simulated second: record i at start + 25 ms * i.
    assert_eq!(good[0].ts, 1_700_000_000_000);
    assert!(good.iter().all(|e| e.ts < 1_700_000_000_000 + 25_000));
}

#[test]
fn the_device_table_goes_to_a_compacted_topic_first_every_row_then_seeded_changes() {
    let brokers = require_broker();
    let (topic, devices_topic) = (unique_topic("producer-rows"), unique_topic("producer-devices"));
    let run = ProducerRun::kafka(&brokers, &topic)
        .devices(6)
        .rate(10.0)
        .duration(Duration::from_secs(3))
        .seed(11)
        .devices_topic(&devices_topic, 4.0);
    let s = summary(&run_ok(&mut run.command(), Duration::from_secs(120)));
    let rows = read_topic(&brokers, &devices_topic);
    assert_eq!(s["device_rows"].as_u64(), Some(rows.len() as u64));
    assert!(
        rows.len() >= 6 + 8,
        "6 first rows and about 12 changes in 3 s: {}",
        rows.len()
    );
    let mut first: HashSet<String> = HashSet::new();
    for r in &rows {
        let value: serde_json::Value = serde_json::from_slice(r.value.as_deref().expect("a row")).unwrap();
        let id = value["device_id"].as_str().unwrap().to_string();
        let key: serde_json::Value = serde_json::from_slice(r.key.as_deref().unwrap()).unwrap();
        assert_eq!(
            key,
            serde_json::json!({ "device_id": id }),
            "keyed as upsert-kafka writes a table"
        );
        for field in ["site", "model", "max_temperature", "updated_at"] {
            assert!(!value[field].is_null(), "{field} in {value}");
        }
        first.insert(id);
    }
    assert_eq!(first.len(), 6, "every device has a row");
    // The readings carry the same device ids.
    let readings: HashSet<Vec<u8>> = read_topic(&brokers, &topic).into_iter().filter_map(|r| r.key).collect();
    assert!(first.iter().all(|id| readings.contains(id.as_bytes())));
}
