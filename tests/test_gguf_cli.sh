#!/bin/sh
# test_gguf_cli.sh - `emerge inspect`, `emerge mkmodel`, `emerge convert`
# through the CLI, and the GGUF tests under valgrind (a non-ASan build,
# so memcheck sees every read of the exact-size hostile buffers).
set -u
emerge=${EMERGE_BIN:-build/asan/emerge}
shared=${EMERGE_SHARED:-../shared}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ci=0
case "${CI:-}" in true|1) ci=1 ;; esac

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { if [ $ci -eq 1 ]; then fail "$1" "$2 (CI)"; else echo "SKIP $1: $2"; fi; }
has() { grep -qF -- "$2" "$1"; }

# -- valgrind on the reader/writer tests
if ! command -v valgrind >/dev/null 2>&1; then
    skip valgrind_gguf "valgrind not installed"
elif ! ${CC:-cc} -std=c11 -O1 -g -I. -D_GNU_SOURCE -o "$tmp/test_gguf" \
        tests/test_gguf.c tests/testlib.c backends/engine/gguf.c base/common.c \
        -lcrypto -lm >"$tmp/cc.log" 2>&1; then
    fail valgrind_gguf "build failed: $(head -3 "$tmp/cc.log" | tr '\n' ' ')"
elif valgrind -q --error-exitcode=1 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect "$tmp/test_gguf" \
        >"$tmp/vg.log" 2>&1 && ! grep -q '^FAIL' "$tmp/vg.log"; then
    pass valgrind_gguf
else
    fail valgrind_gguf "$(grep -m2 -E '^FAIL|==[0-9]+==' "$tmp/vg.log" | tr '\n' ' ')"
fi

# -- inspect a fixture
# (the copy shipped in tests/data/parity: llama.cpp's Q4_0 file with 437
# of its 32000 vocabulary rows, 64 x 437 x 2 + 86336 parameters)
f="tests/data/parity/tiny-llama-q4_0.gguf"
if [ ! -f "$f" ]; then
    fail inspect_fixture "$f missing"
elif "$emerge" inspect "$f" >"$tmp/out" 2>&1 &&
     has "$tmp/out" "GGUF v3, 23 keys, 21 tensors" &&
     has "$tmp/out" '[string x 437] "<unk>", "<s>", "</s>"' &&
     has "$tmp/out" "llama.attention.head_count_kv                u32     2" &&
     grep -qE 'blk\.0\.attn_q\.weight +Q4_0 +\[64, 64\]' "$tmp/out" &&
     has "$tmp/out" "total parameters: 142272"; then
    pass inspect_fixture
else
    fail inspect_fixture "$(head -c 300 "$tmp/out")"
fi

# -- inspect errors
printf 'GGUF\003\000\000\000' >"$tmp/bad.gguf"
"$emerge" inspect "$tmp/bad.gguf" >"$tmp/out" 2>&1
rc=$?
if [ $rc -eq 2 ] && has "$tmp/out" "bad.gguf: at byte 8: tensor count needs 8 bytes"; then
    pass inspect_error
else
    fail inspect_error "rc $rc: $(cat "$tmp/out")"
fi

# -- mkmodel: every type, read back by inspect
ok=1
for t in f32 f16 bf16 q8_0 q4_0 q4_k q6_k; do
    n=64; case $t in q4_k|q6_k) n=256 ;; esac
    T=$(echo $t | tr a-z A-Z)
    if ! "$emerge" mkmodel -o "$tmp/m.gguf" --type $t --n-vocab 300 \
            --n-embd $n --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff $n \
            >"$tmp/out" 2>&1 ||
       ! "$emerge" inspect "$tmp/m.gguf" >"$tmp/out" 2>&1 ||
       ! grep -qE "blk\.1\.ffn_down\.weight +$T +\[$n, $n\]" "$tmp/out" ||
       ! grep -qE "blk\.0\.attn_k\.weight +$T +\[$n, $((n / 2))\]" "$tmp/out" ||
       ! grep -qE "output_norm\.weight +F32 +\[$n\]" "$tmp/out" ||
       ! has "$tmp/out" "[string x 300]"; then
        fail mkmodel_types "type $t: $(head -c 300 "$tmp/out")"
        ok=0
        break
    fi
done
[ $ok -eq 1 ] && pass mkmodel_types

# the default vocabulary is ../shared's llama-spm file; the same file is
# shipped in tests/data/tokenizer: without ../shared, --vocab names it
# (gzipped there: unpacked into $tmp)
vocab=
if [ ! -f "$shared/refs/tokenizer/ggml-vocab-llama-spm.gguf" ]; then
    gzip -dc tests/data/tokenizer/ggml-vocab-llama-spm.gguf.gz >"$tmp/spm.gguf"
    vocab="--vocab $tmp/spm.gguf"
fi
if EMERGE_SHARED=$shared "$emerge" mkmodel -o "$tmp/v.gguf" --n-embd 32 \
        --n-layer 1 --n-head 2 --n-ff 32 $vocab >/dev/null 2>&1 &&
     "$emerge" inspect "$tmp/v.gguf" >"$tmp/out" 2>&1 &&
     has "$tmp/out" '[string x 32000]' && has "$tmp/out" 'tokenizer.ggml.scores' &&
     grep -qE 'token_embd\.weight +F32 +\[32, 32000\]' "$tmp/out"; then
    pass mkmodel_vocab
else
    fail mkmodel_vocab "$(head -c 300 "$tmp/out")"
fi

"$emerge" mkmodel -o "$tmp/x.gguf" --type q4_k --n-embd 64 --n-head 4 >"$tmp/out" 2>&1
rc=$?
if [ $rc -eq 2 ] && has "$tmp/out" "--type q4_k needs n_embd (64) and n_ff (2048) to be multiples of 256" &&
   [ ! -e "$tmp/x.gguf" ]; then
    pass mkmodel_errors
else
    fail mkmodel_errors "rc $rc: $(cat "$tmp/out")"
fi

# -- convert: argument errors (the conversion itself is tests/test_llama2c.c)
"$emerge" convert llama2c a.bin >"$tmp/out" 2>&1
rc1=$?
"$emerge" convert gptq a b -o c >"$tmp/out2" 2>&1
rc2=$?
"$emerge" convert llama2c "$tmp/none.bin" "$tmp/none.tok" -o "$tmp/c.gguf" >"$tmp/out3" 2>&1
rc3=$?
if [ $rc1 -eq 2 ] && has "$tmp/out" "usage: emerge convert llama2c" &&
   [ $rc2 -eq 2 ] && has "$tmp/out2" "unknown source format 'gptq'" &&
   [ $rc3 -eq 2 ] && has "$tmp/out3" "none.bin: No such file"; then
    pass convert_errors
else
    fail convert_errors "rc $rc1/$rc2/$rc3: $(cat "$tmp/out" "$tmp/out2" "$tmp/out3" | head -c 300)"
fi

# -- convert: a tiny llama2.c checkpoint written here (python3's struct)
if ! command -v python3 >/dev/null 2>&1; then
    skip convert_llama2c "python3 not installed"
else
    python3 - "$tmp" <<'PY'
import struct, sys
d = sys.argv[1]
dim, hid, nl, nh, nkv, voc, seq = 8, 16, 1, 2, 1, 260, 4
kv = dim // nh * nkv
n = voc*dim + nl*dim + nl*dim*dim + 2*nl*dim*kv + nl*dim*dim + nl*dim + 3*nl*dim*hid + dim
with open(d + "/m.bin", "wb") as f:
    f.write(struct.pack("7i", dim, hid, nl, nh, nkv, voc, seq))
    f.write(struct.pack("%df" % n, *[0.001 * i for i in range(n)]))
with open(d + "/t.bin", "wb") as f:
    f.write(struct.pack("i", 8))
    for i in range(voc):
        t = {0: b"<unk>", 1: b"\n<s>\n", 2: b"\n</s>\n"}.get(i, b"<0x%02X>" % (i - 3) if i < 259 else b" hi")
        f.write(struct.pack("fi", -i, len(t)) + t)
PY
    if "$emerge" convert llama2c "$tmp/m.bin" "$tmp/t.bin" -o "$tmp/c.gguf" >"$tmp/out" 2>&1 &&
       has "$tmp/out" "dim 8, hidden 16, 1 layers, 2 heads (1 kv), vocab 260 (shared classifier)" &&
       "$emerge" inspect "$tmp/c.gguf" >"$tmp/out" 2>&1 &&
       has "$tmp/out" 'general.name                                 string  "llama2.c m"' &&
       has "$tmp/out" '[string x 260] "<unk>", "<s>", "</s>"' &&
       grep -qE 'blk\.0\.attn_k\.weight +F32 +\[8, 4\]' "$tmp/out" &&
       grep -qE 'output\.weight +F32 +\[8, 260\]' "$tmp/out"; then
        pass convert_llama2c
    else
        fail convert_llama2c "$(head -c 400 "$tmp/out")"
    fi
fi
