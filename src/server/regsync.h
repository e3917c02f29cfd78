/*
 * The registry's sync (serve --state postgres://...): keeps the local
 * SQLite database, a replica of the registry in PostgreSQL, up to date
 * with every node's writes, away from the loop.
 *
 * Contract:
 * - regsync_start, before serve listens: connects, applies the registry's
 *   schema migrations (part "registry"), copies the whole registry into
 *   the replica of data_dir, and starts the sync thread. It fails (a clear
 *   error) when PostgreSQL cannot be reached then.
 * - The sync thread copies what other nodes changed: each second it reads
 *   registry_seq and, when it moved past the replica's, the objects logged
 *   since (replica.h); at once when regsync_poke is called (the loop calls
 *   it, e.g. on a bus event naming a registry change). Its PostgreSQL
 *   connection is its own; it reconnects by itself.
 * - After a copy that changed anything, regsync_fd becomes readable; the
 *   loop calls regsync_drain, which reports each changed function (its
 *   key) and whether API keys changed, so the loop can invalidate its
 *   route cache, the pool's view and the keys in memory.
 * - This node's own registry writes: regsync_own_write (the store's commit
 *   hook, on the writer thread) queues them; regsync_drain calls the
 *   publish function (regsync_set_publish) on the loop for each, after
 *   its commit, with the function's key ("" for keys or blob owners only)
 *   and the write's registry_seq.
 * - regsync_health: whether PostgreSQL is reachable (pg_util.h), which the
 *   writer's connection shares (store_attach_shared) and health reports.
 * Threads: start, stop, fd, drain, poke and set_publish belong to the
 * loop; own_write to the writer thread.
 */
#ifndef ROUSE_SERVER_REGSYNC_H
#define ROUSE_SERVER_REGSYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "rouse/err.h"
#include "store/pg_util.h"
#include "store/store.h"

typedef struct regsync regsync;

int regsync_start(const char *url, const char *data_dir, regsync **out, rouse_errbuf *eb);
/* Stops the thread and frees it. NULL is a no-op. */
void regsync_stop(regsync *r);
int regsync_fd(const regsync *r);
void regsync_poke(regsync *r);

typedef void (*regsync_publish_fn)(void *user, const char *fn_key, int64_t seq);
void regsync_set_publish(regsync *r, regsync_publish_fn fn, void *user);

/* For store_set_shared_hook (user: the regsync). */
void regsync_own_write(void *user, const char *fn_key, int64_t seq);

/* Calls changed for every function another node changed (fn_key), and
 * once with fn_key NULL when API keys changed; then publish for this
 * node's own writes. */
void regsync_drain(regsync *r, void (*changed)(void *user, const char *fn_key), void *user);

pg_health *regsync_health(regsync *r);

#endif
