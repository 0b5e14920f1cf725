-- The simulator's events per location instead of per device: a one-minute window every ten seconds, how many
-- devices reported, their mean and hottest temperature, and the share of readings in trouble. Runs on the
-- simulator's topic: ./run.sh --sql jobs/by_location.sql
CREATE TABLE events (
    device_id   VARCHAR(64) NOT NULL,
    ts          BIGINT NOT NULL,
    temperature DOUBLE NOT NULL,
    humidity    DOUBLE NOT NULL,
    battery     DOUBLE NOT NULL,
    status      TEXT NOT NULL CONSTRAINT bad_status CHECK (status IN ('ok', 'warn', 'error')),
    location    VARCHAR(64) NOT NULL,
    event_time  AS TO_TIMESTAMP_LTZ(ts, 3),
    WATERMARK FOR event_time AS event_time - INTERVAL '30' SECOND
) WITH (
    'connector' = 'kafka',
    'topic' = 'iot-metrics',
    'format' = 'json'
);

SELECT location, window_start, window_end,
       COUNT(*) AS readings,
       COUNT(DISTINCT device_id) AS devices,
       ROUND(AVG(temperature), 2) AS avg_temperature,
       MAX(temperature) AS max_temperature,
       MIN(battery) AS min_battery,
       ROUND(100.0 * COUNT(*) FILTER (WHERE status <> 'ok') / COUNT(*), 1) AS trouble_pct
FROM TABLE(HOP(TABLE events, DESCRIPTOR(event_time), INTERVAL '10' SECOND, INTERVAL '1' MINUTE))
GROUP BY location, window_start, window_end
HAVING COUNT(*) >= 5;
