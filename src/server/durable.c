/*
 * serve's durable writes: the registry's writer thread and the blob syncer
 * (store/writer.h), their eventfds in the loop, and the glue that suspends
 * a request until its write is durable.
 *
 * Why two threads: a registry write is small and many of them share one
 * COMMIT (group commit); a blob commit is an fsync of the whole upload
 * (seconds for a large model on a slow disk) plus a directory fsync, and
 * cannot be grouped. On one thread, every deploy, alias change and later
 * usage record would wait behind the largest upload in flight; on two, an
 * upload delays only itself. The order between them needs no thread: a
 * deploy names a blob only after its upload was acknowledged, i.e. after
 * the syncer made it durable.
 *
 * Invariant: a request with write_ticket != 0 is suspended and is resumed
 * by that write's completion only (or the ticket is cancelled when MHD
 * ends the request first).
 */
#include <sys/epoll.h>

#include "server/http_int.h"

static int watch(server *s, ep_writer *ew)
{
    ew->tag.kind = EP_WRITER;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &ew->tag};
    return epoll_ctl(s->epfd, EPOLL_CTL_ADD, store_writer_fd(ew->w), &ev) == 0 ? 0 : ROUSE_EIO;
}

int durable_start(server *s, rouse_errbuf *eb)
{
    store *wst;
    int rc = store_open(s->data_dir, &wst, eb);
    if (rc < 0) return rc;
    if ((rc = shared_state_attach_writer(s, wst, eb)) < 0) {
        store_close(wst);
        return rc;
    }
    if ((rc = store_writer_create(wst, "registry", &s->writer.w, eb)) < 0) return rc;
    if ((rc = store_writer_create(NULL, "blobs", &s->syncer.w, eb)) < 0) goto out_writer;
    if ((rc = watch(s, &s->writer)) < 0 || (rc = watch(s, &s->syncer)) < 0) {
        rouse_err_set(eb, rc, "cannot watch the writer threads");
        goto out_syncer;
    }
    return 0;

out_syncer:
    store_writer_destroy(s->syncer.w);
    s->syncer.w = NULL;
out_writer:
    store_writer_destroy(s->writer.w);
    s->writer.w = NULL;
    return rc;
}

void durable_stop(server *s)
{
    store_writer_destroy(s->syncer.w);
    store_writer_destroy(s->writer.w);
    s->syncer.w = s->writer.w = NULL;
}

int durable_submit(http_req *req, store_writer *w, store_write_apply apply, const void *arg,
                   size_t arg_len, store_write_done done)
{
    int rc = store_writer_submit(w, apply, arg, arg_len, done, req, &req->write_ticket);
    if (rc < 0) {
        req->write_ticket = 0;
        http_reply_error(req, rc == ROUSE_ENOMEM ? 500 : 503, "%s",
                         rc == ROUSE_ENOMEM ? "out of memory" : "server is shutting down");
        return rc;
    }
    req->write_by = w;
    return 0;
}

void durable_done(http_req *req)
{
    req->write_ticket = 0;
    req->write_by = NULL;
}
