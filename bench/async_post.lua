-- wrk script of the asynchronous benchmark (bench/async.sh): POSTs one
-- request body with Prefer: respond-async over keep-alive connections and
-- prints one summary line; anything but 202 counts as an error.
--   BODY_FILE  the body (JSON)
-- Summary: "RESULT requests=N duration_us=N rps=X p50_us=N p99_us=N errors=N"
local f = assert(io.open(assert(os.getenv("BODY_FILE"), "BODY_FILE is not set"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if os.getenv("ASYNC") == "1" then
   wrk.headers["Prefer"] = "respond-async"
end

local bad = 0
function response(status, headers, body)
   if os.getenv("ASYNC") == "1" and status ~= 202 then bad = bad + 1 end
end

function done(summary, latency, requests)
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.status + e.timeout
   io.write(string.format("RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d errors=%d\n",
                          summary.requests, summary.duration,
                          summary.requests / (summary.duration / 1e6),
                          latency:percentile(50), latency:percentile(99), errors))
end
