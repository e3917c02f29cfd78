#!/bin/sh
# serve's system calls and CPU time per request, by batching mode: one
# `rouse serve`, MODEL deployed with batching off, "fixed" and "auto"
# (`scaling.max` = cores), each loaded by `rouse bench -c C` closed-loop
# clients for DURATION while `perf stat` counts serve's system calls (the
# syscalls:sys_enter_* tracepoints, every thread of serve) and its task
# clock. On a virtual machine a system call costs about a microsecond even
# when it does nothing (getrusage, an epoll_wait that returns at once), so
# their count per request is what serve's CPU per request is made of, and
# a count moves far less with a shared machine's load than a time does.
# Hardware counters (perf stat -e instructions) are often not available in
# virtual machines; for instructions, run serve under callgrind (see
# bench/batching_lone.sh). A benchmark, not a test.
#
#   bench/serve_syscalls.sh
#   MODEL=mlp C=32 DURATION=5 MODES="off fixed" bench/serve_syscalls.sh
#
# Environment: ROUSE (build/rouse), SHARED (../shared), MODEL (mlp), C (32),
# DURATION (5, seconds), MODES ("off fixed auto"), MAX (the cores).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
model=${MODEL:-mlp}
c=${C:-32}
duration=${DURATION:-5}
modes=${MODES:-off fixed auto}
max=${MAX:-$(nproc)}

die() { echo "serve_syscalls: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
[ -d "$shared/models/$model" ] || die "no model $model in $shared/models"
command -v perf >/dev/null 2>&1 || die "perf is not installed"
command -v curl >/dev/null 2>&1 || die "curl is not installed"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed"

tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

"$rouse" serve --port 0 --data "$tmp/data" --log-level warn >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
i=0
until grep -q '^listening on ' "$tmp/serve.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -le 100 ] && kill -0 $pid 2>/dev/null || die "serve did not start: $(cat "$tmp/serve.err")"
    sleep 0.1
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/serve.out")
export ROUSE_SERVER=http://127.0.0.1:$port
digest=$(curl -sf --data-binary @"$shared/models/$model/model.onnx" "$ROUSE_SERVER/v1/blobs" |
    sed -n 's/.*"digest":"\([^"]*\)".*/\1/p')
[ -n "$digest" ] || die "upload of $model failed"
"$rouse" inspect "$shared/models/$model/model.onnx" --json >"$tmp/inspect.json" ||
    die "cannot inspect $model"
flags=$(python3 - "$tmp/inspect.json" "$shared/models/$model/test_data_set_0" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(" ".join("--input %s=%s/input_%d.pb" % (t["name"], sys.argv[2], i)
               for i, t in enumerate(r["inputs"])))
PY
)

calls="recvfrom sendmsg recvmsg epoll_ctl epoll_wait getrusage sched_yield clock_gettime"
events=task-clock
for s in $calls; do events="$events,syscalls:sys_enter_$s"; done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "serve's system calls per request, $model, $c closed-loop clients, ${duration} s per mode"
echo
printf '| mode | req/s |'
for s in $calls; do printf ' %s |' "$s"; done
echo ' serve CPU µs/req |'
printf '|---|---:|'
for s in $calls; do printf -- '---:|'; done
printf -- '---:|\n'
for mode in $modes; do
    case "$mode" in
        off) b="" ;;
        fixed) b=",\"batching\":{\"mode\":\"fixed\",\"max_batch\":32,\"max_delay_us\":2000}" ;;
        auto) b=",\"batching\":{\"mode\":\"auto\",\"max_batch\":32,\"max_delay_us\":2000,\"slo_ms\":5}" ;;
        *) die "unknown mode $mode" ;;
    esac
    curl -sf -X PUT -d "{\"model\":\"$digest\",\"scaling\":{\"max\":$max,\"queue_depth\":1024}$b}" \
        "$ROUSE_SERVER/v1/functions/$model-$mode" >/dev/null || die "deploy $model-$mode failed"
    # shellcheck disable=SC2086
    "$rouse" bench "$model-$mode" -c 8 -d 2s -q $flags || die "warm-up of $model-$mode failed"
    # shellcheck disable=SC2086
    perf stat -x, -e "$events" -p "$pid" -o "$tmp/stat.csv" -- \
        "$rouse" bench "$model-$mode" -c "$c" -d "${duration}s" --json $flags >"$tmp/run.json" ||
        die "rouse bench $model-$mode failed"
    python3 - "$tmp/run.json" "$tmp/stat.csv" "$mode" "$calls" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
n = run["requests"] or 1
counts = {}
for line in open(sys.argv[2]):
    f = line.strip().split(",")
    if len(f) > 2 and f[0] and f[0][0].isdigit():
        counts[f[2]] = float(f[0])
row = "| %s | %.0f |" % (sys.argv[3], run["requests_per_second"])
for s in sys.argv[4].split():
    row += " %.2f |" % (counts.get("syscalls:sys_enter_" + s, 0) / n)
row += " %.1f |" % (counts.get("task-clock", 0) * 1000 / n)  # task-clock is in ms
print(row)
PY
    curl -sf -X DELETE "$ROUSE_SERVER/v1/functions/$model-$mode" >/dev/null || true
done
echo
echo "load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
