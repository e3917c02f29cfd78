/*
 * Integration tests of asynchronous inference against the real daemon
 * (the test binary rouse-fault, whose instances record every execution
 * and can crash on purpose: tests/support/fault_hook.c):
 * - a job is accepted (202, Location), runs and shows its OIP response;
 *   GET /v1/jobs/{id}/result gives the reply as the instance wrote it;
 * - Idempotency-Key: the same key and body give the same job, another
 *   body 409;
 * - retries: an instance that crashes on the first two runs of a job, and
 *   the job succeeds on its third; with async.max_attempts 2 it fails, is
 *   listed as a dead letter and succeeds when re-driven;
 * - a bad tensor fails at once (one run);
 * - async.queue_limit: 429 with Retry-After; cancel (DELETE) of a queued job;
 * - callbacks against a local receiver that fails twice: delivered on the
 *   third attempt, shown on the job; a host outside --callback-allow and a
 *   non-http URL are 400;
 * - expiry after async.result_ttl_ms;
 * - a batch with bad lines: those fail alone, output in input order;
 * - crash safety: 1000 jobs and a 1000-line batch, serve SIGKILLed while
 *   they run and restarted: every job ends succeeded, none is lost or left
 *   running, and each ran at least once; and serve SIGKILLed while a
 *   batch's items are still being created (held there by a test hook):
 *   the creation goes on after the restart, one job per line, none lost or
 *   doubled, and a job accepted after the batch runs after all its items.
 *
 * Environment: ROUSE (the rouse-fault binary), DIGITS (examples/digits).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/http_client.h"
#include "cli/tensor_file.h"
#include "common/arena.h"
#include "common/json.h"
#include "fn_deploy.h"
#include "json_str.h"
#include "onnx_builder.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define TIMEOUT_MS 60000

static const char *g_rouse, *g_digits;
static char g_dir[256], g_data[300], g_fault[300];
static serve_proc g_srv;
static char g_digest[80];

/* --- utilities ------------------------------------------------------------------ */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int req_h(const char *method, const char *path, const char *const *headers, const void *body,
                 size_t len, http_response *r)
{
    http_response_init(r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = http_request(&g_srv.target, method, path, headers, body, len, TIMEOUT_MS, r, &eb);
    if (rc < 0) fprintf(stderr, "%s %s: %s\n", method, path, eb.msg);
    assert_int_equal(rc, 0);
    return r->status;
}

static int req(const char *method, const char *path, const char *body, http_response *r)
{
    return req_h(method, path, NULL, body, body ? strlen(body) : 0, r);
}

static int64_t json_int(const char *doc, const char *key)
{
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    int64_t x = -1;
    if (json_parse(doc, strlen(doc), &a, &v, NULL) == 0) json_as_int64(json_get(v, key), &x);
    rouse_arena_fini(&a);
    return x;
}

static void start_serve(void)
{
    static const char *const args[] = {"--log-level", "warn", "--usage-flush-ms", "20", NULL};
    assert_int_equal(serve_proc_start(&g_srv, g_rouse, g_data, args), 0);
}

static void deploy(const char *name, const char *extra)
{
    char path[128], body[512];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    snprintf(body, sizeof(body), "{\"model\":\"%s\"%s%s}", g_digest, extra ? "," : "",
             extra ? extra : "");
    http_response r;
    int st = req("PUT", path, body, &r);
    if (st >= 300) fprintf(stderr, "deploy %s: %d %s\n", name, st, r.body.data);
    assert_true(st == 200 || st == 201);
    http_response_fini(&r);
}

/* An OIP request for digits with id `id`; bad: a tensor of the wrong shape. */
static void body_of(const char *id, bool bad, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "{\"id\":\"%s\",\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"FP32\","
                     "\"shape\":[1,%d],\"data\":[",
                     id, bad ? 3 : 64);
    for (int i = 0; i < (bad ? 3 : 64); i++)
        n += snprintf(out + n, cap - (size_t)n, "%s0.%d", i ? "," : "", i % 10);
    snprintf(out + n, cap - (size_t)n, "]}]}");
}

/* Submits a job; returns the HTTP status, the job id in id_out. */
static int submit(const char *fn, const char *body, const char *const *headers, char *id_out)
{
    char path[128];
    snprintf(path, sizeof(path), "/v2/models/%s/infer", fn);
    const char *h[8] = {"Prefer: respond-async"};
    int k = 1;
    for (int i = 0; headers && headers[i] && k < 7; i++)
        h[k++] = headers[i];
    h[k] = NULL;
    http_response r;
    int st = req_h("POST", path, h, body, strlen(body), &r);
    if (id_out) json_str(r.body.data, "id", id_out, 32);
    if (st == 202 && id_out) assert_non_null(strstr(r.body.data, "\"queued\""));
    http_response_fini(&r);
    return st;
}

/* Polls a job until its status is want (or a final one); returns its document (malloc'd). */
static char *wait_job(const char *id, const char *want)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    for (int i = 0; i < 3000; i++) {
        http_response r;
        assert_int_equal(req("GET", path, NULL, &r), 200);
        char st[32];
        json_str(r.body.data, "status", st, sizeof(st));
        if (strcmp(st, want) == 0) {
            char *doc = strdup(r.body.data);
            http_response_fini(&r);
            return doc;
        }
        http_response_fini(&r);
        sleep_ms(20);
    }
    fail_msg("job %s never became %s", id, want);
    return NULL;
}

/* Executions of request id recorded by the fault hook. */
static int executions(const char *id)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/executions", g_fault);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, id) == 0) n++;
    }
    fclose(f);
    return n;
}

/* --- tests ------------------------------------------------------------------------ */

static void test_accept_and_run(void **state)
{
    (void)state;
    deploy("digits", NULL);
    char body[2048], id[32];
    body_of("plain-1", false, body, sizeof(body));
    /* The 202 comes with Location and the id. */
    const char *h[] = {"Prefer: respond-async", NULL};
    http_response r;
    assert_int_equal(req_h("POST", "/v2/models/digits/infer", h, body, strlen(body), &r), 202);
    json_str(r.body.data, "id", id, sizeof(id));
    assert_true(id[0] != '\0');
    http_response_fini(&r);
    char *doc = wait_job(id, "succeeded");
    assert_non_null(strstr(doc, "\"response\":{\"model_name\":\"digits\""));
    assert_non_null(strstr(doc, "\"id\":\"plain-1\""));
    assert_int_equal(json_int(doc, "attempts"), 1);
    free(doc);
    char path[64];
    snprintf(path, sizeof(path), "/v1/jobs/%s/result", id);
    assert_int_equal(req("GET", path, NULL, &r), 200);
    assert_non_null(strstr(r.body.data, "\"outputs\""));
    http_response_fini(&r);
    assert_int_equal(executions("plain-1"), 1);
    /* Unknown jobs and functions. */
    assert_int_equal(req("GET", "/v1/jobs/999999", NULL, &r), 404);
    http_response_fini(&r);
    assert_int_equal(submit("nosuch", body, NULL, NULL), 404);
}

static void test_idempotency(void **state)
{
    (void)state;
    char a[2048], b[2048], id1[32], id2[32], id3[32];
    body_of("idem-a", false, a, sizeof(a));
    body_of("idem-b", false, b, sizeof(b));
    const char *key[] = {"Idempotency-Key: order-17", NULL};
    assert_int_equal(submit("digits", a, key, id1), 202);
    assert_int_equal(submit("digits", a, key, id2), 202);
    assert_string_equal(id1, id2);
    http_response r;
    const char *h[] = {"Prefer: respond-async", "Idempotency-Key: order-17", NULL};
    assert_int_equal(req_h("POST", "/v2/models/digits/infer", h, b, strlen(b), &r), 409);
    assert_non_null(strstr(r.body.data, "different body"));
    http_response_fini(&r);
    /* Another key is another job. */
    const char *key2[] = {"Idempotency-Key: order-18", NULL};
    assert_int_equal(submit("digits", a, key2, id3), 202);
    assert_string_not_equal(id1, id3);
    free(wait_job(id1, "succeeded"));
    free(wait_job(id3, "succeeded"));
}

static void test_retries_and_dead_letters(void **state)
{
    (void)state;
    /* Instances crash on the first two runs of "crash-*" ids. */
    deploy("retry3", NULL);
    deploy("retry2", "\"async\":{\"max_attempts\":2}");
    char body[2048], id[32], path[64];
    body_of("crash-three", false, body, sizeof(body));
    assert_int_equal(submit("retry3", body, NULL, id), 202);
    char *doc = wait_job(id, "succeeded");
    assert_int_equal(json_int(doc, "attempts"), 3);
    free(doc);
    assert_int_equal(executions("crash-three"), 3);
    /* Each run is an invocation to metering; the 202 itself is not. */
    http_response u;
    bool counted = false;
    for (int i = 0; i < 100 && !counted; i++) {
        assert_int_equal(req("GET", "/v1/usage?function=retry3", NULL, &u), 200);
        counted = strstr(u.body.data, "\"invocations\":3,") != NULL;
        if (counted) assert_non_null(strstr(u.body.data, "\"errors\":2,"));
        http_response_fini(&u);
        if (!counted) sleep_ms(20);
    }
    assert_true(counted);

    body_of("crash-dead", false, body, sizeof(body));
    assert_int_equal(submit("retry2", body, NULL, id), 202);
    doc = wait_job(id, "failed");
    assert_int_equal(json_int(doc, "attempts"), 2);
    assert_non_null(strstr(doc, "\"last_error\":\"instance crashed"));
    free(doc);
    http_response r;
    assert_int_equal(req("GET", "/v1/jobs?function=retry2&status=failed", NULL, &r), 200);
    char needle[48];
    snprintf(needle, sizeof(needle), "\"id\":\"%s\"", id);
    assert_non_null(strstr(r.body.data, needle));
    http_response_fini(&r);
    assert_int_equal(req("GET", "/v1/jobs?status=sleeping", NULL, &r), 400);
    http_response_fini(&r);
    /* Re-driven: the third run does not crash. */
    snprintf(path, sizeof(path), "/v1/jobs/%s/retry", id);
    assert_int_equal(req("POST", path, NULL, &r), 200);
    http_response_fini(&r);
    doc = wait_job(id, "succeeded");
    assert_int_equal(json_int(doc, "attempts"), 1);
    free(doc);
    assert_int_equal(executions("crash-dead"), 3);
    /* Only failed or cancelled jobs are re-driven. */
    assert_int_equal(req("POST", path, NULL, &r), 409);
    http_response_fini(&r);
}

static void test_bad_tensor_fails_at_once(void **state)
{
    (void)state;
    char body[2048], id[32];
    body_of("bad-1", true, body, sizeof(body));
    assert_int_equal(submit("digits", body, NULL, id), 202);
    char *doc = wait_job(id, "failed");
    assert_int_equal(json_int(doc, "attempts"), 1);
    assert_int_equal(json_int(doc, "http_status"), 400);
    assert_non_null(strstr(doc, "\"last_error\":"));
    free(doc);
    assert_int_equal(executions("bad-1"), 0); /* refused while decoding */
}

static void test_queue_limit_and_cancel(void **state)
{
    (void)state;
    /* Jobs that crash on every run and back off between: they stay. */
    deploy("limited", "\"async\":{\"queue_limit\":2,\"max_attempts\":100}");
    char body[2048], id1[32], id2[32];
    body_of("crash-always-1", false, body, sizeof(body));
    assert_int_equal(submit("limited", body, NULL, id1), 202);
    body_of("crash-always-2", false, body, sizeof(body));
    assert_int_equal(submit("limited", body, NULL, id2), 202);
    body_of("crash-always-3", false, body, sizeof(body));
    const char *h[] = {"Prefer: respond-async", NULL};
    http_response r;
    assert_int_equal(req_h("POST", "/v2/models/limited/infer", h, body, strlen(body), &r), 429);
    assert_true(r.retry_after >= 1 && r.retry_after <= 60);
    assert_non_null(strstr(r.body.data, "queue_limit"));
    http_response_fini(&r);
    /* Cancel both (a job running at that moment is 409: try again). */
    const char *ids[] = {id1, id2};
    for (int k = 0; k < 2; k++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/jobs/%s", ids[k]);
        int st = 0;
        for (int i = 0; i < 500 && st != 200; i++) {
            st = req("DELETE", path, NULL, &r);
            if (st != 200) assert_int_equal(st, 409);
            http_response_fini(&r);
            if (st != 200) sleep_ms(5);
        }
        assert_int_equal(st, 200);
        free(wait_job(ids[k], "cancelled"));
    }
    /* Room again. */
    char id3[32];
    body_of("after-cancel", false, body, sizeof(body));
    assert_int_equal(submit("limited", body, NULL, id3), 202);
    free(wait_job(id3, "succeeded"));
}

/* --- a local callback receiver ------------------------------------------------------- */

typedef struct receiver {
    int fd, port;
    int fail_first;
    int n_requests;
    char last_body[8192];
    volatile bool stop;
    pthread_t thread;
    pthread_mutex_t lock;
} receiver;

static void *receiver_main(void *arg)
{
    receiver *rc = arg;
    while (!rc->stop) {
        struct pollfd p = {.fd = rc->fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        int c = accept(rc->fd, NULL, NULL);
        if (c < 0) continue;
        char buf[16384];
        size_t got = 0;
        long want = -1;
        while (got < sizeof(buf) - 1) {
            ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);
            if (n <= 0) break;
            got += (size_t)n;
            buf[got] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (!end) continue;
            char *cl = strcasestr(buf, "Content-Length:");
            want = cl ? atol(cl + 15) : 0;
            if ((long)(got - (size_t)(end + 4 - buf)) >= want) break;
        }
        pthread_mutex_lock(&rc->lock);
        int k = ++rc->n_requests;
        char *end = strstr(buf, "\r\n\r\n");
        snprintf(rc->last_body, sizeof(rc->last_body), "%s", end ? end + 4 : "");
        pthread_mutex_unlock(&rc->lock);
        const char *resp =
            k <= rc->fail_first
                ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                  "Connection: close\r\n\r\n"
                : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        if (write(c, resp, strlen(resp)) < 0) {
        }
        close(c);
    }
    return NULL;
}

static void receiver_start(receiver *rc, int fail_first)
{
    memset(rc, 0, sizeof(*rc));
    rc->fail_first = fail_first;
    pthread_mutex_init(&rc->lock, NULL);
    rc->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(rc->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(rc->fd, 16), 0);
    socklen_t len = sizeof(sa);
    getsockname(rc->fd, (struct sockaddr *)&sa, &len);
    rc->port = ntohs(sa.sin_port);
    pthread_create(&rc->thread, NULL, receiver_main, rc);
}

static void receiver_stop(receiver *rc)
{
    rc->stop = true;
    pthread_join(rc->thread, NULL);
    close(rc->fd);
    pthread_mutex_destroy(&rc->lock);
}

static void test_callbacks(void **state)
{
    (void)state;
    receiver rc;
    receiver_start(&rc, 2);
    char body[2048], id[32], hdr[128];
    body_of("cb-1", false, body, sizeof(body));
    snprintf(hdr, sizeof(hdr), "Callback-Url: http://127.0.0.1:%d/hook", rc.port);
    const char *h[] = {hdr, NULL};
    assert_int_equal(submit("digits", body, h, id), 202);
    char path[64];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    bool delivered = false;
    for (int i = 0; i < 1000 && !delivered; i++) {
        http_response r;
        assert_int_equal(req("GET", path, NULL, &r), 200);
        delivered = strstr(r.body.data, "\"status\":\"delivered\"") != NULL;
        if (delivered) assert_non_null(strstr(r.body.data, "\"attempts\":3"));
        http_response_fini(&r);
        if (!delivered) sleep_ms(20);
    }
    assert_true(delivered);
    pthread_mutex_lock(&rc.lock);
    assert_int_equal(rc.n_requests, 3);
    assert_non_null(strstr(rc.last_body, "\"status\":\"succeeded\""));
    assert_non_null(strstr(rc.last_body, "\"response\":{"));
    pthread_mutex_unlock(&rc.lock);
    receiver_stop(&rc);
    /* Outside the allow-list, or not http(s): refused up front. */
    const char *bad[] = {"Callback-Url: http://example.com/hook", NULL};
    http_response r;
    const char *h2[] = {"Prefer: respond-async", bad[0], NULL};
    assert_int_equal(req_h("POST", "/v2/models/digits/infer", h2, body, strlen(body), &r), 400);
    assert_non_null(strstr(r.body.data, "not allowed"));
    http_response_fini(&r);
    const char *h3[] = {"Prefer: respond-async", "Callback-Url: ftp://127.0.0.1/x", NULL};
    assert_int_equal(req_h("POST", "/v2/models/digits/infer", h3, body, strlen(body), &r), 400);
    http_response_fini(&r);
}

static void test_expiry(void **state)
{
    (void)state;
    deploy("shortlived", "\"async\":{\"result_ttl_ms\":300}");
    char body[2048], id[32], path[64];
    body_of("expire-1", false, body, sizeof(body));
    assert_int_equal(submit("shortlived", body, NULL, id), 202);
    free(wait_job(id, "succeeded"));
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    int st = 200;
    for (int i = 0; i < 300 && st == 200; i++) {
        http_response r;
        st = req("GET", path, NULL, &r);
        http_response_fini(&r);
        if (st == 200) sleep_ms(20);
    }
    assert_int_equal(st, 404);
}

/* Uploads text as a blob; digest into out. */
static void upload(const char *text, size_t len, char *out)
{
    http_response r;
    assert_int_equal(req_h("POST", "/v1/blobs", NULL, text, len, &r), 201);
    json_str(r.body.data, "digest", out, 80);
    http_response_fini(&r);
}

/* Posts a batch of fn over a JSONL blob; waits for completion; returns its document. */
static char *run_batch(const char *fn, const char *digest, char *id, int wait_s)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"function\":\"%s\",\"input\":\"%s\"}", fn, digest);
    http_response r;
    assert_int_equal(req("POST", "/v1/batches", body, &r), 202);
    json_str(r.body.data, "id", id, 32);
    http_response_fini(&r);
    if (wait_s == 0) return NULL;
    char path[64];
    snprintf(path, sizeof(path), "/v1/batches/%s", id);
    for (int i = 0; i < wait_s * 50; i++) {
        assert_int_equal(req("GET", path, NULL, &r), 200);
        if (strstr(r.body.data, "\"completed\"")) {
            char *doc = strdup(r.body.data);
            http_response_fini(&r);
            return doc;
        }
        http_response_fini(&r);
        sleep_ms(20);
    }
    fail_msg("batch %s did not complete", id);
    return NULL;
}

static void test_batch_with_bad_lines(void **state)
{
    (void)state;
    rouse_buf in;
    rouse_buf_init(&in);
    char line[2048], id[32];
    for (int i = 0; i < 6; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "batch-line-%d", i);
        if (i == 2)
            snprintf(line, sizeof(line), "not json at all");
        else
            body_of(rid, i == 4, line, sizeof(line));
        rouse_buf_appendf(&in, "%s\n", line);
    }
    char digest[80];
    upload(in.data, in.len, digest);
    rouse_buf_fini(&in);
    char *doc = run_batch("digits", digest, id, 60);
    assert_non_null(strstr(doc, "\"total\":6"));
    assert_non_null(strstr(doc, "\"succeeded\":4,\"failed\":2"));
    free(doc);
    char path[64];
    snprintf(path, sizeof(path), "/v1/batches/%s/output", id);
    http_response r;
    assert_int_equal(req("GET", path, NULL, &r), 200);
    /* One line per input line, in order; failed ones null. */
    const char *p = r.body.data;
    for (int i = 0; i < 6; i++) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (i == 2 || i == 4) {
            assert_true(strncmp(p, "null\n", 5) == 0);
        } else {
            char rid[40];
            snprintf(rid, sizeof(rid), "\"id\":\"batch-line-%d\"", i);
            char *l = strndup(p, (size_t)(nl - p));
            assert_non_null(strstr(l, rid));
            free(l);
        }
        p = nl + 1;
    }
    assert_int_equal(*p, '\0');
    http_response_fini(&r);
    snprintf(path, sizeof(path), "/v1/batches/%s/errors", id);
    assert_int_equal(req("GET", path, NULL, &r), 200);
    assert_non_null(strstr(r.body.data, "{\"index\":2,"));
    assert_non_null(strstr(r.body.data, "{\"index\":4,"));
    http_response_fini(&r);
}

/* --- crash safety ----------------------------------------------------------------------- */

#define N_CRASH 1000
#define N_CLIENTS 8

typedef struct submitter {
    int from, to;
    char (*ids)[32];
} submitter;

static void *submit_range(void *arg)
{
    submitter *s = arg;
    for (int i = s->from; i < s->to; i++) {
        char body[2048], rid[32];
        snprintf(rid, sizeof(rid), "many-%d", i);
        body_of(rid, false, body, sizeof(body));
        const char *h[] = {"Prefer: respond-async", NULL};
        http_response r;
        http_response_init(&r);
        rouse_errbuf eb;
        if (http_request(&g_srv.target, "POST", "/v2/models/many/infer", h, body, strlen(body),
                         TIMEOUT_MS, &r, &eb) == 0 &&
            r.status == 202)
            json_str(r.body.data, "id", s->ids[i], 32);
        http_response_fini(&r);
    }
    return NULL;
}

/* Counts jobs of fn by status through the list API. */
static void count_jobs(const char *fn, int *succeeded, int *running, int *total)
{
    *succeeded = *running = *total = 0;
    int64_t after = 0;
    for (;;) {
        char path[160];
        snprintf(path, sizeof(path), "/v1/jobs?function=%s&limit=1000&after=%" PRId64, fn, after);
        http_response r;
        assert_int_equal(req("GET", path, NULL, &r), 200);
        int n = 0;
        for (const char *p = r.body.data; (p = strstr(p, "{\"id\":\"")); p++) {
            n++;
            after = atoll(p + 7);
            const char *st = strstr(p, "\"status\":\"");
            if (st && strncmp(st + 10, "succeeded", 9) == 0) (*succeeded)++;
            if (st && strncmp(st + 10, "running", 7) == 0) (*running)++;
        }
        *total += n;
        http_response_fini(&r);
        if (n < 1000) break;
    }
}

static void test_crash_safety(void **state)
{
    (void)state;
    deploy("many", "\"async\":{\"max_concurrency\":1}");
    /* A batch of 1000 lines first, then 1000 single jobs behind it (FIFO). */
    rouse_buf in;
    rouse_buf_init(&in);
    for (int i = 0; i < N_CRASH; i++) {
        char line[2048], rid[32];
        snprintf(rid, sizeof(rid), "line-%d", i);
        body_of(rid, false, line, sizeof(line));
        rouse_buf_appendf(&in, "%s\n", line);
    }
    char digest[80], bid[32];
    upload(in.data, in.len, digest);
    rouse_buf_fini(&in);
    run_batch("many", digest, bid, 0);
    static char ids[N_CRASH][32];
    memset(ids, 0, sizeof(ids));
    pthread_t th[N_CLIENTS];
    submitter sub[N_CLIENTS];
    for (int k = 0; k < N_CLIENTS; k++) {
        sub[k] = (submitter){
            .from = k * N_CRASH / N_CLIENTS, .to = (k + 1) * N_CRASH / N_CLIENTS, .ids = ids};
        pthread_create(&th[k], NULL, submit_range, &sub[k]);
    }
    for (int k = 0; k < N_CLIENTS; k++)
        pthread_join(th[k], NULL);
    for (int i = 0; i < N_CRASH; i++)
        assert_true(ids[i][0] != '\0'); /* every one accepted */
    /* Kill serve while they run: the batch's items go first, the single
     * jobs wait behind them. */
    int done = 0, running = 0, total = 0;
    char bpath[64];
    snprintf(bpath, sizeof(bpath), "/v1/batches/%s", bid);
    for (int i = 0; i < 2000; i++) {
        http_response r;
        assert_int_equal(req("GET", bpath, NULL, &r), 200);
        int64_t ok = 0;
        const char *p = strstr(r.body.data, "\"succeeded\":");
        if (p) ok = atoll(p + 12);
        http_response_fini(&r);
        if (ok >= 50) break;
        sleep_ms(2);
    }
    count_jobs("many", &done, &running, &total);
    serve_proc_kill9(&g_srv);
    fprintf(stderr, "killed with %d of %d jobs succeeded, %d running\n", done, total, running);
    assert_true(done < total);
    start_serve();
    for (int i = 0; i < 3000; i++) {
        count_jobs("many", &done, &running, &total);
        if (done == total) break;
        sleep_ms(20);
    }
    assert_int_equal(total, 2 * N_CRASH);
    assert_int_equal(done, 2 * N_CRASH);
    assert_int_equal(running, 0);
    /* Each ran at least once (at-least-once; a run cut by the kill twice). */
    int twice = 0;
    for (int i = 0; i < N_CRASH; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "many-%d", i);
        int n = executions(rid);
        assert_true(n >= 1);
        twice += n > 1;
        snprintf(rid, sizeof(rid), "line-%d", i);
        n = executions(rid);
        assert_true(n >= 1);
        twice += n > 1;
    }
    fprintf(stderr, "%d run(s) repeated after the kill\n", twice);
    char path[64];
    snprintf(path, sizeof(path), "/v1/batches/%s", bid);
    http_response r;
    for (int i = 0; i < 500; i++) {
        assert_int_equal(req("GET", path, NULL, &r), 200);
        bool ok = strstr(r.body.data, "\"completed\"") != NULL;
        if (ok) assert_non_null(strstr(r.body.data, "\"succeeded\":1000"));
        http_response_fini(&r);
        if (ok) break;
        sleep_ms(20);
    }
}

/* A SIGKILL while a batch's items are still being created. The test hook
 * ROUSE_FAULT_BATCH_CHUNK_MS holds the creation after its first chunk (the
 * POST's); those items run; a job accepted after the batch waits behind
 * all of its items, created or not (FIFO); serve is killed there and
 * restarted without the hold: the creation goes on from where it stopped,
 * every line becomes exactly one job, which succeeds, the output has one
 * line per input line in order, and the later job runs last. */
#define N_CHUNKED 1500

static int64_t batch_succeeded(const char *doc)
{
    const char *p = strstr(doc, "\"succeeded\":");
    return p ? atoll(p + 12) : -1;
}

static void test_crash_during_batch_creation(void **state)
{
    (void)state;
    assert_int_equal(serve_proc_stop(&g_srv), 0);
    setenv("ROUSE_FAULT_BATCH_CHUNK_MS", "3600000", 1);
    start_serve();
    unsetenv("ROUSE_FAULT_BATCH_CHUNK_MS");
    deploy("chunky", NULL);
    rouse_buf in;
    rouse_buf_init(&in);
    for (int i = 0; i < N_CHUNKED; i++) {
        char line[2048], rid[32];
        snprintf(rid, sizeof(rid), "chunk-%d", i);
        body_of(rid, false, line, sizeof(line));
        rouse_buf_appendf(&in, "%s\n", line);
    }
    char digest[80], bid[32], path[64];
    upload(in.data, in.len, digest);
    rouse_buf_fini(&in);
    run_batch("chunky", digest, bid, 0);
    snprintf(path, sizeof(path), "/v1/batches/%s", bid);
    http_response r;
    assert_int_equal(req("GET", path, NULL, &r), 200);
    int64_t created = json_int(r.body.data, "created");
    assert_int_equal(json_int(r.body.data, "total"), N_CHUNKED);
    assert_true(created > 0 && created < N_CHUNKED);
    http_response_fini(&r);
    char body[2048], after[32];
    body_of("after-chunky", false, body, sizeof(body));
    assert_int_equal(submit("chunky", body, NULL, after), 202);
    /* Every item created so far runs; the creation stays held. */
    int64_t ok = 0;
    for (int i = 0; i < 3000 && ok < created; i++) {
        assert_int_equal(req("GET", path, NULL, &r), 200);
        ok = batch_succeeded(r.body.data);
        assert_int_equal(json_int(r.body.data, "created"), created);
        assert_non_null(strstr(r.body.data, "\"in_progress\""));
        http_response_fini(&r);
        if (ok < created) sleep_ms(20);
    }
    assert_int_equal(ok, created);
    char *doc = wait_job(after, "queued");
    free(doc);
    assert_int_equal(executions("after-chunky"), 0);

    serve_proc_kill9(&g_srv);
    start_serve();
    doc = NULL;
    for (int i = 0; i < 3000 && !doc; i++) {
        assert_int_equal(req("GET", path, NULL, &r), 200);
        if (strstr(r.body.data, "\"completed\"")) doc = strdup(r.body.data);
        http_response_fini(&r);
        if (!doc) sleep_ms(20);
    }
    assert_non_null(doc);
    assert_int_equal(batch_succeeded(doc), N_CHUNKED);
    assert_int_equal(json_int(doc, "created"), N_CHUNKED);
    free(doc);
    doc = wait_job(after, "succeeded");
    free(doc);
    /* Exactly one job per line (none lost, none twice), plus the later one. */
    int done = 0, running = 0, total = 0;
    count_jobs("chunky", &done, &running, &total);
    assert_int_equal(total, N_CHUNKED + 1);
    assert_int_equal(done, N_CHUNKED + 1);
    assert_int_equal(running, 0);
    snprintf(path, sizeof(path), "/v1/batches/%s/output", bid);
    assert_int_equal(req("GET", path, NULL, &r), 200);
    const char *p = r.body.data;
    for (int i = 0; i < N_CHUNKED; i++) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char rid[40];
        snprintf(rid, sizeof(rid), "\"id\":\"chunk-%d\"", i);
        char *l = strndup(p, (size_t)(nl - p));
        assert_non_null(strstr(l, rid));
        free(l);
        p = nl + 1;
    }
    assert_int_equal(*p, '\0');
    http_response_fini(&r);
    for (int i = 0; i < N_CHUNKED; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "chunk-%d", i);
        assert_true(executions(rid) >= 1);
    }
    assert_int_equal(executions("after-chunky"), 1);
}

/* async.max_age_ms also bounds the wait in the queue. The function's only
 * instance is held 1.5 s by a job; the dispatcher has handed the pool one
 * more (one waiting call per instance slot, so that the instance never
 * idles between replies), which runs next; the third waits in the
 * dispatcher past its function's max age of 1 s and fails unrun, saying
 * why (the fault hook records every execution: it has none). */
static void test_max_age_in_queue(void **state)
{
    (void)state;
    deploy("aged", "\"scaling\":{\"max\":1},\"async\":{\"max_age_ms\":1000}");
    char body[2048], id1[32], id2[32], id3[32];
    body_of("sleep-1500-aged", false, body, sizeof(body));
    assert_int_equal(submit("aged", body, NULL, id1), 202);
    body_of("aged-next", false, body, sizeof(body));
    assert_int_equal(submit("aged", body, NULL, id2), 202);
    body_of("aged-late", false, body, sizeof(body));
    assert_int_equal(submit("aged", body, NULL, id3), 202);
    free(wait_job(id1, "succeeded"));
    char *doc = wait_job(id3, "failed");
    char err[256];
    json_str(doc, "last_error", err, sizeof(err));
    assert_non_null(strstr(err, "past async.max_age_ms (1000 ms)"));
    free(doc);
    free(wait_job(id2, "succeeded"));
    assert_int_equal(executions("sleep-1500-aged"), 1);
    assert_int_equal(executions("aged-next"), 1);
    assert_int_equal(executions("aged-late"), 0);
}

/* A result over the inline limit (256 KiB) lives in the blob store: the job
 * names it, GET .../result streams it whole, and the blob is referenced
 * (DELETE answers 409) until the job expires. The model tiles a 4-float
 * input 40,000 times: 160,000 floats, about 1.3 MB of JSON. */
static void test_large_result_in_blob_store(void **state)
{
    (void)state;
    enum { REPS = 40000 };
    ob_model *m = ob_model_new(13);
    ob_input(m, "x", 1, 2, (const int64_t[]){1, 4});
    ob_output(m, "y", 1, 2, (const int64_t[]){1, 4 * REPS});
    const int64_t reps[2] = {1, REPS};
    ob_initializer(m, "reps", 7, 1, (const int64_t[]){2}, reps, sizeof(reps));
    ob_add_node(m, "Tile", "tile", 2, (const char *const[]){"x", "reps"}, 1,
                (const char *const[]){"y"});
    rouse_buf model;
    rouse_buf_init(&model);
    ob_serialize(m, &model);
    ob_model_free(m);
    http_response r;
    assert_int_equal(req_h("POST", "/v1/blobs", NULL, model.data, model.len, &r), 201);
    rouse_buf_fini(&model);
    char digest[80];
    json_str(r.body.data, "digest", digest, sizeof(digest));
    http_response_fini(&r);
    char body[256];
    snprintf(body, sizeof(body), "{\"model\":\"%s\"}", digest);
    int st = req("PUT", "/v1/functions/wide", body, &r);
    if (st >= 300) fprintf(stderr, "deploy wide: %d %s\n", st, r.body.data);
    assert_true(st == 200 || st == 201);
    http_response_fini(&r);

    const char *in = "{\"id\":\"wide-1\",\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\","
                     "\"shape\":[1,4],\"data\":[1.5,2.25,-3,4]}]}";
    char id[32];
    assert_int_equal(submit("wide", in, NULL, id), 202);
    char *doc = wait_job(id, "succeeded");
    char blob[80];
    json_str(doc, "response_blob", blob, sizeof(blob));
    assert_int_equal(strncmp(blob, "sha256:", 7), 0);
    assert_null(strstr(doc, "\"response\":")); /* not inlined */
    free(doc);

    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s/result", id);
    assert_int_equal(req("GET", path, NULL, &r), 200);
    assert_true(r.body.len > (256u << 10));
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    assert_int_equal(json_parse(r.body.data, r.body.len, &a, &v, NULL), 0);
    const json_value *outs = json_get(v, "outputs");
    assert_non_null(outs);
    assert_int_equal(outs->type, JSON_ARRAY);
    assert_int_equal(outs->u.arr.n, 1);
    const json_value *data = json_get(outs->u.arr.items[0], "data");
    assert_non_null(data);
    assert_int_equal(data->type, JSON_ARRAY);
    assert_int_equal(data->u.arr.n, 4 * REPS);
    static const double want[4] = {1.5, 2.25, -3, 4};
    for (size_t i = 0; i < data->u.arr.n; i += 9973) {
        double x;
        assert_true(json_as_double(data->u.arr.items[i], &x));
        assert_true(x == want[i % 4]);
    }
    rouse_arena_fini(&a);
    http_response_fini(&r);

    /* In use by the job: not removable. */
    snprintf(path, sizeof(path), "/v1/blobs/%s", blob);
    assert_int_equal(req("DELETE", path, NULL, &r), 409);
    http_response_fini(&r);
}

static int setup(void **state)
{
    (void)state;
    g_rouse = getenv("ROUSE");
    g_digits = getenv("DIGITS");
    if (!g_rouse || !g_digits) {
        fprintf(stderr, "ROUSE and DIGITS must be set\n");
        return -1;
    }
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-async-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_data, sizeof(g_data), "%s/data", g_dir);
    snprintf(g_fault, sizeof(g_fault), "%s/fault", g_dir);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s", g_fault);
    if (system(cmd) != 0) return -1;
    setenv("ROUSE_FAULT_DIR", g_fault, 1);
    setenv("ROUSE_FAULT_CRASH_FIRST", "2", 1);
    setenv("ROUSE_FAULT_DELAY_US", "1000", 1);
    static const char *const args[] = {"--log-level", "warn", "--usage-flush-ms", "20", NULL};
    if (serve_proc_start(&g_srv, g_rouse, g_data, args) < 0) return -1;
    char path[512];
    snprintf(path, sizeof(path), "%s/model.onnx", g_digits);
    return test_upload_file(&g_srv.target, path, g_digest);
}

static int teardown(void **state)
{
    (void)state;
    /* A clean stop (under the sanitizers: no leak either). */
    int st = serve_proc_stop(&g_srv);
    if (st != 0) fprintf(stderr, "serve exited with %d\n", st);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    if (system(cmd) != 0) return -1;
    return st == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_and_run),
        cmocka_unit_test(test_idempotency),
        cmocka_unit_test(test_retries_and_dead_letters),
        cmocka_unit_test(test_bad_tensor_fails_at_once),
        cmocka_unit_test(test_queue_limit_and_cancel),
        cmocka_unit_test(test_callbacks),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_batch_with_bad_lines),
        cmocka_unit_test(test_large_result_in_blob_store),
        cmocka_unit_test(test_max_age_in_queue),
        cmocka_unit_test(test_crash_safety),
        cmocka_unit_test(test_crash_during_batch_creation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
