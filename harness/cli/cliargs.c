/*
 * cliargs.c - getopt_long for every emerge command (see cliargs.h): the
 * option table with --help added, the short-option string made from it,
 * and the messages for what getopt_long refuses.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "harness/cli/cliargs.h"

static const struct option help_opt = {"help", no_argument, NULL, 'h'};

static size_t count_opts(const struct option *o)
{
    size_t n = 0;
    while (o && o[n].name)
        n++;
    return n;
}

/* c->opts plus --help, ended by {0}. */
static struct option *long_opts(const cli_cmd *c)
{
    size_t n = count_opts(c->opts);
    struct option *o = em_calloc(n + 2, sizeof *o);
    if (n)
        memcpy(o, c->opts, n * sizeof *o);
    o[n] = help_opt;
    return o;
}

/* "+:" or ":" (no messages from getopt: ours name the command), then
 * each option whose val is a letter, with ':' when it takes a value. */
static char *short_opts(const struct option *o, int options_first)
{
    em_buf b = {0};
    em_buf_puts(&b, options_first ? "+:" : ":");
    for (; o->name; o++)
        if (o->val > 0 && o->val < 128 && isalnum(o->val)) {
            em_buf_putc(&b, (char)o->val);
            if (o->has_arg == required_argument)
                em_buf_putc(&b, ':');
        }
    return em_buf_take(&b);
}

int cli_usage_error(const cli_cmd *c, int with_help, const char *fmt, ...)
{
    va_list ap;
    const char *sp = *c->name ? " " : "";     /* "" : emerge itself */
    fprintf(stderr, "emerge%s%s: ", sp, c->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (with_help)
        fputs(c->help, stderr);
    else
        fprintf(stderr, "(see 'emerge%s%s --help')\n", sp, c->name);
    return CLI_BAD;
}

/* The long options that an abbreviation like "--mo" could mean. */
static void list_matches(em_buf *b, const struct option *o, const char *arg)
{
    size_t n = strcspn(arg, "=");
    for (; o->name; o++)
        if (!strncmp(o->name, arg, n))
            em_buf_printf(b, "%s--%s", b->len ? ", " : "", o->name);
}

/* What getopt_long refused ('?' or ':'), said with the command's name.
 * arg is the word it was looking at; optopt is 0 for a long option it
 * does not know (or cannot tell from an abbreviation), else the option's
 * val. */
static int refused(const cli_cmd *c, const struct option *o, int ret,
                   const char *arg)
{
    if (ret == ':')
        return cli_usage_error(c, 0, "option '%s' needs a value", arg);
    if (optopt && !strncmp(arg, "--", 2) && strchr(arg, '='))
        return cli_usage_error(c, 0, "option '%.*s' takes no value",
                               (int)strcspn(arg, "="), arg);
    if (optopt)
        return cli_usage_error(c, 0, "unknown option '-%c'", optopt);
    em_buf m = {0};
    list_matches(&m, o, arg + 2);
    if (m.len > 0)
        cli_usage_error(c, 0, "ambiguous option '%s' (%s)", arg, m.s);
    else
        cli_usage_error(c, 0, "unknown option '%s'", arg);
    em_buf_free(&m);
    return CLI_BAD;
}

int cli_parse(const cli_cmd *c, int argc, char **argv, cli_opt_fn fn,
              void *ctx, int *first)
{
    struct option *lo = long_opts(c);
    char *so = short_opts(lo, c->options_first);
    int rc = CLI_OK, ret;
    optind = 0;     /* glibc: start afresh (a command may parse twice) */
    opterr = 0;
    while (rc == CLI_OK && (ret = getopt_long(argc, argv, so, lo, NULL)) != -1) {
        if (ret == 'h') {
            fputs(c->help, stdout);
            rc = CLI_HELP;
        } else if (ret == '?' || ret == ':') {
            rc = refused(c, lo, ret, argv[optind - 1]);
        } else if (fn(ctx, ret, optarg) != 0) {
            rc = CLI_BAD;
        }
    }
    *first = optind;
    free(so);
    free(lo);
    return rc;
}

int cli_exit(int parsed)
{
    return parsed == CLI_HELP ? 0 : 2;
}

int cli_long(const char *v, long *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end)
        return -1;
    *out = x;
    return 0;
}

int cli_double(const char *v, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end)
        return -1;
    *out = d;
    return 0;
}
