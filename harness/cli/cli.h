/*
 * cli.h - the subcommands of the emerge CLI.
 *
 * Each subcommand is `int cmd_<name>(int argc, char **argv)` (argv[0] is
 * the subcommand name) returning the process exit status: 0 success,
 * 1 a negative finding (e.g. `emerge check` found a regression), 2 error.
 * Subcommands print their own errors to stderr and never call exit().
 */
#ifndef EMERGE_CLI_H
#define EMERGE_CLI_H

typedef struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} cli_command;

#endif
