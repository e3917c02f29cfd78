/*
 * oneDNN int8 kernel builders: QLinearConv and ConvInteger as int8
 * convolutions, QLinearMatMul and MatMulInteger as int8 matrix products
 * (u8 or s8 activations, s8 weights; VNNI where the CPU has it), and
 * per-tensor QuantizeLinear / DequantizeLinear as scaling reorders.
 *
 * A builder takes a node only where the int8 primitive computes what the
 * reference kernel in ops/quant.c computes, up to the rounding of the
 * requantization product (oneDNN multiplies the int32 sum, bias added, by
 * the scale in float; the reference in double): constant weights, their
 * zero point 0 (symmetric, as the quantizers write them), per-tensor
 * activation scales and zero points, per-tensor or per-output-channel
 * weight scales. Everything else runs on the reference kernels, which the
 * tests compare these kernels against.
 *
 * oneDNN 2.x computes dst = saturate(round(scale * (sum((x - zx) * w) +
 * bias)) + zy), the zero points given at run time as one-element s32
 * memories made here.
 */
#include "engine/exec_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_const(const eng_plan *p, int v)
{
    return v >= 0 && p->g->values[v].const_data != NULL;
}

static int64_t const_numel(const eng_plan *p, int v)
{
    const eng_value *c = &p->g->values[v];
    return c->rank < 0 ? -1 : eng_shape_numel(c->rank, c->shape);
}

/* Element k of constant v as a double (per-tensor constants: k = 0). The
 * data may sit misaligned in the model file. */
static double const_at(const eng_plan *p, int v, int64_t k)
{
    const eng_value *c = &p->g->values[v];
    const char *d = c->const_data;
    switch (c->dtype) {
    case ENG_DT_FLOAT: {
        float f;
        memcpy(&f, d + k * 4, 4);
        return f;
    }
    case ENG_DT_INT8:
        return (double)(int8_t)d[k];
    case ENG_DT_UINT8:
        return (double)(uint8_t)d[k];
    case ENG_DT_INT32: {
        int32_t i;
        memcpy(&i, d + k * 4, 4);
        return i;
    }
    default:
        return NAN;
    }
}

/* An optional constant parameter: absent (input omitted) counts as `dflt`.
 * False when present but not a constant, or of another count than 1 (or
 * `per` when per > 0). */
static bool param_fits(const eng_plan *p, const eng_node *n, int k, int64_t per)
{
    if (k >= n->n_in || n->in[k] < 0) return true;
    if (!is_const(p, n->in[k])) return false;
    int64_t c = const_numel(p, n->in[k]);
    return c == 1 || (per > 0 && c == per);
}

static double param_at(const eng_plan *p, const eng_node *n, int k, int64_t i, double dflt)
{
    if (k >= n->n_in || n->in[k] < 0) return dflt;
    return const_at(p, n->in[k], const_numel(p, n->in[k]) == 1 ? 0 : i);
}

/* Every value of an optional zero point is 0. */
static bool zero_point_zero(const eng_plan *p, const eng_node *n, int k)
{
    if (k >= n->n_in || n->in[k] < 0) return true;
    if (!is_const(p, n->in[k])) return false;
    int64_t c = const_numel(p, n->in[k]);
    for (int64_t i = 0; i < c; i++)
        if (const_at(p, n->in[k], i) != 0) return false;
    return true;
}

static dnnl_data_type_t dnnl_dt(int dtype)
{
    switch (dtype) {
    case ENG_DT_UINT8:
        return dnnl_u8;
    case ENG_DT_INT8:
        return dnnl_s8;
    case ENG_DT_INT32:
        return dnnl_s32;
    default:
        return dnnl_f32;
    }
}

/* A one-element s32 memory holding v, owned by the plan (a run-time zero
 * point argument). */
static int s32_scalar_mem(eng_plan *p, int32_t v, dnnl_memory_t *out, rouse_errbuf *eb)
{
    int32_t *buf = plan_weight_alloc(p, sizeof(int32_t));
    if (!buf) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    *buf = v;
    dnnl_memory_desc_t md;
    dnnl_dims_t one = {1};
    dnnl_memory_desc_init_by_tag(&md, 1, one, dnnl_s32, dnnl_a);
    if (plan_fixed_mem(p, &md, buf, out) < 0)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "oneDNN: cannot create a memory");
    return 0;
}

/* The quantization of one int8 product, read from the node's inputs. */
typedef struct qspec {
    int x, w;           /* input indices of the activation and the weights */
    int zx, zw;         /* zero points (input index, or -1 when the op has none) */
    int sx, sw, sy, zy; /* scales and output zero point, -1 for ConvInteger/MatMulInteger */
    int bias;           /* int32 bias, or -1 */
    int64_t n_oc;       /* output channels (columns) */
} qspec;

/* The primitive attributes of a product: scratchpad, per-channel output
 * scales and run-time zero points. Fills the zero-point arguments. */
static int qattr(eng_plan *p, const eng_node *n, const qspec *q, int oc_dim,
                 dnnl_primitive_attr_t *out, exec_dnnl_arg *zargs, int *n_z, rouse_errbuf *eb)
{
    dnnl_primitive_attr_t attr;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success)
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    *n_z = 0;
    if (q->sy >= 0) {
        int64_t cnt = q->n_oc;
        float *sc = malloc(sizeof(float) * (size_t)cnt);
        if (!sc) {
            dnnl_primitive_attr_destroy(attr);
            return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        }
        bool common = const_numel(p, n->in[q->sw]) == 1;
        float sx = (float)param_at(p, n, q->sx, 0, 1), sy = (float)param_at(p, n, q->sy, 0, 1);
        for (int64_t i = 0; i < cnt; i++)
            sc[i] = sx * (float)param_at(p, n, q->sw, i, 1) / sy;
        dnnl_status_t st = dnnl_primitive_attr_set_output_scales(attr, common ? 1 : cnt,
                                                                 common ? 0 : 1 << oc_dim, sc);
        free(sc);
        if (st != dnnl_success) {
            dnnl_primitive_attr_destroy(attr);
            return 0;
        }
    }
    const int zx = (int)param_at(p, n, q->zx, 0, 0);
    const int zy = q->zy >= 0 ? (int)param_at(p, n, q->zy, 0, 0) : 0;
    const int rt = DNNL_RUNTIME_S32_VAL;
    struct {
        int arg, value;
    } zp[2] = {{DNNL_ARG_SRC, zx}, {DNNL_ARG_DST, zy}};
    for (int i = 0; i < 2; i++) {
        if (!zp[i].value) continue;
        dnnl_memory_t mem;
        int rc;
        if (dnnl_primitive_attr_set_zero_points(attr, zp[i].arg, 1, 0, &rt) != dnnl_success) {
            dnnl_primitive_attr_destroy(attr);
            return 0;
        }
        if ((rc = s32_scalar_mem(p, zp[i].value, &mem, eb)) < 0) {
            dnnl_primitive_attr_destroy(attr);
            return rc;
        }
        zargs[(*n_z)++] = (exec_dnnl_arg){DNNL_ARG_ATTR_ZERO_POINTS | zp[i].arg, ARG_FIXED, mem};
    }
    *out = attr;
    return 1;
}

/* Checks shared by both products: s8 weights with zero point 0 (constant,
 * or for a matrix product computed ones), per-tensor activation
 * parameters, per-tensor or per-channel weight scales, a constant int32
 * bias. */
static bool qspec_fits(const eng_plan *p, const eng_node *n, const qspec *q, const int *in,
                       bool runtime_weights)
{
    if (in[q->x] < 0 || n->in[q->w] < 0) return false;
    if (runtime_weights ? in[q->w] < 0 || p->pvs[in[q->w]].t.dtype != ENG_DT_INT8
                        : !is_const(p, n->in[q->w]) ||
                              p->g->values[n->in[q->w]].dtype != ENG_DT_INT8)
        return false;
    int xt = p->pvs[in[q->x]].t.dtype;
    if (xt != ENG_DT_UINT8 && xt != ENG_DT_INT8) return false;
    if (!param_fits(p, n, q->zx, 0) || !zero_point_zero(p, n, q->zw)) return false;
    if (q->sy >= 0) {
        if (!param_fits(p, n, q->sx, 0) || !param_fits(p, n, q->sw, q->n_oc) ||
            !param_fits(p, n, q->sy, 0) || !param_fits(p, n, q->zy, 0))
            return false;
        if (n->in[q->sx] < 0 || n->in[q->sw] < 0 || n->in[q->sy] < 0) return false;
        double sy = param_at(p, n, q->sy, 0, 1);
        if (!(sy > 0) || !(param_at(p, n, q->sx, 0, 1) > 0)) return false;
    }
    if (q->bias >= 0 && q->bias < n->n_in && n->in[q->bias] >= 0) {
        const eng_value *b = &p->g->values[n->in[q->bias]];
        if (!b->const_data || b->dtype != ENG_DT_INT32 || const_numel(p, n->in[q->bias]) != q->n_oc)
            return false;
    }
    return true;
}

/* Appends the step: src, weights, bias, dst and the zero points. Weights
 * computed at run time come with the zero points in zargs (wei NULL). */
static int qstep(eng_plan *p, const eng_node *n, const eng_attrs *ra, dnnl_primitive_desc_t pd,
                 int src_pv, dnnl_memory_t wei, dnnl_memory_t bias, const exec_dnnl_arg *zargs,
                 int n_z, const eng_tensor *out, int *out_pv, rouse_errbuf *eb)
{
    const dnnl_memory_desc_t *src_md = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    int src = plan_pv_as(p, src_pv, src_md, eb);
    if (src < 0) {
        dnnl_primitive_desc_destroy(pd);
        return src;
    }
    int dst, rc;
    if ((rc = exec_dnnl_new_pv(p, out, dst_md, &dst)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rouse_err_set(eb, rc, "out of memory");
    }
    exec_dnnl_arg args[7];
    int na = 0;
    args[na++] = (exec_dnnl_arg){DNNL_ARG_SRC, src, NULL};
    if (wei) args[na++] = (exec_dnnl_arg){DNNL_ARG_WEIGHTS, ARG_FIXED, wei};
    if (bias) args[na++] = (exec_dnnl_arg){DNNL_ARG_BIAS, ARG_FIXED, bias};
    for (int i = 0; i < n_z; i++)
        args[na++] = zargs[i];
    args[na++] = (exec_dnnl_arg){DNNL_ARG_DST, dst, NULL};
    if ((rc = exec_dnnl_add_step(p, n, ra, pd, args, na, dst, eb)) < 0) return rc;
    plan_bind_value(p, n->out[0], dst);
    out_pv[0] = dst;
    return 1;
}

static int bias_mem(eng_plan *p, const eng_node *n, const qspec *q, dnnl_memory_t *out,
                    rouse_errbuf *eb)
{
    *out = NULL;
    if (q->bias < 0 || q->bias >= n->n_in || n->in[q->bias] < 0) return 0;
    dnnl_memory_desc_t md;
    dnnl_dims_t d = {q->n_oc};
    dnnl_memory_desc_init_by_tag(&md, 1, d, dnnl_s32, dnnl_a);
    return exec_dnnl_const_mem(p, n, n->in[q->bias], &md, p->g->values[n->in[q->bias]].const_data,
                               &md, out, eb);
}

/* --- QLinearConv, ConvInteger -------------------------------------------------------- */

static int build_qconv(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                       const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    const bool linear = n->op == ENG_OP_QLINEAR_CONV;
    const eng_value *w = &p->g->values[n->in[linear ? 3 : 1]];
    qspec q = linear ? (qspec){0, 3, 2, 5, 1, 4, 6, 7, 8, w->shape[0]}
                     : (qspec){0, 1, 2, 3, -1, -1, -1, -1, -1, w->shape[0]};
    if (!qspec_fits(p, n, &q, in, false)) return 0;
    const eng_conv_attrs *a = &ra->quant.conv;
    const exec_pv *x = &p->pvs[in[0]];
    int rank = x->t.rank;
    if (rank < 3 || rank > 5 || a->n_spatial != rank - 2 || w->rank != rank) return 0;
    if (n->n_post) return 0;

    dnnl_dims_t src_d, wei_d, dst_d, strides, dil, pl, pr, ws;
    int wnd = exec_dnnl_conv_dims(a, rank, x->t.shape, outs[0].shape, w->shape, src_d, wei_d, dst_d,
                                  strides, dil, pl, pr);
    int64_t s = 1;
    for (int i = wnd - 1; i >= 0; i--) {
        ws[i] = s;
        s *= wei_d[i];
    }
    dnnl_memory_desc_t src_any, wei_any, dst_any, bias_md, wei_plain;
    dnnl_memory_desc_init_by_tag(&src_any, rank, src_d, dnnl_dt(x->t.dtype), dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&wei_any, wnd, wei_d, dnnl_s8, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dst_any, rank, dst_d, dnnl_dt(outs[0].dtype),
                                 dnnl_format_tag_any);
    dnnl_memory_desc_init_by_strides(&wei_plain, wnd, wei_d, dnnl_s8, ws);
    dnnl_dims_t bd = {q.n_oc};
    dnnl_memory_desc_init_by_tag(&bias_md, 1, bd, dnnl_s32, dnnl_a);
    bool has_bias = q.bias >= 0 && q.bias < n->n_in && n->in[q.bias] >= 0;

    dnnl_primitive_attr_t attr;
    exec_dnnl_arg zargs[2];
    int n_z, rc = qattr(p, n, &q, 1, &attr, zargs, &n_z, eb);
    if (rc <= 0) return rc;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_dilated_convolution_forward_desc_init(
        &cd, dnnl_forward_inference, dnnl_convolution_direct, &src_any, &wei_any,
        has_bias ? &bias_md : NULL, &dst_any, strides, dil, pl, pr);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &cd, attr, p->ctx->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return 0; /* this combination has no int8 kernel: reference */
    const dnnl_memory_desc_t *wei_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t wei, bias;
    if ((rc = exec_dnnl_const_mem(p, n, n->in[q.w], &wei_plain, w->const_data, wei_md, &wei, eb)) <
            0 ||
        (rc = bias_mem(p, n, &q, &bias, eb)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rc;
    }
    return qstep(p, n, ra, pd, in[0], wei, bias, zargs, n_z, &outs[0], out_pv, eb);
}

/* --- QLinearMatMul, MatMulInteger ------------------------------------------------------ */

/* a [..., M, K] (any batch) times a constant 2-D b [K, N], or times a
 * computed s8 b [..., K, N] of a's rank (attention: scores and context),
 * its batch dims equal to a's or 1. */
static int build_qmatmul(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                         const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    const bool linear = n->op == ENG_OP_QLINEAR_MATMUL;
    const int iw = linear ? 3 : 1;
    if (n->in[iw] < 0 || in[iw] < 0) return 0;
    const bool runtime = !is_const(p, n->in[iw]);
    const eng_tensor *wt = runtime ? &p->pvs[in[iw]].t : NULL;
    const eng_value *w = &p->g->values[n->in[iw]];
    const int w_rank = runtime ? wt->rank : w->rank;
    const int64_t *w_shape = runtime ? wt->shape : w->shape;
    if (w_rank < 2) return 0;
    int64_t n_cols = w_shape[w_rank - 1];
    qspec q = linear ? (qspec){0, 3, 2, 5, 1, 4, 6, 7, -1, n_cols}
                     : (qspec){0, 1, 2, 3, -1, -1, -1, -1, -1, n_cols};
    if (!qspec_fits(p, n, &q, in, runtime)) return 0;
    const exec_pv *x = &p->pvs[in[0]];
    int rank = x->t.rank;
    if (rank < 2 || rank > 5 || outs[0].rank != rank || n->n_post) return 0;
    if (runtime ? w_rank != rank : w_rank != 2) return 0;
    /* Per-row a parameters and per-column y parameters stay on the
     * reference kernel (param_fits allowed only single values for them). */
    dnnl_dims_t wei_d, ws;
    for (int i = 0; i < rank; i++)
        wei_d[i] = 1;
    for (int i = 0; i < w_rank; i++)
        wei_d[rank - w_rank + i] = w_shape[i];
    for (int i = 0; i < rank - 2; i++)
        if (wei_d[i] != 1 && wei_d[i] != x->t.shape[i]) return 0;
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        ws[i] = s;
        s *= wei_d[i];
    }
    dnnl_memory_desc_t src_md, wei_any, wei_plain, dst_md;
    if (plan_md_plain(x->t.dtype, rank, x->t.shape, &src_md) < 0 ||
        plan_md_plain(outs[0].dtype, rank, outs[0].shape, &dst_md) < 0)
        return 0;
    dnnl_memory_desc_init_by_tag(&wei_any, rank, wei_d, dnnl_s8, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_strides(&wei_plain, rank, wei_d, dnnl_s8, ws);
    dnnl_primitive_attr_t attr;
    exec_dnnl_arg zargs[3];
    int n_z, rc = qattr(p, n, &q, rank - 1, &attr, zargs, &n_z, eb);
    if (rc <= 0) return rc;
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    /* Computed weights arrive plain: the primitive takes them as they are. */
    dnnl_status_t st =
        dnnl_matmul_desc_init(&md, &src_md, runtime ? &wei_plain : &wei_any, NULL, &dst_md);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &md, attr, p->ctx->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return 0;
    if (runtime) {
        int wpv = plan_pv_as(p, in[iw], &wei_plain, eb);
        if (wpv < 0) {
            dnnl_primitive_desc_destroy(pd);
            return wpv;
        }
        zargs[n_z++] = (exec_dnnl_arg){DNNL_ARG_WEIGHTS, wpv, NULL};
        return qstep(p, n, ra, pd, in[0], NULL, NULL, zargs, n_z, &outs[0], out_pv, eb);
    }
    const dnnl_memory_desc_t *wei_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t wei;
    if ((rc = exec_dnnl_const_mem(p, n, n->in[q.w], &wei_plain, w->const_data, wei_md, &wei, eb)) <
        0) {
        dnnl_primitive_desc_destroy(pd);
        return rc;
    }
    return qstep(p, n, ra, pd, in[0], wei, NULL, zargs, n_z, &outs[0], out_pv, eb);
}

/* --- QuantizeLinear, DequantizeLinear as reorders ------------------------------------------ */

/* Per tensor, constant scale and zero point: a oneDNN reorder that converts
 * the type with scale and zero point, keeping the input's layout (Q:
 * saturate(round(x * (1 / scale)) + zp); DQ: scale * (x - zp)). Multiplying
 * by the reciprocal may round a value lying on a .5 boundary of x / scale
 * the other way: one step, as between the int8 products and the reference. */
static int build_qdq(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                     const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    const bool quant = n->op == ENG_OP_QUANTIZE_LINEAR;
    if (n->n_in < 2 || !param_fits(p, n, 1, 0) || !param_fits(p, n, 2, 0) || n->in[1] < 0) return 0;
    const exec_pv *x = &p->pvs[in[0]];
    int xt = x->t.dtype, yt = outs[0].dtype;
    if (quant ? (xt != ENG_DT_FLOAT || (yt != ENG_DT_UINT8 && yt != ENG_DT_INT8))
              : ((xt != ENG_DT_UINT8 && xt != ENG_DT_INT8) || yt != ENG_DT_FLOAT))
        return 0;
    if (x->t.rank < 1 || x->t.rank > 6) return 0;
    double scale = param_at(p, n, 1, 0, 1);
    if (!(scale > 0) || !isfinite(scale)) return 0;
    float mult = quant ? (float)(1.0 / scale) : (float)scale;
    int zp = (int)param_at(p, n, 2, 0, 0);
    dnnl_memory_desc_t src_md, dst_md;
    if (x->has_md) {
        src_md = x->md;
    } else if (plan_md_plain(xt, x->t.rank, x->t.shape, &src_md) < 0) {
        return 0;
    }
    dst_md = src_md;
    dst_md.data_type = dnnl_dt(yt);
    dnnl_primitive_attr_t attr;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success)
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    exec_dnnl_arg zarg;
    int n_z = 0, rc;
    const int rt = DNNL_RUNTIME_S32_VAL;
    if (dnnl_primitive_attr_set_output_scales(attr, 1, 0, &mult) != dnnl_success ||
        (zp && dnnl_primitive_attr_set_zero_points(attr, quant ? DNNL_ARG_DST : DNNL_ARG_SRC, 1, 0,
                                                   &rt) != dnnl_success)) {
        dnnl_primitive_attr_destroy(attr);
        return 0;
    }
    if (zp) {
        dnnl_memory_t mem;
        if ((rc = s32_scalar_mem(p, zp, &mem, eb)) < 0) {
            dnnl_primitive_attr_destroy(attr);
            return rc;
        }
        int arg = quant ? DNNL_ARG_DST : DNNL_ARG_SRC;
        zarg = (exec_dnnl_arg){DNNL_ARG_ATTR_ZERO_POINTS | arg, ARG_FIXED, mem};
        n_z = 1;
    }
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, &src_md, p->ctx->engine, &dst_md,
                                                          p->ctx->engine, attr);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return 0;
    int src = plan_pv_as(p, in[0], &src_md, eb);
    if (src < 0) {
        dnnl_primitive_desc_destroy(pd);
        return src;
    }
    int dst;
    if ((rc = exec_dnnl_new_pv(p, &outs[0], &dst_md, &dst)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rouse_err_set(eb, rc, "out of memory");
    }
    exec_dnnl_arg args[3];
    int na = 0;
    args[na++] = (exec_dnnl_arg){DNNL_ARG_FROM, src, NULL};
    if (n_z) args[na++] = zarg;
    args[na++] = (exec_dnnl_arg){DNNL_ARG_TO, dst, NULL};
    if ((rc = exec_dnnl_add_step(p, n, ra, pd, args, na, dst, eb)) < 0) return rc;
    plan_bind_value(p, n->out[0], dst);
    out_pv[0] = dst;
    return 1;
}

int exec_dnnl_build_quant(eng_plan *p, const eng_node *n, const eng_attrs *resolved, const int *in,
                          const eng_tensor *out_shapes, int *out_pv, rouse_errbuf *eb)
{
    switch (n->op) {
    case ENG_OP_QLINEAR_CONV:
    case ENG_OP_CONV_INTEGER:
        return build_qconv(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_QLINEAR_MATMUL:
    case ENG_OP_MATMUL_INTEGER:
        return build_qmatmul(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_QUANTIZE_LINEAR:
    case ENG_OP_DEQUANTIZE_LINEAR:
        return build_qdq(p, n, resolved, in, out_shapes, out_pv, eb);
    default:
        return 0;
    }
}
