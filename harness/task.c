/*
 * task.c - task files: loading and validating the YAML schema of
 * tasks/README.md, reading example data (inline, JSONL, JSON), building
 * the prompts every variant sends, and extracting/normalising answers.
 *
 * Loading is strict on purpose: a task that loads is a task whose every
 * prompt can be rendered, so a sweep never fails hours in on a typo. Every
 * message names the file and line:column (or the data file and line).
 */
#include "harness/task.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "harness/retrieval.h"
#include "harness/task_bigbench.h"
#include "harness/template.h"
#include "base/yamldoc.h"
#include "metrics/metric.h"

/* Record roles and the keys a `fields:` map may name. */
enum { ROLE_ID, ROLE_INPUT, ROLE_TARGET, ROLE_CHOICES, ROLE_SCORES,
       ROLE_RATIONALE, N_ROLES };
static const char *const role_names[] = {
    "id", "input", "target", "choices", "target_scores", "rationale", NULL};

static const char *const top_keys[] = {
    "name", "description", "keywords", "type", "examples", "data", "fields",
    "template", "choice_format", "continuation_prefix", "few_shot", "stop",
    "max_tokens", "answer", "metrics", "preferred_metric", "random_baseline",
    "low_score", "high_score", "variants", "retrieval", "shuffle", NULL};
static const char *const few_shot_keys[] = {
    "k", "seed", "separator", "example_template", "shots", "shots_data",
    "split", NULL};
static const char *const answer_keys[] = {"pattern", "match", "normalize", NULL};
static const char *const variant_keys[] = {
    "name", "kind", "instruction", "template", "example_template", "k",
    "cot_trigger", "answer_trigger", "max_tokens", "self_consistency", NULL};
static const char *const sc_keys[] = {"samples", "temperature", "top_p", NULL};
static const char *const type_names[] = {
    "generate", "multiple_choice", "target_logprob", NULL};
static const char *const kind_names[] = {
    "standard", "cot", "zero_shot_cot", "retrieval", NULL};
static const char *const retrieval_keys[] = {
    "corpus", "k", "template", "query", "separator", NULL};
static const char *const norm_names[] = {
    "strip", "case", "punctuation", "articles", "number", NULL};

#define DEFAULT_MAX_TOKENS 32
#define DEFAULT_COT_MAX_TOKENS 256
#define DEFAULT_COT_ANSWER "So the answer is"
#define DEFAULT_ZS_TRIGGER "Let's think step by step."
#define DEFAULT_ZS_ANSWER "Therefore, the answer is"

typedef struct loader {
    const char *path;
    ydoc_node *root;
    task *t;
    em_buf bytes;                /* everything the hash covers */
    const char *role_key[N_ROLES];
    em_err *err;
} loader;

/* ------------------------------------------------------------------ */
/* Freeing                                                            */

static void strs_free(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void example_free(task_example *e)
{
    free(e->id);
    free(e->input);
    strs_free(e->targets, e->n_targets);
    strs_free(e->choices, e->n_choices);
    free(e->choice_scores);
    free(e->rationale);
    strs_free(e->field_keys, e->n_fields);
    strs_free(e->field_vals, e->n_fields);
    free(e->where);
}

static void examples_free(task_example *v, int n)
{
    for (int i = 0; i < n; i++)
        example_free(&v[i]);
    free(v);
}

static void variant_free(task_variant *v)
{
    free(v->name);
    free(v->instruction);
    free(v->template);
    free(v->example_template);
    free(v->cot_trigger);
    free(v->answer_trigger);
}

void task_free(task *t)
{
    if (!t)
        return;
    free(t->path);
    free(t->name);
    free(t->description);
    strs_free(t->keywords, t->n_keywords);
    free(t->template);
    examples_free(t->examples, t->n_examples);
    examples_free(t->shots, t->n_shots);
    free(t->few_shot.separator);
    free(t->few_shot.example_template);
    strs_free(t->stop, t->n_stop);
    free(t->answer.pattern);
    strs_free(t->metrics, t->n_metrics);
    free(t->preferred_metric);
    for (int i = 0; i < t->n_variants; i++)
        variant_free(&t->variants[i]);
    free(t->variants);
    free(t->choice_format);
    free(t->continuation_prefix);
    pcre2_code_free(t->answer_re);
    free(t->prefix);
    free(t->output_stop);
    retr_spec_free(t->retrieval);
    free(t);
}

/* ------------------------------------------------------------------ */
/* Records: YAML or JSON objects to task_example                      */

/* YAML scalars become JSON strings, except plain canonical integers
 * (so `target: 2` can index choices) and plain nulls. */
static cJSON *ynode_json(const ydoc_node *n)
{
    if (n->kind == YDOC_SCALAR) {
        if (ydoc_is_null(n))
            return cJSON_CreateNull();
        const char *s = n->str + (n->str[0] == '-');
        int canon = n->plain && *s && (s[0] != '0' || !s[1]);
        for (const char *p = s; canon && *p; p++)
            canon = isdigit((unsigned char)*p) != 0;
        long long v;
        if (canon && n->len < 16 && !ydoc_parse_int(n->str, &v))
            return cJSON_CreateNumber((double)v);
        return cJSON_CreateString(n->str);
    }
    cJSON *o = n->kind == YDOC_SEQ ? cJSON_CreateArray() : cJSON_CreateObject();
    for (int i = 0; i < n->n; i++) {
        cJSON *c = ynode_json(n->items[i]);
        if (n->kind == YDOC_SEQ)
            cJSON_AddItemToArray(o, c);
        else
            cJSON_AddItemToObject(o, n->keys[i]->str, c);
    }
    return o;
}

/* Text of a scalar JSON value (string, number, bool), else NULL. */
static char *json_text(const cJSON *v)
{
    if (cJSON_IsString(v))
        return em_strdup(v->valuestring);
    if (cJSON_IsBool(v))
        return em_strdup(cJSON_IsTrue(v) ? "true" : "false");
    if (!cJSON_IsNumber(v))
        return NULL;
    char buf[64];
    double x = v->valuedouble;
    if (x == floor(x) && fabs(x) < 1e15) {
        snprintf(buf, sizeof buf, "%.0f", x);
        return em_strdup(buf);
    }
    /* The shortest form that reads back as the same double: 0.1 stays
     * "0.1" rather than "0.10000000000000001". */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    return em_strdup(buf);
}

/* A scalar as a one-item list, or a non-empty list of scalars. */
static int json_strs(const cJSON *v, char ***out, int *n)
{
    char *one = json_text(v);
    if (one) {
        *out = em_malloc(sizeof **out);
        (*out)[0] = one;
        *n = 1;
        return 0;
    }
    if (!cJSON_IsArray(v))
        return -1;
    int m = cJSON_GetArraySize(v), i = 0;
    *out = em_calloc((size_t)(m ? m : 1), sizeof **out);
    *n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, v) {
        char *s = json_text(c);
        if (!s) {
            strs_free(*out, i);
            *out = NULL;
            return -1;
        }
        (*out)[i++] = s;
    }
    *n = i;
    return 0;
}

static const char *role_desc(const loader *L, int role, char *buf, size_t n)
{
    if (!strcmp(L->role_key[role], role_names[role]))
        snprintf(buf, n, "'%s'", role_names[role]);
    else
        snprintf(buf, n, "'%s' (mapped to %s)", L->role_key[role], role_names[role]);
    return buf;
}

static int rec_error(loader *L, const char *where, const char *fmt, const char *a,
                     const char *b)
{
    (void)L;
    char msg[EM_ERR_MAX];
    snprintf(msg, sizeof msg, fmt, a, b);
    return em_errorf(L->err, "%s: %s", where, msg);
}

/* Resolves one multiple-choice target (text first, then 0-based index). */
static int mc_target_index(const task_example *e, const cJSON *v)
{
    char *s = json_text(v);
    int found = -1;
    for (int i = 0; s && i < e->n_choices && found < 0; i++)
        if (!strcmp(e->choices[i], s))
            found = i;
    free(s);
    if (found < 0 && cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
        v->valuedouble >= 0 && v->valuedouble < e->n_choices)
        found = (int)v->valuedouble;
    return found;
}

/* Marks target v of a multiple-choice record as a correct choice. */
static int mc_mark(loader *L, const char *where, task_example *e, const cJSON *v)
{
    int k = mc_target_index(e, v);
    if (k >= 0) {
        e->choice_scores[k] = 1;
        return 0;
    }
    char *txt = json_text(v);
    rec_error(L, where, "target '%s' is neither one of the choices nor a choice index%s",
              txt ? txt : "(not a string)", "");
    free(txt);
    return -1;
}

static int rec_scores(loader *L, const cJSON *sc, const char *where,
                      task_example *e)
{
    char d[128];
    role_desc(L, ROLE_SCORES, d, sizeof d);
    if (!cJSON_IsObject(sc))
        return rec_error(L, where, "field %s must be a mapping of choice to score%s", d, "");
    int m = cJSON_GetArraySize(sc);
    e->choices = em_calloc((size_t)(m ? m : 1), sizeof *e->choices);
    e->choice_scores = em_calloc((size_t)(m ? m : 1), sizeof *e->choice_scores);
    const cJSON *c;
    cJSON_ArrayForEach(c, sc) {
        double x;
        char *txt = json_text(c);
        int bad = !txt || ydoc_parse_num(txt, &x);
        free(txt);
        if (bad)
            return rec_error(L, where, "target_scores value of '%s' must be a number%s",
                             c->string, "");
        e->choices[e->n_choices] = em_strdup(c->string);
        e->choice_scores[e->n_choices++] = x;
    }
    return 0;
}

static int rec_choices(loader *L, const cJSON *r, const char *where, task_example *e)
{
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(r, L->role_key[ROLE_CHOICES]);
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(r, L->role_key[ROLE_SCORES]);
    const cJSON *tg = cJSON_GetObjectItemCaseSensitive(r, L->role_key[ROLE_TARGET]);
    char d[128], d2[128];
    if (ch && sc)
        return rec_error(L, where, "give either %s (with a target) or %s, not both",
                         role_desc(L, ROLE_CHOICES, d, sizeof d),
                         role_desc(L, ROLE_SCORES, d2, sizeof d2));
    if (sc) {
        if (rec_scores(L, sc, where, e))
            return -1;
    } else if (!ch || cJSON_IsNull(ch)) {
        return rec_error(L, where, "multiple_choice record has no choices: no field %s or %s",
                         role_desc(L, ROLE_CHOICES, d, sizeof d),
                         role_desc(L, ROLE_SCORES, d2, sizeof d2));
    } else if (json_strs(ch, &e->choices, &e->n_choices) || !cJSON_IsArray(ch)) {
        return rec_error(L, where, "field %s must be a list of strings%s",
                         role_desc(L, ROLE_CHOICES, d, sizeof d), "");
    }
    if (e->n_choices < 2)
        return rec_error(L, where, "a multiple_choice record needs at least 2 choices, "
                         "%s has %s", role_desc(L, sc ? ROLE_SCORES : ROLE_CHOICES, d, sizeof d),
                         e->n_choices ? "one" : "none");
    if (sc)
        return 0;
    if (!tg)
        return rec_error(L, where, "record has no field %s%s",
                         role_desc(L, ROLE_TARGET, d, sizeof d), "");
    e->choice_scores = em_calloc((size_t)e->n_choices, sizeof *e->choice_scores);
    if (cJSON_IsArray(tg) && cJSON_GetArraySize(tg) == 0)
        return rec_error(L, where, "field %s is an empty list%s",
                         role_desc(L, ROLE_TARGET, d, sizeof d), "");
    const cJSON *c;
    if (!cJSON_IsArray(tg))
        return mc_mark(L, where, e, tg);
    cJSON_ArrayForEach(c, tg)
        if (mc_mark(L, where, e, c))
            return -1;
    return 0;
}

/* Targets of a multiple-choice example: the choices with the top score. */
static void mc_targets(task_example *e)
{
    double best = -INFINITY;
    for (int i = 0; i < e->n_choices; i++)
        if (e->choice_scores[i] > best)
            best = e->choice_scores[i];
    e->targets = em_calloc((size_t)e->n_choices, sizeof *e->targets);
    for (int i = 0; i < e->n_choices; i++)
        if (e->choice_scores[i] == best)
            e->targets[e->n_targets++] = em_strdup(e->choices[i]);
}

static int rec_fields(loader *L, const cJSON *r, const char *where, task_example *e)
{
    int m = cJSON_GetArraySize(r);
    e->field_keys = em_calloc((size_t)(m ? m : 1), sizeof *e->field_keys);
    e->field_vals = em_calloc((size_t)(m ? m : 1), sizeof *e->field_vals);
    const cJSON *c;
    cJSON_ArrayForEach(c, r) {
        char *v = json_text(c);
        if (!v)
            continue;
        e->field_keys[e->n_fields] = em_strdup(c->string);
        e->field_vals[e->n_fields++] = v;
    }
    (void)L;
    (void)where;
    return 0;
}

static int rec_text(loader *L, const cJSON *r, int role, const char *where,
                    int required, char **out)
{
    char d[128];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, L->role_key[role]);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return rec_error(L, where, "record has no field %s%s",
                             role_desc(L, role, d, sizeof d), "");
        return 0;
    }
    *out = json_text(v);
    if (!*out)
        return rec_error(L, where, "field %s must be a string%s",
                         role_desc(L, role, d, sizeof d), "");
    return 0;
}

static int record_to_example(loader *L, const cJSON *r, const char *where,
                             const char *id_prefix, int index, task_example *e)
{
    memset(e, 0, sizeof *e);
    e->where = em_strdup(where);
    char d[128];
    if (!cJSON_IsObject(r))
        return em_errorf(L->err, "%s: a record must be a mapping/object", where);
    if (rec_text(L, r, ROLE_INPUT, where, 1, &e->input) ||
        rec_text(L, r, ROLE_RATIONALE, where, 0, &e->rationale) ||
        rec_text(L, r, ROLE_ID, where, 0, &e->id) || rec_fields(L, r, where, e))
        return -1;
    if (!e->id) {
        char buf[32];
        snprintf(buf, sizeof buf, "%s%d", id_prefix, index);
        e->id = em_strdup(buf);
    }
    if (L->t->type == TASK_MULTIPLE_CHOICE) {
        if (rec_choices(L, r, where, e))
            return -1;
        mc_targets(e);
        return 0;
    }
    const cJSON *tg = cJSON_GetObjectItemCaseSensitive(r, L->role_key[ROLE_TARGET]);
    if (!tg || cJSON_IsNull(tg))
        return rec_error(L, where, "record has no field %s%s",
                         role_desc(L, ROLE_TARGET, d, sizeof d), "");
    if (json_strs(tg, &e->targets, &e->n_targets))
        return rec_error(L, where, "field %s must be a string or a list of strings%s",
                         role_desc(L, ROLE_TARGET, d, sizeof d), "");
    if (!e->n_targets)
        return rec_error(L, where, "field %s is an empty list%s",
                         role_desc(L, ROLE_TARGET, d, sizeof d), "");
    return 0;
}

/* Appends one converted record to *v. */
static int add_record(loader *L, const cJSON *r, const char *where,
                      const char *id_prefix, task_example **v, int *n)
{
    *v = em_realloc(*v, (size_t)(*n + 1) * sizeof **v);
    int rc = record_to_example(L, r, where, id_prefix, *n, &(*v)[*n]);
    (*n)++; /* counted even on failure so that task_free frees it */
    return rc;
}

/* ------------------------------------------------------------------ */
/* Data files                                                         */

static char *data_path(const loader *L, const char *rel)
{
    if (rel[0] == '/')
        return em_strdup(rel);
    const char *slash = strrchr(L->path, '/');
    em_buf b = {0};
    if (slash)
        em_buf_put(&b, L->path, (size_t)(slash - L->path + 1));
    em_buf_puts(&b, rel);
    return em_buf_take(&b);
}

static int load_jsonl(loader *L, const char *file, const char *text,
                      const char *prefix, task_example **v, int *n)
{
    int line = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        const char *q = p;
        while (q < p + len && isspace((unsigned char)*q))
            q++;
        if (q < p + len) {
            const char *end = NULL;
            cJSON *r = cJSON_ParseWithLengthOpts(p, len, &end, 0);
            if (!r) {
                int col = end && end >= p ? (int)(end - p) + 1 : 1;
                return em_errorf(L->err, "%s:%d:%d: invalid JSON", file, line, col);
            }
            char where[1100];
            snprintf(where, sizeof where, "%s:%d", file, line);
            int rc = cJSON_IsObject(r) ? add_record(L, r, where, prefix, v, n)
                     : em_errorf(L->err, "%s: each line must be a JSON object", where);
            cJSON_Delete(r);
            if (rc)
                return -1;
        }
        p += len + (nl != NULL);
    }
    return 0;
}

static void offset_pos(const char *text, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        *col = text[i] == '\n' ? 1 : *col + 1;
        *line += text[i] == '\n';
    }
}

static int load_json(loader *L, const char *file, const char *text, size_t len,
                     const char *prefix, task_example **v, int *n)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        int line, col;
        offset_pos(text, end && end >= text ? (size_t)(end - text) : 0, &line, &col);
        return em_errorf(L->err, "%s:%d:%d: invalid JSON", file, line, col);
    }
    const cJSON *list = root;
    if (cJSON_IsObject(root))
        list = cJSON_GetObjectItemCaseSensitive(root, "examples");
    int rc = 0;
    if (!cJSON_IsArray(list)) {
        rc = em_errorf(L->err, "%s: expected a list of records or an object with an "
                       "'examples' list", file);
    } else {
        int i = 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, list) {
            char where[1100];
            snprintf(where, sizeof where, "%s: record %d", file, ++i);
            if ((rc = add_record(L, r, where, prefix, v, n)))
                break;
        }
    }
    cJSON_Delete(root);
    return rc;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Reads the data file named by node (a path relative to the task file). */
static int load_data_file(loader *L, const ydoc_node *node, const char *key,
                          const char *prefix, task_example **v, int *n)
{
    if (node->kind != YDOC_SCALAR || !node->len)
        return em_errorf(L->err, "%s:%d:%d: '%s' must be a file name (.jsonl or .json)",
                         L->path, node->line, node->col, key);
    int jsonl = has_suffix(node->str, ".jsonl");
    if (!jsonl && !has_suffix(node->str, ".json"))
        return em_errorf(L->err, "%s:%d:%d: '%s' file '%s' must end in .jsonl or .json",
                         L->path, node->line, node->col, key, node->str);
    char *file = data_path(L, node->str), *text = NULL;
    size_t len = 0;
    em_err e2;
    int rc = 0;
    if (em_read_file(file, &text, &len, &e2)) {
        rc = em_errorf(L->err, "%s:%d:%d: %s file cannot be read: %s", L->path,
                       node->line, node->col, key, e2.msg);
    } else {
        em_buf_put(&L->bytes, text, len);
        rc = jsonl ? load_jsonl(L, file, text, prefix, v, n)
                   : load_json(L, file, text, len, prefix, v, n);
        if (!rc && !*n)
            rc = em_errorf(L->err, "%s:%d:%d: %s file '%s' holds no records", L->path,
                           node->line, node->col, key, file);
    }
    free(text);
    free(file);
    return rc;
}

static int load_inline(loader *L, const ydoc_node *list, const char *key,
                       const char *prefix, task_example **v, int *n)
{
    if (list->kind != YDOC_SEQ)
        return em_errorf(L->err, "%s:%d:%d: '%s' must be a list of mappings, got %s",
                         L->path, list->line, list->col, key, ydoc_kind_name(list->kind));
    if (!list->n)
        return em_errorf(L->err, "%s:%d:%d: '%s' is empty", L->path, list->line,
                         list->col, key);
    for (int i = 0; i < list->n; i++) {
        const ydoc_node *it = list->items[i];
        char where[1100];
        snprintf(where, sizeof where, "%s:%d:%d", L->path, it->line, it->col);
        if (it->kind != YDOC_MAP)
            return em_errorf(L->err, "%s: '%s' item %d must be a mapping, got %s",
                             where, key, i + 1, ydoc_kind_name(it->kind));
        cJSON *r = ynode_json(it);
        int rc = add_record(L, r, where, prefix, v, n);
        cJSON_Delete(r);
        if (rc)
            return -1;
    }
    return 0;
}

/* Example ids are how the store and few-shot seeding tell examples apart,
 * so they must be unique. Sorting pointers keeps the check O(n log n). */
static int cmp_example_id(const void *a, const void *b)
{
    const task_example *x = *(task_example *const *)a, *y = *(task_example *const *)b;
    return strcmp(x->id, y->id);
}

static int check_unique_ids(loader *L, task_example *v, int n)
{
    task_example **p = em_malloc((size_t)(n ? n : 1) * sizeof *p);
    for (int i = 0; i < n; i++)
        p[i] = &v[i];
    qsort(p, (size_t)n, sizeof *p, cmp_example_id);
    int rc = 0;
    for (int i = 1; i < n && !rc; i++)
        if (!strcmp(p[i - 1]->id, p[i]->id)) {
            task_example *a = p[i - 1] < p[i] ? p[i - 1] : p[i];
            task_example *b = p[i - 1] < p[i] ? p[i] : p[i - 1];
            rc = em_errorf(L->err, "%s: duplicate example id '%s' (also at %s)",
                           b->where, b->id, a->where);
        }
    free(p);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Top level: metadata, fields, data                                  */

static int load_meta(loader *L)
{
    task *t = L->t;
    const ydoc_node *r = L->root, *nm = ydoc_get(r, "name");
    if (!nm)
        return em_errorf(L->err, "%s:%d:%d: missing required field 'name'", L->path,
                         r->line, r->col);
    if (ydoc_get_str(L->path, r, "name", &t->name, L->err))
        return -1;
    if (!*t->name)
        return em_errorf(L->err, "%s:%d:%d: 'name' must not be empty", L->path,
                         nm->line, nm->col);
    if (ydoc_get_str(L->path, r, "description", &t->description, L->err) ||
        ydoc_get_strs(L->path, r, "keywords", 0, &t->keywords, &t->n_keywords, L->err))
        return -1;
    const ydoc_node *ty = ydoc_get(r, "type");
    t->type = TASK_GENERATE;
    if (!ty)
        return 0;
    for (int i = 0; type_names[i]; i++)
        if (ty->kind == YDOC_SCALAR && !strcmp(ty->str, type_names[i])) {
            t->type = (task_type)i;
            return 0;
        }
    const char *s = ty->kind == YDOC_SCALAR ? ydoc_suggest(ty->str, type_names) : NULL;
    return em_errorf(L->err, "%s:%d:%d: 'type' must be one of generate, multiple_choice, "
                     "target_logprob, got '%s'%s%s%s", L->path, ty->line, ty->col,
                     ty->kind == YDOC_SCALAR ? ty->str : ydoc_kind_name(ty->kind),
                     s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
}

static int load_fields(loader *L)
{
    for (int i = 0; i < N_ROLES; i++)
        L->role_key[i] = role_names[i];
    const ydoc_node *f = ydoc_get(L->root, "fields");
    if (!f)
        return 0;
    if (f->kind != YDOC_MAP)
        return em_errorf(L->err, "%s:%d:%d: 'fields' must be a mapping of role to "
                         "record key, got %s", L->path, f->line, f->col,
                         ydoc_kind_name(f->kind));
    if (ydoc_check_keys(L->path, f, role_names, "'fields' (roles are id, input, "
                        "target, choices, target_scores, rationale)", L->err))
        return -1;
    for (int i = 0; i < f->n; i++) {
        const ydoc_node *v = f->items[i];
        if (v->kind != YDOC_SCALAR || !v->len)
            return em_errorf(L->err, "%s:%d:%d: 'fields.%s' must name a record key",
                             L->path, v->line, v->col, f->keys[i]->str);
        for (int j = 0; j < N_ROLES; j++)
            if (!strcmp(f->keys[i]->str, role_names[j]))
                L->role_key[j] = v->str;
    }
    return 0;
}

static int load_examples(loader *L)
{
    task *t = L->t;
    const ydoc_node *ex = ydoc_get(L->root, "examples"), *da = ydoc_get(L->root, "data");
    if (ex && da) {
        const ydoc_node *k = ydoc_key(L->root, "data");
        return em_errorf(L->err, "%s:%d:%d: give either 'examples' or 'data', not both",
                         L->path, k->line, k->col);
    }
    if (!ex && !da)
        return em_errorf(L->err, "%s:%d:%d: missing required field 'examples' "
                         "(inline list) or 'data' (a .jsonl/.json file)", L->path,
                         L->root->line, L->root->col);
    if (ex && load_inline(L, ex, "examples", "", &t->examples, &t->n_examples))
        return -1;
    if (da && load_data_file(L, da, "data", "", &t->examples, &t->n_examples))
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Template validation                                                */

static const char *const builtin_fields[] = {
    "id", "input", "target", "choices", "rationale", NULL};

static int example_has_field(const task_example *e, const char *name)
{
    for (int i = 0; i < e->n_fields; i++)
        if (!strcmp(e->field_keys[i], name))
            return 1;
    return 0;
}

/* A field every record must carry: names the first record that lacks it,
 * or reports the name as unknown when no record has it. */
static int check_field(loader *L, const ydoc_node *node, const char *key,
                       const char *name)
{
    const task *t = L->t;
    int have = 0, total = t->n_examples + t->n_shots;
    const task_example *missing = NULL;
    for (int i = 0; i < total; i++) {
        const task_example *e = i < t->n_examples ? &t->examples[i]
                                                  : &t->shots[i - t->n_examples];
        if (example_has_field(e, name))
            have++;
        else if (!missing)
            missing = e;
    }
    if (!missing)
        return 0;
    if (have)
        return em_errorf(L->err, "%s: record has no field '%s' used by '%s' (%s:%d:%d)",
                         missing->where, name, key, L->path, node->line, node->col);
    const task_example *e0 = &t->examples[0];
    const char **cands = em_calloc((size_t)e0->n_fields + 6, sizeof *cands);
    int nc = 0;
    for (int i = 0; builtin_fields[i]; i++)
        cands[nc++] = builtin_fields[i];
    for (int i = 0; i < e0->n_fields; i++)
        cands[nc++] = e0->field_keys[i];
    const char *s = ydoc_suggest(name, cands);
    em_errorf(L->err, "%s:%d:%d: '%s' references unknown field '%s'%s%s%s", L->path,
              node->line, node->col, key, name, s ? " (did you mean '" : "",
              s ? s : "", s ? "'?)" : "");
    free(cands);
    return -1;
}

/* Checks that text parses and every placeholder resolves for every record.
 * choice_fmt: 1 when text is a choice_format (names choice, letter,
 * number); 2 when it is a retrieval prompt (may also name passages). */
static int check_template(loader *L, const ydoc_node *node, const char *key,
                          const char *text, int choice_fmt)
{
    char **names;
    int n;
    em_err e2;
    if (tmpl_names(text, &names, &n, &e2))
        return em_errorf(L->err, "%s:%d:%d: '%s': %s", L->path, node->line, node->col,
                         key, e2.msg);
    static const char *const fmt_names[] = {"choice", "letter", "number", NULL};
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const char *nm = names[i];
        if (choice_fmt == 2 && !strcmp(nm, "passages")) {
            continue;
        } else if (choice_fmt == 1) {
            int ok = 0;
            for (int j = 0; fmt_names[j]; j++)
                ok |= !strcmp(nm, fmt_names[j]);
            if (!ok)
                rc = em_errorf(L->err, "%s:%d:%d: '%s' references unknown field '%s' "
                               "(a choice_format may use choice, letter, number)",
                               L->path, node->line, node->col, key, nm);
        } else if (!strcmp(nm, "choices") && L->t->type != TASK_MULTIPLE_CHOICE) {
            rc = em_errorf(L->err, "%s:%d:%d: '%s' uses {{choices}} but the task type "
                           "is not multiple_choice", L->path, node->line, node->col, key);
        } else if (!strcmp(nm, "input") || !strcmp(nm, "target") ||
                   !strcmp(nm, "choices") || !strcmp(nm, "rationale") ||
                   !strcmp(nm, "id")) {
            continue;
        } else {
            rc = check_field(L, node, key, nm);
        }
    }
    tmpl_names_free(names, n);
    return rc;
}

/* Reads an optional template-valued key of map into *out and checks it
 * (mode as check_template's choice_fmt). */
static int get_template_mode(loader *L, const ydoc_node *map, const char *key,
                             const char *label, char **out, int mode)
{
    const ydoc_node *n = ydoc_get(map, key);
    if (!n)
        return 0;
    if (ydoc_get_str(L->path, map, key, out, L->err))
        return -1;
    return check_template(L, n, label, *out, mode);
}

static int get_template(loader *L, const ydoc_node *map, const char *key,
                        const char *label, char **out)
{
    return get_template_mode(L, map, key, label, out, 0);
}

/* ------------------------------------------------------------------ */
/* few_shot, answer, metrics                                          */

static int pool_size(const task *t)
{
    return t->n_shots ? t->n_shots : t->n_examples - 1;
}

static int load_pool(loader *L, const ydoc_node *fs)
{
    task *t = L->t;
    const ydoc_node *sh = ydoc_get(fs, "shots"), *sd = ydoc_get(fs, "shots_data"),
                    *sp = ydoc_get(fs, "split");
    if ((sh != NULL) + (sd != NULL) + (sp != NULL) > 1) {
        const ydoc_node *k = ydoc_key(fs, sp ? "split" : "shots_data");
        return em_errorf(L->err, "%s:%d:%d: give only one of few_shot 'shots', "
                         "'shots_data' and 'split'", L->path, k->line, k->col);
    }
    if (sh)
        return load_inline(L, sh, "shots", "shot", &t->shots, &t->n_shots);
    if (sd)
        return load_data_file(L, sd, "shots_data", "shot", &t->shots, &t->n_shots);
    long long n = 0;
    if (!sp || ydoc_get_int(L->path, fs, "split", 1, &n, L->err))
        return sp ? -1 : 0;
    if (n >= t->n_examples)
        return em_errorf(L->err, "%s:%d:%d: few_shot 'split' is %lld but there are "
                         "only %d examples (at least one must remain to evaluate)",
                         L->path, sp->line, sp->col, n, t->n_examples);
    /* The first n records become the exemplar pool and are not evaluated. */
    t->shots = em_malloc((size_t)n * sizeof *t->shots);
    memcpy(t->shots, t->examples, (size_t)n * sizeof *t->shots);
    t->n_shots = (int)n;
    memmove(t->examples, t->examples + n, (size_t)(t->n_examples - n) * sizeof *t->examples);
    t->n_examples -= (int)n;
    return 0;
}

static int load_few_shot(loader *L)
{
    task *t = L->t;
    const ydoc_node *fs = ydoc_get(L->root, "few_shot");
    t->few_shot.separator = em_strdup("\n\n");
    if (!fs)
        return 0;
    if (fs->kind != YDOC_MAP)
        return em_errorf(L->err, "%s:%d:%d: 'few_shot' must be a mapping, got %s",
                         L->path, fs->line, fs->col, ydoc_kind_name(fs->kind));
    long long k = 0;
    if (ydoc_check_keys(L->path, fs, few_shot_keys, "'few_shot'", L->err) ||
        ydoc_get_int(L->path, fs, "k", 0, &k, L->err) ||
        ydoc_get_u64(L->path, fs, "seed", &t->few_shot.seed, L->err) ||
        ydoc_get_str(L->path, fs, "separator", &t->few_shot.separator, L->err) ||
        load_pool(L, fs))
        return -1;
    t->few_shot.k = (int)k;
    return 0;
}

/* k exemplars must fit the pool (minus the evaluated example). */
static int check_k(loader *L, const ydoc_node *node, const char *what, int k)
{
    int pool = pool_size(L->t);
    if (k <= pool)
        return 0;
    return em_errorf(L->err, "%s:%d:%d: %s k is %d but the few-shot pool has only %d "
                     "example%s%s", L->path, node->line, node->col, what, k, pool,
                     pool == 1 ? "" : "s",
                     L->t->n_shots ? "" : " (the evaluated example is never its own exemplar)");
}

static int load_templates(loader *L)
{
    task *t = L->t;
    const ydoc_node *r = L->root, *fs = ydoc_get(r, "few_shot");
    if (get_template(L, r, "template", "template", &t->template))
        return -1;
    if (!t->template)
        t->template = em_strdup("{{input}}");
    const ydoc_node *cf = ydoc_get(r, "choice_format");
    if (ydoc_get_str(L->path, r, "choice_format", &t->choice_format, L->err) ||
        (cf && check_template(L, cf, "choice_format", t->choice_format, 1)))
        return -1;
    if (!t->choice_format)
        t->choice_format = em_strdup("  {{choice}}");
    if (ydoc_get_str(L->path, r, "continuation_prefix", &t->continuation_prefix, L->err))
        return -1;
    if (!t->continuation_prefix)
        t->continuation_prefix = em_strdup(" ");
    if (fs && get_template(L, fs, "example_template", "few_shot.example_template",
                           &t->few_shot.example_template))
        return -1;
    t->few_shot.example_template_given = t->few_shot.example_template != NULL;
    if (!t->few_shot.example_template) {
        em_buf b = {0};
        em_buf_printf(&b, "%s {{target}}", t->template);
        t->few_shot.example_template = em_buf_take(&b);
    }
    if (fs && ydoc_get(fs, "k"))
        return check_k(L, ydoc_get(fs, "k"), "few_shot", t->few_shot.k);
    return 0;
}

static int load_answer(loader *L)
{
    task *t = L->t;
    const ydoc_node *a = ydoc_get(L->root, "answer");
    if (!a)
        return 0;
    if (a->kind != YDOC_MAP)
        return em_errorf(L->err, "%s:%d:%d: 'answer' must be a mapping, got %s",
                         L->path, a->line, a->col, ydoc_kind_name(a->kind));
    char *match = NULL, **norm = NULL;
    int n_norm = 0, rc = -1;
    if (ydoc_check_keys(L->path, a, answer_keys, "'answer'", L->err) ||
        ydoc_get_str(L->path, a, "pattern", &t->answer.pattern, L->err) ||
        ydoc_get_str(L->path, a, "match", &match, L->err) ||
        ydoc_get_strs(L->path, a, "normalize", 1, &norm, &n_norm, L->err))
        goto out;
    const ydoc_node *mn = ydoc_get(a, "match"), *nn = ydoc_get(a, "normalize");
    if (match && strcmp(match, "first") && strcmp(match, "last")) {
        em_errorf(L->err, "%s:%d:%d: 'match' must be first or last, got '%s'", L->path,
                  mn->line, mn->col, match);
        goto out;
    }
    t->answer.last = match && !strcmp(match, "last");
    for (int i = 0; i < n_norm; i++) {
        int j = 0;
        while (norm_names[j] && strcmp(norm_names[j], norm[i]))
            j++;
        if (!norm_names[j]) {
            const ydoc_node *it = nn->kind == YDOC_SEQ ? nn->items[i] : nn;
            const char *s = ydoc_suggest(norm[i], norm_names);
            em_errorf(L->err, "%s:%d:%d: unknown normalization '%s'%s%s%s (known: strip, "
                      "case, punctuation, articles, number)", L->path, it->line, it->col,
                      norm[i], s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
            goto out;
        }
        t->answer.norm |= 1u << j;
    }
    if (t->answer.pattern) {
        int code;
        PCRE2_SIZE off;
        t->answer_re = pcre2_compile((PCRE2_SPTR)t->answer.pattern, PCRE2_ZERO_TERMINATED,
                                     0, &code, &off, NULL);
        if (!t->answer_re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            const ydoc_node *pn = ydoc_get(a, "pattern");
            em_errorf(L->err, "%s:%d:%d: invalid answer pattern '%s': %s at offset %zu",
                      L->path, pn->line, pn->col, t->answer.pattern, (char *)msg,
                      (size_t)off);
            goto out;
        }
    }
    rc = 0;
out:
    free(match);
    strs_free(norm, n_norm);
    return rc;
}

/* Metrics that score choices by log-likelihood need a multiple_choice task. */
static int metric_needs_choices(const char *m)
{
    return !strcmp(m, "multiple_choice_grade") || !strcmp(m, "brier_score") ||
           !strcmp(m, "mc_confidence");
}

static int check_metric(loader *L, const ydoc_node *node, const char *m)
{
    if (!metric_known(m)) {
        const char *s = ydoc_suggest(m, metric_names());
        return em_errorf(L->err, "%s:%d:%d: unknown metric '%s'%s%s%s", L->path,
                         node->line, node->col, m, s ? " (did you mean '" : "",
                         s ? s : "", s ? "'?)" : "");
    }
    if (metric_needs_choices(m) && L->t->type != TASK_MULTIPLE_CHOICE)
        return em_errorf(L->err, "%s:%d:%d: metric '%s' needs a multiple_choice task",
                         L->path, node->line, node->col, m);
    return 0;
}

static int load_metrics(loader *L)
{
    task *t = L->t;
    const ydoc_node *r = L->root, *mn = ydoc_get(r, "metrics");
    if (ydoc_get_strs(L->path, r, "metrics", 1, &t->metrics, &t->n_metrics, L->err))
        return -1;
    if (mn && !t->n_metrics)
        return em_errorf(L->err, "%s:%d:%d: 'metrics' is empty", L->path, mn->line, mn->col);
    if (!mn) {
        static const char *const def[] = {"exact_match", "multiple_choice_grade",
                                          "target_logprob"};
        t->metrics = em_malloc(sizeof *t->metrics);
        t->metrics[0] = em_strdup(def[t->type]);
        t->n_metrics = 1;
    }
    for (int i = 0; i < t->n_metrics; i++) {
        const ydoc_node *it = mn ? (mn->kind == YDOC_SEQ ? mn->items[i] : mn) : r;
        if (check_metric(L, it, t->metrics[i]))
            return -1;
        for (int j = 0; j < i; j++)
            if (!strcmp(t->metrics[i], t->metrics[j]))
                return em_errorf(L->err, "%s:%d:%d: metric '%s' is listed twice",
                                 L->path, it->line, it->col, t->metrics[i]);
    }
    const ydoc_node *pn = ydoc_get(r, "preferred_metric");
    if (ydoc_get_str(L->path, r, "preferred_metric", &t->preferred_metric, L->err))
        return -1;
    if (!t->preferred_metric)
        t->preferred_metric = em_strdup(t->metrics[0]);
    for (int i = 0; i < t->n_metrics; i++)
        if (!strcmp(t->metrics[i], t->preferred_metric))
            return 0;
    em_buf b = {0};
    for (int i = 0; i < t->n_metrics; i++)
        em_buf_printf(&b, "%s%s", i ? ", " : "", t->metrics[i]);
    em_errorf(L->err, "%s:%d:%d: preferred_metric '%s' is not among metrics [%s]",
              L->path, pn->line, pn->col, t->preferred_metric, b.s);
    em_buf_free(&b);
    return -1;
}

static int load_scores(loader *L)
{
    task *t = L->t;
    const ydoc_node *r = L->root;
    if (t->type == TASK_MULTIPLE_CHOICE) {
        double s = 0;
        for (int i = 0; i < t->n_examples; i++)
            s += 1.0 / t->examples[i].n_choices;
        t->random_baseline = s / t->n_examples;
    }
    t->low_score = 0;
    t->high_score = !strcmp(t->preferred_metric, "bleu") ? 100 : 1;
    if (ydoc_get_num(L->path, r, "random_baseline", &t->random_baseline, L->err) ||
        ydoc_get_num(L->path, r, "low_score", &t->low_score, L->err) ||
        ydoc_get_num(L->path, r, "high_score", &t->high_score, L->err))
        return -1;
    if (t->low_score == t->high_score) {
        const ydoc_node *h = ydoc_get(r, "high_score");
        h = h ? h : ydoc_get(r, "low_score");
        return em_errorf(L->err, "%s:%d:%d: high_score and low_score must differ (both %g)",
                         L->path, h->line, h->col, t->low_score);
    }
    return 0;
}

static int load_generation(loader *L)
{
    task *t = L->t;
    long long mt = DEFAULT_MAX_TOKENS;
    if (ydoc_get_strs(L->path, L->root, "stop", 1, &t->stop, &t->n_stop, L->err) ||
        ydoc_get_int(L->path, L->root, "max_tokens", 1, &mt, L->err))
        return -1;
    for (int i = 0; i < t->n_stop; i++)
        if (!t->stop[i][0]) {
            const ydoc_node *s = ydoc_get(L->root, "stop");
            return em_errorf(L->err, "%s:%d:%d: 'stop' strings must not be empty",
                             L->path, s->line, s->col);
        }
    t->max_tokens = (int)mt;
    return 0;
}

/* ------------------------------------------------------------------ */
/* shuffle: SEED                                                      */

/* Evaluation order: a seeded Fisher-Yates shuffle of the evaluated
 * examples, so that `sweep --limit N` takes a sample of the data rather
 * than its first N records (held-out files are often sorted). Ids were
 * given before (record positions), so an example keeps its id and score
 * key; a split-off few-shot pool (split:) is not shuffled, and exemplars
 * drawn from the evaluated examples themselves follow the new order
 * (still deterministic). */
static int load_shuffle(loader *L)
{
    uint64_t seed;
    if (!ydoc_get(L->root, "shuffle"))
        return 0;
    if (ydoc_get_u64(L->path, L->root, "shuffle", &seed, L->err))
        return -1;
    task *t = L->t;
    uint64_t st = seed;
    for (int i = t->n_examples - 1; i > 0; i--) {
        int j = (int)(em_splitmix64(&st) % (uint64_t)(i + 1));
        task_example tmp = t->examples[i];
        t->examples[i] = t->examples[j];
        t->examples[j] = tmp;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* retrieval: {corpus, k, template, query, separator}                 */

/* Reads the corpus (its bytes join the task hash, so a changed corpus
 * is a changed task) and builds its FTS5 index once for the task. */
static int load_corpus(loader *L, const ydoc_node *cn, retr_spec *r)
{
    if (cn->kind != YDOC_SCALAR || !cn->len)
        return em_errorf(L->err, "%s:%d:%d: retrieval 'corpus' must be a file name "
                         "(.txt or .jsonl)", L->path, cn->line, cn->col);
    r->corpus = data_path(L, cn->str);
    char *text;
    size_t len;
    em_err e2;
    if (em_read_file(r->corpus, &text, &len, &e2))
        return em_errorf(L->err, "%s:%d:%d: retrieval corpus cannot be read: %s",
                         L->path, cn->line, cn->col, e2.msg);
    em_buf_put(&L->bytes, text, len);
    int rc = retr_build(r->corpus, text, len, &r->index, &e2);
    free(text);
    if (rc)
        return em_errorf(L->err, "%s:%d:%d: retrieval corpus: %s", L->path, cn->line,
                         cn->col, e2.msg);
    return 0;
}

static int load_retrieval(loader *L)
{
    const ydoc_node *rn = ydoc_get(L->root, "retrieval");
    if (!rn)
        return 0;
    if (rn->kind != YDOC_MAP)
        return em_errorf(L->err, "%s:%d:%d: 'retrieval' must be a mapping (corpus, k, "
                         "template, query, separator), got %s", L->path, rn->line,
                         rn->col, ydoc_kind_name(rn->kind));
    retr_spec *r = L->t->retrieval = em_calloc(1, sizeof *r);
    long long k = 3;
    const ydoc_node *cn = ydoc_get(rn, "corpus");
    if (ydoc_check_keys(L->path, rn, retrieval_keys, "'retrieval'", L->err) ||
        ydoc_get_int(L->path, rn, "k", 1, &k, L->err) ||
        ydoc_get_str(L->path, rn, "separator", &r->separator, L->err) ||
        get_template_mode(L, rn, "template", "retrieval.template", &r->template, 2) ||
        get_template(L, rn, "query", "retrieval.query", &r->query))
        return -1;
    if (!cn)
        return em_errorf(L->err, "%s:%d:%d: 'retrieval' needs a 'corpus' file",
                         L->path, rn->line, rn->col);
    r->k = (int)k;
    if (!r->separator)
        r->separator = em_strdup("\n");
    if (!r->query)
        r->query = em_strdup("{{input}}");
    if (!r->template) {
        em_buf b = {0};
        em_buf_printf(&b, "{{passages}}\n%s", L->t->template);
        r->template = em_buf_take(&b);
    }
    return load_corpus(L, cn, r);
}

/* ------------------------------------------------------------------ */
/* Variants                                                           */

static void variant_defaults(task_variant *v, const char *name, task_variant_kind kind)
{
    memset(v, 0, sizeof *v);
    v->name = em_strdup(name);
    v->kind = kind;
    v->few_shot_k = kind == VARIANT_ZERO_SHOT_COT ? 0 : -1;
    if (kind == VARIANT_COT || kind == VARIANT_ZERO_SHOT_COT)
        v->max_tokens = DEFAULT_COT_MAX_TOKENS;
    if (kind == VARIANT_COT)
        v->answer_trigger = em_strdup(DEFAULT_COT_ANSWER);
    if (kind == VARIANT_ZERO_SHOT_COT) {
        v->cot_trigger = em_strdup(DEFAULT_ZS_TRIGGER);
        v->answer_trigger = em_strdup(DEFAULT_ZS_ANSWER);
    }
}

void task_variant_defaults(task_variant *v, const char *name, task_variant_kind kind)
{
    variant_defaults(v, name, kind);
}

static int count_rationales(const task *t)
{
    const task_example *pool = t->n_shots ? t->shots : t->examples;
    int n = t->n_shots ? t->n_shots : t->n_examples, have = 0;
    for (int i = 0; i < n; i++)
        have += pool[i].rationale != NULL;
    return have;
}

static int variant_kind(loader *L, const ydoc_node *vn, task_variant_kind *kind)
{
    const ydoc_node *k = ydoc_get(vn, "kind");
    if (!k)
        return 0;
    for (int i = 0; kind_names[i]; i++)
        if (k->kind == YDOC_SCALAR && !strcmp(k->str, kind_names[i])) {
            *kind = (task_variant_kind)i;
            return 0;
        }
    const char *s = k->kind == YDOC_SCALAR ? ydoc_suggest(k->str, kind_names) : NULL;
    return em_errorf(L->err, "%s:%d:%d: variant 'kind' must be standard, cot or "
                     "zero_shot_cot, got '%s'%s%s%s", L->path, k->line, k->col,
                     k->kind == YDOC_SCALAR ? k->str : ydoc_kind_name(k->kind),
                     s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
}

/* self_consistency: {samples: N, temperature: T, top_p: P} on a variant.
 * It needs generation: a target_logprob task only scores. */
static int variant_sc(loader *L, const ydoc_node *vn, task_variant *v)
{
    const ydoc_node *sc = ydoc_get(vn, "self_consistency");
    if (!sc)
        return 0;
    if (sc->kind != YDOC_MAP)
        return em_errorf(L->err, "%s:%d:%d: variant '%s': 'self_consistency' must be "
                         "a mapping {samples: N, temperature: T, top_p: P}, got %s",
                         L->path, sc->line, sc->col, v->name, ydoc_kind_name(sc->kind));
    long long n = 0;
    double temp = TASK_SC_TEMPERATURE, top_p = 1;
    if (ydoc_check_keys(L->path, sc, sc_keys, "self_consistency", L->err) ||
        ydoc_get_int(L->path, sc, "samples", 1, &n, L->err) ||
        ydoc_get_num(L->path, sc, "temperature", &temp, L->err) ||
        ydoc_get_num(L->path, sc, "top_p", &top_p, L->err))
        return -1;
    if (n < 1 || n > 1000)
        return em_errorf(L->err, "%s:%d:%d: variant '%s': self_consistency 'samples' "
                         "must be 1 to 1000", L->path, sc->line, sc->col, v->name);
    if (!(temp > 0) || !(top_p > 0 && top_p <= 1))
        return em_errorf(L->err, "%s:%d:%d: variant '%s': self_consistency needs "
                         "temperature > 0 and 0 < top_p <= 1 (samples must differ)",
                         L->path, sc->line, sc->col, v->name);
    if (L->t->type == TASK_TARGET_LOGPROB)
        return em_errorf(L->err, "%s:%d:%d: variant '%s': self_consistency needs "
                         "generation; a target_logprob task only scores",
                         L->path, sc->line, sc->col, v->name);
    v->sc_samples = (int)n;
    v->sc_temperature = temp;
    v->sc_top_p = top_p;
    return 0;
}

/* Applies the settings of variant mapping vn onto v. */
static int variant_settings(loader *L, const ydoc_node *vn, task_variant *v)
{
    long long k = v->few_shot_k, mt = v->max_tokens;
    if (v->kind == VARIANT_RETRIEVAL && !L->t->retrieval)
        return em_errorf(L->err, "%s:%d:%d: variant '%s' is retrieval but the task "
                         "has no 'retrieval' corpus (add retrieval: {corpus: FILE})",
                         L->path, vn->line, vn->col, v->name);
    if (get_template_mode(L, vn, "template", "template", &v->template,
                          v->kind == VARIANT_RETRIEVAL ? 2 : 0) ||
        get_template(L, vn, "example_template", "example_template", &v->example_template) ||
        get_template(L, vn, "instruction", "instruction", &v->instruction) ||
        ydoc_get_str(L->path, vn, "cot_trigger", &v->cot_trigger, L->err) ||
        ydoc_get_str(L->path, vn, "answer_trigger", &v->answer_trigger, L->err) ||
        ydoc_get_int(L->path, vn, "k", 0, &k, L->err) ||
        ydoc_get_int(L->path, vn, "max_tokens", 1, &mt, L->err) ||
        variant_sc(L, vn, v))
        return -1;
    v->few_shot_k = (int)k;
    v->max_tokens = (int)mt;
    const ydoc_node *kn = ydoc_get(vn, "k");
    if (kn && check_k(L, kn, "variant", (int)k))
        return -1;
    if (v->kind == VARIANT_COT && !count_rationales(L->t))
        return em_errorf(L->err, "%s:%d:%d: variant '%s' is chain-of-thought but no "
                         "few-shot exemplar has a rationale (map one with fields: "
                         "{rationale: ...})", L->path, vn->line, vn->col, v->name);
    if (v->kind == VARIANT_ZERO_SHOT_COT && L->t->type == TASK_TARGET_LOGPROB)
        return em_errorf(L->err, "%s:%d:%d: variant '%s' is zero_shot_cot, which needs "
                         "generation; a target_logprob task only scores", L->path,
                         vn->line, vn->col, v->name);
    return 0;
}

static int load_variant(loader *L, const ydoc_node *vn)
{
    task *t = L->t;
    if (vn->kind != YDOC_MAP)
        return em_errorf(L->err, "%s:%d:%d: each variant must be a mapping, got %s",
                         L->path, vn->line, vn->col, ydoc_kind_name(vn->kind));
    char *name = NULL;
    if (ydoc_check_keys(L->path, vn, variant_keys, "variant", L->err) ||
        ydoc_get_str(L->path, vn, "name", &name, L->err))
        return -1;
    if (!name || !*name) {
        free(name);
        return em_errorf(L->err, "%s:%d:%d: variant without a 'name'", L->path,
                         vn->line, vn->col);
    }
    task_variant *v = (task_variant *)task_variant_find(t, name);
    task_variant_kind kind = v ? v->kind : VARIANT_STANDARD;
    if (variant_kind(L, vn, &kind)) {
        free(name);
        return -1;
    }
    if (v && kind != v->kind) {
        const ydoc_node *kn = ydoc_get(vn, "kind");
        em_errorf(L->err, "%s:%d:%d: variant '%s' is built in with kind %s; use "
                  "another name for a %s variant", L->path, kn->line, kn->col, name,
                  kind_names[v->kind], kind_names[kind]);
        free(name);
        return -1;
    }
    if (!v) {
        t->variants = em_realloc(t->variants, (size_t)(t->n_variants + 1) * sizeof *v);
        v = &t->variants[t->n_variants++];
        variant_defaults(v, name, kind);
    }
    free(name);
    return variant_settings(L, vn, v);
}

static int load_variants(loader *L)
{
    task *t = L->t;
    t->variants = em_calloc(3, sizeof *t->variants);
    variant_defaults(&t->variants[0], "standard", VARIANT_STANDARD);
    variant_defaults(&t->variants[1], "cot", VARIANT_COT);
    variant_defaults(&t->variants[2], "zero_shot_cot", VARIANT_ZERO_SHOT_COT);
    t->n_variants = 3;
    if (t->retrieval) {
        t->variants = em_realloc(t->variants, 4 * sizeof *t->variants);
        variant_defaults(&t->variants[t->n_variants++], "retrieval", VARIANT_RETRIEVAL);
    }
    const ydoc_node *vs = ydoc_get(L->root, "variants");
    if (!vs)
        return 0;
    if (vs->kind != YDOC_SEQ)
        return em_errorf(L->err, "%s:%d:%d: 'variants' must be a list of mappings, got %s",
                         L->path, vs->line, vs->col, ydoc_kind_name(vs->kind));
    for (int i = 0; i < vs->n; i++) {
        const ydoc_node *nm = ydoc_get(vs->items[i], "name");
        for (int j = 0; nm && nm->kind == YDOC_SCALAR && j < i; j++) {
            const ydoc_node *prev = ydoc_get(vs->items[j], "name");
            if (prev && prev->kind == YDOC_SCALAR && !strcmp(prev->str, nm->str))
                return em_errorf(L->err, "%s:%d:%d: duplicate variant name '%s' (first "
                                 "at line %d:%d)", L->path, nm->line, nm->col, nm->str,
                                 prev->line, prev->col);
        }
        if (load_variant(L, vs->items[i]))
            return -1;
    }
    return 0;
}

const task_variant *task_variant_find(const task *t, const char *name)
{
    for (int i = 0; i < t->n_variants; i++)
        if (!strcmp(t->variants[i].name, name))
            return &t->variants[i];
    return NULL;
}

/* ------------------------------------------------------------------ */
/* task_load                                                          */

static int load_all(loader *L)
{
    if (ydoc_check_keys(L->path, L->root, top_keys, "the task", L->err) ||
        load_meta(L) || load_fields(L) || load_examples(L))
        return -1;
    /* Ids are checked before the pool is split off, so that shots and
     * evaluated examples from one data file never share an id. */
    if (check_unique_ids(L, L->t->examples, L->t->n_examples) || load_few_shot(L) ||
        check_unique_ids(L, L->t->shots, L->t->n_shots) || load_templates(L) ||
        load_generation(L) || load_answer(L) || load_metrics(L) || load_scores(L) ||
        load_retrieval(L) || load_variants(L) || load_shuffle(L))
        return -1;
    return 0;
}

int task_load(const char *path, task **out, em_err *err)
{
    *out = NULL;
    /* BIG-bench / BIG-Bench-Hard JSON loads unmodified (task_bigbench.c). */
    if (task_bigbench_path(path))
        return task_load_bigbench(path, out, err);
    char *text;
    size_t len;
    if (em_read_file(path, &text, &len, err))
        return -1;
    loader L = {.path = path, .err = err};
    int rc = ydoc_parse(path, text, len, &L.root, err);
    if (!rc && !L.root)
        rc = em_errorf(err, "%s:1:1: empty task file", path);
    if (!rc && L.root->kind != YDOC_MAP)
        rc = em_errorf(err, "%s:%d:%d: a task file must be a mapping, got %s", path,
                       L.root->line, L.root->col, ydoc_kind_name(L.root->kind));
    if (!rc) {
        L.t = em_calloc(1, sizeof *L.t);
        L.t->path = em_strdup(path);
        /* The hash covers what the file says, not how: comments, layout
         * and key order do not make a new task version (store.h). */
        em_buf_puts(&L.bytes, "emerge task v2\n");
        ydoc_canon(L.root, &L.bytes);
        rc = load_all(&L);
    }
    if (!rc)
        em_sha256_hex(L.bytes.s, L.bytes.len, L.t->hash);
    em_buf_free(&L.bytes);
    ydoc_free(L.root);
    free(text);
    if (rc) {
        task_free(L.t);
        return -1;
    }
    *out = L.t;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Rendering                                                          */

typedef struct render_ctx {
    const task *t;
    const task_example *e;
    const char *passages; /* {{passages}} of a retrieval prompt, or NULL */
    char *choices;   /* {{choices}}, rendered on first use */
    em_err err;      /* a choice_format failure */
    int failed;
} render_ctx;

typedef struct choice_ctx {
    const char *choice;
    char letter[16], number[16];
} choice_ctx;

static const char *choice_lookup(void *p, const char *name)
{
    choice_ctx *c = p;
    if (!strcmp(name, "choice"))
        return c->choice;
    if (!strcmp(name, "letter"))
        return c->letter;
    if (!strcmp(name, "number"))
        return c->number;
    return NULL;
}

static char *render_choices(render_ctx *c)
{
    em_buf b = {0};
    for (int i = 0; i < c->e->n_choices; i++) {
        choice_ctx cc = {.choice = c->e->choices[i]};
        if (i < 26)
            snprintf(cc.letter, sizeof cc.letter, "%c", 'A' + i);
        else
            snprintf(cc.letter, sizeof cc.letter, "%d", i + 1);
        snprintf(cc.number, sizeof cc.number, "%d", i + 1);
        if (i)
            em_buf_putc(&b, '\n');
        if (tmpl_render(c->t->choice_format, choice_lookup, &cc, &b, &c->err))
            c->failed = 1;
    }
    return em_buf_take(&b);
}

static const char *lookup(void *p, const char *name)
{
    render_ctx *c = p;
    const task_example *e = c->e;
    if (!strcmp(name, "input"))
        return e->input;
    if (!strcmp(name, "target"))
        return e->n_targets ? e->targets[0] : "";
    if (!strcmp(name, "rationale"))
        return e->rationale ? e->rationale : "";
    if (!strcmp(name, "id"))
        return e->id;
    if (c->passages && !strcmp(name, "passages"))
        return c->passages;
    if (!strcmp(name, "choices")) {
        if (!c->choices)
            c->choices = render_choices(c);
        return c->choices;
    }
    for (int i = 0; i < e->n_fields; i++)
        if (!strcmp(e->field_keys[i], name))
            return e->field_vals[i];
    return NULL;
}

static int render_with(const task *t, const task_example *e, const char *text,
                       const char *passages, em_buf *out, em_err *err)
{
    render_ctx c = {.t = t, .e = e, .passages = passages};
    int rc = tmpl_render(text, lookup, &c, out, err);
    if (!rc && c.failed)
        rc = em_errorf(err, "%s", c.err.msg);
    free(c.choices);
    if (rc)
        return em_error_prefix(err, "%s: example '%s'", t->path, e->id);
    return 0;
}

static int render(const task *t, const task_example *e, const char *text, em_buf *out,
                  em_err *err)
{
    return render_with(t, e, text, NULL, out, err);
}

/* The evaluated example's own prompt. A retrieval variant searches the
 * corpus with the rendered query and renders its template (the variant's,
 * else the task's retrieval.template) with the passages. */
static int render_prompt(const task *t, const task_variant *v, int ex, em_buf *out,
                         em_err *err)
{
    const task_example *e = &t->examples[ex];
    const retr_spec *r = t->retrieval;
    if (!v || v->kind != VARIANT_RETRIEVAL)
        return render(t, e, v && v->template ? v->template : t->template, out, err);
    if (!r)
        return em_errorf(err, "%s: variant '%s' is retrieval but the task has no "
                         "'retrieval' corpus", t->path, v->name);
    em_buf q = {0};
    char *passages = NULL;
    int rc = render(t, e, r->query, &q, err);
    if (!rc && retr_passages(r->index, q.s ? q.s : "", r->k, r->separator, &passages,
                             err))
        rc = em_error_prefix(err, "%s: example '%s'", t->path, e->id);
    if (!rc)
        rc = render_with(t, e, v->template ? v->template : r->template, passages, out,
                         err);
    free(passages);
    em_buf_free(&q);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Few-shot selection                                                 */

static int variant_k(const task *t, const task_variant *v)
{
    int k = v && v->few_shot_k >= 0 ? v->few_shot_k : t->few_shot.k;
    return v && v->kind == VARIANT_ZERO_SHOT_COT && v->few_shot_k < 0 ? 0 : k;
}

int task_pick_shots(const task *t, const task_variant *v, int ex, int **idx, int *k,
                    em_err *err)
{
    *idx = NULL;
    *k = variant_k(t, v);
    if (*k == 0)
        return 0;
    const task_example *me = &t->examples[ex];
    const task_example *pool = t->n_shots ? t->shots : t->examples;
    int n = t->n_shots ? t->n_shots : t->n_examples, m = 0;
    int cot = v && v->kind == VARIANT_COT;
    int *cand = em_malloc((size_t)(n ? n : 1) * sizeof *cand);
    for (int i = 0; i < n; i++) {
        /* Never the evaluated example itself: by position in the same
         * array, and by id when the pool is separate. */
        if ((pool == t->examples && i == ex) || !strcmp(pool[i].id, me->id))
            continue;
        if (cot && !pool[i].rationale)
            continue;
        cand[m++] = i;
    }
    if (cot && !count_rationales(t)) {
        free(cand);
        return em_errorf(err, "%s: variant '%s' is chain-of-thought, but no few-shot "
                         "exemplar of task '%s' has a rationale (give records a "
                         "'rationale' field, or map one with fields: {rationale: ...})",
                         t->path, v->name, t->name);
    }
    if (m < *k) {
        free(cand);
        return em_errorf(err, "%s: variant '%s' needs %d exemplars%s but the pool has "
                         "only %d for example '%s'", t->path, v ? v->name : "standard",
                         *k, cot ? " with a rationale" : "", m, me->id);
    }
    if (t->few_shot.fixed) {
        *idx = cand; /* the first k candidates, in pool order */
        return 0;
    }
    /* Partial Fisher-Yates from a stream seeded by (task seed, example id):
     * the same example always sees the same exemplars, whatever else runs. */
    uint64_t st = em_hash64(me->id, strlen(me->id), t->few_shot.seed);
    for (int i = 0; i < *k; i++) {
        int j = i + (int)(em_splitmix64(&st) % (uint64_t)(m - i));
        int tmp = cand[i];
        cand[i] = cand[j];
        cand[j] = tmp;
    }
    *idx = cand;
    return 0;
}

/* The exemplar template a variant uses. */
static char *example_template(const task *t, const task_variant *v)
{
    if (v && v->example_template)
        return em_strdup(v->example_template);
    const char *main = v && v->template ? v->template : t->template;
    em_buf b = {0};
    if (v && v->kind == VARIANT_COT)
        em_buf_printf(&b, "%s {{rationale}} %s {{target}}.", main,
                      v->answer_trigger ? v->answer_trigger : DEFAULT_COT_ANSWER);
    else if (t->few_shot.example_template_given)
        em_buf_puts(&b, t->few_shot.example_template);
    else
        em_buf_printf(&b, "%s {{target}}", main);
    return em_buf_take(&b);
}

/* instruction + exemplars + the example's own prompt (first pass). */
static int build_prompt(const task *t, const task_variant *v, int ex, em_buf *out,
                        em_err *err)
{
    int *idx, k;
    /* A cot variant without exemplars must carry its own prompt (a model
     * trained on the scratchpad format is prompted with it zero-shot);
     * otherwise nothing would ask for a rationale. */
    if (v && v->kind == VARIANT_COT && variant_k(t, v) == 0 && !v->template)
        return em_errorf(err, "%s: variant '%s' is chain-of-thought but its k is 0 "
                         "and it has no template of its own", t->path, v->name);
    if (task_pick_shots(t, v, ex, &idx, &k, err))
        return -1;
    const char *sep = t->few_shot.separator;
    int rc = 0;
    if (t->prefix)
        em_buf_puts(out, t->prefix);
    if (v && v->instruction) {
        rc = render(t, &t->examples[ex], v->instruction, out, err);
        em_buf_puts(out, sep);
    }
    char *et = example_template(t, v);
    const task_example *pool = t->n_shots ? t->shots : t->examples;
    for (int i = 0; i < k && !rc; i++) {
        rc = render(t, &pool[idx[i]], et, out, err);
        em_buf_puts(out, sep);
    }
    free(et);
    free(idx);
    if (!rc)
        rc = render_prompt(t, v, ex, out, err);
    /* An empty cot_trigger: the template already ends with the trigger
     * (a family trained on "A: Let's think step by step."). */
    if (!rc && v && v->kind == VARIANT_ZERO_SHOT_COT && v->cot_trigger &&
        *v->cot_trigger) {
        em_buf_putc(out, ' ');
        em_buf_puts(out, v->cot_trigger);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */

static int wants_target_logprob(const task *t)
{
    for (int i = 0; i < t->n_metrics; i++)
        if (!strncmp(t->metrics[i], "target_logprob", 14))
            return 1;
    return 0;
}

static task_request *req_push(task_request **r, int *n)
{
    *r = em_realloc(*r, (size_t)(*n + 1) * sizeof **r);
    task_request *q = &(*r)[(*n)++];
    memset(q, 0, sizeof *q);
    q->choice = -2;
    return q;
}

static void req_loglik(const task *t, const char *prompt, const char *cont, int choice,
                       task_request **r, int *n)
{
    task_request *q = req_push(r, n);
    q->kind = TASK_REQ_LOGLIK;
    q->prompt = em_strdup(prompt);
    em_buf b = {0};
    em_buf_printf(&b, "%s%s", t->continuation_prefix, cont);
    q->continuation = em_buf_take(&b);
    q->choice = choice;
}

int task_build_requests(const task *t, const task_variant *v, int ex,
                        task_request **out, int *n, em_err *err)
{
    *out = NULL;
    *n = 0;
    if (ex < 0 || ex >= t->n_examples)
        return em_errorf(err, "%s: example %d out of range (0..%d)", t->path, ex,
                         t->n_examples - 1);
    task_variant_kind kind = v ? v->kind : VARIANT_STANDARD;
    if (kind == VARIANT_ZERO_SHOT_COT && t->type == TASK_TARGET_LOGPROB)
        return em_errorf(err, "%s: variant '%s' needs generation; a target_logprob task "
                         "only scores", t->path, v->name);
    em_buf p = {0};
    if (build_prompt(t, v, ex, &p, err)) {
        em_buf_free(&p);
        return -1;
    }
    const task_example *e = &t->examples[ex];
    if (t->type == TASK_TARGET_LOGPROB) {
        req_loglik(t, p.s, e->targets[0], -1, out, n);
    } else if (t->type == TASK_MULTIPLE_CHOICE &&
               (kind == VARIANT_STANDARD || kind == VARIANT_RETRIEVAL)) {
        for (int i = 0; i < e->n_choices; i++)
            req_loglik(t, p.s, e->choices[i], i, out, n);
    } else {
        task_request *q = req_push(out, n);
        q->kind = TASK_REQ_GENERATE;
        q->prompt = em_strdup(p.s);
        q->max_tokens = v && v->max_tokens > 0 ? v->max_tokens : t->max_tokens;
        if (t->type == TASK_GENERATE && kind != VARIANT_ZERO_SHOT_COT &&
            wants_target_logprob(t))
            req_loglik(t, p.s, e->targets[0], -1, out, n);
    }
    em_buf_free(&p);
    return 0;
}

int task_build_second_pass(const task *t, const task_variant *v, int ex,
                           const char *first_prompt, const char *rationale,
                           task_request *out, em_err *err)
{
    memset(out, 0, sizeof *out);
    if (!v || v->kind != VARIANT_ZERO_SHOT_COT)
        return em_errorf(err, "%s: variant '%s' has no second pass (only zero_shot_cot "
                         "variants do)", t->path, v ? v->name : "(none)");
    if (ex < 0 || ex >= t->n_examples)
        return em_errorf(err, "%s: example %d out of range", t->path, ex);
    em_buf b = {0};
    em_buf_printf(&b, "%s%s\n%s", first_prompt, rationale,
                  v->answer_trigger ? v->answer_trigger : DEFAULT_ZS_ANSWER);
    out->kind = TASK_REQ_GENERATE;
    out->prompt = em_buf_take(&b);
    out->choice = -2;
    out->max_tokens = t->max_tokens;
    return 0;
}

void task_requests_free(task_request *r, int n)
{
    for (int i = 0; i < n; i++) {
        free(r[i].prompt);
        free(r[i].continuation);
    }
    free(r);
}

/* ------------------------------------------------------------------ */
/* Answers                                                            */

/* Writes the canonical form of the number at s[*i] (already known to
 * start one) and advances *i past it. */
static void put_number(const char *s, size_t *i, em_buf *out)
{
    size_t j = *i;
    int neg = 0;
    if (s[j] == '+' || s[j] == '-')
        neg = s[j++] == '-';
    em_buf ip = {0}, fp = {0};
    while (isdigit((unsigned char)s[j]))
        em_buf_putc(&ip, s[j++]);
    /* Thousands separators: a comma followed by exactly three digits. */
    while (s[j] == ',' && isdigit((unsigned char)s[j + 1]) &&
           isdigit((unsigned char)s[j + 2]) && isdigit((unsigned char)s[j + 3]) &&
           !isdigit((unsigned char)s[j + 4])) {
        em_buf_put(&ip, s + j + 1, 3);
        j += 4;
    }
    if (s[j] == '.' && isdigit((unsigned char)s[j + 1]))
        for (j++; isdigit((unsigned char)s[j]); j++)
            em_buf_putc(&fp, s[j]);
    const char *d = ip.s;
    while (d[0] == '0' && d[1])
        d++;
    while (fp.len && fp.s[fp.len - 1] == '0')
        fp.s[--fp.len] = '\0';
    if (neg && !(d[0] == '0' && !d[1] && !fp.len))
        em_buf_putc(out, '-');
    em_buf_puts(out, d);
    if (fp.len) {
        em_buf_putc(out, '.');
        em_buf_puts(out, fp.s);
    }
    em_buf_free(&ip);
    em_buf_free(&fp);
    *i = j;
}

static char *norm_numbers(const char *s)
{
    em_buf b = {0};
    em_buf_puts(&b, "");
    for (size_t i = 0; s[i];) {
        int prev_ok = i == 0 || !(isalnum((unsigned char)s[i - 1]) || s[i - 1] == '.' ||
                                  s[i - 1] == ',');
        int sign = (s[i] == '+' || s[i] == '-') && isdigit((unsigned char)s[i + 1]);
        if (prev_ok && (isdigit((unsigned char)s[i]) || sign))
            put_number(s, &i, &b);
        else
            em_buf_putc(&b, s[i++]);
    }
    return em_buf_take(&b);
}

static int is_article(const char *w, size_t n)
{
    return (n == 1 && tolower((unsigned char)w[0]) == 'a') ||
           (n == 2 && !strncasecmp(w, "an", 2)) || (n == 3 && !strncasecmp(w, "the", 3));
}

/* Drops articles and rejoins the remaining words with single spaces. */
static char *drop_articles(const char *s)
{
    em_buf b = {0};
    em_buf_puts(&b, "");
    for (size_t i = 0; s[i];) {
        while (isspace((unsigned char)s[i]))
            i++;
        size_t st = i;
        while (s[i] && !isspace((unsigned char)s[i]))
            i++;
        if (i == st || is_article(s + st, i - st))
            continue;
        if (b.len)
            em_buf_putc(&b, ' ');
        em_buf_put(&b, s + st, i - st);
    }
    return em_buf_take(&b);
}

static char *strip(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return em_strndup(s, n);
}

/* Drops ASCII punctuation in place, except what belongs to a number: a
 * '.' or ',' between digits and a '-' sign that starts a word before a
 * digit, so "-3.5" survives while "well, -- ok." becomes "well  ok". */
static void drop_punct(char *r)
{
    char *w = r;
    for (size_t i = 0; r[i]; i++) {
        unsigned char c = (unsigned char)r[i], next = (unsigned char)r[i + 1];
        int prev_digit = i > 0 && isdigit((unsigned char)r[i - 1]);
        int in_number = ((c == '.' || c == ',') && prev_digit && isdigit(next)) ||
                        (c == '-' && isdigit(next) &&
                         (i == 0 || isspace((unsigned char)r[i - 1])));
        if (!ispunct(c) || in_number)
            *w++ = (char)c;
    }
    *w = '\0';
}

char *task_normalize(const char *s, unsigned flags)
{
    char *r = (flags & NORM_NUMBER) ? norm_numbers(s) : em_strdup(s), *tmp;
    if (flags & NORM_CASE)
        for (char *p = r; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    if (flags & NORM_PUNCT)
        drop_punct(r);
    if (flags & NORM_ARTICLES) {
        tmp = drop_articles(r);
        free(r);
        r = tmp;
    }
    if (flags & NORM_STRIP) {
        tmp = strip(r);
        free(r);
        r = tmp;
    }
    return r;
}

/* The span the pattern selects: group 1 when the pattern has groups and
 * it took part in the match, else the whole match. */
static int match_span(const task *t, const char *s, size_t *a, size_t *b)
{
    pcre2_code *re = t->answer_re;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    size_t len = strlen(s), start = 0;
    uint32_t groups = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &groups);
    int found = 0;
    while (start <= len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, len, start, 0, md, NULL);
        if (rc < 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        int g = groups >= 1 && rc >= 2 && ov[2] != PCRE2_UNSET ? 1 : 0;
        *a = ov[2 * g];
        *b = ov[2 * g + 1];
        found = 1;
        if (!t->answer.last)
            break;
        /* An empty match must still move on, or the loop never ends. */
        start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    pcre2_match_data_free(md);
    return found;
}

static char *extract_answer(const task *t, const char *output)
{
    char *raw;
    if (t->answer_re) {
        size_t a, b;
        raw = match_span(t, output, &a, &b) ? em_strndup(output + a, b - a)
                                           : em_strdup("");
    } else {
        /* No pattern: the first line of the (stripped) output. */
        while (isspace((unsigned char)*output))
            output++;
        const char *nl = strchr(output, '\n');
        char *line = em_strndup(output, nl ? (size_t)(nl - output) : strlen(output));
        raw = strip(line);
        free(line);
    }
    char *r = task_normalize(raw, t->answer.norm);
    free(raw);
    return r;
}

char *task_extract_answer(const task *t, const char *output)
{
    /* BIG-bench keeps the stop string and cuts what follows; a stop
     * string at offset 0 cuts nothing (its `index > 0`). */
    const char *cut = t->output_stop ? strstr(output, t->output_stop) : NULL;
    if (!cut || cut == output)
        return extract_answer(t, output);
    char *head = em_strndup(output, (size_t)(cut - output) + strlen(t->output_stop));
    char *r = extract_answer(t, head);
    free(head);
    return r;
}

char *task_extract_answer_variant(const task *t, const task_variant *v,
                                  const char *output)
{
    if (v && v->kind == VARIANT_COT && v->answer_trigger && *v->answer_trigger) {
        const char *last = NULL, *p = output;
        while ((p = strstr(p, v->answer_trigger)))
            last = p++;
        if (last) {
            /* The answer is the rest of the trigger's line; what follows
             * is the model running on into another exemplar. */
            const char *a = last + strlen(v->answer_trigger);
            const char *nl = strchr(a, '\n');
            char *line = em_strndup(a, nl ? (size_t)(nl - a) : strlen(a));
            char *r = task_extract_answer(t, line);
            free(line);
            return r;
        }
    }
    return task_extract_answer(t, output);
}

int task_match_choice(const task *t, int ex, const char *answer)
{
    if (ex < 0 || ex >= t->n_examples)
        return -1;
    const task_example *e = &t->examples[ex];
    for (int i = 0; i < e->n_choices; i++) {
        char *c = task_normalize(e->choices[i], t->answer.norm);
        int eq = !strcmp(c, answer);
        free(c);
        if (eq)
            return i;
    }
    /* "A", "b", "(C)", "D." name a choice by position. */
    const char *p = answer;
    p += *p == '(';
    if (isalpha((unsigned char)*p)) {
        int i = toupper((unsigned char)*p) - 'A';
        const char *q = p + 1;
        q += *q == ')' || *q == '.';
        if (!*q && i < e->n_choices && i < 26)
            return i;
    }
    return -1;
}
