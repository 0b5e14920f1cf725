#!/usr/bin/env bash
# Browser test of the dashboard page, runnable from a fresh clone:
#   1. npm ci for dashboard/web (Chart.js) and for this test (playwright-core);
#   2. installs Chromium with apt-get when /usr/bin/chromium is missing;
#   3. builds the dashboard and the fixture writer (cargo build --release -p dashboard);
#   4. writes five fixtures (8 devices with UDF columns and a Parquet history, 200 devices without UDFs,
#      6 devices with sessions of varying lengths and UDF columns, 12 groups of a query that is not the seed's
#      (site, sensor_id) with a history, and a fleet of 10,000 devices without a history) and starts one
#      dashboard on each, on free ports chosen by the system (--port 0);
#   5. runs test.mjs in headless Chromium, which prints `browser: N passed, M failed`.
# The dashboards it started are stopped on every exit path. Exit status is non-zero on any failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DASHBOARD="$(cd "$HERE/../.." && pwd)"
WORKSPACE="$(cd "$DASHBOARD/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/iot-pipeline/target}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

step() { echo "==> $*"; }
fail() {
  echo "browser: setup failed: $*" >&2
  echo "browser: 0 passed, 1 failed"
  exit 1
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dashboard-browser.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "npm ci in dashboard/web (Chart.js) and dashboard/tests/browser (playwright-core)"
(cd "$DASHBOARD/web" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in dashboard/web"
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in dashboard/tests/browser"

if [ ! -x "$CHROMIUM" ]; then
  step "installing Chromium with apt-get ($CHROMIUM is missing)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq || fail "apt-get update"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null \
    || fail "apt-get install chromium"
  [ -x "$CHROMIUM" ] || fail "Chromium still missing at $CHROMIUM (set CHROMIUM=/path/to/chromium)"
fi

step "cargo build --release -p dashboard (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$WORKSPACE" && cargo build --release -p dashboard --bin dashboard --example fixture) || fail "cargo build"
BIN="$CARGO_TARGET_DIR/release/dashboard"
FIXTURE="$CARGO_TARGET_DIR/release/examples/fixture"

step "writing fixtures in $WORK"
"$FIXTURE" --out "$WORK/d8" --devices 8 --history-windows 60 --udfs --expected "$WORK/d8-history.json" \
  || fail "fixture (8)"
"$FIXTURE" --out "$WORK/d200" --devices 200 --history-windows 30 || fail "fixture (200)"
"$FIXTURE" --out "$WORK/sessions" --devices 6 --history-windows 40 --sessions --udfs \
  --expected "$WORK/sessions-history.json" || fail "fixture (sessions)"
"$FIXTURE" --out "$WORK/query" --devices 12 --history-windows 30 --query site-and-sensor \
  --expected "$WORK/query-history.json" || fail "fixture (query)"
"$FIXTURE" --out "$WORK/d10k" --devices 10000 --history-windows 0 || fail "fixture (10,000)"

# Starts a dashboard on a free port; sets URL to its address. Not run in a subshell, so PIDS keeps the pid.
start_dashboard() {
  local name="$1" data="$2"
  # Created here: the background process opens its redirections only once it runs, after the loop may read them.
  : >"$WORK/$name.out"
  : >"$WORK/$name.err"
  "$BIN" --bind 127.0.0.1 --port 0 --data "$data" --assets "$DASHBOARD/web" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  local pid=$!
  PIDS+=("$pid")
  URL=""
  for _ in $(seq 1 150); do
    URL="$(sed -n 's/^dashboard listening on \(http:[^ ]*\)$/\1/p' "$WORK/$name.out")"
    [ -n "$URL" ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "dashboard ($name) exited: $(cat "$WORK/$name.err")"
    sleep 0.2
  done
  fail "dashboard ($name) did not report its address within 30 s: $(cat "$WORK/$name.err")"
}

start_dashboard d8 "$WORK/d8"
URL8="$URL"
start_dashboard d200 "$WORK/d200"
URL200="$URL"
start_dashboard sessions "$WORK/sessions"
URLS="$URL"
start_dashboard query "$WORK/query"
URLQ="$URL"
start_dashboard d10k "$WORK/d10k"
URL10K="$URL"
step "dashboards at $URL8 (8 devices), $URL200 (200 devices), $URLS (sessions), $URLQ (another query) and $URL10K (10,000 devices)"

step "headless Chromium test"
set +e
node "$HERE/test.mjs" \
  --url8 "$URL8" --data8 "$WORK/d8" --history8 "$WORK/d8-history.json" \
  --url200 "$URL200" --data200 "$WORK/d200" \
  --urlSessions "$URLS" --dataSessions "$WORK/sessions" --historySessions "$WORK/sessions-history.json" \
  --urlQuery "$URLQ" --dataQuery "$WORK/query" --historyQuery "$WORK/query-history.json" \
  --url10k "$URL10K" --data10k "$WORK/d10k" \
  --shots "$CARGO_TARGET_DIR" --chromium "$CHROMIUM"
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "--- dashboard (8 devices) log ---"
  tail -n 20 "$WORK/d8.err" || true
fi
exit "$status"
