#!/usr/bin/env python3
"""Golden check of a SQL job's outputs: the rows a DuckDB query computes from the events the job read, compared
exactly with what the job wrote (its Parquet history, latest.json's final records, a dump of its Kafka output).

    python golden_sql.py --events EVENTS.jsonl --columns 'sensor_id TEXT NOT NULL, event_time TIMESTAMP, ...' \\
        --table readings --query-file expected.sql --history OUT [--latest OUT] [--kafka DUMP.jsonl]

Inputs, independent of the job's code:
- EVENTS: one record per line, as produced to Kafka. Each is decoded here under --columns (the table's columns,
  as in its CREATE TABLE but without CHECKs; `name AS <DuckDB expression>` adds a computed column), by the
  dialect's record rules restated (docs/SQL.md, "Records"): a JSON object, declared fields of their type, NOT NULL
  fields present, text without control characters and within VARCHAR(n), TEXT keys of 1 to 64 bytes, BIGINTs
  integers of 64 bits, TIMESTAMPs RFC 3339 strings (no zone = UTC, fractions truncated to ms) or epoch ms. A line
  that breaks them stops the check (exit 2), or with --skip-invalid is left out as the job would dead-letter it.
  CHECK constraints, lateness and --max-future are the test's business: it passes on-time valid records only, or
  leaves out the records the job dead-lettered.
- The query (DuckDB SQL) over the table --table, which holds the columns plus `__seq`, the record's line number
  (arrival order). A job with a temporal join also gives the joined table's versions (--versions, one row per
  line under --versions-columns, decoded by the same rules, as table --versions-table), for DuckDB's ASOF JOIN. Its result columns are the expected output columns: keys, window_start, window_end, values.

Rows are matched by (keys, window_start): the keys are --keys, else latest.json's `columns` of role key, else the
query's columns before window_start. Values compare exactly, floats within 1e-9 relative (NaN = NaN), NULL = NULL,
timestamps as epoch ms. Exit status: 0 equal, 1 a difference (listed), 2 the check could not run.
"""

from __future__ import annotations

import argparse
import calendar
import json
import math
import os
import re
import sys
import time
import unicodedata
from pathlib import Path

import duckdb
import pyarrow as pa

REL_TOL = 1e-9
TYPES = {
    "TEXT": "TEXT", "STRING": "TEXT", "VARCHAR": "TEXT",
    "BIGINT": "BIGINT", "INT": "BIGINT", "INTEGER": "BIGINT", "SMALLINT": "BIGINT", "TINYINT": "BIGINT",
    "DOUBLE": "DOUBLE", "FLOAT": "DOUBLE", "REAL": "DOUBLE",
    "BOOLEAN": "BOOLEAN", "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMP", "TIMESTAMP_LTZ": "TIMESTAMP",
}
ARROW = {"TEXT": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(),
         "TIMESTAMP": pa.timestamp("ms", tz="UTC")}
TIME_TEXT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:?\d{2})?$")


class Unusable(Exception):
    """The check cannot run (exit 2): a bad argument, query or input."""


class Invalid(Exception):
    """A record the job would dead-letter: (reason, detail)."""


# ---- the table's columns and the record rules

def split_top(text: str) -> list[str]:
    """Splits at commas outside parentheses and quotes."""
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


def parse_columns(spec: str) -> list[dict]:
    columns = []
    for part in split_top(spec):
        m = re.match(r"^[`\"]?(\w+)[`\"]?\s+AS\s+(.+)$", part, re.I | re.S)
        if m:
            columns.append({"name": m.group(1), "computed": m.group(2)})
            continue
        m = re.match(r"^[`\"]?(\w+)[`\"]?\s+(\w+)\s*(?:\(\s*(\d+)\s*\))?\s*(NOT\s+NULL|NULL)?\s*$", part, re.I)
        if not m or m.group(2).upper() not in TYPES:
            raise Unusable(f"--columns: cannot read {part!r}: write `name TYPE [NOT NULL]` with a type of "
                           f"{sorted(set(TYPES))}, or `name AS <DuckDB expression>`")
        ty = TYPES[m.group(2).upper()]
        columns.append({"name": m.group(1), "type": ty,
                        "max_bytes": int(m.group(3)) if ty == "TEXT" and m.group(3) else None,
                        "not_null": bool(m.group(4)) and m.group(4).upper().startswith("NOT")})
    if not any("type" in c for c in columns):
        raise Unusable("--columns declares no physical column")
    return columns


def parse_time(text: str) -> int:
    m = TIME_TEXT.match(text)
    if not m:
        raise ValueError
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    ms = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1000 + int(((m.group(7) or "") + "000")[:3])
    zone = m.group(8)
    if zone and zone not in "Zz":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        ms -= sign * (int(digits[:2]) * 60 + int(digits[2:])) * 60_000
    if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1] and h < 24 and mi < 60 and s < 60):
        raise ValueError
    return ms


class Pairs(list):
    """A JSON object as its (key, value) pairs in order, duplicates kept."""


def no_constants(name):
    raise ValueError(f"{name} is not JSON")


def finite_float(text):
    value = float(text)
    if math.isinf(value):
        raise ValueError("a number beyond DOUBLE")
    return value


def decode(raw: bytes, columns: list[dict], text_keys: set[str]) -> dict:
    """One record under the columns: a row of the physical columns, or Invalid(reason, detail)."""
    if not raw:
        raise Invalid("empty", "record value is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Invalid("bad_utf8", f"not UTF-8 ({e.reason} at byte {e.start})")
    try:
        value = json.loads(text, object_pairs_hook=Pairs, parse_constant=no_constants, parse_float=finite_float)
    except ValueError as e:
        raise Invalid("not_json", str(e))
    if not isinstance(value, Pairs):
        raise Invalid("not_object", "the record is JSON but not an object")
    declared = {c["name"]: c for c in columns if "type" in c}
    fields = {}
    for key, v in value:
        if key not in declared:
            continue
        if key in fields:
            raise Invalid("duplicate_field", f"field `{key}` given twice")
        ty = declared[key]["type"]
        ok = v is None or {"TEXT": isinstance(v, str), "BOOLEAN": isinstance(v, bool),
                           "BIGINT": isinstance(v, (int, float)) and not isinstance(v, bool),
                           "DOUBLE": isinstance(v, (int, float)) and not isinstance(v, bool),
                           "TIMESTAMP": isinstance(v, (str, int)) and not isinstance(v, bool)}[ty]
        if not ok:
            raise Invalid("wrong_type", f"field `{key}` is not a JSON value of {ty}")
        if isinstance(v, str) and any(0xD800 <= ord(ch) <= 0xDFFF for ch in v):
            raise Invalid("not_json", f"field `{key}` holds a lone surrogate")
        fields[key] = v
    row = {}
    for name, col in declared.items():
        if fields.get(name) is None and (col["not_null"] or name in text_keys):
            raise Invalid("missing_field", f"field `{name}` is missing or null")
    for name, col in declared.items():
        v = fields.get(name)
        if isinstance(v, str) and col["type"] == "TEXT":
            size = len(v.encode("utf-8"))
            if any(unicodedata.category(ch) == "Cc" for ch in v):
                raise Invalid("bad_string", f"field `{name}` holds a control character")
            if col["max_bytes"] is not None and size > col["max_bytes"]:
                raise Invalid("bad_string", f"field `{name}` is longer than {col['max_bytes']} bytes")
            if name in text_keys and not 1 <= size <= 64:
                raise Invalid("bad_string", f"key `{name}` must be 1 to 64 bytes")
    for name, col in declared.items():
        v = fields.get(name)
        if v is not None and col["type"] == "BIGINT":
            if isinstance(v, float):
                raise Invalid("wrong_type", f"field `{name}` is not an integer")
            if not -(2**63) <= v < 2**63:
                raise Invalid("out_of_range", f"field `{name}` does not fit 64 bits")
        elif v is not None and col["type"] == "TIMESTAMP":
            if isinstance(v, int):
                if not -(2**63) <= v < 2**63:
                    raise Invalid("out_of_range", f"field `{name}` does not fit 64 bits")
            else:
                try:
                    v = parse_time(v)
                except ValueError:
                    raise Invalid("wrong_type", f"field `{name}` is not an RFC 3339 time: {v!r}")
        elif v is not None and col["type"] == "DOUBLE":
            v = float(v)
        row[name] = v
    return row


def register_events(con, table: str, columns: list[dict], rows: list[dict]) -> None:
    """The table the query reads: the physical columns, `__seq`, then the computed columns."""
    physical = [c for c in columns if "type" in c]
    arrays = {c["name"]: pa.array([r[c["name"]] for r in rows], ARROW[c["type"]]) for c in physical}
    arrays["__seq"] = pa.array([r["__seq"] for r in rows], pa.int64())
    raw = f"__raw_{table}"
    con.register(raw, pa.table(arrays))
    computed = "".join(f", ({c['computed']}) AS \"{c['name']}\"" for c in columns if "computed" in c)
    try:
        con.execute(f'CREATE OR REPLACE TEMP VIEW "{table}" AS SELECT *{computed} FROM "{raw}"')
    except duckdb.Error as e:
        raise Unusable(f"--columns: a computed column does not evaluate in DuckDB: {e}")


def load_events(con, path: Path, table: str, columns: list[dict], text_keys: set[str], skip_invalid: bool):
    rows, skipped = [], {}
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for n, raw in enumerate(lines, 1):
        try:
            row = decode(raw, columns, text_keys)
        except Invalid as e:
            reason, detail = e.args
            if not skip_invalid:
                raise Unusable(f"{path}:{n}: not a valid record ({reason}: {detail}); the events file must hold "
                               "the records the job aggregated: leave out the dead-lettered ones, or pass "
                               "--skip-invalid")
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        row["__seq"] = n
        rows.append(row)
    register_events(con, table, columns, rows)
    note = f", {sum(skipped.values())} invalid left out {dict(sorted(skipped.items()))}" if skipped else ""
    print(f"golden: {len(rows)} events from {path}{note}")


# ---- values, normalised for comparison

def column_values(col: pa.ChunkedArray) -> list:
    """A column as Python values: timestamps as epoch ms, integral decimals as int."""
    if pa.types.is_timestamp(col.type):
        mul, div = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 1_000_000)}[col.type.unit]
        return [None if v is None else v * mul // div for v in col.cast(pa.int64()).to_pylist()]
    values = col.to_pylist()
    if pa.types.is_decimal(col.type):
        return [None if v is None else (int(v) if v == v.to_integral_value() else float(v)) for v in values]
    return values


def json_value(v, as_time: bool):
    """A JSON value as the history's: timestamps (RFC 3339 text) as epoch ms."""
    try:
        return parse_time(v) if as_time and isinstance(v, str) else v
    except ValueError:
        return v


def kind(ty: pa.DataType) -> str:
    """The output type an Arrow type holds."""
    if pa.types.is_timestamp(ty):
        return "TIMESTAMP"
    if pa.types.is_integer(ty) or pa.types.is_decimal(ty) and ty.scale == 0:
        return "BIGINT"
    if pa.types.is_floating(ty) or pa.types.is_decimal(ty):
        return "DOUBLE"
    if pa.types.is_boolean(ty):
        return "BOOLEAN"
    if pa.types.is_string(ty) or pa.types.is_large_string(ty):
        return "TEXT"
    return str(ty)


def same(e, a) -> bool:
    """Expected and found values equal: NULL = NULL, floats within REL_TOL relative (NaN = NaN), others exactly."""
    if e is None or a is None:
        return e is None and a is None
    if isinstance(e, bool) or isinstance(a, bool) or isinstance(e, str) or isinstance(a, str):
        return type(e) is type(a) and e == a
    if isinstance(e, float) or isinstance(a, float):
        e, a = float(e), float(a)
        if math.isnan(e) or math.isnan(a):
            return math.isnan(e) and math.isnan(a)
        return e == a or abs(e - a) <= REL_TOL * max(abs(e), abs(a))
    return e == a


def show(v, as_time: bool) -> str:
    if as_time and isinstance(v, int):
        secs, ms = divmod(v, 1000)
        if secs < 0:
            return str(v)
        return "%04d-%02d-%02dT%02d:%02d:%02d" % time.gmtime(secs)[:6] + (".%03dZ" % ms if ms else "Z")
    return "NULL" if v is None else repr(v)


# ---- the targets

class Rows:
    """What one target holds: rows as {column: value}, and problems found reading it."""

    def __init__(self, name: str):
        self.name, self.rows, self.problems, self.types = name, [], [], {}


def read_history(con, out: Path, keys: list[str]) -> Rows:
    got = Rows(f"history {out / 'parquet'}")
    base = out / "parquet"
    files = []
    if base.is_dir():
        for folder in sorted(base.iterdir()):
            if folder.name.startswith((".", "_")) or not folder.is_dir():
                continue
            if not folder.name.startswith(keys[0] + "="):
                got.problems.append(f"folder {folder.name}: not partitioned by the first key {keys[0]}=")
                continue
            files += [f"{folder.name}/{f.name}" for f in sorted(folder.iterdir())
                      if f.name.endswith(".parquet") and not f.name.startswith((".", "_"))]
    if not files:
        got.problems.append("no committed history file (<first key>=<value>/*.parquet)")
        return got
    listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    cwd = os.getcwd()
    os.chdir(base)  # relative paths: no folder above the history is read as a Hive partition
    try:
        table = con.sql(f"SELECT * FROM read_parquet({listed}, hive_partitioning = true, union_by_name = true, "
                        f"hive_types = {{'{keys[0]}': 'VARCHAR'}})").to_arrow_table()
    finally:
        os.chdir(cwd)
    got.types = {f.name: f.type for f in table.schema}
    cols = {name: column_values(table.column(name)) for name in table.column_names}
    got.rows = [{name: cols[name][i] for name in cols} for i in range(table.num_rows)]
    return got


def read_json_rows(name: str, records: list, times: set[str]) -> Rows:
    got = Rows(name)
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            got.problems.append(f"record {i + 1} is not a JSON object")
            continue
        if rec.get("final") is not True:
            got.problems.append(f"record {i + 1} is not final")
        got.rows.append({k: json_value(v, k in times) for k, v in rec.items() if k != "final"})
    return got


# ---- the comparison

def compare(expected: list[dict], exp_types: dict, got: Rows, keys: list[str], limit: int,
            allow_extra: bool) -> bool:
    names = list(exp_types)
    times = {c for c, t in exp_types.items() if pa.types.is_timestamp(t)}
    ident = keys + ["window_start"]
    differences = list(got.problems)
    actual_names = set().union(*(r.keys() for r in got.rows)) if got.rows else set()
    # The first key of a history comes from the folders as text: typed here as the query types it.
    first = keys[0]
    if got.types and first in got.types and kind(exp_types[first]) != "TEXT":
        conv = {"BIGINT": int, "BOOLEAN": lambda s: s == "true"}.get(kind(exp_types[first]), str)
        for r in got.rows:
            r[first] = conv(r[first]) if r[first] is not None else None
        got.types[first] = exp_types[first]
    missing_cols = [c for c in names if c not in actual_names] if got.rows else []
    if missing_cols:
        differences.append(f"columns missing: {missing_cols}")
    extra_cols = sorted(actual_names - set(names))
    if extra_cols and not allow_extra:
        differences.append(f"columns not expected: {extra_cols} (--allow-extra-columns ignores them)")
    for c in names:
        if c in got.types and kind(got.types[c]) != kind(exp_types[c]):
            differences.append(f"column {c} is {kind(got.types[c])}, expected {kind(exp_types[c])}")

    def ident_of(r):
        return tuple(r.get(c) for c in ident)

    def label(k):
        return " ".join(f"{c}={show(v, c in times)}" for c, v in zip(ident, k))

    want = {}
    for r in expected:
        if ident_of(r) in want:
            raise Unusable(f"the query gives two rows for {label(ident_of(r))}: group by the keys and window")
        want[ident_of(r)] = r
    have, dups = {}, {}
    for r in got.rows:
        k = ident_of(r)
        if k in have:
            dups[k] = dups.get(k, 1) + 1
        else:
            have[k] = r
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    differing = []
    for k in want:
        if k in have:
            cols = [c for c in names if c not in ident and c in actual_names
                    and not same(want[k][c], have[k].get(c))]
            if cols:
                differing.append((k, cols))

    def section(title, items, fmt):
        if items:
            print(f"  {title}: {len(items)}")
            for item in sorted(items, key=lambda x: repr(x))[:limit]:
                print("    " + fmt(item))
            if len(items) > limit:
                print(f"    ... {len(items) - limit} more")

    def values(r):
        return ", ".join(f"{c}={show(r.get(c), c in times)}" for c in names if c not in ident)

    equal = not (differences or missing or extra or differing or dups)
    print(f"golden: {got.name}: {len(want)} expected rows, {len(got.rows)} found"
          + ("" if equal else " — DIFFERS"))
    for d in differences:
        print(f"  {d}")
    section("missing rows (expected, not found)", missing, lambda k: f"{label(k)}: {values(want[k])}")
    section("extra rows (found, not expected)", extra, lambda k: f"{label(k)}: {values(have[k])}")
    section("rows found more than once", list(dups.items()), lambda kv: f"{label(kv[0])}: {kv[1]} times")
    section("differing rows", differing, lambda kc: f"{label(kc[0])}: " + "; ".join(
        f"{c} expected {show(want[kc[0]][c], c in times)}, found {show(have[kc[0]].get(c), c in times)}"
        for c in kc[1]))
    if not equal:
        print(f"golden: {got.name}: {len(missing)} missing, {len(extra)} extra, {len(differing)} differing, "
              f"{len(dups)} duplicated, {len(differences)} other difference(s)")
    return equal


def last_per_group(rows: list[dict], keys: list[str]) -> list[dict]:
    last = {}
    for r in rows:
        k = tuple(r[c] for c in keys)
        if k not in last or r["window_start"] > last[k]["window_start"]:
            last[k] = r
    return list(last.values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", required=True, type=Path, help="JSON lines: the records the job read")
    ap.add_argument("--columns", required=True, help="the table's columns: 'name TYPE [NOT NULL], name AS expr'")
    ap.add_argument("--table", default="events", help="the table's name in the query (events)")
    query = ap.add_mutually_exclusive_group(required=True)
    query.add_argument("--query", help="the DuckDB query of the expected rows")
    query.add_argument("--query-file", type=Path, help="a file holding it")
    ap.add_argument("--keys", help="the key columns, comma-separated (default: see above)")
    ap.add_argument("--versions", type=Path, help="JSON lines: the versions of a joined table")
    ap.add_argument("--versions-columns", help="their columns: 'name TYPE [NOT NULL], ...'")
    ap.add_argument("--versions-table", default="versions", help="their table's name in the query (versions)")
    ap.add_argument("--history", type=Path, metavar="OUT", help="compare with OUT/parquet (every row)")
    ap.add_argument("--latest", type=Path, metavar="OUT", help="compare with OUT/latest.json's final records "
                    "(each group's last window)")
    ap.add_argument("--kafka", type=Path, metavar="DUMP", help="compare with a dump of the Kafka output "
                    "(JSON lines of record values; every row)")
    ap.add_argument("--skip-invalid", action="store_true", help="leave out invalid records instead of failing")
    ap.add_argument("--allow-extra-columns", action="store_true", help="columns the query lacks are not a "
                    "difference")
    ap.add_argument("--limit", type=int, default=20, help="rows listed per kind of difference (20)")
    args = ap.parse_args(argv)
    if not (args.history or args.latest or args.kafka):
        ap.error("nothing to compare with: give --history, --latest or --kafka")
    try:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET threads = 1")  # a deterministic order of float sums
        columns = parse_columns(args.columns)
        sql = args.query if args.query is not None else args.query_file.read_text(encoding="utf-8")
        latest_doc = None
        if args.latest:
            path = args.latest / "latest.json"
            try:
                latest_doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise Unusable(f"cannot read {path}: {e}")
        keys = args.keys.split(",") if args.keys else None
        if keys is None and isinstance(latest_doc, dict) and isinstance(latest_doc.get("columns"), list):
            keys = [c["name"] for c in latest_doc["columns"] if c.get("role") == "key"] or None
        if args.versions:
            if not args.versions_columns:
                raise Unusable("--versions needs --versions-columns")
            load_events(con, args.versions, args.versions_table, parse_columns(args.versions_columns), set(), False)
        # The query's columns, on an empty table first: decoding needs the keys (a TEXT key is 1 to 64 bytes).
        register_events(con, args.table, columns, [])
        try:
            names = con.sql(f"SELECT * FROM ({sql}) LIMIT 0").columns
        except duckdb.Error as e:
            raise Unusable(f"the expected query failed in DuckDB: {e}")
        if "window_start" not in names or "window_end" not in names:
            raise Unusable(f"the query's columns {names} lack window_start and window_end")
        keys = keys or names[: names.index("window_start")]
        if not keys or any(k not in names for k in keys):
            raise Unusable(f"keys {keys} are not among the query's columns {names}")
        text_keys = {c["name"] for c in columns if c.get("type") == "TEXT" and c["name"] in keys}
        load_events(con, args.events, args.table, columns, text_keys, args.skip_invalid)
        result = con.sql(sql).to_arrow_table()
        exp_types = {f.name: f.type for f in result.schema}
        cols = {name: column_values(result.column(name)) for name in result.column_names}
        expected = [{c: cols[c][i] for c in cols} for i in range(result.num_rows)]
        print(f"golden: the query gives {len(expected)} rows of {list(exp_types)}; keys {keys}")
        times = {c for c, t in exp_types.items() if pa.types.is_timestamp(t)}
        ok = True
        if args.history:
            ok &= compare(expected, exp_types, read_history(con, args.history, keys), keys, args.limit,
                          args.allow_extra_columns)
        if args.latest:
            records = latest_doc.get("records") if isinstance(latest_doc, dict) else None
            if not isinstance(records, list):
                raise Unusable(f"{args.latest / 'latest.json'} has no records list")
            got = read_json_rows(f"latest {args.latest / 'latest.json'} (final records)",
                                 [r for r in records if isinstance(r, dict) and r.get("final") is True], times)
            declared = latest_doc.get("columns")
            if isinstance(declared, list):
                described = [(c.get("name"), c.get("type")) for c in declared if isinstance(c, dict)]
                want = [(name, kind(ty)) for name, ty in exp_types.items()]
                if described != want:
                    got.problems.append(f"latest.json's columns are {described}, expected {want}")
            ok &= compare(last_per_group(expected, keys), exp_types, got, keys, args.limit,
                          args.allow_extra_columns)
        if args.kafka:
            try:
                lines = args.kafka.read_text(encoding="utf-8").splitlines()
                dump = [json.loads(line) for line in lines if line.strip()]
            except (OSError, ValueError) as e:
                raise Unusable(f"cannot read the Kafka dump {args.kafka}: {e}")
            ok &= compare(expected, exp_types, read_json_rows(f"kafka {args.kafka}", dump, times), keys,
                          args.limit, args.allow_extra_columns)
    except Unusable as e:
        print(f"golden: cannot check: {e}", file=sys.stderr)
        return 2
    print("golden: equal" if ok else "golden: DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
