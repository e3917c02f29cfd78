/*
 * Private parts of the pool (pool.c): its processes, version pools and
 * calls. Nothing outside the pool includes this header.
 *
 * Everything here is owned by serve's loop thread; nothing is locked.
 */
#ifndef ROUSE_SERVER_POOL_INT_H
#define ROUSE_SERVER_POOL_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "server/config.h"
#include "server/pool.h"
#include "server/zygote_proc.h"

typedef struct instance instance;
typedef struct vpool vpool;
typedef struct pool_call call;

/* Shared regions between serve and an instance (worker/ipc.h) start at
 * REGION_MIN_BYTES (pages are only allocated when touched) and grow to the
 * next power of two that holds a body or a reply, up to REGION_MAX_BYTES;
 * bigger bodies and replies travel in memfds of their own, whose per-request
 * cost is small next to their size. */
#define REGION_MIN_BYTES (1u << 20)
#define REGION_MAX_BYTES POOL_BODY_INLINE_MAX

/* How an instance came to be, for Rouse-Start and the cold-start record. */
typedef enum start_kind {
    START_WARM = 0, /* (a request served by an instance that was already up) */
    START_TEMPLATE, /* forked from a template that was ready */
    START_ZERO,     /* its template had to be started first */
} start_kind;

typedef enum inst_state {
    INST_STARTING, /* spawned, waiting for READY */
    INST_READY,    /* serving: idle when n_inflight == 0 */
    INST_STOPPING, /* told to stop or killed; waiting to be reaped */
} inst_state;

struct pool_call {
    pool_done_fn done; /* NULL once cancelled: the reply is discarded */
    void *user;
    vpool *vp;
    uint64_t id;
    int type;    /* IPC_INFER / IPC_META */
    char *body;  /* malloc'd body, copied into the region at dispatch, or NULL */
    int body_fd; /* the body in a memfd (spilled, or made when the region was busy), or -1 */
    uint64_t body_len;
    int64_t json_len;
    uint64_t deadline_ns;
    uint64_t enq_ns, dispatch_ns;
    int64_t version; /* the version named in the response */
    bool first;      /* the first request of a freshly started instance */
    instance *inst;  /* when dispatched */
    call *next;
};

struct instance {
    ep_tag tag;
    vpool *vp; /* NULL for a deploy validator */
    /* A deploy validator until it answers: its completion. */
    bool validating;
    pool_done_fn validate_done;
    void *validate_user;
    pid_t pid;
    int sock; /* -1 once closed */
    inst_state state;
    int n_inflight;
    call *inflight, *inflight_tail; /* in dispatch order = reply order */
    uint64_t started_ns, ready_ns, idle_since_ns;
    bool killed_timeout;
    char fail_msg[256]; /* READY error message */
    /* Templates (is_template): not counted in any cap, never dispatched to. */
    bool is_template;
    uint64_t last_used_ns;        /* template: last spawn */
    uint64_t plan_ns, prepare_ns; /* template: its phase times (READY) */
    bool plan_cached;             /* template: the plan was already compiled */
    bool forked;                  /* template: forked by the zygote, not exec'd */
    /* Instances forked from a template. pid is 0 until the template (or the
     * instance's READY) says it. */
    instance *tmpl;    /* the template it comes from, NULL once that is gone */
    int peer_fd;       /* the socket end to pass once the template is ready, else -1 */
    uint64_t spawn_id; /* the IPC_SPAWN request that makes it */
    uint64_t spawn_ns; /* when IPC_SPAWN was sent */
    uint64_t fork_ns;  /* the fork, as the template measured it */
    uint64_t tmpl_start_ns, tmpl_plan_ns, tmpl_prepare_ns; /* START_ZERO: its template's */
    bool tmpl_forked;                                      /* START_ZERO: its template's */
    start_kind kind;
    bool served_first;
    bool dead; /* settled and unlinked: freed at the end of the loop iteration */
    /* The shared region (worker/ipc.h), mapped read-write; NULL until the
     * first request that fits. region_fd is kept only until the instance has
     * been sent it. region_call is the call it is lent to, or NULL. */
    void *region;
    uint64_t region_size;
    int region_fd;
    const call *region_call;
    uint64_t reply_hint; /* the largest reply that did not fit the region */
    instance *next;
};

/* One recorded cold start (GET /v1/functions/{name}). */
typedef struct cold_start {
    char name[STORE_NAME_MAX + 1];
    int64_t version;
    int pid;
    start_kind kind;
    int64_t at_ms; /* wall clock */
    double queue_ms, template_ms, plan_open_ms, prepare_ms, spawn_ms, fork_ms, first_infer_ms;
    bool template_forked; /* START_ZERO: the template came from the zygote */
} cold_start;

#define COLD_STARTS_KEPT 64
#define ORPHANS_KEPT 16

struct vpool {
    char name[STORE_NAME_MAX + 1];
    int64_t version;
    char model_path[PATH_MAX];
    fn_config cfg;
    int n_instances; /* not counting stopping ones */
    call *queue, *queue_tail;
    int n_queued;
    instance *tmpl;             /* its template (starting or ready), or NULL */
    bool retired;               /* another version took over: no min, stop when idle */
    uint64_t last_request_ns;   /* keeps the template alive (template_ttl_ms) */
    uint64_t no_start_until_ns; /* back-off after a failed start (min keeps trying) */
    uint64_t reply_ewma_ns;     /* dispatch to reply, smoothed: decides spinning */
    uint64_t gap_ewma_ns;       /* an instance's reply to its next request, smoothed */
    vpool *next;
};

struct pool {
    int epfd;
    char exe[PATH_MAX];
    char plan_dir[PATH_MAX + 8];
    char log_level[16];
    store *st;
    blobstore *blobs;
    zygote_proc zyg;
    /* Until then the loop polls instead of sleeping (see SPIN_* below): a
     * reply expected within microseconds is picked up without paying a
     * wake-up of serve. */
    uint64_t reply_due_ns;
    uint64_t next_call_id;
    uint64_t next_spawn_id;
    vpool *pools;
    instance *instances;
    instance *dead;  /* settled instances whose events may still be in this epoll batch */
    int n_instances; /* live instances (global cap) */
    int max_instances;
    cold_start cold[COLD_STARTS_KEPT]; /* ring, newest at cold_head - 1 */
    int cold_head, n_cold;
    /* Processes reaped before serve learned their pid (a template's reply
     * still unread): matched when the pid arrives. */
    struct {
        pid_t pid;
        int wstatus;
    } orphans[ORPHANS_KEPT];
    int orphan_head;
};

/* Replies expected sooner than SPIN_REPLY_MAX_NS after dispatch (by the
 * pool's average) make serve poll for up to twice that average plus
 * SPIN_SLACK_NS before it sleeps. On virtual machines a cross-CPU wake-up
 * costs tens of microseconds, more than a small model's whole inference;
 * polling for a reply that is about to come saves one of them per request.
 * The poll yields the CPU to any other runnable task on each round, and
 * slower models never spin at all. */
#define SPIN_REPLY_MAX_NS (200ull * 1000ull)
#define SPIN_SLACK_NS (20ull * 1000ull)
/* Instances of a pool whose next request usually follows a reply within
 * POLL_GAP_MAX_NS poll for it (twice the average gap plus POLL_SLACK_NS)
 * instead of sleeping: the same wake-up saving on the instance's side. */
#define POLL_GAP_MAX_NS (60ull * 1000ull)
#define POLL_SLACK_NS (10ull * 1000ull)

#endif
