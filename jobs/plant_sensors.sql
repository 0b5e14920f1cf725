-- A plant's own sensors, not the simulator's: keyed by sensor_id, the event time an ISO-8601 string, pressure
-- and vibration missing from some readings. Against a Kafka topic `plant-sensors` (the command line's --brokers
-- and --group win over the options below), or replayed from a file with --input:
--   dataflow --sql jobs/plant_sensors.sql --input jobs/plant_sensors.sample.jsonl --out /tmp/plant/aggregates
CREATE TABLE readings (
    sensor_id  VARCHAR(64) NOT NULL,
    site       TEXT,
    event_time TIMESTAMP(3) NOT NULL,
    pressure   DOUBLE CONSTRAINT pressure_range CHECK (pressure BETWEEN 800 AND 1200),
    co2        BIGINT,
    vibration  DOUBLE,
    ok         BOOLEAN,
    WATERMARK FOR event_time AS event_time - INTERVAL '5' SECOND
) WITH (
    'connector' = 'kafka',
    'topic' = 'plant-sensors',
    'properties.bootstrap.servers' = 'localhost:9092',
    'properties.group.id' = 'plant-dashboard',
    'scan.startup.mode' = 'earliest-offset',
    'format' = 'json'
);

SELECT sensor_id, window_start, window_end,
       COUNT(*) AS n,
       AVG(pressure) AS avg_pressure,
       MAX(co2) AS max_co2,
       AVG(co2 / 1000.0) AS avg_co2_k,
       STDDEV_POP(vibration) AS vibration_sd,
       COUNT(*) FILTER (WHERE NOT ok) AS not_ok,
       LAST_VALUE(site) AS site
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '10' SECOND))
WHERE pressure IS NOT NULL OR co2 IS NOT NULL
GROUP BY sensor_id, window_start, window_end
HAVING COUNT(*) >= 2;
