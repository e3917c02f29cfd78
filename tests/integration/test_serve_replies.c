/*
 * Integration test of inference replies on both sides of the size at which
 * serve stops copying an instance's reply into memory and sends it from the
 * instance's shared buffer instead (64 KiB): an Identity model with a
 * dynamic length answers 10 and 40000 floats, as binary and as JSON, and
 * every reply must carry exactly the request's values.
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

/* Deploys function "echo": y = Identity(x), x a float vector of any length. */
static void deploy_identity(void)
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
    char body[256];
    snprintf(body, sizeof(body), "{\"model\":\"%s\"}", json_as_string(json_get(v, "digest")));
    rouse_arena_fini(&a);
    http_response_fini(&r);
    assert_int_equal(request("PUT", "/v1/functions/echo", NULL, body, strlen(body), &r), 201);
    http_response_fini(&r);
}

/* Values exactly representable in both float and %.9g text. */
static float value_at(size_t i)
{
    return (float)((int)(i % 1000) - 500) / 8.0f;
}

/* Sends n floats as binary data and asks for a binary output. */
static void check_binary(size_t n)
{
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_appendf(&b,
                      "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[%zu],"
                      "\"parameters\":{\"binary_data_size\":%zu}}],"
                      "\"parameters\":{\"binary_data_output\":true}}",
                      n, n * sizeof(float));
    size_t json_len = b.len;
    for (size_t i = 0; i < n; i++) {
        float f = value_at(i);
        rouse_buf_append(&b, &f, sizeof(f));
    }
    char hdr[64];
    snprintf(hdr, sizeof(hdr), "Inference-Header-Content-Length: %zu", json_len);
    const char *headers[] = {hdr, NULL};
    http_response r;
    assert_int_equal(request("POST", "/v2/models/echo/infer", headers, b.data, b.len, &r), 200);
    rouse_buf_fini(&b);

    assert_true(r.infer_json_len > 0);
    assert_int_equal(r.body.len, (size_t)r.infer_json_len + n * sizeof(float));
    char want[64];
    snprintf(want, sizeof(want), "\"binary_data_size\":%zu", n * sizeof(float));
    assert_non_null(strstr(r.body.data, want));
    const char *data = r.body.data + r.infer_json_len;
    for (size_t i = 0; i < n; i++) {
        float f;
        memcpy(&f, data + i * sizeof(f), sizeof(f));
        if (f != value_at(i)) fprintf(stderr, "binary y[%zu] = %g, want %g\n", i, f, value_at(i));
        assert_true(f == value_at(i));
    }
    http_response_fini(&r);
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

    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v = NULL;
    rouse_errbuf eb;
    assert_int_equal(json_parse(r.body.data, r.body.len, &a, &v, &eb), 0);
    const json_value *outs = json_get(v, "outputs");
    assert_non_null(outs);
    assert_int_equal(outs->u.arr.n, 1);
    const json_value *data = json_get(outs->u.arr.items[0], "data");
    assert_non_null(data);
    assert_int_equal(data->u.arr.n, n);
    for (size_t i = 0; i < n; i++) {
        double d;
        assert_true(json_as_double(data->u.arr.items[i], &d));
        assert_true((float)d == value_at(i));
    }
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

static void test_small_and_large_replies(void **state)
{
    (void)state;
    deploy_identity();
    /* 10 floats: replies far below 64 KiB; 40000 floats: 160000 bytes of
     * binary data, and more as JSON. */
    check_binary(10);
    check_json(10);
    check_binary(40000);
    check_json(40000);
    check_binary(10); /* the small path still works after a large reply */
}

static int group_setup(void **state)
{
    (void)state;
    const char *rouse = getenv("ROUSE");
    if (!rouse) {
        fprintf(stderr, "ROUSE must be set\n");
        return -1;
    }
    snprintf(g_dir, sizeof(g_dir), "/tmp/rouse-replies-test-XXXXXX");
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
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
