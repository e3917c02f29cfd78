/*
 * Operator descriptors of the activation family (see engine/op.h):
 * HardSigmoid, HardSwish, Elu, Selu, Celu, Softplus, Softsign,
 * ThresholdedRelu, Shrink, Mish, PRelu (slope broadcast to X), LogSoftmax
 * and Hardmax (with the 2-D coercion of opsets before 13).
 *
 * Guarantees: outputs have X's shape and type; float math is computed in
 * double and rounded once to the element type; Softplus and LogSoftmax do
 * not overflow for large inputs; Hardmax marks the first maximum of a row.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/op.h"
#include "engine/ops/elem.h"
#include "engine/ref/ref_util.h"

static int infer_same(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

/* --- point-wise activations ------------------------------------------------ */

/* The activations that can be fused after a Conv or Gemm share their
 * definition with the post-op reference (ref_act_f64). */
static double act_eval(eng_op op, const eng_act_params *p, double x)
{
    switch (op) {
    case ENG_OP_HARD_SIGMOID:
    case ENG_OP_HARD_SWISH:
    case ENG_OP_ELU:
    case ENG_OP_SOFTPLUS:
    case ENG_OP_MISH:
        return ref_act_f64(op, p->alpha, p->beta, x);
    case ENG_OP_SELU:
        return x <= 0 ? p->gamma * p->alpha * expm1(x) : p->gamma * x;
    case ENG_OP_CELU:
        return (x > 0 ? x : 0) + fmin(0.0, p->alpha * expm1(x / p->alpha));
    case ENG_OP_SOFTSIGN:
        return x / (1.0 + fabs(x));
    case ENG_OP_THRESHOLDED_RELU:
        return x > p->alpha ? x : 0;
    case ENG_OP_SHRINK:
        return x < -p->beta ? x + p->alpha : x > p->beta ? x - p->alpha : 0;
    default:
        return x;
    }
}

static int run_act(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                   eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)eb;
    const eng_tensor *x = in[0];
    const eng_act_params *p = &a->act.params;
    int64_t n = eng_tensor_numel(x);
    if (x->dtype == ENG_DT_FLOAT) {
        const float *xs = x->data;
        float *ys = out[0]->data;
        for (int64_t i = 0; i < n; i++)
            ys[i] = (float)act_eval(nd->op, p, xs[i]);
        return 0;
    }
    /* Shrink on integers: the shifted value truncated back, as numpy's astype. */
    for (int64_t i = 0; i < n; i++)
        elem_set_f(x->dtype, out[0]->data, i,
                   act_eval(nd->op, p, elem_get_f(x->dtype, x->data, i)));
    return 0;
}

/* Defaults of each op's float attributes, and which ones it reads. */
static int parse_params(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_act_params *p = &a->act.params;
    int rc = 0;
    switch (c->n->op) {
    case ENG_OP_HARD_SIGMOID:
        if ((rc = eng_attr_finite(c, "alpha", 0.2f, &p->alpha)) < 0) return rc;
        return eng_attr_finite(c, "beta", 0.5f, &p->beta);
    case ENG_OP_ELU:
    case ENG_OP_CELU:
    case ENG_OP_THRESHOLDED_RELU:
        if ((rc = eng_attr_finite(c, "alpha", 1.0f, &p->alpha)) < 0) return rc;
        if (c->n->op == ENG_OP_CELU && p->alpha == 0.0f)
            return eng_attr_err(c, ROUSE_EFORMAT, "alpha", "must not be 0");
        return 0;
    case ENG_OP_SELU:
        if ((rc = eng_attr_finite(c, "alpha", 1.67326319217681884765625f, &p->alpha)) < 0)
            return rc;
        return eng_attr_finite(c, "gamma", 1.05070102214813232421875f, &p->gamma);
    case ENG_OP_SHRINK:
        if ((rc = eng_attr_finite(c, "bias", 0.0f, &p->alpha)) < 0) return rc;
        return eng_attr_finite(c, "lambd", 0.5f, &p->beta);
    default:
        return 0;
    }
}

static int check_params(const eng_node *n, rouse_errbuf *eb)
{
    const eng_act_params *p = &n->attrs.act.params;
    if (!isfinite(p->alpha) || !isfinite(p->beta) || !isfinite(p->gamma) ||
        (n->op == ENG_OP_CELU && p->alpha == 0.0f))
        return rouse_err_set(eb, ROUSE_EFORMAT, "node '%s' (%s): bad attribute values", n->name,
                             eng_op_name(n->op));
    return 0;
}

/* --- PRelu ------------------------------------------------------------------ */

static int infer_prelu(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *s = c->in[1];
    int rc = eng_infer_same_dtype(c, 0, 1);
    if (rc < 0) return rc;
    int r;
    int64_t y[ENG_MAX_RANK];
    if (!eng_broadcast_shapes(x->rank, x->shape, s->rank, s->shape, &r, y) ||
        !eng_shape_equal(r, y, x->rank, x->shape)) {
        char sx[160], ss[160];
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'slope' %s does not broadcast to 'X' %s",
                              eng_shape_str(s->rank, s->shape, ss, sizeof(ss)),
                              eng_shape_str(x->rank, x->shape, sx, sizeof(sx)));
    }
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

static int run_prelu(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    const int dt = in[0]->dtype;
    elem_walk w;
    int rc = elem_walk_init(&w, out[0], 2, in);
    if (rc < 0) return eng_run_fail(nd, eb, rc, "input 'slope' does not broadcast to 'X'");
    const void *px = in[0]->data, *ps = in[1]->data;
    void *py = out[0]->data;
    switch (elem_kind(dt)) {
    case ELEM_FLOAT:
        for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w)) {
            double v = elem_get_f(dt, px, w.off[1]);
            elem_set_f(dt, py, w.off[0], v < 0 ? elem_get_f(dt, ps, w.off[2]) * v : v);
        }
        return 0;
    case ELEM_SIGNED:
        for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w)) {
            int64_t v = elem_get_i(dt, px, w.off[1]);
            uint64_t r = v < 0 ? (uint64_t)elem_get_i(dt, ps, w.off[2]) * (uint64_t)v : (uint64_t)v;
            elem_set_u(dt, py, w.off[0], r);
        }
        return 0;
    default: /* unsigned: never negative */
        for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w))
            elem_set_u(dt, py, w.off[0], elem_get_u(dt, px, w.off[1]));
        return 0;
    }
}

/* --- LogSoftmax, Hardmax ---------------------------------------------------- */

static int parse_axis(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_act_axis *ax = &a->act.axis;
    ax->legacy = c->n->opset < 13;
    return eng_attr_int(c, "axis", ax->legacy ? 1 : -1, &ax->axis);
}

static int check_axis(const eng_node *n, rouse_errbuf *eb)
{
    const eng_act_axis *ax = &n->attrs.act.axis;
    if (ax->axis >= -ENG_MAX_RANK && ax->axis < ENG_MAX_RANK && (ax->legacy & ~1) == 0) return 0;
    return rouse_err_set(eb, ROUSE_EFORMAT, "node '%s' (%s): attribute 'axis' %lld is out of range",
                         n->name, eng_op_name(n->op), (long long)ax->axis);
}

static int infer_axis(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_act_axis *ax = &c->res->act.axis;
    /* The legacy 2-D coercion accepts axis == rank (one row of all). */
    int rc = eng_infer_norm_axis(c, ax->axis, x->rank, ax->legacy != 0, &ax->axis);
    if (rc < 0) return rc;
    if (x->rank == 0)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'input' must have rank 1 or more");
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

/* Rows of the op: `outer` groups of `len` elements spaced `inner` apart. */
static void axis_geometry(const eng_tensor *x, const eng_act_axis *ax, int64_t *outer, int64_t *len,
                          int64_t *inner)
{
    int64_t o = 1, l = 1, i = 1;
    for (int d = 0; d < x->rank; d++) {
        if (d < ax->axis)
            o *= x->shape[d];
        else if (d == ax->axis || ax->legacy)
            l *= x->shape[d];
        else
            i *= x->shape[d];
    }
    *outer = o;
    *len = l;
    *inner = i;
}

static int run_axis_op(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                       eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)eb;
    const eng_tensor *x = in[0];
    const int dt = x->dtype;
    void *py = out[0]->data;
    int64_t outer, len, inner;
    axis_geometry(x, &a->act.axis, &outer, &len, &inner);
    if (len == 0) return 0;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            const int64_t base = o * len * inner + i;
            double mx = elem_get_f(dt, x->data, base);
            int64_t arg = 0;
            for (int64_t k = 1; k < len; k++) {
                double v = elem_get_f(dt, x->data, base + k * inner);
                if (v > mx) {
                    mx = v;
                    arg = k;
                }
            }
            if (nd->op == ENG_OP_HARDMAX) {
                for (int64_t k = 0; k < len; k++)
                    elem_set_f(dt, py, base + k * inner, k == arg ? 1.0 : 0.0);
                continue;
            }
            double sum = 0;
            for (int64_t k = 0; k < len; k++)
                sum += exp(elem_get_f(dt, x->data, base + k * inner) - mx);
            double lse = mx + log(sum);
            for (int64_t k = 0; k < len; k++)
                elem_set_f(dt, py, base + k * inner,
                           elem_get_f(dt, x->data, base + k * inner) - lse);
        }
    }
    return 0;
}

/* --- descriptors ------------------------------------------------------------ */

#define ACT_DESC(var, OP, NAME, SINCE, TYPES)                                                      \
    static const eng_op_desc var = {                                                               \
        .op = OP,                                                                                  \
        .name = NAME,                                                                              \
        .since = SINCE,                                                                            \
        .min_in = 1,                                                                               \
        .max_in = 1,                                                                               \
        .max_out = 1,                                                                              \
        .in_names = {"X"},                                                                         \
        .dtypes = TYPES,                                                                           \
        .parse = parse_params,                                                                     \
        .check = check_params,                                                                     \
        .infer = infer_same,                                                                       \
        .run = run_act,                                                                            \
    }

ACT_DESC(op_hard_sigmoid, ENG_OP_HARD_SIGMOID, "HardSigmoid", 6, ENG_DTM_FLOATS);
ACT_DESC(op_hard_swish, ENG_OP_HARD_SWISH, "HardSwish", 14, ENG_DTM_FLOATS);
ACT_DESC(op_elu, ENG_OP_ELU, "Elu", 6, ENG_DTM_FLOATS);
ACT_DESC(op_selu, ENG_OP_SELU, "Selu", 6, ENG_DTM_FLOATS);
ACT_DESC(op_celu, ENG_OP_CELU, "Celu", 12, ENG_DTM_FLOATS);
ACT_DESC(op_softplus, ENG_OP_SOFTPLUS, "Softplus", 1, ENG_DTM_FLOATS);
ACT_DESC(op_softsign, ENG_OP_SOFTSIGN, "Softsign", 1, ENG_DTM_FLOATS);
ACT_DESC(op_thresholded_relu, ENG_OP_THRESHOLDED_RELU, "ThresholdedRelu", 10, ENG_DTM_FLOATS);
ACT_DESC(op_shrink, ENG_OP_SHRINK, "Shrink", 9, ENG_DTM_NUMERIC);
ACT_DESC(op_mish, ENG_OP_MISH, "Mish", 18, ENG_DTM_FLOATS);
#undef ACT_DESC

/* Opset 6's slope had X's shape or one element, both special cases of the
 * unidirectional broadcast of opset 7; 9 added integers. */
static const eng_op_desc op_prelu = {
    .op = ENG_OP_PRELU,
    .name = "PRelu",
    .since = 6,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"X", "slope"},
    .dtypes = ENG_DTM_FLOATS | ENG_DTM(INT32) | ENG_DTM(INT64) | ENG_DTM(UINT32) | ENG_DTM(UINT64),
    .infer = infer_prelu,
    .run = run_prelu,
};

static const eng_op_desc op_log_softmax = {
    .op = ENG_OP_LOG_SOFTMAX,
    .name = "LogSoftmax",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"input"},
    .dtypes = ENG_DTM_FLOATS,
    .parse = parse_axis,
    .check = check_axis,
    .infer = infer_axis,
    .run = run_axis_op,
};

static const eng_op_desc op_hardmax = {
    .op = ENG_OP_HARDMAX,
    .name = "Hardmax",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"input"},
    .dtypes = ENG_DTM_FLOATS,
    .parse = parse_axis,
    .check = check_axis,
    .infer = infer_axis,
    .run = run_axis_op,
};

const eng_op_desc *const eng_ops_act[] = {
    &op_hard_sigmoid, &op_hard_swish, &op_elu,      &op_selu,
    &op_celu,         &op_softplus,   &op_softsign, &op_thresholded_relu,
    &op_shrink,       &op_mish,       &op_prelu,    &op_log_softmax,
    &op_hardmax,      NULL,
};
