//! Compiles `sqlparser` expressions into typed [`Expr`]s over slots. Names resolve through a [`Scope`] (the
//! input row, or the group row with its keys, window bounds and aggregates); operands are cast to a common type
//! here, so evaluation never meets mixed kinds. Errors point at the expression and name the fix.

use sqlparser::ast::{self, BinaryOperator, DateTimeField, UnaryOperator};
use sqlparser::tokenizer::Location;

use crate::error::SqlError;
use crate::expr::{ArithOp, Builtin, CmpOp, Expr, ExprKind};
use crate::function::{Function, FunctionKind};
use crate::parse::{error_at, start_of};
use crate::value::{DataType, Value, parse_timestamp};

/// How deep a compiled expression may nest.
pub(crate) const MAX_DEPTH: usize = 64;

/// The aggregate functions of the dialect (besides aggregate UDFs), lower case.
pub(crate) const AGGREGATES: [&str; 13] = [
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "stddev_pop",
    "stddev_samp",
    "stddev",
    "var_pop",
    "var_samp",
    "variance",
    "first_value",
    "last_value",
];

/// The built-in scalar functions, as error messages list them.
const BUILTINS: &str = "COALESCE, ABS, ROUND, LOWER, UPPER, CHAR_LENGTH, TO_TIMESTAMP_LTZ";

/// Where names come from.
pub(crate) trait Scope {
    /// The expression a column reference stands for.
    fn column(&mut self, c: &mut Compiler<'_>, name: &ast::Ident) -> Result<Expr, SqlError>;
    /// The expression an aggregate call stands for.
    fn aggregate(&mut self, c: &mut Compiler<'_>, call: &ast::Function) -> Result<Expr, SqlError>;
    /// Accepts a table qualifier (`t.col`).
    fn qualifier_ok(&self, qualifier: &str) -> bool;
    /// The expression a qualified column reference (`t.col`, `qualifier_ok(t)`) stands for.
    fn qualified(&mut self, c: &mut Compiler<'_>, _qualifier: &str, name: &ast::Ident) -> Result<Expr, SqlError> {
        self.column(c, name)
    }
}

/// The compiler's state: the source text (for errors), the UDF registry and the current depth.
pub(crate) struct Compiler<'a> {
    pub text: &'a str,
    pub functions: &'a [Function],
    depth: usize,
}

impl<'a> Compiler<'a> {
    pub fn new(text: &'a str, functions: &'a [Function]) -> Compiler<'a> {
        Compiler {
            text,
            functions,
            depth: 0,
        }
    }

    /// An error pointing at `expr`.
    pub fn err_at(&self, expr: &ast::Expr, message: impl Into<String>) -> SqlError {
        error_at(self.text, start_of(expr), message)
    }

    /// An error pointing at `at`.
    pub fn err_loc(&self, at: Location, message: impl Into<String>) -> SqlError {
        error_at(self.text, at, message)
    }

    /// A BOOLEAN condition (WHERE, HAVING, FILTER, CHECK, CASE WHEN).
    pub fn condition(&mut self, expr: &ast::Expr, scope: &mut dyn Scope, clause: &str) -> Result<Expr, SqlError> {
        let e = self.compile(expr, scope)?;
        coerce(e, DataType::Boolean).map_err(|e| {
            self.err_at(
                expr,
                format!(
                    "{clause} needs a BOOLEAN condition, not a {}; compare it, e.g. `x > 0`",
                    e.ty
                ),
            )
        })
    }

    /// Compiles `expr` in `scope`.
    pub fn compile(&mut self, expr: &ast::Expr, scope: &mut dyn Scope) -> Result<Expr, SqlError> {
        self.depth += 1;
        let out = if self.depth > MAX_DEPTH {
            Err(self.err_at(
                expr,
                format!("the expression nests more than {MAX_DEPTH} levels deep; split it into computed columns"),
            ))
        } else {
            self.compile_inner(expr, scope)
        };
        self.depth -= 1;
        out
    }

    fn compile_inner(&mut self, expr: &ast::Expr, scope: &mut dyn Scope) -> Result<Expr, SqlError> {
        use ast::Expr as E;
        match expr {
            E::Identifier(id) => scope.column(self, id),
            E::CompoundIdentifier(parts) => match parts.as_slice() {
                [qualifier, column] if scope.qualifier_ok(&qualifier.value) => {
                    scope.qualified(self, &qualifier.value, column)
                }
                _ => Err(self.err_at(
                    expr,
                    format!(
                        "unknown qualifier in `{}`; name the column alone or qualify it with the table's name",
                        parts.iter().map(|p| p.value.as_str()).collect::<Vec<_>>().join(".")
                    ),
                )),
            },
            E::Value(v) => self.literal(expr, &v.value),
            E::TypedString(t) => {
                let ty = data_type(&t.data_type).map_err(|m| self.err_at(expr, m))?.0;
                let text = match &t.value.value {
                    ast::Value::SingleQuotedString(s) => s.as_str(),
                    _ => {
                        return Err(self.err_at(
                            expr,
                            "a typed literal takes a quoted string: TIMESTAMP '2024-01-01 00:00:00'",
                        ));
                    }
                };
                match crate::expr::cast(Value::Text(text.into()), ty) {
                    Value::Null => Err(self.err_at(expr, format!("'{text}' is not a valid {ty} literal"))),
                    v => Ok(Expr::literal(v, ty)),
                }
            }
            E::Nested(inner) => self.compile(inner, scope),
            E::UnaryOp { op, expr: operand } => {
                let e = self.compile(operand, scope)?;
                match op {
                    UnaryOperator::Not => {
                        let e = coerce(e, DataType::Boolean)
                            .map_err(|e| self.err_at(operand, format!("NOT needs a BOOLEAN, not a {}", e.ty)))?;
                        Ok(node(ExprKind::Not(Box::new(e.clone())), DataType::Boolean, e.nullable))
                    }
                    UnaryOperator::Minus if e.ty.is_numeric() || is_null_literal(&e) => {
                        let ty = if is_null_literal(&e) { DataType::BigInt } else { e.ty };
                        let nullable = e.nullable || ty == DataType::BigInt;
                        Ok(node(ExprKind::Neg(Box::new(e)), ty, nullable))
                    }
                    UnaryOperator::Plus if e.ty.is_numeric() => Ok(e),
                    _ => Err(self.err_at(expr, format!("the operator {op} does not apply to a {}", e.ty))),
                }
            }
            E::BinaryOp { left, op, right } => self.binary(expr, left, op, right, scope),
            E::IsNull(e) | E::IsNotNull(e) => {
                let inner = self.compile(e, scope)?;
                Ok(node(
                    ExprKind::IsNull {
                        expr: Box::new(inner),
                        negated: matches!(expr, E::IsNotNull(_)),
                    },
                    DataType::Boolean,
                    false,
                ))
            }
            E::IsTrue(_) | E::IsFalse(_) | E::IsNotTrue(_) | E::IsNotFalse(_) => Err(self.err_at(
                expr,
                "IS [NOT] TRUE/FALSE is not supported; write `COALESCE(x, FALSE)` or `x = TRUE`",
            )),
            E::In {
                target: ast::InTarget::Subquery(_),
                ..
            } => Err(self.err_at(expr, "subqueries are not supported; list the values: x IN ('a', 'b')")),
            E::In {
                expr: x,
                target: ast::InTarget::List(list),
                negated,
                global: false,
            } => {
                let subject = self.compile(x, scope)?;
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    items.push(self.compile(item, scope)?);
                }
                let mut all = vec![subject];
                all.extend(items);
                let (_, all) = self.unify(expr, all, "IN")?;
                let mut all = all.into_iter();
                let subject = all.next().expect("the subject is first");
                let list: Vec<Expr> = all.collect();
                let nullable = subject.nullable || list.iter().any(|e| e.nullable);
                Ok(node(
                    ExprKind::InList {
                        expr: Box::new(subject),
                        list,
                        negated: *negated,
                    },
                    DataType::Boolean,
                    nullable,
                ))
            }
            E::Between {
                expr: x,
                negated,
                low,
                high,
            } => {
                let parts = vec![
                    self.compile(x, scope)?,
                    self.compile(low, scope)?,
                    self.compile(high, scope)?,
                ];
                let (_, parts) = self.unify(expr, parts, "BETWEEN")?;
                let nullable = parts.iter().any(|e| e.nullable);
                let [x, low, high]: [Expr; 3] = parts.try_into().expect("three parts");
                Ok(node(
                    ExprKind::Between {
                        expr: Box::new(x),
                        low: Box::new(low),
                        high: Box::new(high),
                        negated: *negated,
                    },
                    DataType::Boolean,
                    nullable,
                ))
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(expr, operand.as_deref(), conditions, else_result.as_deref(), scope),
            E::Cast {
                kind,
                expr: x,
                data_type: target,
                format,
            } => {
                if format.is_some() || matches!(kind, ast::CastKind::DoubleColon) {
                    return Err(self.err_at(expr, "write casts as CAST(x AS type) (no FORMAT, no ::)"));
                }
                let (ty, _) = data_type(target).map_err(|m| self.err_at(expr, m))?;
                let e = self.compile(x, scope)?;
                if e.ty == ty && !is_null_literal(&e) {
                    return Ok(e);
                }
                let nullable =
                    e.nullable || !(ty == DataType::Text || (e.ty == DataType::BigInt && ty == DataType::Double));
                Ok(node(ExprKind::Cast(Box::new(e)), ty, nullable))
            }
            E::Function(call) => self.function(expr, call, scope),
            E::Interval(_) => Err(self.err_at(
                expr,
                "an INTERVAL can only be added to or subtracted from a TIMESTAMP (or size a window)",
            )),
            E::Subquery(_) | E::Exists { .. } => Err(self.err_at(
                expr,
                "subqueries are not supported; write the condition over the table's columns (or a computed column)",
            )),
            E::Prefixed { .. } => Err(self.err_at(
                expr,
                "`TABLE name` is only an argument of TUMBLE, HOP or SESSION in FROM TABLE(...)",
            )),
            E::Wildcard(_) | E::QualifiedWildcard(..) => {
                Err(self.err_at(expr, "`*` is only allowed in COUNT(*); list the columns you need"))
            }
            _ => Err(self.err_at(
                expr,
                "this expression is not supported; see docs/SQL.md for the operators and functions the dialect has",
            )),
        }
    }

    fn literal(&self, expr: &ast::Expr, v: &ast::Value) -> Result<Expr, SqlError> {
        Ok(match v {
            ast::Value::Number(text, _) => {
                if let Ok(i) = text.parse::<i64>() {
                    Expr::literal(Value::Int(i), DataType::BigInt)
                } else {
                    match text.parse::<f64>() {
                        Ok(f) if f.is_finite() => Expr::literal(Value::Float(f), DataType::Double),
                        _ => return Err(self.err_at(expr, format!("the number {text} is out of range for a DOUBLE"))),
                    }
                }
            }
            ast::Value::SingleQuotedString(s) => Expr::literal(Value::Text(s.as_str().into()), DataType::Text),
            ast::Value::Boolean(b) => Expr::literal(Value::Bool(*b), DataType::Boolean),
            ast::Value::Null => Expr::literal(Value::Null, DataType::BigInt),
            _ => {
                return Err(self.err_at(
                    expr,
                    "this literal is not supported; strings are single-quoted ('text'), numbers plain (1, 2.5)",
                ));
            }
        })
    }

    fn binary(
        &mut self,
        whole: &ast::Expr,
        left: &ast::Expr,
        op: &BinaryOperator,
        right: &ast::Expr,
        scope: &mut dyn Scope,
    ) -> Result<Expr, SqlError> {
        use BinaryOperator as B;
        // `ts ± INTERVAL ...`: the interval becomes milliseconds.
        if let (B::Plus | B::Minus, ast::Expr::Interval(interval)) = (op, right) {
            let l = self.compile(left, scope)?;
            if l.ty != DataType::Timestamp {
                return Err(self.err_at(whole, format!("an INTERVAL is added to a TIMESTAMP, not to a {}", l.ty)));
            }
            let ms = interval_ms(interval).map_err(|m| self.err_at(right, m))?;
            let ms = i64::try_from(ms).map_err(|_| self.err_at(right, "the interval is too long"))?;
            let arith = if matches!(op, B::Plus) {
                ArithOp::Add
            } else {
                ArithOp::Sub
            };
            return Ok(node(
                ExprKind::Arith(
                    arith,
                    Box::new(l),
                    Box::new(Expr::literal(Value::Int(ms), DataType::BigInt)),
                ),
                DataType::Timestamp,
                true,
            ));
        }
        let l = self.compile(left, scope)?;
        let r = self.compile(right, scope)?;
        match op {
            B::And | B::Or => {
                let l = coerce(l, DataType::Boolean)
                    .map_err(|e| self.err_at(left, format!("{op} needs BOOLEAN operands, not a {}", e.ty)))?;
                let r = coerce(r, DataType::Boolean)
                    .map_err(|e| self.err_at(right, format!("{op} needs BOOLEAN operands, not a {}", e.ty)))?;
                let nullable = l.nullable || r.nullable;
                let kind = if matches!(op, B::And) {
                    ExprKind::And(Box::new(l), Box::new(r))
                } else {
                    ExprKind::Or(Box::new(l), Box::new(r))
                };
                Ok(node(kind, DataType::Boolean, nullable))
            }
            B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => {
                let cmp = match op {
                    B::Eq => CmpOp::Eq,
                    B::NotEq => CmpOp::NotEq,
                    B::Lt => CmpOp::Lt,
                    B::LtEq => CmpOp::LtEq,
                    B::Gt => CmpOp::Gt,
                    _ => CmpOp::GtEq,
                };
                let (_, parts) = self.unify(whole, vec![l, r], "a comparison")?;
                let nullable = parts.iter().any(|e| e.nullable);
                let [l, r]: [Expr; 2] = parts.try_into().expect("two operands");
                Ok(node(
                    ExprKind::Compare(cmp, Box::new(l), Box::new(r)),
                    DataType::Boolean,
                    nullable,
                ))
            }
            B::StringConcat => {
                let l = coerce(l, DataType::Text)
                    .map_err(|e| self.err_at(left, format!("|| joins TEXT, not a {}; CAST it AS TEXT", e.ty)))?;
                let r = coerce(r, DataType::Text)
                    .map_err(|e| self.err_at(right, format!("|| joins TEXT, not a {}; CAST it AS TEXT", e.ty)))?;
                let nullable = l.nullable || r.nullable;
                Ok(node(
                    ExprKind::Call(Builtin::Concat, vec![l, r]),
                    DataType::Text,
                    nullable,
                ))
            }
            B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => {
                let arith = match op {
                    B::Plus => ArithOp::Add,
                    B::Minus => ArithOp::Sub,
                    B::Multiply => ArithOp::Mul,
                    B::Divide => ArithOp::Div,
                    _ => ArithOp::Rem,
                };
                if l.ty == DataType::Timestamp && r.ty == DataType::Timestamp && arith == ArithOp::Sub {
                    return Ok(node(
                        ExprKind::Arith(arith, Box::new(l), Box::new(r)),
                        DataType::BigInt,
                        true,
                    ));
                }
                let numeric = |e: &Expr| e.ty.is_numeric() || is_null_literal(e);
                if !numeric(&l) || !numeric(&r) {
                    return Err(self.err_at(
                        whole,
                        format!(
                            "{op} needs numbers, not {} and {}; CAST the operands or use || for text",
                            l.ty, r.ty
                        ),
                    ));
                }
                let (ty, parts) = self.unify(whole, vec![l, r], "arithmetic")?;
                let nullable = parts.iter().any(|e| e.nullable)
                    || ty == DataType::BigInt
                    || matches!(arith, ArithOp::Div | ArithOp::Rem);
                let [l, r]: [Expr; 2] = parts.try_into().expect("two operands");
                Ok(node(ExprKind::Arith(arith, Box::new(l), Box::new(r)), ty, nullable))
            }
            _ => Err(self.err_at(
                whole,
                format!("the operator {op} is not supported; see docs/SQL.md for the dialect's operators"),
            )),
        }
    }

    fn case(
        &mut self,
        whole: &ast::Expr,
        operand: Option<&ast::Expr>,
        conditions: &[ast::CaseWhen],
        otherwise: Option<&ast::Expr>,
        scope: &mut dyn Scope,
    ) -> Result<Expr, SqlError> {
        let mut whens = Vec::with_capacity(conditions.len());
        let mut thens = Vec::with_capacity(conditions.len() + 1);
        let subject = match operand {
            Some(op) => {
                let subject = self.compile(op, scope)?;
                let mut parts = vec![subject];
                for c in conditions {
                    parts.push(self.compile(&c.condition, scope)?);
                }
                let (_, parts) = self.unify(whole, parts, "CASE")?;
                let mut parts = parts.into_iter();
                let subject = parts.next().expect("the operand is first");
                whens.extend(parts);
                Some(Box::new(subject))
            }
            None => {
                for c in conditions {
                    whens.push(self.condition(&c.condition, scope, "CASE WHEN")?);
                }
                None
            }
        };
        for c in conditions {
            thens.push(self.compile(&c.result, scope)?);
        }
        let has_else = otherwise.is_some();
        if let Some(e) = otherwise {
            thens.push(self.compile(e, scope)?);
        }
        let (ty, mut thens) = self.unify(whole, thens, "the branches of CASE")?;
        let nullable = !has_else || thens.iter().any(|e| e.nullable);
        let otherwise = if has_else { thens.pop().map(Box::new) } else { None };
        Ok(node(
            ExprKind::Case {
                operand: subject,
                branches: whens.into_iter().zip(thens).collect(),
                otherwise,
            },
            ty,
            nullable,
        ))
    }

    fn function(&mut self, whole: &ast::Expr, call: &ast::Function, scope: &mut dyn Scope) -> Result<Expr, SqlError> {
        let name = function_name(call);
        if call.over.is_some() {
            return Err(self.err_at(
                whole,
                "window functions (OVER) are not supported; aggregate per window with GROUP BY and TUMBLE, HOP or SESSION",
            ));
        }
        let lower = name.to_ascii_lowercase();
        if AGGREGATES.contains(&lower.as_str()) || self.udf(&lower, FunctionKind::Aggregate).is_some() {
            return scope.aggregate(self, call);
        }
        if matches!(lower.as_str(), "tumble" | "hop" | "session" | "descriptor") {
            return Err(self.err_at(
                whole,
                format!("{name}(...) sizes the window: write it in FROM TABLE(...) or in GROUP BY, not in an expression; select window_start and window_end for the bounds"),
            ));
        }
        if call.filter.is_some() {
            return Err(self.err_at(whole, format!("FILTER applies to aggregates; {name} is not one")));
        }
        const SCALARS: [&str; 8] = [
            "coalesce",
            "abs",
            "round",
            "lower",
            "upper",
            "char_length",
            "character_length",
            "to_timestamp_ltz",
        ];
        if !SCALARS.contains(&lower.as_str()) && self.udf(&lower, FunctionKind::Scalar).is_none() {
            let udfs: Vec<&str> = self.functions.iter().map(|f| f.name.as_str()).collect();
            return Err(self.err_at(
                whole,
                format!(
                    "unknown function `{name}`; the built-ins are {BUILTINS}{}",
                    if udfs.is_empty() {
                        String::new()
                    } else {
                        format!(", and the job's UDFs {}", udfs.join(", "))
                    }
                ),
            ));
        }
        let args = self.plain_args(whole, call)?;
        let mut compiled = Vec::with_capacity(args.len());
        for a in &args {
            compiled.push(self.compile(a, scope)?);
        }
        let arity = |n: std::ops::RangeInclusive<usize>, sig: &str| {
            if n.contains(&compiled.len()) {
                Ok(())
            } else {
                Err(self.err_at(whole, format!("wrong number of arguments; the signature is {sig}")))
            }
        };
        match lower.as_str() {
            "coalesce" => {
                if compiled.is_empty() {
                    return Err(self.err_at(whole, "COALESCE needs at least one argument"));
                }
                let (ty, parts) = self.unify(whole, compiled, "COALESCE")?;
                let nullable = parts.iter().all(|e| e.nullable);
                Ok(node(ExprKind::Coalesce(parts), ty, nullable))
            }
            "abs" => {
                arity(1..=1, "ABS(BIGINT | DOUBLE)")?;
                let x = compiled.pop().expect("one argument");
                if !x.ty.is_numeric() {
                    return Err(self.err_at(whole, format!("ABS takes a BIGINT or a DOUBLE, not a {}", x.ty)));
                }
                let (ty, nullable) = (x.ty, x.nullable || x.ty == DataType::BigInt);
                Ok(node(ExprKind::Call(Builtin::Abs, vec![x]), ty, nullable))
            }
            "round" => {
                arity(1..=2, "ROUND(BIGINT | DOUBLE [, BIGINT digits])")?;
                let x = &compiled[0];
                if !x.ty.is_numeric() {
                    return Err(self.err_at(whole, format!("ROUND takes a BIGINT or a DOUBLE, not a {}", x.ty)));
                }
                if compiled.get(1).is_some_and(|d| d.ty != DataType::BigInt) {
                    return Err(self.err_at(whole, "ROUND's second argument (digits) is a BIGINT"));
                }
                let ty = x.ty;
                let nullable = compiled.iter().any(|e| e.nullable) || ty == DataType::BigInt;
                Ok(node(ExprKind::Call(Builtin::Round, compiled), ty, nullable))
            }
            "lower" | "upper" | "char_length" | "character_length" => {
                arity(1..=1, &format!("{}(TEXT)", name.to_ascii_uppercase()))?;
                let x = coerce(compiled.pop().expect("one argument"), DataType::Text)
                    .map_err(|e| self.err_at(whole, format!("{name} takes TEXT, not a {}", e.ty)))?;
                let nullable = x.nullable;
                let (builtin, ty) = match lower.as_str() {
                    "lower" => (Builtin::Lower, DataType::Text),
                    "upper" => (Builtin::Upper, DataType::Text),
                    _ => (Builtin::CharLength, DataType::BigInt),
                };
                Ok(node(ExprKind::Call(builtin, vec![x]), ty, nullable))
            }
            "to_timestamp_ltz" => {
                arity(2..=2, "TO_TIMESTAMP_LTZ(BIGINT epoch, 3 | 0)")?;
                let scale = match &args[1] {
                    ast::Expr::Value(v) => match &v.value {
                        ast::Value::Number(n, _) => n.parse::<u8>().ok(),
                        _ => None,
                    },
                    _ => None,
                };
                let builtin = match scale {
                    Some(3) => Builtin::EpochMillis,
                    Some(0) => Builtin::EpochSeconds,
                    _ => {
                        return Err(self.err_at(
                            args[1],
                            "TO_TIMESTAMP_LTZ's precision is 3 (epoch milliseconds) or 0 (epoch seconds)",
                        ));
                    }
                };
                compiled.truncate(1);
                let x = coerce(compiled.pop().expect("one argument"), DataType::BigInt).map_err(|e| {
                    self.err_at(whole, format!("TO_TIMESTAMP_LTZ takes a BIGINT epoch, not a {}", e.ty))
                })?;
                let nullable = x.nullable || builtin == Builtin::EpochSeconds;
                Ok(node(ExprKind::Call(builtin, vec![x]), DataType::Timestamp, nullable))
            }
            _ => match self.udf(&lower, FunctionKind::Scalar) {
                Some(index) => {
                    let f = &self.functions[index];
                    let args = check_udf_args(f, compiled).map_err(|m| self.err_at(whole, m))?;
                    Ok(node(ExprKind::Udf { function: index, args }, f.returns, f.nullable))
                }
                None => Err(self.err_at(whole, format!("unknown function `{name}`"))),
            },
        }
    }

    /// The index of the UDF `lower_name` of `kind`.
    pub fn udf(&self, lower_name: &str, kind: FunctionKind) -> Option<usize> {
        self.functions
            .iter()
            .position(|f| f.kind == kind && f.name.eq_ignore_ascii_case(lower_name))
    }

    /// The plain positional arguments of a call (no DISTINCT, no named arguments, no ORDER BY inside).
    pub fn plain_args<'c>(&self, whole: &ast::Expr, call: &'c ast::Function) -> Result<Vec<&'c ast::Expr>, SqlError> {
        let list = match &call.args {
            ast::FunctionArguments::None => return Ok(Vec::new()),
            ast::FunctionArguments::Subquery(_) => {
                return Err(self.err_at(whole, "subqueries are not supported; pass the table's columns"));
            }
            ast::FunctionArguments::List(list) => list,
        };
        if list.duplicate_treatment.is_some() {
            return Err(self.err_at(whole, "DISTINCT is supported in COUNT(DISTINCT x) only"));
        }
        if !list.clauses.is_empty() {
            return Err(self.err_at(whole, "clauses inside a call (ORDER BY, LIMIT, ...) are not supported"));
        }
        let mut out = Vec::with_capacity(list.args.len());
        for arg in &list.args {
            match arg {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => out.push(e),
                _ => {
                    return Err(self.err_at(
                        whole,
                        "only plain positional arguments are supported here (`*` only in COUNT(*))",
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Casts `parts` to one type: all equal, or BIGINT with DOUBLE (DOUBLE), or TEXT literals with TIMESTAMP
    /// (parsed), NULL literals taking the others' type.
    pub fn unify(&self, whole: &ast::Expr, parts: Vec<Expr>, what: &str) -> Result<(DataType, Vec<Expr>), SqlError> {
        let typed: Vec<DataType> = parts.iter().filter(|e| !is_null_literal(e)).map(|e| e.ty).collect();
        let target = if typed.is_empty() {
            DataType::BigInt
        } else if typed.iter().all(|t| *t == typed[0]) {
            typed[0]
        } else if typed.iter().all(|t| t.is_numeric()) {
            DataType::Double
        } else if typed.contains(&DataType::Timestamp)
            && typed.iter().all(|t| matches!(t, DataType::Timestamp | DataType::Text))
            && parts
                .iter()
                .all(|e| e.ty == DataType::Timestamp || matches!(e.kind, ExprKind::Literal(_)))
        {
            DataType::Timestamp
        } else {
            let names: Vec<String> = typed.iter().map(|t| t.to_string()).collect();
            return Err(self.err_at(
                whole,
                format!(
                    "{what} mixes {}; CAST the operands to one type, e.g. CAST(x AS DOUBLE)",
                    names.join(" and ")
                ),
            ));
        };
        let mut out = Vec::with_capacity(parts.len());
        for e in parts {
            if target == DataType::Timestamp
                && let ExprKind::Literal(Value::Text(s)) = &e.kind
            {
                match parse_timestamp(s) {
                    Some(ms) => out.push(Expr::literal(Value::Timestamp(ms), DataType::Timestamp)),
                    None => {
                        return Err(
                            self.err_at(whole, format!("'{s}' is not a timestamp; write '2024-01-01 00:00:00'"))
                        );
                    }
                }
                continue;
            }
            out.push(
                coerce(e, target)
                    .map_err(|e| self.err_at(whole, format!("{what}: cannot use a {} as a {target}", e.ty)))?,
            );
        }
        Ok((target, out))
    }
}

/// An expression node.
fn node(kind: ExprKind, ty: DataType, nullable: bool) -> Expr {
    Expr { kind, ty, nullable }
}

/// Whether `e` is the literal NULL (which takes any type).
pub(crate) fn is_null_literal(e: &Expr) -> bool {
    matches!(e.kind, ExprKind::Literal(Value::Null))
}

/// `e` as a `ty`: itself, a retyped NULL, or a BIGINT widened to DOUBLE; otherwise `Err(e)`.
pub(crate) fn coerce(e: Expr, ty: DataType) -> Result<Expr, Expr> {
    if is_null_literal(&e) {
        return Ok(Expr::literal(Value::Null, ty));
    }
    if e.ty == ty {
        return Ok(e);
    }
    if e.ty == DataType::BigInt && ty == DataType::Double {
        if let ExprKind::Literal(Value::Int(i)) = e.kind {
            return Ok(Expr::literal(Value::Float(i as f64), DataType::Double));
        }
        let nullable = e.nullable;
        return Ok(node(ExprKind::Cast(Box::new(e)), DataType::Double, nullable));
    }
    Err(e)
}

/// Checks a UDF call's arguments against its signature (a BIGINT widens to a DOUBLE parameter).
pub(crate) fn check_udf_args(f: &Function, args: Vec<Expr>) -> Result<Vec<Expr>, String> {
    if args.len() != f.args.len() {
        return Err(format!(
            "{} takes {} argument(s), not {}; the signature is {f}",
            f.name,
            f.args.len(),
            args.len()
        ));
    }
    args.into_iter()
        .zip(&f.args)
        .enumerate()
        .map(|(i, (a, ty))| {
            coerce(a, *ty).map_err(|a| {
                format!(
                    "argument {} of {} is a {}, the function takes a {ty}; the signature is {f}",
                    i + 1,
                    f.name,
                    a.ty
                )
            })
        })
        .collect()
}

/// A call's name as written (the last part of a qualified name).
pub(crate) fn function_name(call: &ast::Function) -> String {
    call.name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map_or_else(String::new, |i| i.value.clone())
}

/// The dialect's type for a declared SQL type, with `VARCHAR(n)`'s byte limit.
pub(crate) fn data_type(ty: &ast::DataType) -> Result<(DataType, Option<usize>), String> {
    use ast::DataType as D;
    let supported = "use TEXT, VARCHAR(n), BIGINT, DOUBLE, BOOLEAN or TIMESTAMP(3)";
    Ok(match ty {
        D::Text | D::String(_) => (DataType::Text, None),
        D::Varchar(len) | D::CharacterVarying(len) | D::CharVarying(len) | D::Nvarchar(len) => {
            let max = match len {
                None | Some(ast::CharacterLength::Max) => None,
                Some(ast::CharacterLength::IntegerLength { length, .. }) => {
                    if *length == 0 {
                        return Err("VARCHAR(0) holds nothing; give a positive length in bytes".into());
                    }
                    Some(usize::try_from(*length).unwrap_or(usize::MAX))
                }
            };
            (DataType::Text, max)
        }
        D::BigInt(_) | D::Int(_) | D::Integer(_) | D::Int64 | D::SmallInt(_) | D::TinyInt(_) => {
            (DataType::BigInt, None)
        }
        D::Double(_) | D::DoublePrecision | D::Float(_) | D::Float64 | D::Real | D::Float8 | D::Float4 => {
            (DataType::Double, None)
        }
        D::Boolean | D::Bool => (DataType::Boolean, None),
        D::Timestamp(precision, _) => {
            if precision.is_some_and(|p| p > 9) {
                return Err("TIMESTAMP precision is at most 9; values are kept in milliseconds".into());
            }
            (DataType::Timestamp, None)
        }
        D::Custom(name, _) if name.to_string().eq_ignore_ascii_case("TIMESTAMP_LTZ") => (DataType::Timestamp, None),
        other => return Err(format!("the type {other} is not supported; {supported}")),
    })
}

/// An interval's length in milliseconds: `INTERVAL '10' SECOND` (Flink) or `INTERVAL '10 seconds'` (Arroyo;
/// several `<number> <unit>` pairs add up). Units: millisecond, second, minute, hour, day (singular, plural or
/// short: ms, s, sec, min, h, d).
pub(crate) fn interval_ms(interval: &ast::Interval) -> Result<u64, String> {
    let hint = "write INTERVAL '10' SECOND or INTERVAL '10 seconds'";
    let text = match interval.value.as_ref() {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => s.clone(),
            ast::Value::Number(n, _) => n.clone(),
            _ => return Err(format!("an interval's value is a quoted number; {hint}")),
        },
        _ => return Err(format!("an interval's value is a quoted number; {hint}")),
    };
    if interval.last_field.is_some() || interval.fractional_seconds_precision.is_some() {
        return Err(format!("interval ranges (MINUTE TO SECOND) are not supported; {hint}"));
    }
    match &interval.leading_field {
        Some(field) => {
            let unit = match field {
                DateTimeField::Millisecond | DateTimeField::Milliseconds => 1,
                DateTimeField::Second | DateTimeField::Seconds => 1_000,
                DateTimeField::Minute | DateTimeField::Minutes => 60_000,
                DateTimeField::Hour | DateTimeField::Hours => 3_600_000,
                DateTimeField::Day | DateTimeField::Days => 86_400_000,
                other => {
                    return Err(format!(
                        "the interval unit {other} is not supported; use MILLISECOND, SECOND, MINUTE, HOUR or DAY"
                    ));
                }
            };
            scaled(text.trim(), unit).ok_or_else(|| format!("'{text}' is not a length of time; {hint}"))
        }
        None => {
            let words: Vec<&str> = text.split_whitespace().collect();
            if words.is_empty() || !words.len().is_multiple_of(2) {
                return Err(format!("'{text}' is not a length of time; {hint}"));
            }
            let mut total: u64 = 0;
            for pair in words.chunks(2) {
                let unit = match pair[1].to_ascii_lowercase().as_str() {
                    "ms" | "millisecond" | "milliseconds" => 1,
                    "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
                    "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
                    "h" | "hour" | "hours" => 3_600_000,
                    "d" | "day" | "days" => 86_400_000,
                    _ => {
                        return Err(format!(
                            "'{}' is not an interval unit; use milliseconds, seconds, minutes, hours or days",
                            pair[1]
                        ));
                    }
                };
                let part = scaled(pair[0], unit).ok_or_else(|| format!("'{text}' is not a length of time; {hint}"))?;
                total = total
                    .checked_add(part)
                    .ok_or_else(|| "the interval is too long".to_string())?;
            }
            Ok(total)
        }
    }
}

/// `number × unit` in whole milliseconds (`1.5` seconds is 1500); None when negative, fractional below a
/// millisecond or too long.
fn scaled(number: &str, unit: u64) -> Option<u64> {
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(unit);
    }
    let (whole, frac) = number.split_once('.')?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac_value: u64 = frac.parse().ok()?;
    let denominator = 10u64.pow(frac.len() as u32);
    let frac_ms = frac_value.checked_mul(unit)?;
    if frac_ms % denominator != 0 {
        return None;
    }
    whole.checked_mul(unit)?.checked_add(frac_ms / denominator)
}
