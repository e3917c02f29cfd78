/*
 * The job queue: what serve's asynchronous path (the HTTP handlers in
 * api_jobs.c and the dispatcher in async_dispatch.c) asks of durable job
 * storage. No SQL and no thread crosses this interface, so that a
 * networked queue (NATS JetStream, for several nodes) can implement it
 * beside the embedded one without touching its callers.
 *
 Two backends implement it (jobq_int.h: a table of operations), chosen at
 * start. The embedded one (jobq_local.c) runs every change as a write on
 * the registry's writer thread (store/writer.h): it joins the group commit
 * of whatever else is being written, so many accepted jobs share one
 * fsync, and the loop never waits for a disk; its records are store/jobs.h
 * (SQLite). The one of several nodes (jobq_cluster.c, serve --state
 * postgres://... --bus nats://...) keeps the records in PostgreSQL and
 * hands the jobs out through NATS JetStream, on a thread of its own.
 *
 * Changes complete through a callback on the loop thread, once durable
 * (rc 0) or failed (rc < 0, eb says why); if a call returns an error, its
 * callback never runs, nor after jobq_forget. Reads answer at once from
 * the loop's own connection (small primary-key and index lookups) with
 * the embedded backend; a networked one answers jobq_get_async later and
 * says which reads it cannot answer at once (jobq_caps).
 */
#ifndef ROUSE_SERVER_JOBQ_H
#define ROUSE_SERVER_JOBQ_H

#include <stdbool.h>
#include <stdint.h>

#include "rouse/err.h"
#include "store/jobs.h"
#include "store/store.h"
#include "store/writer.h"

typedef struct jobq jobq;

/* Leased at most this many at a time. */
#define JOBQ_LEASE_MAX 1024
/* Runs recorded by one settle_many at most. */
#define JOBQ_SETTLE_MAX 1024
/* Results up to this size stay in the job's record, bigger ones go to the
 * blob store (referenced by the job until it expires). */
#define JOBQ_RESULT_INLINE_MAX (256u << 10)

/* What a change reports back (the fields its call fills). */
typedef struct jobq_reply {
    int64_t id;                        /* enqueue, batch_create */
    bool existed;                      /* enqueue: the idempotency key named an earlier job */
    int state;                         /* cancel, retry: the state the job was in */
    char function[STORE_NAME_MAX + 1]; /* retry */
    int n;                             /* lease */
    const job_lease *leases;
    /* lease: each job's body, read on the writer thread (so that the loop
     * never reads a body from disk): malloc'd, taken by setting the slot
     * to NULL; what is left is freed after the callback. */
    char **bodies;
    const size_t *body_lens;
    const int64_t *json_lens;
    int64_t next_ms; /* lease: when the next queued job is due, or -1 */
    /* batch_create: the batch's items, all of them; batch_extend: those
     * this write created; expire: jobs removed */
    int64_t n_items;
    /* batch_finish: the output is written; batch_create, batch_extend:
     * every item of the batch exists (else jobq_batch_extend creates more) */
    bool done;
    /* settle_many, one per run (n of them): 0 or that run's own error
     * (ROUSE_ESTATE: the job was no longer running, nothing changed); and
     * for a run that ended its job and belongs to a batch, how many items
     * of the batch are still queued or running once the write is durable
     * (0: the batch's output can be written), else -1. */
    const int *settled;
    const int64_t *batch_left;
} jobq_reply;

typedef void (*jobq_done_fn)(void *user, int rc, const rouse_errbuf *eb, const jobq_reply *r);

/* What a backend offers beyond the common calls. */
typedef struct jobq_caps {
    /* Leased jobs may wait in the dispatcher's buffer (the embedded queue):
     * else a lease takes only what capacity can run now (a job leased by a
     * node is one the other nodes do not run). */
    bool lease_ahead;
    /* jobq_get, jobq_list and the batch reads answer at once (no network):
     * else jobq_get_async, jobq_list_async and jobq_batch_get_async
     * complete later, and batches to go on with are found by the backend
     * (jobq_batch_wake_fn) instead of jobq_pending_batches and
     * jobq_creating_batches. */
    bool sync_reads;
    /* Batch files (jobq_batch_*). */
    bool batches;
} jobq_caps;

/* A read that completes later: j (with its result when asked; the callee
 * frees it after the call) when rc is 0. `later`: false when it ran inside
 * jobq_get_async itself. */
typedef void (*jobq_get_fn)(void *user, int rc, const rouse_errbuf *eb, const job_info *j,
                            bool later);
/* A list read that may complete later: jobs[0..n) (see jobq_list). */
typedef void (*jobq_list_fn)(void *user, int rc, const rouse_errbuf *eb, const job_info *jobs,
                             int n, bool later);
/* The queue's count of a function's queued and running jobs, all nodes'
 * (n_active; they may be waiting for this node). A call with function
 * NULL starts a new count: a function it does not name has none. */
typedef void (*jobq_wake_fn)(void *user, const char *function, int64_t n_active);

/* A batch read that may complete later: bi when rc is 0; with part 1
 * (output) or 2 (errors), data[0..len) is that part when the backend keeps
 * it itself (else NULL: read the blob bi names). Both are freed after the
 * call. `later` as for jobq_get_fn. */
typedef void (*jobq_batch_fn)(void *user, int rc, const rouse_errbuf *eb, const batch_info *bi,
                              const char *data, size_t len, bool later);
/* A batch a shared queue's sweep found to go on with (the dispatcher):
 * creating, its creation stalled (its node stopped or died); else every
 * item is final and its output is still to be written. */
typedef void (*jobq_batch_wake_fn)(void *user, int64_t id, const char *function, bool creating);

/* w: the registry's writer (borrowed; outlives the queue's last change),
 * st: the loop's reading connection, data_dir: where blobs are written.
 * Owned: free with jobq_destroy. */
int jobq_create(store_writer *w, store *st, const char *data_dir, jobq **out, rouse_errbuf *eb);
void jobq_destroy(jobq *q);

const jobq_caps *jobq_caps_of(const jobq *q);
/* Who is told of work that others queued (the dispatcher). */
void jobq_set_wake(jobq *q, jobq_wake_fn fn, void *user);
void jobq_set_batch_wake(jobq *q, jobq_batch_wake_fn fn, void *user);
/* The backend's periodic work (leases kept alive, missed work found):
 * called by the dispatcher on each tick; ms until it wants the next, or
 * -1. */
int jobq_tick(jobq *q, int64_t now_ms);
/* jobq_get that may complete later (see jobq_get_fn): 0 when done ran
 * already or will run, < 0 (done never runs). *ticket: for jobq_forget. */
int jobq_get_async(jobq *q, int64_t id, bool with_result, jobq_get_fn done, void *user,
                   uint64_t *ticket);
/* jobq_list that may complete later, likewise (at most JOBQ_LIST_MAX). */
#define JOBQ_LIST_MAX 1000
int jobq_list_async(jobq *q, const char *function, int state, int64_t after_id, int limit,
                    jobq_list_fn done, void *user, uint64_t *ticket);

/* jobq_batch_get that may complete later (see jobq_batch_fn), likewise. */
int jobq_batch_get_async(jobq *q, int64_t id, int part, jobq_batch_fn done, void *user,
                         uint64_t *ticket);

/* Changes. *ticket (optional) names the change for jobq_forget. */
int jobq_enqueue(jobq *q, const job_new *j, jobq_done_fn done, void *user, uint64_t *ticket);
int jobq_lease(jobq *q, const char *function, int64_t now_ms, int max, jobq_done_fn done,
               void *user);
/* The ends of n runs recorded in one write: one savepoint, one completion,
 * so that a drain of many short jobs costs the writer one statement per job
 * and the group's fsync, not a write each. A failing write records none of
 * them (they stay running: the next start queues them again). */
int jobq_settle_many(jobq *q, const job_settle *s, int n, jobq_done_fn done, void *user);
int jobq_cancel(jobq *q, int64_t id, int64_t now_ms, int64_t expires_ms, bool leased_ok,
                jobq_done_fn done, void *user, uint64_t *ticket);
int jobq_retry(jobq *q, int64_t id, int64_t now_ms, jobq_done_fn done, void *user,
               uint64_t *ticket);
int jobq_reset_running(jobq *q, jobq_done_fn done, void *user);
int jobq_expire(jobq *q, int64_t now_ms, jobq_done_fn done, void *user);
int jobq_callback_status(jobq *q, int64_t id, int cb_state, int attempts, const char *error,
                         jobq_done_fn done, void *user);
int jobq_batch_create(jobq *q, const batch_new *b, jobq_done_fn done, void *user, uint64_t *ticket);
/* Creates up to max more items of a batch whose creation did not end
 * (jobs_batch_extend_tx): a write of its own, so that the items created
 * so far are leased while the rest are being inserted. */
int jobq_batch_extend(jobq *q, int64_t id, int64_t max, jobq_done_fn done, void *user);
int jobq_batch_finish(jobq *q, int64_t id, int64_t now_ms, int64_t expires_ms, jobq_done_fn done,
                      void *user);
/* The change's callback will not run (its user went away). */
void jobq_forget(jobq *q, uint64_t ticket);

/* Reads (jobs.h has their contracts). */
int jobq_get(jobq *q, int64_t id, bool with_result, job_info *out, rouse_errbuf *eb);
int jobq_body(jobq *q, int64_t id, char **body, size_t *len, int64_t *json_len, rouse_errbuf *eb);
int jobq_list(jobq *q, const char *function, int state, int64_t after_id, int limit,
              int (*fn)(void *user, const job_info *j), void *user, rouse_errbuf *eb);
int jobq_active_counts(jobq *q, int (*fn)(void *user, const char *function, int64_t n_active),
                       void *user, rouse_errbuf *eb);
int jobq_batch_get(jobq *q, int64_t id, batch_info *out, rouse_errbuf *eb);
/* Batches without output yet, and the earliest expiry of anything (-1). */
int jobq_pending_batches(jobq *q, int (*fn)(void *user, int64_t id), void *user, rouse_errbuf *eb);
int jobq_next_expiry(jobq *q, int64_t *ms, rouse_errbuf *eb);
/* Batches whose items are not all created yet (a serve stopped or died
 * while creating them): the dispatcher goes on creating them. */
int jobq_creating_batches(jobq *q, int (*fn)(void *user, int64_t id, const char *function),
                          void *user, rouse_errbuf *eb);
/* Final jobs whose callback is still to be delivered. */
int jobq_pending_callbacks(jobq *q, int (*fn)(void *user, int64_t id), void *user,
                           rouse_errbuf *eb);

#endif
