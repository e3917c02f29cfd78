#!/bin/sh
# Access control from the command line, against a real `rouse serve --auth`
# on a free loopback port: the bootstrap admin key (on stderr and in
# <data>/bootstrap.key with mode 0600, never on stdout, and only at the
# first start), rouse keys create/ls/whoami/revoke with --key and
# $ROUSE_KEY, the 401 with WWW-Authenticate: Bearer, the --auth-file and its
# parse errors, and the refusal to bind a non-loopback address without
# --auth.
set -u
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
R="$ROUSE"
export NO_COLOR=1
unset ROUSE_KEY ROUSE_API_KEY

start() { # start OUT ERR ARGS...: serve in the background; sets pid and port
    out=$1; err=$2; shift 2
    "$R" serve --port 0 --log-level warn "$@" >"$out" 2>"$err" &
    pid=$!
    i=0
    until grep -q '^listening on ' "$out" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
            echo "FAIL: serve did not start"; cat "$err"; exit 1
        fi
        sleep 0.1
    done
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out")
    export ROUSE_SERVER="http://127.0.0.1:$port"
}
stop() {
    kill "$pid"; wait "$pid" 2>/dev/null; pid=
}

# --- the bootstrap key ---------------------------------------------------------
start "$tmp/out1" "$tmp/err1" --auth --data "$tmp/data"
key=$(grep -o 'rk_[A-Za-z0-9_-]*' "$tmp/err1" | head -1)
check "the bootstrap key is printed on stderr" [ -n "$key" ]
check "and has 43 characters after rk_" [ ${#key} -eq 46 ]
check "stdout holds only the listening line" [ "$(wc -l <"$tmp/out1")" -eq 1 ]
check "the key is not on stdout" sh -c "! grep -q rk_ '$tmp/out1'"
check "it is in <data>/bootstrap.key" [ "$(cat "$tmp/data/bootstrap.key")" = "$key" ]
check "whose mode is 0600" [ "$(stat -c %a "$tmp/data/bootstrap.key")" = 600 ]

# --- 401 ------------------------------------------------------------------------
if command -v curl >/dev/null; then
    curl -s -D "$tmp/h" -o "$tmp/b" "$ROUSE_SERVER/v1/functions"
    check "no key: 401" grep -q '^HTTP/1.1 401' "$tmp/h"
    check "with WWW-Authenticate: Bearer" grep -qi '^WWW-Authenticate: Bearer' "$tmp/h"
    check "and a JSON error" grep -q '^{"error":' "$tmp/b"
    curl -s -o /dev/null -w '%{http_code}' "$ROUSE_SERVER/v2/health/ready" >"$tmp/c"
    check "health stays open" [ "$(cat "$tmp/c")" = 200 ]
fi
"$R" ls >"$tmp/o" 2>"$tmp/e"; rc=$?
check "rouse ls without a key exits 1" [ $rc -eq 1 ]
check "saying a key is required" grep -q 'an API key is required.*(HTTP 401)' "$tmp/e"

# --- rouse keys -------------------------------------------------------------------
"$R" keys whoami --key "$key" >"$tmp/o" 2>"$tmp/e"
check "whoami with --key: the bootstrap admin" grep -q 'tenant default, role admin, expires never' "$tmp/o"
ROUSE_KEY="$key" "$R" keys create --tenant acme --role deploy -q >"$tmp/o" 2>"$tmp/e"; rc=$?
check "keys create with \$ROUSE_KEY exits 0" [ $rc -eq 0 ]
acme=$(cat "$tmp/o")
check "-q prints the secret alone" sh -c "echo '$acme' | grep -Eq '^rk_[A-Za-z0-9_-]{43}$'"
ROUSE_KEY="$key" "$R" keys create --tenant acme --role invoke --expires 30d --name ci >"$tmp/o" 2>"$tmp/e"
check "create says what it made" grep -q '^created key k[0-9a-f]\{16\} (tenant acme, role invoke, expires 20' "$tmp/o"
check "and warns the secret is shown once" grep -q 'shown this once' "$tmp/e"
ROUSE_KEY="$acme" "$R" keys whoami >"$tmp/o"
check "the new key is acme's deploy key" grep -q 'tenant acme, role deploy' "$tmp/o"
ROUSE_KEY="$acme" "$R" keys ls >"$tmp/o" 2>"$tmp/e"; rc=$?
check "keys ls with a deploy key: exit 1" [ $rc -eq 1 ]
check "a 403 naming the role" grep -q 'needs the admin role (HTTP 403)' "$tmp/e"
ROUSE_KEY="$key" "$R" keys ls >"$tmp/o"
check "keys ls lists three keys" [ "$(grep -c '^k[0-9a-f]\{16\}' "$tmp/o")" -eq 3 ]
check "with the label" grep -q ' ci$' "$tmp/o"
check "and no secret" sh -c "! grep -q rk_ '$tmp/o'"
"$R" keys create --tenant acme --role boss --key "$key" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a bad role is the server's 400" sh -c "[ $rc -eq 1 ] && grep -q 'role: must be admin, deploy or invoke' '$tmp/e'"
"$R" keys create --tenant acme --role invoke --expires soon --key "$key" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a bad --expires is a usage error" [ $rc -eq 2 ]
ROUSE_KEY="$acme" "$R" deploy digits "$DIGITS/model.onnx" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "acme's deploy key deploys" [ $rc -eq 0 ]
ROUSE_KEY="$acme" "$R" ls >"$tmp/o"
check "and lists its function" grep -q '^digits ' "$tmp/o"
ROUSE_KEY="$key" "$R" ls >"$tmp/o"
check "the admin's own tenant has none" grep -q '^no functions' "$tmp/o"
id=$(ROUSE_KEY="$acme" "$R" keys whoami --json | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
ROUSE_KEY="$key" "$R" keys revoke "$id" >"$tmp/o"
check "keys revoke" grep -q "^revoked key $id$" "$tmp/o"
ROUSE_KEY="$acme" "$R" ls >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a revoked key: 401, exit 1" sh -c "[ $rc -eq 1 ] && grep -q 'revoked (HTTP 401)' '$tmp/e'"
stop

start "$tmp/out2" "$tmp/err2" --auth --data "$tmp/data"
check "a second start prints no bootstrap key" sh -c "! grep -q rk_ '$tmp/err2'"
ROUSE_KEY="$key" "$R" keys whoami >"$tmp/o"
check "the bootstrap key still works" grep -q 'role admin' "$tmp/o"
stop

# --- --auth-file ---------------------------------------------------------------------
cat >"$tmp/keys.yaml" <<'YAML'
keys:
  - key: static-admin-secret-0001
    tenant: default
    role: admin
  - key: static-invoke-secret-0002
    tenant: acme
    role: invoke
YAML
start "$tmp/out3" "$tmp/err3" --auth --auth-file "$tmp/keys.yaml" --data "$tmp/data3"
check "with an admin in the auth file, no bootstrap key" sh -c "! grep -q rk_ '$tmp/err3' && [ ! -e '$tmp/data3/bootstrap.key' ]"
"$R" keys whoami --key static-invoke-secret-0002 >"$tmp/o"
check "a key of the auth file" grep -q '^key static-2: tenant acme, role invoke' "$tmp/o"
"$R" keys revoke static-2 --key static-admin-secret-0001 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "cannot be revoked through the API (409)" sh -c "[ $rc -eq 1 ] && grep -q 'auth-file.*(HTTP 409)' '$tmp/e'"
stop

bad() { # bad DESCRIPTION EXPECTED-MESSAGE: serve refuses $tmp/bad.yaml with it
    "$R" serve --port 0 --auth --auth-file "$tmp/bad.yaml" --data "$tmp/data4" >"$tmp/o" 2>"$tmp/e"; rc=$?
    check "$1" sh -c "[ $rc -eq 1 ] && grep -qF -e \"$2\" '$tmp/e' && ! grep -q '^listening' '$tmp/o'"
}
printf 'keys:\n  - key: short\n    tenant: acme\n    role: admin\n' >"$tmp/bad.yaml"
bad "a short secret" "line 2: keys[0].key: must be 16 to 512 printable characters"
printf 'keys:\n  - key: long-enough-secret-01\n    tenant: Acme\n    role: admin\n' >"$tmp/bad.yaml"
bad "a bad tenant" "line 2: keys[0].tenant: 'Acme' is not a tenant name"
printf 'keys:\n  - key: long-enough-secret-01\n    tenant: acme\n    role: root\n' >"$tmp/bad.yaml"
bad "a bad role" "line 2: keys[0].role: must be admin, deploy or invoke"
printf 'keys:\n  - key: long-enough-secret-01\n    role: admin\n' >"$tmp/bad.yaml"
bad "a missing tenant" "keys[0]: tenant is missing"
printf 'keys:\n  - key: long-enough-secret-01\n    tenant: acme\n    role: admin\n    extra: 1\n' >"$tmp/bad.yaml"
bad "an unknown field" "line 5: keys[0]: unknown field 'extra'"
printf 'users: []\n' >"$tmp/bad.yaml"
bad "no keys list" "line 1: unknown field 'users'"
printf 'keys: [\n' >"$tmp/bad.yaml"
bad "not YAML" "--auth-file $tmp/bad.yaml: line"
printf 'keys:\n  - {key: long-enough-secret-01, tenant: a, role: admin}\n  - {key: long-enough-secret-01, tenant: b, role: invoke}\n' >"$tmp/bad.yaml"
bad "the same secret twice" "line 3: this key is also key static-1"

# --- loopback only without --auth ----------------------------------------------------------
"$R" serve --port 0 --bind 0.0.0.0 --data "$tmp/data5" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a non-loopback bind without --auth exits 1" [ $rc -eq 1 ]
check "saying why and what to do" grep -q 'refusing to listen on 0.0.0.0 without access control.*use --auth' "$tmp/e"
check "before listening" sh -c "! grep -q '^listening' '$tmp/o'"
"$R" serve --port 0 --auth-file "$tmp/keys.yaml" --data "$tmp/data5" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "--auth-file without --auth is a usage error" [ $rc -eq 2 ]

exit $fail
