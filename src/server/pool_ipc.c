/*
 * The pool's side of the instance protocol (see pool_ipc.h): shared
 * regions, requests, replies, spawn requests, error bodies.
 */
#include "server/pool_ipc.h"

#include <assert.h>
#include <errno.h>
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

int pool_region_reserve(pool_region *r, uint64_t need, rouse_errbuf *eb)
{
    if (need > REGION_MAX_BYTES) need = REGION_MAX_BYTES;
    return region_fit(r, need, eb);
}

int pool_ipc_send_region(int sock, const pool_region *r, rouse_errbuf *eb)
{
    if (r->fd < 0 || !r->map) return 0;
    ipc_msg m;
    ipc_msg_init(&m, IPC_REGION, 0);
    m.flags = IPC_F_REGION;
    m.region_size = r->size;
    return ipc_send(sock, &m, r->fd, eb);
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

int pool_ipc_send_batch(int sock, pool_region *r, ipc_msg *m, const void *owner,
                        const pool_batch_part *parts, int k, bool *sent, rouse_errbuf *eb)
{
    assert(owner && k > 0);
    *sent = false;
    uint64_t table = ipc_batch_table_len((uint32_t)k), total = table;
    for (int i = 0; i < k; i++)
        total += (parts[i].len + 7) & ~7ull;
    ipc_batch_head head = {.magic = IPC_MAGIC, .n = (uint32_t)k, .batch_id = m->id};
    m->body_len = total;
    int fd = -1, pass_fd = -1, rc;
    /* Room for the bodies and, past them, the inputs concatenated. */
    uint64_t need = 2 * total > r->reply_hint ? 2 * total : r->reply_hint;
    if (need > REGION_MAX_BYTES) need = total > r->reply_hint ? total : r->reply_hint;
    char *dst = NULL;
    if (!r->lent_to && need <= REGION_MAX_BYTES && region_fit(r, need, eb) == 0) {
        dst = r->map;
        m->flags |= IPC_F_IN_REGION;
        if (r->fd >= 0) {
            m->flags |= IPC_F_REGION;
            m->region_size = r->size;
            pass_fd = r->fd;
        }
        r->lent_to = owner;
    } else {
        if ((rc = ipc_memfd_create("rouse-batch", &fd, eb)) < 0) return rc;
        if (ftruncate(fd, (off_t)total) < 0) {
            close(fd);
            return rouse_err_set(eb, ROUSE_EIO, "batch body of %" PRIu64 " bytes: %s", total,
                                 strerror(errno));
        }
        void *map;
        if ((rc = ipc_region_map(fd, total, &map, eb)) < 0) {
            close(fd);
            return rc;
        }
        dst = map;
        pass_fd = fd;
    }
    memcpy(dst, &head, sizeof(head));
    ipc_batch_item *items = (ipc_batch_item *)(dst + sizeof(head));
    uint64_t off = table;
    for (int i = 0; i < k; i++) {
        items[i] = (ipc_batch_item){
            .id = parts[i].id, .off = off, .len = parts[i].len, .json_len = parts[i].json_len};
        if (parts[i].len) memcpy(dst + off, parts[i].body, parts[i].len);
        off += (parts[i].len + 7) & ~7ull;
    }
    if (fd >= 0) ipc_region_unmap(dst, total);
    *sent = true;
    rc = ipc_send(sock, m, pass_fd, eb);
    if (m->flags & IPC_F_REGION) {
        close(r->fd);
        r->fd = -1;
    }
    if (fd >= 0) close(fd);
    return rc;
}

int pool_ipc_read_batch(pool_region *r, const void *owner, const ipc_msg *m, int *fd,
                        void (*each)(void *user, const pool_batch_reply *res), void *user,
                        const char **error)
{
    /* The region stays lent while the results are handed out (their
     * bodies are read from it). */
    bool lent = r->lent_to == owner;
    const char *body = NULL;
    const void *map = NULL;
    int rc = 0;
    *error = NULL;
    if (m->flags & IPC_F_IN_REGION) {
        if (!lent || m->body_len > r->size) {
            *error = "the instance sent a batch reply outside its shared region";
            rc = ROUSE_EFORMAT;
            goto out;
        }
        body = r->map;
    } else {
        if (*fd < 0 || ipc_map(*fd, m->body_len, &map, NULL) < 0 || !map) {
            *error = "the instance sent an unreadable batch reply";
            rc = ROUSE_EFORMAT;
            goto out;
        }
        body = map;
        if (lent && m->body_len > r->size && m->body_len > r->reply_hint &&
            m->body_len <= REGION_MAX_BYTES)
            r->reply_hint = m->body_len;
    }
    ipc_batch_head head;
    if (m->body_len < sizeof(head)) {
        *error = "the instance sent a batch reply without its head";
        rc = ROUSE_EFORMAT;
        goto out;
    }
    memcpy(&head, body, sizeof(head));
    if (head.magic != IPC_MAGIC || ipc_batch_table_len(head.n) > m->body_len) {
        *error = "the instance sent a malformed batch reply";
        rc = ROUSE_EFORMAT;
        goto out;
    }
    for (uint32_t i = 0; i < head.n; i++) {
        ipc_batch_result br;
        memcpy(&br, body + sizeof(head) + i * sizeof(br), sizeof(br));
        if (br.off > m->body_len || br.len > m->body_len - br.off) {
            *error = "the instance sent a batch reply whose bodies lie outside it";
            rc = ROUSE_EFORMAT;
            goto out;
        }
    }
    for (uint32_t i = 0; i < head.n; i++) {
        ipc_batch_result br;
        memcpy(&br, body + sizeof(head) + i * sizeof(br), sizeof(br));
        br.content_type[IPC_CONTENT_TYPE_MAX - 1] = '\0';
        pool_batch_reply res = {.id = br.id,
                                .status = br.status,
                                .batch = (int)br.batch,
                                .body = body + br.off,
                                .len = br.len,
                                .json_len = br.json_len,
                                .content_type = br.content_type,
                                .run_ns = br.run_ns,
                                .bill_ns = br.bill_ns};
        each(user, &res);
    }
out:
    if (lent) r->lent_to = NULL;
    if (map) ipc_unmap(map, m->body_len);
    if (*fd >= 0) close(*fd);
    *fd = -1;
    return rc;
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
