/*
 * scaling_print.c - scaling tables as text, CSV, JSON and Markdown.
 *
 * Owns: scaling_print. For each series (task, variant, metric) it shows the
 * scores by scale (model, params or flops, score with its CI, normalised
 * score) and the analysis of scaling.c: linearity, breakthroughness ("inf"
 * or "-inf" when its denominator is 0), emergence scale ("none") and the
 * inverse-scaling / U-shape flags.
 */
#include "metrics/scaling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/csv.h"
#include "metrics/metric.h"

/* 70M, 1.4B, 6.9B, 12B: what people call model sizes. */
static void fmt_count(char *out, size_t n, double v)
{
    static const char *suffix[] = {"", "K", "M", "B", "T"};
    int k = 0;
    double a = v;
    while (fabs(a) >= 999.5 && k < 4) { /* 999.6M prints as 1B, not 1e+03M */
        a /= 1000;
        k++;
    }
    snprintf(out, n, "%.3g%s", a, suffix[k]);
}

static void fmt_axis(char *out, size_t n, double v, int axis_flops)
{
    if (axis_flops)
        snprintf(out, n, "%.3g", v);
    else
        fmt_count(out, n, v);
}

/* digits: 3 for reading, 17 (round-trip) for CSV. */
static void fmt_breakthrough(char *out, size_t n, const scaling_result *r,
                             int digits)
{
    if (r->b_inf)
        snprintf(out, n, "%s", r->breakthroughness > 0 ? "inf" : "-inf");
    else if (digits > 3)
        snprintf(out, n, "%.*g", digits, r->breakthroughness);
    else
        snprintf(out, n, "%.*f", digits, r->breakthroughness);
}

static void fmt_emergence(char *out, size_t n, const scaling_result *r,
                          int axis_flops)
{
    if (r->emergence_scale > 0)
        fmt_axis(out, n, r->emergence_scale, axis_flops);
    else
        snprintf(out, n, "none");
}

static const char *flags_text(const scaling_result *r)
{
    if (r->inverse && r->u_shape)
        return "inverse, u-shape";
    if (r->inverse)
        return "inverse";
    return r->u_shape ? "u-shape" : "none";
}

static const char *dash(const char *s)
{
    return s && *s ? s : "-";
}

/* The y of the analysis (see scaling_y), shown as "normalised". */
static double norm(const scaling_series *s, double v)
{
    return scaling_y(s, v);
}

static void fmt_ci(char *out, size_t n, const scaling_point *p)
{
    if (isnan(p->lo) || isnan(p->hi))
        snprintf(out, n, "-");
    else
        snprintf(out, n, "[%.4g, %.4g]", p->lo, p->hi);
}

static void print_table(FILE *f, const scaling_series *s, int axis)
{
    scaling_result r;
    char ax[32], ci[64], b[32], e[32];
    int axis_flops = axis == SCALING_AXIS_FLOPS;
    scaling_analyze(s, axis_flops, &r);
    fprintf(f, "task %s  variant %s  metric %s\n", dash(s->task), dash(s->variant),
            dash(s->metric));
    fprintf(f, "  %-24s %10s %10s %-22s %9s %6s\n", "model",
            scaling_axis_name(axis), "score", "95% CI", "normalised",
            "n");
    int *ord = scaling_axis_order(s, axis_flops);
    for (int i = 0; i < s->n; i++) {
        const scaling_point *p = &s->pts[ord[i]];
        fmt_axis(ax, sizeof ax, axis_flops ? p->flops : p->params, axis_flops);
        fmt_ci(ci, sizeof ci, p);
        fprintf(f, "  %-24s %10s %10.4g %-22s %9.2f %6d\n", p->model, ax,
                p->score, ci, norm(s, p->score), p->n);
    }
    free(ord);
    fmt_breakthrough(b, sizeof b, &r, 3);
    fmt_emergence(e, sizeof e, &r, axis_flops);
    fprintf(f, "  linearity %.3f  breakthroughness %s  emergence %s  "
               "slope %.3f/decade  flags %s\n\n",
            r.linearity, b, e, r.slope, flags_text(&r));
}

static void print_md(FILE *f, const scaling_series *s, int axis)
{
    scaling_result r;
    char ax[32], ci[64], b[32], e[32];
    int axis_flops = axis == SCALING_AXIS_FLOPS;
    scaling_analyze(s, axis_flops, &r);
    fprintf(f, "### %s / %s / %s\n\n", dash(s->task), dash(s->variant),
            dash(s->metric));
    fprintf(f, "| model | %s | score | 95%% CI | normalised | n |\n",
            scaling_axis_name(axis));
    fprintf(f, "|---|---:|---:|---|---:|---:|\n");
    int *ord = scaling_axis_order(s, axis_flops);
    for (int i = 0; i < s->n; i++) {
        const scaling_point *p = &s->pts[ord[i]];
        fmt_axis(ax, sizeof ax, axis_flops ? p->flops : p->params, axis_flops);
        fmt_ci(ci, sizeof ci, p);
        fprintf(f, "| %s | %s | %.4g | %s | %.2f | %d |\n", p->model, ax,
                p->score, ci, norm(s, p->score), p->n);
    }
    free(ord);
    fmt_breakthrough(b, sizeof b, &r, 3);
    fmt_emergence(e, sizeof e, &r, axis_flops);
    fprintf(f, "\nlinearity **%.3f**, breakthroughness **%s**, emergence "
               "scale **%s**, slope %.3f per decade, flags: %s\n\n",
            r.linearity, b, e, r.slope, flags_text(&r));
}

static void print_csv_series(FILE *f, const scaling_series *s, int axis_flops)
{
    scaling_result r;
    char b[32], e[32];
    scaling_analyze(s, axis_flops, &r);
    fmt_breakthrough(b, sizeof b, &r, 17);
    if (r.emergence_scale > 0)
        snprintf(e, sizeof e, "%.17g", r.emergence_scale);
    else
        snprintf(e, sizeof e, "none");
    int *ord = scaling_axis_order(s, axis_flops);
    for (int i = 0; i < s->n; i++) {
        const scaling_point *p = &s->pts[ord[i]];
        csv_field_file(f, s->task);
        fputc(',', f);
        csv_field_file(f, s->variant);
        fputc(',', f);
        csv_field_file(f, s->metric);
        fputc(',', f);
        csv_field_file(f, p->model);
        csv_num_file(f, p->params, 17);
        csv_num_file(f, p->flops, 17);
        csv_num_file(f, p->score, 17);
        csv_num_file(f, p->lo, 17);
        csv_num_file(f, p->hi, 17);
        fprintf(f, ",%d", p->n);
        csv_num_file(f, norm(s, p->score), 17);
        fprintf(f, ",%.17g,%s,%s,%d,%d,%.17g\n", r.linearity, b, e, r.inverse,
                r.u_shape, r.slope);
    }
    free(ord);
}

static void json_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static cJSON *json_series(const scaling_series *s, int axis)
{
    scaling_result r;
    int axis_flops = axis == SCALING_AXIS_FLOPS;
    scaling_analyze(s, axis_flops, &r);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", s->task ? s->task : "");
    cJSON_AddStringToObject(o, "variant", s->variant ? s->variant : "");
    cJSON_AddStringToObject(o, "metric", s->metric ? s->metric : "");
    cJSON_AddStringToObject(o, "axis", scaling_axis_name(axis));
    cJSON *pts = cJSON_AddArrayToObject(o, "points");
    int *ord = scaling_axis_order(s, axis_flops);
    for (int i = 0; i < s->n; i++) {
        const scaling_point *p = &s->pts[ord[i]];
        cJSON *q = cJSON_CreateObject();
        cJSON_AddStringToObject(q, "model", p->model ? p->model : "");
        json_num(q, "params", p->params);
        json_num(q, "flops", p->flops);
        json_num(q, "score", p->score);
        json_num(q, "lo", p->lo);
        json_num(q, "hi", p->hi);
        cJSON_AddNumberToObject(q, "n", p->n);
        json_num(q, "normalized", norm(s, p->score));
        cJSON_AddItemToArray(pts, q);
    }
    free(ord);
    json_num(o, "linearity", r.linearity);
    if (r.b_inf)
        cJSON_AddStringToObject(o, "breakthroughness",
                                r.breakthroughness > 0 ? "inf" : "-inf");
    else
        json_num(o, "breakthroughness", r.breakthroughness);
    cJSON_AddBoolToObject(o, "breakthroughness_inf", r.b_inf);
    if (r.emergence_scale > 0)
        cJSON_AddNumberToObject(o, "emergence_scale", r.emergence_scale);
    else
        cJSON_AddNullToObject(o, "emergence_scale");
    cJSON_AddBoolToObject(o, "inverse", r.inverse);
    cJSON_AddBoolToObject(o, "u_shape", r.u_shape);
    json_num(o, "slope", r.slope);
    return o;
}

/* On the nonembed axis the CSV's params column (and the JSON's) holds the
 * non-embedding count: the columns stay what scaling_read_csv reads. */
int scaling_print(FILE *f, const scaling_series *s, int n, int axis,
                  scaling_format fmt, em_err *err)
{
    int axis_flops = axis == SCALING_AXIS_FLOPS;
    if (fmt == SCALING_JSON) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(arr, json_series(&s[i], axis));
        char *txt = cJSON_Print(arr);
        cJSON_Delete(arr);
        if (!txt)
            return em_errorf(err, "scaling: cannot format JSON");
        fprintf(f, "%s\n", txt);
        free(txt);
    } else if (fmt == SCALING_CSV) {
        fprintf(f, "task,variant,metric,model,params,flops,score,lo,hi,n,"
                   "normalized,linearity,breakthroughness,emergence_scale,"
                   "inverse,u_shape,slope\n");
        for (int i = 0; i < n; i++)
            print_csv_series(f, &s[i], axis_flops);
    } else if (fmt == SCALING_MD || fmt == SCALING_TABLE) {
        for (int i = 0; i < n; i++) {
            if (fmt == SCALING_MD)
                print_md(f, &s[i], axis);
            else
                print_table(f, &s[i], axis);
        }
    } else {
        return em_errorf(err, "scaling: unknown output format %d", (int)fmt);
    }
    if (ferror(f))
        return em_errorf(err, "scaling: write error");
    return 0;
}
