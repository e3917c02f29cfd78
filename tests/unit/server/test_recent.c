/*
 * The last hour per function (recent.h): latency buckets and their
 * bounds, percentiles as bucket upper bounds, minute slots that are reused
 * when their minute comes round again, the 10-second rate, and calls that
 * resolved to no version counted nowhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "server/recent.h"

#define MIN_US 60000000LL

static invocation call(const char *fn, int64_t ts_us, uint64_t total_us, int status,
                       inv_start start)
{
    invocation inv;
    memset(&inv, 0, sizeof(inv));
    snprintf(inv.function, sizeof(inv.function), "%s", fn);
    inv.version = 1;
    inv.ts_us = ts_us;
    inv.total_us = total_us;
    inv.status = status;
    inv.error = inv_error_of(status);
    inv.start = start;
    return inv;
}

static void test_buckets(void **state)
{
    (void)state;
    assert_int_equal(recent_bucket_of(0), 0);
    assert_int_equal(recent_bucket_of(100), 0);
    assert_int_equal(recent_bucket_of(118), 0);
    assert_int_equal(recent_bucket_of(119), 1); /* bound of 0: 118.92 µs */
    for (int k = 0; k < RECENT_BUCKETS - 1; k++) {
        double le = recent_bucket_le_us(k);
        /* A value at the bound is in the bucket, one above it is not. */
        assert_int_equal(recent_bucket_of((uint64_t)floor(le)), k);
        if (k < RECENT_BUCKETS - 2)
            assert_int_equal(recent_bucket_of((uint64_t)floor(le) + 1), k + 1);
    }
    assert_int_equal(recent_bucket_of(UINT64_MAX / 2), RECENT_BUCKETS - 1);
    assert_true(fabs(recent_bucket_le_us(3) - 200.0) < 1e-9); /* 4 per doubling */
}

typedef struct seen {
    int n;
    char name[4][32];
    recent_sums hour[4], last5[4];
    recent_series ser[4];
    uint64_t rate[4];
} seen;

static void collect(void *user, const char *name, const recent_sums *hour, const recent_sums *last5,
                    const recent_series *ser, uint64_t rate)
{
    seen *s = user;
    assert_true(s->n < 4);
    snprintf(s->name[s->n], sizeof(s->name[0]), "%s", name);
    s->hour[s->n] = *hour;
    s->last5[s->n] = *last5;
    s->ser[s->n] = *ser;
    s->rate[s->n] = rate;
    s->n++;
}

static void test_window(void **state)
{
    (void)state;
    recent *r = recent_create();
    assert_non_null(r);
    int64_t t0 = 1000 * MIN_US; /* a minute boundary */
    /* 99 calls at 1 ms and one at 1 s, in the current minute. */
    for (int i = 0; i < 99; i++) {
        invocation inv = call("a", t0 + 5000000 + i, 1000, 200, INV_START_WARM);
        recent_on_invocation(r, &inv);
    }
    invocation slow = call("a", t0 + 5000000, 1000000, 200, INV_START_ZERO);
    recent_on_invocation(r, &slow);
    /* A template start that failed, 10 minutes earlier (outside 5 min). */
    invocation bad = call("a", t0 - 10 * MIN_US, 2000, 500, INV_START_TEMPLATE);
    recent_on_invocation(r, &bad);
    /* A 429: counted as a request and an error, not in the latencies. */
    invocation full = call("a", t0 + 1000, 10, 429, INV_START_NONE);
    recent_on_invocation(r, &full);
    /* No such function: nothing. */
    invocation none = call("ghost", t0, 10, 404, INV_START_NONE);
    none.version = 0;
    recent_on_invocation(r, &none);
    /* Another function, 61 minutes ago: outside the hour. */
    invocation old = call("b", t0 - 61 * MIN_US, 10, 200, INV_START_WARM);
    recent_on_invocation(r, &old);

    seen s = {0};
    recent_each(r, t0 + 9 * 1000000 + 1, collect, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.name[0], "a");
    assert_int_equal(s.hour[0].requests, 102);
    assert_int_equal(s.hour[0].errors, 2);
    assert_int_equal(s.hour[0].cold_template, 1);
    assert_int_equal(s.hour[0].cold_zero, 1);
    assert_int_equal(s.hour[0].ran, 101);
    assert_int_equal(s.last5[0].requests, 101);
    /* p50 is 1 ms's bucket (bound >= 1000 µs, < 1.19x), p99 too, p100 the 1 s one. */
    double p50 = recent_quantile_us(&s.last5[0], 0.5);
    assert_true(p50 >= 1000 && p50 < 1190);
    assert_true(recent_quantile_us(&s.last5[0], 0.99) < 1190);
    double p100 = recent_quantile_us(&s.last5[0], 1.0);
    assert_true(p100 >= 1e6 && p100 < 1.19e6);
    /* The series: the current minute last, the failed call 10 minutes back. */
    assert_int_equal(s.ser[0].first_minute, 1000 - 59);
    assert_int_equal(s.ser[0].requests[59], 101);
    assert_int_equal(s.ser[0].requests[49], 1);
    assert_int_equal(s.ser[0].errors[49], 1);
    assert_int_equal(s.ser[0].cold_template[49], 1);
    /* The rate: seconds 0..8 of the minute are whole; 101 calls in them. */
    assert_int_equal(s.rate[0], 101);
    /* b's only call is older than the hour. */
    assert_string_equal(s.name[1], "b");
    assert_int_equal(s.hour[1].requests, 0);
    assert_true(recent_quantile_us(&s.hour[1], 0.5) < 0);

    /* An hour later the slot of minute 1000 is reused by minute 1060. */
    invocation later = call("a", t0 + 60 * MIN_US, 1000, 200, INV_START_WARM);
    recent_on_invocation(r, &later);
    seen s2 = {0};
    recent_each(r, t0 + 60 * MIN_US + 20 * 1000000, collect, &s2);
    assert_int_equal(s2.hour[0].requests, 1);
    assert_int_equal(s2.rate[0], 0); /* 20 s ago: outside the 10 s */
    recent_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
