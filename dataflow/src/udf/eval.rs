//! One worker's evaluation of the job's UDFs: the Arrow arrays a call takes, built from a batch of windows
//! (scalar UDFs) or from one window's inputs (aggregate UDFs), one plugin call per batch; the answer turned into
//! column values. When the plugin reports a failure for a batch, the batch is called again row by row to find
//! the failing rows: only those are null, each is counted for its UDF and logged at a bounded rate.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayData, ArrayRef, AsArray, Float64Array, Int64Array, StringArray, UInt64Array, make_array,
};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int32Type, Int64Type, UInt32Type, UInt64Type};
use model::{UdfValue, UdfValues};

use super::abi::CallError;
use super::binding::{Binding, Column, EventField};
use super::signature::RustType;
use super::{Udf, Udfs};
use crate::messages::{UdafInputs, WindowOut};
use crate::runtime::errors::{ErrorKind, ErrorLog};

/// Evaluates the UDFs for one worker and counts their failures.
pub struct Evaluator {
    udfs: Arc<Udfs>,
    errors: BTreeMap<String, u64>,
    changed: bool,
    log: Rc<ErrorLog>,
}

impl Evaluator {
    /// An evaluator of `udfs` logging failures to `log`.
    pub fn new(udfs: Arc<Udfs>, log: Rc<ErrorLog>) -> Evaluator {
        Evaluator {
            udfs,
            errors: BTreeMap::new(),
            changed: false,
            log,
        }
    }

    /// Fills in the scalar UDF columns of a batch of windows: one call per UDF for the whole batch.
    pub fn derive(&mut self, outs: &mut [WindowOut]) {
        if outs.is_empty() {
            return;
        }
        let udfs = Arc::clone(&self.udfs);
        for udf in udfs.iter() {
            let Binding::Scalar(params) = &udf.binding else {
                continue;
            };
            let args: Vec<ArrayData> = params.iter().map(|&(c, ty)| column_array(outs, c, ty)).collect();
            let values = self.call(udf, &args, outs.len(), |i| {
                let w = &outs[i];
                format!(
                    "window [{}, {}) of {}",
                    w.agg.window_start, w.agg.window_end, w.agg.device_id
                )
            });
            for (out, v) in outs.iter_mut().zip(values) {
                out.agg.udf.insert(udf.sig.name.clone(), v);
            }
        }
    }

    /// The aggregate UDF values over one window's inputs (put in event-time order first): one call per UDF.
    pub fn aggregate(&mut self, inputs: &mut UdafInputs) -> UdfValues {
        let mut values = UdfValues::new();
        if inputs.is_empty() {
            return values;
        }
        inputs.sort();
        let udfs = Arc::clone(&self.udfs);
        for udf in udfs.iter() {
            let Binding::Aggregate(params) = &udf.binding else {
                continue;
            };
            let args: Vec<ArrayData> = params.iter().map(|&(f, ty)| field_array(inputs, f, ty)).collect();
            let v = match udf.plugin.call(&args) {
                Ok(answer) => match to_values(&answer, udf.sig.ret) {
                    Some(mut v) if v.len() == 1 => v.pop().expect("one value"),
                    _ => self.failed(udf, "a window's inputs", &CallError::BadAnswer("not one value".into())),
                },
                Err(e) => self.failed(udf, "a window's inputs", &e),
            };
            values.insert(udf.sig.name.clone(), v);
        }
        values
    }

    /// The failure counts per UDF when they changed since the last call.
    pub fn take_changed_errors(&mut self) -> Option<BTreeMap<String, u64>> {
        std::mem::take(&mut self.changed).then(|| self.errors.clone())
    }

    /// One call over `rows` rows; on failure, one call per row, with null for the rows that fail.
    fn call(
        &mut self,
        udf: &Udf,
        args: &[ArrayData],
        rows: usize,
        row_name: impl Fn(usize) -> String,
    ) -> Vec<UdfValue> {
        let first = match udf.plugin.call(args) {
            Ok(answer) => to_values(&answer, udf.sig.ret)
                .filter(|v| v.len() == rows)
                .ok_or_else(|| {
                    CallError::BadAnswer(format!("not {rows} values of type {:?}", udf.sig.ret.column_type()))
                }),
            Err(e) => Err(e),
        };
        match first {
            Ok(values) => values,
            Err(_) if rows > 1 => (0..rows)
                .map(|i| {
                    let one: Vec<ArrayData> = args.iter().map(|a| a.slice(i, 1)).collect();
                    let answer = udf.plugin.call(&one);
                    match answer.map(|a| to_values(&a, udf.sig.ret)) {
                        Ok(Some(mut v)) if v.len() == 1 => v.pop().expect("one value"),
                        Ok(_) => self.failed(udf, &row_name(i), &CallError::BadAnswer("not one value".into())),
                        Err(e) => self.failed(udf, &row_name(i), &e),
                    }
                })
                .collect(),
            Err(e) => vec![self.failed(udf, &row_name(0), &e)],
        }
    }

    /// Counts and logs one failing row; its value is null.
    fn failed(&mut self, udf: &Udf, row: &str, e: &CallError) -> UdfValue {
        *self.errors.entry(udf.sig.name.clone()).or_default() += 1;
        self.changed = true;
        self.log.record(
            ErrorKind::Udf,
            &format!("UDF `{}` failed on {row} ({e}); its value is null", udf.sig.name),
        );
        UdfValue::Null
    }
}

/// A window column of a batch, typed as the parameter takes it.
fn column_array(outs: &[WindowOut], c: Column, ty: RustType) -> ArrayData {
    let int = |f: fn(&WindowOut) -> u64| -> ArrayRef {
        match ty {
            RustType::I64 => Arc::new(Int64Array::from_iter_values(outs.iter().map(|w| f(w) as i64))),
            _ => Arc::new(UInt64Array::from_iter_values(outs.iter().map(f))),
        }
    };
    let float = |f: fn(&WindowOut) -> f64| -> ArrayRef { Arc::new(Float64Array::from_iter_values(outs.iter().map(f))) };
    let array = match c {
        Column::Count => int(|w| w.agg.count),
        Column::WarnCount => int(|w| w.agg.warn_count),
        Column::ErrorCount => int(|w| w.agg.error_count),
        Column::WindowStart => int(|w| w.agg.window_start),
        Column::WindowEnd => int(|w| w.agg.window_end),
        Column::AvgTemperature => float(|w| w.agg.avg_temperature),
        Column::AvgHumidity => float(|w| w.agg.avg_humidity),
        Column::MinBattery => float(|w| w.agg.min_battery),
        Column::MaxBattery => float(|w| w.agg.max_battery),
        Column::StddevTemperature => float(|w| w.agg.stddev_temperature),
        Column::DeviceId => Arc::new(StringArray::from_iter_values(
            outs.iter().map(|w| w.agg.device_id.as_str()),
        )),
        Column::Location => Arc::new(StringArray::from_iter_values(outs.iter().map(|w| w.location.as_str()))),
    };
    array.to_data()
}

/// An event field of one window's inputs, typed as the parameter's elements.
fn field_array(inputs: &UdafInputs, f: EventField, ty: RustType) -> ArrayData {
    let floats = |v: &[f64]| Float64Array::from(v.to_vec()).to_data();
    match f {
        EventField::Temperature => floats(&inputs.temperature),
        EventField::Humidity => floats(&inputs.humidity),
        EventField::Battery => floats(&inputs.battery),
        EventField::Ts => match ty {
            RustType::I64 => Int64Array::from_iter_values(inputs.ts.iter().map(|&t| t as i64)).to_data(),
            _ => UInt64Array::from(inputs.ts.clone()).to_data(),
        },
    }
}

/// The values of an answer, read as the declared return type; `None` when the answer has another type.
fn to_values(answer: &ArrayData, ret: RustType) -> Option<Vec<UdfValue>> {
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
    let each = |f: &dyn Fn(usize) -> UdfValue| -> Vec<UdfValue> {
        (0..a.len())
            .map(|i| if a.is_null(i) { UdfValue::Null } else { f(i) })
            .collect()
    };
    Some(match ret {
        RustType::Bool => each(&|i| UdfValue::Bool(a.as_boolean().value(i))),
        RustType::I32 => each(&|i| UdfValue::Int(i64::from(a.as_primitive::<Int32Type>().value(i)))),
        RustType::I64 => each(&|i| UdfValue::Int(a.as_primitive::<Int64Type>().value(i))),
        RustType::U32 => each(&|i| UdfValue::UInt(u64::from(a.as_primitive::<UInt32Type>().value(i)))),
        RustType::U64 => each(&|i| UdfValue::UInt(a.as_primitive::<UInt64Type>().value(i))),
        RustType::F32 => each(&|i| UdfValue::Float(f64::from(a.as_primitive::<Float32Type>().value(i)))),
        RustType::F64 => each(&|i| UdfValue::Float(a.as_primitive::<Float64Type>().value(i))),
        RustType::Str => each(&|i| UdfValue::Text(a.as_string::<i32>().value(i).to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_as_the_declared_type_with_nulls() {
        let a = arrow::array::Float32Array::from(vec![Some(1.5), None]).to_data();
        assert_eq!(
            to_values(&a, RustType::F32),
            Some(vec![UdfValue::Float(1.5), UdfValue::Null])
        );
        assert_eq!(
            to_values(&a, RustType::F64),
            None,
            "another type than declared is refused"
        );
        let s = StringArray::from(vec!["hot"]).to_data();
        assert_eq!(to_values(&s, RustType::Str), Some(vec![UdfValue::Text("hot".into())]));
    }

    #[test]
    fn ts_is_passed_in_the_declared_width() {
        let inputs = UdafInputs {
            ts: vec![5, 7],
            ..UdafInputs::default()
        };
        assert_eq!(
            field_array(&inputs, EventField::Ts, RustType::I64).data_type(),
            &DataType::Int64
        );
        assert_eq!(
            field_array(&inputs, EventField::Ts, RustType::U64).data_type(),
            &DataType::UInt64
        );
    }
}
