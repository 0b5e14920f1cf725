"""Independent readers of the Parquet history: pyarrow and DuckDB read the whole Hive-partitioned folder back
and must agree with each other, with the expected device ids (including hostile ones) and with latest.json.

Usage: read_history.py OUT_DIR IDS_FILE
"""

import json
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds


def main() -> int:
    out, ids_file = Path(sys.argv[1]), Path(sys.argv[2])
    expected_ids = {line for line in ids_file.read_text(encoding="utf-8").splitlines() if line}
    root = out / "parquet"

    part = ds.partitioning(pa.schema([("device_id", pa.string())]), flavor="hive")
    table = ds.dataset(root, format="parquet", partitioning=part).to_table()
    schema = table.schema
    assert schema.field("window_start").type == pa.timestamp("ms", tz="UTC"), schema
    assert schema.field("window_end").type == pa.timestamp("ms", tz="UTC"), schema
    assert schema.field("count").type == pa.int64(), schema
    assert schema.field("avg_temperature").type == pa.float64(), schema
    ids = set(table.column("device_id").to_pylist())
    assert ids == expected_ids, f"pyarrow ids {sorted(ids)} != {sorted(expected_ids)}"

    con = duckdb.connect()
    glob = str(root / "*" / "*.parquet")
    rows = con.execute(
        "select device_id, count(*) as n, sum(count) as events, count(distinct window_start) as w "
        f"from read_parquet('{glob}', hive_partitioning = true) group by device_id"
    ).fetchall()
    duck_ids = {r[0] for r in rows}
    assert duck_ids == expected_ids, f"duckdb ids {sorted(duck_ids)} != {sorted(expected_ids)}"
    for device, n, _events, windows in rows:
        assert n == windows, f"{device!r}: {n} rows for {windows} windows (duplicates)"
    duck_events = sum(r[2] for r in rows)
    arrow_events = pa.compute.sum(table.column("count")).as_py()
    assert duck_events == arrow_events, (duck_events, arrow_events)
    latest = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    assert latest["pipeline"]["events_total"] == arrow_events, (latest["pipeline"], arrow_events)
    print(f"read_history: {table.num_rows} rows, {len(ids)} devices, {arrow_events} events; pyarrow and DuckDB agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
