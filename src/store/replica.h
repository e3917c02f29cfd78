/*
 * The registry's replica (replica.c): with `serve --state postgres://...`
 * the registry lives in PostgreSQL and the local SQLite database holds a
 * copy of it, which serve's loop and the pool read as they always do
 * (store.h). This file reads what changed from PostgreSQL (a snapshot) and
 * copies it into the replica.
 *
 * Objects: a function (its row with its versions, aliases, routes and
 * accuracy figures), an API key, a blob's owners. Every registry write in
 * PostgreSQL increments registry_seq and logs the objects it touched under
 * that number (registry_log), in its own transaction. A snapshot holds
 * whole objects as of one number; the replica records the number of each
 * object it copied (table replica_seq, kept outside the SQLite migrations)
 * and never replaces an object by an older copy, so that the writer's copy
 * of its own write and the sync thread's copy of everyone's may arrive in
 * any order. The replica's own number ('*') is the last registry_seq it
 * copied in full: everything logged after it is still to be copied.
 *
 * The log is pruned (replica_prune_log): entries both older than the
 * newest REPLICA_LOG_KEEP numbers and logged more than REPLICA_LOG_AGE_MS
 * ago go, and registry_seq.pruned keeps the highest number gone. A
 * replica whose number is below it may have missed changes: its next
 * copy is the whole registry, never a partial one.
 *
 * Calls with a PGconn block for at most a statement's timeout (pg_util.h):
 * threads only, never serve's loop.
 */
#ifndef ROUSE_STORE_REPLICA_H
#define ROUSE_STORE_REPLICA_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "rouse/err.h"
#include "store/store.h"

/* The registry part's schema migrations in PostgreSQL (pg_migrate). */
int replica_migrate(PGconn **conn, rouse_errbuf *eb);

/* How much of registry_log a prune keeps: the newest REPLICA_LOG_KEEP
 * numbers, and anything logged in the last REPLICA_LOG_AGE_MS (every
 * running node reads the log each second); a registry commit prunes
 * every REPLICA_PRUNE_EVERY numbers. */
#define REPLICA_LOG_KEEP 1000
#define REPLICA_LOG_AGE_MS (60 * 60 * 1000)
#define REPLICA_PRUNE_EVERY 100

/* Deletes the entries of registry_log numbered at most registry_seq -
 * keep and logged more than age_ms ago (PostgreSQL's clock), and raises
 * registry_seq.pruned to the highest number deleted. Runs in the
 * caller's transaction if one is open. */
int replica_prune_log(PGconn **conn, int64_t keep, int64_t age_ms, rouse_errbuf *eb);

typedef struct replica_snap replica_snap;

#define REPLICA_NAME_MAX 79
typedef struct replica_ref {
    char kind; /* 'f' function, 'k' API key, 'b' blob owners */
    char name[REPLICA_NAME_MAX + 1];
} replica_ref;

/* The whole registry as of the current registry_seq (one REPEATABLE READ
 * transaction). */
int replica_read_full(PGconn **conn, replica_snap **out, rouse_errbuf *eb);
/* Every object logged after seq `since`, as of the current registry_seq;
 * *out NULL when nothing was logged after it. When entries after `since`
 * were pruned, the whole registry instead (replica_snap_full). */
int replica_read_since(PGconn **conn, int64_t since, replica_snap **out, rouse_errbuf *eb);
/* Inside the caller's transaction: the objects refs name, as of seq. */
int replica_read_objects(PGconn **conn, const replica_ref *refs, int n, int64_t seq,
                         replica_snap **out, rouse_errbuf *eb);
void replica_snap_free(replica_snap *snap);
int64_t replica_snap_seq(const replica_snap *snap);
/* Whether snap is the whole registry (applying it replaces the replica). */
bool replica_snap_full(const replica_snap *snap);
/* The objects of a snapshot that is not a full copy. */
int replica_snap_count(const replica_snap *snap);
const replica_ref *replica_snap_ref(const replica_snap *snap, int i);

/* What a copy changed in the replica: the functions (by key) and whether
 * any API key. */
typedef struct replica_changes {
    int n, cap;
    char (*fns)[STORE_NAME_MAX + 1];
    bool keys;
} replica_changes;
void replica_changes_fini(replica_changes *c);

/* Creates the replica's bookkeeping table if needed. */
int replica_prepare(store *s, rouse_errbuf *eb);
/* The replica's own number (0: never copied). */
int replica_local_seq(store *s, int64_t *seq, rouse_errbuf *eb);
/* Copies snap into the replica in a transaction of its own; advances the
 * replica's number to the snapshot's. ch (optional) collects the changes. */
int replica_apply(store *s, const replica_snap *snap, replica_changes *ch, rouse_errbuf *eb);
/* The same inside the writer's open transaction, without advancing the
 * replica's number (other nodes' writes before it may still be missing). */
int replica_apply_tx(store *s, const replica_snap *snap, rouse_errbuf *eb);

#endif
