/*
 * Durable asynchronous jobs and batch files in the embedded registry
 * (SQLite, jobs_sqlite.c): the records behind serve's job queue
 * (server/jobq.h), which is the interface the rest of serve uses.
 *
 * A job is one inference request accepted for later: its function and the
 * version resolved at acceptance, its body (kept in the row: one COMMIT
 * makes the job durable, with no blob of its own to fsync), its state and
 * attempts, and when it ends its result (small ones in the row, large ones
 * in the blob store, referenced through store_blob_refs_tx so that
 * collection keeps them until the job expires). Ids grow with acceptance,
 * so FIFO per function is id order.
 *
 * States: queued -> running -> succeeded | failed, or back to queued (a
 * retry after run_after_ms; a lease that serve did not finish, reset at its
 * start); queued -> cancelled; failed | cancelled -> queued (re-drive).
 *
 * The *_tx functions run on the registry's writer thread (store/writer.h),
 * inside the group's transaction; the others read through any connection.
 */
#ifndef ROUSE_STORE_JOBS_H
#define ROUSE_STORE_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rouse/err.h"
#include "store/store.h"

typedef enum job_state {
    JOB_QUEUED = 0,
    JOB_RUNNING = 1,
    JOB_SUCCEEDED = 2,
    JOB_FAILED = 3,
    JOB_CANCELLED = 4,
} job_state;

#define JOB_STATE_COUNT 5
#define JOB_IDEM_KEY_MAX 255
#define JOB_CALLBACK_MAX 2047
#define JOB_ERROR_MAX 511

/* "queued", "running", ...; NULL for an unknown state. */
const char *job_state_name(int state);
/* The state named s, or -1. */
int job_state_parse(const char *s);

/* Callback delivery (Callback-Url). */
typedef enum job_cb_state {
    JOB_CB_NONE = 0,
    JOB_CB_PENDING = 1,
    JOB_CB_DELIVERED = 2,
    JOB_CB_FAILED = 3,
} job_cb_state;

const char *job_cb_state_name(int state);

/* One job to accept. */
typedef struct job_new {
    const char *function;
    int64_t version;
    const void *body;
    size_t body_len;
    int64_t json_len;     /* Inference-Header-Content-Length, or -1 */
    const char *idem_key; /* NULL or "" for none */
    const char *body_sha; /* hex sha256 of the body, with idem_key */
    const char *callback; /* NULL or "" for none */
    int64_t now_ms;
    int64_t idem_window_ms; /* a key older than this is free again */
} job_new;

/* Accepts a job: *id set. With an idempotency key already used within the
 * window, the existing job's id and *existed true (same body), or
 * ROUSE_ESTATE (a different body). */
int jobs_enqueue_tx(store *s, const job_new *j, int64_t *id, bool *existed, rouse_errbuf *eb);

/* A job handed out to run. */
typedef struct job_lease {
    int64_t id;
    int64_t version;
    int attempts; /* counting this one */
    int64_t created_ms;
    int64_t batch; /* its batch, or 0 */
    bool has_callback;
    int64_t body_off, body_len; /* a batch item's line in its input, or -1 */
} job_lease;

/* Takes up to max queued jobs of `function` due at now_ms, oldest first,
 * into running (attempts + 1): *n of them in out. *next_ms: when the next
 * queued job becomes due (now_ms when max were taken: more may be), or -1.
 * While a batch of the function is still being created, jobs after its
 * last created item wait (FIFO: its other items come first) and do not
 * count for *next_ms. */
int jobs_lease_tx(store *s, const char *function, int64_t now_ms, int max, job_lease *out, int *n,
                  int64_t *next_ms, rouse_errbuf *eb);

/* How a run ended. */
typedef struct job_settle {
    int64_t id;
    int state; /* JOB_SUCCEEDED, JOB_FAILED or JOB_QUEUED (retry) */
    int64_t now_ms;
    int64_t run_after_ms; /* JOB_QUEUED: not before */
    int64_t expires_ms;   /* final states: when the job and its result go */
    int status;           /* HTTP status of the run */
    const char *error;    /* the last error, or NULL */
    const void *result;   /* the reply body in the row, or NULL */
    size_t result_len;
    const char *result_digest; /* or the reply in a blob, or NULL */
    const char *result_type;
    int64_t result_json_len;
    bool uncount; /* JOB_QUEUED: the run did not happen (serve stopping): attempts - 1 */
} job_settle;

/* Records the end of a run of a running job. ROUSE_ESTATE when the job is
 * not running (cancelled meanwhile, or gone). */
int jobs_settle_tx(store *s, const job_settle *st, rouse_errbuf *eb);

/* The ends of n runs (jobs_settle_tx each), with the batches' counts moved
 * once per batch and state: rcs[i] 0 or ROUSE_ESTATE (job i was no longer
 * running: nothing changed); batch_left[i], for a run that ended a batch's
 * item, how many of that batch's items are still queued or running after
 * all n, else -1. Another error fails the whole call (eb says why). */
int jobs_settle_many_tx(store *s, const job_settle *x, int n, int *rcs, int64_t *batch_left,
                        rouse_errbuf *eb);

/* Items of a batch still queued or running (0 once every item is final). */
int jobs_batch_pending_tx(store *s, int64_t batch, int64_t *n, rouse_errbuf *eb);

/* Cancels a queued job (kept, visible, until expires_ms), or a running one
 * when leased_ok (a lease its holder gave back before running it): 0;
 * ROUSE_ESTATE with *state set when it is in another state; ROUSE_ENOTFOUND. */
int jobs_cancel_tx(store *s, int64_t id, int64_t now_ms, int64_t expires_ms, bool leased_ok,
                   int *state, rouse_errbuf *eb);

/* Re-drives a failed or cancelled job: queued again, attempts 0, its
 * result and errors cleared. *function set (STORE_NAME_MAX + 1 bytes).
 * ROUSE_ESTATE (with *state) for other states; ROUSE_ENOTFOUND. */
int jobs_retry_tx(store *s, int64_t id, int64_t now_ms, char *function, int *state,
                  rouse_errbuf *eb);

/* At start: every running job (a lease of a serve that ended) is queued
 * again, its interrupted attempt uncounted; *n how many. */
int jobs_reset_running_tx(store *s, int64_t *n, rouse_errbuf *eb);

/* Deletes finished jobs and batches whose expiry passed; *n jobs. */
int jobs_expire_tx(store *s, int64_t now_ms, int64_t *n, rouse_errbuf *eb);

/* Records a callback delivery attempt's outcome. */
int jobs_callback_tx(store *s, int64_t id, int cb_state, int attempts, const char *error,
                     rouse_errbuf *eb);

/* A job as GET /v1/jobs/{id} shows it. */
typedef struct job_info {
    int64_t id;
    char function[STORE_NAME_MAX + 1];
    int64_t version;
    int state;
    int attempts;
    int64_t created_ms, started_ms, finished_ms, run_after_ms, expires_ms; /* 0 when unset */
    int status;
    char last_error[JOB_ERROR_MAX + 1];
    char callback[JOB_CALLBACK_MAX + 1];
    int cb_state, cb_attempts;
    char cb_error[JOB_ERROR_MAX + 1];
    char result_type[64];
    int64_t result_json_len;
    char result_digest[STORE_DIGEST_LEN + 1];
    int64_t batch, batch_index; /* 0 and -1 when not in a batch */
    char *result;               /* with_result: owned, free() */
    size_t result_len;
} job_info;

/* Reads a job (its result too when with_result). ROUSE_ENOTFOUND. */
int jobs_get(store *s, int64_t id, bool with_result, job_info *out, rouse_errbuf *eb);

/* Reads jobs' bodies. A batch item's body is its line of the batch's
 * input blob, read in place from data_dir's blob store; a reader keeps the
 * last input open across the reads of one lease. */
typedef struct job_body_reader {
    const char *data_dir; /* borrowed */
    struct blobstore *blobs;
    int64_t batch; /* whose input fd holds, or 0 */
    int fd;
} job_body_reader;
void jobs_body_reader_init(job_body_reader *r, const char *data_dir);
void jobs_body_reader_fini(job_body_reader *r);

/* A job's body: owned *body, free(). ROUSE_ENOTFOUND. The _tx form runs
 * inside the writer's transaction (the store's lock already held). */
int jobs_body_get(store *s, const char *data_dir, int64_t id, char **body, size_t *len,
                  int64_t *json_len, rouse_errbuf *eb);
int jobs_body_get_tx(store *s, job_body_reader *r, int64_t id, char **body, size_t *len,
                     int64_t *json_len, rouse_errbuf *eb);

/* A leased job's body, like jobs_body_get_tx; a batch item's line is read
 * where the lease says it is, without a query. */
int jobs_lease_body_tx(store *s, job_body_reader *r, const job_lease *l, char **body, size_t *len,
                       int64_t *json_len, rouse_errbuf *eb);

/* The bodies of n leased jobs (bodies[i] owned, free()), like
 * jobs_lease_body_tx for each: consecutive lines of one batch's input are
 * read by one system call. On failure no body is left allocated. */
int jobs_lease_bodies_tx(store *s, job_body_reader *r, const job_lease *l, int n, char **bodies,
                         size_t *lens, int64_t *json_lens, rouse_errbuf *eb);

/* Jobs of a function (all when NULL) in a state (all when < 0), oldest
 * first, from after_id, at most limit; fn stops early when nonzero. */
int jobs_list(store *s, const char *function, int state, int64_t after_id, int limit,
              int (*fn)(void *user, const job_info *j), void *user, rouse_errbuf *eb);

/* Calls fn for each function with queued or running jobs. */
int jobs_active_counts(store *s, int (*fn)(void *user, const char *function, int64_t n_active),
                       void *user, rouse_errbuf *eb);

/* Calls fn for each batch whose output is not written yet. */
int jobs_pending_batches(store *s, int (*fn)(void *user, int64_t id), void *user, rouse_errbuf *eb);
/* The earliest expiry of a job or batch, or -1. */
int jobs_next_expiry(store *s, int64_t *ms, rouse_errbuf *eb);
/* Calls fn for each final job whose callback is still pending. */
int jobs_pending_callbacks(store *s, int (*fn)(void *user, int64_t id), void *user,
                           rouse_errbuf *eb);

/* --- batch files ------------------------------------------------------- */

/* A batch to create from a JSONL blob: one job per non-empty line, in order. */
typedef struct batch_new {
    const char *function;
    int64_t version;
    const char *input_digest;
    const char *input_path; /* the blob's file, read on the writer thread */
    int64_t now_ms;
    int64_t max_line;  /* a longer line is an error (400) */
    int64_t max_items; /* more lines: an error (400); also the queue room left */
    int64_t chunk;     /* items this call creates (0: all), the rest jobs_batch_extend_tx's */
} batch_new;

/* Accepts a batch: the whole input is checked (line lengths, the room)
 * and its items counted, their ids reserved (first_id + index, below every
 * job accepted later) and all of them counted queued; the first
 * min(chunk, n) of them are created. *id and *n_items (all of them) set. */
int jobs_batch_create_tx(store *s, const batch_new *b, int64_t *id, int64_t *n_items,
                         rouse_errbuf *eb);

/* Creates up to max more items of a batch, from where its creation
 * stopped (its input read from data_dir's blob store): *n_new of them, and
 * *complete once every item exists (also for a batch that was complete
 * already). A crash between two of these loses nothing and repeats
 * nothing: each moves the batch's place in its input in the transaction
 * that inserts the items. ROUSE_ENOTFOUND for no such batch. */
int jobs_batch_extend_tx(store *s, int64_t id, const char *data_dir, int64_t max, int64_t *n_new,
                         bool *complete, rouse_errbuf *eb);

/* Calls fn for each batch whose items are not all created yet. */
int jobs_creating_batches(store *s, int (*fn)(void *user, int64_t id, const char *function),
                          void *user, rouse_errbuf *eb);

typedef struct batch_info {
    int64_t id;
    char function[STORE_NAME_MAX + 1];
    int64_t version;
    char input_digest[STORE_DIGEST_LEN + 1];
    int64_t n_items;
    int64_t n_created;               /* items created so far (n_items once creation ended) */
    int64_t counts[JOB_STATE_COUNT]; /* items not created yet count as queued */
    int64_t created_ms, finished_ms, expires_ms;
    char output_digest[STORE_DIGEST_LEN + 1]; /* "" until written */
    char errors_digest[STORE_DIGEST_LEN + 1];
} batch_info;

int jobs_batch_get(store *s, int64_t id, batch_info *out, rouse_errbuf *eb);

/* Once every item of a batch exists and is final: writes its output (one line per
 * item, in input order: the result, or null for an item that failed) and
 * errors (one {"index":I,"id":J,"error":...} line per failed item) as
 * blobs into data_dir's blob store and records them. 0 and *done false
 * when items are still pending. */
int jobs_batch_finish_tx(store *s, int64_t id, const char *data_dir, int64_t now_ms,
                         int64_t expires_ms, bool *done, rouse_errbuf *eb);

#endif
