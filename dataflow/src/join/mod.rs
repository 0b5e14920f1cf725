//! The temporal join stage of a job with `JOIN t FOR SYSTEM_TIME AS OF` (`docs/SQL.md`, "Temporal joins"):
//! `versions.rs` holds the as-of rule, and `operator.rs` is the timely operator between the source and the
//! window operator where each record meets the version valid at its event time. The versioned table itself is
//! read by the source stage (`source::table`).

pub mod operator;
pub mod versions;
