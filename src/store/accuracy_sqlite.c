/*
 * The accuracy figures on SQLite (accuracy.h): the table of migration 6 in
 * the registry's database. A row lives as long as its version (foreign key,
 * ON DELETE CASCADE). SQL is constant text; values only travel through
 * sqlite3_bind_*.
 */
#include "store/accuracy.h"

#include <stdlib.h>
#include <string.h>

#include "store/registry_pg.h"
#include "store/store_int.h"

static const char SQL_SET[] =
    "INSERT OR REPLACE INTO version_accuracy(function, version, figures) VALUES (?1, ?2, ?3)";
static const char SQL_GET[] =
    "SELECT figures FROM version_accuracy WHERE function = ?1 AND version = ?2";

int store_accuracy_set_tx(store *s, const char *function, int64_t version, const char *json,
                          rouse_errbuf *eb)
{
    if (store_shared(s)) return registry_pg_accuracy_set(store_shared(s), function, version, json, eb);
    sqlite3_stmt *st;
    int rc = store_stmt(s, SQL_SET, &st, eb);
    if (rc < 0) return rc;
    sqlite3_bind_text(st, 1, function, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_text(st, 3, json, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    rc = src == SQLITE_DONE ? 0 : store_db_error(s, eb, src, "recording accuracy figures");
    store_stmt_done(st);
    return rc;
}

int store_accuracy_get(store *s, const char *function, int64_t version, char **json,
                       rouse_errbuf *eb)
{
    *json = NULL;
    store_lock(s);
    sqlite3_stmt *st;
    int rc = store_stmt(s, SQL_GET, &st, eb);
    if (rc < 0) goto out_unlock;
    sqlite3_bind_text(st, 1, function, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        size_t n = t ? strlen(t) : 0;
        if (n && !(*json = malloc(n + 1)))
            rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading accuracy figures");
        else if (n)
            memcpy(*json, t, n + 1);
    } else if (src != SQLITE_DONE) {
        rc = store_db_error(s, eb, src, "reading accuracy figures");
    }
    store_stmt_done(st);
out_unlock:
    store_unlock(s);
    return rc;
}
