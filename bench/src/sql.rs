//! The `sql` scenario: what a job written in SQL costs on the replay benchmark. `dataflow --input FILE` (bounded,
//! Parquet on) is timed with the built-in job (no `--sql`), with the same job as a file (`jobs/builtin.sql`, which
//! must cost the same), with twelve aggregates over the simulator's events, and with the built-in aggregates plus
//! a `COUNT(DISTINCT temperature)` (a set of every distinct reading per window); each is reported with its ratio
//! to the built-in job and its extra CPU per event.

use anyhow::{Context, Result};

use crate::ctx::Ctx;
use crate::input::InputSpec;
use crate::replay::Layout;
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

/// The `sql` scenario (see the module's doc).
pub fn sql(ctx: &Ctx, spec: &InputSpec, workers: usize, repeat: usize) -> Result<()> {
    let write = |name: &str, select: &str| -> Result<String> {
        let path = ctx.work.join(name);
        std::fs::create_dir_all(&ctx.work)?;
        std::fs::write(&path, format!("{TABLE}\n{select}\n")).with_context(|| format!("writing {}", path.display()))?;
        Ok(path.display().to_string())
    };
    let builtin = crate::ctx::workspace_root()
        .join("jobs/builtin.sql")
        .display()
        .to_string();
    let variants = [
        ("the built-in job", None),
        ("the built-in job as a file (jobs/builtin.sql)", Some(builtin)),
        ("twelve aggregates", Some(write("sql-twelve.sql", TWELVE)?)),
        (
            "the built-in aggregates + COUNT(DISTINCT temperature)",
            Some(write("sql-distinct.sql", DISTINCT)?),
        ),
    ]
    .into_iter()
    .map(|(label, file)| Variant {
        label: format!("with {label}"),
        args: file.map(|f| vec!["--sql".to_string(), f]).unwrap_or_default(),
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
