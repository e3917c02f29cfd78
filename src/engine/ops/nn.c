/*
 * Operator descriptors of the neural-network core (see engine/op.h):
 * convolution, matrix products, pooling, batch normalization, softmax and
 * ReduceMean. Kernels are the plain C ones of src/engine/ref/; oneDNN
 * builds of the same ops stay in exec_dnnl.c, keyed by eng_op.
 *
 * Guarantees: a record that passes its op's check has every window field,
 * flag and float in the range the kernels compute with; shape inference
 * turns auto_pad into explicit pads and takes Conv's kernel from the weight
 * when kernel_shape is absent, so kernels see one form.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/op.h"
#include "engine/ops/ops_int.h"
#include "engine/ref/ref.h"

/* --- Conv, Gemm, pools, BatchNormalization: attributes ------------------ */

static int parse_conv(const eng_attr_ctx *c, eng_attrs *at)
{
    eng_conv_attrs *a = &at->conv;
    struct ops_window w = {&a->n_spatial, a->kernel,    a->stride,
                           a->dilation,   a->pad_begin, a->pad_end};
    int rc;
    if ((rc = ops_parse_window(c, &w, false, true)) < 0) return rc;
    if ((rc = eng_attr_int(c, "group", 1, &a->group)) < 0) return rc;
    return ops_parse_auto_pad(c, &a->auto_pad);
}

static int parse_pool(const eng_attr_ctx *c, eng_attrs *at)
{
    eng_pool_attrs *a = &at->pool;
    bool max = c->n->op == ENG_OP_MAXPOOL;
    int opset = c->n->opset;
    struct ops_window w = {&a->n_spatial, a->kernel,    a->stride,
                           a->dilation,   a->pad_begin, a->pad_end};
    int rc;
    /* Dilations arrived in MaxPool-10 and only in AveragePool-19, which is
     * past the opsets we accept. */
    if ((rc = ops_parse_window(c, &w, true, max && opset >= 10)) < 0) return rc;
    if ((rc = ops_parse_auto_pad(c, &a->auto_pad)) < 0) return rc;
    if (opset >= 10 && (rc = eng_attr_flag(c, "ceil_mode", 0, &a->ceil_mode)) < 0) return rc;
    if (!max && opset >= 7 &&
        (rc = eng_attr_flag(c, "count_include_pad", 0, &a->count_include_pad)) < 0)
        return rc;
    if (max && opset >= 8 && (rc = eng_attr_flag(c, "storage_order", 0, &a->storage_order)) < 0)
        return rc;
    return 0;
}

static int parse_gemm(const eng_attr_ctx *c, eng_attrs *at)
{
    eng_gemm_attrs *a = &at->gemm;
    int rc;
    if ((rc = eng_attr_flag(c, "transA", 0, &a->trans_a)) < 0) return rc;
    if ((rc = eng_attr_flag(c, "transB", 0, &a->trans_b)) < 0) return rc;
    if ((rc = eng_attr_finite(c, "alpha", 1.0f, &a->alpha)) < 0) return rc;
    return eng_attr_finite(c, "beta", 1.0f, &a->beta);
}

static int parse_batchnorm(const eng_attr_ctx *c, eng_attrs *at)
{
    eng_bn_attrs *a = &at->bn;
    int opset = c->n->opset;
    int64_t v;
    int rc;
    if ((rc = eng_attr_finite(c, "epsilon", 1e-5f, &a->epsilon)) < 0) return rc;
    if (opset >= 14) {
        if ((rc = eng_attr_int(c, "training_mode", 0, &v)) < 0) return rc;
        if (v != 0)
            return eng_attr_err(c, ROUSE_EUNSUPPORTED, "training_mode", "= 1 is not supported");
    }
    /* spatial = 0 (opsets 6..8) means per-activation statistics of shape
     * [C, D1...], which the kernels do not implement. */
    if (opset < 9) {
        if ((rc = eng_attr_int(c, "spatial", 1, &v)) < 0) return rc;
        if (v == 0) return eng_attr_err(c, ROUSE_EUNSUPPORTED, "spatial", "= 0 is not supported");
    }
    return 0;
}

static int parse_softmax(const eng_attr_ctx *c, eng_attrs *a)
{
    int opset = c->n->opset;
    a->axis.legacy = opset < 13;
    return eng_attr_int(c, "axis", opset < 13 ? 1 : -1, &a->axis.axis);
}

/* ReduceMean keeps its axes an attribute through opset 17. Range and
 * duplicate checks need the input rank and happen in shape inference. */
static int parse_reduce_mean(const eng_attr_ctx *c, eng_attrs *at)
{
    eng_axes_attrs *a = &at->axes;
    int rc;
    a->n_axes = -1;
    a->keepdims = 1;
    if ((rc = eng_attr_ints(c, "axes", ENG_MAX_RANK, &a->n_axes, a->axes)) < 0) return rc;
    return eng_attr_flag(c, "keepdims", 1, &a->keepdims);
}

static int check_flag(const eng_node *n, rouse_errbuf *eb, const char *name, int v)
{
    if (v == 0 || v == 1) return 0;
    return eng_check_fail(n, eb, ROUSE_EFORMAT, name, "must be 0 or 1, got %d", v);
}

static int check_conv(const eng_node *n, rouse_errbuf *eb)
{
    const eng_conv_attrs *a = &n->attrs.conv;
    int rc = ops_check_window(n, eb, a->n_spatial, a->kernel, a->stride, a->dilation, a->pad_begin,
                              a->pad_end, a->auto_pad, false);
    if (rc < 0) return rc;
    if (a->group < 1 || a->group > OPS_MAX_DIM)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "group", "must be >= 1, got %lld",
                              (long long)a->group);
    return 0;
}

static int check_pool(const eng_node *n, rouse_errbuf *eb)
{
    const eng_pool_attrs *a = &n->attrs.pool;
    int rc = ops_check_window(n, eb, a->n_spatial, a->kernel, a->stride, a->dilation, a->pad_begin,
                              a->pad_end, a->auto_pad, true);
    if (rc < 0 || (rc = check_flag(n, eb, "ceil_mode", a->ceil_mode)) < 0 ||
        (rc = check_flag(n, eb, "count_include_pad", a->count_include_pad)) < 0 ||
        (rc = check_flag(n, eb, "storage_order", a->storage_order)) < 0)
        return rc;
    return 0;
}

static int check_gemm(const eng_node *n, rouse_errbuf *eb)
{
    const eng_gemm_attrs *a = &n->attrs.gemm;
    int rc;
    if ((rc = check_flag(n, eb, "transA", a->trans_a)) < 0 ||
        (rc = check_flag(n, eb, "transB", a->trans_b)) < 0)
        return rc;
    if (!isfinite(a->alpha)) return eng_check_fail(n, eb, ROUSE_EFORMAT, "alpha", "must be finite");
    if (!isfinite(a->beta)) return eng_check_fail(n, eb, ROUSE_EFORMAT, "beta", "must be finite");
    return 0;
}

static int check_batchnorm(const eng_node *n, rouse_errbuf *eb)
{
    float e = n->attrs.bn.epsilon;
    if (!isfinite(e)) return eng_check_fail(n, eb, ROUSE_EFORMAT, "epsilon", "must be finite");
    if (e < 0) return eng_check_fail(n, eb, ROUSE_EFORMAT, "epsilon", "must not be negative");
    return 0;
}

static int check_softmax(const eng_node *n, rouse_errbuf *eb)
{
    if (!ops_bool_valid(&n->attrs.axis.legacy) || n->attrs.axis.legacy != (n->opset < 13))
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "axis", "has a bad form for opset %d",
                              n->opset);
    return 0;
}

static int check_reduce_mean(const eng_node *n, rouse_errbuf *eb)
{
    const eng_axes_attrs *a = &n->attrs.axes;
    if (a->n_axes < -1 || a->n_axes > ENG_MAX_RANK)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "axes", "has %d values", a->n_axes);
    return check_flag(n, eb, "keepdims", a->keepdims);
}

/* --- shape inference ------------------------------------------------------ */

static int infer_conv(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *w = c->in[1], *b = eng_infer_input(c, 2);
    eng_conv_attrs *a = &c->res->conv;
    struct ops_shapebuf sb;
    int rc;

    if ((rc = eng_infer_same_dtype(c, 1, 0)) < 0) return rc;
    if (b && (rc = eng_infer_same_dtype(c, 2, 0)) < 0) return rc;
    int r = x->rank, ns = r - 2;
    if (r < 3)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'X' must have rank >= 3 ([N, C, D...]), got %s",
                              ops_shp(&sb, 0, r, x->shape));
    if (ns > ENG_MAX_SPATIAL)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                              "input 'X' has %d spatial dims, at most %d are supported", ns,
                              ENG_MAX_SPATIAL);
    if (a->n_spatial && a->n_spatial != ns)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "attributes describe %d spatial dims, input 'X' %s has %d",
                              a->n_spatial, ops_shp(&sb, 0, r, x->shape), ns);
    if (w->rank != r)
        return eng_infer_fail(
            c, ROUSE_EMISMATCH, "input 'W' %s has rank %d, input 'X' %s has rank %d",
            ops_shp(&sb, 0, w->rank, w->shape), w->rank, ops_shp(&sb, 1, r, x->shape), r);
    for (int i = 0; i < ns; i++) {
        int64_t k = w->shape[2 + i];
        if (k < 1 || k > ((int64_t)1 << 31))
            return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'W' %s has an invalid kernel size",
                                  ops_shp(&sb, 0, r, w->shape));
        if (a->kernel[i] && a->kernel[i] != k)
            return eng_infer_fail(
                c, ROUSE_EMISMATCH,
                "attribute 'kernel_shape' disagrees with input 'W' %s at spatial dim %d "
                "(%lld vs %lld)",
                ops_shp(&sb, 0, r, w->shape), i, (long long)a->kernel[i], (long long)k);
        a->kernel[i] = k;
    }
    a->n_spatial = ns;

    int64_t m = w->shape[0], per_group = w->shape[1], want_c;
    bool overflow = __builtin_mul_overflow(per_group, a->group, &want_c);
    if (overflow || x->shape[1] != want_c) {
        if (overflow)
            return eng_infer_fail(
                c, ROUSE_EMISMATCH,
                "input 'X' has %lld channels, weight expects %lld per group x %lld groups",
                (long long)x->shape[1], (long long)per_group, (long long)a->group);
        if (a->group > 1)
            return eng_infer_fail(
                c, ROUSE_EMISMATCH,
                "input 'X' has %lld channels, weight expects %lld (%lld per group x %lld "
                "groups)",
                (long long)x->shape[1], (long long)want_c, (long long)per_group,
                (long long)a->group);
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'X' has %lld channels, weight expects %lld",
                              (long long)x->shape[1], (long long)per_group);
    }
    if (m % a->group)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'W' has %lld output channels, not a multiple of group %lld",
                              (long long)m, (long long)a->group);
    if (b && (b->rank != 1 || b->shape[0] != m))
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'B' has shape %s, expected [%lld]",
                              ops_shp(&sb, 0, b->rank, b->shape), (long long)m);

    int64_t y[ENG_MAX_RANK] = {x->shape[0], m};
    for (int i = 0; i < ns; i++) {
        struct ops_window_dim win = {a->kernel[i],
                                     a->stride[i],
                                     a->dilation[i],
                                     &a->pad_begin[i],
                                     &a->pad_end[i],
                                     a->auto_pad,
                                     0};
        if ((rc = ops_window_out(c, i, x->shape[2 + i], &win, &y[2 + i])) < 0) return rc;
    }
    a->auto_pad = ENG_AUTOPAD_NOTSET;
    eng_infer_set_out(c, 0, x->dtype, r, y);
    return 0;
}

static int infer_pool(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_pool_attrs *a = &c->res->pool;
    struct ops_shapebuf sb;
    int rc;

    int r = x->rank, ns = r - 2;
    if (r < 3)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'X' must have rank >= 3 ([N, C, D...]), got %s",
                              ops_shp(&sb, 0, r, x->shape));
    if (a->n_spatial != ns)
        return eng_infer_fail(
            c, ROUSE_EMISMATCH,
            "attribute 'kernel_shape' has %d values, input 'X' %s has %d spatial dims",
            a->n_spatial, ops_shp(&sb, 0, r, x->shape), ns);

    int64_t y[ENG_MAX_RANK] = {x->shape[0], x->shape[1]};
    for (int i = 0; i < ns; i++) {
        struct ops_window_dim win = {a->kernel[i],   a->stride[i], a->dilation[i], &a->pad_begin[i],
                                     &a->pad_end[i], a->auto_pad,  a->ceil_mode};
        if ((rc = ops_window_out(c, i, x->shape[2 + i], &win, &y[2 + i])) < 0) return rc;
    }
    /* With auto_pad the output size ignores ceil_mode, and the resolved pads
     * give that size with the floor formula. */
    if (a->auto_pad != ENG_AUTOPAD_NOTSET) a->ceil_mode = 0;
    a->auto_pad = ENG_AUTOPAD_NOTSET;
    eng_infer_set_out(c, 0, x->dtype, r, y);
    eng_infer_set_out(c, 1, ENG_DT_INT64, r, y);
    return 0;
}

static int infer_global_pool(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    struct ops_shapebuf sb;
    if (x->rank < 3)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'X' must have rank >= 3 ([N, C, D...]), got %s",
                              ops_shp(&sb, 0, x->rank, x->shape));
    int64_t y[ENG_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        y[i] = i < 2 ? x->shape[i] : 1;
    eng_infer_set_out(c, 0, x->dtype, x->rank, y);
    return 0;
}

static int infer_gemm(eng_infer_ctx *c)
{
    const eng_tensor *A = c->in[0], *B = c->in[1], *C = eng_infer_input(c, 2);
    const eng_gemm_attrs *g = &c->res->gemm;
    struct ops_shapebuf sb;
    int rc;

    if ((rc = eng_infer_same_dtype(c, 1, 0)) < 0) return rc;
    if (C && (rc = eng_infer_same_dtype(c, 2, 0)) < 0) return rc;
    if (A->rank != 2)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'A' must be 2-D, got %s",
                              ops_shp(&sb, 0, A->rank, A->shape));
    if (B->rank != 2)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'B' must be 2-D, got %s",
                              ops_shp(&sb, 0, B->rank, B->shape));
    int64_t m = A->shape[g->trans_a ? 1 : 0], k = A->shape[g->trans_a ? 0 : 1];
    int64_t kb = B->shape[g->trans_b ? 1 : 0], nn = B->shape[g->trans_b ? 0 : 1];
    if (k != kb)
        return eng_infer_fail(
            c, ROUSE_EMISMATCH,
            "input 'A' %s has inner dim %lld, input 'B' %s has %lld (transA=%d, transB=%d)",
            ops_shp(&sb, 0, 2, A->shape), (long long)k, ops_shp(&sb, 1, 2, B->shape), (long long)kb,
            g->trans_a, g->trans_b);
    int64_t y[2] = {m, nn};
    if (C) {
        /* Unidirectional: C must broadcast to Y without changing Y's shape. */
        bool ok = C->rank <= 2;
        for (int i = 0; ok && i < C->rank; i++) {
            int64_t d = C->shape[C->rank - 1 - i];
            ok = d == 1 || d == y[1 - i];
        }
        if (!ok)
            return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'C' %s cannot be broadcast to %s",
                                  ops_shp(&sb, 0, C->rank, C->shape), ops_shp(&sb, 1, 2, y));
    }
    eng_infer_set_out(c, 0, A->dtype, 2, y);
    return 0;
}

static int infer_matmul(eng_infer_ctx *c)
{
    const eng_tensor *A = c->in[0], *B = c->in[1];
    struct ops_shapebuf sb;
    int rc;

    if ((rc = eng_infer_same_dtype(c, 1, 0)) < 0) return rc;
    if (A->rank < 1 || B->rank < 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input '%s' is a scalar; MatMul needs rank >= 1",
                              A->rank < 1 ? "A" : "B");
    /* 1-D operands are promoted to matrices ([K] -> [1, K] for A, [K, 1]
     * for B) and the added dim is removed from the result. */
    int64_t k = A->shape[A->rank - 1];
    int64_t kb = B->rank == 1 ? B->shape[0] : B->shape[B->rank - 2];
    if (k != kb)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'A' %s and input 'B' %s have inner dims %lld and %lld",
                              ops_shp(&sb, 0, A->rank, A->shape),
                              ops_shp(&sb, 1, B->rank, B->shape), (long long)k, (long long)kb);
    int ra = A->rank > 2 ? A->rank - 2 : 0, rb = B->rank > 2 ? B->rank - 2 : 0, r;
    int64_t y[ENG_MAX_RANK];
    if (!eng_broadcast_shapes(ra, A->shape, rb, B->shape, &r, y))
        return eng_infer_fail(
            c, ROUSE_EMISMATCH,
            "input 'A' %s and input 'B' %s have batch dims that cannot be broadcast",
            ops_shp(&sb, 0, A->rank, A->shape), ops_shp(&sb, 1, B->rank, B->shape));
    if (A->rank > 1) y[r++] = A->shape[A->rank - 2];
    if (B->rank > 1) y[r++] = B->shape[B->rank - 1];
    eng_infer_set_out(c, 0, A->dtype, r, y);
    return 0;
}

static int infer_batchnorm(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    struct ops_shapebuf sb;
    int rc;

    for (int i = 1; i < c->n->n_out; i++)
        if (eng_infer_want_out(c, i))
            return eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                                  "training outputs (output %d) are not supported", i);
    if (x->rank < 2)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'X' must have rank >= 2 ([N, C, ...]), got %s",
                              ops_shp(&sb, 0, x->rank, x->shape));
    for (int i = 1; i < 5; i++) {
        const eng_tensor *p = c->in[i];
        if ((rc = eng_infer_same_dtype(c, i, 0)) < 0) return rc;
        if (p->rank != 1 || p->shape[0] != x->shape[1])
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "input '%s' has shape %s, input 'X' has %lld channels",
                                  eng_infer_in_name(c, i), ops_shp(&sb, 0, p->rank, p->shape),
                                  (long long)x->shape[1]);
    }
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

static int infer_softmax(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    int rc;
    if ((rc = eng_infer_norm_axis(c, c->res->axis.axis, x->rank, false, &c->res->axis.axis)) < 0)
        return rc;
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

static int infer_reduce_mean(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_axes_attrs *a = &c->res->axes;
    int rc;

    if (a->n_axes <= 0) { /* absent or empty: every dim */
        a->n_axes = x->rank;
        for (int i = 0; i < x->rank; i++)
            a->axes[i] = i;
    } else if ((rc = ops_norm_axes(c, "attribute 'axes' value", a->axes, a->n_axes, x->rank)) < 0) {
        return rc;
    }
    bool red[ENG_MAX_RANK] = {false};
    for (int i = 0; i < a->n_axes; i++)
        red[a->axes[i]] = true;
    int64_t y[ENG_MAX_RANK];
    int r = 0;
    for (int d = 0; d < x->rank; d++) {
        if (!red[d])
            y[r++] = x->shape[d];
        else if (a->keepdims)
            y[r++] = 1;
    }
    eng_infer_set_out(c, 0, x->dtype, r, y);
    return 0;
}

/* --- reference kernels ---------------------------------------------------- */

static int run_conv(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                    eng_tensor *const *out, rouse_errbuf *eb)
{
    int rc = ref_conv(&a->conv, in[0], in[1], n->n_in > 2 ? in[2] : NULL, out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_gemm(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                    eng_tensor *const *out, rouse_errbuf *eb)
{
    int rc = ref_gemm(&a->gemm, in[0], in[1], n->n_in > 2 ? in[2] : NULL, out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_matmul(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                      eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    int rc = ref_matmul(in[0], in[1], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_maxpool(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                       eng_tensor *const *out, rouse_errbuf *eb)
{
    int rc = ref_maxpool(&a->pool, in[0], out[0], n->n_out > 1 ? out[1] : NULL);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_avgpool(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                       eng_tensor *const *out, rouse_errbuf *eb)
{
    int rc = ref_avgpool(&a->pool, in[0], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_global_avgpool(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                              eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    int rc = ref_global_avgpool(in[0], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_batchnorm(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                         eng_tensor *const *out, rouse_errbuf *eb)
{
    int rc = ref_batchnorm(a->bn.epsilon, in[0], in[1], in[2], in[3], in[4], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_softmax(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                       eng_tensor *const *out, rouse_errbuf *eb)
{
    int64_t axis = a->axis.axis < 0 ? a->axis.axis + in[0]->rank : a->axis.axis;
    int rc = ref_softmax(axis, a->axis.legacy, in[0], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_reduce_mean(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                           eng_tensor *const *out, rouse_errbuf *eb)
{
    int rc = ref_reduce_mean(a->axes.n_axes, a->axes.axes, a->axes.keepdims, in[0], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

/* --- multiply-accumulates ------------------------------------------------- */

/* Each output element of a Conv sums C/group x prod(kernel) products: the
 * size of one output channel's weights. */
static int64_t macs_conv(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                         const eng_tensor *out)
{
    (void)n;
    (void)a;
    int64_t per = in[1]->shape[0] ? eng_tensor_numel(in[1]) / in[1]->shape[0] : 0;
    return eng_macs_mul(eng_tensor_numel(&out[0]), per);
}

/* Gemm and MatMul: each output element sums K products. */
static int64_t macs_gemm(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                         const eng_tensor *out)
{
    (void)n;
    int64_t k = in[0]->shape[a->gemm.trans_a ? 0 : 1];
    return eng_macs_mul(eng_tensor_numel(&out[0]), k);
}

static int64_t macs_matmul(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                           const eng_tensor *out)
{
    (void)n;
    (void)a;
    return eng_macs_mul(eng_tensor_numel(&out[0]), in[0]->shape[in[0]->rank - 1]);
}

/* --- descriptors ---------------------------------------------------------- */

#define FLOATS (ENG_DTM(FLOAT) | ENG_DTM(DOUBLE))

/* MaxPool's Indices output arrived in opset 8. */
static void counts_maxpool(const eng_node *n, int *min_in, int *max_in, int *max_out)
{
    (void)min_in;
    (void)max_in;
    if (n->opset < 8) *max_out = 1;
}

static const eng_op_desc op_conv = {
    .op = ENG_OP_CONV,
    .name = "Conv",
    .since = 1,
    .min_in = 2,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"X", "W", "B"},
    .dtypes = ENG_DTM(FLOAT),
    .parse = parse_conv,
    .check = check_conv,
    .infer = infer_conv,
    .run = run_conv,
    .macs = macs_conv,
};

static const eng_op_desc op_gemm = {
    .op = ENG_OP_GEMM,
    .name = "Gemm",
    .since = 1,
    .min_in = 2,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"A", "B", "C"},
    .dtypes = ENG_DTM(FLOAT),
    .parse = parse_gemm,
    .check = check_gemm,
    .infer = infer_gemm,
    .run = run_gemm,
    .macs = macs_gemm,
};

static const eng_op_desc op_matmul = {
    .op = ENG_OP_MATMUL,
    .name = "MatMul",
    .since = 1,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"A", "B"},
    .dtypes = FLOATS | ENG_DTM(INT32) | ENG_DTM(INT64) | ENG_DTM(UINT32) | ENG_DTM(UINT64),
    .infer = infer_matmul,
    .run = run_matmul,
    .macs = macs_matmul,
};

static const eng_op_desc op_maxpool = {
    .op = ENG_OP_MAXPOOL,
    .name = "MaxPool",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 2,
    .in_names = {"X"},
    .dtypes = FLOATS | ENG_DTM(INT8) | ENG_DTM(UINT8),
    .counts = counts_maxpool,
    .parse = parse_pool,
    .check = check_pool,
    .infer = infer_pool,
    .run = run_maxpool,
};

static const eng_op_desc op_avgpool = {
    .op = ENG_OP_AVGPOOL,
    .name = "AveragePool",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = ENG_DTM(FLOAT),
    .parse = parse_pool,
    .check = check_pool,
    .infer = infer_pool,
    .run = run_avgpool,
};

static const eng_op_desc op_global_avgpool = {
    .op = ENG_OP_GLOBAL_AVGPOOL,
    .name = "GlobalAveragePool",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = ENG_DTM(FLOAT),
    .infer = infer_global_pool,
    .run = run_global_avgpool,
};

static const eng_op_desc op_batchnorm = {
    .op = ENG_OP_BATCHNORM,
    .name = "BatchNormalization",
    .since = 1,
    .min_in = 5,
    .max_in = 5,
    .max_out = 5,
    .in_names = {"X", "scale", "B", "input_mean", "input_var"},
    .dtypes = ENG_DTM(FLOAT),
    .parse = parse_batchnorm,
    .check = check_batchnorm,
    .infer = infer_batchnorm,
    .run = run_batchnorm,
};

static const eng_op_desc op_softmax = {
    .op = ENG_OP_SOFTMAX,
    .name = "Softmax",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"input"},
    .dtypes = ENG_DTM(FLOAT),
    .parse = parse_softmax,
    .check = check_softmax,
    .infer = infer_softmax,
    .run = run_softmax,
};

/* Through opset 17 (the input form of axes is opset 18). */
static const eng_op_desc op_reduce_mean = {
    .op = ENG_OP_REDUCE_MEAN,
    .name = "ReduceMean",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"data"},
    .dtypes = FLOATS,
    .parse = parse_reduce_mean,
    .check = check_reduce_mean,
    .infer = infer_reduce_mean,
    .run = run_reduce_mean,
};

const eng_op_desc *const eng_ops_nn[] = {
    &op_conv,           &op_gemm,      &op_matmul,  &op_maxpool,     &op_avgpool,
    &op_global_avgpool, &op_batchnorm, &op_softmax, &op_reduce_mean, NULL,
};
