/*
 * The usage store: records in, sums and percentiles out, the same answer
 * after a roll-up into hours, peak concurrency, and the histogram's bounds
 * against exact percentiles.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/usage.h"
#include "testdir.h"

#define H USAGE_HOUR_US
#define T0 (1796594400000000LL) /* 2026-12-06T22:00:00Z, an hour's start */

static void insert(store *st, const usage_rec *r, int n)
{
    rouse_errbuf eb = {0};
    assert_int_equal(store_tx_begin(st, &eb), 0);
    assert_int_equal(usage_insert_tx(st, r, n, &eb), 0);
    assert_int_equal(store_tx_commit(st, &eb), 0);
}

static usage_rec rec(const char *fn, int64_t version, int64_t ts, int start, int64_t run_us,
                     int64_t total_us, int status)
{
    usage_rec r;
    memset(&r, 0, sizeof(r));
    snprintf(r.function, sizeof(r.function), "%s", fn);
    snprintf(r.request_id, sizeof(r.request_id), "%016llx", (unsigned long long)ts);
    r.version = version;
    r.ts_us = ts;
    r.start = start;
    r.run_us = run_us;
    r.total_us = total_us;
    r.billed_ms = (run_us + 999) / 1000;
    r.memory_mb = 512;
    r.bytes_in = 100;
    r.bytes_out = 50;
    r.status = status;
    r.error = status >= 400;
    return r;
}

static void query(store *st, usage_by by, const char *fn, bool peaks, usage_result *out)
{
    usage_query q;
    memset(&q, 0, sizeof(q));
    snprintf(q.function, sizeof(q.function), "%s", fn);
    q.since_us = 0;
    q.until_us = T0 + 100 * H;
    q.by = by;
    q.peaks = peaks;
    rouse_errbuf eb = {0};
    assert_int_equal(usage_query_run(st, &q, out, &eb), 0);
}

static void test_buckets(void **state)
{
    (void)state;
    /* Every value lies within its bucket, whose upper bound is at most 9 %
     * above it (2^(1/8) = 1.0905). */
    for (int64_t us = 1; us < 5000000; us = us * 1.01 + 1) {
        int b = usage_bucket_of(us);
        int64_t up = usage_bucket_upper(b);
        assert_true(up >= us);
        assert_true((double)up <= 1.0905 * (double)us + 1.0);
        assert_true(usage_bucket_of(up) == b);
        assert_true(usage_bucket_of(up + 1) > b);
    }
    int64_t hist[USAGE_BUCKETS] = {0};
    assert_int_equal(usage_hist_percentile(hist, 0.5), 0);
    /* Percentiles against the exact nearest rank of 1000 values. */
    int64_t vals[1000];
    srand(7);
    for (int i = 0; i < 1000; i++) {
        vals[i] = 50 + rand() % 100000;
        hist[usage_bucket_of(vals[i])]++;
    }
    for (int i = 1; i < 1000; i++) /* insertion sort: small */
        for (int j = i; j > 0 && vals[j - 1] > vals[j]; j--) {
            int64_t t = vals[j];
            vals[j] = vals[j - 1];
            vals[j - 1] = t;
        }
    int64_t p50 = usage_hist_percentile(hist, 0.5), p99 = usage_hist_percentile(hist, 0.99);
    assert_true(p50 >= vals[499] && (double)p50 <= vals[499] * 1.0905 + 1);
    assert_true(p99 >= vals[989] && (double)p99 <= vals[989] * 1.0905 + 1);
    assert_int_equal(usage_bucket_of(p50), usage_bucket_of(vals[499]));
}

static void test_sums_rollup_peaks(void **state)
{
    (void)state;
    char dir[256];
    testdir_make(dir, sizeof(dir));
    store *st;
    rouse_errbuf eb = {0};
    assert_int_equal(store_open(dir, &st, &eb), 0);
    usage_rec r[8];
    /* Hour 0: three overlapping runs of mlp (peak 3: starts at 0, 100, 200
     * µs, each running 1000 µs), one later alone; one rejected call. */
    r[0] = rec("mlp", 1, T0 + 0, 3, 1000, 1500, 200);
    r[1] = rec("mlp", 1, T0 + 100, 1, 1000, 1100, 200);
    r[2] = rec("mlp", 1, T0 + 200, 2, 1000, 1100, 200);
    r[3] = rec("mlp", 2, T0 + 600000000LL, 1, 1500, 2000, 200);
    r[4] = rec("mlp", 1, T0 + 600000100LL, 0, 0, 30, 429);
    /* Hour 1: one call of another function, and one of mlp. */
    r[5] = rec("other", 1, T0 + H + 5, 1, 2001, 2500, 200);
    r[6] = rec("mlp", 2, T0 + H + 7, 1, 10, 40, 500);
    insert(st, r, 7);

    usage_result a;
    query(st, USAGE_BY_FUNCTION, "", true, &a);
    assert_int_equal(a.n_groups, 2);
    assert_string_equal(a.groups[0].function, "mlp");
    const usage_group *g = &a.groups[0];
    assert_int_equal(g->invocations, 6);
    assert_int_equal(g->requests, 5);
    assert_int_equal(g->errors, 2);
    assert_int_equal(g->starts[0], 1);
    assert_int_equal(g->starts[1], 3);
    assert_int_equal(g->starts[2], 1);
    assert_int_equal(g->starts[3], 1);
    assert_int_equal(g->billed_ms, 1 + 1 + 1 + 2 + 0 + 1);
    assert_int_equal(g->mb_ms, 6 * 512);
    assert_int_equal(a.groups[1].billed_ms, 3);
    assert_int_equal(a.n_peaks, 3);
    assert_string_equal(a.peaks[0].function, "mlp");
    assert_int_equal(a.peaks[0].hour_us, T0);
    assert_int_equal(a.peaks[0].peak, 3);
    assert_int_equal(a.peaks[1].hour_us, T0 + H);
    assert_int_equal(a.peaks[1].peak, 1);
    assert_string_equal(a.peaks[2].function, "other");

    usage_result byv;
    query(st, USAGE_BY_VERSION, "mlp", false, &byv);
    assert_int_equal(byv.n_groups, 2);
    assert_int_equal(byv.groups[0].version, 1);
    assert_int_equal(byv.groups[0].invocations, 4);
    assert_int_equal(byv.groups[1].version, 2);
    usage_result_fini(&byv);

    /* Roll hour 0 up (a cutoff on the hour after it): the same answer. */
    int64_t n;
    bool more;
    assert_int_equal(store_tx_begin(st, &eb), 0);
    assert_int_equal(usage_rollup_tx(st, T0 + H, &n, &more, &eb), 0);
    assert_int_equal(store_tx_commit(st, &eb), 0);
    assert_int_equal(n, 5);
    assert_false(more);
    usage_result b;
    query(st, USAGE_BY_FUNCTION, "", true, &b);
    assert_int_equal(b.n_groups, a.n_groups);
    for (int i = 0; i < a.n_groups; i++)
        assert_memory_equal(&a.groups[i], &b.groups[i], sizeof(usage_group));
    assert_int_equal(b.n_peaks, a.n_peaks);
    assert_memory_equal(a.peaks, b.peaks, sizeof(usage_peak) * (size_t)a.n_peaks);
    usage_result_fini(&b);

    /* By hour: hour 0 from the aggregates, hour 1 from the records. */
    query(st, USAGE_BY_HOUR, "", false, &b);
    assert_int_equal(b.n_groups, 2);
    assert_int_equal(b.groups[0].t_us, T0);
    assert_int_equal(b.groups[0].invocations, 5);
    assert_int_equal(b.groups[1].t_us, T0 + H);
    assert_int_equal(b.groups[1].invocations, 2);
    usage_result_fini(&b);

    /* A cutoff inside hour 1 rolls it in parts; everything rolled, the
     * sums are still the same. */
    assert_int_equal(store_tx_begin(st, &eb), 0);
    assert_int_equal(usage_rollup_tx(st, T0 + H + 6, &n, &more, &eb), 0);
    assert_int_equal(store_tx_commit(st, &eb), 0);
    assert_int_equal(n, 1);
    assert_false(more);
    assert_int_equal(store_tx_begin(st, &eb), 0);
    assert_int_equal(usage_rollup_tx(st, T0 + 10 * H, &n, &more, &eb), 0);
    assert_int_equal(store_tx_commit(st, &eb), 0);
    assert_int_equal(n, 1);
    query(st, USAGE_BY_FUNCTION, "", true, &b);
    for (int i = 0; i < a.n_groups; i++)
        assert_memory_equal(&a.groups[i], &b.groups[i], sizeof(usage_group));
    assert_memory_equal(a.peaks, b.peaks, sizeof(usage_peak) * (size_t)a.n_peaks);
    usage_result_fini(&b);

    /* A function that never ran: no group, no peak. */
    query(st, USAGE_BY_FUNCTION, "idle", true, &b);
    assert_int_equal(b.n_groups, 0);
    assert_int_equal(b.n_peaks, 0);
    usage_result_fini(&b);
    usage_result_fini(&a);
    store_close(st);
    testdir_remove(dir);
}

/* Batches longer than one multi-row INSERT (and not a multiple of it):
 * every record lands once, each field in its column. */
static void test_insert_many(void **state)
{
    (void)state;
    char dir[256];
    testdir_make(dir, sizeof(dir));
    store *st;
    rouse_errbuf eb = {0};
    assert_int_equal(store_open(dir, &st, &eb), 0);
    enum { N = 75 };
    usage_rec r[N];
    int64_t billed = 0, in = 0, out = 0, run = 0, starts[4] = {0}, errors = 0;
    for (int i = 0; i < N; i++) {
        r[i] = rec(i % 3 ? "mlp" : "other", 1 + i % 2, T0 + 1000 * i, i % 4, 1000 * i + 1,
                   1000 * i + 7, i % 5 ? 200 : 500);
        r[i].bytes_in = 3 * i + 1;
        r[i].bytes_out = 5 * i + 2;
        if (i % 3) {
            billed += r[i].billed_ms;
            in += r[i].bytes_in;
            out += r[i].bytes_out;
            run += r[i].run_us;
            starts[i % 4]++;
            errors += r[i].error;
        }
    }
    insert(st, r, N);
    usage_result a;
    query(st, USAGE_BY_FUNCTION, "mlp", false, &a);
    assert_int_equal(a.n_groups, 1);
    const usage_group *g = &a.groups[0];
    assert_int_equal(g->invocations, N - (N + 2) / 3);
    assert_int_equal(g->billed_ms, billed);
    assert_int_equal(g->bytes_in, in);
    assert_int_equal(g->bytes_out, out);
    assert_int_equal(g->run_us, run);
    assert_int_equal(g->errors, errors);
    for (int k = 0; k < 4; k++)
        assert_int_equal(g->starts[k], starts[k]);
    usage_result_fini(&a);
    query(st, USAGE_BY_VERSION, "", false, &a);
    int64_t total = 0;
    for (int i = 0; i < a.n_groups; i++)
        total += a.groups[i].invocations;
    assert_int_equal(total, N);
    usage_result_fini(&a);
    store_close(st);
    testdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_sums_rollup_peaks),
        cmocka_unit_test(test_insert_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
