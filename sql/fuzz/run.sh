#!/usr/bin/env bash
# Builds the SQL front end's fuzz targets with AFL++ instrumentation (`cargo afl`) and runs each for SECONDS
# (default 600), one after the other: `plan` (job text to plan or error; a plan then runs over a few records)
# and `decode` (record bytes under a fixed schema). Prints each target's executions and crashes, and exits
# non-zero when a target crashed (the inputs are kept under $FUZZ_HOME/out/<target>/default/crashes).
set -euo pipefail

seconds=${1:-600}
here=$(cd "$(dirname "$0")" && pwd)
fuzz_home=${FUZZ_HOME:-$HOME/.cache/iot-pipeline/fuzz}
export CARGO_TARGET_DIR=$fuzz_home/target

if ! command -v cargo-afl >/dev/null; then
    cargo install --locked cargo-afl
fi
# Builds AFL++'s runtime for this toolchain once; later calls say it is built already.
cargo afl config --build >/dev/null 2>&1 || true

cd "$here"
cargo afl build --release --bins

status=0
for target in plan decode; do
    out=$fuzz_home/out/$target
    rm -rf "$out"
    mkdir -p "$out"
    echo "fuzzing $target for ${seconds}s"
    AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_QUIET=1 \
        cargo afl fuzz -i "seeds/$target" -o "$out" -V "$seconds" -- "$CARGO_TARGET_DIR/release/$target" \
        >"$out/fuzz.log" 2>&1 || true
    stats=$out/default/fuzzer_stats
    if [[ ! -f $stats ]]; then
        echo "$target: the fuzzer did not start; see $out/fuzz.log" >&2
        status=1
        continue
    fi
    stat() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
    crashes=$(find "$out/default/crashes" -type f ! -name README.txt | wc -l)
    echo "$target: $(stat run_time) s, $(stat execs_done) executions, $(stat corpus_count) inputs in the corpus, edges found $(stat edges_found), $crashes crashes"
    if ((crashes > 0)); then
        echo "$target: crashing inputs in $out/default/crashes" >&2
        status=1
    fi
done
exit $status
