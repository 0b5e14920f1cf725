//! The page's JSON view of the current document at fleet scale, so that it never needs the whole `latest.json`:
//! `GET /api/summary` (what the pushes carry, for a page that polls), `GET /api/devices` (one page of newest
//! windows of the groups, filtered and sorted, with the histogram of a metric over every matching group) and
//! `GET /api/device?id=LABEL` or `?key=K1&key=K2` (every record of one group). All answer from the last good
//! document, like `/metrics`.

use std::path::Path;

use serde_json::json;

use super::reply::document_reply;
use crate::snapshot::devices::GroupQuery;
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

/// `GET /api/devices?filter=&sort=&reverse=&offset=&limit=&metric=`: `{"generation", "total", "matched",
/// "offset", "limit", "rows", "labels", "histogram"}`; a bad parameter is an `Err` with the message (a 400).
pub fn devices_reply(
    view: &View,
    file: &Path,
    params: Vec<(String, String)>,
    accept_encoding: Option<&str>,
) -> Result<warp::reply::Response, String> {
    let query = GroupQuery::from_params(params)?;
    Ok(document_reply(view, file, accept_encoding, |s| {
        let mut body = serde_json::to_value(s.groups.query(&query)).expect("a page serialises");
        body["generation"] = json!(view.generation);
        serde_json::to_vec(&body).expect("a JSON value serialises")
    }))
}

/// Which group `/api/device` is asked for.
enum Asked {
    /// By label (`id`): for the built-in job, the device id.
    Label(String),
    /// By the texts of its key values, in key order (`key`, once per key).
    Key(Vec<String>),
}

/// `GET /api/device?id=LABEL` or `?key=K1[&key=K2…]`: `{"generation", "label", "key", "records"}` (plus
/// `device_id`, the label, when the only key is `device_id`), the group's records in `latest.json` (its newest
/// and its last final window; none, and `key` null, for a group the document does not hold).
pub fn device_reply(
    view: &View,
    file: &Path,
    params: Vec<(String, String)>,
    accept_encoding: Option<&str>,
) -> Result<warp::reply::Response, String> {
    let mut id = None;
    let mut key = Vec::new();
    for (k, v) in params {
        match k.as_str() {
            "id" if id.is_none() => id = Some(v),
            "id" => return Err("parameter `id` is given more than once".into()),
            "key" => key.push(v),
            _ => return Err(format!("unknown parameter `{k}`; accepted: id, key")),
        }
    }
    let asked = match (id, key.is_empty()) {
        (Some(id), true) => Asked::Label(id),
        (None, false) => Asked::Key(key),
        (Some(_), false) => return Err("give either `id` (the label) or `key` (once per key), not both".into()),
        (None, true) => {
            return Err(
                "parameter `id` is required, e.g. /api/device?id=device-abc123 (or `key`, once per key)".into(),
            );
        }
    };
    Ok(document_reply(view, file, accept_encoding, |s| {
        let group = match &asked {
            Asked::Label(label) => s.groups.get(label),
            Asked::Key(texts) => s.groups.get_by_key(texts),
        };
        let label = match (&asked, group) {
            (_, Some(g)) => g.label.clone(),
            (Asked::Label(label), None) => label.clone(),
            (Asked::Key(texts), None) => model::latest::label_of(texts),
        };
        let label = serde_json::to_string(&label).expect("a string serialises");
        let key = serde_json::to_string(&group.map(|g| &g.key_texts)).expect("strings serialise");
        let records = group.map_or("[]", |g| g.records_json.as_str());
        let device_id = if s.groups.device_keyed() {
            format!("\"device_id\":{label},")
        } else {
            String::new()
        };
        // The group's records are kept as JSON text: spliced in, not parsed and written again.
        format!(
            "{{\"generation\":{},\"label\":{label},\"key\":{key},{device_id}\"records\":{records}}}",
            view.generation
        )
        .into_bytes()
    }))
}
