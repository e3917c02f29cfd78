/* The registry sync (server/regsync.h) on a throwaway PostgreSQL: start
 * copies the whole registry into the replica; a change another node made
 * arrives through the poll and, sooner, through regsync_poke, reported by
 * regsync_drain with the function's key (and NULL for API keys); this
 * node's own writes reach the publish function with their number; a
 * change whose log entry was pruned before it was read arrives through a
 * copy of the whole registry; with PostgreSQL away the health says down,
 * and back it says up again.
 * Skipped with one line when PostgreSQL is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../store/testdir.h"
#include "pg_server.h"
#include "server/regsync.h"
#include "store/store.h"

static pg_server g_pg;

typedef struct seen {
    int n_fn, n_keys;
    char fn[16][STORE_NAME_MAX + 1];
    int n_pub;
    char pub[16][STORE_NAME_MAX + 1];
    int64_t pub_seq[16];
} seen;

static void on_changed(void *user, const char *fn_key)
{
    seen *s = user;
    if (!fn_key) {
        s->n_keys++;
        return;
    }
    if (s->n_fn < 16) snprintf(s->fn[s->n_fn++], sizeof(s->fn[0]), "%s", fn_key);
}

static void on_publish(void *user, const char *fn_key, int64_t seq)
{
    seen *s = user;
    if (s->n_pub >= 16) return;
    snprintf(s->pub[s->n_pub], sizeof(s->pub[0]), "%s", fn_key);
    s->pub_seq[s->n_pub++] = seq;
}

/* Drains events until pred holds (60 s at most: the machine may be busy). */
static bool drain_until(regsync *r, seen *s, bool (*pred)(const seen *))
{
    time_t until = time(NULL) + 60;
    while (!pred(s)) {
        if (time(NULL) >= until) return false;
        struct pollfd p = {.fd = regsync_fd(r), .events = POLLIN};
        if (poll(&p, 1, 500) == 1) regsync_drain(r, on_changed, s);
    }
    return true;
}

static bool got_fn(const seen *s)
{
    return s->n_fn > 0;
}

static bool got_keys(const seen *s)
{
    return s->n_keys > 0;
}

static bool got_pub(const seen *s)
{
    return s->n_pub > 0;
}

static void sql(const char *q)
{
    assert_int_equal(pg_server_sql(&g_pg, q, NULL, 0), 0);
}

static void sync_copies_pokes_and_publishes(void **state)
{
    (void)state;
    char dir[256];
    testdir_make(dir, sizeof(dir));
    rouse_errbuf eb = {0};
    /* A registry written before this node started: copied at start. */
    regsync *r;
    assert_int_equal(regsync_start(g_pg.url, dir, &r, &eb), 0);
    sql("BEGIN; UPDATE registry_seq SET seq = seq + 1;"
        " INSERT INTO functions VALUES ('early', 1);"
        " INSERT INTO registry_log SELECT seq, 'f', 'early' FROM registry_seq; COMMIT");
    regsync_stop(r);
    char dir2[256];
    testdir_make(dir2, sizeof(dir2));
    assert_int_equal(regsync_start(g_pg.url, dir2, &r, &eb), 0);
    store *st;
    assert_int_equal(store_open(dir2, &st, &eb), 0);
    store_function f;
    assert_int_equal(store_function_get(st, "early", &f, &eb), 0);
    store_function_fini(&f);

    seen s;
    memset(&s, 0, sizeof(s));
    regsync_set_publish(r, on_publish, &s);
    /* Another node's change, then a poke (as a bus event would). */
    sql("BEGIN; UPDATE registry_seq SET seq = seq + 1;"
        " INSERT INTO functions VALUES ('t1:late', 2);"
        " INSERT INTO registry_log SELECT seq, 'f', 't1:late' FROM registry_seq; COMMIT");
    regsync_poke(r);
    assert_true(drain_until(r, &s, got_fn));
    assert_string_equal(s.fn[0], "t1:late");
    assert_int_equal(store_function_get(st, "t1:late", &f, &eb), 0);
    store_function_fini(&f);
    /* A key another node created: reported as a key change. */
    sql("BEGIN; UPDATE registry_seq SET seq = seq + 1;"
        " INSERT INTO api_keys(id, tenant, role, hash, created_ms) VALUES ('k1', 'default',"
        " 'admin', repeat('a', 64), 1);"
        " INSERT INTO registry_log SELECT seq, 'k', 'k1' FROM registry_seq; COMMIT");
    assert_true(drain_until(r, &s, got_keys));
    /* A deletion there is a deletion here. */
    s.n_fn = 0;
    sql("BEGIN; UPDATE registry_seq SET seq = seq + 1;"
        " DELETE FROM functions WHERE name = 'early';"
        " INSERT INTO registry_log SELECT seq, 'f', 'early' FROM registry_seq; COMMIT");
    assert_true(drain_until(r, &s, got_fn));
    assert_string_equal(s.fn[0], "early");
    assert_int_equal(store_function_get(st, "early", &f, &eb), ROUSE_ENOTFOUND);

    /* Another node's change whose log entry was pruned before this node
     * read it: the whole registry is copied, and the change reported. */
    s.n_fn = 0;
    sql("BEGIN; UPDATE registry_seq SET seq = seq + 1;"
        " INSERT INTO functions VALUES ('t1:pruned', 3);"
        " INSERT INTO registry_log SELECT seq, 'f', 't1:pruned' FROM registry_seq;"
        " DELETE FROM registry_log; UPDATE registry_seq SET pruned = seq; COMMIT");
    regsync_poke(r);
    assert_true(drain_until(r, &s, got_fn));
    assert_int_equal(store_function_get(st, "t1:pruned", &f, &eb), 0);
    store_function_fini(&f);
    assert_int_equal(store_function_get(st, "t1:late", &f, &eb), 0);
    store_function_fini(&f);
    assert_int_equal(store_function_get(st, "early", &f, &eb), ROUSE_ENOTFOUND);

    /* This node's own write (the writer's commit hook): published, not
     * reported as a change. */
    s.n_fn = 0;
    regsync_own_write(r, "mine", 42);
    assert_true(drain_until(r, &s, got_pub));
    assert_string_equal(s.pub[0], "mine");
    assert_int_equal(s.pub_seq[0], 42);
    assert_int_equal(s.n_fn, 0);

    /* PostgreSQL away: down; back: up again. */
    assert_int_equal(pg_server_pause(&g_pg), 0);
    time_t until = time(NULL) + 60;
    while (!pg_health_get(regsync_health(r), NULL, NULL, NULL, 0) && time(NULL) < until)
        usleep(100000);
    char msg[256];
    assert_true(pg_health_get(regsync_health(r), NULL, NULL, msg, sizeof(msg)));
    assert_non_null(strstr(msg, "shared state unavailable: "));
    assert_int_equal(pg_server_resume(&g_pg), 0);
    until = time(NULL) + 60;
    while (pg_health_get(regsync_health(r), NULL, NULL, NULL, 0) && time(NULL) < until)
        usleep(100000);
    assert_false(pg_health_get(regsync_health(r), NULL, NULL, NULL, 0));

    store_close(st);
    regsync_stop(r);
    testdir_remove(dir);
    testdir_remove(dir2);
}

static void start_fails_clearly_without_postgres(void **state)
{
    (void)state;
    char dir[256];
    testdir_make(dir, sizeof(dir));
    rouse_errbuf eb = {0};
    regsync *r;
    assert_int_equal(regsync_start("postgres://rouse@127.0.0.1:1/postgres", dir, &r, &eb),
                     ROUSE_EUNAVAILABLE);
    assert_non_null(strstr(eb.msg, "--state: shared state unavailable: "));
    testdir_remove(dir);
}

int main(void)
{
    char why[256] = "";
    int prc = pg_server_start(&g_pg, NULL, why, sizeof(why));
    if (prc == 1) {
        printf("skipped: PostgreSQL is not installed (%s)\n", why);
        return 0;
    }
    if (prc < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sync_copies_pokes_and_publishes),
        cmocka_unit_test(start_fails_clearly_without_postgres),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    pg_server_stop(&g_pg);
    return rc;
}
