//! Push updates: every `/events` client turns the watch channel of new views (published by
//! [`crate::snapshot::watcher`]) into Server-Sent Events. A client gets the document's summary on connect, then per
//! change the new summary with the records of the groups that changed (see [`crate::snapshot::changes`]), never
//! the whole document; slow clients skip intermediate versions instead of queueing them (their next change is
//! taken from the last version they were sent).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use futures_util::stream;
use tokio::sync::watch;
use warp::sse::Event;

use crate::snapshot::changes;
use crate::snapshot::latest::{Snapshot, View};

/// How long a browser waits before reconnecting a dropped event stream.
const RECONNECT_AFTER: Duration = Duration::from_secs(2);

/// What one client has been sent so far.
struct Client {
    updates: watch::Receiver<View>,
    connected: bool,
    sent_doc: Option<Arc<Snapshot>>,
    sent_error: Option<Option<String>>,
    queue: VecDeque<Event>,
}

/// The event stream of one client. `summary` (first, `{"generation", "summary"}`) and then `delta` events (one
/// per new document: [`changes::delta_json`] from the last document this client was sent) tell what the page
/// shows besides the group charts and which groups changed; `status` events carry
/// `{"error": null | "...", "stale_after_seconds": n}` whenever the file's readability changes. Each event's id
/// is the view's generation.
pub fn events(updates: watch::Receiver<View>, stale_after: Duration) -> impl Stream<Item = Result<Event, Infallible>> {
    let client = Client {
        updates,
        connected: false,
        sent_doc: None,
        sent_error: None,
        queue: VecDeque::new(),
    };
    stream::unfold(client, move |mut c| async move {
        loop {
            if let Some(event) = c.queue.pop_front() {
                return Some((Ok(event), c));
            }
            if c.connected {
                // An error means the watcher stopped (shutdown): end the stream.
                c.updates.changed().await.ok()?;
            } else {
                c.connected = true;
                c.queue
                    .push_back(Event::default().retry(RECONNECT_AFTER).comment("connected"));
            }
            let view = c.updates.borrow_and_update().clone();
            if let Some(snapshot) = &view.snapshot {
                let event = match &c.sent_doc {
                    Some(sent) if Arc::ptr_eq(sent, snapshot) => None,
                    Some(sent) => {
                        let change = changes::change(&sent.groups, &snapshot.groups);
                        let device_keyed = snapshot.groups.device_keyed();
                        Some((
                            "delta",
                            changes::delta_json(view.generation, &snapshot.summary, &change, device_keyed),
                        ))
                    }
                    None => Some((
                        "summary",
                        serde_json::json!({"generation": view.generation, "summary": snapshot.summary}).to_string(),
                    )),
                };
                if let Some((kind, data)) = event {
                    c.queue
                        .push_back(Event::default().event(kind).id(view.generation.to_string()).data(data));
                    c.sent_doc = Some(Arc::clone(snapshot));
                }
            }
            if c.sent_error.as_ref() != Some(&view.error) {
                let status = serde_json::json!({
                    "error": view.error,
                    "stale_after_seconds": stale_after.as_secs_f64(),
                });
                c.queue
                    .push_back(Event::default().event("status").data(status.to_string()));
                c.sent_error = Some(view.error.clone());
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::time::SystemTime;

    /// A snapshot of a document whose devices have these average temperatures.
    fn snapshot(devices: &[(&str, f64)]) -> Arc<Snapshot> {
        let records: Vec<serde_json::Value> = devices
            .iter()
            .map(|(id, t)| {
                serde_json::json!({"device_id": id, "window_start": "2024-11-03T14:30:00Z",
                    "window_end": "2024-11-03T14:30:10Z", "count": 4, "avg_temperature": t, "avg_humidity": 50.0,
                    "min_battery": 80.0, "max_battery": 90.0})
            })
            .collect();
        let raw = serde_json::to_vec(&serde_json::json!({"updated_at": 1, "records": records})).unwrap();
        let doc = serde_json::from_slice(&raw).unwrap();
        Arc::new(Snapshot::new(raw, doc, SystemTime::now()))
    }

    /// A readable version of generation `generation` holding these devices.
    fn view(generation: u64, devices: &[(&str, f64)]) -> View {
        View {
            generation,
            snapshot: Some(snapshot(devices)),
            error: None,
            read_errors_total: 0,
        }
    }

    /// The next event is of kind `kind` and its text holds `needle`.
    async fn expect(events: &mut (impl Stream<Item = Result<Event, Infallible>> + Unpin), kind: &str, needle: &str) {
        let text = events.next().await.unwrap().unwrap().to_string();
        assert!(
            text.contains(&format!("event:{kind}")) && text.contains(needle),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_client_gets_the_current_state_then_each_change_then_the_end() {
        let first = view(1, &[("a", 1.0), ("b", 2.0)]);
        let (tx, rx) = watch::channel(first.clone());
        let mut events = Box::pin(events(rx, Duration::from_secs(30)));
        let text = events.next().await.unwrap().unwrap().to_string();
        assert!(text.contains(":connected"), "{text}");
        expect(&mut events, "summary", "\"devices\":2").await;
        expect(&mut events, "status", "\"error\":null").await;

        // A corrupt file: same document, new error; only a status event follows.
        tx.send_replace(View {
            generation: 2,
            error: Some("corrupt".into()),
            ..first.clone()
        });
        expect(&mut events, "status", "corrupt").await;

        // Recovery with a new document: the document, then the cleared error.
        tx.send_replace(View {
            read_errors_total: 1,
            ..view(3, &[("a", 1.0), ("b", 2.5)])
        });
        // Only the device that changed travels.
        let text = events.next().await.unwrap().unwrap().to_string();
        assert!(
            text.contains("event:delta") && text.contains("\"changed_total\":1"),
            "{text}"
        );
        assert!(
            text.contains("\"device_id\":\"b\"") && !text.contains("\"device_id\":\"a\""),
            "{text}"
        );
        expect(&mut events, "status", "\"error\":null").await;

        drop(tx);
        assert!(events.next().await.is_none());
    }

    #[tokio::test]
    async fn a_client_that_skipped_versions_gets_every_change_since_its_last_push() {
        let (tx, rx) = watch::channel(view(1, &[("a", 1.0), ("b", 2.0), ("c", 3.0)]));
        let mut events = Box::pin(events(rx, Duration::from_secs(30)));
        for kind in [":connected", "event:summary", "event:status"] {
            let text = events.next().await.unwrap().unwrap().to_string();
            assert!(text.contains(kind), "{text}");
        }
        // Two versions while the client was not reading: `a` changed in the first, `c` went away in the second.
        tx.send_replace(view(2, &[("a", 1.5), ("b", 2.0), ("c", 3.0)]));
        tx.send_replace(view(3, &[("a", 1.5), ("b", 2.0)]));
        let text = events.next().await.unwrap().unwrap().to_string();
        assert!(text.contains("event:delta") && text.contains("id:3"), "{text}");
        assert!(
            text.contains("\"changed_total\":1") && text.contains("\"removed\":[\"c\"]"),
            "{text}"
        );
        assert!(
            text.contains("\"device_id\":\"a\"") && !text.contains("\"device_id\":\"b\""),
            "{text}"
        );
    }
}
