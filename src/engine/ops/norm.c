/*
 * Operator descriptors of the norm family (see engine/op.h):
 * LayerNormalization (the ONNX op of opset 17; the optimizer's fused
 * ENG_OP_LAYERNORM is a separate op), InstanceNormalization,
 * LpNormalization and MeanVarianceNormalization.
 *
 * Each normalizes the elements of a reduced set (red_geom, reduce_int.h:
 * the dims from `axis` on, the spatial dims, one axis, the given axes)
 * by statistics computed over that set in double, then applies its scale
 * and bias. Guarantees: the variance is the biased one, computed in two
 * passes (never negative); scale and bias are read through broadcast
 * strides checked by shape inference, so no index leaves its tensor.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/op.h"
#include "engine/ops/reduce_int.h"

/* Mean and biased variance of the reduced set at `base`. */
static void moments(const red_geom *g, int dt, const void *x, int64_t base, double *mean,
                    double *var)
{
    double s = 0.0, q = 0.0;
    RED_WALK(g, base, s += elem_get_f(dt, x, off));
    double m = g->count > 0 ? s / (double)g->count : 0.0;
    RED_WALK(g, base, {
        double d = elem_get_f(dt, x, off) - m;
        q += d * d;
    });
    *mean = m;
    *var = g->count > 0 ? q / (double)g->count : 0.0;
}

/* Element strides of tensor t broadcast (numpy, right-aligned) onto
 * shape[rank]; false when it does not broadcast unidirectionally. */
static bool bcast_strides(const eng_tensor *t, int rank, const int64_t *shape, int64_t *strides)
{
    if (t->rank > rank) return false;
    int64_t step = 1;
    for (int d = rank - 1; d >= 0; d--) {
        int td = d - (rank - t->rank);
        if (td < 0) {
            strides[d] = 0;
            continue;
        }
        if (t->shape[td] == shape[d])
            strides[d] = shape[d] == 1 ? 0 : step;
        else if (t->shape[td] == 1)
            strides[d] = 0;
        else
            return false;
        step *= t->shape[td];
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* LayerNormalization */

static int parse_lnorm(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_lnorm_attrs *r = &a->reduce.lnorm;
    int rc;
    int64_t stash;
    if ((rc = eng_attr_int(c, "axis", -1, &r->axis)) < 0) return rc;
    if (r->axis < -ENG_MAX_RANK || r->axis >= ENG_MAX_RANK)
        return eng_attr_err(c, ROUSE_EFORMAT, "axis", "is out of range for any supported rank");
    if ((rc = eng_attr_finite(c, "epsilon", 1e-5f, &r->epsilon)) < 0) return rc;
    if (r->epsilon < 0) return eng_attr_err(c, ROUSE_EFORMAT, "epsilon", "must not be negative");
    if ((rc = eng_attr_int(c, "stash_type", 1, &stash)) < 0) return rc;
    if (stash != ENG_DT_FLOAT)
        return eng_attr_err(c, ROUSE_EUNSUPPORTED, "stash_type",
                            "must be 1 (float), the only precision supported");
    r->stash_type = (int)stash;
    return 0;
}

static int check_lnorm(const eng_node *n, rouse_errbuf *eb)
{
    const eng_lnorm_attrs *r = &n->attrs.reduce.lnorm;
    if (r->axis < -ENG_MAX_RANK || r->axis >= ENG_MAX_RANK || !isfinite(r->epsilon) ||
        r->epsilon < 0 || r->stash_type != ENG_DT_FLOAT)
        return eng_run_fail(n, eb, ROUSE_EFORMAT, "bad attributes");
    return 0;
}

/* Scale and bias must broadcast to the normalized dims of X. */
static int check_param(eng_infer_ctx *c, int i, int rank, const int64_t *shape)
{
    const eng_tensor *t = eng_infer_input(c, i);
    if (!t) return 0;
    int rc;
    if ((rc = eng_infer_same_dtype(c, 0, i)) < 0) return rc;
    int64_t st[ENG_MAX_RANK];
    if (!bcast_strides(t, rank, shape, st)) {
        char a[160], b[160];
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input '%s' of shape %s does not broadcast to the normalized "
                              "shape %s",
                              eng_infer_in_name(c, i), eng_shape_str(t->rank, t->shape, a, sizeof(a)),
                              eng_shape_str(rank, shape, b, sizeof(b)));
    }
    return 0;
}

static int infer_lnorm(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_lnorm_attrs *r = &c->res->reduce.lnorm;
    int rc;
    if ((rc = eng_infer_norm_axis(c, r->axis, x->rank, false, &r->axis)) < 0) return rc;
    int nr = x->rank - (int)r->axis;
    const int64_t *ns = x->shape + r->axis;
    if ((rc = check_param(c, 1, nr, ns)) < 0 || (rc = check_param(c, 2, nr, ns)) < 0) return rc;
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    int64_t st[ENG_MAX_RANK];
    for (int d = 0; d < x->rank; d++)
        st[d] = d < r->axis ? x->shape[d] : 1;
    eng_infer_set_out(c, 1, ENG_DT_FLOAT, x->rank, st);
    eng_infer_set_out(c, 2, ENG_DT_FLOAT, x->rank, st);
    return 0;
}

static int run_lnorm(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_lnorm_attrs *r = &a->reduce.lnorm;
    const eng_tensor *x = in[0], *scale = in[1], *bias = nd->n_in > 2 ? in[2] : NULL;
    if (r->axis < 0 || r->axis >= x->rank)
        return eng_run_fail(nd, eb, ROUSE_EINVAL, "axis is not resolved");
    int nr = x->rank - (int)r->axis;
    const int64_t *ns = x->shape + r->axis;
    int64_t sst[ENG_MAX_RANK], bst[ENG_MAX_RANK];
    if (!bcast_strides(scale, nr, ns, sst) || (bias && !bcast_strides(bias, nr, ns, bst)))
        return eng_run_fail(nd, eb, ROUSE_EMISMATCH, "scale or bias does not broadcast");
    bool red[ENG_MAX_RANK] = {false};
    for (int d = (int)r->axis; d < x->rank; d++)
        red[d] = true;
    red_geom g;
    red_geom_init(&g, x->rank, x->shape, red);
    int dt = x->dtype;
    int64_t outer = g.n_out, inner = g.count;
    eng_tensor *mo = nd->n_out > 1 ? out[1] : NULL, *io = nd->n_out > 2 ? out[2] : NULL;
    for (int64_t o = 0; o < outer; o++) {
        double mean, var;
        int64_t base = o * inner;
        moments(&g, dt, x->data, base, &mean, &var);
        double inv = 1.0 / sqrt(var + (double)r->epsilon);
        if (mo) ((float *)mo->data)[o] = (float)mean;
        if (io) ((float *)io->data)[o] = (float)inv;
        int64_t idx[ENG_MAX_RANK] = {0}, soff = 0, boff = 0, idx2[ENG_MAX_RANK] = {0};
        for (int64_t j = 0; j < inner; j++) {
            double v = (elem_get_f(dt, x->data, base + j) - mean) * inv;
            v *= elem_get_f(dt, scale->data, soff);
            if (bias) v += elem_get_f(dt, bias->data, boff);
            red_store_f(dt, out[0]->data, base + j, v);
            red_next(nr, ns, sst, idx, &soff);
            if (bias) red_next(nr, ns, bst, idx2, &boff);
        }
    }
    return 0;
}

static const eng_op_desc op_layer_normalization = {
    .op = ENG_OP_LAYER_NORMALIZATION,
    .name = "LayerNormalization",
    .since = 17,
    .min_in = 2,
    .max_in = 3,
    .max_out = 3,
    .in_names = {"X", "Scale", "B"},
    .dtypes = ENG_DTM_FLOATS,
    .parse = parse_lnorm,
    .check = check_lnorm,
    .infer = infer_lnorm,
    .run = run_lnorm,
};

/* ------------------------------------------------------------------ */
/* InstanceNormalization */

static int parse_inorm(const eng_attr_ctx *c, eng_attrs *a)
{
    int rc = eng_attr_finite(c, "epsilon", 1e-5f, &a->reduce.inorm.epsilon);
    if (rc < 0) return rc;
    if (a->reduce.inorm.epsilon < 0)
        return eng_attr_err(c, ROUSE_EFORMAT, "epsilon", "must not be negative");
    return 0;
}

static int check_inorm(const eng_node *n, rouse_errbuf *eb)
{
    float e = n->attrs.reduce.inorm.epsilon;
    if (!isfinite(e) || e < 0) return eng_run_fail(n, eb, ROUSE_EFORMAT, "bad attributes");
    return 0;
}

static int infer_inorm(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    int rc;
    if (x->rank < 2)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'input' must have at least 2 dims (N, C, ...), got %d",
                              x->rank);
    for (int i = 1; i <= 2; i++) {
        const eng_tensor *t = c->in[i];
        if ((rc = eng_infer_same_dtype(c, 0, i)) < 0) return rc;
        if (t->rank != 1 || t->shape[0] != x->shape[1])
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "input '%s' must hold one value per channel (%lld)",
                                  eng_infer_in_name(c, i), (long long)x->shape[1]);
    }
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

static int run_inorm(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_tensor *x = in[0], *scale = in[1], *bias = in[2];
    if (x->rank < 2 || eng_tensor_numel(scale) != x->shape[1] ||
        eng_tensor_numel(bias) != x->shape[1])
        return eng_run_fail(nd, eb, ROUSE_EMISMATCH, "scale or bias does not match the channels");
    bool red[ENG_MAX_RANK] = {false};
    for (int d = 2; d < x->rank; d++)
        red[d] = true;
    red_geom g;
    red_geom_init(&g, x->rank, x->shape, red);
    int dt = x->dtype;
    int64_t ch = x->shape[1], inner = eng_shape_numel(x->rank - 2, x->shape + 2);
    int64_t rows = x->shape[0] * ch;
    for (int64_t o = 0; o < rows; o++) {
        double mean, var;
        int64_t base = o * inner;
        moments(&g, dt, x->data, base, &mean, &var);
        double k = elem_get_f(dt, scale->data, o % ch) / sqrt(var + (double)a->reduce.inorm.epsilon);
        double b = elem_get_f(dt, bias->data, o % ch);
        for (int64_t j = 0; j < inner; j++)
            red_store_f(dt, out[0]->data, base + j, (elem_get_f(dt, x->data, base + j) - mean) * k + b);
    }
    return 0;
}

static const eng_op_desc op_instance_normalization = {
    .op = ENG_OP_INSTANCE_NORMALIZATION,
    .name = "InstanceNormalization",
    .since = 6,
    .min_in = 3,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"input", "scale", "B"},
    .dtypes = ENG_DTM_FLOATS,
    .parse = parse_inorm,
    .check = check_inorm,
    .infer = infer_inorm,
    .run = run_inorm,
};

/* ------------------------------------------------------------------ */
/* LpNormalization */

static int parse_lpnorm(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_lpnorm_attrs *r = &a->reduce.lpnorm;
    int rc;
    int64_t p;
    if ((rc = eng_attr_int(c, "axis", -1, &r->axis)) < 0) return rc;
    if (r->axis < -ENG_MAX_RANK || r->axis >= ENG_MAX_RANK)
        return eng_attr_err(c, ROUSE_EFORMAT, "axis", "is out of range for any supported rank");
    if ((rc = eng_attr_int(c, "p", 2, &p)) < 0) return rc;
    if (p != 1 && p != 2) return eng_attr_err(c, ROUSE_EFORMAT, "p", "must be 1 or 2");
    r->p = (int)p;
    return 0;
}

static int check_lpnorm(const eng_node *n, rouse_errbuf *eb)
{
    const eng_lpnorm_attrs *r = &n->attrs.reduce.lpnorm;
    if (r->axis < -ENG_MAX_RANK || r->axis >= ENG_MAX_RANK || (r->p != 1 && r->p != 2))
        return eng_run_fail(n, eb, ROUSE_EFORMAT, "bad attributes");
    return 0;
}

static int infer_lpnorm(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    int rc;
    if ((rc = eng_infer_norm_axis(c, c->res->reduce.lpnorm.axis, x->rank, false,
                                  &c->res->reduce.lpnorm.axis)) < 0)
        return rc;
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

/* y = x / ||x||_p along the axis; a zero norm gives 0 / 0 = NaN, as the
 * ONNX reference (numpy) does. */
static int run_lpnorm(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                      eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_lpnorm_attrs *r = &a->reduce.lpnorm;
    const eng_tensor *x = in[0];
    if (r->axis < 0 || r->axis >= x->rank)
        return eng_run_fail(nd, eb, ROUSE_EINVAL, "axis is not resolved");
    bool red[ENG_MAX_RANK] = {false};
    red[r->axis] = true;
    red_geom g;
    red_geom_init(&g, x->rank, x->shape, red);
    int dt = x->dtype;
    if (g.n_out == 0) return 0;
    int64_t kidx[ENG_MAX_RANK] = {0}, koff = 0;
    do {
        double s = 0.0;
        if (r->p == 1)
            RED_WALK(&g, koff, s += fabs(elem_get_f(dt, x->data, off)));
        else
            RED_WALK(&g, koff, s += elem_get_f(dt, x->data, off) * elem_get_f(dt, x->data, off));
        double norm = r->p == 1 ? s : sqrt(s);
        RED_WALK(&g, koff, red_store_f(dt, out[0]->data, off, elem_get_f(dt, x->data, off) / norm));
    } while (red_next(g.nk, g.kshape, g.kstride, kidx, &koff));
    return 0;
}

static const eng_op_desc op_lp_normalization = {
    .op = ENG_OP_LP_NORMALIZATION,
    .name = "LpNormalization",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"input"},
    .dtypes = ENG_DTM_FLOATS,
    .parse = parse_lpnorm,
    .check = check_lpnorm,
    .infer = infer_lpnorm,
    .run = run_lpnorm,
};

/* ------------------------------------------------------------------ */
/* MeanVarianceNormalization */

static int parse_mvn(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_mvn_attrs *r = &a->reduce.mvn;
    int rc;
    if ((rc = eng_attr_ints(c, "axes", ENG_MAX_RANK, &r->n_axes, r->axes)) < 0) return rc;
    if (r->n_axes < 0) {
        r->n_axes = 3;
        r->axes[0] = 0, r->axes[1] = 2, r->axes[2] = 3;
    }
    for (int i = 0; i < r->n_axes; i++)
        if (r->axes[i] < -ENG_MAX_RANK || r->axes[i] >= ENG_MAX_RANK)
            return eng_attr_err(c, ROUSE_EFORMAT, "axes",
                                "has a value out of range for any supported rank");
    return 0;
}

static int check_mvn(const eng_node *n, rouse_errbuf *eb)
{
    const eng_mvn_attrs *r = &n->attrs.reduce.mvn;
    if (r->n_axes < 0 || r->n_axes > ENG_MAX_RANK)
        return eng_run_fail(n, eb, ROUSE_EFORMAT, "bad attributes");
    for (int i = 0; i < r->n_axes; i++)
        if (r->axes[i] < -ENG_MAX_RANK || r->axes[i] >= ENG_MAX_RANK)
            return eng_run_fail(n, eb, ROUSE_EFORMAT, "bad attributes");
    return 0;
}

static int infer_mvn(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_mvn_attrs *r = &c->res->reduce.mvn;
    bool seen[ENG_MAX_RANK] = {false};
    int rc;
    for (int i = 0; i < r->n_axes; i++) {
        int64_t ax;
        if ((rc = eng_infer_norm_axis(c, r->axes[i], x->rank, false, &ax)) < 0) return rc;
        if (seen[ax])
            return eng_infer_fail(c, ROUSE_EFORMAT, "axis %lld is given twice",
                                  (long long)r->axes[i]);
        seen[ax] = true;
    }
    int k = 0;
    for (int d = 0; d < x->rank; d++)
        if (seen[d]) r->axes[k++] = d;
    r->n_axes = k;
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

/* y = (x - mean) / (sqrt(variance) + 1e-9), the function body of the ONNX
 * op. */
static int run_mvn(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                   eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_mvn_attrs *r = &a->reduce.mvn;
    const eng_tensor *x = in[0];
    bool red[ENG_MAX_RANK] = {false};
    for (int i = 0; i < r->n_axes; i++) {
        if (r->axes[i] < 0 || r->axes[i] >= x->rank)
            return eng_run_fail(nd, eb, ROUSE_EINVAL, "axes are not resolved");
        red[r->axes[i]] = true;
    }
    red_geom g;
    red_geom_init(&g, x->rank, x->shape, red);
    int dt = x->dtype;
    if (g.n_out == 0) return 0;
    int64_t kidx[ENG_MAX_RANK] = {0}, koff = 0;
    do {
        double mean, var;
        moments(&g, dt, x->data, koff, &mean, &var);
        double d = sqrt(var) + 1e-9;
        RED_WALK(&g, koff, red_store_f(dt, out[0]->data, off, (elem_get_f(dt, x->data, off) - mean) / d));
    } while (red_next(g.nk, g.kshape, g.kstride, kidx, &koff));
    return 0;
}

static const eng_op_desc op_mean_variance_normalization = {
    .op = ENG_OP_MEAN_VARIANCE_NORMALIZATION,
    .name = "MeanVarianceNormalization",
    .since = 9,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = ENG_DTM_FLOATS,
    .parse = parse_mvn,
    .check = check_mvn,
    .infer = infer_mvn,
    .run = run_mvn,
};

const eng_op_desc *const eng_ops_norm[] = {
    &op_layer_normalization,
    &op_instance_normalization,
    &op_lp_normalization,
    &op_mean_variance_normalization,
    NULL,
};
