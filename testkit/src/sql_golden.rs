//! Golden expectations of a SQL job, computed by DuckDB apart from the job (Arroyo's golden-output SQL tests):
//! a test writes the events the job read, states the expected rows as a DuckDB query (by hand or with
//! [`ExpectedQuery`]), and `testkit/golden_sql.py` compares them exactly with the job's Parquet history, the final
//! records of its `latest.json` or a dump of its Kafka output, printing every missing, extra, duplicated and
//! differing row. The script runs in the notebooks' virtual environment (duckdb, pyarrow), built on first use.
//!
//! ```no_run
//! use testkit::sql_golden::{self as g, Against, ExpectedQuery, Golden, Window};
//! # let (dir, out) = (std::path::Path::new("/tmp/t"), std::path::Path::new("/tmp/t/out"));
//! # let events: Vec<serde_json::Value> = vec![];
//! let query = ExpectedQuery::new("readings", "event_time", Window::Tumble { size_ms: 10_000 })
//!     .key("sensor_id")
//!     .value("n", g::count_star())
//!     .value("avg_pressure", g::avg("pressure"))
//!     .value("site", g::last_value("site"));
//! Golden::new(dir, "readings", "sensor_id TEXT NOT NULL, site TEXT, event_time TIMESTAMP NOT NULL, pressure DOUBLE", query.sql())
//!     .events(&events)
//!     .assert_equal(&[Against::History(out), Against::Latest(out)]);
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::Consumed;

/// The harness script.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden_sql.py")
}

/// The repository's root folder.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// How long building the virtual environment may take.
const VENV_BUILD_LIMIT: Duration = Duration::from_secs(20 * 60);

/// The notebooks' virtual environment's python (`$IOT_CACHE/notebooks-venv/bin/python`, `IOT_CACHE` defaulting to
/// `~/.cache/iot-pipeline`), which has duckdb and pyarrow. When it is missing it is built once per test process
/// with `bash notebooks/test.sh --venv-only`; panics naming the fix when that fails.
pub fn venv_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let cache = std::env::var_os("IOT_CACHE").map(PathBuf::from).unwrap_or_else(|| {
                let home = std::env::var_os("HOME").expect("HOME or IOT_CACHE must be set");
                Path::new(&home).join(".cache/iot-pipeline")
            });
            let python = cache.join("notebooks-venv/bin/python");
            if !python.exists() {
                let mut build = Command::new("bash");
                build
                    .arg(repo_root().join("notebooks/test.sh"))
                    .arg("--venv-only")
                    .env("IOT_CACHE", &cache);
                let out = crate::run(&mut build, VENV_BUILD_LIMIT);
                assert!(
                    out.status.success() && python.exists(),
                    "the notebooks' virtual environment {} is missing and building it failed ({}); build it with \
                     `bash notebooks/test.sh --venv-only` (needs python3 with venv and pip, and PyPI):\n{}{}",
                    python.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            python
        })
        .clone()
}

/// The window kind of an expected query (sizes in ms), by the rules of `docs/semantics.md`, "Window kinds".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// `[k·size, (k+1)·size)`.
    Tumble {
        /// Window size.
        size_ms: u64,
    },
    /// A window of `size` at every multiple of `slide` (from 0): a row per window an event falls in.
    Hop {
        /// Slide.
        slide_ms: u64,
        /// Window size.
        size_ms: u64,
    },
    /// Per key, a new session when the next event is `gap` or more after the last; a session is
    /// `[first, last + gap)`.
    Session {
        /// Gap.
        gap_ms: u64,
    },
}

/// An aggregate of an expected query, as DuckDB SQL. Inside an [`ExpectedQuery`], `__t` is the row's event time in
/// epoch ms and `__seq` its line in the events file (its arrival order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agg {
    call: String,
    filters: Vec<String>,
}

impl Agg {
    /// Any aggregate call, e.g. `Agg::call("sum(co2 / 1000.0)")`.
    pub fn call(call: impl Into<String>) -> Agg {
        Agg {
            call: call.into(),
            filters: Vec::new(),
        }
    }

    /// `FILTER (WHERE condition)`: only rows where it is TRUE reach the aggregate.
    pub fn filter(mut self, condition: impl Into<String>) -> Agg {
        self.filters.push(condition.into());
        self
    }
}

impl fmt::Display for Agg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.call)?;
        if !self.filters.is_empty() {
            let all: Vec<String> = self.filters.iter().map(|c| format!("({c})")).collect();
            write!(f, " FILTER (WHERE {})", all.join(" AND "))?;
        }
        Ok(())
    }
}

/// `COUNT(*)`.
pub fn count_star() -> Agg {
    Agg::call("count(*)")
}

/// `COUNT(x)`: non-NULL values.
pub fn count(x: &str) -> Agg {
    Agg::call(format!("count({x})"))
}

/// `COUNT(DISTINCT x)`.
pub fn count_distinct(x: &str) -> Agg {
    Agg::call(format!("count(DISTINCT {x})"))
}

/// `SUM(x)` (DuckDB widens a BIGINT sum; the harness compares it as an integer).
pub fn sum(x: &str) -> Agg {
    Agg::call(format!("sum({x})"))
}

/// `AVG(x)`.
pub fn avg(x: &str) -> Agg {
    Agg::call(format!("avg({x})"))
}

/// `MIN(x)`.
pub fn min(x: &str) -> Agg {
    Agg::call(format!("min({x})"))
}

/// `MAX(x)`.
pub fn max(x: &str) -> Agg {
    Agg::call(format!("max({x})"))
}

/// `STDDEV_POP(x)`.
pub fn stddev_pop(x: &str) -> Agg {
    Agg::call(format!("stddev_pop({x})"))
}

/// `STDDEV_SAMP(x)`: NULL for one value.
pub fn stddev_samp(x: &str) -> Agg {
    Agg::call(format!("stddev_samp({x})"))
}

/// `FIRST_VALUE(x)`: the non-NULL value of the earliest row by event time, the earlier arrival on a tie.
pub fn first_value(x: &str) -> Agg {
    Agg::call(format!("arg_min({x}, (__t, __seq))")).filter(format!("{x} IS NOT NULL"))
}

/// `LAST_VALUE(x)`: the non-NULL value of the latest row by event time, the later arrival on a tie.
pub fn last_value(x: &str) -> Agg {
    Agg::call(format!("arg_max({x}, (__t, __seq))")).filter(format!("{x} IS NOT NULL"))
}

/// A job's windowed `SELECT` restated in DuckDB SQL: `WHERE` on the records, then the window rows, then
/// `GROUP BY keys, window` with the values and `HAVING`. Its columns are the job's output columns: the keys,
/// `window_start`, `window_end` (TIMESTAMP), then the values in order.
#[derive(Clone, Debug)]
pub struct ExpectedQuery {
    table: String,
    time: String,
    window: Window,
    keys: Vec<String>,
    filter: Option<String>,
    values: Vec<(String, String)>,
    having: Option<String>,
}

impl ExpectedQuery {
    /// A query over `table` with the event time in the TIMESTAMP column (or expression) `time`.
    pub fn new(table: &str, time: &str, window: Window) -> ExpectedQuery {
        ExpectedQuery {
            table: table.to_string(),
            time: time.to_string(),
            window,
            keys: Vec::new(),
            filter: None,
            values: Vec::new(),
            having: None,
        }
    }

    /// The next group key (a column of the table).
    pub fn key(mut self, column: &str) -> ExpectedQuery {
        self.keys.push(column.to_string());
        self
    }

    /// `WHERE condition` on the records, before they are windowed (a record that fails it joins no session).
    pub fn filter(mut self, condition: &str) -> ExpectedQuery {
        self.filter = Some(condition.to_string());
        self
    }

    /// The next value column: `expression AS name` (an [`Agg`] or any expression of aggregates).
    pub fn value(mut self, name: &str, expression: impl fmt::Display) -> ExpectedQuery {
        self.values.push((expression.to_string(), name.to_string()));
        self
    }

    /// `HAVING condition` (aggregates, e.g. `format!("{} >= 2", count_star())`).
    pub fn having(mut self, condition: impl fmt::Display) -> ExpectedQuery {
        self.having = Some(condition.to_string());
        self
    }

    /// The query's text.
    pub fn sql(&self) -> String {
        assert!(!self.keys.is_empty(), "an expected query needs a key");
        let keys: Vec<String> = self.keys.iter().map(|k| quote(k)).collect();
        let keys = keys.join(", ");
        let filter = self.filter.as_ref().map_or(String::new(), |c| format!(" WHERE {c}"));
        let mut sql = format!(
            "WITH __in AS (SELECT *, epoch_ms({}) AS __t FROM {}{filter}),\n",
            self.time,
            quote(&self.table)
        );
        sql += &match self.window {
            Window::Tumble { size_ms } => {
                format!(
                    "__w AS (SELECT *, __t - __t % {size_ms} AS __ws, __t - __t % {size_ms} + {size_ms} AS __we FROM __in)\n"
                )
            }
            // Window starts k·slide with start ≤ t < start + size and k ≥ 0 (DuckDB's `//` truncates, hence
            // the CASE for t < size).
            Window::Hop { slide_ms, size_ms } => format!(
                "__hops AS (SELECT *, unnest(range(CASE WHEN __t >= {size_ms} THEN (__t - {size_ms}) // {slide_ms} + 1 \
                 ELSE 0 END, __t // {slide_ms} + 1)) AS __k FROM __in),\n\
                 __w AS (SELECT *, __k * {slide_ms} AS __ws, __k * {slide_ms} + {size_ms} AS __we FROM __hops)\n"
            ),
            Window::Session { gap_ms } => format!(
                "__gaps AS (SELECT *, CASE WHEN __t - lag(__t) OVER (PARTITION BY {keys} ORDER BY __t, __seq) < {gap_ms} \
                 THEN 0 ELSE 1 END AS __new FROM __in),\n\
                 __s AS (SELECT *, sum(__new) OVER (PARTITION BY {keys} ORDER BY __t, __seq ROWS UNBOUNDED PRECEDING) \
                 AS __sid FROM __gaps),\n\
                 __w AS (SELECT *, min(__t) OVER (PARTITION BY {keys}, __sid) AS __ws, \
                 max(__t) OVER (PARTITION BY {keys}, __sid) + {gap_ms} AS __we FROM __s)\n"
            ),
        };
        sql += &format!("SELECT {keys}, epoch_ms(__ws) AS window_start, epoch_ms(__we) AS window_end");
        for (expression, name) in &self.values {
            sql += &format!(",\n    {expression} AS {}", quote(name));
        }
        sql += &format!("\nFROM __w GROUP BY {keys}, __ws, __we");
        if let Some(having) = &self.having {
            sql += &format!(" HAVING {having}");
        }
        sql + &format!(" ORDER BY {keys}, window_start")
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What the expected rows are compared with.
#[derive(Clone, Copy, Debug)]
pub enum Against<'a> {
    /// Every row of the job's Parquet history, `<out>/parquet`.
    History(&'a Path),
    /// The final records of `<out>/latest.json`: each group's last window.
    Latest(&'a Path),
    /// A dump of the Kafka output: JSON lines of record values (every row).
    Kafka(&'a Path),
}

/// The harness's verdict.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// Its exit status: 0 equal, 1 a difference, 2 it could not check (`None`: killed).
    pub status: Option<i32>,
    /// What it printed: the counts and every difference.
    pub report: String,
    /// What it printed on stderr (why it could not check).
    pub errors: String,
}

impl Verdict {
    /// The outputs hold exactly the expected rows.
    pub fn is_equal(&self) -> bool {
        self.status == Some(0)
    }

    /// The check ran and found a difference.
    pub fn is_different(&self) -> bool {
        self.status == Some(1)
    }
}

/// One golden check: the table's columns, the events, the expected query and the options of the comparison.
#[derive(Clone, Debug)]
pub struct Golden {
    dir: PathBuf,
    table: String,
    columns: String,
    query: String,
    keys: Vec<String>,
    skip_invalid: bool,
    allow_extra_columns: bool,
    limit: Duration,
    versions: Option<(String, String)>,
}

impl Golden {
    /// A check in `dir` (which gets `events.jsonl` and `expected.sql`) of `query` (DuckDB SQL) over `table` with
    /// `columns` (as in the job's `CREATE TABLE`, without CHECKs: `sensor_id TEXT NOT NULL, event_time TIMESTAMP,
    /// ...`; `name AS <DuckDB expression>` adds a computed column, e.g. `event_time AS epoch_ms(ts)`).
    pub fn new(dir: &Path, table: &str, columns: &str, query: impl Into<String>) -> Golden {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        Golden {
            dir: dir.to_path_buf(),
            table: table.to_string(),
            columns: columns.to_string(),
            query: query.into(),
            keys: Vec::new(),
            skip_invalid: false,
            allow_extra_columns: false,
            limit: Duration::from_secs(180),
            versions: None,
        }
    }

    /// The versions of a joined table (`versions.jsonl`, one row per line) as table `table` with `columns`, for
    /// an expected query with DuckDB's `ASOF JOIN`.
    pub fn versions(mut self, table: &str, columns: &str, rows: &[serde_json::Value]) -> Golden {
        let path = self.dir.join("versions.jsonl");
        let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        self.versions = Some((table.to_string(), columns.to_string()));
        self
    }

    /// The key columns, when they are not the query's columns before `window_start`.
    pub fn keys(mut self, keys: &[&str]) -> Golden {
        self.keys = keys.iter().map(|k| k.to_string()).collect();
        self
    }

    /// Records that break the table's rules are left out (as the job dead-letters them) instead of stopping the
    /// check.
    pub fn skip_invalid(mut self) -> Golden {
        self.skip_invalid = true;
        self
    }

    /// Columns the job wrote but the query lacks are not a difference.
    pub fn allow_extra_columns(mut self) -> Golden {
        self.allow_extra_columns = true;
        self
    }

    /// How long one run of the harness may take (180 s).
    pub fn time_limit(mut self, limit: Duration) -> Golden {
        self.limit = limit;
        self
    }

    /// The events file.
    pub fn events_path(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }

    /// Writes the events the job read, one JSON object per line.
    pub fn events(self, records: &[serde_json::Value]) -> Golden {
        let lines = records.iter().map(|r| serde_json::to_vec(r).expect("JSON"));
        self.event_lines(lines)
    }

    /// Writes the events the job read as the bytes produced to Kafka, one record per line.
    pub fn event_lines<L: AsRef<[u8]>>(self, lines: impl IntoIterator<Item = L>) -> Golden {
        let path = self.events_path();
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display())),
        );
        for line in lines {
            let line = line.as_ref();
            assert!(
                !line.contains(&b'\n'),
                "an event holds a line break: {}",
                String::from_utf8_lossy(line)
            );
            file.write_all(line)
                .and_then(|_| file.write_all(b"\n"))
                .expect("writing events");
        }
        file.flush().expect("writing events");
        self
    }

    /// Writes the values of the records read from the job's topic, in (partition, offset) order, leaving out
    /// those at `excluded` (partition, offset), e.g. the dead letters' ([`dead_letter_positions`]). A tombstone that
    /// is not excluded fails the test: it is never an event.
    pub fn consumed(self, records: &[Consumed], excluded: &BTreeSet<(i32, i64)>) -> Golden {
        let mut kept: Vec<&Consumed> = records
            .iter()
            .filter(|r| !excluded.contains(&(r.partition, r.offset)))
            .collect();
        kept.sort_by_key(|r| (r.partition, r.offset));
        let lines = kept.into_iter().map(|r| {
            r.value
                .clone()
                .unwrap_or_else(|| panic!("tombstone at {}:{} is not excluded", r.partition, r.offset))
        });
        self.event_lines(lines)
    }

    /// Runs the harness against `against` and returns its verdict (panics if it does not finish in time).
    pub fn check(&self, against: &[Against]) -> Verdict {
        assert!(!against.is_empty(), "nothing to compare with");
        let query_file = self.dir.join("expected.sql");
        std::fs::write(&query_file, &self.query).expect("writing the expected query");
        let mut cmd = Command::new(venv_python());
        cmd.arg(script())
            .arg("--events")
            .arg(self.events_path())
            .args(["--columns", &self.columns, "--table", &self.table])
            .arg("--query-file")
            .arg(&query_file);
        if !self.keys.is_empty() {
            cmd.args(["--keys", &self.keys.join(",")]);
        }
        if let Some((table, columns)) = &self.versions {
            cmd.arg("--versions").arg(self.dir.join("versions.jsonl"));
            cmd.args(["--versions-table", table, "--versions-columns", columns]);
        }
        if self.skip_invalid {
            cmd.arg("--skip-invalid");
        }
        if self.allow_extra_columns {
            cmd.arg("--allow-extra-columns");
        }
        for a in against {
            match a {
                Against::History(out) => cmd.arg("--history").arg(out),
                Against::Latest(out) => cmd.arg("--latest").arg(out),
                Against::Kafka(dump) => cmd.arg("--kafka").arg(dump),
            };
        }
        let out = crate::run(&mut cmd, self.limit);
        Verdict {
            status: out.status.code(),
            report: String::from_utf8_lossy(&out.stdout).into_owned(),
            errors: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts that every target holds exactly the expected rows; the failure shows the harness's report.
    pub fn assert_equal(&self, against: &[Against]) {
        let v = self.check(against);
        assert!(
            v.is_equal(),
            "golden check of {:?} failed (exit {:?}):\n{}{}\nexpected query:\n{}",
            against,
            v.status,
            v.report,
            v.errors,
            self.query
        );
    }
}

/// Writes a dump of a Kafka output topic's records for [`Against::Kafka`]: their values, one per line.
pub fn write_kafka_dump(path: &Path, records: &[Consumed]) {
    let mut text = Vec::new();
    for r in records {
        let value = r
            .value
            .as_deref()
            .unwrap_or_else(|| panic!("tombstone at {}:{}", r.partition, r.offset));
        text.extend_from_slice(value);
        text.push(b'\n');
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// The (partition, offset) of every dead letter in `dir`, late and bad alike.
pub fn dead_letter_positions(dir: &Path) -> BTreeSet<(i32, i64)> {
    crate::golden::dead_letters(dir)
        .into_iter()
        .map(|(_, partition, offset)| (partition, offset))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_of_an_aggregate_are_anded() {
        let a = last_value("site").filter("pressure > 1");
        assert_eq!(
            a.to_string(),
            "arg_max(site, (__t, __seq)) FILTER (WHERE (site IS NOT NULL) AND (pressure > 1))"
        );
        assert_eq!(count_star().to_string(), "count(*)");
    }

    #[test]
    fn a_query_lists_keys_bounds_and_values_in_order() {
        let q = ExpectedQuery::new("readings", "event_time", Window::Tumble { size_ms: 10_000 })
            .key("site")
            .key("sensor_id")
            .value("n", count_star())
            .having(format!("{} > 1", count_star()))
            .sql();
        assert!(
            q.contains("SELECT \"site\", \"sensor_id\", epoch_ms(__ws) AS window_start"),
            "{q}"
        );
        assert!(q.contains("count(*) AS \"n\""), "{q}");
        assert!(q.contains("HAVING count(*) > 1"), "{q}");
    }
}
