//! The devices of one `latest.json` as the page asks for them at fleet scale: each device's records and its
//! newest window, built once per file version, and the page's query over them (a case-insensitive substring of
//! the id, a sort by a metric or its reverse, one page of newest windows, and the histogram of the metric over
//! every matching device). Ten thousand devices answer in a few milliseconds, so the page never needs the whole
//! document to draw a bounded number of bars.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDateTime};
use model::{AggregateRecord, LatestDoc};
use serde::Serialize;

use super::histogram::{Histogram, histogram};

/// Rows of one page when the query does not say (also the page's default: 200 bars of 26 px stay drawable).
pub const DEFAULT_PAGE: usize = 200;
/// Most rows one page may ask for.
pub const MAX_PAGE: usize = 500;

/// One device of the document.
#[derive(Debug)]
pub struct Device {
    /// The device id, as in the data.
    pub id: String,
    /// The id in lower case, for the filter.
    id_lower: String,
    /// The newest window: the later start wins; at equal starts a final record wins.
    pub newest: AggregateRecord,
    /// Every record of the device in the document (newest and last final window), as one JSON array: what
    /// `/api/device` and the pushes send, and what tells whether the device changed between two documents.
    pub records_json: String,
}

/// The devices of one document, sorted by id.
#[derive(Debug, Default)]
pub struct DeviceTable {
    devices: Vec<Device>,
    live: usize,
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
}

/// The order of the rows.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceSort {
    /// By device id.
    Id,
    /// By a metric, in its natural order (see [`Metric`]).
    By(Metric),
}

/// What the page asks for: `GET /api/devices?filter=&sort=&reverse=&offset=&limit=`.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceQuery {
    /// Case-insensitive substring of the device id (trimmed; empty: every device).
    pub filter: String,
    /// The order.
    pub sort: DeviceSort,
    /// The other end of the order (bottom N instead of top N). Windows without a value stay last either way.
    pub reverse: bool,
    /// Rows of the sorted, filtered list to skip.
    pub offset: usize,
    /// Rows to answer, 1..=[`MAX_PAGE`].
    pub limit: usize,
}

impl Default for DeviceQuery {
    fn default() -> Self {
        DeviceQuery {
            filter: String::new(),
            sort: DeviceSort::Id,
            reverse: false,
            offset: 0,
            limit: DEFAULT_PAGE,
        }
    }
}

/// The answer to a [`DeviceQuery`].
#[derive(Debug, Serialize)]
pub struct DevicePage<'a> {
    /// Devices in the document.
    pub total: usize,
    /// Devices matching the filter.
    pub matched: usize,
    /// The query's offset.
    pub offset: usize,
    /// The query's limit.
    pub limit: usize,
    /// Newest window of each device of the page, in order.
    pub rows: Vec<&'a AggregateRecord>,
    /// Distribution of the sort's metric (temperature when sorted by id) over every matching device.
    pub histogram: Histogram,
}

impl Metric {
    /// The metric's value in a record, in its unit; `None` when the record has no finite number for it.
    pub fn value(&self, r: &AggregateRecord) -> Option<f64> {
        let v = match self {
            Metric::Temperature => r.avg_temperature,
            Metric::Humidity => r.avg_humidity,
            Metric::Battery => r.min_battery,
            Metric::SessionLength => {
                let (start, end) = (parse_time_ms(&r.window_start)?, parse_time_ms(&r.window_end)?);
                (end - start) as f64 / 1000.0
            }
            Metric::Udf(name) => r.udf.get(name)?.as_f64()?,
        };
        v.is_finite().then_some(v)
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
        }
    }
}

/// Prefix of a UDF column in `sort` (`udf:heat_index`); a UDF's name is a function name, so no built-in sort
/// name can be one.
const UDF_PREFIX: &str = "udf:";

impl DeviceSort {
    /// Reads `sort`: `id`, `temperature`, `humidity`, `battery`, `session-length` or `udf:<column>`.
    pub fn parse(text: &str) -> Result<DeviceSort, String> {
        Ok(match text {
            "id" => DeviceSort::Id,
            "temperature" => DeviceSort::By(Metric::Temperature),
            "humidity" => DeviceSort::By(Metric::Humidity),
            "battery" => DeviceSort::By(Metric::Battery),
            "session-length" => DeviceSort::By(Metric::SessionLength),
            _ => match text.strip_prefix(UDF_PREFIX) {
                Some(name) if !name.is_empty() => DeviceSort::By(Metric::Udf(name.to_string())),
                _ => {
                    return Err(format!(
                        "`sort` must be id, temperature, humidity, battery, session-length or udf:<column>, got \
                         `{text}`"
                    ));
                }
            },
        })
    }
}

impl DeviceQuery {
    /// Builds the query from the URL's parameters; every mistake names the parameter.
    pub fn from_params(params: Vec<(String, String)>) -> Result<DeviceQuery, String> {
        let mut q = DeviceQuery::default();
        let mut seen = Vec::new();
        for (k, v) in params {
            if seen.contains(&k) {
                return Err(format!("parameter `{k}` is given more than once"));
            }
            match k.as_str() {
                "filter" => q.filter = v.trim().to_string(),
                "sort" => q.sort = DeviceSort::parse(&v)?,
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
                _ => {
                    return Err(format!(
                        "unknown parameter `{k}`; accepted: filter, sort, reverse, offset, limit"
                    ));
                }
            }
            seen.push(k);
        }
        Ok(q)
    }

    /// The metric of the histogram: the sort's, or temperature when sorted by id.
    pub fn histogram_metric(&self) -> Metric {
        match &self.sort {
            DeviceSort::Id => Metric::Temperature,
            DeviceSort::By(m) => m.clone(),
        }
    }
}

impl DeviceTable {
    /// The devices of `doc`. Records of one device keep their order in the document.
    pub fn of(doc: &LatestDoc) -> DeviceTable {
        let mut by_device: Vec<&AggregateRecord> = doc.records.iter().collect();
        by_device.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        let mut devices = Vec::new();
        for group in by_device.chunk_by(|a, b| a.device_id == b.device_id) {
            let newest = group
                .iter()
                .copied()
                .reduce(|cur, r| if is_newer(r, cur) { r } else { cur })
                .expect("a group is never empty");
            devices.push(Device {
                id: newest.device_id.clone(),
                id_lower: newest.device_id.to_lowercase(),
                newest: newest.clone(),
                records_json: serde_json::to_string(group).expect("records serialise"),
            });
        }
        let live = devices.iter().filter(|d| !d.newest.is_final).count();
        DeviceTable { devices, live }
    }

    /// Devices in the document.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether the document has no device.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Devices whose newest window is live (still open).
    pub fn live(&self) -> usize {
        self.live
    }

    /// Every device, by id.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// One device by id.
    pub fn get(&self, id: &str) -> Option<&Device> {
        self.devices
            .binary_search_by(|d| d.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.devices[i])
    }

    /// The page of newest windows `q` asks for, with the histogram of its metric over every matching device.
    pub fn query(&self, q: &DeviceQuery) -> DevicePage<'_> {
        let needle = q.filter.to_lowercase();
        let mut matched: Vec<&Device> = self
            .devices
            .iter()
            .filter(|d| needle.is_empty() || d.id_lower.contains(&needle))
            .collect();
        let metric = q.histogram_metric();
        let histogram = histogram(&metric.name(), matched.iter().map(|d| metric.value(&d.newest)));
        if let DeviceSort::By(m) = &q.sort {
            // Values once per device, not once per comparison.
            let mut keyed: Vec<(Option<f64>, &Device)> = matched.iter().map(|d| (m.value(&d.newest), *d)).collect();
            let descending = m.highest_first() != q.reverse;
            keyed.sort_by(|(x, a), (y, b)| by_value(*x, *y, descending).then_with(|| a.id.cmp(&b.id)));
            matched = keyed.into_iter().map(|(_, d)| d).collect();
        } else if q.reverse {
            matched.reverse();
        }
        DevicePage {
            total: self.devices.len(),
            matched: matched.len(),
            offset: q.offset,
            limit: q.limit,
            rows: matched.iter().skip(q.offset).take(q.limit).map(|d| &d.newest).collect(),
            histogram,
        }
    }
}

/// Values in the asked direction, devices without a value last whatever the direction.
fn by_value(x: Option<f64>, y: Option<f64>, descending: bool) -> Ordering {
    match (x, y) {
        (Some(x), Some(y)) if descending => y.total_cmp(&x),
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Whether `r` is a newer window of its device than `cur`: a later start, or the same start and final where
/// `cur` is live (the rule the page used to apply to the whole document).
fn is_newer(r: &AggregateRecord, cur: &AggregateRecord) -> bool {
    let (t, tc) = (parse_time_ms(&r.window_start), parse_time_ms(&cur.window_start));
    match (t, tc) {
        (Some(t), Some(tc)) => t > tc || (t == tc && r.is_final && !cur.is_final),
        (Some(_), None) => true,
        _ => false,
    }
}

/// An RFC 3339 time as epoch milliseconds; a time without a zone (`2024-11-03T14:30:00`, also with a space for
/// the `T`, as the seed's job writes) is UTC, as the job's own times are.
pub fn parse_time_ms(text: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .map(|t| t.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, start: &str, is_final: bool, temperature: f64) -> AggregateRecord {
        serde_json::from_value(serde_json::json!({
            "device_id": id, "window_start": start, "window_end": "2024-11-03T14:30:10Z", "count": 4,
            "avg_temperature": 0.0, "avg_humidity": 50.0, "min_battery": 0.0, "max_battery": 90.0,
            "final": is_final,
        }))
        .map(|mut r: AggregateRecord| {
            // Set here: JSON has no NaN.
            r.avg_temperature = temperature;
            r.min_battery = temperature;
            r
        })
        .unwrap()
    }

    fn table(records: Vec<AggregateRecord>) -> DeviceTable {
        DeviceTable::of(&LatestDoc {
            records,
            ..LatestDoc::default()
        })
    }

    fn ids(page: &DevicePage<'_>) -> Vec<String> {
        page.rows.iter().map(|r| r.device_id.clone()).collect()
    }

    #[test]
    fn the_newest_window_is_the_later_start_and_final_wins_a_tie() {
        let t = table(vec![
            record("b", "2024-11-03T14:30:00Z", false, 1.0),
            record("a", "2024-11-03T14:29:50Z", true, 2.0),
            record("a", "2024-11-03T14:30:00Z", false, 3.0),
            record("b", "2024-11-03T14:30:00", true, 4.0),
        ]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get("a").unwrap().newest.avg_temperature, 3.0);
        assert_eq!(
            t.get("b").unwrap().newest.avg_temperature,
            4.0,
            "zone-less UTC time, final wins the tie"
        );
        assert_eq!(t.live(), 1);
        let a: Vec<AggregateRecord> = serde_json::from_str(&t.get("a").unwrap().records_json).unwrap();
        assert_eq!(a.len(), 2, "both records of the device, in document order");
        assert!(t.get("c").is_none());
    }

    #[test]
    fn sorts_filter_and_pages() {
        let t = table(
            [("d1", 20.0), ("D2", 25.0), ("x3", 15.0), ("d4", f64::NAN), ("d5", 25.0)]
                .into_iter()
                .map(|(id, v)| record(id, "2024-11-03T14:30:00Z", false, v))
                .collect(),
        );
        let q = |sort: &str, reverse: bool| DeviceQuery {
            sort: DeviceSort::parse(sort).unwrap(),
            reverse,
            ..DeviceQuery::default()
        };
        assert_eq!(ids(&t.query(&q("id", false))), ["D2", "d1", "d4", "d5", "x3"]);
        assert_eq!(ids(&t.query(&q("id", true))), ["x3", "d5", "d4", "d1", "D2"]);
        // Hottest first, ties by id; the device without a value last in both directions.
        assert_eq!(ids(&t.query(&q("temperature", false))), ["D2", "d5", "d1", "x3", "d4"]);
        assert_eq!(ids(&t.query(&q("temperature", true))), ["x3", "d1", "D2", "d5", "d4"]);
        // Battery: lowest first.
        assert_eq!(ids(&t.query(&q("battery", false)))[0], "x3");
        let filtered = t.query(&DeviceQuery {
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
        assert_eq!(ids(&filtered), ["d5", "d1"]);
        assert_eq!(filtered.histogram.count + filtered.histogram.missing, 4);
        let past_the_end = t.query(&DeviceQuery {
            offset: 9,
            ..DeviceQuery::default()
        });
        assert!(past_the_end.rows.is_empty());
    }

    #[test]
    fn udf_and_session_metrics_read_their_values() {
        let mut r = record("a", "2024-11-03T14:29:18Z", true, 1.0);
        assert_eq!(Metric::SessionLength.value(&r), Some(52.0));
        assert_eq!(Metric::Udf("heat".into()).value(&r), None);
        r.udf.insert("heat".into(), serde_json::json!(27.5));
        r.udf.insert("comfort".into(), serde_json::json!("dry"));
        assert_eq!(Metric::Udf("heat".into()).value(&r), Some(27.5));
        assert_eq!(Metric::Udf("comfort".into()).value(&r), None, "text is no number");
    }

    #[test]
    fn query_parameters_are_checked() {
        let p = |pairs: &[(&str, &str)]| {
            DeviceQuery::from_params(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        };
        let q = p(&[
            ("sort", "udf:heat_index"),
            ("reverse", "true"),
            ("offset", "200"),
            ("limit", "50"),
        ])
        .unwrap();
        assert_eq!(q.sort, DeviceSort::By(Metric::Udf("heat_index".into())));
        assert!(q.reverse && q.offset == 200 && q.limit == 50);
        assert_eq!(p(&[("filter", "  dev ")]).unwrap().filter, "dev");
        for (pairs, needle) in [
            (vec![("sort", "colour")], "`sort` must be"),
            (vec![("sort", "udf:")], "`sort` must be"),
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
