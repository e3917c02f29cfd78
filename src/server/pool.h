/*
 * The pool: every process serve runs models in (the zygote, one template
 * per function version in use, their instances, deploy validators) and the
 * requests waiting for them. This is its whole interface; the layer above
 * (the HTTP part) submits calls and gets one result per call back through a
 * callback, and the loop hands it its events and asks it for its next
 * deadline. The pool knows nothing of HTTP: only a pool_result crosses
 * back, and turning it into a reply is the caller's job.
 *
 * Everything runs on serve's loop thread. Callbacks run from inside pool
 * calls (pool_on_event, pool_tick, pool_reap, pool_fail_all, ...), never
 * from pool_submit or pool_validate themselves: if those return an error,
 * the callback never runs (libuv's rule). After pool_cancel the callback
 * never runs either.
 */
#ifndef ROUSE_SERVER_POOL_H
#define ROUSE_SERVER_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "rouse/err.h"
#include "server/config.h"
#include "server/ep.h"
#include "store/blob.h"
#include "store/store.h"

typedef struct pool pool;
typedef struct pool_call pool_call;

/* Bodies up to this size are best handed to pool_submit in memory: they
 * are copied into the instance's shared region. Bigger ones travel in a
 * memfd of their own (see worker/ipc.h). */
#define POOL_BODY_INLINE_MAX (32u << 20)

typedef struct pool_opts {
    int epfd;              /* serve's epoll: process sockets are registered with EP_PROC tags */
    const char *exe;       /* the rouse binary that templates and validators exec */
    const char *plan_dir;  /* compiled plans by model digest */
    const char *log_level; /* handed down to the processes */
    int max_instances;     /* global cap on instances */
    int weight_pages;      /* rouse_weight_pages: what templates copy weights into */
    int gen_weight_pages;  /* the same for text generators' templates */
    const struct isolation *iso; /* the tier templates run at (isolation.h); borrowed */
    store *st;             /* the registry: configs and routes of function versions */
    blobstore *blobs;      /* model files */
    /* Where a blob this node lacks comes from (store/blob_remote.h): a
     * template whose model, tokenizer or calibration blob is missing
     * waits for its fetch. NULL: nowhere (the start fails as before). */
    struct blob_remote *remote;
    /* The clock in ns (monotonic); NULL for rouse_now_ns. Unit tests pass
     * one they move by hand. */
    uint64_t (*clock)(void *user);
    void *clock_user;
    /* The keep-alive policy's minute in ms (0: 60000); shorter only to
     * replay a compressed trace (rouse serve --keepalive-minute-ms). */
    int64_t keepalive_minute_ms;
    /* Optional: what a function's processes say. output takes fd, the read
     * end of a template's output pipe (its instances write there too);
     * ended gets a sentence for a process that ended abnormally (a crash,
     * a failed load). Both run on the loop, from inside pool calls. */
    void (*output)(void *user, const char *name, int64_t version, int pid, int fd);
    void (*ended)(void *user, const char *name, int64_t version, int pid, const char *what);
    void *hooks_user;
} pool_opts;

/* How a call ended. fd and body belong to the callback (close / free them),
 * the strings only for the duration of the call. */
typedef struct pool_result {
    int status;               /* HTTP status; a validation: 0 when the model loaded */
    const char *content_type; /* of the body, or NULL */
    int fd;                   /* the body in a memfd, or -1 */
    char *body;               /* or a malloc'd body, or NULL */
    uint64_t len;             /* body length */
    int64_t json_len;         /* Inference-Header-Content-Length, or -1 */
    const char *error;        /* a serve-side error message (no body then), or NULL */
    const char *start;        /* how the instance started: warm, template, zero; or NULL */
    const char *timing;       /* queue, start and infer times (Server-Timing), or NULL */
    const char *warning;      /* a Warning for the client, or NULL */
    /* A generation's time to its first token and mean time between the
     * next ones, measured in the instance (0 otherwise). */
    uint64_t ttft_ns, itl_ns;
    int64_t version;          /* the version that answered, when > 0 */
    int retry_after;          /* seconds a client turned away should wait, when > 0 */
    /* For metering (server/invocation.h): the call's wait in the queue
     * (not counting start_ns), the start of the instance it waited for, its
     * inference in the instance, and the version's memory_mb (0 when the
     * call had no version pool). */
    uint64_t queue_ns, start_ns, run_ns;
    int64_t memory_mb;
} pool_result;

typedef void (*pool_done_fn)(void *user, pool_result *res);

/* A piece of a streamed reply (IPC_GENERATE): everything but data is the
 * first piece's business (the reply's status and headers). Borrowed for
 * the duration of the call. */
typedef struct pool_chunk {
    int status;
    const char *content_type;
    const char *warning; /* "" when none */
    const char *start;   /* as pool_result's */
    const char *timing;  /* queue, start and time to the first token */
    const char *data;
    size_t len;
    bool first;
} pool_chunk;

typedef void (*pool_chunk_fn)(void *user, const pool_chunk *ch);

/* One call to a function version. The pool takes body (malloc'd) and
 * body_fd (a memfd) whatever pool_submit returns. */
typedef struct pool_request {
    const char *name;
    int64_t version;
    int type; /* IPC_INFER, IPC_META or IPC_GENERATE (worker/ipc.h) */
    char *body;
    int body_fd;
    uint64_t body_len;
    int64_t json_len; /* Inference-Header-Content-Length, or -1 */
    /* Work that can wait (an asynchronous job): it waits behind every
     * synchronous call of its pool, is never refused for a full queue (its
     * submitter bounds it with pool_free_capacity) and takes none of the
     * queue room (scaling.queue_depth) synchronous calls have. */
    bool background;
    pool_done_fn done;
    /* IPC_GENERATE: each streamed piece before done (which then brings the
     * rest); may be NULL. */
    pool_chunk_fn chunk;
    void *user;
} pool_request;

/* Starts the zygote (logged and left to exec templates when it fails).
 * Owned: free with pool_destroy. */
int pool_create(const pool_opts *o, pool **out, rouse_errbuf *eb);
/* Stops every process (pool_stop_all) and frees the pool; NULL is a no-op. */
void pool_destroy(pool *p);

/* Submits a call. 0: *out is its handle until done runs or pool_cancel
 * (done may already have run when pool_submit returns: a pool that cannot
 * start any instance ends the call at once).
 * < 0 with eb set: ROUSE_EBUSY (queue full; *retry_after set), or the
 * version cannot be loaded (ROUSE_ENOTFOUND, ...). */
int pool_submit(pool *p, const pool_request *rq, pool_call **out, int *retry_after,
                rouse_errbuf *eb);
/* How many more background calls a version could take now without any
 * waiting longer than an instance start or one call: free slots of ready
 * instances and of instances starting, the instances that scaling.max and
 * the global cap still allow, and one waiting call per slot of a ready
 * instance (so that it never idles between replies), less the calls
 * already waiting; 0 while a synchronous call waits. A version without a pool (at zero, never called)
 * can take 1: that call starts it. */
int pool_free_capacity(pool *p, const char *name, int64_t version);
/* Whether a call still waits in its queue (not yet sent to an instance). */
bool pool_call_queued(const pool_call *c);
/* Forgets a call: a queued one is dropped, an in-flight one finishes and
 * its reply is discarded (a generation is told to stop at once). Neither
 * done nor chunk runs for it any more. */
void pool_cancel(pool *p, pool_call *c);

/* Loads model_path in a separate process (`__instance --check`, which also
 * compiles the plan at cfg's precision, from its calibration samples). done gets status 0 when it
 * loaded, or the status to answer with and the loader's message in error. */
int pool_validate(pool *p, const char *name, const char *model_path, const fn_config *cfg,
                  pool_done_fn done, void *user, rouse_errbuf *eb);

/* An EP_PROC event. */
void pool_on_event(pool *p, ep_tag *tag, uint32_t events);
/* Frees settled processes; once per loop iteration, after the epoll batch,
 * so that no event of the batch points at freed memory. */
void pool_collect(pool *p);
/* SIGCHLD: reaps every ended child. */
void pool_reap(pool *p);
/* Deadlines, idle instances, min, template TTLs; returns ms until the pool
 * next needs a tick, or -1. */
int pool_tick(pool *p);
/* When a reply is expected within microseconds, the time until which the
 * loop should poll for it instead of sleeping (a cross-CPU wake-up costs
 * more than a small model's inference); 0 or a past time otherwise. */
uint64_t pool_reply_due_ns(const pool *p);
/* Whether the loop's CPU time polling until pool_reply_due_ns should be
 * measured for pool_note_poll: a reply of a batching version is due. */
bool pool_poll_timed(const pool *p);
/* The loop polled for a reply for cpu_ns of its CPU time: the next reply
 * of a batching version counts it (what its message cost in waiting). */
void pool_note_poll(pool *p, uint64_t cpu_ns);
/* serve is shutting down: no new zygote is started. */
void pool_stopping(pool *p);

/* Calls queued or in flight, plus validations. */
int pool_pending(const pool *p);
/* Instances killed by their memory limit since start (sandbox only). */
uint64_t pool_oom_kills(const pool *p);
/* Every waiting call and validation ends with 503 and `why`. */
void pool_fail_all(pool *p, const char *why);
/* Closes every process's socket (they exit) and waits for them, bounded. */
void pool_stop_all(pool *p);

/* Appends `"instances":[...],"templates":[...],"spares":[...],"keep_alive":[...],
 * "batching":[...],"queued":N,"cold_starts":[...]`
 * for a function (GET /v1/functions/{name}). */
int pool_describe(const pool *p, const char *name, rouse_buf *out);

/* What GET /metrics reports of the pool, per version pool: g gets its
 * instances by state (starting, idle, busy) and its queue, then pid gets
 * each of its instances with a known pid (starting or ready). */
typedef void (*pool_gauge_fn)(void *user, const char *name, int starting, int idle, int busy,
                              int queued);
typedef void (*pool_pid_fn)(void *user, const char *name, int pid);
void pool_gauges(const pool *p, pool_gauge_fn g, pool_pid_fn pid, void *user);
/* The load of this node for the other nodes (membership.c): per version
 * pool, its instances (starting or ready), ready instance slots free now
 * (idle), instances with calls in flight (busy), how many more instances
 * scaling.max and the global cap allow (startable), pool_free_capacity and
 * its queue. Returns the instance slots the global cap leaves free. */
typedef struct pool_load_row {
    const char *name;
    int64_t version;
    int instances, idle, busy, startable, free_capacity, queued;
} pool_load_row;
typedef void (*pool_load_fn)(void *user, const pool_load_row *row);
int pool_load(const pool *p, pool_load_fn f, void *user);
/* Several nodes: this node keeps its share of each version's scaling.min
 * (route_min_share: rank among n_nodes live nodes), and the whole min alone
 * (n_nodes 1). A lower share stops idle instances above it as their idle
 * timeout passes; a higher one warms at the next tick. */
void pool_set_min_share(pool *p, int rank, int n_nodes);
/* Per version pool that batches: its batch size limit now (auto mode's
 * AIMD moves it), the batches it sent and the calls in them. */
typedef void (*pool_batch_fn)(void *user, const char *name, int limit, uint64_t batches,
                              uint64_t batched_calls);
void pool_batch_gauges(const pool *p, pool_batch_fn b, void *user);

/* The newest recorded cold start of a function version (its phases, for
 * traces), or NULL. Borrowed: valid until the pool next runs. */
struct cold_start;
const struct cold_start *pool_last_cold(const pool *p, const char *name, int64_t version);

/* Registry changes the pool follows (it reads the registry itself). */
/* A version of `name` was deployed: a pool of the same model takes the new
 * scaling config live (renamed to the new version), pools of versions no
 * alias names retire, and a new `min` starts warming. */
void pool_deployed(pool *p, const char *name, int64_t version);
/* The aliases of `name` changed (deploy, rollback, alias set): pools of
 * versions no alias names retire (no min, stop when idle), and each routed
 * version with a `min` starts warming now. */
void pool_routes_changed(pool *p, const char *name);
/* Stops every idle instance, template and spare of `name` now (a busy
 * instance finishes its request and stops when its idle timeout passes),
 * so that its next request starts from zero; `min` warms again as usual.
 * Returns how many processes were told to stop. */
int pool_scale_to_zero(pool *p, const char *name);
/* Stops and forgets every pool of a deleted function; waiting calls end
 * with 503. */
void pool_forget_function(pool *p, const char *name);
/* At start: every function's routed versions get their `min` warm again, as
 * before the restart, without waiting for a request. */
int pool_restore(pool *p, rouse_errbuf *eb);
/* Whether a deploy of `name` whose new version keeps `min` instances warm
 * keeps the sum of scaling.min over every routed version (of every
 * function, each version once; the new one in place of what "latest" routes
 * now) within the instance cap: 0, or ROUSE_EINVAL naming both numbers. */
int pool_check_min(pool *p, const char *name, int64_t min, rouse_errbuf *eb);

/* Asserts the pool's invariants (counts, queues, region ownership, process
 * lists). Compiled in sanitizer builds (ROUSE_POOL_CHECK), a no-op
 * otherwise; serve's loop runs it after every iteration. */
void pool_check(const pool *p);

#endif
