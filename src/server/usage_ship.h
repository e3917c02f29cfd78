/*
 * The usage shipper (`serve --state postgres://`): a thread of its own that
 * copies this node's usage records from the local store to PostgreSQL
 * (store/usage_pg.h), so that GET /v1/usage on any node counts every
 * node's calls. docs/architecture.md, "Metering" and "Several nodes".
 *
 * Guarantees:
 * - Usage never waits for PostgreSQL: records are written locally as
 *   without --state (usage.c, the registry's writer) and listed to ship
 *   in the same transaction (store/usage.h); the shipper reads the list
 *   on its own SQLite connection and writes PostgreSQL on its own libpq
 *   connection, never on the loop.
 * - Nothing is lost or counted twice: a batch and the node's cursor (the
 *   last list position shipped) are one PostgreSQL transaction, and a
 *   record's key there is (node, local id), so a batch sent again after a
 *   crash is ignored. The loop's prune removes only records the cursor
 *   has passed.
 * - Within about a second: the list is read every SHIP_POLL_MS; while
 *   PostgreSQL is away, records wait in the list (counted by
 *   rouse_usage_unshipped) and the shipper retries with backoff
 *   (SHIP_BACKOFF_MAX_MS at most), then catches up in batches.
 * - Hourly roll-ups in PostgreSQL run from here too, every minute, by one
 *   node at a time (usage_pg_rollup's advisory lock).
 */
#ifndef ROUSE_SERVER_USAGE_SHIP_H
#define ROUSE_SERVER_USAGE_SHIP_H

#include <stdint.h>

#include "rouse/err.h"

typedef struct usage_ship usage_ship;

typedef struct usage_ship_opts {
    const char *data_dir;  /* the local store */
    const char *url;       /* postgres://... */
    const char *node;      /* this node's name */
    int64_t retention_us;  /* PostgreSQL's roll-up: records older than this */
    int64_t rollup_every_ms;
} usage_ship_opts;

/* Opens the local store's connection and starts the thread (PostgreSQL is
 * connected to by the thread: its absence at start is not an error). */
int usage_ship_start(const usage_ship_opts *o, usage_ship **out, rouse_errbuf *eb);

/* Ships what is listed (for at most a few seconds, while PostgreSQL
 * answers), stops the thread and frees it. NULL is a no-op. */
void usage_ship_stop(usage_ship *sh);

/* The last list position shipped, -1 until the shipper has read its
 * cursor from PostgreSQL. Any thread. */
int64_t usage_ship_cursor(const usage_ship *sh);

/* Records listed and not yet shipped, as last counted (at most a poll
 * interval old). Any thread. */
int64_t usage_ship_unshipped(const usage_ship *sh);

#endif
