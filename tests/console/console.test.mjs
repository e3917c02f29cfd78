// The web console in a real browser: Debian's chromium, driven by
// puppeteer-core, against a real `rouse serve` on a free loopback port.
// Checks that the overview lists the deployed function, that a rollback
// from the function page moves the default version on the server, that
// "try it" shows the right class for a digits sample, that updates move
// nothing on the page, that the console's replies carry a strict
// Content-Security-Policy and no cookie, and that --console off turns it
// off; fails on any console error or page error. Saves a screenshot of
// each page (laptop and phone width, light and dark) into OUT.
//
// Environment: ROUSE (the binary), DIGITS (examples/digits), OUT (the
// screenshot folder), CHROMIUM (the browser).

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const ROUSE = process.env.ROUSE;
const DIGITS = process.env.DIGITS;
const OUT = process.env.OUT;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const MODELS = process.env.MODELS || '';

let passed = 0, failed = 0;
function check(desc, cond, detail) {
  if (cond) { passed++; console.log('ok: ' + desc); }
  else { failed++; console.log('FAIL: ' + desc + (detail ? ' (' + detail + ')' : '')); }
}

const procs = [];
const dirs = [];

// Starts rouse serve; resolves {base, proc} once it prints its address.
function serve(extra = []) {
  const data = mkdtempSync(join(tmpdir(), 'rouse-console-'));
  dirs.push(data);
  const p = spawn(ROUSE, ['serve', '--port', '0', '--data', data, '--log-level', 'warn', ...extra],
                  { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(p);
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error('rouse serve did not start')), 20000);
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^listening on ([\d.]+):(\d+)$/m);
      if (m) { clearTimeout(t); resolve({ base: `http://${m[1]}:${m[2]}`, proc: p }); }
    });
    p.on('exit', (code) => reject(new Error('rouse serve exited with ' + code)));
  });
}

async function getJson(base, path) {
  const r = await fetch(base + path);
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function infer(base, sample) {
  const r = await fetch(base + '/v2/models/digits/infer', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: readFileSync(join(DIGITS, 'samples', sample)) });
  await r.arrayBuffer();
  return r.status;
}

// A 24-bit BMP of w x h: white, with a dark bar (an image file that
// Chromium decodes, written without a library).
function bmp(path, w, hgt) {
  const row = Math.ceil((w * 3) / 4) * 4;
  const buf = Buffer.alloc(54 + row * hgt, 0xff);
  buf.fill(0, 0, 54);
  buf.write('BM', 0);
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(54, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(w, 18);
  buf.writeInt32LE(hgt, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(24, 28);
  buf.writeUInt32LE(row * hgt, 34);
  for (let y = 0; y < hgt; y++)
    for (let x = Math.floor(w / 2) - 2; x < Math.floor(w / 2) + 2; x++)
      buf.fill(0x10, 54 + y * row + x * 3, 54 + y * row + x * 3 + 3);
  writeFileSync(path, buf);
}

const sizes = {
  laptop: { width: 1366, height: 900, deviceScaleFactor: 1 },
  phone: { width: 390, height: 844, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
};

async function shoot(page, name) {
  for (const [size, vp] of Object.entries(sizes)) {
    for (const scheme of ['light', 'dark']) {
      if (size === 'phone' && scheme === 'dark' && name !== 'overview' && name !== 'function')
        continue;
      // A change between laptop and phone (isMobile, hasTouch) reloads
      // the page: wait until the reloaded page has drawn its figures.
      await page.setViewport(vp);
      await waitLoaded(page);
      await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
      await new Promise((r) => setTimeout(r, 250));
      await page.screenshot({ path: join(OUT, `${name}-${size}-${scheme}.png`),
                              fullPage: true });
    }
  }
  await page.setViewport(sizes.laptop);
  await waitLoaded(page);
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
}

async function waitLoaded(page) {
  await page.waitForSelector('.page[data-loaded="1"]', { timeout: 60000 });
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  const { base } = await serve();
  const env = { ...process.env, ROUSE_SERVER: base, NO_COLOR: '1' };
  const model = join(DIGITS, 'model.onnx');
  execFileSync(ROUSE, ['deploy', 'digits', model], { env, stdio: 'ignore' });
  execFileSync(ROUSE, ['deploy', 'digits', model, '--set', 'memory_mb=256'], { env, stdio: 'ignore' });
  for (const s of ['digit-1.json', 'digit-7.json', 'digit-3.json']) await infer(base, s);
  // A job that fails at once (a tensor of the wrong shape): a dead letter.
  const bad = await fetch(base + '/v2/models/digits/infer', {
    method: 'POST', headers: { 'Content-Type': 'application/json', Prefer: 'respond-async' },
    body: JSON.stringify({ inputs: [{ name: 'pixels', shape: [1, 3], datatype: 'FP32',
                                      data: [1, 2, 3] }] }) });
  const badJob = (await bad.json()).id;
  check('a failing job was accepted', bad.status === 202 && !!badJob, String(bad.status));
  const imageModel = MODELS && join(MODELS, 'mnist_cnn', 'model.onnx');
  const haveImage = imageModel && existsSync(imageModel);
  if (haveImage) execFileSync(ROUSE, ['deploy', 'mnist', imageModel], { env, stdio: 'ignore' });

  // The console's replies: a strict policy, no cookie.
  const root = await fetch(base + '/');
  const csp = root.headers.get('content-security-policy') || '';
  check('GET / answers the console (text/html)', root.status === 200 &&
        (root.headers.get('content-type') || '').startsWith('text/html'));
  check("its Content-Security-Policy allows scripts from 'self' only, no inline",
        /script-src 'self'(;|$)/.test(csp) && /default-src 'none'/.test(csp) &&
        !csp.includes('unsafe-inline') && !csp.includes('unsafe-eval'), csp);
  check('no Set-Cookie on the console', !root.headers.get('set-cookie'));
  const html = await root.text();
  check('index.html has no inline script', !/<script(?![^>]*\bsrc=)[^>]*>/i.test(html));

  const browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'] });
  const errors = [];
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => errors.push('page error: ' + e.message));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const url = (m.location() && m.location().url) || '';
      // The one error the console causes on purpose: without --auth,
      // GET /v1/keys/self is a 404 (no keys, every right), and Chromium
      // logs every failed fetch.
      if (url.endsWith('/v1/keys/self') && /status of 404/.test(m.text())) return;
      errors.push('console error: ' + m.text() + (url ? ' at ' + url : ''));
    });
    await page.setViewport(sizes.laptop);

    // --- overview ---
    await page.goto(base + '/', { waitUntil: 'load' });
    await waitLoaded(page);
    const row = await page.$eval('tr[data-fn="digits"]', (tr) =>
      [...tr.children].map((td) => td.textContent.trim())).catch(() => null);
    check('the overview lists the deployed function', row && row[0] === 'digits', String(row));
    check('with its default version', row && row[1] === 'v2', String(row));
    check('figures carry units', row && /req\/s$/.test(row[3]) && /(ms|µs|s)$/.test(row[4]),
          String(row));
    // No layout jump: the table's columns stay put while traffic changes the figures.
    const boxes = () => page.$$eval('#fn-table th, .cards .card', (els) =>
      els.map((e) => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }));
    await new Promise((r) => setTimeout(r, 1500));
    const before = JSON.stringify(await boxes());
    for (let i = 0; i < 20; i++) await infer(base, `digit-${i % 10}.json`);
    await new Promise((r) => setTimeout(r, 2500));
    const after = JSON.stringify(await boxes());
    check('updates move nothing on the overview', before === after, `${before} -> ${after}`);
    await shoot(page, 'overview');
    // A phone's width: the page does not scroll sideways, the overview's
    // key columns fit.
    await page.setViewport(sizes.phone);
    await new Promise((r) => setTimeout(r, 300));
    const fit = await page.evaluate(() => {
      const t = document.querySelector('#fn-table');
      return [document.documentElement.scrollWidth, window.innerWidth, t.scrollWidth,
              t.parentElement.clientWidth];
    });
    check('at a phone\'s width the overview fits without scrolling sideways',
          fit[0] <= fit[1] && fit[2] <= fit[3], String(fit));
    await page.setViewport(sizes.laptop);

    // --- function page: rollback ---
    await page.goto(base + '/#/fn/digits', { waitUntil: 'load' });
    await waitLoaded(page);
    await page.waitForSelector('#rollback', { timeout: 30000 });
    const fnBoxes = () => page.$$eval('.cards .card, .chart-holder, #routing, #scaling', (els) =>
      els.map((e) => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }));
    await new Promise((r) => setTimeout(r, 1500));
    const fnBefore = JSON.stringify(await fnBoxes());
    for (let i = 0; i < 20; i++) await infer(base, `digit-${i % 10}.json`);
    await new Promise((r) => setTimeout(r, 2500));
    const fnAfter0 = JSON.stringify(await fnBoxes());
    check('updates move nothing on the function page', fnBefore === fnAfter0,
          `${fnBefore} -> ${fnAfter0}`);
    await shoot(page, 'function');
    await page.click('#rollback');
    await page.waitForSelector('#modal:not([hidden]) #modal-ok');
    await page.click('#modal-ok');
    await page.waitForFunction(() => {
      const n = document.querySelector('#action-note');
      return n && n.textContent.length > 0;
    }, { timeout: 30000 });
    const note = await page.$eval('#action-note', (n) => n.textContent);
    const fnAfter = await getJson(base, '/v1/functions/digits');
    check('the rollback from the function page moves the default version on the server',
          fnAfter.latest === 1, `latest ${fnAfter.latest}; page said "${note}"`);
    await page.waitForFunction(() =>
      document.querySelector('#default-version').textContent === 'v1', { timeout: 15000 })
      .then(() => check('the page shows the new default version', true),
            (e) => check('the page shows the new default version', false, e.message));

    // --- try it ---
    const input = await page.$('#tryit-file');
    await input.uploadFile(join(DIGITS, 'samples', 'digit-7.json'));
    await page.waitForFunction(() => document.querySelector('#tryit-request').value.includes('0.8125'),
                               { timeout: 15000 });
    await page.click('#tryit-send');
    await page.waitForSelector('#tryit-result .top-class', { timeout: 60000 });
    const top = await page.$$eval('[data-output="probabilities"] .top-class',
                                  (els) => els.map((e) => e.textContent));
    check('try it shows class 7 first for the digit-7 sample', top[0] === '7', String(top));
    const start = await page.$eval('#tryit-start', (e) => e.textContent);
    const timing = await page.$eval('#tryit-timing', (e) => e.textContent);
    check('try it shows the start kind and Server-Timing',
          ['warm', 'template', 'zero'].includes(start) && /ms|µs/.test(timing), `${start} ${timing}`);
    await page.evaluate(() => document.querySelector('#tryit').scrollIntoView());
    await page.screenshot({ path: join(OUT, 'function-tryit-laptop-light.png') });

    // --- try it with an image, on an image model ([1, 1, 28, 28]) ---
    if (!haveImage) {
      console.log('skip: try it with an image (../shared/models/mnist_cnn is absent)');
    } else {
      await page.goto(base + '/#/fn/mnist', { waitUntil: 'load' });
      await waitLoaded(page);
      await page.waitForFunction(() => /28, 28/.test(document.querySelector('#tryit-hint').textContent),
                                 { timeout: 30000 });
      const img = join(OUT, 'upload.bmp');
      bmp(img, 40, 40);
      await (await page.$('#tryit-file')).uploadFile(img);
      await page.waitForFunction(() => document.querySelector('#tryit-request').value
        .includes('"shape":[1,1,28,28]'), { timeout: 15000 });
      const sent = JSON.parse(await page.$eval('#tryit-request', (e) => e.value));
      const px = sent.inputs[0].data;
      check('an image file becomes a [1, 1, 28, 28] tensor in [0, 1] with the dark bar in it',
            px.length === 784 && px.every((v) => v >= 0 && v <= 1) && Math.min(...px) < 0.2 &&
            Math.max(...px) > 0.9, `${px.length} values`);
      await page.click('#tryit-send');
      await page.waitForSelector('#tryit-status', { timeout: 60000 });
      const status = await page.$eval('#tryit-status', (e) => e.textContent);
      const n = await page.$$eval('#tryit-result [data-output="logits"] .top-class', (e) => e.length);
      const said = await page.$eval('#tryit-result', (e) => e.textContent.slice(0, 300));
      check('the image model answers and its top 5 classes are shown', status === '200' && n === 5,
            `${status}, ${n} rows: ${said}`);
    }

    // --- usage ---
    await page.goto(base + '/#/usage', { waitUntil: 'load' });
    await waitLoaded(page);
    const ao = await page.$$eval('#always-on tbody tr td', (t) => t.map((x) => x.textContent));
    check('the usage page shows the always-on comparison for digits', ao[0] === 'digits', String(ao));
    await shoot(page, 'usage');

    // --- jobs ---
    await page.goto(base + '/#/jobs', { waitUntil: 'load' });
    await waitLoaded(page);
    const queued = await page.$eval('#jobs-queued', (e) => e.textContent);
    const failedN = await page.$eval('#jobs-failed', (e) => e.textContent);
    check('the jobs page shows the job counts', queued === '0' && failedN === '1',
          `queued ${queued}, failed ${failedN}`);
    await page.waitForSelector('#dead-letters .retry', { timeout: 15000 });
    await shoot(page, 'jobs');
    await page.waitForSelector('#dead-letters .retry', { timeout: 15000 });
    const before1 = await getJson(base, '/v1/jobs/' + badJob);
    await page.click('#dead-letters .retry');
    await page.waitForFunction(() => /queued again/.test(document.querySelector('#jobs-note').textContent),
                               { timeout: 30000 });
    // The server ran it again: it fails again (the same bad tensor), later.
    let again = null;
    for (let i = 0; i < 50; i++) {
      again = await getJson(base, '/v1/jobs/' + badJob);
      if (again.status === 'failed' && again.finished_ms > before1.finished_ms) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    check('retry on a dead letter runs the job again on the server',
          again.status === 'failed' && again.finished_ms > before1.finished_ms,
          JSON.stringify(again));
  } finally {
    await browser.close();
  }
  check('no console error and no page error', errors.length === 0, errors.join('; '));

  // --- the console can be turned off ---
  const off = await serve(['--console', 'off']);
  const r = await fetch(off.base + '/');
  check('--console off: GET / is a 404', r.status === 404);
  const api = await fetch(off.base + '/v1/functions');
  check('--console off: the API still answers', api.status === 200);

  // --- a key without rights ---
  const help = execFileSync(ROUSE, ['serve', '--help'], { encoding: 'utf8' });
  if (!help.includes('--auth'))
    console.log('skip: a key without rights sees no edit buttons (this serve has no --auth)');
  else
    await withKeys();
}

// serve --auth: the console asks for a key, keeps it in the tab, and shows
// an invoke key no button that changes anything (an admin key sees them).
async function withKeys() {
  const secret = 'rk_console-test-admin-' + process.pid + '-' + Date.now();
  const kd = mkdtempSync(join(tmpdir(), 'rouse-console-key-'));
  dirs.push(kd);
  const keyFile = join(kd, 'admin.key');
  writeFileSync(keyFile, secret + '\n', { mode: 0o600 });
  const { base } = await serve(['--auth', '--auth-bootstrap-key-file', keyFile]);
  const admin = { Authorization: 'Bearer ' + secret };
  const env = { ...process.env, ROUSE_SERVER: base, ROUSE_KEY: secret, NO_COLOR: '1' };
  const model = join(DIGITS, 'model.onnx');
  execFileSync(ROUSE, ['deploy', 'digits', model], { env, stdio: 'ignore' });
  execFileSync(ROUSE, ['deploy', 'digits', model, '--set', 'memory_mb=256'], { env, stdio: 'ignore' });
  const mk = await fetch(base + '/v1/keys', { method: 'POST',
    headers: { ...admin, 'Content-Type': 'application/json' },
    body: JSON.stringify({ tenant: 'default', role: 'invoke', name: 'console-test' }) });
  const invoke = (await mk.json()).key;
  check('an invoke key was made', mk.status === 201 && !!invoke, String(mk.status));
  // A failed job of the tenant: its retry button is an edit button.
  const bad = await fetch(base + '/v2/models/digits/infer', {
    method: 'POST', headers: { ...admin, 'Content-Type': 'application/json',
                               Prefer: 'respond-async' },
    body: JSON.stringify({ inputs: [{ name: 'pixels', shape: [1, 3], datatype: 'FP32',
                                      data: [1, 2, 3] }] }) });
  await bad.arrayBuffer();

  // GET /v1/recent lists the caller's tenant's functions only.
  for (let i = 0; i < 3; i++) {
    const r = await fetch(base + '/v2/models/digits/infer', { method: 'POST',
      headers: { ...admin, 'Content-Type': 'application/json' },
      body: readFileSync(join(DIGITS, 'samples', 'digit-1.json')) });
    await r.arrayBuffer();
  }
  const mkOther = await fetch(base + '/v1/keys', { method: 'POST',
    headers: { ...admin, 'Content-Type': 'application/json' },
    body: JSON.stringify({ tenant: 'acme', role: 'deploy' }) });
  const other = (await mkOther.json()).key;
  const mine = await (await fetch(base + '/v1/recent', { headers: admin })).json();
  const theirs = await (await fetch(base + '/v1/recent',
                                    { headers: { Authorization: 'Bearer ' + other } })).json();
  const named = await fetch(base + '/v1/recent?function=digits',
                            { headers: { Authorization: 'Bearer ' + other } });
  check('GET /v1/recent shows a tenant its own functions only',
        mine.functions.some((f) => f.name === 'digits' && f.last_hour.requests >= 3) &&
        theirs.functions.length === 0 && (await named.json()).functions.length === 0,
        JSON.stringify(theirs));
  const invRecent = await fetch(base + '/v1/recent', { headers: { Authorization: 'Bearer ' + invoke } });
  check('GET /v1/recent needs the deploy role', invRecent.status === 403, String(invRecent.status));

  const root = await fetch(base + '/');
  check('with --auth the console page itself needs no key', root.status === 200,
        String(root.status));
  const noKey = await fetch(base + '/v1/functions');
  check('with --auth the API answers 401 with WWW-Authenticate: Bearer without a key',
        noKey.status === 401 && /^Bearer/.test(noKey.headers.get('www-authenticate') || ''));

  const browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'] });
  const errors = [];
  try {
    const login = async (key) => {
      const ctx = await browser.createBrowserContext();
      const page = await ctx.newPage();
      page.on('pageerror', (e) => errors.push('page error: ' + e.message));
      page.on('console', (m) => {
        if (m.type() !== 'error') return;
        const url = (m.location() && m.location().url) || '';
        // Expected refusals, which Chromium logs: the first call without
        // a key (401), and what an invoke key may not read (403).
        if (/status of 401/.test(m.text()) && url.endsWith('/v1/keys/self')) return;
        if (/status of 403/.test(m.text()) && /\/v1\/(functions|recent)/.test(url)) return;
        errors.push('console error: ' + m.text() + (url ? ' at ' + url : ''));
      });
      await page.setViewport(sizes.laptop);
      await page.goto(base + '/', { waitUntil: 'load' });
      await page.waitForSelector('#modal:not([hidden]) #key-input', { timeout: 30000 });
      await page.type('#key-input', key);
      await page.click('#key-ok');
      await waitLoaded(page);
      return page;
    };

    // An invoke key: no list, no management, no edit button anywhere.
    const page = await login(invoke);
    const stored = await page.evaluate(() => sessionStorage.getItem('rouse.key'));
    const cookies = await page.evaluate(() => document.cookie);
    check('the key is kept in the tab\'s session storage, no cookie', stored === invoke &&
          cookies === '', `${cookies}`);
    check('an invoke key is told it may not list functions',
          !!(await page.$('#no-list')));
    await page.screenshot({ path: join(OUT, 'auth-invoke-overview-laptop-light.png') });
    await page.goto(base + '/#/fn/digits', { waitUntil: 'load' });
    await waitLoaded(page);
    const edits = await page.$$eval('.edit, #rollback, .save-alias, #scaling-save, .retry',
                                    (e) => e.length);
    check('a key without rights sees no edit buttons on the function page', edits === 0 &&
          !!(await page.$('#no-manage')), `${edits} edit buttons`);
    await (await page.$('#tryit-file')).uploadFile(join(DIGITS, 'samples', 'digit-7.json'));
    await page.waitForFunction(() => document.querySelector('#tryit-request').value.includes('0.8125'),
                               { timeout: 15000 });
    await page.click('#tryit-send');
    await page.waitForSelector('#tryit-result .top-class', { timeout: 60000 });
    const top = await page.$$eval('[data-output="probabilities"] .top-class',
                                  (els) => els.map((e) => e.textContent));
    check('an invoke key still tries the function (class 7 for digit 7)', top[0] === '7',
          String(top));
    await page.screenshot({ path: join(OUT, 'auth-invoke-function-laptop-light.png'),
                            fullPage: true });
    await page.goto(base + '/#/jobs', { waitUntil: 'load' });
    await waitLoaded(page);
    const jobsEdit = await page.$$eval('.retry', (e) => e.length);
    const failedN = await page.$eval('#jobs-failed', (e) => e.textContent);
    check('an invoke key sees the dead letter but no retry button', failedN === '1' &&
          jobsEdit === 0, `failed ${failedN}, ${jobsEdit} retry buttons`);

    // An admin key, as a control: the same pages show the buttons.
    const adminPage = await login(secret);
    await adminPage.goto(base + '/#/fn/digits', { waitUntil: 'load' });
    await waitLoaded(adminPage);
    await adminPage.waitForSelector('#rollback', { timeout: 30000 })
      .then(() => check('an admin key sees the edit buttons', true),
            (e) => check('an admin key sees the edit buttons', false, e.message));
  } finally {
    await browser.close();
  }
  check('with keys: no console error and no page error', errors.length === 0, errors.join('; '));
}

try {
  await main();
} catch (e) {
  failed++;
  console.log('FAIL: ' + (e.stack || e.message));
} finally {
  for (const p of procs) p.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
