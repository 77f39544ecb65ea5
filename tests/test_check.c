/*
 * test_check.c - `emerge check`: paired-bootstrap regressions between two
 * results databases, JUnit XML and Markdown output, and the errors for
 * files that are not comparable emerge stores.
 *
 * Databases are real sweeps of the synthetic backend (known accuracy per
 * size): the baseline family has its midpoint at 3e8; the "regressed"
 * family is identical except for a midpoint at 3e9, so syn-1b falls from
 * ~1.0 to ~0 while syn-10b and syn-100b stay near 1.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/common.h"
#include "harness/store.h"
#include "metrics/store_query.h"
#include "reports/check.h"
#include "tests/emerge_bin.h"
#include "tests/testlib.h"

static int have_bin(void)
{
    if (tl_sh(NULL, "test -x %s", bin()) == 0)
        return 1;
    if (em_is_ci())
        tl_fail(__FILE__, __LINE__, "%s not built", bin());
    else
        tl_skip("%s not built (make build/asan/emerge)", bin());
    return 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A synthetic sharp family with the given midpoint and model names. */
static void write_family(const char *path, const char *midpoint)
{
    char text[1024];
    snprintf(text, sizeof text,
             "name: check-family\n"
             "defaults: {backend: synthetic, shape: sharp, midpoint: %s, width: 0.5}\n"
             "members:\n"
             "  - {name: syn-100m, params: 1e8}\n"
             "  - {name: syn-1b,   params: 1e9}\n"
             "  - {name: syn-10b,  params: 1e10}\n"
             "  - {name: syn-100b, params: 1e11}\n", midpoint);
    write_text(path, text);
}

/* Sweeps sweep-arith (200 examples) and sweep-mc over the family. */
static int sweep(const char *dir, const char *fam, const char *db)
{
    return tl_sh(NULL, "%s sweep --tasks tests/data/tasks/sweep-arith.yaml,"
                 "tests/data/tasks/sweep-mc.yaml --models %s/%s --db %s/%s "
                 "--variants standard,zero_shot_cot --quiet", bin(), dir, fam,
                 dir, db);
}

static void sql(const char *path, const char *stmt)
{
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, stmt, NULL, NULL, &msg);
    CHECK_MSG(rc == SQLITE_OK, "%s: %s", stmt, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
}

/* Baseline, regressed and a copy of the baseline in a fresh directory. */
static char *dir;
static int ready;

TEST(test_setup)
{
    if (!have_bin())
        return;
    char *d = dir = tl_tmpdir();
    use_private_bin(d);
    char path[512];
    snprintf(path, sizeof path, "%s/base.yaml", d);
    write_family(path, "3e8");
    snprintf(path, sizeof path, "%s/worse.yaml", d);
    write_family(path, "3e9");
    CHECK_INT(sweep(d, "base.yaml", "base.sqlite"), 0);
    CHECK_INT(sweep(d, "worse.yaml", "worse.sqlite"), 0);
    CHECK_INT(tl_sh(NULL, "cp %s/base.sqlite %s/copy.sqlite", d, d), 0);
    ready = 1;
}

static const report_check_row *find_row(const report_check *c, const char *task,
                                        const char *variant, const char *model)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->rows[i].task, task) && !strcmp(c->rows[i].variant, variant) &&
            !strcmp(c->rows[i].model, model))
            return &c->rows[i];
    return NULL;
}

static int run_check(const char *base, const char *cur, double tol,
                     report_check *c)
{
    store_query *qb = NULL, *qn = NULL;
    em_err err = {{0}};
    report_check_opts o;
    report_check_defaults(&o);
    o.tolerance = tol;
    int rc = -1;
    if (store_query_open(base, &qb, &err) == 0 &&
        store_query_open(cur, &qn, &err) == 0)
        rc = report_check_run(qb, qn, &o, c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    store_query_close(qb);
    store_query_close(qn);
    return rc;
}


/* The planted regression: syn-1b drops from ~1 to ~0 on both tasks and
 * variants; the large models, equal in both families, do not. */
TEST(test_planted_regression)
{
    char b[512], w[512];
    snprintf(b, sizeof b, "%s/base.sqlite", dir);
    snprintf(w, sizeof w, "%s/worse.sqlite", dir);
    report_check c;
    if (run_check(b, w, 0, &c) != 0)
        return;
    CHECK_INT(c.n, 2 * 4 + 2 * 4);  /* 2 tasks x 2 variants x 4 models */
    const char *tasks[] = {"sweep-arith", "sweep-mc"};
    const char *vars[] = {"standard", "zero_shot_cot"};
    for (int t = 0; t < 2; t++) {
        for (int v = 0; v < 2; v++) {
            const report_check_row *r = find_row(&c, tasks[t], vars[v], "syn-1b");
            CHECK(r != NULL);
            if (!r)
                continue;
            CHECK_MSG(r->regression, "%s/%s syn-1b: %.3f -> %.3f CI [%.3f, %.3f]",
                      tasks[t], vars[v], r->base, r->cur, r->lo, r->hi);
            CHECK(r->base - r->cur > 0.3);
            CHECK(r->hi < 0);
            CHECK_INT(r->n, t == 0 ? 200 : 120);
            r = find_row(&c, tasks[t], vars[v], "syn-100b");
            CHECK(r && !r->regression);
        }
    }
    CHECK(c.n_regressions >= 4);
    report_check_free(&c);
    /* A tolerance above the drop lets it pass. */
    if (run_check(b, w, 1.0, &c) != 0)
        return;
    CHECK_INT(c.n_regressions, 0);
    report_check_free(&c);
    /* The same database against itself: nothing. */
    if (run_check(b, b, 0, &c) != 0)
        return;
    CHECK_INT(c.n_regressions, 0);
    for (int i = 0; i < c.n; i++)
        CHECK_NEAR(c.rows[i].diff, 0, 0);
    report_check_free(&c);
}

/* Noise within the CI: the copy differs from the baseline by two
 * examples flipped wrong and one flipped right in syn-10b's arithmetic
 * (200 examples); the paired bootstrap must not call that a regression,
 * while ten flipped examples in the same cell are one. */
TEST(test_noise_not_flagged)
{
    char b[512], c_[512];
    snprintf(b, sizeof b, "%s/base.sqlite", dir);
    snprintf(c_, sizeof c_, "%s/copy.sqlite", dir);
    const char *cell = "FROM models m, tasks t WHERE m.name = 'syn-10b' AND "
                       "t.name = 'sweep-arith'";
    char stmt[1024];
    snprintf(stmt, sizeof stmt,
             "UPDATE scores SET value = 0 WHERE metric = 'exact_match' AND "
             "variant = 'standard' AND example_id IN ('q000','q001') AND "
             "(model_id, task_id) IN (SELECT m.id, t.id %s);"
             "UPDATE scores SET value = 1 - value WHERE metric = 'exact_match' "
             "AND variant = 'zero_shot_cot' AND example_id = 'q002' AND "
             "(model_id, task_id) IN (SELECT m.id, t.id %s);", cell, cell);
    sql(c_, stmt);
    report_check c;
    if (run_check(b, c_, 0, &c) != 0)
        return;
    const report_check_row *r = find_row(&c, "sweep-arith", "standard", "syn-10b");
    CHECK(r != NULL);
    if (r) {
        CHECK_NEAR(r->diff, -0.01, 1e-12);
        CHECK(!r->regression);
        CHECK(r->hi >= 0);
    }
    CHECK_INT(c.n_regressions, 0);
    report_check_free(&c);

    snprintf(stmt, sizeof stmt,
             "UPDATE scores SET value = 0 WHERE metric = 'exact_match' AND "
             "variant = 'standard' AND example_id < 'q010' AND "
             "(model_id, task_id) IN (SELECT m.id, t.id %s);", cell);
    sql(c_, stmt);
    if (run_check(b, c_, 0, &c) != 0)
        return;
    r = find_row(&c, "sweep-arith", "standard", "syn-10b");
    CHECK(r && r->regression);
    CHECK_INT(c.n_regressions, 1);
    report_check_free(&c);
    /* ... unless the tolerance is above the 5-point drop. */
    if (run_check(b, c_, 0.06, &c) != 0)
        return;
    CHECK_INT(c.n_regressions, 0);
    report_check_free(&c);
}

/* Only examples both databases scored are compared. */
TEST(test_paired_subset)
{
    char b[512], s[512];
    snprintf(b, sizeof b, "%s/base.sqlite", dir);
    snprintf(s, sizeof s, "%s/subset.sqlite", dir);
    CHECK_INT(tl_sh(NULL, "cp %s %s", b, s), 0);
    sql(s, "DELETE FROM scores WHERE example_id >= 'q100'");
    report_check c;
    if (run_check(b, s, 0, &c) != 0)
        return;
    const report_check_row *r = find_row(&c, "sweep-arith", "standard", "syn-1b");
    CHECK(r && r->n == 100);
    r = find_row(&c, "sweep-mc", "standard", "syn-1b");
    CHECK(r && r->n == 100);
    CHECK_INT(c.n_regressions, 0);
    report_check_free(&c);
    /* A cell whose example ids match none of the baseline's: compared on
     * nothing, never a regression, reported as such (skipped in JUnit). */
    sql(s, "UPDATE scores SET example_id = 'x' || example_id WHERE model_id = "
           "(SELECT id FROM models WHERE name = 'syn-1b') AND variant = 'standard'"
           " AND task_id = (SELECT id FROM tasks WHERE name = 'sweep-arith')");
    char *out = NULL;
    int rc = tl_sh(&out, "%s check --baseline %s --db %s --junit %s/sub.xml",
                   bin(), b, s, dir);
    CHECK_INT(rc, 0);
    CHECK_HAS(out, "no shared examples");
    CHECK(!strstr(out, "nan"));
    free(out);
    char *xml = NULL, p[512];
    snprintf(p, sizeof p, "%s/sub.xml", dir);
    em_err err;
    CHECK_INT(em_read_file(p, &xml, NULL, &err), 0);
    CHECK_HAS(xml, "skipped=\"1\"");
    CHECK_HAS(xml, "<skipped message=\"no shared examples\"/>");
    free(xml);
}

/* The CLI: exit codes, table, JUnit XML (parsed by Python's xml.etree
 * with names that need escaping) and Markdown. */
TEST(test_cli_outputs)
{
    char *out = NULL;
    int rc = tl_sh(&out, "%s check --baseline %s/base.sqlite --db "
                   "%s/base.sqlite", bin(), dir, dir);
    CHECK_INT(rc, 0);
    CHECK_HAS(out, "0 regressions");
    free(out);

    /* A model name that needs escaping everywhere. */
    char w[512];
    snprintf(w, sizeof w, "%s/worse-esc.sqlite", dir);
    CHECK_INT(tl_sh(NULL, "cp %s/worse.sqlite %s", dir, w), 0);
    CHECK_INT(tl_sh(NULL, "cp %s/base.sqlite %s/base-esc.sqlite", dir, dir), 0);
    const char *ren = "UPDATE models SET name = 'syn<1b>&\"q''|x\x01' "
                      "WHERE name = 'syn-1b'";
    sql(w, ren);
    char bp[512];
    snprintf(bp, sizeof bp, "%s/base-esc.sqlite", dir);
    sql(bp, ren);
    rc = tl_sh(&out, "%s check --baseline %s --db %s --junit %s/j.xml "
               "--markdown %s/s.md", bin(), bp, w, dir, dir);
    CHECK_INT(rc, 1);
    CHECK_HAS(out, "REGRESSION");
    free(out);
    rc = tl_sh(&out, "python3 -c \"import sys, xml.etree.ElementTree as E; "
               "r = E.parse(sys.argv[1]).getroot(); s = r.find('testsuite'); "
               "cs = s.findall('testcase'); "
               "f = [c for c in cs if c.find('failure') is not None]; "
               "print(len(cs), len(f), s.get('failures')); "
               "print(*sorted(set(c.get('name') for c in f)), sep=chr(10))\" %s/j.xml", dir);
    if (rc == 127) {
        tl_skip("python3 missing");
    } else {
        CHECK_INT(rc, 0);
        CHECK_HAS(out, "16 ");
        CHECK_HAS(out, "syn<1b>&\"q'|x\xEF\xBF\xBD");
    }
    free(out);
    char *md = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/s.md", dir);
    em_err err;
    CHECK_INT(em_read_file(path, &md, NULL, &err), 0);
    CHECK_HAS(md, "regressions found");
    CHECK_HAS(md, "syn&lt;1b&gt;&amp;\"q'\\|x");
    CHECK_HAS(md, "**regression**");
    free(md);
}

/* Files that are not comparable emerge stores: exit 2, a clear message. */
TEST(test_cli_errors)
{
    char *out = NULL;
    char p[512];
    snprintf(p, sizeof p, "%s/text.sqlite", dir);
    write_text(p, "this is not a database, just some text that is long enough "
                  "to fill a header of one hundred bytes for SQLite to read it.");
    CHECK_INT(tl_sh(&out, "%s check --baseline %s/base.sqlite --db %s 2>&1",
                    bin(), dir, p), 2);
    CHECK_HAS(out, "text.sqlite: not an SQLite database");
    free(out);

    CHECK_INT(tl_sh(&out, "%s check --baseline %s/nope.sqlite --db "
                    "%s/base.sqlite 2>&1", bin(), dir, dir), 2);
    CHECK_HAS(out, "nope.sqlite: no such database");
    free(out);
    CHECK(tl_sh(NULL, "test -e %s/nope.sqlite", dir) != 0);

    snprintf(p, sizeof p, "%s/other.sqlite", dir);
    sql(p, "CREATE TABLE notes(x TEXT)");
    CHECK_INT(tl_sh(&out, "%s check --baseline %s --db %s/base.sqlite 2>&1",
                    bin(), p, dir), 2);
    CHECK_HAS(out, "other.sqlite: not an emerge results database");
    free(out);

    snprintf(p, sizeof p, "%s/v9.sqlite", dir);
    CHECK_INT(tl_sh(NULL, "cp %s/base.sqlite %s", dir, p), 0);
    sql(p, "PRAGMA user_version = 9");
    CHECK_INT(tl_sh(&out, "%s check --baseline %s/base.sqlite --db %s 2>&1",
                    bin(), dir, p), 2);
    char want[128];
    snprintf(want, sizeof want, "v9.sqlite: schema version 9, this emerge "
             "reads version %d", STORE_SCHEMA_VERSION);
    CHECK_HAS(out, want);
    free(out);

    /* No task in common. */
    snprintf(p, sizeof p, "%s/mc-only.sqlite", dir);
    CHECK_INT(tl_sh(NULL, "%s sweep --tasks tests/data/tasks/sweep-mc.yaml "
                    "--models %s/base.yaml --db %s --quiet", bin(), dir, p), 0);
    snprintf(p, sizeof p, "%s/arith-only.sqlite", dir);
    CHECK_INT(tl_sh(NULL, "%s sweep --tasks tests/data/tasks/sweep-arith.yaml "
                    "--models %s/base.yaml --db %s --quiet", bin(), dir, p), 0);
    CHECK_INT(tl_sh(&out, "%s check --baseline %s/mc-only.sqlite --db %s 2>&1",
                    bin(), dir, p), 2);
    CHECK_HAS(out, "share no (task, variant, model)");
    free(out);

    CHECK_INT(tl_sh(&out, "%s check --db %s/base.sqlite 2>&1", bin(), dir), 2);
    CHECK_HAS(out, "--baseline and --db are required");
    free(out);
    CHECK_INT(tl_sh(&out, "%s check --baseline %s/base.sqlite --db "
                    "%s/base.sqlite --level 95 2>&1", bin(), dir, dir), 2);
    CHECK_HAS(out, "--level must be between 0 and 1");
    free(out);
}

/* A check leaves a database as it found it: no -wal/-shm files beside a
 * baseline (it may be committed), and odd characters in the path work. */
TEST(test_read_only)
{
    char *out = NULL;
    CHECK_INT(tl_sh(NULL, "cp %s/base.sqlite '%s/we?ird#%%20.sqlite'", dir, dir), 0);
    int rc = tl_sh(&out, "%s check --baseline '%s/we?ird#%%20.sqlite' --db "
                   "%s/base.sqlite 2>&1", bin(), dir, dir);
    CHECK_INT(rc, 0);
    CHECK_HAS(out, "16 compared, 0 regressions");
    free(out);
    CHECK_INT(tl_sh(NULL, "ls %s | grep -q -- '-wal\\|-shm'", dir), 1);
}

/* examples/ci: the committed baseline matches a fresh sweep of the
 * replayed family, and pointing ci-1b at ci-100m's recorded answers is a
 * regression the example job reports through its exit status and JUnit. */
TEST(test_ci_example)
{
    char *out = NULL;
    int rc = tl_sh(&out, "EMERGE_BIN=%s sh examples/ci/ci.sh %s/ci 2>&1", bin(), dir);
    CHECK_MSG(rc == 0, "ci.sh exit %d: %s", rc, out ? out : "");
    CHECK_HAS(out, "6 compared, 0 regressions");
    free(out);
    CHECK_INT(tl_sh(NULL, "test -s %s/ci/junit.xml && test -s %s/ci/summary.md "
                    "&& test -s %s/ci/report/index.html", dir, dir, dir), 0);
    CHECK_INT(tl_sh(NULL, "cp -r examples/ci %s/ci2 && sed -i "
                    "'s|replay/ci-1b.jsonl|replay/ci-100m.jsonl|' %s/ci2/family.yaml",
                    dir, dir), 0);
    rc = tl_sh(&out, "EMERGE_CI_DIR=%s/ci2 EMERGE_BIN=%s sh examples/ci/ci.sh "
               "%s/ci2/out 2>&1", dir, bin(), dir);
    CHECK_INT(rc, 1);
    CHECK_HAS(out, "REGRESSION");
    free(out);
    char *xml = NULL, path[512];
    snprintf(path, sizeof path, "%s/ci2/out/junit.xml", dir);
    em_err err;
    CHECK_INT(em_read_file(path, &xml, NULL, &err), 0);
    CHECK_HAS(xml, "name=\"ci-1b\" time=\"0\">\n      <failure");
    free(xml);
}

int main(void)
{
    RUN(test_setup);
    if (!ready)
        return tl_summary();
    RUN(test_planted_regression);
    RUN(test_noise_not_flagged);
    RUN(test_paired_subset);
    RUN(test_cli_outputs);
    RUN(test_cli_errors);
    RUN(test_read_only);
    RUN(test_ci_example);
    if (dir)
        tl_sh(NULL, "rm -rf '%s'", dir);
    free(dir);
    free(private_bin);
    return tl_summary();
}
