/*
 * family.c - family files (YAML) and command-line model specs.
 *
 * The file is parsed with libyaml's document API so every node keeps the
 * line and column where it started; errors read
 *   "fam.yaml:7:15: members[2]: 'params' must be a positive number, got 'x'".
 * Defaults are merged key by key into each member (a member's own keys
 * win), then the member is validated. The backend name is checked against
 * the registry at load time, so a typo fails before any model is opened.
 */
#include "harness/family.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

int family_parse_number(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (end == s)
        return -1;
    double mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1e3; end++; break;
    case 'm': case 'M': mult = 1e6; end++; break;
    case 'b': case 'B': case 'g': case 'G': mult = 1e9; end++; break;
    case 't': case 'T': mult = 1e12; end++; break;
    default: break;
    }
    if (*end || !isfinite(v))
        return -1;
    *out = v * mult;
    return 0;
}

/* ---- building members ---------------------------------------------- */

static void spec_add_opt(backend_spec *sp, const char *key, const char *val)
{
    for (int i = 0; i < sp->n_opts; i++)
        if (!strcmp(sp->opts[i].key, key)) {
            free(sp->opts[i].value);
            sp->opts[i].value = em_strdup(val);
            return;
        }
    sp->opts = em_realloc(sp->opts, sizeof *sp->opts * (size_t)(sp->n_opts + 1));
    sp->opts[sp->n_opts].key = em_strdup(key);
    sp->opts[sp->n_opts].value = em_strdup(val);
    sp->n_opts++;
}

static void member_clear(family_member *m)
{
    free(m->spec.name);
    free(m->spec.backend);
    free(m->spec.path);
    for (int i = 0; i < m->spec.n_opts; i++) {
        free(m->spec.opts[i].key);
        free(m->spec.opts[i].value);
    }
    free(m->spec.opts);
    free(m->checkpoint);
}

void family_free(family *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n_members; i++)
        member_clear(&f->members[i]);
    free(f->members);
    free(f->path);
    free(f->name);
    free(f->description);
    free(f);
}

/* A path in a family file is relative to the file's directory; absolute
 * paths and URLs are kept. */
static char *resolve_path(const char *base_file, const char *p)
{
    if (p[0] == '/' || strstr(p, "://"))
        return em_strdup(p);
    const char *slash = strrchr(base_file, '/');
    if (!slash)
        return em_strdup(p);
    em_buf b = {0};
    em_buf_put(&b, base_file, (size_t)(slash - base_file) + 1);
    em_buf_puts(&b, p);
    return em_buf_take(&b);
}

/* Sets one key of a member. `where` prefixes errors ("file:l:c: ctx"). */
static int member_set(family_member *m, const char *file, const char *key,
                      const char *val, const char *where, em_err *err)
{
    double v;
    if (!strcmp(key, "name")) {
        free(m->spec.name);
        m->spec.name = em_strdup(val);
    } else if (!strcmp(key, "backend")) {
        free(m->spec.backend);
        m->spec.backend = em_strdup(val);
    } else if (!strcmp(key, "path")) {
        free(m->spec.path);
        m->spec.path = resolve_path(file, val);
    } else if (!strcmp(key, "params") || !strcmp(key, "tokens")) {
        if (family_parse_number(val, &v) != 0 || v <= 0)
            return em_errorf(err, "%s'%s' must be a positive number, got '%s'",
                             where, key, val);
        *(key[0] == 'p' ? &m->spec.n_params : &m->spec.n_tokens) = v;
    } else if (!strcmp(key, "step")) {
        if (family_parse_number(val, &v) != 0 || v < 0)
            return em_errorf(err, "%s'step' must be a number >= 0, got '%s'",
                             where, val);
        m->step = v;
    } else if (!strcmp(key, "checkpoint")) {
        free(m->checkpoint);
        m->checkpoint = em_strdup(val);
    } else {
        spec_add_opt(&m->spec, key, val);
    }
    return 0;
}

/* Unknown backend names fail at load time, pointing at the name. */
static int check_backend(const char *name, const char *where, em_err *err)
{
    if (backend_find(name))
        return 0;
    em_buf known = {0};
    for (const char *const *n = backend_names(); *n; n++)
        em_buf_printf(&known, "%s%s", known.len ? ", " : "", *n);
    em_errorf(err, "%sunknown backend '%s' (known: %s)", where, name,
              known.s ? known.s : "");
    em_buf_free(&known);
    return -1;
}

static int member_check(const family_member *m, const char *where, em_err *err)
{
    if (!m->spec.name || !*m->spec.name)
        return em_errorf(err, "%smissing required field 'name'", where);
    if (!m->spec.backend || !*m->spec.backend)
        return em_errorf(err, "%smember '%s': missing required field 'backend' "
                         "(give it in the member or in defaults)",
                         where, m->spec.name);
    return check_backend(m->spec.backend, where, err);
}

/* ---- YAML ------------------------------------------------------------ */

typedef struct yctx {
    yaml_document_t *doc;
    const char *file;
} yctx;

static int node_where(const yctx *y, const yaml_node_t *n, const char *ctx,
                      char *out, size_t cap)
{
    return snprintf(out, cap, "%s:%zu:%zu: %s%s", y->file,
                    n->start_mark.line + 1, n->start_mark.column + 1,
                    ctx ? ctx : "", ctx && *ctx ? ": " : "");
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static const char *const top_keys[] = {"name", "description", "defaults",
                                       "members", NULL};

/* Applies every key of mapping node `map` to member m. */
static int apply_mapping(const yctx *y, yaml_node_t *map, family_member *m,
                         const char *ctx, int is_defaults, em_err *err)
{
    char where[512];
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(y->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(y->doc, p->value);
        if (k->type != YAML_SCALAR_NODE) {
            node_where(y, k, ctx, where, sizeof where);
            return em_errorf(err, "%skeys must be plain words", where);
        }
        const char *key = scalar(k);
        node_where(y, v, ctx, where, sizeof where);
        if (v->type != YAML_SCALAR_NODE)
            return em_errorf(err, "%s'%s' must be a single value, not a %s",
                             where, key,
                             v->type == YAML_MAPPING_NODE ? "mapping" : "list");
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(y->doc, q->key);
            if (k2->type == YAML_SCALAR_NODE && !strcmp(scalar(k2), key)) {
                node_where(y, k, ctx, where, sizeof where);
                return em_errorf(err, "%sduplicate key '%s'", where, key);
            }
        }
        if (is_defaults && !strcmp(key, "name")) {
            node_where(y, k, ctx, where, sizeof where);
            return em_errorf(err, "%s'name' cannot be a default (every member "
                             "needs its own)", where);
        }
        if (!strcmp(key, "backend") && check_backend(scalar(v), where, err))
            return -1;
        if (member_set(m, y->file, key, scalar(v), where, err) != 0)
            return -1;
    }
    return 0;
}

static void member_copy(family_member *dst, const family_member *src)
{
    memset(dst, 0, sizeof *dst);
    dst->spec.name = em_strdup(src->spec.name);
    dst->spec.backend = em_strdup(src->spec.backend);
    dst->spec.path = em_strdup(src->spec.path);
    dst->spec.n_params = src->spec.n_params;
    dst->spec.n_tokens = src->spec.n_tokens;
    for (int i = 0; i < src->spec.n_opts; i++)
        spec_add_opt(&dst->spec, src->spec.opts[i].key, src->spec.opts[i].value);
    dst->checkpoint = em_strdup(src->checkpoint);
    dst->step = src->step;
}

static int load_members(const yctx *y, yaml_node_t *list,
                        const family_member *defaults, family *f, em_err *err)
{
    char where[512], ctx[64];
    if (list->type != YAML_SEQUENCE_NODE) {
        node_where(y, list, "", where, sizeof where);
        return em_errorf(err, "%s'members' must be a list of mappings", where);
    }
    int cap = (int)(list->data.sequence.items.top - list->data.sequence.items.start);
    f->members = em_calloc((size_t)cap + 1, sizeof *f->members);
    for (yaml_node_item_t *it = list->data.sequence.items.start;
         it < list->data.sequence.items.top; it++) {
        yaml_node_t *n = yaml_document_get_node(y->doc, *it);
        snprintf(ctx, sizeof ctx, "members[%d]", f->n_members);
        node_where(y, n, ctx, where, sizeof where);
        if (n->type != YAML_MAPPING_NODE)
            return em_errorf(err, "%seach member must be a mapping "
                             "(name: ..., backend: ...)", where);
        family_member *m = &f->members[f->n_members++];
        member_copy(m, defaults);
        m->line = (int)n->start_mark.line + 1;
        m->col = (int)n->start_mark.column + 1;
        if (apply_mapping(y, n, m, ctx, 0, err) != 0 ||
            member_check(m, where, err) != 0)
            return -1;
        for (int j = 0; j < f->n_members - 1; j++)
            if (!strcmp(f->members[j].spec.name, m->spec.name))
                return em_errorf(err, "%sduplicate member name '%s' (first at "
                                 "line %d)", where, m->spec.name,
                                 f->members[j].line);
    }
    if (f->n_members == 0) {
        node_where(y, list, "", where, sizeof where);
        return em_errorf(err, "%s'members' is empty", where);
    }
    return 0;
}

static int load_doc(const yctx *y, family *f, em_err *err)
{
    char where[512];
    yaml_node_t *root = yaml_document_get_root_node(y->doc);
    if (!root)
        return em_errorf(err, "%s: empty family file", y->file);
    if (root->type != YAML_MAPPING_NODE) {
        node_where(y, root, "", where, sizeof where);
        return em_errorf(err, "%sa family file is a mapping with 'name' and "
                         "'members'", where);
    }
    family_member defaults = {.step = -1};
    yaml_node_t *members = NULL;
    int rc = 0;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         rc == 0 && p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(y->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(y->doc, p->value);
        node_where(y, k, "", where, sizeof where);
        const char *key = k->type == YAML_SCALAR_NODE ? scalar(k) : "";
        int known = 0;
        for (int i = 0; top_keys[i]; i++)
            known |= !strcmp(top_keys[i], key);
        if (!known) {
            rc = em_errorf(err, "%sunknown key '%s' (expected name, description,"
                           " defaults, members)", where, key);
        } else if (!strcmp(key, "members")) {
            members = v;
        } else if (!strcmp(key, "defaults")) {
            node_where(y, v, "", where, sizeof where);
            if (v->type != YAML_MAPPING_NODE)
                rc = em_errorf(err, "%s'defaults' must be a mapping", where);
            else
                rc = apply_mapping(y, v, &defaults, "defaults", 1, err);
        } else {
            node_where(y, v, "", where, sizeof where);
            if (v->type != YAML_SCALAR_NODE)
                rc = em_errorf(err, "%s'%s' must be a string", where, key);
            else
                *(key[0] == 'n' ? &f->name : &f->description) =
                    em_strdup(scalar(v));
        }
    }
    if (rc == 0 && !f->name)
        rc = em_errorf(err, "%s: missing required field 'name'", y->file);
    if (rc == 0 && !members)
        rc = em_errorf(err, "%s: missing required field 'members'", y->file);
    if (rc == 0)
        rc = load_members(y, members, &defaults, f, err);
    member_clear(&defaults);
    return rc;
}

int family_load(const char *path, family **out, em_err *err)
{
    char *text;
    size_t len;
    if (em_read_file(path, &text, &len, err) != 0)
        return -1;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        em_errorf(err, "%s:%zu:%zu: YAML syntax error: %s", path,
                  parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                  parser.problem ? parser.problem : "unknown");
        yaml_parser_delete(&parser);
        free(text);
        return -1;
    }
    family *f = em_calloc(1, sizeof *f);
    f->path = em_strdup(path);
    yctx y = {&doc, path};
    int rc = load_doc(&y, f, err);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    free(text);
    if (rc != 0) {
        family_free(f);
        return -1;
    }
    *out = f;
    return 0;
}

/* ---- command-line specs ---------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int spec_parse(const char *spec, family_member *m, em_err *err)
{
    char *copy = em_strdup(spec);
    char *save = NULL;
    char *head = strtok_r(copy, ",", &save);
    int rc = 0;
    if (!head) {
        free(copy);
        return em_errorf(err, "empty model spec");
    }
    char *colon = strchr(head, ':');
    if (colon) {
        *colon = '\0';
        m->spec.path = em_strdup(colon + 1);
    }
    m->spec.backend = em_strdup(head);
    for (char *kv; rc == 0 && (kv = strtok_r(NULL, ",", &save));) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            rc = em_errorf(err, "model spec '%s': '%s' is not key=value", spec, kv);
            break;
        }
        *eq = '\0';
        char where[600];
        snprintf(where, sizeof where, "model spec '%s': ", spec);
        rc = member_set(m, "", kv, eq + 1, where, err);
    }
    free(copy);
    return rc;
}

int family_from_spec(const char *spec, family **out, em_err *err)
{
    if (ends_with(spec, ".yaml") || ends_with(spec, ".yml"))
        return family_load(spec, out, err);
    family *f = em_calloc(1, sizeof *f);
    f->path = em_strdup("<command line>");
    f->members = em_calloc(1, sizeof *f->members);
    f->n_members = 1;
    family_member *m = &f->members[0];
    m->step = -1;
    int rc;
    if (ends_with(spec, ".gguf")) {
        m->spec.backend = em_strdup("native");
        m->spec.path = em_strdup(spec);
        rc = 0;
    } else {
        rc = spec_parse(spec, m, err);
    }
    if (rc == 0 && !m->spec.name) {
        const char *base = m->spec.path ? strrchr(m->spec.path, '/') : NULL;
        m->spec.name = em_strdup(base ? base + 1
                                 : m->spec.path ? m->spec.path : m->spec.backend);
    }
    if (rc == 0) {
        char where[600];
        snprintf(where, sizeof where, "model spec '%s': ", spec);
        rc = member_check(m, where, err);
    }
    f->name = em_strdup(rc == 0 ? m->spec.name : "");
    if (rc != 0) {
        family_free(f);
        return -1;
    }
    *out = f;
    return 0;
}

/* ---- ordering --------------------------------------------------------- */

static int member_cmp(const family_member *a, const family_member *b)
{
    if (a->spec.n_params != b->spec.n_params)
        return a->spec.n_params < b->spec.n_params ? -1 : 1;
    if (a->spec.n_tokens != b->spec.n_tokens)
        return a->spec.n_tokens < b->spec.n_tokens ? -1 : 1;
    if (a->step != b->step)
        return a->step < b->step ? -1 : 1;
    return 0;
}

void family_sort(family *f)
{
    /* Insertion sort: stable, and families have a handful of members. */
    for (int i = 1; i < f->n_members; i++) {
        family_member tmp = f->members[i];
        int j = i;
        while (j > 0 && member_cmp(&f->members[j - 1], &tmp) > 0) {
            f->members[j] = f->members[j - 1];
            j--;
        }
        f->members[j] = tmp;
    }
}
