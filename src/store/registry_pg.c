/*
 * The registry's writes on PostgreSQL (see registry_pg.h).
 *
 * Invariants:
 * - The tables mirror the SQLite registry's (store_sqlite.c), so replica.c
 *   copies rows as they are; the rules of the SQLite store hold here too
 *   (versions immutable and numbered max + 1, foreign keys cascade from a
 *   function, every route names an existing version).
 * - Every transaction that writes the registry first takes the row lock of
 *   registry_seq by incrementing it, and logs each object it touched under
 *   its number: the sync thread of every node copies what the log names.
 * - SQL is constant text; values travel as parameters.
 */
#include "store/registry_pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"

static const char *const migrations[] = {
    /* 1: the registry (functions, versions, aliases and their routes, the
     * accuracy figures, API keys, blob owners), as in SQLite; the
     * sequence number and the log of what each number changed. */
    "CREATE TABLE functions("
    "  name text PRIMARY KEY,"
    "  created_ms bigint NOT NULL);"
    "CREATE TABLE versions("
    "  function text NOT NULL REFERENCES functions(name) ON DELETE CASCADE,"
    "  version bigint NOT NULL CHECK (version > 0),"
    "  model_digest text NOT NULL,"
    "  config_json text NOT NULL,"
    "  created_ms bigint NOT NULL,"
    "  PRIMARY KEY (function, version));"
    "CREATE INDEX versions_digest ON versions(model_digest);"
    "CREATE TABLE aliases("
    "  function text NOT NULL REFERENCES functions(name) ON DELETE CASCADE,"
    "  name text NOT NULL,"
    "  PRIMARY KEY (function, name));"
    "CREATE TABLE alias_routes("
    "  function text NOT NULL,"
    "  alias text NOT NULL,"
    "  position int NOT NULL,"
    "  version bigint NOT NULL,"
    "  weight int NOT NULL CHECK (weight > 0),"
    "  PRIMARY KEY (function, alias, position),"
    "  FOREIGN KEY (function, alias) REFERENCES aliases(function, name) ON DELETE CASCADE,"
    "  FOREIGN KEY (function, version) REFERENCES versions(function, version)"
    "    ON DELETE CASCADE);"
    "CREATE TABLE version_accuracy("
    "  function text NOT NULL,"
    "  version bigint NOT NULL,"
    "  figures text NOT NULL,"
    "  PRIMARY KEY (function, version),"
    "  FOREIGN KEY (function, version) REFERENCES versions(function, version)"
    "    ON DELETE CASCADE);"
    "CREATE TABLE api_keys("
    "  id text PRIMARY KEY,"
    "  tenant text NOT NULL,"
    "  role text NOT NULL CHECK (role IN ('admin', 'deploy', 'invoke')),"
    "  hash text NOT NULL UNIQUE,"
    "  name text NOT NULL DEFAULT '',"
    "  created_ms bigint NOT NULL,"
    "  expires_ms bigint,"
    "  revoked_ms bigint);"
    "CREATE TABLE blob_owners("
    "  tenant text NOT NULL,"
    "  digest text NOT NULL,"
    "  created_ms bigint NOT NULL,"
    "  PRIMARY KEY (digest, tenant));"
    "CREATE TABLE registry_seq("
    "  id int PRIMARY KEY CHECK (id = 1),"
    "  seq bigint NOT NULL);"
    "INSERT INTO registry_seq(id, seq) VALUES (1, 0);"
    "CREATE TABLE registry_log("
    "  seq bigint NOT NULL,"
    "  kind text NOT NULL,"
    "  name text NOT NULL,"
    "  PRIMARY KEY (seq, kind, name));",
    /* 2: the log is pruned (replica_prune_log): when each entry was
     * logged (PostgreSQL's clock, one for every node; entries already
     * there count from now), and the highest number pruned, below which a
     * replica must copy everything again. */
    "ALTER TABLE registry_log ADD COLUMN logged_ms bigint NOT NULL"
    "  DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint;"
    "ALTER TABLE registry_seq ADD COLUMN pruned bigint NOT NULL DEFAULT 0;",
};

int replica_migrate(PGconn **conn, rouse_errbuf *eb)
{
    return pg_migrate(conn, "registry", migrations,
                      (int)(sizeof(migrations) / sizeof(migrations[0])), eb);
}

static const int T = PG_STATEMENT_TIMEOUT_MS;

struct registry_pg {
    char *url;
    PGconn *conn;
    pg_health *health;
    /* The group. */
    bool in_tx;     /* BEGIN done, registry_seq taken */
    bool sp_open;   /* the current write's savepoint exists */
    bool explicit_sp; /* between store_tx_savepoint and its end */
    bool wrote;     /* the current write reached PostgreSQL */
    int status;     /* 0 or the error that failed the group's PostgreSQL part */
    rouse_errbuf status_eb;
    int64_t seq;    /* the group's registry_seq */
    int64_t last_seq;
    int n_touched, cap_touched;
    replica_ref *touched;
};

int registry_pg_open(const char *url, pg_health *health, registry_pg **out, rouse_errbuf *eb)
{
    registry_pg *g = calloc(1, sizeof(*g));
    if (!g || !(g->url = strdup(url))) {
        free(g);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    g->health = health;
    /* Connected at the first write: a node starts (and serves) without. */
    *out = g;
    return 0;
}

void registry_pg_close(registry_pg *g)
{
    if (!g) return;
    if (g->conn) PQfinish(g->conn);
    free(g->touched);
    free(g->url);
    free(g);
}

/* Records a failure of the group's PostgreSQL part; returns rc. */
static int fail(registry_pg *g, int rc, const rouse_errbuf *eb)
{
    if (g->status == 0) {
        g->status = rc;
        g->status_eb = *eb;
    }
    if (rc == ROUSE_EUNAVAILABLE && g->health) pg_health_down(g->health, eb->msg);
    return rc;
}

static int connect_if_needed(registry_pg *g, rouse_errbuf *eb)
{
    if (g->conn) return 0;
    /* While the sync thread found PostgreSQL away less than a second ago,
     * fail at once rather than make every write wait for a connect. */
    char msg[256];
    int64_t checked;
    if (g->health && pg_health_get(g->health, NULL, &checked, msg, sizeof(msg)) &&
        rouse_wall_ms() - checked < 1000)
        return rouse_err_set(eb, ROUSE_EUNAVAILABLE, "%s", msg);
    int rc = pg_connect(g->url, &g->conn, eb);
    if (rc < 0 && rc == ROUSE_EUNAVAILABLE && g->health) pg_health_down(g->health, eb->msg);
    return rc;
}

/* Opens the group's transaction (once) and the current write's savepoint. */
static int enter(registry_pg *g, rouse_errbuf *eb)
{
    if (g->status < 0) return rouse_err_set(eb, g->status, "%s", g->status_eb.msg);
    int rc;
    if (!g->in_tx) {
        for (int attempt = 0;; attempt++) {
            if ((rc = connect_if_needed(g, eb)) < 0) return fail(g, rc, eb);
            rc = pg_exec(&g->conn, "BEGIN", 0, NULL, T, NULL, "starting a transaction", eb);
            /* A connection that broke while idle (the server restarted):
             * nothing was done yet, so one new connection may try again. */
            if (rc == ROUSE_EUNAVAILABLE && attempt == 0) continue;
            if (rc < 0) return fail(g, rc, eb);
            break;
        }
        PGresult *r;
        rc = pg_exec(&g->conn, "UPDATE registry_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq",
                     0, NULL, T, &r, "numbering a registry write", eb);
        if (rc < 0) return fail(g, rc, eb);
        g->seq = pg_get_i64(r, 0, 0);
        PQclear(r);
        g->in_tx = true;
        if (g->health) pg_health_up(g->health);
    }
    if (!g->sp_open) {
        rc = pg_exec(&g->conn, "SAVEPOINT op", 0, NULL, T, NULL, "opening a savepoint", eb);
        if (rc < 0) return fail(g, rc, eb);
        g->sp_open = true;
    }
    g->wrote = true;
    return 0;
}

/* A write's own failure: a lost connection fails the whole group. */
static int wfail(registry_pg *g, int rc, const rouse_errbuf *eb)
{
    if (rc == ROUSE_EUNAVAILABLE) fail(g, rc, eb);
    return rc;
}

static int touch(registry_pg *g, char kind, const char *name, rouse_errbuf *eb)
{
    for (int i = 0; i < g->n_touched; i++)
        if (g->touched[i].kind == kind && strcmp(g->touched[i].name, name) == 0) return 0;
    if (g->n_touched == g->cap_touched) {
        int ncap = g->cap_touched ? 2 * g->cap_touched : 16;
        void *p = realloc(g->touched, (size_t)ncap * sizeof(*g->touched));
        if (!p) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        g->touched = p;
        g->cap_touched = ncap;
    }
    replica_ref *r = &g->touched[g->n_touched++];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    snprintf(r->name, sizeof(r->name), "%s", name);
    return 0;
}

void registry_pg_write_begin(registry_pg *g)
{
    g->explicit_sp = true;
    g->sp_open = false;
    g->wrote = false;
}

void registry_pg_write_end(registry_pg *g, bool keep)
{
    g->explicit_sp = false;
    if (!g->sp_open) return;
    g->sp_open = false;
    if (g->status < 0 || !g->conn) return;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = 0;
    if (!keep)
        rc = pg_exec(&g->conn, "ROLLBACK TO SAVEPOINT op", 0, NULL, T, NULL,
                     "undoing a failed write", &eb);
    if (rc == 0)
        rc = pg_exec(&g->conn, "RELEASE SAVEPOINT op", 0, NULL, T, NULL, "closing a savepoint",
                     &eb);
    if (rc < 0) fail(g, rc, &eb);
}

bool registry_pg_write_shared(const registry_pg *g)
{
    return g->wrote;
}

static void reset_group(registry_pg *g)
{
    g->in_tx = g->sp_open = g->wrote = g->explicit_sp = false;
    g->n_touched = 0;
}

void registry_pg_group_rollback(registry_pg *g)
{
    if (g->in_tx && g->conn) {
        rouse_errbuf ignore;
        rouse_errbuf_clear(&ignore);
        pg_exec(&g->conn, "ROLLBACK", 0, NULL, T, NULL, "rolling back", &ignore);
    }
    reset_group(g);
    g->status = 0;
}

int registry_pg_group_commit(registry_pg *g, replica_snap **snap, rouse_errbuf *eb)
{
    *snap = NULL;
    if (!g->in_tx) {
        int st = g->status;
        if (st < 0) *eb = g->status_eb;
        reset_group(g);
        return st;
    }
    int rc = g->status;
    if (rc < 0) *eb = g->status_eb;
    pg_int seq = pg_i64(g->seq);
    for (int i = 0; rc == 0 && i < g->n_touched; i++) {
        char kind[2] = {g->touched[i].kind, 0};
        const char *p[] = {seq.s, kind, g->touched[i].name};
        rc = pg_exec(&g->conn,
                     "INSERT INTO registry_log(seq, kind, name) VALUES ($1, $2, $3)"
                     " ON CONFLICT DO NOTHING",
                     3, p, T, NULL, "logging a registry write", eb);
    }
    /* Now and then the same transaction prunes the log (it holds
     * registry_seq's row, so prunes never race). */
    if (rc == 0 && g->seq % REPLICA_PRUNE_EVERY == 0)
        rc = replica_prune_log(&g->conn, REPLICA_LOG_KEEP, REPLICA_LOG_AGE_MS, eb);
    /* Read back inside the transaction: exactly the state of this number
     * (registry transactions run one at a time). */
    if (rc == 0) rc = replica_read_objects(&g->conn, g->touched, g->n_touched, g->seq, snap, eb);
    if (rc == 0) rc = pg_exec(&g->conn, "COMMIT", 0, NULL, T, NULL, "committing", eb);
    if (rc < 0) {
        replica_snap_free(*snap);
        *snap = NULL;
        if (g->status == 0) fail(g, rc, eb);
        registry_pg_group_rollback(g);
        g->status = rc;
        g->status_eb = *eb;
        return rc;
    }
    g->last_seq = g->seq;
    reset_group(g);
    return 0;
}

int registry_pg_group_status(const registry_pg *g, rouse_errbuf *eb)
{
    if (g->status < 0 && eb) *eb = g->status_eb;
    return g->status;
}

int64_t registry_pg_last_seq(const registry_pg *g)
{
    return g->last_seq;
}

void registry_pg_group_begin(registry_pg *g)
{
    reset_group(g);
    g->status = 0;
    rouse_errbuf_clear(&g->status_eb);
}

/* --- the writes ----------------------------------------------------------- */

static const char *shown(const char *key)
{
    const char *colon = key ? strchr(key, ':') : NULL;
    return colon ? colon + 1 : key;
}

/* One statement of a write; *res (optional) its rows. */
static int run(registry_pg *g, const char *sql, int n, const char *const *p, PGresult **res,
               const char *what, rouse_errbuf *eb)
{
    int rc = pg_exec(&g->conn, sql, n, p, T, res, what, eb);
    return rc < 0 ? wfail(g, rc, eb) : 0;
}

static int affected(PGresult *r)
{
    const char *t = r ? PQcmdTuples(r) : "";
    return t && *t ? atoi(t) : 0;
}

static int function_exists(registry_pg *g, const char *name, bool *exists, rouse_errbuf *eb)
{
    PGresult *r;
    const char *p[] = {name};
    int rc = run(g, "SELECT 1 FROM functions WHERE name = $1", 1, p, &r, "reading a function", eb);
    if (rc < 0) return rc;
    *exists = PQntuples(r) > 0;
    PQclear(r);
    return 0;
}

static int must_exist(registry_pg *g, const char *name, rouse_errbuf *eb)
{
    bool exists;
    int rc = function_exists(g, name, &exists, eb);
    if (rc < 0) return rc;
    return exists ? 0 : rouse_err_set(eb, ROUSE_ENOTFOUND, "no function named '%s'", shown(name));
}

static int routes_put(registry_pg *g, const char *function, const char *alias,
                      const store_route *routes, int n, rouse_errbuf *eb)
{
    const char *p2[] = {function, alias};
    int rc = run(g, "INSERT INTO aliases(function, name) VALUES ($1, $2) ON CONFLICT DO NOTHING", 2,
                 p2, NULL, "creating an alias", eb);
    if (rc == 0)
        rc = run(g, "DELETE FROM alias_routes WHERE function = $1 AND alias = $2", 2, p2, NULL,
                 "replacing an alias", eb);
    for (int i = 0; rc == 0 && i < n; i++) {
        pg_int pos = pg_i64(i), ver = pg_i64(routes[i].version), w = pg_i64(routes[i].weight);
        const char *p[] = {function, alias, pos.s, ver.s, w.s};
        rc = run(g,
                 "INSERT INTO alias_routes(function, alias, position, version, weight)"
                 " VALUES ($1, $2, $3, $4, $5)",
                 5, p, NULL, "writing an alias route", eb);
    }
    return rc;
}

/* The first route of "latest": *n 0 when there is none. */
static int latest_route(registry_pg *g, const char *name, int64_t *version, int *n,
                        rouse_errbuf *eb)
{
    PGresult *r;
    const char *p[] = {name, STORE_DEFAULT_ALIAS};
    int rc = run(g,
                 "SELECT version FROM alias_routes WHERE function = $1 AND alias = $2"
                 " ORDER BY position LIMIT 1",
                 2, p, &r, "reading an alias", eb);
    if (rc < 0) return rc;
    *n = PQntuples(r);
    *version = *n ? pg_get_i64(r, 0, 0) : 0;
    PQclear(r);
    return 0;
}

static int deploy_in(registry_pg *g, const char *name, const char *digest, const char *config,
                       int64_t *version, bool *created, rouse_errbuf *eb)
{
    int rc = enter(g, eb);
    if (rc < 0) return rc;
    if ((rc = touch(g, 'f', name, eb)) < 0) return rc;
    bool exists;
    if ((rc = function_exists(g, name, &exists, eb)) < 0) return rc;
    if (exists) {
        /* Unchanged when "latest" already routes to exactly this model and config. */
        int64_t cur;
        int n;
        if ((rc = latest_route(g, name, &cur, &n, eb)) < 0) return rc;
        if (n > 0) {
            PGresult *r;
            pg_int v = pg_i64(cur);
            const char *p[] = {name, v.s, digest, config};
            rc = run(g,
                     "SELECT 1 FROM versions WHERE function = $1 AND version = $2"
                     " AND model_digest = $3 AND config_json = $4",
                     4, p, &r, "reading a version", eb);
            if (rc < 0) return rc;
            bool same = PQntuples(r) > 0;
            PQclear(r);
            if (same) {
                *version = cur;
                *created = false;
                return 0;
            }
        }
    } else {
        pg_int now = pg_i64(rouse_wall_ms());
        const char *p[] = {name, now.s};
        rc = run(g, "INSERT INTO functions(name, created_ms) VALUES ($1, $2)", 2, p, NULL,
                 "creating a function", eb);
        if (rc < 0) return rc;
    }
    PGresult *r;
    pg_int now = pg_i64(rouse_wall_ms());
    const char *p[] = {name, digest, config, now.s};
    rc = run(g,
             "INSERT INTO versions(function, version, model_digest, config_json, created_ms)"
             " SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4 FROM versions"
             " WHERE function = $1 RETURNING version",
             4, p, &r, "creating a version", eb);
    if (rc == ROUSE_EEXISTS)
        return rouse_err_set(eb, ROUSE_EEXISTS,
                             "function '%s' was deployed by another node at the same time; "
                             "deploy again",
                             shown(name));
    if (rc < 0) return rc;
    int64_t v = pg_get_i64(r, 0, 0);
    PQclear(r);
    store_route latest = {.version = v, .weight = 1};
    if ((rc = routes_put(g, name, STORE_DEFAULT_ALIAS, &latest, 1, eb)) < 0) return rc;
    *version = v;
    *created = true;
    return 0;
}

static int delete_in(registry_pg *g, const char *name, rouse_errbuf *eb)
{
    int rc = enter(g, eb);
    if (rc < 0) return rc;
    if ((rc = touch(g, 'f', name, eb)) < 0) return rc;
    PGresult *r;
    const char *p[] = {name};
    rc = run(g, "DELETE FROM functions WHERE name = $1", 1, p, &r, "deleting a function", eb);
    if (rc < 0) return rc;
    int n = affected(r);
    PQclear(r);
    return n ? 0 : rouse_err_set(eb, ROUSE_ENOTFOUND, "no function named '%s'", shown(name));
}

static int alias_set_in(registry_pg *g, const char *function, const store_alias *alias,
                          rouse_errbuf *eb)
{
    int rc = enter(g, eb);
    if (rc < 0) return rc;
    if ((rc = touch(g, 'f', function, eb)) < 0) return rc;
    if ((rc = must_exist(g, function, eb)) < 0) return rc;
    for (int i = 0; i < alias->n_routes; i++) {
        PGresult *r;
        pg_int v = pg_i64(alias->routes[i].version);
        const char *p[] = {function, v.s};
        rc = run(g, "SELECT 1 FROM versions WHERE function = $1 AND version = $2", 2, p, &r,
                 "reading a version", eb);
        if (rc < 0) return rc;
        bool found = PQntuples(r) > 0;
        PQclear(r);
        if (!found)
            return rouse_err_set(eb, ROUSE_ENOTFOUND, "function '%s' has no version %" PRId64,
                                 shown(function), alias->routes[i].version);
    }
    return routes_put(g, function, alias->name, alias->routes, alias->n_routes, eb);
}

static int rollback_in(registry_pg *g, const char *function, int64_t *version,
                         rouse_errbuf *eb)
{
    int rc = enter(g, eb);
    if (rc < 0) return rc;
    if ((rc = touch(g, 'f', function, eb)) < 0) return rc;
    if ((rc = must_exist(g, function, eb)) < 0) return rc;
    int64_t cur;
    int n;
    if ((rc = latest_route(g, function, &cur, &n, eb)) < 0) return rc;
    if (n == 0)
        return rouse_err_set(eb, ROUSE_ESTATE, "function '%s' has no '%s' alias to roll back",
                             function, STORE_DEFAULT_ALIAS);
    PGresult *r;
    pg_int v = pg_i64(cur);
    const char *p[] = {function, v.s};
    rc = run(g, "SELECT max(version) FROM versions WHERE function = $1 AND version < $2", 2, p, &r,
             "finding the previous version", eb);
    if (rc < 0) return rc;
    bool none = PQgetisnull(r, 0, 0);
    int64_t prev = pg_get_i64(r, 0, 0);
    PQclear(r);
    if (none)
        return rouse_err_set(eb, ROUSE_ESTATE,
                             "function '%s' has no version before %" PRId64 " to roll back to",
                             function, cur);
    store_route route = {.version = prev, .weight = 1};
    if ((rc = routes_put(g, function, STORE_DEFAULT_ALIAS, &route, 1, eb)) < 0) return rc;
    *version = prev;
    return 0;
}

static int accuracy_set_in(registry_pg *g, const char *function, int64_t version,
                             const char *json, rouse_errbuf *eb)
{
    int rc = enter(g, eb);
    if (rc < 0) return rc;
    if ((rc = touch(g, 'f', function, eb)) < 0) return rc;
    pg_int v = pg_i64(version);
    const char *p[] = {function, v.s, json};
    return run(g,
               "INSERT INTO version_accuracy(function, version, figures) VALUES ($1, $2, $3)"
               " ON CONFLICT (function, version) DO UPDATE SET figures = excluded.figures",
               3, p, NULL, "recording accuracy figures", eb);
}

static int key_insert_in(registry_pg *g, const store_key *k, rouse_errbuf *eb)
{
    int rc = enter(g, eb);
    if (rc < 0) return rc;
    if ((rc = touch(g, 'k', k->id, eb)) < 0) return rc;
    pg_int created = pg_i64(k->created_ms), expires = pg_i64(k->expires_ms);
    const char *p[] = {k->id,      k->tenant, k->role, k->hash,
                       k->name,    created.s, k->expires_ms > 0 ? expires.s : NULL};
    rc = run(g,
             "INSERT INTO api_keys(id, tenant, role, hash, name, created_ms, expires_ms)"
             " VALUES ($1, $2, $3, $4, $5, $6, $7)",
             7, p, NULL, "storing an API key", eb);
    if (rc == ROUSE_EEXISTS)
        return rouse_err_set(eb, ROUSE_EEXISTS, "an API key with this id or secret exists");
    return rc;
}

static int key_revoke_in(registry_pg *g, const char *id, int64_t now_ms, rouse_errbuf *eb)
{
    int rc = enter(g, eb);
    if (rc < 0) return rc;
    if ((rc = touch(g, 'k', id, eb)) < 0) return rc;
    PGresult *r;
    pg_int now = pg_i64(now_ms);
    const char *p[] = {id, now.s};
    rc = run(g, "UPDATE api_keys SET revoked_ms = coalesce(revoked_ms, $2) WHERE id = $1", 2, p,
             &r, "revoking an API key", eb);
    if (rc < 0) return rc;
    int n = affected(r);
    PQclear(r);
    return n ? 0 : rouse_err_set(eb, ROUSE_ENOTFOUND, "no API key %s", id);
}

static int blob_owner_add_in(registry_pg *g, const char *tenant, const char *digest,
                               int64_t now_ms, rouse_errbuf *eb)
{
    int rc = enter(g, eb);
    if (rc < 0) return rc;
    if ((rc = touch(g, 'b', digest, eb)) < 0) return rc;
    pg_int now = pg_i64(now_ms);
    const char *p[] = {tenant, digest, now.s};
    return run(g,
               "INSERT INTO blob_owners(tenant, digest, created_ms) VALUES ($1, $2, $3)"
               " ON CONFLICT DO NOTHING",
               3, p, NULL, "recording a blob's owner", eb);
}

static int blob_owner_remove_in(registry_pg *g, const char *tenant, const char *digest,
                                  int64_t *others, rouse_errbuf *eb)
{
    int rc = enter(g, eb);
    if (rc < 0) return rc;
    if ((rc = touch(g, 'b', digest, eb)) < 0) return rc;
    const char *p[] = {tenant, digest};
    rc = run(g, "DELETE FROM blob_owners WHERE tenant = $1 AND digest = $2", 2, p, NULL,
             "forgetting a blob's owner", eb);
    if (rc < 0) return rc;
    PGresult *r;
    const char *p1[] = {digest};
    rc = run(g, "SELECT count(*) FROM blob_owners WHERE digest = $1", 1, p1, &r,
             "counting a blob's owners", eb);
    if (rc < 0) return rc;
    *others = pg_get_i64(r, 0, 0);
    PQclear(r);
    return 0;
}

/* --- the writes' entry points ----------------------------------------------
 * In a writer group each write has its savepoint (store_tx_savepoint); a
 * *_tx call made without one gets its own around the call, so that a
 * refused statement never aborts the rest of the transaction. */
static int finish(registry_pg *g, int rc)
{
    if (!g->explicit_sp && g->sp_open) registry_pg_write_end(g, rc == 0);
    return rc;
}

int registry_pg_deploy(registry_pg *g, const char *name, const char *digest, const char *config,
                       int64_t *version, bool *created, rouse_errbuf *eb)
{
    return finish(g, deploy_in(g, name, digest, config, version, created, eb));
}

int registry_pg_delete(registry_pg *g, const char *name, rouse_errbuf *eb)
{
    return finish(g, delete_in(g, name, eb));
}

int registry_pg_alias_set(registry_pg *g, const char *function, const store_alias *alias,
                          rouse_errbuf *eb)
{
    return finish(g, alias_set_in(g, function, alias, eb));
}

int registry_pg_rollback(registry_pg *g, const char *function, int64_t *version,
                         rouse_errbuf *eb)
{
    return finish(g, rollback_in(g, function, version, eb));
}

int registry_pg_accuracy_set(registry_pg *g, const char *function, int64_t version,
                             const char *json, rouse_errbuf *eb)
{
    return finish(g, accuracy_set_in(g, function, version, json, eb));
}

int registry_pg_key_insert(registry_pg *g, const store_key *k, rouse_errbuf *eb)
{
    return finish(g, key_insert_in(g, k, eb));
}

int registry_pg_key_revoke(registry_pg *g, const char *id, int64_t now_ms, rouse_errbuf *eb)
{
    return finish(g, key_revoke_in(g, id, now_ms, eb));
}

int registry_pg_blob_owner_add(registry_pg *g, const char *tenant, const char *digest,
                               int64_t now_ms, rouse_errbuf *eb)
{
    return finish(g, blob_owner_add_in(g, tenant, digest, now_ms, eb));
}

int registry_pg_blob_owner_remove(registry_pg *g, const char *tenant, const char *digest,
                                  int64_t *others, rouse_errbuf *eb)
{
    return finish(g, blob_owner_remove_in(g, tenant, digest, others, eb));
}

int registry_pg_blob_refs(registry_pg *g, const char *digest, int64_t *n, rouse_errbuf *eb)
{
    *n = 0;
    if (!g->in_tx || g->status < 0 || !g->conn) return 0;
    PGresult *r;
    const char *p[] = {digest};
    int rc = run(g,
                 "SELECT count(*) FROM versions WHERE model_digest = $1"
                 " OR strpos(config_json, '\"' || $1 || '\"') > 0",
                 1, p, &r, "counting the references to a blob", eb);
    if (rc < 0) return rc;
    *n = pg_get_i64(r, 0, 0);
    PQclear(r);
    return 0;
}
