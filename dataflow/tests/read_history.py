"""Independent readers of the Parquet history: pyarrow and DuckDB read the whole Hive-partitioned folder back
and must agree with each other, with the expected device ids (including hostile ones) and with latest.json.
When the job ran with UDFs (latest.json lists them), their columns must follow the contract columns, be
nullable and typed from the UDF, read the same in both readers, and the example `heat_index` must equal the
formula recomputed here from the window's own means.

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
    check_udf_columns(con, glob, table, latest)
    print(f"read_history: {table.num_rows} rows, {len(ids)} devices, {arrow_events} events; pyarrow and DuckDB agree")
    return 0


CONTRACT = ["window_start", "window_end", "count", "avg_temperature", "avg_humidity", "min_battery",
            "max_battery", "stddev_temperature", "warn_count", "error_count"]
TYPES = {"float64": pa.float64(), "float32": pa.float32(), "int64": pa.int64(), "int32": pa.int32(),
         "uint64": pa.uint64(), "uint32": pa.uint32(), "boolean": pa.bool_(), "utf8": pa.string()}


def heat_index(t: float, h: float) -> float:
    f = t * 1.8 + 32.0
    return (0.5 * (f + 61.0 + (f - 68.0) * 1.2 + h * 0.094) - 32.0) / 1.8


def check_udf_columns(con, glob: str, table: pa.Table, latest: dict) -> None:
    udfs = latest.get("udfs", [])
    if not udfs:
        return
    names = [u["name"] for u in udfs]
    schema = table.schema
    file_columns = [n for n in schema.names if n != "device_id"]
    assert file_columns == CONTRACT + names, f"UDF columns follow the contract columns: {file_columns}"
    for u in udfs:
        field = schema.field(u["name"])
        assert field.nullable and field.type == TYPES[u["type"]], (u, field)
    duck = con.execute(
        f"select {', '.join(names)} from read_parquet('{glob}', hive_partitioning = true, union_by_name = true) "
        "order by device_id, window_start"
    ).fetchall()
    ordered = table.sort_by([("device_id", "ascending"), ("window_start", "ascending")])
    arrow_rows = list(zip(*(ordered.column(n).to_pylist() for n in names)))
    assert duck == arrow_rows, "DuckDB and pyarrow read the same UDF values"
    if "heat_index" in names:
        temps, hums = ordered.column("avg_temperature").to_pylist(), ordered.column("avg_humidity").to_pylist()
        for t, h, got in zip(temps, hums, ordered.column("heat_index").to_pylist()):
            want = heat_index(t, h)
            assert got is not None and abs(got - want) <= 1e-9 * max(abs(want), 1.0), (t, h, got, want)
    print(f"read_history: UDF columns {names} typed, nullable, equal in pyarrow and DuckDB")


if __name__ == "__main__":
    sys.exit(main())
