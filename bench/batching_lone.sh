#!/bin/sh
# What dynamic batching costs a lone request, counted in instructions rather
# than timed (a count does not move with a shared machine's load): serve
# and every process it starts run under callgrind; for each mode (off,
# fixed, auto) one function of MODEL takes WARMUP requests from one client,
# then the counters are zeroed, N more requests are sent one at a time and
# the counters dumped. Prints per request serve's instructions and, in the
# instance that answered them, those of its request loop (instance_serve,
# with its polling for the next request and the decoding and encoding) and
# of the engine run (rouse_session_run). serve's count includes the work of
# its timers over the run's wall time, a few per cent from run to run
# (each mode's function is deleted before the next is deployed: the timers
# walk every function each tick). A lone request on an idle function
# goes as the plain message, so with batching on both should be what they
# are with it off. A benchmark, not a test.
#
#   bench/batching_lone.sh
#
# Environment: ROUSE (build/rouse), SHARED (../shared), MODEL (mlp), N (300),
# WARMUP (200), MODES ("off fixed auto").
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
model=${MODEL:-mlp}
n=${N:-300}
warmup=${WARMUP:-200}
modes=${MODES:-off fixed auto}

die() { echo "batching_lone: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
[ -d "$shared/models/$model" ] || die "no model $model in $shared/models"
command -v valgrind >/dev/null 2>&1 || die "valgrind is not installed"
command -v curl >/dev/null 2>&1 || die "curl is not installed"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed"

tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$tmp/cg.%p" \
    "$rouse" serve --port 0 --data "$tmp/data" --log-level warn >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
i=0
until grep -q '^listening on ' "$tmp/serve.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -le 600 ] && kill -0 $pid 2>/dev/null || die "serve did not start: $(tail -5 "$tmp/serve.err")"
    sleep 0.2
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/serve.out")
export ROUSE_SERVER=http://127.0.0.1:$port
digest=$(curl -sf --data-binary @"$shared/models/$model/model.onnx" "$ROUSE_SERVER/v1/blobs" |
    sed -n 's/.*"digest":"\([^"]*\)".*/\1/p')
[ -n "$digest" ] || die "upload of $model failed"
# Input names in graph order, from the model (rouse inspect --json).
"$rouse" inspect "$shared/models/$model/model.onnx" --json >"$tmp/inspect.json" ||
    die "cannot inspect $model"
flags=$(python3 - "$tmp/inspect.json" "$shared/models/$model/test_data_set_0" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(" ".join("--input %s=%s/input_%d.pb" % (t["name"], sys.argv[2], i)
               for i, t in enumerate(r["inputs"])))
PY
)

# serve and its descendants: the zygote, templates, instances.
tree() {
    echo "$1"
    for c in $(ps -o pid= --ppid "$1"); do tree "$c"; done
}
# The Ir of dump file $1: the program's total, or inclusive of function $2.
ir() {
    if [ $# -eq 1 ]; then
        callgrind_annotate "$1" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p'
    else
        callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
            sed -n "s/^ *\([0-9,]*\) .*:$2 \[.*/\1/p" | head -1
    fi | tr -d ,
}

rows=$tmp/rows
: >"$rows"
for mode in $modes; do
    case "$mode" in
        off) b="" ;;
        fixed) b=',"batching":{"mode":"fixed","max_batch":8,"max_delay_us":2000}' ;;
        auto) b=',"batching":{"mode":"auto","max_batch":8,"max_delay_us":2000,"slo_ms":5}' ;;
        *) die "unknown mode $mode" ;;
    esac
    curl -sf -X PUT -d "{\"model\":\"$digest\",\"scaling\":{\"max\":1}$b}" \
        "$ROUSE_SERVER/v1/functions/lone-$mode" >/dev/null || die "deploy lone-$mode failed"
    # shellcheck disable=SC2086
    "$rouse" bench "lone-$mode" -c 1 -n "$warmup" -q $flags || die "warm-up of lone-$mode failed"
    sleep 2 # a spare that the template is preparing settles
    pids=$(tree "$pid")
    for p in $pids; do callgrind_control -z "$p" >/dev/null 2>&1 || true; done
    # shellcheck disable=SC2086
    "$rouse" bench "lone-$mode" -c 1 -n "$n" -q $flags || die "lone-$mode failed"
    for p in $pids; do callgrind_control -d "$p" >/dev/null 2>&1 || true; done
    sleep 1
    serve_ir=0 loop=0 run=0
    for p in $pids; do
        f=$(ls -t "$tmp/cg.$p".* 2>/dev/null | head -1)
        [ -n "$f" ] || continue
        if [ "$p" = "$pid" ]; then
            serve_ir=$(ir "$f")
            continue
        fi
        l=$(ir "$f" instance_serve)
        h=$(ir "$f" rouse_session_run)
        # The instance that answered: the one whose request loop ran most.
        if [ "${l:-0}" -gt "$loop" ]; then loop=$l run=${h:-0}; fi
    done
    echo "$mode $serve_ir $loop $run" >>"$rows"
    for p in $pids; do rm -f "$tmp/cg.$p".*; done
    # Gone before the next mode: serve's timers walk every function each
    # tick, and the next mode's count would carry this one's too.
    curl -sf -X DELETE "$ROUSE_SERVER/v1/functions/lone-$mode" >/dev/null ||
        die "delete lone-$mode failed"
    sleep 1
done

echo "Instructions per lone request ($model, one client, $n requests after $warmup, callgrind):"
echo
echo "| batching | serve | instance request loop | of it the engine run |"
echo "|---|---:|---:|---:|"
while read -r mode s l h; do
    echo "| $mode | $((s / n)) | $((l / n)) | $((h / n)) |"
done <"$rows"
