//! The rows of a history file as the dashboard answers them: record batches of any columns turned into JSON
//! objects in the shape of `latest.json` records (window bounds and other times as RFC 3339 UTC text, integers
//! and floats as numbers, NaN as `null`, text, booleans; `"final": true`), each keeping the window's bounds
//! and its other keys' texts beside its JSON text for the request's filters. The first key is the partition
//! folder's: its value comes from the folder (typed as its column), and a row of a file that keeps the column
//! as well is left out unless it agrees. Rows without a window, or with one before the epoch, are left out.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType as ArrowType, Float64Type, Int64Type, Schema, TimeUnit, UInt64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use model::history::ColumnError;
use model::latest::{FINAL, json_key_text};
use model::output::{OutputColumn, OutputSchema, Role, WINDOW_END, WINDOW_START};
use model::value::DataType;
use serde_json::{Map, Value as Json};

/// One row of the history: its window, the texts of its keys after the first, and its JSON object as text.
#[derive(Clone, Debug)]
pub struct HistoryRow {
    /// The window's start, epoch ms.
    pub window_start: u64,
    /// The window's end, epoch ms.
    pub window_end: u64,
    /// The texts of the keys after the first, in key order (empty for a query of one key).
    pub other_keys: Box<[String]>,
    /// The row as a JSON object, in `latest.json`'s record shape.
    json: Box<str>,
}

impl HistoryRow {
    /// The row as JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The row's fields, by name.
    pub fn fields(&self) -> Map<String, Json> {
        serde_json::from_str(&self.json).expect("a row is written as a JSON object")
    }
}

/// The keys a history is read with: the first one, whose value the partition folder holds, and the others.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryKeys {
    /// The first key's column.
    pub first: OutputColumn,
    /// The other keys' names, in key order.
    pub others: Vec<String>,
}

impl HistoryKeys {
    /// The keys of `schema`.
    pub fn of(schema: &OutputSchema) -> HistoryKeys {
        HistoryKeys {
            first: schema.partition_column().clone(),
            others: schema.keys()[1..].iter().map(|k| k.name.clone()).collect(),
        }
    }

    /// The first key's value as the folder's text names it, typed as its column (a BIGINT or BOOLEAN text that
    /// does not read as one stays text).
    pub fn first_value(&self, text: &str) -> Json {
        if self.first.nullable && text == model::latest::NULL_KEY_TEXT {
            return Json::Null;
        }
        match self.first.ty {
            DataType::BigInt => text.parse::<i64>().map_or_else(|_| Json::from(text), Json::from),
            DataType::Boolean => text.parse::<bool>().map_or_else(|_| Json::from(text), Json::from),
            _ => Json::from(text),
        }
    }
}

/// A column of a history file, as its footer declares it.
#[derive(Clone, Debug, PartialEq)]
pub struct FileColumn {
    /// Its name.
    pub name: String,
    /// Its type, as the output contract names types (integers BIGINT, floats DOUBLE, strings TEXT, times
    /// TIMESTAMP; any other type is answered as its text, TEXT).
    pub ty: DataType,
    /// Whether it may be null.
    pub nullable: bool,
}

/// The columns of a history file's schema.
pub fn file_columns(schema: &Schema) -> Vec<FileColumn> {
    schema
        .fields()
        .iter()
        .map(|f| FileColumn {
            name: f.name().clone(),
            ty: contract_type(f.data_type()),
            nullable: f.is_nullable(),
        })
        .collect()
}

fn contract_type(t: &ArrowType) -> DataType {
    match t {
        ArrowType::Boolean => DataType::Boolean,
        ArrowType::Int8
        | ArrowType::Int16
        | ArrowType::Int32
        | ArrowType::Int64
        | ArrowType::UInt8
        | ArrowType::UInt16
        | ArrowType::UInt32
        | ArrowType::UInt64 => DataType::BigInt,
        ArrowType::Float16 | ArrowType::Float32 | ArrowType::Float64 => DataType::Double,
        ArrowType::Timestamp(_, _) => DataType::Timestamp,
        _ => DataType::Text,
    }
}

/// The output columns of rows read from files of these columns under `schema`: the first key, then every
/// column of the files, the schema's in its order (with its types), then the others in the order met.
pub fn answer_columns<'a>(
    schema: &OutputSchema,
    keys: &HistoryKeys,
    files: impl Iterator<Item = &'a FileColumn>,
) -> Vec<OutputColumn> {
    let mut extra: Vec<OutputColumn> = Vec::new();
    let mut present = vec![false; schema.columns().len()];
    present[schema.index_of(&keys.first.name).unwrap_or(0)] = true;
    for f in files {
        match schema.index_of(&f.name) {
            Some(i) => present[i] = true,
            None if extra.iter().any(|c| c.name == f.name) => {}
            None => extra.push(OutputColumn {
                name: f.name.clone(),
                ty: f.ty,
                role: Role::Value,
                nullable: f.nullable,
            }),
        }
    }
    let mut columns: Vec<OutputColumn> = schema
        .columns()
        .iter()
        .zip(present)
        .filter(|(_, here)| *here)
        .map(|(c, _)| c.clone())
        .collect();
    columns.extend(extra);
    columns
}

/// One column of a batch, converted once for reading cell by cell.
enum Cells {
    Int(ArrayRef),
    UInt(ArrayRef),
    Float(ArrayRef),
    Bool(ArrayRef),
    Text(ArrayRef),
    /// Epoch milliseconds.
    Time(ArrayRef),
    /// Any other type, as its text.
    Other(ArrayRef),
}

impl Cells {
    fn of(array: &ArrayRef) -> Cells {
        let to = |t: &ArrowType| cast(array, t).ok();
        let converted = match array.data_type() {
            ArrowType::Boolean => Some(Cells::Bool(Arc::clone(array))),
            ArrowType::Int8 | ArrowType::Int16 | ArrowType::Int32 | ArrowType::Int64 => {
                to(&ArrowType::Int64).map(Cells::Int)
            }
            ArrowType::UInt8 | ArrowType::UInt16 | ArrowType::UInt32 | ArrowType::UInt64 => {
                to(&ArrowType::UInt64).map(Cells::UInt)
            }
            ArrowType::Float16 | ArrowType::Float32 | ArrowType::Float64 => to(&ArrowType::Float64).map(Cells::Float),
            ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => to(&ArrowType::Utf8).map(Cells::Text),
            ArrowType::Timestamp(_, _) => millis(array).map(Cells::Time),
            _ => None,
        };
        converted.unwrap_or_else(|| Cells::Other(Arc::clone(array)))
    }

    /// The cell of row `i` as JSON.
    fn json(&self, i: usize) -> Json {
        let array = match self {
            Cells::Int(a) | Cells::UInt(a) | Cells::Float(a) | Cells::Bool(a) | Cells::Text(a) => a,
            Cells::Time(a) | Cells::Other(a) => a,
        };
        if array.is_null(i) {
            return Json::Null;
        }
        match self {
            Cells::Int(a) => a.as_primitive::<Int64Type>().value(i).into(),
            Cells::UInt(a) => a.as_primitive::<UInt64Type>().value(i).into(),
            Cells::Float(a) => {
                serde_json::Number::from_f64(a.as_primitive::<Float64Type>().value(i)).map_or(Json::Null, Json::Number)
            }
            Cells::Bool(a) => a.as_boolean().value(i).into(),
            Cells::Text(a) => a.as_string::<i32>().value(i).into(),
            Cells::Time(a) => model::value::rfc3339_ms(a.as_primitive::<Int64Type>().value(i)).into(),
            Cells::Other(a) => ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default())
                .map_or(Json::Null, |f| f.value(i).to_string().into()),
        }
    }

    /// The cell of row `i` as a key's text (`None` for a null).
    fn key_text(&self, i: usize) -> Option<String> {
        match self.json(i) {
            Json::Null => None,
            v => Some(json_key_text(&v)),
        }
    }
}

/// Times of any timestamp unit (the instant kept, whatever the zone) or integers of milliseconds, as `Int64`
/// epoch milliseconds.
fn millis(array: &ArrayRef) -> Option<ArrayRef> {
    match array.data_type() {
        ArrowType::Timestamp(_, tz) => {
            let ms = cast(array, &ArrowType::Timestamp(TimeUnit::Millisecond, tz.clone())).ok()?;
            cast(&ms, &ArrowType::Int64).ok()
        }
        ArrowType::Int64 | ArrowType::Int32 | ArrowType::UInt64 | ArrowType::UInt32 => {
            cast(array, &ArrowType::Int64).ok()
        }
        _ => None,
    }
}

/// A window bound of a batch as `Int64` epoch milliseconds.
fn bound(batch: &RecordBatch, name: &'static str) -> Result<ArrayRef, ColumnError> {
    let array = batch.column_by_name(name).ok_or(ColumnError::Missing(name))?;
    millis(array).ok_or_else(|| ColumnError::NotATime {
        column: name,
        found: array.data_type().clone(),
    })
}

/// The rows of a batch of the history folder of `first_text` (the first key's text), for `keys`.
pub fn rows_of(batch: &RecordBatch, keys: &HistoryKeys, first_text: &str) -> Result<Vec<HistoryRow>, ColumnError> {
    let start = bound(batch, WINDOW_START)?;
    let end = bound(batch, WINDOW_END)?;
    let (start, end) = (start.as_primitive::<Int64Type>(), end.as_primitive::<Int64Type>());
    let schema = batch.schema();
    let columns: Vec<(&str, Cells)> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, a)| (f.name().as_str(), Cells::of(a)))
        .collect();
    let column = |name: &str| columns.iter().find(|(n, _)| *n == name).map(|(_, c)| c);
    let own_first = column(&keys.first.name);
    let others: Vec<Option<&Cells>> = keys.others.iter().map(|k| column(k)).collect();
    let first_value = keys.first_value(first_text);
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        // The partition folder decides the first key; a column of it, when the writer kept one, must agree.
        if own_first.is_some_and(|c| c.key_text(i).as_deref() != Some(first_text)) {
            continue;
        }
        if start.is_null(i) || end.is_null(i) {
            continue;
        }
        let (Ok(window_start), Ok(window_end)) = (u64::try_from(start.value(i)), u64::try_from(end.value(i))) else {
            continue;
        };
        let Some(other_keys) = others
            .iter()
            .map(|c| c.and_then(|c| c.key_text(i)))
            .collect::<Option<Vec<String>>>()
        else {
            // A row without a value for one of its keys belongs to no group.
            continue;
        };
        let mut fields = Map::new();
        fields.insert(keys.first.name.clone(), first_value.clone());
        for (name, cells) in &columns {
            let value = match *name {
                WINDOW_START => model::time::rfc3339_ms(window_start).into(),
                WINDOW_END => model::time::rfc3339_ms(window_end).into(),
                n if n == keys.first.name => continue,
                _ => cells.json(i),
            };
            fields.insert((*name).to_string(), value);
        }
        fields.insert(FINAL.to_string(), Json::Bool(true));
        rows.push(HistoryRow {
            window_start,
            window_end,
            other_keys: other_keys.into(),
            json: serde_json::to_string(&fields).expect("a JSON object serialises").into(),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, Float32Array, Int32Array, StringArray, TimestampSecondArray};
    use arrow::datatypes::Field;
    use serde_json::json;

    fn keys(first: &str, ty: DataType, others: &[&str]) -> HistoryKeys {
        HistoryKeys {
            first: OutputColumn {
                name: first.into(),
                ty,
                role: Role::Key,
                nullable: false,
            },
            others: others.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn cells_of_any_type_become_json_and_rows_keep_their_keys() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("line", ArrowType::Int32, false),
            Field::new(WINDOW_START, ArrowType::Timestamp(TimeUnit::Second, None), false),
            Field::new(WINDOW_END, ArrowType::Int64, false),
            Field::new("rate", ArrowType::Float32, true),
            Field::new("ok", ArrowType::Boolean, true),
            Field::new("site", ArrowType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![7, 8, 7])),
                Arc::new(TimestampSecondArray::from(vec![10, 20, -5])),
                Arc::new(arrow::array::Int64Array::from(vec![20_000, 30_000, 5_000])),
                Arc::new(Float32Array::from(vec![Some(1.5), Some(f32::NAN), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
                Arc::new(StringArray::from(vec![Some("a"), Some("b"), None])),
            ],
        )
        .unwrap();
        let rows = rows_of(&batch, &keys("line", DataType::BigInt, &["site"]), "7").unwrap();
        assert_eq!(
            rows.len(),
            1,
            "line 8 is another folder's; the window before the epoch is left out"
        );
        assert_eq!((rows[0].window_start, rows[0].window_end), (10_000, 20_000));
        assert_eq!(&*rows[0].other_keys, ["a"]);
        assert_eq!(
            Json::Object(rows[0].fields()),
            json!({"line": 7, "window_start": "1970-01-01T00:00:10Z", "window_end": "1970-01-01T00:00:20Z",
                   "rate": 1.5, "ok": true, "site": "a", "final": true})
        );
        assert!(
            rows_of(&batch, &keys("sensor", DataType::Text, &["missing"]), "s")
                .unwrap()
                .is_empty()
        );
        let nan = rows_of(&batch, &keys("sensor", DataType::Text, &[]), "s-1").unwrap();
        assert_eq!(nan.len(), 2);
        assert_eq!(nan[1].fields()["rate"], Json::Null, "NaN as null");
        assert_eq!(nan[1].fields()["sensor"], "s-1", "the folder's key");
    }

    #[test]
    fn a_batch_without_its_window_cannot_be_read() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", ArrowType::Utf8, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["a"]))]).unwrap();
        let err = rows_of(&batch, &keys("k", DataType::Text, &[]), "a").unwrap_err();
        assert_eq!(err.to_string(), "column `window_start` is missing");
    }

    #[test]
    fn folder_texts_are_typed_as_the_first_key() {
        assert_eq!(keys("k", DataType::BigInt, &[]).first_value("-3"), json!(-3));
        assert_eq!(keys("k", DataType::Boolean, &[]).first_value("true"), json!(true));
        assert_eq!(keys("k", DataType::BigInt, &[]).first_value("x"), json!("x"));
        assert_eq!(keys("k", DataType::Text, &[]).first_value("7"), json!("7"));
    }
}
