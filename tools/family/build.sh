#!/bin/sh
# build.sh - rebuilds the demo family from nothing (what `make family` runs).
#
# Fixed seeds, single-threaded training and the same token stream for every
# size: the data and held-out splits are byte-identical on every run, and
# the weights too on the same machine and BLAS (checked on 16-step reruns);
# other BLAS builds may differ in the last bits. Resumable:
# training continues from WORK/<size>/state.pt, so rerunning after an
# interruption picks up where it stopped. FAMILY_WORK, FAMILY_OUT and STEPS
# redirect a trial run (e.g. STEPS=16) away from the committed artefact.
set -e
cd "$(dirname "$0")"
PY=${PYTHON:-/usr/bin/python3}
OUT=${FAMILY_OUT:-../../models/family}
W=${FAMILY_WORK:-work}

# torch/numpy from Debian (the system python, not a pyenv one). OpenBLAS
# replaces the reference BLAS that Debian's torch otherwise links: 10x on
# these matrices (6 -> 65+ GFLOP/s measured here).
if ! "$PY" -c 'import torch, numpy' 2>/dev/null || \
   ! ls /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 >/dev/null 2>&1
then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        python3-torch python3-numpy libopenblas0-pthread
fi

mkdir -p "$W"
[ -f "$W/train.bin" ] || "$PY" gen_data.py "$W" "$OUT/heldout" 17000000
./run_all.sh
"$PY" export_gguf.py --all "$W" "$OUT"
for f in "$OUT"/demo-*.gguf; do
    b=$(basename "$f" .gguf); size=${b#demo-}; size=${size%-step*}
    step=${b##*-step}
    "$PY" check_gguf.py "$f" "$W/$size/step$step.pt"
done
"$PY" eval_family.py "$W" "$OUT/heldout" "$W/eval.json"
"$PY" make_card.py "$W" "$W/eval.json" > "$OUT/MODEL_CARD.md"
