#!/bin/sh
# One PyTorch-exported model through `rouse run DIR`: every test set must PASS.
#   run_exported.sh ROUSE DIR MODEL
# Exits 77 when the model was not exported (PyTorch missing).
set -u
rouse=$1 dir=$2 model=$3
if [ ! -f "$dir/$model/model.onnx" ]; then
    echo "skipped: $model was not exported (is PyTorch installed?)"
    exit 77
fi
exec "$rouse" run "$dir/$model"
