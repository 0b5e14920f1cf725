CREATE TABLE readings (
    sensor_id  VARCHAR(64) NOT NULL,
    event_time TIMESTAMP NOT NULL,
    pressure   DOUBLE,
    co2        BIGINT,
    ok         BOOLEAN,
    ts_ms      BIGINT,
    t          AS TO_TIMESTAMP_LTZ(ts_ms, 3),          -- computed column (epoch ms)
    WATERMARK FOR event_time AS event_time - INTERVAL '30' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'plant-sensors', 'format' = 'json',
        'properties.bootstrap.servers' = 'localhost:9092', 'properties.group.id' = 'g',
        'scan.startup.mode' = 'earliest-offset');
SELECT sensor_id, window_start, window_end,
       COUNT(*) AS n, AVG(co2 / 1000.0) AS avg_co2_k, MAX(pressure) AS max_pressure,
       COUNT(*) FILTER (WHERE NOT ok) AS not_ok, COUNT(DISTINCT co2) AS distinct_co2,
       SUM(CASE WHEN ok THEN 1 ELSE 0 END) AS ok_count
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '10' SECOND))
WHERE pressure IS NOT NULL
GROUP BY sensor_id, window_start, window_end
HAVING COUNT(*) > 1;
