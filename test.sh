#!/usr/bin/env bash
# The whole test suite, with all of its own set-up: starts a real Apache Kafka broker (infra/kafka.sh, fetched
# from Maven Central on first use), builds everything, runs the Rust unit and integration tests, makes a
# Parquet history with a real pipeline run and reads it back with pyarrow and DuckDB, executes the notebooks on
# it, runs the dashboard's browser tests in headless Chromium, checks the deployment files offline (Kubernetes
# manifests, Prometheus rules; infra/test.sh) and a smoke run of every benchmark scenario, and stops what it
# started.
#
# Environment: CARGO_TARGET_DIR (default ~/.cache/iot-pipeline/target), IOT_UDF_CACHE (where UDF crates are
# built, default ~/.cache/iot-pipeline/udf), IOT_TEST_BROKERS (default 127.0.0.1:9092; a broker already serving
# there is used and left running), SKIP_LINT=1 skips fmt/clippy.
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
export IOT_CACHE="${IOT_CACHE:-$HOME/.cache/iot-pipeline}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$IOT_CACHE/target}"
export IOT_UDF_CACHE="${IOT_UDF_CACHE:-$IOT_CACHE/udf}"
export IOT_TEST_BROKERS="${IOT_TEST_BROKERS:-127.0.0.1:9092}"
export KAFKA_PORT="${IOT_TEST_BROKERS##*:}"
BIN="$CARGO_TARGET_DIR/release"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/iot-suite.XXXXXX")"

passed=0
failed=0
failures=()
step() {
    local name=$1
    shift
    echo "=== $name"
    local t0=$SECONDS
    if "$@"; then
        passed=$((passed + 1))
        echo "=== $name: ok ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "=== $name: FAILED ($((SECONDS - t0)) s)"
    fi
}

started_kafka=0
cleanup() {
    if [ "$started_kafka" = 1 ]; then
        infra/kafka.sh stop || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

need() {
    command -v "$1" >/dev/null 2>&1 || { echo "test.sh: $1 is missing: $2" >&2; exit 2; }
}
need cargo "install Rust (https://rustup.rs)"
need java "apt-get install openjdk-17-jre-headless"
need mvn "apt-get install maven"
need python3 "apt-get install python3 python3-venv"

# Test binaries hold their checkout's path (`env!("CARGO_MANIFEST_DIR")`), which cargo does not track: when the
# shared target dir was last built from another checkout whose sources were newer, cargo would keep binaries that
# look for files there. Make this checkout's sources newer than those builds instead.
checkout_stamp="$CARGO_TARGET_DIR/.last-checkout"
if [ -f "$checkout_stamp" ] && [ "$(cat "$checkout_stamp")" != "$ROOT" ]; then
    echo "the target dir was last built from $(cat "$checkout_stamp"): rebuilding this checkout's crates"
    find "$ROOT" -name '*.rs' -not -path '*/target/*' -not -path '*/node_modules/*' -not -path "$ROOT/udfs/*" \
        -not -path "$ROOT/sql/fuzz/*" -exec touch {} +
fi
mkdir -p "$CARGO_TARGET_DIR" && echo "$ROOT" >"$checkout_stamp"

if infra/kafka.sh status >/dev/null 2>&1; then
    echo "using the Kafka broker already serving on port $KAFKA_PORT"
else
    infra/kafka.sh start || { echo "test.sh: could not start Kafka (see above)" >&2; exit 1; }
    started_kafka=1
fi

build() {
    # The dashboard serves Chart.js from dashboard/web/node_modules (npm registry; nothing vendored).
    need npm "install Node.js and npm"
    npm ci --prefix dashboard/web --no-audit --no-fund >/dev/null &&
    cargo build --release --workspace --all-targets &&
    # The UDF crates (their own workspace) in the cache `dataflow --udf` builds them in, so that the tests and
    # the history run find them built.
    cargo build --release --workspace --manifest-path udfs/Cargo.toml --target-dir "$IOT_UDF_CACHE/target"
}
lint() {
    [ "${SKIP_LINT:-0}" = 1 ] && return 0
    cargo fmt --all --check && cargo clippy --release --workspace --all-targets -- -D warnings &&
    cargo fmt --all --check --manifest-path udfs/Cargo.toml
}
rust_tests() { cargo test --release --workspace --no-fail-fast; }

# A history made by a real run: seeded producer (with hostile device ids among normal ones) -> Kafka ->
# dataflow --bounded with the two example UDFs -> Parquet (then compacted), latest.json, dead letters.
history_run() {
    local topic="suite-history-$$-$RANDOM"
    printf '%s\n' device-000001 device-000002 device-000003 device-000004 device-000005 \
        'a/b' '..' '../../etc/passwd' '🔥-sensor' '100%' > "$WORK/ids.txt"
    "$BIN/producer" --brokers "$IOT_TEST_BROKERS" --topic "$topic" --device-ids-file "$WORK/ids.txt" \
        --rate 0 --count 30000 --late-fraction 0.05 --bad-fraction 0.02 --seed 5 >/dev/null &&
    "$BIN/dataflow" --brokers "$IOT_TEST_BROKERS" --topic "$topic" --group "$topic" --bounded -w 2 \
        --udf udfs/heat_index --udf udfs/temperature_p90 \
        --out "$WORK/data/aggregates" --deadletter "$WORK/data/deadletter" &&
    # Compacted as a history older than --compact-older-than is: the readers below read day-*.parquet files.
    "$BIN/dataflow" compact --out "$WORK/data/aggregates"
}
notebooks() {
    # The synthetic history (rolled part-* files next to compacted day-* files, planted faults), then the real one.
    bash notebooks/test.sh &&
    IOT_STRICT_TOTALS=yes IOT_STRICT_DEADLETTER=1 bash notebooks/test.sh "$WORK/data/aggregates" "$WORK/data/deadletter"
}
independent_readers() {
    "$IOT_CACHE/notebooks-venv/bin/python" dataflow/tests/read_history.py "$WORK/data/aggregates" "$WORK/ids.txt"
}
browser() { bash dashboard/tests/browser/run.sh; }
# The deployment files: Kubernetes manifests, Prometheus rules (with their unit tests), the Grafana dashboard.
infra_checks() { bash infra/test.sh; }
# Every benchmark scenario at a tiny size: proves they run; never fails on a speed figure.
bench_smoke() { cargo run --release -q -p bench -- smoke --brokers "$IOT_TEST_BROKERS"; }

step build build
if [ "$failed" -gt 0 ]; then
    echo "suite: $passed passed, $failed failed (build failed: nothing else can run)"
    exit 1
fi
step lint lint
step rust-tests rust_tests
step history-run history_run
step notebooks notebooks
step independent-readers independent_readers
step browser browser
step infra infra_checks
step bench-smoke bench_smoke

echo
if [ "$failed" -gt 0 ]; then
    echo "failed steps: ${failures[*]}"
fi
echo "suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
