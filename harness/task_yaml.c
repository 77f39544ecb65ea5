/*
 * task_yaml.c - YAML task files (tasks/README.md): the schema checked key
 * by key and read into struct task: metadata, templates (every
 * placeholder must resolve for every record), few-shot settings, answer
 * pattern and normalisation, metrics and scores, generation settings,
 * retrieval corpus, variants, shuffling; and the task hash.
 *
 * Loading is strict on purpose: a task that loads is a task whose every
 * prompt can be rendered, so a sweep never fails hours in on a typo. Every
 * message names the file and line:column. The examples themselves are
 * read by task_data.c.
 */
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "harness/retrieval.h"
#include "harness/task.h"
#include "harness/task_int.h"
#include "harness/template.h"
#include "base/yamldoc.h"
#include "metrics/metric.h"

static const char *const top_keys[] = {
    "name", "description", "keywords", "type", "examples", "data", "fields",
    "template", "choice_format", "continuation_prefix", "unconditional_prefix",
    "few_shot", "stop",
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

/* ------------------------------------------------------------------ */
/* Top level: metadata                                               */

/* The index in names of the scalar n, or an error saying what it must be
 * (must_be) and, when one is near, which name was meant. */
static int name_index(loader *L, const ydoc_node *n, const char *const *names,
                      const char *must_be, int *out)
{
    for (int i = 0; names[i]; i++)
        if (n->kind == YDOC_SCALAR && !strcmp(n->str, names[i])) {
            *out = i;
            return 0;
        }
    const char *s = n->kind == YDOC_SCALAR ? ydoc_suggest(n->str, names) : NULL;
    return em_errorf(L->err, "%s:%d:%d: %s, got '%s'%s%s%s", L->path, n->line, n->col,
                     must_be, n->kind == YDOC_SCALAR ? n->str : ydoc_kind_name(n->kind),
                     s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
}

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
    int i;
    if (name_index(L, ty, type_names, "'type' must be one of generate, "
                   "multiple_choice, target_logprob", &i))
        return -1;
    t->type = (task_type)i;
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
        return task_data_inline(L, sh, "shots", "shot", &t->shots, &t->n_shots);
    if (sd)
        return task_data_file(L, sd, "shots_data", "shot", &t->shots, &t->n_shots);
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
    if (ydoc_get_str(L->path, r, "unconditional_prefix",
                     &t->unconditional_prefix, L->err))
        return -1;
    if (!t->unconditional_prefix)
        t->unconditional_prefix = em_strdup("");
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
    task_strs_free(norm, n_norm);
    return rc;
}

/* Metrics that score choices by log-likelihood need a multiple_choice task. */
static int metric_needs_choices(const char *m)
{
    return !strcmp(m, "multiple_choice_grade") || !strcmp(m, "brier_score") ||
           !strcmp(m, "mc_confidence") || !strcmp(m, "acc_norm") ||
           !strcmp(m, "acc_bytes") || !strcmp(m, "acc_mutual_info");
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
    r->corpus = task_data_path(L, cn->str);
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

static int variant_kind(loader *L, const ydoc_node *vn, task_variant_kind *kind)
{
    const ydoc_node *k = ydoc_get(vn, "kind");
    if (!k)
        return 0;
    int i;
    if (name_index(L, k, kind_names, "variant 'kind' must be standard, cot or "
                   "zero_shot_cot", &i))
        return -1;
    *kind = (task_variant_kind)i;
    return 0;
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
    if (v->kind == VARIANT_COT && !task_count_rationales(L->t))
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
        task_variant_defaults(v, name, kind);
    }
    free(name);
    return variant_settings(L, vn, v);
}

static int load_variants(loader *L)
{
    task *t = L->t;
    t->variants = em_calloc(3, sizeof *t->variants);
    task_variant_defaults(&t->variants[0], "standard", VARIANT_STANDARD);
    task_variant_defaults(&t->variants[1], "cot", VARIANT_COT);
    task_variant_defaults(&t->variants[2], "zero_shot_cot", VARIANT_ZERO_SHOT_COT);
    t->n_variants = 3;
    if (t->retrieval) {
        t->variants = em_realloc(t->variants, 4 * sizeof *t->variants);
        task_variant_defaults(&t->variants[t->n_variants++], "retrieval",
                              VARIANT_RETRIEVAL);
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

/* ------------------------------------------------------------------ */
/* task_load_yaml                                                     */

static int load_all(loader *L)
{
    if (ydoc_check_keys(L->path, L->root, top_keys, "the task", L->err) ||
        load_meta(L) || task_data_fields(L) || task_data_examples(L))
        return -1;
    /* Ids are checked before the pool is split off, so that shots and
     * evaluated examples from one data file never share an id. */
    if (task_data_unique_ids(L, L->t->examples, L->t->n_examples) || load_few_shot(L) ||
        task_data_unique_ids(L, L->t->shots, L->t->n_shots) || load_templates(L) ||
        load_generation(L) || load_answer(L) || load_metrics(L) || load_scores(L) ||
        load_retrieval(L) || load_variants(L) || load_shuffle(L))
        return -1;
    return 0;
}

/* Loads the YAML task file at path (task_load hands it every path that
 * is not BIG-bench JSON). */
int task_load_yaml(const char *path, task **out, em_err *err)
{
    *out = NULL;
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
