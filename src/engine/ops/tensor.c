/*
 * Operator descriptors of the data-movement ops that predate the families
 * (see engine/op.h): Flatten, Reshape, Transpose, Concat, Identity,
 * Dropout (inference), Constant, Gather, Unsqueeze and Squeeze. Most are
 * views or copies of their input's bytes; exec.c makes the view ops free.
 *
 * Guarantees: a stored Transpose record holds a permutation; Unsqueeze
 * and Squeeze axes come from the attribute before opset 13 and from input
 * 1 since (known at prepare); Gather checks every index at run time.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/op.h"
#include "engine/ops/ops_int.h"
#include "engine/ref/ref.h"

/* --- attributes ----------------------------------------------------------- */

static int parse_flatten(const eng_attr_ctx *c, eng_attrs *a)
{
    return eng_attr_int(c, "axis", 1, &a->axis.axis);
}

static int parse_gather(const eng_attr_ctx *c, eng_attrs *a)
{
    return eng_attr_int(c, "axis", 0, &a->axis.axis);
}

static int parse_concat(const eng_attr_ctx *c, eng_attrs *a)
{
    /* Concat-1 defaulted to axis 1; from opset 4 the axis is required. */
    if (c->n->opset < 4) return eng_attr_int(c, "axis", 1, &a->axis.axis);
    if (!eng_attr_find(c, "axis")) return eng_attr_err(c, ROUSE_EFORMAT, "axis", "is required");
    return eng_attr_int(c, "axis", 0, &a->axis.axis);
}

/* Flatten, Concat, Gather: an axis alone (legacy is Softmax's). */
static int check_axis(const eng_node *n, rouse_errbuf *eb)
{
    if (!ops_bool_valid(&n->attrs.axis.legacy) || n->attrs.axis.legacy)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "axis", "has a bad form");
    return 0;
}

static int parse_reshape(const eng_attr_ctx *c, eng_attrs *a)
{
    if (c->n->opset >= 14) return eng_attr_flag(c, "allowzero", 0, &a->reshape.allowzero);
    return 0;
}

static int check_reshape(const eng_node *n, rouse_errbuf *eb)
{
    int v = n->attrs.reshape.allowzero;
    if (v != 0 && v != 1)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "allowzero", "must be 0 or 1, got %d", v);
    return 0;
}

static int parse_transpose(const eng_attr_ctx *c, eng_attrs *at)
{
    eng_transpose_attrs *a = &at->transpose;
    int n, rc;
    if ((rc = eng_attr_ints(c, "perm", ENG_MAX_RANK, &n, a->perm)) < 0) return rc;
    a->n_perm = n < 0 ? 0 : n;
    return 0;
}

static int check_transpose(const eng_node *n, rouse_errbuf *eb)
{
    const eng_transpose_attrs *a = &n->attrs.transpose;
    bool seen[ENG_MAX_RANK] = {false};
    if (a->n_perm < 0 || a->n_perm > ENG_MAX_RANK)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "perm", "has %d values", a->n_perm);
    for (int i = 0; i < a->n_perm; i++) {
        if (a->perm[i] < 0 || a->perm[i] >= a->n_perm || seen[a->perm[i]])
            return eng_check_fail(n, eb, ROUSE_EFORMAT, "perm", "is not a permutation");
        seen[a->perm[i]] = true;
    }
    return 0;
}

static int parse_dropout(const eng_attr_ctx *c, eng_attrs *a)
{
    a->dropout.ratio = 0.5f;
    if (c->n->opset >= 12) return 0; /* input 1 since */
    return eng_attr_finite(c, "ratio", 0.5f, &a->dropout.ratio);
}

static int check_dropout(const eng_node *n, rouse_errbuf *eb)
{
    float r = n->attrs.dropout.ratio;
    if (!isfinite(r)) return eng_check_fail(n, eb, ROUSE_EFORMAT, "ratio", "must be finite");
    if (r < 0 || r >= 1) return eng_check_fail(n, eb, ROUSE_EFORMAT, "ratio", "must be in [0, 1)");
    return 0;
}

/* Unsqueeze and Squeeze: axes are the attribute before opset 13, input 1
 * since. Range and duplicate checks need the input rank and happen in
 * shape inference. */
static int parse_axes(const eng_attr_ctx *c, eng_attrs *at)
{
    eng_axes_attrs *a = &at->axes;
    a->n_axes = -1;
    a->keepdims = 1;
    if (c->n->opset >= 13) return 0;
    return eng_attr_ints(c, "axes", ENG_MAX_RANK, &a->n_axes, a->axes);
}

static int check_axes(const eng_node *n, rouse_errbuf *eb)
{
    const eng_axes_attrs *a = &n->attrs.axes;
    if (a->n_axes < -1 || a->n_axes > ENG_MAX_RANK)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "axes", "has %d values", a->n_axes);
    if (a->keepdims != 1) return eng_check_fail(n, eb, ROUSE_EFORMAT, "axes", "has a bad form");
    if (n->opset >= 13) {
        if (a->n_axes != -1)
            return eng_check_fail(n, eb, ROUSE_EFORMAT, "axes", "is an input since opset 13");
        return 0;
    }
    if (n->op == ENG_OP_UNSQUEEZE && a->n_axes < 0)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "axes", "is required");
    if (n->op == ENG_OP_UNSQUEEZE && a->n_axes == 0)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "axes", "must not be empty");
    /* Negative axes arrived in opset 11. */
    for (int i = 0; n->opset < 11 && i < a->n_axes; i++)
        if (a->axes[i] < 0)
            return eng_check_fail(n, eb, ROUSE_EFORMAT, "axes",
                                  "must not be negative before opset 11");
    return 0;
}

/* --- shape inference ------------------------------------------------------ */

static int infer_same(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

/* Constant nodes become constants when the graph is built. */
static int infer_constant(eng_infer_ctx *c)
{
    return eng_infer_fail(c, ROUSE_EINTERNAL, "Constant nodes are folded when the graph is built");
}

static int infer_flatten(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    int64_t axis = 0;
    int rc;
    if ((rc = eng_infer_norm_axis(c, c->res->axis.axis, x->rank, true, &axis)) < 0) return rc;
    c->res->axis.axis = axis;
    /* Each part is checked on its own: the whole may be empty (a zero dim)
     * while one side alone overflows. */
    int64_t y[2] = {eng_shape_numel((int)axis, x->shape),
                    eng_shape_numel(x->rank - (int)axis, x->shape + axis)};
    if (y[0] < 0 || y[1] < 0)
        return eng_infer_fail(c, ROUSE_ETOOBIG, "flattened shape overflows int64");
    eng_infer_set_out(c, 0, x->dtype, 2, y);
    return 0;
}

static int infer_reshape(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *s = c->in[1];
    bool allowzero = c->n->opset >= 14 && c->res->reshape.allowzero;
    struct ops_shapebuf sb;

    if (s->dtype != ENG_DT_INT64)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'shape' must be int64, got %s",
                              eng_dtype_name(s->dtype));
    if (s->rank != 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'shape' must be 1-D, got %s",
                              ops_shp(&sb, 0, s->rank, s->shape));
    if (!s->data)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                              "shape input must be a constant or a graph input");
    if (s->shape[0] > ENG_MAX_RANK)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED, "output rank %lld exceeds the maximum %d",
                              (long long)s->shape[0], ENG_MAX_RANK);

    int r = (int)s->shape[0], infer_at = -1;
    int64_t y[ENG_MAX_RANK], known = 1;
    bool has_zero = false;
    for (int i = 0; i < r; i++) {
        int64_t v;
        memcpy(&v, (const char *)s->data + (size_t)i * sizeof(v), sizeof(v));
        if (v == -1) {
            if (infer_at >= 0)
                return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'shape' has more than one -1");
            infer_at = i;
            y[i] = 1;
            continue;
        }
        if (v < -1)
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "input 'shape' has invalid value %lld at index %d", (long long)v,
                                  i);
        if (v == 0 && !allowzero) {
            if (i >= x->rank)
                return eng_infer_fail(
                    c, ROUSE_EMISMATCH,
                    "input 'shape' copies dim %d (value 0) but input 'data' %s has rank "
                    "%d",
                    i, ops_shp(&sb, 0, x->rank, x->shape), x->rank);
            v = x->shape[i];
        }
        if (v == 0) has_zero = true;
        y[i] = v;
        if (__builtin_mul_overflow(known, v, &known))
            return eng_infer_fail(c, ROUSE_ETOOBIG,
                                  "input 'shape' describes more than 2^63 elements");
    }
    if (allowzero && has_zero && infer_at >= 0)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'shape' has both 0 and -1 with allowzero=1");

    int64_t total = eng_tensor_numel(x);
    if (infer_at >= 0) {
        if (known == 0 || total % known)
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "cannot reshape input 'data' %s (%lld elements): -1 "
                                  "cannot be inferred",
                                  ops_shp(&sb, 0, x->rank, x->shape), (long long)total);
        y[infer_at] = total / known;
    } else if (known != total) {
        return eng_infer_fail(
            c, ROUSE_EMISMATCH, "cannot reshape input 'data' %s (%lld elements) to %s",
            ops_shp(&sb, 0, x->rank, x->shape), (long long)total, ops_shp(&sb, 1, r, y));
    }
    eng_infer_set_out(c, 0, x->dtype, r, y);
    return 0;
}

static int infer_transpose(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_transpose_attrs *a = &c->res->transpose;

    if (a->n_perm == 0) {
        a->n_perm = x->rank;
        for (int i = 0; i < x->rank; i++)
            a->perm[i] = x->rank - 1 - i;
    } else if (a->n_perm != x->rank) {
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "attribute 'perm' has %d values, input 'data' has rank %d", a->n_perm,
                              x->rank);
    }
    int64_t y[ENG_MAX_RANK];
    bool seen[ENG_MAX_RANK] = {false};
    for (int i = 0; i < x->rank; i++) {
        /* Parsing validated the permutation; a hand-built node may not have been. */
        if (a->perm[i] < 0 || a->perm[i] >= x->rank || seen[a->perm[i]])
            return eng_infer_fail(c, ROUSE_EFORMAT, "attribute 'perm' is not a permutation");
        seen[a->perm[i]] = true;
        y[i] = x->shape[a->perm[i]];
    }
    eng_infer_set_out(c, 0, x->dtype, x->rank, y);
    return 0;
}

static int infer_concat(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    struct ops_shapebuf sb;
    int64_t axis = 0;
    int rc;

    if (x->rank < 1) return eng_infer_fail(c, ROUSE_EMISMATCH, "cannot concatenate scalars");
    if ((rc = eng_infer_norm_axis(c, c->res->axis.axis, x->rank, false, &axis)) < 0) return rc;
    c->res->axis.axis = axis;
    int64_t y[ENG_MAX_RANK];
    memcpy(y, x->shape, sizeof(y[0]) * (size_t)x->rank);
    for (int i = 1; i < c->n->n_in; i++) {
        const eng_tensor *t = c->in[i];
        if ((rc = eng_infer_same_dtype(c, i, 0)) < 0) return rc;
        bool ok = t->rank == x->rank;
        for (int d = 0; ok && d < x->rank; d++)
            ok = d == axis || t->shape[d] == x->shape[d];
        if (!ok)
            return eng_infer_fail(
                c, ROUSE_EMISMATCH, "input '%s' %s does not match input '%s' %s off axis %lld",
                eng_infer_in_name(c, i), ops_shp(&sb, 0, t->rank, t->shape),
                eng_infer_in_name(c, 0), ops_shp(&sb, 1, x->rank, x->shape), (long long)axis);
        if (__builtin_add_overflow(y[axis], t->shape[axis], &y[axis]))
            return eng_infer_fail(c, ROUSE_ETOOBIG, "concatenated dim overflows int64");
    }
    eng_infer_set_out(c, 0, x->dtype, x->rank, y);
    return 0;
}

static int infer_dropout(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *ratio = eng_infer_input(c, 1), *mode = eng_infer_input(c, 2);
    struct ops_shapebuf sb;
    double v;

    if (ratio) {
        if (ratio->rank > 1 || eng_tensor_numel(ratio) != 1)
            return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'ratio' must be a scalar, got %s",
                                  ops_shp(&sb, 0, ratio->rank, ratio->shape));
        /* The ratio does not affect inference; keep it when known for
         * completeness. */
        if ((ratio->dtype == ENG_DT_FLOAT || ratio->dtype == ENG_DT_DOUBLE) &&
            eng_infer_read_scalar(c, 1, &v))
            c->res->dropout.ratio = (float)v;
    }
    if (mode) {
        if (mode->dtype != ENG_DT_BOOL || mode->rank > 1 || eng_tensor_numel(mode) != 1)
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "input 'training_mode' must be a bool scalar");
        /* Training mode drops at random, except with ratio 0, where it is
         * the identity (and the mask all true). */
        if (eng_infer_read_scalar(c, 2, &v) && v != 0 && c->res->dropout.ratio != 0.0f)
            return eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                                  "training_mode = true with ratio %g drops at random and is not "
                                  "supported for inference",
                                  (double)c->res->dropout.ratio);
    }
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    /* The mask became bool in opset 10; before that it had the data's type. */
    eng_infer_set_out(c, 1, c->n->opset >= 10 ? ENG_DT_BOOL : x->dtype, x->rank, x->shape);
    return 0;
}

static int infer_gather(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *idx = c->in[1];
    struct ops_shapebuf sb;
    int64_t axis = 0;
    int rc;

    if (eng_dtype_size(x->dtype) == 0)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                              "element type %s of input 'data' is not supported",
                              eng_dtype_name(x->dtype));
    if (idx->dtype != ENG_DT_INT64 && idx->dtype != ENG_DT_INT32)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'indices' must be int32 or int64, got %s",
                              eng_dtype_name(idx->dtype));
    if (x->rank < 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'data' must have rank >= 1, got a scalar");
    if ((rc = eng_infer_norm_axis(c, c->res->axis.axis, x->rank, false, &axis)) < 0) return rc;
    c->res->axis.axis = axis;
    int r = x->rank - 1 + idx->rank;
    if (r > ENG_MAX_RANK)
        return eng_infer_fail(
            c, ROUSE_EUNSUPPORTED,
            "output rank %d (input 'data' %s, input 'indices' %s) exceeds the maximum %d", r,
            ops_shp(&sb, 0, x->rank, x->shape), ops_shp(&sb, 1, idx->rank, idx->shape),
            ENG_MAX_RANK);
    if (x->shape[axis] == 0 && eng_tensor_numel(idx) > 0)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'data' %s is empty along axis %lld",
                              ops_shp(&sb, 0, x->rank, x->shape), (long long)axis);
    int64_t y[ENG_MAX_RANK];
    int k = 0;
    for (int d = 0; d < axis; d++)
        y[k++] = x->shape[d];
    for (int d = 0; d < idx->rank; d++)
        y[k++] = idx->shape[d];
    for (int d = (int)axis + 1; d < x->rank; d++)
        y[k++] = x->shape[d];
    eng_infer_set_out(c, 0, x->dtype, r, y);
    return 0;
}

/* Unsqueeze/Squeeze axes: the attribute before opset 13, input 1 since
 * (which must be known while preparing, like Reshape's shape). */
static int axes_from_input(eng_infer_ctx *c)
{
    const eng_tensor *t = eng_infer_input(c, 1);
    eng_axes_attrs *a = &c->res->axes;
    struct ops_shapebuf sb;
    if (c->n->opset < 13 || !t) return 0;
    if (t->dtype != ENG_DT_INT64)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'axes' must be int64, got %s",
                              eng_dtype_name(t->dtype));
    if (t->rank > 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'axes' must be 1-D, got %s",
                              ops_shp(&sb, 0, t->rank, t->shape));
    int64_t n = eng_tensor_numel(t);
    if (n > ENG_MAX_RANK)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                              "input 'axes' has %lld values, at most %d are supported",
                              (long long)n, ENG_MAX_RANK);
    if (!t->data)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                              "input 'axes' must be a constant or a graph input");
    memcpy(a->axes, t->data, sizeof(int64_t) * (size_t)n); /* may be unaligned */
    a->n_axes = (int)n;
    return 0;
}

static int infer_unsqueeze(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_axes_attrs *a = &c->res->axes;
    int rc;

    if ((rc = axes_from_input(c)) < 0) return rc;
    if (a->n_axes <= 0) return eng_infer_fail(c, ROUSE_EMISMATCH, "axes must not be empty");
    int r = x->rank + a->n_axes;
    if (r > ENG_MAX_RANK)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED, "output rank %d exceeds the maximum %d", r,
                              ENG_MAX_RANK);
    if ((rc = ops_norm_axes(c, "axis", a->axes, a->n_axes, r)) < 0) return rc;
    int64_t y[ENG_MAX_RANK];
    for (int d = 0, k = 0, s = 0; d < r; d++) {
        if (k < a->n_axes && a->axes[k] == d) {
            y[d] = 1;
            k++;
        } else {
            y[d] = x->shape[s++];
        }
    }
    eng_infer_set_out(c, 0, x->dtype, r, y);
    return 0;
}

static int infer_squeeze(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_axes_attrs *a = &c->res->axes;
    struct ops_shapebuf sb;
    int rc;

    if ((rc = axes_from_input(c)) < 0) return rc;
    if (a->n_axes <= 0) { /* absent or empty: every dim of size 1 */
        a->n_axes = 0;
        for (int d = 0; d < x->rank; d++)
            if (x->shape[d] == 1) a->axes[a->n_axes++] = d;
    } else if ((rc = ops_norm_axes(c, "axis", a->axes, a->n_axes, x->rank)) < 0) {
        return rc;
    }
    bool drop[ENG_MAX_RANK] = {false};
    for (int i = 0; i < a->n_axes; i++) {
        if (x->shape[a->axes[i]] != 1)
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "cannot squeeze axis %lld of input 'data' %s: size is not 1",
                                  (long long)a->axes[i], ops_shp(&sb, 0, x->rank, x->shape));
        drop[a->axes[i]] = true;
    }
    int64_t y[ENG_MAX_RANK];
    int r = 0;
    for (int d = 0; d < x->rank; d++)
        if (!drop[d]) y[r++] = x->shape[d];
    eng_infer_set_out(c, 0, x->dtype, r, y);
    return 0;
}

/* --- reference kernels ---------------------------------------------------- */

/* Flatten, Reshape, Unsqueeze, Squeeze, Identity: the bytes unchanged. */
static int run_copy(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                    eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    int rc = ref_copy(in[0], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_dropout(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                       eng_tensor *const *out, rouse_errbuf *eb)
{
    if (n->n_in > 2 && in[2] && in[2]->data && *(const uint8_t *)in[2]->data &&
        a->dropout.ratio > 0.0f)
        return eng_run_fail(n, eb, ROUSE_EUNSUPPORTED,
                            "training mode with ratio %g is random and not supported for "
                            "inference",
                            (double)a->dropout.ratio);
    int rc = ref_copy(in[0], out[0]);
    if (rc < 0) return ops_ref_status(n, eb, rc, in[0]);
    if (n->n_out > 1 && out[1]) {
        int64_t cnt = eng_tensor_numel(out[1]);
        memset(out[1]->data, 1, (size_t)(cnt > 0 ? cnt : 0)); /* mask: all kept */
    }
    return 0;
}

static int run_transpose(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                         eng_tensor *const *out, rouse_errbuf *eb)
{
    int64_t perm[ENG_MAX_RANK];
    int r = in[0]->rank;
    for (int i = 0; i < r; i++)
        perm[i] = a->transpose.n_perm ? a->transpose.perm[i] : r - 1 - i;
    int rc = ref_transpose(perm, in[0], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_concat(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                      eng_tensor *const *out, rouse_errbuf *eb)
{
    int64_t axis = a->axis.axis < 0 ? a->axis.axis + out[0]->rank : a->axis.axis;
    int rc = ref_concat(axis, n->n_in, in, out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_gather(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                      eng_tensor *const *out, rouse_errbuf *eb)
{
    int64_t bad = 0;
    int rc = ref_gather(a->axis.axis, in[0], in[1], out[0], &bad);
    if (rc == ROUSE_ERANGE)
        return eng_run_fail(n, eb, rc,
                            "index %lld of input 'indices' is out of range for axis %lld of input "
                            "'data' (size %lld)",
                            (long long)bad, (long long)a->axis.axis,
                            (long long)in[0]->shape[a->axis.axis]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

/* --- descriptors ---------------------------------------------------------- */

#define ALL                                                                                        \
    (ENG_DTM(FLOAT) | ENG_DTM(DOUBLE) | ENG_DTM_INTS | ENG_DTM(BOOL) | ENG_DTM(FLOAT16) |          \
     ENG_DTM(BFLOAT16))

static const eng_op_desc op_flatten = {
    .op = ENG_OP_FLATTEN,
    .name = "Flatten",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"input"},
    .dtypes = ALL,
    .parse = parse_flatten,
    .check = check_axis,
    .infer = infer_flatten,
    .run = run_copy,
};

/* Reshape before opset 5 took its shape as an attribute, which the engine
 * does not model. */
static const eng_op_desc op_reshape = {
    .op = ENG_OP_RESHAPE,
    .name = "Reshape",
    .since = 5,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"data", "shape"},
    .dtypes = ALL,
    .value_inputs = 1u << 1,
    .parse = parse_reshape,
    .check = check_reshape,
    .infer = infer_reshape,
    .run = run_copy,
};

static const eng_op_desc op_transpose = {
    .op = ENG_OP_TRANSPOSE,
    .name = "Transpose",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"data"},
    .dtypes = ALL,
    .parse = parse_transpose,
    .check = check_transpose,
    .infer = infer_transpose,
    .run = run_transpose,
};

static const eng_op_desc op_concat = {
    .op = ENG_OP_CONCAT,
    .name = "Concat",
    .since = 1,
    .min_in = 1,
    .max_in = -1,
    .max_out = 1,
    .dtypes = ALL,
    .parse = parse_concat,
    .check = check_axis,
    .infer = infer_concat,
    .run = run_concat,
};

static const eng_op_desc op_identity = {
    .op = ENG_OP_IDENTITY,
    .name = "Identity",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"input"},
    .dtypes = ALL,
    .infer = infer_same,
    .run = run_copy,
};

/* The ratio was an attribute before opset 12, an input (with
 * training_mode) since. */
static void counts_dropout(const eng_node *n, int *min_in, int *max_in, int *max_out)
{
    (void)min_in;
    (void)max_out;
    if (n->opset < 12) *max_in = 1;
}

/* A copy in inference, whatever the element type. */
static const eng_op_desc op_dropout = {
    .op = ENG_OP_DROPOUT,
    .name = "Dropout",
    .since = 1,
    .min_in = 1,
    .max_in = 3,
    .max_out = 2,
    .in_names = {"data", "ratio", "training_mode"},
    .dtypes = ALL,
    .value_inputs = 1u << 1 | 1u << 2,
    .counts = counts_dropout,
    .parse = parse_dropout,
    .check = check_dropout,
    .infer = infer_dropout,
    .run = run_dropout,
};

/* The graph builder reads its value itself. */
static const eng_op_desc op_constant = {
    .op = ENG_OP_CONSTANT,
    .name = "Constant",
    .since = 1,
    .min_in = 0,
    .max_in = 0,
    .max_out = 1,
    .infer = infer_constant,
};

static const eng_op_desc op_gather = {
    .op = ENG_OP_GATHER,
    .name = "Gather",
    .since = 1,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"data", "indices"},
    .parse = parse_gather,
    .check = check_axis,
    .infer = infer_gather,
    .run = run_gather,
};

static void counts_unsqueeze(const eng_node *n, int *min_in, int *max_in, int *max_out)
{
    (void)max_out;
    if (n->opset < 13)
        *max_in = 1;
    else if (n->op == ENG_OP_UNSQUEEZE)
        *min_in = 2;
}

static const eng_op_desc op_unsqueeze = {
    .op = ENG_OP_UNSQUEEZE,
    .name = "Unsqueeze",
    .since = 1,
    .min_in = 1,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"data", "axes"},
    .dtypes = ALL,
    .value_inputs = 1u << 1,
    .counts = counts_unsqueeze,
    .parse = parse_axes,
    .check = check_axes,
    .infer = infer_unsqueeze,
    .run = run_copy,
};

static const eng_op_desc op_squeeze = {
    .op = ENG_OP_SQUEEZE,
    .name = "Squeeze",
    .since = 1,
    .min_in = 1,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"data", "axes"},
    .dtypes = ALL,
    .value_inputs = 1u << 1,
    .counts = counts_unsqueeze,
    .parse = parse_axes,
    .check = check_axes,
    .infer = infer_squeeze,
    .run = run_copy,
};

const eng_op_desc *const eng_ops_tensor[] = {
    &op_flatten,  &op_reshape, &op_transpose, &op_concat,  &op_identity, &op_dropout,
    &op_constant, &op_gather,  &op_unsqueeze, &op_squeeze, NULL,
};
