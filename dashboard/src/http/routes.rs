//! The HTTP surface: every route, its replies and the JSON error bodies. Unknown paths answer 404 with a small
//! JSON body; static files come only from the in-memory table of [`super::assets`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::DateTime;
use tokio::sync::watch;
use warp::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue};
use warp::http::{Response, StatusCode};
use warp::reply::Reply;
use warp::{Filter, Rejection};

use super::assets::{Asset, Assets};
use super::reply::{ERROR_HEADER, compressible, document_reply, error_reply, header_text, json_reply};
use super::{api, live};
use crate::snapshot::history::{self, DEFAULT_LIMIT, HistoryError, HistoryQuery, MAX_LIMIT};
use crate::snapshot::latest::{HealthStatus, LatestStore, View};
use crate::snapshot::{prometheus, watcher};

/// What every handler needs.
pub struct App {
    /// The `latest.json` reader.
    pub store: Arc<LatestStore>,
    /// `<data>/parquet`.
    pub parquet_root: PathBuf,
    /// The page's files.
    pub assets: Assets,
    /// Changes published by the watcher.
    pub updates: watch::Receiver<View>,
    /// The spans of the history files seen so far (see `history::SpanCache`).
    pub history_spans: Arc<history::SpanCache>,
}

impl App {
    /// The app for the dataflow's `--out` folder `data`, with the sender of its update channel: the watcher
    /// ([`watcher::watch_latest`]) publishes on it, and dropping it ends every open event stream.
    pub fn new(data: &Path, stale_after: Duration, assets: Assets) -> (App, watch::Sender<View>) {
        let (updates_tx, updates) = watch::channel(View::default());
        let app = App {
            store: Arc::new(LatestStore::new(data, stale_after)),
            parquet_root: data.join(model::history::PARQUET_DIR),
            assets,
            updates,
            history_spans: Arc::default(),
        };
        (app, updates_tx)
    }

    /// The view after checking the file again (the last known one if the check itself failed).
    async fn current_view(&self) -> View {
        watcher::refresh(&self.store).await.unwrap_or_else(|| self.store.view())
    }
}

/// Policy for the page: scripts, styles and connections from this origin only.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                        connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// An answer of the page's API from the current view, the file it is read from, the URL's parameters and the
/// client's `Accept-Encoding`; `Err` is a 400 with the message.
type ViewQuery = fn(&View, &Path, Vec<(String, String)>, Option<&str>) -> Result<warp::reply::Response, String>;

/// A client error: 400 with the message.
#[derive(Debug)]
struct BadRequest(String);
impl warp::reject::Reject for BadRequest {}

/// Every route, with JSON errors and the common headers.
pub fn routes(app: Arc<App>) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let with_app = warp::any().map(move || Arc::clone(&app));
    let get = || warp::get().or(warp::head()).unify();
    let if_none_match = warp::header::optional::<String>("if-none-match");

    let page = warp::path::end()
        .and(get())
        .and(with_app.clone())
        .and(if_none_match)
        .map(|app: Arc<App>, inm: Option<String>| {
            let mut reply = asset_reply(&app.assets.index, inm.as_deref());
            reply
                .headers_mut()
                .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
            reply
        });
    let files = warp::path("static")
        .and(warp::path::tail())
        .and(get())
        .and(with_app.clone())
        .and(if_none_match)
        .and_then(
            |tail: warp::path::Tail, app: Arc<App>, inm: Option<String>| async move {
                match app.assets.get(tail.as_str()) {
                    Some(asset) => Ok(asset_reply(asset, inm.as_deref())),
                    None => Err(warp::reject::not_found()),
                }
            },
        );
    let accept_encoding = || warp::header::optional::<String>("accept-encoding");
    let metrics = warp::path!("metrics")
        .and(get())
        .and(with_app.clone())
        .and(accept_encoding())
        .then(|app: Arc<App>, ae: Option<String>| async move {
            let view = app.current_view().await;
            document_reply(&view, app.store.path(), ae.as_deref(), |s| s.raw.to_vec())
        });
    let prometheus = warp::path!("metrics" / "prometheus")
        .or(warp::path!("prometheus"))
        .unify()
        .and(get())
        .and(with_app.clone())
        .then(prometheus_reply);
    let events = warp::path!("events")
        .and(get())
        .and(with_app.clone())
        .map(|app: Arc<App>| {
            let stream = warp::sse::keep_alive().stream(live::events(app.updates.clone(), app.store.stale_after()));
            warp::sse::reply(stream)
        });
    let health = warp::path!("api" / "health")
        .and(get())
        .and(with_app.clone())
        .then(health_reply);
    let summary = warp::path!("api" / "summary")
        .and(get())
        .and(with_app.clone())
        .and(accept_encoding())
        .then(|app: Arc<App>, ae: Option<String>| async move {
            let view = app.current_view().await;
            api::summary_reply(&view, app.store.path(), ae.as_deref())
        });
    // The page's queries of the current document: the URL's parameters in, a 400 naming a bad one.
    let view_query = |answer: ViewQuery| {
        get()
            .and(warp::query::<Vec<(String, String)>>())
            .and(with_app.clone())
            .and(accept_encoding())
            .and_then(move |params, app: Arc<App>, ae: Option<String>| async move {
                let view = app.current_view().await;
                answer(&view, app.store.path(), params, ae.as_deref()).map_err(|m| warp::reject::custom(BadRequest(m)))
            })
    };
    let devices = warp::path!("api" / "devices").and(view_query(api::devices_reply));
    let device = warp::path!("api" / "device").and(view_query(api::device_reply));
    let history = warp::path!("api" / "history")
        .and(get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(with_app)
        .and(accept_encoding())
        .and_then(history_reply);

    let mut common = HeaderMap::new();
    common.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    common.insert("referrer-policy", HeaderValue::from_static("no-referrer"));

    page.boxed()
        .or(files)
        .or(metrics)
        .or(prometheus)
        .or(events)
        .or(health)
        .or(summary)
        .or(devices)
        .or(device)
        .or(history)
        .recover(rejection_reply)
        .with(warp::reply::with::headers(common))
        .with(warp::log::custom(|info| {
            tracing::debug!(
                method = %info.method(),
                path = info.path(),
                status = info.status().as_u16(),
                elapsed_ms = info.elapsed().as_secs_f64() * 1000.0,
                "request"
            );
        }))
}

fn asset_reply(asset: &Asset, if_none_match: Option<&str>) -> warp::reply::Response {
    let matches = if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
    let mut reply = if matches {
        Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .body(Vec::<u8>::new().into())
            .unwrap_or_default()
    } else {
        let mut r = Response::new(asset.body.clone().into());
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        r
    };
    let headers = reply.headers_mut();
    // Revalidate on every load: the ETag makes that a cheap 304 and a new build is picked up at once.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        headers.insert(ETAG, etag);
    }
    reply
}

/// `GET /metrics/prometheus` (also `/prometheus`): the pipeline counters in Prometheus text format.
async fn prometheus_reply(app: Arc<App>) -> warp::reply::Response {
    let view = app.current_view().await;
    let mut r = Response::new(prometheus::render(&view, SystemTime::now()).into());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(prometheus::CONTENT_TYPE));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /api/health`: 200 when the data is fresh, 503 when stale or missing, so that an HTTP check alone can
/// alert; the body says why either way.
async fn health_reply(app: Arc<App>) -> warp::reply::Response {
    let view = app.current_view().await;
    let health = app.store.health(&view, SystemTime::now());
    let status = match health.status {
        HealthStatus::Ok => StatusCode::OK,
        HealthStatus::Stale | HealthStatus::Missing => StatusCode::SERVICE_UNAVAILABLE,
    };
    json_reply(status, &health)
}

/// Parses `from`/`to`: RFC 3339 or epoch milliseconds.
fn parse_instant(name: &str, text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            format!("`{name}` must be RFC 3339 (e.g. 2024-11-03T14:30:00Z) or epoch milliseconds, got `{text}`")
        })
}

/// Builds the history query from the URL's parameters; every mistake is a 400 naming the parameter. The group
/// is `key` once per key, in key order (its values' texts), or `device` (the seed's spelling of a single key).
fn history_query(params: Vec<(String, String)>) -> Result<HistoryQuery, String> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut key = Vec::new();
    for (k, v) in params {
        match k.as_str() {
            "key" => key.push(v),
            "device" | "from" | "to" | "limit" => {
                if seen.insert(k.clone(), v).is_some() {
                    return Err(format!("parameter `{k}` is given more than once"));
                }
            }
            _ => {
                return Err(format!(
                    "unknown parameter `{k}`; accepted: device, key, from, to, limit"
                ));
            }
        }
    }
    match (seen.remove("device"), key.is_empty()) {
        (Some(_), false) => return Err("give either `device` or `key` (once per key), not both".into()),
        (Some(device), true) => {
            if device.is_empty() {
                return Err("parameter `device` is empty".into());
            }
            if device.len() > model::event::MAX_DEVICE_ID_BYTES {
                return Err(format!(
                    "no device id is longer than {} bytes",
                    model::event::MAX_DEVICE_ID_BYTES
                ));
            }
            key.push(device);
        }
        (None, true) => {
            return Err(
                "parameter `device` is required, e.g. /api/history?device=device-abc123 (or `key`, once per key)"
                    .into(),
            );
        }
        (None, false) => {
            if key.iter().any(String::is_empty) {
                return Err("a `key` is empty".into());
            }
        }
    }
    let from_ms = seen.get("from").map(|t| parse_instant("from", t)).transpose()?;
    let to_ms = seen.get("to").map(|t| parse_instant("to", t)).transpose()?;
    if let (Some(f), Some(t)) = (from_ms, to_ms)
        && f >= t
    {
        return Err("`from` must be before `to`".into());
    }
    let limit = match seen.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(format!(
                    "`limit` must be a whole number in 1..={MAX_LIMIT}, got `{text}`"
                ));
            }
        },
    };
    Ok(HistoryQuery {
        key,
        from_ms,
        to_ms,
        limit,
    })
}

fn instant_text(ms: Option<i64>) -> Option<String> {
    ms.and_then(|ms| u64::try_from(ms).ok()).map(model::time::rfc3339_ms)
}

/// `GET /api/history?key=…[&key=…]&from=…&to=…&limit=…` (or `device=…`): the group's final windows, oldest
/// first, read with the columns of the current document (the seed's before any).
async fn history_reply(
    params: Vec<(String, String)>,
    app: Arc<App>,
    accept_encoding: Option<String>,
) -> Result<warp::reply::Response, Rejection> {
    let query = history_query(params).map_err(|m| warp::reject::custom(BadRequest(m)))?;
    let view = app.current_view().await;
    let schema = match &view.snapshot {
        Some(s) => s.schema.clone(),
        None => model::latest::seed_schema(&[]),
    };
    let root = app.parquet_root.clone();
    let (q, sch) = (query.clone(), schema.clone());
    let spans = Arc::clone(&app.history_spans);
    let answer = tokio::task::spawn_blocking(move || history::read_history(&root, &sch, &q, &spans)).await;
    let history = match answer {
        Ok(Ok(h)) => h,
        Ok(Err(HistoryError::Key(message))) => return Err(warp::reject::custom(BadRequest(message))),
        Ok(Err(e)) => {
            return Ok(error_reply(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()));
        }
        Err(e) => {
            tracing::error!(error = %e, "history reader failed unexpectedly");
            return Ok(error_reply(StatusCode::INTERNAL_SERVER_ERROR, "history reader failed"));
        }
    };
    let label = model::latest::label_of(&query.key);
    let mut head = serde_json::json!({
        "label": label,
        "key": query.key,
        "from": instant_text(query.from_ms),
        "to": instant_text(query.to_ms),
        "limit": query.limit,
        "count": history.rows.len(),
        "truncated": history.truncated,
        "columns": history.columns,
        "errors": history.problems,
    });
    let keys = schema.keys();
    if keys.len() == 1 && keys[0].name == model::partition::PARTITION_COLUMN {
        head["device_id"] = serde_json::json!(label);
    }
    // The rows are kept as JSON text: spliced in after the other fields, not parsed and written again.
    let mut body = serde_json::to_vec(&head).expect("a JSON value serialises");
    body.pop();
    body.extend_from_slice(b",\"rows\":[");
    for (i, row) in history.rows.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(row.json().as_bytes());
    }
    body.extend_from_slice(b"]}");
    let mut r = compressible(body, accept_encoding.as_deref());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(first) = history.problems.first() {
        let text = format!("{} history file(s) skipped; first: {first}", history.problems.len());
        r.headers_mut().insert(ERROR_HEADER, header_text(&text));
    }
    Ok(r)
}

/// Turns every rejection into a small JSON body with the right status.
async fn rejection_reply(err: Rejection) -> Result<warp::reply::Response, Infallible> {
    if err.is_not_found() {
        return Ok(error_reply(StatusCode::NOT_FOUND, "not found"));
    }
    if let Some(BadRequest(message)) = err.find::<BadRequest>() {
        return Ok(error_reply(StatusCode::BAD_REQUEST, message));
    }
    if err.find::<warp::reject::InvalidQuery>().is_some() {
        return Ok(error_reply(
            StatusCode::BAD_REQUEST,
            "invalid query string (parameters must be percent-encoded UTF-8)",
        ));
    }
    if err.find::<warp::reject::MethodNotAllowed>().is_some() {
        let mut r = error_reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed; use GET");
        r.headers_mut().insert("allow", HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    tracing::warn!(rejection = ?err, "unhandled rejection");
    Ok(error_reply(StatusCode::BAD_REQUEST, "bad request"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<HistoryQuery, String> {
        history_query(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn history_times_accept_rfc3339_and_epoch_ms() {
        let a = q(&[
            ("device", "d"),
            ("from", "2024-11-03T14:30:00Z"),
            ("to", "1730644210000"),
        ])
        .unwrap();
        assert_eq!(a.from_ms, Some(1_730_644_200_000));
        assert_eq!(a.to_ms, Some(1_730_644_210_000));
        assert_eq!(a.limit, DEFAULT_LIMIT);
        let off = q(&[("device", "d"), ("from", "2024-11-03T15:30:00+01:00")]).unwrap();
        assert_eq!(off.from_ms, Some(1_730_644_200_000));
    }

    #[test]
    fn history_mistakes_name_the_parameter() {
        for (pairs, needle) in [
            (vec![], "`device` is required"),
            (vec![("device", "d"), ("key", "d")], "either `device` or `key`"),
            (vec![("key", "a"), ("key", "")], "a `key` is empty"),
            (vec![("device", "")], "`device` is empty"),
            (vec![("device", "d"), ("form", "1")], "unknown parameter `form`"),
            (vec![("device", "d"), ("device", "e")], "more than once"),
            (vec![("device", "d"), ("from", "yesterday")], "`from` must be RFC 3339"),
            (vec![("device", "d"), ("from", "5"), ("to", "5")], "before `to`"),
            (vec![("device", "d"), ("limit", "0")], "`limit`"),
        ] {
            let err = q(&pairs).unwrap_err();
            assert!(err.contains(needle), "{err} should contain {needle}");
        }
        let long = "x".repeat(65);
        assert!(q(&[("device", long.as_str())]).unwrap_err().contains("64 bytes"));
        let two = q(&[("key", "site-a"), ("from", "5"), ("key", "s-1")]).unwrap();
        assert_eq!(
            (two.key, two.from_ms),
            (vec!["site-a".to_string(), "s-1".to_string()], Some(5))
        );
        assert_eq!(q(&[("device", "d")]).unwrap().key, ["d"]);
    }
}
