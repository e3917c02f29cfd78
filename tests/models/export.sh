#!/bin/sh
# Exports the named models with export_torch.py into DIR, skipping those
# already exported by the same version of the script (a stamp per folder).
#   export.sh DIR [--long] MODEL...
# Exits 77 (CTest "skipped") when PyTorch is not installed.
set -u
dir=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
if ! "$py" -c 'import torch, torchvision' 2>/dev/null; then
    echo "skipped: PyTorch not installed (Debian packages python3-torch python3-torchvision)"
    exit 77
fi
stamp=$(sha256sum "$here/export_torch.py" | cut -c1-16)
mkdir -p "$dir"
todo=""
for m in "$@"; do
    case "$m" in --*) continue ;; esac
    [ "$(cat "$dir/$m/.stamp" 2>/dev/null)" = "$stamp" ] || todo="$todo $m"
done
[ -z "$todo" ] && { echo "all exported"; exit 0; }
# shellcheck disable=SC2086
"$py" -W ignore "$here/export_torch.py" "$dir" --long $todo || exit 1
for m in $todo; do
    [ -f "$dir/$m/model.onnx" ] && echo "$stamp" > "$dir/$m/.stamp"
    [ "$m" = gpt_tiny ] && [ -f "$dir/gpt_tiny_kv/model.onnx" ] && echo "$stamp" > "$dir/gpt_tiny_kv/.stamp"
done
exit 0
