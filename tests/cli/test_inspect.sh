#!/bin/sh
# `rouse inspect` and `rouse compile --max-plan-ratio` from the outside:
# usage errors exit 2, unreadable files exit 1, and, with the shared models
# ($MODELS), the report's lines and JSON keep their form and figures.
set -u
fail=0
check() { # check DESCRIPTION CONDITION...
    desc=$1; shift
    if "$@"; then echo "ok: $desc"; else echo "FAIL: $desc"; fail=1; fi
}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

usage_case() { # usage_case DESCRIPTION ARGS...
    what=$1; shift
    "$ROUSE" inspect "$@" >"$out/o" 2>"$out/e"; rc=$?
    check "$what exits 2" [ $rc -eq 2 ]
    check "$what prints usage on stderr" grep -q 'usage: rouse inspect' "$out/e"
}
usage_case "no arguments"
usage_case "unknown option" model.onnx --frobnicate
usage_case "--input without dims" model.onnx --input x
usage_case "--input with bad dims" model.onnx --input x=1x-3
usage_case "--input with a trailing x" model.onnx --input x=1x
"$ROUSE" help >"$out/o" 2>&1
check "help lists inspect" grep -q '^  inspect ' "$out/o"

printf 'this is not an onnx model' >"$out/garbage.onnx"
"$ROUSE" inspect "$out/garbage.onnx" >"$out/o" 2>"$out/e"; rc=$?
check "malformed model exits 1" [ $rc -eq 1 ]
check "malformed model explains on stderr" grep -q '^rouse inspect: ' "$out/e"

if [ -n "${MODELS:-}" ] && [ -f "$MODELS/resnet18_dynbatch/model.onnx" ]; then
    r18=$MODELS/resnet18_dynbatch/model.onnx
    "$ROUSE" inspect "$r18" >"$out/o" 2>"$out/e"; rc=$?
    check "resnet18 exits 0" [ $rc -eq 0 ]
    check "symbolic dims are named" grep -Eq '^  input +float +\[batch, 3, 224, 224\]  at \[1, 3, 224, 224\]$' "$out/o"
    check "opsets are listed" grep -q '^opsets: ai.onnx 13$' "$out/o"
    check "histogram counts and support" grep -Eq '^  Conv +x20 +supported$' "$out/o"
    check "weights in bytes" grep -q '^weights: 44.6 MiB (46738848 bytes in 42 initializers)$' "$out/o"
    # ResNet-18 at 224x224: 1.814 G multiply-accumulates (convolutions and the classifier).
    check "multiply-accumulates at batch 1" grep -q '^multiply-accumulates: 1.81 G per inference (1814073344)$' "$out/o"
    check "activation arena" grep -Eq '^activation arena: [0-9.]+ MiB \([0-9]+ bytes\)$' "$out/o"

    "$ROUSE" inspect "$r18" --input input=4x3x224x224 --json >"$out/o" 2>"$out/e"; rc=$?
    check "--json exits 0" [ $rc -eq 0 ]
    check "--json is one line" [ "$(wc -l <"$out/o")" -eq 1 ]
    check "--json names symbolic dims" grep -q '"dims":\["batch",3,224,224\],"shape":\[4,3,224,224\]' "$out/o"
    check "--json scales with the batch" grep -q '"macs":7256293376,' "$out/o"
    check "--json histogram" grep -q '{"op_type":"Conv","domain":"ai.onnx","count":20,"supported":true}' "$out/o"

    "$ROUSE" inspect "$r18" --input input=1x3x224 >"$out/o" 2>"$out/e"; rc=$?
    check "wrong rank still reports" [ $rc -eq 0 ]
    check "wrong rank says why figures are missing" grep -q "^not computed: input 'input' has rank 4, 3 dims were given" "$out/o"
else
    echo "skipped model checks: ../shared/models not found"
fi

# data/det.onnx: one Det node (opset 17), an operator the engine does not run.
det=$(dirname "$0")/data/det.onnx
"$ROUSE" inspect "$det" >"$out/o" 2>"$out/e"; rc=$?
check "a model with unsupported operators is still inspected" [ $rc -eq 0 ]
check "unsupported operators are marked" grep -Eq '^  Det +x1 +unsupported at opset 17$' "$out/o"
check "and counted" grep -q '^operators: 1 nodes, 1 kinds, 1 unsupported$' "$out/o"

if [ -n "${MODELS:-}" ] && [ -f "$MODELS/mlp/model.onnx" ]; then
    mlp=$MODELS/mlp/model.onnx
    "$ROUSE" compile "$mlp" -o "$out/mlp.plan" --max-plan-ratio 0.1 >"$out/o" 2>"$out/e"; rc=$?
    check "a plan over --max-plan-ratio is refused" [ $rc -eq 1 ]
    check "the refusal explains itself" grep -q 'times the model .* over the limit of 0.1 times the model' "$out/e"
    check "nothing is written" [ ! -e "$out/mlp.plan" ]
    "$ROUSE" compile "$mlp" -o "$out/mlp.plan" >"$out/o" 2>"$out/e"; rc=$?
    check "the default limit lets mlp compile" [ $rc -eq 0 ]
    "$ROUSE" compile "$mlp" --max-plan-ratio x >"$out/o" 2>"$out/e"; rc=$?
    check "--max-plan-ratio x exits 2" [ $rc -eq 2 ]
fi

exit $fail
