/*
 * The OpenAI-style text endpoints, under /openai/v1/ so that they never
 * collide with rouse's own /v1/ API:
 *   POST /openai/v1/completions, POST /openai/v1/chat/completions: the
 *     request goes to an instance of the function named by "model" (the
 *     only field read here), which decodes it, generates and encodes the
 *     answer (worker/openai.c);
 *   GET /openai/v1/models: the functions whose latest version is a text
 *     generator ("task": "text-generation").
 *
 * A streamed answer ("stream": true) arrives from the pool in pieces
 * (pool_chunk): the first one queues the response (status and headers,
 * Server-Timing with the time to the first token), every piece is appended
 * to the stream's buffer, which MHD's content reader drains; the reader
 * suspends the connection while the buffer is empty and a piece resumes it.
 * The call's end (done) brings the last bytes. A client that leaves makes
 * MHD complete the request at the next write, which cancels the call: the
 * instance is told to stop generating (IPC_CANCEL) and is free again after
 * the token it was computing.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "server/http_int.h"
#include "worker/ipc.h"

typedef struct oai_stream {
    server *srv;
    struct MHD_Connection *conn;
    http_req *req; /* NULL once the request ended */
    rouse_buf buf;
    size_t off;
    bool ended, suspended;
} oai_stream;

bool http_route_is_inference(route_id id)
{
    return id == R_INFER || id == R_OAI_COMPLETIONS || id == R_OAI_CHAT;
}

static void stream_wake(oai_stream *st)
{
    if (!st->suspended) return;
    st->suspended = false;
    MHD_resume_connection(st->conn);
    st->srv->mhd_kick = true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    oai_stream *st = cls;
    if (st->off < st->buf.len) {
        size_t n = st->buf.len - st->off < max ? st->buf.len - st->off : max;
        memcpy(buf, st->buf.data + st->off, n);
        st->off += n;
        if (st->off == st->buf.len) {
            rouse_buf_clear(&st->buf);
            st->off = 0;
        }
        return (ssize_t)n;
    }
    if (st->ended) return MHD_CONTENT_READER_END_OF_STREAM;
    st->suspended = true;
    MHD_suspend_connection(st->conn);
    return 0;
}

static void stream_free(void *cls)
{
    oai_stream *st = cls;
    if (st->req) st->req->gen_stream = NULL;
    rouse_buf_fini(&st->buf);
    free(st);
}

void api_openai_req_end(http_req *req)
{
    if (req->gen_stream) req->gen_stream->req = NULL;
    req->gen_stream = NULL;
}

static void on_chunk(void *user, const pool_chunk *ch)
{
    http_req *req = user;
    oai_stream *st = req->gen_stream;
    if (!st) {
        if (!ch->first || req->have_reply) return;
        st = calloc(1, sizeof(*st));
        if (!st) return; /* the whole reply comes with done, unstreamed */
        st->srv = req->srv;
        st->conn = req->conn;
        st->req = req;
        rouse_buf_init(&st->buf);
        http_reply *r = &req->reply;
        r->status = ch->status;
        snprintf(r->content_type, sizeof(r->content_type), "%s",
                 ch->content_type && ch->content_type[0] ? ch->content_type : "text/event-stream");
        if (ch->start) snprintf(r->start, sizeof(r->start), "%s", ch->start);
        if (ch->timing) snprintf(r->timing, sizeof(r->timing), "%s", ch->timing);
        if (ch->warning && ch->warning[0])
            snprintf(r->warning, sizeof(r->warning), "%s", ch->warning);
        r->stream_read = stream_read;
        r->stream_free = stream_free;
        r->stream = st;
        req->gen_stream = st;
        req->have_reply = true;
        rouse_buf_append(&st->buf, ch->data, ch->len);
        http_req_resume(req); /* on_access queues the response */
        return;
    }
    rouse_buf_append(&st->buf, ch->data, ch->len);
    stream_wake(st);
}

void api_openai_stream_done(http_req *req, pool_result *res)
{
    oai_stream *st = req->gen_stream;
    req->pending = NULL;
    http_req_take_metering(req, res);
    if (res->error) {
        rouse_buf_append_str(&st->buf, "data: {\"error\":");
        json_write_string(&st->buf, res->error, strlen(res->error));
        rouse_buf_append_str(&st->buf, "}\n\ndata: [DONE]\n\n");
    } else if (res->body) {
        rouse_buf_append(&st->buf, res->body, (size_t)res->len);
    } else if (res->fd >= 0 && res->len > 0 && rouse_buf_reserve(&st->buf, res->len) == 0) {
        ssize_t n = pread(res->fd, st->buf.data + st->buf.len, (size_t)res->len, 0);
        if (n > 0) st->buf.len += (size_t)n;
    }
    if (res->fd >= 0) close(res->fd);
    free(res->body);
    res->fd = -1;
    res->body = NULL;
    st->ended = true;
    stream_wake(st);
}

/* The "model" of a request body: the function. */
static int body_model(http_req *req, char *name, size_t cap)
{
    rouse_arena a;
    rouse_arena_init(&a, 0);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    json_value *root;
    int rc = json_parse(req->body.data ? req->body.data : "", req->body.len, &a, &root, &eb);
    if (rc < 0) {
        http_reply_error(req, 400, "the request body is not valid JSON: %s", eb.msg);
    } else {
        const char *m = json_as_string(json_get(root, "model"));
        if (!m || !*m) {
            http_reply_error(req, 400, "model: missing (the name of a text-generation function)");
            rc = ROUSE_EINVAL;
        } else if (strlen(m) >= cap || auth_fn_key(req, m, name, cap) < 0) {
            /* (the caller's tenant's function: auth.h) */
            http_reply_error(req, 404, "model: no function named '%.64s'", m);
            rc = ROUSE_ENOTFOUND;
        }
    }
    rouse_arena_fini(&a);
    return rc;
}

static int generate(http_req *req, bool chat)
{
    server *s = req->srv;
    if (req->body_len == 0) {
        http_reply_error(req, 400, "empty request body: expected a JSON %s request",
                         chat ? "chat completions" : "completions");
        return 0;
    }
    if (body_model(req, req->r.name, sizeof(req->r.name)) < 0) return 0;
    int64_t version;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (route_cache_resolve(s, req->r.name, "", &version) != 0) {
        int rc = store_resolve(s->st, req->r.name, NULL, server_random(s), &version, &eb);
        if (rc < 0) {
            http_reply_error(req, http_status_of(rc), "%s", eb.msg);
            return 0;
        }
    }
    size_t len;
    char *body = rouse_buf_detach(&req->body, &len);
    if (!body) {
        http_reply_error(req, 500, "out of memory");
        return 0;
    }
    pool_request rq = {.name = req->r.name,
                       .version = version,
                       .type = IPC_GENERATE,
                       .body = body,
                       .body_fd = -1,
                       .body_len = len,
                       .json_len = chat ? IPC_GEN_CHAT : IPC_GEN_COMPLETIONS,
                       .chunk = on_chunk};
    return http_req_submit(req, &rq);
}

typedef struct models_ctx {
    rouse_buf *b;
    int n;
    const http_req *req; /* the caller: its tenant's functions only */
} models_ctx;

static int list_model(void *user, const store_function *f)
{
    models_ctx *mc = user;
    if (!auth_owns_fn(mc->req, f->name)) return 0;
    const store_version *latest = NULL;
    for (int i = 0; i < f->n_versions; i++)
        if (!latest || f->versions[i].version > latest->version) latest = &f->versions[i];
    if (!latest || !latest->config_json) return 0;
    fn_config cfg;
    rouse_errbuf eb;
    if (fn_config_load(latest->config_json, strlen(latest->config_json), &cfg, &eb) < 0 ||
        cfg.task != FN_TASK_TEXT_GENERATION)
        return 0;
    rouse_buf_appendf(
        mc->b,
        "%s{\"id\":\"%s\",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"rouse\","
        "\"max_context\":%lld}",
        mc->n++ ? "," : "", auth_fn_name(f->name), (long long)(f->created_ms / 1000),
        (long long)cfg.max_context);
    return 0;
}

int api_openai_handle(http_req *req)
{
    switch (req->r.id) {
    case R_OAI_COMPLETIONS:
        return generate(req, false);
    case R_OAI_CHAT:
        return generate(req, true);
    default: {
        rouse_buf b;
        rouse_buf_init(&b);
        rouse_buf_append_str(&b, "{\"object\":\"list\",\"data\":[");
        models_ctx mc = {&b, 0, req};
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        if (store_function_list(req->srv->st, list_model, &mc, &eb) < 0) {
            rouse_buf_fini(&b);
            http_reply_error(req, 500, "%s", eb.msg);
            return 0;
        }
        rouse_buf_append_str(&b, "]}\n");
        http_reply_json(req, 200, &b);
        rouse_buf_fini(&b);
        return 0;
    }
    }
}
