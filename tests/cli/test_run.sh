#!/bin/sh
# `rouse run` from the outside: usage errors exit 2 with usage on stderr,
# failures exit 1 with "rouse run: <message>", and, when the shared models
# are present ($MODELS), the script-facing output lines keep their form.
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
    "$ROUSE" run "$@" >"$out/o" 2>"$out/e"; rc=$?
    check "$what exits 2" [ $rc -eq 2 ]
    check "$what prints usage on stderr" grep -q 'usage: rouse run' "$out/e"
    check "$what prints nothing on stdout" [ ! -s "$out/o" ]
}
usage_case "no arguments"
usage_case "unknown option" model.onnx --frobnicate
usage_case "two models" a.onnx b.onnx
usage_case "--repeat without a value" model.onnx --repeat
usage_case "--repeat 0" model.onnx --repeat 0
usage_case "--repeat abc" model.onnx --repeat abc
usage_case "--threads 0" model.onnx --threads 0
usage_case "--threads=x" model.onnx --threads=x
usage_case "--warmup -1" model.onnx --repeat 3 --warmup -1
usage_case "--input with an empty name" model.onnx --input =x.npy
usage_case "--input with an empty file" model.onnx --input x=
usage_case "--profile without --repeat" model.onnx --profile

"$ROUSE" run --help >"$out/o" 2>&1; rc=$?
check "--help exits 0" [ $rc -eq 0 ]
check "--help explains load_ms" grep -q 'load_ms' "$out/o"
"$ROUSE" help >"$out/o" 2>&1
check "help lists run" grep -q '^  run ' "$out/o"

"$ROUSE" run "$out/missing.onnx" >"$out/o" 2>"$out/e"; rc=$?
check "missing model exits 1" [ $rc -eq 1 ]
check "missing model names it" grep -q "^rouse run: cannot open $out/missing.onnx" "$out/e"

printf 'this is not an onnx model' >"$out/garbage.onnx"
"$ROUSE" run "$out/garbage.onnx" >"$out/o" 2>"$out/e"; rc=$?
check "malformed model exits 1" [ $rc -eq 1 ]
check "malformed model explains on stderr" grep -q '^rouse run: ' "$out/e"

mkdir "$out/empty"
"$ROUSE" run "$out/empty" >"$out/o" 2>"$out/e"; rc=$?
check "folder without model.onnx exits 1" [ $rc -eq 1 ]
check "folder without model.onnx says so" grep -q 'no model.onnx' "$out/e"
usage_case "--repeat with a test folder" "$out/empty" --repeat 3
usage_case "--profile with a test folder" "$out/empty" --repeat 2 --profile

if [ -n "${MODELS:-}" ] && [ -f "$MODELS/mlp/model.onnx" ]; then
    mlp=$MODELS/mlp
    "$ROUSE" run "$mlp/model.onnx" --repeat 5 --threads 1 >"$out/o" 2>"$out/e"; rc=$?
    check "mlp --repeat exits 0" [ $rc -eq 0 ]
    check "mlp prints load_ms" grep -Eq '^load_ms [0-9]+\.[0-9]{3}$' "$out/o"
    check "mlp prints one latency line" [ "$(grep -c '^latency_ms' "$out/o")" -eq 1 ]
    check "latency line has its form" grep -Eq \
        '^latency_ms min=[0-9]+\.[0-9]{3} median=[0-9]+\.[0-9]{3} p99=[0-9]+\.[0-9]{3} runs=5 threads=1$' \
        "$out/o"
    check "mlp prints its output" grep -Eq '^output logits float \[1, 10\] min=' "$out/o"

    "$ROUSE" run "$mlp/model.onnx" --input "input=$mlp/test_data_set_0/input_0.pb" >"$out/o" 2>"$out/e"
    check "--input NAME=FILE.pb runs" [ $? -eq 0 ]
    "$ROUSE" run "$mlp/model.onnx" --input "$mlp/test_data_set_0/input_0.pb" >"$out/o2" 2>"$out/e"
    check "--input FILE.pb uses the TensorProto name" [ $? -eq 0 ]
    grep ^output "$out/o" >"$out/a"; grep ^output "$out/o2" >"$out/b"
    check "both feed the same tensor" cmp -s "$out/a" "$out/b"

    # A float32 [1, 784] .npy of zeros, header padded to 128 bytes as numpy does.
    { printf '\223NUMPY\001\000\166\000'
      printf "%-117s\n" "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 784), }"
      head -c 3136 /dev/zero; } >"$out/zeros.npy"
    "$ROUSE" run "$mlp/model.onnx" --input "input=$out/zeros.npy" >"$out/o" 2>"$out/e"; rc=$?
    check "--input NAME=FILE.npy runs" [ $rc -eq 0 ]
    check "--input NAME=FILE.npy prints the output" grep -q '^output logits float \[1, 10\]' "$out/o"

    "$ROUSE" run "$mlp/model.onnx" --input "nosuch=$mlp/test_data_set_0/input_0.pb" >"$out/o" 2>"$out/e"; rc=$?
    check "unknown input name exits 1" [ $rc -eq 1 ]
    check "unknown input name lists the inputs" grep -q "no input 'nosuch' (inputs: 'input')" "$out/e"
    "$ROUSE" run "$mlp/model.onnx" --input "input=$out/none.npy" >"$out/o" 2>"$out/e"; rc=$?
    check "missing input file exits 1" [ $rc -eq 1 ]
    check "missing input file names it" grep -q "none.npy" "$out/e"
    "$ROUSE" run "$mlp/model.onnx" --input "input=$out/garbage.onnx" >"$out/o" 2>"$out/e"; rc=$?
    check "wrong-shaped input exits 1" [ $rc -eq 1 ]
    check "wrong-shaped input explains on stderr" grep -q '^rouse run: ' "$out/e"

    "$ROUSE" run "$mlp" >"$out/o" 2>"$out/e"; rc=$?
    check "mlp test folder passes" [ $rc -eq 0 ]
    check "mlp test folder prints a PASS line per set" \
        [ "$(grep -Ec '^test_data_set_[0-9]+: PASS max_abs=' "$out/o")" -eq 3 ]
    check "one input shape prints no plan cache line" [ "$(grep -c '^plan_cache' "$out/o")" -eq 0 ]
    dyn=$(dirname "$mlp")/resnet18_dynbatch
    "$ROUSE" run "$dyn" >"$out/o" 2>"$out/e"; rc=$?
    check "dynamic-batch folder passes" [ $rc -eq 0 ]
    check "three batch sizes print the plan cache" grep -Eq \
        '^plan_cache entries=3 capacity=4 hits=0 misses=3 evictions=0$' "$out/o"

    # --profile: mean time per run of each operator type and of each kernel.
    "$ROUSE" run "$mlp/model.onnx" --repeat 4 --profile >"$out/o" 2>"$out/e"; rc=$?
    check "--profile exits 0" [ $rc -eq 0 ]
    check "--profile keeps one latency line" [ "$(grep -c '^latency_ms' "$out/o")" -eq 1 ]
    check "--profile prints its runs" grep -Eq '^profile runs=4 ms=[0-9]+\.[0-9]{3} min_ms=[0-9]+\.[0-9]{3}$' "$out/o"
    check "profile_op lines have their form" awk '/^profile_op / { n++;
        if ($0 !~ /^profile_op [A-Za-z]+ kernel=(onednn|reference|copy) steps=[0-9]+ ms=[0-9.]+ min_ms=[0-9.]+ share=[0-9.]+%$/) bad = 1 }
        END { exit !(n > 0 && !bad) }' "$out/o"
    check "profile_node lines have their form" awk '/^profile_node / { n++;
        if ($0 !~ /^profile_node [A-Za-z]+ kernel=(onednn|reference|copy) fused=[0-9]+ ms=[0-9.]+ min_ms=[0-9.]+ share=[0-9.]+% name=/) bad = 1 }
        END { exit !(n > 0 && !bad) }' "$out/o"
    check "every kernel is counted once by operator type" awk '
        /^profile_op / { sub("steps=", "", $4); s += $4 } /^profile_node / { n++ }
        END { exit !(s == n) }' "$out/o"
    check "the shares add up to 100%" awk '/^profile_node / { sub("share=", "", $7); sub("%", "", $7); t += $7 }
        END { exit !(t > 99 && t < 101) }' "$out/o"
    check "the profile is slowest first" awk '/^profile_node / { sub("min_ms=", "", $6);
        if (seen && $6 + 0 > last + 0) bad = 1; last = $6; seen = 1 } END { exit bad }' "$out/o"
    check "mlp's Gemm runs on oneDNN" grep -Eq '^profile_op (Gemm|MatMul) kernel=onednn ' "$out/o"
    bert=$(dirname "$mlp")/bert_tiny
    if [ -f "$bert/model.onnx" ]; then
        "$ROUSE" run "$bert/model.onnx" --repeat 2 --profile >"$out/o" 2>"$out/e"; rc=$?
        check "bert_tiny --profile exits 0" [ $rc -eq 0 ]
        check "bert_tiny's Gather runs on the reference kernels" \
            grep -Eq '^profile_op Gather kernel=reference ' "$out/o"
    fi
else
    echo "skipped model checks: ../shared/models not found"
fi

exit $fail
