/*
 * The job queue of several nodes (jobq_cluster.h): the operations of
 * jobq_int.h as writes on a thread of the queue's own, over its own
 * PostgreSQL connection (store/jobs_pg.h) and NATS connection (libnats,
 * JetStream).
 *
 * Thread ownership: the fields under "writer thread" are touched only by
 * apply functions (and by create and destroy, before the thread starts and
 * after it stopped); the rest belongs to the loop. Each argument names the
 * queue, which outlives every write (destroy stops the writer first).
 *
 * Messages the node holds (leased jobs) stay in `held` with the attempt
 * they leased until the run's end is recorded: a heartbeat write renews
 * their leases in PostgreSQL and sends JetStream an in-progress ack for
 * each, every third of the ack wait.
 */
#include "server/jobq_cluster.h"

#include <inttypes.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/jobq_int.h"
#include "store/jobs_pg.h"
#include "store/writer.h"

#define MOD "jobs"
#define STREAM "ROUSE_JOBS"
#define SUBJECT_PREFIX "rouse.jobs."
#define ACK_WAIT_DEFAULT_MS 30000
/* A function with nothing to fetch is asked again after this long. */
#define POLL_MS 250
/* How long a fetch waits when nothing is there. */
#define FETCH_WAIT_MS 50
/* Jobs not published this long after their commit are published again. */
#define SWEEP_AFTER_MS 3000
#define SWEEP_MAX 256
#define PUBLISH_WAIT_MS 2000
#define EXPIRE_EVERY_MS 5000
/* A batch whose creation made no progress this long is taken over. */
#define BATCH_STALL_MS 5000
/* How often a node asks which functions have jobs waiting: the delay before
 * a node that did not take a job in sees it (one query a node this often). */
#define SEEK_EVERY_MS 500
#define WAKE_MAX 64
#define TOKEN_MAX (2 * STORE_NAME_MAX + 16)

typedef struct held {
    int64_t id;
    int attempts;
    natsMsg *m;
} held;

typedef struct csub {
    char function[STORE_NAME_MAX + 1];
    natsSubscription *sub;
    struct csub *next;
} csub;

typedef struct jobq_cl {
    jobq base;
    store_writer *w;
    char *state_url, *bus_url;
    char node[128], holder[192];
    int64_t ack_wait_ms;
    jobs_pg_holder h;
    /* writer thread */
    PGconn *pg;
    natsConnection *nc;
    jsCtx *js;
    csub *subs;
    held *held;
    int n_held, cap_held;
    /* loop */
    PGconn *pg_start; /* start-time reads, closed at the first tick */
    int64_t next_hb_ms, next_seek_ms;
    bool hb_flight, seek_flight;
} jobq_cl;

#define C(q) ((jobq_cl *)(q))

static const jobq_ops cluster_ops;

/* --- names ------------------------------------------------------------------ */

/* A function key as a subject token and consumer name: hex (keys may hold
 * '/', and a token may not hold '.', '*' or '>'). */
static void hex_of(const char *function, char *out, size_t cap)
{
    static const char H[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)function; *p && o + 3 < cap; p++) {
        out[o++] = H[*p >> 4];
        out[o++] = H[*p & 15];
    }
    out[o] = '\0';
}

static void subject_of(const char *function, char *out, size_t cap)
{
    char hex[TOKEN_MAX];
    hex_of(function, hex, sizeof(hex));
    snprintf(out, cap, SUBJECT_PREFIX "%s", hex);
}

/* --- connections (writer thread) ----------------------------------------------- */

static int pg_ready(jobq_cl *c, rouse_errbuf *eb)
{
    if (c->pg && PQstatus(c->pg) == CONNECTION_OK) return 0;
    if (c->pg) PQfinish(c->pg);
    c->pg = NULL;
    return jobs_pg_connect(c->state_url, &c->pg, eb);
}

static int nats_fail(natsStatus s, jsErrCode jerr, rouse_errbuf *eb, const char *what)
{
    return rouse_err_set(eb, ROUSE_EIO, "NATS, %s: %s (%d)", what, natsStatus_GetText(s),
                         (int)jerr);
}

/* Publishes job id's message; its message id names the job and its
 * re-drive, so that a second publish of the same (the sweep's, after one
 * that arrived but was not marked) is dropped by JetStream within its
 * duplicate window. */
static int publish(jobq_cl *c, const char *function, int64_t id, int drives, rouse_errbuf *eb)
{
    char subj[TOKEN_MAX + 16], data[24], msgid[32];
    subject_of(function, subj, sizeof(subj));
    int n = snprintf(data, sizeof(data), "%" PRId64, id);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = PUBLISH_WAIT_MS;
    snprintf(msgid, sizeof(msgid), "job-%" PRId64 "-%d", id, drives);
    po.MsgId = msgid;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Publish(&pa, c->js, subj, data, n, &po, &jerr);
    jsPubAck_Destroy(pa);
    return s == NATS_OK ? 0 : nats_fail(s, jerr, eb, "publishing a job");
}

/* The function's pull subscription on its durable consumer, made once. */
static int sub_of(jobq_cl *c, const char *function, natsSubscription **out, rouse_errbuf *eb)
{
    for (csub *s = c->subs; s; s = s->next)
        if (strcmp(s->function, function) == 0) {
            *out = s->sub;
            return 0;
        }
    char subj[TOKEN_MAX + 16], durable[TOKEN_MAX + 16], hex[TOKEN_MAX];
    subject_of(function, subj, sizeof(subj));
    hex_of(function, hex, sizeof(hex));
    snprintf(durable, sizeof(durable), "rouse_jobs_%s", hex);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = c->ack_wait_ms * 1000000;
    cc.MaxDeliver = -1;
    cc.MaxAckPending = 100000;
    cc.FilterSubject = subj;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddConsumer(&ci, c->js, STREAM, &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    /* Another node made it first: the same consumer, shared. */
    if (s != NATS_OK) LOG_DEBUG(MOD, "consumer %s: %s (%d)", durable, natsStatus_GetText(s), jerr);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = STREAM;
    so.Consumer = durable;
    natsSubscription *sub = NULL;
    s = js_PullSubscribe(&sub, c->js, subj, durable, NULL, &so, &jerr);
    if (s != NATS_OK) return nats_fail(s, jerr, eb, "subscribing to a function's jobs");
    csub *n = calloc(1, sizeof(*n));
    if (!n) {
        natsSubscription_Destroy(sub);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    snprintf(n->function, sizeof(n->function), "%s", function);
    n->sub = sub;
    n->next = c->subs;
    c->subs = n;
    *out = sub;
    return 0;
}

static held *held_find(jobq_cl *c, int64_t id)
{
    for (int i = 0; i < c->n_held; i++)
        if (c->held[i].id == id) return &c->held[i];
    return NULL;
}

static int held_add(jobq_cl *c, int64_t id, int attempts, natsMsg *m)
{
    if (c->n_held == c->cap_held) {
        int cap = c->cap_held ? 2 * c->cap_held : 64;
        held *h = realloc(c->held, (size_t)cap * sizeof(*h));
        if (!h) return ROUSE_ENOMEM;
        c->held = h;
        c->cap_held = cap;
    }
    c->held[c->n_held++] = (held){.id = id, .attempts = attempts, .m = m};
    return 0;
}

/* Forgets a held message (acked or not, as the caller did). */
static void held_drop(jobq_cl *c, held *h)
{
    natsMsg_Destroy(h->m);
    *h = c->held[--c->n_held];
}

/* --- writes ------------------------------------------------------------------ */

typedef struct arg_head {
    jobq_cl *c;
    jobq_done_fn done;
    void *user;
} arg_head;

static void reply_init(jobq_reply *r)
{
    memset(r, 0, sizeof(*r));
    r->next_ms = -1;
}

static int submit(jobq_cl *c, store_write_apply apply, store_write_done complete,
                  store_write_release release, void *arg, size_t len, jobq_done_fn done,
                  void *user, uint64_t *ticket)
{
    arg_head *h = arg;
    h->c = c;
    h->done = done;
    h->user = user;
    return store_writer_submit_release(c->w, apply, arg, len, complete, release, NULL, ticket);
}

/* enqueue */

typedef struct enq_arg {
    arg_head h;
    char function[STORE_NAME_MAX + 1];
    int64_t version, json_len, now_ms, window_ms;
    char idem_key[JOB_IDEM_KEY_MAX + 1];
    char body_sha[65];
    char callback[JOB_CALLBACK_MAX + 1];
    int64_t id;
    bool existed;
    size_t body_len;
    char body[];
} enq_arg;

static int enq_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    enq_arg *a = arg;
    jobq_cl *c = a->h.c;
    int rc = pg_ready(c, eb);
    if (rc < 0) return rc;
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
    bool published;
    if ((rc = jobs_pg_enqueue(c->pg, &j, &a->id, &a->existed, &published, eb)) < 0) return rc;
    if (published) return 0;
    /* Committed: the job is accepted whatever the bus says now; the sweep
     * publishes it if this does not. */
    rouse_errbuf peb;
    if (publish(c, a->function, a->id, 0, &peb) < 0 ||
        jobs_pg_mark_published(c->pg, a->id, &peb) < 0)
        LOG_WARN(MOD, "job %lld: %s (published again by the sweep)", (long long)a->id, peb.msg);
    return 0;
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

static int cl_enqueue(jobq *q, const job_new *j, jobq_done_fn done, void *user, uint64_t *ticket)
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
    int rc = submit(C(q), enq_apply, enq_done, NULL, a, len, done, user, ticket);
    free(a);
    return rc;
}

/* lease */

typedef struct lease_arg {
    arg_head h;
    char function[STORE_NAME_MAX + 1];
    int64_t now_ms;
    int max;
    int n;
    int64_t next_ms;
    job_lease leases[JOBQ_LEASE_MAX];
    char *bodies[JOBQ_LEASE_MAX];
    size_t body_lens[JOBQ_LEASE_MAX];
    int64_t json_lens[JOBQ_LEASE_MAX];
} lease_arg;

/* One fetched message: leased (kept), done with (acked), or not for now
 * (NAK'd with a delay). */
static int lease_msg(jobq_cl *c, lease_arg *a, natsMsg *m, rouse_errbuf *eb)
{
    char idb[24];
    int dl = natsMsg_GetDataLength(m);
    snprintf(idb, sizeof(idb), "%.*s", dl < 23 ? dl : 23, natsMsg_GetData(m));
    int64_t id = strtoll(idb, NULL, 10);
    if (id <= 0) {
        LOG_WARN(MOD, "a message of %s names no job ('%s'): dropped", a->function, idb);
        natsMsg_Term(m, NULL);
        natsMsg_Destroy(m);
        return 0;
    }
    job_lease *l = &a->leases[a->n];
    int64_t wait = 0;
    int rc = jobs_pg_lease(c->pg, id, &c->h, a->now_ms, l, &a->bodies[a->n], &a->body_lens[a->n],
                           &a->json_lens[a->n], &wait, eb);
    if (rc == ROUSE_ESTATE) {
        natsMsg_Ack(m, NULL);
        natsMsg_Destroy(m);
        return 0;
    }
    if (rc == ROUSE_EBUSY) {
        natsMsg_NakWithDelay(m, wait, NULL);
        natsMsg_Destroy(m);
        return 0;
    }
    if (rc < 0) {
        /* Delivered again later (the lease may have happened: it runs out). */
        natsMsg_NakWithDelay(m, 1000, NULL);
        natsMsg_Destroy(m);
        return rc;
    }
    if (held_add(c, id, l->attempts, m) < 0) {
        free(a->bodies[a->n]);
        a->bodies[a->n] = NULL;
        natsMsg_Destroy(m);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    a->n++;
    return 0;
}

static int lease_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    lease_arg *a = arg;
    jobq_cl *c = a->h.c;
    a->n = 0;
    a->next_ms = a->now_ms + POLL_MS;
    int rc = pg_ready(c, eb);
    natsSubscription *sub;
    if (rc < 0 || (rc = sub_of(c, a->function, &sub, eb)) < 0) return rc;
    /* What is there now (a partial batch comes back at once); with
     * nothing there, a short wait. */
    natsMsgList list = {0};
    jsErrCode jerr = 0;
    natsStatus s = natsSubscription_Fetch(&list, sub, a->max, FETCH_WAIT_MS, &jerr);
    if (s != NATS_OK && list.Count == 0) {
        if (s != NATS_TIMEOUT && s != NATS_NOT_FOUND)
            LOG_DEBUG(MOD, "fetching jobs of %s: %s", a->function, natsStatus_GetText(s));
        return 0;
    }
    for (int i = 0; i < list.Count; i++) {
        natsMsg *m = list.Msgs[i];
        list.Msgs[i] = NULL;
        if (rc < 0) {
            natsMsg_NakWithDelay(m, 1000, NULL);
            natsMsg_Destroy(m);
            continue;
        }
        rc = lease_msg(c, a, m, eb);
    }
    natsMsgList_Destroy(&list);
    if (a->n > 0) a->next_ms = a->now_ms;
    /* Leased before an error stay leased: they run. */
    return a->n > 0 ? 0 : rc;
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
    lease_arg *a = arg;
    for (int i = 0; i < a->n; i++)
        free(a->bodies[i]);
    a->n = 0;
}

static int cl_lease(jobq *q, const char *function, int64_t now_ms, int max, jobq_done_fn done,
                    void *user)
{
    lease_arg *a = calloc(1, sizeof(*a));
    if (!a) return ROUSE_ENOMEM;
    snprintf(a->function, sizeof(a->function), "%s", function);
    a->now_ms = now_ms;
    a->max = max < 1 ? 1 : max > JOBQ_LEASE_MAX ? JOBQ_LEASE_MAX : max;
    int rc = submit(C(q), lease_apply, lease_done, lease_release, a, sizeof(*a), done, user, NULL);
    free(a);
    return rc;
}

/* settle */

typedef struct settle_item {
    job_settle s; /* its pointers rebased into the argument's data on the thread */
    size_t result_off, error_off, type_off;
    bool has_result, has_error, has_type;
    int rc;
    int64_t batch, batch_left; /* results: see jobq_reply */
} settle_item;

typedef struct settle_arg {
    arg_head h;
    int n;
    size_t data_off;
    settle_item items[];
} settle_arg;

static int settle_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    settle_arg *a = arg;
    jobq_cl *c = a->h.c;
    const char *data = (const char *)a + a->data_off;
    int rc = pg_ready(c, eb);
    for (int i = 0; i < a->n; i++) {
        settle_item *it = &a->items[i];
        job_settle *x = &it->s;
        x->result = it->has_result ? data + it->result_off : NULL;
        x->error = it->has_error ? data + it->error_off : NULL;
        x->result_type = it->has_type ? data + it->type_off : NULL;
        held *h = held_find(c, x->id);
        if (!h) {
            it->rc = rouse_err_set(eb, ROUSE_ESTATE, "job %lld is not held here",
                                   (long long)x->id);
            continue;
        }
        rouse_errbuf ieb;
        it->rc = rc < 0 ? rc : jobs_pg_settle(c->pg, &c->h, h->attempts, x, &it->batch, &ieb);
        if (it->rc == 0 && x->state == JOB_QUEUED) {
            int64_t d = x->run_after_ms - x->now_ms;
            natsMsg_NakWithDelay(h->m, d > 0 ? d : 0, NULL);
        } else if (it->rc == 0) {
            natsMsg_Ack(h->m, NULL);
        } else if (it->rc != ROUSE_ESTATE) {
            LOG_WARN(MOD, "job %lld: recording its end: %s (it runs again)", (long long)x->id,
                     ieb.msg);
        }
        /* Not recorded: no longer renewed, so delivered again and taken
         * over once its lease ran out. */
        held_drop(c, h);
    }
    /* Each batch that a run ended an item of: how many items it has left,
     * counted after the ends were committed (of two nodes ending a batch's
     * last items at once, the later count is 0 at least once). */
    int64_t batch = 0, left = -1;
    for (int i = a->n - 1; i >= 0; i--) {
        settle_item *it = &a->items[i];
        it->batch_left = -1;
        if (it->rc < 0 || it->batch <= 0 || it->s.state == JOB_QUEUED) continue;
        if (it->batch != batch) {
            rouse_errbuf beb;
            batch = it->batch;
            if (jobs_pg_batch_left(c->pg, batch, &left, &beb) < 0) left = -1;
        }
        it->batch_left = left;
    }
    return 0;
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

static int cl_settle_many(jobq *q, const job_settle *s, int n, jobq_done_fn done, void *user)
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
    a->n = n;
    a->data_off = head;
    char *data = (char *)a + head;
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        settle_item *it = &a->items[i];
        it->s = s[i];
        it->s.result = it->s.error = it->s.result_type = NULL;
        if ((it->has_result = s[i].result != NULL)) {
            it->result_off = at;
            if (s[i].result_len) memcpy(data + at, s[i].result, s[i].result_len);
            at += s[i].result_len;
        }
        if ((it->has_error = s[i].error != NULL)) {
            it->error_off = at;
            size_t l = strlen(s[i].error) + 1;
            memcpy(data + at, s[i].error, l);
            at += l;
        }
        if ((it->has_type = s[i].result_type != NULL)) {
            it->type_off = at;
            size_t l = strlen(s[i].result_type) + 1;
            memcpy(data + at, s[i].result_type, l);
            at += l;
        }
    }
    int rc = submit(C(q), settle_apply, settle_done, NULL, a, head + data_len, done, user, NULL);
    free(a);
    return rc;
}

/* small changes */

typedef struct id_arg {
    arg_head h;
    int64_t id, now_ms, expires_ms;
    int state, attempts;
    bool leased_ok;
    char text[JOB_ERROR_MAX + 1];
    char function[STORE_NAME_MAX + 1];
    int64_t n;
} id_arg;

static int cancel_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    id_arg *a = arg;
    jobq_cl *c = a->h.c;
    int rc = pg_ready(c, eb);
    if (rc < 0) return rc;
    rc = jobs_pg_cancel(c->pg, &c->h, a->id, a->now_ms, a->expires_ms, a->leased_ok, &a->state,
                        eb);
    held *h = rc == 0 ? held_find(c, a->id) : NULL;
    if (h) {
        natsMsg_Ack(h->m, NULL);
        held_drop(c, h);
    }
    return rc;
}

static int retry_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    id_arg *a = arg;
    jobq_cl *c = a->h.c;
    int rc = pg_ready(c, eb), drives = 0;
    if (rc < 0 || (rc = jobs_pg_retry(c->pg, a->id, a->function, &a->state, &drives, eb)) < 0)
        return rc;
    rouse_errbuf peb;
    if (publish(c, a->function, a->id, drives, &peb) < 0 ||
        jobs_pg_mark_published(c->pg, a->id, &peb) < 0)
        LOG_WARN(MOD, "job %lld: %s (published again by the sweep)", (long long)a->id, peb.msg);
    return 0;
}

static int nothing_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    (void)arg;
    (void)eb;
    return 0;
}

static int expire_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    id_arg *a = arg;
    int rc = pg_ready(a->h.c, eb);
    return rc < 0 ? rc : jobs_pg_expire(a->h.c->pg, a->now_ms, &a->n, eb);
}

static int callback_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    id_arg *a = arg;
    int rc = pg_ready(a->h.c, eb);
    return rc < 0 ? rc
                  : jobs_pg_callback(a->h.c->pg, a->id, a->state, a->attempts,
                                     a->text[0] ? a->text : NULL, eb);
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
    if (a->h.done) a->h.done(a->h.user, rc, eb, &r);
}

static int submit_id(jobq *q, store_write_apply apply, id_arg *a, jobq_done_fn done, void *user,
                     uint64_t *ticket)
{
    return submit(C(q), apply, id_done, NULL, a, sizeof(*a), done, user, ticket);
}

static int cl_cancel(jobq *q, int64_t id, int64_t now_ms, int64_t expires_ms, bool leased_ok,
                     jobq_done_fn done, void *user, uint64_t *ticket)
{
    id_arg a = {.id = id, .now_ms = now_ms, .expires_ms = expires_ms, .leased_ok = leased_ok};
    return submit_id(q, cancel_apply, &a, done, user, ticket);
}

static int cl_retry(jobq *q, int64_t id, int64_t now_ms, jobq_done_fn done, void *user,
                    uint64_t *ticket)
{
    id_arg a = {.id = id, .now_ms = now_ms};
    return submit_id(q, retry_apply, &a, done, user, ticket);
}

/* A job another node left running is taken over once its lease ran out
 * (lease_apply): nothing to queue again at the start. */
static int cl_reset_running(jobq *q, jobq_done_fn done, void *user)
{
    id_arg a = {0};
    return submit_id(q, nothing_apply, &a, done, user, NULL);
}

static int cl_expire(jobq *q, int64_t now_ms, jobq_done_fn done, void *user)
{
    id_arg a = {.now_ms = now_ms};
    return submit_id(q, expire_apply, &a, done, user, NULL);
}

static int cl_callback_status(jobq *q, int64_t id, int cb_state, int attempts, const char *error,
                              jobq_done_fn done, void *user)
{
    id_arg a = {.id = id, .state = cb_state, .attempts = attempts};
    snprintf(a.text, sizeof(a.text), "%s", error ? error : "");
    return submit_id(q, callback_apply, &a, done, user, NULL);
}

static void cl_forget(jobq *q, uint64_t ticket)
{
    store_writer_cancel(C(q)->w, ticket);
}

/* batch files: the items a write created are published after its commit
 * (what is not is the sweep's, like an enqueue's) */

static void publish_items(jobq_cl *c, const char *function, const int64_t *ids, int n)
{
    rouse_errbuf peb;
    int k = 0;
    while (k < n && publish(c, function, ids[k], 0, &peb) == 0)
        k++;
    if (k < n)
        LOG_WARN(MOD, "batch items of %s: %s (%d published again by the sweep)", function, peb.msg,
                 n - k);
    if (k > 0 && jobs_pg_mark_published_many(c->pg, ids, k, &peb) < 0)
        LOG_WARN(MOD, "batch items of %s: %s (published again by the sweep)", function, peb.msg);
}

typedef struct batch_arg {
    arg_head h;
    char function[STORE_NAME_MAX + 1];
    int64_t version, now_ms, max_line, max_items, chunk;
    char input_digest[STORE_DIGEST_LEN + 1];
    char input_path[4096 + 128];
    int64_t id, n_items; /* results */
    bool complete;
} batch_arg;

static int batch_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    batch_arg *a = arg;
    jobq_cl *c = a->h.c;
    int rc = pg_ready(c, eb);
    if (rc < 0) return rc;
    batch_new b = {.function = a->function,
                   .version = a->version,
                   .input_digest = a->input_digest,
                   .input_path = a->input_path,
                   .now_ms = a->now_ms,
                   .max_line = a->max_line,
                   .max_items = a->max_items,
                   .chunk = a->chunk};
    int64_t cap = a->chunk > 0 ? a->chunk : a->max_items;
    int64_t *ids = malloc((size_t)(cap > 0 ? cap : 1) * sizeof(*ids));
    if (!ids) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory accepting a batch");
    int n = 0;
    rc = jobs_pg_batch_create(c->pg, &b, &a->id, &a->n_items, ids, &n, &a->complete, eb);
    if (rc == 0) publish_items(c, a->function, ids, n);
    free(ids);
    return rc;
}

static void batch_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)user;
    batch_arg *a = arg;
    jobq_reply r;
    reply_init(&r);
    r.id = a->id;
    r.n_items = a->n_items;
    r.done = a->complete;
    a->h.done(a->h.user, rc, eb, &r);
}

static int cl_batch_create(jobq *q, const batch_new *b, jobq_done_fn done, void *user,
                           uint64_t *ticket)
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
    int rc = submit(C(q), batch_apply, batch_done, NULL, a, sizeof(*a), done, user, ticket);
    free(a);
    return rc;
}

typedef struct extend_arg {
    arg_head h;
    int64_t id, max;
    int64_t n_new; /* results */
    bool complete;
} extend_arg;

static int extend_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    extend_arg *a = arg;
    jobq_cl *c = a->h.c;
    int rc = pg_ready(c, eb);
    if (rc < 0) return rc;
    int64_t *ids = malloc((size_t)(a->max > 0 ? a->max : 1) * sizeof(*ids));
    if (!ids) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory creating batch items");
    char function[STORE_NAME_MAX + 1] = "";
    int n = 0;
    rc = jobs_pg_batch_extend(c->pg, a->id, a->max, rouse_wall_ms(), ids, &n, &a->complete,
                              function, eb);
    if (rc == 0) publish_items(c, function, ids, n);
    a->n_new = n;
    free(ids);
    return rc;
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

static int cl_batch_extend(jobq *q, int64_t id, int64_t max, jobq_done_fn done, void *user)
{
    extend_arg a = {.id = id, .max = max < 1 ? 1 : max};
    return submit(C(q), extend_apply, extend_done, NULL, &a, sizeof(a), done, user, NULL);
}

typedef struct finish_arg {
    arg_head h;
    int64_t id, now_ms, expires_ms;
    bool done; /* result */
} finish_arg;

static int finish_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    finish_arg *a = arg;
    int rc = pg_ready(a->h.c, eb);
    return rc < 0 ? rc
                  : jobs_pg_batch_finish(a->h.c->pg, a->id, a->now_ms, a->expires_ms, &a->done, eb);
}

static void finish_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)user;
    finish_arg *a = arg;
    jobq_reply r;
    reply_init(&r);
    r.id = a->id;
    r.done = a->done;
    if (a->h.done) a->h.done(a->h.user, rc, eb, &r);
}

static int cl_batch_finish(jobq *q, int64_t id, int64_t now_ms, int64_t expires_ms,
                           jobq_done_fn done, void *user)
{
    finish_arg a = {.id = id, .now_ms = now_ms, .expires_ms = expires_ms};
    return submit(C(q), finish_apply, finish_done, NULL, &a, sizeof(a), done, user, NULL);
}

/* reads that complete later */

typedef struct bget_arg {
    jobq_cl *c;
    jobq_batch_fn done;
    void *user;
    int64_t id;
    int part;
    batch_info bi;
    char *data; /* malloc'd on the thread, freed by the release */
    size_t len;
} bget_arg;

static int bget_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    bget_arg *a = arg;
    int rc = pg_ready(a->c, eb);
    return rc < 0 ? rc : jobs_pg_batch_get(a->c->pg, a->id, a->part, &a->bi, &a->data, &a->len, eb);
}

static void bget_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)user;
    bget_arg *a = arg;
    a->done(a->user, rc, eb, rc == 0 ? &a->bi : NULL, rc == 0 ? a->data : NULL, a->len, true);
}

static void bget_release(void *arg)
{
    bget_arg *a = arg;
    free(a->data);
    a->data = NULL;
}

static int cl_batch_get_async(jobq *q, int64_t id, int part, jobq_batch_fn done, void *user,
                              uint64_t *ticket)
{
    bget_arg *a = calloc(1, sizeof(*a));
    if (!a) return ROUSE_ENOMEM;
    a->c = C(q);
    a->done = done;
    a->user = user;
    a->id = id;
    a->part = part;
    int rc = store_writer_submit_release(C(q)->w, bget_apply, a, sizeof(*a), bget_done,
                                         bget_release, NULL, ticket);
    free(a);
    return rc;
}


typedef struct get_arg {
    jobq_cl *c;
    jobq_get_fn done;
    void *user;
    int64_t id;
    bool with_result;
    job_info j;
} get_arg;

static int get_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    get_arg *a = arg;
    int rc = pg_ready(a->c, eb);
    return rc < 0 ? rc : jobs_pg_get(a->c->pg, a->id, a->with_result, &a->j, eb);
}

static void get_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)user;
    get_arg *a = arg;
    a->done(a->user, rc, eb, rc == 0 ? &a->j : NULL, true);
}

static void get_release(void *arg)
{
    get_arg *a = arg;
    free(a->j.result);
    a->j.result = NULL;
}

static int cl_get_async(jobq *q, int64_t id, bool with_result, jobq_get_fn done, void *user,
                        uint64_t *ticket)
{
    get_arg *a = calloc(1, sizeof(*a));
    if (!a) return ROUSE_ENOMEM;
    a->c = C(q);
    a->done = done;
    a->user = user;
    a->id = id;
    a->with_result = with_result;
    int rc = store_writer_submit_release(C(q)->w, get_apply, a, sizeof(*a), get_done, get_release,
                                         NULL, ticket);
    free(a);
    return rc;
}

typedef struct list_arg {
    jobq_cl *c;
    jobq_list_fn done;
    void *user;
    char function[STORE_NAME_MAX + 1];
    bool any_function;
    int state, limit, n;
    int64_t after_id;
    job_info *jobs; /* malloc'd on the thread, freed by the release */
} list_arg;

static int list_keep(void *user, const job_info *j)
{
    list_arg *a = user;
    if (a->n == a->limit) return 1;
    a->jobs[a->n++] = *j;
    return 0;
}

static int list_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    list_arg *a = arg;
    int rc = pg_ready(a->c, eb);
    if (rc < 0) return rc;
    if (!(a->jobs = calloc((size_t)a->limit, sizeof(job_info))))
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory listing jobs");
    return jobs_pg_list(a->c->pg, a->any_function ? NULL : a->function, a->state, a->after_id,
                        a->limit, list_keep, a, eb);
}

static void list_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)user;
    list_arg *a = arg;
    a->done(a->user, rc, eb, a->jobs, rc == 0 ? a->n : 0, true);
}

static void list_release(void *arg)
{
    list_arg *a = arg;
    free(a->jobs);
    a->jobs = NULL;
}

static int cl_list_async(jobq *q, const char *function, int state, int64_t after_id, int limit,
                         jobq_list_fn done, void *user, uint64_t *ticket)
{
    list_arg a = {.c = C(q),
                  .done = done,
                  .user = user,
                  .any_function = function == NULL,
                  .state = state,
                  .limit = limit,
                  .after_id = after_id};
    snprintf(a.function, sizeof(a.function), "%s", function ? function : "");
    return store_writer_submit_release(C(q)->w, list_apply, &a, sizeof(a), list_done,
                                       list_release, NULL, ticket);
}

/* the heartbeat: leases renewed, in-progress acks, the sweep; and, more
 * often, work found */

typedef struct hb_arg {
    jobq_cl *c;
    int64_t now_ms;
    /* batches to go on with (jobq_batch_wake_fn) */
    int n_batches;
    int64_t batch_ids[WAKE_MAX];
    bool batch_creating[WAKE_MAX];
    char batch_fns[WAKE_MAX][STORE_NAME_MAX + 1];
} hb_arg;

typedef struct seek_arg {
    jobq_cl *c;
    int n_fns;
    char fns[WAKE_MAX][STORE_NAME_MAX + 1];
    int64_t counts[WAKE_MAX];
} seek_arg;

static int collect_batch(void *user, int64_t id, const char *function, bool creating)
{
    hb_arg *a = user;
    if (a->n_batches >= WAKE_MAX) return 1;
    a->batch_ids[a->n_batches] = id;
    a->batch_creating[a->n_batches] = creating;
    snprintf(a->batch_fns[a->n_batches++], STORE_NAME_MAX + 1, "%s", function);
    return 0;
}

static int collect_fn(void *user, const char *function, int64_t n)
{
    seek_arg *a = user;
    if (a->n_fns >= WAKE_MAX) return 1;
    a->counts[a->n_fns] = n;
    snprintf(a->fns[a->n_fns++], STORE_NAME_MAX + 1, "%s", function);
    return 0;
}

static int hb_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    hb_arg *a = arg;
    jobq_cl *c = a->c;
    for (int i = 0; i < c->n_held; i++)
        natsMsg_InProgress(c->held[i].m, NULL);
    int rc = pg_ready(c, eb);
    if (rc < 0) return rc;
    if (c->n_held > 0) {
        int64_t *ids = malloc((size_t)c->n_held * sizeof(*ids));
        if (!ids) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        for (int i = 0; i < c->n_held; i++)
            ids[i] = c->held[i].id;
        rc = jobs_pg_renew(c->pg, &c->h, ids, c->n_held, a->now_ms + c->ack_wait_ms, eb);
        free(ids);
        if (rc < 0) return rc;
    }
    int64_t ids[SWEEP_MAX];
    int drives[SWEEP_MAX];
    static char fns[SWEEP_MAX][STORE_NAME_MAX + 1]; /* the writer thread's alone */
    int n = 0;
    if ((rc = jobs_pg_unpublished(c->pg, a->now_ms - SWEEP_AFTER_MS, SWEEP_MAX, ids, drives,
                                  fns[0], &n, eb)) < 0)
        return rc;
    for (int i = 0; i < n; i++) {
        rouse_errbuf peb;
        if (publish(c, fns[i], ids[i], drives[i], &peb) < 0 ||
            jobs_pg_mark_published(c->pg, ids[i], &peb) < 0) {
            LOG_WARN(MOD, "job %lld: %s (published again later)", (long long)ids[i], peb.msg);
            break;
        }
    }
    if (n > 0) LOG_INFO(MOD, "%d job(s) published again by the sweep", n);
    return jobs_pg_batches_due(c->pg, a->now_ms - BATCH_STALL_MS, WAKE_MAX, collect_batch, a, eb);
}

static void hb_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)user;
    hb_arg *a = arg;
    jobq_cl *c = a->c;
    c->hb_flight = false;
    if (rc < 0) {
        LOG_WARN(MOD, "the job queue's heartbeat: %s", eb->msg);
        return;
    }
    for (int i = 0; c->base.batch_wake && i < a->n_batches; i++)
        c->base.batch_wake(c->base.batch_wake_user, a->batch_ids[i], a->batch_fns[i],
                           a->batch_creating[i]);
}

static int seek_apply(store *st, void *arg, rouse_errbuf *eb)
{
    (void)st;
    seek_arg *a = arg;
    int rc = pg_ready(a->c, eb);
    return rc < 0 ? rc : jobs_pg_active(a->c->pg, collect_fn, a, eb);
}

static void seek_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)user;
    seek_arg *a = arg;
    jobq_cl *c = a->c;
    c->seek_flight = false;
    /* Unreachable: the heartbeat says so, once per its period. */
    if (rc < 0) {
        LOG_DEBUG(MOD, "finding functions with jobs: %s", eb->msg);
        return;
    }
    if (!c->base.wake) return;
    /* A full count only: with more functions than it holds, the next. */
    if (a->n_fns < WAKE_MAX) c->base.wake(c->base.wake_user, NULL, 0);
    for (int i = 0; i < a->n_fns; i++)
        c->base.wake(c->base.wake_user, a->fns[i], a->counts[i]);
}

static int64_t hb_every(const jobq_cl *c)
{
    int64_t ms = c->ack_wait_ms / 3;
    return ms < 200 ? 200 : ms > 5000 ? 5000 : ms;
}

static int cl_tick(jobq *q, int64_t now_ms)
{
    jobq_cl *c = C(q);
    if (c->pg_start) {
        PQfinish(c->pg_start);
        c->pg_start = NULL;
    }
    if (!c->hb_flight && now_ms >= c->next_hb_ms) {
        hb_arg *a = calloc(1, sizeof(*a));
        if (a) {
            a->c = c;
            a->now_ms = now_ms;
            if (store_writer_submit(c->w, hb_apply, a, sizeof(*a), hb_done, NULL, NULL) == 0)
                c->hb_flight = true;
            free(a);
        }
        c->next_hb_ms = now_ms + hb_every(c);
    }
    if (!c->seek_flight && now_ms >= c->next_seek_ms) {
        seek_arg *a = calloc(1, sizeof(*a));
        if (a) {
            a->c = c;
            if (store_writer_submit(c->w, seek_apply, a, sizeof(*a), seek_done, NULL, NULL) == 0)
                c->seek_flight = true;
            free(a);
        }
        c->next_seek_ms = now_ms + SEEK_EVERY_MS;
    }
    int64_t next = c->next_hb_ms < c->next_seek_ms ? c->next_hb_ms : c->next_seek_ms;
    return (int)(next > now_ms ? next - now_ms : 0);
}

/* start-time reads (before the loop serves) */

static int start_conn(jobq_cl *c, rouse_errbuf *eb)
{
    if (c->pg_start) return 0;
    return jobs_pg_connect(c->state_url, &c->pg_start, eb);
}

static int cl_active_counts(jobq *q, int (*fn)(void *user, const char *function, int64_t n),
                            void *user, rouse_errbuf *eb)
{
    int rc = start_conn(C(q), eb);
    return rc < 0 ? rc : jobs_pg_active(C(q)->pg_start, fn, user, eb);
}

static int cl_pending_callbacks(jobq *q, int (*fn)(void *user, int64_t id), void *user,
                                rouse_errbuf *eb)
{
    int rc = start_conn(C(q), eb);
    return rc < 0 ? rc : jobs_pg_pending_callbacks(C(q)->pg_start, C(q)->node, fn, user, eb);
}

/* Expired jobs are looked for every few seconds (a DELETE on an index). */
static int cl_next_expiry(jobq *q, int64_t *ms, rouse_errbuf *eb)
{
    (void)q;
    (void)eb;
    *ms = rouse_wall_ms() + EXPIRE_EVERY_MS;
    return 0;
}

/* --- life ---------------------------------------------------------------------- */

static void cl_destroy(jobq *q)
{
    jobq_cl *c = C(q);
    /* The writer finishes what was submitted; then its state is ours. */
    store_writer_destroy(c->w);
    /* Held jobs are not acked: JetStream delivers them again. */
    for (int i = 0; i < c->n_held; i++)
        natsMsg_Destroy(c->held[i].m);
    free(c->held);
    while (c->subs) {
        csub *s = c->subs;
        c->subs = s->next;
        natsSubscription_Destroy(s->sub);
        free(s);
    }
    jsCtx_Destroy(c->js);
    if (c->nc) {
        natsConnection_Close(c->nc);
        natsConnection_Destroy(c->nc);
    }
    if (c->pg) PQfinish(c->pg);
    if (c->pg_start) PQfinish(c->pg_start);
    free(c->state_url);
    free(c->bus_url);
    free(c);
}

static int bus_connect(jobq_cl *c, rouse_errbuf *eb)
{
    natsOptions *no = NULL;
    natsStatus s = natsOptions_Create(&no);
    if (s == NATS_OK) s = natsOptions_SetURL(no, c->bus_url);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(no, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(no, 250);
    if (s == NATS_OK) s = natsOptions_SetTimeout(no, 5000);
    /* Publishes made while reconnecting wait in a buffer (bounded). */
    if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(no, 8 << 20);
    if (s == NATS_OK) s = natsConnection_Connect(&c->nc, no);
    natsOptions_Destroy(no);
    if (s != NATS_OK)
        return rouse_err_set(eb, ROUSE_EIO, "NATS at %s: %s", c->bus_url, natsStatus_GetText(s));
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = PUBLISH_WAIT_MS;
    if ((s = natsConnection_JetStream(&c->js, c->nc, &jo)) != NATS_OK)
        return rouse_err_set(eb, ROUSE_EIO, "NATS JetStream: %s", natsStatus_GetText(s));
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {SUBJECT_PREFIX ">"};
    sc.Name = STREAM;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Retention = js_WorkQueuePolicy;
    sc.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    s = js_AddStream(&si, c->js, &sc, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK) {
        /* Made by another node (the same configuration): fine. */
        si = NULL;
        natsStatus s2 = js_GetStreamInfo(&si, c->js, STREAM, NULL, &jerr);
        jsStreamInfo_Destroy(si);
        if (s2 != NATS_OK)
            return rouse_err_set(eb, ROUSE_EIO, "NATS JetStream: the stream %s: %s (%d)", STREAM,
                                 natsStatus_GetText(s), (int)jerr);
    }
    return 0;
}

int jobq_cluster_create(const jobq_cluster_opts *o, jobq **out, rouse_errbuf *eb)
{
    jobq_cl *c = calloc(1, sizeof(*c));
    if (!c) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    c->base.ops = &cluster_ops;
    c->base.caps = (jobq_caps){.lease_ahead = false, .sync_reads = false, .batches = true};
    c->state_url = strdup(o->state_url);
    c->bus_url = strdup(o->bus_url);
    if (!c->state_url || !c->bus_url) {
        cl_destroy(&c->base);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    if (o->node_name && *o->node_name)
        snprintf(c->node, sizeof(c->node), "%s", o->node_name);
    else if (gethostname(c->node, sizeof(c->node) - 1) < 0)
        snprintf(c->node, sizeof(c->node), "node");
    snprintf(c->holder, sizeof(c->holder), "%s/%lld/%d", c->node, (long long)rouse_wall_ms(),
             (int)getpid());
    c->ack_wait_ms = o->ack_wait_ms > 0 ? o->ack_wait_ms : ACK_WAIT_DEFAULT_MS;
    c->h = (jobs_pg_holder){.node = c->node, .holder = c->holder, .lease_ms = c->ack_wait_ms};
    int rc = jobs_pg_connect(c->state_url, &c->pg, eb);
    if (rc == 0) rc = jobs_pg_migrate(&c->pg, eb);
    if (rc == 0) rc = bus_connect(c, eb);
    if (rc == 0) rc = store_writer_create(NULL, "jobs", &c->w, eb);
    if (rc < 0) {
        cl_destroy(&c->base);
        return rc;
    }
    *out = &c->base;
    return 0;
}

store_writer *jobq_cluster_writer(jobq *q)
{
    return C(q)->w;
}

static const jobq_ops cluster_ops = {
    .destroy = cl_destroy,
    .enqueue = cl_enqueue,
    .lease = cl_lease,
    .settle_many = cl_settle_many,
    .cancel = cl_cancel,
    .retry = cl_retry,
    .reset_running = cl_reset_running,
    .expire = cl_expire,
    .callback_status = cl_callback_status,
    .batch_create = cl_batch_create,
    .batch_extend = cl_batch_extend,
    .batch_finish = cl_batch_finish,
    .forget = cl_forget,
    .get_async = cl_get_async,
    .list_async = cl_list_async,
    .batch_get_async = cl_batch_get_async,
    .tick = cl_tick,
    .active_counts = cl_active_counts,
    .next_expiry = cl_next_expiry,
    .pending_callbacks = cl_pending_callbacks,
};
