#!/usr/bin/env bash
# Sign-in storm (issue 6, "Sign-in" figures): fresh password sign-ins per
# second against the raw argon2id hash rate measured in the same run on the
# same core, and remembered-session resumes against fresh sign-ins.
#
#   scripts/signin-bench.sh [seconds per measurement, default 15]
#
# Builds the release binary, creates the demo school in a temporary folder
# and serves it on 127.0.0.1:18082 pinned to core 0 (one password-hash
# permit: "at most one core's worth" of hashing). First measures the raw
# hash rate on core 0 while the server is idle, then the storm from core 1.
# Loopback only; bounded in time. Other processes change the figures: note
# the load average printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-15}"
cargo build --release -q -p ardoise
bin="$(realpath "${CARGO_TARGET_DIR:-target}/release/ardoise")"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && ARDOISE_LOG=warn "$bin" demo >/dev/null)
(cd "$work" && ARDOISE_LOG=warn ARDOISE_SIGNIN_PERMITS=1 exec taskset -c 0 "$bin" serve --listen 127.0.0.1:18082 >/dev/null 2>&1) &
server=$!
base=http://127.0.0.1:18082
for _ in $(seq 100); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done
raw=$(cd "$work" && taskset -c 0 "$bin" surge-signin --hash-only --hash-threads 1 --secs "$secs")
(cd "$work" && taskset -c 1 "$bin" surge-signin --target "$base" --raw-hash-rate "$raw" \
  --secs "$secs" --json "$work/signin.json")
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
