#!/usr/bin/python3
"""Checks the Dockerfile and deploy/kubernetes/ against the binary, without
building the image (no image registry is reachable from the test machines):

* every flag in the rouse container's arguments is one `rouse serve --help`
  documents, and every $(VAR) they use is defined in the container's env;
* the container port, the probes' ports and the Service's targetPort are
  serve's --port, and the Dockerfile EXPOSEs it;
* the probe paths answer 200 without a key on a real `rouse serve --auth`
  started with the manifest's own port-independent flags;
* the Secret keys the manifests use are the ones the README creates, key
  files are mounted where the arguments name them, with mode 0400;
* --state and --bus name the PostgreSQL and NATS Services and their ports,
  and NATS runs with JetStream;
* the memory request covers --max-instances x the default memory_mb;
* the image's runtime stage installs the Debian package of every shared
  library the binary links, the build stage every -dev package that
  scripts/setup installs for the build, and the ENTRYPOINT is the file the
  build stage's binary is copied to.

Usage: test_deploy.py ROUSE_BINARY SOURCE_DIR
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import yaml
except ImportError:
    print("skip: PyYAML is not installed (Debian package python3-yaml)")
    sys.exit(77)

rouse, src = sys.argv[1], sys.argv[2]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def load_all(name):
    with open(os.path.join(src, "deploy/kubernetes", name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


docs = {}
for name in sorted(os.listdir(os.path.join(src, "deploy/kubernetes"))):
    if name.endswith(".yaml"):
        for d in load_all(name):
            docs[(d["kind"], d["metadata"]["name"])] = d

# --- the rouse container and serve's flags ----------------------------------
dep = docs[("Deployment", "rouse")]
pod = dep["spec"]["template"]["spec"]
c = next(x for x in pod["containers"] if x["name"] == "rouse")
args = [str(a) for a in c["args"]]
check(args[0] == "serve", "the container runs `rouse serve`")
help_text = subprocess.run([rouse, "serve", "--help"], capture_output=True, text=True).stdout
known = set(re.findall(r"(--[a-z0-9-]+)", help_text))
flags = {}
i = 1
while i < len(args):
    a = args[i]
    check(a.startswith("--"), f"argument {a!r} is a flag")
    check(a in known, f"{a} is a flag of `rouse serve --help`")
    if a == "--auth":
        flags[a] = True
        i += 1
    else:
        check(i + 1 < len(args), f"{a} has a value")
        flags[a] = args[i + 1] if i + 1 < len(args) else ""
        i += 2
env = {e["name"]: e for e in c.get("env", [])}
for a in args:
    for var in re.findall(r"\$\(([A-Z_]+)\)", a):
        check(var in env, f"$({var}) in the arguments is defined in env")

# --- ports and probes -----------------------------------------------------------
port = int(flags.get("--port", "8080"))
cports = [p["containerPort"] for p in c["ports"]]
check(cports == [port], f"containerPort {cports} is --port {port}")
for probe in ("readinessProbe", "livenessProbe"):
    hg = c[probe]["httpGet"]
    check(hg["port"] in (port, "http"), f"{probe} port {hg['port']} is --port")
svc = docs[("Service", "rouse")]
check([p["targetPort"] for p in svc["spec"]["ports"]] in ([port], ["http"]),
      "the Service targets --port")
check(svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"],
      "the Service selects the Deployment's pods")
with open(os.path.join(src, "Dockerfile")) as f:
    dockerfile = f.read()
check(re.search(rf"^EXPOSE {port}$", dockerfile, re.M) is not None, f"the Dockerfile EXPOSEs {port}")

# --- the probe paths on a real serve ------------------------------------------
tmp = tempfile.mkdtemp(prefix="rouse-deploy-", dir=os.environ.get("TMPDIR") or "/tmp")
keyfile = os.path.join(tmp, "bootstrap-key")
with open(keyfile, "w") as f:
    f.write("k" * 40 + "\n")
os.chmod(keyfile, 0o400)
serve_args = [rouse, "serve", "--port", "0", "--data", os.path.join(tmp, "data"),
              "--auth", "--auth-bootstrap-key-file", keyfile]
if "--isolation" in flags:
    serve_args += ["--isolation", flags["--isolation"]]
if "--max-instances" in flags:
    serve_args += ["--max-instances", flags["--max-instances"]]
p = subprocess.Popen(serve_args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    line = p.stdout.readline()
    m = re.match(r"listening on ([0-9.]+):(\d+)", line)
    check(m is not None, f"serve started with the manifest's flags (first line {line!r})")
    if m:
        for probe in ("readinessProbe", "livenessProbe"):
            path = c[probe]["httpGet"]["path"]
            url = f"http://127.0.0.1:{m.group(2)}{path}"
            status = None
            for _ in range(50):
                try:
                    status = urllib.request.urlopen(url, timeout=10).status
                    break
                except Exception as e:  # not ready yet, or refused
                    status = getattr(e, "code", None)
                    time.sleep(0.1)
            check(status == 200, f"{probe} {path} answers 200 without a key (got {status})")
finally:
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)

# --- secrets and key files ------------------------------------------------------
with open(os.path.join(src, "deploy/kubernetes/README.md")) as f:
    readme = f.read()
created = set(re.findall(r"--from-literal=([a-z-]+)=", readme))
used = set()
for d in docs.values():
    for ctr in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
        for e in ctr.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                check(ref["name"] == "rouse-secrets", f"{e['name']} comes from rouse-secrets")
                used.add(ref["key"])
vols = {v["name"]: v for v in pod["volumes"]}
mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
for flag in ("--cluster-key-file", "--auth-bootstrap-key-file"):
    if flag not in flags:
        continue
    path = flags[flag]
    d, base = os.path.dirname(path), os.path.basename(path)
    check(d in mounts, f"{flag} {path} is in a mounted volume")
    v = vols.get(mounts.get(d), {})
    sec = v.get("secret")
    check(sec is not None, f"{flag} comes from a Secret")
    if sec:
        check(sec.get("defaultMode") == 0o400, f"{flag}'s Secret is mounted with mode 0400")
        keys = {it["path"]: it["key"] for it in sec.get("items", [])}
        check(base in keys, f"{flag} {base} is an item of the Secret")
        if base in keys:
            used.add(keys[base])
check(used and used <= created, f"every Secret key used ({sorted(used)}) is created in README.md ({sorted(created)})")

# --- PostgreSQL and NATS ----------------------------------------------------------
def service_port(name):
    s = docs[("Service", name)]
    return [p["port"] for p in s["spec"]["ports"]]

m = re.match(r"postgres(?:ql)?://(?:[^@/]+@)?([^:/]+):(\d+)/", flags.get("--state", ""))
check(m is not None, "--state is a postgres:// URL with host and port")
if m:
    check(("Service", m.group(1)) in docs and int(m.group(2)) in service_port(m.group(1)),
          f"--state names the Service {m.group(1)}:{m.group(2)}")
    check("PGPASSWORD" in env, "the database password comes as PGPASSWORD (libpq), not in the URL")
m = re.match(r"nats://([^:/]+):(\d+)", flags.get("--bus", ""))
check(m is not None, "--bus is a nats:// URL with host and port")
if m:
    check(("Service", m.group(1)) in docs and int(m.group(2)) in service_port(m.group(1)),
          f"--bus names the Service {m.group(1)}:{m.group(2)}")
    nats = docs[("StatefulSet", m.group(1))]["spec"]["template"]["spec"]["containers"][0]
    check("-js" in nats.get("args", []), "NATS runs with JetStream (-js)")

# --- memory ---------------------------------------------------------------------
def mib(q):
    q = str(q)
    units = {"Mi": 1, "Gi": 1024}
    for u, f in units.items():
        if q.endswith(u):
            return float(q[:-2]) * f
    return float(q) / (1 << 20)

deploy_help = subprocess.run([rouse, "deploy", "--help"], capture_output=True, text=True).stdout
mm = re.search(r"memory_mb[^\n]*?default (\d+)", deploy_help) or re.search(r"--memory-mb[^\n]*\n?[^\n]*?default (\d+)", deploy_help)
default_mb = int(mm.group(1)) if mm else 512
max_inst = int(flags.get("--max-instances", "0"))
check(max_inst > 0, "--max-instances is set, so the memory request can cover it")
req = mib(c["resources"]["requests"]["memory"])
check(req >= max_inst * default_mb, f"memory request {req} MiB covers {max_inst} x {default_mb} MiB")

# --- the Dockerfile against the binary and scripts/setup --------------------------
stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
check(len(stages) == 2 and all(s.startswith("debian:12") for s in stages),
      "two stages, both on debian:12")
def installed(stage):
    m = re.search(r"apt-get install[^\n\\]*(?:\\\n[^\n\\]*)*", stage)
    return set(re.findall(r"(?<![-\w])([a-z0-9][a-z0-9.+-]+)(?=\s|\\|$)", m.group(0))) if m else set()
build_pkgs, run_pkgs = installed(stages[0]), installed(stages[1])
with open(os.path.join(src, "scripts/setup")) as f:
    setup = f.read()
setup_pkgs = set(re.findall(r"[a-z0-9.+-]+", re.search(r'packages="([^"]*)"', setup).group(1)))
for pkg in sorted(setup_pkgs):
    if pkg.endswith("-dev") and pkg != "libcmocka-dev":
        check(pkg in build_pkgs, f"the build stage installs {pkg} (scripts/setup builds with it)")
# What the runtime stage's packages pull in with them (their dependencies,
# recursively, as apt installs them), as this machine's apt knows them.
r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                    "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"]
                   + sorted(run_pkgs), capture_output=True, text=True)
run_closure = set(run_pkgs)
for line in r.stdout.splitlines():
    m = re.match(r"^\s*(?:\|?(?:Pre)?Depends: )?<?([a-z0-9][a-z0-9.+-]+)(?::\w+)?>?$", line.strip())
    if m:
        run_closure.add(m.group(1))
ldd = subprocess.run(["ldd", rouse], capture_output=True, text=True).stdout
# A sanitizer build (the suite runs under ASan and UBSan too) links their
# runtimes; the image builds its own binary without them.
libs = [lib for lib in re.findall(r"=> (/\S+)", ldd)
        if not re.match(r"lib(asan|ubsan|lsan|tsan)\.so", os.path.basename(lib))]
def candidates(lib):
    real = os.path.realpath(lib)
    return [real, lib, lib.replace("/usr/lib/", "/lib/"), real.replace("/usr/lib/", "/lib/")]

# One dpkg -S for every path (it is slow per call): "package: path" lines.
r = subprocess.run(["dpkg", "-S"] + sorted({c for lib in libs for c in candidates(lib)}),
                   capture_output=True, text=True)
owners = {}
for line in r.stdout.splitlines():
    pkg, _, path = line.partition(": ")
    owners[path.strip()] = pkg.split(":")[0]
for lib in libs:
    owner = next((owners[c] for c in candidates(lib) if c in owners), None)
    if owner is None:
        print(f"note: {lib} belongs to no Debian package here; not checked")
        continue
    essential = {"libc6", "libgcc-s1", "zlib1g", "libstdc++6"}
    check(owner in essential or owner in run_closure,
          f"the runtime stage installs {owner} (for {os.path.basename(lib)}) or a package that depends on it")
m = re.search(r"COPY --from=build (\S+) (\S+)", dockerfile)
check(m is not None and m.group(1).endswith("/build/rouse"), "the image copies the built binary")
if m:
    check(f'ENTRYPOINT ["{m.group(2)}"]' in dockerfile, "the ENTRYPOINT is the copied binary")
check("-DROUSE_BUILD_TESTS=OFF" in dockerfile, "the image builds without the test suite")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("deploy: Dockerfile and Kubernetes manifests agree with the binary")
