#!/bin/sh
# Text generation: rouse serve's /openai/v1/completions against ONNX Runtime
# (onnxruntime-node, bench/textgen_ort.js) running the same decoder step by
# step with the same cache handling (prefill with an empty past, then one run
# per token whose past is the previous run's present), both greedy on 1
# thread. The decoder is GPT-2 small's shape with random weights, exported
# by scripts/models/export_gpt2.py into build-models/textgen-bench/.
#
# Measures: prefill of PROMPT (128) tokens; decode tokens/s at batch 1 and
# with STREAMS (8) concurrent streams (rouse: scaling.max = STREAMS instances
# of 1 thread; ORT: STREAMS concurrent run() calls on one session); time to
# the first token of an 8-token prompt from warm and from zero (rouse: after
# scale-to-zero, at the client; ORT: session creation + prefill in a process
# that has node and ORT loaded).
#
# Then continuous batching: STREAMS concurrent streams on STREAMS instances
# of concurrency 1 against one instance of concurrency STREAMS (its decode
# steps run the streams together as one batch): tokens/s, time between
# tokens per stream (p50, p95) and the instances' CPU time per token (from
# /proc: the figure to trust when the machine is loaded), with the load.
#
#   bench/textgen.sh
# Environment: ROUSE (build/rouse), SHARED (../shared), PEER_DIR
# (build/peer-ort), LAYERS (12; fewer for a quick run), PROMPT (128),
# DECODE (64 tokens per stream), STREAMS (8), TRIES (5), ZERO (5),
# STREAMS_ONLY (1: only the continuous-batching comparison, no ORT).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
peer=${PEER_DIR:-$root/build/peer-ort}
layers=${LAYERS:-12}
prompt=${PROMPT:-128}
decode=${DECODE:-64}
streams=${STREAMS:-8}
tries=${TRIES:-5}
zero=${ZERO:-5}
streams_only=${STREAMS_ONLY:-0}
die() { echo "textgen: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
/usr/bin/python3 -c 'import torch' 2>/dev/null || die "python3-torch is needed to export the model"
if [ "$streams_only" != 1 ]; then
    . "$root/bench/ort_peer.sh"
    ort_peer_install "$shared" "$peer"
fi

dir=$root/build-models/textgen-bench/L$layers
if [ ! -f "$dir/model.onnx" ]; then
    echo "textgen: exporting GPT-2 small's shape with $layers layers into $dir" >&2
    /usr/bin/python3 -W ignore "$root/scripts/models/export_gpt2.py" "$dir" --size small \
        --layers "$layers" --no-test-data >&2
fi
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
load_before=$(load)

"$rouse" serve --port 0 --data "$tmp/data" --max-instances $((streams + 2)) >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
i=0
until grep -q '^listening on ' "$tmp/serve.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 100 ] && die "serve did not start"
    sleep 0.1
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/serve.out")
base=http://127.0.0.1:$port
upload() { curl -sf -X POST --data-binary @"$1" "$base/v1/blobs" | sed -n 's/.*"digest":"\([^"]*\)".*/\1/p'; }
# A tokenizer of the model's vocabulary, so that every token is text (and
# streams as such); random weights would otherwise pick ids beyond the bytes.
node "$root/bench/textgen_tokenizer.js" 50257 "$tmp/tokenizer.json"
digest=$(upload "$dir/model.onnx")
tok=$(upload "$tmp/tokenizer.json")
curl -s -X PUT "$base/v1/functions/gpt2" \
    -d "{\"model\":\"$digest\",\"task\":\"text-generation\",\"max_context\":1024,\"tokenizer\":\"$tok\",\"scaling\":{\"max\":$streams}}" \
    >"$tmp/deploy.json"
grep -q '"version"' "$tmp/deploy.json" || die "deploy failed: $(cat "$tmp/deploy.json")"

if [ "$streams_only" != 1 ]; then
    echo "textgen: rouse" >&2
    node "$root/bench/textgen_client.js" "$base" gpt2 prompt="$prompt" decode="$decode" \
        streams="$streams" tries="$tries" zero="$zero" >"$tmp/rouse.json"
fi
# Continuous batching: STREAMS instances of one stream each (gpt2i) against
# one instance decoding every stream together (gpt2c, with memory for a KV
# cache of max_context per stream); both keep their instances between the
# rounds (keep_alive fixed), so that the measured round starts none.
curl -s -X POST "$base/v1/functions/gpt2/scale-to-zero" >/dev/null
for f in "gpt2i:\"max\":$streams" "gpt2c:\"max\":1,\"concurrency\":$streams"; do
    curl -s -X PUT "$base/v1/functions/${f%%:*}" \
        -d "{\"model\":\"$digest\",\"task\":\"text-generation\",\"max_context\":1024,\"tokenizer\":\"$tok\",\"memory_mb\":4096,\"scaling\":{${f#*:},\"keep_alive\":\"fixed\"}}" \
        >"$tmp/deploy_c.json"
    grep -q '"version"' "$tmp/deploy_c.json" || die "deploy failed: $(cat "$tmp/deploy_c.json")"
done
load_streams=$(load)
echo "textgen: $streams streams on $streams instances" >&2
node "$root/bench/textgen_client.js" "$base" gpt2i only=1 decode="$decode" streams="$streams" \
    >"$tmp/inst.json"
curl -s -X POST "$base/v1/functions/gpt2i/scale-to-zero" >/dev/null
echo "textgen: $streams streams on one instance of concurrency $streams" >&2
node "$root/bench/textgen_client.js" "$base" gpt2c only=1 decode="$decode" streams="$streams" \
    >"$tmp/conc.json"
load_streams_after=$(load)
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=
if [ "$streams_only" != 1 ]; then
    echo "textgen: onnxruntime-node" >&2
    node "$root/bench/textgen_ort.js" "$peer" "$dir/model.onnx" "$layers" 12 64 prompt="$prompt" \
        decode="$decode" streams="$streams" tries="$tries" >"$tmp/ort.json"
fi
load_after=$(load)

node -e '
const [a, b, layers, streams, decode, before, after] = process.argv.slice(1);
const r = [JSON.parse(require("fs").readFileSync(a, "utf8")), JSON.parse(require("fs").readFileSync(b, "utf8"))];
console.log(`GPT-2 small shape with ${layers} layers, random weights, greedy, 1 thread per instance;`);
console.log(`${streams} concurrent streams of ${decode} tokens, 8-token prompts`);
console.log(`load average (1, 5, 15 min) before: ${before}, after: ${after}\n`);
console.log("| rouse, " + streams + " streams | tokens/s | between tokens p50 (ms) | p95 (ms) | CPU per token (ms) |");
console.log("|---|---|---|---|---|");
const names = [`${streams} instances, concurrency 1`, `1 instance, concurrency ${streams}`];
r.forEach((x, i) => console.log(`| ${names[i]} | ${x.streams_tps.toFixed(1)} | ${x.itl_p50_ms.toFixed(1)} | ${x.itl_p95_ms.toFixed(1)} | ${x.cpu_ms_per_token.toFixed(2)} |`));
console.log(`\n(instances seen before and after the measured round: ${r.map((x) => x.instances.join(" -> ")).join(", ")})\n`);
' "$tmp/inst.json" "$tmp/conc.json" "$layers" "$streams" "$decode" "$load_streams" "$load_streams_after"
[ "$streams_only" = 1 ] && exit 0

node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const o = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
const [layers, prompt, streams, before, after] = process.argv.slice(3);
const f = (x, d) => (typeof x === "number" && isFinite(x) ? x.toFixed(d) : "n/a");
console.log(`GPT-2 small shape with ${layers} layers, random weights, greedy, 1 thread per instance / session`);
console.log(`load average (1, 5, 15 min) before: ${before}, after: ${after}\n`);
console.log("| measure | rouse | ONNX Runtime | rouse/ORT |");
console.log("|---|---|---|---|");
const row = (name, a, b, d, better) => console.log(`| ${name} | ${f(a, d)} | ${f(b, d)} | ${a && b ? (better === "higher" ? a / b : b / a).toFixed(2) + "x" : "n/a"} |`);
row(`prefill ${prompt} tokens (ms)`, r.prefill_ms, o.prefill_ms, 1, "lower");
row("decode tokens/s, batch 1", r.decode_tps_1, o.decode_tps_1, 1, "higher");
row(`decode tokens/s, ${streams} streams`, r.decode_tps_n, o.decode_tps_n, 1, "higher");
row("first token, warm, 8-token prompt (ms)", r.ttft_warm_ms, o.ttft_warm_ms, 1, "lower");
row("first token from zero (ms)", r.ttft_zero_ms, o.ttft_zero_ms, 1, "lower");
console.log(`\nrouse: first token from zero - warm = ${f(r.ttft_zero_ms - r.ttft_warm_ms, 1)} ms (target <= 10 ms)`);
console.log("(rouse/ORT: above 1 is rouse better; rouse times at the client over loopback, ORT in process;");
console.log(" ORT from zero: session creation + first token, node and ORT already loaded)");
' "$tmp/rouse.json" "$tmp/ort.json" "$layers" "$prompt" "$streams" "$load_before" "$load_after"
