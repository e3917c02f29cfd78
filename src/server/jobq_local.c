/*
 * The embedded job queue (jobq.h): every change is an apply function over
 * a copy of its arguments, run by the registry's writer thread inside its
 * group transaction (store/writer.h), over the SQLite records of
 * store/jobs.h; reads go through the loop's connection.
 *
 * Arguments travel by value into the writer (it copies arg_len bytes), so
 * variable parts (a body, a result) sit at the end of the argument struct
 * and nothing in an argument is owned: a change whose callback is
 * forgotten, or dropped when the writer stops, leaks nothing. The one
 * exception is a lease, whose bodies the writer thread reads into memory
 * for its completion: the writer's release hook frees them, after the
 * completion or instead of it.
 */
#include "server/jobq.h"
#include "server/jobq_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/blob.h"

typedef struct jobq_local {
    jobq base;
    store_writer *w;
    store *st;
    char *data_dir;
} jobq_local;

#define L(q) ((jobq_local *)(q))

static const jobq_ops local_ops;

int jobq_create(store_writer *w, store *st, const char *data_dir, jobq **out, rouse_errbuf *eb)
{
    jobq_local *q = calloc(1, sizeof(*q));
    if (!q || !(q->data_dir = strdup(data_dir))) {
        free(q);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    q->base.ops = &local_ops;
    q->base.caps = (jobq_caps){.lease_ahead = true, .sync_reads = true, .batches = true};
    q->w = w;
    q->st = st;
    *out = &q->base;
    return 0;
}

static void local_destroy(jobq *q)
{
    free(L(q)->data_dir);
    free(L(q));
}

static void local_forget(jobq *q, uint64_t ticket)
{
    store_writer_cancel(L(q)->w, ticket);
}

/* Every argument starts with this: the caller's callback. */
typedef struct arg_head {
    jobq_done_fn done;
    void *user;
} arg_head;

/* Submits apply over arg (whose first member is an arg_head); complete
 * turns the argument, as apply left it, into the caller's reply. */
static int submit(jobq *q, store_write_apply apply, store_write_done complete, void *arg,
                  size_t len, jobq_done_fn done, void *user, uint64_t *ticket)
{
    arg_head *h = arg;
    h->done = done;
    h->user = user;
    return store_writer_submit(L(q)->w, apply, arg, len, complete, NULL, ticket);
}

static void reply_init(jobq_reply *r)
{
    memset(r, 0, sizeof(*r));
    r->next_ms = -1;
}

/* --- enqueue --------------------------------------------------------------- */

typedef struct enq_arg {
    arg_head h;
    char function[STORE_NAME_MAX + 1];
    int64_t version, json_len, now_ms, window_ms;
    char idem_key[JOB_IDEM_KEY_MAX + 1];
    char body_sha[65];
    char callback[JOB_CALLBACK_MAX + 1];
    int64_t id; /* result */
    bool existed;
    size_t body_len;
    char body[];
} enq_arg;

static int enq_apply(store *st, void *arg, rouse_errbuf *eb)
{
    enq_arg *a = arg;
    job_new j = {.function = a->function,
                 .version = a->version,
                 .body = a->body,
                 .body_len = a->body_len,
                 .json_len = a->json_len,
                 .idem_key = a->idem_key,
                 .body_sha = a->body_sha,
                 .callback = a->callback,
                 .now_ms = a->now_ms,
                 .idem_window_ms = a->window_ms};
    return jobs_enqueue_tx(st, &j, &a->id, &a->existed, eb);
}

static void enq_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)user;
    enq_arg *a = arg;
    jobq_reply r;
    reply_init(&r);
    r.id = a->id;
    r.existed = a->existed;
    a->h.done(a->h.user, rc, eb, &r);
}

static int local_enqueue(jobq *q, const job_new *j, jobq_done_fn done, void *user, uint64_t *ticket)
{
    size_t len = sizeof(enq_arg) + j->body_len;
    enq_arg *a = calloc(1, len);
    if (!a) return ROUSE_ENOMEM;
    snprintf(a->function, sizeof(a->function), "%s", j->function);
    a->version = j->version;
    a->json_len = j->json_len;
    a->now_ms = j->now_ms;
    a->window_ms = j->idem_window_ms;
    snprintf(a->idem_key, sizeof(a->idem_key), "%s", j->idem_key ? j->idem_key : "");
    snprintf(a->body_sha, sizeof(a->body_sha), "%s", j->body_sha ? j->body_sha : "");
    snprintf(a->callback, sizeof(a->callback), "%s", j->callback ? j->callback : "");
    a->body_len = j->body_len;
    if (j->body_len) memcpy(a->body, j->body, j->body_len);
    int rc = submit(q, enq_apply, enq_done, a, len, done, user, ticket);
    free(a);
    return rc;
}

/* --- lease ----------------------------------------------------------------- */

typedef struct lease_arg {
    arg_head h;
    const char *data_dir; /* the queue's, which outlives the writer's work */
    char function[STORE_NAME_MAX + 1];
    int64_t now_ms;
    int max;
    int n; /* results */
    int64_t next_ms;
    job_lease leases[JOBQ_LEASE_MAX];
    char *bodies[JOBQ_LEASE_MAX]; /* malloc'd on the writer thread, freed by lease_done */
    size_t body_lens[JOBQ_LEASE_MAX];
    int64_t json_lens[JOBQ_LEASE_MAX];
} lease_arg;

static void free_bodies(lease_arg *a)
{
    for (int i = 0; i < a->n; i++) {
        free(a->bodies[i]);
        a->bodies[i] = NULL;
    }
}

static int lease_apply(store *st, void *arg, rouse_errbuf *eb)
{
    lease_arg *a = arg;
    int rc = jobs_lease_tx(st, a->function, a->now_ms, a->max, a->leases, &a->n, &a->next_ms, eb);
    if (rc < 0) return rc;
    job_body_reader r;
    jobs_body_reader_init(&r, a->data_dir);
    rc = jobs_lease_bodies_tx(st, &r, a->leases, a->n, a->bodies, a->body_lens, a->json_lens, eb);
    jobs_body_reader_fini(&r);
    /* A failing write is undone: its leases did not happen (and no body
     * was kept). */
    return rc;
}

static void lease_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)user;
    lease_arg *a = arg;
    jobq_reply r;
    reply_init(&r);
    r.n = rc == 0 ? a->n : 0;
    r.leases = a->leases;
    r.next_ms = a->next_ms;
    r.bodies = a->bodies;
    r.body_lens = a->body_lens;
    r.json_lens = a->json_lens;
    a->h.done(a->h.user, rc, eb, &r);
}

static void lease_release(void *arg)
{
    free_bodies(arg);
}

static int local_lease(jobq *q, const char *function, int64_t now_ms, int max, jobq_done_fn done,
               void *user)
{
    lease_arg a;
    memset(&a, 0, sizeof(a));
    a.data_dir = L(q)->data_dir;
    snprintf(a.function, sizeof(a.function), "%s", function);
    a.now_ms = now_ms;
    a.max = max < 1 ? 1 : max > JOBQ_LEASE_MAX ? JOBQ_LEASE_MAX : max;
    a.h.done = done;
    a.h.user = user;
    /* The bodies are freed by the release hook: after the completion, or
     * instead of it when the writer stops first. */
    return store_writer_submit_release(L(q)->w, lease_apply, &a, sizeof(a), lease_done, lease_release,
                                       NULL, NULL);
}

/* --- settle ----------------------------------------------------------------- */

/* One run's end inside a settle write. Its variable parts (result, error,
 * result type) sit in the write's data area, after the items. */
typedef struct settle_item {
    int64_t id, now_ms, run_after_ms, expires_ms, result_json_len;
    int state, status;
    bool uncount, has_result;
    size_t result_off, result_len;
    size_t error_off, type_off; /* NUL-terminated; NO_TEXT for none */
    int rc;                     /* result: 0 or this run's own error */
    int64_t batch_left;         /* result: see jobq_reply */
} settle_item;

#define NO_TEXT SIZE_MAX

typedef struct settle_arg {
    arg_head h;
    const char *data_dir; /* the queue's, which outlives the writer's work */
    int n;
    size_t data_off; /* from the start of the argument */
    settle_item items[];
} settle_arg;

/* A large result goes to the blob store first (written and fsynced on the
 * writer thread, inside the group: the job's record then names a blob that
 * is durable, and collection counts the reference from the same commit). */
static int result_to_blob(const char *data_dir, const char *data, size_t len, char *digest,
                          rouse_errbuf *eb)
{
    blobstore *bs;
    int rc = blob_open_shared(data_dir, &bs, eb);
    if (rc < 0) return rc;
    blob_writer *w;
    if ((rc = blob_write_begin(bs, UINT64_MAX, &w, eb)) == 0) {
        if ((rc = blob_write(w, data, len, eb)) < 0)
            blob_write_abort(w);
        else {
            uint64_t size;
            rc = blob_write_commit(w, digest, &size, eb);
        }
    }
    blob_close(bs);
    return rc;
}

/* Every run's end in this one write (jobs_settle_many_tx): a run whose
 * job is no longer running, or whose large result could not be stored,
 * fails alone; a database error fails the write, undone whole by its
 * savepoint. Each batch that one of them ended an item of learns how many
 * items it has left, read inside the same transaction, so that the
 * dispatcher writes a batch's output as soon as its last item is durable. */
static int settle_apply(store *st, void *arg, rouse_errbuf *eb)
{
    settle_arg *a = arg;
    const char *data = (const char *)a + a->data_off;
    job_settle *xs = calloc((size_t)a->n, sizeof(*xs));
    char(*digests)[BLOB_DIGEST_LEN + 1] = calloc((size_t)a->n, sizeof(*digests));
    int *idx = calloc((size_t)a->n, sizeof(*idx));
    int *rcs = calloc((size_t)a->n, sizeof(*rcs));
    int64_t *left = calloc((size_t)a->n, sizeof(*left));
    int rc = 0, m = 0;
    if (!xs || !digests || !idx || !rcs || !left) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory recording %d run(s)", a->n);
        goto out_free;
    }
    for (int i = 0; i < a->n; i++) {
        settle_item *it = &a->items[i];
        it->batch_left = -1;
        job_settle *x = &xs[m];
        *x = (job_settle){.id = it->id,
                          .state = it->state,
                          .now_ms = it->now_ms,
                          .run_after_ms = it->run_after_ms,
                          .expires_ms = it->expires_ms,
                          .status = it->status,
                          .error = it->error_off != NO_TEXT ? data + it->error_off : NULL,
                          .result_type = it->type_off != NO_TEXT ? data + it->type_off : NULL,
                          .result_json_len = it->result_json_len,
                          .uncount = it->uncount};
        if (it->has_result && it->result_len > JOBQ_RESULT_INLINE_MAX) {
            rouse_errbuf beb;
            it->rc = result_to_blob(a->data_dir, data + it->result_off, it->result_len, digests[m],
                                    &beb);
            if (it->rc < 0) continue; /* stays running: queued again at the next start */
            x->result_digest = digests[m];
        } else if (it->has_result) {
            x->result = data + it->result_off;
            x->result_len = it->result_len;
        }
        idx[m++] = i;
    }
    if ((rc = jobs_settle_many_tx(st, xs, m, rcs, left, eb)) < 0) goto out_free;
    for (int k = 0; k < m; k++) {
        a->items[idx[k]].rc = rcs[k];
        a->items[idx[k]].batch_left = left[k];
    }
out_free:
    free(xs);
    free(digests);
    free(idx);
    free(rcs);
    free(left);
    return rc;
}

static void settle_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)user;
    settle_arg *a = arg;
    int settled[a->n > 0 ? a->n : 1];
    int64_t left[a->n > 0 ? a->n : 1];
    for (int i = 0; i < a->n; i++) {
        settled[i] = rc < 0 ? rc : a->items[i].rc;
        left[i] = rc < 0 ? -1 : a->items[i].batch_left;
    }
    jobq_reply r;
    reply_init(&r);
    r.n = a->n;
    r.settled = settled;
    r.batch_left = left;
    if (a->h.done) a->h.done(a->h.user, rc, eb, &r);
}

/* Appends t (NUL-terminated) to the data area at *at: its offset, or NO_TEXT. */
static size_t put_text(char *data, size_t *at, const char *t)
{
    if (!t || !*t) return NO_TEXT;
    size_t off = *at, len = strlen(t) + 1;
    memcpy(data + off, t, len);
    *at += len;
    return off;
}

static int local_settle_many(jobq *q, const job_settle *s, int n, jobq_done_fn done, void *user)
{
    if (n <= 0 || n > JOBQ_SETTLE_MAX) return ROUSE_EINVAL;
    size_t head = sizeof(settle_arg) + (size_t)n * sizeof(settle_item);
    size_t data_len = 0;
    for (int i = 0; i < n; i++) {
        data_len += s[i].result ? s[i].result_len : 0;
        data_len += s[i].error ? strlen(s[i].error) + 1 : 0;
        data_len += s[i].result_type ? strlen(s[i].result_type) + 1 : 0;
    }
    settle_arg *a = calloc(1, head + data_len);
    if (!a) return ROUSE_ENOMEM;
    a->data_dir = L(q)->data_dir;
    a->n = n;
    a->data_off = head;
    char *data = (char *)a + head;
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        const job_settle *x = &s[i];
        settle_item *it = &a->items[i];
        it->id = x->id;
        it->now_ms = x->now_ms;
        it->run_after_ms = x->run_after_ms;
        it->expires_ms = x->expires_ms;
        it->result_json_len = x->result_json_len;
        it->state = x->state;
        it->status = x->status;
        it->uncount = x->uncount;
        it->has_result = x->result != NULL;
        it->result_off = at;
        it->result_len = x->result ? x->result_len : 0;
        if (it->result_len) memcpy(data + at, x->result, it->result_len);
        at += it->result_len;
        it->error_off = put_text(data, &at, x->error);
        it->type_off = put_text(data, &at, x->result_type);
    }
    int rc = submit(q, settle_apply, settle_done, a, head + data_len, done, user, NULL);
    free(a);
    return rc;
}

/* --- small changes ----------------------------------------------------------- */

typedef struct id_arg {
    arg_head h;
    const char *data_dir;
    int64_t id, now_ms, expires_ms;
    int state, attempts; /* in: callback state; out: the job's state */
    bool leased_ok;
    char text[JOB_ERROR_MAX + 1];
    char function[STORE_NAME_MAX + 1];
    int64_t n;
    bool done;
} id_arg;

static int cancel_apply(store *st, void *arg, rouse_errbuf *eb)
{
    id_arg *a = arg;
    return jobs_cancel_tx(st, a->id, a->now_ms, a->expires_ms, a->leased_ok, &a->state, eb);
}

static int retry_apply(store *st, void *arg, rouse_errbuf *eb)
{
    id_arg *a = arg;
    return jobs_retry_tx(st, a->id, a->now_ms, a->function, &a->state, eb);
}

static int reset_apply(store *st, void *arg, rouse_errbuf *eb)
{
    id_arg *a = arg;
    return jobs_reset_running_tx(st, &a->n, eb);
}

static int expire_apply(store *st, void *arg, rouse_errbuf *eb)
{
    id_arg *a = arg;
    return jobs_expire_tx(st, a->now_ms, &a->n, eb);
}

static int callback_apply(store *st, void *arg, rouse_errbuf *eb)
{
    id_arg *a = arg;
    return jobs_callback_tx(st, a->id, a->state, a->attempts, a->text[0] ? a->text : NULL, eb);
}

static int finish_apply(store *st, void *arg, rouse_errbuf *eb)
{
    id_arg *a = arg;
    return jobs_batch_finish_tx(st, a->id, a->data_dir, a->now_ms, a->expires_ms, &a->done, eb);
}

static void id_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)user;
    id_arg *a = arg;
    jobq_reply r;
    reply_init(&r);
    r.id = a->id;
    r.state = a->state;
    snprintf(r.function, sizeof(r.function), "%s", a->function);
    r.n_items = a->n;
    r.done = a->done;
    if (a->h.done) a->h.done(a->h.user, rc, eb, &r);
}

static int submit_id(jobq *q, store_write_apply apply, id_arg *a, jobq_done_fn done, void *user,
                     uint64_t *ticket)
{
    a->data_dir = L(q)->data_dir;
    return submit(q, apply, id_done, a, sizeof(*a), done, user, ticket);
}

static int local_cancel(jobq *q, int64_t id, int64_t now_ms, int64_t expires_ms, bool leased_ok,
                jobq_done_fn done, void *user, uint64_t *ticket)
{
    id_arg a = {.id = id, .now_ms = now_ms, .expires_ms = expires_ms, .leased_ok = leased_ok};
    return submit_id(q, cancel_apply, &a, done, user, ticket);
}

static int local_retry(jobq *q, int64_t id, int64_t now_ms, jobq_done_fn done, void *user, uint64_t *ticket)
{
    id_arg a = {.id = id, .now_ms = now_ms};
    return submit_id(q, retry_apply, &a, done, user, ticket);
}

static int local_reset_running(jobq *q, jobq_done_fn done, void *user)
{
    id_arg a = {0};
    return submit_id(q, reset_apply, &a, done, user, NULL);
}

static int local_expire(jobq *q, int64_t now_ms, jobq_done_fn done, void *user)
{
    id_arg a = {.now_ms = now_ms};
    return submit_id(q, expire_apply, &a, done, user, NULL);
}

static int local_callback_status(jobq *q, int64_t id, int cb_state, int attempts, const char *error,
                         jobq_done_fn done, void *user)
{
    id_arg a = {.id = id, .state = cb_state, .attempts = attempts};
    snprintf(a.text, sizeof(a.text), "%s", error ? error : "");
    return submit_id(q, callback_apply, &a, done, user, NULL);
}

static int local_batch_finish(jobq *q, int64_t id, int64_t now_ms, int64_t expires_ms, jobq_done_fn done,
                      void *user)
{
    id_arg a = {.id = id, .now_ms = now_ms, .expires_ms = expires_ms};
    return submit_id(q, finish_apply, &a, done, user, NULL);
}

/* --- batches ----------------------------------------------------------------- */

typedef struct batch_arg {
    arg_head h;
    char function[STORE_NAME_MAX + 1];
    int64_t version, now_ms, max_line, max_items, chunk;
    char input_digest[STORE_DIGEST_LEN + 1];
    char input_path[4096 + 128];
    int64_t id, n_items; /* results */
} batch_arg;

static int batch_apply(store *st, void *arg, rouse_errbuf *eb)
{
    batch_arg *a = arg;
    batch_new b = {.function = a->function,
                   .version = a->version,
                   .input_digest = a->input_digest,
                   .input_path = a->input_path,
                   .now_ms = a->now_ms,
                   .max_line = a->max_line,
                   .max_items = a->max_items,
                   .chunk = a->chunk};
    return jobs_batch_create_tx(st, &b, &a->id, &a->n_items, eb);
}

static void batch_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)user;
    batch_arg *a = arg;
    jobq_reply r;
    reply_init(&r);
    r.id = a->id;
    r.n_items = a->n_items;
    r.done = a->chunk <= 0 || a->n_items <= a->chunk;
    a->h.done(a->h.user, rc, eb, &r);
}

static int local_batch_create(jobq *q, const batch_new *b, jobq_done_fn done, void *user, uint64_t *ticket)
{
    batch_arg *a = calloc(1, sizeof(*a));
    if (!a) return ROUSE_ENOMEM;
    snprintf(a->function, sizeof(a->function), "%s", b->function);
    a->version = b->version;
    a->now_ms = b->now_ms;
    a->max_line = b->max_line;
    a->max_items = b->max_items;
    a->chunk = b->chunk;
    snprintf(a->input_digest, sizeof(a->input_digest), "%s", b->input_digest);
    snprintf(a->input_path, sizeof(a->input_path), "%s", b->input_path);
    int rc = submit(q, batch_apply, batch_done, a, sizeof(*a), done, user, ticket);
    free(a);
    return rc;
}

typedef struct extend_arg {
    arg_head h;
    const char *data_dir; /* the queue's, which outlives the writer's work */
    int64_t id, max;
    int64_t n_new; /* results */
    bool complete;
} extend_arg;

static int extend_apply(store *st, void *arg, rouse_errbuf *eb)
{
    extend_arg *a = arg;
    return jobs_batch_extend_tx(st, a->id, a->data_dir, a->max, &a->n_new, &a->complete, eb);
}

static void extend_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)user;
    extend_arg *a = arg;
    jobq_reply r;
    reply_init(&r);
    r.id = a->id;
    r.n_items = a->n_new;
    r.done = a->complete;
    a->h.done(a->h.user, rc, eb, &r);
}

static int local_batch_extend(jobq *q, int64_t id, int64_t max, jobq_done_fn done, void *user)
{
    extend_arg a = {.data_dir = L(q)->data_dir, .id = id, .max = max};
    return submit(q, extend_apply, extend_done, &a, sizeof(a), done, user, NULL);
}

/* --- reads ---------------------------------------------------------------------- */

static int local_get(jobq *q, int64_t id, bool with_result, job_info *out, rouse_errbuf *eb)
{
    return jobs_get(L(q)->st, id, with_result, out, eb);
}

static int local_body(jobq *q, int64_t id, char **body, size_t *len, int64_t *json_len, rouse_errbuf *eb)
{
    return jobs_body_get(L(q)->st, L(q)->data_dir, id, body, len, json_len, eb);
}

static int local_list(jobq *q, const char *function, int state, int64_t after_id, int limit,
              int (*fn)(void *user, const job_info *j), void *user, rouse_errbuf *eb)
{
    return jobs_list(L(q)->st, function, state, after_id, limit, fn, user, eb);
}

static int local_active_counts(jobq *q, int (*fn)(void *user, const char *function, int64_t n_active),
                       void *user, rouse_errbuf *eb)
{
    return jobs_active_counts(L(q)->st, fn, user, eb);
}

static int local_batch_get(jobq *q, int64_t id, batch_info *out, rouse_errbuf *eb)
{
    return jobs_batch_get(L(q)->st, id, out, eb);
}

static int local_pending_batches(jobq *q, int (*fn)(void *user, int64_t id), void *user, rouse_errbuf *eb)
{
    return jobs_pending_batches(L(q)->st, fn, user, eb);
}

static int local_next_expiry(jobq *q, int64_t *ms, rouse_errbuf *eb)
{
    return jobs_next_expiry(L(q)->st, ms, eb);
}

static int local_pending_callbacks(jobq *q, int (*fn)(void *user, int64_t id), void *user, rouse_errbuf *eb)
{
    return jobs_pending_callbacks(L(q)->st, fn, user, eb);
}

static int local_creating_batches(jobq *q, int (*fn)(void *user, int64_t id, const char *function),
                          void *user, rouse_errbuf *eb)
{
    return jobs_creating_batches(L(q)->st, fn, user, eb);
}

static const jobq_ops local_ops = {
    .destroy = local_destroy,
    .enqueue = local_enqueue,
    .lease = local_lease,
    .settle_many = local_settle_many,
    .cancel = local_cancel,
    .retry = local_retry,
    .reset_running = local_reset_running,
    .expire = local_expire,
    .callback_status = local_callback_status,
    .batch_create = local_batch_create,
    .batch_extend = local_batch_extend,
    .batch_finish = local_batch_finish,
    .forget = local_forget,
    .get = local_get,
    .body = local_body,
    .list = local_list,
    .active_counts = local_active_counts,
    .batch_get = local_batch_get,
    .pending_batches = local_pending_batches,
    .next_expiry = local_next_expiry,
    .creating_batches = local_creating_batches,
    .pending_callbacks = local_pending_callbacks,
};
