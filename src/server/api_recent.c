/*
 * GET /v1/recent[?function=NAME]: the last hour of each function from the
 * in-memory window (recent.h), with its instances by state and its queue
 * now, for the console's overview and charts (JSON, so that no browser
 * parses the Prometheus text of /metrics).
 *
 *   {"now_ms":T,"rate_window_s":10,"functions":[{"name":"digits",
 *    "instances":{"starting":0,"idle":1,"busy":0},"queued":0,
 *    "rate_per_s":R,                       last 10 whole seconds
 *    "last_5m":{"requests":N,"p50_ms":X,"p99_ms":X},
 *    "last_hour":{"requests":N,"errors":N,"error_rate":F,
 *                 "cold_starts":{"template":N,"zero":N},"p50_ms":X,"p99_ms":X},
 *    "minutes":{"start_ms":T,"requests":[60],"errors":[60],
 *               "cold_template":[60],"cold_zero":[60]},
 *    "latency":[{"le_ms":X,"count":N},...]}]}     the hour's histogram
 *
 * Percentiles are the upper bound of the histogram bucket that holds them
 * (never below the exact value, at most 19 % above; null without calls).
 * Functions with instances but no call in the hour are listed at zero.
 * Calls whose name resolved to no version are not counted. Only the
 * caller's tenant's functions are listed, by the names it calls them
 * (auth.h); ?function= names one of them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/timeutil.h"
#include "server/auth.h"
#include "server/http_int.h"
#include "server/recent.h"

typedef struct gauge_row {
    char name[STORE_NAME_MAX + 1];
    int starting, idle, busy, queued;
    bool used;
} gauge_row;

typedef struct reply_ctx {
    http_req *req;
    rouse_buf *b;
    const char *only; /* ?function= as the tenant's function key, or NULL */
    gauge_row *rows;
    int n_rows, cap_rows;
    int n_out;
    bool oom;
    int64_t now_us;
} reply_ctx;

static void on_gauge(void *user, const char *name, int starting, int idle, int busy, int queued)
{
    reply_ctx *c = user;
    if (c->only ? strcmp(name, c->only) != 0 : !auth_owns_fn(c->req, name)) return;
    for (int i = 0; i < c->n_rows; i++) {
        gauge_row *g = &c->rows[i];
        if (strcmp(g->name, name) != 0) continue;
        g->starting += starting;
        g->idle += idle;
        g->busy += busy;
        g->queued += queued;
        return;
    }
    if (c->n_rows == c->cap_rows) {
        int cap = c->cap_rows ? c->cap_rows * 2 : 16;
        gauge_row *rows = realloc(c->rows, (size_t)cap * sizeof(*rows));
        if (!rows) {
            c->oom = true;
            return;
        }
        c->rows = rows;
        c->cap_rows = cap;
    }
    gauge_row *g = &c->rows[c->n_rows++];
    memset(g, 0, sizeof(*g));
    snprintf(g->name, sizeof(g->name), "%s", name);
    g->starting = starting;
    g->idle = idle;
    g->busy = busy;
    g->queued = queued;
}

static void on_pid(void *user, const char *name, int pid)
{
    (void)user, (void)name, (void)pid;
}

static void put_ms(rouse_buf *b, const char *key, double us)
{
    if (us < 0)
        rouse_buf_appendf(b, ",\"%s\":null", key);
    else
        rouse_buf_appendf(b, ",\"%s\":%.3f", key, us / 1000.0);
}

static void put_u32s(rouse_buf *b, const char *key, const uint32_t *v, bool first)
{
    rouse_buf_appendf(b, "%s\"%s\":[", first ? "" : ",", key);
    for (int i = 0; i < RECENT_MINUTES; i++)
        rouse_buf_appendf(b, "%s%" PRIu32, i ? "," : "", v[i]);
    rouse_buf_append_str(b, "]");
}

static void put_head(reply_ctx *c, const char *name)
{
    rouse_buf *b = c->b;
    const char *shown = auth_fn_name(name);
    rouse_buf_append_str(b, c->n_out++ ? ",{\"name\":" : "{\"name\":");
    json_write_string(b, shown, strlen(shown));
    gauge_row *g = NULL;
    for (int i = 0; i < c->n_rows; i++)
        if (strcmp(c->rows[i].name, name) == 0) g = &c->rows[i];
    if (g) g->used = true;
    rouse_buf_appendf(b, ",\"instances\":{\"starting\":%d,\"idle\":%d,\"busy\":%d},\"queued\":%d",
                      g ? g->starting : 0, g ? g->idle : 0, g ? g->busy : 0, g ? g->queued : 0);
}

static void on_fn(void *user, const char *name, const recent_sums *hour, const recent_sums *last5,
                  const recent_series *ser, uint64_t rate_requests)
{
    reply_ctx *c = user;
    if (c->only ? strcmp(name, c->only) != 0 : !auth_owns_fn(c->req, name)) return;
    rouse_buf *b = c->b;
    put_head(c, name);
    rouse_buf_appendf(b, ",\"rate_per_s\":%.3f", (double)rate_requests / RECENT_RATE_S);
    rouse_buf_appendf(b, ",\"last_5m\":{\"requests\":%" PRIu64, last5->requests);
    put_ms(b, "p50_ms", recent_quantile_us(last5, 0.50));
    put_ms(b, "p99_ms", recent_quantile_us(last5, 0.99));
    rouse_buf_appendf(b,
                      "},\"last_hour\":{\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
                      ",\"error_rate\":%.6f,\"cold_starts\":{\"template\":%" PRIu64
                      ",\"zero\":%" PRIu64 "}",
                      hour->requests, hour->errors,
                      hour->requests ? (double)hour->errors / (double)hour->requests : 0.0,
                      hour->cold_template, hour->cold_zero);
    put_ms(b, "p50_ms", recent_quantile_us(hour, 0.50));
    put_ms(b, "p99_ms", recent_quantile_us(hour, 0.99));
    rouse_buf_appendf(b, "},\"minutes\":{\"start_ms\":%" PRId64 ",", ser->first_minute * 60000);
    put_u32s(b, "requests", ser->requests, true);
    put_u32s(b, "errors", ser->errors, false);
    put_u32s(b, "cold_template", ser->cold_template, false);
    put_u32s(b, "cold_zero", ser->cold_zero, false);
    rouse_buf_append_str(b, "},\"latency\":[");
    int n = 0;
    for (int k = 0; k < RECENT_BUCKETS; k++) {
        if (!hour->hist[k]) continue;
        if (k < RECENT_BUCKETS - 1)
            rouse_buf_appendf(b, "%s{\"le_ms\":%.4f,\"count\":%" PRIu64 "}", n++ ? "," : "",
                              recent_bucket_le_us(k) / 1000.0, hour->hist[k]);
        else
            rouse_buf_appendf(b, "%s{\"le_ms\":null,\"count\":%" PRIu64 "}", n++ ? "," : "",
                              hour->hist[k]);
    }
    rouse_buf_append_str(b, "]}");
}

int api_recent_handle(http_req *req)
{
    server *s = req->srv;
    if (!s->recent) {
        http_reply_error(req, 500, "out of memory");
        return 0;
    }
    const char *only = http_req_query(req, "function");
    if (only && !*only) {
        http_reply_error(req, 400, "function: give a function name");
        return 0;
    }
    char key[STORE_NAME_MAX + 1];
    if (only && auth_fn_key(req, only, key, sizeof(key)) < 0) {
        http_reply_error(req, 404, "function '%s' not found", only);
        return 0;
    }
    rouse_buf b;
    rouse_buf_init(&b);
    reply_ctx c = {.req = req, .b = &b, .only = only ? key : NULL, .now_us = rouse_wall_us()};
    pool_gauges(s->pool, on_gauge, on_pid, &c);
    rouse_buf_appendf(&b, "{\"now_ms\":%" PRId64 ",\"rate_window_s\":%d,\"functions\":[",
                      c.now_us / 1000, RECENT_RATE_S);
    recent_each(s->recent, c.now_us, on_fn, &c);
    for (int i = 0; i < c.n_rows; i++) {
        if (c.rows[i].used) continue;
        put_head(&c, c.rows[i].name);
        rouse_buf_append_str(&b, "}");
    }
    int rc = rouse_buf_append_str(&b, "]}\n");
    free(c.rows);
    http_reply_built(req, 200, &b, c.oom ? ROUSE_ENOMEM : rc);
    return 0;
}
