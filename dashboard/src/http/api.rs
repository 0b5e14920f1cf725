//! The page's JSON view of the current document at fleet scale, so that it never needs the whole `latest.json`:
//! `GET /api/summary` (what the pushes carry, for a page that polls), `GET /api/devices` (one page of newest
//! windows, filtered and sorted, with the histogram of the metric over every matching device) and
//! `GET /api/device?id=ID` (every record of one device). All answer from the last good document, like `/metrics`.

use std::path::Path;

use serde_json::json;

use super::reply::document_reply;
use crate::snapshot::devices::DeviceQuery;
use crate::snapshot::latest::View;

/// `GET /api/summary`: `{"generation", "error", "summary"}` (see [`crate::snapshot::changes::summary`]).
pub fn summary_reply(view: &View, file: &Path, accept_encoding: Option<&str>) -> warp::reply::Response {
    document_reply(view, file, accept_encoding, |s| {
        serde_json::to_vec(&json!({
            "generation": view.generation,
            "error": view.error,
            "summary": s.summary,
        }))
        .expect("a JSON value serialises")
    })
}

/// `GET /api/devices?filter=&sort=&reverse=&offset=&limit=`: `{"generation", "total", "matched", "offset",
/// "limit", "rows", "histogram"}`; a bad parameter is an `Err` with the message (a 400).
pub fn devices_reply(
    view: &View,
    file: &Path,
    params: Vec<(String, String)>,
    accept_encoding: Option<&str>,
) -> Result<warp::reply::Response, String> {
    let query = DeviceQuery::from_params(params)?;
    Ok(document_reply(view, file, accept_encoding, |s| {
        let mut body = serde_json::to_value(s.devices.query(&query)).expect("a page serialises");
        body["generation"] = json!(view.generation);
        serde_json::to_vec(&body).expect("a JSON value serialises")
    }))
}

/// `GET /api/device?id=ID`: `{"generation", "device_id", "records"}`, the device's records in `latest.json`
/// (its newest and its last final window; none for a device the document does not hold).
pub fn device_reply(
    view: &View,
    file: &Path,
    params: Vec<(String, String)>,
    accept_encoding: Option<&str>,
) -> Result<warp::reply::Response, String> {
    let mut id = None;
    for (k, v) in params {
        match k.as_str() {
            "id" if id.is_none() => id = Some(v),
            "id" => return Err("parameter `id` is given more than once".into()),
            _ => return Err(format!("unknown parameter `{k}`; accepted: id")),
        }
    }
    let id = id.ok_or("parameter `id` is required, e.g. /api/device?id=device-abc123")?;
    Ok(document_reply(view, file, accept_encoding, |s| {
        let records = s.devices.get(&id).map_or("[]", |d| d.records_json.as_str());
        // The device's records are kept as JSON text: spliced in, not parsed and written again.
        format!(
            "{{\"generation\":{},\"device_id\":{},\"records\":{records}}}",
            view.generation,
            serde_json::to_string(&id).expect("a string serialises")
        )
        .into_bytes()
    }))
}
