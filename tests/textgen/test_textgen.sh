#!/bin/sh
# The OpenAI-style text endpoints end to end: a GPT-2-architecture decoder
# with a KV cache (random weights, bytes as tokens) exported with PyTorch,
# deployed as a text generator on a real `rouse serve`, and driven by the
# `openai` npm client (streaming and not) and by plain HTTP for what the
# client hides (headers, invalid UTF-8, a client that leaves mid-stream).
#   test_textgen.sh [SCRIPT]   (SCRIPT: test_textgen.cjs, or test_streams.cjs for
#                               several streams decoded together in one instance)
#   env: ROUSE (the binary), MODELS (where exported models are kept),
#        LOG_LEVEL (serve's, default info; its stderr is shown on failure)
# Skips (77) without python3-torch, node, or the npm registry.
set -u
here=$(cd "$(dirname "$0")" && pwd)
script=${1:-test_textgen.cjs}
py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
    echo "skip: PyTorch not installed (Debian package python3-torch)"
    exit 77
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "skip: node and npm are needed for the openai client"
    exit 77
fi
mkdir -p "$MODELS/textgen"
# The two text tests share the model and the client: one prepares them at a time.
exec 9>"$MODELS/textgen/.lock"
command -v flock >/dev/null 2>&1 && flock 9
stamp=$(cat "$here/export_decoder.py" "$here/../../scripts/models/gpt2.py" | sha256sum | cut -c1-16)
model="$MODELS/textgen/tiny.onnx"
if [ "$(cat "$MODELS/textgen/tiny.stamp" 2>/dev/null)" != "$stamp" ]; then
    "$py" -W ignore "$here/export_decoder.py" "$model" --vocab 260 || exit 1
    echo "$stamp" >"$MODELS/textgen/tiny.stamp"
fi
# The client, from the lock file, into the build tree (never the source tree).
npmdir="$MODELS/textgen/npm"
mkdir -p "$npmdir"
if ! cmp -s "$here/package-lock.json" "$npmdir/package-lock.json" || [ ! -d "$npmdir/node_modules/openai" ]; then
    cp "$here/package.json" "$here/package-lock.json" "$npmdir/"
    if ! (cd "$npmdir" && timeout 300 npm ci --no-audit --no-fund >npm.log 2>&1); then
        echo "skip: npm could not install the openai client (registry unreachable?)"
        exit 77
    fi
fi
command -v flock >/dev/null 2>&1 && flock -u 9
exec 9>&-
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
"$ROUSE" serve --port 0 --data "$tmp/data" --log-level "${LOG_LEVEL:-info}" >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
i=0
until grep -q '^listening on ' "$tmp/serve.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then echo "FAIL: serve did not start"; exit 1; fi
    sleep 0.1
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/serve.out")
OPENAI_MODULE="$npmdir/node_modules/openai" node "$here/$script" "http://127.0.0.1:$port" "$model" \
    "$model.json" "${DIGITS:-}"
rc=$?
if [ $rc -ne 0 ]; then
    echo "--- serve's stderr (last lines)"
    tail -20 "$tmp/serve.err"
fi
exit $rc
