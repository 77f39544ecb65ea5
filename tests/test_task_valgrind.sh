#!/bin/sh
# tests/test_task_valgrind.sh - the task-file tests under valgrind.
#
# ASan cannot see every misuse valgrind can (uninitialised reads in
# particular), so test_task is also built without sanitizers (-O1 -g) and
# run under valgrind --leak-check=full. Only the sources the test needs are
# compiled, into a private archive, so this stays well under a minute and
# does not depend on the release build being current.
# Prints PASS/FAIL/SKIP lines for tests/run.sh. Run from the repository root.
set -u
name=task_valgrind
if ! command -v valgrind >/dev/null 2>&1; then
    echo "SKIP $name: valgrind is not installed (make deps installs it)"
    exit 0
fi
CC=${CC:-cc}
dir=$(mktemp -d "${TMPDIR:-/tmp}/emerge-vg-XXXXXX") || { echo "FAIL $name: mktemp"; exit 1; }
trap 'rm -rf "$dir"' EXIT
flags="-I. -D_GNU_SOURCE -DPCRE2_CODE_UNIT_WIDTH=8 -std=c11 -O1 -g -Wall -Wextra -Werror"
objs=""
for src in base/common.c base/yamldoc.c harness/template.c harness/task*.c \
           metrics/*.c; do
    obj="$dir/$(echo "$src" | tr / _).o"
    if ! $CC $flags -c "$src" -o "$obj" 2>"$dir/cc.log"; then
        echo "FAIL $name: cannot compile $src: $(head -3 "$dir/cc.log")"
        exit 1
    fi
    objs="$objs $obj"
done
ar rcs "$dir/lib.a" $objs
libs="-lcjson -lyaml -lpcre2-8 -lsqlite3 -lcurl -lcrypto -lm -lpthread"
# Should the metrics grow dependencies elsewhere, fall back to the whole
# release library (slower: it may have to be built first).
if ! $CC $flags -o "$dir/test_task" tests/test_task.c tests/testlib.c "$dir/lib.a" \
        $libs 2>"$dir/cc.log" &&
   ! { make -s build/rel/libemerge.a >"$dir/make.log" 2>&1 &&
       $CC $flags -o "$dir/test_task" tests/test_task.c tests/testlib.c \
           build/rel/libemerge.a $libs 2>"$dir/cc.log"; }; then
    echo "FAIL $name: cannot link test_task: $(head -3 "$dir/cc.log" "$dir/make.log" 2>/dev/null)"
    exit 1
fi
if valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        "$dir/test_task" >"$dir/out.log" 2>&1 && ! grep -q '^FAIL' "$dir/out.log"; then
    echo "PASS $name ($(grep -c '^PASS' "$dir/out.log") test_task tests, no valgrind errors)"
else
    echo "FAIL $name: valgrind reported errors or a test failed:"
    grep -v '^PASS' "$dir/out.log" | head -40
    exit 1
fi
