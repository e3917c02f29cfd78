#!/bin/sh
# Cold starts of `rouse serve` (templates and scale to zero), next to the
# least a container-based platform pays per cold start: ONNX Runtime's
# session creation plus first run (onnxruntime-node, ../shared/peer/ort).
#
# For each model (default mlp, squeezenet1_1 and resnet18 from
# ../shared/models; missing ones are skipped) one daemon serves three
# functions of the same model, 1 instance at most each, which differ only in
# their scaling settings, so that every request takes a known path:
#   warm      idle_timeout_ms long: its one instance stays up between tries;
#   template  idle_timeout_ms = IDLE_MS: the instance stops between tries, the
#             template stays (template_ttl_ms long);
#   zero      idle_timeout_ms = template_ttl_ms = IDLE_MS: nothing is left
#             between tries, so each request starts a template (forked by
#             serve's zygote, or exec'd without one; plan from the plan
#             cache, in the page cache; from the second try on, its kernels
#             from the zygote's oneDNN cache), which forks an instance that
#             runs.
# A try sends one request to each (warm, template, zero), then waits until
# GET /v1/functions/{name} lists no instance of `template` and nothing of
# `zero` and those processes are gone from /proc, and until the template
# of `template` has its warm spare connected to serve again (at most 5 s;
# tries that found none are counted). TRIES tries; the response
# header `Rouse-Start` must name the expected path (other tries are counted
# and dropped). Each request is one curl process on a new connection (no
# keep-alive in any case), binary tensor body made from
# test_data_set_0/input_0.pb; client latency is curl's time_total.
# Server side: the `Server-Timing` phases (queue, start, infer) of each
# response, and the phases of each cold start from GET /v1/functions/{name}.
#
# Instance starts per second: a function whose template is up and which has
# no instance gets BURST concurrent requests (one curl --parallel process,
# scaling.max = BURST); serve's debug log says when each instance was started
# (the request for it decided) and became ready (its READY arrived). Rate =
# instances started in the burst / (last ready - first start). ROUNDS
# bursts, the median rate is reported. Not every request needs an instance of
# its own (an instance ready early may serve a queued one), so the count is
# what serve actually started.
#
# First inference in page faults and CPU time (FAULT_TRIES tries, default
# 5; 0 skips), measures the machine's load does not change much: a
# function whose instance stops IDLE_FAULT_MS (2000) after its last request
# and whose template stays, and one whose template goes too. For each try,
# from template: the warm spare's pid (GET /v1/functions/{name} "spares"),
# its /proc/PID/stat minor and major faults and /proc/PID/schedstat CPU
# time before the request handed to it, after it, and after a second
# request to the same, now warm, instance (and a third after IDLE_FAULT_MS / 2
# idle: a warm instance whose caches went cold, as the spare's did in the
# IDLE_FAULT_MS or more it waited); from
# zero: the new instance's
# totals after its first request (its whole life: fork, start and first
# inference), and again after a second request. Medians per case.
#
# Memory per instance (MEM_MODEL, default resnet18): a function with
# scaling.max = k gets k concurrent requests until k instances are up
# (k = 1, 4, 8); then /proc/PID/smaps_rollup of each instance and of the
# template: USS = Private_Clean + Private_Dirty, and PSS.
#
# Per precision (PRECISION, e.g. "fp32 bf16 int8"; then only this is
# measured): the same model deployed once per precision with
# "precision": P (int8 with "calibration": the model's test_data_set_*
# inputs stacked into one .npy per input, uploaded as blobs), twice: a
# `zero` function as above, TRIES requests from zero (client latency and
# serve's cold-start phases), and a function whose template stays, whose
# template process is measured once its instance has gone (RSS, PSS, USS
# from /proc/PID/smaps_rollup); and the size of the plan serve compiled
# (data/plans/<model sha256>[-<precision>...].plan).
#
# Prints Markdown tables and the issue's targets next to the numbers. A
# benchmark, not a test: the clients, serve, templates and instances share
# the machine's cores.
#
#   bench/coldstart.sh [MODEL...]
#
# Environment: ROUSE (default build/rouse), SHARED (default ../shared beside
# the source tree), TRIES (50), IDLE_MS (50), BURST (32), ROUNDS (5),
# PEER_TRIES (10), FAULT_TRIES (5), IDLE_FAULT_MS (2000), MEM_MODEL (resnet18; empty skips), PEER_DIR (writable
# copy of the ORT peer, default build/peer-ort; `npm install` runs there
# once), WEIGHT_PAGES (serve --weight-pages: auto, hugetlb, thp or 4k;
# default serve's own, auto), ISOLATION (serve --isolation: sandbox or
# process; default serve's own choice), PRECISION (empty: the fp32 cases
# above; a list of precisions: the per-precision cases only). Needs curl
# (7.84 or later), node and npm.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
tries=${TRIES:-50}
idle_ms=${IDLE_MS:-50}
burst=${BURST:-32}
rounds=${ROUNDS:-5}
peer_tries=${PEER_TRIES:-10}
fault_tries=${FAULT_TRIES:-5}
idle_fault_ms=${IDLE_FAULT_MS:-2000}
mem_model=${MEM_MODEL-resnet18}
peer=${PEER_DIR:-$root/build/peer-ort}
precs=${PRECISION:-}
[ $# -gt 0 ] || set -- mlp squeezenet1_1 resnet18

die() { echo "coldstart: $*" >&2; exit 1; }
say() { echo "coldstart: $*" >&2; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
command -v curl >/dev/null 2>&1 || die "curl is not installed"
command -v node >/dev/null 2>&1 || die "node is not installed"

. "$root/bench/ort_peer.sh"
ort_peer_install "$shared" "$peer"
NODE_PATH=$peer/node_modules
export NODE_PATH

tmp=$(mktemp -d)
rouse_pid=""
stop_all() {
    if [ -n "$rouse_pid" ]; then
        kill "$rouse_pid" 2>/dev/null || true
        wait "$rouse_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# --- numbers -------------------------------------------------------------------

# stats: reads numbers, prints "n p50 p99" (nearest rank) or "0 - -".
stats() {
    sort -n | awk '{ v[NR] = $1 }
        END {
            if (NR == 0) { print "0 - -"; exit }
            i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++; if (i50 < 1) i50 = 1
            i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
            print NR, v[i50], v[i99]
        }'
}
median() { stats | cut -d' ' -f2; }
p99() { stats | cut -d' ' -f3; }
# col FILE N: column N of FILE.
col() { awk -v c="$2" '{ print $c }' "$1"; }
f2() { awk -v a="$1" 'BEGIN { if (a == "-" || a == "") print "-"; else printf "%.2f", a }'; }
f1() { awk -v a="$1" 'BEGIN { if (a == "-" || a == "") print "-"; else printf "%.1f", a }'; }
mb() { awk -v a="$1" 'BEGIN { if (a == "-" || a == "") print "-"; else printf "%.1f", a / 1024 }'; }
sub2() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.2f", a - b }'; }

# --- serve ---------------------------------------------------------------------

cores=$(nproc)
cap=$((burst + 16))
say "starting rouse serve (--max-instances $cap)"
"$rouse" serve --port 0 --data "$tmp/data" --max-instances "$cap" --log-level debug \
    ${WEIGHT_PAGES:+--weight-pages "$WEIGHT_PAGES"} ${ISOLATION:+--isolation "$ISOLATION"} \
    >"$tmp/serve.out" 2>"$tmp/serve.log" &
rouse_pid=$!
i=0
addr=""
while [ "$i" -lt 300 ] && [ -z "$addr" ]; do
    addr=$(sed -n '1s/^listening on //p' "$tmp/serve.out")
    [ -n "$addr" ] && break
    kill -0 "$rouse_pid" 2>/dev/null || die "rouse serve did not start: $(cat "$tmp/serve.log")"
    sleep 0.1
    i=$((i + 1))
done
[ -n "$addr" ] || die "rouse serve did not print its address"
base=http://$addr
weight_pages=$(curl -s "$base/v2" | sed -n 's/.*"weight_pages":"\([a-z0-9]*\)".*/\1/p')
isolation=$(curl -s "$base/v2" | sed -n 's/.*"isolation":"\([a-z]*\)".*/\1/p')

# deploy NAME DIGEST SCALING_JSON_MEMBERS [CONFIG_JSON_MEMBERS]
deploy() {
    code=$(curl -s -o "$tmp/put" -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
        --data "{\"model\":\"$2\",\"scaling\":{$3}${4:+,$4}}" "$base/v1/functions/$1") || code=000
    [ "$code" = 200 ] || [ "$code" = 201 ] || die "deploy $1 answered $code: $(cat "$tmp/put")"
}
undeploy() { curl -s -o /dev/null -X DELETE "$base/v1/functions/$1" || true; }
fn_get() { curl -s "$base/v1/functions/$1"; }
# section BODY KEY: the inside of the JSON array "KEY":[...] (no nested arrays).
section() { printf '%s' "$1" | sed -n "s/.*\"$2\":\[\([^]]*\)\].*/\1/p"; }
pids_of() { printf '%s' "$1" | grep -o '"pid":[0-9]*' | cut -d: -f2; }

# infer NAME OUT_HDR: one request on a new connection; prints "code seconds".
infer() {
    curl -s -o "$tmp/resp" -D "$2" -w '%{http_code} %{time_total}' -H 'Expect:' \
        -H 'Content-Type: application/octet-stream' -H "Inference-Header-Content-Length: $hlen" \
        --data-binary "@$body" "$base/v2/models/$1/infer" || echo "000 0"
}
# header FILE NAME: a response header's value.
header() { tr -d '\r' <"$1" | sed -n "s/^$2: //Ip" | head -n 1; }
# timing FILE PHASE: a Server-Timing duration (ms).
timing() { header "$1" Server-Timing | sed -n "s/.*$2;dur=\([0-9.]*\).*/\1/p"; }

# wait_gone NAME TEMPLATES_TOO: until NAME lists no instances (and no
# templates), and every process it listed meanwhile has left /proc.
wait_gone() {
    seen=""
    n=0
    while [ "$n" -lt 2000 ]; do
        b=$(fn_get "$1")
        inst=$(section "$b" instances)
        tmpl=""
        [ "$2" = 1 ] && tmpl=$(section "$b" templates)
        seen="$seen $(pids_of "$inst") $(pids_of "$tmpl")"
        if [ -z "$inst" ] && [ -z "$tmpl" ]; then
            alive=""
            for p in $seen; do [ -d "/proc/$p" ] && alive=1; done
            [ -z "$alive" ] && return 0
        fi
        sleep 0.01
        n=$((n + 1))
    done
    die "$1 did not scale down within 20 s: $b"
}

# wait_template NAME: until NAME's template is ready and no instance is left.
wait_template() {
    n=0
    while [ "$n" -lt 2000 ]; do
        b=$(fn_get "$1")
        if [ -z "$(section "$b" instances)" ] && section "$b" templates | grep -q '"ready"'; then
            return 0
        fi
        sleep 0.01
        n=$((n + 1))
    done
    die "$1 did not reach 'template only' within 20 s: $b"
}

# wait_spare NAME: until NAME's template has its warm spare connected to
# serve ("spares": "connected": true), at most 5 s; false if it has not.
wait_spare() {
    n=0
    while [ "$n" -lt 500 ]; do
        section "$(fn_get "$1")" spares | grep -q '"connected":true' && return 0
        sleep 0.01
        n=$((n + 1))
    done
    return 1
}

# newest_cold NAME KIND: the newest cold start of that kind as
# "template plan_open prepare spawn fork first_infer" (ms).
newest_cold() {
    section "$(fn_get "$1")" cold_starts | sed 's/},{/}\n{/g' | grep "\"start\":\"$2\"" | head -n 1 |
        sed -n 's/.*"template_ms":\([0-9.]*\),"plan_open_ms":\([0-9.]*\),"prepare_ms":\([0-9.]*\),"spawn_ms":\([0-9.]*\),"fork_ms":\([0-9.]*\),"first_infer_ms":\([0-9.]*\).*/\1 \2 \3 \4 \5 \6/p'
}

# smaps PID: "uss_kb pss_kb rss_kb" of a process.
smaps() {
    awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Private_Clean:/ { c = $2 }
         /^Private_Dirty:/ { d = $2 } END { print c + d, p, r }' "/proc/$1/smaps_rollup"
}

# costs PID: "minor_faults major_faults cpu_ns" of a process so far (- when gone).
costs() {
    if [ -r "/proc/$1/stat" ] && [ -r "/proc/$1/schedstat" ]; then
        # Fields after the command's closing parenthesis (the name may hold spaces).
        f=$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f8,10)
        echo "$f $(cut -d' ' -f1 "/proc/$1/schedstat")"
    else
        echo "- - -"
    fi
}
# cost_delta BEFORE AFTER: "minor major cpu_ms" spent between two costs, or nothing.
cost_delta() {
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ")
        if (x[1] == "-" || y[1] == "-") exit
        printf "%d %d %.3f\n", y[1] - x[1], y[2] - x[2], (y[3] - x[3]) / 1e6 }'
}

# fault_cases: the first-inference costs of $model (see the top).
fault_cases() {
    deploy "$fn-ftmpl" "$digest" "\"max\":1,\"idle_timeout_ms\":$idle_fault_ms,\"template_ttl_ms\":600000"
    deploy "$fn-fzero" "$digest" "\"max\":1,\"idle_timeout_ms\":$idle_fault_ms,\"template_ttl_ms\":$idle_fault_ms"
    for k in ftmpl fzero; do
        r=$(infer "$fn-$k" "$tmp/hdr")
        [ "${r%% *}" = 200 ] || die "$fn-$k answered ${r%% *}: $(head -c 300 "$tmp/resp")"
        : >"$tmp/$k.first"
        : >"$tmp/$k.warm"
        : >"$tmp/$k.idle"
    done
    t=0
    while [ "$t" -lt "$fault_tries" ]; do
        t=$((t + 1))
        say "$model faults try $t/$fault_tries"
        wait_gone "$fn-ftmpl" 0
        n=0
        sp=""
        while [ "$n" -lt 2000 ] && [ -z "$sp" ]; do
            sp=$(pids_of "$(section "$(fn_get "$fn-ftmpl")" spares)" | head -n 1)
            [ -n "$sp" ] || sleep 0.01
            n=$((n + 1))
        done
        if [ -n "$sp" ]; then
            c0=$(costs "$sp")
            r=$(infer "$fn-ftmpl" "$tmp/hdr")
            c1=$(costs "$sp")
            if [ "${r%% *}" = 200 ] && [ "$(header "$tmp/hdr" Rouse-Start)" = template ]; then
                r=$(infer "$fn-ftmpl" "$tmp/hdr")
                c2=$(costs "$sp")
                if [ "$(header "$tmp/hdr" Rouse-Start)" = warm ]; then
                    cost_delta "$c0" "$c1" >>"$tmp/ftmpl.first"
                    cost_delta "$c1" "$c2" >>"$tmp/ftmpl.warm"
                    # The same instance after idling (the spare waited twice as
                    # long or more): its caches gone cold too.
                    sleep "$(awk -v m="$idle_fault_ms" 'BEGIN { printf "%.3f", m / 2000 }')"
                    r=$(infer "$fn-ftmpl" "$tmp/hdr")
                    c3=$(costs "$sp")
                    [ "$(header "$tmp/hdr" Rouse-Start)" = warm ] && cost_delta "$c2" "$c3" >>"$tmp/ftmpl.idle"
                fi
            fi
        fi
        wait_gone "$fn-fzero" 1
        r=$(infer "$fn-fzero" "$tmp/hdr")
        if [ "${r%% *}" = 200 ] && [ "$(header "$tmp/hdr" Rouse-Start)" = zero ]; then
            ip=$(pids_of "$(section "$(fn_get "$fn-fzero")" instances)" | head -n 1)
            c1=$(costs "${ip:-0}")
            r=$(infer "$fn-fzero" "$tmp/hdr")
            c2=$(costs "${ip:-0}")
            if [ -n "$ip" ] && [ "$(header "$tmp/hdr" Rouse-Start)" = warm ]; then
                cost_delta "0 0 0" "$c1" >>"$tmp/fzero.first"
                cost_delta "$c1" "$c2" >>"$tmp/fzero.warm"
            fi
        fi
    done
    for k in ftmpl fzero; do
        case $k in ftmpl) name="from template (the spare)" ;; fzero) name="from zero (whole life)" ;; esac
        f=$tmp/$k.first
        w=$tmp/$k.warm
        fmin=$(col "$f" 1 | median) fcpu=$(col "$f" 3 | median)
        wmin=$(col "$w" 1 | median) wcpu=$(col "$w" 3 | median)
        fault_rows="$fault_rows
| $model | $name | $(wc -l <"$f") | $fmin | $(col "$f" 2 | median) | $(f2 "$fcpu") | $wmin | $(col "$w" 2 | median) | $(f2 "$wcpu") | $(awk -v a="$fmin" -v b="$wmin" 'BEGIN { if (a == "-" || b == "-") print "-"; else print a - b }') | $(sub2 "$fcpu" "$wcpu") | $(col "$tmp/$k.idle" 1 | median) | $(f2 "$(col "$tmp/$k.idle" 3 | median)") |"
    done
    undeploy "$fn-ftmpl"
    undeploy "$fn-fzero"
}

# upload FILE: the blob's digest.
upload() {
    curl -s -X POST --data-binary "@$1" "$base/v1/blobs" |
        sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p'
}

# precision_cases: the per-precision rows of $model (see the top).
precision_cases() {
    long=600000
    hex=${digest#sha256:}
    for prec in $precs; do
        conf="\"precision\":\"$prec\""
        if [ "$prec" = int8 ]; then
            members=""
            for pb in "$dir"/test_data_set_0/input_*.pb; do
                f=$(basename "$pb" .pb)
                name=$(node "$root/bench/pb_to_npy.js" "$tmp/$model/$f.npy" "$dir"/test_data_set_*/"$f.pb") ||
                    die "cannot make calibration samples of $model"
                d=$(upload "$tmp/$model/$f.npy")
                [ -n "$d" ] || die "upload of $model's calibration samples failed"
                members="$members${members:+,}\"$name\":\"$d\""
            done
            conf="$conf,\"calibration\":{$members}"
        fi
        say "$model at $prec"
        deploy "$fn-$prec-zero" "$digest" "\"max\":1,\"idle_timeout_ms\":$idle_ms,\"template_ttl_ms\":$idle_ms" "$conf"
        deploy "$fn-$prec-tmpl" "$digest" "\"max\":1,\"idle_timeout_ms\":$idle_ms,\"template_ttl_ms\":$long" "$conf"
        for k in zero tmpl; do
            r=$(infer "$fn-$prec-$k" "$tmp/hdr")
            [ "${r%% *}" = 200 ] || die "$fn-$prec-$k answered ${r%% *}: $(head -c 300 "$tmp/resp")"
        done
        wait_gone "$fn-$prec-zero" 1
        wait_gone "$fn-$prec-tmpl" 0
        tp=$(pids_of "$(section "$(fn_get "$fn-$prec-tmpl")" templates)")
        [ -n "$tp" ] || die "$fn-$prec-tmpl has no template"
        set -- $(smaps "$tp")
        t_uss=$1 t_pss=$2 t_rss=$3
        case $prec in
        fp32) plan=$tmp/data/plans/$hex.plan ;;
        *) plan=$(ls "$tmp/data/plans/$hex-$prec"*.plan 2>/dev/null | head -n 1) ;;
        esac
        size="-"
        [ -n "$plan" ] && [ -f "$plan" ] && size=$(stat -c %s "$plan" | awk '{ printf "%.1f", $1 / 1048576 }')
        : >"$tmp/p.lat"
        : >"$tmp/p.cold"
        wrong=0
        t=0
        while [ "$t" -lt "$tries" ]; do
            t=$((t + 1))
            r=$(infer "$fn-$prec-zero" "$tmp/hdr")
            [ "${r%% *}" = 200 ] || die "$fn-$prec-zero answered ${r%% *}: $(head -c 300 "$tmp/resp")"
            if [ "$(header "$tmp/hdr" Rouse-Start)" = zero ]; then
                echo "${r#* }" | awk '{ print $1 * 1000 }' >>"$tmp/p.lat"
                newest_cold "$fn-$prec-zero" zero >>"$tmp/p.cold"
            else
                wrong=$((wrong + 1))
            fi
            wait_gone "$fn-$prec-zero" 1
        done
        [ "$wrong" = 0 ] || notes="$notes
- $model $prec: $wrong tries took another path than from zero and were dropped."
        c=$tmp/p.cold
        set -- $(stats <"$tmp/p.lat")
        prec_rows="$prec_rows
| $model | $prec | $size | $(mb "$t_rss") | $(mb "$t_pss") | $(mb "$t_uss") | $1 | $(f2 "$2") | $(f2 "$3") | $(f2 "$(col "$c" 1 | median)") | $(f2 "$(col "$c" 2 | median)") | $(f2 "$(col "$c" 3 | median)") | $(f2 "$(col "$c" 4 | median)") | $(f2 "$(col "$c" 6 | median)") |"
        undeploy "$fn-$prec-zero"
        undeploy "$fn-$prec-tmpl"
    done
}

# ms_of_day LOGLINE: the log line's UTC time of day in ms.
ms_of_day() {
    printf '%s' "$1" | sed -n 's/^[0-9-]*T\([0-9]*\):\([0-9]*\):\([0-9]*\)\.\([0-9]*\)Z.*/\1 \2 \3 \4/p' |
        awk '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }'
}

lat_rows=""
phase_rows=""
prec_rows=""
peer_rows=""
fault_rows=""
rate_rows=""
mem_rows=""
notes=""
r18_tmpl_minus_warm="-"
r18_zero_minus_warm="-"
best_rate="-"
uss_extra="-"

for model in "$@"; do
    dir=$shared/models/$model
    if [ ! -f "$dir/model.onnx" ] || [ ! -f "$dir/test_data_set_0/input_0.pb" ]; then
        say "skipping $model: no model.onnx or test_data_set_0/input_0.pb in $dir"
        notes="$notes
- $model skipped: not in $shared/models."
        continue
    fi
    mkdir -p "$tmp/$model"
    node "$root/bench/gateway_bodies.js" "$tmp/$model" "$dir/test_data_set_0/input_0.pb" ||
        die "cannot make a request body for $model"
    body=$tmp/$model/body.bin
    hlen=$(cat "$tmp/$model/body.bin.hlen")
    digest=$(curl -s -X POST --data-binary "@$dir/model.onnx" "$base/v1/blobs" |
        sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p')
    [ -n "$digest" ] || die "upload of $model failed"
    fn=$(printf '%s' "$model" | tr 'A-Z.' 'a-z_')
    if [ -n "$precs" ]; then
        precision_cases
        continue
    fi
    long=600000
    deploy "$fn-warm" "$digest" "\"max\":1,\"idle_timeout_ms\":$long,\"template_ttl_ms\":$long"
    deploy "$fn-tmpl" "$digest" "\"max\":1,\"idle_timeout_ms\":$idle_ms,\"template_ttl_ms\":$long"
    deploy "$fn-zero" "$digest" "\"max\":1,\"idle_timeout_ms\":$idle_ms,\"template_ttl_ms\":$idle_ms"

    # Untimed: starts the warm instance and the template, and fills the plan cache.
    for k in warm tmpl zero; do
        r=$(infer "$fn-$k" "$tmp/hdr")
        [ "${r%% *}" = 200 ] || die "$fn-$k answered ${r%% *}: $(head -c 300 "$tmp/resp")"
    done
    wait_gone "$fn-tmpl" 0
    wait_gone "$fn-zero" 1
    nospare=0
    wait_spare "$fn-tmpl" || nospare=$((nospare + 1))

    for k in warm tmpl zero; do : >"$tmp/$k.lat"; : >"$tmp/$k.cold"; done
    wrong=0
    t=0
    while [ "$t" -lt "$tries" ]; do
        t=$((t + 1))
        [ $((t % 10)) = 1 ] && say "$model try $t/$tries"
        for k in warm tmpl zero; do
            case $k in warm) want=warm ;; tmpl) want=template ;; zero) want=zero ;; esac
            r=$(infer "$fn-$k" "$tmp/hdr")
            [ "${r%% *}" = 200 ] || die "$fn-$k answered ${r%% *}: $(head -c 300 "$tmp/resp")"
            got=$(header "$tmp/hdr" Rouse-Start)
            if [ "$got" != "$want" ]; then
                wrong=$((wrong + 1))
                continue
            fi
            echo "${r#* } $(timing "$tmp/hdr" queue) $(timing "$tmp/hdr" start) $(timing "$tmp/hdr" infer)" |
                awk '{ print $1 * 1000, $2, $3, $4 }' >>"$tmp/$k.lat"
            [ "$k" = warm ] || newest_cold "$fn-$k" "$want" >>"$tmp/$k.cold"
        done
        wait_gone "$fn-tmpl" 0
        wait_gone "$fn-zero" 1
        [ "$t" -lt "$tries" ] && { wait_spare "$fn-tmpl" || nospare=$((nospare + 1)); }
    done
    [ "$wrong" = 0 ] || notes="$notes
- $model: $wrong tries took another path than forced (Rouse-Start) and were dropped."
    [ "$nospare" = 0 ] || notes="$notes
- $model: before $nospare tries the template's spare was not connected to serve within 5 s."

    warm_infer=$(col "$tmp/warm.lat" 4 | median)
    for k in warm tmpl zero; do
        case $k in warm) name=warm ;; tmpl) name="from template" ;; zero) name="from zero" ;; esac
        set -- $(col "$tmp/$k.lat" 1 | stats)
        lat_rows="$lat_rows
| $model | $name | $1 | $(f2 "$2") | $(f2 "$3") | $(f2 "$(col "$tmp/$k.lat" 2 | median)") | $(f2 "$(col "$tmp/$k.lat" 3 | median)") | $(f2 "$(col "$tmp/$k.lat" 4 | median)") |"
        [ "$k" = warm ] && continue
        c=$tmp/$k.cold
        tm="-" po="-" pr="-"
        if [ "$k" = zero ]; then
            tm=$(f2 "$(col "$c" 1 | median)"); po=$(f2 "$(col "$c" 2 | median)"); pr=$(f2 "$(col "$c" 3 | median)")
        fi
        phase_rows="$phase_rows
| $model | $name | $tm | $po | $pr | $(f2 "$(col "$c" 4 | median)") | $(f2 "$(col "$c" 5 | median)") | $(f2 "$(col "$c" 6 | median)") | $(f2 "$warm_infer") |"
    done
    warm_p50=$(col "$tmp/warm.lat" 1 | median)
    tmpl_p50=$(col "$tmp/tmpl.lat" 1 | median)
    zero_p50=$(col "$tmp/zero.lat" 1 | median)
    serial=$(col "$tmp/tmpl.cold" 4 | median)
    if [ "$model" = resnet18 ]; then
        r18_tmpl_minus_warm=$(sub2 "$tmpl_p50" "$warm_p50")
        r18_zero_minus_warm=$(sub2 "$zero_p50" "$warm_p50")
    fi
    for k in warm tmpl zero; do undeploy "$fn-$k"; done
    [ "$fault_tries" -gt 0 ] && fault_cases

    # Peer: ONNX Runtime, a fresh process each time.
    : >"$tmp/ort"
    t=0
    while [ "$t" -lt "$peer_tries" ]; do
        t=$((t + 1))
        rc=0
        node "$peer/ort_bench.js" "$dir" --threads 1 --warm 1 --json >"$tmp/ort.json" 2>"$tmp/ort.err" || rc=$?
        [ "$rc" -le 1 ] || die "ort_bench.js failed: $(cat "$tmp/ort.err")"
        node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results[0];
                 console.log(j.create_ms, j.first_run_ms, j.create_ms + j.first_run_ms)' "$tmp/ort.json" >>"$tmp/ort"
    done
    ort=$(col "$tmp/ort" 3 | median)
    peer_rows="$peer_rows
| $model | $(f2 "$(col "$tmp/ort" 1 | median)") | $(f2 "$(col "$tmp/ort" 2 | median)") | $(f2 "$ort") | $(f2 "$zero_p50") | $(f2 "$tmpl_p50") | $(awk -v a="$ort" -v b="$zero_p50" 'BEGIN { printf "%.1fx", a / b }') |"

    # Instance starts per second: bursts against a function at "template only".
    deploy "$fn-burst" "$digest" "\"max\":$burst,\"idle_timeout_ms\":1000,\"template_ttl_ms\":$long"
    r=$(infer "$fn-burst" "$tmp/hdr")
    [ "${r%% *}" = 200 ] || die "$fn-burst answered ${r%% *}"
    : >"$tmp/rates"
    round=0
    while [ "$round" -lt "$rounds" ]; do
        round=$((round + 1))
        say "$model burst $round/$rounds"
        wait_template "$fn-burst"
        from=$(wc -l <"$tmp/serve.log")
        set --
        i=0
        while [ "$i" -lt "$burst" ]; do
            set -- "$@" -o /dev/null "$base/v2/models/$fn-burst/infer"
            i=$((i + 1))
        done
        curl -s -Z --parallel-immediate --parallel-max "$burst" -w '%{http_code}\n' -H 'Expect:' \
            -H 'Content-Type: application/octet-stream' -H "Inference-Header-Content-Length: $hlen" \
            --data-binary "@$body" "$@" >"$tmp/burst" 2>/dev/null || true
        bad=$(grep -vc '^200$' "$tmp/burst" || true)
        [ "$bad" = 0 ] || die "$bad of $burst burst requests to $fn-burst failed: $(sort "$tmp/burst" | uniq -c)"
        # Instances can be ready a moment after the last answer: wait for the log.
        sleep 0.2
        tail -n +"$((from + 1))" "$tmp/serve.log" | grep "function $fn-burst v[0-9]*: instance [0-9]* ready in" |
            while IFS= read -r line; do
                echo "$(ms_of_day "$line") $(printf '%s' "$line" | sed -n 's/.* ready in \([0-9.]*\) ms.*/\1/p')"
            done >"$tmp/ready"
        awk '{ r = $1; s = $1 - $2; if (NR == 1 || s < lo) lo = s; if (NR == 1 || r > hi) hi = r }
             END { w = hi - lo; if (w < 1) w = 1; print NR, w, NR * 1000 / w }' "$tmp/ready" >>"$tmp/rates"
    done
    undeploy "$fn-burst"
    rate=$(col "$tmp/rates" 3 | median)
    rate_rows="$rate_rows
| $model | $burst | $(col "$tmp/rates" 1 | median) | $(f1 "$(col "$tmp/rates" 2 | median)") | $(awk -v r="$rate" 'BEGIN { printf "%.0f", r }') | $(f2 "$serial") | $(awk -v s="$serial" 'BEGIN { if (s > 0) printf "%.0f", 1000 / s; else print "-" }') |"
    best_rate=$(awk -v a="$best_rate" -v b="$rate" 'BEGIN { print (a == "-" || b + 0 > a + 0) ? b : a }')

    # Memory per instance at 1, 4 and 8 instances.
    [ "$model" = "$mem_model" ] || continue
    pss1=""
    for k in 1 4 8; do
        say "$model memory at $k instances"
        deploy "$fn-mem$k" "$digest" "\"max\":$k,\"idle_timeout_ms\":$long,\"template_ttl_ms\":$long"
        set --
        i=0
        while [ "$i" -lt "$k" ]; do
            set -- "$@" -o /dev/null "$base/v2/models/$fn-mem$k/infer"
            i=$((i + 1))
        done
        # Bursts of k until k instances are up, then two more, so that each
        # has served (k requests on k idle instances go one to each).
        n=0
        got=0
        extra=0
        while [ "$n" -lt 30 ] && [ "$extra" -lt 2 ]; do
            curl -s -Z --parallel-immediate --parallel-max "$k" -H 'Expect:' \
                -H 'Content-Type: application/octet-stream' -H "Inference-Header-Content-Length: $hlen" \
                --data-binary "@$body" "$@" >/dev/null 2>&1 || true
            b=$(fn_get "$fn-mem$k")
            got=$(section "$b" instances | grep -o '"state":"idle"' | wc -l)
            [ "$got" -lt "$k" ] || extra=$((extra + 1))
            n=$((n + 1))
        done
        [ "$got" -eq "$k" ] || die "$fn-mem$k reached $got instances, not $k"
        : >"$tmp/mem"
        for p in $(pids_of "$(section "$b" instances)"); do smaps "$p" >>"$tmp/mem"; done
        tp=$(pids_of "$(section "$b" templates)")
        set -- $(smaps "$tp")
        t_uss=$1 t_pss=$2
        total_pss=$(awk -v t="$t_pss" '{ s += $2 } END { print s + t }' "$tmp/mem")
        [ "$k" = 1 ] && pss1=$total_pss
        d_pss="-"
        if [ "$k" != 1 ]; then
            d_pss=$(awk -v a="$total_pss" -v b="$pss1" -v k="$k" 'BEGIN { printf "%.1f", (a - b) / (k - 1) / 1024 }')
        fi
        mem_rows="$mem_rows
| $model | $k | $(mb "$(col "$tmp/mem" 1 | median)") | $(mb "$(col "$tmp/mem" 1 | sort -n | head -n 1)") | $(mb "$(col "$tmp/mem" 1 | sort -n | tail -n 1)") | $(mb "$(col "$tmp/mem" 2 | median)") | $(mb "$t_uss") | $(mb "$t_pss") | $(mb "$total_pss") | $d_pss |"
        [ "$k" = 8 ] && uss_extra=$(mb "$(col "$tmp/mem" 1 | sort -n | tail -n 1)")
        undeploy "$fn-mem$k"
    done
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
met() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
    if (a == "-" || a == "") { print "not measured"; exit }
    ok = (op == "<=") ? (a + 0 <= b + 0) : (a + 0 >= b + 0); print ok ? "met" : "missed" }'; }

echo "Cold starts of rouse serve on $cores cores (shared with other work; load average at the end: $load)."
echo "Weights in ${weight_pages:-?} pages, isolation ${isolation:-?} (GET /v2)."
if [ -n "$precs" ]; then
    echo
    echo "Per precision: plan = the plan file serve compiled (MiB); template = its process with no"
    echo "instance left (/proc/PID/smaps_rollup, MiB); from zero = $tries requests to a function"
    echo "with nothing left between tries (client latency, curl time_total, ms) and serve's"
    echo "phases of those cold starts (medians, ms; template includes plan open and prepare)."
    echo
    echo "| model | precision | plan MiB | template RSS | template PSS | template USS | n | from zero p50 | p99 | template | plan open | prepare | spawn | first infer |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|$prec_rows"
    [ -z "$notes" ] || printf '%s\n' "$notes"
    exit 0
fi
echo "$tries tries per case, interleaved; one request per curl process on a new connection; IDLE_MS=$idle_ms."
echo
echo "First-request latency (ms; client = curl time_total; server = Server-Timing medians)"
echo
echo "| model | case | n | client p50 | client p99 | queue | start | infer |"
echo "|---|---|---|---|---|---|---|---|$lat_rows"
echo
echo "p99 is the nearest rank: with 50 tries, the slowest try."
echo
echo "Cold-start phases as serve records them (medians, ms): template = from starting the"
echo "template (a fork by serve's zygote) until it is ready (plan open and prepare"
echo "included); spawn = from asking the"
echo "template to the instance's READY (fork included); first infer = the new instance's"
echo "first inference, against a warm instance's."
echo
echo "| model | case | template | plan open | prepare | spawn | fork | first infer | warm infer |"
echo "|---|---|---|---|---|---|---|---|---|$phase_rows"
echo
if [ -n "$fault_rows" ]; then
    echo "First inference against a warm one in page faults and CPU time (medians of"
    echo "$fault_tries tries; /proc/PID/stat and /proc/PID/schedstat of the instance; the load"
    echo "changes CPU time somewhat, not the counts). From template: the spare, from just before"
    echo "the request handed to it to its reply (the hand-off included); from zero: the"
    echo "instance's whole life up to its first reply (fork and start included). warm: the"
    echo "same instance's next request, sent right after; idle warm (from template): its next"
    echo "after IDLE_FAULT_MS / 2 idle (the spare waited IDLE_FAULT_MS or more): caches cold too."
    echo
    echo "| model | case | n | first: minor faults | major | CPU ms | warm: minor faults | major | CPU ms | extra faults | extra CPU ms | idle warm: faults | CPU ms |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|$fault_rows"
    echo
fi
echo "Peer: ONNX Runtime (onnxruntime-node, 1 thread) session creation + first run, a fresh"
echo "process each time, median of $peer_tries; against rouse's whole first request (client p50)."
echo
echo "| model | ORT create | ORT first run | ORT total | rouse from zero | rouse from template | ORT / rouse zero |"
echo "|---|---|---|---|---|---|---|$peer_rows"
echo
echo "Instance starts per second: $burst concurrent requests against a function whose template"
echo "is up and which has no instance (scaling.max = $burst); instances = those serve started for"
echo "the burst; window = from the first instance's start (its request decided it) to the"
echo "last one's READY, from serve's log (ms resolution); rate = instances / window; median of"
echo "$rounds bursts. Serial: one spawn at a time (the template tries above), 1000 / spawn p50."
echo "With a slow model the burst's first inferences share the cores with the later starts,"
echo "so its window measures the machine's load more than the spawn path."
echo
echo "| model | burst | instances | window (ms) | starts/s | serial spawn p50 (ms) | serial starts/s |"
echo "|---|---|---|---|---|---|---|$rate_rows"
if [ -n "$mem_rows" ]; then
    echo
    echo "Memory (MiB) after each instance served requests: USS = Private_Clean + Private_Dirty,"
    echo "PSS, from /proc/PID/smaps_rollup; per extra instance = (total at k - total at 1) / (k - 1),"
    echo "totals over the template and its instances. At 1 instance the weights' page-cache pages"
    echo "are mapped by that instance alone and so count in its USS; from 2 on they are shared."
    echo
    echo "| model | instances | USS per instance p50 | USS min | USS max | PSS per instance p50 | template USS | template PSS | total PSS | PSS per extra |"
    echo "|---|---|---|---|---|---|---|---|---|---|$mem_rows"
fi
echo
echo "| target (issue) | measured | |"
echo "|---|---|---|"
echo "| resnet18 from template - warm, p50 <= 0.5 ms | $r18_tmpl_minus_warm ms | $(met "$r18_tmpl_minus_warm" "<=" 0.5) |"
echo "| resnet18 from zero - warm, p50 <= 3 ms | $r18_zero_minus_warm ms | $(met "$r18_zero_minus_warm" "<=" 3) |"
echo "| USS per extra ${mem_model:-resnet18} instance <= 5 MiB (largest instance USS at 8) | $uss_extra MiB | $(met "$uss_extra" "<=" 5) |"
echo "| instance starts per second >= 2,000 (best model) | $(awk -v r="$best_rate" 'BEGIN { if (r == "-") print "-"; else printf "%.0f", r }') | $(met "$best_rate" ">=" 2000) |"
[ -z "$notes" ] || printf '%s\n' "$notes"
