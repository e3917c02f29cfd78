/*
 * Integration tests of dynamic batching (docs/architecture.md, "Dynamic
 * batching") on the real daemon, run as the test binary rouse-fault, whose
 * instances record every request they run (tests/support/fault_hook.c):
 * - split outputs: concurrent requests to a batching digits function (one
 *   instance, each run slowed a little so that requests queue) of 1, 2 and
 *   3 rows each, and to a softmax model with two sequence lengths, answer
 *   exactly what an unbatched function answers for the same body; batches
 *   formed (a Server-Timing batch;desc above 1) and runs of the softmax
 *   model never mixed lengths (each answer is right);
 * - a lone request on an idle function runs at once as a batch of 1, even
 *   with max_delay_us a second; requests that queued behind a busy
 *   instance go together as soon as it is free (a partial batch, batch 2
 *   of a limit 8), not after max_delay;
 * - with two instances, requests that came together while one instance is
 *   busy go to the free one once their arrivals pause, not after
 *   max_delay (the status's count of calls sent by each rule says which
 *   sent them);
 * - with two instances, eight requests at once run in batches of at most
 *   four (each instance's share), not seven on one, when a row costs more
 *   than max_delay;
 * - fixed mode sends calls one at a time once its batches showed no lower
 *   CPU time per call than a lone call's (requests that spend 20 ms of CPU
 *   each, batched or not);
 * - auto mode counts the runs of requests sent alone: over the SLO they
 *   halve its limit to 1, within it they grow it back;
 * - config errors and a model that cannot batch: 400 naming the field or
 *   the node that pins the batch;
 * - status and metrics show the limit (auto mode) and the memory of the
 *   largest batch;
 * - an instance crash during a batch fails every request of it with 500
 *   naming the batch, none is run again, and the next request is served.
 *
 * Environment: ROUSE (the rouse-fault binary), DIGITS (examples/digits).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/tensor_file.h"
#include "fn_deploy.h"
#include "onnx_builder.h"
#include "rouse/engine.h"
#include "serve_proc.h"
#include "server/batch_policy.h"
#include "tmp_dir.h"

static const char *g_rouse, *g_digits;
static char g_dir[256], g_data[300], g_fault[300];
static serve_proc g_srv;
static bool g_up;
static char *g_samples[10];
static uint8_t *g_digits_model;
static size_t g_digits_len;

static void serve_down(void)
{
    if (g_up) serve_proc_kill9(&g_srv);
    g_up = false;
}

/* Starts serve with the fault hook's environment: each run delayed by
 * delay_us. */
static void serve_up(const char *delay_us)
{
    /* A test that failed left its serve up: left running, it would hold
     * the test's output open and ctest would wait for it until its
     * timeout. */
    serve_down();
    setenv("ROUSE_FAULT_DIR", g_fault, 1);
    setenv("ROUSE_FAULT_CRASH_FIRST", "1", 1);
    setenv("ROUSE_FAULT_DELAY_US", delay_us, 1);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && rm -f '%s/executions'", g_data, g_fault);
    assert_int_equal(system(cmd), 0);
    static const char *const args[] = {"--log-level", "warn", "--max-instances", "4", NULL};
    assert_int_equal(serve_proc_start(&g_srv, g_rouse, g_data, args), 0);
    g_up = true;
}

static int request(const char *method, const char *path, const char *body, http_response *r)
{
    return test_request(&g_srv.target, method, path, body, body ? strlen(body) : 0, r);
}

static void deploy_digits(const char *name, const char *extra)
{
    http_response r;
    int st = test_deploy_model(&g_srv.target, name, g_digits_model, g_digits_len, extra, NULL, &r);
    if (st != 201) fprintf(stderr, "deploy %s: %d %s\n", name, st, r.body.data);
    assert_int_equal(st, 201);
    http_response_fini(&r);
}

/* X [batch, seq] -> Softmax over seq -> Y: rows independent, any length. */
static void softmax_model(rouse_buf *out)
{
    ob_model *m = ob_model_new(13);
    const int64_t dims[2] = {-1, -1};
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, dims);
    ob_output(m, "y", ROUSE_DT_FLOAT, 2, dims);
    const char *in[1] = {"x"}, *o[1] = {"y"};
    ob_node *n = ob_add_node(m, "Softmax", "softmax", 1, in, 1, o);
    ob_attr_int(n, "axis", -1);
    rouse_buf_init(out);
    ob_serialize(m, out);
    ob_model_free(m);
}

/* X [1, 4] -> Reshape to [1, -1] -> Y: the Reshape pins the batch at 1. */
static void pinned_model(rouse_buf *out)
{
    ob_model *m = ob_model_new(13);
    const int64_t dims[2] = {1, 4}, sd[1] = {2}, shape[2] = {1, -1};
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, dims);
    ob_output(m, "y", ROUSE_DT_FLOAT, 2, dims);
    ob_initializer(m, "shape", ROUSE_DT_INT64, 1, sd, shape, sizeof(shape));
    const char *in[2] = {"x", "shape"}, *o[1] = {"y"};
    ob_add_node(m, "Reshape", "flatten_all", 2, in, 1, o);
    rouse_buf_init(out);
    ob_serialize(m, out);
    ob_model_free(m);
}

/* A digits request of `rows` rows: samples first, first+1, ..., its id `id`. */
static char *digits_body(int first, int rows, const char *id)
{
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_appendf(&b, "{\"id\":\"%s\",\"inputs\":[{\"name\":\"pixels\",\"shape\":[%d,64],"
                          "\"datatype\":\"FP32\",\"data\":[",
                      id, rows);
    for (int r = 0; r < rows; r++) {
        /* The sample's data array, between "data":[ and ]. */
        const char *s = strstr(g_samples[(first + r) % 10], "\"data\":[") + 8;
        const char *e = strchr(s, ']');
        rouse_buf_appendf(&b, "%s%.*s", r ? "," : "", (int)(e - s), s);
    }
    rouse_buf_append_str(&b, "]}]}");
    return rouse_buf_detach(&b, NULL);
}

static char *softmax_body(int seq, int salt, const char *id)
{
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_appendf(&b, "{\"id\":\"%s\",\"inputs\":[{\"name\":\"x\",\"shape\":[1,%d],"
                          "\"datatype\":\"FP32\",\"data\":[",
                      id, seq);
    for (int i = 0; i < seq; i++)
        rouse_buf_appendf(&b, "%s%d.25", i ? "," : "", (i * 7 + salt) % 11 - 5);
    rouse_buf_append_str(&b, "]}]}");
    return rouse_buf_detach(&b, NULL);
}

/* The "outputs" part of a response (what must not depend on batching). */
static const char *outputs_of(const http_response *r)
{
    const char *o = r->body.data ? strstr(r->body.data, "\"outputs\":") : NULL;
    return o ? o : "(none)";
}

/* The batch;desc=N of a Server-Timing, or -1. */
static int batch_of(const http_response *r)
{
    const char *b = strstr(r->server_timing, "batch;desc=");
    return b ? atoi(b + 11) : -1;
}

/* The queue;dur=X of a Server-Timing in ms, or -1. */
static double queue_ms_of(const http_response *r)
{
    const char *q = strstr(r->server_timing, "queue;dur=");
    return q ? atof(q + 10) : -1;
}

typedef struct call_arg {
    pthread_t th;
    const char *path;
    char *body;
    int status, batch;
    double queue_ms;
    char *answer; /* the response body */
} call_arg;

static void *call_main(void *p)
{
    call_arg *a = p;
    http_response r;
    a->status = request("POST", a->path, a->body, &r);
    a->batch = batch_of(&r);
    a->queue_ms = queue_ms_of(&r);
    a->answer = strdup(r.body.data ? r.body.data : "");
    http_response_fini(&r);
    return NULL;
}

static void calls_run(call_arg *a, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&a[i].th, NULL, call_main, &a[i]), 0);
    for (int i = 0; i < n; i++)
        pthread_join(a[i].th, NULL);
}

static void calls_free(call_arg *a, int n)
{
    for (int i = 0; i < n; i++) {
        free(a[i].body);
        free(a[i].answer);
    }
}

/* The unbatched answer's outputs for body on function path. */
static char *reference(const char *path, const char *body)
{
    http_response r;
    assert_int_equal(request("POST", path, body, &r), 200);
    char *o = strdup(outputs_of(&r));
    http_response_fini(&r);
    return o;
}

/* --- tests ------------------------------------------------------------------------ */

static void test_split_outputs(void **state)
{
    (void)state;
    serve_up("2000");
    deploy_digits("plain", "\"scaling\":{\"max\":1}");
    deploy_digits("batched", "\"scaling\":{\"max\":1,\"queue_depth\":256},"
                             "\"batching\":{\"max_batch\":8,\"max_delay_us\":3000}");
    rouse_buf sm;
    softmax_model(&sm);
    http_response r;
    assert_int_equal(test_deploy_model(&g_srv.target, "softmax", sm.data, sm.len,
                                       "\"scaling\":{\"max\":1,\"queue_depth\":256},"
                                       "\"batching\":{\"max_batch\":4,\"max_delay_us\":3000}",
                                       NULL, &r),
                     201);
    http_response_fini(&r);
    assert_int_equal(test_deploy_model(&g_srv.target, "softmax-plain", sm.data, sm.len, "", NULL,
                                       &r),
                     201);
    http_response_fini(&r);
    rouse_buf_fini(&sm);

    enum { N = 48 };
    call_arg a[N];
    char *ref[N];
    memset(a, 0, sizeof(a));
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof(id), "req-%d", i);
        if (i % 3 == 2) { /* softmax rows of two lengths */
            a[i].path = "/v2/models/softmax/infer";
            a[i].body = softmax_body(i % 2 ? 5 : 3, i, id);
            ref[i] = reference("/v2/models/softmax-plain/infer", a[i].body);
        } else { /* digits requests of 1, 2 or 3 rows */
            a[i].path = "/v2/models/batched/infer";
            a[i].body = digits_body(i, 1 + i % 3 + (i % 4 == 0), id);
            ref[i] = reference("/v2/models/plain/infer", a[i].body);
        }
    }
    calls_run(a, N);
    int largest = 0, largest_softmax = 0;
    for (int i = 0; i < N; i++) {
        const char *o = strstr(a[i].answer, "\"outputs\":");
        if (a[i].status != 200 || !o || strcmp(o, ref[i]) != 0)
            fprintf(stderr, "request %d: %d %s\nwant %s\n", i, a[i].status, a[i].answer, ref[i]);
        assert_int_equal(a[i].status, 200);
        assert_non_null(o);
        assert_string_equal(o, ref[i]);
        assert_true(a[i].batch >= 1);
        if (i % 3 == 2 && a[i].batch > largest_softmax) largest_softmax = a[i].batch;
        if (i % 3 != 2 && a[i].batch > largest) largest = a[i].batch;
        free(ref[i]);
    }
    printf("largest batch: digits %d, softmax %d\n", largest, largest_softmax);
    /* One instance each, every run slowed: requests queued and batched. */
    assert_true(largest > 1);
    calls_free(a, N);

    /* Status: the batching entry with the memory of the largest batch. */
    assert_int_equal(request("GET", "/v1/functions/batched", NULL, &r), 200);
    const char *b = strstr(r.body.data, "\"batching\":[{");
    assert_non_null(b);
    assert_non_null(strstr(b, "\"mode\":\"fixed\",\"limit\":8"));
    const char *mem = strstr(b, "\"memory_bytes\":");
    assert_non_null(mem);
    assert_true(atoll(mem + 15) > 0);
    http_response_fini(&r);
    serve_down();
}

static void test_lone_and_partial(void **state)
{
    (void)state;
    serve_up("300000"); /* each run takes 0.3 s in the instance */
    deploy_digits("slow", "\"scaling\":{\"max\":1},"
                          "\"batching\":{\"max_batch\":8,\"max_delay_us\":1000000}");
    /* Idle: a lone request is not held for company (max_delay 1 s). */
    http_response r;
    char *body = digits_body(0, 1, "lone");
    assert_int_equal(request("POST", "/v2/models/slow/infer", body, &r), 200);
    printf("lone request: %s\n", r.server_timing);
    assert_int_equal(batch_of(&r), 1);
    http_response_fini(&r);
    free(body);

    /* A runs alone; B and C queue behind it and go together as soon as the
     * instance is free: a batch of 2, though the limit is 8. */
    call_arg first = {.path = "/v2/models/slow/infer", .body = digits_body(1, 1, "first")};
    assert_int_equal(pthread_create(&first.th, NULL, call_main, &first), 0);
    int tries = 0;
    for (;;) { /* until A is in the instance */
        assert_int_equal(request("GET", "/v1/functions/slow", NULL, &r), 200);
        bool busy = strstr(r.body.data, "\"in_flight\":1") != NULL;
        http_response_fini(&r);
        if (busy) break;
        assert_true(tries++ < 4000);
        usleep(5000);
    }
    call_arg next[2] = {{.path = "/v2/models/slow/infer", .body = digits_body(2, 1, "next-0")},
                        {.path = "/v2/models/slow/infer", .body = digits_body(3, 1, "next-1")}};
    calls_run(next, 2);
    pthread_join(first.th, NULL);
    printf("first: batch %d; next two: batch %d and %d\n", first.batch, next[0].batch,
           next[1].batch);
    assert_int_equal(first.status, 200);
    assert_int_equal(first.batch, 1);
    /* Both queued while A ran (0.3 s), unless the machine held one back
     * longer than that: then each went alone. Never a batch above 2. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(next[i].status, 200);
        assert_true(next[i].batch == 2 || next[i].batch == 1);
    }
    assert_int_equal(next[0].batch, next[1].batch);
    calls_free(&first, 1);
    calls_free(next, 2);
    /* Metering bills each request of a batch its own decoding (the 0.3 s
     * delay) and a share of the batch's run, not the whole batch: the four
     * requests bill 4 x 0.3 s and four shares of a digits run (well under
     * 0.3 s together), where billing each its batch's whole time would be
     * at least 0.3 + 0.3 + 2 x 0.6 s. */
    int64_t run_us = -1;
    for (int i = 0; i < 500 && run_us < 0; i++) {
        assert_int_equal(request("GET", "/v1/usage?function=slow", NULL, &r), 200);
        if (strstr(r.body.data, "\"invocations\":4,")) {
            const char *p = strstr(r.body.data, "\"run_us\":");
            assert_non_null(p);
            run_us = strtoll(p + strlen("\"run_us\":"), NULL, 10);
        }
        http_response_fini(&r);
        if (run_us < 0) usleep(20000);
    }
    printf("billed run of the four requests: %lld us\n", (long long)run_us);
    assert_true(run_us >= 4 * 300000);
    assert_true(run_us < 5 * 300000);
    serve_down();
}

/* Waits until function `name` has `n` instances, none of them busy. */
static void wait_idle_instances(const char *name, int n)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    for (int tries = 0;; tries++) {
        http_response r;
        assert_int_equal(request("GET", path, NULL, &r), 200);
        int idle = 0;
        for (const char *p = r.body.data; (p = strstr(p, "\"state\":\"idle\"")); p++)
            idle++;
        http_response_fini(&r);
        if (idle >= n) return;
        assert_true(tries < 4000);
        usleep(5000);
    }
}

/* How many calls of function `name` the queue sent by rule `why`
 * ("sent_by" in its batching status), or -1. */
static int sent_by(const char *name, const char *why)
{
    char path[128], key[64];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    snprintf(key, sizeof(key), "\"%s\":", why);
    http_response r;
    assert_int_equal(request("GET", path, NULL, &r), 200);
    const char *s = strstr(r.body.data, "\"sent_by\":{");
    const char *k = s ? strstr(s, key) : NULL;
    int n = k ? atoi(k + strlen(key)) : -1;
    http_response_fini(&r);
    return n;
}

/* Two instances; A runs on one (longer than max_delay), then two requests
 * come together: the other instance is free, and once their arrivals pause
 * it takes them as one batch, though the version is busy: sent by the
 * pause rule (the status counts the calls each rule sent), not held until
 * max_delay (1 s) or until no company could come in time. The rule is
 * asserted, not the time it took, so a slow machine does not fail it: the
 * pause (at least 100 us after the second, four times their gap) comes
 * long before max_delay unless serve sees the two calls of one moment
 * 200 ms apart. */
static void test_free_instance_not_held(void **state)
{
    (void)state;
    serve_up("300000"); /* each run takes 0.3 s in the instance */
    deploy_digits("pair", "\"scaling\":{\"min\":2,\"max\":2},"
                          "\"batching\":{\"max_batch\":8,\"max_delay_us\":1000000}");
    wait_idle_instances("pair", 2);
    /* A runs 1.5 s longer than the others: longer than max_delay. */
    call_arg first = {.path = "/v2/models/pair/infer",
                      .body = digits_body(1, 1, "sleep-1500-first")};
    assert_int_equal(pthread_create(&first.th, NULL, call_main, &first), 0);
    for (int tries = 0;; tries++) { /* until A is in an instance */
        http_response r;
        assert_int_equal(request("GET", "/v1/functions/pair", NULL, &r), 200);
        bool busy = strstr(r.body.data, "\"in_flight\":1") != NULL;
        http_response_fini(&r);
        if (busy) break;
        assert_true(tries < 4000);
        usleep(5000);
    }
    /* A went at once, two instances free. */
    assert_int_equal(sent_by("pair", "free"), 1);
    call_arg next[2] = {{.path = "/v2/models/pair/infer", .body = digits_body(2, 1, "next-0")},
                        {.path = "/v2/models/pair/infer", .body = digits_body(3, 1, "next-1")}};
    calls_run(next, 2);
    pthread_join(first.th, NULL);
    printf("first: batch %d; next two: batch %d and %d, queued %.3f and %.3f ms\n", first.batch,
           next[0].batch, next[1].batch, next[0].queue_ms, next[1].queue_ms);
    printf("sent by: pause %d, sparse %d, delay %d\n", sent_by("pair", "pause"),
           sent_by("pair", "sparse"), sent_by("pair", "delay"));
    assert_int_equal(first.status, 200);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(next[i].status, 200);
        assert_int_equal(next[i].batch, 2);
    }
    /* Both by the pause; none waited until max_delay or for the gap. */
    assert_int_equal(sent_by("pair", "pause"), 2);
    assert_int_equal(sent_by("pair", "delay"), 0);
    assert_int_equal(sent_by("pair", "sparse"), 0);
    calls_free(&first, 1);
    calls_free(next, 2);
    serve_down();
}

/* Two instances, eight requests at once after one that gave the version
 * an average reply time and a run time: no batch takes more than its
 * share, half of the calls (the one busy instance is due back before a
 * batch sent now would end, and a row costs 0.2 s, more than max_delay's
 * 0.1 s), where the first free instance used to take all seven that
 * waited while the other served one; and the calls a batch left go as
 * soon as an instance is free. */
static void test_shares(void **state)
{
    (void)state;
    serve_up("200000"); /* each request takes 0.2 s in the instance */
    deploy_digits("share", "\"scaling\":{\"min\":2,\"max\":2},"
                           "\"batching\":{\"max_batch\":8,\"max_delay_us\":100000}");
    wait_idle_instances("share", 2);
    http_response r;
    char *body = digits_body(0, 1, "warm");
    assert_int_equal(request("POST", "/v2/models/share/infer", body, &r), 200);
    http_response_fini(&r);
    free(body);
    enum { N = 8 };
    call_arg a[N];
    memset(a, 0, sizeof(a));
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof(id), "share-%d", i);
        a[i].path = "/v2/models/share/infer";
        a[i].body = digits_body(i, 1, id);
    }
    calls_run(a, N);
    printf("batches:");
    for (int i = 0; i < N; i++)
        printf(" %d", a[i].batch);
    printf("\n");
    for (int i = 0; i < N; i++) {
        assert_int_equal(a[i].status, 200);
        assert_true(a[i].batch >= 1 && a[i].batch <= N / 2);
    }
    calls_free(a, N);
    serve_down();
}

/* Fixed mode falls back to lone calls when its batches run their calls
 * no cheaper: every request of function "flat" spends 20 ms of CPU in its
 * instance (the fault hook's spin-20-), batched or not, more than
 * max_delay's 1 ms. One request alone first, the fresh instance's first
 * call: its run pays the instance's one-time costs, which must not count
 * as a lone call's (they did, and lone calls looked dearer than batches
 * for dozens of calls). Then bursts of four on the instance: the first
 * goes alone (idle), the rest as a batch, until the CPU times per call of
 * both are known; from then on the queue sends each call alone (sent by
 * "lone"), and every response of a burst says batch 1. Asserted on the
 * status's counts and the responses, never on a time. */
static void test_lone_fallback(void **state)
{
    (void)state;
    serve_up("0");
    deploy_digits("flat", "\"scaling\":{\"max\":1},"
                          "\"batching\":{\"max_batch\":8,\"max_delay_us\":1000}");
    char *body = digits_body(0, 1, "spin-20-first");
    http_response r;
    assert_int_equal(request("POST", "/v2/models/flat/infer", body, &r), 200);
    assert_int_equal(batch_of(&r), 1);
    http_response_fini(&r);
    free(body);
    enum { N = 4, BURSTS = 30 };
    int burst = 0, batched = 0;
    for (; burst < BURSTS && sent_by("flat", "lone") <= 0; burst++) {
        call_arg a[N];
        memset(a, 0, sizeof(a));
        for (int i = 0; i < N; i++) {
            char id[48];
            snprintf(id, sizeof(id), "spin-20-%d-%d", burst, i);
            a[i].path = "/v2/models/flat/infer";
            a[i].body = digits_body(i, 1, id);
        }
        calls_run(a, N);
        for (int i = 0; i < N; i++) {
            assert_int_equal(a[i].status, 200);
            if (a[i].batch > 1) batched++;
        }
        calls_free(a, N);
    }
    printf("lone after %d bursts (%d calls batched before): %d calls\n", burst, batched,
           sent_by("flat", "lone"));
    if (sent_by("flat", "lone") <= 0) {
        assert_int_equal(request("GET", "/v1/functions/flat", NULL, &r), 200);
        const char *b = strstr(r.body.data, "\"batching\":[");
        char status[512];
        snprintf(status, sizeof(status), "%s", b ? b : r.body.data);
        http_response_fini(&r);
        fail_msg("no call sent alone after %d bursts of %d (%d calls batched); status: %s", BURSTS,
                 N, batched, status);
    }
    /* Batches formed before (what measured them) ... */
    assert_true(batched > 0);
    /* ... and none now: a burst runs one call at a time. */
    int lone0 = sent_by("flat", "lone");
    call_arg a[N];
    memset(a, 0, sizeof(a));
    for (int i = 0; i < N; i++) {
        char id[48];
        snprintf(id, sizeof(id), "spin-20-last-%d", i);
        a[i].path = "/v2/models/flat/infer";
        a[i].body = digits_body(i, 1, id);
    }
    calls_run(a, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(a[i].status, 200);
        assert_int_equal(a[i].batch, 1);
    }
    calls_free(a, N);
    assert_true(sent_by("flat", "lone") > lone0);
    serve_down();
}

/* Auto mode's limit in the status of function `name`, or -1. */
static int auto_limit(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    http_response r;
    assert_int_equal(request("GET", path, NULL, &r), 200);
    const char *l = strstr(r.body.data, "\"mode\":\"auto\",\"limit\":");
    int limit = l ? atoi(l + strlen("\"mode\":\"auto\",\"limit\":")) : -1;
    http_response_fini(&r);
    return limit;
}

/* Sends `n` requests one after another, each alone on the idle function,
 * ids prefix-0, prefix-1, ... */
static void send_alone(const char *path, const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        char *body = digits_body(i, 1, id);
        http_response r;
        assert_int_equal(request("POST", path, body, &r), 200);
        assert_int_equal(batch_of(&r), 1);
        http_response_fini(&r);
        free(body);
    }
}

/* Auto mode counts the runs of requests that went alone: runs over the
 * SLO (600 ms against 400) halve the limit from 2 to 1, and at 1, where
 * every request goes alone, runs within it grow the limit again (a window
 * of BATCH_AIMD_WINDOW runs each). */
static void test_auto_alone(void **state)
{
    (void)state;
    serve_up("0");
    deploy_digits("aimd", "\"scaling\":{\"max\":1},"
                          "\"batching\":{\"mode\":\"auto\",\"max_batch\":8,\"slo_ms\":400}");
    send_alone("/v2/models/aimd/infer", "sleep-600-slow", BATCH_AIMD_WINDOW);
    assert_int_equal(auto_limit("aimd"), 1);
    send_alone("/v2/models/aimd/infer", "fast", BATCH_AIMD_WINDOW);
    assert_int_equal(auto_limit("aimd"), 2);
    serve_down();
}

static void test_config_errors(void **state)
{
    (void)state;
    serve_up("0");
    static const struct {
        const char *extra, *needle;
    } cases[] = {
        {"\"batching\":{\"max_batch\":6}", "batching.max_batch: must be a power of two"},
        {"\"batching\":{\"mode\":\"auto\"}", "batching.slo_ms: missing"},
        {"\"batching\":{\"mode\":\"fixed\",\"slo_ms\":20}", "batching.slo_ms: only with mode"},
        {"\"batching\":{\"max_delay_us\":2000000}", "batching.max_delay_us: must be an integer"},
        {"\"batching\":{\"window\":3}", "batching.window: unknown field"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        http_response r;
        int st = test_deploy_model(&g_srv.target, "bad", g_digits_model, g_digits_len,
                                   cases[k].extra, NULL, &r);
        if (st != 400 || !strstr(r.body.data, cases[k].needle))
            fprintf(stderr, "%s: %d %s\n", cases[k].extra, st, r.body.data);
        assert_int_equal(st, 400);
        assert_non_null(strstr(r.body.data, cases[k].needle));
        http_response_fini(&r);
    }
    /* A model whose graph pins the batch: the deploy check names the node. */
    rouse_buf pm;
    pinned_model(&pm);
    http_response r;
    int st = test_deploy_model(&g_srv.target, "pinned", pm.data, pm.len,
                               "\"batching\":{\"max_batch\":4}", NULL, &r);
    printf("pinned: %d %s\n", st, r.body.data);
    assert_int_equal(st, 400);
    assert_non_null(strstr(r.body.data, "flatten_all"));
    assert_non_null(strstr(r.body.data, "batch"));
    http_response_fini(&r);
    /* The same model without batching deploys. */
    assert_int_equal(test_deploy_model(&g_srv.target, "pinned", pm.data, pm.len, "", NULL, &r), 201);
    http_response_fini(&r);
    rouse_buf_fini(&pm);
    assert_int_equal(request("GET", "/v1/functions/bad", NULL, &r), 404);
    http_response_fini(&r);

    /* Auto mode: its limit in the status and in /metrics. */
    deploy_digits("auto", "\"batching\":{\"mode\":\"auto\",\"max_batch\":16,\"slo_ms\":50}");
    char *body = digits_body(4, 1, "auto-1");
    assert_int_equal(request("POST", "/v2/models/auto/infer", body, &r), 200);
    assert_int_equal(batch_of(&r), 1);
    http_response_fini(&r);
    free(body);
    assert_int_equal(request("GET", "/v1/functions/auto", NULL, &r), 200);
    assert_non_null(strstr(r.body.data, "\"mode\":\"auto\",\"limit\":2,\"max_batch\":16"));
    http_response_fini(&r);
    assert_int_equal(request("GET", "/metrics", NULL, &r), 200);
    assert_non_null(strstr(r.body.data, "rouse_batch_limit{function=\"auto\"} 2"));
    assert_non_null(strstr(r.body.data, "# TYPE rouse_batches_total counter"));
    http_response_fini(&r);
    serve_down();
}

/* How many lines of the executions file are id. */
static int executions(const char *id)
{
    char path[400], line[256];
    snprintf(path, sizeof(path), "%s/executions", g_fault);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        n += strcmp(line, id) == 0;
    }
    fclose(f);
    return n;
}

static void test_crash_mid_batch(void **state)
{
    (void)state;
    serve_up("300000");
    deploy_digits("fragile", "\"scaling\":{\"max\":1},"
                             "\"batching\":{\"max_batch\":8,\"max_delay_us\":1000000}");
    /* A keeps the instance busy while the batch queues behind it. */
    call_arg first = {.path = "/v2/models/fragile/infer", .body = digits_body(0, 1, "first")};
    assert_int_equal(pthread_create(&first.th, NULL, call_main, &first), 0);
    http_response r;
    int tries = 0;
    for (;;) {
        assert_int_equal(request("GET", "/v1/functions/fragile", NULL, &r), 200);
        bool busy = strstr(r.body.data, "\"in_flight\":1") != NULL;
        http_response_fini(&r);
        if (busy) break;
        assert_true(tries++ < 4000);
        usleep(5000);
    }
    enum { N = 4 };
    call_arg a[N];
    memset(a, 0, sizeof(a));
    static const char *const ids[N] = {"mate-0", "mate-1", "crash-always-now", "mate-2"};
    for (int i = 0; i < N; i++) {
        a[i].path = "/v2/models/fragile/infer";
        a[i].body = digits_body(i, 1, ids[i]);
    }
    calls_run(a, N);
    pthread_join(first.th, NULL);
    assert_int_equal(first.status, 200);
    /* The crashing request's batch: every request of it failed with 500
     * naming it, as many as the message counts. */
    const char *crash = strstr(a[2].answer, "batch ");
    printf("crash answer: %d %s\n", a[2].status, a[2].answer);
    assert_int_equal(a[2].status, 500);
    assert_non_null(crash);
    long batch = atol(crash + 6);
    const char *of = strstr(crash, " (");
    assert_non_null(of);
    int size = atoi(of + 2);
    int failed = 0;
    for (int i = 0; i < N; i++) {
        const char *b = strstr(a[i].answer, "batch ");
        if (a[i].status == 500) {
            assert_non_null(b);
            assert_int_equal(atol(b + 6), batch);
            assert_non_null(strstr(a[i].answer, "not retried"));
            failed++;
        } else {
            assert_int_equal(a[i].status, 200);
        }
        /* Nothing ran twice. */
        assert_true(executions(ids[i]) <= 1);
    }
    printf("batch %ld of %d requests: %d failed\n", batch, size, failed);
    assert_int_equal(failed, size);
    assert_true(size >= 2);
    assert_int_equal(executions("crash-always-now"), 1);
    /* A fresh instance serves the next request. */
    char *body = digits_body(5, 1, "after");
    assert_int_equal(request("POST", "/v2/models/fragile/infer", body, &r), 200);
    http_response_fini(&r);
    free(body);
    calls_free(a, N);
    calls_free(&first, 1);
    serve_down();
}

/* --- setup ------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    g_rouse = getenv("ROUSE");
    g_digits = getenv("DIGITS");
    if (!g_rouse || !g_digits) {
        fprintf(stderr, "ROUSE and DIGITS must be set\n");
        return -1;
    }
    rouse_errbuf eb;
    char path[512];
    if (test_digit_samples(g_digits, g_samples) < 0) return -1;
    snprintf(path, sizeof(path), "%s/model.onnx", g_digits);
    if (cli_file_slurp(path, &g_digits_model, &g_digits_len, &eb) < 0) return -1;
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-batching-test-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_data, sizeof(g_data), "%s/data", g_dir);
    snprintf(g_fault, sizeof(g_fault), "%s/fault", g_dir);
    snprintf(path, sizeof(path), "mkdir -p '%s'", g_fault);
    return system(path) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    serve_down();
    for (int d = 0; d < 10; d++)
        free(g_samples[d]);
    free(g_digits_model);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_outputs),
        cmocka_unit_test(test_lone_and_partial),
        cmocka_unit_test(test_free_instance_not_held),
        cmocka_unit_test(test_shares),
        cmocka_unit_test(test_lone_fallback),
        cmocka_unit_test(test_auto_alone),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_crash_mid_batch),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
