//! Helpers of the stages' unit tests: the built-in job's program, its events as the source reads them, and
//! reading the rows it emits.

use std::sync::Arc;

use model::value::Value;
use sql::agg::UdafInputs;
use sql::{DefaultQuery, DefaultUdf, Function, FunctionKind, ScalarHost, default_job_sql, plan_job};

use crate::messages::{EventRec, WindowOut};
use crate::query::{NoUdfs, Program, Query, Record, UdfHost};
use std::rc::Rc;

/// The built-in job's program, without UDFs (planned once per test process).
pub fn program() -> Program {
    static QUERY: std::sync::OnceLock<Arc<Query>> = std::sync::OnceLock::new();
    let query = QUERY.get_or_init(|| {
        let text = default_job_sql(&DefaultQuery::default());
        let job = plan_job(&text, &[]).unwrap();
        Arc::new(Query::compile(job, text, true).unwrap())
    });
    Program {
        query: query.clone(),
        host: Rc::new(NoUdfs),
    }
}

/// An aggregate UDF `seq(temperature)` in tests: the temperatures in the order the UDF sees them.
struct Sequence;

impl ScalarHost for Sequence {
    fn call(&self, _function: usize, _args: &[Value]) -> Value {
        Value::Null
    }
}

impl UdfHost for Sequence {
    fn aggregate(&self, _function: usize, inputs: &UdafInputs) -> Value {
        let seq: Vec<String> = inputs.columns[0].iter().map(|v| v.to_string()).collect();
        Value::Text(seq.join(",").into())
    }
}

/// The built-in job with an aggregate UDF column `seq` (the temperatures in the order the UDF sees them):
/// the last value of each row.
pub fn sequence_program() -> Program {
    let text = default_job_sql(&DefaultQuery {
        udf_columns: vec![DefaultUdf {
            name: "seq".into(),
            kind: FunctionKind::Aggregate,
            params: vec!["temperature".into()],
        }],
        ..DefaultQuery::default()
    });
    let seq = Function {
        name: "seq".into(),
        kind: FunctionKind::Aggregate,
        args: vec![model::value::DataType::Double],
        returns: model::value::DataType::Text,
        nullable: true,
    };
    let job = plan_job(&text, &[seq]).unwrap();
    Program {
        query: Arc::new(Query::compile(job, text, true).unwrap()),
        host: Rc::new(Sequence),
    }
}

/// An on-time event of `device` at `ts` travelling at `at`, located in `lab`, with fixed readings but the
/// temperature, as the built-in job's source reads it.
pub fn event(device: &str, ts: u64, at: u64, temperature: f64) -> EventRec {
    located(device, ts, at, temperature, "lab")
}

/// [`event`] at `location`.
pub fn located(device: &str, ts: u64, at: u64, temperature: f64, location: &str) -> EventRec {
    let payload = format!(
        r#"{{"device_id":"{device}","ts":{ts},"temperature":{temperature},"humidity":50,"battery":80,"status":"ok","location":"{location}"}}"#
    );
    let p = program();
    let Record::Event(r) = p
        .query
        .read(Some(payload.as_bytes()), ts + 1, 3_600_000, &NoUdfs, &mut Vec::new())
        .unwrap()
    else {
        panic!("the built-in job has no WHERE")
    };
    EventRec { at, ..r }
}

/// A row's device id.
pub fn device(w: &WindowOut) -> String {
    w.key.label()
}

/// A row's event count.
pub fn count(w: &WindowOut) -> u64 {
    match w.row[3] {
        Value::Int(n) => n as u64,
        ref other => panic!("count is {other:?}"),
    }
}

/// A row's mean temperature.
pub fn avg_temperature(w: &WindowOut) -> f64 {
    match w.row[4] {
        Value::Float(t) => t,
        ref other => panic!("avg_temperature is {other:?}"),
    }
}

/// The `seq` column of a row of [`sequence_program`].
pub fn sequence(w: &WindowOut) -> String {
    match w.row.last() {
        Some(Value::Text(s)) => s.to_string(),
        other => panic!("seq is {other:?}"),
    }
}
