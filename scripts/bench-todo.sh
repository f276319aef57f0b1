#!/usr/bin/env bash
# Throughput of a pupil's "À faire" page and home page relative to
# /healthz, in one run, on the demo school (issue 3's fast-read target for
# "À faire": at least 50 %).
#
#   scripts/bench-todo.sh [seconds per measurement, default 10]
#   BENCH_PORT=NNNNN scripts/bench-todo.sh   (another port than 18080)
#
# Builds the release binary, creates the demo school in a temporary folder,
# serves it on 127.0.0.1:18080 (or $BENCH_PORT), signs in a demo pupil, then alternates wrk
# runs (one thread, 32 connections) on /healthz, /todo, /todo with a
# matching If-None-Match (the 304 a returning browser gets) and /home, twice
# each.
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
port="${BENCH_PORT:-18080}"
(cd "$work" && ARDOISE_LOG=warn exec "$bin" serve --listen "127.0.0.1:$port" >/dev/null 2>&1) &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done
read -r login password < <(awk -F, '$3 ~ /pupil/ && $3 !~ /parent|teacher/ {print $1, $2; exit}' "$work/data/demo-accounts.csv")
# Sign in as a browser would: the session cookie, then the admission pass
# the surge layer gives on the first page; wrk sends both, like a browser.
jar="$work/cookies"
curl -fs -c "$jar" -b "$jar" -H 'content-type: application/json' \
  -d "{\"login\":\"$login\",\"password\":\"$password\"}" "$base/api/v1/session" >/dev/null
curl -fs -c "$jar" -b "$jar" "$base/home" >/dev/null
auth="Cookie: $(awk '{sub(/^#HttpOnly_/, "")} !/^#/ && NF >= 7 {printf "%s%s=%s", sep, $6, $7; sep="; "}' "$jar")"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "$auth" "$base/todo")
[ "$code" = 200 ] || { echo "GET /todo answered $code, not 200: cannot measure" >&2; exit 1; }
items=$(curl -fs -H "$auth" "$base/todo" | grep -c '<li' || true)
etag=$(curl -fsI -H "$auth" "$base/todo" | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\r')
echo "pupil $login: /todo lists $items items, etag $etag"
# Requests/s of 2xx/3xx answers only: refusals and errors do not count.
rate() {
  wrk -t1 -c32 -d"${secs}s" "$@" | awk '
    /requests in/ {total = $1} /Non-2xx/ {bad = $5} /Requests\/sec/ {rps = $2}
    END {printf "%.1f\n", (total > 0 ? rps * (total - bad) / total : 0)}'
}
declare -A sum
for round in 1 2; do
  sum[healthz]=$(echo "${sum[healthz]:-0} + $(rate "$base/healthz")" | bc)
  sum[todo]=$(echo "${sum[todo]:-0} + $(rate -H "$auth" "$base/todo")" | bc)
  sum[todo304]=$(echo "${sum[todo304]:-0} + $(rate -H "$auth" -H "If-None-Match: $etag" "$base/todo")" | bc)
  sum[home]=$(echo "${sum[home]:-0} + $(rate -H "$auth" "$base/home")" | bc)
done
printf '%-28s %12s %8s\n' "route" "requests/s" "ratio"
for k in healthz todo todo304 home; do
  r=$(echo "${sum[$k]} / 2" | bc -l)
  printf '%-28s %12.0f %7.1f%%\n' "$k" "$r" "$(echo "100 * ${sum[$k]} / ${sum[healthz]}" | bc -l)"
done
