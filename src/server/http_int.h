/*
 * Private parts of the HTTP layer of serve (http.c, routes.c, api_oip.c,
 * api_admin.c): the per-request state, replies and route handlers. Nothing
 * below the HTTP layer (the pool, the loop) includes this header.
 *
 * Everything here is owned by the single event-loop thread. An http_req
 * lives from the first handler call of a request to MHD's completion
 * callback; while its connection is suspended, exactly one pool call or
 * validation refers to it (through its user pointer) and its completion
 * resumes it.
 */
#ifndef ROUSE_SERVER_HTTP_INT_H
#define ROUSE_SERVER_HTTP_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "server/config.h"
#include "server/access_log.h"
#include "server/invocation.h"
#include "server/pool.h"
#include "server/server_int.h"
#include "store/blob.h"
#include "store/jobs.h"
#include "store/keys.h"
#include "store/store.h"
#include "store/writer.h"

struct MHD_Connection;

typedef struct http_req http_req;

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
    char timing[192]; /* Server-Timing when set */
    char warning[128]; /* Warning when set (a generator's ignored parameters) */
    char location[64]; /* Location when set */
    bool challenge;    /* WWW-Authenticate: Bearer (a 401 of the access check) */
    bool console;      /* a console file: its security headers (api_console.c) */
    char node[64];     /* Rouse-Node when another node answered (cluster_route.c) */
    /* A body of unknown length produced as it goes (Server-Sent Events)
     * instead of `body`: MHD calls read (a MHD_ContentReaderCallback) and,
     * once done with the response, free; both take stream. read may
     * suspend the connection while it has nothing to say. */
    ssize_t (*stream_read)(void *stream, uint64_t pos, char *buf, size_t max);
    void (*stream_free)(void *stream);
    void *stream;
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
    R_METRICS,     /* GET /metrics */
    R_USAGE,       /* GET /v1/usage */
    R_FN_LOGS,     /* GET /v1/functions/{name}/logs */
    R_FN_SCALE_ZERO, /* POST /v1/functions/{name}/scale-to-zero */
    R_JOB_LIST,     /* GET /v1/jobs?function=&status= */
    R_JOB_GET,      /* GET /v1/jobs/{id} */
    R_JOB_DELETE,   /* DELETE /v1/jobs/{id}: cancel */
    R_JOB_RETRY,    /* POST /v1/jobs/{id}/retry */
    R_JOB_RESULT,   /* GET /v1/jobs/{id}/result: the reply as the instance gave it */
    R_BATCH_POST,   /* POST /v1/batches */
    R_BATCH_GET,    /* GET /v1/batches/{id} */
    R_BATCH_OUTPUT, /* GET /v1/batches/{id}/output and /errors (alias: which) */
    R_OAI_MODELS,      /* GET /openai/v1/models */
    R_OAI_COMPLETIONS, /* POST /openai/v1/completions */
    R_OAI_CHAT,        /* POST /openai/v1/chat/completions */
    R_KEY_SELF,     /* GET /v1/keys/self */
    R_KEY_CREATE,   /* POST /v1/keys */
    R_KEY_LIST,     /* GET /v1/keys */
    R_KEY_DELETE,   /* DELETE /v1/keys/{id} */
    R_CONSOLE,      /* GET / and /console/{file} (alias: the file) */
    R_RECENT,       /* GET /v1/recent?function= */
    R_BLOB_GET,     /* GET /v1/blobs/{digest}: the bytes */
    R_CLUSTER,      /* GET /v1/cluster: the nodes and their load (api_cluster.c) */
    R_NOT_ALLOWED, /* a known path with another method: 405 */
    R_COUNT
} route_id;

/* What each route is, for the access check and the tests of it: its method,
 * its path with {name}, {version}, {alias}, {digest} and {id} for the
 * parameters, and the role it needs (auth.h). Indexed by route_id;
 * R_NONE and R_NOT_ALLOWED have no path. */
typedef struct route_spec {
    const char *method;
    const char *path;
    int role; /* auth_role */
} route_spec;
extern const route_spec route_specs[R_COUNT];

/* Where a request body goes while it arrives. BODY_INSTANCE (bodies that an
 * instance will decode) stays in memory up to POOL_BODY_INLINE_MAX, so that
 * dispatch copies it into the instance's shared region, and spills into a
 * memfd past that (passed to the instance as is). */
typedef enum body_sink { BODY_NONE, BODY_BUF, BODY_INSTANCE, BODY_BLOB } body_sink;

typedef struct route {
    route_id id;
    char name[STORE_NAME_MAX + 1];  /* function */
    char ver[STORE_NAME_MAX + 1];   /* /versions/{v}: a number or an alias; "" when absent */
    char alias[STORE_NAME_MAX + 1]; /* /aliases/{alias} */
    char digest[BLOB_DIGEST_LEN + 2];
    char ref[24]; /* the {id} of /v1/jobs/{id}, /v1/batches/{id} */
    bool param_too_long; /* a path segment did not fit: answered 404 */
} route;

/* Who sent a request (auth.c): the tenant whose functions, blobs and jobs
 * it reaches and its role; without --auth, "default" and admin. */
typedef struct auth_caller {
    char tenant[STORE_NAME_MAX + 1];
    int role;                     /* auth_role */
    char key_id[STORE_KEY_ID_MAX + 1]; /* "" without a key */
    int64_t expires_ms;           /* the key's, 0 when none */
    bool peer; /* another node (a valid Rouse-Cluster-Key): blob reads only */
} auth_caller;

struct http_req {
    ep_tag ctag; /* EP_CLIENT: the client's socket, watched while waiting for a pool */
    server *srv;
    auth_caller who;
    bool auth_refused; /* answered 401, 403 or 404 by the access check (auth.c) */
    struct MHD_Connection *conn;
    char method[8];
    route r;
    body_sink sink;
    rouse_buf body;    /* BODY_BUF, BODY_INSTANCE until it spills */
    int body_fd;       /* BODY_INSTANCE past POOL_BODY_INLINE_MAX, else -1 */
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
    pool_call *pending;    /* the pool call answering this request, queued or in flight */
    int watch_fd;          /* the client socket while registered in serve's epoll, else -1 */
    gate_keep *watch_keep; /* the registration watch_fd is watched through, or NULL */
    /* The durable write this request waits for (its callback resumes it),
     * cancelled if the request ends first; ticket 0 when none. */
    store_writer *write_by;
    uint64_t write_ticket;
    /* The same for a change of the job queue (api_jobs.c). */
    uint64_t jobq_ticket;
    /* A blob transfer this request waits for (blob_fetch.c), cancelled if
     * the request ends first; 0 when none. The outcome of the last fetch
     * (digest, code, message) for the handler that runs again. */
    uint64_t fetch_ticket;
    int fetch_job; /* blob_job (http_int.h) of that transfer */
    char fetch_digest[BLOB_DIGEST_LEN + 1];
    int fetch_rc;
    char *fetch_msg;
    /* A job read that may complete later (api_jobs.c): what follows it
     * (1: suspended again by a change), and its outcome when it completed
     * at once (-1 while it has not). */
    int (*job_next)(http_req *req, const job_info *j);
    int job_inline_rc;
    /* Accepted as a job (202): not an invocation itself; its runs are
     * (async_glue.c emits them). */
    bool job_accepted;
    /* Suspended and not watched yet: in srv's list of such requests, oldest
     * first (http_tick watches them after WATCH_AFTER_NS). */
    uint64_t suspended_ns;
    http_req *wprev, *wnext;
    /* For the invocation record (invocation.h), built when the request
     * completes: when it began (monotonic ns, wall-clock µs), its id, its
     * trace id ("" when untraced), and what its pool call reported. */
    uint64_t begin_ns;
    int64_t begin_wall_us;
    char request_id[INV_REQUEST_ID_LEN + 1];
    char trace_id[INV_TRACE_ID_LEN + 1];
    trace_ctx trace;    /* R_INFER: its trace (observe.c) */
    char url[ACCESS_PATH_MAX]; /* the request target, kept while an access log is on */
    uint64_t submit_ns; /* when its pool call was submitted (monotonic), 0 before */
    inv_start start_kind;
    uint64_t queue_ns, start_ns, run_ns;
    uint64_t ttft_ns, itl_ns; /* a generation's (pool_result) */
    int64_t memory_mb;
    /* An OpenAI-style streamed reply in progress (api_openai.c), or NULL. */
    struct oai_stream *gen_stream;
    /* Forwarded to another node (cluster_route.c): the call's id at the
     * forwarder while it is there (0: none), the version, the peer it went
     * to first (tried again elsewhere at most once), and whether a peer
     * answers it (it is then no invocation of this node's). */
    uint64_t fwd_id;
    int64_t fwd_version;
    char fwd_peer[64];
    uint64_t fwd_gen; /* the peer's membership document it was counted against */
    bool fwd_retried;
    bool fwd_meta; /* model metadata (a GET), not an inference */
    bool forwarded_out;
    /* A model metadata request sent to an instance (here or on a peer):
     * the version and the routing cache's generation it was resolved
     * under, to keep the answer (api_oip_meta_reply); 0 otherwise. */
    int64_t meta_version;
    uint64_t meta_gen;
};

/* Sets a JSON error reply {"error": msg}. */
void http_reply_error(http_req *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets a reply taking ownership of the malloc'd text (the buf is emptied). */
void http_reply_json(http_req *req, int status, rouse_buf *json);
/* The same for a document whose building returned rc: < 0 (out of memory)
 * frees json and replies 500 instead. */
void http_reply_built(http_req *req, int status, rouse_buf *json, int rc);
/* The status for a ROUSE_E* code. */
int http_status_of(int rc);
/* Completes a suspended request whose reply is set: resumes the connection. */
void http_req_resume(http_req *req);
/* Takes what metering and the reply's headers need of a finished call
 * (start kind, queue/start/run times, generation timings, memory_mb, the
 * version that answered) into req. */
void http_req_take_metering(http_req *req, const pool_result *res);
/* Hands a call to the pool for req (pool_request without done and user,
 * which are req's): 1 when its reply comes later (the handler returns 1
 * and the connection is suspended), 0 when req has an error reply now. */
int http_req_submit(http_req *req, const pool_request *rq);
/* A header of the request, or NULL. */
const char *http_req_header(http_req *req, const char *name);
/* A query argument of the request (decoded), "" when given without a
 * value, or NULL. */
const char *http_req_query(http_req *req, const char *name);
/* A request suspended this long gets its client socket watched in serve's
 * epoll (MHD polls no suspended connection), so that a client hanging up
 * while it waits is noticed and its queued call dropped. Two epoll_ctl
 * calls, so only for requests that wait that long: one answered sooner
 * ends within its deadline anyway, and MHD then sees the hang-up. */
#define WATCH_AFTER_NS (20ull * 1000000ull)

/* --- routes ---------------------------------------------------------------- */

void route_match(const char *method, const char *url, route *out);
body_sink route_sink(route_id id);
/* The largest body a route takes: inference (OIP and the OpenAI
 * endpoints) max_body_bytes, blob uploads max_blob_bytes, every other route
 * (JSON documents: configs, aliases, keys, jobs and batches, which name
 * their input by blob) at most ROUTE_DOC_BODY_MAX. */
#define ROUTE_DOC_BODY_MAX (1u << 20)
uint64_t route_body_limit(route_id id, uint64_t max_body_bytes, uint64_t max_blob_bytes);
/* Runs the handler of req->r. Returns 0 when req has a reply, 1 when the
 * reply will come later (the caller suspends the connection). */
int route_handle(http_req *req);

int api_admin_handle(http_req *req);
/* /v1/keys (api_keys.c). */
int api_keys_handle(http_req *req);

/* --- access control (auth.c) ---------------------------------------------- */

/* Checks a request whose route is matched, before its body: sets req->who
 * and turns the function name of its path into the caller's tenant's key;
 * false when req has its error reply (401, 403, 404 or 400). */
bool auth_check(http_req *req);
/* The key of function `name` in the caller's tenant into out (cap >=
 * STORE_NAME_MAX + 1): 0, or ROUSE_EINVAL / ROUSE_ERANGE (no such
 * function can exist). */
int auth_fn_key(const http_req *req, const char *name, char *out, size_t cap);
/* Whether the caller may see function key `key` (it is its tenant's). */
bool auth_owns_fn(const http_req *req, const char *key);
/* The name of function key `key` as its tenant calls it (borrowed: a
 * pointer into key). */
const char *auth_fn_name(const char *key);
/* Whether the caller's tenant may see blob digest (store/keys.h). */
bool auth_blob_visible(http_req *req, const char *digest);
int api_oip_handle(http_req *req);
/* Runs an inference request for a resolved version on this node (the
 * body still in req): as route_handle, 1 when its reply comes later. */
int api_oip_infer_local(http_req *req, int64_t version);
/* Model metadata of a resolved version from an instance of this node. */
int api_oip_meta_local(http_req *req, int64_t version);
/* Called as a reply to GET /v2/models/{name}[/versions/{v}] is queued:
 * keeps the document an instance answered in the routing cache. */
void api_oip_meta_reply(http_req *req);

/* --- several nodes (cluster_route.c) --------------------------------------- */

/* Where an inference request for a resolved version runs (route_policy.h):
 * -1 here (the caller goes on), 1 sent to another node (its reply comes
 * later), 0 req has a reply. */
int cluster_route_infer(http_req *req, int64_t version);
/* The same for a model metadata request (GET /v2/models/{name}[/versions/{v}]):
 * it goes where an inference of the version would. */
int cluster_route_meta(http_req *req, int64_t version);
/* req ends while a peer has it: its answer will be dropped. */
void cluster_route_req_end(http_req *req);
int api_stats_handle(http_req *req);
int api_metrics_handle(http_req *req);
/* The web console's files (api_console.c) and its last-hour figures
 * (api_recent.c). */
int api_console_handle(http_req *req);
int api_recent_handle(http_req *req);
int api_cluster_handle(http_req *req);

/* --- traces (observe.c) ----------------------------------------------------- */

/* An inference request began: its trace context from its headers. */
void observe_req_begin(http_req *req);
/* Its invocation record was emitted: its spans go to the exporter when the
 * trace is sampled. */
void observe_req_end(http_req *req, const invocation *inv);
/* Any other request ended (answered): its access log line. */
void observe_req_done(http_req *req);
int api_usage_handle(http_req *req);
int api_logs_handle(http_req *req);
/* /openai/v1/... (api_openai.c). */
int api_openai_handle(http_req *req);
/* The call of a streamed reply ended: res brings the stream's last bytes. */
void api_openai_stream_done(http_req *req, pool_result *res);
/* req ends (MHD completed it) while its stream may still be MHD's. */
void api_openai_req_end(http_req *req);
/* Whether a route is an inference (an invocation record): OIP infer and
 * the OpenAI-style generations. */
bool http_route_is_inference(route_id id);
/* /v1/jobs and /v1/batches (api_jobs.c). */
int api_jobs_handle(http_req *req);
/* An infer request with Prefer: respond-async, for a resolved version. */
int api_jobs_enqueue(http_req *req, int64_t version);
/* Whether a request asks for an asynchronous answer (Prefer: respond-async). */
bool api_jobs_wants_async(http_req *req);
/* A query-string argument of the request, or NULL. */
const char *http_req_query(http_req *req, const char *name);

/* --- durable writes (durable.c) ------------------------------------------- */

/* (durable_start and durable_stop, for the loop: server_int.h.) */

/* Submits a write for req to w (s->writer.w or s->syncer.w): done(req, ...)
 * runs on the loop once it is durable or failed. 0: req waits (the caller
 * returns 1 from its handler, or keeps it suspended); < 0: req has an
 * error reply and done never runs. */
int durable_submit(http_req *req, store_writer *w, store_write_apply apply, const void *arg,
                   size_t arg_len, store_write_done done);
/* Called first by every completion of durable_submit: req no longer waits. */
void durable_done(http_req *req);

/* --- blobs from elsewhere (blob_fetch.c) ---------------------------------- */

/* What blob_fetch_req asks of the transfer threads. */
typedef enum blob_job { BLOB_JOB_FETCH, BLOB_JOB_PUSH, BLOB_JOB_READ } blob_job;
/* Starts a transfer for req (suspended until done(req, rc, msg) runs on
 * the loop): 0, or < 0 with req's error reply set and done never run. */
int blob_fetch_req(http_req *req, blob_job job, const char *digest,
                   void (*done)(void *req, int rc, const char *msg));
/* Called first by every completion of blob_fetch_req: req no longer
 * waits; a fetch's outcome is kept in req (fetch_digest, _rc, _msg). */
void blob_fetch_done(http_req *req, int rc, const char *msg);
/* Whether this node can fetch a blob it lacks (peers or a bucket). */
bool blob_fetch_possible(const server *s);

#endif
