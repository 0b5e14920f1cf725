//! Golden expectations: the aggregates and dead letters the event contract implies for a topic's records,
//! computed here independently of the job (the contract restated on `serde_json::Value`), and the comparisons
//! the end-to-end tests make against the job's outputs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::{Consumed, HistoryRow};

/// Window size the golden tests run with (the default).
pub const WINDOW_MS: u64 = 10_000;
/// Lateness the golden tests run with (the default).
pub const LATENESS_MS: u64 = 60_000;

/// One valid event's readings: temperature, humidity, battery, status.
pub type Reading = (f64, f64, f64, String);

/// The window kinds of the golden tests, restated here apart from the job's `model::window_kind`
/// (`docs/semantics.md`, "Window kinds"). Sizes in ms.
#[derive(Clone, Copy, Debug)]
pub enum Windows {
    /// Windows `[k·size, (k+1)·size)`.
    Tumbling(u64),
    /// Windows of `size` starting at every multiple of `slide`.
    Hopping {
        /// Window size.
        size: u64,
        /// Slide.
        slide: u64,
    },
    /// Per-device sessions split where the next event is `gap` or more after the last.
    Session {
        /// Gap.
        gap: u64,
    },
}

/// The aggregates and dead letters the contract implies for a topic's records.
pub struct Expected {
    /// Readings per (device, window start).
    pub rows: BTreeMap<(String, u64), Vec<Reading>>,
    /// Window end per (device, window start).
    pub ends: BTreeMap<(String, u64), u64>,
    /// (partition, offset) of bad records.
    pub bad: BTreeSet<(i32, i64)>,
    /// (partition, offset) of late events.
    pub late: BTreeSet<(i32, i64)>,
}

/// The event contract, restated here on `serde_json::Value` so the test does not share the job's parser.
pub fn valid_event(bytes: Option<&[u8]>, created_ms: u64) -> Option<(String, u64, f64, f64, f64, String)> {
    let v: serde_json::Value = serde_json::from_slice(bytes?).ok()?;
    let o = v.as_object()?;
    let text = |k: &str| {
        o.get(k)?
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 64 && !s.chars().any(char::is_control))
            .map(String::from)
    };
    let num = |k: &str, lo: f64, hi: f64| o.get(k)?.as_f64().filter(|x| (lo..=hi).contains(x));
    let device = text("device_id")?;
    text("location")?;
    let ts = o.get("ts")?.as_u64().filter(|&t| t <= created_ms + 3_600_000)?;
    let status = o
        .get("status")?
        .as_str()
        .filter(|s| ["ok", "warn", "error"].contains(s))?
        .to_string();
    Some((
        device,
        ts,
        num("temperature", -60.0, 150.0)?,
        num("humidity", 0.0, 100.0)?,
        num("battery", 0.0, 100.0)?,
        status,
    ))
}

/// The expected outcome of a topic's records with the default tumbling windows.
pub fn expected(records: &[Consumed]) -> Expected {
    expected_for(records, Windows::Tumbling(WINDOW_MS))
}

/// The expected outcome of a topic's records with `windows` (and the default lateness).
pub fn expected_for(records: &[Consumed], windows: Windows) -> Expected {
    let mut sorted: Vec<&Consumed> = records.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut max_ts: BTreeMap<i32, u64> = BTreeMap::new();
    let mut e = Expected {
        rows: BTreeMap::new(),
        ends: BTreeMap::new(),
        bad: BTreeSet::new(),
        late: BTreeSet::new(),
    };
    // Sessions are split once every on-time event of a device is known.
    let mut on_time: BTreeMap<String, Vec<(u64, Reading)>> = BTreeMap::new();
    for r in sorted {
        let created = r.timestamp_ms.unwrap_or(i64::MAX) as u64;
        let Some((device, ts, t, h, b, status)) = valid_event(r.value.as_deref(), created) else {
            e.bad.insert((r.partition, r.offset));
            continue;
        };
        let watermark = max_ts.get(&r.partition).map_or(0, |m| m.saturating_sub(LATENESS_MS));
        let m = max_ts.entry(r.partition).or_insert(ts);
        *m = (*m).max(ts);
        let reading = (t, h, b, status);
        match windows {
            Windows::Tumbling(size) => {
                let start = ts - ts % size;
                if start + size <= watermark {
                    e.late.insert((r.partition, r.offset));
                } else {
                    e.ends.insert((device.clone(), start), start + size);
                    e.rows.entry((device, start)).or_default().push(reading);
                }
            }
            Windows::Hopping { size, slide } => {
                // Every multiple of the slide in (ts - size, ts] starts a window holding the event.
                let starts: Vec<u64> = (0..=ts / slide)
                    .rev()
                    .map(|k| k * slide)
                    .take_while(|s| s + size > ts)
                    .collect();
                let earliest_end = starts.iter().min().expect("the window starting at or below ts") + size;
                if earliest_end <= watermark {
                    e.late.insert((r.partition, r.offset));
                } else {
                    for start in starts {
                        e.ends.insert((device.clone(), start), start + size);
                        e.rows.entry((device.clone(), start)).or_default().push(reading.clone());
                    }
                }
            }
            Windows::Session { .. } => {
                if ts < watermark {
                    e.late.insert((r.partition, r.offset));
                } else {
                    on_time.entry(device).or_default().push((ts, reading));
                }
            }
        }
    }
    if let Windows::Session { gap } = windows {
        for (device, mut events) in on_time {
            events.sort_by_key(|(ts, _)| *ts);
            let mut first = 0;
            let mut last: Option<u64> = None;
            for (ts, reading) in events {
                if last.is_none_or(|l| ts >= l + gap) {
                    first = ts;
                }
                last = Some(ts);
                e.ends.insert((device.clone(), first), ts + gap);
                e.rows.entry((device.clone(), first)).or_default().push(reading);
            }
        }
    }
    e
}

/// Equal within 1e-9 relative.
pub fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Asserts one row per expected (device, window) with exact counts and floats within 1e-9 relative.
pub fn assert_history_matches(history: &[HistoryRow], e: &Expected) {
    assert_eq!(history.len(), e.rows.len(), "one row per (device, window)");
    for row in history {
        let key = (row.device_id.clone(), row.window_start as u64);
        let events = e.rows.get(&key).unwrap_or_else(|| panic!("unexpected row {row:?}"));
        let n = events.len() as f64;
        let mean_t = events.iter().map(|x| x.0).sum::<f64>() / n;
        let mean_h = events.iter().map(|x| x.1).sum::<f64>() / n;
        let var_t = events.iter().map(|x| (x.0 - mean_t).powi(2)).sum::<f64>() / n;
        let min_b = events.iter().map(|x| x.2).fold(f64::INFINITY, f64::min);
        let max_b = events.iter().map(|x| x.2).fold(f64::NEG_INFINITY, f64::max);
        let warn = events.iter().filter(|x| x.3 == "warn").count() as i64;
        let error = events.iter().filter(|x| x.3 == "error").count() as i64;
        assert_eq!(row.count, events.len() as i64, "{key:?}");
        assert_eq!(row.window_end as u64, e.ends[&key], "{key:?} window end");
        assert!(
            close(row.avg_temperature, mean_t),
            "{key:?} avg_temperature {} vs {mean_t}",
            row.avg_temperature
        );
        assert!(
            close(row.avg_humidity, mean_h),
            "{key:?} avg_humidity {} vs {mean_h}",
            row.avg_humidity
        );
        assert!(
            (row.stddev_temperature - var_t.sqrt()).abs() <= 1e-9 * mean_t.abs().max(1.0),
            "{key:?} stddev {} vs {}",
            row.stddev_temperature,
            var_t.sqrt()
        );
        assert_eq!((row.min_battery, row.max_battery), (min_b, max_b), "{key:?}");
        assert_eq!((row.warn_count, row.error_count), (warn, error), "{key:?}");
    }
}

/// Every dead letter as (reason, partition, offset), sorted.
pub fn dead_letters(dir: &Path) -> Vec<(String, i32, i64)> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            out.push((
                v["reason"].as_str().unwrap().to_string(),
                v["partition"].as_i64().unwrap() as i32,
                v["offset"].as_i64().unwrap(),
            ));
        }
    }
    out.sort();
    out
}

/// Asserts that the dead letters in `dir` name exactly the expected late and bad records (by partition and
/// offset) and returns how many lines there are (a record read again after a crash may appear twice).
pub fn assert_dead_letters_match(dir: &Path, e: &Expected) -> usize {
    let letters = dead_letters(dir);
    let of = |late: bool| -> BTreeSet<(i32, i64)> {
        letters
            .iter()
            .filter(|l| (l.0 == "late") == late)
            .map(|l| (l.1, l.2))
            .collect()
    };
    assert_eq!(of(true), e.late, "late events");
    assert_eq!(of(false), e.bad, "bad events");
    letters.len()
}
