/*
 * task.h - a task as emerge runs it: examples, prompt template, few-shot
 * exemplars, prompt variants, answer extraction and metrics.
 *
 * Owns: loading task files (YAML, see tasks/README.md) into struct task,
 * validating them with file:line:column errors, rendering the requests an
 * example needs under a variant, and extracting/normalising answers.
 * It does not talk to models or the store (harness/sweep.c does). One
 * file per concern (task.c, task_data.c, task_yaml.c, task_bigbench.c,
 * task_load.c, task_prompt.c, task_request.c, task_answer.c): task_int.h
 * says which owns what.
 *
 * Variants: every task runs as "standard", "cot" (few-shot exemplars that
 * carry a rationale), "zero_shot_cot" (two passes, Kojima et al. 2022) and
 * any named variants the file adds; a task with a `retrieval:` corpus
 * also runs as "retrieval" (top-k passages by BM25 put in the prompt).
 */
#ifndef EMERGE_TASK_H
#define EMERGE_TASK_H

#include "base/common.h"

typedef enum task_type {
    TASK_GENERATE,
    TASK_MULTIPLE_CHOICE,
    TASK_TARGET_LOGPROB,
} task_type;

/* Answer normalisation flags (applied to predictions and targets alike). */
enum {
    NORM_STRIP = 1,     /* trim surrounding whitespace */
    NORM_CASE = 2,      /* lower-case */
    NORM_PUNCT = 4,     /* drop ASCII punctuation */
    NORM_ARTICLES = 8,  /* drop "a", "an", "the" as words */
    NORM_NUMBER = 16,   /* canonicalise numbers: "1,000.0" -> "1000" */
};

typedef struct task_example {
    char *id;              /* stable id: given in the data, or the index */
    char *input;
    char **targets;        /* acceptable answers; targets[0] is canonical */
    int n_targets;
    char **choices;        /* multiple choice options, or NULL */
    double *choice_scores; /* n_choices; BIG-bench target_scores (1 = correct) */
    int n_choices;
    char *rationale;       /* chain-of-thought text, for cot exemplars */
    char **field_keys;     /* every field of the record, for {{name}} */
    char **field_vals;
    int n_fields;
    char *where;           /* "file:line" of the record, for messages */
} task_example;

typedef enum task_variant_kind {
    VARIANT_STANDARD,
    VARIANT_COT,
    VARIANT_ZERO_SHOT_COT,
    VARIANT_RETRIEVAL,      /* standard, with retrieved passages in the
                             * prompt (the task's `retrieval:` corpus) */
} task_variant_kind;

typedef struct task_variant {
    char *name;
    task_variant_kind kind;
    char *instruction;      /* text put before the prompt, or NULL */
    char *template;         /* overrides the task template, or NULL */
    char *example_template; /* overrides the few-shot example template */
    char *cot_trigger;      /* zero_shot_cot: "Let's think step by step." */
    char *answer_trigger;   /* zero_shot_cot pass 2: "Therefore, the answer is" */
    int few_shot_k;         /* -1: the task's k */
    int max_tokens;         /* 0: the task's */
    /* self_consistency: {samples, temperature, top_p}: sc_samples sampled
     * generations per example, answers majority-voted (harness/sweep.c,
     * metrics/vote.h); 0 = off. Temperature defaults to
     * TASK_SC_TEMPERATURE, top_p to 1. */
    int sc_samples;
    double sc_temperature;
    double sc_top_p;
} task_variant;

#define TASK_SC_TEMPERATURE 0.7

typedef struct task_answer {
    char *pattern;  /* PCRE2 pattern; capture group 1 if present, else match */
    int last;       /* 1: use the last match, 0: the first */
    unsigned norm;  /* NORM_* */
} task_answer;

typedef struct task_few_shot {
    int k;
    uint64_t seed;
    char *separator;        /* between exemplars, default "\n\n" */
    char *example_template; /* how an exemplar is written */
    int example_template_given; /* 1: from the file; 0: derived from
                                 * the (variant's) template + " {{target}}" */
    int fixed;              /* 1: the first k of the pool, in pool order,
                             * instead of a seeded draw (BBH's published
                             * exemplars are a fixed, ordered prompt) */
} task_few_shot;

typedef struct task {
    char *path;             /* the file it came from */
    char *name;
    char *description;
    char **keywords;
    int n_keywords;
    task_type type;
    char *template;
    task_example *examples; /* evaluated */
    int n_examples;
    task_example *shots;    /* few-shot pool (may alias a split of the data) */
    int n_shots;
    task_few_shot few_shot;
    char **stop;
    int n_stop;
    int max_tokens;
    task_answer answer;
    char **metrics;
    int n_metrics;
    char *preferred_metric;
    double random_baseline; /* in the preferred metric's units */
    double low_score;       /* normalisation: 100*(s-low)/(high-low) */
    double high_score;
    task_variant *variants; /* always holds standard, cot, zero_shot_cot */
    int n_variants;
    char hash[65];          /* SHA-256 of the file bytes and data bytes */
    char *choice_format;    /* one line of {{choices}}, default "  {{choice}}" */
    char *continuation_prefix; /* put before a scored choice/target, " " */
    char *unconditional_prefix; /* acc_mutual_info: the context a choice is
                                  scored in without the question ("":
                                  none, the backend's BOS alone) */
    void *answer_re;        /* compiled answer.pattern (pcre2_code *) */
    char *prefix;           /* literal text put before every prompt, not a
                             * template (BIG-bench task_prefix, BBH's task
                             * description); NULL for none */
    char *output_stop;      /* BIG-bench stop_string: answer extraction first
                             * cuts the output after its first occurrence
                             * (kept, as BIG-bench does); NULL for none */
    struct retr_spec *retrieval; /* `retrieval:` corpus, k, template and
                             * its index (harness/retrieval.h); NULL */
} task;

int task_load(const char *path, task **out, em_err *err);
void task_free(task *t);

/* Fills v with the built-in defaults of a variant of that kind (for
 * loaders of other formats, e.g. harness/task_bigbench.c). */
void task_variant_defaults(task_variant *v, const char *name,
                           task_variant_kind kind);

/* The variant called name, or NULL. */
const task_variant *task_variant_find(const task *t, const char *name);

/* One request the sweep must send to a backend for an example. */
typedef enum task_req_kind { TASK_REQ_GENERATE, TASK_REQ_LOGLIK } task_req_kind;

typedef struct task_request {
    task_req_kind kind;
    char *prompt;       /* generate prompt, or log-likelihood context */
    char *continuation; /* log-likelihood only */
    int choice;         /* choice index scored, -1 for the target, -2 none,
                           TASK_UNCOND(i) choice i scored without the
                           question (acc_mutual_info) */
    int max_tokens;     /* generate only */
} task_request;

/* Unconditional choice requests carry choice TASK_UNCOND(i) (stored as is:
 * negative, so readers of conditional choices, r.choice >= 0, pass them
 * by); TASK_UNCOND_INDEX gives i back. */
#define TASK_UNCOND(i) (-10 - (i))
#define TASK_UNCOND_INDEX(c) (-10 - (c))
#define TASK_IS_UNCOND(c) ((c) <= -10)

/* The first-pass requests of example ex under variant v (stop strings and
 * other generation settings come from the task). */
int task_build_requests(const task *t, const task_variant *v, int ex,
                        task_request **out, int *n, em_err *err);
/* zero_shot_cot: the second pass after the first pass produced rationale. */
int task_build_second_pass(const task *t, const task_variant *v, int ex,
                           const char *first_prompt, const char *rationale,
                           task_request *out, em_err *err);
void task_requests_free(task_request *r, int n);

/* Extracts the answer from a model output with the task's pattern and
 * normalises it; malloc'd result ("" when nothing matched). */
char *task_extract_answer(const task *t, const char *output);
/* Normalises s with NORM_* flags; malloc'd. */
char *task_normalize(const char *s, unsigned flags);

/* task_extract_answer for an output produced under variant v: for cot
 * variants the text after the last answer_trigger ("So the answer is") is
 * used when the trigger occurs, so the rationale's numbers are ignored. */
char *task_extract_answer_variant(const task *t, const task_variant *v,
                                  const char *output);
/* The choice of example ex that a normalised answer names (its text under
 * the task's normalisation, or a letter "A"/"(b)" by position), or -1. */
int task_match_choice(const task *t, int ex, const char *answer);

/* Pool of few-shot exemplars for example ex under variant v: the k indices
 * chosen (into t->shots when t->n_shots > 0, else into t->examples), in
 * prompt order; deterministic in (few_shot.seed, example id). */
int task_pick_shots(const task *t, const task_variant *v, int ex, int **idx,
                    int *k, em_err *err);

#endif
