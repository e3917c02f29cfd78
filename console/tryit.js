// "Try it": sends one inference (Open Inference Protocol v2) and shows its
// outputs, the top classes of a classifier's, with how its instance
// started (Rouse-Start) and where the time went (Server-Timing). Image
// models (one input of shape [N, C, H, W]) take an image file, scaled to
// H x W and to [0, 1] per channel; any model takes a JSON request.

import { call } from './api.js';
import { h, clear, append, setText } from './dom.js';
import * as f from './fmt.js';

let fn, meta, text, out, img;

export async function mount(sec, name) {
  fn = name;
  text = h('textarea', { id: 'tryit-request', rows: 6, spellcheck: 'false',
                         'aria-label': 'request (JSON)' });
  out = h('div', { id: 'tryit-result', class: 'result' });
  const file = h('input', { type: 'file', id: 'tryit-file', accept: '.json,image/*' });
  file.addEventListener('change', () => {
    if (!file.files[0]) return;
    load(file.files[0]).catch((e) => {
      clear(out).append(h('p', { class: 'note bad' }, 'That file cannot be read: ' + e.message));
    });
  });
  img = h('img', { class: 'preview', alt: '', hidden: true });
  append(sec, [h('h2', {}, 'Try it'),
    h('p', { class: 'muted small', id: 'tryit-hint' }, 'A JSON request, or a file: JSON or an image.'),
    h('div', { class: 'row' }, file, img), text,
    h('div', { class: 'row' }, h('button', { class: 'primary', id: 'tryit-send', onclick: send },
                                 'Send')),
    out]);
  try {
    const res = await call('/v2/models/' + encodeURIComponent(fn));
    meta = res.ok ? await res.json() : null;
  } catch (e) { meta = null; }
  if (meta && meta.inputs) {
    const i0 = meta.inputs[0];
    setText(sec.querySelector('#tryit-hint'),
            meta.inputs.map((i) => `${i.name}: ${i.datatype} [${i.shape.join(', ')}]`).join('; ') +
            (imageInput() ? ' · an image file is scaled to fit' : ''));
    const shape = i0.shape.map((d) => (d < 0 ? 1 : d));
    const n = shape.reduce((a, b) => a * b, 1);
    // A request the user already gave (typed, or a file read while the
    // metadata was on its way) is never replaced by the zero template.
    if (n <= 4096 && text.value === '' && !file.files[0]) {
      text.value = JSON.stringify({ inputs: meta.inputs.map((i) => ({
        name: i.name, shape: i.shape.map((d) => (d < 0 ? 1 : d)), datatype: i.datatype,
        data: new Array(i.shape.map((d) => (d < 0 ? 1 : d)).reduce((a, b) => a * b, 1)).fill(0),
      })) });
    }
  }
}

function imageInput() {
  if (!meta || !meta.inputs || meta.inputs.length !== 1) return null;
  const s = meta.inputs[0].shape;
  if (s.length !== 4 || !(s[1] === 1 || s[1] === 3) || s[2] <= 0 || s[3] <= 0) return null;
  return { name: meta.inputs[0].name, c: s[1], hgt: s[2], wid: s[3], datatype: meta.inputs[0].datatype };
}

async function load(file) {
  if (file.type.startsWith('image/')) {
    const spec = imageInput();
    if (!spec) {
      setText(out, 'This model takes no image: its input is not [N, C, H, W].');
      return;
    }
    const bmp = await createImageBitmap(file);
    const canvas = new OffscreenCanvas(spec.wid, spec.hgt);
    const ctx = canvas.getContext('2d');
    ctx.drawImage(bmp, 0, 0, spec.wid, spec.hgt);
    const px = ctx.getImageData(0, 0, spec.wid, spec.hgt).data;
    const plane = spec.wid * spec.hgt;
    const data = new Array(spec.c * plane);
    for (let p = 0; p < plane; p++) {
      if (spec.c === 1) {
        data[p] = (px[4 * p] + px[4 * p + 1] + px[4 * p + 2]) / (3 * 255);
      } else {
        for (let c = 0; c < 3; c++) data[c * plane + p] = px[4 * p + c] / 255;
      }
    }
    img.src = URL.createObjectURL(file);
    img.hidden = false;
    text.value = JSON.stringify({ inputs: [{ name: spec.name, shape: [1, spec.c, spec.hgt, spec.wid],
                                             datatype: spec.datatype, data }] });
  } else {
    img.hidden = true;
    text.value = await file.text();
  }
}

async function send() {
  clear(out);
  let body;
  try {
    body = JSON.stringify(JSON.parse(text.value));
  } catch (e) {
    out.append(h('p', { class: 'note bad' }, 'The request is not valid JSON: ' + e.message));
    return;
  }
  const t0 = performance.now();
  let res;
  try {
    res = await call(`/v2/models/${encodeURIComponent(fn)}/infer`,
                     { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
  } catch (e) {
    out.append(h('p', { class: 'note bad' }, e.message));
    return;
  }
  const ms = performance.now() - t0;
  const reply = await res.json().catch(() => null);
  out.append(h('dl', { class: 'facts' },
    h('dt', {}, 'Status'), h('dd', { id: 'tryit-status' }, String(res.status)),
    h('dt', {}, 'Start'), h('dd', { id: 'tryit-start' }, res.headers.get('Rouse-Start') || '–'),
    h('dt', {}, 'Round trip'), h('dd', {}, f.ms(ms)),
    h('dt', {}, 'Server-Timing'), h('dd', { id: 'tryit-timing', class: 'mono' },
                                    timing(res.headers.get('Server-Timing'))),
    h('dt', {}, 'Request id'), h('dd', { class: 'mono' }, res.headers.get('X-Request-Id') || '–')));
  if (!res.ok || !reply) {
    out.append(h('p', { class: 'note bad' }, (reply && reply.error) || 'HTTP ' + res.status));
    return;
  }
  for (const o of reply.outputs || []) out.append(showOutput(o));
}

function timing(header) {
  if (!header) return '–';
  return header.split(',').map((part) => {
    const [nm, ...params] = part.trim().split(';');
    const dur = params.map((p) => p.trim()).find((p) => p.startsWith('dur='));
    return dur ? `${nm} ${f.ms(Number(dur.slice(4)))}` : nm;
  }).join(' · ');
}

function showOutput(o) {
  const data = (o.data || []).flat(Infinity);
  const classes = o.shape && o.shape.length <= 2 && (o.shape.length === 1 || o.shape[0] === 1) &&
                  data.length >= 2 && data.length <= 100000 && typeof data[0] === 'number';
  const box = h('div', { class: 'output', 'data-output': o.name },
                h('h3', {}, o.name, ' ', h('span', { class: 'muted small' },
                  `${o.datatype} [${(o.shape || []).join(', ')}]`)));
  if (!classes) {
    const shown = data.slice(0, 32).map((v) => (typeof v === 'number' ? +v.toPrecision(5) : v));
    box.append(h('pre', { class: 'mono' }, JSON.stringify(shown) + (data.length > 32 ? ' …' : '')));
    return box;
  }
  const top = data.map((v, k) => [k, v]).sort((a, b) => b[1] - a[1]).slice(0, 5);
  const sum = data.reduce((a, b) => a + b, 0);
  const isProb = data.every((v) => v >= 0 && v <= 1) && Math.abs(sum - 1) < 1e-3;
  box.append(h('table', { class: 'grid topk' },
    h('thead', {}, h('tr', {}, h('th', { class: 'n' }, 'Class'),
                     h('th', { class: 'n' }, isProb ? 'Probability' : 'Score'))),
    h('tbody', {}, top.map(([k, v], i) => h('tr', { class: i === 0 ? 'best' : '' },
      h('td', { class: 'n top-class' }, String(k)),
      h('td', { class: 'n' }, isProb ? f.pct(v) : v.toFixed(4)))))));
  return box;
}
