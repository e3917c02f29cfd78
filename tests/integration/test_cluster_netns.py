#!/usr/bin/python3
"""Three rouse nodes as one platform on PostgreSQL and NATS JetStream.

Each node runs in a network namespace of its own, joined to the test's
namespace by a bridge (10.231.X.0/24: the bridge .1, node i .1i); a
throwaway PostgreSQL (initdb in a temporary directory, run as the
`postgres` system user) and `nats-server -js` listen on the bridge's
address. Only those addresses and loopback are used. Scenarios:

1. deploy on node 1, invoke on node 3 (the blob fetched from a peer);
2. an alias changed on node 1 is seen by every node (the time it took is
   printed; a benchmark figure, not a pass/fail threshold);
3. a batch file of 1000 requests posted to one node, drained by all
   nodes: its status read through another node, its output through a
   third, every line the right answer in order, 1000 runs metered, each
   node ran some;
4. a node killed (SIGKILL) under load: every request is answered (200 or a
   clear 502/503), and the usage of the nodes that lived counts exactly the
   answers they gave;
5. the killed node restarted: it rejoins and serves;
6. PostgreSQL restarted under load: requests keep being answered, and a
   deploy succeeds once it is back.

Usage: test_cluster.py ROUSE_BINARY SOURCE_DIR. Exit 77 (skip) with one
line where namespaces, PostgreSQL or nats-server are unavailable.
"""
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

rouse, src = os.path.abspath(sys.argv[1]), sys.argv[2]
N = 3
PORT = 8080  # every node has its own namespace, so the same port
CLUSTER_KEY = "c" * 48
ADMIN_KEY = "a" * 48


def skip(why):
    print(f"skip: {why}")
    sys.exit(77)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


if os.geteuid() != 0:
    skip("network namespaces need root")
if not shutil.which("ip"):
    skip("iproute2's ip is not installed")
initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
if not initdbs:
    skip("PostgreSQL is not installed (Debian package postgresql)")
nats_bin = shutil.which("nats-server") or "/usr/sbin/nats-server"
if not os.access(nats_bin, os.X_OK):
    skip("nats-server is not installed (Debian package nats-server)")
try:
    pg_user = pwd.getpwnam("postgres")
except KeyError:
    skip("there is no `postgres` user to run PostgreSQL as")
pg_bin = os.path.dirname(initdbs[-1])

tmp = tempfile.mkdtemp(prefix="rouse-cluster-", dir=os.environ.get("TMPDIR") or "/tmp")
os.chmod(tmp, 0o755)
tag = str(os.getpid() % 100000)
sub = os.getpid() % 250 + 1
host_addr = f"10.231.{sub}.1"
bridge = f"rbr{tag}"
nodes = []
cleanups = []


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r.returncode


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# --- the network ------------------------------------------------------------------
if ip("netns", "add", f"rprobe{tag}", check=False) != 0:
    skip("cannot make a network namespace here (ip netns add failed)")
ip("netns", "del", f"rprobe{tag}", check=False)


def net_down():
    for i in range(N):
        ip("link", "del", f"rv{tag}-{i + 1}", check=False)
        ip("netns", "del", f"rouse-t{tag}-{i + 1}", check=False)
    ip("link", "del", bridge, check=False)


cleanups.append(net_down)
ip("link", "add", bridge, "type", "bridge")
ip("addr", "add", f"{host_addr}/24", "dev", bridge)
ip("link", "set", bridge, "up")
for i in range(N):
    ns, veth, addr = f"rouse-t{tag}-{i + 1}", f"rv{tag}-{i + 1}", f"10.231.{sub}.{11 + i}"
    ip("netns", "add", ns)
    ip("link", "add", veth, "type", "veth", "peer", "name", veth + "p")
    ip("link", "set", veth + "p", "netns", ns)
    ip("link", "set", veth, "master", bridge)
    ip("link", "set", veth, "up")
    ip("-n", ns, "link", "set", "lo", "up")
    ip("-n", ns, "addr", "add", f"{addr}/24", "dev", veth + "p")
    ip("-n", ns, "link", "set", veth + "p", "up")
    nodes.append({"name": f"node-{i + 1}", "ns": ns, "addr": addr, "proc": None,
                  "data": os.path.join(tmp, f"node{i + 1}")})


# --- PostgreSQL and NATS --------------------------------------------------------------
def as_postgres():
    os.setgid(pg_user.pw_gid)
    os.setuid(pg_user.pw_uid)


pg_root = os.path.join(tmp, "pg")
os.mkdir(pg_root)
os.chown(pg_root, pg_user.pw_uid, pg_user.pw_gid)
pg_port = free_port()
pg_data = os.path.join(pg_root, "data")


def pg_ctl(*args):
    # The server's output goes to its log (-l), never to our pipes: a
    # server that held them open would keep run() waiting for their end.
    r = subprocess.run([os.path.join(pg_bin, "pg_ctl"), "-D", pg_data, "-w", "-t", "60", *args],
                       preexec_fn=as_postgres, capture_output=True, text=True, timeout=120,
                       env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    if r.returncode != 0:
        raise RuntimeError(f"pg_ctl {args[-1]}: {r.stdout} {r.stderr}")


subprocess.run([initdbs[-1], "-D", pg_data, "-U", "rouse", "--auth=trust", "-E", "UTF8",
                "--no-sync"], preexec_fn=as_postgres, check=True, capture_output=True,
               env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
with open(os.path.join(pg_data, "pg_hba.conf"), "a") as f:
    f.write(f"host all all {host_addr.rsplit('.', 1)[0]}.0/24 trust\n")
pg_opts = (f"-p {pg_port} -k {pg_root} -c listen_addresses='127.0.0.1,{host_addr}' "
           "-c fsync=off -c max_connections=300")
pg_ctl("-l", os.path.join(pg_root, "log"), "-o", pg_opts, "start")
cleanups.append(lambda: pg_ctl("-m", "immediate", "stop"))
state_url = f"postgres://rouse@{host_addr}:{pg_port}/postgres"

nats_port = free_port()
nats = subprocess.Popen([nats_bin, "-js", "-a", host_addr, "-p", str(nats_port), "-sd",
                         os.path.join(tmp, "js"), "-l", os.path.join(tmp, "nats.log")])
cleanups.append(lambda: (nats.terminate(), nats.wait()))
for _ in range(2000):
    try:
        socket.create_connection((host_addr, nats_port), timeout=1).close()
        break
    except OSError:
        time.sleep(0.01)
bus_url = f"nats://{host_addr}:{nats_port}"

for name, secret in (("cluster.key", CLUSTER_KEY), ("admin.key", ADMIN_KEY)):
    with open(os.path.join(tmp, name), "w") as f:
        f.write(secret + "\n")
    os.chmod(os.path.join(tmp, name), 0o600)


# --- the nodes ----------------------------------------------------------------------
def start(node):
    args = ["ip", "netns", "exec", node["ns"], rouse, "serve", "--bind", node["addr"],
            "--port", str(PORT), "--data", node["data"], "--auth",
            "--auth-bootstrap-key-file", os.path.join(tmp, "admin.key"),
            "--cluster-key-file", os.path.join(tmp, "cluster.key"),
            "--state", state_url, "--bus", bus_url, "--node-name", node["name"],
            "--advertise", f"http://{node['addr']}:{PORT}", "--max-instances", "2"]
    errlog = open(os.path.join(tmp, f"{node['name']}.log"), "a")
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errlog, text=True)
    line = p.stdout.readline()
    if not line.startswith("listening on"):
        raise RuntimeError(f"{node['name']} did not start: {line!r} (see its log)")
    node["proc"] = p
    log(f"{node['name']} up at {node['addr']}:{PORT}")


def stop_all():
    for n in nodes:
        if n["proc"] and n["proc"].poll() is None:
            n["proc"].send_signal(signal.SIGTERM)
            try:
                n["proc"].wait(timeout=30)
            except subprocess.TimeoutExpired:
                n["proc"].kill()
                n["proc"].wait()


cleanups.append(stop_all)


def call(node, method, path, body=None, headers=None, timeout=60):
    """(status, headers, body bytes); status 0 when no answer came."""
    h = {"Authorization": f"Bearer {ADMIN_KEY}"}
    if headers:
        h.update(headers)
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(f"http://{node['addr']}:{PORT}{path}", data=body, method=method,
                                 headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as e:
        return 0, {}, str(e).encode()


failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        log(f"FAIL: {what}")
    return ok


def wait_for(what, fn, deadline_s):
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    check(False, f"{what} within {deadline_s} s")
    return None


samples = []
for d in range(10):
    with open(os.path.join(src, "examples/digits/samples", f"digit-{d}.json"), "rb") as f:
        samples.append(f.read())


def argmax(body):
    out = json.loads(body)["outputs"][0]["data"]
    return max(range(len(out)), key=lambda i: out[i])


def infer(node, d, version=None, timeout=60):
    path = "/v2/models/digits" + (f"/versions/{version}" if version else "") + "/infer"
    return call(node, "POST", path, samples[d], {"Content-Type": "application/json"}, timeout)


def run():
    for n in nodes:
        start(n)
    n1, n2, n3 = nodes

    # 1. deploy on node 1, invoke on node 3 --------------------------------------
    with open(os.path.join(src, "examples/digits/model.onnx"), "rb") as f:
        model = f.read()
    st, _, body = call(n1, "POST", "/v1/blobs", model, {"Content-Type": "application/octet-stream"})
    check(st in (200, 201), f"upload on node 1: {st} {body[:200]}")
    digest = json.loads(body)["digest"]
    st, _, body = call(n1, "PUT", "/v1/functions/digits", {"model": digest})
    check(st in (200, 201), f"deploy on node 1: {st} {body[:200]}")
    st, h, body = wait_for("node 3 answers the function deployed on node 1",
                           lambda: (lambda r: r if r[0] == 200 else None)(infer(n3, 7)), 60) or (0, {}, b"")
    if check(st == 200, f"invoke on node 3: {st} {body[:200]}"):
        check(argmax(body) == 7, "node 3's answer is right (digit 7)")
        check(h.get("Rouse-Node") in [n["name"] for n in nodes],
              f"the answer names its node (Rouse-Node: {h.get('Rouse-Node')})")
    log(f"1. deployed on node 1, node 3 answered (Rouse-Node {h.get('Rouse-Node')})")

    # 2. an alias change on node 1, seen by every node ---------------------------
    st, _, body = call(n1, "PUT", "/v1/functions/digits", {"model": digest, "scaling": {"max": 2}})
    check(st in (200, 201), f"second version: {st} {body[:200]}")
    for target in (1, 2):
        st, _, body = call(n1, "PUT", "/v1/functions/digits/aliases/stable",
                           {"routes": [{"version": target, "weight": 1}]})
        check(st in (200, 201), f"alias stable -> {target}: {st} {body[:200]}")
        t0 = time.monotonic()
        seen = {}
        while time.monotonic() - t0 < 30 and len(seen) < N:
            for n in nodes:
                if n["name"] in seen:
                    continue
                st, h, _ = infer(n, 3, "stable")
                if st == 200 and h.get("X-Rouse-Version") == str(target):
                    seen[n["name"]] = time.monotonic() - t0
            time.sleep(0.02)
        check(len(seen) == N, f"every node routes alias stable to version {target} (seen by {sorted(seen)})")
        log(f"2. alias stable -> v{target} seen by all nodes after "
            f"{max(seen.values()) * 1000 if seen else float('nan'):.0f} ms "
            f"({', '.join(f'{k} {v * 1000:.0f} ms' for k, v in sorted(seen.items()))})")

    # 3. a batch file of 1000 requests drained by all nodes ---------------------
    # Posted to node 2; its items run wherever there is capacity; its status
    # read through node 3, its output through node 1. Who ran them: the
    # invocation records of their runs, metered per node.
    before = settled_usage(n1)
    lines = "".join(json.dumps(json.loads(samples[i % 10])) + "\n" for i in range(1000))
    st, _, body = call(n2, "POST", "/v1/blobs", lines.encode(),
                       {"Content-Type": "application/octet-stream"})
    check(st in (200, 201), f"batch input uploaded on node 2: {st} {body[:200]}")
    st, _, body = call(n2, "POST", "/v1/batches",
                       {"function": "digits", "input": json.loads(body)["digest"]})
    check(st == 202, f"batch of 1000 accepted with 202: {st} {body[:200]}")
    bid = json.loads(body)["id"]

    def batch_done():
        st2, _, b = call(n3, "GET", f"/v1/batches/{bid}")
        return json.loads(b) if st2 == 200 and json.loads(b).get("status") == "completed" else None

    doc = wait_for("the batch completed (read through node 3)", batch_done, 300) or {}
    log(f"3. batch {bid}: {doc.get('counts')}")
    check(doc.get("counts", {}).get("succeeded") == 1000, f"1000 items succeeded ({doc.get('counts')})")
    st, _, out = call(n1, "GET", f"/v1/batches/{bid}/output")
    got = out.decode().split("\n")[:-1] if st == 200 else []
    ok = sum(1 for i, line in enumerate(got) if line != "null" and argmax(line) == i % 10)
    check(len(got) == 1000 and ok == 1000,
          f"the output (read through node 1) answers every line right, in order ({ok}/{len(got)})")
    after = wait_for("the runs' usage recorded",
                     lambda: (lambda u: u if sum(u.values()) - sum(before.values()) >= 1000 else None)(
                         usage_by_node(n1)), 30) or {}
    ran = {n["name"]: after.get(n["name"], 0) - before.get(n["name"], 0) for n in nodes}
    log(f"3. 1000 jobs ran on: {ran}")
    check(sum(ran.values()) == 1000, f"each job ran exactly once ({sum(ran.values())} runs)")
    check(all(v > 0 for v in ran.values()), f"every node ran some of the jobs ({ran})")

    # 4. a node killed under load ----------------------------------------------------
    answers = []
    stop = threading.Event()

    def load(node, k):
        i = 0
        while not stop.is_set():
            st, h, b = infer(node, (i + k) % 10, timeout=60)
            ok = st == 200 and argmax(b) == (i + k) % 10
            answers.append((node["name"], st, h.get("Rouse-Node") if h else None, ok, b[:200]))
            i += 1

    threads = [threading.Thread(target=load, args=(n, k)) for k, n in enumerate(nodes) for _ in range(2)]
    base = settled_usage(n1)
    for t in threads:
        t.start()
    time.sleep(3)
    n2["proc"].kill()
    n2["proc"].wait()
    log("4. node-2 killed (SIGKILL) under load")
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join()
    # Clients of the killed node itself lose their connection (status 0):
    # nothing can answer them. Every request sent to a living node gets a
    # right 200, or a 502/503 that says why (a call it had forwarded there).
    bad = [a for a in answers if a[0] != "node-2" and
           (a[1] not in (200, 502, 503) or (a[1] == 200 and not a[3]))]
    check(not bad, f"every request to a living node answered 200 (right) or 502/503: {bad[:5]}")
    wrong = [a for a in answers if a[1] == 200 and not a[3]]
    check(not wrong, f"no wrong answer anywhere: {wrong[:5]}")
    for a in answers:
        if a[1] in (502, 503):
            check(b"error" in a[4], f"a {a[1]} says why: {a[4]}")
    by_node = {}
    for a in answers:
        if a[1] == 200:
            by_node[a[2]] = by_node.get(a[2], 0) + 1
    log(f"4. answers: {len(answers)}, 200 by node {by_node}, "
        f"errors {sum(1 for a in answers if a[1] != 200)}")

    def usage_settled():
        u = usage_by_node(n1)
        return u if all(u.get(k, 0) - base.get(k, 0) == by_node.get(k, 0) for k in ("node-1", "node-3")) else None

    u = wait_for("usage of the living nodes counts their answers", usage_settled, 30)
    log(f"4. usage by node after the load: {u}")

    # 5. the killed node restarted -------------------------------------------------------
    start(n2)
    wait_for("node-2 back in the membership of node 1",
             lambda: any(m.get("name") == "node-2" and m.get("age_ms", 10**9) < 1000
                         for m in members(n1)), 30)
    st, h, b = infer(n2, 5)
    check(st == 200 and argmax(b) == 5, f"node-2 serves after its restart: {st}")

    # 6. PostgreSQL restarted under load -------------------------------------------------
    answers.clear()
    stop.clear()
    threads = [threading.Thread(target=load, args=(n, k)) for k, n in enumerate(nodes)]
    for t in threads:
        t.start()
    time.sleep(1)
    pg_ctl("-m", "fast", "-l", os.path.join(pg_root, "log"), "-o", pg_opts, "restart")
    log("6. PostgreSQL restarted")
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join()
    bad = [a for a in answers if a[1] != 200 or not a[3]]
    check(not bad, f"every request answered right while PostgreSQL restarted: {bad[:5]}")
    log(f"6. {len(answers)} requests during the restart, {len(bad)} not 200")
    st, _, b = wait_for("a deploy after PostgreSQL's restart",
                        lambda: (lambda r: r if r[0] in (200, 201) else None)(
                            call(n3, "PUT", "/v1/functions/digits2", {"model": digest})), 60) or (0, 0, b"")
    check(st in (200, 201), f"deploy on node 3 after the restart: {st} {b[:200]}")


def usage_by_node(node):
    st, _, b = call(node, "GET", "/v1/usage?function=digits&group_by=node")
    if st != 200:
        return {}
    out = {}
    for g in json.loads(b).get("groups", []):
        key = g.get("node") or g.get("key")
        out[key] = g.get("invocations", 0)
    return out


def settled_usage(node):
    """The usage by node once it stops moving: records ship within about a
    second of their calls, so earlier calls may still be on their way."""
    last = usage_by_node(node)
    for _ in range(60):
        time.sleep(1.5)
        now = usage_by_node(node)
        if now == last:
            return now
        last = now
    return last


def members(node):
    st, _, b = call(node, "GET", "/v1/cluster")
    if st != 200:
        return []
    v = json.loads(b)
    return v.get("nodes", v if isinstance(v, list) else [])


def on_term(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the cleanup must run whole
    raise SystemExit(f"stopped by signal {signum}")


# ctest's timeout sends SIGTERM: leave no namespace, server or node behind.
signal.signal(signal.SIGTERM, on_term)
try:
    run()
except BaseException as e:  # a failure of the setup, an unexpected answer, SIGTERM
    import traceback
    traceback.print_exc()
    failures.append(f"exception: {e}")
finally:
    for c in reversed(cleanups):
        try:
            c()
        except Exception as e:
            log(f"cleanup: {e}")
    if failures:
        for n in nodes:
            lp = os.path.join(tmp, f"{n['name']}.log")
            if os.path.exists(lp):
                with open(lp) as f:
                    text = f.read()
                # Its warnings and errors first (the tail alone often shows
                # only the last scenario), then its end.
                bad = [l for l in text.splitlines() if " warn " in l or " error " in l]
                print(f"--- {n['name']} log: {len(bad)} warning(s) and error(s) ---")
                for l in bad[:20] + (["[...]"] + bad[-10:] if len(bad) > 30 else bad[20:]):
                    print(l[:300])
                print(f"--- {n['name']} log (end) ---\n{text[-1500:]}")
    shutil.rmtree(tmp, ignore_errors=True)

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("cluster: all scenarios passed")
