//! `/api/history` of the dashboard's routes, in process (see `support::site`): the rows of a device exactly as
//! its Parquet files hold them, whatever its id (path-like, emoji, look-alikes), filtered by time and limit, over
//! many files and across files added, replaced and removed between requests, with UDF columns where written, and
//! the bad requests and corrupt files answered with the fix.

mod support;

use std::fs;
use std::path::Path;

use model::Aggregate;
use model::history::PARQUET_DIR;
use model::partition::partition_dir_name;
use serde_json::Value;
use support::site::{Reply, Site};

const START_MS: u64 = 1_730_644_200_000;
/// A device id that names a file outside the folder if joined unescaped.
const PASSWD: &str = "../../etc/passwd";
const FIRE: &str = "\u{1F525}-sensor";
/// Ids that a naive path join or a naive escaping would confuse with the ones above.
const LOOKALIKES: [&str; 5] = [
    "../../etc",
    "..",
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "\u{1F525}",
    "etc/passwd",
];

fn rows_of(device: &str, from_window: u64, n: u64) -> Vec<Aggregate> {
    (0..n)
        .map(|k| support::aggregate(device, START_MS + (from_window + k) * support::WINDOW_MS))
        .collect()
}

/// The `rows` of a history answer for `n` windows of `device` from window `from_window` on.
fn expected_json(device: &str, from_window: u64, n: u64) -> Value {
    rows_json(&rows_of(device, from_window, n))
}

fn rows_json(rows: &[Aggregate]) -> Value {
    serde_json::to_value(rows.iter().map(|r| r.to_record(true)).collect::<Vec<_>>()).unwrap()
}

/// A history where neighbouring ids would collide without escaping, with files out of order, files with and
/// without the device column, and in-progress files that must stay invisible.
fn write_history(data: &Path) {
    let root = data.join(PARQUET_DIR);
    let write = |device: &str, name: &str, rows: &[Aggregate], with_ids: bool| {
        support::write_partition_file(&root, device, name, rows, with_ids);
    };
    // Newest rows first on disk: the answer must still be sorted by window start.
    write(PASSWD, &support::part(2).file_name(), &rows_of(PASSWD, 5, 5), true);
    write(PASSWD, &support::part(1).file_name(), &rows_of(PASSWD, 0, 5), true);
    let mut uncommitted = rows_of(PASSWD, 10, 2);
    uncommitted.iter_mut().for_each(|r| r.avg_temperature = 99.0);
    write(PASSWD, &support::part(3).in_progress_name(), &uncommitted, true);
    write(PASSWD, "_part-0004.parquet", &uncommitted, true);
    fs::write(root.join(partition_dir_name(PASSWD)).join("_SUCCESS"), "").unwrap();

    write(FIRE, &support::part(1).file_name(), &rows_of(FIRE, 0, 4), false);
    for other in LOOKALIKES {
        write(other, &support::part(1).file_name(), &rows_of(other, 0, 3), false);
    }
    // A decoy outside the parquet folder where `../../etc/passwd` would land if joined unescaped.
    fs::create_dir_all(data.join("etc")).unwrap();
    fs::write(data.join("etc/passwd"), "root:x:0:0").unwrap();
}

async fn history(d: &Site, device: &str, extra: &str) -> Reply {
    let encoded: String = device
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    d.get(&format!("/api/history?device={encoded}{extra}")).await
}

#[tokio::test]
async fn history_returns_exactly_the_rows_of_a_path_like_device() {
    let d = Site::new("history-passwd", write_history);
    let r = history(&d, PASSWD, "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["device_id"], PASSWD);
    assert_eq!(body["rows"], expected_json(PASSWD, 0, 10));
    assert_eq!(body["count"], 10);
    assert_eq!(body["truncated"], false);
    assert_eq!(body["errors"], serde_json::json!([]));
    assert!(!r.text().contains("root:x"));
}

#[tokio::test]
async fn history_returns_exactly_the_rows_of_an_emoji_device_without_a_device_column() {
    let d = Site::new("history-fire", write_history);
    let r = history(&d, FIRE, "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["rows"], expected_json(FIRE, 0, 4));
    for other in LOOKALIKES {
        let r = history(&d, other, "").await;
        assert_eq!(r.json()["rows"], expected_json(other, 0, 3), "{other}");
    }
}

#[tokio::test]
async fn history_filters_by_time_and_keeps_the_newest_under_a_limit() {
    let d = Site::new("history-range", write_history);
    let all = rows_of(PASSWD, 0, 10);
    let at = |k: u64| START_MS + k * support::WINDOW_MS;
    // Windows overlapping [from, to): from inside window 2 up to the start of window 6.
    let r = history(&d, PASSWD, &format!("&from={}&to={}", at(2) + 1, at(6))).await;
    assert_eq!(r.json()["rows"], rows_json(&all[2..6]));
    let rfc = |ms: u64| model::time::rfc3339_ms(ms).replace(':', "%3A");
    let r = history(&d, PASSWD, &format!("&from={}&to={}", rfc(at(3)), rfc(at(5)))).await;
    assert_eq!(r.json()["rows"], rows_json(&all[3..5]));
    let r = history(&d, PASSWD, "&limit=4").await;
    assert_eq!(r.json()["rows"], rows_json(&all[6..]));
    assert_eq!(r.json()["truncated"], true);
}

#[tokio::test]
async fn history_over_many_files_matches_a_full_scan() {
    let dev = "rolled-often";
    let all = rows_of(dev, 0, 60);
    let d = Site::new("history-many", |data| {
        // 20 files of 3 windows, their checkpoints in an order unrelated to time, as rolls of several workers
        // would be.
        for (k, chunk) in all.chunks(3).enumerate() {
            let name = support::part((k as u64 * 7) % 20).file_name();
            support::write_partition_file(&data.join(PARQUET_DIR), dev, &name, chunk, k % 2 == 0);
        }
    });
    let at = |k: u64| START_MS + k * support::WINDOW_MS;
    for (extra, expected, truncated) in [
        (String::new(), &all[..], false),
        ("&limit=7".to_string(), &all[53..], true),
        ("&limit=60".to_string(), &all[..], false),
        (format!("&from={}", at(40)), &all[40..], false),
        (format!("&from={}&to={}", at(10) + 5, at(17)), &all[10..17], false),
        (format!("&to={}&limit=5", at(30)), &all[25..30], true),
        (format!("&from={}&to={}&limit=100", at(58), at(200)), &all[58..], false),
        (format!("&from={}", at(60)), &all[..0], false),
    ] {
        let r = history(&d, dev, &extra).await;
        assert_eq!(r.json()["rows"], rows_json(expected), "{extra}");
        assert_eq!(r.json()["truncated"], truncated, "{extra}");
    }
}

#[tokio::test]
async fn history_follows_files_added_replaced_and_removed_between_requests() {
    let dev = "churned";
    let all = rows_of(dev, 0, 9);
    let root = |d: &Site| d.data.join(PARQUET_DIR);
    let d = Site::new("history-churn", |data| {
        for (k, chunk) in all[..6].chunks(3).enumerate() {
            let name = support::part(k as u64 + 1).file_name();
            support::write_partition_file(&data.join(PARQUET_DIR), dev, &name, chunk, false);
        }
    });
    assert_eq!(history(&d, dev, "").await.json()["rows"], rows_json(&all[..6]));
    assert_eq!(
        history(&d, dev, "").await.json()["rows"],
        rows_json(&all[..6]),
        "answered from the cache"
    );

    // A new file, and an existing one replaced by a rename (as compaction or a restore would): both are read.
    support::write_partition_file(&root(&d), dev, &support::part(3).file_name(), &all[6..], false);
    let mut changed = all[..3].to_vec();
    changed.iter_mut().for_each(|r| r.avg_temperature += 1.0);
    let folder = root(&d).join(partition_dir_name(dev));
    support::write_partition_file(&root(&d), dev, ".replacement.inprogress", &changed, false);
    fs::rename(
        folder.join(".replacement.inprogress"),
        folder.join(support::part(1).file_name()),
    )
    .unwrap();
    let mut expected = changed.clone();
    expected.extend_from_slice(&all[3..]);
    assert_eq!(history(&d, dev, "").await.json()["rows"], rows_json(&expected));

    // A removed file's rows are gone.
    fs::remove_file(folder.join(support::part(2).file_name())).unwrap();
    let mut expected = changed;
    expected.extend_from_slice(&all[6..]);
    assert_eq!(history(&d, dev, "").await.json()["rows"], rows_json(&expected));
    assert_eq!(d.app.history_spans.len(), 2, "only the files listed now are known");
}

#[tokio::test]
async fn history_returns_udf_columns_where_written_and_leaves_them_out_where_a_file_predates_them() {
    let dev = "udf-device";
    let udfs = support::fixture_udfs();
    // The job ran without UDFs for windows 0..4, then with them: one file of each kind, by column name.
    let older = rows_of(dev, 0, 4);
    let newer: Vec<Aggregate> = rows_of(dev, 4, 6).into_iter().map(support::with_udf_values).collect();
    let d = Site::new("history-udf", |data| {
        let root = data.join(PARQUET_DIR);
        support::write_partition_file(&root, dev, &support::part(1).file_name(), &older, false);
        support::write_partition_file_with(&root, dev, &support::part(2).file_name(), &newer, &udfs, true);
    });
    let r = history(&d, dev, "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["errors"], serde_json::json!([]));
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    for row in &rows[..4] {
        for u in &udfs {
            assert!(
                row.get(&u.name).is_none(),
                "{} in a row of the older file: {row}",
                u.name
            );
        }
    }
    let (mut nulls, mut values) = (0, 0);
    for (row, written) in rows[4..].iter().zip(&newer) {
        assert_eq!(row["window_start"], model::time::rfc3339_ms(written.window_start));
        let model::UdfValue::Float(heat) = written.udf["heat_index"] else {
            panic!("a float")
        };
        assert_eq!(row["heat_index"].as_f64(), Some(heat));
        assert!(row["comfort"].is_string(), "{row}");
        match &written.udf["temperature_p90"] {
            model::UdfValue::Null => {
                nulls += 1;
                assert!(row.get("temperature_p90").is_some_and(Value::is_null), "{row}");
            }
            model::UdfValue::Float(p90) => {
                values += 1;
                assert_eq!(row["temperature_p90"].as_f64(), Some(*p90));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(nulls > 0 && values > 0, "the fixture mixes null and non-null values");
    assert_eq!(body["rows"], rows_json(&[older.clone(), newer.clone()].concat()));

    // The newest windows under a limit, and a time range inside the older file, keep the same shape.
    let r = history(&d, dev, "&limit=3").await;
    assert_eq!(r.json()["rows"], rows_json(&newer[3..]));
    let r = history(&d, dev, &format!("&to={}", START_MS + 2 * support::WINDOW_MS)).await;
    assert_eq!(r.json()["rows"], rows_json(&older[..2]));
}

#[tokio::test]
async fn history_of_a_device_without_files_is_empty() {
    let d = Site::new("history-empty", write_history);
    let r = history(&d, "never-seen", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["rows"], serde_json::json!([]));
}

#[tokio::test]
async fn history_rejects_bad_parameters_with_the_fix() {
    let d = Site::new("history-bad", write_history);
    for (target, needle) in [
        ("/api/history", "`device` is required"),
        ("/api/history?device=", "`device` is empty"),
        ("/api/history?device=a&from=yesterday", "RFC 3339"),
        ("/api/history?device=a&from=10&to=5", "before `to`"),
        ("/api/history?device=a&limit=0", "`limit`"),
        ("/api/history?device=a&frm=1", "unknown parameter `frm`"),
    ] {
        let r = d.get(target).await;
        assert_eq!(r.status, 400, "{target}");
        let error = r.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(needle), "{target}: {error}");
    }
}

#[tokio::test]
async fn history_skips_a_corrupt_file_and_says_so() {
    let corrupt = support::part(9).file_name();
    let d = Site::new("history-corrupt", |data| {
        write_history(data);
        let dir = data.join(PARQUET_DIR).join(partition_dir_name(PASSWD));
        fs::write(dir.join(&corrupt), b"PAR1 this is not parquet").unwrap();
    });
    let r = history(&d, PASSWD, "").await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["rows"], expected_json(PASSWD, 0, 10));
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].as_str().unwrap().starts_with(&corrupt));
    assert!(r.header("x-dashboard-error").unwrap().contains(&corrupt));
}
