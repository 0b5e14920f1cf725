//! The planner's temporal join: a stream joined with a versioned table as of each record's event time. The
//! plan's row layout, the nullability of the joined columns, and every refusal with the fix it names.

use sql::plan::{Connector, OutputRole};
use sql::{DataType, Job, SqlError, plan_job};

const READINGS: &str = "CREATE TABLE readings (
    device_id   VARCHAR(64) NOT NULL,
    temperature DOUBLE,
    event_time  TIMESTAMP NOT NULL,
    WATERMARK FOR event_time AS event_time - INTERVAL '5' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'iot-metrics', 'format' = 'json');
";

const DEVICES: &str = "CREATE TABLE devices (
    device_id       TEXT,
    site            TEXT,
    max_temperature DOUBLE,
    updated_at      TIMESTAMP,
    PRIMARY KEY (device_id) NOT ENFORCED,
    WATERMARK FOR updated_at AS updated_at
) WITH ('connector' = 'upsert-kafka', 'topic' = 'iot-devices', 'format' = 'json');
";

const BY_SITE: &str = "SELECT d.site, COUNT(*) AS n, AVG(r.temperature) AS avg_temperature,
       COUNT(*) FILTER (WHERE r.temperature > d.max_temperature) AS over_limit
FROM readings r
LEFT JOIN devices FOR SYSTEM_TIME AS OF r.event_time AS d ON r.device_id = d.device_id
GROUP BY d.site, tumble(interval '10 seconds');
";

fn plan(query: &str) -> Result<Job, SqlError> {
    plan_job(&format!("{READINGS}{DEVICES}{query}"), &[])
}

fn ok(query: &str) -> Job {
    plan(query).unwrap_or_else(|e| panic!("{e}"))
}

fn err(query: &str, wanted: &[&str]) -> SqlError {
    let e = match plan(query) {
        Ok(job) => panic!("planned: {:?}", job.query.outputs),
        Err(e) => e,
    };
    for w in wanted {
        assert!(e.message.contains(w), "`{w}` not in: {e}");
    }
    e
}

#[test]
fn a_left_join_by_site_plans_with_the_tables_slots_after_the_streams() {
    let job = ok(BY_SITE);
    assert_eq!(job.table.name, "readings");
    let join = job.join.as_ref().expect("a join");
    assert_eq!(join.table.name, "devices");
    assert_eq!(join.alias, "d");
    assert!(join.left);
    assert_eq!(join.offset, 3, "the stream has three slots");
    assert_eq!(join.probe, 0, "r.device_id");
    assert_eq!(join.table.primary_key, Some(0));
    assert_eq!(join.table.event_time, 3, "updated_at is the version time");
    assert_eq!(join.table.lateness_ms, 0);
    assert_eq!(
        join.table.connector,
        Connector::UpsertKafka {
            topic: "iot-devices".into(),
            bootstrap_servers: None,
            properties: Vec::new(),
        }
    );
    let key = &job.query.keys[0];
    assert_eq!(
        (key.slot, key.ty, key.nullable),
        (4, DataType::Text, true),
        "d.site may be NULL"
    );
    let site = &job.query.outputs[0];
    assert_eq!(
        (site.name.as_str(), site.role, site.nullable),
        ("site", OutputRole::Key(0), true)
    );
    let filter = job.query.aggregates[2].filter.as_ref().expect("a FILTER");
    assert!(
        format!("{filter:?}").contains("5"),
        "d.max_temperature is slot 5: {filter:?}"
    );
}

#[test]
fn an_inner_join_keeps_declared_nullability_and_a_stream_key_stays_not_null() {
    let job = ok("SELECT r.device_id, d.site, COUNT(*) AS n
FROM readings r JOIN devices FOR SYSTEM_TIME AS OF r.event_time AS d ON d.device_id = r.device_id
GROUP BY r.device_id, d.site, tumble(interval '10 seconds');
");
    assert!(!job.join.as_ref().expect("a join").left);
    let keys: Vec<(usize, bool)> = job.query.keys.iter().map(|k| (k.slot, k.nullable)).collect();
    assert_eq!(keys, vec![(0, false), (4, true)]);
    assert_eq!(job.query.outputs[0].name, "device_id");
    assert!(job.table.columns[0].key);
}

#[test]
fn the_join_works_under_a_window_table_function_too() {
    let job = ok("SELECT d.site, window_start, window_end, MAX(r.temperature) AS hottest
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '10' SECOND)) AS r
LEFT JOIN devices FOR SYSTEM_TIME AS OF r.event_time AS d ON r.device_id = d.device_id
GROUP BY d.site, window_start, window_end;
");
    assert!(job.join.is_some());
}

#[test]
fn a_column_in_both_tables_must_be_qualified() {
    err(
        "SELECT device_id, COUNT(*) AS n FROM readings r
LEFT JOIN devices FOR SYSTEM_TIME AS OF r.event_time AS d ON r.device_id = d.device_id
GROUP BY device_id, tumble(interval '10 seconds');
",
        &["in both tables", "r.device_id or d.device_id"],
    );
}

#[test]
fn the_join_is_as_of_the_streams_event_time() {
    err(
        "SELECT d.site, COUNT(*) AS n FROM readings r
LEFT JOIN devices FOR SYSTEM_TIME AS OF d.updated_at AS d ON r.device_id = d.device_id
GROUP BY d.site, tumble(interval '10 seconds');
",
        &["AS OF r.event_time"],
    );
}

#[test]
fn the_condition_equates_a_stream_column_with_the_primary_key() {
    err(
        "SELECT d.site, COUNT(*) AS n FROM readings r
LEFT JOIN devices FOR SYSTEM_TIME AS OF r.event_time AS d ON r.device_id = d.site
GROUP BY d.site, tumble(interval '10 seconds');
",
        &["primary key", "ON r.<column> = d.device_id"],
    );
}

#[test]
fn a_plain_join_of_two_streams_is_refused() {
    err(
        "SELECT d.site, COUNT(*) AS n FROM readings r
LEFT JOIN devices AS d ON r.device_id = d.device_id
GROUP BY d.site, tumble(interval '10 seconds');
",
        &["only as of its event time", "FOR SYSTEM_TIME AS OF"],
    );
}

#[test]
fn a_versioned_table_needs_a_primary_key_and_is_joined_not_read() {
    let no_key = DEVICES.replace("PRIMARY KEY (device_id) NOT ENFORCED,", "");
    let e = plan_job(&format!("{READINGS}{no_key}{BY_SITE}"), &[]).expect_err("no key");
    assert!(e.message.contains("add PRIMARY KEY (<column>) NOT ENFORCED"), "{e}");
    err(
        "SELECT device_id, COUNT(*) AS n FROM devices GROUP BY device_id, tumble(interval '10 seconds');",
        &["is a versioned table", "JOIN devices FOR SYSTEM_TIME AS OF"],
    );
    let enforced = DEVICES.replace("NOT ENFORCED", "");
    let e = plan_job(&format!("{READINGS}{enforced}{BY_SITE}"), &[]).expect_err("enforced");
    assert!(e.message.contains("NOT ENFORCED"), "{e}");
}

#[test]
fn a_declared_table_must_be_joined() {
    err(
        "SELECT device_id, COUNT(*) AS n FROM readings GROUP BY device_id, tumble(interval '10 seconds');",
        &["`devices` is declared but not joined"],
    );
}

#[test]
fn the_upsert_connector_takes_no_consumer_group_or_start_mode() {
    let grouped = DEVICES.replace("'format' = 'json'", "'format' = 'json', 'properties.group.id' = 'g'");
    let e = plan_job(&format!("{READINGS}{grouped}{BY_SITE}"), &[]).expect_err("group id");
    assert!(e.message.contains("whole topic from the earliest offset"), "{e}");
}

#[test]
fn a_file_versioned_table_plans() {
    let file = DEVICES.replace(
        "'connector' = 'upsert-kafka', 'topic' = 'iot-devices'",
        "'connector' = 'file', 'path' = 'devices.jsonl'",
    );
    let job = plan_job(&format!("{READINGS}{file}{BY_SITE}"), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        job.join.expect("a join").table.connector,
        Connector::File {
            path: "devices.jsonl".into()
        }
    );
}
