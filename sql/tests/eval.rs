//! Evaluation of compiled expressions: SQL null semantics, three-valued logic, CASE, CAST, IN, BETWEEN,
//! division by zero, integer overflow and the built-in functions. Expressions are compiled by the planner
//! from a job over a table of one column per type, so what is tested is what a job runs.

use sql::{DataType, Function, FunctionKind, NoUdfs, ScalarHost, Value, plan_job};

const TABLE: &str = "CREATE TABLE t (k TEXT NOT NULL, a BIGINT, b DOUBLE, s TEXT, f BOOLEAN, g BOOLEAN, at TIMESTAMP,
    WATERMARK FOR at AS at) WITH ('connector' = 'file', 'path' = 'p', 'format' = 'json');\n";

/// The input row: `k`, `a`, `b`, `s`, `f`, `g`, `at`.
fn row(a: Value, b: Value, s: Value, f: Value, g: Value) -> Vec<Value> {
    vec![
        Value::Text("key".into()),
        a,
        b,
        s,
        f,
        g,
        Value::Timestamp(1_700_000_000_000),
    ]
}

fn nulls() -> Vec<Value> {
    row(Value::Null, Value::Null, Value::Null, Value::Null, Value::Null)
}

struct Doubler;

impl ScalarHost for Doubler {
    fn call(&self, function: usize, args: &[Value]) -> Value {
        match (function, args) {
            (0, [Value::Int(i)]) => Value::Int(i * 2),
            _ => Value::Null,
        }
    }
}

/// `expr` compiled over the input row (as an aggregate's argument) and evaluated on `r`.
fn eval_on(expr: &str, r: &[Value]) -> Value {
    let functions = [Function {
        name: "twice".into(),
        kind: FunctionKind::Scalar,
        args: vec![DataType::BigInt],
        returns: DataType::BigInt,
        nullable: true,
    }];
    let text = format!("{TABLE}SELECT k, LAST_VALUE({expr}) AS x FROM t GROUP BY tumble(INTERVAL '1' SECOND), k;");
    let job = plan_job(&text, &functions).unwrap_or_else(|e| panic!("{expr}: {e}"));
    job.query.aggregates[0].args[0].eval(r, &Doubler)
}

fn eval(expr: &str) -> Value {
    eval_on(expr, &nulls())
}

fn int(i: i64) -> Value {
    Value::Int(i)
}

fn float(f: f64) -> Value {
    Value::Float(f)
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn boolean(b: bool) -> Value {
    Value::Bool(b)
}

#[test]
fn and_or_not_are_three_valued() {
    let t = Value::Bool(true);
    let f = Value::Bool(false);
    let n = Value::Null;
    for (x, y, and, or) in [
        (&t, &t, &t, &t),
        (&t, &f, &f, &t),
        (&t, &n, &n, &t),
        (&f, &f, &f, &f),
        (&f, &n, &f, &n),
        (&n, &n, &n, &n),
        (&n, &f, &f, &n),
        (&n, &t, &n, &t),
    ] {
        let r = row(Value::Null, Value::Null, Value::Null, x.clone(), y.clone());
        assert_eq!(eval_on("f AND g", &r), *and, "{x:?} AND {y:?}");
        assert_eq!(eval_on("f OR g", &r), *or, "{x:?} OR {y:?}");
    }
    assert_eq!(eval("NOT f"), Value::Null);
    assert_eq!(eval("NOT (1 = 2)"), boolean(true));
}

#[test]
fn null_propagates_through_operators_and_comparisons() {
    for expr in [
        "a + 1", "a * b", "-a", "a = 1", "a <> 1", "s = 'x'", "b < 2.5", "UPPER(s)", "s || 'x'", "ABS(a)",
    ] {
        assert_eq!(eval(expr), Value::Null, "{expr}");
    }
    assert_eq!(eval("a IS NULL"), boolean(true));
    assert_eq!(eval("a IS NOT NULL"), boolean(false));
    assert_eq!(eval("NULL IS NULL"), boolean(true));
}

#[test]
fn division_and_remainder_by_zero_are_null() {
    assert_eq!(eval("7 / 0"), Value::Null);
    assert_eq!(eval("7 % 0"), Value::Null);
    assert_eq!(eval("7.5 / 0.0"), Value::Null);
    assert_eq!(eval("7.5 % 0"), Value::Null);
    assert_eq!(eval("0.0 / 0"), Value::Null);
}

#[test]
fn integer_arithmetic_truncates_and_never_overflows() {
    assert_eq!(eval("7 / 2"), int(3));
    assert_eq!(eval("-7 / 2"), int(-3));
    assert_eq!(eval("7 % -2"), int(1));
    assert_eq!(eval("-7 % 2"), int(-1));
    assert_eq!(eval("7 / 2.0"), float(3.5));
    assert_eq!(eval("9223372036854775807 + 1"), Value::Null);
    assert_eq!(eval("-9223372036854775807 - 2"), Value::Null);
    assert_eq!(eval("4611686018427387904 * 2"), Value::Null);
    let min = row(int(i64::MIN), Value::Null, Value::Null, Value::Null, Value::Null);
    assert_eq!(eval_on("a / -1", &min), Value::Null);
    assert_eq!(eval_on("a % -1", &min), Value::Null);
    assert_eq!(eval_on("-a", &min), Value::Null);
    assert_eq!(eval_on("ABS(a)", &min), Value::Null);
    assert_eq!(
        eval("1e308 * 10"),
        float(f64::INFINITY),
        "floats follow IEEE 754; JSON writes this as null"
    );
}

#[test]
fn mixed_numbers_compare_as_doubles() {
    let r = row(int(3), float(3.0), Value::Null, Value::Null, Value::Null);
    assert_eq!(eval_on("a = b", &r), boolean(true));
    assert_eq!(eval_on("a < b + 0.5", &r), boolean(true));
    assert_eq!(eval("0.0 = -0.0"), boolean(true));
}

#[test]
fn in_lists_follow_sql_null_rules() {
    assert_eq!(eval("1 IN (1, NULL)"), boolean(true));
    assert_eq!(eval("2 IN (1, NULL)"), Value::Null);
    assert_eq!(eval("2 NOT IN (1, NULL)"), Value::Null);
    assert_eq!(eval("2 NOT IN (1, 3)"), boolean(true));
    assert_eq!(eval("a IN (1, 2)"), Value::Null);
    assert_eq!(eval("'b' IN ('a', 'b')"), boolean(true));
    assert_eq!(eval("2 IN (1.5, 2.0)"), boolean(true));
}

#[test]
fn between_is_inclusive_and_three_valued() {
    assert_eq!(eval("5 BETWEEN 5 AND 10"), boolean(true));
    assert_eq!(eval("10 BETWEEN 5 AND 10"), boolean(true));
    assert_eq!(eval("11 BETWEEN 5 AND 10"), boolean(false));
    assert_eq!(eval("11 NOT BETWEEN 5 AND 10"), boolean(true));
    assert_eq!(eval("a BETWEEN 5 AND 10"), Value::Null);
    assert_eq!(
        eval("11 BETWEEN a AND 10"),
        boolean(false),
        "above the known bound: false whatever the other"
    );
    assert_eq!(eval("7 BETWEEN a AND 10"), Value::Null);
    assert_eq!(eval("-60.0 BETWEEN -60 AND 150"), boolean(true));
}

#[test]
fn case_takes_the_first_true_branch_and_null_matches_nothing() {
    assert_eq!(eval("CASE WHEN f THEN 1 WHEN 1 = 1 THEN 2 ELSE 3 END"), int(2));
    assert_eq!(eval("CASE WHEN f THEN 1 END"), Value::Null);
    assert_eq!(eval("CASE a WHEN NULL THEN 'null' ELSE 'other' END"), text("other"));
    assert_eq!(eval("CASE 2 WHEN 1 THEN 'one' WHEN 2 THEN 'two' END"), text("two"));
    assert_eq!(
        eval("CASE WHEN 1 = 1 THEN 1 ELSE 2.5 END"),
        float(1.0),
        "branches are unified to DOUBLE"
    );
}

#[test]
fn casts_convert_or_give_null() {
    assert_eq!(eval("CAST('12' AS BIGINT)"), int(12));
    assert_eq!(eval("CAST(' 12 ' AS INT)"), int(12));
    assert_eq!(eval("CAST('x' AS BIGINT)"), Value::Null);
    assert_eq!(eval("CAST(3.9 AS BIGINT)"), int(3));
    assert_eq!(eval("CAST(-3.9 AS BIGINT)"), int(-3));
    assert_eq!(eval("CAST(1e300 AS BIGINT)"), Value::Null);
    assert_eq!(eval("CAST(TRUE AS BIGINT)"), int(1));
    assert_eq!(eval("CAST('true' AS BOOLEAN)"), boolean(true));
    assert_eq!(eval("CAST(0 AS BOOLEAN)"), boolean(false));
    assert_eq!(eval("CAST(2.5 AS TEXT)"), text("2.5"));
    assert_eq!(eval("CAST(7 AS DOUBLE)"), float(7.0));
    assert_eq!(
        eval("CAST('2024-11-03T12:56:14.123Z' AS TIMESTAMP)"),
        Value::Timestamp(1_730_638_574_123)
    );
    assert_eq!(eval("CAST(at AS BIGINT)"), int(1_700_000_000_000));
    assert_eq!(eval("CAST(at AS TEXT)"), text("2023-11-14T22:13:20Z"));
    assert_eq!(eval("CAST(0 AS TIMESTAMP)"), Value::Timestamp(0));
    assert_eq!(eval("CAST(NULL AS TEXT)"), Value::Null);
    assert_eq!(eval("CAST('1e400' AS DOUBLE)"), Value::Null);
}

#[test]
fn built_in_functions() {
    assert_eq!(eval("COALESCE(a, b, 3)"), float(3.0));
    assert_eq!(eval("COALESCE(s, 'none')"), text("none"));
    assert_eq!(eval("COALESCE(a, NULL)"), Value::Null);
    assert_eq!(eval("ABS(-2.5)"), float(2.5));
    assert_eq!(eval("ABS(-2)"), int(2));
    assert_eq!(eval("ROUND(2.5)"), float(3.0));
    assert_eq!(eval("ROUND(-2.5)"), float(-3.0));
    assert_eq!(eval("ROUND(1.2345, 2)"), float(1.23));
    assert_eq!(eval("ROUND(1234.5, -2)"), float(1200.0));
    assert_eq!(eval("ROUND(1250, -2)"), int(1300));
    assert_eq!(eval("ROUND(-1250, -2)"), int(-1300));
    assert_eq!(eval("ROUND(1249, -2)"), int(1200));
    assert_eq!(eval("ROUND(7, 3)"), int(7));
    assert_eq!(eval("ROUND(9223372036854775807, -1)"), Value::Null);
    assert_eq!(eval("ROUND(5, -40)"), int(0));
    assert_eq!(eval("ROUND(1.5, 400)"), float(1.5));
}

#[test]
fn round_of_a_double_rounds_the_decimal_it_is_written_as() {
    // The DOUBLEs nearest these lie just below the half: the decimal as written rounds up (as Flink does).
    assert_eq!(eval("ROUND(2.675, 2)"), float(2.68));
    assert_eq!(eval("ROUND(1.005, 2)"), float(1.01));
    assert_eq!(eval("ROUND(4.9 - 0.685, 2)"), float(4.22));
    assert_eq!(eval("ROUND(-2.675, 2)"), float(-2.68));
    // Carries, magnitudes, tens, and what stays.
    assert_eq!(eval("ROUND(9.995, 2)"), float(10.0));
    assert_eq!(eval("ROUND(0.005, 2)"), float(0.01));
    assert_eq!(eval("ROUND(0.004, 2)"), float(0.0));
    assert_eq!(eval("ROUND(15.0, -1)"), float(20.0));
    assert_eq!(eval("ROUND(149.9, -2)"), float(100.0));
    assert_eq!(eval("ROUND(1e300, -400)"), float(0.0));
    assert_eq!(eval("ROUND(1.25e-7, 7)"), float(1e-7));
    assert_eq!(
        eval("ROUND(123456789012345680000.0, 2)"),
        float(123456789012345680000.0)
    );
    assert_eq!(eval("ROUND(0.1 + 0.2, 15)"), float(0.3));
    assert_eq!(eval("ROUND(1e308 * 10, 2)"), float(f64::INFINITY));
    assert_eq!(eval("LOWER('AbC')"), text("abc"));
    assert_eq!(eval("UPPER('straße')"), text("STRASSE"));
    assert_eq!(eval("CHAR_LENGTH('h\u{e9}llo')"), int(5));
    assert_eq!(eval("CHARACTER_LENGTH('')"), int(0));
    assert_eq!(eval("'a' || 'b' || UPPER('c')"), text("abC"));
    assert_eq!(
        eval("TO_TIMESTAMP_LTZ(1700000000, 0)"),
        Value::Timestamp(1_700_000_000_000)
    );
    assert_eq!(
        eval("TO_TIMESTAMP_LTZ(1700000000123, 3)"),
        Value::Timestamp(1_700_000_000_123)
    );
    assert_eq!(eval("TO_TIMESTAMP_LTZ(9223372036854775807, 0)"), Value::Null);
    assert_eq!(eval("twice(21)"), int(42), "scalar UDFs run through the host");
    assert_eq!(eval("TWICE(a)"), Value::Null);
}

#[test]
fn timestamps_take_intervals_and_subtract_to_milliseconds() {
    assert_eq!(eval("at - INTERVAL '1' SECOND"), Value::Timestamp(1_699_999_999_000));
    assert_eq!(eval("at + INTERVAL '1 minute'"), Value::Timestamp(1_700_000_060_000));
    assert_eq!(eval("at - TIMESTAMP '2023-11-14 22:13:19'"), int(1_000));
    assert_eq!(eval("at > '2023-01-01 00:00:00'"), boolean(true));
}

#[test]
fn evaluation_of_a_slot_beyond_the_row_is_null() {
    let e = sql::Expr::slot(99, DataType::BigInt, true);
    assert_eq!(e.eval(&[], &NoUdfs), Value::Null);
    assert_eq!(e.columns(), [99]);
}
