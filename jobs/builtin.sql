-- The built-in job: the sensor events of the IoT simulator, aggregated per device and window.
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
    WATERMARK FOR event_time AS event_time - INTERVAL '1' MINUTE
) WITH (
    'connector' = 'kafka',
    'topic' = 'iot-metrics',
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
       COUNT(*) FILTER (WHERE status = 'error') AS error_count
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(event_time), INTERVAL '10' SECOND))
GROUP BY device_id, window_start, window_end;
