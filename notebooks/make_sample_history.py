#!/usr/bin/env python3
"""Writes a synthetic history in exactly the layout the dataflow produces, for the notebooks and their tests.

Output (the contract of `model/src/history.rs` and `model/src/latest.rs`; docs/ARCHITECTURE.md lists every contract):

    <out>/parquet/device_id=<percent-encoded id>/part-<checkpoint>-w<worker>.parquet   final windows, Hive layout
    <out>/parquet/device_id=<...>/day-<YYYY-MM-DD>.parquet                            the oldest ones, compacted
    <out>/parquet/device_id=<...>/.part-<...>.parquet.inprogress                        uncommitted files (ignored)
    <out>/latest.json                                                                   counters consistent with the rows
    <deadletter>/worker-<n>.jsonl                                                       late and bad events

The readings follow the device simulator: temperature and humidity as mean-reverting random walks, batteries
draining at a per-device rate and swapped (back to 100 %) when flat, statuses mostly ok with more errors when
the battery is low. Some devices go offline for a while (no rows for those windows). Device ids include the
awkward ones the contract promises to survive (`a/b`, `..`, `🔥-sensor`, a 64-byte id, `007`).

With --query example or two-keys it writes the outputs of a job written in SQL instead (the contract's example
query, keyed by sensor_id, or its two-key variant keyed by site and sensor_id; sample_query_history.py).

With --open-windows K the newest K windows of every device are still open: they are counted in
pipeline.events_total and shown in latest.json as live records but are not in the Parquet history yet (a
snapshot of a running job). With --total-events N the per-window counts are drawn so that the history holds
exactly N events.

Example (about 1 million events):
    python make_sample_history.py --out /tmp/h/aggregates --deadletter /tmp/h/deadletter \
        --devices 100 --windows 1000 --total-events 1000000
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SPECIAL_IDS = ["a/b", "..", "\U0001f525-sensor", "100% x=y", "\U0001f525" * 16, "007"]
LOCATIONS = ["floor-1", "floor-2", "lab", "office"]
BAD_REASONS = [
    ("not_json", 0.30),
    ("missing_field", 0.20),
    ("wrong_type", 0.15),
    ("out_of_range", 0.15),
    ("bad_status", 0.07),
    ("bad_utf8", 0.05),
    ("empty", 0.04),
    ("tombstone", 0.04),
]
PARTITIONS = 3

SCHEMA = pa.schema(
    [
        ("window_start", pa.timestamp("ms", tz="UTC")),
        ("window_end", pa.timestamp("ms", tz="UTC")),
        ("count", pa.int64()),
        ("avg_temperature", pa.float64()),
        ("avg_humidity", pa.float64()),
        ("min_battery", pa.float64()),
        ("max_battery", pa.float64()),
        ("stddev_temperature", pa.float64()),
        ("warn_count", pa.int64()),
        ("error_count", pa.int64()),
    ]
)


def escape_partition_value(device_id: str) -> str:
    """Percent-encodes every byte except ASCII letters, digits, `-` and `_` (the dataflow's escaping)."""
    out = []
    for b in device_id.encode("utf-8"):
        c = chr(b)
        if b < 128 and (c.isalnum() or c in "-_"):
            out.append(c)
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def rfc3339(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    if ms % 1000:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> int:
    text = text.strip()
    if text.isdigit():
        return int(text)
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def device_ids(n: int, rng: np.random.Generator) -> list[str]:
    ids = SPECIAL_IDS[: min(n, len(SPECIAL_IDS))]
    seen = set(ids)
    while len(ids) < n:
        cand = "device-%06x" % rng.integers(0, 0x1000000)
        if cand not in seen:
            seen.add(cand)
            ids.append(cand)
    return ids


def kafka_partition(device_id: str) -> int:
    # Stable stand-in for Kafka's key hashing: the same device always lands in the same partition.
    h = 2166136261
    for b in device_id.encode("utf-8"):
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h % PARTITIONS


def level(consumed: np.ndarray, start: float) -> np.ndarray:
    """Battery level after `consumed` percent points were drained from `start`, swapped to 100 when flat."""
    return 100.0 - np.mod(100.0 - start + consumed, 100.0)


def simulate_device(rng, n_windows, counts, drain, base_t, base_h, battery0):
    """Per-window aggregates of one device from its per-window event counts."""
    # Temperature and humidity: mean-reverting random walks sampled once per window.
    temp = np.empty(n_windows)
    hum = np.empty(n_windows)
    t, h = base_t, base_h
    noise_t = rng.normal(0.0, 0.35, n_windows)
    noise_h = rng.normal(0.0, 0.8, n_windows)
    for i in range(n_windows):
        t += 0.05 * (base_t - t) + noise_t[i]
        h += 0.05 * (base_h - h) + noise_h[i]
        temp[i] = t
        hum[i] = min(max(h, 0.0), 100.0)
    consumed_after = np.cumsum(counts * drain)
    consumed_before = consumed_after - counts * drain
    first = level(consumed_before + drain, battery0)
    last = level(consumed_after, battery0)
    swapped = first < last  # a swap happened inside the window
    max_b = np.where(swapped, 100.0 - drain, first)
    min_b = np.where(swapped, np.maximum(drain, 0.0), last)
    min_b = np.round(np.minimum(min_b, max_b), 2)
    max_b = np.round(max_b, 2)
    # Statuses: 1 % error and 4 % warn, errors five times as likely on a low battery.
    p_err = np.where(min_b < 10.0, 0.05, 0.01)
    errors = rng.binomial(counts, p_err)
    warns = rng.binomial(counts - errors, 0.04 / (1.0 - p_err))
    std = np.where(counts > 1, np.abs(rng.normal(0.12, 0.05, n_windows)), 0.0)
    return {
        "avg_temperature": np.round(temp, 4),
        "avg_humidity": np.round(hum, 4),
        "min_battery": min_b,
        "max_battery": max_b,
        "stddev_temperature": np.round(std, 4),
        "warn_count": warns.astype(np.int64),
        "error_count": errors.astype(np.int64),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="aggregates folder (gets parquet/ and latest.json)")
    ap.add_argument("--deadletter", required=True, help="dead-letter folder (gets *.jsonl)")
    ap.add_argument("--devices", type=int, default=10)
    ap.add_argument("--windows", type=int, default=360, help="windows per device, before offline gaps")
    ap.add_argument("--window", type=int, default=10_000, help="window size in ms")
    ap.add_argument("--events-per-window", type=float, default=40.0, help="mean events per device and window")
    ap.add_argument("--total-events", type=int, default=None, help="exact number of events in the Parquet history")
    ap.add_argument("--start", default="2024-11-03T12:00:00Z", help="first window start, RFC 3339 or epoch ms")
    ap.add_argument("--checkpoints", type=int, default=4, help="part files per device (one per checkpoint)")
    ap.add_argument("--open-windows", type=int, default=0, help="newest windows per device still open (live)")
    ap.add_argument("--late-fraction", type=float, default=0.005)
    ap.add_argument("--bad-fraction", type=float, default=0.002)
    ap.add_argument("--device-id-column", choices=["none", "some", "all"], default="some",
                    help="also store the partition column (device_id, or the query's first key) inside the files")
    ap.add_argument("--no-inprogress", action="store_true", help="do not plant uncommitted hidden files")
    ap.add_argument("--minimal-latest", action="store_true",
                    help="latest.json with only the required sections (no fleet, no bad_by_reason)")
    ap.add_argument("--no-latest", action="store_true", help="write no latest.json")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--query", choices=["seed", "example", "two-keys"], default="seed",
                    help="whose outputs: the built-in job's (seed), the contract's example query (example: "
                         "sensor_id, n, avg_pressure, max_co2, vibration_sd, site) or its two-key variant "
                         "(two-keys: site, sensor_id, no count column); see sample_query_history.py")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    if args.query != "seed":
        import sample_query_history

        if args.total_events is not None:
            ap.error("--total-events applies to --query seed only")

        start = parse_time(args.start)
        start -= start % args.window
        pq_dir = sample_query_history.prepare(Path(args.out), Path(args.deadletter))
        return sample_query_history.write(args, rng, escape_partition_value, rfc3339, start, Path(args.out),
                                          Path(args.deadletter), pq_dir)
    out = Path(args.out)
    dl_dir = Path(args.deadletter)
    pq_dir = out / "parquet"
    if pq_dir.exists():
        shutil.rmtree(pq_dir)
    pq_dir.mkdir(parents=True)
    dl_dir.mkdir(parents=True, exist_ok=True)
    for old in dl_dir.glob("*.jsonl"):
        old.unlink()

    size = args.window
    start = parse_time(args.start)
    start -= start % size
    ids = device_ids(args.devices, rng)
    total_windows = args.windows + args.open_windows

    # Which windows each device has: devices go offline now and then (about 3 % of windows missing).
    present = []
    for _ in ids:
        mask = np.ones(total_windows, dtype=bool)
        for _gap in range(rng.poisson(total_windows / 400.0)):
            g0 = rng.integers(0, max(1, total_windows - 1))
            mask[g0 : g0 + rng.integers(2, 25)] = False
        mask[-1] = True  # every device is alive at the end
        present.append(np.flatnonzero(mask))
    final_rows = sum(int(np.sum(p < args.windows)) for p in present)
    if final_rows == 0:
        print("no final windows to write", file=sys.stderr)
        return 2

    # Event counts per window: Poisson around the mean, or exactly --total-events spread over the final rows.
    if args.total_events is not None:
        if args.total_events < final_rows:
            print(f"--total-events {args.total_events} is below the {final_rows} final windows", file=sys.stderr)
            return 2
        weights = rng.gamma(8.0, 1.0, final_rows)
        final_counts = 1 + rng.multinomial(args.total_events - final_rows, weights / weights.sum())
    else:
        final_counts = 1 + rng.poisson(max(args.events_per_window - 1.0, 0.0), final_rows)
    mean_events = float(final_counts.mean())

    records_latest = []
    fleet_latest = []
    open_events = 0
    offset_base = [0] * PARTITIONS
    late_candidates = []  # (device, ts) of events that will be dead-lettered as late
    worker_of = {}
    pos = 0
    for di, dev in enumerate(ids):
        idx = present[di]
        n_final = int(np.sum(idx < args.windows))
        counts = np.empty(len(idx), dtype=np.int64)
        counts[:n_final] = final_counts[pos : pos + n_final]
        pos += n_final
        counts[n_final:] = 1 + rng.poisson(max(mean_events - 1.0, 0.0), len(idx) - n_final)
        # Drain per event as in the simulator at 40 events per window, scaled so the drain per hour stays alike.
        drain = rng.uniform(0.001, 0.01) * (40.0 / max(mean_events, 1.0))
        base_t, base_h = rng.uniform(19.0, 27.0), rng.uniform(35.0, 65.0)
        battery0 = rng.uniform(60.0, 100.0)
        agg = simulate_device(rng, len(idx), counts, drain, base_t, base_h, battery0)
        ws = start + idx.astype(np.int64) * size
        location = LOCATIONS[di % len(LOCATIONS)]
        worker_of[dev] = di % 2

        # Final windows go to Parquet, one file per checkpoint.
        cols = {
            "window_start": pa.array(ws[:n_final], pa.timestamp("ms", tz="UTC")),
            "window_end": pa.array(ws[:n_final] + size, pa.timestamp("ms", tz="UTC")),
            "count": pa.array(counts[:n_final], pa.int64()),
        }
        for name in SCHEMA.names[3:]:
            cols[name] = pa.array(agg[name][:n_final], SCHEMA.field(name).type)
        table = pa.table(cols, schema=SCHEMA)
        with_id = args.device_id_column == "all" or (args.device_id_column == "some" and di % 2 == 1)
        if with_id:
            table = table.append_column("device_id", pa.array([dev] * table.num_rows, pa.string()))
        dev_dir = pq_dir / f"device_id={escape_partition_value(dev)}"
        dev_dir.mkdir()
        bounds = np.linspace(0, table.num_rows, max(1, args.checkpoints) + 1).astype(int)
        for ck in range(len(bounds) - 1):
            chunk = table.slice(bounds[ck], bounds[ck + 1] - bounds[ck])
            if not chunk.num_rows:
                continue
            starts = chunk.column("window_start").cast(pa.int64()).to_numpy() // 86_400_000
            if ck == 0 and starts.min() == starts.max():
                # The oldest windows as compaction leaves them: one file of their UTC day.
                day = (np.datetime64(0, "D") + int(starts.min())).astype(str)
                pq.write_table(chunk, dev_dir / f"day-{day}.parquet")
            else:
                pq.write_table(chunk, dev_dir / f"part-{ck + 1:08d}-w{worker_of[dev]}.parquet")
        if not args.no_inprogress:
            # An uncommitted checkpoint: rows a reader must not see (they would duplicate the last windows).
            tail = table.slice(max(0, table.num_rows - 5))
            pq.write_table(tail, dev_dir / f".part-{len(bounds):08d}-w{worker_of[dev]}.parquet.inprogress")
            if di == 0:
                pq.write_table(tail, dev_dir / f"_part-{len(bounds):08d}-w{worker_of[dev]}.parquet.tmp")

        def rec(i, final):
            return {
                "device_id": dev,
                "window_start": rfc3339(int(ws[i])),
                "window_end": rfc3339(int(ws[i] + size)),
                "count": int(counts[i]),
                "avg_temperature": float(agg["avg_temperature"][i]),
                "avg_humidity": float(agg["avg_humidity"][i]),
                "min_battery": float(agg["min_battery"][i]),
                "max_battery": float(agg["max_battery"][i]),
                "stddev_temperature": float(agg["stddev_temperature"][i]),
                "warn_count": int(agg["warn_count"][i]),
                "error_count": int(agg["error_count"][i]),
                "final": final,
            }

        if n_final:
            records_latest.append(rec(n_final - 1, True))
            fleet_latest.append((dev, location, n_final - 1, counts, agg))
        if len(idx) > n_final:
            records_latest.append(rec(len(idx) - 1, False))
            open_events += int(counts[n_final:].sum())

        # Late events: readings of already-final windows that arrived after the watermark passed them.
        n_late = rng.binomial(int(counts.sum()), args.late_fraction)
        if n_late and n_final:
            pick = rng.integers(0, n_final, n_late)
            ts = ws[pick] + rng.integers(0, size, n_late)
            late_candidates.extend((dev, int(t)) for t in ts)

    events_total = int(final_counts.sum()) + open_events
    last_end = start + total_windows * size
    watermark_ms = start + args.windows * size  # every window up to here is final
    lateness_ms = 60_000

    # Dead-letter output, split over two worker files (and one empty file of an idle worker).
    dl_records = []
    for dev, ts in late_candidates:
        at_ms = ts + lateness_ms + int(rng.integers(size, 70_000))
        payload = json.dumps(
            {"device_id": dev, "ts": ts, "temperature": round(float(rng.uniform(19, 27)), 2),
             "humidity": round(float(rng.uniform(35, 65)), 2), "battery": round(float(rng.uniform(5, 99)), 2),
             "status": "ok", "location": LOCATIONS[ids.index(dev) % len(LOCATIONS)]},
            ensure_ascii=False,
        )
        wend = ts - ts % size + size
        dl_records.append({
            "reason": "late", "detail": f"window ending {rfc3339(wend)} is at or below the partition watermark",
            "key": dev, "payload": payload, "ts": ts, "window_end": rfc3339(wend), "at_ms": at_ms,
        })
    n_bad = rng.binomial(events_total, args.bad_fraction)
    reasons = [r for r, _ in BAD_REASONS]
    probs = np.array([p for _, p in BAD_REASONS])
    for _ in range(n_bad):
        reason = reasons[rng.choice(len(reasons), p=probs / probs.sum())]
        dev = ids[rng.integers(0, len(ids))]
        ts = int(start + rng.integers(0, total_windows * size))
        event = {"device_id": dev, "ts": ts, "temperature": 22.5, "humidity": 50.0, "battery": 80.0,
                 "status": "ok", "location": "lab"}
        rec = {"reason": reason, "key": dev, "at_ms": ts + int(rng.integers(50, 2_000))}
        if reason == "not_json":
            rec["payload"] = json.dumps(event, ensure_ascii=False)[: int(rng.integers(5, 40))]
            rec["detail"] = "value is not valid JSON: EOF while parsing an object"
        elif reason == "missing_field":
            field = ["ts", "humidity", "battery", "status"][rng.integers(0, 4)]
            event.pop(field)
            rec["payload"] = json.dumps(event, ensure_ascii=False)
            rec["detail"] = f"missing field `{field}`"
            if field != "ts":
                rec["ts"] = ts
        elif reason == "wrong_type":
            event["temperature"] = "22.5"
            rec["payload"] = json.dumps(event, ensure_ascii=False)
            rec["detail"] = "field `temperature` has the wrong type: expected a number, found a string"
            rec["ts"] = ts
        elif reason == "out_of_range":
            event["humidity"] = round(100.0 + float(rng.uniform(0.5, 50.0)), 2)
            rec["payload"] = json.dumps(event, ensure_ascii=False)
            rec["detail"] = f"field `humidity` out of range: {event['humidity']} not in 0..=100"
            rec["ts"] = ts
        elif reason == "bad_status":
            event["status"] = "broken"
            rec["payload"] = json.dumps(event, ensure_ascii=False)
            rec["detail"] = "field `status` must be ok, warn or error"
            rec["ts"] = ts
        elif reason == "bad_utf8":
            raw = json.dumps(event).encode()[:20] + b"\xff\xfe" + json.dumps(event).encode()[20:]
            rec["payload"] = raw.decode("utf-8", errors="replace")
            rec["payload_base64"] = base64.b64encode(raw).decode()
            rec["detail"] = "value is not valid UTF-8 (invalid byte at offset 20)"
        elif reason == "empty":
            rec["payload"] = ""
            rec["detail"] = "record value is empty"
        else:  # tombstone: the record has no value at all
            rec["payload"] = None
            rec["detail"] = "record has no value (tombstone)"
        dl_records.append(rec)

    # Partition and offset: the device's Kafka partition, offsets increasing in arrival order.
    dl_records.sort(key=lambda r: r["at_ms"])
    per_partition_events = max(1, events_total // PARTITIONS)
    for r in dl_records:
        p = kafka_partition(r["key"]) if r["key"] is not None else 0
        offset_base[p] += 1 + int(rng.integers(0, max(1, per_partition_events // max(1, len(dl_records)))))
        r["partition"] = p
        r["offset"] = offset_base[p]
    files = {0: [], 1: []}
    for r in dl_records:
        at_ms = r.pop("at_ms")
        line = {"reason": r["reason"]}
        if "detail" in r:
            line["detail"] = r["detail"]
        line["partition"] = r["partition"]
        line["offset"] = r["offset"]
        line["key"] = r["key"] if r["reason"] != "tombstone" or rng.random() < 0.5 else None
        line["payload"] = r["payload"]
        for opt in ("payload_base64", "ts", "window_end"):
            if opt in r:
                line[opt] = r[opt]
        line["at"] = rfc3339(at_ms)
        files[worker_of.get(r["key"], 0)].append(json.dumps(line, ensure_ascii=False))
    for w, lines in files.items():
        with open(dl_dir / f"worker-{w}.jsonl", "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
    (dl_dir / "worker-2.jsonl").write_text("", encoding="utf-8")

    late_total = sum(1 for r in dl_records if r["reason"] == "late")
    bad_by_reason = {code: 0 for code in reasons}
    for r in dl_records:
        if r["reason"] != "late":
            bad_by_reason[r["reason"]] += 1
    bad_total = sum(bad_by_reason.values())

    if not args.no_latest:
        pipeline = {
            "events_total": events_total,
            "late_total": late_total,
            "bad_total": bad_total,
            "input_rate": 0.0,
            "batch_ms": 0.42,
            "lag": 0,
            "watermark_delay_ms": 0,
            "workers": 2,
        }
        doc = {
            "updated_at": last_end // 1000 + 5,
            "watermark": rfc3339(watermark_ms - lateness_ms if args.open_windows else watermark_ms),
            "records": records_latest,
            "pipeline": pipeline,
        }
        if not args.minimal_latest:
            pipeline["bad_by_reason"] = dict(sorted(bad_by_reason.items()))
            pipeline["open_windows"] = args.open_windows * len(ids)
            pipeline["final_windows"] = final_rows
            locations = {}
            alerts = []
            for dev, loc, i, counts, agg in fleet_latest:
                l = locations.setdefault(loc, {"location": loc, "devices": 0, "events": 0, "t": 0.0, "h": 0.0,
                                               "min_battery": 100.0, "warn_count": 0, "error_count": 0})
                c = int(counts[i])
                l["devices"] += 1
                l["events"] += c
                l["t"] += c * float(agg["avg_temperature"][i])
                l["h"] += c * float(agg["avg_humidity"][i])
                l["min_battery"] = min(l["min_battery"], float(agg["min_battery"][i]))
                l["warn_count"] += int(agg["warn_count"][i])
                l["error_count"] += int(agg["error_count"][i])
                wend = rfc3339(int(start + present[ids.index(dev)][i] * size + size))
                if agg["min_battery"][i] < 15.0:
                    alerts.append({"device_id": dev, "kind": "battery_low", "value": float(agg["min_battery"][i]),
                                   "window_end": wend})
                if agg["error_count"][i] > 0:
                    alerts.append({"device_id": dev, "kind": "status_error", "value": float(agg["error_count"][i]),
                                   "window_end": wend})
            doc["fleet"] = {
                "devices": len(fleet_latest),
                "locations": [
                    {"location": l["location"], "devices": l["devices"], "events": l["events"],
                     "avg_temperature": l["t"] / l["events"], "avg_humidity": l["h"] / l["events"],
                     "min_battery": l["min_battery"], "warn_count": l["warn_count"], "error_count": l["error_count"]}
                    for l in sorted(locations.values(), key=lambda x: x["location"])
                ],
                "alerts": alerts,
            }
        tmp = out / ".latest.json.tmp"
        tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, out / "latest.json")
    elif (out / "latest.json").exists():
        (out / "latest.json").unlink()

    print(
        f"wrote {final_rows} final windows of {len(ids)} devices ({int(final_counts.sum())} events in Parquet, "
        f"{open_events} in open windows), {late_total} late and {bad_total} bad events to {out} and {dl_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
