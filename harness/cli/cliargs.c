/*
 * cliargs.c - option-value fetching and number reading shared by the
 * subcommand parsers (cmd_report.c, cmd_scaling.c, cmd_sweep.c). See
 * cliargs.h for why the error messages are not here.
 */
#include <stdlib.h>
#include <string.h>

#include "harness/cli/cliargs.h"

const char *cli_value(int argc, char **argv, int *i, const char *name,
                      int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n))
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n])
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
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
