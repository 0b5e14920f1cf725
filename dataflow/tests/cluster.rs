//! A cluster of processes on the real broker, as an operator meets it (`docs/operations.md`, "A cluster"):
//! - a process killed (SIGKILL) or frozen (SIGSTOP) makes every other process stop promptly with exit status 3
//!   and one line naming the lost process, its address and the last committed checkpoint, never a panic;
//! - a process whose peer never starts gives up after `--connect-timeout` with exit status 4, naming it;
//! - a stop asked of one process (Ctrl-C, SIGTERM) stops the whole cluster with one last checkpoint;
//! - `dataflow cluster` restarts every process from the last checkpoint after a random process of three is
//!   killed at five random moments, and a bounded finish leaves the history and the Kafka sink topic exactly
//!   the golden windows, with the restarts counted in `latest.json`;
//! - a restart storm makes the supervisor give up with exit status 5 and the last failure's message.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testkit::golden::{assert_history_matches, expected};
use testkit::run::{DataflowRun, ProducerRun, Running};
use testkit::{
    Lcg, read_committed, read_history, read_latest, read_topic, require_broker, sink_rows, temp_dir, unique_topic,
};

/// A job on `topic` that checkpoints and publishes every second into `dir`.
fn job(brokers: &str, topic: &str, dir: &Path) -> DataflowRun {
    DataflowRun::kafka(brokers, topic)
        .checkpoint_interval(Duration::from_secs(1))
        .trigger(Duration::from_secs(1))
        .out(&dir.join("out"))
        .deadletter(&dir.join("dead"))
}

/// Waits until `out/latest.json` exists (the job is running).
fn wait_running(out: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !out.join("latest.json").exists() {
        assert!(
            Instant::now() < deadline,
            "no latest.json in {} within {limit:?}",
            out.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `host:port` of process `p` in `hostfile`.
fn address(hostfile: &Path, p: usize) -> String {
    std::fs::read_to_string(hostfile)
        .unwrap()
        .lines()
        .nth(p)
        .unwrap()
        .to_string()
}

/// Two processes of a job on a fresh topic with some records, both running.
fn two_processes(prefix: &str, peer_timeout: Duration) -> (PathBuf, PathBuf, Running, Running) {
    let brokers = require_broker();
    let topic = testkit::seeded_topic(&brokers, prefix, 2_000, 5);
    let dir = temp_dir(prefix);
    let hostfile = testkit::loopback_hostfile(&dir, 2);
    let spawn = |p: usize| {
        job(&brokers, &topic, &dir)
            .cluster(2, p, &hostfile)
            .with(|a| a.peer_timeout = peer_timeout)
            .spawn()
    };
    let (p0, p1) = (spawn(0), spawn(1));
    wait_running(&dir.join("out"), Duration::from_secs(60));
    // A checkpoint or two commits.
    std::thread::sleep(Duration::from_secs(3));
    (dir, hostfile, p0, p1)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one line a process that lost a peer writes.
fn assert_lost_report(text: &str, lost: usize, address: &str, why: &str) {
    let line = text
        .lines()
        .find(|l| l.starts_with("dataflow: lost process"))
        .unwrap_or_else(|| panic!("no report of the lost process:\n{text}"));
    for part in [
        &format!("lost process {lost} of 2 ({address})"),
        why,
        "exit status 3",
        "the last committed checkpoint is checkpoint",
        "Start every process of the cluster again",
    ] {
        assert!(line.contains(part), "{part:?} missing from: {line}");
    }
    assert!(!text.contains("panicked"), "a panic's text reached the log:\n{text}");
}

#[test]
fn a_killed_process_stops_the_others_at_once_with_status_3_naming_it() {
    let (_dir, hostfile, p0, p1) = two_processes("cluster-kill", Duration::from_secs(10));
    p1.kill9();
    let started = Instant::now();
    let out = p0.wait(Duration::from_secs(30));
    let took = started.elapsed();
    println!("a killed peer: the survivor exited {took:?} after the kill");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} to notice a closed connection"
    );
    assert_lost_report(&stderr(&out), 1, &address(&hostfile, 1), "its connection failed");
}

#[test]
fn a_frozen_process_is_lost_after_the_peer_timeout() {
    let timeout = Duration::from_secs(3);
    let (_dir, hostfile, p0, p1) = two_processes("cluster-stop", timeout);
    p1.pause();
    let started = Instant::now();
    let out = p0.wait(Duration::from_secs(60));
    let took = started.elapsed();
    println!("a frozen peer: the survivor exited {took:?} after SIGSTOP (--peer-timeout {timeout:?})");
    p1.kill9();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // The silence counts from the peer's last heartbeat, which left up to one interval (0.5 s) before the SIGSTOP.
    assert!(
        took >= timeout - Duration::from_millis(500) && took < timeout + Duration::from_secs(4),
        "took {took:?} to notice a silent peer (--peer-timeout {timeout:?})"
    );
    assert_lost_report(&stderr(&out), 1, &address(&hostfile, 1), "sent no heartbeat");
}

#[test]
fn a_stop_asked_of_one_process_stops_the_whole_cluster_with_its_last_checkpoint() {
    let brokers = require_broker();
    let topic = testkit::seeded_topic(&brokers, "cluster-one-stop", 20_000, 13);
    let dir = temp_dir("cluster-one-stop");
    let hostfile = testkit::loopback_hostfile(&dir, 2);
    let run = |p: usize| job(&brokers, &topic, &dir).cluster(2, p, &hostfile);
    let (p0, p1) = (run(0).spawn(), run(1).spawn());
    wait_running(&dir.join("out"), Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    // Ctrl-C (or SIGTERM, a Kubernetes pod deleted) reaches process 1 only.
    p1.stop_ok(Duration::from_secs(60));
    let out = p0.wait_ok(Duration::from_secs(60));
    let text = stderr(&out);
    assert!(
        text.contains("another process of the cluster was asked to stop"),
        "{text}"
    );
    assert!(!text.contains("lost process"), "{text}");
    // Both took the stop checkpoint together: a bounded restart finishes exactly.
    let finish: Vec<Running> = (0..2).map(|p| run(p).bounded().spawn()).collect();
    for f in finish {
        f.wait_ok(Duration::from_secs(120));
    }
    let records = read_topic(&brokers, &topic);
    assert_history_matches(&read_history(&dir.join("out")), &expected(&records));
}

#[test]
fn a_peer_that_never_starts_is_named_after_the_connect_timeout_with_status_4() {
    let brokers = require_broker();
    let topic = unique_topic("cluster-alone");
    testkit::create_topic(&brokers, &topic, 1);
    let dir = temp_dir("cluster-alone");
    let hostfile = testkit::loopback_hostfile(&dir, 3);
    let out = job(&brokers, &topic, &dir)
        .cluster(3, 1, &hostfile)
        .with(|a| a.connect_timeout = Duration::from_secs(3))
        .spawn()
        .wait(Duration::from_secs(60));
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    for part in [
        "process 1 could not reach process(es)",
        &format!("0 ({})", address(&hostfile, 0)),
        &format!("2 ({})", address(&hostfile, 2)),
        "--connect-timeout 3s",
        "waiting for a peer to start",
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
}

/// `GET path` on `addr`: the status code and the body.
fn http_get(addr: &str, path: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

#[test]
fn the_health_endpoint_reports_a_moving_frontier_and_readiness() {
    let brokers = require_broker();
    let topic = testkit::seeded_topic(&brokers, "cluster-health", 2_000, 7);
    let dir = temp_dir("cluster-health");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let running = job(&brokers, &topic, &dir)
        .idle_timeout(Duration::from_secs(1))
        .with(|a| a.health_addr = Some(addr.parse().unwrap()))
        .spawn();
    wait_running(&dir.join("out"), Duration::from_secs(60));
    let (status, ready) = http_get(&addr, "/readyz");
    assert_eq!((status, ready["running"].as_bool()), (200, Some(true)), "{ready}");
    // The input is idle after a second: the frontier follows the wall clock, so it keeps moving.
    std::thread::sleep(Duration::from_secs(3));
    let (status, first) = http_get(&addr, "/healthz");
    assert_eq!((status, first["status"].as_str()), (200, Some("ok")), "{first}");
    std::thread::sleep(Duration::from_secs(2));
    let (_, second) = http_get(&addr, "/healthz");
    assert!(
        second["frontier_ms"].as_u64() > first["frontier_ms"].as_u64(),
        "{first} then {second}"
    );
    running.stop_ok(Duration::from_secs(60));
}

/// The process ids of the supervisor's children (its cluster's processes).
fn children(supervisor: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Waits until the supervisor runs `n` processes none of which is in `old`.
fn wait_new_children(supervisor: u32, n: usize, old: &[u32], limit: Duration) -> Vec<u32> {
    let deadline = Instant::now() + limit;
    loop {
        let now = children(supervisor);
        if now.len() == n && now.iter().all(|p| !old.contains(p)) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster was not restarted within {limit:?}: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_supervisor_restarts_the_cluster_after_random_kills_and_the_outputs_stay_exact() {
    let brokers = require_broker();
    let topic = unique_topic("cluster-supervised");
    let sink = unique_topic("cluster-supervised-out");
    testkit::create_topic(&brokers, &topic, 3);
    let mut rng = Lcg::from_env("CLUSTER_SEED");

    // 120,000 events over about 20 s from 40 devices, with late and bad records.
    let producer = ProducerRun::kafka(&brokers, &topic)
        .devices(40)
        .rate(150.0)
        .count(120_000)
        .late_and_bad()
        .seed(29)
        .spawn();
    let dir = temp_dir("cluster-supervised");
    let out = dir.join("out");
    let run = job(&brokers, &topic, &dir).sink_topic(&sink);
    let fast = [("--restart-backoff", "200ms"), ("--max-restarts", "10")];
    let supervisor = Running::spawn(&mut run.supervised(3, &fast));
    let mut pids = wait_new_children(supervisor.id(), 3, &[], Duration::from_secs(30));
    wait_running(&out, Duration::from_secs(60));
    let kills = 5;
    for _ in 0..kills {
        std::thread::sleep(Duration::from_millis(1_500 + rng.below(2_500)));
        let victim = pids[rng.below(3) as usize];
        // SAFETY: a signal to a process of the supervisor's cluster, alive until the supervisor reaps it.
        assert_eq!(unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) }, 0);
        let killed = Instant::now();
        pids = wait_new_children(supervisor.id(), 3, &pids, Duration::from_secs(60));
        println!(
            "kill -9 of pid {victim}: every process restarted {:?} later",
            killed.elapsed()
        );
    }
    producer.wait_ok(Duration::from_secs(300));
    std::thread::sleep(Duration::from_secs(3));
    let stopped = supervisor.stop_ok(Duration::from_secs(120));
    let log = String::from_utf8_lossy(&stopped.stderr);
    assert!(log.contains("[process 2]"), "the processes' logs are prefixed:\n{log}");
    assert_eq!(read_latest(&out)["pipeline"]["restarts"].as_u64(), Some(kills));
    assert_eq!(read_latest(&out)["pipeline"]["processes"].as_u64(), Some(3));

    // A bounded finish on a fresh supervisor: to the end of the topic, every window final.
    let finish = Running::spawn(&mut run.clone().bounded().supervised(3, &fast));
    finish.wait_ok(Duration::from_secs(300));
    let records = read_topic(&brokers, &topic);
    assert_eq!(records.len(), 120_000);
    let expected = expected(&records);
    assert_history_matches(&read_history(&out), &expected);
    assert_history_matches(&sink_rows(&read_committed(&brokers, &sink)), &expected);
    let latest = read_latest(&out);
    let events: usize = expected.rows.values().map(Vec::len).sum();
    assert_eq!(latest["pipeline"]["events_total"].as_u64(), Some(events as u64));
}

#[test]
fn a_restart_storm_makes_the_supervisor_give_up_with_status_5_and_the_last_failure() {
    let brokers = require_broker();
    let dir = temp_dir("cluster-storm");
    let broken = dir.join("broken.sql");
    std::fs::write(
        &broken,
        "CREATE TABLE t (x BIGINT) WITH ('connector' = 'kafka'; SELECT nonsense",
    )
    .unwrap();
    let run = DataflowRun::kafka(&brokers, "unused")
        .sql(&broken)
        .out(&dir.join("out"))
        .deadletter(&dir.join("dead"));
    let budget = [("--max-restarts", "2"), ("--restart-backoff", "100ms")];
    let out = Running::spawn(&mut run.supervised(2, &budget)).wait(Duration::from_secs(120));
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{text}");
    for part in [
        "gave up after 3 failures within --restart-window 10m (--max-restarts 2)",
        "ended with exit status 1 (dataflow: error:",
        "broken.sql",
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
    assert_eq!(
        text.matches("restarting every process of the cluster").count(),
        2,
        "{text}"
    );
}
