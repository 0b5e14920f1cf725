//! Parse/validate stage: turns a raw record into a valid event bound for its group's windows, a record the
//! query's `WHERE` leaves out, or a dead letter with the reason it is bad. The rules live in the query (the
//! table's schema, its constraints, `WHERE`; `crate::query`); this stage only shapes the outcome. No input
//! panics.

use model::value::Value;

use crate::messages::{DeadLetter, EventRec, ProbeRec, RawRecord};
use crate::query::{Query, Record, UdfHost};

/// Outcome of parsing one record.
#[derive(Debug)]
pub enum Parsed {
    /// A valid event (lateness is decided afterwards, per partition).
    Event {
        /// The event, with its window.
        event: EventRec,
        /// Its event time.
        ts: u64,
    },
    /// A valid record of a job with a temporal join, bound for the join.
    Probe(ProbeRec),
    /// A valid record the query's `WHERE` leaves out.
    Filtered {
        /// Its event time.
        ts: u64,
    },
    /// A bad record.
    Bad(DeadLetter),
}

/// Parses and validates one record under `query`, at wall-clock `rules`; `row` is scratch space reused across
/// records.
pub fn parse_record(
    raw: &RawRecord<'_>,
    query: &Query,
    host: &dyn UdfHost,
    rules: model::Validation,
    row: &mut Vec<Value>,
) -> Parsed {
    match query.read(raw.value, rules.now_ms, rules.max_future_ms, host, row) {
        Ok(Record::Event(event)) => Parsed::Event { ts: event.ts, event },
        Ok(Record::Filtered { ts }) => Parsed::Filtered { ts },
        Ok(Record::Probe(probe)) => Parsed::Probe(probe),
        Err(bad) => Parsed::Bad(DeadLetter::bad(raw, bad.reason.code(), bad.detail)),
    }
}

/// The dead letter of a valid event that arrived after its window closed on its partition.
pub fn late_letter(raw: &RawRecord<'_>, ts: u64, window_end: u64, watermark: u64) -> DeadLetter {
    DeadLetter {
        reason: "late".to_string(),
        detail: format!(
            "window ending {} is at or below the partition watermark {}",
            model::time::rfc3339_ms(window_end),
            model::time::rfc3339_ms(watermark)
        ),
        partition: raw.partition,
        offset: raw.offset,
        key: raw.key.map(<[u8]>::to_vec),
        payload: raw.value.map(<[u8]>::to_vec),
        ts: Some(ts),
        window_end: Some(window_end),
        watermark: Some(watermark),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::NoUdfs;
    use crate::query::testing::program;
    use compact_str::CompactString;

    fn raw(value: Option<&[u8]>) -> RawRecord<'_> {
        RawRecord {
            partition: 2,
            offset: 17,
            key: Some(b"k"),
            value,
            timestamp: None,
        }
    }

    const RULES: model::Validation = model::Validation {
        now_ms: 1_730_638_574_123,
        max_future_ms: 3_600_000,
    };

    fn parse(value: Option<&[u8]>) -> Parsed {
        parse_record(&raw(value), &program().query, &NoUdfs, RULES, &mut Vec::new())
    }

    #[test]
    fn valid_event_is_assigned_its_window() {
        let v = br#"{"device_id":"d","ts":1730638574123,"temperature":1,"humidity":2,"battery":3,"status":"ok","location":"lab"}"#;
        match parse(Some(v)) {
            Parsed::Event { event, ts } => {
                assert_eq!(ts, 1_730_638_574_123);
                assert_eq!(event.at, 1_730_638_580_000 - 1);
                assert_eq!(
                    (event.key.label(), event.side),
                    ("d".to_string(), CompactString::new("lab"))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_record_keeps_partition_offset_key_and_payload() {
        match parse(Some(b"{oops")) {
            Parsed::Bad(l) => {
                assert_eq!((l.reason.as_str(), l.partition, l.offset), ("not_json", 2, 17));
                assert_eq!(l.key.as_deref(), Some(&b"k"[..]));
                assert_eq!(l.payload.as_deref(), Some(&b"{oops"[..]));
            }
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn tombstone_is_a_dead_letter_without_payload() {
        match parse(None) {
            Parsed::Bad(l) => assert_eq!((l.reason.as_str(), l.payload), ("tombstone", None)),
            other => panic!("accepted: {other:?}"),
        }
    }
}
