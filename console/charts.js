// Small SVG charts drawn from data, with a fixed viewBox so that an update
// redraws inside the same box (no layout jump). Colours come from CSS.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...kids) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const k of kids) if (k) el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return el;
}

// Replaces the content of `holder` with a new <svg> (holder keeps its size).
function put(holder, svg) {
  holder.replaceChildren(svg);
}

// The drawing's width: the holder's, so that one unit is one CSS pixel
// and text keeps its size at any width.
function widthOf(holder) {
  return Math.max(280, Math.round(holder.clientWidth - 10) || 600);
}

// Vertical bars: values[i] (one series or stacked series), labels under
// the first, the middle and the last bar; unit for the axis' top value.
export function bars(holder, { series, labels, unit, title, classes }) {
  const W = widthOf(holder), H = 160, L = 44, B = 20, T = 10;
  const n = series[0].length;
  let max = 0;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (const ser of series) sum += ser[i] || 0;
    max = Math.max(max, sum);
  }
  const top = max > 0 ? niceCeil(max) : 1;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
                         'aria-label': title || '' });
  if (title) svg.append(s('title', {}, title));
  svg.append(s('line', { x1: L, y1: H - B, x2: W, y2: H - B, class: 'axis' }));
  svg.append(s('text', { x: L - 4, y: T + 8, class: 'tick', 'text-anchor': 'end' }, fmtTick(top)));
  svg.append(s('text', { x: L - 4, y: H - B, class: 'tick', 'text-anchor': 'end' }, '0'));
  if (unit) svg.append(s('text', { x: 2, y: (H - B) / 2, class: 'tick' }, unit));
  const bw = (W - L) / n;
  const rw = Math.max(1, Math.min(48, bw - 1)); // a bar, centred in its slot
  for (let i = 0; i < n; i++) {
    let y = H - B;
    series.forEach((ser, k) => {
      const v = ser[i] || 0;
      if (v <= 0) return;
      const hgt = (v / top) * (H - B - T);
      y -= hgt;
      svg.append(s('rect', { x: L + i * bw + (bw - rw) / 2, y, width: rw, height: hgt,
                             class: (classes && classes[k]) || 'bar' },
                   s('title', {}, `${labels[i]}: ${fmtTick(v)}${unit ? ' ' + unit : ''}`)));
    });
  }
  for (const i of [0, Math.floor(n / 2), n - 1]) {
    if (labels[i] === undefined) continue;
    svg.append(s('text', { x: L + i * bw + bw / 2, y: H - 5, class: 'tick',
                           'text-anchor': i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle' },
                 labels[i]));
  }
  put(holder, svg);
}

// A horizontal stacked bar of parts [{value, cls, label}] (instances by state).
export function stack(holder, parts, total) {
  const W = 100, H = 10;
  const sum = total || parts.reduce((a, p) => a + p.value, 0);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'stack', preserveAspectRatio: 'none',
                         role: 'img',
                         'aria-label': parts.map((p) => `${p.value} ${p.label}`).join(', ') });
  svg.append(s('rect', { x: 0, y: 0, width: W, height: H, class: 'track' }));
  let x = 0;
  for (const p of parts) {
    if (!sum || p.value <= 0) continue;
    const w = (p.value / sum) * W;
    svg.append(s('rect', { x, y: 0, width: w, height: H, class: p.cls },
                 s('title', {}, `${p.value} ${p.label}`)));
    x += w;
  }
  put(holder, svg);
}

// A waterfall: rows of [{label, phases: [{name, ms, cls}]}], each phase
// starting where the previous one ended, on one shared time scale.
export function waterfall(holder, rows, phaseNames) {
  const W = widthOf(holder), L = 90, RH = 20, T = 18;
  const H = T + rows.length * RH + 4;
  let max = 0;
  for (const r of rows) max = Math.max(max, r.phases.reduce((a, p) => a + p.ms, 0));
  const top = max > 0 ? niceCeil(max) : 1;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart waterfall', role: 'img',
                         'aria-label': 'cold-start waterfall' });
  svg.append(s('text', { x: L, y: 12, class: 'tick' }, '0'));
  svg.append(s('text', { x: W - 2, y: 12, class: 'tick', 'text-anchor': 'end' },
               fmtTick(top) + ' ms'));
  rows.forEach((r, i) => {
    const y = T + i * RH;
    svg.append(s('text', { x: 2, y: y + 12, class: 'tick' }, r.label));
    let x = L;
    for (const p of r.phases) {
      const w = (p.ms / top) * (W - L - 2);
      if (w > 0) {
        svg.append(s('rect', { x, y: y + 2, width: Math.max(0.5, w), height: RH - 5, class: p.cls },
                     s('title', {}, `${p.name}: ${p.ms.toFixed(2)} ms`)));
      }
      x += w;
    }
  });
  put(holder, svg);
  return phaseNames;
}

// Horizontal bars on a log scale, one a row [{label, value, cls, text}]:
// for figures orders of magnitude apart (always-on against serverless).
export function hbarsLog(holder, rows, title) {
  const W = widthOf(holder), L = 150, RH = 22, T = 6, R = 110;
  const H = T + rows.length * RH + 4;
  const pos = rows.map((r) => r.value).filter((v) => v > 0);
  const lo = pos.length ? Math.pow(10, Math.floor(Math.log10(Math.min(...pos)))) : 1;
  const hi = pos.length ? Math.pow(10, Math.ceil(Math.log10(Math.max(...pos)) + 1e-9)) : 10;
  const x = (v) => (v <= 0 ? 0 : ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)) *
                                 (W - L - R));
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
                         'aria-label': title || '' });
  if (title) svg.append(s('title', {}, title));
  rows.forEach((r, i) => {
    const y = T + i * RH;
    svg.append(s('text', { x: 2, y: y + 14, class: 'tick' }, r.label));
    const w = Math.max(1, x(r.value));
    svg.append(s('rect', { x: L, y: y + 3, width: w, height: RH - 7, class: r.cls }));
    svg.append(s('text', { x: L + w + 6, y: y + 14, class: 'tick' }, r.text));
  });
  put(holder, svg);
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtTick(v) {
  if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + 'k';
  if (v >= 10 || Number.isInteger(v)) return String(Math.round(v));
  if (v >= 0.01) return v.toFixed(2);
  return v.toExponential(0);
}
