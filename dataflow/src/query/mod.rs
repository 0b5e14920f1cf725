//! The job's query as the stages run it. The SQL plan (`sql::Job`: the built-in job or the user's file, see
//! `docs/SQL.md`) is compiled once per job into a [`Query`]: what the source does per record ([`Query::read`]:
//! decode under the table's schema, `WHERE`, the group key, and each aggregate's inputs — its `FILTER` and
//! arguments, each distinct expression evaluated once) and what the window operator does per group and window
//! ([`Query::fold`] the inputs into accumulators, [`Query::emit`] the output row: finish them, `HAVING`, the
//! output columns). An event therefore carries only the values its aggregates take, and the window operator
//! never evaluates an argument. User-defined functions are called through a [`UdfHost`].

use compact_str::CompactString;
use model::output::{OutputColumn, OutputSchema, Role};
use model::value::{DataType, Value};
use model::{Hopping, WindowKind};
use smallvec::SmallVec;
use sql::agg::{Acc, UdafInputs};
use sql::plan::{AggFunc, Job, OutputRole, WindowSpec};
use sql::predicate::Predicate;
use sql::{Bad, Decoder, Expr, ScalarHost};

use crate::messages::{AggInputs, EventRec, GroupKey, ProbeRec, RawRecord, Version};

/// The name of the table column the job carries beside each group's windows for the fleet views (the seed's
/// per-location rollup): its latest value by arrival, not an output.
pub const SIDE_COLUMN: &str = "location";

/// Calls the job's user-defined functions: scalar ones through `sql`'s compiled expressions, aggregate ones on a
/// window's rows. A call that fails gives NULL (the host counts it).
pub trait UdfHost: ScalarHost {
    /// The value of aggregate UDF `function` over one window's rows, sorted by event time.
    fn aggregate(&self, function: usize, inputs: &UdafInputs) -> Value;
}

/// What the window operator folds and emits with: the compiled query and the worker's UDF host.
#[derive(Clone)]
pub struct Program {
    /// The query.
    pub query: std::sync::Arc<Query>,
    /// Calls the job's UDFs (counting their failures).
    pub host: std::rc::Rc<dyn UdfHost>,
}

/// The host of a job without UDFs.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoUdfs;

impl ScalarHost for NoUdfs {
    fn call(&self, _function: usize, _args: &[Value]) -> Value {
        Value::Null
    }
}

impl UdfHost for NoUdfs {
    fn aggregate(&self, _function: usize, _inputs: &UdafInputs) -> Value {
        Value::Null
    }
}

/// Where one aggregate's inputs are in an event's [`AggInputs`].
#[derive(Clone, Debug, PartialEq)]
struct AggInput {
    /// Indices of its arguments' values (none for `COUNT(*)`).
    args: Vec<usize>,
    /// The bit of its `FILTER` condition, if it has one.
    cond: Option<u32>,
    /// The aggregate UDF it is, if one.
    udf: Option<usize>,
}

/// What reading one valid record gives.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// An event for its group's windows (read by worker 0: the source sets its own index).
    Event(EventRec),
    /// A record the query's `WHERE` leaves out, at its event time (it still moves its partition's clock).
    Filtered {
        /// Event time, epoch ms.
        ts: u64,
    },
    /// With a temporal join: a valid record on its way to the join, which finishes reading it once it has met
    /// its version ([`Query::join`]).
    Probe(ProbeRec),
}

/// How a job with a temporal join reads the versioned table and meets a record with a version.
#[derive(Clone, Debug)]
struct JoinProgram {
    /// Decodes the table's rows.
    decoder: Decoder,
    /// The stream's join column.
    probe: usize,
    /// Where the table's slots start in the input row.
    offset: usize,
    /// `LEFT JOIN`.
    left: bool,
    /// The primary key's slot in the table's row.
    key: usize,
    /// The primary key's column name and type (to read a tombstone's record key).
    key_name: String,
    key_ty: DataType,
}

/// The most distinct `FILTER` conditions a query may have (one bit each in [`AggInputs::pass`]).
pub const MAX_CONDITIONS: usize = 64;

/// A query compiled for the stages.
#[derive(Clone, Debug)]
pub struct Query {
    /// The plan.
    pub job: Job,
    /// The job's text as given (the built-in job's, generated, when no `--sql`).
    pub text: String,
    /// Whether this is the built-in job.
    pub builtin: bool,
    /// The output's columns.
    pub schema: OutputSchema,
    /// The window kind and sizes.
    pub window: WindowKind,
    decoder: Decoder,
    keys: Vec<usize>,
    filter: Option<Predicate>,
    args: Vec<Expr>,
    conds: Vec<Predicate>,
    aggs: Vec<AggInput>,
    side: Option<usize>,
    having: Option<Expr>,
    outputs: Vec<Expr>,
    join: Option<JoinProgram>,
}

impl Query {
    /// Compiles `job` (planned from `text`). Fails only for a query beyond the program's limits
    /// ([`MAX_CONDITIONS`]), with a sentence saying so.
    pub fn compile(job: Job, text: String, builtin: bool) -> Result<Query, String> {
        let q = &job.query;
        let mut args: Vec<Expr> = Vec::new();
        let mut conds: Vec<Expr> = Vec::new();
        let mut aggs = Vec::with_capacity(q.aggregates.len());
        for spec in &q.aggregates {
            let mut indices = Vec::with_capacity(spec.args.len());
            for a in &spec.args {
                indices.push(position_or_push(&mut args, a));
            }
            let cond = match &spec.filter {
                Some(f) => {
                    let i = position_or_push(&mut conds, f);
                    if i >= MAX_CONDITIONS {
                        return Err(format!(
                            "the query has more than {MAX_CONDITIONS} different FILTER conditions; merge some into \
                             CASE expressions"
                        ));
                    }
                    Some(i as u32)
                }
                None => None,
            };
            let udf = match spec.func {
                AggFunc::Udf { function } => Some(function),
                _ => None,
            };
            aggs.push(AggInput {
                args: indices,
                cond,
                udf,
            });
        }
        let side = job
            .table
            .slot(SIDE_COLUMN)
            .filter(|&s| job.table.slot_type(s) == Some(DataType::Text));
        let keys: Vec<usize> = q.keys.iter().map(|k| k.slot).collect();
        let mut read = job.read_slots();
        read.extend(side);
        read.retain(|&s| s < job.table.slot_count());
        read.extend(job.join.as_ref().map(|j| j.probe));
        let stream_keys: Vec<usize> = keys.iter().copied().filter(|&s| s < job.table.slot_count()).collect();
        let decoder = Decoder::new(&job.table, &stream_keys, &read);
        let join = match (&job.join, job.table_decoder()) {
            (Some(j), Some(decoder)) => {
                let key = j.table.primary_key.unwrap_or(0);
                Some(JoinProgram {
                    decoder,
                    probe: j.probe,
                    offset: j.offset,
                    left: j.left,
                    key,
                    key_name: j.table.slot_name(key).to_string(),
                    key_ty: j.table.slot_type(key).unwrap_or(DataType::Text),
                })
            }
            _ => None,
        };
        let columns = q
            .outputs
            .iter()
            .map(|o| OutputColumn {
                name: o.name.clone(),
                ty: o.ty,
                role: match o.role {
                    OutputRole::Key(_) => Role::Key,
                    OutputRole::WindowStart | OutputRole::WindowEnd => Role::Window,
                    OutputRole::Value => Role::Value,
                },
                nullable: o.nullable,
            })
            .collect();
        let schema = OutputSchema::new(columns).map_err(|e| format!("the query's outputs: {e}"))?;
        let window = match q.window {
            WindowSpec::Tumble { size_ms } => WindowKind::Tumbling { size_ms },
            WindowSpec::Hop { slide_ms, size_ms } => {
                WindowKind::Hopping(Hopping::new(size_ms, slide_ms).map_err(|e| e.to_string())?)
            }
            WindowSpec::Session { gap_ms } => WindowKind::Session { gap_ms },
        };
        Ok(Query {
            decoder,
            keys,
            filter: q.filter.clone().map(|f| Predicate::compile(&f.fold_constants())),
            args,
            conds: conds.iter().map(Predicate::compile).collect(),
            aggs,
            side,
            having: q.having.clone().map(Expr::fold_constants),
            outputs: q.outputs.iter().map(|o| o.expr.clone().fold_constants()).collect(),
            join,
            schema,
            window,
            text,
            builtin,
            job,
        })
    }

    /// The watermark's lateness (`WATERMARK FOR ... - INTERVAL`), ms.
    pub fn lateness_ms(&self) -> u64 {
        self.job.table.lateness_ms
    }

    /// Whether the job carries a location beside its windows (the table has a TEXT `location` column).
    pub fn carries_side(&self) -> bool {
        self.side.is_some()
    }

    /// Reads one record: decoded under the schema (`Err`: why it is a dead letter), then left out when `WHERE`
    /// is not true of it, else its group and its aggregates' inputs. `row` is scratch space, reused across
    /// records.
    pub fn read(
        &self,
        payload: Option<&[u8]>,
        now_ms: u64,
        max_future_ms: u64,
        host: &dyn UdfHost,
        row: &mut Vec<Value>,
    ) -> Result<Record, Bad> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let ts = self.decoder.decode(payload, now, max_future_ms, host, row)?;
        let ts = u64::try_from(ts).unwrap_or(0);
        if let Some(j) = &self.join {
            // Room for the table's slots too: the join appends them without growing the row.
            let mut stream = Vec::with_capacity(j.offset + j.decoder.width());
            stream.extend_from_slice(&row[..j.offset.min(row.len())]);
            return Ok(Record::Probe(ProbeRec {
                key: row[j.probe].clone(),
                ts,
                at: self.window.on_time_until(ts),
                row: stream,
                source: 0,
            }));
        }
        Ok(self.finish(row, ts, host))
    }

    /// Whether the job joins a versioned table.
    pub fn has_join(&self) -> bool {
        self.join.is_some()
    }

    /// Reads one record of the versioned table: its key and version time, and its row (`Err`: why it is a dead
    /// letter). A tombstone (no value) deletes the record key's row (a JSON object holding the primary key, a
    /// JSON string, or the key's bytes) from the record's timestamp on.
    pub fn read_version(
        &self,
        raw: &RawRecord<'_>,
        rules: model::Validation,
        host: &dyn UdfHost,
        row: &mut Vec<Value>,
    ) -> Result<Version, Bad> {
        let Some(j) = &self.join else {
            return Err(Bad {
                reason: sql::Reason::NotObject,
                detail: "the job joins no table".into(),
            });
        };
        if raw.value.is_none() {
            let key = tombstone_key(raw.key, &j.key_name, j.key_ty)?;
            let time = raw.timestamp.and_then(|t| u64::try_from(t).ok()).ok_or_else(|| Bad {
                reason: sql::Reason::MissingField,
                detail: "a tombstone needs the record's timestamp: it deletes the key from that time on".into(),
            })?;
            return Ok(Version { key, time, row: None });
        }
        let now = i64::try_from(rules.now_ms).unwrap_or(i64::MAX);
        let time = j.decoder.decode(raw.value, now, rules.max_future_ms, host, row)?;
        Ok(Version {
            key: row[j.key].clone(),
            time: u64::try_from(time).unwrap_or(0),
            row: Some(row.clone()),
        })
    }

    /// A probe met with the version valid at its event time (`None`: no version): the record read on over the
    /// whole input row, or `None` when an inner join drops it.
    pub fn join(&self, probe: ProbeRec, version: Option<&[Value]>, host: &dyn UdfHost) -> Option<Record> {
        let j = self.join.as_ref()?;
        if version.is_none() && !j.left {
            return None;
        }
        let mut row = probe.row;
        row.truncate(j.offset);
        match version {
            Some(v) => row.extend(v.iter().cloned()),
            None => row.resize(j.offset + j.decoder.width(), Value::Null),
        }
        Some(self.finish(&mut row, probe.ts, host))
    }

    /// The rest of reading a record whose input row is complete: `WHERE`, the group, the aggregates' inputs.
    fn finish(&self, row: &mut [Value], ts: u64, host: &dyn UdfHost) -> Record {
        if let Some(f) = &self.filter
            && !f.is_true(row, host)
        {
            return Record::Filtered { ts };
        }
        let mut pass = 0u64;
        for (i, c) in self.conds.iter().enumerate() {
            if c.is_true(row, host) {
                pass |= 1 << i;
            }
        }
        let mut values: SmallVec<[Value; 3]> = SmallVec::new();
        for a in &self.args {
            values.push(match a.as_slot() {
                Some(slot) => row[slot].clone(),
                None => a.eval(row, host),
            });
        }
        let side = match self.side.map(|s| &row[s]) {
            Some(Value::Text(t)) => t.clone(),
            _ => CompactString::default(),
        };
        let mut key = SmallVec::new();
        for &k in &self.keys {
            key.push(std::mem::take(&mut row[k]));
        }
        let key = GroupKey(key);
        Record::Event(EventRec {
            at: self.window.on_time_until(ts),
            ts,
            key,
            side,
            inputs: AggInputs { values, pass },
            source: 0,
        })
    }

    /// Fresh accumulators for a group's window, one per aggregate.
    pub fn new_accs(&self) -> Vec<Acc> {
        self.job.query.aggregates.iter().map(|a| a.new_acc()).collect()
    }

    /// Folds one event's inputs (event time `ts`) into a window's accumulators.
    #[inline]
    pub fn fold(&self, accs: &mut [Acc], inputs: &AggInputs, ts: u64) {
        let ts = i64::try_from(ts).unwrap_or(i64::MAX);
        for (acc, a) in accs.iter_mut().zip(&self.aggs) {
            if let Some(bit) = a.cond
                && inputs.pass & (1 << bit) == 0
            {
                continue;
            }
            match a.args.as_slice() {
                // COUNT(*) counts rows: any non-NULL value stands for the row.
                [] => acc.update(&Value::Bool(true), ts),
                [i] => acc.update(&inputs.values[*i], ts),
                many => {
                    let row: Vec<Value> = many.iter().map(|&i| inputs.values[i].clone()).collect();
                    acc.update_row(&row, ts);
                }
            }
        }
    }

    /// The output row of group `key`'s window `[start, end)` with accumulators `accs`; `None` when `HAVING` is
    /// not true of it.
    pub fn emit(&self, key: &GroupKey, start: u64, end: u64, accs: &[Acc], host: &dyn UdfHost) -> Option<Vec<Value>> {
        let time = |ms: u64| Value::Timestamp(i64::try_from(ms).unwrap_or(i64::MAX));
        let mut group: Vec<Value> = Vec::with_capacity(self.job.query.group_width());
        group.extend(key.values().iter().cloned());
        group.push(time(start));
        group.push(time(end));
        for (acc, a) in accs.iter().zip(&self.aggs) {
            group.push(match (a.udf, acc.udaf_inputs()) {
                (Some(function), Some(inputs)) => host.aggregate(function, &inputs),
                _ => acc.finish(),
            });
        }
        if let Some(h) = &self.having
            && !h.is_true(&group, host)
        {
            return None;
        }
        Some(self.outputs.iter().map(|o| o.eval(&group, host)).collect())
    }
}

/// The primary key a tombstone deletes, from its record key: a JSON object holding the key's field (Flink's
/// upsert-kafka with a JSON key), a JSON string or number, or the key's bytes as they are.
fn tombstone_key(key: Option<&[u8]>, name: &str, ty: DataType) -> Result<Value, Bad> {
    let bad = |detail: String| Bad {
        reason: sql::Reason::MissingField,
        detail,
    };
    let bytes = key.ok_or_else(|| {
        bad(format!(
            "a tombstone without a record key deletes nothing; key it by `{name}`"
        ))
    })?;
    let json: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    let value = match json {
        Some(serde_json::Value::Object(mut o)) => o.remove(name).unwrap_or(serde_json::Value::Null),
        Some(v @ (serde_json::Value::String(_) | serde_json::Value::Number(_))) => v,
        _ => serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()),
    };
    match (ty, value) {
        (DataType::BigInt, serde_json::Value::Number(n)) if n.is_i64() => Ok(Value::Int(n.as_i64().unwrap_or(0))),
        (DataType::BigInt, serde_json::Value::String(t)) if t.parse::<i64>().is_ok() => {
            Ok(Value::Int(t.parse().unwrap_or(0)))
        }
        (DataType::Text, serde_json::Value::String(t)) if !t.is_empty() => Ok(Value::Text(t.as_str().into())),
        (DataType::Text, serde_json::Value::Number(n)) => Ok(Value::Text(n.to_string().as_str().into())),
        _ => Err(bad(format!(
            "the tombstone's record key holds no `{name}` of type {ty}"
        ))),
    }
}

/// The index of `e` (its constants folded) in `list`, pushed when it is not there yet.
fn position_or_push(list: &mut Vec<Expr>, e: &Expr) -> usize {
    let e = e.clone().fold_constants();
    match list.iter().position(|x| *x == e) {
        Some(i) => i,
        None => {
            list.push(e);
            list.len() - 1
        }
    }
}

#[cfg(test)]
pub mod testing;
#[cfg(test)]
mod tests;
