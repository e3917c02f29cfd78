/*
 * The usage store: one row per invocation, hourly aggregates for rows older
 * than the retention, and the queries GET /v1/usage answers from both.
 *
 * Lives in the registry's database (migration 10: the packed table
 * usage_calls, shown with the columns of migrations 2 to 8 by the view
 * usage_records; see usage_sqlite.c). Writes are
 * *_tx forms that the registry's writer thread runs inside its groups
 * (store/writer.h): a batch of records is one write, so many invocations
 * cost one row insert each and share one COMMIT. Queries run on a
 * connection of their own (serve reads on a thread of its own, never on the
 * event loop), in one read transaction each, so a query sees one snapshot.
 *
 * Latency percentiles come from a histogram with USAGE_BUCKETS_PER_DOUBLING
 * logarithmic buckets per doubling of the latency: a record's bucket
 * follows from its total µs (usage_bucket_of, also the SQL function
 * usage_bucket() on the store's connections) and the aggregates keep the
 * bucket counts, so a percentile is the same whether its hours were rolled
 * up or not. A percentile is reported as the upper bound of its bucket: at
 * most 9 % above the true value, never below it.
 */
#ifndef ROUSE_STORE_USAGE_H
#define ROUSE_STORE_USAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "rouse/err.h"
#include "store/store.h"

#define USAGE_BUCKETS_PER_DOUBLING 8
#define USAGE_BUCKETS 320 /* 2^40 µs (12 days) and above share the last one */
#define USAGE_HOUR_US 3600000000LL

/* One invocation as stored (the server's invocation record without what
 * only the request's own logs need, and without what follows from the
 * rest: the billed ms are run_us rounded up to a whole ms, the error kind
 * follows from the status, the latency bucket from total_us). start: 0
 * none, 1 warm, 2 template, 3 zero. request_id: 16 lowercase hex digits
 * (stored as a 64-bit integer; other text as it is); trace_id: 32
 * lowercase hex digits (stored as 16 bytes) or "" for none. */
typedef struct usage_rec {
    int64_t ts_us;
    int64_t version;
    int64_t queue_us, start_us, run_us, total_us;
    int64_t memory_mb;
    int64_t bytes_in, bytes_out;
    int start, status;
    char request_id[24];
    char trace_id[33];
    char function[STORE_NAME_MAX + 1];
    char tenant[STORE_NAME_MAX + 1];
} usage_rec;

/* The histogram bucket of a latency in µs, and the upper bound (µs) of a
 * bucket. */
int usage_bucket_of(int64_t us);
int64_t usage_bucket_upper(int b);

/* Inserts n records (inside the writer's group). */
int usage_insert_tx(store *st, const usage_rec *recs, int n, rouse_errbuf *eb);

/* Rolls the records of the oldest hour with records older than cutoff_us
 * (those of that hour before the cutoff) up into the hourly tables and
 * deletes them: *n_rows the records rolled up, *more whether records older
 * than the cutoff remain (another call is due). One hour per call bounds
 * how long the writer's transaction runs. A cutoff on a whole hour rolls
 * whole hours; one inside an hour rolls that hour in parts, whose sums and
 * latency counts add up exactly and whose peak concurrency is the larger
 * of the parts' peaks. */
int usage_rollup_tx(store *st, int64_t cutoff_us, int64_t *n_rows, bool *more, rouse_errbuf *eb);

typedef enum usage_by {
    USAGE_BY_FUNCTION,
    USAGE_BY_VERSION,
    USAGE_BY_MINUTE,
    USAGE_BY_HOUR,
    USAGE_BY_DAY,
    USAGE_BY_NODE, /* the node that recorded each call (docs/architecture.md, "Several nodes") */
} usage_by;

typedef struct usage_query {
    char function[STORE_NAME_MAX + 1]; /* "" for all */
    int64_t version;                   /* 0 for all */
    int64_t since_us, until_us;        /* records with since <= ts < until */
    usage_by by;
    bool peaks; /* compute each function's peak concurrency per hour */
    /* This node's name: the group of USAGE_BY_NODE for a store that keeps
     * only this node's records (SQLite). */
    char node[STORE_NAME_MAX + 1];
} usage_query;

/* The sums of one group. */
typedef struct usage_group {
    char function[STORE_NAME_MAX + 1]; /* BY_FUNCTION, BY_VERSION; BY_NODE: the node */
    int64_t version;                   /* BY_VERSION */
    int64_t t_us;                      /* BY_MINUTE/HOUR/DAY: the period's start */
    int64_t invocations, requests, errors;
    int64_t starts[4]; /* by start kind: none (rejected), warm, template, zero */
    int64_t billed_ms, mb_ms, run_us, bytes_in, bytes_out;
    int64_t hist[USAGE_BUCKETS];
} usage_group;

/* A function's peak concurrency in one hour (see usage_query_run). */
typedef struct usage_peak {
    char function[STORE_NAME_MAX + 1];
    int64_t hour_us;
    int64_t peak;
} usage_peak;

typedef struct usage_result {
    int n_groups;
    usage_group *groups; /* ordered by the group's key */
    int n_peaks;
    usage_peak *peaks;    /* by function, then hour (only with q->peaks) */
    int64_t first_ts_us;  /* the earliest record or aggregate hour found, or 0 */
} usage_result;

/* Runs a query in one read transaction on st. Aggregated hours count for
 * their hour's start (a minute grouping sees only records not rolled up).
 * The peak concurrency of a function in an hour is the largest number of
 * its invocations that arrived in that hour and were running in an
 * instance at the same instant (a call runs from ts + queue + start for
 * run µs); rolled-up hours keep the peak computed when they were rolled
 * up. Owned: free with usage_result_fini. */
int usage_query_run(store *st, const usage_query *q, usage_result *out, rouse_errbuf *eb);
void usage_result_fini(usage_result *r);

/* The percentile p (0 < p <= 1) of a histogram: the upper bound of the
 * bucket holding the nearest-rank element, or 0 for an empty histogram. */
int64_t usage_hist_percentile(const int64_t hist[USAGE_BUCKETS], double p);

/* --- shipping to PostgreSQL (server/usage_ship.c) ----------------------------
 * With `serve --state postgres://`, every record written is also listed in
 * the table usage_unshipped (seq, id): seq counts up (AUTOINCREMENT: never
 * reused, also when the table empties), id is the record's row. A TEMP
 * trigger on the registry writer's connection adds the entry in the same
 * transaction as the record, so a record is written and listed, or
 * neither. The shipper reads the list in seq order and keeps its cursor
 * (the last seq shipped) in PostgreSQL, in the transaction that wrote the
 * records there; the local prune then drops listed entries up to the
 * cursor, and records older than the retention that are no longer listed.
 * Records written without --state (or before it) are not listed and stay
 * local. usage_ship_id is the local store's random identity: a cursor is
 * valid only for the store it was made with. */

/* Creates usage_unshipped and usage_ship_id when missing (at start, on any
 * connection). */
int usage_outbox_create(store *st, rouse_errbuf *eb);
/* On the writer's connection, inside its group: the TEMP trigger that
 * lists each new record (created when missing; a parse when present). */
int usage_outbox_tx(store *st, rouse_errbuf *eb);
/* The local store's identity (32 lowercase hex digits). */
int usage_outbox_store_id(store *st, char out[33], rouse_errbuf *eb);
/* Up to max listed records with seq > after_seq, in seq order, into
 * recs[] with their local ids in ids[]; *n the records read, *last_seq the
 * last seq read (also past entries whose record is gone), after_seq when
 * none. */
int usage_outbox_read(store *st, int64_t after_seq, int max, usage_rec *recs, int64_t *ids,
                      int *n, int64_t *last_seq, rouse_errbuf *eb);
/* How many listed entries have seq > after_seq. */
int usage_outbox_pending(store *st, int64_t after_seq, int64_t *n, rouse_errbuf *eb);
/* Inside the writer's group: drops the list's entries up to shipped_seq,
 * then (up to 100,000 at a time: *more says when records older than the
 * cutoff remain deletable) the records older than cutoff_us that are not
 * listed. */
int usage_prune_shipped_tx(store *st, int64_t cutoff_us, int64_t shipped_seq, int64_t *n_rows,
                           bool *more, rouse_errbuf *eb);

#endif
