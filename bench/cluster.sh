#!/bin/sh
# Several nodes on one machine (docs/scale-out.md): a throwaway PostgreSQL
# (initdb in a temporary directory, run as the `postgres` user when this
# runs as root) and `nats-server -js`, and rouse nodes on loopback ports
# sharing them (`serve --state --bus --node-name --cluster-key-file`). Each
# model (default mlp and resnet18 from ../shared/models; missing ones are
# skipped with a line) is deployed once, on n1, and reaches the others
# through the shared registry (its blob fetched from a peer).
#
# 1. Throughput of 1, 2 and 3 nodes: the nodes are started one by one; at
#    each count, CONC closed-loop clients (`rouse bench -c`, each sending
#    its next request when its reply came) spread evenly over the nodes
#    for DURATION: requests/s, p50 (the mean of the client groups', by
#    requests) and p99 (the worst group's), the share of calls forwarded,
#    and per request: the CPU of every serve process (user + system from
#    /proc/PID/stat; the instances, their children, are not in it), the
#    usage rows that reached PostgreSQL (counted there after the shipping
#    second), and PostgreSQL's and nats-server's CPU per 1,000 requests
#    (PostgreSQL's: the postmaster and its backends, from the run's start
#    to 2 s after its end, when every node has shipped its records).
#    Before the load, the same nodes idle for DURATION: what membership and
#    the registry poll cost nats-server (messages and bytes in, from its
#    monitoring port) and PostgreSQL per second. The nodes share the
#    machine's cores, so this is not a scaling curve: with 2 cores, more
#    nodes add work (HTTP between them, membership), not capacity.
# 2. Forwarding: a fourth node, gw (--max-instances 1, its one slot held by
#    function "hold" with scaling.min 1, which the first node by name keeps
#    of a spread min), can run nothing itself, so every inference sent to
#    it is forwarded (checked with its rouse_forwarded_total). In ROUNDS
#    rounds, local (clients on n1, which runs the call itself) and
#    forwarded (the same clients on gw) take turns: at 1 client, p50 and
#    p99 (the added latency of a forwarded call), and at FWD_CONC clients
#    (default MAX: no more than n1's instances, so that n1 has no reason
#    to forward; the share it did is printed), the
#    CPU per request of all serve processes together (the forwarded call
#    pays a second HTTP exchange on two nodes) and gw's own share, and the
#    usage rows per request. Medians of the rounds; serve CPU per request
#    moves far less with the machine's load than latency does. Every CPU
#    figure per request is less the idle rate of the same processes
#    (measured just before, for DURATION) over the run's wall time, so that
#    membership and polls do not weigh on slow models' few requests.
#
# Prints Markdown tables and ratios. A benchmark, not a test.
#
#   bench/cluster.sh                       mlp and resnet18, 1-3 nodes
#   DURATION=2s ROUNDS=1 bench/cluster.sh  a quick check that it works
#
# Environment: ROUSE (build/rouse), SHARED (../shared), MODELS ("mlp
# resnet18"), NODES ("1 2 3"), DURATION (10s, per run), CONC (6, clients
# in all; a multiple of the node counts spreads them evenly), ROUNDS (3),
# FWD_CONC (clients of the forwarding runs' CPU, MAX),
# MAX (scaling.max on each node, the cores), KEEP (1: keep the temporary
# directory with the servers' logs). Needs PostgreSQL (initdb, pg_ctl),
# nats-server, curl and python3.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
rouse=${ROUSE:-$root/build/rouse}
shared=${SHARED:-$root/../shared}
models=${MODELS:-mlp resnet18}
counts=${NODES:-1 2 3}
duration=${DURATION:-10s}
conc=${CONC:-6}
rounds=${ROUNDS:-3}
max=${MAX:-$(nproc)}
fconc=${FWD_CONC:-$max}
keep=${KEEP:-0}
secs=${duration%s}

die() { echo "cluster: $*" >&2; exit 1; }
say() { echo "cluster: $*" >&2; }
[ -x "$rouse" ] || die "no rouse binary at $rouse (run make first)"
case "$secs" in *[!0-9]* | "") die "DURATION must be whole seconds (10s, 2s): $duration" ;; esac
command -v curl >/dev/null 2>&1 || die "curl is not installed"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed"
nats=$(command -v nats-server || echo /usr/sbin/nats-server)
[ -x "$nats" ] || die "nats-server is not installed (Debian package nats-server)"
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$pgbin" ] && [ -x "$pgbin/initdb" ] || die "PostgreSQL is not installed (Debian package postgresql)"
as_pg=""
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root and there is no postgres user to run PostgreSQL as"
    as_pg="runuser -u postgres --"
fi

tmp=$(mktemp -d)
chmod 755 "$tmp" # PostgreSQL's user reaches its directory inside
pids=""
pg_started=0
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    [ "$pg_started" = 0 ] || $as_pg "$pgbin/pg_ctl" -D "$tmp/pg/data" -m immediate stop >/dev/null 2>&1 || true
    if [ "$keep" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# proc_ticks PID: user + system CPU ticks of a process (all its threads).
proc_ticks() { awk '{ sub(/^[^)]*\) /, ""); split($0, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
# pg_ticks: PostgreSQL's CPU ticks, the postmaster with the backends that
# ended (its children's times) and those that run.
pg_ticks() {
    pm=$(head -n 1 "$tmp/pg/data/postmaster.pid")
    {
        awk '{ sub(/^[^)]*\) /, ""); split($0, f, " "); print f[12] + f[13] + f[14] + f[15] }' "/proc/$pm/stat"
        for c in $(ps -o pid= --ppid "$pm"); do proc_ticks "$c" 2>/dev/null || true; done
    } | awk '{ s += $1 } END { print s + 0 }'
}
hz=$(getconf CLK_TCK)
sql() { psql -h 127.0.0.1 -p "$pg_port" -U rouse -d postgres -Atc "$1"; }

# --- PostgreSQL and NATS ------------------------------------------------------
say "starting PostgreSQL and nats-server -js"
mkdir -p "$tmp/pg"
[ -z "$as_pg" ] || chown postgres "$tmp/pg"
(cd / && $as_pg "$pgbin/initdb" -D "$tmp/pg/data" -U rouse --auth=trust -E UTF8 --no-sync) \
    >"$tmp/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$tmp/initdb.log")"
pg_port=$(free_port)
(cd / && $as_pg "$pgbin/pg_ctl" -D "$tmp/pg/data" -w -t 60 -l "$tmp/pg/log" \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $tmp/pg" start) >"$tmp/pg_ctl.log" 2>&1 ||
    die "PostgreSQL did not start: $(cat "$tmp/pg_ctl.log" "$tmp/pg/log" 2>/dev/null | tail -n 5)"
pg_started=1
state=postgres://rouse@127.0.0.1:$pg_port/postgres
nats_port=$(free_port)
mon_port=$(free_port)
"$nats" -js -a 127.0.0.1 -p "$nats_port" -m "$mon_port" -sd "$tmp/nats" >"$tmp/nats.log" 2>&1 &
nats_pid=$!
pids="$pids $nats_pid"
i=0
until curl -sf "http://127.0.0.1:$mon_port/varz" >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -le 100 ] && kill -0 "$nats_pid" 2>/dev/null || die "nats-server did not start: $(cat "$tmp/nats.log")"
    sleep 0.1
done
bus=nats://127.0.0.1:$nats_port
head -c 36 /dev/urandom | base64 | tr -d '\n/+=' >"$tmp/cluster.key"
chmod 600 "$tmp/cluster.key"

# --- nodes ---------------------------------------------------------------------
# start_node NAME [FLAGS...]: sets pid_NAME and url_NAME.
start_node() {
    n=$1
    shift
    "$rouse" serve --port 0 --data "$tmp/$n" --log-level warn --state "$state" --bus "$bus" \
        --node-name "$n" --cluster-key-file "$tmp/cluster.key" "$@" >"$tmp/$n.out" 2>"$tmp/$n.err" &
    p=$!
    pids="$pids $p"
    i=0
    until grep -q '^listening on ' "$tmp/$n.out" 2>/dev/null; do
        i=$((i + 1))
        [ $i -le 300 ] && kill -0 $p 2>/dev/null || die "node $n did not start: $(cat "$tmp/$n.err")"
        sleep 0.1
    done
    eval "pid_$n=$p"
    eval "url_$n=http://127.0.0.1:$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/$n.out")"
}
url_of() { eval "echo \$url_$1"; }
pid_of() { eval "echo \$pid_$1"; }

# wait_fresh URL N: until the node at URL hears N nodes, all fresh.
wait_fresh() {
    i=0
    while :; do
        k=$(curl -sf "$1/v1/cluster" | python3 -c '
import json, sys
n = json.load(sys.stdin)["nodes"]
print(len(n) if all(x["fresh"] for x in n) else -1)' 2>/dev/null || echo -1)
        [ "$k" = "$2" ] && return 0
        i=$((i + 1))
        [ $i -le 300 ] || die "$1 does not see $2 fresh nodes"
        sleep 0.1
    done
}

# cluster_ticks NODES...: the serve processes' CPU ticks summed.
cluster_ticks() { for n in "$@"; do proc_ticks "$(pid_of "$n")"; done | awk '{ s += $1 } END { print s + 0 }'; }
forwarded() { curl -sf "$(url_of "$1")/metrics" | awk '$1 == "rouse_forwarded_total" { print $2 + 0; f = 1 } END { if (!f) print 0 }'; }
forwarded_all() { for n in "$@"; do forwarded "$n"; done | awk '{ s += $1 } END { print s + 0 }'; }
nats_in() { curl -sf "http://127.0.0.1:$mon_port/varz" | python3 -c 'import json, sys; v = json.load(sys.stdin); print(v["in_msgs"], v["in_bytes"])'; }
# usage_rows: the usage rows in PostgreSQL, once every node shipped what it
# had (each ships at least once a second; two seconds of no change).
usage_rows() {
    last=-1 same=0
    while [ $same -lt 2 ]; do
        now=$(sql "SELECT count(*) FROM usage_calls")
        if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; fi
        last=$now
        sleep 1
    done
    echo "$last"
}

# deploy NAME MODEL_FILE SCALING_JSON: on n1, through the shared registry.
deploy() {
    digest=$(curl -sf --data-binary @"$2" "$(url_of n1)/v1/blobs" | sed -n 's/.*"digest":"\([^"]*\)".*/\1/p')
    [ -n "$digest" ] || die "upload of $2 failed"
    curl -sf -X PUT -d "{\"model\":\"$digest\",\"scaling\":$3}" "$(url_of n1)/v1/functions/$1" \
        >"$tmp/deploy.out" || die "deploy of $1 failed"
}

# input_flags MODEL: --input NAME=FILE for each of its inputs, from its
# test_data_set_0 (in graph order, from rouse inspect). Explicit inputs
# also spare rouse bench the model's metadata (GET /v2/models/NAME), which
# is answered where it lands, so not by a node that can run nothing.
input_flags() {
    "$rouse" inspect "$shared/models/$1/model.onnx" --json >"$tmp/inspect.json" 2>/dev/null ||
        die "cannot inspect $1"
    python3 - "$tmp/inspect.json" "$shared/models/$1/test_data_set_0" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(" ".join("--input %s=%s/input_%d.pb" % (t["name"], sys.argv[2], i)
               for i, t in enumerate(r["inputs"])))
PY
}
# bench_q FN NODE CLIENTS: an untimed run of 1 s (instances started).
bench_q() {
    # shellcheck disable=SC2046
    "$rouse" bench "$1" -c "$3" -d 1s -q --server "$(url_of "$2")" $(eval "echo \$flags_$1") \
        >/dev/null 2>&1 || true
}
# run_bench FN NODE CLIENTS OUT: one rouse bench for DURATION (JSON in OUT).
run_bench() {
    # shellcheck disable=SC2046
    "$rouse" bench "$1" -c "$3" -d "$duration" --json --server "$(url_of "$2")" \
        $(eval "echo \$flags_$1") >"$4" 2>"$4.err" || die "rouse bench $1 on $2 failed: $(cat "$4.err")"
}
# summary FILE...: requests rps p50 p99 errors over parallel client groups.
summary() {
    python3 - "$@" <<'PY'
import json, sys
js = [json.load(open(f)) for f in sys.argv[1:]]
n = sum(j["requests"] for j in js)
p50 = sum(j["latency_ms"]["p50"] * j["requests"] for j in js) / n if n else 0
print(n, "%.1f" % sum(j["requests_per_second"] for j in js), "%.3f" % p50,
      "%.3f" % max(j["latency_ms"]["p99"] for j in js), sum(j["errors"] for j in js))
PY
}
# net TICKS RATE WALL REQS K: (TICKS - RATE x WALL) x K / REQS: the
# ticks of a run less what the idle rate (ticks per second) spends in its
# wall time (membership, polls), per request.
net() {
    awk -v t="$1" -v r="$2" -v w="$3" -v n="$4" -v k="$5" \
        'BEGIN { if (n > 0) printf "%.1f", (t - r * w) * k / n; else print "n/a" }'
}
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.3f", b - a }'; }
per() { awk -v a="$1" -v b="$2" -v k="$3" 'BEGIN { if (b > 0) printf "%.1f", a * k / b; else print "n/a" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
tick_us=$(awk -v hz="$hz" 'BEGIN { print 1e6 / hz }')
tick_ms=$(awk -v hz="$hz" 'BEGIN { print 1e3 / hz }')

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start_node n1
present=""
for m in $models; do
    case "$m" in *[!A-Za-z0-9_]*) die "model names are letters, digits and _: $m" ;; esac
    f=$shared/models/$m/model.onnx
    if [ ! -f "$f" ] || [ ! -f "$shared/models/$m/test_data_set_0/input_0.pb" ]; then
        say "skipping $m: no $f or its test_data_set_0/input_0.pb"
        continue
    fi
    eval "flags_$m=\"$(input_flags "$m")\""
    deploy "$m" "$f" "{\"max\":$max,\"queue_depth\":1024,\"idle_timeout_ms\":600000}"
    present="$present $m"
done
[ -n "$present" ] || die "none of the models ($models) is in $shared/models"

# --- 1. throughput by node count -------------------------------------------------
rows=""
idle_rows=""
up="n1"
n_up=1
for count in $counts; do
    while [ "$n_up" -lt "$count" ]; do
        n_up=$((n_up + 1))
        say "starting node n$n_up"
        start_node "n$n_up"
        up="$up n$n_up"
    done
    wait_fresh "$(url_of n1)" "$count"
    # Idle: membership puts and registry polls only.
    say "$count node(s) idle for $duration"
    # shellcheck disable=SC2046
    set -- $(nats_in)
    m0=$1 b0=$2 nt0=$(proc_ticks "$nats_pid") pt0=$(pg_ticks) st0=$(cluster_ticks $up) w0=$(now_s)
    sleep "$secs"
    # shellcheck disable=SC2046
    set -- $(nats_in)
    w=$(elapsed "$w0")
    nt_idle=$(per $(($(proc_ticks "$nats_pid") - nt0)) "$w" 1)
    pt_idle=$(per $(($(pg_ticks) - pt0)) "$w" 1)
    st_idle=$(per $(($(cluster_ticks $up) - st0)) "$w" 1)
    idle_rows="$idle_rows
| $count | $(per $(($1 - m0)) "$w" 1) | $(per $(($2 - b0)) "$w" 1) | $(per "$nt_idle" 1 "$tick_ms") | $(per "$pt_idle" 1 "$tick_ms") | $(per "$st_idle" "$count" "$tick_ms") |"
    per_node=$((conc / count))
    [ "$per_node" -ge 1 ] || per_node=1
    for m in $present; do
        for n in $up; do # every node's instances started before the clock runs
            bench_q "$m" "$n" "$per_node"
        done
        rows0=$(usage_rows)
        say "$m: $count node(s), $((per_node * count)) clients, $duration"
        fw0=$(forwarded_all $up) st0=$(cluster_ticks $up) pt0=$(pg_ticks) nt0=$(proc_ticks "$nats_pid")
        w0=$(now_s)
        bpids=""
        files=""
        for n in $up; do
            run_bench "$m" "$n" "$per_node" "$tmp/b-$n.json" &
            bpids="$bpids $!"
            files="$files $tmp/b-$n.json"
        done
        for p in $bpids; do wait "$p" || die "a client group failed"; done
        st1=$(cluster_ticks $up) fw1=$(forwarded_all $up) w=$(elapsed "$w0")
        # PostgreSQL's CPU once the last records shipped (each node ships
        # at least once a second), before counting them (psql's own
        # connections cost PostgreSQL a backend each).
        sleep 2
        pt1=$(pg_ticks) nt1=$(proc_ticks "$nats_pid") w2=$(elapsed "$w0")
        rows1=$(usage_rows)
        # shellcheck disable=SC2086
        # shellcheck disable=SC2046
        set -- $(summary $files)
        reqs=$1 rps=$2 p50=$3 p99=$4 errs=$5
        [ "$count" != 1 ] || eval "base_$m=$rps"
        rows="$rows
| $m | $count | $((per_node * count)) | $(printf '%.0f' "$rps") | $(ratio "$rps" "$(eval "echo \${base_$m:-0}")") | $p50 | $p99 | $errs | $(per $((fw1 - fw0)) "$reqs" 100)% | $(net $((st1 - st0)) "$st_idle" "$w" "$reqs" "$tick_us") | $(ratio $((rows1 - rows0)) "$reqs") | $(net $((pt1 - pt0)) "$pt_idle" "$w2" "$reqs" "$tick_us") | $(net $((nt1 - nt0)) "$nt_idle" "$w2" "$reqs" "$tick_us") |"
    done
done

# --- 2. forwarding: local against forwarded ---------------------------------------
say "starting gw (--max-instances 1) and holding its slot"
start_node gw --max-instances 1
all="$up gw"
wait_fresh "$(url_of gw)" "$((n_up + 1))"
first=$(printf '%s\n' $all | sort | head -n 1)
[ "$first" = gw ] || die "gw is not the first node by name (holds no min share)"
hold_model=$shared/models/$(echo $present | cut -d' ' -f1)/model.onnx
deploy hold "$hold_model" '{"min":1,"idle_timeout_ms":600000}'
i=0
until [ "$(curl -sf "$(url_of gw)/v1/cluster" | python3 -c '
import json, sys
v = json.load(sys.stdin)
print([x for x in v["nodes"] if x["name"] == v["self"]][0]["slots_free"])')" = 0 ]; do
    i=$((i + 1))
    [ $i -le 300 ] || die "gw's slot is not held"
    sleep 0.1
done
# The idle rates of these nodes, subtracted from the runs' CPU below.
say "$n_up node(s) and gw idle for $duration"
st0=$(cluster_ticks $all) gt0=$(proc_ticks "$(pid_of gw)") w0=$(now_s)
sleep "$secs"
w=$(elapsed "$w0")
all_idle=$(per $(($(cluster_ticks $all) - st0)) "$w" 1)
gw_idle=$(per $(($(proc_ticks "$(pid_of gw)") - gt0)) "$w" 1)
fwd_rows=""
fwd_lines=""
for m in $present; do
    # Each node warm (the forwarded calls land on any).
    for n in $all; do bench_q "$m" "$n" "$fconc"; done
    l50="" l99="" f50="" f99="" lcpu="" fcpu="" gcpu="" lrows="" frows="" lrps="" frps="" lfw=""
    r=0
    while [ $r -lt "$rounds" ]; do
        r=$((r + 1))
        for mode in local forwarded; do
            if [ $mode = local ]; then at=n1; else at=gw; fi
            say "$m $mode (clients on $at), round $r of $rounds: 1 and $fconc clients, $duration each"
            g0=$(forwarded "$at")
            run_bench "$m" "$at" 1 "$tmp/low.json"
            # shellcheck disable=SC2046
            set -- $(summary "$tmp/low.json")
            low_reqs=$1 p50=$3 p99=$4
            rows0=$(usage_rows)
            st0=$(cluster_ticks $all) gt0=$(proc_ticks "$(pid_of gw)") w0=$(now_s)
            run_bench "$m" "$at" "$fconc" "$tmp/high.json"
            st1=$(cluster_ticks $all) gt1=$(proc_ticks "$(pid_of gw)") w=$(elapsed "$w0")
            rows1=$(usage_rows)
            g1=$(forwarded "$at")
            # shellcheck disable=SC2046
            set -- $(summary "$tmp/high.json")
            reqs=$1 rps=$2
            [ "$5" = 0 ] || say "$m $mode: $5 failed requests"
            cpu=$(net $((st1 - st0)) "$all_idle" "$w" "$reqs" "$tick_us")
            ur=$(ratio $((rows1 - rows0)) "$reqs")
            if [ $mode = local ]; then
                l50="$l50 $p50" l99="$l99 $p99" lcpu="$lcpu $cpu" lrows="$lrows $ur" lrps="$lrps $rps"
                lfw="$lfw $(per $((g1 - g0)) $((low_reqs + reqs)) 100)%"
            else
                sent=$((g1 - g0))
                [ "$sent" -ge $((low_reqs + reqs)) ] ||
                    say "$m: gw forwarded $sent of $((low_reqs + reqs)) calls (not all: ran some itself?)"
                f50="$f50 $p50" f99="$f99 $p99" fcpu="$fcpu $cpu" frows="$frows $ur" frps="$frps $rps"
                gcpu="$gcpu $(net $((gt1 - gt0)) "$gw_idle" "$w" "$reqs" "$tick_us")"
            fi
        done
    done
    # shellcheck disable=SC2086
    ml50=$(median $l50) ml99=$(median $l99) mf50=$(median $f50) mf99=$(median $f99)
    # shellcheck disable=SC2086
    mlc=$(median $lcpu) mfc=$(median $fcpu) mgc=$(median $gcpu)
    # shellcheck disable=SC2086
    fwd_rows="$fwd_rows
| $m | local (n1) | $ml50 | $ml99 | $(printf '%.0f' "$(median $lrps)") | $mlc | - | $(median $lrows) |
| $m | forwarded (gw) | $mf50 | $mf99 | $(printf '%.0f' "$(median $frps)") | $mfc | $mgc | $(median $frows) |"
    fwd_lines="$fwd_lines
- $m: a forwarded call adds $(awk -v a="$mf50" -v b="$ml50" 'BEGIN { printf "%.3f", a - b }') ms at p50 and $(awk -v a="$mf99" -v b="$ml99" 'BEGIN { printf "%.3f", a - b }') ms at p99 (1 client; forwarded/local p50 $(ratio "$mf50" "$ml50")x), and $(awk -v a="$mfc" -v b="$mlc" 'BEGIN { printf "%.1f", a - b }') µs of serve CPU ($(ratio "$mfc" "$mlc")x local; the forwarding node's share $mgc µs)
  per round, p50 local:$l50, forwarded:$f50; serve CPU µs/request local:$lcpu, forwarded:$fcpu; n1 forwarded of the local calls:$lfw"
done

echo "rouse nodes on one machine: PostgreSQL $("$pgbin/postgres" --version | awk '{ print $3 }'), $("$nats" --version), $(nproc) cores shared by every node, PostgreSQL, NATS and the clients"
echo "closed-loop clients (rouse bench -c), ${duration} per run; scaling.max $max per node; load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Idle (membership and registry polls), per second:"
echo
echo "| nodes | NATS msgs in/s | NATS bytes in/s | nats-server CPU ms/s | PostgreSQL CPU ms/s | serve CPU ms/s per node |"
echo "|---|---|---|---|---|---|$idle_rows"
echo
echo "Throughput by node count (p50: the client groups' mean by requests; p99: the worst group's; CPU per request: every serve process, user + system; CPU figures less the idle rates above over the run):"
echo
echo "| model | nodes | clients | req/s | vs 1 node | p50 ms | p99 ms | errors | forwarded | serve CPU µs/req | usage rows/req | PostgreSQL CPU ms/1000 req | nats-server CPU ms/1000 req |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|$rows"
echo
echo "Forwarding ($n_up node(s) and gw, which runs nothing itself; medians of $rounds rounds; latency at 1 client, req/s and CPU at $fconc clients, CPU of every serve process less their idle $(per "$all_idle" 1 "$tick_ms") ms/s, gw's less its $(per "$gw_idle" 1 "$tick_ms") ms/s):"
echo
echo "| model | path | p50 ms | p99 ms | req/s | serve CPU µs/req | gw's CPU µs/req | usage rows/req |"
echo "|---|---|---|---|---|---|---|---|$fwd_rows"
echo "$fwd_lines"
