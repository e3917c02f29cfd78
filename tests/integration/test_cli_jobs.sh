#!/bin/sh
# The asynchronous client commands (invoke --async, job [--wait], jobs,
# job retry, batch --wait) against a real `rouse serve` on a free loopback
# port with a temporary data directory.
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
"$ROUSE" deploy digits "$DIGITS/model.onnx" >/dev/null 2>&1

"$ROUSE" invoke digits --async --request "$DIGITS/samples/digit-7.json" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "invoke --async exits 0" [ $rc -eq 0 ]
check "invoke --async prints the job id" grep -Eq '^[0-9]+$' "$tmp/o"
id=$(cat "$tmp/o")
"$ROUSE" job "$id" --wait >"$tmp/o" 2>"$tmp/e"; rc=$?
check "job --wait exits 0 once it succeeded" [ $rc -eq 0 ]
check "job --wait prints the response" grep -q '"status":"succeeded".*"response":{' "$tmp/o"
"$ROUSE" invoke digits --async --input "pixels=$DIGITS/samples/digit-3.npy" >"$tmp/o" 2>"$tmp/e"
id2=$(cat "$tmp/o")
"$ROUSE" job "$id2" --wait >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a binary request as a job succeeds" [ $rc -eq 0 ]

# A batch of three lines, the second one bad.
tr -d '\n' <"$DIGITS/samples/digit-0.json" >"$tmp/req.jsonl"; echo >>"$tmp/req.jsonl"
echo '{"inputs":[{"name":"pixels","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}' >>"$tmp/req.jsonl"
tr -d '\n' <"$DIGITS/samples/digit-1.json" >>"$tmp/req.jsonl"; echo >>"$tmp/req.jsonl"
"$ROUSE" batch digits "$tmp/req.jsonl" --wait >"$tmp/o" 2>"$tmp/e"; rc=$?
check "batch with a bad line exits 1" [ $rc -eq 1 ]
check "batch prints its id" grep -Eq '^[0-9]+$' "$tmp/o"
check "batch reports progress in plain lines off a terminal" grep -q '^3/3 done (2 succeeded, 1 failed)$' "$tmp/e"
check "batch writes the results in input order" sh -c "[ \$(wc -l <'$tmp/req.out.jsonl') -eq 3 ] && sed -n 2p '$tmp/req.out.jsonl' | grep -qx null && sed -n 1p '$tmp/req.out.jsonl' | grep -q outputs"
check "batch writes the errors" grep -q '"index":1,' "$tmp/req.out.jsonl.errors.jsonl"

"$ROUSE" jobs digits --status failed >"$tmp/o" 2>"$tmp/e"; rc=$?
check "jobs --status failed exits 0" [ $rc -eq 0 ]
check "jobs lists the dead letter with its error" grep -Eq '^[0-9]+ +failed +1 +input .pixels.: shape' "$tmp/o"
dead=$(awk 'NR==2 {print $1}' "$tmp/o")
"$ROUSE" job retry "$dead" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "job retry re-drives a dead letter" [ $rc -eq 0 ]
check "job retry shows it queued" grep -q '"status":"queued"' "$tmp/o"
"$ROUSE" job "$dead" --wait >"$tmp/o" 2>"$tmp/e"; rc=$?
check "job --wait exits 1 when it fails again" [ $rc -eq 1 ]
"$ROUSE" job retry "$id" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "job retry of a succeeded job exits 1 with 409" sh -c "[ $rc -eq 1 ] && grep -q 409 '$tmp/e'"
"$ROUSE" job 99999 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "an unknown job exits 1 with 404" sh -c "[ $rc -eq 1 ] && grep -q 404 '$tmp/e'"
"$ROUSE" job abc >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a job id that is not a number is a usage error" [ $rc -eq 2 ]

kill -TERM $pid; wait $pid; rc=$?; pid=
check "serve stops with 0" [ $rc -eq 0 ]
exit $fail
