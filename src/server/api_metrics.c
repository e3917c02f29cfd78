/*
 * GET /metrics: the Prometheus text exposition of serve (metrics.h), with
 * the loop's lag since the previous scrape and the counters of the access
 * log and the span exporter. 404 when serve runs with --metrics off.
 */
#include <stdio.h>

#include "server/access_log.h"
#include "server/http_int.h"
#include "server/metrics.h"
#include "server/otlp.h"

int api_metrics_handle(http_req *req)
{
    server *s = req->srv;
    if (!s->metrics) {
        http_reply_error(req, 404, "metrics are off (rouse serve --metrics off)");
        return 0;
    }
    metrics_extra x = {
        .pool = s->pool,
        .loop_lag_max_s = (double)s->loop_lag_scrape_ns / 1e9,
        .spans_exported = s->otlp ? otlp_exported(s->otlp) : 0,
        .spans_dropped = s->otlp ? otlp_dropped(s->otlp) : 0,
        .log_lines_dropped = s->alog ? access_log_dropped(s->alog) : 0,
        .instance_oom_kills = pool_oom_kills(s->pool),
        .state_stale = s->regsync ? shared_state_stale(s) : -1,
    };
    s->loop_lag_scrape_ns = 0;
    rouse_buf b;
    rouse_buf_init(&b);
    if (metrics_write(s->metrics, &x, &b) < 0 || usage_metrics_write(s, &b) < 0 ||
        cluster_write_metrics(s, &b) < 0) {
        rouse_buf_fini(&b);
        http_reply_error(req, 500, "out of memory");
        return 0;
    }
    http_reply_json(req, 200, &b);
    rouse_buf_fini(&b);
    snprintf(req->reply.content_type, sizeof(req->reply.content_type),
             "text/plain; version=0.0.4; charset=utf-8");
    return 0;
}
