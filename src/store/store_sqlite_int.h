/*
 * Private parts of the SQLite registry for the other SQLite-backed records
 * in src/store (the job queue, jobs_sqlite.c): the connection, its lock and
 * a cache of prepared statements keyed by their SQL text, so that each
 * file keeps its own SQL and still prepares it once per connection.
 * Nothing outside src/store includes this header.
 *
 * Locking: calls made between store_tx_begin and store_tx_commit (the
 * writer thread's *_tx functions) already hold the store's lock; reads
 * from another thread's connection take it with store_sqlite_lock.
 */
#ifndef ROUSE_STORE_SQLITE_INT_H
#define ROUSE_STORE_SQLITE_INT_H

#include <sqlite3.h>

#include "rouse/err.h"
#include "store/store.h"

/* The connection. Borrowed: valid until store_close. */
sqlite3 *store_sqlite_db(store *s);

/* The prepared statement for sql, which must be a string constant (the
 * cache is keyed by its address): prepared on first use, reset and
 * unbound by the caller after use (store_sqlite_done). 0 or a negative code
 * with eb set. Call with the store's lock held. */
int store_sqlite_stmt(store *s, const char *sql, sqlite3_stmt **out, rouse_errbuf *eb);
void store_sqlite_done(sqlite3_stmt *st);

/* Records a SQLite failure (src) on the connection as a ROUSE_E* code. */
int store_sqlite_err(store *s, rouse_errbuf *eb, int src, const char *what);

/* Serializes a call on the connection (reads outside the writer). */
void store_sqlite_lock(store *s);
void store_sqlite_unlock(store *s);

#endif
