//! The temporal join end to end on the real broker: readings joined as of their event time with a device table
//! read from an upsert-kafka topic (versions that change mid-window and exactly at a window's start, a tombstone
//! and the key coming back, devices the table does not know, a bad table record), each output checked against
//! DuckDB's `ASOF JOIN` over the same records (`testkit::sql_golden`), at `-w 1`, `-w 3` and `-n 2`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use testkit::golden::dead_letters;
use testkit::run::DataflowRun;
use testkit::sql_golden::{Against, Golden};
use testkit::{
    KeyValue, Lcg, create_topic, produce, produce_stamped, read_latest, require_broker, run_ok, temp_dir, unique_topic,
};

const LIMIT: Duration = Duration::from_secs(300);
const START_MS: i64 = 1_730_635_200_000; // 2024-11-03T12:00:00Z
/// Devices d-0..d-7 send readings; the table knows d-0..d-5 (and d-9, which sends none).
const DEVICES: usize = 8;
const SITES: [&str; 3] = ["north", "south", "east"];

const READINGS: &str = "CREATE TABLE readings (
    device_id   VARCHAR(64) NOT NULL,
    temperature DOUBLE,
    event_time  TIMESTAMP NOT NULL,
    WATERMARK FOR event_time AS event_time - INTERVAL '5' SECOND
) WITH ('connector' = 'kafka', 'topic' = '{readings}', 'format' = 'json');";

const TABLE: &str = "CREATE TABLE devices (
    device_id       TEXT,
    site            TEXT,
    max_temperature DOUBLE,
    updated_at      TIMESTAMP,
    PRIMARY KEY (device_id) NOT ENFORCED,
    WATERMARK FOR updated_at AS updated_at
) WITH ('connector' = 'upsert-kafka', 'topic' = '{devices}', 'format' = 'json');";

/// Readings by site: the ones with no version form the group whose site is NULL.
const BY_SITE: &str = "SELECT d.site, COUNT(*) AS n, AVG(r.temperature) AS avg_temperature,
       COUNT(*) FILTER (WHERE r.temperature > d.max_temperature) AS over_limit
FROM readings r
LEFT JOIN devices FOR SYSTEM_TIME AS OF r.event_time AS d ON r.device_id = d.device_id
GROUP BY d.site, tumble(interval '10 seconds');";

/// The versions as DuckDB sees them, a deletion's columns NULL.
const VERSIONS: &str = "dv AS (SELECT device_id, updated_at, CASE WHEN deleted THEN NULL ELSE site END AS site,
    CASE WHEN deleted THEN NULL ELSE max_temperature END AS max_temperature, deleted FROM devices)";

const BY_SITE_EXPECTED: &str = "WITH {versions},
j AS (SELECT r.temperature, dv.site, dv.max_temperature, epoch_ms(r.event_time) AS __t
      FROM readings r ASOF LEFT JOIN dv ON r.device_id = dv.device_id AND r.event_time >= dv.updated_at)
SELECT site, epoch_ms(__t - __t % 10000) AS window_start, epoch_ms(__t - __t % 10000 + 10000) AS window_end,
       count(*) AS n, avg(temperature) AS avg_temperature,
       count(*) FILTER (WHERE temperature > max_temperature) AS over_limit
FROM j GROUP BY site, __t - __t % 10000 ORDER BY site, window_start";

/// Per device, an inner join: readings with no version are dropped; WHERE and FILTER read joined columns.
const BY_DEVICE: &str = "SELECT r.device_id, COUNT(*) AS n, MAX(r.temperature) AS hottest, LAST_VALUE(d.site) AS site,
       COUNT(*) FILTER (WHERE r.temperature > d.max_temperature) AS over_limit
FROM readings r
JOIN devices FOR SYSTEM_TIME AS OF r.event_time AS d ON r.device_id = d.device_id
WHERE d.site <> 'south'
GROUP BY r.device_id, tumble(interval '10 seconds');";

const BY_DEVICE_EXPECTED: &str = "WITH {versions},
j AS (SELECT r.device_id, r.temperature, dv.site, dv.max_temperature, epoch_ms(r.event_time) AS __t, r.__seq
      FROM readings r ASOF JOIN dv ON r.device_id = dv.device_id AND r.event_time >= dv.updated_at
      WHERE NOT dv.deleted AND dv.site <> 'south')
SELECT device_id, epoch_ms(__t - __t % 10000) AS window_start, epoch_ms(__t - __t % 10000 + 10000) AS window_end,
       count(*) AS n, max(temperature) AS hottest, arg_max(site, (__t, __seq)) AS site,
       count(*) FILTER (WHERE temperature > max_temperature) AS over_limit
FROM j GROUP BY device_id, __t - __t % 10000 ORDER BY device_id, window_start";

const READING_COLUMNS: &str = "device_id VARCHAR(64) NOT NULL, temperature DOUBLE, event_time TIMESTAMP NOT NULL";
const VERSION_COLUMNS: &str = "device_id TEXT NOT NULL, site TEXT, max_temperature DOUBLE, updated_at TIMESTAMP NOT NULL, deleted BOOLEAN NOT NULL";

/// `n` readings over 60 s, keyed by device (one device's readings keep their order in one partition), event
/// times jittered by up to ±1 s (under the 5 s lateness); then, for each change of the table after the start, a
/// reading of its device exactly at the change and one a millisecond before.
fn readings(n: usize, seed: u64, changes: &[Change]) -> Vec<Value> {
    let mut rng = Lcg(seed);
    let at_changes: Vec<(String, i64)> = changes
        .iter()
        .copied()
        .filter(|(t, ..)| *t > START_MS)
        .flat_map(|(t, device, _)| [(device.to_string(), t - 1), (device.to_string(), t)])
        .collect();
    let reading = |device: String, t: i64, rng: &mut Lcg| {
        json!({
            "device_id": device,
            "temperature": 18.0 + rng.below(14_000) as f64 / 1000.0,
            "event_time": time_text(t),
        })
    };
    let mut out: Vec<Value> = (0..n)
        .map(|i| {
            let device = format!("d-{}", i % DEVICES);
            let t = START_MS + (i / DEVICES) as i64 * (60_000 * DEVICES as i64 / n as i64) + rng.below(2_000) as i64
                - 1_000;
            reading(device, t, &mut rng)
        })
        .collect();
    // Each where the stream reaches its time, so that it is on time.
    for (device, t) in at_changes.into_iter().rev() {
        let at = ((t - START_MS) as usize * n / 60_000).min(out.len());
        let r = reading(device, t, &mut rng);
        out.insert(at, r);
    }
    out
}

/// One version: `(time, device, Some((site, max_temperature)))`, or a deletion (`None`).
type Change = (i64, &'static str, Option<(&'static str, f64)>);

const TABLE_DEVICES: [&str; 7] = ["d-0", "d-1", "d-2", "d-3", "d-4", "d-5", "d-9"];

/// The first version of every device the table knows, a minute before the readings.
fn first_versions() -> Vec<Change> {
    TABLE_DEVICES
        .iter()
        .enumerate()
        .map(|(i, d)| (START_MS - 60_000 + i as i64, *d, Some((SITES[i % 3], 24.0 + i as f64))))
        .collect()
}

/// The device table's history, in time order: first versions before the readings, then a move mid-window, a
/// threshold changed exactly at a window's start, a deletion and the device coming back, two changes at once.
fn changes() -> Vec<Change> {
    let mut c = first_versions();
    c.extend([
        (START_MS + 12_345, "d-1", Some(("east", 25.0))),
        (START_MS + 20_000, "d-2", Some(("east", 20.0))),
        (START_MS + 25_500, "d-3", None),
        (START_MS + 33_333, "d-3", Some(("west", 22.0))),
        (START_MS + 41_000, "d-4", Some(("south", 26.0))),
        (START_MS + 41_000, "d-0", Some(("north", 30.0))),
    ]);
    c
}

fn time_text(t: i64) -> String {
    chrono::DateTime::from_timestamp_millis(t)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The table's records as produced (JSON keys as Flink's upsert-kafka writes them; a deletion is a tombstone
/// stamped with its time), one bad record among them.
fn table_records(changes: &[Change]) -> Vec<(KeyValue, Option<i64>)> {
    let mut out: Vec<(KeyValue, Option<i64>)> = changes
        .iter()
        .copied()
        .map(|(t, device, row)| {
            let key = json!({ "device_id": device }).to_string().into_bytes();
            let value = row.map(|(site, max)| {
                json!({"device_id": device, "site": site, "max_temperature": max, "updated_at": time_text(t)})
                    .to_string()
                    .into_bytes()
            });
            ((Some(key), value), Some(t))
        })
        .collect();
    let bad = json!({"device_id": "d-5", "site": 7, "updated_at": time_text(START_MS + 5_000)});
    out.insert(
        7,
        (
            (
                Some(br#"{"device_id":"d-5"}"#.to_vec()),
                Some(bad.to_string().into_bytes()),
            ),
            Some(START_MS + 5_000),
        ),
    );
    out
}

/// The versions as the golden check's table.
fn version_rows(changes: &[Change]) -> Vec<Value> {
    changes
        .iter()
        .copied()
        .map(|(t, device, row)| match row {
            Some((site, max)) => json!({"device_id": device, "site": site, "max_temperature": max,
                                        "updated_at": time_text(t), "deleted": false}),
            None => json!({"device_id": device, "updated_at": time_text(t), "deleted": true}),
        })
        .collect()
}

struct Topics {
    brokers: String,
    readings: String,
    devices: String,
    events: Vec<Value>,
}

fn topics(prefix: &str) -> Topics {
    let brokers = require_broker();
    let readings_topic = unique_topic(&format!("{prefix}-readings"));
    let devices_topic = unique_topic(&format!("{prefix}-devices"));
    create_topic(&brokers, &readings_topic, 3);
    create_topic(&brokers, &devices_topic, 2);
    let events = readings(4_000, 11, &changes());
    produce(&brokers, &readings_topic, &keyed(&events));
    produce_stamped(&brokers, &devices_topic, None, &table_records(&changes()));
    Topics {
        brokers,
        readings: readings_topic,
        devices: devices_topic,
        events,
    }
}

/// Readings as produced: keyed by their device.
fn keyed(events: &[Value]) -> Vec<KeyValue> {
    events
        .iter()
        .map(|e| {
            let key = e["device_id"].as_str().unwrap().as_bytes().to_vec();
            (Some(key), Some(e.to_string().into_bytes()))
        })
        .collect()
}

fn job_file(dir: &Path, name: &str, t: &Topics, select: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        "{}\n{}\n{select}\n",
        READINGS.replace("{readings}", &t.readings),
        TABLE.replace("{devices}", &t.devices)
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn golden(dir: &Path, events: &[Value], changes: &[Change], expected: &str) -> Golden {
    Golden::new(
        dir,
        "readings",
        READING_COLUMNS,
        expected.replace("{versions}", VERSIONS),
    )
    .events(events)
    .versions("devices", VERSION_COLUMNS, &version_rows(changes))
}

#[test]
fn readings_by_site_as_of_their_event_time_equal_duckdbs_asof_join_at_any_worker_count_and_in_a_cluster() {
    let t = topics("tj-site");
    let dir = temp_dir("tj-site");
    let file = job_file(&dir, "by_site.sql", &t, BY_SITE);
    let job = |name: &str| {
        let out = dir.join(name);
        DataflowRun::kafka(&t.brokers, &t.readings)
            .sql(&file)
            .bounded()
            .out(&out.join("out"))
            .deadletter(&out.join("dead"))
    };
    run_ok(&mut job("w1").workers(1).command(), LIMIT);
    run_ok(&mut job("w3").workers(3).command(), LIMIT);
    let hostfile = testkit::loopback_hostfile(&dir, 2);
    let cluster: Vec<_> = (0..2).map(|p| job("n2").cluster(2, p, &hostfile).spawn()).collect();
    for process in cluster {
        process.wait_ok(LIMIT);
    }
    let check = golden(&dir, &t.events, &changes(), BY_SITE_EXPECTED);
    for name in ["w1", "w3", "n2"] {
        let out = dir.join(name).join("out");
        check.assert_equal(&[Against::History(&out), Against::Latest(&out)]);
        // The bad table record is a dead letter that names the table; no reading is.
        let letters = dead_letters(&dir.join(name).join("dead"));
        assert_eq!(letters.len(), 1, "{name}: {letters:?}");
        assert_eq!(letters[0].0, "wrong_type", "{name}");
        let latest = read_latest(&out);
        assert_eq!(
            latest["pipeline"]["events_total"].as_u64(),
            Some(t.events.len() as u64),
            "{name}"
        );
    }
}

#[test]
fn an_inner_join_per_device_drops_unknown_devices_and_filters_on_joined_columns_as_duckdb_does() {
    let t = topics("tj-device");
    let dir = temp_dir("tj-device");
    let file = job_file(&dir, "by_device.sql", &t, BY_DEVICE);
    let out = dir.join("w2").join("out");
    run_ok(
        &mut DataflowRun::kafka(&t.brokers, &t.readings)
            .sql(&file)
            .bounded()
            .workers(2)
            .out(&out)
            .deadletter(&dir.join("w2").join("dead"))
            .command(),
        LIMIT,
    );
    // The expected rows drop d-6 and d-7 (the table never knew them) and d-3 while it is deleted.
    golden(&dir, &t.events, &changes(), BY_DEVICE_EXPECTED)
        .assert_equal(&[Against::History(&out), Against::Latest(&out)]);
}

/// How many of `events` meet no version of `changes`: the devices the table never knew, and a device's readings
/// while it is deleted (every device's first version is before every reading).
fn unmatched(events: &[Value], changes: &[Change]) -> u64 {
    events
        .iter()
        .filter(|e| {
            let device = e["device_id"].as_str().unwrap();
            let t = chrono::DateTime::parse_from_rfc3339(e["event_time"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
            let valid = changes
                .iter()
                .filter(|(at, d, _)| *d == device && *at <= t)
                .max_by_key(|(at, ..)| *at);
            !matches!(valid, Some((_, _, Some(_))))
        })
        .count() as u64
}

/// Two empty topics (readings of 3 partitions, the table of 2) and the job by site over them, for the runs that
/// are live before a bounded finish: a long idle timeout (these readings are not of the wall clock's time) and a
/// checkpoint every 500 ms.
struct Live {
    brokers: String,
    readings: String,
    devices: String,
    file: PathBuf,
    out: PathBuf,
    dead: PathBuf,
}

fn live(prefix: &str) -> (Live, PathBuf) {
    let brokers = require_broker();
    let (readings, devices) = (
        unique_topic(&format!("{prefix}-readings")),
        unique_topic(&format!("{prefix}-devices")),
    );
    create_topic(&brokers, &readings, 3);
    create_topic(&brokers, &devices, 2);
    let dir = temp_dir(prefix);
    let t = Topics {
        brokers: brokers.clone(),
        readings: readings.clone(),
        devices: devices.clone(),
        events: Vec::new(),
    };
    let file = job_file(&dir, "by_site.sql", &t, BY_SITE);
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let live = Live {
        brokers,
        readings,
        devices,
        file,
        out,
        dead,
    };
    (live, dir)
}

impl Live {
    fn job(&self, workers: usize) -> DataflowRun {
        DataflowRun::kafka(&self.brokers, &self.readings)
            .sql(&self.file)
            .workers(workers)
            .idle_timeout(Duration::from_secs(600))
            .checkpoint_interval(Duration::from_millis(500))
            .trigger(Duration::from_millis(500))
            .out(&self.out)
            .deadletter(&self.dead)
    }
}

/// The id of a manifest file (`ckpt-<id:020>.json`).
fn manifest_id(manifest: &Path) -> u64 {
    let name = manifest.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.strip_prefix("ckpt-")
        .and_then(|n| n.strip_suffix(".json"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a manifest: {name}"))
}

/// A table that changes all the time: every 250 ms one of its devices moves or changes its threshold, now and
/// then one is deleted (and comes back with its next change).
fn churn() -> Vec<Change> {
    let mut c = first_versions();
    for k in 0..264i64 {
        let device = TABLE_DEVICES[k as usize % TABLE_DEVICES.len()];
        let row = (k % 37 != 5).then(|| (SITES[(k as usize / 7) % 3], 20.0 + (k % 9) as f64));
        c.push((START_MS + k * 250, device, row));
    }
    c
}

#[test]
fn the_table_is_restored_exactly_after_kill_9_during_a_burst_of_updates_into_another_worker_count() {
    let (l, dir) = live("tj-kill");
    let changes = churn();
    let events = readings(6_000, 5, &changes);
    // The first half of the readings and of the table's changes; the rest while the job runs.
    let (first, second) = events.split_at(events.len() / 2);
    let records = table_records(&changes);
    let split = records.partition_point(|(_, t)| t.is_some_and(|t| t <= START_MS + 35_000));
    produce(&l.brokers, &l.readings, &keyed(first));
    produce_stamped(&l.brokers, &l.devices, None, &records[..split]);
    let mut running = l.job(1).spawn();
    wait_for_table_checkpoint(&mut running, &l.out);
    produce(&l.brokers, &l.readings, &keyed(second));
    produce_stamped(&l.brokers, &l.devices, None, &records[split..]);
    std::thread::sleep(Duration::from_millis(600));
    running.kill9();
    run_ok(&mut l.job(3).bounded().command(), LIMIT);
    let out = &l.out;
    golden(&dir, &events, &changes, BY_SITE_EXPECTED).assert_equal(&[Against::History(out), Against::Latest(out)]);
    // The join's counters continue from the checkpoint: neither lost nor counted twice.
    let p = read_latest(out)["pipeline"].clone();
    assert_eq!(p["unmatched_total"].as_u64(), Some(unmatched(&events, &changes)), "{p}");
    assert_eq!(p["events_total"].as_u64(), Some(events.len() as u64), "{p}");
}

/// Waits until a committed checkpoint holds the versioned table.
fn wait_for_table_checkpoint(running: &mut testkit::run::Running, out: &Path) {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        assert!(running.is_running(), "the job exited by itself");
        assert!(std::time::Instant::now() < deadline, "no checkpoint with the table");
        let saved = testkit::newest_manifest(out).is_some_and(|m| {
            let id = manifest_id(&m);
            out.join(format!("_checkpoints/table/table-{id:020}-w0.jsonl")).exists()
        });
        if saved {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn readings_read_before_the_table_exists_wait_for_it_then_a_stop_and_a_bounded_restart_equal_duckdb() {
    let (l, dir) = live("tj-wait");
    let mut changes = changes();
    let events = readings(3_000, 17, &changes);
    // A row of every device after the last reading moves every partition's watermark past every reading.
    for (i, d) in TABLE_DEVICES.iter().enumerate() {
        changes.push((START_MS + 70_000 + i as i64, d, Some(("north", 20.0))));
    }
    // Every reading first; the table only once the job has read them all.
    produce(&l.brokers, &l.readings, &keyed(&events));
    let out = &l.out;
    let mut running = l.job(2).spawn();
    let deadline = std::time::Instant::now() + LIMIT;
    let lag_zero = |out: &Path| {
        read_latest_opt(out)
            .is_some_and(|l| l["pipeline"]["lag"] == json!(0) && l["pipeline"]["events_total"] == json!(events.len()))
    };
    while !lag_zero(out) {
        assert!(
            running.is_running() && std::time::Instant::now() < deadline,
            "the job read every reading"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Read, but waiting: no window can be final before the table's watermark passes its readings.
    let latest = read_latest(out);
    assert_eq!(latest["pipeline"]["final_windows"], json!(0), "{}", latest["pipeline"]);
    produce_stamped(&l.brokers, &l.devices, None, &table_records(&changes));
    // Every reading meets its version and every window turns final; the stop checkpoint then carries the table.
    while !testkit::newest_manifest(out)
        .is_some_and(|m| std::fs::read_to_string(m).is_ok_and(|t| t.contains("\"next_offset\"")))
        || read_latest(out)["pipeline"]["final_windows"] == json!(0)
    {
        assert!(
            running.is_running() && std::time::Instant::now() < deadline,
            "the job joined the readings"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let stopped = std::time::Instant::now();
    running.stop_ok(LIMIT);
    assert!(
        stopped.elapsed() < Duration::from_secs(20),
        "the stop checkpoint completes at once"
    );
    let id = manifest_id(&testkit::newest_manifest(out).expect("the stop checkpoint"));
    assert!(
        out.join(format!("_checkpoints/table/table-{id:020}-w1.jsonl")).exists(),
        "it holds the table"
    );
    run_ok(&mut l.job(2).bounded().command(), LIMIT);
    golden(&dir, &events, &changes, BY_SITE_EXPECTED).assert_equal(&[Against::History(out), Against::Latest(out)]);
}

#[test]
fn a_checkpoint_whose_table_cannot_be_saved_does_not_commit_and_the_run_fails_naming_it() {
    let t = topics("tj-unsaved");
    let dir = temp_dir("tj-unsaved");
    let file = job_file(&dir, "by_site.sql", &t, BY_SITE);
    let out = dir.join("out");
    // A file where the table's folder goes: no table file can be written.
    std::fs::create_dir_all(out.join("_checkpoints")).unwrap();
    std::fs::write(out.join("_checkpoints/table"), b"in the way").unwrap();
    let run = testkit::run(
        &mut DataflowRun::kafka(&t.brokers, &t.readings)
            .sql(&file)
            .bounded()
            .workers(2)
            .out(&out)
            .deadletter(&dir.join("dead"))
            .command(),
        LIMIT,
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "the run must fail:\n{stderr}");
    assert!(stderr.contains("cannot save the versioned table"), "{stderr}");
    assert_eq!(
        testkit::newest_manifest(&out),
        None,
        "no checkpoint commits without its table"
    );
}

#[test]
fn a_stop_treats_a_quiet_table_as_idle_and_completes_at_once_then_a_restart_is_exact() {
    let (l, dir) = live("tj-quiet");
    // Live readings (the last 20 s) and a table whose rows are a minute old and do not change any more.
    let now = chrono::Utc::now().timestamp_millis();
    let mut rng = Lcg(23);
    let events: Vec<Value> = (0..2_000)
        .map(|i| {
            json!({
                "device_id": format!("d-{}", i % DEVICES),
                "temperature": 18.0 + rng.below(14_000) as f64 / 1000.0,
                "event_time": time_text(now - 20_000 + i as i64 * 10),
            })
        })
        .collect();
    let changes: Vec<Change> = TABLE_DEVICES
        .iter()
        .enumerate()
        .map(|(i, d)| (now - 60_000 + i as i64, *d, Some((SITES[i % 3], 24.0 + i as f64))))
        .collect();
    produce_stamped(&l.brokers, &l.devices, None, &table_records(&changes));
    produce(&l.brokers, &l.readings, &keyed(&events));
    let out = &l.out;
    let mut running = l.job(2).spawn();
    let deadline = std::time::Instant::now() + LIMIT;
    while read_latest_opt(out).is_none_or(|l| l["pipeline"]["events_total"] != json!(events.len())) {
        assert!(
            running.is_running() && std::time::Instant::now() < deadline,
            "the job read every reading"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every reading is read and waits for the table (its watermark is a minute behind, never idle here).
    let stopped = std::time::Instant::now();
    running.stop_ok(LIMIT);
    assert!(
        stopped.elapsed() < Duration::from_secs(15),
        "the stop did not wait for the quiet table"
    );
    let id = manifest_id(&testkit::newest_manifest(out).expect("the stop checkpoint committed"));
    assert!(
        out.join(format!("_checkpoints/table/table-{id:020}-w0.jsonl")).exists(),
        "with the table"
    );
    run_ok(&mut l.job(2).bounded().command(), LIMIT);
    golden(&dir, &events, &changes, BY_SITE_EXPECTED).assert_equal(&[Against::History(out), Against::Latest(out)]);
}

/// `latest.json` of `out`, when there is one to read.
fn read_latest_opt(out: &Path) -> Option<Value> {
    std::fs::read(out.join("latest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}
