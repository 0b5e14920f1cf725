#!/usr/bin/env bash
# Runs the whole pipeline on this machine: builds the binaries, installs the dashboard's chart library from npm
# (once), then starts the embedded broker, the simulator, the dataflow and the dashboard (see `iot-pipeline
# --help`; `./run.sh --brokers host:9092` uses a real Kafka). Ctrl-C stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${IOT_CACHE:-$HOME/.cache/iot-pipeline}/target}"
command -v cargo >/dev/null || { echo "run.sh: cargo is missing: install Rust (https://rustup.rs)" >&2; exit 2; }
if [ ! -f dashboard/web/node_modules/chart.js/package.json ]; then
    command -v npm >/dev/null || { echo "run.sh: npm is missing: install Node.js and npm" >&2; exit 2; }
    npm ci --prefix dashboard/web --no-audit --no-fund >/dev/null
fi
cargo build --release --bins -p producer -p dataflow -p dashboard -p launcher
exec "$CARGO_TARGET_DIR/release/iot-pipeline" "$@"
