// A function: its live figures and charts (once a second), its versions
// and aliases with their traffic split (move, roll back, weigh, each after
// a confirmation), its scaling settings (checked by the server with a dry
// run before they are deployed), the last cold starts as a waterfall, its
// recent logs (followed live) and a panel that sends an inference.

import { json, sendJson, canEdit, ApiError } from './api.js';
import { h, clear, append, setText, confirmDialog } from './dom.js';
import { bars, stack, waterfall } from './charts.js';
import * as tryit from './tryit.js';
import * as logs from './logs.js';
import * as f from './fmt.js';

let name, who, el, live, desc, manage;
const SCALING = [
  ['min', 'Instances kept warm', ''], ['max', 'Instances at most', ''],
  ['concurrency', 'Calls per instance', ''], ['queue_depth', 'Queue length', 'calls'],
  ['idle_timeout_ms', 'Idle instance kept', 'ms'], ['template_ttl_ms', 'Template kept', 'ms'],
];

export async function mount(root, ctx) {
  name = ctx.arg;
  who = ctx.who;
  el = root;
  manage = true;
  live = {
    rate: h('span', { class: 'num' }, '–'), p50: h('span', { class: 'num' }, '–'),
    p99: h('span', { class: 'num' }, '–'), errors: h('span', { class: 'num' }, '–'),
    inst: h('span', { class: 'num' }, '–'), bar: h('div', { class: 'bar-holder wide' }),
    rateChart: h('div', { class: 'chart-holder', id: 'rate-chart' }),
    latChart: h('div', { class: 'chart-holder', id: 'latency-chart' }),
    cold: h('div', { class: 'chart-holder cold', id: 'cold-chart' }),
    coldNote: h('p', { class: 'muted small' }),
  };
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Functions'), ' / ', name),
    h('h1', {}, name, ' ', h('span', { class: 'muted', id: 'default-version' })),
    h('div', { class: 'cards' },
      card('Rate (10 s)', live.rate), card('p50 (5 min)', live.p50), card('p99 (5 min)', live.p99),
      card('Errors (1 h)', live.errors), card('Instances', live.inst, live.bar)),
    h('div', { class: 'two' },
      h('section', {}, h('h2', {}, 'Requests, last hour'), live.rateChart),
      h('section', {}, h('h2', {}, 'Latency, last hour'), live.latChart)),
    h('section', { id: 'routing' }),
    h('section', { id: 'scaling' }),
    h('section', {}, h('h2', {}, 'Cold starts'), live.cold, live.coldNote),
    h('div', { class: 'two' },
      h('section', { id: 'tryit' }),
      h('section', { id: 'logs' })));
  try {
    await loadDescription();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 403)) throw e;
    // A key that may call the function but not manage it (role invoke):
    // only "try it".
    manage = false;
    const t = root.querySelector('#tryit');
    clear(root).append(
      h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Functions'), ' / ', name),
      h('h1', {}, name),
      h('p', { class: 'note', id: 'no-manage' },
        `This key (role ${who.role}) may call ${name} but not see or change its versions, ` +
        'scaling or logs.'), t);
    tryit.mount(t, name);
    root.dataset.loaded = '1';
    return;
  }
  tryit.mount(root.querySelector('#tryit'), name);
  logs.mount(root.querySelector('#logs'), name);
}

function card(label, value, extra) {
  return h('div', { class: 'card' }, h('div', { class: 'label' }, label), value, extra);
}

async function loadDescription() {
  desc = await json('/v1/functions/' + encodeURIComponent(name));
  setText(el.querySelector('#default-version'), 'v' + desc.latest);
  renderRouting();
  renderScaling();
  renderCold();
}

// --- versions and aliases ---------------------------------------------------------------

function weightsOf(version) {
  const out = [];
  for (const a of desc.aliases) {
    const total = a.routes.reduce((s, r) => s + r.weight, 0);
    for (const r of a.routes) {
      if (r.version === version) out.push(`${a.name} ${Math.round((r.weight / total) * 100)} %`);
    }
  }
  return out.join(', ');
}

function renderRouting() {
  const sec = clear(el.querySelector('#routing'));
  const edit = canEdit(who);
  const versions = [...desc.versions].reverse();
  sec.append(h('h2', {}, 'Versions and aliases'));
  if (edit && desc.versions.length > 1) {
    sec.append(h('p', {}, h('button', { id: 'rollback', class: 'danger edit',
                                        onclick: rollback }, 'Roll back latest')));
  }
  sec.append(h('div', { class: 'scroll' }, h('table', { class: 'grid', id: 'versions' },
    h('thead', {}, h('tr', {}, h('th', { class: 'n' }, 'Version'), h('th', {}, 'Model'),
                     h('th', {}, 'Deployed'), h('th', { class: 'n' }, 'Memory'),
                     h('th', {}, 'Traffic'))),
    h('tbody', {}, versions.map((v) => h('tr', { 'data-version': v.version },
      h('td', { class: 'n' }, 'v' + v.version),
      h('td', { class: 'mono' }, (v.model || '').replace('sha256:', '').slice(0, 12)),
      h('td', {}, f.time(v.created_ms)),
      h('td', { class: 'n' }, v.config ? v.config.memory_mb + ' MB' : '–'),
      h('td', {}, weightsOf(v.version) || '–')))))));
  for (const a of desc.aliases) sec.append(aliasEditor(a, edit));
}

function aliasEditor(a, edit) {
  const box = h('div', { class: 'alias', 'data-alias': a.name });
  const routes = a.routes.map((r) => ({ ...r }));
  const list = h('div', { class: 'routes' });
  const draw = () => {
    clear(list);
    routes.forEach((r, i) => {
      const sel = h('select', { 'aria-label': 'version', disabled: !edit },
        desc.versions.map((v) => h('option', { value: v.version, selected: v.version === r.version },
                                   'v' + v.version)));
      sel.addEventListener('change', () => { r.version = Number(sel.value); });
      const w = h('input', { type: 'number', min: 0, max: 100, value: r.weight,
                             'aria-label': 'weight', disabled: !edit, class: 'weight' });
      w.addEventListener('input', () => { r.weight = Number(w.value); });
      list.append(h('div', { class: 'route' }, sel, ' weight ', w,
        edit && routes.length > 1
          ? h('button', { class: 'link edit', onclick: () => { routes.splice(i, 1); draw(); } },
              'remove') : null));
    });
  };
  draw();
  box.append(h('h3', {}, 'alias ', h('span', { class: 'mono' }, a.name)), list);
  if (edit) {
    box.append(h('div', { class: 'row edit' },
      h('button', { onclick: () => { routes.push({ version: desc.latest, weight: 0 }); draw(); } },
        'Add a route'),
      h('button', { class: 'primary save-alias', onclick: () => saveAlias(a.name, routes) },
        'Save alias')));
  }
  return box;
}

async function saveAlias(alias, routes) {
  const total = routes.reduce((s, r) => s + r.weight, 0);
  const text = routes.map((r) => `v${r.version} at ${total ? Math.round(r.weight / total * 100) : 0} %`)
    .join(', ');
  if (!await confirmDialog(`Change alias ${alias}?`, h('p', {}, `${alias} will send ${text}.`)))
    return;
  await act(() => sendJson('PUT', `/v1/functions/${encodeURIComponent(name)}/aliases/` +
                           encodeURIComponent(alias), { routes }));
}

async function rollback() {
  const prev = desc.versions.length > 1 ? desc.versions[desc.versions.length - 2].version : null;
  const ok = await confirmDialog(`Roll back ${name}?`,
    h('p', {}, `The default alias moves from v${desc.latest} back to the version before it` +
               (prev ? ` (v${prev} or earlier).` : '.')), 'Roll back');
  if (!ok) return;
  await act(() => sendJson('POST', `/v1/functions/${encodeURIComponent(name)}/rollback`));
}

async function act(fn) {
  const note = el.querySelector('#action-note') || h('p', { id: 'action-note', class: 'note' });
  el.querySelector('#routing').prepend(note);
  try {
    const r = await fn();
    setText(note, 'Done' + (r && r.version ? `: v${r.version}` : '') + '.');
    note.className = 'note ok';
  } catch (e) {
    setText(note, e.message);
    note.className = 'note bad';
  }
  await loadDescription();
  el.querySelector('#routing').prepend(note);
}

// --- scaling ---------------------------------------------------------------------------

function currentConfig() {
  const v = desc.versions.find((x) => x.version === desc.latest) ||
            desc.versions[desc.versions.length - 1];
  return v ? v.config : null;
}

function renderScaling() {
  const sec = clear(el.querySelector('#scaling'));
  const cfg = currentConfig();
  sec.append(h('h2', {}, 'Scaling'));
  if (!cfg) return;
  const edit = canEdit(who);
  const inputs = {};
  const grid = h('div', { class: 'form' });
  for (const [key, label, unit] of SCALING) {
    inputs[key] = h('input', { type: 'number', min: 0, value: cfg.scaling[key], name: key,
                               disabled: !edit, id: 'scaling-' + key });
    grid.append(h('label', { for: 'scaling-' + key }, label), h('span', {}, inputs[key], ' ', unit));
  }
  const mem = h('input', { type: 'number', value: cfg.memory_mb, id: 'memory_mb', disabled: !edit });
  const tmo = h('input', { type: 'number', value: cfg.timeout_ms, id: 'timeout_ms', disabled: !edit });
  grid.append(h('label', { for: 'memory_mb' }, 'Memory (billing)'), h('span', {}, mem, ' MB'),
              h('label', { for: 'timeout_ms' }, 'Timeout'), h('span', {}, tmo, ' ms'));
  const msg = h('p', { class: 'note', id: 'scaling-note' });
  sec.append(grid, msg);
  if (!edit) return;
  sec.append(h('button', { class: 'primary edit', id: 'scaling-save', onclick: async () => {
    const next = structuredClone(cfg);
    for (const [key] of SCALING) next.scaling[key] = Number(inputs[key].value);
    // The config as read names template_ttl_ms always; whether it caps the
    // learned keep-alive window stays as it was (a request naming the TTL
    // without this key would make it cap).
    next.scaling.template_ttl_caps = cfg.scaling.template_ttl_caps === true;
    next.memory_mb = Number(mem.value);
    next.timeout_ms = Number(tmo.value);
    const path = '/v1/functions/' + encodeURIComponent(name);
    try {
      // The server's own checks first: nothing is stored by a dry run.
      const dry = await sendJson('PUT', path + '?dry_run=1', next);
      if (dry.changed === false) {
        setText(msg, 'Nothing changed.');
        msg.className = 'note';
        return;
      }
      if (!await confirmDialog(`Deploy new scaling for ${name}?`,
        h('p', {}, 'A new version with these settings becomes the default.'), 'Deploy')) return;
      const r = await sendJson('PUT', path, next);
      setText(msg, `Deployed as v${r.version}.`);
      msg.className = 'note ok';
      await loadDescription();
    } catch (e) {
      setText(msg, e.message);
      msg.className = 'note bad';
    }
  } }, 'Check and deploy'));
}

// --- cold starts -----------------------------------------------------------------------

const PHASES = [
  ['queue_ms', 'queue', 'ph-queue'], ['plan_open_ms', 'open', 'ph-open'],
  ['prepare_ms', 'prepare', 'ph-prepare'], ['template_rest', 'template', 'ph-template'],
  ['fork_ms', 'fork', 'ph-fork'], ['spawn_rest', 'spawn', 'ph-spawn'],
  ['first_infer_ms', 'first inference', 'ph-infer'],
];

function renderCold() {
  const starts = (desc.cold_starts || []).slice(0, 8);
  if (!starts.length) {
    clear(live.cold).append(h('p', { class: 'muted' }, 'No cold start recorded since serve started.'));
    setText(live.coldNote, '');
    return;
  }
  const rows = starts.map((c) => {
    const rest = Math.max(0, c.template_ms - c.plan_open_ms - c.prepare_ms);
    const spawnRest = Math.max(0, c.spawn_ms - c.fork_ms);
    const v = { ...c, template_rest: rest, spawn_rest: spawnRest };
    return { label: `v${c.version} ${c.start}`,
             phases: PHASES.map(([k, n, cls]) => ({ name: n, ms: v[k] || 0, cls })) };
  });
  waterfall(live.cold, rows);
  append(clear(live.coldNote), PHASES.map(([, n, cls]) =>
    h('span', { class: 'legend-item' }, h('span', { class: 'key ' + cls }), ' ' + n)));
}

// The hour's histogram lists its non-empty buckets only; the chart shows
// every bucket between the first and the last (4 per doubling from 0.1 ms,
// as GET /v1/recent defines them), so that the x axis is a time scale.
function latencyBuckets(list) {
  if (!list.length) return [{ le_ms: 0.1, count: 0 }];
  const idx = (b) => (b.le_ms === null ? 80 : Math.round(4 * Math.log2(b.le_ms / 0.1)) - 1);
  const byK = new Map(list.map((b) => [idx(b), b.count]));
  const lo = Math.max(0, idx(list[0]) - 1), hi = Math.min(80, idx(list[list.length - 1]) + 1);
  const out = [];
  for (let k = lo; k <= hi; k++) {
    out.push({ le_ms: k === 80 ? null : 0.1 * Math.pow(2, (k + 1) / 4), count: byK.get(k) || 0 });
  }
  return out;
}

// --- live figures ----------------------------------------------------------------------

export async function tick() {
  if (!manage) return;
  const [recent, d] = await Promise.all([
    json('/v1/recent?function=' + encodeURIComponent(name)),
    json('/v1/functions/' + encodeURIComponent(name))]);
  const r = recent.functions[0] || {};
  setText(live.rate, f.rate(r.rate_per_s || 0));
  setText(live.p50, f.ms(r.last_5m ? r.last_5m.p50_ms : null));
  setText(live.p99, f.ms(r.last_5m ? r.last_5m.p99_ms : null));
  setText(live.errors, r.last_hour && r.last_hour.requests ? f.pct(r.last_hour.error_rate) : '–');
  const i = r.instances || { starting: 0, idle: 0, busy: 0 };
  const n = i.starting + i.idle + i.busy;
  setText(live.inst, `${n} (${i.busy} busy)`);
  stack(live.bar, [{ value: i.starting, cls: 'starting', label: 'starting' },
                   { value: i.idle, cls: 'idle', label: 'idle' },
                   { value: i.busy, cls: 'busy', label: 'busy' }], Math.max(n, 4));
  const m = r.minutes;
  const labels = [];
  const start = m ? m.start_ms : Date.now() - 3600000;
  for (let k = 0; k < 60; k++) labels.push(new Date(start + k * 60000).toISOString().slice(11, 16));
  const perS = (arr) => (arr || new Array(60).fill(0)).map((x) => x / 60);
  bars(live.rateChart, { series: [perS(m && m.requests.map((x, k) => x - m.errors[k])),
                                  perS(m && m.errors)],
                         classes: ['bar', 'bar-bad'], labels, unit: 'req/s',
                         title: 'requests per second, per minute (errors on top)' });
  const lat = latencyBuckets(r.latency || []);
  bars(live.latChart, { series: [lat.map((b) => b.count)],
                        labels: lat.map((b) => (b.le_ms === null ? '> 105 s' : '≤ ' + f.ms(b.le_ms))),
                        unit: 'calls', title: 'calls by latency (head to reply)' });
  // The description changes when a version, alias or cold start does.
  if (d.latest !== desc.latest || d.versions.length !== desc.versions.length ||
      JSON.stringify(d.aliases) !== JSON.stringify(desc.aliases)) {
    desc = d;
    setText(el.querySelector('#default-version'), 'v' + desc.latest);
    renderRouting();
    renderScaling();
  }
  const c0 = (d.cold_starts || [])[0], p0 = (desc.cold_starts || [])[0];
  if ((c0 && c0.at_ms) !== (p0 && p0.at_ms) || (d.cold_starts || []).length !==
      (desc.cold_starts || []).length) {
    desc.cold_starts = d.cold_starts;
    renderCold();
  }
  el.dataset.loaded = '1';
}

export function unmount() {
  logs.unmount();
}

