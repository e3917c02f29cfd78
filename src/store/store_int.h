/*
 * Private parts of the SQLite store, for the store's own files that keep
 * tables of their own in the same database (usage_sqlite.c, jobs_sqlite.c). Nothing
 * outside src/store/ includes this header.
 */
#ifndef ROUSE_STORE_INT_H
#define ROUSE_STORE_INT_H

#include <sqlite3.h>

#include "store/store.h"

/* The store's connection. Use it only while holding the store's lock:
 * inside a writer group (store_tx_begin took it) or between store_lock and
 * store_unlock. */
sqlite3 *store_db(store *s);
void store_lock(store *s);
void store_unlock(store *s);
/* Sets eb from a SQLite result code and the connection's message ("registry
 * database: what: message"); returns the matching ROUSE_E* code. */
int store_db_error(store *s, rouse_errbuf *eb, int src, const char *what);
/* The prepared statement for sql, which must be a string constant (the
 * cache is keyed by its address): prepared once per connection, on first
 * use; reset and unbound with store_stmt_done after each use. Lock held. */
int store_stmt(store *s, const char *sql, sqlite3_stmt **out, rouse_errbuf *eb);
void store_stmt_done(sqlite3_stmt *st);
/* Adds the SQL function usage_bucket(total_us) (usage_bucket_of, usage.h)
 * to a connection of the store: the usage roll-up groups by it. A SQLite
 * result code. */
int usage_sql_register(sqlite3 *db);
/* The registry's writes on PostgreSQL when the shared state is attached
 * (store_attach_shared), or NULL: the *_tx writes of the registry then go
 * there (registry_pg.h). */
struct registry_pg *store_shared(store *s);

#endif
