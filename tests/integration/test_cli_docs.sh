#!/bin/sh
# rouse completion bash|zsh and the man page come from the same help texts:
# every command that `rouse help` lists, and every flag that its --help
# names, must be in all three; docs/rouse.1 must be what `rouse completion
# man` prints now (regenerate it with that command). No server needed.
set -u
fail=0
check() { # check DESCRIPTION CONDITION...
    desc=$1; shift
    if "$@"; then echo "ok: $desc"; else echo "FAIL: $desc"; fail=1; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ROUSE" completion bash >"$tmp/bash" && "$ROUSE" completion zsh >"$tmp/zsh" && "$ROUSE" completion man >"$tmp/man"
check "the three are generated" [ -s "$tmp/bash" -a -s "$tmp/zsh" -a -s "$tmp/man" ]
check "docs/rouse.1 is up to date (rouse completion man > docs/rouse.1)" cmp -s "$tmp/man" "$SRC/docs/rouse.1"
check "the bash script parses" bash -n "$tmp/bash"
if command -v zsh >/dev/null 2>&1; then check "the zsh script parses" zsh -n "$tmp/zsh"; fi
# troff writes '-' as '\-': compare the man page with that undone.
sed 's/\\-/-/g' "$tmp/man" >"$tmp/man.txt"
verbs=$("$ROUSE" help | sed -n 's/^  \([a-z][a-z_-]*\) .*/\1/p')
check "help lists the verbs" [ "$(echo "$verbs" | wc -l)" -ge 15 ]
missing=""
for v in $verbs; do
    grep -q "^        $v) opts=" "$tmp/bash" || missing="$missing bash:$v"
    grep -q "^        '$v:" "$tmp/zsh" || missing="$missing zsh:$v"
    grep -q "^\.SS \"rouse $v\"$" "$tmp/man.txt" || missing="$missing man:$v"
    flags=$("$ROUSE" "$v" --help | grep -oE '(^|[][ (|])--?[A-Za-z][-A-Za-z0-9]*' | sed 's/^[][ (|]//' | sort -u)
    for f in $flags; do
        sed -n "s/^        $v) opts=\"\(.*\)\" ;;$/ \1 /p" "$tmp/bash" | grep -q -- " $f " || missing="$missing bash:$v:$f"
        sed -n "s/^        $v) opts=(\(.*\)) ;;$/ \1 /p" "$tmp/zsh" | grep -q -- " $f " || missing="$missing zsh:$v:$f"
        # The man page holds each command's help text whole.
        awk -v v="$v" '$0 == ".SS \"rouse " v "\"" { on = 1; next } /^\.SS / { on = 0 } on' "$tmp/man.txt" |
            grep -q -- "$f" || missing="$missing man:$v:$f"
    done
done
check "every verb and flag is in bash, zsh and man${missing:+ (missing:$missing)}" [ -z "$missing" ]
"$ROUSE" completion fish >/dev/null 2>"$tmp/e"; rc=$?
check "an unknown shell is a usage error" [ $rc -eq 2 ]
exit $fail
