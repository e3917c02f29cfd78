// Jobs: how many asynchronous jobs are queued, running and failed, the
// failed ones (dead letters) with a retry button each, and the progress
// of the batches those jobs belong to. From GET /v1/jobs and /v1/batches,
// every 3 s (a list is read from the registry: counting by listing costs
// more than the figures on the other pages).

import { json, sendJson, canEdit } from './api.js';
import { h, clear, setText } from './dom.js';
import * as f from './fmt.js';

const LIMIT = 1000;
const EVERY_MS = 3000;
let el, who, counts, last;

export async function mount(root, ctx) {
  el = root;
  who = ctx.who;
  counts = {};
  last = 0;
  const cards = h('div', { class: 'cards' });
  for (const st of ['queued', 'running', 'failed']) {
    counts[st] = h('span', { class: 'num', id: 'jobs-' + st }, '–');
    cards.append(h('div', { class: 'card' }, h('div', { class: 'label' }, st), counts[st]));
  }
  root.append(h('h1', {}, 'Jobs'), cards,
    h('section', {}, h('h2', {}, 'Dead letters'), h('p', { class: 'note', id: 'jobs-note' }),
      h('div', { id: 'dead' })),
    h('section', {}, h('h2', {}, 'Batches'), h('div', { id: 'batches' })));
}

async function countOf(status) {
  const r = await json(`/v1/jobs?status=${status}&limit=${LIMIT}`);
  return r;
}

export async function tick() {
  if (Date.now() - last < EVERY_MS) return;
  last = Date.now();
  const [q, r, fl] = await Promise.all(['queued', 'running', 'failed'].map(countOf));
  const show = (x) => (x.next ? `${LIMIT}+` : f.count(x.jobs.length));
  setText(counts.queued, show(q));
  setText(counts.running, show(r));
  setText(counts.failed, show(fl));
  const edit = canEdit(who);
  const dead = fl.jobs.slice(-50).reverse();
  const box = clear(el.querySelector('#dead'));
  if (!dead.length) box.append(h('p', { class: 'muted' }, 'No failed job.'));
  else box.append(h('div', { class: 'scroll' }, h('table', { class: 'grid', id: 'dead-letters' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Job'), h('th', {}, 'Function'), h('th', { class: 'n' }, 'Attempts'),
      h('th', {}, 'Finished'), h('th', {}, 'Error'), edit ? h('th', {}, '') : null)),
    h('tbody', {}, dead.map((j) => h('tr', {},
      h('td', { class: 'mono' }, j.id), h('td', {}, `${j.function} v${j.version}`),
      h('td', { class: 'n' }, String(j.attempts)), h('td', {}, f.ago(j.finished_ms)),
      h('td', { class: 'wrap' }, j.last_error || (j.http_status ? 'HTTP ' + j.http_status : '–')),
      edit ? h('td', {}, h('button', { class: 'edit retry', onclick: () => retry(j.id) }, 'Retry'))
           : null))))));
  const ids = new Set();
  for (const list of [q, r, fl]) for (const j of list.jobs) if (j.batch) ids.add(j.batch);
  const batches = await Promise.all([...ids].slice(-20).map((id) => json('/v1/batches/' + id)));
  const bb = clear(el.querySelector('#batches'));
  if (!batches.length) bb.append(h('p', { class: 'muted' }, 'No batch among these jobs.'));
  for (const b of batches) {
    bb.append(h('div', { class: 'batch' },
      h('span', { class: 'mono' }, b.id), ` ${b.function} v${b.version} · ${b.status} · `,
      `${f.count(b.counts.succeeded)} ok, ${f.count(b.counts.failed)} failed of ${f.count(b.total)}`,
      h('progress', { max: 1, value: b.progress }), ' ', f.pct(b.progress)));
  }
  el.dataset.loaded = '1';
}

async function retry(id) {
  const note = el.querySelector('#jobs-note');
  try {
    await sendJson('POST', `/v1/jobs/${id}/retry`);
    setText(note, `Job ${id} queued again.`);
    note.className = 'note ok';
    last = 0; // show it at the next second
  } catch (e) {
    setText(note, e.message);
    note.className = 'note bad';
  }
}
