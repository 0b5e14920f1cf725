//! The `history` scenario: the dashboard's history reader over one device with many files, as a long-running job
//! leaves them before compaction (one file per checkpoint). Timed in process through
//! `dashboard::history::read_history` (the `/api/history` route adds only its JSON): the first request, which
//! reads every file's footer, the requests after it (the spans cached by file name, size and time), and, for
//! comparison, requests without the cache (every footer read each time, as before the cache); then the same
//! history compacted by `dataflow::compact::offline` (its time, and the reader over the day files).

use std::fs::File;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dashboard::history::{HistoryQuery, SpanCache, read_history};
use model::Aggregate;
use model::history::{PARQUET_DIR, PartName, schema, to_batch};
use model::partition::partition_dir_name;
use parquet::arrow::ArrowWriter;

use crate::ctx::Ctx;
use crate::report::{Row, load_average};

/// Window length of the generated history, ms.
const WINDOW_MS: u64 = 10_000;

/// Parameters of the `history` scenario.
pub struct HistoryRun {
    /// Files of the device.
    pub files: usize,
    /// Windows per file.
    pub rows_per_file: usize,
    /// Rows asked for (the page asks for its history limit).
    pub limit: usize,
    /// Timed requests of each kind.
    pub repeat: usize,
}

/// The `history` scenario.
pub fn history(ctx: &Ctx, run: &HistoryRun) -> Result<()> {
    let dir = ctx.scratch("history")?;
    let root = dir.join(PARQUET_DIR);
    let device = "device-000001";
    let folder = root.join(partition_dir_name(device));
    std::fs::create_dir_all(&folder)?;
    let start =
        model::time::now_ms() - model::time::now_ms() % WINDOW_MS - (run.files * run.rows_per_file) as u64 * WINDOW_MS;
    for f in 0..run.files {
        let rows: Vec<Aggregate> = (0..run.rows_per_file)
            .map(|r| window(device, start + ((f * run.rows_per_file + r) as u64) * WINDOW_MS))
            .collect();
        let name = PartName {
            checkpoint: f as u64 + 1,
            run: 1,
            worker: 0,
            seq: f as u64 + 1,
        };
        let path = folder.join(name.file_name());
        let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut writer = ArrowWriter::try_new(file, schema(), None)?;
        writer.write(&to_batch(&rows)?)?;
        writer.close()?;
    }
    let query = HistoryQuery {
        key: vec![device.to_string()],
        from_ms: None,
        to_ms: None,
        limit: run.limit,
    };
    let load = load_average();
    let time = |spans: &SpanCache| -> Result<(Duration, usize)> {
        let t = Instant::now();
        let h = read_history(&root, &model::latest::seed_schema(&[]), &query, spans).context("history request")?;
        Ok((t.elapsed(), h.rows.len()))
    };
    let cache = SpanCache::default();
    let (first, rows) = time(&cache)?;
    let mut warm = Vec::new();
    let mut cold = Vec::new();
    for _ in 0..run.repeat.max(1) {
        warm.push(time(&cache)?.0);
        cold.push(time(&SpanCache::default())?.0);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (warm_median, cold_median) = (median(&mut warm), median(&mut cold));
    ctx.record(Row::new(
        "history",
        format!(
            "dashboard history reader, one device with {} files of {} windows, limit {}; {} requests of each kind",
            run.files,
            run.rows_per_file,
            run.limit,
            run.repeat.max(1)
        ),
        format!(
            "first request {:.1} ms; then {:.2} ms median (spans cached); without the cache {:.1} ms median \
             ({:.0}x); {rows} rows answered",
            ms(first),
            ms(warm_median),
            ms(cold_median),
            ms(cold_median) / ms(warm_median).max(1e-6)
        ),
        load,
    ));

    // The same history compacted (every file is older than an hour): its day files, then the reader over them.
    let t = Instant::now();
    let compacted = dataflow::compact::offline(&dir, Duration::from_secs(3_600)).context("compaction")?;
    let compaction = t.elapsed();
    let names: Vec<String> = std::fs::read_dir(&folder)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    let day_files = names.iter().filter(|n| n.starts_with("day-")).count();
    let after = SpanCache::default();
    let (first_after, rows_after) = time(&after)?;
    let mut warm_after: Vec<Duration> = (0..run.repeat.max(1))
        .map(|_| time(&after).map(|t| t.0))
        .collect::<Result<_>>()?;
    anyhow::ensure!(
        rows_after == rows,
        "compaction changed the answer: {rows} rows before, {rows_after} after"
    );
    ctx.record(Row::new(
        "history",
        format!(
            "`dataflow compact --older-than 1h` of that device's {} files ({} windows taken), then the reader",
            run.files, compacted.rows
        ),
        format!(
            "compaction {:.0} ms ({:.0} files/s): {} day files and the last hour's {} files left; then first \
             request {:.1} ms, {:.2} ms median; the same {rows} rows answered",
            ms(compaction),
            compacted.inputs as f64 / compaction.as_secs_f64().max(1e-9),
            day_files,
            names.len() - day_files,
            ms(first_after),
            ms(median(&mut warm_after))
        ),
        load,
    ));
    Ok(())
}

fn window(device: &str, start: u64) -> Aggregate {
    Aggregate {
        device_id: device.to_string(),
        window_start: start,
        window_end: start + WINDOW_MS,
        count: 40,
        avg_temperature: 22.5,
        avg_humidity: 50.0,
        min_battery: 80.0,
        max_battery: 81.0,
        stddev_temperature: 0.4,
        warn_count: 1,
        error_count: 0,
        udf: Default::default(),
    }
}
