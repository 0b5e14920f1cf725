//! The groups of one `latest.json` as the page asks for them at fleet scale. A group is the tuple of a record's
//! key values (for the built-in job, a device); its label is their texts joined by ` / ` (for the built-in job,
//! the device id). Each group's records and its newest window are built once per file version, and the page's
//! query runs over them: a case-insensitive substring of the label, a sort by the key, by a numeric column or
//! its reverse, one page of newest windows, and the histogram of a metric over every matching group. Ten
//! thousand groups answer in a few milliseconds, so the page never needs the whole document to draw a bounded
//! number of bars.

use std::cmp::Ordering;
use std::collections::HashMap;

use model::latest::{Record, label_of};
use model::output::{OutputSchema, Role};
use serde::Serialize;
use serde_json::Value as Json;

use super::histogram::{Histogram, histogram};

/// Rows of one page when the query does not say (also the page's default: 200 bars of 26 px stay drawable).
pub const DEFAULT_PAGE: usize = 200;
/// Most rows one page may ask for.
pub const MAX_PAGE: usize = 500;

/// One group of the document.
#[derive(Debug)]
pub struct Group {
    /// The group's label: its key texts joined by ` / ` (the device id for the built-in job).
    pub label: String,
    /// The label in lower case, for the filter.
    label_lower: String,
    /// Its key values as written, in key order (what orders the groups).
    pub key: Vec<Json>,
    /// The texts of its key values, in key order (what `/api/history` takes).
    pub key_texts: Vec<String>,
    /// Every record of the group in the document (its last final window and its newest), in document order.
    pub records: Vec<Record>,
    /// Which of them is the newest window: the later start wins; at equal starts a final record wins.
    newest: usize,
    /// The records as one JSON array: what `/api/device` and the pushes send, and what tells whether the group
    /// changed between two documents.
    pub records_json: String,
}

impl Group {
    /// The group's newest window.
    pub fn newest(&self) -> &Record {
        &self.records[self.newest]
    }
}

/// The groups of one document, sorted by key.
#[derive(Debug, Default)]
pub struct GroupTable {
    groups: Vec<Group>,
    by_label: HashMap<String, usize>,
    by_key: HashMap<Vec<String>, usize>,
    live: usize,
    /// The numeric value columns (BIGINT, DOUBLE), in column order.
    numeric: Vec<String>,
    /// The document is the built-in job's: sorted by key, its histogram is of temperature.
    builtin: bool,
    /// The only key is `device_id`, as in the built-in job: answers name it too.
    device_keyed: bool,
}

/// A measure the page sorts by and draws the distribution of.
#[derive(Clone, Debug, PartialEq)]
pub enum Metric {
    /// `avg_temperature`, °C (natural order: hottest first).
    Temperature,
    /// `avg_humidity`, % (most humid first).
    Humidity,
    /// `min_battery`, % (lowest first).
    Battery,
    /// `window_end − window_start`, seconds (longest first; sessions vary in length).
    SessionLength,
    /// A numeric UDF column by name (highest first; windows without a number last).
    Udf(String),
    /// Any numeric column by name (highest first; windows without a number last).
    Column(String),
}

/// The order of the rows.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupSort {
    /// By key (for the built-in job, by device id).
    Key,
    /// By a metric, in its natural order (see [`Metric`]).
    By(Metric),
}

/// What the page asks for: `GET /api/devices?filter=&sort=&reverse=&offset=&limit=&metric=`.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupQuery {
    /// Case-insensitive substring of the group's label (trimmed; empty: every group).
    pub filter: String,
    /// The order.
    pub sort: GroupSort,
    /// The other end of the order (bottom N instead of top N). Windows without a value stay last either way.
    pub reverse: bool,
    /// Rows of the sorted, filtered list to skip.
    pub offset: usize,
    /// Rows to answer, 1..=[`MAX_PAGE`].
    pub limit: usize,
    /// The histogram's metric; `None`: the sort's (see [`GroupTable::histogram_metric`]).
    pub metric: Option<Metric>,
}

impl Default for GroupQuery {
    fn default() -> Self {
        GroupQuery {
            filter: String::new(),
            sort: GroupSort::Key,
            reverse: false,
            offset: 0,
            limit: DEFAULT_PAGE,
            metric: None,
        }
    }
}

/// The answer to a [`GroupQuery`].
#[derive(Debug, Serialize)]
pub struct GroupPage<'a> {
    /// Groups in the document.
    pub total: usize,
    /// Groups matching the filter.
    pub matched: usize,
    /// The query's offset.
    pub offset: usize,
    /// The query's limit.
    pub limit: usize,
    /// Newest window of each group of the page, in order.
    pub rows: Vec<&'a Record>,
    /// The label of each row's group, in the same order.
    pub labels: Vec<&'a str>,
    /// Distribution of the histogram's metric over every matching group (`null` when the document has no
    /// numeric column to draw).
    pub histogram: Option<Histogram>,
}

impl Metric {
    /// The metric's value in a record, in its unit; `None` when the record has no finite number for it.
    pub fn value(&self, r: &Record) -> Option<f64> {
        match self {
            Metric::Temperature => r.number("avg_temperature"),
            Metric::Humidity => r.number("avg_humidity"),
            Metric::Battery => r.number("min_battery"),
            Metric::SessionLength => {
                let (start, end) = (r.window_start_ms()?, r.window_end_ms()?);
                Some((end - start) as f64 / 1000.0)
            }
            Metric::Udf(name) | Metric::Column(name) => r.number(name),
        }
    }

    /// Whether the natural order is highest first.
    fn highest_first(&self) -> bool {
        !matches!(self, Metric::Battery)
    }

    /// The name the query uses.
    pub fn name(&self) -> String {
        match self {
            Metric::Temperature => "temperature".into(),
            Metric::Humidity => "humidity".into(),
            Metric::Battery => "battery".into(),
            Metric::SessionLength => "session-length".into(),
            Metric::Udf(name) => format!("{UDF_PREFIX}{name}"),
            Metric::Column(name) => format!("{COLUMN_PREFIX}{name}"),
        }
    }

    /// Reads a metric's name: `temperature`, `humidity`, `battery`, `session-length`, `udf:<column>` or
    /// `column:<column>`.
    pub fn parse(text: &str) -> Option<Metric> {
        Some(match text {
            "temperature" => Metric::Temperature,
            "humidity" => Metric::Humidity,
            "battery" => Metric::Battery,
            "session-length" => Metric::SessionLength,
            _ => {
                if let Some(name) = text.strip_prefix(UDF_PREFIX).filter(|n| !n.is_empty()) {
                    Metric::Udf(name.to_string())
                } else {
                    Metric::Column(text.strip_prefix(COLUMN_PREFIX).filter(|n| !n.is_empty())?.to_string())
                }
            }
        })
    }
}

/// Prefix of a UDF column in `sort` (`udf:heat_index`); a UDF's name is a function name, so no built-in sort
/// name can be one.
const UDF_PREFIX: &str = "udf:";
/// Prefix of any column in `sort` and `metric` (`column:avg_pressure`).
const COLUMN_PREFIX: &str = "column:";

impl GroupSort {
    /// Reads `sort`: `id` (the key), `temperature`, `humidity`, `battery`, `session-length`, `udf:<column>` or
    /// `column:<column>`.
    pub fn parse(text: &str) -> Result<GroupSort, String> {
        if text == "id" {
            return Ok(GroupSort::Key);
        }
        Metric::parse(text).map(GroupSort::By).ok_or_else(|| {
            format!(
                "`sort` must be id, temperature, humidity, battery, session-length, udf:<column> or \
                 column:<column>, got `{text}`"
            )
        })
    }
}

impl GroupQuery {
    /// Builds the query from the URL's parameters; every mistake names the parameter.
    pub fn from_params(params: Vec<(String, String)>) -> Result<GroupQuery, String> {
        let mut q = GroupQuery::default();
        let mut seen = Vec::new();
        for (k, v) in params {
            if seen.contains(&k) {
                return Err(format!("parameter `{k}` is given more than once"));
            }
            match k.as_str() {
                "filter" => q.filter = v.trim().to_string(),
                "sort" => q.sort = GroupSort::parse(&v)?,
                "reverse" => {
                    q.reverse = match v.as_str() {
                        "true" | "1" => true,
                        "false" | "0" | "" => false,
                        _ => return Err(format!("`reverse` must be true or false, got `{v}`")),
                    }
                }
                "offset" => {
                    q.offset = v
                        .parse()
                        .map_err(|_| format!("`offset` must be a whole number, got `{v}`"))?
                }
                "limit" => {
                    q.limit = match v.parse::<usize>() {
                        Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                        _ => return Err(format!("`limit` must be a whole number in 1..={MAX_PAGE}, got `{v}`")),
                    }
                }
                "metric" => {
                    q.metric = Some(Metric::parse(&v).ok_or_else(|| {
                        format!(
                            "`metric` must be temperature, humidity, battery, session-length, udf:<column> or \
                             column:<column>, got `{v}`"
                        )
                    })?)
                }
                _ => {
                    return Err(format!(
                        "unknown parameter `{k}`; accepted: filter, sort, reverse, offset, limit, metric"
                    ));
                }
            }
            seen.push(k);
        }
        Ok(q)
    }
}

impl GroupTable {
    /// The groups of a document's `records`, whose columns are `schema`; `builtin` says whether the document is
    /// the built-in job's ([`model::LatestDoc::is_builtin`]). The records move into their groups, where each
    /// group's keep their order in the document.
    pub fn of(records: Vec<Record>, schema: &OutputSchema, builtin: bool) -> GroupTable {
        let mut keyed: Vec<(Vec<Json>, Record)> = records
            .into_iter()
            .map(|r| {
                let key = schema
                    .keys()
                    .iter()
                    .map(|k| r.get(&k.name).cloned().unwrap_or(Json::Null))
                    .collect();
                (key, r)
            })
            .collect();
        // Stable: a group's records keep their order in the document.
        keyed.sort_by(|(a, _), (b, _)| cmp_values(a, b));
        let mut groups: Vec<Group> = Vec::new();
        for (key, record) in keyed {
            match groups.last_mut() {
                Some(g) if g.key == key => g.records.push(record),
                _ => groups.push(Group {
                    label: String::new(),
                    label_lower: String::new(),
                    key,
                    key_texts: Vec::new(),
                    records: vec![record],
                    newest: 0,
                    records_json: String::new(),
                }),
            }
        }
        for g in &mut groups {
            g.newest = (1..g.records.len()).fold(0, |cur, i| {
                if is_newer(&g.records[i], &g.records[cur]) {
                    i
                } else {
                    cur
                }
            });
            g.key_texts = g.records[0].key_texts(schema);
            g.label = label_of(&g.key_texts);
            g.label_lower = g.label.to_lowercase();
            g.records_json = serde_json::to_string(&g.records).expect("records serialise");
        }
        let mut by_label = HashMap::with_capacity(groups.len());
        let mut by_key = HashMap::with_capacity(groups.len());
        for (i, g) in groups.iter().enumerate() {
            // A label two groups share (a key text holding ` / `) names the first; their keys tell them apart.
            by_label.entry(g.label.clone()).or_insert(i);
            by_key.insert(g.key_texts.clone(), i);
        }
        let live = groups.iter().filter(|g| !g.newest().is_final()).count();
        let numeric = schema
            .columns()
            .iter()
            .filter(|c| c.role == Role::Value && c.ty.is_numeric())
            .map(|c| c.name.clone())
            .collect();
        let keys = schema.keys();
        GroupTable {
            groups,
            by_label,
            by_key,
            live,
            numeric,
            builtin,
            device_keyed: keys.len() == 1 && keys[0].name == model::partition::PARTITION_COLUMN,
        }
    }

    /// Groups in the document.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether the document has no group.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Groups whose newest window is live (still open).
    pub fn live(&self) -> usize {
        self.live
    }

    /// Every group, by key.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Whether the only key is `device_id` (as in the built-in job): answers then also name the group
    /// `device_id`, as the seed's clients read it.
    pub fn device_keyed(&self) -> bool {
        self.device_keyed
    }

    /// One group by label.
    pub fn get(&self, label: &str) -> Option<&Group> {
        self.by_label.get(label).map(|&i| &self.groups[i])
    }

    /// One group by the texts of its key values, in key order.
    pub fn get_by_key(&self, key_texts: &[String]) -> Option<&Group> {
        self.by_key.get(key_texts).map(|&i| &self.groups[i])
    }

    /// The metric of the histogram: the query's, else the sort's; sorted by key, temperature for the built-in
    /// job and the first numeric value column for any other query (`None` when it has none).
    pub fn histogram_metric(&self, q: &GroupQuery) -> Option<Metric> {
        match (&q.metric, &q.sort) {
            (Some(m), _) | (None, GroupSort::By(m)) => Some(m.clone()),
            (None, GroupSort::Key) if self.builtin => Some(Metric::Temperature),
            (None, GroupSort::Key) => self.numeric.first().cloned().map(Metric::Column),
        }
    }

    /// The page of newest windows `q` asks for, with the histogram of its metric over every matching group.
    pub fn query(&self, q: &GroupQuery) -> GroupPage<'_> {
        let needle = q.filter.to_lowercase();
        let mut matched: Vec<&Group> = self
            .groups
            .iter()
            .filter(|g| needle.is_empty() || g.label_lower.contains(&needle))
            .collect();
        let histogram = self
            .histogram_metric(q)
            .map(|m| histogram(&m.name(), matched.iter().map(|g| m.value(g.newest()))));
        if let GroupSort::By(m) = &q.sort {
            // Values once per group, not once per comparison.
            let mut keyed: Vec<(Option<f64>, &Group)> = matched.iter().map(|g| (m.value(g.newest()), *g)).collect();
            let descending = m.highest_first() != q.reverse;
            keyed.sort_by(|(x, a), (y, b)| by_value(*x, *y, descending).then_with(|| cmp_values(&a.key, &b.key)));
            matched = keyed.into_iter().map(|(_, g)| g).collect();
        } else if q.reverse {
            matched.reverse();
        }
        let page: Vec<&Group> = matched.iter().skip(q.offset).take(q.limit).copied().collect();
        GroupPage {
            total: self.groups.len(),
            matched: matched.len(),
            offset: q.offset,
            limit: q.limit,
            rows: page.iter().map(|g| g.newest()).collect(),
            labels: page.iter().map(|g| g.label.as_str()).collect(),
            histogram,
        }
    }
}

/// Values in the asked direction, groups without a value last whatever the direction.
fn by_value(x: Option<f64>, y: Option<f64>, descending: bool) -> Ordering {
    match (x, y) {
        (Some(x), Some(y)) if descending => y.total_cmp(&x),
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// The order of keys: value by value, see [`cmp_json`].
pub fn cmp_values(a: &[Json], b: &[Json]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| cmp_json(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(a.len().cmp(&b.len()))
}

/// One order of JSON key values: null, then booleans, numbers (integers exactly, others as floats), strings
/// (by their bytes, as the device ids always were), then anything else by its text.
fn cmp_json(a: &Json, b: &Json) -> Ordering {
    fn rank(v: &Json) -> u8 {
        match v {
            Json::Null => 0,
            Json::Bool(_) => 1,
            Json::Number(_) => 2,
            Json::String(_) => 3,
            _ => 4,
        }
    }
    match (a, b) {
        (Json::Bool(x), Json::Bool(y)) => x.cmp(y),
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x.cmp(&y),
            (_, _, Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
                x.total_cmp(&y)
            }
        },
        (Json::String(x), Json::String(y)) => x.cmp(y),
        _ if rank(a) == rank(b) && rank(a) == 4 => a.to_string().cmp(&b.to_string()),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Whether `r` is a newer window of its group than `cur`: a later start, or the same start and final where
/// `cur` is live (the rule the page used to apply to the whole document).
fn is_newer(r: &Record, cur: &Record) -> bool {
    match (r.window_start_ms(), cur.window_start_ms()) {
        (Some(t), Some(tc)) => t > tc || (t == tc && r.is_final() && !cur.is_final()),
        (Some(_), None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::LatestDoc;
    use serde_json::json;

    fn record(id: &str, start: &str, is_final: bool, temperature: Json) -> Record {
        serde_json::from_value(json!({
            "device_id": id, "window_start": start, "window_end": "2024-11-03T14:30:10Z", "count": 4,
            "avg_temperature": temperature, "avg_humidity": 50.0, "min_battery": temperature, "max_battery": 90.0,
            "final": is_final,
        }))
        .unwrap()
    }

    fn seed_table(records: Vec<Record>) -> GroupTable {
        let doc = LatestDoc {
            records,
            ..LatestDoc::default()
        };
        GroupTable::of(doc.records.clone(), &doc.schema(), true)
    }

    fn labels(page: &GroupPage<'_>) -> Vec<String> {
        page.labels.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn the_newest_window_is_the_later_start_and_final_wins_a_tie() {
        let t = seed_table(vec![
            record("b", "2024-11-03T14:30:00Z", false, json!(1.0)),
            record("a", "2024-11-03T14:29:50Z", true, json!(2.0)),
            record("a", "2024-11-03T14:30:00Z", false, json!(3.0)),
            record("b", "2024-11-03T14:30:00", true, json!(4.0)),
        ]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get("a").unwrap().newest().number("avg_temperature"), Some(3.0));
        assert_eq!(
            t.get("b").unwrap().newest().number("avg_temperature"),
            Some(4.0),
            "zone-less UTC time, final wins the tie"
        );
        assert_eq!(t.live(), 1);
        let a: Vec<Record> = serde_json::from_str(&t.get("a").unwrap().records_json).unwrap();
        assert_eq!(a.len(), 2, "both records of the device, in document order");
        assert_eq!(a[0].number("avg_temperature"), Some(2.0));
        assert!(t.get("c").is_none());
        assert!(t.device_keyed());
    }

    #[test]
    fn sorts_filter_and_pages() {
        let t = seed_table(
            [
                ("d1", json!(20.0)),
                ("D2", json!(25.0)),
                ("x3", json!(15.0)),
                ("d4", Json::Null),
                ("d5", json!(25.0)),
            ]
            .into_iter()
            .map(|(id, v)| record(id, "2024-11-03T14:30:00Z", false, v))
            .collect(),
        );
        let q = |sort: &str, reverse: bool| GroupQuery {
            sort: GroupSort::parse(sort).unwrap(),
            reverse,
            ..GroupQuery::default()
        };
        assert_eq!(labels(&t.query(&q("id", false))), ["D2", "d1", "d4", "d5", "x3"]);
        assert_eq!(labels(&t.query(&q("id", true))), ["x3", "d5", "d4", "d1", "D2"]);
        // Hottest first, ties by id; the device without a value last in both directions.
        assert_eq!(
            labels(&t.query(&q("temperature", false))),
            ["D2", "d5", "d1", "x3", "d4"]
        );
        assert_eq!(
            labels(&t.query(&q("temperature", true))),
            ["x3", "d1", "D2", "d5", "d4"]
        );
        // Battery: lowest first.
        assert_eq!(labels(&t.query(&q("battery", false)))[0], "x3");
        let filtered = t.query(&GroupQuery {
            filter: "d".into(),
            offset: 1,
            limit: 2,
            ..q("temperature", false)
        });
        assert_eq!(
            (filtered.total, filtered.matched),
            (5, 4),
            "case-insensitive: D2 matches `d`"
        );
        assert_eq!(labels(&filtered), ["d5", "d1"]);
        let h = filtered.histogram.as_ref().unwrap();
        assert_eq!(h.count + h.missing, 4);
        let past_the_end = t.query(&GroupQuery {
            offset: 9,
            ..GroupQuery::default()
        });
        assert!(past_the_end.rows.is_empty());
        assert_eq!(t.query(&GroupQuery::default()).histogram.unwrap().metric, "temperature");
    }

    #[test]
    fn udf_and_session_metrics_read_their_values() {
        let r = record("a", "2024-11-03T14:29:18Z", true, json!(1.0));
        assert_eq!(Metric::SessionLength.value(&r), Some(52.0));
        assert_eq!(Metric::Udf("heat".into()).value(&r), None);
        let mut fields = r.fields().clone();
        fields.insert("heat".into(), json!(27.5));
        fields.insert("comfort".into(), json!("dry"));
        let r = Record::new(fields);
        assert_eq!(Metric::Udf("heat".into()).value(&r), Some(27.5));
        assert_eq!(Metric::Column("heat".into()).value(&r), Some(27.5));
        assert_eq!(Metric::Udf("comfort".into()).value(&r), None, "text is no number");
    }

    /// A document of two keys (site TEXT, line BIGINT) and one numeric value column.
    fn two_keys() -> GroupTable {
        let doc: LatestDoc = serde_json::from_value(json!({
            "query": {"sql": "SELECT site, line, ...", "builtin": false},
            "columns": [
                {"name": "site", "type": "TEXT", "role": "key", "nullable": false},
                {"name": "line", "type": "BIGINT", "role": "key", "nullable": false},
                {"name": "window_start", "type": "TIMESTAMP", "role": "window", "nullable": false},
                {"name": "window_end", "type": "TIMESTAMP", "role": "window", "nullable": false},
                {"name": "label", "type": "TEXT", "role": "value"},
                {"name": "rate", "type": "DOUBLE", "role": "value"}],
            "records": [
                {"site": "b", "line": 2, "window_start": "2024-11-03T14:30:00Z",
                 "window_end": "2024-11-03T14:30:10Z", "rate": 1.5, "label": "x", "final": false},
                {"site": "b", "line": 10, "window_start": "2024-11-03T14:30:00Z",
                 "window_end": "2024-11-03T14:30:10Z", "rate": 0.5, "label": "y", "final": true},
                {"site": "a", "line": 10, "window_start": "2024-11-03T14:30:00Z",
                 "window_end": "2024-11-03T14:30:10Z", "rate": null, "label": "z", "final": true}]
        }))
        .unwrap();
        GroupTable::of(doc.records.clone(), &doc.schema(), doc.is_builtin())
    }

    #[test]
    fn groups_of_two_keys_are_ordered_by_their_typed_values_and_found_by_label_or_key() {
        let t = two_keys();
        assert!(!t.device_keyed());
        let all = t.query(&GroupQuery::default());
        assert_eq!(
            labels(&all),
            ["a / 10", "b / 2", "b / 10"],
            "BIGINT keys in numeric order"
        );
        let h = all.histogram.unwrap();
        assert_eq!((h.metric.as_str(), h.count, h.missing), ("column:rate", 2, 1));
        assert_eq!(t.get("b / 10").unwrap().key_texts, ["b", "10"]);
        assert_eq!(t.get_by_key(&["b".into(), "2".into()]).unwrap().label, "b / 2");
        let by_rate = t.query(&GroupQuery {
            sort: GroupSort::parse("column:rate").unwrap(),
            ..GroupQuery::default()
        });
        assert_eq!(labels(&by_rate), ["b / 2", "b / 10", "a / 10"]);
        let filtered = t.query(&GroupQuery {
            filter: "B / 1".into(),
            metric: Some(Metric::Column("label".into())),
            ..GroupQuery::default()
        });
        assert_eq!(labels(&filtered), ["b / 10"]);
        assert_eq!(filtered.histogram.unwrap().missing, 1, "text is no number");
    }

    #[test]
    fn query_parameters_are_checked() {
        let p = |pairs: &[(&str, &str)]| {
            GroupQuery::from_params(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        };
        let q = p(&[
            ("sort", "udf:heat_index"),
            ("reverse", "true"),
            ("offset", "200"),
            ("limit", "50"),
            ("metric", "column:n"),
        ])
        .unwrap();
        assert_eq!(q.sort, GroupSort::By(Metric::Udf("heat_index".into())));
        assert_eq!(q.metric, Some(Metric::Column("n".into())));
        assert!(q.reverse && q.offset == 200 && q.limit == 50);
        assert_eq!(p(&[("filter", "  dev ")]).unwrap().filter, "dev");
        for (pairs, needle) in [
            (vec![("sort", "colour")], "`sort` must be"),
            (vec![("sort", "udf:")], "`sort` must be"),
            (vec![("sort", "column:")], "`sort` must be"),
            (vec![("metric", "colour")], "`metric` must be"),
            (vec![("limit", "0")], "`limit`"),
            (vec![("limit", "501")], "`limit`"),
            (vec![("offset", "-1")], "`offset`"),
            (vec![("reverse", "maybe")], "`reverse`"),
            (vec![("page", "2")], "unknown parameter `page`"),
            (vec![("limit", "5"), ("limit", "6")], "more than once"),
        ] {
            let err = p(&pairs).unwrap_err();
            assert!(err.contains(needle), "{err} should contain {needle}");
        }
    }
}
