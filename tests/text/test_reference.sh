#!/bin/sh
# The tokenizer against GPT-2's encoding in js-tiktoken, run here:
#   test_reference.sh TOK_CHECK WORKDIR [FILE...]
# installs the reference (package.json + package-lock.json) into WORKDIR,
# writes GPT-2's vocab.json, merges.txt and tokenizer.json from its ranks and
# the reference's ids for corpus.json, each FILE (whole and by line) and
# random strings, then tok_check compares. Exits 77 (skipped) with one line
# when node is missing or the npm registry is unreachable.
set -u
check=$1 work=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "skipped: node and npm are not installed (Debian packages nodejs, npm)"
    exit 77
fi
mkdir -p "$work/out"
cp "$here/package.json" "$here/package-lock.json" "$here/reference.mjs" "$here/corpus.json" "$work/"
if ! cmp -s "$here/package-lock.json" "$work/node_modules/.package-lock.json.installed" 2>/dev/null; then
    if ! (cd "$work" && timeout 180 npm ci --no-audit --no-fund >"$work/npm.log" 2>&1); then
        echo "skipped: npm could not install js-tiktoken (registry unreachable?): $(grep -m1 "error" "$work/npm.log")"
        exit 77
    fi
    cp "$here/package-lock.json" "$work/node_modules/.package-lock.json.installed"
fi
node "$work/reference.mjs" "$work/out" "$@" || exit 1
exec "$check" "$work/out" "$work/out/cases.json" 50257 50256
