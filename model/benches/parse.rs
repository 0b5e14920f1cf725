//! Micro-benchmarks of the per-event hot path in the model crate: `parse_event` on realistic payloads (valid,
//! and every kind of bad record the simulator and the event contract know) and `WindowAgg::add`. Run with
//! `cargo bench -p model --bench parse`; figures are time per event. See BENCHMARKS.md for recorded results.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use model::{Status, Validation, WindowAgg, parse_event};

const NOW: u64 = 1_730_638_574_123;

const RULES: Validation = Validation {
    now_ms: NOW,
    max_future_ms: 3_600_000,
};

/// A payload exactly as the simulator writes it (field order, two-decimal readings).
const VALID: &str = r#"{"device_id":"device-3fa2c1","ts":1730638574123,"temperature":24.73,"humidity":55.31,"battery":82.47,"status":"ok","location":"floor-1"}"#;

/// Payloads, by the name the benchmark reports. The bad ones cover each dead-letter reason the parser decides.
fn payloads() -> Vec<(&'static str, Option<Vec<u8>>)> {
    let valid = VALID.as_bytes().to_vec();
    let mut bad_utf8 = valid.clone();
    let dash = bad_utf8.iter().position(|&b| b == b'-').expect("a dash");
    bad_utf8[dash] = 0xC3;
    bad_utf8.insert(dash + 1, 0x28);
    let owned = |s: &str| Some(s.as_bytes().to_vec());
    vec![
        ("valid", Some(valid)),
        (
            "valid_escaped_id",
            owned(&VALID.replace("device-3fa2c1", r"a\/b \ud83d\udd25-sensor")),
        ),
        (
            "valid_extra_fields",
            owned(&VALID.replace(r#""location""#, r#""firmware":{"v":[1,2,3],"ok":true},"location""#)),
        ),
        ("tombstone", None),
        ("empty", Some(Vec::new())),
        ("bad_utf8", Some(bad_utf8)),
        ("truncated", owned(&VALID[..VALID.len() / 2])),
        ("nan_literal", owned(&VALID.replace("24.73", "NaN"))),
        ("not_object", owned("[1,2,3]")),
        ("missing_field", owned(&VALID.replace(r#","humidity":55.31"#, ""))),
        ("duplicate_field", owned(&VALID.replacen('{', r#"{"ts":1,"#, 1))),
        ("wrong_type", owned(&VALID.replace("24.73", r#""24.73""#))),
        ("out_of_range", owned(&VALID.replace("55.31", "140.2"))),
        ("bad_status", owned(&VALID.replace(r#""ok""#, r#""OK""#))),
        ("bad_string", owned(&VALID.replace("device-3fa2c1", &"x".repeat(65)))),
        ("far_future", owned(&VALID.replace("1730638574123", "1830638574123"))),
    ]
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_event");
    group.throughput(Throughput::Elements(1));
    for (name, payload) in payloads() {
        let payload = payload.as_deref();
        // A benchmark of a bad payload that parsed would measure the wrong path.
        let ok = parse_event(payload, RULES).is_ok();
        assert_eq!(ok, name.starts_with("valid"), "{name}");
        group.bench_with_input(BenchmarkId::from_parameter(name), &payload, |b, p| {
            b.iter(|| parse_event(black_box(*p), RULES).is_ok())
        });
    }
    group.finish();
}

fn window_agg(c: &mut Criterion) {
    // Readings in the simulator's ranges; about 5 % warn and 1 % error like the fleet.
    let readings: Vec<(f64, f64, f64, Status)> = (0..1024u32)
        .map(|i| {
            let x = f64::from(i);
            let status = match i % 100 {
                0 => Status::Error,
                1..=5 => Status::Warn,
                _ => Status::Ok,
            };
            (
                22.0 + (x * 0.37).sin() * 2.0,
                50.0 + (x * 0.11).cos() * 5.0,
                90.0 - x * 0.001,
                status,
            )
        })
        .collect();
    let mut group = c.benchmark_group("window_agg");
    group.throughput(Throughput::Elements(readings.len() as u64));
    group.bench_function("add", |b| {
        b.iter(|| {
            let mut agg = WindowAgg::default();
            for &(t, h, bat, s) in black_box(&readings) {
                agg.add(t, h, bat, s);
            }
            agg
        })
    });
    group.finish();
}

criterion_group!(benches, parse, window_agg);
criterion_main!(benches);
