#!/bin/sh
# One real model through `rouse run DIR`: every test set must PASS.
#   run_model.sh ROUSE MODELS_DIR MODEL [rouse run options...]
# Exits 77 (CTest "skipped") when the shared models are absent.
set -u
rouse=$1 models=$2 model=$3
shift 3
if [ ! -d "$models" ]; then
    echo "skipped: ../shared/models not found"
    exit 77
fi
exec "$rouse" run "$models/$model" "$@"
