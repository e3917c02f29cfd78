# Sourced by the benchmarks that run ONNX Runtime: prepares a writable copy
# of the read-only peer in ../shared/peer/ort and installs its packages once.
#
#   . "$root/bench/ort_peer.sh"
#   ort_peer_install "$shared" "$peer"    # needs node and npm; exits on failure

ort_peer_install() {
    _src=$1/peer/ort
    _dst=$2
    _me=$(basename "$0")
    [ -d "$_src" ] || { echo "$_me: $_src not found" >&2; exit 1; }
    command -v node >/dev/null 2>&1 || { echo "$_me: node is not installed" >&2; exit 1; }
    command -v npm >/dev/null 2>&1 || { echo "$_me: npm is not installed" >&2; exit 1; }
    mkdir -p "$_dst"
    # Refreshed when the originals change.
    for _f in package.json ort_bench.js .npmrc; do
        [ -f "$_src/$_f" ] || continue
        cmp -s "$_src/$_f" "$_dst/$_f" 2>/dev/null || cp "$_src/$_f" "$_dst/$_f"
    done
    if [ ! -d "$_dst/node_modules/onnxruntime-node" ]; then
        echo "$_me: npm install in $_dst (once)" >&2
        (cd "$_dst" && npm install --no-audit --no-fund >&2) || {
            echo "$_me: npm install failed in $_dst" >&2
            exit 1
        }
    fi
}
