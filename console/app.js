// The console's pages behind one URL: #/ (overview), #/fn/NAME (a
// function), #/usage, #/jobs. A page is {mount(main, ctx), tick(), unmount()};
// tick runs once a second while the page is shown, never twice at once.

import { whoami, forgetKey, ApiError } from './api.js';
import { h, clear, setText } from './dom.js';
import * as overview from './overview.js';
import * as fnpage from './function.js';
import * as usage from './usage.js';
import * as jobs from './jobs.js';

const main = document.getElementById('main');
let page = null;
let timer = null;
let busy = false;
let who = null;

function route() {
  const hash = location.hash || '#/';
  const m = hash.match(/^#\/fn\/([^/]+)$/);
  if (m) return { page: fnpage, arg: decodeURIComponent(m[1]), nav: 'overview' };
  if (hash === '#/usage') return { page: usage, nav: 'usage' };
  if (hash === '#/jobs') return { page: jobs, nav: 'jobs' };
  return { page: overview, nav: 'overview' };
}

async function tick() {
  if (busy || !page || !page.tick) return;
  busy = true;
  const p = page;
  try {
    await p.tick();
    if (p === page) setError('');
  } catch (e) {
    if (p === page) setError(describe(e));
  } finally {
    busy = false;
  }
}

// An error for the status line: the server's own sentence, or why the
// server could not be asked.
function describe(e) {
  if (e instanceof ApiError) return e.message;
  return 'Cannot reach the server: ' + (e.message || String(e));
}

function setError(msg) {
  const el = document.getElementById('status');
  if (!el) return;
  setText(el, msg);
  el.classList.toggle('bad', !!msg);
}

async function show() {
  if (page && page.unmount) page.unmount();
  const r = route();
  for (const a of document.querySelectorAll('[data-nav]'))
    a.classList.toggle('on', a.dataset.nav === r.nav);
  clear(main);
  const body = h('div', { class: 'page' });
  main.append(h('p', { id: 'status', class: 'status', role: 'status' }), body);
  page = r.page;
  try {
    await page.mount(body, { who, arg: r.arg });
    await tick();
  } catch (e) {
    setError(describe(e));
  }
}

function showWho() {
  const el = clear(document.getElementById('who'));
  if (!who.auth) {
    el.append('no auth · full rights');
    return;
  }
  el.append(`${who.tenant || '–'} · ${who.role}`, ' ',
            h('button', { class: 'link', id: 'signout',
                          onclick: () => { forgetKey(); location.reload(); } }, 'forget key'));
}

async function start() {
  who = await whoami();
  document.body.dataset.role = who.role;
  showWho();
  window.addEventListener('hashchange', show);
  await show();
  timer = setInterval(tick, 1000);
}

start().catch((e) => {
  clear(main).append(h('p', { class: 'status bad' }, 'The console could not start: ' + e.message));
  if (timer) clearInterval(timer);
});
