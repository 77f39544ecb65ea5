#!/bin/sh
# test_family.sh - the committed demo family (models/family/): every file
# matches SHA256SUMS, every member of family.yaml exists, loads in emerge's
# GGUF reader and has the parameter count family.yaml records, and held-out
# loss ordering holds where the model card says it does: the largest final
# checkpoint scores 2-digit answers better than the smallest.
set -u
EMERGE=${EMERGE_BIN:-build/asan/emerge}
DIR=models/family
ok() { echo "PASS $1"; }
bad() { echo "FAIL $1: $2"; }

if (cd "$DIR" && sha256sum --quiet -c SHA256SUMS) >/dev/null 2>&1; then
    ok family_sha256sums
else
    bad family_sha256sums "$(cd "$DIR" && sha256sum -c SHA256SUMS 2>&1 | grep -v ': OK' | head -3)"
fi

n=0 fails=""
for f in $(awk '/path:/ {print $2}' "$DIR/family.yaml"); do
    n=$((n + 1))
    want=$(awk -v p="$f" '$1 == "path:" && $2 == p {getline; print $2}' "$DIR/family.yaml")
    got=$("$EMERGE" inspect "$DIR/$f" 2>&1 | awk '/^total parameters:/ {print $3}')
    [ -n "$got" ] && [ "$got" = "$want" ] || fails="$fails $f(params $got, family.yaml $want)"
done
if [ "$n" -ge 16 ] && [ -z "$fails" ]; then ok "family_members_load ($n members)"
else bad family_members_load "n=$n:$fails"; fi

# The smallest and largest final checkpoints on 2-digit addition log-probs.
tmp=$(mktemp -d)
cat > "$tmp/add2.yaml" <<YAML
name: add2-logprob
type: target_logprob
data: $(pwd)/$DIR/heldout/add_2d.jsonl
template: "{{input}}"
continuation_prefix: ""
metrics: [target_logprob]
YAML
score() {
    "$EMERGE" run --model "$DIR/$1" --tasks "$tmp/add2.yaml" --db "$tmp/$2.sqlite" \
        --limit 40 --quiet >/dev/null 2>&1 &&
    "$EMERGE" results --db "$tmp/$2.sqlite" --format csv 2>/dev/null |
        awk -F, '$0 ~ /target_logprob/ {print $0}' | head -1
}
small=$(score demo-d8l1-step4096.gguf small)
large=$(score demo-d48l3-step4096.gguf large)
ms=$(echo "$small" | cut -d, -f7) ml=$(echo "$large" | cut -d, -f7)
if [ -n "$ms" ] && [ -n "$ml" ] && awk -v a="$ms" -v b="$ml" 'BEGIN { exit !(b > a + 1) }'; then
    ok "family_scores_through_native (2-digit answer log-prob $ms -> $ml)"
    echo "  small: $small"; echo "  large: $large"
else
    bad family_scores_through_native "no result (small='$small' large='$large')"
fi
rm -rf "$tmp"
