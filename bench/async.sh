#!/bin/sh
# Asynchronous inference against synchronous, on one `rouse serve`:
#   sync:     wrk POSTs mlp requests over CONNS keep-alive connections for
#             DURATION seconds (after a warm-up): requests/s answered.
#   accepted: the same request with Prefer: respond-async, to a function of
#             the same model: jobs/s answered 202, each committed durably
#             (group commit, synchronous=FULL) before its answer, while the
#             dispatcher drains them on the instances.
#   drain:    a batch file of BATCH (10,000) mlp requests, uploaded and
#             posted to a third function at zero: jobs/s from the POST to
#             the batch's completion (results and output blob written),
#             polled every 5 ms by one process over one connection, and its
#             ratio to the sync rate; and when, from the POST, the batch was
#             accepted, its first and its last item done.
# Every function has scaling.max = the core count (MAX). The mlp request is
# one 784-float input (a JSON body, values from a fixed seed).
#
# CPU per request, which wall time on a shared machine is not: for the
# synchronous run and the batch, the CPU serve's loop thread, its registry
# writer thread and the function's instances used (utime + stime from
# /proc), divided by the requests answered or the batch's items; and wrk's
# own per synchronous request (which the batch does not pay); and the
# voluntary context switches per request or item of the loop, the writer
# and the instances (each a sleep and a wake-up).
#
# Prints a Markdown table. A benchmark, not a test: wrk shares the cores
# with serve and its instances; measure on a quiet machine and say its load.
#
#   bench/async.sh
#
# Environment: ROUSE (default build/rouse), SHARED (default ../shared beside
# the source tree), DURATION (seconds, 10), WARMUP (2), CONNS (32), THREADS
# (wrk threads, 1), BATCH (10000), MAX (instances, default the core count).
# Needs wrk (`scripts/setup bench`), curl and python3.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
duration=${DURATION:-10}
warmup=${WARMUP:-2}
conns=${CONNS:-32}
wrk_threads=${THREADS:-1}
batch=${BATCH:-10000}
max=${MAX:-$(nproc)}
lua=$root/bench/async_post.lua
model=$shared/models/mlp/model.onnx

die() { echo "async: $*" >&2; exit 1; }
say() { echo "async: $*" >&2; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
[ -f "$model" ] || die "no mlp model at $model"
command -v wrk >/dev/null 2>&1 || die "wrk is not installed (scripts/setup bench)"
command -v curl >/dev/null 2>&1 || die "curl is not installed"

. "$root/bench/serve_lib.sh"
tmp=$(mktemp -d)
trap serve_cleanup EXIT

serve_start

python3 - "$tmp" "$batch" <<'PY'
import json, random, sys
d, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(0)
body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 784],
                    "data": [round(rnd.random(), 4) for _ in range(784)]}]}
line = json.dumps(body, separators=(",", ":"))
open(d + "/body.json", "w").write(line)
with open(d + "/batch.jsonl", "w") as f:
    for _ in range(n):
        f.write(line + "\n")
PY

digest=$(serve_upload "$model")
deploy() { # deploy NAME [ASYNC-SECTION]
    serve_deploy "$1" "{\"model\":\"$digest\",\"scaling\":{\"max\":$max}${2:+,$2}}"
}
deploy mlp
deploy mlpa '"async":{"queue_limit":10000000}'
deploy mlpb

run_wrk() { # run_wrk PATH ASYNC SECONDS -> RESULT line; wrk's CPU (s) in $tmp/wrk.cpu
    (
        BODY_FILE=$tmp/body.json ASYNC=$2 wrk -t "$wrk_threads" -c "$conns" -d "${3}s" -s "$lua" \
            "$url$1" | grep '^RESULT'
        times >"$tmp/times" # its second line: the children's (wrk's) user and system time
    )
    sed -n '2s/^\([0-9]*\)m\([0-9.]*\)s \([0-9]*\)m\([0-9.]*\)s$/\1 \2 \3 \4/p' "$tmp/times" |
        awk '{ print $1 * 60 + $2 + $3 * 60 + $4 }' >"$tmp/wrk.cpu"
}
# CPU ticks so far: serve's loop thread, its registry writer, the rest of
# serve, and its instances (its children, live and reaped), as "k=v ...";
# and the voluntary context switches of each (vcs_loop=..., vcsi_PID= per
# instance; live processes and threads only): a sleep and its wake-up,
# which on a virtual machine costs more than a small model's inference.
cpu() {
    python3 - "$pid" <<'PY'
import os, sys
pid = sys.argv[1]
def ticks(path):
    s = open(path).read()
    f = s[s.rindex(')') + 2:].split()
    return int(f[11]) + int(f[12])
def vcs(path):
    for line in open(path):
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0
t = {"loop": 0, "writer": 0, "other": 0, "instances": 0}
for k in list(t):
    t["vcs_" + k] = 0
for tid in os.listdir(f"/proc/{pid}/task"):
    try:
        name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
        k = "loop" if tid == pid else "writer" if name == "rouse-registry" else "other"
        t[k] += ticks(f"/proc/{pid}/task/{tid}/stat")
        t["vcs_" + k] += vcs(f"/proc/{pid}/task/{tid}/status")
    except OSError:
        pass
s = open(f"/proc/{pid}/stat").read()
t["instances"] = sum(int(x) for x in s[s.rindex(')') + 2:].split()[13:15])  # reaped children
for p in os.listdir("/proc"):
    try:
        s = open(f"/proc/{p}/stat").read()
        if s[s.rindex(')') + 2:].split()[1] == pid:
            t["instances"] += ticks(f"/proc/{p}/stat")
            t["vcsi_" + p] = vcs(f"/proc/{p}/status")
    except (OSError, ValueError):
        pass
print(" ".join(f"{k}={v}" for k, v in t.items()))
PY
}
# per_req BEFORE AFTER N KEY -> microseconds of CPU per request
# switches BEFORE AFTER N KEY -> voluntary context switches per request
switches() {
    python3 -c "
import sys
a = dict(x.split('=') for x in sys.argv[1].split()); b = dict(x.split('=') for x in sys.argv[2].split())
k = 'vcs_' + sys.argv[4]
if k == 'vcs_instances':  # per process: those started meanwhile count whole, those gone not at all
    d = sum(int(v) - int(a.get(p, 0)) for p, v in b.items() if p.startswith('vcsi_'))
else:
    d = int(b[k]) - int(a[k])
print(f'{d / int(sys.argv[3]):.2f}')" "$1" "$2" "$3" "$4"
}
per_req() {
    python3 -c "
import os, sys
a = dict(x.split('=') for x in sys.argv[1].split()); b = dict(x.split('=') for x in sys.argv[2].split())
hz = os.sysconf('SC_CLK_TCK')
print(f'{(int(b[sys.argv[4]]) - int(a[sys.argv[4]])) * 1e6 / hz / int(sys.argv[3]):.0f}')" "$1" "$2" "$3" "$4"
}
field() { echo "$1" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }

say "sync: warm-up ${warmup}s, then ${duration}s at $conns connections"
run_wrk /v2/models/mlp/infer 0 "$warmup" >/dev/null
c0=$(cpu)
sync=$(run_wrk /v2/models/mlp/infer 0 "$duration")
c1=$(cpu)
wrk_cpu=$(cat "$tmp/wrk.cpu")
say "accepted: warm-up ${warmup}s, then ${duration}s at $conns connections"
run_wrk /v2/models/mlpa/infer 1 "$warmup" >/dev/null
acc=$(run_wrk /v2/models/mlpa/infer 1 "$duration")

# Let the accepted jobs drain before the batch runs.
while curl -sf "$url/v1/jobs?function=mlpa&status=queued&limit=1" | grep -q '"id"'; do sleep 0.5; done
while curl -sf "$url/v1/jobs?function=mlpa&status=running&limit=1" | grep -q '"id"'; do sleep 0.2; done

say "drain: a batch of $batch requests"
input=$(serve_upload "$tmp/batch.jsonl")
# One process posts the batch and polls it every 5 ms over one keep-alive
# connection (a curl started per poll cost tens of ms of CPU per poll on
# the shared cores), started before the clock: it prints the batch id,
# the seconds from the POST to its 202, to the first item's success, to
# the last item's and to the output written, and its own CPU seconds.
cat >"$tmp/drain.py" <<'PY'
import http.client, json, resource, sys, time
host, port, fn, digest = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = http.client.HTTPConnection(host, port)
def call(method, path, body=None):
    c.request(method, path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read()
call("GET", "/v1/batches/0")  # connected and warm before the clock
sys.stdout.write("go\n"); sys.stdout.flush(); sys.stdin.readline()
def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime
cpu0 = cpu()
t0 = time.monotonic()
st, b = call("POST", "/v1/batches", json.dumps({"function": fn, "input": digest}))
t_acc = time.monotonic() - t0
if st != 202:
    sys.exit("batch not accepted: %d %s" % (st, b))
bid = json.loads(b)["id"]
t_first = t_items = None
while True:
    st, b = call("GET", "/v1/batches/" + bid)
    d = json.loads(b)
    now = time.monotonic() - t0
    ok = d["counts"]["succeeded"] + d["counts"]["failed"]
    if t_first is None and ok > 0: t_first = now
    if t_items is None and ok == d["total"]: t_items = now
    if d["status"] == "completed": break
    time.sleep(0.005)
print(bid, t_acc, t_first if t_first is not None else now, t_items if t_items is not None else now,
      now, cpu() - cpu0)
PY
mkfifo "$tmp/go"
python3 "$tmp/drain.py" 127.0.0.1 "$port" mlpb "$input" <"$tmp/go" >"$tmp/drain.out" &
drain_pid=$!
exec 3>"$tmp/go"
until grep -q '^go$' "$tmp/drain.out" 2>/dev/null; do sleep 0.05; done
c2=$(cpu)
echo >&3
wait $drain_pid || die "the batch poller failed"
exec 3>&-
c3=$(cpu)
set -- $(tail -n 1 "$tmp/drain.out")
bid=$1 t_acc=$2 t_first=$3 t_items=$4 t_done=$5 poll_cpu=$6
doc=$(curl -sf "$url/v1/batches/$bid")
echo "$doc" | grep -q "\"succeeded\":$batch" || die "batch did not succeed whole: $doc"

sync_rps=$(field "$sync" rps)
acc_rps=$(field "$acc" rps)
drain=$(python3 -c "print(f'{$batch / $t_done:.1f}')")
echo
echo "| measure (mlp, max $max instances, $conns connections) | per second | vs sync |"
echo "|---|---:|---:|"
echo "| synchronous requests answered | $sync_rps | 1.00 |"
echo "| jobs accepted (202 after a durable commit), errors $(field "$acc" errors) | $acc_rps | $(python3 -c "print(f'{$acc_rps / $sync_rps:.2f}')") |"
echo "| batch of $batch drained (POST to output written) | $drain | $(python3 -c "print(f'{$drain / $sync_rps:.2f}')") |"
n_sync=$(field "$sync" requests)
echo
echo "batch timeline (ms from its POST): accepted $(python3 -c "print(f'{$t_acc * 1e3:.0f}')"), first item done $(python3 -c "print(f'{$t_first * 1e3:.0f}')"), last item done $(python3 -c "print(f'{$t_items * 1e3:.0f}')"), output written $(python3 -c "print(f'{$t_done * 1e3:.0f}')") (polled every 5 ms: CPU of the poller $(python3 -c "print(f'{$poll_cpu * 1e3:.0f}')") ms)"
echo
echo "| CPU per request, µs | serve loop | registry writer | rest of serve | instances | wrk |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| synchronous | $(per_req "$c0" "$c1" "$n_sync" loop) | $(per_req "$c0" "$c1" "$n_sync" writer) | $(per_req "$c0" "$c1" "$n_sync" other) | $(per_req "$c0" "$c1" "$n_sync" instances) | $(python3 -c "print(f'{$wrk_cpu * 1e6 / $n_sync:.0f}')") |"
echo "| batch item | $(per_req "$c2" "$c3" "$batch" loop) | $(per_req "$c2" "$c3" "$batch" writer) | $(per_req "$c2" "$c3" "$batch" other) | $(per_req "$c2" "$c3" "$batch" instances) | - |"
echo
echo "| voluntary context switches per request | serve loop | registry writer | instances |"
echo "|---|---:|---:|---:|"
echo "| synchronous | $(switches "$c0" "$c1" "$n_sync" loop) | $(switches "$c0" "$c1" "$n_sync" writer) | $(switches "$c0" "$c1" "$n_sync" instances) |"
echo "| batch item | $(switches "$c2" "$c3" "$batch" loop) | $(switches "$c2" "$c3" "$batch" writer) | $(switches "$c2" "$c3" "$batch" instances) |"
echo
echo "registry writer: $(curl -sf "$url/v1/stats" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("registry_writes")))')"
