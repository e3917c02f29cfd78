/*
 * Gemm in QDQ form (DequantizeLinear of the u8 / s8 input and of the int8
 * weight initializer, Gemm, QuantizeLinear), as other quantizers write a
 * classifier: the load-time fusion runs it as a 1x1 int8 convolution.
 *
 * Each case is a model built here (per-tensor and per-channel weights,
 * with and without C, transB 0 and 1, alpha and beta, a Relu the output's
 * saturation computes, s8 and u8 data, two layers passing u8 data). For
 * every case:
 *   - the output against a reference computed here in double precision
 *     from the ONNX definitions (DequantizeLinear, Gemm, QuantizeLinear
 *     rounding half to even and saturating): at most one step apart, and
 *     on few elements (the int8 kernel multiplies the int32 sum by the
 *     scale in float);
 *   - the steps run: a fused case has no Gemm and no Quantize/
 *     DequantizeLinear step left and its QLinearConv runs on oneDNN; a case
 *     the pattern does not fit (transA, a negative alpha, C of [M, N],
 *     weight scales along K) keeps its float Gemm and logs why;
 *   - a compiled plan of the model gives the same bytes.
 * With a data folder (the models written by --write, their outputs from
 * ONNX Runtime 1.30 as DIR/CASE/<output>.npy, see DIR/README.md), the same
 * checks against ONNX Runtime's outputs on the stored model and input.
 * Bad QDQ parameters around a Gemm (zero or negative scales, per-channel
 * scales of the wrong length, zero points out of the input's range) fail
 * at load with the node named.
 *
 * Usage: engine_qdq_gemm [DATA_DIR]     checks (ONNX Runtime's outputs too)
 *        engine_qdq_gemm --write DIR    writes DIR/CASE/model.onnx and x.npy
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/tensor_file.h"
#include "common/log.h"
#include "onnx_builder.h"
#include "rouse/engine.h"
#include "tmp_dir.h"

static int failures;

static void fail(const char *cs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s: ", cs);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static int rand_int(int lo, int hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (int)((uint32_t)(rng >> 16) % (uint32_t)(hi - lo + 1));
}

enum { BIAS_NONE, BIAS_DQ, BIAS_FLOAT, BIAS_ROW, BIAS_ONE, BIAS_FULL };

typedef struct gcase {
    const char *name;
    int64_t m, k, n;
    int trans_a, trans_b;
    float alpha, beta;
    bool per_channel;
    int w_axis; /* axis of per-channel scales: -1 the output columns' */
    int bias;   /* BIAS_*: DequantizeLinear of int32 [N]; float [N], [1, N], [1], [M, N] */
    bool relu;
    bool x_s8, y_s8;
    int layers;      /* 2: a second Gemm (N x N) reads the first's u8 output */
    const char *why; /* NULL: fused; else what the log says */
} gcase;

static const gcase cases[] = {
    {"tensor_transb1_bias", 3, 24, 10, 0, 1, 1.0f, 1.0f, false, -1, BIAS_DQ, false, false, false, 1,
     NULL},
    {"channel_transb1_bias_relu", 4, 64, 32, 0, 1, 1.0f, 1.0f, true, -1, BIAS_DQ, true, false,
     false, 1, NULL},
    {"channel_transb0_nobias", 5, 40, 16, 0, 0, 1.0f, 1.0f, true, -1, BIAS_NONE, false, false,
     false, 1, NULL},
    {"tensor_transb0_alpha_beta_row", 2, 32, 12, 0, 0, 0.5f, 2.0f, false, -1, BIAS_ROW, false,
     false, false, 1, NULL},
    {"channel_transb1_s8_float_bias", 3, 48, 20, 0, 1, 1.75f, 0.5f, true, -1, BIAS_FLOAT, false,
     true, true, 1, NULL},
    {"tensor_transb1_one_bias_beta0", 1, 16, 8, 0, 1, 1.0f, 0.0f, false, -1, BIAS_ONE, false, false,
     false, 1, NULL},
    {"channel_transb0_one_bias", 2, 20, 6, 0, 0, 1.0f, 3.0f, true, -1, BIAS_ONE, false, false, true,
     1, NULL},
    {"two_layers", 4, 64, 48, 0, 1, 1.0f, 1.0f, true, -1, BIAS_DQ, true, false, false, 2, NULL},
    {"fallback_transa", 3, 24, 10, 1, 1, 1.0f, 1.0f, false, -1, BIAS_DQ, false, false, false, 1,
     "transA = 1"},
    {"fallback_negative_alpha", 3, 24, 10, 0, 1, -1.0f, 1.0f, true, -1, BIAS_DQ, false, false,
     false, 1, "alpha -1"},
    {"fallback_bias_rows", 3, 24, 10, 0, 0, 1.0f, 1.0f, false, -1, BIAS_FULL, false, false, false,
     1, "C is not a constant"},
    {"fallback_scales_along_k", 3, 24, 10, 0, 1, 1.0f, 1.0f, true, 1, BIAS_NONE, false, false,
     false, 1, "scales per tensor or along its axis 0"},
};
#define N_CASES ((int)(sizeof(cases) / sizeof(cases[0])))

/* One layer's parameters, kept for the reference. */
typedef struct layer {
    int64_t k, n;
    int8_t *w; /* as stored: [N, K] with transB, [K, N] without */
    float *sw; /* per channel (n) or [0] */
    int64_t n_sw;
    float *c; /* float C as the model means it, [M, N] expanded; NULL: none */
    float sx, sy;
    int zx, zy;
    bool x_s8, y_s8;
} layer;

typedef struct built {
    rouse_buf model;
    layer l[2];
    int layers;
} built;

static void scalar_f(ob_model *m, const char *name, float v)
{
    ob_initializer(m, name, ROUSE_DT_FLOAT, 0, NULL, &v, sizeof(v));
}

static void scalar_q(ob_model *m, const char *name, bool s8, int v)
{
    int8_t b = (int8_t)v;
    ob_initializer(m, name, s8 ? ROUSE_DT_INT8 : ROUSE_DT_UINT8, 0, NULL, &b, 1);
}

/* Float Gemm of dequantized x and w (alpha * A B + beta * C) in double. */
static void ref_gemm(const gcase *c, const layer *L, int64_t m, const uint8_t *xq, double *out)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < L->n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < L->k; p++) {
                int64_t xi = c->trans_a ? p * m + i : i * L->k + p;
                int xv = L->x_s8 ? (int8_t)xq[xi] : xq[xi];
                int64_t wi = c->trans_b ? j * L->k + p : p * L->n + j;
                int64_t si = L->n_sw == 1 ? 0 : c->w_axis < 0 ? j : p;
                acc += ((double)xv - L->zx) * L->sx * ((double)L->w[wi] * L->sw[si]);
            }
            double y = (double)c->alpha * acc;
            if (L->c) y += (double)c->beta * L->c[i * L->n + j];
            out[i * L->n + j] = y;
        }
}

static int quantize(double y, float s, int z, bool s8, bool relu)
{
    if (relu && y < 0) y = 0;
    double q = nearbyint(y / s) + z, lo = s8 ? -128 : 0, hi = s8 ? 127 : 255;
    return (int)(q < lo ? lo : q > hi ? hi : q);
}

/* Builds case c's model; its parameters land in b->l (free with built_fini). */
static void build(const gcase *c, built *b)
{
    memset(b, 0, sizeof(*b));
    b->layers = c->layers;
    ob_model *m = ob_model_new(13);
    int64_t xd[2] = {c->trans_a ? c->k : c->m, c->trans_a ? c->m : c->k};
    ob_input(m, "x", c->x_s8 ? ROUSE_DT_INT8 : ROUSE_DT_UINT8, 2, xd);
    const char *in_name = "x";
    float sx = 0.02f;
    int zx = c->x_s8 ? 0 : 128;
    bool xs8 = c->x_s8;
    for (int l = 0; l < c->layers; l++) {
        layer *L = &b->l[l];
        L->k = l ? c->n : c->k;
        L->n = c->n;
        L->sx = sx;
        L->zx = zx;
        L->x_s8 = xs8;
        L->y_s8 = l + 1 == c->layers ? c->y_s8 : false;
        bool last = l + 1 == c->layers;
        char nm[12][32];
        const char *sfx[12] = {"sx", "zx", "xf", "w", "sw", "zw", "wf", "c", "sc", "zc", "cf", "g"};
        for (int i = 0; i < 12; i++)
            snprintf(nm[i], sizeof nm[i], "%s%d", sfx[i], l);
        scalar_f(m, nm[0], sx);
        scalar_q(m, nm[1], xs8, zx);
        const char *dxi[3] = {in_name, nm[0], nm[1]}, *dxo = nm[2];
        ob_add_node(m, "DequantizeLinear", nm[2], 3, dxi, 1, &dxo);
        /* Weights, int8, their scales per tensor or per channel. */
        int64_t nw = L->k * L->n;
        L->w = malloc((size_t)nw);
        int64_t wd[2] = {c->trans_b ? L->n : L->k, c->trans_b ? L->k : L->n};
        for (int64_t i = 0; i < nw; i++)
            L->w[i] = (int8_t)rand_int(-127, 127);
        int axis = c->w_axis >= 0 ? c->w_axis : c->trans_b ? 0 : 1;
        L->n_sw = c->per_channel ? wd[axis] : 1;
        L->sw = malloc(sizeof(float) * (size_t)L->n_sw);
        for (int64_t i = 0; i < L->n_sw; i++)
            L->sw[i] = 0.001f * (float)rand_int(2, 9);
        int8_t *zw = calloc((size_t)L->n_sw, 1);
        int64_t swd[1] = {L->n_sw};
        ob_initializer(m, nm[3], ROUSE_DT_INT8, 2, wd, L->w, (size_t)nw);
        ob_initializer(m, nm[4], ROUSE_DT_FLOAT, c->per_channel ? 1 : 0, swd, L->sw,
                       sizeof(float) * (size_t)L->n_sw);
        ob_initializer(m, nm[5], ROUSE_DT_INT8, c->per_channel ? 1 : 0, swd, zw, (size_t)L->n_sw);
        free(zw);
        const char *dwi[3] = {nm[3], nm[4], nm[5]}, *dwo = nm[6];
        ob_node *dn = ob_add_node(m, "DequantizeLinear", nm[6], 3, dwi, 1, &dwo);
        if (c->per_channel) ob_attr_int(dn, "axis", axis);
        /* C. */
        int64_t mm = c->m;
        const char *gin[3] = {nm[2], nm[6], nm[10]};
        int n_gin = 3;
        if (c->bias == BIAS_NONE) {
            n_gin = 2;
        } else if (c->bias == BIAS_DQ) {
            int32_t *bq = malloc(sizeof(int32_t) * (size_t)L->n), *zb = calloc((size_t)L->n, 4);
            float *sb = malloc(sizeof(float) * (size_t)L->n);
            L->c = malloc(sizeof(float) * (size_t)(mm * L->n));
            for (int64_t j = 0; j < L->n; j++) {
                bq[j] = rand_int(-3000, 3000);
                sb[j] = sx * L->sw[L->n_sw == 1 ? 0 : j];
            }
            for (int64_t i = 0; i < mm * L->n; i++)
                L->c[i] = (float)bq[i % L->n] * sb[i % L->n];
            int64_t bd[1] = {L->n};
            ob_initializer(m, nm[7], ROUSE_DT_INT32, 1, bd, bq, 4 * (size_t)L->n);
            bool pc = L->n_sw > 1;
            ob_initializer(m, nm[8], ROUSE_DT_FLOAT, pc ? 1 : 0, bd, sb, pc ? 4 * (size_t)L->n : 4);
            ob_initializer(m, nm[9], ROUSE_DT_INT32, pc ? 1 : 0, bd, zb, pc ? 4 * (size_t)L->n : 4);
            const char *dbi[3] = {nm[7], nm[8], nm[9]}, *dbo = nm[10];
            ob_node *bn = ob_add_node(m, "DequantizeLinear", nm[10], 3, dbi, 1, &dbo);
            if (pc) ob_attr_int(bn, "axis", 0);
            free(bq);
            free(zb);
            free(sb);
        } else {
            int64_t rows = c->bias == BIAS_FULL ? mm : 1, cols = c->bias == BIAS_ONE ? 1 : L->n;
            float *cf = malloc(sizeof(float) * (size_t)(rows * cols));
            for (int64_t i = 0; i < rows * cols; i++)
                cf[i] = 0.01f * (float)rand_int(-300, 300);
            L->c = malloc(sizeof(float) * (size_t)(mm * L->n));
            for (int64_t i = 0; i < mm; i++)
                for (int64_t j = 0; j < L->n; j++)
                    L->c[i * L->n + j] = cf[(rows == 1 ? 0 : i) * cols + (cols == 1 ? 0 : j)];
            int64_t cd[2] = {rows, cols};
            int rank = c->bias == BIAS_FLOAT || c->bias == BIAS_ONE ? 1 : 2;
            if (c->bias == BIAS_FLOAT) cd[0] = cols;
            ob_initializer(m, nm[10], ROUSE_DT_FLOAT, rank, cd, cf,
                           sizeof(float) * (size_t)(rows * cols));
            free(cf);
        }
        const char *go = nm[11];
        ob_node *g = ob_add_node(m, "Gemm", nm[11], n_gin, gin, 1, &go);
        if (c->trans_a) ob_attr_int(g, "transA", 1);
        if (c->trans_b) ob_attr_int(g, "transB", 1);
        if (c->alpha != 1.0f) ob_attr_float(g, "alpha", c->alpha);
        if (c->beta != 1.0f) ob_attr_float(g, "beta", c->beta);
        const char *qsrc = nm[11];
        char rn[16], qn[16], syn[16], zyn[16];
        snprintf(rn, sizeof rn, "relu%d", l);
        snprintf(qn, sizeof qn, "%s", last ? "y" : "h");
        snprintf(syn, sizeof syn, "sy%d", l);
        snprintf(zyn, sizeof zyn, "zy%d", l);
        if (c->relu) {
            const char *ro = rn;
            ob_add_node(m, "Relu", rn, 1, &qsrc, 1, &ro);
            qsrc = rn;
        }
        /* The output's scale from the weights: 127 steps about three
         * standard deviations of the float output on random data (the
         * test checks that few outputs saturate). */
        double bound = 0;
        for (int64_t j = 0; j < L->n; j++) {
            double s = 0;
            for (int64_t p = 0; p < L->k; p++) {
                int64_t wi = c->trans_b ? j * L->k + p : p * L->n + j;
                int64_t si = L->n_sw == 1 ? 0 : c->w_axis < 0 ? j : p;
                s += fabs((double)L->w[wi] * L->sw[si]);
            }
            double mag = fabs((double)c->alpha) * s * sx * 40.0 / sqrt((double)L->k);
            if (mag > bound) bound = mag;
        }
        double cmax = 0;
        for (int64_t i = 0; L->c && i < c->m * L->n; i++)
            cmax = fmax(cmax, fabs((double)c->beta * L->c[i]));
        bound += cmax;
        L->sy = (float)(bound / 20.0);
        L->zy = c->relu ? (L->y_s8 ? -128 : 0) : (L->y_s8 ? 0 : 128);
        scalar_f(m, syn, L->sy);
        scalar_q(m, zyn, L->y_s8, L->zy);
        const char *qi[3] = {qsrc, syn, zyn}, *qo = qn;
        ob_add_node(m, "QuantizeLinear", qn, 3, qi, 1, &qo);
        in_name = last ? "y" : "h";
        sx = L->sy;
        zx = L->zy;
        xs8 = L->y_s8;
    }
    if (c->layers == 2) ob_output_any(m, "h", ROUSE_DT_UINT8);
    ob_output_any(m, "y", c->y_s8 ? ROUSE_DT_INT8 : ROUSE_DT_UINT8);
    rouse_buf_init(&b->model);
    ob_serialize(m, &b->model);
    ob_model_free(m);
}

static void built_fini(built *b)
{
    for (int l = 0; l < 2; l++) {
        free(b->l[l].w);
        free(b->l[l].sw);
        free(b->l[l].c);
    }
    rouse_buf_fini(&b->model);
}

static uint8_t *make_input(const gcase *c)
{
    int64_t n = c->m * c->k;
    uint8_t *x = malloc((size_t)n);
    for (int64_t i = 0; i < n; i++)
        x[i] = (uint8_t)rand_int(c->x_s8 ? -128 : 0, c->x_s8 ? 127 : 255);
    return x;
}

/* --- checks ------------------------------------------------------------------------------- */

static char logged[8192];

static void log_sink(void *user, rouse_log_level level, const char *module, const char *msg)
{
    (void)user;
    (void)level;
    (void)module;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof(logged) - n, "%s\n", msg);
}

/* Elements one step off, over all compared, for the summary line. */
static int64_t n_off, n_cmp;

/* got and want (int8 or uint8 data) at most one step apart, and on few
 * elements. */
static void compare_q(const char *cs, const char *what, const rouse_tensor *got, bool s8,
                      const int *want, int64_t n)
{
    if ((int64_t)got->nbytes != n) {
        fail(cs, "%s: %zu bytes, %lld expected", what, got->nbytes, (long long)n);
        return;
    }
    int64_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        int v = s8 ? ((const int8_t *)got->data)[i] : ((const uint8_t *)got->data)[i];
        if (abs(v - want[i]) > 1) {
            fail(cs, "%s element %lld: %d, reference %d", what, (long long)i, v, want[i]);
            return;
        }
        off += v != want[i];
    }
    if (off > n / 20 + 2)
        fail(cs, "%s: %lld of %lld elements one step off", what, (long long)off, (long long)n);
    n_off += off;
    n_cmp += n;
}

/* The steps of the profiled run: Gemm, Q/DQ, QLinearConv on oneDNN. */
static void check_steps(const char *cs, const gcase *c, rouse_session *s)
{
    int gemm = 0, qdq = 0, qconv = 0;
    for (int i = 0; i < rouse_session_profile_count(s); i++) {
        rouse_profile_entry pe;
        if (rouse_session_profile_entry(s, i, &pe) < 0) continue;
        gemm += !strcmp(pe.op, "Gemm");
        qdq += !strcmp(pe.op, "QuantizeLinear") || !strcmp(pe.op, "DequantizeLinear");
        qconv += !strcmp(pe.op, "QLinearConv") && !strcmp(pe.kernel, "onednn");
    }
    if (!c->why && (gemm || qdq || qconv != c->layers))
        fail(cs, "not fused: %d Gemm, %d Quantize/DequantizeLinear, %d QLinearConv on oneDNN", gemm,
             qdq, qconv);
    if (c->why && gemm != 1) fail(cs, "%d float Gemm steps, 1 expected (the fallback)", gemm);
}

/* Runs model bytes on x; outputs copied into y[0..layers). */
static int run(const char *cs, const void *model, size_t len, bool is_plan, const gcase *c,
               const uint8_t *x, uint8_t **y, const gcase *steps_of)
{
    rouse_errbuf eb;
    rouse_model *m;
    logged[0] = 0;
    int rc = is_plan ? rouse_model_open_plan_memory(model, len, &m, &eb)
                     : rouse_model_load_memory(model, len, &m, &eb);
    if (rc < 0) {
        fail(cs, "load: %s", eb.msg);
        return -1;
    }
    if (steps_of && steps_of->why && !strstr(logged, steps_of->why))
        fail(cs, "the log does not say why it stays float ('%s'): '%s'", steps_of->why, logged);
    if (steps_of && !steps_of->why && strstr(logged, "runs in float"))
        fail(cs, "logged a fallback: %s", logged);
    rouse_session *s;
    rouse_session_options o = {.threads = 1};
    rouse_tensor in = {.name = "x",
                       .dtype = c->x_s8 ? ROUSE_DT_INT8 : ROUSE_DT_UINT8,
                       .rank = 2,
                       .shape = {c->trans_a ? c->k : c->m, c->trans_a ? c->m : c->k},
                       .data = x,
                       .nbytes = (size_t)(c->m * c->k)};
    rc = -1;
    if (rouse_session_create(m, &o, &s, &eb) < 0) {
        fail(cs, "session: %s", eb.msg);
        goto out_model;
    }
    rouse_session_set_profiling(s, 1);
    if (rouse_session_run(s, &in, 1, &eb) < 0) {
        fail(cs, "run: %s", eb.msg);
        goto out;
    }
    if (steps_of) check_steps(cs, steps_of, s);
    for (int o2 = 0; o2 < c->layers; o2++) {
        rouse_tensor t;
        if (rouse_session_output(s, o2, &t) < 0) {
            fail(cs, "no output %d", o2);
            goto out;
        }
        y[o2] = malloc(t.nbytes ? t.nbytes : 1);
        memcpy(y[o2], t.data, t.nbytes);
    }
    rc = 0;
out:
    rouse_session_destroy(s);
out_model:
    rouse_model_destroy(m);
    return rc;
}

/* The reference of layer l on its quantized input xq (m rows). */
static int *reference(const gcase *c, const layer *L, const uint8_t *xq, bool relu)
{
    int64_t n = c->m * L->n;
    double *f = malloc(sizeof(double) * (size_t)n);
    int *q = malloc(sizeof(int) * (size_t)n);
    ref_gemm(c, L, c->m, xq, f);
    int64_t sat = 0;
    for (int64_t i = 0; i < n; i++) {
        q[i] = quantize(f[i], L->sy, L->zy, L->y_s8, relu);
        sat += q[i] == (L->y_s8 ? 127 : 255) || (!relu && q[i] == (L->y_s8 ? -128 : 0));
    }
    if (sat > n / 4)
        fail(c->name, "%lld of %lld reference outputs saturate", (long long)sat, (long long)n);
    free(f);
    return q;
}

static void check_case(const gcase *c, const char *data_dir)
{
    built b;
    build(c, &b);
    uint8_t *x = make_input(c);
    uint8_t *y[2] = {NULL, NULL}, *yp[2] = {NULL, NULL};
    if (run(c->name, b.model.data, b.model.len, false, c, x, y, c) < 0) goto out;
    /* Layer by layer against the reference: the second on the first's
     * output as computed. */
    const uint8_t *lin = x;
    for (int l = 0; l < c->layers; l++) {
        int *want = reference(c, &b.l[l], lin, c->relu);
        char what[32];
        snprintf(what, sizeof what, "layer %d", l);
        rouse_tensor t = {.data = y[l], .nbytes = (size_t)(c->m * b.l[l].n)};
        compare_q(c->name, what, &t, b.l[l].y_s8, want, c->m * b.l[l].n);
        free(want);
        lin = y[l];
    }
    /* The compiled plan: the same bytes. */
    {
        rouse_errbuf eb;
        rouse_model *m;
        char path[4096];
        snprintf(path, sizeof(path), "%s/rouse_qdq_gemm_XXXXXX", test_tmp_dir());
        int fd = mkstemp(path);
        if (fd < 0 || rouse_model_load_memory(b.model.data, b.model.len, &m, &eb) < 0) {
            fail(c->name, "plan: no temporary file or load");
            if (fd >= 0) close(fd), unlink(path);
            goto out;
        }
        close(fd);
        if (rouse_model_compile(m, path, &eb) < 0) fail(c->name, "compile: %s", eb.msg);
        rouse_model_destroy(m);
        uint8_t *buf;
        size_t len;
        if (cli_file_slurp(path, &buf, &len, &eb) < 0) {
            fail(c->name, "read plan: %s", eb.msg);
        } else {
            if (run(c->name, buf, len, true, c, x, yp, NULL) == 0)
                for (int l = 0; l < c->layers; l++)
                    if (memcmp(y[l], yp[l], (size_t)(c->m * b.l[l].n)))
                        fail(c->name, "the plan's output %d differs from the model's", l);
            free(buf);
        }
        unlink(path);
    }
    /* ONNX Runtime's outputs on the stored model and input. */
    if (data_dir) {
        char dir[1024], p[1200];
        snprintf(dir, sizeof dir, "%s/%s", data_dir, c->name);
        rouse_errbuf eb;
        uint8_t *mbuf;
        size_t mlen;
        cli_tensor xt = {0};
        snprintf(p, sizeof p, "%s/model.onnx", dir);
        if (cli_file_slurp(p, &mbuf, &mlen, &eb) < 0) {
            fail(c->name, "stored model: %s", eb.msg);
            goto out;
        }
        snprintf(p, sizeof p, "%s/x.npy", dir);
        if (cli_tensor_read_file(p, &xt, &eb) < 0) {
            fail(c->name, "stored input: %s", eb.msg);
            free(mbuf);
            goto out;
        }
        uint8_t *yo[2] = {NULL, NULL};
        if ((int64_t)xt.nbytes == c->m * c->k &&
            run(c->name, mbuf, mlen, false, c, xt.data, yo, c) == 0) {
            for (int l = 0; l < c->layers; l++) {
                cli_tensor rt = {0};
                snprintf(p, sizeof p, "%s/%s.npy", dir, l + 1 == c->layers ? "y" : "h");
                if (cli_tensor_read_file(p, &rt, &eb) < 0) {
                    fail(c->name, "ONNX Runtime's output: %s", eb.msg);
                    continue;
                }
                bool s8 = rt.dtype == ROUSE_DT_INT8;
                int *want = malloc(sizeof(int) * (rt.nbytes ? rt.nbytes : 1));
                for (size_t i = 0; i < rt.nbytes; i++)
                    want[i] = s8 ? ((const int8_t *)rt.data)[i] : ((const uint8_t *)rt.data)[i];
                rouse_tensor t = {.data = yo[l], .nbytes = (size_t)(c->m * b.l[l].n)};
                char what[48];
                snprintf(what, sizeof what, "output %d against ONNX Runtime", l);
                compare_q(c->name, what, &t, s8, want, (int64_t)rt.nbytes);
                free(want);
                cli_tensor_fini(&rt);
            }
        } else if ((int64_t)xt.nbytes != c->m * c->k) {
            fail(c->name, "stored input of %zu bytes", xt.nbytes);
        }
        free(yo[0]);
        free(yo[1]);
        cli_tensor_fini(&xt);
        free(mbuf);
    }
out:
    free(x);
    for (int l = 0; l < 2; l++) {
        free(y[l]);
        free(yp[l]);
    }
    built_fini(&b);
}

/* --- bad parameters ------------------------------------------------------------------------ */

enum {
    BAD_W_SCALE_ZERO,
    BAD_W_SCALE_NEG,
    BAD_W_SCALE_LEN,
    BAD_X_ZP_RANGE,
    BAD_W_ZP_TYPE,
    BAD_Y_SCALE
};

/* x (s8) -> DQ -> Gemm(DQ(w), transB) -> Q -> y with one bad parameter. */
static void bad_model(int bad, rouse_buf *out)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[2] = {2, 8}, wd[2] = {6, 8}, sd[1] = {bad == BAD_W_SCALE_LEN ? 5 : 6};
    ob_input(m, "x", ROUSE_DT_INT8, 2, xd);
    scalar_f(m, "sx", 0.1f);
    if (bad == BAD_X_ZP_RANGE)
        scalar_q(m, "zx", false, 200);
    else
        scalar_q(m, "zx", true, 0);
    int8_t w[48];
    for (int i = 0; i < 48; i++)
        w[i] = (int8_t)(i - 24);
    float sw[6] = {0.1f, 0.2f, 0.3f, 0.1f, 0.2f, 0.3f};
    if (bad == BAD_W_SCALE_ZERO) sw[3] = 0;
    if (bad == BAD_W_SCALE_NEG) sw[3] = -0.25f;
    uint8_t zw[6] = {0, 0, 0, 0, bad == BAD_W_ZP_TYPE ? 5 : 0, 0};
    ob_initializer(m, "w", ROUSE_DT_INT8, 2, wd, w, sizeof w);
    ob_initializer(m, "sw", ROUSE_DT_FLOAT, 1, sd, sw, sizeof(float) * (size_t)sd[0]);
    ob_initializer(m, "zw", bad == BAD_W_ZP_TYPE ? ROUSE_DT_UINT8 : ROUSE_DT_INT8, 1, sd, zw,
                   (size_t)sd[0]);
    scalar_f(m, "sy", bad == BAD_Y_SCALE ? -1.0f : 0.5f);
    scalar_q(m, "zy", false, 128);
    const char *dxi[3] = {"x", "sx", "zx"}, *xf = "xf", *dwi[3] = {"w", "sw", "zw"}, *wf = "wf";
    ob_add_node(m, "DequantizeLinear", "dq_x", 3, dxi, 1, &xf);
    ob_node *d = ob_add_node(m, "DequantizeLinear", "dq_w", 3, dwi, 1, &wf);
    ob_attr_int(d, "axis", 0);
    const char *gi[2] = {"xf", "wf"}, *g = "g", *qi[3] = {"g", "sy", "zy"}, *y = "y";
    ob_node *gn = ob_add_node(m, "Gemm", "fc", 2, gi, 1, &g);
    ob_attr_int(gn, "transB", 1);
    ob_add_node(m, "QuantizeLinear", "q_y", 3, qi, 1, &y);
    ob_output_any(m, "y", ROUSE_DT_UINT8);
    rouse_buf_init(out);
    ob_serialize(m, out);
    ob_model_free(m);
}

static void check_bad(void)
{
    static const struct {
        int bad, rc;
        const char *msg;
    } want[] = {
        {BAD_W_SCALE_ZERO, ROUSE_EFORMAT,
         "node 'dq_w' (DequantizeLinear): scale 0 (element 3) must be positive and finite"},
        {BAD_W_SCALE_NEG, ROUSE_EFORMAT,
         "node 'dq_w' (DequantizeLinear): scale -0.25 (element 3) must be positive"},
        {BAD_W_SCALE_LEN, ROUSE_EMISMATCH,
         "node 'dq_w' (DequantizeLinear): input 'x_scale' must hold 1 value or 6 (one per element "
         "of the axis), has 5"},
        {BAD_X_ZP_RANGE, ROUSE_EMISMATCH,
         "node 'dq_x' (DequantizeLinear): zero point 200 (element 0) is out of the range of int8 "
         "'x' (input 'x_zero_point' is uint8, input 'x' is int8)"},
        {BAD_W_ZP_TYPE, ROUSE_EMISMATCH,
         "node 'dq_w' (DequantizeLinear): input 'x_zero_point' is uint8, input 'x' is int8 ('w'"},
        {BAD_Y_SCALE, ROUSE_EFORMAT, "node 'q_y' (QuantizeLinear): scale -1 (element 0)"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        rouse_buf b;
        bad_model(want[i].bad, &b);
        rouse_errbuf eb;
        rouse_model *m = NULL;
        int rc = rouse_model_load_memory(b.data, b.len, &m, &eb);
        char cs[32];
        snprintf(cs, sizeof cs, "bad parameters %zu", i);
        if (rc >= 0) {
            fail(cs, "loaded; '%s' expected", want[i].msg);
            rouse_model_destroy(m);
        } else if (rc != want[i].rc || !strstr(eb.msg, want[i].msg)) {
            fail(cs, "error %d '%s'; %d '%s' expected", rc, eb.msg, want[i].rc, want[i].msg);
        } else {
            printf("bad parameters: %s\n", eb.msg);
        }
        rouse_buf_fini(&b);
    }
}

/* --- the stored models ------------------------------------------------------------------------ */

static int write_cases(const char *dir)
{
    rouse_errbuf eb;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        perror(dir);
        return 1;
    }
    uint64_t seed = rng;
    for (int i = 0; i < N_CASES; i++) {
        const gcase *c = &cases[i];
        rng = seed + (uint64_t)i * 0x100000001b3ull;
        built b;
        build(c, &b);
        uint8_t *x = make_input(c);
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, c->name);
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            perror(p);
            return 1;
        }
        snprintf(p, sizeof p, "%s/%s/model.onnx", dir, c->name);
        FILE *f = fopen(p, "wb");
        if (!f || fwrite(b.model.data, 1, b.model.len, f) != b.model.len || fclose(f)) {
            perror(p);
            return 1;
        }
        snprintf(p, sizeof p, "%s/%s/x.npy", dir, c->name);
        int64_t xd[2] = {c->trans_a ? c->k : c->m, c->trans_a ? c->m : c->k};
        if (cli_npy_write(p, c->x_s8 ? ROUSE_DT_INT8 : ROUSE_DT_UINT8, 2, xd, x,
                          (size_t)(c->m * c->k), &eb) < 0) {
            fprintf(stderr, "%s: %s\n", p, eb.msg);
            return 1;
        }
        free(x);
        built_fini(&b);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write")) return write_cases(argv[2]);
    const char *data = argc > 1 ? argv[1] : NULL;
    rouse_log_set_sink(log_sink, NULL);
    rouse_log_set_level(ROUSE_LOG_INFO);
    uint64_t seed = rng;
    for (int i = 0; i < N_CASES; i++) {
        /* The stored files were written with the same generator state:
         * each case starts from its own seed. */
        rng = seed + (uint64_t)i * 0x100000001b3ull;
        int before = failures;
        n_off = n_cmp = 0;
        check_case(&cases[i], data);
        printf("%-34s %-16s %lld of %lld compared elements one step off%s\n", cases[i].name,
               cases[i].why ? "float (fallback)" : "int8", (long long)n_off, (long long)n_cmp,
               failures == before ? "" : "  FAILED");
    }
    check_bad();
    rouse_log_set_sink(NULL, NULL);
    if (failures) fprintf(stderr, "%d failures\n", failures);
    return failures ? 1 : 0;
}
