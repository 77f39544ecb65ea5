/*
 * family.c - family files (YAML) and command-line model specs.
 *
 * The file is parsed with libyaml's document API so every node keeps the
 * line and column where it started; errors read
 *   "fam.yaml:7:15: members[2]: 'params' must be a positive number, got 'x'".
 * Defaults are merged key by key into each member (a member's own keys
 * win), then the member is validated. The backend name is checked against
 * the registry at load time, so a typo fails before any model is opened.
 * A series is read like a member whose own keys (name, path, steps,
 * tokens_per_step) are set aside, then expanded into one member per step
 * (series_expand); its errors name the series and the step's node.
 */
#include "harness/family.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "backends/engine/model_params.h"

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
    } else if (!strcmp(key, "params") || !strcmp(key, "tokens") ||
               !strcmp(key, "params_nonembed")) {
        if (family_parse_number(val, &v) != 0 || v <= 0)
            return em_errorf(err, "%s'%s' must be a positive number, got '%s'",
                             where, key, val);
        *(!strcmp(key, "params") ? &m->spec.n_params
          : key[0] == 't' ? &m->spec.n_tokens : &m->spec.n_params_nonembed) = v;
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
                                       "members", "series", NULL};

/* What a mapping of member keys is: a member, the defaults, or a series
 * (whose own keys, series_key, its caller reads). */
enum { MAP_MEMBER, MAP_DEFAULTS, MAP_SERIES };

static int series_key(const char *key)
{
    return !strcmp(key, "name") || !strcmp(key, "path") ||
           !strcmp(key, "steps") || !strcmp(key, "tokens_per_step");
}

/* A key a mapping of this kind may not hold: its error, or NULL. */
static const char *key_refused(int kind, const char *key)
{
    if (kind == MAP_DEFAULTS && !strcmp(key, "name"))
        return "'name' cannot be a default (every member needs its own)";
    if (kind == MAP_SERIES && !strcmp(key, "step"))
        return "'step' cannot be set in a series (its members' steps are "
               "'steps')";
    if (kind == MAP_SERIES && !strcmp(key, "tokens"))
        return "'tokens' cannot be set in a series (a member's tokens are "
               "its step x 'tokens_per_step')";
    if (kind == MAP_SERIES && !strcmp(key, "checkpoint"))
        return "'checkpoint' cannot be set in a series (its members are "
               "named by step)";
    return NULL;
}

/* Applies every key of mapping node `map` to member m (a series' own
 * keys excepted). */
static int apply_mapping(const yctx *y, yaml_node_t *map, family_member *m,
                         const char *ctx, int kind, em_err *err)
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
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(y->doc, q->key);
            if (k2->type == YAML_SCALAR_NODE && !strcmp(scalar(k2), key)) {
                node_where(y, k, ctx, where, sizeof where);
                return em_errorf(err, "%sduplicate key '%s'", where, key);
            }
        }
        if (kind == MAP_SERIES && series_key(key))
            continue;
        node_where(y, v, ctx, where, sizeof where);
        if (v->type != YAML_SCALAR_NODE)
            return em_errorf(err, "%s'%s' must be a single value, not a %s",
                             where, key,
                             v->type == YAML_MAPPING_NODE ? "mapping" : "list");
        const char *refused = key_refused(kind, key);
        if (refused) {
            node_where(y, k, ctx, where, sizeof where);
            return em_errorf(err, "%s%s", where, refused);
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
    dst->spec.n_params_nonembed = src->spec.n_params_nonembed;
    for (int i = 0; i < src->spec.n_opts; i++)
        spec_add_opt(&dst->spec, src->spec.opts[i].key, src->spec.opts[i].value);
    dst->checkpoint = em_strdup(src->checkpoint);
    dst->step = src->step;
}

/* A new member at the end of f, a copy of tmpl, placed at node n. */
static family_member *member_push(family *f, const family_member *tmpl,
                                  const yaml_node_t *n)
{
    f->members = em_realloc(f->members,
                            sizeof *f->members * (size_t)(f->n_members + 1));
    family_member *m = &f->members[f->n_members++];
    member_copy(m, tmpl);
    m->line = (int)n->start_mark.line + 1;
    m->col = (int)n->start_mark.column + 1;
    return m;
}

/* The last member's name must be new. */
static int check_unique(const family *f, const char *where, em_err *err)
{
    const family_member *m = &f->members[f->n_members - 1];
    for (int j = 0; j < f->n_members - 1; j++)
        if (!strcmp(f->members[j].spec.name, m->spec.name))
            return em_errorf(err, "%sduplicate member name '%s' (first at "
                             "line %d)", where, m->spec.name,
                             f->members[j].line);
    return 0;
}

static int load_members(const yctx *y, yaml_node_t *list,
                        const family_member *defaults, family *f, em_err *err)
{
    char where[512], ctx[64];
    if (list->type != YAML_SEQUENCE_NODE) {
        node_where(y, list, "", where, sizeof where);
        return em_errorf(err, "%s'members' must be a list of mappings", where);
    }
    int i = 0;
    for (yaml_node_item_t *it = list->data.sequence.items.start;
         it < list->data.sequence.items.top; it++, i++) {
        yaml_node_t *n = yaml_document_get_node(y->doc, *it);
        snprintf(ctx, sizeof ctx, "members[%d]", i);
        node_where(y, n, ctx, where, sizeof where);
        if (n->type != YAML_MAPPING_NODE)
            return em_errorf(err, "%seach member must be a mapping "
                             "(name: ..., backend: ...)", where);
        family_member *m = member_push(f, defaults, n);
        if (apply_mapping(y, n, m, ctx, MAP_MEMBER, err) != 0 ||
            member_check(m, where, err) != 0 || check_unique(f, where, err))
            return -1;
    }
    if (i == 0) {
        node_where(y, list, "", where, sizeof where);
        return em_errorf(err, "%s'members' is empty", where);
    }
    return 0;
}

/* ---- series ------------------------------------------------------------ */

/* One entry of 'series' as read: its own keys, and the member keys in
 * tmpl (defaults first). */
typedef struct series_def {
    char ctx[64];
    yaml_node_t *node, *name, *path, *steps;
    double tokens_per_step;   /* 0: not given */
    double *step;             /* steps[i], whole numbers */
    int n_steps;
    family_member tmpl;
} series_def;

static int series_scalar(const yctx *y, series_def *sd, yaml_node_t *k,
                         yaml_node_t *v, em_err *err)
{
    char where[512];
    const char *key = scalar(k);
    node_where(y, v, sd->ctx, where, sizeof where);
    if (!strcmp(key, "steps")) {
        if (v->type != YAML_SEQUENCE_NODE)
            return em_errorf(err, "%s'steps' must be a list of whole numbers "
                             "([1000, 2000, ...])", where);
        sd->steps = v;
        return 0;
    }
    if (v->type != YAML_SCALAR_NODE)
        return em_errorf(err, "%s'%s' must be a single value, not a %s", where,
                         key, v->type == YAML_MAPPING_NODE ? "mapping" : "list");
    if (!strcmp(key, "name")) {
        sd->name = v;
    } else if (!strcmp(key, "path")) {
        if (!strstr(scalar(v), "{step}"))
            return em_errorf(err, "%s'path' must contain {step} (where the "
                             "step number goes), got '%s'", where, scalar(v));
        sd->path = v;
    } else if (family_parse_number(scalar(v), &sd->tokens_per_step) != 0 ||
               !(sd->tokens_per_step > 0)) {
        return em_errorf(err, "%s'tokens_per_step' must be a positive number, "
                         "got '%s'", where, scalar(v));
    }
    return 0;
}

/* steps -> sd->step: whole numbers >= 0, each once. */
static int series_steps(const yctx *y, series_def *sd, em_err *err)
{
    char where[512];
    yaml_node_item_t *a = sd->steps->data.sequence.items.start;
    int n = (int)(sd->steps->data.sequence.items.top - a);
    node_where(y, sd->steps, sd->ctx, where, sizeof where);
    if (n == 0)
        return em_errorf(err, "%s'steps' is empty", where);
    sd->step = em_malloc(sizeof *sd->step * (size_t)n);
    for (int i = 0; i < n; i++) {
        yaml_node_t *s = yaml_document_get_node(y->doc, a[i]);
        node_where(y, s, sd->ctx, where, sizeof where);
        double v;
        if (s->type != YAML_SCALAR_NODE ||
            family_parse_number(scalar(s), &v) != 0 || v < 0 || v > 1e15 ||
            v != floor(v))
            return em_errorf(err, "%ssteps[%d] must be a whole number >= 0, "
                             "got '%s'", where, i,
                             s->type == YAML_SCALAR_NODE ? scalar(s) : "(list)");
        for (int j = 0; j < i; j++)
            if (sd->step[j] == v)
                return em_errorf(err, "%ssteps[%d]: duplicate step %.0f (first "
                                 "at steps[%d])", where, i, v, j);
        sd->step[sd->n_steps++] = v;
    }
    return 0;
}

/* Reads one series entry into sd and checks what every member needs. */
static int series_read(const yctx *y, yaml_node_t *n, series_def *sd,
                       em_err *err)
{
    char where[512];
    node_where(y, n, sd->ctx, where, sizeof where);
    if (n->type != YAML_MAPPING_NODE)
        return em_errorf(err, "%seach series must be a mapping (name: ..., "
                         "path: ..., steps: [...])", where);
    if (apply_mapping(y, n, &sd->tmpl, sd->ctx, MAP_SERIES, err) != 0)
        return -1;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(y->doc, p->key);
        if (series_key(scalar(k)) &&
            series_scalar(y, sd, k, yaml_document_get_node(y->doc, p->value),
                          err) != 0)
            return -1;
    }
    const char *missing = !sd->name ? "name" : !sd->path ? "path"
                          : !sd->steps ? "steps" : NULL;
    if (missing)
        return em_errorf(err, "%smissing required field '%s'", where, missing);
    if (!sd->tmpl.spec.backend)
        sd->tmpl.spec.backend = em_strdup("native");
    return series_steps(y, sd, err);
}

/* The series' path with {step} replaced, resolved against the file. */
static char *step_path(const yctx *y, const series_def *sd, double step)
{
    em_buf b = {0};
    const char *p = scalar(sd->path), *at;
    while ((at = strstr(p, "{step}"))) {
        em_buf_put(&b, p, (size_t)(at - p));
        em_buf_printf(&b, "%.0f", step);
        p = at + 6;
    }
    em_buf_puts(&b, p);
    char *out = resolve_path(y->file, b.s);
    em_buf_free(&b);
    return out;
}

/* Without 'params', a local model's counts come from the weights of the
 * last step (every step of a series has the same shapes). A file that
 * cannot be read yet leaves them 0: the backend counts them when it opens
 * the model, as for any member without 'params'. */
static void series_count(const yctx *y, series_def *sd)
{
    const char *be = sd->tmpl.spec.backend;
    if (sd->tmpl.spec.n_params > 0 || (strcmp(be, "native") && strcmp(be, "cuda")))
        return;
    double last = sd->step[0], total, non_embd;
    for (int i = 1; i < sd->n_steps; i++)
        last = sd->step[i] > last ? sd->step[i] : last;
    char *path = step_path(y, sd, last);
    em_err e;
    if (model_count_params(path, &total, &non_embd, &e) == 0) {
        sd->tmpl.spec.n_params = total;
        if (!(sd->tmpl.spec.n_params_nonembed > 0))
            sd->tmpl.spec.n_params_nonembed = non_embd;
    }
    free(path);
}

/* The members of a read series: NAME-stepN, one per step. */
static int series_expand(const yctx *y, const series_def *sd, family *f,
                         em_err *err)
{
    char where[512];
    yaml_node_item_t *a = sd->steps->data.sequence.items.start;
    for (int i = 0; i < sd->n_steps; i++) {
        yaml_node_t *s = yaml_document_get_node(y->doc, a[i]);
        family_member *m = member_push(f, &sd->tmpl, s);
        em_buf name = {0};
        em_buf_printf(&name, "%s-step%.0f", scalar(sd->name), sd->step[i]);
        m->spec.name = em_buf_take(&name);
        free(m->spec.path);
        m->spec.path = step_path(y, sd, sd->step[i]);
        m->step = sd->step[i];
        if (sd->tokens_per_step > 0)
            m->spec.n_tokens = sd->step[i] * sd->tokens_per_step;
        node_where(y, s, sd->ctx, where, sizeof where);
        if (member_check(m, where, err) != 0 || check_unique(f, where, err))
            return -1;
    }
    return 0;
}

static int load_series(const yctx *y, yaml_node_t *list,
                       const family_member *defaults, family *f, em_err *err)
{
    char where[512];
    node_where(y, list, "", where, sizeof where);
    if (list->type != YAML_SEQUENCE_NODE)
        return em_errorf(err, "%s'series' must be a list of mappings", where);
    if (list->data.sequence.items.top == list->data.sequence.items.start)
        return em_errorf(err, "%s'series' is empty", where);
    int i = 0, rc = 0;
    for (yaml_node_item_t *it = list->data.sequence.items.start;
         rc == 0 && it < list->data.sequence.items.top; it++, i++) {
        series_def sd = {0};
        snprintf(sd.ctx, sizeof sd.ctx, "series[%d]", i);
        member_copy(&sd.tmpl, defaults);
        rc = series_read(y, yaml_document_get_node(y->doc, *it), &sd, err);
        if (rc == 0) {
            series_count(y, &sd);
            rc = series_expand(y, &sd, f, err);
        }
        member_clear(&sd.tmpl);
        free(sd.step);
    }
    return rc;
}

/* ---- the document ------------------------------------------------------ */

/* One top-level key: the lists are kept for later (defaults first). */
static int load_top(const yctx *y, yaml_node_t *k, yaml_node_t *v, family *f,
                    family_member *defaults, yaml_node_t **lists, em_err *err)
{
    char where[512];
    node_where(y, k, "", where, sizeof where);
    const char *key = k->type == YAML_SCALAR_NODE ? scalar(k) : "";
    int known = 0;
    for (int i = 0; top_keys[i]; i++)
        known |= !strcmp(top_keys[i], key);
    if (!known)
        return em_errorf(err, "%sunknown key '%s' (expected name, description,"
                         " defaults, members, series)", where, key);
    node_where(y, v, "", where, sizeof where);
    if (!strcmp(key, "members") || !strcmp(key, "series")) {
        lists[key[0] == 's'] = v;
    } else if (!strcmp(key, "defaults")) {
        if (v->type != YAML_MAPPING_NODE)
            return em_errorf(err, "%s'defaults' must be a mapping", where);
        return apply_mapping(y, v, defaults, "defaults", MAP_DEFAULTS, err);
    } else {
        if (v->type != YAML_SCALAR_NODE)
            return em_errorf(err, "%s'%s' must be a string", where, key);
        char **dst = key[0] == 'n' ? &f->name : &f->description;
        free(*dst);
        *dst = em_strdup(scalar(v));
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
                         "'members' or 'series'", where);
    }
    family_member defaults = {.step = -1};
    yaml_node_t *lists[2] = {NULL, NULL}; /* members, series */
    int rc = 0;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         rc == 0 && p < root->data.mapping.pairs.top; p++)
        rc = load_top(y, yaml_document_get_node(y->doc, p->key),
                      yaml_document_get_node(y->doc, p->value), f, &defaults,
                      lists, err);
    if (rc == 0 && !f->name)
        rc = em_errorf(err, "%s: missing required field 'name'", y->file);
    if (rc == 0 && !lists[0] && !lists[1])
        rc = em_errorf(err, "%s: missing required field 'members' (or "
                       "'series')", y->file);
    if (rc == 0 && lists[0])
        rc = load_members(y, lists[0], &defaults, f, err);
    if (rc == 0 && lists[1])
        rc = load_series(y, lists[1], &defaults, f, err);
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

/* A command-line member without name=: the server-side model= name when
 * it has one (an openai member's URL ends in "/v1", which names nothing),
 * else the last segment of its path, else the backend's name. */
static const char *spec_default_name(const backend_spec *sp)
{
    const char *model = backend_spec_opt(sp, "model");
    if (model && *model)
        return model;
    const char *base = sp->path ? strrchr(sp->path, '/') : NULL;
    return base && base[1] ? base + 1 : sp->path ? sp->path : sp->backend;
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
    struct stat st;
    int dir = stat(spec, &st) == 0 && S_ISDIR(st.st_mode);
    if (ends_with(spec, ".gguf") || dir) { /* a file, or a checkpoint dir */
        m->spec.backend = em_strdup("native");
        m->spec.path = em_strdup(spec);
        size_t n = strlen(m->spec.path);
        while (dir && n > 1 && m->spec.path[n - 1] == '/')
            m->spec.path[--n] = '\0';
        rc = 0;
    } else {
        rc = spec_parse(spec, m, err);
    }
    if (rc == 0 && !m->spec.name)
        m->spec.name = em_strdup(spec_default_name(&m->spec));
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
