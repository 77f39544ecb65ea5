#!/bin/sh
# test_layers.sh - the floor plan holds: every folder uses only folders
# below it, in the order the Makefile's LAYERS states, and no two files use
# each other.
#
# Two views of "uses", because either alone can be fooled:
#   includes  every #include "dir/file.h" in a layer's .c/.h/.cu names a
#             header in its own folder or in a folder listed earlier;
#   symbols   every external symbol an object file of libemerge takes from
#             another object file (nm: undefined here, defined there) comes
#             from its own folder or an earlier one, and the file-to-file
#             graph of those uses has no circle (tsort finds them).
# The symbol view needs the objects of the build under test: the folder of
# EMERGE_BIN (build/asan for `make test`).
set -u
cd "$(dirname "$0")/.." || exit 2

layers=$(make -s --no-print-directory layers) || { echo "FAIL layers: make layers"; exit 1; }
objdir=$(dirname "${EMERGE_BIN:-build/asan/emerge}")
rank_of() { # folder -> index in LAYERS, or nothing
    i=0; for l in $layers; do [ "$l" = "$1" ] && { echo $i; return; }; i=$((i+1)); done
}
pass=0; fail=0
ok()  { echo "PASS layers_$1"; pass=$((pass+1)); }
bad() { echo "FAIL layers_$1"; fail=$((fail+1)); }

# --- includes ----------------------------------------------------------
up=$(for l in $layers; do
        r=$(rank_of "$l")
        for f in "$l"/*.c "$l"/*.h "$l"/*.cu; do
            [ -f "$f" ] || continue
            grep -n '^#include "' "$f" | sed 's/^\([0-9]*\):#include "\([^"]*\)".*/\1 \2/' |
            while read -r line inc; do
                d=$(dirname "$inc"); ri=$(rank_of "$d")
                if [ -z "$ri" ]; then echo "$f:$line includes $inc (not in LAYERS)"
                elif [ "$ri" -gt "$r" ]; then echo "$f:$line includes $inc ($d is above $l)"; fi
            done
        done
     done)
if [ -z "$up" ]; then ok includes_run_down; else echo "$up"; bad includes_run_down; fi

# --- symbols -----------------------------------------------------------
if ! ls "$objdir"/base/*.o >/dev/null 2>&1; then
    echo "FAIL layers_symbols: no objects under $objdir (build it first)"; exit 1
fi
edges=$(for l in $layers; do
            for o in "$objdir/$l"/*.o; do
                f=${o#"$objdir"/}; f=${f%.o}
                # an object left by a file since moved or removed is not code
                [ -f "$o" ] && [ -f "$f.c" ] || continue
                nm -g --defined-only "$o" | awk -v f="$f" 'NF==3 {print "D", $3, f}'
                nm -g -u "$o" | awk -v f="$f" '{print "U", $NF, f}'
            done
        done | awk '$1=="D" {def[$2]=$3; next}
                    {use[n++]=$2" "$3}
                    END {for (i=0;i<n;i++) {split(use[i],a," ");
                         if ((a[1] in def) && def[a[1]]!=a[2]) print a[2], def[a[1]], a[1]}}' |
        sort -u)
upsym=$(echo "$edges" | while read -r from to sym; do
            [ -n "$from" ] || continue
            rf=$(rank_of "$(dirname "$from")"); rt=$(rank_of "$(dirname "$to")")
            [ "$rt" -gt "$rf" ] && echo "$from uses $sym from $to"
        done)
if [ -z "$upsym" ]; then ok symbols_run_down; else echo "$upsym"; bad symbols_run_down; fi

loops=$(echo "$edges" | awk 'NF==3 {print $1, $2}' | sort -u | tsort 2>&1 >/dev/null)
if [ -z "$loops" ]; then ok no_circles; else echo "$loops"; bad no_circles; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
