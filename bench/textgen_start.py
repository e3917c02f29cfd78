#!/usr/bin/env python3
"""A generator's first token warm, from template and from zero, with the CPU
each process of the function spent on it: rouse serve (debug log kept in
OUT/serve.err) serving GPT-2 small's shape (bench/textgen.sh's export,
build-models/textgen-bench/L$LAYERS) with scaling.max 1, keep_alive fixed,
idle_timeout_ms IDLE (4000) and a template kept an hour, so that:

  warm      the instance is up, right after its last request;
  idle      the instance is up, after min(3 s, 3/4 of IDLE) without requests
            (what the machine does to a process left idle, at no start);
  template  the instance stopped (IDLE passed), the template stayed;
  zero      after POST .../scale-to-zero: nothing is left.

Each request is an 8-token prompt, max_tokens 1, streamed. Per request: the
client's wall time, Server-Timing's start and ttft (time to the first token
in the instance), the load average, and for each process of the function
(instance, template, spare, from GET /v1/functions/gpt2) the CPU time and
run-queue wait (/proc/PID/schedstat) and minor faults (/proc/PID/stat) it
spent between just before the request and just after it (a process started
for the request: its whole life). CPU time moves far less with the
machine's load than wall time. Root or the same user as serve (for /proc).

    bench/textgen_start.py OUT [serve flags...]
Environment: ROUSE (build/rouse), LAYERS (12), N (3 tries of each cold
kind), IDLE (4000 ms), MAXI (serve's --max-instances, 4; 1 leaves no room
for a spare), MEM (memory_mb, 2048).
"""
import json, os, re, shutil, subprocess, sys, tempfile, time, urllib.request

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rouse = os.environ.get('ROUSE', root + '/build/rouse')
layers = os.environ.get('LAYERS', '12')
model = f'{root}/build-models/textgen-bench/L{layers}/model.onnx'
if len(sys.argv) < 2 or not os.path.exists(model):
    sys.exit(f'usage: textgen_start.py OUT [serve flags]; run bench/textgen.sh once first ({model})')
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
tmp = tempfile.mkdtemp()
serve = subprocess.Popen([rouse, 'serve', '--port', '0', '--data', tmp + '/data', '--log-level', 'debug',
                          '--max-instances', os.environ.get('MAXI', '4')] + sys.argv[2:],
                         stdout=open(out + '/serve.out', 'w'), stderr=open(out + '/serve.err', 'w'))
try:
    for _ in range(100):
        m = re.search(r'listening on .*:(\d+)', open(out + '/serve.out').read())
        if m:
            break
        time.sleep(0.1)
    base = 'http://127.0.0.1:' + m.group(1)

    def http(method, path, body=None):
        with urllib.request.urlopen(urllib.request.Request(base + path, data=body, method=method),
                                    timeout=600) as f:
            return f.read(), f.headers

    def upload(p):
        return json.loads(http('POST', '/v1/blobs', open(p, 'rb').read())[0])['digest']

    subprocess.check_call(['node', root + '/bench/textgen_tokenizer.js', '50257', tmp + '/tokenizer.json'])
    idle = int(os.environ.get('IDLE', '4000'))
    cfg = {'model': upload(model), 'task': 'text-generation', 'max_context': 1024,
           'memory_mb': int(os.environ.get('MEM', '2048')), 'tokenizer': upload(tmp + '/tokenizer.json'),
           'scaling': {'max': 1, 'keep_alive': 'fixed', 'idle_timeout_ms': idle,
                       'template_ttl_ms': 3600000}}
    deployed = http('PUT', '/v1/functions/gpt2', json.dumps(cfg).encode())[0]
    if b'"version"' not in deployed:
        sys.exit('deploy failed: ' + deployed.decode())

    def procs():
        f = json.loads(http('GET', '/v1/functions/gpt2')[0])
        r = {}
        for kind, key in (('instance', 'instances'), ('template', 'templates'), ('spare', 'spares')):
            for x in f.get(key) or []:
                if isinstance(x, dict) and x.get('pid'):
                    r[x['pid']] = kind
        return r

    def stat(pid):
        try:
            s = open(f'/proc/{pid}/schedstat').read().split()
            f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
            return (int(s[0]) / 1e6, int(s[1]) / 1e6, int(f[7]))
        except OSError:
            return None

    n = [0]

    def req(label):
        n[0] += 1
        ids = [(n[0] * 7919 + i * 104729) % 50000 for i in range(8)]
        before = {p: stat(p) for p in procs()}
        t0 = time.time()
        _, h = http('POST', '/openai/v1/completions', json.dumps(
            {'model': 'gpt2', 'prompt': ids, 'max_tokens': 1, 'temperature': 0, 'stream': True}).encode())
        wall = (time.time() - t0) * 1000
        time.sleep(0.05)
        timing = h.get('Server-Timing', '')
        start = float(re.search(r'start;dur=([\d.]+)', timing).group(1))
        ttft = float(re.search(r'ttft;dur=([\d.]+)', timing).group(1))
        cols = []
        for pid, kind in procs().items():
            a, b = before.get(pid) or (0, 0, 0), stat(pid)
            if b:
                cols.append(f'{kind} {pid}: cpu {b[0] - a[0]:.1f} wait {b[1] - a[1]:.1f} ms, '
                            f'{b[2] - a[2]} faults')
        load = open('/proc/loadavg').read().split()[0]
        print(f'{label:8s} ({h.get("Rouse-Start")}) wall {wall:7.1f} start {start:7.1f} '
              f'ttft {ttft:7.1f} ms, load {load} | ' + ' | '.join(cols), flush=True)

    req('first')
    req('warm')
    req('warm')
    tries = int(os.environ.get('N', '3'))
    for _ in range(tries):
        time.sleep(min(3.0, idle / 1000 * 0.75))
        req('idle')
        time.sleep(idle / 1000 + 1.5)
        req('template')
        req('warm')
    for _ in range(tries):
        http('POST', '/v1/functions/gpt2/scale-to-zero')
        time.sleep(1.5)
        req('zero')
        req('warm')
finally:
    serve.terminate()
    serve.wait()
    shutil.rmtree(tmp, ignore_errors=True)
