//! An unbounded run at the simulator's default rate (8 devices × 4 msg/s) on the real broker: live windows show
//! up in `latest.json` within one trigger, each window turns final within one trigger of the watermark passing
//! its end (a partition the 8 devices leave empty stops holding the watermark back after `--idle-timeout`),
//! and Ctrl-C stops the job cleanly with a last snapshot.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use testkit::run::{DataflowRun, ProducerRun};
use testkit::{create_topic, require_broker, temp_dir, unique_topic};

const TRIGGER: Duration = Duration::from_secs(2);
const SLACK: Duration = Duration::from_millis(1200);

struct Snapshot {
    at: Instant,
    doc: serde_json::Value,
}

fn ms(rfc3339: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis() as u64
}

#[test]
fn live_windows_appear_within_a_trigger_and_turn_final_after_the_watermark() {
    let brokers = require_broker();
    let topic = unique_topic("live");
    create_topic(&brokers, &topic, 3);
    let dir = temp_dir("live");
    let out = dir.join("out");
    let job = DataflowRun::kafka(&brokers, &topic)
        .workers(2)
        .window(Duration::from_secs(2))
        .lateness(Duration::from_secs(2))
        .trigger(TRIGGER)
        .idle_timeout(Duration::from_secs(3))
        .out(&out)
        .deadletter(&dir.join("dead"))
        .spawn();
    // Let the job assign its partitions before the first event.
    std::thread::sleep(Duration::from_secs(2));
    let produced_at = Instant::now();
    let producer = ProducerRun::kafka(&brokers, &topic)
        .duration(Duration::from_secs(16))
        .spawn();

    let mut snapshots: Vec<Snapshot> = Vec::new();
    let mut last_text = Vec::new();
    while produced_at.elapsed() < Duration::from_secs(20) {
        if let Ok(text) = std::fs::read(out.join("latest.json"))
            && text != last_text
        {
            let doc: serde_json::Value = serde_json::from_slice(&text).expect("latest.json is always whole JSON");
            snapshots.push(Snapshot {
                at: Instant::now(),
                doc,
            });
            last_text = text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    producer.wait_ok(Duration::from_secs(20));

    // Ctrl-C: a clean exit.
    let stopped = job.stop_ok(Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");

    // First live window within one trigger of the first events.
    let first_live = snapshots
        .iter()
        .find(|s| s.doc["records"].as_array().unwrap().iter().any(|r| r["final"] == false))
        .expect("a live window appeared");
    let waited = first_live.at - produced_at;
    assert!(waited <= TRIGGER + SLACK, "first live window after {waited:?}");
    let devices: std::collections::BTreeSet<&str> = snapshots
        .iter()
        .flat_map(|s| s.doc["records"].as_array().unwrap())
        .map(|r| r["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(devices.len(), 8, "8 devices");

    // Each window final within one trigger of the watermark passing its end. A snapshot holds each device's
    // newest and last final window, so a final window with a later end also settles the earlier ones.
    let mut passed: BTreeMap<(String, u64), Instant> = BTreeMap::new();
    let mut final_up_to: Vec<(Instant, BTreeMap<String, u64>)> = Vec::new();
    for s in &snapshots {
        let mut finals: BTreeMap<String, u64> = BTreeMap::new();
        let wm = s.doc["watermark"].as_str().map(ms);
        for r in s.doc["records"].as_array().unwrap() {
            let key = (
                r["device_id"].as_str().unwrap().to_string(),
                ms(r["window_end"].as_str().unwrap()),
            );
            if r["final"] == true {
                let f = finals.entry(key.0.clone()).or_insert(0);
                *f = (*f).max(key.1);
            }
            if wm.is_some_and(|wm| key.1 <= wm) {
                passed.entry(key).or_insert(s.at);
            }
        }
        final_up_to.push((s.at, finals));
    }
    let finals_seen: usize = final_up_to.last().map_or(0, |(_, f)| f.len());
    assert_eq!(finals_seen, 8, "every device has a final window");
    assert!(
        passed.len() >= 8 * 2,
        "windows passed by the watermark: {}",
        passed.len()
    );
    for ((device, end), passed_at) in &passed {
        let final_at = final_up_to
            .iter()
            .find(|(_, f)| f.get(device).is_some_and(|e| e >= end))
            .map(|(at, _)| *at)
            .unwrap_or_else(|| panic!("{device} window ending {end} passed by the watermark, never final"));
        assert!(
            final_at <= *passed_at + TRIGGER + SLACK,
            "{device} window ending {end} final {:?} after the watermark passed it",
            final_at.saturating_duration_since(*passed_at)
        );
    }
}
