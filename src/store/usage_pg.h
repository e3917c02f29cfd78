/*
 * The usage store on PostgreSQL (`serve --state postgres://`): the records
 * every node ships (server/usage_ship.c), their hourly aggregates, and the
 * queries GET /v1/usage answers from them, so that any node reports the
 * usage of all nodes (docs/architecture.md, "Metering" and "Several
 * nodes").
 *
 * Every call blocks on the network: they run on threads of their own (the
 * shipper's, the usage query thread), never on serve's loop, each thread
 * with its own connection.
 *
 * Schema (part "usage" of rouse_schema, migrations applied at connect
 * under pg_advisory_xact_lock(hashtext('rouse_schema'))):
 * - usage_calls: one row per invocation, primary key (node, id), id being
 *   the record's id in its node's local store, so a batch shipped twice
 *   counts once; with its latency bucket (usage_bucket_of), computed once
 *   by the node.
 * - usage_ship_cursor: per node, the last local list position shipped
 *   (usage.h) and the local store it belongs to, written in the
 *   transaction that wrote the records.
 * - usage_hourly, usage_hourly_latency (per node, function, version,
 *   tenant and hour) and usage_hourly_peak (per function and hour, all
 *   nodes' calls together): records older than the retention, rolled up
 *   by one node at a time (pg_try_advisory_xact_lock).
 */
#ifndef ROUSE_STORE_USAGE_PG_H
#define ROUSE_STORE_USAGE_PG_H

#include <stdbool.h>
#include <stdint.h>

#include "rouse/err.h"
#include "store/usage.h"

typedef struct pg_conn pg_conn;

/* Connects to url (pg_connect: a libpq URI, PG_CONNECT_TIMEOUT_S to
 * connect) and applies the usage part's migrations (pg_migrate). On
 * failure eb says why and *out stays NULL. */
int usage_pg_open(const char *url, pg_conn **out, rouse_errbuf *eb);
void usage_pg_close(pg_conn *c);
/* Whether the connection is still usable (false after a network error:
 * close it and open another). */
bool usage_pg_ok(const pg_conn *c);

/* The connection's socket (for shutdown(2) by another thread when this
 * one must stop waiting on a server that does not answer), or -1. */
int usage_pg_socket(const pg_conn *c);

/* The cursor of node for the local store store_id: the last list
 * position shipped, or 0 when nothing was shipped from that store. */
int usage_pg_cursor(pg_conn *c, const char *node, const char *store_id, int64_t *seq,
                    rouse_errbuf *eb);

/* One transaction: inserts recs[0..n) (ids[] their local ids; a record
 * already there is left as it is) and moves node's cursor to last_seq. */
int usage_pg_ship(pg_conn *c, const char *node, const char *store_id, const usage_rec *recs,
                  const int64_t *ids, int n, int64_t last_seq, rouse_errbuf *eb);

/* Rolls up the records of the oldest hour with records older than
 * cutoff_us, as usage_rollup_tx does, unless another node is rolling up
 * (*busy). *n_rows the records rolled up, *more whether older ones
 * remain. */
int usage_pg_rollup(pg_conn *c, int64_t cutoff_us, int64_t *n_rows, bool *more, bool *busy,
                    rouse_errbuf *eb);

/* usage_query_run over all nodes' records and aggregates, in one
 * read-only snapshot. */
int usage_pg_query(pg_conn *c, const usage_query *q, usage_result *out, rouse_errbuf *eb);

#endif
