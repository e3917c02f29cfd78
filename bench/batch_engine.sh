#!/bin/sh
# What batching can gain in the engine alone: per row, how much faster a
# run of B rows is than B runs of one. For each model (its dynamic-batch
# variant from scripts/batch_variant.py --dynbatch, test sets tiled to each
# size), rouse run --repeat and ONNX Runtime (ort_bench.js --warm), 1
# thread, at batch sizes 1, 2, 4, 8 and 32, back to back and ROUNDS times
# alternating so that noise on a shared machine hits both; the fastest run
# of the rounds is kept (the least noisy figure on a shared machine), and
# the median next to it. Prints ms per row, the gain over batch 1 (batch 1's
# ms per row / batch B's), rouse's multiply-adds per second next to one
# core's fp32 FMA peak (bench/fp32_peak.c), and rouse / ORT. The served
# throughput of dynamic batching (bench/batching.sh) cannot gain more than
# the engine's gain at the batch sizes it runs, except for the per-request
# work of serve and the instance that a batch shares. A benchmark, not a
# test.
#
#   bench/batch_engine.sh [MODEL...]     default: bert_tiny mlp
#
# Environment: ROUSE (build/rouse), SHARED (../shared), BATCHES
# ("1 2 4 8 32"), RUNS (200), ROUNDS (3), ORT ("1": 0 skips ONNX Runtime),
# PEER_DIR (writable copy of the ORT peer, build/peer-ort), CC (cc).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
batches=${BATCHES:-1 2 4 8 32}
runs=${RUNS:-200}
rounds=${ROUNDS:-3}
ort=${ORT:-1}
peer=${PEER_DIR:-$root/build/peer-ort}
cc=${CC:-cc}
[ $# -gt 0 ] || set -- bert_tiny mlp

die() { echo "batch_engine: $*" >&2; exit 1; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
[ -d "$shared/models" ] || die "no models at $shared/models"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

if grep -q avx512f /proc/cpuinfo; then isa="-mavx512f"; else isa="-mavx2 -mfma"; fi
# shellcheck disable=SC2086
"$cc" -O2 $isa "$root/bench/fp32_peak.c" -o "$tmp/fp32_peak" || die "cannot build fp32_peak.c"
# The peak is measured once per round, the highest kept: a neighbour's load
# only ever lowers it.
peak() { "$tmp/fp32_peak" | sed -n 's/^fp32_peak_gflops \([0-9.]*\).*/\1/p' >>"$tmp/peaks"; }
: >"$tmp/peaks"
[ "$ort" = 1 ] && { . "$root/bench/ort_peer.sh"; ort_peer_install "$shared" "$peer"; }

rows=$tmp/rows
: >"$rows"
list=$(echo "$batches" | tr ' ' ,)
for m in "$@"; do
    python3 "$root/scripts/batch_variant.py" "$shared/models/$m" "$tmp/$m" --dynbatch \
        --batches "$list" >&2 || die "cannot write the $m variant"
    macs=$("$rouse" inspect "$tmp/$m/model.onnx" --json |
        python3 -c 'import json, sys; print(json.load(sys.stdin).get("macs", 0))')
    for r in $(seq "$rounds"); do
        peak
        for b in $batches; do
            set=$tmp/$m/b$b/test_data_set_0
            flags=""
            for f in "$set"/input_*.pb; do flags="$flags --input $f"; done
            # shellcheck disable=SC2086
            line=$("$rouse" run "$tmp/$m/model.onnx" $flags --repeat "$runs" 2>&1 |
                sed -n 's/^latency_ms min=\([0-9.]*\) median=\([0-9.]*\).*/\1 \2/p')
            [ -n "$line" ] || die "rouse run failed on $m at batch $b"
            echo "$m rouse $b $r $line $macs" >>"$rows"
            [ "$ort" = 1 ] || continue
            if node "$peer/ort_bench.js" "$tmp/$m/model.onnx" "$set" --threads 1 --warm "$runs" \
                --json >"$tmp/ort.json" 2>"$tmp/ort.err"; then
                python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(sys.argv[2], "ort", sys.argv[3], sys.argv[4], r["warm_min_ms"], r["warm_median_ms"], sys.argv[5])' \
                    "$tmp/ort.json" "$m" "$b" "$r" "$macs" >>"$rows"
            else
                echo "batch_engine: ONNX Runtime failed on $m at batch $b: $(head -c 300 "$tmp/ort.err")" >&2
            fi
        done
    done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
gflops=$(sort -n "$tmp/peaks" | tail -1)
python3 - "$rows" "$gflops" "$rounds" "$runs" "$load_before" "$load_after" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
gflops, rounds, runs, lb, la = float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
best = {}
for m, eng, b, r, mn, med, macs in rows:
    k = (m, eng, int(b))
    mn, med = float(mn), float(med)
    o = best.get(k)
    best[k] = (min(mn, o[0]) if o else mn, min(med, o[1]) if o else med, int(macs))
print("Engine alone, 1 thread: fastest run (and best median) of %s rounds of %s runs per batch size;"
      " one core's fp32 FMA peak %.1f GFLOP/s (%.1f G multiply-adds/s); load average before %s, after %s"
      % (rounds, runs, gflops, gflops / 2, lb, la))
print()
print("| model | batch | rouse ms/run | rouse ms/row | gain over batch 1 | rouse GMAC/s | of peak "
      "| ORT ms/row | ORT gain over batch 1 | rouse / ORT per row |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for (m, eng, b) in sorted(k for k in best if k[1] == "rouse"):
    mn, med, macs = best[(m, "rouse", b)]
    row = mn / b
    one = best[(m, "rouse", 1)][0] if (m, "rouse", 1) in best else None
    gain = "%.2f" % (one / row) if one else ""
    rate = macs * b / (mn / 1000) / 1e9 if macs else 0
    o = best.get((m, "ort", b))
    o1 = best.get((m, "ort", 1))
    ort_row = "%.4f" % (o[0] / b) if o else ""
    ort_gain = "%.2f" % (o1[0] / (o[0] / b)) if o and o1 else ""
    ratio = "%.2f" % (row / (o[0] / b)) if o else ""
    print("| %s | %d | %.3f (median %.3f) | %.4f | %s | %.1f | %.0f %% | %s | %s | %s |"
          % (m, b, mn, med, row, gain, rate, 100 * rate / (gflops / 2), ort_row, ort_gain, ratio))
PY
