#!/bin/sh
# Precision benchmark: rouse at fp32, bf16 and int8 on the same model, in one
# run. For each model and precision, `rouse compile --precision P --calibrate
# MODEL_DIR` (the model's test_data_set_* folders as calibration samples),
# then, interleaved round by round so that a busy machine hurts every
# precision alike, `rouse run PLAN --repeat N` at THREADS threads (warm median
# latency), the plan's size, and its start from zero: a fresh `rouse run PLAN`
# process (open + prepare + first run, median of TRIES). A precision the
# build cannot compile (int8 before its quantizer, bf16 without AVX-512 BF16,
# which compiles fp32 and says so) is reported as such. Ratios are against
# rouse fp32; the fastest run (the least over all rounds) is shown too, the
# figure a machine busy with other work disturbs least. A benchmark, not a
# test.
#
#   bench/precision.sh [MODEL...]   default: mobilenet_v2 squeezenet1_1 resnet18 bert_tiny
#
# Environment: ROUSE (default build/rouse), SHARED (default ../shared beside
# the source tree), REPEAT (50 runs per round), ROUNDS (3; the median of the
# round medians is reported), TRIES (10 cold starts), THREADS (1),
# PRECISIONS ("fp32 bf16 int8").
#
# The int8 rows and the ONNX Runtime QDQ comparison belong to the int8
# quantizer's benchmark: add them here (one script for every precision).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
repeat=${REPEAT:-50}
rounds=${ROUNDS:-3}
tries=${TRIES:-10}
threads=${THREADS:-1}
precs=${PRECISIONS:-fp32 bf16 int8}
[ $# -gt 0 ] || set -- mobilenet_v2 squeezenet1_1 resnet18 bert_tiny

die() { echo "precision: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { sed -n "s/^$1 \([0-9.]*\)\$/\1/p" "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
fmt() { [ -n "$1" ] && printf '%.2f' "$1" || printf 'n/a'; }

echo "rouse precision benchmark: $(uname -m), $(nproc) CPUs, $threads thread(s)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | precision | warm median ms | vs fp32 | fastest run ms | vs fp32 | plan MiB | start from zero ms | top-1 vs fp32 | max rel error |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for model in "$@"; do
    dir=$shared/models/$model
    [ -f "$dir/model.onnx" ] || die "no model at $dir/model.onnx"
    ok=""
    for p in $precs; do
        plan=$tmp/$model.$p.plan
        if "$rouse" compile "$dir/model.onnx" --precision "$p" --calibrate "$dir" -o "$plan" \
            >"$tmp/$model.$p.compile" 2>&1; then
            ok="$ok $p"
        else
            echo "| $model | $p | $(tail -n 1 "$tmp/$model.$p.compile") | | | | | | | |"
        fi
        : >"$tmp/$model.$p.lat"
        : >"$tmp/$model.$p.min"
    done
    # Interleaved rounds: every precision runs once per round.
    r=0
    while [ $r -lt "$rounds" ]; do
        for p in $ok; do
            "$rouse" run "$tmp/$model.$p.plan" --repeat "$repeat" --threads "$threads" \
                >"$tmp/out" 2>&1 || die "$model $p: $(tail -n 1 "$tmp/out")"
            sed -n 's/^latency_ms .* median=\([0-9.]*\) .*/\1/p' "$tmp/out" >>"$tmp/$model.$p.lat"
            sed -n 's/^latency_ms min=\([0-9.]*\) .*/\1/p' "$tmp/out" >>"$tmp/$model.$p.min"
        done
        r=$((r + 1))
    done
    for p in $ok; do
        : >"$tmp/cold"
        t=0
        while [ $t -lt "$tries" ]; do
            "$rouse" run "$tmp/$model.$p.plan" --threads "$threads" >"$tmp/out" 2>&1 ||
                die "$model $p: $(tail -n 1 "$tmp/out")"
            awk '/^(load_ms|prepare_ms|first_run_ms) / { s += $2 } END { print s }' "$tmp/out" \
                >>"$tmp/cold"
            t=$((t + 1))
        done
        eval "lat_$p=\$(median <\"\$tmp/\$model.\$p.lat\")"
        eval "lat=\$lat_$p"
        eval "min_$p=\$(sort -n \"\$tmp/\$model.\$p.min\" | head -n 1)"
        eval "mn=\$min_$p"
        cold=$(median <"$tmp/cold")
        size=$(stat -c %s "$tmp/$model.$p.plan" | awk '{ printf "%.1f", $1 / 1048576 }')
        acc=$tmp/$model.$p.compile
        prec=$(sed -n 's/^precision: //p' "$acc")
        # the lowest top-1 agreement over the classifier outputs (n/a: none)
        top1=$(awk '/top-1 agreement/ { s = $0; sub(/.*agreement */, "", s); split(s, w, " ");
                   if (w[1] != "n/a") { v = w[1] + 0; if (!n || v < m) m = v; n++ } }
                   END { if (n) printf "%.2f%%", m; else print "n/a" }' "$acc")
        rel=$(awk '/max rel error/ { v = $NF; if (v > m) m = v } END { print m + 0 }' "$acc")
        label=$p
        [ "$prec" = "$p" ] || label="$p (ran $prec)"
        echo "| $model | $label | $(fmt "$lat") | $(ratio "$lat" "${lat_fp32:-}") | $(fmt "$mn") | $(ratio "$mn" "${min_fp32:-}") | $size | $(fmt "$cold") | $top1 | $rel |"
    done
    unset lat_fp32 lat_bf16 lat_int8 min_fp32 min_bf16 min_int8
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
