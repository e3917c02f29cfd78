/*
 * Operator descriptors of the optimizer's fused ops (see engine/op.h):
 * LayerNorm and Gelu, made from the patterns exporters write (optimize.c).
 * They are internal: a model cannot name them (ONNX's own
 * LayerNormalization and Gelu have more inputs and attributes).
 *
 * Guarantees: LayerNorm's axis is normalized by shape inference and its
 * epsilon is finite in any record that passes the check.
 */
#include <math.h>

#include "engine/op.h"
#include "engine/ops/ops_int.h"
#include "engine/ref/ref.h"

static int check_layernorm(const eng_node *n, rouse_errbuf *eb)
{
    if (!isfinite(n->attrs.norm.epsilon))
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "epsilon", "must be finite");
    return 0;
}

/* LayerNorm: scale and bias hold one value, or one per element of the
 * last dim (they broadcast along it). */
static int infer_layernorm(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    struct ops_shapebuf sb;
    int rc;
    if (x->rank < 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'X' must have rank >= 1, got a scalar");
    if ((rc = eng_infer_norm_axis(c, c->res->norm.axis, x->rank, false, &c->res->norm.axis)) < 0)
        return rc;
    for (int i = 1; i < c->n->n_in; i++) {
        const eng_tensor *p = c->in[i];
        if (!p) continue;
        if ((rc = eng_infer_same_dtype(c, i, 0)) < 0) return rc;
        int64_t cnt = eng_tensor_numel(p);
        if (p->rank > 1 || (cnt != 1 && cnt != x->shape[x->rank - 1]))
            return eng_infer_fail(c, ROUSE_EMISMATCH, "input '%s' has shape %s, input 'X' has %s",
                                  eng_infer_in_name(c, i), ops_shp(&sb, 0, p->rank, p->shape),
                                  ops_shp(&sb, 1, x->rank, x->shape));
    }
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

static int infer_same(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

static int run_layernorm(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                         eng_tensor *const *out, rouse_errbuf *eb)
{
    int rc = ref_layernorm(a->norm.axis, a->norm.epsilon, in[0], n->n_in > 1 ? in[1] : NULL,
                           n->n_in > 2 ? in[2] : NULL, out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_gelu(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                    eng_tensor *const *out, rouse_errbuf *eb)
{
    int rc = ref_unary(n->op, a, in[0], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

/* (x, scale?, bias?): attrs.norm. */
static const eng_op_desc op_layernorm = {
    .op = ENG_OP_LAYERNORM,
    .name = "LayerNormalization",
    .since = 1,
    .internal = true,
    .min_in = 1,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"X", "scale", "bias"},
    .dtypes = ENG_DTM(FLOAT),
    .check = check_layernorm,
    .infer = infer_layernorm,
    .run = run_layernorm,
};

/* x * 0.5 * (1 + erf(x / sqrt(2))) */
static const eng_op_desc op_gelu = {
    .op = ENG_OP_GELU,
    .name = "Gelu",
    .since = 1,
    .internal = true,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = ENG_DTM(FLOAT),
    .infer = infer_same,
    .run = run_gelu,
};

const eng_op_desc *const eng_ops_fused[] = {
    &op_layernorm,
    &op_gelu,
    NULL,
};
