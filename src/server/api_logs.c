/*
 * GET /v1/functions/{name}/logs[?since=S][&follow=1]: the function's ring
 * of instance output and crash reports (fnlog.h). Without follow, one JSON
 * document; with it, Server-Sent Events (text/event-stream), one event per
 * line as it is logged, a comment every FNLOG_HEARTBEAT_MS, until the
 * client goes, the function is deleted or serve stops.
 *
 * since: milliseconds since the epoch, or an age ("30s", "10m", "2h", "1d").
 *
 * A follower's connection is suspended (from MHD's content reader) while it
 * has nothing to send and resumed when its function logs a line; MHD owns
 * the stream from the moment the response is queued and frees it (and the
 * follower) with the response.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/fnlog.h"
#include "server/http_int.h"

typedef struct sse {
    server *srv;
    struct MHD_Connection *conn;
    fnlog_follower *f;
    bool suspended; /* by sse_read, until sse_wake */
} sse;

static void sse_wake(void *user)
{
    sse *s = user;
    if (!s->suspended) return;
    s->suspended = false;
    MHD_resume_connection(s->conn);
    s->srv->mhd_kick = true;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sse *s = cls;
    bool ended;
    size_t n = fnlog_follower_read(s->f, buf, max, &ended);
    if (n) return (ssize_t)n;
    if (ended) return MHD_CONTENT_READER_END_OF_STREAM;
    s->suspended = true;
    MHD_suspend_connection(s->conn);
    return 0;
}

static void sse_free(void *cls)
{
    sse *s = cls;
    fnlog_unfollow(s->f);
    free(s);
}

/* since= into wall-clock ms; false when malformed. */
static bool parse_since(const char *v, int64_t *out)
{
    *out = 0;
    if (!v || !*v) return true;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (end == v || n < 0) return false;
    if (!*end) {
        *out = n;
        return true;
    }
    long long unit = end[1] ? 0
                     : *end == 's' ? 1000
                     : *end == 'm' ? 60000
                     : *end == 'h' ? 3600000
                     : *end == 'd' ? 86400000
                                   : 0;
    if (!unit) return false;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *out = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - n * unit;
    return true;
}

int api_logs_handle(http_req *req)
{
    server *s = req->srv;
    store_function f;
    memset(&f, 0, sizeof(f));
    if (req->r.param_too_long || store_function_get(s->st, req->r.name, &f, NULL) < 0) {
        http_reply_error(req, 404, "no function named '%s'", auth_fn_name(req->r.name));
        return 0;
    }
    store_function_fini(&f);
    int64_t since;
    if (!parse_since(http_req_query(req, "since"), &since)) {
        http_reply_error(req, 400,
                         "since: give milliseconds since the epoch or an age like 30s, 10m, 2h, 1d");
        return 0;
    }
    const char *follow = http_req_query(req, "follow");
    if (!follow || strcmp(follow, "0") == 0 || strcmp(follow, "false") == 0) {
        rouse_buf b;
        rouse_buf_init(&b);
        http_reply_built(req, 200, &b, fnlog_write_json(s->logs, req->r.name, since, &b));
        return 0;
    }
    sse *st = calloc(1, sizeof(*st));
    if (!st || fnlog_follow(s->logs, req->r.name, since, sse_wake, st, &st->f) < 0) {
        free(st);
        http_reply_error(req, 500, "out of memory");
        return 0;
    }
    st->srv = s;
    st->conn = req->conn;
    http_reply *r = &req->reply;
    r->status = 200;
    snprintf(r->content_type, sizeof(r->content_type), "text/event-stream");
    r->stream_read = sse_read;
    r->stream_free = sse_free;
    r->stream = st;
    req->have_reply = true;
    return 0;
}
