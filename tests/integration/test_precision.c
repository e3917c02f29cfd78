/*
 * Integration tests of a function's precision (docs/architecture.md,
 * "Functions"): the digits example deployed at fp32 and at bf16 on the real
 * daemon answers every one of its ten samples with the same class at both;
 * each precision has its own plan file, so neither takes the other's place;
 * GET /v1/functions/{name} shows the precision; a precision deploy cannot
 * compile is a 400 naming the field; deleting the functions removes both
 * plans with their blob.
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

#include "cli/http_client.h"
#include "cli/tensor_file.h"
#include "common/arena.h"
#include "common/json.h"
#include "fn_deploy.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define TIMEOUT_MS 120000
#define WAIT_TRIES 4000 /* x 5 ms: 20 s at most for any awaited state */

static const char *g_rouse, *g_digits;
static char g_dir[256], g_data[300], g_digest[80];
static serve_proc g_srv;
static char *g_samples[10];

static const char *const g_serve_args[] = {"--blob-grace-ms", "0", "--log-level", "warn", NULL};

static int request(const char *method, const char *path, const char *body, http_response *r)
{
    http_response_init(r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = http_request(&g_srv.target, method, path, NULL, body, body ? strlen(body) : 0,
                          TIMEOUT_MS, r, &eb);
    if (rc < 0) fprintf(stderr, "%s %s: %s\n", method, path, eb.msg);
    return rc < 0 ? -1 : r->status;
}

/* PUT /v1/functions/name with the digits model and `extra` config fields;
 * the status, and the answer in r (caller frees). */
static int deploy(const char *name, const char *extra, http_response *r)
{
    char path[128], body[512];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    snprintf(body, sizeof(body), "{\"model\":\"%s\"%s%s}", g_digest, extra[0] ? "," : "", extra);
    return request("PUT", path, body, r);
}

/* The class fn answers for sample d. */
static int classify(const char *fn, int d)
{
    char url[128];
    snprintf(url, sizeof(url), "/v2/models/%s/infer", fn);
    http_response r;
    int st = request("POST", url, g_samples[d], &r);
    if (st != 200) fprintf(stderr, "%s digit %d: %d %s\n", fn, d, st, r.body.data);
    assert_int_equal(st, 200);
    int c = test_logits_argmax(&r);
    http_response_fini(&r);
    return c;
}

static bool plan_exists(const char *suffix)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/plans/%s%s", g_data, g_digest + 7, suffix);
    struct stat st;
    return stat(path, &st) == 0;
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
    if (test_digit_samples(g_digits, g_samples) < 0) return -1;
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-precision-test-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_data, sizeof(g_data), "%s/data", g_dir);
    if (serve_proc_start(&g_srv, g_rouse, g_data, g_serve_args) < 0) return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    serve_proc_kill9(&g_srv);
    for (int d = 0; d < 10; d++)
        free(g_samples[d]);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Uploads the file at path; its digest goes to digest[80]. */
static void upload_file(const char *path, char *digest)
{
    uint8_t *buf;
    size_t len;
    rouse_errbuf eb;
    assert_int_equal(cli_file_slurp(path, &buf, &len, &eb), 0);
    http_response r;
    http_response_init(&r);
    int rc = http_request(&g_srv.target, "POST", "/v1/blobs", NULL, buf, len, TIMEOUT_MS, &r, &eb);
    free(buf);
    assert_int_equal(rc, 0);
    assert_true(r.status == 201 || r.status == 200);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    assert_int_equal(json_parse(r.body.data, r.body.len, &a, &v, NULL), 0);
    snprintf(digest, 80, "%s", json_as_string(json_get(v, "digest")));
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

/* Uploads the digits model (again: the previous test's delete took it). */
static void upload(void)
{
    char model[512];
    snprintf(model, sizeof(model), "%s/model.onnx", g_digits);
    upload_file(model, g_digest);
}

/* Whether plans/ holds a file whose name starts with the model's hex and
 * then `suffix`. */
static bool plan_with_prefix(const char *suffix)
{
    char dir[400], prefix[160];
    snprintf(dir, sizeof(dir), "%s/plans", g_data);
    snprintf(prefix, sizeof(prefix), "%s%s", g_digest + 7, suffix);
    DIR *d = opendir(dir);
    if (!d) return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL)
        found = strncmp(e->d_name, prefix, strlen(prefix)) == 0 && !strstr(e->d_name, ".tmp");
    closedir(d);
    return found;
}

/* The accuracy figures of a JSON answer: the deploy answer's "accuracy",
 * or with version > 0 that version's in GET /v1/functions/{name}. Checks
 * their shape and precision, prints them and returns output 0's top-1
 * agreement (-1 when not classifier-shaped) and its max abs error. */
static void check_accuracy(const http_response *r, int64_t version, const char *precision,
                           const char *source, double *top1, double *max_abs)
{
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    assert_int_equal(json_parse(r->body.data, r->body.len, &a, &v, NULL), 0);
    const json_value *acc = NULL;
    if (version > 0) {
        const json_value *vs = json_get(v, "versions");
        assert_non_null(vs);
        assert_int_equal(vs->type, JSON_ARRAY);
        for (size_t i = 0; i < vs->u.arr.n; i++) {
            int64_t n;
            if (json_as_int64(json_get(vs->u.arr.items[i], "version"), &n) && n == version)
                acc = json_get(vs->u.arr.items[i], "accuracy");
        }
    } else {
        acc = json_get(v, "accuracy");
    }
    if (!acc || acc->type != JSON_OBJECT) fprintf(stderr, "no accuracy in: %s\n", r->body.data);
    assert_non_null(acc);
    assert_int_equal(acc->type, JSON_OBJECT);
    assert_string_equal(json_as_string(json_get(acc, "precision")), precision);
    assert_string_equal(json_as_string(json_get(acc, "source")), source);
    const json_value *outs = json_get(acc, "outputs"), *kept = json_get(acc, "kept_fp32");
    assert_non_null(outs);
    assert_non_null(kept);
    assert_int_equal(kept->type, JSON_ARRAY);
    *top1 = -1;
    *max_abs = 0;
    if (outs->u.arr.n) {
        const json_value *o = outs->u.arr.items[0];
        assert_string_equal(json_as_string(json_get(o, "name")), "logits");
        json_as_double(json_get(o, "top1_agreement"), top1);
        assert_true(json_as_double(json_get(o, "max_abs_error"), max_abs));
        int64_t n;
        assert_true(json_as_int64(json_get(acc, "samples"), &n) && n > 0);
    }
    printf("%s accuracy (%s): top-1 agreement %.4f, max abs error %.4g, %zu layers kept fp32\n",
           version > 0 ? "GET" : "deploy", precision, *top1, *max_abs, kept->u.arr.n);
    rouse_arena_fini(&a);
}

/* --- tests ------------------------------------------------------------------------ */

/* fp32 and bf16 of one model side by side: the same class for every
 * sample (the label, at fp32), two plans, and the delete takes both. */
static void test_bf16_beside_fp32(void **state)
{
    (void)state;
    upload();
    http_response r;
    int st = deploy("d32", "", &r);
    if (st != 201) fprintf(stderr, "deploy d32: %d %s\n", st, r.body.data);
    assert_int_equal(st, 201);
    http_response_fini(&r);
    assert_true(plan_exists(".plan"));
    assert_false(plan_exists("-bf16.plan"));
    st = deploy("d16", "\"precision\":\"bf16\"", &r);
    if (st != 201) fprintf(stderr, "deploy d16: %d %s\n", st, r.body.data);
    assert_int_equal(st, 201);
    http_response_fini(&r);
    /* The deploy check compiled the bf16 plan beside the fp32 one. */
    assert_true(plan_exists(".plan"));
    assert_true(plan_exists("-bf16.plan"));

    assert_int_equal(request("GET", "/v1/functions/d16", NULL, &r), 200);
    assert_non_null(strstr(r.body.data, "\"precision\":\"bf16\""));
    http_response_fini(&r);
    assert_int_equal(request("GET", "/v1/functions/d32", NULL, &r), 200);
    /* fp32 is the config's default, not written; its figures say fp32. */
    assert_null(strstr(r.body.data, "\"precision\":\"bf16\""));
    double top1, max_abs;
    check_accuracy(&r, 1, "fp32", "none", &top1, &max_abs);
    http_response_fini(&r);

    int agree = 0;
    for (int d = 0; d < 10; d++) {
        int c32 = classify("d32", d), c16 = classify("d16", d);
        assert_int_equal(c32, d);
        if (c16 == c32) agree++;
    }
    printf("digits samples: bf16 gives fp32's class for %d of 10\n", agree);
    assert_int_equal(agree, 10);

    /* The same config again makes no version; fp32 again makes one. */
    assert_int_equal(deploy("d16", "\"precision\":\"bf16\"", &r), 200);
    http_response_fini(&r);

    assert_int_equal(request("DELETE", "/v1/functions/d32", NULL, &r), 200);
    http_response_fini(&r);
    assert_int_equal(request("DELETE", "/v1/functions/d16", NULL, &r), 200);
    http_response_fini(&r);
    /* Nothing refers to the blob now and its grace is 0: it goes, and with
     * it both plans. */
    int i = 0;
    while ((plan_exists(".plan") || plan_exists("-bf16.plan")) && i++ < WAIT_TRIES)
        usleep(5000);
    assert_false(plan_exists(".plan"));
    assert_false(plan_exists("-bf16.plan"));
}

/* A precision deploy cannot take is a 400 naming the field; nothing is
 * stored. */
static void test_bad_precision(void **state)
{
    (void)state;
    upload();
    static const struct {
        const char *extra, *needle;
    } cases[] = {
        {"\"precision\":\"fp16\"", "precision: must be \\\"fp32\\\", \\\"bf16\\\" or \\\"int8\\\""},
        {"\"precision\":16", "precision: must be"},
        {"\"precision\":\"int8\"", "calibration: missing"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        http_response r;
        int st = deploy("bad", cases[k].extra, &r);
        if (st != 400 || !strstr(r.body.data, cases[k].needle))
            fprintf(stderr, "%s: %d %s\n", cases[k].extra, st, r.body.data);
        assert_int_equal(st, 400);
        assert_non_null(strstr(r.body.data, cases[k].needle));
        http_response_fini(&r);
    }
    http_response r;
    assert_int_equal(request("GET", "/v1/functions/bad", NULL, &r), 404);
    http_response_fini(&r);
}

/* int8 from the digits calibration samples beside fp32: the same class
 * for the ten samples, an int8 plan named after its samples too. */
static void test_int8_beside_fp32(void **state)
{
    (void)state;
    upload();
    char calib[80], path[512], extra[300];
    snprintf(path, sizeof(path), "%s/calibration/pixels.npy", g_digits);
    upload_file(path, calib);
    http_response r;
    int st = deploy("d32", "", &r);
    assert_int_equal(st, 201);
    http_response_fini(&r);
    snprintf(extra, sizeof(extra), "\"precision\":\"int8\",\"calibration\":{\"pixels\":\"%s\"}",
             calib);
    st = deploy("d8", extra, &r);
    if (st != 201) fprintf(stderr, "deploy d8: %d %s\n", st, r.body.data);
    assert_int_equal(st, 201);
    /* The deploy check's figures: measured on the fifth of the samples held
     * back from calibration; int8 digits keeps fp32's class on them (the
     * compile test measures 98.89% test accuracy at both precisions). */
    double top1, max_abs, top1_get, max_abs_get;
    check_accuracy(&r, 0, "int8", "held back from calibration", &top1, &max_abs);
    assert_true(top1 >= 0.95);
    http_response_fini(&r);
    assert_true(plan_exists(".plan"));
    assert_true(plan_with_prefix("-int8-"));
    assert_int_equal(request("GET", "/v1/functions/d8", NULL, &r), 200);
    assert_non_null(strstr(r.body.data, "\"precision\":\"int8\""));
    assert_non_null(strstr(r.body.data, calib));
    /* The same figures, recorded with the version. */
    check_accuracy(&r, 1, "int8", "held back from calibration", &top1_get, &max_abs_get);
    assert_true(top1_get == top1 && max_abs_get == max_abs);
    http_response_fini(&r);
    /* fp32: nothing to measure against. */
    assert_int_equal(request("GET", "/v1/functions/d32", NULL, &r), 200);
    check_accuracy(&r, 1, "fp32", "none", &top1_get, &max_abs_get);
    http_response_fini(&r);
    int agree = 0;
    for (int d = 0; d < 10; d++) {
        int c32 = classify("d32", d), c8 = classify("d8", d);
        assert_int_equal(c32, d);
        if (c8 == c32) agree++;
    }
    printf("digits samples: int8 gives fp32's class for %d of 10\n", agree);
    assert_int_equal(agree, 10);

    /* Calibration that does not fit the model: a 400 naming the input. */
    static const struct {
        int dtype;
        int64_t shape[2];
        const char *needle;
    } bad[] = {
        {ROUSE_DT_FLOAT, {4, 32}, "pixels"},
        {ROUSE_DT_INT64, {4, 64}, "pixels"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        static uint8_t zeros[4 * 64 * 8];
        char npy[400], dg[80];
        snprintf(npy, sizeof(npy), "%s/bad%zu.npy", g_dir, k);
        rouse_errbuf eb;
        size_t n = (size_t)(bad[k].shape[0] * bad[k].shape[1]) *
                   (bad[k].dtype == ROUSE_DT_INT64 ? 8 : 4);
        assert_int_equal(cli_npy_write(npy, bad[k].dtype, 2, bad[k].shape, zeros, n, &eb), 0);
        upload_file(npy, dg);
        snprintf(extra, sizeof(extra), "\"precision\":\"int8\",\"calibration\":{\"pixels\":\"%s\"}",
                 dg);
        st = deploy("d8bad", extra, &r);
        if (st != 400 || !strstr(r.body.data, bad[k].needle))
            fprintf(stderr, "bad calibration %zu: %d %s\n", k, st, r.body.data);
        assert_int_equal(st, 400);
        assert_non_null(strstr(r.body.data, "calibration"));
        assert_non_null(strstr(r.body.data, bad[k].needle));
        http_response_fini(&r);
    }
    /* Another input's name, and a blob never uploaded. */
    snprintf(extra, sizeof(extra), "\"precision\":\"int8\",\"calibration\":{\"pixel\":\"%s\"}",
             calib);
    st = deploy("d8bad", extra, &r);
    if (st != 400) fprintf(stderr, "calibration of another input: %d %s\n", st, r.body.data);
    assert_int_equal(st, 400);
    assert_non_null(strstr(r.body.data, "calibration"));
    http_response_fini(&r);
    snprintf(extra, sizeof(extra), "\"precision\":\"int8\",\"calibration\":{\"pixels\":\"%s\"}",
             "sha256:0000000000000000000000000000000000000000000000000000000000000000");
    assert_int_equal(deploy("d8bad", extra, &r), 400);
    assert_non_null(strstr(r.body.data, "calibration.pixels: no blob"));
    http_response_fini(&r);

    assert_int_equal(request("DELETE", "/v1/functions/d32", NULL, &r), 200);
    http_response_fini(&r);
    /* The calibration blob is d8's: it stays while d8 does. */
    char bpath[600];
    snprintf(bpath, sizeof(bpath), "/v1/blobs/%s", calib);
    assert_int_equal(request("DELETE", bpath, NULL, &r), 409);
    http_response_fini(&r);
    assert_int_equal(request("DELETE", "/v1/functions/d8", NULL, &r), 200);
    http_response_fini(&r);
    int i = 0;
    while ((plan_exists(".plan") || plan_with_prefix("-int8-")) && i++ < WAIT_TRIES)
        usleep(5000);
    assert_false(plan_exists(".plan"));
    assert_false(plan_with_prefix("-int8-"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_beside_fp32),
        cmocka_unit_test(test_int8_beside_fp32),
        cmocka_unit_test(test_bad_precision),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
