#!/bin/sh
# test_cli.sh - the front door: emerge's command line as a Unix tool.
#   help_commands       every command listed by `emerge --help`, and every
#                       action in its usage (tasks validate|list|show),
#                       answers --help and -h with its usage on stdout, exit 0
#   unknown_option      ... and an unknown option with exit 2 and a message
#                       naming the option and the command
#   top_level           no command: usage on stderr, exit 2; `emerge help
#                       CMD` is CMD --help
#   version             --version, -V and `version` agree and name a commit
#                       of this checkout
#   runs_version        a sweep records that string in runs.version
#   man_page            make man builds a page (help2man) that renders and
#                       documents every command
#   install             make install DESTDIR=... PREFIX=/usr puts the binary,
#                       man page, completion (and CUDA plugin, when built) in
#                       place; the installed binary runs and finds its plugin;
#                       make uninstall removes them
#   completion          the bash completion offers commands and options
# The commands are read from `emerge --help`, so a new one is checked
# without editing this file. Uses a private copy of $EMERGE_BIN (the ASan
# build): `make install` here installs that copy and never compiles.
set -u
BIN=${EMERGE_BIN:-build/asan/emerge}
if [ ! -x "$BIN" ]; then
    echo "FAIL cli: no emerge binary at $BIN"
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$BIN" "$tmp/emerge" && BIN="$tmp/emerge"
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

commands=$("$BIN" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p')
# "CMD" and "CMD ACTION" for every action in CMD's usage lines.
{
    for c in $commands; do
        echo "$c"
        "$BIN" "$c" --help 2>/dev/null |
            sed -n "s/^.*emerge $c \([a-z][a-z0-9]*\)\( .*\)\{0,1\}$/$c \1/p" | sort -u
    done
} >"$tmp/words"

# ---- --help, -h, unknown options -----------------------------------------
bad_help= bad_opt=
while read -r words; do
    for h in --help -h; do
        # shellcheck disable=SC2086  # words is "CMD" or "CMD ACTION"
        "$BIN" $words $h >"$tmp/out" 2>"$tmp/err"
        rc=$?
        if [ $rc -ne 0 ] || ! grep -q '^usage: emerge' "$tmp/out" || [ -s "$tmp/err" ]; then
            bad_help="$bad_help [$words $h: rc $rc]"
        fi
    done
    # shellcheck disable=SC2086
    "$BIN" $words --no-such-option >"$tmp/out" 2>"$tmp/err"
    rc=$?
    # named with its action (tasks show), or with the command alone where
    # the word after it is an operand (convert llama2c)
    if [ $rc -ne 2 ] || ! grep -qE "^emerge ($words|${words%% *}): unknown option '--no-such-option'" "$tmp/err"; then
        bad_opt="$bad_opt [$words: rc $rc: $(head -c 120 "$tmp/err")]"
    fi
done <"$tmp/words"
n=$(wc -l <"$tmp/words")
if [ "$n" -ge 19 ] && grep -qx 'tasks show' "$tmp/words" && [ -z "$bad_help" ]; then
    pass help_commands
else
    fail help_commands "$n commands/actions:$bad_help"
fi
if [ -z "$bad_opt" ]; then pass unknown_option; else fail unknown_option "$bad_opt"; fi

"$BIN" >"$tmp/out" 2>"$tmp/err"
rc=$?
"$BIN" help sweep >"$tmp/h1" 2>&1
"$BIN" sweep --help >"$tmp/h2" 2>&1
if [ $rc -eq 2 ] && [ ! -s "$tmp/out" ] && grep -q '^usage: emerge' "$tmp/err" &&
   cmp -s "$tmp/h1" "$tmp/h2" && "$BIN" --help | grep -q '^  sweep '; then
    pass top_level
else
    fail top_level "rc $rc, or help sweep differs from sweep --help"
fi

# ---- version -------------------------------------------------------------
v1=$("$BIN" --version) v2=$("$BIN" -V) v3=$("$BIN" version)
commit=$(printf '%s\n' "$v1" | sed -n 's/^emerge [0-9.]* (commit \([0-9a-z]*\)\(-dirty\)\{0,1\})$/\1/p')
known=1
if [ -e .git ] && command -v git >/dev/null; then
    git cat-file -e "$commit^{commit}" 2>/dev/null || known=0
fi
if [ "$v1" = "$v2" ] && [ "$v1" = "$v3" ] && [ -n "$commit" ] && [ $known -eq 1 ]; then
    pass version
else
    fail version "'$v1' / '$v2' / '$v3' (commit '$commit' known: $known)"
fi

# ---- runs.version --------------------------------------------------------
"$BIN" sweep --tasks tests/data/tasks/sweep-arith.yaml \
    --models tests/data/families/synthetic.yaml --db "$tmp/v.sqlite" \
    --limit 2 --quiet 2>"$tmp/sweep.err"
recorded=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT version FROM runs").fetchone()[0])' \
    "$tmp/v.sqlite" 2>&1)
if [ "$recorded" = "$v1" ]; then
    pass runs_version
else
    fail runs_version "recorded '$recorded', --version '$v1': $(head -c 200 "$tmp/sweep.err")"
fi

# ---- man page and install (make, without compiling: EMERGE is the copy) --
mk() { env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s --no-print-directory \
           EMERGE="$BIN" MANPAGE="$tmp/man/emerge.1" "$@"; }
if ! command -v help2man >/dev/null; then
    echo "SKIP man_page: help2man is not installed (make deps)"
    echo "SKIP install: needs the man page (help2man)"
else
    mk man >"$tmp/man.log" 2>&1
    rc=$?
    # -P-cbu: plain text, no bold/underline escapes
    groff -man -Tutf8 -P-cbu "$tmp/man/emerge.1" 2>"$tmp/groff.err" >"$tmp/man.txt"
    missing=
    for c in $commands; do
        grep -q "^ *emerge $c\$" "$tmp/man.txt" || missing="$missing $c"
    done
    if [ $rc -eq 0 ] && [ ! -s "$tmp/groff.err" ] && [ -z "$missing" ] &&
       grep -q "$commit" "$tmp/man.txt"; then
        pass man_page
    else
        fail man_page "rc $rc, not documented:$missing; $(head -c 300 "$tmp/man.log" "$tmp/groff.err")"
    fi

    root=$tmp/root
    mk install DESTDIR="$root" PREFIX=/usr >"$tmp/inst.log" 2>&1
    rc=$?
    plugin=ok
    if [ -f build/rel/libemerge_cuda.so ]; then
        got=$("$root/usr/bin/emerge" models --plugin 2>&1)
        [ "$got" = "$root/usr/lib/emerge/libemerge_cuda.so" ] || plugin="models --plugin: $got"
    fi
    if [ $rc -eq 0 ] && [ "$("$root/usr/bin/emerge" --version)" = "$v1" ] &&
       [ -f "$root/usr/share/man/man1/emerge.1" ] &&
       [ -f "$root/usr/share/bash-completion/completions/emerge" ] &&
       [ "$plugin" = ok ]; then
        mk uninstall DESTDIR="$root" PREFIX=/usr >>"$tmp/inst.log" 2>&1
        left=$(find "$root" -type f | head -5)
        if [ -z "$left" ]; then pass install; else fail install "uninstall left $left"; fi
    else
        fail install "rc $rc, $plugin: $(head -c 300 "$tmp/inst.log")"
    fi
fi

# ---- bash completion -----------------------------------------------------
if command -v bash >/dev/null; then
    got=$(bash -c '. harness/cli/emerge.bash
        t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _emerge
              echo "${COMPREPLY[*]}"; }
        t "$1" swe; t "$1" sweep --ta; t "$1" tasks sh; t "$1" serve --max-p' _ "$BIN")
    want=$(printf 'sweep\n--tasks\nshow\n--max-per-ip --max-prompts')
    if [ "$got" = "$want" ]; then pass completion; else fail completion "got '$got'"; fi
else
    echo "SKIP completion: no bash"
fi
[ $fails -eq 0 ]
