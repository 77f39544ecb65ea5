/*
 * task_answer.c - answers: extracted from a model output with the task's
 * pattern (after BIG-bench's stop string, after a cot variant's answer
 * trigger), normalised with NORM_* flags (case, punctuation, articles,
 * numbers), and matched against an example's choices.
 */
#include <ctype.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "harness/task.h"

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
    size_t n;
    s = em_trim(s, &n);
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
