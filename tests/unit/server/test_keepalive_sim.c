/*
 * The keep-alive replay simulator (bench/): a seed gives the same trace and
 * the same replay results every time, another seed another trace; the
 * replay's bookkeeping on small hand-made traces; and the hindsight bound
 * (keepalive_bound.h) by hand, against every window tried one by one, and
 * against the fixed TTL's own window.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "keepalive_bound.h"
#include "keepalive_replay.h"
#include "keepalive_trace.h"

#define MIN 60000LL

static void small_params(kt_params *p)
{
    *p = (kt_params)KT_DEFAULT_PARAMS;
    p->n_functions = 60;
    p->days = 2.0;
}

static void test_same_seed_same_trace(void **state)
{
    (void)state;
    kt_params p;
    small_params(&p);
    kt_trace a, b, c;
    assert_int_equal(kt_generate(&p, 7, &a), 0);
    assert_int_equal(kt_generate(&p, 7, &b), 0);
    assert_int_equal(kt_generate(&p, 8, &c), 0);
    bool differs = false;
    size_t calls = 0;
    for (int i = 0; i < a.n_fn; i++) {
        assert_int_equal(a.fn[i].cls, b.fn[i].cls);
        assert_int_equal(a.fn[i].n, b.fn[i].n);
        if (a.fn[i].n) assert_memory_equal(a.fn[i].t_ms, b.fn[i].t_ms, a.fn[i].n * sizeof(int64_t));
        for (size_t k = 1; k < a.fn[i].n; k++)
            assert_true(a.fn[i].t_ms[k - 1] <= a.fn[i].t_ms[k]);
        if (a.fn[i].n && a.fn[i].t_ms[a.fn[i].n - 1] >= a.end_ms) fail_msg("a call past the end");
        differs |= a.fn[i].n != c.fn[i].n;
        calls += a.fn[i].n;
        /* The same replay for the same calls. */
        for (int pol = 0; pol < KR_N_POLICIES; pol++) {
            double price = pol == KR_PRICED_SHARE || pol == KR_LEARNED ? 3.0 : 60.0 * MIN;
            kr_result ra, rb;
            kr_replay(a.fn[i].t_ms, a.fn[i].n, a.end_ms, (kr_policy)pol, 10 * MIN, price, MIN, &ra,
                      NULL);
            kr_replay(b.fn[i].t_ms, b.fn[i].n, b.end_ms, (kr_policy)pol, 10 * MIN, price, MIN, &rb,
                      NULL);
            assert_memory_equal(&ra, &rb, sizeof(ra));
        }
    }
    assert_true(calls > 1000);
    assert_true(differs);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
}

static void test_replay_by_hand(void **state)
{
    (void)state;
    /* Calls 15 minutes apart (+30 s), 13 of them. */
    int64_t t[13];
    for (int i = 0; i < 13; i++)
        t[i] = 30000 + i * 15 * MIN;
    int64_t end = t[12] + 60 * MIN;
    kr_result r;
    unsigned char cold[13];
    /* No keep-alive: every call cold, nothing kept. */
    kr_replay(t, 13, end, KR_FIXED, 0, 0, MIN, &r, cold);
    assert_int_equal(r.cold, 13);
    assert_int_equal(r.loaded_ms, 0);
    /* Fixed 10 minutes: every call cold too, 10 minutes kept after each. */
    kr_replay(t, 13, end, KR_FIXED, 10 * MIN, 0, MIN, &r, cold);
    assert_int_equal(r.cold, 13);
    assert_int_equal(r.loaded_ms, 13 * 10 * MIN);
    /* The paper's percentiles: cold until the 10th idle time (call 11)
     * makes the histogram count, then pre-warmed: calls 12 and 13 find the
     * template. */
    kr_replay(t, 13, end, KR_PERCENTILE, 10 * MIN, 0, MIN, &r, cold);
    assert_int_equal(r.cold, 11);
    assert_int_equal(cold[10], 1);
    assert_int_equal(cold[11], 0);
    assert_int_equal(cold[12], 0);
    assert_int_equal(r.prewarms, 3); /* the third ahead of a call that never comes */
    /* It wastes: 10 fixed minutes after each of the first 11 calls,
     * then the rest of the active minute + the window 12.6..16.5 min
     * after it, twice, less what the calls cut short: below fixed. */
    assert_true(r.loaded_ms < 13 * 10 * MIN);
    /* Priced (an hour per cold start): the same cold starts, the window
     * being the one minute the calls come in (14..15 after the active
     * minute): 10 fixed minutes after each of the first 10 calls, then the
     * active minute's last 30 s and the window's first 30 s after calls 11
     * and 12, and the active minute's 30 s and the whole window after 13. */
    kr_replay(t, 13, end, KR_PRICED, 10 * MIN, 60.0 * MIN, MIN, &r, cold);
    assert_int_equal(r.cold, 11);
    assert_int_equal(cold[11], 0);
    assert_int_equal(cold[12], 0);
    assert_int_equal(r.prewarms, 3);
    assert_int_equal(r.loaded_ms, 100 * MIN + 7 * MIN / 2);
    /* Learned (3 mean gaps, 45 minutes, a cold start): the same cold
     * starts, the window 14..15 widened to 12.6..16.5 minutes: 10 fixed
     * minutes after each of the first 10 calls, then the active minute's
     * last 30 s and 12.6..14.5 after calls 11 and 12, and 30 s and the
     * whole window after 13. */
    kr_replay(t, 13, end, KR_LEARNED, 10 * MIN, 3.0, MIN, &r, cold);
    assert_int_equal(r.cold, 11);
    assert_int_equal(cold[11], 0);
    assert_int_equal(cold[12], 0);
    assert_int_equal(r.prewarms, 3);
    assert_int_equal(r.loaded_ms, 100 * MIN + 2 * (MIN / 2 + 114000) + MIN / 2 + 234000);
}

/* Calls at 0, 10, 30, 60 and 100 minutes (idle 10, 20, 30, 40), the trace
 * ending `tail` minutes after the last. */
static void five_calls(kb_function *f, int64_t tail)
{
    int64_t t[5] = {0, 10 * MIN, 30 * MIN, 60 * MIN, 100 * MIN};
    assert_int_equal(kb_function_init(f, t, 5, t[4] + tail * MIN), 0);
}

static void test_bound_by_hand(void **state)
{
    (void)state;
    kb_function f;
    five_calls(&f, 5);
    assert_true(kb_min_waste(&f, 0) < 0); /* the first call is always cold */
    /* All warm: [10, 40] after every call: 0 + 10 + 20 + 30 minutes. */
    assert_true(kb_min_waste(&f, 1) == 60.0 * MIN);
    /* One idle time cold: [20, 40] (0 + 10 + 20) beats [10, 30] (0 + 10 + 20,
     * plus 20 kept in vain before the 40-minute call). */
    assert_true(kb_min_waste(&f, 2) == 30.0 * MIN);
    assert_true(kb_min_waste(&f, 3) == 10.0 * MIN); /* [30, 40] */
    assert_true(kb_min_waste(&f, 4) == 0.0);        /* [40, 40] */
    assert_true(kb_min_waste(&f, 5) == 0.0);        /* nothing kept */
    kb_function_free(&f);
    /* A 35-minute tail pays for the window too: [30, 40] keeps 5 of it. */
    five_calls(&f, 35);
    assert_true(kb_min_waste(&f, 3) == 15.0 * MIN);
    kb_function_free(&f);

    /* Four such functions: the 75th percentile is the third best. 30
     * minutes buy three of them 3 of 5 cold; 29 minutes only 4 of 5. */
    kb_function fn[4];
    for (int i = 0; i < 4; i++)
        five_calls(&fn[i], 5);
    double used = -1.0, c = kb_p75_floor(fn, 4, NULL, 30.0 * MIN, &used);
    assert_true(c > 0.6 - 1e-6 && c < 0.6 + 1e-6);
    assert_true(used == 30.0 * MIN);
    c = kb_p75_floor(fn, 4, NULL, 29.0 * MIN, &used);
    assert_true(c > 0.8 - 1e-6 && c < 0.8 + 1e-6);
    assert_true(used == 0.0);
    /* No function above 3 cold starts: every one pays its 10 minutes
     * first (40 in all), so 30 is not enough at any percentile, 50 gives
     * 3 of 5, and 2 of 5 for three of them costs 3 x 20 more. */
    size_t cap[4] = {3, 3, 3, 3};
    c = kb_p75_floor(fn, 4, cap, 30.0 * MIN, &used);
    assert_true(isinf(c));
    c = kb_p75_floor(fn, 4, cap, 50.0 * MIN, &used);
    assert_true(c > 0.6 - 1e-6 && c < 0.6 + 1e-6);
    assert_true(used == 40.0 * MIN);
    c = kb_p75_floor(fn, 4, cap, 100.0 * MIN, &used);
    assert_true(c > 0.4 - 1e-6 && c < 0.4 + 1e-6);
    assert_true(used == 100.0 * MIN);
    for (int i = 0; i < 4; i++)
        kb_function_free(&fn[i]);
}

/* Cold starts and memory-time of window [p, q] after every call. */
static void window_cost(const int64_t *t, size_t n, int64_t end, int64_t p, int64_t q, size_t *cold,
                        int64_t *waste)
{
    *cold = 1;
    *waste = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t idle = (i + 1 < n ? t[i + 1] : end) - t[i];
        bool last = i + 1 == n;
        if (!last && (idle < p || idle > q)) (*cold)++;
        int64_t kept = (idle < q ? idle : q) - p;
        if (kept > 0) *waste += kept;
    }
}

static void test_bound_against_every_window(void **state)
{
    (void)state;
    kt_params p;
    small_params(&p);
    kt_trace tr;
    assert_int_equal(kt_generate(&p, 3, &tr), 0);
    int checked = 0;
    for (int i = 0; i < tr.n_fn && checked < 12; i++) {
        const kt_function *fn = &tr.fn[i];
        if (fn->n < 3 || fn->n > 60) continue;
        checked++;
        kb_function f;
        assert_int_equal(kb_function_init(&f, fn->t_ms, fn->n, tr.end_ms), 0);
        /* Every window whose ends are idle times (or 0), one by one. */
        int64_t *best = malloc((fn->n + 1) * sizeof(*best));
        assert_non_null(best);
        for (size_t k = 0; k <= fn->n; k++)
            best[k] = INT64_MAX;
        for (size_t a = 0; a <= f.n - 1; a++) {
            for (size_t b = a ? a - 1 : 0; b < f.n - 1; b++) {
                size_t cold;
                int64_t w;
                window_cost(fn->t_ms, fn->n, tr.end_ms, a ? f.idle[a - 1] : 0, f.idle[b], &cold,
                            &w);
                for (size_t k = cold; k <= fn->n; k++)
                    if (w < best[k]) best[k] = w;
            }
        }
        best[fn->n] = 0; /* keep nothing: every call cold */
        for (size_t k = 1; k <= fn->n; k++) {
            double w = kb_min_waste(&f, k);
            assert_true(w > (double)best[k] - 0.5 && w < (double)best[k] + 0.5);
        }
        /* The fixed TTL is the window [0, ttl]: the bound never costs more
         * for as many cold starts as the replay counts for it. */
        kr_result r;
        kr_replay(fn->t_ms, fn->n, tr.end_ms, KR_FIXED, 10 * MIN, 0, MIN, &r, NULL);
        assert_true(kb_min_waste(&f, r.cold) <= (double)r.loaded_ms + 0.5);
        free(best);
        kb_function_free(&f);
    }
    assert_true(checked > 0);
    kt_free(&tr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_trace),
        cmocka_unit_test(test_replay_by_hand),
        cmocka_unit_test(test_bound_by_hand),
        cmocka_unit_test(test_bound_against_every_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
