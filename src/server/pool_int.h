/*
 * What the parts of the pool share (pool_sched.c, pool_registry.c,
 * pool_stats.c, pool_check.c): the pool itself, version pools, calls, and
 * the three kinds of process, each a struct that embeds the lifecycle's
 * proc header first. Nothing outside the pool includes this header.
 *
 * Everything here is owned by serve's loop thread; nothing is locked.
 *
 * Invariants (checked by pool_check):
 * - A call is either in its pool's queue (w == NULL) or in one worker's
 *   in-flight list (w set), never both; in-flight order is reply order,
 *   except for a generator's streams decoded together (concurrency > 1),
 *   which end in any order.
 * - vp->n_instances counts the starting and ready workers on vp->workers;
 *   p->n_instances is the sum over pools (the global cap); stopping ones
 *   (closed or killed, not yet reaped) are not counted.
 * - A worker is on p->idle exactly when it is ready, open and has nothing
 *   in flight; the list is oldest idle first.
 * - A pool has at most one template (vp->tmpl, starting or ready), and
 *   t->vp == vp exactly for that one; a template that stops leaves its pool.
 * - A worker is on its template's waiting list (w->t set) from its start
 *   until the template answered its spawn or went away.
 * - A worker's region is lent to at most one call, which is in its
 *   in-flight list.
 * - A worker's in-flight calls form w->n_msgs messages: a batch's calls
 *   are consecutive, each carrying its batch_id and batch_n, the first of
 *   them owning the region; n_msgs <= n_inflight.
 * - p->n_spares is the number of templates with `spare` set; only a
 *   template that is its pool's (t->vp set) keeps one.
 * - A held spare (t->held) is a worker connected to serve ahead of need:
 *   counted as its template's spare, not as an instance, never on
 *   vp->workers nor on p->idle, w->held set and w->vp == t->vp; a
 *   released one has w->vp == NULL.
 * - Instances and spares together never exceed the global cap:
 *   p->n_instances + p->n_spares <= p->max_instances.
 */
#ifndef ROUSE_SERVER_POOL_INT_H
#define ROUSE_SERVER_POOL_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/timeutil.h"
#include "server/batch_policy.h"
#include "server/config.h"
#include "server/isolation.h"
#include "server/keepalive_policy.h"
#include "server/pool.h"
#include "server/pool_ipc.h"
#include "server/pool_proc.h"
#include "server/pool_stats.h"

typedef struct vpool vpool;
typedef struct pool_call call;
typedef struct worker worker;
typedef struct tmpl tmpl;
typedef struct validator validator;

struct pool_call {
    pool_done_fn done; /* NULL once cancelled: the reply is discarded */
    pool_chunk_fn chunk;
    void *user;
    vpool *vp;
    uint64_t id;
    int type;    /* IPC_INFER / IPC_META / IPC_GENERATE */
    bool chunked; /* a streamed piece of its reply came */
    bool timed_out; /* IPC_GENERATE past its deadline: the instance was told to end it */
    char *body;  /* malloc'd body, copied into the region at dispatch, or NULL */
    int body_fd; /* the body in a memfd (spilled, or made when the region was busy), or -1 */
    uint64_t body_len;
    int64_t json_len;
    uint64_t deadline_ns;
    uint64_t enq_ns, dispatch_ns;
    int64_t version; /* the version named in the response */
    bool first;      /* the first request of a freshly started instance */
    bool background; /* waits behind synchronous calls (pool_request.background) */
    bool left;       /* a batch before it took only its share: it waits for no company */
    uint64_t batch_id; /* the batch message it was sent in, 0 when alone */
    int batch_n;       /* the calls of that message */
    uint64_t send_cpu_ns; /* batching: serve's CPU time sending its message */
    worker *w;         /* when dispatched */
    call *next;
};

/* An instance: serves the calls of one version pool. */
struct worker {
    proc h;
    vpool *vp;             /* NULL once its pool is gone */
    worker *vprev, *vnext; /* on vp->workers */
    worker *iprev, *inext; /* on p->idle while idle */
    bool idle;
    int n_inflight;
    int n_msgs; /* messages in flight (a batch is one); what concurrency counts */
    call *inflight, *inflight_tail; /* in dispatch order = reply order */
    uint64_t idle_since_ns;
    bool killed_timeout;
    /* Forked by a template: pid is 0 until the template (or READY) says it. */
    tmpl *t;               /* the template whose answer it waits for, or NULL */
    worker *tprev, *tnext; /* on t->waiting */
    int peer_fd;           /* the socket end to pass once the template is ready, else -1 */
    uint64_t spawn_id;     /* the IPC_SPAWN request that makes it */
    uint64_t spawn_ns;     /* when IPC_SPAWN was sent */
    uint64_t fork_ns;      /* the fork, as the template measured it */
    uint64_t tmpl_start_ns, tmpl_plan_ns, tmpl_prepare_ns; /* START_ZERO: its template's */
    bool tmpl_forked, tmpl_kept;                           /* START_ZERO: its template's */
    start_kind kind;
    bool served_first;
    unsigned classes_run; /* batch size classes it has run (bit: batch_class) */
    /* Started for its template's warm spare: its first call was sent with
     * the spawn, before it said READY (the spare reads it as soon as it is
     * handed the socket: no round trip through serve in between). */
    bool primed;
    /* A template's warm spare connected to serve ahead of need (t->held):
     * not an instance until a request takes it (promote_held). */
    bool held;
    uint64_t promoted_ns; /* was held: when it became an instance (promote_held), else 0 */
    pool_region region;
};

/* A function version's template: forks its workers; not counted in any cap,
 * never dispatched to. */
struct tmpl {
    proc h;
    vpool *vp;                    /* its pool while it is vp->tmpl, else NULL */
    uint64_t last_used_ns;        /* last spawn */
    uint64_t plan_ns, prepare_ns; /* its phase times (READY) */
    bool plan_cached;             /* the plan was already compiled */
    bool session_kept;            /* opened and prepared by the zygote, taken whole */
    bool forked;                  /* forked by the zygote, not exec'd */
    worker *waiting;              /* workers waiting for its answer */
    int n_waiting;
    /* Its spare (an instance forked ahead of need, worker/template.c): kept
     * only while serve allows it one (counted in p->n_spares against the
     * instance cap); spare_pid once the spare said it is warm. */
    bool spare;
    pid_t spare_pid;
    /* The warm spare, once it is connected to serve: a worker given its
     * socket ahead of need (hold_spare), whom a request then reaches as it
     * reaches a warm instance; NULL while the spare is the template's. */
    worker *held;
    tmpl *prev, *next; /* on p->templates until reaped */
    /* Whose it is, kept for the description after it left its pool. */
    char name[STORE_NAME_MAX + 1];
    int64_t version;
};

/* A deploy's model check. */
struct validator {
    proc h;
    validator *prev, *next; /* on p->validators while it has not answered */
    bool answered;
    pool_done_fn done;
    void *user;
};

struct vpool {
    char name[STORE_NAME_MAX + 1];
    int64_t version;
    char model_path[PATH_MAX];
    fn_config cfg;
    worker *workers; /* every worker of this pool not yet reaped */
    int n_instances; /* starting and ready ones among them */
    call *queue, *queue_tail; /* synchronous calls first, then background ones */
    int n_queued;
    int n_bg_queued; /* background calls among them */
    tmpl *tmpl;                 /* its template (starting or ready), or NULL */
    bool retired;               /* another version took over: no min, stop when idle */
    uint64_t last_request_ns;   /* keeps the template alive (template_ttl_ms) */
    uint64_t no_start_until_ns; /* back-off after a failed start (min keeps trying) */
    uint64_t fetch_ticket;      /* a blob of its config being fetched (start waits), or 0 */
    struct pool *pool_of;       /* its pool, for that fetch's completion */
    uint64_t reply_ewma_ns;     /* dispatch to reply, smoothed: decides spinning */
    uint64_t region_bytes;      /* the largest shared region its instances needed */
    uint64_t spare_after_ns;    /* no spare asked for before (a first reply's way out) */
    uint64_t gap_ewma_ns;       /* an instance's reply to its next request, smoothed */
    /* Its requests' idle-time histogram (scaling.keep_alive "learned";
     * carried over from the version it replaces) and the templates the
     * policy started ahead of a request. */
    ka_state ka;
    uint64_t n_prewarms;
    /* Dynamic batching (cfg.batching): auto mode's limit, a batch waiting
     * for more calls until batch_due_ns (0: none), how often calls come,
     * its run times, counts for status and metrics, and the activation memory its
     * template reported for the largest batch. */
    batch_aimd aimd;
    uint64_t batch_due_ns;
    uint64_t last_arrival_ns, arrival_gap_ns; /* its calls' mean gap, smoothed */
    uint32_t n_lone;                          /* calls sent alone (1 in 8 timed) */
    uint32_t lone_since_probe; /* calls the lone rule sent since a batch last went */
    bool lone_held;            /* the lone rule decided; until a batch's reply is measured */
    uint64_t n_batches, n_batched_calls;
    uint64_t n_why[BATCH_WHYS]; /* the calls sent by pump_batch, by the rule that sent them */
    batch_runs runs;            /* run and CPU times by batch size */
    uint64_t batch_mem_bytes;
    vpool *next;
};

struct pool {
    proc_table procs;
    char exe[PATH_MAX];
    char plan_dir[PATH_MAX + 8];
    char log_level[16];
    int weight_pages; /* rouse_weight_pages, handed to templates */
    int gen_weight_pages; /* the same, to text generators' */
    const isolation *iso; /* the tier templates run at; borrowed */
    uint64_t n_oom_kills; /* instances killed by their memory limit */
    store *st;
    blobstore *blobs;
    struct blob_remote *remote; /* pool_opts.remote */
    uint64_t (*clock)(void *user); /* NULL: the monotonic clock */
    void *clock_user;
    /* Until then the loop polls instead of sleeping (see SPIN_* in
     * pool_sched.c): a reply expected within microseconds is picked up
     * without paying a wake-up of serve. */
    uint64_t reply_due_ns;
    /* The loop's CPU time polling since a reply was last handed out: the
     * next reply of a batching version counts it as its message's wait
     * (pool_note_poll). */
    uint64_t poll_cpu_ns;
    uint64_t poll_timed_due_ns; /* reply_due_ns for replies of batching versions */
    uint64_t next_call_id;
    uint64_t next_spawn_id;
    uint64_t next_batch_id;
    /* Wakes the loop when a waiting batch's max_delay passes (EP_BATCH_TIMER;
     * -1 under a test clock, whose pool_tick does it). */
    ep_tag batch_tag;
    int batch_timer_fd;
    uint64_t batch_timer_at; /* armed for then, 0: not armed */
    vpool *pools;
    tmpl *templates; /* every template not yet reaped */
    validator *validators;
    worker *idle_head, *idle_tail; /* ready workers with nothing in flight, oldest first */
    int n_instances;               /* starting and ready workers (global cap) */
    int n_spares;                  /* templates allowed a spare: the cap counts them too */
    int max_instances;
    int64_t ka_minute_ms; /* the keep-alive policy's minute */
    /* Several nodes: this node's rank among the live ones and their number
     * (pool_set_min_share); 0 and 1 alone. */
    int min_rank, min_nodes;
    cold_log cold;
    /* pool_opts.output / ended / hooks_user */
    void (*output)(void *user, const char *name, int64_t version, int pid, int fd);
    void (*ended)(void *user, const char *name, int64_t version, int pid, const char *what);
    void *hooks_user;
};

static inline uint64_t pool_now(const pool *p)
{
    return p->clock ? p->clock(p->clock_user) : rouse_now_ns();
}

#endif
