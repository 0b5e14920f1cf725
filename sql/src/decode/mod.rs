//! Decoding one record (a JSON object) under the table's schema into an input row, with the seed's dead-letter
//! reason codes. The hot path: one pass over the bytes that visits only the declared fields (unknown ones are
//! skipped without building them), finds a field by comparing bytes (the next declared field first), and
//! allocates nothing beyond text longer than 24 bytes. Hostile input (deep nesting, huge numbers, bad escapes,
//! lone surrogates, megabyte strings) is a reason, never a panic.
//!
//! The rules, in the order they are applied (the first that fails is the reason):
//! 1. no value: `tombstone`; zero bytes: `empty`; not UTF-8: `bad_utf8`;
//! 2. reading left to right: malformed JSON (including a DOUBLE beyond its range, or a lone surrogate in a
//!    declared field) `not_json`; a JSON value that is not an object `not_object`; a declared field of the wrong JSON
//!    type `wrong_type`; a declared field twice `duplicate_field`. Unknown fields are checked for their form
//!    only, at any depth, as the seed's parser does;
//! 3. a NOT NULL field (the event time and the keys included) missing or `null`: `missing_field`;
//! 4. text after the object: `not_json`;
//! 5. text with control characters, over `VARCHAR(n)`, or a TEXT key not of 1 to 64 bytes: `bad_string`; then
//!    a BIGINT given a number that is not an integer (`1.0`, `1e3`) `wrong_type`, or beyond 64 bits
//!    `out_of_range` (as the seed judges `ts`);
//! 6. computed columns are computed; a computed key or event time that is NULL: `missing_field`; a computed TEXT
//!    key is held to rule 5;
//! 7. the event time: negative `out_of_range`, more than `max_future_ms` after `now_ms` `far_future`;
//! 8. CHECKs, in declared order: FALSE gives the constraint's name (NULL passes).
//!
//! Fields nobody reads (see [`crate::plan::Job::read_slots`]) are validated as above but not stored: their
//! slot holds NULL.

use std::fmt;

use crate::expr::Expr;
use crate::function::ScalarHost;
use crate::plan::{Job, SourceTable};
use crate::predicate::Predicate;
use crate::value::{DataType, Value};

mod careful;
mod fast;
#[cfg(test)]
mod tests;

/// The most physical columns a table may declare (the decoder tracks them in one 128-bit word).
pub const MAX_COLUMNS: usize = 128;

/// Longest TEXT key, in bytes (keys become file names and JSON keys).
pub const MAX_KEY_BYTES: usize = 64;

/// Why a record is a dead letter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No value (a Kafka tombstone).
    Tombstone,
    /// Zero bytes.
    Empty,
    /// Not UTF-8.
    BadUtf8,
    /// Not well-formed JSON.
    NotJson,
    /// JSON, but not an object.
    NotObject,
    /// A NOT NULL field absent or null.
    MissingField,
    /// A declared field twice.
    DuplicateField,
    /// A field of the wrong JSON type.
    WrongType,
    /// A number outside its range (a BIGINT beyond 64 bits, a negative event time).
    OutOfRange,
    /// Text with control characters, too long, or an unusable key.
    BadString,
    /// The event time too far ahead of the wall clock.
    FarFuture,
    /// A CHECK failed: the constraint's name (`check_failed` when unnamed).
    Check(String),
}

impl Reason {
    /// The dead-letter reason code.
    pub fn code(&self) -> &str {
        match self {
            Reason::Tombstone => "tombstone",
            Reason::Empty => "empty",
            Reason::BadUtf8 => "bad_utf8",
            Reason::NotJson => "not_json",
            Reason::NotObject => "not_object",
            Reason::MissingField => "missing_field",
            Reason::DuplicateField => "duplicate_field",
            Reason::WrongType => "wrong_type",
            Reason::OutOfRange => "out_of_range",
            Reason::BadString => "bad_string",
            Reason::FarFuture => "far_future",
            Reason::Check(name) => name,
        }
    }
}

/// A record that does not decode: the reason and a sentence naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bad {
    /// The reason.
    pub reason: Reason,
    /// What is wrong, naming the field.
    pub detail: String,
}

impl fmt::Display for Bad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.code(), self.detail)
    }
}

impl std::error::Error for Bad {}

fn bad(reason: Reason, detail: impl Into<String>) -> Bad {
    Bad {
        reason,
        detail: detail.into(),
    }
}

/// A physical column as the decoder needs it.
#[derive(Clone, Debug)]
struct Field {
    name: Box<str>,
    ty: DataType,
    nullable: bool,
    max_bytes: Option<usize>,
    text_key: bool,
    keep: bool,
}

/// Decodes records of one table into input rows. Built once per job ([`Job::decoder`]).
#[derive(Clone, Debug)]
pub struct Decoder {
    fields: Vec<Field>,
    computed: Vec<(String, Expr)>,
    computed_keys: Vec<(usize, DataType)>,
    checks: Vec<(String, String, Predicate)>,
    event_time: usize,
    event_time_name: String,
    /// Bit i: field i must be present and not null.
    required: u128,
    /// Bit i: field i is stored.
    kept: u128,
}

impl Job {
    /// The input-row slots something reads: the keys, the event time, WHERE, the aggregates' arguments and
    /// FILTERs, the computed columns' and CHECKs' inputs; sorted, without repeats.
    pub fn read_slots(&self) -> Vec<usize> {
        let mut slots: Vec<usize> = self.query.keys.iter().map(|k| k.slot).collect();
        slots.push(self.table.event_time);
        let mut add = |e: &Expr| e.visit_slots(&mut |s| slots.push(s));
        self.query.filter.iter().for_each(&mut add);
        for a in &self.query.aggregates {
            a.args.iter().for_each(&mut add);
            a.filter.iter().for_each(&mut add);
        }
        for c in &self.table.computed {
            add(&c.expr);
        }
        for col in &self.table.columns {
            for check in &col.checks {
                add(&check.expr);
            }
        }
        slots.sort_unstable();
        slots.dedup();
        slots
    }

    /// The decoder of this job's records, storing what [`Job::read_slots`] names of the stream's slots (and,
    /// with a temporal join, the column it joins on).
    pub fn decoder(&self) -> Decoder {
        let split = self.table.slot_count();
        let keys: Vec<usize> = self.query.keys.iter().map(|k| k.slot).filter(|&s| s < split).collect();
        let mut read: Vec<usize> = self.read_slots().into_iter().filter(|&s| s < split).collect();
        read.extend(self.join.as_ref().map(|j| j.probe));
        Decoder::new(&self.table, &keys, &read)
    }

    /// The decoder of the joined table's rows (its own slots: the primary key, the version time and what the
    /// query reads), when the job has a temporal join.
    pub fn table_decoder(&self) -> Option<Decoder> {
        let join = self.join.as_ref()?;
        let key = join.table.primary_key?;
        let mut read: Vec<usize> = self
            .read_slots()
            .into_iter()
            .filter_map(|s| s.checked_sub(join.offset))
            .collect();
        read.push(key);
        read.push(join.table.event_time);
        for c in &join.table.computed {
            c.expr.visit_slots(&mut |s| read.push(s));
        }
        for check in join.table.columns.iter().flat_map(|c| &c.checks) {
            check.expr.visit_slots(&mut |s| read.push(s));
        }
        read.sort_unstable();
        read.dedup();
        Some(Decoder::new(&join.table, &[key], &read))
    }
}

impl Decoder {
    /// A decoder for `table` whose group keys are the slots `keys`, storing the physical columns whose slots are
    /// in `read` (the dataflow may add slots it reads itself, such as a side value).
    ///
    /// The table has at most [`MAX_COLUMNS`] physical columns (the planner's limit).
    pub fn new(table: &SourceTable, keys: &[usize], read: &[usize]) -> Decoder {
        let fields: Vec<Field> = table
            .columns
            .iter()
            .enumerate()
            .map(|(slot, c)| Field {
                name: c.name.as_str().into(),
                ty: c.ty,
                nullable: c.nullable && slot != table.event_time,
                max_bytes: c.max_bytes,
                text_key: c.key && c.ty == DataType::Text,
                keep: read.contains(&slot),
            })
            .collect();
        let computed_keys = keys
            .iter()
            .copied()
            .filter(|slot| *slot >= table.columns.len())
            .filter_map(|slot| Some((slot, table.slot_type(slot)?)))
            .collect();
        let checks = table
            .columns
            .iter()
            .flat_map(|c| {
                c.checks.iter().map(move |k| {
                    let test = Predicate::compile(&k.expr.clone().fold_constants());
                    (c.name.clone(), k.reason.clone(), test)
                })
            })
            .collect();
        let required = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.nullable)
            .fold(0u128, |bits, (i, _)| bits | 1u128 << (i % MAX_COLUMNS));
        let kept = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.keep)
            .fold(0u128, |bits, (i, _)| bits | 1u128 << (i % MAX_COLUMNS));
        Decoder {
            required,
            kept,
            fields,
            computed: table
                .computed
                .iter()
                .map(|c| (c.name.clone(), c.expr.clone().fold_constants()))
                .collect(),
            computed_keys,
            checks,
            event_time: table.event_time,
            event_time_name: table.slot_name(table.event_time).to_string(),
        }
    }

    /// Slots of the input row.
    pub fn width(&self) -> usize {
        self.fields.len() + self.computed.len()
    }

    /// Decodes `payload` into `row` (cleared and filled to [`Decoder::width`] slots) and returns the event time
    /// (epoch ms). `now_ms` and `max_future_ms` bound the event time; `host` runs scalar UDFs of computed
    /// columns and CHECKs. A plain record is read by the fast path, any other by the careful one.
    pub fn decode(
        &self,
        payload: Option<&[u8]>,
        now_ms: i64,
        max_future_ms: u64,
        host: &dyn ScalarHost,
        row: &mut Vec<Value>,
    ) -> Result<i64, Bad> {
        self.decode_with(true, payload, now_ms, max_future_ms, host, row)
    }

    /// [`Decoder::decode`] without its fast path: every record read by the careful path, which the fast one
    /// must agree with (the differential tests and the fuzz target compare the two).
    pub fn decode_careful(
        &self,
        payload: Option<&[u8]>,
        now_ms: i64,
        max_future_ms: u64,
        host: &dyn ScalarHost,
        row: &mut Vec<Value>,
    ) -> Result<i64, Bad> {
        self.decode_with(false, payload, now_ms, max_future_ms, host, row)
    }

    fn decode_with(
        &self,
        fast: bool,
        payload: Option<&[u8]>,
        now_ms: i64,
        max_future_ms: u64,
        host: &dyn ScalarHost,
        row: &mut Vec<Value>,
    ) -> Result<i64, Bad> {
        let bytes = payload.ok_or_else(|| bad(Reason::Tombstone, "the record has no value (tombstone)"))?;
        if bytes.is_empty() {
            return Err(bad(Reason::Empty, "the record's value is empty"));
        }
        if row.len() != self.width() {
            row.clear();
            row.resize(self.width(), Value::Null);
        }
        // The fast path reads bytes; a record it reads that is not all ASCII is checked for UTF-8 after it.
        let plain = fast
            && match self.read_plain(bytes, row) {
                Some(true) => true,
                Some(false) => std::str::from_utf8(bytes).is_ok(),
                None => false,
            };
        if !plain {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                bad(
                    Reason::BadUtf8,
                    format!("the value is not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
                )
            })?;
            reset(row, self.width());
            self.read_object(text, row)?;
        }
        self.finish(row, now_ms, max_future_ms, host)
    }

    fn finish(&self, row: &mut [Value], now_ms: i64, max_future_ms: u64, host: &dyn ScalarHost) -> Result<i64, Bad> {
        let first = self.fields.len();
        for (i, (_, expr)) in self.computed.iter().enumerate() {
            row[first + i] = expr.eval(row, host);
        }
        for &(slot, _) in &self.computed_keys {
            let name = &self.computed[slot - first].0;
            match &row[slot] {
                Value::Null => {
                    return Err(bad(
                        Reason::MissingField,
                        format!("the key `{name}` (computed) is null"),
                    ));
                }
                Value::Text(t) => check_text(name, t, None, true)?,
                _ => {}
            }
        }
        let ts = match row.get(self.event_time) {
            Some(Value::Timestamp(ts)) => *ts,
            _ => {
                return Err(bad(
                    Reason::MissingField,
                    format!("the event time `{}` is null", self.event_time_name),
                ));
            }
        };
        if ts < 0 {
            return Err(bad(
                Reason::OutOfRange,
                format!("the event time `{}` is negative ({ts} ms)", self.event_time_name),
            ));
        }
        let limit = now_ms.saturating_add(i64::try_from(max_future_ms).unwrap_or(i64::MAX));
        if ts > limit {
            return Err(bad(
                Reason::FarFuture,
                format!(
                    "the event time `{}` is {} ms ahead of the wall clock (more than {max_future_ms} ms)",
                    self.event_time_name,
                    ts.saturating_sub(now_ms)
                ),
            ));
        }
        for (column, reason, expr) in &self.checks {
            if expr.is_false(row, host) {
                return Err(bad(
                    Reason::Check(reason.clone()),
                    format!("the CHECK `{reason}` on `{column}` is false"),
                ));
            }
        }
        Ok(ts)
    }
}

/// `row` as `width` NULLs, reusing its slots.
#[inline]
fn reset(row: &mut Vec<Value>, width: usize) {
    if row.len() == width {
        for v in row.iter_mut().filter(|v| !v.is_null()) {
            *v = Value::Null;
        }
    } else {
        row.clear();
        row.resize(width, Value::Null);
    }
}

/// TEXT rules: no control characters, at most `max_bytes`, and a key of 1 to 64 bytes.
fn check_text(name: &str, t: &str, max_bytes: Option<usize>, key: bool) -> Result<(), Bad> {
    if key && t.is_empty() {
        return Err(bad(Reason::BadString, format!("the key `{name}` is empty")));
    }
    if key && t.len() > MAX_KEY_BYTES {
        return Err(bad(
            Reason::BadString,
            format!("the key `{name}` is longer than {MAX_KEY_BYTES} bytes"),
        ));
    }
    if let Some(max) = max_bytes
        && t.len() > max
    {
        return Err(bad(
            Reason::BadString,
            format!("the field `{name}` is longer than {max} bytes (VARCHAR({max}))"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(bad(
            Reason::BadString,
            format!("the field `{name}` contains control characters"),
        ));
    }
    Ok(())
}

/// A cursor over a record's bytes: the steps both paths take (the fast path adds its own in `fast`).
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.at) {
            self.at += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }
}
