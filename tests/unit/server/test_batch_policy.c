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
        /* Calls come 8 ms apart, max_delay is 5 ms: no company can come in
         * time, the free instance takes the lone call now (another is
         * busy, so the version is not idle). */
        {{.n_ready = 1, .limit = 8, .pool_idle = false, .waited_ns = 0, .max_delay_ns = 5 * MS,
          .gap_ns = 8 * MS, .n_free = 1},
         1, 0},
        /* 300 us apart against 2 ms: it waits, until only one gap of the
         * delay is left (then none is expected before max_delay). */
        {{.n_ready = 1, .limit = 8, .pool_idle = false, .waited_ns = 0, .max_delay_ns = 2 * MS,
          .gap_ns = 300 * US, .n_free = 1},
         0, 1700 * US},
        {{.n_ready = 1, .limit = 8, .pool_idle = false, .waited_ns = 1700 * US,
          .max_delay_ns = 2 * MS, .gap_ns = 300 * US, .n_free = 1},
         1, 0},
        /* Two instances free, eight calls: four each, now (not eight on one
         * while the other idles). */
        {{.n_ready = 8, .limit = 8, .pool_idle = true, .waited_ns = 0, .max_delay_ns = 2 * MS,
          .n_free = 2, .n_instances = 2},
         4, 0},
        /* Odd counts round up: 3 then (on the next free instance) 2. */
        {{.n_ready = 5, .limit = 8, .pool_idle = false, .waited_ns = 0, .max_delay_ns = 2 * MS,
          .n_free = 2, .n_instances = 2},
         3, 0},
        /* Two instances, one busy, seven calls that came together: the free
         * one takes its half now, the rest is for the other (eight clients
         * on two instances: batches of 4 on each, not 7 on one). */
        {{.n_ready = 7, .limit = 8, .pool_idle = false, .waited_ns = 0, .max_delay_ns = 5 * MS,
          .n_free = 1, .n_instances = 2},
         4, 0},
        /* Two ready, one instance of two free: a share of 1 is all of one
         * call; the usual rules (here the pause) decide when it goes. */
        {{.n_ready = 1, .limit = 8, .pool_idle = false, .waited_ns = 0, .max_delay_ns = 2 * MS,
          .n_free = 1, .n_instances = 2},
         0, 2 * MS},
        {{.n_ready = 2, .limit = 8, .pool_idle = false, .waited_ns = 0, .max_delay_ns = 2 * MS,
          .n_free = 1, .n_instances = 2, .span_ns = 0, .quiet_ns = 0},
         1, 0},
        /* A call that the last batch left goes with the next free instance
         * at once. */
        {{.n_ready = 1, .limit = 8, .pool_idle = false, .waited_ns = 300 * MS,
          .max_delay_ns = 1000 * MS, .gap_ns = 10 * MS, .n_free = 1, .n_instances = 2,
          .left = true},
         1, 0},
        /* One instance: no share, the pause as before. */
        {{.n_ready = 2, .limit = 8, .pool_idle = false, .waited_ns = 0, .max_delay_ns = 2 * MS,
          .n_free = 1, .n_instances = 1, .span_ns = 0, .quiet_ns = 0},
         0, 100 * US},
        /* Fewer calls than free instances: one each, at once. */
        {{.n_ready = 1, .limit = 8, .pool_idle = false, .waited_ns = 0, .max_delay_ns = 2 * MS,
          .n_free = 2, .n_instances = 2},
         1, 0},
        /* The share never exceeds the limit. */
        {{.n_ready = 40, .limit = 8, .pool_idle = false, .waited_ns = 0, .max_delay_ns = 2 * MS,
          .n_free = 2, .n_instances = 2},
         8, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t wait = 12345;
        batch_why why;
        int k = batch_decide(&cases[i].v, &wait, &why);
        if (k != cases[i].want || wait != cases[i].want_wait)
            fail_msg("case %zu: got %d (wait %llu), want %d (wait %llu)", i, k,
                     (unsigned long long)wait, cases[i].want, (unsigned long long)cases[i].want_wait);
    }
}

/* Feeds a window of batches of `size` calls that ran in run_ns (CPU time
 * not measured). */
static int window(batch_aimd *a, int size, uint64_t run_ns)
{
    int limit = a->limit;
    for (int i = 0; i < BATCH_AIMD_WINDOW; i++)
        limit = batch_aimd_observe(a, size, run_ns, 0, 0, 0);
    return limit;
}

/* The same, each batch taking row_cpu_ns of CPU per call. */
static int window_cpu(batch_aimd *a, int size, uint64_t run_ns, uint64_t row_cpu_ns)
{
    int limit = a->limit;
    for (int i = 0; i < BATCH_AIMD_WINDOW; i++)
        limit = batch_aimd_observe(a, size, run_ns, row_cpu_ns * (uint64_t)size, 0, 0);
    return limit;
}

static void test_aimd(void **state)
{
    (void)state;
    batch_aimd a;
    batch_aimd_init(&a, 16, 10 * MS, 0);
    assert_int_equal(a.limit, 2);
    /* Full batches within the SLO: one more per window. */
    assert_int_equal(window(&a, 2, 5 * MS), 3);
    assert_int_equal(window(&a, 3, 5 * MS), 4);
    /* Within the SLO but never full: no demand for more, the limit stays. */
    assert_int_equal(window(&a, 1, 1 * MS), 4);
    /* One run over the SLO in a window (its p99): halved. */
    for (int i = 0; i < BATCH_AIMD_WINDOW - 1; i++)
        batch_aimd_observe(&a, 4, 5 * MS, 0, 0, 0);
    assert_int_equal(batch_aimd_observe(&a, 4, 11 * MS, 0, 0, 0), 2);
    /* Down to 1, never below. */
    assert_int_equal(window(&a, 2, 50 * MS), 1);
    assert_int_equal(window(&a, 1, 50 * MS), 1);
    /* Never above max. */
    batch_aimd_init(&a, 3, 10 * MS, 0);
    for (int i = 0; i < 10; i++)
        window(&a, a.limit, 1 * MS);
    assert_int_equal(a.limit, 3);
    /* max 1 starts (and stays) at 1. */
    batch_aimd_init(&a, 1, 10 * MS, 0);
    assert_int_equal(a.limit, 1);
}

static void test_class(void **state)
{
    (void)state;
    static const int cases[][2] = {{1, 0}, {2, 1},  {3, 1},  {4, 2},   {7, 2},
                                   {8, 3}, {31, 4}, {32, 5}, {256, 8}, {100000, 8}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (batch_class(cases[i][0]) != cases[i][1])
            fail_msg("size %d: class %d, want %d", cases[i][0], batch_class(cases[i][0]),
                     cases[i][1]);
}

/* A model whose engine does not gain from a batch (CPU per request as high
 * at 2 as at 1, as resnet18's on this engine): the limit falls to 1 and
 * stays there for a hold that doubles with each failed try; within the
 * SLO and with demand all along. */
static void test_aimd_no_gain(void **state)
{
    (void)state;
    batch_aimd a;
    batch_aimd_init(&a, 8, 400 * MS, 0);
    /* Batches of 2 measured before any lone call: the limit drops to 1
     * for a window that measures one. */
    assert_int_equal(window_cpu(&a, 2, 40 * MS, 17 * MS), 1);
    /* Lone calls: 17 ms of CPU each; every batch (of one) is full: back
     * to 2 to compare. */
    assert_int_equal(window_cpu(&a, 1, 20 * MS, 17 * MS), 2);
    /* Batches of 2 at 17 ms per call: no cheaper, back to 1 (the limit's
     * class, 2-3, is known and costs no less). */
    assert_int_equal(window_cpu(&a, 2, 40 * MS, 17 * MS), 1);
    assert_int_equal(a.hold, BATCH_HOLD_MIN);
    /* Held at 1 for BATCH_HOLD_MIN windows, though every batch is full. */
    for (int i = 0; i < BATCH_HOLD_MIN - 1; i++)
        assert_int_equal(window_cpu(&a, 1, 20 * MS, 17 * MS), 1);
    /* Then it tries 2 again; again no gain: held twice as long. */
    assert_int_equal(window_cpu(&a, 1, 20 * MS, 17 * MS), 2);
    assert_int_equal(window_cpu(&a, 2, 40 * MS, 18 * MS), 1);
    assert_int_equal(a.hold, 2 * BATCH_HOLD_MIN);
    /* 4 % cheaper is within BATCH_GAIN_PCT: still no gain. */
    for (int i = 0; i < 2 * BATCH_HOLD_MIN; i++)
        window_cpu(&a, 1, 20 * MS, 17 * MS);
    assert_int_equal(a.limit, 2);
    for (int i = 0; i < 4; i++) /* the class's average follows the new cost */
        batch_aimd_observe(&a, 2, 40 * MS, 2 * 16320 * US, 0, 0);
    for (int i = 0; i < BATCH_AIMD_WINDOW - 4; i++)
        batch_aimd_observe(&a, 2, 40 * MS, 2 * 16320 * US, 0, 0);
    assert_int_equal(a.limit, 1);
    assert_int_equal(a.hold, 4 * BATCH_HOLD_MIN);
    /* The hold never grows past BATCH_HOLD_MAX. */
    for (int t = 0; t < 10; t++) {
        while (a.limit == 1)
            window_cpu(&a, 1, 20 * MS, 17 * MS);
        window_cpu(&a, 2, 40 * MS, 17 * MS);
        assert_true(a.hold <= BATCH_HOLD_MAX);
    }
    assert_int_equal(a.hold_next, BATCH_HOLD_MAX);
}

/* A model that gains from a batch (mlp: a third of the CPU per call at 4)
 * grows past each class; one whose gain stops at 4 (8 costs as much per
 * call as 4) settles at 4, the smallest size of its cheapest class. */
static void test_aimd_gain(void **state)
{
    (void)state;
    batch_aimd a;
    batch_aimd_init(&a, 32, 5 * MS, 0);
    static const uint64_t cost[] = {30 * US, 20 * US, 10 * US, 10 * US, 10 * US, 10 * US};
    window_cpu(&a, 1, 50 * US, cost[0]);
    for (int i = 0; i < 40 && a.limit < 8; i++)
        window_cpu(&a, a.limit, 100 * US, cost[batch_class(a.limit)]);
    assert_int_equal(a.limit, 8);
    /* Class 8-15 costs as much per call as 4-7: back to 4. */
    window_cpu(&a, 8, 100 * US, cost[3]);
    assert_int_equal(a.limit, 4);
    /* Within the hold it stays there, every batch full. */
    assert_int_equal(window_cpu(&a, 4, 100 * US, cost[2]), 4);
    /* Halved by the SLO, it grows back to 4 (no further: held). */
    assert_int_equal(window_cpu(&a, 4, 10 * MS, cost[2]), 2);
    assert_int_equal(window_cpu(&a, 2, 100 * US, cost[1]), 3);
    assert_int_equal(window_cpu(&a, 3, 100 * US, cost[1]), 4);
    /* A class that pays resets the hold's doubling. */
    batch_aimd_init(&a, 32, 5 * MS, 0);
    a.hold_next = 64;
    window_cpu(&a, 1, 50 * US, cost[0]);
    window_cpu(&a, 2, 100 * US, cost[1]);
    assert_int_equal(a.hold_next, BATCH_HOLD_MIN);
    /* Unknown costs (not measured): AIMD as before, growing with demand. */
    batch_aimd_init(&a, 4, 5 * MS, 0);
    for (int i = 0; i < 4; i++)
        window(&a, a.limit, 100 * US);
    assert_int_equal(a.limit, 4);
}

/* Batches that run within max_delay (cheap_ns) cost their calls no more
 * latency than batching is allowed: the CPU times do not hold the limit
 * back (mlp: class 16 within BATCH_GAIN_PCT of class 8 held auto mode at 8),
 * only the SLO does. Batches that run longer keep the CPU rule. */
static void test_aimd_cheap(void **state)
{
    (void)state;
    batch_aimd a;
    batch_aimd_init(&a, 32, 5 * MS, 2 * MS);
    /* No class cheaper than another, 150 us a batch: grows to the max. */
    for (int i = 0; i < 64 && a.limit < 32; i++)
        window_cpu(&a, a.limit, 150 * US, 10 * US);
    assert_int_equal(a.limit, 32);
    assert_int_equal(a.hold, 0);
    /* The SLO still halves it, whatever the median: one slow batch in 8. */
    for (int i = 0; i < BATCH_AIMD_WINDOW - 1; i++)
        batch_aimd_observe(&a, 32, 150 * US, 32 * 10 * US, 0, 0);
    assert_int_equal(batch_aimd_observe(&a, 32, 6 * MS, 32 * 10 * US, 0, 0), 16);
    /* Batches of 16 running 3 ms (past max_delay) that save nothing on 8:
     * the CPU rule holds the limit at the cheapest class again. */
    batch_aimd_init(&a, 32, 50 * MS, 2 * MS);
    window_cpu(&a, 1, 200 * US, 20 * US);
    a.limit = 8;
    window_cpu(&a, 8, 1600 * US, 10 * US);
    assert_int_equal(a.limit, 9);
    a.limit = 16;
    assert_int_equal(window_cpu(&a, 16, 3 * MS, 10 * US), 8);
    assert_int_equal(a.hold, BATCH_HOLD_MIN);
    /* The same batches within a larger max_delay: no hold, growth. */
    batch_aimd_init(&a, 32, 50 * MS, 4 * MS);
    window_cpu(&a, 1, 200 * US, 20 * US);
    a.limit = 8;
    window_cpu(&a, 8, 1600 * US, 10 * US);
    a.limit = 16;
    assert_int_equal(window_cpu(&a, 16, 3 * MS, 10 * US), 17);
}

/* Which rule sent a batch: the status counts them (sent_by). */
static void test_why(void **state)
{
    (void)state;
    static const struct {
        batch_view v;
        batch_why want;
    } cases[] = {
        {{.n_ready = 1, .limit = 8, .pool_idle = true, .max_delay_ns = 2 * MS}, BATCH_WHY_IDLE},
        {{.n_ready = 1, .limit = 8, .max_delay_ns = 2 * MS}, BATCH_WHY_WAIT},
        {{.n_ready = 8, .limit = 8, .max_delay_ns = 2 * MS}, BATCH_WHY_FULL},
        {{.n_ready = 8, .limit = 8, .max_delay_ns = 2 * MS, .n_free = 1, .n_instances = 2},
         BATCH_WHY_SHARE},
        {{.n_ready = 1, .limit = 8, .max_delay_ns = 2 * MS, .n_free = 2, .n_instances = 2},
         BATCH_WHY_FREE},
        {{.n_ready = 1,
          .limit = 8,
          .max_delay_ns = 1000 * MS,
          .waited_ns = 3 * MS,
          .n_free = 1,
          .n_instances = 2,
          .left = true},
         BATCH_WHY_FREE},
        {{.n_ready = 1, .limit = 8, .max_delay_ns = 5 * MS, .gap_ns = 8 * MS, .n_free = 1},
         BATCH_WHY_SPARSE},
        {{.n_ready = 3,
          .limit = 8,
          .waited_ns = 100 * US,
          .max_delay_ns = 2 * MS,
          .quiet_ns = 100 * US},
         BATCH_WHY_PAUSE},
        /* Calls that came together and waited out max_delay while nothing
         * ran the pool's timer (a loaded machine): the pause is why. */
        {{.n_ready = 2,
          .limit = 8,
          .waited_ns = 3 * MS,
          .max_delay_ns = 2 * MS,
          .span_ns = 10 * US,
          .quiet_ns = 3 * MS},
         BATCH_WHY_PAUSE},
        /* Slow arrivals (a pause of 3.6 ms) and max_delay passed first. */
        {{.n_ready = 2,
          .limit = 8,
          .waited_ns = 2 * MS,
          .max_delay_ns = 2 * MS,
          .span_ns = 900 * US,
          .quiet_ns = 1100 * US},
         BATCH_WHY_DELAY},
        {{.n_ready = 2, .limit = 8, .max_delay_ns = 0}, BATCH_WHY_DELAY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t wait;
        batch_why why;
        int k = batch_decide(&cases[i].v, &wait, &why);
        if (why != cases[i].want || (k == 0) != (why == BATCH_WHY_WAIT))
            fail_msg("case %zu: sent %d by %s, want %s", i, k, batch_why_name(why),
                     batch_why_name(cases[i].want));
    }
    assert_string_equal(batch_why_name(BATCH_WHY_PAUSE), "pause");
    assert_string_equal(batch_why_name(BATCH_WHYS), "?");
}

/* Run times by class: the estimate of a size from its class, else the
 * nearest smaller measured class, else the nearest larger. */
static void test_runs(void **state)
{
    (void)state;
    batch_runs r = {{0}, {0}, {0}};
    assert_int_equal(batch_runs_estimate(&r, 4), 0);
    assert_int_equal(batch_runs_estimate(NULL, 4), 0);
    batch_runs_note(&r, 8, 80 * US, 0); /* class 3: 10 us a call */
    assert_int_equal(batch_runs_estimate(&r, 8), 80 * US);
    assert_int_equal(batch_runs_estimate(&r, 32), 320 * US); /* from 8: an upper bound */
    assert_int_equal(batch_runs_estimate(&r, 2), 20 * US);   /* from 8: nothing smaller */
    batch_runs_note(&r, 1, 30 * US, 0);
    assert_int_equal(batch_runs_estimate(&r, 2), 60 * US); /* from 1 now */
    /* A moving average: a quarter of each new run. */
    batch_runs_note(&r, 8, 160 * US, 0);
    assert_int_equal(r.row_ns[3], (10 * US * 3 + 20 * US) / 4);
    /* Runs not measured (0) change nothing; CPU times are kept apart. */
    batch_runs_note(&r, 4, 0, 0);
    assert_int_equal(r.row_ns[2], 0);
    assert_int_equal(r.cpu_ns[3], 0);
    batch_runs_note(&r, 4, 0, 48 * US);
    assert_int_equal(r.row_ns[2], 0);
    assert_int_equal(r.cpu_ns[2], 12 * US);
}

/* A run noted as the scheduler notes it: its CPU time, here all the
 * instance's (batch_runs_note_instance: the lone rule's). */
static void note(batch_runs *r, int size, uint64_t run_ns, uint64_t cpu_ns)
{
    batch_runs_note(r, size, run_ns, cpu_ns);
    batch_runs_note_instance(r, size, cpu_ns);
}

/* The share rule with the version's run times: it splits the calls over
 * the instances when the whole batch would cost its calls more than
 * max_delay over the share's run (resnet18, 15 ms a row), or when that is
 * not known; it takes them all when their rows cost little (mlp: 32 rows
 * in 240 us against 16 in 140 us), sparing a message. And no wait for
 * company where a batch gains nothing per row. */
static void test_share_runs(void **state)
{
    (void)state;
    batch_runs resnet = {{0}, {0}, {0}}, mlp = {{0}, {0}, {0}};
    /* Run times, and CPU times per call: resnet18's do not fall with the
     * batch, mlp's do. */
    note(&resnet, 1, 15 * MS, 17 * MS);
    note(&resnet, 4, 60 * MS, 4 * 17 * MS);
    note(&mlp, 1, 30 * US, 60 * US);
    note(&mlp, 16, 140 * US, 16 * 25 * US);
    note(&mlp, 32, 240 * US, 32 * 22 * US);
    note(&mlp, 2, 2 * 20 * US, 2 * 58 * US); /* 2-3 save little, 16 much */
    batch_runs wall = {{0}, {0}, {0}}; /* resnet18's run times, no CPU time measured */
    note(&wall, 1, 15 * MS, 0);
    note(&wall, 4, 60 * MS, 0);
    batch_runs flat = {{0}, {0}, {0}}; /* cheap calls whose CPU per call does not fall */
    note(&flat, 1, 30 * US, 60 * US);
    note(&flat, 16, 140 * US, 16 * 60 * US);
    /* bert_tiny: a lone call 250 us in the instance, 290 all told; mlp:
     * 20 in the instance, 60 all told (serve's work and the waiting). */
    batch_runs bert = {{0}, {0}, {0}}, mlp_inst = {{0}, {0}, {0}};
    batch_runs_note(&bert, 1, 300 * US, 290 * US);
    batch_runs_note_instance(&bert, 1, 250 * US);
    batch_runs_note(&bert, 8, 1500 * US, 8 * 180 * US);
    batch_runs_note_instance(&bert, 8, 8 * 172 * US);
    batch_runs_note(&mlp_inst, 1, 30 * US, 60 * US);
    batch_runs_note_instance(&mlp_inst, 1, 20 * US);
    batch_runs_note(&mlp_inst, 16, 140 * US, 16 * 25 * US);
    batch_runs_note_instance(&mlp_inst, 16, 16 * 5 * US);
    static const struct {
        int n_ready, limit, n_free, n_instances;
        uint64_t max_delay_ns;
        int runs; /* 0 none, 1 resnet, 2 mlp, 3 resnet's run times only, 4 flat,
                   * 5 bert_tiny, 6 mlp with its instance's CPU apart */
        int want;
        batch_why why;
    } cases[] = {
        /* resnet18, 8 calls, one instance free and one due: its batches
         * cost as much CPU per call as lone calls, so one now (test_lone);
         * by its run times alone, 4 (below). */
        {8, 8, 1, 2, 5 * MS, 1, 1, BATCH_WHY_LONE},
        /* The same with no run measured yet: the share as well. */
        {8, 8, 1, 2, 5 * MS, 0, 4, BATCH_WHY_SHARE},
        /* mlp, 32 calls: all 32 on this instance (the limit). */
        {32, 32, 1, 2, 2 * MS, 2, 32, BATCH_WHY_FULL},
        /* mlp, 20 calls with the limit 32: no share, and the usual rules
         * decide (here: wait for the pause). */
        {20, 32, 1, 2, 2 * MS, 2, 0, BATCH_WHY_WAIT},
        /* mlp with max_delay 0: nothing is worth its latency, the share. */
        {32, 32, 1, 2, 0, 2, 16, BATCH_WHY_SHARE},
        /* Two instances free: the share all the same when it pays ... */
        {8, 8, 2, 2, 5 * MS, 3, 4, BATCH_WHY_SHARE},
        /* ... and all of them at once when it does not. */
        {8, 8, 2, 2, 2 * MS, 2, 8, BATCH_WHY_FREE},
        /* A lone call on a free instance while another runs: resnet18's
         * batches of 4 cost as much CPU per call as a lone run, company is
         * not worth waiting for; mlp's 16 cost less than half, so it
         * waits; with nothing measured it waits too. */
        {1, 8, 1, 1, 5 * MS, 1, 1, BATCH_WHY_NOGAIN},
        {1, 32, 1, 1, 2 * MS, 2, 0, BATCH_WHY_WAIT},
        {1, 8, 1, 1, 5 * MS, 0, 0, BATCH_WHY_WAIT},
        /* Wall times alone do not say "no gain" (a loaded machine's waits
         * are in them): it waits. */
        {1, 8, 1, 1, 5 * MS, 3, 0, BATCH_WHY_WAIT},
        /* They do decide the share. */
        {8, 8, 1, 2, 5 * MS, 3, 4, BATCH_WHY_SHARE},
        /* Calls cheaper than max_delay: their CPU time misses what a
         * batch saves (wake-ups), so it waits though it shows no gain. */
        {1, 32, 1, 1, 2 * MS, 4, 0, BATCH_WHY_WAIT},
        /* The instances the scarce part (bert_tiny: a lone call costs the
         * instance more than serve and the waiting besides): a free
         * instance takes what is there, one call or three, while the
         * other runs; mlp's instance does not (20 us against 40): it
         * waits for company. */
        {1, 32, 1, 2, 2 * MS, 5, 1, BATCH_WHY_ENGINE},
        {3, 32, 1, 2, 2 * MS, 5, 3, BATCH_WHY_ENGINE},
        {1, 32, 1, 2, 2 * MS, 6, 0, BATCH_WHY_WAIT},
        {3, 32, 1, 2, 2 * MS, 6, 0, BATCH_WHY_WAIT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        batch_view v = {.n_ready = cases[i].n_ready,
                        .limit = cases[i].limit,
                        .max_delay_ns = cases[i].max_delay_ns,
                        .n_free = cases[i].n_free,
                        .n_instances = cases[i].n_instances,
                        .runs = cases[i].runs == 1   ? &resnet
                                : cases[i].runs == 2 ? &mlp
                                : cases[i].runs == 3 ? &wall
                                : cases[i].runs == 4 ? &flat
                                : cases[i].runs == 5 ? &bert
                                : cases[i].runs == 6 ? &mlp_inst
                                                     : NULL};
        uint64_t wait;
        batch_why why;
        int k = batch_decide(&v, &wait, &why);
        if (k != cases[i].want || why != cases[i].why)
            fail_msg("case %zu: %d by %s, want %d by %s", i, k, batch_why_name(why), cases[i].want,
                     batch_why_name(cases[i].why));
    }
}

/* The same, each batch taking row_cpu_ns of the instance's CPU per call
 * and serve msg_ns per message plus call_ns per call. */
static int window_serve(batch_aimd *a, int size, uint64_t row_cpu_ns, uint64_t msg_ns,
                        uint64_t call_ns)
{
    int limit = a->limit;
    for (int i = 0; i < BATCH_AIMD_WINDOW; i++)
        limit = batch_aimd_observe(a, size, 100 * US, row_cpu_ns * (uint64_t)size,
                                   msg_ns + call_ns * (uint64_t)size, 0);
    return limit;
}

/* Counting serve's work: a model whose instance CPU per call hardly moves
 * with the batch (within BATCH_GAIN_PCT) but whose message costs serve
 * 40 us (mlp's case, where serve's CPU per request falls with the batch)
 * grows its limit (to 8 at least: past it, 40 us shared by 8 or by 16
 * differ by less than BATCH_GAIN_PCT); without serve's share it would
 * stay at 1. A model whose
 * calls cost the instance far more than serve's message (resnet18) does
 * not grow for it. */
static void test_aimd_serve(void **state)
{
    (void)state;
    batch_aimd a;
    batch_aimd_init(&a, 32, 5 * MS, 0);
    static const uint64_t inst[] = {30 * US, 29 * US, 29 * US, 29 * US, 29 * US, 29 * US};
    window_serve(&a, 2, inst[1], 40 * US, 10 * US); /* a batch class first: back to 1 */
    assert_int_equal(a.limit, 1);
    window_serve(&a, 1, inst[0], 40 * US, 10 * US);
    for (int i = 0; i < 40 && a.limit < 8; i++)
        window_serve(&a, a.limit, inst[batch_class(a.limit)], 40 * US, 10 * US);
    assert_int_equal(a.limit, 8);
    /* The instance's CPU alone says no gain: the limit stays at 1. */
    batch_aimd_init(&a, 32, 5 * MS, 0);
    window_serve(&a, 1, inst[0], 0, 0);
    window_serve(&a, 2, inst[1], 0, 0);
    assert_int_equal(a.limit, 1);
    /* resnet18: 17 ms a call in the instance, 50 us of serve per message:
     * 2 saves 25 us of 17 ms, within the noise; no growth. */
    batch_aimd_init(&a, 8, 400 * MS, 0);
    window_serve(&a, 1, 17 * MS, 50 * US, 10 * US);
    window_serve(&a, 2, 17 * MS, 50 * US, 10 * US);
    assert_int_equal(a.limit, 1);
}

/* The same, each message also waited wait_ns of CPU: the instance's
 * polling for it and wake-up, serve's polling for its reply. */
static int window_wait(batch_aimd *a, int size, uint64_t row_cpu_ns, uint64_t call_ns,
                       uint64_t wait_ns)
{
    int limit = a->limit;
    for (int i = 0; i < BATCH_AIMD_WINDOW; i++)
        limit = batch_aimd_observe(a, size, 100 * US, row_cpu_ns * (uint64_t)size,
                                   call_ns * (uint64_t)size, wait_ns);
    return limit;
}

/* Counting the wake-ups and polling a batch saves: a model whose CPU per
 * call, in the instance and in serve, does not move with the batch (mlp's
 * instance CPU at 1 and at 16 came out alike) but whose every message
 * costs 60 us of waiting (the instance polling for its next request and
 * waking, serve polling for the reply) grows its limit as fixed mode
 * would batch: to 16 at least (past it, 60 us shared by 16 or by 32
 * differ by less than BATCH_GAIN_PCT of the rest). Without the wait, it
 * stays at 1; and a model whose calls cost far more than the wait
 * (resnet18) does not grow for it. */
static void test_aimd_wait(void **state)
{
    (void)state;
    batch_aimd a;
    batch_aimd_init(&a, 32, 5 * MS, 0);
    window_wait(&a, 2, 30 * US, 10 * US, 60 * US); /* a batch class first: back to 1 */
    assert_int_equal(a.limit, 1);
    window_wait(&a, 1, 30 * US, 10 * US, 60 * US);
    for (int i = 0; i < 80 && a.limit < 16; i++)
        window_wait(&a, a.limit, 30 * US, 10 * US, 60 * US);
    assert_int_equal(a.limit, 16);
    assert_true(a.row_cpu_ns[4] < a.row_cpu_ns[0] / 2);
    /* The same calls with their waits not counted: no gain, no growth. */
    batch_aimd_init(&a, 32, 5 * MS, 0);
    window_wait(&a, 1, 30 * US, 10 * US, 0);
    window_wait(&a, 2, 30 * US, 10 * US, 0);
    window_wait(&a, a.limit, 30 * US, 10 * US, 0);
    assert_int_equal(a.limit, 1);
    /* resnet18: 17 ms a call, 60 us of waiting per message: no growth. */
    batch_aimd_init(&a, 8, 400 * MS, 0);
    window_wait(&a, 1, 17 * MS, 10 * US, 60 * US);
    window_wait(&a, 2, 17 * MS, 10 * US, 60 * US);
    assert_int_equal(a.limit, 1);
}

/* Falling back to lone calls (fixed and auto mode): when every batch size
 * measured up to the limit costs no less CPU per call than a lone call,
 * or the scheduler holds that decision until a probe is measured, calls go
 * one at a time, whatever waits; a probe sends the smallest batch. */
static void test_lone(void **state)
{
    (void)state;
    batch_runs resnet = {{0}, {0}, {0}}, mlp = {{0}, {0}, {0}}, only_lone = {{0}, {0}, {0}}, above = {{0}, {0}, {0}};
    /* resnet18: 17 ms of CPU a lone call, 17.6 and 18 ms per call of 2-3
     * and 4-7 (its engine gains nothing per row). */
    note(&resnet, 1, 15 * MS, 17 * MS);
    note(&resnet, 2, 31 * MS, 2 * 17600 * US);
    note(&resnet, 4, 64 * MS, 4 * 18 * MS);
    /* mlp: 60 us a lone call, 25 per call of 16. */
    note(&mlp, 1, 30 * US, 60 * US);
    note(&mlp, 16, 140 * US, 16 * 25 * US);
    note(&only_lone, 1, 15 * MS, 17 * MS);
    /* Only batches measured, resnet18's (every call went in one), and
     * mlp's, whose calls are cheap. */
    batch_runs only_batches = {{0}, {0}, {0}}, cheap_batches = {{0}, {0}, {0}};
    note(&only_batches, 8, 120 * MS, 8 * 17 * MS);
    note(&cheap_batches, 16, 140 * US, 16 * 25 * US);
    /* A class that gains, above a limit of 4 (class 2): not judged. */
    note(&above, 1, 15 * MS, 17 * MS);
    note(&above, 2, 31 * MS, 2 * 17 * MS);
    note(&above, 8, 60 * MS, 8 * 8 * MS);
    assert_true(batch_runs_lone(&resnet, 8, 5 * MS));
    assert_false(batch_runs_lone(&resnet, 8, 20 * MS)); /* calls cheaper than max_delay */
    assert_false(batch_runs_lone(&mlp, 32, 2 * MS));
    assert_false(batch_runs_lone(&mlp, 32, 0)); /* 16 costs less than half of 1 */
    assert_false(batch_runs_lone(&only_lone, 8, 5 * MS)); /* no batch measured */
    assert_false(batch_runs_lone(NULL, 8, 5 * MS));
    assert_true(batch_runs_lone(&above, 4, 5 * MS));
    assert_false(batch_runs_lone(&above, 8, 5 * MS));
    /* The largest class measured decides: a probe's 2 that gained once
     * does not speak for the 8s that do not ... */
    batch_runs probed = {{0}, {0}, {0}};
    note(&probed, 1, 15 * MS, 17 * MS);
    note(&probed, 8, 120 * MS, 8 * 17 * MS);
    note(&probed, 2, 30 * MS, 2 * 12 * MS);
    assert_true(batch_runs_lone(&probed, 8, 5 * MS));
    assert_false(batch_runs_lone(&probed, 2, 5 * MS));
    /* ... until the probe is taken for what it measured: the 8s are
     * forgotten, and batches go (and measure them again). */
    assert_true(batch_runs_probed(&probed));
    assert_int_equal(probed.cpu_ns[3], 0);
    assert_int_equal(probed.inst_ns[3], 0);
    assert_false(batch_runs_lone(&probed, 8, 5 * MS));
    /* A gain of 5-10 % a call (resnet18's batches of 8 in the instance)
     * is not worth the rows' wait: lone. */
    batch_runs slight = {{0}, {0}, {0}};
    note(&slight, 1, 15 * MS, 16 * MS);
    note(&slight, 8, 115 * MS, 8 * 14400 * US);
    assert_true(batch_runs_lone(&slight, 8, 5 * MS));
    /* The instance's CPU decides, not serve's polling charged to a lone
     * call (resnet18 at 32 clients: 37 ms a lone call all told, 16 in the
     * instance, against 14.8 and 14.4 a call in batches of 8). */
    batch_runs polled = {{0}, {0}, {0}};
    batch_runs_note(&polled, 1, 15 * MS, 37 * MS);
    batch_runs_note_instance(&polled, 1, 16 * MS);
    batch_runs_note(&polled, 8, 115 * MS, 8 * 14800 * US);
    batch_runs_note_instance(&polled, 8, 8 * 14400 * US);
    assert_true(batch_runs_lone(&polled, 8, 5 * MS));
    /* A probe that gained nothing forgets nothing. */
    assert_false(batch_runs_probed(&resnet));
    assert_true(resnet.inst_ns[2] > 0);
    assert_true(batch_runs_lone(&resnet, 8, 5 * MS));
    const struct {
        int n_ready, limit, n_free, n_instances;
        bool probe, idle;
        const batch_runs *runs;
        int want;
        batch_why why;
        bool held;
    } cases[] = {
        /* resnet18, fixed at 8: 8 calls waiting, one instance free and
         * one due, go one at a time, not as a share of 4. */
        {8, 8, 1, 2, false, false, &resnet, 1, BATCH_WHY_LONE, false},
        /* Two free instances and 3 waiting: one each, not all on one. */
        {3, 8, 2, 2, false, false, &resnet, 1, BATCH_WHY_LONE, false},
        /* One instance, 4 waiting: one. */
        {4, 8, 1, 1, false, false, &resnet, 1, BATCH_WHY_LONE, false},
        /* A probe: the smallest batch, 2 (its rows' wait is one row). */
        {8, 8, 1, 2, true, false, &resnet, 2, BATCH_WHY_FULL, false},
        {3, 8, 2, 2, true, false, &resnet, 2, BATCH_WHY_FREE, false},
        /* A lone call on a busy pool: no wait for company (nogain). */
        {1, 8, 1, 2, false, false, &resnet, 1, BATCH_WHY_NOGAIN, false},
        /* A lone call on an idle function: at once, as ever. */
        {1, 8, 1, 1, false, true, &resnet, 1, BATCH_WHY_IDLE, false},
        /* mlp batches: its 32 go together. */
        {32, 32, 1, 2, false, false, &mlp, 32, BATCH_WHY_FULL, false},
        /* Nothing but lone calls measured: a batch (which measures). */
        {4, 4, 1, 1, false, false, &only_lone, 4, BATCH_WHY_FULL, false},
        /* No lone call measured, batches dear per call: one goes alone,
         * which measures it; a probe too. Cheap calls batch as ever. */
        {8, 8, 1, 1, false, false, &only_batches, 1, BATCH_WHY_LONE, false},
        {8, 8, 2, 2, true, false, &only_batches, 1, BATCH_WHY_LONE, false},
        {8, 8, 1, 1, false, false, &cheap_batches, 8, BATCH_WHY_FULL, false},
        /* Held: the rule decided before, and a lone call measured dear
         * since makes 8 look cheaper; one at a time until a probe ... */
        {8, 8, 1, 1, false, false, &above, 1, BATCH_WHY_LONE, true},
        /* ... which is the smallest batch; */
        {8, 8, 1, 1, true, false, &above, 2, BATCH_WHY_FULL, true},
        /* not held, the runs decide: 8 gains, a batch of 8. */
        {8, 8, 1, 1, false, false, &above, 8, BATCH_WHY_FULL, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        batch_view v = {.n_ready = cases[i].n_ready,
                        .limit = cases[i].limit,
                        .pool_idle = cases[i].idle,
                        .max_delay_ns = 5 * MS,
                        .n_free = cases[i].n_free,
                        .n_instances = cases[i].n_instances,
                        .probe = cases[i].probe,
                        .lone_held = cases[i].held,
                        .runs = cases[i].runs};
        uint64_t wait;
        batch_why why;
        int k = batch_decide(&v, &wait, &why);
        if (k != cases[i].want || why != cases[i].why)
            fail_msg("case %zu: %d by %s, want %d by %s", i, k, batch_why_name(why), cases[i].want,
                     batch_why_name(cases[i].why));
    }
    assert_string_equal(batch_why_name(BATCH_WHY_LONE), "lone");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide),     cmocka_unit_test(test_aimd),
        cmocka_unit_test(test_class),      cmocka_unit_test(test_aimd_no_gain),
        cmocka_unit_test(test_aimd_gain),
        cmocka_unit_test(test_aimd_cheap),  cmocka_unit_test(test_why),
        cmocka_unit_test(test_runs),       cmocka_unit_test(test_share_runs),
        cmocka_unit_test(test_aimd_serve), cmocka_unit_test(test_aimd_wait),
        cmocka_unit_test(test_lone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
