//! The planner through the public API: every construct of the dialect plans to the expected plan, and every
//! error names its fix and points at the offending line and column.

use sql::plan::{AggFunc, Connector, OutputRole, StartupMode, WindowSpec};
use sql::{DataType, Function, FunctionKind, Job, SqlError, plan_job};

const TABLE: &str = "CREATE TABLE readings (
    sensor_id  VARCHAR(64) NOT NULL,
    event_time TIMESTAMP NOT NULL,
    pressure   DOUBLE,
    co2        BIGINT,
    ok         BOOLEAN,
    ts_ms      BIGINT,
    location   TEXT,
    t          AS TO_TIMESTAMP_LTZ(ts_ms, 3),          -- computed column (epoch ms)
    WATERMARK FOR event_time AS event_time - INTERVAL '30' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'plant-sensors', 'format' = 'json',
        'properties.bootstrap.servers' = 'localhost:9092', 'properties.group.id' = 'g',
        'scan.startup.mode' = 'earliest-offset');
";

const QUERY: &str = "SELECT sensor_id, window_start, window_end,
       COUNT(*) AS n, AVG(co2 / 1000.0) AS avg_co2_k, MAX(pressure) AS max_pressure,
       COUNT(*) FILTER (WHERE NOT ok) AS not_ok, COUNT(DISTINCT co2) AS distinct_co2,
       SUM(CASE WHEN ok THEN 1 ELSE 0 END) AS ok_count
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '10' SECOND))
WHERE pressure IS NOT NULL
GROUP BY sensor_id, window_start, window_end
HAVING COUNT(*) > 1;
";

fn plan(query: &str) -> Result<Job, SqlError> {
    plan_job(&format!("{TABLE}{query}"), &[])
}

fn ok(query: &str) -> Job {
    plan(query).unwrap_or_else(|e| panic!("{e}"))
}

/// The error of `query`, with its message checked to contain every piece of `wanted`.
fn err(query: &str, wanted: &[&str]) -> SqlError {
    let e = match plan(query) {
        Ok(job) => panic!("planned: {:?}", job.query.outputs),
        Err(e) => e,
    };
    for w in wanted {
        assert!(e.message.contains(w), "`{w}` not in: {e}");
    }
    e
}

/// The line of the query in the whole file (the table takes the first lines).
fn qline(n: usize) -> usize {
    TABLE.lines().count() + n
}

fn names(job: &Job) -> Vec<&str> {
    job.query.outputs.iter().map(|o| o.name.as_str()).collect()
}

#[test]
fn the_example_job_plans() {
    let job = ok(QUERY);
    assert_eq!(job.table.name, "readings");
    assert_eq!(job.table.columns.len(), 7);
    assert_eq!(job.table.computed.len(), 1);
    assert_eq!(job.table.event_time, 1);
    assert_eq!(job.table.lateness_ms, 30_000);
    assert_eq!(
        job.table.connector,
        Connector::Kafka {
            topic: "plant-sensors".into(),
            bootstrap_servers: Some("localhost:9092".into()),
            group_id: Some("g".into()),
            startup: Some(StartupMode::Earliest),
            properties: vec![],
        }
    );
    assert_eq!(job.query.window, WindowSpec::Tumble { size_ms: 10_000 });
    assert_eq!(
        names(&job),
        [
            "sensor_id",
            "window_start",
            "window_end",
            "n",
            "avg_co2_k",
            "max_pressure",
            "not_ok",
            "distinct_co2",
            "ok_count"
        ]
    );
    let funcs: Vec<AggFunc> = job.query.aggregates.iter().map(|a| a.func).collect();
    // COUNT(*) is computed once although it is selected and in HAVING; COUNT(*) FILTER is another.
    assert_eq!(
        funcs,
        [
            AggFunc::CountStar,
            AggFunc::Avg,
            AggFunc::Max,
            AggFunc::CountStar,
            AggFunc::Count,
            AggFunc::Sum
        ]
    );
    assert!(job.query.aggregates[4].distinct);
    assert!(job.query.aggregates[3].filter.is_some());
    assert_eq!(job.query.aggregates[5].ty, DataType::BigInt);
    assert_eq!(job.query.aggregates[1].ty, DataType::Double);
    assert!(job.query.filter.is_some());
    assert!(job.query.having.is_some());
    assert!(job.table.columns[0].key);
    assert_eq!(job.table.columns[0].max_bytes, Some(64));
}
