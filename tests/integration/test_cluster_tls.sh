#!/bin/sh
# Forwarding between nodes over TLS: a throwaway CA signs one certificate
# for 127.0.0.1; nodes a (--max-instances 1, its slot held by function
# "hold") and b serve HTTPS with it (the chain file holds the certificate
# and the CA) and advertise https URLs; a's digits call is answered by b,
# whose certificate a verifies against its own --tls-cert chain.
# Skips (77) without openssl, curl or nats-server.
set -u
for tool in openssl curl nats-server; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "skip: $tool not found (needed for the TLS checks between nodes)"
        exit 77
    fi
done
fail=0
check() { # check DESCRIPTION CONDITION...
    desc=$1; shift
    if "$@"; then echo "ok: $desc"; else echo "FAIL: $desc"; fail=1; fi
}
tmp=$(mktemp -d -t rouse-cluster-tls-XXXXXX)
pids=
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_COLOR=1

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=rouse test ca" \
    -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>>"$tmp/openssl.log" &&
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$tmp/server.ext" &&
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$tmp/server.key" \
    -out "$tmp/server.csr" 2>>"$tmp/openssl.log" &&
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
    -days 2 -extfile "$tmp/server.ext" -out "$tmp/server.pem" 2>>"$tmp/openssl.log"
if [ $? -ne 0 ]; then echo "FAIL: openssl could not make the certificates"; cat "$tmp/openssl.log"; exit 1; fi
cat "$tmp/server.pem" "$tmp/ca.pem" >"$tmp/chain.pem"
chmod 600 "$tmp/server.key"
head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/cluster.key"
chmod 600 "$tmp/cluster.key"

nats-server -js -a 127.0.0.1 -p -1 -sd "$tmp/js" -l "$tmp/nats.log" &
pids="$pids $!"
i=0
until grep -q 'Listening for client connections on' "$tmp/nats.log" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "FAIL: nats-server did not start"; exit 1; }; sleep 0.1
done
nats=$(sed -n 's/.*Listening for client connections on \([0-9.:]*\).*/\1/p' "$tmp/nats.log" | head -1)

start() { # start NAME MAX_INSTANCES: sets port
    "$ROUSE" serve --port 0 --data "$tmp/$1" --bus "nats://$nats" --node-name "$1" \
        --cluster-key-file "$tmp/cluster.key" --tls-cert "$tmp/chain.pem" --tls-key "$tmp/server.key" \
        --max-instances "$2" --log-level warn >"$tmp/$1.out" 2>"$tmp/$1.err" &
    pids="$pids $!"
    i=0
    until grep -q '^listening on ' "$tmp/$1.out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 100 ] && { echo "FAIL: serve $1 did not start"; cat "$tmp/$1.err"; exit 1; }
        sleep 0.1
    done
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/$1.out")
}
start a 1; a="https://127.0.0.1:$port"
start b 4; b="https://127.0.0.1:$port"
for url in "$a" "$b"; do
    "$ROUSE" deploy digits "$DIGITS/model.onnx" --server "$url" --cacert "$tmp/ca.pem" >/dev/null 2>"$tmp/e" ||
        { echo "FAIL: deploy on $url"; cat "$tmp/e"; exit 1; }
done
"$ROUSE" deploy hold "$DIGITS/model.onnx" --min 1 --server "$a" --cacert "$tmp/ca.pem" >/dev/null 2>"$tmp/e" ||
    { echo "FAIL: deploy hold"; cat "$tmp/e"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$tmp/ca.pem" -X POST \
    --data-binary @"$DIGITS/samples/digit-3.json" "$b/v2/models/digits/infer")
check "b answers digits itself over https" [ "$code" = 200 ]
# a learns that b holds a warm digits instance (membership, every 300 ms).
i=0
until curl -s --cacert "$tmp/ca.pem" "$a/v1/cluster" | grep -q '"url":"https://127.0.0.1:[0-9]*","age_ms":[0-9]*,"fresh":true,"slots_free":[0-9]*,"functions":\[{"fn":"digits","version":1,"instances":1,"idle":1'; do
    i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1
done
check "a's membership has b's warm digits, at an https URL" [ $i -le 300 ]
curl -s -D "$tmp/h" -o "$tmp/body" --cacert "$tmp/ca.pem" -X POST \
    --data-binary @"$DIGITS/samples/digit-3.json" "$a/v2/models/digits/infer"
check "a's call is answered 200" grep -q '^HTTP/1.1 200' "$tmp/h"
check "by b (Rouse-Node)" grep -qi '^Rouse-Node: b' "$tmp/h"
check "with b's answer" grep -q '"logits"' "$tmp/body"
exit $fail
