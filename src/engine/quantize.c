/*
 * Static post-training int8 quantization; see quantize.h.
 *
 * Min/max is the default calibration: on resnet18, mobilenet_v2 and
 * squeezenet1_1 (calibrated and checked on their three test sets) it gave
 * the smaller error, relative L2 error of the logits 0.034 / 0.220 / 0.011
 * against 0.038 / 0.227 / 0.012 for the 99.99th percentile: with few
 * calibration samples no outlier is rare enough to be worth cutting.
 *
 * 1. Candidates: live Conv and Gemm nodes with constant float weights (and
 *    bias), float input, and no fused post-op other than Relu or Clip;
 *    MatMul nodes by a constant [K, N] (weights per column) or of two
 *    float activations (attention: the right-hand side quantized to s8
 *    symmetric per tensor, the form oneDNN's int8 product takes).
 * 2. Calibration: the inputs and outputs of the candidates become extra
 *    outputs of a plan run on every sample (first pass: min, max, mean
 *    square; second pass, for the percentile method: a histogram).
 * 3. Budget: per candidate, the estimated SQNR; those below it stay float.
 *    Then MaxPools and Concats of the quantized outputs follow them into
 *    u8 (a Concat's inputs all take the union of their ranges), and so do
 *    residual Adds of two quantized outputs (with a Relu after them) and
 *    average pooling, in QDQ form: the plan runs each as one u8 kernel.
 * 4. Rewrite: a new node array in the same topological order, with a
 *    QuantizeLinear before the first int8 reader of a float value, the
 *    QLinearConv in place of the Conv (QLinearMatMul in place of the
 *    MatMul), and a DequantizeLinear after it when its output has a float
 *    reader or is a graph output.
 */
#include "engine/quantize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/exec.h"
#include "engine/optimize.h"

#define HIST_BINS 2048

typedef struct vstat {
    double lo, hi, sumsq;
    int64_t count;
    uint64_t *hist; /* percentile method, second pass */
    float scale;
    uint8_t zp;
    int q;     /* the u8 twin value, -1 until made */
    int sid, zid; /* its scale and zero point constants, -1 until made */
    /* The s8 twin, symmetric (zero point 0): the right-hand side of a
     * product of two activations, which oneDNN takes as s8 weights. */
    float scale8;
    int q8, sid8, zid8;
    bool used; /* some quantized conv reads or writes it */
} vstat;

/* What a candidate becomes. */
typedef enum cand_kind {
    CAND_NONE,
    CAND_CONV,       /* Conv, or Gemm as a 1x1 convolution: QLinearConv */
    CAND_MATMUL_W,   /* MatMul by a constant [K, N]: QLinearMatMul, weights per column */
    CAND_MATMUL_ACT, /* MatMul of two activations: QLinearMatMul, u8 x s8 per tensor */
    CAND_MAXPOOL,    /* MaxPool of a quantized node's output: on the u8 data, its
                        input's parameters (max commutes with the rounding) */
    CAND_CONCAT,     /* Concat of quantized products' outputs read by it alone: their
                        outputs all take the parameters of the union of their
                        ranges, so the u8 data concatenates as it is */
    CAND_ADD,        /* Add of two quantized outputs (a residual), with the Relu
                        after it when that is its only reader: written as
                        DequantizeLinear -> Add -> QuantizeLinear, which plans
                        run as one u8 kernel (exec_dnnl_qfuse.c) */
    CAND_RELU_IN,    /* that Relu: its output is the Add's quantized output,
                        whose zero point 0 saturates what Relu would clamp */
    CAND_AVGPOOL,    /* AveragePool or GlobalAveragePool of a quantized output:
                        DequantizeLinear -> pool -> QuantizeLinear with its
                        input's parameters (an average stays in their range) */
} cand_kind;

typedef struct cand {
    int node;
    int kind; /* cand_kind */
    double sqnr_db;
    bool quantize;
} cand;

static bool post_ok(const eng_node *n)
{
    for (int i = 0; i < n->n_post; i++)
        if (n->post[i].kind != ENG_POST_ELTWISE ||
            (n->post[i].eltwise != ENG_OP_RELU && n->post[i].eltwise != ENG_OP_CLIP))
            return false;
    return true;
}

/* A Gemm computing x [M, K] times a constant W ([K, N], or [N, K] with
 * transB as exporters write nn.Linear), plus a constant bias [N]: it runs
 * as a 1x1 QLinearConv over x viewed as [M, K, 1, 1]. */
static bool gemm_fits(const eng_graph *g, const eng_node *n)
{
    const eng_gemm_attrs *a = &n->attrs.gemm;
    if (a->trans_a || a->alpha != 1.0f) return false;
    if (n->n_in > 2 && n->in[2] >= 0 && a->beta != 1.0f) return false;
    const eng_value *w = &g->values[n->in[1]];
    return w->rank == 2 && w->shape[0] > 0 && w->shape[1] > 0;
}

static bool float_activation(const eng_graph *g, int v)
{
    return v >= 0 && !g->values[v].const_data &&
           (!g->values[v].dtype || g->values[v].dtype == ENG_DT_FLOAT);
}

/* MatMul a [..., M, K] times b: b a constant float [K, N] (a linear layer
 * as exporters write it for 3-D inputs, its bias a separate Add), or b an
 * activation too (attention's scores and context). */
static int matmul_kind(const eng_graph *g, const eng_node *n)
{
    if (n->n_in != 2 || n->n_out != 1 || n->out[0] < 0 || n->n_post ||
        !float_activation(g, n->in[0]) || n->in[1] < 0)
        return CAND_NONE;
    const eng_value *b = &g->values[n->in[1]];
    if (!b->const_data) return float_activation(g, n->in[1]) ? CAND_MATMUL_ACT : CAND_NONE;
    if (b->dtype != ENG_DT_FLOAT || b->rank != 2 || b->shape[0] <= 0 || b->shape[1] <= 0)
        return CAND_NONE;
    return CAND_MATMUL_W;
}

static int candidate_kind(const eng_graph *g, const eng_node *n)
{
    if (n->dead) return CAND_NONE;
    if (n->op == ENG_OP_MATMUL) return matmul_kind(g, n);
    if ((n->op != ENG_OP_CONV && n->op != ENG_OP_GEMM) || n->n_in < 2 ||
        n->n_out != 1 || n->out[0] < 0 || n->in[1] < 0)
        return CAND_NONE;
    const eng_value *w = &g->values[n->in[1]];
    if (!w->const_data || w->dtype != ENG_DT_FLOAT) return CAND_NONE;
    if (n->op == ENG_OP_CONV ? w->rank < 3 || w->rank > 5 : !gemm_fits(g, n)) return CAND_NONE;
    int64_t m = n->op == ENG_OP_GEMM && !n->attrs.gemm.trans_b ? w->shape[1] : w->shape[0];
    if (n->n_in > 2 && n->in[2] >= 0) {
        const eng_value *b = &g->values[n->in[2]];
        if (!b->const_data || b->dtype != ENG_DT_FLOAT || b->rank < 1 || b->rank > 2 ||
            eng_shape_numel(b->rank, b->shape) != m || b->shape[b->rank - 1] != m)
            return CAND_NONE;
    }
    if (n->in[0] < 0 || (g->values[n->in[0]].dtype && g->values[n->in[0]].dtype != ENG_DT_FLOAT))
        return CAND_NONE;
    return post_ok(n) ? CAND_CONV : CAND_NONE;
}

static float fget(const void *base, int64_t i)
{
    float f;
    memcpy(&f, (const char *)base + i * 4, 4);
    return f;
}

/* --- calibration ------------------------------------------------------------------------ */

/* Same types and shapes, and the same values for inputs that shapes
 * depend on. */
static bool same_signature(const eng_graph *g, const eng_tensor *a, const eng_tensor *b)
{
    for (int i = 0; i < g->n_inputs; i++) {
        if (a[i].dtype != b[i].dtype || a[i].rank != b[i].rank ||
            memcmp(a[i].shape, b[i].shape, sizeof(int64_t) * (size_t)a[i].rank) != 0)
            return false;
        if (eng_graph_input_value_matters(g, i)) {
            int64_t n = eng_tensor_numel(&a[i]);
            if (memcmp(a[i].data, b[i].data, (size_t)n * eng_dtype_size(a[i].dtype)) != 0)
                return false;
        }
    }
    return true;
}

/* Runs every sample through g with the values in `watch` as extra outputs,
 * calling visit(stat, tensor) for each. */
typedef void (*visit_fn)(vstat *s, const eng_tensor *t, double ctx);

static int calibrate_pass(eng_graph *g, const int *watch, int n_watch, vstat *st,
                          const eng_tensor *samples, int n_samples, visit_fn visit,
                          rouse_errbuf *eb)
{
    int n_out0 = g->n_outputs, *out0 = g->outputs;
    int *outs = malloc(sizeof(int) * (size_t)(n_out0 + n_watch));
    bool *was = malloc(sizeof(bool) * (size_t)(n_watch ? n_watch : 1));
    if (!outs || !was) {
        free(outs);
        free(was);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory for calibration");
    }
    memcpy(outs, out0, sizeof(int) * (size_t)n_out0);
    for (int i = 0; i < n_watch; i++) {
        outs[n_out0 + i] = watch[i];
        was[i] = g->values[watch[i]].is_output;
        g->values[watch[i]].is_output = true;
    }
    g->outputs = outs;
    g->n_outputs = n_out0 + n_watch;
    eng_dnnl_ctx *ctx = NULL;
    eng_plan *p = NULL;
    int rc = eng_dnnl_ctx_create(&ctx, eb);
    const eng_tensor *key = NULL; /* the sample the plan was prepared for */
    for (int s = 0; rc >= 0 && s < n_samples; s++) {
        const eng_tensor *in = samples + (size_t)s * (size_t)g->n_inputs;
        /* A plan runs only the shapes (and shape-deciding values) it was
         * prepared for: a sample that differs gets a plan of its own. */
        if (!key || !same_signature(g, key, in)) {
            eng_plan_destroy(p);
            p = NULL;
            if ((rc = eng_plan_create(g, ctx, in, false, NULL, &p, eb)) < 0) break;
            key = in;
        }
        if ((rc = eng_plan_run(p, in, eb)) < 0) break;
        for (int i = 0; i < n_watch; i++)
            visit(&st[watch[i]], eng_plan_output(p, n_out0 + i), 0);
    }
    eng_plan_destroy(p);
    if (ctx) eng_dnnl_ctx_destroy(ctx);
    for (int i = 0; i < n_watch; i++)
        g->values[watch[i]].is_output = was[i];
    g->outputs = out0;
    g->n_outputs = n_out0;
    free(outs);
    free(was);
    return rc;
}

static void visit_range(vstat *s, const eng_tensor *t, double ctx)
{
    (void)ctx;
    int64_t n = eng_tensor_numel(t);
    const float *d = t->data;
    double lo = s->lo, hi = s->hi, sq = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = d[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        sq += v * v;
    }
    s->lo = lo;
    s->hi = hi;
    s->sumsq += sq;
    s->count += n;
}

static void visit_hist(vstat *s, const eng_tensor *t, double ctx)
{
    (void)ctx;
    if (!s->hist || !(s->hi > s->lo)) return;
    int64_t n = eng_tensor_numel(t);
    const float *d = t->data;
    double k = HIST_BINS / (s->hi - s->lo);
    for (int64_t i = 0; i < n; i++) {
        int64_t b = (int64_t)((d[i] - s->lo) * k);
        s->hist[b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b]++;
    }
}

/* The range cut at percentile pct on both sides. */
static void percentile_range(vstat *s, double pct)
{
    uint64_t total = 0;
    for (int b = 0; b < HIST_BINS; b++)
        total += s->hist[b];
    if (!total) return;
    double cut = (double)total * (1.0 - pct / 100.0), w = (s->hi - s->lo) / HIST_BINS;
    uint64_t acc = 0;
    int lo = 0, hi = HIST_BINS - 1;
    while (lo < HIST_BINS - 1 && (double)(acc + s->hist[lo]) <= cut)
        acc += s->hist[lo++];
    acc = 0;
    while (hi > 0 && (double)(acc + s->hist[hi]) <= cut)
        acc += s->hist[hi--];
    double nlo = s->lo + lo * w, nhi = s->lo + (hi + 1) * w;
    if (nhi > nlo) {
        s->lo = nlo;
        s->hi = nhi;
    }
}

/* u8 asymmetric parameters covering [lo, hi] and 0. */
static void set_params(vstat *s)
{
    double lo = s->lo < 0 ? s->lo : 0, hi = s->hi > 0 ? s->hi : 0;
    double scale = (hi - lo) / 255.0;
    if (!(scale > 1e-12)) scale = 1e-12 > hi ? 1.0 / 255.0 : scale;
    if (!(scale > 1e-12)) scale = 1.0 / 255.0;
    s->scale = (float)scale;
    double zp = nearbyint(-lo / (double)s->scale);
    s->zp = (uint8_t)(zp < 0 ? 0 : zp > 255 ? 255 : zp);
    double mx = fmax(fabs(s->lo), fabs(s->hi));
    s->scale8 = mx > 1e-12 && isfinite(mx) ? (float)(mx / 127.0) : 1.0f / 127.0f;
}

/* --- weights and the error estimate ------------------------------------------------------ */

/* Per output channel: scale max|w| / 127, or min_s[oc] when larger (see
 * rw_conv). Writes wq and sw when given; returns the relative noise power
 * sum (w - q)^2 / sum w^2. */
static double quantize_weights(const eng_value *w, int8_t *wq, float *sw, const double *min_s)
{
    int64_t m = w->shape[0], per = eng_shape_numel(w->rank, w->shape) / m;
    double err = 0, sig = 0;
    for (int64_t oc = 0; oc < m; oc++) {
        double mx = 0;
        for (int64_t i = 0; i < per; i++) {
            double v = fabs(fget(w->const_data, oc * per + i));
            if (v > mx) mx = v;
        }
        double sd = mx > 0 ? mx / 127.0 : 1.0;
        if (min_s && min_s[oc] > sd) sd = min_s[oc];
        float s = (float)sd;
        if (sw) sw[oc] = s;
        for (int64_t i = 0; i < per; i++) {
            double v = fget(w->const_data, oc * per + i);
            double q = nearbyint(v / s);
            q = q < -127 ? -127 : q > 127 ? 127 : q;
            if (wq) wq[oc * per + i] = (int8_t)q;
            err += (v - q * s) * (v - q * s);
            sig += v * v;
        }
    }
    return sig > 0 ? err / sig : 0;
}

/* A MatMul's constant [K, N] is laid out as a Gemm's without transB. */
static bool weights_k_first(const eng_node *n)
{
    return n->op == ENG_OP_MATMUL || (n->op == ENG_OP_GEMM && !n->attrs.gemm.trans_b);
}

/* The weights with the output channel first: the constant itself, or for
 * a Gemm without transB or a MatMul a transposed copy in *buf (free it). */
static int out_first_weights(const eng_graph *g, const eng_node *n, eng_value *out, float **buf)
{
    const eng_value *w = &g->values[n->in[1]];
    *out = *w;
    *buf = NULL;
    if (!weights_k_first(n)) return 0;
    int64_t k = w->shape[0], m = w->shape[1];
    float *t = malloc(sizeof(float) * (size_t)(k * m));
    if (!t) return ROUSE_ENOMEM;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < m; j++)
            t[j * k + i] = fget(w->const_data, i * m + j);
    out->shape[0] = m;
    out->shape[1] = k;
    out->const_data = t;
    *buf = t;
    return 0;
}

/* Quantization noise power of a value over its mean square: a uniform
 * rounding error of one step, step^2 / 12. */
static double rel_noise(const vstat *x, double step)
{
    double ms = x->count ? x->sumsq / (double)x->count : 0;
    return ms > 0 ? (step * step / 12.0) / ms : 1;
}

static double estimate_sqnr_db(const eng_graph *g, const eng_node *n, int kind, const vstat *st)
{
    const vstat *x = &st[n->in[0]];
    double nx = rel_noise(x, x->scale);
    if (kind == CAND_MATMUL_ACT) {
        /* Both sides rounded, the right one symmetric on s8. */
        double noise = nx + rel_noise(&st[n->in[1]], st[n->in[1]].scale8);
        return noise > 0 ? -10.0 * log10(noise) : 200.0;
    }
    eng_value wv;
    float *buf;
    if (out_first_weights(g, n, &wv, &buf) < 0) return 0; /* out of memory: keep fp32 */
    double nw = quantize_weights(&wv, NULL, NULL, NULL);
    free(buf);
    double noise = nx + nw;
    return noise > 0 ? -10.0 * log10(noise) : 200.0;
}

/* --- rewrite ------------------------------------------------------------------------------ */

typedef struct rw {
    eng_graph *g;
    eng_node *nodes;
    int n, cap;
    rouse_errbuf *eb;
} rw;

static int rw_push(rw *r, const eng_node *n)
{
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 64;
        eng_node *a = realloc(r->nodes, sizeof(*a) * (size_t)cap);
        if (!a) return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory quantizing");
        r->nodes = a;
        r->cap = cap;
    }
    r->nodes[r->n++] = *n;
    return 0;
}

/* base + suffix, made unique among the graph's values and nodes (a model
 * may name two things alike; the ONNX written from the graph needs
 * distinct names). */
static const char *rw_name(rw *r, const char *base, const char *suffix)
{
    return eng_graph_unique_name(r->g, base, "v", suffix);
}

/* A new constant of n elements (data copied). */
static int rw_const(rw *r, const char *name, int dtype, int rank, const int64_t *shape,
                    const void *data, size_t bytes, int *id)
{
    void *d = rouse_arena_alloc(&r->g->arena, bytes ? bytes : 1, 64);
    if (!name || !d || eng_graph_add_value(r->g, name, dtype, id) < 0)
        return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory quantizing");
    memcpy(d, data, bytes);
    eng_value *v = &r->g->values[*id];
    v->rank = rank;
    if (rank) memcpy(v->shape, shape, sizeof(int64_t) * (size_t)rank);
    v->const_data = d;
    return 0;
}

static int rw_node(rw *r, eng_op op, const char *name, int n_in, const int *in, int out)
{
    eng_node n;
    memset(&n, 0, sizeof(n));
    n.name = name;
    n.op = op;
    n.opset = r->g->opset < 13 ? 13 : r->g->opset;
    n.n_in = n_in;
    n.in = rouse_arena_alloc(&r->g->arena, sizeof(int) * (size_t)n_in, 8);
    n.n_out = 1;
    n.out = rouse_arena_alloc(&r->g->arena, sizeof(int), 8);
    if (!name || !n.in || !n.out) return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory");
    memcpy(n.in, in, sizeof(int) * (size_t)n_in);
    n.out[0] = out;
    n.attrs.quant.q.axis = 1;
    return rw_push(r, &n);
}

/* y = Reshape(x, shape) on u8 data (0 keeps a dim: the batch). */
static int rw_reshape(rw *r, int x, int rank, const int64_t *shape, int y, const char *name)
{
    int sid, rc;
    int64_t d[1] = {rank};
    if ((rc = rw_const(r, rw_name(r, name, "/shape"), ENG_DT_INT64, 1, d, shape,
                       sizeof(int64_t) * (size_t)rank, &sid)) < 0)
        return rc;
    int in[2] = {x, sid};
    if ((rc = rw_node(r, ENG_OP_RESHAPE, rw_name(r, name, ""), 2, in, y)) < 0) return rc;
    memset(&r->nodes[r->n - 1].attrs, 0, sizeof(eng_attrs)); /* allowzero 0 */
    return 0;
}

/* A new u8 value (a view of a twin in another shape). */
static int rw_u8_value(rw *r, const char *base, const char *suffix, int *id)
{
    const char *name = rw_name(r, base, suffix);
    if (!name || eng_graph_add_value(r->g, name, ENG_DT_UINT8, id) < 0)
        return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory quantizing");
    return 0;
}

/* Scale and zero point constants of a quantized value. */
static int rw_params(rw *r, int v, vstat *s, int *sid, int *zid)
{
    const char *base = r->g->values[v].name;
    vstat *m = s;
    int rc;
    if (m->sid < 0 &&
        ((rc = rw_const(r, rw_name(r, base, "/scale"), ENG_DT_FLOAT, 0, NULL, &s->scale, 4,
                        &m->sid)) < 0 ||
         (rc = rw_const(r, rw_name(r, base, "/zero_point"), ENG_DT_UINT8, 0, NULL, &s->zp, 1,
                        &m->zid)) < 0))
        return rc;
    *sid = m->sid;
    *zid = m->zid;
    return 0;
}

/* The u8 twin of value v (made on first use). */
static int rw_twin(rw *r, int v, vstat *s)
{
    if (s->q >= 0) return s->q;
    const char *name = rw_name(r, r->g->values[v].name, "/quantized");
    int id;
    if (!name || eng_graph_add_value(r->g, name, ENG_DT_UINT8, &id) < 0)
        return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory quantizing");
    eng_value *t = &r->g->values[id];
    const eng_value *src = &r->g->values[v];
    t->rank = src->rank;
    memcpy(t->shape, src->shape, sizeof(t->shape));
    s->q = id;
    return id;
}

/* The u8 input of a quantized node: x's twin, quantized here unless a
 * quantized node wrote it. */
static int rw_input_u8(rw *r, int x, vstat *sx, bool *quantized_out)
{
    int rc, sxi, zxi;
    if (quantized_out[x]) return 0;
    int xq = rw_twin(r, x, sx);
    if (xq < 0) return xq;
    if ((rc = rw_params(r, x, sx, &sxi, &zxi)) < 0) return rc;
    int in[3] = {x, sxi, zxi};
    if ((rc = rw_node(r, ENG_OP_QUANTIZE_LINEAR,
                      rw_name(r, r->g->values[x].name, "/QuantizeLinear"), 3, in, xq)) < 0)
        return rc;
    quantized_out[x] = true;
    return 0;
}

/* The s8 twin of activation v, symmetric, quantized here on first use. */
static int rw_input_s8(rw *r, int v, vstat *s)
{
    if (s->q8 >= 0) return 0;
    const char *base = r->g->values[v].name;
    int8_t zero = 0;
    int rc, id;
    if ((rc = rw_const(r, rw_name(r, base, "/scale_s8"), ENG_DT_FLOAT, 0, NULL, &s->scale8, 4,
                       &s->sid8)) < 0 ||
        (rc = rw_const(r, rw_name(r, base, "/zero_point_s8"), ENG_DT_INT8, 0, NULL, &zero, 1,
                       &s->zid8)) < 0)
        return rc;
    const char *name = rw_name(r, base, "/quantized_s8");
    if (!name || eng_graph_add_value(r->g, name, ENG_DT_INT8, &id) < 0)
        return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory quantizing");
    eng_value *t = &r->g->values[id];
    const eng_value *src = &r->g->values[v];
    t->rank = src->rank;
    memcpy(t->shape, src->shape, sizeof(t->shape));
    int in[3] = {v, s->sid8, s->zid8};
    if ((rc = rw_node(r, ENG_OP_QUANTIZE_LINEAR, rw_name(r, base, "/QuantizeLinear_s8"), 3, in,
                      id)) < 0)
        return rc;
    s->q8 = id;
    return 0;
}

/* MatMul -> QLinearMatMul: a u8 per tensor; b a constant quantized s8
 * symmetric per column, or an activation's s8 twin; y u8 per tensor. */
static int rw_matmul(rw *r, const eng_node *c, int kind, vstat *st, bool *quantized_out)
{
    eng_graph *g = r->g;
    int x = c->in[0], b = c->in[1], y = c->out[0];
    int rc, sxi, zxi, syi, zyi, bid, sbi, zbi;
    if ((rc = rw_input_u8(r, x, &st[x], quantized_out)) < 0 ||
        (rc = rw_params(r, x, &st[x], &sxi, &zxi)) < 0 ||
        (rc = rw_params(r, y, &st[y], &syi, &zyi)) < 0)
        return rc;
    int yq = rw_twin(r, y, &st[y]);
    if (yq < 0) return yq;
    if (kind == CAND_MATMUL_ACT) {
        if ((rc = rw_input_s8(r, b, &st[b])) < 0) return rc;
        bid = st[b].q8;
        sbi = st[b].sid8;
        zbi = st[b].zid8;
    } else {
        eng_value wv; /* [N, K]: quantized per row, stored back as [K, N] */
        float *wbuf;
        if (out_first_weights(g, c, &wv, &wbuf) < 0)
            return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory quantizing");
        int64_t nn = wv.shape[0], k = wv.shape[1];
        int8_t *wq = malloc((size_t)(nn * k)), *wt = malloc((size_t)(nn * k));
        int8_t *zw = calloc((size_t)nn, 1);
        float *sw = malloc(sizeof(float) * (size_t)nn);
        if (wq && wt && zw && sw) {
            quantize_weights(&wv, wq, sw, NULL);
            for (int64_t j = 0; j < nn; j++)
                for (int64_t i = 0; i < k; i++)
                    wt[i * nn + j] = wq[j * k + i];
            const char *wn = g->values[b].name;
            int64_t kn[2] = {k, nn}, nd[1] = {nn};
            rc = rw_const(r, rw_name(r, wn, "/quantized"), ENG_DT_INT8, 2, kn, wt, (size_t)(nn * k),
                          &bid);
            if (rc >= 0)
                rc = rw_const(r, rw_name(r, wn, "/scale"), ENG_DT_FLOAT, 1, nd, sw,
                              4 * (size_t)nn, &sbi);
            if (rc >= 0)
                rc = rw_const(r, rw_name(r, wn, "/zero_point"), ENG_DT_INT8, 1, nd, zw,
                              (size_t)nn, &zbi);
        } else {
            rc = rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory quantizing");
        }
        free(wq);
        free(wt);
        free(zw);
        free(sw);
        free(wbuf);
        if (rc < 0) return rc;
    }
    int in[8] = {st[x].q, sxi, zxi, bid, sbi, zbi, syi, zyi};
    eng_node n = *c;
    n.op = ENG_OP_QLINEAR_MATMUL;
    n.n_in = 8;
    n.in = rouse_arena_alloc(&g->arena, sizeof(in), 8);
    n.out = rouse_arena_alloc(&g->arena, sizeof(int), 8);
    if (!n.in || !n.out) return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory");
    memcpy(n.in, in, sizeof(in));
    n.out[0] = yq;
    memset(&n.attrs, 0, sizeof(n.attrs));
    n.n_post = 0;
    if ((rc = rw_push(r, &n)) < 0) return rc;
    quantized_out[y] = true;
    return 0;
}

/* MaxPool or Concat over the u8 twins of its inputs, which quantized
 * nodes wrote with one scale and zero point (a Concat's were made alike):
 * the output takes them, so no value changes. */
static int rw_u8_passthrough(rw *r, const eng_node *c, vstat *st, bool *quantized_out)
{
    int x = c->in[0], y = c->out[0];
    st[y].scale = st[x].scale;
    st[y].zp = st[x].zp;
    st[y].sid = st[x].sid;
    st[y].zid = st[x].zid;
    int yq = rw_twin(r, y, &st[y]);
    if (yq < 0) return yq;
    eng_node n = *c;
    n.in = rouse_arena_alloc(&r->g->arena, sizeof(int) * (size_t)c->n_in, 8);
    n.out = rouse_arena_alloc(&r->g->arena, sizeof(int), 8);
    if (!n.in || !n.out) return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory");
    n.n_out = 1;
    for (int k = 0; k < c->n_in; k++)
        n.in[k] = st[c->in[k]].q;
    n.out[0] = yq;
    int rc = rw_push(r, &n);
    if (rc >= 0) quantized_out[y] = true;
    return rc;
}

static int rw_conv(rw *r, const eng_node *c, vstat *st, bool *quantized_out)
{
    eng_graph *g = r->g;
    int x = c->in[0], y = c->out[0];
    vstat *sx = &st[x], *sy = &st[y];
    int rc, sxi, zxi, syi, zyi;
    if ((rc = rw_input_u8(r, x, sx, quantized_out)) < 0) return rc;
    if ((rc = rw_params(r, x, sx, &sxi, &zxi)) < 0 || (rc = rw_params(r, y, sy, &syi, &zyi)) < 0)
        return rc;
    int yq = rw_twin(r, y, sy);
    if (yq < 0) return yq;
    /* Weights, their scales and zero points, the int32 bias. */
    eng_value wv;
    float *wbuf;
    if (out_first_weights(g, c, &wv, &wbuf) < 0)
        return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory quantizing");
    const eng_value *w = &wv;
    int64_t m = w->shape[0], nw = eng_shape_numel(w->rank, w->shape);
    int8_t *wq = malloc((size_t)nw);
    float *sw = malloc(sizeof(float) * (size_t)m);
    int32_t *b = calloc((size_t)m, sizeof(int32_t));
    int8_t *zw = calloc((size_t)m, 1);
    if (!wq || !sw || !b || !zw) {
        free(wq);
        free(sw);
        free(b);
        free(zw);
        free(wbuf);
        return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory quantizing");
    }
    bool has_bias = c->n_in > 2 && c->in[2] >= 0;
    /* The int32 bias must stay far from overflow when the kernel adds it to
     * the int32 sum (and exact in float): a channel whose weights are tiny
     * next to its bias gets a coarser weight scale, |b| / (x_scale * 2^24). */
    double *min_s = calloc((size_t)m, sizeof(double));
    if (!min_s) {
        free(wq);
        free(sw);
        free(b);
        free(zw);
        free(wbuf);
        return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory quantizing");
    }
    for (int64_t i = 0; has_bias && i < m; i++)
        min_s[i] = fabs(fget(g->values[c->in[2]].const_data, i)) / ((double)sx->scale * 16777216.0);
    quantize_weights(w, wq, sw, min_s);
    free(min_s);
    free(wbuf); /* w's shape stays valid: a copy */
    for (int64_t i = 0; has_bias && i < m; i++) {
        double q = nearbyint(fget(g->values[c->in[2]].const_data, i) / ((double)sx->scale * sw[i]));
        b[i] = (int32_t)(q > 2147483647.0 ? 2147483647.0 : q < -2147483647.0 ? -2147483647.0 : q);
    }
    int64_t md[1] = {m};
    int wid, swid, zwid, bid = -1;
    const char *wn = g->values[c->in[1]].name;
    int64_t w4[4] = {w->shape[0], w->rank == 2 ? w->shape[1] : 0, 1, 1};
    bool as4 = c->op == ENG_OP_GEMM;
    rc = rw_const(r, rw_name(r, wn, "/quantized"), ENG_DT_INT8, as4 ? 4 : w->rank,
                  as4 ? w4 : w->shape, wq, (size_t)nw, &wid);
    if (rc >= 0) rc = rw_const(r, rw_name(r, wn, "/scale"), ENG_DT_FLOAT, 1, md, sw, 4 * (size_t)m,
                               &swid);
    if (rc >= 0) rc = rw_const(r, rw_name(r, wn, "/zero_point"), ENG_DT_INT8, 1, md, zw, (size_t)m,
                               &zwid);
    if (rc >= 0 && has_bias)
        rc = rw_const(r, rw_name(r, g->values[c->in[2]].name, "/quantized"), ENG_DT_INT32, 1, md, b,
                      4 * (size_t)m, &bid);
    free(wq);
    free(sw);
    free(b);
    free(zw);
    if (rc < 0) return rc;
    /* A Gemm runs as a 1x1 convolution over its input viewed as [M, K, 1, 1]. */
    const bool gemm = c->op == ENG_OP_GEMM;
    int conv_x = sx->q, conv_y = yq;
    const char *cname = *c->name ? c->name : g->values[y].name;
    if (gemm) {
        int64_t k = w->shape[1], s4[4] = {0, k, 1, 1};
        if ((rc = rw_u8_value(r, cname, "/input_4d", &conv_x)) < 0 ||
            (rc = rw_reshape(r, sx->q, 4, s4, conv_x, rw_name(r, cname, "/reshape_in"))) < 0 ||
            (rc = rw_u8_value(r, cname, "/output_4d", &conv_y)) < 0)
            return rc;
    }
    int in[9] = {conv_x, sxi, zxi, wid, swid, zwid, syi, zyi, bid};
    eng_node n = *c;
    n.op = ENG_OP_QLINEAR_CONV;
    n.n_in = has_bias ? 9 : 8;
    n.in = rouse_arena_alloc(&g->arena, sizeof(in), 8);
    n.out = rouse_arena_alloc(&g->arena, sizeof(int), 8);
    if (!n.in || !n.out) return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory");
    memcpy(n.in, in, sizeof(in));
    n.out[0] = conv_y;
    eng_conv_attrs ca = c->attrs.conv;
    if (gemm) {
        memset(&ca, 0, sizeof(ca));
        ca.n_spatial = 2;
        for (int i = 0; i < ENG_MAX_SPATIAL; i++) /* unused slots as the parser leaves them */
            ca.kernel[i] = ca.stride[i] = ca.dilation[i] = 1;
        ca.group = 1;
    }
    memset(&n.attrs, 0, sizeof(n.attrs));
    n.attrs.quant.conv = ca;
    n.n_post = 0; /* Relu / Clip: the saturation of y's range */
    if ((rc = rw_push(r, &n)) < 0) return rc;
    if (gemm) {
        int64_t s2[2] = {0, m};
        if ((rc = rw_reshape(r, conv_y, 2, s2, yq, rw_name(r, cname, "/reshape_out"))) < 0)
            return rc;
    }
    quantized_out[y] = true;
    return 0;
}

/* Add [+ Relu] or an average pool in QDQ form: the node reads the float
 * values (DequantizeLinear outputs), writes a new float value y_pre, and a
 * QuantizeLinear writes the u8 twin of its output (the Relu's for an Add
 * with one). *y: the value whose twin that is. */
static int rw_qdq_node(rw *r, const eng_node *c, const int *qnode, vstat *st, bool *quantized_out,
                       int *y)
{
    eng_graph *g = r->g;
    int out = c->out[0];
    if (c->op == ENG_OP_ADD) {
        int rd = -1;
        for (int i = 0; i < g->n_nodes && rd < 0; i++)
            if (qnode[i] == CAND_RELU_IN && !g->nodes[i].dead && g->nodes[i].in[0] == out) rd = i;
        if (rd >= 0) out = g->nodes[rd].out[0];
    } else {
        int x = c->in[0];
        st[out].scale = st[x].scale;
        st[out].zp = st[x].zp;
        st[out].sid = st[x].sid;
        st[out].zid = st[x].zid;
    }
    *y = out;
    int pre, rc, sid, zid;
    const char *name = rw_name(r, g->values[out].name, "/pre_quant");
    if (!name || eng_graph_add_value(g, name, ENG_DT_FLOAT, &pre) < 0)
        return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory quantizing");
    g->values[pre].rank = g->values[c->out[0]].rank;
    memcpy(g->values[pre].shape, g->values[c->out[0]].shape, sizeof(g->values[pre].shape));
    eng_node n = *c;
    n.in = rouse_arena_alloc(&g->arena, sizeof(int) * (size_t)c->n_in, 8);
    n.out = rouse_arena_alloc(&g->arena, sizeof(int), 8);
    if (!n.in || !n.out) return rouse_err_set(r->eb, ROUSE_ENOMEM, "out of memory");
    memcpy(n.in, c->in, sizeof(int) * (size_t)c->n_in);
    n.n_out = 1;
    n.out[0] = pre;
    if ((rc = rw_push(r, &n)) < 0) return rc;
    int yq = rw_twin(r, out, &st[out]);
    if (yq < 0) return yq;
    if ((rc = rw_params(r, out, &st[out], &sid, &zid)) < 0) return rc;
    int in[3] = {pre, sid, zid};
    if ((rc = rw_node(r, ENG_OP_QUANTIZE_LINEAR, rw_name(r, g->values[out].name, "/QuantizeLinear"),
                      3, in, yq)) < 0)
        return rc;
    quantized_out[out] = true;
    return 0;
}

/* Nodes that read the u8 twins themselves; a quantized Add or average
 * pool reads the float values of DequantizeLinear nodes (QDQ form). */
static bool u8_reader(int kind)
{
    return kind && kind != CAND_ADD && kind != CAND_AVGPOOL && kind != CAND_RELU_IN;
}

/* Whether value v has a reader that does not take its u8 twin (a
 * quantized node's first input, any input of a u8 Concat), or is a graph
 * output. */
static bool needs_float(const eng_graph *g, int v, const int *qnode)
{
    if (g->values[v].is_output) return true;
    for (int i = 0; i < g->n_nodes; i++) {
        const eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == v && !(u8_reader(qnode[i]) && (k == 0 || qnode[i] == CAND_CONCAT)))
                return true;
    }
    return false;
}

static int rewrite(eng_graph *g, const int *qnode, vstat *st, rouse_errbuf *eb)
{
    rw r = {g, NULL, 0, 0, eb};
    bool *qout = calloc((size_t)g->n_values + 1, 1);
    int n_old = g->n_nodes, rc = 0;
    if (!qout) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory quantizing");
    for (int i = 0; i < n_old && rc >= 0; i++) {
        const eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        if (!qnode[i]) {
            rc = rw_push(&r, n);
            continue;
        }
        if (qnode[i] == CAND_RELU_IN) continue; /* written with its Add */
        int y = n->out[0];
        if (qnode[i] == CAND_ADD || qnode[i] == CAND_AVGPOOL) {
            if ((rc = rw_qdq_node(&r, n, qnode, st, qout, &y)) < 0) break;
        } else {
            rc = qnode[i] == CAND_CONV ? rw_conv(&r, n, st, qout)
                 : qnode[i] == CAND_MAXPOOL || qnode[i] == CAND_CONCAT
                     ? rw_u8_passthrough(&r, n, st, qout)
                     : rw_matmul(&r, n, qnode[i], st, qout);
        }
        if (rc < 0) break;
        if (needs_float(g, y, qnode)) {
            int syi, zyi;
            if ((rc = rw_params(&r, y, &st[y], &syi, &zyi)) < 0) break;
            int in[3] = {st[y].q, syi, zyi};
            rc = rw_node(&r, ENG_OP_DEQUANTIZE_LINEAR,
                         rw_name(&r, g->values[y].name, "/DequantizeLinear"), 3, in, y);
        }
    }
    free(qout);
    if (rc < 0) {
        free(r.nodes);
        return rc;
    }
    free(g->nodes);
    g->nodes = r.nodes;
    g->n_nodes = r.n;
    g->cap_nodes = r.cap;
    for (int v = 0; v < g->n_values; v++)
        if (!g->values[v].const_data) g->values[v].producer = -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_out; k++)
            if (g->nodes[i].out[k] >= 0) g->values[g->nodes[i].out[k]].producer = i;
    return 0;
}

/* --- u8 data through MaxPool and Concat ------------------------------------------------------ */

/* Value v is the output of a node that will write it as u8. */
static bool quantized_output(const eng_graph *g, int v, const int *qnode)
{
    int prod = v >= 0 ? g->values[v].producer : -1;
    return prod >= 0 && qnode[prod] && g->nodes[prod].n_out >= 1 && g->nodes[prod].out[0] == v;
}

/* u8 MaxPool is ONNX's from opset 12; the indices output stays float's. */
static bool maxpool_follows(const eng_graph *g, const eng_node *n, const int *qnode)
{
    return !n->dead && n->opset >= 12 && n->n_in == 1 && n->n_out >= 1 && n->out[0] >= 0 &&
           !(n->n_out > 1 && n->out[1] >= 0) && !n->n_post && quantized_output(g, n->in[0], qnode);
}

/* Every input the output of a quantized Conv, Gemm or MatMul (whose
 * parameters were calibrated) read by this Concat alone: those outputs get
 * the parameters of the union of their ranges, as does the Concat's. */
static bool concat_follows(const eng_graph *g, const eng_node *n, const int *qnode, vstat *st)
{
    if (n->dead || n->n_in < 1 || n->n_out != 1 || n->out[0] < 0 || n->n_post) return false;
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < n->n_in; k++) {
        int v = n->in[k];
        if (!quantized_output(g, v, qnode)) return false;
        int kind = qnode[g->values[v].producer];
        if (kind != CAND_CONV && kind != CAND_MATMUL_W && kind != CAND_MATMUL_ACT) return false;
        if (g->values[v].is_output || eng_graph_count_uses(g, v) != 1) return false;
        for (int j = 0; j < k; j++)
            if (n->in[j] == v) return false;
        lo = fmin(lo, st[v].lo);
        hi = fmax(hi, st[v].hi);
    }
    for (int k = 0; k <= n->n_in; k++) {
        vstat *s = &st[k < n->n_in ? n->in[k] : n->out[0]];
        s->lo = lo;
        s->hi = hi;
        set_params(s);
    }
    return true;
}

/* An Add of two distinct float activations: the value its quantized form
 * writes (the Relu's output when a Relu is its only reader, that Relu's
 * index in *relu, else -1), or -1 when it is not one. */
static int add_output(const eng_graph *g, const eng_node *n, int *relu)
{
    *relu = -1;
    if (n->dead || n->op != ENG_OP_ADD || n->n_in != 2 || n->n_out != 1 || n->out[0] < 0 ||
        n->n_post || n->in[0] == n->in[1] || !float_activation(g, n->in[0]) ||
        !float_activation(g, n->in[1]))
        return -1;
    const eng_value *a = &g->values[n->in[0]], *b = &g->values[n->in[1]];
    /* No broadcasting: equal shapes where they are known. */
    if (a->rank >= 0 && b->rank >= 0 && !eng_shape_equal(a->rank, a->shape, b->rank, b->shape))
        return -1;
    int y = n->out[0];
    if (g->values[y].is_output || eng_graph_count_uses(g, y) != 1) return y;
    for (int i = 0; i < g->n_nodes; i++) {
        const eng_node *r = &g->nodes[i];
        if (r->dead || r->n_in < 1 || r->in[0] != y) continue;
        if (r->op == ENG_OP_RELU && r->n_in == 1 && r->n_out == 1 && r->out[0] >= 0 && !r->n_post) {
            *relu = i;
            return r->out[0];
        }
        break;
    }
    return y;
}

/* Value v is the u8 twin's source of a node that writes one, for a reader
 * that takes the DequantizeLinear of it: a quantized node's output. */
static bool twin_written(const eng_graph *g, int v, const int *qnode)
{
    int prod = v >= 0 ? g->values[v].producer : -1;
    return prod >= 0 && qnode[prod] && g->nodes[prod].n_out >= 1 && g->nodes[prod].out[0] == v;
}

/* Both inputs quantized outputs, the output calibrated with an SQNR within
 * the budget. */
static bool add_follows(const eng_graph *g, const eng_node *n, const int *qnode, vstat *st,
                        double min_db, int *relu)
{
    int y = add_output(g, n, relu);
    if (y < 0 || !st[y].count) return false;
    for (int k = 0; k < 2; k++)
        if (!twin_written(g, n->in[k], qnode)) return false;
    double noise = rel_noise(&st[y], st[y].scale);
    return (noise > 0 ? -10.0 * log10(noise) : 200.0) >= min_db;
}

/* Average pooling of a quantized output, one output. */
static bool avgpool_follows(const eng_graph *g, const eng_node *n, const int *qnode)
{
    return !n->dead && n->n_in == 1 && n->n_out == 1 && n->out[0] >= 0 && !n->n_post &&
           twin_written(g, n->in[0], qnode);
}

/* --- entry point ------------------------------------------------------------------------- */

int eng_quantize_int8_with(eng_graph *g, const eng_samples *calib, const eng_quant_opts *opts,
                           eng_quant_report *report, rouse_errbuf *eb)
{
    const eng_tensor *samples = calib ? calib->t : NULL;
    int n_samples = calib ? calib->n_samples : 0;
    eng_quant_opts o = opts ? *opts : (eng_quant_opts){0};
    if (o.percentile <= 0 || o.percentile > 100) o.percentile = ENG_QUANT_DEFAULT_PERCENTILE;
    if (o.min_sqnr_db == 0) o.min_sqnr_db = ENG_QUANT_DEFAULT_MIN_SQNR_DB;
    eng_quant_report rep;
    memset(&rep, 0, sizeof(rep));
    if (report) memset(report, 0, sizeof(*report));
    if (n_samples < 1) return rouse_err_set(eb, ROUSE_EINVAL, "int8 needs calibration samples");
    if (calib->n_inputs != g->n_inputs)
        return rouse_err_set(eb, ROUSE_EINVAL, "calibration samples were made for another model");
    for (int s = 0; s < n_samples; s++)
        for (int i = 0; i < g->n_inputs; i++) {
            const eng_tensor *t = &samples[(size_t)s * (size_t)g->n_inputs + (size_t)i];
            if (!t->data || (g->values[g->inputs[i]].dtype &&
                             t->dtype != g->values[g->inputs[i]].dtype))
                return rouse_err_set(eb, ROUSE_EINVAL,
                                     "calibration sample %d: input '%s' must be %s data", s,
                                     g->values[g->inputs[i]].name,
                                     eng_dtype_name(g->values[g->inputs[i]].dtype));
        }
    int nn = g->n_nodes, nv = g->n_values;
    vstat *st = calloc((size_t)nv, sizeof(vstat));
    int *qnode = calloc((size_t)nn, sizeof(int));
    bool *watched = calloc((size_t)nv, sizeof(bool));
    int *watch = malloc(sizeof(int) * (size_t)(3 * nn + 1));
    cand *cands = malloc(sizeof(cand) * (size_t)(nn + 1));
    int n_watch = 0, n_cand = 0, rc = 0;
    if (!st || !qnode || !watched || !watch || !cands) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory quantizing");
        goto out;
    }
    for (int v = 0; v < nv; v++) {
        st[v].lo = INFINITY;
        st[v].hi = -INFINITY;
        st[v].q = st[v].sid = st[v].zid = st[v].q8 = st[v].sid8 = st[v].zid8 = -1;
    }
    for (int i = 0; i < nn; i++) {
        const eng_node *n = &g->nodes[i];
        int kind = candidate_kind(g, n);
        if (kind == CAND_NONE) continue;
        cands[n_cand++] = (cand){i, kind, 0, true};
        int vs[3] = {n->in[0], n->out[0], n->in[1]};
        for (int k = 0; k < (kind == CAND_MATMUL_ACT ? 3 : 2); k++)
            if (!watched[vs[k]]) {
                watched[vs[k]] = true;
                watch[n_watch++] = vs[k];
            }
    }
    /* Residual Adds may follow their quantized inputs: their outputs (the
     * Relu's after one) are calibrated too. */
    for (int i = 0; n_cand && i < nn; i++) {
        int relu, v = add_output(g, &g->nodes[i], &relu);
        if (v >= 0 && !watched[v]) {
            watched[v] = true;
            watch[n_watch++] = v;
        }
    }
    rep.n_candidates = n_cand;
    if (!n_cand) {
        rc = rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                           "int8: no layer of this model can be quantized (the quantizer takes "
                           "Conv, Gemm and MatMul with float inputs and no fused activation "
                           "other than Relu or Clip)");
        goto out;
    }
    if ((rc = calibrate_pass(g, watch, n_watch, st, samples, n_samples, visit_range, eb)) < 0)
        goto out;
    if (o.method == ENG_CALIB_PERCENTILE) {
        for (int i = 0; i < n_watch; i++) {
            st[watch[i]].hist = calloc(HIST_BINS, sizeof(uint64_t));
            if (!st[watch[i]].hist) {
                rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory quantizing");
                goto out;
            }
        }
        if ((rc = calibrate_pass(g, watch, n_watch, st, samples, n_samples, visit_hist, eb)) < 0)
            goto out;
        for (int i = 0; i < n_watch; i++)
            percentile_range(&st[watch[i]], o.percentile);
    }
    for (int i = 0; i < n_watch; i++)
        set_params(&st[watch[i]]);
    double sum_db = 0;
    rep.min_sqnr_db = INFINITY;
    rep.kept = rouse_arena_alloc(&g->arena, sizeof(char *) * (size_t)n_cand, 8);
    if (!rep.kept) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory quantizing");
        goto out;
    }
    for (int c = 0; c < n_cand; c++) {
        const eng_node *n = &g->nodes[cands[c].node];
        cands[c].sqnr_db = estimate_sqnr_db(g, n, cands[c].kind, st);
        if (cands[c].sqnr_db < o.min_sqnr_db) {
            /* "name (estimated 12.3 dB)" */
            char buf[300];
            snprintf(buf, sizeof(buf), "%s (estimated %.1f dB)",
                     *n->name ? n->name : eng_op_name(n->op),
                     cands[c].sqnr_db);
            if (!(rep.kept[rep.n_kept++] = rouse_arena_strdup(&g->arena, buf))) {
                rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory quantizing");
                goto out;
            }
            continue;
        }
        qnode[cands[c].node] = cands[c].kind;
        rep.n_quantized++;
        sum_db += cands[c].sqnr_db;
        if (cands[c].sqnr_db < rep.min_sqnr_db) rep.min_sqnr_db = cands[c].sqnr_db;
    }
    /* MaxPools and Concats of quantized outputs follow them into u8, in
     * order (a pool of a concat too). */
    for (int i = 0; rep.n_quantized && i < nn; i++) {
        const eng_node *n = &g->nodes[i];
        int relu;
        if (n->op == ENG_OP_MAXPOOL && maxpool_follows(g, n, qnode))
            qnode[i] = CAND_MAXPOOL;
        else if (n->op == ENG_OP_CONCAT && concat_follows(g, n, qnode, st))
            qnode[i] = CAND_CONCAT;
        else if (n->op == ENG_OP_ADD && add_follows(g, n, qnode, st, o.min_sqnr_db, &relu)) {
            qnode[i] = CAND_ADD;
            if (relu >= 0) qnode[relu] = CAND_RELU_IN;
        } else if ((n->op == ENG_OP_AVGPOOL || n->op == ENG_OP_GLOBAL_AVGPOOL) &&
                   avgpool_follows(g, n, qnode)) {
            qnode[i] = CAND_AVGPOOL;
        }
    }
    if (rep.n_quantized) {
        rep.mean_sqnr_db = sum_db / rep.n_quantized;
        rc = rewrite(g, qnode, st, eb);
    } else {
        rep.min_sqnr_db = 0;
    }
out:
    if (st)
        for (int v = 0; v < nv; v++)
            free(st[v].hist);
    free(st);
    free(qnode);
    free(watched);
    free(watch);
    free(cands);
    if (rc >= 0 && report) *report = rep;
    return rc < 0 ? rc : 0;
}

int eng_quantize_int8(eng_graph *g, const eng_samples *calib, eng_quant_report *rep,
                      rouse_errbuf *eb)
{
    int rc = eng_quantize_int8_with(g, calib, NULL, rep, eb);
    if (rc >= 0) g->precision = ENG_PRECISION_INT8;
    return rc;
}
