// Building the page without innerHTML: every text from the server becomes
// a text node, so nothing it says can turn into markup or script.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// Sets an element's text only when it changed (no needless relayout).
export function setText(el, text) {
  const t = String(text);
  if (el.textContent !== t) el.textContent = t;
}

// Asks the user to confirm: resolves true or false. An in-page dialog,
// so that the same markup and style serve every confirmation.
export function confirmDialog(title, body, okLabel = 'Confirm') {
  const modal = document.getElementById('modal');
  document.getElementById('modal-title').textContent = title;
  append(clear(document.getElementById('modal-body')), [body]);
  const actions = clear(document.getElementById('modal-actions'));
  return new Promise((resolve) => {
    const done = (v) => { modal.hidden = true; resolve(v); };
    const ok = h('button', { class: 'primary', id: 'modal-ok', onclick: () => done(true) }, okLabel);
    actions.append(h('button', { id: 'modal-cancel', onclick: () => done(false) }, 'Cancel'), ok);
    modal.hidden = false;
    ok.focus();
  });
}
