/*
 * task_data.c - the examples of a YAML task: records (inline YAML mappings,
 * JSONL lines, JSON lists) turned into task_example through the task's
 * `fields:` map of roles to record keys, the data files they come from,
 * and the check that example ids are unique.
 *
 * Every data byte read joins the task hash (loader.bytes), so a changed
 * data file is a changed task. Messages name the data file and line, or
 * the task file and line:column of an inline record.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/task.h"
#include "harness/task_int.h"
#include "base/yamldoc.h"

static const char *const role_names[] = {
    "id", "input", "target", "choices", "target_scores", "rationale", NULL};

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
            task_strs_free(*out, i);
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

char *task_data_path(const loader *L, const char *rel)
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

/* Reads the data file named by node (a path relative to the task file). */
int task_data_file(loader *L, const ydoc_node *node, const char *key,
                   const char *prefix, task_example **v, int *n)
{
    if (node->kind != YDOC_SCALAR || !node->len)
        return em_errorf(L->err, "%s:%d:%d: '%s' must be a file name (.jsonl or .json)",
                         L->path, node->line, node->col, key);
    int jsonl = task_has_suffix(node->str, ".jsonl");
    if (!jsonl && !task_has_suffix(node->str, ".json"))
        return em_errorf(L->err, "%s:%d:%d: '%s' file '%s' must end in .jsonl or .json",
                         L->path, node->line, node->col, key, node->str);
    char *file = task_data_path(L, node->str), *text = NULL;
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

int task_data_inline(loader *L, const ydoc_node *list, const char *key,
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

int task_data_unique_ids(loader *L, task_example *v, int n)
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
/* fields and examples                                                */

int task_data_fields(loader *L)
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

int task_data_examples(loader *L)
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
    if (ex && task_data_inline(L, ex, "examples", "", &t->examples, &t->n_examples))
        return -1;
    if (da && task_data_file(L, da, "data", "", &t->examples, &t->n_examples))
        return -1;
    return 0;
}
