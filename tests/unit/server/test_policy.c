/*
 * Pool policy from tables of (state) -> decision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/pool_policy.h"

static void test_decide(void **state)
{
    (void)state;
    static const struct {
        pool_view v;
        pool_decision want;
    } cases[] = {
        /* n_inst, n_start, free, conc, max, queued, depth, global, gmax */
        {{0, 0, 0, 1, 4, 0, 64, 0, 4}, POOL_START_QUEUE}, /* cold: start one */
        {{1, 0, 1, 1, 4, 0, 64, 1, 4}, POOL_DISPATCH},    /* warm and free */
        {{1, 0, 1, 1, 4, 2, 64, 1, 4}, POOL_START_QUEUE}, /* free, but others wait first */
        {{1, 1, 0, 1, 4, 0, 64, 1, 4}, POOL_QUEUE},       /* one starting takes it */
        {{2, 1, 0, 1, 4, 1, 64, 2, 4}, POOL_START_QUEUE}, /* starting one is spoken for */
        {{4, 0, 0, 1, 4, 3, 64, 4, 8}, POOL_QUEUE},       /* at max */
        {{4, 0, 0, 1, 4, 64, 64, 4, 8}, POOL_REJECT},     /* at max, queue full */
        {{1, 0, 0, 1, 4, 0, 64, 4, 4}, POOL_QUEUE},       /* global cap */
        {{1, 0, 0, 2, 4, 0, 0, 1, 4}, POOL_START_QUEUE},  /* depth 0 still starts */
        {{1, 0, 0, 1, 1, 0, 0, 1, 4}, POOL_REJECT},       /* depth 0 at max */
        {{1, 1, 0, 4, 4, 3, 64, 1, 4}, POOL_QUEUE},       /* concurrency 4 starting */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pool_decision d = pool_decide(&cases[i].v);
        if (d != cases[i].want) fail_msg("case %zu: got %d want %d", i, d, cases[i].want);
    }
}

static void test_global_cap_and_idle(void **state)
{
    (void)state;
    pool_view capped = {1, 0, 0, 1, 4, 0, 64, 4, 4};
    assert_true(pool_blocked_by_global_cap(&capped));
    pool_view free_slot = {1, 0, 1, 1, 4, 0, 64, 4, 4};
    assert_false(pool_blocked_by_global_cap(&free_slot));
    assert_true(pool_should_stop_idle(2, 1, 60000, 60000));
    assert_false(pool_should_stop_idle(1, 1, 600000, 60000)); /* never below min */
    assert_false(pool_should_stop_idle(2, 0, 59999, 60000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_global_cap_and_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
