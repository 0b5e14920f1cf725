//! The planner through the public API: every construct of the dialect plans to the expected plan, and every
//! error names its fix and points at the offending line and column.

use sql::plan::{AggFunc, Connector, OutputRole, StartupMode, WindowSpec};
use sql::{DataType, Function, FunctionKind, Job, SqlError, plan_job};

const TABLE: &str = "CREATE TABLE readings (
    sensor_id  VARCHAR(64) NOT NULL,
    event_time TIMESTAMP NOT NULL,
    pressure   DOUBLE,
    co2        BIGINT,
    ok         BOOLEAN,
    ts_ms      BIGINT,
    location   TEXT,
    t          AS TO_TIMESTAMP_LTZ(ts_ms, 3),          -- computed column (epoch ms)
    WATERMARK FOR event_time AS event_time - INTERVAL '30' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'plant-sensors', 'format' = 'json',
        'properties.bootstrap.servers' = 'localhost:9092', 'properties.group.id' = 'g',
        'scan.startup.mode' = 'earliest-offset');
";

const QUERY: &str = "SELECT sensor_id, window_start, window_end,
       COUNT(*) AS n, AVG(co2 / 1000.0) AS avg_co2_k, MAX(pressure) AS max_pressure,
       COUNT(*) FILTER (WHERE NOT ok) AS not_ok, COUNT(DISTINCT co2) AS distinct_co2,
       SUM(CASE WHEN ok THEN 1 ELSE 0 END) AS ok_count
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '10' SECOND))
WHERE pressure IS NOT NULL
GROUP BY sensor_id, window_start, window_end
HAVING COUNT(*) > 1;
";

fn plan(query: &str) -> Result<Job, SqlError> {
    plan_job(&format!("{TABLE}{query}"), &[])
}

fn ok(query: &str) -> Job {
    plan(query).unwrap_or_else(|e| panic!("{e}"))
}

/// The error of `query`, with its message checked to contain every piece of `wanted`.
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

/// Asserts that `e` points at the first `token` on line `n` (1-based) of `query`, and that its display shows
/// that line with a caret under the token.
fn points_at(e: &SqlError, query: &str, n: usize, token: &str) {
    let line = query.lines().nth(n - 1).expect("the line exists");
    let column = line.find(token).unwrap_or_else(|| panic!("`{token}` not on line {n}")) + 1;
    assert_eq!((e.line, e.column), (TABLE.lines().count() + n, column), "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("line {}, column {column}: ", e.line)),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("\n  {line}\n  {}^", " ".repeat(column - 1))),
        "{shown}"
    );
}

fn names(job: &Job) -> Vec<&str> {
    job.query.outputs.iter().map(|o| o.name.as_str()).collect()
}

#[test]
fn the_example_job_plans() {
    let job = ok(QUERY);
    assert_eq!(job.table.name, "readings");
    assert_eq!(job.table.columns.len(), 7);
    assert_eq!(job.table.computed.len(), 1);
    assert_eq!(job.table.event_time, 1);
    assert_eq!(job.table.lateness_ms, 30_000);
    assert_eq!(
        job.table.connector,
        Connector::Kafka {
            topic: "plant-sensors".into(),
            bootstrap_servers: Some("localhost:9092".into()),
            group_id: Some("g".into()),
            startup: Some(StartupMode::Earliest),
            properties: vec![],
        }
    );
    assert_eq!(job.query.window, WindowSpec::Tumble { size_ms: 10_000 });
    assert_eq!(
        names(&job),
        [
            "sensor_id",
            "window_start",
            "window_end",
            "n",
            "avg_co2_k",
            "max_pressure",
            "not_ok",
            "distinct_co2",
            "ok_count"
        ]
    );
    let funcs: Vec<AggFunc> = job.query.aggregates.iter().map(|a| a.func).collect();
    // COUNT(*) is computed once although it is selected and in HAVING; COUNT(*) FILTER is another.
    assert_eq!(
        funcs,
        [
            AggFunc::CountStar,
            AggFunc::Avg,
            AggFunc::Max,
            AggFunc::CountStar,
            AggFunc::Count,
            AggFunc::Sum
        ]
    );
    assert!(job.query.aggregates[4].distinct);
    assert!(job.query.aggregates[3].filter.is_some());
    assert_eq!(job.query.aggregates[5].ty, DataType::BigInt);
    assert_eq!(job.query.aggregates[1].ty, DataType::Double);
    assert!(job.query.filter.is_some());
    assert!(job.query.having.is_some());
    assert!(job.table.columns[0].key);
    assert_eq!(job.table.columns[0].max_bytes, Some(64));
}

#[test]
fn the_fuzzers_seed_jobs_plan_and_the_error_seeds_do_not() {
    let functions = vec![
        Function {
            name: "scale".into(),
            kind: FunctionKind::Scalar,
            args: vec![DataType::Double, DataType::BigInt],
            returns: DataType::Double,
            nullable: true,
        },
        Function {
            name: "median".into(),
            kind: FunctionKind::Aggregate,
            args: vec![DataType::Double],
            returns: DataType::Double,
            nullable: true,
        },
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/plan");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let planned = plan_job(&text, &functions);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("error_") {
            assert!(planned.is_err(), "{name}");
        } else {
            planned.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        seen += 1;
    }
    assert!(seen >= 5);
}

#[test]
fn outputs_are_keys_then_window_bounds_then_the_rest_in_select_order() {
    let job = ok(
        "SELECT MAX(pressure) AS p, window_end, location AS place, COUNT(*) AS n, sensor_id
FROM readings GROUP BY tumble(INTERVAL '1 minute'), sensor_id, location;",
    );
    assert_eq!(
        names(&job),
        ["sensor_id", "place", "window_start", "window_end", "p", "n"]
    );
    let roles: Vec<OutputRole> = job.query.outputs.iter().map(|o| o.role).collect();
    assert_eq!(
        roles,
        [
            OutputRole::Key(0),
            OutputRole::Key(1),
            OutputRole::WindowStart,
            OutputRole::WindowEnd,
            OutputRole::Value,
            OutputRole::Value
        ]
    );
    assert_eq!(job.query.keys[1].name, "place");
    assert_eq!(job.query.keys[1].column, "location");
    assert_eq!(job.query.window, WindowSpec::Tumble { size_ms: 60_000 });
}

#[test]
fn keys_and_window_bounds_are_output_even_when_not_selected() {
    let job = ok("SELECT COUNT(*) AS n FROM readings GROUP BY location, tumble(INTERVAL '10' SECOND);");
    assert_eq!(names(&job), ["location", "window_start", "window_end", "n"]);
    assert!(!job.table.columns[6].nullable, "a key is NOT NULL");
}

#[test]
fn every_window_form_plans() {
    for (query, window) in [
        (
            "SELECT sensor_id, COUNT(*) AS n FROM TABLE(HOP(TABLE readings, DESCRIPTOR(event_time), INTERVAL '5' SECOND, INTERVAL '1' MINUTE)) GROUP BY sensor_id, window_start, window_end;",
            WindowSpec::Hop {
                slide_ms: 5_000,
                size_ms: 60_000,
            },
        ),
        (
            "SELECT sensor_id, COUNT(*) AS n FROM TABLE(SESSION(TABLE readings, DESCRIPTOR(event_time), INTERVAL '30' SECOND)) GROUP BY sensor_id;",
            WindowSpec::Session { gap_ms: 30_000 },
        ),
        (
            "SELECT sensor_id, COUNT(*) AS n FROM readings GROUP BY hop(interval '2 seconds', interval '10 seconds'), sensor_id;",
            WindowSpec::Hop {
                slide_ms: 2_000,
                size_ms: 10_000,
            },
        ),
        (
            "SELECT sensor_id, COUNT(*) AS n FROM readings GROUP BY SESSION(INTERVAL '1 minute 30 seconds'), sensor_id;",
            WindowSpec::Session { gap_ms: 90_000 },
        ),
        (
            "select sensor_id, count(*) as n from readings group by TUMBLE(interval '1.5' second), sensor_id",
            WindowSpec::Tumble { size_ms: 1_500 },
        ),
        (
            "SELECT sensor_id, COUNT(*) AS n FROM readings GROUP BY tumble(INTERVAL '250' MILLISECOND), sensor_id;",
            WindowSpec::Tumble { size_ms: 250 },
        ),
        (
            "SELECT sensor_id, COUNT(*) AS n FROM readings GROUP BY tumble(INTERVAL '2' HOUR), sensor_id;",
            WindowSpec::Tumble { size_ms: 7_200_000 },
        ),
        (
            "SELECT sensor_id, COUNT(*) AS n FROM readings GROUP BY tumble(INTERVAL '1 day'), sensor_id;",
            WindowSpec::Tumble { size_ms: 86_400_000 },
        ),
    ] {
        assert_eq!(ok(query).query.window, window, "{query}");
    }
}

#[test]
fn keys_may_be_text_bigint_boolean_or_computed_columns() {
    let table = "CREATE TABLE m (site TEXT NOT NULL, line BIGINT, running BOOLEAN, v DOUBLE, ts BIGINT NOT NULL,
    area AS UPPER(site), at AS TO_TIMESTAMP_LTZ(ts, 0), WATERMARK FOR at AS at)
    WITH ('connector' = 'file', 'path' = 'm.jsonl', 'format' = 'json');\n";
    let job = plan_job(
        &format!("{table}SELECT AVG(v) AS v FROM m GROUP BY area, line, running, tumble(INTERVAL '1' MINUTE);"),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let keys: Vec<(&str, DataType)> = job.query.keys.iter().map(|k| (k.column.as_str(), k.ty)).collect();
    assert_eq!(
        keys,
        [
            ("area", DataType::Text),
            ("line", DataType::BigInt),
            ("running", DataType::Boolean)
        ]
    );
    assert_eq!(job.query.keys[0].slot, 5, "computed columns follow the physical ones");
    assert_eq!(job.table.lateness_ms, 0);
    assert!(matches!(job.table.connector, Connector::File { ref path } if path == "m.jsonl"));
}

#[test]
fn aggregate_result_types_follow_their_argument() {
    let job = ok(
        "SELECT sensor_id, SUM(co2) AS a, SUM(pressure) AS b, AVG(co2) AS c, MIN(sensor_id) AS d,
    MAX(event_time) AS e, FIRST_VALUE(ok) AS f, LAST_VALUE(location) AS g, COUNT(location) AS h,
    STDDEV_POP(co2) AS i, VAR_SAMP(pressure) AS j, STDDEV(co2) AS k, VARIANCE(co2) AS l
FROM readings GROUP BY tumble(INTERVAL '10' SECOND), sensor_id;",
    );
    let types: Vec<DataType> = job.query.outputs[3..].iter().map(|o| o.ty).collect();
    use DataType::*;
    assert_eq!(
        types,
        [
            BigInt, Double, Double, Text, Timestamp, Boolean, Text, BigInt, Double, Double, Double, Double
        ]
    );
    let count = &job.query.outputs[10];
    assert!(!count.nullable, "COUNT is never NULL");
    assert!(job.query.outputs[3].nullable, "SUM of nothing is NULL");
}

#[test]
fn expressions_over_aggregates_keys_and_bounds_plan() {
    let job = ok("SELECT sensor_id,
       CAST(window_end AS BIGINT) - CAST(window_start AS BIGINT) AS width_ms,
       ROUND(AVG(pressure) * 100) / 100 AS p2,
       COALESCE(MAX(co2), -1) AS co2_or,
       UPPER(sensor_id) || ':' || CAST(COUNT(*) AS TEXT) AS label,
       CASE WHEN COUNT(*) > 10 THEN 'busy' WHEN COUNT(*) > 0 THEN 'quiet' END AS load
FROM readings
WHERE co2 % 2 = 0 AND ok AND location IN ('a', 'b') AND co2 NOT BETWEEN 10 AND 20
      AND event_time >= TIMESTAMP '2024-01-01 00:00:00' AND event_time < '2030-01-01T00:00:00Z'
GROUP BY tumble(INTERVAL '10' SECOND), sensor_id
HAVING MAX(pressure) IS NOT NULL AND NOT (COUNT(*) < 2 OR SUM(co2) IS NULL);");
    assert_eq!(names(&job)[3..], ["width_ms", "p2", "co2_or", "label", "load"]);
    // COUNT(*) appears four times and is computed once.
    assert_eq!(
        job.query
            .aggregates
            .iter()
            .filter(|a| a.func == AggFunc::CountStar)
            .count(),
        1
    );
}

#[test]
fn scalar_and_aggregate_udfs_resolve_case_insensitively_and_check_their_signature() {
    let functions = vec![
        Function {
            name: "Dew_Point".into(),
            kind: FunctionKind::Scalar,
            args: vec![DataType::Double, DataType::Double],
            returns: DataType::Double,
            nullable: true,
        },
        Function {
            name: "p95".into(),
            kind: FunctionKind::Aggregate,
            args: vec![DataType::Double],
            returns: DataType::Double,
            nullable: false,
        },
    ];
    let q = "SELECT sensor_id, DEW_POINT(AVG(pressure), 2) AS dew, P95(co2) AS p, p95(pressure) FILTER (WHERE ok) AS q
FROM readings WHERE dew_point(pressure, co2) > 0 GROUP BY tumble(INTERVAL '10' SECOND), sensor_id;";
    let job = plan_job(&format!("{TABLE}{q}"), &functions).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        job.query
            .aggregates
            .iter()
            .any(|a| a.func == AggFunc::Udf { function: 1 })
    );
    assert_eq!(job.functions.len(), 2);
    let bad = plan_job(
        &format!("{TABLE}SELECT sensor_id, dew_point(AVG(pressure)) AS d FROM readings GROUP BY tumble(INTERVAL '10' SECOND), sensor_id;"),
        &functions,
    )
    .unwrap_err();
    assert!(bad.message.contains("Dew_Point(DOUBLE, DOUBLE) -> DOUBLE"), "{bad}");
    let bad = plan_job(
        &format!("{TABLE}SELECT sensor_id, p95(sensor_id) AS d FROM readings GROUP BY tumble(INTERVAL '10' SECOND), sensor_id;"),
        &functions,
    )
    .unwrap_err();
    assert!(bad.message.contains("argument 1 of p95 is a TEXT"), "{bad}");
}

#[test]
fn comments_spacing_and_keyword_case_do_not_change_the_normalized_text() {
    let a = ok(QUERY).normalized;
    let b = plan(&format!(
        "/* the job */\n{}",
        QUERY
            .to_lowercase()
            .replace("readings", "readings  ")
            .replace("where pressure", "-- only readings with a pressure\nwhere pressure")
    ))
    .unwrap_or_else(|e| panic!("{e}"))
    .normalized;
    assert_eq!(a, b);
    let c = ok(&QUERY.replace("> 1", "> 2")).normalized;
    assert_ne!(a, c);
}

#[test]
fn a_syntax_error_names_the_token_with_line_and_column() {
    let q = "SELECT sensor_id, COUNT(*) AS n\nFROM readings GROUP BY tumble(INTERVAL '10' SECOND) sensor_id;";
    let e = err(q, &["syntax error", "sensor_id"]);
    points_at(&e, q, 2, "sensor_id");
    let q = "SELECT sensor_id, COUNT(* AS n FROM readings GROUP BY sensor_id;";
    let e = err(q, &["syntax error", "AS"]);
    points_at(&e, q, 1, "AS");
    let q = "SELECT a FROM readings\n WHERE (";
    let e = err(q, &["syntax error", "EOF"]);
    assert_eq!((e.line, e.column), (TABLE.lines().count() + 2, 9), "{e}");
    let e = err("SELECT 'unterminated FROM readings", &["Unterminated string"]);
    assert!(e.line > 0);
}

#[test]
fn an_unknown_column_lists_the_tables_columns() {
    let q = "SELECT sensor_id, AVG(presure) AS p FROM readings GROUP BY tumble(INTERVAL '10' SECOND), sensor_id;";
    let e = err(
        q,
        &[
            "unknown column `presure`",
            "sensor_id, event_time, pressure, co2, ok, ts_ms, location, t",
        ],
    );
    points_at(&e, q, 1, "presure");
    let q = "SELECT sensor_id, COUNT(*) AS n FROM readings WHERE window_start > 0 GROUP BY tumble(INTERVAL '10' SECOND), sensor_id;";
    let e = err(q, &["unknown column `window_start` in WHERE", "window bounds"]);
    points_at(&e, q, 1, "window_start >");
    let q = "SELECT sensor_id, COUNT(*) AS n FROM readings GROUP BY tumble(INTERVAL '10' SECOND), sensor;";
    err(q, &["unknown column `sensor` in GROUP BY"]);
    let q = "SELECT sensor_id, COUNT(*) AS n FROM readings GROUP BY tumble(INTERVAL '10' SECOND), sensor_id HAVING MAX(nope) > 1;";
    err(q, &["unknown column `nope`"]);
}

#[test]
fn a_column_outside_group_by_and_aggregates_is_refused() {
    let q = "SELECT sensor_id,\n       pressure AS p\nFROM readings GROUP BY tumble(INTERVAL '10' SECOND), sensor_id;";
    let e = err(
        q,
        &[
            "`pressure` is neither in GROUP BY nor inside an aggregate",
            "add it to GROUP BY",
            "LAST_VALUE(pressure)",
        ],
    );
    points_at(&e, q, 2, "pressure");
}

#[test]
fn an_aggregate_of_a_text_column_is_refused() {
    for f in ["SUM", "AVG", "STDDEV_POP", "VAR_SAMP"] {
        let q = format!(
            "SELECT sensor_id, {f}(location) AS x FROM readings GROUP BY tumble(INTERVAL '10' SECOND), sensor_id;"
        );
        let e = err(
            &q,
            &[
                "aggregate of a TEXT column",
                "COUNT, MIN, MAX, FIRST_VALUE and LAST_VALUE",
            ],
        );
        points_at(&e, &q, 1, f);
    }
    err(
        "SELECT sensor_id, SUM(ok) AS x FROM readings GROUP BY tumble(INTERVAL '10' SECOND), sensor_id;",
        &["SUM of a BOOLEAN", "COUNT(*) FILTER"],
    );
}

fn table_err(table: &str, wanted: &[&str]) -> SqlError {
    let text = format!("{table}\nSELECT k, COUNT(*) AS n FROM t GROUP BY tumble(INTERVAL '1' SECOND), k;");
    let e = plan_job(&text, &[]).expect_err("the table is refused");
    for w in wanted {
        assert!(e.message.contains(w), "`{w}` not in: {e}");
    }
    e
}

#[test]
fn a_table_without_watermark_is_refused_with_the_clause_to_add() {
    let e = table_err(
        "CREATE TABLE t (k TEXT, ts TIMESTAMP) WITH ('connector' = 'file', 'path' = 'p', 'format' = 'json');",
        &["has no WATERMARK", "add `WATERMARK FOR"],
    );
    assert_eq!((e.line, e.column), (1, 14), "{e}");
}

#[test]
fn the_watermark_must_be_a_timestamp_column_minus_an_interval() {
    table_err(
        "CREATE TABLE t (k TEXT, ts BIGINT, WATERMARK FOR ts AS ts) WITH ('connector' = 'file', 'path' = 'p', 'format' = 'json');",
        &["must be a TIMESTAMP, not a BIGINT", "TO_TIMESTAMP_LTZ(ts, 3)"],
    );
    table_err(
        "CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR tz AS tz) WITH ('connector' = 'file', 'path' = 'p', 'format' = 'json');",
        &["WATERMARK FOR `tz`: no such column", "k, ts"],
    );
    table_err(
        "CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts + INTERVAL '1' SECOND) WITH ('connector' = 'file', 'path' = 'p', 'format' = 'json');",
        &["`ts - INTERVAL '5' SECOND`"],
    );
    table_err(
        "CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' MONTH) WITH ('connector' = 'file', 'path' = 'p', 'format' = 'json');",
        &["unit", "MILLISECOND, SECOND, MINUTE, HOUR or DAY"],
    );
}

#[test]
fn table_declarations_refuse_what_the_stream_cannot_honour() {
    let w = "WITH ('connector' = 'file', 'path' = 'p', 'format' = 'json')";
    let cases: Vec<(String, &[&str])> = vec![
        (format!("CREATE TABLE t (k TEXT, k BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) {w};"), &["declared twice"]),
        (format!("CREATE TABLE t (k TEXT, window_start BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) {w};"), &["name of a window bound"]),
        (format!("CREATE TABLE t (k TEXT PRIMARY KEY, ts TIMESTAMP, WATERMARK FOR ts AS ts) {w};"), &["PRIMARY KEY"]),
        (format!("CREATE TABLE t (k TEXT, ts TIMESTAMP, PRIMARY KEY (k), WATERMARK FOR ts AS ts) {w};"), &["PRIMARY KEY (...) NOT ENFORCED"]),
        (format!("CREATE TABLE t (k DECIMAL(10, 2), ts TIMESTAMP, WATERMARK FOR ts AS ts) {w};"), &["not supported", "TIMESTAMP(3)"]),
        (format!("CREATE TABLE t (k VARCHAR(0), ts TIMESTAMP, WATERMARK FOR ts AS ts) {w};"), &["VARCHAR(0)"]),
        (format!("CREATE TABLE t (k TEXT CHECK (k + 1), ts TIMESTAMP, WATERMARK FOR ts AS ts) {w};"), &["needs numbers"]),
        (format!("CREATE TABLE t (k TEXT CHECK (CHAR_LENGTH(k)), ts TIMESTAMP, WATERMARK FOR ts AS ts) {w};"), &["CHECK needs a BOOLEAN"]),
        (format!("CREATE TABLE t (k TEXT, ts TIMESTAMP, c AS COUNT(k), WATERMARK FOR ts AS ts) {w};"), &["aggregate functions are not allowed in a computed column"]),
        (format!("CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts, WATERMARK FOR ts AS ts) {w};"), &["one WATERMARK"]),
        ("CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts);".into(), &["no WITH options"]),
        ("CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH ('connector' = 'kafka', 'format' = 'json');".into(), &["needs 'topic'"]),
        ("CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH ('connector' = 'kafka', 'topic' = 'x');".into(), &["'format' = 'json'"]),
        ("CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH ('connector' = 'kafka', 'topic' = 'x', 'format' = 'avro');".into(), &["'avro' is not supported"]),
        ("CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH ('connector' = 'jdbc', 'format' = 'json');".into(), &["'jdbc' is not supported", "'upsert-kafka' or 'file'"]),
        ("CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH ('connector' = 'kafka', 'topic' = 'x', 'format' = 'json', 'json.fail-on-missing-field' = 'true');".into(),
         &["unknown option 'json.fail-on-missing-field'", "'connector', 'format', 'topic', 'path'"]),
        ("CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH ('connector' = 'file', 'path' = 'p', 'topic' = 'x', 'format' = 'json');".into(), &["'topic' is an option of the kafka connector"]),
        ("CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH ('connector' = 'kafka', 'topic' = 'x', 'topic' = 'y', 'format' = 'json');".into(), &["given twice"]),
        ("CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH ('connector' = 'kafka', 'topic' = 'x', 'format' = 'json', 'scan.startup.mode' = 'group-offsets');".into(), &["'earliest-offset' or 'latest-offset'"]),
        ("CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'kafka');".into(), &["single quotes"]),
    ];
    for (table, wanted) in cases {
        let e = table_err(&table, wanted);
        assert!(e.line > 0, "{e}");
    }
}

#[test]
fn kafka_properties_are_kept_as_librdkafka_settings() {
    let job = plan_job(
        "CREATE TABLE t (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH ('connector' = 'kafka', 'topic' = 'x',
        'format' = 'json', 'properties.security.protocol' = 'SASL_SSL', 'properties.fetch.min.bytes' = '1',
        'scan.startup.mode' = 'latest-offset');
        SELECT k, COUNT(*) AS n FROM t GROUP BY tumble(INTERVAL '1' SECOND), k;",
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let Connector::Kafka {
        properties,
        startup,
        bootstrap_servers,
        ..
    } = job.table.connector
    else {
        panic!("kafka");
    };
    assert_eq!(
        properties,
        [
            ("security.protocol".to_string(), "SASL_SSL".to_string()),
            ("fetch.min.bytes".into(), "1".into())
        ]
    );
    assert_eq!(startup, Some(StartupMode::Latest));
    assert_eq!(bootstrap_servers, None);
}

#[test]
fn the_window_column_must_be_the_watermarks() {
    let q = "SELECT sensor_id, COUNT(*) AS n\nFROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(t), INTERVAL '10' SECOND))\nGROUP BY sensor_id;";
    let e = err(
        q,
        &["DESCRIPTOR(t) is not the watermark's column", "DESCRIPTOR(event_time)"],
    );
    points_at(&e, q, 2, "DESCRIPTOR");
    err(
        "SELECT sensor_id, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE other, DESCRIPTOR(event_time), INTERVAL '10' SECOND)) GROUP BY sensor_id;",
        &["unknown table `other`", "`readings`"],
    );
    err(
        "SELECT sensor_id, COUNT(*) AS n FROM TABLE(TUMBLE(readings, DESCRIPTOR(event_time), INTERVAL '10' SECOND)) GROUP BY sensor_id;",
        &["TABLE readings"],
    );
    err(
        "SELECT sensor_id, COUNT(*) AS n FROM TABLE(HOP(TABLE readings, DESCRIPTOR(event_time), INTERVAL '1' MINUTE, INTERVAL '5' SECOND)) GROUP BY sensor_id;",
        &[
            "slide (60000 ms) is longer than its size (5000 ms)",
            "the slide, then the size",
        ],
    );
    err(
        "SELECT sensor_id, COUNT(*) AS n FROM readings GROUP BY tumble(INTERVAL '0' SECOND), sensor_id;",
        &["must be positive"],
    );
    err(
        "SELECT sensor_id, COUNT(*) AS n FROM readings GROUP BY tumble(INTERVAL '10 fortnights'), sensor_id;",
        &["'fortnights' is not an interval unit"],
    );
    err(
        "SELECT sensor_id, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '10' SECOND)) GROUP BY tumble(INTERVAL '10' SECOND), sensor_id;",
        &["already given in FROM"],
    );
}

#[test]
fn unsupported_constructs_say_what_to_write_instead() {
    let g = "GROUP BY tumble(INTERVAL '10' SECOND), sensor_id";
    let cases: Vec<(String, &[&str], &str)> = vec![
        (
            format!("SELECT r.sensor_id, COUNT(*) AS n FROM readings r JOIN sites s ON r.sensor_id = s.id {g};"),
            &["only as of its event time", "FOR SYSTEM_TIME AS OF"],
            "sites",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS n FROM readings, sites {g};"),
            &["one table"],
            "SELECT",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS n FROM readings {g} ORDER BY n;"),
            &["ORDER BY is not supported", "remove it"],
            "n;",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS n FROM readings {g} LIMIT 10;"),
            &["LIMIT", "HAVING"],
            "SELECT",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS n FROM readings WHERE co2 IN (SELECT 1) {g};"),
            &["subqueries are not supported"],
            "co2 IN",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS n FROM (SELECT * FROM readings) {g};"),
            &["subqueries are not supported"],
            "SELECT",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) OVER (PARTITION BY sensor_id) AS n FROM readings {g};"),
            &["window functions (OVER) are not supported", "TUMBLE, HOP or SESSION"],
            "COUNT",
        ),
        (
            format!("SELECT DISTINCT sensor_id, COUNT(*) AS n FROM readings {g};"),
            &["SELECT DISTINCT is not supported", "GROUP BY"],
            "SELECT",
        ),
        (
            format!(
                "SELECT sensor_id, COUNT(*) AS n FROM readings {g} UNION SELECT sensor_id, COUNT(*) AS n FROM readings {g};"
            ),
            &["UNION is not supported"],
            "SELECT",
        ),
        (
            "SELECT sensor_id, COUNT(*) AS n FROM readings GROUP BY sensor_id;".into(),
            &["needs a window", "TUMBLE(TABLE readings, DESCRIPTOR(event_time)"],
            "SELECT",
        ),
        (
            "SELECT COUNT(*) AS n FROM readings GROUP BY tumble(INTERVAL '10' SECOND);".into(),
            &["at least one key column"],
            "SELECT",
        ),
        (
            format!("SELECT * FROM readings {g};"),
            &["SELECT * is not supported"],
            "*",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) FROM readings {g};"),
            &["add `AS name`"],
            "COUNT",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS sensor_id FROM readings {g};"),
            &["`sensor_id` is used twice"],
            "sensor_id FROM",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS window_START FROM readings {g};"),
            &["`window_START` is used twice"],
            "window_START",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS `bad name` FROM readings {g};"),
            &["not usable as a Parquet column"],
            "`bad name`",
        ),
        (
            format!("SELECT sensor_id, SUM(COUNT(*)) AS n FROM readings {g};"),
            &["aggregates cannot be nested"],
            "COUNT(*))",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS n FROM readings WHERE COUNT(*) > 1 {g};"),
            &["not allowed in WHERE", "HAVING"],
            "COUNT(*) >",
        ),
        (
            format!("SELECT sensor_id, SUM(DISTINCT co2) AS n FROM readings {g};"),
            &["COUNT(DISTINCT x) only"],
            "SUM",
        ),
        (
            "SELECT sensor_id, COUNT(*) AS n FROM readings GROUP BY tumble(INTERVAL '10' SECOND), co2 + 1;".into(),
            &["computed column"],
            "co2 + 1",
        ),
        (
            "SELECT sensor_id, COUNT(*) AS n FROM readings GROUP BY tumble(INTERVAL '10' SECOND), pressure;".into(),
            &["keys are TEXT, BIGINT or BOOLEAN"],
            "pressure;",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS n FROM readings WHERE co2 {g};"),
            &["WHERE needs a BOOLEAN"],
            "co2 GROUP",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS n FROM readings WHERE co2 = 'x' {g};"),
            &["mixes BIGINT and TEXT", "CAST"],
            "co2 =",
        ),
        (
            format!("SELECT sensor_id, frobnicate(co2) AS n FROM readings {g};"),
            &["unknown function `frobnicate`", "COALESCE, ABS"],
            "frobnicate",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS n FROM other {g};"),
            &["unknown table `other`"],
            "other",
        ),
        (
            format!("WITH x AS (SELECT 1) SELECT sensor_id, COUNT(*) AS n FROM readings {g};"),
            &["WITH (common table expressions)"],
            "WITH",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS n FROM readings {g}; SELECT 1;"),
            &["exactly one SELECT"],
            "SELECT 1",
        ),
        (
            format!("INSERT INTO sink SELECT sensor_id, COUNT(*) AS n FROM readings {g};"),
            &["CREATE TABLEs and one SELECT", "INSERT"],
            "INSERT",
        ),
        (
            format!("SELECT sensor_id, COUNT(*) AS n FROM readings {g} garbage"),
            &["syntax error"],
            "garbage",
        ),
    ];
    for (q, wanted, token) in cases {
        let e = err(&q, wanted);
        points_at(&e, &q, 1, token);
    }
}

#[test]
fn a_job_file_needs_both_statements() {
    let e = plan_job("SELECT 1;", &[]).unwrap_err();
    assert!(e.message.contains("no CREATE TABLE"), "{e}");
    assert_eq!(e.line, 0);
    let e = plan_job(TABLE, &[]).unwrap_err();
    assert!(e.message.contains("no SELECT"), "{e}");
    let e = plan_job(&format!("{TABLE}{TABLE}{QUERY}"), &[]).unwrap_err();
    assert!(e.message.contains("`readings` is declared twice"), "{e}");
    let e = plan_job(&format!("{TABLE}{TABLE}{TABLE}{QUERY}"), &[]).unwrap_err();
    assert!(e.message.contains("at most two CREATE TABLEs"), "{e}");
    let e = plan_job(&format!("{TABLE}CREATE VIEW v AS SELECT 1;"), &[]).unwrap_err();
    assert!(e.message.contains("CREATE VIEW is not supported"), "{e}");
}

#[test]
fn a_pathological_expression_is_an_error_not_a_crash() {
    let long = vec!["co2"; 5_000].join(" + ");
    let e = err(
        &format!("SELECT sensor_id, SUM({long}) AS s FROM readings GROUP BY tumble(INTERVAL '1' SECOND), sensor_id;"),
        &["more than 2000 operators"],
    );
    assert!(e.line > 0);
    let deep = format!("{}co2{}", "(".repeat(200), ")".repeat(200));
    err(
        &format!("SELECT sensor_id, SUM({deep}) AS s FROM readings GROUP BY tumble(INTERVAL '1' SECOND), sensor_id;"),
        &["nests too deeply"],
    );
    let chain = vec!["co2"; 100].join(" + ");
    err(
        &format!("SELECT sensor_id, SUM({chain}) AS s FROM readings GROUP BY tumble(INTERVAL '1' SECOND), sensor_id;"),
        &["more than 64 levels"],
    );
}

/// The ```sql blocks of docs/SQL.md.
fn doc_blocks() -> Vec<String> {
    let doc = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/SQL.md")).unwrap();
    doc.split("```sql\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_string())
        .collect()
}

#[test]
fn the_reference_examples_plan() {
    let blocks = doc_blocks();
    // The CREATE TABLE and SELECT of the introduction make one job.
    let intro = format!("{}{}", blocks[0], blocks[1]);
    plan_job(&intro, &[]).unwrap_or_else(|e| panic!("{e}"));
    // The temporal join's example, over a stream of readings.
    let readings = "CREATE TABLE readings (device_id VARCHAR(64) NOT NULL, temperature DOUBLE, \
                    event_time TIMESTAMP NOT NULL, WATERMARK FOR event_time AS event_time - INTERVAL '5' SECOND) \
                    WITH ('connector' = 'kafka', 'topic' = 'iot-metrics', 'format' = 'json');";
    let joined = plan_job(&format!("{readings}\n{}", blocks[2]), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(joined.join.is_some());
    // The built-in job is shown exactly as `default_job_sql` writes it.
    assert_eq!(blocks[3], sql::default_job_sql(&sql::DefaultQuery::default()));
    let second = plan_job(&blocks[4], &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        names(&second),
        [
            "line",
            "window_start",
            "window_end",
            "readings",
            "pressure_spread",
            "error_kinds",
            "errors",
            "last_note"
        ]
    );
    assert_eq!(
        second.query.window,
        WindowSpec::Hop {
            slide_ms: 10_000,
            size_ms: 60_000
        }
    );
}
