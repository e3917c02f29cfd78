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

/* min, max and the idle timeout: (instances, min, idle ms, timeout) -> stop? */
static void test_idle_min_max(void **state)
{
    (void)state;
    static const struct {
        int n, min;
        long long idle_ms, timeout_ms;
        bool stop;
    } idle[] = {
        {1, 0, 300, 300, true},     /* scale to zero */
        {1, 0, 299, 300, false},    /* not yet */
        {2, 2, 100000, 300, false}, /* min keeps two warm */
        {3, 2, 300, 300, true},     /* the third above min goes */
        {1, 1, 0, 0, false},        /* timeout 0 (retired) still keeps min */
        {1, 0, 0, 0, true},         /* retired: stops as soon as idle */
    };
    for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++)
        if (pool_should_stop_idle(idle[i].n, idle[i].min, idle[i].idle_ms, idle[i].timeout_ms) !=
            idle[i].stop)
            fail_msg("idle case %zu", i);
    /* (instances, min, global, global max) -> starts needed to keep min warm */
    static const struct {
        int n, min, g, gmax, want;
    } warm[] = {
        {0, 2, 0, 4, 2}, /* deploy with min 2 */
        {1, 2, 3, 4, 1}, /* one died: recreate it */
        {2, 2, 2, 4, 0}, /* warm enough */
        {0, 3, 3, 4, 1}, /* the cap leaves room for one */
        {0, 2, 4, 4, 0}, /* no room at all */
        {5, 2, 5, 8, 0}, /* above min */
    };
    for (size_t i = 0; i < sizeof(warm) / sizeof(warm[0]); i++)
        if (pool_missing_warm(warm[i].n, warm[i].min, warm[i].g, warm[i].gmax) != warm[i].want)
            fail_msg("warm case %zu", i);
    assert_true(pool_over_max(3, 2)); /* max lowered live */
    assert_false(pool_over_max(2, 2));
}

/* Template TTL: (spawns waiting, unused ms, ttl) -> stop? */
static void test_template_ttl(void **state)
{
    (void)state;
    static const struct {
        int waiting;
        long long unused_ms, ttl_ms;
        bool stop;
    } cases[] = {
        {0, 500, 500, true},       /* true zero */
        {0, 499, 500, false},      /* used recently */
        {1, 10000, 500, false},    /* an instance waits for it */
        {0, 0, 0, true},           /* retired version: at once */
        {0, 600000, 600000, true}, /* the default ttl */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (pool_should_stop_template(cases[i].waiting, cases[i].unused_ms, cases[i].ttl_ms) !=
            cases[i].stop)
            fail_msg("ttl case %zu", i);
}

/* Queue depth and per-request deadline. */
static void test_queue_and_deadline(void **state)
{
    (void)state;
    pool_view v = {4, 0, 0, 1, 4, 0, 3, 4, 8};
    pool_decision seq[5];
    for (int i = 0; i < 5; i++) {
        seq[i] = pool_decide(&v);
        if (seq[i] == POOL_QUEUE) v.n_queued++;
    }
    /* At max with depth 3: three wait, the fourth and fifth are rejected. */
    assert_int_equal(seq[0], POOL_QUEUE);
    assert_int_equal(seq[2], POOL_QUEUE);
    assert_int_equal(seq[3], POOL_REJECT);
    assert_int_equal(seq[4], POOL_REJECT);
    assert_true(pool_deadline_passed(1000, 1000));
    assert_false(pool_deadline_passed(999, 1000));
}

/* A burst against a pool at zero: it starts up to max, then queues, then
 * rejects when the queue is full; the counts add up. */
static void test_burst_from_zero(void **state)
{
    (void)state;
    pool_view v = {0, 0, 0, 1, 4, 0, 16, 0, 8};
    int started = 0, queued = 0, rejected = 0;
    for (int i = 0; i < 200; i++) {
        switch (pool_decide(&v)) {
        case POOL_START_QUEUE:
            started++;
            v.n_instances++;
            v.n_starting++;
            v.global_instances++;
            v.n_queued++;
            queued++;
            break;
        case POOL_QUEUE:
            v.n_queued++;
            queued++;
            break;
        case POOL_REJECT:
            rejected++;
            break;
        case POOL_DISPATCH:
            fail_msg("nothing is ready yet");
        }
    }
    assert_int_equal(started, 4);
    assert_int_equal(queued, 16);
    assert_int_equal(rejected, 200 - 16);
}

/* The global cap is shared fairly: a hot function cannot starve another. */
static void test_fair_share(void **state)
{
    (void)state;
    assert_int_equal(pool_fair_share(4, 0), 4);
    assert_int_equal(pool_fair_share(4, 1), 4);
    assert_int_equal(pool_fair_share(4, 2), 2);
    assert_int_equal(pool_fair_share(4, 3), 1);
    assert_int_equal(pool_fair_share(2, 5), 1); /* never 0 */

    /* Hot function A holds the whole cap (4 of 4); B arrives with 4 requests. */
    pool_view b = {0, 0, 0, 1, 4, 3, 64, 4, 4};
    int share = pool_fair_share(4, 2);
    assert_true(pool_is_starved(&b, share));
    /* A is busy: nothing idle to evict; B waits. Each time one of A's
     * instances finishes a request, it yields while A is above its share. */
    int a = 4;
    int steps = 0;
    while (pool_is_starved(&b, share) && steps++ < 10) {
        if (pool_should_yield(a, 0, share, 1)) {
            a--;
            b.global_instances--;
            /* B starts one in the freed place. */
            assert_int_equal(pool_decide(&b), POOL_START_QUEUE);
            b.n_instances++;
            b.n_starting++;
            b.global_instances++;
        }
    }
    assert_int_equal(a, 2);
    assert_int_equal(b.n_instances, 2);
    assert_false(pool_should_yield(a, 0, share, 1)); /* at its share: keeps the rest */
    assert_true(pool_should_yield(3, 3, share, 1));  /* a min above the share yields... */
    assert_false(pool_should_yield(2, 3, share, 1)); /* ...down to the share */
    assert_false(pool_should_yield(4, 0, share, 0)); /* nobody starves: keep */

    /* Eviction of idle instances: (asker n, asker share, victim n, min, share). */
    assert_true(pool_may_evict(0, 2, 3, 0, 2));  /* asker below share */
    assert_true(pool_may_evict(3, 2, 3, 0, 2));  /* victim above share */
    assert_false(pool_may_evict(3, 2, 2, 0, 2)); /* hot asker, victim at share */
    assert_false(pool_may_evict(0, 2, 1, 1, 2)); /* never below the victim's min */
    assert_true(pool_may_evict(0, 1, 2, 2, 1));  /* a min above the share gives way... */
    assert_false(pool_may_evict(0, 1, 1, 2, 1)); /* ...down to the share */
}

static void test_retry_after(void **state)
{
    (void)state;
    const unsigned long long ms = 1000000ull;
    /* Unknown service time, empty queue: the least, 1 s. */
    assert_int_equal(pool_retry_after_s(0, 0, 4), 1);
    assert_int_equal(pool_retry_after_s(100, 0, 4), 1);
    /* 100 queued x 50 ms on 4 slots = 1.25 s -> 2 s (rounded up). */
    assert_int_equal(pool_retry_after_s(100, 50 * ms, 4), 2);
    /* Exactly 3 s stays 3 s. */
    assert_int_equal(pool_retry_after_s(60, 100 * ms, 2), 3);
    /* More slots, shorter wait; a bad slot count counts as one. */
    assert_int_equal(pool_retry_after_s(100, 50 * ms, 8), 1);
    assert_int_equal(pool_retry_after_s(10, 300 * ms, 0), 3);
    /* Capped at a minute, also for absurd service times. */
    assert_int_equal(pool_retry_after_s(1000, 1000 * ms, 1), 60);
    assert_int_equal(pool_retry_after_s(1 << 30, ~0ull, 1), 60);
}

static void test_evict_for_min(void **state)
{
    (void)state;
    /* Instances beyond their pool's min make room for another min... */
    assert_true(pool_may_evict_for_min(4, 0));
    assert_true(pool_may_evict_for_min(3, 2));
    /* ...a pool at or below its own min keeps them. */
    assert_false(pool_may_evict_for_min(2, 2));
    assert_false(pool_may_evict_for_min(1, 3));
    assert_false(pool_may_evict_for_min(0, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_global_cap_and_idle),
        cmocka_unit_test(test_idle_min_max),
        cmocka_unit_test(test_template_ttl),
        cmocka_unit_test(test_queue_and_deadline),
        cmocka_unit_test(test_burst_from_zero),
        cmocka_unit_test(test_fair_share),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_evict_for_min),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
