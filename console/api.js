// Calls to serve's API from the console. With `rouse serve --auth`, every
// call carries `Authorization: Bearer <key>`; the key is asked for on the
// first 401 and kept in this tab's sessionStorage (gone when the tab
// closes; never a cookie, so no other site can make the browser send it).

import { h, clear, append } from './dom.js';

const KEY = 'rouse.key';
let asking = null; // the pending key prompt, shared by calls that got a 401

export function currentKey() {
  return sessionStorage.getItem(KEY) || '';
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

function askKey(message) {
  if (asking) return asking;
  const modal = document.getElementById('modal');
  document.getElementById('modal-title').textContent = 'API key';
  const input = h('input', { type: 'password', id: 'key-input', autocomplete: 'off',
                             'aria-label': 'API key', placeholder: 'rk_…' });
  append(clear(document.getElementById('modal-body')), [
    h('p', {}, message),
    h('p', { class: 'muted' }, 'The key stays in this tab only (session storage).'),
    input]);
  const actions = clear(document.getElementById('modal-actions'));
  asking = new Promise((resolve) => {
    const submit = () => {
      const k = input.value.trim();
      if (!k) return;
      sessionStorage.setItem(KEY, k);
      modal.hidden = true;
      asking = null;
      resolve(k);
    };
    input.addEventListener('keydown', (e) => { if (e.key === 'Enter') submit(); });
    actions.append(h('button', { class: 'primary', id: 'key-ok', onclick: submit }, 'Use key'));
    modal.hidden = false;
    input.focus();
  });
  return asking;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// fetch with the key; a 401 asks for a key and tries again. Returns the
// Response (any other status included).
export async function call(path, opts = {}) {
  for (;;) {
    const headers = new Headers(opts.headers || {});
    const key = currentKey();
    if (key) headers.set('Authorization', 'Bearer ' + key);
    const res = await fetch(path, { ...opts, headers, credentials: 'omit', cache: 'no-store' });
    if (res.status !== 401) return res;
    let msg = 'This server asks for an API key.';
    if (key) {
      forgetKey();
      msg = 'The key was refused (' + (await errorText(res)) + '). Enter another.';
    }
    await askKey(msg);
  }
}

async function errorText(res) {
  try {
    const j = await res.json();
    if (j && j.error) return j.error;
  } catch (e) { /* not JSON */ }
  return 'HTTP ' + res.status;
}

// A JSON call: the parsed body, or an ApiError with the server's sentence.
export async function json(path, opts = {}) {
  const res = await call(path, opts);
  if (!res.ok) throw new ApiError(res.status, await errorText(res));
  return res.json();
}

export function sendJson(method, path, body) {
  return json(path, { method, headers: { 'Content-Type': 'application/json' },
                      body: body === undefined ? undefined : JSON.stringify(body) });
}

// Who the key is: {id, tenant, role, expires, auth}. Without --auth the
// answer says "auth": false (a serve without keys at all answers 404):
// no key, every right.
export async function whoami() {
  const res = await call('/v1/keys/self');
  if (res.status === 404) return { role: 'admin', auth: false };
  if (!res.ok) throw new ApiError(res.status, await errorText(res));
  const j = await res.json();
  return { ...j, auth: j.auth !== false };
}

// Whether a role may read the usage of every tenant (GET /v1/usage).
export function canSeeUsage(who) {
  return who && who.role === 'admin';
}

// Whether a role may change functions, aliases and jobs.
export function canEdit(who) {
  return who && (who.role === 'admin' || who.role === 'deploy');
}
