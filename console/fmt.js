// Numbers with their units, in fixed-width forms so that a figure that
// changes every second does not move what stands next to it.

export function ms(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (v < 1) return (v * 1000).toFixed(0) + ' µs';
  if (v < 10) return v.toFixed(2) + ' ms';
  if (v < 1000) return v.toFixed(1) + ' ms';
  return (v / 1000).toFixed(2) + ' s';
}

export function rate(v) {
  if (v === null || v === undefined) return '–';
  return (v < 10 ? v.toFixed(2) : v.toFixed(1)) + ' req/s';
}

export function pct(v) {
  if (v === null || v === undefined) return '–';
  return (v * 100).toFixed(v < 0.1 ? 2 : 1) + ' %';
}

export function usd(v) {
  if (v === null || v === undefined) return '–';
  if (v === 0) return '$0.00';
  if (v < 0.01) return '$' + v.toPrecision(3);
  return '$' + v.toFixed(2);
}

export function count(v, unit) {
  if (v === null || v === undefined) return '–';
  return v.toLocaleString('en-US') + (unit ? ' ' + unit : '');
}

export function bytes(v) {
  if (v === null || v === undefined) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(1) : v) + ' ' + u[i];
}

export function time(msSinceEpoch) {
  if (!msSinceEpoch) return '–';
  return new Date(msSinceEpoch).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

export function ago(msSinceEpoch, now = Date.now()) {
  if (!msSinceEpoch) return '–';
  const s = Math.max(0, Math.round((now - msSinceEpoch) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  if (s < 86400) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' d ago';
}

// Today's date in UTC, as the usage API takes it.
export function todayUtc() {
  return new Date().toISOString().slice(0, 10);
}
