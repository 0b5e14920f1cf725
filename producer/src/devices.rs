//! The device table the simulator publishes beside its readings (`--devices-topic`): every device's metadata
//! row — its site, model and its own temperature limit — keyed as Flink's upsert-kafka writes a table
//! (`{"device_id": ...}`), then seeded changes at an even rate: a device moved to another site, or its limit
//! changed. Each row carries `updated_at`, the time of the change, which a job joins on as of its readings'
//! event time (`docs/SQL.md`, "Temporal joins"). Same seed, same table, same changes.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::json;

use crate::sim::{Device, LOCATIONS};

/// Models the simulator assigns.
pub const MODELS: [&str; 3] = ["th-100", "th-200", "env-x"];

/// One device's row of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceRow {
    /// The primary key.
    pub device_id: String,
    /// Where it stands (first its reported location).
    pub site: &'static str,
    /// Its model.
    pub model: &'static str,
    /// Its own temperature limit, °C (one decimal).
    pub max_temperature: f64,
}

/// A table record: key and value, as produced.
#[derive(Clone, Debug, PartialEq)]
pub struct TableRecord {
    /// `{"device_id": ...}`.
    pub key: String,
    /// The row with `updated_at`.
    pub value: Vec<u8>,
}

/// The fleet's table and the generator of its changes.
pub struct DeviceTable {
    rows: Vec<DeviceRow>,
    rng: Xoshiro256PlusPlus,
}

impl DeviceTable {
    /// The table of `devices`, derived from `seed` (apart from the readings' generator).
    pub fn new(devices: &[Device], seed: u64) -> DeviceTable {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x7ab1_e5ee_d000_0001);
        let rows = devices
            .iter()
            .map(|d| DeviceRow {
                device_id: d.id.clone(),
                site: d.location,
                model: MODELS[rng.random_range(0..MODELS.len())],
                max_temperature: tenth(rng.random_range(21.0..28.0)),
            })
            .collect();
        DeviceTable { rows, rng }
    }

    /// The rows.
    pub fn rows(&self) -> &[DeviceRow] {
        &self.rows
    }

    /// Every row as of `now_ms`: what the simulator publishes first.
    pub fn snapshot(&self, now_ms: u64) -> Vec<TableRecord> {
        self.rows.iter().map(|r| record(r, now_ms)).collect()
    }

    /// The next change, at `now_ms`: one device, chosen at random, moves to another site or gets another limit.
    pub fn next_change(&mut self, now_ms: u64) -> TableRecord {
        let i = self.rng.random_range(0..self.rows.len());
        let moved: bool = self.rng.random_bool(0.5);
        let row = &mut self.rows[i];
        if moved {
            let others: Vec<&'static str> = LOCATIONS.iter().copied().filter(|s| *s != row.site).collect();
            row.site = others[self.rng.random_range(0..others.len())];
        } else {
            let step = tenth(self.rng.random_range(0.5..3.0));
            row.max_temperature = if self.rng.random_bool(0.5) {
                tenth(row.max_temperature + step)
            } else {
                tenth((row.max_temperature - step).max(15.0))
            };
        }
        record(&self.rows[i], now_ms)
    }
}

fn tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn record(row: &DeviceRow, now_ms: u64) -> TableRecord {
    let value = json!({
        "device_id": row.device_id,
        "site": row.site,
        "model": row.model,
        "max_temperature": row.max_temperature,
        "updated_at": model::time::rfc3339_ms(now_ms),
    });
    TableRecord {
        key: json!({ "device_id": row.device_id }).to_string(),
        value: serde_json::to_vec(&value).expect("a JSON value"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Fleet;

    #[test]
    fn same_seed_gives_same_table_and_changes() {
        let fleet = Fleet::new(20, 7);
        let (mut a, mut b) = (
            DeviceTable::new(fleet.devices(), 7),
            DeviceTable::new(fleet.devices(), 7),
        );
        assert_eq!(a.snapshot(1_000), b.snapshot(1_000));
        let changes = |t: &mut DeviceTable| (0..50).map(|i| t.next_change(2_000 + i)).collect::<Vec<_>>();
        assert_eq!(changes(&mut a), changes(&mut b));
    }

    #[test]
    fn a_change_moves_a_device_or_changes_its_limit_and_is_keyed_by_its_id() {
        let fleet = Fleet::new(5, 3);
        let mut t = DeviceTable::new(fleet.devices(), 3);
        let before = t.rows().to_vec();
        let change = t.next_change(5_000);
        let value: serde_json::Value = serde_json::from_slice(&change.value).unwrap();
        let id = value["device_id"].as_str().unwrap();
        assert_eq!(change.key, json!({ "device_id": id }).to_string());
        assert_eq!(value["updated_at"], json!(model::time::rfc3339_ms(5_000)));
        let old = before.iter().find(|r| r.device_id == id).unwrap();
        let new = t.rows().iter().find(|r| r.device_id == id).unwrap();
        assert!(
            old.site != new.site || old.max_temperature != new.max_temperature,
            "{old:?} → {new:?}"
        );
        assert!(LOCATIONS.contains(&new.site));
    }
}
