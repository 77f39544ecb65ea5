#!/bin/sh
# test_hf_family.sh - a tree shaped like Pythia's download (sizes x stepN
# revisions, each a Hugging Face checkpoint directory: config.json,
# model.safetensors, tokenizer.json) becomes a family with `emerge family
# scan`, sweeps end to end on the native engine and plots on --axis flops;
# `emerge run --model DIR`, `inspect DIR` and `convert hf` take a
# directory where they take a GGUF file. The directories are written by
# tests/mkhf.c from tiny random models (mkmodel) and the GPT-NeoX parity
# fixture, so no ../shared is needed.
set -u
EMERGE=${EMERGE_BIN:-build/asan/emerge}
MKHF=$(dirname "$EMERGE")/tests/mkhf
TASK=$(pwd)/tests/data/tasks/sweep-arith.yaml
NEOX=$(pwd)/tests/data/parity/tiny-gptneox-f16.gguf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
if [ ! -x "$MKHF" ]; then fail hf_family "$MKHF not built (make asan)"; exit 0; fi

# ---- the tree: pythia/<size>/step<N>/ ----------------------------------------
# sizes a, b: llama (mkmodel, n_embd 32 / 48, SentencePiece-style vocab of
# 300); size neox: the GPT-NeoX fixture (byte-level BPE) stored as F32, F16
# and BF16 at its three steps, so each step has its own content.
root="$tmp/pythia"
made=0 seed=1
for sz in "a 32 64" "b 48 96"; do
    set -- $sz
    for step in 1000 2000 3000; do
        g="$tmp/m$seed.gguf"
        "$EMERGE" mkmodel -o "$g" --n-embd "$2" --n-layer 1 --n-head 2 \
            --n-ff "$3" --ctx 128 --n-vocab 300 --seed $seed >/dev/null 2>&1 &&
            mkdir -p "$root/pythia-$1" &&
            "$MKHF" "$g" "$root/pythia-$1/step$step" F16 && made=$((made + 1))
        seed=$((seed + 1))
    done
done
for s in "1000 F32" "2000 F16" "3000 BF16"; do
    set -- $s
    mkdir -p "$root/pythia-neox" &&
        "$MKHF" "$NEOX" "$root/pythia-neox/step$1" "$2" && made=$((made + 1))
done
touch "$root/pythia-a/README.md"
if [ "$made" -ne 9 ]; then fail hf_tree "made $made of 9 checkpoint directories"; exit 0; fi
pass hf_tree

# ---- scan, sweep, plot ----------------------------------------------------------
fam="$tmp/pythia.yaml"
if "$EMERGE" family scan "$root/pythia-a" "$root/pythia-b" "$root/pythia-neox" \
        -o "$fam" --tokens-per-step 2097152 --name pythia >"$tmp/scan.out" 2>"$tmp/scan.err" &&
    [ "$(grep -c '^  - name:' "$fam")" -eq 3 ] &&
    grep -q 'path: "pythia/pythia-neox/step{step}"' "$fam" &&
    grep -q 'steps: \[1000, 2000, 3000\]' "$fam" &&
    grep -q 'params: 29536' "$fam" && grep -q 'params_nonembed: 10336' "$fam"; then
    # size a (n_embd E 32, n_ff F 64, vocab V 300, untied), counted from
    # the safetensors shapes: 2EV + 4E^2 + 3EF + 3E, less 2EV
    pass hf_family_scan
else
    fail hf_family_scan "$(cat "$tmp/scan.err") $(head -20 "$fam" 2>/dev/null)"
fi
db="$tmp/r.sqlite"
if "$EMERGE" sweep --tasks "$TASK" --models "$fam" --db "$db" --limit 2 \
        --quiet >"$tmp/sweep.log" 2>&1; then
    pass hf_family_sweep
else
    fail hf_family_sweep "$(tail -5 "$tmp/sweep.log")"
fi
# every step is its own model (its own content identity), tokens = step x
# tokens_per_step, parameters counted from the weights
n=$(python3 -c "import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute('SELECT count(*), count(DISTINCT identity), sum(tokens = step * 2097152), min(params > 0) FROM models').fetchone())" "$db" 2>&1)
if [ "$n" = "(9, 9, 9, 1)" ]; then pass hf_family_models
else fail hf_family_models "models: $n (want 9 rows and identities, tokens from steps, params counted)"; fi
if "$EMERGE" plot --db "$db" --out "$tmp/plots" --axis flops >"$tmp/plot.log" 2>&1 &&
    [ -s "$tmp/plots/overview.csv" ]; then
    pass hf_family_plot_flops
else
    fail hf_family_plot_flops "$(tail -3 "$tmp/plot.log")"
fi

# ---- one directory where a GGUF file goes ---------------------------------------
dir="$root/pythia-neox/step1000"
if "$EMERGE" run --model "$dir" --tasks "$TASK" --db "$tmp/one.sqlite" --limit 1 \
        --quiet >"$tmp/run.log" 2>&1; then
    pass run_model_dir
else
    fail run_model_dir "$(tail -3 "$tmp/run.log")"
fi
if "$EMERGE" inspect "$dir" | grep -q 'Hugging Face checkpoint' &&
    "$EMERGE" convert hf "$dir" -o "$tmp/neox.gguf" >/dev/null &&
    "$EMERGE" inspect "$tmp/neox.gguf" | grep -q 'blk.1.attn_qkv.weight'; then
    pass inspect_convert_dir
else
    fail inspect_convert_dir "inspect/convert hf on $dir"
fi
