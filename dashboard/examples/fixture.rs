//! Writes a dashboard fixture: `latest.json` for N devices (mixed live and final windows, tumbling or sessions,
//! fleet views, pipeline counters, optionally UDF columns) and a Parquet history in the dataflow's layout, plus an
//! optional JSON file with the history each device should show. With `--query`, the output of a query that is
//! not the seed's instead (the contract's plant sensors, by one key or two; `latest.json` with its query and
//! columns, the history in the contract's layout), the expected history by group label. Used by the browser test
//! (`tests/browser/run.sh`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use clap::Parser;

/// Writes a dashboard fixture folder.
#[derive(Parser)]
struct Args {
    /// Folder to fill (created if missing): gets latest.json and parquet/.
    #[arg(long)]
    out: PathBuf,
    /// Number of devices; the first ones have path-like, emoji and HTML-like ids.
    #[arg(long, default_value_t = 8)]
    devices: usize,
    /// Final windows of history per device; 0 writes no Parquet history (a large fleet's latest.json alone).
    #[arg(long, default_value_t = 60)]
    history_windows: u64,
    /// Also write the expected history per device to this JSON file.
    #[arg(long)]
    expected: Option<PathBuf>,
    /// Give the windows the UDF columns `heat_index`, `temperature_p90` (with nulls) and `comfort`: in
    /// latest.json, and in the newer of each device's two history files (the older one predates the UDFs, so
    /// its rows have no value for them).
    #[arg(long)]
    udfs: bool,
    /// Sessions (gap 5 s) of varying lengths instead of tumbling windows of 10 s, in latest.json and in the
    /// history.
    #[arg(long)]
    sessions: bool,
    /// The output of the contract's example query instead of the seed's: `sensor` (grouped by sensor_id) or
    /// `site-and-sensor` (by site, sensor_id); --devices is then the number of groups.
    #[arg(long)]
    query: Option<QueryKeys>,
}

/// The keys of the example query.
#[derive(Clone, Copy, clap::ValueEnum)]
enum QueryKeys {
    /// `GROUP BY sensor_id`.
    Sensor,
    /// `GROUP BY site, sensor_id`.
    SiteAndSensor,
}

/// Writes the example query's fixture: `latest.json` and, per group, `history_windows` final windows in two
/// files of its first key's folder (a site's folder holds all its sensors' rows); the expected rows by label.
fn query_fixture(args: &Args, keys: QueryKeys, now_ms: u64) -> anyhow::Result<()> {
    use support::sensors::{self, Keys};
    let keys = match keys {
        QueryKeys::Sensor => Keys::Sensor,
        QueryKeys::SiteAndSensor => Keys::SiteAndSensor,
    };
    let groups = sensors::sensors(args.devices, keys);
    let doc = sensors::latest_doc(keys, &groups, now_ms);
    let schema = sensors::schema(keys);
    let parquet = args.out.join(model::history::PARQUET_DIR);
    fs::create_dir_all(&parquet)?;
    support::write_doc(&args.out.join(model::latest::FILE_NAME), &doc);
    let mut expected = BTreeMap::new();
    let mut by_folder: BTreeMap<String, Vec<Vec<model::value::Value>>> = BTreeMap::new();
    for g in groups.iter().filter(|_| args.history_windows > 0) {
        let rows = sensors::history_rows(keys, g, now_ms, args.history_windows);
        let label = model::latest::label_of(&schema_key_texts(&schema, &rows[0]));
        expected.insert(
            label,
            rows.iter()
                .map(|r| sensors::history_json(&schema, r))
                .collect::<Vec<_>>(),
        );
        by_folder
            .entry(model::output::key_text(&rows[0][0]))
            .or_default()
            .extend(rows);
    }
    for rows in by_folder.values() {
        let half = rows.len() / 2;
        sensors::write_history_file(&parquet, &schema, &rows[..half], &support::part(1).file_name(), false);
        sensors::write_history_file(&parquet, &schema, &rows[half..], &support::part(2).file_name(), true);
    }
    if let Some(path) = &args.expected {
        fs::write(path, serde_json::to_vec(&expected)?)?;
    }
    println!(
        "fixture: {} groups of the example query ({} keys), {} history windows each, in {}",
        groups.len(),
        schema.key_count(),
        args.history_windows,
        args.out.display()
    );
    Ok(())
}

/// The key texts of a row of `schema`.
fn schema_key_texts(schema: &model::output::OutputSchema, row: &[model::value::Value]) -> Vec<String> {
    row[..schema.key_count()].iter().map(model::output::key_text).collect()
}

/// Device ids: a few that stress escaping and rendering (at fixed positions), then plain ones.
fn device_ids(n: usize) -> Vec<String> {
    let special = [(1, "../../etc/passwd"), (4, "\u{1F525}-sensor"), (6, "a/b c&d<i>x</i>")];
    (0..n)
        .map(|i| match special.iter().find(|(at, _)| *at == i) {
            Some((_, id)) => id.to_string(),
            None => format!("device-{:03x}{:03}", support::mix(i as u64) % 0xfff, i),
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let now_ms = model::time::now_ms();
    if let Some(keys) = args.query {
        return query_fixture(&args, keys, now_ms);
    }
    let ids = device_ids(args.devices);
    let parquet = args.out.join(model::history::PARQUET_DIR);
    fs::create_dir_all(&parquet)?;

    let windows = if args.sessions {
        support::Windows::Sessions
    } else {
        support::Windows::Tumbling
    };
    let doc = support::latest_doc_of(windows, &ids, now_ms, args.udfs);
    support::write_atomically(
        &args.out.join(model::latest::FILE_NAME),
        &serde_json::to_vec_pretty(&doc)?,
    );
    let udfs = if args.udfs { support::fixture_udfs() } else { Vec::new() };

    let mut expected = BTreeMap::new();
    let with_history = if args.history_windows > 0 { ids.len() } else { 0 };
    for (i, id) in ids.iter().enumerate().take(with_history) {
        let mut rows = match windows {
            support::Windows::Tumbling => support::history_rows(id, now_ms, args.history_windows),
            support::Windows::Sessions => support::session_rows(id, now_ms, args.history_windows),
        };
        // Two committed files per device, the newer written first, half of them carrying the device column.
        let half = rows.len() / 2;
        if args.udfs {
            for r in &mut rows[half..] {
                *r = support::with_udf_values(r.clone());
            }
        }
        let (old, new) = rows.split_at(half);
        let with_ids = i % 2 == 0;
        let newer = support::part(2).file_name();
        support::write_partition_file_with(&parquet, id, &newer, new, &udfs, with_ids);
        support::write_partition_file(&parquet, id, &support::part(1).file_name(), old, with_ids);
        if i == 0 {
            // In-progress files of an uncommitted checkpoint: never to be shown.
            let mut bogus = support::history_rows(id, now_ms, 3);
            for r in &mut bogus {
                r.avg_temperature = 99.0;
            }
            let hidden = support::part(3).in_progress_name();
            support::write_partition_file(&parquet, id, &hidden, &bogus, false);
            support::write_partition_file(&parquet, id, "_part-0004.parquet", &bogus, false);
        }
        let points: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut point = serde_json::json!({
                    "window_start": r.window_start,
                    "window_end": r.window_end,
                    "avg_temperature": r.avg_temperature,
                    "avg_humidity": r.avg_humidity,
                    "min_battery": r.min_battery,
                });
                // Each UDF's value where the row has one, else null (older file, or a null value).
                for u in &udfs {
                    let value = r
                        .udf
                        .get(&u.name)
                        .map_or(serde_json::Value::Null, model::UdfValue::to_json);
                    point[&u.name] = value;
                }
                point
            })
            .collect();
        expected.insert(id.clone(), points);
    }
    if let Some(path) = &args.expected {
        fs::write(path, serde_json::to_vec(&expected)?)?;
    }
    println!(
        "fixture: {} devices, {}, {} history windows each, {} UDF columns, in {}",
        ids.len(),
        windows.kind(),
        args.history_windows,
        udfs.len(),
        args.out.display()
    );
    Ok(())
}
