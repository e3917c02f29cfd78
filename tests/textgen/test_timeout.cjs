// timeout_ms of a text generator ends only the generation that ran out: its
// client gets the error (an SSE error event mid-stream, a 504 when nothing
// was sent yet) and its instance serves on, the other streams included.
// Run by test_textgen.sh with the `rouse-fault` binary and
// ROUSE_FAULT_STEP_US set, which makes every decode step sleep that long:
// a 4000-token generation then lasts at least 4000 of those, far past the
// function's timeout_ms, whatever the machine's speed. Arguments: BASE_URL
// MODEL.onnx MODEL.onnx.json
'use strict';
const fs = require('fs');
const http = require('http');

const [base, modelPath] = process.argv.slice(2);
const stepUs = Number(process.env.ROUSE_FAULT_STEP_US || 0);
let failed = 0;
function check(desc, cond, extra) {
  if (cond) console.log('ok: ' + desc);
  else {
    failed = 1;
    console.log('FAIL: ' + desc + (extra !== undefined ? ' (' + JSON.stringify(extra) + ')' : ''));
  }
}
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

async function req(method, path, body) {
  const r = await fetch(base + path, { method, body });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

// A streamed completion over plain HTTP: its status, text, error event,
// finish reason; onFirst runs at its first piece of text.
function streamed(model, params, onFirst) {
  return new Promise((resolve, reject) => {
    const rq = http.request(base + '/openai/v1/completions', { method: 'POST' }, (res) => {
      let buf = '', text = '', reason = null, error = null, done = false, first = true;
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (ev === 'data: [DONE]') done = true;
          if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
          const j = JSON.parse(ev.slice(6));
          if (j.error) error = j.error;
          if (j.choices && j.choices.length) {
            text += j.choices[0].text || '';
            if (j.choices[0].finish_reason) reason = j.choices[0].finish_reason;
          }
          if (first && text.length) {
            first = false;
            if (onFirst) onFirst();
          }
        }
      });
      res.on('end', () => resolve({ status: res.statusCode, text, reason, error, done }));
      res.on('error', reject);
    });
    rq.on('error', reject);
    rq.end(JSON.stringify(Object.assign({ model, stream: true }, params)));
  });
}

async function complete(model, params) {
  const r = await req('POST', '/openai/v1/completions',
                      JSON.stringify(Object.assign({ model }, params)));
  return { status: r.status, body: JSON.parse(r.text) };
}

async function pids(fn) {
  const d = JSON.parse((await req('GET', '/v1/functions/' + fn)).text);
  return (d.instances || []).map((i) => i.pid);
}

async function logLines(fn) {
  const logs = JSON.parse((await req('GET', '/v1/functions/' + fn + '/logs')).text);
  return (logs.lines || []).map((l) => l.line || l.text || JSON.stringify(l));
}

async function waitLog(fn, re) {
  for (let i = 0; i < 100; i++) {
    const line = (await logLines(fn)).find((l) => re.test(l));
    if (line) return line;
    await sleep(100);
  }
  return null;
}

async function main() {
  check('decode steps are slowed down (ROUSE_FAULT_STEP_US)', stepUs >= 1000, stepUs);
  const digest = JSON.parse((await req('POST', '/v1/blobs', fs.readFileSync(modelPath))).text).digest;
  const timeoutMs = 5000;
  // A 4000-token generation takes at least 4000 x stepUs: with 5 ms, 20 s.
  check('a long generation outlasts timeout_ms by construction', 4000 * stepUs / 1000 > 2 * timeoutMs);
  const short = { prompt: 'The quick brown fox jumps', max_tokens: 24, temperature: 0 };
  const long = { prompt: 'Twice', max_tokens: 4000, temperature: 0 };

  for (const concurrency of [2, 1]) {
    const fn = 'slow' + concurrency;
    const r = await req('PUT', '/v1/functions/' + fn, JSON.stringify({
      model: digest, task: 'text-generation', max_context: 4096, memory_mb: 1024,
      timeout_ms: timeoutMs,
      scaling: { concurrency, min: 1, max: 1 } }));
    check(fn + ': deployed with timeout_ms ' + timeoutMs + ' and concurrency ' + concurrency,
          r.status === 201, r);
    // Its instance started ahead (scaling.min): no request's deadline
    // pays for a start.
    let ready = false;
    for (let i = 0; i < 600 && !ready; i++) {
      const d = JSON.parse((await req('GET', '/v1/functions/' + fn)).text);
      ready = (d.instances || []).some((x) => x.state === 'idle' || x.state === 'ready');
      if (!ready) await sleep(100);
    }
    check(fn + ': its instance is up', ready);
    const solo = await complete(fn, short);
    check(fn + ': a short generation alone', solo.status === 200 &&
          solo.body.choices[0].finish_reason === 'length', solo);
    const before = await pids(fn);

    // Mid-stream: an error event, then [DONE]; the stream alongside it
    // (concurrency 2) gets all of its tokens.
    let firstSeen;
    const seen = new Promise((res) => { firstSeen = res; });
    const a = streamed(fn, long, () => firstSeen());
    await seen;
    const other = concurrency > 1 ? streamed(fn, short) : null;
    const ar = await a;
    check(fn + ': the long stream ends with a timeout_ms error event and [DONE]',
          ar.status === 200 && ar.error && /timeout_ms \(5000 ms\)/.test(ar.error) && ar.done &&
          ar.text.length > 0 && ar.text.length < 4000, [ar.status, ar.error, ar.done, ar.text.length]);
    if (other) {
      const o = await other;
      check(fn + ': the stream decoded alongside it ends as alone',
            o.status === 200 && o.error === null && o.reason === 'length' &&
            o.text === (solo.body.choices || [{}])[0].text, o);
    }
    // Nothing sent yet (not streamed): a 504 naming timeout_ms.
    const b = await complete(fn, long);
    check(fn + ': unstreamed, it is a 504 naming timeout_ms',
          b.status === 504 && /timeout_ms \(5000 ms\)/.test(b.body.error || ''), b);
    const line = await waitLog(fn, /ended after \d+ of 4000 tokens: it exceeded timeout_ms/);
    check(fn + ': the instance says which generation it ended', !!line, line);

    // The same instance serves on.
    const after = await complete(fn, short);
    check(fn + ': the instance serves the next request as before',
          after.status === 200 &&
          after.body.choices[0].text === (solo.body.choices || [{}])[0].text, after);
    const now = await pids(fn);
    check(fn + ': still the one instance it was (not stopped)',
          before.length === 1 && now.length === 1 && now[0] === before[0], [before, now]);
    const killed = (await logLines(fn)).find((l) => /killed after/.test(l));
    check(fn + ': no instance was killed', !killed, killed);
  }
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
