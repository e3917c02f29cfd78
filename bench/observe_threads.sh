#!/bin/sh
# CPU per request of serve's threads with observability all on and all off:
# what decides saturated throughput on a machine whose cores the load
# generator shares, measured without the noise of wall-clock runs.
#
# Two serves as in bench/gateway.sh's overhead run (all off: --metrics off
# --metering off; all on: metering, metrics, a JSON access log to a file,
# every trace sampled and exported to bench/otlp_sink.js). For each, ROUNDS
# times: wrk runs CONNS connections for DURATION seconds on the model's
# binary body, and the CPU time each thread of serve (and of its instances,
# and of the collector) took across the run (/proc/PID/task/TID/schedstat,
# in ns) is divided by the requests wrk counted. Threads are summed by
# name (children's as child:NAME), wrk's CPU is added as "wrk" (TOTAL is
# serve's and the collector's without wrk); the median of the rounds is printed, in
# µs per request, with each round's value. CPU time, unlike wall-clock
# throughput, hardly depends on what else runs on the machine; it still
# grows somewhat with the load (caches, the other hyperthread).
#
#   bench/observe_threads.sh [MODEL]
#
# Environment: ROUSE (default build/rouse), SHARED (../shared beside the
# source tree), DURATION (5), CONNS (32), ROUNDS (3), OFF_FLAGS, ON_FLAGS.
# Needs wrk and node (the collector, and protobufjs through the ORT peer's
# node_modules for the bodies: PEER_DIR, default build/peer-ort).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
duration=${DURATION:-5}
conns=${CONNS:-32}
rounds=${ROUNDS:-3}
peer=${PEER_DIR:-$root/build/peer-ort}
model=${1:-mlp}
lua=$root/bench/gateway_post.lua
dir=$shared/models/$model

die() { echo "observe_threads: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
[ -f "$dir/model.onnx" ] || die "no $dir/model.onnx"
command -v wrk >/dev/null 2>&1 || die "wrk is not installed (scripts/setup bench)"
. "$root/bench/ort_peer.sh"
ort_peer_install "$shared" "$peer"
NODE_PATH=$peer/node_modules
export NODE_PATH

tmp=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_listening() {
    i=0
    while [ "$i" -lt 300 ]; do
        addr=$(sed -n '1s/^listening on //p' "$1")
        [ -n "$addr" ] && { echo "$addr"; return 0; }
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# cpu PID...: "name ns" per thread name, the CPU time (schedstat, in ns)
# of the processes' threads and of their children's (named child:NAME).
cpu() {
    for p in "$@"; do
        for c in $p $(cat /proc/"$p"/task/*/children 2>/dev/null); do
            pre=""
            [ "$c" = "$p" ] || pre=child:
            for t in /proc/"$c"/task/*; do
                name=$(tr ' ' _ <"$t/comm" 2>/dev/null) || continue
                ns=$(cut -d' ' -f1 "$t/schedstat" 2>/dev/null) || continue
                echo "$pre$name $ns"
            done
        done
    done | awk '{ s[$1] += $2 } END { for (k in s) print k, s[k] }' | sort
}

node "$root/bench/gateway_bodies.js" "$tmp" "$dir/test_data_set_0/input_0.pb" >/dev/null ||
    die "cannot make the bodies"
hlen=$(cat "$tmp/body.bin.hlen")
node "$root/bench/otlp_sink.js" >"$tmp/otlp.out" &
sink=$!
pids="$pids $sink"
sink_addr=$(wait_listening "$tmp/otlp.out" "$sink") || die "the OTLP collector did not start"
# shellcheck disable=SC2086
"$rouse" serve --port 0 --data "$tmp/off" --log-level warn --metrics off --metering off \
    ${OFF_FLAGS:-} >"$tmp/off.out" 2>"$tmp/off.err" &
off=$!
pids="$pids $off"
# shellcheck disable=SC2086
"$rouse" serve --port 0 --data "$tmp/on" --log-level warn --access-log "$tmp/access.log" \
    --log-format json --otlp-endpoint "http://$sink_addr" --trace-sample-ratio 1 ${ON_FLAGS:-} \
    >"$tmp/on.out" 2>"$tmp/on.err" &
on=$!
pids="$pids $on"
off_addr=$(wait_listening "$tmp/off.out" "$off") || die "serve (off) did not start: $(cat "$tmp/off.err")"
on_addr=$(wait_listening "$tmp/on.out" "$on") || die "serve (on) did not start: $(cat "$tmp/on.err")"
for a in "$off_addr" "$on_addr"; do
    "$rouse" deploy "$model" "$dir/model.onnx" --max "$(nproc)" --queue-depth 1024 \
        --server "http://$a" >/dev/null 2>&1 || die "deploy failed"
    BODY_FILE=$tmp/body.bin HLEN=$hlen wrk -t 1 -c "$conns" -d 1s -s "$lua" \
        "http://$a/v2/models/$model/infer" >/dev/null 2>&1 || die "warm-up failed"
done

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
r=0
while [ "$r" -lt "$rounds" ]; do
    r=$((r + 1))
    for cfg in off on; do
        if [ $cfg = off ]; then a=$off_addr p=$off; else a=$on_addr p=$on; fi
        cpu "$p" "$sink" >"$tmp/before"
        # wrk's own CPU: the children's times of a subshell that ran only it.
        (
            BODY_FILE=$tmp/body.bin HLEN=$hlen wrk -t 1 -c "$conns" -d "${duration}s" -s "$lua" \
                "http://$a/v2/models/$model/infer" >"$tmp/wrk" 2>&1 || exit 1
            times >"$tmp/times"
        ) || die "wrk failed"
        sleep 1.2 # the exporter's (within 1 s) and writers' last batches of the run
        cpu "$p" "$sink" >"$tmp/after"
        n=$(sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p' "$tmp/wrk")
        rps=$(sed -n 's/^RESULT.* rps=\([0-9.]*\).*/\1/p' "$tmp/wrk")
        join -a 2 -e 0 -o 0,1.2,2.2 "$tmp/before" "$tmp/after" |
            awk -v n="$n" -v cfg=$cfg -v r=$r -v rps="$rps" \
                '{ d = ($3 - $2) / 1e3 / n; if (d > 0.0005) { printf "%s %d %s %.3f\n", cfg, r, $1, d; t += d } }
                 END { printf "%s %d TOTAL %.3f\n%s %d req/s %.0f\n", cfg, r, t, cfg, r, rps }' >>"$tmp/rows"
        # "0m1.230000s 0m0.450000s" (user, system) on the children's line.
        awk -v n="$n" -v cfg=$cfg -v r=$r 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) {
                split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] }
              printf "%s %d wrk %.3f\n", cfg, r, t * 1e6 / n }' "$tmp/times" >>"$tmp/rows"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "CPU µs per request (median of $rounds rounds of ${duration} s at $conns connections; off = all off, on = all on):"
awk '{ k = $1 " " $3; v[k] = v[k] " " $4 } END { for (k in v) print k, v[k] }' "$tmp/rows" |
    while read -r cfg name vals; do
        # shellcheck disable=SC2086
        med=$(printf '%s\n' $vals | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
        printf '%-4s %-18s %10s   (%s)\n' "$cfg" "$name" "$med" "$vals"
    done | sort -k2,2 -k1,1
