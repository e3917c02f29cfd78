#!/bin/sh
# Instance starts in a burst, counted in CPU time as well as in wall time:
# what each start costs the machine and which process pays it, which the
# wall-clock rate of bench/coldstart.sh cannot say on a loaded machine.
#
# serve runs in a cgroup v1 cpuacct group of its own (its zygote, the
# template, its spares and instances inherit it). One function of MODEL
# (default mlp), scaling.max = BURST, idle_timeout_ms = IDLE_MS,
# template kept. Each round, with the template up and no instance:
#   cold        BURST concurrent requests (one curl --parallel process),
#               each on a new connection; serve starts instances for them;
#               then the same burst again, so that every instance started
#               has run once (one ready after the last answer had not);
#   warm        the same burst a third time, while those instances are
#               idle: requests only, no start;
#   end         until the instances have stopped (idle timeout) and serve
#               has reaped them.
# The group's cpuacct.usage is read around each phase, each phase ending
# once the group's CPU has gone quiet (less than 2 ms in 100 ms), and
# serve's and the template's own CPU from /proc/PID/schedstat. CPU per
# start = (cold - 2 x warm) / instances started: what the starts added to
# the same requests (serve's spawn work, the template's forks, the
# instances' entry, READY and first run, the next spare); per end = end
# phase / instances (their exits, serve's reaping and group removal, and
# serve answering this script's polls), less what the group spends in the
# same time with every instance idle (measured over 300 ms before; rounds
# whose length varies make this column the least reliable). The
# wall-clock rate is coldstart.sh's: instances started / (last READY -
# first start), from serve's debug log.
#
#   bench/burst_cpu.sh [MODEL]     (root)
#
# Environment: ROUSE (default build/rouse), SHARED (../shared beside the
# source tree), BURST (32), ROUNDS (10), IDLE_MS (5000: no instance stops
# before its round is over), ISOLATION (serve's own choice when unset),
# PEER_DIR (as for coldstart.sh). Needs curl (7.84 or later), python3,
# node and npm (for the request body), and the cpuacct controller of
# cgroup v1.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
burst=${BURST:-32}
rounds=${ROUNDS:-10}
idle_ms=${IDLE_MS:-5000}
model=${1:-mlp}

die() { echo "burst_cpu: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
dir=$shared/models/$model
[ -f "$dir/model.onnx" ] || die "$model is not in $shared/models"
peer=${PEER_DIR:-$root/build/peer-ort}
. "$root/bench/ort_peer.sh"
ort_peer_install "$shared" "$peer"
NODE_PATH=$peer/node_modules
export NODE_PATH
. "$root/bench/cpuacct.sh"
tmp=$(mktemp -d)
spid=""
stop_all() {
    [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
    cpuacct_remove
    rm -rf "$tmp"
}
trap stop_all EXIT
trap 'exit 130' INT TERM
cpuacct_group rouse-burst-cpu

load0=$(cut -d' ' -f1-3 /proc/loadavg)
cpuacct_exec "$rouse" serve --port 0 --data "$tmp/data" --log-level debug \
    --max-instances $((burst + 16)) \
    ${ISOLATION:+--isolation "$ISOLATION"} >"$tmp/out" 2>"$tmp/log" &
spid=$!
n=0
until grep -q '^listening on ' "$tmp/out"; do
    n=$((n + 1)); [ $n -lt 200 ] || die "serve did not start: $(cat "$tmp/log")"
    sleep 0.05
done
base="http://$(sed -n 's/^listening on //p' "$tmp/out")"
iso=$(curl -s "$base/v2" | sed -n 's/.*"isolation":"\([a-z]*\)".*/\1/p')

mkdir -p "$tmp/body"
node "$root/bench/gateway_bodies.js" "$tmp/body" "$dir/test_data_set_0/input_0.pb" ||
    die "cannot make a request body for $model"
body=$tmp/body/body.bin
hlen=$(cat "$tmp/body/body.bin.hlen")
fn=$(printf '%s' "$model" | tr 'A-Z.' 'a-z_')-burst
"$rouse" deploy "$fn" "$dir/model.onnx" --server "$base" --max "$burst" \
    --idle-timeout "$idle_ms" --template-ttl 600000 >/dev/null 2>"$tmp/deploy.err" ||
    die "deploy: $(cat "$tmp/deploy.err")"

# sched PID: the CPU time (ns) of every thread of PID so far, 0 when gone.
sched() {
    s=0
    for t in /proc/"$1"/task/*/schedstat; do
        [ -r "$t" ] || continue
        s=$((s + $(cut -d' ' -f1 "$t" 2>/dev/null || echo 0)))
    done
    echo "$s"
}
# state: "INSTANCES TEMPLATE_READY TEMPLATE_PID WARM_SPARES" of the function.
state() {
    curl -s "$base/v1/functions/$fn" | python3 -c '
import json, sys
j = json.load(sys.stdin)
t = [x for x in j["templates"] if x.get("state") == "ready"]
s = [x for x in j.get("spares", []) if x.get("state") == "warm"]
print(len(j["instances"]), len(t), t[0]["pid"] if t else 0, len(s))'
}
# settle: until the function has no instance, its template is ready and
# its spare warm (or 100 polls have passed without one: a round then starts
# without it).
settle() {
    n=0
    while :; do
        set -- $(state)
        [ "$1" = 0 ] && [ "$2" = 1 ] && { [ "$4" -gt 0 ] || [ $n -ge 100 ]; } && break
        n=$((n + 1)); [ $n -lt 3000 ] || die "$fn did not settle: $*"
        sleep 0.02
    done
    sleep 0.1 # processes listed as gone have been reaped
    tpid=$3
}
fire() {
    set --
    i=0
    while [ "$i" -lt "$burst" ]; do
        set -- "$@" -o /dev/null "$base/v2/models/$fn/infer"
        i=$((i + 1))
    done
    curl -s -Z --parallel-immediate --parallel-max "$burst" -w '%{http_code}\n' -H 'Expect:' \
        -H 'Content-Type: application/octet-stream' -H "Inference-Header-Content-Length: $hlen" \
        --data-binary "@$body" "$@" >"$tmp/codes" 2>/dev/null || true
    bad=$(grep -vc '^200$' "$tmp/codes" || true)
    [ "$bad" = 0 ] || die "$bad of $burst requests failed: $(sort "$tmp/codes" | uniq -c)"
}
ms_of_day() {
    sed -n 's/^[0-9-]*T\([0-9]*\):\([0-9]*\):\([0-9]*\)\.\([0-9]*\)Z.* ready in \([0-9.]*\) ms.*/\1 \2 \3 \4 \5/p' |
        awk '{ r = (($1 * 60 + $2) * 60 + $3) * 1000 + $4; print r, r - $5 }'
}

# quiet: until the group's CPU grows by less than 2 ms in 100 ms (what a
# burst set going has finished), at most 5 s.
quiet() {
    q=0
    prev=$(cpuacct_usage)
    while [ "$q" -lt 50 ]; do
        sleep 0.1
        cur=$(cpuacct_usage)
        [ $((cur - prev)) -lt 2000000 ] && break
        prev=$cur
        q=$((q + 1))
    done
}
ns() { date +%s%N; }

# Untimed: the template starts, the plan cache and the kernels warm up.
fire
: >"$tmp/rows"
r=0
while [ "$r" -le "$rounds" ]; do
    settle
    quiet
    from=$(wc -l <"$tmp/log")
    u0=$(cpuacct_usage); s0=$(sched "$spid"); t0=$(sched "$tpid")
    fire
    quiet
    # An instance ready after the last answer has not run yet: one burst
    # more, untimed, gives each its first request.
    fire
    quiet
    u1=$(cpuacct_usage); s1=$(sched "$spid"); t1=$(sched "$tpid")
    fire
    quiet
    u2=$(cpuacct_usage); s2=$(sched "$spid"); t2=$(sched "$tpid"); w2=$(ns)
    # What the group spends with every instance idle, per ms: taken off
    # the end phase.
    sleep 0.3
    ub=$(cpuacct_usage); wb=$(ns)
    settle
    quiet
    u3=$(cpuacct_usage); w3=$(ns)
    tail -n +"$((from + 1))" "$tmp/log" | grep "function $fn v[0-9]*: instance [0-9]* ready in" |
        ms_of_day >"$tmp/ready"
    k=$(wc -l <"$tmp/ready")
    # Round 0 warms what a first burst warms: not counted.
    if [ "$r" -gt 0 ] && [ "$k" -gt 0 ]; then
        awk -v k="$k" -v u0="$u0" -v u1="$u1" -v u2="$u2" -v u3="$u3" -v s0="$s0" -v s1="$s1" \
            -v s2="$s2" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v ub="$ub" -v w2="$w2" -v wb="$wb" \
            -v w3="$w3" '
            { if (NR == 1 || $2 < lo) lo = $2; if (NR == 1 || $1 > hi) hi = $1 }
            END {
                w = hi - lo; if (w < 1) w = 1
                cold = (u1 - u0) / 1e6; warm = (u2 - u1) / 1e6
                sc = (s1 - s0) / 1e6; sw = (s2 - s1) / 1e6
                tc = (t1 - t0) / 1e6; tw = (t2 - t1) / 1e6
                bg = (ub - u2) / (wb - w2); end = ((u3 - u2) - bg * (w3 - w2)) / 1e6
                printf "%d %.1f %.0f %.2f %.2f %.3f %.3f %.3f %.3f\n", k, w, k * 1000 / w, cold, warm,
                    (cold - 2 * warm) / k, (sc - 2 * sw) / k, (tc - 2 * tw) / k, end / k
            }' "$tmp/ready" >>"$tmp/rows"
    fi
    r=$((r + 1))
done

med() {
    awk -v c="$1" '{ print $c }' "$tmp/rows" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'
}
echo "Instance starts in a burst of $burst ($model, isolation $iso, $rounds rounds, IDLE_MS=$idle_ms)"
echo "load average at start: $load0; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| round | instances | window ms | starts/s | CPU cold (2 bursts) ms | CPU warm burst ms | CPU per start ms | of it serve | of it template | CPU per end ms |"
echo "|---|---|---|---|---|---|---|---|---|---|"
awk '{ printf "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", NR, $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$tmp/rows"
echo "| median | $(med 1) | $(med 2) | $(med 3) | $(med 4) | $(med 5) | $(med 6) | $(med 7) | $(med 8) | $(med 9) |"
echo
echo "Of it serve / template: that process's share of the CPU per start (cold minus twice"
echo "warm, /proc/PID/schedstat); the rest is the instances' (and the spares')."
