//! User-defined functions end to end: the example crates of `udfs/` built and loaded by `dataflow --udf`, on a
//! replay and on the real broker, every value compared with a computation made here from the input; a UDF that
//! panics on some rows; kill -9 with aggregate UDF inputs open, restored with another `-w`; a restore with
//! another set of UDFs refused; crates that cannot be used refused before any input is read; both examples over
//! hopping and session windows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::time::Duration;

use testkit::golden::{Expected, Windows, assert_history_matches, close, expected, expected_for};
use testkit::run::{DataflowRun, ProducerRun};
use testkit::{
    Consumed, newest_manifest, read_history, read_history_column, read_latest, read_topic, require_broker, run, run_ok,
    seeded_topic, temp_dir, udf_crate, unique_topic,
};

/// A first build of the UDF crates' dependencies takes minutes on two cores (the suite builds them before the
/// tests; this bound covers a test run on its own).
const WITH_BUILD: Duration = Duration::from_secs(900);

/// The heat index of `heat_index` (udfs/heat_index), restated: Steadman's formula in °F, converted back to °C.
fn heat_index(t: f64, h: f64) -> f64 {
    let f = t * 1.8 + 32.0;
    (0.5 * (f + 61.0 + (f - 68.0) * 1.2 + h * 0.094) - 32.0) / 1.8
}

/// The nearest-rank 90th percentile of `temperature_p90` (udfs/temperature_p90), restated.
fn p90(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (v.len() * 9).div_ceil(10);
    v[rank.max(1) - 1]
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// Asserts the two example columns of every expected window against the values computed here.
fn assert_example_columns(out: &Path, e: &Expected) {
    let heat = read_history_column(out, "heat_index");
    let p = read_history_column(out, "temperature_p90");
    assert_eq!(heat.len(), e.rows.len(), "a heat_index per window");
    assert_eq!(p.len(), e.rows.len(), "a temperature_p90 per window");
    for ((device, start), readings) in &e.rows {
        let key = (device.clone(), *start as i64);
        let want = heat_index(mean(readings.iter().map(|r| r.0)), mean(readings.iter().map(|r| r.1)));
        let got = heat[&key].unwrap_or_else(|| panic!("{key:?}: heat_index is null"));
        assert!(close(got, want), "{key:?}: heat_index {got} vs {want}");
        let temps: Vec<f64> = readings.iter().map(|r| r.0).collect();
        assert_eq!(p[&key], Some(p90(&temps)), "{key:?}: temperature_p90 over {temps:?}");
    }
}

/// Bits of a column, for exact comparisons between runs.
fn bits(column: &BTreeMap<(String, i64), Option<f64>>) -> Vec<((String, i64), Option<u64>)> {
    column.iter().map(|(k, v)| (k.clone(), v.map(f64::to_bits))).collect()
}

fn examples(run: DataflowRun) -> DataflowRun {
    run.udf(&udf_crate("heat_index")).udf(&udf_crate("temperature_p90"))
}

#[test]
fn example_udfs_on_kafka_equal_an_independent_computation_for_any_worker_count() {
    let brokers = require_broker();
    let topic = seeded_topic(&brokers, "udf-kafka", 6000, 31);
    let e = expected(&read_topic(&brokers, &topic));
    assert!(
        !e.late.is_empty() && !e.bad.is_empty(),
        "late and bad records are mixed in"
    );
    let job = |workers: usize| {
        let dir = temp_dir("udf-kafka");
        let (out, dead) = (dir.join("out"), dir.join("dead"));
        let run = examples(DataflowRun::kafka(&brokers, &topic))
            .bounded()
            .workers(workers)
            .out(&out)
            .deadletter(&dead);
        run_ok(&mut run.command(), WITH_BUILD);
        out
    };
    let out = job(2);
    assert_history_matches(&read_history(&out), &e);
    assert_example_columns(&out, &e);

    let latest = read_latest(&out);
    assert_eq!(
        latest["udfs"],
        serde_json::json!([
            {"name": "heat_index", "kind": "scalar", "type": "float64"},
            {"name": "temperature_p90", "kind": "aggregate", "type": "float64"},
        ])
    );
    let heat = read_history_column(&out, "heat_index");
    for r in latest["records"].as_array().unwrap() {
        let start = chrono::DateTime::parse_from_rfc3339(r["window_start"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        let key = (r["device_id"].as_str().unwrap().to_string(), start);
        // serde_json reads floats to within one ulp (without its `float_roundtrip` feature): compare closely.
        let (got, want) = (
            r["heat_index"].as_f64().expect("a number"),
            heat[&key].expect("a value"),
        );
        assert!(close(got, want), "latest.json carries the column: {r} vs {want}");
        assert!(r["temperature_p90"].is_f64(), "{r}");
    }
    assert!(latest["pipeline"].get("udf_errors").is_none(), "no UDF failed");

    let reference = (
        bits(&read_history_column(&out, "heat_index")),
        bits(&read_history_column(&out, "temperature_p90")),
    );
    let columns = |out: &Path| {
        (
            bits(&read_history_column(out, "heat_index")),
            bits(&read_history_column(out, "temperature_p90")),
        )
    };
    for workers in [1, 3] {
        assert_eq!(columns(&job(workers)), reference, "-w {workers}");
    }

    // Two processes × one worker on loopback: windows, their UDF inputs and values cross processes.
    let dir = temp_dir("udf-cluster");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let hostfile = testkit::loopback_hostfile(&dir, 2);
    let spawn = |process: usize| {
        examples(DataflowRun::kafka(&brokers, &topic))
            .bounded()
            .cluster(2, process, &hostfile)
            .out(&out)
            .deadletter(&dead)
            .spawn()
    };
    for process in [spawn(0), spawn(1)] {
        process.wait_ok(WITH_BUILD);
    }
    assert_eq!(columns(&out), reference, "-n 2");
    assert_eq!(read_latest(&out)["udfs"], latest["udfs"]);
}

/// The records of a JSON-lines file as if read from one partition.
fn file_records(file: &Path) -> Vec<Consumed> {
    let bytes = std::fs::read(file).unwrap();
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(i, line)| Consumed {
            partition: 0,
            offset: i as i64,
            key: None,
            value: Some(line.to_vec()),
            timestamp_ms: None,
        })
        .collect()
}

#[test]
fn on_a_replay_a_udf_that_panics_on_some_rows_nulls_and_counts_only_those() {
    let dir = temp_dir("udf-replay");
    let file = dir.join("events.jsonl");
    run_ok(
        &mut ProducerRun::to_file(&file)
            .devices(6)
            .count(5000)
            .bad(0.02)
            .seed(8)
            .command(),
        Duration::from_secs(60),
    );
    let e = expected(&file_records(&file));
    assert!(e.late.is_empty(), "a replay in event-time order has no late event");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    // No live publication during the run (the trigger is a day): every UDF call is on a final window, so the
    // failure count is exact.
    let job = examples(DataflowRun::input(&file))
        .udf(&udf_crate("fixtures/flaky_ratio"))
        .workers(2)
        .trigger(Duration::from_secs(86_400))
        .out(&out)
        .deadletter(&dead);
    let output = run(&mut job.command(), WITH_BUILD);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    assert_history_matches(&read_history(&out), &e);
    assert_example_columns(&out, &e);
    let flaky = read_history_column(&out, "flaky_ratio");
    let mut odd = 0;
    for ((device, start), readings) in &e.rows {
        let key = (device.clone(), *start as i64);
        let n = readings.len();
        if n % 2 == 1 {
            odd += 1;
            assert_eq!(flaky[&key], None, "{key:?}: {n} events, the UDF panicked");
        } else {
            let warn = readings.iter().filter(|r| r.3 == "warn").count();
            assert_eq!(flaky[&key], Some(warn as f64 / n as f64), "{key:?}");
        }
    }
    assert!(
        odd > 0 && odd < e.rows.len(),
        "some rows fail, some do not ({odd} of {})",
        e.rows.len()
    );
    let latest = read_latest(&out);
    assert_eq!(
        latest["pipeline"]["udf_errors"],
        serde_json::json!({"flaky_ratio": odd})
    );
    assert_eq!(latest["pipeline"]["errors_by_kind"]["udf"].as_u64(), Some(odd as u64));
}

#[test]
fn kill_9_with_aggregate_udf_inputs_open_then_restore_with_another_worker_count_stays_exact() {
    let brokers = require_broker();
    let topic = unique_topic("udf-kill");
    testkit::create_topic(&brokers, &topic, 3);
    let producer = ProducerRun::kafka(&brokers, &topic)
        .devices(12)
        .rate(100.0)
        .count(24_000)
        .late_and_bad()
        .seed(19)
        .spawn();
    let dir = temp_dir("udf-kill");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let job = |workers: usize| {
        DataflowRun::kafka(&brokers, &topic)
            .udf(&udf_crate("temperature_p90"))
            .workers(workers)
            .checkpoint_interval(Duration::from_secs(1))
            .trigger(Duration::from_secs(1))
            .out(&out)
            .deadletter(&dead)
    };
    let mut running = job(1).spawn();
    // Wait for a checkpoint that holds open windows (their accumulators hold the UDF's inputs), then crash.
    let deadline = std::time::Instant::now() + WITH_BUILD;
    loop {
        assert!(running.is_running(), "the job exited by itself");
        assert!(std::time::Instant::now() < deadline, "no checkpoint with UDF inputs");
        let held = newest_manifest(&out)
            .and_then(|m| std::fs::read_to_string(m).ok())
            .is_some_and(|text| text.contains("\"accs\""));
        if held {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(700));
    running.kill9();
    producer.wait_ok(Duration::from_secs(300));

    run_ok(&mut job(3).bounded().command(), WITH_BUILD);
    let e = expected(&read_topic(&brokers, &topic));
    assert_history_matches(&read_history(&out), &e);
    let p = read_history_column(&out, "temperature_p90");
    assert_eq!(p.len(), e.rows.len());
    for ((device, start), readings) in &e.rows {
        let temps: Vec<f64> = readings.iter().map(|r| r.0).collect();
        assert_eq!(
            p[&(device.clone(), *start as i64)],
            Some(p90(&temps)),
            "{device} {start}"
        );
    }
}

#[test]
fn example_udfs_over_hopping_and_session_windows_equal_an_independent_computation() {
    let brokers = require_broker();
    let topic = seeded_topic(&brokers, "udf-kinds", 3000, 37);
    let records = read_topic(&brokers, &topic);
    let hopping = Windows::Hopping {
        size: 30_000,
        slide: 10_000,
    };
    type Kind = fn(DataflowRun) -> DataflowRun;
    let kinds: [(Windows, Kind); 2] = [
        (hopping, |job| {
            job.window(Duration::from_secs(30)).slide(Duration::from_secs(10))
        }),
        (Windows::Session { gap: 5_000 }, |job| {
            job.session_gap(Duration::from_secs(5))
        }),
    ];
    for (windows, kind) in kinds {
        let dir = temp_dir("udf-kinds");
        let (out, dead) = (dir.join("out"), dir.join("dead"));
        let job = kind(examples(DataflowRun::kafka(&brokers, &topic).bounded().workers(2)));
        run_ok(&mut job.out(&out).deadletter(&dead).command(), WITH_BUILD);
        let e = expected_for(&records, windows);
        assert_history_matches(&read_history(&out), &e);
        assert_example_columns(&out, &e);
    }
}

#[test]
fn a_checkpoint_written_with_other_udfs_is_refused_naming_fresh() {
    let brokers = require_broker();
    let topic = seeded_topic(&brokers, "udf-identity", 1500, 31);
    let dir = temp_dir("udf-identity");
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    let job = || {
        DataflowRun::kafka(&brokers, &topic)
            .bounded()
            .out(&out)
            .deadletter(&dead)
    };
    run_ok(&mut job().udf(&udf_crate("heat_index")).command(), WITH_BUILD);
    assert!(newest_manifest(&out).is_some());

    let other = run(&mut job().udf(&udf_crate("temperature_p90")).command(), WITH_BUILD);
    assert!(!other.status.success());
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        err.contains("written with heat_index (source ")
            && err.contains("this run has temperature_p90")
            && err.contains("--fresh"),
        "{err}"
    );
    let none = run(&mut job().command(), Duration::from_secs(120));
    assert!(String::from_utf8_lossy(&none.stderr).contains("this run has no UDF"));
    run_ok(
        &mut job().udf(&udf_crate("temperature_p90")).fresh().command(),
        WITH_BUILD,
    );
}

/// A UDF crate in a temporary folder, pinned to the versions of `udfs/Cargo.lock` so that its dependencies come
/// from the shared build cache.
fn scratch_crate(dir: &Path, body: &str) -> PathBuf {
    let c = dir.join("scratch_udf");
    std::fs::create_dir_all(c.join("src")).unwrap();
    std::fs::write(
        c.join("Cargo.toml"),
        "[package]\nname = \"scratch_udf\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = \
         [\"cdylib\"]\n\n[dependencies]\narroyo-udf-plugin = \"0.2\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::copy(udf_crate("heat_index").join("../Cargo.lock"), c.join("Cargo.lock")).unwrap();
    std::fs::write(c.join("src/lib.rs"), body).unwrap();
    c
}

#[test]
fn crates_that_cannot_be_used_fail_before_any_input_is_read_with_the_reason() {
    let dir = temp_dir("udf-refused");
    let input = dir.join("events.jsonl");
    std::fs::write(&input, "").unwrap();
    let out = dir.join("out");
    let attempt = |body: &str| {
        let c = scratch_crate(&dir, body);
        let job = DataflowRun::input(&input)
            .udf(&c)
            .out(&out)
            .deadletter(&dir.join("dead"));
        let o = run(&mut job.command(), WITH_BUILD);
        assert!(!o.status.success(), "{body}");
        assert!(!out.join("latest.json").exists(), "nothing was read: {body}");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = attempt("use arroyo_udf_plugin::udf;\n#[udf]\nfn f(temp: f64) -> f64 { temp }\n");
    assert!(
        err.contains("parameter `temp` of `f` names nothing known") && err.contains("avg_temperature"),
        "{err}"
    );
    let err = attempt("#[udf]\nasync fn f(device_id: &str) -> String { device_id.to_string() }\n");
    assert!(err.contains("async UDF"), "{err}");
    let err = attempt("#[udf]\nfn f(count: u64) -> std::collections::HashMap<u64, u64> { todo!() }\n");
    assert!(err.contains("the return type of `f`"), "{err}");
    let err = attempt("use arroyo_udf_plugin::udf;\n#[udf]\nfn f(count: u64) -> u64 { count + \"one\" }\n");
    assert!(
        err.contains("does not build") && err.contains("error[E"),
        "cargo's message is shown: {err}"
    );
}
