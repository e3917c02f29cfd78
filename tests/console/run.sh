#!/bin/sh
# Runs console.test.mjs: installs puppeteer-core from package-lock.json into
# a folder of the build (npm ci), then drives Debian's chromium with it.
# Skips (77) with one line when chromium, node or the npm registry is not
# there.
#
#   ROUSE=build/rouse DIGITS=examples/digits OUT=build/console-screenshots \
#   WORK=build/console-test sh tests/console/run.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
chromium=${CHROMIUM:-$(command -v chromium || true)}
if [ -z "$chromium" ]; then
    echo "skip: chromium not found (scripts/setup installs Debian's chromium)"
    exit 77
fi
for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "skip: $tool not found"
        exit 77
    fi
done
mkdir -p "$WORK"
cp "$here/package.json" "$here/package-lock.json" "$here/console.test.mjs" "$WORK/"
if ! cmp -s "$here/package-lock.json" "$WORK/node_modules/.package-lock.json.installed" 2>/dev/null; then
    if ! (cd "$WORK" && npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
        echo "skip: puppeteer-core could not be installed from the npm registry (see $WORK/npm.log)"
        exit 77
    fi
    cp "$here/package-lock.json" "$WORK/node_modules/.package-lock.json.installed"
fi
# This test talks to loopback only.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
cd "$WORK" && CHROMIUM="$chromium" exec node console.test.mjs
