#!/usr/bin/env bash
# The 10× run of issue 6: goodput and p99 against offered load, surge layer
# on and off, well-behaved and naive clients, on one chart.
#
#   scripts/surge-overload.sh                 # calibrate, then the 4 runs
#   CAPACITY=40 scripts/surge-overload.sh     # skip the calibration
#   CAPACITY=130 MULTS="1 10" RUNS=on scripts/surge-overload.sh   # one quick run
#
# The node is made small on purpose: the server runs on core 0 under a CPU
# quota (NODE_CPU percent of that core, default 25, through a cgroup), so
# that the generator, alone on core 1, can offer it ten times what it can
# serve (at full speed, one core of Ardoise serves more than one core of
# generator can offer). Without a writable cgroup the quota is skipped and
# said so.
#
# 1. Calibration (unless CAPACITY is given): surge layer on, well-behaved
#    clients, stairs of rising arrival rates (CAL_RATES); the node's
#    capacity is what it serves once saturated, with the surge layer
#    keeping it at its limit: the median goodput (completed journeys/s) of
#    its three best stairs (the best alone is a lucky draw).
#    The stairs must go past it: if the best stair is the last, the script
#    says so, and the capacity is only a floor (raise CAL_RATES).
# 2. Stairs of MULTS × capacity (default 0.5 1 2 5 10), STAIR_SECS each,
#    four runs with the same arrivals: surge on, surge on with naive
#    clients, surge off, surge off with naive clients.
#
# Reports in $BENCH_DIR (default /tmp/ardoise-surge-overload): one .txt and
# .json per run, overload.svg (all four runs), and summary.txt with the
# ratios the issue asks for.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${BENCH_DIR:-/tmp/ardoise-surge-overload}"
ADDR=127.0.0.1:8091
NODE_CPU="${NODE_CPU:-25}"
MULTS="${MULTS:-0.5 1 2 5 10}"
STAIR_SECS="${STAIR_SECS:-20}"
GRACE="${GRACE:-40}"
mkdir -p "$DIR"
# ARDOISE_BIN: a binary already built (another commit's, to compare).
BIN="${ARDOISE_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --release -q -p ardoise
  BIN="${CARGO_TARGET_DIR:-target}/release/ardoise"
fi
[ -f "$DIR/demo-accounts.csv" ] || "$BIN" --data-dir "$DIR" demo >/dev/null
# Each waiter's line (order and estimates), if this binary writes them.
WAITERS_CSV=""
if "$BIN" surge --help 2>/dev/null | grep -q -- --waiters-csv; then WAITERS_CSV=1; fi

# A CPU quota for the server: cgroup v2 (cpu.max) or v1 (cfs quota), with
# the shortest quota the kernel takes (1 ms) and a period to match, so that
# the node is slow evenly rather than in long stalls (with a 10 ms period,
# each stall of 7.5 ms showed as queueing delay and was shed).
CG=""
setup_cgroup() {
  local quota=1000 period=$((100000 / NODE_CPU))
  if [ -w /sys/fs/cgroup/cgroup.subtree_control ] 2>/dev/null; then
    CG=/sys/fs/cgroup/ardoise-bench
    mkdir -p "$CG" && echo "$quota $period" >"$CG/cpu.max" || CG=""
  elif [ -d /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/cpu ]; then
    CG=/sys/fs/cgroup/cpu/ardoise-bench
    mkdir -p "$CG" && echo "$period" >"$CG/cpu.cfs_period_us" && echo "$quota" >"$CG/cpu.cfs_quota_us" || CG=""
  fi
  if [ -z "$CG" ]; then
    echo "surge-overload: no writable cgroup: the server runs without a CPU quota" >&2
  fi
}
setup_cgroup

# Under the quota the node runs at NODE_CPU % of a core: every request
# takes 100/NODE_CPU times as long, and the kernel stops the node for up
# to three quarters of each 4 ms period. Its delay targets are in wall
# time, so they are stretched by the same factor, unless given (the
# node's defaults, read from the binary, are 5 ms signed in and 2 ms
# before sign-in): at 5 ms a node at 25 % counted those stops and a few
# requests' work as a standing queue, shed requests and shrank its user
# limit with CPU to spare (seen: 40-47 journeys/s at its capacity of 104,
# 101 with the targets stretched).
default_ms() { # default_ms KEY: the node's default for [surge] KEY
  local v
  v=$("$BIN" config print-default | sed -n "s/^$1 = \([0-9][0-9]*\)$/\1/p" | head -n 1)
  if [ -z "$v" ]; then
    echo "surge-overload: no default $1 in '$BIN config print-default'" >&2
    exit 1
  fi
  echo "$v"
}
CODEL_MS=$(default_ms codel_target_ms)
PRELOGIN_MS=$(default_ms prelogin_target_ms)
if [ -n "$CG" ]; then
  CODEL_MS=$((CODEL_MS * 100 / NODE_CPU)) PRELOGIN_MS=$((PRELOGIN_MS * 100 / NODE_CPU))
fi
export ARDOISE_SURGE_CODEL_TARGET_MS="${ARDOISE_SURGE_CODEL_TARGET_MS:-$CODEL_MS}"
export ARDOISE_SURGE_PRELOGIN_TARGET_MS="${ARDOISE_SURGE_PRELOGIN_TARGET_MS:-$PRELOGIN_MS}"
TARGETS="delay targets $ARDOISE_SURGE_CODEL_TARGET_MS ms signed in, $ARDOISE_SURGE_PRELOGIN_TARGET_MS ms before sign-in"

PID=""
start_server() { # start_server NAME ENABLED
  ARDOISE_SURGE_ENABLED=$2 ARDOISE_LOG=warn taskset -c 0 "$BIN" --data-dir "$DIR" serve --listen "$ADDR" >"$DIR/server-$1.log" 2>&1 &
  PID=$!
  if [ -n "$CG" ]; then echo "$PID" >"$CG/cgroup.procs"; fi
  for _ in $(seq 100); do curl -sf "http://$ADDR/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "surge-overload: the server did not start (see $DIR/server-$1.log)" >&2
  exit 1
}
stop_server() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; }
trap stop_server EXIT

# Every 2 s during a run: the server's CPU (share of one core, from
# /proc) and the surge layer's figures from /metrics, to tell where a
# stair's goodput went (an idle node under a limit set too low, or a busy
# one doing work around its admitted users); and the CPU seconds of its
# threads by what they do (thread_cpu_seconds): the runtime's threads
# (every request: pages, lobby pages, refusals), the database's, the
# password hashes' by lane, and the others.
thread_cpu() { # thread_cpu PID HZ: CPU seconds by thread group
  cat /proc/"$1"/task/*/stat 2>/dev/null | awk -v hz="$2" '{
    i = index($0, "("); j = 0
    for (k = length($0); k > i; k--) if (substr($0, k, 1) == ")") { j = k; break }
    if (!i || !j) next
    name = substr($0, i + 1, j - i - 1)
    split(substr($0, j + 2), f, " ")   # f[1] is the state: utime is f[12], stime f[13]
    if (name ~ /^tokio-rt/) g = "runtime"
    else if (name ~ /^ardoise-hash-st/) g = "hash_staff"
    else if (name ~ /^ardoise-hash/) g = "hash_general"
    else if (name ~ /^sqlx/) g = "database"
    else g = "other"
    t[g] += f[12] + f[13]
  } END { for (g in t) printf "%s=%.2f ", g, t[g] / hz }'
}
SAMPLER=""
start_sampler() { # start_sampler NAME
  local out="$DIR/$1.samples.tsv" hz
  hz=$(getconf CLK_TCK)
  (
    printf 't\tcpu\tmetrics\tthread_cpu_seconds\n'
    local prev_ticks="" prev_t=""
    while kill -0 "$PID" 2>/dev/null; do
      local now ticks m threads
      now=$(date +%s.%N)
      ticks=$(awk '{print $14 + $15}' "/proc/$PID/stat" 2>/dev/null || echo 0)
      threads=$(thread_cpu "$PID" "$hz")
      m=$(curl -s --max-time 1 "http://$ADDR/metrics" | grep -E '^ardoise_surge_(user_limit |admitted_users|queue_length|refusals_total|passes_total|late_entries_total|tickets_issued_total|bulkhead_in_flight|lobby_held )|^ardoise_signin_total|^ardoise_password_hash_cpu_seconds_sum' | tr ' ' '=' | paste -sd' ' -)
      if [ -n "$prev_ticks" ]; then
        printf '%s\t%s\t%s\t%s\n' "$now" \
          "$(echo "scale=3; ($ticks - $prev_ticks) / $hz / ($now - $prev_t)" | bc)" "$m" "$threads"
      fi
      prev_ticks=$ticks; prev_t=$now
      sleep 2
    done
  ) >"$out" 2>/dev/null &
  SAMPLER=$!
}

run() { # run NAME ENABLED RATES FLAGS...
  local name=$1 enabled=$2 rates=$3; shift 3
  start_server "$name" "$enabled"
  start_sampler "$name"
  # Remembered sessions are signed in before the run (as "yesterday"), on
  # a node without quota pressure from the wave.
  local waiters=()
  [ -z "$WAITERS_CSV" ] || waiters=(--waiters-csv "$DIR/$name.waiters.csv")
  taskset -c 1 "$BIN" --data-dir "$DIR" surge --target "http://$ADDR" --label "$name" \
    --stairs "$rates" --stair-secs "$STAIR_SECS" --grace "$GRACE" \
    --json "$DIR/$name.json" "${waiters[@]}" "$@" >"$DIR/$name.txt" 2>"$DIR/$name.err" || true
  stop_server
  wait "$SAMPLER" 2>/dev/null || true
  cat "$DIR/$name.txt"
}

if [ -z "${CAPACITY:-}" ]; then
  CAL_RATES="${CAL_RATES:-10,20,40,60,80,100,130,160,200,250,300,400}"
  saved=("$STAIR_SECS" "$GRACE")
  STAIR_SECS="${CAL_SECS:-10}" GRACE=15
  run calibration true "$CAL_RATES"
  STAIR_SECS=${saved[0]} GRACE=${saved[1]}
  CAPACITY=$(python3 - "$DIR/calibration.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
stairs = [s["journeys_per_sec"] for s in r["summary"]["stairs"]]
best = max(stairs)
if stairs[-1] == best:
    print("surge-overload: the last calibration stair was the best, so the capacity is only a floor: raise CAL_RATES", file=sys.stderr)
# The median of the three best stairs, not the best alone: past
# saturation a 10 s stair's goodput depends on whether the adaptive limit
# held through it, and the best of several such draws moved by a quarter
# from run to run (167 to 266 journeys/s on one binary) while the median
# of the plateau stays put.
top = sorted(stairs, reverse=True)[:3]
capacity = top[len(top) // 2]
print("surge-overload: calibration stairs " + ", ".join(f"{s:.1f}" for s in stairs)
      + f" journeys/s; capacity = the median of the three best, {capacity:.1f}", file=sys.stderr)
print(f'{capacity:.1f}')
EOF
)
  echo "surge-overload: capacity measured at $CAPACITY completed journeys/s"
fi
RATES=$(python3 -c "import sys; c=float(sys.argv[1]); print(','.join(f'{c*float(m):.1f}' for m in sys.argv[2].split()))" "$CAPACITY" "$MULTS")
echo "surge-overload: stairs of $RATES arrivals/s, $STAIR_SECS s each; node CPU ${NODE_CPU} % of one core, $TARGETS"

# RUNS picks among them (default all four): on, on-naive, off, off-naive.
RUNS="${RUNS:-on on-naive off off-naive}"
for r in $RUNS; do
  case $r in
    on) run "surge on" true "$RATES" ;;
    on-naive) run "surge on, naive clients" true "$RATES" --naive 1 ;;
    off) run "surge off" false "$RATES" ;;
    off-naive) run "surge off, naive clients" false "$RATES" --naive 1 ;;
    *) echo "surge-overload: unknown run $r (on, on-naive, off, off-naive)" >&2; exit 2 ;;
  esac
done

"$BIN" --data-dir "$DIR" surge --chart-only "$DIR/surge on.json" --svg "$DIR/overload.svg" \
  --compare "$DIR/surge on, naive clients.json" --compare "$DIR/surge off.json" \
  --compare "$DIR/surge off, naive clients.json" 2>/dev/null || true

python3 - "$DIR" "$CAPACITY" "node CPU ${NODE_CPU} % of one core${CG:+ (cgroup quota)}, $TARGETS" <<'EOF' | tee "$DIR/summary.txt"
import json, sys, os
d, capacity = sys.argv[1], float(sys.argv[2])
print(sys.argv[3])
runs = ["calibration", "surge on", "surge on, naive clients", "surge off", "surge off, naive clients"]
reports = {n: json.load(open(os.path.join(d, n + ".json"))) for n in runs if os.path.exists(os.path.join(d, n + ".json"))}
import re
def server_samples(name, r):
    """The server's CPU and surge figures per stair, from the sampler."""
    try:
        start = next(float(l.split()[-3]) for l in open(os.path.join(d, name + ".err")) if "schedule starts at" in l)
        rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(d, name + ".samples.tsv"))][1:]
    except (OSError, StopIteration, ValueError, IndexError):
        return
    def figures(text):
        """The KEY=VALUE numbers of one column (metrics, thread CPU)."""
        out = {}
        for item in text.split():
            k, _, v = item.rpartition("=")
            try:
                out[k] = float(v)
            except ValueError:
                pass
        return out
    samples = []
    for row in rows:
        if len(row) < 3:
            continue
        threads = figures(row[3]) if len(row) > 3 else {}
        samples.append((float(row[0]) - start, float(row[1] or 0), figures(row[2]), threads))
    secs = r["schedule"].get("stair_secs") or 0
    stairs = len(r["summary"]["stairs"])
    # Each stair, then the drain after the last arrivals.
    for i in range(stairs + 1):
        end = (i + 1) * secs if i < stairs else float("inf")
        inside = [s for s in samples if i * secs <= s[0] < end]
        if len(inside) < 2:
            continue
        mean = lambda f: sum(f(s) for s in inside) / len(inside)
        g = lambda m, k: m.get(k, 0.0)
        span = inside[-1][0] - inside[0][0] or 1
        first, last = inside[0][2], inside[-1][2]
        rate = lambda k: (g(last, k) - g(first, k)) / span
        refusals = {re.sub(r'.*reason="([^"]+)".*', r"\1", k): rate(k) for k in last if k.startswith("ardoise_surge_refusals_total")}
        shown = ", ".join(f"{k} {v:.0f}/s" for k, v in sorted(refusals.items(), key=lambda kv: -kv[1]) if v >= 0.5) or "none"
        gen, staff = 'ardoise_surge_admitted_users{lane="general"}', 'ardoise_surge_admitted_users{lane="staff"}'
        queue = 'ardoise_surge_queue_length{lane="general"}'
        passes = rate('ardoise_surge_passes_total{how="direct"}') + rate('ardoise_surge_passes_total{how="from_queue"}')
        cpu = 100 * mean(lambda s: s[1])
        limit = mean(lambda s: g(s[2], "ardoise_surge_user_limit"))
        admitted = mean(lambda s: g(s[2], gen) + g(s[2], staff))
        queued = mean(lambda s: g(s[2], queue))
        late = rate("ardoise_surge_late_entries_total")
        held = mean(lambda s: g(s[2], "ardoise_surge_lobby_held"))
        # Password checks (each an argon2id hash), whatever their outcome.
        hashes = sum(rate(k) for k in last if k.startswith("ardoise_signin_total"))
        # The CPU time those checks took, by lane: the share of a core
        # password sign-ins cost beside the pages.
        hashing = {ln: 100 * rate(f'ardoise_password_hash_cpu_seconds_sum{{lane="{ln}"}}') for ln in ("staff", "general")}
        label = f"stair {i + 1}" if i < stairs else "drain  "
        print(f"    {label}: server CPU {cpu:5.1f} % of a core; user limit {limit:6.0f}, admitted {admitted:6.0f}, queued {queued:7.0f};"
              f" passes {passes:5.1f}/s (late entries {late:4.1f}/s); refreshes held {held:4.0f}; password sign-ins {hashes:4.1f}/s"
              f" (hashing {hashing['staff']:4.1f} % of a core for teachers and staff, {hashing['general']:4.1f} % for others); refusals: {shown}")
        # Where the CPU went, by thread: the runtime serves every request
        # (pages, lobby pages and refusals alike), the hashing threads
        # check passwords, the database's run queries.
        tf, tl = inside[0][3], inside[-1][3]
        if tf and tl:
            used = {k: max(0.0, tl.get(k, 0.0) - tf.get(k, 0.0)) / span for k in tl}
            total = sum(used.values()) or 1
            names = [("runtime", "requests (runtime)"), ("hash_staff", "teachers' and staff's hashes"),
                     ("hash_general", "others' hashes"), ("database", "database"), ("other", "other")]
            print(f"      CPU by thread: " + ", ".join(f"{label} {100 * used.get(k, 0.0) / total:4.1f} %" for k, label in names)
                  + f" (of {100 * total:.1f} % of a core)")

peak = max(s["journeys_per_sec"] for r in reports.values() for s in r["summary"]["stairs"])
print(f"capacity (calibration): {capacity:.1f} journeys/s; peak goodput over all runs: {peak:.1f} journeys/s; ratios below are of that peak")
for name, r in reports.items():
    print(f"\n{name}:")
    for s in r["summary"]["stairs"]:
        x = s["offered_per_sec"] / capacity if capacity else 0
        print(f"  offered {s['offered_per_sec']:7.1f}/s ({x:4.1f}×): goodput {s['journeys_per_sec']:6.1f}/s = {100*s['journeys_per_sec']/peak:5.1f} % of peak;"
              f" p99 {s['served']['p99']:8.1f} ms (password sign-ins apart: p99 {s['sign_in']['p99']:.0f} ms); lobby p99 {s['lobby_answer_latency']['p99']:6.1f} ms;"
              f" failures {s['failures']}, 503s {s['refused']}; teachers' sign-ins p99 {s['staff_sign_in']['p99']:.0f} ms (n = {s['staff_sign_in']['count']}, {s['staff_sign_in_failed']} failed)"
              + (f"; teachers' first home page p50 {s['staff_first_home']['p50']/1000:.1f} s, p99 {s['staff_first_home']['p99']/1000:.1f} s (n = {s['staff_first_home']['count']})" if s.get('staff_first_home') else "")
              + (f"; estimates told in it within 25 %: {100*s['estimate_within_25pct_share']:.1f} % of {s['estimated']}" if s.get('estimated') else ""))
    l = r["summary"]["lobby"]
    print(f"  lobby: {l['admitted']} waited and got in ({l['abandoned']} still waiting at the end); in order {100*l['in_order_share']:.1f} %;"
          f" first estimate within 25 %: {100*l['estimate_within_25pct_share']:.1f} % of {l['estimated']}"
          + (f" (general {100*l['estimate_within_25pct_share_by_lane'][0]:.1f} %, staff {100*l['estimate_within_25pct_share_by_lane'][1]:.1f} %;"
             f" every page's: {100*l['page_estimate_within_25pct_share']:.1f} % of {l['pages_estimated']})" if 'pages_estimated' in l else "")
          + f"; retry amplification {r['summary']['retry_amplification']:.3f}×")
    errs = ", ".join(f"{k} {v}" for k, v in r["summary"]["errors"]) or "none"
    print(f"  failed attempts: {errs}")
    server_samples(name, r)
print(f"\nload average: {open('/proc/loadavg').read().split()[:3]}")
EOF
echo "chart: $DIR/overload.svg"
