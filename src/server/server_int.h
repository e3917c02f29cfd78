/*
 * The server's own state, shared by the loop (loop.c) and the HTTP layer
 * above the pool (http.c, routes.c, api_*.c, route_cache.c). The pool
 * (pool.h) does not include this header: it gets what it needs at
 * pool_create and hands results back through callbacks.
 *
 * Everything here is owned by the single event-loop thread; nothing is
 * locked.
 */
#ifndef ROUSE_SERVER_INT_H
#define ROUSE_SERVER_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/ep.h"
#include "server/pool.h"
#include "server/server.h"
#include "store/blob.h"
#include "store/store.h"

struct MHD_Daemon;
struct http_req;

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

/* The version a request for function `name` through `ver` (a version number,
 * an alias, or "" for latest) goes to, answered from memory when the cache
 * knows it: 0 and *version set. ROUSE_ENOTFOUND when it does not (the
 * caller asks the store, which also words the errors). */
int route_cache_resolve(server *s, const char *name, const char *ver, int64_t *version);
/* Forgets everything; called after every registry write. */
void route_cache_clear(server *s);

/* --- the server ------------------------------------------------------------ */

struct server {
    server_opts opts;
    char exe[PATH_MAX];
    char data_dir[PATH_MAX];
    char log_level[16];
    store *st;
    blobstore *blobs;
    pool *pool;
    struct MHD_Daemon *mhd;
    int listen_fd;
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
    route_cache_entry rcache[ROUTE_CACHE_SLOTS];
    int max_instances;
    char plan_dir[PATH_MAX + 8]; /* <data>/plans: compiled plans by model digest */
};

/* A uniform double in [0, 1) from the server's generator. */
double server_random(server *s);

#endif
