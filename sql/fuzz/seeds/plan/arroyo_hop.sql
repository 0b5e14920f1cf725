CREATE TABLE sensors (
    location TEXT NOT NULL,
    zone BIGINT,
    active BOOLEAN,
    reading DOUBLE,
    label TEXT,
    at TIMESTAMP(3) NOT NULL,
    region AS UPPER(location) || '-' || CAST(zone AS TEXT),
    WATERMARK FOR at AS at
) WITH ('connector' = 'file', 'path' = '/tmp/in.jsonl', 'format' = 'json');
SELECT region AS r, active, window_start AS ws, window_end,
       VAR_SAMP(reading) AS v, STDDEV_SAMP(reading) AS s, VAR_POP(reading) AS vp,
       FIRST_VALUE(label) AS first_label, LAST_VALUE(reading) AS last_reading,
       ROUND(AVG(ABS(reading)), 2) AS rounded, COALESCE(MIN(label), 'none') AS min_label,
       CASE COUNT(*) WHEN 1 THEN 'one' ELSE 'many' END AS how_many,
       MAX(at) - MIN(at) AS span_ms, CHAR_LENGTH(LOWER(MAX(label))) AS len
FROM sensors
WHERE reading BETWEEN -1e9 AND 1e9 AND label NOT IN ('x', 'y') AND at > TIMESTAMP '2020-01-01 00:00:00'
GROUP BY hop(INTERVAL '5 seconds', INTERVAL '1 minute'), region, active
HAVING SUM(reading) % 2 <> 1 OR COUNT(reading) >= 3;
