#!/bin/sh
# GPT-2-architecture decoders exported by scripts/models/export_gpt2.py with
# random weights, run by `rouse run` against PyTorch's outputs: a prefill of
# 7 tokens at batch 2 with an empty past, then one decode step with that
# past. Two shapes: the tiny default and one with other layer, head and
# width counts.
#   run_gpt2_export.sh ROUSE OUTDIR
# Exits 77 (skipped) with one line when PyTorch is not installed.
set -u
rouse=$1 out=$2
here=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
    echo "skipped: PyTorch not installed (Debian package python3-torch)"
    exit 77
fi
rc=0
for variant in "tiny" "odd --layers 3 --heads 2 --d 48 --vocab 300 --ctx 64 --seed 1"; do
    name=${variant%% *}
    args=${variant#"$name"}
    rm -rf "$out/$name"
    # shellcheck disable=SC2086
    "$py" -W ignore "$here/scripts/models/export_gpt2.py" "$out/$name" $args || { rc=1; continue; }
    "$rouse" run "$out/$name" || rc=1
done
exit $rc
