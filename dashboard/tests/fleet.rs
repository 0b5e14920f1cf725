//! The page's fleet-scale view through the library's routes, in-process (`warp::test`): `/api/devices` answers a
//! sorted, filtered page of newest windows with the histogram of the metric, `/api/device` one device's records,
//! `/api/summary` everything but the records (the alert list cut short); each from the last good document, gzip
//! for clients that accept it, 503 before any document, 400 naming a bad parameter.

mod support;

use std::collections::BTreeMap;
use std::fs;

use model::AggregateRecord;
use model::latest::SeedDoc;
use serde_json::Value;
use support::site::{Site, gunzip};
use support::write_doc;

/// A document of `n` devices (`device-0000`, …; every second one live) and the routes over it.
fn fleet_site(name: &str, n: usize) -> (Site, SeedDoc) {
    let ids: Vec<String> = (0..n).map(|i| format!("device-{i:04}")).collect();
    let doc = support::latest_doc(&ids, model::time::now_ms(), true);
    let site = Site::new(name, |data| {
        write_doc(&data.join(model::latest::FILE_NAME), &doc);
    });
    (site, doc)
}

/// The newest record of every device of `doc`, by id (the rule of the page: later start, final wins a tie).
fn newest(doc: &SeedDoc) -> BTreeMap<&str, &AggregateRecord> {
    let mut m: BTreeMap<&str, &AggregateRecord> = BTreeMap::new();
    for r in &doc.records {
        match m.get(r.device_id.as_str()) {
            Some(cur) if cur.window_start > r.window_start || (cur.window_start == r.window_start && cur.is_final) => {}
            _ => {
                m.insert(&r.device_id, r);
            }
        }
    }
    m
}

fn row_ids(body: &Value) -> Vec<String> {
    body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["device_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn devices_answer_one_sorted_page_and_the_histogram_of_every_device() {
    let (d, doc) = fleet_site("devices-page", 1000);
    let newest = newest(&doc);
    let mut hottest: Vec<&AggregateRecord> = newest.values().copied().collect();
    hottest.sort_by(|a, b| {
        b.avg_temperature
            .total_cmp(&a.avg_temperature)
            .then(a.device_id.cmp(&b.device_id))
    });
    let hottest: Vec<String> = hottest.iter().map(|r| r.device_id.clone()).collect();

    let r = d.get("/api/devices?sort=temperature&limit=50").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(
        (body["total"].as_u64(), body["matched"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(row_ids(&body), hottest[..50], "the 50 hottest devices, hottest first");
    let first = &body["rows"][0];
    let want = newest[hottest[0].as_str()];
    assert_eq!(first["avg_temperature"], want.avg_temperature);
    assert_eq!(
        first["heat_index"], want.udf["heat_index"],
        "UDF columns travel with the rows"
    );
    let h = &body["histogram"];
    assert_eq!(h["metric"], "temperature");
    let counted: u64 = h["bins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        (counted, h["count"].as_u64(), h["missing"].as_u64()),
        (1000, Some(1000), Some(0))
    );
    assert_eq!(h["max"], want.avg_temperature);

    // The bottom of the list, and the next page.
    let coolest = d
        .get("/api/devices?sort=temperature&reverse=true&limit=10")
        .await
        .json();
    let mut bottom = hottest.clone();
    bottom.reverse();
    // Reversed order keeps ties by id ascending, so compare the values, not the tie order.
    let temps = |b: &Value| -> Vec<f64> {
        b["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["avg_temperature"].as_f64().unwrap())
            .collect()
    };
    let want_cool: Vec<f64> = bottom[..10]
        .iter()
        .map(|id| newest[id.as_str()].avg_temperature)
        .collect();
    assert_eq!(temps(&coolest), want_cool);
    let next = d.get("/api/devices?sort=temperature&offset=50&limit=50").await.json();
    assert_eq!(row_ids(&next), hottest[50..100]);

    // The filter: a substring of the id, any case; the histogram counts the matching devices only.
    let filtered = d.get("/api/devices?filter=DEVICE-00&sort=id").await.json();
    let want: Vec<String> = newest
        .keys()
        .filter(|id| id.contains("device-00"))
        .map(|s| s.to_string())
        .collect();
    assert_eq!(row_ids(&filtered), want);
    assert_eq!(filtered["matched"], 100);
    assert_eq!(filtered["histogram"]["count"], 100);

    // Sorted by a UDF column, its histogram.
    let udf = d.get("/api/devices?sort=udf:heat_index&limit=1").await.json();
    assert_eq!(udf["histogram"]["metric"], "udf:heat_index");
}

#[tokio::test]
async fn a_device_answers_its_records_and_pages_are_gzipped_when_accepted() {
    let ids = support::SAMPLE_IDS.map(String::from);
    let doc = support::latest_doc(&ids, model::time::now_ms(), false);
    let d = Site::new("device-records", |data| {
        write_doc(&data.join(model::latest::FILE_NAME), &doc);
    });
    let r = d.get("/api/device?id=..%2F..%2Fetc%2Fpasswd").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["device_id"], "../../etc/passwd");
    let records: Vec<AggregateRecord> = serde_json::from_value(body["records"].clone()).unwrap();
    let want: Vec<&AggregateRecord> = doc
        .records
        .iter()
        .filter(|r| r.device_id == "../../etc/passwd")
        .collect();
    assert_eq!(records.len(), want.len());
    for (got, want) in records.iter().zip(want) {
        assert_eq!(
            (got.window_start.as_str(), got.avg_temperature),
            (want.window_start.as_str(), want.avg_temperature)
        );
    }
    let unknown = d.get("/api/device?id=nobody").await;
    assert_eq!(
        (unknown.status, &unknown.json()["records"]),
        (200, &Value::from(Vec::<Value>::new()))
    );

    let (big, _) = fleet_site("devices-gzip", 300);
    let plain = big.get("/api/devices").await;
    let zipped = big
        .send(
            warp::test::request()
                .path("/api/devices")
                .header("accept-encoding", "gzip"),
        )
        .await;
    assert_eq!(
        (plain.header("content-encoding"), zipped.header("content-encoding")),
        (None, Some("gzip"))
    );
    assert!(
        zipped.body.len() < plain.body.len() / 3,
        "{} of {}",
        zipped.body.len(),
        plain.body.len()
    );
    assert_eq!(gunzip(&zipped.body), plain.body);
}

#[tokio::test]
async fn the_summary_holds_everything_but_the_records() {
    let (d, doc) = fleet_site("summary", 400);
    let r = d.get("/api/summary").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert!(body["error"].is_null());
    let s = &body["summary"];
    assert!(s.get("records").is_none());
    assert_eq!(s["devices"], 400);
    assert_eq!(s["live"], newest(&doc).values().filter(|r| !r.is_final).count());
    assert_eq!(s["pipeline"]["events_total"], doc.pipeline.events_total);
    assert_eq!(
        s["fleet"]["locations"].as_array().unwrap().len(),
        doc.fleet.locations.len()
    );
    assert_eq!(s["fleet"]["alerts_total"], doc.fleet.alerts.len());
    assert!(
        doc.fleet.alerts.len() > dashboard::snapshot::changes::ALERTS_SENT,
        "the fixture raises enough alerts"
    );
    assert_eq!(
        s["fleet"]["alerts"].as_array().unwrap().len(),
        dashboard::snapshot::changes::ALERTS_SENT
    );
    assert_eq!(s["udfs"].as_array().unwrap().len(), 3);
    assert!(r.body.len() < 20_000, "{} bytes for 400 devices", r.body.len());

    // A broken file: the last good summary, with the problem stated.
    support::write_atomically(&d.latest(), b"{\"updated_at\": 17");
    let r = d.get("/api/summary").await;
    assert_eq!(r.status, 200);
    assert!(r.json()["error"].as_str().unwrap().contains("truncated"));
    assert!(r.header("x-dashboard-error").unwrap().contains("last good document"));
}

#[tokio::test]
async fn the_seeds_document_is_paged_and_summarised() {
    let seed = r#"{"updated_at": 1730638580.5, "records": [
      {"device_id": "a", "window_start": "2024-11-03T14:30:00", "window_end": "2024-11-03T14:30:10",
       "count": 40, "avg_temperature": 24.52, "avg_humidity": 54.87, "min_battery": 80.1, "max_battery": 85.3},
      {"device_id": "b", "window_start": "2024-11-03 14:30:00", "window_end": "2024-11-03 14:30:10",
       "count": 38, "avg_temperature": 21.0, "avg_humidity": 60.0, "min_battery": 70.0, "max_battery": 71.5}]}"#;
    let d = Site::new("seed-pages", |data| {
        fs::write(data.join(model::latest::FILE_NAME), seed).unwrap()
    });
    let body = d.get("/api/devices?sort=battery").await.json();
    assert_eq!(row_ids(&body), ["b", "a"], "lowest battery first");
    assert!(
        body["rows"][0]["stddev_temperature"].is_null(),
        "no stddev in the seed's records"
    );
    let s = d.get("/api/summary").await.json();
    assert!(
        s["summary"]["pipeline"].is_null(),
        "no pipeline section: nothing made up"
    );
    assert_eq!(
        (&s["summary"]["devices"], &s["summary"]["live"]),
        (&Value::from(2), &Value::from(2))
    );
}

#[tokio::test]
async fn without_a_document_or_with_a_bad_parameter_the_answer_says_why() {
    let d = Site::new("no-document", |_| {});
    for target in ["/api/summary", "/api/devices", "/api/device?id=a"] {
        let r = d.get(target).await;
        assert_eq!((r.status, r.header("retry-after")), (503, Some("2")), "{target}");
        assert!(
            r.json()["error"].as_str().unwrap().contains("does not exist"),
            "{target}"
        );
    }
    let (d, _) = fleet_site("bad-parameters", 3);
    for (target, needle) in [
        ("/api/devices?sort=colour", "`sort` must be"),
        ("/api/devices?limit=100000", "`limit`"),
        ("/api/devices?page=2", "unknown parameter `page`"),
        ("/api/device", "`id` is required"),
        ("/api/device?id=a&id=b", "more than once"),
    ] {
        let r = d.get(target).await;
        assert_eq!(r.status, 400, "{target}");
        assert!(
            r.json()["error"].as_str().unwrap().contains(needle),
            "{target}: {}",
            r.text()
        );
    }
}
