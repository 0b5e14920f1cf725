//! Tumbling-window arithmetic and the per-(device, window) aggregate: the accumulator the dataflow keeps for
//! each open window and the record it emits. Windows are aligned to the epoch: `start = ts - ts % size`.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::event::{Event, Status};
use crate::time::rfc3339_ms;
use crate::udf::UdfValues;

/// A half-open event-time interval `[start, end)` in epoch milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    /// Inclusive start, epoch ms.
    pub start: u64,
    /// Exclusive end, epoch ms.
    pub end: u64,
}

impl Window {
    /// The tumbling window of `size_ms` that holds `ts`. `size_ms` must be positive.
    pub fn of(ts: u64, size_ms: u64) -> Window {
        debug_assert!(size_ms > 0, "window size must be positive");
        let start = ts - ts % size_ms;
        Window {
            start,
            end: start.saturating_add(size_ms),
        }
    }
}

/// Running aggregate of one device's events in one window. Temperature uses Welford's update so that the
/// population standard deviation stays accurate when the spread is small next to the mean.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowAgg {
    /// Events folded in.
    pub count: u64,
    /// Running mean of temperature.
    pub mean_temperature: f64,
    /// Sum of squared deviations of temperature from the running mean.
    pub m2_temperature: f64,
    /// Sum of humidity.
    pub sum_humidity: f64,
    /// Smallest battery level.
    pub min_battery: f64,
    /// Largest battery level.
    pub max_battery: f64,
    /// Events with status `warn`.
    pub warn_count: u64,
    /// Events with status `error`.
    pub error_count: u64,
}

impl Default for WindowAgg {
    fn default() -> Self {
        WindowAgg {
            count: 0,
            mean_temperature: 0.0,
            m2_temperature: 0.0,
            sum_humidity: 0.0,
            min_battery: f64::INFINITY,
            max_battery: f64::NEG_INFINITY,
            warn_count: 0,
            error_count: 0,
        }
    }
}

impl WindowAgg {
    /// Folds one reading in.
    #[inline]
    pub fn add(&mut self, temperature: f64, humidity: f64, battery: f64, status: Status) {
        self.count += 1;
        let delta = temperature - self.mean_temperature;
        self.mean_temperature += delta / self.count as f64;
        self.m2_temperature += delta * (temperature - self.mean_temperature);
        self.sum_humidity += humidity;
        self.min_battery = self.min_battery.min(battery);
        self.max_battery = self.max_battery.max(battery);
        match status {
            Status::Ok => {}
            Status::Warn => self.warn_count += 1,
            Status::Error => self.error_count += 1,
        }
    }

    /// Folds another aggregate of the same device and window in (Chan et al.'s parallel update for the
    /// temperature moments), as when a restored window meets events that reached it first.
    pub fn merge(&mut self, other: &WindowAgg) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let delta = other.mean_temperature - self.mean_temperature;
        self.mean_temperature += delta * nb / n;
        self.m2_temperature += other.m2_temperature + delta * delta * na * nb / n;
        self.count += other.count;
        self.sum_humidity += other.sum_humidity;
        self.min_battery = self.min_battery.min(other.min_battery);
        self.max_battery = self.max_battery.max(other.max_battery);
        self.warn_count += other.warn_count;
        self.error_count += other.error_count;
    }

    /// Folds one event in.
    #[inline]
    pub fn add_event(&mut self, e: &Event<'_>) {
        self.add(e.temperature, e.humidity, e.battery, e.status);
    }

    /// The aggregate record for `device_id` and `window`.
    pub fn finish(&self, device_id: &str, window: Window) -> Aggregate {
        let n = self.count.max(1) as f64;
        Aggregate {
            device_id: device_id.to_string(),
            window_start: window.start,
            window_end: window.end,
            count: self.count,
            avg_temperature: self.mean_temperature,
            avg_humidity: self.sum_humidity / n,
            min_battery: self.min_battery,
            max_battery: self.max_battery,
            stddev_temperature: (self.m2_temperature / n).max(0.0).sqrt(),
            warn_count: self.warn_count,
            error_count: self.error_count,
            udf: UdfValues::new(),
        }
    }
}

/// The aggregate of one device in one window: the column set of `latest.json` records and of the Parquet history
/// (see `history`). Times are epoch milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// Device identifier.
    pub device_id: String,
    /// Window start, epoch ms.
    pub window_start: u64,
    /// Window end, epoch ms.
    pub window_end: u64,
    /// Events in the window.
    pub count: u64,
    /// Mean temperature.
    pub avg_temperature: f64,
    /// Mean humidity.
    pub avg_humidity: f64,
    /// Smallest battery level.
    pub min_battery: f64,
    /// Largest battery level.
    pub max_battery: f64,
    /// Population standard deviation of temperature.
    pub stddev_temperature: f64,
    /// Events with status `warn`.
    pub warn_count: u64,
    /// Events with status `error`.
    pub error_count: u64,
    /// The values of the job's UDF columns, by name (empty without `--udf`). Never skipped when serialised:
    /// aggregates travel between the processes of a cluster in a format that is not self-describing.
    #[serde(default)]
    pub udf: UdfValues,
}

impl Aggregate {
    /// The JSON form used in `latest.json`, with RFC 3339 times and the `final` flag.
    pub fn to_record(&self, is_final: bool) -> AggregateRecord {
        AggregateRecord {
            device_id: self.device_id.clone(),
            window_start: rfc3339_ms(self.window_start),
            window_end: rfc3339_ms(self.window_end),
            count: self.count,
            avg_temperature: self.avg_temperature,
            avg_humidity: self.avg_humidity,
            min_battery: self.min_battery,
            max_battery: self.max_battery,
            stddev_temperature: self.stddev_temperature,
            warn_count: self.warn_count,
            error_count: self.error_count,
            is_final,
            udf: self.udf.iter().map(|(name, v)| (name.clone(), v.to_json())).collect(),
        }
    }
}

/// An aggregate as it appears in JSON documents. The seed's eight fields (device, window bounds, count, means,
/// battery range) are required; the fields this project added are optional when read, each on its own, so that
/// any writer's document reads (the seed's own has no `stddev_temperature`, counts of statuses or `final`). A
/// float written as `null` (how JSON writers spell NaN) reads as NaN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AggregateRecord {
    /// Device identifier.
    pub device_id: String,
    /// Window start, RFC 3339 UTC.
    pub window_start: String,
    /// Window end, RFC 3339 UTC.
    pub window_end: String,
    /// Events in the window.
    pub count: u64,
    /// Mean temperature.
    #[serde(deserialize_with = "number_or_null")]
    pub avg_temperature: f64,
    /// Mean humidity.
    #[serde(deserialize_with = "number_or_null")]
    pub avg_humidity: f64,
    /// Smallest battery level.
    #[serde(deserialize_with = "number_or_null")]
    pub min_battery: f64,
    /// Largest battery level.
    #[serde(deserialize_with = "number_or_null")]
    pub max_battery: f64,
    /// Population standard deviation of temperature (NaN when the document has none).
    #[serde(default = "not_a_number", deserialize_with = "number_or_null")]
    pub stddev_temperature: f64,
    /// Events with status `warn`.
    #[serde(default)]
    pub warn_count: u64,
    /// Events with status `error`.
    #[serde(default)]
    pub error_count: u64,
    /// True once the watermark has passed the window's end; the values will not change again (false when the
    /// document does not say).
    #[serde(rename = "final", default)]
    pub is_final: bool,
    /// UDF columns (and any field of another writer beyond the contract's), by name, as plain JSON values.
    #[serde(flatten)]
    pub udf: BTreeMap<String, serde_json::Value>,
}

fn not_a_number() -> f64 {
    f64::NAN
}

/// A float written as a number, or as `null` (how serde_json writes NaN), which reads as NaN.
pub(crate) fn number_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_of_the_seed_with_its_eight_fields_reads() {
        let seed = r#"{"device_id":"d","window_start":"2024-11-03T14:30:00","window_end":"2024-11-03T14:30:10",
            "count":40,"avg_temperature":24.5,"avg_humidity":54.8,"min_battery":80.1,"max_battery":85.3}"#;
        let r: AggregateRecord = serde_json::from_str(seed).unwrap();
        assert_eq!((r.count, r.warn_count, r.error_count, r.is_final), (40, 0, 0, false));
        assert!(r.stddev_temperature.is_nan());
        assert!(r.udf.is_empty());
        let null: AggregateRecord =
            serde_json::from_str(&seed.replace("\"count\"", "\"stddev_temperature\":null,\"count\"")).unwrap();
        assert!(null.stddev_temperature.is_nan(), "NaN as JSON writes it reads back");
    }

    #[test]
    fn a_record_reads_any_subset_of_the_fields_beyond_the_seeds_and_null_floats() {
        let seed = r#""device_id":"d","window_start":"2024-11-03T14:30:00Z","window_end":"2024-11-03T14:30:10Z",
            "count":0,"avg_temperature":null,"avg_humidity":null,"min_battery":null,"max_battery":null"#;
        let r: AggregateRecord = serde_json::from_str(&format!("{{{seed},\"warn_count\":2}}")).unwrap();
        assert!(
            [r.avg_temperature, r.avg_humidity, r.min_battery, r.max_battery]
                .iter()
                .all(|v| v.is_nan())
        );
        assert_eq!((r.warn_count, r.error_count, r.is_final), (2, 0, false));
        let r: AggregateRecord = serde_json::from_str(&format!("{{{seed},\"final\":true}}")).unwrap();
        assert_eq!((r.warn_count, r.is_final), (0, true));
        for required in ["device_id", "window_start", "window_end", "count", "avg_temperature"] {
            let without: String = seed
                .split(',')
                .filter(|f| !f.contains(&format!("\"{required}\"")))
                .collect::<Vec<_>>()
                .join(",");
            let err = serde_json::from_str::<AggregateRecord>(&format!("{{{without}}}")).unwrap_err();
            assert!(err.to_string().contains(required), "{required}: {err}");
        }
    }

    #[test]
    fn windows_align_to_the_epoch() {
        assert_eq!(Window::of(0, 10_000), Window { start: 0, end: 10_000 });
        assert_eq!(Window::of(9_999, 10_000), Window { start: 0, end: 10_000 });
        assert_eq!(
            Window::of(10_000, 10_000),
            Window {
                start: 10_000,
                end: 20_000
            }
        );
        assert_eq!(
            Window::of(1_730_638_574_123, 10_000),
            Window {
                start: 1_730_638_570_000,
                end: 1_730_638_580_000
            }
        );
    }

    #[test]
    fn window_end_saturates_at_the_top_of_time() {
        let w = Window::of(u64::MAX, 10_000);
        assert_eq!(w.end, u64::MAX);
        assert_eq!(w.start, u64::MAX - u64::MAX % 10_000);
    }

    #[test]
    fn aggregate_matches_two_pass_statistics() {
        let temps = [24.1, 24.9, 25.3, 23.8, 24.4];
        let hums = [55.0, 54.0, 56.5, 55.5, 53.0];
        let bats = [82.5, 82.4, 82.3, 82.3, 82.2];
        let statuses = [Status::Ok, Status::Warn, Status::Ok, Status::Error, Status::Warn];
        let mut agg = WindowAgg::default();
        for i in 0..5 {
            agg.add(temps[i], hums[i], bats[i], statuses[i]);
        }
        let a = agg.finish("d", Window::of(0, 10));
        let mean: f64 = temps.iter().sum::<f64>() / 5.0;
        let var: f64 = temps.iter().map(|t| (t - mean) * (t - mean)).sum::<f64>() / 5.0;
        assert_eq!(a.count, 5);
        assert!((a.avg_temperature - mean).abs() < 1e-12);
        assert!((a.stddev_temperature - var.sqrt()).abs() < 1e-12);
        assert!((a.avg_humidity - 54.8).abs() < 1e-12);
        assert_eq!((a.min_battery, a.max_battery), (82.2, 82.5));
        assert_eq!((a.warn_count, a.error_count), (2, 1));
    }

    #[test]
    fn merging_two_halves_equals_adding_everything() {
        let readings: Vec<(f64, f64, f64, Status)> = (0..50)
            .map(|i| {
                (
                    20.0 + (i as f64 * 0.37).sin(),
                    50.0 + i as f64 * 0.1,
                    90.0 - i as f64 * 0.01,
                    Status::Ok,
                )
            })
            .collect();
        let mut whole = WindowAgg::default();
        let (mut a, mut b) = (WindowAgg::default(), WindowAgg::default());
        for (i, r) in readings.iter().enumerate() {
            whole.add(r.0, r.1, r.2, r.3);
            if i < 17 {
                a.add(r.0, r.1, r.2, r.3)
            } else {
                b.add(r.0, r.1, r.2, r.3)
            }
        }
        a.merge(&b);
        let (x, y) = (a.finish("d", Window::of(0, 10)), whole.finish("d", Window::of(0, 10)));
        assert_eq!(x.count, y.count);
        assert!((x.avg_temperature - y.avg_temperature).abs() < 1e-12);
        assert!((x.stddev_temperature - y.stddev_temperature).abs() < 1e-12);
        assert!((x.avg_humidity - y.avg_humidity).abs() < 1e-12);
        assert_eq!((x.min_battery, x.max_battery), (y.min_battery, y.max_battery));
        let mut empty = WindowAgg::default();
        empty.merge(&whole);
        assert_eq!(empty, whole);
    }

    #[test]
    fn constant_temperature_has_zero_stddev() {
        let mut agg = WindowAgg::default();
        for _ in 0..1000 {
            agg.add(150.0, 0.0, 0.0, Status::Ok);
        }
        assert_eq!(agg.finish("d", Window::of(0, 10)).stddev_temperature, 0.0);
    }

    #[test]
    fn record_uses_rfc3339_and_final_flag() {
        let mut agg = WindowAgg::default();
        agg.add(20.0, 50.0, 90.0, Status::Ok);
        let r = agg.finish("d", Window::of(1_730_643_000_000, 10_000)).to_record(true);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["window_start"], "2024-11-03T14:10:00Z");
        assert_eq!(json["window_end"], "2024-11-03T14:10:10Z");
        assert_eq!(json["final"], true);
    }
}
