-- The built-in job's figures per device, each reading joined, as of its event time, with the device's row of
-- the simulator's device table (iot-devices): the window also carries the device's site and its own temperature
-- limit, and the dashboard's alerts raise temperature_high above that limit instead of --alert-temperature-above.
-- Runs on the simulator's topics: ./run.sh --sql jobs/devices_joined.sql
CREATE TABLE events (
    device_id   VARCHAR(64) NOT NULL,
    ts          BIGINT NOT NULL CONSTRAINT out_of_range CHECK (ts >= 0),
    temperature DOUBLE NOT NULL CONSTRAINT out_of_range CHECK (temperature BETWEEN -60 AND 150),
    humidity    DOUBLE NOT NULL CONSTRAINT out_of_range CHECK (humidity BETWEEN 0 AND 100),
    battery     DOUBLE NOT NULL CONSTRAINT out_of_range CHECK (battery BETWEEN 0 AND 100),
    status      TEXT NOT NULL CONSTRAINT bad_status CHECK (status IN ('ok', 'warn', 'error')),
    location    VARCHAR(64) NOT NULL CONSTRAINT bad_string CHECK (location <> ''),
    event_time  AS TO_TIMESTAMP_LTZ(ts, 3),
    WATERMARK FOR event_time AS event_time - INTERVAL '1' MINUTE
) WITH (
    'connector' = 'kafka',
    'topic' = 'iot-metrics',
    'format' = 'json'
);

CREATE TABLE devices (
    device_id       VARCHAR(64),
    site            TEXT,
    model           TEXT,
    max_temperature DOUBLE,
    updated_at      TIMESTAMP,
    PRIMARY KEY (device_id) NOT ENFORCED,
    WATERMARK FOR updated_at AS updated_at
) WITH (
    'connector' = 'upsert-kafka',
    'topic' = 'iot-devices',
    'format' = 'json'
);

SELECT e.device_id, window_start, window_end,
       COUNT(*) AS count,
       AVG(e.temperature) AS avg_temperature,
       AVG(e.humidity) AS avg_humidity,
       MIN(e.battery) AS min_battery,
       MAX(e.battery) AS max_battery,
       STDDEV_POP(e.temperature) AS stddev_temperature,
       COUNT(*) FILTER (WHERE e.status = 'warn') AS warn_count,
       COUNT(*) FILTER (WHERE e.status = 'error') AS error_count,
       LAST_VALUE(d.site) AS site,
       LAST_VALUE(d.max_temperature) AS temperature_limit,
       COUNT(*) FILTER (WHERE e.temperature > d.max_temperature) AS over_limit
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(event_time), INTERVAL '10' SECOND)) AS e
LEFT JOIN devices FOR SYSTEM_TIME AS OF e.event_time AS d ON e.device_id = d.device_id
GROUP BY e.device_id, window_start, window_end;
