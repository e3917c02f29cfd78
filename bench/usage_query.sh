#!/bin/sh
# GET /v1/usage over a store of N usage records (default 1,000,000: ten
# functions over the last 24 h), and what it costs the event loop.
#
# The records are written straight into a fresh data directory's database
# with the sqlite3 shell (the schema is the one `rouse serve` creates; a
# record's id is its time key, arrival µs × 1024 plus a sequence), then
# serve is started on it and each query is timed with curl, three runs
# each, the best wall-clock time and the least CPU time serve spent shown. The loop's longest blocking iteration
# (loop_block_max_us in GET /v1/stats, reset before the queries) shows
# whether a query held the loop up: queries run on the usage query thread.
#
# usage: bench/usage_query.sh [ROUSE] [N]     (needs sqlite3 and curl)
set -eu
ROUSE=${1:-build/rouse}
N=${2:-1000000}
PORT=${PORT:-18477}
DIR=$(mktemp -d /tmp/rouse-usage-bench-XXXXXX)
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT

# A first start creates the schema.
"$ROUSE" serve --port "$PORT" --data "$DIR/data" --log-level warn >/dev/null &
PID=$!
sleep 1
kill $PID
wait $PID || true

NOW_US=$(($(date +%s) * 1000000))
echo "writing $N records..."
sqlite3 "$DIR/data/rouse.db" <<EOF
PRAGMA journal_mode=WAL;
BEGIN;
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < $N - 1)
INSERT INTO usage_records(id, ts_us, request_id, function, version, tenant, start, queue_us,
  start_us, run_us, total_us, billed_ms, memory_mb, bytes_in, bytes_out, status, error,
  lat_bucket, trace_id)
SELECT ($NOW_US - 86400000000 + i * (86400000000 / $N)) * 1024 + i % 1024,
  $NOW_US - 86400000000 + i * (86400000000 / $N), printf('%016x', i), 'fn' || (i % 10),
  1 + (i % 3), '', CASE WHEN i % 500 = 0 THEN 3 ELSE 1 END, 20, 0, 150 + (i * 7919) % 4000,
  200 + (i * 7919) % 4000 + 30, (150 + (i * 7919) % 4000 + 999) / 1000, 512, 3500, 300,
  CASE WHEN i % 1000 = 0 THEN 500 ELSE 200 END, CASE WHEN i % 1000 = 0 THEN 6 ELSE 0 END,
  CAST(floor(log2(200 + (i * 7919) % 4000 + 30) * 8) AS INTEGER), ''
FROM c;
COMMIT;
EOF

"$ROUSE" serve --port "$PORT" --data "$DIR/data" --log-level warn >/dev/null &
PID=$!
sleep 1
URL=http://127.0.0.1:$PORT
curl -s -X POST "$URL/v1/stats/reset" >/dev/null

# serve's CPU time so far, in ms (utime + stime; 100 ticks a second).
cpu_ms() { awk '{print ($14 + $15) * 10}' /proc/$PID/stat; }

q() {
    best=
    best_cpu=
    for run in 1 2 3; do
        c0=$(cpu_ms)
        t=$(curl -s -o /dev/null -w '%{time_total}' "$URL/v1/usage?$1")
        c=$(($(cpu_ms) - c0))
        if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
        if [ -z "$best_cpu" ] || [ "$c" -lt "$best_cpu" ]; then best_cpu=$c; fi
    done
    printf '%-50s %8.3f s wall %6d ms CPU\n' "$1" "$best" "$best_cpu"
}
echo "query over $N records (best of 3)"
q "group_by=function"
q "group_by=function&compare_always_on=true"
q "function=fn3&group_by=version"
q "group_by=hour"
q "group_by=minute"
q "function=fn3&since=1h&group_by=minute"
curl -s "$URL/v1/stats" | tr ',' '\n' | grep -E 'loop_(stall|block)_max'
