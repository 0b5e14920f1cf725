//! The `dashboard` binary as a process, for what the in-process route tests (tests/http.rs) cannot show. Each
//! test starts the binary on a free port against its own data folder, or runs it to a startup failure:
//! - the event stream, read over a real socket: `warp::test` collects a whole response body, and this body never
//!   ends while the server runs; the stream is also fed by the binary's watcher task, which only `run` starts;
//! - a graceful stop on SIGTERM with that stream open, which needs a process and a signal;
//! - startup failures, which the binary reports by its exit status and one line on stderr.

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{TempDir, sample_latest, write_doc};

const START_TIMEOUT: Duration = Duration::from_secs(20);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ---- harness ----------------------------------------------------------------------------------------------

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
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dashboard"))
}

impl Dashboard {
    /// Starts the dashboard on a data folder holding [`sample_latest`] and waits for its "listening" line.
    fn start(name: &str) -> Dashboard {
        let root = TempDir::new(name);
        let data = root.0.join("data");
        fs::create_dir_all(&data).unwrap();
        write_doc(&data.join(model::latest::FILE_NAME), &sample_latest());
        let assets = support::stub_assets(&root.0);
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

    fn latest(&self) -> PathBuf {
        self.data.join(model::latest::FILE_NAME)
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
            Err(format!("no listening line within {START_TIMEOUT:?}; stderr: {stderr}"))
        }
    }
}

/// Polls `probe` until it returns `Some`, failing with `what` after `limit`.
fn eventually<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- server-sent events -----------------------------------------------------------------------------------

/// Opens `GET /events` over a socket and reads the status line; the rest is the (chunked) event stream.
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

/// Reads SSE frames from `reader` until one named `event` satisfies `want`; returns its data.
fn next_event(reader: &mut BufReader<TcpStream>, event: &str, want: impl Fn(&str) -> bool) -> String {
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

#[test]
fn events_push_a_summary_then_only_what_changed() {
    let d = Dashboard::start("events");
    let mut events = open_events(d.port);
    let as_value = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    let doc = sample_latest();
    let first = as_value(&next_event(&mut events, "summary", |_| true));
    assert_eq!(
        first["summary"]["devices"],
        doc.records
            .iter()
            .map(|r| &r.device_id)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    assert_eq!(first["summary"]["pipeline"]["events_total"], doc.pipeline.events_total);
    assert!(
        first.get("records").is_none() && first["summary"].get("records").is_none(),
        "no records on connect"
    );
    next_event(&mut events, "status", |s| s.contains("\"error\":null"));

    // One device changes: the push carries its records and the new counters, not the other devices.
    let mut doc: model::latest::SeedDoc = serde_json::from_slice(&fs::read(d.latest()).unwrap()).unwrap();
    doc.pipeline.events_total = 424_242;
    let target = doc.records[0].device_id.clone();
    for r in doc.records.iter_mut().filter(|r| r.device_id == target) {
        r.avg_temperature = 42.5;
    }
    write_doc(&d.latest(), &doc);
    let pushed = as_value(&next_event(&mut events, "delta", |s| s.contains("424242")));
    assert_eq!(pushed["summary"]["pipeline"]["events_total"], 424_242);
    assert_eq!(
        (pushed["changed_total"].as_u64(), pushed["removed_total"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(pushed["changed"][0]["device_id"], target.as_str());
    assert!(
        pushed["changed"][0]["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["avg_temperature"] == 42.5)
    );

    support::write_atomically(&d.latest(), b"{broken");
    let status = next_event(&mut events, "status", |s| !s.contains("\"error\":null"));
    assert!(status.contains("not valid JSON"), "{status}");
}

// ---- process behaviour ------------------------------------------------------------------------------------

#[test]
fn sigterm_stops_the_server_even_with_an_open_event_stream() {
    let mut d = Dashboard::start("sigterm");
    let mut events = open_events(d.port);
    next_event(&mut events, "summary", |_| true);
    let status = Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = eventually(Duration::from_secs(8), "the dashboard exits after SIGTERM", || {
        d.child.try_wait().unwrap()
    });
    assert!(exit.success(), "exit status {exit:?}");
}

fn run_to_failure(args: &[&str]) -> String {
    let out = binary().args(args).output().expect("the dashboard binary runs");
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

#[test]
fn a_taken_port_fails_fast_naming_the_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let root = TempDir::new("port");
    let assets = support::stub_assets(&root.0);
    let started = Instant::now();
    let err = run_to_failure(&["--port", &port, "--data", text(&root.0), "--assets", text(&assets)]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.contains("already in use") && err.contains("--port"), "{err}");
}

#[test]
fn bad_flags_fail_fast_with_the_fix() {
    let root = TempDir::new("flags");
    let file = root.0.join("not-a-folder");
    fs::write(&file, "x").unwrap();
    let assets = support::stub_assets(&root.0);
    let err = run_to_failure(&["--bind", "localhost"]);
    assert!(err.contains("--bind") && err.contains("127.0.0.1"), "{err}");
    let err = run_to_failure(&["--port", "0", "--data", text(&file), "--assets", text(&assets)]);
    assert!(err.contains("--data") && err.contains("not a folder"), "{err}");
    let err = run_to_failure(&["--port", "0", "--assets", text(&root.0.join("nowhere"))]);
    assert!(err.contains("npm ci") && err.contains("--assets"), "{err}");
    let err = run_to_failure(&["--port", "http"]);
    assert!(err.contains("--port"), "{err}");
}
