# Sourced by the benches that start one `rouse serve` and deploy functions
# on it (serve_syscalls.sh, batching.sh, async.sh). Needs from the caller
# rouse (the binary), tmp (a directory of its own) and die().
#
#   serve_start             starts `rouse serve` on a free port with its data
#                           in $tmp/data and waits until it listens; sets pid,
#                           port, url and exports ROUSE_SERVER
#   serve_cleanup           stops serve and removes $tmp (the EXIT trap)
#   serve_upload FILE       uploads FILE as a blob; prints its digest
#   serve_deploy NAME JSON  creates or updates function NAME (JSON: its body)
#   serve_batching MODE MAX_BATCH DELAY_US SLO_MS
#                           the function's `,"batching":{...}` for MODE off
#                           (empty), fixed (or null: fixed, for a model that
#                           computes nothing) or auto
#   serve_input_flags MODEL_FILE DATASET_DIR
#                           `rouse bench` flags giving each input of the
#                           model its test set's input_<i>.pb, in graph order

pid=""

serve_start() {
    "$rouse" serve --port 0 --data "$tmp/data" --log-level warn >"$tmp/serve.out" \
        2>"$tmp/serve.err" &
    pid=$!
    _i=0
    until grep -q '^listening on ' "$tmp/serve.out" 2>/dev/null; do
        _i=$((_i + 1))
        [ $_i -le 100 ] && kill -0 "$pid" 2>/dev/null ||
            die "serve did not start: $(cat "$tmp/serve.err")"
        sleep 0.1
    done
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/serve.out")
    url=http://127.0.0.1:$port
    export ROUSE_SERVER=$url
}

serve_cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}

serve_upload() {
    _d=$(curl -sf --data-binary @"$1" "$url/v1/blobs" | sed -n 's/.*"digest":"\([^"]*\)".*/\1/p')
    [ -n "$_d" ] || die "upload of $1 failed"
    echo "$_d"
}

serve_deploy() {
    curl -sf -X PUT -d "$2" "$url/v1/functions/$1" >/dev/null || die "deploy $1 failed"
}

serve_batching() {
    case "$1" in
        off) ;;
        fixed | null) printf ',"batching":{"mode":"fixed","max_batch":%s,"max_delay_us":%s}' "$2" "$3" ;;
        auto) printf ',"batching":{"mode":"auto","max_batch":%s,"max_delay_us":%s,"slo_ms":%s}' \
            "$2" "$3" "$4" ;;
        *) die "unknown mode $1" ;;
    esac
}

serve_input_flags() {
    "$rouse" inspect "$1" --json >"$tmp/inspect.json" 2>/dev/null || die "cannot inspect $1"
    python3 - "$tmp/inspect.json" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(" ".join("--input %s=%s/input_%d.pb" % (t["name"], sys.argv[2], i)
               for i, t in enumerate(r["inputs"])))
PY
}
