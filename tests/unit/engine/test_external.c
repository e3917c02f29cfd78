/*
 * ONNX external data: initializers whose bytes live in a file next to the
 * model load in place and give the same outputs as a plain C computation,
 * through the .onnx and through a compiled plan; locations that leave the
 * model's folder, ranges outside the file and malformed entries are refused
 * with an error naming the initializer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx_builder.h"
#include "rouse/engine.h"
#include "tmp_dir.h"

#define K 64
#define N 32

static char dir[256];

static void write_file(const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static float wval(int64_t i) { return (float)((i * 37) % 101) / 101.0f - 0.5f; }

/* weights.bin: 100 bytes of padding, W [K, N] at offset 100 (misaligned on
 * purpose), B [N] at offset 16384. */
static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/rouse-extdata-XXXXXX", test_tmp_dir());
    assert_non_null(mkdtemp(dir));
    size_t len = 16384 + sizeof(float) * N;
    unsigned char *buf = calloc(1, len);
    assert_non_null(buf);
    for (int64_t i = 0; i < K * N; i++) {
        float v = wval(i);
        memcpy(buf + 100 + 4 * i, &v, 4);
    }
    for (int64_t i = 0; i < N; i++) {
        float v = (float)i / 8.0f;
        memcpy(buf + 16384 + 4 * i, &v, 4);
    }
    write_file("weights.bin", buf, len);
    free(buf);
    char sub[320];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[320];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* y = x @ W + B with W and B external: locations and ranges as given. */
static void write_model(const char *name, const char *w_loc, int64_t w_off, int64_t w_len,
                        const char *b_loc)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[2] = {1, K}, wd[2] = {K, N}, bd[1] = {N}, yd[2] = {1, N};
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, xd);
    ob_initializer_external(m, "W", ROUSE_DT_FLOAT, 2, wd, w_loc, w_off, w_len);
    ob_initializer_external(m, "B", ROUSE_DT_FLOAT, 1, bd, b_loc, 16384, -1);
    const char *mm_in[2] = {"x", "W"}, *mm = "mm", *add_in[2] = {"mm", "B"}, *y = "y";
    ob_add_node(m, "MatMul", "mm", 2, mm_in, 1, &mm);
    ob_add_node(m, "Add", "bias", 2, add_in, 1, &y);
    ob_output(m, "y", ROUSE_DT_FLOAT, 2, yd);
    rouse_buf b;
    rouse_buf_init(&b);
    ob_serialize(m, &b);
    ob_model_free(m);
    write_file(name, b.data, b.len);
    rouse_buf_fini(&b);
}

static void check_outputs(rouse_model *m)
{
    rouse_session *s = NULL;
    rouse_errbuf eb;
    rouse_session_options so = {0};
    if (rouse_session_create(m, &so, &s, &eb) < 0) fail_msg("session: %s", eb.msg);
    float x[K];
    for (int i = 0; i < K; i++)
        x[i] = (float)(i % 7) - 3.0f;
    rouse_tensor in = {.name = "x",
                       .dtype = ROUSE_DT_FLOAT,
                       .rank = 2,
                       .shape = {1, K},
                       .data = x,
                       .nbytes = sizeof(x)};
    if (rouse_session_run(s, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    rouse_tensor o;
    assert_int_equal(rouse_session_output(s, 0, &o), 0);
    const float *y = o.data;
    for (int j = 0; j < N; j++) {
        double want = (double)j / 8.0;
        for (int k = 0; k < K; k++)
            want += (double)x[k] * (double)wval((int64_t)k * N + j);
        if (fabs(y[j] - want) > 1e-4 + 1e-4 * fabs(want))
            fail_msg("y[%d] = %g, want %g", j, (double)y[j], want);
    }
    rouse_session_destroy(s);
}

static void path_of(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void loads_in_place_and_runs(void **state)
{
    (void)state;
    char path[512], plan[512];
    write_model("model.onnx", "weights.bin", 100, (int64_t)sizeof(float) * K * N, "weights.bin");
    path_of(path, sizeof(path), "model.onnx");
    rouse_model *m = NULL;
    rouse_errbuf eb;
    if (rouse_model_load(path, &m, &eb) < 0) fail_msg("load: %s", eb.msg);
    check_outputs(m);

    /* The compiled plan carries the weights itself. */
    path_of(plan, sizeof(plan), "model.plan");
    if (rouse_model_compile(m, plan, &eb) < 0) fail_msg("compile: %s", eb.msg);
    rouse_model_destroy(m);
    if (rouse_model_open_plan(plan, &m, &eb) < 0) fail_msg("open plan: %s", eb.msg);
    check_outputs(m);
    rouse_model_destroy(m);

    /* From a folder below: "../weights.bin" would leave it, "./" stays. */
    write_model("sub/model.onnx", "./../weights.bin", 100, -1, "../weights.bin");
    path_of(path, sizeof(path), "sub/model.onnx");
    assert_int_equal(rouse_model_load(path, &m, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "initializer 'W': external data location './../weights.bin' "
                                   "must be a relative path inside the model's folder"));

    /* Nested locations and an absent length (the rest of the file). */
    char sub_w[512], cmd[1200];
    path_of(sub_w, sizeof(sub_w), "sub/w.bin");
    snprintf(cmd, sizeof(cmd), "cp '%s/weights.bin' '%s'", dir, sub_w);
    assert_int_equal(system(cmd), 0);
    write_model("nested.onnx", "sub/w.bin", 100, (int64_t)sizeof(float) * K * N, "sub/w.bin");
    path_of(path, sizeof(path), "nested.onnx");
    if (rouse_model_load(path, &m, &eb) < 0) fail_msg("load: %s", eb.msg);
    check_outputs(m);
    rouse_model_destroy(m);
}

static void expect_refused(const char *w_loc, int64_t off, int64_t len, int rc, const char *msg)
{
    char path[512];
    write_model("bad.onnx", w_loc, off, len, "weights.bin");
    path_of(path, sizeof(path), "bad.onnx");
    rouse_model *m = NULL;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int got = rouse_model_load(path, &m, &eb);
    if (got != rc || !strstr(eb.msg, msg))
        fail_msg("location '%s' offset %lld length %lld: got %d '%s', want %d '%s'", w_loc,
                 (long long)off, (long long)len, got, eb.msg, rc, msg);
    assert_null(m);
}

static void bad_locations_and_ranges_are_refused(void **state)
{
    (void)state;
    int64_t wlen = (int64_t)sizeof(float) * K * N;
    expect_refused("/etc/passwd", 0, -1, ROUSE_EFORMAT, "must be a relative path inside");
    expect_refused("../weights.bin", 100, wlen, ROUSE_EFORMAT, "must be a relative path inside");
    expect_refused("sub/../../x", 0, -1, ROUSE_EFORMAT, "must be a relative path inside");
    expect_refused("sub/", 0, -1, ROUSE_EFORMAT, "must be a relative path inside");
    expect_refused("missing.bin", 0, wlen, ROUSE_ENOTFOUND, "initializer 'W': external data "
                                                            "file 'missing.bin'");
    expect_refused("sub", 0, wlen, ROUSE_EFORMAT, "is not a regular file");
    /* Past the end of the file, and an offset beyond it. */
    expect_refused("weights.bin", 16384, wlen, ROUSE_EFORMAT, "does not fit 'weights.bin'");
    expect_refused("weights.bin", 1 << 30, wlen, ROUSE_EFORMAT, "does not fit");
    /* No length: the rest of the file, which is not the tensor's size. */
    expect_refused("weights.bin", 100, -1, ROUSE_EFORMAT, "does not fit");
    /* A length that disagrees with the dims is caught while decoding. */
    expect_refused("weights.bin", 100, wlen - 4, ROUSE_EFORMAT, "external_data length 8188");

    /* A symbolic link out of the folder is not followed. */
    char link[512];
    path_of(link, sizeof(link), "escape.bin");
    assert_int_equal(symlink("/etc/hostname", link), 0);
    expect_refused("escape.bin", 0, -1, ROUSE_EFORMAT, "external data file 'escape.bin'");
    unlink(link);

    /* From memory there is no folder to look in. */
    char path[512];
    write_model("model.onnx", "weights.bin", 100, wlen, "weights.bin");
    path_of(path, sizeof(path), "model.onnx");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    rouse_model *m = NULL;
    rouse_errbuf eb;
    assert_int_equal(rouse_model_load_memory(buf, n, &m, &eb), ROUSE_EUNSUPPORTED);
    assert_non_null(strstr(eb.msg, "initializer 'W' keeps its data in the file 'weights.bin'"));
}

/* Malformed external_data entries, written field by field. */
static void malformed_entries_are_refused(void **state)
{
    (void)state;
    struct {
        const char *off;
        int data_location;
        const char *msg;
    } cases[] = {
        {"12x", 1, "external_data 'offset' is \"12x\", not a byte count"},
        {"-4", 1, "not a byte count"},
        {"99999999999999999999", 1, "not a byte count"},
        {"0", 0, "external_data is set but data_location is not EXTERNAL"},
        {"0", 7, "data_location 7 is invalid"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rouse_buf t, e, g, model, opset;
        rouse_buf_init(&t);
        pb_put_int(&t, 1, N);
        pb_put_int(&t, 2, ROUSE_DT_FLOAT);
        pb_put_bytes(&t, 8, "B", 1);
        rouse_buf_init(&e);
        pb_put_bytes(&e, 1, "location", 8);
        pb_put_bytes(&e, 2, "weights.bin", 11);
        pb_put_bytes(&t, 13, e.data, e.len);
        rouse_buf_fini(&e);
        rouse_buf_init(&e);
        pb_put_bytes(&e, 1, "offset", 6);
        pb_put_bytes(&e, 2, cases[i].off, strlen(cases[i].off));
        pb_put_bytes(&t, 13, e.data, e.len);
        rouse_buf_fini(&e);
        if (cases[i].data_location) pb_put_int(&t, 14, cases[i].data_location);
        rouse_buf_init(&g);
        pb_put_bytes(&g, 5, t.data, t.len);
        rouse_buf_init(&model);
        pb_put_int(&model, 1, 8);
        rouse_buf_init(&opset);
        pb_put_bytes(&opset, 1, "", 0);
        pb_put_int(&opset, 2, 13);
        pb_put_bytes(&model, 8, opset.data, opset.len);
        pb_put_bytes(&model, 7, g.data, g.len);
        rouse_model *m = NULL;
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        int rc = rouse_model_load_memory(model.data, model.len, &m, &eb);
        if (rc != ROUSE_EFORMAT || !strstr(eb.msg, cases[i].msg))
            fail_msg("case %zu: got %d '%s', want '%s'", i, rc, eb.msg, cases[i].msg);
        rouse_buf_fini(&t);
        rouse_buf_fini(&g);
        rouse_buf_fini(&model);
        rouse_buf_fini(&opset);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loads_in_place_and_runs),
        cmocka_unit_test(bad_locations_and_ranges_are_refused),
        cmocka_unit_test(malformed_entries_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
