#!/usr/bin/env python3
"""Helpers of test_observe.sh.

  observe_check.py receiver PORTFILE OUTFILE [hang]
      An OTLP/HTTP collector on a free loopback port (written to PORTFILE):
      every POST body is appended to OUTFILE as one line and answered 200.
      With "hang", it reads each request and never answers (a stalled
      collector).
  observe_check.py spans OUTFILE EXPECT.json
      Checks the span tree of every exported trace; EXPECT maps trace ids to
      the parent span id the request span must have ("" for none) and lists
      the traces that must hold an instance start. Prints the span count.
  observe_check.py freeport
      Prints a free loopback TCP port.
"""
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def receiver(portfile, outfile, hang):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if hang:
                time.sleep(3600)
                return
            ok = self.path == "/v1/traces" and self.headers.get("Content-Type") == "application/json"
            if ok:
                with lock, open(outfile, "a") as f:
                    f.write(body.decode() + "\n")
            self.send_response(200 if ok else 400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check_spans(outfile, expect_file):
    expect = json.load(open(expect_file))
    spans = []
    for line in open(outfile):
        req = json.loads(line)
        for rs in req["resourceSpans"]:
            attrs = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
            if attrs.get("service.name", {}).get("stringValue") != "rouse":
                fail("resource without service.name rouse")
            for ss in rs["scopeSpans"]:
                spans.extend(ss["spans"])
    traces = {}
    for s in spans:
        s["start"] = int(s["startTimeUnixNano"])
        s["end"] = int(s["endTimeUnixNano"])
        if s["end"] < s["start"]:
            fail(f"span {s['name']} ends before it starts")
        if len(s["traceId"]) != 32 or len(s["spanId"]) != 16:
            fail(f"span {s['name']}: bad ids {s['traceId']} {s['spanId']}")
        traces.setdefault(s["traceId"], []).append(s)
    for tid, want_parent in expect["parents"].items():
        if tid not in traces:
            fail(f"trace {tid} was not exported")
    for tid in expect.get("absent", []):
        if tid in traces:
            fail(f"trace {tid} was exported though it was not sampled")
    for tid, ts in traces.items():
        by_id = {s["spanId"]: s for s in ts}
        if len(by_id) != len(ts):
            fail(f"trace {tid}: two spans share an id")
        reqs = [s for s in ts if s["name"] == "request"]
        if len(reqs) != 1:
            fail(f"trace {tid}: {len(reqs)} request spans")
        root = reqs[0]
        if root["kind"] != 2:
            fail(f"trace {tid}: the request span is not of kind SERVER")
        if tid in expect["parents"] and root["parentSpanId"] != expect["parents"][tid]:
            fail(f"trace {tid}: request span's parent is '{root['parentSpanId']}', "
                 f"expected '{expect['parents'][tid]}'")
        for s in ts:
            if s is root:
                continue
            p = by_id.get(s["parentSpanId"])
            if not p:
                fail(f"trace {tid}: span {s['name']} has no parent in its trace")
            if s["start"] < p["start"] or s["end"] > p["end"]:
                fail(f"trace {tid}: span {s['name']} [{s['start']}, {s['end']}] is not inside "
                     f"its parent {p['name']} [{p['start']}, {p['end']}]")
        named = {}
        for s in ts:
            named.setdefault(s["name"], []).append(s)
        attrs = {a["key"]: a["value"] for a in root["attributes"]}
        if attrs["http.response.status_code"]["intValue"] == "404" and len(ts) != 1:
            fail(f"trace {tid}: a call that reached no instance has spans besides its request")
        if attrs["http.response.status_code"]["intValue"] != "200":
            continue
        for n in ("queue_wait", "inference"):
            if len(named.get(n, [])) != 1 or named[n][0]["parentSpanId"] != root["spanId"]:
                fail(f"trace {tid}: expected one {n} span under the request span")
        q, inf = named["queue_wait"][0], named["inference"][0]
        if q["end"] > inf["start"]:
            fail(f"trace {tid}: queue_wait ends after the inference starts")
        dur = lambda s: s["end"] - s["start"]
        if dur(q) + dur(inf) > dur(root):
            fail(f"trace {tid}: queue_wait + inference ({dur(q) + dur(inf)} ns) exceed the "
                 f"request ({dur(root)} ns)")
        if tid in expect.get("cold", []):
            st = named.get("instance_start", [])
            if len(st) != 1 or st[0]["parentSpanId"] != q["spanId"]:
                fail(f"trace {tid}: expected an instance_start span under queue_wait")
            if st[0]["end"] != q["end"]:
                fail(f"trace {tid}: the instance start does not end when the wait does")
            phases = [s for s in ts if s["parentSpanId"] == st[0]["spanId"]]
            names = sorted(s["name"] for s in phases)
            if "spawn" not in names:
                fail(f"trace {tid}: the instance start has no spawn phase ({names})")
            if sum(dur(s) for s in phases) > dur(st[0]):
                fail(f"trace {tid}: the start's phases add up to more than the start")
            if "template_start" in names:
                t = [s for s in phases if s["name"] == "template_start"][0]
                kids = sorted(s["name"] for s in ts if s["parentSpanId"] == t["spanId"])
                if kids != ["plan_open", "prepare"]:
                    fail(f"trace {tid}: template_start has children {kids}")
    print(len(spans))


def main():
    if sys.argv[1] == "receiver":
        receiver(sys.argv[2], sys.argv[3], len(sys.argv) > 4 and sys.argv[4] == "hang")
    elif sys.argv[1] == "spans":
        check_spans(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "freeport":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
        s.close()


main()
