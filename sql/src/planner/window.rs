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

/// What FROM says: the stream read (by its index among the tables), the names its columns may be qualified
/// with, the temporal join, and the window when it is given there.
pub(super) struct From<'q> {
    /// The stream's index among the tables.
    pub(super) stream: usize,
    /// The stream's qualifiers (its name, its alias).
    pub(super) qualifiers: Vec<String>,
    /// The temporal join, if any.
    pub(super) join: Option<JoinFrom<'q>>,
    /// The window, when FROM gives it.
    pub(super) window: Option<Window>,
}

/// `[LEFT] JOIN t FOR SYSTEM_TIME AS OF <time> [AS d] ON <condition>`, names not yet resolved.
pub(super) struct JoinFrom<'q> {
    /// The joined table's index among the tables.
    pub(super) table: usize,
    /// Its qualifiers (its name, its alias).
    pub(super) qualifiers: Vec<String>,
    /// `LEFT [OUTER] JOIN`.
    pub(super) left: bool,
    /// The `AS OF` time.
    pub(super) as_of: &'q ast::Expr,
    /// The `ON` condition.
    pub(super) on: &'q ast::Expr,
    /// Where the joined table is named.
    pub(super) at: Location,
}

/// FROM: the stream, the join and the window when it is given there.
pub(super) fn plan_from<'q>(
    c: &mut Compiler<'_>,
    tables: &[SourceTable],
    select: &'q ast::Select,
    select_at: Location,
) -> Result<From<'q>, SqlError> {
    let text = c.text;
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let listed = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let [from] = select.from.as_slice() else {
        if select.from.is_empty() {
            return Err(error_at(text, select_at, format!("the query needs FROM {}", names[0])));
        }
        return Err(error_at(
            text,
            select_at,
            "FROM lists more than one table; join a versioned table with JOIN t FOR SYSTEM_TIME AS OF ... ON ...",
        ));
    };
    let table_index = |name: &ast::ObjectName, at: Location| -> Result<usize, SqlError> {
        let n = name.to_string();
        names
            .iter()
            .position(|t| *t == n)
            .ok_or_else(|| error_at(text, at, format!("unknown table `{n}`; the job's tables are {listed}")))
    };
    let (stream, qualifiers, window) = match &from.relation {
        ast::TableFactor::Table {
            name,
            alias,
            args,
            version,
            ..
        } => {
            if args.is_some() {
                return Err(error_at(
                    text,
                    name.span().start,
                    "write a window table function as FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(col), INTERVAL '10' SECOND))",
                ));
            }
            if version.is_some() {
                return Err(error_at(
                    text,
                    name.span().start,
                    "FOR SYSTEM_TIME AS OF belongs to the joined table: FROM stream r JOIN versioned FOR SYSTEM_TIME AS OF r.<event time> AS d ON ...",
                ));
            }
            let index = table_index(name, name.span().start)?;
            let mut qualifiers = vec![tables[index].name.clone()];
            if let Some(a) = alias {
                qualifiers.push(a.name.value.clone());
            }
            (index, qualifiers, None)
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
                        tables[0].name,
                        tables[0].slot_name(tables[0].event_time)
                    ),
                ));
            };
            let index = match table_arg {
                ast::Expr::Prefixed { prefix, value } if prefix.value == crate::dialect::TABLE_ARGUMENT => {
                    let ast::Expr::CompoundIdentifier(parts) = value.as_ref() else {
                        return Err(c.err_at(table_arg, "write the table argument as TABLE name"));
                    };
                    let name = ast::ObjectName::from(parts.clone());
                    table_index(&name, start_of(table_arg))?
                }
                other => {
                    return Err(c.err_at(
                        other,
                        format!(
                            "the first argument of the window is the table: TABLE {}",
                            tables[0].name
                        ),
                    ));
                }
            };
            let table = &tables[index];
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
            let mut qualifiers = vec![table.name.clone()];
            if let Some(a) = alias {
                qualifiers.push(a.name.value.clone());
            }
            (index, qualifiers, Some(Window { spec, in_from: true }))
        }
        ast::TableFactor::Derived { .. } => {
            return Err(error_at(
                text,
                select_at,
                "subqueries are not supported; read the table directly",
            ));
        }
        other => {
            let at = other.span().start;
            return Err(error_at(
                text,
                if at.line > 0 { at } else { select_at },
                format!(
                    "FROM takes the table `{0}` or TABLE(TUMBLE|HOP|SESSION(TABLE {0}, DESCRIPTOR(...), ...))",
                    tables[0].name
                ),
            ));
        }
    };
    if tables[stream].primary_key.is_some() {
        return Err(error_at(
            text,
            select_at,
            format!(
                "`{}` has a PRIMARY KEY: it is a versioned table, which a query joins (JOIN {} FOR SYSTEM_TIME AS OF ...) rather than reads",
                tables[stream].name, tables[stream].name
            ),
        ));
    }
    let join = match from.joins.as_slice() {
        [] => None,
        [join] => Some(plan_join(c, tables, stream, join, select_at)?),
        [_, second, ..] => {
            let at = second.relation.span().start;
            return Err(error_at(
                text,
                if at.line > 0 { at } else { select_at },
                "a query joins one versioned table; remove this second join",
            ));
        }
    };
    if join.is_none()
        && let Some(unused) = (0..tables.len()).find(|&i| i != stream)
    {
        return Err(error_at(
            text,
            select_at,
            format!(
                "the table `{}` is declared but not joined; join it (JOIN {} FOR SYSTEM_TIME AS OF ... ON ...) or remove it",
                tables[unused].name, tables[unused].name
            ),
        ));
    }
    Ok(From {
        stream,
        qualifiers,
        join,
        window,
    })
}

/// One `JOIN` of FROM: only an event-time temporal join of the other table.
fn plan_join<'q>(
    c: &mut Compiler<'_>,
    tables: &[SourceTable],
    stream: usize,
    join: &'q ast::Join,
    select_at: Location,
) -> Result<JoinFrom<'q>, SqlError> {
    let text = c.text;
    let at = join.relation.span().start;
    let at = if at.line > 0 { at } else { select_at };
    let form = "join a versioned table as of each record's event time: [LEFT] JOIN t FOR SYSTEM_TIME AS OF r.<event time> AS d ON r.<column> = d.<primary key>";
    let (left, constraint) = match &join.join_operator {
        ast::JoinOperator::Join(k) | ast::JoinOperator::Inner(k) => (false, k),
        ast::JoinOperator::Left(k) | ast::JoinOperator::LeftOuter(k) => (true, k),
        _ => {
            return Err(error_at(
                text,
                at,
                format!("only JOIN and LEFT JOIN are supported; {form}"),
            ));
        }
    };
    let ast::JoinConstraint::On(on) = constraint else {
        return Err(error_at(text, at, format!("the join needs an ON condition; {form}")));
    };
    let ast::TableFactor::Table {
        name,
        alias,
        version,
        args,
        ..
    } = &join.relation
    else {
        return Err(error_at(text, at, form));
    };
    let Some(ast::TableVersion::ForSystemTimeAsOf(as_of)) = version else {
        return Err(error_at(
            text,
            at,
            format!(
                "a stream joins a table only as of its event time (a join of two streams is not supported); {form}"
            ),
        ));
    };
    if args.is_some() {
        return Err(error_at(text, at, form));
    }
    let n = name.to_string();
    let Some(table) = tables.iter().position(|t| t.name == n) else {
        let listed = tables
            .iter()
            .map(|t| format!("`{}`", t.name))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(error_at(
            text,
            at,
            format!("unknown table `{n}`; the job's tables are {listed}"),
        ));
    };
    if table == stream {
        return Err(error_at(text, at, format!("a table cannot join itself; {form}")));
    }
    if tables[table].primary_key.is_none() {
        return Err(error_at(
            text,
            at,
            format!(
                "`{n}` has no PRIMARY KEY: a table joined FOR SYSTEM_TIME AS OF is versioned by its key; add PRIMARY KEY (<column>) NOT ENFORCED"
            ),
        ));
    }
    let mut qualifiers = vec![n];
    if let Some(a) = alias {
        qualifiers.push(a.name.value.clone());
    }
    Ok(JoinFrom {
        table,
        qualifiers,
        left,
        as_of,
        on,
        at,
    })
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
