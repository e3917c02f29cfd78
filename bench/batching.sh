#!/bin/sh
# Dynamic batching: one `rouse serve`, each model deployed three times (no
# batching, "fixed" and "auto"), loaded by closed-loop clients (`rouse
# bench -c C`: C connections, each sending its next request when its reply
# came) at each concurrency for DURATION: requests/s, p50 and p99, the mean
# batch the instances ran (from GET /v1/functions: batched requests per
# batch, and the share of requests that ran batched), and serve's own CPU
# per request (its loop is one thread: 1 s / that is the ceiling of the
# per-request HTTP work, whatever the batching); on stderr, after each run,
# the calls the queue sent by each of its rules (the status's "sent_by":
# full, idle, share, free, nogain, engine, sparse, pause, delay, lone). Then ONNX Runtime
# (ort_bench.js, 1 thread, warm median) on the same models at batch sizes
# 1, 8 and 32 (resnet18: 1 and 8), as the engine-only throughput the served
# figures approach. Prints Markdown tables and the issue's targets. A
# benchmark, not a test: timings on a shared machine are not pass/fail.
#
#   bench/batching.sh                 mlp, bert_tiny (dynamic batch), resnet18
#   MODELS="mlp" CONCS="1 32" DURATION=3s bench/batching.sh     a quick check
#
# bert_tiny in ../shared/models fixes batch 1 in its Reshapes; the benchmark
# serves the variant scripts/batch_variant.py --dynbatch writes (dynamic
# batch, Reshape targets [0, ...]); mlp and resnet18 are served as they are
# (a fixed batch of 1 in batch-agnostic graphs, re-specialised per batch).
# ORT runs the --dynbatch variant of each (it refuses a batch of 8 on a
# model that declares 1), with test sets tiled to each batch size.
#
# The modes take turns: ROUNDS rounds of off, fixed, auto at each
# concurrency (each round's order rotated by one: fixed, auto, off in the
# second), each figure the median of its rounds, so that a machine whose
# load drifts during the benchmark (a shared one) does not show the drift
# as a difference between modes. Run in sequence (off, then fixed, then
# auto, once each), the 1-client rows once showed batching at 0.55-0.64x
# unbatched; alternating, either mode comes out ahead by the noise, as a
# lone request on an idle function takes the plain path either way (serve
# executes the same instructions for it, the instance the same run).
#
# mlp's ceiling: mlp gets a fourth mode, "null", taking its turn with the
# others in every round: a model with mlp's input and output whose one
# node is a Slice (scripts/null_model.py), served batched as fixed mode:
# the same requests and replies with nothing to compute. It shows what
# serve's per-request HTTP work and batching's own machinery deliver at
# best, the ceiling of mlp's batched throughput, measured alongside so
# that the machine's drift is shared (NULL=0 skips it).
#
# Environment: ROUSE (build/rouse), SHARED (../shared), DURATION (5s, per
# round), ROUNDS (3),
# CONCS ("1 8 32 64"), MODELS ("mlp bert_tiny resnet18"), MODES ("off fixed
# auto"), MAX (scaling.max, the cores: one instance per core), ORT_RUNS (50),
# ORT ("1": 0 skips ONNX Runtime), PEER_DIR (writable copy of the ORT peer,
# build/peer-ort). Per model: max_batch, max_delay_us and slo_ms below.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
duration=${DURATION:-5s}
rounds=${ROUNDS:-3}
concs=${CONCS:-1 8 32 64}
models=${MODELS:-mlp bert_tiny resnet18}
modes=${MODES:-off fixed auto}
max=${MAX:-$(nproc)}
ort_runs=${ORT_RUNS:-50}
ort=${ORT:-1}
null=${NULL:-1}
peer=${PEER_DIR:-$root/build/peer-ort}

die() { echo "batching: $*" >&2; exit 1; }
say() { echo "batching: $*" >&2; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
[ -d "$shared/models" ] || die "no models at $shared/models"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed"
command -v curl >/dev/null 2>&1 || die "curl is not installed"

# Per model: max_batch max_delay_us slo_ms ORT batch sizes.
config() {
    case "$1" in
        mlp) echo "32 2000 5 1,8,32" ;;
        bert_tiny) echo "32 2000 40 1,8,32" ;;
        resnet18) echo "8 5000 400 1,8" ;;
        *) die "no batching settings for $1 (mlp, bert_tiny, resnet18)" ;;
    esac
}

. "$root/bench/serve_lib.sh"
tmp=$(mktemp -d)
trap serve_cleanup EXIT

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# mlp's ceiling: its null model, as a mode of mlp's.
if [ "$null" = 1 ] && echo " $models " | grep -q ' mlp '; then
    python3 "$root/scripts/null_model.py" "$shared/models/mlp/model.onnx" "$tmp/mlp_null.onnx" ||
        die "cannot write mlp's null model"
fi
# The modes of model $1.
modes_of() { if [ "$1" = mlp ] && [ "$null" = 1 ]; then echo "$modes null"; else echo "$modes"; fi; }

# The variants: the dynamic-batch export of each, with tiled test sets.
for m in $models; do
    set -- $(config "$m")
    python3 "$root/scripts/batch_variant.py" "$shared/models/$m" "$tmp/$m-dyn" --dynbatch \
        --batches "$4" >&2 || die "cannot write the $m variant"
done

serve_start

served_model() { # the file serve runs for model $1
    case "$1" in
        bert_tiny) echo "$tmp/$1-dyn/model.onnx" ;;
        *) echo "$shared/models/$1/model.onnx" ;;
    esac
}


for m in $models; do
    set -- $(config "$m")
    mb=$1 delay=$2 slo=$3
    digest=$(serve_upload "$(served_model "$m")")
    for mode in $(modes_of "$m"); do
        d=$digest
        [ "$mode" = null ] && d=$(serve_upload "$tmp/mlp_null.onnx")
        b=$(serve_batching "$mode" "$mb" "$delay" "$slo")
        serve_deploy "$m-$mode" "{\"model\":\"$d\",\"scaling\":{\"max\":$max,\"queue_depth\":1024}$b}"
    done
done

serve_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
# Every core's busy time (user, nice, system, irq, softirq, steal), ticks.
machine_busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# The client's own CPU time (rouse bench), through time(1) when installed.
timer=""
[ -x /usr/bin/time ] && timer="/usr/bin/time -f %U+%S -o $tmp/client.time"
hz=$(getconf CLK_TCK)

# batch_counts FN -> "batches batched_requests sent_by" summed over its
# versions (sent_by: the calls the queue sent by each rule, rule=N,...).
batch_counts() {
    curl -sf "$url/v1/functions/$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
b = d.get("batching", [])
why = {}
for x in b:
    for k, v in x.get("sent_by", {}).items():
        why[k] = why.get(k, 0) + v
print(sum(x["batches"] for x in b), sum(x["batched_requests"] for x in b),
      ",".join("%s=%d" % kv for kv in sorted(why.items())) or "-")'
}

# The modes of round $1 in turn: each round starts one further along, so
# that no mode always runs last (after the others' instances ran, with the
# machine's load as it drifts within a round).
rotate() {
    k=0
    [ $# -gt 2 ] && k=$((($1 - 1) % ($# - 1)))
    shift
    i=0
    for x in "$@"; do [ $i -ge $k ] && printf '%s ' "$x"; i=$((i + 1)); done
    i=0
    for x in "$@"; do [ $i -lt $k ] && printf '%s ' "$x"; i=$((i + 1)); done
    return 0
}

results=$tmp/results
: >"$results"
for m in $models; do
    flags=$(serve_input_flags "$(served_model "$m")" "$shared/models/$m/test_data_set_0")
    for mode in $(modes_of "$m"); do # warm: every instance started, every batch size met
        # shellcheck disable=SC2086
        "$rouse" bench "$m-$mode" -c 8 -d 2s $flags -q >/dev/null 2>&1 || true
    done
    for c in $concs; do
        # shellcheck disable=SC2046
        for r in $(seq "$rounds"); do for mode in $(rotate "$r" $(modes_of "$m")); do
            say "$m $mode, $c clients, $duration (round $r of $rounds)"
            set -- $(batch_counts "$m-$mode")
            b0=${1:-0} r0=${2:-0} w0=${3:--}
            t0=$(serve_cpu_ticks)
            m0=$(machine_busy_ticks)
            echo 0+0 >"$tmp/client.time"
            # shellcheck disable=SC2086
            $timer "$rouse" bench "$m-$mode" -c "$c" -d "$duration" $flags --json >"$tmp/run.json" \
                2>"$tmp/run.err" || die "rouse bench $m-$mode failed: $(cat "$tmp/run.err")"
            t1=$(serve_cpu_ticks)
            m1=$(machine_busy_ticks)
            set -- $(batch_counts "$m-$mode")
            python3 - "$tmp/run.json" "$m" "$mode" "$c" "$((${1:-0} - b0))" "$((${2:-0} - r0))" \
                "$((t1 - t0))" "$hz" "$w0" "${3:--}" "$((m1 - m0))" "$(tail -n 1 "$tmp/client.time")" \
                >>"$results" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
m, mode, c, batches, batched, ticks, hz, w0, w1, busy, client = sys.argv[2:13]
def why(s):
    return dict((k, int(v)) for k, v in (x.split("=") for x in s.split(",") if "=" in x))
a, b = why(w0), why(w1)
sent = {k: b[k] - a.get(k, 0) for k in b if b[k] - a.get(k, 0)}
if sent:  # which rules sent the calls of this run
    print("batching:   sent by " + ", ".join("%s %d" % kv for kv in sorted(sent.items())),
          file=sys.stderr)
n = j["requests"]
cpu_us = int(ticks) / int(hz) * 1e6 / n if n else 0
machine_us = int(busy) / int(hz) * 1e6 / n if n else 0
try:
    client_us = sum(float(x) for x in client.split("+")) * 1e6 / n if n else 0
except ValueError:
    client_us = 0
mean = int(batched) / int(batches) if int(batches) else 1.0
share = int(batched) / n if n else 0
print(json.dumps({"model": m, "mode": mode, "c": int(c), "rps": j["requests_per_second"],
                  "p50": j["latency_ms"]["p50"], "p99": j["latency_ms"]["p99"],
                  "errors": j["errors"], "mean_batch": mean, "batched_share": share,
                  "serve_cpu_us": cpu_us, "machine_cpu_us": machine_us,
                  "client_cpu_us": client_us}))
PY
        done; done
    done
done

# Each (model, mode, clients) as the medians of its rounds.
python3 - "$results" >"$tmp/medians" <<'PY'
import json, statistics, sys
runs = {}
for l in open(sys.argv[1]):
    if l.strip():
        r = json.loads(l)
        runs.setdefault((r["model"], r["mode"], r["c"]), []).append(r)
for (m, mode, c), rs in runs.items():
    med = lambda k: statistics.median(r[k] for r in rs)
    print(json.dumps({"model": m, "mode": mode, "c": c, "rps": med("rps"), "p50": med("p50"),
                      "p99": med("p99"), "errors": sum(r["errors"] for r in rs),
                      "mean_batch": med("mean_batch"), "batched_share": med("batched_share"),
                      "serve_cpu_us": med("serve_cpu_us"), "machine_cpu_us": med("machine_cpu_us"),
                      "client_cpu_us": med("client_cpu_us"), "rounds": len(rs)}))
PY

ort_rows=$tmp/ort
: >"$ort_rows"
if [ "$ort" = 1 ]; then
    . "$root/bench/ort_peer.sh"
    ort_peer_install "$shared" "$peer"
    for m in $models; do
        set -- $(config "$m")
        for b in $(echo "$4" | tr , ' '); do
            say "ONNX Runtime: $m at batch $b"
            if node "$peer/ort_bench.js" "$tmp/$m-dyn/model.onnx" "$tmp/$m-dyn/b$b/test_data_set_0" \
                --threads 1 --warm "$ort_runs" --json >"$tmp/ort.json" 2>"$tmp/ort.err"; then
                python3 - "$tmp/ort.json" "$m" "$b" >>"$ort_rows" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
r = j["results"][0]
b = int(sys.argv[3])
print(json.dumps({"model": sys.argv[2], "batch": b, "ok": j["ok"],
                  "median_ms": r["warm_median_ms"], "per_s": b / r["warm_median_ms"] * 1000}))
PY
            else
                say "ONNX Runtime failed on $m at batch $b: $(head -c 300 "$tmp/ort.err")"
            fi
        done
    done
fi

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$tmp/medians" "$ort_rows" "$duration" "$max" "$load_before" "$load_after" "$(nproc)" "$rounds" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ort = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
dur, mx, lb, la, cores, rounds = sys.argv[3:9]
print()
print("rouse serve, dynamic batching off / fixed / auto; `rouse bench -c C` closed-loop clients "
      "(binary bodies, kept-alive), %s per run, the modes alternating over %s rounds, medians of "
      "the rounds; scaling.max %s, %s cores shared by serve, its instances and the client"
      % (dur, rounds, mx, cores))
print("load average (1, 5, 15 min) before: %s, after: %s" % (lb, la))
print()
print("| model | clients | mode | req/s | vs off | p50 ms | p99 ms | mean batch | batched | serve CPU µs/req | client CPU µs/req | all cores' CPU µs/req | errors |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
off = {(r["model"], r["c"]): r for r in rows if r["mode"] == "off"}
for r in rows:
    o = off.get((r["model"], r["c"]))
    ratio = "%.2f" % (r["rps"] / o["rps"]) if o and o["rps"] else ""
    print("| %s | %d | %s | %.0f | %s | %.2f | %.2f | %.1f | %.0f %% | %.1f | %.1f | %.1f | %d |" % (
        r["model"], r["c"], r["mode"], r["rps"], ratio, r["p50"], r["p99"], r["mean_batch"],
        100 * r["batched_share"], r["serve_cpu_us"], r.get("client_cpu_us", 0),
        r.get("machine_cpu_us", 0), r["errors"]))
if ort:
    print()
    print("ONNX Runtime (onnxruntime-node, 1 thread, warm median of the same model with a dynamic "
          "batch, inputs tiled), next to the best served rate:")
    print()
    print("| model | batch | ORT ms/batch | ORT inferences/s | best served req/s (mode, clients) | served / ORT |")
    print("|---|---:|---:|---:|---:|---:|")
    for o in ort:
        best = max((r for r in rows if r["model"] == o["model"]), key=lambda r: r["rps"], default=None)
        bs = "%.0f (%s, %d)" % (best["rps"], best["mode"], best["c"]) if best else ""
        ratio = "%.2f" % (best["rps"] / o["per_s"]) if best else ""
        print("| %s | %d | %.3f | %.0f | %s | %s |%s" % (o["model"], o["batch"], o["median_ms"],
              o["per_s"], bs, ratio, "" if o["ok"] else " (ORT's check failed)"))
print()
print("Targets (issue 19):")
def get(m, mode, c):
    return next((r for r in rows if r["model"] == m and r["mode"] == mode and r["c"] == c), None)
# The issue's targets, and where a measurement showed one out of reach on
# this machine, the target proposed in its place (docs/measurements.md):
# resnet18's engine gains nothing per row from a batch (bench/batch_engine.sh:
# 0.89-0.91x per row at batch 2-8; ONNX Runtime 1.10x), so batching must be
# no worse than off there (throughput >= 0.95x, the noise of a run, and p99
# no higher) at 8 and 32 clients;
# bert_tiny's engine gains 1.1x per row (0.163 ms a row alone, 0.145 in a
# batch of 8; ONNX Runtime 1.12x), so 1.3x is what batching can add by
# sharing serve's and the instance's per-request work; mlp's 2x is held to
# its ceiling (mode "null" below).
for m, want, proposed, cs in (("mlp", 2.0, None, (32,)), ("bert_tiny", 2.0, 1.3, (32,)),
                              ("resnet18", 1.2, 0.95, (8, 32))):
    for c in cs:
        o = get(m, "off", c)
        for mode in ("fixed", "auto"):
            r = get(m, mode, c)
            if not o or not r:
                continue
            x = r["rps"] / o["rps"] if o["rps"] else 0
            alt = ""
            if proposed is not None:
                alt = "; proposed >= %.2fx: %s" % (proposed, "met" if x >= proposed else "missed")
            print("- %s %s, %d clients: %.2fx unbatched (target >= %.1fx: %s%s); p99 %.2f vs %.2f ms (%s)" % (
                m, mode, c, x, want, "met" if x >= want else "missed", alt, r["p99"], o["p99"],
                "no worse" if r["p99"] <= o["p99"] else "worse"))
    o1 = get(m, "off", 1)
    for mode in ("fixed", "auto"):
        r = get(m, mode, 1)
        if not o1 or not r or not o1["p50"]:
            continue
        d = (r["p50"] - o1["p50"]) / o1["p50"] * 100
        print("- %s %s, 1 client: p50 %.3f vs %.3f ms unbatched (%+.1f %%, target at most 5 %% "
              "above: %s)" % (m, mode, r["p50"], o1["p50"], d, "met" if d <= 5 else "missed"))
# mlp's ceiling: the same requests to a model that computes nothing.
o, n = get("mlp", "off", 32), get("mlp", "null", 32)
if o and n and o["rps"] and n["rps"]:
    print("- mlp's ceiling, 32 clients: a model with mlp's request and reply and nothing to compute, "
          "batched (fixed), %.0f req/s = %.2fx mlp unbatched; mlp reached %s of it" % (
              n["rps"], n["rps"] / o["rps"],
              " and ".join("%.0f %% (%s)" % (100 * r["rps"] / n["rps"], mode)
                           for mode in ("fixed", "auto") for r in [get("mlp", mode, 32)] if r)))
mlp = [r for r in rows if r["model"] == "mlp"]
if mlp:
    cpu = min(r["serve_cpu_us"] for r in mlp if r["serve_cpu_us"] > 0)
    print("- serve's loop spent at least %.1f µs of CPU per mlp request (one core caps it near "
          "%.0f req/s whatever the batching)" % (cpu, 1e6 / cpu))
PY
