/*
 * API keys and blob owners in SQLite (keys.h): the tables of migration 4
 * (store_sqlite.c). Reads take the store's lock; writes run inside the
 * writer's transaction, which holds it.
 */
#include "store/keys.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "store/registry_pg.h"
#include "store/store_int.h"

static void copy_col(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static void bind_text(sqlite3_stmt *st, int i, const char *t)
{
    sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
}

static const char SQL_KEYS[] = "SELECT id, tenant, role, hash, name, created_ms, expires_ms, "
                               "revoked_ms FROM api_keys ORDER BY created_ms, id";

int store_keys_load(store *s, int (*fn)(void *user, const store_key *k), void *user,
                    rouse_errbuf *eb)
{
    store_lock(s);
    sqlite3_stmt *st;
    int rc = store_stmt(s, SQL_KEYS, &st, eb);
    if (rc < 0) goto out_unlock;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        store_key k;
        memset(&k, 0, sizeof(k));
        copy_col(st, 0, k.id, sizeof(k.id));
        copy_col(st, 1, k.tenant, sizeof(k.tenant));
        copy_col(st, 2, k.role, sizeof(k.role));
        copy_col(st, 3, k.hash, sizeof(k.hash));
        copy_col(st, 4, k.name, sizeof(k.name));
        k.created_ms = sqlite3_column_int64(st, 5);
        k.expires_ms = sqlite3_column_int64(st, 6); /* NULL reads as 0: never */
        k.revoked_ms = sqlite3_column_int64(st, 7);
        if (fn(user, &k) != 0) break;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) rc = store_db_error(s, eb, src, "reading API keys");
    store_stmt_done(st);
out_unlock:
    store_unlock(s);
    return rc;
}

static const char SQL_COUNT[] = "SELECT count(*) FROM api_keys";

int store_keys_count(store *s, int64_t *n, rouse_errbuf *eb)
{
    store_lock(s);
    sqlite3_stmt *st;
    int rc = store_stmt(s, SQL_COUNT, &st, eb);
    if (rc == 0) {
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            *n = sqlite3_column_int64(st, 0);
        else
            rc = store_db_error(s, eb, src, "counting API keys");
        store_stmt_done(st);
    }
    store_unlock(s);
    return rc;
}

static const char SQL_INSERT[] =
    "INSERT INTO api_keys(id, tenant, role, hash, name, created_ms, expires_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

int store_key_insert_tx(store *s, const store_key *k, rouse_errbuf *eb)
{
    if (store_shared(s)) return registry_pg_key_insert(store_shared(s), k, eb);
    sqlite3_stmt *st;
    int rc = store_stmt(s, SQL_INSERT, &st, eb);
    if (rc < 0) return rc;
    bind_text(st, 1, k->id);
    bind_text(st, 2, k->tenant);
    bind_text(st, 3, k->role);
    bind_text(st, 4, k->hash);
    bind_text(st, 5, k->name);
    sqlite3_bind_int64(st, 6, k->created_ms);
    if (k->expires_ms > 0)
        sqlite3_bind_int64(st, 7, k->expires_ms);
    else
        sqlite3_bind_null(st, 7);
    int src = sqlite3_step(st);
    if (src == SQLITE_CONSTRAINT)
        rc = rouse_err_set(eb, ROUSE_EEXISTS, "an API key with this id or secret exists");
    else if (src != SQLITE_DONE)
        rc = store_db_error(s, eb, src, "storing an API key");
    store_stmt_done(st);
    return rc;
}

static const char SQL_REVOKE[] =
    "UPDATE api_keys SET revoked_ms = coalesce(revoked_ms, ?2) WHERE id = ?1";

int store_key_revoke_tx(store *s, const char *id, int64_t now_ms, rouse_errbuf *eb)
{
    if (store_shared(s)) return registry_pg_key_revoke(store_shared(s), id, now_ms, eb);
    sqlite3_stmt *st;
    int rc = store_stmt(s, SQL_REVOKE, &st, eb);
    if (rc < 0) return rc;
    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = store_db_error(s, eb, src, "revoking an API key");
    else if (sqlite3_changes(store_db(s)) == 0)
        rc = rouse_err_set(eb, ROUSE_ENOTFOUND, "no API key %s", id);
    store_stmt_done(st);
    return rc;
}

static const char SQL_OWNER_ADD[] =
    "INSERT OR IGNORE INTO blob_owners(tenant, digest, created_ms) VALUES (?1, ?2, ?3)";

int store_blob_owner_add_tx(store *s, const char *tenant, const char *digest, int64_t now_ms,
                            rouse_errbuf *eb)
{
    if (store_shared(s))
        return registry_pg_blob_owner_add(store_shared(s), tenant, digest, now_ms, eb);
    sqlite3_stmt *st;
    int rc = store_stmt(s, SQL_OWNER_ADD, &st, eb);
    if (rc < 0) return rc;
    bind_text(st, 1, tenant);
    bind_text(st, 2, digest);
    sqlite3_bind_int64(st, 3, now_ms);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE) rc = store_db_error(s, eb, src, "recording a blob's owner");
    store_stmt_done(st);
    return rc;
}

static const char SQL_OWNER_DEL[] = "DELETE FROM blob_owners WHERE tenant = ?1 AND digest = ?2";
static const char SQL_OWNERS[] = "SELECT count(*), coalesce(sum(tenant = ?2), 0) "
                                 "FROM blob_owners WHERE digest = ?1";

int store_blob_owner_remove_tx(store *s, const char *tenant, const char *digest, int64_t *others,
                               rouse_errbuf *eb)
{
    if (store_shared(s))
        return registry_pg_blob_owner_remove(store_shared(s), tenant, digest, others, eb);
    sqlite3_stmt *st;
    int rc = store_stmt(s, SQL_OWNER_DEL, &st, eb);
    if (rc < 0) return rc;
    bind_text(st, 1, tenant);
    bind_text(st, 2, digest);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE) rc = store_db_error(s, eb, src, "forgetting a blob's owner");
    store_stmt_done(st);
    if (rc < 0) return rc;
    if ((rc = store_stmt(s, SQL_OWNERS, &st, eb)) < 0) return rc;
    bind_text(st, 1, digest);
    bind_text(st, 2, tenant);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *others = sqlite3_column_int64(st, 0);
    else
        rc = store_db_error(s, eb, src, "counting a blob's owners");
    store_stmt_done(st);
    return rc;
}

int store_blob_visible(store *s, const char *tenant, const char *digest, bool *visible,
                       rouse_errbuf *eb)
{
    store_lock(s);
    sqlite3_stmt *st;
    int rc = store_stmt(s, SQL_OWNERS, &st, eb);
    if (rc == 0) {
        bind_text(st, 1, digest);
        bind_text(st, 2, tenant);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            int64_t n = sqlite3_column_int64(st, 0), mine = sqlite3_column_int64(st, 1);
            *visible = mine > 0 || (n == 0 && strcmp(tenant, STORE_DEFAULT_TENANT) == 0);
        } else {
            rc = store_db_error(s, eb, src, "reading a blob's owners");
        }
        store_stmt_done(st);
    }
    store_unlock(s);
    return rc;
}
