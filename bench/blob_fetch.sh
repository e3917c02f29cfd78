#!/bin/sh
# A blob fetched from another node against the same blob read locally: two
# `rouse serve` on loopback (B has A as its peer), a blob of SIZE_MB (default
# 100) random bytes uploaded to A; then, ROUNDS times (default 3), a new blob:
#   local:  GET /v1/blobs/{digest} on A (the bytes from its store)
#   fetch:  the same GET on B, which lacks it: B fetches it from A (hashing
#           while writing, fsync, the verified name), then sends it
# Prints each round's times and the median ratio fetch/local, with the load
# average (the machine is shared).
#
#   ROUSE=build/rouse sh bench/blob_fetch.sh [SIZE_MB] [ROUNDS]
set -eu
rouse=${ROUSE:-build/rouse}
size_mb=${1:-100}
rounds=${2:-3}
work=$(mktemp -d -t rouse-blob-bench-XXXXXX)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/key"
chmod 600 "$work/key"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pa=$(port)
pb=$(port)
"$rouse" serve --port "$pa" --data "$work/a" --cluster-key-file "$work/key" --log-level warn \
    >"$work/a.log" 2>&1 &
pids="$pids $!"
"$rouse" serve --port "$pb" --data "$work/b" --cluster-key-file "$work/key" --log-level warn \
    --blob-peers "http://127.0.0.1:$pa" >"$work/b.log" 2>&1 &
pids="$pids $!"
for p in $pa $pb; do
    i=0
    until curl -sf "http://127.0.0.1:$p/v2/health/live" >/dev/null; do
        i=$((i + 1))
        [ $i -lt 200 ] || { echo "serve on $p did not start" >&2; exit 1; }
        sleep 0.05
    done
done

echo "blob of $size_mb MB, $rounds rounds; load: $(uptime | sed 's/.*load average: //')"
ratios=""
r=1
while [ $r -le "$rounds" ]; do
    head -c $((size_mb * 1000000)) /dev/urandom >"$work/blob"
    digest=$(curl -sf --data-binary @"$work/blob" "http://127.0.0.1:$pa/v1/blobs" |
        sed 's/.*"digest":"\([^"]*\)".*/\1/')
    curl -sf -o /dev/null "http://127.0.0.1:$pa/v1/blobs/$digest" # into the page cache
    local_s=$(curl -sf -o /dev/null -w '%{time_total}' "http://127.0.0.1:$pa/v1/blobs/$digest")
    fetch_s=$(curl -sf -o "$work/got" -w '%{time_total}' "http://127.0.0.1:$pb/v1/blobs/$digest")
    cmp -s "$work/blob" "$work/got" || { echo "round $r: B sent other bytes" >&2; exit 1; }
    ratio=$(echo "$fetch_s $local_s" | awk '{printf "%.2f", $1 / $2}')
    echo "round $r: local GET ${local_s}s, fetched from the peer then sent ${fetch_s}s: ${ratio}x"
    ratios="$ratios $ratio"
    r=$((r + 1))
done
median=$(echo "$ratios" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median fetch/local: ${median}x; load: $(uptime | sed 's/.*load average: //')"
