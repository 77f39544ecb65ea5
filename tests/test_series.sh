#!/bin/sh
# test_series.sh - checkpoint series: `emerge family scan` over a tree of
# 3 sizes x 3 steps of tiny random llama GGUFs (laid out as Pythia's
# revisions are, root/size-a/step1000.gguf ...) writes a family file with
# one series per size and the parameter counts read from the weights;
# `emerge sweep` runs it end to end, the models table holds both counts,
# `emerge plot` draws the flops and the non-embedding axes; entries that
# are not checkpoints are named, and bad series give file:line:column
# errors.
set -u
EMERGE=${EMERGE_BIN:-build/asan/emerge}
TASK=$(pwd)/tests/data/tasks/sweep-arith.yaml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# ---- the tree --------------------------------------------------------------
# size  n_embd E  n_ff F   (1 layer, 2 heads, n_vocab V = 300)
#  a        32      64
#  b        48      96
#  c        64     128
# mkmodel's llama tensors: token_embd [E, V], output [E, V] (not tied),
# attn_q/k/v/output [E, E] each, ffn_gate/up [E, F], ffn_down [F, E],
# attn_norm, ffn_norm, output_norm [E] each. So
#   total    = 2EV + 4E^2 + 3EF + 3E
#   nonembed = total - 2EV          (token_embd and output left out)
mk() { # DIR E F SEED
    "$EMERGE" mkmodel -o "$1" --n-embd "$2" --n-layer 1 --n-head 2 \
        --n-ff "$3" --ctx 128 --n-vocab 300 --seed "$4" >/dev/null 2>&1
}
root="$tmp/ckpt root"   # a space in every path
seed=1 made=0
for sz in "a 32 64" "b 48 96" "c 64 128"; do
    set -- $sz
    mkdir -p "$root/size-$1"
    for step in 1000 2000 3000; do
        mk "$root/size-$1/step$step.gguf" "$2" "$3" $seed && made=$((made + 1))
        seed=$((seed + 1))
    done
done
touch "$root/size-a/README.md"
mkdir "$root/size-a/.cache"
if [ "$made" -ne 9 ]; then fail series_models "made $made of 9 models"; exit 0; fi

expect() { # E F -> "total nonembed"
    echo "$((2 * $1 * 300 + 4 * $1 * $1 + 3 * $1 * $2 + 3 * $1)) $((4 * $1 * $1 + 3 * $1 * $2 + 3 * $1))"
}

# ---- scan --------------------------------------------------------------------
mkdir "$tmp/out"
fam="$tmp/out/fam.yaml"
if "$EMERGE" family scan "$root/size-c" "$root/size-a/" "$root/size-b" \
        -o "$fam" --tokens-per-step 2M --name tiny >"$tmp/scan.out" 2>"$tmp/scan.err" &&
    grep -q '^series:' "$fam" && [ "$(grep -c '^  - name:' "$fam")" -eq 3 ] &&
    grep -q 'path: "../ckpt root/size-a/step{step}.gguf"' "$fam" &&
    grep -q 'steps: \[1000, 2000, 3000\]' "$fam" &&
    grep -q 'tokens_per_step: 2000000' "$fam" && grep -q '^name: "tiny"' "$fam"; then
    pass family_scan_writes_series
else
    fail family_scan_writes_series "$(cat "$tmp/scan.err") $(cat "$fam" 2>/dev/null | head -12)"
fi
if grep -q "skipped 2 entries in $root/size-a: .cache, README.md" "$tmp/scan.err"; then
    pass family_scan_names_skipped
else
    fail family_scan_names_skipped "$(cat "$tmp/scan.err")"
fi

# params and params_nonembed of a series, as the file gives them
counts() { awk -v n="\"$1\"" '$2 == "name:" {s = ($3 == n)}
    s && $1 == "params:" {p = $2} s && $1 == "params_nonembed:" {q = $2}
    END {print p, q}' "$fam"; }
bad=
for sz in "a 32 64" "b 48 96" "c 64 128"; do
    set -- $sz
    got=$(counts "size-$1") want=$(expect "$2" "$3")
    [ "$got" = "$want" ] || bad="$bad size-$1: $got, want $want;"
done
if [ -z "$bad" ]; then pass params_counted_from_weights
else fail params_counted_from_weights "$bad"; fi

# ---- sweep, models table, plots ----------------------------------------------
db="$tmp/r.sqlite"
if "$EMERGE" sweep --tasks "$TASK" --models "$fam" --db "$db" --limit 2 \
        --quiet >"$tmp/sweep.log" 2>&1; then
    pass series_sweep
else
    fail series_sweep "$(tail -3 "$tmp/sweep.log")"
fi
rows=$(python3 -c "import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for r in c.execute('SELECT name, params, params_nonembed, tokens, step FROM models ORDER BY name'):
    print('%s %d %d %d %d' % r)" "$db" 2>&1)
want=
for sz in "a 32 64" "b 48 96" "c 64 128"; do
    set -- $sz
    for step in 1000 2000 3000; do
        want="$want
size-$1-step$step $(expect "$2" "$3") $((step * 2000000)) $step"
    done
done
if [ "$rows" = "${want#?}" ]; then pass models_table_counts
else fail models_table_counts "got: $rows"; fi

if "$EMERGE" plot --db "$db" --out "$tmp/plots" --axis flops >"$tmp/plot.log" 2>&1 &&
    [ -s "$tmp/plots/overview.csv" ] && [ -s "$tmp/plots/sweep-arith-variants.csv" ] &&
    { ! command -v gnuplot >/dev/null || [ -s "$tmp/plots/overview.png" ]; }; then
    pass plot_flops_axis
    # one line per size through its checkpoints, not one zig-zag line
    lines=$(python3 -c "import csv, sys
print(sorted({r[1] for r in csv.reader(open(sys.argv[1])) if r[1].startswith('standard')}))" \
        "$tmp/plots/sweep-arith-variants.csv" 2>&1)
    if [ "$lines" = "['standard, 29.5K', 'standard, 52K', 'standard, 79.6K']" ]; then
        pass flops_lines_per_size
    else
        fail flops_lines_per_size "lines in sweep-arith-variants.csv: $lines (want one per size)"
    fi
else
    fail plot_flops_axis "$(tail -3 "$tmp/plot.log"; ls "$tmp/plots" 2>&1 | head -5)"
fi
if "$EMERGE" plot --db "$db" --out "$tmp/ne" --axis nonembed --format svg \
        >"$tmp/ne.log" 2>&1 && grep -q 'non-embedding parameters' "$tmp/ne/overview.gp" &&
    "$EMERGE" scaling --db "$db" --axis nonembed --format csv >"$tmp/ne.csv" 2>&1 &&
    grep -q ',41152,' "$tmp/ne.csv" &&
    "$EMERGE" scaling --db "$db" --axis nonembed 2>&1 | grep -q ' nonembed '; then
    pass nonembed_axis
else
    fail nonembed_axis "$(tail -3 "$tmp/ne.log"; head -3 "$tmp/ne.csv")"
fi

# ---- no models, bad series --------------------------------------------------
mkdir "$tmp/empty"
touch "$tmp/empty/notes.txt"
"$EMERGE" family scan "$tmp/empty" -o "$tmp/e.yaml" >/dev/null 2>"$tmp/e.err"
rc=$?
if [ $rc -ne 0 ] && grep -q 'no model here' "$tmp/e.err" &&
    grep -q 'skipped 1 entry in .*: notes.txt' "$tmp/e.err"; then
    pass family_scan_no_models
else
    fail family_scan_no_models "rc $rc: $(cat "$tmp/e.err")"
fi

bad_series() { # NAME WANT YAML-BODY
    printf 'name: t\nseries:\n%s\n' "$3" > "$tmp/bad.yaml"
    out=$("$EMERGE" sweep --tasks "$TASK" --models "$tmp/bad.yaml" \
        --db "$tmp/bad.sqlite" --limit 1 --quiet 2>&1)
    case $out in
    *"$2"*) pass "series_error_$1" ;;
    *) fail "series_error_$1" "want '$2', got '$out'" ;;
    esac
}
P='    path: "m/step{step}.gguf"'
bad_series missing_steps "bad.yaml:3:5: series[0]: missing required field 'steps'" \
"  - name: a
$P"
bad_series no_step_in_path "bad.yaml:4:11: series[0]: 'path' must contain {step}" \
"  - name: a
    path: m.gguf
    steps: [1]"
bad_series not_integer "bad.yaml:5:16: series[0]: steps[1] must be a whole number >= 0, got '1.5'" \
"  - name: a
$P
    steps: [1, 1.5]"
bad_series duplicate_step "bad.yaml:5:19: series[0]: steps[2]: duplicate step 1 (first at steps[0])" \
"  - name: a
$P
    steps: [1, 2, 1]"
bad_series step_key "bad.yaml:6:5: series[0]: 'step' cannot be set in a series" \
"  - name: a
$P
    steps: [1]
    step: 3"
bad_series unknown_top_key "bad.yaml:5:1: unknown key 'serie' (expected name, description, defaults, members, series)" \
"  - name: a
$P
serie: []"
bad_series duplicate_member "bad.yaml:8:13: series[1]: duplicate member name 'a-step1'" \
"  - name: a
$P
    steps: [1]
  - name: a
$P
    steps: [1]"
exit 0
