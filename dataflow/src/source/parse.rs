//! Parse/validate stage: turns a raw record into a valid event bound for its window, or a dead letter with the
//! reason it is bad. All rules live in the model crate; this stage only shapes the outcome. No input panics.

use compact_str::CompactString;
use model::{BadEvent, WindowKind, parse_event};

use crate::messages::{DeadLetter, EventRec, RawRecord};

/// Outcome of parsing one record.
pub enum Parsed {
    /// A valid event (lateness is decided afterwards, per partition).
    Event {
        /// The event, with its window.
        event: EventRec,
        /// Its event time.
        ts: u64,
    },
    /// A bad record.
    Bad(DeadLetter),
}

/// Parses and validates one record.
pub fn parse_record(raw: &RawRecord<'_>, rules: model::Validation, kind: WindowKind) -> Parsed {
    match parse_event(raw.value, rules) {
        Ok(e) => Parsed::Event {
            ts: e.ts,
            event: EventRec {
                at: kind.on_time_until(e.ts),
                ts: e.ts,
                device_id: CompactString::new(&e.device_id),
                location: CompactString::new(&e.location),
                temperature: e.temperature,
                humidity: e.humidity,
                battery: e.battery,
                status: e.status,
                source: 0,
            },
        },
        Err(bad) => Parsed::Bad(bad_letter(raw, &bad)),
    }
}

fn bad_letter(raw: &RawRecord<'_>, bad: &BadEvent) -> DeadLetter {
    DeadLetter {
        reason: bad.code().to_string(),
        detail: bad.to_string(),
        partition: raw.partition,
        offset: raw.offset,
        key: raw.key.map(<[u8]>::to_vec),
        payload: raw.value.map(<[u8]>::to_vec),
        ts: None,
        window_end: None,
        watermark: None,
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

    fn raw(value: Option<&[u8]>) -> RawRecord<'_> {
        RawRecord {
            partition: 2,
            offset: 17,
            key: Some(b"k"),
            value,
        }
    }

    const RULES: model::Validation = model::Validation {
        now_ms: 1_730_638_574_123,
        max_future_ms: 3_600_000,
    };

    #[test]
    fn valid_event_is_assigned_its_window() {
        let v = br#"{"device_id":"d","ts":1730638574123,"temperature":1,"humidity":2,"battery":3,"status":"ok","location":"lab"}"#;
        match parse_record(&raw(Some(v)), RULES, model::WindowKind::Tumbling { size_ms: 10_000 }) {
            Parsed::Event { event, ts } => {
                assert_eq!(ts, 1_730_638_574_123);
                assert_eq!(event.at, 1_730_638_580_000 - 1);
            }
            Parsed::Bad(l) => panic!("{l:?}"),
        }
    }

    #[test]
    fn bad_record_keeps_partition_offset_key_and_payload() {
        match parse_record(
            &raw(Some(b"{oops")),
            RULES,
            model::WindowKind::Tumbling { size_ms: 10_000 },
        ) {
            Parsed::Bad(l) => {
                assert_eq!((l.reason.as_str(), l.partition, l.offset), ("not_json", 2, 17));
                assert_eq!(l.key.as_deref(), Some(&b"k"[..]));
                assert_eq!(l.payload.as_deref(), Some(&b"{oops"[..]));
            }
            Parsed::Event { .. } => panic!("accepted"),
        }
    }

    #[test]
    fn tombstone_is_a_dead_letter_without_payload() {
        match parse_record(&raw(None), RULES, model::WindowKind::Tumbling { size_ms: 10_000 }) {
            Parsed::Bad(l) => assert_eq!((l.reason.as_str(), l.payload), ("tombstone", None)),
            Parsed::Event { .. } => panic!("accepted"),
        }
    }
}
