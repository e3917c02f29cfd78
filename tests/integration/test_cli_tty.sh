#!/bin/sh
# The client on a real terminal (tmux): the upload progress bar of a deploy
# over 1 MB, tables cut to the terminal's width with a bold header, no
# colour with NO_COLOR, and the plain forms of both when not on a terminal;
# the progress bar of `rouse batch --wait` and bench's live line.
# Skips (77) without tmux.
set -u
if ! command -v tmux >/dev/null 2>&1; then echo "skip: tmux is not installed"; exit 77; fi
fail=0
check() { # check DESCRIPTION CONDITION...
    desc=$1; shift
    if "$@"; then echo "ok: $desc"; else echo "FAIL: $desc"; fail=1; fi
}
tmp=$(mktemp -d)
sock="rouse-tty-$$"
pid=
cleanup() {
    tmux -L "$sock" kill-server 2>/dev/null
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

"$ROUSE" serve --port 0 --data "$tmp/data" --log-level warn >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
i=0
until grep -q '^listening on ' "$tmp/serve.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then echo "FAIL: serve did not start"; exit 1; fi
    sleep 0.1
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/serve.out")
server="http://127.0.0.1:$port"
# A session that outlives the others, so that the tmux server stays up
# between them.
tmux -L "$sock" -f /dev/null new-session -d -x 80 -y 10 -s keep "sleep 600"

# run_tty WIDTH NAME COMMAND: runs COMMAND in a tmux pane WIDTH columns wide
# and leaves the pane (with colours) in $tmp/NAME.pane once it has ended.
run_tty() {
    width=$1 name=$2; shift 2
    tmux -L "$sock" -f /dev/null new-session -d -x "$width" -y 30 -s "$name" \
        "env -u NO_COLOR TERM=xterm ROUSE_SERVER=$server $*; echo \"exit=\$?\"; sleep 60"
    i=0
    until tmux -L "$sock" capture-pane -p -t "$name" 2>/dev/null | grep -q '^exit=' || [ $i -gt 300 ]; do
        i=$((i + 1)); sleep 0.1
    done
    tmux -L "$sock" capture-pane -p -e -J -t "$name" >"$tmp/$name.pane"
    tmux -L "$sock" kill-session -t "$name"
}

# An upload over 1 MB: random bytes, which the server then refuses to load
# as a model (after the upload, which is what is watched here).
head -c 3000000 /dev/urandom >"$tmp/big.onnx"
run_tty 100 up "$ROUSE" deploy big "$tmp/big.onnx"
check "the deploy ended (refused: not a model)" grep -q '^exit=1' "$tmp/up.pane"
check "a progress bar ends at 100% on the terminal" \
    grep -Eq '^uploading big.onnx \[#+\] 100% 3.0 MB/3.0 MB' "$tmp/up.pane"
check "drawn in place (one line)" [ "$(grep -c '^uploading big.onnx' "$tmp/up.pane")" -eq 1 ]
head -c 3000000 /dev/urandom >"$tmp/big2.onnx"
ROUSE_SERVER=$server "$ROUSE" deploy big2 "$tmp/big2.onnx" >"$tmp/o" 2>"$tmp/e"
check "not on a terminal: plain progress lines" grep -q '^uploading big2.onnx: 3.0 MB of 3.0 MB (100%)$' "$tmp/e"
check "without carriage returns" sh -c "! grep -q \"\$(printf '\r')\" '$tmp/e'"
head -c 500000 /dev/urandom >"$tmp/small.onnx"
run_tty 100 small "$ROUSE" deploy small "$tmp/small.onnx"
check "no bar under 1 MB" sh -c "! grep -q '^uploading' '$tmp/small.pane'"

# Tables: cut to the terminal, bold header; whole when piped.
ROUSE_SERVER=$server "$ROUSE" deploy digits "$DIGITS/model.onnx" -q
ROUSE_SERVER=$server "$ROUSE" deploy digits "$DIGITS/model.onnx" --max 2 -q
run_tty 60 tbl "$ROUSE" versions digits
check "versions ran" grep -q '^exit=0' "$tmp/tbl.pane"
sed 's/\x1b\[[0-9;]*m//g' "$tmp/tbl.pane" >"$tmp/tbl.txt"
check "the header is there" grep -Eq '^VERSION +CREATED +SCALING +MEMORY +ALIASES +MODEL' "$tmp/tbl.txt"
check "rows fit in 60 columns" sh -c "awk 'length > 60 { bad = 1 } END { exit bad }' '$tmp/tbl.txt'"
check "the model column is cut with ..." grep -Eq '^ +2 .* sha256:[0-9a-f]+\.\.\.$' "$tmp/tbl.txt"
check "the header is bold on a terminal" sh -c "grep -q \"\$(printf '\033')\\[1mVERSION\" '$tmp/tbl.pane'"
run_tty 60 nc env NO_COLOR=1 "$ROUSE" versions digits
check "NO_COLOR: no escape sequences" sh -c "grep -q '^VERSION' '$tmp/nc.pane' && ! grep -q \"\$(printf '\033')\\[1m\" '$tmp/nc.pane'"
ROUSE_SERVER=$server "$ROUSE" versions digits >"$tmp/o"
check "piped: the whole digest, no escapes" sh -c "grep -Eq 'sha256:[0-9a-f]{64}$' '$tmp/o' && ! grep -q \"\$(printf '\033')\" '$tmp/o'"

# A batch file followed on a terminal: one bar drawn in place, ending with
# every line done, and the results written beside the input.
for i in 0 1 2 3 4 5; do
    tr -d '\n' <"$DIGITS/samples/digit-$((i % 3)).json" >>"$tmp/batch.jsonl"
    echo >>"$tmp/batch.jsonl"
done
run_tty 100 batch "$ROUSE" batch digits "$tmp/batch.jsonl" --wait
check "batch --wait ended with every line succeeded" grep -q '^exit=0' "$tmp/batch.pane"
check "its bar ends full at 6/6" \
    grep -Eq '^\[#{40}\] 6/6 \(6 succeeded, 0 failed\)' "$tmp/batch.pane"
check "drawn in place (one line)" [ "$(grep -c '^\[[#.]*\] [0-9]*/6 ' "$tmp/batch.pane")" -eq 1 ]
check "all six results are written" \
    sh -c "[ \$(wc -l <'$tmp/batch.out.jsonl') -eq 6 ] && ! grep -qx null '$tmp/batch.out.jsonl'"

# bench's live progress line ends showing every request.
run_tty 100 bench "$ROUSE" bench digits -n 30 -c 2
check "bench's progress line ends at 30/30" grep -Eq '^30/30 requests +[0-9]+ req/s +0 errors' "$tmp/bench.pane"
check "and the histogram is drawn with blocks" grep -q "$(printf '\342\226\210')" "$tmp/bench.pane"

kill -TERM $pid
wait $pid
pid=
exit $fail
