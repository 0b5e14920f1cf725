//! Jobs in SQL end to end on the real broker, each output checked against DuckDB running the same query over the
//! same events (`testkit::sql_golden`): a schema that is not the seed's (ISO-8601 event times in three spellings, a
//! `sensor_id` key, nullable fields missing or `null` in some records, bad and late records among them), a
//! tumbling query with WHERE, FILTER, HAVING, COUNT(DISTINCT), FIRST/LAST_VALUE and expressions in aggregates at
//! `-w 1`, `-w 3` and `-n 2` (history, latest.json and the Kafka output, identical across runs); a hopping query
//! grouped by `site` with a scalar UDF over aggregates; a session query with an aggregate UDF; kill -9 with windows
//! open, restored with another `-w`; a restore under a changed query refused, naming `--fresh`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::golden::dead_letters;
use testkit::run::DataflowRun;
use testkit::sql_golden::{self as g, Against, Agg, ExpectedQuery, Golden, Window, dead_letter_positions};
use testkit::{
    KeyValue, Lcg, create_topic, newest_manifest, produce, read_committed, read_history_column, read_latest,
    read_topic, require_broker, run, run_ok, temp_dir, udf_crate, unique_topic,
};

/// A first build of the UDF crates' dependencies takes minutes on two cores (the suite builds them before).
const WITH_BUILD: Duration = Duration::from_secs(900);
const START_MS: u64 = 1_730_635_200_000; // 2024-11-03T12:00:00Z
const SENSORS: [&str; 6] = ["s-1", "s-2", "s-3", "a/b", "\u{1f525}-sensor", "007"];
const SITES: [&str; 3] = ["north", "south", "east"];

/// The table of the plant's sensors, as the job declares it (`{topic}` is replaced).
const TABLE: &str = "CREATE TABLE readings (
    sensor_id VARCHAR(64) NOT NULL,
    site      TEXT,
    event_time TIMESTAMP NOT NULL,
    pressure  DOUBLE,
    co2       BIGINT,
    vibration DOUBLE,
    ok        BOOLEAN,
    WATERMARK FOR event_time AS event_time - INTERVAL '5' SECOND
) WITH ('connector' = 'kafka', 'topic' = '{topic}', 'format' = 'json');";

/// The same columns for DuckDB.
const COLUMNS: &str = "sensor_id VARCHAR(64) NOT NULL, site TEXT, event_time TIMESTAMP NOT NULL, pressure DOUBLE, \
                       co2 BIGINT, vibration DOUBLE, ok BOOLEAN";

/// The tumbling query: most aggregates, WHERE, FILTER, HAVING and expressions inside aggregates.
const TUMBLING: &str = "SELECT sensor_id, window_start, window_end,
       COUNT(*) AS n,
       AVG(pressure) AS avg_pressure,
       MIN(co2) AS min_co2,
       MAX(co2) AS max_co2,
       SUM(co2) AS co2_sum,
       STDDEV_POP(vibration) AS vibration_sd,
       VAR_SAMP(vibration) AS vibration_var,
       COUNT(pressure) AS with_pressure,
       COUNT(DISTINCT site) AS sites,
       SUM(CASE WHEN ok THEN 1 ELSE 0 END) AS ok_count,
       COUNT(*) FILTER (WHERE co2 > 800) AS high_co2,
       AVG(co2 / 1000.0) AS avg_co2_k,
       FIRST_VALUE(pressure) AS first_pressure,
       LAST_VALUE(site) AS site,
       ROUND(MAX(vibration) - MIN(vibration), 2) AS vibration_range
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '10' SECOND))
WHERE vibration IS NULL OR vibration < 4.5
GROUP BY sensor_id, window_start, window_end
HAVING COUNT(*) >= 2;";

fn tumbling_expected() -> ExpectedQuery {
    ExpectedQuery::new("readings", "event_time", Window::Tumble { size_ms: 10_000 })
        .key("sensor_id")
        .filter("vibration IS NULL OR vibration < 4.5")
        .value("n", g::count_star())
        .value("avg_pressure", g::avg("pressure"))
        .value("min_co2", g::min("co2"))
        .value("max_co2", g::max("co2"))
        .value("co2_sum", g::sum("co2"))
        .value("vibration_sd", g::stddev_pop("vibration"))
        .value("vibration_var", Agg::call("var_samp(vibration)"))
        .value("with_pressure", g::count("pressure"))
        .value("sites", g::count_distinct("site"))
        .value("ok_count", g::sum("CASE WHEN ok THEN 1 ELSE 0 END"))
        .value("high_co2", g::count_star().filter("co2 > 800"))
        .value("avg_co2_k", g::avg("co2 / 1000.0"))
        .value("first_pressure", g::first_value("pressure"))
        .value("site", g::last_value("site"))
        // ROUND rounds the decimal a DOUBLE is written as (docs/SQL.md); DuckDB's own rounds its binary value.
        .value(
            "vibration_range",
            "CAST(round(CAST(CAST(max(vibration) - min(vibration) AS VARCHAR) AS DECIMAL(38, 20)), 2) AS DOUBLE)",
        )
        .having(format!("{} >= 2", g::count_star()))
}

/// The readings of the plant: `n` records over the sensors (keyed by sensor, so each sensor's records keep their
/// order in one partition), event times jittered by up to ±2 s (under the 5 s lateness), each sensor pausing for
/// 7.2 s now and then (sessions end), a few records 30 s late and a few bad ones.
fn readings(n: usize, seed: u64) -> Vec<KeyValue> {
    let mut rng = Lcg(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let sensor = SENSORS[i % SENSORS.len()];
        let step = (i / SENSORS.len()) as u64;
        // Half of every 60 steps of a sensor are left out: a pause of 7.2 s, over 3 s after the jitter.
        if (step + 7 * (i % SENSORS.len()) as u64) % 60 < 30 {
            continue;
        }
        let late = i > 300 && rng.below(200) == 0;
        let jitter = rng.below(4_000) as i64 - 2_000;
        let t = (START_MS + step * 240) as i64 + jitter - if late { 30_000 } else { 0 };
        let mut event = serde_json::Map::new();
        event.insert("sensor_id".into(), json!(sensor));
        event.insert("event_time".into(), json!(spell_time(t, rng.below(4))));
        match rng.below(20) {
            0 | 1 => {}
            2 => {
                event.insert("site".into(), Value::Null);
            }
            _ => {
                event.insert("site".into(), json!(SITES[rng.below(3) as usize]));
            }
        }
        if rng.below(10) != 0 {
            event.insert("pressure".into(), json!(990.0 + rng.below(40_000) as f64 / 1000.0));
        }
        match rng.below(15) {
            0 => {
                event.insert("co2".into(), Value::Null);
            }
            _ => {
                event.insert("co2".into(), json!(400 + rng.below(800)));
            }
        }
        if rng.below(12) != 0 {
            event.insert("vibration".into(), json!(rng.below(5_000) as f64 / 1000.0));
        }
        event.insert("ok".into(), json!(rng.below(4) != 0));
        // An unknown field is ignored.
        event.insert("firmware".into(), json!({"v": [1, 2]}));
        let mut value = serde_json::to_vec(&Value::Object(event)).unwrap();
        match rng.below(150) {
            0 => value = br#"{"sensor_id": "s-1", "event_time": "2024-11-03T12:00:00Z", "co2": "lots"}"#.to_vec(),
            1 => value = br#"{"event_time": "2024-11-03T12:00:00Z", "co2": 500}"#.to_vec(),
            2 => value = b"{not json".to_vec(),
            _ => {}
        }
        out.push((Some(sensor.as_bytes().to_vec()), Some(value)));
    }
    out
}

/// Event time `t` (ms) as ISO-8601: with `Z`, without a zone (UTC), with `+01:00`, or with microseconds.
fn spell_time(t: i64, how: u64) -> String {
    let utc = chrono::DateTime::from_timestamp_millis(t).unwrap();
    match how {
        0 => utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        1 => utc.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        2 => (utc + chrono::Duration::hours(1))
            .format("%Y-%m-%dT%H:%M:%S%.3f+01:00")
            .to_string(),
        _ => utc.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
    }
}

/// A topic of 3 partitions holding `n` readings.
fn readings_topic(brokers: &str, prefix: &str, n: usize, seed: u64) -> String {
    let topic = unique_topic(prefix);
    create_topic(brokers, &topic, 3);
    produce(brokers, &topic, &readings(n, seed));
    topic
}

/// Writes the job file of `select` over the table on `topic`.
fn job_file(dir: &Path, name: &str, topic: &str, select: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{}\n\n{select}\n", TABLE.replace("{topic}", topic))).unwrap();
    path
}

/// The golden check of `expected` over what the job read from `topic`, less its dead letters in `dead`.
fn golden(dir: &Path, brokers: &str, topic: &str, dead: &Path, expected: &ExpectedQuery) -> Golden {
    Golden::new(dir, "readings", COLUMNS, expected.sql())
        .consumed(&read_topic(brokers, topic), &dead_letter_positions(dead))
}

/// The dead letters of a run, by reason.
fn reasons(dead: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut by = std::collections::BTreeMap::new();
    for (reason, _, _) in dead_letters(dead) {
        *by.entry(reason).or_default() += 1;
    }
    by
}

#[test]
fn a_tumbling_query_over_another_schema_equals_duckdb_at_any_worker_count_and_in_a_cluster() {
    let brokers = require_broker();
    let topic = readings_topic(&brokers, "sql-tumble", 6_000, 3);
    let dir = temp_dir("sql-tumble");
    let file = job_file(&dir, "tumbling.sql", &topic, TUMBLING);
    let sink = unique_topic("sql-tumble-out");
    let job = |name: &str| {
        let out = dir.join(name);
        DataflowRun::kafka(&brokers, &topic)
            .sql(&file)
            .bounded()
            .out(&out.join("out"))
            .deadletter(&out.join("dead"))
    };

    run_ok(&mut job("w1").workers(1).sink_topic(&sink).command(), WITH_BUILD);
    let w1 = dir.join("w1");
    let check = golden(&dir, &brokers, &topic, &w1.join("dead"), &tumbling_expected());
    let dump = dir.join("sink.jsonl");
    g::write_kafka_dump(&dump, &read_committed(&brokers, &sink));
    check.assert_equal(&[
        Against::History(&w1.join("out")),
        Against::Latest(&w1.join("out")),
        Against::Kafka(&dump),
    ]);
    // The planted bad records, each with the reason that names its fault; the late ones too.
    let by_reason = reasons(&w1.join("dead"));
    for reason in ["wrong_type", "missing_field", "not_json", "late"] {
        assert!(
            by_reason.get(reason).is_some_and(|n| *n > 0),
            "{reason} in {by_reason:?}"
        );
    }
    let latest = read_latest(&w1.join("out"));
    assert_eq!(latest["query"]["builtin"], json!(false));
    let columns: Vec<&str> = latest["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&columns[..4], ["sensor_id", "window_start", "window_end", "n"]);
    let filtered = latest["pipeline"]["filtered_total"].as_u64().unwrap();
    assert!(filtered > 0, "WHERE leaves some records out");

    run_ok(&mut job("w3").workers(3).command(), WITH_BUILD);
    let hostfile = testkit::loopback_hostfile(&dir, 2);
    let cluster: Vec<_> = (0..2).map(|p| job("n2").cluster(2, p, &hostfile).spawn()).collect();
    for process in cluster {
        process.wait_ok(WITH_BUILD);
    }
    let reference = columns_of(&w1.join("out"));
    for name in ["w3", "n2"] {
        let run = dir.join(name);
        assert_eq!(
            dead_letter_positions(&run.join("dead")),
            dead_letter_positions(&w1.join("dead")),
            "{name}: the same dead letters"
        );
        assert_eq!(
            columns_of(&run.join("out")),
            reference,
            "{name}: the same history, bit for bit"
        );
        let latest = read_latest(&run.join("out"));
        assert_eq!(latest["pipeline"]["filtered_total"].as_u64(), Some(filtered), "{name}");
    }
}

/// One history column's bits per (sensor, window start).
type ColumnBits = Vec<((String, i64), Option<u64>)>;

/// A few of the tumbling query's value columns, bit for bit, per (sensor, window start).
fn columns_of(out: &Path) -> Vec<ColumnBits> {
    [
        "n",
        "avg_pressure",
        "vibration_sd",
        "sites",
        "first_pressure",
        "avg_co2_k",
    ]
    .iter()
    .map(|c| {
        read_history_column(out, c)
            .into_iter()
            .map(|(k, v)| (k, v.map(f64::to_bits)))
            .collect()
    })
    .collect()
}

#[test]
fn a_hopping_query_grouped_by_site_with_a_scalar_udf_equals_duckdb() {
    let brokers = require_broker();
    let topic = readings_topic(&brokers, "sql-hop", 3_000, 5);
    let dir = temp_dir("sql-hop");
    // Arroyo's short form, a key that is not an id (records without a site are dead letters: keys are NOT NULL),
    // and the heat_index UDF over two aggregates.
    let select = "SELECT site, window_start, window_end, COUNT(*) AS n, COUNT(DISTINCT sensor_id) AS sensors,
       MAX(vibration) AS max_vibration, AVG(pressure) AS avg_pressure,
       heat_index(AVG(vibration) * 5, AVG(co2) / 10.0) AS index
FROM readings
GROUP BY hop(INTERVAL '5 seconds', INTERVAL '15 seconds'), site;";
    let file = job_file(&dir, "hop.sql", &topic, select);
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let job = DataflowRun::kafka(&brokers, &topic)
        .sql(&file)
        .udf(&udf_crate("heat_index"))
        .workers(2)
        .bounded()
        .out(&out)
        .deadletter(&dead);
    run_ok(&mut job.command(), WITH_BUILD);

    let heat = |t: &str, h: &str| {
        format!(
            "((0.5 * (({t}) * 1.8 + 32 + 61.0 + (({t}) * 1.8 + 32 - 68.0) * 1.2 + ({h}) * 0.094) - 32.0) * 5.0 / 9.0)"
        )
    };
    let expected = ExpectedQuery::new(
        "readings",
        "event_time",
        Window::Hop {
            slide_ms: 5_000,
            size_ms: 15_000,
        },
    )
    .key("site")
    .value("n", g::count_star())
    .value("sensors", g::count_distinct("sensor_id"))
    .value("max_vibration", g::max("vibration"))
    .value("avg_pressure", g::avg("pressure"))
    .value("index", heat("avg(vibration) * 5", "avg(co2) / 10.0"));
    golden(&dir, &brokers, &topic, &dead, &expected).assert_equal(&[Against::History(&out), Against::Latest(&out)]);
    assert!(
        reasons(&dead).get("missing_field").is_some_and(|n| *n > 1),
        "records without a site"
    );
}

#[test]
fn a_session_query_with_an_aggregate_udf_equals_duckdb_and_survives_kill_9_into_another_worker_count() {
    let brokers = require_broker();
    let topic = unique_topic("sql-session");
    create_topic(&brokers, &topic, 3);
    let events = readings(8_000, 11);
    let (first, second) = events.split_at(events.len() / 2);
    produce(&brokers, &topic, first);
    let dir = temp_dir("sql-session");
    let select = "SELECT sensor_id, window_start, window_end, COUNT(*) AS n,
       temperature_p90(pressure) AS p90_pressure, SUM(co2) AS co2_sum, MAX(site) AS max_site,
       LAST_VALUE(vibration) AS last_vibration
FROM TABLE(SESSION(TABLE readings, DESCRIPTOR(event_time), INTERVAL '2' SECOND))
GROUP BY sensor_id, window_start, window_end;";
    let file = job_file(&dir, "session.sql", &topic, select);
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let job = |workers: usize| {
        DataflowRun::kafka(&brokers, &topic)
            .sql(&file)
            .udf(&udf_crate("temperature_p90"))
            .workers(workers)
            .checkpoint_interval(Duration::from_secs(1))
            .trigger(Duration::from_secs(1))
            .out(&out)
            .deadletter(&dead)
    };
    let mut running = job(1).spawn();
    wait_for_open_windows(&mut running, &out);
    produce(&brokers, &topic, second);
    std::thread::sleep(Duration::from_millis(700));
    running.kill9();
    run_ok(&mut job(3).bounded().command(), WITH_BUILD);

    let p90 = "list_sort(list(pressure) FILTER (WHERE pressure IS NOT NULL))\
               [greatest(ceil(0.9 * count(pressure)), 1)::BIGINT]";
    let expected = ExpectedQuery::new("readings", "event_time", Window::Session { gap_ms: 2_000 })
        .key("sensor_id")
        .value("n", g::count_star())
        .value("p90_pressure", p90)
        .value("co2_sum", g::sum("co2"))
        .value("max_site", g::max("site"))
        .value("last_vibration", g::last_value("vibration"));
    golden(&dir, &brokers, &topic, &dead, &expected).assert_equal(&[Against::History(&out), Against::Latest(&out)]);
    let sessions = read_history_column(&out, "n");
    let per_sensor = sessions.len() / SENSORS.len();
    assert!(per_sensor > 5, "the pauses end sessions ({} sessions)", sessions.len());
}

/// Waits until a checkpoint holds open windows (their accumulators).
fn wait_for_open_windows(running: &mut testkit::run::Running, out: &Path) {
    let deadline = Instant::now() + WITH_BUILD;
    loop {
        assert!(running.is_running(), "the job exited by itself");
        assert!(Instant::now() < deadline, "no checkpoint with open windows");
        let held = newest_manifest(out)
            .and_then(|m| std::fs::read_to_string(m).ok())
            .is_some_and(|text| text.contains("\"accs\""));
        if held {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_restore_under_a_changed_query_is_refused_naming_fresh() {
    let brokers = require_broker();
    let topic = readings_topic(&brokers, "sql-changed", 600, 17);
    let dir = temp_dir("sql-changed");
    let first = job_file(&dir, "first.sql", &topic, TUMBLING);
    let changed = job_file(&dir, "changed.sql", &topic, &TUMBLING.replace(">= 2", ">= 3"));
    // The same query with other spacing and case of keywords is the same query.
    let respaced = job_file(
        &dir,
        "respaced.sql",
        &topic,
        &TUMBLING
            .replace("\n", "\n  ")
            .replace("SELECT", "select")
            .replace("HAVING", "having"),
    );
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let job = |file: &Path| {
        DataflowRun::kafka(&brokers, &topic)
            .sql(file)
            .bounded()
            .out(&out)
            .deadletter(&dead)
    };
    run_ok(&mut job(&first).command(), WITH_BUILD);
    let refused = run(&mut job(&changed).command(), WITH_BUILD);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a changed query must not resume");
    assert!(stderr.contains("--fresh") && stderr.contains("query"), "{stderr}");
    run_ok(&mut job(&respaced).command(), WITH_BUILD);
    run_ok(&mut job(&changed).fresh().command(), WITH_BUILD);
}

#[test]
fn a_bad_query_fails_before_reading_naming_line_and_fix() {
    let dir = temp_dir("sql-bad");
    let cases = [
        (
            "SELECT sensor_id, window_start, window_end, AVG(presure) AS p FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '10' SECOND)) GROUP BY sensor_id, window_start, window_end;",
            "pressure",
        ),
        (
            "SELECT sensor_id, site, window_start, window_end, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '10' SECOND)) GROUP BY sensor_id, window_start, window_end;",
            "GROUP BY",
        ),
        (
            "SELECT sensor_id, window_start, window_end, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '10' SECOND)) GROUP BY sensor_id, window_start, window_end ORDER BY n;",
            "ORDER BY",
        ),
        ("SELECT sensor_id window_start FROM", "line"),
    ];
    for (i, (select, says)) in cases.iter().enumerate() {
        let file = job_file(&dir, &format!("bad-{i}.sql"), "nowhere", select);
        // No broker at this address: the query is refused before any connection is tried.
        let job = DataflowRun::kafka("127.0.0.1:1", "unused")
            .sql(&file)
            .bounded()
            .out(&dir.join("out"))
            .deadletter(&dir.join("dead"));
        let output = run(&mut job.command(), Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "case {i}: {stderr}");
        assert!(stderr.contains(says) && stderr.contains("bad-"), "case {i}: {stderr}");
    }
}

/// The repository's `jobs/` folder.
fn jobs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs")
}

#[test]
fn the_jobs_folder_holds_the_builtin_job_as_printed_and_every_job_plans() {
    let printed = run_ok(
        std::process::Command::new(testkit::bin("dataflow")).args(["sql", "--print-default"]),
        Duration::from_secs(60),
    );
    let file = std::fs::read_to_string(jobs().join("builtin.sql")).unwrap();
    assert_eq!(
        file, printed,
        "jobs/builtin.sql is `dataflow sql --print-default`: write it again"
    );
    for job in ["builtin.sql", "by_location.sql", "plant_sensors.sql"] {
        let out = run_ok(
            std::process::Command::new(testkit::bin("dataflow"))
                .args(["sql", "--check"])
                .arg(jobs().join(job)),
            Duration::from_secs(60),
        );
        assert!(out.contains("plans") && out.contains("window_start"), "{job}: {out}");
    }
}

#[test]
fn the_plant_sensors_sample_replayed_equals_duckdb() {
    let dir = temp_dir("sql-plant");
    let sample = jobs().join("plant_sensors.sample.jsonl");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let job = DataflowRun::input(&sample)
        .sql(&jobs().join("plant_sensors.sql"))
        .workers(2)
        .out(&out)
        .deadletter(&dead);
    run_ok(&mut job.command(), WITH_BUILD);
    // A replayed line's offset is its first byte.
    let bytes = std::fs::read(&sample).unwrap();
    let mut records = Vec::new();
    let mut at = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let value = line.strip_suffix(b"\n").unwrap_or(line);
        if !value.is_empty() {
            records.push(testkit::Consumed {
                partition: 0,
                offset: at as i64,
                key: None,
                value: Some(value.to_vec()),
                timestamp_ms: None,
            });
        }
        at += line.len();
    }
    let expected = ExpectedQuery::new("readings", "event_time", Window::Tumble { size_ms: 10_000 })
        .key("sensor_id")
        .filter("pressure IS NOT NULL OR co2 IS NOT NULL")
        .value("n", g::count_star())
        .value("avg_pressure", g::avg("pressure"))
        .value("max_co2", g::max("co2"))
        .value("avg_co2_k", g::avg("co2 / 1000.0"))
        .value("vibration_sd", g::stddev_pop("vibration"))
        .value("not_ok", g::count_star().filter("NOT ok"))
        .value("site", g::last_value("site"))
        .having(format!("{} >= 2", g::count_star()));
    let columns = "sensor_id VARCHAR(64) NOT NULL, site TEXT, event_time TIMESTAMP NOT NULL, pressure DOUBLE, \
                   co2 BIGINT, vibration DOUBLE, ok BOOLEAN";
    // A replay's dead letter names the byte range a worker read as its partition: the offset alone places it.
    let excluded = dead_letter_positions(&dead)
        .into_iter()
        .map(|(_, offset)| (0, offset))
        .collect();
    Golden::new(&dir, "readings", columns, expected.sql())
        .consumed(&records, &excluded)
        .assert_equal(&[Against::History(&out), Against::Latest(&out)]);
    let by_reason = reasons(&dead);
    assert_eq!(
        by_reason,
        [("missing_field", 1), ("pressure_range", 1), ("wrong_type", 1)]
            .into_iter()
            .map(|(r, n)| (r.to_string(), n))
            .collect(),
        "the sample's three bad readings"
    );
}
