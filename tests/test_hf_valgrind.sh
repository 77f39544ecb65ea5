#!/bin/sh
# tests/test_hf_valgrind.sh - the Hugging Face directory tests (test_hf.c:
# the safetensors reader on hostile and damaged headers, config.json,
# tokenizer.json, the tensor maps) under valgrind --leak-check=full.
# Built without sanitizers (-O1 -g) from the sources they need only, as
# test_task_valgrind.sh does. EMERGE_BIN (the ASan emerge) serves the
# convert hf round trip, which runs as a child process valgrind does not
# follow.
set -u
name=hf_valgrind
if ! command -v valgrind >/dev/null 2>&1; then
    echo "SKIP $name: valgrind is not installed (make deps installs it)"
    exit 0
fi
CC=${CC:-cc}
dir=$(mktemp -d "${TMPDIR:-/tmp}/emerge-vg-XXXXXX") || { echo "FAIL $name: mktemp"; exit 1; }
trap 'rm -rf "$dir"' EXIT
flags="-I. -D_GNU_SOURCE -DPCRE2_CODE_UNIT_WIDTH=8 -std=c11 -O1 -g -Wall -Wextra -Werror -fno-strict-aliasing"
objs=""
for src in base/*.c backends/engine/*.c tests/testlib.c tests/hf_write.c \
           tests/hf_tok_write.c tests/test_hf.c; do
    obj="$dir/$(echo "$src" | tr / _).o"
    if ! $CC $flags -c "$src" -o "$obj" 2>"$dir/cc.log"; then
        echo "FAIL $name: cannot compile $src: $(head -3 "$dir/cc.log")"
        exit 1
    fi
    objs="$objs $obj"
done
if ! $CC -o "$dir/test_hf" $objs -lcjson -lyaml -lpcre2-8 -lcrypto -lm -lpthread 2>"$dir/cc.log"; then
    echo "FAIL $name: cannot link: $(head -3 "$dir/cc.log")"
    exit 1
fi
if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        "$dir/test_hf" >"$dir/out.log" 2>&1; then
    echo "PASS $name ($(tail -1 "$dir/out.log" | tr -d '#'))"
else
    echo "FAIL $name: $(grep -m3 -E '==[0-9]+==|FAIL' "$dir/out.log" | tr '\n' ' ')"
fi
