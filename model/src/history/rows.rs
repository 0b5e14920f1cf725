//! The history's rows as a query makes them (`model::output`, `docs/contracts.md`): output rows of values to
//! Arrow record batches and back, and the partition folder of a row. A history file holds every output column
//! but the first key, which its Hive folder names (`<first key>=<escaped key text>`); a segment of the
//! checkpoint holds every column. Reading goes by column name, so files written with other UDF sets (other value
//! columns) read too: a column a file lacks is NULL. The seed's typed [`crate::Aggregate`] conversions
//! (`batch.rs`) read the same files.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

use crate::output::{OutputColumn, OutputSchema, key_text};
use crate::partition::{escape_partition_value, unescape_partition_value};
use crate::value::{DataType, Value};

/// One output row: a value per output column, in the schema's order.
pub type Row = Vec<Value>;

/// Why a batch's column cannot be read as an output column.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// A column of another type than the output's, that does not convert.
    #[error("column `{column}` is {found} in the file, not {wanted}: {source}")]
    Unconvertible {
        /// The column.
        column: String,
        /// Its type in the file.
        found: ArrowType,
        /// The output's type.
        wanted: DataType,
        /// Why the conversion failed.
        source: ArrowError,
    },
    /// A partition folder whose value does not read as the first key's type.
    #[error("the partition value {text:?} is not a {wanted} (folder of column `{column}`)")]
    Partition {
        /// The column.
        column: String,
        /// The folder's value.
        text: String,
        /// The first key's type.
        wanted: DataType,
    },
}

/// The Arrow type an output type is stored as.
pub fn arrow_type(ty: DataType) -> ArrowType {
    match ty {
        DataType::Text => ArrowType::Utf8,
        DataType::BigInt => ArrowType::Int64,
        DataType::Double => ArrowType::Float64,
        DataType::Boolean => ArrowType::Boolean,
        DataType::Timestamp => ArrowType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
    }
}

fn field(c: &OutputColumn) -> Field {
    Field::new(&c.name, arrow_type(c.ty), c.nullable)
}

/// The schema of a history file: every output column but the first key (the partition column).
pub fn file_schema(schema: &OutputSchema) -> SchemaRef {
    Arc::new(Schema::new(schema.columns()[1..].iter().map(field).collect::<Vec<_>>()))
}

/// The schema of a checkpoint segment: every output column.
pub fn segment_schema(schema: &OutputSchema) -> SchemaRef {
    Arc::new(Schema::new(schema.columns().iter().map(field).collect::<Vec<_>>()))
}

/// The folder value of a NULL key (a joined table's column where no version matched): Hive's, which DuckDB,
/// pyarrow and Spark read back as NULL.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The folder name of the partition a row belongs to: `<first key>=<escaped key text>` (a NULL key:
/// [`NULL_PARTITION`]).
pub fn partition_dir(schema: &OutputSchema, row: &[Value]) -> String {
    let first = schema.partition_column();
    match &row[0] {
        Value::Null => format!("{}={NULL_PARTITION}", first.name),
        key => format!("{}={}", first.name, escape_partition_value(&key_text(key))),
    }
}

/// The first key's value a partition folder `name` holds (`None`: a folder of another column, or an escape that
/// does not decode).
pub fn partition_value(schema: &OutputSchema, name: &str) -> Option<Result<Value, RowError>> {
    let first = schema.partition_column();
    let escaped = name.strip_prefix(&first.name)?.strip_prefix('=')?;
    if escaped == NULL_PARTITION {
        return Some(Ok(Value::Null));
    }
    let text = unescape_partition_value(escaped)?;
    let bad = || RowError::Partition {
        column: first.name.clone(),
        text: text.clone(),
        wanted: first.ty,
    };
    Some(match first.ty {
        DataType::Text => Ok(Value::Text(text.as_str().into())),
        DataType::BigInt => text.parse().map(Value::Int).map_err(|_| bad()),
        DataType::Boolean => match text.as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    })
}

/// The column `c` of `rows` as an Arrow array (a value of another type than the column's is null).
fn column_array<R: AsRef<[Value]>>(rows: &[R], i: usize, c: &OutputColumn) -> ArrayRef {
    let values = rows.iter().map(|r| &r.as_ref()[i]);
    match c.ty {
        DataType::Text => Arc::new(StringArray::from_iter(values.map(|v| match v {
            Value::Text(t) => Some(t.as_str()),
            _ => None,
        }))),
        DataType::BigInt => Arc::new(Int64Array::from_iter(values.map(|v| match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }))),
        DataType::Double => Arc::new(Float64Array::from_iter(values.map(|v| match v {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }))),
        DataType::Boolean => Arc::new(BooleanArray::from_iter(values.map(|v| match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        }))),
        DataType::Timestamp => Arc::new(
            TimestampMillisecondArray::from_iter(values.map(|v| match v {
                Value::Timestamp(ms) => Some(*ms),
                _ => None,
            }))
            .with_timezone("UTC"),
        ),
    }
}

/// `rows` (every output column, in order) as a batch of a history file (without the first key) or, with
/// `with_partition`, of a segment (every column).
pub fn rows_to_batch<R: AsRef<[Value]>>(
    schema: &OutputSchema,
    rows: &[R],
    with_partition: bool,
) -> Result<RecordBatch, ArrowError> {
    let (arrow_schema, from) = if with_partition {
        (segment_schema(schema), 0)
    } else {
        (file_schema(schema), 1)
    };
    let columns = schema.columns()[from..]
        .iter()
        .enumerate()
        .map(|(i, c)| column_array(rows, i + from, c))
        .collect();
    RecordBatch::try_new(arrow_schema, columns)
}

/// The rows of a batch (of a history file, with `partition` the first key's value from its folder; or of a
/// segment, `partition` `None`), every output column found by name and converted to its type; a column the batch
/// lacks is NULL.
pub fn batch_to_rows(
    batch: &RecordBatch,
    schema: &OutputSchema,
    partition: Option<&Value>,
) -> Result<Vec<Row>, RowError> {
    let n = batch.num_rows();
    let mut rows: Vec<Row> = (0..n).map(|_| Vec::with_capacity(schema.columns().len())).collect();
    for (i, c) in schema.columns().iter().enumerate() {
        if i == 0
            && let Some(p) = partition
        {
            rows.iter_mut().for_each(|r| r.push(p.clone()));
            continue;
        }
        let Some(array) = batch.column_by_name(&c.name) else {
            rows.iter_mut().for_each(|r| r.push(Value::Null));
            continue;
        };
        let unconvertible = |source| RowError::Unconvertible {
            column: c.name.clone(),
            found: array.data_type().clone(),
            wanted: c.ty,
            source,
        };
        let typed = cast(array, &arrow_type(c.ty)).map_err(unconvertible)?;
        for (row, j) in rows.iter_mut().zip(0..n) {
            row.push(if typed.is_null(j) {
                Value::Null
            } else {
                match c.ty {
                    DataType::Text => Value::Text(typed.as_string::<i32>().value(j).into()),
                    DataType::BigInt => Value::Int(typed.as_primitive::<arrow::datatypes::Int64Type>().value(j)),
                    DataType::Double => Value::Float(typed.as_primitive::<arrow::datatypes::Float64Type>().value(j)),
                    DataType::Boolean => Value::Bool(typed.as_boolean().value(j)),
                    DataType::Timestamp => Value::Timestamp(
                        typed
                            .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                            .value(j),
                    ),
                }
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Role;

    fn col(name: &str, ty: DataType, role: Role, nullable: bool) -> OutputColumn {
        OutputColumn {
            name: name.into(),
            ty,
            role,
            nullable,
        }
    }

    fn sensors() -> OutputSchema {
        OutputSchema::new(vec![
            col("sensor_id", DataType::BigInt, Role::Key, false),
            col("site", DataType::Text, Role::Key, false),
            col("window_start", DataType::Timestamp, Role::Window, false),
            col("window_end", DataType::Timestamp, Role::Window, false),
            col("n", DataType::BigInt, Role::Value, false),
            col("avg_pressure", DataType::Double, Role::Value, true),
            col("ok", DataType::Boolean, Role::Value, true),
        ])
        .unwrap()
    }

    fn row(id: i64, site: &str, start: i64, p: Option<f64>) -> Row {
        vec![
            Value::Int(id),
            Value::Text(site.into()),
            Value::Timestamp(start),
            Value::Timestamp(start + 10_000),
            Value::Int(3),
            p.map_or(Value::Null, Value::Float),
            Value::Bool(true),
        ]
    }

    #[test]
    fn files_hold_every_column_but_the_first_key_and_read_back_with_the_folders_value() {
        let s = sensors();
        let rows = vec![row(7, "a/b", 0, Some(1.5)), row(7, "c", 10_000, None)];
        let batch = rows_to_batch(&s, &rows, false).unwrap();
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["site", "window_start", "window_end", "n", "avg_pressure", "ok"]);
        assert_eq!(partition_dir(&s, &rows[0]), "sensor_id=7");
        let key = partition_value(&s, "sensor_id=7").unwrap().unwrap();
        assert_eq!(batch_to_rows(&batch, &s, Some(&key)).unwrap(), rows);
        assert!(partition_value(&s, "device_id=7").is_none(), "another column's folder");
        assert!(partition_value(&s, "sensor_id=x").unwrap().is_err());
    }

    #[test]
    fn segments_hold_every_column_and_missing_columns_read_as_null() {
        let s = sensors();
        let rows = vec![row(1, "x", 0, Some(2.0))];
        let batch = rows_to_batch(&s, &rows, true).unwrap();
        assert_eq!(batch_to_rows(&batch, &s, None).unwrap(), rows);
        let narrower = batch.project(&[0, 1, 2, 3, 4]).unwrap();
        let back = batch_to_rows(&narrower, &s, None).unwrap();
        assert_eq!((&back[0][5], &back[0][6]), (&Value::Null, &Value::Null));
    }

    #[test]
    fn text_keys_escape_into_folders_that_read_back() {
        let s = OutputSchema::new(vec![
            col("device_id", DataType::Text, Role::Key, false),
            col("window_start", DataType::Timestamp, Role::Window, false),
            col("window_end", DataType::Timestamp, Role::Window, false),
        ])
        .unwrap();
        let r = vec![
            Value::Text("../../etc/passwd".into()),
            Value::Timestamp(0),
            Value::Timestamp(1),
        ];
        let dir = partition_dir(&s, &r);
        assert!(!dir.contains('/'), "{dir}");
        assert_eq!(partition_value(&s, &dir).unwrap().unwrap(), r[0]);
    }

    #[test]
    fn a_null_key_has_hives_default_folder_and_reads_back_null() {
        let s = OutputSchema::new(vec![
            col("site", DataType::Text, Role::Key, true),
            col("window_start", DataType::Timestamp, Role::Window, false),
            col("window_end", DataType::Timestamp, Role::Window, false),
        ])
        .unwrap();
        let r = vec![Value::Null, Value::Timestamp(0), Value::Timestamp(1)];
        let dir = partition_dir(&s, &r);
        assert_eq!(dir, "site=__HIVE_DEFAULT_PARTITION__");
        assert_eq!(partition_value(&s, &dir).unwrap().unwrap(), Value::Null);
        let text = vec![Value::Text("".into()), Value::Timestamp(0), Value::Timestamp(1)];
        assert_ne!(partition_dir(&s, &text), dir, "an empty text is not NULL");
    }
}
