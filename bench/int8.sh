#!/bin/sh
# int8 against float, rouse against ONNX Runtime (onnxruntime-node, CPU EP),
# 1 thread, in one run. Per model:
#   - quantizes it (engine_int8_models: calibrated on its test_data_set_*
#     inputs, min/max) into a compiled int8 plan and a QDQ ONNX file, and
#     compiles the float plan;
#   - rouse fp32 and rouse int8: warm median of RUNS runs of the plans
#     (rouse run --repeat), fed test_data_set_0;
#   - ORT fp32 on model.onnx and ORT on the QDQ file rouse wrote: warm median
#     of RUNS runs (ort_bench.js --warm);
#   - plan file sizes, and rouse's start from zero per precision: load_ms +
#     prepare_ms + first_run_ms of `rouse run PLAN` in a fresh process.
# Prints a Markdown table. A benchmark, not a test: run it on a quiet machine.
#
#   bench/int8.sh [MODEL...]     default: resnet18 mobilenet_v2 squeezenet1_1 bert_tiny
#
# Environment: ROUSE (default build/rouse), QUANT (default
# build/tests/engine/engine_int8_models), SHARED (default ../shared), RUNS (50),
# PEER_DIR (writable copy of the ORT peer, default build/peer-ort).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
quant=${QUANT:-$root/build/tests/engine/engine_int8_models}
shared=${SHARED:-$root/../shared}
runs=${RUNS:-50}
peer=${PEER_DIR:-$root/build/peer-ort}
models_dir=$shared/models
[ $# -gt 0 ] || set -- resnet18 mobilenet_v2 squeezenet1_1 bert_tiny

die() { echo "int8: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
[ -x "$quant" ] || die "no $quant (run make first)"
command -v node >/dev/null 2>&1 || die "node is not installed"
. "$root/bench/ort_peer.sh"
ort_peer_install "$shared" "$peer"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
json_field() {
    node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
             process.stdout.write(String(eval(process.argv[2])));' "$1" "$2"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", b / 1048576 }'; }
rouse_median() { # PLAN INPUTS...: "median min"
    _p=$1
    shift
    "$rouse" run "$_p" "$@" --repeat "$runs" --threads 1 |
        sed -n 's/^latency_ms min=\([0-9.]*\) median=\([0-9.]*\) .*/\2 \1/p'
}
rouse_start() { # PLAN INPUTS...: load + prepare + first run, fresh process
    "$rouse" run "$@" --threads 1 |
        awk '/^load_ms / { l = $2 } /^prepare_ms / { p = $2 } /^first_run_ms / { f = $2 } END { printf "%.1f", l + p + f }'
}
ort_median() { # MODEL [SET_DIR] [extra args]
    _rc=0
    node "$peer/ort_bench.js" "$@" --threads 1 --warm "$runs" --json >"$tmp/ort" 2>"$tmp/ort.err" || _rc=$?
    [ "$_rc" -le 1 ] || die "ort_bench.js failed: $(cat "$tmp/ort.err")"
    json_field "$tmp/ort" 'j.results[0].warm_median_ms.toFixed(3) + " " + j.results[0].warm_min_ms.toFixed(3)'
}
first() { if [ -n "$1" ]; then echo "${1%% *}"; else echo n/a; fi; }
second() { if [ -n "$1" ]; then echo "${1##* }"; else echo n/a; fi; }

rows=""
mins=""
notes=""
for model in "$@"; do
    dir=$models_dir/$model
    [ -f "$dir/model.onnx" ] || die "no model at $dir/model.onnx"
    inputs=""
    for f in "$dir"/test_data_set_0/input_*.pb; do inputs="$inputs --input $f"; done
    echo "int8: $model" >&2
    i8="" qdq=""
    if "$quant" "$models_dir" --keep "$tmp" "$model" >"$tmp/q" 2>&1; then
        i8=$tmp/$model.int8.plan
        qdq=$tmp/$model.qdq.onnx
        notes="$notes
- $model: $(head -1 "$tmp/q")"
    else
        "$rouse" compile "$dir/model.onnx" -o "$tmp/$model.fp32.plan" >/dev/null
        notes="$notes
- $model: no int8 plan: $(grep -v '^ ' "$tmp/q" | tail -1)"
    fi
    fp=$tmp/$model.fp32.plan
    # shellcheck disable=SC2086
    r32=$(rouse_median "$fp" $inputs)
    # shellcheck disable=SC2086
    s32=$(rouse_start "$fp" $inputs)
    r8="" s8="" oq=""
    if [ -n "$i8" ]; then
        # shellcheck disable=SC2086
        r8=$(rouse_median "$i8" $inputs)
        # shellcheck disable=SC2086
        s8=$(rouse_start "$i8" $inputs)
        oq=$(ort_median "$qdq" "$dir/test_data_set_0" --atol 1e9)
    fi
    o32=$(ort_median "$dir")
    rows="$rows
| $model | $(first "$r32") | $(first "$r8") | $(ratio "$(first "$r8")" "$(first "$r32")") | $(first "$o32") | $(first "$oq") | $(ratio "$(first "$r8")" "$(first "$oq")") | $(mib "$fp") | $([ -n "$i8" ] && mib "$i8" || echo n/a) | $s32 | ${s8:-n/a} |"
    mins="$mins
| $model | $(second "$r32") | $(second "$r8") | $(ratio "$(second "$r8")" "$(second "$r32")") | $(second "$o32") | $(second "$oq") | $(ratio "$(second "$r8")" "$(second "$oq")") |"
done

echo "1 thread; warm median of $runs runs (ms); plan sizes in MiB; start = load + prepare + first run (ms), fresh process"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | rouse fp32 | rouse int8 | int8/fp32 | ORT fp32 | ORT QDQ | rouse int8/ORT QDQ | fp32 plan | int8 plan | start fp32 | start int8 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|$rows"
echo
echo "fastest run (ms), the same runs:"
echo
echo "| model | rouse fp32 | rouse int8 | int8/fp32 | ORT fp32 | ORT QDQ | rouse int8/ORT QDQ |"
echo "|---|---|---|---|---|---|---|$mins"
printf '\nNotes:%s\n' "$notes"
