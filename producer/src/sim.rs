//! The device simulator: a seeded fleet of devices whose readings drift realistically (temperature and
//! humidity as mean-reverting random walks, battery draining slowly, status mostly `ok`), plus the generators of
//! late and malformed records used to exercise the pipeline. Same seed, same fleet, same sequence of readings.

use std::borrow::Cow;

use model::{Event, Status};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// Locations the simulator assigns, one per device.
pub const LOCATIONS: [&str; 4] = ["floor-1", "floor-2", "lab", "office"];

/// One simulated device and its current readings.
#[derive(Clone, Debug)]
pub struct Device {
    /// `device-` followed by six hex digits.
    pub id: String,
    /// Fixed location.
    pub location: &'static str,
    base_temperature: f64,
    temperature: f64,
    base_humidity: f64,
    humidity: f64,
    battery: f64,
    drain_per_reading: f64,
}

impl Device {
    fn step(&mut self, rng: &mut Xoshiro256PlusPlus) -> (f64, f64, f64, Status) {
        self.temperature += 0.05 * (self.base_temperature - self.temperature) + rng.random_range(-0.25..0.25);
        self.temperature = self.temperature.clamp(-60.0, 150.0);
        self.humidity += 0.05 * (self.base_humidity - self.humidity) + rng.random_range(-0.6..0.6);
        self.humidity = self.humidity.clamp(0.0, 100.0);
        self.battery -= self.drain_per_reading;
        if self.battery <= 0.0 {
            // The battery is swapped when it runs flat.
            self.battery = 100.0;
        }
        let roll: f64 = rng.random();
        let status = if roll < 0.01 || (self.battery < 10.0 && roll < 0.05) {
            Status::Error
        } else if roll < 0.05 {
            Status::Warn
        } else {
            Status::Ok
        };
        (
            round2(self.temperature),
            round2(self.humidity),
            round2(self.battery),
            status,
        )
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What kind of malformed record to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BadKind {
    /// A valid event cut short.
    Truncated,
    /// A field with the wrong JSON type.
    WrongType,
    /// A required field left out.
    MissingField,
    /// Bytes that are not UTF-8.
    InvalidUtf8,
    /// A reading outside its range.
    OutOfRange,
    /// A `NaN` literal, which JSON does not allow.
    NanLiteral,
    /// A record with no value (tombstone).
    Tombstone,
}

impl BadKind {
    /// Every kind, in the order they are cycled through.
    pub const ALL: [BadKind; 7] = [
        BadKind::Truncated,
        BadKind::WrongType,
        BadKind::MissingField,
        BadKind::InvalidUtf8,
        BadKind::OutOfRange,
        BadKind::NanLiteral,
        BadKind::Tombstone,
    ];
}

/// One record to publish: key and value (`None` value is a tombstone).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Kafka key: the device id.
    pub key: String,
    /// Kafka value.
    pub value: Option<Vec<u8>>,
    /// What the simulator meant this record to be.
    pub kind: RecordKind,
}

/// The simulator's intent for a record, for its own counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A valid event at the current time.
    OnTime,
    /// A valid event whose time lies in the past.
    Late {
        /// How far in the past, ms.
        delay_ms: u64,
    },
    /// A malformed record.
    Bad(BadKind),
}

/// Mix of record kinds the fleet emits.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    /// Probability that a record is a valid event with a past timestamp.
    pub late_fraction: f64,
    /// Largest delay of a late event, ms.
    pub max_delay_ms: u64,
    /// Probability that a record is malformed.
    pub bad_fraction: f64,
    /// Whether tombstones are among the malformed kinds (not for JSON-lines files).
    pub tombstones: bool,
}

/// A seeded fleet of devices.
pub struct Fleet {
    devices: Vec<Device>,
    rng: Xoshiro256PlusPlus,
    next: usize,
    bad_cycle: usize,
}

impl Fleet {
    /// `count` devices derived from `seed`.
    pub fn new(count: usize, seed: u64) -> Fleet {
        Fleet::build(count, seed, None)
    }

    /// Devices with the given ids (readings still derived from `seed`).
    pub fn with_ids(ids: Vec<String>, seed: u64) -> Fleet {
        Fleet::build(ids.len(), seed, Some(ids))
    }

    fn build(count: usize, seed: u64, given: Option<Vec<String>>) -> Fleet {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut ids = std::collections::HashSet::new();
        let mut given = given.map(Vec::into_iter);
        let mut devices = Vec::with_capacity(count);
        while devices.len() < count {
            let id = match given.as_mut() {
                Some(it) => it.next().expect("one id per device"),
                None => format!("device-{:06x}", rng.random_range(0..0x100_0000u32)),
            };
            if !ids.insert(id.clone()) {
                continue;
            }
            let base_temperature = rng.random_range(19.0..27.0);
            let base_humidity = rng.random_range(35.0..65.0);
            devices.push(Device {
                id,
                location: LOCATIONS[rng.random_range(0..LOCATIONS.len())],
                base_temperature,
                temperature: base_temperature,
                base_humidity,
                humidity: base_humidity,
                battery: rng.random_range(60.0..100.0),
                drain_per_reading: rng.random_range(0.001..0.01),
            });
        }
        Fleet {
            devices,
            rng,
            next: 0,
            bad_cycle: 0,
        }
    }

    /// The devices.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// The next record, round-robin over devices, stamped `now_ms` (or earlier for a late event).
    pub fn next_record(&mut self, now_ms: u64, mix: &Mix) -> Record {
        let index = self.next;
        self.next = (self.next + 1) % self.devices.len();
        let reading = self.devices[index].step(&mut self.rng);
        let device = &self.devices[index];
        let roll: f64 = self.rng.random();
        let mut kind = RecordKind::OnTime;
        let mut ts = now_ms;
        if roll < mix.bad_fraction {
            let kinds = if mix.tombstones {
                &BadKind::ALL[..]
            } else {
                &BadKind::ALL[..BadKind::ALL.len() - 1]
            };
            kind = RecordKind::Bad(kinds[self.bad_cycle % kinds.len()]);
            self.bad_cycle += 1;
        } else if roll < mix.bad_fraction + mix.late_fraction && mix.max_delay_ms > 0 {
            let delay_ms = self.rng.random_range(1..=mix.max_delay_ms.min(now_ms.max(1)));
            ts = now_ms.saturating_sub(delay_ms);
            kind = RecordKind::Late { delay_ms };
        }
        let event = Event {
            device_id: Cow::Borrowed(&device.id),
            ts,
            temperature: reading.0,
            humidity: reading.1,
            battery: reading.2,
            status: reading.3,
            location: Cow::Borrowed(device.location),
        };
        let value = match kind {
            RecordKind::Bad(bad) => malformed(&event, bad, &mut self.rng),
            _ => Some(event.to_json().into_bytes()),
        };
        Record {
            key: device.id.clone(),
            value,
            kind,
        }
    }
}

/// A malformed payload of the given kind, derived from a valid event.
pub fn malformed(event: &Event<'_>, kind: BadKind, rng: &mut impl RngExt) -> Option<Vec<u8>> {
    let json = event.to_json();
    let mut value: serde_json::Value = serde_json::from_str(&json).expect("own event is JSON");
    let text = match kind {
        BadKind::Tombstone => return None,
        BadKind::Truncated => {
            // Any proper prefix of an object is incomplete JSON.
            let cut = rng.random_range(1..json.len());
            let mut cut = cut;
            while !json.is_char_boundary(cut) {
                cut -= 1;
            }
            json[..cut.max(1)].to_string()
        }
        BadKind::WrongType => {
            value["temperature"] = serde_json::Value::String(format!("{}", event.temperature));
            value.to_string()
        }
        BadKind::MissingField => {
            let field = ["ts", "humidity", "battery", "status"][rng.random_range(0..4)];
            value.as_object_mut().expect("object").remove(field);
            value.to_string()
        }
        BadKind::InvalidUtf8 => {
            let mut bytes = json.into_bytes();
            // Inside the device id's string, so the JSON shape is otherwise intact.
            let at = bytes.iter().position(|&b| b == b'-').unwrap_or(1);
            bytes[at] = 0xC3;
            bytes.insert(at + 1, 0x28);
            return Some(bytes);
        }
        BadKind::OutOfRange => {
            value["humidity"] = serde_json::json!(100.0 + rng.random_range(0.5..50.0));
            value.to_string()
        }
        BadKind::NanLiteral => json.replacen(
            &format!(
                "\"temperature\":{}",
                serde_json::to_string(&event.temperature).expect("f64")
            ),
            "\"temperature\":NaN",
            1,
        ),
    };
    Some(text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Validation, parse_event};

    const NOW: u64 = 1_730_638_574_123;

    fn rules() -> Validation {
        Validation {
            now_ms: NOW,
            max_future_ms: 3_600_000,
        }
    }

    /// Only valid events on time.
    const ON_TIME: Mix = Mix {
        late_fraction: 0.0,
        max_delay_ms: 0,
        bad_fraction: 0.0,
        tombstones: false,
    };

    /// `fraction` of late events (up to 120 s) and as many malformed records, tombstones among them.
    fn late_and_bad(fraction: f64) -> Mix {
        Mix {
            late_fraction: fraction,
            max_delay_ms: 120_000,
            bad_fraction: fraction,
            tombstones: true,
        }
    }

    #[test]
    fn same_seed_gives_same_fleet_and_readings() {
        let mix = late_and_bad(0.1);
        let mut a = Fleet::new(8, 42);
        let mut b = Fleet::new(8, 42);
        for _ in 0..500 {
            assert_eq!(a.next_record(NOW, &mix), b.next_record(NOW, &mix));
        }
        let c = Fleet::new(8, 43);
        assert_ne!(a.devices()[0].id, c.devices()[0].id);
    }

    #[test]
    fn device_ids_are_unique_and_well_formed() {
        let fleet = Fleet::new(2000, 7);
        let ids: std::collections::HashSet<_> = fleet.devices().iter().map(|d| d.id.clone()).collect();
        assert_eq!(ids.len(), 2000);
        for id in ids {
            assert_eq!(id.len(), 13);
            assert!(id.starts_with("device-"));
            assert!(id[7..].chars().all(|c| c.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn good_records_validate_and_bad_records_do_not() {
        let mix = late_and_bad(0.2);
        let mut fleet = Fleet::new(8, 1);
        let mut seen_bad = std::collections::HashSet::new();
        for _ in 0..20_000 {
            let r = fleet.next_record(NOW, &mix);
            let parsed = parse_event(r.value.as_deref(), rules());
            match r.kind {
                RecordKind::Bad(kind) => {
                    assert!(parsed.is_err(), "{kind:?} parsed: {:?}", r.value);
                    seen_bad.insert(kind);
                }
                RecordKind::OnTime => assert_eq!(parsed.unwrap().ts, NOW),
                RecordKind::Late { delay_ms } => {
                    assert!((1..=120_000).contains(&delay_ms));
                    assert_eq!(parsed.unwrap().ts, NOW - delay_ms);
                }
            }
        }
        assert_eq!(seen_bad.len(), BadKind::ALL.len());
    }

    #[test]
    fn every_device_keeps_its_partition_key() {
        let mix = ON_TIME;
        let mut fleet = Fleet::new(3, 9);
        for _ in 0..30 {
            let r = fleet.next_record(NOW, &mix);
            let e = parse_event(r.value.as_deref(), rules()).unwrap();
            assert_eq!(e.device_id, r.key);
        }
    }

    #[test]
    fn readings_stay_realistic() {
        let mix = ON_TIME;
        let mut fleet = Fleet::new(4, 5);
        let (mut warn, mut error, n) = (0, 0, 40_000);
        for _ in 0..n {
            let r = fleet.next_record(NOW, &mix);
            let e = parse_event(r.value.as_deref(), rules()).unwrap();
            assert!((10.0..40.0).contains(&e.temperature), "{}", e.temperature);
            match e.status {
                Status::Warn => warn += 1,
                Status::Error => error += 1,
                Status::Ok => {}
            }
        }
        assert!(warn > n / 50 && warn < n / 10, "warn {warn}");
        assert!(error > 0 && error < n / 20, "error {error}");
    }
}
