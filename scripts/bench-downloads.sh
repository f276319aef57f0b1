#!/usr/bin/env bash
# 1,000 signed-in pupils downloading the same 2 MB PDF at once, against
# /healthz in the same run (issue 5: "1,000 pupils downloading the same PDF
# at 9:15 costs the server almost nothing").
#
#   scripts/bench-downloads.sh [seconds per measurement, default 10] [connections, default 1000]
#
# PROFILE=debug uses the debug build instead of the release one (quicker to
# build; its requests/s are not the product's).
#
# Builds the release binary, creates the demo school in a temporary folder,
# serves it on 127.0.0.1:18081 (files on local disk), has the demo teacher
# upload a 2 MB PDF to their class's space, signs in every pupil of that
# class, then runs wrk (2 threads, 1,000 connections; each request carries
# one of the pupils' cookies in turn) on the PDF's content URL, on the
# same URL with If-None-Match (a pupil opening it again: 304) and on
# /healthz, twice each, alternating. Reports answers served per second
# (2xx/3xx) and their ratio to /healthz, refusals (503: the node shedding
# what it cannot serve in time) per second, the server's CPU time per
# answer served (utime + stime of /proc/PID/stat; refusals count in the
# cost) and its ratio to /healthz's, and the bytes the server process read
# from disk per download (read_bytes of /proc/PID/io before and after).
# Loopback only; bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conns="${2:-1000}"
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
ulimit -n 20000 2>/dev/null || true
profile="${PROFILE:-release}"
if [ "$profile" = release ]; then cargo build --release -q -p ardoise; else cargo build -q -p ardoise; fi
bin="$(realpath "${CARGO_TARGET_DIR:-target}/$profile/ardoise")"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && ARDOISE_LOG=warn "$bin" demo >/dev/null)
(cd "$work" && ARDOISE_LOG=warn exec "$bin" serve --listen 127.0.0.1:18081 >/dev/null 2>&1) &
server=$!
base=http://127.0.0.1:18081
for _ in $(seq 100); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done
csv="$work/data/demo-accounts.csv"

# Signs in (session cookie, then the admission pass a browser gets on its
# first page) and prints the Cookie header.
cookie() {
  local jar="$work/jar-$1"
  curl -fs -c "$jar" -b "$jar" -H 'content-type: application/json' \
    -d "{\"login\":\"$1\",\"password\":\"$2\"}" "$base/api/v1/session" >/dev/null
  curl -fs -c "$jar" -b "$jar" "$base/home" >/dev/null
  awk '{sub(/^#HttpOnly_/, "")} !/^#/ && NF >= 7 {printf "%s%s=%s", sep, $6, $7; sep="; "}' "$jar"
}

# The demo teacher puts a 2 MB PDF in the space of the first class they teach.
read -r tlogin tpassword < <(awk -F, '$3 == "teacher" {print $1, $2; exit}' "$csv")
tauth="Cookie: $(cookie "$tlogin" "$tpassword")"
class_id=$(curl -fs -H "$tauth" "$base/api/v1/me" | grep -o '"taught_classes":\[[0-9]*' | grep -o '[0-9]*$')
class_name=$(curl -fs -H "$tauth" "$base/api/v1/classes/$class_id" | grep -o '"name":"[^"]*"' | head -1 | cut -d'"' -f4)
folder=$(curl -fs -H "$tauth" "$base/api/v1/documents/spaces/class/$class_id" | grep -o '"folder":{"id":[0-9]*' | grep -o '[0-9]*$')
pdf="$work/fiche.pdf"
# About 2 MB: a PDF header, then base64 text (no pipe into head: pipefail).
{ printf '%%PDF-1.4\n%% worksheet for the benchmark\n'; head -c 1540000 /dev/urandom | base64 -w 76; printf '%%%%EOF\n'; } > "$pdf"
url=$(curl -fs -H "$tauth" -F "files=@$pdf;filename=fiche-9h15.pdf" "$base/api/v1/documents/folders/$folder/files" \
  | grep -o '"content_url":"[^"]*"' | cut -d'"' -f4)
[ -n "$url" ] || { echo "upload failed: cannot measure" >&2; exit 1; }

# Every pupil of that class signs in.
lua="$work/pupils.lua"
echo 'cookies = {}' > "$lua"
n=0
while IFS=, read -r login password roles _ class; do
  [ "$roles" = pupil ] && [ "$class" = "$class_name" ] || continue
  c=$(cookie "$login" "$password")
  echo "cookies[#cookies + 1] = \"$c\"" >> "$lua"
  n=$((n + 1))
done < <(tail -n +2 "$csv")
# The same requests with If-None-Match: a pupil opening the PDF again.
cp "$lua" "$work/revisit.lua"
cat >> "$lua" <<'LUA'
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", nil, { ["Cookie"] = cookies[(i % #cookies) + 1] })
end
LUA
first=$(sed -n 's/^cookies\[#cookies + 1\] = "\(.*\)"$/\1/p' "$lua" | head -1)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $first" "$base$url")
[ "$code" = 200 ] || { echo "the PDF answered $code to a pupil, not 200: cannot measure" >&2; exit 1; }
size=$(curl -fs -H "Cookie: $first" "$base$url" | wc -c)
etag=$(curl -fs -D - -o /dev/null -H "Cookie: $first" "$base$url" | tr -d '\r' | awk -F': ' 'tolower($1) == "etag" {print $2}')
[ -n "$etag" ] || { echo "no ETag on the PDF: cannot measure revisits" >&2; exit 1; }
cat >> "$work/revisit.lua" <<LUA
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", nil, { ["Cookie"] = cookies[(i % #cookies) + 1], ["If-None-Match"] = '$etag' })
end
LUA
echo "class $class_name: $n pupils signed in; PDF of $size bytes at $url; $conns connections"

# wrk prints all requests; answers other than 2xx/3xx (the node's 503s
# when it sheds load) are counted apart. Prints: served/s, served, refused.
run() {
  wrk -t2 -c"$conns" -d"${secs}s" --timeout 30s "$@" | awk '
    /requests in/ {total = $1} /Non-2xx/ {bad = $5} /Requests\/sec/ {rps = $2}
    END {printf "%.1f %d %d\n", (total > 0 ? rps * (total - bad) / total : 0), total - bad, bad}'
}
read_bytes() { awk '/^read_bytes/ {print $2}' "/proc/$server/io"; }
# CPU time of the server process so far, in clock ticks (user + system).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
tick_us=$(echo "1000000 / $(getconf CLK_TCK)" | bc)
declare -A rps_sum served_sum refused_sum cpu_sum
measure() { # measure NAME WRK-ARGS...
  local name=$1; shift
  local c0 c1 rps ok bad
  c0=$(cpu_ticks)
  read -r rps ok bad < <(run "$@")
  c1=$(cpu_ticks)
  rps_sum[$name]=$(echo "${rps_sum[$name]:-0} + $rps" | bc)
  served_sum[$name]=$(( ${served_sum[$name]:-0} + ok ))
  refused_sum[$name]=$(( ${refused_sum[$name]:-0} + bad ))
  cpu_sum[$name]=$(( ${cpu_sum[$name]:-0} + c1 - c0 ))
}
downloads=0; disk=0
for round in 1 2; do
  measure healthz "$base/healthz"
  before=$(read_bytes)
  measure pdf -s "$lua" "$base$url"
  after=$(read_bytes)
  disk=$((disk + after - before))
  measure revisit -s "$work/revisit.lua" "$base$url"
done
downloads=${served_sum[pdf]}
# CPU µs the server spent per answer served (refusals included in the cost).
cpu_per() { echo "scale=1; ${cpu_sum[$1]} * $tick_us / (${served_sum[$1]} + (${served_sum[$1]} == 0))" | bc; }
h_rps=$(echo "${rps_sum[healthz]} / 2" | bc -l)
h_cpu=$(cpu_per healthz)
printf '%-36s %11s %7s %11s %13s %9s\n' "route" "served/s" "ratio" "refused/s" "CPU us/answer" "CPU ratio"
row() { # row NAME LABEL
  local rps cpu
  rps=$(echo "${rps_sum[$1]} / 2" | bc -l)
  cpu=$(cpu_per "$1")
  printf '%-36s %11.0f %6.1f%% %11.0f %13.1f %8.1fx\n' "$2" "$rps" "$(echo "100 * $rps / $h_rps" | bc -l)" \
    "$(echo "${refused_sum[$1]} / (2 * $secs)" | bc -l)" "$cpu" "$(echo "$cpu / ($h_cpu + ($h_cpu == 0))" | bc -l)"
}
row healthz "/healthz"
row pdf "2 MB PDF, signed-in pupils"
row revisit "same PDF again (304, If-None-Match)"
echo "PDF: $(echo "${rps_sum[pdf]} / 2 * $size / 1048576" | bc) MiB/s sent"
echo "downloads: $downloads ($(echo "$downloads * $size / 1048576" | bc) MiB sent); read from disk by the server: $disk bytes, $(echo "scale=1; $disk / ($downloads + ($downloads == 0))" | bc) bytes per download"
echo "(local disk backend: a blob up to 8 MiB is read once into memory, then every download is served from there; read_bytes counts only what reached the disk)"
