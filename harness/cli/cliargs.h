/*
 * cliargs.h - the command line of every emerge command and sub-command,
 * through getopt_long: options, --help/-h, and the messages for what does
 * not parse; plus reading a number from an option's value.
 *
 * Owns: the one place that turns argv into options and operands, so that
 * every command answers --help the same way (its help text on stdout,
 * exit 0), every unknown option is named with its command (exit 2), and
 * "--name value", "--name=value", "-x value" and options after operands
 * ("emerge serve M.gguf --port 0") work everywhere.
 *
 * Each command keeps one help text (a string): --help prints it, and the
 * man page is made from that output (tools/man-include.sh), so the two
 * cannot drift apart.
 */
#ifndef EMERGE_CLIARGS_H
#define EMERGE_CLIARGS_H

#include <getopt.h>
#include <stdio.h>

/* What a command's parse ended in: go on, help printed (exit 0), or a
 * usage error already reported on stderr (exit 2). */
enum { CLI_OK = 0, CLI_HELP = 1, CLI_BAD = 2 };

typedef struct cli_cmd {
    const char *name;           /* as messages show it: "tasks show" */
    const char *help;           /* the whole help text, ends with '\n' */
    const struct option *opts;  /* without help; {0} ends it; may be NULL.
                                   A val below 128 is also the short option */
    int options_first;          /* options only before the first operand
                                   (a command that dispatches on an action) */
} cli_cmd;

/* Called for each option in order: key is its struct option val, v its
 * argument (NULL for a flag). Returns 0, or -1 after printing a message
 * on stderr (the parse then ends in CLI_BAD). */
typedef int (*cli_opt_fn)(void *ctx, int key, const char *v);

/* Parses argv[1..argc) (argv[0] is the command's own word). Operands are
 * left in argv[*first..argc), in order. --help/-h prints c->help on stdout
 * and returns CLI_HELP; an unknown option, a missing or unexpected value
 * or a -1 from fn returns CLI_BAD after a message naming the option and
 * the command. */
int cli_parse(const cli_cmd *c, int argc, char **argv, cli_opt_fn fn,
              void *ctx, int *first);

/* The exit status for a parse that did not end in CLI_OK. */
int cli_exit(int parsed);

/* "emerge NAME: MSG" on stderr, then the help text too when with_help
 * (missing operands: the user needs the synopsis). Returns CLI_BAD. */
int cli_usage_error(const cli_cmd *c, int with_help, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The whole of v as a base-10 long (strtol: leading blanks and a sign are
 * accepted, out-of-range values saturate); -1 when v is empty or has
 * trailing characters. No message. */
int cli_long(const char *v, long *out);

/* The whole of v as a double (strtod, so "nan" and "inf" parse: callers
 * that want a finite number check for themselves); -1 when v is empty or
 * has trailing characters. No message. */
int cli_double(const char *v, double *out);

#endif
