#!/bin/sh
# The client commands (deploy, invoke, ls, status, rollback) against a real
# `rouse serve` on a free loopback port with a temporary data directory, and
# a graceful stop (SIGTERM -> exit 0).
set -u
fail=0
check() { # check DESCRIPTION CONDITION...
    desc=$1; shift
    if "$@"; then echo "ok: $desc"; else echo "FAIL: $desc"; fail=1; fi
}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

"$ROUSE" serve --port 0 --data "$tmp/data" --log-level warn >"$tmp/serve.out" &
pid=$!
i=0
until grep -q '^listening on ' "$tmp/serve.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then echo "FAIL: serve did not start"; exit 1; fi
    sleep 0.1
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/serve.out")
export ROUSE_SERVER="http://127.0.0.1:$port"
model="$DIGITS/model.onnx"

"$ROUSE" deploy digits "$model" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "deploy exits 0" [ $rc -eq 0 ]
check "deploy reports version 1" grep -q '^digits: deployed version 1$' "$tmp/o"
"$ROUSE" deploy digits "$model" >"$tmp/o" 2>"$tmp/e"
check "unchanged deploy keeps version 1" grep -q '^digits: unchanged (version 1)$' "$tmp/o"
"$ROUSE" deploy digits "$model" --max 2 --timeout 5000 >"$tmp/o" 2>"$tmp/e"
check "changed settings make version 2" grep -q 'deployed version 2' "$tmp/o"

"$ROUSE" invoke digits --request "$DIGITS/samples/digit-7.json" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "invoke --request exits 0" [ $rc -eq 0 ]
check "invoke prints the version and the top class" grep -q '^digits version 2' "$tmp/o"
"$ROUSE" invoke digits --input "pixels=$DIGITS/samples/digit-7.npy" --version 1 --json >"$tmp/o" 2>"$tmp/e"
check "invoke --input --version 1 --json" grep -q '"model_version":"1"' "$tmp/o"

"$ROUSE" ls >"$tmp/o" 2>"$tmp/e"
check "ls lists digits at 2" grep -Eq '^digits +2 +2 ' "$tmp/o"
"$ROUSE" status digits >"$tmp/o" 2>"$tmp/e"
check "status shows the alias" grep -q 'latest -> v2' "$tmp/o"
check "status shows how the instance started" grep -Eq '^  pid [0-9]+  v[12]  (idle|busy)  started (zero|template|warm)$' "$tmp/o"
check "status lists the cold starts" grep -Eq '^  v[12] zero +[0-9.]+ ' "$tmp/o"
check "status says the template came from the zygote" grep -Eq '^  v[12] zero .* zygote$' "$tmp/o"
"$ROUSE" rollback digits >"$tmp/o" 2>"$tmp/e"
check "rollback moves to 1" grep -q 'now at version 1' "$tmp/o"
"$ROUSE" rollback digits >"$tmp/o" 2>"$tmp/e"; rc=$?
check "rollback past the first version exits 1" [ $rc -eq 1 ]
check "and says why" grep -q '409' "$tmp/e"

"$ROUSE" invoke nope --request "$DIGITS/samples/digit-7.json" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "unknown function exits 1" [ $rc -eq 1 ]
check "unknown function is a 404" grep -q '404' "$tmp/e"
"$ROUSE" invoke digits >"$tmp/o" 2>"$tmp/e"; rc=$?
check "invoke without a body is a usage error" [ $rc -eq 2 ]
"$ROUSE" ls --server http://127.0.0.1:1 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "unreachable server exits 1" [ $rc -eq 1 ]
check "and names the URL in one line" grep -q '^rouse ls: cannot reach http://127.0.0.1:1 .*is rouse serve running?$' "$tmp/e"
check "in exactly one line" [ "$(wc -l <"$tmp/e")" -eq 1 ]
"$ROUSE" ls --bogus >"$tmp/o" 2>"$tmp/e"; rc=$?
check "an unknown option is a usage error (exit 2)" [ $rc -eq 2 ]
check "with the usage on stderr" grep -q '^usage: rouse ls' "$tmp/e"

kill -TERM $pid
wait $pid; rc=$?
pid=
check "SIGTERM stops serve with status 0" [ $rc -eq 0 ]
exit $fail
