#!/usr/bin/env bash
# Throughput of a pupil's "À faire" page relative to /healthz, in one run,
# on the demo school (issue 3's fast-read target: at least 50 %).
#
#   scripts/bench-todo.sh [seconds per measurement, default 10]
#
# Builds the release binary, creates the demo school in a temporary folder,
# serves it on 127.0.0.1:18080, signs in a demo pupil, then alternates wrk
# runs (one thread, 32 connections) on /healthz, /todo and /todo with a
# matching If-None-Match (the 304 a returning browser gets), twice each.
# Loopback only; bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p ardoise
bin="$(realpath "${CARGO_TARGET_DIR:-target}/release/ardoise")"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && ARDOISE_LOG=warn "$bin" demo >/dev/null)
(cd "$work" && ARDOISE_LOG=warn exec "$bin" serve --listen 127.0.0.1:18080 >/dev/null 2>&1) &
server=$!
base=http://127.0.0.1:18080
for _ in $(seq 100); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done
read -r login password < <(awk -F, '$3 ~ /pupil/ && $3 !~ /parent|teacher/ {print $1, $2; exit}' "$work/data/demo-accounts.csv")
token=$(curl -fs -H 'content-type: application/json' \
  -d "{\"login\":\"$login\",\"password\":\"$password\"}" "$base/api/v1/session" |
  sed -E 's/.*"token":"([^"]+)".*/\1/')
auth="Authorization: Bearer $token"
items=$(curl -fs -H "$auth" "$base/todo" | grep -c '<li' || true)
etag=$(curl -fsI -H "$auth" "$base/todo" | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\r')
echo "pupil $login: /todo lists $items items, etag $etag"
rate() { wrk -t1 -c32 -d"${secs}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
declare -A sum
for round in 1 2; do
  sum[healthz]=$(echo "${sum[healthz]:-0} + $(rate "$base/healthz")" | bc)
  sum[todo]=$(echo "${sum[todo]:-0} + $(rate -H "$auth" "$base/todo")" | bc)
  sum[todo304]=$(echo "${sum[todo304]:-0} + $(rate -H "$auth" -H "If-None-Match: $etag" "$base/todo")" | bc)
done
printf '%-28s %12s %8s\n' "route" "requests/s" "ratio"
for k in healthz todo todo304; do
  r=$(echo "${sum[$k]} / 2" | bc -l)
  printf '%-28s %12.0f %7.1f%%\n' "$k" "$r" "$(echo "100 * ${sum[$k]} / ${sum[healthz]}" | bc -l)"
done
