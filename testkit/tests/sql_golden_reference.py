#!/usr/bin/env python3
"""A stand-in for the job in the golden harness's own tests (tests/sql_golden.rs): computes a windowed query's rows
in plain Python, with none of the harness's SQL, and writes them as a job's outputs in the contract's layout
(docs: the output contract): the Parquet history with DuckDB's `COPY ... PARTITION_BY` (folders renamed to the
contract's escaping, two part files per key with their columns in different orders, hidden in-progress files),
latest.json (`query`, `columns`, each group's last final window and a newer live one) and a Kafka output dump.

    python sql_golden_reference.py SPEC.json EVENTS.jsonl OUT [--mutate] [--duplicate]

SPEC: {"columns": {name: TYPE}, "time": column, "keys": [...], "window": {"kind": "tumble"|"hop"|"session",
"size_ms", "slide_ms", "gap_ms"}, "where": PRED, "values": [{"name", "type", "agg", "arg", "filter": PRED}],
"having": PRED over output columns}; PRED is [column, op, value] with op one of = <> < <= > >= "is null"
"is not null", or ["or", [PRED, ...]]. --mutate changes one value and drops one row in every output; --duplicate copies a part file.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

ARROW = {"TEXT": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(),
         "TIMESTAMP": pa.timestamp("ms", tz="UTC")}


def epoch_ms(value) -> int:
    if isinstance(value, int):
        return value
    t = datetime.fromisoformat(value.replace(" ", "T"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int((t - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()) * 1000 + t.microsecond // 1000


def holds(pred, row) -> bool:
    if pred is None:
        return True
    if pred[0] == "or":
        return any(holds(p, row) for p in pred[1])
    col, op = pred[0], pred[1]
    v = row.get(col)
    if op == "is null":
        return v is None
    if op == "is not null":
        return v is not None
    if v is None:
        return False  # NULL compared is not TRUE
    want = pred[2]
    return {"=": v == want, "<>": v != want, "<": v < want, "<=": v <= want, ">": v > want, ">=": v >= want}[op]


def windows_of(t: int, spec) -> list[tuple[int, int]]:
    w = spec["window"]
    if w["kind"] == "tumble":
        start = t // w["size_ms"] * w["size_ms"]
        return [(start, start + w["size_ms"])]
    out, start = [], t // w["slide_ms"] * w["slide_ms"]
    while start >= 0 and start + w["size_ms"] > t:
        out.append((start, start + w["size_ms"]))
        start -= w["slide_ms"]
    return out


def aggregate(agg, arg, rows):
    if agg == "count_star":
        return len(rows)
    values = [(r["__t"], r["__seq"], r[arg]) for r in rows if r.get(arg) is not None]
    xs = [v for _, _, v in values]
    if agg == "count":
        return len(xs)
    if agg == "count_distinct":
        return len(set(xs))
    if not xs:
        return None
    if agg == "sum":
        return sum(xs)
    if agg == "avg":
        return sum(xs) / len(xs)
    if agg in ("min", "max"):
        return min(xs) if agg == "min" else max(xs)
    if agg in ("first_value", "last_value"):
        return (min(values) if agg == "first_value" else max(values))[2]
    mean = sum(xs) / len(xs)
    squares = sum((x - mean) ** 2 for x in xs)
    if agg == "stddev_pop":
        return math.sqrt(squares / len(xs))
    if agg == "stddev_samp":
        return math.sqrt(squares / (len(xs) - 1)) if len(xs) > 1 else None
    raise ValueError(f"unknown aggregate {agg}")


def compute(spec, events: list[dict]) -> list[dict]:
    keys = spec["keys"]
    groups: dict[tuple, list[dict]] = {}
    rows = [r for r in events if holds(spec.get("where"), r)]
    if spec["window"]["kind"] == "session":
        gap = spec["window"]["gap_ms"]
        by_key: dict[tuple, list[dict]] = {}
        for r in rows:
            by_key.setdefault(tuple(r[k] for k in keys), []).append(r)
        for key, rs in by_key.items():
            rs.sort(key=lambda r: (r["__t"], r["__seq"]))
            session = []
            for r in rs + [None]:
                if session and (r is None or r["__t"] - session[-1]["__t"] >= gap):
                    groups[key + (session[0]["__t"], session[-1]["__t"] + gap)] = session
                    session = []
                if r is not None:
                    session.append(r)
    else:
        for r in rows:
            for start, end in windows_of(r["__t"], spec):
                groups.setdefault(tuple(r[k] for k in keys) + (start, end), []).append(r)
    out = []
    for group, rs in sorted(groups.items()):
        row = dict(zip(keys + ["window_start", "window_end"], group))
        for v in spec["values"]:
            row[v["name"]] = aggregate(v["agg"], v.get("arg"), [r for r in rs if holds(v.get("filter"), r)])
        if holds(spec.get("having"), row):
            out.append(row)
    return out


def escape(text: str) -> str:
    return "".join(chr(b) if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "-_") else "%%%02X" % b
                   for b in text.encode("utf-8"))


def rfc3339(ms: int) -> str:
    t = datetime.fromtimestamp(ms // 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return t + (".%03dZ" % (ms % 1000) if ms % 1000 else "Z")


def to_json(row: dict, final: bool) -> dict:
    out = {}
    for k, v in row.items():
        if k in ("window_start", "window_end"):
            v = rfc3339(v)
        elif isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v
    out["final"] = final
    return out


def mutate(rows: list[dict], spec) -> list[dict]:
    """One value changed (the first row's first value column), the last row dropped."""
    rows = [dict(r) for r in rows[:-1]]
    name = spec["values"][0]["name"]
    v = rows[0][name]
    if v is None or isinstance(v, bool):
        rows[0][name] = 1 if v is None else not v
    else:
        rows[0][name] = v + "x" if isinstance(v, str) else v + 1 if isinstance(v, int) else v * 1.5 + 1
    return rows


def write_history(spec, rows: list[dict], out: Path) -> None:
    keys, types = spec["keys"], spec["columns"]
    fields = [(k, ARROW[types[k]]) for k in keys] + [("window_start", ARROW["TIMESTAMP"]),
                                                     ("window_end", ARROW["TIMESTAMP"])]
    fields += [(v["name"], ARROW[v["type"]]) for v in spec["values"]]
    table = pa.table({n: pa.array([r[n] for r in rows], t) for n, t in fields})
    base = out / "parquet"
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    half = table.num_rows // 2
    con.register("first_half", table.slice(0, half))
    con.register("second_half", table.slice(half))
    names = [f'"{n}"' for n, _ in fields]
    con.execute(f"COPY (SELECT {', '.join(names)} FROM first_half) TO '{base}' "
                f"(FORMAT PARQUET, PARTITION_BY (\"{keys[0]}\"), FILENAME_PATTERN 'part-00000001-w{{i}}')")
    con.execute(f"COPY (SELECT {', '.join(reversed(names))} FROM second_half) TO '{base}' "
                f"(FORMAT PARQUET, PARTITION_BY (\"{keys[0]}\"), FILENAME_PATTERN 'part-00000002-w{{i}}', "
                "OVERWRITE_OR_IGNORE)")
    for folder in list(base.iterdir()):
        name, _, text = folder.name.partition("=")
        folder.rename(base / f"{name}={escape(urllib.parse.unquote(text))}")
    for folder in base.iterdir():
        part = sorted(folder.glob("part-*.parquet"))[0]
        shutil.copy(part, folder / ".part-00000003-w0.parquet.inprogress")
        shutil.copy(part, folder / "_part-00000003-w0.parquet.tmp")


def main(argv) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    out = Path(argv[2])
    events = []
    for n, line in enumerate(Path(argv[1]).read_text(encoding="utf-8").splitlines(), 1):
        record = json.loads(line)
        row = {c: record.get(c) for c in spec["columns"]}
        for c, ty in spec["columns"].items():
            if ty == "DOUBLE" and row[c] is not None:
                row[c] = float(row[c])
        row["__t"], row["__seq"] = epoch_ms(record[spec["time"]]), n
        events.append(row)
    rows = compute(spec, events)
    if "--mutate" in argv:
        rows = mutate(rows, spec)
    write_history(spec, rows, out)
    if "--duplicate" in argv:
        part = sorted(out.glob("parquet/*/part-*.parquet"))[0]
        shutil.copy(part, part.parent / "part-99999999-w9.parquet")

    keys = spec["keys"]
    last: dict[tuple, dict] = {}
    for r in compute(spec, events):
        last[tuple(r[k] for k in keys)] = r  # rows are sorted by key and window start
    finals = list(last.values())
    if "--mutate" in argv:
        finals = mutate(finals, spec)
    records = []
    for r in finals:
        records.append(to_json(r, True))
        live = dict(r, window_start=r["window_start"] + 3_600_000, window_end=r["window_end"] + 3_600_000)
        records.append(to_json({k: (v if k in keys or k.startswith("window") else None) for k, v in live.items()},
                               False))
    columns = [{"name": k, "type": spec["columns"][k], "role": "key", "nullable": False} for k in keys]
    columns += [{"name": n, "type": "TIMESTAMP", "role": "window", "nullable": False}
                for n in ("window_start", "window_end")]
    columns += [{"name": v["name"], "type": v["type"], "role": "value", "nullable": v["agg"] != "count_star"}
                for v in spec["values"]]
    doc = {"updated_at": 1, "query": {"sql": spec.get("sql", ""), "builtin": False}, "columns": columns,
           "records": records, "pipeline": {"events_total": len(events), "late_total": 0, "bad_total": 0}}
    (out / "latest.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    with open(out / "kafka.jsonl", "w", encoding="utf-8") as f:
        for r in reversed(rows):  # in no particular order
            f.write(json.dumps(to_json(r, True), ensure_ascii=False) + "\n")
    print(f"reference: {len(events)} events, {len(rows)} rows written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
