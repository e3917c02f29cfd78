/*
 * The hindsight bound of keepalive_bound.h.
 *
 * One function: with its idle times sorted, a window [p, q] that leaves a
 * idle times below p and b above q cold costs least when p and q are the
 * (a+1)-th smallest and (b+1)-th largest idle times themselves, and more
 * cold idle times never cost more memory-time, so with `cold` cold starts
 * allowed (the first call is one) the best window is among the a + b =
 * cold - 1 splits, each priced in O(1) from prefix sums.
 *
 * All functions: the 75th-percentile function is at most c when at least
 * the nearest rank's count of functions are; the cheapest way is to give
 * every function the window its cap asks for and the windows for c to the
 * functions for which they cost least beyond that. Whether that fits the
 * budget only gets easier as c grows, so c is found by bisection.
 */
#include "keepalive_bound.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int kb_function_init(kb_function *f, const int64_t *t_ms, size_t n, int64_t end_ms)
{
    memset(f, 0, sizeof(*f));
    f->n = n;
    if (n == 0) return 0;
    size_t m = n - 1;
    f->idle = malloc((m + 1) * sizeof(*f->idle));
    f->sum = malloc((m + 1) * sizeof(*f->sum));
    if (!f->idle || !f->sum) {
        kb_function_free(f);
        return -1;
    }
    for (size_t i = 0; i < m; i++)
        f->idle[i] = t_ms[i + 1] - t_ms[i];
    qsort(f->idle, m, sizeof(*f->idle), cmp_i64);
    f->sum[0] = 0.0;
    for (size_t i = 0; i < m; i++)
        f->sum[i + 1] = f->sum[i] + (double)f->idle[i];
    f->tail = end_ms > t_ms[n - 1] ? end_ms - t_ms[n - 1] : 0;
    return 0;
}

void kb_function_free(kb_function *f)
{
    free(f->idle);
    free(f->sum);
    memset(f, 0, sizeof(*f));
}

double kb_min_waste(const kb_function *f, size_t cold)
{
    if (cold < 1) return -1.0;
    size_t m = f->n ? f->n - 1 : 0, k = cold - 1; /* idle times allowed to be cold */
    if (k >= m) return 0.0;                       /* no keep-alive at all */
    double best = INFINITY;
    for (size_t a = 0; a <= k; a++) {
        size_t b = k - a, lo = a, hi = m - 1 - b;
        double p = (double)f->idle[lo], q = (double)f->idle[hi];
        double w = (f->sum[hi + 1] - f->sum[lo]) - (double)(hi - lo + 1) * p + (double)b * (q - p);
        double t = (double)f->tail < q ? (double)f->tail : q;
        if (t > p) w += t - p;
        if (w < best) best = w;
    }
    return best;
}

/* The least memory-time with which `need` functions are at most fraction c
 * cold and none has more cold starts than its cap; INFINITY when that
 * cannot be. Each function pays at least its cap's window; those chosen to
 * meet c pay the difference too, and the cheapest differences are chosen.
 * extra has room for n. */
static double cost_at(const kb_function *fn, int n, const size_t *cap, int need, double c,
                      double *extra)
{
    int k = 0;
    double base = 0.0;
    for (int i = 0; i < n; i++) {
        if (fn[i].n == 0) continue;
        size_t limit = cap ? cap[i] : fn[i].n;
        double b = kb_min_waste(&fn[i], limit);
        if (b < 0) return INFINITY;
        base += b;
        size_t cold = (size_t)floor(c * (double)fn[i].n + 1e-9);
        if (cold > limit) cold = limit;
        double w = kb_min_waste(&fn[i], cold);
        if (w >= 0) extra[k++] = w - b;
    }
    if (k < need) return INFINITY;
    qsort(extra, (size_t)k, sizeof(*extra), cmp_double);
    for (int i = 0; i < need; i++)
        base += extra[i];
    return base;
}

double kb_p75_floor(const kb_function *fn, int n, const size_t *cap, double budget_ms,
                    double *used_ms)
{
    int called = 0;
    for (int i = 0; i < n; i++)
        called += fn[i].n > 0;
    *used_ms = 0.0;
    if (called == 0) return 0.0;
    int need = (called * 75 + 99) / 100;
    double *extra = malloc((size_t)called * sizeof(*extra));
    if (!extra) return NAN;
    double lo = 0.0, hi = 1.0, at_hi = cost_at(fn, n, cap, need, 1.0, extra);
    if (at_hi > budget_ms) { /* even the caps alone do not fit */
        free(extra);
        *used_ms = at_hi;
        return INFINITY;
    }
    *used_ms = at_hi;
    for (int it = 0; it < 40; it++) {
        double mid = 0.5 * (lo + hi), used = cost_at(fn, n, cap, need, mid, extra);
        if (used <= budget_ms) {
            hi = mid;
            *used_ms = used;
        } else {
            lo = mid;
        }
    }
    free(extra);
    return hi;
}
