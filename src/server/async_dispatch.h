/*
 * The dispatcher of asynchronous jobs: it takes queued jobs from the job
 * queue (jobq.h) and runs them on the function's instances through the
 * pool's interface (pool.h), like the HTTP layer runs synchronous calls,
 * then records how each run ended.
 *
 * - Synchronous traffic first: a job goes to the pool only while
 *   pool_free_capacity says the version has room (a free slot, one
 *   starting, or an instance scaling.max and the global cap still allow:
 *   a large batch wakes a function at zero and scales it out), as a
 *   background call that waits behind every synchronous one (one may
 *   wait per slot of a ready instance, so none idles between replies). At
 *   most async.max_concurrency jobs of a function are in the pool at once.
 * - FIFO per function: jobs are leased oldest first and sent in that order
 *   (a retry goes back in the queue at its place, due after its backoff).
 * - Retries: an instance crash, a timeout or an overload (5xx, 429) is
 *   retried with exponential backoff and jitter while attempts stay within
 *   async.max_attempts and the job within async.max_age_ms; then it fails
 *   with the last error (a dead letter). A 4xx fails at once.
 * - Leases: a job is running from its lease; a serve that ends leaves its
 *   leases running, and the next start queues them again (at-least-once).
 *
 * Everything runs on the loop thread. Decisions that need no state (the
 * backoff, the outcome of a status) are pure functions, tested alone.
 */
#ifndef ROUSE_SERVER_ASYNC_DISPATCH_H
#define ROUSE_SERVER_ASYNC_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "rouse/err.h"
#include "server/config.h"
#include "server/jobq.h"
#include "server/pool.h"
#include "store/store.h"

typedef struct async_dispatch async_dispatch;

/* Told when a job with a Callback-Url reached its final state. */
typedef void (*async_final_fn)(void *user, int64_t job_id);

/* One run of a job on an instance, as it ended (for metering). */
typedef struct async_run {
    int64_t job_id;
    const char *function;
    int64_t version;
    const pool_result *res;
    uint64_t bytes_in, bytes_out;
    uint64_t total_ns; /* from the pool call to its result */
    int64_t begin_wall_us;
} async_run;
typedef void (*async_run_fn)(void *user, const async_run *run);

typedef struct async_opts {
    pool *pool;
    jobq *q;
    store *st; /* the loop's connection: version configs */
    async_final_fn on_final;
    void *final_user;
    async_run_fn on_run; /* optional */
    void *run_user;
} async_opts;

/* Queues again the jobs a previous serve left running, and learns how many
 * jobs each function holds. Owned: free with async_destroy. */
int async_create(const async_opts *o, async_dispatch **out, rouse_errbuf *eb);
void async_destroy(async_dispatch *d);

/* Sends what capacity allows, leases more, expires old results; returns
 * ms until it next needs to run, or -1. Run on every loop iteration. */
int async_tick(async_dispatch *d);
/* serve is stopping: no new lease; runs cut short by the stop stay leased
 * (the next start queues them again). */
void async_stopping(async_dispatch *d);
/* Writes and pool calls in flight. */
int async_pending(const async_dispatch *d);

/* The config of a function version (cached). ROUSE_ENOTFOUND. */
int async_config(async_dispatch *d, const char *function, int64_t version, fn_config *out,
                 rouse_errbuf *eb);

/* Admission of n new jobs of a function under async.queue_limit: 0 (they
 * count as queued from now on), or ROUSE_EBUSY with *retry_after_s. */
int async_admit(async_dispatch *d, const char *function, const fn_config *cfg, int64_t n,
                int *retry_after_s, rouse_errbuf *eb);
/* n admitted jobs were not created after all (a failed write, an
 * idempotent repeat). */
void async_unadmit(async_dispatch *d, const char *function, int64_t n);
/* How many more jobs async.queue_limit lets a function hold now. */
int64_t async_room(async_dispatch *d, const char *function, const fn_config *cfg);
/* Jobs of a function are durably queued: lease them. n_new of them were
 * not admitted before (a re-drive, a batch's items). */
void async_queued(async_dispatch *d, const char *function, int64_t n_new);
/* A batch of function's version was posted: one call (the model's
 * metadata, its reply dropped) starts an instance if it has none, while
 * the batch is being checked and created, so that its first items do not
 * wait for an instance's start. */
void async_wake(async_dispatch *d, const char *function, int64_t version);
/* Items of a batch its POST's write creates; the dispatcher creates the
 * rest (async_batch_creating) while the first ones run. */
#define ASYNC_BATCH_FIRST_CHUNK 256
/* Batch id of function is accepted and its items are not all created yet:
 * the dispatcher creates the rest, a chunk per write. */
void async_batch_creating(async_dispatch *d, const char *function, int64_t id);
/* A queued job left the queue without running (cancelled); it expires then. */
void async_cancelled(async_dispatch *d, const char *function, int64_t batch, int64_t expires_ms);
/* Takes a leased job that waits for capacity back out of the dispatcher
 * (it will not run): true when it was there. Its record is still running:
 * the caller cancels it (jobq_cancel with leased_ok). */
bool async_unlease(async_dispatch *d, const char *function, int64_t id);

/* --- pure decisions -------------------------------------------------------- */

typedef enum async_outcome { ASYNC_SUCCEEDED, ASYNC_RETRY, ASYNC_FAILED } async_outcome;

/* What a run that ended with HTTP status `status` means for a job that has
 * had `attempts` runs (this one included) and is age_ms old. */
async_outcome async_decide(int status, int attempts, int max_attempts, int64_t age_ms,
                           int64_t max_age_ms);
/* The wait before the next attempt after `attempts` runs: exponential from
 * ASYNC_BACKOFF_BASE_MS, capped at ASYNC_BACKOFF_MAX_MS, with jitter: r in
 * [0, 1) picks a point in the upper half. */
int64_t async_backoff_ms(int attempts, double r);

#define ASYNC_BACKOFF_BASE_MS 100
#define ASYNC_BACKOFF_MAX_MS 60000

#endif
