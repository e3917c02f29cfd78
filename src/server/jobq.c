/*
 * The job queue's calls (jobq.h), through the backend's table of
 * operations (jobq_int.h).
 */
#include "server/jobq.h"

#include <stddef.h>
#include <stdlib.h>

#include "server/jobq_int.h"

void jobq_destroy(jobq *q)
{
    if (q) q->ops->destroy(q);
}

const jobq_caps *jobq_caps_of(const jobq *q)
{
    return &q->caps;
}

void jobq_set_wake(jobq *q, jobq_wake_fn fn, void *user)
{
    q->wake = fn;
    q->wake_user = user;
}

void jobq_set_batch_wake(jobq *q, jobq_batch_wake_fn fn, void *user)
{
    q->batch_wake = fn;
    q->batch_wake_user = user;
}

int jobq_tick(jobq *q, int64_t now_ms)
{
    return q->ops->tick ? q->ops->tick(q, now_ms) : -1;
}

int jobq_get_async(jobq *q, int64_t id, bool with_result, jobq_get_fn done, void *user,
                   uint64_t *ticket)
{
    if (ticket) *ticket = 0;
    if (q->ops->get_async) return q->ops->get_async(q, id, with_result, done, user, ticket);
    job_info j;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = q->ops->get(q, id, with_result, &j, &eb);
    done(user, rc, &eb, rc == 0 ? &j : NULL, false);
    if (rc == 0) free(j.result);
    return 0;
}

int jobq_batch_get_async(jobq *q, int64_t id, int part, jobq_batch_fn done, void *user,
                         uint64_t *ticket)
{
    if (ticket) *ticket = 0;
    if (q->ops->batch_get_async) return q->ops->batch_get_async(q, id, part, done, user, ticket);
    batch_info bi;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = jobq_batch_get(q, id, &bi, &eb);
    done(user, rc, &eb, rc == 0 ? &bi : NULL, NULL, 0, false);
    return 0;
}

typedef struct list_acc {
    job_info *jobs;
    int n, cap;
} list_acc;

static int list_add(void *user, const job_info *j)
{
    list_acc *a = user;
    if (a->n == a->cap) return 1;
    a->jobs[a->n++] = *j;
    return 0;
}

int jobq_list_async(jobq *q, const char *function, int state, int64_t after_id, int limit,
                    jobq_list_fn done, void *user, uint64_t *ticket)
{
    if (ticket) *ticket = 0;
    if (limit < 1) limit = 1;
    if (limit > JOBQ_LIST_MAX) limit = JOBQ_LIST_MAX;
    if (q->ops->list_async)
        return q->ops->list_async(q, function, state, after_id, limit, done, user, ticket);
    list_acc a = {.jobs = calloc((size_t)limit, sizeof(job_info)), .cap = limit};
    if (!a.jobs) return ROUSE_ENOMEM;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = jobq_list(q, function, state, after_id, limit, list_add, &a, &eb);
    done(user, rc, &eb, a.jobs, rc == 0 ? a.n : 0, false);
    free(a.jobs);
    return 0;
}

int jobq_enqueue(jobq *q, const job_new *j, jobq_done_fn done, void *user, uint64_t *ticket)
{
    return q->ops->enqueue(q, j, done, user, ticket);
}

int jobq_lease(jobq *q, const char *function, int64_t now_ms, int max, jobq_done_fn done,
               void *user)
{
    return q->ops->lease(q, function, now_ms, max, done, user);
}

int jobq_settle_many(jobq *q, const job_settle *s, int n, jobq_done_fn done, void *user)
{
    return q->ops->settle_many(q, s, n, done, user);
}

int jobq_cancel(jobq *q, int64_t id, int64_t now_ms, int64_t expires_ms, bool leased_ok,
                jobq_done_fn done, void *user, uint64_t *ticket)
{
    return q->ops->cancel(q, id, now_ms, expires_ms, leased_ok, done, user, ticket);
}

int jobq_retry(jobq *q, int64_t id, int64_t now_ms, jobq_done_fn done, void *user,
               uint64_t *ticket)
{
    return q->ops->retry(q, id, now_ms, done, user, ticket);
}

int jobq_reset_running(jobq *q, jobq_done_fn done, void *user)
{
    return q->ops->reset_running(q, done, user);
}

int jobq_expire(jobq *q, int64_t now_ms, jobq_done_fn done, void *user)
{
    return q->ops->expire(q, now_ms, done, user);
}

int jobq_callback_status(jobq *q, int64_t id, int cb_state, int attempts, const char *error,
                         jobq_done_fn done, void *user)
{
    return q->ops->callback_status(q, id, cb_state, attempts, error, done, user);
}

static int no_batches(void)
{
    return ROUSE_EUNSUPPORTED;
}

int jobq_batch_create(jobq *q, const batch_new *b, jobq_done_fn done, void *user, uint64_t *ticket)
{
    if (!q->ops->batch_create) return no_batches();
    return q->ops->batch_create(q, b, done, user, ticket);
}

int jobq_batch_extend(jobq *q, int64_t id, int64_t max, jobq_done_fn done, void *user)
{
    if (!q->ops->batch_extend) return no_batches();
    return q->ops->batch_extend(q, id, max, done, user);
}

int jobq_batch_finish(jobq *q, int64_t id, int64_t now_ms, int64_t expires_ms, jobq_done_fn done,
                      void *user)
{
    if (!q->ops->batch_finish) return no_batches();
    return q->ops->batch_finish(q, id, now_ms, expires_ms, done, user);
}

void jobq_forget(jobq *q, uint64_t ticket)
{
    q->ops->forget(q, ticket);
}

int jobq_get(jobq *q, int64_t id, bool with_result, job_info *out, rouse_errbuf *eb)
{
    if (!q->ops->get) return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "jobs are read asynchronously here");
    return q->ops->get(q, id, with_result, out, eb);
}

int jobq_body(jobq *q, int64_t id, char **body, size_t *len, int64_t *json_len, rouse_errbuf *eb)
{
    if (!q->ops->body) return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "jobs are read asynchronously here");
    return q->ops->body(q, id, body, len, json_len, eb);
}

int jobq_list(jobq *q, const char *function, int state, int64_t after_id, int limit,
              int (*fn)(void *user, const job_info *j), void *user, rouse_errbuf *eb)
{
    if (!q->ops->list)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "jobs are listed asynchronously here");
    return q->ops->list(q, function, state, after_id, limit, fn, user, eb);
}

int jobq_active_counts(jobq *q, int (*fn)(void *user, const char *function, int64_t n_active),
                       void *user, rouse_errbuf *eb)
{
    return q->ops->active_counts(q, fn, user, eb);
}

int jobq_batch_get(jobq *q, int64_t id, batch_info *out, rouse_errbuf *eb)
{
    if (!q->ops->batch_get)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "batches are read asynchronously here");
    return q->ops->batch_get(q, id, out, eb);
}

int jobq_pending_batches(jobq *q, int (*fn)(void *user, int64_t id), void *user, rouse_errbuf *eb)
{
    return q->ops->pending_batches ? q->ops->pending_batches(q, fn, user, eb) : 0;
}

int jobq_next_expiry(jobq *q, int64_t *ms, rouse_errbuf *eb)
{
    return q->ops->next_expiry(q, ms, eb);
}

int jobq_creating_batches(jobq *q, int (*fn)(void *user, int64_t id, const char *function),
                          void *user, rouse_errbuf *eb)
{
    return q->ops->creating_batches ? q->ops->creating_batches(q, fn, user, eb) : 0;
}

int jobq_pending_callbacks(jobq *q, int (*fn)(void *user, int64_t id), void *user,
                           rouse_errbuf *eb)
{
    return q->ops->pending_callbacks(q, fn, user, eb);
}
