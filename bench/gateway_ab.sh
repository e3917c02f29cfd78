#!/bin/sh
# Two or more gateways side by side: builds of rouse, or one build with
# different serve flags, measured in interleaved rounds so that a machine
# whose speed drifts (a shared or virtual one) shows the drift in every
# variant alike, not as a difference between them.
#
# Each variant is "LABEL=BINARY [serve flags...]". Per round and variant:
# a fresh `rouse serve` (its own data directory), mlp deployed with --max
# the core count, a WARMUP run at CONNS connections, then wrk over 1
# connection (p50, p99) and CONNS connections (req/s), binary OIP body
# (bench/gateway_bodies.js, as bench/gateway.sh). Prints every round and
# the medians per variant, with the load average around the run.
#
#   bench/gateway_ab.sh "old=../old/build/rouse" "new=build/rouse"
#   bench/gateway_ab.sh "on=build/rouse" "off=build/rouse --metering off"
#
# Environment: SHARED (default ../shared beside the source tree), ROUNDS
# (5), DURATION (seconds per measured run, 4), WARMUP (2), CONNS (32),
# MODEL (mlp), PEER_DIR (writable copy of the ORT peer for protobufjs,
# default build/peer-ort). Needs wrk (`scripts/setup bench`), node, npm and
# curl. A benchmark, not a test.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$root/../shared}
rounds=${ROUNDS:-5}
duration=${DURATION:-4}
warmup=${WARMUP:-2}
conns=${CONNS:-32}
model=${MODEL:-mlp}
peer=${PEER_DIR:-$root/build/peer-ort}
lua=$root/bench/gateway_post.lua

die() { echo "gateway_ab: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: gateway_ab.sh LABEL=BINARY[ FLAGS] LABEL=BINARY[ FLAGS]..."
command -v wrk >/dev/null 2>&1 || die "wrk is not installed (scripts/setup bench)"
dir=$shared/models/$model
[ -f "$dir/model.onnx" ] || die "no $dir/model.onnx"

. "$root/bench/ort_peer.sh"
ort_peer_install "$shared" "$peer"
NODE_PATH=$peer/node_modules
export NODE_PATH

tmp=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
node "$root/bench/gateway_bodies.js" "$tmp" "$dir/test_data_set_0/input_0.pb" ||
    die "cannot make the request bodies"
hlen=$(cat "$tmp/body.bin.hlen")

# run URL CONNS SECONDS: wrk's RESULT line.
run() {
    BODY_FILE=$tmp/body.bin HLEN=$hlen wrk -t1 -c "$2" -d "${3}s" --timeout 10s -s "$lua" "$1" \
        >"$tmp/wrk" 2>&1 || die "wrk failed: $(cat "$tmp/wrk")"
    line=$(grep '^RESULT ' "$tmp/wrk") || die "no RESULT from wrk: $(cat "$tmp/wrk")"
    case $line in *" errors=0"*) ;; *) die "failed requests: $line" ;; esac
    echo "$line"
}
field() { echo "$1" | sed "s/.* $2=\([0-9.]*\).*/\1/"; }

for v in "$@"; do
    case $v in *=*) echo "$v" >>"$tmp/variants" ;; *) die "not LABEL=BINARY: $v" ;; esac
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$tmp/rows"
r=1
while [ "$r" -le "$rounds" ]; do
    while IFS= read -r v <&3; do
        label=${v%%=*}
        cmd=${v#*=}
        data=$tmp/data-$r-$label
        # shellcheck disable=SC2086 # the variant's flags are words
        set -- $cmd
        bin=$1
        shift
        "$bin" serve --port 0 --data "$data" --log-level warn "$@" >"$tmp/out" 2>"$tmp/err" </dev/null &
        pid=$!
        addr=""
        i=0
        while [ "$i" -lt 300 ] && [ -z "$addr" ]; do
            addr=$(sed -n '1s/^listening on //p' "$tmp/out")
            kill -0 "$pid" 2>/dev/null || die "$label: serve did not start: $(cat "$tmp/err")"
            [ -n "$addr" ] || sleep 0.1
            i=$((i + 1))
        done
        [ -n "$addr" ] || die "$label: serve did not listen"
        "$bin" deploy "$model" "$dir/model.onnx" --max "$(nproc)" --queue-depth 1024 \
            --server "http://$addr" >"$tmp/deploy" 2>&1 </dev/null ||
            die "$label: deploy failed: $(cat "$tmp/deploy")"
        url=http://$addr/v2/models/$model/infer
        run "$url" "$conns" "$warmup" >/dev/null
        one=$(run "$url" 1 "$duration")
        many=$(run "$url" "$conns" "$duration")
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        pid=""
        rm -rf "$data"
        echo "$label $(field "$one" p50_us) $(field "$one" p99_us) $(field "$many" rps)" >>"$tmp/rows"
        echo "gateway_ab: round $r: $label: 1 connection p50 $(field "$one" p50_us) µs," \
            "p99 $(field "$one" p99_us) µs; $conns connections $(field "$many" rps) req/s" >&2
    done 3<"$tmp/variants"
    r=$((r + 1))
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "$model, binary OIP body, wrk 1 thread, ${duration} s per run after a ${warmup} s warm-up at $conns connections;"
echo "$rounds interleaved rounds, a fresh serve per round and variant; medians (min-max) of the rounds"
echo "load average (1, 5, 15 min) before: $load_before, after: $load_after"
echo
echo "| variant | 1 conn p50 µs | 1 conn p99 µs | $conns conns req/s |"
echo "|---|---:|---:|---:|"
while IFS= read -r v; do
    label=${v%%=*}
    awk -v l="$label" '
        function med(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        $1 == l { n++; p[n] = $2; q[n] = $3; r[n] = $4 }
        END {
            if (!n) exit
            mp = med(p, n); lo = p[1]; hi = p[n]
            mq = med(q, n); lq = q[1]; hq = q[n]
            mr = med(r, n); lr = r[1]; hr = r[n]
            printf "| %s | %d (%d-%d) | %d (%d-%d) | %.0f (%.0f-%.0f) |\n", l, mp, lo, hi, mq, lq, hq, mr, lr, hr
        }' "$tmp/rows"
done <"$tmp/variants"
