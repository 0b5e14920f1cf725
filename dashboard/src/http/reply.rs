//! The pieces every reply is made of: JSON bodies and errors, gzip for clients that accept it, the header that
//! says a reply is degraded, and the reply of a route that answers from the current `latest.json` (the last
//! good document with its problem in a header, or 503 before any good document was read).

use std::path::Path;

use serde::Serialize;
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use warp::http::{Response, StatusCode};
use warp::reply::Reply;

use crate::snapshot::latest::{Snapshot, View};

/// Header carrying the reason a reply is degraded (last good data served, files skipped).
pub const ERROR_HEADER: &str = "x-dashboard-error";

/// Replies smaller than this go out as they are: compressing them saves nothing worth the time.
const GZIP_ABOVE: usize = 1024;

/// Whether an `Accept-Encoding` header accepts gzip (named, or `*`, without `q=0`).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|header| {
        header.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
    })
}

/// A reply with `body`, gzip-compressed (fastest level: JSON shrinks about tenfold at a few ms per megabyte) when
/// the client accepts it and the body is large enough; `Vary: Accept-Encoding` either way, so caches keep both.
pub fn compressible(body: Vec<u8>, accept_encoding: Option<&str>) -> warp::reply::Response {
    use std::io::Write;
    let gzipped = (body.len() > GZIP_ABOVE && accepts_gzip(accept_encoding))
        .then(|| {
            let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 8), flate2::Compression::fast());
            gz.write_all(&body).and_then(|()| gz.finish()).ok()
        })
        .flatten();
    let compressed = gzipped.is_some();
    let mut r = Response::new(gzipped.unwrap_or(body).into());
    let h = r.headers_mut();
    h.insert("vary", HeaderValue::from_static("accept-encoding"));
    if compressed {
        h.insert("content-encoding", HeaderValue::from_static("gzip"));
    }
    r
}

/// `body` as JSON with `status`, never cached (the document changes every trigger).
pub fn json_reply<T: Serialize>(status: StatusCode, body: &T) -> warp::reply::Response {
    let mut reply = warp::reply::with_status(warp::reply::json(body), status).into_response();
    reply
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    reply
}

/// An error reply: `{"error": message}` with `status`.
pub fn error_reply(status: StatusCode, message: &str) -> warp::reply::Response {
    json_reply(status, &serde_json::json!({ "error": message }))
}

/// A header value from free text: characters a header cannot hold become `?`, and it stays short.
pub fn header_text(text: &str) -> HeaderValue {
    let clean: String = text
        .chars()
        .take(512)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("unreadable"))
}

/// The reply of a route that answers from the current document: `body` of the last good snapshot as JSON
/// (gzip when accepted, with the current problem in [`ERROR_HEADER`]), or 503 with `{"error", "file"}` and
/// `Retry-After: 2` when no good document was ever read from `file`.
pub fn document_reply(
    view: &View,
    file: &Path,
    accept_encoding: Option<&str>,
    body: impl FnOnce(&Snapshot) -> Vec<u8>,
) -> warp::reply::Response {
    match (&view.snapshot, &view.error) {
        (Some(snapshot), error) => {
            let mut r = compressible(body(snapshot), accept_encoding);
            let h = r.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Some(error) = error {
                h.insert(
                    ERROR_HEADER,
                    header_text(&format!("{error}; serving the last good document")),
                );
            }
            r
        }
        (None, error) => {
            let message = error
                .clone()
                .unwrap_or_else(|| "latest.json has not been read yet".into());
            let mut r = json_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({
                    "error": message,
                    "file": file.display().to_string(),
                }),
            );
            r.headers_mut().insert("retry-after", HeaderValue::from_static("2"));
            r.headers_mut().insert(ERROR_HEADER, header_text(&message));
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_keeps_only_what_a_header_can_hold() {
        let v = header_text("bad \u{1F525}\nfile");
        assert_eq!(v.to_str().unwrap(), "bad ??file");
    }
}
