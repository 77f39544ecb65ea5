#!/bin/sh
# demo.sh - `make demo`: the bundled suite (tasks/suite) swept over the demo
# model family (models/family/family.yaml) with the native backend, then the
# scaling table, the matching-scale comparisons, figures and the report.
#
# Settings (environment, or make variables of the same name):
#   DEMO_FAMILY  family file              [models/family/family.yaml]
#   DEMO_DB      results database         [runs/demo.sqlite]
#   DEMO_OUT     plots and report         [runs/demo]
#   DEMO_LIMIT   examples per task        [60]; 0 = every held-out example
#   EMERGE       the emerge binary        [./emerge]
#
# --limit keeps the sweep to a few minutes on 2 cores: 16 models x 12 tasks,
# arithmetic with three prompt variants (the chain-of-thought ones generate
# up to ~100 tokens per example) and the knowledge-base tasks with and
# without retrieval. The sweep caches every response in the database, so a
# second run (or one with a larger DEMO_LIMIT) only computes what is new.
set -eu
FAMILY=${DEMO_FAMILY:-models/family/family.yaml}
DB=${DEMO_DB:-runs/demo.sqlite}
OUT=${DEMO_OUT:-runs/demo}
LIMIT=${DEMO_LIMIT:-60}
EMERGE=${EMERGE:-./emerge}
S=tasks/suite

if [ ! -f "$FAMILY" ]; then
    echo "make demo: $FAMILY is missing (the demo family; 'make family' builds it)" >&2
    exit 1
fi
mkdir -p "$(dirname "$DB")" "$OUT"

step() { # name, then the command
    name=$1
    shift
    t0=$(date +%s)
    "$@"
    echo "demo: $name took $(( $(date +%s) - t0 )) s" >&2
}

# Arithmetic: answer-only vs. scratchpad (zero-shot, the family's trained
# format) vs. Kojima's two-pass zero-shot chain of thought.
step "arithmetic sweep" "$EMERGE" sweep --models "$FAMILY" --db "$DB" --limit "$LIMIT" \
    --tasks $S/add_1d.yaml,$S/add_2d.yaml,$S/add_3d.yaml \
    --variants standard,cot,zero_shot_cot
# Knowledge: closed-book vs. retrieval from tasks/corpus/kb_facts.txt.
step "knowledge sweep" "$EMERGE" sweep --models "$FAMILY" --db "$DB" --limit "$LIMIT" \
    --tasks $S/kb_recall.yaml,$S/kb_recall_mc.yaml,$S/kb_two_hop.yaml,$S/kb_two_hop_mc.yaml \
    --variants standard,retrieval
step "stories, memo trap, nonsense sweep" "$EMERGE" sweep --models "$FAMILY" --db "$DB" \
    --limit "$LIMIT" \
    --tasks $S/story_moral.yaml,$S/story_moral_mc.yaml,$S/story_gen.yaml,$S/memo_trap.yaml,$S/nonsense.yaml

"$EMERGE" scaling --db "$DB"
echo
echo "== how many parameters does retrieval / chain of thought save? =="
for m in exact_match multiple_choice_grade; do
    "$EMERGE" scaling --db "$DB" --compare-variants retrieval,standard --metric $m || true
done
"$EMERGE" scaling --db "$DB" --compare-variants cot,standard --metric exact_match || true

if "$EMERGE" --help 2>&1 | grep -q '^  plot '; then
    step "plots" "$EMERGE" plot --db "$DB" --out "$OUT/plots"
fi
if "$EMERGE" --help 2>&1 | grep -q '^  report '; then
    step "report" "$EMERGE" report --db "$DB" --out "$OUT/report"
    echo "demo: report at $OUT/report/index.html" >&2
fi
