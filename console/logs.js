// The function's recent logs: the last 10 minutes, then followed live.
// The stream is read with fetch (not EventSource) so that it can carry the
// Authorization header; Server-Sent Events are parsed here.

import { call } from './api.js';
import { h, clear, append } from './dom.js';

const KEEP = 200;
let ctrl = null, box = null;

export function mount(sec, name) {
  box = h('pre', { class: 'logs', id: 'logs-lines', 'aria-live': 'off' },
          h('span', { class: 'muted placeholder' },
            'Nothing printed in the last 10 minutes; new lines appear here as they come.'));
  append(sec, [h('h2', {}, 'Logs'), box]);
  ctrl = new AbortController();
  follow(name, ctrl.signal).catch(() => {});
}

function add(line) {
  const ph = box.querySelector('.placeholder');
  if (ph) ph.remove();
  const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.append(h('div', {}, line));
  while (box.childNodes.length > KEEP) box.removeChild(box.firstChild);
  if (atEnd) box.scrollTop = box.scrollHeight;
}

function show(ev) {
  try {
    const e = JSON.parse(ev);
    const t = e.time_ms ? new Date(e.time_ms).toISOString().slice(11, 23) : '';
    add([t, e.version ? 'v' + e.version : '', e.pid ? '[' + e.pid + ']' : '', e.text !== undefined ? e.text : ev]
      .filter(Boolean).join(' '));
  } catch (x) {
    add(ev);
  }
}

async function follow(name, signal) {
  const res = await call(`/v1/functions/${encodeURIComponent(name)}/logs?since=10m&follow=1`,
                         { signal });
  if (!res.ok || !res.body) {
    clear(box).append(h('span', { class: 'muted' }, 'No logs (HTTP ' + res.status + ').'));
    return;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = event.split('\n').filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (data) show(data);
    }
  }
}

export function unmount() {
  if (ctrl) ctrl.abort();
  ctrl = null;
}
