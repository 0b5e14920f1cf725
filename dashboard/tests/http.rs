//! HTTP behaviour of the dashboard's routes: each test builds the library's routes filter on a data folder of
//! its own and drives it in-process through `warp::test`. The request target reaches the filter exactly as
//! written (`http::Uri` keeps `..` and percent escapes as they are, like the server does), so traversal attempts
//! such as `/../x` or `%2e%2e` are tested as sent. What needs the binary and a real socket (the long-lived event
//! stream, SIGTERM, startup failures) is in tests/process.rs.

mod support;

use std::collections::BTreeMap;
use std::fs;

use model::LatestDoc;
use model::latest::SeedDoc;
use serde_json::Value;
use support::site::{Site, gunzip};
use support::{sample_latest, write_doc};

/// Routes over a data folder holding [`sample_latest`] as `latest.json`; also returns the bytes written.
fn site_with_latest(name: &str) -> (Site, Vec<u8>) {
    let mut written = Vec::new();
    let site = Site::new(name, |data| {
        written = write_doc(&data.join(model::latest::FILE_NAME), &sample_latest());
    });
    (site, written)
}

// ---- /metrics ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn metrics_serves_latest_json_unchanged() {
    let (d, written) = site_with_latest("metrics");
    let r = d.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-dashboard-error"), None);
    assert_eq!(r.body, written, "the body is the file, byte for byte");
    let parsed: LatestDoc = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(parsed, serde_json::from_slice::<LatestDoc>(&written).unwrap());
}

#[tokio::test]
async fn metrics_and_health_take_a_document_with_udf_columns() {
    let mut written = Vec::new();
    let d = Site::new("metrics-udf", |data| {
        written = write_doc(
            &data.join(model::latest::FILE_NAME),
            &support::sample_latest_with_udfs(),
        );
    });
    let r = d.get("/metrics").await;
    assert_eq!((r.status, &r.body), (200, &written));
    let body = r.json();
    let names: Vec<&str> = body["udfs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["heat_index", "temperature_p90", "comfort"]);
    assert!(
        body["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["heat_index"].is_f64())
    );
    let health = d.get("/api/health").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["devices"], 3);
}

/// The seed's own `latest.json`: `updated_at` (a float, as Python writes it; `UPDATED` is replaced by now) and
/// records of its eight fields, times without a zone; no `pipeline`, `final`, `watermark` or `stddev_temperature`.
const SEED_LATEST: &str = r#"{"updated_at": UPDATED, "records": [
  {"device_id": "device-a", "window_start": "2024-11-03T14:30:00", "window_end": "2024-11-03T14:30:10",
   "count": 40, "avg_temperature": 24.52, "avg_humidity": 54.87, "min_battery": 80.1, "max_battery": 85.3},
  {"device_id": "device-b", "window_start": "2024-11-03T14:30:00", "window_end": "2024-11-03T14:30:10",
   "count": 38, "avg_temperature": 21.0, "avg_humidity": 60.0, "min_battery": 70.0, "max_battery": 71.5}]}"#;

#[tokio::test]
async fn the_seeds_minimal_document_is_served_with_health_and_metrics() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let seed = SEED_LATEST.replace("UPDATED", &format!("{:.3}", now.as_secs_f64()));
    let d = Site::new("metrics-seed", |data| {
        fs::write(data.join(model::latest::FILE_NAME), &seed).unwrap()
    });
    let r = d.get("/metrics").await;
    assert_eq!((r.status, r.text()), (200, seed.clone()), "served as written");
    let health = d.get("/api/health").await;
    assert_eq!(health.status, 200, "{}", health.text());
    let health = health.json();
    assert_eq!(
        (&health["status"], &health["devices"]),
        (&Value::from("ok"), &Value::from(2))
    );
    assert!(
        health["watermark_delay_ms"].is_null(),
        "no watermark is no delay of 0: {health}"
    );
    let prom = d.get("/metrics/prometheus").await;
    assert_eq!(prom.status, 200, "{}", prom.text());
}

/// A document of an older job or of another producer: the seed's records and a `pipeline` holding only its first
/// three counters. It is served like any other, and the counters it has reach the summary and Prometheus.
#[tokio::test]
async fn a_document_with_a_partial_pipeline_is_served_with_its_counters() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let partial = r#"{"events_total": 120, "late_total": 7, "bad_total": 3}"#;
    let doc = SEED_LATEST
        .replace("UPDATED", &format!("{:.3}", now.as_secs_f64()))
        .replacen(r#""records""#, &format!(r#""pipeline": {partial}, "records""#), 1);
    let d = Site::new("metrics-partial-pipeline", |data| {
        fs::write(data.join(model::latest::FILE_NAME), &doc).unwrap()
    });
    let r = d.get("/metrics").await;
    assert_eq!((r.status, r.text()), (200, doc.clone()), "served as written");
    assert_eq!(r.header("x-dashboard-error"), None);

    let summary = d.get("/api/summary").await;
    assert_eq!(summary.status, 200, "{}", summary.text());
    let summary = summary.json();
    assert!(summary["error"].is_null(), "{summary}");
    assert_eq!(
        summary["summary"]["pipeline"],
        serde_json::from_str::<Value>(partial).unwrap(),
        "the counters as written, no others made up"
    );
    assert_eq!(summary["summary"]["devices"], 2);

    let prom = d.get("/metrics/prometheus").await;
    assert_eq!(prom.status, 200, "{}", prom.text());
    let m = parse_prometheus(&prom.text());
    assert_eq!(m["dashboard_latest_valid"], 1.0);
    assert_eq!(
        (
            m["iot_pipeline_events_total"],
            m["iot_pipeline_late_events_total"],
            m["iot_pipeline_bad_events_total"]
        ),
        (120.0, 7.0, 3.0)
    );
}

#[tokio::test]
async fn large_json_replies_are_gzipped_only_for_clients_that_accept_it() {
    let mut written = Vec::new();
    let d = Site::new("gzip", |data| {
        written = write_doc(&data.join(model::latest::FILE_NAME), &sample_latest());
        let rows: Vec<model::Aggregate> = (0..50)
            .map(|k| support::aggregate("gz", 1_730_644_200_000 + k * support::WINDOW_MS))
            .collect();
        let name = support::part(1).file_name();
        support::write_partition_file(&data.join(model::history::PARQUET_DIR), "gz", &name, &rows, false);
    });
    assert!(written.len() > 1024, "the sample is large enough to compress");
    let get = |target: &'static str, accept: Option<&'static str>| {
        let mut r = warp::test::request().path(target);
        if let Some(a) = accept {
            r = r.header("accept-encoding", a);
        }
        d.send(r)
    };
    let plain = get("/metrics", None).await;
    assert_eq!((plain.header("content-encoding"), &plain.body), (None, &written));
    assert_eq!(plain.header("vary"), Some("accept-encoding"));
    let zipped = get("/metrics", Some("gzip, deflate, br")).await;
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert!(
        zipped.body.len() < written.len() / 2,
        "{} of {} bytes",
        zipped.body.len(),
        written.len()
    );
    assert_eq!(gunzip(&zipped.body), written, "the same document, byte for byte");
    for refused in ["identity", "gzip;q=0", "br"] {
        assert_eq!(
            get("/metrics", Some(refused)).await.header("content-encoding"),
            None,
            "{refused}"
        );
    }
    let target = "/api/history?device=gz";
    let (plain, zipped) = (get(target, None).await, get(target, Some("*")).await);
    assert_eq!((plain.status, zipped.status), (200, 200));
    let decoded = if zipped.header("content-encoding") == Some("gzip") {
        gunzip(&zipped.body)
    } else {
        zipped.body.clone()
    };
    assert_eq!(decoded, plain.body, "the same history either way");
}

#[test]
fn accept_encoding_is_read_as_http_says() {
    use dashboard::http::reply::accepts_gzip;
    for yes in ["gzip", "GZIP", "deflate, gzip;q=0.5", "*", "br;q=1.0, gzip"] {
        assert!(accepts_gzip(Some(yes)), "{yes}");
    }
    for no in ["", "identity", "gzip;q=0", "gzip; q=0.0", "br, deflate", "x-gzip-not"] {
        assert!(!accepts_gzip(Some(no)), "{no}");
    }
    assert!(!accepts_gzip(None));
}

#[tokio::test]
async fn metrics_follows_a_rewritten_file() {
    let (d, _) = site_with_latest("metrics-follow");
    let mut doc = sample_latest();
    doc.pipeline.events_total = 777;
    let written = write_doc(&d.latest(), &doc);
    // /metrics checks the file on every request, so the new version is there at once.
    assert_eq!(d.get("/metrics").await.body, written);
}

#[tokio::test]
async fn metrics_keeps_the_last_good_document_when_the_file_turns_corrupt_or_missing() {
    let (d, good) = site_with_latest("metrics-corrupt");
    assert_eq!(d.get("/metrics").await.body, good);

    let cases: [(&[u8], &str); 4] = [
        (&good[..good.len() / 2], "truncated"),
        (b"", "empty"),
        (b"<html>oops</html>", "not valid JSON"),
        (br#"{"updated_at": "yesterday"}"#, "not a latest.json document"),
    ];
    for (bytes, reason) in cases {
        support::write_atomically(&d.latest(), bytes);
        let r = d.get("/metrics").await;
        assert_eq!(r.status, 200, "{reason}");
        assert_eq!(r.body, good, "{reason}: the last good document is served");
        let error = r.header("x-dashboard-error").unwrap_or_default();
        assert!(error.contains(reason), "{reason}: header was {error:?}");
        assert!(error.contains("last good"), "{error}");
        let health = d.get("/api/health").await;
        assert_eq!(health.status, 503);
        assert_eq!(health.json()["status"], "stale");
        assert!(health.json()["last_error"].as_str().unwrap().contains(reason));
    }

    fs::remove_file(d.latest()).unwrap();
    let r = d.get("/metrics").await;
    assert_eq!((r.status, &r.body), (200, &good));
    assert!(r.header("x-dashboard-error").unwrap().contains("does not exist"));

    let mut doc = sample_latest();
    doc.pipeline.late_total = 5;
    let newer = write_doc(&d.latest(), &doc);
    let r = d.get("/metrics").await;
    assert_eq!(r.body, newer);
    assert_eq!(r.header("x-dashboard-error"), None, "the error clears");
    assert_eq!(d.get("/api/health").await.json()["status"], "ok");
}

#[tokio::test]
async fn metrics_is_503_with_a_json_error_until_a_good_document_exists() {
    let d = Site::new("metrics-missing", |_| {});
    let r = d.get("/metrics").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert!(r.json()["error"].as_str().unwrap().contains("does not exist"));

    support::write_atomically(&d.latest(), b"{\"updated_at\": 1");
    let r = d.get("/metrics").await;
    assert_eq!(r.status, 503);
    assert!(r.json()["error"].as_str().unwrap().contains("truncated"));
    assert_eq!(d.get("/api/health").await.json()["status"], "missing");

    let written = write_doc(&d.latest(), &sample_latest());
    let r = d.get("/metrics").await;
    assert_eq!((r.status, r.body), (200, written));
}

// ---- health and Prometheus --------------------------------------------------------------------------------

#[tokio::test]
async fn health_reports_ok_then_stale_for_an_old_document() {
    let (d, _) = site_with_latest("health");
    let r = d.get("/api/health").await;
    assert_eq!(r.status, 200);
    let h = r.json();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["watermark_delay_ms"], 61_250);
    assert_eq!(h["devices"], 3);
    assert!(h["age_seconds"].as_f64().unwrap() < 30.0);
    assert_eq!(h["last_error"], Value::Null);

    let mut old = sample_latest();
    old.updated_at -= 3600;
    write_doc(&d.latest(), &old);
    let r = d.get("/api/health").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["status"], "stale");
    assert!(r.json()["age_seconds"].as_f64().unwrap() >= 3600.0);
}

/// Parses the text format strictly enough to catch malformed lines: `name{k="v",...} value`.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut typed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            typed.push(parts.next().unwrap().to_string());
            assert!(matches!(parts.next(), Some("counter" | "gauge")), "{line}");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "stray line {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        assert_eq!(
            typed.last().map(String::as_str),
            Some(name),
            "sample without TYPE: {line}"
        );
        if name_end < series.len() {
            let labels = &series[name_end..];
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            for pair in labels[1..labels.len() - 1].split("\",") {
                let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
                assert!(!v.trim_end_matches('"').contains('\n'), "{line}");
            }
        }
        let v: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        samples.insert(series.to_string(), v);
    }
    samples
}

#[tokio::test]
async fn prometheus_text_parses_and_carries_the_pipeline_counters() {
    let (d, written) = site_with_latest("prometheus");
    let doc: SeedDoc = serde_json::from_slice(&written).unwrap();
    let r = d.get("/metrics/prometheus").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = parse_prometheus(&r.text());
    let p = &doc.pipeline;
    assert_eq!(m["iot_pipeline_events_total"], p.events_total as f64);
    assert_eq!(m["iot_pipeline_late_events_total"], p.late_total as f64);
    assert_eq!(m["iot_pipeline_bad_events_total"], p.bad_total as f64);
    assert_eq!(m["iot_pipeline_filtered_events_total"], p.filtered_total as f64);
    assert_eq!(m["iot_pipeline_unmatched_events_total"], p.unmatched_total as f64);
    assert_eq!(m["iot_pipeline_join_versions"], p.join_versions as f64);
    assert_eq!(m["iot_pipeline_join_keys"], p.join_keys as f64);
    for (reason, n) in &p.bad_by_reason {
        let key = format!("iot_pipeline_bad_events_by_reason_total{{reason=\"{reason}\"}}");
        assert_eq!(m[&key], *n as f64, "{key}");
    }
    for (kind, n) in &p.errors_by_kind {
        let key = format!("iot_pipeline_operator_errors_total{{kind=\"{kind}\"}}");
        assert_eq!(m[&key], *n as f64, "{key}");
    }
    assert_eq!(m["iot_pipeline_lag_records"], p.lag as f64);
    assert_eq!(m["iot_pipeline_data_loss_total"], p.data_loss_total as f64);
    assert_eq!(m["iot_pipeline_skipped_records_total"], p.skipped_records as f64);
    assert_eq!(
        m["iot_pipeline_watermark_delay_seconds"],
        p.watermark_delay_ms as f64 / 1000.0
    );
    assert_eq!(m["iot_pipeline_input_records_per_second"], p.input_rate);
    assert_eq!(m["iot_pipeline_batch_duration_seconds"], p.batch_ms / 1000.0);
    assert_eq!(m["iot_pipeline_open_windows"], p.open_windows as f64);
    assert_eq!(m["iot_pipeline_workers"], p.workers as f64);
    assert_eq!(m["dashboard_latest_valid"], 1.0);
    assert_eq!(m["dashboard_latest_error"], 0.0);
    assert_eq!(m["iot_pipeline_udfs"], 0.0);
    assert!(!m.keys().any(|k| k.starts_with("iot_pipeline_udf_errors_total")));

    // The short alias answers the same families.
    let alias = parse_prometheus(&d.get("/prometheus").await.text());
    assert_eq!(alias.keys().collect::<Vec<_>>(), m.keys().collect::<Vec<_>>());
}

#[tokio::test]
async fn prometheus_counts_udf_failures_per_udf_including_those_that_never_failed() {
    let doc = support::sample_latest_with_udfs();
    let d = Site::new("prometheus-udf", |data| {
        write_doc(&data.join(model::latest::FILE_NAME), &doc);
    });
    let m = parse_prometheus(&d.get("/metrics/prometheus").await.text());
    assert_eq!(m["iot_pipeline_udfs"], 3.0);
    let failures: BTreeMap<&str, f64> = m
        .iter()
        .filter_map(|(k, v)| {
            let udf = k
                .strip_prefix("iot_pipeline_udf_errors_total{udf=\"")?
                .strip_suffix("\"}")?;
            Some((udf, *v))
        })
        .collect();
    assert_eq!(doc.pipeline.udf_errors["temperature_p90"], 3);
    assert_eq!(
        failures,
        BTreeMap::from([("comfort", 0.0), ("heat_index", 0.0), ("temperature_p90", 3.0)])
    );
}

#[tokio::test]
async fn prometheus_without_a_document_reports_only_the_dashboard_state() {
    let d = Site::new("prometheus-missing", |_| {});
    let m = parse_prometheus(&d.get("/metrics/prometheus").await.text());
    assert_eq!(m["dashboard_latest_valid"], 0.0);
    assert_eq!(m["dashboard_latest_error"], 1.0);
    assert!(!m.contains_key("iot_pipeline_events_total"));
}

// ---- static files, unknown routes, traversal --------------------------------------------------------------

#[tokio::test]
async fn the_page_and_its_assets_come_from_the_binary() {
    let d = Site::new("assets", |_| {});
    let page = d.get("/").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(page.text().contains("<script type=\"module\" src=\"/static/app.js\">"));
    for (path, kind) in [
        ("/static/app.js", "text/javascript"),
        ("/static/charts.js", "text/javascript"),
        ("/static/style.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ] {
        let r = d.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").unwrap().starts_with(kind), "{path}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    let chart = d.get("/static/vendor/chart.umd.js").await;
    assert_eq!(chart.text(), support::CHART_JS_STUB, "Chart.js comes from --assets");

    let etag = d.get("/static/app.js").await.header("etag").unwrap().to_string();
    let again = d
        .send(
            warp::test::request()
                .path("/static/app.js")
                .header("if-none-match", etag),
        )
        .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
}

#[tokio::test]
async fn unknown_routes_answer_404_with_a_json_body() {
    let d = Site::new("unknown", |_| {});
    for path in [
        "/nope",
        "/api",
        "/api/nope",
        "/metrics/extra",
        "/static/",
        "/static/nope.js",
        "/index.html",
    ] {
        let r = d.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with("application/json"),
            "{path}"
        );
        assert_eq!(r.json()["error"], "not found", "{path}");
    }
    let r = d.send(warp::test::request().method("POST").path("/metrics")).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["error"], "method not allowed; use GET");
}

#[tokio::test]
async fn path_traversal_attempts_never_return_files() {
    let d = Site::new("traversal", |data| {
        fs::write(data.join("secret.txt"), "TOP-SECRET").unwrap();
        write_doc(&data.join(model::latest::FILE_NAME), &sample_latest());
    });
    let targets = [
        "/../Cargo.toml",
        "/../../Cargo.toml",
        "/static/../Cargo.toml",
        "/static/../../Cargo.toml",
        "/static/..%2f..%2fCargo.toml",
        "/static/..%2F..%2FCargo.toml",
        "/static/%2e%2e/%2e%2e/Cargo.toml",
        "/static/%2e%2e%2f%2e%2e%2fCargo.toml",
        "/static/..%5c..%5cCargo.toml",
        "/static/%252e%252e%252fCargo.toml",
        "/static/vendor/../../Cargo.toml",
        "/static/vendor/..%2f..%2f..%2fCargo.toml",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/static/../data/secret.txt",
        "/static/..%2fdata%2fsecret.txt",
        "/latest.json",
        "/data/latest.json",
        "/secret.txt",
        "/static/app.js%00.txt",
        "/static/app.js/..%2f..%2fCargo.toml",
    ];
    for target in targets {
        let r = d.get(target).await;
        assert!(r.status == 404 || r.status == 400, "{target}: status {}", r.status);
        let body = r.text();
        for secret in ["[package]", "TOP-SECRET", "root:", "\"records\""] {
            assert!(!body.contains(secret), "{target} leaked {secret}: {body}");
        }
    }
}
