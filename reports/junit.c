/*
 * junit.c - the `emerge check` verdict as JUnit XML, the format CI
 * systems (GitHub Actions reporters, GitLab, Jenkins) show as test results.
 *
 * One <testcase> per task x variant x model: classname "task.variant",
 * name the model. A regression is a <failure> whose message carries the
 * numbers; every string from the databases is XML-escaped.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "reports/check.h"
#include "reports/escape.h"

static void testcase(em_buf *b, const report_check_row *r,
                     const report_check_opts *o)
{
    em_buf_puts(b, "    <testcase classname=\"");
    report_xml_escape(b, r->task);
    em_buf_putc(b, '.');
    report_xml_escape(b, r->variant);
    em_buf_puts(b, "\" name=\"");
    report_xml_escape(b, r->model);
    em_buf_puts(b, "\" time=\"0\"");
    if (!r->n) {
        em_buf_puts(b, ">\n      <skipped message=\"no shared examples\"/>\n"
                    "    </testcase>\n");
        return;
    }
    if (!r->regression) {
        em_buf_puts(b, "/>\n");
        return;
    }
    em_buf_puts(b, ">\n      <failure type=\"regression\" message=\"");
    report_xml_escape(b, r->metric);
    em_buf_printf(b, " %.4f -&gt; %.4f (delta %+.4f, %g%% CI [%+.4f, %+.4f], "
                  "n=%d, tolerance %g)\">", r->base, r->cur, r->diff,
                  o->level * 100, r->lo, r->hi, r->n, o->tolerance);
    em_buf_puts(b, "task ");
    report_xml_escape(b, r->task);
    em_buf_puts(b, ", variant ");
    report_xml_escape(b, r->variant);
    em_buf_puts(b, ", model ");
    report_xml_escape(b, r->model);
    em_buf_printf(b, ": the score went from %.4f to %.4f (%s is better) over "
                  "%d shared examples; the paired bootstrap %g%% CI of the "
                  "change is [%+.4f, %+.4f]</failure>\n    </testcase>\n",
                  r->base, r->cur, r->higher_better ? "higher" : "lower", r->n,
                  o->level * 100, r->lo, r->hi);
}

int report_junit_write(const char *path, const report_check *c,
                       const report_check_opts *o, em_err *err)
{
    em_buf b = {0};
    int skipped = 0;
    for (int i = 0; i < c->n; i++)
        skipped += c->rows[i].n == 0;
    em_buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    em_buf_printf(&b, "<testsuites name=\"emerge check\" tests=\"%d\" "
                  "failures=\"%d\">\n", c->n, c->n_regressions);
    em_buf_printf(&b, "  <testsuite name=\"emerge check\" tests=\"%d\" "
                  "failures=\"%d\" errors=\"0\" skipped=\"%d\">\n",
                  c->n, c->n_regressions, skipped);
    em_buf_puts(&b, "    <properties>\n      <property name=\"baseline\" value=\"");
    report_xml_escape(&b, c->base_path);
    em_buf_puts(&b, "\"/>\n      <property name=\"new\" value=\"");
    report_xml_escape(&b, c->new_path);
    em_buf_printf(&b, "\"/>\n      <property name=\"level\" value=\"%g\"/>\n"
                  "      <property name=\"tolerance\" value=\"%g\"/>\n"
                  "    </properties>\n", o->level, o->tolerance);
    for (int i = 0; i < c->n; i++)
        testcase(&b, &c->rows[i], o);
    em_buf_puts(&b, "  </testsuite>\n</testsuites>\n");
    FILE *f = fopen(path, "w");
    if (!f) {
        em_buf_free(&b);
        return em_errorf(err, "%s: cannot write: %s", path, strerror(errno));
    }
    int bad = fwrite(b.s, 1, b.len, f) != b.len;
    bad |= fclose(f) != 0;
    em_buf_free(&b);
    return bad ? em_errorf(err, "%s: write failed", path) : 0;
}
