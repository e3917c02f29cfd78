/*
 * serve against hostile clients, with the real daemon over plain sockets
 * (tests/support/raw_http.h). 127.0.0.1 plays the attacker and 127.0.0.2
 * another client (both loopback, different addresses to serve):
 * - slowloris: 500 connections that send their heads a few bytes at a
 *   time, while the other client keeps getting answers (no timing bound
 *   but a generous one per answer);
 * - the per-client cap answers 503 naming the client and its limit;
 * - a full serve closes the idlest connection for a new one (at the gate,
 *   or kept alive between requests), and answers 503 when every
 *   connection has a request in progress;
 * - an idle kept-alive connection is closed after --idle-timeout-ms;
 * - request line, header fields and a route's body limit get JSON 414,
 *   431 and 413; names that try to leave the registry or the blob store
 *   are 400 or 404;
 * - activation memory is bounded by memory_mb: the deploy check refuses a
 *   model over it at its declared shapes, naming both numbers, and a
 *   request whose shapes would need more is answered 413 while the same
 *   function keeps answering smaller ones; a JSON body whose values would
 *   take more than half of memory_mb to decode is 413, and the same tensor
 *   in binary is answered; a text generator's activations at its
 *   max_context and its KV cache are checked at deploy, naming both numbers;
 * - the data directory is private: an older one is tightened at start,
 *   and what a deploy writes is 0600/0400 in 0700 directories.
 *
 * Environment: ROUSE (the binary), DIGITS (examples/digits).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fn_deploy.h"
#include "onnx_builder.h"
#include "raw_http.h"
#include "rouse/engine.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define ANSWER_MS 10000 /* generous: the machine may be loaded */
#define N_SLOW 500

static const char *g_rouse, *g_digits;
static char g_dir[256];

/* The serve of the running test, killed by teardown when a check failed
 * before the test stopped it. */
static serve_proc *g_cur;

static void start(serve_proc *p, const char *name, const char *const *extra)
{
    char data[320];
    snprintf(data, sizeof(data), "%s/%s", g_dir, name);
    assert_int_equal(serve_proc_start(p, g_rouse, data, extra), 0);
    g_cur = p;
}

static int teardown(void **state)
{
    (void)state;
    if (g_cur) serve_proc_kill9(g_cur);
    g_cur = NULL;
    return 0;
}

/* Opens n connections from src that each send the start of a head. */
static int open_slow(const char *src, int port, int *fds, int n)
{
    static const char part[] = "GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n";
    int opened = 0;
    for (int i = 0; i < n; i++) {
        fds[i] = raw_connect(src, port);
        if (fds[i] >= 0 && raw_send(fds[i], part, sizeof(part) - 1) == 0) opened++;
    }
    return opened;
}

/* One more header byte on each slow connection; the count still open. */
static int trickle(int *fds, int n)
{
    int open = 0;
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0) continue;
        if (raw_send(fds[i], "X", 1) < 0) {
            close(fds[i]);
            fds[i] = -1;
            continue;
        }
        open++;
    }
    return open;
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
}

/* The other client: rounds of requests, each answered 200. */
static void other_client_answered(int port, int rounds, int *fds, int n)
{
    for (int r = 0; r < rounds; r++) {
        trickle(fds, n);
        char buf[4096];
        int status = raw_get("127.0.0.2", port, "/v2/health/ready", buf, sizeof(buf), ANSWER_MS);
        if (status != 200) fail_msg("round %d: the other client got %d: %s", r, status, buf);
    }
}

static void test_slowloris_default_limits(void **state)
{
    (void)state;
    serve_proc p;
    const char *const args[] = {"--log-level", "warn", NULL};
    start(&p, "slowloris", args);
    int fds[N_SLOW];
    open_slow("127.0.0.1", p.port, fds, N_SLOW);
    /* One more from the attacker is refused, saying why. */
    char buf[4096];
    assert_int_equal(raw_get("127.0.0.1", p.port, "/v2/health/live", buf, sizeof(buf), ANSWER_MS),
                     503);
    assert_non_null(strstr(buf, "application/json"));
    assert_non_null(
        strstr(buf, "{\"error\":\"too many connections from 127.0.0.1 (at most 256 per client)\"}"));
    other_client_answered(p.port, 10, fds, N_SLOW);
    /* serve holds at most 256 of them; the others were answered 503 and
     * closed (the trickle found them closed). */
    int held = 0;
    for (int i = 0; i < N_SLOW; i++)
        if (fds[i] >= 0 && !raw_closed(fds[i], 0)) held++;
    assert_true(held <= 256);
    close_all(fds, N_SLOW);
    assert_int_equal(serve_proc_stop(&p), 0);
}

static void test_full_closes_idlest(void **state)
{
    (void)state;
    serve_proc p;
    const char *const args[] = {"--log-level", "warn", "--max-connections", "50",
                                "--max-connections-per-client", "0", NULL};
    start(&p, "full", args);
    /* A kept-alive connection, idle after its request. */
    int kept = raw_connect("127.0.0.2", p.port);
    assert_true(kept >= 0);
    static const char get[] = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[4096];
    assert_int_equal(raw_send(kept, get, sizeof(get) - 1), 0);
    assert_int_equal(raw_response(kept, buf, sizeof(buf), ANSWER_MS), 200);
    /* 500 slow connections through a serve that holds 50: each new one
     * closes the idlest, first the kept-alive one, then the oldest slow
     * ones; the other client is still answered throughout. */
    int fds[N_SLOW];
    open_slow("127.0.0.1", p.port, fds, N_SLOW);
    assert_true(raw_closed(kept, ANSWER_MS));
    close(kept);
    other_client_answered(p.port, 10, fds, N_SLOW);
    /* At most 50 of them are still held by serve. */
    int held = 0;
    for (int i = 0; i < N_SLOW; i++)
        if (fds[i] >= 0 && !raw_closed(fds[i], 0)) held++;
    assert_true(held <= 50);
    close_all(fds, N_SLOW);
    assert_int_equal(serve_proc_stop(&p), 0);
}

static void test_busy_503(void **state)
{
    (void)state;
    serve_proc p;
    const char *const args[] = {"--log-level", "warn", "--max-connections", "3", NULL};
    start(&p, "busy", args);
    /* Three requests in progress: heads in, bodies not. MHD's "100
     * Continue" says that serve has begun each one. */
    static const char put[] = "PUT /v1/functions/f HTTP/1.1\r\nHost: x\r\n"
                              "Content-Length: 100\r\nExpect: 100-continue\r\n\r\n";
    int fds[3];
    char buf[4096];
    for (int i = 0; i < 3; i++) {
        fds[i] = raw_connect("127.0.0.1", p.port);
        assert_true(fds[i] >= 0);
        assert_int_equal(raw_send(fds[i], put, sizeof(put) - 1), 0);
        assert_int_equal(raw_response(fds[i], buf, sizeof(buf), ANSWER_MS), 100);
        assert_int_equal(raw_send(fds[i], "{", 1), 0);
    }
    int status = raw_get("127.0.0.2", p.port, "/v2/health/live", buf, sizeof(buf), ANSWER_MS);
    assert_int_equal(status, 503);
    assert_non_null(strstr(buf, "its limit of 3 connections, each with a request in progress"));
    /* None of the three was closed for it. */
    for (int i = 0; i < 3; i++)
        assert_false(raw_closed(fds[i], 0));
    close_all(fds, 3);
    assert_int_equal(serve_proc_stop(&p), 0);
}

static void test_per_client(void **state)
{
    (void)state;
    serve_proc p;
    const char *const args[] = {"--log-level", "warn", "--max-connections-per-client", "2", NULL};
    start(&p, "perclient", args);
    int a = raw_connect("127.0.0.1", p.port), b = raw_connect("127.0.0.1", p.port);
    assert_true(a >= 0 && b >= 0);
    char buf[4096];
    int status = -1;
    for (int tries = 0; tries < 50 && status != 503; tries++) {
        status = raw_get("127.0.0.1", p.port, "/v2/health/live", buf, sizeof(buf), ANSWER_MS);
        if (status != 503) usleep(100000);
    }
    assert_int_equal(status, 503);
    assert_non_null(strstr(buf, "{\"error\":\"too many connections from 127.0.0.1 (at most 2 per client)\"}"));
    assert_int_equal(raw_get("127.0.0.2", p.port, "/v2/health/live", NULL, 0, ANSWER_MS), 200);
    close(a);
    close(b);
    assert_int_equal(serve_proc_stop(&p), 0);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    serve_proc p;
    const char *const args[] = {"--log-level", "warn", "--idle-timeout-ms", "300", NULL};
    start(&p, "idle", args);
    int fd = raw_connect("127.0.0.1", p.port);
    assert_true(fd >= 0);
    static const char get[] = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[4096];
    assert_int_equal(raw_send(fd, get, sizeof(get) - 1), 0);
    assert_int_equal(raw_response(fd, buf, sizeof(buf), ANSWER_MS), 200);
    /* A later head trickled in does not keep it open either. */
    assert_int_equal(raw_send(fd, "GET /v2", 7), 0);
    assert_true(raw_closed(fd, ANSWER_MS));
    close(fd);
    assert_int_equal(serve_proc_stop(&p), 0);
}

/* Sends raw bytes on a new connection; the status, the response in buf. */
static int exchange(int port, const char *req, size_t len, char *buf, size_t blen)
{
    int fd = raw_connect("127.0.0.1", port);
    if (fd < 0) return -1;
    int status = raw_send(fd, req, len) == 0 ? raw_response(fd, buf, blen, ANSWER_MS) : -1;
    close(fd);
    return status;
}

static void test_head_and_body_limits(void **state)
{
    (void)state;
    serve_proc p;
    const char *const args[] = {"--log-level", "warn", NULL};
    start(&p, "limits", args);
    char buf[4096];
    size_t cap = 20000;
    char *req = malloc(cap);
    assert_non_null(req);
    /* A 9000-byte request line. */
    size_t n = (size_t)snprintf(req, cap, "GET /");
    memset(req + n, 'a', 9000);
    n += 9000;
    n += (size_t)snprintf(req + n, cap - n, " HTTP/1.1\r\n\r\n");
    assert_int_equal(exchange(p.port, req, n, buf, sizeof(buf)), 414);
    assert_non_null(strstr(buf, "{\"error\":\"the request line is longer than 8192 bytes\"}"));
    /* 101 header fields. */
    n = (size_t)snprintf(req, cap, "GET /v2/health/live HTTP/1.1\r\n");
    for (int i = 0; i < 101; i++)
        n += (size_t)snprintf(req + n, cap - n, "X-%d: v\r\n", i);
    n += (size_t)snprintf(req + n, cap - n, "\r\n");
    assert_int_equal(exchange(p.port, req, n, buf, sizeof(buf)), 431);
    assert_non_null(strstr(buf, "{\"error\":\"more than 100 header fields\"}"));
    /* A function config of 2 MiB: over the 1 MiB of a JSON document route,
     * refused on its Content-Length before the body is read. */
    n = (size_t)snprintf(req, cap,
                         "PUT /v1/functions/f HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
                         2 << 20);
    assert_int_equal(exchange(p.port, req, n, buf, sizeof(buf)), 413);
    assert_non_null(strstr(buf, "exceeds this endpoint's limit of 1048576 bytes"));
    /* Names that try to leave the registry or the blob store. */
    static const struct {
        const char *req;
        int status;
    } names[] = {
        {"GET /v1/functions/..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\n\r\n", 404},
        {"PUT /v1/functions/..%2Fplans HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 404},
        {"PUT /v1/functions/a.b HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 400},
        {"GET /v1/functions/.hidden HTTP/1.1\r\n\r\n", 404},
        {"DELETE /v1/blobs/sha256:..%2F..%2Frouse.db HTTP/1.1\r\n\r\n", 404},
        {"DELETE /v1/blobs/sha256:..rouse.db HTTP/1.1\r\n\r\n", 400},
        {"DELETE /v1/blobs/rouse.db HTTP/1.1\r\n\r\n", 400},
        {"POST /v2/models/..%2F..%2Fx/infer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 404},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int st = exchange(p.port, names[i].req, strlen(names[i].req), buf, sizeof(buf));
        if (st != names[i].status) fail_msg("%s: %d %s", names[i].req, st, buf);
    }
    free(req);
    assert_int_equal(serve_proc_stop(&p), 0);
}

static void serialize(ob_model *m, rouse_buf *out)
{
    rouse_buf_init(out);
    ob_serialize(m, out);
    ob_model_free(m);
}

static int infer(serve_proc *p, const char *fn, const char *body, http_response *r)
{
    char path[128];
    snprintf(path, sizeof(path), "/v2/models/%s/infer", fn);
    http_response_init(r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = http_request(&p->target, "POST", path, NULL, body, strlen(body), 120000, r, &eb);
    if (rc < 0) fprintf(stderr, "POST %s: %s\n", path, eb.msg);
    return rc < 0 ? -1 : r->status;
}

static void test_activation_memory(void **state)
{
    (void)state;
    serve_proc p;
    const char *const args[] = {"--log-level", "warn", NULL};
    start(&p, "memory", args);
    /* y = Relu(x), x of a static [1, 4096, 4096]: 64 MiB of activations. */
    ob_model *m = ob_model_new(13);
    const int64_t big[3] = {1, 4096, 4096};
    ob_input(m, "x", ROUSE_DT_FLOAT, 3, big);
    ob_output(m, "y", ROUSE_DT_FLOAT, 3, big);
    const char *x[1] = {"x"}, *y[1] = {"y"};
    ob_add_node(m, "Relu", "relu", 1, x, 1, y);
    rouse_buf model;
    serialize(m, &model);
    http_response r;
    assert_int_equal(test_deploy_model(&p.target, "wide", model.data, model.len,
                                       "\"memory_mb\":32", NULL, &r),
                     400);
    if (!strstr(r.body.data, "MiB of activation memory") ||
        !strstr(r.body.data, "more than the memory limit of 32 MiB") ||
        !strstr(r.body.data, "memory_mb"))
        fail_msg("the deploy check's answer: %s", r.body.data);
    http_response_fini(&r);
    assert_int_equal(test_deploy_model(&p.target, "wide", model.data, model.len,
                                       "\"memory_mb\":256", NULL, &r),
                     201);
    http_response_fini(&r);
    rouse_buf_fini(&model);

    /* y = Tile(x, [2^20]), x a vector of any length: 4 MiB of output per
     * element of x. */
    m = ob_model_new(13);
    const int64_t any[1] = {-1}, one[1] = {1}, reps[1] = {1 << 20};
    ob_input(m, "x", ROUSE_DT_FLOAT, 1, any);
    ob_output(m, "y", ROUSE_DT_FLOAT, 1, any);
    ob_initializer(m, "reps", ROUSE_DT_INT64, 1, one, reps, sizeof(reps));
    const char *tin[2] = {"x", "reps"};
    ob_add_node(m, "Tile", "tile", 2, tin, 1, y);
    serialize(m, &model);
    assert_int_equal(test_deploy_model(&p.target, "tile", model.data, model.len,
                                       "\"memory_mb\":64", NULL, &r),
                     201);
    http_response_fini(&r);
    rouse_buf_fini(&model);
    static const char small[] =
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}],"
        "\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":true}}]}";
    assert_int_equal(infer(&p, "tile", small, &r), 200);
    http_response_fini(&r);
    /* 100 elements: 400 MiB, refused before it is allocated. */
    char body[2048];
    size_t n = (size_t)snprintf(body, sizeof(body),
                                "{\"inputs\":[{\"name\":\"x\",\"shape\":[100],"
                                "\"datatype\":\"FP32\",\"data\":[");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%s1", i ? "," : "");
    snprintf(body + n, sizeof(body) - n, "]}]}");
    assert_int_equal(infer(&p, "tile", body, &r), 413);
    if (!strstr(r.body.data, "400 MiB of activation memory") ||
        !strstr(r.body.data, "more than the memory limit of 64 MiB"))
        fail_msg("the 413's message: %s", r.body.data);
    http_response_fini(&r);
    assert_int_equal(infer(&p, "tile", small, &r), 200);
    http_response_fini(&r);
    assert_int_equal(serve_proc_stop(&p), 0);
}

/* A decoder in the layout text generation needs (tests/support's builder,
 * no Python): logits = Gather(E, input_ids) over a vocabulary of 256, and
 * one layer whose present key and value are the past with each new
 * token's row of K ([heads 4, head_dim 64]) appended. Its activations and
 * KV cache grow with the context: 1 KiB per position for the logits, the
 * new keys and each present, 2 KiB for the cache. */
static void generator_model(rouse_buf *out)
{
    enum { VOC = 256, H = 4, D = 64 };
    ob_model *m = ob_model_new(13);
    const int64_t ids[2] = {1, -1}, past[4] = {1, H, -1, D}, logits[3] = {1, -1, VOC};
    const char *const seq[2] = {NULL, "s"}, *const tot[2] = {NULL, "t"};
    const char *const pdims[4] = {NULL, NULL, "p", NULL};
    ob_input_named(m, "input_ids", ROUSE_DT_INT64, 2, ids, seq);
    ob_input_named(m, "attention_mask", ROUSE_DT_INT64, 2, ids, tot);
    ob_input_named(m, "position_ids", ROUSE_DT_INT64, 2, ids, seq);
    ob_input_named(m, "past_key_values.0.key", ROUSE_DT_FLOAT, 4, past, pdims);
    ob_input_named(m, "past_key_values.0.value", ROUSE_DT_FLOAT, 4, past, pdims);
    ob_output(m, "logits", ROUSE_DT_FLOAT, 3, logits);
    ob_output(m, "present.0.key", ROUSE_DT_FLOAT, 4, past);
    ob_output(m, "present.0.value", ROUSE_DT_FLOAT, 4, past);
    static float e[VOC * VOC], ek[VOC * H * D];
    for (int i = 0; i < VOC * VOC; i++)
        e[i] = (float)((i * 7) % 13) / 13.0f;
    for (int i = 0; i < VOC * H * D; i++)
        ek[i] = (float)((i * 5) % 11) / 11.0f;
    const int64_t edims[2] = {VOC, VOC}, kdims[3] = {VOC, H, D};
    ob_initializer(m, "E", ROUSE_DT_FLOAT, 2, edims, e, sizeof(e));
    ob_initializer(m, "EK", ROUSE_DT_FLOAT, 3, kdims, ek, sizeof(ek));
    const char *g1[2] = {"E", "input_ids"}, *g1o[1] = {"logits"};
    ob_add_node(m, "Gather", "logits", 2, g1, 1, g1o);
    const char *g2[2] = {"EK", "input_ids"}, *g2o[1] = {"k_new"};
    ob_add_node(m, "Gather", "k_rows", 2, g2, 1, g2o);
    const char *tin[1] = {"k_new"}, *tout[1] = {"k_heads"};
    const int64_t perm[4] = {0, 2, 1, 3};
    ob_attr_ints(ob_add_node(m, "Transpose", "k_heads", 1, tin, 1, tout), "perm", 4, perm);
    const char *ck[2] = {"past_key_values.0.key", "k_heads"}, *cko[1] = {"present.0.key"};
    ob_attr_int(ob_add_node(m, "Concat", "present_k", 2, ck, 1, cko), "axis", 2);
    const char *cv[2] = {"past_key_values.0.value", "k_heads"}, *cvo[1] = {"present.0.value"};
    ob_attr_int(ob_add_node(m, "Concat", "present_v", 2, cv, 1, cvo), "axis", 2);
    serialize(m, out);
}

/* A generator's memory is checked at its max_context at deploy: the
 * largest prefill and decode step it can run, and its KV cache, against
 * memory_mb, in a 400 naming both numbers. */
static void test_generator_memory(void **state)
{
    (void)state;
    serve_proc p;
    const char *const args[] = {"--log-level", "warn", NULL};
    start(&p, "genmem", args);
    rouse_buf model;
    generator_model(&model);
    http_response r;
    /* 256 positions: well inside 16 MB. */
    assert_int_equal(test_deploy_model(&p.target, "short", model.data, model.len,
                                       "\"task\":\"text-generation\",\"max_context\":256,"
                                       "\"memory_mb\":16",
                                       NULL, &r),
                     201);
    http_response_fini(&r);
    /* 65536 positions: a prefill's logits alone are 64 MiB. */
    assert_int_equal(test_deploy_model(&p.target, "long", model.data, model.len,
                                       "\"task\":\"text-generation\",\"max_context\":65536,"
                                       "\"memory_mb\":64",
                                       NULL, &r),
                     400);
    if (!strstr(r.body.data, "max_context of 65536 positions") ||
        !strstr(r.body.data, "more than the memory limit of 64 MiB") ||
        !strstr(r.body.data, "memory_mb"))
        fail_msg("the deploy check's answer: %s", r.body.data);
    http_response_fini(&r);
    /* 12288 positions in 64 MB: the activations fit, the KV cache on top
     * of them does not. */
    assert_int_equal(test_deploy_model(&p.target, "mid", model.data, model.len,
                                       "\"task\":\"text-generation\",\"max_context\":12288,"
                                       "\"memory_mb\":64",
                                       NULL, &r),
                     400);
    if (!strstr(r.body.data, "max_context of 12288 positions needs") ||
        !strstr(r.body.data, "MiB of KV cache") ||
        !strstr(r.body.data, "more than the memory limit of 64 MiB"))
        fail_msg("the deploy check's answer: %s", r.body.data);
    http_response_fini(&r);
    /* The same context with room for both. */
    assert_int_equal(test_deploy_model(&p.target, "mid", model.data, model.len,
                                       "\"task\":\"text-generation\",\"max_context\":12288,"
                                       "\"memory_mb\":256",
                                       NULL, &r),
                     201);
    http_response_fini(&r);
    rouse_buf_fini(&model);
    assert_int_equal(serve_proc_stop(&p), 0);
}

/* A JSON body decodes into a tree of values that may take half of
 * memory_mb: past it, 413 with the way out (binary tensors), and the same
 * tensor in binary is answered. The bound is the instance's own check, so
 * the test runs without the sandbox's memory limit: under the sanitizers an
 * instance's own footprint alone outgrows 64 MB (shadow memory and
 * quarantine), which would test the build, not the bound. */
static void test_json_decode_bounded(void **state)
{
    (void)state;
    serve_proc p;
    const char *const args[] = {"--log-level", "warn", "--isolation", "process", NULL};
    start(&p, "decode", args);
    ob_model *m = ob_model_new(13);
    const int64_t any[1] = {-1};
    ob_input(m, "x", ROUSE_DT_FLOAT, 1, any);
    ob_output(m, "y", ROUSE_DT_FLOAT, 1, any);
    const char *x[1] = {"x"}, *y[1] = {"y"};
    ob_add_node(m, "Identity", "id", 1, x, 1, y);
    rouse_buf model;
    serialize(m, &model);
    http_response r;
    assert_int_equal(test_deploy_model(&p.target, "id", model.data, model.len,
                                       "\"memory_mb\":64", NULL, &r),
                     201);
    http_response_fini(&r);
    rouse_buf_fini(&model);
    /* 2M numbers: 4 MB of text, 64-80 MB of values. */
    enum { N = 1 << 21 };
    rouse_buf body;
    rouse_buf_init(&body);
    assert_int_equal(rouse_buf_appendf(&body,
                                       "{\"inputs\":[{\"name\":\"x\",\"shape\":[%d],"
                                       "\"datatype\":\"FP32\",\"data\":[",
                                       N),
                     0);
    for (int i = 0; i < N; i++)
        assert_int_equal(rouse_buf_append(&body, i ? ",0" : "0", i ? 2 : 1), 0);
    assert_int_equal(rouse_buf_append_str(&body, "]}],\"outputs\":[{\"name\":\"y\","
                                                 "\"parameters\":{\"binary_data\":true}}]}"),
                     0);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    http_response_init(&r);
    assert_int_equal(http_request(&p.target, "POST", "/v2/models/id/infer", NULL, body.data,
                                  body.len, 120000, &r, &eb),
                     0);
    assert_int_equal(r.status, 413);
    if (!strstr(r.body.data, "more than 32 MiB, half of the function's memory_mb of 64") ||
        !strstr(r.body.data, "binary tensor extension"))
        fail_msg("the 413's message: %s", r.body.data);
    http_response_fini(&r);
    /* The same tensor in binary. */
    rouse_buf_clear(&body);
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "{\"inputs\":[{\"name\":\"x\",\"shape\":[%d],\"datatype\":\"FP32\","
                      "\"parameters\":{\"binary_data_size\":%d}}],"
                      "\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":true}}]}",
                      N, N * 4);
    assert_int_equal(rouse_buf_append(&body, head, (size_t)hl), 0);
    assert_int_equal(rouse_buf_reserve(&body, body.len + (size_t)N * 4), 0);
    memset(body.data + body.len, 0, (size_t)N * 4);
    body.len += (size_t)N * 4;
    char ihcl[64];
    snprintf(ihcl, sizeof(ihcl), "Inference-Header-Content-Length: %d", hl);
    const char *const hdrs[] = {ihcl, "Content-Type: application/octet-stream", NULL};
    http_response_init(&r);
    assert_int_equal(http_request(&p.target, "POST", "/v2/models/id/infer", hdrs, body.data,
                                  body.len, 120000, &r, &eb),
                     0);
    if (r.status != 200) fail_msg("binary: %d %s", r.status, r.body.data);
    http_response_fini(&r);
    rouse_buf_fini(&body);
    assert_int_equal(serve_proc_stop(&p), 0);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

/* Every entry under dir: directories 0700, files without group or other
 * bits; the count of files seen. */
static int check_private(const char *dir)
{
    assert_int_equal(mode_of(dir), 0700);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            files += check_private(path);
        } else if (S_ISREG(st.st_mode)) {
            if (st.st_mode & 077) fail_msg("%s has mode %04o", path, st.st_mode & 07777);
            files++;
        }
    }
    closedir(d);
    return files;
}

static void test_data_dir_private(void **state)
{
    (void)state;
    char data[320], path[400];
    snprintf(data, sizeof(data), "%s/private", g_dir);
    assert_int_equal(mkdir(data, 0755), 0);
    chmod(data, 0755);
    snprintf(path, sizeof(path), "%s/plans", data);
    assert_int_equal(mkdir(path, 0755), 0);
    chmod(path, 0755);
    snprintf(path, sizeof(path), "%s/plans/old.plan", data);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    chmod(path, 0644);
    serve_proc p;
    const char *const args[] = {"--log-level", "warn", NULL};
    assert_int_equal(serve_proc_start(&p, g_rouse, data, args), 0);
    g_cur = &p;
    assert_int_equal(mode_of(path), 0600);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' deploy digits '%s/model.onnx' --server http://127.0.0.1:%d >/dev/null",
             g_rouse, g_digits, p.port);
    assert_int_equal(system(cmd), 0);
    /* The registry, the blob, its plan, the lock: all private. */
    int files = check_private(data);
    assert_true(files >= 4);
    snprintf(path, sizeof(path), "%s/rouse.db", data);
    assert_int_equal(mode_of(path), 0600);
    assert_int_equal(serve_proc_stop(&p), 0);
}

int main(void)
{
    g_rouse = getenv("ROUSE");
    g_digits = getenv("DIGITS");
    if (!g_rouse || !g_digits) {
        fprintf(stderr, "ROUSE and DIGITS must be set\n");
        return 1;
    }
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-hostile-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_slowloris_default_limits, teardown),
        cmocka_unit_test_teardown(test_full_closes_idlest, teardown),
        cmocka_unit_test_teardown(test_busy_503, teardown),
        cmocka_unit_test_teardown(test_per_client, teardown),
        cmocka_unit_test_teardown(test_idle_timeout, teardown),
        cmocka_unit_test_teardown(test_head_and_body_limits, teardown),
        cmocka_unit_test_teardown(test_activation_memory, teardown),
        cmocka_unit_test_teardown(test_generator_memory, teardown),
        cmocka_unit_test_teardown(test_json_decode_bounded, teardown),
        cmocka_unit_test_teardown(test_data_dir_private, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_dir);
    return rc;
}
