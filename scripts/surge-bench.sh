#!/usr/bin/env bash
# Replays the 9:15 wave against the demo school twice, surge layer on then
# off, with the same arrivals, and draws both runs on one chart.
#
#   scripts/surge-bench.sh                      # default wave
#   scripts/surge-bench.sh --peak 1500 --hold 20 --duration 30 --grace 60
#
# The server runs on core 0 and the generator on core 1 (taskset), a fresh
# server for each run on 127.0.0.1:8090, data in $BENCH_DIR (default
# /tmp/ardoise-surge-bench). Reports: off.txt/off.json, on.txt/on.json and
# chart.svg (on solid, off dashed) there. Other processes on the machine change the figures: note
# the load average printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${BENCH_DIR:-/tmp/ardoise-surge-bench}"
ADDR=127.0.0.1:8090
mkdir -p "$DIR"
cargo build --release -q -p ardoise
BIN="${CARGO_TARGET_DIR:-target}/release/ardoise"
[ -f "$DIR/demo-accounts.csv" ] || "$BIN" --data-dir "$DIR" demo >/dev/null

run() { # run NAME ENABLED FLAGS...
  local name=$1 enabled=$2; shift 2
  ARDOISE_SURGE_ENABLED=$enabled ARDOISE_LOG=warn taskset -c 0 "$BIN" --data-dir "$DIR" serve --listen "$ADDR" >"$DIR/server-$name.log" 2>&1 &
  local pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 50); do curl -sf "http://$ADDR/healthz" >/dev/null && break; sleep 0.1; done
  taskset -c 1 "$BIN" --data-dir "$DIR" surge --target "http://$ADDR" --label "surge $name" \
    --json "$DIR/$name.json" "$@" >"$DIR/$name.txt" 2>"$DIR/$name.err" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  trap - EXIT
  cat "$DIR/$name.txt"
}

run off false "$@"
run on true --svg "$DIR/chart.svg" --compare "$DIR/off.json" "$@"
echo "chart: $DIR/chart.svg; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
