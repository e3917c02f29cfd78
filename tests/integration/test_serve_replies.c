/*
 * Integration test of how request and reply bodies travel between serve and
 * an instance: through the instance's shared region (1 MiB at first), a
 * bigger region that replaces it when a body or a reply does not fit, a
 * memfd of their own for bodies past the region's 32 MiB cap and for
 * requests that find the region lent to another request of the same
 * instance (concurrency > 1). An Identity model with a dynamic length
 * echoes float vectors, as binary and as JSON, and every reply must carry
 * exactly the request's values, however many requests went before.
 *
 * Environment: ROUSE (the binary). Runs its own daemon on a free loopback
 * port with a temporary data directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/http_client.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/json.h"
#include "onnx_builder.h"
#include "rouse/engine.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define TIMEOUT_MS 120000

static char g_dir[256], g_data[300];
static serve_proc g_srv;
static const char *const g_serve_args[] = {"--log-level", "warn", NULL};

static int request(const char *method, const char *path, const char *const *headers,
                   const void *body, size_t len, http_response *r)
{
    http_response_init(r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = http_request(&g_srv.target, method, path, headers, body, len, TIMEOUT_MS, r, &eb);
    if (rc < 0) fprintf(stderr, "%s %s: %s\n", method, path, eb.msg);
    assert_int_equal(rc, 0);
    if (r->status >= 300) fprintf(stderr, "%s %s: %d %s\n", method, path, r->status, r->body.data);
    return r->status;
}

/* Deploys function `name`: y = Identity(x), x a float vector of any length,
 * with the given config members (JSON, may be ""). */
static void deploy_identity(const char *name, const char *config)
{
    ob_model *m = ob_model_new(13);
    const int64_t dims[1] = {-1};
    ob_input(m, "x", ROUSE_DT_FLOAT, 1, dims);
    ob_output(m, "y", ROUSE_DT_FLOAT, 1, dims);
    const char *in[1] = {"x"}, *out[1] = {"y"};
    ob_add_node(m, "Identity", "id", 1, in, 1, out);
    rouse_buf model;
    rouse_buf_init(&model);
    ob_serialize(m, &model);
    ob_model_free(m);

    http_response r;
    assert_int_equal(request("POST", "/v1/blobs", NULL, model.data, model.len, &r), 201);
    rouse_buf_fini(&model);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v = NULL;
    rouse_errbuf eb;
    assert_int_equal(json_parse(r.body.data, r.body.len, &a, &v, &eb), 0);
    char body[512], path[128];
    snprintf(body, sizeof(body), "{\"model\":\"%s\"%s%s}", json_as_string(json_get(v, "digest")),
             config[0] ? "," : "", config);
    rouse_arena_fini(&a);
    http_response_fini(&r);
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    assert_int_equal(request("PUT", path, NULL, body, strlen(body), &r), 201);
    http_response_fini(&r);
}

/* Values exactly representable in both float and %.9g text; `seed` makes
 * each request's values its own. */
static float value_seeded(size_t i, unsigned seed)
{
    return (float)((int)((i + seed) % 1000) - 500) / 8.0f;
}

static float value_at(size_t i)
{
    return value_seeded(i, 0);
}

/* Checks the "data" of the single output of a JSON reply. */
static void check_json_reply(const http_response *r, size_t n, unsigned seed)
{
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v = NULL;
    rouse_errbuf eb;
    assert_int_equal(json_parse(r->body.data, r->body.len, &a, &v, &eb), 0);
    const json_value *outs = json_get(v, "outputs");
    assert_non_null(outs);
    assert_int_equal(outs->u.arr.n, 1);
    const json_value *data = json_get(outs->u.arr.items[0], "data");
    assert_non_null(data);
    assert_int_equal(data->u.arr.n, n);
    for (size_t i = 0; i < n; i++) {
        double d;
        assert_true(json_as_double(data->u.arr.items[i], &d));
        assert_true((float)d == value_seeded(i, seed));
    }
    rouse_arena_fini(&a);
}

/* Sends n floats as binary data to function `name`; asks for a binary
 * output, or a JSON one when json_out (a reply bigger than the body). */
static void check_binary_to(const char *name, size_t n, unsigned seed, bool json_out)
{
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_appendf(&b,
                      "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[%zu],"
                      "\"parameters\":{\"binary_data_size\":%zu}}],"
                      "\"parameters\":{\"binary_data_output\":%s}}",
                      n, n * sizeof(float), json_out ? "false" : "true");
    size_t json_len = b.len;
    assert_int_equal(rouse_buf_reserve(&b, n * sizeof(float)), 0);
    for (size_t i = 0; i < n; i++) {
        float f = value_seeded(i, seed);
        rouse_buf_append(&b, &f, sizeof(f));
    }
    char hdr[64], path[128];
    snprintf(hdr, sizeof(hdr), "Inference-Header-Content-Length: %zu", json_len);
    snprintf(path, sizeof(path), "/v2/models/%s/infer", name);
    const char *headers[] = {hdr, NULL};
    http_response r;
    assert_int_equal(request("POST", path, headers, b.data, b.len, &r), 200);
    rouse_buf_fini(&b);

    if (json_out) {
        check_json_reply(&r, n, seed);
        http_response_fini(&r);
        return;
    }
    assert_true(r.infer_json_len > 0);
    assert_int_equal(r.body.len, (size_t)r.infer_json_len + n * sizeof(float));
    char want[64];
    snprintf(want, sizeof(want), "\"binary_data_size\":%zu", n * sizeof(float));
    assert_non_null(strstr(r.body.data, want));
    const char *data = r.body.data + r.infer_json_len;
    for (size_t i = 0; i < n; i++) {
        float f;
        memcpy(&f, data + i * sizeof(f), sizeof(f));
        if (f != value_seeded(i, seed))
            fprintf(stderr, "binary y[%zu] = %g, want %g\n", i, f, value_seeded(i, seed));
        assert_true(f == value_seeded(i, seed));
    }
    http_response_fini(&r);
}

static void check_binary(size_t n)
{
    check_binary_to("echo", n, 0, false);
}

/* Sends n floats as JSON and reads them back from a JSON reply. */
static void check_json(size_t n)
{
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_appendf(&b,
                      "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[%zu],"
                      "\"data\":[",
                      n);
    for (size_t i = 0; i < n; i++)
        rouse_buf_appendf(&b, "%s%.9g", i ? "," : "", value_at(i));
    rouse_buf_append_str(&b, "]}]}");
    http_response r;
    assert_int_equal(request("POST", "/v2/models/echo/infer", NULL, b.data, b.len, &r), 200);
    rouse_buf_fini(&b);
    check_json_reply(&r, n, 0);
    http_response_fini(&r);
}

static void test_small_and_large_replies(void **state)
{
    (void)state;
    deploy_identity("echo", "");
    /* 10 floats: replies far below 64 KiB; 40000 floats: 160000 bytes of
     * binary data, and more as JSON. */
    check_binary(10);
    check_json(10);
    check_binary(40000);
    check_json(40000);
    check_binary(10); /* the small path still works after a large reply */
}

/* The region grows for a body, then for a reply that did not fit (that one
 * came back in a memfd of its own), and requests past its cap go in memfds
 * of their own; small requests work after each step. */
static void test_region_growth_and_cap(void **state)
{
    (void)state;
    /* 1.6 MB of binary body: past the first 1 MiB region. */
    check_binary_to("echo", 400000, 1, false);
    check_binary(10);
    /* The same floats answered as JSON text: about 2.4 MB of reply, more
     * than the 2 MiB region the body fitted in; the next one fits. */
    check_binary_to("echo", 400000, 2, true);
    check_binary_to("echo", 400000, 3, true);
    check_binary(10);
    /* 36 MB: past the 32 MiB cap, body and reply in memfds of their own. */
    check_binary_to("echo", 9u << 20, 4, false);
    check_binary(10);
    check_json(10);
}

/* Many requests in a row through one instance, sizes changing each time:
 * every reply is the request's own, never a neighbour's leftovers. */
static void test_many_requests_one_instance(void **state)
{
    (void)state;
    deploy_identity("seq", "\"scaling\":{\"max\":1}");
    static const size_t sizes[] = {1, 10, 1000, 70000, 3, 300000, 17};
    for (unsigned k = 0; k < 300; k++) {
        size_t n = sizes[k % (sizeof(sizes) / sizeof(sizes[0]))];
        check_binary_to("seq", n, k, k % 5 == 4);
    }
}

typedef struct client_arg {
    unsigned id;
} client_arg;

static void *client_main(void *p)
{
    const client_arg *c = p;
    for (unsigned k = 0; k < 40; k++)
        check_binary_to("conc", 100 + c->id * 7 + k, c->id * 1000 + k, k % 3 == 0);
    return NULL;
}

/* One instance taking four requests at a time: one holds the region, the
 * others travel in memfds; all answers are right. */
static void test_concurrency_beyond_the_region(void **state)
{
    (void)state;
    deploy_identity("conc", "\"scaling\":{\"max\":1,\"concurrency\":4}");
    pthread_t th[4];
    client_arg args[4];
    for (unsigned i = 0; i < 4; i++) {
        args[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, client_main, &args[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
}

static int group_setup(void **state)
{
    (void)state;
    const char *rouse = getenv("ROUSE");
    if (!rouse) {
        fprintf(stderr, "ROUSE must be set\n");
        return -1;
    }
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-replies-test-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_data, sizeof(g_data), "%s/data", g_dir);
    return serve_proc_start(&g_srv, rouse, g_data, g_serve_args);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = serve_proc_stop(&g_srv);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 && rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_and_large_replies),
        cmocka_unit_test(test_region_growth_and_cap),
        cmocka_unit_test(test_many_requests_one_instance),
        cmocka_unit_test(test_concurrency_beyond_the_region),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
