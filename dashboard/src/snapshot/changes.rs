//! What the page is told about a document without its records, so that a push stays small however many groups
//! there are: the **summary** (counters, fleet views with the alert list cut to [`ALERTS_SENT`], window kind, the
//! query and its columns, UDF columns, group counts) and the **change** from one document to the next (the
//! records of every group whose records differ, the labels of groups that went away; with more than
//! [`MAX_CHANGED_DEVICES`] of either, only their numbers, and the page fetches what it shows).

use model::output::OutputSchema;
use model::{FleetView, LatestDoc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::devices::{Group, GroupTable, cmp_values};

/// Alerts a summary carries (the page lists this many and says how many more there are).
pub const ALERTS_SENT: usize = 50;
/// Groups whose records a change carries; beyond this it carries only the numbers.
pub const MAX_CHANGED_DEVICES: usize = 100;

/// The top-level sections of a document that the summary passes on as written: a counter missing from the
/// file stays missing (the page shows "–", not 0). Other fields, the records among them, are skipped unread.
#[derive(Deserialize)]
struct AsWritten {
    #[serde(default)]
    pipeline: Value,
}

/// The `pipeline` section of the document `raw` as written (`null` when absent).
pub fn pipeline_as_written(raw: &[u8]) -> Value {
    serde_json::from_slice::<AsWritten>(raw)
        .map(|s| s.pipeline)
        .unwrap_or(Value::Null)
}

/// The fleet views with the alerts sorted by kind, then device, cut to [`ALERTS_SENT`]; `alerts_total` and
/// `alerts_by_kind` count them all; `unavailable` says why there are none, when the query's output cannot have
/// them.
fn fleet_summary(fleet: &FleetView) -> Value {
    let mut alerts: Vec<&model::Alert> = fleet.alerts.iter().collect();
    alerts.sort_by(|a, b| (&a.kind, &a.device_id).cmp(&(&b.kind, &b.device_id)));
    let mut by_kind = serde_json::Map::new();
    for a in &alerts {
        let n = by_kind.entry(a.kind.clone()).or_insert(json!(0));
        *n = json!(n.as_u64().unwrap_or(0) + 1);
    }
    alerts.truncate(ALERTS_SENT);
    let mut summary = json!({
        "devices": fleet.devices,
        "locations": fleet.locations,
        "alerts": alerts,
        "alerts_total": fleet.alerts.len(),
        "alerts_by_kind": by_kind,
    });
    if let Some(why) = &fleet.unavailable {
        summary["unavailable"] = json!(why);
    }
    summary
}

/// The summary of a document whose columns are `schema`: everything the page shows but the group charts.
/// `builtin` says whether the document is the built-in job's (the page then draws the seed's views); `devices`
/// and `live` count groups.
pub fn summary<R>(doc: &LatestDoc<R>, schema: &OutputSchema, pipeline: &Value, groups: &GroupTable) -> Value {
    json!({
        "updated_at": doc.updated_at,
        "watermark": doc.watermark,
        "window": doc.window,
        "udfs": doc.udfs,
        "query": doc.query,
        "builtin": doc.is_builtin(),
        "columns": schema,
        "pipeline": pipeline,
        "fleet": fleet_summary(&doc.fleet),
        "devices": groups.len(),
        "live": groups.live(),
    })
}

/// The groups that differ between two documents.
#[derive(Debug, Default)]
pub struct Change<'a> {
    /// Groups that are new or whose records differ, by key.
    pub changed: Vec<&'a Group>,
    /// Labels of groups that went away.
    pub removed: Vec<&'a str>,
}

/// The groups of `after` that are new or differ from `before`, and those of `before` that `after` lacks. Both
/// tables are sorted by key, so this is one walk over both.
pub fn change<'a>(before: &'a GroupTable, after: &'a GroupTable) -> Change<'a> {
    let (old, new) = (before.groups(), after.groups());
    let (mut i, mut j) = (0, 0);
    let mut c = Change::default();
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(o), Some(n)) if o.key == n.key => {
                if o.records_json != n.records_json {
                    c.changed.push(n);
                }
                (i, j) = (i + 1, j + 1);
            }
            (Some(o), Some(n)) if cmp_values(&o.key, &n.key).is_lt() => {
                c.removed.push(&o.label);
                i += 1;
            }
            (Some(o), None) => {
                c.removed.push(&o.label);
                i += 1;
            }
            (_, Some(n)) => {
                c.changed.push(n);
                j += 1;
            }
            (None, None) => unreachable!("the loop runs while one side has groups"),
        }
    }
    c
}

/// The `delta` push: the new summary and the change. `changed` (`[{label, key, records}]`, plus `device_id`
/// when the only key is `device_id`) and `removed` (labels) are `null` when more than [`MAX_CHANGED_DEVICES`]
/// groups changed or went away; `changed_total` and `removed_total` always count them.
pub fn delta_json(generation: u64, summary: &Value, change: &Change<'_>, device_keyed: bool) -> String {
    let few = change.changed.len() + change.removed.len() <= MAX_CHANGED_DEVICES;
    let mut text = String::with_capacity(1024);
    text.push_str(&format!(
        "{{\"generation\":{generation},\"summary\":{summary},\"changed_total\":{},\"removed_total\":{},\"changed\":",
        change.changed.len(),
        change.removed.len()
    ));
    if few {
        text.push('[');
        for (k, g) in change.changed.iter().enumerate() {
            if k > 0 {
                text.push(',');
            }
            let label = serde_json::to_string(&g.label).expect("a string serialises");
            let key = serde_json::to_string(&g.key_texts).expect("strings serialise");
            text.push_str(&format!("{{\"label\":{label},\"key\":{key},"));
            if device_keyed {
                text.push_str(&format!("\"device_id\":{label},"));
            }
            // The records are kept as JSON text: spliced in, not parsed and written again.
            text.push_str(&format!("\"records\":{}}}", g.records_json));
        }
        text.push_str("],\"removed\":");
        text.push_str(&serde_json::to_string(&change.removed).expect("strings serialise"));
    } else {
        text.push_str("null,\"removed\":null");
    }
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::latest::Record;
    use model::{AggregateRecord, Alert};

    fn record(id: &str, temperature: f64) -> Record {
        serde_json::from_value(json!({
            "device_id": id, "window_start": "2024-11-03T14:30:00Z", "window_end": "2024-11-03T14:30:10Z",
            "count": 4, "avg_temperature": 0.0, "avg_humidity": 50.0, "min_battery": 80.0,
            "max_battery": 90.0, "final": false,
        }))
        .map(|mut r: AggregateRecord| {
            // Set here: JSON has no NaN.
            r.avg_temperature = temperature;
            r.min_battery = temperature;
            Record::from(r)
        })
        .unwrap()
    }

    fn table(devices: &[(&str, f64)]) -> GroupTable {
        let doc: LatestDoc = LatestDoc {
            records: devices.iter().map(|(id, t)| record(id, *t)).collect(),
            ..LatestDoc::default()
        };
        GroupTable::of(doc.records.clone(), &doc.schema(), true)
    }

    fn ids<'a>(groups: &[&'a Group]) -> Vec<&'a str> {
        groups.iter().map(|g| g.label.as_str()).collect()
    }

    #[test]
    fn a_change_lists_new_changed_and_removed_devices_only() {
        let before = table(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("e", 5.0)]);
        let after = table(&[("b", 2.0), ("c", 3.5), ("d", 4.0), ("e", 5.0), ("f", 6.0)]);
        let c = change(&before, &after);
        assert_eq!(ids(&c.changed), ["c", "d", "f"]);
        assert_eq!(c.removed, ["a"]);
        let none = change(&after, &after);
        assert!(none.changed.is_empty() && none.removed.is_empty());
        // Records without stddev (NaN) compare equal: the seed's documents do not change every time.
        assert!(
            before
                .get("a")
                .unwrap()
                .newest()
                .get("stddev_temperature")
                .unwrap()
                .is_null()
        );
        let seed = table(&[("s", f64::NAN)]);
        assert!(change(&seed, &table(&[("s", f64::NAN)])).changed.is_empty());
    }

    #[test]
    fn a_delta_carries_the_changed_records_or_only_their_numbers() {
        let before = table(&[("a", 1.0), ("b", 2.0)]);
        let after = table(&[("a", 1.5)]);
        let text = delta_json(7, &json!({"devices": 1}), &change(&before, &after), true);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["generation"], 7);
        assert_eq!(v["summary"]["devices"], 1);
        assert_eq!(
            (v["changed_total"].as_u64(), v["removed_total"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(v["changed"][0]["device_id"], "a");
        assert_eq!(
            (&v["changed"][0]["label"], &v["changed"][0]["key"]),
            (&json!("a"), &json!(["a"]))
        );
        assert_eq!(v["changed"][0]["records"][0]["avg_temperature"], 1.5);
        assert_eq!(v["removed"], json!(["b"]));

        let many: Vec<(String, f64)> = (0..=MAX_CHANGED_DEVICES).map(|i| (format!("d{i:04}"), 1.0)).collect();
        let many: Vec<(&str, f64)> = many.iter().map(|(id, t)| (id.as_str(), *t)).collect();
        let text = delta_json(8, &json!({}), &change(&table(&[]), &table(&many)), true);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["changed_total"], MAX_CHANGED_DEVICES + 1);
        assert!(v["changed"].is_null() && v["removed"].is_null());
    }

    #[test]
    fn a_delta_of_groups_of_two_keys_names_them_by_label_and_key() {
        let doc = |rate: f64| -> LatestDoc {
            serde_json::from_value(json!({
                "query": {"sql": "SELECT site, line, ...", "builtin": false},
                "columns": [
                    {"name": "site", "type": "TEXT", "role": "key", "nullable": false},
                    {"name": "line", "type": "BIGINT", "role": "key", "nullable": false},
                    {"name": "window_start", "type": "TIMESTAMP", "role": "window", "nullable": false},
                    {"name": "window_end", "type": "TIMESTAMP", "role": "window", "nullable": false},
                    {"name": "rate", "type": "DOUBLE", "role": "value"}],
                "records": [
                    {"site": "a", "line": 1, "window_start": "2024-11-03T14:30:00Z",
                     "window_end": "2024-11-03T14:30:10Z", "rate": 1.0, "final": true},
                    {"site": "a", "line": 2, "window_start": "2024-11-03T14:30:00Z",
                     "window_end": "2024-11-03T14:30:10Z", "rate": rate, "final": true}]
            }))
            .unwrap()
        };
        let (before, after) = (doc(2.0), doc(2.5));
        let (tb, ta) = (
            GroupTable::of(before.records.clone(), &before.schema(), false),
            GroupTable::of(after.records.clone(), &after.schema(), false),
        );
        let c = change(&tb, &ta);
        assert_eq!(ids(&c.changed), ["a / 2"]);
        let v: Value = serde_json::from_str(&delta_json(3, &json!({}), &c, ta.device_keyed())).unwrap();
        assert_eq!(v["changed"][0]["label"], "a / 2");
        assert_eq!(v["changed"][0]["key"], json!(["a", "2"]));
        assert!(v["changed"][0].get("device_id").is_none());
        assert_eq!(v["changed"][0]["records"][0]["rate"], 2.5);
        let s = summary(&after, &after.schema(), &Value::Null, &ta);
        assert_eq!((&s["builtin"], &s["devices"]), (&json!(false), &json!(2)));
        assert_eq!(s["columns"][1]["name"], "line");
    }

    #[test]
    fn the_summary_cuts_the_alert_list_and_keeps_the_pipeline_as_written() {
        let alert = |id: String, kind: &str| Alert {
            device_id: id,
            kind: kind.into(),
            value: 1.0,
            window_end: "2024-11-03T14:30:10Z".into(),
        };
        let mut doc = LatestDoc::default();
        doc.fleet.alerts = (0..ALERTS_SENT + 10)
            .map(|i| {
                alert(
                    format!("d{i:03}"),
                    if i % 2 == 0 { "status_error" } else { "battery_low" },
                )
            })
            .collect();
        let raw = br#"{"updated_at": 1, "records": [], "pipeline": {"events_total": 5}}"#;
        let pipeline = pipeline_as_written(raw);
        doc.fleet.unavailable = Some("the output has no avg_temperature".into());
        let s = summary(&doc, &doc.schema(), &pipeline, &GroupTable::default());
        assert_eq!(
            s["pipeline"],
            json!({"events_total": 5}),
            "missing counters stay missing"
        );
        let alerts = s["fleet"]["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), ALERTS_SENT);
        assert_eq!(
            (alerts[0]["kind"].as_str(), alerts[0]["device_id"].as_str()),
            (Some("battery_low"), Some("d001"))
        );
        assert_eq!(s["fleet"]["alerts_total"], ALERTS_SENT + 10);
        assert_eq!(
            s["fleet"]["alerts_by_kind"],
            json!({"battery_low": 30, "status_error": 30})
        );
        assert!(pipeline_as_written(br#"{"records": []}"#).is_null());
        assert_eq!(s["fleet"]["unavailable"], "the output has no avg_temperature");
        assert_eq!((&s["builtin"], &s["query"]), (&json!(true), &Value::Null));
        assert_eq!(s["columns"][0]["name"], "device_id", "the seed's columns");
    }
}
