//! `CREATE TABLE` to [`SourceTable`]: column types and constraints, computed columns, the watermark, the
//! connector options. Also the input-row [`RowScope`] the query's row expressions resolve names in.

use sqlparser::ast;

use super::scalar::{Compiler, Scope, data_type, interval_ms};
use crate::error::SqlError;
use crate::expr::Expr;
use crate::parse::{Element, TableDef, error_at, start_of};
use crate::plan::{Check, Column, Computed, Connector, SourceTable, StartupMode};
use crate::value::DataType;

/// Names reserved for the window bounds of the group row.
pub(crate) const WINDOW_BOUNDS: [&str; 2] = ["window_start", "window_end"];

/// The reason code of an unnamed CHECK.
pub const CHECK_FAILED: &str = "check_failed";

/// Options every table may take, besides `properties.*`.
const KNOWN_OPTIONS: &str = "'connector', 'format', 'topic', 'path', 'properties.bootstrap.servers', \
                             'properties.group.id', 'properties.<librdkafka setting>', 'scan.startup.mode'";

/// The input row's names: the stream's slots, then (with a temporal join) the joined table's.
#[derive(Clone, Debug)]
pub(crate) struct RowNames {
    /// `(name, type, nullable)` by slot.
    pub slots: Vec<(String, DataType, bool)>,
    /// Names a qualified column of the stream may use (`readings.co2`, `r.co2`).
    pub qualifiers: Vec<String>,
    /// With a temporal join: the names a qualified column of the joined table may use, and its first slot.
    pub joined: Option<(Vec<String>, usize)>,
}

/// What a column reference names.
pub(crate) enum Resolved {
    /// The slot.
    Slot(usize),
    /// No column of that name (under that qualifier).
    Unknown,
    /// Columns of both tables have the name: the reference must be qualified.
    Ambiguous,
}

impl RowNames {
    /// The names of one table's slots.
    pub fn of_table(table: &SourceTable, qualifiers: Vec<String>) -> RowNames {
        RowNames {
            slots: (0..table.slot_count())
                .map(|s| {
                    let nullable = match table.columns.get(s) {
                        Some(c) => c.nullable,
                        None => table.computed[s - table.columns.len()].expr.nullable,
                    };
                    (
                        table.slot_name(s).to_string(),
                        table.slot_type(s).unwrap_or(DataType::BigInt),
                        nullable,
                    )
                })
                .collect(),
            qualifiers,
            joined: None,
        }
    }

    /// Appends the joined table's slots (each nullable when `left`).
    pub fn join(&mut self, table: &SourceTable, qualifiers: Vec<String>, left: bool) {
        let offset = self.slots.len();
        let other = RowNames::of_table(table, Vec::new());
        self.slots.extend(
            other
                .slots
                .into_iter()
                .map(|(n, ty, nullable)| (n, ty, nullable || left)),
        );
        self.joined = Some((qualifiers, offset));
    }

    /// Whether `qualifier` names one of the tables.
    pub fn qualifier_ok(&self, qualifier: &str) -> bool {
        self.qualifiers.iter().any(|q| q == qualifier)
            || self
                .joined
                .as_ref()
                .is_some_and(|(q, _)| q.iter().any(|q| q == qualifier))
    }

    /// The slot `qualifier.name` (or `name` alone) refers to.
    pub fn resolve(&self, qualifier: Option<&str>, name: &str) -> Resolved {
        let split = self.joined.as_ref().map_or(self.slots.len(), |(_, at)| *at);
        let range = match (qualifier, &self.joined) {
            (None, _) => 0..self.slots.len(),
            (Some(q), _) if self.qualifiers.iter().any(|x| x == q) => 0..split,
            (Some(_), Some(_)) => split..self.slots.len(),
            (Some(_), None) => return Resolved::Unknown,
        };
        let mut found = range.filter(|&s| self.slots[s].0 == name);
        match (found.next(), found.next()) {
            (Some(s), None) => Resolved::Slot(s),
            (Some(_), Some(_)) => Resolved::Ambiguous,
            (None, _) => Resolved::Unknown,
        }
    }

    /// The slot of a column reference `expr` (`name` or `qualifier.name`), if it is one.
    pub fn column_ref<'e>(&self, expr: &'e ast::Expr) -> Option<(Option<&'e str>, &'e ast::Ident)> {
        match expr {
            ast::Expr::Identifier(id) => Some((None, id)),
            ast::Expr::CompoundIdentifier(parts) if parts.len() == 2 && self.qualifier_ok(&parts[0].value) => {
                Some((Some(parts[0].value.as_str()), &parts[1]))
            }
            _ => None,
        }
    }

    /// The slot names, as messages list them (`d.`-qualified for the joined table's).
    pub fn listed(&self) -> String {
        let split = self
            .joined
            .as_ref()
            .map(|(q, at)| (q.last().cloned().unwrap_or_default(), *at));
        self.slots
            .iter()
            .enumerate()
            .map(|(i, (n, ..))| match &split {
                Some((q, at)) if i >= *at => format!("{q}.{n}"),
                _ => n.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The error of a reference to `qualifier.name` that does not resolve, or `None` when it does.
    pub fn error(&self, qualifier: Option<&str>, name: &str, clause: &str, table: &str) -> Option<String> {
        match self.resolve(qualifier, name) {
            Resolved::Slot(_) => None,
            Resolved::Ambiguous => {
                let (stream, joined) = (
                    self.qualifiers.last().map_or("", String::as_str),
                    self.joined
                        .as_ref()
                        .and_then(|(q, _)| q.last())
                        .map_or("", String::as_str),
                );
                Some(format!(
                    "the column `{name}` in {clause} is in both tables; qualify it: {stream}.{name} or {joined}.{name}"
                ))
            }
            Resolved::Unknown => {
                let bounds = if WINDOW_BOUNDS.contains(&name) {
                    " (window bounds exist per group: use them in the SELECT list or HAVING)"
                } else {
                    ""
                };
                let what = match qualifier {
                    Some(q) => format!("`{q}.{name}`"),
                    None => format!("`{name}`"),
                };
                let tables = if self.joined.is_some() {
                    "the tables have"
                } else {
                    "the table `"
                };
                let tables = if self.joined.is_some() {
                    tables.to_string()
                } else {
                    format!("{tables}{table}` has")
                };
                Some(format!(
                    "unknown column {what} in {clause}{bounds}; {tables} the columns {}",
                    self.listed()
                ))
            }
        }
    }
}

/// Names in an expression over the input row.
pub(crate) struct RowScope<'t> {
    /// The row's names.
    pub names: RowNames,
    /// The table's name, for messages.
    pub table: &'t str,
    /// Where the expression stands and what to do about an aggregate there, e.g.
    /// `("WHERE", "filter groups on aggregates with HAVING")`.
    pub clause: (&'static str, &'static str),
}

impl RowScope<'_> {
    fn at(&mut self, c: &mut Compiler<'_>, qualifier: Option<&str>, name: &ast::Ident) -> Result<Expr, SqlError> {
        match self.names.resolve(qualifier, &name.value) {
            Resolved::Slot(slot) => {
                let (_, ty, nullable) = &self.names.slots[slot];
                Ok(Expr::slot(slot, *ty, *nullable))
            }
            _ => {
                let message = self
                    .names
                    .error(qualifier, &name.value, self.clause.0, self.table)
                    .unwrap_or_default();
                Err(c.err_loc(name.span.start, message))
            }
        }
    }
}

impl Scope for RowScope<'_> {
    fn column(&mut self, c: &mut Compiler<'_>, name: &ast::Ident) -> Result<Expr, SqlError> {
        self.at(c, None, name)
    }

    fn qualified(&mut self, c: &mut Compiler<'_>, qualifier: &str, name: &ast::Ident) -> Result<Expr, SqlError> {
        self.at(c, Some(qualifier), name)
    }

    fn aggregate(&mut self, c: &mut Compiler<'_>, call: &ast::Function) -> Result<Expr, SqlError> {
        let at = call
            .name
            .0
            .first()
            .map(|p| sqlparser::ast::Spanned::span(p).start)
            .unwrap_or(sqlparser::tokenizer::Location::of(0, 0));
        Err(c.err_loc(
            at,
            format!(
                "aggregate functions are not allowed in {}; {}",
                self.clause.0, self.clause.1
            ),
        ))
    }

    fn qualifier_ok(&self, qualifier: &str) -> bool {
        self.names.qualifier_ok(qualifier)
    }
}

/// Plans the table. Keys are marked later, by the query.
pub(crate) fn plan_table(c: &mut Compiler<'_>, def: &TableDef) -> Result<SourceTable, SqlError> {
    let text = c.text;
    let name = match def.name.0.as_slice() {
        [part] => part.as_ident().map(|i| i.value.clone()).unwrap_or_default(),
        _ => {
            return Err(error_at(
                text,
                def.at,
                "give the table a plain name (no catalog or database): CREATE TABLE readings (...)",
            ));
        }
    };
    let mut columns: Vec<Column> = Vec::new();
    let mut computed_defs: Vec<(&ast::Ident, &ast::Expr)> = Vec::new();
    let mut watermark: Option<(&ast::Ident, &ast::Expr, sqlparser::tokenizer::Location)> = None;
    let mut checks: Vec<(usize, &crate::parse::CheckDef)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut primary: Option<(ast::Ident, sqlparser::tokenizer::Location)> = None;
    let mut set_primary = |col: &ast::Ident, at| {
        if primary.is_some() {
            return Err(error_at(
                text,
                at,
                "a table has one PRIMARY KEY; remove this second one",
            ));
        }
        primary = Some((col.clone(), at));
        Ok(())
    };
    let check_name = |ident: &ast::Ident, seen: &mut Vec<&str>| -> Result<(), SqlError> {
        let n = ident.value.as_str();
        if WINDOW_BOUNDS.contains(&n) {
            return Err(error_at(
                text,
                ident.span.start,
                format!("`{n}` is the name of a window bound; rename the column"),
            ));
        }
        if seen.contains(&n) {
            return Err(error_at(
                text,
                ident.span.start,
                format!("the column `{n}` is declared twice; rename one"),
            ));
        }
        Ok(())
    };
    for element in &def.elements {
        match element {
            Element::Column {
                name: col,
                ty,
                ty_at,
                not_null,
                checks: col_checks,
                primary: col_primary,
            } => {
                check_name(col, &mut seen)?;
                if let Some(at) = col_primary {
                    set_primary(col, *at)?;
                }
                seen.push(col.value.as_str());
                let (ty, max_bytes) = data_type(ty).map_err(|m| error_at(text, *ty_at, m))?;
                if max_bytes.is_some() && ty != DataType::Text {
                    return Err(error_at(text, *ty_at, "a length applies to VARCHAR only"));
                }
                for check in col_checks {
                    checks.push((columns.len(), check));
                }
                columns.push(Column {
                    name: col.value.clone(),
                    ty,
                    nullable: !not_null,
                    max_bytes,
                    checks: Vec::new(),
                    key: false,
                });
            }
            Element::Computed { name: col, expr } => {
                check_name(col, &mut seen)?;
                seen.push(col.value.as_str());
                computed_defs.push((col, expr));
            }
            Element::Watermark { column, expr, at } => {
                if watermark.is_some() {
                    return Err(error_at(text, *at, "a table has one WATERMARK; remove this second one"));
                }
                watermark = Some((column, expr, *at));
            }
            Element::PrimaryKey { columns: key, at } => {
                let [col] = key.as_slice() else {
                    return Err(error_at(
                        text,
                        *at,
                        "a PRIMARY KEY of several columns is not supported; key the table by one column",
                    ));
                };
                set_primary(col, *at)?;
            }
        }
    }
    if columns.is_empty() {
        return Err(error_at(
            text,
            def.at,
            "the table declares no physical column; declare the JSON fields it reads, e.g. `sensor_id VARCHAR(64) NOT NULL`",
        ));
    }
    if columns.len() > crate::decode::MAX_COLUMNS {
        return Err(error_at(
            text,
            def.at,
            format!(
                "the table declares {} physical columns; at most {} are supported",
                columns.len(),
                crate::decode::MAX_COLUMNS
            ),
        ));
    }
    let qualifiers = vec![name.clone()];
    let physical: Vec<(String, DataType, bool)> = columns.iter().map(|c| (c.name.clone(), c.ty, c.nullable)).collect();
    let mut computed = Vec::with_capacity(computed_defs.len());
    for (col, expr) in &computed_defs {
        let mut scope = RowScope {
            names: RowNames {
                slots: physical.clone(),
                qualifiers: qualifiers.clone(),
                joined: None,
            },
            table: &name,
            clause: ("a computed column", "aggregate in the SELECT list instead"),
        };
        let e = c.compile(expr, &mut scope)?;
        computed.push(Computed {
            name: col.value.clone(),
            expr: e,
        });
    }
    // Event time: present and valid in every record.
    let Some((wm_col, wm_expr, wm_at)) = watermark else {
        return Err(error_at(
            text,
            def.at,
            format!(
                "the table `{name}` has no WATERMARK; add `WATERMARK FOR <timestamp column> AS <timestamp column> - INTERVAL '5' SECOND` to its column list"
            ),
        ));
    };
    let all = |columns: &[Column], computed: &[Computed]| -> Vec<(String, DataType, bool)> {
        columns
            .iter()
            .map(|c| (c.name.clone(), c.ty, c.nullable))
            .chain(computed.iter().map(|c| (c.name.clone(), c.expr.ty, c.expr.nullable)))
            .collect()
    };
    let slots = all(&columns, &computed);
    let Some(event_time) = slots.iter().position(|(n, ..)| *n == wm_col.value) else {
        return Err(error_at(
            text,
            wm_col.span.start,
            format!(
                "WATERMARK FOR `{}`: no such column; the table has {}",
                wm_col.value,
                slots.iter().map(|(n, ..)| n.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    if slots[event_time].1 != DataType::Timestamp {
        return Err(error_at(
            text,
            wm_col.span.start,
            format!(
                "WATERMARK FOR `{}`: the event time must be a TIMESTAMP, not a {}; declare one, e.g. `event_time AS TO_TIMESTAMP_LTZ({}, 3)` for epoch milliseconds",
                wm_col.value, slots[event_time].1, wm_col.value
            ),
        ));
    }
    let lateness_ms = watermark_lateness(wm_col, wm_expr).map_err(|m| {
        let at = start_of(wm_expr);
        error_at(text, if at.line == 0 { wm_at } else { at }, m)
    })?;
    if let Some(col) = columns.get_mut(event_time) {
        col.nullable = false;
    }
    // CHECKs see every column, computed ones included.
    let slots = all(&columns, &computed);
    for (col, check) in checks {
        let mut scope = RowScope {
            names: RowNames {
                slots: slots.clone(),
                qualifiers: qualifiers.clone(),
                joined: None,
            },
            table: &name,
            clause: ("a CHECK", "a CHECK judges one record"),
        };
        let expr = c.condition(&check.expr, &mut scope, "CHECK")?;
        let reason = check
            .name
            .as_ref()
            .map_or_else(|| CHECK_FAILED.to_string(), |n| n.value.clone());
        columns[col].checks.push(Check { reason, expr });
    }
    let primary_key = match primary {
        None => None,
        Some((col, at)) => {
            let Some(slot) = columns.iter().position(|c| c.name == col.value) else {
                return Err(error_at(
                    text,
                    at,
                    format!(
                        "PRIMARY KEY ({}): no such physical column; the key is one of the table's JSON fields",
                        col.value
                    ),
                ));
            };
            if !matches!(columns[slot].ty, DataType::Text | DataType::BigInt) {
                return Err(error_at(
                    text,
                    at,
                    format!(
                        "the primary key `{}` is a {}; key the table by a TEXT or BIGINT column",
                        col.value, columns[slot].ty
                    ),
                ));
            }
            columns[slot].nullable = false;
            columns[slot].key = true;
            Some(slot)
        }
    };
    let connector = plan_options(text, def)?;
    Ok(SourceTable {
        name,
        connector,
        columns,
        computed,
        event_time,
        lateness_ms,
        primary_key,
    })
}

/// `col` (no lateness) or `col - INTERVAL ...`.
fn watermark_lateness(col: &ast::Ident, expr: &ast::Expr) -> Result<u64, String> {
    let form = format!(
        "the watermark is `{0}` or `{0} - INTERVAL '5' SECOND` (the lateness allowed)",
        col.value
    );
    let is_col = |e: &ast::Expr| matches!(e, ast::Expr::Identifier(i) if i.value == col.value);
    match expr {
        e if is_col(e) => Ok(0),
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::Minus,
            right,
        } if is_col(left) => match right.as_ref() {
            ast::Expr::Interval(interval) => interval_ms(interval),
            _ => Err(form),
        },
        _ => Err(form),
    }
}

/// The `WITH` options.
fn plan_options(text: &str, def: &TableDef) -> Result<Connector, SqlError> {
    if def.options.is_empty() {
        return Err(error_at(
            text,
            def.at,
            "the table has no WITH options; add WITH ('connector' = 'kafka', 'topic' = '...', 'format' = 'json')",
        ));
    }
    for (i, o) in def.options.iter().enumerate() {
        if def.options[..i].iter().any(|p| p.key == o.key) {
            return Err(error_at(
                text,
                o.at,
                format!("the option '{}' is given twice; keep one", o.key),
            ));
        }
        let known = matches!(
            o.key.as_str(),
            "connector" | "format" | "topic" | "path" | "scan.startup.mode"
        ) || o.key.strip_prefix("properties.").is_some_and(|k| !k.is_empty());
        if !known {
            return Err(error_at(
                text,
                o.at,
                format!("unknown option '{}'; the options are {KNOWN_OPTIONS}", o.key),
            ));
        }
    }
    let get = |key: &str| def.options.iter().find(|o| o.key == key);
    let Some(connector) = get("connector") else {
        return Err(error_at(
            text,
            def.at,
            "add 'connector' = 'kafka' (or 'upsert-kafka', 'file') to the WITH options",
        ));
    };
    match get("format") {
        None => return Err(error_at(text, def.at, "add 'format' = 'json' to the WITH options")),
        Some(f) if f.value != "json" => {
            return Err(error_at(
                text,
                f.at,
                format!(
                    "the format '{}' is not supported; the records are JSON: 'format' = 'json'",
                    f.value
                ),
            ));
        }
        Some(_) => {}
    }
    match connector.value.as_str() {
        "kafka" => {
            if let Some(p) = get("path") {
                return Err(error_at(
                    text,
                    p.at,
                    "'path' is an option of the file connector; the kafka connector reads 'topic'",
                ));
            }
            let Some(topic) = get("topic") else {
                return Err(error_at(
                    text,
                    connector.at,
                    "the kafka connector needs 'topic' = '<topic name>'",
                ));
            };
            let startup = match get("scan.startup.mode") {
                None => None,
                Some(o) => Some(match o.value.as_str() {
                    "earliest-offset" => StartupMode::Earliest,
                    "latest-offset" => StartupMode::Latest,
                    other => {
                        return Err(error_at(
                            text,
                            o.at,
                            format!("'scan.startup.mode' is 'earliest-offset' or 'latest-offset', not '{other}'"),
                        ));
                    }
                }),
            };
            let properties = def
                .options
                .iter()
                .filter_map(|o| Some((o.key.strip_prefix("properties.")?, &o.value)))
                .filter(|(k, _)| !matches!(*k, "bootstrap.servers" | "group.id"))
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            Ok(Connector::Kafka {
                topic: topic.value.clone(),
                bootstrap_servers: get("properties.bootstrap.servers").map(|o| o.value.clone()),
                group_id: get("properties.group.id").map(|o| o.value.clone()),
                startup,
                properties,
            })
        }
        "upsert-kafka" => {
            if let Some(o) = def
                .options
                .iter()
                .find(|o| matches!(o.key.as_str(), "path" | "scan.startup.mode" | "properties.group.id"))
            {
                return Err(error_at(
                    text,
                    o.at,
                    format!(
                        "'{}' is not an option of the upsert-kafka connector: it reads its whole topic from the earliest offset, with no consumer group",
                        o.key
                    ),
                ));
            }
            let Some(topic) = get("topic") else {
                return Err(error_at(
                    text,
                    connector.at,
                    "the upsert-kafka connector needs 'topic' = '<compacted topic name>'",
                ));
            };
            let properties = def
                .options
                .iter()
                .filter_map(|o| Some((o.key.strip_prefix("properties.")?, &o.value)))
                .filter(|(k, _)| *k != "bootstrap.servers")
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            Ok(Connector::UpsertKafka {
                topic: topic.value.clone(),
                bootstrap_servers: get("properties.bootstrap.servers").map(|o| o.value.clone()),
                properties,
            })
        }
        "file" => {
            if let Some(o) = def
                .options
                .iter()
                .find(|o| o.key == "topic" || o.key == "scan.startup.mode" || o.key.starts_with("properties."))
            {
                return Err(error_at(
                    text,
                    o.at,
                    format!(
                        "'{}' is an option of the kafka connector; the file connector reads 'path'",
                        o.key
                    ),
                ));
            }
            let Some(path) = get("path") else {
                return Err(error_at(
                    text,
                    connector.at,
                    "the file connector needs 'path' = '<file of JSON lines>'",
                ));
            };
            Ok(Connector::File {
                path: path.value.clone(),
            })
        }
        other => Err(error_at(
            text,
            connector.at,
            format!("the connector '{other}' is not supported; use 'kafka', 'upsert-kafka' or 'file'"),
        )),
    }
}
