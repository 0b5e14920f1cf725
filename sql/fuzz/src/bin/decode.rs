//! Fuzz target: any bytes decoded under a fixed schema (every type, VARCHAR(n), a key, a computed column,
//! CHECKs) give a row or a reason, never a panic, and the decoder's fast path gives what its careful path gives
//! (the same row and event time, or the same reason and message).

const SCHEMA: &str = "
CREATE TABLE r (
    id VARCHAR(16) NOT NULL,
    n BIGINT CONSTRAINT small CHECK (n BETWEEN -1000 AND 1000),
    x DOUBLE NOT NULL,
    flag BOOLEAN,
    note TEXT CHECK (CHAR_LENGTH(note) < 100),
    at TIMESTAMP(3),
    ts BIGINT NOT NULL,
    t AS TO_TIMESTAMP_LTZ(ts, 3),
    WATERMARK FOR t AS t - INTERVAL '5' SECOND
) WITH ('connector' = 'file', 'path' = 'in.jsonl', 'format' = 'json');
SELECT id, COUNT(*) AS c, SUM(n) AS s, AVG(x) AS a, LAST_VALUE(note) AS last_note, MAX(at) AS latest
FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(t), INTERVAL '1' SECOND))
WHERE flag IS NOT NULL OR x > 0
GROUP BY id, window_start, window_end;
";

fn main() {
    let job = sql::plan_job(SCHEMA, &[]).expect("the fuzz schema plans");
    let decoder = job.decoder();
    let (mut row, mut careful_row) = (Vec::new(), Vec::new());
    afl::fuzz!(|data: &[u8]| {
        let fast = decoder.decode(Some(data), 1_730_638_574_123, 3_600_000, &sql::NoUdfs, &mut row);
        let careful = decoder.decode_careful(Some(data), 1_730_638_574_123, 3_600_000, &sql::NoUdfs, &mut careful_row);
        if let Err(bad) = &fast {
            let _ = bad.to_string();
        }
        assert_eq!(fast, careful, "the fast path and the careful path disagree");
        if fast.is_ok() {
            assert_eq!(row, careful_row, "the fast path and the careful path read different rows");
        }
    });
}
