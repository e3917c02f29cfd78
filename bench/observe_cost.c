/*
 * What metrics, the access log and traces cost serve's loop thread per
 * inference request, without HTTP or instances around: the trace context
 * from a traceparent and the traceresponse value, the metrics sink, an
 * access log line queued (its writer thread writing to /dev/null) and a
 * span record queued (its exporter thread posting to a closed port, so
 * that it drops and counts). The queues are drained by their threads as
 * in serve; a batch that finds a queue full is measured again.
 *
 * Prints the best of ROUNDS rounds of BATCH requests for each part and for
 * all together, in ns per request: the best round is the one least
 * disturbed by other processes on a shared machine.
 *
 *   build/observe_cost [ROUNDS]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timeutil.h"
#include "server/access_log.h"
#include "server/metrics.h"
#include "server/otlp.h"
#include "server/trace.h"

#define BATCH 1000

static invocation make_inv(void)
{
    invocation inv;
    memset(&inv, 0, sizeof(inv));
    snprintf(inv.request_id, sizeof(inv.request_id), "5f8e4d9b00000001");
    snprintf(inv.function, sizeof(inv.function), "mlp");
    inv.version = 1;
    inv.start = INV_START_WARM;
    inv.run_us = 12;
    inv.total_us = 45;
    inv.billed_ms = 1;
    inv.bytes_in = 3200;
    inv.bytes_out = 120;
    inv.status = 200;
    inv.ts_us = rouse_wall_ms() * 1000;
    return inv;
}

enum { P_TRACE = 1, P_METRICS = 2, P_LOG = 4, P_SPANS = 8 };

/* One batch with the parts in `mask`; ns per request, or -1 when a queue
 * was full (the batch does not count). */
static double batch(int mask, metrics *m, access_log *al, otlp_exporter *x, trace_rng *rng)
{
    static const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    invocation inv = make_inv();
    trace_ctx t;
    char resp[TRACEPARENT_LEN + 1];
    bool full = false;
    uint64_t t0 = rouse_now_ns();
    for (int i = 0; i < BATCH; i++) {
        if (mask & P_TRACE) {
            trace_begin(&t, tp, NULL, 1.0, rng);
            trace_format(&t, resp);
            memcpy(inv.trace_id, t.trace_id, sizeof(inv.trace_id));
        }
        if (mask & P_METRICS) metrics_on_invocation(m, &inv);
        if (mask & P_LOG) {
            access_rec *r = access_log_claim(al);
            if (!r) {
                full = true;
            } else {
                r->is_invocation = true;
                memcpy(r->method, "POST", 5);
                memcpy(r->path, "/v2/models/mlp/infer", 21);
                r->inv = inv;
                access_log_publish(al);
            }
        }
        if (mask & P_SPANS) {
            otlp_record *r = otlp_claim(x);
            if (!r) {
                full = true;
            } else {
                memcpy(r->ctx.trace_id, t.trace_id, sizeof(r->ctx.trace_id));
                memcpy(r->ctx.parent_id, t.parent_id, sizeof(r->ctx.parent_id));
                memcpy(r->ctx.span_id, t.span_id, sizeof(r->ctx.span_id));
                r->ctx.state[0] = '\0';
                r->inv = inv;
                r->submitted = true;
                r->enq_us = 20;
                r->have_phases = false;
                otlp_publish(x);
            }
        }
    }
    uint64_t ns = rouse_now_ns() - t0;
    /* Let the threads drain before the next batch, as between requests. */
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    return full ? -1 : (double)ns / BATCH;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    if (rounds < 1) rounds = 1;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    metrics *m = metrics_create();
    access_log *al;
    otlp_exporter *x;
    if (!m || access_log_create("/dev/null", ACCESS_LOG_JSON, &al, &eb) < 0 ||
        otlp_create("http://127.0.0.1:1", &x, &eb) < 0) {
        fprintf(stderr, "observe_cost: %s\n", eb.msg);
        return 1;
    }
    trace_rng rng;
    trace_rng_seed(&rng);
    const struct {
        const char *name;
        int mask;
    } parts[] = {
        {"trace context + traceresponse", P_TRACE},
        {"metrics sink", P_METRICS},
        {"access log line queued", P_LOG},
        {"span record queued", P_TRACE | P_SPANS},
        {"all of them", P_TRACE | P_METRICS | P_LOG | P_SPANS},
    };
    for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++) {
        double best = -1;
        for (int r = 0; r < rounds; r++) {
            double v = batch(parts[p].mask, m, al, x, &rng);
            if (v >= 0 && (best < 0 || v < best)) best = v;
        }
        printf("%-32s %7.1f ns per request (best of %d rounds of %d)\n", parts[p].name, best,
               rounds, BATCH);
    }
    /* The exporter thread's own work per record, off the loop: the JSON of
     * a warm call's three spans (one batch of 128 records at a time). */
    static otlp_record recs[128];
    invocation inv = make_inv();
    for (int i = 0; i < 128; i++) {
        trace_begin(&recs[i].ctx, NULL, NULL, 1.0, &rng);
        recs[i].inv = inv;
        recs[i].submitted = true;
        recs[i].enq_us = 20;
    }
    rouse_buf json;
    rouse_buf_init(&json);
    double best = -1;
    for (int r = 0; r < rounds; r++) {
        rouse_buf_clear(&json);
        uint64_t t0 = rouse_now_ns();
        otlp_encode(recs, 128, &json);
        double v = (double)(rouse_now_ns() - t0) / 128;
        if (best < 0 || v < best) best = v;
    }
    printf("%-32s %7.1f ns per request (exporter thread; %zu bytes per batch of 128)\n",
           "span JSON encoded", best, json.len);
    rouse_buf_fini(&json);
    otlp_destroy(x);
    access_log_destroy(al);
    metrics_destroy(m);
    return 0;
}
