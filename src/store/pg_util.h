/*
 * PostgreSQL helpers shared by the parts that keep state there (`serve
 * --state postgres://...`): connecting with a clear error, running a
 * statement with a deadline, turning libpq's errors into rouse's, the
 * versioned schema migrations of each part, and the health of the shared
 * state as a node sees it.
 *
 * Every call here blocks its thread (at most the timeout it is given): call
 * them from threads of their own, never from serve's loop.
 *
 * Errors: a connection that failed, closed or did not answer in time is
 * ROUSE_EUNAVAILABLE (HTTP 503) with the message "shared state
 * unavailable: <libpq's message>", and the connection is closed (*conn
 * becomes NULL; connect again). A statement the server refused keeps the
 * connection and maps its SQLSTATE: unique violation ROUSE_EEXISTS, other
 * integrity violations ROUSE_EINVAL, serialization failure or deadlock
 * ROUSE_EBUSY, anything else ROUSE_EIO.
 */
#ifndef ROUSE_STORE_PG_UTIL_H
#define ROUSE_STORE_PG_UTIL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "rouse/err.h"

/* How long a connection attempt may take, and a statement. */
#define PG_CONNECT_TIMEOUT_S 3
#define PG_STATEMENT_TIMEOUT_MS 5000

/* The prefix of every error that means "PostgreSQL cannot be reached". */
#define PG_UNAVAILABLE "shared state unavailable"

/* Connects to url (postgres://... or a conninfo string), waiting at most
 * PG_CONNECT_TIMEOUT_S. The message never shows a password. */
int pg_connect(const char *url, PGconn **out, rouse_errbuf *eb);

/* Runs sql (parameters as text, $1..$n; n 0 and params NULL: sql may hold
 * several statements) and waits at most timeout_ms for its answer. The
 * last result into *res when res is not NULL (free with PQclear), only on
 * success. what names the statement in errors. */
int pg_exec(PGconn **conn, const char *sql, int n, const char *const *params, int timeout_ms,
            PGresult **res, const char *what, rouse_errbuf *eb);

/* Sets eb from a failed result (or the connection's message when res is
 * NULL) and returns the code (see above); closes *conn when the failure is
 * the connection's. */
int pg_error(PGconn **conn, const PGresult *res, const char *what, rouse_errbuf *eb);

/* Applies the migrations of one part ("registry", "usage", "jobs"):
 * entry i takes the part from version i to i + 1 (only append). One
 * transaction under pg_advisory_xact_lock(hashtext('rouse_schema')), which
 * also creates rouse_schema(part, version, applied_ms) if needed, so nodes
 * starting together apply each once. ROUSE_ESTATE when the database is at
 * a newer version than this binary knows. */
int pg_migrate(PGconn **conn, const char *part, const char *const *migrations, int n,
               rouse_errbuf *eb);

/* An int64 as a parameter's text. */
typedef struct pg_int {
    char s[24];
} pg_int;
pg_int pg_i64(int64_t v);
/* A column as int64 (0 for NULL). */
int64_t pg_get_i64(const PGresult *res, int row, int col);

/* --- health -------------------------------------------------------------
 * Whether this node reaches PostgreSQL, as the last attempt of any of its
 * connections found: set by the threads that talk to it, read by the loop
 * (a mutex held for a copy). */
typedef struct pg_health {
    pthread_mutex_t lock;
    bool down;
    int64_t since_ms;   /* wall clock: when it went down */
    int64_t checked_ms; /* wall clock: the last attempt that failed */
    char msg[256];      /* why */
} pg_health;

void pg_health_init(pg_health *h);
void pg_health_fini(pg_health *h);
void pg_health_up(pg_health *h);
/* Keeps since_ms of an outage already going. */
void pg_health_down(pg_health *h, const char *msg);
/* True when down, with since_ms (optional) and the reason into msg
 * (optional). */
bool pg_health_get(pg_health *h, int64_t *since_ms, int64_t *checked_ms, char *msg, size_t cap);

#endif
