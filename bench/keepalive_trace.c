/*
 * The trace generator (see keepalive_trace.h).
 */
#include "keepalive_trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MIN_MS 60000.0
#define PI 3.14159265358979323846

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next_u64(rng *r) /* splitmix64 */
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1). */
static double unit(rng *r)
{
    return ((double)(next_u64(r) >> 11) + 0.5) / 9007199254740992.0;
}

static double log_uniform(rng *r, double lo, double hi)
{
    return exp(log(lo) + unit(r) * (log(hi) - log(lo)));
}

static double exponential(rng *r, double mean)
{
    return -log(unit(r)) * mean;
}

typedef struct times {
    int64_t *t;
    size_t n, cap;
} times;

static int push(times *v, double t_ms)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 64;
        int64_t *nt = realloc(v->t, cap * sizeof(*nt));
        if (!nt) return -1;
        v->t = nt;
        v->cap = cap;
    }
    v->t[v->n++] = (int64_t)t_ms;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static kt_class pick_class(const kt_params *p, rng *r)
{
    double u = unit(r), acc = 0.0;
    for (int c = 0; c < KT_N_CLASSES - 1; c++) {
        acc += p->class_share[c];
        if (u < acc) return (kt_class)c;
    }
    return (kt_class)(KT_N_CLASSES - 1);
}

static int gen_function(const kt_params *p, rng *r, double end, kt_function *f)
{
    static const double periods[] = {1, 2, 5, 10, 15, 20, 30, 60, 120, 240};
    times v = {0};
    int rc = 0;
    f->cls = pick_class(p, r);
    switch (f->cls) {
    case KT_PERIODIC: {
        double period = periods[next_u64(r) % (sizeof(periods) / sizeof(periods[0]))] * MIN_MS;
        f->param = period / MIN_MS;
        for (double t = unit(r) * period; rc == 0 && t < end; t += period) {
            double j = (2.0 * unit(r) - 1.0) * p->periodic_jitter * period;
            if (t + j >= 0 && t + j < end) rc = push(&v, t + j);
        }
        break;
    }
    case KT_BURSTY: {
        double every = log_uniform(r, p->burst_every_min_lo, p->burst_every_min_hi) * MIN_MS;
        f->param = every / MIN_MS;
        double stop = 1.0 / (p->burst_mean_calls); /* geometric: mean burst_mean_calls calls */
        for (double t = exponential(r, every); rc == 0 && t < end; t += exponential(r, every)) {
            double c = t;
            do {
                if (c < end) rc = push(&v, c);
                c += exponential(r, p->burst_gap_s * 1000.0);
            } while (rc == 0 && unit(r) >= stop);
        }
        break;
    }
    case KT_DIURNAL: {
        double rate = log_uniform(r, p->diurnal_rate_per_min_lo, p->diurnal_rate_per_min_hi);
        f->param = rate;
        double peak = rate * (1.0 + p->diurnal_swing) / MIN_MS; /* per ms */
        double phase = unit(r) * 2.0 * PI;
        /* Thinning: candidates at the peak rate, kept in proportion. */
        for (double t = exponential(r, 1.0 / peak); rc == 0 && t < end;
             t += exponential(r, 1.0 / peak)) {
            double now = rate *
                         (1.0 + p->diurnal_swing * sin(2.0 * PI * t / (1440.0 * MIN_MS) + phase)) /
                         MIN_MS;
            if (unit(r) * peak < now) rc = push(&v, t);
        }
        break;
    }
    default: {
        double every = log_uniform(r, p->rare_every_h_lo, p->rare_every_h_hi) * 60.0 * MIN_MS;
        f->param = every / (60.0 * MIN_MS);
        for (double t = exponential(r, every); rc == 0 && t < end; t += exponential(r, every))
            rc = push(&v, t);
        break;
    }
    }
    if (rc < 0) {
        free(v.t);
        return -1;
    }
    if (v.n > 1) qsort(v.t, v.n, sizeof(*v.t), cmp_i64); /* bursts may overlap the next */
    f->t_ms = v.t;
    f->n = v.n;
    return 0;
}

int kt_generate(const kt_params *p, uint64_t seed, kt_trace *out)
{
    memset(out, 0, sizeof(*out));
    out->fn = calloc((size_t)p->n_functions, sizeof(*out->fn));
    if (!out->fn) return -1;
    out->n_fn = p->n_functions;
    out->end_ms = (int64_t)(p->days * 1440.0 * MIN_MS);
    rng r = {seed};
    for (int i = 0; i < p->n_functions; i++) {
        /* Each function from its own stream: adding one keeps the others. */
        rng fr = {next_u64(&r)};
        if (gen_function(p, &fr, (double)out->end_ms, &out->fn[i]) < 0) {
            kt_free(out);
            return -1;
        }
    }
    return 0;
}

void kt_free(kt_trace *t)
{
    for (int i = 0; t->fn && i < t->n_fn; i++)
        free(t->fn[i].t_ms);
    free(t->fn);
    memset(t, 0, sizeof(*t));
}

const char *kt_class_name(kt_class c)
{
    static const char *const names[] = {"periodic", "bursty", "diurnal", "rare"};
    return c < KT_N_CLASSES ? names[c] : "?";
}
