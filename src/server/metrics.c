/*
 * The metrics registry and its exposition (metrics.h).
 *
 * Invariants: the table's capacity is a power of two, at most half full
 * (linear probing always ends at an empty slot); an entry never moves or
 * goes away once made (gauges and counters keep their series).
 */
#include "server/metrics.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "server/pool.h"
#include "server/prom.h"

#define KINDS 2 /* cold start kinds: template, zero */

typedef struct status_count {
    int64_t version;
    int status;
    uint64_t n;
} status_count;

typedef struct fn_series {
    char name[STORE_NAME_MAX + 1];
    uint64_t hash;
    status_count *calls; /* (version, status) pairs seen */
    int n_calls, cap_calls;
    prom_hist request;
    prom_hist ttft, itl; /* text generations only */
    prom_hist cold_duration[KINDS];
    uint64_t cold_starts[KINDS];
    uint64_t rejected[INV_ERROR_COUNT];
    uint64_t billed_ms;
    /* Gauges, filled at scrape time. */
    int starting, idle, busy, queued;
    uint64_t memory;
    bool seen; /* by this scrape's walk over the pool */
} fn_series;

struct metrics {
    fn_series **slots;
    uint32_t cap, n;
    prom_hist queue_wait;
};

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

metrics *metrics_create(void)
{
    metrics *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->cap = 64;
    m->slots = calloc(m->cap, sizeof(*m->slots));
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void metrics_destroy(metrics *m)
{
    if (!m) return;
    for (uint32_t i = 0; i < m->cap; i++) {
        if (!m->slots[i]) continue;
        free(m->slots[i]->calls);
        free(m->slots[i]);
    }
    free(m->slots);
    free(m);
}

static fn_series *find(const metrics *m, const char *name, uint64_t h)
{
    for (uint32_t i = (uint32_t)h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        fn_series *f = m->slots[i];
        if (!f) return NULL;
        if (f->hash == h && strcmp(f->name, name) == 0) return f;
    }
}

static void place(fn_series **slots, uint32_t cap, fn_series *f)
{
    uint32_t i = (uint32_t)f->hash & (cap - 1);
    while (slots[i])
        i = (i + 1) & (cap - 1);
    slots[i] = f;
}

/* The series of `name`, made on first sight; NULL when out of memory. */
static fn_series *get(metrics *m, const char *name)
{
    uint64_t h = hash_name(name);
    fn_series *f = find(m, name, h);
    if (f) return f;
    if ((m->n + 1) * 2 > m->cap) {
        uint32_t cap = m->cap * 2;
        fn_series **slots = calloc(cap, sizeof(*slots));
        if (!slots) return NULL;
        for (uint32_t i = 0; i < m->cap; i++)
            if (m->slots[i]) place(slots, cap, m->slots[i]);
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->hash = h;
    place(m->slots, m->cap, f);
    m->n++;
    return f;
}

static void count_call(fn_series *f, int64_t version, int status)
{
    for (int i = 0; i < f->n_calls; i++) {
        if (f->calls[i].version == version && f->calls[i].status == status) {
            f->calls[i].n++;
            return;
        }
    }
    if (f->n_calls == f->cap_calls) {
        int cap = f->cap_calls ? f->cap_calls * 2 : 4;
        status_count *c = realloc(f->calls, (size_t)cap * sizeof(*c));
        if (!c) return; /* out of memory: this call goes uncounted */
        f->calls = c;
        f->cap_calls = cap;
    }
    f->calls[f->n_calls++] = (status_count){.version = version, .status = status, .n = 1};
}

void metrics_on_invocation(void *user, const invocation *inv)
{
    metrics *m = user;
    if (inv->version <= 0 || !inv->function[0]) return; /* no such function: no series */
    fn_series *f = get(m, inv->function);
    if (!f) return;
    count_call(f, inv->version, inv->status);
    prom_hist_observe(&f->request, inv->total_us);
    if (inv->ttft_us) prom_hist_observe(&f->ttft, inv->ttft_us);
    if (inv->itl_us) prom_hist_observe(&f->itl, inv->itl_us);
    /* The wait of every call that got an instance or waited out its
     * deadline in the queue. */
    if (inv->start != INV_START_NONE || inv->error == INV_ERR_TIMEOUT)
        prom_hist_observe(&m->queue_wait, inv->queue_us + inv->start_us);
    if (inv->start == INV_START_TEMPLATE || inv->start == INV_START_ZERO) {
        int k = inv->start == INV_START_TEMPLATE ? 0 : 1;
        f->cold_starts[k]++;
        prom_hist_observe(&f->cold_duration[k], inv->start_us);
    }
    if (inv->error == INV_ERR_QUEUE_FULL || inv->error == INV_ERR_TIMEOUT ||
        inv->error == INV_ERR_UNAVAILABLE)
        f->rejected[inv->error]++;
    if (inv->billed_ms > 0) f->billed_ms += (uint64_t)inv->billed_ms;
}

/* --- scrape ----------------------------------------------------------------- */

static void on_gauge(void *user, const char *name, int starting, int idle, int busy, int queued)
{
    fn_series *f = get(user, name);
    if (!f) return;
    f->starting += starting;
    f->idle += idle;
    f->busy += busy;
    f->queued += queued;
}

static void on_pid(void *user, const char *name, int pid)
{
    fn_series *f = get(user, name);
    if (f) f->memory += metrics_pid_memory(pid);
}

static const char *const kind_names[KINDS] = {"template", "zero"};

/* One family of the batching versions' figures, written as the pool walks
 * them (pool_batch_gauges). */
typedef struct batch_family {
    rouse_buf *out;
    const char *name;
    int which; /* 0: the limit, 1: batches, 2: calls in them */
    int rc;
} batch_family;

static void on_batch(void *user, const char *name, int limit, uint64_t batches, uint64_t calls)
{
    batch_family *b = user;
    if (b->rc < 0) return;
    prom_labels l;
    prom_labels_init(&l);
    prom_label(&l, "function", name);
    uint64_t v = b->which == 0 ? (uint64_t)limit : b->which == 1 ? batches : calls;
    b->rc = prom_sample_u64(b->out, b->name, &l, v);
}

static int write_batching(const metrics_extra *x, rouse_buf *out)
{
    static const char *const names[3] = {"rouse_batch_limit", "rouse_batches_total",
                                         "rouse_batched_requests_total"};
    static const char *const types[3] = {"gauge", "counter", "counter"};
    static const char *const help[3] = {
        "The batch size limit of a batching function now (auto mode moves it).",
        "Batches sent to instances (two or more invocations in one run message).",
        "Invocations sent in those batches."};
    int rc = 0;
    for (int k = 0; rc == 0 && k < 3; k++) {
        rc = prom_family(out, names[k], types[k], help[k]);
        batch_family b = {.out = out, .name = names[k], .which = k, .rc = 0};
        if (rc == 0 && x->pool) pool_batch_gauges(x->pool, on_batch, &b);
        if (rc == 0) rc = b.rc;
    }
    return rc;
}

int metrics_write(metrics *m, const metrics_extra *x, rouse_buf *out)
{
    for (uint32_t i = 0; i < m->cap; i++) {
        fn_series *f = m->slots[i];
        if (f) f->starting = f->idle = f->busy = f->queued = 0, f->memory = 0;
    }
    if (x->pool) pool_gauges(x->pool, on_gauge, on_pid, m);

    prom_labels l;
    int rc = prom_family(out, "rouse_invocations_total", "counter",
                         "Invocations that ended, by function, version and HTTP status.");
    for (uint32_t i = 0; rc == 0 && i < m->cap; i++) {
        const fn_series *f = m->slots[i];
        for (int k = 0; f && rc == 0 && k < f->n_calls; k++) {
            prom_labels_init(&l);
            prom_label(&l, "function", f->name);
            prom_label_int(&l, "version", f->calls[k].version);
            prom_label_int(&l, "status", f->calls[k].status);
            rc = prom_sample_u64(out, "rouse_invocations_total", &l, f->calls[k].n);
        }
    }
    if (rc == 0)
        rc = prom_family(out, "rouse_request_duration_seconds", "histogram",
                         "Invocations from request head to reply, by function.");
    for (uint32_t i = 0; rc == 0 && i < m->cap; i++) {
        const fn_series *f = m->slots[i];
        if (!f || f->request.count == 0) continue;
        prom_labels_init(&l);
        prom_label(&l, "function", f->name);
        rc = prom_hist_write(out, "rouse_request_duration_seconds", &l, &f->request);
    }
    static const struct {
        const char *name, *help;
        size_t off;
    } gen_hists[] = {
        {"rouse_time_to_first_token_seconds",
         "Text generations from the request reaching its instance to the first token, by "
         "function.",
         offsetof(fn_series, ttft)},
        {"rouse_inter_token_latency_seconds",
         "Text generations' mean time between tokens after the first, by function.",
         offsetof(fn_series, itl)},
    };
    for (size_t h = 0; rc == 0 && h < sizeof(gen_hists) / sizeof(gen_hists[0]); h++) {
        rc = prom_family(out, gen_hists[h].name, "histogram", gen_hists[h].help);
        for (uint32_t i = 0; rc == 0 && i < m->cap; i++) {
            const fn_series *f = m->slots[i];
            if (!f) continue;
            const prom_hist *hp = (const prom_hist *)((const char *)f + gen_hists[h].off);
            if (hp->count == 0) continue;
            prom_labels_init(&l);
            prom_label(&l, "function", f->name);
            rc = prom_hist_write(out, gen_hists[h].name, &l, hp);
        }
    }
    if (rc == 0)
        rc = prom_family(out, "rouse_queue_wait_seconds", "histogram",
                         "Time invocations waited for an instance (queue and instance start).");
    if (rc == 0) rc = prom_hist_write(out, "rouse_queue_wait_seconds", NULL, &m->queue_wait);
    if (rc == 0)
        rc = prom_family(out, "rouse_cold_starts_total", "counter",
                         "Invocations that waited for their instance to start, by kind: "
                         "template (forked from a ready template) or zero (template started too).");
    for (uint32_t i = 0; rc == 0 && i < m->cap; i++) {
        const fn_series *f = m->slots[i];
        for (int k = 0; f && rc == 0 && k < KINDS; k++) {
            prom_labels_init(&l);
            prom_label(&l, "function", f->name);
            prom_label(&l, "kind", kind_names[k]);
            rc = prom_sample_u64(out, "rouse_cold_starts_total", &l, f->cold_starts[k]);
        }
    }
    if (rc == 0)
        rc = prom_family(out, "rouse_cold_start_duration_seconds", "histogram",
                         "How long invocations waited for their instance to start.");
    for (uint32_t i = 0; rc == 0 && i < m->cap; i++) {
        const fn_series *f = m->slots[i];
        for (int k = 0; f && rc == 0 && k < KINDS; k++) {
            if (f->cold_duration[k].count == 0) continue;
            prom_labels_init(&l);
            prom_label(&l, "function", f->name);
            prom_label(&l, "kind", kind_names[k]);
            rc =
                prom_hist_write(out, "rouse_cold_start_duration_seconds", &l, &f->cold_duration[k]);
        }
    }
    if (rc == 0)
        rc = prom_family(out, "rouse_instances", "gauge",
                         "Instances by function and state (starting, idle, busy).");
    for (uint32_t i = 0; rc == 0 && i < m->cap; i++) {
        const fn_series *f = m->slots[i];
        if (!f) continue;
        const char *states[3] = {"starting", "idle", "busy"};
        int n[3] = {f->starting, f->idle, f->busy};
        for (int k = 0; rc == 0 && k < 3; k++) {
            prom_labels_init(&l);
            prom_label(&l, "function", f->name);
            prom_label(&l, "state", states[k]);
            rc = prom_sample_u64(out, "rouse_instances", &l, (uint64_t)n[k]);
        }
    }
    if (rc == 0)
        rc = prom_family(out, "rouse_queue_depth", "gauge", "Invocations waiting for an instance.");
    for (uint32_t i = 0; rc == 0 && i < m->cap; i++) {
        const fn_series *f = m->slots[i];
        if (!f) continue;
        prom_labels_init(&l);
        prom_label(&l, "function", f->name);
        rc = prom_sample_u64(out, "rouse_queue_depth", &l, (uint64_t)f->queued);
    }
    if (rc == 0)
        rc = prom_family(out, "rouse_rejected_total", "counter",
                         "Invocations turned away, by reason: queue_full (429), timeout (504: "
                         "the deadline passed while waiting), unavailable (503).");
    for (uint32_t i = 0; rc == 0 && i < m->cap; i++) {
        const fn_series *f = m->slots[i];
        const inv_error reasons[3] = {INV_ERR_QUEUE_FULL, INV_ERR_TIMEOUT, INV_ERR_UNAVAILABLE};
        for (int k = 0; f && rc == 0 && k < 3; k++) {
            prom_labels_init(&l);
            prom_label(&l, "function", f->name);
            prom_label(&l, "reason", inv_error_name(reasons[k]));
            rc = prom_sample_u64(out, "rouse_rejected_total", &l, f->rejected[reasons[k]]);
        }
    }
    if (rc == 0)
        rc = prom_family(out, "rouse_billed_milliseconds_total", "counter",
                         "Billed run time: each invocation's run rounded up to 1 ms.");
    for (uint32_t i = 0; rc == 0 && i < m->cap; i++) {
        const fn_series *f = m->slots[i];
        if (!f) continue;
        prom_labels_init(&l);
        prom_label(&l, "function", f->name);
        rc = prom_sample_u64(out, "rouse_billed_milliseconds_total", &l, f->billed_ms);
    }
    if (rc == 0)
        rc = prom_family(out, "rouse_instance_memory_bytes", "gauge",
                         "Memory of a function's instances: their proportional set size "
                         "(pages shared with the template divided among the sharers).");
    for (uint32_t i = 0; rc == 0 && i < m->cap; i++) {
        const fn_series *f = m->slots[i];
        if (!f) continue;
        prom_labels_init(&l);
        prom_label(&l, "function", f->name);
        rc = prom_sample_u64(out, "rouse_instance_memory_bytes", &l, f->memory);
    }
    if (rc == 0) rc = write_batching(x, out);
    if (rc == 0)
        rc = prom_family(out, "rouse_event_loop_lag_seconds", "gauge",
                         "The longest event-loop iteration since the previous scrape (nothing "
                         "else was served meanwhile).");
    if (rc == 0) rc = prom_sample(out, "rouse_event_loop_lag_seconds", NULL, x->loop_lag_max_s);
    if (rc == 0 && x->state_stale >= 0)
        rc = prom_family(out, "rouse_state_stale", "gauge",
                         "1 while PostgreSQL (--state) cannot be reached: functions are served "
                         "from the local replica of the registry, writes fail with 503.");
    if (rc == 0 && x->state_stale >= 0)
        rc = prom_sample_u64(out, "rouse_state_stale", NULL, (uint64_t)x->state_stale);
    if (rc == 0)
        rc = prom_family(out, "rouse_trace_spans_exported_total", "counter",
                         "Spans the OTLP exporter delivered to the collector.");
    if (rc == 0)
        rc = prom_sample_u64(out, "rouse_trace_spans_exported_total", NULL, x->spans_exported);
    if (rc == 0)
        rc = prom_family(out, "rouse_trace_spans_dropped_total", "counter",
                         "Spans dropped: the export queue was full, or the collector failed or "
                         "could not be reached.");
    if (rc == 0)
        rc = prom_sample_u64(out, "rouse_trace_spans_dropped_total", NULL, x->spans_dropped);
    if (rc == 0)
        rc = prom_family(out, "rouse_access_log_dropped_total", "counter",
                         "Access log lines dropped because the writer fell behind.");
    if (rc == 0)
        rc = prom_sample_u64(out, "rouse_access_log_dropped_total", NULL, x->log_lines_dropped);
    if (rc == 0)
        rc = prom_family(out, "rouse_instance_oom_total", "counter",
                         "Instances killed by their function's memory limit (memory_mb).");
    if (rc == 0)
        rc = prom_sample_u64(out, "rouse_instance_oom_total", NULL, x->instance_oom_kills);
    if (rc == 0) rc = metrics_write_process(out);
    return rc;
}
