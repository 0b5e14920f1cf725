//! The fast path against the careful one: on a corpus of plain, odd and broken records and on thousands of
//! mutations of them, [`Decoder::decode`] (fast first) and [`Decoder::decode_careful`] give the same row or the
//! same reason and message; plain records do take the fast path.

use super::*;
use crate::function::NoUdfs;

const NOW: i64 = 1_730_638_574_123;

const JOB: &str = "CREATE TABLE r (
    id    VARCHAR(16) NOT NULL,
    code  VARCHAR(4),
    n     BIGINT CONSTRAINT small CHECK (n BETWEEN -1000 AND 1000),
    x     DOUBLE NOT NULL,
    on_   BOOLEAN,
    at    TIMESTAMP(3),
    note  TEXT,
    unread TEXT,
    ts    BIGINT NOT NULL,
    t     AS TO_TIMESTAMP_LTZ(ts, 3),
    WATERMARK FOR t AS t - INTERVAL '5' SECOND
) WITH ('connector' = 'file', 'path' = 'r.jsonl', 'format' = 'json');
SELECT id, COUNT(*) AS c, SUM(n) AS s, AVG(x) AS a, LAST_VALUE(note) AS last_note, MAX(at) AS latest,
       COUNT(*) FILTER (WHERE on_) AS ons, MAX(code) AS code
FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(t), INTERVAL '1' SECOND))
GROUP BY id, window_start, window_end;";

fn decoder() -> Decoder {
    crate::plan_job(JOB, &[]).unwrap_or_else(|e| panic!("{e}")).decoder()
}

/// Records that take the fast path.
const PLAIN: [&str; 10] = [
    r#"{"id":"d-1","code":"ab","n":5,"x":1.5,"on_":true,"at":"2024-11-03T12:56:14.123Z","note":"hi","ts":1730638574000}"#,
    r#"{"ts":1730638574000,"x":-0.0,"id":"d-2"}"#,
    r#" { "id" : "d-3" , "x" : 1e3 , "ts" : 0 , "n" : null , "note" : null } "#,
    r#"{"id":"d-4","x":2,"ts":5,"unknown":"skip me","more":-12.5e-3,"flag":false,"nil":null}"#,
    r#"{"id":"d-5","x":2,"ts":5,"note":"héllo 🔥","unread":"ünread"}"#,
    r#"{"id":"d-6","x":2,"ts":5,"at":1730638574123,"on_":false}"#,
    r#"{"id":"d-7","x":2,"ts":5,"at":"2024-11-03 12:56:14","code":"abcd"}"#,
    r#"{"id":"d-8","x":2,"ts":5,"unread":"this text is not stored and is longer than twenty-four bytes"}"#,
    r#"{"id":"🔥-sensor","x":1.7976931348623157e308,"ts":5}"#,
    r#"{"id":"d-1","x":1,"ts":1,"code":null,"unread":"ünread and far too long? no limit"}"#,
];

/// Plain records that break a rule judged after reading (a CHECK, the event time's range).
const PLAIN_BUT_BAD: [&str; 3] = [
    r#"{"id":"d-1","x":1,"ts":1,"n":5000}"#,
    r#"{"id":"d-1","x":1,"ts":-1}"#,
    r#"{"id":"d-1","x":1,"ts":99999999999999}"#,
];

/// Records the fast path leaves to the careful one (odd but valid, or broken).
const ODD: [&str; 40] = [
    r#"{"id":"d-1","x":1,"ts":1,"note":"esc\"aped"}"#,
    r#"{"id":"d\u002d1","x":1,"ts":1}"#,
    r#"{"id":"d-1","x":1,"ts":1,"nested":{"a":[1,{"b":null}]}}"#,
    r#"{"id":"d-1","x":1,"ts":1,"arr":[1,2,3]}"#,
    r#"{"id":"d-1","x":1,"ts":1,"k\"ey":1}"#,
    r#"{"id":"d-1","x":1,"ts":1,"id":"again"}"#,
    r#"{"id":"d-1","x":1,"ts":1,"n":null,"n":3}"#,
    r#"{"id":"d-1","x":1}"#,
    r#"{"id":null,"x":1,"ts":1}"#,
    r#"{"id":"","x":1,"ts":1}"#,
    r#"{"id":"this id is far too long","x":1,"ts":1}"#,
    r#"{"id":"d-1","x":1,"ts":1,"code":"abcde"}"#,
    r#"{"id":"d-1","x":1,"ts":1,"note":"del\u007f"}"#,
    "{\"id\":\"d-1\",\"x\":1,\"ts\":1,\"note\":\"c1\u{85}\"}",
    "{\"id\":\"d-1\",\"x\":1,\"ts\":1,\"note\":\"tab\tinside\"}",
    r#"{"id":"d-1","x":"1","ts":1}"#,
    r#"{"id":"d-1","x":1,"ts":1.5}"#,
    r#"{"id":"d-1","x":1,"ts":1e3}"#,
    r#"{"id":"d-1","x":1,"ts":99999999999999999999}"#,
    r#"{"id":"d-1","x":1e999,"ts":1}"#,
    r#"{"id":"d-1","x":01,"ts":1}"#,
    r#"{"id":"d-1","x":1.,"ts":1}"#,
    r#"{"id":"d-1","x":-,"ts":1}"#,
    r#"{"id":"d-1","x":1,"ts":1,"on_":"yes"}"#,
    r#"{"id":"d-1","x":1,"ts":1,"on_":tru}"#,
    r#"{"id":"d-1","x":1,"ts":1,"at":"not a time"}"#,
    r#"{"id":"d-1","x":1,"ts":1,"at":1.5}"#,
    r#"{"id":"d-1","x":1,"ts":1,}"#,
    r#"{"id":"d-1","x":1,"ts":1} trailing"#,
    r#"{"id":"d-1","x":1,"ts":1}}"#,
    r#"{"id":"d-1" "x":1,"ts":1}"#,
    r#"{"id":"d-1","x":1,"ts":1,"skip":"bad \q escape"}"#,
    r#"{"id":"d-1","x":1,"ts":1,"skip":"\ud800"}"#,
    r#"{"id":"d-1","x":1,"ts":1,"note":"\ud83d\udd25"}"#,
    r#"[{"id":"d-1"}]"#,
    r#""just a string""#,
    r#"{}"#,
    r#"{"#,
    r#"{"id":"d-1","x":1,"ts":1,"unread":"bad\u0001"}"#,
    r#"nul"#,
];

type Outcome = Result<(i64, Vec<Value>), Bad>;

fn both(d: &Decoder, record: &[u8]) -> (Outcome, Outcome) {
    let (mut fast, mut careful) = (Vec::new(), Vec::new());
    let a = d
        .decode(Some(record), NOW, 3_600_000, &NoUdfs, &mut fast)
        .map(|t| (t, fast));
    let b = d
        .decode_careful(Some(record), NOW, 3_600_000, &NoUdfs, &mut careful)
        .map(|t| (t, careful));
    (a, b)
}

#[test]
fn plain_records_take_the_fast_path_and_read_as_the_careful_path_reads_them() {
    let d = decoder();
    for record in PLAIN {
        let mut row = vec![Value::Null; d.width()];
        assert!(
            d.read_plain(record.as_bytes(), &mut row).is_some(),
            "not plain: {record}"
        );
        let (fast, careful) = both(&d, record.as_bytes());
        assert!(careful.is_ok(), "{record}: {careful:?}");
        assert_eq!(fast, careful, "{record}");
    }
}

#[test]
fn plain_records_that_break_a_later_rule_fail_alike() {
    let d = decoder();
    for record in PLAIN_BUT_BAD {
        let mut row = vec![Value::Null; d.width()];
        assert!(
            d.read_plain(record.as_bytes(), &mut row).is_some(),
            "not plain: {record}"
        );
        let (fast, careful) = both(&d, record.as_bytes());
        assert!(careful.is_err(), "{record}");
        assert_eq!(fast, careful, "{record}");
    }
}

#[test]
fn odd_and_broken_records_are_left_to_the_careful_path() {
    let d = decoder();
    for record in ODD {
        let mut row = vec![Value::Null; d.width()];
        assert!(
            d.read_plain(record.as_bytes(), &mut row).is_none(),
            "taken as plain: {record}"
        );
        let (fast, careful) = both(&d, record.as_bytes());
        assert_eq!(fast, careful, "{record}");
    }
}

#[test]
fn a_record_that_is_not_utf8_is_bad_utf8_on_both_paths() {
    let d = decoder();
    for record in [
        &b"{\"id\":\"d-1\",\"x\":1,\"ts\":1,\"note\":\"\xff\"}"[..],
        b"{\"id\":\"d-1\",\"x\":1,\"ts\":1,\"skip\":\"\xc3\"}",
        b"{\"id\":\"d-1\",\"x\":1,\"ts\":1,\"\xe2\x82\":1}",
    ] {
        let (fast, careful) = both(&d, record);
        assert_eq!(fast.as_ref().map_err(|b| b.reason.code()), Err("bad_utf8"));
        assert_eq!(fast, careful);
    }
}

#[test]
fn mutated_records_decode_alike_on_both_paths() {
    let d = decoder();
    let alphabet: &[u8] = b"{}[]\":,\\ -+.0123456789eEtrufalsn\x01\x7fxu\xc3\xa9\xff";
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % n
    };
    let mut fast_taken = 0;
    // One row reused across every record, as the source reuses it: nothing of a record may leak into the next.
    let mut reused = Vec::new();
    for round in 0..20_000 {
        let base = match round % 3 {
            0 => PLAIN[next(PLAIN.len())],
            1 => PLAIN_BUT_BAD[next(PLAIN_BUT_BAD.len())],
            _ => ODD[next(ODD.len())],
        };
        let mut bytes = base.as_bytes().to_vec();
        for _ in 0..=next(3) {
            let at = next(bytes.len() + 1);
            match next(3) {
                0 if at < bytes.len() => bytes[at] = alphabet[next(alphabet.len())],
                1 => bytes.insert(at, alphabet[next(alphabet.len())]),
                _ if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => {}
            }
        }
        let (fast, careful) = both(&d, &bytes);
        assert_eq!(fast, careful, "{}", String::from_utf8_lossy(&bytes));
        let again = d
            .decode(Some(&bytes), NOW, 3_600_000, &NoUdfs, &mut reused)
            .map(|t| (t, reused.clone()));
        assert_eq!(again, careful, "with a reused row: {}", String::from_utf8_lossy(&bytes));
        let mut row = vec![Value::Null; d.width()];
        if d.read_plain(&bytes, &mut row).is_some() {
            fast_taken += 1;
        }
    }
    assert!(fast_taken > 1_000, "the mutations reach the fast path ({fast_taken})");
}
