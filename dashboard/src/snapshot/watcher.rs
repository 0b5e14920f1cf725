//! Watching `latest.json`: a task polls the file (size, modification time, inode) every `--poll-interval` and
//! publishes each new view (a new document, or a change of its problem) on a watch channel, which the event
//! streams and the routes read. The file is read off the async threads.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::latest::{LatestStore, View};

/// Polls the store until `shutdown` turns true, publishing every new view on `updates`. Dropping `updates`
/// on return ends every open event stream, which lets a graceful shutdown finish.
pub async fn watch_latest(
    store: Arc<LatestStore>,
    every: Duration,
    updates: watch::Sender<View>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => break,
        }
        let view = match refresh(&store).await {
            Some(view) => view,
            None => continue,
        };
        if view.generation != updates.borrow().generation {
            updates.send_replace(view);
        }
    }
}

/// Re-reads the file if it changed, off the async threads.
pub async fn refresh(store: &Arc<LatestStore>) -> Option<View> {
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || store.refresh()).await {
        Ok(view) => Some(view),
        Err(e) => {
            tracing::error!(error = %e, "reading latest.json failed unexpectedly");
            None
        }
    }
}
