//! The routes over the output of a query that is not the seed's (the output contract's example of plant
//! sensors, `support::sensors`), in process through `warp::test`: with one key (`sensor_id`) and with two
//! (`site, sensor_id`), the summary states the query and its columns, the groups are labelled, paged, filtered,
//! sorted and counted by the query's own columns, one group's records are found by label or by key, the history
//! is read from the first key's folder (only the rows of the group's other keys) with its columns, and the
//! Prometheus text carries the pipeline's counters as for any document.

mod support;

use std::collections::BTreeMap;

use model::LatestDoc;
use model::output::OutputSchema;
use model::value::Value;
use serde_json::{Value as Json, json};
use support::sensors::{self, Keys, Sensor};
use support::site::{Reply, Site};

/// Every byte but the unreserved ones percent-encoded, as a browser's `encodeURIComponent` does.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The routes over the `latest.json` of `n` groups of the example query, with a history written by `history`.
fn query_site(
    name: &str,
    keys: Keys,
    n: usize,
    history: impl FnOnce(&std::path::Path, &[Sensor]),
) -> (Site, LatestDoc, Vec<Sensor>) {
    let groups = sensors::sensors(n, keys);
    let doc = sensors::latest_doc(keys, &groups, model::time::now_ms());
    let site = Site::new(name, |data| {
        support::write_doc(&data.join(model::latest::FILE_NAME), &doc);
        history(&data.join(model::history::PARQUET_DIR), &groups);
    });
    (site, doc, groups)
}

/// The newest record of every group, by label (the later start; a final record wins a tie).
fn newest(doc: &LatestDoc) -> BTreeMap<String, Json> {
    let schema = doc.schema();
    let mut m: BTreeMap<String, &model::latest::Record> = BTreeMap::new();
    for r in &doc.records {
        let label = r.label(&schema);
        match m.get(&label) {
            Some(cur) if cur.window_start_ms() > r.window_start_ms() => {}
            Some(cur) if cur.window_start_ms() == r.window_start_ms() && cur.is_final() => {}
            _ => {
                m.insert(label, r);
            }
        }
    }
    m.into_iter()
        .map(|(k, r)| (k, Json::Object(r.fields().clone())))
        .collect()
}

fn labels(body: &Json) -> Vec<String> {
    body["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

fn ok(r: &Reply) -> Json {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn a_query_of_one_key_is_summarised_and_its_groups_paged_sorted_and_counted_by_its_columns() {
    let (d, doc, groups) = query_site("one-key", Keys::Sensor, 30, |_, _| {});
    let schema = sensors::schema(Keys::Sensor);
    let written = std::fs::read(d.latest()).unwrap();
    assert_eq!(
        d.get("/metrics").await.body,
        written,
        "/metrics is the document as written"
    );

    let s = ok(&d.get("/api/summary").await)["summary"].clone();
    assert_eq!(s["query"], json!({"sql": sensors::sql(Keys::Sensor), "builtin": false}));
    assert_eq!(s["builtin"], false);
    assert_eq!(s["columns"], serde_json::to_value(&schema).unwrap());
    assert_eq!(s["fleet"]["unavailable"], sensors::FLEET_UNAVAILABLE);
    let newest = newest(&doc);
    let live = newest.values().filter(|r| r["final"] == false).count();
    assert_eq!(
        (s["devices"].as_u64(), s["live"].as_u64()),
        (Some(30), Some(live as u64))
    );

    // By key: every group, labelled by its sensor id, each row its newest record as written.
    let page = ok(&d.get("/api/devices").await);
    assert_eq!(labels(&page), newest.keys().cloned().collect::<Vec<_>>());
    for (label, row) in labels(&page).iter().zip(page["rows"].as_array().unwrap()) {
        assert_eq!(row, &newest[label], "{label}");
    }
    let h = &page["histogram"];
    assert_eq!(
        (&h["metric"], &h["count"]),
        (&json!("column:n"), &json!(30)),
        "the first numeric column"
    );

    // By a nullable DOUBLE column, highest first, groups without a value last; and its reverse.
    let value = |label: &str| newest[label]["avg_pressure"].as_f64();
    let mut by_pressure: Vec<String> = newest.keys().cloned().collect();
    by_pressure.sort_by(|a, b| match (value(a), value(b)) {
        (Some(x), Some(y)) => y.total_cmp(&x).then(a.cmp(b)),
        (x, y) => y.is_some().cmp(&x.is_some()).then(a.cmp(b)),
    });
    assert!(
        value(by_pressure.last().unwrap()).is_none(),
        "the fixture has a group without a pressure"
    );
    let sorted = ok(&d.get("/api/devices?sort=column:avg_pressure&limit=10").await);
    assert_eq!(labels(&sorted), by_pressure[..10]);
    assert_eq!(sorted["histogram"]["metric"], "column:avg_pressure");
    let bottom = ok(&d
        .get("/api/devices?sort=column:avg_pressure&reverse=true&limit=3")
        .await);
    let with_value: Vec<&String> = by_pressure.iter().filter(|l| value(l).is_some()).collect();
    let mut lowest: Vec<f64> = with_value.iter().map(|l| value(l).unwrap()).collect();
    lowest.sort_by(f64::total_cmp);
    let got: Vec<f64> = labels(&bottom).iter().map(|l| value(l).unwrap()).collect();
    assert_eq!(got, lowest[..3]);

    // The histogram of another column while sorted by key; the filter on the label, any case.
    let co2 = ok(&d.get("/api/devices?metric=column:max_co2").await);
    let missing = newest.values().filter(|r| r["max_co2"].is_null()).count();
    assert_eq!(
        (co2["histogram"]["count"].as_u64(), co2["histogram"]["missing"].as_u64()),
        (Some((30 - missing) as u64), Some(missing as u64))
    );
    assert_eq!(
        labels(&co2),
        labels(&page),
        "the histogram's metric does not change the order"
    );
    let filtered = ok(&d.get("/api/devices?filter=S-01").await);
    let want: Vec<String> = newest.keys().filter(|l| l.contains("s-01")).cloned().collect();
    assert_eq!((labels(&filtered), filtered["matched"].as_u64()), (want, Some(10)));

    // One group by label or by key: its records, no `device_id` (the key is not one).
    let path_like = &groups[2].sensor_id;
    let by_id = ok(&d.get(&format!("/api/device?id={}", encode(path_like))).await);
    let by_key = ok(&d.get(&format!("/api/device?key={}", encode(path_like))).await);
    assert_eq!(by_id, by_key);
    assert_eq!(
        (&by_id["label"], &by_id["key"]),
        (&json!(path_like), &json!([path_like]))
    );
    assert!(by_id.get("device_id").is_none(), "{by_id}");
    let records: Vec<&model::latest::Record> = doc
        .records
        .iter()
        .filter(|r| r.text("sensor_id") == Some(path_like))
        .collect();
    assert_eq!(by_id["records"], serde_json::to_value(&records).unwrap());
    let unknown = ok(&d.get("/api/device?id=nobody").await);
    assert_eq!((&unknown["key"], &unknown["records"]), (&Json::Null, &json!([])));

    let health = ok(&d.get("/api/health").await);
    assert_eq!(health["devices"], 30);
    let prom = d.get("/metrics/prometheus").await.text();
    for line in [
        "iot_pipeline_devices 30\n",
        "iot_pipeline_events_total 98765\n",
        "iot_fleet_devices 0\n",
        "iot_pipeline_window_info{kind=\"tumbling\",size_ms=\"10000\"} 1\n",
    ] {
        assert!(prom.contains(line), "{line} in {prom}");
    }

    // A record without its key does not fit the columns: the last good document stays, the problem stated.
    let mut broken: Json = serde_json::from_slice(&written).unwrap();
    broken["records"][0].as_object_mut().unwrap().remove("sensor_id");
    support::write_atomically(&d.latest(), broken.to_string().as_bytes());
    let r = d.get("/api/summary").await;
    assert_eq!(r.status, 200);
    let error = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("record 0") && error.contains("no value for the key `sensor_id`"),
        "{error}"
    );
    assert_eq!(r.json()["summary"], s, "the last good summary");
}

/// The history of the sensor `groups[i]`: 12 windows in two files, the newer one keeping the first key column
/// as well, with the rows of another sensor that the folder's key must leave out.
fn one_key_history(root: &std::path::Path, groups: &[Sensor]) {
    let schema = sensors::schema(Keys::Sensor);
    let now = model::time::now_ms();
    for s in groups.iter().take(4) {
        let rows = sensors::history_rows(Keys::Sensor, s, now, 12);
        sensors::write_history_file(root, &schema, &rows[..6], &support::part(1).file_name(), false);
        let mut newer = rows[6..].to_vec();
        let mut stranger = newer[0].clone();
        stranger[0] = Value::Text("someone-else".into());
        newer.insert(2, stranger);
        sensors::write_history_file(root, &schema, &newer, &support::part(2).file_name(), true);
    }
}

fn history_json(schema: &OutputSchema, rows: &[Vec<Value>]) -> Json {
    Json::Array(rows.iter().map(|r| sensors::history_json(schema, r)).collect())
}

#[tokio::test]
async fn a_query_of_one_key_answers_the_history_of_the_first_keys_folder_with_its_columns() {
    let (d, _, groups) = query_site("one-key-history", Keys::Sensor, 6, one_key_history);
    let schema = sensors::schema(Keys::Sensor);
    let now = model::time::now_ms();
    let path_like = &groups[2];
    let rows = sensors::history_rows(Keys::Sensor, path_like, now, 12);
    assert!(
        rows.iter().any(|r| r[4].is_null()) || rows.iter().any(|r| r[5].is_null()),
        "the history holds nulls"
    );
    let target = format!("/api/history?key={}", encode(&path_like.sensor_id));
    let body = ok(&d.get(&target).await);
    assert_eq!(body["rows"], history_json(&schema, &rows));
    assert_eq!((&body["count"], &body["truncated"]), (&json!(12), &json!(false)));
    assert_eq!(
        (&body["label"], &body["key"]),
        (&json!(path_like.sensor_id), &json!([path_like.sensor_id]))
    );
    assert_eq!(
        body["columns"],
        serde_json::to_value(schema.columns()).unwrap(),
        "every column of the query"
    );
    assert!(body.get("device_id").is_none());
    assert_eq!(body["errors"], json!([]));
    let device = ok(&d
        .get(&format!("/api/history?device={}", encode(&path_like.sensor_id)))
        .await);
    assert_eq!(device["rows"], body["rows"], "`device` names the one key too");

    let newest = ok(&d.get(&format!("{target}&limit=5")).await);
    assert_eq!(
        (newest["rows"].clone(), &newest["truncated"]),
        (history_json(&schema, &rows[7..]), &json!(true))
    );
    let at = |k: usize| match rows[k][1] {
        Value::Timestamp(ms) => ms,
        _ => unreachable!(),
    };
    let range = ok(&d.get(&format!("{target}&from={}&to={}", at(3) + 1, at(8))).await);
    assert_eq!(range["rows"], history_json(&schema, &rows[3..8]));

    let none = ok(&d.get("/api/history?key=never-seen").await);
    assert_eq!((&none["rows"], &none["count"]), (&json!([]), &json!(0)));
    assert_eq!(
        d.get("/api/history?key=a&key=b").await.status,
        400,
        "one key, two texts"
    );
}

/// Histories of the two-key groups: a site's folder holds the rows of all its sensors, in the same files.
fn two_key_history(root: &std::path::Path, groups: &[Sensor]) {
    let schema = sensors::schema(Keys::SiteAndSensor);
    let now = model::time::now_ms();
    for site in ["site-a", "site-b"] {
        let mine: Vec<&Sensor> = groups.iter().filter(|g| g.site == site).collect();
        let per: Vec<Vec<Vec<Value>>> = mine
            .iter()
            .map(|s| sensors::history_rows(Keys::SiteAndSensor, s, now, 8))
            .collect();
        for (file, windows) in [(1, 0..4), (2, 4..8)] {
            let rows: Vec<Vec<Value>> = windows.flat_map(|w| per.iter().map(move |p| p[w].clone())).collect();
            sensors::write_history_file(root, &schema, &rows, &support::part(file).file_name(), false);
        }
    }
}

#[tokio::test]
async fn a_query_of_two_keys_labels_its_groups_by_both_and_keeps_the_other_keys_rows_of_a_folder() {
    let (d, doc, groups) = query_site("two-keys", Keys::SiteAndSensor, 8, two_key_history);
    let schema = sensors::schema(Keys::SiteAndSensor);
    let page = ok(&d.get("/api/devices").await);
    assert_eq!(
        labels(&page),
        [
            "site-a / s-000",
            "site-a / s-001",
            "site-a / s-002",
            "site-a / s-003",
            "site-b / s-000",
            "site-b / s-001",
            "site-b / s-002",
            "site-b / s-003"
        ],
        "by key: site, then sensor"
    );
    let newest = newest(&doc);
    assert_eq!(page["rows"][5], newest["site-b / s-001"]);

    let by_key = ok(&d.get("/api/device?key=site-b&key=s-001").await);
    let by_label = ok(&d.get(&format!("/api/device?id={}", encode("site-b / s-001"))).await);
    assert_eq!(by_key, by_label);
    assert_eq!(
        (&by_key["label"], &by_key["key"]),
        (&json!("site-b / s-001"), &json!(["site-b", "s-001"]))
    );
    assert!(!by_key["records"].as_array().unwrap().is_empty());
    assert_eq!(d.get("/api/device?id=x&key=y").await.status, 400);

    let sensor = groups
        .iter()
        .find(|g| g.site == "site-a" && g.sensor_id == "s-001")
        .unwrap();
    let rows = sensors::history_rows(Keys::SiteAndSensor, sensor, model::time::now_ms(), 8);
    let body = ok(&d.get("/api/history?key=site-a&key=s-001").await);
    assert_eq!(
        body["rows"],
        history_json(&schema, &rows),
        "only s-001's rows of the site-a folder"
    );
    assert_eq!(body["label"], "site-a / s-001");
    let names: Vec<&str> = body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "site",
            "sensor_id",
            "window_start",
            "window_end",
            "n",
            "avg_pressure",
            "max_co2",
            "vibration_sd"
        ]
    );
    let limited = ok(&d.get("/api/history?key=site-a&key=s-001&limit=3").await);
    assert_eq!(limited["rows"], history_json(&schema, &rows[5..]));

    for target in ["/api/history?key=site-a", "/api/history?device=site-a"] {
        let r = d.get(target).await;
        assert_eq!(r.status, 400, "{target}");
        let error = r.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains("2 key(s) (site, sensor_id)"), "{target}: {error}");
    }
    let m = d.get("/metrics/prometheus").await.text();
    assert!(m.contains("iot_pipeline_devices 8\n"), "{m}");
}

/// The output of a query grouped by a column of a temporally joined table (`GROUP BY d.site`): a nullable key.
fn by_site_schema() -> OutputSchema {
    use model::output::{OutputColumn, Role};
    use model::value::DataType;
    let col = |name: &str, ty, role, nullable| OutputColumn {
        name: name.into(),
        ty,
        role,
        nullable,
    };
    OutputSchema::new(vec![
        col("site", DataType::Text, Role::Key, true),
        col("window_start", DataType::Timestamp, Role::Window, false),
        col("window_end", DataType::Timestamp, Role::Window, false),
        col("n", DataType::BigInt, Role::Value, false),
    ])
    .unwrap()
}

#[tokio::test]
async fn a_group_whose_joined_key_is_null_is_labelled_null_and_answers_its_history() {
    let schema = by_site_schema();
    let now = model::time::now_ms();
    let start = (now - now % 10_000 - 30_000) as i64;
    let row = |site: Option<&str>, k: i64, n: i64| {
        vec![
            site.map_or(Value::Null, |s| Value::Text(s.into())),
            Value::Timestamp(start + k * 10_000),
            Value::Timestamp(start + (k + 1) * 10_000),
            Value::Int(n),
        ]
    };
    let record = |site: Json, n: i64| {
        json!({"site": site, "window_start": model::time::rfc3339_ms(start as u64),
               "window_end": model::time::rfc3339_ms(start as u64 + 10_000), "n": n, "final": true})
    };
    let doc = json!({
        "updated_at": now / 1000,
        "columns": serde_json::to_value(schema.columns()).unwrap(),
        "records": [record(json!("lab"), 5), record(Json::Null, 3)],
        "fleet": {"devices": 0, "locations": [], "alerts": [], "unavailable": "no fleet columns"},
    });
    let d = Site::new("null-key", |data| {
        std::fs::write(data.join(model::latest::FILE_NAME), serde_json::to_vec(&doc).unwrap()).unwrap();
        let parquet = data.join(model::history::PARQUET_DIR);
        let null_rows = [row(None, 0, 3), row(None, 1, 4)];
        let lab_rows = [row(Some("lab"), 0, 5)];
        let file = support::part(1).file_name();
        let folder = sensors::write_history_file(&parquet, &schema, &null_rows, &file, false);
        assert!(
            folder.to_string_lossy().contains("site=__HIVE_DEFAULT_PARTITION__"),
            "{}",
            folder.display()
        );
        sensors::write_history_file(&parquet, &schema, &lab_rows, &file, false);
    });
    let groups = ok(&d.get("/api/devices").await);
    let mut got = labels(&groups);
    got.sort();
    assert_eq!(got, ["NULL", "lab"]);
    let history = ok(&d.get("/api/history?key=NULL").await);
    let sites: Vec<&Json> = history["rows"].as_array().unwrap().iter().map(|r| &r["site"]).collect();
    assert_eq!(
        sites,
        [&Json::Null, &Json::Null],
        "the NULL group's windows, its key null"
    );
    assert_eq!(history["count"], json!(2));
    let lab = ok(&d.get("/api/history?key=lab").await);
    assert_eq!(lab["count"], json!(1));
}
