/*
 * The job queue's backends (jobq.h): each is a table of operations behind
 * the jobq handle, whose first member is the table. jobq.c turns the
 * public calls into calls through it.
 *
 * - jobq_local.c: the embedded queue over the registry's writer thread
 *   (SQLite, store/jobs.h), for one machine.
 * - jobq_cluster.c: several nodes, records in PostgreSQL
 *   (store/jobs_pg.h) and delivery through NATS JetStream.
 */
#ifndef ROUSE_SERVER_JOBQ_INT_H
#define ROUSE_SERVER_JOBQ_INT_H

#include "server/jobq.h"

typedef struct jobq_ops {
    void (*destroy)(jobq *q);
    int (*enqueue)(jobq *q, const job_new *j, jobq_done_fn done, void *user, uint64_t *ticket);
    int (*lease)(jobq *q, const char *function, int64_t now_ms, int max, jobq_done_fn done,
                 void *user);
    int (*settle_many)(jobq *q, const job_settle *s, int n, jobq_done_fn done, void *user);
    int (*cancel)(jobq *q, int64_t id, int64_t now_ms, int64_t expires_ms, bool leased_ok,
                  jobq_done_fn done, void *user, uint64_t *ticket);
    int (*retry)(jobq *q, int64_t id, int64_t now_ms, jobq_done_fn done, void *user,
                 uint64_t *ticket);
    int (*reset_running)(jobq *q, jobq_done_fn done, void *user);
    int (*expire)(jobq *q, int64_t now_ms, jobq_done_fn done, void *user);
    int (*callback_status)(jobq *q, int64_t id, int cb_state, int attempts, const char *error,
                           jobq_done_fn done, void *user);
    int (*batch_create)(jobq *q, const batch_new *b, jobq_done_fn done, void *user,
                        uint64_t *ticket);
    int (*batch_extend)(jobq *q, int64_t id, int64_t max, jobq_done_fn done, void *user);
    int (*batch_finish)(jobq *q, int64_t id, int64_t now_ms, int64_t expires_ms,
                        jobq_done_fn done, void *user);
    void (*forget)(jobq *q, uint64_t ticket);
    int (*get_async)(jobq *q, int64_t id, bool with_result, jobq_get_fn done, void *user,
                     uint64_t *ticket);
    int (*list_async)(jobq *q, const char *function, int state, int64_t after_id, int limit,
                      jobq_list_fn done, void *user, uint64_t *ticket);
    int (*batch_get_async)(jobq *q, int64_t id, int part, jobq_batch_fn done, void *user,
                           uint64_t *ticket);
    int (*tick)(jobq *q, int64_t now_ms);
    int (*get)(jobq *q, int64_t id, bool with_result, job_info *out, rouse_errbuf *eb);
    int (*body)(jobq *q, int64_t id, char **body, size_t *len, int64_t *json_len,
                rouse_errbuf *eb);
    int (*list)(jobq *q, const char *function, int state, int64_t after_id, int limit,
                int (*fn)(void *user, const job_info *j), void *user, rouse_errbuf *eb);
    int (*active_counts)(jobq *q, int (*fn)(void *user, const char *function, int64_t n_active),
                         void *user, rouse_errbuf *eb);
    int (*batch_get)(jobq *q, int64_t id, batch_info *out, rouse_errbuf *eb);
    int (*pending_batches)(jobq *q, int (*fn)(void *user, int64_t id), void *user,
                           rouse_errbuf *eb);
    int (*next_expiry)(jobq *q, int64_t *ms, rouse_errbuf *eb);
    int (*creating_batches)(jobq *q, int (*fn)(void *user, int64_t id, const char *function),
                            void *user, rouse_errbuf *eb);
    int (*pending_callbacks)(jobq *q, int (*fn)(void *user, int64_t id), void *user,
                             rouse_errbuf *eb);
} jobq_ops;

struct jobq {
    const jobq_ops *ops;
    jobq_caps caps;
    jobq_wake_fn wake;
    void *wake_user;
    jobq_batch_wake_fn batch_wake;
    void *batch_wake_user;
};

#endif
