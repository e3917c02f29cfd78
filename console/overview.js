// Overview: every function with its default version, instances by state,
// request rate, p50/p99 latency, error rate, the last hour's cold starts
// by kind and what it cost today; updated once a second in place.

import { json, canSeeUsage, ApiError } from './api.js';
import { h, clear, setText } from './dom.js';
import { stack } from './charts.js';
import * as f from './fmt.js';

let root, tbody, cards, rows, costs, lastCost, who, listing;

export async function mount(el, ctx) {
  root = el;
  who = ctx.who;
  listing = true;
  rows = new Map();
  costs = new Map();
  lastCost = 0;
  cards = {
    functions: h('span', { class: 'num' }, '–'),
    instances: h('span', { class: 'num' }, '–'),
    rate: h('span', { class: 'num' }, '–'),
    cost: h('span', { class: 'num' }, '–'),
  };
  tbody = h('tbody', { id: 'fn-rows' });
  el.append(
    h('h1', {}, 'Functions'),
    h('div', { class: 'cards' },
      card('Functions', cards.functions), card('Instances', cards.instances),
      card('Requests', cards.rate), card('Cost today (UTC)', cards.cost)),
    h('div', { class: 'scroll' },
      h('table', { class: 'grid', id: 'fn-table' },
        h('thead', {}, h('tr', {},
          h('th', {}, 'Function'), h('th', { class: 'n' }, 'Default'),
          h('th', {}, 'Instances'), h('th', { class: 'n' }, 'Rate'),
          h('th', { class: 'n' }, 'p50'), h('th', { class: 'n' }, 'p99'),
          h('th', { class: 'n' }, 'Errors (1 h)'), h('th', { class: 'n' }, 'Cold starts (1 h)'),
          h('th', { class: 'n' }, 'Cost today'))),
        tbody)),
    h('p', { class: 'muted legend' },
      h('span', { class: 'key starting' }), ' starting ', h('span', { class: 'key idle' }),
      ' idle ', h('span', { class: 'key busy' }), ' busy · rate over the last 10 s, latency over',
      ' the last 5 min (head to reply), cold starts as template / from zero.'));
}

function card(label, value) {
  return h('div', { class: 'card' }, h('div', { class: 'label' }, label), value);
}

function row(name) {
  const cells = {
    version: h('td', { class: 'n' }),
    inst: h('td', { class: 'inst' }),
    bar: h('div', { class: 'bar-holder' }),
    instText: h('span', { class: 'small' }),
    rate: h('td', { class: 'n' }),
    p50: h('td', { class: 'n' }),
    p99: h('td', { class: 'n' }),
    errors: h('td', { class: 'n' }),
    cold: h('td', { class: 'n' }),
    cost: h('td', { class: 'n' }),
  };
  cells.inst.append(cells.bar, cells.instText);
  cells.tr = h('tr', { 'data-fn': name },
    h('td', {}, h('a', { href: '#/fn/' + encodeURIComponent(name), class: 'fn-link' }, name)),
    cells.version, cells.inst, cells.rate, cells.p50, cells.p99, cells.errors, cells.cold,
    cells.cost);
  return cells;
}

// A key that may call functions but not list them (role invoke): a box
// that opens a function by name (its page then offers "try it").
function openByName() {
  const input = h('input', { type: 'text', id: 'open-name', placeholder: 'function name',
                             'aria-label': 'function name' });
  const go = () => { if (input.value.trim()) location.hash = '#/fn/' + encodeURIComponent(input.value.trim()); };
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
  clear(root).append(h('h1', {}, 'Functions'),
    h('p', { class: 'note', id: 'no-list' },
      `This key (role ${who.role}) may call functions but not list or manage them.`),
    h('div', { class: 'row' }, input, h('button', { class: 'primary', onclick: go }, 'Open')));
  root.dataset.loaded = '1';
}

export async function tick() {
  if (!listing) return;
  let list, recent;
  try {
    [list, recent] = await Promise.all([json('/v1/functions'), json('/v1/recent')]);
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) {
      listing = false;
      openByName();
      return;
    }
    throw e;
  }
  // Cost needs a query of the usage store (every tenant's: admin keys
  // only); every 10 s is enough.
  if (canSeeUsage(who) && Date.now() - lastCost > 10000) {
    lastCost = Date.now();
    json('/v1/usage?group_by=function&since=' + f.todayUtc()).then((u) => {
      costs = new Map(u.groups.map((g) => [g.function, g.cost_usd]));
      costs.total = u.total.cost_usd;
    }).catch(() => { lastCost = 0; });
  }
  const byName = new Map(recent.functions.map((r) => [r.name, r]));
  const names = list.functions.map((x) => x.name).sort();
  if (!names.length) {
    if (!tbody.querySelector('.empty')) {
      clear(tbody).append(h('tr', { class: 'empty' }, h('td', { colspan: 9 },
        'No function is deployed. Deploy one with: rouse deploy NAME model.onnx')));
    }
  } else {
    const empty = tbody.querySelector('.empty');
    if (empty) empty.remove();
  }
  let inst = 0, rate = 0;
  for (const fn of list.functions) {
    let c = rows.get(fn.name);
    if (!c) { c = row(fn.name); rows.set(fn.name, c); }
    const r = byName.get(fn.name) || {};
    const i = r.instances || { starting: 0, idle: 0, busy: 0 };
    const n = i.starting + i.idle + i.busy;
    inst += n;
    rate += r.rate_per_s || 0;
    setText(c.version, 'v' + fn.latest);
    stack(c.bar, [{ value: i.starting, cls: 'starting', label: 'starting' },
                  { value: i.idle, cls: 'idle', label: 'idle' },
                  { value: i.busy, cls: 'busy', label: 'busy' }], Math.max(n, 4));
    setText(c.instText, `${n} (${i.busy} busy)` + (r.queued ? ` · ${r.queued} queued` : ''));
    setText(c.rate, f.rate(r.rate_per_s || 0));
    const l5 = r.last_5m || {};
    setText(c.p50, f.ms(l5.p50_ms));
    setText(c.p99, f.ms(l5.p99_ms));
    const hr = r.last_hour || { requests: 0, errors: 0, error_rate: 0,
                                cold_starts: { template: 0, zero: 0 } };
    setText(c.errors, hr.requests ? f.pct(hr.error_rate) : '–');
    setText(c.cold, `${hr.cold_starts.template} / ${hr.cold_starts.zero}`);
    setText(c.cost, canSeeUsage(who) ? f.usd(costs.get(fn.name) || 0) : '–');
  }
  // Rows in name order; removed functions go.
  for (const [name, c] of rows) {
    if (!names.includes(name)) { c.tr.remove(); rows.delete(name); }
  }
  names.forEach((name, k) => {
    const tr = rows.get(name).tr;
    if (tbody.children[k] !== tr) tbody.insertBefore(tr, tbody.children[k] || null);
  });
  setText(cards.functions, f.count(names.length));
  setText(cards.instances, f.count(inst));
  setText(cards.rate, f.rate(rate));
  setText(cards.cost, canSeeUsage(who) ? f.usd(costs.total || 0) : 'admin keys only');
  root.dataset.loaded = '1';
}

export function unmount() {
  rows = new Map();
}
