//! The web dashboard of the IoT pipeline as a library, in two halves: [`snapshot`] (what is read from the
//! dataflow's output: `latest.json` into a device table and a summary, the history, the Prometheus text) and
//! [`http`] (the routes that serve it, which the HTTP tests drive through `warp::test`); [`cli`] holds the flags,
//! and [`run`] loads the page's assets, binds the port, then serves the routes while a background task watches
//! `latest.json`, until Ctrl-C or SIGTERM.

pub mod cli;
pub mod http;
pub mod snapshot;

use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::watch;

pub use crate::cli::Flags;
pub use crate::http::reply::ERROR_HEADER;
pub use crate::http::routes::{App, routes};
/// The history reader keeps its short path: the benchmarks and the job's tests call it in process.
pub use crate::snapshot::history;

use crate::http::assets::Assets;
use crate::snapshot::watcher;

/// Longest wait for open connections once a shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Runs the dashboard with `flags` until Ctrl-C or SIGTERM. Fails before serving anything when the flags cannot
/// work (a `--data` that is a file, Chart.js missing from `--assets`, a taken port), with a message naming the
/// flag.
pub fn run(flags: Flags) -> anyhow::Result<()> {
    if flags.data.exists() && !flags.data.is_dir() {
        bail!(
            "--data {} is not a folder: point --data at the dataflow's --out folder (the one holding latest.json \
             and parquet/)",
            flags.data.display()
        );
    }
    if !flags.data.exists() {
        tracing::warn!(
            data = %flags.data.display(),
            "the --data folder does not exist yet; waiting for the dataflow to write latest.json there"
        );
    }
    let assets = Assets::load(flags.assets.as_deref())?;
    tracing::info!(
        chart_js = %assets.chart_js_path.display(),
        version = assets.chart_js_version.as_deref().unwrap_or("unknown"),
        "Chart.js loaded"
    );
    let listener = bind(&flags)?;
    let addr = listener.local_addr().context("cannot read the bound address")?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(flags, assets, listener, addr))
}

/// Binds before anything else is started, so that a taken port is reported at once and by its flag.
fn bind(flags: &Flags) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::new(flags.bind, flags.port);
    let listener = TcpListener::bind(addr).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "port {} on {} is already in use (--port): stop the other process or pick another port, e.g. --port {}",
            flags.port,
            flags.bind,
            flags.port.wrapping_add(1).max(1024)
        ),
        io::ErrorKind::PermissionDenied => anyhow::anyhow!(
            "not allowed to listen on port {} (--port): ports below 1024 need privileges; use e.g. --port 5000",
            flags.port
        ),
        io::ErrorKind::AddrNotAvailable => anyhow::anyhow!(
            "{} is not an address of this machine (--bind): use 127.0.0.1 or 0.0.0.0",
            flags.bind
        ),
        _ => anyhow::Error::new(e).context(format!("cannot listen on {addr} (--bind/--port)")),
    })?;
    listener
        .set_nonblocking(true)
        .context("cannot make the listener non-blocking")?;
    Ok(listener)
}

async fn serve(flags: Flags, assets: Assets, listener: TcpListener, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener).context("cannot register the listener")?;
    let (app, updates) = App::new(&flags.data, flags.stale_after, assets);
    let app = Arc::new(app);
    if let Some(first) = watcher::refresh(&app.store).await {
        updates.send_replace(first);
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let watching = tokio::spawn(watcher::watch_latest(
        Arc::clone(&app.store),
        flags.poll_interval,
        updates,
        shutdown_rx.clone(),
    ));

    let mut stopped = shutdown_rx.clone();
    let server = warp::serve(routes(app))
        .incoming(listener)
        .graceful(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .run();
    tracing::info!(%addr, data = %flags.data.display(), "dashboard listening");
    // The one line on stdout: scripts wait for it to know the port is served (useful with --port 0).
    println!("dashboard listening on http://{addr}/");
    io::stdout().flush().ok();

    let mut server = std::pin::pin!(server);
    tokio::select! {
        () = &mut server => return Ok(()),
        () = shutdown_signal() => {}
    }
    tracing::info!("shutting down");
    // Stopping the watcher drops the update channel, which ends every open event stream.
    let _ = shutdown_tx.send(true);
    let _ = watching.await;
    if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
        tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; exiting anyway");
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
