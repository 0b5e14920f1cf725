//! The plan: what the dataflow's stages consume. Pure data (`Clone + Debug`, serde), every name resolved to a
//! slot. Two row layouts:
//!
//! - **input row** (one per record): slots `0..columns.len()` are the physical columns in declared order, then
//!   the computed columns in declared order ([`SourceTable::slot_count`]); with a temporal join, the versioned
//!   table's slots follow from [`TemporalJoin::offset`] on (NULL while no version matches).
//! - **group row** (one per key and window): the keys `0..k` in GROUP BY order, `window_start` at `k`,
//!   `window_end` at `k + 1`, then the aggregates' results at `k + 2 ..` in [`Query::aggregates`] order
//!   ([`Query::group_width`]).

use serde::{Deserialize, Serialize};

use crate::expr::Expr;
use crate::function::Function;
use crate::value::DataType;

/// A planned job: one source table, optionally joined as of event time with a versioned table, and one
/// windowed query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The `CREATE TABLE` of the stream the query reads.
    pub table: SourceTable,
    /// `JOIN t FOR SYSTEM_TIME AS OF ...`, when the query has one.
    pub join: Option<TemporalJoin>,
    /// The `SELECT`.
    pub query: Query,
    /// The UDF registry the job was planned with; [`crate::expr::ExprKind::Udf`] and [`AggFunc::Udf`] index it.
    pub functions: Vec<Function>,
    /// The job's canonical text: its tokens without comments or layout, keywords in upper case, one space
    /// apart. Two files that differ only in comments, spacing or keyword case have the same text, so it can be
    /// the checkpoint's identity of the job.
    pub normalized: String,
}

/// The source table: connector, schema, event time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceTable {
    /// The table's name, as declared.
    pub name: String,
    /// Where records come from (`WITH` options).
    pub connector: Connector,
    /// Physical columns (JSON fields), in declared order: slots `0..columns.len()`.
    pub columns: Vec<Column>,
    /// Computed columns (`name AS expr`), in declared order: slots `columns.len()..`.
    pub computed: Vec<Computed>,
    /// The slot of the event-time column (the WATERMARK's column; a TIMESTAMP, present in every valid record).
    pub event_time: usize,
    /// The watermark's lateness (`WATERMARK FOR c AS c - INTERVAL ...`), milliseconds.
    pub lateness_ms: u64,
    /// `PRIMARY KEY (c) NOT ENFORCED`: the slot of a versioned table's key (a physical TEXT or BIGINT column).
    pub primary_key: Option<usize>,
}

impl SourceTable {
    /// Slots of the input row: physical plus computed columns.
    pub fn slot_count(&self) -> usize {
        self.columns.len() + self.computed.len()
    }

    /// The slot of the column called `name` (physical or computed).
    pub fn slot(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name).or_else(|| {
            self.computed
                .iter()
                .position(|c| c.name == name)
                .map(|i| i + self.columns.len())
        })
    }

    /// The name of `slot`.
    pub fn slot_name(&self, slot: usize) -> &str {
        match self.columns.get(slot) {
            Some(c) => &c.name,
            None => self
                .computed
                .get(slot - self.columns.len())
                .map_or("?", |c| c.name.as_str()),
        }
    }

    /// The type of `slot`.
    pub fn slot_type(&self, slot: usize) -> Option<DataType> {
        match self.columns.get(slot) {
            Some(c) => Some(c.ty),
            None => self.computed.get(slot - self.columns.len()).map(|c| c.expr.ty),
        }
    }
}

/// The `WITH` options, by connector. Command-line flags of the dataflow win over them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Connector {
    /// `'connector' = 'kafka'`.
    Kafka {
        /// `'topic'`.
        topic: String,
        /// `'properties.bootstrap.servers'`, when given.
        bootstrap_servers: Option<String>,
        /// `'properties.group.id'`, when given.
        group_id: Option<String>,
        /// `'scan.startup.mode'`, when given.
        startup: Option<StartupMode>,
        /// Every other `'properties.*'` option, prefix removed (librdkafka settings), in declared order.
        properties: Vec<(String, String)>,
    },
    /// `'connector' = 'upsert-kafka'`: a compacted topic of a versioned table; the record key is the primary key,
    /// the value the row, a null value (tombstone) deletes the key. Read from the earliest offset.
    UpsertKafka {
        /// `'topic'`.
        topic: String,
        /// `'properties.bootstrap.servers'`, when given.
        bootstrap_servers: Option<String>,
        /// Every other `'properties.*'` option, prefix removed, in declared order.
        properties: Vec<(String, String)>,
    },
    /// `'connector' = 'file'`: JSON lines.
    File {
        /// `'path'`.
        path: String,
    },
}

/// `'scan.startup.mode'`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartupMode {
    /// `earliest-offset`.
    Earliest,
    /// `latest-offset`.
    Latest,
}

/// A physical column: a field of the JSON record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// The field name (case-sensitive).
    pub name: String,
    /// Its type.
    pub ty: DataType,
    /// False with `NOT NULL`, for the event-time column and for group keys.
    pub nullable: bool,
    /// `VARCHAR(n)`: at most `n` bytes of UTF-8.
    pub max_bytes: Option<usize>,
    /// Its `CHECK` constraints, in declared order.
    pub checks: Vec<Check>,
    /// Whether it is a group key (a TEXT key must then be 1 to 64 bytes without control characters).
    pub key: bool,
}

/// A computed column (`name AS expr`), over the physical columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Computed {
    /// Its name.
    pub name: String,
    /// Its value, over the input row's physical slots.
    pub expr: Expr,
}

/// A `CHECK` constraint: a record for which `expr` is FALSE goes to the dead letters with `reason` (NULL passes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The reason code: the constraint's name, or `check_failed` when it has none.
    pub reason: String,
    /// The condition, over the input row.
    pub expr: Expr,
}

/// The windowed aggregation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// The window over the event time.
    pub window: WindowSpec,
    /// `WHERE`, over the input row: a record is aggregated only when it is TRUE.
    pub filter: Option<Expr>,
    /// The group keys, in GROUP BY order (at least one).
    pub keys: Vec<Key>,
    /// The aggregates, each computed once even when several outputs use it.
    pub aggregates: Vec<AggSpec>,
    /// The output columns: the keys, `window_start`, `window_end`, then the other select items in select order.
    pub outputs: Vec<Output>,
    /// `HAVING`, over the group row: a group is emitted only when it is TRUE.
    pub having: Option<Expr>,
}

impl Query {
    /// Slots of the group row: keys, two window bounds, aggregates.
    pub fn group_width(&self) -> usize {
        self.keys.len() + 2 + self.aggregates.len()
    }

    /// The group-row slot of `window_start`.
    pub fn window_start_slot(&self) -> usize {
        self.keys.len()
    }

    /// The group-row slot of `window_end`.
    pub fn window_end_slot(&self) -> usize {
        self.keys.len() + 1
    }

    /// The group-row slot of aggregate `i`.
    pub fn aggregate_slot(&self, i: usize) -> usize {
        self.keys.len() + 2 + i
    }
}

/// The window kind and sizes, in milliseconds (all positive; a hop's slide at most its size).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowSpec {
    /// `TUMBLE(..., size)` / `tumble(size)`.
    Tumble {
        /// Window size.
        size_ms: u64,
    },
    /// `HOP(..., slide, size)` / `hop(slide, size)`.
    Hop {
        /// Distance between window starts.
        slide_ms: u64,
        /// Window size.
        size_ms: u64,
    },
    /// `SESSION(..., gap)` / `session(gap)`: per key.
    Session {
        /// Inactivity that closes a session.
        gap_ms: u64,
    },
}

/// `FROM s [AS r] [LEFT] JOIN t FOR SYSTEM_TIME AS OF r.<event time> [AS d] ON r.<column> = d.<primary key>`:
/// each record of the stream meets the version of `t`'s row that was valid at its event time, the newest with
/// a version time (`t`'s WATERMARK column) at or before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemporalJoin {
    /// The versioned table (`primary_key` is set; `event_time` is its version time).
    pub table: SourceTable,
    /// The alias the query gives it (its name when none).
    pub alias: String,
    /// `LEFT JOIN`: a record with no version keeps NULLs; an inner join drops it.
    pub left: bool,
    /// The stream's slot joined with the primary key (same type).
    pub probe: usize,
    /// The input-row slot of the versioned table's slot 0 (the stream's slot count).
    pub offset: usize,
}

/// A group key: a column of the stream or of the joined table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Key {
    /// The output name (the select alias, else the column name).
    pub name: String,
    /// The column's name.
    pub column: String,
    /// The input-row slot it comes from.
    pub slot: usize,
    /// Its type (TEXT, BIGINT or BOOLEAN).
    pub ty: DataType,
    /// Whether it can be NULL (a joined table's column: NULL where no version matched).
    pub nullable: bool,
}

/// One aggregate of the query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AggSpec {
    /// Which aggregate.
    pub func: AggFunc,
    /// Its arguments, over the input row (none for `COUNT(*)`; one for the built-ins; a UDF's parameters).
    pub args: Vec<Expr>,
    /// `COUNT(DISTINCT x)`.
    pub distinct: bool,
    /// `FILTER (WHERE ...)`, over the input row.
    pub filter: Option<Expr>,
    /// The result type.
    pub ty: DataType,
    /// Whether the result can be NULL.
    pub nullable: bool,
}

/// The aggregate functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggFunc {
    /// `COUNT(*)`: rows.
    CountStar,
    /// `COUNT(x)`: non-NULL values (`distinct`: distinct ones).
    Count,
    /// `SUM(x)`.
    Sum,
    /// `AVG(x)`.
    Avg,
    /// `MIN(x)`.
    Min,
    /// `MAX(x)`.
    Max,
    /// `STDDEV_POP(x)`.
    StddevPop,
    /// `STDDEV_SAMP(x)` (`STDDEV(x)`).
    StddevSamp,
    /// `VAR_POP(x)`.
    VarPop,
    /// `VAR_SAMP(x)` (`VARIANCE(x)`).
    VarSamp,
    /// `FIRST_VALUE(x)`: the value of the earliest row by event time.
    FirstValue,
    /// `LAST_VALUE(x)`: the value of the latest row by event time.
    LastValue,
    /// An aggregate UDF; the host computes it from [`crate::agg::Acc::udaf_inputs`].
    Udf {
        /// Index in [`Job::functions`].
        function: usize,
    },
}

impl AggFunc {
    /// The SQL name.
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::CountStar | AggFunc::Count => "COUNT",
            AggFunc::Sum => "SUM",
            AggFunc::Avg => "AVG",
            AggFunc::Min => "MIN",
            AggFunc::Max => "MAX",
            AggFunc::StddevPop => "STDDEV_POP",
            AggFunc::StddevSamp => "STDDEV_SAMP",
            AggFunc::VarPop => "VAR_POP",
            AggFunc::VarSamp => "VAR_SAMP",
            AggFunc::FirstValue => "FIRST_VALUE",
            AggFunc::LastValue => "LAST_VALUE",
            AggFunc::Udf { .. } => "UDF",
        }
    }
}

/// One output column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// The column name (letters, digits and `_`, not starting with a digit; unique regardless of case).
    pub name: String,
    /// Its type.
    pub ty: DataType,
    /// Whether it can be NULL.
    pub nullable: bool,
    /// What it is.
    pub role: OutputRole,
    /// Its value, over the group row.
    pub expr: Expr,
}

/// The part an output column plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputRole {
    /// Group key `i` (GROUP BY order).
    Key(usize),
    /// The window's start (inclusive).
    WindowStart,
    /// The window's end (exclusive).
    WindowEnd,
    /// Any other select item.
    Value,
}
