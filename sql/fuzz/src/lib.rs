//! What the fuzz targets share: a UDF registry and a host for them, and a run of a planned job over records,
//! so that the evaluation of whatever plan the fuzzer reaches is fuzzed as well.

use sql::{DataType, Function, FunctionKind, Job, ScalarHost, Value};

/// A registry with one scalar and one aggregate UDF, so that UDF calls are planned too.
pub fn functions() -> Vec<Function> {
    vec![
        Function {
            name: "scale".into(),
            kind: FunctionKind::Scalar,
            args: vec![DataType::Double, DataType::BigInt],
            returns: DataType::Double,
            nullable: true,
        },
        Function {
            name: "median".into(),
            kind: FunctionKind::Aggregate,
            args: vec![DataType::Double],
            returns: DataType::Double,
            nullable: true,
        },
    ]
}

/// A host whose scalar UDF multiplies; any other call is NULL.
pub struct Host;

impl ScalarHost for Host {
    fn call(&self, function: usize, args: &[Value]) -> Value {
        match (function, args) {
            (0, [Value::Float(x), Value::Int(n)]) => Value::Float(x * *n as f64),
            _ => Value::Null,
        }
    }
}

/// Records of many shapes, for a job of any schema.
pub const RECORDS: [&str; 6] = [
    r#"{"device_id":"d1","ts":1730638574123,"temperature":24.7,"humidity":55.3,"battery":82.5,"status":"ok","location":"lab"}"#,
    r#"{"sensor_id":"s","event_time":"2024-11-03T12:56:14.123Z","pressure":1.5,"co2":400,"ok":true,"ts_ms":1730638574123}"#,
    r#"{"a":1,"b":-2.5,"c":"x","d":false,"e":null,"t":"2024-01-01 00:00:00"}"#,
    r#"{"sensor_id":"s","event_time":0,"pressure":-0.0,"co2":-9223372036854775808,"ok":false,"ts_ms":0}"#,
    r#"{}"#,
    r#"[1]"#,
];

/// Decodes `RECORDS` under `job`, folds the valid ones into one group's accumulators and evaluates the outputs
/// and HAVING over the group row. Nothing here may panic, whatever the plan.
pub fn run(job: &Job) {
    let decoder = job.decoder();
    let mut accs: Vec<_> = job.query.aggregates.iter().map(|a| a.new_acc()).collect();
    let mut row = Vec::new();
    let mut key = Vec::new();
    for record in RECORDS {
        let Ok(ts) = decoder.decode(Some(record.as_bytes()), 1_730_638_574_123, 3_600_000, &Host, &mut row) else {
            continue;
        };
        if let Some(f) = &job.query.filter
            && !f.is_true(&row, &Host)
        {
            continue;
        }
        key = job.query.keys.iter().map(|k| row.get(k.slot).cloned().unwrap_or_default()).collect();
        for (spec, acc) in job.query.aggregates.iter().zip(accs.iter_mut()) {
            spec.update(acc, &row, ts, &Host);
        }
    }
    let mut merged: Vec<_> = job.query.aggregates.iter().map(|a| a.new_acc()).collect();
    for (m, a) in merged.iter_mut().zip(accs) {
        m.merge(a);
    }
    let mut group = key;
    group.resize(job.query.keys.len(), Value::Null);
    group.push(Value::Timestamp(0));
    group.push(Value::Timestamp(10_000));
    for acc in &merged {
        let _ = acc.udaf_inputs();
        group.push(acc.finish());
    }
    for o in &job.query.outputs {
        let _ = o.expr.eval(&group, &Host).to_json();
    }
    if let Some(h) = &job.query.having {
        let _ = h.is_true(&group, &Host);
    }
}
