/*
 * The oneDNN int8 kernels (QLinearConv, ConvInteger, QLinearMatMul,
 * MatMulInteger with constant s8 weights, QLinearMatMul of two computed
 * activations) against the plain C reference
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
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx_builder.h"
#include "rouse/engine.h"
#include "tmp_dir.h"

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
    in.nbytes = (size_t)numel(rank, dims) * (xdtype == ROUSE_DT_FLOAT ? 4 : 1);
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
        if (off > a.nbytes / 20 + 2)
            fail_msg("%zu of %zu elements differ by one step", off, a.nbytes);
    }
    rouse_session_stats st;
    assert_int_equal(rouse_session_get_stats(fast, &st), 0);
    if (want_dnnl && st.dnnl_steps < 1) fail_msg("the int8 kernel was not used");
    if (want_dnnl > 1) { /* the product itself on oneDNN, not only the reorders */
        rouse_session_set_profiling(fast, 1);
        if (rouse_session_run(fast, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
        int on_dnnl = 0;
        for (int i = 0; i < rouse_session_profile_count(fast); i++) {
            rouse_profile_entry pe;
            rouse_session_profile_entry(fast, i, &pe);
            on_dnnl += !strcmp(pe.op, "QLinearMatMul") && !strcmp(pe.kernel, "onednn");
        }
        if (!on_dnnl) fail_msg("QLinearMatMul did not run on oneDNN");
    }
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
        /* mobilenet_v2's shapes: depthwise with stride 2, 1x1 expansions and projections */
        {1, 144, 144, 144, 56, 56, 3, 2, 1, 1, U, U, 0, 0, true, true, false, 0},
        {1, 96, 96, 96, 112, 112, 3, 2, 1, 1, U, U, 0, 0, true, true, false, 0},
        {1, 32, 32, 32, 112, 112, 3, 1, 1, 1, U, U, 0, 0, true, true, false, 0},
        {1, 24, 144, 1, 56, 56, 1, 1, 1, 0, U, U, 121, 0, true, true, false, 0},
        {1, 144, 24, 1, 56, 56, 1, 1, 1, 0, U, U, 0, 117, true, true, false, 0},
        {1, 3, 32, 1, 224, 224, 3, 2, 1, 1, U, U, 114, 0, true, true, false, 0},
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

/* A product of two activations as the int8 quantizer writes attention's:
 * a = Q(x) u8, b = Q(x^T) s8 symmetric (zero point 0), y = QLinearMatMul
 * per tensor, over [batch, heads, M, K] x [batch, heads, K, M]. */
static void check_qmatmul_act(int64_t batch, int64_t heads, int64_t mm, int64_t k, int za, int zy)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {batch, heads, mm, k}, perm[4] = {0, 1, 3, 2};
    ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
    scalar_f(m, "sa", 0.02f);
    scalar_q(m, "za", ROUSE_DT_UINT8, za);
    scalar_f(m, "sb", 0.015f);
    scalar_q(m, "zb", ROUSE_DT_INT8, 0);
    scalar_f(m, "sy", 0.05f);
    scalar_q(m, "zy", ROUSE_DT_UINT8, zy);
    const char *qa_in[3] = {"x", "sa", "za"}, *a = "a", *xt = "xt", *b = "b", *y = "y";
    ob_add_node(m, "QuantizeLinear", "qa", 3, qa_in, 1, &a);
    ob_node *t = ob_add_node(m, "Transpose", "t", 1, qa_in, 1, &xt);
    ob_attr_ints(t, "perm", 4, perm);
    const char *qb_in[3] = {"xt", "sb", "zb"};
    ob_add_node(m, "QuantizeLinear", "qb", 3, qb_in, 1, &b);
    const char *ins[8] = {"a", "sa", "za", "b", "sb", "zb", "sy", "zy"};
    ob_add_node(m, "QLinearMatMul", "qm", 8, ins, 1, &y);
    ob_output_any(m, "y", ROUSE_DT_UINT8);
    rouse_buf model;
    rouse_buf_init(&model);
    ob_serialize(m, &model);
    ob_model_free(m);
    int64_t n = numel(4, xd);
    float *x = malloc(sizeof(float) * (size_t)n);
    assert_non_null(x);
    /* Off the rounding boundaries of x / scale (0.5 + k), where the Q
     * reorders may round either way and the step would add up. */
    for (int64_t i = 0; i < n; i++)
        x[i] = 0.01f * (float)rand_int(-150, 150) + 0.003f;
    run_both(&model, ROUSE_DT_FLOAT, 4, xd, x, 2);
    free(x);
    rouse_buf_fini(&model);
}

static void test_qlinear_matmul_activations(void **state)
{
    (void)state;
    check_qmatmul_act(1, 2, 32, 64, 128, 0);
    check_qmatmul_act(2, 1, 5, 3, 0, 17);
    for (int i = 0; i < 6; i++)
        check_qmatmul_act(rand_int(1, 2), rand_int(1, 4), rand_int(1, 20), rand_int(1, 40),
                          rand_int(0, 255), rand_int(0, 255));
}

/* QuantizeLinear (float -> u8 / s8) and DequantizeLinear back, per tensor
 * with constant parameters, as oneDNN reorders against the reference:
 * Q within one step, DQ exact in float. */
static void test_quantize_reorders(void **state)
{
    (void)state;
    for (int c = 0; c < 4; c++) {
        int qt = c % 2 ? ROUSE_DT_INT8 : ROUSE_DT_UINT8, zp = c % 2 ? -9 : 131 - c;
        ob_model *m = ob_model_new(13);
        int64_t xd[4] = {2, 19, 7, 5};
        ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
        scalar_f(m, "s", 0.0173f * (float)(c + 1));
        scalar_q(m, "z", qt, zp);
        const char *qi[3] = {"x", "s", "z"}, *q = "q", *di[3] = {"q", "s", "z"}, *y = "y";
        ob_add_node(m, "QuantizeLinear", "quant", 3, qi, 1, &q);
        ob_add_node(m, "DequantizeLinear", "dequant", 3, di, 1, &y);
        ob_output_any(m, "q", qt);
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf model;
        rouse_buf_init(&model);
        ob_serialize(m, &model);
        ob_model_free(m);
        int64_t n = numel(4, xd);
        float *x = malloc(sizeof(float) * (size_t)n);
        for (int64_t i = 0; i < n; i++)
            x[i] = (float)rand_int(-3000, 3000) / 1000.0f;
        rouse_errbuf eb;
        rouse_model *mm;
        if (rouse_model_load_memory(model.data, model.len, &mm, &eb) < 0) fail_msg("%s", eb.msg);
        rouse_session *fast, *ref;
        rouse_session_options fo = {.threads = 1}, ro = {.threads = 1, .reference_kernels = 1};
        rouse_tensor in = {.name = "x", .dtype = ROUSE_DT_FLOAT, .rank = 4, .data = x,
                           .nbytes = sizeof(float) * (size_t)n};
        memcpy(in.shape, xd, sizeof(xd));
        if (rouse_session_create(mm, &fo, &fast, &eb) < 0 ||
            rouse_session_create(mm, &ro, &ref, &eb) < 0 || rouse_session_run(fast, &in, 1, &eb) < 0 ||
            rouse_session_run(ref, &in, 1, &eb) < 0)
            fail_msg("%s", eb.msg);
        rouse_session_stats st;
        assert_int_equal(rouse_session_get_stats(fast, &st), 0);
        assert_int_equal(st.ref_steps, 0);
        rouse_tensor qa, qb, ya, yb;
        rouse_session_output(fast, 0, &qa);
        rouse_session_output(ref, 0, &qb);
        rouse_session_output(fast, 1, &ya);
        rouse_session_output(ref, 1, &yb);
        int off = 0;
        for (int64_t i = 0; i < n; i++) {
            int a = qt == ROUSE_DT_INT8 ? ((const int8_t *)qa.data)[i] : ((const uint8_t *)qa.data)[i];
            int b = qt == ROUSE_DT_INT8 ? ((const int8_t *)qb.data)[i] : ((const uint8_t *)qb.data)[i];
            if (abs(a - b) > 1) fail_msg("Q element %lld: oneDNN %d, reference %d", (long long)i, a, b);
            off += a != b;
            float fa = ((const float *)ya.data)[i], fb = ((const float *)yb.data)[i];
            if (a == b && fa != fb)
                fail_msg("DQ element %lld: oneDNN %g, reference %g", (long long)i, fa, fb);
        }
        if (off > n / 100 + 1) fail_msg("%d of %lld quantized elements differ by one step", off, (long long)n);
        rouse_session_destroy(fast);
        rouse_session_destroy(ref);
        rouse_model_destroy(mm);
        rouse_buf_fini(&model);
        free(x);
    }
}

/* --- QDQ models ------------------------------------------------------------------------- */

/* x -> Q -> DQ -> Conv(DQ(w), DQ(b)) -> Relu -> Q -> DQ -> Conv(DQ(w2), DQ(b2)) -> Q -> DQ -> y,
 * weights per output channel. With twin, the same model with the weights and
 * biases dequantized in advance (float constants): no pattern to fuse, every
 * node on its float kernel, which is what the QDQ model means. */
#define QC 8
static void qdq_model(bool twin, float bad_scale, int64_t bad_len, int bias_zp, rouse_buf *out)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {1, QC, 10, 10}, wd[4] = {QC, QC, 3, 3}, cd[1] = {QC};
    int64_t k[2] = {3, 3}, pads[4] = {1, 1, 1, 1};
    ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
    scalar_f(m, "s_in", 0.01f);
    scalar_q(m, "z_in", ROUSE_DT_UINT8, 128);
    scalar_f(m, "s_a", 0.02f);
    scalar_q(m, "z_a", ROUSE_DT_UINT8, 0);
    scalar_f(m, "s_o", 0.05f);
    scalar_q(m, "z_o", ROUSE_DT_INT8, 3);
    const char *q0 = "xq", *d0 = "xd";
    const char *qi[3] = {"x", "s_in", "z_in"}, *di[3] = {"xq", "s_in", "z_in"};
    ob_add_node(m, "QuantizeLinear", "q_in", 3, qi, 1, &q0);
    ob_add_node(m, "DequantizeLinear", "dq_in", 3, di, 1, &d0);
    const char *prev = "xd";
    float sx = 0.01f;
    for (int l = 0; l < 2; l++) {
        char wn[16], swn[16], zwn[16], bn[16], sbn[16], zbn[16], wdn[16], bdn[16], cn[16], rn[16],
            qn[16], dn[16];
        snprintf(wn, sizeof wn, "w%d", l);
        snprintf(swn, sizeof swn, "sw%d", l);
        snprintf(zwn, sizeof zwn, "zw%d", l);
        snprintf(bn, sizeof bn, "b%d", l);
        snprintf(sbn, sizeof sbn, "sb%d", l);
        snprintf(zbn, sizeof zbn, "zb%d", l);
        snprintf(wdn, sizeof wdn, "wd%d", l);
        snprintf(bdn, sizeof bdn, "bd%d", l);
        snprintf(cn, sizeof cn, "c%d", l);
        snprintf(rn, sizeof rn, "r%d", l);
        snprintf(qn, sizeof qn, "q%d", l);
        snprintf(dn, sizeof dn, "d%d", l);
        int8_t w[QC * QC * 9], zw[QC] = {0};
        int32_t b[QC], zb[QC] = {0};
        float sw[QC], sb[QC], wf[QC * QC * 9], bf[QC];
        for (int i = 0; i < QC; i++) {
            sw[i] = 0.002f * (float)rand_int(1, 9);
            sb[i] = sx * sw[i];
            b[i] = rand_int(-500, 500);
            bf[i] = (float)b[i] * sb[i];
        }
        if (l == 0 && bad_scale != 1.0f) sw[2] = bad_scale;
        zb[1] = bias_zp;
        for (int i = 0; i < QC * QC * 9; i++) {
            w[i] = (int8_t)rand_int(-127, 127);
            wf[i] = (float)w[i] * sw[i / (QC * 9)];
        }
        int64_t swd[1] = {l == 0 && bad_len ? bad_len : QC};
        const char *cin[3] = {prev, wdn, bdn};
        if (twin) {
            ob_initializer(m, wdn, ROUSE_DT_FLOAT, 4, wd, wf, sizeof wf);
            ob_initializer(m, bdn, ROUSE_DT_FLOAT, 1, cd, bf, sizeof bf);
        } else {
            ob_initializer(m, wn, ROUSE_DT_INT8, 4, wd, w, sizeof w);
            ob_initializer(m, swn, ROUSE_DT_FLOAT, 1, swd, sw, sizeof(float) * (size_t)swd[0]);
            ob_initializer(m, zwn, ROUSE_DT_INT8, 1, swd, zw, (size_t)swd[0]);
            ob_initializer(m, bn, ROUSE_DT_INT32, 1, cd, b, sizeof b);
            ob_initializer(m, sbn, ROUSE_DT_FLOAT, 1, cd, sb, sizeof sb);
            ob_initializer(m, zbn, ROUSE_DT_INT32, 1, cd, zb, sizeof zb);
            const char *wi[3] = {wn, swn, zwn}, *bi[3] = {bn, sbn, zbn};
            const char *wo = wdn, *bo = bdn;
            ob_node *d = ob_add_node(m, "DequantizeLinear", wdn, 3, wi, 1, &wo);
            ob_attr_int(d, "axis", 0);
            d = ob_add_node(m, "DequantizeLinear", bdn, 3, bi, 1, &bo);
            ob_attr_int(d, "axis", 0);
        }
        const char *co = cn;
        ob_node *c = ob_add_node(m, "Conv", cn, 3, cin, 1, &co);
        ob_attr_ints(c, "kernel_shape", 2, k);
        ob_attr_ints(c, "pads", 4, pads);
        const char *qin = cn;
        const char *s_q = l == 0 ? "s_a" : "s_o", *z_q = l == 0 ? "z_a" : "z_o";
        if (l == 0) {
            const char *ro = rn;
            ob_add_node(m, "Relu", rn, 1, &co, 1, &ro);
            qin = rn;
        }
        const char *qi2[3] = {qin, s_q, z_q}, *qo = qn;
        ob_add_node(m, "QuantizeLinear", qn, 3, qi2, 1, &qo);
        const char *di2[3] = {qn, s_q, z_q}, *dout = l == 1 ? "y" : dn;
        ob_add_node(m, "DequantizeLinear", dn, 3, di2, 1, &dout);
        prev = l == 0 ? "d0" : "d1";
        sx = 0.02f;
    }
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    rouse_buf_init(out);
    ob_serialize(m, out);
    ob_model_free(m);
}

static const float *run_qdq(rouse_buf *model, const float *x, rouse_session **s, rouse_model **m,
                            rouse_session_stats *st)
{
    rouse_errbuf eb;
    if (rouse_model_load_memory(model->data, model->len, m, &eb) < 0) fail_msg("load: %s", eb.msg);
    rouse_session_options o = {.threads = 1};
    if (rouse_session_create(*m, &o, s, &eb) < 0) fail_msg("session: %s", eb.msg);
    rouse_tensor in = {.name = "x", .dtype = ROUSE_DT_FLOAT, .rank = 4, .shape = {1, QC, 10, 10},
                       .data = x, .nbytes = sizeof(float) * QC * 100};
    if (rouse_session_run(*s, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    assert_int_equal(rouse_session_get_stats(*s, st), 0);
    rouse_tensor y;
    assert_int_equal(rouse_session_output(*s, 0, &y), 0);
    return y.data;
}

static void test_qdq_fused(void **state)
{
    (void)state;
    uint64_t seed = rng;
    rouse_buf qdq, twin;
    qdq_model(false, 1.0f, 0, 0, &qdq);
    rng = seed; /* the same weights */
    qdq_model(true, 1.0f, 0, 0, &twin);
    float x[QC * 100];
    for (int i = 0; i < QC * 100; i++)
        x[i] = (float)rand_int(-100, 100) / 80.0f;
    rouse_session *sa, *sb;
    rouse_model *ma, *mb;
    rouse_session_stats sta, stb;
    const float *ya = run_qdq(&qdq, x, &sa, &ma, &sta);
    const float *yb = run_qdq(&twin, x, &sb, &mb, &stb);
    /* Fused: Q, two int8 convolutions, DQ (and layout reorders), all on
     * oneDNN; the twin runs its convolutions in float between Q / DQ pairs. */
    print_message("fused: %d steps (%d reorders); float twin: %d steps\n", sta.steps,
                  sta.reorders, stb.steps);
    assert_int_equal(sta.ref_steps, 0);
    assert_int_equal(sta.steps - sta.reorders, 4);
    assert_int_equal(stb.steps - stb.reorders, 8);
    int off = 0;
    for (int i = 0; i < QC * 100; i++) {
        float d = fabsf(ya[i] - yb[i]);
        if (d > 0.05f * 1.01f) fail_msg("element %d: fused %g, float %g", i, ya[i], yb[i]);
        off += d > 0;
    }
    if (off > QC * 100 / 20) fail_msg("%d of %d elements differ by one step", off, QC * 100);
    rouse_session_destroy(sa);
    rouse_session_destroy(sb);
    rouse_model_destroy(ma);
    rouse_model_destroy(mb);
    rouse_buf_fini(&qdq);
    rouse_buf_fini(&twin);
}

static void expect_load_error(rouse_buf *model, int want_rc, const char *want)
{
    rouse_errbuf eb;
    rouse_model *m = NULL;
    int rc = rouse_model_load_memory(model->data, model->len, &m, &eb);
    if (rc >= 0) {
        rouse_model_destroy(m);
        fail_msg("loaded a model that should fail with '%s'", want);
    }
    assert_int_equal(rc, want_rc);
    if (!strstr(eb.msg, want)) fail_msg("error '%s' lacks '%s'", eb.msg, want);
}

static void test_qdq_bad_params(void **state)
{
    (void)state;
    rouse_buf b;
    qdq_model(false, 0.0f, 0, 0, &b);
    expect_load_error(&b, ROUSE_EFORMAT, "scale 0 (element 2) must be positive");
    rouse_buf_fini(&b);
    qdq_model(false, -0.5f, 0, 0, &b);
    expect_load_error(&b, ROUSE_EFORMAT, "scale -0.5 (element 2) must be positive");
    rouse_buf_fini(&b);
    qdq_model(false, 1.0f, 5, 0, &b);
    expect_load_error(&b, ROUSE_EMISMATCH, "input 'x_scale' must hold 1 value or 8 (one per element of the axis), has 5");
    rouse_buf_fini(&b);
    qdq_model(false, 1.0f, 0, 7, &b);
    expect_load_error(&b, ROUSE_EFORMAT, "an int32 input needs zero point 0, got 7 (element 1)");
    rouse_buf_fini(&b);
}

/* A compiled plan of a fused QDQ model (QLinearConv nodes, a made int32
 * bias, int8 weights in the kernel's layout) gives the same bytes as the
 * model it was compiled from. */
static void test_qdq_plan(void **state)
{
    (void)state;
    rouse_buf qdq;
    qdq_model(false, 1.0f, 0, 0, &qdq);
    /* ROUSE_SEED_OUT=FILE writes this model (the onnx_load fuzz seed
     * qdq_conv.onnx; its compiled plan is the plan_open seed). */
    const char *seed = getenv("ROUSE_SEED_OUT");
    if (seed) {
        FILE *f = fopen(seed, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(qdq.data, 1, qdq.len, f), qdq.len);
        assert_int_equal(fclose(f), 0);
    }
    float x[QC * 100];
    for (int i = 0; i < QC * 100; i++)
        x[i] = (float)rand_int(-100, 100) / 80.0f;
    rouse_session *sa, *sb;
    rouse_model *ma, *mb;
    rouse_session_stats sta, stb;
    const float *ya = run_qdq(&qdq, x, &sa, &ma, &sta);
    char path[4096];
    snprintf(path, sizeof(path), "%s/rouse_qdq_planXXXXXX", test_tmp_dir());
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    rouse_errbuf eb;
    if (rouse_model_compile(ma, path, &eb) < 0) fail_msg("compile: %s", eb.msg);
    if (rouse_model_open_plan(path, &mb, &eb) < 0) fail_msg("open plan: %s", eb.msg);
    rouse_session_options o = {.threads = 1};
    if (rouse_session_create(mb, &o, &sb, &eb) < 0) fail_msg("session: %s", eb.msg);
    rouse_tensor in = {.name = "x", .dtype = ROUSE_DT_FLOAT, .rank = 4, .shape = {1, QC, 10, 10},
                       .data = x, .nbytes = sizeof(float) * QC * 100};
    if (rouse_session_run(sb, &in, 1, &eb) < 0) fail_msg("run plan: %s", eb.msg);
    rouse_tensor yb;
    assert_int_equal(rouse_session_output(sb, 0, &yb), 0);
    assert_memory_equal(ya, yb.data, sizeof(float) * QC * 100);
    assert_int_equal(rouse_session_get_stats(sb, &stb), 0);
    assert_int_equal(stb.dnnl_steps, sta.dnnl_steps);
    unlink(path);
    rouse_session_destroy(sa);
    rouse_session_destroy(sb);
    rouse_model_destroy(ma);
    rouse_model_destroy(mb);
    rouse_buf_fini(&qdq);
}

/* --- u8 residual Adds and average pooling in QDQ form ---------------------------------------- */

/* a, b (u8) -> DQ -> Add [-> Relu] -> Q -> y; DQ(y) -> AveragePool 2x2 ->
 * Q -> DQ -> GlobalAveragePool -> Q -> z. With `fused`, every pattern fits
 * the u8 kernels (equal shapes, the pools' Q with their DQ's parameters);
 * else b broadcasts ([1, C, 1, 1]) and the pools requantize to other
 * parameters, so each pattern falls back to its nodes one by one. */
#define RC 16
static void residual_model(bool fused, bool relu, rouse_buf *out)
{
    ob_model *m = ob_model_new(13);
    int64_t ad[4] = {2, RC, 8, 6}, bd[4] = {fused ? 2 : 1, RC, fused ? 8 : 1, fused ? 6 : 1};
    int64_t k2[2] = {2, 2};
    ob_input(m, "a", ROUSE_DT_UINT8, 4, ad);
    ob_input(m, "b", ROUSE_DT_UINT8, 4, bd);
    scalar_f(m, "sa", 0.031f);
    scalar_q(m, "za", ROUSE_DT_UINT8, 121);
    scalar_f(m, "sb", 0.047f);
    scalar_q(m, "zb", ROUSE_DT_UINT8, 9);
    scalar_f(m, "sy", relu ? 0.043f : 0.071f);
    scalar_q(m, "zy", ROUSE_DT_UINT8, relu ? 0 : 87);
    scalar_f(m, "sp", fused ? (relu ? 0.043f : 0.071f) : 0.05f);
    scalar_q(m, "zp", ROUSE_DT_UINT8, fused ? (relu ? 0 : 87) : 80);
    const char *da_in[3] = {"a", "sa", "za"}, *db_in[3] = {"b", "sb", "zb"}, *fa = "fa", *fb = "fb";
    ob_add_node(m, "DequantizeLinear", "dqa", 3, da_in, 1, &fa);
    ob_add_node(m, "DequantizeLinear", "dqb", 3, db_in, 1, &fb);
    const char *add_in[2] = {"fa", "fb"}, *sum = "sum", *act = "act", *y = "y";
    ob_add_node(m, "Add", "add", 2, add_in, 1, &sum);
    if (relu) ob_add_node(m, "Relu", "relu", 1, &sum, 1, &act);
    const char *q_in[3] = {relu ? "act" : "sum", "sy", "zy"};
    ob_add_node(m, "QuantizeLinear", "qy", 3, q_in, 1, &y);
    const char *dy_in[3] = {"y", "sy", "zy"}, *fy = "fy", *ap = "ap", *apq = "apq";
    ob_add_node(m, "DequantizeLinear", "dqy", 3, dy_in, 1, &fy);
    ob_node *n = ob_add_node(m, "AveragePool", "avgpool", 1, &fy, 1, &ap);
    ob_attr_ints(n, "kernel_shape", 2, k2);
    ob_attr_ints(n, "strides", 2, k2);
    const char *qa_in[3] = {"ap", "sp", "zp"}, *dp_in[3] = {"apq", "sp", "zp"}, *fp = "fp";
    const char *g = "g", *z = "z", *qg_in[3] = {"g", "sp", "zp"};
    ob_add_node(m, "QuantizeLinear", "qap", 3, qa_in, 1, &apq);
    ob_add_node(m, "DequantizeLinear", "dqap", 3, dp_in, 1, &fp);
    ob_add_node(m, "GlobalAveragePool", "gap", 1, &fp, 1, &g);
    ob_add_node(m, "QuantizeLinear", "qg", 3, qg_in, 1, &z);
    ob_output_any(m, "y", ROUSE_DT_UINT8);
    ob_output_any(m, "z", ROUSE_DT_UINT8);
    rouse_buf_init(out);
    ob_serialize(m, out);
    ob_model_free(m);
}

static void check_residual(bool fused, bool relu)
{
    rouse_buf model;
    residual_model(fused, relu, &model);
    rouse_errbuf eb;
    rouse_model *m;
    if (rouse_model_load_memory(model.data, model.len, &m, &eb) < 0) fail_msg("load: %s", eb.msg);
    int64_t ad[4] = {2, RC, 8, 6}, bd[4] = {fused ? 2 : 1, RC, fused ? 8 : 1, fused ? 6 : 1};
    uint8_t *a = rand_bytes(numel(4, ad), 0, 255), *b = rand_bytes(numel(4, bd), 0, 255);
    rouse_tensor in[2] = {{.name = "a",
                           .dtype = ROUSE_DT_UINT8,
                           .rank = 4,
                           .data = a,
                           .nbytes = (size_t)numel(4, ad)},
                          {.name = "b",
                           .dtype = ROUSE_DT_UINT8,
                           .rank = 4,
                           .data = b,
                           .nbytes = (size_t)numel(4, bd)}};
    memcpy(in[0].shape, ad, sizeof(ad));
    memcpy(in[1].shape, bd, sizeof(bd));
    rouse_session *fast, *ref;
    rouse_session_options fo = {.threads = 1}, ro = {.threads = 1, .reference_kernels = 1};
    if (rouse_session_create(m, &fo, &fast, &eb) < 0 || rouse_session_create(m, &ro, &ref, &eb) < 0)
        fail_msg("session: %s", eb.msg);
    rouse_session_set_profiling(fast, 1);
    if (rouse_session_run(fast, in, 2, &eb) < 0 || rouse_session_run(ref, in, 2, &eb) < 0)
        fail_msg("run: %s", eb.msg);
    for (int o = 0; o < 2; o++) {
        rouse_tensor ta, tb;
        assert_int_equal(rouse_session_output(fast, o, &ta), 0);
        assert_int_equal(rouse_session_output(ref, o, &tb), 0);
        assert_int_equal(ta.dtype, ROUSE_DT_UINT8);
        assert_int_equal(ta.nbytes, tb.nbytes);
        assert_memory_equal(ta.shape, tb.shape, sizeof(int64_t) * 4);
        size_t off = 0;
        for (size_t i = 0; i < ta.nbytes; i++) {
            int va = ((const uint8_t *)ta.data)[i], vb = ((const uint8_t *)tb.data)[i];
            if (abs(va - vb) > 1) fail_msg("output %d element %zu: %d, reference %d", o, i, va, vb);
            off += va != vb;
        }
        /* An average of integers lies on .5 often (a quarter of 2x2
         * windows): the u8 pool rounds that tie to even, the float
         * reference wherever its rounding error puts it. */
        if (off > ta.nbytes / (o ? 3 : 20) + 2)
            fail_msg("output %d: %zu of %zu elements differ by one step", o, off, ta.nbytes);
    }
    /* Fused: no float step left, the Add and the pools on oneDNN over u8. */
    int qdq_steps = 0, add = 0, pools = 0;
    for (int i = 0; i < rouse_session_profile_count(fast); i++) {
        rouse_profile_entry pe;
        rouse_session_profile_entry(fast, i, &pe);
        qdq_steps += !strcmp(pe.op, "QuantizeLinear") || !strcmp(pe.op, "DequantizeLinear");
        add += !strcmp(pe.op, "Add") && !strcmp(pe.kernel, "onednn");
        pools += strstr(pe.op, "AveragePool") && !strcmp(pe.kernel, "onednn");
    }
    if (fused && (qdq_steps || add != 1 || pools != 2))
        fail_msg("u8 patterns not fused: %d Q/DQ steps, %d Add, %d pools on oneDNN", qdq_steps, add,
                 pools);
    if (!fused && !qdq_steps) fail_msg("the broadcasting Add was taken by the u8 kernel");
    rouse_session_destroy(fast);
    rouse_session_destroy(ref);
    rouse_model_destroy(m);
    rouse_buf_fini(&model);
    free(a);
    free(b);
}

static void test_qdq_residual_pool(void **state)
{
    (void)state;
    check_residual(true, true);
    check_residual(true, false);
    check_residual(false, true);
    check_residual(false, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qlinear_conv),
        cmocka_unit_test(test_qlinear_matmul),
        cmocka_unit_test(test_qlinear_matmul_activations),
        cmocka_unit_test(test_quantize_reorders),
        cmocka_unit_test(test_qdq_fused),
        cmocka_unit_test(test_qdq_bad_params),
        cmocka_unit_test(test_qdq_plan),
        cmocka_unit_test(test_qdq_residual_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
