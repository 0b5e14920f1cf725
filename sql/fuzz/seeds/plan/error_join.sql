CREATE TABLE t (k BIGINT NOT NULL, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH ('connector'='file','path'='p','format'='json');
SELECT t.k, COUNT(*) AS n FROM t JOIN u ON t.k = u.k GROUP BY tumble(interval '1 minute'), k ORDER BY n LIMIT 3;
