/*
 * figures.h - what a results database says, gathered once for the plots
 * and the report, and the emergence figures built from it.
 *
 * Owns: report_data (scaling series with their analysis, tasks, models,
 * multiple-choice log-likelihoods, the suite order by breakthroughness)
 * and the figure set:
 *   TASK-variants   preferred metric vs scale, one line per prompt variant,
 *                   bootstrap 95% CIs, random baseline, emergence scales
 *   TASK-metrics    every metric of the main variant normalised to 0-1
 *                   (the rule is report_normalize's comment), and where
 *                   the mirage test applies (metrics/mirage.h) the
 *                   probability of the whole target, measured and from
 *                   the smooth log-prob fit, with the verdict
 *   TASK-choices    multiple choice: mean log-prob of the correct choice
 *                   and of the incorrect ones
 *   overview        small multiples, one per task, by breakthroughness,
 *                   each in the variant whose largest model scores highest
 */
#ifndef EMERGE_REPORT_FIGURES_H
#define EMERGE_REPORT_FIGURES_H

#include <stddef.h>

#include "metrics/store_query.h"
#include "metrics/scaling.h"
#include "reports/plot.h"

typedef struct report_data {
    char *db_path;
    char *task_version;         /* --task-version selection, or NULL */
    int axis;                   /* SCALING_AXIS_* (metrics/results.h) */
    int axis_flops;             /* axis == SCALING_AXIS_FLOPS */
    scaling_series *series;
    scaling_result *res;        /* per series */
    int n_series;
    sq_task *tasks;             /* sorted by name */
    int n_tasks;
    int *main_series;           /* per task: preferred metric of its main
                                   variant ("standard" if present), or -1 */
    int *order;                 /* task indices by breakthroughness, desc */
    sq_model *models;
    int n_models;
    sq_choice *choices;
    int n_choices;
    struct mirage_row *mirage;  /* the mirage test per (task, variant), its
                                   curves drawn on TASK-metrics */
    int n_mirage;
    scaling_series *overlay;    /* --scores: published or other families'
                                   numbers, drawn dashed on TASK-variants */
    char **overlay_family;      /* per overlay series, or NULL entries */
    int n_overlay;
} report_data;

/* Reads everything from the database (read-only: nothing is created,
 * migrated or written), at the task versions task_version selects (NULL:
 * the current ones; see store_select_versions), on axis SCALING_AXIS_*,
 * noting on stderr which tasks have other versions and which models have
 * no count on the non-embedding axis (left off it). */
int report_data_load(const char *db_path, int axis,
                     const char *task_version, report_data *d, em_err *err);
void report_data_free(report_data *d);

/* Adds the series of a scores CSV (scaling_read_csv_families: task, model,
 * params, score[, lo, hi][, variant][, metric][, family]) to draw over the
 * TASK-variants figures of the tasks they name, dashed, as
 * "FAMILY VARIANT" (or "scores: VARIANT"). Series that name no task of the
 * database, or another metric than the task's preferred one, are counted
 * into *unmatched and named on stderr, not drawn. Params and flops axes
 * only: a CSV has no non-embedding counts. */
int report_data_overlay(report_data *d, const char *csv_path, int *unmatched,
                        em_err *err);

/* 1 when some point of some series was scored on truncated prompts. */
int report_any_truncated(const report_data *d);

/* The x of a series point on the chosen axis. */
double report_axis_x(const report_data *d, const scaling_point *p);
const char *report_axis_label(const report_data *d);
/* "exact match (fraction of examples)" etc.; the metric name if unknown. */
const char *report_metric_label(const char *metric);
/* 1.5B, 350M, 7e+21 for flops. */
void report_fmt_scale(char *out, size_t n, double v);
/* The name of a task's figure of one kind ("variants", "metrics",
 * "choices"): the task's file-name form, '-', kind; malloc'd. The figures
 * are written under it and both report formats look them up by it. */
char *report_fig_name(const char *task, const char *kind);

/* Every figure; free each with report_fig_free, then the array. */
int report_figures(const report_data *d, report_fig **out, int *n);

/* The 0-1 view of series s for the metrics figure, in place on y/lo/hi
 * of n points. */
void report_normalize(const scaling_series *s, double *y, double *lo,
                      double *hi, int n);

#endif
