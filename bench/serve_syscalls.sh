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

. "$root/bench/serve_lib.sh"
tmp=$(mktemp -d)
trap serve_cleanup EXIT

serve_start
digest=$(serve_upload "$shared/models/$model/model.onnx")
flags=$(serve_input_flags "$shared/models/$model/model.onnx" "$shared/models/$model/test_data_set_0")

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
    b=$(serve_batching "$mode" 32 2000 5)
    serve_deploy "$model-$mode" "{\"model\":\"$digest\",\"scaling\":{\"max\":$max,\"queue_depth\":1024}$b}"
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
    curl -sf -X DELETE "$url/v1/functions/$model-$mode" >/dev/null || true
done
echo
echo "load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
