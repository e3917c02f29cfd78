/*
 * The pool's side of the instance protocol (worker/ipc.h): the shared
 * region serve lends to one request at a time, sending a request (its body
 * in the region or in a memfd), taking a reply (and the region) back,
 * spawn requests to a template, and error bodies. It knows nothing of
 * pools, calls or scheduling; the scheduler calls it.
 *
 * Invariants:
 * - A region is lent to at most one request (lent_to) at a time; serve
 *   writes it only while it is not lent and takes it back with that
 *   request's reply.
 * - fd >= 0 only until the instance has been sent the region.
 */
#ifndef ROUSE_SERVER_POOL_IPC_H
#define ROUSE_SERVER_POOL_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rouse/err.h"
#include "server/pool.h"
#include "worker/ipc.h"

/* Shared regions between serve and an instance start at REGION_MIN_BYTES
 * (pages are only allocated when touched) and grow to the next power of two
 * that holds a body or a reply, up to REGION_MAX_BYTES; bigger bodies and
 * replies travel in memfds of their own, whose per-request cost is small
 * next to their size. */
#define REGION_MIN_BYTES (1u << 20)
#define REGION_MAX_BYTES POOL_BODY_INLINE_MAX

typedef struct pool_region {
    void *map; /* mapped read-write, or NULL until the first request that fits */
    uint64_t size;
    int fd;               /* kept only until the instance has been sent it, else -1 */
    const void *lent_to;  /* the request it is lent to, or NULL */
    uint64_t reply_hint;  /* the largest reply that did not fit */
} pool_region;

void pool_region_init(pool_region *r);
void pool_region_release(pool_region *r);

/* Makes the region hold at least `need` bytes now, its pages allocated,
 * rather than at the request that first needs them (a held spare's, made
 * ahead of need). */
int pool_region_reserve(pool_region *r, uint64_t need, rouse_errbuf *eb);

/* Passes the region to the instance on sock ahead of any request
 * (IPC_REGION), when it has one not yet sent; it is passed again with the
 * first request that uses it, where the instance knows it. */
int pool_ipc_send_region(int sock, const pool_region *r, rouse_errbuf *eb);

/* Sends request m (its type, id and metadata set) to the instance on sock,
 * on behalf of `owner`: the body (body_len bytes, in `body` or, when body
 * is NULL, in *body_fd) goes into the region when it is free and the body
 * (and the biggest reply seen) fits, else into a memfd (made into *body_fd
 * when needed). < 0 with *sent false: nothing was sent (the request cannot
 * go, the instance is fine); with *sent true: the instance is broken. */
int pool_ipc_send_request(int sock, pool_region *r, ipc_msg *m, const void *owner,
                          const char *body, int *body_fd, uint64_t body_len, bool *sent,
                          rouse_errbuf *eb);

/* The reply m of `owner`, with *fd its memfd (or -1): gives the region back
 * and fills res's body: a reply in the region is copied out (res->body),
 * else *fd passes to res->fd. On a bad reply res->error is set. */
void pool_ipc_take_reply(pool_region *r, const void *owner, const ipc_msg *m, int *fd,
                         pool_result *res);

/* One request of a batch (IPC_BATCH, worker/ipc.h): its call's id and body. */
typedef struct pool_batch_part {
    uint64_t id;
    const char *body;
    uint64_t len;
    int64_t json_len;
} pool_batch_part;

/* Sends parts[0..k) to the instance on sock as one IPC_BATCH (m: its type,
 * id and metadata set) on behalf of `owner`: written straight into the
 * region when it is free and holds them, with as much room again past
 * them for the instance to concatenate the inputs in, else into a memfd.
 * < 0 with *sent as for pool_ipc_send_request. */
int pool_ipc_send_batch(int sock, pool_region *r, ipc_msg *m, const void *owner,
                        const pool_batch_part *parts, int k, bool *sent, rouse_errbuf *eb);

/* One result of a batch reply; body borrowed for the duration of the call. */
typedef struct pool_batch_reply {
    uint64_t id;
    int status;
    int batch; /* the engine run it joined, in requests; 0: an error of its own */
    const char *body;
    uint64_t len;
    int64_t json_len;
    const char *content_type;
    uint64_t run_ns;
    uint64_t bill_ns; /* its share of the batch's run (ipc_batch_result) */
} pool_batch_reply;

/* Reads the batch reply m of `owner` (IPC_F_BATCH; *fd its memfd or -1,
 * closed here) and gives the region back: each(user, result) runs for
 * every result in order. < 0 with *error set when the reply is malformed
 * (nothing was given to each then). */
int pool_ipc_read_batch(pool_region *r, const void *owner, const ipc_msg *m, int *fd,
                        void (*each)(void *user, const pool_batch_reply *res), void *user,
                        const char **error);

/* Asks a template on tmpl_sock to fork an instance whose control socket is
 * peer_fd (closed here either way). < 0: the template is broken. */
int pool_ipc_send_spawn(int tmpl_sock, uint64_t spawn_id, int peer_fd, rouse_errbuf *eb);

/* The "error" member of a JSON error body in memfd fd, into msg. */
void pool_ipc_error_text(int fd, uint64_t len, char *msg, size_t cap);

/* A body that must be one JSON object of at most `max` bytes (a deploy
 * check's accuracy figures): a malloc'd copy, NUL-terminated, or NULL when
 * it is absent, larger or not an object (an instance is not trusted to
 * send well-formed JSON). */
#define POOL_IPC_JSON_MAX (64 << 10)
char *pool_ipc_json_object(int fd, uint64_t len);

#endif
