#!/bin/sh
# The client commands against a real `rouse serve` on a free loopback port
# with a temporary data directory: deploy (twice: unchanged), apply/diff/
# prune with a two-function manifest, invoke with every input kind, every
# verb, logs of a crashing instance (also followed), bench with a small
# count (warm and --cold), the error conventions, and a graceful stop
# (SIGTERM -> exit 0).
set -u
fail=0
check() { # check DESCRIPTION CONDITION...
    desc=$1; shift
    if "$@"; then echo "ok: $desc"; else echo "FAIL: $desc"; fail=1; fi
}
tmp=$(mktemp -d)
pid=
follower=
cleanup() {
    [ -n "$follower" ] && kill "$follower" 2>/dev/null
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# debug: templates and instances then print lines of their own, which the
# function's log must capture.
"$ROUSE" serve --port 0 --data "$tmp/data" --log-level debug >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
i=0
until grep -q '^listening on ' "$tmp/serve.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then echo "FAIL: serve did not start"; exit 1; fi
    sleep 0.1
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/serve.out")
export ROUSE_SERVER="http://127.0.0.1:$port"
export NO_COLOR=1
model="$DIGITS/model.onnx"
R="$ROUSE"

# --- deploy --------------------------------------------------------------------
"$R" deploy digits "$model" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "deploy exits 0" [ $rc -eq 0 ]
check "deploy reports version 1" grep -q '^digits: deployed version 1$' "$tmp/o"
check "deploy uploads the model the server lacks" grep -q '^digits: uploaded sha256:[0-9a-f]\{64\}$' "$tmp/o"
check "deploy prints the endpoint" grep -q "^endpoint: http://127.0.0.1:$port/v2/models/digits/infer$" "$tmp/o"
"$R" deploy digits "$model" >"$tmp/o" 2>"$tmp/e"
check "deploying again is unchanged" grep -q '^digits: unchanged (version 1)$' "$tmp/o"
check "and uploads nothing" sh -c "! grep -q uploaded '$tmp/o'"
"$R" deploy digits "$model" --max 2 --timeout 5000 --set scaling.concurrency=1 >"$tmp/o" 2>"$tmp/e"
check "changed settings make version 2" grep -q 'deployed version 2' "$tmp/o"
"$R" deploy digits "$model" --set bogus=1 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "an unknown field is the server's 400, exit 1" [ $rc -eq 1 ]
check "naming the field" grep -q '^rouse deploy: bogus: unknown field (HTTP 400)$' "$tmp/e"
"$R" deploy digits16 "$model" --precision bf16 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "deploy --precision bf16 exits 0" [ $rc -eq 0 ]
check "and deploys version 1" grep -q '^digits16: deployed version 1$' "$tmp/o"
"$R" deploy digits16 "$model" --set precision=bf16 >"$tmp/o" 2>"$tmp/e"
check "the same precision again is unchanged" grep -q '^digits16: unchanged (version 1)$' "$tmp/o"
"$R" invoke digits16 --request "$DIGITS/samples/digit-7.json" >"$tmp/o" 2>"$tmp/e"
check "bf16 gives digit 7 its class" sh -c "grep -A2 '^logits' '$tmp/o' | grep -Eq '^  7 +[0-9.]+$'"
"$R" rm digits16 >"$tmp/o" 2>"$tmp/e"
"$R" deploy digits8 "$model" --precision int8 --calibrate "$DIGITS/calibration" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "deploy --precision int8 --calibrate exits 0" [ $rc -eq 0 ]
check "and uploads the calibration samples" grep -q '^digits8: uploaded sha256:[0-9a-f]\{64\} (pixels.npy)$' "$tmp/o"
check "and deploys version 1" grep -q '^digits8: deployed version 1$' "$tmp/o"
check "and prints the accuracy the server measured" sh -c "grep -q '^precision: int8$' '$tmp/o' && grep -Eq '^  logits +top-1 agreement +[0-9.]+%' '$tmp/o'"
"$R" deploy digits8 "$model" --precision int8 --calibrate "$DIGITS/calibration" >"$tmp/o" 2>"$tmp/e"
check "the same samples again are unchanged, nothing uploaded" sh -c "grep -q '^digits8: unchanged (version 1)$' '$tmp/o' && ! grep -q uploaded '$tmp/o'"
"$R" invoke digits8 --request "$DIGITS/samples/digit-7.json" >"$tmp/o" 2>"$tmp/e"
check "int8 gives digit 7 its class" sh -c "grep -A2 '^logits' '$tmp/o' | grep -Eq '^  7 +[0-9.]+$'"
"$R" rm digits8 >"$tmp/o" 2>"$tmp/e"
mkdir -p "$tmp/nocal"
"$R" deploy digits8 "$model" --precision int8 --calibrate "$tmp/nocal" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "--calibrate of a folder without .npy exits 1 saying so" sh -c "[ $rc -eq 1 ] && grep -q 'no .npy file' '$tmp/e'"
"$R" deploy digits8 "$model" --precision int8 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "int8 without --calibrate is the server's 400" sh -c "[ $rc -eq 1 ] && grep -q 'calibration: missing' '$tmp/e'"
"$R" deploy digits16 "$model" --precision fp16 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "deploy --precision fp16 is a usage error" [ $rc -eq 2 ]
"$R" deploy digits "$tmp/none.onnx" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a missing model file exits 1 naming it" sh -c "[ $rc -eq 1 ] && grep -q none.onnx '$tmp/e'"

# --- invoke: every input kind ------------------------------------------------------
samples="$DIGITS/samples"
"$R" invoke digits --request "$samples/digit-7.json" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "invoke --request exits 0" [ $rc -eq 0 ]
check "invoke names the version" grep -q '^digits version 2' "$tmp/o"
check "invoke prints the top class of a classifier" sh -c "grep -A2 '^logits' '$tmp/o' | grep -Eq '^  7 +[0-9.]+$'"
"$R" invoke digits --input "pixels=$samples/digit-7.npy" --version 1 --json >"$tmp/o" 2>"$tmp/e"
check "invoke .npy --version 1 --json prints the OIP response" grep -q '"model_version":"1"' "$tmp/o"
"$R" invoke digits --input "pixels=$DIGITS/test_data_set_0/input_0.pb" --top 3 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "invoke .pb exits 0" [ $rc -eq 0 ]
check "a batch output gets a summary" grep -q '^logits  FP32 \[10,10\]$' "$tmp/o"
python3 - "$samples/digit-7.json" "$tmp" <<'EOF'
import json, struct, sys
inp = json.load(open(sys.argv[1]))["inputs"][0]
d = sys.argv[2]
json.dump(inp, open(d + "/obj.json", "w"))                 # an OIP input object
json.dump([inp["data"]], open(d + "/nested.json", "w"))     # a nested array, shape [1,64]
open(d + "/pixels.raw", "wb").write(struct.pack("<64f", *inp["data"]))
EOF
for kind in obj.json nested.json; do
    "$R" invoke digits --input "pixels=$tmp/$kind" >"$tmp/o" 2>"$tmp/e"; rc=$?
    check "invoke $kind finds 7" sh -c "[ $rc -eq 0 ] && grep -A2 '^logits' '$tmp/o' | grep -Eq '^  7 '"
done
"$R" invoke digits --input "pixels=$tmp/pixels.raw" --shape 1x64 --dtype FP32 --out "$tmp/outs" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "invoke raw --shape --dtype finds 7" sh -c "[ $rc -eq 0 ] && grep -A2 '^logits' '$tmp/o' | grep -Eq '^  7 '"
check "--out writes each output as .npy" sh -c "head -c 6 '$tmp/outs/logits.npy' | grep -q NUMPY && [ -s '$tmp/outs/probabilities.npy' ]"
"$R" invoke digits --input "pixels=$tmp/pixels.raw" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a raw input without --shape is an error naming the file" sh -c "[ $rc -eq 1 ] && grep -q 'pixels.raw: a raw input needs --shape and --dtype' '$tmp/e'"
"$R" invoke digits --input "pixels=$tmp/pixels.raw" --shape 2x64 --dtype FP32 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a raw input of the wrong size says so" sh -c "[ $rc -eq 1 ] && grep -q 'takes 512' '$tmp/e'"
"$R" invoke digits -q --request "$samples/digit-3.json" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "-q prints nothing" sh -c "[ $rc -eq 0 ] && [ ! -s '$tmp/o' ]"

# --- the read verbs ------------------------------------------------------------------
"$R" ls >"$tmp/o" 2>"$tmp/e"
check "ls has a header" grep -Eq '^NAME +LATEST +VERSIONS +CREATED$' "$tmp/o"
check "ls lists digits at 2" grep -Eq '^digits +2 +2 ' "$tmp/o"
"$R" ls --json >"$tmp/o"
check "ls --json is the server's JSON" grep -q '^{"functions":\[{"name":"digits","latest":2,"versions":2,' "$tmp/o"
"$R" status digits >"$tmp/o" 2>"$tmp/e"
check "status shows the alias" grep -q 'latest -> v2' "$tmp/o"
check "status counts instances by state" grep -Eq '^instances: [0-9]+ (idle|busy)' "$tmp/o"
check "status shows how the instance started" grep -Eq '^  pid [0-9]+  v[12]  (idle|busy)  started (zero|template|warm)$' "$tmp/o"
check "status lists the cold starts" grep -Eq '^  v[12] zero +[0-9.]+ ' "$tmp/o"
"$R" alias digits canary 1:90,2:10 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "alias sets a weighted split" sh -c "[ $rc -eq 0 ] && grep -q '^digits: alias canary -> v1 (weight 90) v2 (weight 10)$' '$tmp/o'"
"$R" alias digits canary 1:x >"$tmp/o" 2>"$tmp/e"; rc=$?
check "alias with bad routes is a usage error" [ $rc -eq 2 ]
"$R" alias digits stable 9 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "alias to a version that does not exist is the server's error" sh -c "[ $rc -eq 1 ] && grep -q 'HTTP 4' '$tmp/e'"
"$R" versions digits >"$tmp/o" 2>"$tmp/e"
check "versions lists both with their aliases" sh -c "grep -Eq '^ +1 .*canary:90 ' '$tmp/o' && grep -Eq '^ +2 .*canary:10,latest ' '$tmp/o'"
"$R" invoke digits --version canary --request "$samples/digit-7.json" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "invoke through an alias" [ $rc -eq 0 ]
"$R" rollback digits >"$tmp/o" 2>"$tmp/e"
check "rollback moves to 1" grep -q 'now at version 1' "$tmp/o"
"$R" rollback digits >"$tmp/o" 2>"$tmp/e"; rc=$?
check "rollback past the first version exits 1" [ $rc -eq 1 ]
check "with the server's message" grep -q '(HTTP 409)$' "$tmp/e"
"$R" version >"$tmp/o" 2>"$tmp/e"
check "version names client and server" sh -c "grep -q '^client: rouse ' '$tmp/o' && grep -q '^server: rouse .* at http://127.0.0.1:$port$' '$tmp/o'"
"$R" version --json >"$tmp/o"
check "version --json" grep -q '^{"client":"[0-9.]*","server":"[0-9.]*"' "$tmp/o"

# --- logs of a crashing instance -------------------------------------------------------
"$R" logs digits --follow --json >"$tmp/follow" 2>"$tmp/follow.err" &
follower=$!
"$R" invoke digits --request "$samples/digit-7.json" -q
ipid=$("$R" status digits | awk '/^  pid .* (idle|busy)  started/ {print $2; exit}')
check "an instance runs" [ -n "$ipid" ]
# SIGABRT: a crash that sanitizer builds do not turn into an exit status.
kill -ABRT "$ipid" 2>/dev/null
i=0
until grep -q "instance $ipid ended" "$tmp/follow" 2>/dev/null || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.1; done
"$R" logs digits >"$tmp/o" 2>"$tmp/e"; rc=$?
check "logs exits 0" [ $rc -eq 0 ]
check "logs reports the crash with its signal" grep -Eq "^[0-9T:.-]+Z v[0-9]+ pid $ipid instance $ipid ended \(signal 6, Aborted\)" "$tmp/o"
check "logs --follow got it as it happened" grep -q "\"stream\":\"crash\",\"text\":\"instance $ipid ended (signal 6" "$tmp/follow"
"$R" logs digits --since 1h --json >"$tmp/o"
check "logs captured what the template printed" grep -q '"stream":"output","text":".*debug template: ' "$tmp/o"
check "and serve's stderr still shows it, saying whose" grep -Eq '^digits v[0-9]+ pid [0-9]+: .*debug template: ' "$tmp/serve.err"
check "logs --since --json" grep -q "\"pid\":$ipid,\"stream\":\"crash\"" "$tmp/o"
"$R" logs digits --since yesterday >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a bad --since is the server's 400" sh -c "[ $rc -eq 1 ] && grep -q '^rouse logs: since:' '$tmp/e'"
"$R" logs nope >"$tmp/o" 2>"$tmp/e"; rc=$?
check "logs of an unknown function is a 404" sh -c "[ $rc -eq 1 ] && grep -q \"no function named 'nope' (HTTP 404)\" '$tmp/e'"

# --- bench --------------------------------------------------------------------------------
"$R" bench digits -n 20 -c 3 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "bench exits 0" [ $rc -eq 0 ]
check "bench counts 20 requests" grep -q '^digits: 20 requests in ' "$tmp/o"
check "bench prints percentiles" grep -Eq '^latency \(ms\): min [0-9.]+  p50 [0-9.]+  p90 [0-9.]+  p99 [0-9.]+  max [0-9.]+' "$tmp/o"
check "bench draws a histogram" grep -Eq '^ +[0-9.]+ - +[0-9.]+ \|#* [0-9]+$' "$tmp/o"
check "bench counts statuses" grep -q '^status:  200 20$' "$tmp/o"
check "bench counts start kinds" grep -Eq '^starts:  (warm|template|zero) ' "$tmp/o"
# A function of its own: the warm run above may have left an instance
# starting, which scale-to-zero leaves alone.
"$R" deploy cold "$model" -q
"$R" bench cold --cold -n 3 --input "pixels=$samples/digit-7.npy" --json >"$tmp/o" 2>"$tmp/e"; rc=$?
check "bench --cold starts every request from zero" sh -c "[ $rc -eq 0 ] && grep -q '\"starts\":{\"zero\":3}' '$tmp/o' && grep -q '\"statuses\":{\"200\":3}' '$tmp/o'"
"$R" bench digits -n 5 -d 1s >"$tmp/o" 2>"$tmp/e"; rc=$?
check "bench -n with -d is a usage error" [ $rc -eq 2 ]

# --- manifests: apply, diff, prune ------------------------------------------------------------
mkdir -p "$tmp/m/models"
cp "$model" "$tmp/m/models/digits.onnx"
cat >"$tmp/m/rouse.yaml" <<'EOF'
name: shop
functions:
  shop-a:
    model: models/digits.onnx
    memory_mb: 256
    scaling:
      max: ${SHOP_MAX:-2}
    aliases:
      stable: 1
  shop-b:
    model: models/digits.onnx
    timeout_ms: 5000
EOF
"$R" diff -f "$tmp/m/rouse.yaml" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "diff before apply exits 1" [ $rc -eq 1 ]
check "diff shows the new functions" sh -c "grep -q '^+ shop-a: new function$' '$tmp/o' && grep -q '^+ shop-b: new function$' '$tmp/o'"
check "diff shows fields" grep -q '^    + scaling.max: 2$' "$tmp/o"
"$R" apply -f "$tmp/m/rouse.yaml" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "apply exits 0" [ $rc -eq 0 ]
check "apply deploys both" sh -c "grep -q '^shop-a: deployed version 1$' '$tmp/o' && grep -q '^shop-b: deployed version 1$' '$tmp/o'"
check "apply sets the alias" grep -q '^shop-a: alias stable -> 1:1$' "$tmp/o"
"$R" apply -f "$tmp/m/rouse.yaml" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "applying twice changes nothing" sh -c "[ $rc -eq 0 ] && grep -q '^shop-a: unchanged (version 1)$' '$tmp/o' && grep -q '^shop-b: unchanged (version 1)$' '$tmp/o' && [ \$(wc -l <'$tmp/o') -eq 2 ]"
"$R" diff -f "$tmp/m/rouse.yaml" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "diff after apply: no changes, exit 0" sh -c "[ $rc -eq 0 ] && grep -q '^no changes$' '$tmp/o'"
SHOP_MAX=3 "$R" diff -f "$tmp/m/rouse.yaml" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "\${VAR} makes a field-by-field diff" sh -c "[ $rc -eq 1 ] && grep -q '^    ~ scaling.max: 2 -> 3$' '$tmp/o'"
SHOP_MAX=3 "$R" diff -f "$tmp/m/rouse.yaml" --json >"$tmp/o" 2>"$tmp/e"
check "diff --json" grep -q '^{"manifest":"shop","changes":\[{"function":"shop-a","change":"update","from_version":1,"fields":\[{"path":"scaling.max","from":2,"to":3}\]}\]}$' "$tmp/o"
"$R" status shop-a --json >"$tmp/o"
check "the manifest's name is stored as the label" grep -q '"manifest":"shop"' "$tmp/o"
sed 's/^  shop-b:/  shop-c:/' "$tmp/m/rouse.yaml" >"$tmp/m/rouse2.yaml"
"$R" diff -f "$tmp/m/rouse2.yaml" --prune >"$tmp/o" 2>"$tmp/e"; rc=$?
check "diff --prune lists the function the file dropped" sh -c "[ $rc -eq 1 ] && grep -q '^- shop-b: deleted (no longer in ' '$tmp/o'"
"$R" apply -f "$tmp/m/rouse2.yaml" --prune >"$tmp/o" 2>"$tmp/e"; rc=$?
check "apply --prune deletes it" sh -c "[ $rc -eq 0 ] && grep -q '^shop-b: deleted (no longer in ' '$tmp/o'"
"$R" ls >"$tmp/o"
check "prune left other functions alone" sh -c "grep -q '^digits ' '$tmp/o' && grep -q '^cold ' '$tmp/o' && grep -q '^shop-c ' '$tmp/o' && ! grep -q '^shop-b ' '$tmp/o'"
printf 'functions:\n  x:\n    model: models/digits.onnx\n    scaling:\n      max: many\n' >"$tmp/m/bad.yaml"
"$R" apply -f "$tmp/m/bad.yaml" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a wrong type names file, line and key" sh -c "[ $rc -eq 1 ] && grep -q 'bad.yaml:5: functions.x.scaling.max: must be an integer' '$tmp/e'"
check "and nothing was deployed" sh -c "! '$R' ls | grep -q '^x '"
printf 'functions:\n  x:\n    model: models/digits.onnx\n    memroy_mb: 3\n' >"$tmp/m/bad.yaml"
"$R" apply -f "$tmp/m/bad.yaml" >"$tmp/o" 2>"$tmp/e"
check "an unknown key names file, line and key" grep -q 'bad.yaml:4: functions.x.memroy_mb: unknown field' "$tmp/e"
printf 'functions:\n  x:\n    model: models/nothere.onnx\n' >"$tmp/m/bad.yaml"
"$R" apply -f "$tmp/m/bad.yaml" >"$tmp/o" 2>"$tmp/e"
check "a missing model names file, line and key" grep -q 'bad.yaml:3: functions.x.model: no model file ' "$tmp/e"
printf 'functions:\n  x:\n    model: models/digits.onnx\n    memory_mb: ${ROUSE_TEST_UNSET}\n' >"$tmp/m/bad.yaml"
"$R" apply -f "$tmp/m/bad.yaml" >"$tmp/o" 2>"$tmp/e"
check "an unset variable names file, line and key" grep -q 'bad.yaml:4: functions.x.memory_mb: environment variable ROUSE_TEST_UNSET is not set' "$tmp/e"
printf 'name: shop\nfunctions: [\n' >"$tmp/m/bad.yaml"
"$R" diff -f "$tmp/m/bad.yaml" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "malformed YAML is an error with its line" sh -c "[ $rc -eq 1 ] && grep -q 'bad.yaml:[0-9]*: not valid YAML' '$tmp/e'"
"$R" apply -f "$tmp/m/rouse.yaml" --prune --bogus >"$tmp/o" 2>"$tmp/e"; rc=$?
check "apply with an unknown option is a usage error" [ $rc -eq 2 ]

# --- rm and the error conventions -----------------------------------------------------------
"$R" rm shop-c >"$tmp/o" 2>"$tmp/e"; rc=$?
check "rm deletes" sh -c "[ $rc -eq 0 ] && grep -q '^shop-c: deleted$' '$tmp/o'"
"$R" rm shop-c >"$tmp/o" 2>"$tmp/e"; rc=$?
check "rm of an unknown function exits 1" [ $rc -eq 1 ]
"$R" invoke nope --request "$samples/digit-7.json" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "an unknown function exits 1 with the server's message" sh -c "[ $rc -eq 1 ] && grep -q '(HTTP 404)$' '$tmp/e'"
"$R" invoke digits >"$tmp/o" 2>"$tmp/e"; rc=$?
check "invoke without inputs is a usage error" sh -c "[ $rc -eq 2 ] && grep -q '^usage: rouse invoke' '$tmp/e'"
"$R" ls --server http://127.0.0.1:1 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "an unreachable server exits 1" [ $rc -eq 1 ]
check "in one line naming the URL" sh -c "[ \$(wc -l <'$tmp/e') -eq 1 ] && grep -q '^rouse ls: cannot reach http://127.0.0.1:1 .*is rouse serve running?$' '$tmp/e'"
ROUSE_SERVER=http://127.0.0.1:1 "$R" deploy x "$model" >"$tmp/o" 2>"$tmp/e"; rc=$?
check "ROUSE_SERVER is used" sh -c "[ $rc -eq 1 ] && grep -q 'cannot reach http://127.0.0.1:1' '$tmp/e'"
"$R" ls --server ftp://x >"$tmp/o" 2>"$tmp/e"; rc=$?
check "a bad server URL is a usage error" [ $rc -eq 2 ]
"$R" ls --bogus >"$tmp/o" 2>"$tmp/e"; rc=$?
check "an unknown option is a usage error (exit 2)" [ $rc -eq 2 ]
check "with the usage on stderr" grep -q '^usage: rouse ls' "$tmp/e"
"$R" ls --api-key sekrit >"$tmp/o" 2>"$tmp/e"; rc=$?
check "--api-key is accepted (sent as a bearer token)" [ $rc -eq 0 ]
"$R" ls --server https://127.0.0.1:$port >"$tmp/o" 2>"$tmp/e"; rc=$?
check "https to a plain server fails in one line" sh -c "[ $rc -eq 1 ] && [ \$(wc -l <'$tmp/e') -eq 1 ]"

# A server that redirects every POST: the client does not repeat it there.
python3 -c '
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.send_response(307)
        self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_port, flush=True)
s.serve_forever()
' >"$tmp/redirect.port" &
redirector=$!
i=0
until [ -s "$tmp/redirect.port" ] || [ $i -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
"$R" rollback digits --server "http://127.0.0.1:$(cat "$tmp/redirect.port")" >"$tmp/o" 2>"$tmp/e"; rc=$?
kill "$redirector" 2>/dev/null
check "a redirected POST is refused, not repeated" sh -c "[ $rc -eq 1 ] && grep -q 'was redirected (307) to http://127.0.0.1:9/elsewhere; not repeating a POST elsewhere' '$tmp/e'"

kill "$follower" 2>/dev/null
wait "$follower" 2>/dev/null
follower=
kill -TERM $pid
wait $pid; rc=$?
pid=
check "SIGTERM stops serve with status 0" [ $rc -eq 0 ]
exit $fail
