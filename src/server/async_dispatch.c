/*
 * The dispatcher of asynchronous jobs (async_dispatch.h).
 *
 * Per function it keeps: how many jobs it holds (queued or running, plus
 * those admitted and not yet durable: what async.queue_limit bounds), a
 * buffer of leased jobs waiting for capacity (oldest first), how many are
 * in the pool, and whether the queue may hold jobs due now. A lease is one
 * write (up to JOBQ_LEASE_MAX jobs) and at most one is in flight per
 * function; the buffer holds up to LEASE_AHEAD jobs, leased again in bulk
 * once it fell to LEASE_LOW, so that instances never wait for a commit
 * between jobs and a lease costs its write once per many jobs.
 *
 * The ends of runs are recorded in bulk too: a run that ended joins the
 * settle queue, sent as one write (jobq_settle_many) once SETTLE_BULK runs
 * wait in it, or its oldest has waited SETTLE_WAIT_MS (SETTLE_BULK_BATCH and
 * SETTLE_WAIT_BATCH_MS while it holds batch items only: each commit rewrites
 * the pages it touched, so a drain's fewer, larger settle writes cost the
 * writer less per item), or no run is in the pool (nothing would
 * join it soon), and never while one is in flight (what ends meanwhile
 * waits for the next). A commit costs the writer its pages and an fsync
 * whatever it holds, so a drain of short jobs pays one per SETTLE_BULK
 * runs or per wait instead of one per few jobs; a job's final state is late
 * by SETTLE_WAIT_MS at most, a batch item's (whose batch is what its
 * client waits for, and which is written at once when its last run ends)
 * by SETTLE_WAIT_BATCH_MS. A job's final state, its callback and its batch's
 * progress follow only from that write's completion, once durable; until
 * then its record says running, so a serve that dies in between queues it
 * again at its next start and it runs again (at-least-once), and the
 * UPDATE of a settle names the running state it moves from, so a job gets
 * exactly one final state.
 *
 * A batch's POST creates its first ASYNC_BATCH_FIRST_CHUNK items (after
 * checking and counting the whole input); the dispatcher creates the rest,
 * BATCH_CHUNK items a write, one write in flight per batch and none while
 * its function's instances wait for a lease, so that the first items run
 * while the rest are being inserted. A serve that stops or dies in between leaves
 * the batch's place in its input recorded; the next start goes on from it.
 *
 * Invariants:
 * - A leased job is in exactly one place: the buffer, the pool (call set),
 *   the settle queue or a settle write in flight.
 * - n_running counts the jobs in the pool; it never exceeds the function's
 *   async concurrency except when that was lowered by a deploy.
 */
#include "server/async_dispatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "server/async_fault.h"
#include "worker/ipc.h"

#define MOD "async"
#define LEASE_AHEAD 1024
#define LEASE_LOW (LEASE_AHEAD / 2)
#define LEASE_FIRST 64
#define SETTLE_BULK 256
#define SETTLE_BULK_BATCH JOBQ_SETTLE_MAX
#define SETTLE_WAIT_MS 10
#define SETTLE_WAIT_BATCH_MS 100
#define EXPIRE_EVERY_MS 1000
#define BATCH_CHECK_MS 100
/* Items of a batch created by each write after its first (the POST's,
 * ASYNC_BATCH_FIRST_CHUNK). */
#define BATCH_CHUNK 1024
/* A queue shared by several nodes, a function without capacity: looked at
 * again after this long (a reply frees capacity sooner). */
#define CAPACITY_RECHECK_MS 100
/* ...and a function this node does not know, after this long. */
#define UNKNOWN_RECHECK_MS 1000
/* A lease that failed (the store unreachable) is tried again after this. */
#define LEASE_RETRY_MS 500

typedef struct afn afn;

typedef struct ajob {
    job_lease l;
    afn *f;
    async_dispatch *d;
    pool_call *call;
    int state; /* while its end is being recorded: the state it moves to */
    int64_t run_after_ms, expires_ms;
    char *body; /* its request, read with the lease (owned until sent) */
    size_t body_len_stored;
    int64_t json_len;
    uint64_t sent_ns; /* when it went to the pool */
    int64_t sent_wall_us;
    uint64_t body_len;
    /* How its run ended, while in the settle queue or its write: s.error,
     * s.result and s.result_type point at the owned copies below. */
    job_settle s;
    char *result, *error;
    char result_type[64];
    struct ajob *next;          /* in its function's buffer, or the settle queue */
    struct ajob *aprev, *anext; /* on d->all */
} ajob;

typedef struct abatch {
    int64_t id;
    int64_t due_ms; /* when to check it; -1 not due; -2 written (forget it) */
    bool writing;
    /* Its items are still being created: a chunk at a time, one write in
     * flight at most (extending), the next not before extend_due_ms. */
    bool creating, extending;
    int64_t extend_due_ms;
    /* Its function ("" until known) and version (-1), for its output's
     * lifetime when the queue's reads are not at once. */
    char function[STORE_NAME_MAX + 1];
    int64_t version;
    async_dispatch *d;
    struct abatch *next;
} abatch;

struct afn {
    char name[STORE_NAME_MAX + 1];
    int64_t n_active;
    ajob *buf, *buf_tail;
    int n_buf;
    int n_running;
    bool leasing;
    bool more;      /* queued jobs may be due now */
    int64_t due_ms; /* a queued job that is not due yet becomes due then, or -1 */
    bool have_cfg;
    int64_t cfg_version;
    fn_config cfg;
    /* Jobs finished per second, smoothed: what Retry-After is made from. */
    double rate;
    int64_t rate_ms;
    int64_t rate_n;
    async_dispatch *d;
    afn *next;
};

struct async_dispatch {
    async_opts o;
    afn *fns;
    abatch *batches;
    ajob *all;                    /* every leased job in memory, wherever it is */
    ajob *settle_q, *settle_tail; /* runs that ended, for the next settle write */
    int n_settle_q;
    int n_settle_solo;            /* of them, jobs that are not batch items */
    int64_t settle_since_ms;      /* when the oldest in the settle queue joined it */
    struct settle_flight *flight; /* the settle write in flight, or NULL */
    int n_writes;                 /* lease, settle, batch and expiry writes in flight */
    int n_calls;                  /* jobs in the pool */
    bool stopping;
    bool expiring;
    int64_t next_expiry_ms; /* -1: nothing expires */
    int64_t last_expire_ms;
    uint64_t rng;
};

static int64_t now_ms(void)
{
    return rouse_wall_ms();
}

static double rnd(async_dispatch *d)
{
    uint64_t x = d->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    d->rng = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* --- pure decisions -------------------------------------------------------- */

async_outcome async_decide(int status, int attempts, int max_attempts, int64_t age_ms,
                           int64_t max_age_ms)
{
    if (status >= 200 && status < 300) return ASYNC_SUCCEEDED;
    /* A request the model refuses (bad tensor, wrong shape) fails the same
     * way every time; a timeout or an overload may not. */
    bool transient = status >= 500 || status == 429 || status == 408;
    if (!transient) return ASYNC_FAILED;
    if (attempts >= max_attempts || age_ms >= max_age_ms) return ASYNC_FAILED;
    return ASYNC_RETRY;
}

int64_t async_backoff_ms(int attempts, double r)
{
    int64_t d = ASYNC_BACKOFF_BASE_MS;
    for (int i = 1; i < attempts && d < ASYNC_BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > ASYNC_BACKOFF_MAX_MS) d = ASYNC_BACKOFF_MAX_MS;
    return d / 2 + (int64_t)((double)(d - d / 2) * r);
}

static void job_free(ajob *j);

/* --- functions ------------------------------------------------------------- */

static afn *fn_find(async_dispatch *d, const char *name, bool create)
{
    for (afn *f = d->fns; f; f = f->next)
        if (strcmp(f->name, name) == 0) return f;
    if (!create) return NULL;
    afn *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->due_ms = -1;
    f->d = d;
    f->next = d->fns;
    d->fns = f;
    return f;
}

int async_config(async_dispatch *d, const char *function, int64_t version, fn_config *out,
                 rouse_errbuf *eb)
{
    afn *f = fn_find(d, function, true);
    if (f && f->have_cfg && f->cfg_version == version) {
        *out = f->cfg;
        return 0;
    }
    store_version sv;
    memset(&sv, 0, sizeof(sv));
    int rc = store_version_get(d->o.st, function, version, &sv, eb);
    if (rc == 0) {
        rc = fn_config_load(sv.config_json, strlen(sv.config_json), out, eb);
        if (rc == 0) fn_config_set_tenant(out, function);
        if (rc < 0) rc = rouse_err_wrap(eb, ROUSE_EINTERNAL, "stored config of %s", function);
    }
    free(sv.config_json);
    if (rc == 0 && f) {
        f->cfg = *out;
        f->cfg_version = version;
        f->have_cfg = true;
    }
    return rc;
}

/* Jobs of a function in the pool at once: async.max_concurrency when set
 * (then no more run at once); else twice the instances' slots, the pool
 * bounding what runs to scaling.max x concurrency and the rest waiting
 * one per slot (pool_free_capacity). */
static int fn_limit(const afn *f)
{
    if (!f->have_cfg) return 1;
    if (f->cfg.async.max_concurrency > 0) return (int)f->cfg.async.max_concurrency;
    return (int)(2 * f->cfg.scaling.max * f->cfg.scaling.concurrency);
}

/* A job finished: the drain rate Retry-After is made from. */
static void note_finished(afn *f)
{
    int64_t now = now_ms();
    if (f->rate_ms == 0) f->rate_ms = now;
    f->rate_n++;
    int64_t span = now - f->rate_ms;
    if (span >= 1000) {
        double r = (double)f->rate_n * 1000.0 / (double)span;
        f->rate = f->rate > 0 ? 0.7 * f->rate + 0.3 * r : r;
        f->rate_ms = now;
        f->rate_n = 0;
    }
}

int async_admit(async_dispatch *d, const char *function, const fn_config *cfg, int64_t n,
                int *retry_after_s, rouse_errbuf *eb)
{
    afn *f = fn_find(d, function, true);
    if (!f) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    if (f->n_active + n > cfg->async.queue_limit) {
        /* The time the jobs ahead need at the rate jobs finish now. */
        double rate = f->rate > 0 ? f->rate : 1.0;
        double s = (double)(f->n_active + n - cfg->async.queue_limit) / rate;
        int ra = (int)s + 1;
        *retry_after_s = ra < 1 ? 1 : ra > 60 ? 60 : ra;
        return rouse_err_set(eb, ROUSE_EBUSY,
                             "function %s has %lld jobs queued or running, its async.queue_limit "
                             "is %lld",
                             function, (long long)f->n_active, (long long)cfg->async.queue_limit);
    }
    f->n_active += n;
    return 0;
}

void async_unadmit(async_dispatch *d, const char *function, int64_t n)
{
    afn *f = fn_find(d, function, false);
    if (f) f->n_active = f->n_active > n ? f->n_active - n : 0;
}

int64_t async_room(async_dispatch *d, const char *function, const fn_config *cfg)
{
    afn *f = fn_find(d, function, false);
    int64_t used = f ? f->n_active : 0;
    return cfg->async.queue_limit > used ? cfg->async.queue_limit - used : 0;
}

void async_queued(async_dispatch *d, const char *function, int64_t n_new)
{
    afn *f = fn_find(d, function, true);
    if (!f) return;
    f->more = true;
    f->n_active += n_new;
}

/* --- batches ---------------------------------------------------------------- */

/* The reply of a wake-up call (the model's metadata): nobody reads it. */
static void wake_done(void *user, pool_result *res)
{
    (void)user;
    if (res->fd >= 0) close(res->fd);
    free(res->body);
    res->fd = -1;
    res->body = NULL;
}

void async_wake(async_dispatch *d, const char *function, int64_t version)
{
    int64_t *v = malloc(sizeof(*v));
    if (!v) return;
    *v = version;
    pool_request rq = {.name = function,
                       .version = version,
                       .type = IPC_META,
                       .body = (char *)v,
                       .body_fd = -1,
                       .body_len = sizeof(*v),
                       .json_len = -1,
                       .background = true,
                       .done = wake_done};
    pool_call *c = NULL;
    int retry_after = 0;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (pool_submit(d->o.pool, &rq, &c, &retry_after, &eb) < 0)
        LOG_DEBUG(MOD, "waking %s for a batch: %s", function, eb.msg);
}

/* Batch id as the dispatcher tracks it (added, not due, when new), or NULL
 * when out of memory. */
static abatch *batch_get(async_dispatch *d, int64_t id)
{
    for (abatch *b = d->batches; b; b = b->next)
        if (b->id == id) return b;
    abatch *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->id = id;
    b->due_ms = -1;
    b->version = -1;
    b->d = d;
    b->next = d->batches;
    d->batches = b;
    return b;
}

/* Batch id may be complete: its output is written when due (now when the
 * caller knows that no item is left, else after BATCH_CHECK_MS). */
static abatch *batch_touch(async_dispatch *d, int64_t id, bool now)
{
    if (id <= 0) return NULL;
    int64_t due = now_ms() + (now ? 0 : BATCH_CHECK_MS);
    abatch *b = batch_get(d, id);
    if (!b) return NULL; /* checked again at the next start (or the queue's sweep) */
    if (b->due_ms < 0 || due < b->due_ms) b->due_ms = due;
    return b;
}

void async_batch_creating(async_dispatch *d, const char *function, int64_t id)
{
    abatch *b = batch_get(d, id);
    if (!b) {
        LOG_ERROR(MOD, "batch %lld: out of memory (its creation goes on at the next start)",
                  (long long)id);
        return;
    }
    b->creating = true;
    snprintf(b->function, sizeof(b->function), "%s", function);
    b->extend_due_ms = now_ms() + async_fault_chunk_delay_ms();
}

void async_cancelled(async_dispatch *d, const char *function, int64_t batch, int64_t expires_ms)
{
    async_unadmit(d, function, 1);
    batch_touch(d, batch, false);
    if (d->next_expiry_ms < 0 || expires_ms < d->next_expiry_ms) d->next_expiry_ms = expires_ms;
}

bool async_unlease(async_dispatch *d, const char *function, int64_t id)
{
    afn *f = fn_find(d, function, false);
    if (!f) return false;
    ajob *prev = NULL;
    for (ajob *j = f->buf; j; prev = j, j = j->next) {
        if (j->l.id != id) continue;
        if (prev)
            prev->next = j->next;
        else
            f->buf = j->next;
        if (f->buf_tail == j) f->buf_tail = prev;
        f->n_buf--;
        job_free(j);
        return true;
    }
    return false;
}

static void batch_forget(async_dispatch *d, abatch *gone)
{
    for (abatch **pp = &d->batches; *pp; pp = &(*pp)->next)
        if (*pp == gone) {
            *pp = gone->next;
            free(gone);
            return;
        }
}

static void on_batch_finished(void *user, int rc, const rouse_errbuf *eb, const jobq_reply *r)
{
    abatch *b = user;
    b->writing = false;
    if (rc < 0) {
        LOG_WARN(MOD, "batch %lld: writing its output: %s", (long long)b->id, eb->msg);
        b->due_ms = now_ms() + 1000;
        return;
    }
    if (r->done) b->due_ms = -2; /* written: forget it */
}

static void on_batch_extended(void *user, int rc, const rouse_errbuf *eb, const jobq_reply *r)
{
    abatch *b = user;
    async_dispatch *d = b->d;
    b->extending = false;
    d->n_writes--;
    if (rc < 0) {
        /* Nothing of the chunk was written: tried again from where it stopped. */
        LOG_WARN(MOD, "batch %lld: creating its items: %s", (long long)b->id, eb->msg);
        b->extend_due_ms = now_ms() + 1000;
        return;
    }
    afn *f = fn_find(d, b->function, true);
    if (f && r->n_items > 0) f->more = true;
    if (r->done) b->creating = false;
    b->extend_due_ms = now_ms() + async_fault_chunk_delay_ms();
}

/* The next chunk of a batch being created, when due. A lease that its
 * function's instances wait for (nothing leased is left) goes first: a
 * write queued with a chunk waits for its inserts (they share a group
 * commit). */
static void batch_extend(async_dispatch *d, abatch *b, int64_t now, int64_t *next)
{
    if (b->extending || d->stopping) return;
    if (b->extend_due_ms > now) {
        if (*next < 0 || b->extend_due_ms < *next) *next = b->extend_due_ms;
        return;
    }
    afn *f = fn_find(d, b->function, false);
    if (f && f->leasing && !f->buf) return; /* its completion runs the loop again */
    if (jobq_batch_extend(d->o.q, b->id, BATCH_CHUNK, on_batch_extended, b) == 0) {
        b->extending = true;
        d->n_writes++;
    }
}

static void tick_batches(async_dispatch *d, int64_t now, int64_t *next)
{
    abatch *b = d->batches;
    while (b) {
        abatch *n = b->next;
        if (b->creating) batch_extend(d, b, now, next);
        if (b->due_ms == -2 && !b->writing && !b->creating && !b->extending) {
            batch_forget(d, b);
        } else if (!b->writing && b->due_ms >= 0 && b->due_ms <= now && !d->stopping) {
            batch_info bi;
            rouse_errbuf eb;
            fn_config cfg;
            int64_t expires = now + 86400000;
            if (jobq_caps_of(d->o.q)->sync_reads) {
                if (jobq_batch_get(d->o.q, b->id, &bi, &eb) == 0 &&
                    async_config(d, bi.function, bi.version, &cfg, &eb) == 0)
                    expires = now + cfg.async.result_ttl_ms;
            } else if (b->function[0] && b->version >= 0 &&
                       async_config(d, b->function, b->version, &cfg, &eb) == 0) {
                expires = now + cfg.async.result_ttl_ms;
            } else {
                expires = -1; /* the queue's: its items' */
            }
            b->due_ms = -1;
            if (jobq_batch_finish(d->o.q, b->id, now, expires, on_batch_finished, b) == 0)
                b->writing = true;
        } else if (b->due_ms >= 0 && (*next < 0 || b->due_ms < *next)) {
            *next = b->due_ms;
        }
        b = n;
    }
}

/* --- runs ---------------------------------------------------------------------- */

/* Reads a memfd reply into memory. */
static char *read_fd(int fd, uint64_t len)
{
    char *b = malloc(len ? (size_t)len : 1);
    if (!b) return NULL;
    uint64_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, b + got, (size_t)(len - got), (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            free(b);
            return NULL;
        }
        got += (uint64_t)n;
    }
    return b;
}

static ajob *job_new_lease(async_dispatch *d, afn *f, const job_lease *l)
{
    ajob *j = calloc(1, sizeof(*j));
    if (!j) return NULL;
    j->l = *l;
    j->f = f;
    j->d = d;
    j->anext = d->all;
    if (d->all) d->all->aprev = j;
    d->all = j;
    return j;
}

static void job_free(ajob *j)
{
    async_dispatch *d = j->d;
    if (j->aprev)
        j->aprev->anext = j->anext;
    else
        d->all = j->anext;
    if (j->anext) j->anext->aprev = j->aprev;
    free(j->body);
    free(j->result);
    free(j->error);
    free(j);
}

/* The "error" of a JSON error reply. */
static bool error_of(const char *body, uint64_t len, char *out, size_t cap)
{
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    bool ok = false;
    if (json_parse(body, (size_t)len, &a, &v, NULL) == 0) {
        const char *e = json_as_string(json_get(v, "error"));
        if (e) {
            snprintf(out, cap, "%s", e);
            ok = true;
        }
    }
    rouse_arena_fini(&a);
    return ok;
}

/* Records how a run of j ended (status and either a result or an error):
 * j joins the settle queue, written at the next tick. body (malloc'd, or
 * NULL) is taken. */
static void settle(async_dispatch *d, ajob *j, int status, const char *error, char *body,
                   uint64_t len, const char *type, int64_t json_len)
{
    afn *f = j->f;
    int64_t now = now_ms();
    fn_config cfg;
    rouse_errbuf eb;
    if (async_config(d, f->name, j->l.version, &cfg, &eb) < 0) fn_config_defaults(&cfg);
    async_outcome o = async_decide(status, j->l.attempts, (int)cfg.async.max_attempts,
                                   now - j->l.created_ms, cfg.async.max_age_ms);
    job_settle *s = &j->s;
    *s = (job_settle){.id = j->l.id, .now_ms = now, .status = status, .result_json_len = json_len};
    bool keep_body = false;
    if (o == ASYNC_SUCCEEDED) {
        s->state = JOB_SUCCEEDED;
        keep_body = true;
    } else if (o == ASYNC_RETRY) {
        s->state = JOB_QUEUED;
        s->run_after_ms = now + async_backoff_ms(j->l.attempts, rnd(d));
    } else {
        s->state = JOB_FAILED;
    }
    /* A reply that is an error says why in its body ({"error": ...}). */
    char why[JOB_ERROR_MAX + 1];
    if (o != ASYNC_SUCCEEDED && !error && body && len) {
        if (o == ASYNC_FAILED) keep_body = true;
        if (error_of(body, len, why, sizeof(why))) error = why;
    }
    if (keep_body) {
        j->result = body ? body : strdup("");
        s->result = j->result;
        s->result_len = body ? len : 0;
        body = NULL;
        if (!j->result) s->result = "";
    }
    free(body);
    if (error) {
        j->error = strdup(error);
        s->error = j->error ? j->error : "out of memory";
    }
    if (type) {
        snprintf(j->result_type, sizeof(j->result_type), "%s", type);
        s->result_type = j->result_type;
    }
    s->expires_ms = now + cfg.async.result_ttl_ms;
    j->state = s->state;
    j->run_after_ms = s->run_after_ms;
    j->expires_ms = s->expires_ms;
    j->next = NULL;
    if (d->settle_tail)
        d->settle_tail->next = j;
    else
        d->settle_q = j;
    d->settle_tail = j;
    if (j->l.batch <= 0) d->n_settle_solo++;
    if (d->n_settle_q++ == 0) d->settle_since_ms = now;
}

/* One job's end is durable (rc 0), or could not be recorded. */
static void settled(async_dispatch *d, ajob *j, int rc, int64_t batch_left)
{
    afn *f = j->f;
    if (rc < 0) {
        /* Cancelled meanwhile cannot happen to a running job; a failed
         * commit leaves it running until the next start. */
        LOG_WARN(MOD, "job %lld: recording its end: %s", (long long)j->l.id, rouse_strerror(rc));
    } else if (j->state == JOB_QUEUED) {
        f->more = true;
        if (f->due_ms < 0 || j->run_after_ms < f->due_ms) f->due_ms = j->run_after_ms;
    } else {
        f->n_active = f->n_active > 0 ? f->n_active - 1 : 0;
        note_finished(f);
        /* Its batch's output is written once no item is left; while the
         * count is unknown, a check follows soon. */
        abatch *b = batch_left <= 0 ? batch_touch(d, j->l.batch, batch_left == 0) : NULL;
        if (b && !b->function[0]) {
            snprintf(b->function, sizeof(b->function), "%s", f->name);
            b->version = j->l.version;
        }
        if (d->next_expiry_ms < 0 || j->expires_ms < d->next_expiry_ms)
            d->next_expiry_ms = j->expires_ms;
        if (j->l.has_callback && d->o.on_final) d->o.on_final(d->o.final_user, j->l.id);
    }
    job_free(j);
}

/* A settle write: the jobs whose ends it records, in the queue's order. */
typedef struct settle_flight {
    async_dispatch *d;
    int n;
    ajob *jobs[];
} settle_flight;

static void settle_many_done(void *user, int rc, const rouse_errbuf *eb, const jobq_reply *r)
{
    settle_flight *fl = user;
    async_dispatch *d = fl->d;
    d->flight = NULL;
    d->n_writes--;
    if (rc < 0) LOG_WARN(MOD, "recording the end of %d run(s): %s", fl->n, eb->msg);
    for (int i = 0; i < fl->n; i++)
        settled(d, fl->jobs[i], rc < 0 ? rc : r->settled[i], rc < 0 ? -1 : r->batch_left[i]);
    free(fl);
}

/* Sends the settle queue as one write when it is due (see the top), unless
 * one is in flight; *next: when it is due. */
static void flush_settles(async_dispatch *d, int64_t now, int64_t *next)
{
    if (d->flight || !d->settle_q) return;
    bool solo = d->n_settle_solo > 0;
    int64_t due = d->settle_since_ms + (solo ? SETTLE_WAIT_MS : SETTLE_WAIT_BATCH_MS);
    int bulk = solo ? SETTLE_BULK : SETTLE_BULK_BATCH;
    if (d->n_settle_q < bulk && due > now && !d->stopping && d->n_calls > 0) {
        if (*next < 0 || due < *next) *next = due;
        return;
    }
    int n = d->n_settle_q < JOBQ_SETTLE_MAX ? d->n_settle_q : JOBQ_SETTLE_MAX;
    settle_flight *fl = malloc(sizeof(*fl) + (size_t)n * sizeof(fl->jobs[0]));
    job_settle *arr = malloc((size_t)n * sizeof(*arr));
    if (!fl || !arr) {
        free(fl);
        free(arr);
        return; /* tried again at the next tick */
    }
    fl->d = d;
    fl->n = n;
    for (int i = 0; i < n; i++) {
        ajob *j = d->settle_q;
        d->settle_q = j->next;
        j->next = NULL;
        fl->jobs[i] = j;
        arr[i] = j->s;
        if (j->l.batch <= 0) d->n_settle_solo--;
    }
    if (!d->settle_q) d->settle_tail = NULL;
    d->n_settle_q -= n;
    d->settle_since_ms = now;
    int rc = jobq_settle_many(d->o.q, arr, n, settle_many_done, fl);
    free(arr);
    if (rc < 0) {
        /* Left running: the next start queues them again. */
        LOG_ERROR(MOD, "cannot record the end of %d run(s): %s", n, rouse_strerror(rc));
        for (int i = 0; i < n; i++)
            job_free(fl->jobs[i]);
        free(fl);
        return;
    }
    d->flight = fl;
    d->n_writes++;
}

static void on_call_done(void *user, pool_result *res)
{
    ajob *j = user;
    afn *f = j->f;
    async_dispatch *disp = j->d;
    j->call = NULL;
    f->n_running--;
    disp->n_calls--;
    if (disp->stopping && res->status == 503 && res->error) {
        /* Cut short by the stop: stays leased, queued again at the next start. */
        if (res->fd >= 0) close(res->fd);
        free(res->body);
        res->fd = -1;
        res->body = NULL;
        job_free(j);
        return;
    }
    if (disp->o.on_run) {
        async_run run = {.job_id = j->l.id,
                         .function = f->name,
                         .version = j->l.version,
                         .res = res,
                         .bytes_in = j->body_len,
                         .bytes_out = res->len,
                         .total_ns = rouse_now_ns() - j->sent_ns,
                         .begin_wall_us = j->sent_wall_us};
        disp->o.on_run(disp->o.run_user, &run);
    }
    char *body = res->body;
    uint64_t len = res->len;
    if (res->fd >= 0) {
        body = read_fd(res->fd, res->len);
        close(res->fd);
        res->fd = -1;
        if (!body) {
            settle(disp, j, 500, "cannot read the reply", NULL, 0, NULL, -1);
            return;
        }
    }
    res->body = NULL;
    settle(disp, j, res->status, res->error, body, body ? len : 0, res->content_type,
           res->json_len);
}

/* Hands a leased job to the pool. */
static void run(async_dispatch *d, ajob *j)
{
    afn *f = j->f;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc;
    char *body = j->body;
    size_t len = j->body_len_stored;
    int64_t json_len = j->json_len;
    j->body = NULL; /* the pool takes it */
    if (!body) {
        settle(d, j, 500, "the job's body was not read with its lease", NULL, 0, NULL, -1);
        return;
    }
    /* A job that waited past its function's async.max_age_ms is not run. */
    fn_config cfg;
    int64_t age = now_ms() - j->l.created_ms;
    if (async_config(d, f->name, j->l.version, &cfg, &eb) == 0 && age >= cfg.async.max_age_ms) {
        char why[160];
        snprintf(why, sizeof(why),
                 "not run: waited %lld ms in the queue, past async.max_age_ms (%lld ms)",
                 (long long)age, (long long)cfg.async.max_age_ms);
        free(body);
        settle(d, j, 504, why, NULL, 0, NULL, -1);
        return;
    }
    pool_request rq = {.name = f->name,
                       .version = j->l.version,
                       .type = IPC_INFER,
                       .body = body,
                       .body_fd = -1,
                       .body_len = len,
                       .json_len = json_len,
                       .background = true,
                       .done = on_call_done,
                       .user = j};
    int retry_after = 0;
    f->n_running++;
    d->n_calls++;
    j->sent_ns = rouse_now_ns();
    j->sent_wall_us = rouse_wall_us();
    j->body_len = len;
    pool_call *c = NULL;
    rc = pool_submit(d->o.pool, &rq, &c, &retry_after, &eb);
    if (rc < 0) {
        f->n_running--;
        d->n_calls--;
        /* The version is gone (deleted function) or cannot be loaded. */
        settle(d, j, rouse_err_http_status(rc), eb.msg, NULL, 0, NULL, -1);
        return;
    }
    j->call = c;
}

static void lease_done(void *user, int rc, const rouse_errbuf *eb, const jobq_reply *r)
{
    afn *f = user;
    async_dispatch *disp = f->d;
    f->leasing = false;
    disp->n_writes--;
    if (rc < 0) {
        LOG_WARN(MOD, "leasing jobs of %s: %s", f->name, eb->msg);
        /* Tried again after a pause, not at the next tick: under load the
         * loop ticks for every request, and a store that is down would be
         * asked thousands of times a second. */
        f->more = false;
        f->due_ms = now_ms() + LEASE_RETRY_MS;
        return;
    }
    for (int i = 0; i < r->n; i++) {
        ajob *j = job_new_lease(disp, f, &r->leases[i]);
        if (!j) break; /* left running: queued again at the next start */
        j->body = r->bodies[i];
        r->bodies[i] = NULL;
        j->body_len_stored = r->body_lens[i];
        j->json_len = r->json_lens[i];
        if (f->buf_tail)
            f->buf_tail->next = j;
        else
            f->buf = j;
        f->buf_tail = j;
        f->n_buf++;
    }
    /* Fewer than asked: nothing more is due now. */
    if (r->n == 0) f->more = false;
    f->due_ms = r->next_ms;
}

/* Whether this node's registry knows the function (the loop's reading
 * connection: local, no network). */
static bool fn_known(async_dispatch *d, afn *f)
{
    store_function sf;
    memset(&sf, 0, sizeof(sf));
    rouse_errbuf eb;
    bool known = store_function_get(d->o.st, f->name, &sf, &eb) == 0;
    if (known) store_function_fini(&sf);
    return known;
}

/* Sends what capacity allows and leases more when the buffer runs low. */
static void pump(async_dispatch *d, afn *f, int64_t now, int64_t *next)
{
    int limit = fn_limit(f);
    /* Stopping: what is leased stays leased, queued again at the next start. */
    while (!d->stopping && f->buf && f->n_running < limit) {
        ajob *j = f->buf;
        if (!f->have_cfg || f->cfg_version != j->l.version) {
            fn_config cfg;
            rouse_errbuf eb;
            async_config(d, f->name, j->l.version, &cfg, &eb);
            limit = fn_limit(f);
            if (f->n_running >= limit) break;
        }
        if (pool_free_capacity(d->o.pool, f->name, j->l.version) <= 0) break;
        f->buf = j->next;
        if (!f->buf) f->buf_tail = NULL;
        f->n_buf--;
        j->next = NULL;
        run(d, j);
    }
    if (f->due_ms >= 0 && f->due_ms <= now) f->more = true;
    if (f->due_ms > now && (*next < 0 || f->due_ms < *next)) *next = f->due_ms;
    if (d->stopping || f->leasing || !f->more || f->n_buf > LEASE_LOW) return;
    /* A function that has nothing at hand starts with a small lease, so
     * that its first jobs run while the rest are being leased. */
    int want = LEASE_AHEAD - f->n_buf;
    if (want > 2 * (f->n_buf + f->n_running) + LEASE_FIRST)
        want = 2 * (f->n_buf + f->n_running) + LEASE_FIRST;
    if (want > JOBQ_LEASE_MAX) want = JOBQ_LEASE_MAX;
    if (!jobq_caps_of(d->o.q)->lease_ahead) {
        /* Shared with other nodes: take only what runs here now, so that
         * the jobs this node cannot run go to one that can. */
        if (f->buf) return;
        if (!f->have_cfg && !fn_known(d, f)) {
            /* Not deployed here: its jobs are other nodes' to run (looked
             * at again later: a deploy may come). */
            f->more = false;
            f->due_ms = now + UNKNOWN_RECHECK_MS;
            if (*next < 0 || f->due_ms < *next) *next = f->due_ms;
            return;
        }
        want = f->have_cfg ? pool_free_capacity(d->o.pool, f->name, f->cfg_version) : 1;
        if (want > limit - f->n_running) want = limit - f->n_running;
        if (want <= 0) {
            /* Capacity comes back with a reply, which runs the loop. */
            if (*next < 0 || now + CAPACITY_RECHECK_MS < *next) *next = now + CAPACITY_RECHECK_MS;
            return;
        }
    }
    if (jobq_lease(d->o.q, f->name, now, want, lease_done, f) == 0) {
        f->leasing = true;
        d->n_writes++;
    }
}

/* --- expiry ---------------------------------------------------------------------- */

static void expire_done(void *user, int rc, const rouse_errbuf *eb, const jobq_reply *r)
{
    async_dispatch *d = user;
    d->expiring = false;
    d->n_writes--;
    if (rc < 0) {
        LOG_WARN(MOD, "removing expired jobs: %s", eb->msg);
        return;
    }
    if (r->n_items > 0) LOG_DEBUG(MOD, "%lld expired job(s) removed", (long long)r->n_items);
    rouse_errbuf e2;
    if (jobq_next_expiry(d->o.q, &d->next_expiry_ms, &e2) < 0) d->next_expiry_ms = -1;
}

static void tick_expiry(async_dispatch *d, int64_t now, int64_t *next)
{
    if (d->next_expiry_ms < 0 || d->expiring || d->stopping) return;
    /* At most one sweep a second: expiry is a matter of seconds. */
    int64_t at = d->next_expiry_ms;
    if (at < d->last_expire_ms + EXPIRE_EVERY_MS) at = d->last_expire_ms + EXPIRE_EVERY_MS;
    if (at > now) {
        if (*next < 0 || at < *next) *next = at;
        return;
    }
    d->last_expire_ms = now;
    if (jobq_expire(d->o.q, now, expire_done, d) == 0) {
        d->expiring = true;
        d->n_writes++;
    }
}

int async_tick(async_dispatch *d)
{
    int64_t now = now_ms();
    int64_t next = -1;
    /* The runs that ended, as one write (at once while stopping: what ran
     * is recorded before serve ends). */
    flush_settles(d, now, &next);
    for (afn *f = d->fns; f; f = f->next)
        pump(d, f, now, &next);
    tick_batches(d, now, &next);
    tick_expiry(d, now, &next);
    if (!d->stopping) {
        int q = jobq_tick(d->o.q, now);
        if (q >= 0 && (next < 0 || now + q < next)) next = now + q;
    }
    if (next < 0) return -1;
    return next <= now ? 0 : (int)(next - now);
}

/* --- life ------------------------------------------------------------------------- */

static int count_active(void *user, const char *function, int64_t n)
{
    async_dispatch *d = user;
    afn *f = fn_find(d, function, true);
    if (f) {
        f->n_active = n;
        f->more = true;
    }
    return 0;
}

static int pending_batch(void *user, int64_t id)
{
    batch_touch(user, id, false);
    return 0;
}

static int creating_batch(void *user, int64_t id, const char *function)
{
    async_batch_creating(user, function, id);
    return 0;
}

static void reset_done(void *user, int rc, const rouse_errbuf *eb, const jobq_reply *r)
{
    async_dispatch *d = user;
    d->n_writes--;
    if (rc < 0)
        LOG_ERROR(MOD, "queueing again the jobs a previous serve left running: %s", eb->msg);
    else if (r->n_items > 0)
        LOG_INFO(MOD, "%lld job(s) left running by a previous serve are queued again",
                 (long long)r->n_items);
}

/* A shared queue's count of a function's jobs (jobq_wake_fn): what
 * async.queue_limit bounds (all nodes' jobs), and work that may wait here. */
static void on_wake(void *user, const char *function, int64_t n_active)
{
    async_dispatch *d = user;
    if (!function) {
        for (afn *f = d->fns; f; f = f->next)
            f->n_active = 0;
        return;
    }
    afn *f = fn_find(d, function, true);
    if (!f) return;
    f->n_active = n_active;
    if (n_active > 0) f->more = true;
}

/* A shared queue's sweep found a batch to go on with (jobq_batch_wake_fn). */
static void on_batch_wake(void *user, int64_t id, const char *function, bool creating)
{
    async_dispatch *d = user;
    if (d->stopping) return;
    if (!creating) {
        batch_touch(d, id, true);
        return;
    }
    abatch *b = batch_get(d, id);
    if (b && b->creating) return; /* this node is creating it */
    LOG_INFO(MOD, "batch %lld: its creation stalled; going on with it", (long long)id);
    async_batch_creating(d, function, id);
}

int async_create(const async_opts *o, async_dispatch **out, rouse_errbuf *eb)
{
    async_dispatch *d = calloc(1, sizeof(*d));
    if (!d) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    d->o = *o;
    jobq_set_wake(o->q, on_wake, d);
    jobq_set_batch_wake(o->q, on_batch_wake, d);
    d->rng = rouse_now_ns() | 1;
    int rc = jobq_active_counts(o->q, count_active, d, eb);
    /* A batch whose creation a previous serve left unfinished goes on
     * from where it stopped. */
    if (rc == 0) rc = jobq_creating_batches(o->q, creating_batch, d, eb);
    if (rc == 0) rc = jobq_pending_batches(o->q, pending_batch, d, eb);
    if (rc == 0) rc = jobq_next_expiry(o->q, &d->next_expiry_ms, eb);
    /* Leases wait for the reset: it is the first write of this serve. */
    if (rc == 0 && (rc = jobq_reset_running(o->q, reset_done, d)) < 0)
        rouse_err_set(eb, rc, "cannot queue the jobs of a previous serve again");
    if (rc < 0) {
        async_destroy(d);
        return rc;
    }
    d->n_writes++;
    *out = d;
    return 0;
}

void async_stopping(async_dispatch *d)
{
    d->stopping = true;
}

int async_pending(const async_dispatch *d)
{
    return d->n_calls + d->n_writes + d->n_settle_q;
}

void async_destroy(async_dispatch *d)
{
    if (!d) return;
    jobq_set_wake(d->o.q, NULL, NULL);
    jobq_set_batch_wake(d->o.q, NULL, NULL);
    /* Jobs in buffers and in writes that will not complete now: still
     * running in the store, queued again at the next start. */
    while (d->all)
        job_free(d->all);
    free(d->flight);
    while (d->fns) {
        afn *f = d->fns;
        d->fns = f->next;
        free(f);
    }
    while (d->batches) {
        abatch *b = d->batches;
        d->batches = b->next;
        free(b);
    }
    free(d);
}
