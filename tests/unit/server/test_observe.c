/*
 * The observability parts without a daemon: W3C traceparent parsing and
 * sampling, the Prometheus exposition (labels, histograms, the registry fed
 * by invocations), the access log's lines, the OTLP JSON of a traced call,
 * and the single-producer queue they travel through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/arena.h"
#include "common/json.h"
#include "common/spsc.h"
#include "server/access_log.h"
#include "server/metrics.h"
#include "server/otlp.h"
#include "server/prom.h"
#include "server/trace.h"

static const char *TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

static void test_traceparent_valid(void **state)
{
    (void)state;
    char tid[33], pid[17];
    bool sampled = false;
    assert_true(trace_parse_traceparent(TP, tid, pid, &sampled));
    assert_string_equal(tid, "0af7651916cd43dd8448eb211c80319c");
    assert_string_equal(pid, "b7ad6b7169203331");
    assert_true(sampled);
    assert_true(trace_parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
                                        tid, pid, &sampled));
    assert_false(sampled);
    /* Other flag bits do not matter; only bit 0 samples. */
    assert_true(trace_parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03",
                                        tid, pid, &sampled));
    assert_true(sampled);
    /* A later version may carry more fields after a dash. */
    assert_true(trace_parse_traceparent(
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", tid, pid, &sampled));
}

static void test_traceparent_malformed(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "00",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0",   /* short */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-", /* 00 with more */
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  /* version ff */
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  /* upper case */
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  /* zero trace */
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  /* zero span */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x",  /* flags */
        "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  /* separator */
        "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",  /* not hex */
        "0x-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  /* version */
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x", /* later, no dash */
    };
    char tid[33], pid[17];
    bool sampled;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (trace_parse_traceparent(bad[i], tid, pid, &sampled)) fail_msg("accepted: %s", bad[i]);
    }
    assert_false(trace_parse_traceparent(NULL, tid, pid, &sampled));
}

static void test_trace_begin(void **state)
{
    (void)state;
    trace_rng rng;
    trace_rng_seed(&rng);
    trace_ctx t;
    trace_begin(&t, TP, "congo=t61rcWkgMzE", 0.0, &rng);
    assert_string_equal(t.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_string_equal(t.parent_id, "b7ad6b7169203331");
    assert_true(t.sampled); /* the caller's flag wins over the ratio */
    assert_string_equal(t.state, "congo=t61rcWkgMzE");
    assert_int_equal(strlen(t.span_id), 16);
    assert_string_not_equal(t.span_id, t.parent_id);
    char out[TRACEPARENT_LEN + 1];
    trace_format(&t, out);
    assert_int_equal(strlen(out), TRACEPARENT_LEN);
    assert_memory_equal(out, "00-0af7651916cd43dd8448eb211c80319c-", 36);

    /* Malformed: a new trace; its tracestate is dropped. */
    trace_begin(&t, "00-nothex", "a=b", 1.0, &rng);
    assert_string_not_equal(t.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_int_equal(strlen(t.trace_id), 32);
    assert_string_equal(t.parent_id, "");
    assert_string_equal(t.state, "");
    assert_true(t.sampled);
    trace_begin(&t, NULL, NULL, 0.0, &rng);
    assert_false(t.sampled);

    /* A ratio samples about that share of new traces. */
    int n = 0;
    for (int i = 0; i < 10000; i++) {
        trace_begin(&t, NULL, NULL, 0.25, &rng);
        n += t.sampled;
    }
    assert_in_range(n, 2200, 2800);

    /* A tracestate over the limit is dropped, the trace kept. */
    char big[TRACE_STATE_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    trace_begin(&t, TP, big, 1.0, &rng);
    assert_string_equal(t.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_string_equal(t.state, "");
}

static void test_prom_labels_and_hist(void **state)
{
    (void)state;
    rouse_buf b;
    rouse_buf_init(&b);
    prom_labels l;
    prom_labels_init(&l);
    prom_label(&l, "function", "a\"b\\c\nd");
    prom_label_int(&l, "version", 7);
    assert_int_equal(prom_sample_u64(&b, "x_total", &l, 3), 0);
    assert_string_equal(b.data, "x_total{function=\"a\\\"b\\\\c\\nd\",version=\"7\"} 3\n");
    rouse_buf_clear(&b);

    prom_hist h;
    memset(&h, 0, sizeof(h));
    prom_hist_observe(&h, 100);      /* le 0.0001: on the bound */
    prom_hist_observe(&h, 101);      /* le 0.00025 */
    prom_hist_observe(&h, 2000000);  /* le 2.5 */
    prom_hist_observe(&h, 99000000); /* +Inf */
    assert_int_equal(prom_hist_write(&b, "d_seconds", NULL, &h), 0);
    assert_non_null(strstr(b.data, "d_seconds_bucket{le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(b.data, "d_seconds_bucket{le=\"0.00025\"} 2\n"));
    assert_non_null(strstr(b.data, "d_seconds_bucket{le=\"1\"} 2\n"));
    assert_non_null(strstr(b.data, "d_seconds_bucket{le=\"2.5\"} 3\n"));
    assert_non_null(strstr(b.data, "d_seconds_bucket{le=\"60\"} 3\n"));
    assert_non_null(strstr(b.data, "d_seconds_bucket{le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(b.data, "d_seconds_sum 101.000201\n"));
    assert_non_null(strstr(b.data, "d_seconds_count 4\n"));
    rouse_buf_fini(&b);
}

static invocation call(const char *fn, int64_t version, int status, inv_start start)
{
    invocation inv;
    memset(&inv, 0, sizeof(inv));
    snprintf(inv.request_id, sizeof(inv.request_id), "00000000000000a1");
    snprintf(inv.function, sizeof(inv.function), "%s", fn);
    snprintf(inv.trace_id, sizeof(inv.trace_id), "0af7651916cd43dd8448eb211c80319c");
    inv.version = version;
    inv.status = status;
    inv.error = inv_error_of(status);
    inv.start = start;
    inv.queue_us = 10;
    inv.start_us = start == INV_START_ZERO ? 150000 : 0;
    inv.run_us = start != INV_START_NONE ? 1500 : 0;
    inv.total_us = inv.queue_us + inv.start_us + inv.run_us + 40;
    inv.billed_ms = inv_billed_ms(inv.run_us);
    inv.bytes_in = 407;
    inv.bytes_out = 441;
    inv.ts_us = 1796598589123456;
    return inv;
}

static void test_metrics_registry(void **state)
{
    (void)state;
    metrics *m = metrics_create();
    assert_non_null(m);
    invocation a = call("digits", 1, 200, INV_START_ZERO);
    metrics_on_invocation(m, &a);
    a = call("digits", 1, 200, INV_START_WARM);
    for (int i = 0; i < 5; i++)
        metrics_on_invocation(m, &a);
    a = call("digits", 2, 429, INV_START_NONE);
    metrics_on_invocation(m, &a);
    a = call("nope", 0, 404, INV_START_NONE); /* no such function: no series */
    metrics_on_invocation(m, &a);
    /* Many functions: the table grows and keeps every series. */
    char name[16];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        a = call(name, 1, 200, INV_START_WARM);
        metrics_on_invocation(m, &a);
    }
    metrics_extra x = {.loop_lag_max_s = 0.0015};
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(metrics_write(m, &x, &b), 0);
    const char *want[] = {
        "rouse_invocations_total{function=\"digits\",version=\"1\",status=\"200\"} 6\n",
        "rouse_invocations_total{function=\"digits\",version=\"2\",status=\"429\"} 1\n",
        "rouse_invocations_total{function=\"f99\",version=\"1\",status=\"200\"} 1\n",
        "rouse_request_duration_seconds_count{function=\"digits\"} 7\n",
        "rouse_cold_starts_total{function=\"digits\",kind=\"zero\"} 1\n",
        "rouse_cold_starts_total{function=\"digits\",kind=\"template\"} 0\n",
        "rouse_cold_start_duration_seconds_bucket{function=\"digits\",kind=\"zero\",le=\"0.25\"} "
        "1\n",
        "rouse_queue_wait_seconds_count 106\n",
        "rouse_rejected_total{function=\"digits\",reason=\"queue_full\"} 1\n",
        "rouse_billed_milliseconds_total{function=\"digits\"} 12\n",
        "rouse_event_loop_lag_seconds 0.0015\n",
        "# TYPE rouse_instances gauge\n",
        "# TYPE process_cpu_seconds_total counter\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(b.data, want[i])) fail_msg("missing: %s", want[i]);
    assert_null(strstr(b.data, "nope"));
    rouse_buf_fini(&b);
    metrics_destroy(m);
}

static void test_access_log_lines(void **state)
{
    (void)state;
    access_rec r;
    memset(&r, 0, sizeof(r));
    r.inv = call("digits", 3, 200, INV_START_ZERO);
    r.is_invocation = true;
    snprintf(r.method, sizeof(r.method), "POST");
    snprintf(r.path, sizeof(r.path), "/v2/models/digits/infer");
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(access_log_format_line(ACCESS_LOG_TEXT, &r, &b), 0);
    assert_string_equal(b.data, "2026-12-06T23:09:49.123456Z 00000000000000a1 "
                                "0af7651916cd43dd8448eb211c80319c POST /v2/models/digits/infer 200 "
                                "digits v3 zero queue_us=10 start_us=150000 run_us=1500 "
                                "total_us=151550 in=407 out=441\n");
    rouse_buf_clear(&b);
    assert_int_equal(access_log_format_line(ACCESS_LOG_JSON, &r, &b), 0);
    rouse_arena a;
    rouse_arena_init(&a, 4096);
    json_value *v;
    rouse_errbuf eb;
    assert_int_equal(json_parse(b.data, b.len, &a, &v, &eb), 0);
    assert_string_equal(json_as_string(json_get(v, "ts")), "2026-12-06T23:09:49.123456Z");
    assert_string_equal(json_as_string(json_get(v, "trace_id")),
                        "0af7651916cd43dd8448eb211c80319c");
    assert_string_equal(json_as_string(json_get(v, "start")), "zero");
    int64_t n;
    assert_true(json_as_int64(json_get(v, "start_us"), &n));
    assert_int_equal(n, 150000);
    assert_true(json_as_int64(json_get(v, "status"), &n));
    assert_int_equal(n, 200);
    assert_string_equal(json_as_string(json_get(v, "path")), "/v2/models/digits/infer");

    /* Another request: method, path, status, durations and bytes only; a
     * path is escaped. */
    memset(&r, 0, sizeof(r));
    snprintf(r.inv.request_id, sizeof(r.inv.request_id), "00000000000000a2");
    r.inv.status = 404;
    r.inv.total_us = 35;
    r.inv.ts_us = 1796598589123456;
    snprintf(r.method, sizeof(r.method), "GET");
    snprintf(r.path, sizeof(r.path), "/v1/functions/\"x\" 1\n%%");
    rouse_buf_clear(&b);
    assert_int_equal(access_log_format_line(ACCESS_LOG_TEXT, &r, &b), 0);
    assert_string_equal(b.data, "2026-12-06T23:09:49.123456Z 00000000000000a2 - GET "
                                "/v1/functions/\"x\"%201%0A%25 404 total_us=35 in=0 out=0\n");
    rouse_buf_clear(&b);
    assert_int_equal(access_log_format_line(ACCESS_LOG_JSON, &r, &b), 0);
    assert_string_equal(b.data, "{\"ts\":\"2026-12-06T23:09:49.123456Z\",\"request_id\":"
                                "\"00000000000000a2\",\"trace_id\":\"\",\"method\":\"GET\","
                                "\"path\":\"/v1/functions/\\\"x\\\" 1\\n%\",\"status\":404,"
                                "\"total_us\":35,\"bytes_in\":0,\"bytes_out\":0}\n");
    rouse_arena_fini(&a);
    rouse_buf_fini(&b);
}

/* The spans of one call from zero: ids, parents, and times inside their
 * parents. */
static void test_otlp_encode(void **state)
{
    (void)state;
    otlp_record r;
    memset(&r, 0, sizeof(r));
    trace_rng rng;
    trace_rng_seed(&rng);
    trace_begin(&r.ctx, TP, "k=v", 1.0, &rng);
    r.inv = call("digits", 1, 200, INV_START_ZERO);
    r.submitted = true;
    r.enq_us = 20;
    r.have_phases = r.from_zero = true;
    r.template_us = 100000;
    r.plan_open_us = 30000;
    r.prepare_us = 60000;
    r.spawn_us = 40000;
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(otlp_encode(&r, 1, &b), 0);
    rouse_arena a;
    rouse_arena_init(&a, 4096);
    json_value *v;
    rouse_errbuf eb;
    assert_int_equal(json_parse(b.data, b.len, &a, &v, &eb), 0);
    const json_value *spans =
        json_get(json_get(v, "resourceSpans")->u.arr.items[0], "scopeSpans")->u.arr.items[0];
    spans = json_get(spans, "spans");
    assert_int_equal(spans->u.arr.n, (size_t)otlp_span_count(&r));
    assert_int_equal(spans->u.arr.n, 8);
    struct {
        const char *name, *id, *parent;
        int64_t start, end;
    } s[8];
    for (size_t i = 0; i < 8; i++) {
        const json_value *x = spans->u.arr.items[i];
        s[i].name = json_as_string(json_get(x, "name"));
        s[i].id = json_as_string(json_get(x, "spanId"));
        s[i].parent = json_as_string(json_get(x, "parentSpanId"));
        assert_string_equal(json_as_string(json_get(x, "traceId")),
                            "0af7651916cd43dd8448eb211c80319c");
        sscanf(json_as_string(json_get(x, "startTimeUnixNano")), "%" SCNd64, &s[i].start);
        sscanf(json_as_string(json_get(x, "endTimeUnixNano")), "%" SCNd64, &s[i].end);
    }
    assert_string_equal(s[0].name, "request");
    assert_string_equal(s[0].parent, "b7ad6b7169203331");
    assert_string_equal(s[0].id, r.ctx.span_id);
    assert_int_equal(s[0].start, r.inv.ts_us * 1000);
    assert_int_equal(s[0].end - s[0].start, (int64_t)r.inv.total_us * 1000);
    assert_string_equal(json_as_string(json_get(spans->u.arr.items[0], "traceState")), "k=v");
    for (size_t i = 1; i < 8; i++) {
        size_t p = 0;
        while (p < 8 && strcmp(s[p].id, s[i].parent) != 0)
            p++;
        if (p == 8) fail_msg("%s has no parent", s[i].name);
        if (s[i].start < s[p].start || s[i].end > s[p].end)
            fail_msg("%s is not inside %s", s[i].name, s[p].name);
    }
    assert_string_equal(s[7].name, "inference");
    assert_int_equal(s[7].end - s[7].start, 1500 * 1000);
    rouse_arena_fini(&a);
    rouse_buf_fini(&b);

    /* A call that never reached the pool: its request span alone. */
    r.submitted = false;
    assert_int_equal(otlp_span_count(&r), 1);
}

static void test_spsc(void **state)
{
    (void)state;
    spsc q;
    assert_int_equal(spsc_init(&q, sizeof(int), 4), 0);
    assert_null(spsc_peek(&q));
    for (int i = 0; i < 4; i++) {
        int *slot = spsc_claim(&q);
        assert_non_null(slot);
        *slot = i;
        spsc_publish(&q);
    }
    assert_null(spsc_claim(&q)); /* full */
    assert_int_equal(spsc_used(&q), 4);
    for (int i = 0; i < 6; i++) {
        int *slot = spsc_peek(&q);
        assert_non_null(slot);
        assert_int_equal(*slot, i);
        spsc_release(&q);
        slot = spsc_claim(&q); /* wraps around */
        assert_non_null(slot);
        *slot = i + 4;
        spsc_publish(&q);
    }
    spsc_fini(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent_valid), cmocka_unit_test(test_traceparent_malformed),
        cmocka_unit_test(test_trace_begin),       cmocka_unit_test(test_prom_labels_and_hist),
        cmocka_unit_test(test_metrics_registry),  cmocka_unit_test(test_access_log_lines),
        cmocka_unit_test(test_otlp_encode),       cmocka_unit_test(test_spsc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
