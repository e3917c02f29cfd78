/*
 * The HTTP layer: libmicrohttpd in external epoll mode, per-request state,
 * body sinks with our size limits, and replies.
 *
 * Invariants:
 * - A response is queued only on a handler call after the first one for a
 *   request (queuing on the first breaks keep-alive in MHD).
 * - A body never grows past req->body_limit: the request is answered 413
 *   (Content-Length is checked up front; chunked bodies when they cross it).
 * - A suspended connection is resumed exactly once, by whoever owns the
 *   pending work; the next handler call queues its reply.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/fmt.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "server/http.h"
#include "server/http_head.h"
#include "server/http_int.h"
#include "server/http_wire.h"
#include "server/jobq.h"
#include "server/tls.h"
#include "store/blob_remote.h"
#include "worker/ipc.h"

#define MOD "http"

int http_status_of(int rc)
{
    return rouse_err_http_status(rc); /* the one table: include/rouse/err.h */
}

static void reply_clear(http_reply *r)
{
    if (r->stream && r->stream_free) r->stream_free(r->stream); /* never queued */
    free(r->body);
    if (r->fd >= 0) close(r->fd);
    memset(r, 0, sizeof(*r));
    r->fd = -1;
    r->json_len = -1;
}

void http_reply_json(http_req *req, int status, rouse_buf *json)
{
    reply_clear(&req->reply);
    req->reply.status = status;
    snprintf(req->reply.content_type, sizeof(req->reply.content_type), "application/json");
    req->reply.body = rouse_buf_detach(json, &req->reply.len);
    req->have_reply = true;
}

void http_reply_built(http_req *req, int status, rouse_buf *json, int rc)
{
    if (rc < 0) {
        rouse_buf_fini(json);
        http_reply_error(req, 500, "out of memory");
        return;
    }
    http_reply_json(req, status, json);
}

void http_reply_error(http_req *req, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rouse_buf b;
    rouse_buf_init(&b);
    int rc = rouse_buf_append_str(&b, "{\"error\":");
    if (rc == 0) rc = json_write_string(&b, msg, strlen(msg));
    if (rc == 0) rc = rouse_buf_append_str(&b, "}\n");
    http_reply_json(req, status, &b);
    rouse_buf_fini(&b);
    if (status >= 500) LOG_WARN(MOD, "%d %s", status, msg);
}

const char *http_req_header(http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_req_query(http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* The gate's record of a connection (http_gate.c), or NULL. */
static gate_keep *keep_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Watches the client socket of a suspended request for a hang-up
 * (EPOLLRDHUP only): through the gate's registration of the connection
 * when it has one (epoll takes one per descriptor), else a registration of
 * its own; resuming unwatches. */
static void watch_client(http_req *req)
{
    if (req->watch_fd >= 0) return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return;
    gate_keep *k = keep_of(req->conn);
    if (http_gate_keep_watch(req->srv, k, &req->ctag)) {
        req->watch_keep = k;
        req->watch_fd = ci->connect_fd;
        return;
    }
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = &req->ctag};
    if (epoll_ctl(req->srv->epfd, EPOLL_CTL_ADD, ci->connect_fd, &ev) == 0)
        req->watch_fd = ci->connect_fd;
}

static void unwatch_client(http_req *req)
{
    if (req->watch_fd < 0) return;
    if (req->watch_keep)
        http_gate_keep_unwatch(req->watch_keep);
    else
        epoll_ctl(req->srv->epfd, EPOLL_CTL_DEL, req->watch_fd, NULL);
    req->watch_keep = NULL;
    req->watch_fd = -1;
}

/* The list of suspended requests not watched yet, oldest first. */
static void waiting_add(http_req *req)
{
    server *srv = req->srv;
    req->suspended_ns = rouse_now_ns();
    req->wnext = NULL;
    req->wprev = srv->waiting_tail;
    if (srv->waiting_tail)
        srv->waiting_tail->wnext = req;
    else
        srv->waiting_head = req;
    srv->waiting_tail = req;
}

static void waiting_remove(http_req *req)
{
    server *srv = req->srv;
    if (req->suspended_ns == 0) return;
    req->suspended_ns = 0;
    if (req->wprev)
        req->wprev->wnext = req->wnext;
    else
        srv->waiting_head = req->wnext;
    if (req->wnext)
        req->wnext->wprev = req->wprev;
    else
        srv->waiting_tail = req->wprev;
    req->wprev = req->wnext = NULL;
}

int http_tick(server *srv)
{
    uint64_t now = rouse_now_ns();
    http_req *req;
    while ((req = srv->waiting_head) && now - req->suspended_ns >= WATCH_AFTER_NS) {
        waiting_remove(req);
        watch_client(req);
    }
    if (!req) return -1;
    return (int)((req->suspended_ns + WATCH_AFTER_NS - now) / 1000000ull) + 1;
}

void http_on_client_event(ep_tag *tag)
{
    http_req *req = (http_req *)tag;
    if (req->watch_fd < 0) return; /* already resumed in this round */
    unwatch_client(req);
    /* A request already with an instance stays attached: its reply resumes
     * the connection, and MHD then finds it closed and completes it. A
     * deploy's model check runs to its end as well. A generation is the
     * exception: it would run for its whole max_tokens, so it is cancelled
     * now (the instance stops at its next token). */
    bool generating = req->pending && !pool_call_queued(req->pending) &&
                      (req->r.id == R_OAI_COMPLETIONS || req->r.id == R_OAI_CHAT);
    if (!req->pending || (!pool_call_queued(req->pending) && !generating)) return;
    LOG_DEBUG(MOD, "client hung up while its request waited");
    pool_cancel(req->srv->pool, req->pending);
    req->pending = NULL;
    /* Dropped from the queue: let MHD find the closed connection. */
    http_reply_error(req, 503, "client went away");
    http_req_resume(req);
}

void http_req_resume(http_req *req)
{
    unwatch_client(req);
    waiting_remove(req);
    if (!req->suspended) return;
    req->suspended = false;
    MHD_resume_connection(req->conn);
    req->srv->mhd_kick = true;
}

/* A pool call of req ended: its result becomes the reply. */
void http_req_take_metering(http_req *req, const pool_result *res)
{
    req->start_kind = inv_start_parse(res->start);
    req->queue_ns = res->queue_ns;
    req->start_ns = res->start_ns;
    req->run_ns = res->run_ns;
    req->ttft_ns = res->ttft_ns;
    req->itl_ns = res->itl_ns;
    req->memory_mb = res->memory_mb;
    if (res->version > 0) req->reply.version = res->version;
}

static void on_call_done(void *user, pool_result *res)
{
    http_req *req = user;
    assert(req->pending); /* the call it waits for, which ends once */
    if (req->gen_stream) {
        api_openai_stream_done(req, res);
        return;
    }
    req->pending = NULL;
    if (res->warning) fmt_copy(req->reply.warning, sizeof(req->reply.warning), res->warning);
    if (res->error) {
        http_reply_error(req, res->status, "%s", res->error);
    } else {
        http_reply *r = &req->reply;
        free(r->body);
        r->body = NULL;
        r->len = 0;
        if (r->fd >= 0) close(r->fd);
        r->status = res->status;
        fmt_copy(r->content_type, sizeof(r->content_type),
                 res->content_type && res->content_type[0] ? res->content_type
                                                           : "application/json");
        r->fd = res->fd;
        r->fd_len = res->fd >= 0 ? res->len : 0;
        r->body = res->body;
        r->len = res->body ? res->len : 0;
        r->json_len = res->json_len;
        req->have_reply = true;
    }
    res->fd = -1;
    res->body = NULL;
    http_req_take_metering(req, res);
    if (res->retry_after > 0) req->reply.retry_after = res->retry_after;
    if (res->start) fmt_copy(req->reply.start, sizeof(req->reply.start), res->start);
    if (res->timing) fmt_copy(req->reply.timing, sizeof(req->reply.timing), res->timing);
    http_req_resume(req);
}

int http_req_submit(http_req *req, const pool_request *rq)
{
    pool_request r = *rq;
    r.done = on_call_done;
    r.user = req;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int retry_after = 0;
    if (!req->submit_ns) req->submit_ns = rouse_now_ns();
    int rc = pool_submit(req->srv->pool, &r, &req->pending, &retry_after, &eb);
    /* A call whose instance cannot be started at all ends at once. */
    if (rc == 0) return req->pending ? 1 : 0;
    http_reply_error(req, http_status_of(rc), "%s", eb.msg[0] ? eb.msg : rouse_strerror(rc));
    if (retry_after > 0) req->reply.retry_after = retry_after;
    if (rc == ROUSE_EBUSY) req->reply.version = rq->version;
    return 0;
}

/* Replies up to this size are read out of their memfd and sent from memory:
 * MHD then writes the status line, headers and body with one system call
 * (one TCP segment), while an fd response costs a second send per reply. */
#define SMALL_REPLY_BYTES (64u * 1024u)

/* Moves a small memfd reply into r->body. False (reply untouched) when the
 * read fails; the fd path then sends it. */
static bool reply_fd_to_body(http_reply *r)
{
    char *body = malloc((size_t)r->fd_len);
    if (!body) return false;
    size_t got = 0;
    while (got < r->fd_len) {
        ssize_t n = pread(r->fd, body + got, (size_t)r->fd_len - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            free(body);
            return false;
        }
        got += (size_t)n;
    }
    close(r->fd);
    r->fd = -1;
    free(r->body);
    r->body = body;
    r->len = (size_t)r->fd_len;
    return true;
}

/* The console's policy (api_console.c): this origin's scripts, styles and
 * API only; images also from data: and blob: URLs (the try-it panel's
 * preview of a chosen file); no inline code, frames, forms or plugins. */
#define CONSOLE_CSP                                                                                \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "        \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static enum MHD_Result queue_reply(http_req *req)
{
    http_reply *r = &req->reply;
    struct MHD_Response *resp;
    if (r->fd >= 0 && r->fd_len > 0 && r->fd_len <= SMALL_REPLY_BYTES) reply_fd_to_body(r);
    if (req->r.id == R_MODEL_META) api_oip_meta_reply(req);
    if (r->stream) {
        /* MHD owns the stream from here and calls stream_free. */
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, r->stream_read,
                                                 r->stream, r->stream_free);
        if (resp) r->stream = NULL;
    } else if (r->fd >= 0 && r->fd_len > 0) {
        /* MHD owns the memfd from here and sends it with sendfile. */
        resp = MHD_create_response_from_fd64(r->fd_len, r->fd);
        if (resp) r->fd = -1;
    } else {
        resp = MHD_create_response_from_buffer(r->len, r->body ? r->body : (void *)"",
                                               r->body ? MHD_RESPMEM_MUST_FREE
                                                       : MHD_RESPMEM_PERSISTENT);
        if (resp) r->body = NULL;
    }
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type[0] ? r->content_type : "application/json");
    char num[32];
    if (r->version > 0) {
        *fmt_i64(num, r->version) = '\0';
        MHD_add_response_header(resp, "X-Rouse-Version", num);
    }
    if (r->json_len >= 0) {
        *fmt_i64(num, r->json_len) = '\0';
        MHD_add_response_header(resp, "Inference-Header-Content-Length", num);
    }
    if (r->retry_after > 0) {
        snprintf(num, sizeof(num), "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
    }
    if (r->location[0]) MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    if (r->challenge)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"rouse\"");
    if (r->start[0]) MHD_add_response_header(resp, "Rouse-Start", r->start);
    if (r->timing[0]) MHD_add_response_header(resp, "Server-Timing", r->timing);
    if (r->warning[0]) {
        char w[160];
        snprintf(w, sizeof(w), "299 rouse \"%s\"", r->warning);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WARNING, w);
    }
    /* The node that answered: this one, or the peer a call was forwarded to. */
    MHD_add_response_header(resp, "Rouse-Node", r->node[0] ? r->node : req->srv->node_name);
    if (req->request_id[0]) MHD_add_response_header(resp, "X-Request-Id", req->request_id);
    if (req->trace_id[0]) {
        char tp[TRACEPARENT_LEN + 1];
        trace_format(&req->trace, tp);
        MHD_add_response_header(resp, "traceresponse", tp);
    }
    if (req->early_error) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (r->console) {
        MHD_add_response_header(resp, "Content-Security-Policy", CONSOLE_CSP);
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    }
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    LOG_DEBUG(MOD, "%s %d", req->method, r->status);
    return ret;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-') return false;
    *out = v;
    return true;
}

/* What the URI hook leaves in *con_cls for a request whose path holds
 * "%00": MHD would decode it into a NUL and hand on_access a path cut
 * short there ("a%00b" naming "a"). */
static char nul_in_path;

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    return http_target_has_nul(uri, strlen(uri)) ? &nul_in_path : NULL;
}

/* First call: state, route, limits. Nothing is queued here. */
static http_req *req_begin(server *srv, struct MHD_Connection *conn, const char *url,
                           const char *method)
{
    http_req *req = calloc(1, sizeof(*req));
    if (!req) return NULL;
    req->srv = srv;
    req->conn = conn;
    req->ctag.kind = EP_CLIENT;
    req->watch_fd = -1;
    req->body_fd = -1;
    req->json_len = -1;
    req->reply.fd = -1;
    req->reply.json_len = -1;
    req->begin_ns = rouse_now_ns();
    req->begin_wall_us = rouse_wall_us();
    _Static_assert(sizeof(req->request_id) >= 17, "a request id is 16 hex digits");
    char *id = fmt_hex(req->request_id, srv->req_id_base, 8);
    *fmt_hex(id, ++srv->req_seq, 8) = '\0'; /* its low 32 bits */
    rouse_buf_init(&req->body);
    fmt_copy(req->method, sizeof(req->method), method);
    srv->n_reqs++;
    route_match(method, url, &req->r);
    /* The one access check, before the body is read. */
    if (!auth_check(req)) req->early_error = req->auth_refused = true;
    if (http_route_is_inference(req->r.id)) observe_req_begin(req);
    if (srv->alog) fmt_copy(req->url, sizeof(req->url), url);
    req->sink = route_sink(req->r.id);
    req->body_limit =
        route_body_limit(req->r.id, srv->opts.max_body_bytes, srv->opts.max_blob_bytes);
    uint64_t declared;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    bool have_length = parse_u64(cl, &declared);
    if (req->early_error) {
        /* answered by the access check */
    } else if (have_length && declared > req->body_limit) {
        req->early_error = true;
        http_reply_error(req, 413,
                         "request body of %" PRIu64 " bytes exceeds this endpoint's limit of %" PRIu64
                         " bytes",
                         declared, req->body_limit);
    } else if (have_length && req->sink == BODY_INSTANCE && declared <= POOL_BODY_INLINE_MAX) {
        rouse_buf_reserve(&req->body, (size_t)declared); /* one allocation for the body */
    }
    http_gate_keep_request(keep_of(conn));
    /* Every plain request's head was checked before MHD read it
     * (http_wire.c); these are for requests over TLS. */
    const char *te = http_req_header(req, "Transfer-Encoding");
    if (!http_method_valid(method)) {
        req->early_error = true;
        http_reply_error(req, 400, "malformed request line: expected METHOD /path HTTP/1.1");
    } else if (te && strcasecmp(te, "chunked") != 0) {
        req->early_error = true;
        http_reply_error(req, 501,
                         "Transfer-Encoding: only chunked is supported (no other "
                         "coding, no list of codings)");
    }
    const char *ihcl = http_req_header(req, "Inference-Header-Content-Length");
    if (ihcl) {
        uint64_t v;
        if (!parse_u64(ihcl, &v) || v > INT64_MAX) {
            req->early_error = true;
            http_reply_error(req, 400, "Inference-Header-Content-Length: not a byte count: %s",
                             ihcl);
        } else {
            req->json_len = (int64_t)v;
        }
    }
    return req;
}

/* Takes one piece of the body into the route's sink. */
static void req_body(http_req *req, const char *data, size_t len)
{
    if (req->have_reply) return; /* already answered: discard */
    if (req->body_len + len > req->body_limit) {
        req->early_error = true;
        http_reply_error(req, 413, "request body exceeds this endpoint's limit of %" PRIu64 " bytes",
                         req->body_limit);
        return;
    }
    req->body_len += len;
    assert(req->body_len <= req->body_limit);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = 0;
    switch (req->sink) {
    case BODY_NONE:
    case BODY_BUF:
        rc = rouse_buf_append(&req->body, data, len);
        break;
    case BODY_INSTANCE:
        if (req->body_fd < 0 && req->body_len <= POOL_BODY_INLINE_MAX) {
            rc = rouse_buf_append(&req->body, data, len);
            break;
        }
        /* Too big for a shared region: spill into a memfd of its own. */
        if (req->body_fd < 0) {
            rc = ipc_memfd_create("rouse-request", &req->body_fd, &eb);
            if (rc == 0) rc = ipc_memfd_write(req->body_fd, req->body.data, req->body.len, &eb);
            rouse_buf_fini(&req->body);
            rouse_buf_init(&req->body);
        }
        if (rc == 0) rc = ipc_memfd_write(req->body_fd, data, len, &eb);
        break;
    case BODY_BLOB:
        if (!req->blob) rc = blob_write_begin(req->srv->blobs, req->body_limit, &req->blob, &eb);
        if (rc == 0) rc = blob_write(req->blob, data, len, &eb);
        break;
    }
    if (rc < 0) {
        req->early_error = true;
        http_reply_error(req, http_status_of(rc), "%s", eb.msg[0] ? eb.msg : rouse_strerror(rc));
    }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    server *srv = cls;
    http_req *req = *con_cls;
    if (!req || *con_cls == &nul_in_path) {
        bool nul = req != NULL;
        req = req_begin(srv, conn, url, method);
        if (!req) return MHD_NO;
        *con_cls = req;
        if (nul) {
            req->early_error = true;
            http_reply_error(req, 400, "the request path contains %%00 (a NUL byte)");
        }
        /* A declared body over the limit: answer before reading it (MHD
         * accepts a response only now or once the body is in). This breaks
         * keep-alive, which is fine: the connection closes after it anyway. */
        if (req->early_error && req->have_reply) {
            req->handled = true;
            return queue_reply(req);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* Past the limit (chunked bodies): the rest is read and dropped,
         * the 413 goes out when the body ends. */
        req_body(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->handled && req->early_error) return MHD_YES; /* answered on the first call */
    if (req->handled) {
        /* Resumed after a suspension (or a repeated call): the reply is ready. */
        if (req->suspended) return MHD_YES;
        assert(!req->pending || !req->have_reply || req->gen_stream);
        return req->have_reply ? queue_reply(req) : MHD_NO;
    }
    req->handled = true;
    if (!req->have_reply && route_handle(req) == 1) {
        /* A request that waits long gets its client watched (http_tick);
         * most never wait that long. */
        req->suspended = true;
        waiting_add(req);
        MHD_suspend_connection(conn);
        return MHD_YES;
    }
    if (!req->have_reply) http_reply_error(req, 500, "internal error: no reply");
    return queue_reply(req);
}

static uint64_t ns_to_us(uint64_t ns)
{
    return (ns + 500) / 1000;
}

/* The one place where a finished inference request becomes its invocation
 * record (invocation.h), handed to every sink. Requests answered before
 * their handler ran (a body over the limit, a bad header) count too. */
static void emit_invocation(server *srv, http_req *req)
{
    /* A generation whose body named no function never reached one: not an
     * invocation (the access log still has it). */
    if (!http_route_is_inference(req->r.id) || !req->r.name[0] ||
        (srv->sinks.n == 0 && !srv->otlp && !srv->alog))
        return;
    if (!req->handled && !req->have_reply) return; /* the connection ended first */
    /* Refused by the access check: no caller to bill, and an unknown
     * client must not be able to fill the usage records. */
    if (req->auth_refused) return;
    const http_reply *r = &req->reply;
    invocation inv;
    memset(&inv, 0, sizeof(inv));
    memcpy(inv.request_id, req->request_id, sizeof(inv.request_id));
    /* Arrays of the same size, each NUL-terminated inside. */
    _Static_assert(sizeof(inv.function) == sizeof(req->r.name), "function name sizes");
    _Static_assert(sizeof(inv.tenant) == sizeof(req->who.tenant), "tenant name sizes");
    memcpy(inv.function, req->r.name, sizeof(inv.function));
    memcpy(inv.tenant, req->who.tenant, sizeof(inv.tenant));
    inv.version = r->version > 0 ? r->version : 0;
    inv.start = req->start_kind;
    inv.queue_us = ns_to_us(req->queue_ns);
    inv.start_us = ns_to_us(req->start_ns);
    /* Any run bills at least 1 ms, also one shorter than half a µs. */
    inv.run_us = req->run_ns > 0 && req->run_ns < 500 ? 1 : ns_to_us(req->run_ns);
    inv.total_us = ns_to_us(rouse_now_ns() - req->begin_ns);
    inv.ttft_us = ns_to_us(req->ttft_ns);
    inv.itl_us = ns_to_us(req->itl_ns);
    inv.billed_ms = inv_billed_ms(inv.run_us);
    inv.memory_mb = req->memory_mb;
    inv.bytes_in = req->body_len;
    inv.bytes_out = r->fd_len ? r->fd_len : r->len;
    /* No reply: the client went away while its call was with an instance. */
    inv.status = req->have_reply && r->status ? r->status : 503;
    inv.error = inv_error_of(inv.status);
    memcpy(inv.trace_id, req->trace_id, sizeof(inv.trace_id));
    inv.ts_us = req->begin_wall_us;
    /* A request that only enqueued a job (202) is not an invocation: its
     * runs are (async_glue.c); nor is one another node answered (that node
     * records it); the access log and traces still see both. */
    if (!req->job_accepted && !req->forwarded_out) invocation_emit(&srv->sinks, &inv);
    observe_req_end(req, &inv);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    server *srv = cls;
    http_req *req = *con_cls;
    *con_cls = NULL;
    (void)toe;
    http_gate_keep_idle(keep_of(conn)); /* until its next request begins */
    if (!req || req == (void *)&nul_in_path) return;
    emit_invocation(srv, req);
    if (!(http_route_is_inference(req->r.id) && req->r.name[0]) && srv->alog &&
        (req->handled || req->have_reply))
        observe_req_done(req);
    unwatch_client(req);
    waiting_remove(req);
    if (req->gen_stream) api_openai_req_end(req);
    if (req->fwd_id) cluster_route_req_end(req);
    if (req->pending) pool_cancel(srv->pool, req->pending);
    req->pending = NULL;
    if (req->write_ticket) store_writer_cancel(req->write_by, req->write_ticket);
    if (req->jobq_ticket) jobq_forget(srv->jobq, req->jobq_ticket);
    if (req->fetch_ticket) blob_remote_cancel(srv->remote, req->fetch_ticket);
    free(req->fetch_msg);
    if (req->body_fd >= 0) close(req->body_fd);
    blob_write_abort(req->blob);
    rouse_buf_fini(&req->body);
    reply_clear(&req->reply);
    free(req->pending_cfg_json);
    free(req);
    srv->n_reqs--;
}

/* MHD's connection notices: the gate's record of each connection lives
 * exactly as long as MHD's (MHD sends the closing notice before it closes
 * the socket). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = http_gate_keep_open(srv, ci ? ci->connect_fd : -1);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        http_gate_keep_close(srv, *socket_context);
        *socket_context = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    LOG_DEBUG("mhd", "%s", msg);
}

int http_start(server *srv, rouse_errbuf *eb)
{
    unsigned flags =
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET;
    /* The gate admits connections (http_gate.c); MHD's own limit only
     * leaves room for the ones the gate has shut down and MHD not closed
     * yet. Over TLS, each handshake asks tls.c for the current certificate. */
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, srv->tls ? tls_cert_callback() : NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    if (srv->tls) flags |= MHD_USE_TLS;
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_CONNECTION_LIMIT, (unsigned)srv->max_conns + 1024u,
        MHD_OPTION_ARRAY, srv->tls ? tls_opts : &tls_opts[1], MHD_OPTION_END);
    if (!srv->mhd) return rouse_err_set(eb, ROUSE_EIO, "cannot start the HTTP daemon");
    struct rlimit rl;
    if (!srv->tls && (getrlimit(RLIMIT_NOFILE, &rl) < 0 ||
                      http_wire_init(rl.rlim_cur > (1u << 22) ? 1 << 22 : (int)rl.rlim_cur) < 0)) {
        MHD_stop_daemon(srv->mhd);
        srv->mhd = NULL;
        return rouse_err_set(eb, ROUSE_ENOMEM, "the table of connection streams");
    }
    srv->keep_epfd = epoll_create1(EPOLL_CLOEXEC);
    srv->tag_keep_set.kind = EP_KEEP_SET;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &srv->tag_keep_set};
    if (srv->keep_epfd < 0 || epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->keep_epfd, &ev) < 0) {
        int e = errno;
        MHD_stop_daemon(srv->mhd);
        srv->mhd = NULL;
        if (srv->keep_epfd >= 0) close(srv->keep_epfd);
        srv->keep_epfd = -1;
        return rouse_err_set(eb, ROUSE_EIO, "the gate's epoll set: %s", strerror(e));
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info) {
        http_stop(srv);
        return rouse_err_set(eb, ROUSE_EIO, "HTTP daemon has no epoll descriptor");
    }
    return info->epoll_fd;
}

void http_run(server *srv)
{
    /* MHD asks to run again at once (timeout 0) while a connection it woke
     * has more to do, typically right after a reply went out: do it here
     * rather than through another round of the outer loop. Bounded, so
     * instances and signals are never starved. */
    MHD_UNSIGNED_LONG_LONG t;
    for (int round = 0; round < 4; round++) {
        MHD_run(srv->mhd);
        if (MHD_get_timeout(srv->mhd, &t) != MHD_YES || t > 0) break;
    }
}

int http_timeout_ms(server *srv)
{
    int gate = http_gate_tick(srv);
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(srv->mhd, &t) != MHD_YES) return gate;
    int mhd = t > INT32_MAX ? INT32_MAX : (int)t;
    return gate >= 0 && gate < mhd ? gate : mhd;
}

bool http_add_connection(server *srv, int fd, const struct sockaddr *sa, socklen_t sl)
{
    return MHD_add_connection(srv->mhd, fd, sa, sl) == MHD_YES;
}

void http_stop_accepting(server *srv)
{
    if (srv->metrics_fd >= 0) {
        epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->metrics_fd, NULL);
        close(srv->metrics_fd);
        srv->metrics_fd = -1;
    }
    if (srv->listen_fd < 0) return;
    epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->listen_fd, NULL);
    close(srv->listen_fd);
    srv->listen_fd = -1;
    /* Connections at the gate stay: they may still have events in this
     * epoll batch, and get their answer or MHD as usual. */
}

void http_stop(server *srv)
{
    if (srv->mhd) MHD_stop_daemon(srv->mhd); /* closes every gate_keep first */
    srv->mhd = NULL;
    if (srv->keep_epfd >= 0) close(srv->keep_epfd);
    srv->keep_epfd = -1;
}
