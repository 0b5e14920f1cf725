//! Fleet views, maintained incrementally with differential dataflow from final windows: the latest final window
//! of each device (a new window retracts the previous one), a rollup per location, and the current alert set
//! (battery low, status error, temperature outside a band). Their state is bounded by the number of devices.
//! Floats travel as bit patterns so that rows are `Ord` and hashable, as differential requires.
//!
//! The views read the seed's output columns by name ([`FleetColumns`]): a query that has them (the built-in job
//! does) gets the views; any other gets none, and `latest.json` says which columns are missing. A query that also
//! outputs a `temperature_limit` (a device's own limit, e.g. `LAST_VALUE(d.max_temperature)` from a temporally
//! joined device table) raises `temperature_high` above that limit instead of `--alert-temperature-above`.

use std::collections::HashMap;

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Concat;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;

use model::output::OutputSchema;
use model::value::Value;

use crate::messages::{AlertRow, LatestIn, RollupRow, WindowMsg, WindowOut};

/// The output columns the views read, by name, and where they are in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetColumns {
    count: usize,
    avg_temperature: usize,
    avg_humidity: usize,
    min_battery: usize,
    warn_count: usize,
    error_count: usize,
    temperature_limit: Option<usize>,
}

/// The output column of a device's own temperature limit, when the query has one.
pub const TEMPERATURE_LIMIT: &str = "temperature_limit";

impl FleetColumns {
    /// The columns of `schema`, when it has them all, one key (the device), and the job carries a location
    /// (`side`); otherwise a sentence saying what is missing.
    pub fn of(schema: &OutputSchema, side: bool) -> Result<FleetColumns, String> {
        let names = [
            "count",
            "avg_temperature",
            "avg_humidity",
            "min_battery",
            "warn_count",
            "error_count",
        ];
        let found: Vec<Option<usize>> = names.iter().map(|n| schema.index_of(n)).collect();
        let missing: Vec<&str> = names
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(n, _)| *n)
            .collect();
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!("the query has no {} column", missing.join(", ")));
        }
        if schema.key_count() != 1 {
            why.push(format!("it groups by {} keys, not one device", schema.key_count()));
        }
        if !side {
            why.push("its table has no TEXT location column".to_string());
        }
        if !why.is_empty() {
            return Err(format!(
                "fleet views need the built-in job's columns (count, avg_temperature, avg_humidity, min_battery, \
                 warn_count, error_count), one key and a location: {}",
                why.join("; ")
            ));
        }
        let at = |i: usize| found[i].expect("checked");
        Ok(FleetColumns {
            count: at(0),
            avg_temperature: at(1),
            avg_humidity: at(2),
            min_battery: at(3),
            warn_count: at(4),
            error_count: at(5),
            temperature_limit: schema.index_of(TEMPERATURE_LIMIT),
        })
    }
}

/// A count of a row, as the views add them (NULL and negatives as 0).
fn count_in(row: &[Value], i: usize) -> u64 {
    match row.get(i) {
        Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

/// A figure of a row (NULL as NaN).
fn figure_in(row: &[Value], i: usize) -> f64 {
    row.get(i).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

/// Alert thresholds (flags).
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// `battery_low` when the window's minimum battery is below this.
    pub battery_below: f64,
    /// `temperature_high` when the window's mean temperature is above this.
    pub temperature_above: f64,
    /// `temperature_low` when the window's mean temperature is below this.
    pub temperature_below: f64,
}

/// A device's latest final window, as the fleet views see it: the rollup of one device.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeviceRow {
    /// Location.
    pub location: String,
    /// Window end, ms.
    pub window_end: u64,
    /// The window's figures (`devices` = 1, `events` = its count).
    pub figures: RollupRow,
    /// The device's own temperature limit (bits of the DOUBLE), when the query outputs one and it is not NULL.
    pub temperature_limit: Option<u64>,
}

impl DeviceRow {
    /// The row of a final window.
    pub fn of(w: &WindowOut, c: FleetColumns) -> DeviceRow {
        let r = &w.row;
        DeviceRow {
            location: w.side.to_string(),
            window_end: w.end,
            figures: RollupRow {
                devices: 1,
                events: count_in(r, c.count),
                avg_temperature: figure_in(r, c.avg_temperature).to_bits(),
                avg_humidity: figure_in(r, c.avg_humidity).to_bits(),
                min_battery: figure_in(r, c.min_battery).to_bits(),
                warn_count: count_in(r, c.warn_count),
                error_count: count_in(r, c.error_count),
            },
            temperature_limit: c
                .temperature_limit
                .map(|i| figure_in(r, i))
                .filter(|v| !v.is_nan())
                .map(f64::to_bits),
        }
    }
}

/// The two views' output streams: `((location, rollup), time, diff)` and `(alert, time, diff)` updates.
pub struct FleetStreams<'s> {
    /// Rollup updates per location.
    pub rollups: VecCollection<'s, u64, (String, RollupRow), isize>,
    /// Alert updates.
    pub alerts: VecCollection<'s, u64, AlertRow, isize>,
}

/// Builds the views from the window operator's output and turns their changes into `latest.json` updates.
pub fn views<'s>(
    windows: StreamVec<'s, u64, WindowMsg>,
    columns: FleetColumns,
    thresholds: Thresholds,
) -> StreamVec<'s, u64, LatestIn> {
    let views = build(windows, columns, thresholds);
    views
        .rollups
        .inner
        .map(|((location, row), _time, diff)| LatestIn::Rollup(location, row, diff))
        .concat(
            views
                .alerts
                .inner
                .map(|(alert, _time, diff)| LatestIn::Alert(alert, diff)),
        )
}

/// Builds the views from the window operator's output (final windows only are used).
pub fn build<'s>(
    windows: StreamVec<'s, u64, WindowMsg>,
    columns: FleetColumns,
    thresholds: Thresholds,
) -> FleetStreams<'s> {
    // The window operator sends every window of a device from the same worker, in window order, so the previous
    // final window of a device is known here and can be retracted when the next one arrives.
    let latest = windows
        .unary::<timely::container::CapacityContainerBuilder<Vec<_>>, _, _, _>(Pipeline, "LatestFinal", |_, _| {
            let mut previous: HashMap<String, DeviceRow> = HashMap::new();
            move |input, output| {
                input.for_each(|cap, data| {
                    let Some(&time) = cap.least() else { return };
                    let mut session = output.session(&cap);
                    let finals = data.drain(..).filter_map(|m| match m {
                        WindowMsg::Data(w) if w.is_final => Some(w),
                        _ => None,
                    });
                    for w in finals {
                        let row = DeviceRow::of(&w, columns);
                        let device = w.key.label();
                        match previous.get(&device) {
                            Some(prev) if prev.window_end >= row.window_end => continue,
                            Some(prev) => session.give(((device.clone(), prev.clone()), time, -1isize)),
                            None => {}
                        }
                        session.give(((device.clone(), row.clone()), time, 1isize));
                        previous.insert(device, row);
                    }
                });
            }
        })
        .as_collection();

    // A location's rollup needs the multiset of its devices' figures, not who they are: the reduce arranges
    // plain figures under each location (no device ids, no strings), so its state stays small.
    let rollups =
        latest
            .clone()
            .map(|(_device, row)| (row.location, row.figures))
            .reduce(|_location, input, output| {
                let mut r = RollupRow {
                    devices: 0,
                    events: 0,
                    avg_temperature: 0,
                    avg_humidity: 0,
                    min_battery: f64::INFINITY.to_bits(),
                    warn_count: 0,
                    error_count: 0,
                };
                let (mut sum_t, mut sum_h, mut min_b) = (0.0, 0.0, f64::INFINITY);
                for (f, diff) in input {
                    let n = *diff as u64;
                    r.devices += n;
                    r.events += f.events * n;
                    sum_t += f64::from_bits(f.avg_temperature) * (f.events * n) as f64;
                    sum_h += f64::from_bits(f.avg_humidity) * (f.events * n) as f64;
                    min_b = min_b.min(f64::from_bits(f.min_battery));
                    r.warn_count += f.warn_count * n;
                    r.error_count += f.error_count * n;
                }
                let events = r.events.max(1) as f64;
                r.avg_temperature = (sum_t / events).to_bits();
                r.avg_humidity = (sum_h / events).to_bits();
                r.min_battery = min_b.to_bits();
                output.push((r, 1isize));
            });

    let alerts = latest.flat_map(move |(device, row): (String, DeviceRow)| alerts_of(&device, &row, thresholds));
    FleetStreams { rollups, alerts }
}

/// The alerts one device's latest final window raises.
pub fn alerts_of(device: &str, row: &DeviceRow, t: Thresholds) -> Vec<AlertRow> {
    let mut out = Vec::new();
    let mut raise = |kind: &str, value: f64| {
        out.push(AlertRow {
            device_id: device.to_string(),
            kind: kind.to_string(),
            value: value.to_bits(),
            window_end: row.window_end,
        })
    };
    let battery = f64::from_bits(row.figures.min_battery);
    let temperature = f64::from_bits(row.figures.avg_temperature);
    if battery < t.battery_below {
        raise("battery_low", battery);
    }
    if row.figures.error_count > 0 {
        raise("status_error", row.figures.error_count as f64);
    }
    let above = row.temperature_limit.map_or(t.temperature_above, f64::from_bits);
    if temperature > above {
        raise("temperature_high", temperature);
    }
    if temperature < t.temperature_below {
        raise("temperature_low", temperature);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(battery: f64, temperature: f64, errors: u64) -> DeviceRow {
        DeviceRow {
            location: "lab".into(),
            window_end: 10,
            figures: RollupRow {
                devices: 1,
                events: 4,
                avg_temperature: temperature.to_bits(),
                avg_humidity: 50f64.to_bits(),
                min_battery: battery.to_bits(),
                warn_count: 0,
                error_count: errors,
            },
            temperature_limit: None,
        }
    }

    const T: Thresholds = Thresholds {
        battery_below: 20.0,
        temperature_above: 35.0,
        temperature_below: 5.0,
    };

    #[test]
    fn healthy_window_raises_nothing() {
        assert!(alerts_of("d", &row(50.0, 22.0, 0), T).is_empty());
    }

    #[test]
    fn each_threshold_raises_its_alert() {
        let kinds = |r| alerts_of("d", &r, T).into_iter().map(|a| a.kind).collect::<Vec<_>>();
        assert_eq!(kinds(row(19.9, 22.0, 0)), ["battery_low"]);
        assert_eq!(kinds(row(50.0, 22.0, 2)), ["status_error"]);
        assert_eq!(kinds(row(50.0, 35.5, 0)), ["temperature_high"]);
        assert_eq!(kinds(row(50.0, 4.0, 0)), ["temperature_low"]);
    }

    #[test]
    fn a_devices_own_limit_replaces_the_flag_for_temperature_high() {
        let limited = |limit: f64, temperature: f64| DeviceRow {
            temperature_limit: Some(limit.to_bits()),
            ..row(50.0, temperature, 0)
        };
        let kinds = |r| alerts_of("d", &r, T).into_iter().map(|a| a.kind).collect::<Vec<_>>();
        assert_eq!(
            kinds(limited(24.0, 25.0)),
            ["temperature_high"],
            "above its own 24, under the flag's 35"
        );
        assert!(
            kinds(limited(40.0, 36.0)).is_empty(),
            "under its own 40, above the flag's 35"
        );
    }

    /// Runs final windows `(device, location, window_end, mean temperature, min battery)` through the views,
    /// one timely round each (the dataflow runs to completion when the input closes), and folds their updates
    /// into the views as they stand.
    fn fleet_after(windows: &[(&str, &str, u64, f64, f64)]) -> model::FleetView {
        use timely::dataflow::InputHandle;
        use timely::dataflow::operators::capture::{Capture, Event};
        let p = crate::query::testing::program();
        let columns = FleetColumns::of(&p.query.schema, p.query.carries_side()).unwrap();
        let finals: Vec<WindowMsg> = windows
            .iter()
            .map(|&(device, location, end, temperature, battery)| {
                let payload = format!(
                    r#"{{"device_id":"{device}","ts":{},"temperature":{temperature},"humidity":50,"battery":{battery},"status":"ok","location":"{location}"}}"#,
                    end - 10
                );
                let crate::query::Record::Event(r) = p
                    .query
                    .read(Some(payload.as_bytes()), end, 3_600_000, &crate::query::NoUdfs, &mut Vec::new())
                    .unwrap()
                else {
                    panic!("no WHERE")
                };
                let mut accs = p.query.new_accs();
                p.query.fold(&mut accs, &r.inputs, r.ts);
                let row = p.query.emit(&r.key, end - 10, end, &accs, &crate::query::NoUdfs).unwrap();
                WindowMsg::Data(WindowOut {
                    key: r.key,
                    start: end - 10,
                    end,
                    row,
                    side: r.side,
                    is_final: true,
                })
            })
            .collect();
        let updates = timely::execute_directly(move |worker| {
            let mut input = InputHandle::new();
            let rx = worker.dataflow::<u64, _, _>(|scope| views(input.to_stream(scope), columns, T).capture());
            for (round, w) in finals.into_iter().enumerate() {
                input.send(w);
                input.advance_to(round as u64 + 1);
            }
            rx
        });
        let mut tally = crate::messages::FleetTally::default();
        for event in updates.try_iter() {
            if let Event::Messages(_, data) = event {
                for update in data {
                    match update {
                        LatestIn::Rollup(location, row, diff) => tally.rollup(location, row, diff),
                        LatestIn::Alert(alert, diff) => tally.alert(alert, diff),
                        _ => {}
                    }
                }
            }
        }
        tally.view()
    }

    #[test]
    fn the_views_need_the_built_in_jobs_columns_and_say_which_are_missing() {
        let p = crate::query::testing::program();
        assert!(FleetColumns::of(&p.query.schema, true).is_ok());
        let why = FleetColumns::of(&p.query.schema, false).unwrap_err();
        assert!(why.contains("location"), "{why}");
        let text = "CREATE TABLE t (sensor_id TEXT NOT NULL, at TIMESTAMP NOT NULL, co2 BIGINT,
                    WATERMARK FOR at AS at) WITH ('connector' = 'file', 'path' = 'x', 'format' = 'json');
                    SELECT sensor_id, COUNT(*) AS count FROM t GROUP BY tumble(interval '1 second'), sensor_id";
        let q = crate::query::Query::compile(sql::plan_job(text, &[]).unwrap(), text.into(), false).unwrap();
        let why = FleetColumns::of(&q.schema, false).unwrap_err();
        assert!(
            why.contains("avg_temperature, avg_humidity, min_battery, warn_count, error_count"),
            "{why}"
        );
    }

    #[test]
    fn a_devices_newer_window_replaces_its_older_one_in_the_rollup_and_alerts() {
        let fleet = fleet_after(&[
            ("a", "lab", 10_000, 20.0, 10.0),
            ("b", "lab", 10_000, 30.0, 90.0),
            ("a", "lab", 20_000, 24.0, 80.0),
        ]);
        assert_eq!(fleet.devices, 2);
        let lab = &fleet.locations[0];
        assert_eq!((lab.location.as_str(), lab.devices, lab.events), ("lab", 2, 2));
        assert_eq!(lab.avg_temperature, 27.0, "a's newer window (24) and b's (30)");
        assert_eq!(lab.min_battery, 80.0);
        assert!(fleet.alerts.is_empty(), "a's battery alert left with its old window");
    }

    #[test]
    fn a_device_that_moves_leaves_its_old_location() {
        let fleet = fleet_after(&[("a", "lab", 10_000, 20.0, 50.0), ("a", "office", 20_000, 20.0, 50.0)]);
        let locations: Vec<&str> = fleet.locations.iter().map(|l| l.location.as_str()).collect();
        assert_eq!(locations, ["office"]);
    }
}
