//! HTTP behaviour of the real `dashboard` binary: each test starts it on a free port against its own data
//! folder and talks raw HTTP/1.1 over a socket, so request targets (`/../x`, `%2e%2e`) reach the server exactly
//! as written, with no client-side normalisation.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use model::{Aggregate, LatestDoc};
use serde_json::Value;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ---- harness ----------------------------------------------------------------------------------------------

/// A fresh folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dashboard-http-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A running dashboard; killed on drop.
struct Dashboard {
    child: Child,
    port: u16,
    data: PathBuf,
    _root: TempDir,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port: bind port 0, read the port, release it.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A stand-in for the npm install, so these tests do not depend on `npm ci`.
fn stub_assets(root: &Path) -> PathBuf {
    let assets = root.join("assets");
    fs::create_dir_all(assets.join("node_modules/chart.js/dist")).unwrap();
    fs::write(
        assets.join("node_modules/chart.js/dist/chart.umd.js"),
        "/* chart.js stub */",
    )
    .unwrap();
    assets
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dashboard"))
}

impl Dashboard {
    /// Starts the dashboard on `data` (filled by `prepare`) and waits for its "listening" line.
    fn start(name: &str, prepare: impl FnOnce(&Path)) -> Dashboard {
        let root = TempDir::new(name);
        let data = root.0.join("data");
        fs::create_dir_all(&data).unwrap();
        prepare(&data);
        let assets = stub_assets(&root.0);
        // Another process may take the port between the probe and the bind: try a few ports.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut child = binary()
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .arg("--data")
                .arg(&data)
                .arg("--assets")
                .arg(&assets)
                .args(["--poll-interval", "100ms"])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the dashboard binary starts");
            match wait_listening(&mut child) {
                Ok(()) => {
                    return Dashboard {
                        child,
                        port,
                        data,
                        _root: root,
                    };
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = e;
                }
            }
        }
        panic!("dashboard did not start: {last_error}");
    }

    fn get(&self, target: &str) -> Reply {
        request(self.port, "GET", target, &[])
    }

    fn latest(&self) -> PathBuf {
        self.data.join("latest.json")
    }
}

/// Waits for the line the dashboard prints once it serves, or for its exit.
fn wait_listening(child: &mut Child) -> Result<(), String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("dashboard listening on ") {
                let _ = tx.send(());
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(()) => Ok(()),
        Err(_) => {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = child.kill();
                let _ = e.read_to_string(&mut stderr);
            }
            Err(format!(
                "no listening line within {START_TIMEOUT:?}; stderr: {stderr}"
            ))
        }
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
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
fn request(port: u16, method: &str, target: &str, extra: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..line_end])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Polls `probe` until it returns `Some`, failing with `what` after `limit`.
fn eventually<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn write_doc(path: &Path, doc: &LatestDoc) -> Vec<u8> {
    let bytes = serde_json::to_vec_pretty(doc).unwrap();
    support::write_atomically(path, &bytes);
    bytes
}

fn good_doc() -> LatestDoc {
    support::latest_doc(
        &ids(&["device-a", "../../etc/passwd", "\u{1F525}-sensor"]),
        model::time::now_ms(),
    )
}

// ---- /metrics ---------------------------------------------------------------------------------------------

#[test]
fn metrics_serves_latest_json_unchanged() {
    let mut written = Vec::new();
    let d = Dashboard::start("metrics", |data| {
        written = write_doc(&data.join("latest.json"), &good_doc());
    });
    let r = d.get("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-dashboard-error"), None);
    assert_eq!(r.body, written, "the body is the file, byte for byte");
    let parsed: LatestDoc = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        parsed,
        serde_json::from_slice::<LatestDoc>(&written).unwrap()
    );
}

#[test]
fn metrics_follows_a_rewritten_file() {
    let d = Dashboard::start("metrics-follow", |data| {
        write_doc(&data.join("latest.json"), &good_doc());
    });
    let mut doc = good_doc();
    doc.pipeline.events_total = 777;
    let written = write_doc(&d.latest(), &doc);
    // /metrics checks the file on every request, so the new version is there at once.
    assert_eq!(d.get("/metrics").body, written);
}

#[test]
fn metrics_keeps_the_last_good_document_when_the_file_turns_corrupt_or_missing() {
    let mut good = Vec::new();
    let d = Dashboard::start("metrics-corrupt", |data| {
        good = write_doc(&data.join("latest.json"), &good_doc());
    });
    assert_eq!(d.get("/metrics").body, good);

    let cases: [(&[u8], &str); 4] = [
        (&good[..good.len() / 2], "truncated"),
        (b"", "empty"),
        (b"<html>oops</html>", "not valid JSON"),
        (
            br#"{"updated_at": "yesterday"}"#,
            "not a latest.json document",
        ),
    ];
    for (bytes, reason) in cases {
        support::write_atomically(&d.latest(), bytes);
        let r = d.get("/metrics");
        assert_eq!(r.status, 200, "{reason}");
        assert_eq!(r.body, good, "{reason}: the last good document is served");
        let error = r.header("x-dashboard-error").unwrap_or_default();
        assert!(error.contains(reason), "{reason}: header was {error:?}");
        assert!(error.contains("last good"), "{error}");
        let health = d.get("/api/health");
        assert_eq!(health.status, 503);
        assert_eq!(health.json()["status"], "stale");
        assert!(
            health.json()["last_error"]
                .as_str()
                .unwrap()
                .contains(reason)
        );
    }

    fs::remove_file(d.latest()).unwrap();
    let r = d.get("/metrics");
    assert_eq!((r.status, &r.body), (200, &good));
    assert!(
        r.header("x-dashboard-error")
            .unwrap()
            .contains("does not exist")
    );

    let mut doc = good_doc();
    doc.pipeline.late_total = 5;
    let newer = write_doc(&d.latest(), &doc);
    let r = d.get("/metrics");
    assert_eq!(r.body, newer);
    assert_eq!(r.header("x-dashboard-error"), None, "the error clears");
    assert_eq!(d.get("/api/health").json()["status"], "ok");
}

#[test]
fn metrics_is_503_with_a_json_error_until_a_good_document_exists() {
    let d = Dashboard::start("metrics-missing", |_| {});
    let r = d.get("/metrics");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );

    support::write_atomically(&d.latest(), b"{\"updated_at\": 1");
    let r = d.get("/metrics");
    assert_eq!(r.status, 503);
    assert!(r.json()["error"].as_str().unwrap().contains("truncated"));
    assert_eq!(d.get("/api/health").json()["status"], "missing");

    let written = write_doc(&d.latest(), &good_doc());
    let r = d.get("/metrics");
    assert_eq!((r.status, r.body), (200, written));
}

// ---- health and Prometheus --------------------------------------------------------------------------------

#[test]
fn health_reports_ok_then_stale_for_an_old_document() {
    let d = Dashboard::start("health", |data| {
        write_doc(&data.join("latest.json"), &good_doc());
    });
    let r = d.get("/api/health");
    assert_eq!(r.status, 200);
    let h = r.json();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["watermark_delay_ms"], 61_250);
    assert_eq!(h["devices"], 3);
    assert!(h["age_seconds"].as_f64().unwrap() < 30.0);
    assert_eq!(h["last_error"], Value::Null);

    let mut old = good_doc();
    old.updated_at -= 3600;
    write_doc(&d.latest(), &old);
    let r = d.get("/api/health");
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
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
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
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(!v.trim_end_matches('"').contains('\n'), "{line}");
            }
        }
        let v: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        samples.insert(series.to_string(), v);
    }
    samples
}

#[test]
fn prometheus_text_parses_and_carries_the_pipeline_counters() {
    let doc = good_doc();
    let d = Dashboard::start("prometheus", |data| {
        write_doc(&data.join("latest.json"), &doc);
    });
    let r = d.get("/metrics/prometheus");
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
    assert_eq!(m["iot_pipeline_lag_records"], p.lag as f64);
    assert_eq!(
        m["iot_pipeline_watermark_delay_seconds"],
        p.watermark_delay_ms as f64 / 1000.0
    );
    assert_eq!(m["iot_pipeline_input_records_per_second"], p.input_rate);
    assert_eq!(
        m["iot_pipeline_batch_duration_seconds"],
        p.batch_ms / 1000.0
    );
    assert_eq!(m["iot_pipeline_open_windows"], p.open_windows as f64);
    assert_eq!(m["iot_pipeline_workers"], p.workers as f64);
    assert_eq!(m["dashboard_latest_valid"], 1.0);
    assert_eq!(m["dashboard_latest_error"], 0.0);

    // The short alias answers the same families.
    let alias = parse_prometheus(&d.get("/prometheus").text());
    assert_eq!(
        alias.keys().collect::<Vec<_>>(),
        m.keys().collect::<Vec<_>>()
    );
}

#[test]
fn prometheus_without_a_document_reports_only_the_dashboard_state() {
    let d = Dashboard::start("prometheus-missing", |_| {});
    let m = parse_prometheus(&d.get("/metrics/prometheus").text());
    assert_eq!(m["dashboard_latest_valid"], 0.0);
    assert_eq!(m["dashboard_latest_error"], 1.0);
    assert!(!m.contains_key("iot_pipeline_events_total"));
}

// ---- static files, unknown routes, traversal --------------------------------------------------------------

#[test]
fn the_page_and_its_assets_come_from_the_binary() {
    let d = Dashboard::start("assets", |_| {});
    let page = d.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(
        page.text()
            .contains("<script type=\"module\" src=\"/static/app.js\">")
    );
    for (path, kind) in [
        ("/static/app.js", "text/javascript"),
        ("/static/charts.js", "text/javascript"),
        ("/static/style.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ] {
        let r = d.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    let chart = d.get("/static/vendor/chart.umd.js");
    assert_eq!(
        chart.text(),
        "/* chart.js stub */",
        "Chart.js comes from --assets"
    );

    let etag = d.get("/static/app.js").header("etag").unwrap().to_string();
    let again = request(d.port, "GET", "/static/app.js", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
}

#[test]
fn unknown_routes_answer_404_with_a_json_body() {
    let d = Dashboard::start("unknown", |_| {});
    for path in [
        "/nope",
        "/api",
        "/api/nope",
        "/metrics/extra",
        "/static/",
        "/static/nope.js",
        "/index.html",
    ] {
        let r = d.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        assert_eq!(r.json()["error"], "not found", "{path}");
    }
    let r = request(d.port, "POST", "/metrics", &[("Content-Length", "0")]);
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["error"], "method not allowed; use GET");
}

#[test]
fn path_traversal_attempts_never_return_files() {
    let d = Dashboard::start("traversal", |data| {
        fs::write(data.join("secret.txt"), "TOP-SECRET").unwrap();
        write_doc(&data.join("latest.json"), &good_doc());
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
        let r = d.get(target);
        assert!(
            r.status == 404 || r.status == 400,
            "{target}: status {}",
            r.status
        );
        let body = r.text();
        for secret in ["[package]", "TOP-SECRET", "root:", "\"records\""] {
            assert!(!body.contains(secret), "{target} leaked {secret}: {body}");
        }
    }
}

// ---- /api/history -----------------------------------------------------------------------------------------

const START_MS: u64 = 1_730_644_200_000;

fn rows_of(device: &str, from_window: u64, n: u64) -> Vec<Aggregate> {
    (0..n)
        .map(|k| support::aggregate(device, START_MS + (from_window + k) * support::WINDOW_MS))
        .collect()
}

fn expected_json(rows: &[Aggregate]) -> Value {
    serde_json::to_value(rows.iter().map(|r| r.to_record(true)).collect::<Vec<_>>()).unwrap()
}

/// A history where neighbouring ids would collide without escaping, with files out of order, files with and
/// without the device column, and in-progress files that must stay invisible.
fn write_history(data: &Path) {
    let root = data.join("parquet");
    let passwd = "../../etc/passwd";
    let fire = "\u{1F525}-sensor";
    // Newest rows first on disk: the answer must still be sorted by window start.
    support::write_partition_file(
        &root,
        passwd,
        "part-0002.parquet",
        &rows_of(passwd, 5, 5),
        true,
    );
    support::write_partition_file(
        &root,
        passwd,
        "part-0001.parquet",
        &rows_of(passwd, 0, 5),
        true,
    );
    let mut uncommitted = rows_of(passwd, 10, 2);
    uncommitted
        .iter_mut()
        .for_each(|r| r.avg_temperature = 99.0);
    support::write_partition_file(&root, passwd, ".part-0003.parquet", &uncommitted, true);
    support::write_partition_file(&root, passwd, "_part-0004.parquet", &uncommitted, true);
    fs::write(
        root.join(model::partition::partition_dir_name(passwd))
            .join("_SUCCESS"),
        "",
    )
    .unwrap();

    support::write_partition_file(
        &root,
        fire,
        "part-0001.parquet",
        &rows_of(fire, 0, 4),
        false,
    );
    // Ids that a naive path join or a naive escaping would confuse with the ones above.
    for other in [
        "../../etc",
        "..",
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "\u{1F525}",
        "etc/passwd",
    ] {
        support::write_partition_file(
            &root,
            other,
            "part-0001.parquet",
            &rows_of(other, 0, 3),
            false,
        );
    }
    // A decoy outside the parquet folder where `../../etc/passwd` would land if joined unescaped.
    fs::create_dir_all(data.join("etc")).unwrap();
    fs::write(data.join("etc/passwd"), "root:x:0:0").unwrap();
}

fn history(d: &Dashboard, device: &str, extra: &str) -> Reply {
    let encoded: String = device
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    d.get(&format!("/api/history?device={encoded}{extra}"))
}

#[test]
fn history_returns_exactly_the_rows_of_a_path_like_device() {
    let d = Dashboard::start("history-passwd", write_history);
    let r = history(&d, "../../etc/passwd", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["device_id"], "../../etc/passwd");
    assert_eq!(
        body["rows"],
        expected_json(&rows_of("../../etc/passwd", 0, 10))
    );
    assert_eq!(body["count"], 10);
    assert_eq!(body["truncated"], false);
    assert_eq!(body["errors"], serde_json::json!([]));
    assert!(!r.text().contains("root:x"));
}

#[test]
fn history_returns_exactly_the_rows_of_an_emoji_device_without_a_device_column() {
    let d = Dashboard::start("history-fire", write_history);
    let r = history(&d, "\u{1F525}-sensor", "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["rows"],
        expected_json(&rows_of("\u{1F525}-sensor", 0, 4))
    );
    for other in [
        "../../etc",
        "..",
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "\u{1F525}",
        "etc/passwd",
    ] {
        let r = history(&d, other, "");
        assert_eq!(
            r.json()["rows"],
            expected_json(&rows_of(other, 0, 3)),
            "{other}"
        );
    }
}

#[test]
fn history_filters_by_time_and_keeps_the_newest_under_a_limit() {
    let d = Dashboard::start("history-range", write_history);
    let dev = "../../etc/passwd";
    let all = rows_of(dev, 0, 10);
    let at = |k: u64| START_MS + k * support::WINDOW_MS;
    // Windows overlapping [from, to): from inside window 2 up to the start of window 6.
    let r = history(&d, dev, &format!("&from={}&to={}", at(2) + 1, at(6)));
    assert_eq!(r.json()["rows"], expected_json(&all[2..6]));
    let rfc = |ms: u64| model::time::rfc3339_ms(ms).replace(':', "%3A");
    let r = history(&d, dev, &format!("&from={}&to={}", rfc(at(3)), rfc(at(5))));
    assert_eq!(r.json()["rows"], expected_json(&all[3..5]));
    let r = history(&d, dev, "&limit=4");
    assert_eq!(r.json()["rows"], expected_json(&all[6..]));
    assert_eq!(r.json()["truncated"], true);
}

#[test]
fn history_over_many_files_matches_a_full_scan() {
    let dev = "rolled-often";
    let all = rows_of(dev, 0, 60);
    let d = Dashboard::start("history-many", |data| {
        // 20 files of 3 windows, named in an order unrelated to time, as rolls of several workers would be.
        for (k, chunk) in all.chunks(3).enumerate() {
            let name = format!("part-{:03}.parquet", (k * 7) % 20);
            support::write_partition_file(&data.join("parquet"), dev, &name, chunk, k % 2 == 0);
        }
    });
    let at = |k: u64| START_MS + k * support::WINDOW_MS;
    for (extra, expected, truncated) in [
        (String::new(), &all[..], false),
        ("&limit=7".to_string(), &all[53..], true),
        ("&limit=60".to_string(), &all[..], false),
        (format!("&from={}", at(40)), &all[40..], false),
        (
            format!("&from={}&to={}", at(10) + 5, at(17)),
            &all[10..17],
            false,
        ),
        (format!("&to={}&limit=5", at(30)), &all[25..30], true),
        (
            format!("&from={}&to={}&limit=100", at(58), at(200)),
            &all[58..],
            false,
        ),
        (format!("&from={}", at(60)), &all[..0], false),
    ] {
        let r = history(&d, dev, &extra);
        assert_eq!(r.json()["rows"], expected_json(expected), "{extra}");
        assert_eq!(r.json()["truncated"], truncated, "{extra}");
    }
}

#[test]
fn history_of_a_device_without_files_is_empty() {
    let d = Dashboard::start("history-empty", write_history);
    let r = history(&d, "never-seen", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["rows"], serde_json::json!([]));
}

#[test]
fn history_rejects_bad_parameters_with_the_fix() {
    let d = Dashboard::start("history-bad", write_history);
    for (target, needle) in [
        ("/api/history", "`device` is required"),
        ("/api/history?device=", "`device` is empty"),
        ("/api/history?device=a&from=yesterday", "RFC 3339"),
        ("/api/history?device=a&from=10&to=5", "before `to`"),
        ("/api/history?device=a&limit=0", "`limit`"),
        ("/api/history?device=a&frm=1", "unknown parameter `frm`"),
    ] {
        let r = d.get(target);
        assert_eq!(r.status, 400, "{target}");
        let error = r.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(needle), "{target}: {error}");
    }
}

#[test]
fn history_skips_a_corrupt_file_and_says_so() {
    let d = Dashboard::start("history-corrupt", |data| {
        write_history(data);
        let dir = data
            .join("parquet")
            .join(model::partition::partition_dir_name("../../etc/passwd"));
        fs::write(dir.join("part-0009.parquet"), b"PAR1 this is not parquet").unwrap();
    });
    let r = history(&d, "../../etc/passwd", "");
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(
        body["rows"],
        expected_json(&rows_of("../../etc/passwd", 0, 10))
    );
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].as_str().unwrap().starts_with("part-0009.parquet"));
    assert!(
        r.header("x-dashboard-error")
            .unwrap()
            .contains("part-0009.parquet")
    );
}

// ---- server-sent events -----------------------------------------------------------------------------------

/// Reads SSE frames from `stream` until one satisfies `want`; returns its data.
fn next_event(
    reader: &mut BufReader<TcpStream>,
    event: &str,
    want: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + IO_TIMEOUT;
    let (mut name, mut data) = (String::new(), String::new());
    loop {
        assert!(Instant::now() < deadline, "no `{event}` event in time");
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("read event stream");
        assert!(n > 0, "event stream ended");
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if name == event && want(&data) {
                return data;
            }
            name.clear();
            data.clear();
        } else if let Some(v) = line.strip_prefix("event:") {
            name = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v);
        }
    }
}

fn open_events(port: u16) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(
        stream,
        "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // The body is chunked; chunk-size lines are neither `event:` nor `data:` nor empty, so they are skipped.
    reader
}

#[test]
fn events_push_each_change_of_latest_json() {
    let d = Dashboard::start("events", |data| {
        write_doc(&data.join("latest.json"), &good_doc());
    });
    let mut events = open_events(d.port);
    // Compared as JSON values parsed from text by the same parser: equal text gives equal values.
    let as_value = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap();
    let first = next_event(&mut events, "latest", |_| true);
    assert_eq!(
        as_value(first.as_bytes()),
        as_value(&d.get("/metrics").body)
    );
    next_event(&mut events, "status", |s| s.contains("\"error\":null"));

    let mut doc = good_doc();
    doc.pipeline.events_total = 424_242;
    let written = write_doc(&d.latest(), &doc);
    let pushed = next_event(&mut events, "latest", |s| s.contains("424242"));
    assert_eq!(as_value(pushed.as_bytes()), as_value(&written));

    support::write_atomically(&d.latest(), b"{broken");
    let status = next_event(&mut events, "status", |s| !s.contains("\"error\":null"));
    assert!(status.contains("not valid JSON"), "{status}");
}

// ---- process behaviour ------------------------------------------------------------------------------------

#[test]
fn sigterm_stops_the_server_even_with_an_open_event_stream() {
    let mut d = Dashboard::start("sigterm", |data| {
        write_doc(&data.join("latest.json"), &good_doc());
    });
    let mut events = open_events(d.port);
    next_event(&mut events, "latest", |_| true);
    let status = Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = eventually(
        Duration::from_secs(8),
        "the dashboard exits after SIGTERM",
        || d.child.try_wait().unwrap(),
    );
    assert!(exit.success(), "exit status {exit:?}");
}

fn run_to_failure(args: &[&str]) -> String {
    let out = binary()
        .args(args)
        .output()
        .expect("the dashboard binary runs");
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_taken_port_fails_fast_naming_the_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let root = TempDir::new("port");
    let assets = stub_assets(&root.0);
    let started = Instant::now();
    let err = run_to_failure(&[
        "--port",
        &port,
        "--data",
        root.0.to_str().unwrap(),
        "--assets",
        assets.to_str().unwrap(),
    ]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        err.contains("already in use") && err.contains("--port"),
        "{err}"
    );
}

#[test]
fn bad_flags_fail_fast_with_the_fix() {
    let root = TempDir::new("flags");
    let file = root.0.join("not-a-folder");
    fs::write(&file, "x").unwrap();
    let assets = stub_assets(&root.0);
    let err = run_to_failure(&["--bind", "localhost"]);
    assert!(err.contains("--bind") && err.contains("127.0.0.1"), "{err}");
    let err = run_to_failure(&[
        "--port",
        "0",
        "--data",
        file.to_str().unwrap(),
        "--assets",
        assets.to_str().unwrap(),
    ]);
    assert!(
        err.contains("--data") && err.contains("not a folder"),
        "{err}"
    );
    let err = run_to_failure(&[
        "--port",
        "0",
        "--assets",
        root.0.join("nowhere").to_str().unwrap(),
    ]);
    assert!(err.contains("npm ci") && err.contains("--assets"), "{err}");
    let err = run_to_failure(&["--port", "http"]);
    assert!(err.contains("--port"), "{err}");
}
