/*
 * Small helpers shared by the reference-kernel tests: tensor views over
 * stack or heap arrays, a deterministic random generator, and tolerant
 * float comparison that names the first element that differs.
 */
#ifndef ROUSE_TEST_REF_TEST_H
#define ROUSE_TEST_REF_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ref/ref.h"
#include "rouse/err.h"

/* A tensor view of `data` (borrowed). */
static inline eng_tensor rt_tensor(int dtype, int rank, const int64_t *shape, const void *data)
{
    eng_tensor t;
    memset(&t, 0, sizeof(t));
    t.dtype = dtype;
    t.rank = rank;
    for (int i = 0; i < rank; i++)
        t.shape[i] = shape[i];
    t.data = (void *)data;
    return t;
}

/* xorshift64*: reproducible across platforms, seeded per test. */
typedef struct rt_rng {
    uint64_t s;
} rt_rng;

static inline uint64_t rt_next(rt_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}

/* Uniform in [-1, 1). */
static inline float rt_uniform(rt_rng *r)
{
    return (float)((double)(rt_next(r) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Uniform integer in [lo, hi]. */
static inline int64_t rt_int(rt_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rt_next(r) % (uint64_t)(hi - lo + 1));
}

static inline float *rt_random_floats(rt_rng *r, int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(*p));
    assert_non_null(p);
    for (int64_t i = 0; i < n; i++)
        p[i] = rt_uniform(r);
    return p;
}

/* |got - want| <= atol + rtol * |want| for every element (1e-4 + 1e-3 rel
 * is the engine-wide tolerance for float kernels). */
static inline void rt_assert_close(const float *got, const float *want, int64_t n, double atol,
                                   double rtol)
{
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (isnan(w) && isnan(g)) continue;
        if (!(fabs(g - w) <= atol + rtol * fabs(w))) {
            print_error("element %lld: got %.9g, want %.9g\n", (long long)i, g, w);
            fail();
        }
    }
}

#define RT_CLOSE(got, want, n) rt_assert_close((got), (want), (n), 1e-4, 1e-3)
#define RT_N(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

#endif
