/*
 * Integration tests of `rouse serve`: the real daemon on a free loopback
 * port with a temporary data directory, driven over HTTP. Covers deploy and
 * inference (JSON and binary, outputs against references), versions,
 * rollback, weighted aliases, concurrency, every error the API documents (docs/architecture.md),
 * timeouts and crashed instances, graceful SIGTERM and SIGKILL durability.
 *
 * Environment: ROUSE (the binary), DIGITS (examples/digits), MODELS
 * (../shared/models; the tests of its models skip when it is absent).
 * The tests run in order and share one daemon and its state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/http_client.h"
#include "cli/tensor_compare.h"
#include "cli/tensor_file.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/sha256.h"
#include "fn_deploy.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define BODY_LIMIT "1048576"
#define TIMEOUT_MS 120000

static const char *g_rouse, *g_digits, *g_models;
static char g_dir[256], g_data[300];
static serve_proc g_srv;
static char g_digits_digest[80];

static const char *const g_serve_args[] = {"--max-body-bytes", BODY_LIMIT, "--log-level", "warn",
                                           "--grace-ms",       "30000",    NULL};

/* --- utilities ------------------------------------------------------------------ */

static int req(const char *method, const char *path, const char *const *headers, const void *body,
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

static int req_str(const char *method, const char *path, const char *body, http_response *r)
{
    return req(method, path, NULL, body, body ? strlen(body) : 0, r);
}

/* Asserts the status and that the body is JSON (an error carries "error"). */
static void expect(http_response *r, int status, const char *needle)
{
    if (r->status != status || (needle && !strstr(r->body.data, needle)))
        fprintf(stderr, "got %d %s (wanted %d with '%s')\n", r->status, r->body.data, status,
                needle ? needle : "");
    assert_int_equal(r->status, status);
    assert_non_null(strstr(r->content_type, "application/"));
    if (needle) assert_non_null(strstr(r->body.data, needle));
    if (status >= 400) assert_non_null(strstr(r->body.data, "\"error\""));
}

static json_value *parse(rouse_arena *a, const http_response *r, size_t len)
{
    json_value *v = NULL;
    rouse_errbuf eb;
    assert_int_equal(json_parse(r->body.data, len ? len : r->body.len, a, &v, &eb), 0);
    return v;
}

static void slurp(const char *path, uint8_t **buf, size_t *len)
{
    rouse_errbuf eb;
    int rc = cli_file_slurp(path, buf, len, &eb);
    if (rc < 0) fprintf(stderr, "%s\n", eb.msg);
    assert_int_equal(rc, 0);
}

/* Uploads a file as a blob; returns its digest in out. */
static void upload(const char *path, char *out)
{
    uint8_t *buf;
    size_t len;
    slurp(path, &buf, &len);
    http_response r;
    expect((req("POST", "/v1/blobs", NULL, buf, len, &r), &r), 201, "sha256:");
    rouse_arena a;
    rouse_arena_init(&a, 0);
    snprintf(out, 80, "%s", json_as_string(json_get(parse(&a, &r, 0), "digest")));
    rouse_arena_fini(&a);
    http_response_fini(&r);
    free(buf);
}

/* PUT /v1/functions/NAME with a config; returns the status, version in *v. */
static int deploy(const char *name, const char *digest, const char *extra, int64_t *v)
{
    char path[128], body[512];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    snprintf(body, sizeof(body), "{\"model\":\"%s\"%s%s}", digest, extra ? "," : "",
             extra ? extra : "");
    http_response r;
    int st = req_str("PUT", path, body, &r);
    if (st < 300 && v) {
        rouse_arena a;
        rouse_arena_init(&a, 0);
        assert_true(json_as_int64(json_get(parse(&a, &r, 0), "version"), v));
        rouse_arena_fini(&a);
    } else if (st >= 300) {
        fprintf(stderr, "deploy %s: %d %s\n", name, st, r.body.data);
    }
    http_response_fini(&r);
    return st;
}

/* A JSON OIP request for one float tensor. */
static void json_request(rouse_buf *b, const char *name, const cli_tensor *t, const char *id)
{
    rouse_buf_clear(b);
    rouse_buf_append_str(b, "{");
    if (id) rouse_buf_appendf(b, "\"id\":\"%s\",", id);
    rouse_buf_appendf(b, "\"inputs\":[{\"name\":\"%s\",\"datatype\":\"FP32\",\"shape\":[", name);
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        rouse_buf_appendf(b, "%s%" PRId64, i ? "," : "", t->shape[i]);
        n *= t->shape[i];
    }
    rouse_buf_append_str(b, "],\"data\":[");
    const float *d = t->data;
    for (int64_t i = 0; i < n; i++)
        rouse_buf_appendf(b, "%s%.9g", i ? "," : "", d[i]);
    rouse_buf_append_str(b, "]}]}");
}

/* A binary-extension request: JSON header then the raw tensor; every output binary. */
static void binary_request(rouse_buf *b, const char *name, const cli_tensor *t, size_t *json_len)
{
    rouse_buf_clear(b);
    rouse_buf_appendf(b, "{\"inputs\":[{\"name\":\"%s\",\"datatype\":\"FP32\",\"shape\":[", name);
    for (int i = 0; i < t->rank; i++)
        rouse_buf_appendf(b, "%s%" PRId64, i ? "," : "", t->shape[i]);
    rouse_buf_appendf(b,
                      "],\"parameters\":{\"binary_data_size\":%zu}}],"
                      "\"parameters\":{\"binary_data_output\":true}}",
                      t->nbytes);
    *json_len = b->len;
    rouse_buf_append(b, t->data, t->nbytes);
}

/* Checks output `name` of a response (JSON or binary) against ref. */
static void check_output(const http_response *r, const cli_tensor *ref)
{
    rouse_arena a;
    rouse_arena_init(&a, 0);
    size_t json_len = r->infer_json_len >= 0 ? (size_t)r->infer_json_len : r->body.len;
    json_value *root = parse(&a, r, json_len);
    const json_value *outs = json_get(root, "outputs");
    assert_non_null(outs);
    size_t offset = json_len;
    bool found = false;
    for (size_t i = 0; i < outs->u.arr.n; i++) {
        const json_value *o = outs->u.arr.items[i];
        const json_value *params = json_get(o, "parameters");
        int64_t bsize = -1;
        if (params) json_as_int64(json_get(params, "binary_data_size"), &bsize);
        const char *name = json_as_string(json_get(o, "name"));
        if (strcmp(name, ref->name) != 0) {
            if (bsize > 0) offset += (size_t)bsize;
            continue;
        }
        found = true;
        assert_string_equal(json_as_string(json_get(o, "datatype")), "FP32");
        rouse_tensor got = {.name = name, .dtype = ROUSE_DT_FLOAT};
        const json_value *shape = json_get(o, "shape");
        got.rank = (int)shape->u.arr.n;
        int64_t n = 1;
        for (int d = 0; d < got.rank; d++) {
            assert_true(json_as_int64(shape->u.arr.items[d], &got.shape[d]));
            n *= got.shape[d];
        }
        float *vals = rouse_arena_alloc(&a, (size_t)n * sizeof(float) + 1, 64);
        if (bsize >= 0) {
            assert_int_equal(bsize, n * 4);
            assert_true(offset + (size_t)bsize <= r->body.len);
            memcpy(vals, r->body.data + offset, (size_t)bsize);
        } else {
            const json_value *data = json_get(o, "data");
            assert_int_equal(data->u.arr.n, n);
            for (int64_t k = 0; k < n; k++) {
                double x;
                assert_true(json_as_double(data->u.arr.items[k], &x));
                vals[k] = (float)x;
            }
        }
        got.data = vals;
        got.nbytes = (size_t)n * 4;
        rouse_tensor want = cli_tensor_view(ref, NULL);
        cli_compare_result res;
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        int rc = cli_tensor_compare(&got, &want, CLI_TOL_DEFAULT, &res, &eb);
        if (rc != 0) fprintf(stderr, "output %s: %s\n", name, eb.msg);
        assert_int_equal(rc, 0);
    }
    assert_true(found);
    rouse_arena_fini(&a);
}

static void read_tensor(const char *path, cli_tensor *t)
{
    rouse_errbuf eb;
    int rc = cli_tensor_read_file(path, t, &eb);
    if (rc < 0) fprintf(stderr, "%s\n", eb.msg);
    assert_int_equal(rc, 0);
}

/* Runs every test_data_set_K of dir through function `fn` (input `in`),
 * binary always, JSON too when json is set. */
static void check_sets(const char *dir, const char *fn, const char *in, int n_outputs, bool json)
{
    char path[512], url[128];
    snprintf(url, sizeof(url), "/v2/models/%s/infer", fn);
    for (int set = 0;; set++) {
        snprintf(path, sizeof(path), "%s/test_data_set_%d/input_0.pb", dir, set);
        if (access(path, R_OK) != 0) {
            assert_true(set > 0);
            break;
        }
        cli_tensor input, refs[4];
        memset(refs, 0, sizeof(refs));
        read_tensor(path, &input);
        for (int o = 0; o < n_outputs; o++) {
            snprintf(path, sizeof(path), "%s/test_data_set_%d/output_%d.pb", dir, set, o);
            read_tensor(path, &refs[o]);
        }
        rouse_buf body;
        rouse_buf_init(&body);
        size_t jl;
        binary_request(&body, in, &input, &jl);
        char hdr[80];
        snprintf(hdr, sizeof(hdr), "Inference-Header-Content-Length: %zu", jl);
        const char *headers[] = {hdr, "Content-Type: application/octet-stream", NULL};
        http_response r;
        expect((req("POST", url, headers, body.data, body.len, &r), &r), 200, NULL);
        assert_true(r.infer_json_len > 0);
        for (int o = 0; o < n_outputs; o++)
            check_output(&r, &refs[o]);
        http_response_fini(&r);
        if (json) {
            json_request(&body, in, &input, NULL);
            expect((req("POST", url, NULL, body.data, body.len, &r), &r), 200, NULL);
            assert_int_equal(r.infer_json_len, -1);
            for (int o = 0; o < n_outputs; o++)
                check_output(&r, &refs[o]);
            http_response_fini(&r);
        }
        rouse_buf_fini(&body);
        cli_tensor_fini(&input);
        for (int o = 0; o < n_outputs; o++)
            cli_tensor_fini(&refs[o]);
    }
}

static char *sample(int digit)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/samples/digit-%d.json", g_digits, digit);
    uint8_t *buf;
    size_t len;
    slurp(path, &buf, &len);
    char *s = malloc(len + 1);
    memcpy(s, buf, len);
    s[len] = '\0';
    free(buf);
    return s;
}

static int64_t infer_digit(const char *url, int digit, int expect_status)
{
    char *body = sample(digit);
    http_response r;
    req_str("POST", url, body, &r);
    expect(&r, expect_status, NULL);
    if (expect_status == 200) assert_int_equal(test_logits_argmax(&r), digit);
    int64_t v = r.rouse_version;
    http_response_fini(&r);
    free(body);
    return v;
}

#define OTHER_BODY                                                                                 \
    "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"FP32\",\"data\":[1]}]}"

/* --- setup --------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    g_rouse = getenv("ROUSE");
    g_digits = getenv("DIGITS");
    g_models = getenv("MODELS");
    if (!g_rouse || !g_digits) {
        fprintf(stderr, "ROUSE and DIGITS must be set\n");
        return -1;
    }
    /* Under AddressSanitizer, a SIGSEGV sent to an instance would become
     * ASan's abort (SIGABRT); the crash test wants the real signal. The
     * daemon and its instances inherit this environment. */
    const char *asan = getenv("ASAN_OPTIONS");
    if (asan) {
        static char opts[512];
        snprintf(opts, sizeof(opts), "%s:handle_segv=0", asan);
        setenv("ASAN_OPTIONS", opts, 1);
    }
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-serve-test-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_data, sizeof(g_data), "%s/data", g_dir);
    return serve_proc_start(&g_srv, g_rouse, g_data, g_serve_args);
}

static int group_teardown(void **state)
{
    (void)state;
    serve_proc_kill9(&g_srv);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* --- tests --------------------------------------------------------------------- */

static void test_health(void **state)
{
    (void)state;
    http_response r;
    expect((req_str("GET", "/v2/health/live", NULL, &r), &r), 200, NULL);
    http_response_fini(&r);
    expect((req_str("GET", "/v2/health/ready", NULL, &r), &r), 200, NULL);
    http_response_fini(&r);
    expect((req_str("GET", "/v2", NULL, &r), &r), 200, "\"binary_tensor_data\"");
    http_response_fini(&r);
    expect((req_str("GET", "/v2/nothing/here", NULL, &r), &r), 404, NULL);
    http_response_fini(&r);
    expect((req_str("DELETE", "/v2/health/live", NULL, &r), &r), 405, NULL);
    http_response_fini(&r);
}

static void test_deploy_and_infer_digits(void **state)
{
    (void)state;
    char model[512], head[200];
    snprintf(model, sizeof(model), "%s/model.onnx", g_digits);
    uint8_t *buf;
    size_t len;
    slurp(model, &buf, &len);
    uint8_t d[32];
    char hex[65];
    rouse_sha256_digest(buf, len, d);
    rouse_sha256_hex(d, hex);
    free(buf);
    snprintf(head, sizeof(head), "/v1/blobs/sha256:%s", hex);
    http_response r;
    assert_int_equal(req_str("HEAD", head, NULL, &r), 404);
    http_response_fini(&r);
    upload(model, g_digits_digest);
    assert_string_equal(g_digits_digest + 7, hex);
    assert_int_equal(req_str("HEAD", head, NULL, &r), 200);
    http_response_fini(&r);
    /* Uploading again is idempotent. */
    upload(model, g_digits_digest);

    int64_t v;
    assert_int_equal(deploy("digits", g_digits_digest, NULL, &v), 201);
    assert_int_equal(v, 1);
    assert_int_equal(deploy("digits", g_digits_digest, NULL, &v), 200); /* nothing changed */
    assert_int_equal(v, 1);
    for (int digit = 0; digit < 10; digit++)
        assert_int_equal(infer_digit("/v2/models/digits/infer", digit, 200), 1);
    /* The ten samples as one batch, binary and JSON, against numpy's outputs. */
    check_sets(g_digits, "digits", "pixels", 2, true);
}

static void test_request_id_and_output_selection(void **state)
{
    (void)state;
    const char *body =
        "{\"id\":\"req-42\",\"inputs\":[{\"name\":\"pixels\",\"shape\":[1,64],"
        "\"datatype\":\"FP32\",\"data\":[[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
        "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
        "0,0,0,0,0,0]]}],\"outputs\":[{\"name\":\"probabilities\"}]}";
    http_response r;
    expect((req_str("POST", "/v2/models/digits/infer", body, &r), &r), 200, "\"req-42\"");
    assert_non_null(strstr(r.body.data, "\"probabilities\""));
    assert_null(strstr(r.body.data, "\"logits\""));
    assert_int_equal(r.rouse_version, 1);
    http_response_fini(&r);
}

/* How many instances function fn has (any state). */
static int instance_count(const char *fn)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/functions/%s", fn);
    http_response r;
    assert_int_equal(req_str("GET", path, NULL, &r), 200);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    const json_value *inst = json_get(parse(&a, &r, 0), "instances");
    assert_non_null(inst);
    int n = (int)inst->u.arr.n;
    rouse_arena_fini(&a);
    http_response_fini(&r);
    return n;
}

/* Metadata comes from an instance once, then from memory: a function
 * scaled to zero answers it without starting one. */
static void test_model_metadata(void **state)
{
    (void)state;
    http_response r;
    expect((req_str("GET", "/v2/models/digits", NULL, &r), &r), 200, "\"pixels\"");
    assert_non_null(strstr(r.body.data, "\"probabilities\""));
    assert_int_equal(r.rouse_version, 1);
    http_response first = r;
    expect((req_str("POST", "/v1/functions/digits/scale-to-zero", "", &r), &r), 200, NULL);
    http_response_fini(&r);
    int tries = 0;
    while (instance_count("digits") > 0 && tries++ < 2000)
        usleep(5000);
    assert_int_equal(instance_count("digits"), 0);
    const char *paths[] = {"/v2/models/digits", "/v2/models/digits/versions/1"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        expect((req_str("GET", paths[i], NULL, &r), &r), 200, "\"pixels\"");
        assert_int_equal(r.body.len, first.body.len);
        assert_memory_equal(r.body.data, first.body.data, r.body.len);
        assert_int_equal(r.rouse_version, 1);
        http_response_fini(&r);
    }
    assert_int_equal(instance_count("digits"), 0);
    http_response_fini(&first);
    expect((req_str("GET", "/v2/models/digits/ready", NULL, &r), &r), 200, NULL);
    http_response_fini(&r);
    expect((req_str("GET", "/v2/models/nope/ready", NULL, &r), &r), 404, NULL);
    http_response_fini(&r);
    expect((req_str("GET", "/v2/models/nope", NULL, &r), &r), 404, NULL);
    http_response_fini(&r);
}

static void test_errors(void **state)
{
    (void)state;
    http_response r;
    const char *ok = OTHER_BODY;
    expect((req_str("POST", "/v2/models/nope/infer", ok, &r), &r), 404, "nope");
    http_response_fini(&r);
    expect((req_str("POST", "/v2/models/digits/versions/99/infer", ok, &r), &r), 404, NULL);
    http_response_fini(&r);
    expect((req_str("POST", "/v2/models/digits/infer", "{\"inputs\":[", &r), &r), 400, NULL);
    http_response_fini(&r);
    expect((req_str("POST", "/v2/models/digits/infer", "", &r), &r), 400, NULL);
    http_response_fini(&r);
    expect((req_str("POST", "/v2/models/digits/infer",
                    "{\"inputs\":[{\"name\":\"pixel\",\"shape\":[1,64],\"datatype\":\"FP32\","
                    "\"data\":[1]}]}",
                    &r),
            &r),
           400, "pixel");
    http_response_fini(&r);
    expect((req_str("POST", "/v2/models/digits/infer",
                    "{\"inputs\":[{\"name\":\"pixels\",\"shape\":[1,63],\"datatype\":\"FP32\","
                    "\"data\":[1]}]}",
                    &r),
            &r),
           400, "pixels");
    http_response_fini(&r);
    expect((req_str("POST", "/v2/models/digits/infer",
                    "{\"inputs\":[{\"name\":\"pixels\",\"shape\":[1,64],\"datatype\":\"INT32\","
                    "\"data\":[1]}]}",
                    &r),
            &r),
           400, "pixels");
    http_response_fini(&r);

    /* Over --max-body-bytes. */
    size_t big = (size_t)atol(BODY_LIMIT) + 4096;
    char *junk = calloc(1, big);
    memset(junk, ' ', big);
    expect((req("POST", "/v2/models/digits/infer", NULL, junk, big, &r), &r), 413, NULL);
    http_response_fini(&r);
    free(junk);

    /* Config errors name the field; unknown blobs and bad models are 400. */
    int64_t v;
    assert_int_equal(deploy("digits", g_digits_digest, "\"scaling\":{\"max\":0}", &v), 400);
    char bad[128];
    expect((req_str("PUT", "/v1/functions/digits", "{\"model\":\"sha256:abc\"}", &r), &r), 400,
           "model");
    http_response_fini(&r);
    expect((req_str("PUT", "/v1/functions/digits", "{\"model\":", &r), &r), 400, NULL);
    http_response_fini(&r);
    snprintf(bad, sizeof(bad), "{\"model\":\"sha256:%064d\"}", 0);
    expect((req_str("PUT", "/v1/functions/digits", bad, &r), &r), 400, "POST /v1/blobs");
    http_response_fini(&r);
    expect((req_str("PUT", "/v1/functions/Bad%20Name", "{}", &r), &r), 400, NULL);
    http_response_fini(&r);
    char path[400];
    snprintf(path, sizeof(path), "%s/garbage.onnx", g_dir);
    FILE *f = fopen(path, "wb");
    fputs("this is not an ONNX model at all", f);
    fclose(f);
    upload(path, bad);
    expect((req_str("PUT", "/v1/functions/broken",
                    (snprintf(path, sizeof(path), "{\"model\":\"%s\"}", bad), path), &r),
            &r),
           400, "cannot be loaded");
    http_response_fini(&r);
    expect((req_str("GET", "/v1/functions/broken", NULL, &r), &r), 404, NULL);
    http_response_fini(&r);
    /* serve is unharmed. */
    infer_digit("/v2/models/digits/infer", 7, 200);
}

static void test_versions_and_rollback(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(deploy("digits", g_digits_digest, "\"timeout_ms\":20000", &v), 201);
    assert_int_equal(v, 2);
    assert_int_equal(infer_digit("/v2/models/digits/infer", 3, 200), 2);
    assert_int_equal(infer_digit("/v2/models/digits/versions/1/infer", 3, 200), 1);
    assert_int_equal(infer_digit("/v2/models/digits/versions/2/infer", 3, 200), 2);
    http_response r;
    expect((req_str("POST", "/v1/functions/digits/rollback", NULL, &r), &r), 200, NULL);
    http_response_fini(&r);
    assert_int_equal(infer_digit("/v2/models/digits/infer", 4, 200), 1);
    expect((req_str("POST", "/v1/functions/digits/rollback", NULL, &r), &r), 409, NULL);
    http_response_fini(&r);
    expect((req_str("POST", "/v1/functions/nope/rollback", NULL, &r), &r), 404, NULL);
    http_response_fini(&r);
    /* Deploying the config of version 2 again moves "latest" forward. */
    assert_int_equal(deploy("digits", g_digits_digest, "\"timeout_ms\":20000", &v), 201);
    assert_true(v >= 2);
    expect((req_str("GET", "/v1/functions/digits", NULL, &r), &r), 200, "\"versions\"");
    http_response_fini(&r);
    expect((req_str("GET", "/v1/functions", NULL, &r), &r), 200, "\"digits\"");
    http_response_fini(&r);
}

static void test_alias_split(void **state)
{
    (void)state;
    http_response r;
    expect(
        (req_str("PUT", "/v1/functions/digits/aliases/latest",
                 "{\"routes\":[{\"version\":1,\"weight\":30},{\"version\":2,\"weight\":70}]}", &r),
         &r),
        200, NULL);
    http_response_fini(&r);
    expect((req_str("PUT", "/v1/functions/digits/aliases/canary", "{\"version\":2}", &r), &r), 200,
           NULL);
    http_response_fini(&r);
    expect((req_str("PUT", "/v1/functions/digits/aliases/canary", "{\"version\":77}", &r), &r), 404,
           NULL);
    http_response_fini(&r);
    expect((req_str("PUT", "/v1/functions/digits/aliases/canary", "{\"versio\":2}", &r), &r), 400,
           "versio");
    http_response_fini(&r);
    assert_int_equal(infer_digit("/v2/models/digits/versions/canary/infer", 5, 200), 2);

    char *body = sample(9);
    int n1 = 0, n2 = 0;
    const int calls = 1000;
    for (int i = 0; i < calls; i++) {
        req_str("POST", "/v2/models/digits/infer", body, &r);
        assert_int_equal(r.status, 200);
        if (r.rouse_version == 1) n1++;
        if (r.rouse_version == 2) n2++;
        http_response_fini(&r);
    }
    free(body);
    /* Binomial(1000, 0.3): sd 14.5; 5 sd either side. */
    fprintf(stderr, "split 30/70 over %d calls: v1 %d, v2 %d\n", calls, n1, n2);
    assert_int_equal(n1 + n2, calls);
    assert_true(n1 > 300 - 73 && n1 < 300 + 73);
}

typedef struct client_arg {
    int id;
    int ok;
} client_arg;

static void *client(void *p)
{
    client_arg *a = p;
    char *bodies[10];
    for (int d = 0; d < 10; d++)
        bodies[d] = sample(d);
    for (int i = 0; i < 10; i++) {
        int digit = (a->id + i) % 10;
        http_response r;
        http_response_init(&r);
        rouse_errbuf eb;
        if (http_request(&g_srv.target, "POST", "/v2/models/digits/versions/canary/infer", NULL,
                         bodies[digit], strlen(bodies[digit]), TIMEOUT_MS, &r, &eb) == 0 &&
            r.status == 200 && test_logits_argmax(&r) == digit)
            a->ok++;
        else
            fprintf(stderr, "client %d: status %d %s\n", a->id, r.status, r.body.data);
        http_response_fini(&r);
    }
    for (int d = 0; d < 10; d++)
        free(bodies[d]);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    (void)state;
    enum { N = 32 };
    pthread_t th[N];
    client_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (client_arg){.id = i};
        assert_int_equal(pthread_create(&th[i], NULL, client, &args[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
    }
    assert_int_equal(ok, N * 10);
}

static void test_shared_models(void **state)
{
    (void)state;
    char dir[512], model[600], digest[80];
    snprintf(dir, sizeof(dir), "%s/mnist_cnn", g_models ? g_models : "");
    if (!g_models || access(dir, R_OK) != 0) {
        fprintf(stderr, "skipped: ../shared/models not present\n");
        skip();
    }
    int64_t v;
    snprintf(model, sizeof(model), "%s/model.onnx", dir);
    upload(model, digest);
    assert_int_equal(deploy("mnist", digest, NULL, &v), 201);
    check_sets(dir, "mnist", "input", 1, true);
    snprintf(dir, sizeof(dir), "%s/resnet18", g_models);
    snprintf(model, sizeof(model), "%s/model.onnx", dir);
    upload(model, digest);
    assert_int_equal(deploy("resnet18", digest, NULL, &v), 201);
    check_sets(dir, "resnet18", "input", 1, false);
}

/* The pid of function fn's instance in `state` ("idle", "busy"); waits
 * (bounded) for one to be in that state. */
static int instance_pid(const char *fn, const char *want)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/functions/%s", fn);
    for (int tries = 0; tries < 2000; tries++) {
        http_response r;
        req_str("GET", path, NULL, &r);
        rouse_arena a;
        rouse_arena_init(&a, 0);
        const json_value *inst = json_get(parse(&a, &r, 0), "instances");
        int pid = 0;
        for (size_t i = 0; inst && i < inst->u.arr.n; i++) {
            const char *st = json_as_string(json_get(inst->u.arr.items[i], "state"));
            int64_t p;
            if (st && strcmp(st, want) == 0 &&
                json_as_int64(json_get(inst->u.arr.items[i], "pid"), &p))
                pid = (int)p;
        }
        rouse_arena_fini(&a);
        http_response_fini(&r);
        if (pid > 0) return pid;
        usleep(5000);
    }
    return -1;
}

typedef struct bg_call {
    const char *url;
    int digit;
    int status;
    char body[1024];
    pthread_t th;
} bg_call;

static void *bg_main(void *p)
{
    bg_call *a = p;
    char *body = sample(a->digit);
    http_response r;
    http_response_init(&r);
    rouse_errbuf eb;
    if (http_request(&g_srv.target, "POST", a->url, NULL, body, strlen(body), TIMEOUT_MS, &r,
                     &eb) == 0) {
        a->status = r.status;
        snprintf(a->body, sizeof(a->body), "%s", r.body.data);
    }
    http_response_fini(&r);
    free(body);
    return NULL;
}

/* Warms function fn, freezes its instance (SIGSTOP: a request that never
 * ends, whatever the model) and sends a request that lands on it. Returns
 * the frozen pid once serve reports it busy. */
static int freeze_and_call(const char *fn, bg_call *call)
{
    char url[128];
    snprintf(url, sizeof(url), "/v2/models/%s/infer", fn);
    infer_digit(url, 6, 200);
    int pid = instance_pid(fn, "idle");
    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    call->url = strdup(url);
    call->digit = 6;
    assert_int_equal(pthread_create(&call->th, NULL, bg_main, call), 0);
    assert_int_equal(instance_pid(fn, "busy"), pid);
    return pid;
}

static void test_timeout(void **state)
{
    (void)state;
    int64_t v;
    /* timeout_ms also bounds a request's wait for an instance to start,
     * which on a loaded machine (or under sanitizers) can take longer than
     * 300 ms: min keeps one ready, so no request here waits for a start. */
    assert_int_equal(
        deploy("hang", g_digits_digest, "\"timeout_ms\":300,\"scaling\":{\"max\":1,\"min\":1}", &v),
        201);
    assert_true(instance_pid("hang", "idle") > 0);
    bg_call call = {0};
    int pid = freeze_and_call("hang", &call);
    pthread_join(call.th, NULL);
    free((void *)call.url);
    if (call.status != 504) fprintf(stderr, "timeout: %d %s\n", call.status, call.body);
    assert_int_equal(call.status, 504);
    assert_non_null(strstr(call.body, "timeout_ms"));
    /* The hung instance was killed (it is never idle again); min starts a
     * fresh one, which serves. */
    int pid2 = instance_pid("hang", "idle");
    assert_true(pid2 > 0 && pid2 != pid);
    infer_digit("/v2/models/hang/infer", 4, 200);
}

static void test_crash_and_recovery(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(deploy("crashy", g_digits_digest, "\"scaling\":{\"max\":1}", &v), 201);
    bg_call call = {0};
    int pid = freeze_and_call("crashy", &call);
    kill(pid, SIGSEGV);
    kill(pid, SIGCONT);
    pthread_join(call.th, NULL);
    free((void *)call.url);
    if (call.status != 500) fprintf(stderr, "crash: %d %s\n", call.status, call.body);
    assert_int_equal(call.status, 500);
    assert_non_null(strstr(call.body, "instance crashed (signal 11)"));
    infer_digit("/v2/models/crashy/infer", 5, 200);
}

static void test_delete(void **state)
{
    (void)state;
    http_response r;
    int64_t v;
    assert_int_equal(deploy("temp", g_digits_digest, NULL, &v), 201);
    infer_digit("/v2/models/temp/infer", 2, 200);
    expect((req_str("DELETE", "/v1/functions/temp", NULL, &r), &r), 200, NULL);
    http_response_fini(&r);
    expect((req_str("DELETE", "/v1/functions/temp", NULL, &r), &r), 404, NULL);
    http_response_fini(&r);
    infer_digit("/v2/models/temp/infer", 2, 404);
}

static void test_sigterm_finishes_inflight(void **state)
{
    (void)state;
    bg_call call = {0};
    int pid = freeze_and_call("crashy", &call);
    assert_int_equal(kill(g_srv.pid, SIGTERM), 0);
    /* serve waits for the request it accepted (the grace period is 30 s). */
    usleep(300000);
    int st;
    assert_int_equal(waitpid(g_srv.pid, &st, WNOHANG), 0);
    kill(pid, SIGCONT);
    pthread_join(call.th, NULL);
    free((void *)call.url);
    if (call.status != 200) fprintf(stderr, "sigterm: %d %s\n", call.status, call.body);
    assert_int_equal(call.status, 200);
    assert_int_equal(serve_proc_stop(&g_srv), 0);
    assert_int_equal(serve_proc_start(&g_srv, g_rouse, g_data, g_serve_args), 0);
}

static void test_sigkill_durability(void **state)
{
    (void)state;
    serve_proc_kill9(&g_srv);
    assert_int_equal(serve_proc_start(&g_srv, g_rouse, g_data, g_serve_args), 0);
    http_response r;
    char head[120];
    snprintf(head, sizeof(head), "/v1/blobs/%s", g_digits_digest);
    assert_int_equal(req_str("HEAD", head, NULL, &r), 200);
    http_response_fini(&r);
    expect((req_str("GET", "/v1/functions/digits", NULL, &r), &r), 200, "\"canary\"");
    http_response_fini(&r);
    assert_int_equal(infer_digit("/v2/models/digits/versions/canary/infer", 8, 200), 2);
    assert_int_equal(infer_digit("/v2/models/digits/versions/1/infer", 8, 200), 1);
    infer_digit("/v2/models/temp/infer", 1, 404);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_deploy_and_infer_digits),
        cmocka_unit_test(test_request_id_and_output_selection),
        cmocka_unit_test(test_model_metadata),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_versions_and_rollback),
        cmocka_unit_test(test_alias_split),
        cmocka_unit_test(test_concurrent_clients),
        cmocka_unit_test(test_shared_models),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_crash_and_recovery),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_sigterm_finishes_inflight),
        cmocka_unit_test(test_sigkill_durability),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
