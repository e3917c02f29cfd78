/*
 * Operator descriptors of the reduce family (see engine/op.h): the
 * reductions (ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
 * ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare), ArgMax and
 * ArgMin, TopK and CumSum. Einsum is in reduce_einsum.c, the
 * normalizations in norm.c.
 *
 * One kernel serves every reduction: red_geom (reduce_int.h) splits the
 * input's dims into kept and reduced ones, and run_reduce walks the reduced
 * set of each output element with the step of its kind (enum red_kind,
 * which has a MEAN kind so that ReduceMean can use the same kernel).
 *
 * Guarantees: axes are normalized, sorted and checked for duplicates by
 * shape inference; a reduction over an empty set gives the identity of
 * its kind (0 for sums, 1 for products, -inf or the type's minimum for Max,
 * +inf or the type's maximum for Min, -inf for the log forms); integer
 * sums and products wrap modulo 2^bits as numpy's; floating types
 * accumulate in double (half types through float). TopK returns equal
 * values in index order (the order of a stable sort), and needs no memory
 * beyond its outputs.
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/op.h"
#include "engine/ops/reduce_int.h"

/* ------------------------------------------------------------------ */
/* Reductions */

enum red_kind {
    RK_SUM,
    RK_MEAN,
    RK_MAX,
    RK_MIN,
    RK_PROD,
    RK_L1,
    RK_L2,
    RK_LOG_SUM,
    RK_LOG_SUM_EXP,
    RK_SUM_SQUARE,
};

static int red_kind_of(eng_op op)
{
    switch (op) {
    case ENG_OP_REDUCE_MAX:
        return RK_MAX;
    case ENG_OP_REDUCE_MIN:
        return RK_MIN;
    case ENG_OP_REDUCE_PROD:
        return RK_PROD;
    case ENG_OP_REDUCE_L1:
        return RK_L1;
    case ENG_OP_REDUCE_L2:
        return RK_L2;
    case ENG_OP_REDUCE_LOG_SUM:
        return RK_LOG_SUM;
    case ENG_OP_REDUCE_LOG_SUM_EXP:
        return RK_LOG_SUM_EXP;
    case ENG_OP_REDUCE_SUM_SQUARE:
        return RK_SUM_SQUARE;
    case ENG_OP_REDUCE_MEAN:
        return RK_MEAN;
    default:
        return RK_SUM;
    }
}

/* ReduceSum takes its axes from input 1 since opset 13; the others keep the
 * attribute through opset 17 (the input form is opset 18). */
static bool axes_from_input(const eng_node *n)
{
    return n->op == ENG_OP_REDUCE_SUM && n->opset >= 13;
}

static void reduce_counts(const eng_node *n, int *min_in, int *max_in, int *max_out)
{
    (void)min_in;
    (void)max_out;
    *max_in = axes_from_input(n) ? 2 : 1;
}

static int check_axes_list(const eng_node *n, rouse_errbuf *eb, const char *attr, int count,
                           const int64_t *axes)
{
    for (int i = 0; i < count; i++)
        if (axes[i] < -ENG_MAX_RANK || axes[i] >= ENG_MAX_RANK)
            return eng_run_fail(n, eb, ROUSE_EFORMAT,
                                "attribute '%s' value %lld is out of range for any supported "
                                "rank (at most %d)",
                                attr, (long long)axes[i], ENG_MAX_RANK);
    return 0;
}

static int parse_reduce(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_reduce_axes_attrs *r = &a->reduce.red;
    int rc;
    if ((rc = eng_attr_flag(c, "keepdims", 1, &r->keepdims)) < 0) return rc;
    if ((rc = eng_attr_flag(c, "noop_with_empty_axes", 0, &r->noop_with_empty_axes)) < 0)
        return rc;
    r->n_axes = -1;
    if (!axes_from_input(c->n) &&
        (rc = eng_attr_ints(c, "axes", ENG_MAX_RANK, &r->n_axes, r->axes)) < 0)
        return rc;
    return 0;
}

static int check_reduce(const eng_node *n, rouse_errbuf *eb)
{
    const eng_reduce_axes_attrs *r = &n->attrs.reduce.red;
    if (r->n_axes < -1 || r->n_axes > ENG_MAX_RANK || (r->keepdims & ~1) ||
        (r->noop_with_empty_axes & ~1))
        return eng_run_fail(n, eb, ROUSE_EFORMAT, "bad attributes");
    return check_axes_list(n, eb, "axes", r->n_axes, r->axes);
}

/* Normalizes `count` axes for rank r into sorted, unique `out`. */
static int norm_axes(eng_infer_ctx *c, int count, const int64_t *axes, int r, int64_t *out)
{
    bool seen[ENG_MAX_RANK] = {false};
    int rc;
    for (int i = 0; i < count; i++) {
        int64_t ax;
        if ((rc = eng_infer_norm_axis(c, axes[i], r, false, &ax)) < 0) return rc;
        if (seen[ax])
            return eng_infer_fail(c, ROUSE_EFORMAT, "axis %lld is given twice",
                                  (long long)axes[i]);
        seen[ax] = true;
    }
    int k = 0;
    for (int d = 0; d < r; d++)
        if (seen[d]) out[k++] = d;
    return 0;
}

static int infer_reduce(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_reduce_axes_attrs *r = &c->res->reduce.red;
    int count = r->n_axes;
    int64_t given[ENG_MAX_RANK];
    int rc;
    if (axes_from_input(c->n) && eng_infer_input(c, 1)) {
        if ((rc = eng_infer_read_ints(c, 1, ENG_MAX_RANK, &count, given)) < 0) return rc;
    } else {
        for (int i = 0; i < count; i++)
            given[i] = r->axes[i];
    }
    if (count <= 0) {
        if (r->noop_with_empty_axes) {
            count = 0;
        } else {
            count = x->rank;
            for (int d = 0; d < x->rank; d++)
                given[d] = d;
        }
    }
    if ((rc = norm_axes(c, count, given, x->rank, r->axes)) < 0) return rc;
    r->n_axes = count;

    bool red[ENG_MAX_RANK] = {false};
    for (int i = 0; i < count; i++)
        red[r->axes[i]] = true;
    int64_t shape[ENG_MAX_RANK];
    int yr = 0;
    for (int d = 0; d < x->rank; d++) {
        if (!red[d])
            shape[yr++] = x->shape[d];
        else if (r->keepdims)
            shape[yr++] = 1;
    }
    eng_infer_set_out(c, 0, x->dtype, yr, shape);
    return 0;
}

/* One floating reduction (also the log forms and L2 of integers). Inlined
 * into reduce_one_f with dt a constant for float, so that the common type
 * reads its elements without a switch per element. */
static inline __attribute__((always_inline)) double
reduce_one_f_impl(const red_geom *g, int kind, int dt, const void *x, int64_t base)
{
    double acc;
    if (g->count == 0) {
        switch (kind) {
        case RK_PROD:
            return 1.0;
        case RK_MAX:
        case RK_LOG_SUM:
        case RK_LOG_SUM_EXP:
            return -INFINITY;
        case RK_MIN:
            return INFINITY;
        case RK_MEAN:
            return NAN;
        default:
            return 0.0;
        }
    }
    switch (kind) {
    case RK_MAX:
        acc = -INFINITY;
        RED_WALK(g, base, {
            double v = elem_get_f(dt, x, off);
            if (v > acc || isnan(v)) acc = v;
            if (isnan(acc)) return acc;
        });
        return acc;
    case RK_MIN:
        acc = INFINITY;
        RED_WALK(g, base, {
            double v = elem_get_f(dt, x, off);
            if (v < acc || isnan(v)) acc = v;
            if (isnan(acc)) return acc;
        });
        return acc;
    case RK_PROD:
        acc = 1.0;
        RED_WALK(g, base, acc *= elem_get_f(dt, x, off));
        return acc;
    case RK_L1:
        acc = 0.0;
        RED_WALK(g, base, acc += fabs(elem_get_f(dt, x, off)));
        return acc;
    case RK_L2:
    case RK_SUM_SQUARE:
        acc = 0.0;
        RED_WALK(g, base, {
            double v = elem_get_f(dt, x, off);
            acc += v * v;
        });
        return kind == RK_L2 ? sqrt(acc) : acc;
    case RK_LOG_SUM_EXP: {
        /* Shifted by the maximum so that large inputs do not overflow. */
        double m = -INFINITY;
        RED_WALK(g, base, {
            double v = elem_get_f(dt, x, off);
            if (v > m || isnan(v)) m = v;
        });
        if (isnan(m) || isinf(m)) return m;
        acc = 0.0;
        RED_WALK(g, base, acc += exp(elem_get_f(dt, x, off) - m));
        return m + log(acc);
    }
    default: /* SUM, MEAN, LOG_SUM */
        acc = 0.0;
        RED_WALK(g, base, acc += elem_get_f(dt, x, off));
        if (kind == RK_MEAN) return acc / (double)g->count;
        if (kind == RK_LOG_SUM) return log(acc);
        return acc;
    }
}

static double reduce_one_f(const red_geom *g, int kind, int dt, const void *x, int64_t base)
{
    if (dt == ENG_DT_FLOAT) return reduce_one_f_impl(g, kind, ENG_DT_FLOAT, x, base);
    return reduce_one_f_impl(g, kind, dt, x, base);
}

/* The smallest and largest value of an integer type, as int64 bits
 * (UINT64_MAX is -1). */
static void int_limits(int dt, int64_t *lo, int64_t *hi)
{
    switch (dt) {
    case ENG_DT_INT8:
        *lo = INT8_MIN, *hi = INT8_MAX;
        break;
    case ENG_DT_INT16:
        *lo = INT16_MIN, *hi = INT16_MAX;
        break;
    case ENG_DT_INT32:
        *lo = INT32_MIN, *hi = INT32_MAX;
        break;
    case ENG_DT_INT64:
        *lo = INT64_MIN, *hi = INT64_MAX;
        break;
    case ENG_DT_UINT8:
    case ENG_DT_BOOL:
        *lo = 0, *hi = UINT8_MAX;
        break;
    case ENG_DT_UINT16:
        *lo = 0, *hi = UINT16_MAX;
        break;
    case ENG_DT_UINT32:
        *lo = 0, *hi = UINT32_MAX;
        break;
    default:
        *lo = 0, *hi = -1;
        break;
    }
}

/* One integer reduction (sum, product, L1, sum of squares wrap). */
static int64_t reduce_one_i(const red_geom *g, int kind, int dt, const void *x, int64_t base)
{
    int64_t lo, hi;
    int_limits(dt, &lo, &hi);
    bool u64 = dt == ENG_DT_UINT64;
    uint64_t acc;
    switch (kind) {
    case RK_MAX: {
        int64_t m = lo;
        RED_WALK(g, base, {
            int64_t v = elem_get_i(dt, x, off);
            if (u64 ? (uint64_t)v > (uint64_t)m : v > m) m = v;
        });
        return m;
    }
    case RK_MIN: {
        int64_t m = hi;
        RED_WALK(g, base, {
            int64_t v = elem_get_i(dt, x, off);
            if (u64 ? (uint64_t)v < (uint64_t)m : v < m) m = v;
        });
        return m;
    }
    case RK_PROD:
        if (g->count == 0) return 1;
        acc = 1;
        RED_WALK(g, base, acc *= (uint64_t)elem_get_i(dt, x, off));
        return (int64_t)acc;
    case RK_L1:
        acc = 0;
        RED_WALK(g, base, {
            int64_t v = elem_get_i(dt, x, off);
            acc += !u64 && v < 0 ? -(uint64_t)v : (uint64_t)v;
        });
        return (int64_t)acc;
    case RK_SUM_SQUARE:
        acc = 0;
        RED_WALK(g, base, {
            uint64_t v = (uint64_t)elem_get_i(dt, x, off);
            acc += v * v;
        });
        return (int64_t)acc;
    case RK_MEAN:
        acc = 0;
        RED_WALK(g, base, acc += (uint64_t)elem_get_i(dt, x, off));
        if (g->count == 0) return 0;
        if (u64) return (int64_t)(acc / (uint64_t)g->count);
        return (int64_t)acc / g->count;
    default:
        if (g->count == 0) return 0;
        acc = 0;
        RED_WALK(g, base, acc += (uint64_t)elem_get_i(dt, x, off));
        return (int64_t)acc;
    }
}

static int run_reduce(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                      eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_reduce_axes_attrs *r = &a->reduce.red;
    const eng_tensor *x = in[0];
    eng_tensor *y = out[0];
    if (r->n_axes < 0 || r->n_axes > x->rank)
        return eng_run_fail(nd, eb, ROUSE_EINVAL, "axes are not resolved");
    bool red[ENG_MAX_RANK] = {false};
    for (int i = 0; i < r->n_axes; i++) {
        if (r->axes[i] < 0 || r->axes[i] >= x->rank)
            return eng_run_fail(nd, eb, ROUSE_EINVAL, "axes are not resolved");
        red[r->axes[i]] = true;
    }
    red_geom g;
    red_geom_init(&g, x->rank, x->shape, red);
    if (g.n_out != eng_tensor_numel(y))
        return eng_run_fail(nd, eb, ROUSE_EMISMATCH, "output size does not match the axes");
    int kind = red_kind_of(nd->op), dt = x->dtype;
    bool as_float = red_is_float(dt) || kind == RK_L2 || kind == RK_LOG_SUM ||
                    kind == RK_LOG_SUM_EXP;
    if (g.n_out == 0) return 0;
    int64_t kidx[ENG_MAX_RANK] = {0}, koff = 0, o = 0;
    do {
        if (as_float)
            red_store_f(dt, y->data, o, reduce_one_f(&g, kind, dt, x->data, koff));
        else
            red_store_i(dt, y->data, o, reduce_one_i(&g, kind, dt, x->data, koff));
        o++;
    } while (red_next(g.nk, g.kshape, g.kstride, kidx, &koff));
    return 0;
}

#define REDUCE_DESC(var, OP, NAME, TYPES)                                                          \
    static const eng_op_desc var = {                                                               \
        .op = OP,                                                                                  \
        .name = NAME,                                                                              \
        .since = 1,                                                                                \
        .min_in = 1,                                                                               \
        .max_in = 2,                                                                               \
        .max_out = 1,                                                                              \
        .in_names = {"data", "axes"},                                                              \
        .dtypes = TYPES,                                                                           \
        .value_inputs = 1u << 1,                                                                   \
        .counts = reduce_counts,                                                                   \
        .parse = parse_reduce,                                                                     \
        .check = check_reduce,                                                                     \
        .infer = infer_reduce,                                                                     \
        .run = run_reduce,                                                                         \
    }

/* ONNX allows float, double, half types and 32/64-bit integers; Max and Min
 * add 8-bit integers (opset 12) and bool (opset 20). All integer widths
 * compute the same way here. */
#define RED_TYPES (ENG_DTM_FLOATS | ENG_DTM_INTS)
REDUCE_DESC(op_reduce_sum, ENG_OP_REDUCE_SUM, "ReduceSum", RED_TYPES);
REDUCE_DESC(op_reduce_max, ENG_OP_REDUCE_MAX, "ReduceMax", RED_TYPES | ENG_DTM(BOOL));
REDUCE_DESC(op_reduce_min, ENG_OP_REDUCE_MIN, "ReduceMin", RED_TYPES | ENG_DTM(BOOL));
REDUCE_DESC(op_reduce_prod, ENG_OP_REDUCE_PROD, "ReduceProd", RED_TYPES);
REDUCE_DESC(op_reduce_l1, ENG_OP_REDUCE_L1, "ReduceL1", RED_TYPES);
REDUCE_DESC(op_reduce_l2, ENG_OP_REDUCE_L2, "ReduceL2", RED_TYPES);
REDUCE_DESC(op_reduce_log_sum, ENG_OP_REDUCE_LOG_SUM, "ReduceLogSum", RED_TYPES);
REDUCE_DESC(op_reduce_log_sum_exp, ENG_OP_REDUCE_LOG_SUM_EXP, "ReduceLogSumExp", RED_TYPES);
REDUCE_DESC(op_reduce_sum_square, ENG_OP_REDUCE_SUM_SQUARE, "ReduceSumSquare", RED_TYPES);

/* ------------------------------------------------------------------ */
/* ArgMax, ArgMin */

static int parse_arg(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_arg_attrs *r = &a->reduce.arg;
    int rc;
    if ((rc = eng_attr_int(c, "axis", 0, &r->axis)) < 0) return rc;
    if ((rc = eng_attr_flag(c, "keepdims", 1, &r->keepdims)) < 0) return rc;
    if (c->n->opset >= 12 &&
        (rc = eng_attr_flag(c, "select_last_index", 0, &r->select_last_index)) < 0)
        return rc;
    if (r->axis < -ENG_MAX_RANK || r->axis >= ENG_MAX_RANK)
        return eng_attr_err(c, ROUSE_EFORMAT, "axis", "is out of range for any supported rank");
    return 0;
}

static int check_arg(const eng_node *n, rouse_errbuf *eb)
{
    const eng_arg_attrs *r = &n->attrs.reduce.arg;
    if (r->axis < -ENG_MAX_RANK || r->axis >= ENG_MAX_RANK || (r->keepdims & ~1) ||
        (r->select_last_index & ~1))
        return eng_run_fail(n, eb, ROUSE_EFORMAT, "bad attributes");
    return 0;
}

static int infer_arg(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_arg_attrs *r = &c->res->reduce.arg;
    int rc;
    if ((rc = eng_infer_norm_axis(c, r->axis, x->rank, false, &r->axis)) < 0) return rc;
    if (x->shape[r->axis] == 0)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "axis %lld of input 'data' is empty: there is no %s",
                              (long long)r->axis, c->n->op == ENG_OP_ARGMAX ? "maximum" : "minimum");
    int64_t shape[ENG_MAX_RANK];
    int yr = 0;
    for (int d = 0; d < x->rank; d++) {
        if (d != r->axis)
            shape[yr++] = x->shape[d];
        else if (r->keepdims)
            shape[yr++] = 1;
    }
    eng_infer_set_out(c, 0, ENG_DT_INT64, yr, shape);
    return 0;
}

/* Three-way comparison of elements i and j of p (type dt); NaN compares
 * above every number, as numpy's argmax sees it first. */
static int cmp_elem(int dt, const void *p, int64_t i, int64_t j)
{
    if (red_is_float(dt)) {
        double a = elem_get_f(dt, p, i), b = elem_get_f(dt, p, j);
        if (isnan(a) || isnan(b)) return isnan(a) - isnan(b);
        return (a > b) - (a < b);
    }
    int64_t a = elem_get_i(dt, p, i), b = elem_get_i(dt, p, j);
    if (dt == ENG_DT_UINT64) return ((uint64_t)a > (uint64_t)b) - ((uint64_t)a < (uint64_t)b);
    return (a > b) - (a < b);
}

static int run_arg(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                   eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_arg_attrs *r = &a->reduce.arg;
    const eng_tensor *x = in[0];
    if (r->axis < 0 || r->axis >= x->rank)
        return eng_run_fail(nd, eb, ROUSE_EINVAL, "axis is not resolved");
    int64_t len = x->shape[r->axis], inner = 1, outer = 1;
    for (int d = r->axis + 1; d < x->rank; d++)
        inner *= x->shape[d];
    for (int d = 0; d < r->axis; d++)
        outer *= x->shape[d];
    if (outer * inner == 0) return 0;
    if (len <= 0) return eng_run_fail(nd, eb, ROUSE_EMISMATCH, "the axis is empty");
    int sign = nd->op == ENG_OP_ARGMAX ? 1 : -1;
    bool last = r->select_last_index;
    int64_t *y = out[0]->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * len * inner + i, best = 0;
            for (int64_t k = 1; k < len; k++) {
                int c = sign * cmp_elem(x->dtype, x->data, base + k * inner, base + best * inner);
                if (c > 0 || (c == 0 && last)) best = k;
            }
            y[o * inner + i] = best;
        }
    }
    return 0;
}

static const eng_op_desc op_argmax = {
    .op = ENG_OP_ARGMAX,
    .name = "ArgMax",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"data"},
    .dtypes = ENG_DTM_FLOATS | ENG_DTM_INTS,
    .parse = parse_arg,
    .check = check_arg,
    .infer = infer_arg,
    .run = run_arg,
};

static const eng_op_desc op_argmin = {
    .op = ENG_OP_ARGMIN,
    .name = "ArgMin",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"data"},
    .dtypes = ENG_DTM_FLOATS | ENG_DTM_INTS,
    .parse = parse_arg,
    .check = check_arg,
    .infer = infer_arg,
    .run = run_arg,
};

/* ------------------------------------------------------------------ */
/* TopK */

/* k is an attribute before opset 10, input 'K' since. */
static void topk_counts(const eng_node *n, int *min_in, int *max_in, int *max_out)
{
    (void)max_out;
    *min_in = *max_in = n->opset >= 10 ? 2 : 1;
}

static int parse_topk(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_topk_attrs *r = &a->reduce.topk;
    int rc;
    if ((rc = eng_attr_int(c, "axis", -1, &r->axis)) < 0) return rc;
    if (r->axis < -ENG_MAX_RANK || r->axis >= ENG_MAX_RANK)
        return eng_attr_err(c, ROUSE_EFORMAT, "axis", "is out of range for any supported rank");
    r->largest = r->sorted = 1;
    if (c->n->opset >= 11) {
        if ((rc = eng_attr_flag(c, "largest", 1, &r->largest)) < 0) return rc;
        if ((rc = eng_attr_flag(c, "sorted", 1, &r->sorted)) < 0) return rc;
    }
    r->k = -1;
    if (c->n->opset < 10) {
        if (!eng_attr_find(c, "k")) return eng_attr_err(c, ROUSE_EFORMAT, "k", "is required");
        if ((rc = eng_attr_int(c, "k", 0, &r->k)) < 0) return rc;
        if (r->k < 0) return eng_attr_err(c, ROUSE_EFORMAT, "k", "must not be negative");
    }
    return 0;
}

static int check_topk(const eng_node *n, rouse_errbuf *eb)
{
    const eng_topk_attrs *r = &n->attrs.reduce.topk;
    if (r->axis < -ENG_MAX_RANK || r->axis >= ENG_MAX_RANK || (r->largest & ~1) ||
        (r->sorted & ~1) || r->k < -1)
        return eng_run_fail(n, eb, ROUSE_EFORMAT, "bad attributes");
    return 0;
}

static int infer_topk(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_topk_attrs *r = &c->res->reduce.topk;
    int rc;
    if ((rc = eng_infer_norm_axis(c, r->axis, x->rank, false, &r->axis)) < 0) return rc;
    if (c->n->opset >= 10) {
        int count;
        int64_t k;
        if ((rc = eng_infer_read_ints(c, 1, 1, &count, &k)) < 0) return rc;
        if (count != 1)
            return eng_infer_fail(c, ROUSE_EFORMAT, "input 'K' must hold one value");
        r->k = k;
    }
    if (r->k < 0 || r->k > x->shape[r->axis])
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "k = %lld is out of range for axis %lld of input 'X' (size %lld)",
                              (long long)r->k, (long long)r->axis,
                              (long long)x->shape[r->axis]);
    int64_t shape[ENG_MAX_RANK];
    memcpy(shape, x->shape, sizeof(shape));
    shape[r->axis] = r->k;
    eng_infer_set_out(c, 0, x->dtype, x->rank, shape);
    eng_infer_set_out(c, 1, ENG_DT_INT64, x->rank, shape);
    return 0;
}

/* The order TopK returns: better values first, equal values by index. */
struct topk_order {
    int dt;
    const void *x;
    int64_t base, stride;
    int sign; /* 1 largest first, -1 smallest first */
};

static bool topk_better(const struct topk_order *t, int64_t i, int64_t j)
{
    int c = t->sign * cmp_elem(t->dt, t->x, t->base + i * t->stride, t->base + j * t->stride);
    return c > 0 || (c == 0 && i < j);
}

/* heap[0..n) (with element stride hs) keeps the worst kept index on top. */
static void topk_sift(const struct topk_order *t, int64_t *heap, int64_t hs, int64_t n, int64_t i)
{
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && topk_better(t, heap[w * hs], heap[l * hs])) w = l;
        if (r < n && topk_better(t, heap[w * hs], heap[r * hs])) w = r;
        if (w == i) return;
        int64_t tmp = heap[i * hs];
        heap[i * hs] = heap[w * hs];
        heap[w * hs] = tmp;
        i = w;
    }
}

static int run_topk(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                    eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_topk_attrs *r = &a->reduce.topk;
    const eng_tensor *x = in[0];
    if (r->axis < 0 || r->axis >= x->rank || r->k < 0 || r->k > x->shape[r->axis])
        return eng_run_fail(nd, eb, ROUSE_EINVAL, "k and axis are not resolved");
    if (!out[1])
        return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "output 'Indices' is required");
    int64_t len = x->shape[r->axis], k = r->k, inner = 1, outer = 1;
    for (int d = r->axis + 1; d < x->rank; d++)
        inner *= x->shape[d];
    for (int d = 0; d < r->axis; d++)
        outer *= x->shape[d];
    int64_t *idx = out[1]->data;
    size_t es = eng_dtype_size(x->dtype);
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            struct topk_order t = {x->dtype, x->data, o * len * inner + i, inner,
                                   r->largest ? 1 : -1};
            int64_t *heap = idx + o * k * inner + i, n = 0;
            if (k == 0) continue;
            for (int64_t e = 0; e < len; e++) {
                if (n < k) {
                    /* Sift up: parents are worse than their children. */
                    int64_t c = n++;
                    heap[c * inner] = e;
                    while (c > 0) {
                        int64_t p = (c - 1) / 2;
                        if (!topk_better(&t, heap[p * inner], heap[c * inner])) break;
                        int64_t tmp = heap[p * inner];
                        heap[p * inner] = heap[c * inner];
                        heap[c * inner] = tmp;
                        c = p;
                    }
                } else if (topk_better(&t, e, heap[0])) {
                    heap[0] = e;
                    topk_sift(&t, heap, inner, n, 0);
                }
            }
            /* Heap sort: the worst goes last, the best ends first. */
            for (int64_t m = n - 1; m > 0; m--) {
                int64_t tmp = heap[0];
                heap[0] = heap[m * inner];
                heap[m * inner] = tmp;
                topk_sift(&t, heap, inner, m, 0);
            }
            if (out[0])
                for (int64_t j = 0; j < k; j++)
                    memcpy((char *)out[0]->data + (size_t)(o * k * inner + i + j * inner) * es,
                           (const char *)x->data + (size_t)(t.base + heap[j * inner] * inner) * es,
                           es);
        }
    }
    return 0;
}

static const eng_op_desc op_topk = {
    .op = ENG_OP_TOPK,
    .name = "TopK",
    .since = 1,
    .min_in = 2,
    .max_in = 2,
    .max_out = 2,
    .in_names = {"X", "K"},
    .dtypes = ENG_DTM_FLOATS | ENG_DTM_INTS,
    .value_inputs = 1u << 1,
    .counts = topk_counts,
    .parse = parse_topk,
    .check = check_topk,
    .infer = infer_topk,
    .run = run_topk,
};

/* ------------------------------------------------------------------ */
/* CumSum */

static int parse_cumsum(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_cumsum_attrs *r = &a->reduce.cumsum;
    int rc;
    if ((rc = eng_attr_flag(c, "exclusive", 0, &r->exclusive)) < 0) return rc;
    return eng_attr_flag(c, "reverse", 0, &r->reverse);
}

static int check_cumsum(const eng_node *n, rouse_errbuf *eb)
{
    const eng_cumsum_attrs *r = &n->attrs.reduce.cumsum;
    if ((r->exclusive & ~1) || (r->reverse & ~1))
        return eng_run_fail(n, eb, ROUSE_EFORMAT, "bad attributes");
    return 0;
}

static int infer_cumsum(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_cumsum_attrs *r = &c->res->reduce.cumsum;
    int count, rc;
    int64_t axis;
    if (c->in[1]->rank > 1)
        return eng_infer_fail(c, ROUSE_EFORMAT, "input 'axis' must be a scalar");
    if ((rc = eng_infer_read_ints(c, 1, 1, &count, &axis)) < 0) return rc;
    if (count != 1) return eng_infer_fail(c, ROUSE_EFORMAT, "input 'axis' must hold one value");
    if (x->rank == 0)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'x' must have at least one dim");
    if ((rc = eng_infer_norm_axis(c, axis, x->rank, false, &r->axis)) < 0) return rc;
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

static int run_cumsum(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                      eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_cumsum_attrs *r = &a->reduce.cumsum;
    const eng_tensor *x = in[0];
    if (r->axis < 0 || r->axis >= x->rank)
        return eng_run_fail(nd, eb, ROUSE_EINVAL, "axis is not resolved");
    int64_t len = x->shape[r->axis], inner = 1, outer = 1;
    for (int d = r->axis + 1; d < x->rank; d++)
        inner *= x->shape[d];
    for (int d = 0; d < r->axis; d++)
        outer *= x->shape[d];
    int dt = x->dtype;
    bool fl = red_is_float(dt);
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            double fs = 0.0;
            uint64_t is = 0;
            for (int64_t s = 0; s < len; s++) {
                int64_t k = r->reverse ? len - 1 - s : s;
                int64_t at = o * len * inner + k * inner + i;
                if (fl) {
                    double v = elem_get_f(dt, x->data, at);
                    if (!r->exclusive) fs += v;
                    red_store_f(dt, out[0]->data, at, fs);
                    if (r->exclusive) fs += v;
                } else {
                    uint64_t v = (uint64_t)elem_get_i(dt, x->data, at);
                    if (!r->exclusive) is += v;
                    red_store_i(dt, out[0]->data, at, (int64_t)is);
                    if (r->exclusive) is += v;
                }
            }
        }
    }
    return 0;
}

static const eng_op_desc op_cumsum = {
    .op = ENG_OP_CUMSUM,
    .name = "CumSum",
    .since = 11,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"x", "axis"},
    .dtypes = ENG_DTM_FLOATS | ENG_DTM(INT32) | ENG_DTM(INT64) | ENG_DTM(UINT32) |
              ENG_DTM(UINT64),
    .value_inputs = 1u << 1,
    .parse = parse_cumsum,
    .check = check_cumsum,
    .infer = infer_cumsum,
    .run = run_cumsum,
};

const eng_op_desc *const eng_ops_reduce[] = {
    &op_reduce_sum,
    &op_reduce_max,
    &op_reduce_min,
    &op_reduce_prod,
    &op_reduce_l1,
    &op_reduce_l2,
    &op_reduce_log_sum,
    &op_reduce_log_sum_exp,
    &op_reduce_sum_square,
    &op_argmax,
    &op_argmin,
    &op_topk,
    &op_cumsum,
    NULL,
};
