#!/bin/sh
# The inference gateway under load: `rouse serve` against a plain Node.js HTTP
# server around onnxruntime-node (bench/peers/node_ort_server.js: one process,
# one InferenceSession, 1 intra-op thread), both answering the Open Inference
# Protocol v2 `infer` endpoint on loopback.
#
# For each model (default mlp and squeezenet1_1 from ../shared/models; missing
# ones are skipped) and each body (JSON; binary data extension asking for
# binary outputs, both made from test_data_set_0/input_0.pb), wrk POSTs the
# same body over keep-alive connections, rouse and Node back to back:
#   low load:  1 connection                 -> p50 and p99 latency
#   load:      CONNS connections (default 32) -> throughput and tails
# Each measured run follows an untimed warm-up run of WARMUP seconds, so that
# rouse's instances are started and Node's JIT is warm. rouse deploys each
# model with --max set to the number of cores.
#
# Added latency = rouse p50 at 1 connection - the engine's in-process median
# (`rouse run MODEL --input input_0.pb --repeat N`, about 2 s of runs taken
# just before) for the same input.
#
# Loop stall: then, for the first model, wrk runs CONNS connections for
# DURATION seconds against rouse while `rouse deploy` deploys a new version
# of it every second (upload, model check, registry write); serve's
# `loop_stall_max_us` (GET /v1/stats, reset just before the run) is the
# longest its event loop went without waiting for events in that window,
# and `loop_block_max_us` the longest such iteration in which the loop
# thread slept (blocked on the disk or another process; the rest of the
# stall is preemption by other processes on a busy machine).
#
# Observability overhead: then, for the first model (binary body), two more
# serves side by side, one with everything off (--metrics off, --metering
# off, no access log, no tracing; OFF_FLAGS adds more) and one with
# everything on (metering, metrics, a JSON
# access log to a file, --trace-sample-ratio TRACE_RATIO (default 1: every
# trace sampled) with the sampled spans exported to a local OTLP
# collector, bench/otlp_sink.js), measured in ROUNDS interleaved rounds
# (default 3) of 1 connection (p50) and CONNS connections (throughput); the
# medians and their difference are printed, with the load average around
# them, and each serve's CPU time (all its threads, /proc/PID/stat) per
# request of its CONNS-connection runs: the difference of those is the
# figure the machine's load moves least.
#
# Prints a Markdown table. A benchmark, not a test: wrk shares the machine's
# cores with the servers, so absolute numbers depend on the machine.
#
#   bench/gateway.sh [MODEL...]
#
# Environment: ROUSE (default build/rouse), SHARED (default ../shared beside
# the source tree), DURATION (seconds per measured run, 10), WARMUP (2),
# CONNS (32), THREADS (wrk threads, 1), RUNS (most engine repeats, 2000), MAX
# (rouse instances, default the core count), PEER_DIR (writable copy of the
# ORT peer, default build/peer-ort; `npm install` runs there once), STALL_ONLY
# (1: only the loop-stall run, no Node+ORT), OVERHEAD (0: no overhead run),
# OVERHEAD_ONLY (1: only the overhead run), ROUNDS (3), OFF_FLAGS, ON_FLAGS,
# TRACE_RATIO (1).
# Needs wrk (`scripts/setup bench`), node and npm.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
duration=${DURATION:-10}
warmup=${WARMUP:-2}
conns=${CONNS:-32}
wrk_threads=${THREADS:-1}
runs=${RUNS:-2000}
cores=$(nproc)
max=${MAX:-$cores}
stall_only=${STALL_ONLY:-0}
overhead=${OVERHEAD:-1}
overhead_only=${OVERHEAD_ONLY:-0}
rounds=${ROUNDS:-3}
trace_ratio=${TRACE_RATIO:-1}
[ "$overhead_only" != 1 ] || stall_only=1
peer=${PEER_DIR:-$root/build/peer-ort}
lua=$root/bench/gateway_post.lua
[ $# -gt 0 ] || set -- mlp squeezenet1_1

die() { echo "gateway: $*" >&2; exit 1; }
say() { echo "gateway: $*" >&2; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
command -v wrk >/dev/null 2>&1 || die "wrk is not installed (scripts/setup bench)"
command -v node >/dev/null 2>&1 || die "node is not installed"
command -v curl >/dev/null 2>&1 || die "curl is not installed"

. "$root/bench/ort_peer.sh"
ort_peer_install "$shared" "$peer" # its protobufjs makes the request bodies
NODE_PATH=$peer/node_modules
export NODE_PATH

tmp=$(mktemp -d)
rouse_pid=""
node_pid=""
extra_pids=""
stop_all() {
    for p in $node_pid $rouse_pid $extra_pids; do
        kill "$p" 2>/dev/null || true
    done
    for p in $node_pid $rouse_pid $extra_pids; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# wait_listening FILE PID: the ADDR:PORT a server printed on its first line.
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

# load URL BODY HLEN CONNS SECONDS: one wrk run; prints its RESULT line.
load() {
    BODY_FILE=$2 HLEN=$3 wrk -t "$(( $4 < wrk_threads ? $4 : wrk_threads ))" -c "$4" -d "${5}s" \
        --timeout 10s -s "$lua" "$1" >"$tmp/wrk" 2>&1 || die "wrk failed: $(cat "$tmp/wrk")"
    line=$(grep '^RESULT ' "$tmp/wrk") || die "no RESULT from wrk: $(cat "$tmp/wrk")"
    errors=$(echo "$line" | sed 's/.* errors=\([0-9]*\).*/\1/')
    [ "$errors" -eq 0 ] || die "$errors failed requests against $1: $(cat "$tmp/wrk")"
    echo "$line"
}
field() { echo "$1" | sed "s/.* $2=\([0-9.]*\).*/\1/"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
fmt_us() { awk -v u="$1" 'BEGIN { if (u >= 10000) printf "%.1f ms", u / 1000; else printf "%d µs", u }'; }

# post URL BODY HLEN OUT: one request with curl; fails unless it answers 200.
post() {
    if [ -n "$3" ]; then
        set -- "$1" "$2" "$3" "$4" -H "Content-Type: application/octet-stream" \
            -H "Inference-Header-Content-Length: $3"
    else
        set -- "$1" "$2" "$3" "$4" -H "Content-Type: application/json"
    fi
    url=$1 body=$2 out=$4
    shift 4
    code=$(curl -s -o "$out" -w '%{http_code}' -X POST "$@" --data-binary "@$body" "$url") || code=000
    [ "$code" = 200 ] || die "POST $url answered $code: $(head -c 300 "$out")"
}

# same_outputs A B: exits non-zero unless the JSON responses A and B carry the
# same outputs within the engine's tolerance.
same_outputs() {
    node -e '
        const fs = require("fs");
        const [a, b] = process.argv.slice(1).map((f) => JSON.parse(fs.readFileSync(f, "utf8")).outputs);
        if (a.length !== b.length) { console.error("output counts differ"); process.exit(1); }
        for (let i = 0; i < a.length; i++) {
            const x = a[i].data.flat(Infinity), y = b[i].data.flat(Infinity);
            if (x.length !== y.length) { console.error(a[i].name + ": sizes differ"); process.exit(1); }
            for (let k = 0; k < x.length; k++)
                if (Math.abs(x[k] - y[k]) > 1e-4 + 1e-3 * Math.abs(y[k])) {
                    console.error(a[i].name + "[" + k + "]: " + x[k] + " vs " + y[k]); process.exit(1);
                }
        }' "$1" "$2"
}

say "starting rouse serve"
"$rouse" serve --port 0 --data "$tmp/data" --log-level warn >"$tmp/rouse.out" 2>"$tmp/rouse.err" &
rouse_pid=$!
rouse_addr=$(wait_listening "$tmp/rouse.out" "$rouse_pid") ||
    die "rouse serve did not start: $(cat "$tmp/rouse.err")"

rows=""
added=""
targets=""
target_lat=""
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
notes=""
stall_model=""
stall_line=""
for model in "$@"; do
    [ "$stall_only" != 1 ] || break
    dir=$shared/models/$model
    input=$dir/test_data_set_0/input_0.pb
    if [ ! -f "$dir/model.onnx" ] || [ ! -f "$input" ]; then
        say "skipping $model: no $dir/model.onnx or its test_data_set_0/input_0.pb"
        notes="$notes
- $model skipped: not found"
        continue
    fi
    mkdir -p "$tmp/$model"
    node "$root/bench/gateway_bodies.js" "$tmp/$model" "$input" || die "cannot make bodies for $model"
    hlen=$(cat "$tmp/$model/body.bin.hlen")

    say "$model: deploying (max $max instances), starting the Node+ORT server"
    "$rouse" deploy "$model" "$dir/model.onnx" --max "$max" --queue-depth 1024 \
        --server "http://$rouse_addr" >"$tmp/deploy" 2>&1 || die "deploy failed: $(cat "$tmp/deploy")"
    node "$root/bench/peers/node_ort_server.js" "$dir/model.onnx" --name "$model" \
        >"$tmp/node.out" 2>"$tmp/node.err" &
    node_pid=$!
    node_addr=$(wait_listening "$tmp/node.out" "$node_pid") ||
        die "the Node+ORT server did not start: $(cat "$tmp/node.err")"
    r_url=http://$rouse_addr/v2/models/$model/infer
    n_url=http://$node_addr/v2/models/$model/infer

    # Both answer, and agree, before anything is timed.
    post "$r_url" "$tmp/$model/body.json" "" "$tmp/r.json"
    post "$n_url" "$tmp/$model/body.json" "" "$tmp/n.json"
    same_outputs "$tmp/r.json" "$tmp/n.json" || die "$model: rouse and Node+ORT disagree"
    post "$r_url" "$tmp/$model/body.bin" "$hlen" "$tmp/r.bin"
    post "$n_url" "$tmp/$model/body.bin" "$hlen" "$tmp/n.bin"

    # Engine runs for about 2 s (RUNS caps them), measured right before
    # each 1-connection run of rouse so that both see the same machine load.
    "$rouse" run "$dir/model.onnx" --input "$input" --repeat 3 >"$tmp/run" 2>&1 ||
        die "rouse run failed: $(cat "$tmp/run")"
    probe_ms=$(sed -n 's/^latency_ms .*median=\([0-9.]*\) .*/\1/p' "$tmp/run")
    model_runs=$(awk -v m="$probe_ms" -v cap="$runs" \
        'BEGIN { n = m > 0 ? int(2000 / m) : cap; if (n > cap) n = cap; if (n < 20) n = 20; print n }')

    for body in binary json; do
        if [ "$body" = binary ]; then b=$tmp/$model/body.bin h=$hlen; else b=$tmp/$model/body.json h=""; fi
        for c in 1 "$conns"; do
            set_rows=""
            r_rps=""
            if [ "$c" = 1 ]; then
                say "$model: engine in process ($model_runs runs)"
                "$rouse" run "$dir/model.onnx" --input "$input" --repeat "$model_runs" \
                    >"$tmp/run" 2>&1 || die "rouse run failed: $(cat "$tmp/run")"
                engine_ms=$(sed -n 's/^latency_ms .*median=\([0-9.]*\) .*/\1/p' "$tmp/run")
                [ -n "$engine_ms" ] || die "unexpected rouse run output: $(cat "$tmp/run")"
                engine_us=$(awk -v m="$engine_ms" 'BEGIN { printf "%d", m * 1000 + 0.5 }')
            fi
            for srv in rouse node; do
                if [ "$srv" = rouse ]; then url=$r_url name=rouse; else url=$n_url name="Node+ORT"; fi
                say "$model $body $name: $c connection(s), ${duration}s"
                load "$url" "$b" "$h" "$c" "$warmup" >/dev/null
                res=$(load "$url" "$b" "$h" "$c" "$duration")
                rps=$(field "$res" rps)
                p50=$(field "$res" p50_us)
                p99=$(field "$res" p99_us)
                if [ "$srv" = rouse ]; then
                    r_rps=$rps r_p50=$p50
                    vs=""
                else
                    vs=$(ratio "$r_rps" "$rps")
                fi
                set_rows="$set_rows
| $model | $body | $c | $name | $(printf '%.0f' "$rps") | $(fmt_us "$p50") | $(fmt_us "$p99") | $vs |"
            done
            rows="$rows$set_rows"
            if [ "$c" = 1 ]; then
                added="$added
- $model, $body: rouse p50 $r_p50 µs at 1 connection - engine median $engine_us µs ($model_runs runs) = **$((r_p50 - engine_us)) µs** added"
                [ "$model/$body" != mlp/binary ] || target_lat=$((r_p50 - engine_us))
            elif [ "$model" = mlp ]; then
                targets="$targets
- throughput on mlp ($body, $c connections) >= 2x Node+ORT: $(ratio "$r_rps" "$rps")x"
            fi
        done
    done
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
    node_pid=""
done

# The loop stall under load plus a deploy every second, on the first model.
for model in "$@"; do
    [ "$overhead_only" != 1 ] || break
    dir=$shared/models/$model
    [ -f "$dir/model.onnx" ] && [ -f "$dir/test_data_set_0/input_0.pb" ] || continue
    stall_model=$model
    mkdir -p "$tmp/$model"
    [ -f "$tmp/$model/body.bin" ] ||
        node "$root/bench/gateway_bodies.js" "$tmp/$model" "$dir/test_data_set_0/input_0.pb" ||
        die "cannot make bodies for $model"
    hlen=$(cat "$tmp/$model/body.bin.hlen")
    "$rouse" deploy "$model" "$dir/model.onnx" --max "$max" --queue-depth 1024 \
        --server "http://$rouse_addr" >"$tmp/deploy" 2>&1 || die "deploy failed: $(cat "$tmp/deploy")"
    r_url=http://$rouse_addr/v2/models/$model/infer
    load "$r_url" "$tmp/$model/body.bin" "$hlen" "$conns" "$warmup" >/dev/null
    say "$model binary rouse: $conns connections, ${duration}s, a deploy every second"
    (
        i=0
        while :; do
            i=$((i + 1))
            "$rouse" deploy "$model" "$dir/model.onnx" --max "$max" --queue-depth $((1024 + i % 2)) \
                --server "http://$rouse_addr" >/dev/null 2>&1 || echo "deploy $i failed" >&2
            sleep 1
        done
    ) &
    deployer=$!
    curl -s -X POST "http://$rouse_addr/v1/stats/reset" >/dev/null
    res=$(load "$r_url" "$tmp/$model/body.bin" "$hlen" "$conns" "$duration")
    kill "$deployer" 2>/dev/null || true
    wait "$deployer" 2>/dev/null || true
    stats=$(curl -s "http://$rouse_addr/v1/stats")
    stall_us=$(echo "$stats" | sed -n 's/.*"loop_stall_max_us":\([0-9]*\).*/\1/p')
    block_us=$(echo "$stats" | sed -n 's/.*"loop_block_max_us":\([0-9]*\).*/\1/p')
    stall_line="loop_stall_max_us: $stall_us, loop_block_max_us: $block_us ($model binary, $conns connections, ${duration} s, a deploy every second; $(printf '%.0f' "$(field "$res" rps)") req/s, p99 $(fmt_us "$(field "$res" p99_us)"))"
    break
done

# proc_ticks PID: the CPU ticks (user + system, all threads) of a process.
proc_ticks() { awk '{ sub(/^[^)]*\) /, ""); split($0, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }

# median V...: the middle value (the lower middle of an even count).
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# The observability overhead: all off against all on, interleaved rounds.
overhead_lines=""
for model in "$@"; do
    [ "$overhead" = 1 ] || break
    dir=$shared/models/$model
    [ -f "$dir/model.onnx" ] && [ -f "$dir/test_data_set_0/input_0.pb" ] || continue
    mkdir -p "$tmp/$model"
    [ -f "$tmp/$model/body.bin" ] ||
        node "$root/bench/gateway_bodies.js" "$tmp/$model" "$dir/test_data_set_0/input_0.pb" ||
        die "cannot make bodies for $model"
    hlen=$(cat "$tmp/$model/body.bin.hlen")
    node "$root/bench/otlp_sink.js" >"$tmp/otlp.out" &
    sink_pid=$!
    extra_pids="$extra_pids $sink_pid"
    sink_addr=$(wait_listening "$tmp/otlp.out" "$sink_pid") || die "the OTLP collector did not start"
    # shellcheck disable=SC2086
    "$rouse" serve --port 0 --data "$tmp/off" --log-level warn --metrics off --metering off ${OFF_FLAGS:-} \
        >"$tmp/off.out" 2>"$tmp/off.err" &
    off_pid=$!
    extra_pids="$extra_pids $off_pid"
    # shellcheck disable=SC2086
    "$rouse" serve --port 0 --data "$tmp/on" --log-level warn --access-log "$tmp/access.log" \
        --log-format json --otlp-endpoint "http://$sink_addr" \
        --trace-sample-ratio "$trace_ratio" ${ON_FLAGS:-} >"$tmp/on.out" 2>"$tmp/on.err" &
    on_pid=$!
    extra_pids="$extra_pids $on_pid"
    off_addr=$(wait_listening "$tmp/off.out" "$off_pid") ||
        die "serve (off) did not start: $(cat "$tmp/off.err")"
    on_addr=$(wait_listening "$tmp/on.out" "$on_pid") ||
        die "serve (on) did not start: $(cat "$tmp/on.err")"
    for a in "$off_addr" "$on_addr"; do
        "$rouse" deploy "$model" "$dir/model.onnx" --max "$max" --queue-depth 1024 \
            --server "http://$a" >"$tmp/deploy" 2>&1 || die "deploy failed: $(cat "$tmp/deploy")"
        post "http://$a/v2/models/$model/infer" "$tmp/$model/body.bin" "$hlen" "$tmp/o.bin"
    done
    load_oh_before=$(cut -d' ' -f1-3 /proc/loadavg)
    # The collector's CPU over the rounds only (not its start, a Node JIT
    # warm-up that would weigh on every call of a short run).
    sink_t0=$(proc_ticks "$sink_pid")
    calls0=$(curl -s "http://$on_addr/metrics" | awk '$1 ~ /^rouse_invocations_total/ { n += $2 } END { print n + 0 }')
    off_p50="" on_p50="" off_rps="" on_rps="" off_cpu="" on_cpu=""
    r=0
    while [ $r -lt "$rounds" ]; do
        r=$((r + 1))
        for cfg in off on; do
            if [ $cfg = off ]; then a=$off_addr; else a=$on_addr; fi
            u=http://$a/v2/models/$model/infer
            say "overhead round $r/$rounds, all $cfg: 1 and $conns connections, ${duration}s each"
            load "$u" "$tmp/$model/body.bin" "$hlen" 1 "$warmup" >/dev/null
            p=$(field "$(load "$u" "$tmp/$model/body.bin" "$hlen" 1 "$duration")" p50_us)
            load "$u" "$tmp/$model/body.bin" "$hlen" "$conns" "$warmup" >/dev/null
            if [ $cfg = off ]; then pid=$off_pid; else pid=$on_pid; fi
            c0=$(proc_ticks "$pid")
            res=$(load "$u" "$tmp/$model/body.bin" "$hlen" "$conns" "$duration")
            c1=$(proc_ticks "$pid")
            t=$(field "$res" rps)
            c=$(awk -v d=$((c1 - c0)) -v n="$(field "$res" requests)" -v hz="$(getconf CLK_TCK)" \
                'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
            if [ $cfg = off ]; then off_p50="$off_p50 $p" off_rps="$off_rps $t" off_cpu="$off_cpu $c"; else on_p50="$on_p50 $p" on_rps="$on_rps $t" on_cpu="$on_cpu $c"; fi
        done
    done
    # shellcheck disable=SC2086
    p_off=$(median $off_p50) p_on=$(median $on_p50) t_off=$(median $off_rps) t_on=$(median $on_rps)
    # shellcheck disable=SC2086
    c_off=$(median $off_cpu) c_on=$(median $on_cpu)
    sleep 1.5 # the last spans are sent within 1 s, the last lines within 200 ms
    # CPU time of the all-on serve's threads (ticks of /proc/PID/task/*/stat),
    # per request it served: what the access log and the exporter cost
    # besides the loop.
    calls=$(curl -s "http://$on_addr/metrics" | awk '$1 ~ /^rouse_invocations_total/ { n += $2 } END { print n + 0 }')
    tick_us=$(awk -v hz="$(getconf CLK_TCK)" 'BEGIN { print 1e6 / hz }')
    threads=$(for t in /proc/"$on_pid"/task/*; do
        awk -v tu="$tick_us" -v n="$calls" '{ sub(/^[^(]*\(/, ""); comm = $0; sub(/\).*/, "", comm);
            rest = $0; sub(/^[^)]*\) /, "", rest); split(rest, f, " ");
            printf "%s %.2f µs/request; ", comm, (f[12] + f[13]) * tu / (n > 0 ? n : 1) }' "$t/stat"
    done)
    # The collector's, which shares the cores: it works only for the all-on serve.
    sink_cpu=$(awk -v d=$(($(proc_ticks "$sink_pid") - sink_t0)) -v tu="$tick_us" -v n=$((calls - calls0)) \
        'BEGIN { printf "%.2f", d * tu / (n > 0 ? n : 1) }')
    spans=$(curl -s "http://$on_addr/metrics" | awk '$1 == "rouse_trace_spans_exported_total" { print $2 }')
    dropped=$(curl -s "http://$on_addr/metrics" | awk '$1 == "rouse_trace_spans_dropped_total" { print $2 }')
    overhead_lines="Observability overhead ($model binary; all off: --metrics off --metering off ${OFF_FLAGS:-}; all on: metering, metrics, JSON access log to a file, traces sampled at --trace-sample-ratio $trace_ratio and exported to a local OTLP collector ${ON_FLAGS:-}), medians of $rounds interleaved rounds of ${duration} s:

| | p50 at 1 connection | req/s at $conns connections | serve's CPU per request at $conns connections |
|---|---|---|---|
| all off | $p_off µs | $(printf '%.0f' "$t_off") | $c_off µs |
| all on | $p_on µs | $(printf '%.0f' "$t_on") | $c_on µs |
| difference | $((p_on - p_off)) µs | $(awk -v a="$t_on" -v b="$t_off" 'BEGIN { printf "%+.1f %%", (a - b) / b * 100 }') | $(awk -v a="$c_on" -v b="$c_off" 'BEGIN { printf "%+.1f µs", a - b }') |

per round, p50 off:$off_p50, on:$on_p50; req/s off:$off_rps, on:$on_rps; serve CPU µs per request off:$off_cpu, on:$on_cpu
CPU of the all-on serve's threads over its $calls calls: $threads
the OTLP collector (bench/otlp_sink.js), over the rounds: $sink_cpu µs/request
all on wrote $(wc -l <"$tmp/access.log") access log lines and exported $spans spans ($dropped dropped); load average (1, 5, 15 min) before: $load_oh_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
    break
done

if [ "$stall_only" = 1 ]; then
    [ -n "$stall_model" ] || [ -n "$overhead_lines" ] || die "no model found for the loop-stall run"
    [ -z "$stall_line" ] || echo "$stall_line"
    [ -z "$overhead_lines" ] || { [ -z "$stall_line" ] || echo; echo "$overhead_lines"; }
    exit 0
fi

ort_version=$(node -e 'process.stdout.write(require("onnxruntime-node/package.json").version)')
echo "rouse serve vs Node.js $(node --version) + onnxruntime-node $ort_version (1 intra-op thread), OIP v2 infer on loopback"
echo "wrk with $wrk_threads thread, keep-alive, ${duration} s per run after a ${warmup} s warm-up; rouse --max $max; $cores cores shared by the servers and wrk"
echo "load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | body | conns | server | req/s | p50 | p99 | rouse/Node req/s |"
echo "|---|---|---|---|---|---|---|---|$rows"
echo
echo "Added latency (rouse p50 at 1 connection minus the in-process engine median, rouse run --repeat):$added"
echo
echo "Targets:"
[ -z "$target_lat" ] || echo "- added latency on mlp (binary) <= 50 µs: $target_lat µs"
[ -z "$targets" ] || echo "${targets#?}"
[ -z "$stall_model" ] || { echo; echo "$stall_line"; }
[ -z "$overhead_lines" ] || { echo; echo "$overhead_lines"; }
[ -z "$notes" ] || printf '\nNotes:%s\n' "$notes"
