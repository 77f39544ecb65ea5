#!/bin/sh
# test_checkpoints.sh - a family with several checkpoints per size (as the
# demo family and Pythia ship): on the parameter axis `emerge scaling`
# keeps one point per size, the most-trained checkpoint (a member without a
# step, as another family's model of the same size, is never merged); on the flops axis
# every checkpoint is its own point. (An earlier checkpoint is a different
# model: here a later midpoint, so the synthetic models differ as real
# checkpoints' files do.)
set -u
EMERGE=${EMERGE_BIN:-build/asan/emerge}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/fam.yaml" <<YAML
name: ckpt
defaults: {backend: synthetic, shape: smooth, midpoint: 1e8, width: 2}
members:
  - {name: small-early, params: 1e6, tokens: 1e8, step: 100, midpoint: 1e9}
  - {name: small-late,  params: 1e6, tokens: 4e8, step: 400}
  - {name: big-early,   params: 1e9, tokens: 1e8, step: 100, midpoint: 1e9}
  - {name: big-late,    params: 1e9, tokens: 4e8, step: 400}
  - {name: other-fam,   params: 1e6, tokens: 4e8, midpoint: 1e7}
YAML
if ! "$EMERGE" sweep --tasks tests/data/tasks/sweep-arith.yaml --models "$tmp/fam.yaml" \
        --db "$tmp/x.sqlite" --limit 10 --quiet >"$tmp/log" 2>&1; then
    echo "FAIL checkpoints_sweep: $(tail -3 "$tmp/log")"; exit 0
fi
echo "PASS checkpoints_sweep"
"$EMERGE" scaling --db "$tmp/x.sqlite" --format csv > "$tmp/params.csv" 2>&1
"$EMERGE" scaling --db "$tmp/x.sqlite" --format csv --axis flops > "$tmp/flops.csv" 2>&1
models() { grep -o -E '(small|big)-(early|late)|other-fam' "$1" | sort -u | tr '\n' ' '; }
p=$(models "$tmp/params.csv") f=$(models "$tmp/flops.csv")
if [ "$p" = "big-late other-fam small-late " ]; then echo "PASS params_axis_keeps_most_trained"
else echo "FAIL params_axis_keeps_most_trained: models on the params axis: '$p'"; fi
if [ "$f" = "big-early big-late other-fam small-early small-late " ]; then echo "PASS flops_axis_keeps_every_checkpoint"
else echo "FAIL flops_axis_keeps_every_checkpoint: models on the flops axis: '$f'"; fi
