#!/bin/sh
# Precision benchmark: rouse at fp32, bf16 and int8 on the same model, next
# to ONNX Runtime (onnxruntime-node, CPU EP) on the float model and on the
# QDQ file rouse's int8 compile wrote, in one run. For each model and
# precision, `rouse compile --precision P --calibrate MODEL_DIR` (the model's
# test_data_set_* folders as calibration samples; int8 also --emit-qdq),
# then, interleaved round by round so that a busy machine hurts every
# contender alike, `rouse run PLAN --repeat N` at THREADS threads fed
# test_data_set_0 (warm median latency) and `ort_bench.js --warm N` on the
# same set. Per precision also the plan's size, its start from zero (a fresh
# `rouse run PLAN` process: open + prepare + first run, median of TRIES)
# and the memory such a process holds (its peak RSS, /usr/bin/time: the
# mapped plan, the prepared kernels and the activations, as a template
# holds them; the libraries add the same to every precision). A precision
# the build cannot compile (bf16 without AVX-512 BF16, which compiles fp32
# and says so) is reported as such. Ratios are against rouse fp32, and
# rouse int8 against ORT on the same QDQ file in the last table; the fastest
# run (the least over all rounds) is shown too, the figure a machine busy
# with other work disturbs least. A benchmark, not a test.
#
#   bench/precision.sh [MODEL...]   default: mobilenet_v2 squeezenet1_1 resnet18 bert_tiny
#
# Environment: ROUSE (default build/rouse), SHARED (default ../shared beside
# the source tree), REPEAT (50 runs per round), ROUNDS (3; the median of the
# round medians is reported), TRIES (10 cold starts), THREADS (1),
# PRECISIONS ("fp32 bf16 int8"), ORT (1; 0 skips ONNX Runtime), PEER_DIR
# (writable copy of the ORT peer, default build/peer-ort; needs node and
# npm, `npm install` runs there once).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
repeat=${REPEAT:-50}
rounds=${ROUNDS:-3}
tries=${TRIES:-10}
threads=${THREADS:-1}
precs=${PRECISIONS:-fp32 bf16 int8}
use_ort=${ORT:-1}
peer=${PEER_DIR:-$root/build/peer-ort}
[ $# -gt 0 ] || set -- mobilenet_v2 squeezenet1_1 resnet18 bert_tiny

die() { echo "precision: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
[ -x /usr/bin/time ] || die "needs /usr/bin/time (Debian package time) for the memory column"
if [ "$use_ort" = 1 ]; then
    . "$root/bench/ort_peer.sh"
    ort_peer_install "$shared" "$peer"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { sed -n "s/^$1 \([0-9.]*\)\$/\1/p" "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
fmt() { [ -n "$1" ] && printf '%.2f' "$1" || printf 'n/a'; }
mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# ort MODEL SET_DIR [args]: appends "median min" (ms) of one ort_bench.js run
# to $tmp/ort.lat and $tmp/ort.min of the caller's choosing (ORT_OUT prefix).
ort_round() {
    _rc=0
    node "$peer/ort_bench.js" "$@" --threads "$threads" --warm "$repeat" --json >"$tmp/ort" \
        2>"$tmp/ort.err" || _rc=$?
    # 1: its outputs differ from the reference (the QDQ file's do, by design)
    [ "$_rc" -le 1 ] || die "ort_bench.js $1: $(tail -n 1 "$tmp/ort.err")"
    node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
             const r = j.results[0];
             console.log(r.warm_median_ms.toFixed(3) + " " + r.warm_min_ms.toFixed(3));' "$tmp/ort"
}

echo "rouse precision benchmark: $(uname -m), $(nproc) CPUs, $threads thread(s)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
summary=""
echo "| model | precision | warm median ms | vs fp32 | fastest run ms | vs fp32 | plan MiB | start from zero ms | peak RSS MiB | top-1 vs fp32 | max rel error |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for model in "$@"; do
    dir=$shared/models/$model
    [ -f "$dir/model.onnx" ] || die "no model at $dir/model.onnx"
    inputs=""
    for f in "$dir"/test_data_set_0/input_*.pb; do inputs="$inputs --input $f"; done
    ok=""
    qdq=""
    for p in $precs; do
        plan=$tmp/$model.$p.plan
        emit=""
        [ "$p" = int8 ] && emit="--emit-qdq $tmp/$model.qdq.onnx"
        # shellcheck disable=SC2086
        if "$rouse" compile "$dir/model.onnx" --precision "$p" --calibrate "$dir" -o "$plan" \
            $emit >"$tmp/$model.$p.compile" 2>&1; then
            ok="$ok $p"
            [ -z "$emit" ] || qdq=$tmp/$model.qdq.onnx
        else
            echo "| $model | $p | $(tail -n 1 "$tmp/$model.$p.compile") | | | | | | | | |"
        fi
        : >"$tmp/$model.$p.lat"
        : >"$tmp/$model.$p.min"
    done
    peers=""
    if [ "$use_ort" = 1 ]; then
        peers="ort_fp32"
        [ -z "$qdq" ] || peers="$peers ort_qdq"
    fi
    for q in $peers; do : >"$tmp/$model.$q.lat"; : >"$tmp/$model.$q.min"; done
    # Interleaved rounds: every precision and every peer runs once per round.
    r=0
    while [ $r -lt "$rounds" ]; do
        for p in $ok; do
            # shellcheck disable=SC2086
            "$rouse" run "$tmp/$model.$p.plan" --repeat "$repeat" --threads "$threads" $inputs \
                >"$tmp/out" 2>&1 || die "$model $p: $(tail -n 1 "$tmp/out")"
            sed -n 's/^latency_ms .* median=\([0-9.]*\) .*/\1/p' "$tmp/out" >>"$tmp/$model.$p.lat"
            sed -n 's/^latency_ms min=\([0-9.]*\) .*/\1/p' "$tmp/out" >>"$tmp/$model.$p.min"
        done
        for q in $peers; do
            if [ "$q" = ort_fp32 ]; then
                o=$(ort_round "$dir")
            else
                o=$(ort_round "$qdq" "$dir/test_data_set_0" --atol 1e9)
            fi
            echo "${o% *}" >>"$tmp/$model.$q.lat"
            echo "${o#* }" >>"$tmp/$model.$q.min"
        done
        r=$((r + 1))
    done
    for p in $ok; do
        : >"$tmp/cold"
        : >"$tmp/rss"
        t=0
        while [ $t -lt "$tries" ]; do
            # shellcheck disable=SC2086
            /usr/bin/time -f 'peak_rss_kb %M' -o "$tmp/time" "$rouse" run "$tmp/$model.$p.plan" \
                --threads "$threads" $inputs >"$tmp/out" 2>&1 || die "$model $p: $(tail -n 1 "$tmp/out")"
            awk '/^(load_ms|prepare_ms|first_run_ms) / { s += $2 } END { print s }' "$tmp/out" \
                >>"$tmp/cold"
            sed -n 's/^peak_rss_kb //p' "$tmp/time" >>"$tmp/rss"
            t=$((t + 1))
        done
        rss=$(median <"$tmp/rss" | awk '{ printf "%.1f", $1 / 1024 }')
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
        echo "| $model | $label | $(fmt "$lat") | $(ratio "$lat" "${lat_fp32:-}") | $(fmt "$mn") | $(ratio "$mn" "${min_fp32:-}") | $size | $(fmt "$cold") | $rss | $top1 | $rel |"
    done
    for q in $peers; do
        eval "lat_$q=\$(median <\"\$tmp/\$model.\$q.lat\")"
        eval "lat=\$lat_$q"
        eval "min_$q=\$(sort -n \"\$tmp/\$model.\$q.min\" | head -n 1)"
        eval "mn=\$min_$q"
        if [ "$q" = ort_fp32 ]; then
            label="ORT fp32" file=$dir/model.onnx
        else
            label="ORT on rouse's QDQ file" file=$qdq
        fi
        echo "| $model | $label | $(fmt "$lat") | $(ratio "$lat" "${lat_fp32:-}") | $(fmt "$mn") | $(ratio "$mn" "${min_fp32:-}") | $(mib "$file") (.onnx) | | | | |"
    done
    if [ -n "$peers" ]; then
        summary="$summary
| $model | $(ratio "${lat_fp32:-}" "${lat_ort_fp32:-}") | $(ratio "${lat_int8:-}" "${lat_ort_qdq:-}") | $(ratio "${min_int8:-}" "${min_ort_qdq:-}") |"
    fi
    unset lat_fp32 lat_bf16 lat_int8 min_fp32 min_bf16 min_int8 lat_ort_fp32 lat_ort_qdq \
        min_ort_fp32 min_ort_qdq
done
if [ -n "$summary" ]; then
    echo
    echo "rouse against ONNX Runtime on the same file (warm medians; fastest runs):"
    echo
    echo "| model | rouse fp32 / ORT fp32 | rouse int8 / ORT QDQ | rouse int8 / ORT QDQ, fastest |"
    echo "|---|---|---|---|$summary"
fi
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
