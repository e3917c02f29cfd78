#!/bin/sh
# Feeds every examples/digits/samples/digit-N.npy to `rouse run` and checks
# that the printed logits (all ten are in the `first=[...]` list) have their
# largest value at index N. Also checks the JSON twin of each sample exists.
set -u
fail=0
n=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for f in "$DIGITS"/samples/digit-*.npy; do
    [ -e "$f" ] || break
    n=$((n + 1))
    label=${f##*/digit-}
    label=${label%.npy}
    if ! "$ROUSE" run "$DIGITS/model.onnx" --input "pixels=$f" >"$out" 2>&1; then
        echo "FAIL: digit-$label: rouse run failed:"; cat "$out"; fail=1; continue
    fi
    # "output logits float [1, 10] ... first=[v0, v1, ..., v9]" -> index of the max.
    got=$(awk '/^output logits float \[1, 10\] / {
            s = $0; sub(/.*first=\[/, "", s); sub(/\].*/, "", s)
            k = split(s, v, ", ")
            if (k != 10) { print "values:" k; exit }
            best = 0
            for (i = 2; i <= k; i++) if (v[i] + 0 > v[best + 1] + 0) best = i - 1
            print best; exit
          }' "$out")
    if [ "$got" = "$label" ]; then
        echo "ok: digit-$label classified as $got"
    else
        echo "FAIL: digit-$label classified as '${got:-<no logits line>}'"; cat "$out"; fail=1
    fi
    if [ ! -s "$DIGITS/samples/digit-$label.json" ]; then
        echo "FAIL: digit-$label.json is missing"; fail=1
    fi
done
if [ "$n" -ne 10 ]; then
    echo "FAIL: expected 10 samples in $DIGITS/samples, found $n"; fail=1
fi
exit $fail
