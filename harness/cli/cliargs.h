/*
 * cliargs.h - the small option-parsing steps every emerge subcommand
 * repeats: fetching an option's value and reading a number from it.
 *
 * Messages stay with the callers: each subcommand words its errors its own
 * way ("emerge check: --level ...", "emerge: --seed ..."), so these helpers
 * only say whether a value is there and whether it parses.
 */
#ifndef EMERGE_CLIARGS_H
#define EMERGE_CLIARGS_H

/* "--name value" or "--name=value": the value, advancing *i past what it
 * consumed; NULL when argv[*i] is not that option (a longer option that
 * merely starts with name is not it). When argv[*i] is the option but no
 * value follows, returns NULL and sets *missing to 1 (never clears it). */
const char *cli_value(int argc, char **argv, int *i, const char *name,
                      int *missing);

/* The whole of v as a base-10 long (strtol: leading blanks and a sign are
 * accepted, out-of-range values saturate); -1 when v is empty or has
 * trailing characters. No message. */
int cli_long(const char *v, long *out);

/* The whole of v as a double (strtod, so "nan" and "inf" parse: callers
 * that want a finite number check for themselves); -1 when v is empty or
 * has trailing characters. No message. */
int cli_double(const char *v, double *out);

#endif
