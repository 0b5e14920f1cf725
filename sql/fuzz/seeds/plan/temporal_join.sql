-- The simulator's readings per site of its device table: each reading joined, as of its event time, with the
-- device's row in the compacted topic iot-devices (the simulator publishes it: a device moves to another site,
-- or its own temperature limit changes, about once a second), then counted per site and 10-second window, with
-- the readings above the device's own limit. Readings of a device the table does not know form the group whose
-- site is NULL. Runs on the simulator's topics: ./run.sh --sql jobs/by_site.sql
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

SELECT d.site, window_start, window_end,
       COUNT(*) AS readings,
       COUNT(DISTINCT e.device_id) AS devices,
       ROUND(AVG(e.temperature), 2) AS avg_temperature,
       MAX(e.temperature) AS max_temperature,
       COUNT(*) FILTER (WHERE e.temperature > d.max_temperature) AS over_limit
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(event_time), INTERVAL '10' SECOND)) AS e
LEFT JOIN devices FOR SYSTEM_TIME AS OF e.event_time AS d ON e.device_id = d.device_id
GROUP BY d.site, window_start, window_end;
