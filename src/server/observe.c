/*
 * Metrics, the access log and traces, wired into serve: started from the
 * options (server_opts); metrics registered as an invocation sink
 * (invocation.h); the access log's line of every request (an inference's
 * from its invocation record); the trace context of each inference
 * request (trace.h) carried from its headers to its spans (otlp.h).
 *
 * Everything here runs on the loop thread; the access log and the span
 * exporter own threads of their own behind lock-free queues.
 */
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "pool_stats.h"
#include "server/access_log.h"
#include "server/http_int.h"
#include "server/metrics.h"
#include "server/recent.h"
#include "server/otlp.h"

#define MOD "serve"

int observe_start(server *s, rouse_errbuf *eb)
{
    const server_opts *o = &s->opts;
    trace_rng_seed(&s->trace_rng);
    int rc;
    if (!o->metrics_off) {
        if (!(s->metrics = metrics_create()))
            return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        if ((rc = invocation_sink_add(&s->sinks, metrics_on_invocation, s->metrics)) < 0)
            goto out_fail;
    }
    /* The last hour per function, for GET /v1/recent (the console). */
    if (!(s->recent = recent_create())) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out_fail;
    }
    if ((rc = invocation_sink_add(&s->sinks, recent_on_invocation, s->recent)) < 0) goto out_fail;
    if (o->access_log) {
        const char *path = strcmp(o->access_log, "-") == 0 ? NULL : o->access_log;
        if ((rc = access_log_create(path, (access_log_format)o->access_log_format, &s->alog, eb)) <
            0)
            goto out_fail;
    }
    if (o->otlp_endpoint && (rc = otlp_create(o->otlp_endpoint, &s->otlp, eb)) < 0) goto out_fail;
    return 0;

out_fail:
    if (!eb->msg[0]) rouse_err_set(eb, rc, "too many invocation sinks");
    observe_stop(s);
    return rc;
}

void observe_stop(server *s)
{
    otlp_destroy(s->otlp);
    s->otlp = NULL;
    access_log_destroy(s->alog);
    s->alog = NULL;
    metrics_destroy(s->metrics);
    s->metrics = NULL;
    recent_destroy(s->recent);
    s->recent = NULL;
}

void observe_reopen(server *s)
{
    if (s->alog) access_log_reopen(s->alog);
}

void observe_req_begin(http_req *req)
{
    server *s = req->srv;
    trace_begin(&req->trace, http_req_header(req, "traceparent"),
                http_req_header(req, "tracestate"), s->opts.trace_sample_ratio, &s->trace_rng);
    memcpy(req->trace_id, req->trace.trace_id, sizeof(req->trace_id));
}

/* The start of an access log line: method and path. */
static access_rec *log_begin(http_req *req)
{
    access_rec *r = access_log_claim(req->srv->alog);
    if (!r) return NULL;
    r->is_invocation = false;
    memcpy(r->method, req->method, sizeof(r->method));
    size_t n = strnlen(req->url, sizeof(r->path) - 1);
    memcpy(r->path, req->url, n);
    r->path[n] = '\0';
    return r;
}

void observe_req_done(http_req *req)
{
    access_rec *r = log_begin(req);
    if (!r) return;
    invocation *inv = &r->inv;
    memset(inv, 0, sizeof(*inv));
    memcpy(inv->request_id, req->request_id, sizeof(inv->request_id));
    inv->status = req->have_reply && req->reply.status ? req->reply.status : 503;
    inv->total_us = (rouse_now_ns() - req->begin_ns + 500) / 1000;
    inv->bytes_in = req->body_len;
    inv->bytes_out = req->reply.fd_len ? req->reply.fd_len : req->reply.len;
    inv->ts_us = req->begin_wall_us;
    access_log_publish(req->srv->alog);
}

void observe_req_end(http_req *req, const invocation *inv)
{
    server *s = req->srv;
    if (s->alog) {
        access_rec *a = log_begin(req);
        if (a) {
            a->is_invocation = true;
            a->inv = *inv;
            access_log_publish(s->alog);
        }
    }
    if (!s->otlp || !req->trace.sampled || !req->trace_id[0]) return;
    otlp_record tmp, *r = otlp_claim(s->otlp);
    bool full = !r;
    if (full) r = &tmp; /* filled only to count its spans */
    /* Field by field: the tracestate is copied up to its end, not whole. */
    memcpy(r->ctx.trace_id, req->trace.trace_id, sizeof(r->ctx.trace_id));
    memcpy(r->ctx.parent_id, req->trace.parent_id, sizeof(r->ctx.parent_id));
    memcpy(r->ctx.span_id, req->trace.span_id, sizeof(r->ctx.span_id));
    r->ctx.sampled = true;
    size_t st = strlen(req->trace.state);
    memcpy(r->ctx.state, req->trace.state, st + 1);
    r->inv = *inv;
    r->submitted = req->submit_ns != 0;
    r->enq_us = req->submit_ns > req->begin_ns ? (req->submit_ns - req->begin_ns + 500) / 1000 : 0;
    r->have_phases = r->from_zero = false;
    r->template_us = r->plan_open_us = r->prepare_us = r->spawn_us = 0;
    if (inv->start == INV_START_TEMPLATE || inv->start == INV_START_ZERO) {
        const cold_start *c = pool_last_cold(s->pool, inv->function, inv->version);
        if (c) {
            r->have_phases = true;
            r->from_zero = c->kind == START_ZERO;
            r->template_us = (uint64_t)(c->template_ms * 1000.0);
            r->plan_open_us = (uint64_t)(c->plan_open_ms * 1000.0);
            r->prepare_us = (uint64_t)(c->prepare_ms * 1000.0);
            r->spawn_us = (uint64_t)(c->spawn_ms * 1000.0);
        }
    }
    if (full)
        otlp_drop(s->otlp, otlp_span_count(r));
    else
        otlp_publish(s->otlp);
}
