#!/bin/sh
# CPU time of a cold start, with the sandbox on or off: what a start costs
# the machine, which wall-clock timings on a loaded machine cannot show.
# serve runs in a cgroup v1 cpuacct group of its own (so do its zygote,
# templates, instances and the tenants' reapers, which inherit it); for
# each try the group's cpuacct.usage is read before one request and again
# once the function is back where it started, so a try's CPU is everything
# the request set going: serve's work for it, the template's start (from
# zero: the zygote's fork, plan open, kernels, sandbox entry), the
# instance's fork, sandbox entry and first inference, their ends and
# serve's removal of their control groups, and serve's answers to the
# polls that wait for all that (the same in both tiers).
#
# For each model (default mlp) one daemon serves two functions of it, 1
# instance at most: `tmpl` (idle_timeout_ms = IDLE_MS, template kept: each
# try starts an instance from the template) and `zero` (both IDLE_MS: each
# try starts the template too). Tries alternate between the two; each is
# one curl on a new connection with the model's test_data_set_0 input.
# Prints the median and p90 CPU per try in ms.
#
#   ISOLATION=sandbox|process bench/coldstart_cpu.sh [MODEL...]   (root)
#
# Environment: ROUSE (default build/rouse), SHARED (../shared beside the
# source tree), TRIES (20), IDLE_MS (50), ISOLATION (serve's own choice
# when unset), PEER_DIR (as for coldstart.sh). Needs curl, python3, node
# and npm (for the request body) and the cpuacct controller of cgroup v1.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
tries=${TRIES:-20}
idle_ms=${IDLE_MS:-50}
[ $# -gt 0 ] || set -- mlp

die() { echo "coldstart_cpu: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
# The request body is made by bench/gateway_bodies.js with the ORT peer's
# node modules (installed once, as bench/coldstart.sh does).
peer=${PEER_DIR:-$root/build/peer-ort}
. "$root/bench/ort_peer.sh"
ort_peer_install "$shared" "$peer"
NODE_PATH=$peer/node_modules
export NODE_PATH
. "$root/bench/cpuacct.sh"
tmp=$(mktemp -d)
spid=""
stop_all() {
    [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
    cpuacct_remove
    rm -rf "$tmp"
}
trap stop_all EXIT
trap 'exit 130' INT TERM
cpuacct_group rouse-coldstart-cpu

# serve, moved into the group before it execs.
cpuacct_exec "$rouse" serve --port 0 --data "$tmp/data" --log-level warn \
    ${ISOLATION:+--isolation "$ISOLATION"} >"$tmp/out" 2>"$tmp/err" &
spid=$!
n=0
until grep -q '^listening on ' "$tmp/out"; do
    n=$((n + 1)); [ $n -lt 200 ] || die "serve did not start: $(cat "$tmp/err")"
    sleep 0.05
done
base="http://$(sed -n 's/^listening on //p' "$tmp/out")"
iso=$(curl -s "$base/v2" | sed -n 's/.*"isolation":"\([a-z]*\)".*/\1/p')

fn_get() { curl -s "$base/v1/functions/$1"; }
# counts NAME: "INSTANCES TEMPLATES" of the function.
counts() {
    fn_get "$1" | python3 -c "import json,sys; j=json.load(sys.stdin); print(len(j['instances']), len(j['templates']))"
}
# settle NAME TEMPLATES: until NAME has no instance and TEMPLATES templates.
settle() {
    n=0
    while [ "$(counts "$1")" != "0 $2" ]; do
        n=$((n + 1)); [ $n -lt 1000 ] || die "$1 did not settle"
        sleep 0.02
    done
    sleep 0.1 # processes listed as gone have been reaped
}
stats() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- -"; exit }
        i50 = int((NR + 1) / 2); i90 = int(NR * 0.9 + 0.999); printf "%.2f %.2f\n", v[i50], v[i90] }'
}

echo "CPU per cold start (ms; cpuacct of serve and everything it starts), isolation $iso, $tries tries each"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | case | CPU p50 | CPU p90 |"
echo "|---|---|---|---|"
for model in "$@"; do
    dir=$shared/models/$model
    [ -f "$dir/model.onnx" ] || { echo "| $model | not in $shared/models | | |"; continue; }
    mkdir -p "$tmp/$model"
    node "$root/bench/gateway_bodies.js" "$tmp/$model" "$dir/test_data_set_0/input_0.pb" ||
        die "cannot make a request body for $model"
    hlen=$(cat "$tmp/$model/body.bin.hlen")
    fn=$(printf '%s' "$model" | tr 'A-Z.' 'a-z_')
    for k in tmpl zero; do
        ttl=600000
        [ $k = zero ] && ttl=$idle_ms
        "$rouse" deploy "$fn-$k" "$dir/model.onnx" --server "$base" \
            --max 1 --idle-timeout "$idle_ms" --template-ttl "$ttl" \
            >/dev/null 2>"$tmp/deploy.err" || die "deploy: $(cat "$tmp/deploy.err")"
    done
    : >"$tmp/tmpl.cpu"
    : >"$tmp/zero.cpu"
    for i in $(seq 0 "$tries"); do
        for k in tmpl zero; do
            keep=1
            [ $k = zero ] && keep=0
            [ "$i" -gt 0 ] && settle "$fn-$k" "$keep"
            u0=$(cpuacct_usage)
            code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Expect:' \
                -H 'Content-Type: application/octet-stream' \
                -H "Inference-Header-Content-Length: $hlen" \
                --data-binary "@$tmp/$model/body.bin" "$base/v2/models/$fn-$k/infer")
            [ "$code" = 200 ] || die "$fn-$k answered $code"
            settle "$fn-$k" "$keep"
            u1=$(cpuacct_usage)
            # Try 0 fills the plan cache and the zygote's kernel cache: not counted.
            [ "$i" -gt 0 ] && echo "$u0 $u1" | awk '{ printf "%.3f\n", ($2 - $1) / 1e6 }' >>"$tmp/$k.cpu"
        done
    done
    set -- $(stats <"$tmp/tmpl.cpu")
    echo "| $model | from template | $1 | $2 |"
    set -- $(stats <"$tmp/zero.cpu")
    echo "| $model | from zero | $1 | $2 |"
done
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
