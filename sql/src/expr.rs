//! Compiled scalar expressions: typed, over row slots (no name is looked up at run time), evaluated with SQL's
//! null semantics. Evaluation never panics and never allocates for numeric and boolean work; a slot beyond the
//! row reads as NULL. Rules (see `docs/SQL.md`, "Null semantics"): NULL in, NULL out; AND/OR are three-valued;
//! division or remainder by zero and integer overflow give NULL; a cast that cannot convert gives NULL.

use compact_str::{CompactString, ToCompactString};
use serde::{Deserialize, Serialize};

use crate::function::ScalarHost;
use crate::value::{DataType, Value, parse_timestamp};

/// A compiled expression with its result type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    /// What it computes.
    pub kind: ExprKind,
    /// The type of a non-NULL result.
    pub ty: DataType,
    /// Whether the result can be NULL.
    pub nullable: bool,
}

/// The operation of an [`Expr`]. Operands already have the types the operation needs (the planner casts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ExprKind {
    /// A constant.
    Literal(Value),
    /// The value of a row slot (input row: a column; group row: a key, a window bound or an aggregate).
    Slot(usize),
    /// `NOT x`.
    Not(Box<Expr>),
    /// `-x`.
    Neg(Box<Expr>),
    /// `a + b`, `a - b`, `a * b`, `a / b`, `a % b` over two BIGINTs, two DOUBLEs, a TIMESTAMP and a BIGINT of
    /// milliseconds (`+`, `-`), or two TIMESTAMPs (`-`, milliseconds).
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// A comparison of two values of one type.
    Compare(CmpOp, Box<Expr>, Box<Expr>),
    /// `a AND b`.
    And(Box<Expr>, Box<Expr>),
    /// `a OR b`.
    Or(Box<Expr>, Box<Expr>),
    /// `x IS NULL` (`negated`: `IS NOT NULL`).
    IsNull {
        /// The operand.
        expr: Box<Expr>,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `x [NOT] IN (a, b, ...)`.
    InList {
        /// The operand.
        expr: Box<Expr>,
        /// The candidates, of the operand's type.
        list: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `x [NOT] BETWEEN low AND high` (both bounds inclusive).
    Between {
        /// The operand.
        expr: Box<Expr>,
        /// Lower bound.
        low: Box<Expr>,
        /// Upper bound.
        high: Box<Expr>,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`. With an operand a branch is taken when its value equals
    /// the operand's (NULL equals nothing); without one when its condition is TRUE.
    Case {
        /// The simple form's operand.
        operand: Option<Box<Expr>>,
        /// `(when, then)` pairs, in order.
        branches: Vec<(Expr, Expr)>,
        /// `ELSE` (none: NULL).
        otherwise: Option<Box<Expr>>,
    },
    /// `CAST(x AS ty)` to this expression's type.
    Cast(Box<Expr>),
    /// `COALESCE(a, b, ...)`: the first non-NULL.
    Coalesce(Vec<Expr>),
    /// A built-in function.
    Call(Builtin, Vec<Expr>),
    /// A scalar UDF: `function` indexes the job's registry; evaluated through [`ScalarHost`].
    Udf {
        /// Index in [`crate::plan::Job::functions`].
        function: usize,
        /// Arguments, of the declared types.
        args: Vec<Expr>,
    },
}

/// Arithmetic operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (BIGINT: truncating division)
    Div,
    /// `%` (sign of the dividend)
    Rem,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`, `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

/// Built-in scalar functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Builtin {
    /// `ABS(x)` (BIGINT or DOUBLE; `ABS` of the smallest BIGINT is NULL).
    Abs,
    /// `ROUND(x[, n])`: half away from zero to `n` decimals (default 0; negative rounds to tens, hundreds...).
    Round,
    /// `LOWER(s)`.
    Lower,
    /// `UPPER(s)`.
    Upper,
    /// `CHAR_LENGTH(s)`, `CHARACTER_LENGTH(s)`: characters, not bytes.
    CharLength,
    /// `a || b`: text concatenation.
    Concat,
    /// `TO_TIMESTAMP_LTZ(x, 3)`: BIGINT epoch milliseconds to TIMESTAMP.
    EpochMillis,
    /// `TO_TIMESTAMP_LTZ(x, 0)`: BIGINT epoch seconds to TIMESTAMP (NULL when out of range).
    EpochSeconds,
}

impl Expr {
    /// A constant of type `ty`.
    pub fn literal(value: Value, ty: DataType) -> Expr {
        let nullable = value.is_null();
        Expr {
            kind: ExprKind::Literal(value),
            ty,
            nullable,
        }
    }

    /// The value of `slot`.
    pub fn slot(slot: usize, ty: DataType, nullable: bool) -> Expr {
        Expr {
            kind: ExprKind::Slot(slot),
            ty,
            nullable,
        }
    }

    /// The slot this expression reads when it is nothing but a slot.
    pub fn as_slot(&self) -> Option<usize> {
        match self.kind {
            ExprKind::Slot(slot) => Some(slot),
            _ => None,
        }
    }

    /// Every slot the expression reads, sorted, without repeats (the decoder skips fields nobody reads).
    pub fn columns(&self) -> Vec<usize> {
        let mut out = Vec::new();
        self.visit_slots(&mut |slot| out.push(slot));
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Calls `f` with every slot the expression reads (with repeats).
    pub fn visit_slots(&self, f: &mut dyn FnMut(usize)) {
        self.walk(&mut |e| {
            if let ExprKind::Slot(slot) = e.kind {
                f(slot);
            }
        });
    }

    /// The expression with every part that reads no slot and calls no UDF evaluated once, here (`-60` cast to
    /// DOUBLE becomes the literal `-60.0`): what is left to do per row is what depends on the row.
    pub fn fold_constants(self) -> Expr {
        let constant = {
            let mut reads = false;
            self.walk(&mut |e| reads |= matches!(e.kind, ExprKind::Slot(_) | ExprKind::Udf { .. }));
            !reads
        };
        if constant {
            if matches!(self.kind, ExprKind::Literal(_)) {
                return self;
            }
            let value = self.eval(&[], &crate::function::NoUdfs);
            return Expr {
                kind: ExprKind::Literal(value),
                ..self
            };
        }
        let fold = |e: Box<Expr>| Box::new(e.fold_constants());
        let all = |v: Vec<Expr>| v.into_iter().map(Expr::fold_constants).collect::<Vec<_>>();
        let kind = match self.kind {
            k @ (ExprKind::Literal(_) | ExprKind::Slot(_)) => k,
            ExprKind::Not(e) => ExprKind::Not(fold(e)),
            ExprKind::Neg(e) => ExprKind::Neg(fold(e)),
            ExprKind::Cast(e) => ExprKind::Cast(fold(e)),
            ExprKind::IsNull { expr, negated } => ExprKind::IsNull {
                expr: fold(expr),
                negated,
            },
            ExprKind::Arith(op, a, b) => ExprKind::Arith(op, fold(a), fold(b)),
            ExprKind::Compare(op, a, b) => ExprKind::Compare(op, fold(a), fold(b)),
            ExprKind::And(a, b) => ExprKind::And(fold(a), fold(b)),
            ExprKind::Or(a, b) => ExprKind::Or(fold(a), fold(b)),
            ExprKind::InList { expr, list, negated } => ExprKind::InList {
                expr: fold(expr),
                list: all(list),
                negated,
            },
            ExprKind::Between {
                expr,
                low,
                high,
                negated,
            } => ExprKind::Between {
                expr: fold(expr),
                low: fold(low),
                high: fold(high),
                negated,
            },
            ExprKind::Case {
                operand,
                branches,
                otherwise,
            } => ExprKind::Case {
                operand: operand.map(fold),
                branches: branches
                    .into_iter()
                    .map(|(w, t)| (w.fold_constants(), t.fold_constants()))
                    .collect(),
                otherwise: otherwise.map(fold),
            },
            ExprKind::Coalesce(args) => ExprKind::Coalesce(all(args)),
            ExprKind::Call(f, args) => ExprKind::Call(f, all(args)),
            ExprKind::Udf { function, args } => ExprKind::Udf {
                function,
                args: all(args),
            },
        };
        Expr { kind, ..self }
    }

    /// The value over `row` when the expression is a slot or a literal, borrowed; else computed.
    #[inline]
    fn operand<'r>(&'r self, row: &'r [Value], host: &dyn ScalarHost) -> std::borrow::Cow<'r, Value> {
        use std::borrow::Cow;
        match &self.kind {
            ExprKind::Slot(slot) => Cow::Borrowed(row.get(*slot).unwrap_or(&Value::Null)),
            ExprKind::Literal(v) => Cow::Borrowed(v),
            _ => Cow::Owned(self.eval(row, host)),
        }
    }

    /// Whether the expression calls a scalar UDF anywhere.
    pub fn calls_udf(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| found |= matches!(e.kind, ExprKind::Udf { .. }));
        found
    }

    /// Calls `f` with this expression and every one inside it, parents first.
    fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match &self.kind {
            ExprKind::Literal(_) | ExprKind::Slot(_) => {}
            ExprKind::Not(e) | ExprKind::Neg(e) | ExprKind::Cast(e) | ExprKind::IsNull { expr: e, .. } => e.walk(f),
            ExprKind::Arith(_, a, b) | ExprKind::Compare(_, a, b) | ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            ExprKind::InList { expr, list, .. } => {
                expr.walk(f);
                list.iter().for_each(|e| e.walk(f));
            }
            ExprKind::Between { expr, low, high, .. } => {
                expr.walk(f);
                low.walk(f);
                high.walk(f);
            }
            ExprKind::Case {
                operand,
                branches,
                otherwise,
            } => {
                if let Some(e) = operand {
                    e.walk(f);
                }
                for (when, then) in branches {
                    when.walk(f);
                    then.walk(f);
                }
                if let Some(e) = otherwise {
                    e.walk(f);
                }
            }
            ExprKind::Coalesce(args) | ExprKind::Call(_, args) | ExprKind::Udf { args, .. } => {
                args.iter().for_each(|e| e.walk(f))
            }
        }
    }

    /// The value over `row`. Scalar UDFs are called through `host`.
    pub fn eval(&self, row: &[Value], host: &dyn ScalarHost) -> Value {
        match &self.kind {
            ExprKind::Literal(v) => v.clone(),
            ExprKind::Slot(slot) => row.get(*slot).cloned().unwrap_or(Value::Null),
            ExprKind::Not(e) => match e.eval(row, host) {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            },
            ExprKind::Neg(e) => match e.eval(row, host) {
                Value::Int(i) => i.checked_neg().map_or(Value::Null, Value::Int),
                Value::Float(f) => Value::Float(-f),
                _ => Value::Null,
            },
            ExprKind::Arith(op, a, b) => arith(*op, a.eval(row, host), b.eval(row, host)),
            ExprKind::Compare(op, a, b) => compare(*op, &a.operand(row, host), &b.operand(row, host)),
            ExprKind::And(a, b) => match a.eval(row, host) {
                Value::Bool(false) => Value::Bool(false),
                left => match (left, b.eval(row, host)) {
                    (_, Value::Bool(false)) => Value::Bool(false),
                    (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                    _ => Value::Null,
                },
            },
            ExprKind::Or(a, b) => match a.eval(row, host) {
                Value::Bool(true) => Value::Bool(true),
                left => match (left, b.eval(row, host)) {
                    (_, Value::Bool(true)) => Value::Bool(true),
                    (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
                    _ => Value::Null,
                },
            },
            ExprKind::IsNull { expr, negated } => Value::Bool(expr.operand(row, host).is_null() != *negated),
            ExprKind::InList { expr, list, negated } => {
                let x = expr.operand(row, host);
                if x.is_null() {
                    return Value::Null;
                }
                let mut saw_null = false;
                for candidate in list {
                    match &*candidate.operand(row, host) {
                        Value::Null => saw_null = true,
                        v if *v == *x => return Value::Bool(!negated),
                        _ => {}
                    }
                }
                if saw_null { Value::Null } else { Value::Bool(*negated) }
            }
            ExprKind::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let x = expr.operand(row, host);
                let above = compare(CmpOp::GtEq, &x, &low.operand(row, host));
                let below = compare(CmpOp::LtEq, &x, &high.operand(row, host));
                let inside = match (above, below) {
                    (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
                    (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                    _ => Value::Null,
                };
                match inside {
                    Value::Bool(b) => Value::Bool(b != *negated),
                    other => other,
                }
            }
            ExprKind::Case {
                operand,
                branches,
                otherwise,
            } => {
                let subject = operand.as_ref().map(|e| e.operand(row, host));
                for (when, then) in branches {
                    let taken = match &subject {
                        Some(x) => matches!(compare(CmpOp::Eq, x, &when.operand(row, host)), Value::Bool(true)),
                        None => matches!(when.eval(row, host), Value::Bool(true)),
                    };
                    if taken {
                        return then.eval(row, host);
                    }
                }
                otherwise.as_ref().map_or(Value::Null, |e| e.eval(row, host))
            }
            ExprKind::Cast(e) => cast(e.eval(row, host), self.ty),
            ExprKind::Coalesce(args) => {
                for arg in args {
                    let v = arg.eval(row, host);
                    if !v.is_null() {
                        return v;
                    }
                }
                Value::Null
            }
            ExprKind::Call(builtin, args) => call(*builtin, args, row, host),
            ExprKind::Udf { function, args } => {
                let values: Vec<Value> = args.iter().map(|a| a.eval(row, host)).collect();
                host.call(*function, &values)
            }
        }
    }

    /// Whether the value over `row` is TRUE (a WHERE, FILTER or HAVING keeps the row only then).
    pub fn is_true(&self, row: &[Value], host: &dyn ScalarHost) -> bool {
        matches!(self.eval(row, host), Value::Bool(true))
    }
}

fn arith(op: ArithOp, a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => match op {
            ArithOp::Add => x.checked_add(y),
            ArithOp::Sub => x.checked_sub(y),
            ArithOp::Mul => x.checked_mul(y),
            ArithOp::Div => x.checked_div(y),
            ArithOp::Rem => x.checked_rem(y),
        }
        .map_or(Value::Null, Value::Int),
        (Value::Float(x), Value::Float(y)) => match op {
            ArithOp::Add => Value::Float(x + y),
            ArithOp::Sub => Value::Float(x - y),
            ArithOp::Mul => Value::Float(x * y),
            ArithOp::Div if y == 0.0 => Value::Null,
            ArithOp::Div => Value::Float(x / y),
            ArithOp::Rem if y == 0.0 => Value::Null,
            ArithOp::Rem => Value::Float(x % y),
        },
        (Value::Timestamp(t), Value::Int(ms)) => match op {
            ArithOp::Add => t.checked_add(ms),
            ArithOp::Sub => t.checked_sub(ms),
            _ => None,
        }
        .map_or(Value::Null, Value::Timestamp),
        (Value::Int(ms), Value::Timestamp(t)) if op == ArithOp::Add => {
            t.checked_add(ms).map_or(Value::Null, Value::Timestamp)
        }
        (Value::Timestamp(x), Value::Timestamp(y)) if op == ArithOp::Sub => {
            x.checked_sub(y).map_or(Value::Null, Value::Int)
        }
        _ => Value::Null,
    }
}

#[inline]
fn compare(op: CmpOp, a: &Value, b: &Value) -> Value {
    if a.is_null() || b.is_null() {
        return Value::Null;
    }
    let ord = match (op, a, b) {
        (CmpOp::Eq, ..) => return Value::Bool(a == b),
        (CmpOp::NotEq, ..) => return Value::Bool(a != b),
        (_, Value::Int(x), Value::Int(y)) | (_, Value::Timestamp(x), Value::Timestamp(y)) => x.cmp(y),
        // Ordered floats (no NaN) compare as numbers; the rest as `Value`'s order says (NaN above all).
        (_, Value::Float(x), Value::Float(y)) if !x.is_nan() && !y.is_nan() => {
            x.partial_cmp(y).expect("neither is NaN")
        }
        _ => a.cmp(b),
    };
    Value::Bool(match op {
        CmpOp::Eq => ord.is_eq(),
        CmpOp::NotEq => ord.is_ne(),
        CmpOp::Lt => ord.is_lt(),
        CmpOp::LtEq => ord.is_le(),
        CmpOp::Gt => ord.is_gt(),
        CmpOp::GtEq => ord.is_ge(),
    })
}

/// `CAST(v AS ty)`. DOUBLE to BIGINT truncates toward zero (NULL when out of range or not finite); text is
/// parsed (NULL when it does not parse); BOOLEAN to and from BIGINT is 1/0 (any non-zero is true); TIMESTAMP to
/// and from BIGINT is epoch milliseconds.
pub fn cast(v: Value, ty: DataType) -> Value {
    match (v, ty) {
        (Value::Null, _) => Value::Null,
        (v @ Value::Bool(_), DataType::Boolean)
        | (v @ Value::Int(_), DataType::BigInt)
        | (v @ Value::Float(_), DataType::Double)
        | (v @ Value::Text(_), DataType::Text)
        | (v @ Value::Timestamp(_), DataType::Timestamp) => v,
        (v, DataType::Text) => Value::Text(v.to_compact_string()),
        (Value::Int(i), DataType::Double) => Value::Float(i as f64),
        (Value::Int(i), DataType::Boolean) => Value::Bool(i != 0),
        (Value::Int(i), DataType::Timestamp) => Value::Timestamp(i),
        (Value::Timestamp(i), DataType::BigInt) => Value::Int(i),
        (Value::Float(f), DataType::BigInt) => float_to_int(f).map_or(Value::Null, Value::Int),
        (Value::Float(f), DataType::Boolean) => Value::Bool(f != 0.0),
        (Value::Bool(b), DataType::BigInt) => Value::Int(i64::from(b)),
        (Value::Bool(b), DataType::Double) => Value::Float(if b { 1.0 } else { 0.0 }),
        (Value::Text(s), ty) => parse_text(&s, ty),
        _ => Value::Null,
    }
}

fn float_to_int(f: f64) -> Option<i64> {
    let t = f.trunc();
    // 2^63 is exactly representable; every finite float below it (and at or above -2^63) fits.
    (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0)
        .contains(&t)
        .then_some(t as i64)
}

fn parse_text(s: &str, ty: DataType) -> Value {
    let t = s.trim();
    match ty {
        DataType::BigInt => t.parse::<i64>().map_or(Value::Null, Value::Int),
        DataType::Double => match t.parse::<f64>() {
            Ok(f) if f.is_finite() => Value::Float(f),
            _ => Value::Null,
        },
        DataType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" => Value::Bool(true),
            "false" | "f" | "0" | "no" => Value::Bool(false),
            _ => Value::Null,
        },
        DataType::Timestamp => parse_timestamp(t).map_or(Value::Null, Value::Timestamp),
        DataType::Text => Value::Text(s.into()),
    }
}

fn call(builtin: Builtin, args: &[Expr], row: &[Value], host: &dyn ScalarHost) -> Value {
    let arg = |i: usize| args.get(i).map_or(Value::Null, |e| e.eval(row, host));
    match builtin {
        Builtin::Abs => match arg(0) {
            Value::Int(i) => i.checked_abs().map_or(Value::Null, Value::Int),
            Value::Float(f) => Value::Float(f.abs()),
            _ => Value::Null,
        },
        Builtin::Round => {
            let digits = if args.len() > 1 {
                match arg(1) {
                    Value::Int(n) => n,
                    _ => return Value::Null,
                }
            } else {
                0
            };
            round(arg(0), digits)
        }
        Builtin::Lower => match arg(0) {
            Value::Text(s) => Value::Text(s.to_lowercase()),
            _ => Value::Null,
        },
        Builtin::Upper => match arg(0) {
            Value::Text(s) => Value::Text(s.to_uppercase()),
            _ => Value::Null,
        },
        Builtin::CharLength => match arg(0) {
            Value::Text(s) => Value::Int(s.chars().count() as i64),
            _ => Value::Null,
        },
        Builtin::Concat => match (arg(0), arg(1)) {
            (Value::Text(a), Value::Text(b)) => {
                let mut out = CompactString::with_capacity(a.len() + b.len());
                out.push_str(&a);
                out.push_str(&b);
                Value::Text(out)
            }
            _ => Value::Null,
        },
        Builtin::EpochMillis => match arg(0) {
            Value::Int(ms) => Value::Timestamp(ms),
            _ => Value::Null,
        },
        Builtin::EpochSeconds => match arg(0) {
            Value::Int(s) => s.checked_mul(1000).map_or(Value::Null, Value::Timestamp),
            _ => Value::Null,
        },
    }
}

/// `f` rounded half away from zero to `digits` decimals (tens, hundreds... when negative), as Flink rounds a
/// DOUBLE: the shortest decimal that reads back as `f` is rounded, so `ROUND(2.675, 2)` is 2.68 as written,
/// though the DOUBLE nearest 2.675 lies a little below it. Not finite stays as it is.
fn round_decimal(f: f64, digits: i32) -> f64 {
    if !f.is_finite() || f == 0.0 {
        return f;
    }
    // "4.215e0": the shortest digits that read back as |f|, and the power of ten of the first one.
    let text = format!("{:e}", f.abs());
    let (mantissa, exponent) = text.split_once('e').expect("LowerExp writes an exponent");
    let exponent: i32 = exponent.parse().expect("LowerExp writes an integer exponent");
    // A leading 0 takes a carry out of the first digit (9.99 -> 10.0).
    let mut digits_of: Vec<u8> = std::iter::once(b'0')
        .chain(mantissa.bytes().filter(|b| *b != b'.'))
        .collect();
    let top = exponent + 1; // the power of ten of digits_of[0]
    let keep = top + 1 + digits; // digits from digits_of[0] down to 10^-digits
    if keep <= 0 {
        return 0.0_f64.copysign(f);
    }
    let keep = keep as usize;
    if keep >= digits_of.len() {
        return f;
    }
    let up = digits_of[keep] >= b'5';
    digits_of.truncate(keep);
    if up {
        for d in digits_of.iter_mut().rev() {
            if *d == b'9' {
                *d = b'0';
            } else {
                *d += 1;
                break;
            }
        }
    }
    let text = format!(
        "{}e{}",
        std::str::from_utf8(&digits_of).expect("ASCII digits"),
        top - keep as i32 + 1
    );
    text.parse::<f64>().expect("digits and an exponent parse").copysign(f)
}

/// `ROUND(v, digits)`: half away from zero. A DOUBLE is rounded as the decimal it is written as (see
/// [`round_decimal`]); a BIGINT stays a BIGINT (rounded to tens, hundreds... when `digits` is negative; NULL on
/// overflow).
fn round(v: Value, digits: i64) -> Value {
    match v {
        Value::Float(f) => Value::Float(round_decimal(f, digits.clamp(-400, 400) as i32)),
        Value::Int(i) if digits >= 0 => Value::Int(i),
        Value::Int(i) => {
            if digits < -18 {
                return Value::Int(0);
            }
            let unit = 10i64.pow(digits.unsigned_abs() as u32);
            let rem = i % unit;
            let base = i - rem;
            let up = rem.unsigned_abs() * 2 >= unit.unsigned_abs();
            match (up, i < 0) {
                (false, _) => Value::Int(base),
                (true, false) => base.checked_add(unit).map_or(Value::Null, Value::Int),
                (true, true) => base.checked_sub(unit).map_or(Value::Null, Value::Int),
            }
        }
        _ => Value::Null,
    }
}
