#!/bin/sh
# serve's own TLS (--tls-cert, --tls-key) and the client's https path: a
# throwaway CA signs a certificate for localhost/127.0.0.1, `rouse serve`
# serves HTTPS with it, and
# - curl and `rouse ls --cacert` talk to it (deploy, list, infer over https),
#   and refuse in one line about the certificate without the CA or with a CA
#   that did not sign it;
# - plain http on the TLS port gets no answer;
# - SIGHUP reloads the certificate: a new connection gets a certificate
#   signed by a second CA, and a bad key file on SIGHUP keeps the one in use;
# - a key that does not match the certificate stops serve at start.
# Skips (77) without openssl or curl.
set -u
for tool in openssl curl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "skip: $tool not found (needed for the TLS checks)"
        exit 77
    fi
done
fail=0
check() { # check DESCRIPTION CONDITION...
    desc=$1; shift
    if "$@"; then echo "ok: $desc"; else echo "FAIL: $desc"; fail=1; fi
}
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
# The client honours proxies from the environment; this test talks to loopback.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_COLOR=1

# --- certificates: two CAs that each sign a server certificate, one that signs none
mkca() { # mkca NAME
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=rouse test $1" \
        -keyout "$tmp/$1.key" -out "$tmp/$1.pem" 2>>"$tmp/openssl.log"
}
mkserver() { # mkserver NAME CA
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$tmp/$1.key" -out "$tmp/$1.csr" 2>>"$tmp/openssl.log" &&
    openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$2.pem" -CAkey "$tmp/$2.key" -CAcreateserial \
        -days 2 -extfile "$tmp/server.ext" -out "$tmp/$1.pem" 2>>"$tmp/openssl.log"
}
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$tmp/server.ext"
mkca ca && mkca ca2 && mkca other && mkserver server ca && mkserver server2 ca2
if [ $? -ne 0 ]; then echo "FAIL: openssl could not make the certificates"; cat "$tmp/openssl.log"; exit 1; fi
cp "$tmp/server.pem" "$tmp/live.pem" && cp "$tmp/server.key" "$tmp/live.key"

# --- a key that is not the certificate's stops serve at start ----------------------
"$ROUSE" serve --port 0 --data "$tmp/bad" --tls-cert "$tmp/server.pem" --tls-key "$tmp/server2.key" \
    >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a key that does not match the certificate: serve exits 1" [ $rc -eq 1 ]
check "saying so" grep -q 'does not belong to the certificate' "$tmp/e"

# --- serve over https -----------------------------------------------------------------
"$ROUSE" serve --port 0 --data "$tmp/data" --tls-cert "$tmp/live.pem" --tls-key "$tmp/live.key" \
    >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
i=0
until grep -q '^listening on ' "$tmp/serve.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then echo "FAIL: serve did not start"; cat "$tmp/serve.err"; exit 1; fi
    sleep 0.1
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/serve.out")
tls="https://localhost:$port"

code=$(curl -s -o "$tmp/o" -w '%{http_code}' --cacert "$tmp/ca.pem" "$tls/v2/health/ready")
check "curl over https with the CA: 200" [ "$code" = 200 ]
curl -s -o /dev/null "$tls/v2/health/ready"; rc=$?
check "curl without the CA refuses the certificate (exit 60)" [ $rc -eq 60 ]
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/health/ready")
check "plain http on the TLS port gets no HTTP answer" [ "$code" = 000 ]

"$ROUSE" deploy digits "$DIGITS/model.onnx" --server "$tls" --cacert "$tmp/ca.pem" >"$tmp/o" 2>"$tmp/e"
check "deploy over https with --cacert exits 0" [ $? -eq 0 ]
"$ROUSE" ls --server "$tls" --cacert "$tmp/ca.pem" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "ls over https with --cacert exits 0" [ $rc -eq 0 ]
check "and lists the deployed function" grep -Eq '^digits +1 +1 ' "$tmp/o"
"$ROUSE" ls --server "https://127.0.0.1:$port" --cacert "$tmp/ca.pem" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "the certificate's IP address is verified too" sh -c "[ $rc -eq 0 ] && grep -Eq '^digits +1 +1 ' '$tmp/o'"
body='{"inputs":[{"name":"pixels","shape":[1,64],"datatype":"FP32","data":['
j=0; while [ $j -lt 63 ]; do body="${body}0,"; j=$((j + 1)); done; body="${body}0]}]}"
code=$(curl -s -o "$tmp/o" -w '%{http_code}' --cacert "$tmp/ca.pem" -H 'Content-Type: application/json' \
    -d "$body" "$tls/v2/models/digits/infer")
check "an inference over https: 200 with outputs" sh -c "[ $code = 200 ] && grep -q '\"outputs\"' '$tmp/o'"

"$ROUSE" ls --server "$tls" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "without --cacert an unknown CA exits 1" [ $rc -eq 1 ]
check "in one line about the certificate" \
    sh -c "[ \$(wc -l <'$tmp/e') -eq 1 ] && grep -qi 'certificate' '$tmp/e'"
"$ROUSE" ls --server "$tls" --cacert "$tmp/other.pem" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a CA that did not sign the server exits 1" [ $rc -eq 1 ]
check "in one line about the certificate" \
    sh -c "[ \$(wc -l <'$tmp/e') -eq 1 ] && grep -qi 'certificate' '$tmp/e'"
check "and prints nothing on stdout" [ ! -s "$tmp/o" ]

# --- SIGHUP: the new certificate for new connections ------------------------------
cp "$tmp/server2.pem" "$tmp/live.pem" && cp "$tmp/server2.key" "$tmp/live.key"
kill -HUP $pid
i=0
until grep -q 'TLS certificate reloaded' "$tmp/serve.err"; do
    i=$((i + 1)); [ $i -gt 50 ] && break; sleep 0.1
done
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$tmp/ca2.pem" "$tls/v2/health/ready")
check "after SIGHUP a new connection gets the second CA's certificate" [ "$code" = 200 ]
curl -s -o /dev/null --cacert "$tmp/ca.pem" "$tls/v2/health/ready"; rc=$?
check "and no longer the first one's" [ $rc -eq 60 ]
"$ROUSE" ls --server "$tls" --cacert "$tmp/ca2.pem" >"$tmp/o" 2>"$tmp/e"
check "the CLI with the second CA lists the function" grep -Eq '^digits +1 +1 ' "$tmp/o"

echo "not a key" >"$tmp/live.key"
kill -HUP $pid
i=0
until grep -q 'TLS certificate not reloaded' "$tmp/serve.err"; do
    i=$((i + 1)); [ $i -gt 50 ] && break; sleep 0.1
done
check "a bad key on SIGHUP is logged" grep -q 'TLS certificate not reloaded' "$tmp/serve.err"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$tmp/ca2.pem" "$tls/v2/health/ready")
check "and the certificate in use stays" [ "$code" = 200 ]

kill -TERM $pid
wait $pid; rc=$?
pid=
check "SIGTERM stops serve with status 0" [ $rc -eq 0 ]
exit $fail
