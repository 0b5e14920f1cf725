//! The `sql` scenario: what a job written in SQL costs. First in process, where a shared machine's noise is
//! smallest: the compiled query's per-event work (`Query::read`: decode, CHECKs, `WHERE`, the inputs; then
//! `Query::fold` into the group's accumulators) over the same records, best of several passes, in ns per
//! event. Then on the replay benchmark: `dataflow --input FILE` (bounded, Parquet on) with each job, reported
//! with its ratio to the built-in job and its extra CPU per event. The jobs: the built-in one (no `--sql`), the
//! same as a file (`jobs/builtin.sql`, which must cost the same), twelve aggregates over the simulator's events
//! (no CHECKs), the built-in aggregates plus a `COUNT(DISTINCT temperature)` (a set of every distinct
//! reading per window), and the built-in aggregates with each reading joined, as of its event time, with a
//! device table of ten versions per device (`LEFT JOIN ... FOR SYSTEM_TIME AS OF`, read from a file): the join's
//! cost per event.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use dataflow::job::QuerySource;
use dataflow::join::versions::VersionStore;
use dataflow::messages::{GroupKey, RawRecord};
use dataflow::query::{NoUdfs, Query, Record};
use sql::agg::Acc;

use crate::ctx::Ctx;
use crate::input::InputSpec;
use crate::replay::Layout;
use crate::report::Row;
use crate::udf::{Variant, compare_variants};

/// The simulator's table, as the built-in job declares it without its CHECKs.
const TABLE: &str = "CREATE TABLE events (
    device_id VARCHAR(64) NOT NULL, ts BIGINT NOT NULL, temperature DOUBLE NOT NULL, humidity DOUBLE NOT NULL,
    battery DOUBLE NOT NULL, status TEXT NOT NULL, location VARCHAR(64) NOT NULL,
    event_time AS TO_TIMESTAMP_LTZ(ts, 3),
    WATERMARK FOR event_time AS event_time - INTERVAL '1' MINUTE
) WITH ('connector' = 'kafka', 'topic' = 'iot-metrics', 'format' = 'json');";

/// Twelve aggregates of every family.
const TWELVE: &str = "SELECT device_id, window_start, window_end,
    COUNT(*) AS n, SUM(temperature) AS t_sum, AVG(temperature) AS t_avg, AVG(humidity) AS h_avg,
    MIN(battery) AS b_min, MAX(battery) AS b_max, STDDEV_POP(temperature) AS t_sd, VAR_SAMP(humidity) AS h_var,
    FIRST_VALUE(temperature) AS t_first, LAST_VALUE(humidity) AS h_last,
    COUNT(*) FILTER (WHERE status = 'warn') AS warn_count, MAX(location) AS location
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(event_time), INTERVAL '10' SECOND))
GROUP BY device_id, window_start, window_end;";

/// The built-in job's aggregates and a distinct count of every reading.
const DISTINCT: &str = "SELECT device_id, window_start, window_end,
    COUNT(*) AS count, AVG(temperature) AS avg_temperature, AVG(humidity) AS avg_humidity,
    MIN(battery) AS min_battery, MAX(battery) AS max_battery, STDDEV_POP(temperature) AS stddev_temperature,
    COUNT(*) FILTER (WHERE status = 'warn') AS warn_count, COUNT(*) FILTER (WHERE status = 'error') AS error_count,
    COUNT(DISTINCT temperature) AS distinct_temperatures
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(event_time), INTERVAL '10' SECOND))
GROUP BY device_id, window_start, window_end;";

/// The built-in aggregates, each reading joined as of its event time with its device's row (`{devices}`: the
/// table's file).
const JOIN: &str = "CREATE TABLE devices (
    device_id VARCHAR(64), site TEXT, max_temperature DOUBLE, updated_at TIMESTAMP,
    PRIMARY KEY (device_id) NOT ENFORCED, WATERMARK FOR updated_at AS updated_at
) WITH ('connector' = 'file', 'path' = '{devices}', 'format' = 'json');
SELECT e.device_id, window_start, window_end,
    COUNT(*) AS count, AVG(e.temperature) AS avg_temperature, AVG(e.humidity) AS avg_humidity,
    MIN(e.battery) AS min_battery, MAX(e.battery) AS max_battery, STDDEV_POP(e.temperature) AS stddev_temperature,
    COUNT(*) FILTER (WHERE e.status = 'warn') AS warn_count, COUNT(*) FILTER (WHERE e.status = 'error') AS error_count,
    LAST_VALUE(d.site) AS site, COUNT(*) FILTER (WHERE e.temperature > d.max_temperature) AS over_limit
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(event_time), INTERVAL '10' SECOND)) AS e
LEFT JOIN devices FOR SYSTEM_TIME AS OF e.event_time AS d ON e.device_id = d.device_id
GROUP BY e.device_id, window_start, window_end;";

/// Versions per device in the join's table.
const VERSIONS_PER_DEVICE: u64 = 10;

/// The device table of `spec`'s fleet: every device's first row at the epoch, then [`VERSIONS_PER_DEVICE`] − 1
/// changes each, spread over the readings' time span, in time order (the file's byte ranges are the table's
/// partitions, each read in order).
fn devices_file(dir: &Path, spec: &InputSpec) -> Result<PathBuf> {
    let fleet = producer::sim::Fleet::new(spec.devices, spec.seed);
    let span_ms = (spec.events as f64 * 1000.0 / spec.rate) as u64;
    let start_ms = model::time::now_ms().saturating_sub(span_ms + 60_000);
    let sites = ["floor-1", "floor-2", "lab", "office"];
    let mut text = String::new();
    for k in 0..VERSIONS_PER_DEVICE {
        let at = if k == 0 {
            0
        } else {
            start_ms + span_ms * k / VERSIONS_PER_DEVICE
        };
        for (i, d) in fleet.devices().iter().enumerate() {
            let row = serde_json::json!({
                "device_id": d.id, "site": sites[(i + k as usize) % sites.len()],
                "max_temperature": 21.0 + ((i as u64 + k) % 8) as f64, "updated_at": at,
            });
            text.push_str(&row.to_string());
            text.push('\n');
        }
    }
    let path = dir.join(format!("devices-{}-{}.jsonl", spec.devices, spec.seed));
    std::fs::create_dir_all(dir)?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The `sql` scenario (see the module's doc).
pub fn sql(ctx: &Ctx, spec: &InputSpec, workers: usize, repeat: usize) -> Result<()> {
    let write = |name: &str, select: &str| -> Result<PathBuf> {
        let path = ctx.work.join(name);
        std::fs::create_dir_all(&ctx.work)?;
        std::fs::write(&path, format!("{TABLE}\n{select}\n")).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    let builtin = crate::ctx::workspace_root().join("jobs/builtin.sql");
    let jobs: Vec<(&str, Option<PathBuf>)> = vec![
        ("the built-in job", None),
        ("the built-in job as a file (jobs/builtin.sql)", Some(builtin)),
        ("twelve aggregates", Some(write("sql-twelve.sql", TWELVE)?)),
        (
            "the built-in aggregates + COUNT(DISTINCT temperature)",
            Some(write("sql-distinct.sql", DISTINCT)?),
        ),
        (
            "the built-in aggregates joined as of event time with a device table (LEFT JOIN)",
            Some(write(
                "sql-join.sql",
                &JOIN.replace("{devices}", &devices_file(&ctx.work, spec)?.display().to_string()),
            )?),
        ),
    ];
    let path = spec.jsonl(&ctx.work)?;
    in_process(ctx, spec, &path, &jobs, repeat)?;
    let variants = jobs
        .iter()
        .map(|(label, file)| Variant {
            label: format!("with {label}"),
            args: file
                .iter()
                .flat_map(|f| ["--sql".to_string(), f.display().to_string()])
                .collect(),
            prepare: false,
        })
        .collect::<Vec<_>>();
    compare_variants(
        ctx,
        "sql",
        spec,
        Layout { processes: 1, workers },
        repeat,
        &variants,
        "the built-in job",
    )
}

/// Records held in memory for the in-process passes.
const IN_PROCESS_RECORDS: usize = 500_000;

/// Each job's compiled query over the first records of `path`, in one thread: read, then fold into the group's
/// accumulators (one set per group: the window bookkeeping is the same for every job and left out).
fn in_process(ctx: &Ctx, spec: &InputSpec, path: &Path, jobs: &[(&str, Option<PathBuf>)], repeat: usize) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .take(IN_PROCESS_RECORDS)
        .collect();
    let signatures = dataflow::udf::UdfSources {
        dirs: Vec::new(),
        cache: ctx.work.join("udf-cache"),
    }
    .signatures()?;
    let mut base = None;
    for (label, file) in jobs {
        let source = match file {
            Some(f) => QuerySource::File(f.clone()),
            None => QuerySource::Builtin {
                window: model::WindowKind::Tumbling { size_ms: 10_000 },
                lateness_ms: 60_000,
                topic: "iot-metrics".into(),
            },
        };
        let query = dataflow::job::plan_query(&source, &signatures)?;
        let versions = table_of(&query)?;
        let load = crate::report::load_average();
        let mut best = f64::INFINITY;
        for _ in 0..repeat.max(3) {
            best = best.min(pass(&query, &versions, &lines));
        }
        let base_ns = *base.get_or_insert(best);
        ctx.record(Row::new(
            "sql",
            format!(
                "compiled query in process (read + fold), 1 thread, {label}; {} records of {}; best of {}",
                lines.len(),
                spec.describe(),
                repeat.max(3)
            ),
            format!(
                "{best:.0} ns per event ({:.3}x, {:+.0} ns the built-in job)",
                best / base_ns,
                best - base_ns
            ),
            load,
        ));
    }
    Ok(())
}

/// The versions of the table `query` joins (read from its file), empty without a join.
fn table_of(query: &Query) -> Result<VersionStore> {
    let mut store = VersionStore::new();
    let Some(sql::plan::Connector::File { path }) = query.job.join.as_ref().map(|j| &j.table.connector) else {
        return Ok(store);
    };
    let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let rules = model::Validation {
        now_ms: model::time::now_ms(),
        max_future_ms: u64::MAX / 4,
    };
    let mut row = Vec::new();
    for (offset, line) in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let raw = RawRecord {
            partition: 0,
            offset: offset as i64,
            key: None,
            value: Some(line),
            timestamp: None,
        };
        if let Ok(v) = query.read_version(&raw, rules, &NoUdfs, &mut row) {
            store.insert(v.key, v.time, v.row);
        }
    }
    Ok(store)
}

/// One pass of `query` over `lines` (meeting `versions` when it joins a table): ns per record. A malformed
/// record (the smoke input holds some on purpose) costs its read and is counted aside, as the job sends it to
/// the dead letters.
fn pass(query: &Query, versions: &VersionStore, lines: &[&[u8]]) -> f64 {
    let mut malformed = 0usize;
    let mut row = Vec::new();
    let mut groups: HashMap<GroupKey, Vec<Acc>> = HashMap::new();
    let now = model::time::now_ms();
    let started = Instant::now();
    for line in lines {
        let record = match query.read(Some(line), now, u64::MAX / 4, &NoUdfs, &mut row) {
            Ok(Record::Probe(p)) => {
                let version = versions.at(&p.key, p.ts).map(<[_]>::to_vec);
                query.join(p, version.as_deref(), &NoUdfs)
            }
            Ok(r) => Some(r),
            Err(_) => {
                malformed += 1;
                None
            }
        };
        if let Some(Record::Event(e)) = record {
            let accs = match groups.get_mut(&e.key) {
                Some(accs) => accs,
                None => groups.entry(e.key.clone()).or_insert_with(|| query.new_accs()),
            };
            query.fold(accs, &e.inputs, e.ts);
        }
    }
    let ns = started.elapsed().as_nanos() as f64 / lines.len() as f64;
    std::hint::black_box((&groups, malformed));
    ns
}
