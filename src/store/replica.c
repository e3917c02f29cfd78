/*
 * The registry's replica (see replica.h).
 *
 * The tables are the same in PostgreSQL and SQLite (registry_pg.c's
 * migrations mirror store_sqlite.c's), so an object is copied row by row
 * through one column list per table, in the order the foreign keys need.
 * SQL is built only from the constant table below; values travel as
 * parameters.
 */
#include "store/replica.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg_util.h"
#include "store/store_int.h"

typedef struct table_spec {
    char kind;
    const char *table;
    const char *cols;
    int n_cols;
    const char *key; /* the column that names the object */
} table_spec;

static const table_spec tables[] = {
    {'f', "functions", "name, created_ms", 2, "name"},
    {'f', "versions", "function, version, model_digest, config_json, created_ms", 5, "function"},
    {'f', "aliases", "function, name", 2, "function"},
    {'f', "alias_routes", "function, alias, position, version, weight", 5, "function"},
    {'f', "version_accuracy", "function, version, figures", 3, "function"},
    {'k', "api_keys", "id, tenant, role, hash, name, created_ms, expires_ms, revoked_ms", 8, "id"},
    {'b', "blob_owners", "tenant, digest, created_ms", 3, "digest"},
};
#define N_TABLES ((int)(sizeof(tables) / sizeof(tables[0])))

typedef struct snap_obj {
    replica_ref ref;
    int64_t changed; /* the last number that changed it (0: the snapshot's) */
    PGresult *rows[N_TABLES]; /* NULL for tables of other kinds */
} snap_obj;

struct replica_snap {
    int64_t seq;
    bool full;
    PGresult *all[N_TABLES]; /* full */
    int n, cap;
    snap_obj *objs;
};

void replica_snap_free(replica_snap *snap)
{
    if (!snap) return;
    for (int t = 0; t < N_TABLES; t++)
        PQclear(snap->all[t]);
    for (int i = 0; i < snap->n; i++)
        for (int t = 0; t < N_TABLES; t++)
            PQclear(snap->objs[i].rows[t]);
    free(snap->objs);
    free(snap);
}

int64_t replica_snap_seq(const replica_snap *snap)
{
    return snap ? snap->seq : 0;
}

bool replica_snap_full(const replica_snap *snap)
{
    return snap && snap->full;
}

int replica_snap_count(const replica_snap *snap)
{
    return snap ? snap->n : 0;
}

const replica_ref *replica_snap_ref(const replica_snap *snap, int i)
{
    return &snap->objs[i].ref;
}

void replica_changes_fini(replica_changes *c)
{
    free(c->fns);
    memset(c, 0, sizeof(*c));
}

static int changes_add(replica_changes *c, const char *fn)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->fns[i], fn) == 0) return 0;
    if (c->n == c->cap) {
        int ncap = c->cap ? 2 * c->cap : 8;
        void *p = realloc(c->fns, (size_t)ncap * sizeof(*c->fns));
        if (!p) return ROUSE_ENOMEM;
        c->fns = p;
        c->cap = ncap;
    }
    snprintf(c->fns[c->n++], sizeof(c->fns[0]), "%s", fn);
    return 0;
}

/* --- reading PostgreSQL --------------------------------------------------- */

static const int T = PG_STATEMENT_TIMEOUT_MS;

static int read_table(PGconn **conn, int t, const char *key, PGresult **out, rouse_errbuf *eb)
{
    char sql[256], what[64];
    if (key)
        snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE %s = $1", tables[t].cols,
                 tables[t].table, tables[t].key);
    else
        snprintf(sql, sizeof(sql), "SELECT %s FROM %s", tables[t].cols, tables[t].table);
    snprintf(what, sizeof(what), "reading %s", tables[t].table);
    const char *p[] = {key};
    return pg_exec(conn, sql, key ? 1 : 0, key ? p : NULL, T, out, what, eb);
}

static int read_obj(PGconn **conn, snap_obj *o, rouse_errbuf *eb)
{
    for (int t = 0; t < N_TABLES; t++) {
        if (tables[t].kind != o->ref.kind) continue;
        int rc = read_table(conn, t, o->ref.name, &o->rows[t], eb);
        if (rc < 0) return rc;
    }
    return 0;
}

static int snap_new(replica_snap **out, rouse_errbuf *eb)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : rouse_err_set(eb, ROUSE_ENOMEM, "out of memory copying the registry");
}

static int snap_add(replica_snap *s, const replica_ref *ref, rouse_errbuf *eb)
{
    for (int i = 0; i < s->n; i++)
        if (s->objs[i].ref.kind == ref->kind && strcmp(s->objs[i].ref.name, ref->name) == 0)
            return 0;
    if (s->n == s->cap) {
        int ncap = s->cap ? 2 * s->cap : 8;
        void *p = realloc(s->objs, (size_t)ncap * sizeof(*s->objs));
        if (!p) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory copying the registry");
        s->objs = p;
        s->cap = ncap;
    }
    snap_obj *o = &s->objs[s->n++];
    memset(o, 0, sizeof(*o));
    o->ref = *ref;
    return 0;
}

int replica_read_objects(PGconn **conn, const replica_ref *refs, int n, int64_t seq,
                         replica_snap **out, rouse_errbuf *eb)
{
    int rc = snap_new(out, eb);
    if (rc < 0) return rc;
    (*out)->seq = seq;
    for (int i = 0; rc == 0 && i < n; i++)
        rc = snap_add(*out, &refs[i], eb);
    for (int i = 0; rc == 0 && i < (*out)->n; i++)
        rc = read_obj(conn, &(*out)->objs[i], eb);
    if (rc < 0) {
        replica_snap_free(*out);
        *out = NULL;
    }
    return rc;
}

/* A read-only snapshot transaction: every read of it sees one registry_seq
 * (and the log's pruned horizon of the same moment). */
static int begin_snapshot(PGconn **conn, int64_t *seq, int64_t *pruned, rouse_errbuf *eb)
{
    int rc = pg_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, T, NULL,
                     "starting a copy of the registry", eb);
    if (rc < 0) return rc;
    PGresult *r;
    rc = pg_exec(conn, "SELECT seq, pruned FROM registry_seq WHERE id = 1", 0, NULL, T, &r,
                 "reading the registry's sequence number", eb);
    if (rc == 0) {
        *seq = PQntuples(r) == 1 ? pg_get_i64(r, 0, 0) : 0;
        *pruned = PQntuples(r) == 1 ? pg_get_i64(r, 0, 1) : 0;
        PQclear(r);
    }
    return rc;
}

/* Every table whole, into a snapshot that becomes a full one. */
static int read_all(PGconn **conn, replica_snap *s, rouse_errbuf *eb)
{
    s->full = true;
    int rc = 0;
    for (int t = 0; rc == 0 && t < N_TABLES; t++)
        rc = read_table(conn, t, NULL, &s->all[t], eb);
    return rc;
}

static int end_snapshot(PGconn **conn, int rc, rouse_errbuf *eb)
{
    rouse_errbuf ignore;
    if (rc < 0) {
        if (*conn) pg_exec(conn, "ROLLBACK", 0, NULL, T, NULL, "ending a copy", &ignore);
        return rc;
    }
    return pg_exec(conn, "COMMIT", 0, NULL, T, NULL, "ending a copy of the registry", eb);
}

int replica_read_full(PGconn **conn, replica_snap **out, rouse_errbuf *eb)
{
    int rc = snap_new(out, eb);
    if (rc < 0) return rc;
    int64_t pruned;
    rc = begin_snapshot(conn, &(*out)->seq, &pruned, eb);
    if (rc == 0) rc = read_all(conn, *out, eb);
    rc = end_snapshot(conn, rc, eb);
    if (rc < 0) {
        replica_snap_free(*out);
        *out = NULL;
    }
    return rc;
}

int replica_read_since(PGconn **conn, int64_t since, replica_snap **out, rouse_errbuf *eb)
{
    *out = NULL;
    /* The common case, nothing new: one statement, no snapshot. */
    PGresult *cur;
    int rc = pg_exec(conn, "SELECT seq FROM registry_seq WHERE id = 1", 0, NULL, T, &cur,
                     "reading the registry's sequence number", eb);
    if (rc < 0) return rc;
    int64_t now = PQntuples(cur) == 1 ? pg_get_i64(cur, 0, 0) : 0;
    PQclear(cur);
    if (now <= since) return 0;
    replica_snap *s;
    if ((rc = snap_new(&s, eb)) < 0) return rc;
    int64_t pruned = 0;
    rc = begin_snapshot(conn, &s->seq, &pruned, eb);
    PGresult *r = NULL;
    if (rc == 0 && s->seq > since && since < pruned) {
        /* Entries after since may be gone from the log: what changed is
         * unknown, so everything is copied. */
        rc = read_all(conn, s, eb);
    } else if (rc == 0 && s->seq > since) {
        pg_int p = pg_i64(since);
        const char *params[] = {p.s};
        rc = pg_exec(conn,
                     "SELECT kind, name, max(seq) FROM registry_log WHERE seq > $1"
                     " GROUP BY kind, name",
                     1, params, T, &r, "reading the registry's changes", eb);
        for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
            replica_ref ref;
            memset(&ref, 0, sizeof(ref));
            ref.kind = PQgetvalue(r, i, 0)[0];
            snprintf(ref.name, sizeof(ref.name), "%s", PQgetvalue(r, i, 1));
            rc = snap_add(s, &ref, eb);
            if (rc == 0) s->objs[s->n - 1].changed = pg_get_i64(r, i, 2);
        }
        PQclear(r);
        for (int i = 0; rc == 0 && i < s->n; i++)
            rc = read_obj(conn, &s->objs[i], eb);
    }
    rc = end_snapshot(conn, rc, eb);
    if (rc < 0 || s->seq <= since) {
        replica_snap_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int replica_prune_log(PGconn **conn, int64_t keep, int64_t age_ms, rouse_errbuf *eb)
{
    pg_int k = pg_i64(keep), a = pg_i64(age_ms);
    const char *p[] = {k.s, a.s};
    return pg_exec(conn,
                   "WITH gone AS (DELETE FROM registry_log WHERE"
                   "  seq <= (SELECT seq FROM registry_seq WHERE id = 1) - $1::bigint AND"
                   "  logged_ms < (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
                   "  - $2::bigint RETURNING seq)"
                   " UPDATE registry_seq SET pruned = greatest(pruned,"
                   "  (SELECT coalesce(max(seq), 0) FROM gone)) WHERE id = 1",
                   2, p, T, NULL, "pruning the registry's log", eb);
}

/* --- writing the replica (SQLite) ------------------------------------------ */

static int sql_err(store *s, rouse_errbuf *eb, int src, const char *what)
{
    return store_db_error(s, eb, src, what);
}

static int exec_simple(store *s, const char *sql, const char *what, rouse_errbuf *eb)
{
    char *msg = NULL;
    int src = sqlite3_exec(store_db(s), sql, NULL, NULL, &msg);
    sqlite3_free(msg);
    return src == SQLITE_OK ? 0 : sql_err(s, eb, src, what);
}

int replica_prepare(store *s, rouse_errbuf *eb)
{
    store_lock(s);
    int rc = exec_simple(s,
                         "CREATE TABLE IF NOT EXISTS replica_seq("
                         "  kind TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL,"
                         "  PRIMARY KEY (kind, name)) WITHOUT ROWID",
                         "creating the replica's table", eb);
    store_unlock(s);
    return rc;
}

static int get_seq(store *s, char kind, const char *name, int64_t *seq, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    static const char sql[] = "SELECT seq FROM replica_seq WHERE kind = ?1 AND name = ?2";
    int rc = store_stmt(s, sql, &st, eb);
    if (rc < 0) return rc;
    char k[2] = {kind, 0};
    sqlite3_bind_text(st, 1, k, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    *seq = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (src != SQLITE_ROW && src != SQLITE_DONE) rc = sql_err(s, eb, src, "reading replica_seq");
    store_stmt_done(st);
    return rc;
}

static int put_seq(store *s, char kind, const char *name, int64_t seq, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    static const char sql[] = "INSERT INTO replica_seq(kind, name, seq) VALUES (?1, ?2, ?3)"
                              " ON CONFLICT(kind, name) DO UPDATE SET seq = max(seq, excluded.seq)";
    int rc = store_stmt(s, sql, &st, eb);
    if (rc < 0) return rc;
    char k[2] = {kind, 0};
    sqlite3_bind_text(st, 1, k, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, seq);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE) rc = sql_err(s, eb, src, "writing replica_seq");
    store_stmt_done(st);
    return rc;
}

int replica_local_seq(store *s, int64_t *seq, rouse_errbuf *eb)
{
    store_lock(s);
    int rc = get_seq(s, '*', "", seq, eb);
    store_unlock(s);
    return rc;
}

/* Inserts the rows of one table (PostgreSQL's result) into SQLite. */
static int insert_rows(store *s, int t, const PGresult *r, rouse_errbuf *eb)
{
    if (!r || PQntuples(r) == 0) return 0;
    char sql[256], marks[64] = "";
    for (int c = 0; c < tables[t].n_cols; c++)
        snprintf(marks + strlen(marks), sizeof(marks) - strlen(marks), "%s?", c ? ", " : "");
    snprintf(sql, sizeof(sql), "INSERT INTO %s(%s) VALUES (%s)", tables[t].table, tables[t].cols,
             marks);
    sqlite3_stmt *st;
    int src = sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL);
    if (src != SQLITE_OK) return sql_err(s, eb, src, "preparing a copy");
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        for (int c = 0; c < tables[t].n_cols; c++) {
            Oid type = PQftype(r, c);
            if (PQgetisnull(r, i, c))
                sqlite3_bind_null(st, c + 1);
            else if (type == 20 || type == 21 || type == 23) /* int8, int2, int4 */
                sqlite3_bind_int64(st, c + 1, pg_get_i64(r, i, c));
            else
                sqlite3_bind_text(st, c + 1, PQgetvalue(r, i, c), PQgetlength(r, i, c),
                                  SQLITE_STATIC);
        }
        src = sqlite3_step(st);
        if (src != SQLITE_DONE) rc = sql_err(s, eb, src, "copying a row of the registry");
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static int delete_obj(store *s, const replica_ref *ref, rouse_errbuf *eb)
{
    /* Deleting a function cascades to its versions, aliases, routes and
     * figures (foreign keys). */
    const char *sql = ref->kind == 'f'   ? "DELETE FROM functions WHERE name = ?1"
                      : ref->kind == 'k' ? "DELETE FROM api_keys WHERE id = ?1"
                                         : "DELETE FROM blob_owners WHERE digest = ?1";
    sqlite3_stmt *st;
    int rc = store_stmt(s, sql, &st, eb);
    if (rc < 0) return rc;
    sqlite3_bind_text(st, 1, ref->name, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE) rc = sql_err(s, eb, src, "replacing an object of the replica");
    store_stmt_done(st);
    return rc;
}

static int note_change(replica_changes *ch, const replica_ref *ref, rouse_errbuf *eb)
{
    if (!ch) return 0;
    if (ref->kind == 'k') ch->keys = true;
    if (ref->kind != 'f') return 0;
    return changes_add(ch, ref->name) < 0
               ? rouse_err_set(eb, ROUSE_ENOMEM, "out of memory copying the registry")
               : 0;
}

static int apply_full(store *s, const replica_snap *snap, replica_changes *ch, rouse_errbuf *eb)
{
    /* What the replica had before: all of it may have changed. */
    if (ch) {
        sqlite3_stmt *st;
        int src;
        if (sqlite3_prepare_v2(store_db(s), "SELECT name FROM functions", -1, &st, NULL) ==
            SQLITE_OK) {
            while ((src = sqlite3_step(st)) == SQLITE_ROW)
                if (changes_add(ch, (const char *)sqlite3_column_text(st, 0)) < 0) break;
            sqlite3_finalize(st);
        }
        ch->keys = true;
    }
    int rc = exec_simple(s,
                         "DELETE FROM functions; DELETE FROM api_keys; DELETE FROM blob_owners;"
                         " DELETE FROM replica_seq;",
                         "emptying the replica", eb);
    for (int t = 0; rc == 0 && t < N_TABLES; t++) {
        rc = insert_rows(s, t, snap->all[t], eb);
        if (rc == 0 && ch && t == 0)
            for (int i = 0; i < PQntuples(snap->all[t]); i++)
                if (changes_add(ch, PQgetvalue(snap->all[t], i, 0)) < 0) break;
    }
    return rc;
}

static int apply_locked(store *s, const replica_snap *snap, bool advance, replica_changes *ch,
                        rouse_errbuf *eb)
{
    int rc = 0;
    if (snap->full) rc = apply_full(s, snap, ch, eb);
    for (int i = 0; rc == 0 && i < snap->n; i++) {
        const snap_obj *o = &snap->objs[i];
        int64_t have;
        if ((rc = get_seq(s, o->ref.kind, o->ref.name, &have, eb)) < 0) break;
        /* A copy as new as the object's last change is in already (this
         * node's own write, copied by the writer). */
        if (have >= (o->changed ? o->changed : snap->seq)) continue;
        if ((rc = delete_obj(s, &o->ref, eb)) < 0) break;
        for (int t = 0; rc == 0 && t < N_TABLES; t++)
            if (o->rows[t]) rc = insert_rows(s, t, o->rows[t], eb);
        if (rc == 0) rc = put_seq(s, o->ref.kind, o->ref.name, snap->seq, eb);
        if (rc == 0) rc = note_change(ch, &o->ref, eb);
    }
    if (rc == 0 && advance) rc = put_seq(s, '*', "", snap->seq, eb);
    return rc;
}

int replica_apply(store *s, const replica_snap *snap, replica_changes *ch, rouse_errbuf *eb)
{
    store_lock(s);
    int rc = exec_simple(s, "BEGIN IMMEDIATE", "starting a copy into the replica", eb);
    if (rc == 0) {
        rc = apply_locked(s, snap, true, ch, eb);
        if (rc == 0)
            rc = exec_simple(s, "COMMIT", "committing a copy into the replica", eb);
        else
            exec_simple(s, "ROLLBACK", "rolling back", &(rouse_errbuf){0});
    }
    store_unlock(s);
    return rc;
}

int replica_apply_tx(store *s, const replica_snap *snap, rouse_errbuf *eb)
{
    return apply_locked(s, snap, false, NULL, eb);
}
