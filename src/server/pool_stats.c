/*
 * The pool's statistics (see pool_stats.h) and the description of a
 * function's processes for GET /v1/functions/{name}. Reads the pool, never
 * changes it.
 */
#include "server/pool_stats.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/fmt.h"
#include "server/pool_int.h"

const char *start_kind_name(start_kind k)
{
    return k == START_ZERO ? "zero" : k == START_TEMPLATE ? "template" : "warm";
}

void stats_record_cold(cold_log *log, const cold_start *c)
{
    log->ring[log->head] = *c;
    log->head = (log->head + 1) % COLD_STARTS_KEPT;
    if (log->n < COLD_STARTS_KEPT) log->n++;
}

/* ,"key":{"1":us,"8":us} of the measured classes of ns (per call). */
static int per_class(rouse_buf *out, const char *key, const uint64_t *ns)
{
    int rc = rouse_buf_appendf(out, ",\"%s\":{", key);
    bool any = false;
    for (int c = 0; rc == 0 && c < BATCH_CLASSES; c++) {
        if (!ns[c]) continue;
        rc = rouse_buf_appendf(out, "%s\"%d\":%.1f", any ? "," : "", 1 << c, (double)ns[c] / 1000.0);
        any = true;
    }
    return rc == 0 ? rouse_buf_append_str(out, "}") : rc;
}

/* ns rounded to µs, at most 999,999,999,999. */
static uint64_t timing_us(uint64_t ns)
{
    uint64_t us = ns / 1000 + (ns % 1000 >= 500);
    return us < 999999999999ull ? us : 999999999999ull;
}

void stats_timing(char out[96], uint64_t queue_ns, uint64_t start_ns, uint64_t infer_ns)
{
    /* Milliseconds with three decimals, without printf: this runs per
     * request. Each figure is at most 999,999,999.999 ms (13 bytes), so
     * the whole takes at most 74 bytes. */
    char *p = out;
    memcpy(p, "queue;dur=", 10);
    p = fmt_ms3(p + 10, timing_us(queue_ns));
    memcpy(p, ", start;dur=", 12);
    p = fmt_ms3(p + 12, timing_us(start_ns));
    memcpy(p, ", infer;dur=", 12);
    p = fmt_ms3(p + 12, timing_us(infer_ns));
    *p = '\0';
}

void stats_timing_batch(char out[128], uint64_t queue_ns, uint64_t start_ns, uint64_t infer_ns,
                        int batch)
{
    stats_timing(out, queue_ns, start_ns, infer_ns);
    size_t n = strlen(out);
    snprintf(out + n, 128 - n, ", batch;desc=%d", batch);
}

static const char *state_name(proc_state st, bool is_template, int n_inflight)
{
    if (st == PROC_STARTING) return "starting";
    if (st == PROC_STOPPING) return n_inflight > 0 ? "draining" : "stopping";
    if (is_template) return "ready";
    return n_inflight > 0 ? "busy" : "idle";
}

int pool_describe(const pool *p, const char *name, rouse_buf *out)
{
    int rc = rouse_buf_append_str(out, "\"instances\":[");
    bool first = true;
    for (const vpool *vp = p->pools; rc == 0 && vp; vp = vp->next) {
        if (strcmp(vp->name, name) != 0) continue;
        for (const worker *w = vp->workers; rc == 0 && w; w = w->vnext) {
            rc =
                rouse_buf_appendf(out,
                                  "%s{\"version\":%" PRId64
                                  ",\"pid\":%d,\"state\":\"%s\",\"start\":\"%s\",\"in_flight\":%d}",
                                  first ? "" : ",", vp->version, (int)w->h.pid,
                                  state_name(w->h.state, false, w->n_inflight),
                                  start_kind_name(w->kind), w->n_inflight);
            first = false;
        }
    }
    if (rc == 0) rc = rouse_buf_append_str(out, "],\"templates\":[");
    first = true;
    /* Stopping templates too, until they are reaped. */
    for (const tmpl *t = p->templates; rc == 0 && t; t = t->next) {
        if (strcmp(t->name, name) != 0) continue;
        rc = rouse_buf_appendf(out, "%s{\"version\":%" PRId64 ",\"pid\":%d,\"state\":\"%s\"}",
                               first ? "" : ",", t->vp ? t->vp->version : t->version, (int)t->h.pid,
                               state_name(t->h.state, true, 0));
        first = false;
    }
    if (rc == 0) rc = rouse_buf_append_str(out, "],\"spares\":[");
    /* Spares count against the instance cap: listed with their template. */
    first = true;
    for (const tmpl *t = p->templates; rc == 0 && t; t = t->next) {
        if (!t->spare || !t->vp || strcmp(t->name, name) != 0) continue;
        rc = rouse_buf_appendf(
            out,
            "%s{\"version\":%" PRId64
            ",\"template\":%d,\"pid\":%d,\"state\":\"%s\",\"connected\":%s}",
            first ? "" : ",", t->vp->version, (int)t->h.pid, (int)t->spare_pid,
            t->spare_pid > 0 ? "warm" : "starting",
            t->held && t->held->h.state == PROC_READY ? "true" : "false");
        first = false;
    }
    if (rc == 0) rc = rouse_buf_append_str(out, "],\"keep_alive\":[");
    /* The windows each version's template is kept by now (keepalive_policy.h),
     * in ms after the end of its last active minute (fixed: after its last
     * request). */
    first = true;
    for (const vpool *vp = p->pools; rc == 0 && vp; vp = vp->next) {
        if (strcmp(vp->name, name) != 0) continue;
        ka_windows w;
        ka_windows_learned(&vp->ka, p->ka_minute_ms, vp->cfg.scaling.template_ttl_ms,
                           vp->cfg.scaling.template_ttl_caps, KA_SHARE_GAPS, &w);
        bool fixed = vp->cfg.scaling.keep_alive == FN_KEEP_ALIVE_FIXED;
        int64_t now_ms = (int64_t)(pool_now(p) / 1000000ull);
        rc = rouse_buf_appendf(
            out,
            "%s{\"version\":%" PRId64 ",\"policy\":\"%s\",\"mode\":\"%s\",\"idle_times\":%u,"
            "\"cv\":%.2f,\"prewarm_ms\":%" PRId64 ",\"keep_ms\":%" PRId64
            ",\"ttl_caps\":%s,\"capped\":%s"
            ",\"since_last_request_ms\":%" PRId64 ",\"prewarms\":%" PRIu64 "}",
            first ? "" : ",", vp->version, fixed ? "fixed" : "learned",
            fixed ? "fixed" : ka_kind_name(w.kind), w.n, w.cv, fixed ? 0 : w.prewarm_ms,
            fixed ? vp->cfg.scaling.template_ttl_ms : w.keep_ms,
            vp->cfg.scaling.template_ttl_caps ? "true" : "false",
            !fixed && w.capped ? "true" : "false",
            vp->ka.last_minute >= 0 ? now_ms - vp->ka.last_ms : -1, vp->n_prewarms);
        first = false;
    }
    if (rc == 0) rc = rouse_buf_append_str(out, "],\"batching\":[");
    /* Each batching version's limit now (auto mode moves it), what it ran
     * and the activation memory an instance holds for its largest batch. */
    first = true;
    for (const vpool *vp = p->pools; rc == 0 && vp; vp = vp->next) {
        if (strcmp(vp->name, name) != 0 || vp->cfg.batching.mode == FN_BATCH_OFF) continue;
        bool is_auto = vp->cfg.batching.mode == FN_BATCH_AUTO;
        rc = rouse_buf_appendf(
            out,
            "%s{\"version\":%" PRId64 ",\"mode\":\"%s\",\"limit\":%d,\"max_batch\":%" PRId64
            ",\"max_delay_us\":%" PRId64 ",\"slo_ms\":%" PRId64 ",\"batches\":%" PRIu64
            ",\"batched_requests\":%" PRIu64 ",\"memory_bytes\":%" PRIu64 ",\"sent_by\":{",
            first ? "" : ",", vp->version, is_auto ? "auto" : "fixed",
            is_auto ? vp->aimd.limit : (int)vp->cfg.batching.max_batch, vp->cfg.batching.max_batch,
            vp->cfg.batching.max_delay_us, vp->cfg.batching.slo_ms, vp->n_batches,
            vp->n_batched_calls, vp->batch_mem_bytes);
        /* The calls the queue sent, by the rule that sent them. */
        for (int y = BATCH_WHY_WAIT + 1; rc == 0 && y < BATCH_WHYS; y++)
            rc = rouse_buf_appendf(out, "%s\"%s\":%" PRIu64, y > BATCH_WHY_WAIT + 1 ? "," : "",
                                   batch_why_name((batch_why)y), vp->n_why[y]);
        /* What the policy decides by: CPU time per call of each batch size
         * class measured, keyed by its smallest size (instance and serve
         * together; the instance's alone, the lone rule's), and whether the
         * lone rule holds. */
        if (rc == 0) rc = rouse_buf_append_str(out, "}");
        if (rc == 0) rc = per_class(out, "cpu_us_per_call", vp->runs.cpu_ns);
        if (rc == 0) rc = per_class(out, "instance_cpu_us_per_call", vp->runs.inst_ns);
        if (rc == 0)
            rc = rouse_buf_appendf(out, ",\"lone\":%s}", vp->lone_held ? "true" : "false");
        first = false;
    }
    if (rc == 0) rc = rouse_buf_append_str(out, "]");
    int queued = 0;
    for (const vpool *vp = p->pools; vp; vp = vp->next)
        if (strcmp(vp->name, name) == 0) queued += vp->n_queued;
    if (rc == 0) rc = rouse_buf_appendf(out, ",\"queued\":%d,\"cold_starts\":[", queued);
    /* The most recent ten, newest first. */
    first = true;
    int shown = 0;
    const cold_log *log = &p->cold;
    for (int k = 1; rc == 0 && k <= log->n && shown < 10; k++) {
        const cold_start *c = &log->ring[(log->head - k + COLD_STARTS_KEPT) % COLD_STARTS_KEPT];
        if (strcmp(c->name, name) != 0) continue;
        rc = rouse_buf_appendf(
            out,
            "%s{\"version\":%" PRId64 ",\"pid\":%d,\"start\":\"%s\",\"at_ms\":%" PRId64
            ",\"queue_ms\":%.3f,\"template_ms\":%.3f,\"plan_open_ms\":%.3f,\"prepare_ms\":%.3f,"
            "\"spawn_ms\":%.3f,\"fork_ms\":%.3f,\"first_infer_ms\":%.3f%s%s}",
            first ? "" : ",", c->version, c->pid, start_kind_name(c->kind), c->at_ms, c->queue_ms,
            c->template_ms, c->plan_open_ms, c->prepare_ms, c->spawn_ms, c->fork_ms,
            c->first_infer_ms,
            c->kind != START_ZERO ? ""
            : c->template_forked  ? ",\"template_start\":\"zygote\""
                                  : ",\"template_start\":\"exec\"",
            c->kind != START_ZERO ? ""
            : c->template_kept    ? ",\"template_session\":\"zygote\""
                                  : ",\"template_session\":\"prepared\"");
        first = false;
        shown++;
    }
    if (rc == 0) rc = rouse_buf_append_str(out, "]");
    return rc;
}

void pool_batch_gauges(const pool *p, pool_batch_fn b, void *user)
{
    for (const vpool *vp = p->pools; vp; vp = vp->next) {
        if (vp->cfg.batching.mode == FN_BATCH_OFF) continue;
        int limit = vp->cfg.batching.mode == FN_BATCH_AUTO ? vp->aimd.limit
                                                           : (int)vp->cfg.batching.max_batch;
        b(user, vp->name, limit, vp->n_batches, vp->n_batched_calls);
    }
}

void pool_gauges(const pool *p, pool_gauge_fn g, pool_pid_fn pid, void *user)
{
    for (const vpool *vp = p->pools; vp; vp = vp->next) {
        int starting = 0, idle = 0, busy = 0;
        for (const worker *w = vp->workers; w; w = w->vnext) {
            if (w->h.state == PROC_STARTING)
                starting++;
            else if (w->h.state == PROC_READY && w->n_inflight > 0)
                busy++;
            else if (w->h.state == PROC_READY)
                idle++;
        }
        g(user, vp->name, starting, idle, busy, vp->n_queued);
        for (const worker *w = vp->workers; w; w = w->vnext)
            if (w->h.pid > 0 && w->h.state != PROC_STOPPING) pid(user, vp->name, (int)w->h.pid);
    }
}

const cold_start *pool_last_cold(const pool *p, const char *name, int64_t version)
{
    const cold_log *log = &p->cold;
    for (int k = 1; k <= log->n; k++) {
        const cold_start *c = &log->ring[(log->head - k + COLD_STARTS_KEPT) % COLD_STARTS_KEPT];
        if (c->version == version && strcmp(c->name, name) == 0) return c;
    }
    return NULL;
}
