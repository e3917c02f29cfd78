/*
 * The dispatcher's pure decisions (async_dispatch.h), from tables: what a
 * run's status means for a job (success, retry within max_attempts and
 * max_age_ms, or failure at once for a 4xx), and the backoff with jitter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/async_dispatch.h"

static void test_decide(void **state)
{
    (void)state;
    static const struct {
        int status, attempts, max_attempts;
        int64_t age_ms, max_age_ms;
        async_outcome want;
    } cases[] = {
        {200, 1, 3, 0, 1000, ASYNC_SUCCEEDED},
        {200, 3, 3, 5000, 1000, ASYNC_SUCCEEDED}, /* a success is a success */
        {500, 1, 3, 0, 1000, ASYNC_RETRY},        /* an instance crash */
        {504, 2, 3, 0, 1000, ASYNC_RETRY},        /* a timeout */
        {429, 1, 3, 0, 1000, ASYNC_RETRY},        /* an overload */
        {503, 1, 3, 0, 1000, ASYNC_RETRY},
        {500, 3, 3, 0, 1000, ASYNC_FAILED},    /* out of attempts */
        {500, 1, 3, 1000, 1000, ASYNC_FAILED}, /* too old */
        {500, 1, 1, 0, 1000, ASYNC_FAILED},    /* max_attempts 1: no retry */
        {400, 1, 3, 0, 1000, ASYNC_FAILED},    /* a bad tensor fails at once */
        {404, 1, 3, 0, 1000, ASYNC_FAILED},
        {413, 1, 3, 0, 1000, ASYNC_FAILED},
        {408, 1, 3, 0, 1000, ASYNC_RETRY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        async_outcome o = async_decide(cases[i].status, cases[i].attempts, cases[i].max_attempts,
                                       cases[i].age_ms, cases[i].max_age_ms);
        if (o != cases[i].want) fail_msg("case %zu (status %d): got %d", i, cases[i].status, o);
    }
}

static void test_backoff(void **state)
{
    (void)state;
    /* Doubling from the base, jitter in the upper half, capped. */
    for (int a = 1; a <= 20; a++) {
        int64_t full = ASYNC_BACKOFF_BASE_MS;
        for (int k = 1; k < a && full < ASYNC_BACKOFF_MAX_MS; k++)
            full *= 2;
        if (full > ASYNC_BACKOFF_MAX_MS) full = ASYNC_BACKOFF_MAX_MS;
        int64_t lo = async_backoff_ms(a, 0.0), hi = async_backoff_ms(a, 0.999999);
        assert_int_equal(lo, full / 2);
        assert_true(hi <= full && hi >= full - 1);
        int64_t mid = async_backoff_ms(a, 0.5);
        assert_true(mid >= lo && mid <= hi);
    }
    assert_int_equal(async_backoff_ms(1, 0.0), ASYNC_BACKOFF_BASE_MS / 2);
    assert_true(async_backoff_ms(100, 0.999) <= ASYNC_BACKOFF_MAX_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
