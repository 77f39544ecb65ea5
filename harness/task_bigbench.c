/*
 * task_bigbench.c - BIG-bench task.json and BIG-Bench-Hard files as tasks.
 *
 * Both formats are turned into an ordinary struct task, so few-shot
 * selection, variants, request building and answer extraction stay in
 * task_prompt.c, task_request.c and task_answer.c. What BIG-bench needs
 * beyond the YAML schema is expressed with three task fields: `prefix`
 * (task_prefix, put before everything), `few_shot.fixed` (BBH's exemplars
 * are one fixed, ordered prompt) and `output_stop` (BIG-bench keeps the
 * stop string when it truncates).
 *
 * BIG-bench's prompt for an example (bigbench/api/json_task.py):
 *
 *   task_prefix + shot_1 + sep + ... + shot_k + sep + query
 *   query  = example_input_prefix + input
 *            [+ choice_prefix + choice_prefix.join(permuted choices)]
 *            + example_output_prefix
 *   shot_i = query of the exemplar + its target
 *
 * The query of every example is built once at load into the record field
 * `bb_prompt`; the task template is "{{bb_prompt}}" and the exemplar
 * template "{{bb_prompt}}{{target}}", so task_prompt.c assembles exactly that.
 * Choices are listed in the order numpy's RandomState(42) permutes their
 * sorted texts, drawn in example order, as json_task.py's format_fn does.
 *
 * BBH's prompts (suzgunmirac/BIG-Bench-Hard): the cot-prompt file minus its
 * canary and "-----" lines, then "\n\nQ: " + input + "\nA: Let's think step
 * by step." for chain of thought; the answer-only prompt has the same
 * description and questions with "A: <final answer>".
 */
#include "harness/task_bigbench.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/yamldoc.h"
#include "harness/task_int.h"
#include "metrics/metric.h"

/* BIG-bench's answer regex when a task gives neither output_regex nor
 * stop_string: the first run of text up to a sentence end or newline. */
#define BB_DEFAULT_REGEX "[^\\.\\?\\!\\;\\n]+"
#define BB_WHOLE_OUTPUT "(?s)\\A.*"
#define BB_SEED 42
#define BB_MAX_TOKENS 64
#define BB_MAX_SHOTS 3

/* BBH: the final answer follows "So the answer is " and ends at a period
 * followed by a space/end, or at the end of the line; an answer-only
 * output is its first non-blank line, read the same way. */
#define BBH_ANSWER_RE                                                      \
    "\\A(?|(?s:.*?)So the answer is ([^\\n]*?)(?:\\.(?:\\s|\\z)|[ \\t]*(?:\\n|\\z))" \
    "|\\s*([^\\n]*?)(?:\\.(?:\\s|\\z)|[ \\t]*(?:\\n|\\z)))"
#define BBH_COT_TRIGGER "Let's think step by step."

/* ------------------------------------------------------------------ */
/* numpy's legacy MT19937                                             */

void bb_rng_seed(bb_rng *r, uint32_t seed)
{
    r->s[0] = seed;
    for (int i = 1; i < 624; i++)
        r->s[i] = 1812433253u * (r->s[i - 1] ^ (r->s[i - 1] >> 30)) + (uint32_t)i;
    r->i = 624;
}

uint32_t bb_rng_next(bb_rng *r)
{
    if (r->i >= 624) {
        for (int k = 0; k < 624; k++) {
            uint32_t y = (r->s[k] & 0x80000000u) | (r->s[(k + 1) % 624] & 0x7fffffffu);
            r->s[k] = r->s[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        r->i = 0;
    }
    uint32_t y = r->s[r->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint32_t bb_rng_interval(bb_rng *r, uint32_t max)
{
    if (max == 0)
        return 0;
    uint32_t mask = max, v;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    while ((v = bb_rng_next(r) & mask) > max)
        ;
    return v;
}

void bb_rng_shuffle(bb_rng *r, int *v, int n)
{
    for (int i = n - 1; i >= 1; i--) {
        int j = (int)bb_rng_interval(r, (uint32_t)i);
        int tmp = v[i];
        v[i] = v[j];
        v[j] = tmp;
    }
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */

int task_bigbench_path(const char *path)
{
    return task_has_suffix(path, ".json") || task_has_suffix(path, ".py");
}

static void strs_push(char ***v, int *n, char *s)
{
    *v = em_realloc(*v, (size_t)(*n + 1) * sizeof **v);
    (*v)[(*n)++] = s;
}

/* The file name without directory and extension (malloc'd). */
static char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    return em_strndup(b, dot ? (size_t)(dot - b) : strlen(b));
}

/* Skips one JSON value of already-validated text starting at i. */
static size_t skip_value(const char *s, size_t len, size_t i)
{
    if (s[i] == '"') {
        for (i++; i < len && s[i] != '"'; i++)
            i += s[i] == '\\';
        return i + 1;
    }
    if (s[i] == '{' || s[i] == '[') {
        int d = 0;
        for (; i < len; i++) {
            if (s[i] == '"') {
                i = skip_value(s, len, i) - 1;
                continue;
            }
            d += (s[i] == '{' || s[i] == '[') - (s[i] == '}' || s[i] == ']');
            if (d == 0)
                return i + 1;
        }
        return len;
    }
    while (i < len && !strchr(",}] \t\r\n", s[i]))
        i++;
    return i;
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && isspace((unsigned char)s[i]))
        i++;
    return i;
}

/* Offset of the value of top-level key (of its index-th item when index
 * >= 0) in valid JSON text, or of the key itself when key_only; 0 when
 * not found. Only used to point error messages at a line and column. */
static size_t json_locate(const char *s, size_t len, const char *key, int index,
                          int key_only)
{
    size_t i = skip_ws(s, len, 0), kl = strlen(key);
    if (i >= len || s[i] != '{')
        return 0;
    for (i = skip_ws(s, len, i + 1); i < len && s[i] == '"';) {
        size_t k0 = i + 1, k1 = skip_value(s, len, i) - 1;
        i = skip_ws(s, len, k1 + 1);
        i = skip_ws(s, len, i + 1); /* past ':' */
        if (k1 - k0 == kl && !memcmp(s + k0, key, kl)) {
            if (key_only)
                return k0 - 1;
            if (index < 0 || s[i] != '[')
                return i;
            for (size_t j = skip_ws(s, len, i + 1); j < len && s[j] != ']'; index--) {
                if (index == 0)
                    return j;
                j = skip_ws(s, len, skip_value(s, len, j));
                j = skip_ws(s, len, j + (s[j] == ','));
            }
            return i;
        }
        i = skip_ws(s, len, skip_value(s, len, i));
        i = skip_ws(s, len, i + (i < len && s[i] == ','));
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Loader state                                                       */

typedef struct bb {
    const char *path;
    const char *text;
    size_t len;
    const cJSON *root;
    task *t;
    em_err *err;
    char pos[1200]; /* scratch for "file:line:col" */
} bb;

/* Writes "file:line:col" of byte offset off of text into buf. */
static const char *pos_of(const char *file, const char *text, size_t off, char *buf,
                          size_t n)
{
    int line = 1, col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        col = text[i] == '\n' ? 1 : col + 1;
        line += text[i] == '\n';
    }
    snprintf(buf, n, "%s:%d:%d", file, line, col);
    return buf;
}

/* "file:line:col" of a top-level key's value (its index-th item). */
static const char *at(bb *L, const char *key, int index)
{
    size_t off = key ? json_locate(L->text, L->len, key, index, 0) : 0;
    return pos_of(L->path, L->text, off, L->pos, sizeof L->pos);
}

/* "file:line:col" of a top-level key itself. */
static const char *at_key(bb *L, const char *key)
{
    size_t off = json_locate(L->text, L->len, key, -1, 1);
    return pos_of(L->path, L->text, off, L->pos, sizeof L->pos);
}

/* An optional string field; *out stays NULL when absent. */
static int get_str(bb *L, const char *key, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(L->root, key);
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return em_errorf(L->err, "%s: field '%s' must be a string", at(L, key, -1), key);
    *out = em_strdup(v->valuestring);
    return 0;
}

static int get_strs(bb *L, const char *key, int required, char ***out, int *n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(L->root, key), *c;
    *out = NULL;
    *n = 0;
    if (!v)
        return required ? em_errorf(L->err, "%s: missing required field '%s'",
                                    at(L, NULL, -1), key)
                        : 0;
    int ok = cJSON_IsArray(v);
    cJSON_ArrayForEach(c, v) ok = ok && cJSON_IsString(c);
    if (!ok)
        return em_errorf(L->err, "%s: field '%s' must be a list of strings",
                         at(L, key, -1), key);
    cJSON_ArrayForEach(c, v) strs_push(out, n, em_strdup(c->valuestring));
    if (required && !*n)
        return em_errorf(L->err, "%s: field '%s' is empty", at(L, key, -1), key);
    return 0;
}

static int compile_answer(bb *L, const char *field, const char *pattern)
{
    task *t = L->t;
    int code;
    PCRE2_SIZE off;
    t->answer.pattern = em_strdup(pattern);
    /* Python's re on str: code points, Unicode \d \w \s. Model outputs
     * may hold invalid UTF-8 (a character split across tokens), which
     * MATCH_INVALID_UTF tolerates instead of failing every match. */
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
    t->answer_re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &code,
                                 &off, NULL);
    if (!t->answer_re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return em_errorf(L->err, "%s: %s '%s' does not compile: %s at offset %zu",
                         at(L, field, -1), field, pattern, (char *)msg, (size_t)off);
    }
    uint32_t groups = 0;
    pcre2_pattern_info(t->answer_re, PCRE2_INFO_CAPTURECOUNT, &groups);
    /* BIG-bench takes re.findall(...)[0], which is a tuple (an error
     * there) when the pattern has more than one group. */
    if (groups > 1)
        return em_errorf(L->err, "%s: %s '%s' has %u capture groups; BIG-bench reads "
                         "the first findall item, so it may have at most one (use "
                         "(?:...) for the others)", at(L, field, -1), field, pattern,
                         groups);
    return 0;
}

/* ------------------------------------------------------------------ */
/* BIG-bench: keys and metrics                                        */

static const char *const bb_keys[] = {
    "canary", "name", "description", "keywords", "metrics", "preferred_score",
    "examples", "task_prefix", "example_input_prefix", "example_output_prefix",
    "choice_prefix", "append_choices_to_input", "few_shot_example_separator",
    "output_regex", "stop_string", "comment", "absolute_normalization", NULL};

/* Fields of the format emerge knows and refuses, with the reason. */
static const char *const bb_refused[][2] = {
    {"subtasks", "tasks made of subtasks are not supported; load each subtask's "
                 "own task.json"},
    {"max_input_length_per_query", "a programmatic-task setting; not supported"},
    {"max_queries", "a programmatic-task setting; not supported"},
    {NULL, NULL}};

static const char *const example_keys[] = {
    "input", "target", "target_scores", "comment", NULL};

enum { M_GEN, M_MC, M_SCORE };

static const struct bb_metric {
    const char *bb;
    const char *em[3];
    int kind;
} bb_metrics[] = {
    {"exact_str_match", {"exact_match"}, M_GEN},
    {"bleu", {"bleu"}, M_GEN},
    {"rouge", {"rouge1", "rouge2", "rougeL"}, M_GEN},
    {"log_likelihood", {"target_logprob"}, M_SCORE},
    {"multiple_choice_grade", {"multiple_choice_grade"}, M_MC},
    {"calibration_multiple_choice_brier_score", {"brier_score"}, M_MC},
    {"expected_calibration_error", {"mc_confidence"}, M_MC},
    {NULL, {NULL}, 0}};

static const struct bb_metric *bb_metric_find(const char *name)
{
    for (int i = 0; bb_metrics[i].bb; i++)
        if (!strcmp(bb_metrics[i].bb, name))
            return &bb_metrics[i];
    return NULL;
}

static int check_keys(bb *L)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, L->root) {
        int ok = 0;
        for (int i = 0; bb_keys[i] && !ok; i++)
            ok = !strcmp(c->string, bb_keys[i]);
        if (ok)
            continue;
        for (int i = 0; bb_refused[i][0]; i++)
            if (!strcmp(c->string, bb_refused[i][0]))
                return em_errorf(L->err, "%s: field '%s': %s", at_key(L, c->string),
                                 c->string, bb_refused[i][1]);
        const char *s = ydoc_suggest(c->string, bb_keys);
        return em_errorf(L->err, "%s: unknown field '%s' in a BIG-bench task%s%s%s "
                         "(see tasks/BIGBENCH.md)", at_key(L, c->string), c->string,
                         s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
    }
    const cJSON *an = cJSON_GetObjectItemCaseSensitive(L->root, "absolute_normalization");
    if (an && !cJSON_IsBool(an))
        return em_errorf(L->err, "%s: field 'absolute_normalization' must be true or false",
                         at(L, "absolute_normalization", -1));
    if (cJSON_IsTrue(an))
        return em_errorf(L->err, "%s: field 'absolute_normalization': true is not "
                         "supported (emerge normalises choice probabilities over the "
                         "choices, BIG-bench's default)",
                         at(L, "absolute_normalization", -1));
    return 0;
}

static void metric_add(task *t, const char *m)
{
    for (int i = 0; i < t->n_metrics; i++)
        if (!strcmp(t->metrics[i], m))
            return;
    strs_push(&t->metrics, &t->n_metrics, em_strdup(m));
}

/* Maps BIG-bench metrics onto emerge's and decides the task type. */
static int bb_load_metrics(bb *L)
{
    task *t = L->t;
    char **names;
    int n, kinds = 0;
    if (get_strs(L, "metrics", 1, &names, &n))
        return -1;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const struct bb_metric *m = bb_metric_find(names[i]);
        if (!m) {
            rc = em_errorf(L->err, "%s: metric '%s' is not supported (emerge supports "
                           "exact_str_match, bleu, rouge, log_likelihood, "
                           "multiple_choice_grade, calibration_multiple_choice_brier_score,"
                           " expected_calibration_error)", at(L, "metrics", i), names[i]);
            break;
        }
        kinds |= 1 << m->kind;
        for (int j = 0; j < 3 && m->em[j]; j++)
            metric_add(t, m->em[j]);
    }
    task_strs_free(names, n);
    if (rc)
        return -1;
    t->type = (kinds & (1 << M_MC)) ? TASK_MULTIPLE_CHOICE
              : (kinds & (1 << M_GEN)) ? TASK_GENERATE : TASK_TARGET_LOGPROB;
    return 0;
}

static int bb_load_preferred(bb *L)
{
    task *t = L->t;
    char *p = NULL;
    if (get_str(L, "preferred_score", &p))
        return -1;
    if (!p) {
        t->preferred_metric = em_strdup(t->metrics[0]);
        return 0;
    }
    const struct bb_metric *m = bb_metric_find(p);
    const char *want = m ? m->em[m->em[1] ? 2 : 0] : p; /* rouge -> rougeL */
    if (!strcmp(p, "rougeLsum"))
        want = "rougeL";
    for (int i = 0; i < t->n_metrics; i++)
        if (!strcmp(t->metrics[i], want)) {
            t->preferred_metric = em_strdup(want);
            free(p);
            return 0;
        }
    em_errorf(L->err, "%s: preferred_score '%s' is not among the task's metrics",
              at(L, "preferred_score", -1), p);
    free(p);
    return -1;
}

/* ------------------------------------------------------------------ */
/* BIG-bench: examples                                                */

typedef struct bb_fmt {
    char *input_prefix, *output_prefix, *choice_prefix;
    int append_choices;
    bb_rng rng;
} bb_fmt;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* json_task.py's format_fn: prefix + input [+ choices] + output prefix.
 * The choices are the sorted texts in numpy's permutation order. */
static char *format_query(bb_fmt *f, const char *input, const cJSON *scores)
{
    em_buf b = {0};
    em_buf_puts(&b, f->input_prefix);
    em_buf_puts(&b, input);
    if (scores && f->append_choices) {
        int n = cJSON_GetArraySize(scores), i = 0;
        char **sorted = em_calloc((size_t)(n ? n : 1), sizeof *sorted);
        int *perm = em_calloc((size_t)(n ? n : 1), sizeof *perm);
        const cJSON *c;
        cJSON_ArrayForEach(c, scores) sorted[i++] = c->string;
        qsort(sorted, (size_t)n, sizeof *sorted, cmp_str);
        for (i = 0; i < n; i++)
            perm[i] = i;
        bb_rng_shuffle(&f->rng, perm, n);
        em_buf_puts(&b, f->choice_prefix);
        for (i = 0; i < n; i++) {
            if (i)
                em_buf_puts(&b, f->choice_prefix);
            em_buf_puts(&b, sorted[perm[i]]);
        }
        free(sorted);
        free(perm);
    }
    em_buf_puts(&b, f->output_prefix);
    return em_buf_take(&b);
}

static int example_scores(bb *L, const cJSON *sc, task_example *e)
{
    if (!cJSON_IsObject(sc))
        return em_errorf(L->err, "'target_scores' must be an object of choice to score");
    int n = cJSON_GetArraySize(sc);
    if (n < 1)
        return em_errorf(L->err, "'target_scores' is empty");
    e->choices = em_calloc((size_t)n, sizeof *e->choices);
    e->choice_scores = em_calloc((size_t)n, sizeof *e->choice_scores);
    const cJSON *c;
    cJSON_ArrayForEach(c, sc) {
        if (!cJSON_IsNumber(c))
            return em_errorf(L->err, "target_scores value of '%s' must be a number",
                             c->string);
        e->choices[e->n_choices] = em_strdup(c->string);
        e->choice_scores[e->n_choices++] = c->valuedouble;
    }
    return 0;
}

/* The choices with the top score, in file order (format_fn's target is
 * the first of them). */
static void top_choices(task_example *e)
{
    double best = -INFINITY;
    for (int i = 0; i < e->n_choices; i++)
        best = e->choice_scores[i] > best ? e->choice_scores[i] : best;
    e->targets = em_calloc((size_t)e->n_choices, sizeof *e->targets);
    for (int i = 0; i < e->n_choices; i++)
        if (e->choice_scores[i] == best)
            e->targets[e->n_targets++] = em_strdup(e->choices[i]);
}

static int example_targets(bb *L, const cJSON *tg, task_example *e)
{
    if (cJSON_IsString(tg)) {
        strs_push(&e->targets, &e->n_targets, em_strdup(tg->valuestring));
        return 0;
    }
    const cJSON *c;
    int ok = cJSON_IsArray(tg) && cJSON_GetArraySize(tg) > 0;
    cJSON_ArrayForEach(c, tg) ok = ok && cJSON_IsString(c);
    if (!ok)
        return em_errorf(L->err, "'target' must be a string or a non-empty list of "
                         "strings");
    cJSON_ArrayForEach(c, tg) strs_push(&e->targets, &e->n_targets, em_strdup(c->valuestring));
    return 0;
}

static int example_keys_ok(bb *L, const cJSON *r)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, r) {
        int ok = 0;
        for (int i = 0; example_keys[i] && !ok; i++)
            ok = !strcmp(c->string, example_keys[i]);
        if (!ok) {
            const char *s = ydoc_suggest(c->string, example_keys);
            return em_errorf(L->err, "unknown field '%s'%s%s%s (an example has input, "
                             "target, target_scores, comment)", c->string,
                             s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
        }
    }
    return 0;
}

static int example_fields(bb *L, bb_fmt *f, const cJSON *r, task_example *e);

static int bb_load_example(bb *L, bb_fmt *f, int idx, const cJSON *r, task_example *e)
{
    /* e->where is cheap (no line): locating an item scans the file, which
     * is only worth it for the message of an actual error. */
    char where[1300];
    snprintf(where, sizeof where, "%s: examples[%d]", L->path, idx);
    e->where = em_strdup(where);
    char id[32];
    snprintf(id, sizeof id, "%d", idx);
    e->id = em_strdup(id);
    int rc = example_fields(L, f, r, e);
    if (rc)
        em_error_prefix(L->err, "%s: examples[%d]", at(L, "examples", idx), idx);
    return rc;
}

static int example_fields(bb *L, bb_fmt *f, const cJSON *r, task_example *e)
{
    if (!cJSON_IsObject(r))
        return em_errorf(L->err, "an example must be an object");
    if (example_keys_ok(L, r))
        return -1;
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(r, "input");
    const cJSON *tg = cJSON_GetObjectItemCaseSensitive(r, "target");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(r, "target_scores");
    if (!cJSON_IsString(in))
        return em_errorf(L->err, "%s", in ? "'input' must be a string"
                                          : "missing field 'input'");
    e->input = em_strdup(in->valuestring);
    if (sc && example_scores(L, sc, e))
        return -1;
    if (L->t->type == TASK_MULTIPLE_CHOICE) {
        if (!sc)
            return em_errorf(L->err, "the task's metrics are multiple choice but the "
                             "example has no 'target_scores'");
        if (e->n_choices < 2)
            return em_errorf(L->err, "'target_scores' needs at least 2 choices");
        top_choices(e);
    } else if (tg) {
        if (example_targets(L, tg, e))
            return -1;
    } else if (sc) {
        /* format_fn's target: the first top-scored choice only. */
        int best = 0;
        for (int i = 1; i < e->n_choices; i++)
            best = e->choice_scores[i] > e->choice_scores[best] ? i : best;
        strs_push(&e->targets, &e->n_targets, em_strdup(e->choices[best]));
    } else {
        return em_errorf(L->err, "missing field 'target' (or 'target_scores')");
    }
    if (L->t->type != TASK_MULTIPLE_CHOICE && e->n_choices) {
        task_strs_free(e->choices, e->n_choices);
        free(e->choice_scores);
        e->choices = NULL;
        e->choice_scores = NULL;
        e->n_choices = 0;
    }
    e->field_keys = em_malloc(sizeof *e->field_keys);
    e->field_vals = em_malloc(sizeof *e->field_vals);
    e->field_keys[0] = em_strdup("bb_prompt");
    e->field_vals[0] = format_query(f, e->input, sc);
    e->n_fields = 1;
    return 0;
}

/* Index of the first earlier example with the same JSON text, else -1
 * (BIG-bench drops duplicate examples, keeping the first). */
typedef struct dup_key {
    uint64_t h;
    int i;
} dup_key;

static int cmp_dup(const void *a, const void *b)
{
    const dup_key *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->i - y->i;
}

static char *mark_duplicates(const cJSON *list, int n)
{
    char **txt = em_calloc((size_t)n, sizeof *txt);
    dup_key *k = em_calloc((size_t)n, sizeof *k);
    char *dup = em_calloc((size_t)n, 1);
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, list) {
        txt[i] = cJSON_PrintUnformatted(c);
        k[i] = (dup_key){em_hash64(txt[i], strlen(txt[i]), 0), i};
        i++;
    }
    qsort(k, (size_t)n, sizeof *k, cmp_dup);
    for (i = 1; i < n; i++)
        for (int j = i - 1; j >= 0 && k[j].h == k[i].h; j--)
            if (!dup[k[j].i] && !strcmp(txt[k[j].i], txt[k[i].i])) {
                dup[k[i].i] = 1;
                break;
            }
    for (i = 0; i < n; i++)
        cJSON_free(txt[i]);
    free(txt);
    free(k);
    return dup;
}

static int bb_load_examples(bb *L)
{
    task *t = L->t;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(L->root, "examples"), *r;
    if (!list)
        return em_errorf(L->err, "%s: missing required field 'examples'", at(L, NULL, -1));
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
        return em_errorf(L->err, "%s: field 'examples' must be a non-empty list",
                         at(L, "examples", -1));
    bb_fmt f = {0};
    bb_rng_seed(&f.rng, BB_SEED);
    f.append_choices = 1;
    const cJSON *ap = cJSON_GetObjectItemCaseSensitive(L->root, "append_choices_to_input");
    if (ap && !cJSON_IsBool(ap))
        return em_errorf(L->err, "%s: field 'append_choices_to_input' must be true or "
                         "false", at(L, "append_choices_to_input", -1));
    f.append_choices = !ap || cJSON_IsTrue(ap);
    int rc = get_str(L, "example_input_prefix", &f.input_prefix) ||
             get_str(L, "example_output_prefix", &f.output_prefix) ||
             get_str(L, "choice_prefix", &f.choice_prefix);
    f.input_prefix = f.input_prefix ? f.input_prefix : em_strdup("\nQ: ");
    f.output_prefix = f.output_prefix ? f.output_prefix : em_strdup("\nA: ");
    f.choice_prefix = f.choice_prefix ? f.choice_prefix : em_strdup("\n  choice: ");
    int n = cJSON_GetArraySize(list), i = 0;
    char *dup = rc ? NULL : mark_duplicates(list, n);
    t->examples = em_calloc((size_t)n, sizeof *t->examples);
    cJSON_ArrayForEach(r, list) {
        if (rc || dup[i]) {
            i++;
            continue;
        }
        /* Counted before loading so that task_free frees a partial one. */
        rc = bb_load_example(L, &f, i++, r, &t->examples[t->n_examples++]);
    }
    free(dup);
    free(f.input_prefix);
    free(f.output_prefix);
    free(f.choice_prefix);
    return rc ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* BIG-bench: the task                                                */

static void add_variant(task *t, const char *name, task_variant_kind kind, int k)
{
    t->variants = em_realloc(t->variants, (size_t)(t->n_variants + 1) * sizeof *t->variants);
    task_variant *v = &t->variants[t->n_variants++];
    task_variant_defaults(v, name, kind);
    if (k >= 0)
        v->few_shot_k = k;
}

/* Generation budget: enough for the longest target even at one token per
 * byte (the character-level models of a small family), at least
 * BB_MAX_TOKENS; a stop string usually ends generation much earlier. */
static int target_budget(const task *t)
{
    size_t most = 0;
    for (int i = 0; i < t->n_examples; i++)
        for (int j = 0; j < t->examples[i].n_targets; j++) {
            size_t n = strlen(t->examples[i].targets[j]);
            most = n > most ? n : most;
        }
    return most + 8 > BB_MAX_TOKENS ? (int)(most + 8) : BB_MAX_TOKENS;
}

static void builtin_variants(task *t)
{
    add_variant(t, "standard", VARIANT_STANDARD, -1);
    add_variant(t, "cot", VARIANT_COT, -1);
    add_variant(t, "zero_shot_cot", VARIANT_ZERO_SHOT_COT, -1);
}

/* Options "(A)", "(B)", ... listed in an input, counted from (A) on up
 * to (K): BBH's and BIG-bench's way of offering choices to a generative
 * task. 0 when there is no "(A)". */
static int listed_options(const char *input)
{
    int n = 0;
    char label[4] = "(A)";
    while (n < 11 && input && strstr(input, label)) {
        n++;
        label[1]++;
    }
    return n;
}

/* The chance that a random guess is right on a generative example, by the
 * form of its first target:
 *   "(X)", one of the options (A)..(K) the input lists  1 / options
 *   True/False, Yes/No, valid/invalid (any case)        1/2
 *   anything else (free text, numbers)                  0
 * BBH's 27 tasks are of these forms; a published random baseline of a
 * generative task is its chance, not 0. */
static double guess_chance(const task_example *e)
{
    static const char *const binary[] = {"true", "false", "yes", "no",
                                         "valid", "invalid"};
    size_t n;
    const char *tg = em_trim(e->n_targets ? e->targets[0] : "", &n);
    int opts = listed_options(e->input);
    if (n == 3 && tg[0] == '(' && tg[2] == ')' && tg[1] >= 'A' &&
        tg[1] < 'A' + opts)
        return 1.0 / opts;
    for (size_t i = 0; i < sizeof binary / sizeof *binary; i++)
        if (strlen(binary[i]) == n && !strncasecmp(tg, binary[i], n))
            return 0.5;
    return 0;
}

/* Random baseline: multiple choice, the mean of 1 / choices; generative
 * tasks scored by exact match, the mean chance of a guess (guess_chance);
 * other metrics (BLEU, ROUGE) 0. */
static void baseline(task *t)
{
    double s = 0;
    for (int i = 0; i < t->n_examples; i++) {
        if (t->type == TASK_MULTIPLE_CHOICE)
            s += 1.0 / t->examples[i].n_choices;
        else if (!strcmp(t->preferred_metric, "exact_match"))
            s += guess_chance(&t->examples[i]);
    }
    if (t->n_examples)
        s /= t->n_examples;
    t->random_baseline = s;
    t->low_score = 0;
    t->high_score = !strcmp(t->preferred_metric, "bleu") ? 100 : 1;
}

static int bb_load_answer(bb *L)
{
    task *t = L->t;
    char *re = NULL, *stop = NULL;
    if (get_str(L, "output_regex", &re) || get_str(L, "stop_string", &stop)) {
        free(re);
        free(stop);
        return -1;
    }
    /* json_task.py: an empty stop_string or output_regex is no setting. */
    if (stop && *stop)
        t->output_stop = stop;
    else
        free(stop);
    int rc;
    if (re && *re)
        rc = compile_answer(L, "output_regex", re);
    else if (t->output_stop)
        rc = compile_answer(L, "stop_string", BB_WHOLE_OUTPUT);
    else
        rc = compile_answer(L, "output_regex", BB_DEFAULT_REGEX);
    free(re);
    return rc;
}

static int bb_load_task(bb *L)
{
    task *t = L->t;
    if (check_keys(L) || get_str(L, "name", &t->name) ||
        get_str(L, "description", &t->description) ||
        get_strs(L, "keywords", 0, &t->keywords, &t->n_keywords))
        return -1;
    if (!t->name)
        return em_errorf(L->err, "%s: missing required field 'name'", at(L, NULL, -1));
    if (!*t->name)
        return em_errorf(L->err, "%s: field 'name' must not be empty", at(L, "name", -1));
    if (bb_load_metrics(L) || bb_load_preferred(L) || bb_load_examples(L) ||
        bb_load_answer(L))
        return -1;
    char *prefix = NULL;
    if (get_str(L, "task_prefix", &prefix) ||
        get_str(L, "few_shot_example_separator", &t->few_shot.separator)) {
        free(prefix);
        return -1;
    }
    if (prefix && *prefix)
        t->prefix = prefix;
    else
        free(prefix);
    if (!t->few_shot.separator)
        t->few_shot.separator = em_strdup("\n");
    t->template = em_strdup("{{bb_prompt}}");
    t->few_shot.example_template = em_strdup("{{bb_prompt}}{{target}}");
    t->few_shot.example_template_given = 1;
    t->choice_format = em_strdup("  {{choice}}");
    /* The prompt ends with example_output_prefix ("\nA: "), space included,
     * and BIG-bench scores each choice right after it. */
    t->continuation_prefix = em_strdup("");
    t->max_tokens = target_budget(t);
    builtin_variants(t);
    /* BIG-bench's evaluation protocol: 0 (standard), 1, 2 and 3 shots. */
    for (int k = 1; k <= BB_MAX_SHOTS && k < t->n_examples; k++) {
        char name[32];
        snprintf(name, sizeof name, "shots%d", k);
        add_variant(t, name, VARIANT_STANDARD, k);
    }
    baseline(t);
    return 0;
}

/* ------------------------------------------------------------------ */
/* BIG-Bench-Hard                                                     */

typedef struct bbh_prompt {
    char *description;
    char **q, **a; /* exemplar questions and full answers ("Let's think...") */
    char **final;  /* the final answers ("(B)", "False") */
    int n;
} bbh_prompt;

static void bbh_prompt_free(bbh_prompt *p)
{
    free(p->description);
    task_strs_free(p->q, p->n);
    task_strs_free(p->a, p->n);
    task_strs_free(p->final, p->n);
}

/* The final answer of a chain-of-thought exemplar: what follows the last
 * "So the answer is ", stripped, without its closing period. */
static char *final_answer(const char *a)
{
    const char *last = NULL, *p = a, *key = "So the answer is ";
    while ((p = strstr(p, key)))
        last = p++;
    if (!last)
        return NULL;
    const char *s = last + strlen(key);
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n && s[n - 1] == '.')
        n--;
    return em_strndup(s, n);
}

/* Splits a cot-prompt file: canary line, "-----" line, then the body
 * "description\n\nQ: q1\nA: a1\n\nQ: q2\nA: a2...". */
static int bbh_parse_prompt(const char *file, const char *text, bbh_prompt *p,
                            em_err *err)
{
    memset(p, 0, sizeof *p);
    const char *l2 = strchr(text, '\n');
    const char *body = l2 ? strchr(l2 + 1, '\n') : NULL;
    if (!l2 || !body || strncmp(l2 + 1, "-----", 5))
        return em_errorf(err, "%s:2:1: a BBH cot-prompt file starts with a canary line "
                         "and a '-----' line", file);
    body++;
    const char *sep = "\n\nQ: ", *q = strstr(body, sep);
    if (!q)
        return em_errorf(err, "%s:3:1: no exemplar ('\\n\\nQ: ') after the task "
                         "description", file);
    p->description = em_strndup(body, (size_t)(q - body));
    int line = 3;
    for (const char *c = body; c < q; c++)
        line += *c == '\n';
    while (q) {
        q += strlen(sep);
        line += 2;
        const char *next = strstr(q, sep);
        const char *end = next ? next : q + strlen(q);
        const char *a = strstr(q, "\nA: ");
        if (!a || a > end)
            return em_errorf(err, "%s:%d:1: exemplar %d has no '\\nA: ' line", file,
                             line, p->n + 1);
        char *ans = em_strndup(a + 4, (size_t)(end - a - 4));
        char *fin = final_answer(ans);
        if (!fin) {
            free(ans);
            return em_errorf(err, "%s:%d:1: exemplar %d has no 'So the answer is ...'",
                             file, line, p->n + 1);
        }
        int n = p->n;
        strs_push(&p->q, &n, em_strndup(q, (size_t)(a - q)));
        n = p->n;
        strs_push(&p->a, &n, ans);
        strs_push(&p->final, &p->n, fin);
        for (const char *c = q; c < end; c++)
            line += *c == '\n';
        q = next;
    }
    return 0;
}

static void bbh_shots(task *t, const bbh_prompt *p)
{
    t->shots = em_calloc((size_t)p->n, sizeof *t->shots);
    for (int i = 0; i < p->n; i++) {
        task_example *e = &t->shots[t->n_shots++];
        char id[32];
        snprintf(id, sizeof id, "shot%d", i);
        e->id = em_strdup(id);
        e->input = em_strdup(p->q[i]);
        e->rationale = em_strdup(p->a[i]);
        strs_push(&e->targets, &e->n_targets, em_strdup(p->final[i]));
        e->where = em_strdup(id);
    }
}

static int bbh_examples(bb *L)
{
    task *t = L->t;
    const cJSON *c;
    cJSON_ArrayForEach(c, L->root) if (strcmp(c->string, "canary") &&
                                       strcmp(c->string, "examples"))
        return em_errorf(L->err, "%s: unknown field '%s' in a BBH task file (it holds "
                         "'canary' and 'examples')", at_key(L, c->string), c->string);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(L->root, "examples");
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
        return em_errorf(L->err, "%s: field 'examples' must be a non-empty list",
                         at(L, "examples", -1));
    int n = cJSON_GetArraySize(list), i = 0;
    t->examples = em_calloc((size_t)n, sizeof *t->examples);
    cJSON_ArrayForEach(c, list) {
        task_example *e = &t->examples[t->n_examples++];
        char where[1300], id[32];
        snprintf(where, sizeof where, "%s: examples[%d]", L->path, i);
        snprintf(id, sizeof id, "%d", i);
        e->where = em_strdup(where);
        e->id = em_strdup(id);
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(c, "input");
        const cJSON *tg = cJSON_GetObjectItemCaseSensitive(c, "target");
        if (!cJSON_IsObject(c) || cJSON_GetArraySize(c) != 2 || !cJSON_IsString(in) ||
            !cJSON_IsString(tg))
            return em_errorf(L->err, "%s: examples[%d]: a BBH example is an object "
                             "with string fields 'input' and 'target' and nothing else",
                             at(L, "examples", i), i);
        e->input = em_strdup(in->valuestring);
        strs_push(&e->targets, &e->n_targets, em_strdup(tg->valuestring));
        i++;
    }
    return 0;
}

static int bbh_task(bb *L, const char *prompt_file, const char *prompt_text)
{
    task *t = L->t;
    bbh_prompt p;
    if (bbh_parse_prompt(prompt_file, prompt_text, &p, L->err)) {
        bbh_prompt_free(&p);
        return -1;
    }
    t->name = base_name(L->path);
    t->description = em_strdup(p.description);
    em_buf pre = {0};
    em_buf_printf(&pre, "%s\n\n", p.description);
    t->prefix = em_buf_take(&pre);
    bbh_shots(t, &p);
    bbh_prompt_free(&p);
    if (bbh_examples(L))
        return -1;
    t->type = TASK_GENERATE;
    t->template = em_strdup("Q: {{input}}\nA:");
    t->few_shot.k = t->n_shots;
    t->few_shot.fixed = 1;
    t->few_shot.separator = em_strdup("\n\n");
    t->few_shot.example_template = em_strdup("Q: {{input}}\nA: {{target}}");
    t->few_shot.example_template_given = 1;
    t->choice_format = em_strdup("  {{choice}}");
    t->continuation_prefix = em_strdup(" ");
    strs_push(&t->stop, &t->n_stop, em_strdup("\n\n"));
    t->max_tokens = target_budget(t);
    t->answer.norm = NORM_STRIP;
    strs_push(&t->metrics, &t->n_metrics, em_strdup("exact_match"));
    t->preferred_metric = em_strdup("exact_match");
    builtin_variants(t);
    task_variant *cot = &t->variants[1];
    cot->template = em_strdup("Q: {{input}}\nA: " BBH_COT_TRIGGER);
    cot->example_template = em_strdup("Q: {{input}}\nA: {{rationale}}");
    /* room for a rationale twice the published ones' length, at one token
     * per byte; "\n\n" stops a model that ends its answer as they do */
    for (int i = 0; i < t->n_shots; i++) {
        int n = 2 * (int)strlen(t->shots[i].rationale);
        cot->max_tokens = n > cot->max_tokens ? n : cot->max_tokens;
    }
    baseline(t);
    return compile_answer(L, "examples", BBH_ANSWER_RE);
}

/* ------------------------------------------------------------------ */
/* Entry points                                                       */

static int is_bbh(const cJSON *root)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, root) if (strcmp(c->string, "canary") &&
                                    strcmp(c->string, "examples"))
        return 0;
    return cJSON_GetObjectItemCaseSensitive(root, "examples") != NULL;
}

char *task_bbh_prompt_path(const char *json_path)
{
    char *name = base_name(json_path);
    const char *envdir = getenv("EMERGE_BBH_PROMPTS");
    em_buf b = {0};
    if (envdir && *envdir) {
        em_buf_printf(&b, "%s/%s.txt", envdir, name);
    } else {
        const char *slash = strrchr(json_path, '/');
        if (slash)
            em_buf_put(&b, json_path, (size_t)(slash - json_path + 1));
        em_buf_printf(&b, "../cot-prompts/%s.txt", name);
    }
    free(name);
    return em_buf_take(&b);
}

/* Reads and parses path; with prompt_path NULL a BBH file looks its
 * prompt up with task_bbh_prompt_path. */
static int load_json_task(const char *path, const char *prompt_path, task **out,
                          em_err *err)
{
    *out = NULL;
    char *text, *ptext = NULL, *ppath = NULL;
    size_t len, plen = 0;
    if (em_read_file(path, &text, &len, err))
        return -1;
    bb L = {.path = path, .text = text, .len = len, .err = err};
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    int rc = 0;
    size_t off = end && end >= text ? (size_t)(end - text) : 0;
    if (!root) {
        rc = em_errorf(err, "%s: invalid JSON", pos_of(path, text, off, L.pos, sizeof L.pos));
    } else if (skip_ws(text, len, off) < len) {
        rc = em_errorf(err, "%s: invalid JSON (text after the top-level value)",
                       pos_of(path, text, off, L.pos, sizeof L.pos));
    } else if (!cJSON_IsObject(root)) {
        rc = em_errorf(err, "%s:1:1: a BIG-bench task file is a JSON object", path);
    }
    L.root = root;
    int bbh = !rc && (prompt_path || is_bbh(root));
    if (bbh) {
        ppath = prompt_path ? em_strdup(prompt_path) : task_bbh_prompt_path(path);
        em_err e2;
        if (em_read_file(ppath, &ptext, &plen, &e2))
            rc = em_errorf(err, "%s: BBH task: its chain-of-thought prompt file cannot "
                           "be read (%s); put it at ../cot-prompts/<name>.txt or set "
                           "EMERGE_BBH_PROMPTS to its directory", path, e2.msg);
    }
    if (!rc) {
        L.t = em_calloc(1, sizeof *L.t);
        L.t->path = em_strdup(path);
        rc = bbh ? bbh_task(&L, ppath, ptext) : bb_load_task(&L);
    }
    if (!rc) {
        /* The hash covers every byte the prompts come from. */
        em_buf h = {0};
        em_buf_put(&h, text, len);
        if (ptext)
            em_buf_put(&h, ptext, plen);
        em_sha256_hex(h.s, h.len, L.t->hash);
        em_buf_free(&h);
        *out = L.t;
    } else {
        task_free(L.t);
    }
    cJSON_Delete(root);
    free(text);
    free(ptext);
    free(ppath);
    return rc ? -1 : 0;
}

int task_load_bigbench(const char *path, task **out, em_err *err)
{
    *out = NULL;
    if (task_has_suffix(path, ".py"))
        return em_errorf(err, "%s: programmatic BIG-bench tasks (task.py) are not "
                         "supported; only JSON tasks (task.json) load", path);
    return load_json_task(path, NULL, out, err);
}

int task_load_bbh(const char *json_path, const char *prompt_path, task **out,
                  em_err *err)
{
    return load_json_task(json_path, prompt_path, out, err);
}

/* ------------------------------------------------------------------ */
/* Directories                                                        */

static int is_task_file(const char *name)
{
    return task_has_suffix(name, ".yaml") || task_has_suffix(name, ".yml") ||
           task_has_suffix(name, ".json");
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int task_list_dir(const char *dir, char ***paths, int *n, em_err *err)
{
    *paths = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return em_errorf(err, "%s: cannot read directory", dir);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        em_buf b = {0};
        em_buf_printf(&b, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(b.s, &st) == 0 && S_ISDIR(st.st_mode)) {
            size_t base = b.len;
            em_buf_puts(&b, "/task.json");
            if (!is_file(b.s)) {
                b.len = base;
                b.s[base] = '\0';
                em_buf_puts(&b, "/task.py");
            }
            if (is_file(b.s))
                strs_push(paths, n, em_buf_take(&b));
        } else if (is_task_file(e->d_name) && is_file(b.s)) {
            strs_push(paths, n, em_buf_take(&b));
        }
        em_buf_free(&b);
    }
    closedir(d);
    if (!*n)
        return em_errorf(err, "%s: no task files (*.yaml, *.yml, *.json, */task.json) "
                         "in the directory", dir);
    qsort(*paths, (size_t)*n, sizeof **paths, cmp_str);
    return 0;
}
