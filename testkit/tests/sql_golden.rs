//! The golden harness (`testkit/golden_sql.py` through `testkit::sql_golden`) checked without the job: a stand-in
//! (`tests/sql_golden_reference.py`) computes each query's rows in plain Python and writes them in the output
//! contract's layout (the history with DuckDB's `COPY ... PARTITION_BY`, latest.json, a Kafka dump). The harness
//! must find them equal to the expected query built with `ExpectedQuery`, and must report a changed value, a
//! dropped row, a duplicated file and an invalid event.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::sql_golden::{self as g, Against, Agg, ExpectedQuery, Golden, Window};
use testkit::{Consumed, Lcg};

/// The contract's example table (`docs/SQL.md`'s readings, without the watermark).
const READINGS: &str = "sensor_id VARCHAR(64) NOT NULL, site TEXT, event_time TIMESTAMP NOT NULL, pressure DOUBLE, \
                        co2 BIGINT, vibration DOUBLE";
const READING_TYPES: [(&str, &str); 6] = [
    ("sensor_id", "TEXT"),
    ("site", "TEXT"),
    ("event_time", "TIMESTAMP"),
    ("pressure", "DOUBLE"),
    ("co2", "BIGINT"),
    ("vibration", "DOUBLE"),
];
/// The built-in job's table, its event time computed from `ts`.
const SEED: &str = "device_id VARCHAR(64) NOT NULL, ts BIGINT NOT NULL, temperature DOUBLE NOT NULL, \
                    humidity DOUBLE NOT NULL, battery DOUBLE NOT NULL, status TEXT NOT NULL, \
                    location VARCHAR(64) NOT NULL, event_time AS epoch_ms(ts)";
const SEED_TYPES: [(&str, &str); 7] = [
    ("device_id", "TEXT"),
    ("ts", "BIGINT"),
    ("temperature", "DOUBLE"),
    ("humidity", "DOUBLE"),
    ("battery", "DOUBLE"),
    ("status", "TEXT"),
    ("location", "TEXT"),
];
const IDS: [&str; 6] = ["s-1", "s-2", "a/b", "\u{1f525}-sensor", "100% x=y", "007"];
const START_MS: u64 = 1_730_635_200_000; // 2024-11-03T12:00:00Z
const LIMIT: Duration = Duration::from_secs(180);

/// A condition, as DuckDB SQL for the expected query and as JSON for the stand-in.
#[derive(Clone)]
enum Pred {
    Cmp(&'static str, &'static str, Value),
    NotNull(&'static str),
    IsNull(&'static str),
    Or(Vec<Pred>),
}

impl Pred {
    fn sql(&self) -> String {
        match self {
            Pred::Cmp(c, op, Value::String(s)) => format!("\"{c}\" {op} '{}'", s.replace('\'', "''")),
            Pred::Cmp(c, op, v) => format!("\"{c}\" {op} {v}"),
            Pred::NotNull(c) => format!("\"{c}\" IS NOT NULL"),
            Pred::IsNull(c) => format!("\"{c}\" IS NULL"),
            Pred::Or(ps) => ps
                .iter()
                .map(|p| format!("({})", p.sql()))
                .collect::<Vec<_>>()
                .join(" OR "),
        }
    }

    fn json(&self) -> Value {
        match self {
            Pred::Cmp(c, op, v) => json!([c, op, v]),
            Pred::NotNull(c) => json!([c, "is not null"]),
            Pred::IsNull(c) => json!([c, "is null"]),
            Pred::Or(ps) => json!(["or", ps.iter().map(Pred::json).collect::<Vec<_>>()]),
        }
    }
}

/// One value column: its aggregate over an argument, optionally filtered.
#[derive(Clone)]
struct Val {
    name: &'static str,
    ty: &'static str,
    agg: &'static str,
    arg: &'static str,
    filter: Option<Pred>,
}

fn val(name: &'static str, ty: &'static str, agg: &'static str, arg: &'static str) -> Val {
    Val {
        name,
        ty,
        agg,
        arg,
        filter: None,
    }
}

impl Val {
    fn when(mut self, p: Pred) -> Val {
        self.filter = Some(p);
        self
    }

    fn agg(&self) -> Agg {
        let a = self.arg;
        let agg = match self.agg {
            "count_star" => g::count_star(),
            "count" => g::count(a),
            "count_distinct" => g::count_distinct(a),
            "sum" => g::sum(a),
            "avg" => g::avg(a),
            "min" => g::min(a),
            "max" => g::max(a),
            "stddev_pop" => g::stddev_pop(a),
            "stddev_samp" => g::stddev_samp(a),
            "first_value" => g::first_value(a),
            "last_value" => g::last_value(a),
            other => panic!("no aggregate {other}"),
        };
        match &self.filter {
            Some(p) => agg.filter(p.sql()),
            None => agg,
        }
    }
}

/// A job's query, stated twice: as DuckDB SQL (the harness's expectation) and as a spec for the stand-in.
struct Case {
    table: &'static str,
    columns: &'static str,
    types: &'static [(&'static str, &'static str)],
    time: &'static str,
    keys: Vec<&'static str>,
    window: Window,
    filter: Option<Pred>,
    values: Vec<Val>,
    /// HAVING: a value column's aggregate, an operator and a number.
    having: Option<(&'static str, &'static str, i64)>,
}

impl Case {
    fn readings(window: Window, values: Vec<Val>) -> Case {
        Case {
            table: "readings",
            columns: READINGS,
            types: &READING_TYPES,
            time: "event_time",
            keys: vec!["sensor_id"],
            window,
            filter: None,
            values,
            having: None,
        }
    }

    fn expected_query(&self) -> String {
        let mut q = ExpectedQuery::new(self.table, "event_time", self.window);
        for k in &self.keys {
            q = q.key(k);
        }
        if let Some(p) = &self.filter {
            q = q.filter(&p.sql());
        }
        for v in &self.values {
            q = q.value(v.name, v.agg());
        }
        if let Some((name, op, n)) = self.having {
            let v = self
                .values
                .iter()
                .find(|v| v.name == name)
                .expect("HAVING names a value");
            q = q.having(format!("{} {op} {n}", v.agg()));
        }
        q.sql()
    }

    fn spec(&self) -> Value {
        let window = match self.window {
            Window::Tumble { size_ms } => json!({"kind": "tumble", "size_ms": size_ms}),
            Window::Hop { slide_ms, size_ms } => json!({"kind": "hop", "size_ms": size_ms, "slide_ms": slide_ms}),
            Window::Session { gap_ms } => json!({"kind": "session", "gap_ms": gap_ms}),
        };
        let values: Vec<Value> = self
            .values
            .iter()
            .map(|v| {
                json!({"name": v.name, "type": v.ty, "agg": v.agg, "arg": v.arg,
                       "filter": v.filter.as_ref().map(Pred::json)})
            })
            .collect();
        let columns: serde_json::Map<String, Value> =
            self.types.iter().map(|(n, t)| (n.to_string(), json!(t))).collect();
        json!({
            "columns": columns, "time": self.time, "keys": self.keys, "window": window,
            "where": self.filter.as_ref().map(Pred::json), "values": values,
            "having": self.having.map(|(name, op, n)| json!([name, op, n])),
            "sql": self.expected_query(),
        })
    }

    fn golden(&self, dir: &Path) -> Golden {
        Golden::new(dir, self.table, self.columns, self.expected_query())
    }
}

/// Runs the stand-in job on the events file of `golden` into `out`, with its extra flags.
fn reference(case: &Case, events: &Path, out: &Path, flags: &[&str]) {
    let dir = out.parent().unwrap();
    let spec = dir.join(format!("{}.spec.json", out.file_name().unwrap().to_string_lossy()));
    std::fs::write(&spec, serde_json::to_vec_pretty(&case.spec()).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql_golden_reference.py");
    let mut cmd = Command::new(g::venv_python());
    cmd.arg(script).arg(&spec).arg(events).arg(out).args(flags);
    testkit::run_ok(&mut cmd, LIMIT);
}

/// The event time in one of the forms a TIMESTAMP field takes, chosen by `form`.
fn time_text(ms: u64, form: u64) -> Value {
    let t = chrono::DateTime::from_timestamp_millis(ms as i64).unwrap();
    match form {
        0 => json!(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        1 => json!(t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()), // no zone: UTC
        2 => {
            let plus_one = t + chrono::Duration::hours(1);
            json!(plus_one.format("%Y-%m-%dT%H:%M:%S%.3f+01:00").to_string())
        }
        3 => json!(format!("{}{:03}Z", t.format("%Y-%m-%dT%H:%M:%S%.3f"), ms % 997)), // microseconds, truncated
        _ => json!(ms),                                                               // epoch milliseconds
    }
}

/// Readings of the example table over about three minutes: six sensors (ids the history must escape), event
/// times in every accepted form, bursts and pauses (sessions), equal event times (LAST_VALUE's tie), nullable
/// fields missing or null. With `site_always`, every record has a site (for the two-key query).
fn readings(seed: u64, n: usize, site_always: bool) -> Vec<Value> {
    let mut rng = Lcg(seed);
    let mut t = START_MS;
    let mut events = Vec::new();
    for i in 0..n {
        t += if rng.below(12) == 0 {
            8_000 + rng.below(20_000)
        } else {
            rng.below(1_500)
        };
        let mut e = serde_json::Map::new();
        let sensor = IDS[rng.below(IDS.len() as u64) as usize];
        e.insert("sensor_id".into(), json!(sensor));
        // Now and then a second reading at the same time as the previous one, in arrival order after it.
        let ts = if i > 0 && rng.below(15) == 0 {
            t - rng.below(2)
        } else {
            t
        };
        e.insert("event_time".into(), time_text(ts, rng.below(5)));
        match rng.below(10) {
            0 => {}
            1 => {
                e.insert("pressure".into(), Value::Null);
            }
            _ => {
                e.insert("pressure".into(), json!(900.0 + rng.below(200_000) as f64 / 1000.0));
            }
        }
        if rng.below(6) != 0 {
            e.insert("co2".into(), json!(400 + rng.below(1_600)));
        }
        if rng.below(4) != 0 {
            e.insert("vibration".into(), json!(rng.below(1_000_000) as f64 / 1e6));
        }
        if site_always || rng.below(3) != 0 {
            let site = ["plant-a", "plant-b", "plant/c"][rng.below(3) as usize];
            e.insert("site".into(), json!(site));
        }
        e.insert("unknown_field".into(), json!({"nested": [1, 2]}));
        events.push(Value::Object(e));
    }
    events
}

/// Events of the built-in job's schema (`ts` in epoch ms), ids such as `..` and `007` included.
fn seed_events(seed: u64, n: usize) -> Vec<Value> {
    let mut rng = Lcg(seed);
    let ids = ["dev-1", "dev-2", "..", "007", "\u{1f525}-sensor"];
    let mut t = START_MS;
    (0..n)
        .map(|_| {
            t += rng.below(900);
            let status = ["ok", "ok", "ok", "warn", "error"][rng.below(5) as usize];
            let location = ["lab", "floor-1"][rng.below(2) as usize];
            json!({
                "device_id": ids[rng.below(ids.len() as u64) as usize],
                "ts": t,
                "temperature": -10.0 + rng.below(40_000) as f64 / 1000.0,
                "humidity": rng.below(100_000) as f64 / 1000.0,
                "battery": rng.below(10_000) as f64 / 100.0,
                "status": status,
                "location": location,
            })
        })
        .collect()
}

/// The case's outputs checked both ways: equal as written; a changed value and a dropped row reported in each
/// output (`--mutate` changes the first row's first value column and drops the last row).
fn equal_then_differences(name: &str, case: &Case, events: &[Value]) -> PathBuf {
    let dir = testkit::temp_dir(name);
    let golden = case.golden(&dir).events(events);
    let out = dir.join("out");
    reference(case, &golden.events_path(), &out, &[]);
    let dump = out.join("kafka.jsonl");
    golden.assert_equal(&[Against::History(&out), Against::Latest(&out), Against::Kafka(&dump)]);

    let bad = dir.join("mutated");
    reference(case, &golden.events_path(), &bad, &["--mutate"]);
    let dump = bad.join("kafka.jsonl");
    let v = golden.check(&[Against::History(&bad), Against::Latest(&bad), Against::Kafka(&dump)]);
    assert!(
        v.is_different(),
        "{name}: the harness missed the changes:\n{}{}",
        v.report,
        v.errors
    );
    for target in ["history", "latest", "kafka"] {
        let summary = v
            .report
            .lines()
            .find(|l| l.starts_with(&format!("golden: {target} ")) && l.contains(" missing, "))
            .unwrap_or_else(|| panic!("{name}: no summary of {target}:\n{}", v.report));
        assert!(
            summary.contains(": 1 missing, 0 extra, 1 differing, 0 duplicated"),
            "{name}: {summary}\n{}",
            v.report
        );
    }
    let changed = format!("{} expected ", case.values[0].name);
    assert_eq!(
        v.report.matches(&changed).count(),
        3,
        "{name}: the changed value in each output:\n{}",
        v.report
    );
    dir
}

#[test]
fn tumbling_windows_of_the_contract_example() {
    let case = Case::readings(
        Window::Tumble { size_ms: 10_000 },
        vec![
            val("n", "BIGINT", "count_star", ""),
            val("avg_pressure", "DOUBLE", "avg", "pressure"),
            val("max_co2", "BIGINT", "max", "co2"),
            val("vibration_sd", "DOUBLE", "stddev_samp", "vibration"),
            val("site", "TEXT", "last_value", "site"),
        ],
    );
    let dir = equal_then_differences("golden-tumble", &case, &readings(1, 400, false));

    // A part file copied under a second name doubles its rows.
    let golden = case.golden(&dir);
    let dup = dir.join("duplicated");
    reference(&case, &golden.events_path(), &dup, &["--duplicate"]);
    let v = golden.check(&[Against::History(&dup)]);
    assert!(
        v.is_different() && v.report.contains("rows found more than once"),
        "{}",
        v.report
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn hopping_windows_with_filter_distinct_and_having() {
    let mut case = Case::readings(
        // The slide does not divide the size: 3 or 2 windows per event.
        Window::Hop {
            slide_ms: 4_000,
            size_ms: 10_000,
        },
        vec![
            val("n", "BIGINT", "count_star", ""),
            val("high_pressure", "BIGINT", "count_star", "").when(Pred::Cmp("pressure", ">", json!(1000.0))),
            val("co2_kinds", "BIGINT", "count_distinct", "co2"),
            val("co2_total", "BIGINT", "sum", "co2"),
            val("first_site", "TEXT", "first_value", "site"),
            val("min_pressure", "DOUBLE", "min", "pressure").when(Pred::Cmp("site", "<>", json!("plant-a"))),
            val("vibration_sd", "DOUBLE", "stddev_samp", "vibration"),
        ],
    );
    case.filter = Some(Pred::Or(vec![
        Pred::IsNull("vibration"),
        Pred::Cmp("vibration", "<", json!(0.9)),
    ]));
    case.having = Some(("n", ">=", 2));
    let dir = equal_then_differences("golden-hop", &case, &readings(2, 400, false));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn session_windows() {
    let mut case = Case::readings(
        Window::Session { gap_ms: 3_000 },
        vec![
            val("n", "BIGINT", "count_star", ""),
            val("avg_pressure", "DOUBLE", "avg", "pressure"),
            val("min_co2", "BIGINT", "min", "co2"),
            val("vibration_sd", "DOUBLE", "stddev_samp", "vibration"),
            val("with_co2", "BIGINT", "count", "co2"),
            val("site", "TEXT", "last_value", "site"),
        ],
    );
    case.filter = Some(Pred::NotNull("pressure"));
    let dir = equal_then_differences("golden-session", &case, &readings(3, 400, false));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn two_keys_partition_by_the_first() {
    let mut case = Case::readings(
        Window::Tumble { size_ms: 20_000 },
        vec![
            val("n", "BIGINT", "count_star", ""),
            val("max_co2", "BIGINT", "max", "co2"),
            val("avg_pressure", "DOUBLE", "avg", "pressure"),
        ],
    );
    case.keys = vec!["site", "sensor_id"];
    let dir = equal_then_differences("golden-two-keys", &case, &readings(4, 300, true));
    let folders: Vec<String> = std::fs::read_dir(dir.join("out/parquet"))
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(folders.iter().all(|f| f.starts_with("site=")), "{folders:?}");
    assert!(folders.contains(&"site=plant%2Fc".to_string()), "{folders:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_built_in_query_over_the_seed_schema() {
    let case = Case {
        table: "events",
        columns: SEED,
        types: &SEED_TYPES,
        time: "ts",
        keys: vec!["device_id"],
        window: Window::Tumble { size_ms: 10_000 },
        filter: None,
        values: vec![
            val("count", "BIGINT", "count_star", ""),
            val("avg_temperature", "DOUBLE", "avg", "temperature"),
            val("avg_humidity", "DOUBLE", "avg", "humidity"),
            val("min_battery", "DOUBLE", "min", "battery"),
            val("max_battery", "DOUBLE", "max", "battery"),
            val("stddev_temperature", "DOUBLE", "stddev_pop", "temperature"),
            val("warn_count", "BIGINT", "count_star", "").when(Pred::Cmp("status", "=", json!("warn"))),
            val("error_count", "BIGINT", "count_star", "").when(Pred::Cmp("status", "=", json!("error"))),
        ],
        having: None,
    };
    let dir = equal_then_differences("golden-seed", &case, &seed_events(5, 500));
    assert!(
        dir.join("out/parquet/device_id=%2E%2E").is_dir(),
        "`..` escaped as the contract says"
    );
    assert!(dir.join("out/parquet/device_id=007").is_dir());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn invalid_events_stop_the_check_or_are_left_out() {
    let case = Case::readings(
        Window::Tumble { size_ms: 10_000 },
        vec![
            val("n", "BIGINT", "count_star", ""),
            val("max_co2", "BIGINT", "max", "co2"),
        ],
    );
    let dir = testkit::temp_dir("golden-invalid");
    let valid = readings(6, 120, false);
    let out = dir.join("out");
    let valid_file = dir.join("valid.jsonl");
    let text: String = valid.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&valid_file, text).unwrap();
    reference(&case, &valid_file, &out, &[]);

    // Records the job dead-letters, one per rule, among the valid ones.
    let invalid: [&[u8]; 10] = [
        b"{\"event_time\": \"2024-11-03T12:00:01Z\"}",
        b"{\"sensor_id\": \"s-1\", \"event_time\": \"2024-11-03T12:00:01Z\", \"co2\": 1.5}",
        b"{\"sensor_id\": \"s-1\", \"event_time\": \"yesterday\"}",
        b"{\"sensor_id\": \"s-1\", \"sensor_id\": \"s-2\", \"event_time\": 5}",
        b"{\"sensor_id\": \"\", \"event_time\": 5}",
        b"{\"sensor_id\": \"s\\u0007\", \"event_time\": 5}",
        b"[1, 2]",
        b"{\"sensor_id\": \"s-1\", \"event_time\": 5",
        b"",
        b"{\"sensor_id\": \"s-1\", \"event_time\": 5, \"co2\": 99999999999999999999}",
    ];
    let mut lines: Vec<Vec<u8>> = valid.iter().map(|v| serde_json::to_vec(v).unwrap()).collect();
    for (i, bad) in invalid.iter().enumerate() {
        lines.insert(i * 11 + 3, bad.to_vec());
    }
    let golden = case.golden(&dir).event_lines(&lines);
    let v = golden.check(&[Against::History(&out)]);
    assert_eq!(v.status, Some(2), "{}{}", v.report, v.errors);
    assert!(
        v.errors.contains("events.jsonl:4: not a valid record (missing_field"),
        "{}",
        v.errors
    );
    let v = golden.clone().skip_invalid().check(&[Against::History(&out)]);
    assert!(v.is_equal(), "{}{}", v.report, v.errors);
    for reason in [
        "missing_field",
        "wrong_type",
        "duplicate_field",
        "bad_string",
        "not_object",
        "not_json",
        "empty",
        "out_of_range",
    ] {
        assert!(
            v.report.contains(&format!("'{reason}'")),
            "{reason} counted:\n{}",
            v.report
        );
    }

    // The same records as read from a topic, the dead-lettered ones left out by their positions.
    let consumed: Vec<Consumed> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| Consumed {
            partition: (i % 2) as i32,
            offset: (i / 2) as i64,
            key: None,
            value: Some(line.clone()),
            timestamp_ms: None,
        })
        .chain([Consumed {
            partition: 1,
            offset: 1_000,
            key: None,
            value: None,
            timestamp_ms: None,
        }])
        .collect();
    let dead: BTreeSet<(i32, i64)> = consumed
        .iter()
        .filter(|c| c.value.as_deref().is_none_or(|v| invalid.contains(&v)))
        .map(|c| (c.partition, c.offset))
        .collect();
    assert_eq!(dead.len(), invalid.len() + 1);
    // Order does not matter to the rows, except LAST_VALUE's ties, which this query has none of.
    case.golden(&dir.join("consumed"))
        .consumed(&consumed, &dead)
        .assert_equal(&[Against::History(&out), Against::Latest(&out)]);
    std::fs::remove_dir_all(dir).unwrap();
}
