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
 * Then the threads' own work off the loop: the span JSON of a warm call,
 * and the usage records' writes (store/usage.h) as the registry's writer
 * runs them, batches of USAGE_ROWS records, each in a transaction with its
 * COMMIT, into a registry in a temporary directory: the thread's CPU time
 * (not the wall time, which waits on the disk) per record, over ROUNDS
 * batches after as many into the same table.
 *
 *   build/observe_cost [ROUNDS [USAGE_ROWS]]   (USAGE_ROWS: default 1024,
 *                                             as serve's usage batches)
 */
#include <dirent.h>
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
#include "store/store.h"
#include "store/usage.h"

#define BATCH 1000
#define USAGE_ROWS_MAX 4096

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

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Removes the files of dir (the registry's; it makes no subdirectories
 * here) and dir. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                remove(path);
            }
        closedir(d);
    }
    remove(dir);
}

/* One batch of usage records written: its transaction's CPU ns, or -1. */
static int64_t usage_batch(store *st, usage_rec *recs, int rows, int64_t *ts)
{
    for (int i = 0; i < rows; i++) {
        *ts += 50 + (int64_t)(i * 7919 % 23);
        recs[i].ts_us = *ts;
        snprintf(recs[i].request_id, sizeof(recs[i].request_id), "%016" PRIx64,
                 (uint64_t)*ts * 2654435761u);
        snprintf(recs[i].trace_id, sizeof(recs[i].trace_id), "%016" PRIx64 "%016" PRIx64,
                 (uint64_t)*ts * 40503u, (uint64_t)*ts ^ (uint64_t)0x9e3779b97f4a7c15u);
    }
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    uint64_t t0 = thread_cpu_ns();
    if (store_tx_begin(st, &eb) < 0) goto out_fail;
    if (usage_insert_tx(st, recs, rows, &eb) < 0) {
        store_tx_rollback(st);
        goto out_fail;
    }
    if (store_tx_commit(st, &eb) < 0) goto out_fail;
    return (int64_t)(thread_cpu_ns() - t0);
out_fail:
    fprintf(stderr, "observe_cost: %s\n", eb.msg);
    return -1;
}

/* The usage writer's CPU per record, in ns (-1 on an error). */
static double usage_cost(int rounds, int rows)
{
    char dir[] = "/tmp/observe_cost.XXXXXX";
    if (!mkdtemp(dir)) return -1;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    store *st;
    if (store_open(dir, &st, &eb) < 0) {
        fprintf(stderr, "observe_cost: %s\n", eb.msg);
        remove_dir(dir);
        return -1;
    }
    usage_rec *recs = calloc((size_t)rows, sizeof(*recs));
    double per = -1;
    if (recs) {
        for (int i = 0; i < rows; i++) {
            usage_rec *r = &recs[i];
            snprintf(r->function, sizeof(r->function), "mlp");
            snprintf(r->tenant, sizeof(r->tenant), "default");
            r->version = 1;
            r->start = 1;
            r->run_us = 12 + i % 5;
            r->total_us = 45 + i % 17;
            r->memory_mb = 512;
            r->bytes_in = 3200;
            r->bytes_out = 120;
            r->status = 200;
        }
        int64_t ts = rouse_wall_ms() * 1000, total = 0;
        for (int r = 0; r < 2 * rounds && total >= 0; r++) {
            int64_t ns = usage_batch(st, recs, rows, &ts);
            if (ns < 0) total = -1;
            else if (r >= rounds) total += ns; /* the first half fills the table */
        }
        if (total >= 0) per = (double)total / ((double)rounds * rows);
        free(recs);
    }
    store_close(st);
    remove_dir(dir);
    return per;
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
    int rows = argc > 2 ? atoi(argv[2]) : 1024;
    if (rows < 1 || rows > USAGE_ROWS_MAX) rows = 1024;
    double u = usage_cost(rounds, rows);
    if (u >= 0)
        printf("%-32s %7.1f ns per request (writer thread's CPU; %d batches of %d after as many)\n",
               "usage record written", u, rounds, rows);
    rouse_buf_fini(&json);
    otlp_destroy(x);
    access_log_destroy(al);
    metrics_destroy(m);
    return 0;
}
