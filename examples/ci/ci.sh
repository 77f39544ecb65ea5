#!/bin/sh
# examples/ci/ci.sh [OUTDIR] - the example CI job, runnable anywhere:
#   1. sweep the tasks over family.yaml (replayed models) into OUTDIR/ci.sqlite
#   2. emerge check against the committed baseline.sqlite: a table on
#      stdout, OUTDIR/junit.xml for the CI's test view, OUTDIR/summary.md
#      for the job page
#   3. emerge report into OUTDIR/report (figures need gnuplot)
# Exit status is the check's: 0 no regression, 1 regression, 2 error.
# Run from the repository root after `make`: sh examples/ci/ci.sh runs/ci
set -u
BIN=${EMERGE_BIN:-./emerge}
out=${1:-runs/ci}
here=${EMERGE_CI_DIR:-examples/ci}
tasks=tests/data/tasks/sweep-arith.yaml,tests/data/tasks/sweep-mc.yaml
mkdir -p "$out" || exit 2
rm -f "$out/ci.sqlite" "$out/ci.sqlite-wal" "$out/ci.sqlite-shm"
"$BIN" sweep --tasks "$tasks" --models "$here/family.yaml" --limit 20 \
    --db "$out/ci.sqlite" --quiet || { echo "ci: sweep failed" >&2; exit 2; }
"$BIN" check --baseline "$here/baseline.sqlite" --db "$out/ci.sqlite" \
    --junit "$out/junit.xml" --markdown "$out/summary.md"
rc=$?
# The report is for people; it never changes the verdict.
"$BIN" report --db "$out/ci.sqlite" --out "$out/report" >/dev/null ||
    echo "ci: report not written (see above)" >&2
exit $rc
