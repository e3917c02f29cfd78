/* The SQLite registry: every operation and its errors, version numbering,
 * aliases and weighted resolution, rollback, and persistence across reopen.
 *
 * Built twice: with REGISTRY_ON_PG (unit_store_registry_pg) every store of
 * the tests has the shared registry attached (store_attach_shared) on a
 * throwaway PostgreSQL (tests/support/pg_server.h): the same cases then
 * write to PostgreSQL and read the replica, and a few more check what only
 * that mode has. Skipped with one line when PostgreSQL is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/accuracy.h"
#include "store/store.h"
#include "testdir.h"
#ifdef REGISTRY_ON_PG
#include "pg_server.h"
#include "store/pg_util.h"
#include "store/replica.h"

static pg_server g_pg;
static pg_health g_health;

/* Attaches PostgreSQL to s; empty: starts from an empty registry. */
static int attach(store *s, bool empty)
{
    rouse_errbuf eb = {0};
    PGconn *c;
    if (pg_connect(g_pg.url, &c, &eb) < 0 || replica_migrate(&c, &eb) < 0 ||
        (empty && pg_exec(&c, "TRUNCATE functions, api_keys, blob_owners, registry_log CASCADE",
                          0, NULL, 5000, NULL, "emptying", &eb) < 0)) {
        fprintf(stderr, "attach: %s\n", eb.msg);
        if (c) PQfinish(c);
        return -1;
    }
    PQfinish(c);
    if (store_attach_shared(s, g_pg.url, &g_health, &eb) < 0) {
        fprintf(stderr, "store_attach_shared: %s\n", eb.msg);
        return -1;
    }
    return 0;
}
#endif

#define DIGEST_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DIGEST_B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define CFG_1 "{\"memory_mb\":512}"
#define CFG_2 "{\"memory_mb\":1024}"

typedef struct fixture {
    char dir[256];
    store *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    testdir_make(f->dir, sizeof(f->dir));
    rouse_errbuf eb = {0};
    if (store_open(f->dir, &f->s, &eb) != 0) {
        fprintf(stderr, "store_open: %s\n", eb.msg);
        return -1;
    }
#ifdef REGISTRY_ON_PG
    if (attach(f->s, true) < 0) return -1;
#endif
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    testdir_remove(f->dir);
    free(f);
    return 0;
}

/* Deploys and checks the outcome in one line. */
static void deploy_expect(store *s, const char *name, const char *digest, const char *cfg,
                          int64_t want_version, bool want_created)
{
    rouse_errbuf eb = {0};
    int64_t v = -1;
    bool created = !want_created;
    int rc = store_deploy(s, name, digest, cfg, &v, &created, &eb);
    if (rc != 0) fprintf(stderr, "deploy: %s\n", eb.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(v, want_version);
    assert_int_equal(created, want_created);
}

static int64_t resolve(store *s, const char *fn, const char *alias, double r)
{
    rouse_errbuf eb = {0};
    int64_t v = -1;
    int rc = store_resolve(s, fn, alias, r, &v, &eb);
    if (rc != 0) fprintf(stderr, "resolve: %s\n", eb.msg);
    assert_int_equal(rc, 0);
    return v;
}

/* Runs a one-integer query straight on the database file. */
static int64_t db_int(const char *dir, const char *sql)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/rouse.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void db_exec(const char *dir, const char *sql)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/rouse.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void open_creates_schema(void **state)
{
    (void)state;
    char base[256], dir[300];
    testdir_make(base, sizeof(base));
    snprintf(dir, sizeof(dir), "%s/nested/data", base);
    store *s;
    rouse_errbuf eb = {0};
    assert_int_equal(store_open(dir, &s, &eb), 0);
    store_close(s);
    /* Every migration ran (3 and later: jobs, batches and what follows). */
    int schema = db_int(dir, "SELECT version FROM schema_version");
    assert_true(schema >= 3);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                 "('functions','versions','aliases','alias_routes')"),
                     4);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                 "('usage_records','usage_hourly','usage_hourly_latency',"
                                 "'usage_hourly_peak')"),
                     4);
    assert_int_equal(db_int(dir, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                 "('jobs','job_bodies','batches')"),
                     3);
    /* WAL is a persistent property of the database file. */
    char path[400];
    snprintf(path, sizeof(path), "%s/rouse.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* Reopening migrates nothing and keeps the version. */
    assert_int_equal(store_open(dir, &s, &eb), 0);
    store_close(s);
    assert_int_equal(db_int(dir, "SELECT version FROM schema_version"), schema);

    /* A database from a newer rouse is refused, not damaged. */
    db_exec(dir, "UPDATE schema_version SET version = 99");
    assert_int_equal(store_open(dir, &s, &eb), ROUSE_EUNSUPPORTED);
    assert_non_null(strstr(eb.msg, "99"));
    assert_int_equal(db_int(dir, "SELECT version FROM schema_version"), 99);

    /* A data directory that is a file. */
    char file[400];
    snprintf(file, sizeof(file), "%s/plain", base);
    FILE *fp = fopen(file, "w");
    fclose(fp);
    assert_int_equal(store_open(file, &s, &eb), ROUSE_EIO);
    assert_non_null(strstr(eb.msg, "plain"));
    assert_int_equal(store_open("", &s, &eb), ROUSE_EINVAL);

    /* A rouse.db that is not a database. */
    char junk_dir[300], junk[400];
    snprintf(junk_dir, sizeof(junk_dir), "%s/junk", base);
    assert_int_equal(mkdir(junk_dir, 0755), 0);
    snprintf(junk, sizeof(junk), "%s/rouse.db", junk_dir);
    fp = fopen(junk, "w");
    for (int i = 0; i < 200; i++)
        fputs("this is not a database ", fp);
    fclose(fp);
    assert_int_equal(store_open(junk_dir, &s, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "not a database"));
    testdir_remove(base);
}

static void name_rules(void **state)
{
    (void)state;
    assert_true(store_name_valid("resnet"));
    assert_true(store_name_valid("a"));
    assert_true(store_name_valid("0"));
    assert_true(store_name_valid("resnet-50_v2"));
    char max[STORE_NAME_MAX + 2];
    memset(max, 'a', STORE_NAME_MAX);
    max[STORE_NAME_MAX] = '\0';
    assert_true(store_name_valid(max));
    max[STORE_NAME_MAX] = 'a';
    max[STORE_NAME_MAX + 1] = '\0';
    assert_false(store_name_valid(max));
    assert_false(store_name_valid(""));
    assert_false(store_name_valid(NULL));
    assert_false(store_name_valid("-a"));
    assert_false(store_name_valid("_a"));
    assert_false(store_name_valid("Resnet"));
    assert_false(store_name_valid("a.b"));
    assert_false(store_name_valid("a/b"));
    assert_false(store_name_valid("a b"));
    assert_false(store_name_valid("caf\xc3\xa9"));
}

static void deploy_versions_only_on_change(void **state)
{
    fixture *f = *state;
    deploy_expect(f->s, "resnet", DIGEST_A, CFG_1, 1, true);
    deploy_expect(f->s, "resnet", DIGEST_A, CFG_1, 1, false);
    deploy_expect(f->s, "resnet", DIGEST_A, CFG_2, 2, true);
    deploy_expect(f->s, "resnet", DIGEST_A, CFG_2, 2, false);
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_2, 3, true);
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_2, 3, false);
    /* Back to an old content: a new version, since "latest" is compared. */
    deploy_expect(f->s, "resnet", DIGEST_A, CFG_1, 4, true);
    /* Functions number their versions independently. */
    deploy_expect(f->s, "mnist", DIGEST_B, CFG_1, 1, true);
    assert_int_equal(db_int(f->dir, "SELECT count(*) FROM versions"), 5);
    assert_int_equal(resolve(f->s, "resnet", NULL, 0.5), 4);
}

static void deploy_errors(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    int64_t v;
    bool c;
    assert_int_equal(store_deploy(f->s, "Bad Name", DIGEST_A, CFG_1, &v, &c, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "'Bad Name'"));
    assert_int_equal(store_deploy(f->s, NULL, DIGEST_A, CFG_1, &v, &c, &eb), ROUSE_EINVAL);
    assert_int_equal(store_deploy(f->s, "ok", "sha256:abc", CFG_1, &v, &c, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "sha256:abc"));
    assert_int_equal(store_deploy(f->s, "ok", NULL, CFG_1, &v, &c, &eb), ROUSE_EINVAL);
    assert_int_equal(store_deploy(f->s, "ok", DIGEST_A, NULL, &v, &c, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "'ok'"));
    /* Nothing was written by the failed calls. */
    assert_int_equal(db_int(f->dir, "SELECT count(*) FROM functions"), 0);
}

static void function_get_details(void **state)
{
    fixture *f = *state;
    deploy_expect(f->s, "resnet", DIGEST_A, CFG_1, 1, true);
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_2, 2, true);
    store_alias canary = {.name = "canary", .n_routes = 2};
    canary.routes[0] = (store_route){.version = 2, .weight = 90};
    canary.routes[1] = (store_route){.version = 1, .weight = 10};
    rouse_errbuf eb = {0};
    assert_int_equal(store_alias_set(f->s, "resnet", &canary, &eb), 0);

    store_function fn;
    assert_int_equal(store_function_get(f->s, "resnet", &fn, &eb), 0);
    assert_string_equal(fn.name, "resnet");
    assert_true(fn.created_ms > 1600000000000LL);
    assert_int_equal(fn.n_versions, 2);
    assert_int_equal(fn.versions[0].version, 1);
    assert_string_equal(fn.versions[0].model_digest, DIGEST_A);
    assert_string_equal(fn.versions[0].config_json, CFG_1);
    assert_int_equal(fn.versions[1].version, 2);
    assert_string_equal(fn.versions[1].model_digest, DIGEST_B);
    assert_string_equal(fn.versions[1].config_json, CFG_2);
    assert_true(fn.versions[1].created_ms >= fn.versions[0].created_ms);
    assert_int_equal(fn.n_aliases, 2); /* by name: canary, latest */
    assert_string_equal(fn.aliases[0].name, "canary");
    assert_int_equal(fn.aliases[0].n_routes, 2);
    assert_int_equal(fn.aliases[0].routes[0].version, 2);
    assert_int_equal(fn.aliases[0].routes[0].weight, 90);
    assert_int_equal(fn.aliases[0].routes[1].version, 1);
    assert_int_equal(fn.aliases[0].routes[1].weight, 10);
    assert_string_equal(fn.aliases[1].name, STORE_DEFAULT_ALIAS);
    assert_int_equal(fn.aliases[1].n_routes, 1);
    assert_int_equal(fn.aliases[1].routes[0].version, 2);
    store_function_fini(&fn);
    store_function_fini(&fn); /* idempotent */

    assert_int_equal(store_function_get(f->s, "vgg", &fn, &eb), ROUSE_ENOTFOUND);
    assert_non_null(strstr(eb.msg, "'vgg'"));
    assert_int_equal(fn.n_versions, 0);
    assert_int_equal(store_function_get(f->s, "NO", &fn, &eb), ROUSE_EINVAL);
}

typedef struct list_ctx {
    store *s;
    int n;
    char names[8][STORE_NAME_MAX + 1];
    int versions[8];
    int stop_after;
} list_ctx;

static int list_cb(void *user, const store_function *fn)
{
    list_ctx *c = user;
    snprintf(c->names[c->n], sizeof(c->names[0]), "%s", fn->name);
    c->versions[c->n] = fn->n_versions;
    c->n++;
    /* The callback may use the store itself. */
    rouse_errbuf eb = {0};
    int64_t v;
    assert_int_equal(store_resolve(c->s, fn->name, NULL, 0.0, &v, &eb), 0);
    assert_int_equal(v, fn->n_versions);
    return c->stop_after && c->n == c->stop_after;
}

static void function_list(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    list_ctx c = {.s = f->s};
    assert_int_equal(store_function_list(f->s, list_cb, &c, &eb), 0);
    assert_int_equal(c.n, 0);

    deploy_expect(f->s, "charlie", DIGEST_A, CFG_1, 1, true);
    deploy_expect(f->s, "alpha", DIGEST_A, CFG_1, 1, true);
    deploy_expect(f->s, "bravo", DIGEST_A, CFG_1, 1, true);
    deploy_expect(f->s, "bravo", DIGEST_B, CFG_1, 2, true);
    assert_int_equal(store_function_list(f->s, list_cb, &c, &eb), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.names[0], "alpha");
    assert_string_equal(c.names[1], "bravo");
    assert_string_equal(c.names[2], "charlie");
    assert_int_equal(c.versions[1], 2);

    list_ctx stop = {.s = f->s, .stop_after = 2};
    assert_int_equal(store_function_list(f->s, list_cb, &stop, &eb), 0);
    assert_int_equal(stop.n, 2);
}

static void function_delete(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    deploy_expect(f->s, "resnet", DIGEST_A, CFG_1, 1, true);
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_1, 2, true);
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_2, 3, true);
    deploy_expect(f->s, "keep", DIGEST_A, CFG_1, 1, true);
    store_alias a = {.name = "stable", .n_routes = 1, .routes = {{.version = 2, .weight = 1}}};
    assert_int_equal(store_alias_set(f->s, "resnet", &a, &eb), 0);

    assert_int_equal(store_function_delete(f->s, "resnet", &eb), 0);
    store_function fn;
    assert_int_equal(store_function_get(f->s, "resnet", &fn, &eb), ROUSE_ENOTFOUND);
    assert_int_equal(store_function_delete(f->s, "resnet", &eb), ROUSE_ENOTFOUND);
    assert_non_null(strstr(eb.msg, "'resnet'"));
    assert_int_equal(store_function_delete(f->s, "Bad!", &eb), ROUSE_EINVAL);
    /* Versions and aliases went with it; the other function did not. */
    assert_int_equal(db_int(f->dir, "SELECT count(*) FROM versions WHERE function='resnet'"), 0);
    assert_int_equal(db_int(f->dir, "SELECT count(*) FROM aliases WHERE function='resnet'"), 0);
    assert_int_equal(db_int(f->dir, "SELECT count(*) FROM alias_routes WHERE function='resnet'"),
                     0);
    assert_int_equal(resolve(f->s, "keep", NULL, 0.1), 1);
    /* A re-created function starts again at version 1. */
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_2, 1, true);
    int64_t v;
    assert_int_equal(store_resolve(f->s, "resnet", "stable", 0.1, &v, &eb), ROUSE_ENOTFOUND);
}

/* A version's accuracy figures: recorded, read back, absent for another
 * version, replaced, and deleted with the function. */
static void accuracy_figures(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    deploy_expect(f->s, "q8", DIGEST_A, CFG_1, 1, true);
    deploy_expect(f->s, "q8", DIGEST_B, CFG_1, 2, true);
    const char *fig = "{\"precision\":\"int8\",\"samples\":1}";
    assert_int_equal(store_tx_begin(f->s, &eb), 0);
    assert_int_equal(store_accuracy_set_tx(f->s, "q8", 2, fig, &eb), 0);
    /* No such version: the foreign key refuses it. */
    assert_true(store_accuracy_set_tx(f->s, "q8", 7, fig, &eb) < 0);
    assert_int_equal(store_tx_commit(f->s, &eb), 0);
    char *j = NULL;
    assert_int_equal(store_accuracy_get(f->s, "q8", 2, &j, &eb), 0);
    assert_non_null(j);
    assert_string_equal(j, fig);
    free(j);
    assert_int_equal(store_accuracy_get(f->s, "q8", 1, &j, &eb), 0);
    assert_null(j);
    assert_int_equal(store_tx_begin(f->s, &eb), 0);
    assert_int_equal(store_accuracy_set_tx(f->s, "q8", 2, "{}", &eb), 0);
    assert_int_equal(store_tx_commit(f->s, &eb), 0);
    assert_int_equal(store_accuracy_get(f->s, "q8", 2, &j, &eb), 0);
    assert_string_equal(j, "{}");
    free(j);
    assert_int_equal(store_function_delete(f->s, "q8", &eb), 0);
    assert_int_equal(db_int(f->dir, "SELECT count(*) FROM version_accuracy"), 0);
}

static void alias_set_and_errors(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    deploy_expect(f->s, "resnet", DIGEST_A, CFG_1, 1, true);
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_1, 2, true);

    store_alias a = {.name = "prod", .n_routes = 2};
    a.routes[0] = (store_route){.version = 1, .weight = 3};
    a.routes[1] = (store_route){.version = 2, .weight = 1};
    assert_int_equal(store_alias_set(f->s, "resnet", &a, &eb), 0);
    assert_int_equal(resolve(f->s, "resnet", "prod", 0.74), 1);
    assert_int_equal(resolve(f->s, "resnet", "prod", 0.75), 2);

    /* Each failing call leaves the alias as it was. */
    store_alias bad = a;
    bad.routes[1].version = 7;
    assert_int_equal(store_alias_set(f->s, "resnet", &bad, &eb), ROUSE_ENOTFOUND);
    assert_string_equal(eb.msg, "function 'resnet' has no version 7");
    assert_int_equal(store_alias_set(f->s, "vgg", &a, &eb), ROUSE_ENOTFOUND);
    assert_non_null(strstr(eb.msg, "'vgg'"));
    bad = a;
    bad.n_routes = 0;
    assert_int_equal(store_alias_set(f->s, "resnet", &bad, &eb), ROUSE_EINVAL);
    bad.n_routes = STORE_MAX_ROUTES + 1;
    assert_int_equal(store_alias_set(f->s, "resnet", &bad, &eb), ROUSE_EINVAL);
    bad = a;
    bad.routes[1].weight = 0;
    assert_int_equal(store_alias_set(f->s, "resnet", &bad, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "weight 0"));
    bad.routes[1].weight = -5;
    assert_int_equal(store_alias_set(f->s, "resnet", &bad, &eb), ROUSE_EINVAL);
    bad = a;
    bad.routes[1].version = 1;
    assert_int_equal(store_alias_set(f->s, "resnet", &bad, &eb), ROUSE_EINVAL);
    bad = a;
    snprintf(bad.name, sizeof(bad.name), "Prod");
    assert_int_equal(store_alias_set(f->s, "resnet", &bad, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "'Prod'"));
    snprintf(bad.name, sizeof(bad.name), "42");
    assert_int_equal(store_alias_set(f->s, "resnet", &bad, &eb), ROUSE_EINVAL);
    assert_int_equal(store_alias_set(f->s, "Bad", &a, &eb), ROUSE_EINVAL);

    store_function fn;
    assert_int_equal(store_function_get(f->s, "resnet", &fn, &eb), 0);
    assert_int_equal(fn.n_aliases, 2);
    assert_string_equal(fn.aliases[1].name, "prod");
    assert_int_equal(fn.aliases[1].n_routes, 2);
    assert_int_equal(fn.aliases[1].routes[0].weight, 3);
    store_function_fini(&fn);

    /* Replacing with fewer routes drops the old ones. */
    store_alias one = {.name = "prod", .n_routes = 1, .routes = {{.version = 2, .weight = 5}}};
    assert_int_equal(store_alias_set(f->s, "resnet", &one, &eb), 0);
    assert_int_equal(store_function_get(f->s, "resnet", &fn, &eb), 0);
    assert_int_equal(fn.aliases[1].n_routes, 1);
    assert_int_equal(fn.aliases[1].routes[0].version, 2);
    store_function_fini(&fn);
    assert_int_equal(resolve(f->s, "resnet", "prod", 0.0), 2);

    /* The full route count is allowed. */
    for (int i = 3; i <= STORE_MAX_ROUTES; i++)
        deploy_expect(f->s, "resnet", DIGEST_A, i % 2 ? CFG_1 : CFG_2, i, true);
    store_alias full = {.name = "all", .n_routes = STORE_MAX_ROUTES};
    for (int i = 0; i < STORE_MAX_ROUTES; i++)
        full.routes[i] = (store_route){.version = i + 1, .weight = 1};
    assert_int_equal(store_alias_set(f->s, "resnet", &full, &eb), 0);
    assert_int_equal(resolve(f->s, "resnet", "all", 0.99), STORE_MAX_ROUTES);
}

static void resolve_cases(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    int64_t v;
    deploy_expect(f->s, "resnet", DIGEST_A, CFG_1, 1, true);
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_1, 2, true);
    assert_int_equal(resolve(f->s, "resnet", NULL, 0.3), 2);
    assert_int_equal(resolve(f->s, "resnet", "latest", 0.3), 2);
    /* An all-digit alias is an explicit version, which must exist. */
    assert_int_equal(resolve(f->s, "resnet", "1", 0.3), 1);
    assert_int_equal(store_resolve(f->s, "resnet", "9", 0.3, &v, &eb), ROUSE_ENOTFOUND);
    assert_string_equal(eb.msg, "function 'resnet' has no version 9");
    assert_int_equal(store_resolve(f->s, "resnet", "beta", 0.3, &v, &eb), ROUSE_ENOTFOUND);
    assert_non_null(strstr(eb.msg, "'beta'"));
    assert_int_equal(store_resolve(f->s, "vgg", NULL, 0.3, &v, &eb), ROUSE_ENOTFOUND);
    assert_non_null(strstr(eb.msg, "'vgg'"));
    assert_int_equal(store_resolve(f->s, "vgg", "2", 0.3, &v, &eb), ROUSE_ENOTFOUND);
    assert_non_null(strstr(eb.msg, "'vgg'"));
    assert_int_equal(store_resolve(f->s, "resnet", "No Such", 0.3, &v, &eb), ROUSE_ENOTFOUND);
    assert_int_equal(store_resolve(f->s, "resnet", NULL, 1.0, &v, &eb), ROUSE_EINVAL);
    assert_int_equal(store_resolve(f->s, "resnet", NULL, -0.01, &v, &eb), ROUSE_EINVAL);
    assert_int_equal(store_resolve(f->s, "resnet", NULL, NAN, &v, &eb), ROUSE_EINVAL);
    assert_int_equal(store_resolve(f->s, "BAD", NULL, 0.3, &v, &eb), ROUSE_EINVAL);
}

/* A fixed xorshift64* sequence in [0, 1), so the counts are reproducible. */
static double next_r(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return (double)((*x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static void resolve_split_statistics(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    deploy_expect(f->s, "resnet", DIGEST_A, CFG_1, 1, true);
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_1, 2, true);
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_2, 3, true);
    store_alias split = {.name = "canary", .n_routes = 2};
    split.routes[0] = (store_route){.version = 3, .weight = 90};
    split.routes[1] = (store_route){.version = 2, .weight = 10};
    assert_int_equal(store_alias_set(f->s, "resnet", &split, &eb), 0);

    /* The boundaries: route i covers [cum_{i-1}, cum_i) / total. */
    assert_int_equal(resolve(f->s, "resnet", "canary", 0.0), 3);
    assert_int_equal(resolve(f->s, "resnet", "canary", 0.8999), 3);
    assert_int_equal(resolve(f->s, "resnet", "canary", 0.9), 2);
    assert_int_equal(resolve(f->s, "resnet", "canary", nextafter(1.0, 0.0)), 2);

    uint64_t x = 0x9E3779B97F4A7C15ULL;
    int n3 = 0, n2 = 0;
    for (int i = 0; i < 10000; i++) {
        int64_t v = resolve(f->s, "resnet", "canary", next_r(&x));
        if (v == 3)
            n3++;
        else if (v == 2)
            n2++;
        else
            fail_msg("resolved to version %lld, which the alias does not route to", (long long)v);
    }
    /* 90/10 within two percentage points (about 7 standard deviations). */
    assert_in_range(n3, 8800, 9200);
    assert_int_equal(n2, 10000 - n3);

    /* Three routes with weights that do not sum to 100: 1/2/1. */
    split.n_routes = 3;
    split.routes[0] = (store_route){.version = 1, .weight = 1};
    split.routes[1] = (store_route){.version = 2, .weight = 2};
    split.routes[2] = (store_route){.version = 3, .weight = 1};
    assert_int_equal(store_alias_set(f->s, "resnet", &split, &eb), 0);
    int counts[4] = {0};
    for (int i = 0; i < 10000; i++)
        counts[resolve(f->s, "resnet", "canary", next_r(&x))]++;
    assert_in_range(counts[1], 2300, 2700);
    assert_in_range(counts[2], 4800, 5200);
    assert_in_range(counts[3], 2300, 2700);
}

static void rollback_chain(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    int64_t v;
    assert_int_equal(store_rollback(f->s, "resnet", &v, &eb), ROUSE_ENOTFOUND);
    assert_non_null(strstr(eb.msg, "'resnet'"));
    deploy_expect(f->s, "resnet", DIGEST_A, "{\"v\":1}", 1, true);
    assert_int_equal(store_rollback(f->s, "resnet", &v, &eb), ROUSE_ESTATE);
    assert_non_null(strstr(eb.msg, "'resnet'"));
    deploy_expect(f->s, "resnet", DIGEST_A, "{\"v\":2}", 2, true);
    deploy_expect(f->s, "resnet", DIGEST_A, "{\"v\":3}", 3, true);
    deploy_expect(f->s, "resnet", DIGEST_A, "{\"v\":4}", 4, true);
    for (int64_t want = 3; want >= 1; want--) {
        assert_int_equal(store_rollback(f->s, "resnet", &v, &eb), 0);
        assert_int_equal(v, want);
        assert_int_equal(resolve(f->s, "resnet", NULL, 0.5), want);
    }
    assert_int_equal(store_rollback(f->s, "resnet", &v, &eb), ROUSE_ESTATE);
    assert_int_equal(resolve(f->s, "resnet", NULL, 0.5), 1);
    /* Deploying what latest already is changes nothing; anything else is new. */
    deploy_expect(f->s, "resnet", DIGEST_A, "{\"v\":1}", 1, false);
    deploy_expect(f->s, "resnet", DIGEST_A, "{\"v\":4}", 5, true);

    /* Rollback starts from the first route of a split "latest". */
    store_alias split = {.name = "latest", .n_routes = 2};
    split.routes[0] = (store_route){.version = 3, .weight = 50};
    split.routes[1] = (store_route){.version = 5, .weight = 50};
    assert_int_equal(store_alias_set(f->s, "resnet", &split, &eb), 0);
    assert_int_equal(store_rollback(f->s, "resnet", &v, &eb), 0);
    assert_int_equal(v, 2);
    store_function fn;
    assert_int_equal(store_function_get(f->s, "resnet", &fn, &eb), 0);
    assert_int_equal(fn.aliases[0].n_routes, 1);
    assert_int_equal(fn.aliases[0].routes[0].version, 2);
    store_function_fini(&fn);

    /* The move is durable: it is there after reopening. */
    store_close(f->s);
    assert_int_equal(store_open(f->dir, &f->s, &eb), 0);
#ifdef REGISTRY_ON_PG
    assert_int_equal(attach(f->s, false), 0);
#endif
    assert_int_equal(resolve(f->s, "resnet", NULL, 0.5), 2);
}

static void version_get_cases(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_2, 1, true);
    store_version v;
    assert_int_equal(store_version_get(f->s, "resnet", 1, &v, &eb), 0);
    assert_int_equal(v.version, 1);
    assert_string_equal(v.model_digest, DIGEST_B);
    assert_string_equal(v.config_json, CFG_2);
    assert_true(v.created_ms > 0);
    free(v.config_json);
    assert_int_equal(store_version_get(f->s, "resnet", 7, &v, &eb), ROUSE_ENOTFOUND);
    assert_string_equal(eb.msg, "function 'resnet' has no version 7");
    assert_null(v.config_json);
    assert_int_equal(store_version_get(f->s, "vgg", 1, &v, &eb), ROUSE_ENOTFOUND);
    assert_string_equal(eb.msg, "no function named 'vgg'");
    assert_int_equal(store_version_get(f->s, "", 1, &v, &eb), ROUSE_EINVAL);
}

static void persistence_across_reopen(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    deploy_expect(f->s, "resnet", DIGEST_A, CFG_1, 1, true);
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_2, 2, true);
    deploy_expect(f->s, "mnist", DIGEST_B, CFG_1, 1, true);
    deploy_expect(f->s, "gone", DIGEST_B, CFG_1, 1, true);
    assert_int_equal(store_function_delete(f->s, "gone", &eb), 0);
    store_alias a = {.name = "canary", .n_routes = 2};
    a.routes[0] = (store_route){.version = 1, .weight = 7};
    a.routes[1] = (store_route){.version = 2, .weight = 3};
    assert_int_equal(store_alias_set(f->s, "resnet", &a, &eb), 0);
    int64_t v;
    assert_int_equal(store_rollback(f->s, "resnet", &v, &eb), 0);

    store_close(f->s);
    assert_int_equal(store_open(f->dir, &f->s, &eb), 0);
#ifdef REGISTRY_ON_PG
    assert_int_equal(attach(f->s, false), 0);
#endif

    store_function fn;
    assert_int_equal(store_function_get(f->s, "gone", &fn, &eb), ROUSE_ENOTFOUND);
    assert_int_equal(store_function_get(f->s, "resnet", &fn, &eb), 0);
    assert_int_equal(fn.n_versions, 2);
    assert_string_equal(fn.versions[1].model_digest, DIGEST_B);
    assert_string_equal(fn.versions[1].config_json, CFG_2);
    assert_int_equal(fn.n_aliases, 2);
    assert_string_equal(fn.aliases[0].name, "canary");
    assert_int_equal(fn.aliases[0].routes[0].weight, 7);
    assert_int_equal(fn.aliases[0].routes[1].version, 2);
    assert_int_equal(fn.aliases[1].routes[0].version, 1); /* rolled back */
    store_function_fini(&fn);
    assert_int_equal(resolve(f->s, "mnist", NULL, 0.0), 1);
    /* Numbering continues from what is stored. */
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_2, 3, true);
}

#ifdef REGISTRY_ON_PG
static int64_t pg_int_of(const char *sql)
{
    char out[256] = "";
    assert_int_equal(pg_server_sql(&g_pg, sql, out, sizeof(out)), 0);
    return strtoll(out, NULL, 10);
}

/* The rows are in PostgreSQL, numbered and logged; the replica has the same. */
static void pg_holds_the_registry(void **state)
{
    fixture *f = *state;
    int64_t seq0 = pg_int_of("SELECT seq FROM registry_seq");
    deploy_expect(f->s, "resnet", DIGEST_A, CFG_1, 1, true);
    deploy_expect(f->s, "resnet", DIGEST_B, CFG_2, 2, true);
    assert_int_equal(pg_int_of("SELECT count(*) FROM versions WHERE function = 'resnet'"), 2);
    assert_int_equal(pg_int_of("SELECT seq FROM registry_seq"), seq0 + 2);
    assert_int_equal(pg_int_of("SELECT count(*) FROM registry_log WHERE name = 'resnet'"), 2);
    assert_int_equal(db_int(f->dir, "SELECT count(*) FROM versions WHERE function = 'resnet'"), 2);
    /* A write another node made appears here only through a sync. */
    assert_int_equal(pg_server_sql(&g_pg,
                                   "BEGIN; UPDATE registry_seq SET seq = seq + 1;"
                                   " INSERT INTO functions VALUES ('other', 1);"
                                   " INSERT INTO registry_log SELECT seq, 'f', 'other'"
                                   " FROM registry_seq; COMMIT",
                                   NULL, 0),
               0);
    store_function fn;
    rouse_errbuf eb = {0};
    assert_int_equal(store_function_get(f->s, "other", &fn, &eb), ROUSE_ENOTFOUND);
    PGconn *c;
    assert_int_equal(pg_connect(g_pg.url, &c, &eb), 0);
    int64_t local;
    assert_int_equal(replica_local_seq(f->s, &local, &eb), 0);
    replica_snap *snap;
    assert_int_equal(replica_read_since(&c, local, &snap, &eb), 0);
    assert_non_null(snap);
    replica_changes ch = {0};
    assert_int_equal(replica_apply(f->s, snap, &ch, &eb), 0);
    /* "resnet" was copied by its own writes already: only "other" changed. */
    assert_int_equal(ch.n, 1);
    assert_string_equal(ch.fns[0], "other");
    replica_changes_fini(&ch);
    replica_snap_free(snap);
    assert_int_equal(store_function_get(f->s, "other", &fn, &eb), 0);
    store_function_fini(&fn);
    /* Nothing new: no snapshot. */
    assert_int_equal(replica_local_seq(f->s, &local, &eb), 0);
    assert_int_equal(replica_read_since(&c, local, &snap, &eb), 0);
    assert_null(snap);
    PQfinish(c);
}

/* The log is pruned of entries past both the count and the age kept,
 * the horizon remembered; a replica behind it gets the whole registry
 * (deletions included), one at or past it only what was logged since. */
static void pg_log_pruned_full_copy(void **state)
{
    fixture *f = *state;
    deploy_expect(f->s, "gone", DIGEST_A, CFG_1, 1, true);
    int64_t seq_gone = pg_int_of("SELECT seq FROM registry_seq");
    deploy_expect(f->s, "kept", DIGEST_A, CFG_1, 1, true);
    rouse_errbuf eb = {0};
    PGconn *c;
    assert_int_equal(pg_connect(g_pg.url, &c, &eb), 0);
    int64_t seq = pg_int_of("SELECT seq FROM registry_seq");
    /* Young entries stay, however many are past the count kept. */
    assert_int_equal(replica_prune_log(&c, 0, 60000, &eb), 0);
    assert_true(pg_int_of("SELECT count(*) FROM registry_log") >= 2);
    assert_true(pg_int_of("SELECT pruned FROM registry_seq") < seq);
    /* Old ones go, except the newest number kept. */
    assert_int_equal(pg_server_sql(&g_pg, "UPDATE registry_log SET logged_ms = 0", NULL, 0), 0);
    assert_int_equal(replica_prune_log(&c, 1, 60000, &eb), 0);
    assert_int_equal(pg_int_of("SELECT count(*) FROM registry_log WHERE seq < "
                               "(SELECT seq FROM registry_seq)"),
                     0);
    assert_true(pg_int_of("SELECT count(*) FROM registry_log") >= 1);
    int64_t pruned = pg_int_of("SELECT pruned FROM registry_seq");
    assert_true(pruned >= seq_gone && pruned < seq);

    /* Another node deletes "gone" and creates "other"; the log of both is
     * pruned before this replica reads it. */
    int64_t local;
    assert_int_equal(replica_local_seq(f->s, &local, &eb), 0);
    assert_int_equal(pg_server_sql(&g_pg,
                                   "BEGIN; UPDATE registry_seq SET seq = seq + 1;"
                                   " DELETE FROM functions WHERE name = 'gone';"
                                   " INSERT INTO functions VALUES ('other', 1);"
                                   " INSERT INTO registry_log SELECT seq, 'f', 'gone'"
                                   " FROM registry_seq;"
                                   " UPDATE registry_seq SET seq = seq + 1;"
                                   " INSERT INTO registry_log SELECT seq, 'f', 'other'"
                                   " FROM registry_seq;"
                                   " UPDATE registry_log SET logged_ms = 0; COMMIT",
                                   NULL, 0),
               0);
    assert_int_equal(replica_prune_log(&c, 0, 60000, &eb), 0);
    assert_int_equal(pg_int_of("SELECT count(*) FROM registry_log"), 0);
    assert_true(pg_int_of("SELECT pruned FROM registry_seq") > local);
    replica_snap *snap;
    assert_int_equal(replica_read_since(&c, local, &snap, &eb), 0);
    assert_non_null(snap);
    assert_true(replica_snap_full(snap));
    replica_changes ch = {0};
    assert_int_equal(replica_apply(f->s, snap, &ch, &eb), 0);
    replica_snap_free(snap);
    bool saw_gone = false, saw_other = false;
    for (int i = 0; i < ch.n; i++) {
        saw_gone |= strcmp(ch.fns[i], "gone") == 0;
        saw_other |= strcmp(ch.fns[i], "other") == 0;
    }
    replica_changes_fini(&ch);
    assert_true(saw_gone);
    assert_true(saw_other);
    store_function fn;
    assert_int_equal(store_function_get(f->s, "gone", &fn, &eb), ROUSE_ENOTFOUND);
    assert_int_equal(store_function_get(f->s, "other", &fn, &eb), 0);
    store_function_fini(&fn);
    assert_int_equal(resolve(f->s, "kept", NULL, 0.0), 1);

    /* At the horizon now: the next change comes as itself, not a full copy. */
    assert_int_equal(pg_server_sql(&g_pg,
                                   "BEGIN; UPDATE registry_seq SET seq = seq + 1;"
                                   " INSERT INTO functions VALUES ('later', 1);"
                                   " INSERT INTO registry_log SELECT seq, 'f', 'later'"
                                   " FROM registry_seq; COMMIT",
                                   NULL, 0),
               0);
    assert_int_equal(replica_local_seq(f->s, &local, &eb), 0);
    assert_int_equal(replica_read_since(&c, local, &snap, &eb), 0);
    assert_non_null(snap);
    assert_false(replica_snap_full(snap));
    assert_int_equal(replica_snap_count(snap), 1);
    replica_snap_free(snap);
    PQfinish(c);
}

/* PostgreSQL away: writes fail with 503's code and a clear message, the
 * replica keeps answering, nothing half-written stays; back: writes work. */
static void pg_away_fails_writes_only(void **state)
{
    fixture *f = *state;
    deploy_expect(f->s, "kept", DIGEST_A, CFG_1, 1, true);
    assert_int_equal(pg_server_pause(&g_pg), 0);
    rouse_errbuf eb = {0};
    int64_t v;
    bool created;
    assert_int_equal(store_deploy(f->s, "kept", DIGEST_B, CFG_2, &v, &created, &eb),
                     ROUSE_EUNAVAILABLE);
    assert_non_null(strstr(eb.msg, "shared state unavailable: "));
    assert_true(pg_health_get(&g_health, NULL, NULL, NULL, 0));
    assert_int_equal(resolve(f->s, "kept", NULL, 0.0), 1);
    assert_int_equal(db_int(f->dir, "SELECT count(*) FROM versions WHERE function = 'kept'"), 1);
    assert_int_equal(pg_server_resume(&g_pg), 0);
    /* Within the second after a failure writes fail fast; then they connect. */
    sleep(1);
    deploy_expect(f->s, "kept", DIGEST_B, CFG_2, 2, true);
    assert_false(pg_health_get(&g_health, NULL, NULL, NULL, 0));
    assert_int_equal(resolve(f->s, "kept", NULL, 0.0), 2);
}
#endif

int main(void)
{
#ifdef REGISTRY_ON_PG
    char why[256] = "";
    int prc = pg_server_start(&g_pg, NULL, why, sizeof(why));
    if (prc == 1) {
        printf("skipped: PostgreSQL is not installed (%s)\n", why);
        return 0;
    }
    if (prc < 0) return 1;
    pg_health_init(&g_health);
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_creates_schema),
        cmocka_unit_test(name_rules),
        cmocka_unit_test_setup_teardown(deploy_versions_only_on_change, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(function_get_details, setup, teardown),
        cmocka_unit_test_setup_teardown(function_list, setup, teardown),
        cmocka_unit_test_setup_teardown(function_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(accuracy_figures, setup, teardown),
        cmocka_unit_test_setup_teardown(alias_set_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(resolve_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(resolve_split_statistics, setup, teardown),
        cmocka_unit_test_setup_teardown(rollback_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(version_get_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(persistence_across_reopen, setup, teardown),
#ifdef REGISTRY_ON_PG
        cmocka_unit_test_setup_teardown(pg_holds_the_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(pg_log_pruned_full_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(pg_away_fails_writes_only, setup, teardown),
#endif
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
#ifdef REGISTRY_ON_PG
    pg_server_stop(&g_pg);
    pg_health_fini(&g_health);
#endif
    return rc;
}
