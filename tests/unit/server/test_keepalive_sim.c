/*
 * The keep-alive replay simulator (bench/): a seed gives the same trace and
 * the same replay results every time, another seed another trace; and the
 * replay's bookkeeping on small hand-made traces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

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
        for (int pol = 0; pol < 2; pol++) {
            kr_result ra, rb;
            kr_replay(a.fn[i].t_ms, a.fn[i].n, a.end_ms, (kr_policy)pol, 10 * MIN, MIN, &ra, NULL);
            kr_replay(b.fn[i].t_ms, b.fn[i].n, b.end_ms, (kr_policy)pol, 10 * MIN, MIN, &rb, NULL);
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
    kr_replay(t, 13, end, KR_FIXED, 0, MIN, &r, cold);
    assert_int_equal(r.cold, 13);
    assert_int_equal(r.loaded_ms, 0);
    /* Fixed 10 minutes: every call cold too, 10 minutes kept after each. */
    kr_replay(t, 13, end, KR_FIXED, 10 * MIN, MIN, &r, cold);
    assert_int_equal(r.cold, 13);
    assert_int_equal(r.loaded_ms, 13 * 10 * MIN);
    /* Learned: cold until the 10th idle time (call 11) makes the histogram
     * count, then pre-warmed: calls 12 and 13 find the template. */
    kr_replay(t, 13, end, KR_LEARNED, 10 * MIN, MIN, &r, cold);
    assert_int_equal(r.cold, 11);
    assert_int_equal(cold[10], 1);
    assert_int_equal(cold[11], 0);
    assert_int_equal(cold[12], 0);
    assert_int_equal(r.prewarms, 3); /* the third ahead of a call that never comes */
    /* Learned wastes: 10 fixed minutes after each of the first 11 calls,
     * then the rest of the active minute + the window 12.6..16.5 min
     * after it, twice, less what the calls cut short: below fixed. */
    assert_true(r.loaded_ms < 13 * 10 * MIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_trace),
        cmocka_unit_test(test_replay_by_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
