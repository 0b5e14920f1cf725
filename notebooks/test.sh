#!/usr/bin/env bash
# Executes the analysis notebooks headless on a history and checks that their data-quality gate fails loudly.
#
#   notebooks/test.sh                          generates a small synthetic history and tests on it
#   notebooks/test.sh DATA_DIR DEADLETTER_DIR   tests on a real history (DATA_DIR holds parquet/ and latest.json)
#   notebooks/test.sh --venv-only              only builds (or checks) the virtual environment and prints its python
#
# Tests: every notebook runs top to bottom on the history; with a duplicate row planted (one partition's part file
# copied under a second part-*.parquet name) history_analysis.ipynb must fail with the duplicate check's message
# (naming the history's keys); with pipeline.events_total off by one it must fail with the totals check's message
# (naming its count column; a query without one must pass and say so). On the synthetic history it also runs on a
# live snapshot (open windows, parameters from environment variables, empty dead-letter folder, latest.json with
# only the required sections), without latest.json or dead-letter folder, and, with the same negative tests, on the
# histories of two queries of a job's own (the output contract's example, keyed by sensor_id, and its two-key
# variant without a count column, also without latest.json).
#
# Environment: IOT_CACHE (default ~/.cache/iot-pipeline) holds the virtual environment (notebooks-venv, rebuilt
# when requirements.txt changes) and the executed notebooks (notebooks-out/); PYTHON picks the interpreter
# (python3); IOT_NOTEBOOK_CELL_TIMEOUT (600 s) and IOT_NOTEBOOK_TIMEOUT (1200 s) bound one cell and one run.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${IOT_CACHE:-$HOME/.cache/iot-pipeline}"
VENV="$CACHE/notebooks-venv"
OUT="${IOT_NOTEBOOK_OUT:-$CACHE/notebooks-out}"
PYTHON="${PYTHON:-python3}"
CELL_TIMEOUT="${IOT_NOTEBOOK_CELL_TIMEOUT:-600}"
RUN_TIMEOUT="${IOT_NOTEBOOK_TIMEOUT:-1200}"
KERNEL="iot-notebooks"
MAIN_NOTEBOOK="history_analysis.ipynb"

VENV_ONLY=0
if [ $# -eq 1 ] && [ "$1" = "--venv-only" ]; then
    VENV_ONLY=1
    shift
elif [ $# -ne 0 ] && [ $# -ne 2 ]; then
    echo "usage: $0 [DATA_DIR DEADLETTER_DIR | --venv-only]" >&2
    exit 2
fi

# ---- virtual environment, outside the repository, rebuilt when requirements.txt (or the interpreter) changes
mkdir -p "$CACHE"
want_stamp="$( { sha256sum "$HERE/requirements.txt" | cut -d' ' -f1; "$PYTHON" -c 'import sys; print(sys.version)'; } \
    | sha256sum | cut -d' ' -f1)"
exec 9>"$CACHE/notebooks-venv.lock"
if command -v flock >/dev/null; then flock 9; fi
if [ "$(cat "$VENV/.requirements-stamp" 2>/dev/null || true)" != "$want_stamp" ]; then
    echo "notebooks: building the virtual environment in $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$HERE/requirements.txt"
    "$VENV/bin/python" -m ipykernel install --sys-prefix --name "$KERNEL" \
        --display-name "Python (iot-pipeline notebooks)" >/dev/null
    echo "$want_stamp" >"$VENV/.requirements-stamp"
fi
if command -v flock >/dev/null; then flock -u 9; fi
exec 9>&-
PY="$VENV/bin/python"
if [ "$VENV_ONLY" -eq 1 ]; then
    echo "$PY"
    exit 0
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/iot-notebooks.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT"

if [ $# -eq 2 ]; then
    DATA="$(cd "$1" && pwd)"
    case "$2" in
        /*) DEADLETTER="$2" ;;
        *) DEADLETTER="$PWD/$2" ;;
    esac
    SAMPLE=0
    echo "notebooks: history $DATA, dead-letter $DEADLETTER"
else
    SAMPLE=1
    DATA="$WORK/sample/aggregates"
    DEADLETTER="$WORK/sample/deadletter"
    "$PY" "$HERE/make_sample_history.py" --out "$DATA" --deadletter "$DEADLETTER"
fi

passed=0
failed=0
skipped=0

# run NOTEBOOK OUTPUT LOG [papermill args...]: executes one notebook headless; returns papermill's status.
run() {
    local nb="$1" out="$2" log="$3"
    shift 3
    mkdir -p "$(dirname "$out")"
    timeout "$RUN_TIMEOUT" env JUPYTER_PLATFORM_DIRS=1 PYDEVD_DISABLE_FILE_VALIDATION=1 \
        "$VENV/bin/papermill" "$nb" "$out" -k "$KERNEL" --cwd "$HERE" \
        --execution-timeout "$CELL_TIMEOUT" --no-progress-bar "$@" >"$log" 2>&1
}

pass() { passed=$((passed + 1)); echo "ok    $1"; }
fail() {
    failed=$((failed + 1))
    echo "FAIL  $1: $2"
    if [ -n "${3:-}" ] && [ -f "$3" ]; then sed 's/^/      | /' "$3" | tail -n 40; fi
}

# expect_pass NAME NOTEBOOK [args...]
expect_pass() {
    local name="$1" nb="$2"
    shift 2
    local base
    base="$(basename "$nb" .ipynb)"
    local out="$OUT/$name/$base.ipynb" log="$OUT/$name/$base.log"
    local start=$SECONDS
    if run "$nb" "$out" "$log" "$@"; then
        pass "$name: $base ($((SECONDS - start)) s, executed copy $out)"
    else
        fail "$name: $base" "the notebook failed (exit status $?)" "$log"
    fi
}

# expect_failure NAME MESSAGE [args...]: the main notebook must fail, and with MESSAGE.
expect_failure() {
    local name="$1" message="$2"
    shift 2
    local out="$OUT/$name/${MAIN_NOTEBOOK%.ipynb}.ipynb" log="$OUT/$name/${MAIN_NOTEBOOK%.ipynb}.log"
    local status=0
    run "$HERE/$MAIN_NOTEBOOK" "$out" "$log" "$@" || status=$?
    if [ "$status" -eq 0 ]; then
        fail "$name" "the notebook passed but should have failed with \"$message\"" "$log"
    elif [ "$status" -eq 124 ]; then
        fail "$name" "timed out after $RUN_TIMEOUT s" "$log"
    elif ! grep -qF "DataQualityError" "$log" || ! grep -qF "$message" "$log"; then
        fail "$name" "failed, but not with DataQualityError \"$message\"" "$log"
    else
        pass "$name: failed as expected with \"$message\""
    fi
}

# copy_history SRC DEST: the Parquet history and latest.json (not the checkpoints) of SRC into DEST.
copy_history() {
    mkdir -p "$2"
    if [ -d "$1/parquet" ]; then cp -a "$1/parquet" "$2/parquet"; fi
    if [ -f "$1/latest.json" ]; then cp -a "$1/latest.json" "$2/latest.json"; fi
}

# gate_messages DATA: two lines, the duplicate check's message and the count column (empty without one), found as
# the notebook finds them: keys from latest.json's columns, else the partition folders' column (device_id: the
# built-in query) and the columns before window_start in a file; the count column is the built-in query's count, a COUNT(*) alias of the query, or a BIGINT count/n/events.
gate_messages() {
    "$PY" - "$1" <<'EOF'
import json, re, sys
from pathlib import Path
import pyarrow.parquet as pq
data = Path(sys.argv[1])
try:
    doc = json.loads((data / "latest.json").read_text(encoding="utf-8"))
except (OSError, ValueError):
    doc = {}
cols = doc.get("columns") if isinstance(doc.get("columns"), list) else None
folders = sorted({d.name.split("=", 1)[0] for d in (data / "parquet").glob("*=*") if d.is_dir()})
keys = [c["name"] for c in cols if c.get("role") == "key"] if cols else (folders[:1] or ["device_id"])
files = sorted(f for f in (data / "parquet").glob("*=*/*.parquet") if not f.name.startswith((".", "_")))
if not cols and files:
    names = pq.read_schema(files[0]).names
    keys += [n for n in names[: names.index("window_start")] if n not in keys]
values = {c["name"]: c.get("type") for c in cols if c.get("role") == "value"} if cols else {}
sql = doc["query"].get("sql") or "" if isinstance(doc.get("query"), dict) else ""
if keys == ["device_id"] and (not cols or "count" in values):
    found = ["count"]
else:
    select = sql[sql.upper().find("SELECT"):] if "SELECT" in sql.upper() else ""
    aliases = [m.group(1) for m in re.finditer(r"\bCOUNT\s*\(\s*\*\s*\)\s*(?:AS\s+)?[`\"]?(\w+)", select, re.I)]
    found = [a for a in aliases if a.upper() != "FILTER" and a in values]
    found += [n for n in ("count", "n", "events") if values.get(n) == "BIGINT"]
print(f"duplicate ({', '.join(keys + ['window_start'])})")
print(found[0] if found else "")
EOF
}

# gate_tests PREFIX DATA DEADLETTER: a duplicate (keys, window) must make the quality gate fail, and so must
# pipeline.events_total not matching the count column's sum (a query without a count column: not checked, said so).
gate_tests() {
    local prefix="$1" data="$2" deadletter="$3" messages duplicate_message count first_part
    messages="$(gate_messages "$data")"
    duplicate_message="$(sed -n 1p <<<"$messages")"
    count="$(sed -n 2p <<<"$messages")"

    local dup="$WORK/${prefix}duplicate/aggregates"
    copy_history "$data" "$dup"
    # A rolled part-*.parquet or a compacted day-*.parquet: either, copied under a second name, doubles its windows.
    # (`sed -n 1p` reads to the end: `head` would exit early and, with pipefail, a SIGPIPE in `sort` would end the
    # script.)
    first_part="$(find "$dup/parquet" -path '*/parquet/*=*' \( -name 'part-*.parquet' -o -name 'day-*.parquet' \) \
        2>/dev/null | LC_ALL=C sort | sed -n 1p)"
    if [ -z "$first_part" ]; then
        fail "${prefix}duplicate-window" "the history has no file to duplicate"
    else
        cp "$first_part" "$(dirname "$first_part")/part-zz-planted-duplicate.parquet"
        expect_failure "${prefix}duplicate-window" "$duplicate_message" -p DATA_DIR "$dup" -p DEADLETTER_DIR "$deadletter"
    fi

    local tot="$WORK/${prefix}totals/aggregates"
    copy_history "$data" "$tot"
    if [ ! -f "$tot/latest.json" ]; then
        skipped=$((skipped + 1))
        echo "skip  ${prefix}totals-mismatch: the history has no latest.json"
        return
    fi
    "$PY" - "$tot/latest.json" <<'EOF'
import json, sys
path = sys.argv[1]
doc = json.load(open(path, encoding="utf-8"))
doc["pipeline"]["events_total"] += 1
json.dump(doc, open(path, "w", encoding="utf-8"), ensure_ascii=False)
EOF
    if [ -n "$count" ]; then
        expect_failure "${prefix}totals-mismatch" "sum($count) == pipeline.events_total" -p DATA_DIR "$tot" \
            -p DEADLETTER_DIR "$deadletter" -p STRICT_TOTALS yes
    else
        expect_pass "${prefix}totals-unchecked" "$HERE/$MAIN_NOTEBOOK" -p DATA_DIR "$tot" \
            -p DEADLETTER_DIR "$deadletter" -p STRICT_TOTALS yes
        if ! grep -qF "no count column" "$OUT/${prefix}totals-unchecked/${MAIN_NOTEBOOK}"; then
            fail "${prefix}totals-unchecked" "the notebook does not say that the query has no count column"
        fi
    fi
}

STRICT_DL=()
if [ "$SAMPLE" -eq 1 ]; then STRICT_DL=(-p STRICT_DEADLETTER True); fi

# 1. every notebook, top to bottom, on the history
shopt -s nullglob
notebooks=("$HERE"/*.ipynb)
if [ ${#notebooks[@]} -eq 0 ]; then
    fail "notebooks" "no notebook found in $HERE"
fi
for nb in "${notebooks[@]}"; do
    expect_pass "history" "$nb" -p DATA_DIR "$DATA" -p DEADLETTER_DIR "$DEADLETTER" "${STRICT_DL[@]}"
done

# 2. a duplicate (keys, window) and 3. events_total not matching sum(count) must make the gate fail
gate_tests "" "$DATA" "$DEADLETTER"

if [ "$SAMPLE" -eq 1 ]; then
    # 4. a snapshot of a running job: open windows, parameters from the environment, an empty dead-letter
    #    folder, latest.json without optional sections, device_id stored in every file
    live="$WORK/live"
    "$PY" "$HERE/make_sample_history.py" --out "$live/aggregates" --deadletter "$live/deadletter" --seed 11 \
        --devices 7 --windows 200 --open-windows 4 --minimal-latest --late-fraction 0 --bad-fraction 0 \
        --device-id-column all --checkpoints 1 >/dev/null
    rm -f "$live/deadletter"/*.jsonl
    IOT_DATA_DIR="$live/aggregates" IOT_DEADLETTER_DIR="$live/deadletter" \
        expect_pass "live-snapshot" "$HERE/$MAIN_NOTEBOOK"

    # 5. the Parquet history alone: no latest.json, no dead-letter folder
    bare="$WORK/bare"
    "$PY" "$HERE/make_sample_history.py" --out "$bare/aggregates" --deadletter "$bare/deadletter" --seed 5 \
        --devices 3 --windows 50 --no-latest --device-id-column none >/dev/null
    rm -rf "$bare/deadletter"
    expect_pass "parquet-only" "$HERE/$MAIN_NOTEBOOK" -p DATA_DIR "$bare/aggregates" \
        -p DEADLETTER_DIR "$bare/deadletter" -p REQUIRE_LATEST_JSON False

    # 6. a job's own query, the contract's example (sensor_id; n, avg_pressure, max_co2, vibration_sd, site), and
    # 7. its two-key variant (site, sensor_id) without a count column: the notebook follows their columns, its gate
    #    their keys and count column
    for query in example two-keys; do
        q="$WORK/$query"
        "$PY" "$HERE/make_sample_history.py" --query "$query" --out "$q/aggregates" --deadletter "$q/deadletter" \
            --seed 3 --devices 8 --windows 200 >/dev/null
        expect_pass "$query-query" "$HERE/$MAIN_NOTEBOOK" -p DATA_DIR "$q/aggregates" \
            -p DEADLETTER_DIR "$q/deadletter" -p STRICT_DEADLETTER True
        gate_tests "$query-" "$q/aggregates" "$q/deadletter"
    done

    # 8. a two-key history alone: its keys from the folders and the files' column order
    bare2="$WORK/two-keys-bare"
    "$PY" "$HERE/make_sample_history.py" --query two-keys --out "$bare2/aggregates" --deadletter "$bare2/deadletter" \
        --seed 5 --devices 4 --windows 50 --no-latest --device-id-column none >/dev/null
    expect_pass "two-keys-parquet-only" "$HERE/$MAIN_NOTEBOOK" -p DATA_DIR "$bare2/aggregates" \
        -p DEADLETTER_DIR "$bare2/deadletter" -p REQUIRE_LATEST_JSON False
fi

echo "notebooks: executed copies and logs in $OUT"
if [ "$skipped" -gt 0 ]; then
    echo "notebooks: $passed passed, $failed failed, $skipped skipped"
else
    echo "notebooks: $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
