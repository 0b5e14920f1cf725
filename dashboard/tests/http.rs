//! HTTP behaviour of the dashboard's routes: each test builds the library's routes filter on a data folder of
//! its own and drives it in-process through `warp::test`. The request target reaches the filter exactly as
//! written (`http::Uri` keeps `..` and percent escapes as they are, like the server does), so traversal attempts
//! such as `/../x` or `%2e%2e` are tested as sent. What needs the binary and a real socket (the long-lived event
//! stream, SIGTERM, startup failures) is in tests/process.rs.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dashboard::assets::Assets;
use dashboard::{App, routes};
use model::history::PARQUET_DIR;
use model::partition::partition_dir_name;
use model::{Aggregate, LatestDoc};
use serde_json::Value;
use support::{TempDir, sample_latest, write_doc};
use warp::test::RequestBuilder;

// ---- harness ----------------------------------------------------------------------------------------------

/// The routes over one data folder (the dataflow's `--out`), with Chart.js from a stand-in `--assets`.
struct Site {
    app: Arc<App>,
    data: PathBuf,
    _root: TempDir,
}

impl Site {
    /// Routes on a fresh data folder, filled by `prepare` first.
    fn new(name: &str, prepare: impl FnOnce(&Path)) -> Site {
        let root = TempDir::new(name);
        let data = root.0.join("data");
        fs::create_dir_all(&data).unwrap();
        prepare(&data);
        let assets = Assets::load(Some(&support::stub_assets(&root.0))).unwrap();
        // No watcher: these routes read the file on each request; only `/events` listens to the channel.
        let (app, _updates) = App::new(&data, Duration::from_secs(30), assets);
        Site {
            app: Arc::new(app),
            data,
            _root: root,
        }
    }

    async fn get(&self, target: &str) -> Reply {
        self.send(warp::test::request().path(target)).await
    }

    async fn send(&self, request: RequestBuilder) -> Reply {
        let r = request.reply(&routes(Arc::clone(&self.app))).await;
        Reply {
            status: r.status().as_u16(),
            headers: r
                .headers()
                .iter()
                .map(|(k, v)| {
                    let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (k.as_str().to_string(), v)
                })
                .collect(),
            body: r.body().to_vec(),
        }
    }

    fn latest(&self) -> PathBuf {
        self.data.join("latest.json")
    }
}

/// One HTTP response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Routes over a data folder holding [`sample_latest`] as `latest.json`; also returns the bytes written.
fn site_with_latest(name: &str) -> (Site, Vec<u8>) {
    let mut written = Vec::new();
    let site = Site::new(name, |data| {
        written = write_doc(&data.join("latest.json"), &sample_latest());
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
        written = write_doc(&data.join("latest.json"), &support::sample_latest_with_udfs());
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
        fs::write(data.join("latest.json"), &seed).unwrap()
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

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

#[tokio::test]
async fn large_json_replies_are_gzipped_only_for_clients_that_accept_it() {
    let mut written = Vec::new();
    let d = Site::new("gzip", |data| {
        written = write_doc(&data.join("latest.json"), &sample_latest());
        write_history(data);
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
    let target = "/api/history?device=..%2F..%2Fetc%2Fpasswd";
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
    use dashboard::routes::accepts_gzip;
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
    let doc: LatestDoc = serde_json::from_slice(&written).unwrap();
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
        write_doc(&data.join("latest.json"), &doc);
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
        write_doc(&data.join("latest.json"), &sample_latest());
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

// ---- /api/history -----------------------------------------------------------------------------------------

const START_MS: u64 = 1_730_644_200_000;
/// A device id that names a file outside the folder if joined unescaped.
const PASSWD: &str = "../../etc/passwd";
const FIRE: &str = "\u{1F525}-sensor";
/// Ids that a naive path join or a naive escaping would confuse with the ones above.
const LOOKALIKES: [&str; 5] = [
    "../../etc",
    "..",
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "\u{1F525}",
    "etc/passwd",
];

fn rows_of(device: &str, from_window: u64, n: u64) -> Vec<Aggregate> {
    (0..n)
        .map(|k| support::aggregate(device, START_MS + (from_window + k) * support::WINDOW_MS))
        .collect()
}

/// The `rows` of a history answer for `n` windows of `device` from window `from_window` on.
fn expected_json(device: &str, from_window: u64, n: u64) -> Value {
    rows_json(&rows_of(device, from_window, n))
}

fn rows_json(rows: &[Aggregate]) -> Value {
    serde_json::to_value(rows.iter().map(|r| r.to_record(true)).collect::<Vec<_>>()).unwrap()
}

/// A history where neighbouring ids would collide without escaping, with files out of order, files with and
/// without the device column, and in-progress files that must stay invisible.
fn write_history(data: &Path) {
    let root = data.join(PARQUET_DIR);
    let write = |device: &str, name: &str, rows: &[Aggregate], with_ids: bool| {
        support::write_partition_file(&root, device, name, rows, with_ids);
    };
    // Newest rows first on disk: the answer must still be sorted by window start.
    write(PASSWD, &support::part(2).file_name(), &rows_of(PASSWD, 5, 5), true);
    write(PASSWD, &support::part(1).file_name(), &rows_of(PASSWD, 0, 5), true);
    let mut uncommitted = rows_of(PASSWD, 10, 2);
    uncommitted.iter_mut().for_each(|r| r.avg_temperature = 99.0);
    write(PASSWD, &support::part(3).in_progress_name(), &uncommitted, true);
    write(PASSWD, "_part-0004.parquet", &uncommitted, true);
    fs::write(root.join(partition_dir_name(PASSWD)).join("_SUCCESS"), "").unwrap();

    write(FIRE, &support::part(1).file_name(), &rows_of(FIRE, 0, 4), false);
    for other in LOOKALIKES {
        write(other, &support::part(1).file_name(), &rows_of(other, 0, 3), false);
    }
    // A decoy outside the parquet folder where `../../etc/passwd` would land if joined unescaped.
    fs::create_dir_all(data.join("etc")).unwrap();
    fs::write(data.join("etc/passwd"), "root:x:0:0").unwrap();
}

async fn history(d: &Site, device: &str, extra: &str) -> Reply {
    let encoded: String = device
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    d.get(&format!("/api/history?device={encoded}{extra}")).await
}

#[tokio::test]
async fn history_returns_exactly_the_rows_of_a_path_like_device() {
    let d = Site::new("history-passwd", write_history);
    let r = history(&d, PASSWD, "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["device_id"], PASSWD);
    assert_eq!(body["rows"], expected_json(PASSWD, 0, 10));
    assert_eq!(body["count"], 10);
    assert_eq!(body["truncated"], false);
    assert_eq!(body["errors"], serde_json::json!([]));
    assert!(!r.text().contains("root:x"));
}

#[tokio::test]
async fn history_returns_exactly_the_rows_of_an_emoji_device_without_a_device_column() {
    let d = Site::new("history-fire", write_history);
    let r = history(&d, FIRE, "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["rows"], expected_json(FIRE, 0, 4));
    for other in LOOKALIKES {
        let r = history(&d, other, "").await;
        assert_eq!(r.json()["rows"], expected_json(other, 0, 3), "{other}");
    }
}

#[tokio::test]
async fn history_filters_by_time_and_keeps_the_newest_under_a_limit() {
    let d = Site::new("history-range", write_history);
    let all = rows_of(PASSWD, 0, 10);
    let at = |k: u64| START_MS + k * support::WINDOW_MS;
    // Windows overlapping [from, to): from inside window 2 up to the start of window 6.
    let r = history(&d, PASSWD, &format!("&from={}&to={}", at(2) + 1, at(6))).await;
    assert_eq!(r.json()["rows"], rows_json(&all[2..6]));
    let rfc = |ms: u64| model::time::rfc3339_ms(ms).replace(':', "%3A");
    let r = history(&d, PASSWD, &format!("&from={}&to={}", rfc(at(3)), rfc(at(5)))).await;
    assert_eq!(r.json()["rows"], rows_json(&all[3..5]));
    let r = history(&d, PASSWD, "&limit=4").await;
    assert_eq!(r.json()["rows"], rows_json(&all[6..]));
    assert_eq!(r.json()["truncated"], true);
}

#[tokio::test]
async fn history_over_many_files_matches_a_full_scan() {
    let dev = "rolled-often";
    let all = rows_of(dev, 0, 60);
    let d = Site::new("history-many", |data| {
        // 20 files of 3 windows, their checkpoints in an order unrelated to time, as rolls of several workers
        // would be.
        for (k, chunk) in all.chunks(3).enumerate() {
            let name = support::part((k as u64 * 7) % 20).file_name();
            support::write_partition_file(&data.join(PARQUET_DIR), dev, &name, chunk, k % 2 == 0);
        }
    });
    let at = |k: u64| START_MS + k * support::WINDOW_MS;
    for (extra, expected, truncated) in [
        (String::new(), &all[..], false),
        ("&limit=7".to_string(), &all[53..], true),
        ("&limit=60".to_string(), &all[..], false),
        (format!("&from={}", at(40)), &all[40..], false),
        (format!("&from={}&to={}", at(10) + 5, at(17)), &all[10..17], false),
        (format!("&to={}&limit=5", at(30)), &all[25..30], true),
        (format!("&from={}&to={}&limit=100", at(58), at(200)), &all[58..], false),
        (format!("&from={}", at(60)), &all[..0], false),
    ] {
        let r = history(&d, dev, &extra).await;
        assert_eq!(r.json()["rows"], rows_json(expected), "{extra}");
        assert_eq!(r.json()["truncated"], truncated, "{extra}");
    }
}

#[tokio::test]
async fn history_follows_files_added_replaced_and_removed_between_requests() {
    let dev = "churned";
    let all = rows_of(dev, 0, 9);
    let root = |d: &Site| d.data.join(PARQUET_DIR);
    let d = Site::new("history-churn", |data| {
        for (k, chunk) in all[..6].chunks(3).enumerate() {
            let name = support::part(k as u64 + 1).file_name();
            support::write_partition_file(&data.join(PARQUET_DIR), dev, &name, chunk, false);
        }
    });
    assert_eq!(history(&d, dev, "").await.json()["rows"], rows_json(&all[..6]));
    assert_eq!(
        history(&d, dev, "").await.json()["rows"],
        rows_json(&all[..6]),
        "answered from the cache"
    );

    // A new file, and an existing one replaced by a rename (as compaction or a restore would): both are read.
    support::write_partition_file(&root(&d), dev, &support::part(3).file_name(), &all[6..], false);
    let mut changed = all[..3].to_vec();
    changed.iter_mut().for_each(|r| r.avg_temperature += 1.0);
    let folder = root(&d).join(partition_dir_name(dev));
    support::write_partition_file(&root(&d), dev, ".replacement.inprogress", &changed, false);
    fs::rename(
        folder.join(".replacement.inprogress"),
        folder.join(support::part(1).file_name()),
    )
    .unwrap();
    let mut expected = changed.clone();
    expected.extend_from_slice(&all[3..]);
    assert_eq!(history(&d, dev, "").await.json()["rows"], rows_json(&expected));

    // A removed file's rows are gone.
    fs::remove_file(folder.join(support::part(2).file_name())).unwrap();
    let mut expected = changed;
    expected.extend_from_slice(&all[6..]);
    assert_eq!(history(&d, dev, "").await.json()["rows"], rows_json(&expected));
    assert_eq!(d.app.history_spans.len(), 2, "only the files listed now are known");
}

#[tokio::test]
async fn history_returns_udf_columns_where_written_and_leaves_them_out_where_a_file_predates_them() {
    let dev = "udf-device";
    let udfs = support::fixture_udfs();
    // The job ran without UDFs for windows 0..4, then with them: one file of each kind, by column name.
    let older = rows_of(dev, 0, 4);
    let newer: Vec<Aggregate> = rows_of(dev, 4, 6).into_iter().map(support::with_udf_values).collect();
    let d = Site::new("history-udf", |data| {
        let root = data.join(PARQUET_DIR);
        support::write_partition_file(&root, dev, &support::part(1).file_name(), &older, false);
        support::write_partition_file_with(&root, dev, &support::part(2).file_name(), &newer, &udfs, true);
    });
    let r = history(&d, dev, "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["errors"], serde_json::json!([]));
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    for row in &rows[..4] {
        for u in &udfs {
            assert!(
                row.get(&u.name).is_none(),
                "{} in a row of the older file: {row}",
                u.name
            );
        }
    }
    let (mut nulls, mut values) = (0, 0);
    for (row, written) in rows[4..].iter().zip(&newer) {
        assert_eq!(row["window_start"], model::time::rfc3339_ms(written.window_start));
        let model::UdfValue::Float(heat) = written.udf["heat_index"] else {
            panic!("a float")
        };
        assert_eq!(row["heat_index"].as_f64(), Some(heat));
        assert!(row["comfort"].is_string(), "{row}");
        match &written.udf["temperature_p90"] {
            model::UdfValue::Null => {
                nulls += 1;
                assert!(row.get("temperature_p90").is_some_and(Value::is_null), "{row}");
            }
            model::UdfValue::Float(p90) => {
                values += 1;
                assert_eq!(row["temperature_p90"].as_f64(), Some(*p90));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(nulls > 0 && values > 0, "the fixture mixes null and non-null values");
    assert_eq!(body["rows"], rows_json(&[older.clone(), newer.clone()].concat()));

    // The newest windows under a limit, and a time range inside the older file, keep the same shape.
    let r = history(&d, dev, "&limit=3").await;
    assert_eq!(r.json()["rows"], rows_json(&newer[3..]));
    let r = history(&d, dev, &format!("&to={}", START_MS + 2 * support::WINDOW_MS)).await;
    assert_eq!(r.json()["rows"], rows_json(&older[..2]));
}

#[tokio::test]
async fn history_of_a_device_without_files_is_empty() {
    let d = Site::new("history-empty", write_history);
    let r = history(&d, "never-seen", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["rows"], serde_json::json!([]));
}

#[tokio::test]
async fn history_rejects_bad_parameters_with_the_fix() {
    let d = Site::new("history-bad", write_history);
    for (target, needle) in [
        ("/api/history", "`device` is required"),
        ("/api/history?device=", "`device` is empty"),
        ("/api/history?device=a&from=yesterday", "RFC 3339"),
        ("/api/history?device=a&from=10&to=5", "before `to`"),
        ("/api/history?device=a&limit=0", "`limit`"),
        ("/api/history?device=a&frm=1", "unknown parameter `frm`"),
    ] {
        let r = d.get(target).await;
        assert_eq!(r.status, 400, "{target}");
        let error = r.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(needle), "{target}: {error}");
    }
}

#[tokio::test]
async fn history_skips_a_corrupt_file_and_says_so() {
    let corrupt = support::part(9).file_name();
    let d = Site::new("history-corrupt", |data| {
        write_history(data);
        let dir = data.join(PARQUET_DIR).join(partition_dir_name(PASSWD));
        fs::write(dir.join(&corrupt), b"PAR1 this is not parquet").unwrap();
    });
    let r = history(&d, PASSWD, "").await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["rows"], expected_json(PASSWD, 0, 10));
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].as_str().unwrap().starts_with(&corrupt));
    assert!(r.header("x-dashboard-error").unwrap().contains(&corrupt));
}
