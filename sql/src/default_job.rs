//! The built-in job: the pipeline's original hard-coded job (10 s tumbling windows per device over the seed's
//! sensor events, with its fixed aggregates and validation rules) written as a job file, so that a user starts
//! from it (`dataflow sql --print-default`) and the dataflow runs it through the same planner as any other job.
//! Its outputs are exactly the original columns: `device_id, window_start, window_end, count, avg_temperature,
//! avg_humidity, min_battery, max_battery, stddev_temperature, warn_count, error_count`, then one column per UDF.
//! The device's location is not an output: the dataflow carries it beside the windows for the fleet views.

use std::fmt::Write;

use crate::function::FunctionKind;
use crate::plan::WindowSpec;

/// The choices the command line makes for the built-in job.
#[derive(Clone, Debug, PartialEq)]
pub struct DefaultQuery {
    /// Window kind and sizes.
    pub window: WindowSpec,
    /// The watermark's lateness, ms.
    pub lateness_ms: u64,
    /// The Kafka topic of sensor events.
    pub topic: String,
    /// UDF columns, appended in order.
    pub udf_columns: Vec<DefaultUdf>,
}

impl Default for DefaultQuery {
    /// The command line's defaults: 10 s tumbling windows, 1 minute of lateness, topic `iot-metrics`.
    fn default() -> DefaultQuery {
        DefaultQuery {
            window: WindowSpec::Tumble { size_ms: 10_000 },
            lateness_ms: 60_000,
            topic: "iot-metrics".to_string(),
            udf_columns: Vec::new(),
        }
    }
}

/// A UDF column of the built-in job: the function, called with its parameters bound by name. A scalar UDF's
/// parameters name window columns (`count`, `avg_temperature`, `avg_humidity`, `min_battery`, `max_battery`,
/// `stddev_temperature`, `warn_count`, `error_count`, `window_start`, `window_end` as epoch ms, `device_id`,
/// `location`: the window's last location by event time); an aggregate UDF's parameters name event fields.
#[derive(Clone, Debug, PartialEq)]
pub struct DefaultUdf {
    /// The function's name, also the column's.
    pub name: String,
    /// Scalar or aggregate.
    pub kind: FunctionKind,
    /// The parameter names, in order.
    pub params: Vec<String>,
}

/// The SQL a window column of the original job stands for, as a scalar UDF's argument.
fn window_column(param: &str) -> String {
    match param {
        "count" => "COUNT(*)".into(),
        "avg_temperature" => "AVG(temperature)".into(),
        "avg_humidity" => "AVG(humidity)".into(),
        "min_battery" => "MIN(battery)".into(),
        "max_battery" => "MAX(battery)".into(),
        "stddev_temperature" => "STDDEV_POP(temperature)".into(),
        "warn_count" => "COUNT(*) FILTER (WHERE status = 'warn')".into(),
        "error_count" => "COUNT(*) FILTER (WHERE status = 'error')".into(),
        "window_start" | "window_end" => format!("CAST({param} AS BIGINT)"),
        "location" => "LAST_VALUE(location)".into(),
        // `device_id`, and any other name, as written: the planner names what is wrong with it.
        other => other.into(),
    }
}

/// An interval literal of `ms` in the largest unit that divides it.
pub fn interval(ms: u64) -> String {
    for (unit, name) in [
        (86_400_000, "DAY"),
        (3_600_000, "HOUR"),
        (60_000, "MINUTE"),
        (1_000, "SECOND"),
    ] {
        if ms > 0 && ms.is_multiple_of(unit) {
            return format!("INTERVAL '{}' {name}", ms / unit);
        }
    }
    format!("INTERVAL '{ms}' MILLISECOND")
}

/// The built-in job's text for `opts`.
pub fn default_job_sql(opts: &DefaultQuery) -> String {
    let watermark = if opts.lateness_ms == 0 {
        "event_time".to_string()
    } else {
        format!("event_time - {}", interval(opts.lateness_ms))
    };
    let topic = opts.topic.replace('\'', "''");
    let window = match opts.window {
        WindowSpec::Tumble { size_ms } => {
            format!("TUMBLE(TABLE events, DESCRIPTOR(event_time), {})", interval(size_ms))
        }
        WindowSpec::Hop { slide_ms, size_ms } => format!(
            "HOP(TABLE events, DESCRIPTOR(event_time), {}, {})",
            interval(slide_ms),
            interval(size_ms)
        ),
        WindowSpec::Session { gap_ms } => {
            format!("SESSION(TABLE events, DESCRIPTOR(event_time), {})", interval(gap_ms))
        }
    };
    let mut sql = format!(
        "-- The built-in job: the sensor events of the IoT simulator, aggregated per device and window.
-- Each CHECK's name is the dead-letter reason of a record that breaks it.
CREATE TABLE events (
    device_id   VARCHAR(64) NOT NULL,
    ts          BIGINT NOT NULL CONSTRAINT out_of_range CHECK (ts >= 0),
    temperature DOUBLE NOT NULL CONSTRAINT out_of_range CHECK (temperature BETWEEN -60 AND 150),
    humidity    DOUBLE NOT NULL CONSTRAINT out_of_range CHECK (humidity BETWEEN 0 AND 100),
    battery     DOUBLE NOT NULL CONSTRAINT out_of_range CHECK (battery BETWEEN 0 AND 100),
    status      TEXT NOT NULL CONSTRAINT bad_status CHECK (status IN ('ok', 'warn', 'error')),
    location    VARCHAR(64) NOT NULL CONSTRAINT bad_string CHECK (location <> ''),
    event_time  AS TO_TIMESTAMP_LTZ(ts, 3),   -- ts is epoch milliseconds
    WATERMARK FOR event_time AS {watermark}
) WITH (
    'connector' = 'kafka',
    'topic' = '{topic}',
    'format' = 'json'
);

SELECT device_id, window_start, window_end,
       COUNT(*) AS count,
       AVG(temperature) AS avg_temperature,
       AVG(humidity) AS avg_humidity,
       MIN(battery) AS min_battery,
       MAX(battery) AS max_battery,
       STDDEV_POP(temperature) AS stddev_temperature,
       COUNT(*) FILTER (WHERE status = 'warn') AS warn_count,
       COUNT(*) FILTER (WHERE status = 'error') AS error_count"
    );
    for udf in &opts.udf_columns {
        let args: Vec<String> = match udf.kind {
            FunctionKind::Scalar => udf.params.iter().map(|p| window_column(p)).collect(),
            FunctionKind::Aggregate => udf.params.clone(),
        };
        let _ = write!(sql, ",\n       {}({}) AS {}", udf.name, args.join(", "), udf.name);
    }
    let _ = write!(
        sql,
        "\nFROM TABLE({window})\nGROUP BY device_id, window_start, window_end;\n"
    );
    sql
}
