#!/bin/sh
# Precision benchmark in CPU time, for a machine busy with other work: the
# CPU seconds one inference costs rouse at fp32, bf16 and int8 and ONNX
# Runtime on the float model and on the QDQ file rouse's int8 compile wrote.
# Wall-clock medians (bench/precision.sh) count the time a loaded machine
# gives to other processes; CPU time does not (what remains is the cache
# those processes evict, which every contender suffers alike). Per model and
# contender: the user + system CPU of a process timing N warm runs, minus
# that of the same process timing 1, over N - 1 (/usr/bin/time, so N is
# chosen per model to make each measurement seconds long); the median of
# ROUNDS such pairs, interleaved. 1 thread. A benchmark, not a test.
#
#   bench/precision_cpu.sh [MODEL...]   default: mobilenet_v2 squeezenet1_1 resnet18 bert_tiny
#
# Environment: ROUSE (default build/rouse), SHARED (default ../shared beside
# the source tree), ROUNDS (3), SECONDS_PER (2: the CPU seconds each
# measurement aims at), PRECISIONS ("fp32 bf16 int8"), ORT (1; 0 skips ONNX
# Runtime), PEER_DIR (as bench/precision.sh).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
rounds=${ROUNDS:-3}
per=${SECONDS_PER:-2}
precs=${PRECISIONS:-fp32 bf16 int8}
use_ort=${ORT:-1}
peer=${PEER_DIR:-$root/build/peer-ort}
[ $# -gt 0 ] || set -- mobilenet_v2 squeezenet1_1 resnet18 bert_tiny

die() { echo "precision_cpu: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
[ -x /usr/bin/time ] || die "needs /usr/bin/time (Debian package time)"
if [ "$use_ort" = 1 ]; then
    # shellcheck source=bench/ort_peer.sh
    . "$root/bench/ort_peer.sh"
    ort_peer_install "$shared" "$peer"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# cpu CMD...: the user + system CPU seconds of CMD and the children it waited for
cpu() {
    /usr/bin/time -f 'cpu %U %S' -o "$tmp/time" "$@" >"$tmp/out" 2>&1 ||
        [ "$1" = node ] || die "$*: $(tail -n 1 "$tmp/out")"
    awk '/^cpu / { print $2 + $3 }' "$tmp/time"
}
# run_cpu N CONTENDER: CPU seconds of one process timing N warm runs
run_cpu() {
    case $2 in
    ort_fp32) cpu node "$peer/ort_bench.js" "$dir" --threads 1 --warm "$1" --json ;;
    ort_qdq) cpu node "$peer/ort_bench.js" "$tmp/$model.qdq.onnx" "$dir/test_data_set_0" \
        --threads 1 --warm "$1" --atol 1e9 --json ;;
    *) # shellcheck disable=SC2086
        cpu "$rouse" run "$tmp/$model.$2.plan" --repeat "$1" --warmup 0 --threads 1 $inputs ;;
    esac
}

echo "rouse precision benchmark in CPU time: $(uname -m), $(nproc) CPUs, 1 thread"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | contender | CPU ms per run | vs rouse fp32 | vs ORT on the same file |"
echo "|---|---|---|---|---|"
for model in "$@"; do
    dir=$shared/models/$model
    [ -f "$dir/model.onnx" ] || die "no model at $dir/model.onnx"
    inputs=""
    for f in "$dir"/test_data_set_0/input_*.pb; do inputs="$inputs --input $f"; done
    who=""
    for p in $precs; do
        emit=""
        [ "$p" = int8 ] && emit="--emit-qdq $tmp/$model.qdq.onnx"
        # shellcheck disable=SC2086
        "$rouse" compile "$dir/model.onnx" --precision "$p" --calibrate "$dir" \
            -o "$tmp/$model.$p.plan" $emit >"$tmp/compile" 2>&1 ||
            die "$model $p: $(tail -n 1 "$tmp/compile")"
        grep -q "^precision: $p\$" "$tmp/compile" || die "$model $p: $(grep '^precision' "$tmp/compile")"
        who="$who $p"
    done
    if [ "$use_ort" = 1 ]; then
        who="$who ort_fp32"
        [ -f "$tmp/$model.qdq.onnx" ] && who="$who ort_qdq"
    fi
    # N per contender: from a first estimate, enough runs for $per CPU seconds
    for c in $who; do
        a=$(run_cpu 1 "$c")
        b=$(run_cpu 21 "$c")
        n=$(awk -v a="$a" -v b="$b" -v s="$per" 'BEGIN { d = (b - a) / 20; if (d <= 0) d = 0.0005;
                n = int(s / d); print n < 21 ? 21 : (n > 20000 ? 20000 : n) }')
        eval "n_$c=$n"
        : >"$tmp/$c.cpu"
    done
    r=0
    while [ "$r" -lt "$rounds" ]; do
        for c in $who; do
            eval "n=\$n_$c"
            a=$(run_cpu 1 "$c")
            b=$(run_cpu "$n" "$c")
            awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN { printf "%.4f\n", (b - a) * 1000 / (n - 1) }' \
                >>"$tmp/$c.cpu"
        done
        r=$((r + 1))
    done
    for c in $who; do
        eval "ms_$c=\$(median <\"\$tmp/\$c.cpu\")"
    done
    ms="" n=""
    for c in $who; do
        eval "ms=\$ms_$c"
        peer_ratio=""
        case $c in
        fp32) peer_ratio=$(ratio "$ms" "${ms_ort_fp32:-}") ;;
        int8) peer_ratio=$(ratio "$ms" "${ms_ort_qdq:-}") ;;
        esac
        label=$c
        case $c in ort_fp32) label="ORT fp32" ;; ort_qdq) label="ORT on rouse's QDQ file" ;; esac
        eval "n=\$n_$c"
        echo "| $model | $label | $(printf '%.3f' "$ms") (N=$n) | $(ratio "$ms" "${ms_fp32:-}") | $peer_ratio |"
    done
    unset ms_fp32 ms_bf16 ms_int8 ms_ort_fp32 ms_ort_qdq
    rm -f "$tmp/$model".*
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
