//! One worker's host of the job's UDFs, as the compiled query calls them (`query::UdfHost`): a scalar UDF on one
//! row's values (its arguments as 1-row Arrow arrays), an aggregate UDF on one window's rows (one array per
//! parameter, the rows in event-time order). Arguments are converted to the parameters' Rust types and the
//! answer back to a SQL value; a call that fails (the plugin panicked, an answer of another type or length) gives
//! NULL, is counted for its UDF and logged at a bounded rate.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayData, ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, StringArray,
    UInt32Array, UInt64Array, make_array,
};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int32Type, Int64Type, UInt32Type, UInt64Type};
use model::value::Value;
use sql::ScalarHost;
use sql::agg::UdafInputs;

use super::abi::CallError;
use super::signature::RustType;
use super::{Udf, Udfs};
use crate::query::UdfHost;
use crate::runtime::errors::{ErrorKind, ErrorLog};

/// Calls the job's UDFs for one worker and counts their failures.
pub struct Host {
    udfs: Arc<Udfs>,
    errors: RefCell<BTreeMap<String, u64>>,
    changed: Cell<bool>,
    log: Rc<ErrorLog>,
}

impl Host {
    /// A host of `udfs` (indexed as the query's function registry) logging failures to `log`.
    pub fn new(udfs: Arc<Udfs>, log: Rc<ErrorLog>) -> Host {
        Host {
            udfs,
            errors: RefCell::default(),
            changed: Cell::new(false),
            log,
        }
    }

    /// The failure counts per UDF when they changed since the last call.
    pub fn take_changed_errors(&self) -> Option<BTreeMap<String, u64>> {
        self.changed.take().then(|| self.errors.borrow().clone())
    }

    /// Counts and logs one failing call; its value is NULL.
    fn failed(&self, udf: &Udf, what: &str, e: &CallError) -> Value {
        *self.errors.borrow_mut().entry(udf.name().to_string()).or_default() += 1;
        self.changed.set(true);
        self.log.record(
            ErrorKind::Udf,
            &format!("UDF `{}` failed on {what} ({e}); its value is null", udf.name()),
        );
        Value::Null
    }

    /// Calls `udf` on `args` and reads its one answer.
    fn call_one(&self, udf: &Udf, args: &[ArrayData], what: &str) -> Value {
        match udf.plugin.call(args) {
            Ok(answer) => match to_values(&answer, udf.sig.ret) {
                Some(mut v) if v.len() == 1 => v.pop().expect("one value"),
                _ => self.failed(
                    udf,
                    what,
                    &CallError::BadAnswer("not one value of its return type".into()),
                ),
            },
            Err(e) => self.failed(udf, what, &e),
        }
    }
}

impl ScalarHost for Host {
    fn call(&self, function: usize, args: &[Value]) -> Value {
        let Some(udf) = self.udfs.get(function) else {
            return Value::Null;
        };
        let arrays: Vec<ArrayData> = udf
            .sig
            .params
            .iter()
            .zip(args)
            .map(|(p, v)| array_of(std::slice::from_ref(v), p.ty))
            .collect();
        self.call_one(udf, &arrays, "a row")
    }
}

impl UdfHost for Host {
    fn aggregate(&self, function: usize, inputs: &UdafInputs) -> Value {
        let Some(udf) = self.udfs.get(function) else {
            return Value::Null;
        };
        if inputs.event_times.is_empty() {
            return Value::Null;
        }
        let arrays: Vec<ArrayData> = udf
            .sig
            .params
            .iter()
            .zip(&inputs.columns)
            .map(|(p, column)| array_of(column, p.ty))
            .collect();
        self.call_one(udf, &arrays, "a window's rows")
    }
}

/// `values` as an Arrow array of the parameter type `ty`; a value that does not fit the type is null.
pub fn array_of(values: &[Value], ty: RustType) -> ArrayData {
    let int = |v: &Value| match v {
        Value::Int(i) | Value::Timestamp(i) => Some(*i),
        _ => None,
    };
    let float = |v: &Value| match v {
        Value::Float(f) => Some(*f),
        Value::Int(i) => Some(*i as f64),
        _ => None,
    };
    let array: ArrayRef = match ty {
        RustType::Bool => Arc::new(BooleanArray::from_iter(values.iter().map(|v| match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        }))),
        RustType::I32 => Arc::new(Int32Array::from_iter(
            values.iter().map(|v| int(v).and_then(|i| i32::try_from(i).ok())),
        )),
        RustType::I64 => Arc::new(Int64Array::from_iter(values.iter().map(int))),
        RustType::U32 => Arc::new(UInt32Array::from_iter(
            values.iter().map(|v| int(v).and_then(|i| u32::try_from(i).ok())),
        )),
        RustType::U64 => Arc::new(UInt64Array::from_iter(
            values.iter().map(|v| int(v).and_then(|i| u64::try_from(i).ok())),
        )),
        RustType::F32 => Arc::new(Float32Array::from_iter(
            values.iter().map(|v| float(v).map(|f| f as f32)),
        )),
        RustType::F64 => Arc::new(Float64Array::from_iter(values.iter().map(float))),
        RustType::Str => Arc::new(StringArray::from_iter(values.iter().map(|v| match v {
            Value::Text(t) => Some(t.to_string()),
            Value::Null => None,
            other => Some(other.to_string()),
        }))),
    };
    array.to_data()
}

/// The values of an answer, read as the declared return type; `None` when the answer has another type. An
/// unsigned value beyond BIGINT is NULL.
pub fn to_values(answer: &ArrayData, ret: RustType) -> Option<Vec<Value>> {
    let a = make_array(answer.clone());
    let expected = match ret {
        RustType::Bool => DataType::Boolean,
        RustType::I32 => DataType::Int32,
        RustType::I64 => DataType::Int64,
        RustType::U32 => DataType::UInt32,
        RustType::U64 => DataType::UInt64,
        RustType::F32 => DataType::Float32,
        RustType::F64 => DataType::Float64,
        RustType::Str => DataType::Utf8,
    };
    if a.data_type() != &expected {
        return None;
    }
    let each = |f: &dyn Fn(usize) -> Value| -> Vec<Value> {
        (0..a.len())
            .map(|i| if a.is_null(i) { Value::Null } else { f(i) })
            .collect()
    };
    Some(match ret {
        RustType::Bool => each(&|i| Value::Bool(a.as_boolean().value(i))),
        RustType::I32 => each(&|i| Value::Int(i64::from(a.as_primitive::<Int32Type>().value(i)))),
        RustType::I64 => each(&|i| Value::Int(a.as_primitive::<Int64Type>().value(i))),
        RustType::U32 => each(&|i| Value::Int(i64::from(a.as_primitive::<UInt32Type>().value(i)))),
        RustType::U64 => {
            each(&|i| i64::try_from(a.as_primitive::<UInt64Type>().value(i)).map_or(Value::Null, Value::Int))
        }
        RustType::F32 => each(&|i| Value::Float(f64::from(a.as_primitive::<Float32Type>().value(i)))),
        RustType::F64 => each(&|i| Value::Float(a.as_primitive::<Float64Type>().value(i))),
        RustType::Str => each(&|i| Value::Text(a.as_string::<i32>().value(i).into())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_as_the_declared_type_with_nulls() {
        let a = Float32Array::from(vec![Some(1.5), None]).to_data();
        assert_eq!(to_values(&a, RustType::F32), Some(vec![Value::Float(1.5), Value::Null]));
        assert_eq!(
            to_values(&a, RustType::F64),
            None,
            "another type than declared is refused"
        );
        let s = StringArray::from(vec!["hot"]).to_data();
        assert_eq!(to_values(&s, RustType::Str), Some(vec![Value::Text("hot".into())]));
        let big = UInt64Array::from(vec![u64::MAX, 7]).to_data();
        assert_eq!(to_values(&big, RustType::U64), Some(vec![Value::Null, Value::Int(7)]));
    }

    #[test]
    fn arguments_take_the_parameters_types_and_what_does_not_fit_is_null() {
        let values = [Value::Int(-1), Value::Int(5), Value::Null];
        let unsigned = make_array(array_of(&values, RustType::U64));
        assert_eq!(unsigned.data_type(), &DataType::UInt64);
        assert_eq!(
            (unsigned.is_null(0), unsigned.is_null(1), unsigned.is_null(2)),
            (true, false, true)
        );
        let widened = make_array(array_of(&[Value::Int(3)], RustType::F64));
        assert_eq!(widened.as_primitive::<Float64Type>().value(0), 3.0);
        let times = make_array(array_of(&[Value::Timestamp(10_000)], RustType::I64));
        assert_eq!(times.as_primitive::<Int64Type>().value(0), 10_000);
    }
}
