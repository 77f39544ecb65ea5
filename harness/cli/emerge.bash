# emerge.bash - bash completion for emerge (installed by `make install` as
# share/bash-completion/completions/emerge).
#
# Completes the commands, each command's options and the actions of a
# command that has them (tasks validate|list|show, family scan), all read
# from emerge's own help texts at completion time: `emerge --help` lists
# the commands,
# `emerge COMMAND --help` names the options and shows the actions in its
# usage lines. So the completion can never offer an option the program
# does not know. Anything else (files) is left to bash's default.

# The commands listed under "commands:" in `emerge --help`.
_emerge_commands() {
    "$1" --help 2>/dev/null |
        sed -n '/^commands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p'
}

# Every --option named in `emerge COMMAND --help`.
_emerge_options() {
    "$1" "$2" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

# The actions in usage lines such as "emerge tasks show FILE".
_emerge_actions() {
    "$1" "$2" --help 2>/dev/null |
        sed -n "s/^.*emerge $2 \([a-z][a-z0-9]*\)\( .*\)\{0,1\}$/\1/p" | sort -u
}

_emerge() {
    local cur=${COMP_WORDS[COMP_CWORD]} prog=${COMP_WORDS[0]} cmd= at=0 i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        -*) ;;
        *) cmd=${COMP_WORDS[i]}; at=$i; break ;;
        esac
    done
    COMPREPLY=()
    if [ -z "$cmd" ]; then
        COMPREPLY=($(compgen -W "$(_emerge_commands "$prog") --help --version" -- "$cur"))
    elif [ "$cmd" = help ]; then
        COMPREPLY=($(compgen -W "$(_emerge_commands "$prog")" -- "$cur"))
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_emerge_options "$prog" "$cmd") --help" -- "$cur"))
    elif [ $at -eq $((COMP_CWORD - 1)) ]; then
        COMPREPLY=($(compgen -W "$(_emerge_actions "$prog" "$cmd")" -- "$cur"))
    fi
}
complete -o default -F _emerge emerge
