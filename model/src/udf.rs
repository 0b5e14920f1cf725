//! The contract of user-defined columns: what a UDF adds to every window (its name, kind and value type) and
//! the values themselves, as they appear in `latest.json` records, in the Parquet history (a nullable column
//! after the contract columns) and on the dashboard. The host that computes them lives in the dataflow.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A UDF's kind, from its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UdfKind {
    /// Parameters are aggregate columns of the window; one value per window.
    Scalar,
    /// Every parameter is a `Vec<T>` of event fields; one value over the window's on-time events.
    Aggregate,
}

/// The value type of a UDF's column, from its return type (`Option<T>` or `T`; always nullable in the outputs,
/// since a failing row is null).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UdfType {
    /// `bool`.
    Boolean,
    /// `i32`.
    Int32,
    /// `i64`.
    Int64,
    /// `u32`.
    UInt32,
    /// `u64`.
    UInt64,
    /// `f32`.
    Float32,
    /// `f64`.
    Float64,
    /// `String`.
    Utf8,
}

/// One UDF column, as announced in `latest.json` (`udfs`) and written to the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdfColumn {
    /// The function's name, which is the column's name.
    pub name: String,
    /// Scalar or aggregate.
    pub kind: UdfKind,
    /// The value type.
    #[serde(rename = "type")]
    pub data_type: UdfType,
}

/// One value of a UDF column. In `latest.json` a plain `null`, boolean, number or string ([`UdfValue::to_json`]);
/// its serde form is tagged, so that it crosses processes in a format that is not self-describing (bincode).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum UdfValue {
    /// No value: the function returned `None`, failed on this row, or had no input.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer (`i32`, `i64`).
    Int(i64),
    /// An unsigned integer (`u32`, `u64`).
    UInt(u64),
    /// A float (`f32`, `f64`); NaN and infinities are written as `null` in JSON.
    Float(f64),
    /// A string.
    Text(String),
}

impl UdfValue {
    /// The value as it appears in JSON outputs: a plain `null`, boolean, number or string (NaN and infinities as
    /// `null`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            UdfValue::Null => serde_json::Value::Null,
            UdfValue::Bool(b) => (*b).into(),
            UdfValue::Int(i) => (*i).into(),
            UdfValue::UInt(u) => (*u).into(),
            UdfValue::Float(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            UdfValue::Text(t) => t.as_str().into(),
        }
    }

    /// The value as a float, for charts; `None` for null, text and non-finite numbers.
    pub fn as_f64(&self) -> Option<f64> {
        let v = match self {
            UdfValue::Null | UdfValue::Text(_) => return None,
            UdfValue::Bool(b) => f64::from(u8::from(*b)),
            UdfValue::Int(i) => *i as f64,
            UdfValue::UInt(u) => *u as f64,
            UdfValue::Float(f) => *f,
        };
        v.is_finite().then_some(v)
    }
}

/// The UDF values of one window, by column name.
pub type UdfValues = BTreeMap<String, UdfValue>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_plain_json_values_in_the_outputs() {
        let v = [
            UdfValue::Null,
            UdfValue::Bool(true),
            UdfValue::Int(-3),
            UdfValue::UInt(u64::MAX),
            UdfValue::Float(2.5),
            UdfValue::Text("x".into()),
        ];
        let json: Vec<serde_json::Value> = v.iter().map(UdfValue::to_json).collect();
        assert_eq!(
            serde_json::to_string(&json).unwrap(),
            r#"[null,true,-3,18446744073709551615,2.5,"x"]"#
        );
    }

    #[test]
    fn a_non_finite_float_is_written_as_null() {
        assert_eq!(UdfValue::Float(f64::NAN).to_json(), serde_json::Value::Null);
        assert_eq!(UdfValue::Float(f64::INFINITY).as_f64(), None);
        assert_eq!(UdfValue::Int(4).as_f64(), Some(4.0));
    }

    #[test]
    fn columns_name_their_kind_and_type_in_lower_case() {
        let c = UdfColumn {
            name: "heat_index".into(),
            kind: UdfKind::Scalar,
            data_type: UdfType::Float64,
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"name":"heat_index","kind":"scalar","type":"float64"}"#
        );
    }
}
