/*
 * Compiled plans of models that once could not be deployed: a Conv whose
 * kernel size comes from its weight (pads without kernel_shape), Conv
 * models with dynamic height and width, and a weight shared by hundreds of
 * nodes, which a plan must store once (and each of its reordered layouts
 * once), with the plan writer refusing a plan far larger than its model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx_builder.h"
#include "rouse/engine.h"
#include "tmp_dir.h"

static float *rand_floats(int64_t n, uint32_t seed)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    assert_non_null(p);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
    }
    return p;
}

static void add_weight(ob_model *m, const char *name, int rank, const int64_t *d, uint32_t seed)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= d[i];
    float *w = rand_floats(n, seed);
    ob_initializer(m, name, ROUSE_DT_FLOAT, rank, d, w, sizeof(float) * (size_t)n);
    free(w);
}

/* Writes the model to a temporary .onnx; returns its path (free it). */
static char *write_model(ob_model *om, const char *tag, size_t *len)
{
    rouse_buf b;
    rouse_buf_init(&b);
    ob_serialize(om, &b);
    ob_model_free(om);
    char *path = malloc(4096);
    assert_non_null(path);
    snprintf(path, 4096, "%s/rouse-plan-weights-%d-%s.onnx", test_tmp_dir(), (int)getpid(), tag);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
    fclose(f);
    if (len) *len = b.len;
    rouse_buf_fini(&b);
    return path;
}

static char *plan_path_for(const char *onnx_path)
{
    char *p = malloc(strlen(onnx_path) + 8);
    assert_non_null(p);
    sprintf(p, "%s.plan", onnx_path);
    return p;
}

/* Runs x through m and returns a copy of output 0 (free it). */
static float *run_copy(rouse_session *s, const rouse_tensor *x, size_t *nbytes)
{
    rouse_errbuf eb;
    if (rouse_session_run(s, x, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    rouse_tensor out;
    assert_int_equal(rouse_session_output(s, 0, &out), 0);
    float *y = malloc(out.nbytes + 1);
    assert_non_null(y);
    memcpy(y, out.data, out.nbytes);
    *nbytes = out.nbytes;
    return y;
}

/* The .onnx and its compiled plan give bit-identical outputs for every
 * input shape in `shapes` (run in that order in one session each). */
static void expect_plan_matches(const char *onnx_path, const int64_t (*shapes)[4], int n_shapes)
{
    rouse_errbuf eb;
    rouse_model *m, *pm;
    if (rouse_model_load(onnx_path, &m, &eb) < 0) fail_msg("load: %s", eb.msg);
    char *plan = plan_path_for(onnx_path);
    if (rouse_model_compile(m, plan, &eb) < 0) fail_msg("compile: %s", eb.msg);
    if (rouse_model_open_plan(plan, &pm, &eb) < 0) fail_msg("open plan: %s", eb.msg);
    rouse_session *s1, *s2;
    assert_int_equal(rouse_session_create(m, NULL, &s1, &eb), 0);
    assert_int_equal(rouse_session_create(pm, NULL, &s2, &eb), 0);
    for (int k = 0; k < n_shapes; k++) {
        int64_t n = shapes[k][0] * shapes[k][1] * shapes[k][2] * shapes[k][3];
        float *x = rand_floats(n, (uint32_t)(7 + k));
        rouse_tensor in = {.name = "x",
                           .dtype = ROUSE_DT_FLOAT,
                           .rank = 4,
                           .shape = {shapes[k][0], shapes[k][1], shapes[k][2], shapes[k][3]},
                           .data = x,
                           .nbytes = sizeof(float) * (size_t)n};
        size_t n1, n2;
        float *y1 = run_copy(s1, &in, &n1), *y2 = run_copy(s2, &in, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(y1, y2, n1);
        free(y1);
        free(y2);
        free(x);
    }
    rouse_session_destroy(s1);
    rouse_session_destroy(s2);
    rouse_model_destroy(pm);
    rouse_model_destroy(m);
    unlink(plan);
    free(plan);
}

/* kernel_shape is optional: the kernel size is the weight's. The plan
 * reader once refused the stored record ("bad attributes"). */
static void conv_with_pads_and_no_kernel_shape(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {1, 3, 9, 9}, wd[4] = {4, 3, 3, 3}, pads[4] = {1, 1, 1, 1};
    ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
    add_weight(m, "w", 4, wd, 1);
    const char *in[2] = {"x", "w"}, *y = "y";
    ob_node *n = ob_add_node(m, "Conv", "conv", 2, in, 1, &y);
    ob_attr_ints(n, "pads", 4, pads);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    char *path = write_model(m, "nokernel", NULL);
    const int64_t shapes[1][4] = {{1, 3, 9, 9}};
    expect_plan_matches(path, shapes, 1);
    unlink(path);
    free(path);
}

/* Height and width dynamic: compiling prepares for the declared shapes
 * (a dynamic dim taken as 1 is smaller than the 3x3 kernel), and must
 * still write a plan, which then serves several sizes. */
static void conv_with_dynamic_height_and_width(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {1, 3, -1, -1}, wd[4] = {8, 3, 3, 3}, bd[1] = {8}, w2d[4] = {4, 8, 3, 3};
    ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
    add_weight(m, "w", 4, wd, 1);
    add_weight(m, "b", 1, bd, 2);
    add_weight(m, "w2", 4, w2d, 3);
    const char *in[3] = {"x", "w", "b"}, *c = "c", *r = "r", *y = "y";
    int64_t k[2] = {3, 3}, s2[2] = {2, 2};
    ob_node *n = ob_add_node(m, "Conv", "conv0", 3, in, 1, &c);
    ob_attr_ints(n, "kernel_shape", 2, k);
    ob_add_node(m, "Relu", "relu", 1, &c, 1, &r);
    const char *in2[2] = {"r", "w2"};
    n = ob_add_node(m, "Conv", "conv1", 2, in2, 1, &y);
    ob_attr_ints(n, "strides", 2, s2);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    char *path = write_model(m, "dynhw", NULL);
    const int64_t shapes[3][4] = {{1, 3, 32, 48}, {1, 3, 64, 64}, {1, 3, 32, 48}};
    expect_plan_matches(path, shapes, 3);
    unlink(path);
    free(path);
}

/* 400 MatMuls share one 4 MB weight: the plan holds it once in its plain
 * form and once per layout a kernel chose, not once per node. */
static void shared_weight_is_stored_once(void **state)
{
    (void)state;
    enum { K = 1024, N_NODES = 400 };
    ob_model *m = ob_model_new(13);
    int64_t xd[2] = {1, K}, wd[2] = {K, K};
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, xd);
    float *w = rand_floats((int64_t)K * K, 5);
    for (int64_t i = 0; i < (int64_t)K * K; i++)
        w[i] *= 0.06f; /* keeps the chain's values in range */
    ob_initializer(m, "w", ROUSE_DT_FLOAT, 2, wd, w, sizeof(float) * K * K);
    free(w);
    char names[N_NODES + 1][16];
    snprintf(names[0], sizeof(names[0]), "x");
    for (int i = 1; i <= N_NODES; i++) {
        snprintf(names[i], sizeof(names[i]), "h%d", i);
        const char *in[2] = {names[i - 1], "w"}, *out = names[i];
        char node[16];
        snprintf(node, sizeof(node), "mm%d", i);
        ob_add_node(m, "MatMul", node, 2, in, 1, &out);
    }
    ob_output_any(m, names[N_NODES], ROUSE_DT_FLOAT);
    size_t model_len;
    char *path = write_model(m, "shared", &model_len);

    rouse_errbuf eb;
    rouse_model *om;
    if (rouse_model_load(path, &om, &eb) < 0) fail_msg("load: %s", eb.msg);
    char *plan = plan_path_for(path);
    if (rouse_model_compile(om, plan, &eb) < 0) fail_msg("compile: %s", eb.msg);
    struct stat sb;
    assert_int_equal(stat(plan, &sb), 0);
    /* Plain copy + at most one reordered copy + metadata. */
    if ((double)sb.st_size > 2.2 * (double)model_len)
        fail_msg("plan is %lld bytes for a model of %zu", (long long)sb.st_size, model_len);

    /* Refused, with a clear error, when the plan outgrows the limit. */
    rouse_compile_options opts = {.max_plan_ratio = 0.5};
    char *small = plan_path_for(plan);
    assert_int_equal(rouse_model_compile_with(om, small, &opts, &eb), ROUSE_ETOOBIG);
    assert_non_null(strstr(eb.msg, "times the model"));
    assert_int_equal(access(small, F_OK), -1); /* nothing left behind */
    free(small);
    rouse_model_destroy(om);
    unlink(plan);
    free(plan);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_with_pads_and_no_kernel_shape),
        cmocka_unit_test(conv_with_dynamic_height_and_width),
        cmocka_unit_test(shared_weight_is_stored_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
