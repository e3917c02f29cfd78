/*
 * The oneDNN int8 kernels (QLinearConv, ConvInteger, QLinearMatMul,
 * MatMulInteger with constant s8 weights) against the plain C reference
 * kernels of ops/quant.c: the same model runs once with the optimized
 * kernels and once with reference_kernels. Integer outputs (int32) must be
 * equal; requantized outputs may differ by one step where the product of
 * the sum and the scale lands on a rounding boundary (oneDNN multiplies in
 * float, the reference in double), and only on a few elements. Each case
 * also checks that the int8 kernel was used (no silent fallback).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_builder.h"
#include "rouse/engine.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static int rand_int(int lo, int hi)
{
    return lo + (int)(next_u32() % (uint32_t)(hi - lo + 1));
}

static int64_t numel(int rank, const int64_t *d)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= d[i];
    return n;
}

static void *rand_bytes(int64_t n, int lo, int hi)
{
    int8_t *p = malloc((size_t)(n ? n : 1));
    assert_non_null(p);
    for (int64_t i = 0; i < n; i++)
        p[i] = (int8_t)rand_int(lo, hi);
    return p;
}

static void scalar_f(ob_model *m, const char *name, float v)
{
    ob_initializer(m, name, ROUSE_DT_FLOAT, 0, NULL, &v, sizeof(v));
}

static void scalar_q(ob_model *m, const char *name, int dtype, int v)
{
    int8_t b = (int8_t)v;
    ob_initializer(m, name, dtype, 0, NULL, &b, 1);
}

/* Runs the model on x with both kernel sets; compares output 0. */
static void run_both(rouse_buf *model, int xdtype, int rank, const int64_t *dims, const void *x,
                     int want_dnnl)
{
    rouse_errbuf eb;
    rouse_model *m;
    if (rouse_model_load_memory(model->data, model->len, &m, &eb) < 0) fail_msg("load: %s", eb.msg);
    rouse_tensor in = {.name = "x", .dtype = xdtype, .rank = rank, .data = x};
    memcpy(in.shape, dims, sizeof(int64_t) * (size_t)rank);
    in.nbytes = (size_t)numel(rank, dims);
    rouse_session *fast, *ref;
    rouse_session_options fo = {.threads = 1}, ro = {.threads = 1, .reference_kernels = 1};
    if (rouse_session_create(m, &fo, &fast, &eb) < 0) fail_msg("session: %s", eb.msg);
    if (rouse_session_create(m, &ro, &ref, &eb) < 0) fail_msg("session: %s", eb.msg);
    if (rouse_session_run(fast, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    if (rouse_session_run(ref, &in, 1, &eb) < 0) fail_msg("run ref: %s", eb.msg);
    rouse_tensor a, b;
    assert_int_equal(rouse_session_output(fast, 0, &a), 0);
    assert_int_equal(rouse_session_output(ref, 0, &b), 0);
    assert_int_equal(a.dtype, b.dtype);
    assert_int_equal(a.rank, b.rank);
    assert_memory_equal(a.shape, b.shape, sizeof(int64_t) * (size_t)a.rank);
    assert_int_equal(a.nbytes, b.nbytes);
    if (a.dtype == ROUSE_DT_INT32) {
        assert_memory_equal(a.data, b.data, a.nbytes);
    } else {
        size_t off = 0;
        for (size_t i = 0; i < a.nbytes; i++) {
            int va = a.dtype == ROUSE_DT_INT8 ? ((const int8_t *)a.data)[i]
                                              : ((const uint8_t *)a.data)[i];
            int vb = b.dtype == ROUSE_DT_INT8 ? ((const int8_t *)b.data)[i]
                                              : ((const uint8_t *)b.data)[i];
            if (abs(va - vb) > 1) fail_msg("element %zu: int8 kernel %d, reference %d", i, va, vb);
            off += va != vb;
        }
        if (off * 100 > a.nbytes + 100)
            fail_msg("%zu of %zu elements differ by one step", off, a.nbytes);
    }
    rouse_session_stats st;
    assert_int_equal(rouse_session_get_stats(fast, &st), 0);
    if (want_dnnl && st.dnnl_steps < 1) fail_msg("the int8 kernel was not used");
    if (!want_dnnl && st.ref_steps < 1) fail_msg("expected the reference kernel");
    rouse_session_destroy(fast);
    rouse_session_destroy(ref);
    rouse_model_destroy(m);
}

typedef struct qconv_case {
    int64_t n, c, m, group, h, w, k, s, d, pad;
    int xdt, ydt; /* ROUSE_DT_UINT8 or ROUSE_DT_INT8 */
    int zx, zy;
    bool per_channel, bias, integer;
    int zw; /* weight zero point (nonzero: the reference kernel takes it) */
} qconv_case;

static void qconv_model(const qconv_case *c, rouse_buf *out)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {c->n, c->c, c->h, c->w}, wd[4] = {c->m, c->c / c->group, c->k, c->k};
    ob_input(m, "x", c->xdt, 4, xd);
    int64_t wn = numel(4, wd);
    void *w = rand_bytes(wn, -127, 127);
    ob_initializer(m, "w", ROUSE_DT_INT8, 4, wd, w, (size_t)wn);
    free(w);
    int64_t kk[2] = {c->k, c->k}, st[2] = {c->s, c->s}, dl[2] = {c->d, c->d};
    int64_t pads[4] = {c->pad, c->pad, c->pad, c->pad};
    const char *y = "y";
    ob_node *n;
    if (c->integer) {
        scalar_q(m, "zx", c->xdt, c->zx);
        scalar_q(m, "zw", ROUSE_DT_INT8, c->zw);
        const char *ins[4] = {"x", "w", "zx", "zw"};
        n = ob_add_node(m, "ConvInteger", "qc", 4, ins, 1, &y);
        ob_output_any(m, "y", ROUSE_DT_INT32);
    } else {
        scalar_f(m, "sx", 0.02f);
        scalar_q(m, "zx", c->xdt, c->zx);
        int64_t md[1] = {c->m};
        float *sw = malloc(sizeof(float) * (size_t)c->m);
        int8_t *zw = calloc((size_t)c->m, 1);
        int32_t *b = malloc(sizeof(int32_t) * (size_t)c->m);
        for (int64_t i = 0; i < c->m; i++) {
            sw[i] = 0.001f * (float)rand_int(1, 40);
            zw[i] = (int8_t)c->zw;
            b[i] = rand_int(-3000, 3000);
        }
        if (c->per_channel) {
            ob_initializer(m, "sw", ROUSE_DT_FLOAT, 1, md, sw, sizeof(float) * (size_t)c->m);
            ob_initializer(m, "zw", ROUSE_DT_INT8, 1, md, zw, (size_t)c->m);
        } else {
            scalar_f(m, "sw", sw[0]);
            scalar_q(m, "zw", ROUSE_DT_INT8, c->zw);
        }
        ob_initializer(m, "b", ROUSE_DT_INT32, 1, md, b, sizeof(int32_t) * (size_t)c->m);
        free(sw);
        free(zw);
        free(b);
        scalar_f(m, "sy", 0.05f * (float)c->k);
        scalar_q(m, "zy", c->ydt, c->zy);
        const char *ins[9] = {"x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "b"};
        n = ob_add_node(m, "QLinearConv", "qc", c->bias ? 9 : 8, ins, 1, &y);
        ob_output_any(m, "y", c->ydt);
    }
    ob_attr_ints(n, "kernel_shape", 2, kk);
    ob_attr_ints(n, "strides", 2, st);
    ob_attr_ints(n, "dilations", 2, dl);
    ob_attr_ints(n, "pads", 4, pads);
    ob_attr_int(n, "group", c->group);
    rouse_buf_init(out);
    ob_serialize(m, out);
    ob_model_free(m);
}

static void check_qconv(const qconv_case *c)
{
    rouse_buf model;
    qconv_model(c, &model);
    int64_t xd[4] = {c->n, c->c, c->h, c->w};
    int64_t n = numel(4, xd);
    void *x = c->xdt == ROUSE_DT_UINT8 ? rand_bytes(n, 0, 255) : rand_bytes(n, -128, 127);
    run_both(&model, c->xdt, 4, xd, x, c->zw == 0);
    free(x);
    rouse_buf_fini(&model);
}

static void test_qlinear_conv(void **state)
{
    (void)state;
    const int U = ROUSE_DT_UINT8, S = ROUSE_DT_INT8;
    const qconv_case fixed[] = {
        {1, 16, 32, 1, 14, 14, 3, 1, 1, 1, U, U, 0, 0, true, true, false, 0},
        {1, 16, 32, 1, 14, 14, 3, 1, 1, 1, U, U, 128, 3, true, true, false, 0},
        {2, 8, 8, 8, 9, 11, 3, 2, 1, 1, U, S, 7, -5, true, true, false, 0}, /* depthwise */
        {1, 12, 6, 3, 10, 10, 3, 1, 2, 2, S, U, -3, 0, false, false, false, 0},
        {1, 3, 16, 1, 17, 17, 7, 2, 1, 3, U, U, 110, 0, true, true, false, 0}, /* a stem */
        {1, 32, 64, 1, 7, 7, 1, 1, 1, 0, U, U, 0, 0, true, true, false, 0},    /* 1x1 */
        {1, 5, 7, 1, 6, 6, 3, 1, 1, 1, U, U, 2, 0, true, true, false, 9},      /* zw != 0 */
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        check_qconv(&fixed[i]);
    for (int r = 0; r < 24; r++) {
        qconv_case c = {0};
        c.group = rand_int(0, 3) == 0 ? rand_int(2, 4) : 1;
        c.n = rand_int(1, 2);
        c.c = c.group * rand_int(1, 9);
        c.m = c.group * rand_int(1, 9);
        c.k = rand_int(1, 3);
        c.s = rand_int(1, 2);
        c.d = rand_int(1, 2);
        c.pad = rand_int(0, 2);
        c.h = c.k * c.d + rand_int(0, 9);
        c.w = c.k * c.d + rand_int(0, 9);
        c.xdt = rand_int(0, 1) ? U : S;
        c.ydt = rand_int(0, 1) ? U : S;
        c.zx = c.xdt == U ? rand_int(0, 255) : rand_int(-128, 127);
        c.zy = c.ydt == U ? rand_int(0, 255) : rand_int(-128, 127);
        c.per_channel = rand_int(0, 1);
        c.bias = rand_int(0, 1);
        c.integer = rand_int(0, 3) == 0;
        check_qconv(&c);
    }
}

typedef struct qmm_case {
    int rank;
    int64_t batch, mm, k, nn;
    int xdt, ydt, zx, zy;
    bool per_col, integer;
} qmm_case;

static void check_qmatmul(const qmm_case *c)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[3], bd[2] = {c->k, c->nn}, nd[1] = {c->nn};
    int r = 0;
    if (c->rank == 3) xd[r++] = c->batch;
    xd[r++] = c->mm;
    xd[r++] = c->k;
    ob_input(m, "x", c->xdt, r, xd);
    void *w = rand_bytes(c->k * c->nn, -127, 127);
    ob_initializer(m, "w", ROUSE_DT_INT8, 2, bd, w, (size_t)(c->k * c->nn));
    free(w);
    const char *y = "y";
    scalar_q(m, "zx", c->xdt, c->zx);
    scalar_q(m, "zw", ROUSE_DT_INT8, 0);
    if (c->integer) {
        const char *ins[4] = {"x", "w", "zx", "zw"};
        ob_add_node(m, "MatMulInteger", "qm", 4, ins, 1, &y);
        ob_output_any(m, "y", ROUSE_DT_INT32);
    } else {
        scalar_f(m, "sx", 0.03f);
        float *sw = malloc(sizeof(float) * (size_t)c->nn);
        for (int64_t i = 0; i < c->nn; i++)
            sw[i] = 0.001f * (float)rand_int(1, 30);
        if (c->per_col)
            ob_initializer(m, "sw", ROUSE_DT_FLOAT, 1, nd, sw, sizeof(float) * (size_t)c->nn);
        else
            scalar_f(m, "sw", sw[0]);
        free(sw);
        scalar_f(m, "sy", 0.4f);
        scalar_q(m, "zy", c->ydt, c->zy);
        const char *ins[8] = {"x", "sx", "zx", "w", "sw", "zw", "sy", "zy"};
        ob_add_node(m, "QLinearMatMul", "qm", 8, ins, 1, &y);
        ob_output_any(m, "y", c->ydt);
    }
    rouse_buf model;
    rouse_buf_init(&model);
    ob_serialize(m, &model);
    ob_model_free(m);
    int64_t n = numel(r, xd);
    void *x = c->xdt == ROUSE_DT_UINT8 ? rand_bytes(n, 0, 255) : rand_bytes(n, -128, 127);
    run_both(&model, c->xdt, r, xd, x, 1);
    free(x);
    rouse_buf_fini(&model);
}

static void test_qlinear_matmul(void **state)
{
    (void)state;
    const int U = ROUSE_DT_UINT8, S = ROUSE_DT_INT8;
    check_qmatmul(&(qmm_case){2, 1, 16, 128, 64, U, U, 0, 0, true, false});
    check_qmatmul(&(qmm_case){3, 3, 7, 33, 10, S, U, -4, 128, false, false});
    check_qmatmul(&(qmm_case){2, 1, 5, 17, 9, U, S, 200, -7, true, true});
    for (int i = 0; i < 16; i++) {
        qmm_case c = {0};
        c.rank = rand_int(2, 3);
        c.batch = rand_int(1, 3);
        c.mm = rand_int(1, 20);
        c.k = rand_int(1, 70);
        c.nn = rand_int(1, 40);
        c.xdt = rand_int(0, 1) ? U : S;
        c.ydt = rand_int(0, 1) ? U : S;
        c.zx = c.xdt == U ? rand_int(0, 255) : rand_int(-128, 127);
        c.zy = c.ydt == U ? rand_int(0, 255) : rand_int(-128, 127);
        c.per_col = rand_int(0, 1);
        c.integer = rand_int(0, 3) == 0;
        check_qmatmul(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qlinear_conv),
        cmocka_unit_test(test_qlinear_matmul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
