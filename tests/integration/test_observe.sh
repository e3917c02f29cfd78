#!/bin/sh
# Metrics, access log and traces against a real `rouse serve` on a free
# loopback port: GET /metrics checked by promtool and scraped by a real
# Prometheus server (1 s interval) whose HTTP API must count the calls made;
# the JSON access log, renamed and reopened on SIGHUP; W3C traceparent
# handling (joined, not sampled, malformed); the span tree exported over
# OTLP/HTTP to a collector inside the test; a client instrumented with the
# OpenTelemetry JS SDK whose span becomes the parent of rouse's; and
# collectors that refuse or never answer (spans counted as dropped, every
# call answered).
#
# Environment: ROUSE, DIGITS (examples/digits), OTEL_DIR (where the npm
# packages of otel/ are installed; skipped with one line when the registry
# cannot be reached).
set -u
here=$(cd "$(dirname "$0")" && pwd)
fail=0
check() { # check DESCRIPTION CONDITION...
    desc=$1; shift
    if "$@"; then echo "ok: $desc"; else echo "FAIL: $desc"; fail=1; fi
}
tmp=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
helper="python3 $here/observe_check.py"
body="$DIGITS/samples/digit-7.json"
for tool in prometheus promtool python3 curl; do
    command -v $tool >/dev/null 2>&1 || { echo "FAIL: $tool is not installed (scripts/setup)"; exit 1; }
done

# wait_for SECONDS COMMAND...: retries COMMAND every 0.1 s.
wait_for() {
    n=$(($1 * 10)); shift
    while ! "$@" 2>/dev/null; do
        n=$((n - 1)); [ $n -gt 0 ] || return 1
        sleep 0.1
    done
}

# start_collector NAME [hang]: an OTLP receiver; sets cport.
start_collector() {
    $helper receiver "$tmp/$1.port" "$tmp/$1.jsonl" ${2:-} &
    pids="$pids $!"
    wait_for 10 test -s "$tmp/$1.port" || { echo "FAIL: the collector did not start"; exit 1; }
    cport=$(cat "$tmp/$1.port")
}

# start_serve NAME ARGS...: serve with its own data dir; sets spid and url.
start_serve() {
    name=$1; shift
    "$ROUSE" serve --port 0 --data "$tmp/$name.data" --log-level warn "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    spid=$!
    pids="$pids $spid"
    wait_for 10 grep -q '^listening on ' "$tmp/$name.out" ||
        { echo "FAIL: serve did not start: $(cat "$tmp/$name.err")"; exit 1; }
    url="http://127.0.0.1:$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/$name.out")"
    "$ROUSE" deploy digits "$DIGITS/model.onnx" --server "$url" >/dev/null 2>"$tmp/deploy.err" ||
        { echo "FAIL: deploy: $(cat "$tmp/deploy.err")"; exit 1; }
}

# infer [CURL ARGS...]: one inference; the status on stdout, headers in $tmp/h.
infer() {
    curl -s -D "$tmp/h" -o "$tmp/b" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        "$@" --data-binary "@$body" "$url/v2/models/digits/infer"
}
header() { tr -d '\r' <"$tmp/h" | sed -n "s/^$1: //Ip"; }
metric() { # metric FAMILY{LABELS}: its value in a fresh scrape (empty when absent)
    curl -s "$url/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}

# --- options ------------------------------------------------------------------
"$ROUSE" serve --trace-sample-ratio 2 >/dev/null 2>"$tmp/e"; rc=$?
check "--trace-sample-ratio 2 is a usage error" [ $rc -eq 2 ]
"$ROUSE" serve --port 0 --data "$tmp/x" --otlp-endpoint ftp://collector >/dev/null 2>"$tmp/e"; rc=$?
check "--otlp-endpoint ftp://... is refused" [ $rc -eq 1 ]
check "and the message names the option" grep -q -- '--otlp-endpoint: expected an http' "$tmp/e"

# --- one serve with everything on --------------------------------------------
start_collector main
start_serve main --access-log "$tmp/access.log" --log-format json \
    --otlp-endpoint "http://127.0.0.1:$cport" --trace-sample-ratio 1
serve_pid=$spid
main_url=$url

code=$(infer); cold_tid=$(header traceresponse | cut -d- -f2)
check "the first call answers 200" [ "$code" = 200 ]
check "a traceresponse header names the new trace" [ ${#cold_tid} -eq 32 ]
check "the first call started its instance from zero" [ "$(header rouse-start)" = zero ]
joined_tid=4bf92f3577b34da6a3ce929d0e0e4736
code=$(infer -H "traceparent: 00-$joined_tid-00f067aa0ba902b7-01" -H 'tracestate: vendor=x')
tr=$(header traceresponse)
check "a call with a traceparent answers 200" [ "$code" = 200 ]
check "its trace is the caller's, sampled" sh -c "echo '$tr' | grep -Eq '^00-$joined_tid-[0-9a-f]{16}-01$'"
check "its span is new" [ "$(echo "$tr" | cut -d- -f3)" != 00f067aa0ba902b7 ]
unsampled_tid=0af7651916cd43dd8448eb211c80319c
infer -H "traceparent: 00-$unsampled_tid-b7ad6b7169203331-00" >/dev/null
check "the caller's unsampled flag is kept" sh -c "echo '$(header traceresponse)' | grep -q -- '-00$'"
code=$(infer -H "traceparent: 00-$unsampled_tid-b7ad6b7169203331-0x")
bad_tid=$(header traceresponse | cut -d- -f2)
check "a malformed traceparent is ignored: the call answers 200" [ "$code" = 200 ]
check "and gets a new trace" sh -c "[ ${#bad_tid} -eq 32 ] && [ $bad_tid != $unsampled_tid ]"
infer -H "traceparent: 00-00000000000000000000000000000000-b7ad6b7169203331-01" >/dev/null
check "an all-zero trace id starts a new trace" [ "$(header traceresponse | cut -d- -f2)" != 00000000000000000000000000000000 ]
infer -H "traceparent: ff-$joined_tid-b7ad6b7169203331-01" >/dev/null
check "version ff starts a new trace" [ "$(header traceresponse | cut -d- -f2)" != $joined_tid ]
i=0
while [ $i -lt 4 ]; do infer >/dev/null; i=$((i + 1)); done
n_ok=10
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "@$body" "$url/v2/models/nope/infer")
check "an unknown function is 404" [ "$code" = 404 ]

# The OpenTelemetry JS SDK as the caller.
otel_dir=${OTEL_DIR:-$tmp/otel}
client=""
mkdir -p "$otel_dir"
cp "$here/otel/package.json" "$here/otel/package-lock.json" "$here/otel/client.js" "$otel_dir/"
if [ -d "$otel_dir/node_modules/@opentelemetry/sdk-trace-node" ] ||
    (cd "$otel_dir" && timeout 180 npm ci --no-audit --no-fund >"$tmp/npm.log" 2>&1); then
    client=$(node "$otel_dir/client.js" "$url/v2/models/digits/infer" "$body")
    n_ok=$((n_ok + 1))
    c_tid=$(echo "$client" | python3 -c 'import json,sys; print(json.load(sys.stdin)["traceId"])')
    c_sid=$(echo "$client" | python3 -c 'import json,sys; print(json.load(sys.stdin)["spanId"])')
    check "the OpenTelemetry client's call answers 200" sh -c "echo '$client' | grep -q '\"status\":200'"
    check "rouse joins the client's trace" sh -c "echo '$client' | grep -q '\"traceresponse\":\"00-$c_tid-'"
else
    echo "skip: OpenTelemetry JS client: npm could not install @opentelemetry/sdk-trace-node ($(tail -1 "$tmp/npm.log"))"
fi

# --- metrics ------------------------------------------------------------------
curl -s "$url/metrics" >"$tmp/metrics.txt"
promtool check metrics <"$tmp/metrics.txt" >"$tmp/promtool.out" 2>&1; rc=$?
# The one lint note is about a name the metric's specification fixes
# (rouse_billed_milliseconds_total): any other problem fails.
others=$(grep -v 'rouse_billed_milliseconds_total use base unit "seconds"' "$tmp/promtool.out")
check "promtool check metrics finds nothing else ($rc: $others)" \
    sh -c "[ $rc -eq 0 -o $rc -eq 3 ] && [ -z '$others' ]"
check "rouse_invocations_total counts the calls" \
    [ "$(metric 'rouse_invocations_total{function="digits",version="1",status="200"}')" = "$n_ok" ]
check "the cold start from zero is counted" \
    [ "$(metric 'rouse_cold_starts_total{function="digits",kind="zero"}')" = 1 ]
check "the request histogram counts every call" \
    [ "$(metric 'rouse_request_duration_seconds_count{function="digits"}')" = "$n_ok" ]
check "one instance is idle" [ "$(metric 'rouse_instances{function="digits",state="idle"}')" = 1 ]
check "the instance's memory is read" [ "$(metric 'rouse_instance_memory_bytes{function="digits"}')" -gt 1000000 ]
check "billed ms: at least 1 per call" [ "$(metric 'rouse_billed_milliseconds_total{function="digits"}')" -ge "$n_ok" ]
check "process metrics" grep -Eq '^process_open_fds [0-9]+$' "$tmp/metrics.txt"
check "the loop's lag" grep -Eq '^rouse_event_loop_lag_seconds [0-9.e-]+$' "$tmp/metrics.txt"
check "no series for an unknown function" sh -c "! grep -q 'function=\"nope\"' '$tmp/metrics.txt'"

# --- the access log, rotated --------------------------------------------------
infer_lines() { [ "$(grep -c '"path":"/v2/models/[a-z]*/infer"' "$1")" = "$2" ]; }
check "one access log line per inference request" wait_for 5 infer_lines "$tmp/access.log" $((n_ok + 1))
check "every line is JSON with the fields" python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    keys = ["ts", "request_id", "trace_id", "method", "path", "status", "total_us", "bytes_in",
            "bytes_out"]
    if r["path"].endswith("/infer"):
        keys += ["function", "version", "start", "queue_us", "start_us", "run_us"]
    for k in keys:
        assert k in r, k
' "$tmp/access.log"
check "management requests are logged too" grep -q '"method":"PUT","path":"/v1/functions/digits","status":201' "$tmp/access.log"
check "and the scrapes" grep -q '"method":"GET","path":"/metrics","status":200' "$tmp/access.log"
check "the log names the joined trace" grep -q "\"trace_id\":\"$joined_tid\"" "$tmp/access.log"
check "and the 404" grep -q '"status":404,"function":"nope"' "$tmp/access.log"
mv "$tmp/access.log" "$tmp/access.log.1"
kill -HUP "$serve_pid"
sleep 0.3
infer >/dev/null
n_ok=$((n_ok + 1))
rid=$(header x-request-id)
check "after rename + SIGHUP the next line goes to a new file" wait_for 5 grep -q "$rid" "$tmp/access.log"
check "and not to the renamed one" sh -c "! grep -q '$rid' '$tmp/access.log.1'"
check "serve is still up" kill -0 "$serve_pid"

# --- the spans ----------------------------------------------------------------
n_traces() { python3 -c '
import json, sys
ids = set()
for line in open(sys.argv[1]):
    for rs in json.loads(line)["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            ids.update(s["traceId"] for s in ss["spans"])
print(len(ids))' "$tmp/main.jsonl"; }
# Every call is traced and sampled (ratio 1) but the one whose caller said
# not to; the 404 too (a request span alone).
have_traces() { [ "$(n_traces)" -ge "$n_ok" ]; }
check "every sampled trace reaches the collector" wait_for 10 have_traces
{
    printf '{"parents":{"%s":"","%s":"00f067aa0ba902b7","%s":""' "$cold_tid" "$joined_tid" "$bad_tid"
    [ -n "$client" ] && printf ',"%s":"%s"' "$c_tid" "$c_sid"
    printf '},"absent":["%s"],"cold":["%s"]}\n' "$unsampled_tid" "$cold_tid"
} >"$tmp/expect.json"
n_spans=$($helper spans "$tmp/main.jsonl" "$tmp/expect.json")
check "the span trees hold ($n_spans)" sh -c "echo '$n_spans' | grep -Eq '^[0-9]+$'"
check "rouse_trace_spans_exported_total matches what the collector got" \
    [ "$(metric rouse_trace_spans_exported_total)" = "$n_spans" ]
check "no span was dropped" [ "$(metric rouse_trace_spans_dropped_total)" = 0 ]

# --- a real Prometheus scrapes it ----------------------------------------------
pport=$($helper freeport)
cat >"$tmp/prometheus.yml" <<EOC
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: rouse
    static_configs:
      - targets: ["${url#http://}"]
EOC
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
    --web.listen-address="127.0.0.1:$pport" >"$tmp/prometheus.log" 2>&1 &
pids="$pids $!"
query() {
    curl -s "http://127.0.0.1:$pport/api/v1/query" \
        --data-urlencode 'query=sum(rouse_invocations_total{function="digits",status="200"})' |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
}
prom_has() { [ "$(query)" = "$n_ok" ]; }
check "Prometheus's query API counts the $n_ok calls" wait_for 30 prom_has
[ "$(query)" = "$n_ok" ] || echo "  Prometheus said '$(query)'; its log: $(tail -3 "$tmp/prometheus.log")"

# --- collectors that refuse or never answer -------------------------------------
# Calls are answered while the exporter fails; its spans are counted.
dead=$($helper freeport)
start_serve refused --otlp-endpoint "http://127.0.0.1:$dead" --metering off
ok=0; i=0
while [ $i -lt 20 ]; do [ "$(infer)" = 200 ] && ok=$((ok + 1)); i=$((i + 1)); done
check "refused collector: every call answers 200" [ $ok -eq 20 ]
dropped() { [ "$(metric rouse_trace_spans_dropped_total)" -ge $((20 * 3)) ]; }
check "refused collector: the spans are counted as dropped" wait_for 10 dropped
check "refused collector: nothing exported" [ "$(metric rouse_trace_spans_exported_total)" = 0 ]
check "--metering off: no usage is recorded (GET /v1/usage answers 503)" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/usage")" = 503 ]

start_collector stalled hang
start_serve stalled --otlp-endpoint "http://127.0.0.1:$cport"
infer >/dev/null
sleep 1.5 # the first batch (sent within 1 s) is now stuck in the stalled collector
ok=0; i=0
while [ $i -lt 20 ]; do [ "$(infer)" = 200 ] && ok=$((ok + 1)); i=$((i + 1)); done
check "stalled collector: every call answers 200" [ $ok -eq 20 ]
check "stalled collector: timed-out batches are counted as dropped" wait_for 15 dropped
infer >/dev/null
kill -HUP "$spid" # no access log: nothing to reopen, and serve stays up
check "SIGHUP without an access log changes nothing" [ "$(infer)" = 200 ]
# SIGTERM with spans queued for the stalled collector: serve still stops
# cleanly (the exporter gives up after one more failure).
stopped() { ! kill -0 "$1" 2>/dev/null; }
kill -TERM "$spid"
check "stalled collector: SIGTERM stops serve" wait_for 30 stopped "$spid"
wait "$spid"; rc=$?
check "and it exits 0" [ $rc -eq 0 ]

# A clean stop writes every queued line and span of the first serve.
rid=$(curl -s -D - -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary "@$body" \
    "${main_url}/v2/models/digits/infer" | tr -d '\r' | sed -n 's/^X-Request-Id: //Ip')
kill -TERM "$serve_pid"
check "SIGTERM stops the first serve" wait_for 30 stopped "$serve_pid"
wait "$serve_pid"; rc=$?
check "and it exits 0" [ $rc -eq 0 ]
check "its last access log line was written" grep -q "$rid" "$tmp/access.log"
usage_trace() {
    python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("SELECT count(*) FROM usage_records WHERE trace_id = ?", (sys.argv[2],)).fetchone()[0]
sys.exit(0 if n == 1 else 1)' "$tmp/main.data/rouse.db" "$1"
}
check "the usage record carries the trace id" usage_trace "$joined_tid"

exit $fail
