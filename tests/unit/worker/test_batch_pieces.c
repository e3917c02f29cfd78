/*
 * How an instance cuts a batch into runs of prepared sizes (worker/batch.h),
 * from tables: padding up to the next power of two against cutting to the
 * one below and running the rest after it, by the run times measured so far
 * (and by the waste alone before they are).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "worker/batch.h"

#define MS 1000000ull
#define US 1000ull

static void test_pad(void **state)
{
    (void)state;
    /* resnet18-like: the run time grows with the rows (17 ms a row). */
    worker_batch_times linear = {{17 * MS, 34 * MS, 68 * MS, 136 * MS}};
    /* mlp-like: a run of 8 costs little more than a run of 1. */
    worker_batch_times flat = {{40 * US, 42 * US, 45 * US, 50 * US}};
    /* Only 1 and 2 measured. */
    worker_batch_times part = {{17 * MS, 34 * MS}};
    static const struct {
        const char *what;
        int which; /* 0 none, 1 linear, 2 flat, 3 part */
        int64_t rows;
        bool pad;
    } cases[] = {
        /* Unmeasured: pad when it wastes at most a quarter. */
        {"3 of 4, unmeasured", 0, 3, true},
        {"5 of 8, unmeasured", 0, 5, false},
        {"6 of 8, unmeasured", 0, 6, true},
        {"7 of 8, unmeasured", 0, 7, true},
        /* Linear: a padded row costs as much as a real one: cut (3 = 2 +
         * 1 costs 51 ms against 68; 7 = 4 + 2 + 1 costs 119 against 136). */
        {"3, linear", 1, 3, false},
        {"6, linear", 1, 6, false},
        {"7, linear", 1, 7, false},
        /* Flat: one run of 8 beats 4 then more. */
        {"3, flat", 2, 3, true},
        {"5, flat", 2, 5, true},
        {"7, flat", 2, 7, true},
        /* 3 rows with 4 unmeasured: by the waste. */
        {"3, 4 unmeasured", 3, 3, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const worker_batch_times *t = cases[i].which == 1   ? &linear
                                      : cases[i].which == 2 ? &flat
                                      : cases[i].which == 3 ? &part
                                                            : NULL;
        if (worker_batch_pad(t, cases[i].rows) != cases[i].pad)
            fail_msg("%s: pad %d, want %d", cases[i].what, !cases[i].pad, cases[i].pad);
    }
}

/* Runs are recorded by size as a moving average; other sizes are not. */
static void test_time(void **state)
{
    (void)state;
    worker_batch_times t = {{0}};
    worker_batch_time(&t, 4, 40 * MS);
    assert_int_equal(t.ns[2], 40 * MS);
    worker_batch_time(&t, 4, 80 * MS);
    assert_int_equal(t.ns[2], 50 * MS);
    worker_batch_time(&t, 3, 1 * MS); /* not a prepared size */
    worker_batch_time(&t, 512, 1 * MS);
    for (int i = 0; i < WORKER_BATCH_SIZES; i++)
        if (i != 2) assert_int_equal(t.ns[i], 0);
    worker_batch_time(NULL, 4, 1 * MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pad),
        cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
