// ONNX Runtime running a decoder with a KV cache step by step, the way
// rouse does (bench/textgen.sh): one run over the prompt with an empty past,
// then one run per token whose past is the previous run's present (ORT's
// tensors passed along as they are; the model's Concat appends the new
// position), greedy, position_ids and attention_mask as Hugging Face's
// generate loop gives them.
//
//   node textgen_ort.js PEER_DIR MODEL.onnx LAYERS HEADS HEAD_DIM [key=value...]
//   keys: threads (1), prompt (128: prefill length), decode (64: tokens per
//         stream), streams (8), tries (5), zero (1: also measure a new
//         session's first token, as its own process would)
// Prints one JSON object: prefill_ms, decode_tps_1, decode_tps_n, ttft_warm_ms,
// ttft_zero_ms (session creation + prefill of 8 tokens + the first token).
'use strict';
const path = require('path');
const [peer, model, L, H, D, ...rest] = process.argv.slice(2);
const ort = require(path.resolve(peer, 'node_modules', 'onnxruntime-node'));
const opt = { threads: 1, prompt: 128, decode: 64, streams: 8, tries: 5, zero: 1 };
for (const kv of rest) {
  const [k, v] = kv.split('=');
  opt[k] = Number(v);
}
const layers = Number(L), heads = Number(H), hd = Number(D);
const now = () => Number(process.hrtime.bigint()) / 1e6;

function ids(n, seed) {
  const a = new BigInt64Array(n);
  for (let i = 0; i < n; i++) a[i] = BigInt((seed * 7919 + i * 104729) % 50000);
  return a;
}

function emptyPast() {
  const p = {};
  for (let l = 0; l < layers; l++)
    for (const kv of ['key', 'value'])
      p[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, hd]);
  return p;
}

function argmaxLast(logits) {
  const [, t, v] = logits.dims;
  const d = logits.data;
  let best = 0;
  const off = (t - 1) * v;
  for (let i = 1; i < v; i++) if (d[off + i] > d[off + best]) best = i;
  return best;
}

// One sequence: prefill `prompt`, then `n` tokens; returns the times.
async function generate(sess, prompt, n) {
  let past = emptyPast();
  let pos = 0;
  let input = prompt;
  const t0 = now();
  let tFirst = 0;
  for (let k = 0; k < n; k++) {
    const t = input.length;
    const feeds = Object.assign({}, past, {
      input_ids: new ort.Tensor('int64', input, [1, t]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(pos + t).fill(1n), [1, pos + t]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: t }, (_, i) => BigInt(pos + i)), [1, t]),
    });
    const out = await sess.run(feeds);
    const tok = argmaxLast(out.logits);
    if (k === 0) tFirst = now();
    past = {};
    for (let l = 0; l < layers; l++)
      for (const kv of ['key', 'value']) past[`past_key_values.${l}.${kv}`] = out[`present.${l}.${kv}`];
    pos += t;
    input = BigInt64Array.of(BigInt(tok));
  }
  return { first_ms: tFirst - t0, rest_ms: now() - tFirst };
}

const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const create = () => ort.InferenceSession.create(model, {
  intraOpNumThreads: opt.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
});

async function main() {
  const res = {};
  if (opt.zero) {
    // A new session and its first token: what a process started for the
    // request would do after loading node and ORT.
    const t0 = now();
    const s0 = await create();
    await generate(s0, ids(8, 1), 1);
    res.ttft_zero_ms = now() - t0;
  }
  const sess = await create();
  await generate(sess, ids(opt.prompt, 2), 2); // warm-up
  const pre = [], warm = [], dec = [];
  for (let i = 0; i < opt.tries; i++) {
    pre.push((await generate(sess, ids(opt.prompt, 3 + i), 1)).first_ms);
    warm.push((await generate(sess, ids(8, 4 + i), 1)).first_ms);
    const g = await generate(sess, ids(8, 5 + i), opt.decode);
    dec.push((opt.decode - 1) / (g.rest_ms / 1000));
  }
  res.prefill_ms = median(pre);
  res.ttft_warm_ms = median(warm);
  res.decode_tps_1 = median(dec);
  // n streams at once on one session (ORT runs concurrent run() calls on
  // its thread pool), each its own cache.
  const t0 = now();
  await Promise.all(Array.from({ length: opt.streams }, (_, k) => generate(sess, ids(8, 9 + k), opt.decode)));
  res.decode_tps_n = (opt.streams * opt.decode) / ((now() - t0) / 1000);
  console.log(JSON.stringify(res));
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
