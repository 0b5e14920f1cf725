//! User-defined functions as the planner sees them: a registry of signatures the host passes in, and the
//! callback through which compiled expressions call scalar ones. The crate never runs a UDF itself.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::value::{DataType, Value};

/// Whether a UDF maps one row's values or a window's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FunctionKind {
    /// One value per call, from the values of one row (or one group).
    Scalar,
    /// One value per window, from the rows of the window (see [`crate::agg::UdafInputs`]).
    Aggregate,
}

/// One user-defined function. Calls resolve by name, case-insensitively; arguments must have the declared types
/// (a BIGINT is widened to a DOUBLE parameter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Function {
    /// The name SQL calls it by.
    pub name: String,
    /// Scalar or aggregate.
    pub kind: FunctionKind,
    /// Parameter types; for an aggregate, the element type of each of its `Vec<..>` inputs.
    pub args: Vec<DataType>,
    /// The result type.
    pub returns: DataType,
    /// Whether the result can be NULL.
    pub nullable: bool,
}

impl fmt::Display for Function {
    /// The signature as error messages show it: `name(BIGINT, DOUBLE) -> DOUBLE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, ty) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{ty}")?;
        }
        write!(f, ") -> {}", self.returns)
    }
}

/// Calls a scalar UDF for a compiled expression. `function` is the index of the function in the registry the
/// job was planned with ([`crate::plan::Job::functions`]); `args` have the declared types or are NULL. A host that
/// fails returns NULL.
pub trait ScalarHost {
    /// The value of `function` on `args`.
    fn call(&self, function: usize, args: &[Value]) -> Value;
}

/// The host of a job without scalar UDFs: every call is NULL (a plan without UDFs never makes one).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoUdfs;

impl ScalarHost for NoUdfs {
    fn call(&self, _function: usize, _args: &[Value]) -> Value {
        Value::Null
    }
}
