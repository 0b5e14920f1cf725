//! The values and types of a job's rows and outputs (the SQL layer's, and every output contract's). A [`Value`] is what a row slot, an aggregate and an output hold; it
//! has one total order (used by DISTINCT, MIN/MAX and keys) with `Eq` and `Hash` consistent with it, a tagged
//! serde form that crosses processes with bincode, and a plain JSON form for the outputs.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// A column or expression type, as the dialect spells it (see `docs/SQL.md`, "Types").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    /// `TEXT`, `VARCHAR`, `VARCHAR(n)`, `STRING`: UTF-8 text.
    Text,
    /// `BIGINT`, `INT`, `INTEGER`: a signed 64-bit integer.
    BigInt,
    /// `DOUBLE`, `FLOAT`, `REAL`: a 64-bit float.
    Double,
    /// `BOOLEAN`.
    Boolean,
    /// `TIMESTAMP`, `TIMESTAMP(3)`, `TIMESTAMP_LTZ(3)`: an instant, epoch milliseconds (UTC).
    Timestamp,
}

impl DataType {
    /// Whether arithmetic and the numeric aggregates apply.
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::BigInt | DataType::Double)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataType::Text => "TEXT",
            DataType::BigInt => "BIGINT",
            DataType::Double => "DOUBLE",
            DataType::Boolean => "BOOLEAN",
            DataType::Timestamp => "TIMESTAMP",
        })
    }
}

/// One SQL value. The serde form is tagged (never `untagged`, nothing skipped), so it is safe for formats that
/// are not self-describing.
///
/// Order (`Ord`): first by kind, `Null < Bool < Int < Float < Text < Timestamp`, then by value; floats by
/// `f64::total_cmp` after folding `-0.0` into `0.0` and every NaN into one, so `0.0 == -0.0` and `NaN == NaN`
/// here (unlike `f64`). A well-typed plan never compares values of two kinds: the planner casts first.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL.
    #[default]
    Null,
    /// A BOOLEAN.
    Bool(bool),
    /// A BIGINT.
    Int(i64),
    /// A DOUBLE.
    Float(f64),
    /// A TEXT (inline up to 24 bytes).
    Text(CompactString),
    /// A TIMESTAMP, epoch milliseconds.
    Timestamp(i64),
}

impl Value {
    /// Whether this is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The SQL type of a non-NULL value.
    pub fn data_type(&self) -> Option<DataType> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(_) => DataType::Boolean,
            Value::Int(_) => DataType::BigInt,
            Value::Float(_) => DataType::Double,
            Value::Text(_) => DataType::Text,
            Value::Timestamp(_) => DataType::Timestamp,
        })
    }

    /// The value as a float, for the numeric aggregates (BIGINT widened).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The value as it appears in JSON outputs: `null`, a boolean, a number, a string; a TIMESTAMP as an RFC 3339
    /// UTC string with milliseconds (as `latest.json` writes window bounds); NaN and infinities as `null`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            Value::Text(s) => s.as_str().into(),
            Value::Timestamp(ms) => rfc3339_ms(*ms).into(),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::Float(_) => 3,
            Value::Text(_) => 4,
            Value::Timestamp(_) => 5,
        }
    }
}

/// A float folded so that equal SQL values have equal bits: `-0.0` is `0.0`, every NaN is one NaN.
fn canonical(f: f64) -> f64 {
    if f == 0.0 {
        0.0
    } else if f.is_nan() {
        f64::NAN
    } else {
        f
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => canonical(*a).total_cmp(&canonical(*b)),
            (Value::Text(a), Value::Text(b)) => a.cmp(b),
            (Value::Timestamp(a), Value::Timestamp(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Value) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Value {
    /// `cmp(..) == Equal`, without ordering text (lengths first).
    #[inline]
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) | (Value::Timestamp(a), Value::Timestamp(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => canonical(*a).to_bits() == canonical(*b).to_bits(),
            (Value::Text(a), Value::Text(b)) => a.as_bytes() == b.as_bytes(),
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u8(self.rank());
        match self {
            Value::Null => {}
            Value::Bool(b) => b.hash(state),
            Value::Int(i) | Value::Timestamp(i) => i.hash(state),
            Value::Float(f) => canonical(*f).to_bits().hash(state),
            Value::Text(s) => s.hash(state),
        }
    }
}

impl fmt::Display for Value {
    /// The text `CAST(value AS TEXT)` gives (NULL shows as `NULL`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Text(s) => f.write_str(s),
            Value::Timestamp(ms) => f.write_str(&rfc3339_ms(*ms)),
        }
    }
}

/// Epoch milliseconds as RFC 3339 UTC, with the milliseconds when there are any (`2024-11-03T12:56:14.123Z`,
/// `2024-11-03T12:56:10Z`), as `latest.json` writes window bounds; outside chrono's range (about ±262,000
/// years) the plain number.
pub fn rfc3339_ms(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => ms.to_string(),
    }
}

/// Parses a timestamp as the dialect reads one from text (JSON strings, `TIMESTAMP '...'` literals, casts):
/// RFC 3339 / ISO 8601 with `T` or a space between date and time, an offset or `Z` (none: UTC), fractional
/// seconds of any length truncated to milliseconds. Epoch milliseconds.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    use chrono::{DateTime, NaiveDateTime};
    let t = text.trim();
    if let Ok(zoned) = DateTime::parse_from_rfc3339(t) {
        return Some(zoned.timestamp_millis());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return Some(naive.and_utc().timestamp_millis());
        }
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return date.and_hms_opt(0, 0, 0).map(|d| d.and_utc().timestamp_millis());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash(v: &Value) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    #[test]
    fn floats_fold_signed_zero_and_nan_in_order_and_hash() {
        assert_eq!(Value::Float(0.0), Value::Float(-0.0));
        assert_eq!(hash(&Value::Float(0.0)), hash(&Value::Float(-0.0)));
        assert_eq!(Value::Float(f64::NAN), Value::Float(-f64::NAN));
        assert_eq!(hash(&Value::Float(f64::NAN)), hash(&Value::Float(-f64::NAN)));
        assert!(Value::Float(f64::NEG_INFINITY) < Value::Float(-1.0));
        assert!(Value::Float(f64::INFINITY) < Value::Float(f64::NAN));
    }

    #[test]
    fn equality_is_ordering_equal() {
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(1),
            Value::Timestamp(1),
            Value::Float(1.0),
            Value::Float(0.0),
            Value::Float(-0.0),
            Value::Float(f64::NAN),
            Value::Float(f64::INFINITY),
            Value::Text("a".into()),
            Value::Text("ab".into()),
            Value::Text("a much longer text that lives on the heap".into()),
        ];
        for a in &values {
            for b in &values {
                assert_eq!(a == b, a.cmp(b) == Ordering::Equal, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn kinds_order_before_values() {
        let mut values = vec![
            Value::Timestamp(0),
            Value::Text("a".into()),
            Value::Float(-5.0),
            Value::Int(7),
            Value::Bool(true),
            Value::Null,
        ];
        values.sort();
        assert_eq!(
            values,
            vec![
                Value::Null,
                Value::Bool(true),
                Value::Int(7),
                Value::Float(-5.0),
                Value::Text("a".into()),
                Value::Timestamp(0)
            ]
        );
    }

    #[test]
    fn json_form_is_plain_and_non_finite_is_null() {
        assert_eq!(Value::Float(f64::NAN).to_json(), serde_json::Value::Null);
        assert_eq!(Value::Float(f64::INFINITY).to_json(), serde_json::Value::Null);
        assert_eq!(Value::Float(1.5).to_json(), serde_json::json!(1.5));
        assert_eq!(Value::Int(-3).to_json(), serde_json::json!(-3));
        assert_eq!(Value::Text("x".into()).to_json(), serde_json::json!("x"));
        assert_eq!(
            Value::Timestamp(1_730_638_574_123).to_json(),
            serde_json::json!("2024-11-03T12:56:14.123Z")
        );
    }

    #[test]
    fn values_round_trip_through_bincode() {
        let values = vec![
            Value::Null,
            Value::Bool(false),
            Value::Int(i64::MIN),
            Value::Float(f64::NAN),
            Value::Text("a text longer than twenty-four bytes".into()),
            Value::Timestamp(-1),
        ];
        let bytes = bincode::serialize(&values).unwrap();
        let back: Vec<Value> = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, values);
    }

    #[test]
    fn timestamps_parse_with_and_without_zone() {
        assert_eq!(parse_timestamp("2024-11-03T12:56:14.123Z"), Some(1_730_638_574_123));
        assert_eq!(parse_timestamp("2024-11-03T12:56:14.123"), Some(1_730_638_574_123));
        assert_eq!(parse_timestamp("2024-11-03 12:56:14.1239"), Some(1_730_638_574_123));
        assert_eq!(
            parse_timestamp("2024-11-03T13:56:14.123+01:00"),
            Some(1_730_638_574_123)
        );
        assert_eq!(parse_timestamp("2024-11-03T12:56:14Z"), Some(1_730_638_574_000));
        assert_eq!(parse_timestamp("2024-11-03"), Some(1_730_592_000_000));
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2024-13-03T00:00:00Z"), None);
    }
}
