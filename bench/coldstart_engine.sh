#!/bin/sh
# Cold start of the engine alone: from nothing to the first output, for
#   (a) the .onnx:  rouse_model_load + prepare (kernels) + first run,
#   (b) a compiled .plan: open + prepare + first run (the split is printed),
#   (c) ONNX Runtime: InferenceSession.create + first run (onnxruntime-node,
#       the least a container-based platform pays per cold start),
# each in a fresh process, TRIES times, medians reported; plus the wall time
# of the whole `rouse run` process (exec, dynamic linking, printing) for (a)
# and (b). The plan file is in the page cache (it was just written), as it is
# on a warm serving machine. A benchmark, not a test.
#
#   bench/coldstart_engine.sh [MODEL...]   default: mlp squeezenet1_1 mobilenet_v2 resnet18 bert_tiny
#
# Environment: ROUSE (default build/rouse), SHARED (default ../shared beside
# the source tree), TRIES (10), THREADS (1: kernel threads of rouse and
# intra-op threads of ONNX Runtime, the same on both sides), PEER_DIR (writable copy of the ORT peer,
# default build/peer-ort; `npm install` runs there once).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
tries=${TRIES:-10}
threads=${THREADS:-1}
peer=${PEER_DIR:-$root/build/peer-ort}
[ $# -gt 0 ] || set -- mlp squeezenet1_1 mobilenet_v2 resnet18 bert_tiny

die() { echo "coldstart_engine: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
command -v node >/dev/null 2>&1 || die "node is not installed"

. "$root/bench/ort_peer.sh"
ort_peer_install "$shared" "$peer"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { sed -n "s/^$1 \([0-9.]*\)\$/\1/p" "$2"; }
now_ns() { date +%s%N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.3f", a / b; else print "n/a" }'; }
fmt() { [ -n "$1" ] && printf '%.2f' "$1" || printf 'n/a'; }

rows=""
split_rows=""
for model in "$@"; do
    dir=$shared/models/$model
    [ -f "$dir/model.onnx" ] || die "no model at $dir/model.onnx"
    plan=$tmp/$model.plan
    if ! "$rouse" compile "$dir/model.onnx" -o "$plan" >"$tmp/compile" 2>&1; then
        rows="$rows
| $model | $(tr '\n' ' ' <"$tmp/compile") | | | | | | |"
        continue
    fi
    : >"$tmp/a_total"; : >"$tmp/a_wall"; : >"$tmp/b_total"; : >"$tmp/b_wall"
    : >"$tmp/b_open"; : >"$tmp/b_prep"; : >"$tmp/b_first"; : >"$tmp/c_total"
    i=0
    while [ "$i" -lt "$tries" ]; do
        i=$((i + 1))
        echo "coldstart_engine: $model try $i/$tries" >&2
        for kind in a b; do
            src=$dir/model.onnx
            [ "$kind" = b ] && src=$plan
            t0=$(now_ns)
            "$rouse" run "$src" --threads "$threads" >"$tmp/out" 2>"$tmp/err" ||
                die "rouse run $src: $(cat "$tmp/err")"
            t1=$(now_ns)
            l=$(field load_ms "$tmp/out"); p=$(field prepare_ms "$tmp/out"); f=$(field first_run_ms "$tmp/out")
            awk -v l="$l" -v p="$p" -v f="$f" 'BEGIN { print l + p + f }' >>"$tmp/${kind}_total"
            awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1e6 }' >>"$tmp/${kind}_wall"
            if [ "$kind" = b ]; then
                echo "$l" >>"$tmp/b_open"; echo "$p" >>"$tmp/b_prep"; echo "$f" >>"$tmp/b_first"
            fi
        done
        rc=0
        node "$peer/ort_bench.js" "$dir" --threads "$threads" --warm 1 --json >"$tmp/ort" 2>"$tmp/ort.err" || rc=$?
        [ "$rc" -le 1 ] || die "ort_bench.js failed: $(cat "$tmp/ort.err")"
        node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results[0];
                 console.log(j.create_ms + j.first_run_ms)' "$tmp/ort" >>"$tmp/c_total"
    done
    a=$(median <"$tmp/a_total"); aw=$(median <"$tmp/a_wall")
    b=$(median <"$tmp/b_total"); bw=$(median <"$tmp/b_wall")
    c=$(median <"$tmp/c_total")
    rows="$rows
| $model | $(fmt "$a") | $(fmt "$aw") | $(fmt "$b") | $(fmt "$bw") | $(fmt "$c") | $(ratio "$b" "$c") | $(ratio "$a" "$c") |"
    # One warm inference (median of 30 in one process): the least any
    # first output can cost with these kernels, next to a tenth of (c).
    warm=$("$rouse" run "$plan" --threads "$threads" --repeat 30 | sed -n 's/^latency_ms .*median=\([0-9.]*\).*/\1/p')
    tenth=$(awk -v c="$c" 'BEGIN { if (c != "") print c / 10 }')
    split_rows="$split_rows
| $model | $(fmt "$(median <"$tmp/b_open")") | $(fmt "$(median <"$tmp/b_prep")") | $(fmt "$(median <"$tmp/b_first")") | $(fmt "$warm") | $(fmt "$tenth") | $(du -k "$plan" | cut -f1) |"
done

echo "Cold start to the first output, $threads thread(s), median of $tries fresh processes (ms)."
echo
echo "| model | (a) .onnx | (a) process | (b) .plan | (b) process | (c) ORT create+run | (b)/(c) | (a)/(c) |"
echo "|---|---|---|---|---|---|---|---|$rows"
echo
echo "(a), (b), (c): time inside the process from the first engine call to the first"
echo "output; 'process': wall time of the whole rouse run command."
echo
echo "| model | plan open | prepare | first run | warm run | 0.1 x (c) | plan size (KiB) |"
echo "|---|---|---|---|---|---|---|$split_rows"
echo
echo "warm run: median of 30 inferences in one process after the first; where it"
echo "exceeds 0.1 x (c), no cold start, however short, brings (b)/(c) down to 0.1."
