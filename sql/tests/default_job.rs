//! The built-in job: it plans, its outputs are the original job's columns, and its decoder judges the seed's
//! records as `model::parse_event` does (same verdict, same reason code) on a corpus of good and hostile records.

use model::event::{DEFAULT_MAX_FUTURE_MS, Validation, parse_event};
use sql::plan::{OutputRole, WindowSpec};
use sql::{DataType, DefaultQuery, DefaultUdf, Function, FunctionKind, Job, NoUdfs, Value, default_job_sql, plan_job};

const NOW: i64 = 1_730_638_574_123;

fn default_job() -> Job {
    let text = default_job_sql(&DefaultQuery::default());
    plan_job(&text, &[]).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn the_default_job_has_the_original_outputs() {
    let job = default_job();
    let names: Vec<&str> = job.query.outputs.iter().map(|o| o.name.as_str()).collect();
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
    let types: Vec<DataType> = job.query.outputs.iter().map(|o| o.ty).collect();
    use DataType::*;
    assert_eq!(
        types,
        [
            Text, Timestamp, Timestamp, BigInt, Double, Double, Double, Double, Double, BigInt, BigInt
        ]
    );
    assert_eq!(job.query.outputs[0].role, OutputRole::Key(0));
    assert_eq!(job.query.window, WindowSpec::Tumble { size_ms: 10_000 });
    assert_eq!(job.table.lateness_ms, 60_000);
    assert_eq!(job.table.slot_name(job.table.event_time), "event_time");
    // The location is checked but not aggregated: the dataflow carries it beside the windows.
    assert!(!job.query.outputs.iter().any(|o| o.name == "location"));
}

#[test]
fn every_window_kind_and_lateness_plans() {
    for (window, lateness_ms) in [
        (WindowSpec::Tumble { size_ms: 1_500 }, 0),
        (
            WindowSpec::Hop {
                slide_ms: 5_000,
                size_ms: 60_000,
            },
            90_000,
        ),
        (WindowSpec::Session { gap_ms: 30_000 }, 86_400_000),
    ] {
        let opts = DefaultQuery {
            window,
            lateness_ms,
            topic: "it's-a-topic".into(),
            udf_columns: vec![],
        };
        let text = default_job_sql(&opts);
        let job = plan_job(&text, &[]).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(job.query.window, window);
        assert_eq!(job.table.lateness_ms, lateness_ms);
        match &job.table.connector {
            sql::plan::Connector::Kafka { topic, .. } => assert_eq!(topic, "it's-a-topic"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn udf_columns_follow_the_original_columns() {
    let functions = vec![
        Function {
            name: "heat_index".into(),
            kind: FunctionKind::Scalar,
            args: vec![DataType::Double, DataType::Double, DataType::BigInt, DataType::BigInt],
            returns: DataType::Double,
            nullable: true,
        },
        Function {
            name: "median_temp".into(),
            kind: FunctionKind::Aggregate,
            args: vec![DataType::Double],
            returns: DataType::Double,
            nullable: true,
        },
    ];
    let opts = DefaultQuery {
        udf_columns: vec![
            DefaultUdf {
                name: "heat_index".into(),
                kind: FunctionKind::Scalar,
                params: vec![
                    "avg_temperature".into(),
                    "avg_humidity".into(),
                    "count".into(),
                    "window_start".into(),
                ],
            },
            DefaultUdf {
                name: "median_temp".into(),
                kind: FunctionKind::Aggregate,
                params: vec!["temperature".into()],
            },
        ],
        ..DefaultQuery::default()
    };
    let text = default_job_sql(&opts);
    let job = plan_job(&text, &functions).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let names: Vec<&str> = job.query.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(&names[11..], ["heat_index", "median_temp"]);
    assert!(
        job.query
            .aggregates
            .iter()
            .any(|a| a.func == sql::AggFunc::Udf { function: 1 })
    );
}

/// The model's verdict: `Ok` or the reason code.
fn model_verdict(payload: Option<&[u8]>) -> Result<(), String> {
    let rules = Validation {
        now_ms: NOW as u64,
        max_future_ms: DEFAULT_MAX_FUTURE_MS,
    };
    parse_event(payload, rules)
        .map(|_| ())
        .map_err(|e| e.code().to_string())
}

fn sql_verdict(job: &Job, decoder: &sql::Decoder, payload: Option<&[u8]>) -> Result<(), String> {
    let mut row = Vec::new();
    let ts = decoder
        .decode(payload, NOW, DEFAULT_MAX_FUTURE_MS, &NoUdfs, &mut row)
        .map_err(|b| b.reason.code().to_string())?;
    assert_eq!(row[job.table.event_time], Value::Timestamp(ts));
    Ok(())
}

const GOOD: &str = r#"{"device_id":"device-abc123","ts":1730638574123,"temperature":24.7,"humidity":55.3,"battery":82.5,"status":"ok","location":"lab"}"#;

fn with(field: &str, raw: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    let mut parts = Vec::new();
    for (k, val) in v.as_object().unwrap() {
        if k == field {
            parts.push(format!("\"{k}\":{raw}"));
        } else {
            parts.push(format!("\"{k}\":{val}"));
        }
    }
    format!("{{{}}}", parts.join(","))
}

fn without(field: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    v.as_object_mut().unwrap().remove(field);
    v.to_string()
}

fn nested(depth: usize) -> String {
    format!("{{\"x\":{}{},{}", "[".repeat(depth), "]".repeat(depth), &GOOD[1..])
}

/// Records on which the two parsers are meant to differ, with the reason the SQL decoder gives.
fn deliberate(record: &str) -> Option<&'static str> {
    const FIELDS: [&str; 7] = [
        "device_id",
        "ts",
        "temperature",
        "humidity",
        "battery",
        "status",
        "location",
    ];
    // A NOT NULL field given `null` is missing here; the seed calls it the wrong type.
    if FIELDS.iter().any(|f| *record == with(f, "null")) {
        return Some("missing_field");
    }
    // A field given `null` and then a value is there twice here; the seed stops at the null.
    if FIELDS.iter().any(|f| record.contains(&format!("\"{f}\":null,\"{f}\""))) {
        return Some("duplicate_field");
    }
    // A `ts` beyond BIGINT is out of range here; the seed reads it as an unsigned integer (then far in the
    // future) or, past 64 bits, as a float (then not an integer).
    let huge = ["18446744073709551615", "9223372036854775808", "99999999999999999999"];
    if huge.iter().any(|raw| *record == with("ts", raw)) {
        return Some("out_of_range");
    }
    None
}

fn corpus() -> Vec<Option<Vec<u8>>> {
    let mut texts: Vec<String> = vec![
        GOOD.into(),
        format!(" {GOOD}\n"),
        GOOD.replace(':', " : ").replace(',', " ,\t"),
    ];
    for f in [
        "device_id",
        "ts",
        "temperature",
        "humidity",
        "battery",
        "status",
        "location",
    ] {
        texts.push(without(f));
        for raw in [
            "null",
            "\"x\"",
            "\"12\"",
            "12",
            "1.5",
            "-3",
            "true",
            "false",
            "[1]",
            "{\"a\":1}",
            "[]",
            "{}",
            "\"\"",
            "1e2",
            "-0.0",
        ] {
            texts.push(with(f, raw));
        }
        texts.push(format!("{{\"{f}\":1,{}", &GOOD[1..]));
        texts.push(GOOD.replacen(&format!("\"{f}\""), &format!("\"{f}\":null,\"{f}\""), 1));
    }
    for raw in [
        "-1",
        "0",
        "1730638574123",
        "1730642174123",
        "1730642174124",
        "18446744073709551615",
        "9223372036854775808",
        "9223372036854775807",
        "99999999999999999999",
        "1.0",
        "1e3",
        "1E400",
        "01",
        "-",
        "\"1730638574123\"",
    ] {
        texts.push(with("ts", raw));
    }
    for f in ["temperature", "humidity", "battery"] {
        for raw in [
            "-60",
            "150",
            "-60.0001",
            "150.0001",
            "0",
            "100",
            "100.0000001",
            "-0.0000001",
            "1e400",
            "-1e400",
            "1e-400",
            "20",
            "1.7976931348623157e308",
            "NaN",
            "Infinity",
            "+1",
            ".5",
            "5.",
            "0x10",
        ] {
            texts.push(with(f, raw));
        }
    }
    for raw in ["\"ok\"", "\"warn\"", "\"error\"", "\"OK\"", "\"\"", "\"o\\u006b\""] {
        texts.push(with("status", raw));
    }
    for f in ["device_id", "location"] {
        for raw in [
            "\"\"".to_string(),
            format!("\"{}\"", "x".repeat(64)),
            format!("\"{}\"", "x".repeat(65)),
            format!("\"{}\"", "\u{1F525}".repeat(16)),
            format!("\"{}\"", "\u{1F525}".repeat(17)),
            "\"a\\u0000b\"".into(),
            "\"a\\nb\"".into(),
            "\"tab\\t\"".into(),
            "\"\u{7f}\"".into(),
            "\"\u{85}x\"".into(),
            "\"a\tb\"".into(),
            "\"a\\\"b/\u{1F525}\"".into(),
            "\"\\ud83d\\udd25\"".into(),
            "\"\\ud83d\"".into(),
            "\"\\udd25x\"".into(),
            "\"\\ud83dx\"".into(),
            "\"\\x\"".into(),
            "\"\\u12\"".into(),
            "\"../../etc/passwd\"".into(),
            format!("\"{}\"", "y".repeat(1 << 20)),
        ] {
            texts.push(with(f, &raw));
        }
    }
    let good = GOOD.to_string();
    texts.extend([
        good[..good.len() / 2].to_string(),
        format!("{good} x"),
        format!("{good}}}"),
        good.replace("}", ",}"),
        good.replace("24.7", "NaN"),
        good.replace("\"ts\"", "\"t\\u0073\""),
        good.replace("\"ts\"", "\"t\\u00\""),
        format!(
            "{{\"firmware\":{{\"nested\":[1,2,{{\"x\":null}}]}},\"note\":\"\\ud83d\\udd25\",{}",
            &good[1..]
        ),
        format!("{{\"big\":\"{}\",{}", "z".repeat(1 << 20), &good[1..]),
        format!("{{\"bad\":\"\\ud800\",{}", &good[1..]),
        format!("{{\"bad\":1e400,{}", &good[1..]),
        format!("{{\"bad\":\"a\tb\",{}", &good[1..]),
        format!("{{\"bad\":\"\\u12x4\",{}", &good[1..]),
        format!("{{\"bad\":\"\\q\",{}", &good[1..]),
        format!("{{\"bad\":\"\\udc00\\ud800\",{}", &good[1..]),
        format!("{{\"bad\":-01,{}", &good[1..]),
        format!("{{\"bad\":[1,}},{}", &good[1..]),
        format!("{{\"bad\":[1 2],{}", &good[1..]),
        format!("{{\"bad\":{{\"a\" 1}},{}", &good[1..]),
        format!("{{\"bad\":tru,{}", &good[1..]),
        format!("{{\"ok\":[[],{{}},\"\",0,-0.5e-3,true,false,null],{}", &good[1..]),
        "[1,2]".into(),
        "[1,".into(),
        "42".into(),
        "42x".into(),
        "\"x\"".into(),
        "null".into(),
        "true".into(),
        "nul".into(),
        "-1.5".into(),
        "{".into(),
        "{}".into(),
        "   ".into(),
        "{\"a\"}".into(),
        "{,}".into(),
        "[1] x".into(),
    ]);
    for depth in [1, 2, 100, 125, 126, 127, 128, 129, 200, 100_000] {
        texts.push(nested(depth));
        texts.push("[".repeat(depth));
    }
    let mut out: Vec<Option<Vec<u8>>> = texts.into_iter().map(|t| Some(t.into_bytes())).collect();
    out.push(None);
    out.push(Some(Vec::new()));
    let mut bad_utf8 = GOOD.as_bytes().to_vec();
    bad_utf8[16] = 0xff;
    out.push(Some(bad_utf8));
    out
}

#[test]
fn decoding_agrees_with_the_seed_parser() {
    let job = default_job();
    let decoder = job.decoder();
    let mut checked = 0;
    let mut valid = 0;
    for payload in corpus() {
        let text = payload
            .as_ref()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        let ours = sql_verdict(&job, &decoder, payload.as_deref());
        let theirs = model_verdict(payload.as_deref());
        let shown = &text[..text.len().min(200)];
        match deliberate(&text) {
            Some(code) => {
                assert_eq!(ours, Err(code.to_string()), "{shown}");
                assert!(theirs.is_err(), "{shown}");
            }
            None => assert_eq!(ours, theirs, "{shown}"),
        }
        checked += 1;
        valid += usize::from(ours.is_ok());
    }
    assert!(checked > 300 && valid > 30, "{checked} records, {valid} valid");
}

/// A deterministic generator (xorshift) for mutated records.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn decoding_agrees_with_the_seed_parser_on_mutated_records() {
    let job = default_job();
    let decoder = job.decoder();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet = b"{}[]\",:0123456789.-eE+ \\untrlfasx\x01";
    let mut differ = Vec::new();
    for _ in 0..50_000 {
        let mut bytes = GOOD.as_bytes().to_vec();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(3) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 if at < bytes.len() => bytes[at] = alphabet[rng.below(alphabet.len())],
                _ => bytes.insert(at, alphabet[rng.below(alphabet.len())]),
            }
        }
        let ours = sql_verdict(&job, &decoder, Some(&bytes));
        let theirs = model_verdict(Some(&bytes));
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if ours != theirs && deliberate(&text).is_none() {
            differ.push(format!("{text}: sql {ours:?}, model {theirs:?}"));
        }
    }
    assert!(
        differ.is_empty(),
        "{} differ, e.g.:\n{}",
        differ.len(),
        differ[..differ.len().min(30)].join("\n")
    );
}
