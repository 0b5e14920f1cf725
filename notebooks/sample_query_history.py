"""The non-seed histories of make_sample_history.py (`--query example|two-keys`): the outputs of a job written in SQL,
in the layout of the output contract (keys, window bounds, then the query's values; partitioned by the first key).

- `example`: the contract's example query over plant sensors, keyed by `sensor_id`:
  n (COUNT(*)), avg_pressure, max_co2, vibration_sd (STDDEV_SAMP), site (LAST_VALUE), in 10 s tumbling windows.
- `two-keys`: the same readings grouped by `site` then `sensor_id`, with avg_pressure, max_co2 and vibration_sd
  only: a query without a count column.

latest.json states the query (`query`, `builtin: false`) and its `columns`; its records are the query's rows as
JSON (timestamps as RFC 3339 text, NULL as null); `fleet` says why the seed's views are unavailable. The
dead-letter folder holds late and bad records of the readings' schema, consistent with the counters.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

EXAMPLE_SQL = """CREATE TABLE readings (
    sensor_id  VARCHAR(64) NOT NULL, site TEXT, event_time TIMESTAMP NOT NULL,
    pressure DOUBLE, co2 BIGINT, vibration DOUBLE,
    WATERMARK FOR event_time AS event_time - INTERVAL '30' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'plant-sensors', 'format' = 'json');
SELECT sensor_id, window_start, window_end, COUNT(*) AS n, AVG(pressure) AS avg_pressure,
       MAX(co2) AS max_co2, STDDEV_SAMP(vibration) AS vibration_sd, LAST_VALUE(site) AS site
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '{size}' SECOND))
GROUP BY sensor_id, window_start, window_end;"""

TWO_KEYS_SQL = """CREATE TABLE readings (
    sensor_id  VARCHAR(64) NOT NULL, site TEXT NOT NULL, event_time TIMESTAMP NOT NULL,
    pressure DOUBLE, co2 BIGINT, vibration DOUBLE,
    WATERMARK FOR event_time AS event_time - INTERVAL '30' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'plant-sensors', 'format' = 'json');
SELECT site, sensor_id, window_start, window_end, AVG(pressure) AS avg_pressure,
       MAX(co2) AS max_co2, STDDEV_SAMP(vibration) AS vibration_sd
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(event_time), INTERVAL '{size}' SECOND))
GROUP BY site, sensor_id, window_start, window_end;"""

SENSORS = ["s-1", "a/b", "\U0001f525-sensor", "100% x=y", "007"]
SITES = ["plant-a", "plant/b", "site 3"]
ARROW = {"TEXT": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "TIMESTAMP": pa.timestamp("ms", tz="UTC")}
BAD_REASONS = [("not_json", 0.4), ("missing_field", 0.3), ("wrong_type", 0.2), ("empty", 0.05), ("tombstone", 0.05)]


def column(name, ty, role, nullable):
    return {"name": name, "type": ty, "role": role, "nullable": nullable}


def schema(query: str) -> list[dict]:
    bounds = [column("window_start", "TIMESTAMP", "window", False), column("window_end", "TIMESTAMP", "window", False)]
    values = [column("avg_pressure", "DOUBLE", "value", True), column("max_co2", "BIGINT", "value", True),
              column("vibration_sd", "DOUBLE", "value", True)]
    if query == "example":
        return ([column("sensor_id", "TEXT", "key", False)] + bounds + [column("n", "BIGINT", "value", False)]
                + values + [column("site", "TEXT", "value", True)])
    return [column("site", "TEXT", "key", False), column("sensor_id", "TEXT", "key", False)] + bounds + values


def groups(query: str, n: int, rng) -> list[tuple]:
    sensors = SENSORS[:n] + [f"sensor-{i:03d}" for i in range(len(SENSORS), n)]
    if query == "example":
        return [(s,) for s in sensors]
    return [(SITES[i % len(SITES)], s) for i, s in enumerate(sensors)]


def write(args, rng, escape, rfc3339, start: int, out: Path, dl_dir: Path, pq_dir: Path) -> int:
    query, size = args.query, args.window
    cols = schema(query)
    keys = [c["name"] for c in cols if c["role"] == "key"]
    total_windows = args.windows + args.open_windows
    group_list = groups(query, args.devices, rng)
    group_rows = []  # per group: window indexes and value columns
    for g in group_list:
        mask = np.ones(total_windows, dtype=bool)
        for _ in range(rng.poisson(total_windows / 400.0)):
            g0 = rng.integers(0, max(1, total_windows - 1))
            mask[g0: g0 + rng.integers(2, 25)] = False
        mask[-1] = True
        idx = np.flatnonzero(mask)
        m = len(idx)
        counts = 1 + rng.poisson(max(args.events_per_window - 1.0, 0.0), m)
        pressure = 1000.0 + np.cumsum(rng.normal(0.0, 0.8, m))
        co2 = rng.integers(400, 2000, m)
        sd = np.abs(rng.normal(0.05, 0.02, m))
        vals = {
            "n": counts.astype(np.int64),
            "avg_pressure": [None if rng.random() < 0.03 else round(float(p), 4) for p in pressure],
            "max_co2": [None if rng.random() < 0.03 else int(c) for c in co2],
            "vibration_sd": [None if c < 2 or rng.random() < 0.03 else round(float(s), 5) for c, s in zip(counts, sd)],
            "site": [None if rng.random() < 0.05 else SITES[int(rng.integers(0, len(SITES)))] for _ in range(m)],
        }
        group_rows.append((g, idx, vals))

    final_rows = 0
    events_final = events_open = 0
    records = []
    late = []
    for gi, (g, idx, vals) in enumerate(group_rows):
        n_final = int(np.sum(idx < args.windows))
        final_rows += n_final
        events_final += int(vals["n"][:n_final].sum())
        events_open += int(vals["n"][n_final:].sum())
        ws = start + idx.astype(np.int64) * size
        arrays = {"window_start": pa.array(ws[:n_final], ARROW["TIMESTAMP"]),
                  "window_end": pa.array(ws[:n_final] + size, ARROW["TIMESTAMP"])}
        for k, c in zip(keys[1:], g[1:]):
            arrays[k] = pa.array([c] * n_final, pa.string())
        for c in cols:
            if c["role"] == "value":
                arrays[c["name"]] = pa.array(list(vals[c["name"]][:n_final]), ARROW[c["type"]])
        table = pa.table({c["name"]: arrays[c["name"]] for c in cols if c["name"] != keys[0]})
        with_id = args.device_id_column == "all" or (args.device_id_column == "some" and gi % 2 == 1)
        if with_id:
            table = table.append_column(keys[0], pa.array([g[0]] * table.num_rows, pa.string()))
        folder = pq_dir / f"{keys[0]}={escape(g[0])}"
        folder.mkdir(exist_ok=True)
        bounds = np.linspace(0, table.num_rows, max(1, args.checkpoints) + 1).astype(int)
        for ck in range(len(bounds) - 1):
            chunk = table.slice(bounds[ck], bounds[ck + 1] - bounds[ck])
            if chunk.num_rows:
                pq.write_table(chunk, folder / f"part-{ck + 1:08d}-w{gi % 2}-{gi:04d}.parquet")
        if not args.no_inprogress:
            pq.write_table(table.slice(max(0, table.num_rows - 5)), folder / f".part-99999999-w{gi % 2}.parquet.inprogress")

        def record(i, final):
            rec = dict(zip(keys, g))
            rec["window_start"], rec["window_end"] = rfc3339(int(ws[i])), rfc3339(int(ws[i] + size))
            for c in cols:
                if c["role"] == "value":
                    v = vals[c["name"]][i]
                    rec[c["name"]] = int(v) if isinstance(v, np.integer) else v
            rec["final"] = final
            return rec

        if n_final:
            records.append(record(n_final - 1, True))
        if len(idx) > n_final:
            records.append(record(len(idx) - 1, False))
        for _ in range(rng.binomial(int(vals["n"].sum()), args.late_fraction)):
            if n_final:
                late.append((g, int(ws[int(rng.integers(0, n_final))] + rng.integers(0, size))))

    events_total = events_final + events_open
    dl = []
    for g, ts in late:
        payload = {"sensor_id": g[-1], "event_time": rfc3339(ts), "pressure": 1000.5}
        if query == "two-keys":
            payload["site"] = g[0]
        wend = ts - ts % size + size
        dl.append({"reason": "late", "detail": f"window ending {rfc3339(wend)} is at or below the partition watermark",
                   "key": g[-1], "payload": json.dumps(payload, ensure_ascii=False), "ts": ts,
                   "window_end": rfc3339(wend), "at_ms": ts + 30_000 + int(rng.integers(size, 60_000))})
    reasons = [r for r, _ in BAD_REASONS]
    probs = np.array([p for _, p in BAD_REASONS])
    bad_by_reason = {r: 0 for r in reasons}
    for _ in range(rng.binomial(events_total, args.bad_fraction)):
        reason = reasons[rng.choice(len(reasons), p=probs / probs.sum())]
        g = group_list[int(rng.integers(0, len(group_list)))]
        ts = int(start + rng.integers(0, total_windows * size))
        event = {"sensor_id": g[-1], "event_time": rfc3339(ts), "co2": 500}
        payload = {"not_json": json.dumps(event)[:12], "missing_field": json.dumps({"sensor_id": g[-1]}),
                   "wrong_type": json.dumps(dict(event, co2="500")), "empty": "", "tombstone": None}[reason]
        bad_by_reason[reason] += 1
        dl.append({"reason": reason, "detail": f"a {reason} record", "key": g[-1], "payload": payload,
                   "at_ms": ts + int(rng.integers(50, 2_000))})
    dl.sort(key=lambda r: r["at_ms"])
    files = {0: [], 1: []}
    for i, r in enumerate(dl):
        at_ms = r.pop("at_ms")
        line = {"reason": r["reason"], "detail": r["detail"], "partition": i % 3, "offset": 10 * i + 7,
                "key": r["key"], "payload": r["payload"]}
        for opt in ("ts", "window_end"):
            if opt in r:
                line[opt] = r[opt]
        line["at"] = rfc3339(at_ms)
        files[i % 2].append(json.dumps(line, ensure_ascii=False))
    for w, lines in files.items():
        (dl_dir / f"worker-{w}.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")

    if not args.no_latest:
        last_end = start + total_windows * size
        watermark = start + args.windows * size
        pipeline = {"events_total": events_total, "late_total": len(late), "bad_total": sum(bad_by_reason.values()),
                    "input_rate": 0.0, "batch_ms": 0.3, "lag": 0, "watermark_delay_ms": 0, "workers": 2}
        sql = (EXAMPLE_SQL if query == "example" else TWO_KEYS_SQL).format(size=size // 1000)
        doc = {"updated_at": last_end // 1000 + 5, "watermark": rfc3339(watermark - 30_000 if args.open_windows
                                                                        else watermark),
               "query": {"sql": sql, "builtin": False}, "columns": cols, "records": records, "pipeline": pipeline}
        if not args.minimal_latest:
            pipeline["bad_by_reason"] = {r: n for r, n in sorted(bad_by_reason.items())}
            pipeline["open_windows"] = args.open_windows * len(group_list)
            pipeline["final_windows"] = final_rows
            doc["window"] = {"kind": "tumbling", "size_ms": size}
            doc["fleet"] = {"devices": 0, "locations": [], "alerts": [],
                            "unavailable": "the fleet views need the columns avg_temperature, avg_humidity, "
                                           "min_battery, count, warn_count and error_count"}
        tmp = out / ".latest.json.tmp"
        tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, out / "latest.json")
    elif (out / "latest.json").exists():
        (out / "latest.json").unlink()
    print(f"wrote {final_rows} final windows of {len(group_list)} groups of the {query} query ({events_final} events "
          f"in Parquet, {events_open} in open windows), {len(late)} late and {sum(bad_by_reason.values())} bad "
          f"events to {out} and {dl_dir}")
    return 0


def prepare(out: Path, dl_dir: Path) -> Path:
    pq_dir = out / "parquet"
    if pq_dir.exists():
        shutil.rmtree(pq_dir)
    pq_dir.mkdir(parents=True)
    dl_dir.mkdir(parents=True, exist_ok=True)
    for old in dl_dir.glob("*.jsonl"):
        old.unlink()
    return pq_dir
