#!/bin/sh
# Sandboxed instances against a real `rouse serve` (the rouse-fault test
# binary, whose instances try hostile things when a request's OIP id asks;
# tests/support/fault_hook.c): an instance that opens a socket, a file of
# the data directory, another function's blob or /etc/shadow, forks 200
# times or makes forbidden system calls fails with EPERM/EACCES/ENOENT,
# one that starts 200 threads is stopped by its task limit (EAGAIN);
# signals another instance fails (EPERM); one that allocates past its
# memory_mb is killed by its memory limit and
# its request gets 500 "instance exceeded its 128 MB memory limit",
# counted in rouse_instance_oom_total; serve, another function and the
# next normal request are unaffected. Also: the instance's uid, filters
# and namespaces as /proc shows them, its own cpu group and its shares,
# GET /v2's isolation report, a pid namespace per tenant (two tenants'
# instances apart, one tenant's functions together, pid 1 a reaper, an
# instance that keeps serving when its template is killed), fallbacks
# (no pids hierarchy; serve not root) said once in the log, in GET /v2
# and in `rouse status`, and --isolation process.
#
# Skipped (77) with one line when this machine cannot sandbox (serve falls
# back to process and says why).
#
# Environment: ROUSE (the rouse-fault binary), DIGITS (examples/digits).
set -u
fail=0
check() { # check DESCRIPTION CONDITION...
    desc=$1; shift
    if "$@"; then echo "ok: $desc"; else echo "FAIL: $desc"; fail=1; fi
}
tmp=$(mktemp -d)
spid=""
cleanup() {
    [ -n "$spid" ] && kill -9 "$spid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
wait_for() { # wait_for SECONDS COMMAND...
    n=$(($1 * 10)); shift
    while ! "$@" 2>/dev/null; do
        n=$((n - 1)); [ $n -gt 0 ] || return 1
        sleep 0.1
    done
}
for tool in curl python3; do
    command -v $tool >/dev/null 2>&1 || { echo "FAIL: $tool is not installed (scripts/setup)"; exit 1; }
done

# start_serve NAME ARGS...: sets spid and url. $wrap (words) runs before
# the binary, which it must exec.
wrap=""
start_serve() {
    name=$1; shift
    $wrap "$ROUSE" serve --port 0 --data "$tmp/$name.data" --log-level info "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    spid=$!
    wait_for 10 grep -q '^listening on ' "$tmp/$name.out" ||
        { echo "FAIL: serve did not start"; cat "$tmp/$name.err"; exit 1; }
    url="http://$(sed -n 's/^listening on //p' "$tmp/$name.out")"
}
# json FILE EXPR: a value of the JSON in FILE (python expression over j).
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
# infer FN ID: POST digit-7 with OIP id ID; the status in $tmp/status, the body in $tmp/body.
infer() {
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); r['id']=sys.argv[2]; print(json.dumps(r))" \
        "$DIGITS/samples/digit-7.json" "$2" >"$tmp/req.json"
    curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$tmp/req.json" "$url/v2/models/$1/infer" >"$tmp/status"
}
# result ID: the hook's result line for ID.
result() { grep "^result $1 " "$tmp/fault/executions" | tail -1; }

# Another function's blob: a file uploaded for someone else, whose path
# is known before serve starts (the hook reads it from the environment).
head -c 4096 /dev/urandom >"$tmp/secret.bin"
digest=$(sha256sum "$tmp/secret.bin" | cut -c1-64)
mkdir -p "$tmp/fault"
export ROUSE_FAULT_DIR="$tmp/fault"
export ROUSE_FAULT_DATA="$tmp/s.data/rouse.db"
export ROUSE_FAULT_BLOB="$tmp/s.data/blobs/sha256/$(echo "$digest" | cut -c1-2)/$(echo "$digest" | cut -c3-)"
export ROUSE_FAULT_MEMORY_MB=400
start_serve s
curl -s "$url/v2" >"$tmp/v2.json"
iso=$(json "$tmp/v2.json" "j['rouse']['isolation']")
if [ "$iso" != "sandbox" ]; then
    echo "skipped: this machine cannot sandbox instances: $(json "$tmp/v2.json" "'; '.join(j['rouse']['fallbacks'])")"
    exit 77
fi
check "startup log says isolation: sandbox once" test "$(grep -c 'isolation: sandbox' "$tmp/s.err")" -eq 1
check "GET /v2 lists fallbacks" test "$(json "$tmp/v2.json" "type(j['rouse']['fallbacks']).__name__")" = list

curl -s -o /dev/null -H 'Content-Type: application/octet-stream' --data-binary @"$tmp/secret.bin" "$url/v1/blobs"
check "the other blob is in the store" test -f "$ROUSE_FAULT_BLOB"
check "the data file exists for the hook to try" test -f "$ROUSE_FAULT_DATA"

# The victim's instance must outlive the test however slow the machine
# (its survival is checked at the end): no idle stop.
"$ROUSE" deploy victim "$DIGITS/model.onnx" --idle-timeout 3600000 --server "$url" >/dev/null || fail=1
"$ROUSE" deploy hostile "$DIGITS/model.onnx" --memory 128 --server "$url" >/dev/null || fail=1
infer victim plain-1
check "a normal request works" test "$(cat "$tmp/status")" = 200

# The instance as the kernel sees it.
curl -s "$url/v1/functions/victim" >"$tmp/fn.json"
ipid=$(json "$tmp/fn.json" "j['instances'][0]['pid']")
st="/proc/$ipid/status"
check "instance runs as an unprivileged uid" test "$(awk '/^Uid:/ {print $2}' "$st")" -ge 2000000000
check "instance has no capability" test "$(awk '/^CapEff:/ {print $2}' "$st")" = 0000000000000000
check "instance has no_new_privs" test "$(awk '/^NoNewPrivs:/ {print $2}' "$st")" = 1
check "instance has its filters (zygote's, template's, its own)" test "$(awk '/^Seccomp_filters:/ {print $2}' "$st")" -ge 2
check "instance has its own network namespace" test "$(readlink /proc/$ipid/ns/net)" != "$(readlink /proc/$spid/ns/net)"
check "instance has its own mount namespace" test "$(readlink /proc/$ipid/ns/mnt)" != "$(readlink /proc/$spid/ns/mnt)"
check "instance sees an empty root" test -z "$(ls -A /proc/$ipid/root/ 2>&1)"
check "instance is in a memory cgroup of its own" grep -q "memory:.*/rouse-$spid/$ipid\$" /proc/$ipid/cgroup
# cg_dir PID CONTROLLER: the directory of PID's group of CONTROLLER (v1),
# from the mount table and /proc/PID/cgroup.
cg_dir() {
    mnt=$(awk -v c="$2" '$9 == "cgroup" { n = split($NF, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) print $5 }' /proc/self/mountinfo | head -1)
    grp=$(awk -F: -v c="$2" '{ n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) print $3 }' "/proc/$1/cgroup")
    echo "$mnt$grp"
}
# CPU weight per instance (cgroup v1's cpu controller, where mounted): a
# group of its own, holding it alone, with cpu.shares = its memory_mb.
has_v1_cpu=$(awk '$9 == "cgroup"' /proc/self/mountinfo | grep -Ec '[ ,]cpu(,|$)')
if [ "$has_v1_cpu" -gt 0 ]; then
    check "instance is in a cpu cgroup of its own" grep -q "cpu[^:]*:.*/rouse-$spid/$ipid\$" /proc/$ipid/cgroup
    check "its cpu group holds it alone" test "$(cat "$(cg_dir "$ipid" cpu)/cgroup.procs")" = "$ipid"
    check "its cpu.shares is its memory_mb (512)" test "$(cat "$(cg_dir "$ipid" cpu)/cpu.shares")" = 512
fi

zpid=$(pgrep -P "$spid" -f '__zygote --fd' | head -1)
check "the zygote has no_new_privs" test "$(awk '/^NoNewPrivs:/ {print $2}' /proc/$zpid/status)" = 1
check "the zygote has its deny-list" test "$(awk '/^Seccomp:/ {print $2}' /proc/$zpid/status)" = 2
"$ROUSE" status victim --server "$url" >"$tmp/status.txt"
check "rouse status shows the isolation" grep -q '^isolation: sandbox$' "$tmp/status.txt"

infer hostile plain-0
curl -s "$url/v1/functions/hostile" >"$tmp/fnh.json"
hpid=$(json "$tmp/fnh.json" "j['instances'][0]['pid']")
if [ "$has_v1_cpu" -gt 0 ]; then
    check "another function's instance has a cpu group of its own" grep -q "cpu[^:]*:.*/rouse-$spid/$hpid\$" /proc/$hpid/cgroup
    check "with cpu.shares its memory_mb (128)" test "$(cat "$(cg_dir "$hpid" cpu)/cpu.shares")" = 128
fi

# What a hostile model would try.
for what in socket data blob shadow fork threads syscall ids; do
    infer hostile "escape-$what"
    check "escape-$what: the request is still answered" test "$(cat "$tmp/status")" = 200
done
r=$(result escape-socket)
check "socket: inet and unix refused ($r)" test "$r" = "result escape-socket inet=EPERM unix=EPERM"
r=$(result escape-data)
check "the data directory cannot be opened ($r)" sh -c "echo '$r' | grep -Eq 'open=(ENOENT|EACCES|EPERM)$'"
r=$(result escape-blob)
check "another function's blob cannot be opened ($r)" sh -c "echo '$r' | grep -Eq 'open=(ENOENT|EACCES|EPERM)$'"
r=$(result escape-shadow)
check "/etc/shadow cannot be opened ($r)" sh -c "echo '$r' | grep -Eq 'open=(ENOENT|EACCES|EPERM)$'"
r=$(result escape-fork)
check "fork refused, nothing forked ($r)" test "$r" = "result escape-fork fork=EPERM forked=0"
# Threads are allowed (inference runs them) but counted: the task limit
# (pids.max of its own pids group) stops a thread bomb.
r=$(result escape-threads)
made=$(echo "$r" | sed -n 's/.* made=\([0-9]*\)$/\1/p')
check "threads: the task limit stopped the 200 ($r)" sh -c "echo '$r' | grep -q ' threads=EAGAIN made='"
if grep -Eq 'pids[^:]*:.*/rouse-' "/proc/$hpid/cgroup"; then
    pmax=$(cat "$(cg_dir "$hpid" pids)/pids.max")
    check "threads: no more than pids.max ($pmax) tasks (made $made)" test "${made:-999}" -lt "$pmax"
fi
r=$(result escape-syscall)
check "forbidden system calls refused ($r)" test "$r" = "result escape-syscall ptrace=EPERM mount=EPERM unshare=EPERM setuid=EPERM execve=EPERM"
r=$(result escape-ids)
check "the hook ran as the tenant's uid ($r)" sh -c "echo '$r' | grep -Eq 'uid=2[0-9]{9} gid=2[0-9]{9}$'"

# Signals: to another instance of the same tenant (the same uid) refused,
# to itself allowed (raise, abort).
infer hostile "escape-kill-$ipid"
r=$(result "escape-kill-$ipid")
check "signals to another instance refused, to itself allowed ($r)" \
    test "$r" = "result escape-kill-$ipid kill=EPERM tgkill=EPERM self=ok"

# Past the memory limit: killed, the request told why, counted.
infer hostile escape-memory
check "memory: 500" test "$(cat "$tmp/status")" = 500
check "memory: the error names the limit ($(cat "$tmp/body"))" \
    grep -q '"instance exceeded its 128 MB memory limit"' "$tmp/body"
check "memory: the instance never survived the allocation" test -z "$(result escape-memory)"
curl -s "$url/metrics" >"$tmp/metrics"
check "memory: counted in rouse_instance_oom_total" grep -q '^rouse_instance_oom_total 1$' "$tmp/metrics"

# Nothing else was harmed.
check "serve is alive" kill -0 "$spid"
infer victim plain-2
check "the other function still answers" test "$(cat "$tmp/status")" = 200
infer hostile plain-3
check "the hostile function answers a normal request afterwards" test "$(cat "$tmp/status")" = 200
check "the other function's instance kept serving" kill -0 "$ipid"

kill -TERM "$spid"; wait "$spid" 2>/dev/null
left=$(find /sys/fs/cgroup -maxdepth 5 -type d -name "rouse-$spid" 2>/dev/null)
check "serve removed its control groups ($left)" test -z "$left"
spid=""

# A pid namespace per tenant: two tenants (--auth, a deploy key each),
# two functions of one of them.
start_serve t --auth
admin=$(cat "$tmp/t.data/bootstrap.key")
akey=$("$ROUSE" keys create --tenant acme --role deploy -q --server "$url" --key "$admin")
bkey=$("$ROUSE" keys create --tenant beta --role deploy -q --server "$url" --key "$admin")
"$ROUSE" deploy a1 "$DIGITS/model.onnx" --server "$url" --key "$akey" >/dev/null || fail=1
"$ROUSE" deploy a2 "$DIGITS/model.onnx" --server "$url" --key "$akey" >/dev/null || fail=1
"$ROUSE" deploy b1 "$DIGITS/model.onnx" --server "$url" --key "$bkey" >/dev/null || fail=1
# tinfer KEY FN: the status of an inference, its body in $tmp/body.
tinfer() {
    curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $1" \
        -H 'Content-Type: application/json' --data-binary @"$DIGITS/samples/digit-7.json" \
        "$url/v2/models/$2/infer"
}
# tpid KEY FN: the pid of the function's first instance.
tpid() {
    curl -s -H "Authorization: Bearer $1" "$url/v1/functions/$2" >"$tmp/tfn.json"
    json "$tmp/tfn.json" "j['instances'][0]['pid']"
}
check "tenant acme's first function answers" test "$(tinfer "$akey" a1)" = 200
check "tenant acme's second function answers" test "$(tinfer "$akey" a2)" = 200
check "tenant beta's function answers" test "$(tinfer "$bkey" b1)" = 200
a1=$(tpid "$akey" a1); a2=$(tpid "$akey" a2); b1=$(tpid "$bkey" b1)
nsa1=$(readlink "/proc/$a1/ns/pid"); nsa2=$(readlink "/proc/$a2/ns/pid")
nsb1=$(readlink "/proc/$b1/ns/pid"); nss=$(readlink "/proc/$spid/ns/pid")
check "an instance is not in serve's pid namespace ($nsa1, serve $nss)" test "$nsa1" != "$nss"
check "two tenants' instances are in different pid namespaces ($nsa1, $nsb1)" test "$nsa1" != "$nsb1"
check "two functions of one tenant share its pid namespace ($nsa1, $nsa2)" test "$nsa1" = "$nsa2"
check "serve is the instances' parent (it reaps them)" \
    test "$(awk '/^PPid:/ {print $2}' "/proc/$a1/status")" = "$spid"
# Its namespace's init is the tenant's reaper, not a template.
nspid=$(awk '/^NSpid:/ {print NF}' "/proc/$a1/status")
check "the instance has a pid of its own inside (NSpid has two levels)" test "$nspid" = 3
reaper=""
for p in $(pgrep -P "$spid"); do
    [ "$(readlink "/proc/$p/ns/pid_for_children" 2>/dev/null)" = "$nsa1" ] &&
        [ "$(awk '/^NSpid:/ {print $3}' "/proc/$p/status")" = 1 ] && reaper=$p
done
check "pid 1 of the tenant's namespace is a reaper ($(cat /proc/$reaper/comm 2>/dev/null))" \
    test "$(cat "/proc/$reaper/comm" 2>/dev/null)" = rouse-reaper
# The template of a1 dies: a1's instance keeps serving.
tpl=$(pgrep -P "$spid" -f '__template .*--name a1( |$)' | head -1)
check "a1's template runs outside the tenant's namespace" \
    test -n "$tpl" -a "$(readlink "/proc/$tpl/ns/pid" 2>/dev/null)" = "$nss"
kill -9 "$tpl"
wait_for 5 sh -c "! kill -0 $tpl"
check "a1 answers after its template was killed" test "$(tinfer "$akey" a1)" = 200
check "by the same instance" test "$(tpid "$akey" a1)" = "$a1"
check "which is still alive" kill -0 "$a1"
kill -TERM "$spid"; wait "$spid" 2>/dev/null
check "the reaper ends with serve" wait_for 5 sh -c "! kill -0 $reaper"
spid=""

# A feature missing: serve falls back, says so once in its log, in GET /v2
# and in `rouse status`, and its instances still run. fallback_check NAME
# ISOLATION TEXT: serve NAME (running) chose ISOLATION and lists a
# fallback containing TEXT.
fallback_check() {
    curl -s "$url/v2" >"$tmp/$1.v2"
    check "$1: GET /v2 says $2" test "$(json "$tmp/$1.v2" "j['rouse']['isolation']")" = "$2"
    check "$1: GET /v2 lists the fallback ($3)" \
        test "$(json "$tmp/$1.v2" "sum('$3' in f for f in j['rouse']['fallbacks'])")" = 1
    check "$1: said once in the log at start" test "$(grep -c "fallback: .*$3" "$tmp/$1.err")" = 1
    "$ROUSE" deploy fb "$DIGITS/model.onnx" --server "$url" >/dev/null || fail=1
    infer fb plain-fb
    check "$1: an instance answers" test "$(cat "$tmp/status")" = 200
    "$ROUSE" status fb --server "$url" >"$tmp/$1.status"
    check "$1: rouse status says $2" grep -q "^isolation: $2\$" "$tmp/$1.status"
    check "$1: rouse status lists the fallback" grep -q "^  fallback: .*$3" "$tmp/$1.status"
    curl -s "$url/v1/functions/fb" >"$tmp/$1.fn"
    fbpid=$(json "$tmp/$1.fn" "j['instances'][0]['pid']")
}
stop_serve() { kill -TERM "$spid"; wait "$spid" 2>/dev/null; spid=""; }
# No pids controller: serve in a mount namespace of its own where that
# hierarchy is not mounted (the kernel still has it; serve cannot reach it).
if command -v unshare >/dev/null 2>&1 && grep -q ' /sys/fs/cgroup/pids ' /proc/self/mountinfo; then
    printf '#!/bin/sh\numount /sys/fs/cgroup/pids || exit 1\nexec "$@"\n' >"$tmp/nopids"
    wrap="unshare -m --propagation private sh $tmp/nopids"
    start_serve nopids
    wrap=""
    fallback_check nopids sandbox "no per-instance task limit"
    check "nopids: the instance still has a memory group of its own" \
        grep -q "memory:.*/rouse-$spid/$fbpid\$" "/proc/$fbpid/cgroup"
    check "nopids: and no pids group of rouse" sh -c "! grep -q 'pids:.*/rouse-' /proc/$fbpid/cgroup"
    stop_serve
else
    echo "skipped: no unshare(1) or no pids hierarchy at /sys/fs/cgroup/pids"
fi
# Not root: no tenant's ids to hand out, so no sandbox at all.
if command -v setpriv >/dev/null 2>&1; then
    chmod 711 "$tmp"
    mkdir -m 700 "$tmp/nonroot.data"
    chown 65534:65534 "$tmp/nonroot.data"
    # serve execs its own binary for its children: a copy the other user
    # can reach (the build tree may sit under a private directory).
    cp "$ROUSE" "$tmp/rouse-nonroot"
    chmod 755 "$tmp/rouse-nonroot"
    rouse_built=$ROUSE
    ROUSE=$tmp/rouse-nonroot
    wrap="setpriv --reuid 65534 --regid 65534 --clear-groups"
    start_serve nonroot
    wrap=""
    fallback_check nonroot process "serve does not run as root"
    check "nonroot: the instance runs as serve's uid" \
        test "$(awk '/^Uid:/ {print $2}' "/proc/$fbpid/status")" = 65534
    stop_serve
    ROUSE=$rouse_built
else
    echo "skipped: no setpriv(1)"
fi

# --isolation process: said so, and instances as before.
start_serve p --isolation process
curl -s "$url/v2" >"$tmp/v2p.json"
check "--isolation process: GET /v2 says process" test "$(json "$tmp/v2p.json" "j['rouse']['isolation']")" = process
check "--isolation process: logged" grep -q 'isolation: process' "$tmp/p.err"
kill -TERM "$spid"; wait "$spid" 2>/dev/null; spid=""
exit $fail
