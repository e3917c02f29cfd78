/*
 * Operator descriptors of the index family (see engine/op.h): ops driven by
 * index or mask tensors: GatherElements, GatherND, ScatterElements,
 * ScatterND, OneHot, NonZero, Compress, ReverseSequence.
 *
 * Guarantees: every index read from a tensor at run time is checked against
 * the extent it addresses before it is used; one out of range stops the
 * kernel with ROUSE_ERANGE naming the node, the input, the value and the
 * bound, and nothing is read or written outside a buffer. (OneHot is the
 * exception the ONNX spec makes: an index outside [-depth, depth) yields an
 * all-`off` row, not an error.) NonZero's output extent and Compress's
 * depend on the values of their inputs, which are therefore value inputs:
 * known when the model is prepared, so a plan is specific to them.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/op.h"
#include "engine/ops/shape_util.h"

#define INDEX_TYPES (ENG_DTM(INT32) | ENG_DTM(INT64))

static int check_axis_attr(const eng_node *n, rouse_errbuf *eb)
{
    const eng_index_attrs *x = &n->attrs.shape.index;
    /* OneHot's axis counts in the output, one rank more than its input. */
    int64_t hi = n->op == ENG_OP_ONE_HOT ? ENG_MAX_RANK : ENG_MAX_RANK - 1;
    if (x->axis < -(hi + 1) || x->axis > hi) return sx_attr_bad(n, eb, "axis", "is out of range");
    if (x->has_axis != 0 && x->has_axis != 1)
        return sx_attr_bad(n, eb, "axis", "has a bad presence flag %d", x->has_axis);
    if (x->reduction < ENG_SCATTER_NONE || x->reduction > ENG_SCATTER_MUL)
        return sx_attr_bad(n, eb, "reduction", "has an unknown value %d", x->reduction);
    return 0;
}

static int parse_axis(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_index_attrs *x = &a->shape.index;
    int64_t def = c->n->op == ENG_OP_ONE_HOT ? -1 : 0;
    x->has_axis = eng_attr_find(c, "axis") != NULL;
    return eng_attr_int(c, "axis", def, &x->axis);
}

static const char *const reductions[] = {"none", "add", "mul", NULL};

static int parse_scatter(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_index_attrs *x = &a->shape.index;
    int rc;
    if (c->n->op == ENG_OP_SCATTER_ELEMENTS && (rc = parse_axis(c, a)) < 0) return rc;
    if (c->n->opset < 16) return 0;
    return eng_attr_choice(c, "reduction", reductions, ENG_SCATTER_NONE, &x->reduction);
}

static int parse_gather_nd(const eng_attr_ctx *c, eng_attrs *a)
{
    return eng_attr_int(c, "batch_dims", 0, &a->shape.index.axis);
}

static int check_gather_nd(const eng_node *n, rouse_errbuf *eb)
{
    int64_t b = n->attrs.shape.index.axis;
    if (b < 0 || b >= ENG_MAX_RANK)
        return sx_attr_bad(n, eb, "batch_dims", "must be between 0 and %d", ENG_MAX_RANK - 1);
    return 0;
}

/* Index i of `idx` normalized against extent `dim`, or ROUSE_ERANGE. */
static int norm_index(const eng_node *nd, rouse_errbuf *eb, const eng_tensor *idx, int64_t i,
                      int64_t dim, const char *what, int64_t *out)
{
    int64_t k = sx_index_at(idx, i);
    int64_t v = k < 0 ? k + dim : k;
    if (v < 0 || v >= dim)
        return eng_run_fail(nd, eb, ROUSE_ERANGE,
                            "index %lld of input 'indices' is out of range for %s (size %lld)",
                            (long long)k, what, (long long)dim);
    *out = v;
    return 0;
}

/* dst = src, or dst (+|*)= src for the scatter reductions. */
static void reduce_into(int dtype, int reduction, size_t es, char *dst, const char *src)
{
    if (reduction == ENG_SCATTER_NONE) {
        memcpy(dst, src, es);
    } else if (sx_is_float(dtype)) {
        double a = sx_load_f64(dtype, dst), b = sx_load_f64(dtype, src);
        sx_store_f64(dtype, dst, reduction == ENG_SCATTER_ADD ? a + b : a * b);
    } else {
        uint64_t a = sx_load_bits(dtype, dst), b = sx_load_bits(dtype, src);
        sx_store_bits(dtype, dst, reduction == ENG_SCATTER_ADD ? a + b : a * b);
    }
}

/* Advances pos over shape[rank] in row-major order. */
static void odometer(int rank, const int64_t *shape, int64_t *pos)
{
    for (int d = rank - 1; d >= 0; d--) {
        if (++pos[d] < shape[d]) return;
        pos[d] = 0;
    }
}

/* --- GatherElements, ScatterElements ---------------------------------------- */

/* indices (and updates) have data's rank and, off the axis, no larger dims. */
static int infer_elements(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *idx = c->in[1];
    int64_t axis;
    int rc;
    if ((rc = eng_infer_check_dtype(c, 1, INDEX_TYPES)) < 0) return rc;
    if (x->rank < 1) return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'data' must not be a scalar");
    if ((rc = eng_infer_norm_axis(c, c->res->shape.index.axis, x->rank, false, &axis)) < 0)
        return rc;
    char a[160], b[160];
    if (idx->rank != x->rank)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'indices' %s and input 'data' %s differ in rank",
                              eng_shape_str(idx->rank, idx->shape, a, sizeof(a)),
                              eng_shape_str(x->rank, x->shape, b, sizeof(b)));
    for (int d = 0; d < x->rank; d++)
        if (d != axis && idx->shape[d] > x->shape[d])
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "input 'indices' %s is larger than input 'data' %s in dim %d",
                                  eng_shape_str(idx->rank, idx->shape, a, sizeof(a)),
                                  eng_shape_str(x->rank, x->shape, b, sizeof(b)), d);
    c->res->shape.index.axis = axis;
    if (c->n->op == ENG_OP_SCATTER_ELEMENTS) {
        const eng_tensor *u = c->in[2];
        if ((rc = eng_infer_same_dtype(c, 0, 2)) < 0) return rc;
        if (!eng_shape_equal(u->rank, u->shape, idx->rank, idx->shape))
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "input 'updates' %s must have the shape of input 'indices' %s",
                                  eng_shape_str(u->rank, u->shape, a, sizeof(a)),
                                  eng_shape_str(idx->rank, idx->shape, b, sizeof(b)));
        eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    } else {
        eng_infer_set_out(c, 0, x->dtype, idx->rank, idx->shape);
    }
    return 0;
}

/* Walks indices; for each element, the offset in data it addresses. Gather
 * copies data[off] out, Scatter folds updates into y[off]. */
static int run_elements(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                        eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_tensor *x = in[0], *idx = in[1];
    bool scatter = nd->op == ENG_OP_SCATTER_ELEMENTS;
    int64_t axis = a->shape.index.axis, ds[ENG_MAX_RANK], pos[ENG_MAX_RANK] = {0};
    int64_t n = eng_tensor_numel(idx);
    size_t es = eng_dtype_size(x->dtype);
    char *y = out[0]->data;
    char what[64];
    if (axis < 0 || axis >= x->rank || idx->rank != x->rank)
        return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "axis does not match the input");
    snprintf(what, sizeof(what), "axis %lld of input 'data'", (long long)axis);
    sx_strides(x->rank, x->shape, ds);
    if (scatter) memcpy(y, x->data, (size_t)eng_tensor_nbytes(x));
    for (int64_t i = 0; i < n; i++, odometer(idx->rank, idx->shape, pos)) {
        int64_t k = 0, off = 0;
        int rc = norm_index(nd, eb, idx, i, x->shape[axis], what, &k);
        if (rc < 0) return rc;
        for (int d = 0; d < x->rank; d++)
            off += (d == axis ? k : pos[d]) * ds[d];
        if (scatter)
            reduce_into(x->dtype, a->shape.index.reduction, es, y + (size_t)off * es,
                        (const char *)in[2]->data + (size_t)i * es);
        else
            memcpy(y + (size_t)i * es, (const char *)x->data + (size_t)off * es, es);
    }
    return 0;
}

/* --- GatherND, ScatterND ---------------------------------------------------- */

/* The batch dims b, the index depth m (indices' last dim) and the extent of
 * one gathered slice (data's dims after b + m), checked against data. */
static int nd_geometry(eng_infer_ctx *c, int64_t b, int64_t *m)
{
    const eng_tensor *x = c->in[0], *idx = c->in[1];
    int rc;
    if ((rc = eng_infer_check_dtype(c, 1, INDEX_TYPES)) < 0) return rc;
    if (idx->rank < 1 || x->rank < 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "inputs 'data' and 'indices' must not be scalars");
    if (b >= idx->rank || b >= x->rank)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "batch_dims %lld must be below the ranks of 'data' (%d) and "
                              "'indices' (%d)",
                              (long long)b, x->rank, idx->rank);
    for (int d = 0; d < b; d++)
        if (x->shape[d] != idx->shape[d])
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "batch dim %d differs: 'data' %lld, 'indices' %lld", d,
                                  (long long)x->shape[d], (long long)idx->shape[d]);
    *m = idx->shape[idx->rank - 1];
    if (*m < 1 || *m > x->rank - b)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "the last dim of input 'indices' (%lld) must be between 1 and %lld",
                              (long long)*m, (long long)(x->rank - b));
    int64_t y[2 * ENG_MAX_RANK];
    int r = 0;
    for (int d = 0; d < idx->rank - 1; d++)
        y[r++] = idx->shape[d];
    for (int64_t d = b + *m; d < x->rank; d++)
        y[r++] = x->shape[d];
    if (r > ENG_MAX_RANK)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED, "the result would have rank %d, above %d", r,
                              ENG_MAX_RANK);
    if (c->n->op == ENG_OP_SCATTER_ND) {
        const eng_tensor *u = c->in[2];
        if ((rc = eng_infer_same_dtype(c, 0, 2)) < 0) return rc;
        if (!eng_shape_equal(u->rank, u->shape, r, y)) {
            char s1[160], s2[160];
            return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'updates' %s must have shape %s",
                                  eng_shape_str(u->rank, u->shape, s1, sizeof(s1)),
                                  eng_shape_str(r, y, s2, sizeof(s2)));
        }
        eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    } else {
        eng_infer_set_out(c, 0, x->dtype, r, y);
    }
    return 0;
}

static int infer_gather_nd(eng_infer_ctx *c)
{
    int64_t m;
    return nd_geometry(c, c->res->shape.index.axis, &m);
}

static int infer_scatter_nd(eng_infer_ctx *c)
{
    int64_t m;
    return nd_geometry(c, 0, &m);
}

static int run_nd(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                  eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_tensor *x = in[0], *idx = in[1];
    bool scatter = nd->op == ENG_OP_SCATTER_ND;
    int64_t b = scatter ? 0 : a->shape.index.axis;
    int64_t m = idx->shape[idx->rank - 1];
    if (b < 0 || b >= x->rank || m < 1 || m > x->rank - b)
        return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "indices do not match the input");
    size_t es = eng_dtype_size(x->dtype);
    int64_t ds[ENG_MAX_RANK];
    sx_strides(x->rank, x->shape, ds);
    int64_t batches = eng_shape_numel((int)b, x->shape);
    int64_t batch_size = batches ? eng_tensor_numel(x) / batches : 0; /* elements per batch */
    int64_t tuples = eng_shape_numel(idx->rank - 1 - (int)b, idx->shape + b); /* per batch */
    int64_t slice = eng_shape_numel(x->rank - (int)(b + m), x->shape + b + m);
    char *y = out[0]->data;
    const char *src = scatter ? in[2]->data : x->data;
    if (scatter) memcpy(y, x->data, (size_t)eng_tensor_nbytes(x));
    for (int64_t bi = 0; bi < batches; bi++) {
        for (int64_t t = 0; t < tuples; t++) {
            int64_t row = bi * tuples + t, off = bi * batch_size;
            for (int64_t j = 0; j < m; j++) {
                char what[64];
                int64_t k = 0;
                snprintf(what, sizeof(what), "dim %lld of input 'data'", (long long)(b + j));
                int rc = norm_index(nd, eb, idx, row * m + j, x->shape[b + j], what, &k);
                if (rc < 0) return rc;
                off += k * ds[b + j];
            }
            if (scatter) {
                for (int64_t e = 0; e < slice; e++)
                    reduce_into(x->dtype, a->shape.index.reduction, es, y + (size_t)(off + e) * es,
                                src + (size_t)(row * slice + e) * es);
            } else {
                memcpy(y + (size_t)(row * slice) * es, src + (size_t)off * es, (size_t)slice * es);
            }
        }
    }
    return 0;
}

/* --- OneHot ----------------------------------------------------------------- */

static int infer_one_hot(eng_infer_ctx *c)
{
    const eng_tensor *idx = c->in[0], *dt = c->in[1], *vals = c->in[2];
    int64_t axis;
    int rc;
    if (idx->rank + 1 > ENG_MAX_RANK)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED, "the result would have rank %d, above %d",
                              idx->rank + 1, ENG_MAX_RANK);
    if ((rc = eng_infer_norm_axis(c, c->res->shape.index.axis, idx->rank + 1, false, &axis)) < 0)
        return rc;
    if (dt->dtype <= 0 || dt->dtype >= 32 || !((ENG_DTM_NUMERIC >> dt->dtype) & 1) ||
        eng_tensor_numel(dt) != 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'depth' must be one number");
    if (eng_tensor_numel(vals) != 2 || vals->rank != 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'values' must hold two values: [off_value, on_value]");
    const void *p = sx_infer_data(c, 1, &rc);
    if (!p) return rc;
    double depth = trunc(sx_load_num(dt->dtype, p));
    if (!(depth >= 1 && depth < 9.0e18))
        return eng_infer_fail(c, ROUSE_ERANGE, "input 'depth' must be at least 1, got %g", depth);
    int64_t y[ENG_MAX_RANK];
    for (int d = 0, k = 0; d <= idx->rank; d++)
        y[d] = d == axis ? (int64_t)depth : idx->shape[k++];
    c->res->shape.index.axis = axis;
    eng_infer_set_out(c, 0, vals->dtype, idx->rank + 1, y);
    return 0;
}

/* y[o, v, i] = on for each index v = indices[o, i] (o: dims before axis,
 * i: dims after), off everywhere else. */
static int run_one_hot(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                       eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_tensor *idx = in[0], *vals = in[2];
    eng_tensor *y = out[0];
    int64_t axis = a->shape.index.axis;
    if (axis < 0 || axis > idx->rank)
        return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "axis does not match the input");
    int64_t depth = y->shape[axis];
    int64_t outer = eng_shape_numel((int)axis, idx->shape);
    int64_t inner = eng_shape_numel(idx->rank - (int)axis, idx->shape + axis);
    size_t es = eng_dtype_size(y->dtype), ies = eng_dtype_size(idx->dtype);
    const char *off = vals->data, *on = (const char *)vals->data + es;
    char *dst = y->data;
    int64_t n = eng_tensor_numel(y);
    for (int64_t i = 0; i < n; i++)
        memcpy(dst + (size_t)i * es, off, es);
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            const char *p = (const char *)idx->data + (size_t)(o * inner + i) * ies;
            double v = trunc(sx_load_num(idx->dtype, p));
            if (v < 0) v += (double)depth;
            if (!(v >= 0 && v < (double)depth)) continue; /* the spec's all-off row */
            memcpy(dst + (size_t)((o * depth + (int64_t)v) * inner + i) * es, on, es);
        }
    }
    return 0;
}

/* --- NonZero ---------------------------------------------------------------- */

static int64_t count_nonzero(const eng_tensor *x)
{
    int64_t n = eng_tensor_numel(x), cnt = 0;
    size_t es = eng_dtype_size(x->dtype);
    for (int64_t i = 0; i < n; i++)
        cnt += sx_nonzero(x->dtype, (const char *)x->data + (size_t)i * es);
    return cnt;
}

/* The output's extent is the number of non-zero elements: the input's
 * values must be known at prepare (a value input), and the plan is keyed
 * by them. A scalar counts as one element of a 1-D input. */
static int infer_nonzero(eng_infer_ctx *c)
{
    int rc;
    if (!sx_infer_data(c, 0, &rc)) return rc;
    int64_t y[2] = {c->in[0]->rank ? c->in[0]->rank : 1, count_nonzero(c->in[0])};
    eng_infer_set_out(c, 0, ENG_DT_INT64, 2, y);
    return 0;
}

static int run_nonzero(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                       eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    const eng_tensor *x = in[0];
    int rank = x->rank ? x->rank : 1;
    int64_t cnt = count_nonzero(x), n = eng_tensor_numel(x);
    if (cnt != out[0]->shape[1] || rank != out[0]->shape[0])
        return eng_run_fail(nd, eb, ROUSE_EMISMATCH,
                            "input 'X' has %lld non-zero elements, the model was prepared for %lld",
                            (long long)cnt, (long long)out[0]->shape[1]);
    size_t es = eng_dtype_size(x->dtype);
    int64_t pos[ENG_MAX_RANK] = {0}, shape1 = 1, k = 0;
    const int64_t *shape = x->rank ? x->shape : &shape1;
    int64_t *y = out[0]->data;
    for (int64_t i = 0; i < n; i++, odometer(rank, shape, pos)) {
        if (!sx_nonzero(x->dtype, (const char *)x->data + (size_t)i * es)) continue;
        for (int d = 0; d < rank; d++)
            y[d * cnt + k] = pos[d];
        k++;
    }
    return 0;
}

/* --- Compress --------------------------------------------------------------- */

/* The number of selected slices among `dim`; a true past dim is an error. */
static int compress_count(const eng_tensor *cond, int64_t dim, int64_t *cnt, int64_t *bad)
{
    int64_t len = eng_tensor_numel(cond);
    const uint8_t *m = cond->data;
    *cnt = 0;
    for (int64_t i = 0; i < len; i++) {
        if (!m[i]) continue;
        if (i >= dim) {
            *bad = i;
            return ROUSE_ERANGE;
        }
        (*cnt)++;
    }
    return 0;
}

static int infer_compress(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *cond = c->in[1];
    eng_index_attrs *ia = &c->res->shape.index;
    int rc;
    if ((rc = eng_infer_check_dtype(c, 1, ENG_DTM(BOOL))) < 0) return rc;
    if (cond->rank != 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'condition' must be 1-D, has rank %d",
                              cond->rank);
    if (!sx_infer_data(c, 1, &rc)) return rc;
    int64_t axis = 0, dim = eng_tensor_numel(x), cnt, bad;
    if (ia->has_axis) {
        if ((rc = eng_infer_norm_axis(c, ia->axis, x->rank, false, &axis)) < 0) return rc;
        dim = x->shape[axis];
        ia->axis = axis;
    }
    if (compress_count(cond, dim, &cnt, &bad) < 0)
        return eng_infer_fail(c, ROUSE_ERANGE,
                              "input 'condition' selects element %lld, past the %lld available",
                              (long long)bad, (long long)dim);
    if (!ia->has_axis) {
        eng_infer_set_out(c, 0, x->dtype, 1, &cnt);
    } else {
        int64_t y[ENG_MAX_RANK];
        memcpy(y, x->shape, sizeof(y));
        y[axis] = cnt;
        eng_infer_set_out(c, 0, x->dtype, x->rank, y);
    }
    return 0;
}

static int run_compress(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                        eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_tensor *x = in[0], *cond = in[1];
    const eng_index_attrs *ia = &a->shape.index;
    size_t es = eng_dtype_size(x->dtype);
    int64_t outer = 1, inner = 1, dim = eng_tensor_numel(x), cnt, bad;
    if (ia->has_axis) {
        if (ia->axis < 0 || ia->axis >= x->rank)
            return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "axis does not match the input");
        dim = x->shape[ia->axis];
        outer = eng_shape_numel((int)ia->axis, x->shape);
        inner = eng_shape_numel(x->rank - (int)ia->axis - 1, x->shape + ia->axis + 1);
    }
    int64_t want = ia->has_axis ? out[0]->shape[ia->axis] : out[0]->shape[0];
    if (compress_count(cond, dim, &cnt, &bad) < 0 || cnt != want)
        return eng_run_fail(nd, eb, ROUSE_EMISMATCH,
                            "input 'condition' is not the one the model was prepared for");
    const uint8_t *m = cond->data;
    int64_t len = eng_tensor_numel(cond) < dim ? eng_tensor_numel(cond) : dim;
    size_t row = (size_t)inner * es;
    char *dst = out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < len; i++)
            if (m[i]) {
                memcpy(dst, (const char *)x->data + (size_t)(o * dim + i) * row, row);
                dst += row;
            }
    return 0;
}

/* --- ReverseSequence -------------------------------------------------------- */

static int parse_revseq(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_revseq_attrs *r = &a->shape.revseq;
    int rc;
    if ((rc = eng_attr_int(c, "batch_axis", 1, &r->batch_axis)) < 0) return rc;
    return eng_attr_int(c, "time_axis", 0, &r->time_axis);
}

static int check_revseq(const eng_node *n, rouse_errbuf *eb)
{
    const eng_revseq_attrs *r = &n->attrs.shape.revseq;
    if (r->batch_axis != 0 && r->batch_axis != 1)
        return sx_attr_bad(n, eb, "batch_axis", "must be 0 or 1");
    if (r->time_axis != 1 - r->batch_axis)
        return sx_attr_bad(n, eb, "time_axis", "must be 0 or 1 and differ from batch_axis");
    return 0;
}

static int infer_revseq(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *lens = c->in[1];
    int rc;
    if (x->rank < 2)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'input' must have rank 2 or more");
    if ((rc = eng_infer_check_dtype(c, 1, ENG_DTM(INT64))) < 0) return rc;
    int64_t batch = x->shape[c->res->shape.revseq.batch_axis];
    if (lens->rank != 1 || lens->shape[0] != batch)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'sequence_lens' must be 1-D with %lld values (the batch)",
                              (long long)batch);
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

static int run_revseq(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                      eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_tensor *x = in[0], *lens = in[1];
    bool batch_first = a->shape.revseq.batch_axis == 0;
    int64_t B = x->shape[batch_first ? 0 : 1], T = x->shape[batch_first ? 1 : 0];
    int64_t inner = eng_shape_numel(x->rank - 2, x->shape + 2);
    size_t row = (size_t)inner * eng_dtype_size(x->dtype);
    for (int64_t b = 0; b < B; b++) {
        int64_t len = sx_index_at(lens, b);
        if (len < 0 || len > T)
            return eng_run_fail(nd, eb, ROUSE_ERANGE,
                                "input 'sequence_lens' has %lld for batch %lld, outside [0, %lld]",
                                (long long)len, (long long)b, (long long)T);
        for (int64_t t = 0; t < T; t++) {
            int64_t src = t < len ? len - 1 - t : t;
            int64_t so = batch_first ? b * T + src : src * B + b;
            int64_t dof = batch_first ? b * T + t : t * B + b;
            memcpy((char *)out[0]->data + (size_t)dof * row,
                   (const char *)x->data + (size_t)so * row, row);
        }
    }
    return 0;
}

/* --- descriptors ------------------------------------------------------------ */

static const eng_op_desc op_gather_elements = {
    .op = ENG_OP_GATHER_ELEMENTS,
    .name = "GatherElements",
    .since = 11,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"data", "indices"},
    .dtypes = ENG_DTM_ANY,
    .parse = parse_axis,
    .check = check_axis_attr,
    .infer = infer_elements,
    .run = run_elements,
};

static const eng_op_desc op_scatter_elements = {
    .op = ENG_OP_SCATTER_ELEMENTS,
    .name = "ScatterElements",
    .since = 11,
    .min_in = 3,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"data", "indices", "updates"},
    .dtypes = ENG_DTM_ANY,
    .parse = parse_scatter,
    .check = check_axis_attr,
    .infer = infer_elements,
    .run = run_elements,
};

static const eng_op_desc op_gather_nd = {
    .op = ENG_OP_GATHER_ND,
    .name = "GatherND",
    .since = 11,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"data", "indices"},
    .dtypes = ENG_DTM_ANY,
    .parse = parse_gather_nd,
    .check = check_gather_nd,
    .infer = infer_gather_nd,
    .run = run_nd,
};

static const eng_op_desc op_scatter_nd = {
    .op = ENG_OP_SCATTER_ND,
    .name = "ScatterND",
    .since = 11,
    .min_in = 3,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"data", "indices", "updates"},
    .dtypes = ENG_DTM_ANY,
    .parse = parse_scatter,
    .check = check_axis_attr,
    .infer = infer_scatter_nd,
    .run = run_nd,
};

static const eng_op_desc op_one_hot = {
    .op = ENG_OP_ONE_HOT,
    .name = "OneHot",
    .since = 9,
    .min_in = 3,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"indices", "depth", "values"},
    .dtypes = ENG_DTM_NUMERIC,
    .value_inputs = 1u << 1,
    .parse = parse_axis,
    .check = check_axis_attr,
    .infer = infer_one_hot,
    .run = run_one_hot,
};

static const eng_op_desc op_nonzero = {
    .op = ENG_OP_NONZERO,
    .name = "NonZero",
    .since = 9,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = ENG_DTM_ANY,
    /* The output's extent is the count of non-zero elements. */
    .value_inputs = 1u << 0,
    .infer = infer_nonzero,
    .run = run_nonzero,
};

static const eng_op_desc op_compress = {
    .op = ENG_OP_COMPRESS,
    .name = "Compress",
    .since = 9,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"input", "condition"},
    .dtypes = ENG_DTM_ANY,
    /* The output's extent is the count of true conditions. */
    .value_inputs = 1u << 1,
    .parse = parse_axis,
    .check = check_axis_attr,
    .infer = infer_compress,
    .run = run_compress,
};

static const eng_op_desc op_reverse_sequence = {
    .op = ENG_OP_REVERSE_SEQUENCE,
    .name = "ReverseSequence",
    .since = 10,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"input", "sequence_lens"},
    .dtypes = ENG_DTM_ANY,
    .parse = parse_revseq,
    .check = check_revseq,
    .infer = infer_revseq,
    .run = run_revseq,
};

const eng_op_desc *const eng_ops_index[] = {
    &op_gather_elements, &op_scatter_elements, &op_gather_nd,        &op_scatter_nd, &op_one_hot,
    &op_nonzero,         &op_compress,         &op_reverse_sequence, NULL,
};
