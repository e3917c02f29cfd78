// The client side of bench/textgen.sh against rouse serve's
// /openai/v1/completions: times measured at the client over loopback
// (Server-Timing's in-instance time to first token is read too).
//
//   node textgen_client.js BASE_URL FUNCTION [key=value...]
//   keys: prompt (128), decode (64), streams (8), tries (5), zero (5: starts
//         from zero, each after POST .../scale-to-zero)
// Prints one JSON object: prefill_ms (Server-Timing ttft of a 128-token
// prompt and max_tokens 1), decode_tps_1, decode_tps_n (all streams' tokens
// over the wall time), ttft_warm_ms and ttft_zero_ms (8-token prompt, first
// streamed token at the client).
//
// With only=1 (streams only: STREAMS concurrent streams of an 8-token prompt
// and DECODE tokens each, after one such round as warm-up), prints
// streams_tps (all streams' tokens over the wall time), itl_p50_ms and
// itl_p95_ms (each stream's time between tokens after the first, over the
// streams) and cpu_ms_per_token (the function's instances' CPU time, from
// /proc, over every token of the round: what matters on a loaded machine).
'use strict';
const fs = require('fs');
const [base, fn, ...rest] = process.argv.slice(2);
const opt = { prompt: 128, decode: 64, streams: 8, tries: 5, zero: 5, only: 0 };
for (const kv of rest) {
  const [k, v] = kv.split('=');
  opt[k] = Number(v);
}
const now = () => Number(process.hrtime.bigint()) / 1e6;
const ids = (n, seed) => Array.from({ length: n }, (_, i) => (seed * 7919 + i * 104729) % 50000);

// A streamed completion: times of the first and last token events.
async function stream(prompt, n) {
  const t0 = now();
  const r = await fetch(base + '/openai/v1/completions', {
    method: 'POST',
    body: JSON.stringify({ model: fn, prompt, max_tokens: n, temperature: 0, stream: true }),
  });
  if (r.status !== 200) throw new Error('status ' + r.status + ': ' + (await r.text()));
  let first = 0, last = 0, events = 0, buf = '';
  for await (const chunk of r.body) {
    buf += Buffer.from(chunk).toString();
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      events++;
      last = now();
      if (!first) first = last;
    }
  }
  return { ttft: first - t0, rest: last - first, events, timing: r.headers.get('server-timing') };
}

// CPU seconds (user + system) of each of the function's instances now, by pid.
async function instancesCpu() {
  const d = await (await fetch(base + '/v1/functions/' + fn)).json();
  const hz = 100; // USER_HZ on Linux
  const cpu = new Map();
  for (const i of d.instances || []) {
    try {
      const f = fs.readFileSync(`/proc/${i.pid}/stat`, 'utf8');
      const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
      cpu.set(i.pid, (Number(v[11]) + Number(v[12])) / hz);
    } catch (e) { /* ended */ }
  }
  return cpu;
}

// CPU seconds the instances used between two snapshots: an instance that
// started in between counts whole, one that ended is not seen (undercount).
function cpuBetween(a, b) {
  let s = 0;
  for (const [pid, t] of b) s += t - (a.get(pid) || 0);
  return s;
}

async function streamsOnly() {
  const round = () => Promise.all(Array.from({ length: opt.streams },
                                             (_, k) => stream(ids(8, 9 + k), opt.decode)));
  await round(); // warm-up: instances started, plans prepared
  const c0 = await instancesCpu();
  const t0 = now();
  const got = await round();
  const wall = (now() - t0) / 1000;
  const c1 = await instancesCpu();
  const itl = got.map((g) => g.rest / (opt.decode - 1)).sort((x, y) => x - y);
  const pct = (q) => itl[Math.min(itl.length - 1, Math.floor(q * itl.length))];
  console.log(JSON.stringify({
    streams_tps: (opt.streams * opt.decode) / wall,
    itl_p50_ms: pct(0.5),
    itl_p95_ms: pct(0.95),
    cpu_ms_per_token: (cpuBetween(c0, c1) * 1000) / (opt.streams * opt.decode),
    instances: [c0.size, c1.size],
  }));
}

const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];

async function main() {
  if (opt.only) return streamsOnly();
  const res = {};
  await stream(ids(opt.prompt, 1), 2); // warm-up: the buckets' plans prepared
  await stream(ids(8, 1), opt.decode);
  const pre = [], warm = [], dec = [];
  for (let i = 0; i < opt.tries; i++) {
    const p = await stream(ids(opt.prompt, 3 + i), 1);
    pre.push(Number(/ttft;dur=([\d.]+)/.exec(p.timing)[1]));
    warm.push((await stream(ids(8, 4 + i), 1)).ttft);
    const g = await stream(ids(8, 5 + i), opt.decode);
    // Text events, not tokens: a token that ends inside a UTF-8 sequence
    // waits for the next one, so count the tokens asked for.
    dec.push((opt.decode - 1) / (g.rest / 1000));
  }
  res.prefill_ms = median(pre);
  res.ttft_warm_ms = median(warm);
  res.decode_tps_1 = median(dec);
  const t0 = now();
  await Promise.all(Array.from({ length: opt.streams }, (_, k) => stream(ids(8, 9 + k), opt.decode)));
  res.decode_tps_n = (opt.streams * opt.decode) / ((now() - t0) / 1000);
  const zero = [];
  for (let i = 0; i < opt.zero; i++) {
    await fetch(base + `/v1/functions/${fn}/scale-to-zero`, { method: 'POST' });
    const z = await stream(ids(8, 20 + i), 1);
    zero.push(z.ttft);
  }
  if (zero.length) res.ttft_zero_ms = median(zero);
  console.log(JSON.stringify(res));
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
