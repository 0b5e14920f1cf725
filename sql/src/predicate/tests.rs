//! Every compiled shape gives what its expression gives, over rows of every kind of value (NULL, NaN, -0.0,
//! the bounds themselves), and shapes without a compiled form fall back to the expression.

use super::*;
use crate::function::NoUdfs;
use crate::value::DataType;

const TABLE: &str = "CREATE TABLE t (
    i BIGINT, f DOUBLE, s TEXT, b BOOLEAN, at TIMESTAMP NOT NULL,
    WATERMARK FOR at AS at - INTERVAL '1' SECOND
) WITH ('connector' = 'file', 'path' = 'x', 'format' = 'json')";

/// The WHERE condition `cond` planned (its constants folded), as an expression over the table's row.
fn condition(cond: &str) -> Expr {
    let text = format!(
        "{TABLE}; SELECT s, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(at), INTERVAL '1' SECOND)) \
         WHERE {cond} GROUP BY s, window_start, window_end"
    );
    let job = crate::plan_job(&text, &[]).unwrap_or_else(|e| panic!("{cond}: {e}"));
    let e = job.query.filter.expect("a WHERE").fold_constants();
    assert_eq!(e.ty, DataType::Boolean);
    e
}

fn rows() -> Vec<Vec<Value>> {
    let ints = [
        Value::Null,
        Value::Int(-5),
        Value::Int(0),
        Value::Int(10),
        Value::Int(i64::MAX),
    ];
    let floats = [
        Value::Null,
        Value::Float(-60.0),
        Value::Float(-0.0),
        Value::Float(0.0),
        Value::Float(2.5),
        Value::Float(150.0),
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
        Value::Float(f64::NEG_INFINITY),
    ];
    let texts = [
        Value::Null,
        Value::Text("ok".into()),
        Value::Text("warn".into()),
        Value::Text("".into()),
    ];
    let bools = [Value::Null, Value::Bool(true), Value::Bool(false)];
    let mut out = Vec::new();
    for i in &ints {
        for f in &floats {
            for s in &texts {
                for b in &bools {
                    out.push(vec![
                        i.clone(),
                        f.clone(),
                        s.clone(),
                        b.clone(),
                        Value::Timestamp(1_000),
                    ]);
                }
            }
        }
    }
    out
}

#[test]
fn compiled_shapes_give_what_their_expressions_give() {
    let conditions = [
        "i >= 0",
        "0 < i",
        "i = 10",
        "i <> 10",
        "f BETWEEN -60 AND 150",
        "f NOT BETWEEN 0 AND 2.5",
        "f > 2.5",
        "f <= -0.0",
        "2.5 = f",
        "f < 1e308 * 10",
        "s IN ('ok', 'warn', 'error')",
        "s NOT IN ('ok')",
        "s = 'warn'",
        "s <> ''",
        "'ok' = s",
        "s IS NULL",
        "f IS NOT NULL",
        "NOT (i > 0)",
        "i > 0 AND s = 'ok'",
        "i > 0 OR f > 0",
        "(i IS NULL OR f < 0) AND NOT s IN ('warn')",
        "at >= TIMESTAMP '1970-01-01 00:00:00'",
        "b",
        "i + 1 > 5",
        "s IN ('ok', NULL)",
        "CASE WHEN i > 0 THEN b ELSE NOT b END",
    ];
    let rows = rows();
    for cond in conditions {
        let e = condition(cond);
        let p = Predicate::compile(&e);
        for row in &rows {
            let want = match e.eval(row, &NoUdfs) {
                Value::Bool(true) => Truth::True,
                Value::Bool(false) => Truth::False,
                _ => Truth::Unknown,
            };
            assert_eq!(p.truth(row, &NoUdfs), want, "{cond} over {row:?} ({p:?})");
        }
    }
}

#[test]
fn the_common_shapes_compile_to_direct_tests() {
    assert!(matches!(
        Predicate::compile(&condition("i >= 0")),
        Predicate::Int { .. }
    ));
    assert!(matches!(
        Predicate::compile(&condition("f BETWEEN -60 AND 150")),
        Predicate::FloatBetween { .. }
    ));
    assert!(matches!(
        Predicate::compile(&condition("s IN ('ok', 'warn')")),
        Predicate::TextIn { .. }
    ));
    assert!(matches!(
        Predicate::compile(&condition("s = 'warn'")),
        Predicate::TextIn { .. }
    ));
    assert!(matches!(
        Predicate::compile(&condition("i + 1 > 5")),
        Predicate::Expr(_)
    ));
}
