#!/bin/sh
# The compute floor of one inference: how long a model's convolutions and
# fully connected layers take at least on one core, against what the engine
# takes. The multiply-adds are counted from the shapes oneDNN reports for
# every convolution and inner product it runs (ONEDNN_VERBOSE=1, one
# inference of the compiled plan); the core's fp32 peak is measured by
# bench/fp32_peak.c (independent vector FMA chains). Floor = 2 x MACs /
# peak, for direct convolution; Winograd convolutions (oneDNN's wino
# kernels, named in the last column) do fewer multiplications than counted,
# so a run can beat this floor by up to 2.25x on their layers. A benchmark,
# not a test.
#
#   bench/compute_floor.sh [MODEL...]   default: squeezenet1_1 mobilenet_v2 resnet18
#
# Environment: ROUSE (default build/rouse), SHARED (default ../shared beside
# the source tree), CC (cc).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
cc=${CC:-cc}
[ $# -gt 0 ] || set -- squeezenet1_1 mobilenet_v2 resnet18

die() { echo "compute_floor: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if grep -q avx512f /proc/cpuinfo; then isa="-mavx512f"; else isa="-mavx2 -mfma"; fi
# shellcheck disable=SC2086
"$cc" -O2 $isa "$root/bench/fp32_peak.c" -o "$tmp/fp32_peak" || die "cannot build fp32_peak.c"
peak=$("$tmp/fp32_peak" | sed -n 's/^fp32_peak_gflops \([0-9.]*\) isa \([^ ]*\).*/\1 \2/p')
gflops=${peak% *}
echo "One core's fp32 FMA peak: $gflops GFLOP/s (${peak#* })."
echo
echo "| model | GMAC | floor at peak (direct) | rouse warm run, 1 thread | run / floor | Winograd layers |"
echo "|---|---|---|---|---|---|"
for model in "$@"; do
    dir=$shared/models/$model
    [ -f "$dir/model.onnx" ] || die "no model at $dir/model.onnx"
    "$rouse" compile "$dir/model.onnx" -o "$tmp/m.plan" >/dev/null
    ONEDNN_VERBOSE=1 "$rouse" run "$tmp/m.plan" --threads 1 >"$tmp/verbose" 2>&1
    # Fields: ...,exec,cpu,KIND,IMPL,...,PROBLEM,TIME. One inference: the
    # exec lines of the first run only (rouse run runs once here).
    macs=$(awk -F, '
        function num(d, key,   s) {
            if (!match(d, key "[0-9]+")) return 1
            s = substr(d, RSTART + length(key), RLENGTH - length(key))
            return s + 0
        }
        $2 == "exec" && ($4 == "convolution" || $4 == "inner_product") {
            d = $(NF - 1)
            if ($4 == "convolution") {
                g = match(d, /^g[0-9]+/) ? substr(d, 2, RLENGTH - 1) + 0 : 1
                t += num(d, "mb") * num(d, "oc") * num(d, "oh") * num(d, "ow") * (num(d, "ic") / g) * num(d, "kh") * num(d, "kw")
            } else {
                t += num(d, "mb") * num(d, "oc") * num(d, "ic") * num(d, "ih") * num(d, "iw")
            }
        }
        END { printf "%.0f", t }' "$tmp/verbose")
    wino=$(awk -F, '$2 == "exec" && $4 == "convolution" && $5 ~ /wino/ { n++ } END { print n + 0 }' "$tmp/verbose")
    warm=$("$rouse" run "$tmp/m.plan" --threads 1 --repeat 30 | sed -n 's/^latency_ms .*median=\([0-9.]*\).*/\1/p')
    awk -v m="$model" -v macs="$macs" -v g="$gflops" -v w="$warm" -v wino="$wino" 'BEGIN {
        floor = 2 * macs / (g * 1e9) * 1e3
        printf "| %s | %.3f | %.2f ms | %.2f ms | %.2f | %d |\n", m, macs / 1e9, floor, w, w / floor, wino
    }'
done
