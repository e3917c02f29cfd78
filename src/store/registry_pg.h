/*
 * The registry's writes on PostgreSQL (registry_pg.c): what the store's
 * *_tx writes (store.h, keys.h, accuracy.h) do when the store has the
 * shared state attached (store_attach_shared). Private to src/store/.
 *
 * A writer group opens its PostgreSQL transaction at its first registry
 * write (a group of job or usage writes alone never talks to PostgreSQL):
 * BEGIN, then `UPDATE registry_seq SET seq = seq + 1`, whose row lock
 * every registry transaction of every node takes first, so registry
 * transactions run one at a time across the cluster (version N + 1 is
 * race-free) and each has its own sequence number. Each write runs in a
 * PostgreSQL savepoint beside the SQLite one. At the group's end the
 * objects it touched are logged under its number (registry_log) and read
 * back inside the transaction, then COMMIT; the store copies what was
 * read into the replica before its own COMMIT.
 *
 * A failure of the connection fails the group's registry writes (and
 * later ones fail fast while the health says PostgreSQL is down); the
 * group's SQLite writes go on.
 */
#ifndef ROUSE_STORE_REGISTRY_PG_H
#define ROUSE_STORE_REGISTRY_PG_H

#include <stdbool.h>
#include <stdint.h>

#include "store/keys.h"
#include "store/pg_util.h"
#include "store/replica.h"
#include "store/store.h"

typedef struct registry_pg registry_pg;

int registry_pg_open(const char *url, pg_health *health, registry_pg **out, rouse_errbuf *eb);
void registry_pg_close(registry_pg *g);

/* The group's life (the store calls these from its store_tx_* calls). */
void registry_pg_group_begin(registry_pg *g);
void registry_pg_write_begin(registry_pg *g);
/* Ends the write's PostgreSQL savepoint; a failure there fails the group's
 * PostgreSQL part, not the call. */
void registry_pg_write_end(registry_pg *g, bool keep);
/* Whether the current write wrote to PostgreSQL. */
bool registry_pg_write_shared(const registry_pg *g);
/* Ends the PostgreSQL transaction: on success *snap (NULL when the group
 * wrote nothing there) holds the touched objects as committed. 0 or the
 * error that failed the group's PostgreSQL part. */
int registry_pg_group_commit(registry_pg *g, replica_snap **snap, rouse_errbuf *eb);
void registry_pg_group_rollback(registry_pg *g);
/* The PostgreSQL result of the last group (0 or the error), for
 * store_tx_shared_status. */
int registry_pg_group_status(const registry_pg *g, rouse_errbuf *eb);

/* The writes. Arguments were validated by the caller (store_sqlite.c). */
int registry_pg_deploy(registry_pg *g, const char *name, const char *digest, const char *config,
                       int64_t *version, bool *created, rouse_errbuf *eb);
int registry_pg_delete(registry_pg *g, const char *name, rouse_errbuf *eb);
int registry_pg_alias_set(registry_pg *g, const char *function, const store_alias *alias,
                          rouse_errbuf *eb);
int registry_pg_rollback(registry_pg *g, const char *function, int64_t *version,
                         rouse_errbuf *eb);
int registry_pg_accuracy_set(registry_pg *g, const char *function, int64_t version,
                             const char *json, rouse_errbuf *eb);
int registry_pg_key_insert(registry_pg *g, const store_key *k, rouse_errbuf *eb);
int registry_pg_key_revoke(registry_pg *g, const char *id, int64_t now_ms, rouse_errbuf *eb);
int registry_pg_blob_owner_add(registry_pg *g, const char *tenant, const char *digest,
                               int64_t now_ms, rouse_errbuf *eb);
int registry_pg_blob_owner_remove(registry_pg *g, const char *tenant, const char *digest,
                                  int64_t *others, rouse_errbuf *eb);
/* Versions in PostgreSQL naming digest, when this group's transaction is
 * open (0 otherwise: the replica has the rest). */
int registry_pg_blob_refs(registry_pg *g, const char *digest, int64_t *n, rouse_errbuf *eb);

/* The sequence number of the last group committed, and the functions it
 * touched (for the store's commit hook). */
int64_t registry_pg_last_seq(const registry_pg *g);

#endif
