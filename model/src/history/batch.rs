//! Aggregates to and from Arrow record batches of the history's schema (the `arrow` half of `model::history`):
//! the schema with its UDF columns, rows to batches and back by column name, and the UDF columns a file holds.

use std::borrow::Borrow;
use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMillisecondArray, UInt32Array, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType, UInt64Type,
};
use arrow::error::ArrowError;

use super::*;
use crate::Aggregate;
use crate::partition::PARTITION_COLUMN;
use crate::udf::{UdfColumn, UdfType, UdfValue};

/// Time zone of both time columns.
const TIME_ZONE: &str = "UTC";

/// The Arrow schema of history files: [`COLUMNS`] in order, times `TIMESTAMP(MILLIS, "UTC")`, counts `Int64`,
/// the other values `Float64`, none nullable.
pub fn schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let time = DataType::Timestamp(TimeUnit::Millisecond, Some(TIME_ZONE.into()));
        let fields = COLUMNS.map(|name| {
            let data_type = match name {
                WINDOW_START | WINDOW_END => time.clone(),
                COUNT | WARN_COUNT | ERROR_COUNT => DataType::Int64,
                _ => DataType::Float64,
            };
            Field::new(name, data_type, false)
        });
        Arc::new(Schema::new(fields.to_vec()))
    });
    Arc::clone(&SCHEMA)
}

/// The Arrow type of a UDF column.
fn udf_data_type(t: UdfType) -> DataType {
    match t {
        UdfType::Boolean => DataType::Boolean,
        UdfType::Int32 => DataType::Int32,
        UdfType::Int64 => DataType::Int64,
        UdfType::UInt32 => DataType::UInt32,
        UdfType::UInt64 => DataType::UInt64,
        UdfType::Float32 => DataType::Float32,
        UdfType::Float64 => DataType::Float64,
        UdfType::Utf8 => DataType::Utf8,
    }
}

/// [`schema`] followed by one nullable column per UDF, in `udfs` order, typed from its return type.
pub fn schema_with(udfs: &[UdfColumn]) -> SchemaRef {
    if udfs.is_empty() {
        return schema();
    }
    let mut fields: Vec<Field> = schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(
        udfs.iter()
            .map(|u| Field::new(&u.name, udf_data_type(u.data_type), true)),
    );
    Arc::new(Schema::new(fields))
}

/// [`to_batch`] with the UDF columns of [`schema_with`]; a row without a value for a column holds null there.
pub fn to_batch_with<R: Borrow<Aggregate>>(rows: &[R], udfs: &[UdfColumn]) -> Result<RecordBatch, ArrowError> {
    let base = to_batch(rows)?;
    if udfs.is_empty() {
        return Ok(base);
    }
    let mut columns = base.columns().to_vec();
    for u in udfs {
        columns.push(udf_array(rows, u));
    }
    RecordBatch::try_new(schema_with(udfs), columns)
}

/// [`to_batch_with`] followed by a `device_id` column: a batch of many devices' windows (the checkpoint's
/// carried windows), read back with [`from_batch_with_ids`].
pub fn to_batch_with_ids(rows: &[Aggregate], udfs: &[UdfColumn]) -> Result<RecordBatch, ArrowError> {
    let base = to_batch_with(rows, udfs)?;
    let mut fields: Vec<Field> = base.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(PARTITION_COLUMN, DataType::Utf8, false));
    let mut columns = base.columns().to_vec();
    columns.push(Arc::new(StringArray::from_iter_values(
        rows.iter().map(|r| r.device_id.as_str()),
    )));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// One UDF column of `rows`; a value of another type than the column's is written as null.
fn udf_array<R: Borrow<Aggregate>>(rows: &[R], u: &UdfColumn) -> ArrayRef {
    let values = rows
        .iter()
        .map(|r| r.borrow().udf.get(&u.name).unwrap_or(&UdfValue::Null));
    let float = |v: &UdfValue| match v {
        UdfValue::Float(f) => Some(*f),
        _ => None,
    };
    let int = |v: &UdfValue| match v {
        UdfValue::Int(i) => Some(*i),
        _ => None,
    };
    let uint = |v: &UdfValue| match v {
        UdfValue::UInt(u) => Some(*u),
        _ => None,
    };
    match u.data_type {
        UdfType::Boolean => Arc::new(
            values
                .map(|v| match v {
                    UdfValue::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect::<BooleanArray>(),
        ),
        UdfType::Int32 => Arc::new(Int32Array::from_iter(values.map(|v| int(v).map(|i| i as i32)))),
        UdfType::Int64 => Arc::new(Int64Array::from_iter(values.map(int))),
        UdfType::UInt32 => Arc::new(UInt32Array::from_iter(values.map(|v| uint(v).map(|u| u as u32)))),
        UdfType::UInt64 => Arc::new(UInt64Array::from_iter(values.map(uint))),
        UdfType::Float32 => Arc::new(Float32Array::from_iter(values.map(|v| float(v).map(|f| f as f32)))),
        UdfType::Float64 => Arc::new(Float64Array::from_iter(values.map(float))),
        UdfType::Utf8 => Arc::new(StringArray::from_iter(values.map(|v| match v {
            UdfValue::Text(t) => Some(t.as_str()),
            _ => None,
        }))),
    }
}

/// Every column of a batch beyond the contract's (and the partition column) that holds booleans, integers,
/// floats or strings: the UDF columns, by name. Columns of other types are left out.
fn extra_columns(batch: &RecordBatch) -> Vec<(String, ArrayRef)> {
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, _)| !COLUMNS.contains(&f.name().as_str()) && f.name() != PARTITION_COLUMN)
        .filter_map(|(f, a)| {
            let kind = match f.data_type() {
                DataType::Boolean | DataType::Utf8 | DataType::Float64 | DataType::Int64 | DataType::UInt64 => {
                    Arc::clone(a)
                }
                DataType::Float16 | DataType::Float32 => cast(a, &DataType::Float64).ok()?,
                DataType::Int8 | DataType::Int16 | DataType::Int32 => cast(a, &DataType::Int64).ok()?,
                DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => cast(a, &DataType::UInt64).ok()?,
                DataType::LargeUtf8 | DataType::Utf8View => cast(a, &DataType::Utf8).ok()?,
                _ => return None,
            };
            Some((f.name().clone(), kind))
        })
        .collect()
}

/// The value of row `i` of an array prepared by [`extra_columns`].
fn udf_value(a: &ArrayRef, i: usize) -> UdfValue {
    if a.is_null(i) {
        return UdfValue::Null;
    }
    match a.data_type() {
        DataType::Boolean => UdfValue::Bool(a.as_boolean().value(i)),
        DataType::Utf8 => UdfValue::Text(a.as_string::<i32>().value(i).to_string()),
        DataType::Float64 => UdfValue::Float(a.as_primitive::<Float64Type>().value(i)),
        DataType::Int64 => UdfValue::Int(a.as_primitive::<Int64Type>().value(i)),
        DataType::UInt64 => UdfValue::UInt(a.as_primitive::<UInt64Type>().value(i)),
        _ => UdfValue::Null,
    }
}

/// One record batch of [`schema`] holding `rows` in their order (the device ids are not stored: they name the
/// partition). Times and counts are written as `i64` bit patterns of the `u64` values. The rows may be owned or
/// borrowed (`&[Aggregate]` or `&[&Aggregate]`).
pub fn to_batch<R: Borrow<Aggregate>>(rows: &[R]) -> Result<RecordBatch, ArrowError> {
    let rows = || rows.iter().map(Borrow::borrow);
    let time = |f: fn(&Aggregate) -> u64| {
        Arc::new(TimestampMillisecondArray::from_iter_values(rows().map(|r| f(r) as i64)).with_timezone(TIME_ZONE))
            as ArrayRef
    };
    let int =
        |f: fn(&Aggregate) -> u64| Arc::new(Int64Array::from_iter_values(rows().map(|r| f(r) as i64))) as ArrayRef;
    let float = |f: fn(&Aggregate) -> f64| Arc::new(Float64Array::from_iter_values(rows().map(f))) as ArrayRef;
    RecordBatch::try_new(
        schema(),
        vec![
            time(|r| r.window_start),
            time(|r| r.window_end),
            int(|r| r.count),
            float(|r| r.avg_temperature),
            float(|r| r.avg_humidity),
            float(|r| r.min_battery),
            float(|r| r.max_battery),
            float(|r| r.stddev_temperature),
            int(|r| r.warn_count),
            int(|r| r.error_count),
        ],
    )
}

/// Why a batch cannot be read as history rows.
#[derive(Debug, thiserror::Error)]
pub enum ColumnError {
    /// A contract column is absent.
    #[error("column `{0}` is missing")]
    Missing(&'static str),
    /// A column's type cannot be converted to the contract's.
    #[error("column `{column}` is {found}: {source}")]
    Unconvertible {
        /// The column.
        column: &'static str,
        /// Its type in the file.
        found: DataType,
        /// Why the conversion failed.
        source: ArrowError,
    },
    /// A time column holds neither timestamps nor integers.
    #[error("column `{column}` is {found}, not a timestamp")]
    NotATime {
        /// The column.
        column: &'static str,
        /// Its type in the file.
        found: DataType,
    },
}

/// The rows of `device_id` (the device its partition folder names) in a history batch, found by column name
/// and converted to the contract's types, so that files of other writers read too: times of any unit or as
/// integer milliseconds, other integer and float widths. Columns beyond the contract's (UDF columns) are read
/// by name into [`Aggregate::udf`], so files with different UDF columns union by name. When the file keeps a
/// `device_id` column as well, rows of another device are left out, and so are rows without a window or with
/// one before the epoch. A null count reads as 0, a null value as NaN.
pub fn from_batch(batch: &RecordBatch, device_id: &str) -> Result<Vec<Aggregate>, ColumnError> {
    rows_of(batch, Some(device_id))
}

/// The rows of a batch that keeps a `device_id` column (the checkpoint's carried windows of many devices),
/// each of the device it names; otherwise as [`from_batch`]. Rows with a null device are left out.
pub fn from_batch_with_ids(batch: &RecordBatch) -> Result<Vec<Aggregate>, ColumnError> {
    if batch.column_by_name(PARTITION_COLUMN).is_none() {
        return Err(ColumnError::Missing(PARTITION_COLUMN));
    }
    rows_of(batch, None)
}

/// The UDF columns a history file's schema holds beyond the contract's, by name, typed from their Arrow type
/// (narrow integers and floats as the next type a UDF can return; columns of other types are left out, as
/// [`from_batch`] leaves them out). Writing files of several schemas with the union of their columns keeps
/// every value: the union by column name.
pub fn udf_columns_of(schema: &Schema) -> Vec<UdfColumn> {
    schema
        .fields()
        .iter()
        .filter(|f| !COLUMNS.contains(&f.name().as_str()) && f.name() != PARTITION_COLUMN)
        .filter_map(|f| {
            let data_type = match f.data_type() {
                DataType::Boolean => UdfType::Boolean,
                DataType::Int8 | DataType::Int16 | DataType::Int32 => UdfType::Int32,
                DataType::Int64 => UdfType::Int64,
                DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => UdfType::UInt32,
                DataType::UInt64 => UdfType::UInt64,
                DataType::Float16 | DataType::Float32 => UdfType::Float32,
                DataType::Float64 => UdfType::Float64,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => UdfType::Utf8,
                _ => return None,
            };
            Some(UdfColumn {
                name: f.name().clone(),
                kind: crate::udf::UdfKind::Scalar,
                data_type,
            })
        })
        .collect()
}

fn rows_of(batch: &RecordBatch, device_id: Option<&str>) -> Result<Vec<Aggregate>, ColumnError> {
    let c = Columns::of(batch)?;
    let extra = extra_columns(batch);
    let ids = c.device_id.as_ref().map(|a| a.as_string::<i32>());
    let start = c.window_start.as_primitive::<Int64Type>();
    let end = c.window_end.as_primitive::<Int64Type>();
    let int = |a: &ArrayRef, i: usize| {
        let a = a.as_primitive::<Int64Type>();
        if a.is_null(i) {
            0
        } else {
            u64::try_from(a.value(i)).unwrap_or(0)
        }
    };
    let float = |a: &ArrayRef, i: usize| {
        let a = a.as_primitive::<Float64Type>();
        if a.is_null(i) { f64::NAN } else { a.value(i) }
    };
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        // The partition folder decides the device; a device_id column, when the writer kept one, must agree.
        let device = match (ids, device_id) {
            (Some(ids), _) if ids.is_null(i) => continue,
            (Some(ids), Some(folder)) if ids.value(i) != folder => continue,
            (Some(ids), None) => ids.value(i),
            (_, Some(folder)) => folder,
            (None, None) => continue,
        };
        if start.is_null(i) || end.is_null(i) {
            continue;
        }
        let (Ok(window_start), Ok(window_end)) = (u64::try_from(start.value(i)), u64::try_from(end.value(i))) else {
            continue;
        };
        rows.push(Aggregate {
            device_id: device.to_string(),
            window_start,
            window_end,
            count: int(&c.count, i),
            avg_temperature: float(&c.avg_temperature, i),
            avg_humidity: float(&c.avg_humidity, i),
            min_battery: float(&c.min_battery, i),
            max_battery: float(&c.max_battery, i),
            stddev_temperature: float(&c.stddev_temperature, i),
            warn_count: int(&c.warn_count, i),
            error_count: int(&c.error_count, i),
            udf: extra.iter().map(|(name, a)| (name.clone(), udf_value(a, i))).collect(),
        });
    }
    Ok(rows)
}

/// The columns of one batch, converted to the types of the contract (times as `Int64` milliseconds).
struct Columns {
    device_id: Option<ArrayRef>,
    window_start: ArrayRef,
    window_end: ArrayRef,
    count: ArrayRef,
    avg_temperature: ArrayRef,
    avg_humidity: ArrayRef,
    min_battery: ArrayRef,
    max_battery: ArrayRef,
    stddev_temperature: ArrayRef,
    warn_count: ArrayRef,
    error_count: ArrayRef,
}

impl Columns {
    fn of(batch: &RecordBatch) -> Result<Columns, ColumnError> {
        let column = |name: &'static str| batch.column_by_name(name).ok_or(ColumnError::Missing(name));
        let float = |name| as_type(column(name)?, name, &DataType::Float64);
        let int = |name| as_type(column(name)?, name, &DataType::Int64);
        let time = |name| as_millis(column(name)?, name);
        let device_id = match batch.column_by_name(PARTITION_COLUMN) {
            Some(a) => Some(as_type(a, PARTITION_COLUMN, &DataType::Utf8)?),
            None => None,
        };
        Ok(Columns {
            device_id,
            window_start: time(WINDOW_START)?,
            window_end: time(WINDOW_END)?,
            count: int(COUNT)?,
            avg_temperature: float(AVG_TEMPERATURE)?,
            avg_humidity: float(AVG_HUMIDITY)?,
            min_battery: float(MIN_BATTERY)?,
            max_battery: float(MAX_BATTERY)?,
            stddev_temperature: float(STDDEV_TEMPERATURE)?,
            warn_count: int(WARN_COUNT)?,
            error_count: int(ERROR_COUNT)?,
        })
    }
}

fn as_type(array: &ArrayRef, column: &'static str, to: &DataType) -> Result<ArrayRef, ColumnError> {
    if array.data_type() == to {
        return Ok(Arc::clone(array));
    }
    cast(array, to).map_err(|source| ColumnError::Unconvertible {
        column,
        found: array.data_type().clone(),
        source,
    })
}

/// Event times as epoch milliseconds, whatever the stored unit: any timestamp unit (its zone kept, so the
/// instant is not shifted) or a plain integer of milliseconds.
fn as_millis(array: &ArrayRef, column: &'static str) -> Result<ArrayRef, ColumnError> {
    match array.data_type() {
        DataType::Timestamp(_, tz) => {
            let ms = as_type(array, column, &DataType::Timestamp(TimeUnit::Millisecond, tz.clone()))?;
            let values = ms
                .as_primitive::<TimestampMillisecondType>()
                .reinterpret_cast::<Int64Type>();
            Ok(Arc::new(values))
        }
        DataType::Int64 | DataType::Int32 | DataType::UInt64 | DataType::UInt32 => {
            as_type(array, column, &DataType::Int64)
        }
        other => Err(ColumnError::NotATime {
            column,
            found: other.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
    use arrow::compute::cast;
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMillisecondType};

    use super::super::*;
    use crate::Aggregate;

    fn agg(start: u64) -> Aggregate {
        Aggregate {
            device_id: "../../etc/passwd".into(),
            window_start: start,
            window_end: start + 10_000,
            count: 40,
            avg_temperature: 24.52,
            avg_humidity: 54.87,
            min_battery: 80.1,
            max_battery: 85.3,
            stddev_temperature: 0.4,
            warn_count: 1,
            error_count: 2,
            udf: Default::default(),
        }
    }

    #[test]
    fn udf_columns_follow_the_contract_columns_nullable_and_read_back_by_name() {
        use crate::udf::{UdfColumn, UdfKind, UdfType, UdfValue};
        let udfs = [
            UdfColumn {
                name: "heat_index".into(),
                kind: UdfKind::Scalar,
                data_type: UdfType::Float32,
            },
            UdfColumn {
                name: "label".into(),
                kind: UdfKind::Aggregate,
                data_type: UdfType::Utf8,
            },
        ];
        let mut a = agg(0);
        a.udf.insert("heat_index".into(), UdfValue::Float(27.5));
        a.udf.insert("label".into(), UdfValue::Text("hot".into()));
        let mut b = agg(10_000);
        b.udf.insert("heat_index".into(), UdfValue::Null);
        let batch = to_batch_with(&[a.clone(), b.clone()], &udfs).unwrap();
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names[..10], COLUMNS);
        assert_eq!(names[10..], ["heat_index", "label"]);
        assert_eq!(schema.field(10).data_type(), &DataType::Float32);
        assert!(schema.field(10).is_nullable() && schema.field(11).is_nullable());
        let back = from_batch(&batch, &a.device_id).unwrap();
        assert_eq!(back[0], a);
        b.udf.insert("label".into(), UdfValue::Null);
        assert_eq!(back[1], b, "a missing value is written as null");
        assert_eq!(from_batch(&to_batch(&[agg(0)]).unwrap(), "d").unwrap()[0].udf.len(), 0);
    }

    #[test]
    fn windows_of_many_devices_read_back_each_with_its_device() {
        let mut other = agg(10_000);
        other.device_id = "b".into();
        let batch = to_batch_with_ids(&[agg(0), other.clone()], &[]).unwrap();
        assert_eq!(from_batch_with_ids(&batch).unwrap(), vec![agg(0), other]);
        assert!(
            from_batch_with_ids(&to_batch(&[agg(0)]).unwrap()).is_err(),
            "no device column"
        );
    }

    #[test]
    fn the_udf_columns_of_files_union_by_name_with_their_types() {
        use crate::udf::{UdfColumn, UdfKind, UdfType, UdfValue};
        let column = |name: &str, data_type| UdfColumn {
            name: name.into(),
            kind: UdfKind::Scalar,
            data_type,
        };
        let one = [column("heat_index", UdfType::Float32)];
        let two = [column("label", UdfType::Utf8), column("n", UdfType::UInt32)];
        let mut a = agg(0);
        a.udf.insert("heat_index".into(), UdfValue::Float(27.5));
        let mut b = agg(10_000);
        b.udf.insert("label".into(), UdfValue::Text("x".into()));
        b.udf.insert("n".into(), UdfValue::UInt(3));
        let (fa, fb) = (
            to_batch_with(&[a.clone()], &one).unwrap(),
            to_batch_with(&[b.clone()], &two).unwrap(),
        );
        assert_eq!(udf_columns_of(&fa.schema()), one);
        assert_eq!(udf_columns_of(&fb.schema()), two);
        assert!(udf_columns_of(&schema()).is_empty());
        let union: Vec<UdfColumn> = one.iter().chain(&two).cloned().collect();
        let mut rows = from_batch(&fa, &a.device_id).unwrap();
        rows.extend(from_batch(&fb, &b.device_id).unwrap());
        let merged = from_batch(&to_batch_with(&rows, &union).unwrap(), &a.device_id).unwrap();
        assert_eq!(merged[0].udf["heat_index"], UdfValue::Float(27.5));
        assert_eq!(merged[0].udf["label"], UdfValue::Null, "missing in its file: null");
        assert_eq!(
            (&merged[1].udf["label"], &merged[1].udf["n"]),
            (&UdfValue::Text("x".into()), &UdfValue::UInt(3))
        );
    }

    #[test]
    fn the_schema_lists_the_contract_columns_in_order_with_their_types() {
        let schema = schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, COLUMNS);
        let time = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
        assert_eq!(
            types,
            [
                &time,
                &time,
                &DataType::Int64,
                &DataType::Float64,
                &DataType::Float64,
                &DataType::Float64,
                &DataType::Float64,
                &DataType::Float64,
                &DataType::Int64,
                &DataType::Int64,
            ]
        );
        assert!(schema.fields().iter().all(|f| !f.is_nullable()));
        assert!(schema.metadata().is_empty());
    }

    #[test]
    fn a_batch_holds_the_rows_in_order_and_reads_back_equal() {
        let rows = [agg(1_730_644_210_000), agg(1_730_644_200_000)];
        let batch = to_batch(&rows).unwrap();
        assert_eq!(batch.schema(), schema());
        assert_eq!(batch.num_rows(), 2);
        let starts = batch
            .column(0)
            .as_primitive::<TimestampMillisecondType>()
            .values()
            .to_vec();
        assert_eq!(starts, [1_730_644_210_000, 1_730_644_200_000]);
        assert_eq!(from_batch(&batch, &rows[0].device_id).unwrap(), rows);
        assert!(to_batch::<Aggregate>(&[]).unwrap().num_rows() == 0);
    }

    /// `batch` with its columns converted to `to` where `convert` says so.
    fn recast(batch: &RecordBatch, convert: impl Fn(&str) -> Option<DataType>) -> RecordBatch {
        let (mut fields, mut columns) = (Vec::new(), Vec::new());
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let to = convert(field.name()).unwrap_or_else(|| field.data_type().clone());
            columns.push(cast(column, &to).unwrap());
            fields.push(Field::new(field.name(), to, true));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    #[test]
    fn other_writers_units_and_widths_read_the_same() {
        let rows = [agg(1_730_644_200_000)];
        let batch = to_batch(&rows).unwrap();
        let micros = recast(&batch, |name| match name {
            WINDOW_START | WINDOW_END => Some(DataType::Timestamp(TimeUnit::Microsecond, None)),
            COUNT => Some(DataType::Int32),
            AVG_HUMIDITY => Some(DataType::Float32),
            _ => None,
        });
        let back = from_batch(&micros, "../../etc/passwd").unwrap();
        assert_eq!(back[0].window_start, rows[0].window_start);
        assert_eq!(back[0].count, 40);
        assert!((back[0].avg_humidity - 54.87).abs() < 1e-5);
        let plain_ms = recast(&batch, |name| {
            matches!(name, WINDOW_START | WINDOW_END).then_some(DataType::Int64)
        });
        assert_eq!(from_batch(&plain_ms, "../../etc/passwd").unwrap(), rows);
    }

    #[test]
    fn a_device_column_inside_the_file_keeps_only_that_devices_rows() {
        let rows = [agg(0), agg(10_000)];
        let batch = to_batch(&rows).unwrap();
        let ids: ArrayRef = Arc::new(StringArray::from(vec!["../../etc/passwd", "other"]));
        let mut fields = vec![Field::new("device_id", DataType::Utf8, false)];
        fields.extend(batch.schema().fields().iter().map(|f| f.as_ref().clone()));
        let mut columns = vec![ids];
        columns.extend(batch.columns().iter().cloned());
        let with_ids = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        assert_eq!(from_batch(&with_ids, "../../etc/passwd").unwrap(), rows[..1]);
        assert!(from_batch(&with_ids, "nobody").unwrap().is_empty());
    }

    #[test]
    fn a_missing_or_mistyped_column_is_named() {
        let batch = to_batch(&[agg(0)]).unwrap();
        let without = batch.project(&[0, 1, 3, 4, 5, 6, 7, 8, 9]).unwrap();
        let err = from_batch(&without, "d").unwrap_err();
        assert_eq!(err.to_string(), "column `count` is missing");
        let text = recast(&batch, |name| {
            matches!(name, WINDOW_START | WINDOW_END).then_some(DataType::Int64)
        });
        let text = recast(&text, |name| (name == WINDOW_END).then_some(DataType::Utf8));
        let err = from_batch(&text, "d").unwrap_err();
        assert!(matches!(err, ColumnError::NotATime { column: WINDOW_END, .. }));
        assert_eq!(err.to_string(), "column `window_end` is Utf8, not a timestamp");
    }
}
