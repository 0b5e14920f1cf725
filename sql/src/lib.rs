//! The SQL front end of the IoT pipeline: a job written as one SQL file (one `CREATE TABLE`, one windowed
//! `SELECT`, in the Flink/Arroyo dialect) becomes a [`Job`] plan that the dataflow runs. The crate is pure (no
//! I/O, no threads): dialect and parser ([`dialect`]), planner ([`plan_job`]), the plan ([`plan`]), values and
//! types ([`value`], the model's), compiled expressions ([`expr`]), aggregate accumulators ([`agg`]), the decoding of a JSON
//! record under the table's schema ([`decode`]) and the built-in job ([`default_job`]). The dialect reference
//! is `docs/SQL.md`.

#![deny(missing_docs)]

pub mod agg;
pub mod decode;
pub mod default_job;
pub mod dialect;
pub mod error;
pub mod expr;
pub mod function;
mod parse;
pub mod plan;
mod planner;
pub mod predicate;

pub use decode::{Bad, Decoder, Reason};
pub use default_job::{DefaultQuery, DefaultUdf, default_job_sql};
pub use error::SqlError;
pub use expr::Expr;
pub use function::{Function, FunctionKind, NoUdfs, ScalarHost};
pub use model::value::{self, DataType, Value};
pub use plan::{AggFunc, AggSpec, Job, Query, SourceTable, WindowSpec};
pub use planner::{CHECK_FAILED, plan as plan_job};
