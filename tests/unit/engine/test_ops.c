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
 * Returns the session stats of the optimized run; with ref_out, also a copy
 * of the reference output (owned: free()). */
static rouse_session_stats run_both_copy(rouse_buf *model, const char *in_name, int rank,
                                         const int64_t *dims, const float *x, int threads,
                                         float **ref_out)
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
    if (ref_out) {
        *ref_out = malloc(b.nbytes ? b.nbytes : 1);
        assert_non_null(*ref_out);
        memcpy(*ref_out, b.data, b.nbytes);
    }
    rouse_session_stats st;
    assert_int_equal(rouse_session_get_stats(fast, &st), 0);
    rouse_session_destroy(fast);
    rouse_session_destroy(ref);
    rouse_model_destroy(m);
    return st;
}

static rouse_session_stats run_both(rouse_buf *model, const char *in_name, int rank,
                                    const int64_t *dims, const float *x, int threads)
{
    return run_both_copy(model, in_name, rank, dims, x, threads, NULL);
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
    /* HardSwish arrived in opset 14. */
    ob_model *m = ob_model_new(c->act && strcmp(c->act, "HardSwish") == 0 ? 14 : 13);
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
            if (strcmp(c->act, "Elu") == 0) ob_attr_float(a, "alpha", 0.7f);
            if (strcmp(c->act, "HardSigmoid") == 0) {
                ob_attr_float(a, "alpha", 0.3f);
                ob_attr_float(a, "beta", 0.4f);
            }
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

/* The activations of the described families that oneDNN runs as post-ops:
 * fused after a Conv (alone and after a residual Add), the optimized result
 * must equal the reference (Conv, then the op's own scalar definition). */
static void conv_fusions_described_acts(void **state)
{
    (void)state;
    static const char *acts[] = {"HardSigmoid", "HardSwish", "Elu", "Softplus", "Abs"};
    const int n_acts = (int)(sizeof(acts) / sizeof(acts[0]));
    for (int i = 0; i < 2 * n_acts; i++) {
        conv_case c = {.n_sp = 2, .n = 1, .c = 8, .m = 16, .group = 1, .bias = true};
        for (int k = 0; k < 2; k++) {
            c.size[k] = 5 + i % 4;
            c.k[k] = 3;
            c.s[k] = 1;
            c.d[k] = 1;
            c.pb[k] = c.pe[k] = 1;
        }
        c.act = acts[i % n_acts];
        c.residual = i >= n_acts;
        rouse_session_stats st = run_conv_case(&c, 1);
        if (c.residual) assert_int_equal(st.sum_fused, 1);
        assert_int_equal(st.ref_steps, 0);
    }
}

/* The same activations after a MatMul with a constant weight (fused into
 * its chain) and after a Gemm (fused by the optimizer): one oneDNN step. */
static void matmul_gemm_described_acts(void **state)
{
    (void)state;
    static const char *acts[] = {"HardSigmoid", "HardSwish", "Elu", "Softplus", "Abs"};
    for (int i = 0; i < 10; i++) {
        const char *act = acts[i % 5];
        bool gemm = i >= 5;
        int64_t M = rand_int(1, 9), K = rand_int(1, 20), N = rand_int(1, 12);
        int64_t ad[2] = {M, K}, bd[2] = {K, N};
        ob_model *m = ob_model_new(14);
        ob_input(m, "a", ROUSE_DT_FLOAT, 2, ad);
        float *b = rand_floats(K * N);
        ob_initializer(m, "b", ROUSE_DT_FLOAT, 2, bd, b, sizeof(float) * (size_t)(K * N));
        free(b);
        float *c = rand_floats(N);
        ob_initializer(m, "c", ROUSE_DT_FLOAT, 1, &N, c, sizeof(float) * (size_t)N);
        free(c);
        const char *ins[3] = {"a", "b", "c"}, *mm = "mm", *y = "y";
        ob_add_node(m, gemm ? "Gemm" : "MatMul", "mm0", gemm ? 3 : 2, ins, 1, &mm);
        ob_node *n = ob_add_node(m, act, "act0", 1, &mm, 1, &y);
        if (strcmp(act, "HardSigmoid") == 0) ob_attr_float(n, "beta", 0.3f);
        if (strcmp(act, "Elu") == 0) ob_attr_float(n, "alpha", 0.5f);
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        rouse_buf_init(&bytes);
        ob_serialize(m, &bytes);
        ob_model_free(m);
        float *x = rand_floats(M * K);
        for (int64_t k = 0; k < M * K; k++)
            x[k] *= 3.0f; /* reach both sides of HardSigmoid's and HardSwish's clamps */
        rouse_session_stats st = run_both(&bytes, "a", 2, ad, x, 1);
        assert_int_equal(st.ref_steps, 0);
        assert_int_equal(st.dnnl_steps, 1);
        free(x);
        rouse_buf_fini(&bytes);
    }
}

/* The same activations alone on a graph input: one oneDNN eltwise step
 * each, equal to the reference kernel. (Exp and Log stay on the reference:
 * oneDNN's exp turns NaN into inf, its log(1) is -1.4e-6.) */
static void described_acts_standalone(void **state)
{
    (void)state;
    static const char *acts[] = {"HardSwish", "Elu", "Softplus", "Abs"};
    for (int i = 0; i < (int)(sizeof(acts) / sizeof(acts[0])); i++) {
        ob_model *m = ob_model_new(14);
        int64_t xd[3] = {2, rand_int(1, 9), rand_int(1, 17)};
        ob_input(m, "x", ROUSE_DT_FLOAT, 3, xd);
        const char *in = "x", *out = "y";
        ob_node *n = ob_add_node(m, acts[i], "act", 1, &in, 1, &out);
        if (strcmp(acts[i], "Elu") == 0) ob_attr_float(n, "alpha", 1.5f);
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        rouse_buf_init(&bytes);
        ob_serialize(m, &bytes);
        ob_model_free(m);
        float *x = rand_floats(numel(3, xd));
        rouse_session_stats st = run_both(&bytes, "x", 3, xd, x, 1);
        assert_int_equal(st.ref_steps, 0);
        assert_int_equal(st.dnnl_steps, 1);
        free(x);
        rouse_buf_fini(&bytes);
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

/* A squeeze-excitation block (MobileNetV3, EfficientNet, RegNet): a
 * convolution's output, in a blocked layout, times a per-channel gate
 * [N, C, 1, 1] computed from it, in either operand order, with channel
 * counts that fill the 16-channel blocks and that do not. The Mul runs on
 * oneDNN binary straight on the blocked layout. */
static void squeeze_excitation_random(void **state)
{
    (void)state;
    static const int64_t chans[] = {32, 24, 40};
    for (int iter = 0; iter < 6; iter++) {
        int64_t ch = chans[iter % 3], batch = 1 + iter / 3;
        ob_model *m = ob_model_new(13);
        int64_t xd[4] = {batch, 3, 11 + iter, 9 + iter};
        ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
        conv_case c = {.n_sp = 2, .n = batch, .c = 3, .m = ch, .group = 1, .bias = true};
        for (int k = 0; k < 2; k++) {
            c.k[k] = 3;
            c.s[k] = 1;
            c.d[k] = 1;
            c.pb[k] = c.pe[k] = 1;
        }
        add_conv(m, &c, "x", "w0", "b0", "c0", "conv0");
        const char *c0 = "c0", *gap = "gap", *gate = "gate";
        ob_add_node(m, "GlobalAveragePool", "gap0", 1, &c0, 1, &gap);
        conv_case g = {.n_sp = 2, .n = batch, .c = ch, .m = ch, .group = 1, .bias = true};
        for (int k = 0; k < 2; k++) {
            g.k[k] = g.s[k] = g.d[k] = 1;
            g.pb[k] = g.pe[k] = 0;
        }
        add_conv(m, &g, "gap", "wg", "bg", "gl", "convg");
        const char *gl = "gl";
        ob_add_node(m, "Sigmoid", "sig0", 1, &gl, 1, &gate);
        const char *mul_ab[2] = {"c0", "gate"}, *mul_ba[2] = {"gate", "c0"}, *se = "se";
        ob_add_node(m, "Mul", "mul0", 2, iter % 2 ? mul_ba : mul_ab, 1, &se);
        c.c = ch;
        c.m = 16;
        add_conv(m, &c, "se", "w1", "b1", "y", "conv1");
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        rouse_buf_init(&bytes);
        ob_serialize(m, &bytes);
        ob_model_free(m);
        float *x = rand_floats(numel(4, xd));
        rouse_session_stats st = run_both(&bytes, "x", 4, xd, x, 1);
        assert_int_equal(st.ref_steps, 0);
        free(x);
        rouse_buf_fini(&bytes);
    }
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

/* --- transformer blocks: LayerNorm, GELU, Softmax, attention ---------------------- */

static void serialize(ob_model *m, rouse_buf *bytes)
{
    rouse_buf_init(bytes);
    ob_serialize(m, bytes);
    ob_model_free(m);
}

static void add_scalar(ob_model *m, const char *name, float v)
{
    ob_initializer(m, name, ROUSE_DT_FLOAT, 0, NULL, &v, sizeof(v));
}

static void add_vector(ob_model *m, const char *name, int64_t n)
{
    float *v = rand_floats(n);
    ob_initializer(m, name, ROUSE_DT_FLOAT, 1, &n, v, sizeof(float) * (size_t)n);
    free(v);
}

static ob_node *node1(ob_model *m, const char *op, const char *name, const char *a, const char *out)
{
    return ob_add_node(m, op, name, 1, (const char *[]){a}, 1, (const char *[]){out});
}

static ob_node *node2(ob_model *m, const char *op, const char *name, const char *a, const char *b,
                      const char *out)
{
    return ob_add_node(m, op, name, 2, (const char *[]){a, b}, 1, (const char *[]){out});
}

/* How an exporter may spell LayerNorm, and the variants that must not fuse. */
typedef struct ln_case {
    bool mul_square; /* d * d instead of Pow(d, 2) */
    bool swap;       /* constants first in Add(eps) and Mul(scale) */
    bool scale, bias;
    int64_t axes1, axes2; /* ReduceMean axes (fuses when both are -1 / rank-1) */
    float exponent;       /* Pow exponent (2 fuses) */
    bool d_is_output;     /* x - mean is also a graph output: cannot vanish */
} ln_case;

/* x -> LayerNorm written out -> y (output 0). */
static void build_layernorm(ob_model *m, const ln_case *c, const char *x, const char *y,
                            int64_t last, const char *pfx)
{
    char n[16][48];
    for (int i = 0; i < 16; i++)
        snprintf(n[i], sizeof(n[i]), "%s%d", pfx, i);
    ob_attr_ints(node1(m, "ReduceMean", n[0], x, n[1]), "axes", 1, &c->axes1);
    node2(m, "Sub", n[2], x, n[1], n[3]); /* d = n3 */
    if (c->mul_square) {
        node2(m, "Mul", n[4], n[3], n[3], n[5]);
    } else {
        add_scalar(m, n[6], c->exponent);
        node2(m, "Pow", n[4], n[3], n[6], n[5]);
    }
    ob_attr_ints(node1(m, "ReduceMean", n[7], n[5], n[8]), "axes", 1, &c->axes2);
    add_scalar(m, n[9], 1e-5f);
    node2(m, "Add", n[10], c->swap ? n[9] : n[8], c->swap ? n[8] : n[9], n[11]);
    node1(m, "Sqrt", n[12], n[11], n[13]);
    const char *div_out = c->scale || c->bias ? n[14] : y;
    node2(m, "Div", n[15], n[3], n[13], div_out);
    const char *cur = div_out;
    char sname[64], bname[64], mo[64];
    snprintf(sname, sizeof(sname), "%s_scale", pfx);
    snprintf(bname, sizeof(bname), "%s_bias", pfx);
    snprintf(mo, sizeof(mo), "%s_mul", pfx);
    if (c->scale) {
        add_vector(m, sname, last);
        const char *o = c->bias ? mo : y;
        node2(m, "Mul", sname, c->swap ? sname : cur, c->swap ? cur : sname, o);
        cur = o;
    }
    if (c->bias) {
        add_vector(m, bname, last);
        node2(m, "Add", bname, cur, bname, y);
    }
    if (c->d_is_output) ob_output_any(m, n[3], ROUSE_DT_FLOAT);
}

/* LayerNorm over the last dim, computed here in double. */
static void expect_layernorm(const float *x, int64_t rows, int64_t len, const float *scale,
                             const float *bias, const float *got)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xs = x + r * len;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < len; i++)
            mean += xs[i];
        mean /= (double)len;
        for (int64_t i = 0; i < len; i++)
            var += (xs[i] - mean) * (xs[i] - mean);
        var /= (double)len;
        for (int64_t i = 0; i < len; i++) {
            double want = (xs[i] - mean) / sqrt(var + 1e-5);
            if (scale) want *= scale[i];
            if (bias) want += bias[i];
            float tol = 1e-4f + 1e-3f * fabsf((float)want);
            if (!(fabsf(got[r * len + i] - (float)want) <= tol))
                fail_msg("row %lld element %lld: got %g, want %g", (long long)r, (long long)i,
                         (double)got[r * len + i], want);
        }
    }
}

/* The written-out LayerNorm fuses into one step (oneDNN's layer
 * normalization) whatever the operand order, with or without scale and
 * bias, and computes what the formula says. */
static void layernorm_fused_random(void **state)
{
    (void)state;
    for (int iter = 0; iter < 24; iter++) {
        int rank = 1 + iter % 4;
        int64_t xd[4];
        for (int i = 0; i < rank; i++)
            xd[i] = rand_int(1, 5);
        xd[rank - 1] = rand_int(1, 70);
        int64_t last = xd[rank - 1];
        ln_case c = {.mul_square = iter % 5 == 1,
                     .swap = iter % 2 == 1,
                     .scale = iter % 4 != 3,
                     .bias = iter % 4 < 2 || iter % 4 == 3,
                     .axes1 = iter % 3 == 2 ? rank - 1 : -1,
                     .exponent = 2.0f};
        c.axes2 = c.axes1;
        ob_model *m = ob_model_new(13);
        ob_input(m, "x", ROUSE_DT_FLOAT, rank, xd);
        /* Known scale and bias, to check the formula: rebuild them the same way. */
        uint64_t seed = rng;
        build_layernorm(m, &c, "x", "y", last, "ln");
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        serialize(m, &bytes);
        uint64_t after = rng;
        rng = seed;
        float *scale = c.scale ? rand_floats(last) : NULL;
        float *bias = c.bias ? rand_floats(last) : NULL;
        rng = after;
        float *x = rand_floats(numel(rank, xd)), *y;
        rouse_session_stats st = run_both_copy(&bytes, "x", rank, xd, x, 1, &y);
        assert_int_equal(st.steps, 1);
        assert_int_equal(st.dnnl_steps, rank > 1); /* oneDNN wants rank >= 2 */
        expect_layernorm(x, numel(rank, xd) / last, last, scale, bias, y);
        free(scale);
        free(bias);
        free(x);
        free(y);
        rouse_buf_fini(&bytes);
    }
}

/* Graphs that look like LayerNorm but are not (another axis, other axes in
 * the two means, another exponent, an intermediate that is an output) stay
 * as written and still agree with the reference kernels. */
static void layernorm_variants_not_fused(void **state)
{
    (void)state;
    for (int iter = 0; iter < 16; iter++) {
        int64_t xd[3] = {rand_int(1, 3), rand_int(2, 6), rand_int(2, 20)};
        ln_case c = {.scale = true, .bias = true, .axes1 = -1, .axes2 = -1, .exponent = 2.0f};
        switch (iter % 4) {
        case 0:
            c.axes1 = c.axes2 = -2;
            break;
        case 1:
            c.axes2 = -2;
            break;
        case 2:
            c.exponent = 4.0f;
            break;
        case 3:
            c.d_is_output = true;
            break;
        }
        ob_model *m = ob_model_new(13);
        ob_input(m, "x", ROUSE_DT_FLOAT, 3, xd);
        build_layernorm(m, &c, "x", "y", xd[2], "ln");
        rouse_buf bytes;
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        serialize(m, &bytes);
        float *x = rand_floats(numel(3, xd));
        rouse_session_stats st = run_both(&bytes, "x", 3, xd, x, 1);
        assert_true(st.steps >= 6);
        free(x);
        rouse_buf_fini(&bytes);
    }
}

/* x -> GELU written out in one of the exporters' orders -> y. order 3 uses
 * x * (1/sqrt(2)); half != 0.5 makes a look-alike that must not fuse. */
static void build_gelu(ob_model *m, int order, float half, const char *x, const char *y,
                       const char *pfx)
{
    char n[12][48];
    for (int i = 0; i < 12; i++)
        snprintf(n[i], sizeof(n[i]), "%s%d", pfx, i);
    if (order == 3) {
        add_scalar(m, n[0], 0.70710678f);
        node2(m, "Mul", n[1], n[0], x, n[2]);
    } else {
        add_scalar(m, n[0], 1.41421356f);
        node2(m, "Div", n[1], x, n[0], n[2]);
    }
    node1(m, "Erf", n[3], n[2], n[4]);
    add_scalar(m, n[5], 1.0f);
    node2(m, "Add", n[6], n[5], n[4], n[7]); /* a = 1 + erf */
    add_scalar(m, n[8], half);
    switch (order) {
    case 0:
    case 3: /* (x * 0.5) * a */
        node2(m, "Mul", n[9], x, n[8], n[10]);
        node2(m, "Mul", n[11], n[10], n[7], y);
        break;
    case 1: /* (x * a) * 0.5 */
        node2(m, "Mul", n[9], x, n[7], n[10]);
        node2(m, "Mul", n[11], n[10], n[8], y);
        break;
    default: /* x * (a * 0.5) */
        node2(m, "Mul", n[9], n[7], n[8], n[10]);
        node2(m, "Mul", n[11], x, n[10], y);
        break;
    }
}

/* GELU fuses into one eltwise step, or into the MatMul (+ bias) before it;
 * a look-alike with another constant does not fuse. */
static void gelu_random(void **state)
{
    (void)state;
    for (int iter = 0; iter < 24; iter++) {
        int rank = 1 + iter % 3, order = iter % 4;
        bool after_matmul = iter % 8 >= 4 && rank >= 2, fake = iter % 6 == 5;
        int64_t xd[3];
        for (int i = 0; i < rank; i++)
            xd[i] = rand_int(1, 9);
        int64_t K = xd[rank - 1], N = rand_int(1, 40);
        ob_model *m = ob_model_new(13);
        ob_input(m, "x", ROUSE_DT_FLOAT, rank, xd);
        const char *g_in = "x";
        if (after_matmul) {
            int64_t wd[2] = {K, N};
            float *w = rand_floats(K * N);
            ob_initializer(m, "w", ROUSE_DT_FLOAT, 2, wd, w, sizeof(float) * (size_t)(K * N));
            free(w);
            add_vector(m, "bias", N);
            node2(m, "MatMul", "mm", "x", "w", "mm_out");
            node2(m, "Add", "badd", "bias", "mm_out", "h");
            g_in = "h";
        }
        build_gelu(m, order, fake ? 0.6f : 0.5f, g_in, "y", "g");
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        serialize(m, &bytes);
        float *x = rand_floats(numel(rank, xd)), *y;
        for (int64_t i = 0; i < numel(rank, xd); i++)
            x[i] *= 4.0f; /* reach both tails */
        rouse_session_stats st = run_both_copy(&bytes, "x", rank, xd, x, 1, &y);
        if (fake) {
            assert_true(st.steps >= 5);
        } else {
            assert_int_equal(st.steps, 1);
            assert_int_equal(st.dnnl_steps, 1);
        }
        if (!after_matmul) {
            double half = fake ? 0.6 : 0.5;
            for (int64_t i = 0; i < numel(rank, xd); i++) {
                double want = half * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
                float tol = 1e-4f + 1e-3f * fabsf((float)want);
                if (!(fabsf(y[i] - (float)want) <= tol))
                    fail_msg("element %lld: got %g, want %g", (long long)i, (double)y[i], want);
            }
        }
        free(x);
        free(y);
        rouse_buf_fini(&bytes);
    }
}

/* Softmax on any axis through oneDNN; the legacy form (opset 11) only on the
 * last axis, where coercing to 2-D changes nothing. */
static void softmax_random(void **state)
{
    (void)state;
    for (int iter = 0; iter < 24; iter++) {
        int rank = 1 + iter % 4;
        bool legacy = iter % 3 == 2;
        int64_t xd[4];
        for (int i = 0; i < rank; i++)
            xd[i] = rand_int(1, 12);
        int64_t axis = rand_int(-rank, rank - 1);
        ob_model *m = ob_model_new(legacy ? 11 : 13);
        ob_input(m, "x", ROUSE_DT_FLOAT, rank, xd);
        ob_node *n = node1(m, "Softmax", "sm", "x", "y");
        ob_attr_int(n, "axis", axis);
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        serialize(m, &bytes);
        float *x = rand_floats(numel(rank, xd));
        for (int64_t i = 0; i < numel(rank, xd); i++)
            x[i] *= 20.0f;
        rouse_session_stats st = run_both(&bytes, "x", rank, xd, x, 1);
        bool last = axis == rank - 1 || axis == -1;
        assert_int_equal(st.dnnl_steps, !legacy || last);
        free(x);
        rouse_buf_fini(&bytes);
    }
}

/* A Transpose of a value in the arena is a view with permuted strides; every
 * kind of reader gets the right elements: oneDNN eltwise and binary kernels
 * on the strided layout, a reference kernel and a graph output through a
 * reorder to plain. */
static void transpose_views_random(void **state)
{
    (void)state;
    static const char *readers[4] = {"output", "Sigmoid", "Add", "ReduceMean"};
    for (int iter = 0; iter < 24; iter++) {
        int rank = 2 + iter % 3;
        int64_t xd[4], perm[4];
        for (int i = 0; i < rank; i++) {
            xd[i] = rand_int(1, 7);
            perm[i] = i;
        }
        for (int i = rank - 1; i > 0; i--) {
            int j = rand_int(0, i);
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        const char *reader = readers[iter % 4];
        ob_model *m = ob_model_new(13);
        ob_input(m, "x", ROUSE_DT_FLOAT, rank, xd);
        node1(m, "Relu", "relu", "x", "r"); /* puts the value in the arena */
        bool out_is_t = strcmp(reader, "output") == 0;
        ob_attr_ints(node1(m, "Transpose", "tr", "r", out_is_t ? "y" : "t"), "perm", rank, perm);
        if (strcmp(reader, "Sigmoid") == 0) {
            node1(m, "Sigmoid", "sig", "t", "y");
        } else if (strcmp(reader, "Add") == 0) {
            node2(m, "Add", "add", "t", "t2", "y");
            ob_attr_ints(node1(m, "Transpose", "tr2", "x", "t2"), "perm", rank, perm);
        } else if (!out_is_t) {
            int64_t ax = 0;
            ob_attr_ints(node1(m, "ReduceMean", "rm", "t", "y"), "axes", 1, &ax);
        }
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        serialize(m, &bytes);
        float *x = rand_floats(numel(rank, xd));
        rouse_session_stats st = run_both(&bytes, "x", rank, xd, x, 1);
        /* Only ReduceMean, and the Transpose of the graph input (not in the
         * arena), run on reference kernels. */
        assert_int_equal(st.ref_steps, iter % 4 >= 2);
        free(x);
        rouse_buf_fini(&bytes);
    }
}

/* The kernel of the single step a model's plan runs, by profiling one run. */
static const char *only_kernel(rouse_buf *model, const char *in_name, int rank, const int64_t *dims,
                               const float *x)
{
    rouse_errbuf eb;
    rouse_model *m;
    rouse_session *s;
    if (rouse_model_load_memory(model->data, model->len, &m, &eb) < 0) fail_msg("load: %s", eb.msg);
    if (rouse_session_create(m, &(rouse_session_options){.threads = 1}, &s, &eb) < 0)
        fail_msg("session: %s", eb.msg);
    assert_int_equal(rouse_session_set_profiling(s, 1), 0);
    rouse_tensor in = {.name = in_name, .dtype = ROUSE_DT_FLOAT, .rank = rank, .data = (void *)x};
    memcpy(in.shape, dims, sizeof(int64_t) * (size_t)rank);
    in.nbytes = sizeof(float) * (size_t)numel(rank, dims);
    if (rouse_session_run(s, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    assert_int_equal(rouse_session_profile_count(s), 1);
    rouse_profile_entry pe;
    assert_int_equal(rouse_session_profile_entry(s, 0, &pe), 0);
    const char *k = !strcmp(pe.kernel, "gemv") ? "gemv" : "other";
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    return k;
}

/* A MatMul of one row with a constant B [K, N] (a decoder's step) runs as
 * one gemv step streaming B as it lies, with the bias and a residual Add
 * of the input (K == N) fused into it: the same numbers as the reference
 * kernels, for rows of rank 2 and 3, widths past one page of B, and no
 * reorder of the weights. */
static void matmul_one_row_gemv(void **state)
{
    (void)state;
    for (int iter = 0; iter < 12; iter++) {
        int rank = 2 + iter % 2, tail = iter % 3; /* none, bias, bias + residual */
        int64_t K = rand_int(1, 300), N = tail == 2 ? K : rand_int(1, 3000);
        if (iter == 10) N = 5003;
        int64_t ad[3] = {1, 1, K}, bd[2] = {K, N};
        ad[rank - 1] = K;
        ob_model *m = ob_model_new(13);
        ob_input(m, "a", ROUSE_DT_FLOAT, rank, ad);
        float *b = rand_floats(K * N);
        ob_initializer(m, "b", ROUSE_DT_FLOAT, 2, bd, b, sizeof(float) * (size_t)(K * N));
        free(b);
        node2(m, "MatMul", "mm0", "a", "b", tail ? "mm" : "y");
        if (tail) {
            add_vector(m, "c", N);
            node2(m, "Add", "add0", "mm", "c", tail == 2 ? "mb" : "y");
        }
        if (tail == 2) node2(m, "Add", "res", "a", "mb", "y");
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        serialize(m, &bytes);
        float *x = rand_floats(K);
        rouse_session_stats st = run_both(&bytes, "a", rank, ad, x, 1 + iter % 2);
        assert_int_equal(st.ref_steps, 0);
        assert_int_equal(st.dnnl_steps, 1);
        assert_int_equal(st.reorders, 0);
        assert_string_equal(only_kernel(&bytes, "a", rank, ad, x), "gemv");
        free(x);
        rouse_buf_fini(&bytes);
    }
}

/* A MatMul of a few rows (a decoder's step of several sequences) with a
 * constant B: with the session's gemv_max_rows at least the rows, one
 * gemv step reading B as it lies (bias on every row, a residual Add of the
 * input fused), the reference kernels' numbers, no reorder of the weights;
 * above it (or by default), oneDNN's matmul. */
static const char *few_rows_kernel(rouse_buf *bytes, int rank, const int64_t *ad, const float *x,
                                   int max_rows, int *reorders)
{
    rouse_errbuf eb;
    rouse_model *m;
    rouse_session *fast, *ref;
    if (rouse_model_load_memory(bytes->data, bytes->len, &m, &eb) < 0) fail_msg("load: %s", eb.msg);
    rouse_session_options fo = {.threads = 1, .gemv_max_rows = max_rows},
                          ro = {.threads = 1, .reference_kernels = 1};
    if (rouse_session_create(m, &fo, &fast, &eb) < 0) fail_msg("session: %s", eb.msg);
    if (rouse_session_create(m, &ro, &ref, &eb) < 0) fail_msg("session: %s", eb.msg);
    assert_int_equal(rouse_session_set_profiling(fast, 1), 0);
    rouse_tensor in = {.name = "a", .dtype = ROUSE_DT_FLOAT, .rank = rank, .data = (void *)x};
    memcpy(in.shape, ad, sizeof(int64_t) * (size_t)rank);
    in.nbytes = sizeof(float) * (size_t)numel(rank, ad);
    if (rouse_session_run(fast, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    if (rouse_session_run(ref, &in, 1, &eb) < 0) fail_msg("run ref: %s", eb.msg);
    rouse_tensor a, b;
    assert_int_equal(rouse_session_output(fast, 0, &a), 0);
    assert_int_equal(rouse_session_output(ref, 0, &b), 0);
    assert_int_equal(a.nbytes, b.nbytes);
    const float *pa = a.data, *pb = b.data;
    for (size_t i = 0; i < a.nbytes / 4; i++)
        if (!(fabsf(pa[i] - pb[i]) <= 1e-4f + 1e-3f * fabsf(pb[i])))
            fail_msg("element %zu: optimized %g, reference %g", i, (double)pa[i], (double)pb[i]);
    rouse_session_stats st;
    assert_int_equal(rouse_session_get_stats(fast, &st), 0);
    *reorders = st.reorders;
    rouse_profile_entry pe;
    assert_int_equal(rouse_session_profile_entry(fast, 0, &pe), 0);
    const char *k = !strcmp(pe.kernel, "gemv") ? "gemv" : "other";
    rouse_session_destroy(fast);
    rouse_session_destroy(ref);
    rouse_model_destroy(m);
    return k;
}

static void matmul_few_rows_gemv(void **state)
{
    (void)state;
    for (int iter = 0; iter < 12; iter++) {
        int rank = 2 + iter % 2, tail = iter % 3; /* none, bias, bias + residual */
        int64_t rows = rand_int(2, 8), K = rand_int(1, 300), N = tail == 2 ? K : rand_int(1, 3000);
        int64_t ad[3] = {rows, 1, K}, bd[2] = {K, N};
        ad[rank - 1] = K;
        ob_model *m = ob_model_new(13);
        ob_input(m, "a", ROUSE_DT_FLOAT, rank, ad);
        float *b = rand_floats(K * N);
        ob_initializer(m, "b", ROUSE_DT_FLOAT, 2, bd, b, sizeof(float) * (size_t)(K * N));
        free(b);
        node2(m, "MatMul", "mm0", "a", "b", tail ? "mm" : "y");
        if (tail) {
            add_vector(m, "c", N);
            node2(m, "Add", "add0", "mm", "c", tail == 2 ? "mb" : "y");
        }
        if (tail == 2) node2(m, "Add", "res", "a", "mb", "y");
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        serialize(m, &bytes);
        float *x = rand_floats(rows * K);
        int reorders;
        assert_string_equal(few_rows_kernel(&bytes, rank, ad, x, 8, &reorders), "gemv");
        assert_int_equal(reorders, 0);
        assert_string_equal(few_rows_kernel(&bytes, rank, ad, x, (int)rows - 1, &reorders),
                            "other");
        free(x);
        rouse_buf_fini(&bytes);
    }
}

/* A Linear layer on h [B, S, E]: MatMul with a constant [E, N] plus bias. */
static void add_linear(ob_model *m, const char *pfx, const char *in, int64_t e, int64_t n,
                       const char *out)
{
    char w[48], b[48], mm[48], mmn[48], an[48];
    snprintf(w, sizeof(w), "%s_w", pfx);
    snprintf(b, sizeof(b), "%s_b", pfx);
    snprintf(mm, sizeof(mm), "%s_mm", pfx);
    snprintf(mmn, sizeof(mmn), "%s_mmn", pfx);
    snprintf(an, sizeof(an), "%s_add", pfx);
    int64_t wd[2] = {e, n};
    float *wv = rand_floats(e * n);
    for (int64_t i = 0; i < e * n; i++)
        wv[i] *= 0.3f;
    ob_initializer(m, w, ROUSE_DT_FLOAT, 2, wd, wv, sizeof(float) * (size_t)(e * n));
    free(wv);
    add_vector(m, b, n);
    node2(m, "MatMul", mmn, in, w, mm);
    node2(m, "Add", an, b, mm, out);
}

static void add_shape(ob_model *m, const char *name, int n, const int64_t *d)
{
    int64_t len = n;
    ob_initializer(m, name, ROUSE_DT_INT64, 1, &len, d, sizeof(int64_t) * (size_t)n);
}

/* One BERT encoder layer as exporters write it: heads split by Reshape and
 * Transpose, scaled scores plus a mask computed at run time, Softmax,
 * heads merged, residual Adds, written-out LayerNorm and GELU. The plan
 * must need no reference kernel except the mask's ReduceMean and no
 * reorder, and agree with the reference kernels. */
static void attention_layer_random(void **state)
{
    (void)state;
    for (int iter = 0; iter < 8; iter++) {
        int64_t B = rand_int(1, 2), S = rand_int(1, 20), H = rand_int(1, 3), D = rand_int(1, 17);
        int64_t E = H * D, F = rand_int(1, 50);
        int64_t hd[3] = {B, S, E};
        ob_model *m = ob_model_new(13);
        ob_input(m, "h", ROUSE_DT_FLOAT, 3, hd);
        int64_t split[4] = {B, S, H, D}, merged[3] = {B, S, E}, maskd[4] = {B, 1, 1, S};
        add_shape(m, "split", 4, split);
        add_shape(m, "merged", 3, merged);
        add_shape(m, "maskd", 4, maskd);
        int64_t p_qv[4] = {0, 2, 1, 3}, p_k[4] = {0, 2, 3, 1};
        add_linear(m, "q", "h", E, E, "q");
        add_linear(m, "k", "h", E, E, "k");
        add_linear(m, "v", "h", E, E, "v");
        node2(m, "Reshape", "qr", "q", "split", "q4");
        node2(m, "Reshape", "kr", "k", "split", "k4");
        node2(m, "Reshape", "vr", "v", "split", "v4");
        ob_attr_ints(node1(m, "Transpose", "qt", "q4", "qh"), "perm", 4, p_qv);
        ob_attr_ints(node1(m, "Transpose", "kt", "k4", "kh"), "perm", 4, p_k);
        ob_attr_ints(node1(m, "Transpose", "vt", "v4", "vh"), "perm", 4, p_qv);
        node2(m, "MatMul", "scores", "qh", "kh", "s0");
        add_scalar(m, "sqrt_d", sqrtf((float)D));
        node2(m, "Div", "scale", "s0", "sqrt_d", "s1");
        /* A mask that depends on the input: [B, S, 1] -> [B, 1, 1, S]. */
        int64_t ax = 2;
        ob_attr_ints(node1(m, "ReduceMean", "mrm", "h", "mr"), "axes", 1, &ax);
        node2(m, "Reshape", "mrs", "mr", "maskd", "mask");
        node2(m, "Add", "masked", "s1", "mask", "s2");
        ob_attr_int(node1(m, "Softmax", "sm", "s2", "p"), "axis", -1);
        node2(m, "MatMul", "ctx", "p", "vh", "c4");
        ob_attr_ints(node1(m, "Transpose", "ct", "c4", "ct4"), "perm", 4, p_qv);
        node2(m, "Reshape", "cr", "ct4", "merged", "c");
        add_linear(m, "o", "c", E, E, "o");
        node2(m, "Add", "res1", "h", "o", "r1");
        ln_case ln = {.scale = true, .bias = true, .axes1 = -1, .axes2 = -1, .exponent = 2.0f};
        build_layernorm(m, &ln, "r1", "n1", E, "ln1");
        add_linear(m, "f1", "n1", E, F, "f1");
        build_gelu(m, iter % 4, 0.5f, "f1", "g", "gelu");
        add_linear(m, "f2", "g", F, E, "f2");
        node2(m, "Add", "res2", "n1", "f2", "r2");
        build_layernorm(m, &ln, "r2", "y", E, "ln2");
        ob_output_any(m, "y", ROUSE_DT_FLOAT);
        rouse_buf bytes;
        serialize(m, &bytes);
        float *x = rand_floats(numel(3, hd));
        rouse_session_stats st = run_both(&bytes, "h", 3, hd, x, 1 + iter % 2);
        assert_int_equal(st.ref_steps, 1);
        assert_int_equal(st.reorders, 0);
        /* Q, K, V, scores (+scale, +mask), softmax, context, output (+residual),
         * LayerNorm, FFN in (+GELU), FFN out (+residual), LayerNorm. */
        assert_int_equal(st.dnnl_steps, 11);
        free(x);
        rouse_buf_fini(&bytes);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_random_shapes),
        cmocka_unit_test(conv_fusions),
        cmocka_unit_test(conv_fusions_described_acts),
        cmocka_unit_test(described_acts_standalone),
        cmocka_unit_test(matmul_gemm_described_acts),
        cmocka_unit_test(gemm_random),
        cmocka_unit_test(pool_random),
        cmocka_unit_test(layouts_flow_between_kernels),
        cmocka_unit_test(squeeze_excitation_random),
        cmocka_unit_test(matmul_const_random),
        cmocka_unit_test(matmul_one_row_gemv),
        cmocka_unit_test(matmul_few_rows_gemv),
        cmocka_unit_test(matmul_batched_random),
        cmocka_unit_test(binary_broadcast_random),
        cmocka_unit_test(layernorm_fused_random),
        cmocka_unit_test(layernorm_variants_not_fused),
        cmocka_unit_test(gelu_random),
        cmocka_unit_test(softmax_random),
        cmocka_unit_test(transpose_views_random),
        cmocka_unit_test(attention_layer_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
