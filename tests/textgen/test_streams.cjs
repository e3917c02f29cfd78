// Several streams decoded together in one instance (scaling.concurrency > 1,
// continuous batching), through the openai client and plain HTTP (see
// test_textgen.sh). Arguments: BASE_URL MODEL.onnx MODEL.onnx.json
'use strict';
const fs = require('fs');
const http = require('http');
const OpenAI = require(process.env.OPENAI_MODULE).default;

const [base, modelPath, metaPath] = process.argv.slice(2);
const meta = JSON.parse(fs.readFileSync(metaPath, 'utf8'));
let failed = 0;
function check(desc, cond, extra) {
  if (cond) console.log('ok: ' + desc);
  else {
    failed = 1;
    console.log('FAIL: ' + desc + (extra !== undefined ? ' (' + JSON.stringify(extra) + ')' : ''));
  }
}
const decode = (ids) => new TextDecoder('utf-8').decode(Uint8Array.from(ids.filter((t) => t < 256)));
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

async function req(method, path, body) {
  const r = await fetch(base + path, { method, body });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

// A streamed completion over plain HTTP: resolves with its text, finish
// reason and usage; onFirst runs at its first piece of text.
function streamed(params, onFirst) {
  let rq;
  const done = new Promise((resolve, reject) => {
    rq = http.request(base + '/openai/v1/completions', { method: 'POST' }, (res) => {
      let buf = '', text = '', reason = null, usage = null, first = true;
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
          const j = JSON.parse(ev.slice(6));
          if (j.choices && j.choices.length) {
            text += j.choices[0].text || '';
            if (j.choices[0].finish_reason) reason = j.choices[0].finish_reason;
          }
          if (j.usage) usage = j.usage;
          if (first && text.length) {
            first = false;
            if (onFirst) onFirst();
          }
        }
      });
      res.on('end', () => resolve({ text, reason, usage }));
      res.on('error', reject);
    });
    rq.on('error', reject);
    rq.end(JSON.stringify(Object.assign({ model: 'conc', stream: true }, params)));
  });
  return { done, abort: () => rq.destroy() };
}

async function logLines(fn) {
  const logs = JSON.parse((await req('GET', '/v1/functions/' + fn + '/logs')).text);
  return (logs.lines || []).map((l) => l.line || l.text || JSON.stringify(l));
}

async function main() {
  const digest = JSON.parse((await req('POST', '/v1/blobs', fs.readFileSync(modelPath))).text).digest;
  const deploy = (name, config) => req('PUT', '/v1/functions/' + name, JSON.stringify(
    Object.assign({ model: digest, task: 'text-generation' }, config)));

  // Config: the cap, and memory for one KV cache per stream.
  let r = await deploy('toomany', { scaling: { concurrency: 33 } });
  check('concurrency above 32 is a 400 naming the field',
        r.status === 400 && r.text.includes('scaling.concurrency') && r.text.includes('32'), r);
  r = await deploy('onecache', { max_context: 4096, memory_mb: 600, scaling: { max: 1 } });
  check('one stream of 4096 positions fits 600 MiB: 201', r.status === 201, r);
  r = await deploy('manycaches', { max_context: 4096, memory_mb: 600,
                                   scaling: { concurrency: 32, max: 1 } });
  check('32 streams of 4096 positions in 600 MiB is a 400 naming the streams and memory_mb',
        r.status === 400 && /32 streams/.test(r.text) && /memory_mb/.test(r.text), r);

  r = await deploy('conc', { max_context: 4096, memory_mb: 1024,
                             scaling: { concurrency: 4, max: 1 } });
  check('deploy a generator decoding 4 streams together: 201', r.status === 201, r);
  const client = new OpenAI({ baseURL: base + '/openai/v1', apiKey: 'unused', maxRetries: 0 });

  // Alone first (one stream at a time, the batch of one row).
  const cases = [
    { prompt: decode(meta.greedy_prompt), max_tokens: 16, temperature: 0 },
    { prompt: 'The quick brown fox jumps', max_tokens: 24, temperature: 0 },
    { prompt: 'a', max_tokens: 20, temperature: 1.2, top_k: 40, seed: 5 },
    { prompt: 'Once upon a time there was a little', max_tokens: 12, temperature: 0.8,
      top_p: 0.9, seed: 11 },
  ];
  const alone = [];
  for (const c of cases) {
    const x = await client.completions.create(Object.assign({ model: 'conc' }, c));
    alone.push(x.choices[0].text);
  }
  check('alone, greedy equals the PyTorch reference', alone[0] === decode(meta.greedy_tokens),
        [alone[0], decode(meta.greedy_tokens)]);

  // A long prompt alone and, below, joining a stream that decodes: it is
  // prefilled in chunks of 64 tokens (the first takes the odd part:
  // 600 = 24 + 9 x 64), joining, with one step of the running stream
  // between two chunks, and gets the tokens it gets alone (where the same
  // chunks run with no step between them). Server-Timing says both counts.
  const text = 'It was the best of times, it was the worst of times, it was the age of ' +
    'wisdom, it was the age of foolishness. ';
  const longPrompt600 = { prompt: text.repeat(8).slice(0, 600), max_tokens: 12, temperature: 0 };
  const prefillOf = (h) => {
    const m = /prefill;desc="(\d+) chunks, (\d+) steps"/.exec(h.get('server-timing') || '');
    return m ? [Number(m[1]), Number(m[2])] : null;
  };
  const soloJoin = await req('POST', '/openai/v1/completions',
                             JSON.stringify(Object.assign({ model: 'conc' }, longPrompt600)));
  check('a 600-token prompt alone: 10 chunks, no step between them',
        soloJoin.status === 200 && JSON.stringify(prefillOf(soloJoin.headers)) === '[10,0]',
        [soloJoin.status, soloJoin.headers.get('server-timing')]);

  // Together: streamed and not, started at once and staggered; each
  // stream gets exactly its tokens alone.
  let got = await Promise.all(cases.map((c) => streamed(c).done));
  check('4 streams at once, streamed: each as alone',
        got.every((g, i) => g.text === alone[i] && g.usage.completion_tokens === cases[i].max_tokens),
        got.map((g) => g.text));
  got = await Promise.all(cases.map(async (c, i) => {
    await sleep(3 * i);
    const x = await client.completions.create(Object.assign({ model: 'conc' }, c));
    return x.choices[0].text;
  }));
  check('4 requests staggered, not streamed: each as alone', got.every((g, i) => g === alone[i]), got);
  const both = [cases[1], cases[1], cases[2], cases[2]];
  got = await Promise.all(both.map((c) => streamed(c).done));
  check('the same request twice at once: the same tokens twice',
        got[0].text === alone[1] && got[1].text === alone[1] && got[2].text === alone[2] &&
        got[3].text === alone[2], got.map((g) => g.text));

  // A stream joins while another decodes: the long one is still going
  // when the short ones end, so they were decoded alongside it.
  const longCase = { prompt: 'Twice', max_tokens: 4000, temperature: 0 };
  let longDone = false;
  let firstSeen;
  const seen = new Promise((res) => { firstSeen = res; });
  const long = streamed(longCase, () => firstSeen());
  long.done.then(() => { longDone = true; }, () => { longDone = true; });
  await seen;
  const mid = await Promise.all([cases[1], cases[3]].map((c) => streamed(c).done));
  check('streams that join while another decodes end first, each as alone',
        !longDone && mid[0].text === alone[1] && mid[1].text === alone[3],
        [longDone, mid.map((g) => g.text)]);

  // ... the long prompt (above) joins it.
  const joined = await req('POST', '/openai/v1/completions',
                           JSON.stringify(Object.assign({ model: 'conc' }, longPrompt600)));
  check('joining a running stream: 10 chunks with one of its steps between each two',
        joined.status === 200 && JSON.stringify(prefillOf(joined.headers)) === '[10,9]' && !longDone,
        [joined.status, joined.headers.get('server-timing'), longDone]);
  check('and the same tokens as alone',
        JSON.parse(joined.text).choices[0].text === JSON.parse(soloJoin.text).choices[0].text,
        [joined.text, soloJoin.text]);

  // A client that leaves cancels only its own stream: the other goes on
  // to its last token.
  const steady = { prompt: 'Steady', max_tokens: 300, temperature: 0 };
  const steadyAlone = (await client.completions.create(Object.assign({ model: 'conc' }, steady)))
    .choices[0].text;
  let steadyFirst;
  const steadySeen = new Promise((res) => { steadyFirst = res; });
  const s2 = streamed(steady, () => steadyFirst());
  await steadySeen;
  long.abort();
  const s2r = await s2.done;
  check('a client that leaves does not disturb the other streams',
        s2r.text === steadyAlone && s2r.reason === 'length' && s2r.usage.completion_tokens === 300,
        [s2r.text.length, steadyAlone.length, s2r.reason]);
  let line = null;
  for (let i = 0; i < 100 && !line; i++) {
    line = (await logLines('conc')).find((l) => /cancelled after \d+ of 4000 tokens/.test(l));
    if (!line) await sleep(100);
  }
  check('and its own stream is cancelled', !!line, line);

  // A small context: a long prompt joining a short stream leaves it a
  // gap, and when the shared slot reaches max_context the cache is
  // compacted; both streams still get their tokens alone.
  r = await deploy('small', { max_context: 64, scaling: { concurrency: 2, max: 1 } });
  check('deploy a 64-position generator of 2 streams: 201', r.status === 201, r);
  const shortCase = { model: 'small', prompt: 'ab', max_tokens: 60, temperature: 0 };
  const longPrompt = { model: 'small', prompt: 'x'.repeat(40), max_tokens: 20, temperature: 0 };
  const soloShort = (await client.completions.create(shortCase)).choices[0].text;
  const soloLong = (await client.completions.create(longPrompt)).choices[0].text;
  const [shr, lg] = await Promise.all([
    streamed(shortCase).done,
    client.completions.create(longPrompt).then((x) => x.choices[0].text)]);
  check('a long prompt joins a short stream at the end of the context: each as alone',
        shr.text === soloShort && lg === soloLong && shr.usage.completion_tokens === 60,
        [shr.text, soloShort, lg, soloLong]);

  // "batching" on a generator: new streams wait up to max_delay_us for
  // company and the ones that came together are prefilled in one run (a
  // delay of a second: the four requests sent at once are all there long
  // before it ends); each still gets the tokens it gets alone.
  const gdeploy = (name, batching, concurrency) => deploy(name, {
    max_context: 4096, memory_mb: 1024, batching, scaling: { concurrency, max: 1 } });
  r = await gdeploy('gauto', { mode: 'auto', slo_ms: 100 }, 4);
  check('batching mode auto on a generator is a 400 naming the field',
        r.status === 400 && r.text.includes('batching.mode'), r);
  r = await gdeploy('gone', { max_batch: 2 }, 1);
  check('batching on a generator of one stream per instance is a 400 naming concurrency',
        r.status === 400 && r.text.includes('scaling.concurrency'), r);
  r = await gdeploy('gmany', { max_batch: 8 }, 4);
  check('batching.max_batch above scaling.concurrency is a 400 naming both',
        r.status === 400 && r.text.includes('batching.max_batch') && r.text.includes('(4)'), r);
  r = await gdeploy('grouped', { max_batch: 4, max_delay_us: 1000000 }, 4);
  check('deploy a generator that prefills up to 4 new streams together: 201', r.status === 201, r);
  const grouped = await Promise.all(cases.map((c) => req('POST', '/openai/v1/completions',
    JSON.stringify(Object.assign({ model: 'grouped' }, c)))));
  check('4 requests at once are prefilled as one group of 4',
        grouped.every((g) => g.status === 200 &&
                      /prefill;desc="1 chunks, 0 steps, group of 4"/.test(g.headers.get('server-timing'))),
        grouped.map((g) => [g.status, g.headers.get('server-timing')]));
  check('each with the tokens it gets alone',
        grouped.every((g, i) => JSON.parse(g.text).choices[0].text === alone[i]),
        grouped.map((g) => g.text));
  const lone = await client.completions.create(Object.assign({ model: 'grouped' }, cases[1]));
  check('a lone request goes after its wait, as alone', lone.choices[0].text === alone[1], lone);

  const d = JSON.parse((await req('GET', '/v1/functions/conc')).text);
  check('all of it on one instance', (d.instances || []).length === 1, d.instances);
  const after = await client.completions.create(Object.assign({ model: 'conc' }, cases[0]));
  check('the instance serves on afterwards', after.choices[0].text === alone[0], after.choices[0].text);
}

// A promise that never settles (a stream that never sends its first
// token) empties the event loop: that is a failure, not a pass.
process.on('beforeExit', () => {
  console.log('FAIL: the test stopped before its end');
  process.exit(1);
});
main().then(() => process.exit(failed), (e) => {
  console.log('FAIL: ' + (e && e.stack || e));
  process.exit(1);
});
