/* The writer with the shared registry attached (store_attach_shared) on a
 * throwaway PostgreSQL: one group mixing registry writes (PostgreSQL) with
 * usage records (SQLite) commits both, the registry's copied into the
 * replica before the completions run; with PostgreSQL away the same group
 * fails the registry writes alone, with 503's code, and keeps the usage
 * records. Skipped with one line when PostgreSQL is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_server.h"
#include "store/pg_util.h"
#include "store/replica.h"
#include "store/store.h"
#include "store/usage.h"
#include "store/writer.h"
#include "testdir.h"

#define DIGEST_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static pg_server g_pg;
static pg_health g_health;

typedef struct fixture {
    char dir[256];
    store *reader;
    store_writer *w;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    testdir_make(f->dir, sizeof(f->dir));
    rouse_errbuf eb = {0};
    PGconn *c = NULL;
    store *ws;
    if (pg_connect(g_pg.url, &c, &eb) < 0 || replica_migrate(&c, &eb) < 0 ||
        pg_exec(&c, "TRUNCATE functions, api_keys, blob_owners, registry_log CASCADE", 0, NULL,
                5000, NULL, "emptying", &eb) < 0 ||
        store_open(f->dir, &f->reader, &eb) != 0 || store_open(f->dir, &ws, &eb) != 0 ||
        store_attach_shared(ws, g_pg.url, &g_health, &eb) != 0 ||
        store_writer_create(ws, "registry", &f->w, &eb) != 0) {
        fprintf(stderr, "setup: %s\n", eb.msg);
        if (c) PQfinish(c);
        return -1;
    }
    PQfinish(c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_writer_destroy(f->w);
    store_close(f->reader);
    testdir_remove(f->dir);
    free(f);
    return 0;
}

/* Holds the writer until opened: what is submitted meanwhile is one group
 * (once the writer is inside the gate: gate_entered). */
static pthread_mutex_t g_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_c = PTHREAD_COND_INITIALIZER;
static bool g_open, g_inside;

static int apply_gate(store *st, void *p, rouse_errbuf *eb)
{
    (void)st, (void)p, (void)eb;
    pthread_mutex_lock(&g_m);
    g_inside = true;
    pthread_cond_broadcast(&g_c);
    while (!g_open)
        pthread_cond_wait(&g_c, &g_m);
    g_inside = false;
    pthread_mutex_unlock(&g_m);
    return 0;
}

/* Waits until the writer runs the gate: it has taken the gate's group, so
 * that what comes next queues behind it (a writer slow to wake, as under
 * a sanitizer, took the gate and the first write after it together). */
static void gate_entered(void)
{
    pthread_mutex_lock(&g_m);
    while (!g_inside)
        pthread_cond_wait(&g_c, &g_m);
    pthread_mutex_unlock(&g_m);
}

static void gate(bool open)
{
    pthread_mutex_lock(&g_m);
    g_open = open;
    pthread_cond_broadcast(&g_c);
    pthread_mutex_unlock(&g_m);
}

typedef struct deploy_arg {
    char name[STORE_NAME_MAX + 1];
    int64_t version;
    bool created;
} deploy_arg;

static int apply_deploy(store *st, void *p, rouse_errbuf *eb)
{
    deploy_arg *a = p;
    return store_deploy_tx(st, a->name, DIGEST_A, "{}", &a->version, &a->created, eb);
}

static int apply_usage(store *st, void *p, rouse_errbuf *eb)
{
    return usage_insert_tx(st, p, 1, eb);
}

typedef struct outcome {
    int n;
    int rc[8];
    int64_t version[8];
    char msg[8][512];
    bool replica_had[8]; /* the replica answered for the deploy in its callback */
    store *reader;
} outcome;

typedef struct tag {
    outcome *o;
    int i;
    bool deploy;
} tag;

static void done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    tag *t = user;
    t->o->n++;
    t->o->rc[t->i] = rc;
    snprintf(t->o->msg[t->i], sizeof(t->o->msg[0]), "%s", rc < 0 ? eb->msg : "");
    if (!t->deploy || rc < 0) return;
    deploy_arg *a = arg;
    t->o->version[t->i] = a->version;
    int64_t v = 0;
    t->o->replica_had[t->i] = store_resolve(t->o->reader, a->name, NULL, 0.0, &v, NULL) == 0 &&
                              v == a->version;
}

static int64_t usage_rows(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/rouse.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM usage_calls", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* gate, deploy a, usage, deploy b, usage: the four after the gate are one group. */
static void run_mixed_group(fixture *f, outcome *o, tag *tags)
{
    memset(o, 0, sizeof(*o));
    o->reader = f->reader;
    gate(false);
    assert_int_equal(store_writer_submit(f->w, apply_gate, NULL, 0, NULL, NULL, NULL), 0);
    gate_entered();
    usage_rec rec;
    memset(&rec, 0, sizeof(rec));
    rec.ts_us = 1700000000000000;
    rec.version = 1;
    rec.status = 200;
    snprintf(rec.function, sizeof(rec.function), "fa");
    snprintf(rec.tenant, sizeof(rec.tenant), "default");
    snprintf(rec.request_id, sizeof(rec.request_id), "00000000000000a1");
    for (int i = 0; i < 4; i++) {
        tags[i] = (tag){.o = o, .i = i, .deploy = i % 2 == 0};
        if (tags[i].deploy) {
            deploy_arg a = {.version = 0};
            snprintf(a.name, sizeof(a.name), "%s", i == 0 ? "fa" : "fb");
            assert_int_equal(
                store_writer_submit(f->w, apply_deploy, &a, sizeof(a), done, &tags[i], NULL), 0);
        } else {
            rec.ts_us += i;
            assert_int_equal(
                store_writer_submit(f->w, apply_usage, &rec, sizeof(rec), done, &tags[i], NULL),
                0);
        }
    }
    gate(true);
    while (o->n < 4) {
        struct pollfd p = {.fd = store_writer_fd(f->w), .events = POLLIN};
        assert_true(poll(&p, 1, 60000) == 1);
        store_writer_complete(f->w);
    }
}

static void mixed_group_commits_both(void **state)
{
    fixture *f = *state;
    outcome o;
    tag tags[4];
    run_mixed_group(f, &o, tags);
    for (int i = 0; i < 4; i++) {
        if (o.rc[i] != 0) fprintf(stderr, "write %d: %s\n", i, o.msg[i]);
        assert_int_equal(o.rc[i], 0);
    }
    assert_int_equal(o.version[0], 1);
    assert_int_equal(o.version[2], 1);
    /* The completions ran after the copy into the replica. */
    assert_true(o.replica_had[0]);
    assert_true(o.replica_had[2]);
    assert_int_equal(usage_rows(f->dir), 2);
    store_writer_stats st;
    store_writer_stats_get(f->w, &st);
    assert_true(st.max_group >= 4);
    char out[64];
    assert_int_equal(pg_server_sql(&g_pg, "SELECT count(*) FROM versions", out, sizeof(out)), 0);
    assert_int_equal(atoi(out), 2);
}

static void pg_away_fails_only_the_registry_writes(void **state)
{
    fixture *f = *state;
    assert_int_equal(pg_server_pause(&g_pg), 0);
    outcome o;
    tag tags[4];
    run_mixed_group(f, &o, tags);
    assert_int_equal(pg_server_resume(&g_pg), 0);
    assert_int_equal(o.rc[0], ROUSE_EUNAVAILABLE);
    assert_int_equal(o.rc[2], ROUSE_EUNAVAILABLE);
    assert_non_null(strstr(o.msg[0], "shared state unavailable: "));
    assert_int_equal(o.rc[1], 0);
    assert_int_equal(o.rc[3], 0);
    assert_int_equal(usage_rows(f->dir), 2);
    int64_t v;
    assert_int_equal(store_resolve(f->reader, "fa", NULL, 0.0, &v, NULL), ROUSE_ENOTFOUND);
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
    pg_health_init(&g_health);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(mixed_group_commits_both, setup, teardown),
        cmocka_unit_test_setup_teardown(pg_away_fails_only_the_registry_writes, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    pg_server_stop(&g_pg);
    pg_health_fini(&g_health);
    return rc;
}
