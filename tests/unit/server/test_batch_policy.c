/*
 * Dynamic batching's pure decisions (batch_policy.h), from tables: when the
 * waiting calls go as one batch, and auto mode's limit under the SLO.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/batch_policy.h"

#define MS 1000000ull
#define US 1000ull

static void test_decide(void **state)
{
    (void)state;
    static const struct {
        batch_view v;
        int want;
        uint64_t want_wait;
    } cases[] = {
        /* A lone request on an idle function goes at once. */
        {{.n_ready = 1, .limit = 8, .pool_idle = true, .waited_ns = 0, .max_delay_ns = 2 * MS},
         1, 0},
        /* Busy: it waits for company, at most max_delay. */
        {{.n_ready = 1, .limit = 8, .pool_idle = false, .waited_ns = 0, .max_delay_ns = 2 * MS},
         0, 2 * MS},
        /* Three came 250 us apart, the newest just now: they wait for a
         * pause of four gaps (1 ms), within max_delay. */
        {{.n_ready = 3, .limit = 8, .pool_idle = false, .waited_ns = 500 * US,
          .max_delay_ns = 2 * MS, .span_ns = 500 * US, .quiet_ns = 0},
         0, 1 * MS},
        /* max_delay reached: what is there goes. */
        {{.n_ready = 3, .limit = 8, .pool_idle = false, .waited_ns = 2 * MS,
          .max_delay_ns = 2 * MS},
         3, 0},
        /* A full batch goes at once, at most the limit. */
        {{.n_ready = 8, .limit = 8, .pool_idle = false, .waited_ns = 0, .max_delay_ns = 2 * MS},
         8, 0},
        {{.n_ready = 20, .limit = 8, .pool_idle = true, .waited_ns = 0, .max_delay_ns = 2 * MS},
         8, 0},
        /* max_delay 0: never waits. */
        {{.n_ready = 2, .limit = 8, .pool_idle = false, .waited_ns = 0, .max_delay_ns = 0}, 2, 0},
        /* Nothing ready, nothing sent. */
        {{.n_ready = 0, .limit = 8, .pool_idle = true, .waited_ns = 0, .max_delay_ns = 0}, 0, 0},
        /* Auto at a limit of 1: every call alone. */
        {{.n_ready = 5, .limit = 1, .pool_idle = false, .waited_ns = 0, .max_delay_ns = 2 * MS},
         1, 0},
        /* A burst of 5 over 200 us (mean gap 50 us), then nothing for 200
         * us (4 gaps): it has ended, the free instance takes it now. */
        {{.n_ready = 5, .limit = 8, .pool_idle = false, .waited_ns = 400 * US,
          .max_delay_ns = 2 * MS, .span_ns = 200 * US, .quiet_ns = 200 * US},
         5, 0},
        /* Still inside the pause: waits for the rest of it. */
        {{.n_ready = 5, .limit = 8, .pool_idle = false, .waited_ns = 300 * US,
          .max_delay_ns = 2 * MS, .span_ns = 200 * US, .quiet_ns = 150 * US},
         0, 50 * US},
        /* Calls that came together: the pause is at least 100 us. */
        {{.n_ready = 3, .limit = 8, .pool_idle = false, .waited_ns = 40 * US,
          .max_delay_ns = 2 * MS, .span_ns = 0, .quiet_ns = 40 * US},
         0, 60 * US},
        {{.n_ready = 3, .limit = 8, .pool_idle = false, .waited_ns = 100 * US,
          .max_delay_ns = 2 * MS, .span_ns = 0, .quiet_ns = 100 * US},
         3, 0},
        /* Slow arrivals: max_delay comes before the pause. */
        {{.n_ready = 2, .limit = 8, .pool_idle = false, .waited_ns = 1 * MS,
          .max_delay_ns = 2 * MS, .span_ns = 900 * US, .quiet_ns = 100 * US},
         0, 1 * MS},
        /* One call: no gap to judge by, it waits for company as before. */
        {{.n_ready = 1, .limit = 8, .pool_idle = false, .waited_ns = 500 * US,
          .max_delay_ns = 2 * MS, .span_ns = 0, .quiet_ns = 500 * US},
         0, 1500 * US},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t wait = 12345;
        int k = batch_decide(&cases[i].v, &wait);
        if (k != cases[i].want || wait != cases[i].want_wait)
            fail_msg("case %zu: got %d (wait %llu), want %d (wait %llu)", i, k,
                     (unsigned long long)wait, cases[i].want, (unsigned long long)cases[i].want_wait);
    }
}

/* Feeds a window of batches of `size` calls that ran in run_ns. */
static int window(batch_aimd *a, int size, uint64_t run_ns)
{
    int limit = a->limit;
    for (int i = 0; i < BATCH_AIMD_WINDOW; i++)
        limit = batch_aimd_observe(a, size, run_ns);
    return limit;
}

static void test_aimd(void **state)
{
    (void)state;
    batch_aimd a;
    batch_aimd_init(&a, 16, 10 * MS);
    assert_int_equal(a.limit, 2);
    /* Full batches within the SLO: one more per window. */
    assert_int_equal(window(&a, 2, 5 * MS), 3);
    assert_int_equal(window(&a, 3, 5 * MS), 4);
    /* Within the SLO but never full: no demand for more, the limit stays. */
    assert_int_equal(window(&a, 1, 1 * MS), 4);
    /* One run over the SLO in a window (its p99): halved. */
    for (int i = 0; i < BATCH_AIMD_WINDOW - 1; i++)
        batch_aimd_observe(&a, 4, 5 * MS);
    assert_int_equal(batch_aimd_observe(&a, 4, 11 * MS), 2);
    /* Down to 1, never below. */
    assert_int_equal(window(&a, 2, 50 * MS), 1);
    assert_int_equal(window(&a, 1, 50 * MS), 1);
    /* Never above max. */
    batch_aimd_init(&a, 3, 10 * MS);
    for (int i = 0; i < 10; i++)
        window(&a, a.limit, 1 * MS);
    assert_int_equal(a.limit, 3);
    /* max 1 starts (and stays) at 1. */
    batch_aimd_init(&a, 1, 10 * MS);
    assert_int_equal(a.limit, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_aimd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
