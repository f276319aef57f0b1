#!/usr/bin/env bash
# Sign-in storm (issue 6, "Sign-in" figures): fresh password sign-ins per
# second against the raw argon2id hash rate measured in the same run on the
# same core, and remembered-session resumes against fresh sign-ins.
#
#   scripts/signin-bench.sh [seconds per measurement, default 15]
#
# Builds the release binary, creates the demo school in a temporary folder
# and serves it on 127.0.0.1:18082 with one password-hash permit: at most
# one core's worth of hashing, whatever the storm (the sign-in bulkhead).
# The raw rate is that of one hashing thread on the same cores, measured
# while the server is idle; the storm then shows how much of that core's
# worth the sign-in path turns into sign-ins (the rest of the path — the
# account lookup, the session written — runs beside the hashing).
#
# CORES (default 0,1) are the cores of the server, the raw measure and the
# generator. CORES=0 puts everything on one core: then the rest of the
# sign-in path takes its time from the hashing itself.
#
# Loopback only; bounded in time. Other processes change the figures: note
# the load average printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-15}"
cores="${CORES:-0,1}"
cargo build --release -q -p ardoise
bin="$(realpath "${CARGO_TARGET_DIR:-target}/release/ardoise")"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && ARDOISE_LOG=warn "$bin" demo >/dev/null)
(cd "$work" && ARDOISE_LOG=warn ARDOISE_SIGNIN_PERMITS=1 exec taskset -c "$cores" "$bin" serve --listen 127.0.0.1:18082 >/dev/null 2>&1) &
server=$!
base=http://127.0.0.1:18082
for _ in $(seq 100); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done
raw=$(cd "$work" && taskset -c "$cores" "$bin" surge-signin --hash-only --hash-threads 1 --secs "$secs")
(cd "$work" && taskset -c "$cores" "$bin" surge-signin --target "$base" --raw-hash-rate "$raw" \
  --secs "$secs" --json "$work/signin.json")
echo "cores: $cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
