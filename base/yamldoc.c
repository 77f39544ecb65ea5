/*
 * yamldoc.c - libyaml events to a positioned node tree, plus the typed
 * accessors and "did you mean" suggestions the task loader reports with.
 */
#include "base/yamldoc.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Deeper nesting than this is not a task file; the limit keeps the
 * recursive builder's stack use bounded on hostile input. */
#define YDOC_MAX_DEPTH 64

typedef struct ydoc_ctx {
    yaml_parser_t parser;
    const char *path;
    em_err *err;
} ydoc_ctx;

static int next_event(ydoc_ctx *c, yaml_event_t *ev)
{
    if (yaml_parser_parse(&c->parser, ev))
        return 0;
    yaml_parser_t *p = &c->parser;
    const char *what = p->problem ? p->problem : "malformed YAML";
    if (p->context)
        return em_errorf(c->err, "%s:%zu:%zu: YAML syntax error: %s (%s at %zu:%zu)",
                         c->path, p->problem_mark.line + 1,
                         p->problem_mark.column + 1, what, p->context,
                         p->context_mark.line + 1, p->context_mark.column + 1);
    return em_errorf(c->err, "%s:%zu:%zu: YAML syntax error: %s", c->path,
                     p->problem_mark.line + 1, p->problem_mark.column + 1, what);
}

static ydoc_node *node_new(ydoc_kind kind, const yaml_event_t *ev)
{
    ydoc_node *n = em_calloc(1, sizeof *n);
    n->kind = kind;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    return n;
}

static void node_push(ydoc_node *n, ydoc_node *key, ydoc_node *item)
{
    n->items = em_realloc(n->items, (size_t)(n->n + 1) * sizeof *n->items);
    if (n->kind == YDOC_MAP)
        n->keys = em_realloc(n->keys, (size_t)(n->n + 1) * sizeof *n->keys);
    if (n->kind == YDOC_MAP)
        n->keys[n->n] = key;
    n->items[n->n++] = item;
}

static int build(ydoc_ctx *c, yaml_event_t *ev, ydoc_node **out, int depth);

static int build_seq(ydoc_ctx *c, ydoc_node *n, int depth)
{
    for (;;) {
        yaml_event_t ev;
        if (next_event(c, &ev))
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        ydoc_node *item;
        if (build(c, &ev, &item, depth + 1))
            return -1;
        node_push(n, NULL, item);
    }
}

static int build_map(ydoc_ctx *c, ydoc_node *n, int depth)
{
    for (;;) {
        yaml_event_t ev;
        if (next_event(c, &ev))
            return -1;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        ydoc_node *key, *val;
        if (build(c, &ev, &key, depth + 1))
            return -1;
        if (key->kind != YDOC_SCALAR) {
            em_errorf(c->err, "%s:%d:%d: mapping keys must be plain strings, got %s",
                      c->path, key->line, key->col, ydoc_kind_name(key->kind));
            ydoc_free(key);
            return -1;
        }
        ydoc_node *prev = ydoc_key(n, key->str);
        if (prev) {
            em_errorf(c->err, "%s:%d:%d: duplicate key '%s' (first at line %d:%d)",
                      c->path, key->line, key->col, key->str, prev->line, prev->col);
            ydoc_free(key);
            return -1;
        }
        if (next_event(c, &ev)) {
            ydoc_free(key);
            return -1;
        }
        if (build(c, &ev, &val, depth + 1)) {
            ydoc_free(key);
            return -1;
        }
        node_push(n, key, val);
    }
}

/* Builds the node that starts with ev (consumed) and everything under it.
 * On failure *out is NULL and nothing leaks. */
static int build(ydoc_ctx *c, yaml_event_t *ev, ydoc_node **out, int depth)
{
    *out = NULL;
    int rc = 0;
    ydoc_node *n = NULL;
    if (depth > YDOC_MAX_DEPTH) {
        rc = em_errorf(c->err, "%s:%zu:%zu: nesting deeper than %d levels",
                       c->path, ev->start_mark.line + 1,
                       ev->start_mark.column + 1, YDOC_MAX_DEPTH);
    } else if (ev->type == YAML_SCALAR_EVENT) {
        n = node_new(YDOC_SCALAR, ev);
        n->len = ev->data.scalar.length;
        n->str = em_strndup((const char *)ev->data.scalar.value, n->len);
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
        n = node_new(YDOC_SEQ, ev);
        rc = build_seq(c, n, depth);
    } else if (ev->type == YAML_MAPPING_START_EVENT) {
        n = node_new(YDOC_MAP, ev);
        rc = build_map(c, n, depth);
    } else if (ev->type == YAML_ALIAS_EVENT) {
        rc = em_errorf(c->err, "%s:%zu:%zu: YAML aliases (*%s) are not supported in task files",
                       c->path, ev->start_mark.line + 1, ev->start_mark.column + 1,
                       (const char *)ev->data.alias.anchor);
    } else {
        rc = em_errorf(c->err, "%s:%zu:%zu: unexpected YAML event", c->path,
                       ev->start_mark.line + 1, ev->start_mark.column + 1);
    }
    yaml_event_delete(ev);
    if (rc) {
        ydoc_free(n);
        return -1;
    }
    *out = n;
    return 0;
}

/* Expects an event of type want, consuming it. */
static int expect(ydoc_ctx *c, yaml_event_type_t want, yaml_event_t *ev)
{
    if (next_event(c, ev))
        return -1;
    if (ev->type == want)
        return 0;
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    yaml_event_delete(ev);
    return em_errorf(c->err, "%s:%d:%d: only one YAML document per task file",
                     c->path, line, col);
}

static int parse_stream(ydoc_ctx *c, ydoc_node **out)
{
    yaml_event_t ev;
    if (expect(c, YAML_STREAM_START_EVENT, &ev))
        return -1;
    yaml_event_delete(&ev);
    if (next_event(c, &ev))
        return -1;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return 0;
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    if (next_event(c, &ev))
        return -1;
    if (build(c, &ev, out, 0))
        return -1;
    if (expect(c, YAML_DOCUMENT_END_EVENT, &ev) == 0) {
        yaml_event_delete(&ev);
        if (expect(c, YAML_STREAM_END_EVENT, &ev) == 0) {
            yaml_event_delete(&ev);
            return 0;
        }
    }
    ydoc_free(*out);
    *out = NULL;
    return -1;
}

int ydoc_parse(const char *path, const char *text, size_t len,
               ydoc_node **out, em_err *err)
{
    ydoc_ctx c = {.path = path, .err = err};
    *out = NULL;
    if (!yaml_parser_initialize(&c.parser))
        return em_errorf(err, "%s: cannot initialise the YAML parser", path);
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, len);
    int rc = parse_stream(&c, out);
    yaml_parser_delete(&c.parser);
    return rc;
}

void ydoc_free(ydoc_node *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n; i++) {
        ydoc_free(n->items[i]);
        if (n->keys)
            ydoc_free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->str);
    free(n);
}

/* Key order of mapping entries i and j (byte order of the key text). */
static int canon_cmp(const ydoc_node *map, int i, int j)
{
    const ydoc_node *x = map->keys[i], *y = map->keys[j];
    size_t n = x->len < y->len ? x->len : y->len;
    int d = memcmp(x->str, y->str, n);
    return d ? d : (x->len > y->len) - (x->len < y->len);
}

static void canon_scalar(const ydoc_node *n, em_buf *out)
{
    em_buf_printf(out, "%c%zu:", n->plain ? 'p' : 's', n->len);
    em_buf_put(out, n->str, n->len);
}

void ydoc_canon(const ydoc_node *n, em_buf *out)
{
    if (!n) {
        em_buf_puts(out, "~");
        return;
    }
    if (n->kind == YDOC_SCALAR) {
        canon_scalar(n, out);
        return;
    }
    em_buf_printf(out, "%c%d[", n->kind == YDOC_SEQ ? 'q' : 'm', n->n);
    int *order = em_malloc(sizeof *order * (size_t)(n->n + 1));
    for (int i = 0; i < n->n; i++)
        order[i] = i;
    for (int i = 1; n->kind == YDOC_MAP && i < n->n; i++) { /* insertion */
        int k = order[i], j = i;
        for (; j > 0 && canon_cmp(n, order[j - 1], k) > 0; j--)
            order[j] = order[j - 1];
        order[j] = k;
    }
    for (int i = 0; i < n->n; i++) {
        if (n->kind == YDOC_MAP)
            canon_scalar(n->keys[order[i]], out);
        ydoc_canon(n->items[order[i]], out);
    }
    free(order);
    em_buf_putc(out, ']');
}

ydoc_node *ydoc_key(const ydoc_node *map, const char *key)
{
    if (!map || map->kind != YDOC_MAP)
        return NULL;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i]->str, key))
            return map->keys[i];
    return NULL;
}

ydoc_node *ydoc_get(const ydoc_node *map, const char *key)
{
    if (!map || map->kind != YDOC_MAP)
        return NULL;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i]->str, key))
            return map->items[i];
    return NULL;
}

const char *ydoc_kind_name(ydoc_kind k)
{
    return k == YDOC_SCALAR ? "a string" : k == YDOC_SEQ ? "a list" : "a mapping";
}

int ydoc_is_null(const ydoc_node *n)
{
    return n && n->kind == YDOC_SCALAR && n->plain &&
           (!n->len || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
            !strcmp(n->str, "Null") || !strcmp(n->str, "NULL"));
}

int ydoc_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int *row = em_malloc((lb + 1) * sizeof *row);
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int sub = diag + (tolower((unsigned char)a[i - 1]) !=
                              tolower((unsigned char)b[j - 1]));
            int best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    int d = row[lb];
    free(row);
    return d;
}

const char *ydoc_suggest(const char *s, const char *const *names)
{
    const char *best = NULL;
    int best_d = INT_MAX;
    for (int i = 0; names && names[i]; i++) {
        int d = ydoc_edit_distance(s, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    /* A typo changes a few characters; beyond a third of the word the
     * suggestion is more confusing than helpful. */
    int len = (int)strlen(s);
    int limit = len < 3 ? 1 : len / 3 + 1;
    return best && best_d <= limit ? best : NULL;
}

int ydoc_check_keys(const char *path, const ydoc_node *map,
                    const char *const *allowed, const char *what, em_err *err)
{
    for (int i = 0; i < map->n; i++) {
        const ydoc_node *k = map->keys[i];
        int ok = 0;
        for (int j = 0; allowed[j] && !ok; j++)
            ok = !strcmp(allowed[j], k->str);
        if (ok)
            continue;
        const char *s = ydoc_suggest(k->str, allowed);
        if (s)
            return em_errorf(err, "%s:%d:%d: unknown key '%s' in %s (did you mean '%s'?)",
                             path, k->line, k->col, k->str, what, s);
        return em_errorf(err, "%s:%d:%d: unknown key '%s' in %s", path, k->line,
                         k->col, k->str, what);
    }
    return 0;
}

int ydoc_parse_int(const char *s, long long *out)
{
    if (!*s || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int ydoc_parse_num(const char *s, double *out)
{
    if (!*s || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || v != v)
        return -1;
    *out = v;
    return 0;
}

int ydoc_get_str(const char *path, const ydoc_node *map, const char *key,
                 char **out, em_err *err)
{
    const ydoc_node *v = ydoc_get(map, key);
    if (!v)
        return 0;
    if (v->kind != YDOC_SCALAR)
        return em_errorf(err, "%s:%d:%d: '%s' must be a string, got %s", path,
                         v->line, v->col, key, ydoc_kind_name(v->kind));
    free(*out);
    *out = em_strdup(v->str);
    return 0;
}

int ydoc_get_int(const char *path, const ydoc_node *map, const char *key,
                 int min, long long *out, em_err *err)
{
    const ydoc_node *v = ydoc_get(map, key);
    if (!v)
        return 0;
    long long x;
    const char *what = min > 0 ? "a positive integer" : "a non-negative integer";
    if (v->kind != YDOC_SCALAR)
        return em_errorf(err, "%s:%d:%d: '%s' must be %s, got %s", path, v->line,
                         v->col, key, what, ydoc_kind_name(v->kind));
    if (ydoc_parse_int(v->str, &x) || x < min || x > INT_MAX)
        return em_errorf(err, "%s:%d:%d: '%s' must be %s, got '%s'", path, v->line,
                         v->col, key, what, v->str);
    *out = x;
    return 0;
}

int ydoc_get_u64(const char *path, const ydoc_node *map, const char *key,
                 uint64_t *out, em_err *err)
{
    const ydoc_node *v = ydoc_get(map, key);
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long x = 0;
    if (v->kind == YDOC_SCALAR && isdigit((unsigned char)v->str[0]))
        x = strtoull(v->str, &end, 10);
    if (!end || *end || errno)
        return em_errorf(err, "%s:%d:%d: '%s' must be a non-negative integer below 2^64, "
                         "got %s%s%s", path, v->line, v->col, key,
                         v->kind == YDOC_SCALAR ? "'" : "",
                         v->kind == YDOC_SCALAR ? v->str : ydoc_kind_name(v->kind),
                         v->kind == YDOC_SCALAR ? "'" : "");
    *out = (uint64_t)x;
    return 0;
}

int ydoc_get_num(const char *path, const ydoc_node *map, const char *key,
                 double *out, em_err *err)
{
    const ydoc_node *v = ydoc_get(map, key);
    if (!v)
        return 0;
    if (v->kind != YDOC_SCALAR || ydoc_parse_num(v->str, out))
        return em_errorf(err, "%s:%d:%d: '%s' must be a number, got %s%s%s", path,
                         v->line, v->col, key, v->kind == YDOC_SCALAR ? "'" : "",
                         v->kind == YDOC_SCALAR ? v->str : ydoc_kind_name(v->kind),
                         v->kind == YDOC_SCALAR ? "'" : "");
    return 0;
}

int ydoc_get_strs(const char *path, const ydoc_node *map, const char *key,
                  int one_ok, char ***out, int *n, em_err *err)
{
    const ydoc_node *v = ydoc_get(map, key);
    if (!v)
        return 0;
    if (v->kind == YDOC_SCALAR && one_ok) {
        *out = em_malloc(sizeof **out);
        (*out)[0] = em_strdup(v->str);
        *n = 1;
        return 0;
    }
    if (v->kind != YDOC_SEQ)
        return em_errorf(err, "%s:%d:%d: '%s' must be a list of strings, got %s",
                         path, v->line, v->col, key, ydoc_kind_name(v->kind));
    for (int i = 0; i < v->n; i++)
        if (v->items[i]->kind != YDOC_SCALAR)
            return em_errorf(err, "%s:%d:%d: '%s' item %d must be a string, got %s",
                             path, v->items[i]->line, v->items[i]->col, key, i + 1,
                             ydoc_kind_name(v->items[i]->kind));
    *out = em_calloc((size_t)v->n, sizeof **out);
    for (int i = 0; i < v->n; i++)
        (*out)[i] = em_strdup(v->items[i]->str);
    *n = v->n;
    return 0;
}
