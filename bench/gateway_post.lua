-- wrk script of the gateway benchmark: POSTs one request body over
-- keep-alive connections and prints one machine-readable summary line.
--   BODY_FILE  the body (read in binary mode)
--   HLEN       when set, sent as Inference-Header-Content-Length (binary
--              data extension); the Content-Type follows from it
-- Summary: "RESULT requests=N duration_us=N rps=X p50_us=N p99_us=N errors=N"
-- where errors counts non-2xx/3xx answers, socket errors and timeouts.
local f = assert(io.open(assert(os.getenv("BODY_FILE"), "BODY_FILE is not set"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
local hlen = os.getenv("HLEN")
if hlen and hlen ~= "" then
   wrk.headers["Content-Type"] = "application/octet-stream"
   wrk.headers["Inference-Header-Content-Length"] = hlen
else
   wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.status + e.timeout
   io.write(string.format("RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d errors=%d\n",
                          summary.requests, summary.duration,
                          summary.requests / (summary.duration / 1e6),
                          latency:percentile(50), latency:percentile(99), errors))
end
