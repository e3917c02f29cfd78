/*
 * Asynchronous jobs in PostgreSQL (libpq): the records of the job queue of
 * several nodes (server/jobq_cluster.c), with the states, attempts,
 * idempotency keys, expiry and callback status of store/jobs.h. Every
 * function runs on the caller's connection and blocks on the network: the
 * queue calls them from a thread of its own, never from serve's loop.
 *
 * A running job names the node that runs it (`node`, what an operator
 * reads) and the lease's holder (one serve process: its node name, start
 * time and pid), with the lease's end (`lease_until_ms`), which the holder
 * pushes forward while it keeps the job. A change that ends a run names the
 * holder and the attempt it leased, so a late or duplicate one changes
 * nothing; a job whose holder stopped renewing is taken over by the next
 * node that receives it from the bus.
 *
 * Schema migrations (part "jobs" of rouse_schema) are applied by
 * jobs_pg_migrate at start, under the schema's advisory lock (pg_migrate,
 * as every part's).
 */
#ifndef ROUSE_STORE_JOBS_PG_H
#define ROUSE_STORE_JOBS_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rouse/err.h"
#include "store/jobs.h"

/* Connects (pg_connect: PG_CONNECT_TIMEOUT_S; ROUSE_EUNAVAILABLE with
 * libpq's message). */
int jobs_pg_connect(const char *url, PGconn **out, rouse_errbuf *eb);
/* Applies the jobs part's migrations (pg_migrate); a failure of the
 * connection closes it (*c becomes NULL). */
int jobs_pg_migrate(PGconn **c, rouse_errbuf *eb);

/* jobs_enqueue_tx's contract, in one transaction: *published false. */
int jobs_pg_enqueue(PGconn *c, const job_new *j, int64_t *id, bool *existed, bool *published,
                    rouse_errbuf *eb);
int jobs_pg_mark_published(PGconn *c, int64_t id, rouse_errbuf *eb);

/* Who holds a lease. */
typedef struct jobs_pg_holder {
    const char *node;   /* the node's name */
    const char *holder; /* this process */
    int64_t lease_ms;   /* how long a lease lasts unless renewed */
} jobs_pg_holder;

/* Leases job id (named by a message of the bus) at now_ms: 0 with *l, the
 * body (owned *body, free()) and its json_len; ROUSE_ESTATE when the job is
 * final, cancelled or gone (the message is done with); ROUSE_EBUSY with
 * *wait_ms when it is not due yet or another holder's lease still runs. */
int jobs_pg_lease(PGconn *c, int64_t id, const jobs_pg_holder *h, int64_t now_ms, job_lease *l,
                  char **body, size_t *len, int64_t *json_len, int64_t *wait_ms, rouse_errbuf *eb);
/* Renews this holder's leases of ids[0..n) until until_ms. */
int jobs_pg_renew(PGconn *c, const jobs_pg_holder *h, const int64_t *ids, int n, int64_t until_ms,
                  rouse_errbuf *eb);
/* Ends the run `attempts` of job x->id held by h: 0, or ROUSE_ESTATE when
 * the lease is no longer this run's (nothing changed). */
int jobs_pg_settle(PGconn *c, const jobs_pg_holder *h, int attempts, const job_settle *x,
                   int64_t *batch, rouse_errbuf *eb);
/* jobs_cancel_tx: a running job only when leased_ok and held by h. */
int jobs_pg_cancel(PGconn *c, const jobs_pg_holder *h, int64_t id, int64_t now_ms,
                   int64_t expires_ms, bool leased_ok, int *state, rouse_errbuf *eb);
/* jobs_retry_tx (the job is unpublished until jobs_pg_mark_published);
 * *drives: how many times it was re-driven, this one included (a publish's
 * message id names it, so that JetStream does not drop it as a duplicate
 * of the job's earlier publish). */
int jobs_pg_retry(PGconn *c, int64_t id, char *function, int *state, int *drives,
                  rouse_errbuf *eb);
int jobs_pg_expire(PGconn *c, int64_t now_ms, int64_t *n, rouse_errbuf *eb);
int jobs_pg_callback(PGconn *c, int64_t id, int cb_state, int attempts, const char *error,
                     rouse_errbuf *eb);
int jobs_pg_get(PGconn *c, int64_t id, bool with_result, job_info *out, rouse_errbuf *eb);
/* jobs_list's contract. */
int jobs_pg_list(PGconn *c, const char *function, int state, int64_t after_id, int limit,
                 int (*fn)(void *user, const job_info *j), void *user, rouse_errbuf *eb);

/* Queued jobs accepted before before_ms whose message was not published:
 * up to max ids, their re-drives and functions (STORE_NAME_MAX + 1 each). */
int jobs_pg_unpublished(PGconn *c, int64_t before_ms, int max, int64_t *ids, int *drives,
                        char *functions, int *n, rouse_errbuf *eb);
/* Functions with queued or running jobs, and how many. */
int jobs_pg_active(PGconn *c, int (*fn)(void *user, const char *function, int64_t n),
                   void *user, rouse_errbuf *eb);
/* Final jobs run by node whose callback is still to be delivered. */
int jobs_pg_pending_callbacks(PGconn *c, const char *node, int (*fn)(void *user, int64_t id),
                              void *user, rouse_errbuf *eb);

/* --- batch files (jobs.h's contracts where it has them) ---
 * A batch's input is copied into PostgreSQL when it is accepted, so that
 * any node creates its items; each item is a job whose body is its line.
 * Create and extend append the ids of the items they created to ids[]
 * (room for the chunk's max), unpublished until marked. */
int jobs_pg_batch_create(PGconn *c, const batch_new *b, int64_t *id, int64_t *n_items,
                         int64_t *ids, int *n_ids, bool *complete, rouse_errbuf *eb);
/* *function (STORE_NAME_MAX + 1): the batch's. */
int jobs_pg_batch_extend(PGconn *c, int64_t id, int64_t max, int64_t now_ms, int64_t *ids,
                         int *n_ids, bool *complete, char *function, rouse_errbuf *eb);
int jobs_pg_mark_published_many(PGconn *c, const int64_t *ids, int n, rouse_errbuf *eb);
/* The batch and its counts; part 1 (output) or 2 (errors): *data (owned,
 * free(); NULL until the output is written) and *len. */
int jobs_pg_batch_get(PGconn *c, int64_t id, int part, batch_info *out, char **data, size_t *len,
                      rouse_errbuf *eb);
/* Items of a batch queued, running or not created yet. */
int jobs_pg_batch_left(PGconn *c, int64_t id, int64_t *left, rouse_errbuf *eb);
/* jobs_batch_finish_tx, the output kept beside the batch (its digests are
 * the content's): exactly once, whichever node calls it (the batch's row
 * is locked). expires_ms <= 0: the latest expiry of its items. */
int jobs_pg_batch_finish(PGconn *c, int64_t id, int64_t now_ms, int64_t expires_ms, bool *done,
                         rouse_errbuf *eb);
/* Batches to go on with, at most max: those whose creation made no
 * progress since stalled_before_ms (creating: its node stopped or died),
 * and those whose items are all final without an output. */
int jobs_pg_batches_due(PGconn *c, int64_t stalled_before_ms, int max,
                        int (*fn)(void *user, int64_t id, const char *function, bool creating),
                        void *user, rouse_errbuf *eb);

#endif
