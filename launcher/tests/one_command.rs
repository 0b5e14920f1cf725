//! The one command: embedded broker, simulator, dataflow and dashboard together; live windows for the 8 default
//! devices reach the dashboard, and Ctrl-C stops everything cleanly, leaving a Parquet history.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::run::Running;

fn get(port: u16, path: &str) -> Option<serde_json::Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    serde_json::from_str(body).ok()
}

#[test]
fn one_command_runs_everything_and_stops_cleanly_on_ctrl_c() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = testkit::temp_dir("one-command");
    let pipeline = Running::spawn(
        Command::new(env!("CARGO_BIN_EXE_iot-pipeline"))
            .args(["--port", &port.to_string()])
            .args(["--window", "1s", "--lateness", "1s", "--trigger", "1s"])
            .args(["--idle-timeout", "2s"])
            .arg("--data")
            .arg(&data),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = None;
    while Instant::now() < deadline {
        if let Some(doc) = get(port, "/metrics") {
            let devices: std::collections::BTreeSet<String> = doc["records"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["final"] == false)
                .map(|r| r["device_id"].as_str().unwrap_or_default().to_string())
                .collect();
            if devices.len() == 8 && doc["pipeline"]["final_windows"].as_u64().unwrap_or(0) >= 16 {
                seen = Some(doc);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let doc = seen.expect("the dashboard showed live windows of 8 devices and final windows within 60 s");
    assert_eq!(doc["fleet"]["devices"].as_u64(), Some(8));

    // Ctrl-C: everything stops cleanly.
    let stopped = pipeline.stop_ok(Duration::from_secs(60));

    let stdout = String::from_utf8_lossy(&stopped.stdout);
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{port}/")),
        "prints the URL: {stdout}"
    );
    assert!(stdout.contains("stopped cleanly"), "{stdout}");

    let history = testkit::read_history(&data.join("aggregates"));
    let devices: std::collections::BTreeSet<&str> = history.iter().map(|r| r.device_id.as_str()).collect();
    assert_eq!(devices.len(), 8, "a final Parquet history for every device");
    let latest = testkit::read_latest(&data.join("aggregates"));
    let final_rows = history.len() as u64;
    assert_eq!(
        latest["pipeline"]["final_windows"].as_u64(),
        Some(final_rows),
        "every final window is in Parquet"
    );
}

/// Records the dataflow has read according to `latest.json`, when it was written at or after `since` (epoch s).
fn records_since(data: &std::path::Path, since: u64) -> Option<u64> {
    let path = data.join("aggregates").join("latest.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    if doc["updated_at"].as_u64()? < since {
        return None;
    }
    let p = &doc["pipeline"];
    Some(p["events_total"].as_u64()? + p["late_total"].as_u64()? + p["bad_total"].as_u64()?)
}

#[test]
fn a_second_run_on_a_new_embedded_broker_counts_exactly_what_its_simulator_sent() {
    let data = testkit::temp_dir("one-command-twice");
    // The second run sends fewer records: offsets resumed from the first run's broker would lie past the end of
    // the new log and hide every record of the second run behind the first run's counts.
    for (run, count) in [(1, 600u64), (2, 300u64)] {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let pipeline = Running::spawn(
            Command::new(env!("CARGO_BIN_EXE_iot-pipeline"))
                .args([
                    "--port",
                    &port.to_string(),
                    "--count",
                    &count.to_string(),
                    "--rate",
                    "50",
                ])
                .args(["--trigger", "1s", "--idle-timeout", "2s"])
                .arg("--data")
                .arg(&data),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while records_since(&data, since + 1) != Some(count) {
            assert!(
                Instant::now() < deadline,
                "run {run}: latest.json did not count the {count} records sent within 60 s (it says {:?})",
                records_since(&data, 0)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let stopped = pipeline.stop_ok(Duration::from_secs(60));
        assert_eq!(records_since(&data, since), Some(count), "run {run}: the last snapshot");
        let stdout = String::from_utf8_lossy(&stopped.stdout);
        assert!(stdout.contains("starts its checkpoints afresh"), "run {run}: {stdout}");
    }
}

#[test]
fn a_job_in_sql_runs_on_the_topic_its_table_names() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = testkit::temp_dir("one-command-sql");
    let job = data.join("by_site.sql");
    // Another topic than the simulator's default: the simulator is pointed at the one the table reads.
    std::fs::write(
        &job,
        "CREATE TABLE events (
             device_id VARCHAR(64) NOT NULL, ts BIGINT NOT NULL, temperature DOUBLE NOT NULL,
             location VARCHAR(64) NOT NULL, event_time AS TO_TIMESTAMP_LTZ(ts, 3),
             WATERMARK FOR event_time AS event_time - INTERVAL '1' SECOND
         ) WITH ('connector' = 'kafka', 'topic' = 'plant-floor', 'format' = 'json');
         SELECT location, window_start, window_end, COUNT(*) AS readings, COUNT(DISTINCT device_id) AS devices,
                MAX(temperature) AS hottest
         FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(event_time), INTERVAL '1' SECOND))
         GROUP BY location, window_start, window_end;",
    )
    .unwrap();
    let pipeline = Running::spawn(
        Command::new(env!("CARGO_BIN_EXE_iot-pipeline"))
            .args(["--port", &port.to_string(), "--trigger", "1s", "--idle-timeout", "2s"])
            .arg("--sql")
            .arg(&job)
            .arg("--data")
            .arg(&data),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = None;
    while Instant::now() < deadline {
        if let Some(doc) = get(port, "/metrics")
            && doc["pipeline"]["final_windows"].as_u64().unwrap_or(0) >= 4
        {
            seen = Some(doc);
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let doc = seen.expect("final windows of the SQL job within 60 s");
    let stopped = pipeline.stop_ok(Duration::from_secs(60));
    assert!(stopped.status.success());
    assert_eq!(doc["query"]["builtin"], serde_json::json!(false));
    let record = &doc["records"][0];
    assert!(
        record["location"].is_string() && record["devices"].as_u64().is_some_and(|n| n >= 1),
        "{record}"
    );
    let folders: Vec<String> = std::fs::read_dir(data.join("aggregates/parquet"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !folders.is_empty() && folders.iter().all(|f| f.starts_with("location=")),
        "{folders:?}"
    );
}
