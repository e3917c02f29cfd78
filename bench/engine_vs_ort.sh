#!/bin/sh
# rouse's engine against ONNX Runtime (onnxruntime-node, CPU execution provider)
# on the same models and inputs, at 1 and 2 threads:
#   latency: warm median of RUNS runs after 2 untimed ones (rouse run --repeat;
#            ort_bench.js --warm), both fed test_data_set_0/input_0.pb;
#   load:    rouse's model load + kernel preparation (`load_ms` + `prepare_ms`) against ORT's
#            InferenceSession.create (`create_ms`), each in a fresh process.
# For each model and thread count rouse and ORT run back to back, ROUNDS times
# alternating, so that noise on a shared machine hits both; the best median of
# the rounds is kept. Prints a Markdown table with the ratios rouse/ORT
# (below 1 means rouse is faster). A benchmark, not a test.
#
#   bench/engine_vs_ort.sh [MODEL...]     default: squeezenet1_1 mobilenet_v2 resnet18
#   bench/engine_vs_ort.sh --exported     the PyTorch-exported model families
#                                         (tests/models; export them first with ctest -L models)
#
# A MODEL is a name under ../shared/models or a backend-test folder's path;
# every input_N.pb of its test_data_set_0 is fed, in order.
#
# Environment: ROUSE (rouse binary, default build/rouse), SHARED (default
# ../shared beside the source tree), RUNS (50), ROUNDS (1), THREADS ("1 2"),
# PEER_DIR (writable copy of the ORT peer, default build/peer-ort; `npm install`
# runs there once).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
runs=${RUNS:-50}
rounds=${ROUNDS:-1}
threads_list=${THREADS:-1 2}
peer=${PEER_DIR:-$root/build/peer-ort}
models_dir=$shared/models
exported_dir=${TORCH_MODELS:-$root/build-models}
if [ "${1:-}" = --exported ]; then
    shift
    set -- $(for d in "$exported_dir"/*/; do [ -f "$d/model.onnx" ] && echo "${d%/}"; done)
fi
[ $# -gt 0 ] || set -- squeezenet1_1 mobilenet_v2 resnet18

die() { echo "engine_vs_ort: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
command -v node >/dev/null 2>&1 || die "node is not installed"

. "$root/bench/ort_peer.sh"
ort_peer_install "$shared" "$peer"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# json_field FILE EXPR: evaluates EXPR on the JSON object `j` read from FILE.
json_field() {
    node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
             process.stdout.write(String(eval(process.argv[2])));' "$1" "$2"
}
# min_of A B: the smaller number, B when A is empty.
min_of() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

rows=""
notes=""
for model in "$@"; do
    case "$model" in
        */*) dir=$model; model=$(basename "$model") ;;
        *) dir=$models_dir/$model ;;
    esac
    [ -f "$dir/model.onnx" ] || die "no model at $dir/model.onnx"
    inputs=""
    for f in "$dir"/test_data_set_0/input_*.pb; do inputs="$inputs --input $f"; done
    for t in $threads_list; do
        r_lat="" r_load="" o_lat="" o_load=""
        round=0
        while [ "$round" -lt "$rounds" ]; do
            round=$((round + 1))
            echo "engine_vs_ort: $model threads=$t round $round/$rounds" >&2
            # shellcheck disable=SC2086
            if ! "$rouse" run "$dir/model.onnx" $inputs --repeat "$runs" --threads "$t" \
                >"$tmp/rouse" 2>"$tmp/rouse.err"; then
                notes="$notes
- rouse cannot run $model: $(head -c 200 "$tmp/rouse.err")"
                continue 2
            fi
            lat=$(sed -n 's/^latency_ms .*median=\([0-9.]*\) .*/\1/p' "$tmp/rouse")
            load=$(awk '/^load_ms / { l = $2 } /^prepare_ms / { p = $2 } END { if (l != "" && p != "") print l + p }' "$tmp/rouse")
            [ -n "$lat" ] && [ -n "$load" ] || die "unexpected rouse output: $(cat "$tmp/rouse")"
            r_lat=$(min_of "$r_lat" "$lat")
            r_load=$(min_of "$r_load" "$load")

            # ort_bench.js exits 1 when ORT misses the references; its timings still count.
            rc=0
            node "$peer/ort_bench.js" "$dir" --threads "$t" --warm "$runs" --json \
                >"$tmp/ort" 2>"$tmp/ort.err" || rc=$?
            [ "$rc" -le 1 ] || die "ort_bench.js failed: $(cat "$tmp/ort.err")"
            [ "$rc" -eq 0 ] || notes="$notes
- ORT did not match the references on $model (threads $t)"
            o_lat=$(min_of "$o_lat" "$(json_field "$tmp/ort" 'j.results[0].warm_median_ms')")
            o_load=$(min_of "$o_load" "$(json_field "$tmp/ort" 'j.results[0].create_ms')")
        done
        rows="$rows
| $model | $t | $(printf '%.3f' "$r_lat") | $(printf '%.3f' "$o_lat") | $(ratio "$r_lat" "$o_lat") | $(printf '%.1f' "$r_load") | $(printf '%.1f' "$o_load") | $(ratio "$r_load" "$o_load") |"
    done
done

ort_version=$(node -e 'process.stdout.write(require(process.argv[1] + "/node_modules/onnxruntime-node/package.json").version)' "$peer")
echo "rouse vs onnxruntime-node $ort_version (CPU EP); warm median of $runs runs, best of $rounds round(s); ms"
echo
echo "| model | threads | rouse warm | ORT warm | rouse/ORT | rouse load | ORT create | rouse/ORT |"
echo "|---|---|---|---|---|---|---|---|$rows"
echo
echo "rouse load = rouse_model_load + rouse_session_create from the .onnx; ORT create = InferenceSession.create."
[ -z "$notes" ] || printf 'Notes:%s\n' "$notes"
