#!/bin/sh
# fuzz_seed.sh DIR [EMERGE] - seeds the GGUF fuzz corpus in DIR.
#
# The shared fixtures are megabytes, mostly tensor data and 32000-token
# vocabularies that the fuzzer would spend its time copying; their first
# few KB hold the header and the first keys, which is where the structure
# is. Complete small files come from `emerge mkmodel` (tiny shapes, a
# synthetic vocabulary, several tensor types), so the fuzzer also starts
# from inputs that parse all the way to the tensor data.
set -u
dir=$1
emerge=${2:-./emerge}
shared=${EMERGE_SHARED:-../shared}
mkdir -p "$dir"
for f in tests/data/parity/*.gguf tests/data/tokenizer/*.gguf \
         "$shared"/fixtures/gguf/*.gguf "$shared"/refs/tokenizer/*.gguf; do
    [ -f "$f" ] || continue
    b=$(basename "$(dirname "$f")")-$(basename "$f" .gguf)
    head -c 1024 "$f" >"$dir/$b.1k"
    head -c 16384 "$f" >"$dir/$b.16k"
done
if [ -x "$emerge" ] && "$emerge" mkmodel --help >/dev/null 2>&1; then
    for t in f32 f16 q8_0 q4_0; do
        "$emerge" mkmodel -o "$dir/mk-$t.gguf" --type "$t" --n-vocab 300 \
            --n-embd 32 --n-layer 1 --n-head 2 --n-ff 64 --seed 1 >/dev/null 2>&1 ||
            rm -f "$dir/mk-$t.gguf"
    done
fi
n=$(ls "$dir" | wc -l)
echo "fuzz_seed: $n files in $dir"
