/*
 * lmeval_json.c - lm-evaluation-harness results files as scaling series
 * (see lmeval.h).
 *
 * Owns: the mapping from lm-eval's aggregated results JSON (the
 * results_<date>.json that `lm_eval --output_path` writes; keys as
 * lm_eval/evaluator.py and loggers/evaluation_tracker.py of 0.4.x write
 * them) to scaling points:
 *   task     the key under "results" (groups such as "mmlu" included)
 *   metric   "acc" of "acc,none"; variant: the filter ("" for "none",
 *            else e.g. "strict-match")
 *   score    the value; lo, hi: score -+ 1.96 * "acc_stderr,none"
 *   n        "n-samples".TASK."effective" (0 when absent)
 *   model    "model_name", else model_args' peft=/delta=/pretrained=/
 *            model=/path=/engine= (lm-eval's own order), else
 *            "config"."model"; "@REVISION" added when "config".
 *            "model_revision" (or model_args' revision=) is not "main",
 *            and a revision "stepN" is the point's training step
 *   params   --params (by MODEL@REVISION, then MODEL), else "config".
 *            "model_num_parameters" when > 0 (lm-eval's hf model writes
 *            it; API models such as local-completions do not), else,
 *            when MODEL is a local GGUF file or checkpoint directory,
 *            the count of its tensor shapes (model_count_params)
 * Metrics that "higher_is_better" marks lower-is-better (perplexities,
 * bits_per_byte) are left out: emerge's scaling analysis reads a rising
 * score as a better model. A metric without a numeric stderr ("N/A", or
 * no key) is an error naming file and key: the analysis needs its CI.
 */
#include "metrics/lmeval.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/engine/model_params.h"

/* ------------------------------------------------------------ --params */

/* "1.2e9", "160M", "1.4B": a positive finite count, or -1. */
static double parse_count(const char *s, const char *end)
{
    char buf[64], *e;
    size_t n = (size_t)(end - s);
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (!n || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    double mult = 1;
    switch (toupper((unsigned char)buf[n - 1])) {
    case 'K': mult = 1e3; break;
    case 'M': mult = 1e6; break;
    case 'B': mult = 1e9; break;
    case 'T': mult = 1e12; break;
    }
    if (mult != 1)
        buf[--n] = '\0';
    errno = 0;
    double v = strtod(buf, &e);
    if (!n || *e || errno || !isfinite(v) || v <= 0)
        return -1;
    return v * mult;
}

static void params_put(lmeval_params *p, const char *model, size_t len, double v)
{
    for (int i = 0; i < p->n; i++)
        if (strlen(p->model[i]) == len && !memcmp(p->model[i], model, len)) {
            p->params[i] = v; /* the last one given wins */
            return;
        }
    p->model = em_realloc(p->model, sizeof *p->model * (size_t)(p->n + 1));
    p->params = em_realloc(p->params, sizeof *p->params * (size_t)(p->n + 1));
    p->model[p->n] = em_strndup(model, len);
    p->params[p->n++] = v;
}

/* One "MODEL<sep>N" in [s, end); where names the source for errors. */
static int params_pair(lmeval_params *p, const char *s, const char *end,
                       char sep, const char *where, em_err *err)
{
    while (s < end && isspace((unsigned char)*s))
        s++;
    const char *eq = memchr(s, sep, (size_t)(end - s));
    if (!eq || eq == s)
        return em_errorf(err, "%s: '%.*s' is not MODEL%cPARAMS", where,
                         (int)(end - s), s, sep);
    double v = parse_count(eq + 1, end);
    if (v < 0)
        return em_errorf(err, "%s: parameter count of '%.*s': '%.*s' is not a "
                         "positive number (1.2e9, 160M, 1.4B)", where,
                         (int)(eq - s), s, (int)(end - eq - 1), eq + 1);
    params_put(p, s, (size_t)(eq - s), v);
    return 0;
}

static int params_file(lmeval_params *p, const char *path, em_err *err)
{
    char *text;
    size_t len;
    if (em_read_file(path, &text, &len, err))
        return -1;
    int rc = 0, line = 0;
    for (char *s = text; rc == 0 && s < text + len; line++) {
        char *nl = memchr(s, '\n', (size_t)(text + len - s)), where[600];
        char *end = nl ? nl : text + len;
        if (end > s && end[-1] == '\r')
            end--;
        const char *t = s;
        while (t < end && isspace((unsigned char)*t))
            t++;
        snprintf(where, sizeof where, "--params %.500s:%d", path, line + 1);
        int header = line == 0 && !strncmp(t, "model,", 6);
        if (t < end && *t != '#' && !header)
            rc = params_pair(p, t, end, ',', where, err);
        s = nl ? nl + 1 : text + len;
    }
    free(text);
    return rc;
}

int lmeval_params_add(lmeval_params *p, const char *spec, em_err *err)
{
    if (!strchr(spec, '='))
        return params_file(p, spec, err);
    for (const char *s = spec; *s;) {
        const char *comma = strchr(s, ','), *end = comma ? comma : s + strlen(s);
        if (params_pair(p, s, end, '=', "--params", err))
            return -1;
        s = comma ? comma + 1 : end;
    }
    return 0;
}

void lmeval_params_free(lmeval_params *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->model[i]);
    free(p->model);
    free(p->params);
    memset(p, 0, sizeof *p);
}

static double params_find(const lmeval_params *p, const char *model)
{
    for (int i = 0; p && i < p->n; i++)
        if (!strcmp(p->model[i], model))
            return p->params[i];
    return 0;
}

/* -------------------------------------------------------------- model */

int lmeval_is_json(const char *text, size_t len)
{
    size_t i = len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0;
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    return i < len && text[i] == '{';
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *str_of(const cJSON *v)
{
    return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

/* KEY=value in a model_args string "a=1,b=2" or dict; malloc'd or NULL. */
static char *model_arg(const cJSON *args, const char *key)
{
    if (cJSON_IsObject(args)) {
        const cJSON *v = get(args, key);
        return str_of(v) ? em_strdup(v->valuestring) : NULL;
    }
    const char *s = str_of(args);
    size_t kl = strlen(key);
    for (; s && *s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL) {
        while (*s == ' ')
            s++;
        if (!strncmp(s, key, kl) && s[kl] == '=') {
            const char *v = s + kl + 1, *e = strchr(v, ',');
            return e > v || (!e && *v) ? em_strndup(v, e ? (size_t)(e - v)
                                                          : strlen(v)) : NULL;
        }
    }
    return NULL;
}

typedef struct lm_model {
    char *name;    /* MODEL or MODEL@REVISION */
    char *bare;    /* MODEL */
    double params;
    double step;
} lm_model;

static char *model_name(const cJSON *j)
{
    static const char *keys[] = {"peft", "delta", "pretrained", "model", "path",
                                 "engine"};
    const cJSON *cfg = get(j, "config");
    if (str_of(get(j, "model_name")))
        return em_strdup(get(j, "model_name")->valuestring);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char *v = model_arg(get(cfg, "model_args"), keys[i]);
        if (v)
            return v;
    }
    return str_of(get(cfg, "model")) ? em_strdup(get(cfg, "model")->valuestring)
                                     : NULL;
}

/* The model names a local GGUF file or checkpoint directory (lm-eval's
 * pretrained=/path=): its parameters counted from the tensor shapes. */
static void count_local(lm_model *m)
{
    struct stat st;
    double total = 0, non_embd = 0;
    em_err err;
    if (stat(m->bare, &st) == 0 &&
        model_count_params(m->bare, &total, &non_embd, &err) == 0 && total > 0)
        m->params = total;
}

static int model_of(const char *path, const cJSON *j, const lmeval_opts *o,
                    lm_model *m, em_err *err)
{
    const cJSON *cfg = get(j, "config"), *np = get(cfg, "model_num_parameters");
    memset(m, 0, sizeof *m);
    if (!(m->bare = model_name(j)))
        return em_errorf(err, "%s: no model name (no 'model_name', no "
                         "pretrained=/model=/path= in 'config'.'model_args', "
                         "no 'config'.'model')", path);
    char *rev = str_of(get(cfg, "model_revision"))
                    ? em_strdup(get(cfg, "model_revision")->valuestring)
                    : model_arg(get(cfg, "model_args"), "revision");
    if (rev && strcmp(rev, "main")) {
        size_t n = strlen(m->bare) + strlen(rev) + 2;
        m->name = em_malloc(n);
        snprintf(m->name, n, "%s@%s", m->bare, rev);
        char *e;
        if (!strncmp(rev, "step", 4) && isdigit((unsigned char)rev[4]))
            m->step = strtod(rev + 4, &e);
    } else {
        m->name = em_strdup(m->bare);
    }
    free(rev);
    m->params = params_find(o->params, m->name);
    if (m->params <= 0)
        m->params = params_find(o->params, m->bare);
    if (m->params <= 0 && cJSON_IsNumber(np) && np->valuedouble > 0)
        m->params = np->valuedouble;
    if (m->params <= 0)
        count_local(m);
    if (m->params > 0)
        return 0;
    return em_errorf(err, "%s: no parameter count for model '%s' ('config'."
                     "'model_num_parameters' is %s; lm-eval's API models do "
                     "not record it; it names no local model file): give it "
                     "with --params '%s=N'", path,
                     m->name, np ? "not a positive number" : "absent", m->bare);
}

static void model_free(lm_model *m)
{
    free(m->name);
    free(m->bare);
}

/* ------------------------------------------------------------- series */

typedef struct lm_ctx {
    const char *path;
    const cJSON *root;
    const lmeval_opts *o;
    const lm_model *m;
    scaling_series *v;
    int n, cap;
} lm_ctx;

/* higher_is_better.TASK.METRIC is false (lower is better). */
static int lower_is_better(const lm_ctx *x, const char *task, const char *metric)
{
    return cJSON_IsFalse(get(get(get(x->root, "higher_is_better"), task), metric));
}

static void add_point(lm_ctx *x, const char *task, const char *metric,
                      const char *filter, double score, double se)
{
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 16;
        x->v = em_realloc(x->v, sizeof *x->v * (size_t)x->cap);
    }
    scaling_series *s = &x->v[x->n++];
    memset(s, 0, sizeof *s);
    s->task = em_strdup(task);
    s->metric = em_strdup(metric);
    s->variant = em_strdup(strcmp(filter, "none") ? filter : "");
    s->random_baseline = s->random_hi = NAN;
    s->pts = em_calloc(1, sizeof *s->pts);
    s->n = 1;
    scaling_point *p = s->pts;
    p->model = em_strdup(x->m->name);
    p->params = x->m->params;
    p->score = score;
    p->lo = score - 1.96 * se;
    p->hi = score + 1.96 * se;
    p->step = x->m->step;
    const cJSON *ns = get(get(get(x->root, "n-samples"), task), "effective");
    p->n = cJSON_IsNumber(ns) && ns->valuedouble > 0 ? (int)ns->valuedouble : 0;
}

/* One "METRIC,FILTER": value of results.TASK. */
static int add_metric(lm_ctx *x, const cJSON *task, const cJSON *v, em_err *err)
{
    const char *key = v->string, *comma = strchr(key, ',');
    if (!comma || !cJSON_IsNumber(v) || strstr(key, "_stderr,"))
        return 0; /* "alias", stderrs (read with their metric) */
    char metric[256], sekey[600];
    snprintf(metric, sizeof metric, "%.*s", (int)(comma - key), key);
    if ((x->o->metric && strcmp(x->o->metric, metric)) ||
        lower_is_better(x, task->string, metric))
        return 0;
    snprintf(sekey, sizeof sekey, "%s_stderr%s", metric, comma);
    const cJSON *se = get(task, sekey);
    if (!se)
        return em_errorf(err, "%s: results.%s: '%s' has no '%s' (its CI "
                         "comes from it; --metric or --task can leave it "
                         "out)", x->path, task->string, key, sekey);
    if (!cJSON_IsNumber(se) || !isfinite(se->valuedouble) || se->valuedouble < 0)
        return em_errorf(err, "%s: results.%s.'%s' is %s%s%s, not a standard error "
                         "(lm-eval writes \"N/A\" where it computed none, e.g. "
                         "with --bootstrap_iters 0; --metric or --task can "
                         "leave '%s' out)", x->path, task->string, sekey,
                         cJSON_IsString(se) ? "\"" : "",
                         cJSON_IsString(se) ? se->valuestring : "not a number",
                         cJSON_IsString(se) ? "\"" : "", key);
    if (!isfinite(v->valuedouble))
        return em_errorf(err, "%s: results.%s.'%s' is not a finite number",
                         x->path, task->string, key);
    add_point(x, task->string, metric, comma + 1, v->valuedouble,
              se->valuedouble);
    return 0;
}

static int add_tasks(lm_ctx *x, const cJSON *results, em_err *err)
{
    const cJSON *t, *v;
    cJSON_ArrayForEach(t, results) {
        if (x->o->task && strcmp(x->o->task, t->string))
            continue;
        if (!cJSON_IsObject(t))
            return em_errorf(err, "%s: results.%s is not an object", x->path,
                             t->string);
        cJSON_ArrayForEach(v, t)
            if (add_metric(x, t, v, err))
                return -1;
    }
    return 0;
}

static int parse_json(const char *path, const char *text, size_t len,
                      cJSON **out, em_err *err)
{
    const char *end = NULL;
    *out = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!*out)
        return em_errorf(err, "%s: not valid JSON (at byte %ld)", path,
                         end ? (long)(end - text) : 0L);
    const cJSON *r = get(*out, "results");
    if (!cJSON_IsObject(r) || !r->child) {
        cJSON_Delete(*out);
        *out = NULL;
        return em_errorf(err, "%s: no 'results' object with tasks (is this "
                         "an lm-evaluation-harness results_*.json?)", path);
    }
    return 0;
}

int lmeval_read(const char *path, const char *text, size_t len,
                const lmeval_opts *o, scaling_series **out, int *n,
                em_err *err)
{
    static const lmeval_opts none;
    cJSON *j;
    lm_model m;
    *out = NULL;
    *n = 0;
    if (!o)
        o = &none;
    if (parse_json(path, text, len, &j, err))
        return -1;
    if (model_of(path, j, o, &m, err)) {
        model_free(&m);
        cJSON_Delete(j);
        return -1;
    }
    lm_ctx x = {.path = path, .root = j, .o = o, .m = &m};
    int rc = add_tasks(&x, get(j, "results"), err);
    model_free(&m);
    cJSON_Delete(j);
    if (rc) {
        scaling_series_free(x.v, x.n);
        return -1;
    }
    *out = x.v;
    *n = x.n;
    return 0;
}
