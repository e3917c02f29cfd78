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
#include <sqlite3.h>
#include <stdio.h>
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
    r.memory_mb = 512;
    r.bytes_in = 100;
    r.bytes_out = 50;
    r.status = status;
    return r;
}

/* Runs sql on the store's database through a connection of its own. */
static void db_exec(const char *dir, const char *sql)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/rouse.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    int src = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (src != SQLITE_OK) fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
}

static int64_t db_int(const char *dir, const char *sql)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/rouse.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* Invocations counted over [since, until), all functions. */
static int64_t count_range(store *st, int64_t since, int64_t until)
{
    usage_query q;
    memset(&q, 0, sizeof(q));
    q.since_us = since;
    q.until_us = until;
    q.by = USAGE_BY_FUNCTION;
    usage_result out;
    rouse_errbuf eb = {0};
    assert_int_equal(usage_query_run(st, &q, &out, &eb), 0);
    int64_t n = 0;
    for (int i = 0; i < out.n_groups; i++)
        n += out.groups[i].invocations;
    usage_result_fini(&out);
    return n;
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
            billed += (r[i].run_us + 999) / 1000;
            in += r[i].bytes_in;
            out += r[i].bytes_out;
            run += r[i].run_us;
            starts[i % 4]++;
            errors += r[i].status >= 400;
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

/* Records are keyed by time: a row's id is its µs × 1024 plus a sequence
 * number. Ids taken by an earlier run's records of the same µs (written
 * here straight into the table) are skipped, also inside a multi-row
 * INSERT; a µs with all 1,024 ids taken is an error that stores nothing;
 * times outside what the ids can tell apart are still found by range. */
static void test_time_keys(void **state)
{
    (void)state;
    char dir[256];
    testdir_make(dir, sizeof(dir));
    store *st;
    rouse_errbuf eb = {0};
    assert_int_equal(store_open(dir, &st, &eb), 0);
    const int64_t z = T0 + 5 * H + 17;
    /* 1,000 of the 1,024 ids of µs z taken, as by a run before. */
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 999) "
             "INSERT INTO usage_calls(id, request_id, function, version, start, queue_us, "
             "start_us, run_us, total_us, memory_mb, bytes_in, bytes_out, status) "
             "SELECT %lld * 1024 + (i * 37) %% 1024, 'old', 'old', 1, 1, 0, 0, 10, 10, 512, 1, 1, "
             "200 FROM c",
             (long long)z);
    db_exec(dir, sql);
    /* 40 records (a 32-row INSERT and 8 alone), 20 of them at µs z. */
    usage_rec r[40];
    for (int i = 0; i < 40; i++)
        r[i] = rec("mlp", 1, i % 2 ? z : z + 1 + i, 1, 10, 20, 200);
    insert(st, r, 40);
    assert_int_equal(count_range(st, z, z + 1), 1020);
    assert_int_equal(count_range(st, z, z + 100), 1040);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_records WHERE id / 1024 != ts_us"), 0);
    /* Rows are in time order. */
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_records a JOIN usage_records b "
                                 "ON b.id > a.id AND b.ts_us < a.ts_us"),
                     0);
    /* Four ids of µs z are left: a fifth record finds none. */
    usage_rec five[5];
    for (int i = 0; i < 5; i++)
        five[i] = rec("mlp", 1, z, 1, 10, 20, 200);
    assert_int_equal(store_tx_begin(st, &eb), 0);
    assert_true(usage_insert_tx(st, five, 5, &eb) < 0);
    assert_non_null(strstr(eb.msg, "usage record"));
    store_tx_rollback(st);
    assert_int_equal(count_range(st, z, z + 1), 1020);
    insert(st, five, 4);
    assert_int_equal(count_range(st, z, z + 1), 1024);
    /* Times before 1970 and after the ids' range. */
    usage_rec edge[3] = {rec("mlp", 1, -5, 1, 10, 20, 200),
                         rec("mlp", 1, INT64_MAX / 2, 1, 10, 20, 200),
                         rec("mlp", 1, INT64_MAX - 1, 1, 10, 20, 200)};
    insert(st, edge, 3);
    assert_int_equal(count_range(st, -10, 0), 1);
    assert_int_equal(count_range(st, -10, -5), 0);
    assert_int_equal(count_range(st, INT64_MAX / 4, INT64_MAX), 2);
    assert_int_equal(count_range(st, INT64_MAX / 4, INT64_MAX - 1), 1);
    /* A group of 32 with one such time among them goes row by row. */
    usage_rec mixed[32];
    for (int i = 0; i < 32; i++)
        mixed[i] = rec("mlp", 1, i == 9 ? -7 : z + 500 + i, 1, 10, 20, 200);
    insert(st, mixed, 32);
    assert_int_equal(count_range(st, -10, 0), 2);
    assert_int_equal(count_range(st, z + 500, z + 532), 31);
    /* Only those times are stored beside the id; the others are the id's. */
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_calls WHERE ts_us IS NOT NULL"), 4);
    assert_int_equal(db_int(dir, "SELECT min(ts_us) FROM usage_records"), -7);
    assert_int_equal(db_int(dir, "SELECT max(ts_us) FROM usage_records"), INT64_MAX - 1);
    store_close(st);
    testdir_remove(dir);
}

/* A database from before migration 8 (records in a rowid table with the
 * two indexes) opens with its records re-keyed by time, none lost, and
 * answers queries and roll-ups as before. */
static void test_migration_keeps_records(void **state)
{
    (void)state;
    char dir[256];
    testdir_make(dir, sizeof(dir));
    store *st;
    rouse_errbuf eb = {0};
    assert_int_equal(store_open(dir, &st, &eb), 0);
    store_close(st);
    char sql[4096];
    snprintf(sql, sizeof(sql),
             "DROP VIEW usage_records; DROP TABLE usage_calls;"
             "CREATE TABLE usage_records(id INTEGER PRIMARY KEY, ts_us INTEGER NOT NULL,"
             " request_id TEXT NOT NULL, function TEXT NOT NULL, version INTEGER NOT NULL,"
             " tenant TEXT NOT NULL, start INTEGER NOT NULL, queue_us INTEGER NOT NULL,"
             " start_us INTEGER NOT NULL, run_us INTEGER NOT NULL, total_us INTEGER NOT NULL,"
             " billed_ms INTEGER NOT NULL, memory_mb INTEGER NOT NULL, bytes_in INTEGER NOT NULL,"
             " bytes_out INTEGER NOT NULL, status INTEGER NOT NULL, error INTEGER NOT NULL,"
             " lat_bucket INTEGER NOT NULL, trace_id TEXT NOT NULL);"
             "CREATE INDEX usage_records_ts ON usage_records(ts_us);"
             "CREATE INDEX usage_records_fn_ts ON usage_records(function, ts_us);"
             /* Out of time order, three records in one µs. */
             "INSERT INTO usage_records(ts_us, request_id, function, version, tenant, start,"
             " queue_us, start_us, run_us, total_us, billed_ms, memory_mb, bytes_in, bytes_out,"
             " status, error, lat_bucket, trace_id) VALUES"
             " (%lld, 'a', 'mlp', 1, '', 1, 0, 0, 1500, 1600, 2, 512, 10, 1, 200, 0, 85, 't1'),"
             " (%lld, 'b', 'mlp', 1, '', 3, 0, 0, 2500, 2600, 3, 512, 10, 1, 200, 0, 90, 't2'),"
             " (%lld, 'c', 'mlp', 2, '', 1, 0, 0, 500, 600, 1, 512, 10, 1, 500, 6, 73, 't3'),"
             " (%lld, 'd', 'other', 1, '', 1, 0, 0, 500, 600, 1, 512, 10, 1, 200, 0, 73, 't4'),"
             " (%lld, 'e', 'mlp', 1, '', 1, 0, 0, 500, 600, 1, 512, 10, 1, 200, 0, 73, 't5');"
             /* Migration 9 undone too (batches created in chunks). */
             "DROP INDEX batches_creating;"
             "ALTER TABLE batches DROP COLUMN create_off;"
             "ALTER TABLE batches DROP COLUMN n_created;"
             "ALTER TABLE batches DROP COLUMN first_id;"
             "UPDATE schema_version SET version = 7;",
             (long long)(T0 + 2 * H), (long long)(T0 + 7), (long long)(T0 + 7),
             (long long)(T0 + H + 3), (long long)(T0 + 7));
    db_exec(dir, sql);
    assert_int_equal(store_open(dir, &st, &eb), 0);
    assert_true(db_int(dir, "SELECT version FROM schema_version") >= 8);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_records"), 5);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                                 "tbl_name = 'usage_records'"),
                     0);
    assert_int_equal(db_int(dir, "SELECT count(DISTINCT id) FROM usage_records WHERE "
                                 "id / 1024 = ts_us"),
                     5);
    assert_int_equal(db_int(dir, "SELECT sum(billed_ms) FROM usage_records"), 8);
    usage_result a;
    query(st, USAGE_BY_FUNCTION, "mlp", false, &a);
    assert_int_equal(a.n_groups, 1);
    assert_int_equal(a.groups[0].invocations, 4);
    assert_int_equal(a.groups[0].billed_ms, 7);
    assert_int_equal(a.groups[0].errors, 1);
    assert_int_equal(a.groups[0].starts[3], 1);
    usage_result_fini(&a);
    /* Roll the first two hours up: the record of hour 3 stays. */
    int64_t rows = 0, total = 0;
    bool more = true;
    while (more) {
        assert_int_equal(store_tx_begin(st, &eb), 0);
        assert_int_equal(usage_rollup_tx(st, T0 + 2 * H, &rows, &more, &eb), 0);
        assert_int_equal(store_tx_commit(st, &eb), 0);
        total += rows;
    }
    assert_int_equal(total, 4);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_records"), 1);
    query(st, USAGE_BY_FUNCTION, "mlp", false, &a);
    assert_int_equal(a.groups[0].invocations, 4);
    assert_int_equal(a.groups[0].billed_ms, 7);
    usage_result_fini(&a);
    store_close(st);
    testdir_remove(dir);
}

/* Text of one column of the first row of sql, into out. */
static void db_text(const char *dir, const char *sql, char *out, size_t cap)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/rouse.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    const char *t = (const char *)sqlite3_column_text(s, 0);
    snprintf(out, cap, "%s", t ? t : "(null)");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* Packed records (migration 10): the ids are stored as an integer and 16
 * bytes, the default tenant and an absent trace as NULL, and the view
 * usage_records gives back exactly what was recorded, with the billed ms
 * that follow from the run. An id that is not lowercase hex is kept as
 * its text. */
static void test_packed_round_trip(void **state)
{
    (void)state;
    char dir[256];
    testdir_make(dir, sizeof(dir));
    store *st;
    rouse_errbuf eb = {0};
    assert_int_equal(store_open(dir, &st, &eb), 0);
    usage_rec r[3];
    r[0] = rec("mlp", 2, T0 + 1, 1, 1001, 1500, 200);
    snprintf(r[0].request_id, sizeof(r[0].request_id), "ffffffff00000001");
    snprintf(r[0].trace_id, sizeof(r[0].trace_id), "0af7651916cd43dd8448eb211c80319c");
    snprintf(r[0].tenant, sizeof(r[0].tenant), "default");
    r[1] = rec("acme:mlp", 1, T0 + 2, 0, 0, 30, 429);
    snprintf(r[1].request_id, sizeof(r[1].request_id), "00000000000000a1");
    snprintf(r[1].tenant, sizeof(r[1].tenant), "acme");
    r[2] = rec("mlp", 1, T0 + 3, 3, 999, 1200, 200);
    snprintf(r[2].request_id, sizeof(r[2].request_id), "Not-Hex-1");
    snprintf(r[2].trace_id, sizeof(r[2].trace_id), "0AF7651916CD43DD8448EB211C80319C");
    insert(st, r, 3);
    char t[128];
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_calls WHERE ts_us IS NULL"), 3);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_calls WHERE "
                                 "typeof(request_id) = 'integer'"),
                     2);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_calls WHERE typeof(trace_id) = "
                                 "'blob' AND length(trace_id) = 16"),
                     1);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_calls WHERE tenant IS NULL"), 1);
    db_text(dir,
            "SELECT group_concat(request_id, ' ') FROM (SELECT request_id FROM usage_records "
            "ORDER BY id)",
            t, sizeof(t));
    assert_string_equal(t, "ffffffff00000001 00000000000000a1 Not-Hex-1");
    db_text(dir,
            "SELECT group_concat(trace_id, ' ') FROM (SELECT trace_id FROM usage_records "
            "ORDER BY id)",
            t, sizeof(t));
    assert_string_equal(t, "0af7651916cd43dd8448eb211c80319c  0AF7651916CD43DD8448EB211C80319C");
    db_text(dir,
            "SELECT group_concat(tenant || '/' || function || '/' || version || '/' || "
            "billed_ms || '/' || ts_us, ' ') FROM (SELECT * FROM usage_records ORDER BY id)",
            t, sizeof(t));
    char want[128];
    snprintf(want, sizeof(want), "default/mlp/2/2/%lld acme/acme:mlp/1/0/%lld /mlp/1/1/%lld",
             (long long)(T0 + 1), (long long)(T0 + 2), (long long)(T0 + 3));
    assert_string_equal(t, want);
    /* Queries and roll-ups read the same sums. */
    usage_result a;
    query(st, USAGE_BY_FUNCTION, "", false, &a);
    assert_int_equal(a.n_groups, 2);
    assert_string_equal(a.groups[1].function, "mlp");
    assert_int_equal(a.groups[1].billed_ms, 3);
    assert_int_equal(a.groups[1].mb_ms, 3 * 512);
    assert_int_equal(a.groups[0].errors, 1);
    assert_int_equal(usage_hist_percentile(a.groups[1].hist, 1.0),
                     usage_bucket_upper(usage_bucket_of(1500)));
    int64_t n;
    bool more;
    assert_int_equal(store_tx_begin(st, &eb), 0);
    assert_int_equal(usage_rollup_tx(st, T0 + H, &n, &more, &eb), 0);
    assert_int_equal(store_tx_commit(st, &eb), 0);
    assert_int_equal(n, 3);
    usage_result b;
    query(st, USAGE_BY_FUNCTION, "", false, &b);
    assert_int_equal(b.n_groups, a.n_groups);
    for (int i = 0; i < a.n_groups; i++)
        assert_memory_equal(&a.groups[i], &b.groups[i], sizeof(usage_group));
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_hourly WHERE tenant = 'default'"), 1);
    usage_result_fini(&b);
    usage_result_fini(&a);
    store_close(st);
    testdir_remove(dir);
}

/* A database of schema 9 (the records with every column, ids as text)
 * opens with its records packed (migration 10), none lost: the view shows
 * each as it was, and queries and roll-ups answer as before; records
 * written after it sit beside them. */
static void test_migration_packs_records(void **state)
{
    (void)state;
    char dir[256];
    testdir_make(dir, sizeof(dir));
    store *st;
    rouse_errbuf eb = {0};
    assert_int_equal(store_open(dir, &st, &eb), 0);
    store_close(st);
    char sql[4096];
    int64_t t1 = T0 + 7, t2 = T0 + H + 3;
    snprintf(sql, sizeof(sql),
             "DROP VIEW usage_records; DROP TABLE usage_calls;"
             "CREATE TABLE usage_records(id INTEGER PRIMARY KEY, ts_us INTEGER NOT NULL,"
             " request_id TEXT NOT NULL, function TEXT NOT NULL, version INTEGER NOT NULL,"
             " tenant TEXT NOT NULL, start INTEGER NOT NULL, queue_us INTEGER NOT NULL,"
             " start_us INTEGER NOT NULL, run_us INTEGER NOT NULL, total_us INTEGER NOT NULL,"
             " billed_ms INTEGER NOT NULL, memory_mb INTEGER NOT NULL, bytes_in INTEGER NOT NULL,"
             " bytes_out INTEGER NOT NULL, status INTEGER NOT NULL, error INTEGER NOT NULL,"
             " lat_bucket INTEGER NOT NULL, trace_id TEXT NOT NULL);"
             "INSERT INTO usage_records VALUES"
             " (%lld, %lld, '5f8e4d9b00000001', 'mlp', 1, 'default', 1, 5, 0, 1500, 1600, 2, 512,"
             "  10, 1, 200, 0, 85, '0af7651916cd43dd8448eb211c80319c'),"
             " (%lld, %lld, '5f8e4d9b00000002', 'mlp', 1, 'default', 3, 0, 900, 2500, 3600, 3, 512,"
             "  10, 1, 200, 0, 94, ''),"
             " (%lld, %lld, '000000000000002a', 'acme:mlp', 2, '', 1, 0, 0, 500, 600, 1, 256,"
             "  10, 1, 500, 6, 73, 't3'),"
             " (%lld, %lld, '5f8e4d9b00000003', 'mlp', 1, 'default', 0, 0, 0, 0, 30, 0, 0,"
             "  10, 1, 429, 3, 39, ''),"
             /* Before 1970: the time the id cannot hold. */
             " (3, -5, '5f8e4d9b00000005', 'mlp', 1, 'default', 1, 0, 0, 10, 40, 1, 512,"
             "  10, 1, 200, 0, 42, '');"
             "UPDATE schema_version SET version = 9;",
             (long long)(t1 * 1024), (long long)t1, (long long)(t1 * 1024 + 1), (long long)t1,
             (long long)(t2 * 1024), (long long)t2, (long long)((t1 + 100) * 1024),
             (long long)(t1 + 100));
    db_exec(dir, sql);
    assert_int_equal(store_open(dir, &st, &eb), 0);
    assert_true(db_int(dir, "SELECT version FROM schema_version") >= 10);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_calls"), 5);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_calls WHERE ts_us IS NOT NULL"), 1);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_calls WHERE tenant IS NULL"), 4);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_calls WHERE trace_id IS NULL"), 3);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                                 "tbl_name = 'usage_calls'"),
                     0);
    /* The view shows each record as it was stored. */
    char t[512];
    db_text(dir,
            "SELECT group_concat(x, ' ') FROM (SELECT ts_us || '/' || request_id || '/' || "
            "tenant || '/' || billed_ms || '/' || trace_id AS x FROM usage_records "
            "ORDER BY id)",
            t, sizeof(t));
    char want[512];
    snprintf(want, sizeof(want),
             "-5/5f8e4d9b00000005/default/1/ %lld/5f8e4d9b00000001/default/2/"
             "0af7651916cd43dd8448eb211c80319c %lld/5f8e4d9b00000002/default/3/ "
             "%lld/5f8e4d9b00000003/default/0/ %lld/000000000000002a//1/t3",
             (long long)t1, (long long)t1, (long long)(t1 + 100), (long long)t2);
    assert_string_equal(t, want);
    /* A record written now sits beside them, shown alike. */
    usage_rec r = rec("mlp", 1, t2 + 1, 1, 10, 40, 200);
    snprintf(r.request_id, sizeof(r.request_id), "5f8e4d9b00000004");
    snprintf(r.tenant, sizeof(r.tenant), "default");
    insert(st, &r, 1);
    db_text(dir,
            "SELECT request_id || '/' || tenant || '/' || billed_ms FROM usage_records "
            "ORDER BY id DESC LIMIT 1",
            t, sizeof(t));
    assert_string_equal(t, "5f8e4d9b00000004/default/1");
    usage_result a;
    query(st, USAGE_BY_FUNCTION, "", true, &a);
    assert_int_equal(a.n_groups, 2);
    const usage_group *g = &a.groups[1];
    assert_string_equal(g->function, "mlp");
    assert_int_equal(g->invocations, 4);
    assert_int_equal(g->requests, 3);
    assert_int_equal(g->errors, 1);
    assert_int_equal(g->starts[3], 1);
    assert_int_equal(g->billed_ms, 2 + 3 + 0 + 1);
    assert_int_equal(a.groups[0].errors, 1);
    assert_int_equal(a.groups[0].mb_ms, 256);
    /* The two runs of hour 0 overlap: 5 .. 1505 and 900 .. 3400 µs after t1. */
    assert_int_equal(a.n_peaks, 3);
    assert_string_equal(a.peaks[1].function, "mlp");
    assert_int_equal(a.peaks[1].hour_us, T0);
    assert_int_equal(a.peaks[1].peak, 2);
    assert_int_equal(usage_hist_percentile(g->hist, 1.0), usage_bucket_upper(94));
    /* Rolled up into hours, the same answer. */
    int64_t rows = 0, total = 0;
    bool more = true;
    while (more) {
        assert_int_equal(store_tx_begin(st, &eb), 0);
        assert_int_equal(usage_rollup_tx(st, T0 + 2 * H, &rows, &more, &eb), 0);
        assert_int_equal(store_tx_commit(st, &eb), 0);
        total += rows;
    }
    assert_int_equal(total, 6);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_records"), 0);
    usage_result b;
    query(st, USAGE_BY_FUNCTION, "", true, &b);
    assert_int_equal(b.n_groups, a.n_groups);
    for (int i = 0; i < a.n_groups; i++)
        assert_memory_equal(&a.groups[i], &b.groups[i], sizeof(usage_group));
    assert_int_equal(b.n_peaks, a.n_peaks);
    assert_memory_equal(a.peaks, b.peaks, sizeof(usage_peak) * (size_t)a.n_peaks);
    usage_result_fini(&b);
    usage_result_fini(&a);
    store_close(st);
    testdir_remove(dir);
}

/* The list of records to ship: each record written through the writer's
 * connection with the trigger is listed, in order, read back whole (ids,
 * request and trace ids, the default tenant); the prune drops the list up
 * to the shipped position and only records no longer listed; a second
 * connection sees the same store identity. */
static void test_ship_list(void **state)
{
    (void)state;
    char dir[256];
    testdir_make(dir, sizeof(dir));
    store *st, *rd;
    rouse_errbuf eb = {0};
    assert_int_equal(store_open(dir, &st, &eb), 0);
    assert_int_equal(store_open(dir, &rd, &eb), 0);
    assert_int_equal(usage_outbox_create(rd, &eb), 0);
    assert_int_equal(usage_outbox_create(rd, &eb), 0); /* once only */
    char id1[33], id2[33];
    assert_int_equal(usage_outbox_store_id(rd, id1, &eb), 0);
    assert_int_equal(usage_outbox_store_id(st, id2, &eb), 0);
    assert_int_equal(strlen(id1), 32);
    assert_string_equal(id1, id2);
    /* One record before the list exists on this connection: not listed. */
    usage_rec r[40];
    for (int i = 0; i < 40; i++) {
        r[i] = rec("mlp", 1, T0 + 1000 * (40 - i), 1, 1500, 2000, 200); /* newest first */
        snprintf(r[i].tenant, sizeof(r[i].tenant), "%s", i == 5 ? "acme" : "default");
    }
    snprintf(r[3].trace_id, sizeof(r[3].trace_id), "0123456789abcdef0123456789abcdef");
    insert(st, r, 1);
    assert_int_equal(store_tx_begin(st, &eb), 0);
    assert_int_equal(usage_outbox_tx(st, &eb), 0);
    assert_int_equal(usage_insert_tx(st, r + 1, 39, &eb), 0);
    assert_int_equal(store_tx_commit(st, &eb), 0);
    int64_t pending;
    assert_int_equal(usage_outbox_pending(rd, 0, &pending, &eb), 0);
    assert_int_equal(pending, 39);
    static usage_rec got[64];
    int64_t ids[64], last;
    int n;
    assert_int_equal(usage_outbox_read(rd, 0, 10, got, ids, &n, &last, &eb), 0);
    assert_int_equal(n, 10);
    assert_int_equal(last, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(got[i].ts_us, r[1 + i].ts_us); /* in the order written */
        assert_string_equal(got[i].request_id, r[1 + i].request_id);
        assert_string_equal(got[i].function, "mlp");
        assert_string_equal(got[i].tenant, i == 4 ? "acme" : "default");
        assert_int_equal(got[i].run_us, 1500);
        assert_int_equal(ids[i] >> 10, got[i].ts_us);
    }
    assert_string_equal(got[2].trace_id, r[3].trace_id);
    assert_string_equal(got[3].trace_id, "");
    assert_int_equal(usage_outbox_read(rd, last, 64, got, ids, &n, &last, &eb), 0);
    assert_int_equal(n, 29);
    assert_int_equal(last, 39);
    /* Shipped up to 20: the prune (everything is past the cutoff) keeps
     * the 19 still listed and removes the unlisted one and the 20. */
    int64_t rows;
    bool more;
    assert_int_equal(store_tx_begin(st, &eb), 0);
    assert_int_equal(usage_prune_shipped_tx(st, T0 + 100 * H, 20, &rows, &more, &eb), 0);
    assert_int_equal(store_tx_commit(st, &eb), 0);
    assert_int_equal(rows, 21);
    assert_false(more);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM usage_calls"), 19);
    assert_int_equal(usage_outbox_pending(rd, 20, &pending, &eb), 0);
    assert_int_equal(pending, 19);
    assert_int_equal(usage_outbox_read(rd, 20, 64, got, ids, &n, &last, &eb), 0);
    assert_int_equal(n, 19);
    assert_int_equal(got[0].ts_us, r[21].ts_us);
    /* Positions are never reused, also once the list is empty. */
    assert_int_equal(store_tx_begin(st, &eb), 0);
    assert_int_equal(usage_prune_shipped_tx(st, T0, 39, &rows, &more, &eb), 0);
    assert_int_equal(usage_outbox_tx(st, &eb), 0);
    usage_rec one = rec("mlp", 1, T0 + 5 * H, 1, 1, 1, 200);
    assert_int_equal(usage_insert_tx(st, &one, 1, &eb), 0);
    assert_int_equal(store_tx_commit(st, &eb), 0);
    assert_int_equal(usage_outbox_read(rd, 39, 64, got, ids, &n, &last, &eb), 0);
    assert_int_equal(n, 1);
    assert_int_equal(last, 40);
    store_close(rd);
    store_close(st);
    testdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_sums_rollup_peaks),
        cmocka_unit_test(test_insert_many),
        cmocka_unit_test(test_time_keys),
        cmocka_unit_test(test_migration_keeps_records),
        cmocka_unit_test(test_packed_round_trip),
        cmocka_unit_test(test_migration_packs_records),
        cmocka_unit_test(test_ship_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
