#!/bin/sh
# tools/man-include.sh EMERGE - the COMMANDS section of the man page, as a
# help2man --include file: one subsection per command listed by
# `EMERGE --help`, holding that command's own --help text verbatim.
# help2man reads only the top-level --help and --version; this is how the
# man page documents every subcommand from the same help texts.
set -u
bin=${1:?usage: tools/man-include.sh EMERGE}
cmds=$("$bin" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p')
[ -n "$cmds" ] || { echo "man-include: '$bin --help' lists no commands" >&2; exit 1; }
echo '[COMMANDS]'
for c in $cmds; do
    help=$("$bin" "$c" --help) || {
        echo "man-include: '$bin $c --help' failed" >&2; exit 1; }
    printf '.SS "emerge %s"\n.nf\n' "$c"
    # roff: a backslash is \e; a line may not start with a dot or quote
    printf '%s\n' "$help" | sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"
    printf '.fi\n'
done
