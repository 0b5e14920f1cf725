//! The window of a query: Flink's table functions in FROM (`TABLE(TUMBLE(TABLE t, DESCRIPTOR(col), size))`, `HOP`,
//! `SESSION`) and Arroyo's calls in GROUP BY (`tumble(size)`, `hop(slide, size)`, `session(gap)`), to a
//! [`WindowSpec`] with positive sizes; what FROM may hold besides.

use sqlparser::ast::{self, Spanned};
use sqlparser::tokenizer::Location;

use super::scalar::{Compiler, function_name, interval_ms};
use crate::error::SqlError;
use crate::parse::{error_at, start_of};
use crate::plan::{SourceTable, WindowSpec};

/// The window and where it came from.
pub(super) struct Window {
    /// The kind and sizes.
    pub(super) spec: WindowSpec,
    /// Given as a table function in FROM (else as a call in GROUP BY).
    pub(super) in_from: bool,
}

/// FROM: the qualifiers columns may use, and the window when it is given there.
pub(super) fn plan_from(
    c: &mut Compiler<'_>,
    table: &SourceTable,
    select: &ast::Select,
    select_at: Location,
) -> Result<(Vec<String>, Option<Window>), SqlError> {
    let text = c.text;
    let [from] = select.from.as_slice() else {
        if select.from.is_empty() {
            return Err(error_at(
                text,
                select_at,
                format!("the query needs FROM {}", table.name),
            ));
        }
        return Err(error_at(
            text,
            select_at,
            "a job reads one table; FROM lists more than one (joins are not supported yet)",
        ));
    };
    if let Some(join) = from.joins.first() {
        let at = join.relation.span().start;
        return Err(error_at(
            text,
            if at.line > 0 { at } else { select_at },
            "joins are not supported yet; a job reads one table",
        ));
    }
    let mut qualifiers = vec![table.name.clone()];
    let check_table = |name: &ast::ObjectName, at: Location| -> Result<(), SqlError> {
        let n = name.to_string();
        if n == table.name {
            Ok(())
        } else {
            Err(error_at(
                text,
                at,
                format!("unknown table `{n}`; the job's table is `{}`", table.name),
            ))
        }
    };
    match &from.relation {
        ast::TableFactor::Table { name, alias, args, .. } => {
            if args.is_some() {
                return Err(error_at(
                    text,
                    name.span().start,
                    "write a window table function as FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(col), INTERVAL '10' SECOND))",
                ));
            }
            check_table(name, name.span().start)?;
            if let Some(a) = alias {
                qualifiers.push(a.name.value.clone());
            }
            Ok((qualifiers, None))
        }
        ast::TableFactor::TableFunction { expr, alias } => {
            let ast::Expr::Function(call) = expr else {
                return Err(c.err_at(expr, "TABLE(...) in FROM holds TUMBLE, HOP or SESSION"));
            };
            let lower = function_name(call).to_ascii_lowercase();
            if !matches!(lower.as_str(), "tumble" | "hop" | "session") {
                return Err(c.err_at(
                    expr,
                    format!(
                        "TABLE({}(...)) is not a window; use TUMBLE, HOP or SESSION",
                        function_name(call)
                    ),
                ));
            }
            let args = c.plain_args(expr, call)?;
            let [table_arg, descriptor, rest @ ..] = args.as_slice() else {
                return Err(c.err_at(
                    expr,
                    format!(
                        "{} takes TABLE {}, DESCRIPTOR({}) and the interval(s)",
                        lower.to_ascii_uppercase(),
                        table.name,
                        table.slot_name(table.event_time)
                    ),
                ));
            };
            match table_arg {
                ast::Expr::Prefixed { prefix, value } if prefix.value == crate::dialect::TABLE_ARGUMENT => {
                    let ast::Expr::CompoundIdentifier(parts) = value.as_ref() else {
                        return Err(c.err_at(table_arg, "write the table argument as TABLE name"));
                    };
                    let name = ast::ObjectName::from(parts.clone());
                    check_table(&name, start_of(table_arg))?;
                }
                other => {
                    return Err(c.err_at(
                        other,
                        format!("the first argument of the window is the table: TABLE {}", table.name),
                    ));
                }
            }
            let event_time = table.slot_name(table.event_time);
            let described = match descriptor {
                ast::Expr::Function(d) if function_name(d).eq_ignore_ascii_case("descriptor") => {
                    match c.plain_args(descriptor, d)?.as_slice() {
                        [ast::Expr::Identifier(id)] => Some(id),
                        _ => None,
                    }
                }
                _ => None,
            };
            let Some(col) = described else {
                return Err(c.err_at(
                    descriptor,
                    format!("the second argument of the window is the time column: DESCRIPTOR({event_time})"),
                ));
            };
            if col.value != event_time {
                return Err(c.err_at(
                    descriptor,
                    format!(
                        "the window's DESCRIPTOR({}) is not the watermark's column; windows follow the event time: DESCRIPTOR({event_time})",
                        col.value
                    ),
                ));
            }
            let spec = window_spec(c, expr, &lower, rest)?;
            if let Some(a) = alias {
                qualifiers.push(a.name.value.clone());
            }
            Ok((qualifiers, Some(Window { spec, in_from: true })))
        }
        ast::TableFactor::Derived { .. } => Err(error_at(
            text,
            select_at,
            "subqueries are not supported; read the table directly",
        )),
        other => {
            let at = other.span().start;
            Err(error_at(
                text,
                if at.line > 0 { at } else { select_at },
                format!(
                    "FROM takes the table `{0}` or TABLE(TUMBLE|HOP|SESSION(TABLE {0}, DESCRIPTOR(...), ...))",
                    table.name
                ),
            ))
        }
    }
}

/// A window's sizes from its interval arguments: TUMBLE(size), HOP(slide, size), SESSION(gap).
pub(super) fn window_spec(
    c: &Compiler<'_>,
    whole: &ast::Expr,
    kind: &str,
    args: &[&ast::Expr],
) -> Result<WindowSpec, SqlError> {
    let expected = match kind {
        "tumble" => "TUMBLE takes one interval, the size: INTERVAL '10' SECOND",
        "hop" => "HOP takes two intervals, the slide then the size: INTERVAL '5' SECOND, INTERVAL '1' MINUTE",
        _ => "SESSION takes one interval, the gap: INTERVAL '30' SECOND",
    };
    let want = if kind == "hop" { 2 } else { 1 };
    if args.len() != want {
        return Err(c.err_at(whole, expected));
    }
    let mut ms = Vec::with_capacity(2);
    for a in args {
        let ast::Expr::Interval(interval) = a else {
            return Err(c.err_at(a, expected));
        };
        let v = interval_ms(interval).map_err(|m| c.err_at(a, m))?;
        if v == 0 {
            return Err(c.err_at(a, "a window's interval must be positive"));
        }
        ms.push(v);
    }
    Ok(match kind {
        "tumble" => WindowSpec::Tumble { size_ms: ms[0] },
        "hop" => {
            let (slide_ms, size_ms) = (ms[0], ms[1]);
            if slide_ms > size_ms {
                return Err(c.err_at(
                    whole,
                    format!(
                        "HOP's slide ({slide_ms} ms) is longer than its size ({size_ms} ms); the arguments are the slide, then the size"
                    ),
                ));
            }
            WindowSpec::Hop { slide_ms, size_ms }
        }
        _ => WindowSpec::Session { gap_ms: ms[0] },
    })
}
