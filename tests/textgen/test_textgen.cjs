// The text endpoints through the openai client and plain HTTP (see
// test_textgen.sh). Arguments: BASE_URL MODEL.onnx MODEL.onnx.json [DIGITS_DIR]
'use strict';
const fs = require('fs');
const http = require('http');
const OpenAI = require(process.env.OPENAI_MODULE).default;

const [base, modelPath, metaPath, digits] = process.argv.slice(2);
const meta = JSON.parse(fs.readFileSync(metaPath, 'utf8'));
let failed = 0;
function check(desc, cond, extra) {
  if (cond) console.log('ok: ' + desc);
  else {
    failed = 1;
    console.log('FAIL: ' + desc + (extra !== undefined ? ' (' + JSON.stringify(extra) + ')' : ''));
  }
}
// Bytes as text the way the server writes them: invalid UTF-8 becomes U+FFFD
// per maximal subpart (WHATWG's decoder does the same).
// Without a tokenizer a token is a byte: ids past 255 (the model's vocabulary
// is a little larger, for the tokenizer below) add nothing.
const decode = (ids) => new TextDecoder('utf-8').decode(Uint8Array.from(ids.filter((t) => t < 256)));

// A small byte-level BPE tokenizer.json over the same ids: each byte is the
// token of its value (GPT-2's byte-to-character mapping), plus two merges
// and an end-of-text token.
function tokenizerJson() {
  const printable = (b) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const vocab = {};
  let n = 0;
  for (let b = 0; b < 256; b++) vocab[String.fromCharCode(printable(b) ? b : 256 + n++)] = b;
  vocab['ll'] = 256;
  vocab['He'] = 257;
  return JSON.stringify({
    version: '1.0', added_tokens: [{ id: 258, content: '<|endoftext|>', special: true }],
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false },
    model: { type: 'BPE', vocab, merges: ['l l', 'H e'] },
  });
}

async function req(method, path, body, headers) {
  const r = await fetch(base + path, { method, body, headers });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

async function deploy(name, config) {
  return req('PUT', '/v1/functions/' + name, JSON.stringify(config));
}

async function upload(path) {
  const r = await req('POST', '/v1/blobs', fs.readFileSync(path));
  return JSON.parse(r.text).digest;
}

async function main() {
  const digest = await upload(modelPath);
  let r = await deploy('tiny', { model: digest, task: 'text-generation', max_context: 256 });
  check('deploy a text generator: 201', r.status === 201, r);
  // A prefill of 4096 positions needs 581 MiB of activations: more than
  // the default memory_mb of 512, which the deploy check refuses.
  r = await deploy('long', { model: digest, task: 'text-generation', max_context: 4096,
                             memory_mb: 1024, scaling: { max: 1 } });
  check('deploy a second one with a long context: 201', r.status === 201, r);
  r = await deploy('bad', { model: digest, task: 'text-generation',
                            scaling: { concurrency: 64 } });
  check('a generator with concurrency 64 is a 400 naming the field',
        r.status === 400 && r.text.includes('scaling.concurrency'), r);
  r = await req('POST', '/v1/blobs', tokenizerJson());
  const tokDigest = JSON.parse(r.text).digest;
  r = await deploy('tok', { model: digest, task: 'text-generation', max_context: 128,
                            tokenizer: tokDigest });
  check('deploy a generator with a tokenizer.json: 201', r.status === 201, r);
  r = await req('POST', '/v1/blobs', '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}');
  r = await deploy('badtok', { model: digest, task: 'text-generation',
                               tokenizer: JSON.parse(r.text).digest });
  check('a tokenizer that does not parse is a 400 saying so',
        r.status === 400 && /tokenizer/.test(r.text), r);
  r = await deploy('notok', { model: digest, task: 'text-generation',
                              tokenizer: 'sha256:' + '0'.repeat(64) });
  check('a tokenizer blob that is not there is a 400', r.status === 400 && /tokenizer/.test(r.text), r);
  if (digits) {
    const d = await upload(digits + '/model.onnx');
    r = await deploy('notkv', { model: d, task: 'text-generation' });
    check('a model without the KV-cache layout is a 400 naming what is missing',
          r.status === 400 && r.text.includes("no input 'input_ids'"), r);
  }

  const client = new OpenAI({ baseURL: base + '/openai/v1', apiKey: 'unused', maxRetries: 0 });
  const models = await client.models.list();
  const ids = models.data.map((m) => m.id);
  check('models lists the generators', ids.includes('tiny') && ids.includes('long') &&
        !ids.includes('bad'), ids);

  // Greedy: the reference continuation computed by PyTorch, step by step.
  const prompt = decode(meta.greedy_prompt);
  const want = decode(meta.greedy_tokens);
  const c = await client.completions.create({ model: 'tiny', prompt, max_tokens: 16,
                                              temperature: 0 });
  check('greedy completion equals the PyTorch reference', c.choices[0].text === want,
        [c.choices[0].text, want]);
  check('usage counts', c.usage.prompt_tokens === meta.greedy_prompt.length &&
        c.usage.completion_tokens === 16 && c.usage.total_tokens === 16 + meta.greedy_prompt.length,
        c.usage);
  check('finish_reason length', c.choices[0].finish_reason === 'length', c.choices[0]);

  // Streaming: the same text in pieces, then the usage.
  const stream = await client.completions.create({ model: 'tiny', prompt, max_tokens: 16,
                                                   temperature: 0, stream: true });
  let text = '', pieces = 0, last = null;
  for await (const ch of stream) {
    text += ch.choices[0].text;
    pieces++;
    last = ch;
  }
  check('streamed completion equals the whole one', text === want, [text, want]);
  check('streamed in several events', pieces > 2, pieces);
  check('the last event has the finish reason and usage',
        last.choices[0].finish_reason === 'length' && last.usage.completion_tokens === 16, last);

  // A template's warm spare warms up on a short prompt of its own and hands
  // that generator (its KV cache written) to the request it takes: the
  // request still gets the reference continuation.
  r = await deploy('spare', { model: digest, task: 'text-generation', max_context: 256,
                              scaling: { max: 1, keep_alive: 'fixed', idle_timeout_ms: 200,
                                         template_ttl_ms: 600000 } });
  check('deploy a generator that scales down to its template: 201', r.status === 201, r);
  const body = JSON.stringify({ model: 'spare', prompt, max_tokens: 16, temperature: 0 });
  r = await req('POST', '/openai/v1/completions', body);
  check('its first completion (from zero) equals the PyTorch reference',
        r.status === 200 && JSON.parse(r.text).choices[0].text === want, r);
  let spareWarm = false;
  for (let i = 0; i < 300 && !spareWarm; i++) {
    const d = JSON.parse((await req('GET', '/v1/functions/spare')).text);
    spareWarm = (d.instances || []).length === 0 &&
      (d.spares || []).some((x) => x.state === 'warm');
    if (!spareWarm) await new Promise((res) => setTimeout(res, 50));
  }
  check('the instance stopped and the template has a warm spare', spareWarm);
  r = await req('POST', '/openai/v1/completions', body);
  check('the spare takes the next request', r.headers.get('rouse-start') === 'template',
        r.headers.get('rouse-start'));
  check('the spare\'s completion equals the PyTorch reference',
        r.status === 200 && JSON.parse(r.text).choices[0].text === want, r);

  // From zero once the zygote has warmed the generator: the zygote keeps
  // its opened plan and prepared session, and the template forked for the
  // start takes them (nothing to open or prepare: both phases 0), and the
  // completion is still the reference. The zygote warms after a start, off
  // the request's path: tried again until a start finds it warm.
  let kept = null;
  const fromZero = [];
  for (let i = 0; i < 40 && !kept; i++) {
    await req('POST', '/v1/functions/spare/scale-to-zero');
    r = await req('POST', '/openai/v1/completions', body);
    fromZero.push(r.status === 200 && JSON.parse(r.text).choices[0].text === want);
    const d = JSON.parse((await req('GET', '/v1/functions/spare')).text);
    const c = (d.cold_starts || [])[0];
    if (r.headers.get('rouse-start') === 'zero' && c && c.start === 'zero' &&
        c.template_start === 'zygote' && c.plan_open_ms === 0 && c.prepare_ms === 0)
      kept = c;
    else await new Promise((res) => setTimeout(res, 250));
  }
  check('a template from zero takes the session the zygote kept (no open, no prepare)', !!kept,
        kept);
  check('every completion from zero equals the PyTorch reference', fromZero.every((x) => x),
        fromZero);

  // Chat, whole and streamed.
  const messages = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Hi' }];
  const cc = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 12,
                                                    temperature: 0 });
  check('chat answers as the assistant', cc.choices[0].message.role === 'assistant' &&
        cc.usage.completion_tokens === 12, cc.choices[0]);
  // The documented template: "<role>: <content>\n" per message, then "assistant:".
  const templ = 'system: You are terse.\nuser: Hi\nassistant:';
  check('chat prompt follows the documented template',
        cc.usage.prompt_tokens === Buffer.byteLength(templ), cc.usage);
  const cs = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 12,
                                                    temperature: 0, stream: true });
  let ctext = '', role = null;
  for await (const ch of cs) {
    if (ch.choices.length && ch.choices[0].delta.role) role = ch.choices[0].delta.role;
    if (ch.choices.length) ctext += ch.choices[0].delta.content || '';
  }
  check('streamed chat equals the whole one', ctext === cc.choices[0].message.content && role === 'assistant',
        [ctext, cc.choices[0].message.content, role]);

  // Sampling: a seed repeats; other seeds give other text.
  const sample = (seed) => client.completions.create({ model: 'tiny', prompt, max_tokens: 24,
                                                       temperature: 1.5, top_k: 50, top_p: 0.95,
                                                       seed });
  const s1 = (await sample(7)).choices[0].text, s2 = (await sample(7)).choices[0].text;
  check('the same seed samples the same text', s1 === s2, [s1, s2]);
  const others = [(await sample(8)).choices[0].text, (await sample(9)).choices[0].text];
  check('other seeds sample other text', others.some((t) => t !== s1), [s1, others]);

  // Stop strings end the text before them, streamed or not.
  const k = meta.greedy_tokens.findIndex((t, i) => i > 0 && t >= 0x21 && t < 0x7f);
  const stopAt = String.fromCharCode(meta.greedy_tokens[k]);
  const before = decode(meta.greedy_tokens.slice(0, meta.greedy_tokens.indexOf(meta.greedy_tokens[k])));
  const st = await client.completions.create({ model: 'tiny', prompt, max_tokens: 16,
                                               temperature: 0, stop: [stopAt] });
  check('a stop string ends the text before it', st.choices[0].text === before &&
        st.choices[0].finish_reason === 'stop', [st.choices[0], before]);
  const sst = await client.completions.create({ model: 'tiny', prompt, max_tokens: 16,
                                                temperature: 0, stop: stopAt, stream: true });
  let stext = '', sreason = null;
  for await (const ch of sst) {
    stext += ch.choices[0].text;
    if (ch.choices[0].finish_reason) sreason = ch.choices[0].finish_reason;
  }
  check('streamed, too', stext === before && sreason === 'stop', [stext, sreason]);

  // The tokenizer encodes the prompt: "Hello" is He + ll + o.
  const tk = await client.completions.create({ model: 'tok', prompt, max_tokens: 8, temperature: 0 });
  check('the tokenizer encodes the prompt (3 tokens for "Hello")', tk.usage.prompt_tokens === 3,
        tk.usage);

  // Bad input: 400s that name what is wrong.
  const err = async (params) => {
    try {
      await client.completions.create(Object.assign({ model: 'tiny', prompt }, params));
      return null;
    } catch (e) {
      return e;
    }
  };
  let e = await err({ prompt: 'x'.repeat(250), max_tokens: 10 });
  check('a prompt past the context is a 400 naming both lengths', e && e.status === 400 &&
        /256/.test(e.message) && /250/.test(e.message), e && e.message);
  const t = await client.completions.create({ model: 'tiny', prompt: 'x'.repeat(250),
                                              max_tokens: 10, temperature: 0, truncate: true });
  check('truncate: true keeps the end of the prompt', t.usage.prompt_tokens === 246, t.usage);
  e = await err({ max_tokens: 0 });
  check('max_tokens 0 is a 400', e && e.status === 400 && /max_tokens/.test(e.message), e && e.message);
  e = await err({ max_tokens: 100000 });
  check('max_tokens past the context is a 400', e && e.status === 400 && /max_tokens/.test(e.message),
        e && e.message);
  e = await err({ temperature: 5 });
  check('temperature out of range is a 400', e && e.status === 400 && /temperature/.test(e.message),
        e && e.message);
  e = await err({ model: 'nosuch' });
  check('an unknown model is a 404', e && e.status === 404, e && e.message);
  r = await req('POST', '/openai/v1/completions',
                Buffer.concat([Buffer.from('{"model":"tiny","prompt":"'), Buffer.from([0xff, 0xfe]),
                               Buffer.from('"}')]));
  check('invalid UTF-8 is a 400 saying so', r.status === 400 && /UTF-8/.test(r.text), r.text);
  r = await req('POST', '/openai/v1/completions',
                JSON.stringify({ model: 'tiny', prompt, max_tokens: 2, frequency_penalty: 0.5,
                                 logit_bias: {} }));
  const w = r.headers.get('warning') || '';
  check('unknown parameters are ignored and listed in a Warning header',
        r.status === 200 && w.includes('frequency_penalty') && w.includes('logit_bias'), w);
  const timing = r.headers.get('server-timing') || '';
  check('Server-Timing has the time to first token and between tokens',
        /ttft;dur=/.test(timing) && /itl;dur=/.test(timing), timing);
  const metrics = (await req('GET', '/metrics')).text;
  const count = (fam) => Number((new RegExp(fam + '_count\\{function="tiny"\\} (\\d+)').exec(metrics) || [])[1]);
  check('/metrics has time to first token and inter-token latency per function',
        count('rouse_time_to_first_token_seconds') > 5 && count('rouse_inter_token_latency_seconds') > 5,
        metrics.split('\n').filter((l) => /token/.test(l)).slice(0, 6));
  r = await req('POST', '/openai/v1/completions', JSON.stringify({ prompt }));
  check('a request without a model is a 400', r.status === 400 && /model/.test(r.text), r.text);

  // A client that leaves mid-stream stops the generation at once: the
  // instance logs how far it got, well short of max_tokens.
  await new Promise((resolve) => {
    const body = JSON.stringify({ model: 'long', prompt: 'Once', max_tokens: 4000, stream: true,
                                  temperature: 0 });
    const rq = http.request(base + '/openai/v1/completions', { method: 'POST' }, (res) => {
      res.once('data', () => {
        rq.destroy();
        resolve();
      });
    });
    rq.on('error', () => resolve());
    rq.end(body);
  });
  let line = null;
  for (let i = 0; i < 100 && !line; i++) {
    const logs = JSON.parse((await req('GET', '/v1/functions/long/logs')).text);
    line = (logs.lines || []).map((l) => l.line || l.text || JSON.stringify(l))
      .find((l) => /cancelled after/.test(l));
    if (!line) await new Promise((res) => setTimeout(res, 100));
  }
  const m = line && /cancelled after (\d+) of 4000 tokens/.exec(line);
  check('a client that leaves cancels its generation', m && Number(m[1]) < 4000, line);
  const after = await client.completions.create({ model: 'long', prompt, max_tokens: 4,
                                                  temperature: 0 });
  check('and frees the instance for the next request', after.usage.completion_tokens === 4, after.usage);

  // Unstreamed, the client leaves while the instance generates (before any
  // reply): serve sees the hang-up and cancels it too.
  const ac = new AbortController();
  const pending = fetch(base + '/openai/v1/completions', {
    method: 'POST', signal: ac.signal,
    body: JSON.stringify({ model: 'long', prompt: 'Twice', max_tokens: 4000, temperature: 0 }),
  }).catch(() => null);
  let busy = false;
  for (let i = 0; i < 200 && !busy; i++) {
    const d = JSON.parse((await req('GET', '/v1/functions/long')).text);
    busy = JSON.stringify(d.instances || []).includes('"busy"');
    if (!busy) await new Promise((res) => setTimeout(res, 20));
  }
  ac.abort();
  await pending;
  let n = 0;
  for (let i = 0; i < 100 && n < 2; i++) {
    const logs = JSON.parse((await req('GET', '/v1/functions/long/logs')).text);
    n = (logs.lines || []).map((l) => l.line || l.text || JSON.stringify(l))
      .filter((l) => /cancelled after \d+ of 4000 tokens/.test(l)).length;
    if (n < 2) await new Promise((res) => setTimeout(res, 100));
  }
  check('an unstreamed generation whose client leaves is cancelled too', busy && n === 2, [busy, n]);
}

main().then(() => process.exit(failed), (e) => {
  console.log('FAIL: ' + (e && e.stack || e));
  process.exit(1);
});
