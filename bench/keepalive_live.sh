#!/bin/sh
# The live check of the learned keep-alive policy: replays a compressed
# synthetic trace (bench/keepalive_trace.h) against a real `rouse serve`
# whose policy clock is scaled (--keepalive-minute-ms MINUTE_MS: a policy
# minute of MINUTE_MS ms), and compares the calls serve started from zero
# (Rouse-Start: zero) with what the simulator predicts (keepalive_sim
# --live): for the planned times, and for the times the calls really went
# out, recorded as they go. On a loaded machine calls go out late (one at a
# time, each waiting for its answer) and serve learns from the late times,
# so the second prediction is the one that tests serve's policy against the
# pure one; the first says how far the load moved the trace.
#
# Each function of the trace is examples/digits deployed as ka<i> with
# idle_timeout_ms 0 (every call needs an instance, so it finds the template
# or starts it from zero) and keep_alive "learned". The trace starts on a
# minute's edge of serve's clock (CLOCK_MONOTONIC, the same on one machine).
#
#   bench/keepalive_live.sh
#
# Environment: ROUSE (default build/rouse), SIM (default build/keepalive_sim),
# SEED (1), FUNCTIONS (8), DAYS (1), MINUTE_MS (100).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
sim=${SIM:-$root/build/keepalive_sim}
seed=${SEED:-1}
functions=${FUNCTIONS:-8}
days=${DAYS:-1}
minute=${MINUTE_MS:-100}
digits=$root/examples/digits

die() { echo "keepalive_live: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
[ -x "$sim" ] || die "no keepalive_sim at $sim (run make first)"

tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$rouse" serve --port 0 --data "$tmp/data" --log-level warn --keepalive-minute-ms "$minute" \
    >"$tmp/out" 2>"$tmp/err" &
pid=$!
i=0
addr=""
while [ "$i" -lt 100 ] && [ -z "$addr" ]; do
    addr=$(sed -n '1s/^listening on //p' "$tmp/out")
    [ -n "$addr" ] || sleep 0.1
    i=$((i + 1))
done
[ -n "$addr" ] || die "rouse serve did not start: $(cat "$tmp/err")"
url=http://$addr

digest=$(curl -sf --data-binary "@$digits/model.onnx" "$url/v1/blobs" |
    sed -n 's/.*"digest":"\([^"]*\)".*/\1/p')
[ -n "$digest" ] || die "cannot upload the model"
f=0
while [ "$f" -lt "$functions" ]; do
    curl -sf -X PUT -d "{\"model\":\"$digest\",\"scaling\":{\"idle_timeout_ms\":0,\"keep_alive\":\"learned\"}}" \
        "$url/v1/functions/ka$f" >/dev/null || die "cannot deploy ka$f"
    f=$((f + 1))
done
echo "rouse serve --keepalive-minute-ms $minute; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$sim" --live "$url" --body "$digits/samples/digit-3.json" --minute-ms "$minute" --seed "$seed" \
    --functions "$functions" --days "$days"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
