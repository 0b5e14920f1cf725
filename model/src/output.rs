//! The shape of a job's output, which its query decides (`docs/contracts.md`, "Output columns"): the columns of
//! every output row, in order — the group keys, `window_start`, `window_end`, then the other select items — with
//! their types and roles. The same description heads `latest.json` (`columns`), names the Parquet history's
//! columns and partition folders, and keys the Kafka output's records; readers (the dashboard, the notebooks,
//! the tests) take it from there instead of assuming the seed's columns.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::value::{DataType, Value};

/// The part a column plays in an output row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A group key (the first one partitions the Parquet history).
    Key,
    /// `window_start` or `window_end` (TIMESTAMP).
    Window,
    /// Any other select item: an aggregate or an expression of keys, window bounds and aggregates.
    Value,
}

/// One output column.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OutputColumn {
    /// Its name: a Parquet column and a JSON field (letters, digits and `_`, not starting with a digit).
    pub name: String,
    /// Its type.
    #[serde(rename = "type", with = "type_name")]
    pub ty: DataType,
    /// Its role.
    pub role: Role,
    /// Whether it may be null.
    #[serde(default = "yes")]
    pub nullable: bool,
}

fn yes() -> bool {
    true
}

/// The name of `window_start`.
pub const WINDOW_START: &str = "window_start";
/// The name of `window_end`.
pub const WINDOW_END: &str = "window_end";

/// The columns of a job's output rows, in row order: keys (at least one), `window_start`, `window_end`, values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OutputSchema {
    columns: Vec<OutputColumn>,
}

/// Why a list of columns is not an output schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// No key column first.
    #[error("an output needs at least one key column first")]
    NoKey,
    /// The window bounds are not right after the keys, or not TIMESTAMP.
    #[error("window_start and window_end (TIMESTAMP) must follow the keys")]
    Window,
    /// A key after a value, or a second pair of bounds.
    #[error("columns must be keys, then window_start and window_end, then values ({0} is out of place)")]
    Order(String),
    /// Two columns of one name.
    #[error("two output columns are named {0}")]
    Duplicate(String),
}

impl OutputSchema {
    /// The schema of `columns`, checked: keys, then the two window bounds, then values; names unique.
    pub fn new(columns: Vec<OutputColumn>) -> Result<OutputSchema, SchemaError> {
        let keys = columns.iter().take_while(|c| c.role == Role::Key).count();
        if keys == 0 {
            return Err(SchemaError::NoKey);
        }
        let bounds = columns.get(keys..keys + 2).ok_or(SchemaError::Window)?;
        let is_bound =
            |c: &OutputColumn, name: &str| c.role == Role::Window && c.name == name && c.ty == DataType::Timestamp;
        if !(is_bound(&bounds[0], WINDOW_START) && is_bound(&bounds[1], WINDOW_END)) {
            return Err(SchemaError::Window);
        }
        if let Some(c) = columns[keys + 2..].iter().find(|c| c.role != Role::Value) {
            return Err(SchemaError::Order(c.name.clone()));
        }
        let mut names: Vec<String> = columns.iter().map(|c| c.name.to_ascii_lowercase()).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(SchemaError::Duplicate(w[0].clone()));
        }
        Ok(OutputSchema { columns })
    }

    /// Every column, in row order.
    pub fn columns(&self) -> &[OutputColumn] {
        &self.columns
    }

    /// The key columns.
    pub fn keys(&self) -> &[OutputColumn] {
        &self.columns[..self.key_count()]
    }

    /// How many keys lead a row.
    pub fn key_count(&self) -> usize {
        self.columns.iter().take_while(|c| c.role == Role::Key).count()
    }

    /// The first key: it partitions the Parquet history.
    pub fn partition_column(&self) -> &OutputColumn {
        &self.columns[0]
    }

    /// The row index of `window_start` (`window_end` follows it).
    pub fn window_start(&self) -> usize {
        self.key_count()
    }

    /// The row index of the column called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&OutputColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A partition value's text: what a key value becomes in a folder name (`device_id=<escaped text>`) and in the
/// Kafka output's record key. TEXT as it is, BIGINT in decimal, BOOLEAN `true`/`false`; NULL (never a key) as
/// the empty string.
pub fn key_text(value: &Value) -> String {
    match value {
        Value::Text(t) => t.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One output row as a JSON record, as `latest.json` and the Kafka output write it: each column's JSON value
/// (`Value::to_json`) under its name, in row order, then `"final"`.
pub struct JsonRecord<'a> {
    /// The row's columns.
    pub schema: &'a OutputSchema,
    /// The row.
    pub row: &'a [Value],
    /// Whether the window is final.
    pub is_final: bool,
}

impl Serialize for JsonRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.row.len() + 1))?;
        for (c, v) in self.schema.columns().iter().zip(self.row) {
            map.serialize_entry(&c.name, &v.to_json())?;
        }
        map.serialize_entry("final", &self.is_final)?;
        map.end()
    }
}

/// The Kafka output's record key of a row: the key text of its one key, or with several keys the JSON array of
/// their values (`["site-a","s-1"]`).
pub fn record_key(schema: &OutputSchema, row: &[Value]) -> String {
    match &row[..schema.key_count()] {
        [one] => key_text(one),
        keys => serde_json::Value::Array(keys.iter().map(Value::to_json).collect()).to_string(),
    }
}

/// The type names of the contract (`TEXT`, `BIGINT`, `DOUBLE`, `BOOLEAN`, `TIMESTAMP`), as SQL spells them.
mod type_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::value::DataType;

    pub fn serialize<S: Serializer>(ty: &DataType, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(ty)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DataType, D::Error> {
        let name = String::deserialize(d)?;
        Ok(match name.as_str() {
            "TEXT" => DataType::Text,
            "BIGINT" => DataType::BigInt,
            "DOUBLE" => DataType::Double,
            "BOOLEAN" => DataType::Boolean,
            "TIMESTAMP" => DataType::Timestamp,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "unknown column type {other} (TEXT, BIGINT, DOUBLE, BOOLEAN or TIMESTAMP)"
                )));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: DataType, role: Role) -> OutputColumn {
        OutputColumn {
            name: name.into(),
            ty,
            role,
            nullable: role == Role::Value,
        }
    }

    fn seed_like() -> Vec<OutputColumn> {
        vec![
            col("device_id", DataType::Text, Role::Key),
            col(WINDOW_START, DataType::Timestamp, Role::Window),
            col(WINDOW_END, DataType::Timestamp, Role::Window),
            col("count", DataType::BigInt, Role::Value),
        ]
    }

    #[test]
    fn keys_then_bounds_then_values_make_a_schema() {
        let s = OutputSchema::new(seed_like()).unwrap();
        assert_eq!((s.key_count(), s.window_start()), (1, 1));
        assert_eq!(s.partition_column().name, "device_id");
        assert_eq!(s.index_of("count"), Some(3));
    }

    #[test]
    fn a_schema_out_of_order_or_with_duplicates_is_refused() {
        let mut no_key = seed_like();
        no_key.remove(0);
        assert_eq!(OutputSchema::new(no_key), Err(SchemaError::NoKey));
        let mut swapped = seed_like();
        swapped.swap(1, 2);
        assert_eq!(OutputSchema::new(swapped), Err(SchemaError::Window));
        let mut late_key = seed_like();
        late_key.push(col("site", DataType::Text, Role::Key));
        assert!(matches!(OutputSchema::new(late_key), Err(SchemaError::Order(_))));
        let mut twice = seed_like();
        twice.push(col("COUNT", DataType::Double, Role::Value));
        assert!(matches!(OutputSchema::new(twice), Err(SchemaError::Duplicate(_))));
    }

    #[test]
    fn the_json_form_names_types_as_sql_does_and_reads_back() {
        let s = OutputSchema::new(seed_like()).unwrap();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json[0],
            serde_json::json!({"name": "device_id", "type": "TEXT", "role": "key", "nullable": false})
        );
        assert_eq!(json[1]["role"], "window");
        let back: OutputSchema = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
        let minimal: OutputColumn = serde_json::from_str(r#"{"name":"x","type":"DOUBLE","role":"value"}"#).unwrap();
        assert!(minimal.nullable, "nullable unless said otherwise");
    }

    #[test]
    fn a_record_is_each_columns_json_value_and_final_and_its_key_the_key_text() {
        let s = OutputSchema::new(seed_like()).unwrap();
        let row = [
            Value::Text("d".into()),
            Value::Timestamp(0),
            Value::Timestamp(10_000),
            Value::Int(4),
        ];
        let json = serde_json::to_string(&JsonRecord {
            schema: &s,
            row: &row,
            is_final: true,
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"device_id":"d","window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:00:10Z","count":4,"final":true}"#
        );
        assert_eq!(record_key(&s, &row), "d");
        let mut two = seed_like();
        two.insert(1, col("n", DataType::BigInt, Role::Key));
        let s2 = OutputSchema::new(two).unwrap();
        let row2 = [
            Value::Text("d".into()),
            Value::Int(3),
            Value::Timestamp(0),
            Value::Timestamp(1),
            Value::Int(1),
        ];
        assert_eq!(record_key(&s2, &row2), r#"["d",3]"#);
    }

    #[test]
    fn key_values_become_partition_text() {
        assert_eq!(key_text(&Value::Text("a/b".into())), "a/b");
        assert_eq!(key_text(&Value::Int(-7)), "-7");
        assert_eq!(key_text(&Value::Bool(true)), "true");
    }
}
