#!/bin/sh
# test_mirage.sh - `emerge scaling --mirage` end to end on two synthetic
# families swept through the store (backends/synthetic.c): answers of 10
# tokens whose per-token probability rises smoothly (a jump made by the
# metric) must come out "metric-induced"; one-token answers whose
# probability itself jumps, "not explained by token log-probs". Synthetic
# families test the metric only; they are never a demo.
set -u
EMERGE=${EMERGE_BIN:-build/asan/emerge}
TASK=tests/data/tasks/sweep-arith.yaml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fam() { # FILE DEFAULTS
    {
        echo "name: m"
        echo "defaults: {backend: synthetic, $2}"
        echo "members:"
        for p in 1e6 1e7 1e8 1e9 1e10 1e11; do echo "  - {name: m-$p, params: $p}"; done
    } >"$1"
}
fam "$tmp/smooth.yaml" "shape: smooth, midpoint: 1e8, width: 4, answer_tokens: 10, spread: 1"
fam "$tmp/sharp.yaml" "shape: sharp, midpoint: 3e8, spread: 0.3"
for f in smooth sharp; do
    if ! "$EMERGE" sweep --tasks "$TASK" --models "$tmp/$f.yaml" --db "$tmp/$f.sqlite" \
            --variants standard --quiet >"$tmp/$f.log" 2>&1; then
        echo "FAIL mirage_$f: sweep: $(tail -3 "$tmp/$f.log")"
        continue
    fi
    "$EMERGE" scaling --db "$tmp/$f.sqlite" --mirage --format csv >"$tmp/$f.csv" 2>&1
    case $f in smooth) want='"metric-induced"' ;; *) want='"not explained by token log-probs"' ;; esac
    if grep -q "^sweep-arith,standard,6,200,.*,$want\$" "$tmp/$f.csv"; then
        echo "PASS mirage_$f ($(tail -1 "$tmp/$f.csv" | cut -d, -f5,6 | sed 's/,/ em range, r2 /'))"
    else
        echo "FAIL mirage_$f: want $want: $(cat "$tmp/$f.csv")"
    fi
done
# back-testing on the smooth family: holding back the largest model, the
# smooth predictor (each example's target log-prob extrapolated) lands
# near its exact match where a logistic of the smaller models' exact match
# does not
if "$EMERGE" scaling --db "$tmp/smooth.sqlite" --predict --replicates 50 --format csv \
        >"$tmp/pred.csv" 2>&1 &&
    awk -F, 'NR == 2 { o = $6; d = $9; s = $12
        ed = o - d; if (ed < 0) ed = -ed; es = o - s; if (es < 0) es = -es
        exit !(es < 0.1 && es < ed && $15 > 0 && $17 == $15) }' "$tmp/pred.csv"; then
    echo "PASS predict_smooth_family ($(sed -n 2p "$tmp/pred.csv" | cut -d, -f3,6,9,12))"
else
    echo "FAIL predict_smooth_family: $(cat "$tmp/pred.csv")"
fi
# multiple choice: the grade against the correct choice's probability
# normalised over the choices (the synthetic model's is p itself)
if "$EMERGE" sweep --tasks tests/data/tasks/sweep-mc.yaml --models "$tmp/smooth.yaml" \
        --db "$tmp/mc.sqlite" --limit 60 --quiet >"$tmp/mc.log" 2>&1 &&
    "$EMERGE" scaling --db "$tmp/mc.sqlite" --mirage --format csv >"$tmp/mc.csv" 2>&1 &&
    grep -q '^sweep-mc,standard,6,60,' "$tmp/mc.csv" && ! grep -q 'not applicable' "$tmp/mc.csv"; then
    echo "PASS mirage_multiple_choice ($(tail -1 "$tmp/mc.csv" | cut -d, -f13))"
else
    echo "FAIL mirage_multiple_choice: $(cat "$tmp/mc.csv" 2>/dev/null; tail -2 "$tmp/mc.log")"
fi
# the flag needs a store; chain-of-thought variants are not applicable
if "$EMERGE" scaling --scores "$tmp/x.csv" --mirage >/dev/null 2>&1; then
    echo "FAIL mirage_needs_db: --scores --mirage was accepted"
else
    echo "PASS mirage_needs_db"
fi
