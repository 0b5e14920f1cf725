//! Syntax tree to [`Job`]: semantic checks, names resolved to slots, types inferred and cast. Errors name the
//! fix and point at the offending token.

mod query;
mod scalar;
mod table;
mod window;

pub use table::CHECK_FAILED;

use crate::error::SqlError;
use crate::function::Function;
use crate::parse::{normalize, parse_job};
use crate::plan::Job;

/// Parses and plans a job file with the UDFs the host offers.
pub fn plan(text: &str, functions: &[Function]) -> Result<Job, SqlError> {
    let ast = parse_job(text)?;
    let mut compiler = scalar::Compiler::new(text, functions);
    let mut tables = Vec::with_capacity(ast.tables.len());
    for def in &ast.tables {
        let table = table::plan_table(&mut compiler, def)?;
        if tables.iter().any(|t: &crate::plan::SourceTable| t.name == table.name) {
            return Err(crate::parse::error_at(
                text,
                def.at,
                format!("the table `{}` is declared twice; rename one", table.name),
            ));
        }
        tables.push(table);
    }
    let planned = query::plan_query(&mut compiler, &mut tables, &ast.query, ast.query_at)?;
    let table = tables.swap_remove(planned.stream);
    let query = planned.query;
    let mut identifiers: Vec<&str> = vec![table.name.as_str()];
    identifiers.extend((0..table.slot_count()).map(|s| table.slot_name(s)));
    if let Some(j) = &planned.join {
        identifiers.push(j.table.name.as_str());
        identifiers.push(j.alias.as_str());
        identifiers.extend((0..j.table.slot_count()).map(|s| j.table.slot_name(s)));
    }
    identifiers.extend(query.outputs.iter().map(|o| o.name.as_str()));
    identifiers.extend(
        table
            .columns
            .iter()
            .flat_map(|c| c.checks.iter().map(|k| k.reason.as_str())),
    );
    let normalized = normalize(text, &identifiers);
    Ok(Job {
        join: planned.join,
        table,
        query,
        functions: functions.to_vec(),
        normalized,
    })
}
