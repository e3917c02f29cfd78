/*
 * The engine's graph written back as an ONNX model; see onnx_write.h.
 *
 * QLinearConv nodes are written in the QDQ form other runtimes fuse:
 * DequantizeLinear of the u8 input, of the s8 weights (per output channel,
 * axis 0) and of the int32 bias (scale x_scale * w_scale, zero point 0),
 * a float Conv, and QuantizeLinear to the output's parameters. Activations
 * fused as post-ops become their own nodes again. Constants the written
 * nodes read become initializers (raw data). Ops without a writer here are
 * refused, naming the node.
 */
#include "engine/onnx/onnx_write.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct wctx {
    const eng_graph *g;
    rouse_buf nodes, inits;
    bool *written; /* per value: initializer written */
    int n_extra;   /* names made for intermediate values */
    int opset;
    int rc;
    rouse_errbuf *eb;
} wctx;

static void put_varint(wctx *w, rouse_buf *b, uint64_t v)
{
    do {
        unsigned char c = v & 0x7f;
        v >>= 7;
        if (v) c |= 0x80;
        if (rouse_buf_append_byte(b, c) < 0) w->rc = ROUSE_ENOMEM;
    } while (v);
}

static void put_tag(wctx *w, rouse_buf *b, int field, int wire)
{
    put_varint(w, b, ((uint64_t)field << 3) | (uint64_t)wire);
}

static void put_bytes(wctx *w, rouse_buf *b, int field, const void *d, size_t len)
{
    put_tag(w, b, field, 2);
    put_varint(w, b, len);
    if (len && rouse_buf_append(b, d, len) < 0) w->rc = ROUSE_ENOMEM;
}

static void put_str(wctx *w, rouse_buf *b, int field, const char *s)
{
    put_bytes(w, b, field, s, strlen(s));
}

static void put_int(wctx *w, rouse_buf *b, int field, int64_t v)
{
    put_tag(w, b, field, 0);
    put_varint(w, b, (uint64_t)v);
}

static void put_msg(wctx *w, rouse_buf *b, int field, rouse_buf *sub)
{
    put_bytes(w, b, field, sub->data, sub->len);
    rouse_buf_fini(sub);
}

/* --- attributes (AttributeProto) --------------------------------------------------------- */

static void attr_int(wctx *w, rouse_buf *node, const char *name, int64_t v)
{
    rouse_buf a;
    rouse_buf_init(&a);
    put_str(w, &a, 1, name);
    put_int(w, &a, 3, v);
    put_int(w, &a, 20, 2);
    put_msg(w, node, 5, &a);
}

static void attr_float(wctx *w, rouse_buf *node, const char *name, float v)
{
    rouse_buf a;
    rouse_buf_init(&a);
    put_str(w, &a, 1, name);
    put_tag(w, &a, 2, 5);
    if (rouse_buf_append(&a, &v, 4) < 0) w->rc = ROUSE_ENOMEM;
    put_int(w, &a, 20, 1);
    put_msg(w, node, 5, &a);
}

static void attr_ints(wctx *w, rouse_buf *node, const char *name, int n, const int64_t *v)
{
    rouse_buf a;
    rouse_buf_init(&a);
    put_str(w, &a, 1, name);
    for (int i = 0; i < n; i++)
        put_int(w, &a, 8, v[i]);
    put_int(w, &a, 20, 7);
    put_msg(w, node, 5, &a);
}

static void attr_str(wctx *w, rouse_buf *node, const char *name, const char *s)
{
    rouse_buf a;
    rouse_buf_init(&a);
    put_str(w, &a, 1, name);
    put_str(w, &a, 4, s);
    put_int(w, &a, 20, 3);
    put_msg(w, node, 5, &a);
}

/* --- initializers and names ---------------------------------------------------------------- */

static void tensor_proto(wctx *w, rouse_buf *t, const char *name, int dtype, int rank,
                         const int64_t *shape, const void *data, size_t bytes)
{
    for (int i = 0; i < rank; i++)
        put_int(w, t, 1, shape[i]);
    put_int(w, t, 2, dtype);
    put_str(w, t, 8, name);
    put_bytes(w, t, 9, data, bytes);
}

static void add_init(wctx *w, const char *name, int dtype, int rank, const int64_t *shape,
                     const void *data, size_t bytes)
{
    rouse_buf t;
    rouse_buf_init(&t);
    tensor_proto(w, &t, name, dtype, rank, shape, data, bytes);
    put_msg(w, &w->inits, 5, &t);
}

/* The name of value v; a constant is written as an initializer once. */
static const char *vname(wctx *w, int v)
{
    const eng_value *x = &w->g->values[v];
    if (x->const_data && !w->written[v]) {
        w->written[v] = true;
        int64_t n = eng_shape_numel(x->rank, x->shape);
        add_init(w, x->name, x->dtype, x->rank, x->shape, x->const_data,
                 (size_t)n * eng_dtype_size(x->dtype));
    }
    return x->name;
}

/* A new unique name for an intermediate value or a made constant. */
static void new_name(wctx *w, const char *base, const char *what, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s_%d", base, what, w->n_extra++);
}

static void scalar_init(wctx *w, const char *name, float v)
{
    add_init(w, name, ENG_DT_FLOAT, 0, NULL, &v, 4);
}

/* --- nodes -------------------------------------------------------------------------------- */

static void begin_node(wctx *w, rouse_buf *n, const char *op, const char *name, int n_in,
                       const char *const *in, int n_out, const char *const *out)
{
    rouse_buf_init(n);
    for (int i = 0; i < n_in; i++)
        put_str(w, n, 1, in[i] ? in[i] : "");
    for (int i = 0; i < n_out; i++)
        put_str(w, n, 2, out[i]);
    put_str(w, n, 3, name);
    put_str(w, n, 4, op);
}

static void end_node(wctx *w, rouse_buf *n)
{
    put_msg(w, &w->nodes, 1, n);
}

static void simple(wctx *w, const char *op, const char *name, int n_in, const char *const *in,
                   const char *out)
{
    rouse_buf n;
    begin_node(w, &n, op, name, n_in, in, 1, &out);
    end_node(w, &n);
}

static void conv_attrs(wctx *w, rouse_buf *n, const eng_conv_attrs *a)
{
    int ns = a->n_spatial;
    if (ns > 0) {
        attr_ints(w, n, "kernel_shape", ns, a->kernel);
        attr_ints(w, n, "strides", ns, a->stride);
        attr_ints(w, n, "dilations", ns, a->dilation);
    }
    if (a->auto_pad == ENG_AUTOPAD_SAME_UPPER) {
        attr_str(w, n, "auto_pad", "SAME_UPPER");
    } else if (a->auto_pad == ENG_AUTOPAD_SAME_LOWER) {
        attr_str(w, n, "auto_pad", "SAME_LOWER");
    } else if (a->auto_pad == ENG_AUTOPAD_VALID) {
        attr_str(w, n, "auto_pad", "VALID");
    } else if (ns > 0) {
        int64_t pads[2 * ENG_MAX_SPATIAL];
        for (int i = 0; i < ns; i++) {
            pads[i] = a->pad_begin[i];
            pads[ns + i] = a->pad_end[i];
        }
        attr_ints(w, n, "pads", 2 * ns, pads);
    }
    attr_int(w, n, "group", a->group);
}

/* The post-ops of a Conv or Gemm as nodes after it: y_pre -> ... -> final. */
static int post_nodes(wctx *w, const eng_node *nd, const char *pre, const char *final)
{
    const char *cur = pre;
    char buf[2][512];
    for (int i = 0; i < nd->n_post; i++) {
        const eng_postop *po = &nd->post[i];
        const char *out = i == nd->n_post - 1 ? final : buf[i % 2];
        if (i < nd->n_post - 1) new_name(w, nd->name, "post", buf[i % 2], sizeof(buf[0]));
        if (po->kind != ENG_POST_ELTWISE) goto unsupported;
        if (po->eltwise == ENG_OP_RELU || po->eltwise == ENG_OP_TANH ||
            po->eltwise == ENG_OP_SIGMOID || po->eltwise == ENG_OP_ABS) {
            simple(w, eng_op_name(po->eltwise), out, 1, &cur, out);
        } else if (po->eltwise == ENG_OP_CLIP) {
            char lo[512], hi[512];
            new_name(w, nd->name, "clip_min", lo, sizeof(lo));
            new_name(w, nd->name, "clip_max", hi, sizeof(hi));
            scalar_init(w, lo, isinf(po->alpha) ? -FLT_MAX : po->alpha);
            scalar_init(w, hi, isinf(po->beta) ? FLT_MAX : po->beta);
            const char *in[3] = {cur, lo, hi};
            simple(w, "Clip", out, 3, in, out);
        } else {
            goto unsupported;
        }
        cur = out;
    }
    return 0;
unsupported:
    return rouse_err_set(w->eb, ROUSE_EUNSUPPORTED,
                         "node '%s' (%s): its fused %s cannot be written as ONNX yet", nd->name,
                         eng_op_name(nd->op), eng_op_name(nd->post[0].eltwise));
}

/* QLinearConv as DQ, DQ, DQ -> Conv -> Q. */
static int write_qconv(wctx *w, const eng_node *nd)
{
    const eng_graph *g = w->g;
    char xf[512], wf[512], bf[512], yf[512], bs[512], bz[512];
    new_name(w, nd->name, "x", xf, sizeof(xf));
    new_name(w, nd->name, "w", wf, sizeof(wf));
    new_name(w, nd->name, "y", yf, sizeof(yf));
    const char *dx[3] = {vname(w, nd->in[0]), vname(w, nd->in[1]), vname(w, nd->in[2])};
    simple(w, "DequantizeLinear", xf, 3, dx, xf);
    const char *dw[3] = {vname(w, nd->in[3]), vname(w, nd->in[4]), vname(w, nd->in[5])};
    rouse_buf n;
    const char *wo = wf;
    begin_node(w, &n, "DequantizeLinear", wf, 3, dw, 1, &wo);
    attr_int(w, &n, "axis", 0);
    end_node(w, &n);
    bool bias = nd->n_in > 8 && nd->in[8] >= 0;
    if (bias) {
        const eng_value *sx = &g->values[nd->in[1]], *sw = &g->values[nd->in[4]],
                        *b = &g->values[nd->in[8]];
        int64_t m = b->shape[0], nsw = eng_shape_numel(sw->rank, sw->shape);
        float *s = malloc(sizeof(float) * (size_t)m);
        int32_t *z = calloc((size_t)m, sizeof(int32_t));
        if (!s || !z) {
            free(s);
            free(z);
            return rouse_err_set(w->eb, ROUSE_ENOMEM, "out of memory");
        }
        float fx, fw;
        memcpy(&fx, sx->const_data, 4);
        for (int64_t i = 0; i < m; i++) {
            memcpy(&fw, (const char *)sw->const_data + 4 * (nsw == 1 ? 0 : i), 4);
            s[i] = fx * fw;
        }
        new_name(w, nd->name, "bias_scale", bs, sizeof(bs));
        new_name(w, nd->name, "bias_zero_point", bz, sizeof(bz));
        add_init(w, bs, ENG_DT_FLOAT, 1, &m, s, 4 * (size_t)m);
        add_init(w, bz, ENG_DT_INT32, 1, &m, z, 4 * (size_t)m);
        free(s);
        free(z);
        new_name(w, nd->name, "b", bf, sizeof(bf));
        const char *db[3] = {vname(w, nd->in[8]), bs, bz}, *bo = bf;
        begin_node(w, &n, "DequantizeLinear", bf, 3, db, 1, &bo);
        attr_int(w, &n, "axis", 0);
        end_node(w, &n);
    }
    const char *ci[3] = {xf, wf, bias ? bf : NULL}, *co = yf;
    begin_node(w, &n, "Conv", nd->name, bias ? 3 : 2, ci, 1, &co);
    conv_attrs(w, &n, &nd->attrs.quant.conv);
    end_node(w, &n);
    const char *qi[3] = {yf, vname(w, nd->in[6]), vname(w, nd->in[7])};
    char qn[512];
    new_name(w, nd->name, "QuantizeLinear", qn, sizeof(qn));
    simple(w, "QuantizeLinear", qn, 3, qi, g->values[nd->out[0]].name);
    return 0;
}

/* y = ReduceMean(x) over the last dim, kept. */
static void reduce_mean_last(wctx *w, const char *name, const char *x, const char *y)
{
    rouse_buf n;
    int64_t axis = -1;
    begin_node(w, &n, "ReduceMean", name, 1, &x, 1, &y);
    attr_ints(w, &n, "axes", 1, &axis);
    attr_int(w, &n, "keepdims", 1);
    end_node(w, &n);
}

/* The fused LayerNormalization (a standard op only from opset 17) as the
 * primitive ops exporters write at opset 13, which the load-time fusion
 * (and other runtimes) match again: mean, d = x - mean, Pow(d, 2), mean,
 * + eps, Sqrt, d / that, * scale, + bias. */
static int write_layernorm(wctx *w, const eng_node *nd, const char *const *in, const char *y)
{
    if (nd->attrs.norm.axis != -1 || nd->n_post) goto unsupported;
    const char *base = nd->name;
    char t[9][512];
    const char *names[] = {"mean", "d", "two", "sq", "var", "eps", "ve", "sd", "nrm"};
    for (int i = 0; i < 9; i++)
        new_name(w, base, names[i], t[i], sizeof(t[i]));
    bool scale = nd->n_in > 1 && in[1], bias = nd->n_in > 2 && in[2];
    char scaled[512];
    new_name(w, base, "scaled", scaled, sizeof(scaled));
    const char *nrm_out = scale || bias ? t[8] : y;
    reduce_mean_last(w, t[0], in[0], t[0]);
    const char *sub[2] = {in[0], t[0]};
    simple(w, "Sub", t[1], 2, sub, t[1]);
    scalar_init(w, t[2], 2.0f);
    const char *pw[2] = {t[1], t[2]};
    simple(w, "Pow", t[3], 2, pw, t[3]);
    reduce_mean_last(w, t[4], t[3], t[4]);
    scalar_init(w, t[5], nd->attrs.norm.epsilon);
    const char *ad[2] = {t[4], t[5]};
    simple(w, "Add", t[6], 2, ad, t[6]);
    const char *ve = t[6];
    simple(w, "Sqrt", t[7], 1, &ve, t[7]);
    const char *dv[2] = {t[1], t[7]};
    simple(w, "Div", nrm_out, 2, dv, nrm_out);
    const char *cur = nrm_out;
    if (scale) {
        const char *ml[2] = {cur, in[1]}, *o = bias ? scaled : y;
        simple(w, "Mul", o, 2, ml, o);
        cur = o;
    }
    if (bias) {
        const char *ba[2] = {cur, in[2]};
        simple(w, "Add", y, 2, ba, y);
    }
    return 0;
unsupported:
    return rouse_err_set(w->eb, ROUSE_EUNSUPPORTED, "node '%s' (%s) cannot be written as ONNX yet",
                         nd->name, eng_op_name(nd->op));
}

/* The fused Gelu (a standard op only from opset 20) as exporters write it:
 * x * (erf(x / sqrt(2)) + 1) * 0.5. */
static int write_gelu(wctx *w, const eng_node *nd, const char *x, const char *y)
{
    if (nd->n_post)
        return rouse_err_set(w->eb, ROUSE_EUNSUPPORTED,
                             "node '%s' (Gelu) cannot be written as ONNX yet", nd->name);
    const char *names[] = {"sqrt2", "h", "erf", "one", "a", "xa", "half"};
    char t[7][512];
    for (int i = 0; i < 7; i++)
        new_name(w, nd->name, names[i], t[i], sizeof(t[i]));
    scalar_init(w, t[0], 1.4142135623730951f);
    scalar_init(w, t[3], 1.0f);
    scalar_init(w, t[6], 0.5f);
    const char *dv[2] = {x, t[0]}, *ad[2] = {t[2], t[3]}, *m1[2] = {x, t[4]}, *m2[2] = {t[5], t[6]};
    simple(w, "Div", t[1], 2, dv, t[1]);
    const char *h = t[1];
    simple(w, "Erf", t[2], 1, &h, t[2]);
    simple(w, "Add", t[4], 2, ad, t[4]);
    simple(w, "Mul", t[5], 2, m1, t[5]);
    simple(w, "Mul", y, 2, m2, y);
    return 0;
}

static int write_node(wctx *w, const eng_node *nd)
{
    const eng_graph *g = w->g;
    if (nd->op == ENG_OP_QLINEAR_CONV) return write_qconv(w, nd);
    const char *in[16];
    if (nd->n_in > 16 || nd->n_out != 1 || nd->out[0] < 0) goto unsupported;
    for (int k = 0; k < nd->n_in; k++)
        in[k] = nd->in[k] >= 0 ? vname(w, nd->in[k]) : NULL;
    const char *out = g->values[nd->out[0]].name;
    char pre[512];
    const char *dst = out;
    if (nd->n_post) {
        if (nd->op != ENG_OP_CONV && nd->op != ENG_OP_GEMM) goto unsupported;
        new_name(w, nd->name, "pre", pre, sizeof(pre));
        dst = pre;
    }
    rouse_buf n;
    const eng_attrs *a = &nd->attrs;
    switch (nd->op) {
    case ENG_OP_CONV:
        begin_node(w, &n, "Conv", nd->name, nd->n_in, in, 1, &dst);
        conv_attrs(w, &n, &a->conv);
        break;
    case ENG_OP_GEMM:
        begin_node(w, &n, "Gemm", nd->name, nd->n_in, in, 1, &dst);
        attr_int(w, &n, "transA", a->gemm.trans_a);
        attr_int(w, &n, "transB", a->gemm.trans_b);
        attr_float(w, &n, "alpha", a->gemm.alpha);
        attr_float(w, &n, "beta", a->gemm.beta);
        break;
    case ENG_OP_QUANTIZE_LINEAR:
    case ENG_OP_DEQUANTIZE_LINEAR:
        begin_node(w, &n, eng_op_name(nd->op), nd->name, nd->n_in, in, 1, &dst);
        attr_int(w, &n, "axis", a->quant.q.axis);
        break;
    case ENG_OP_MAXPOOL:
    case ENG_OP_AVGPOOL: {
        const eng_pool_attrs *p = &a->pool;
        begin_node(w, &n, eng_op_name(nd->op), nd->name, nd->n_in, in, 1, &dst);
        eng_conv_attrs c = {0};
        c.n_spatial = p->n_spatial;
        memcpy(c.kernel, p->kernel, sizeof(c.kernel));
        memcpy(c.stride, p->stride, sizeof(c.stride));
        memcpy(c.dilation, p->dilation, sizeof(c.dilation));
        memcpy(c.pad_begin, p->pad_begin, sizeof(c.pad_begin));
        memcpy(c.pad_end, p->pad_end, sizeof(c.pad_end));
        c.auto_pad = p->auto_pad;
        int ns = c.n_spatial;
        attr_ints(w, &n, "kernel_shape", ns, c.kernel);
        attr_ints(w, &n, "strides", ns, c.stride);
        if (nd->op == ENG_OP_MAXPOOL) attr_ints(w, &n, "dilations", ns, c.dilation);
        if (c.auto_pad != ENG_AUTOPAD_NOTSET) goto unsupported_open;
        int64_t pads[2 * ENG_MAX_SPATIAL];
        for (int i = 0; i < ns; i++) {
            pads[i] = c.pad_begin[i];
            pads[ns + i] = c.pad_end[i];
        }
        attr_ints(w, &n, "pads", 2 * ns, pads);
        attr_int(w, &n, "ceil_mode", p->ceil_mode);
        if (nd->op == ENG_OP_AVGPOOL) attr_int(w, &n, "count_include_pad", p->count_include_pad);
        break;
    }
    case ENG_OP_FLATTEN:
    case ENG_OP_CONCAT:
    case ENG_OP_GATHER:
        begin_node(w, &n, eng_op_name(nd->op), nd->name, nd->n_in, in, 1, &dst);
        attr_int(w, &n, "axis", a->axis.axis);
        break;
    case ENG_OP_CAST:
        begin_node(w, &n, "Cast", nd->name, nd->n_in, in, 1, &dst);
        attr_int(w, &n, "to", a->cast.to);
        break;
    case ENG_OP_UNSQUEEZE: /* axes as input 1 (opset 13) */
        if (nd->opset < 13 || nd->n_in != 2) goto unsupported;
        begin_node(w, &n, "Unsqueeze", nd->name, nd->n_in, in, 1, &dst);
        break;
    case ENG_OP_LAYERNORM:
        return write_layernorm(w, nd, in, out);
    case ENG_OP_GELU:
        return write_gelu(w, nd, in[0], out);
    case ENG_OP_SOFTMAX:
        if (a->axis.legacy) goto unsupported;
        begin_node(w, &n, "Softmax", nd->name, nd->n_in, in, 1, &dst);
        attr_int(w, &n, "axis", a->axis.axis);
        break;
    case ENG_OP_TRANSPOSE:
        begin_node(w, &n, "Transpose", nd->name, nd->n_in, in, 1, &dst);
        if (a->transpose.n_perm) attr_ints(w, &n, "perm", a->transpose.n_perm, a->transpose.perm);
        break;
    case ENG_OP_RESHAPE:
        begin_node(w, &n, "Reshape", nd->name, nd->n_in, in, 1, &dst);
        if (a->reshape.allowzero) attr_int(w, &n, "allowzero", 1);
        break;
    case ENG_OP_CLIP:
        if (nd->opset < 11) goto unsupported;
        begin_node(w, &n, "Clip", nd->name, nd->n_in, in, 1, &dst);
        break;
    case ENG_OP_RELU:
    case ENG_OP_ADD:
    case ENG_OP_SUB:
    case ENG_OP_MUL:
    case ENG_OP_DIV:
    case ENG_OP_GLOBAL_AVGPOOL:
    case ENG_OP_MATMUL:
    case ENG_OP_SIGMOID:
    case ENG_OP_TANH:
    case ENG_OP_QLINEAR_MATMUL:
    case ENG_OP_WHERE:
    case ENG_OP_ERF:
    case ENG_OP_POW:
    case ENG_OP_SQRT:
        begin_node(w, &n, eng_op_name(nd->op), nd->name, nd->n_in, in, 1, &dst);
        break;
    default:
        goto unsupported;
    }
    end_node(w, &n);
    return nd->n_post ? post_nodes(w, nd, pre, out) : 0;
unsupported_open:
    rouse_buf_fini(&n);
unsupported:
    return rouse_err_set(w->eb, ROUSE_EUNSUPPORTED,
                         "node '%s' (%s) cannot be written as ONNX yet", nd->name,
                         eng_op_name(nd->op));
}

/* ValueInfoProto of a graph input or output. */
static void value_info(wctx *w, rouse_buf *graph, int field, const eng_value *v)
{
    rouse_buf vi, type, tt, shape;
    rouse_buf_init(&vi);
    rouse_buf_init(&type);
    rouse_buf_init(&tt);
    rouse_buf_init(&shape);
    put_str(w, &vi, 1, v->name);
    put_int(w, &tt, 1, v->dtype);
    for (int i = 0; v->rank >= 0 && i < v->rank; i++) {
        rouse_buf d;
        rouse_buf_init(&d);
        if (v->shape[i] >= 0)
            put_int(w, &d, 1, v->shape[i]);
        else if (v->dim_names[i])
            put_str(w, &d, 2, v->dim_names[i]);
        put_msg(w, &shape, 1, &d);
    }
    if (v->rank >= 0) put_msg(w, &tt, 2, &shape);
    else rouse_buf_fini(&shape);
    put_msg(w, &type, 1, &tt);
    put_msg(w, &vi, 2, &type);
    put_msg(w, graph, field, &vi);
}

int eng_graph_write_onnx(const eng_graph *g, const char *producer, rouse_buf *out, rouse_errbuf *eb)
{
    wctx w = {.g = g, .eb = eb};
    w.opset = g->opset < 13 ? 13 : g->opset;
    w.written = calloc((size_t)g->n_values + 1, 1);
    if (!w.written) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    rouse_buf_init(&w.nodes);
    rouse_buf_init(&w.inits);
    int rc = 0;
    for (int i = 0; i < g->n_nodes && rc >= 0; i++)
        if (!g->nodes[i].dead) rc = write_node(&w, &g->nodes[i]);
    /* A graph output written by no node (an input or a constant) is not
     * expected here: the optimizer keeps outputs produced by nodes. */
    rouse_buf graph;
    rouse_buf_init(&graph);
    if (rc >= 0) {
        if (rouse_buf_append(&graph, w.nodes.data, w.nodes.len) < 0) w.rc = ROUSE_ENOMEM;
        put_str(&w, &graph, 2, "rouse_int8");
        if (rouse_buf_append(&graph, w.inits.data, w.inits.len) < 0) w.rc = ROUSE_ENOMEM;
        for (int i = 0; i < g->n_inputs; i++)
            value_info(&w, &graph, 11, &g->values[g->inputs[i]]);
        for (int i = 0; i < g->n_outputs; i++)
            value_info(&w, &graph, 12, &g->values[g->outputs[i]]);
        rouse_buf opset;
        rouse_buf_init(&opset);
        put_str(&w, &opset, 1, "");
        put_int(&w, &opset, 2, w.opset);
        put_int(&w, out, 1, 8); /* ir_version */
        put_str(&w, out, 2, producer);
        put_msg(&w, out, 8, &opset);
        put_msg(&w, out, 7, &graph);
        if (w.rc < 0) rc = rouse_err_set(eb, w.rc, "out of memory writing the model");
    } else {
        rouse_buf_fini(&graph);
    }
    rouse_buf_fini(&w.nodes);
    rouse_buf_fini(&w.inits);
    free(w.written);
    return rc;
}
