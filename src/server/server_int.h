/*
 * The server's own state, shared by the loop (loop.c), the HTTP layer
 * above the pool (http.c, http_gate.c, routes.c, api_*.c, route_cache.c)
 * and what makes writes durable (durable.c, gc.c). The pool (pool.h) does
 * not include this header: it gets what it needs at pool_create and hands
 * results back through callbacks.
 *
 * Everything here is owned by the single event-loop thread; nothing is
 * locked. The writer threads (store/writer.h) see none of it: they get
 * copies of their arguments and hand completions back through an eventfd
 * that the loop reads.
 */
#ifndef ROUSE_SERVER_INT_H
#define ROUSE_SERVER_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "server/auth.h"
#include "server/ep.h"
#include "server/isolation.h"
#include "server/invocation.h"
#include "server/pool.h"
#include "server/server.h"
#include "server/trace.h"
#include "store/blob.h"
#include "store/store.h"
#include "store/usage.h"
#include "store/writer.h"

struct MHD_Daemon;
struct jobq;
struct async_dispatch;
struct callbacks;
struct http_req;
typedef struct gate_conn gate_conn;
typedef struct gate_keep gate_keep;

/* EP_WRITER: the eventfd of a writer thread (store/writer.h). */
typedef struct ep_writer {
    ep_tag tag;
    store_writer *w;
} ep_writer;

/* --- durable writes (durable.c) ------------------------------------------- */

/* Starts the registry's writer (its own connection) and the blob syncer,
 * both watched by the loop. */
int durable_start(server *s, rouse_errbuf *eb);
/* Finishes their queued writes and stops them (after MHD stopped). */
void durable_stop(server *s);
/* Requests submit their writes through durable_submit (http_int.h). */

/* --- the shared registry (shared_state.c; --state postgres://...) ---------
 * Nothing without --state. start: the sync (regsync.h) before anything is
 * served, s->st writing to PostgreSQL for auth_start's bootstrap key;
 * watch: s->st reads only again, the sync's eventfd in the loop;
 * attach_writer: the writer's store writes the registry to PostgreSQL;
 * stop: after durable_stop (the writer shares the sync's health). */
int shared_state_start(server *s, rouse_errbuf *eb);
int shared_state_watch(server *s, rouse_errbuf *eb);
int shared_state_attach_writer(server *s, store *wst, rouse_errbuf *eb);
void shared_state_stop(server *s);
void shared_state_on_event(server *s);
/* True while PostgreSQL cannot be reached (the replica may be stale). */
bool shared_state_stale(server *s);
/* Appends ,"state":"shared" or ,"state":"stale","stale_since_ms":N,
 * "state_error":"..." (nothing without --state). */
int shared_state_write_json(server *s, rouse_buf *b);

/* --- access control (auth_boot.c) ----------------------------------------- */

/* Loads the keys (registry, --auth-file), creates the bootstrap admin key
 * at first start (to stderr and <data>/bootstrap.key, 0600) or takes the
 * --auth-bootstrap-key-file's. Runs before the writer starts and before
 * anything is served. Nothing when --auth is off. */
int auth_start(server *s, rouse_errbuf *eb);

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

/* --- usage metering (usage.c) -------------------------------------------- */

/* Registers the metering sink, opens the usage query connection and its
 * thread (watched by the loop), and asks for a first roll-up. */
int usage_start(server *s, rouse_errbuf *eb);
/* Writes what is buffered (one submission to the registry's writer), then
 * stops the query thread; before durable_stop, which finishes the write. */
void usage_stop(server *s);
/* Writes the buffer when its interval is over and starts due roll-ups;
 * returns ms until it next needs to run, or -1. */
int usage_tick(server *s);
/* The query thread (GET /v1/usage runs there, api_usage.c) and its
 * connection. */
store_writer *usage_query_writer(server *s);
store *usage_query_store(server *s);
struct usage;
/* On the query thread: runs q on the local store, or with --state
 * postgres:// on PostgreSQL (*unavailable when it cannot be reached). */
int usage_query_apply(struct usage *u, const usage_query *q, usage_result *out, bool *unavailable,
                      rouse_errbuf *eb);
/* This node's name (--node-name, or the host name). */
const char *usage_node(server *s);
/* rouse_usage_unshipped, when records ship to PostgreSQL. */
int usage_metrics_write(server *s, rouse_buf *b);
/* After durable_stop: the shipper ships what the writer wrote last, then
 * stops. */
void usage_finish(server *s);
/* --- asynchronous jobs (async_glue.c) -------------------------------------- */

/* Starts the job queue, the dispatcher and the callback thread (after the
 * writer and the pool); queues again what a previous serve left running. */
int async_start(server *s, rouse_errbuf *eb);
/* Their next deadline (ms, or -1); run every loop iteration. */
int async_loop_tick(server *s);
/* The callback thread's eventfd is readable. */
void async_on_callbacks(server *s);
/* Writes and runs of jobs in flight (shutdown waits for them). */
int async_loop_pending(server *s);
void async_begin_stop(server *s);
/* After the pool stopped, before the writer stops. */
void async_stop(server *s);

/* --- blobs from peers and the bucket (blob_fetch.c) ------------------------- */

/* Starts the blob transfer threads (store/blob_remote.h) with the sources
 * of serve's options (--blob-peers, --blobs s3://), watched by the loop. */
int blob_fetch_start(server *s, rouse_errbuf *eb);
/* Their eventfd is readable: runs the completions. */
void blob_fetch_on_event(server *s);
/* Ends the transfers and stops the threads (after MHD stopped). */
void blob_fetch_stop(server *s);

/* --- the routing cache ----------------------------------------------------- */

/* Functions as the registry last described them (versions and aliases), so
 * that resolving the version of an infer request touches no database. Only
 * serve writes the registry, and every write it makes clears the cache
 * (route_cache_clear), so an entry is never stale. Direct-mapped by name. */
#define ROUTE_CACHE_SLOTS 64
typedef struct route_cache_entry {
    bool used;
    store_function f; /* owned */
    /* The model metadata document of each version (parallel to
     * f.versions) as an instance answered it, here or on a peer; NULL
     * until one did. A version's model never changes and the document's
     * version list is f's, so it holds exactly as long as the entry.
     * Owned, lazily allocated. */
    char **meta;
    size_t *meta_len;
} route_cache_entry;

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
/* Counts route_cache_clear calls: what was learned under an older count
 * may describe a function since deleted or changed. */
uint64_t route_cache_gen(const server *s);
/* The model metadata document of function `name` version `version` kept
 * by route_cache_meta_put, or NULL. Borrowed: valid until the next
 * route_cache_* call. */
const char *route_cache_meta(server *s, const char *name, int64_t version, size_t *len);
/* Keeps a copy of a metadata document an instance answered for a request
 * resolved under generation `gen`; nothing when the cache was cleared
 * since, the function is not cached or memory runs out (it is only a
 * cache). */
void route_cache_meta_put(server *s, uint64_t gen, const char *name, int64_t version,
                          const char *doc, size_t len);

/* --- several nodes (cluster.c, docs/architecture.md "Several nodes") ------- */

/* This node's name and advertise URL (also without --bus: every reply says
 * Rouse-Node); with --bus, the bus, membership, registry events and the
 * forwarder, watched by the loop. */
int cluster_start(server *s, rouse_errbuf *eb);
/* Puts this node's load into the membership bucket when due; returns ms
 * until it next needs to run, or -1. */
int cluster_tick(server *s);
/* The bus's or the forwarder's eventfd is readable. */
void cluster_on_event(server *s, ep_tag *tag);
/* Requests forwarded to other nodes and not answered yet. */
int cluster_pending(server *s);
void cluster_stop(server *s);
/* The forwarder has results: the requests they answer resume
 * (cluster_route.c). */
void cluster_route_on_results(server *s);
struct cluster_route;
void cluster_route_free(struct cluster_route *r);
void cluster_route_counts(const server *s, uint64_t *sent, uint64_t *retried, uint64_t *failed);
/* GET /metrics: the bus's state, the nodes heard and the forwarded calls
 * (with --bus only). */
int cluster_write_metrics(server *s, rouse_buf *out);
/* Whether --bus is given and NATS is reachable now. */
bool cluster_bus_configured(const server *s);
bool cluster_bus_connected(const server *s);

/* --- the server ------------------------------------------------------------ */

struct server {
    server_opts opts;
    char exe[PATH_MAX];
    char data_dir[PATH_MAX];
    char log_level[16];
    int weight_pages; /* rouse_weight_pages chosen at start */
    isolation iso;    /* the isolation tier chosen at start (isolation.h) */
    store *st; /* the loop's connection: reads only */
    blobstore *blobs;
    pool *pool;
    struct fnlog *logs; /* the functions' instance output and crash reports (fnlog.h) */
    /* Every registry write goes through `writer` (its own connection, group
     * commit); blob commits (fsyncs) through `syncer`. */
    ep_writer writer, syncer;
    ep_tag gc_timer;
    int gc_timer_fd;
    bool gc_queued; /* a sweep waits in the writer */
    struct MHD_Daemon *mhd;
    int listen_fd;
    ep_tag tag_listen;
    gate_conn *gate_conns; /* connections at the gate, newest first (http_gate.c) */
    gate_conn *gate_tail;  /* the oldest of them */
    gate_conn *gate_gone;  /* closed by an accept; freed once the wait's events are handed out */
    int n_gate;
    /* Connection limits (http_gate.c): the connections MHD holds that
     * count (not closed by the gate yet), per-client counts, the ones with
     * no request in progress (oldest idle first), and what was turned away. */
    int n_keep_live;
    int max_conns;
    unsigned max_per_client; /* 0: no limit */
    uint64_t idle_timeout_ns;
    struct conn_table *clients;
    gate_keep *idle_head, *idle_tail;
    uint64_t n_refused, n_evicted, n_timed_out;
    struct tls *tls; /* NULL: plain HTTP */
    struct cluster_key *cluster_key; /* --cluster-key-file (cluster_key.h), or NULL */
    /* Blobs from other nodes and the bucket (blob_fetch.c): the transfer
     * threads, their eventfd's tag, and --blob-peers' list. */
    struct blob_remote *remote;
    ep_tag tag_remote;
    char (*blob_peers)[256];
    int n_blob_peers;
    struct regsync *regsync;         /* --state (shared_state.c), or NULL */
    ep_tag tag_regsync;
    /* The gate's epoll set of the connections MHD holds (hang-ups of the
     * clients of suspended requests), itself watched in epfd (tag_keep_set)
     * (http_gate.c). */
    int keep_epfd;
    ep_tag tag_keep_set;
    int lock_fd; /* data_dir/serve.lock, held (flock) while we run */
    int port;
    int epfd;
    int sigfd;
    ep_tag tag_mhd, tag_sig;
    bool stopping;
    uint64_t stop_deadline_ns;
    int n_reqs;    /* live http_req */
    bool mhd_kick; /* a connection was resumed: run MHD again soon */
    uint64_t rng;  /* xorshift state for weighted routes */
    /* Suspended requests whose client is not watched yet, oldest first
     * (http.c). */
    struct http_req *waiting_head, *waiting_tail;
    /* The loop's own health (GET /v1/stats): iterations, and the longest
     * time from epoll_wait returning to the loop calling it again, since
     * start or the last POST /v1/stats/reset; preemption by other
     * processes counts in the first, only blocking in the second. */
    uint64_t loop_iterations;
    uint64_t loop_stall_max_ns;
    uint64_t loop_block_max_ns; /* the same, counting iterations that slept only */
    route_cache_entry rcache[ROUTE_CACHE_SLOTS];
    uint64_t rcache_gen; /* route_cache_gen */
    /* Asynchronous jobs: the queue, its dispatcher, callback delivery. */
    struct jobq *jobq;
    struct async_dispatch *ad;
    struct callbacks *cb;
    ep_tag tag_cb;
    ep_writer jobq_w; /* the queue's own writer, with --state and --bus (jobq_cluster.h) */
    int max_instances;
    char plan_dir[PATH_MAX + 8]; /* <data>/plans: compiled plans by model digest */
    /* Every finished inference request becomes one invocation record,
     * handed to these (http.c); request ids are req_id_base then a count. */
    invocation_sinks sinks;
    /* Metrics, access log and span export (observe.c); NULL when off. */
    struct metrics *metrics;
    struct access_log *alog;
    struct otlp_exporter *otlp;
    trace_rng trace_rng;
    uint64_t loop_lag_scrape_ns; /* the longest iteration since the last GET /metrics */
    struct usage *usage;         /* usage.c */
    struct usage_ship *usage_ship; /* usage.c: between usage_stop and usage_finish */
    /* Access control (auth.c): the keys, loaded at start and kept current
     * by the keys API; the --metrics-bind listener (-1 when none), whose
     * connections may only GET /metrics. */
    auth_table keys;
    int metrics_fd;
    int metrics_port;
    uint32_t metrics_addr; /* network order */
    ep_tag tag_metrics;
    struct recent *recent;       /* the last hour per function (recent.h, GET /v1/recent) */
    /* Several nodes (cluster.c): this node's name and advertise URL, the
     * bus (NULL without --bus), membership, the forwarder; the registry's
     * replica sync is `regsync` above. */
    char node_name[64];
    char advertise[320];
    struct bus *bus;
    ep_tag tag_bus, tag_fwd;
    struct membership *members;
    struct forwarder *fwd;
    struct cluster_route *croute;
    uint64_t member_put_ns; /* when this node's load was last put */

    uint32_t req_id_base;
    uint64_t req_seq;
};

/* --- metrics, access log, traces (observe.c) -------------------------------- */

/* Starts what server_opts asks for and registers the sinks. */
int observe_start(server *s, rouse_errbuf *eb);
/* Flushes the access log and the span queue, stops their threads. */
void observe_stop(server *s);
/* SIGHUP: the access log reopens its file. */
void observe_reopen(server *s);

/* A uniform double in [0, 1) from the server's generator. */
double server_random(server *s);

#endif
