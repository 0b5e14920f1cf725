//! The sensor event as it travels on the wire (Kafka record value, UTF-8 JSON) and the one place where a
//! payload is judged valid or bad. Parsing borrows strings from the payload whenever JSON escapes allow, so a
//! valid event costs no allocation beyond what its data needs.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

mod fast;

/// Longest device id accepted, in bytes of UTF-8.
pub const MAX_DEVICE_ID_BYTES: usize = 64;
/// Longest location accepted, in bytes of UTF-8.
pub const MAX_LOCATION_BYTES: usize = 64;
/// Default `--max-future`: how far ahead of the wall clock an event time may be.
pub const DEFAULT_MAX_FUTURE_MS: u64 = 60 * 60 * 1000;

/// Device status as reported by the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Normal operation.
    Ok,
    /// Degraded, worth a look.
    Warn,
    /// Faulty.
    Error,
}

impl Status {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Error => "error",
        }
    }
}

/// One sensor reading. Strings borrow from the payload when they contain no JSON escapes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event<'a> {
    /// Device identifier, also the Kafka record key.
    pub device_id: Cow<'a, str>,
    /// Event time, epoch milliseconds.
    pub ts: u64,
    /// Degrees Celsius, -60..=150.
    pub temperature: f64,
    /// Relative humidity in percent, 0..=100.
    pub humidity: f64,
    /// Battery level in percent, 0..=100.
    pub battery: f64,
    /// Device status.
    pub status: Status,
    /// Where the device sits (any short string).
    pub location: Cow<'a, str>,
}

impl Event<'_> {
    /// Serialises the event to its wire form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event always serialises")
    }

    /// An owned copy that no longer borrows from the payload.
    pub fn into_owned(self) -> Event<'static> {
        Event {
            device_id: Cow::Owned(self.device_id.into_owned()),
            ts: self.ts,
            temperature: self.temperature,
            humidity: self.humidity,
            battery: self.battery,
            status: self.status,
            location: Cow::Owned(self.location.into_owned()),
        }
    }
}

/// The seven fields of an event, for reasons that name a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `device_id`
    DeviceId,
    /// `ts`
    Ts,
    /// `temperature`
    Temperature,
    /// `humidity`
    Humidity,
    /// `battery`
    Battery,
    /// `status`
    Status,
    /// `location`
    Location,
}

impl Field {
    /// Every field, in wire order.
    pub const ALL: [Field; 7] = [
        Field::DeviceId,
        Field::Ts,
        Field::Temperature,
        Field::Humidity,
        Field::Battery,
        Field::Status,
        Field::Location,
    ];

    /// The JSON key.
    pub fn name(self) -> &'static str {
        match self {
            Field::DeviceId => "device_id",
            Field::Ts => "ts",
            Field::Temperature => "temperature",
            Field::Humidity => "humidity",
            Field::Battery => "battery",
            Field::Status => "status",
            Field::Location => "location",
        }
    }

    fn from_key(key: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == key)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a payload is a bad event. Each variant maps to a stable dead-letter reason code ([`BadEvent::code`]).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BadEvent {
    /// The record had no value at all (a Kafka tombstone).
    #[error("record has no value (tombstone)")]
    Tombstone,
    /// The value was zero bytes long.
    #[error("record value is empty")]
    Empty,
    /// The value is not valid UTF-8.
    #[error("value is not valid UTF-8 (invalid byte at offset {offset})")]
    BadUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The value is not well-formed JSON (truncated, `NaN` literals, trailing garbage, ...).
    #[error("value is not valid JSON: {message}")]
    NotJson {
        /// The JSON parser's description.
        message: String,
    },
    /// The value is JSON but not an object.
    #[error("value is JSON but not an object")]
    NotObject,
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(Field),
    /// A field appears twice.
    #[error("duplicate field `{0}`")]
    DuplicateField(Field),
    /// A field has the wrong JSON type (including `null`).
    #[error("field `{field}` has the wrong type: {message}")]
    WrongType {
        /// The field.
        field: Field,
        /// What was found and what was expected.
        message: String,
    },
    /// A numeric field is outside its allowed range.
    #[error("field `{field}` out of range: {value} not in {range}")]
    OutOfRange {
        /// The field.
        field: Field,
        /// The value found.
        value: f64,
        /// The allowed range, for the message.
        range: &'static str,
    },
    /// `status` is not one of ok, warn, error.
    #[error("field `status` must be ok, warn or error")]
    BadStatus,
    /// A string field is empty, too long or holds control characters.
    #[error("field `{field}` is not acceptable: {why}")]
    BadString {
        /// The field.
        field: Field,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The event time lies further in the future than `--max-future` allows.
    #[error("event time {ts} is {ahead_ms} ms ahead of the wall clock (more than --max-future {max_future_ms} ms)")]
    FarFuture {
        /// The event time.
        ts: u64,
        /// How far ahead of the wall clock it lies.
        ahead_ms: u64,
        /// The allowed maximum.
        max_future_ms: u64,
    },
}

impl BadEvent {
    /// Stable reason code used in the dead-letter output and in counters.
    pub fn code(&self) -> &'static str {
        match self {
            BadEvent::Tombstone => "tombstone",
            BadEvent::Empty => "empty",
            BadEvent::BadUtf8 { .. } => "bad_utf8",
            BadEvent::NotJson { .. } => "not_json",
            BadEvent::NotObject => "not_object",
            BadEvent::MissingField(_) => "missing_field",
            BadEvent::DuplicateField(_) => "duplicate_field",
            BadEvent::WrongType { .. } => "wrong_type",
            BadEvent::OutOfRange { .. } => "out_of_range",
            BadEvent::BadStatus => "bad_status",
            BadEvent::BadString { .. } => "bad_string",
            BadEvent::FarFuture { .. } => "far_future",
        }
    }

    /// Every reason code, for counters that list all reasons even when zero.
    pub const CODES: [&'static str; 12] = [
        "tombstone",
        "empty",
        "bad_utf8",
        "not_json",
        "not_object",
        "missing_field",
        "duplicate_field",
        "wrong_type",
        "out_of_range",
        "bad_status",
        "bad_string",
        "far_future",
    ];
}

/// The clock-dependent part of validation.
#[derive(Clone, Copy, Debug)]
pub struct Validation {
    /// Wall clock now, epoch milliseconds.
    pub now_ms: u64,
    /// Largest accepted `ts - now_ms`.
    pub max_future_ms: u64,
}

/// Parses and validates one record value. `None` is a tombstone.
///
/// Every rule of the event contract is checked here; the result is either a valid event borrowing from
/// `payload` or the first reason it is bad.
pub fn parse_event<'a>(payload: Option<&'a [u8]>, rules: Validation) -> Result<Event<'a>, BadEvent> {
    let bytes = payload.ok_or(BadEvent::Tombstone)?;
    if bytes.is_empty() {
        return Err(BadEvent::Empty);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| BadEvent::BadUtf8 {
        offset: e.valid_up_to(),
    })?;
    let raw = parse_fields(text)?;
    raw.validate(rules)
}

/// The contract fields found so far, each at most once. Both parsers (the full one and the fast path) fill
/// one and finish it.
#[derive(Default)]
struct Slots<'a> {
    device_id: Option<Cow<'a, str>>,
    ts: Option<serde_json::Number>,
    temperature: Option<f64>,
    humidity: Option<f64>,
    battery: Option<f64>,
    status: Option<Cow<'a, str>>,
    location: Option<Cow<'a, str>>,
}

impl<'a> Slots<'a> {
    /// The fields, or the first one missing.
    fn finish(self) -> Result<RawEvent<'a>, Field> {
        Ok(RawEvent {
            device_id: self.device_id.ok_or(Field::DeviceId)?,
            ts: self.ts.ok_or(Field::Ts)?,
            temperature: self.temperature.ok_or(Field::Temperature)?,
            humidity: self.humidity.ok_or(Field::Humidity)?,
            battery: self.battery.ok_or(Field::Battery)?,
            status: self.status.ok_or(Field::Status)?,
            location: self.location.ok_or(Field::Location)?,
        })
    }
}

/// Fields as found, before range checks.
struct RawEvent<'a> {
    device_id: Cow<'a, str>,
    ts: serde_json::Number,
    temperature: f64,
    humidity: f64,
    battery: f64,
    status: Cow<'a, str>,
    location: Cow<'a, str>,
}

impl<'a> RawEvent<'a> {
    fn validate(self, rules: Validation) -> Result<Event<'a>, BadEvent> {
        check_string(Field::DeviceId, &self.device_id, MAX_DEVICE_ID_BYTES)?;
        check_string(Field::Location, &self.location, MAX_LOCATION_BYTES)?;
        let ts = match self.ts.as_u64() {
            Some(ts) => ts,
            None if self.ts.as_i64().is_some() => {
                return Err(BadEvent::OutOfRange {
                    field: Field::Ts,
                    value: self.ts.as_f64().unwrap_or(f64::NAN),
                    range: ">= 0",
                });
            }
            None => {
                return Err(BadEvent::WrongType {
                    field: Field::Ts,
                    message: format!("{} is not an integer of epoch milliseconds", self.ts),
                });
            }
        };
        if ts > rules.now_ms.saturating_add(rules.max_future_ms) {
            return Err(BadEvent::FarFuture {
                ts,
                ahead_ms: ts - rules.now_ms,
                max_future_ms: rules.max_future_ms,
            });
        }
        check_range(Field::Temperature, self.temperature, -60.0, 150.0, "-60..=150")?;
        check_range(Field::Humidity, self.humidity, 0.0, 100.0, "0..=100")?;
        check_range(Field::Battery, self.battery, 0.0, 100.0, "0..=100")?;
        let status = match &*self.status {
            "ok" => Status::Ok,
            "warn" => Status::Warn,
            "error" => Status::Error,
            _ => return Err(BadEvent::BadStatus),
        };
        Ok(Event {
            device_id: self.device_id,
            ts,
            temperature: self.temperature,
            humidity: self.humidity,
            battery: self.battery,
            status,
            location: self.location,
        })
    }
}

fn check_range(field: Field, value: f64, lo: f64, hi: f64, range: &'static str) -> Result<(), BadEvent> {
    // `!(a <= b)` also rejects NaN, which JSON cannot carry but a careless caller might.
    if value.is_finite() && lo <= value && value <= hi {
        Ok(())
    } else {
        Err(BadEvent::OutOfRange { field, value, range })
    }
}

fn check_string(field: Field, value: &str, max: usize) -> Result<(), BadEvent> {
    if value.is_empty() {
        return Err(BadEvent::BadString { field, why: "empty" });
    }
    if value.len() > max {
        return Err(BadEvent::BadString {
            field,
            why: "longer than 64 bytes",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(BadEvent::BadString {
            field,
            why: "contains control characters",
        });
    }
    Ok(())
}

fn parse_fields(text: &str) -> Result<RawEvent<'_>, BadEvent> {
    match fast::parse(text) {
        Some(raw) => Ok(raw),
        None => parse_fields_full(text),
    }
}

/// The full parser: any JSON, with the reason when it is not a valid event.
fn parse_fields_full(text: &str) -> Result<RawEvent<'_>, BadEvent> {
    let current = Cell::new(None);
    let outcome = Cell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let visitor = EventVisitor {
        current: &current,
        outcome: &outcome,
    };
    let parsed = de.deserialize_any(visitor).and_then(|raw| de.end().map(|()| raw));
    match parsed {
        Ok(raw) => Ok(raw),
        Err(err) => Err(match outcome.take() {
            Some(bad) => bad,
            None => match (current.get(), err.classify()) {
                (Some(field), serde_json::error::Category::Data) => BadEvent::WrongType {
                    field,
                    message: strip_position(&err),
                },
                _ => BadEvent::NotJson {
                    message: err.to_string(),
                },
            },
        }),
    }
}

fn strip_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Visits the top-level JSON value; records which field is being read so that a type error can name it,
/// and records contract violations (missing/duplicate field, not an object) that are not JSON errors.
struct EventVisitor<'c> {
    current: &'c Cell<Option<Field>>,
    outcome: &'c Cell<Option<BadEvent>>,
}

impl EventVisitor<'_> {
    fn not_object<E: de::Error>(&self) -> Result<RawEvent<'static>, E> {
        self.outcome.set(Some(BadEvent::NotObject));
        Err(E::custom("not an object"))
    }
}

macro_rules! reject_non_object {
    ($($method:ident($ty:ty)),*) => {
        $(fn $method<E: de::Error>(self, _v: $ty) -> Result<Self::Value, E> { self.not_object() })*
    };
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = RawEvent<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    reject_non_object!(
        visit_bool(bool),
        visit_i64(i64),
        visit_u64(u64),
        visit_f64(f64),
        visit_str(&str)
    );

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.not_object()
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Consume the array so that syntax errors inside it still count as "not JSON".
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_object()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots = Slots::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let Some(field) = Field::from_key(&key.0) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            self.current.set(Some(field));
            let duplicate = match field {
                Field::DeviceId => slots.device_id.replace(map.next_value::<Text<'de>>()?.0).is_some(),
                Field::Ts => slots.ts.replace(map.next_value::<serde_json::Number>()?).is_some(),
                Field::Temperature => slots.temperature.replace(map.next_value::<f64>()?).is_some(),
                Field::Humidity => slots.humidity.replace(map.next_value::<f64>()?).is_some(),
                Field::Battery => slots.battery.replace(map.next_value::<f64>()?).is_some(),
                Field::Status => slots.status.replace(map.next_value::<Text<'de>>()?.0).is_some(),
                Field::Location => slots.location.replace(map.next_value::<Text<'de>>()?.0).is_some(),
            };
            self.current.set(None);
            if duplicate {
                self.outcome.set(Some(BadEvent::DuplicateField(field)));
                return Err(de::Error::custom("duplicate field"));
            }
        }
        slots.finish().map_err(|missing| {
            self.outcome.set(Some(BadEvent::MissingField(missing)));
            de::Error::custom("missing field")
        })
    }
}

/// A JSON string that borrows from the input unless it contains escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_730_638_574_123;

    fn rules() -> Validation {
        Validation {
            now_ms: NOW,
            max_future_ms: DEFAULT_MAX_FUTURE_MS,
        }
    }

    fn good() -> serde_json::Value {
        serde_json::json!({"device_id":"device-abc123","ts":NOW,"temperature":24.7,"humidity":55.3,
            "battery":82.5,"status":"ok","location":"lab"})
    }

    fn parse_value(v: &serde_json::Value) -> Result<Event<'static>, BadEvent> {
        let text = v.to_string();
        parse_event(Some(text.as_bytes()), rules()).map(Event::into_owned)
    }

    fn with(field: &str, value: serde_json::Value) -> Result<Event<'static>, BadEvent> {
        let mut v = good();
        v[field] = value;
        parse_value(&v)
    }

    /// The reason code of the good event with `field` set to `value`, which must make it bad.
    fn code_with(field: &str, value: serde_json::Value) -> &'static str {
        with(field, value).unwrap_err().code()
    }

    fn without(field: &str) -> Result<Event<'static>, BadEvent> {
        let mut v = good();
        v.as_object_mut().unwrap().remove(field);
        parse_value(&v)
    }

    #[test]
    fn valid_event_parses_with_all_fields() {
        let e = parse_value(&good()).unwrap();
        assert_eq!(e.device_id, "device-abc123");
        assert_eq!(e.ts, NOW);
        assert_eq!(e.temperature, 24.7);
        assert_eq!(e.humidity, 55.3);
        assert_eq!(e.battery, 82.5);
        assert_eq!(e.status, Status::Ok);
        assert_eq!(e.location, "lab");
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let text = good().to_string();
        let e = parse_event(Some(text.as_bytes()), rules()).unwrap();
        assert!(matches!(e.device_id, Cow::Borrowed(_)));
        assert!(matches!(e.location, Cow::Borrowed(_)));
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let e = with("device_id", serde_json::json!("a\"b/\u{1F525}")).unwrap();
        assert_eq!(e.device_id, "a\"b/\u{1F525}");
    }

    #[test]
    fn round_trip_through_wire_form() {
        let e = parse_value(&good()).unwrap();
        let text = e.to_json();
        let back = parse_event(Some(text.as_bytes()), rules()).unwrap();
        assert_eq!(e, back);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut v = good();
        v["firmware"] = serde_json::json!({"nested": [1, 2, {"x": null}]});
        assert!(parse_value(&v).is_ok());
    }

    #[test]
    fn tombstone_and_empty_are_bad() {
        assert_eq!(parse_event(None, rules()), Err(BadEvent::Tombstone));
        assert_eq!(parse_event(Some(b""), rules()), Err(BadEvent::Empty));
    }

    #[test]
    fn invalid_utf8_is_bad_utf8() {
        let mut bytes = good().to_string().into_bytes();
        bytes[16] = 0xff;
        assert_eq!(parse_event(Some(&bytes), rules()).unwrap_err().code(), "bad_utf8");
    }

    #[test]
    fn malformed_json_is_not_json() {
        let good = good().to_string();
        for (what, text) in [
            ("truncated", good[..good.len() / 2].to_string()),
            ("a NaN literal", good.replace("24.7", "NaN")),
            ("trailing garbage", format!("{good} x")),
            ("a number beyond f64", good.replace("24.7", "1e400")),
        ] {
            let code = parse_event(Some(text.as_bytes()), rules()).map_err(|e| e.code());
            assert_eq!(code, Err("not_json"), "{what}: {text}");
        }
    }

    #[test]
    fn non_object_json_is_not_object() {
        for text in ["[1,2]", "42", "\"x\"", "null", "true", "-1.5"] {
            assert_eq!(
                parse_event(Some(text.as_bytes()), rules()),
                Err(BadEvent::NotObject),
                "{text}"
            );
        }
    }

    #[test]
    fn each_missing_field_is_named() {
        for f in Field::ALL {
            assert_eq!(without(f.name()), Err(BadEvent::MissingField(f)));
        }
    }

    #[test]
    fn duplicate_field_is_bad() {
        let text = good().to_string().replacen('{', "{\"ts\":1,", 1);
        assert_eq!(
            parse_event(Some(text.as_bytes()), rules()),
            Err(BadEvent::DuplicateField(Field::Ts))
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        let cases = [
            ("device_id", serde_json::json!(12)),
            ("ts", serde_json::json!("1730638574123")),
            ("ts", serde_json::json!(1.5)),
            ("temperature", serde_json::json!("hot")),
            ("humidity", serde_json::json!(null)),
            ("battery", serde_json::json!([1])),
            ("status", serde_json::json!(true)),
            ("location", serde_json::json!({"a": 1})),
        ];
        for (field, value) in cases {
            match with(field, value.clone()) {
                Err(BadEvent::WrongType { field: f, .. }) => assert_eq!(f.name(), field, "{value}"),
                other => panic!("{field}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn integer_readings_are_accepted_as_numbers() {
        let e = with("temperature", serde_json::json!(20)).unwrap();
        assert_eq!(e.temperature, 20.0);
    }

    #[test]
    fn range_edges_are_inclusive() {
        for (field, lo, hi) in [
            ("temperature", -60.0, 150.0),
            ("humidity", 0.0, 100.0),
            ("battery", 0.0, 100.0),
        ] {
            assert!(with(field, serde_json::json!(lo)).is_ok(), "{field} {lo}");
            assert!(with(field, serde_json::json!(hi)).is_ok(), "{field} {hi}");
            for bad in [lo - 0.001, hi + 0.001] {
                assert_eq!(
                    code_with(field, serde_json::json!(bad)),
                    "out_of_range",
                    "{field} {bad}"
                );
            }
        }
    }

    #[test]
    fn negative_ts_is_out_of_range() {
        assert_eq!(code_with("ts", serde_json::json!(-1)), "out_of_range");
        assert!(with("ts", serde_json::json!(0)).is_ok());
    }

    #[test]
    fn future_ts_up_to_max_future_is_accepted() {
        assert!(with("ts", serde_json::json!(NOW + DEFAULT_MAX_FUTURE_MS)).is_ok());
        assert_eq!(
            with("ts", serde_json::json!(NOW + DEFAULT_MAX_FUTURE_MS + 1)),
            Err(BadEvent::FarFuture {
                ts: NOW + DEFAULT_MAX_FUTURE_MS + 1,
                ahead_ms: DEFAULT_MAX_FUTURE_MS + 1,
                max_future_ms: DEFAULT_MAX_FUTURE_MS
            })
        );
        assert_eq!(code_with("ts", serde_json::json!(u64::MAX)), "far_future");
    }

    #[test]
    fn status_must_be_known() {
        assert_eq!(with("status", serde_json::json!("warn")).unwrap().status, Status::Warn);
        assert_eq!(
            with("status", serde_json::json!("error")).unwrap().status,
            Status::Error
        );
        assert_eq!(with("status", serde_json::json!("OK")), Err(BadEvent::BadStatus));
    }

    #[test]
    fn device_id_length_edges() {
        assert!(with("device_id", serde_json::json!("x".repeat(64))).is_ok());
        assert_eq!(code_with("device_id", serde_json::json!("x".repeat(65))), "bad_string");
        assert_eq!(code_with("device_id", serde_json::json!("")), "bad_string");
        // 16 four-byte characters are exactly 64 bytes.
        assert!(with("device_id", serde_json::json!("\u{1F525}".repeat(16))).is_ok());
        assert_eq!(
            code_with("device_id", serde_json::json!("\u{1F525}".repeat(17))),
            "bad_string"
        );
    }

    #[test]
    fn device_id_with_control_characters_is_bad() {
        for id in ["a\u{0}b", "a\nb", "\u{7f}", "tab\t"] {
            assert_eq!(code_with("device_id", serde_json::json!(id)), "bad_string", "{id:?}");
        }
    }

    #[test]
    fn unusual_but_valid_device_ids_are_accepted() {
        for id in ["a/b", "..", "../../etc/passwd", "\u{1F525}-sensor", "x=y", "100%"] {
            assert_eq!(with("device_id", serde_json::json!(id)).unwrap().device_id, id);
        }
    }

    #[test]
    fn every_reason_code_is_listed() {
        let samples = [
            BadEvent::Tombstone,
            BadEvent::Empty,
            BadEvent::BadUtf8 { offset: 0 },
            BadEvent::NotJson { message: String::new() },
            BadEvent::NotObject,
            BadEvent::MissingField(Field::Ts),
            BadEvent::DuplicateField(Field::Ts),
            BadEvent::WrongType {
                field: Field::Ts,
                message: String::new(),
            },
            BadEvent::OutOfRange {
                field: Field::Ts,
                value: 0.0,
                range: "",
            },
            BadEvent::BadStatus,
            BadEvent::BadString {
                field: Field::Ts,
                why: "",
            },
            BadEvent::FarFuture {
                ts: 0,
                ahead_ms: 0,
                max_future_ms: 0,
            },
        ];
        let codes: Vec<_> = samples.iter().map(BadEvent::code).collect();
        assert_eq!(codes, BadEvent::CODES);
    }
}
