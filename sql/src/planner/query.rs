//! The `SELECT` to [`Query`]: the window (found by `window.rs`, in FROM or in GROUP BY), the
//! keys, WHERE, the aggregates (each computed once), the outputs in their fixed order, HAVING. Everything the
//! dialect does not run is refused here with what to write instead.

use sqlparser::ast::{self, Spanned};
use sqlparser::tokenizer::Location;

use super::scalar::{Compiler, Scope, check_udf_args, coerce, function_name};
use super::table::{Resolved, RowNames, RowScope, WINDOW_BOUNDS};
use super::window::{JoinFrom, Window, plan_from, window_spec};
use crate::error::SqlError;
use crate::expr::Expr;
use crate::function::FunctionKind;
use crate::parse::{error_at, start_of};
use crate::plan::{AggFunc, AggSpec, Key, Output, OutputRole, Query, SourceTable, TemporalJoin};
use crate::value::DataType;

/// The group row's names: keys, window bounds, aggregates (collected as they are met).
struct GroupScope<'t> {
    /// The input row's names (the arguments of aggregates, FILTER).
    names: RowNames,
    /// The stream's name, for messages.
    table: &'t str,
    keys: Vec<Key>,
    aggregates: Vec<AggSpec>,
}

impl GroupScope<'_> {
    fn row_scope(&self, clause: (&'static str, &'static str)) -> RowScope<'_> {
        RowScope {
            names: self.names.clone(),
            table: self.table,
            clause,
        }
    }

    fn at(&mut self, c: &mut Compiler<'_>, qualifier: Option<&str>, name: &ast::Ident) -> Result<Expr, SqlError> {
        let k = self.keys.len();
        let resolved = self.names.resolve(qualifier, &name.value);
        if let Resolved::Slot(slot) = resolved
            && let Some(i) = self.keys.iter().position(|key| key.slot == slot)
        {
            return Ok(Expr::slot(i, self.keys[i].ty, self.keys[i].nullable));
        }
        if qualifier.is_none() {
            match name.value.as_str() {
                "window_start" => return Ok(Expr::slot(k, DataType::Timestamp, false)),
                "window_end" => return Ok(Expr::slot(k + 1, DataType::Timestamp, false)),
                _ => {}
            }
        }
        if let Resolved::Slot(_) = resolved {
            return Err(c.err_loc(
                name.span.start,
                format!(
                    "the column `{0}` is neither in GROUP BY nor inside an aggregate; add it to GROUP BY or aggregate it, e.g. LAST_VALUE({0})",
                    name.value
                ),
            ));
        }
        let message = self
            .names
            .error(qualifier, &name.value, "the SELECT list", self.table)
            .unwrap_or_default();
        Err(c.err_loc(name.span.start, message))
    }
}

impl Scope for GroupScope<'_> {
    fn column(&mut self, c: &mut Compiler<'_>, name: &ast::Ident) -> Result<Expr, SqlError> {
        self.at(c, None, name)
    }

    fn qualified(&mut self, c: &mut Compiler<'_>, qualifier: &str, name: &ast::Ident) -> Result<Expr, SqlError> {
        self.at(c, Some(qualifier), name)
    }

    fn aggregate(&mut self, c: &mut Compiler<'_>, call: &ast::Function) -> Result<Expr, SqlError> {
        let whole = ast::Expr::Function(call.clone());
        let spec = self.aggregate_spec(c, &whole, call)?;
        let (ty, nullable) = (spec.ty, spec.nullable);
        let index = match self.aggregates.iter().position(|a| *a == spec) {
            Some(i) => i,
            None => {
                self.aggregates.push(spec);
                self.aggregates.len() - 1
            }
        };
        Ok(Expr::slot(self.keys.len() + 2 + index, ty, nullable))
    }

    fn qualifier_ok(&self, qualifier: &str) -> bool {
        self.names.qualifier_ok(qualifier)
    }
}

impl GroupScope<'_> {
    fn aggregate_spec(
        &self,
        c: &mut Compiler<'_>,
        whole: &ast::Expr,
        call: &ast::Function,
    ) -> Result<AggSpec, SqlError> {
        let name = function_name(call);
        let lower = name.to_ascii_lowercase();
        if !call.within_group.is_empty() || call.null_treatment.is_some() {
            return Err(c.err_at(
                whole,
                format!("{name}: WITHIN GROUP and IGNORE/RESPECT NULLS are not supported"),
            ));
        }
        let list = match &call.args {
            ast::FunctionArguments::List(list) => list,
            _ => return Err(c.err_at(whole, format!("{name} needs an argument: {name}(x)"))),
        };
        if !list.clauses.is_empty() {
            return Err(c.err_at(
                whole,
                "clauses inside an aggregate (ORDER BY, LIMIT, ...) are not supported",
            ));
        }
        let distinct = matches!(list.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct));
        let filter = match &call.filter {
            Some(f) => {
                let mut scope = self.row_scope(("FILTER", "aggregates cannot be nested"));
                Some(c.condition(f, &mut scope, "FILTER (WHERE ...)")?)
            }
            None => None,
        };
        let star = matches!(
            list.args.as_slice(),
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)]
        );
        if star {
            if lower != "count" {
                return Err(c.err_at(whole, format!("`*` is an argument of COUNT only; write {name}(column)")));
            }
            if distinct {
                return Err(c.err_at(
                    whole,
                    "COUNT(DISTINCT *) is not supported; count the distinct values of a column",
                ));
            }
            return Ok(AggSpec {
                func: AggFunc::CountStar,
                args: Vec::new(),
                distinct: false,
                filter,
                ty: DataType::BigInt,
                nullable: false,
            });
        }
        let mut raw = Vec::with_capacity(list.args.len());
        for arg in &list.args {
            match arg {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => raw.push(e),
                _ => return Err(c.err_at(whole, format!("{name} takes plain positional arguments"))),
            }
        }
        let mut args = Vec::with_capacity(raw.len());
        for e in &raw {
            let mut scope = self.row_scope((
                "an aggregate's argument",
                "aggregates cannot be nested; aggregate the column itself",
            ));
            args.push(c.compile(e, &mut scope)?);
        }
        if distinct && lower != "count" {
            return Err(c.err_at(whole, "DISTINCT is supported in COUNT(DISTINCT x) only"));
        }
        if let Some(index) = c.udf(&lower, FunctionKind::Aggregate) {
            let f = &c.functions[index];
            let args = check_udf_args(f, args).map_err(|m| c.err_at(whole, m))?;
            return Ok(AggSpec {
                func: AggFunc::Udf { function: index },
                args,
                distinct: false,
                filter,
                ty: f.returns,
                nullable: f.nullable,
            });
        }
        if args.len() != 1 {
            return Err(c.err_at(
                whole,
                format!(
                    "{} takes one argument: {}(x)",
                    name.to_ascii_uppercase(),
                    name.to_ascii_uppercase()
                ),
            ));
        }
        let func = match lower.as_str() {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "avg" => AggFunc::Avg,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "stddev_pop" => AggFunc::StddevPop,
            "stddev_samp" | "stddev" => AggFunc::StddevSamp,
            "var_pop" => AggFunc::VarPop,
            "var_samp" | "variance" => AggFunc::VarSamp,
            "first_value" => AggFunc::FirstValue,
            _ => AggFunc::LastValue,
        };
        let arg_ty = args[0].ty;
        let numeric_only = matches!(
            func,
            AggFunc::Sum | AggFunc::Avg | AggFunc::StddevPop | AggFunc::StddevSamp | AggFunc::VarPop | AggFunc::VarSamp
        );
        if numeric_only && !arg_ty.is_numeric() {
            let what = if arg_ty == DataType::Text {
                "an aggregate of a TEXT column"
            } else {
                "an aggregate of a non-numeric value"
            };
            return Err(c.err_at(
                whole,
                format!(
                    "{} of a {arg_ty} is not defined ({what}); TEXT allows COUNT, MIN, MAX, FIRST_VALUE and LAST_VALUE, and a condition counts with COUNT(*) FILTER (WHERE ...)",
                    func.name()
                ),
            ));
        }
        // A window holds at least one row: an aggregate of a NOT NULL argument without FILTER always has a value,
        // but for a BIGINT sum that overflows and the sample statistics of a single row.
        let empty = filter.is_some() || args[0].nullable;
        let (ty, nullable) = match func {
            AggFunc::Count => (DataType::BigInt, false),
            AggFunc::Sum if arg_ty == DataType::BigInt => (arg_ty, true),
            AggFunc::Sum | AggFunc::Min | AggFunc::Max | AggFunc::FirstValue | AggFunc::LastValue => (arg_ty, empty),
            AggFunc::StddevSamp | AggFunc::VarSamp => (DataType::Double, true),
            _ => (DataType::Double, empty),
        };
        // The variance family and AVG work in DOUBLE: widen once, in the argument.
        if ty == DataType::Double && arg_ty == DataType::BigInt && !matches!(func, AggFunc::Sum) {
            let a = args.pop().expect("one argument");
            args.push(coerce(a, DataType::Double).unwrap_or_else(|e| e));
        }
        Ok(AggSpec {
            func,
            args,
            distinct,
            filter,
            ty,
            nullable,
        })
    }
}

/// The planned query: the SELECT, which table it reads, and its temporal join.
pub(crate) struct Planned {
    /// The SELECT.
    pub query: Query,
    /// The index of the stream among the tables.
    pub stream: usize,
    /// The temporal join, if any.
    pub join: Option<TemporalJoin>,
}

/// Plans the query over `tables` (whose key columns it marks).
pub(crate) fn plan_query(
    c: &mut Compiler<'_>,
    tables: &mut [SourceTable],
    query: &ast::Query,
    query_at: Location,
) -> Result<Planned, SqlError> {
    let text = c.text;
    if query.with.is_some() {
        return Err(error_at(
            text,
            query_at,
            "WITH (common table expressions) is not supported; write one SELECT over the table",
        ));
    }
    if let Some(order) = &query.order_by {
        let at = order_by_at(order).unwrap_or(query_at);
        return Err(error_at(
            text,
            at,
            "ORDER BY is not supported: each window's rows are emitted when the window closes; remove it",
        ));
    }
    if query.limit_clause.is_some() || query.fetch.is_some() {
        return Err(error_at(
            text,
            query_at,
            "LIMIT/FETCH is not supported: a stream has no end to count to; drop groups with HAVING instead",
        ));
    }
    let select = match query.body.as_ref() {
        ast::SetExpr::Select(s) => s,
        ast::SetExpr::SetOperation { op, .. } => {
            return Err(error_at(
                text,
                query_at,
                format!("{op} is not supported; a job computes one SELECT"),
            ));
        }
        ast::SetExpr::Query(_) => {
            return Err(error_at(
                text,
                query_at,
                "subqueries are not supported; write one SELECT over the table",
            ));
        }
        _ => {
            return Err(error_at(
                text,
                query_at,
                "the query must be a SELECT ... FROM ... GROUP BY ...",
            ));
        }
    };
    let select_at = select.select_token.0.span.start;
    if select.distinct.is_some() {
        return Err(error_at(
            text,
            select_at,
            "SELECT DISTINCT is not supported; GROUP BY the columns (with a window) gives each combination once per window",
        ));
    }
    if select.top.is_some()
        || select.into.is_some()
        || !select.lateral_views.is_empty()
        || select.prewhere.is_some()
        || !select.connect_by.is_empty()
        || !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || !select.sort_by.is_empty()
        || !select.named_window.is_empty()
        || select.qualify.is_some()
    {
        return Err(error_at(
            text,
            select_at,
            "this SELECT uses a clause the dialect does not have; it takes FROM, WHERE, GROUP BY and HAVING",
        ));
    }
    // FROM: the table, or a window table function over it; the temporal join.
    let from = plan_from(c, tables, select, select_at)?;
    let (stream, mut window) = (from.stream, from.window);
    let mut names = RowNames::of_table(&tables[stream], from.qualifiers);
    let join = match from.join {
        Some(j) => Some(plan_join_on(c, tables, stream, &mut names, j)?),
        None => None,
    };
    let split = tables[stream].slot_count();
    let table = &mut tables[stream];
    // GROUP BY: keys, and Arroyo's window calls.
    let group_exprs = match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, modifiers) => {
            if !modifiers.is_empty() {
                return Err(error_at(
                    text,
                    select_at,
                    "ROLLUP, CUBE and GROUPING SETS are not supported",
                ));
            }
            exprs.as_slice()
        }
        ast::GroupByExpr::All(_) => {
            return Err(error_at(
                text,
                select_at,
                "GROUP BY ALL is not supported; list the key columns",
            ));
        }
    };
    let mut keys: Vec<Key> = Vec::new();
    for g in group_exprs {
        if let Some((qualifier, id)) = names.column_ref(g) {
            if qualifier.is_none() && WINDOW_BOUNDS.contains(&id.value.as_str()) {
                continue;
            }
            let Resolved::Slot(slot) = names.resolve(qualifier, &id.value) else {
                let message = names
                    .error(qualifier, &id.value, "GROUP BY", &table.name)
                    .unwrap_or_default();
                return Err(error_at(text, id.span.start, message));
            };
            let (_, ty, nullable) = names.slots[slot].clone();
            // A key of the stream is present in every record it aggregates; one of the joined table is NULL
            // where no version matched.
            let nullable = slot >= split && nullable;
            if !matches!(ty, DataType::Text | DataType::BigInt | DataType::Boolean) {
                return Err(error_at(
                    text,
                    id.span.start,
                    format!(
                        "the key `{}` is a {ty}; keys are TEXT, BIGINT or BOOLEAN columns (aggregate it instead, e.g. MAX({}))",
                        id.value, id.value
                    ),
                ));
            }
            if keys.iter().any(|k| k.slot == slot) {
                return Err(error_at(
                    text,
                    id.span.start,
                    format!("`{}` is in GROUP BY twice; keep one", id.value),
                ));
            }
            keys.push(Key {
                name: id.value.clone(),
                column: id.value.clone(),
                slot,
                ty,
                nullable,
            });
            continue;
        }
        if let ast::Expr::Function(call) = g {
            let lower = function_name(call).to_ascii_lowercase();
            if matches!(lower.as_str(), "tumble" | "hop" | "session") {
                if window.is_some() {
                    let from = window.as_ref().is_some_and(|w| w.in_from);
                    return Err(c.err_at(
                        g,
                        if from {
                            "the window is already given in FROM TABLE(...); remove this one from GROUP BY"
                        } else {
                            "GROUP BY holds one window; remove this second one"
                        },
                    ));
                }
                let args = c.plain_args(g, call)?;
                let spec = window_spec(c, g, &lower, &args)?;
                window = Some(Window { spec, in_from: false });
                continue;
            }
        }
        return Err(c.err_at(
            g,
            "GROUP BY takes columns of the table and the window; to group by an expression, declare it as a computed column (`name AS expr` in CREATE TABLE) and group by that",
        ));
    }
    let Some(window) = window else {
        return Err(error_at(
            text,
            select_at,
            format!(
                "the query needs a window: FROM TABLE(TUMBLE(TABLE {0}, DESCRIPTOR({1}), INTERVAL '10' SECOND)) ... GROUP BY <keys>, window_start, window_end, or FROM {0} GROUP BY tumble(INTERVAL '10' SECOND), <keys>",
                table.name,
                table.slot_name(table.event_time)
            ),
        ));
    };
    if keys.is_empty() {
        return Err(error_at(
            text,
            select_at,
            "GROUP BY needs at least one key column besides the window, e.g. GROUP BY sensor_id, window_start, window_end",
        ));
    }
    for key in keys.iter().filter(|k| k.slot < split) {
        if let Some(col) = table.columns.get_mut(key.slot) {
            col.key = true;
            col.nullable = false;
        }
        if let Some(slot) = names.slots.get_mut(key.slot) {
            slot.2 = false;
        }
    }
    let table_name = table.name.clone();
    let mut scope = GroupScope {
        names: names.clone(),
        table: &table_name,
        keys,
        aggregates: Vec::new(),
    };
    // WHERE, over the input row.
    let filter = match &select.selection {
        Some(w) => {
            let mut row = scope.row_scope(("WHERE", "filter on aggregates with HAVING"));
            Some(c.condition(w, &mut row, "WHERE")?)
        }
        None => None,
    };
    // The select list.
    let k = scope.keys.len();
    let mut key_names: Vec<Option<(String, Location)>> = vec![None; k];
    let mut bound_names: [Option<(String, Location)>; 2] = [None, None];
    let mut values: Vec<(String, Location, Expr)> = Vec::new();
    for item in &select.projection {
        let (expr, alias) = match item {
            ast::SelectItem::UnnamedExpr(e) => (e, None),
            ast::SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
            _ => {
                return Err(error_at(
                    text,
                    item_at(item).unwrap_or(select_at),
                    "SELECT * is not supported; list the keys, window_start, window_end and the aggregates",
                ));
            }
        };
        let at = start_of(expr);
        let plain = names.column_ref(expr);
        let name_at = alias.map_or(at, |a| a.span.start);
        if let Some((qualifier, id)) = plain {
            let name = alias.map_or_else(|| id.value.clone(), |a| a.value.clone());
            let slot = match names.resolve(qualifier, &id.value) {
                Resolved::Slot(s) => Some(s),
                _ => None,
            };
            if let Some(i) = scope.keys.iter().position(|key| Some(key.slot) == slot)
                && key_names[i].is_none()
            {
                key_names[i] = Some((name, name_at));
                continue;
            }
            let bound = WINDOW_BOUNDS.iter().position(|b| qualifier.is_none() && *b == id.value);
            if let Some(b) = bound
                && bound_names[b].is_none()
            {
                bound_names[b] = Some((name, name_at));
                continue;
            }
            let e = c.compile(expr, &mut scope)?;
            values.push((name, name_at, e));
            continue;
        }
        let e = c.compile(expr, &mut scope)?;
        let Some(alias) = alias else {
            return Err(error_at(
                text,
                at,
                "this select item needs a name: add `AS name` after it",
            ));
        };
        values.push((alias.value.clone(), alias.span.start, e));
    }
    // HAVING, over the group row.
    let having = match &select.having {
        Some(h) => Some(c.condition(h, &mut scope, "HAVING")?),
        None => None,
    };
    // Outputs: keys, bounds, the rest.
    let mut outputs: Vec<(Output, Location)> = Vec::new();
    for (i, key) in scope.keys.iter_mut().enumerate() {
        let (name, at) = key_names[i].clone().unwrap_or_else(|| (key.column.clone(), select_at));
        key.name = name.clone();
        outputs.push((
            Output {
                name,
                ty: key.ty,
                nullable: key.nullable,
                role: OutputRole::Key(i),
                expr: Expr::slot(i, key.ty, key.nullable),
            },
            at,
        ));
    }
    for (b, role) in [OutputRole::WindowStart, OutputRole::WindowEnd].into_iter().enumerate() {
        let (name, at) = bound_names[b]
            .clone()
            .unwrap_or_else(|| (WINDOW_BOUNDS[b].to_string(), select_at));
        outputs.push((
            Output {
                name,
                ty: DataType::Timestamp,
                nullable: false,
                role,
                expr: Expr::slot(k + b, DataType::Timestamp, false),
            },
            at,
        ));
    }
    for (name, at, expr) in values {
        outputs.push((
            Output {
                name,
                ty: expr.ty,
                nullable: expr.nullable,
                role: OutputRole::Value,
                expr,
            },
            at,
        ));
    }
    for (i, (o, at)) in outputs.iter().enumerate() {
        if !valid_name(&o.name) {
            return Err(error_at(
                text,
                *at,
                format!(
                    "the output name `{}` is not usable as a Parquet column and JSON field; use letters, digits and _, not starting with a digit (at most 128 bytes)",
                    o.name
                ),
            ));
        }
        if outputs[..i].iter().any(|(p, _)| p.name.eq_ignore_ascii_case(&o.name)) {
            return Err(error_at(
                text,
                *at,
                format!(
                    "the output name `{}` is used twice (keys, window_start and window_end are always output); rename one with AS",
                    o.name
                ),
            ));
        }
    }
    let query = Query {
        window: window.spec,
        filter,
        keys: scope.keys,
        aggregates: scope.aggregates,
        outputs: outputs.into_iter().map(|(o, _)| o).collect(),
        having,
    };
    Ok(Planned { query, stream, join })
}

/// The join's `AS OF` and `ON`, resolved over the stream's names; the joined table's names are appended.
fn plan_join_on(
    c: &mut Compiler<'_>,
    tables: &[SourceTable],
    stream: usize,
    names: &mut RowNames,
    j: JoinFrom<'_>,
) -> Result<TemporalJoin, SqlError> {
    let text = c.text;
    let offset = names.slots.len();
    let (versioned, streamed) = (&tables[j.table], &tables[stream]);
    let alias = j.qualifiers.last().cloned().unwrap_or_default();
    names.join(versioned, j.qualifiers, j.left);
    let event_time = streamed.slot_name(streamed.event_time);
    let stream_name = names.qualifiers.last().cloned().unwrap_or_default();
    let as_of = names
        .column_ref(j.as_of)
        .and_then(|(q, id)| match names.resolve(q, &id.value) {
            Resolved::Slot(s) => Some(s),
            _ => None,
        });
    if as_of != Some(streamed.event_time) {
        return Err(c.err_at(
            j.as_of,
            format!(
                "FOR SYSTEM_TIME AS OF takes the stream's event time (its WATERMARK column): AS OF {stream_name}.{event_time}"
            ),
        ));
    }
    let key = offset + versioned.primary_key.unwrap_or(0);
    let key_name = versioned.slot_name(key - offset);
    let form = format!("ON {stream_name}.<column> = {alias}.{key_name}");
    let ast::Expr::BinaryOp {
        left,
        op: ast::BinaryOperator::Eq,
        right,
    } = j.on
    else {
        return Err(c.err_at(
            j.on,
            format!("the join's condition equates a column of the stream with the table's primary key: {form}"),
        ));
    };
    let slot_of = |e: &ast::Expr| {
        names
            .column_ref(e)
            .and_then(|(q, id)| match names.resolve(q, &id.value) {
                Resolved::Slot(s) => Some(s),
                _ => None,
            })
    };
    let probe = match (slot_of(left), slot_of(right)) {
        (Some(a), Some(b)) if b == key && a < offset => a,
        (Some(a), Some(b)) if a == key && b < offset => b,
        _ => {
            return Err(c.err_at(
                j.on,
                format!("the join's condition equates a column of the stream with the table's primary key: {form}"),
            ));
        }
    };
    let (probe_ty, key_ty) = (names.slots[probe].1, names.slots[key].1);
    if probe_ty != key_ty {
        return Err(c.err_at(
            j.on,
            format!(
                "the join compares a {probe_ty} with the {key_ty} key `{alias}.{key_name}`; declare `{}` as {key_ty}",
                names.slots[probe].0
            ),
        ));
    }
    let _ = (text, j.at);
    Ok(TemporalJoin {
        table: versioned.clone(),
        alias,
        left: j.left,
        probe,
        offset,
    })
}

/// An output name fit for a Parquet column and a JSON field.
fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 128
}

fn item_at(item: &ast::SelectItem) -> Option<Location> {
    let at = item.span().start;
    (at.line > 0).then_some(at)
}

fn order_by_at(order: &ast::OrderBy) -> Option<Location> {
    let at = order.span().start;
    (at.line > 0).then_some(at)
}
