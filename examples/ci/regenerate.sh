#!/bin/sh
# examples/ci/regenerate.sh - rebuilds the example CI fixtures from scratch:
#   replay/*.jsonl   each model's recorded responses (synthetic backend,
#                    sharp ability, midpoint 3e8 parameters)
#   baseline.sqlite  the baseline results: a sweep of family.yaml over them
# Run from the repository root after `make`: sh examples/ci/regenerate.sh
# Commit the results; ci.sh compares every new run against baseline.sqlite.
set -eu
BIN=${EMERGE_BIN:-./emerge}
here=${EMERGE_CI_DIR:-examples/ci}
tasks=tests/data/tasks/sweep-arith.yaml,tests/data/tasks/sweep-mc.yaml
limit=20
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$here/replay" "$here/baseline.sqlite"
mkdir -p "$here/replay"
for m in "ci-100m 1e8" "ci-300m 3e8" "ci-1b 1e9"; do
    set -- $m
    "$BIN" run --model "synthetic,name=$1,params=$2,shape=sharp,midpoint=3e8,width=0.5" \
        --tasks "$tasks" --limit $limit --db "$tmp/record.sqlite" \
        --record "$here/replay/$1.jsonl" --quiet
done
"$BIN" sweep --tasks "$tasks" --models "$here/family.yaml" --limit $limit \
    --db "$here/baseline.sqlite" --quiet
echo "wrote $here/replay/*.jsonl and $here/baseline.sqlite"
