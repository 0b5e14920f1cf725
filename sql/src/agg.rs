//! Aggregate accumulators: one [`Acc`] per (key, window, aggregate), fed row by row, merged when a restored
//! window meets rows that reached it first, finished into a [`Value`]. SQL null semantics: NULL arguments are
//! skipped; COUNT of nothing is 0; every other aggregate of no values is NULL; STDDEV_SAMP/VAR_SAMP of one value
//! is NULL. An `Acc` is 32 bytes (the rare large states are boxed); its serde form is tagged (bincode-safe).
//!
//! - SUM of BIGINT is exact (kept in 128 bits) and NULL when the total does not fit a BIGINT; SUM of DOUBLE and
//!   AVG are a plain sum (AVG = sum / count).
//! - The variance family uses Welford's update and Chan's merge, which stay accurate when the spread is small
//!   next to the mean.
//! - COUNT(DISTINCT) keeps the set of values (exact).
//! - FIRST_VALUE/LAST_VALUE keep the value with the earliest/latest event time. Within one accumulator a tie goes
//!   to the earlier arrival (FIRST) or the later one (LAST); between two merged accumulators a tie goes to the
//!   smaller value (FIRST) or the larger one (LAST), so a merge's result does not depend on its order.
//! - MIN/MAX follow [`Value`]'s order (a NaN is above every number).
//! - An aggregate UDF's accumulator keeps its rows (event time and arguments; a row with a NULL argument is
//!   skipped); [`Acc::udaf_inputs`] hands them to the host sorted by (event time, values), so what the UDF sees
//!   does not depend on arrival order, worker count or restores.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::function::ScalarHost;
use crate::plan::{AggFunc, AggSpec};
use crate::value::{DataType, Value};

/// The running state of one aggregate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Acc {
    /// COUNT(*), COUNT(x): rows or non-NULL values.
    Count(u64),
    /// COUNT(DISTINCT x): the distinct non-NULL values.
    Distinct(Box<BTreeSet<Value>>),
    /// SUM of BIGINT: exact total and count.
    SumInt {
        /// The total.
        sum: i128,
        /// Values summed.
        n: u64,
    },
    /// SUM of DOUBLE: total and count.
    SumFloat {
        /// The total.
        sum: f64,
        /// Values summed.
        n: u64,
    },
    /// AVG: total and count.
    Avg {
        /// The total.
        sum: f64,
        /// Values summed.
        n: u64,
    },
    /// The variance family: Welford's moments.
    Moments {
        /// Which of the four it finishes as.
        kind: Spread,
        /// Values seen.
        n: u64,
        /// Running mean.
        mean: f64,
        /// Sum of squared deviations from the mean.
        m2: f64,
    },
    /// MIN: the smallest value so far (NULL: none yet).
    Min(Value),
    /// MAX: the largest value so far (NULL: none yet).
    Max(Value),
    /// FIRST_VALUE: the earliest value by event time.
    First(Option<Box<Stamped>>),
    /// LAST_VALUE: the latest value by event time.
    Last(Option<Box<Stamped>>),
    /// An aggregate UDF's rows, in arrival order.
    Udaf(Vec<UdafRow>),
}

/// Which statistic [`Acc::Moments`] finishes as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Spread {
    /// STDDEV_POP.
    StddevPop,
    /// STDDEV_SAMP.
    StddevSamp,
    /// VAR_POP.
    VarPop,
    /// VAR_SAMP.
    VarSamp,
}

/// A value with its event time (FIRST_VALUE, LAST_VALUE).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// Event time, epoch ms.
    pub ts_ms: i64,
    /// The value.
    pub value: Value,
}

/// One row an aggregate UDF will see.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UdafRow {
    /// Event time, epoch ms.
    pub ts_ms: i64,
    /// The UDF's arguments on that row.
    pub args: Box<[Value]>,
}

/// An aggregate UDF's input for one window: its rows sorted by (event time, values), column by column.
#[derive(Clone, Debug, PartialEq)]
pub struct UdafInputs {
    /// Event times, in order.
    pub event_times: Vec<i64>,
    /// One column per parameter, each with one value per row.
    pub columns: Vec<Vec<Value>>,
}

impl Acc {
    /// A fresh accumulator for `spec`.
    pub fn new(spec: &AggSpec) -> Acc {
        match spec.func {
            AggFunc::CountStar => Acc::Count(0),
            AggFunc::Count if spec.distinct => Acc::Distinct(Box::default()),
            AggFunc::Count => Acc::Count(0),
            AggFunc::Sum if spec.ty == DataType::BigInt => Acc::SumInt { sum: 0, n: 0 },
            AggFunc::Sum => Acc::SumFloat { sum: 0.0, n: 0 },
            AggFunc::Avg => Acc::Avg { sum: 0.0, n: 0 },
            AggFunc::Min => Acc::Min(Value::Null),
            AggFunc::Max => Acc::Max(Value::Null),
            AggFunc::StddevPop => Acc::moments(Spread::StddevPop),
            AggFunc::StddevSamp => Acc::moments(Spread::StddevSamp),
            AggFunc::VarPop => Acc::moments(Spread::VarPop),
            AggFunc::VarSamp => Acc::moments(Spread::VarSamp),
            AggFunc::FirstValue => Acc::First(None),
            AggFunc::LastValue => Acc::Last(None),
            AggFunc::Udf { .. } => Acc::Udaf(Vec::new()),
        }
    }

    fn moments(kind: Spread) -> Acc {
        Acc::Moments {
            kind,
            n: 0,
            mean: 0.0,
            m2: 0.0,
        }
    }

    /// Folds one argument value in (`ts_ms`: the row's event time). NULL is skipped.
    #[inline]
    pub fn update(&mut self, value: &Value, ts_ms: i64) {
        if value.is_null() {
            return;
        }
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Distinct(set) => {
                if !set.contains(value) {
                    set.insert(value.clone());
                }
            }
            Acc::SumInt { sum, n } => {
                if let Value::Int(i) = value {
                    *sum = sum.saturating_add(i128::from(*i));
                    *n += 1;
                }
            }
            Acc::SumFloat { sum, n } | Acc::Avg { sum, n } => {
                if let Some(x) = value.as_f64() {
                    *sum += x;
                    *n += 1;
                }
            }
            Acc::Moments { n, mean, m2, .. } => {
                if let Some(x) = value.as_f64() {
                    *n += 1;
                    let delta = x - *mean;
                    *mean += delta / *n as f64;
                    *m2 += delta * (x - *mean);
                }
            }
            Acc::Min(current) => {
                if current.is_null() || value < current {
                    *current = value.clone();
                }
            }
            Acc::Max(current) => {
                if current.is_null() || value > current {
                    *current = value.clone();
                }
            }
            Acc::First(slot) => match slot {
                Some(s) if s.ts_ms <= ts_ms => {}
                _ => {
                    *slot = Some(Box::new(Stamped {
                        ts_ms,
                        value: value.clone(),
                    }))
                }
            },
            Acc::Last(slot) => match slot {
                Some(s) if s.ts_ms > ts_ms => {}
                Some(s) => {
                    s.ts_ms = ts_ms;
                    s.value = value.clone();
                }
                None => {
                    *slot = Some(Box::new(Stamped {
                        ts_ms,
                        value: value.clone(),
                    }))
                }
            },
            Acc::Udaf(rows) => rows.push(UdafRow {
                ts_ms,
                args: Box::new([value.clone()]),
            }),
        }
    }

    /// Folds one row of several arguments in (aggregate UDFs; the others read the first argument).
    pub fn update_row(&mut self, args: &[Value], ts_ms: i64) {
        match self {
            Acc::Udaf(rows) => {
                if !args.iter().any(Value::is_null) {
                    rows.push(UdafRow {
                        ts_ms,
                        args: args.into(),
                    });
                }
            }
            other => {
                if let Some(v) = args.first() {
                    other.update(v, ts_ms);
                }
            }
        }
    }

    /// Folds another accumulator of the same aggregate in. Accumulators of different aggregates are never
    /// merged by a correct caller; such a merge leaves `self` as it was.
    pub fn merge(&mut self, other: Acc) {
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) => *a += b,
            (Acc::Distinct(a), Acc::Distinct(b)) => {
                if a.len() < b.len() {
                    let small = std::mem::replace(a, b);
                    a.extend(*small);
                } else {
                    a.extend(*b);
                }
            }
            (Acc::SumInt { sum, n }, Acc::SumInt { sum: s, n: m }) => {
                *sum = sum.saturating_add(s);
                *n += m;
            }
            (Acc::SumFloat { sum, n }, Acc::SumFloat { sum: s, n: m })
            | (Acc::Avg { sum, n }, Acc::Avg { sum: s, n: m }) => {
                *sum += s;
                *n += m;
            }
            (
                Acc::Moments { n, mean, m2, .. },
                Acc::Moments {
                    n: nb,
                    mean: mb,
                    m2: m2b,
                    ..
                },
            ) => {
                if nb == 0 {
                    return;
                }
                if *n == 0 {
                    (*n, *mean, *m2) = (nb, mb, m2b);
                    return;
                }
                let (na_f, nb_f) = (*n as f64, nb as f64);
                let total = na_f + nb_f;
                let delta = mb - *mean;
                *mean += delta * nb_f / total;
                *m2 += m2b + delta * delta * na_f * nb_f / total;
                *n += nb;
            }
            (Acc::Min(a), Acc::Min(b)) if !b.is_null() && (a.is_null() || b < *a) => *a = b,
            (Acc::Max(a), Acc::Max(b)) if !b.is_null() && (a.is_null() || b > *a) => *a = b,
            (Acc::First(a), Acc::First(Some(b))) => {
                let replace = match a {
                    None => true,
                    Some(s) => (b.ts_ms, &b.value) < (s.ts_ms, &s.value),
                };
                if replace {
                    *a = Some(b);
                }
            }
            (Acc::Last(a), Acc::Last(Some(b))) => {
                let replace = match a {
                    None => true,
                    Some(s) => (b.ts_ms, &b.value) > (s.ts_ms, &s.value),
                };
                if replace {
                    *a = Some(b);
                }
            }
            (Acc::Udaf(a), Acc::Udaf(b)) => a.extend(b),
            _ => {}
        }
    }

    /// The aggregate's value. An aggregate UDF's is NULL here: the host computes it from
    /// [`Acc::udaf_inputs`].
    pub fn finish(&self) -> Value {
        match self {
            Acc::Count(n) => Value::Int(i64::try_from(*n).unwrap_or(i64::MAX)),
            Acc::Distinct(set) => Value::Int(i64::try_from(set.len()).unwrap_or(i64::MAX)),
            Acc::SumInt { n: 0, .. } | Acc::SumFloat { n: 0, .. } | Acc::Avg { n: 0, .. } => Value::Null,
            Acc::SumInt { sum, .. } => i64::try_from(*sum).map_or(Value::Null, Value::Int),
            Acc::SumFloat { sum, .. } => Value::Float(*sum),
            Acc::Avg { sum, n } => Value::Float(*sum / *n as f64),
            Acc::Moments { kind, n, m2, .. } => {
                let n = *n as f64;
                let divisor = match kind {
                    Spread::StddevPop | Spread::VarPop => n,
                    Spread::StddevSamp | Spread::VarSamp => n - 1.0,
                };
                if divisor < 1.0 {
                    return Value::Null;
                }
                let variance = (m2 / divisor).max(0.0);
                Value::Float(match kind {
                    Spread::StddevPop | Spread::StddevSamp => variance.sqrt(),
                    Spread::VarPop | Spread::VarSamp => variance,
                })
            }
            Acc::Min(v) | Acc::Max(v) => v.clone(),
            Acc::First(s) | Acc::Last(s) => s.as_ref().map_or(Value::Null, |s| s.value.clone()),
            Acc::Udaf(_) => Value::Null,
        }
    }

    /// An aggregate UDF's rows, sorted by (event time, values); `None` for the built-in aggregates.
    pub fn udaf_inputs(&self) -> Option<UdafInputs> {
        let Acc::Udaf(rows) = self else {
            return None;
        };
        let mut order: Vec<&UdafRow> = rows.iter().collect();
        order.sort_by(|a, b| (a.ts_ms, &a.args).cmp(&(b.ts_ms, &b.args)));
        let width = order.first().map_or(0, |r| r.args.len());
        let mut columns = vec![Vec::with_capacity(order.len()); width];
        for row in &order {
            for (column, v) in columns.iter_mut().zip(row.args.iter()) {
                column.push(v.clone());
            }
        }
        Some(UdafInputs {
            event_times: order.iter().map(|r| r.ts_ms).collect(),
            columns,
        })
    }
}

impl AggSpec {
    /// A fresh accumulator for this aggregate.
    pub fn new_acc(&self) -> Acc {
        Acc::new(self)
    }

    /// Folds one input row into `acc`: applies the FILTER, evaluates the arguments, updates. This is the one
    /// call the window operator makes per (row, aggregate).
    #[inline]
    pub fn update(&self, acc: &mut Acc, row: &[Value], ts_ms: i64, host: &dyn ScalarHost) {
        if let Some(filter) = &self.filter
            && !filter.is_true(row, host)
        {
            return;
        }
        match self.args.as_slice() {
            // COUNT(*) counts rows: any non-NULL stands for the row.
            [] => acc.update(&Value::Bool(true), ts_ms),
            [arg] => acc.update(&arg.eval(row, host), ts_ms),
            args => {
                let values: Vec<Value> = args.iter().map(|a| a.eval(row, host)).collect();
                acc.update_row(&values, ts_ms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Expr;
    use crate::function::NoUdfs;

    fn spec(func: AggFunc, ty: DataType) -> AggSpec {
        AggSpec {
            func,
            args: vec![Expr::slot(0, ty, true)],
            distinct: false,
            filter: None,
            ty,
            nullable: true,
        }
    }

    fn run(func: AggFunc, ty: DataType, values: &[Value]) -> Value {
        let s = spec(func, ty);
        let mut acc = s.new_acc();
        for (i, v) in values.iter().enumerate() {
            s.update(&mut acc, std::slice::from_ref(v), i as i64, &NoUdfs);
        }
        acc.finish()
    }

    fn floats(xs: &[f64]) -> Vec<Value> {
        xs.iter().map(|x| Value::Float(*x)).collect()
    }

    fn close(a: &Value, b: f64, tolerance: f64) -> bool {
        matches!(a, Value::Float(x) if (x - b).abs() <= tolerance * b.abs().max(1.0))
    }

    #[test]
    fn an_accumulator_is_small() {
        assert!(std::mem::size_of::<Value>() <= 24, "{}", std::mem::size_of::<Value>());
        assert!(std::mem::size_of::<Acc>() <= 32, "{}", std::mem::size_of::<Acc>());
    }

    #[test]
    fn aggregates_of_nothing_are_null_except_count() {
        for func in [
            AggFunc::Sum,
            AggFunc::Avg,
            AggFunc::Min,
            AggFunc::Max,
            AggFunc::StddevPop,
            AggFunc::StddevSamp,
            AggFunc::VarPop,
            AggFunc::VarSamp,
            AggFunc::FirstValue,
            AggFunc::LastValue,
        ] {
            assert_eq!(run(func, DataType::Double, &[]), Value::Null, "{func:?}");
            assert_eq!(
                run(func, DataType::Double, &[Value::Null, Value::Null]),
                Value::Null,
                "{func:?}"
            );
        }
        assert_eq!(run(AggFunc::Count, DataType::Double, &[Value::Null]), Value::Int(0));
        assert_eq!(run(AggFunc::Count, DataType::Double, &[]), Value::Int(0));
    }

    #[test]
    fn nulls_are_skipped_but_count_star_counts_rows() {
        let values = [Value::Int(2), Value::Null, Value::Int(4)];
        assert_eq!(run(AggFunc::Count, DataType::BigInt, &values), Value::Int(2));
        assert_eq!(run(AggFunc::Sum, DataType::BigInt, &values), Value::Int(6));
        assert_eq!(
            run(AggFunc::Avg, DataType::Double, &floats(&[2.0, 4.0])),
            Value::Float(3.0)
        );
        let star = AggSpec {
            func: AggFunc::CountStar,
            args: vec![],
            distinct: false,
            filter: None,
            ty: DataType::BigInt,
            nullable: false,
        };
        let mut acc = star.new_acc();
        for v in &values {
            star.update(&mut acc, std::slice::from_ref(v), 0, &NoUdfs);
        }
        assert_eq!(acc.finish(), Value::Int(3));
    }

    #[test]
    fn sample_statistics_of_one_value_are_null() {
        assert_eq!(run(AggFunc::StddevSamp, DataType::Double, &floats(&[5.0])), Value::Null);
        assert_eq!(run(AggFunc::VarSamp, DataType::Double, &floats(&[5.0])), Value::Null);
        assert_eq!(
            run(AggFunc::StddevPop, DataType::Double, &floats(&[5.0])),
            Value::Float(0.0)
        );
    }

    #[test]
    fn big_int_sum_is_exact_and_null_when_it_overflows() {
        let near = [Value::Int(i64::MAX), Value::Int(1), Value::Int(-2)];
        assert_eq!(run(AggFunc::Sum, DataType::BigInt, &near), Value::Int(i64::MAX - 1));
        let over = [Value::Int(i64::MAX), Value::Int(1)];
        assert_eq!(run(AggFunc::Sum, DataType::BigInt, &over), Value::Null);
        let under = [Value::Int(i64::MIN), Value::Int(-1)];
        assert_eq!(run(AggFunc::Sum, DataType::BigInt, &under), Value::Null);
    }

    /// The two-pass formulas the accumulators must agree with.
    fn two_pass(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let ss = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>();
        (ss / n, ss / (n - 1.0))
    }

    #[test]
    fn variance_family_matches_two_pass_even_with_a_large_mean() {
        let xs: Vec<f64> = (0..1000).map(|i| 1e9 + f64::from(i % 7) * 0.001).collect();
        let (pop, samp) = two_pass(&xs);
        let values = floats(&xs);
        assert!(close(&run(AggFunc::VarPop, DataType::Double, &values), pop, 1e-6));
        assert!(close(&run(AggFunc::VarSamp, DataType::Double, &values), samp, 1e-6));
        assert!(close(
            &run(AggFunc::StddevPop, DataType::Double, &values),
            pop.sqrt(),
            1e-6
        ));
        assert!(close(
            &run(AggFunc::StddevSamp, DataType::Double, &values),
            samp.sqrt(),
            1e-6
        ));
    }

    /// Splits `xs` into accumulators at `cuts`, merges them in `order`, and finishes.
    fn merged(func: AggFunc, xs: &[Value], cuts: &[usize], order: &[usize]) -> Value {
        let s = spec(func, xs.iter().find_map(Value::data_type).unwrap_or(DataType::Double));
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(xs.len());
        let mut parts: Vec<Option<Acc>> = bounds
            .windows(2)
            .map(|w| {
                let mut acc = s.new_acc();
                for (i, v) in xs[w[0]..w[1]].iter().enumerate() {
                    // Event times repeat (i / 3) so that FIRST/LAST meet ties within and across parts.
                    s.update(&mut acc, std::slice::from_ref(v), ((w[0] + i) / 3) as i64, &NoUdfs);
                }
                Some(acc)
            })
            .collect();
        let mut total = parts[order[0]].take().expect("each part once");
        for &i in &order[1..] {
            total.merge(parts[i].take().expect("each part once"));
        }
        total.finish()
    }

    #[test]
    fn merging_in_any_order_matches_one_pass() {
        let xs: Vec<Value> = (0..60)
            .map(|i| Value::Float(f64::from((i * 37) % 11) + 100.0))
            .collect();
        let cuts = [10, 25, 40];
        let orders = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]];
        for func in [
            AggFunc::Count,
            AggFunc::Sum,
            AggFunc::Avg,
            AggFunc::Min,
            AggFunc::Max,
            AggFunc::StddevPop,
            AggFunc::StddevSamp,
            AggFunc::VarPop,
            AggFunc::VarSamp,
            AggFunc::FirstValue,
            AggFunc::LastValue,
        ] {
            let one_pass = merged(func, &xs, &[], &[0]);
            for order in &orders {
                let m = merged(func, &xs, &cuts, order);
                let same = match (&one_pass, &m) {
                    (Value::Float(a), Value::Float(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                    (a, b) => a == b,
                };
                assert!(same, "{func:?} {order:?}: {one_pass:?} vs {m:?}");
            }
        }
    }

    #[test]
    fn first_and_last_ties_across_merges_do_not_depend_on_order() {
        let stamped = |ts, v: i64| {
            let mut acc = Acc::First(None);
            acc.update(&Value::Int(v), ts);
            acc
        };
        let mut a = stamped(5, 9);
        a.merge(stamped(5, 3));
        let mut b = stamped(5, 3);
        b.merge(stamped(5, 9));
        assert_eq!(a.finish(), Value::Int(3));
        assert_eq!(b.finish(), Value::Int(3));
        let last = |ts, v: i64| {
            let mut acc = Acc::Last(None);
            acc.update(&Value::Int(v), ts);
            acc
        };
        let mut a = last(5, 9);
        a.merge(last(5, 3));
        let mut b = last(5, 3);
        b.merge(last(5, 9));
        assert_eq!(a.finish(), Value::Int(9));
        assert_eq!(b.finish(), Value::Int(9));
    }

    #[test]
    fn first_and_last_follow_event_time_then_arrival_within_one_accumulator() {
        let mut first = Acc::First(None);
        let mut last = Acc::Last(None);
        for (ts, v) in [(10, "b"), (5, "x"), (5, "y"), (20, "p"), (20, "q"), (7, "z")] {
            first.update(&Value::Text(v.into()), ts);
            last.update(&Value::Text(v.into()), ts);
        }
        assert_eq!(first.finish(), Value::Text("x".into()));
        assert_eq!(last.finish(), Value::Text("q".into()));
    }

    #[test]
    fn distinct_count_is_exact_and_merges_as_a_union() {
        let xs = [1, 2, 2, 3, 3, 3, 4].map(Value::Int);
        let mut s = spec(AggFunc::Count, DataType::BigInt);
        s.distinct = true;
        let mut a = s.new_acc();
        let mut b = s.new_acc();
        for v in &xs[..4] {
            a.update(v, 0);
        }
        for v in &xs[3..] {
            b.update(v, 0);
        }
        b.update(&Value::Null, 0);
        a.merge(b);
        assert_eq!(a.finish(), Value::Int(4));
    }

    #[test]
    fn min_and_max_take_text() {
        let xs = ["pear", "apple", "zucchini"].map(|s| Value::Text(s.into()));
        assert_eq!(run(AggFunc::Min, DataType::Text, &xs), Value::Text("apple".into()));
        assert_eq!(run(AggFunc::Max, DataType::Text, &xs), Value::Text("zucchini".into()));
    }

    #[test]
    fn filter_decides_which_rows_count() {
        let mut s = spec(AggFunc::Count, DataType::BigInt);
        s.filter = Some(Expr {
            kind: crate::expr::ExprKind::Compare(
                crate::expr::CmpOp::Gt,
                Box::new(Expr::slot(0, DataType::BigInt, true)),
                Box::new(Expr::literal(Value::Int(2), DataType::BigInt)),
            ),
            ty: DataType::Boolean,
            nullable: true,
        });
        let mut acc = s.new_acc();
        for v in [1, 2, 3, 4].map(Value::Int).iter().chain([Value::Null].iter()) {
            s.update(&mut acc, std::slice::from_ref(v), 0, &NoUdfs);
        }
        assert_eq!(acc.finish(), Value::Int(2));
    }

    #[test]
    fn udaf_inputs_are_sorted_by_event_time_then_values_whatever_the_arrival() {
        let rows = [(3, 1.0, "c"), (1, 9.0, "a"), (3, 0.5, "b"), (2, 4.0, "z")];
        let args = |x: f64, s: &str| [Value::Float(x), Value::Text(s.into())];
        // One accumulator in arrival order; another fed in reverse, split in two and merged.
        let mut a = Acc::Udaf(Vec::new());
        for (ts, x, s) in rows {
            a.update_row(&args(x, s), ts);
        }
        let (mut b, mut c) = (Acc::Udaf(Vec::new()), Acc::Udaf(Vec::new()));
        for (i, (ts, x, s)) in rows.iter().rev().enumerate() {
            let acc = if i < 2 { &mut b } else { &mut c };
            acc.update_row(&args(*x, s), *ts);
        }
        c.update_row(&[Value::Null, Value::Text("skipped".into())], 0);
        c.merge(b);
        let expected = UdafInputs {
            event_times: vec![1, 2, 3, 3],
            columns: vec![
                floats(&[9.0, 4.0, 0.5, 1.0]),
                ["a", "z", "b", "c"].iter().map(|s| Value::Text((*s).into())).collect(),
            ],
        };
        assert_eq!(a.udaf_inputs(), Some(expected.clone()));
        assert_eq!(c.udaf_inputs(), Some(expected));
        assert_eq!(a.finish(), Value::Null);
        assert_eq!(Acc::Count(1).udaf_inputs(), None);
    }

    #[test]
    fn accumulators_round_trip_through_bincode() {
        let mut accs = vec![
            Acc::Count(3),
            Acc::SumInt {
                sum: i128::from(i64::MAX) * 4,
                n: 4,
            },
            Acc::Min(Value::Text("a text longer than twenty-four bytes".into())),
            Acc::Udaf(vec![UdafRow {
                ts_ms: 1,
                args: Box::new([Value::Int(1)]),
            }]),
        ];
        let mut d = Acc::Distinct(Box::default());
        d.update(&Value::Float(1.5), 0);
        accs.push(d);
        let mut f = Acc::First(None);
        f.update(&Value::Bool(true), 9);
        accs.push(f);
        let bytes = bincode::serialize(&accs).unwrap();
        let back: Vec<Acc> = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, accs);
    }
}
