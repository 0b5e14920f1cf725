//! A process's health endpoint (`--health-addr`), for an orchestrator's probes (`infra/k8s/`): `GET /healthz`
//! answers 200 while the process's frontier (where its dataflow's end stands: its share of the job's event-time
//! watermark) has advanced within `--stall-timeout`, and 503 naming how long it has stood still otherwise; a
//! finished job counts as healthy. `GET /readyz` answers 200 once the workers run. Both carry a small JSON body.
//! An unbounded job's frontier always moves, with its data or, on idle input, with the wall clock
//! (`docs/semantics.md`, "Idle partitions"), so a frontier that stands still means a stalled process: a
//! restart (of the whole cluster, `cluster::liveness`) resumes it from the last checkpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use warp::Filter;

/// What the endpoint reports, updated by the process's workers.
pub struct Health {
    started: Instant,
    /// Per local worker: its frontier (`u64::MAX`: its dataflow is complete).
    frontiers: Vec<AtomicU64>,
    /// The lowest frontier seen advancing last, and when (ms after `started`).
    lowest: AtomicU64,
    advanced_ms: AtomicU64,
    running: AtomicBool,
    stall: Duration,
}

impl Health {
    /// The health of a process with `workers` local workers, stalled after `stall` without progress.
    pub fn new(workers: usize, stall: Duration) -> Arc<Health> {
        Arc::new(Health {
            started: Instant::now(),
            frontiers: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            lowest: AtomicU64::new(0),
            advanced_ms: AtomicU64::new(0),
            running: AtomicBool::new(false),
            stall,
        })
    }

    /// Local worker `local`'s frontier now (`None`: its dataflow is complete).
    pub fn observe(&self, local: usize, frontier: Option<u64>) {
        self.running.store(true, Ordering::Relaxed);
        if let Some(f) = self.frontiers.get(local) {
            f.store(frontier.unwrap_or(u64::MAX), Ordering::Relaxed);
        }
        let lowest = self
            .frontiers
            .iter()
            .map(|f| f.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0);
        if lowest > self.lowest.fetch_max(lowest, Ordering::Relaxed) {
            self.advanced_ms
                .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
    }

    /// `/healthz`: whether the frontier moved within the stall timeout, and the body to answer with.
    pub fn verdict(&self, now: Instant) -> (bool, serde_json::Value) {
        let lowest = self.lowest.load(Ordering::Relaxed);
        let since = Duration::from_millis(
            (now.duration_since(self.started).as_millis() as u64)
                .saturating_sub(self.advanced_ms.load(Ordering::Relaxed)),
        );
        let finished = lowest == u64::MAX;
        let ok = finished || since <= self.stall;
        let body = serde_json::json!({
            "status": if finished { "finished" } else if ok { "ok" } else { "stalled" },
            "frontier_ms": (!finished && lowest > 0).then_some(lowest),
            "frontier_still_for_ms": since.as_millis() as u64,
            "stall_timeout_ms": self.stall.as_millis() as u64,
        });
        (ok, body)
    }
}

/// Serves `/healthz` and `/readyz` on `addr` from a thread of its own.
pub fn serve(addr: SocketAddr, health: Arc<Health>) -> Result<()> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr} (--health-addr)"))?;
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("health".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "the health endpoint cannot start");
                    return;
                }
            };
            runtime.block_on(async move {
                let live = {
                    let health = health.clone();
                    warp::path!("healthz").map(move || {
                        let (ok, body) = health.verdict(Instant::now());
                        reply(ok, &body)
                    })
                };
                let ready = warp::path!("readyz").map(move || {
                    let running = health.running.load(Ordering::Relaxed);
                    reply(running, &serde_json::json!({ "running": running }))
                });
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    tracing::error!("the health endpoint cannot use its socket");
                    return;
                };
                let routes = warp::get().and(live.or(ready));
                warp::serve(routes).incoming(listener).run().await;
            });
        })
        .context("cannot start the health endpoint's thread")?;
    tracing::info!(%addr, "health endpoint: /healthz, /readyz");
    Ok(())
}

fn reply(ok: bool, body: &serde_json::Value) -> warp::reply::WithStatus<warp::reply::Json> {
    let status = if ok {
        warp::http::StatusCode::OK
    } else {
        warp::http::StatusCode::SERVICE_UNAVAILABLE
    };
    warp::reply::with_status(warp::reply::json(body), status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frontier_that_stands_still_past_the_timeout_is_a_stall() {
        let h = Health::new(2, Duration::from_millis(200));
        h.observe(0, Some(3_000));
        h.observe(1, Some(2_000));
        assert!(h.verdict(Instant::now()).0);
        // Worker 0 moves, but the process's frontier is worker 1's, which stands still.
        std::thread::sleep(Duration::from_millis(120));
        h.observe(0, Some(5_000));
        std::thread::sleep(Duration::from_millis(120));
        let (ok, body) = h.verdict(Instant::now());
        assert!(!ok, "{body}");
        assert_eq!(body["status"], "stalled");
        assert_eq!(body["frontier_ms"], 2_000);
        h.observe(1, Some(6_000));
        assert!(h.verdict(Instant::now()).0);
    }

    #[test]
    fn a_finished_job_is_healthy_for_good() {
        let h = Health::new(1, Duration::from_millis(10));
        h.observe(0, None);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(h.verdict(Instant::now()).1["status"], "finished");
    }
}
