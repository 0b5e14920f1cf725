//! Unit tests of the compiled query: records read as the source reads them, folded and emitted as the window
//! operator does, against values computed by hand.

use super::*;
use sql::{DefaultQuery, default_job_sql, plan_job};

const NOW: u64 = 1_730_638_574_123;

fn compile(text: &str) -> Query {
    let job = plan_job(text, &[]).unwrap_or_else(|e| panic!("{e}"));
    Query::compile(job, text.to_string(), false).unwrap()
}

fn builtin() -> Query {
    let text = default_job_sql(&DefaultQuery::default());
    let job = plan_job(&text, &[]).unwrap();
    Query::compile(job, text, true).unwrap()
}

/// Reads `payload` as the source does (`Ok(None)`: left out by WHERE).
fn read(q: &Query, payload: &str) -> Result<Option<EventRec>, Bad> {
    Ok(
        match q.read(Some(payload.as_bytes()), NOW, 3_600_000, &NoUdfs, &mut Vec::new())? {
            Record::Event(r) => Some(r),
            Record::Filtered { .. } | Record::Probe(_) => None,
        },
    )
}

/// The output rows of the records `payloads`, all in one window of one group each (in key order).
fn run(q: &Query, payloads: &[&str]) -> Vec<Vec<Value>> {
    let mut groups: std::collections::BTreeMap<GroupKey, Vec<Acc>> = Default::default();
    for p in payloads {
        if let Some(r) = read(q, p).unwrap() {
            let accs = groups.entry(r.key.clone()).or_insert_with(|| q.new_accs());
            q.fold(accs, &r.inputs, r.ts);
        }
    }
    groups
        .iter()
        .filter_map(|(key, accs)| q.emit(key, 0, 10_000, accs, &NoUdfs))
        .collect()
}

fn seed(device: &str, ts: u64, t: f64, h: f64, b: f64, status: &str) -> String {
    format!(
        r#"{{"device_id":"{device}","ts":{ts},"temperature":{t},"humidity":{h},"battery":{b},"status":"{status}","location":"lab"}}"#
    )
}

#[test]
fn the_builtin_job_gives_the_seeds_columns_and_values() {
    let q = builtin();
    let names: Vec<&str> = q.schema.columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "device_id",
            "window_start",
            "window_end",
            "count",
            "avg_temperature",
            "avg_humidity",
            "min_battery",
            "max_battery",
            "stddev_temperature",
            "warn_count",
            "error_count"
        ]
    );
    assert!(
        q.schema.columns().iter().all(|c| !c.nullable),
        "no seed column can be null: {:?}",
        q.schema.columns()
    );
    assert!(q.carries_side());
    assert_eq!(
        (q.window, q.lateness_ms()),
        (WindowKind::Tumbling { size_ms: 10_000 }, 60_000)
    );
    let rows = run(
        &q,
        &[
            &seed("d", 1_000, 20.0, 50.0, 80.0, "ok"),
            &seed("d", 2_000, 22.0, 54.0, 79.0, "warn"),
            &seed("d", 3_000, 24.0, 46.0, 81.0, "error"),
        ],
    );
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r[0], Value::Text("d".into()));
    assert_eq!((&r[1], &r[2]), (&Value::Timestamp(0), &Value::Timestamp(10_000)));
    assert_eq!(r[3], Value::Int(3));
    assert_eq!(r[4], Value::Float(22.0));
    assert_eq!(r[5], Value::Float(50.0));
    assert_eq!((&r[6], &r[7]), (&Value::Float(79.0), &Value::Float(81.0)));
    let Value::Float(sd) = r[8] else { panic!("{:?}", r[8]) };
    assert!((sd - (8.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert_eq!((&r[9], &r[10]), (&Value::Int(1), &Value::Int(1)));
}

#[test]
fn the_builtin_job_judges_records_with_the_seeds_reasons_and_carries_the_location() {
    let q = builtin();
    let code = |p: &str| read(&q, p).unwrap_err().reason.code().to_string();
    assert_eq!(code("{"), "not_json");
    assert_eq!(code(&seed("d", 1, 200.0, 50.0, 80.0, "ok")), "out_of_range");
    assert_eq!(code(&seed("d", 1, 20.0, 50.0, 80.0, "bad")), "bad_status");
    assert_eq!(code(&seed("", 1, 20.0, 50.0, 80.0, "ok")), "bad_string");
    let r = read(&q, &seed("d", 5, 20.0, 50.0, 80.0, "ok")).unwrap().unwrap();
    assert_eq!((r.ts, r.side.as_str(), r.key.label()), (5, "lab", "d".to_string()));
}

const SENSORS: &str = "CREATE TABLE readings (
    sensor_id VARCHAR(64) NOT NULL, site TEXT, event_time TIMESTAMP NOT NULL,
    pressure DOUBLE, co2 BIGINT, ok BOOLEAN,
    WATERMARK FOR event_time AS event_time - INTERVAL '30' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'plant', 'format' = 'json');
";

fn sensor(id: &str, at: &str, pressure: Option<f64>, co2: i64, ok: bool) -> String {
    let p = pressure.map_or("null".to_string(), |p| p.to_string());
    format!(r#"{{"sensor_id":"{id}","site":"s1","event_time":"{at}","pressure":{p},"co2":{co2},"ok":{ok}}}"#)
}

#[test]
fn where_filter_having_distinct_and_expressions_follow_sql() {
    let q = compile(&format!(
        "{SENSORS}SELECT sensor_id, COUNT(*) AS n, AVG(co2 / 1000.0) AS avg_co2_k, COUNT(pressure) AS with_pressure,
                COUNT(*) FILTER (WHERE NOT ok) AS not_ok, COUNT(DISTINCT co2) AS distinct_co2,
                SUM(CASE WHEN ok THEN 1 ELSE 0 END) AS ok_count, MAX(pressure) AS max_pressure
         FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '10' SECOND))
         WHERE co2 < 5000
         GROUP BY sensor_id, window_start, window_end
         HAVING COUNT(*) > 1"
    ));
    assert_eq!(q.window, WindowKind::Tumbling { size_ms: 10_000 });
    assert!(!q.carries_side(), "no location column");
    let t = "2024-11-03T12:30:01Z";
    let rows = run(
        &q,
        &[
            &sensor("a", t, Some(1.5), 400, true),
            &sensor("a", t, None, 400, false),
            &sensor("a", t, Some(2.5), 600, true),
            &sensor("a", t, Some(9.0), 9000, true),
            &sensor("b", t, Some(1.0), 100, true),
        ],
    );
    assert_eq!(rows.len(), 1, "b has one row in the window: HAVING drops it");
    let r = &rows[0];
    assert_eq!(r[0], Value::Text("a".into()));
    assert_eq!(r[3], Value::Int(3), "the 9000 ppm record is left out by WHERE");
    let Value::Float(avg) = r[4] else { panic!() };
    assert!((avg - 1400.0 / 3000.0).abs() < 1e-12);
    assert_eq!(r[5], Value::Int(2), "COUNT(x) skips nulls");
    assert_eq!(r[6], Value::Int(1));
    assert_eq!(r[7], Value::Int(2));
    assert_eq!(r[8], Value::Int(2));
    assert_eq!(r[9], Value::Float(2.5));
    assert_eq!(read(&q, &sensor("a", t, Some(1.0), 9000, true)).unwrap(), None);
}

#[test]
fn identical_arguments_and_conditions_are_computed_once_per_event() {
    let q = compile(&format!(
        "{SENSORS}SELECT sensor_id, AVG(pressure) AS a, MAX(pressure) AS b, STDDEV_SAMP(pressure) AS c,
                COUNT(*) FILTER (WHERE ok) AS d, SUM(co2) FILTER (WHERE ok) AS e
         FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '10' SECOND))
         GROUP BY sensor_id, window_start, window_end"
    ));
    let r = read(&q, &sensor("a", "2024-11-03T12:30:01Z", Some(2.0), 7, true))
        .unwrap()
        .unwrap();
    assert_eq!(r.inputs.values.as_slice(), [Value::Float(2.0), Value::Int(7)]);
    assert_eq!(r.inputs.pass, 1);
}

#[test]
fn a_two_column_key_groups_by_both_and_hop_and_session_windows_compile() {
    let q = compile(&format!(
        "{SENSORS}SELECT site, sensor_id, COUNT(*) AS n FROM readings
         GROUP BY hop(interval '5 seconds', interval '10 seconds'), site, sensor_id"
    ));
    assert_eq!(q.window, WindowKind::Hopping(Hopping::new(10_000, 5_000).unwrap()));
    assert_eq!(q.schema.key_count(), 2);
    let r = read(&q, &sensor("a", "2024-11-03T12:30:01Z", None, 1, true))
        .unwrap()
        .unwrap();
    assert_eq!(r.key.label(), "s1 / a");
    let s = compile(&format!(
        "{SENSORS}SELECT sensor_id, COUNT(*) AS n FROM readings GROUP BY session(interval '5 seconds'), sensor_id"
    ));
    assert_eq!(s.window, WindowKind::Session { gap_ms: 5_000 });
}
