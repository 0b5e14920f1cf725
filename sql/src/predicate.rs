//! Boolean expressions compiled for the per-record path: the shapes CHECKs, `WHERE` and `FILTER` mostly take (a
//! column compared with a constant, `BETWEEN` two constants, `IN` a list of texts, `IS [NOT] NULL`, and `AND`,
//! `OR`, `NOT` of those) become direct tests on the row's slot, without walking an expression tree or copying a
//! value; any other shape is evaluated as the [`Expr`] it is. A [`Predicate`] gives what its expression gives, under
//! SQL's three-valued logic (the unit tests hold every shape to [`Expr::eval`]).

use compact_str::CompactString;

use crate::expr::{CmpOp, Expr, ExprKind};
use crate::function::ScalarHost;
use crate::value::Value;

/// A compiled boolean expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Predicate {
    /// `slot op literal` over BIGINTs or TIMESTAMPs (the literal is of the slot's type).
    Int {
        /// The slot.
        slot: usize,
        /// The comparison.
        op: CmpOp,
        /// The literal.
        lit: i64,
        /// Whether the values are TIMESTAMPs.
        time: bool,
    },
    /// `slot op literal` over DOUBLEs (the literal is not NaN).
    Float {
        /// The slot.
        slot: usize,
        /// The comparison.
        op: CmpOp,
        /// The literal.
        lit: f64,
    },
    /// `slot [NOT] BETWEEN low AND high` over DOUBLEs (the bounds are not NaN).
    FloatBetween {
        /// The slot.
        slot: usize,
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// `slot [NOT] IN (texts)`; also `slot = text` and `slot <> text`.
    TextIn {
        /// The slot.
        slot: usize,
        /// The candidates.
        list: Vec<CompactString>,
        /// `NOT IN` (or `<>`).
        negated: bool,
    },
    /// `slot IS [NOT] NULL`.
    IsNull {
        /// The slot.
        slot: usize,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `NOT t`.
    Not(Box<Predicate>),
    /// `a AND b`.
    And(Box<Predicate>, Box<Predicate>),
    /// `a OR b`.
    Or(Box<Predicate>, Box<Predicate>),
    /// Any other boolean expression, evaluated as it is.
    Expr(Expr),
}

/// SQL's three truth values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truth {
    /// TRUE.
    True,
    /// FALSE.
    False,
    /// NULL (unknown).
    Unknown,
}

impl Truth {
    fn of(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }
}

impl Predicate {
    /// `e` (a BOOLEAN expression, its constants folded) compiled.
    pub fn compile(e: &Expr) -> Predicate {
        use ExprKind::{Literal, Slot};
        let shape = match &e.kind {
            ExprKind::Compare(op, a, b) => match (&a.kind, &b.kind) {
                (Slot(s), Literal(v)) => compare(*s, *op, v),
                (Literal(v), Slot(s)) => compare(*s, flip(*op), v),
                _ => None,
            },
            ExprKind::Between {
                expr,
                low,
                high,
                negated,
            } => match (&expr.kind, &low.kind, &high.kind) {
                (Slot(s), Literal(Value::Float(lo)), Literal(Value::Float(hi))) if !lo.is_nan() && !hi.is_nan() => {
                    Some(Predicate::FloatBetween {
                        slot: *s,
                        low: *lo,
                        high: *hi,
                        negated: *negated,
                    })
                }
                _ => None,
            },
            ExprKind::InList { expr, list, negated } => match &expr.kind {
                Slot(s) => list
                    .iter()
                    .map(|c| match &c.kind {
                        Literal(Value::Text(t)) => Some(t.clone()),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()
                    .map(|list| Predicate::TextIn {
                        slot: *s,
                        list,
                        negated: *negated,
                    }),
                _ => None,
            },
            ExprKind::IsNull { expr, negated } => expr.as_slot().map(|slot| Predicate::IsNull {
                slot,
                negated: *negated,
            }),
            ExprKind::Not(a) => Some(Predicate::Not(Box::new(Predicate::compile(a)))),
            ExprKind::And(a, b) => Some(Predicate::And(
                Box::new(Predicate::compile(a)),
                Box::new(Predicate::compile(b)),
            )),
            ExprKind::Or(a, b) => Some(Predicate::Or(
                Box::new(Predicate::compile(a)),
                Box::new(Predicate::compile(b)),
            )),
            _ => None,
        };
        shape.unwrap_or_else(|| Predicate::Expr(e.clone()))
    }

    /// Its truth over `row` (scalar UDFs called through `host`).
    pub fn truth(&self, row: &[Value], host: &dyn ScalarHost) -> Truth {
        let at = |slot: &usize| row.get(*slot).unwrap_or(&Value::Null);
        match self {
            Predicate::Int { slot, op, lit, time } => match (at(slot), time) {
                (Value::Int(x), false) | (Value::Timestamp(x), true) => Truth::of(holds(*op, x.cmp(lit))),
                (Value::Null, _) => Truth::Unknown,
                // Another kind (the planner never makes one): `Value`'s order, as the expression compares.
                (other, _) => {
                    let lit = if *time {
                        Value::Timestamp(*lit)
                    } else {
                        Value::Int(*lit)
                    };
                    Truth::of(holds(*op, other.cmp(&lit)))
                }
            },
            Predicate::Float { slot, op, lit } => match at(slot) {
                // NaN orders above every number (as `Value` orders DOUBLEs).
                Value::Float(x) if x.is_nan() => Truth::of(holds(*op, std::cmp::Ordering::Greater)),
                Value::Float(x) => Truth::of(holds(*op, x.partial_cmp(lit).expect("neither is NaN"))),
                Value::Null => Truth::Unknown,
                other => Truth::of(holds(*op, other.cmp(&Value::Float(*lit)))),
            },
            Predicate::FloatBetween {
                slot,
                low,
                high,
                negated,
            } => match at(slot) {
                // A NaN is above `high` (and comparisons with NaN are false).
                Value::Float(x) => Truth::of((*x >= *low && *x <= *high) != *negated),
                Value::Null => Truth::Unknown,
                other => {
                    let inside = other >= &Value::Float(*low) && other <= &Value::Float(*high);
                    Truth::of(inside != *negated)
                }
            },
            Predicate::TextIn { slot, list, negated } => match at(slot) {
                Value::Text(t) => Truth::of(list.iter().any(|c| c.as_bytes() == t.as_bytes()) != *negated),
                Value::Null => Truth::Unknown,
                // Text equals no other kind.
                _ => Truth::of(*negated),
            },
            Predicate::IsNull { slot, negated } => Truth::of(at(slot).is_null() != *negated),
            Predicate::Not(t) => t.truth(row, host).not(),
            Predicate::And(a, b) => match a.truth(row, host) {
                Truth::False => Truth::False,
                left => match (left, b.truth(row, host)) {
                    (_, Truth::False) => Truth::False,
                    (Truth::True, Truth::True) => Truth::True,
                    _ => Truth::Unknown,
                },
            },
            Predicate::Or(a, b) => match a.truth(row, host) {
                Truth::True => Truth::True,
                left => match (left, b.truth(row, host)) {
                    (_, Truth::True) => Truth::True,
                    (Truth::False, Truth::False) => Truth::False,
                    _ => Truth::Unknown,
                },
            },
            Predicate::Expr(e) => match e.eval(row, host) {
                Value::Bool(b) => Truth::of(b),
                _ => Truth::Unknown,
            },
        }
    }

    /// Whether it is TRUE over `row` (a WHERE or FILTER keeps the row only then).
    #[inline]
    pub fn is_true(&self, row: &[Value], host: &dyn ScalarHost) -> bool {
        self.truth(row, host) == Truth::True
    }

    /// Whether it is FALSE over `row` (a CHECK fails only then).
    #[inline]
    pub fn is_false(&self, row: &[Value], host: &dyn ScalarHost) -> bool {
        self.truth(row, host) == Truth::False
    }
}

/// The test of `slot op v` for a literal `v` of the slot's type, if it has a compiled shape.
fn compare(slot: usize, op: CmpOp, v: &Value) -> Option<Predicate> {
    match v {
        Value::Int(lit) => Some(Predicate::Int {
            slot,
            op,
            lit: *lit,
            time: false,
        }),
        Value::Timestamp(lit) => Some(Predicate::Int {
            slot,
            op,
            lit: *lit,
            time: true,
        }),
        Value::Float(lit) if !lit.is_nan() => Some(Predicate::Float { slot, op, lit: *lit }),
        Value::Text(t) if matches!(op, CmpOp::Eq | CmpOp::NotEq) => Some(Predicate::TextIn {
            slot,
            list: vec![t.clone()],
            negated: op == CmpOp::NotEq,
        }),
        _ => None,
    }
}

/// `a op b` as `b op' a`.
fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::LtEq => CmpOp::GtEq,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::GtEq => CmpOp::LtEq,
        other => other,
    }
}

fn holds(op: CmpOp, ord: std::cmp::Ordering) -> bool {
    match op {
        CmpOp::Eq => ord.is_eq(),
        CmpOp::NotEq => ord.is_ne(),
        CmpOp::Lt => ord.is_lt(),
        CmpOp::LtEq => ord.is_le(),
        CmpOp::Gt => ord.is_gt(),
        CmpOp::GtEq => ord.is_ge(),
    }
}

#[cfg(test)]
mod tests;
