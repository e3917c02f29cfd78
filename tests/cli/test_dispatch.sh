#!/bin/sh
# Subcommand dispatch of the rouse program: help, version, per-command help,
# and the usage error (exit 2, usage on stderr) for unknown commands.
set -u
fail=0
check() { # check DESCRIPTION CONDITION...
    desc=$1; shift
    if "$@"; then echo "ok: $desc"; else echo "FAIL: $desc"; fail=1; fi
}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$ROUSE" --version >"$out/v" 2>&1; rc=$?
check "--version exits 0" [ $rc -eq 0 ]
check "--version prints the version" grep -Eq '^rouse [0-9]+\.[0-9]+\.[0-9]+$' "$out/v"

"$ROUSE" help >"$out/h" 2>&1; rc=$?
check "help exits 0" [ $rc -eq 0 ]
check "help lists commands" grep -q 'version' "$out/h"

"$ROUSE" version --help >"$out/vh" 2>&1; rc=$?
check "<cmd> --help exits 0" [ $rc -eq 0 ]
check "<cmd> --help shows usage" grep -q 'usage: rouse version' "$out/vh"

"$ROUSE" frobnicate >"$out/o" 2>"$out/e"; rc=$?
check "unknown command exits 2" [ $rc -eq 2 ]
check "unknown command names it on stderr" grep -q "unknown command 'frobnicate'" "$out/e"
check "unknown command prints usage on stderr" grep -q 'usage: rouse' "$out/e"
check "unknown command prints nothing on stdout" [ ! -s "$out/o" ]

"$ROUSE" >"$out/o" 2>"$out/e"; rc=$?
check "no command exits 2" [ $rc -eq 2 ]
check "no command prints usage on stderr" grep -q 'usage: rouse' "$out/e"

"$ROUSE" help nosuch >/dev/null 2>"$out/e"; rc=$?
check "help of unknown command exits 2" [ $rc -eq 2 ]

exit $fail
