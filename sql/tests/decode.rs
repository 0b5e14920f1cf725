//! Decoding records under a table's schema: types, NULL and NOT NULL, VARCHAR(n), key rules, computed
//! columns, CHECK reasons, the event time's rules, and fields nobody reads.

use sql::{Decoder, Job, NoUdfs, Value, plan_job};

const NOW: i64 = 1_730_638_574_123;

const JOB: &str = "CREATE TABLE r (
    id    TEXT NOT NULL,
    code  VARCHAR(4),
    n     BIGINT CONSTRAINT small CHECK (n < 100) CHECK (n > -100),
    x     DOUBLE,
    on_   BOOLEAN,
    at    TIMESTAMP(3) NOT NULL,
    spare TEXT,
    zone  AS UPPER(code),
    WATERMARK FOR at AS at - INTERVAL '5' SECOND
) WITH ('connector' = 'file', 'path' = 'r.jsonl', 'format' = 'json');
SELECT id, zone, COUNT(*) AS c, SUM(n) AS s, MAX(x) AS m, COUNT(*) FILTER (WHERE on_) AS ons
FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(at), INTERVAL '1' SECOND))
GROUP BY id, zone, window_start, window_end;";

fn job() -> Job {
    plan_job(JOB, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn decode(decoder: &Decoder, json: &str) -> Result<Vec<Value>, (String, String)> {
    let mut row = Vec::new();
    decoder
        .decode(Some(json.as_bytes()), NOW, 3_600_000, &NoUdfs, &mut row)
        .map(|_| row)
        .map_err(|b| (b.reason.code().to_string(), b.detail))
}

fn code(decoder: &Decoder, json: &str) -> String {
    match decode(decoder, json) {
        Ok(row) => format!("ok {row:?}"),
        Err((code, _)) => code,
    }
}

const BASE: &str = r#""id":"dev-1","code":"ab","at":"2024-11-03T12:56:14.123Z""#;

#[test]
fn a_record_fills_the_row_with_computed_columns_after_the_physical_ones() {
    let job = job();
    let decoder = job.decoder();
    let row = decode(
        &decoder,
        &format!(r#"{{{BASE},"n":5,"x":1.5,"on_":true,"extra":[1,{{"a":null}}]}}"#),
    )
    .unwrap();
    assert_eq!(
        row,
        vec![
            Value::Text("dev-1".into()),
            Value::Text("ab".into()),
            Value::Int(5),
            Value::Float(1.5),
            Value::Bool(true),
            Value::Timestamp(1_730_638_574_123),
            Value::Null,
            Value::Text("AB".into()),
        ]
    );
    assert_eq!(decoder.width(), 8);
}

#[test]
fn nullable_fields_may_be_missing_or_null_but_not_null_ones_may_not() {
    let decoder = job().decoder();
    let row = decode(&decoder, &format!(r#"{{{BASE},"n":null}}"#)).unwrap();
    assert_eq!(row[2], Value::Null);
    assert_eq!(row[3], Value::Null);
    let (code, detail) = decode(&decoder, r#"{"code":"ab","at":0}"#).unwrap_err();
    assert_eq!(
        (code.as_str(), detail.as_str()),
        ("missing_field", "the field `id` is missing")
    );
    let (code, detail) = decode(&decoder, r#"{"id":null,"at":0}"#).unwrap_err();
    assert_eq!(
        (code.as_str(), detail.as_str()),
        ("missing_field", "the field `id` is null")
    );
    assert_eq!(
        super_code(r#"{"id":"d"}"#),
        "missing_field",
        "the event time is required"
    );
}

fn super_code(json: &str) -> String {
    code(&job().decoder(), json)
}

#[test]
fn timestamps_are_rfc3339_strings_or_epoch_milliseconds() {
    let decoder = job().decoder();
    for (at, ms) in [
        ("\"2024-11-03T12:56:14.123Z\"", 1_730_638_574_123),
        ("\"2024-11-03T13:56:14.123+01:00\"", 1_730_638_574_123),
        ("\"2024-11-03 12:56:14.123\"", 1_730_638_574_123),
        ("\"2024-11-03T12:56:14.123456Z\"", 1_730_638_574_123),
        ("1730638574123", 1_730_638_574_123),
        ("0", 0),
    ] {
        let row = decode(&decoder, &format!(r#"{{"id":"d","code":"c","at":{at}}}"#))
            .unwrap_or_else(|e| panic!("{at}: {e:?}"));
        assert_eq!(row[5], Value::Timestamp(ms), "{at}");
    }
    for (at, reason) in [
        ("\"yesterday\"", "wrong_type"),
        ("1.5", "wrong_type"),
        ("true", "wrong_type"),
        ("-1", "out_of_range"),
        ("\"1969-12-31T23:59:59Z\"", "out_of_range"),
        ("1730642174124", "far_future"),
        ("\"2100-01-01T00:00:00Z\"", "far_future"),
    ] {
        assert_eq!(
            code(&decoder, &format!(r#"{{"id":"d","code":"c","at":{at}}}"#)),
            reason,
            "{at}"
        );
    }
    assert_eq!(
        code(&decoder, r#"{"id":"d","code":"c","at":1730642174123}"#).get(..2),
        Some("ok"),
        "max_future is inclusive"
    );
}

#[test]
fn each_type_refuses_the_other_json_types() {
    let decoder = job().decoder();
    for (field, value) in [
        ("id", "12"),
        ("code", "true"),
        ("n", "\"5\""),
        ("n", "1.0"),
        ("n", "1e2"),
        ("x", "\"1.5\""),
        ("x", "[1]"),
        ("on_", "1"),
        ("on_", "\"true\""),
        ("id", "{\"a\":1}"),
    ] {
        let json = format!(r#"{{{BASE},"{field}":{value}}}"#).replacen(&format!("\"{field}\":\"dev-1\","), "", 1);
        let json = if field == "id" {
            json.replacen("\"id\":\"dev-1\",", "", 1)
        } else {
            json
        };
        let (code, detail) = decode(&decoder, &json).unwrap_err();
        assert_eq!(code, "wrong_type", "{json}");
        assert!(detail.contains(&format!("`{field}`")), "{detail}");
    }
    assert_eq!(
        code(&decoder, &format!(r#"{{{BASE},"n":9223372036854775808}}"#)),
        "out_of_range"
    );
    assert_eq!(code(&decoder, &format!(r#"{{{BASE},"x":1e999}}"#)), "not_json");
    assert_eq!(
        code(&decoder, &format!(r#"{{{BASE},"x":7}}"#)).get(..2),
        Some("ok"),
        "an integer is a DOUBLE"
    );
}

#[test]
fn varchar_limits_bytes_and_text_refuses_control_characters() {
    let decoder = job().decoder();
    let with_code = |c: &str| code(&decoder, &format!(r#"{{"id":"d","at":0,"code":{c}}}"#));
    assert!(with_code("\"abcd\"").starts_with("ok"));
    assert_eq!(with_code("\"abcde\""), "bad_string");
    assert!(
        with_code("\"\u{e9}\u{e9}\"").starts_with("ok"),
        "two characters of two bytes"
    );
    assert_eq!(with_code("\"\u{e9}\u{e9}a\""), "bad_string", "five bytes");
    assert_eq!(with_code("\"a\\u0007\""), "bad_string");
    assert_eq!(with_code("\"a\\u0085\""), "bad_string");
    assert_eq!(
        with_code("\"a\u{7}\""),
        "not_json",
        "a raw control character is not JSON"
    );
}

#[test]
fn text_keys_are_one_to_64_bytes() {
    let decoder = job().decoder();
    let with_id = |id: &str| code(&decoder, &format!(r#"{{"id":"{id}","code":"c","at":0}}"#));
    assert!(with_id(&"k".repeat(64)).starts_with("ok"));
    assert_eq!(with_id(&"k".repeat(65)), "bad_string");
    assert_eq!(with_id(""), "bad_string");
}

#[test]
fn a_computed_key_must_not_be_null() {
    let decoder = job().decoder();
    let (code, detail) = decode(&decoder, r#"{"id":"d","at":0}"#).unwrap_err();
    assert_eq!(code, "missing_field");
    assert!(detail.contains("`zone`"), "{detail}");
}

#[test]
fn a_failed_check_gives_its_name_and_null_passes() {
    let decoder = job().decoder();
    assert_eq!(code(&decoder, &format!(r#"{{{BASE},"n":100}}"#)), "small");
    assert_eq!(code(&decoder, &format!(r#"{{{BASE},"n":-100}}"#)), sql::CHECK_FAILED);
    assert!(code(&decoder, &format!(r#"{{{BASE},"n":null}}"#)).starts_with("ok"));
    let (_, detail) = decode(&decoder, &format!(r#"{{{BASE},"n":100}}"#)).unwrap_err();
    assert_eq!(detail, "the CHECK `small` on `n` is false");
}

#[test]
fn duplicate_and_escaped_keys_are_matched_after_unescaping() {
    let decoder = job().decoder();
    assert_eq!(code(&decoder, &format!(r#"{{{BASE},"n":1,"n":2}}"#)), "duplicate_field");
    assert_eq!(
        code(&decoder, &format!(r#"{{{BASE},"\u006e":1,"n":2}}"#)),
        "duplicate_field"
    );
    let row = decode(&decoder, &format!(r#"{{{BASE},"\u006e":7}}"#)).unwrap();
    assert_eq!(row[2], Value::Int(7));
}

#[test]
fn fields_nobody_reads_are_validated_but_not_stored() {
    let job = job();
    assert!(!job.read_slots().contains(&6), "`spare` is read by nothing");
    let decoder = job.decoder();
    let row = decode(
        &decoder,
        &format!(r#"{{{BASE},"spare":"a text that is longer than twenty-four bytes"}}"#),
    )
    .unwrap();
    assert_eq!(row[6], Value::Null);
    assert_eq!(code(&decoder, &format!(r#"{{{BASE},"spare":5}}"#)), "wrong_type");
    assert_eq!(
        code(&decoder, &format!(r#"{{{BASE},"spare":"a\u0001"}}"#)),
        "bad_string"
    );
    // A decoder asked to keep it stores it.
    let keys: Vec<usize> = job.query.keys.iter().map(|k| k.slot).collect();
    let all = Decoder::new(&job.table, &keys, &(0..8).collect::<Vec<_>>());
    let row = decode(&all, &format!(r#"{{{BASE},"spare":"kept"}}"#)).unwrap();
    assert_eq!(row[6], Value::Text("kept".into()));
}

#[test]
fn hostile_records_are_reasons() {
    let decoder = job().decoder();
    let deep = format!("{{\"junk\":{}1{},{}}}", "[".repeat(1 << 16), "]".repeat(1 << 16), BASE);
    let verdict = code(&decoder, &deep);
    assert!(
        verdict.starts_with("ok"),
        "deep nesting in an unknown field is skipped: {verdict}"
    );
    let unclosed = format!(
        "{{\"junk\":{}1{},{}}}",
        "[".repeat(1 << 16),
        "]".repeat((1 << 16) - 1),
        BASE
    );
    assert_eq!(code(&decoder, &unclosed), "not_json");
    let mismatched = format!("{{\"junk\":[{{\"a\":[1}}]}},{BASE}}}");
    assert_eq!(code(&decoder, &mismatched), "not_json");
    let huge = format!(r#"{{{BASE},"spare":"{}"}}"#, "\u{1F525}".repeat(1 << 18));
    assert!(code(&decoder, &huge).starts_with("ok"));
    for bad in [
        r#"{"id":"\ud800","at":0}"#,
        r#"{"id":"\u12","at":0}"#,
        r#"{"id":"\q","at":0}"#,
        r#"{"id":"d","at":0,}"#,
        r#"{"id":"d" "at":0}"#,
        r#"{"id":"d","at":0"#,
        r#"{"id":"d","at":01}"#,
        r#"{"id":"d","at":-}"#,
        r#"{"id":"d","at":0} {}"#,
    ] {
        assert_eq!(code(&decoder, bad), "not_json", "{bad}");
    }
    assert_eq!(code(&decoder, "[]"), "not_object");
    let mut row = Vec::new();
    let tomb = decoder.decode(None, NOW, 0, &NoUdfs, &mut row).unwrap_err();
    assert_eq!(tomb.to_string(), "tombstone: the record has no value (tombstone)");
    let utf8 = decoder
        .decode(Some(b"{\"id\":\"\xff\"}"), NOW, 0, &NoUdfs, &mut row)
        .unwrap_err();
    assert_eq!(utf8.reason.code(), "bad_utf8");
}
