/*
 * The invocation record's helpers: billed milliseconds, error kinds from
 * statuses, start kinds, and the sinks in registration order; the usage
 * records' view (store/usage.h), which derives the billed ms and the error
 * kind instead of storing them, agrees with these helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "rouse/err.h"
#include "server/invocation.h"
#include "store/usage.h"
#include "../store/testdir.h"

static void test_billed_ms(void **state)
{
    (void)state;
    assert_int_equal(inv_billed_ms(0), 0);
    assert_int_equal(inv_billed_ms(1), 1);
    assert_int_equal(inv_billed_ms(999), 1);
    assert_int_equal(inv_billed_ms(1000), 1);
    assert_int_equal(inv_billed_ms(1001), 2);
    assert_int_equal(inv_billed_ms(2500000), 2500);
}

static void test_error_kinds(void **state)
{
    (void)state;
    assert_int_equal(inv_error_of(200), INV_OK);
    assert_int_equal(inv_error_of(400), INV_ERR_BAD_REQUEST);
    assert_int_equal(inv_error_of(413), INV_ERR_BAD_REQUEST);
    assert_int_equal(inv_error_of(404), INV_ERR_NOT_FOUND);
    assert_int_equal(inv_error_of(429), INV_ERR_QUEUE_FULL);
    assert_int_equal(inv_error_of(503), INV_ERR_UNAVAILABLE);
    assert_int_equal(inv_error_of(504), INV_ERR_TIMEOUT);
    assert_int_equal(inv_error_of(500), INV_ERR_INTERNAL);
    assert_string_equal(inv_error_name(INV_ERR_QUEUE_FULL), "queue_full");
    assert_string_equal(inv_error_name(INV_OK), "ok");
    for (int k = INV_START_NONE; k < INV_START_COUNT; k++)
        assert_int_equal(inv_start_parse(inv_start_name((inv_start)k)), k);
    assert_int_equal(inv_start_parse(NULL), INV_START_NONE);
    assert_int_equal(inv_start_parse("lukewarm"), INV_START_NONE);
}

static char order[INV_SINKS_MAX + 2];

static void sink(void *user, const invocation *inv)
{
    size_t n = strlen(order);
    order[n] = *(const char *)user;
    assert_int_equal(inv->status, 200);
}

static void test_sinks(void **state)
{
    (void)state;
    static const char names[] = "abcdefghij";
    invocation_sinks s;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < INV_SINKS_MAX; i++)
        assert_int_equal(invocation_sink_add(&s, sink, (void *)&names[i]), 0);
    assert_int_equal(invocation_sink_add(&s, sink, (void *)&names[9]), ROUSE_ERANGE);
    invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.status = 200;
    memset(order, 0, sizeof(order));
    invocation_emit(&s, &inv);
    assert_string_equal(order, "abcdefgh");
}

/* One record per status from 100 to 599, each with another run time:
 * the view usage_records shows the error kind inv_error_of gives and the
 * billed ms of inv_billed_ms. */
static void test_usage_view_derives(void **state)
{
    (void)state;
    char dir[256];
    testdir_make(dir, sizeof(dir));
    store *st;
    rouse_errbuf eb = {0};
    assert_int_equal(store_open(dir, &st, &eb), 0);
    enum { N = 500 };
    static usage_rec r[N];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < N; i++) {
        r[i].ts_us = 1796594400000000LL + i;
        snprintf(r[i].request_id, sizeof(r[i].request_id), "%016x", i);
        snprintf(r[i].function, sizeof(r[i].function), "mlp");
        r[i].version = 1;
        r[i].start = 1;
        r[i].run_us = i * 997 % 4003;
        r[i].total_us = r[i].run_us + 10;
        r[i].status = 100 + i;
    }
    assert_int_equal(store_tx_begin(st, &eb), 0);
    assert_int_equal(usage_insert_tx(st, r, N, &eb), 0);
    assert_int_equal(store_tx_commit(st, &eb), 0);
    store_close(st);
    char path[400];
    snprintf(path, sizeof(path), "%s/rouse.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT status, run_us, error, billed_ms FROM "
                                        "usage_records ORDER BY id",
                                        -1, &s, NULL),
                     SQLITE_OK);
    int n = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        int status = sqlite3_column_int(s, 0);
        assert_int_equal(status, 100 + n);
        assert_int_equal(sqlite3_column_int(s, 2), inv_error_of(status));
        assert_int_equal(sqlite3_column_int64(s, 3),
                         inv_billed_ms((uint64_t)sqlite3_column_int64(s, 1)));
        n++;
    }
    assert_int_equal(n, N);
    sqlite3_finalize(s);
    sqlite3_close(db);
    testdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_billed_ms),
        cmocka_unit_test(test_error_kinds),
        cmocka_unit_test(test_sinks),
        cmocka_unit_test(test_usage_view_derives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
