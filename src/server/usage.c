/*
 * Usage metering: every invocation record (invocation.h) becomes a row of
 * the usage store (store/usage.h), written off the loop by the registry's
 * writer thread in batches, and old rows roll up into hourly aggregates.
 *
 * Guarantees:
 * - Never one transaction per request: records collect in a buffer on the
 *   loop, and the buffer goes to the writer as ONE submission when it holds
 *   USAGE_BATCH_MAX records or its oldest record is usage_flush_ms old
 *   (default 200 ms); the writer's group commit may add it to other writes'
 *   transaction.
 * - SIGTERM loses nothing: usage_stop submits the buffer after MHD has
 *   completed every request, and durable_stop then finishes the write.
 * - SIGKILL loses at most the records of the last usage_flush_ms (the
 *   buffer) plus those of a batch whose COMMIT had not returned.
 * - Memory stays bounded when the disk is slower than the traffic: past
 *   USAGE_MAX_PENDING writes waiting in the writer, a batch is dropped,
 *   counted and logged instead of queued.
 * - Roll-ups (records older than --usage-retention into hourly
 *   aggregates) run on the writer thread too, one hour per write, at start
 *   and every USAGE_ROLLUP_INTERVAL_MS (or every retention period when that
 *   is shorter, at least a second apart), again at once while older hours
 *   remain.
 * - GET /v1/usage reads on a thread of its own with its own connection
 *   (the query thread, a writer without a registry), so a long query never
 *   holds up the loop or the registry's writes.
 * - With --state postgres:// (several nodes): records are still written
 *   here first, and listed to ship in the same transaction; the shipper
 *   (usage_ship.c) copies them to PostgreSQL, where roll-ups and queries
 *   run (GET /v1/usage: the query thread's own PostgreSQL connection, 503
 *   "usage store unavailable" while PostgreSQL is away). The local
 *   roll-up becomes a prune: records older than the retention that the
 *   shipper's cursor has passed are removed, never one still listed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/prom.h"
#include "server/server_int.h"
#include "server/usage_ship.h"
#include "store/usage.h"
#include "store/usage_pg.h"

#define MOD "usage"
/* Records per write: a COMMIT rewrites the pages it touched into the WAL
 * (the table's and the indexes' last leaves), so larger batches write
 * each page fewer times (about a fifth less of the writer's CPU per record
 * at 1024 than at 256). A partial batch still waits at most
 * usage_flush_ms. */
#define USAGE_BATCH_MAX 1024
#define USAGE_MAX_PENDING 16 /* batches: 16k records, as 64 batches of 256 were */
#define USAGE_ROLLUP_INTERVAL_MS 60000
/* Records inserted between two yields of the writer's core (about 0.1 ms
 * of its CPU): a batch never holds a core the loop or an instance waits
 * for longer than that. */
#define USAGE_SLICE 64

/* A batch of n records (room for USAGE_BATCH_MAX). */
typedef struct batch_arg {
    int n;
    usage_rec recs[];
} batch_arg;

struct usage {
    server *srv;
    batch_arg *buf; /* the batch being filled, in place */
    int n;
    uint64_t oldest_ns; /* when the oldest buffered record came */
    uint64_t flush_ns;  /* usage_flush_ms */
    int64_t retention_us;
    uint64_t next_rollup_ns;
    uint64_t rollup_every_ns; /* USAGE_ROLLUP_INTERVAL_MS, or the retention when shorter */
    bool rollup_queued;
    uint64_t n_dropped;
    /* The query thread and its connection (only that thread uses it). */
    store *qst;
    ep_writer q;
    /* --state postgres:// (pg_url NULL without): the shipper, this node's
     * name, and the query thread's PostgreSQL connection. */
    usage_ship *ship;
    char node[STORE_NAME_MAX + 1];
    const char *pg_url;
    pg_conn *qpg; /* the query thread's */
};

/* What the writer gets for a batch: the buffer itself, handed over (no copy
 * of up to USAGE_BATCH_MAX records on the loop); freed by release_batch on
 * the loop once the write is done or abandoned. */
typedef struct batch_ref {
    batch_arg *b;
    bool listed; /* list each record to ship (--state postgres://) */
} batch_ref;

static int apply_batch(store *st, void *p, rouse_errbuf *eb)
{
    const batch_arg *a = ((const batch_ref *)p)->b;
    int rc = ((const batch_ref *)p)->listed ? usage_outbox_tx(st, eb) : 0;
    for (int i = 0; i < a->n && rc == 0; i += USAGE_SLICE) {
        /* Whoever waits for this core (the loop, an instance) runs first. */
        if (i > 0) sched_yield();
        rc = usage_insert_tx(st, a->recs + i, a->n - i < USAGE_SLICE ? a->n - i : USAGE_SLICE, eb);
    }
    return rc;
}

static void batch_done(void *user, int rc, const rouse_errbuf *eb, void *p)
{
    (void)user;
    const batch_arg *a = ((const batch_ref *)p)->b;
    if (rc < 0) LOG_ERROR(MOD, "%d usage record(s) lost: %s", a->n, eb->msg);
}

static void release_batch(void *p)
{
    free(((batch_ref *)p)->b);
}

static batch_arg *batch_alloc(void)
{
    return malloc(sizeof(batch_arg) + USAGE_BATCH_MAX * sizeof(usage_rec));
}

static void flush(struct usage *u)
{
    if (u->n == 0) return;
    server *s = u->srv;
    int n = u->n;
    u->n = 0;
    if (!s->writer.w) return;
    if (store_writer_pending(s->writer.w) >= USAGE_MAX_PENDING) {
        u->n_dropped += (uint64_t)n;
        LOG_ERROR(MOD,
                  "%d usage record(s) dropped: the writer is %d writes behind (%llu dropped "
                  "since start)",
                  n, store_writer_pending(s->writer.w), (unsigned long long)u->n_dropped);
        return;
    }
    /* The buffer goes to the writer; the next records go to a new one. */
    batch_arg *next = batch_alloc();
    if (!next) {
        u->n_dropped += (uint64_t)n;
        LOG_ERROR(MOD, "%d usage record(s) dropped: out of memory", n);
        return;
    }
    u->buf->n = n;
    batch_ref ref = {.b = u->buf, .listed = u->ship != NULL};
    int rc = store_writer_submit_background(s->writer.w, apply_batch, &ref, sizeof(ref), batch_done,
                                            release_batch, u);
    if (rc < 0) {
        /* Nothing was handed over: the buffer stays ours. */
        free(next);
        u->n_dropped += (uint64_t)n;
        LOG_ERROR(MOD, "%d usage record(s) dropped: %s", n,
                  rc == ROUSE_ENOMEM ? "out of memory" : "the writer is stopping");
        return;
    }
    u->buf = next;
}

static void on_invocation(void *user, const invocation *inv)
{
    struct usage *u = user;
    usage_rec *r = &u->buf->recs[u->n];
    r->ts_us = inv->ts_us;
    r->version = inv->version;
    r->queue_us = (int64_t)inv->queue_us;
    r->start_us = (int64_t)inv->start_us;
    r->run_us = (int64_t)inv->run_us;
    r->total_us = (int64_t)inv->total_us;
    r->memory_mb = inv->memory_mb;
    r->bytes_in = (int64_t)inv->bytes_in;
    r->bytes_out = (int64_t)inv->bytes_out;
    r->start = (int)inv->start;
    r->status = inv->status;
    /* Whole arrays, each NUL-terminated inside (invocation.h): copies of a
     * size known here, no length to find per field. */
    _Static_assert(sizeof(r->request_id) >= sizeof(inv->request_id), "request id sizes");
    _Static_assert(sizeof(r->trace_id) == sizeof(inv->trace_id), "trace id sizes");
    _Static_assert(sizeof(r->function) == sizeof(inv->function), "function name sizes");
    _Static_assert(sizeof(r->tenant) == sizeof(inv->tenant), "tenant name sizes");
    memcpy(r->request_id, inv->request_id, sizeof(inv->request_id));
    memcpy(r->trace_id, inv->trace_id, sizeof(r->trace_id));
    memcpy(r->function, inv->function, sizeof(r->function));
    memcpy(r->tenant, inv->tenant, sizeof(r->tenant));
    if (u->n++ == 0) u->oldest_ns = rouse_now_ns();
    if (u->n == USAGE_BATCH_MAX) flush(u);
}

/* --- roll-up ---------------------------------------------------------------- */

typedef struct rollup_arg {
    int64_t cutoff_us;
    int64_t n_rows;
    bool more;
} rollup_arg;

typedef struct rollup_arg_pg {
    rollup_arg r;
    int64_t shipped_seq; /* >= 0: prune what the shipper passed instead */
} rollup_arg_pg;

static int apply_rollup(store *st, void *p, rouse_errbuf *eb)
{
    rollup_arg_pg *a = p;
    if (a->shipped_seq >= 0)
        return usage_prune_shipped_tx(st, a->r.cutoff_us, a->shipped_seq, &a->r.n_rows, &a->r.more,
                                      eb);
    return usage_rollup_tx(st, a->r.cutoff_us, &a->r.n_rows, &a->r.more, eb);
}

static void request_rollup(struct usage *u);

static void rolled_up(void *user, int rc, const rouse_errbuf *eb, void *p)
{
    struct usage *u = user;
    const rollup_arg *a = p;
    u->rollup_queued = false;
    if (rc < 0) {
        LOG_WARN(MOD, "rolling usage up into hours: %s", eb->msg);
        return;
    }
    if (a->n_rows > 0)
        LOG_DEBUG(MOD, "%s %lld usage record(s)", u->ship ? "removed shipped" : "rolled up",
                  (long long)a->n_rows);
    if (a->more) request_rollup(u); /* older hours remain */
}

static void request_rollup(struct usage *u)
{
    server *s = u->srv;
    if (u->rollup_queued || !s->writer.w || s->stopping) return;
    rollup_arg_pg a = {.r.cutoff_us = rouse_wall_us() - u->retention_us, .shipped_seq = -1};
    /* A retention of an hour or more rolls whole hours only, so that each
     * hour's peak concurrency comes from all of its records. */
    if (u->retention_us >= USAGE_HOUR_US)
        a.r.cutoff_us = a.r.cutoff_us / USAGE_HOUR_US * USAGE_HOUR_US;
    /* Shipping: the roll-up is PostgreSQL's; here only what was shipped
     * goes (a cursor not read yet passes nothing). */
    if (u->ship) {
        int64_t c = usage_ship_cursor(u->ship);
        a.shipped_seq = c > 0 ? c : 0;
    }
    if (store_writer_submit_background(s->writer.w, apply_rollup, &a, sizeof(a), rolled_up, NULL,
                                       u) == 0)
        u->rollup_queued = true;
}

/* --- life cycle --------------------------------------------------------------- */

/* This node's name: --node-name, else the host name (lowercase, cut at
 * STORE_NAME_MAX), else "rouse". */
static void node_name_of(server *s, char out[STORE_NAME_MAX + 1])
{
    if (s->opts.node_name) {
        snprintf(out, STORE_NAME_MAX + 1, "%s", s->opts.node_name);
        return;
    }
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) < 0 || !host[0]) snprintf(host, sizeof(host), "rouse");
    host[STORE_NAME_MAX] = '\0';
    for (char *p = host; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    snprintf(out, STORE_NAME_MAX + 1, "%s", host);
}

int usage_start(server *s, rouse_errbuf *eb)
{
    if (s->opts.metering_off) return 0;
    struct usage *u = calloc(1, sizeof(*u));
    if (!u) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    u->srv = s;
    u->buf = batch_alloc();
    if (!u->buf) {
        free(u);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    int flush_ms = s->opts.usage_flush_ms > 0 ? s->opts.usage_flush_ms
                                              : ROUSE_USAGE_FLUSH_MS_DEFAULT;
    u->flush_ns = (uint64_t)flush_ms * 1000000ull;
    int64_t ret_ms = s->opts.usage_retention_ms > 0 ? s->opts.usage_retention_ms
                                                    : ROUSE_USAGE_RETENTION_MS_DEFAULT;
    u->retention_us = ret_ms * 1000;
    int64_t every_ms = ret_ms < USAGE_ROLLUP_INTERVAL_MS ? ret_ms : USAGE_ROLLUP_INTERVAL_MS;
    if (every_ms < 1000) every_ms = 1000;
    u->rollup_every_ns = (uint64_t)every_ms * 1000000ull;
    node_name_of(s, u->node);
    int rc = store_open(s->data_dir, &u->qst, eb);
    if (rc < 0) goto out_free;
    if (s->opts.state_url) {
        u->pg_url = s->opts.state_url;
        usage_ship_opts so = {.data_dir = s->data_dir,
                              .url = s->opts.state_url,
                              .node = u->node,
                              .retention_us = u->retention_us,
                              .rollup_every_ms = (int64_t)(u->rollup_every_ns / 1000000ull)};
        if ((rc = usage_ship_start(&so, &u->ship, eb)) < 0) goto out_store;
        LOG_INFO(MOD, "usage records of node %s ship to PostgreSQL", u->node);
    }
    if ((rc = store_writer_create(NULL, "usage-query", &u->q.w, eb)) < 0) goto out_ship;
    u->q.tag.kind = EP_WRITER;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &u->q.tag};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, store_writer_fd(u->q.w), &ev) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "cannot watch the usage query thread");
        goto out_writer;
    }
    if ((rc = invocation_sink_add(&s->sinks, on_invocation, u)) < 0) {
        rouse_err_set(eb, rc, "too many invocation sinks");
        goto out_writer;
    }
    s->usage = u;
    request_rollup(u);
    u->next_rollup_ns = rouse_now_ns() + u->rollup_every_ns;
    return 0;

out_writer:
    store_writer_destroy(u->q.w);
out_ship:
    usage_ship_stop(u->ship);
out_store:
    store_close(u->qst);
out_free:
    free(u->buf);
    free(u);
    return rc;
}

void usage_stop(server *s)
{
    struct usage *u = s->usage;
    if (!u) return;
    flush(u);
    if (u->n_dropped)
        LOG_WARN(MOD, "%llu usage record(s) were dropped since start",
                 (unsigned long long)u->n_dropped);
    /* Queries in flight finish; their requests are gone (MHD stopped), so
     * the results are released without replies. */
    store_writer_destroy(u->q.w);
    usage_pg_close(u->qpg); /* the query thread is gone */
    store_close(u->qst);
    /* The shipper ships the last batch once the writer has written it
     * (usage_finish, after durable_stop). */
    s->usage_ship = u->ship;
    s->usage = NULL;
    free(u->buf);
    free(u);
}

int usage_tick(server *s)
{
    struct usage *u = s->usage;
    if (!u) return -1;
    uint64_t now = rouse_now_ns();
    if (u->n > 0 && now - u->oldest_ns >= u->flush_ns) flush(u);
    if (now >= u->next_rollup_ns) {
        request_rollup(u);
        u->next_rollup_ns = now + u->rollup_every_ns;
    }
    uint64_t next = u->next_rollup_ns;
    if (u->n > 0 && u->oldest_ns + u->flush_ns < next) next = u->oldest_ns + u->flush_ns;
    return next <= now ? 0 : (int)((next - now + 999999) / 1000000);
}

void usage_finish(server *s)
{
    usage_ship_stop(s->usage_ship);
    s->usage_ship = NULL;
}

int usage_query_apply(struct usage *u, const usage_query *q, usage_result *out, bool *unavailable,
                      rouse_errbuf *eb)
{
    *unavailable = false;
    if (!u->pg_url) return usage_query_run(u->qst, q, out, eb);
    /* A connection that failed is replaced by a new one for the next
     * query; while PostgreSQL is away, each query tries once. */
    if (u->qpg && !usage_pg_ok(u->qpg)) {
        usage_pg_close(u->qpg);
        u->qpg = NULL;
    }
    int rc = u->qpg ? 0 : usage_pg_open(u->pg_url, &u->qpg, eb);
    if (rc == 0) rc = usage_pg_query(u->qpg, q, out, eb);
    if (rc < 0 && (!u->qpg || !usage_pg_ok(u->qpg))) *unavailable = true;
    return rc;
}

const char *usage_node(server *s)
{
    return s->usage ? s->usage->node : "";
}

int usage_metrics_write(server *s, rouse_buf *b)
{
    struct usage *u = s->usage;
    if (!u || !u->ship) return 0;
    int rc = prom_family(b, "rouse_usage_unshipped", "gauge",
                         "Usage records written on this node and not yet shipped to PostgreSQL.");
    if (rc == 0) rc = prom_sample_u64(b, "rouse_usage_unshipped", NULL,
                                      (uint64_t)usage_ship_unshipped(u->ship));
    return rc;
}

store_writer *usage_query_writer(server *s)
{
    return s->usage ? s->usage->q.w : NULL;
}

store *usage_query_store(server *s)
{
    return s->usage ? s->usage->qst : NULL;
}
