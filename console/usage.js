// Usage: cost by function and day over the last 7 days, and the always-on
// comparison (what the same traffic would cost on instances that never
// stop) per function. From GET /v1/usage; refreshed every 30 s.

import { json, canSeeUsage } from './api.js';
import { h, clear } from './dom.js';
import { bars, hbarsLog } from './charts.js';
import * as f from './fmt.js';

const DAYS = 7;
let el, last;

export async function mount(root, ctx) {
  el = root;
  last = 0;
  if (!canSeeUsage(ctx.who)) {
    root.append(h('h1', {}, 'Usage'),
      h('p', { class: 'note', id: 'usage-denied' },
        `Usage covers every tenant: it needs an admin key (this one is ${ctx.who.role}).`));
    last = Infinity;
    root.dataset.loaded = '1';
    return;
  }
  root.append(h('h1', {}, 'Usage'),
    h('section', {}, h('h2', {}, `Cost by day, last ${DAYS} days (UTC)`),
      h('div', { class: 'chart-holder', id: 'cost-chart' }), h('div', { id: 'cost-table' })),
    h('section', {}, h('h2', {}, 'Serverless against always-on'),
      h('p', { class: 'muted small', id: 'always-on-note' }),
      h('div', { class: 'chart-holder free', id: 'always-on-chart' }), h('div', { id: 'always-on-table' })));
}

function days() {
  const out = [];
  const today = Date.parse(f.todayUtc() + 'T00:00:00Z');
  for (let k = DAYS - 1; k >= 0; k--) out.push(new Date(today - k * 86400000).toISOString().slice(0, 10));
  return out;
}

export async function tick() {
  if (Date.now() - last < 30000) return;
  last = Date.now();
  const ds = days();
  const since = ds[0];
  const cmp = await json(`/v1/usage?group_by=function&since=${since}&compare_always_on=true`);
  const fns = cmp.groups.map((g) => g.function).sort();
  // One query per function, one after the other: the usage store answers
  // a few at a time.
  const perFn = new Map();
  for (const fn of fns) {
    const u = await json(`/v1/usage?group_by=day&since=${since}&function=${encodeURIComponent(fn)}`);
    perFn.set(fn, new Map(u.groups.map((g) => [g.start.slice(0, 10), g])));
  }
  const series = fns.map((fn) => ds.map((d) => (perFn.get(fn).get(d) || {}).cost_usd || 0));
  bars(el.querySelector('#cost-chart'), {
    series: series.length ? series : [ds.map(() => 0)], labels: ds.map((d) => d.slice(5)),
    unit: 'USD', title: 'cost per day', classes: fns.map((_, k) => 'bar s' + (k % 6)) });
  clear(el.querySelector('#cost-table')).append(h('div', { class: 'scroll' },
    h('table', { class: 'grid', id: 'cost-by-day' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Function'), ds.map((d) => h('th', { class: 'n' }, d.slice(5))),
                       h('th', { class: 'n' }, 'Total'))),
      h('tbody', {}, fns.map((fn, k) => h('tr', {},
        h('td', {}, h('span', { class: 'key s' + (k % 6) }), ' ', fn),
        series[k].map((v) => h('td', { class: 'n' }, f.usd(v))),
        h('td', { class: 'n' }, f.usd(series[k].reduce((a, b) => a + b, 0)))))),
      h('tfoot', {}, h('tr', {}, h('td', {}, 'All'),
        ds.map((d, j) => h('td', { class: 'n' }, f.usd(series.reduce((a, s) => a + s[j], 0)))),
        h('td', { class: 'n' }, f.usd(cmp.total.cost_usd)))))));
  const ao = cmp.always_on;
  el.querySelector('#always-on-note').textContent =
    `Always-on keeps max(1, peak concurrency) instances every hour at ${f.usd(ao.usd_per_instance_hour)}` +
    ' per instance-hour; serverless bills GB-seconds and requests.';
  const aoRows = [];
  for (const x of ao.functions) {
    aoRows.push({ label: x.function + ' serverless', value: x.serverless_usd, cls: 'bar',
                  text: f.usd(x.serverless_usd) });
    aoRows.push({ label: x.function + ' always-on', value: x.always_on_usd, cls: 'bar-alt',
                  text: f.usd(x.always_on_usd) });
  }
  hbarsLog(el.querySelector('#always-on-chart'), aoRows,
           'serverless and always-on cost (log scale)');
  clear(el.querySelector('#always-on-table')).append(h('div', { class: 'scroll' },
    h('table', { class: 'grid', id: 'always-on' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Function'), h('th', { class: 'n' }, 'Hours'),
        h('th', { class: 'n' }, 'Peak'), h('th', { class: 'n' }, 'Serverless'),
        h('th', { class: 'n' }, 'Always-on'), h('th', { class: 'n' }, 'Always-on / serverless'))),
      h('tbody', {}, ao.functions.map((x) => h('tr', {}, h('td', {}, x.function),
        h('td', { class: 'n' }, f.count(x.hours, 'h')),
        h('td', { class: 'n' }, f.count(x.peak_concurrency)),
        h('td', { class: 'n' }, f.usd(x.serverless_usd)), h('td', { class: 'n' }, f.usd(x.always_on_usd)),
        h('td', { class: 'n' }, ratio(x.ratio))))))));
  el.dataset.loaded = '1';
}

function ratio(r) {
  if (r === null || r === undefined) return '–';
  if (r >= 100) return Math.round(r).toLocaleString('en-US') + ' ×';
  return r.toFixed(1) + ' ×';
}
