//! The window kind of `latest.json` over HTTP: a session document (sessions of varying lengths) is served as
//! written, and Prometheus states the kind of the served document as `iot_pipeline_window_info`, only when the
//! document states it. Routes are driven in-process through `warp::test`, as in tests/http.rs.

mod support;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dashboard::http::assets::Assets;
use dashboard::{App, routes};
use model::WindowKind;
use model::latest::SeedDoc;
use support::{SESSION_GAP_MS, TempDir, sample_latest, sample_latest_sessions, write_doc};

/// Status and body of `GET target` on the routes over a data folder holding `doc` as `latest.json`.
async fn get(name: &str, doc: &SeedDoc, target: &str) -> (u16, String) {
    let root = TempDir::new(name);
    let data = root.0.join("data");
    fs::create_dir_all(&data).unwrap();
    write_doc(&data.join(model::latest::FILE_NAME), doc);
    let assets = Assets::load(Some(&support::stub_assets(&root.0))).unwrap();
    let (app, _updates) = App::new(Path::new(&data), Duration::from_secs(30), assets);
    let r = warp::test::request().path(target).reply(&routes(Arc::new(app))).await;
    (r.status().as_u16(), String::from_utf8_lossy(r.body()).into_owned())
}

/// The window lengths of `doc`'s records, ms.
fn lengths(doc: &SeedDoc) -> Vec<u64> {
    let ms = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_millis() as u64;
    doc.records
        .iter()
        .map(|r| ms(&r.window_end) - ms(&r.window_start))
        .collect()
}

#[tokio::test]
async fn a_session_document_is_served_with_its_kind_and_sessions_of_varying_lengths() {
    let doc = sample_latest_sessions();
    let (status, body) = get("sessions-metrics", &doc, "/metrics").await;
    assert_eq!(status, 200);
    let served: SeedDoc = serde_json::from_str(&body).unwrap();
    assert_eq!(served.window, Some(WindowKind::Session { gap_ms: SESSION_GAP_MS }));
    let lengths = lengths(&served);
    assert!(lengths.iter().all(|&l| l >= SESSION_GAP_MS), "{lengths:?}");
    let mut distinct = lengths.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 1, "the fixture's sessions all last {lengths:?}");
}

#[tokio::test]
async fn prometheus_states_the_window_kind_of_the_served_document() {
    let (_, sessions) = get("sessions-prometheus", &sample_latest_sessions(), "/metrics/prometheus").await;
    assert!(
        sessions.contains(
            "# TYPE iot_pipeline_window_info gauge\niot_pipeline_window_info{kind=\"session\",gap_ms=\"5000\"} 1\n"
        ),
        "{sessions}"
    );
    let (_, tumbling) = get("tumbling-prometheus", &sample_latest(), "/metrics/prometheus").await;
    assert!(
        tumbling.contains("iot_pipeline_window_info{kind=\"tumbling\",size_ms=\"10000\"} 1\n"),
        "{tumbling}"
    );
    let older = SeedDoc {
        window: None,
        ..sample_latest()
    };
    let (status, older) = get("older-prometheus", &older, "/metrics/prometheus").await;
    assert_eq!(status, 200);
    assert!(older.contains("iot_pipeline_events_total "), "{older}");
    assert!(!older.contains("iot_pipeline_window_info"), "{older}");
}
