/*
 * Private parts of src/server shared by its files: the server state, the
 * per-request state of the HTTP layer, instances and version pools.
 *
 * Everything here is owned by the single event-loop thread; nothing is
 * locked. An http_req lives from the first handler call of a request to
 * MHD's completion callback; while its connection is suspended, exactly one
 * pool call or validator refers to it and will resume it.
 */
#ifndef ROUSE_SERVER_INT_H
#define ROUSE_SERVER_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "server/config.h"
#include "server/server.h"
#include "store/blob.h"
#include "store/store.h"
#include "store/writer.h"

struct MHD_Daemon;
struct MHD_Connection;

/* What an epoll event's data.ptr points at: the first member of each. */
typedef enum ep_kind {
    EP_MHD = 1,
    EP_SIGNAL,
    EP_INSTANCE,
    EP_CLIENT,
    EP_WRITER,
    EP_LISTEN, /* the listening socket (http_gate.c accepts) */
    EP_GATE,   /* a new connection whose first request head is awaited */
    EP_TIMER,  /* the storage collection's timerfd (gc.c) */
} ep_kind;
typedef struct ep_tag {
    ep_kind kind;
} ep_tag;

/* EP_WRITER: the eventfd of a writer thread (store/writer.h). */
typedef struct ep_writer {
    ep_tag tag;
    store_writer *w;
} ep_writer;

typedef struct instance instance;
typedef struct vpool vpool;
typedef struct call call;
typedef struct http_req http_req;
typedef struct gate_conn gate_conn;

/* --- HTTP ------------------------------------------------------------------ */

/* The response to a request, built by a handler or a completion. */
typedef struct http_reply {
    int status;
    char content_type[48];
    char *body; /* malloc'd, or NULL */
    size_t len;
    int fd; /* a memfd body instead of `body` (owned), or -1 */
    uint64_t fd_len;
    int64_t version;  /* X-Rouse-Version when > 0 */
    int64_t json_len; /* Inference-Header-Content-Length when >= 0 */
    int retry_after;  /* Retry-After seconds when > 0 */
    char start[12];   /* Rouse-Start when set: warm, template or zero */
    char timing[96];  /* Server-Timing when set */
} http_reply;

typedef enum route_id {
    R_NONE = 0,
    R_HEALTH_LIVE,
    R_HEALTH_READY,
    R_SERVER_META,
    R_MODEL_META,
    R_MODEL_READY,
    R_INFER,
    R_BLOB_POST,
    R_BLOB_HEAD,
    R_BLOB_DELETE,
    R_FN_LIST,
    R_FN_PUT,
    R_FN_GET,
    R_FN_DELETE,
    R_FN_ROLLBACK,
    R_ALIAS_PUT,
    R_STATS,       /* GET /v1/stats */
    R_STATS_RESET, /* POST /v1/stats/reset */
    R_NOT_ALLOWED, /* a known path with another method: 405 */
} route_id;

/* Where a request body goes while it arrives. BODY_INSTANCE (bodies that an
 * instance will decode) stays in memory up to REGION_MAX_BYTES, so that
 * dispatch copies it into the instance's shared region, and spills into a
 * memfd past that (passed to the instance as is). */
typedef enum body_sink { BODY_NONE, BODY_BUF, BODY_INSTANCE, BODY_BLOB } body_sink;

/* Shared regions between serve and an instance (worker/ipc.h) start at
 * REGION_MIN_BYTES (pages are only allocated when touched) and grow to the
 * next power of two that holds a body or a reply, up to REGION_MAX_BYTES;
 * bigger bodies and replies travel in memfds of their own, whose per-request
 * cost is small next to their size. */
#define REGION_MIN_BYTES (1u << 20)
#define REGION_MAX_BYTES (32u << 20)

typedef struct route {
    route_id id;
    char name[STORE_NAME_MAX + 1];  /* function */
    char ver[STORE_NAME_MAX + 1];   /* /versions/{v}: a number or an alias; "" when absent */
    char alias[STORE_NAME_MAX + 1]; /* /aliases/{alias} */
    char digest[BLOB_DIGEST_LEN + 2];
    bool param_too_long; /* a path segment did not fit: answered 404 */
} route;

struct http_req {
    ep_tag ctag; /* EP_CLIENT: the client's socket, watched while waiting for a pool */
    server *srv;
    struct MHD_Connection *conn;
    char method[8];
    route r;
    body_sink sink;
    rouse_buf body;    /* BODY_BUF, BODY_INSTANCE until it spills */
    int body_fd;       /* BODY_INSTANCE past REGION_MAX_BYTES, else -1 */
    uint64_t body_len; /* bytes received so far */
    uint64_t body_limit;
    blob_writer *blob; /* BODY_BLOB */
    int64_t json_len;  /* Inference-Header-Content-Length, -1 when absent */
    bool handled;      /* the route handler ran */
    bool suspended;    /* waiting for a pool call or a validator */
    bool have_reply;
    bool early_error; /* reply decided before the body ended; the body is discarded */
    http_reply reply;
    /* PUT /v1/functions: the config waiting for its model check. */
    fn_config pending_cfg;
    char *pending_cfg_json;
    call *pending; /* the pool call answering this request, queued or in flight */
    /* The durable write this request waits for (its callback resumes it),
     * cancelled if the request ends first; ticket 0 when none. */
    store_writer *write_by;
    uint64_t write_ticket;
    int watch_fd; /* the client socket while registered in serve's epoll, else -1 */
};

/* Sets a JSON error reply {"error": msg}. */
void http_reply_error(http_req *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets a reply taking ownership of the malloc'd text (the buf is emptied). */
void http_reply_json(http_req *req, int status, rouse_buf *json);
/* The status for a ROUSE_E* code. */
int http_status_of(int rc);
/* Completes a suspended request whose reply is set: resumes the connection. */
void http_req_resume(http_req *req);
/* A header of the request, or NULL. */
const char *http_req_header(http_req *req, const char *name);
/* The client of a suspended request hung up (EP_CLIENT event). */
void http_client_gone(http_req *req);
/* Watches the client socket of a request waiting in a queue, so that a
 * client hanging up is noticed while MHD does not look at the connection
 * (MHD polls no suspended connection): http_client_gone then drops it. Only
 * hang-ups are asked for; resuming unwatches. Two epoll_ctl calls, so it is
 * done only for requests queued longer than WATCH_AFTER_NS: one that gets
 * an instance sooner ends within its deadline anyway, and MHD then sees the
 * hang-up. */
void http_req_watch(http_req *req);
#define WATCH_AFTER_NS (20ull * 1000000ull)

/* --- routes ---------------------------------------------------------------- */

void route_match(const char *method, const char *url, route *out);
body_sink route_sink(route_id id);
/* Runs the handler of req->r. Returns 0 when req has a reply, 1 when the
 * reply will come later (the caller suspends the connection). */
int route_handle(http_req *req);

int api_admin_handle(http_req *req);
int api_oip_handle(http_req *req);
int api_stats_handle(http_req *req);

/* --- instances and pools --------------------------------------------------- */

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

/* The result a call completes with. */
typedef struct call_result {
    int status;
    const char *content_type;
    int fd;     /* body memfd (ownership passes to the callee) or -1 */
    char *body; /* or a malloc'd body (ownership passes to the callee), or NULL */
    uint64_t len;
    int64_t json_len;
    const char *error;  /* a serve-side error message (fd is -1 then) */
    const char *start;  /* Rouse-Start, or NULL */
    const char *timing; /* Server-Timing, or NULL */
} call_result;

struct call {
    http_req *req;
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
    server *srv;
    vpool *vp; /* NULL for a deploy validator */
    http_req *validate_req;
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

/* Submits an IPC_INFER or IPC_META call for req to version `version` of
 * function `name`, whose body_len bytes are either `body` (malloc'd) or in
 * body_fd (a memfd); takes both (freed or closed when the call ends). 0: the
 * reply comes later through the call's completion (req->reply, resumed);
 * < 0: req has an error reply set now. */
int pool_submit(server *s, http_req *req, const char *name, int64_t version, int type, char *body,
                int body_fd, uint64_t body_len, int64_t json_len);
/* Starts a validator process loading model_path for req (PUT /v1/functions);
 * completion calls api_admin_validated. 0 or < 0 with eb set. */
int pool_validate(server *s, http_req *req, const char *model_path, rouse_errbuf *eb);
void pool_on_instance(server *s, instance *inst, uint32_t events);
/* Frees settled instances; called once per loop iteration, after the epoll
 * batch, so that no event of the batch points at freed memory. */
void pool_collect(server *s);
void pool_reap(server *s);
/* Deadlines and idle instances; returns ms until the next deadline or -1. */
int pool_tick(server *s);
/* Stops and forgets every pool of a deleted function; waiting requests get 404. */
void pool_forget_function(server *s, const char *name);
/* Requests queued or in flight, plus validators. */
int pool_pending(const server *s);
/* Answers every waiting request with 503 (shutdown grace over). */
void pool_fail_all(server *s, const char *why);
/* Closes every instance's socket (they exit) and waits for them, bounded. */
void pool_stop_all(server *s);
/* Appends `"instances":[{"version":N,"pid":P,"state":"idle","start":"zero"},...],
 * "templates":[...],"queued":N,"cold_starts":[...]` for a function. */
int pool_describe(const server *s, const char *name, rouse_buf *out);
/* A version of `name` was deployed: a pool of the same model takes the new
 * scaling config live (renamed to the new version), pools of versions no
 * alias names retire, and a new `min` starts warming. */
void pool_deployed(server *s, const char *name, int64_t version);
/* The aliases of `name` changed (deploy, rollback, alias set): pools of
 * versions no alias names retire (no min, stop when idle), and each routed
 * version with a `min` starts warming now. */
void pool_routes_changed(server *s, const char *name);
/* At start: every function's routed versions get their `min` warm again, as
 * before the restart, without waiting for a request. */
int pool_restore(server *s, rouse_errbuf *eb);
/* The client of req went away: a queued call is dropped (true), an
 * in-flight one forgets req and its reply is discarded (false). */
bool pool_cancel(server *s, http_req *req);

/* Completion of a deploy validation: status 0 when the model loaded, else
 * the status to answer with and the loader's message. */
void api_admin_validated(http_req *req, int status, const char *msg);

/* --- durable writes (durable.c) ------------------------------------------- */

/* Starts the registry's writer (its own connection) and the blob syncer,
 * both watched by the loop. */
int durable_start(server *s, rouse_errbuf *eb);
/* Finishes their queued writes and stops them (after MHD stopped). */
void durable_stop(server *s);
/* Submits a write for req to w (s->writer.w or s->syncer.w): done(req, ...)
 * runs on the loop once it is durable or failed. 0: req waits (the caller
 * returns 1 from its handler, or keeps it suspended); < 0: req has an
 * error reply and done never runs. */
int durable_submit(http_req *req, store_writer *w, store_write_apply apply, const void *arg,
                   size_t arg_len, store_write_done done);
/* Called first by every completion of durable_submit: req no longer waits. */
void durable_done(http_req *req);

/* --- storage collection (gc.c) -------------------------------------------- */

/* Removes plan temporaries (<hex>.plan.tmp*) a killed serve left in
 * plan_dir; run at start, before any compile. */
int gc_clean_temporaries(const char *plan_dir, rouse_errbuf *eb);
/* Arms the periodic sweep and asks for a first one. */
int gc_start(server *s, rouse_errbuf *eb);
void gc_on_timer(server *s);
void gc_stop(server *s);
/* Asks for a sweep of unreferenced blobs and plans (once queued, further
 * requests wait for it). */
void gc_request(server *s);
/* <plan_dir>/<hex>.plan for a blob digest. */
int gc_plan_path(const char *plan_dir, const char *digest, char *out, size_t len);

/* --- the routing cache ----------------------------------------------------- */

/* Functions as the registry last described them (versions and aliases), so
 * that resolving the version of an infer request touches no database. Only
 * serve writes the registry, and every write it makes clears the cache
 * (route_cache_clear), so an entry is never stale. Direct-mapped by name. */
#define ROUTE_CACHE_SLOTS 64
typedef struct route_cache_entry {
    bool used;
    store_function f; /* owned */
} route_cache_entry;

/* --- processes serve starts (zygote_proc.c) ---------------------------------- */

/* fork+exec of s->exe with argv (argv[0] the executable), child_fd as the
 * child's descriptor 3 and extra_fd (unless -1) as its descriptor 4. */
int server_fork_exec(server *s, char *const argv[], int child_fd, int extra_fd, pid_t *pid,
                     rouse_errbuf *eb);
/* Starts the zygote; on failure logs it and leaves templates to exec. */
void zygote_start(server *s);
/* Forks a template through the zygote: argv from the subcommand on, child_fd
 * its control socket. 0 and *pid set; < 0 when there is no zygote or it
 * failed (then it is dropped, and the caller execs the template with a new
 * socket: a late fork by the lost zygote must find its own socket closed). */
int zygote_fork_template(server *s, int argc, char *const argv[], int child_fd, pid_t *pid);
/* Asks the zygote to warm the kernels of the model a template with these
 * arguments (from the subcommand on) would run; does not wait. */
void zygote_warm(server *s, int argc, char *const argv[]);
/* True when pid was the zygote (reaped): it is forgotten. */
bool zygote_reaped(server *s, pid_t pid, int wstatus);
/* Ends the zygote and reaps it (shutdown). */
void zygote_stop(server *s);

/* The version a request for function `name` through `ver` (a version number,
 * an alias, or "" for latest) goes to, answered from memory when the cache
 * knows it: 0 and *version set. ROUSE_ENOTFOUND when it does not (the
 * caller asks the store, which also words the errors). */
int route_cache_resolve(server *s, const char *name, const char *ver, int64_t *version);
/* The function as the registry last described it (versions without their
 * configs, aliases), or NULL when it does not exist. Borrowed: valid until
 * the next route_cache_* call. */
const store_function *route_cache_function(server *s, const char *name);
/* Forgets everything; called after every registry write. */
void route_cache_clear(server *s);

/* --- the server ------------------------------------------------------------ */

struct server {
    server_opts opts;
    char exe[PATH_MAX];
    char data_dir[PATH_MAX];
    char log_level[16];
    store *st; /* the loop's connection: reads only */
    blobstore *blobs;
    /* Every registry write goes through `writer` (its own connection, group
     * commit); blob commits (fsyncs) through `syncer`. */
    ep_writer writer, syncer;
    ep_tag gc_timer;
    int gc_timer_fd;
    bool gc_queued; /* a sweep waits in the writer */
    struct MHD_Daemon *mhd;
    int listen_fd;
    ep_tag tag_listen;
    gate_conn *gate_conns; /* connections at the gate (http_gate.c) */
    int n_gate;
    int lock_fd; /* data_dir/serve.lock, held (flock) while we run */
    /* The zygote (worker/zygote.h): its control socket (-1 when there is
     * none: templates are then exec'd), its pid (0 once reaped), and when
     * serve may start the next (a second after the last start). */
    int zygote_sock;
    int zygote_warm_sock; /* models to warm ahead of their first start (a deploy) */
    pid_t zygote_pid;
    uint64_t zygote_retry_ns;
    int port;
    int epfd;
    int sigfd;
    ep_tag tag_mhd, tag_sig;
    bool stopping;
    uint64_t stop_deadline_ns;
    int n_reqs;    /* live http_req */
    bool mhd_kick; /* a connection was resumed: run MHD again soon */
    uint64_t rng;  /* xorshift state for weighted routes */
    /* Until then the loop polls instead of sleeping (see SPIN_* in loop.c):
     * a reply expected within microseconds is picked up without paying a
     * wake-up of serve. 0 when no fast reply is expected. */
    uint64_t spin_until_ns;
    /* The loop's own health (GET /v1/stats): iterations, and the longest
     * time from epoll_wait returning to the loop calling it again, since
     * start or the last POST /v1/stats/reset; preemption by other
     * processes counts in the first, only blocking in the second. */
    uint64_t loop_iterations;
    uint64_t loop_stall_max_ns;
    uint64_t loop_block_max_ns; /* the same, counting iterations that slept only */
    route_cache_entry rcache[ROUTE_CACHE_SLOTS];
    uint64_t next_call_id;
    vpool *pools;
    instance *instances;
    instance *dead;  /* settled instances whose events may still be in this epoll batch */
    int n_instances; /* live instances (global cap) */
    int max_instances;
    char plan_dir[PATH_MAX + 8]; /* <data>/plans: compiled plans by model digest */
    uint64_t next_spawn_id;
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
/* Notes that a reply to a call of vp dispatched now is due soon. */
void server_expect_reply(server *s, const vpool *vp, uint64_t now);

/* A uniform double in [0, 1) from the server's generator. */
double server_random(server *s);

#endif
