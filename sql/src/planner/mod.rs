//! Syntax tree to [`Job`]: semantic checks, names resolved to slots, types inferred and cast. Errors name the
//! fix and point at the offending token.

mod query;
mod scalar;
mod table;

pub use table::CHECK_FAILED;

use crate::error::SqlError;
use crate::function::Function;
use crate::parse::{normalize, parse_job};
use crate::plan::Job;

/// Parses and plans a job file with the UDFs the host offers.
pub fn plan(text: &str, functions: &[Function]) -> Result<Job, SqlError> {
    let ast = parse_job(text)?;
    let mut compiler = scalar::Compiler::new(text, functions);
    let mut table = table::plan_table(&mut compiler, &ast.table)?;
    let query = query::plan_query(&mut compiler, &mut table, &ast.query, ast.query_at)?;
    Ok(Job {
        table,
        query,
        functions: functions.to_vec(),
        normalized: normalize(text),
    })
}
