/*
 * The pool's side of the instance protocol (see pool_ipc.h): shared
 * regions, requests, replies, spawn requests, error bodies.
 */
#include "server/pool_ipc.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/json.h"
#include "common/log.h"

#define MOD "pool"

void pool_region_init(pool_region *r)
{
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}

void pool_region_release(pool_region *r)
{
    ipc_region_unmap(r->map, r->size);
    if (r->fd >= 0) close(r->fd);
    pool_region_init(r);
}

/* Makes the region hold at least `need` bytes: a new, bigger one replaces
 * it (sent with the next request that uses it). */
static int region_fit(pool_region *r, uint64_t need, rouse_errbuf *eb)
{
    if (r->map && need <= r->size) return 0;
    uint64_t size = REGION_MIN_BYTES;
    while (size < need)
        size *= 2;
    int fd;
    void *map;
    int rc = ipc_region_create(size, &fd, &map, eb);
    if (rc < 0) return rc;
    LOG_DEBUG(MOD, "shared region of %" PRIu64 " bytes", size);
    ipc_region_unmap(r->map, r->size);
    if (r->fd >= 0) close(r->fd);
    r->map = map;
    r->size = size;
    r->fd = fd;
    return 0;
}

int pool_ipc_send_request(int sock, pool_region *r, ipc_msg *m, const void *owner,
                          const char *body, int *body_fd, uint64_t body_len, bool *sent,
                          rouse_errbuf *eb)
{
    assert(owner);
    *sent = false;
    int pass_fd = *body_fd;
    if (body) {
        uint64_t need = body_len > r->reply_hint ? body_len : r->reply_hint;
        if (!r->lent_to && need <= REGION_MAX_BYTES && region_fit(r, need, eb) == 0) {
            assert(r->map && body_len <= r->size);
            if (body_len > 0) memcpy(r->map, body, body_len);
            m->flags |= IPC_F_IN_REGION;
            pass_fd = -1;
            if (r->fd >= 0) {
                m->flags |= IPC_F_REGION;
                m->region_size = r->size;
                pass_fd = r->fd;
            }
            r->lent_to = owner;
        } else {
            if (*body_fd < 0) {
                int rc = ipc_memfd_from(body, body_len, body_fd, eb);
                if (rc < 0) return rc;
            }
            pass_fd = *body_fd;
        }
    }
    *sent = true;
    int rc = ipc_send(sock, m, pass_fd, eb);
    if (m->flags & IPC_F_REGION) { /* the instance has its own descriptor now */
        close(r->fd);
        r->fd = -1;
    }
    return rc;
}

void pool_ipc_take_reply(pool_region *r, const void *owner, const ipc_msg *m, int *fd,
                         pool_result *res)
{
    res->fd = *fd;
    *fd = -1;
    /* A reply in the region is copied out now: the next request may be
     * written there as soon as this returns. */
    bool lent = r->lent_to == owner;
    if (lent) r->lent_to = NULL;
    if (m->flags & IPC_F_IN_REGION) {
        char *body = NULL;
        if (lent && m->body_len <= r->size && (body = malloc(m->body_len + 1))) {
            memcpy(body, r->map, m->body_len);
            res->body = body;
        } else {
            res->error = !lent || m->body_len > r->size
                             ? "the instance sent a reply outside its shared region"
                             : "out of memory";
            res->status = 500;
        }
        if (res->fd >= 0) close(res->fd);
        res->fd = -1;
    } else if (lent && m->body_len > r->size && m->body_len > r->reply_hint &&
               m->body_len <= REGION_MAX_BYTES) {
        r->reply_hint = m->body_len; /* the next region holds replies this big */
    }
}

int pool_ipc_send_spawn(int tmpl_sock, uint64_t spawn_id, int peer_fd, rouse_errbuf *eb)
{
    ipc_msg m;
    ipc_msg_init(&m, IPC_SPAWN, spawn_id);
    int rc = ipc_send(tmpl_sock, &m, peer_fd, eb);
    close(peer_fd);
    return rc;
}

void pool_ipc_error_text(int fd, uint64_t len, char *msg, size_t cap)
{
    snprintf(msg, cap, "(no message)");
    const void *map = NULL;
    if (ipc_map(fd, len, &map, NULL) < 0 || !map) return;
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    const char *e;
    if (json_parse(map, len, &a, &v, NULL) == 0 && (e = json_as_string(json_get(v, "error"))))
        snprintf(msg, cap, "%s", e);
    rouse_arena_fini(&a);
    ipc_unmap(map, len);
}

char *pool_ipc_json_object(int fd, uint64_t len)
{
    if (fd < 0 || len < 2 || len > POOL_IPC_JSON_MAX) return NULL;
    const void *map = NULL;
    if (ipc_map(fd, len, &map, NULL) < 0 || !map) return NULL;
    char *copy = NULL;
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    if (json_parse(map, len, &a, &v, NULL) == 0 && v && v->type == JSON_OBJECT &&
        (copy = malloc(len + 1))) {
        memcpy(copy, map, len);
        copy[len] = '\0';
    }
    rouse_arena_fini(&a);
    ipc_unmap(map, len);
    return copy;
}
