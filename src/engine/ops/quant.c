/*
 * Operator descriptors of the quantization family (see engine/op.h):
 * QuantizeLinear and DequantizeLinear (per tensor, and per axis since
 * opset 13), DynamicQuantizeLinear, QLinearMatMul, QLinearConv,
 * MatMulInteger and ConvInteger, on plain C reference kernels.
 *
 * Guarantees: quantization rounds half to even and saturates to the
 * output type; QuantizeLinear and DynamicQuantizeLinear divide in float,
 * as the ONNX reference does. Integer products are summed exactly (in
 * int64, wrapped to int32 on output as the ONNX int32 accumulator would);
 * requantization multiplies the sum by scale_a * scale_b / scale_y, that
 * factor computed in float. Zero points and scales are per tensor, per
 * output channel for the weights of the convolutions, per row of A and
 * per column of B for the matrix products; their shapes are checked when
 * the model is prepared.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/op.h"
#include "engine/ops/elem.h"
#include "engine/ops/window.h"
#include "engine/ref/ref_util.h"

#define DTM_Q8 (ENG_DTM(INT8) | ENG_DTM(UINT8))

/* Element i of an int8 or uint8 tensor (the types shape inference lets
 * through to the integer products). */
static inline int32_t q8(int dtype, const void *base, int64_t i)
{
    return dtype == ENG_DT_INT8 ? ((const int8_t *)base)[i] : ((const uint8_t *)base)[i];
}

/* 1 element (a scalar or a 1-element vector): per tensor. */
static bool is_single(const eng_tensor *t)
{
    return t->rank <= 1 && eng_tensor_numel(t) == 1;
}

/* A quantization parameter (scale or zero point) at input i: per tensor, or
 * a vector of `len` values when `len` > 0. Optional inputs may be absent. */
static int check_param(eng_infer_ctx *c, int i, int64_t len, const char *what)
{
    const eng_tensor *t = eng_infer_input(c, i);
    if (!t || is_single(t)) return 0;
    if (len > 0 && t->rank == 1 && t->shape[0] == len) return 0;
    char s[96];
    if (len > 0)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input '%s' must hold 1 value or %lld (%s), has shape %s",
                              eng_infer_in_name(c, i), (long long)len, what,
                              eng_shape_str(t->rank, t->shape, s, sizeof(s)));
    return eng_infer_fail(c, ROUSE_EMISMATCH, "input '%s' must hold 1 value, has shape %s",
                          eng_infer_in_name(c, i), eng_shape_str(t->rank, t->shape, s, sizeof(s)));
}

static int check_float_param(eng_infer_ctx *c, int i)
{
    const eng_tensor *t = eng_infer_input(c, i);
    if (!t || t->dtype == ENG_DT_FLOAT) return 0;
    return eng_infer_fail(c, ROUSE_EMISMATCH, "input '%s' must be float, got %s",
                          eng_infer_in_name(c, i), eng_dtype_name(t->dtype));
}

/* Value k of a parameter that holds 1 value or one per k. */
static double param(const eng_tensor *t, int64_t k, double def)
{
    if (!t) return def;
    return elem_get_f(t->dtype, t->data, eng_tensor_numel(t) == 1 ? 0 : k);
}

/* --- QuantizeLinear / DequantizeLinear ----------------------------------------- */

static int parse_qaxis(const eng_attr_ctx *c, eng_attrs *a)
{
    a->quant.q.axis = 1;
    if (c->n->opset < 13) return 0;
    int rc = eng_attr_int(c, "axis", 1, &a->quant.q.axis);
    if (rc == 0 && (a->quant.q.axis < -ENG_MAX_RANK || a->quant.q.axis >= ENG_MAX_RANK))
        return eng_attr_err(c, ROUSE_EFORMAT, "axis", "is out of range");
    return rc;
}

static int check_qaxis(const eng_node *n, rouse_errbuf *eb)
{
    int64_t ax = n->attrs.quant.q.axis;
    if (ax >= -ENG_MAX_RANK && ax < ENG_MAX_RANK) return 0;
    return eng_check_fail(n, eb, ROUSE_EFORMAT, "axis", "is out of range (%lld)", (long long)ax);
}

/* Shared by QuantizeLinear and DequantizeLinear: the scale (input 1) and
 * zero point (input 2) are per tensor or hold x.shape[axis] values. */
static int infer_qparams(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *s = c->in[1], *z = eng_infer_input(c, 2);
    int64_t axis = 0, len = 0;
    int rc;
    if ((rc = check_float_param(c, 1)) < 0) return rc;
    if (!is_single(s)) {
        if (c->n->opset < 13)
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "input '%s' must hold 1 value before opset 13",
                                  eng_infer_in_name(c, 1));
        if ((rc = eng_infer_norm_axis(c, c->res->quant.q.axis, x->rank, false, &axis)) < 0)
            return rc;
        len = x->shape[axis];
    } /* per tensor: the axis attribute does not apply (ONNX keeps its default 1 for any rank) */
    c->res->quant.q.axis = axis;
    if ((rc = check_param(c, 1, len, "one per element of the axis")) < 0) return rc;
    if (z) {
        if ((rc = check_param(c, 2, len, "one per element of the axis")) < 0) return rc;
        if (eng_tensor_numel(z) != eng_tensor_numel(s))
            return eng_infer_fail(c, ROUSE_EMISMATCH, "inputs '%s' and '%s' differ in size",
                                  eng_infer_in_name(c, 1), eng_infer_in_name(c, 2));
    }
    return 0;
}

static int infer_quantize(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *z = eng_infer_input(c, 2);
    int rc;
    if (z && z->dtype != ENG_DT_UINT8 && z->dtype != ENG_DT_INT8)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                              "input 'y_zero_point' is %s, only uint8 and int8 are supported",
                              eng_dtype_name(z->dtype));
    if ((rc = infer_qparams(c)) < 0) return rc;
    eng_infer_set_out(c, 0, z ? z->dtype : ENG_DT_UINT8, x->rank, x->shape);
    return 0;
}

static int infer_dequantize(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *z = eng_infer_input(c, 2);
    int rc;
    if (z && (rc = eng_infer_same_dtype(c, 2, 0)) < 0) return rc;
    if ((rc = infer_qparams(c)) < 0) return rc;
    eng_infer_set_out(c, 0, ENG_DT_FLOAT, x->rank, x->shape);
    return 0;
}

/* Index into a per-axis parameter of element e of x. */
static void axis_geometry(const eng_tensor *x, int64_t axis, int64_t *dim, int64_t *inner)
{
    *dim = 1;
    *inner = 1;
    if (x->rank == 0) return;
    *dim = x->shape[axis];
    for (int d = (int)axis + 1; d < x->rank; d++)
        *inner *= x->shape[d];
}

static int run_quantize(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                        eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_tensor *x = in[0], *s = in[1], *z = nd->n_in > 2 ? in[2] : NULL;
    eng_tensor *y = out[0];
    if (x->dtype != ENG_DT_FLOAT && x->dtype != ENG_DT_INT32)
        return eng_run_fail(nd, eb, ROUSE_EUNSUPPORTED, "element type %s is not supported",
                            eng_dtype_name(x->dtype));
    int64_t n = eng_tensor_numel(x), dim, inner;
    axis_geometry(x, a->quant.q.axis, &dim, &inner);
    const bool per_axis = !is_single(s);
    for (int64_t e = 0; e < n; e++) {
        int64_t k = per_axis ? (e / inner) % dim : 0;
        double q;
        if (x->dtype == ENG_DT_FLOAT)
            q = nearbyintf(((const float *)x->data)[e] / (float)param(s, k, 1));
        else
            q = nearbyint((double)((const int32_t *)x->data)[e] / (double)(float)param(s, k, 1));
        elem_set_f(y->dtype, y->data, e, q + param(z, k, 0));
    }
    return 0;
}

static int run_dequantize(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                          eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_tensor *x = in[0], *s = in[1], *z = nd->n_in > 2 ? in[2] : NULL;
    float *y = out[0]->data;
    if (x->dtype != ENG_DT_INT8 && x->dtype != ENG_DT_UINT8 && x->dtype != ENG_DT_INT32)
        return eng_run_fail(nd, eb, ROUSE_EUNSUPPORTED, "element type %s is not supported",
                            eng_dtype_name(x->dtype));
    int64_t n = eng_tensor_numel(x), dim, inner;
    axis_geometry(x, a->quant.q.axis, &dim, &inner);
    const bool per_axis = !is_single(s);
    for (int64_t e = 0; e < n; e++) {
        int64_t k = per_axis ? (e / inner) % dim : 0;
        int64_t v = (int64_t)elem_get_f(x->dtype, x->data, e) - (int64_t)param(z, k, 0);
        y[e] = (float)v * (float)param(s, k, 1);
    }
    return 0;
}

/* --- DynamicQuantizeLinear --------------------------------------------------------- */

static int infer_dynamic(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_infer_set_out(c, 0, ENG_DT_UINT8, x->rank, x->shape);
    eng_infer_set_out(c, 1, ENG_DT_FLOAT, 0, NULL);
    eng_infer_set_out(c, 2, ENG_DT_UINT8, 0, NULL);
    return 0;
}

static int run_dynamic(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                       eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    (void)eb;
    (void)nd;
    const float *x = in[0]->data;
    int64_t n = eng_tensor_numel(in[0]);
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    float scale = (hi - lo) / 255.0f;
    float zp = 0;
    if (scale > 0 && isfinite(scale)) {
        float z = 0.0f - lo / scale;
        zp = nearbyintf(z < 0 ? 0 : z > 255 ? 255 : z);
    }
    uint8_t *y = out[0]->data;
    for (int64_t i = 0; i < n; i++) {
        double q = scale > 0 && isfinite(scale) ? nearbyintf(x[i] / scale) + zp : zp;
        y[i] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
    }
    if (out[1]) *(float *)out[1]->data = scale;
    if (out[2]) *(uint8_t *)out[2]->data = (uint8_t)zp;
    return 0;
}

/* --- integer matrix products -------------------------------------------------------- */

/* numpy matmul shapes of a and b into y; *m, *k, *n the matrix sizes. */
static int infer_matmul_shape(eng_infer_ctx *c, int ia, int ib, int dtype, int64_t *m, int64_t *kk,
                              int64_t *nn)
{
    const eng_tensor *a = c->in[ia], *b = c->in[ib];
    if (a->rank < 1 || b->rank < 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "inputs '%s' and '%s' must have rank >= 1",
                              eng_infer_in_name(c, ia), eng_infer_in_name(c, ib));
    int64_t ak = a->shape[a->rank - 1], am = a->rank > 1 ? a->shape[a->rank - 2] : 1;
    int64_t bk = b->rank > 1 ? b->shape[b->rank - 2] : b->shape[0];
    int64_t bn = b->rank > 1 ? b->shape[b->rank - 1] : 1;
    if (ak != bk)
        return eng_infer_fail(
            c, ROUSE_EMISMATCH, "inputs '%s' and '%s' disagree on the inner dim (%lld vs %lld)",
            eng_infer_in_name(c, ia), eng_infer_in_name(c, ib), (long long)ak, (long long)bk);
    int rba = a->rank > 2 ? a->rank - 2 : 0, rbb = b->rank > 2 ? b->rank - 2 : 0, r;
    int64_t y[ENG_MAX_RANK + 2];
    if (!eng_broadcast_shapes(rba, a->shape, rbb, b->shape, &r, y))
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "the batch dims of inputs '%s' and '%s' do not "
                              "broadcast",
                              eng_infer_in_name(c, ia), eng_infer_in_name(c, ib));
    if (a->rank > 1) y[r++] = am;
    if (b->rank > 1) y[r++] = bn;
    if (r > ENG_MAX_RANK) return eng_infer_fail(c, ROUSE_EUNSUPPORTED, "output rank too large");
    *m = am;
    *kk = ak;
    *nn = bn;
    eng_infer_set_out(c, 0, dtype, r, y);
    return 0;
}

/* Loops over the broadcast batch of a and b (numpy matmul) and calls `out`
 * per element with the exact sum of (a - za[row]) * (b - zb[col]). */
typedef struct imm {
    const eng_tensor *a, *b, *za, *zb;
    eng_tensor *y;
} imm;

typedef void (*imm_store)(const imm *p, int64_t idx, int64_t row, int64_t col, int64_t acc,
                          const void *ctx);

static void imm_run(const imm *p, imm_store store, const void *ctx)
{
    const eng_tensor *a = p->a, *b = p->b;
    int64_t K = a->shape[a->rank - 1], M = a->rank > 1 ? a->shape[a->rank - 2] : 1;
    int64_t N = b->rank > 1 ? b->shape[b->rank - 1] : 1;
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    int ry = ra > rb ? ra : rb;
    int64_t shape[ENG_MAX_RANK], sa[ENG_MAX_RANK], sb[ENG_MAX_RANK], idx[ENG_MAX_RANK] = {0};
    int64_t na = 1, nb = 1;
    for (int d = ry - 1, da = ra - 1, db = rb - 1; d >= 0; d--, da--, db--) {
        int64_t ea = da >= 0 ? a->shape[da] : 1, eb = db >= 0 ? b->shape[db] : 1;
        shape[d] = ea > eb ? ea : eb;
        sa[d] = ea == 1 ? 0 : na;
        sb[d] = eb == 1 ? 0 : nb;
        na *= ea;
        nb *= eb;
    }
    int64_t batches = eng_shape_numel(ry, shape), yi = 0;
    for (int64_t bt = 0; bt < batches; bt++) {
        int64_t oa = 0, ob = 0;
        for (int d = 0; d < ry; d++) {
            oa += idx[d] * sa[d];
            ob += idx[d] * sb[d];
        }
        for (int64_t i = 0; i < M; i++) {
            const int64_t za = (int64_t)param(p->za, i, 0);
            for (int64_t j = 0; j < N; j++) {
                int64_t acc = 0, zb = (int64_t)param(p->zb, j, 0);
                for (int64_t k = 0; k < K; k++) {
                    int64_t av = q8(a->dtype, a->data, (oa * M + i) * K + k);
                    int64_t bv = q8(b->dtype, b->data, (ob * K + k) * N + j);
                    acc += (av - za) * (bv - zb);
                }
                store(p, yi++, i, j, acc, ctx);
            }
        }
        for (int d = ry - 1; d >= 0; d--) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
}

static void store_int32(const imm *p, int64_t idx, int64_t row, int64_t col, int64_t acc,
                        const void *ctx)
{
    (void)row;
    (void)col;
    (void)ctx;
    ((int32_t *)p->y->data)[idx] = (int32_t)(uint32_t)(uint64_t)acc;
}

/* Requantization of QLinearMatMul: scale per row of a, per column of b. */
typedef struct requant {
    const eng_tensor *sa, *sb, *sy, *zy;
} requant;

static void store_requant(const imm *p, int64_t idx, int64_t row, int64_t col, int64_t acc,
                          const void *ctx)
{
    const requant *q = ctx;
    float mult =
        (float)param(q->sa, row, 1) * (float)param(q->sb, col, 1) / (float)param(q->sy, col, 1);
    double v = nearbyint((double)acc * (double)mult) + param(q->zy, col, 0);
    elem_set_f(p->y->dtype, p->y->data, idx, v);
}

static int infer_matmul_integer(eng_infer_ctx *c)
{
    const eng_tensor *b = c->in[1], *za = eng_infer_input(c, 2), *zb = eng_infer_input(c, 3);
    int64_t m, k, n;
    int rc;
    if ((rc = eng_infer_check_dtype(c, 1, DTM_Q8)) < 0) return rc;
    if (za && (rc = eng_infer_same_dtype(c, 2, 0)) < 0) return rc;
    if (zb && zb->dtype != b->dtype) return eng_infer_same_dtype(c, 3, 1);
    if ((rc = infer_matmul_shape(c, 0, 1, ENG_DT_INT32, &m, &k, &n)) < 0) return rc;
    if ((rc = check_param(c, 2, m, "one per row of A")) < 0 ||
        (rc = check_param(c, 3, n, "one per column of B")) < 0)
        return rc;
    return 0;
}

static int run_matmul_integer(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                              eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    (void)eb;
    imm p = {in[0], in[1], nd->n_in > 2 ? in[2] : NULL, nd->n_in > 3 ? in[3] : NULL, out[0]};
    imm_run(&p, store_int32, NULL);
    return 0;
}

static int infer_qlinear_matmul(eng_infer_ctx *c)
{
    int64_t m, k, n;
    int rc;
    /* a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point */
    if ((rc = eng_infer_check_dtype(c, 3, DTM_Q8)) < 0 ||
        (rc = eng_infer_same_dtype(c, 2, 0)) < 0 || (rc = eng_infer_same_dtype(c, 5, 3)) < 0 ||
        (rc = eng_infer_check_dtype(c, 7, DTM_Q8)) < 0 || (rc = check_float_param(c, 1)) < 0 ||
        (rc = check_float_param(c, 4)) < 0 || (rc = check_float_param(c, 6)) < 0)
        return rc;
    if ((rc = infer_matmul_shape(c, 0, 3, c->in[7]->dtype, &m, &k, &n)) < 0) return rc;
    if ((rc = check_param(c, 1, m, "one per row of a")) < 0 ||
        (rc = check_param(c, 2, m, "one per row of a")) < 0 ||
        (rc = check_param(c, 4, n, "one per column of b")) < 0 ||
        (rc = check_param(c, 5, n, "one per column of b")) < 0 ||
        (rc = check_param(c, 6, n, "one per column of y")) < 0 ||
        (rc = check_param(c, 7, n, "one per column of y")) < 0)
        return rc;
    return 0;
}

static int run_qlinear_matmul(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                              eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    (void)eb;
    (void)nd;
    imm p = {in[0], in[3], in[2], in[5], out[0]};
    requant q = {in[1], in[4], in[6], in[7]};
    imm_run(&p, store_requant, &q);
    return 0;
}

/* --- integer convolutions --------------------------------------------------------- */

static int parse_conv(const eng_attr_ctx *c, eng_attrs *a)
{
    return window_parse(c, &a->quant.conv, false, true, true);
}

static int check_conv(const eng_node *n, rouse_errbuf *eb)
{
    return window_check(n, eb, &n->attrs.quant.conv, false);
}

/* Conv's shape rule for x at input ix and w at input iw. */
static int infer_conv_shape(eng_infer_ctx *c, int ix, int iw, int dtype, int64_t *m_out)
{
    const eng_tensor *x = c->in[ix], *w = c->in[iw];
    eng_conv_attrs *a = &c->res->quant.conv;
    int r = x->rank, ns = r - 2, rc;
    if (r < 3 || ns > ENG_MAX_SPATIAL)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED, "input '%s' must have rank 3 to %d, got %d",
                              eng_infer_in_name(c, ix), ENG_MAX_SPATIAL + 2, r);
    if (a->n_spatial && a->n_spatial != ns)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "attributes describe %d spatial dims, input '%s' has %d",
                              a->n_spatial, eng_infer_in_name(c, ix), ns);
    if (w->rank != r)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input '%s' has rank %d, input '%s' rank %d",
                              eng_infer_in_name(c, iw), w->rank, eng_infer_in_name(c, ix), r);
    for (int i = 0; i < ns; i++) {
        int64_t k = w->shape[2 + i];
        if (k < 1 || k > OPS_MAX_DIM || (a->kernel[i] && a->kernel[i] != k))
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "input '%s' has kernel size %lld at spatial dim %d, attribute "
                                  "'kernel_shape' says %lld",
                                  eng_infer_in_name(c, iw), (long long)k, i,
                                  (long long)a->kernel[i]);
        a->kernel[i] = k;
    }
    a->n_spatial = ns;
    int64_t m = w->shape[0], want;
    if (__builtin_mul_overflow(w->shape[1], a->group, &want) || want != x->shape[1] || m % a->group)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input '%s' has %lld channels, input '%s' expects %lld per group "
                              "x %lld groups (and a multiple of the groups as output channels)",
                              eng_infer_in_name(c, ix), (long long)x->shape[1],
                              eng_infer_in_name(c, iw), (long long)w->shape[1],
                              (long long)a->group);
    int64_t y[ENG_MAX_RANK] = {x->shape[0], m};
    for (int i = 0; i < ns; i++)
        if ((rc = window_out(c, i, x->shape[2 + i], a->kernel[i], a->stride[i], a->dilation[i],
                             a->auto_pad, &a->pad_begin[i], &a->pad_end[i], &y[2 + i])) < 0)
            return rc;
    a->auto_pad = ENG_AUTOPAD_NOTSET;
    *m_out = m;
    eng_infer_set_out(c, 0, dtype, r, y);
    return 0;
}

/* Runs the integer convolution: per output element the exact sum of
 * (x - zx) * (w - zw[oc]), passed to store() with what chan() worked out
 * once for its output channel (the requantization factor, the bias), so
 * that no parameter is read per element. chan may be NULL. */
typedef struct iconv_chan {
    double mult, zero;
    int64_t bias;
} iconv_chan;

typedef void (*iconv_chan_fn)(const void *ctx, int64_t oc, iconv_chan *c);
typedef void (*iconv_store)(eng_tensor *y, int64_t idx, int64_t acc, const iconv_chan *c);

static int iconv_run(const eng_conv_attrs *a, const eng_tensor *x, const eng_tensor *zx,
                     const eng_tensor *w, const eng_tensor *zw, eng_tensor *y, iconv_chan_fn chan,
                     iconv_store store, const void *ctx)
{
    ref_window win;
    int ns = a->n_spatial;
    if (ns < 1 || x->rank != ns + 2 ||
        ref_window_init(&win, ns, a->kernel, a->stride, a->dilation, a->pad_begin, a->pad_end,
                        x->shape + 2, y->shape + 2) < 0)
        return ROUSE_EINTERNAL;
    const int64_t n_img = x->shape[0], ch = x->shape[1], m = y->shape[1];
    const int64_t cg = ch / a->group, mg = m / a->group;
    const int64_t in_sp = win.in[0] * win.in[1] * win.in[2];
    const int64_t out_sp = win.out[0] * win.out[1] * win.out[2];
    const int64_t k_sp = win.kernel[0] * win.kernel[1] * win.kernel[2];
    const int64_t xz = (int64_t)param(zx, 0, 0);
    const int xdt = x->dtype, wdt = w->dtype;
    for (int64_t oc = 0; oc < m; oc++) {
        const int64_t g = oc / mg, wz = (int64_t)param(zw, oc, 0);
        iconv_chan cq = {1, 0, 0};
        if (chan) chan(ctx, oc, &cq);
        for (int64_t n = 0; n < n_img; n++)
            for (int64_t o = 0; o < out_sp; o++) {
                int64_t op[3] = {o / (win.out[1] * win.out[2]), (o / win.out[2]) % win.out[1],
                                 o % win.out[2]};
                int64_t lo[3], hi[3], base[3];
                for (int d = 0; d < 3; d++) {
                    ref_window_taps(&win, d, op[d], &lo[d], &hi[d]);
                    base[d] = op[d] * win.stride[d] - win.pad_begin[d];
                }
                int64_t acc = 0;
                for (int64_t ci = 0; ci < cg; ci++) {
                    int64_t xb = (n * ch + g * cg + ci) * in_sp, wb = (oc * cg + ci) * k_sp;
                    for (int64_t k0 = lo[0]; k0 < hi[0]; k0++) {
                        int64_t i0 = base[0] + k0 * win.dilation[0];
                        for (int64_t k1 = lo[1]; k1 < hi[1]; k1++) {
                            int64_t i1 = base[1] + k1 * win.dilation[1];
                            int64_t xr = xb + (i0 * win.in[1] + i1) * win.in[2] + base[2];
                            int64_t wr = wb + (k0 * win.kernel[1] + k1) * win.kernel[2];
                            for (int64_t k2 = lo[2]; k2 < hi[2]; k2++) {
                                int64_t xv = q8(xdt, x->data, xr + k2 * win.dilation[2]);
                                int64_t wv = q8(wdt, w->data, wr + k2);
                                acc += (xv - xz) * (wv - wz);
                            }
                        }
                    }
                }
                store(y, (n * m + oc) * out_sp + o, acc, &cq);
            }
    }
    return 0;
}

/* ConvInteger and QLinearConv: each output element sums the products of one
 * output channel's weights (w at input iw). */
static int64_t macs_iconv(const eng_tensor *w, const eng_tensor *y)
{
    int64_t per = w->shape[0] ? eng_tensor_numel(w) / w->shape[0] : 0;
    return eng_macs_mul(eng_tensor_numel(y), per);
}

static int infer_conv_integer(eng_infer_ctx *c)
{
    const eng_tensor *zx = eng_infer_input(c, 2), *zw = eng_infer_input(c, 3);
    int64_t m;
    int rc;
    if ((rc = eng_infer_check_dtype(c, 1, DTM_Q8)) < 0) return rc;
    if (zx && (rc = eng_infer_same_dtype(c, 2, 0)) < 0) return rc;
    if (zw && (rc = eng_infer_same_dtype(c, 3, 1)) < 0) return rc;
    if ((rc = infer_conv_shape(c, 0, 1, ENG_DT_INT32, &m)) < 0) return rc;
    if ((rc = check_param(c, 2, 0, "")) < 0 ||
        (rc = check_param(c, 3, m, "one per output channel")) < 0)
        return rc;
    return 0;
}

static void store_conv_int32(eng_tensor *y, int64_t idx, int64_t acc, const iconv_chan *c)
{
    (void)c;
    ((int32_t *)y->data)[idx] = (int32_t)(uint32_t)(uint64_t)acc;
}

static int run_conv_integer(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                            eng_tensor *const *out, rouse_errbuf *eb)
{
    int rc = iconv_run(&a->quant.conv, in[0], nd->n_in > 2 ? in[2] : NULL, in[1],
                       nd->n_in > 3 ? in[3] : NULL, out[0], NULL, store_conv_int32, NULL);
    return rc < 0 ? eng_run_fail(nd, eb, rc, "window was not resolved") : 0;
}

/* x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B */
static int infer_qlinear_conv(eng_infer_ctx *c)
{
    const eng_tensor *b = eng_infer_input(c, 8);
    int64_t m;
    int rc;
    if ((rc = eng_infer_check_dtype(c, 3, DTM_Q8)) < 0 ||
        (rc = eng_infer_same_dtype(c, 2, 0)) < 0 || (rc = eng_infer_same_dtype(c, 5, 3)) < 0 ||
        (rc = eng_infer_check_dtype(c, 7, DTM_Q8)) < 0 || (rc = check_float_param(c, 1)) < 0 ||
        (rc = check_float_param(c, 4)) < 0 || (rc = check_float_param(c, 6)) < 0)
        return rc;
    if ((rc = infer_conv_shape(c, 0, 3, c->in[7]->dtype, &m)) < 0) return rc;
    if ((rc = check_param(c, 1, 0, "")) < 0 || (rc = check_param(c, 2, 0, "")) < 0 ||
        (rc = check_param(c, 4, m, "one per output channel")) < 0 ||
        (rc = check_param(c, 5, m, "one per output channel")) < 0 ||
        (rc = check_param(c, 6, 0, "")) < 0 || (rc = check_param(c, 7, 0, "")) < 0)
        return rc;
    if (b && (b->dtype != ENG_DT_INT32 || b->rank != 1 || b->shape[0] != m))
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'B' must be int32 of shape [%lld]",
                              (long long)m);
    return 0;
}

typedef struct conv_requant {
    const eng_tensor *sx, *sw, *sy, *zy, *b;
} conv_requant;

/* The factor and zero point of output channel oc, read once per channel. */
static void chan_conv_requant(const void *ctx, int64_t oc, iconv_chan *c)
{
    const conv_requant *q = ctx;
    c->bias = q->b ? ((const int32_t *)q->b->data)[oc] : 0;
    c->mult = (double)((float)param(q->sx, 0, 1) * (float)param(q->sw, oc, 1) /
                       (float)param(q->sy, 0, 1));
    c->zero = param(q->zy, 0, 0);
}

static void store_conv_requant(eng_tensor *y, int64_t idx, int64_t acc, const iconv_chan *c)
{
    elem_set_f(y->dtype, y->data, idx, nearbyint((double)(acc + c->bias) * c->mult) + c->zero);
}

static int run_qlinear_conv(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                            eng_tensor *const *out, rouse_errbuf *eb)
{
    conv_requant q = {in[1], in[4], in[6], in[7], nd->n_in > 8 ? in[8] : NULL};
    int rc = iconv_run(&a->quant.conv, in[0], in[2], in[3], in[5], out[0], chan_conv_requant,
                       store_conv_requant, &q);
    return rc < 0 ? eng_run_fail(nd, eb, rc, "window was not resolved") : 0;
}

static int64_t macs_conv_integer(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                                 const eng_tensor *out)
{
    (void)n;
    (void)a;
    return macs_iconv(in[1], &out[0]);
}

static int64_t macs_qlinear_conv(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                                 const eng_tensor *out)
{
    (void)n;
    (void)a;
    return macs_iconv(in[3], &out[0]);
}

/* MatMulInteger and QLinearMatMul: each output element sums K products. */
static int64_t macs_imatmul(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                            const eng_tensor *out)
{
    (void)n;
    (void)a;
    return eng_macs_mul(eng_tensor_numel(&out[0]), in[0]->shape[in[0]->rank - 1]);
}

/* --- descriptors ---------------------------------------------------------------------- */

static const eng_op_desc op_quantize = {
    .op = ENG_OP_QUANTIZE_LINEAR,
    .name = "QuantizeLinear",
    .since = 10,
    .min_in = 2,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"x", "y_scale", "y_zero_point"},
    .dtypes = ENG_DTM(FLOAT) | ENG_DTM(INT32),
    .parse = parse_qaxis,
    .check = check_qaxis,
    .infer = infer_quantize,
    .run = run_quantize,
};

static const eng_op_desc op_dequantize = {
    .op = ENG_OP_DEQUANTIZE_LINEAR,
    .name = "DequantizeLinear",
    .since = 10,
    .min_in = 2,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"x", "x_scale", "x_zero_point"},
    .dtypes = DTM_Q8 | ENG_DTM(INT32),
    .parse = parse_qaxis,
    .check = check_qaxis,
    .infer = infer_dequantize,
    .run = run_dequantize,
};

static const eng_op_desc op_dynamic_quantize = {
    .op = ENG_OP_DYNAMIC_QUANTIZE_LINEAR,
    .name = "DynamicQuantizeLinear",
    .since = 11,
    .min_in = 1,
    .max_in = 1,
    .max_out = 3,
    .in_names = {"x"},
    .dtypes = ENG_DTM(FLOAT),
    .infer = infer_dynamic,
    .run = run_dynamic,
};

static const eng_op_desc op_qlinear_matmul = {
    .op = ENG_OP_QLINEAR_MATMUL,
    .name = "QLinearMatMul",
    .since = 10,
    .min_in = 8,
    .max_in = 8,
    .max_out = 1,
    .in_names = {"a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "y_scale",
                 "y_zero_point"},
    .dtypes = DTM_Q8,
    .infer = infer_qlinear_matmul,
    .run = run_qlinear_matmul,
    .macs = macs_imatmul,
};

static const eng_op_desc op_matmul_integer = {
    .op = ENG_OP_MATMUL_INTEGER,
    .name = "MatMulInteger",
    .since = 10,
    .min_in = 2,
    .max_in = 4,
    .max_out = 1,
    .in_names = {"A", "B", "a_zero_point", "b_zero_point"},
    .dtypes = DTM_Q8,
    .infer = infer_matmul_integer,
    .run = run_matmul_integer,
    .macs = macs_imatmul,
};

static const eng_op_desc op_qlinear_conv = {
    .op = ENG_OP_QLINEAR_CONV,
    .name = "QLinearConv",
    .since = 10,
    .min_in = 8,
    .max_in = 9,
    .max_out = 1,
    .in_names = {"x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point", "y_scale",
                 "y_zero_point", "B"},
    .dtypes = DTM_Q8,
    .parse = parse_conv,
    .check = check_conv,
    .infer = infer_qlinear_conv,
    .run = run_qlinear_conv,
    .macs = macs_qlinear_conv,
};

static const eng_op_desc op_conv_integer = {
    .op = ENG_OP_CONV_INTEGER,
    .name = "ConvInteger",
    .since = 10,
    .min_in = 2,
    .max_in = 4,
    .max_out = 1,
    .in_names = {"x", "w", "x_zero_point", "w_zero_point"},
    .dtypes = DTM_Q8,
    .parse = parse_conv,
    .check = check_conv,
    .infer = infer_conv_integer,
    .run = run_conv_integer,
    .macs = macs_conv_integer,
};

const eng_op_desc *const eng_ops_quant[] = {
    &op_quantize,       &op_dequantize,   &op_dynamic_quantize, &op_qlinear_matmul,
    &op_matmul_integer, &op_qlinear_conv, &op_conv_integer,     NULL,
};
