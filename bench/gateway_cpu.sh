#!/bin/bash
# What one request costs the gateway in CPU, for serves side by side: for
# each SERVE (LABEL=BINARY, optionally followed by ,FLAGS for its `rouse
# serve`), a serve with everything off (--metrics off --metering off, no
# access log, no tracing) and MODEL deployed with --max set to the core
# count; then ROUNDS rounds in which wrk POSTs the binary body of
# MODEL's test_data_set_0/input_0.pb over CONNS keep-alive connections
# for DURATION seconds to each serve in turn (interleaved, so that a
# change of the machine's load hits every serve alike).
#
# Per run: req/s, p50 and the CPU time (user + system, /proc/PID/stat)
# that serve's process and, apart, every process below it (zygote,
# templates, instances) spent over the run, divided by the requests wrk
# counted. CPU per request moves far less with the machine's load than
# req/s and latency do (it still grows with it: caches, and fewer events
# per wake when requests arrive slower), so it is what tells builds or
# settings apart on a shared machine. Prints the medians and every round.
#
# With INSTR=N, also serve's own instructions per request, counted by
# callgrind (valgrind) over N requests at 1 connection once the rest is
# done (instances run natively: only serve's process is instrumented),
# in all and on the loop thread alone.
# Exact and independent of the load, but user space only: the kernel's
# share of serve's CPU (most of it: sockets, epoll) is not in it.
#
#   bench/gateway_cpu.sh [LABEL=BINARY[,FLAGS]...]
#
# Default serves: sandbox=build/rouse and process=build/rouse,--isolation
# process. Environment: MODEL (mlp), SHARED (../shared beside the source
# tree), ROUNDS (5), DURATION (2), CONNS (32), WARMUP (1), MAX (rouse
# instances, the core count), INSTR (0), PEER_DIR (writable copy of the
# ORT peer, whose protobufjs makes the body; default build/peer-ort).
# Needs wrk (`scripts/setup bench`), node and npm; valgrind for INSTR.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$root/../shared}
model=${MODEL:-mlp}
rounds=${ROUNDS:-5}
duration=${DURATION:-2}
conns=${CONNS:-32}
warmup=${WARMUP:-1}
max=${MAX:-$(nproc)}
instr=${INSTR:-0}
peer=${PEER_DIR:-$root/build/peer-ort}
lua=$root/bench/gateway_post.lua
[ $# -gt 0 ] || set -- "sandbox=$root/build/rouse" "process=$root/build/rouse,--isolation process"

die() { echo "gateway_cpu: $*" >&2; exit 1; }
say() { echo "gateway_cpu: $*" >&2; }
command -v wrk >/dev/null 2>&1 || die "wrk is not installed (scripts/setup bench)"
[ "$instr" = 0 ] || command -v valgrind >/dev/null 2>&1 || die "INSTR needs valgrind"
dir=$shared/models/$model
input=$dir/test_data_set_0/input_0.pb
[ -f "$dir/model.onnx" ] && [ -f "$input" ] || die "no $dir/model.onnx or its test_data_set_0/input_0.pb"

. "$root/bench/ort_peer.sh"
ort_peer_install "$shared" "$peer"
export NODE_PATH=$peer/node_modules

tmp=$(mktemp -d)
pids=()
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/body"
node "$root/bench/gateway_bodies.js" "$tmp/body" "$input" || die "cannot make the body"
body=$tmp/body/body.bin
hlen=$(cat "$tmp/body/body.bin.hlen")

# wait_listening FILE PID: the ADDR:PORT a server printed on its first line.
wait_listening() {
    local i=0 addr
    while [ "$i" -lt 600 ]; do
        addr=$(sed -n '1s/^listening on //p' "$1" 2>/dev/null)
        [ -n "$addr" ] && { echo "$addr"; return 0; }
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# load URL CONNS SECONDS: one wrk run; prints its RESULT line.
load() {
    BODY_FILE=$body HLEN=$hlen wrk -t 1 -c "$2" -d "${3}s" --timeout 10s -s "$lua" "$1" \
        >"$tmp/wrk" 2>&1 || die "wrk failed: $(cat "$tmp/wrk")"
    local line errors
    line=$(grep '^RESULT ' "$tmp/wrk") || die "no RESULT from wrk: $(cat "$tmp/wrk")"
    errors=$(echo "$line" | sed 's/.* errors=\([0-9]*\).*/\1/')
    [ "$errors" -eq 0 ] || die "$errors failed requests against $1"
    echo "$line"
}
field() { echo "$1" | sed "s/.* $2=\([0-9.]*\).*/\1/"; }

# ticks PID: "SERVE OTHERS", the CPU ticks (user + system) of PID and of
# every process below it, from one pass over /proc.
ticks() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '{
        p = $1; sub(/^.*\) /, ""); par[p] = $2; t[p] = $12 + $13 }
        END { want[root] = 1
              do { more = 0; for (p in par) if (!(p in want) && (par[p] in want)) { want[p] = 1; more = 1 } } while (more)
              for (p in want) if (p == root) s += t[p]; else o += t[p]
              print s + 0, o + 0 }'
}

labels=() bins=() addrs=()
k=0
for spec in "$@"; do
    label=${spec%%=*}
    rest=${spec#*=}
    bin=${rest%%,*}
    flags=""
    [ "$bin" = "$rest" ] || flags=${rest#*,}
    [ -x "$bin" ] || die "$label: no rouse binary at $bin"
    # shellcheck disable=SC2086
    "$bin" serve --port 0 --data "$tmp/data$k" --log-level warn --metrics off --metering off $flags \
        >"$tmp/out$k" 2>"$tmp/err$k" &
    pids+=($!)
    labels+=("$label")
    bins+=("$bin")
    k=$((k + 1))
done
for k in "${!pids[@]}"; do
    addr=$(wait_listening "$tmp/out$k" "${pids[$k]}") ||
        die "${labels[$k]}: serve did not start: $(cat "$tmp/err$k")"
    "${bins[$k]}" deploy "$model" "$dir/model.onnx" --max "$max" --queue-depth 1024 \
        --server "http://$addr" >"$tmp/deploy" 2>&1 || die "${labels[$k]}: deploy failed: $(cat "$tmp/deploy")"
    addrs+=("$addr")
    load "http://$addr/v2/models/$model/infer" "$conns" "$warmup" >/dev/null
done

hz=$(getconf CLK_TCK)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$tmp/rows"
for r in $(seq "$rounds"); do
    for k in "${!pids[@]}"; do
        say "round $r/$rounds, ${labels[$k]}: $conns connection(s), ${duration}s"
        read -r s0 o0 < <(ticks "${pids[$k]}")
        res=$(load "http://${addrs[$k]}/v2/models/$model/infer" "$conns" "$duration")
        read -r s1 o1 < <(ticks "${pids[$k]}")
        awk -v k="$k" -v n="$(field "$res" requests)" -v rps="$(field "$res" rps)" \
            -v p50="$(field "$res" p50_us)" -v s=$((s1 - s0)) -v o=$((o1 - o0)) -v hz="$hz" \
            'BEGIN { printf "%d %.0f %d %.2f %.2f\n", k, rps, p50, s * 1e6 / hz / n, o * 1e6 / hz / n }' \
            >>"$tmp/rows"
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# med K COLUMN: the median (lower middle) of a column of serve K's rows.
med() { awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$tmp/rows" | sort -g |
            awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "gateway CPU per request: $model (binary body), wrk 1 thread, $conns connection(s), $rounds interleaved rounds of ${duration} s; serves with --metrics off --metering off, --max $max; $(nproc) cores shared by the serves, their instances and wrk"
echo "load average (1, 5, 15 min) before: $load_before, after: $load_after"
echo
echo "| serve | req/s | p50 | serve CPU per request | instances' CPU per request |"
echo "|---|---|---|---|---|"
for k in "${!pids[@]}"; do
    echo "| ${labels[$k]} | $(med "$k" 2) | $(med "$k" 3) µs | $(med "$k" 4) µs | $(med "$k" 5) µs |"
done
echo
echo "per round (req/s, serve µs, instances µs):"
for k in "${!pids[@]}"; do
    echo "- ${labels[$k]}: $(awk -v k="$k" '$1 == k { printf "%s%s/%s/%s", sep, $2, $4, $5; sep = "  " }' "$tmp/rows")"
done
stop_all
pids=()
trap - EXIT

[ "$instr" != 0 ] || exit 0
# Instructions of serve's own process per request (callgrind), one serve
# at a time, counted from zero after a warm-up and dumped at the end.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo
echo "serve's own instructions per request (callgrind, $instr requests at 1 connection, user space only):"
mkdir -p "$tmp/body"
node "$root/bench/gateway_bodies.js" "$tmp/body" "$input" || die "cannot make the body"
body=$tmp/body/body.bin
for spec in "$@"; do
    label=${spec%%=*}
    rest=${spec#*=}
    bin=${rest%%,*}
    flags=""
    [ "$bin" = "$rest" ] || flags=${rest#*,}
    # shellcheck disable=SC2086
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$tmp/cg.out" \
        "$bin" serve --port 0 \
        --data "$tmp/data-$label" --log-level warn --metrics off --metering off $flags \
        >"$tmp/out-$label" 2>"$tmp/err-$label" &
    vg=$!
    addr=$(wait_listening "$tmp/out-$label" "$vg") || { kill "$vg"; die "$label: serve did not start under valgrind"; }
    "$bin" deploy "$model" "$dir/model.onnx" --max "$max" --queue-depth 1024 \
        --server "http://$addr" >"$tmp/deploy" 2>&1 || { kill "$vg"; die "$label: deploy failed: $(cat "$tmp/deploy")"; }
    url=http://$addr/v2/models/$model/infer
    load "$url" 1 2 >/dev/null
    callgrind_control -z "$vg" >/dev/null 2>&1
    # wrk runs by time: as many requests as fit, counted.
    n=0
    while [ "$n" -lt "$instr" ]; do
        res=$(load "$url" 1 2)
        n=$((n + $(field "$res" requests)))
    done
    callgrind_control -d "$vg" >/dev/null 2>&1
    kill "$vg"
    wait "$vg" 2>/dev/null || true
    # One file per thread of the last dump (cg.out.DUMP-THREAD); thread 1
    # is the loop's.
    last=$(ls "$tmp"/cg.out.* | sed 's/.*cg\.out\.\([0-9]*\)-.*/\1/' | sort -n | tail -1)
    ir=0 loop_ir=0
    for f in "$tmp"/cg.out."$last"-*; do
        t=$(awk '/^summary:/ { print $2 }' "$f")
        ir=$((ir + t))
        case $f in *-01) loop_ir=$t ;; esac
    done
    echo "- $label: $((ir / n)) instructions per request over $n requests, $((loop_ir / n)) of them on the loop thread"
    rm -f "$tmp"/cg.out*
done
