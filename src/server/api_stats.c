/*
 * GET /v1/stats: serve's own health, for benchmarks and operators. Today the
 * event loop: how many iterations it ran and the longest one
 * (`loop_stall_max_us`: from epoll_wait returning to the next call, i.e.
 * the longest time nothing else could be served, preemption by other
 * processes included) and `loop_block_max_us` (the longest of those in
 * which the loop thread went to sleep: blocked on a disk or another
 * process, which is what the loop must never do); and the durable writes:
 * how many the registry's writer and the blob syncer completed, in how many
 * groups (commits), the largest group, and how many wait now; blob
 * transfers (store/blob_remote.h): fetches from other nodes or the bucket
 * and writes through to the bucket, and how many of them failed. POST
 * /v1/stats/reset answers the same and starts the maxima again, so that a
 * benchmark can measure one window.
 */
#include <inttypes.h>

#include "server/http_int.h"
#include "store/blob_remote.h"

static void write_stats(const server *s, rouse_buf *b)
{
    rouse_buf_appendf(b,
                      "{\"loop\":{\"iterations\":%" PRIu64 ",\"loop_stall_max_us\":%" PRIu64
                      ",\"loop_block_max_us\":%" PRIu64 "}",
                      s->loop_iterations, s->loop_stall_max_ns / 1000u,
                      s->loop_block_max_ns / 1000u);
    const ep_writer *ws[2] = {&s->writer, &s->syncer};
    const char *names[2] = {"registry_writes", "blob_commits"};
    for (int i = 0; i < 2; i++) {
        store_writer_stats st = {0};
        if (ws[i]->w) store_writer_stats_get(ws[i]->w, &st);
        rouse_buf_appendf(b,
                          ",\"%s\":{\"writes\":%" PRIu64 ",\"groups\":%" PRIu64
                          ",\"max_group\":%" PRIu64 ",\"pending\":%d}",
                          names[i], st.n_writes, st.n_groups, st.max_group,
                          ws[i]->w ? store_writer_pending(ws[i]->w) : 0);
    }
    blob_remote_stats bs = {0};
    if (s->remote) blob_remote_stats_get(s->remote, &bs);
    rouse_buf_appendf(b,
                      ",\"blob_transfers\":{\"fetches\":%" PRIu64 ",\"fetch_failures\":%" PRIu64
                      ",\"pushes\":%" PRIu64 ",\"push_failures\":%" PRIu64 ",\"pending\":%d}",
                      bs.fetches, bs.fetch_failures, bs.pushes, bs.push_failures,
                      s->remote ? blob_remote_pending(s->remote) : 0);
    rouse_buf_append_str(b, "}\n");
}

int api_stats_handle(http_req *req)
{
    server *s = req->srv;
    rouse_buf b;
    rouse_buf_init(&b);
    write_stats(s, &b);
    if (req->r.id == R_STATS_RESET) s->loop_stall_max_ns = s->loop_block_max_ns = 0;
    http_reply_json(req, 200, &b);
    rouse_buf_fini(&b);
    return 0;
}
