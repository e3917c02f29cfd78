/*
 * Operator descriptors of the shape family (see engine/op.h): ops whose
 * output is a shape (Shape, Size), a constant pattern of a given shape
 * (ConstantOfShape, Range, EyeLike), or the input repeated or masked
 * (Expand, Tile, Trilu). Slicing, splitting, padding and the block moves
 * are in ops/shape_slice.c.
 *
 * Guarantees: Shape and Size read only the input's shape, never its data,
 * so their outputs are known as soon as the input shape is. Inputs that
 * decide an output shape (ConstantOfShape's shape, Range's bounds, Expand's
 * shape, Tile's repeats) are value inputs: their values must be known when
 * the model is prepared; kernels then take the extents from the inferred
 * output shapes, so they never index outside their buffers.
 */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/op.h"
#include "engine/ops/shape_util.h"

/* --- Shape, Size ---------------------------------------------------------- */

static int parse_shape(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_shape_range_attrs *r = &a->shape.range;
    int rc;
    if (c->n->opset < 15) return 0;
    if ((rc = eng_attr_int(c, "start", 0, &r->start)) < 0) return rc;
    r->has_end = eng_attr_find(c, "end") != NULL;
    return eng_attr_int(c, "end", 0, &r->end);
}

static int check_shape(const eng_node *n, rouse_errbuf *eb)
{
    int f = n->attrs.shape.range.has_end;
    return f == 0 || f == 1 ? 0 : sx_attr_bad(n, eb, "end", "has a bad presence flag %d", f);
}

/* Shape's start/end are clamped to [0, rank] after adding rank to negative
 * ones; an empty range is an empty output. */
static int infer_shape(eng_infer_ctx *c)
{
    eng_shape_range_attrs *r = &c->res->shape.range;
    int64_t rank = c->in[0]->rank;
    int64_t start = r->start, end = r->has_end ? r->end : rank;
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = start < 0 ? 0 : start > rank ? rank : start;
    end = end < 0 ? 0 : end > rank ? rank : end;
    if (end < start) end = start;
    r->start = start;
    r->end = end;
    r->has_end = 1;
    int64_t n = end - start;
    eng_infer_set_out(c, 0, ENG_DT_INT64, 1, &n);
    return 0;
}

static int run_shape(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_shape_range_attrs *r = &a->shape.range;
    if (r->start < 0 || r->end > in[0]->rank || out[0]->shape[0] != r->end - r->start)
        return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "start/end do not match the input's rank");
    memcpy(out[0]->data, in[0]->shape + r->start, sizeof(int64_t) * (size_t)(r->end - r->start));
    return 0;
}

static int infer_size(eng_infer_ctx *c)
{
    eng_infer_set_out(c, 0, ENG_DT_INT64, 0, NULL);
    return 0;
}

static int run_size(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                    eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)nd;
    (void)a;
    (void)eb;
    int64_t n = eng_tensor_numel(in[0]);
    memcpy(out[0]->data, &n, sizeof(n));
    return 0;
}

/* --- ConstantOfShape, EyeLike ---------------------------------------------- */

#define FILL_TYPES (ENG_DTM_NUMERIC | ENG_DTM(BOOL))

static int check_fill(const eng_node *n, rouse_errbuf *eb)
{
    const eng_fill_attrs *f = &n->attrs.shape.fill;
    const char *attr = n->op == ENG_OP_EYE_LIKE ? "dtype" : "value";
    if (n->op == ENG_OP_EYE_LIKE && f->dtype == 0) return 0; /* the input's type */
    if (f->dtype <= 0 || f->dtype >= 32 || !(FILL_TYPES & (1u << f->dtype)))
        return sx_attr_bad(n, eb, attr, "has element type %s, which is not supported",
                           eng_dtype_name(f->dtype));
    return 0;
}

static int parse_constant_of_shape(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_fill_attrs *f = &a->shape.fill;
    const onnx_tensor *t;
    int rc = eng_attr_tensor(c, "value", &t);
    if (rc < 0) return rc;
    f->dtype = ENG_DT_FLOAT; /* default: float 0 */
    if (!t) return 0;
    f->dtype = t->data_type;
    size_t es = eng_dtype_size(t->data_type);
    if (!es || es > sizeof(f->value) || !(FILL_TYPES & (1u << (t->data_type & 31))))
        return eng_attr_err(c, ROUSE_EUNSUPPORTED, "value", "has an unsupported element type");
    if (t->n_elems != 1 || t->nbytes != es)
        return eng_attr_err(c, ROUSE_EFORMAT, "value", "must hold exactly one element");
    memcpy(f->value, t->data, es);
    if (f->dtype == ENG_DT_BOOL) f->value[0] = f->value[0] != 0;
    return 0;
}

/* The shape input: at most ENG_MAX_RANK dims, none negative. */
static int read_dims(eng_infer_ctx *c, int i, int *rank, int64_t *dims)
{
    int rc = eng_infer_read_ints(c, i, ENG_MAX_RANK, rank, dims);
    if (rc < 0) return rc;
    if (c->in[i]->rank > 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input '%s' must be 1-D, has rank %d",
                              eng_infer_in_name(c, i), c->in[i]->rank);
    for (int d = 0; d < *rank; d++)
        if (dims[d] < 0)
            return eng_infer_fail(c, ROUSE_ERANGE, "input '%s' has a negative dim %lld",
                                  eng_infer_in_name(c, i), (long long)dims[d]);
    return 0;
}

static int infer_constant_of_shape(eng_infer_ctx *c)
{
    int rank, rc;
    int64_t dims[ENG_MAX_RANK];
    if ((rc = read_dims(c, 0, &rank, dims)) < 0) return rc;
    eng_infer_set_out(c, 0, c->res->shape.fill.dtype, rank, dims);
    return 0;
}

static int run_constant_of_shape(const eng_node *nd, const eng_attrs *a,
                                 const eng_tensor *const *in, eng_tensor *const *out,
                                 rouse_errbuf *eb)
{
    (void)nd;
    (void)in;
    (void)eb;
    const eng_fill_attrs *f = &a->shape.fill;
    size_t es = eng_dtype_size(out[0]->dtype);
    int64_t n = eng_tensor_numel(out[0]);
    char *y = out[0]->data;
    for (int64_t i = 0; i < n; i++)
        memcpy(y + (size_t)i * es, f->value, es);
    return 0;
}

static int parse_eye_like(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_fill_attrs *f = &a->shape.fill;
    int64_t dt;
    int rc;
    if ((rc = eng_attr_int(c, "dtype", 0, &dt)) < 0) return rc;
    if (dt < 0 || dt > 31) return eng_attr_err(c, ROUSE_EFORMAT, "dtype", "is not an element type");
    f->dtype = (int)dt;
    return eng_attr_int(c, "k", 0, &f->k);
}

static int infer_eye_like(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    if (x->rank != 2)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'input' must be 2-D, has rank %d",
                              x->rank);
    int dt = c->res->shape.fill.dtype ? c->res->shape.fill.dtype : x->dtype;
    c->res->shape.fill.dtype = dt;
    eng_infer_set_out(c, 0, dt, 2, x->shape);
    return 0;
}

static int run_eye_like(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                        eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)nd;
    (void)in;
    (void)eb;
    eng_tensor *y = out[0];
    size_t es = eng_dtype_size(y->dtype);
    int64_t rows = y->shape[0], cols = y->shape[1], k = a->shape.fill.k;
    memset(y->data, 0, (size_t)(rows * cols) * es);
    if (k >= cols || k <= -rows) return 0; /* no diagonal inside; i + k cannot overflow below */
    for (int64_t i = k < 0 ? -k : 0; i < rows && i + k < cols; i++)
        sx_store_num(y->dtype, (char *)y->data + (size_t)(i * cols + i + k) * es, 1.0);
    return 0;
}

/* --- Range ------------------------------------------------------------------ */

#define RANGE_TYPES                                                                                \
    (ENG_DTM(FLOAT) | ENG_DTM(DOUBLE) | ENG_DTM(INT16) | ENG_DTM(INT32) | ENG_DTM(INT64))

/* One scalar input of Range, known at prepare. */
static int range_scalar(eng_infer_ctx *c, int i, const void **p)
{
    int rc;
    if (i > 0 && (rc = eng_infer_same_dtype(c, 0, i)) < 0) return rc;
    if (eng_tensor_numel(c->in[i]) != 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input '%s' must be a scalar",
                              eng_infer_in_name(c, i));
    *p = sx_infer_data(c, i, &rc);
    return rc;
}

/* max(ceil((limit - start) / delta), 0), exact for integer types. */
static int range_count(eng_infer_ctx *c, int dt, const void *s, const void *l, const void *d,
                       int64_t *n)
{
    if (sx_is_float(dt)) {
        double start = sx_load_f64(dt, s), limit = sx_load_f64(dt, l), delta = sx_load_f64(dt, d);
        if (delta == 0 || delta != delta || start != start || limit != limit)
            return eng_infer_fail(c, ROUSE_ERANGE, "delta must be a non-zero number");
        double cnt = ceil((limit - start) / delta);
        if (!(cnt < 9.0e18))
            return eng_infer_fail(c, ROUSE_ETOOBIG, "the range has too many elements");
        *n = cnt > 0 ? (int64_t)cnt : 0;
        return 0;
    }
    __int128 start = (int64_t)sx_load_bits(dt, s), limit = (int64_t)sx_load_bits(dt, l),
             delta = (int64_t)sx_load_bits(dt, d);
    if (delta == 0) return eng_infer_fail(c, ROUSE_ERANGE, "delta must not be zero");
    __int128 diff = limit - start, cnt = 0;
    if (delta > 0 && diff > 0) cnt = (diff + delta - 1) / delta;
    if (delta < 0 && diff < 0) cnt = (-diff + -delta - 1) / -delta;
    if (cnt > INT64_MAX) return eng_infer_fail(c, ROUSE_ETOOBIG, "the range has too many elements");
    *n = (int64_t)cnt;
    return 0;
}

static int infer_range(eng_infer_ctx *c)
{
    const void *s = NULL, *l = NULL, *d = NULL;
    int rc;
    if ((rc = range_scalar(c, 0, &s)) < 0 || (rc = range_scalar(c, 1, &l)) < 0 ||
        (rc = range_scalar(c, 2, &d)) < 0)
        return rc;
    int64_t n;
    if ((rc = range_count(c, c->in[0]->dtype, s, l, d, &n)) < 0) return rc;
    eng_infer_set_out(c, 0, c->in[0]->dtype, 1, &n);
    return 0;
}

static int run_range(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)nd;
    (void)a;
    (void)eb;
    int dt = in[0]->dtype;
    size_t es = eng_dtype_size(dt);
    int64_t n = out[0]->shape[0];
    char *y = out[0]->data;
    if (sx_is_float(dt)) {
        double start = sx_load_f64(dt, in[0]->data), delta = sx_load_f64(dt, in[2]->data);
        for (int64_t i = 0; i < n; i++)
            sx_store_f64(dt, y + (size_t)i * es, start + (double)i * delta);
        return 0;
    }
    uint64_t start = sx_load_bits(dt, in[0]->data), delta = sx_load_bits(dt, in[2]->data);
    for (int64_t i = 0; i < n; i++)
        sx_store_bits(dt, y + (size_t)i * es, start + (uint64_t)i * delta);
    return 0;
}

/* --- Expand, Tile ------------------------------------------------------------ */

static int infer_expand(eng_infer_ctx *c)
{
    int rank, rc, r;
    int64_t dims[ENG_MAX_RANK], y[ENG_MAX_RANK];
    if ((rc = read_dims(c, 1, &rank, dims)) < 0) return rc;
    const eng_tensor *x = c->in[0];
    if (!eng_broadcast_shapes(x->rank, x->shape, rank, dims, &r, y)) {
        char a[160], b[160];
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'input' %s does not broadcast to %s",
                              eng_shape_str(x->rank, x->shape, a, sizeof(a)),
                              eng_shape_str(rank, dims, b, sizeof(b)));
    }
    eng_infer_set_out(c, 0, x->dtype, r, y);
    return 0;
}

/* Input strides of x viewed broadcast to y's shape (numpy rules). */
static void bcast_strides(const eng_tensor *x, const eng_tensor *y, int64_t *st)
{
    int64_t xs[ENG_MAX_RANK];
    sx_strides(x->rank, x->shape, xs);
    int off = y->rank - x->rank;
    for (int d = 0; d < y->rank; d++) {
        int k = d - off;
        st[d] = k < 0 || x->shape[k] == 1 ? 0 : xs[k];
    }
}

static int run_expand(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                      eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    int64_t st[ENG_MAX_RANK];
    if (in[0]->rank > out[0]->rank)
        return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "output rank below the input's");
    bcast_strides(in[0], out[0], st);
    sx_copy_strided(out[0]->rank, out[0]->shape, st, 0, eng_dtype_size(in[0]->dtype), in[0]->data,
                    out[0]->data);
    return 0;
}

static int infer_tile(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    int n, rc;
    int64_t rep[ENG_MAX_RANK], y[ENG_MAX_RANK];
    if ((rc = eng_infer_read_ints(c, 1, ENG_MAX_RANK, &n, rep)) < 0) return rc;
    if (n != x->rank || c->in[1]->rank != 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'repeats' must be 1-D with %d values (the rank of input "
                              "'input'), has %d",
                              x->rank, n);
    for (int d = 0; d < n; d++) {
        if (rep[d] < 0)
            return eng_infer_fail(c, ROUSE_ERANGE, "input 'repeats' has a negative value %lld",
                                  (long long)rep[d]);
        if (rep[d] && x->shape[d] > INT64_MAX / rep[d])
            return eng_infer_fail(c, ROUSE_ETOOBIG, "input 'repeats' makes dim %d too large", d);
        y[d] = x->shape[d] * rep[d];
    }
    eng_infer_set_out(c, 0, x->dtype, x->rank, y);
    return 0;
}

/* Each output dim d of extent rep * n is viewed as the pair (rep, n): the
 * output is then a strided copy with stride 0 over the repetitions. */
static int run_tile(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                    eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    const eng_tensor *x = in[0];
    int64_t xs[ENG_MAX_RANK], shape[2 * ENG_MAX_RANK], st[2 * ENG_MAX_RANK];
    if (eng_tensor_numel(out[0]) == 0) return 0;
    sx_strides(x->rank, x->shape, xs);
    for (int d = 0; d < x->rank; d++) {
        if (x->shape[d] == 0 || out[0]->shape[d] % x->shape[d])
            return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "output dim %d is not a multiple", d);
        shape[2 * d] = out[0]->shape[d] / x->shape[d];
        st[2 * d] = 0;
        shape[2 * d + 1] = x->shape[d];
        st[2 * d + 1] = xs[d];
    }
    sx_copy_strided(2 * x->rank, shape, st, 0, eng_dtype_size(x->dtype), x->data, out[0]->data);
    return 0;
}

/* --- Trilu ------------------------------------------------------------------ */

static int parse_trilu(const eng_attr_ctx *c, eng_attrs *a)
{
    int upper, rc;
    if ((rc = eng_attr_flag(c, "upper", 1, &upper)) < 0) return rc;
    a->shape.trilu.upper = upper;
    return 0;
}

static int check_trilu(const eng_node *n, rouse_errbuf *eb)
{
    int u = n->attrs.shape.trilu.upper;
    return u == 0 || u == 1 ? 0 : sx_attr_bad(n, eb, "upper", "must be 0 or 1, got %d", u);
}

static int infer_trilu(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    const eng_tensor *k = eng_infer_input(c, 1);
    if (x->rank < 2)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'input' must have rank 2 or more, has %d",
                              x->rank);
    if (k && (k->dtype != ENG_DT_INT64 || eng_tensor_numel(k) != 1))
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'k' must be one int64");
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

/* k is read here, at run time: it does not change the output's shape. */
static int run_trilu(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)eb;
    const eng_tensor *x = in[0];
    size_t es = eng_dtype_size(x->dtype);
    int64_t rows = x->shape[x->rank - 2], cols = x->shape[x->rank - 1];
    int64_t mats = eng_tensor_numel(x) / (rows * cols > 0 ? rows * cols : 1);
    int64_t k = 0;
    if (nd->n_in > 1 && in[1]) memcpy(&k, in[1]->data, sizeof(k));
    /* Clamped so that i + k never overflows: past these bounds the whole
     * matrix is kept or cleared alike. */
    k = k > cols ? cols : k < -rows ? -rows : k;
    const char *src = x->data;
    char *dst = out[0]->data;
    if (rows * cols == 0) return 0;
    for (int64_t m = 0; m < mats; m++) {
        for (int64_t i = 0; i < rows; i++) {
            size_t row = (size_t)((m * rows + i) * cols) * es;
            /* upper keeps columns j >= i + k; lower keeps j <= i + k. */
            int64_t edge = i + k;
            int64_t lo = a->shape.trilu.upper ? edge : 0;
            int64_t hi = a->shape.trilu.upper ? cols : edge + 1;
            lo = lo < 0 ? 0 : lo > cols ? cols : lo;
            hi = hi < 0 ? 0 : hi > cols ? cols : hi;
            memset(dst + row, 0, (size_t)cols * es);
            if (hi > lo)
                memcpy(dst + row + (size_t)lo * es, src + row + (size_t)lo * es,
                       (size_t)(hi - lo) * es);
        }
    }
    return 0;
}

/* --- descriptors ------------------------------------------------------------ */

static const eng_op_desc op_shape = {
    .op = ENG_OP_SHAPE,
    .name = "Shape",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"data"},
    .dtypes = ENG_DTM_ANY,
    .parse = parse_shape,
    .check = check_shape,
    .infer = infer_shape,
    .run = run_shape,
};

static const eng_op_desc op_size = {
    .op = ENG_OP_SIZE,
    .name = "Size",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"data"},
    .dtypes = ENG_DTM_ANY,
    .infer = infer_size,
    .run = run_size,
};

static const eng_op_desc op_constant_of_shape = {
    .op = ENG_OP_CONSTANT_OF_SHAPE,
    .name = "ConstantOfShape",
    .since = 9,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"input"},
    .dtypes = ENG_DTM(INT64),
    .value_inputs = 1u << 0,
    .parse = parse_constant_of_shape,
    .check = check_fill,
    .infer = infer_constant_of_shape,
    .run = run_constant_of_shape,
};

static const eng_op_desc op_eye_like = {
    .op = ENG_OP_EYE_LIKE,
    .name = "EyeLike",
    .since = 9,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"input"},
    .dtypes = FILL_TYPES,
    .parse = parse_eye_like,
    .check = check_fill,
    .infer = infer_eye_like,
    .run = run_eye_like,
};

static const eng_op_desc op_range = {
    .op = ENG_OP_RANGE,
    .name = "Range",
    .since = 11,
    .min_in = 3,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"start", "limit", "delta"},
    .dtypes = RANGE_TYPES,
    .value_inputs = (1u << 0) | (1u << 1) | (1u << 2),
    .infer = infer_range,
    .run = run_range,
};

static const eng_op_desc op_expand = {
    .op = ENG_OP_EXPAND,
    .name = "Expand",
    .since = 8,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"input", "shape"},
    .dtypes = ENG_DTM_ANY,
    .value_inputs = 1u << 1,
    .infer = infer_expand,
    .run = run_expand,
};

static const eng_op_desc op_tile = {
    .op = ENG_OP_TILE,
    .name = "Tile",
    .since = 6,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"input", "repeats"},
    .dtypes = ENG_DTM_ANY,
    .value_inputs = 1u << 1,
    .infer = infer_tile,
    .run = run_tile,
};

static const eng_op_desc op_trilu = {
    .op = ENG_OP_TRILU,
    .name = "Trilu",
    .since = 14,
    .min_in = 1,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"input", "k"},
    .dtypes = ENG_DTM_ANY,
    .parse = parse_trilu,
    .check = check_trilu,
    .infer = infer_trilu,
    .run = run_trilu,
};

const eng_op_desc *const eng_ops_shape[] = {
    &op_shape, &op_size, &op_constant_of_shape, &op_eye_like, &op_range, &op_expand, &op_tile,
    &op_trilu, NULL,
};
