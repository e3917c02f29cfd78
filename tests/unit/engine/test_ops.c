/*
 * Every oneDNN-backed operator against the plain C reference kernels, on
 * random shapes: the same single-node (or small fused) model runs once with
 * the optimized kernels and once with reference_kernels, and the outputs
 * must agree within 1e-4 + 1e-3 * |ref|. Shapes are odd on purpose, and the
 * cases cover padding corner cases, strides, dilations, groups, ceil_mode,
 * broadcasting and the fusions (activation, residual sum).
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

#include "onnx_builder.h"
#include "rouse/engine.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

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

static float *rand_floats(int64_t n)
{
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    assert_non_null(p);
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)(next_u32() % 20001) / 10000.0f - 1.0f;
    return p;
}

static int64_t numel(int rank, const int64_t *d)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= d[i];
    return n;
}

/* Runs the model with both kernel sets on input x and compares output 0.
 * Returns the session stats of the optimized run. */
static rouse_session_stats run_both(rouse_buf *model, const char *in_name, int rank,
                                    const int64_t *dims, const float *x, int threads)
{
    rouse_errbuf eb;
    rouse_model *m;
    int rc = rouse_model_load_memory(model->data, model->len, &m, &eb);
    if (rc < 0) fail_msg("load: %s", eb.msg);
    rouse_tensor in = {.name = in_name, .dtype = ROUSE_DT_FLOAT, .rank = rank, .data = x};
    memcpy(in.shape, dims, sizeof(int64_t) * (size_t)rank);
    in.nbytes = sizeof(float) * (size_t)numel(rank, dims);

    rouse_session *fast, *ref;
    rouse_session_options fo = {.threads = threads}, ro = {.threads = 1, .reference_kernels = 1};
    if (rouse_session_create(m, &fo, &fast, &eb) < 0) fail_msg("session: %s", eb.msg);
    if (rouse_session_create(m, &ro, &ref, &eb) < 0) fail_msg("session: %s", eb.msg);
    if (rouse_session_run(fast, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    if (rouse_session_run(ref, &in, 1, &eb) < 0) fail_msg("run ref: %s", eb.msg);
    rouse_tensor a, b;
    assert_int_equal(rouse_session_output(fast, 0, &a), 0);
    assert_int_equal(rouse_session_output(ref, 0, &b), 0);
    assert_int_equal(a.rank, b.rank);
    assert_memory_equal(a.shape, b.shape, sizeof(int64_t) * (size_t)a.rank);
    assert_int_equal(a.nbytes, b.nbytes);
    const float *pa = a.data, *pb = b.data;
    for (size_t i = 0; i < a.nbytes / 4; i++) {
        float tol = 1e-4f + 1e-3f * fabsf(pb[i]);
        if (!(fabsf(pa[i] - pb[i]) <= tol))
            fail_msg("element %zu: optimized %g, reference %g", i, (double)pa[i], (double)pb[i]);
    }
    rouse_session_stats st;
    assert_int_equal(rouse_session_get_stats(fast, &st), 0);
    rouse_session_destroy(fast);
    rouse_session_destroy(ref);
    rouse_model_destroy(m);
    return st;
}

typedef struct conv_case {
    int n_sp;
    int64_t n, c, m, group;
    int64_t size[3], k[3], s[3], d[3], pb[3], pe[3];
    const char *auto_pad; /* NULL for explicit pads */
    bool bias;
    const char *act; /* NULL, "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh" */
    bool residual;   /* Add(conv, x2) where x2 = second conv of the same input */
} conv_case;

static void add_conv(ob_model *m, const conv_case *c, const char *in, const char *wname,
                     const char *bname, const char *out, const char *name)
{
    int64_t wd[5] = {c->m, c->c / c->group};
    for (int i = 0; i < c->n_sp; i++)
        wd[2 + i] = c->k[i];
    int64_t wn = numel(2 + c->n_sp, wd);
    float *w = rand_floats(wn);
    ob_initializer(m, wname, ROUSE_DT_FLOAT, 2 + c->n_sp, wd, w, sizeof(float) * (size_t)wn);
    free(w);
    const char *ins[3] = {in, wname, bname};
    if (c->bias) {
        float *b = rand_floats(c->m);
        ob_initializer(m, bname, ROUSE_DT_FLOAT, 1, &c->m, b, sizeof(float) * (size_t)c->m);
        free(b);
    }
    ob_node *n = ob_add_node(m, "Conv", name, c->bias ? 3 : 2, ins, 1, &out);
    ob_attr_ints(n, "kernel_shape", c->n_sp, c->k);
    ob_attr_ints(n, "strides", c->n_sp, c->s);
    ob_attr_ints(n, "dilations", c->n_sp, c->d);
    if (c->group > 1) ob_attr_int(n, "group", c->group);
    if (c->auto_pad) {
        ob_attr_string(n, "auto_pad", c->auto_pad);
    } else {
        int64_t pads[6];
        for (int i = 0; i < c->n_sp; i++) {
            pads[i] = c->pb[i];
            pads[c->n_sp + i] = c->pe[i];
        }
        ob_attr_ints(n, "pads", 2 * c->n_sp, pads);
    }
}

static rouse_session_stats run_conv_case(const conv_case *c, int threads)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[5] = {c->n, c->c};
    for (int i = 0; i < c->n_sp; i++)
        xd[2 + i] = c->size[i];
    int rank = 2 + c->n_sp;
    ob_input(m, "x", ROUSE_DT_FLOAT, rank, xd);
    const char *conv_out = c->act || c->residual ? "conv" : "y";
    add_conv(m, c, "x", "w", "b", conv_out, "conv0");
    const char *cur = conv_out;
    if (c->residual) {
        /* A second, shape-identical conv supplies the residual. */
        add_conv(m, c, "x", "w2", "b2", "skip", "conv1");
        const char *ins[2] = {cur, "skip"};
        const char *o = c->act ? "sum" : "y";
        ob_add_node(m, "Add", "add0", 2, ins, 1, &o);
        cur = o;
    }
    if (c->act) {
        const char *o = "y";
        if (strcmp(c->act, "Clip") == 0) {
            /* Opset 13: the bounds are (constant) inputs. */
            float lo = -0.5f, hi = 0.75f;
            ob_initializer(m, "lo", ROUSE_DT_FLOAT, 0, NULL, &lo, 4);
            ob_initializer(m, "hi", ROUSE_DT_FLOAT, 0, NULL, &hi, 4);
            const char *ins[3] = {cur, "lo", "hi"};
            ob_add_node(m, "Clip", "act0", 3, ins, 1, &o);
        } else {
            ob_node *a = ob_add_node(m, c->act, "act0", 1, &cur, 1, &o);
            if (strcmp(c->act, "LeakyRelu") == 0) ob_attr_float(a, "alpha", 0.2f);
        }
    }
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    rouse_buf bytes;
    rouse_buf_init(&bytes);
    ob_serialize(m, &bytes);
    ob_model_free(m);
    float *x = rand_floats(numel(rank, xd));
    rouse_session_stats st = run_both(&bytes, "x", rank, xd, x, threads);
    free(x);
    rouse_buf_fini(&bytes);
    return st;
}

static void conv_random_shapes(void **state)
{
    (void)state;
    for (int iter = 0; iter < 60; iter++) {
        conv_case c = {0};
        c.n_sp = iter % 10 == 0 ? 1 : iter % 10 == 1 ? 3 : 2;
        c.n = rand_int(1, 2);
        int kind = rand_int(0, 2); /* 0 plain, 1 grouped, 2 depthwise */
        c.group = kind == 0 ? 1 : kind == 1 ? 2 : rand_int(2, 5);
        c.c = c.group * rand_int(1, 3);
        c.m = kind == 2 ? c.c : c.group * rand_int(1, 4);
        if (kind == 2) c.c = c.group, c.m = c.group;
        for (int i = 0; i < c.n_sp; i++) {
            c.size[i] = rand_int(c.n_sp == 3 ? 3 : 5, c.n_sp == 3 ? 6 : 13);
            c.k[i] = rand_int(1, 3);
            c.s[i] = rand_int(1, 2);
            c.d[i] = rand_int(1, 2);
            c.pb[i] = rand_int(0, 2);
            c.pe[i] = rand_int(0, 2);
            if ((c.k[i] - 1) * c.d[i] + 1 > c.size[i] + c.pb[i] + c.pe[i]) c.d[i] = 1;
        }
        if (iter % 7 == 3) c.auto_pad = "SAME_UPPER";
        if (iter % 7 == 5) c.auto_pad = "SAME_LOWER";
        if (iter % 11 == 4) c.auto_pad = "VALID";
        c.bias = iter % 3 != 0;
        run_conv_case(&c, 1 + iter % 2);
    }
}

static void conv_fusions(void **state)
{
    (void)state;
    static const char *acts[] = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh"};
    for (int i = 0; i < 10; i++) {
        conv_case c = {.n_sp = 2, .n = 1, .c = 16, .m = 16, .group = 1, .bias = true};
        for (int k = 0; k < 2; k++) {
            c.size[k] = 7 + i;
            c.k[k] = 3;
            c.s[k] = 1;
            c.d[k] = 1;
            c.pb[k] = c.pe[k] = 1;
        }
        c.act = acts[i % 5];
        c.residual = i >= 5;
        rouse_session_stats st = run_conv_case(&c, 1);
        if (c.residual) assert_int_equal(st.sum_fused, 1);
        /* Everything but the final layout change runs in oneDNN. */
        assert_int_equal(st.ref_steps, 0);
    }
}

static void gemm_random(void **state)
{
    (void)state;
    for (int iter = 0; iter < 24; iter++) {
        int64_t M = rand_int(1, 9), K = rand_int(1, 40), N = rand_int(1, 17);
        int ta = iter & 1, tb = (iter >> 1) & 1;
        int cshape = (iter >> 2) % 4; /* none, [N], [1,N], [M,N] */
        ob_model *m = ob_model_new(13);
        int64_t ad[2] = {ta ? K : M, ta ? M : K};
        int64_t bd[2] = {tb ? N : K, tb ? K : N};
        ob_input(m, "a", ROUSE_DT_FLOAT, 2, ad);
        float *b = rand_floats(K * N);
        ob_initializer(m, "b", ROUSE_DT_FLOAT, 2, bd, b, sizeof(float) * (size_t)(K * N));
        free(b);
        int64_t cd[2] = {cshape == 3 ? M : 1, N};
        const char *ins[3] = {"a", "b", "c"};
        if (cshape) {
            float *cv = rand_floats(cd[0] * N);
            ob_initializer(m, "c", ROUSE_DT_FLOAT, cshape == 1 ? 1 : 2, cshape == 1 ? &N : cd, cv,
                           sizeof(float) * (size_t)(cd[0] * N));
            free(cv);
        }
        const char *o = iter % 5 == 0 ? "g" : "y";
        ob_node *n = ob_add_node(m, "Gemm", "gemm0", cshape ? 3 : 2, ins, 1, &o);
        ob_attr_int(n, "transA", ta);
        ob_attr_int(n, "transB", tb);
        if (iter % 3 == 1) ob_attr_float(n, "alpha", 0.5f);
        if (iter % 3 == 2) ob_attr_float(n, "beta", 2.0f);
        if (iter % 5 == 0) {
            const char *r = "y";
            ob_add_node(m, "Relu", "relu0", 1, &o, 1, &r);
        }
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        rouse_buf_init(&bytes);
        ob_serialize(m, &bytes);
        ob_model_free(m);
        float *x = rand_floats(M * K);
        run_both(&bytes, "a", 2, ad, x, 1);
        free(x);
        rouse_buf_fini(&bytes);
    }
}

static void pool_random(void **state)
{
    (void)state;
    static const char *ops[] = {"MaxPool", "AveragePool", "GlobalAveragePool"};
    for (int iter = 0; iter < 48; iter++) {
        const char *op = ops[iter % 3];
        int nsp = iter % 8 == 7 ? 1 : 2;
        int64_t xd[4] = {rand_int(1, 2), rand_int(1, 20)};
        int64_t k[2], s[2], d[2], pads[4];
        for (int i = 0; i < nsp; i++) {
            xd[2 + i] = rand_int(4, 15);
            k[i] = rand_int(1, 3);
            s[i] = rand_int(1, 3);
            d[i] = strcmp(op, "MaxPool") == 0 ? rand_int(1, 2) : 1;
            pads[i] = rand_int(0, k[i] - 1 < 1 ? 0 : k[i] - 1);
            pads[nsp + i] = rand_int(0, k[i] - 1 < 1 ? 0 : k[i] - 1);
        }
        ob_model *m = ob_model_new(13);
        ob_input(m, "x", ROUSE_DT_FLOAT, 2 + nsp, xd);
        const char *in = "x", *o = "y";
        ob_node *n = ob_add_node(m, op, "pool0", 1, &in, 1, &o);
        if (strcmp(op, "GlobalAveragePool") != 0) {
            ob_attr_ints(n, "kernel_shape", nsp, k);
            ob_attr_ints(n, "strides", nsp, s);
            ob_attr_ints(n, "pads", 2 * nsp, pads);
            if (strcmp(op, "MaxPool") == 0) ob_attr_ints(n, "dilations", nsp, d);
            ob_attr_int(n, "ceil_mode", (iter / 3) % 2);
            if (strcmp(op, "AveragePool") == 0) ob_attr_int(n, "count_include_pad", (iter / 6) % 2);
        }
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        rouse_buf_init(&bytes);
        ob_serialize(m, &bytes);
        ob_model_free(m);
        float *x = rand_floats(numel(2 + nsp, xd));
        run_both(&bytes, "x", 2 + nsp, xd, x, 1 + iter % 2);
        free(x);
        rouse_buf_fini(&bytes);
    }
}

/* conv -> {pool, concat, eltwise, binary} keeps blocked layouts between
 * oneDNN kernels; the result must still match the reference. */
static void layouts_flow_between_kernels(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {1, 3, 17, 19};
    ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
    conv_case c = {.n_sp = 2, .n = 1, .c = 3, .m = 32, .group = 1, .bias = true};
    for (int k = 0; k < 2; k++) {
        c.k[k] = 3;
        c.s[k] = 1;
        c.d[k] = 1;
        c.pb[k] = c.pe[k] = 1;
    }
    add_conv(m, &c, "x", "w0", "b0", "c0", "conv0");
    c.c = 32;
    c.m = 32;
    add_conv(m, &c, "c0", "w1", "b1", "c1", "conv1");
    add_conv(m, &c, "c0", "w2", "b2", "c2", "conv2");
    const char *cat_in[2] = {"c1", "c2"}, *cat = "cat";
    ob_node *n = ob_add_node(m, "Concat", "cat0", 2, cat_in, 1, &cat);
    ob_attr_int(n, "axis", 1);
    const char *sig = "sig";
    ob_add_node(m, "Sigmoid", "sig0", 1, &cat, 1, &sig);
    const char *mul_in[2] = {"cat", "sig"}, *mul = "mul";
    ob_add_node(m, "Mul", "mul0", 2, mul_in, 1, &mul);
    const char *mp = "mp";
    n = ob_add_node(m, "MaxPool", "mp0", 1, &mul, 1, &mp);
    int64_t k2[2] = {2, 2}, s2[2] = {2, 2};
    ob_attr_ints(n, "kernel_shape", 2, k2);
    ob_attr_ints(n, "strides", 2, s2);
    ob_attr_int(n, "ceil_mode", 1);
    const char *gap = "gap";
    ob_add_node(m, "GlobalAveragePool", "gap0", 1, &mp, 1, &gap);
    const char *fl = "y";
    ob_add_node(m, "Flatten", "flat0", 1, &gap, 1, &fl);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    rouse_buf bytes;
    rouse_buf_init(&bytes);
    ob_serialize(m, &bytes);
    ob_model_free(m);
    float *x = rand_floats(numel(4, xd));
    rouse_session_stats st = run_both(&bytes, "x", 4, xd, x, 2);
    assert_int_equal(st.ref_steps, 0);
    free(x);
    rouse_buf_fini(&bytes);
}

/* MatMul with a constant B (a Linear layer): A of rank 2..4 times B [K, N]
 * (or B with the same rank), with and without the bias Add that the plan
 * fuses, in either operand order. */
static void matmul_const_random(void **state)
{
    (void)state;
    for (int iter = 0; iter < 24; iter++) {
        int rank = 2 + iter % 3;
        int64_t ad[4], bd[4];
        for (int i = 0; i < rank - 2; i++)
            ad[i] = rand_int(1, 3);
        int64_t M = rand_int(1, 33), K = rand_int(1, 70), N = rand_int(1, 40);
        ad[rank - 2] = M;
        ad[rank - 1] = K;
        int brank = iter % 4 == 3 ? rank : 2;
        for (int i = 0; i < brank - 2; i++)
            bd[i] = iter % 8 == 3 ? 1 : ad[i];
        bd[brank - 2] = K;
        bd[brank - 1] = N;
        int bias = iter % 3; /* none, Add(mm, b), Add(b, mm) */
        ob_model *m = ob_model_new(13);
        ob_input(m, "a", ROUSE_DT_FLOAT, rank, ad);
        float *b = rand_floats(numel(brank, bd));
        ob_initializer(m, "b", ROUSE_DT_FLOAT, brank, bd, b,
                       sizeof(float) * (size_t)numel(brank, bd));
        free(b);
        const char *ins[2] = {"a", "b"}, *mm = bias ? "mm" : "y", *y = "y";
        ob_add_node(m, "MatMul", "mm0", 2, ins, 1, &mm);
        if (bias) {
            float *c = rand_floats(N);
            ob_initializer(m, "c", ROUSE_DT_FLOAT, 1, &N, c, sizeof(float) * (size_t)N);
            free(c);
            const char *add_in[2] = {bias == 1 ? "mm" : "c", bias == 1 ? "c" : "mm"};
            ob_add_node(m, "Add", "add0", 2, add_in, 1, &y);
        }
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        rouse_buf_init(&bytes);
        ob_serialize(m, &bytes);
        ob_model_free(m);
        float *x = rand_floats(numel(rank, ad));
        rouse_session_stats st = run_both(&bytes, "a", rank, ad, x, 1 + iter % 2);
        assert_int_equal(st.ref_steps, 0);
        assert_int_equal(st.dnnl_steps, 1); /* the bias Add is fused */
        free(x);
        rouse_buf_fini(&bytes);
    }
}

/* MatMul of two activations with batch dims, as in attention:
 * x [B, H, S, D] times Transpose(x) [B, H, D, S], then scaled, masked by a
 * broadcast constant and multiplied back: x [B,H,S,D] -> [B,H,S,D]. */
static void matmul_batched_random(void **state)
{
    (void)state;
    for (int iter = 0; iter < 12; iter++) {
        int64_t xd[4] = {rand_int(1, 2), rand_int(1, 4), rand_int(1, 33), rand_int(1, 20)};
        int64_t S = xd[2];
        ob_model *m = ob_model_new(13);
        ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
        const char *xt = "xt";
        ob_node *n = ob_add_node(m, "Transpose", "tr0", 1, (const char *[]){"x"}, 1, &xt);
        int64_t perm[4] = {0, 1, 3, 2};
        ob_attr_ints(n, "perm", 4, perm);
        const char *s_in[2] = {"x", "xt"}, *sc = "sc";
        ob_add_node(m, "MatMul", "mm0", 2, s_in, 1, &sc);
        float scale = 0.125f;
        ob_initializer(m, "scale", ROUSE_DT_FLOAT, 0, NULL, &scale, sizeof(scale));
        const char *d_in[2] = {"sc", "scale"}, *dv = "dv";
        ob_add_node(m, "Div", "div0", 2, d_in, 1, &dv);
        int64_t md[4] = {1, 1, 1, S};
        float *mask = rand_floats(S);
        ob_initializer(m, "mask", ROUSE_DT_FLOAT, 4, md, mask, sizeof(float) * (size_t)S);
        free(mask);
        const char *a_in[2] = {"dv", "mask"}, *ad = "ad";
        ob_add_node(m, "Add", "add0", 2, a_in, 1, &ad);
        const char *sm = "sm";
        n = ob_add_node(m, "Softmax", "sm0", 1, &ad, 1, &sm);
        ob_attr_int(n, "axis", -1);
        const char *c_in[2] = {"sm", "x"}, *y = "y";
        ob_add_node(m, "MatMul", "mm1", 2, c_in, 1, &y);
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        rouse_buf_init(&bytes);
        ob_serialize(m, &bytes);
        ob_model_free(m);
        float *x = rand_floats(numel(4, xd));
        rouse_session_stats st = run_both(&bytes, "x", 4, xd, x, 1);
        assert_true(st.dnnl_steps >= 4); /* both MatMuls, the Div and the Add */
        free(x);
        rouse_buf_fini(&bytes);
    }
}

/* Binary ops whose second operand broadcasts (bias, LayerNorm statistics,
 * scalars), with the broadcast operand first for Add/Mul (swapped) and for
 * Sub/Div (reference kernel), against constants and activations. */
static void binary_broadcast_random(void **state)
{
    (void)state;
    static const char *ops[4] = {"Add", "Sub", "Mul", "Div"};
    for (int iter = 0; iter < 32; iter++) {
        int rank = 1 + iter % 4;
        int64_t xd[4], bd[4];
        for (int i = 0; i < rank; i++)
            xd[i] = rand_int(1, 9);
        int brank = rand_int(0, rank);
        for (int i = 0; i < brank; i++)
            bd[i] = rand_int(0, 1) ? xd[rank - brank + i] : 1;
        bool first = iter % 8 >= 4, act = iter % 3 == 0;
        ob_model *m = ob_model_new(13);
        ob_input(m, "x", ROUSE_DT_FLOAT, rank, xd);
        const char *bname = "b";
        if (act) {
            /* An activation operand of the same rank: ReduceMean over the
             * dims where bd is 1 keeps them as 1. */
            int64_t axes[4];
            int na = 0;
            for (int i = 0; i < rank; i++) {
                int bi = i - (rank - brank);
                if (bi < 0 || bd[bi] == 1) axes[na++] = i;
            }
            if (na == 0) axes[na++] = rank - 1;
            ob_node *n = ob_add_node(m, "ReduceMean", "rm0", 1, (const char *[]){"x"}, 1,
                                     (const char *[]){"rb"});
            ob_attr_ints(n, "axes", na, axes);
            bname = "rb";
        } else {
            float *b = rand_floats(numel(brank, bd));
            for (int64_t i = 0; i < numel(brank, bd); i++)
                b[i] += b[i] >= 0 ? 0.5f : -0.5f;
            ob_initializer(m, "b", ROUSE_DT_FLOAT, brank, bd, b,
                           sizeof(float) * (size_t)numel(brank, bd));
            free(b);
        }
        const char *ins[2] = {first ? bname : "x", first ? "x" : bname}, *y = "y";
        ob_add_node(m, ops[iter % 4], "bin0", 2, ins, 1, &y);
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        rouse_buf_init(&bytes);
        ob_serialize(m, &bytes);
        ob_model_free(m);
        float *x = rand_floats(numel(rank, xd));
        for (int64_t i = 0; i < numel(rank, xd); i++)
            x[i] += x[i] >= 0 ? 0.5f : -0.5f;
        run_both(&bytes, "x", rank, xd, x, 1);
        free(x);
        rouse_buf_fini(&bytes);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_random_shapes),
        cmocka_unit_test(conv_fusions),
        cmocka_unit_test(gemm_random),
        cmocka_unit_test(pool_random),
        cmocka_unit_test(layouts_flow_between_kernels),
        cmocka_unit_test(matmul_const_random),
        cmocka_unit_test(matmul_batched_random),
        cmocka_unit_test(binary_broadcast_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
