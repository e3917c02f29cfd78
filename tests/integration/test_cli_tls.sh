#!/bin/sh
# The client's https path against a real TLS server on loopback: a throwaway
# CA signs a certificate for localhost/127.0.0.1, a small Node https reverse
# proxy (built-in modules only) terminates TLS in front of a real
# `rouse serve`, and `rouse ls` must list the deployed function when given
# the CA with --cacert, and refuse in one line about the certificate without
# it or with a CA that did not sign the server's certificate.
# Skips (77) without openssl or node.
set -u
for tool in openssl node; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "skip: $tool not found (needed for the TLS server)"
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
proxy=
cleanup() {
    [ -n "$proxy" ] && kill "$proxy" 2>/dev/null
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
# The client honours proxies from the environment; this test talks to loopback.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_COLOR=1

# --- certificates: a CA that signs the server, and one that does not ------------
mkca() { # mkca NAME
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=rouse test $1" \
        -keyout "$tmp/$1.key" -out "$tmp/$1.pem" 2>>"$tmp/openssl.log"
}
mkca ca && mkca other &&
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$tmp/server.key" -out "$tmp/server.csr" 2>>"$tmp/openssl.log" &&
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$tmp/server.ext" &&
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
    -days 2 -extfile "$tmp/server.ext" -out "$tmp/server.pem" 2>>"$tmp/openssl.log"
if [ $? -ne 0 ]; then echo "FAIL: openssl could not make the certificates"; cat "$tmp/openssl.log"; exit 1; fi

# --- serve, with one function deployed over plain http ----------------------------
"$ROUSE" serve --port 0 --data "$tmp/data" >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
i=0
until grep -q '^listening on ' "$tmp/serve.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then echo "FAIL: serve did not start"; exit 1; fi
    sleep 0.1
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/serve.out")
"$ROUSE" deploy digits "$DIGITS/model.onnx" --server "http://127.0.0.1:$port" >"$tmp/o" 2>"$tmp/e"
check "deploy over plain http exits 0" [ $? -eq 0 ]

# --- the TLS terminator: https on a free port, forwarding to serve ----------------
cat >"$tmp/proxy.js" <<'EOF'
const fs = require("fs"), http = require("http"), https = require("https");
const [key, cert, upstream] = process.argv.slice(2);
const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) },
    (req, res) => {
        const up = http.request({ host: "127.0.0.1", port: Number(upstream), path: req.url,
                                  method: req.method, headers: req.headers }, (r) => {
            res.writeHead(r.statusCode, r.headers);
            r.pipe(res);
        });
        up.on("error", (e) => { res.writeHead(502); res.end(String(e)); });
        req.pipe(up);
    });
server.on("tlsClientError", () => {});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
EOF
node "$tmp/proxy.js" "$tmp/server.key" "$tmp/server.pem" "$port" >"$tmp/proxy.port" 2>"$tmp/proxy.err" &
proxy=$!
i=0
until [ -s "$tmp/proxy.port" ]; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $proxy 2>/dev/null; then
        echo "FAIL: the TLS proxy did not start"; cat "$tmp/proxy.err"; exit 1
    fi
    sleep 0.1
done
tls="https://localhost:$(cat "$tmp/proxy.port")"

# --- the checks ---------------------------------------------------------------------
"$ROUSE" ls --server "$tls" --cacert "$tmp/ca.pem" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "ls over https with --cacert exits 0" [ $rc -eq 0 ]
check "and lists the deployed function" grep -Eq '^digits +1 +1 ' "$tmp/o"
"$ROUSE" ls --server "https://127.0.0.1:$(cat "$tmp/proxy.port")" --cacert "$tmp/ca.pem" \
    >"$tmp/o" 2>"$tmp/e"; rc=$?
check "the certificate's IP address is verified too" sh -c "[ $rc -eq 0 ] && grep -Eq '^digits +1 +1 ' '$tmp/o'"

"$ROUSE" ls --server "$tls" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "without --cacert an unknown CA exits 1" [ $rc -eq 1 ]
check "in one line about the certificate" \
    sh -c "[ \$(wc -l <'$tmp/e') -eq 1 ] && grep -qi 'certificate' '$tmp/e'"

"$ROUSE" ls --server "$tls" --cacert "$tmp/other.pem" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a CA that did not sign the server exits 1" [ $rc -eq 1 ]
check "in one line about the certificate" \
    sh -c "[ \$(wc -l <'$tmp/e') -eq 1 ] && grep -qi 'certificate' '$tmp/e'"
check "and prints nothing on stdout" [ ! -s "$tmp/o" ]

kill "$proxy" 2>/dev/null
wait "$proxy" 2>/dev/null
proxy=
kill -TERM $pid
wait $pid; rc=$?
pid=
check "SIGTERM stops serve with status 0" [ $rc -eq 0 ]
exit $fail
