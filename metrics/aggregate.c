/*
 * aggregate.c - from per-example values to one number per (model, task).
 *
 * Owns: the mean with a seeded percentile bootstrap confidence interval,
 * expected calibration error, and BIG-bench score normalisation.
 */
#include "metrics/metric.h"

#include <math.h>
#include <stdlib.h>

/* Quantile q of sorted v[0..n) with linear interpolation between order
 * statistics (numpy's default), so small n_boot still gives smooth ends. */
static double quantile_sorted(const double *v, int n, double q)
{
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1)
        return v[n - 1];
    if (i < 0)
        return v[0];
    return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

/* The resample means are drawn from one SplitMix64 stream: resample b
 * picks n indices floor(u * n). The same (v, n_boot, seed) always gives
 * the same interval, on every machine. */
void metric_bootstrap(const double *v, int n, int n_boot, double level,
                      uint64_t seed, metric_summary *out)
{
    out->n = n;
    if (n <= 0) {
        out->mean = out->lo = out->hi = NAN;
        return;
    }
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    out->mean = sum / n;
    out->lo = out->hi = out->mean;
    if (n_boot < 1 || n == 1)
        return;
    double *means = em_malloc(sizeof(double) * (size_t)n_boot);
    uint64_t st = seed;
    for (int b = 0; b < n_boot; b++) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            int k = (int)(em_rand01(&st) * n);
            s += v[k < n ? k : n - 1];
        }
        means[b] = s / n;
    }
    qsort(means, (size_t)n_boot, sizeof(double), em_cmp_double);
    double tail = (1 - level) / 2;
    out->lo = quantile_sorted(means, n_boot, tail);
    out->hi = quantile_sorted(means, n_boot, 1 - tail);
    free(means);
}

/* ECE = sum over bins b of (n_b / n) * |mean correct_b - mean conf_b|.
 * Bin b covers [b/n_bins, (b+1)/n_bins); confidence 1 falls in the last
 * bin; confidences outside [0,1] are clamped. Empty bins add nothing. */
double metric_ece(const double *confidence, const double *correct, int n,
                  int n_bins)
{
    if (n <= 0 || n_bins <= 0)
        return 0;
    double *conf = em_calloc((size_t)n_bins, sizeof(double));
    double *acc = em_calloc((size_t)n_bins, sizeof(double));
    int *cnt = em_calloc((size_t)n_bins, sizeof(int));
    for (int i = 0; i < n; i++) {
        double c = confidence[i] < 0 ? 0 : confidence[i] > 1 ? 1 : confidence[i];
        int b = (int)(c * n_bins);
        if (b >= n_bins)
            b = n_bins - 1;
        conf[b] += c;
        acc[b] += correct[i];
        cnt[b]++;
    }
    double ece = 0;
    for (int b = 0; b < n_bins; b++)
        if (cnt[b])
            ece += fabs(acc[b] - conf[b]) / n; /* = (n_b/n)|acc_b - conf_b| */
    free(conf);
    free(acc);
    free(cnt);
    return ece;
}

/* With no normalisation range (low == high) the raw score is kept. */
double metric_normalize(double s, double low, double high)
{
    if (high == low)
        return s;
    return 100 * (s - low) / (high - low);
}
