/*
 * Operator descriptors of the math family (see engine/op.h): element-wise
 * unary arithmetic (Abs, Neg, Exp, Log, the trigonometric and hyperbolic
 * functions, Floor, Ceil, Round, Sign, Reciprocal), Mod, the variadic
 * Min, Max, Mean and Sum, and CastLike. Each op is one descriptor; its
 * shape rule, its reference kernel and its accepted types sit next to it.
 *
 * Guarantees: unary outputs have the input's shape and type; integer
 * negation and absolute value wrap modulo 2^bits, as in numpy. Float math
 * is computed in double and rounded once to the element type (float16 and
 * bfloat16 included). Integer Mod by zero gives 0 instead of trapping.
 * Variadic ops broadcast all their inputs (numpy rules); Min and Max
 * propagate NaN.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/op.h"
#include "engine/ops/elem.h"
#include "engine/ref/ref.h"

static int infer_same(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

/* Applies `F(v)` to every element of x into y for the listed types; the
 * unsigned casts make integer negation wrap instead of overflowing. */
#define UNARY_INT_CASES(F)                                                                         \
    case ENG_DT_INT8:                                                                              \
        for (int64_t i = 0; i < n; i++) {                                                          \
            int8_t v = ((const int8_t *)x->data)[i];                                               \
            ((int8_t *)y->data)[i] = (int8_t)(F);                                                  \
        }                                                                                          \
        return 0;                                                                                  \
    case ENG_DT_INT16:                                                                             \
        for (int64_t i = 0; i < n; i++) {                                                          \
            int16_t v = ((const int16_t *)x->data)[i];                                             \
            ((int16_t *)y->data)[i] = (int16_t)(F);                                                \
        }                                                                                          \
        return 0;                                                                                  \
    case ENG_DT_INT32:                                                                             \
        for (int64_t i = 0; i < n; i++) {                                                          \
            int32_t v = ((const int32_t *)x->data)[i];                                             \
            ((int32_t *)y->data)[i] = (int32_t)(uint32_t)(F);                                      \
        }                                                                                          \
        return 0;                                                                                  \
    case ENG_DT_INT64:                                                                             \
        for (int64_t i = 0; i < n; i++) {                                                          \
            int64_t v = ((const int64_t *)x->data)[i];                                             \
            ((int64_t *)y->data)[i] = (int64_t)(uint64_t)(F);                                      \
        }                                                                                          \
        return 0;

static int run_abs(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                   eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    const eng_tensor *x = in[0];
    eng_tensor *y = out[0];
    int64_t n = eng_tensor_numel(x);
    switch (x->dtype) {
    case ENG_DT_FLOAT:
        for (int64_t i = 0; i < n; i++)
            ((float *)y->data)[i] = fabsf(((const float *)x->data)[i]);
        return 0;
    case ENG_DT_DOUBLE:
        for (int64_t i = 0; i < n; i++)
            ((double *)y->data)[i] = fabs(((const double *)x->data)[i]);
        return 0;
        UNARY_INT_CASES(v < 0 ? -(uint64_t)v : (uint64_t)v)
    case ENG_DT_UINT8:
    case ENG_DT_UINT16:
    case ENG_DT_UINT32:
    case ENG_DT_UINT64: {
        size_t es = eng_dtype_size(x->dtype);
        const unsigned char *s = x->data;
        unsigned char *d = y->data;
        for (int64_t i = 0; i < n * (int64_t)es; i++)
            d[i] = s[i];
        return 0;
    }
    case ENG_DT_FLOAT16:
    case ENG_DT_BFLOAT16:
        for (int64_t i = 0; i < n; i++)
            elem_set_f(x->dtype, y->data, i, fabs(elem_get_f(x->dtype, x->data, i)));
        return 0;
    default:
        return eng_run_fail(nd, eb, ROUSE_EUNSUPPORTED, "element type %s is not supported",
                            eng_dtype_name(x->dtype));
    }
}

static int run_neg(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                   eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    const eng_tensor *x = in[0];
    eng_tensor *y = out[0];
    int64_t n = eng_tensor_numel(x);
    switch (x->dtype) {
    case ENG_DT_FLOAT:
        for (int64_t i = 0; i < n; i++)
            ((float *)y->data)[i] = -((const float *)x->data)[i];
        return 0;
    case ENG_DT_DOUBLE:
        for (int64_t i = 0; i < n; i++)
            ((double *)y->data)[i] = -((const double *)x->data)[i];
        return 0;
        UNARY_INT_CASES(-(uint64_t)v)
    case ENG_DT_FLOAT16:
    case ENG_DT_BFLOAT16:
        for (int64_t i = 0; i < n; i++)
            elem_set_f(x->dtype, y->data, i, -elem_get_f(x->dtype, x->data, i));
        return 0;
    default:
        return eng_run_fail(nd, eb, ROUSE_EUNSUPPORTED, "element type %s is not supported",
                            eng_dtype_name(x->dtype));
    }
}

static const eng_op_desc op_abs = {
    .op = ENG_OP_ABS,
    .name = "Abs",
    .since = 6,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = ENG_DTM_NUMERIC,
    .infer = infer_same,
    .run = run_abs,
};

static const eng_op_desc op_neg = {
    .op = ENG_OP_NEG,
    .name = "Neg",
    .since = 6,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = ENG_DTM_FLOATS | ENG_DTM_SINTS,
    .infer = infer_same,
    .run = run_neg,
};

/* --- unary float math ------------------------------------------------------ */

static double reciprocal(double v)
{
    return 1.0 / v;
}

/* Round half to even (ONNX Round), whatever the current rounding mode. */
static double round_even(double v)
{
    double r = round(v); /* half away from zero */
    if (fabs(v - trunc(v)) == 0.5) r = 2.0 * round(v / 2.0);
    return r;
}

static double (*unary_fn(eng_op op))(double)
{
    switch (op) {
    case ENG_OP_EXP:
        return exp;
    case ENG_OP_LOG:
        return log;
    case ENG_OP_SIN:
        return sin;
    case ENG_OP_COS:
        return cos;
    case ENG_OP_TAN:
        return tan;
    case ENG_OP_ASIN:
        return asin;
    case ENG_OP_ACOS:
        return acos;
    case ENG_OP_ATAN:
        return atan;
    case ENG_OP_SINH:
        return sinh;
    case ENG_OP_COSH:
        return cosh;
    case ENG_OP_ASINH:
        return asinh;
    case ENG_OP_ACOSH:
        return acosh;
    case ENG_OP_ATANH:
        return atanh;
    case ENG_OP_FLOOR:
        return floor;
    case ENG_OP_CEIL:
        return ceil;
    case ENG_OP_ROUND:
        return round_even;
    case ENG_OP_RECIPROCAL:
        return reciprocal;
    default:
        return NULL;
    }
}

static int run_unary_math(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                          eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    const eng_tensor *x = in[0];
    eng_tensor *y = out[0];
    double (*f)(double) = unary_fn(nd->op);
    if (!f || elem_kind(x->dtype) != ELEM_FLOAT)
        return eng_run_fail(nd, eb, ROUSE_EUNSUPPORTED, "element type %s is not supported",
                            eng_dtype_name(x->dtype));
    int64_t n = eng_tensor_numel(x);
    if (x->dtype == ENG_DT_FLOAT) {
        const float *xs = x->data;
        float *ys = y->data;
        for (int64_t i = 0; i < n; i++)
            ys[i] = (float)f(xs[i]);
        return 0;
    }
    for (int64_t i = 0; i < n; i++)
        elem_set_f(x->dtype, y->data, i, f(elem_get_f(x->dtype, x->data, i)));
    return 0;
}

static int run_sign(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                    eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a, (void)nd, (void)eb;
    const eng_tensor *x = in[0];
    const int dt = x->dtype;
    int64_t n = eng_tensor_numel(x);
    switch (elem_kind(dt)) {
    case ELEM_FLOAT:
        for (int64_t i = 0; i < n; i++) {
            double v = elem_get_f(dt, x->data, i);
            elem_set_f(dt, out[0]->data, i, v > 0 ? 1.0 : v < 0 ? -1.0 : v); /* keeps NaN, -0 */
        }
        return 0;
    case ELEM_SIGNED:
        for (int64_t i = 0; i < n; i++) {
            int64_t v = elem_get_i(dt, x->data, i);
            elem_set_u(dt, out[0]->data, i, (uint64_t)(v > 0 ? 1 : v < 0 ? -1 : 0));
        }
        return 0;
    default:
        for (int64_t i = 0; i < n; i++)
            elem_set_u(dt, out[0]->data, i, elem_get_u(dt, x->data, i) != 0);
        return 0;
    }
}

/* --- Mod -------------------------------------------------------------------- */

static int parse_mod(const eng_attr_ctx *c, eng_attrs *a)
{
    return eng_attr_flag(c, "fmod", 0, &a->act.mod.fmod);
}

static int check_mod(const eng_node *n, rouse_errbuf *eb)
{
    if ((n->attrs.act.mod.fmod & ~1) == 0) return 0;
    return rouse_err_set(eb, ROUSE_EFORMAT, "node '%s' (Mod): attribute 'fmod' must be 0 or 1",
                         n->name);
}

static int infer_mod(eng_infer_ctx *c)
{
    const eng_tensor *a = c->in[0], *b = c->in[1];
    int rc = eng_infer_same_dtype(c, 0, 1);
    if (rc < 0) return rc;
    if (elem_kind(a->dtype) == ELEM_FLOAT && !c->res->act.mod.fmod)
        return eng_infer_fail(c, ROUSE_EFORMAT,
                              "attribute 'fmod' must be 1 for floating-point inputs (%s)",
                              eng_dtype_name(a->dtype));
    int r;
    int64_t y[ENG_MAX_RANK];
    if (!eng_broadcast_shapes(a->rank, a->shape, b->rank, b->shape, &r, y))
        return eng_infer_fail(c, ROUSE_EMISMATCH, "inputs 'A' and 'B' do not broadcast");
    eng_infer_set_out(c, 0, a->dtype, r, y);
    return 0;
}

static int run_mod(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                   eng_tensor *const *out, rouse_errbuf *eb)
{
    const int dt = in[0]->dtype;
    const bool c_fmod = a->act.mod.fmod != 0;
    elem_walk w;
    int rc = elem_walk_init(&w, out[0], 2, in);
    if (rc < 0) return eng_run_fail(nd, eb, rc, "inputs do not broadcast to the output");
    const void *pa = in[0]->data, *pb = in[1]->data;
    void *py = out[0]->data;
    switch (elem_kind(dt)) {
    case ELEM_FLOAT:
        for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w))
            elem_set_f(dt, py, w.off[0],
                       fmod(elem_get_f(dt, pa, w.off[1]), elem_get_f(dt, pb, w.off[2])));
        return 0;
    case ELEM_SIGNED:
        for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w)) {
            int64_t p = elem_get_i(dt, pa, w.off[1]), q = elem_get_i(dt, pb, w.off[2]);
            int64_t r = q == 0 || q == -1 ? 0 : p % q; /* INT64_MIN % -1 traps */
            if (!c_fmod && r != 0 && (r < 0) != (q < 0)) r += q;
            elem_set_u(dt, py, w.off[0], (uint64_t)r);
        }
        return 0;
    default:
        for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w)) {
            uint64_t p = elem_get_u(dt, pa, w.off[1]), q = elem_get_u(dt, pb, w.off[2]);
            elem_set_u(dt, py, w.off[0], q == 0 ? 0 : p % q);
        }
        return 0;
    }
}

/* --- Min, Max, Mean, Sum ---------------------------------------------------- */

static int infer_variadic(eng_infer_ctx *c)
{
    const eng_node *n = c->n;
    int r = c->in[0]->rank;
    int64_t y[ENG_MAX_RANK];
    for (int d = 0; d < r; d++)
        y[d] = c->in[0]->shape[d];
    for (int i = 1; i < n->n_in; i++) {
        int rc = eng_infer_same_dtype(c, 0, i);
        if (rc < 0) return rc;
        const eng_tensor *t = c->in[i];
        int64_t z[ENG_MAX_RANK];
        int rz;
        if (!eng_broadcast_shapes(r, y, t->rank, t->shape, &rz, z))
            return eng_infer_fail(c, ROUSE_EMISMATCH, "input %d does not broadcast with the others",
                                  i);
        r = rz;
        for (int d = 0; d < r; d++)
            y[d] = z[d];
    }
    eng_infer_set_out(c, 0, c->in[0]->dtype, r, y);
    return 0;
}

static double fold_f(eng_op op, double acc, double v)
{
    switch (op) {
    case ENG_OP_MIN:
        return isnan(acc) || isnan(v) ? NAN : v < acc ? v : acc;
    case ENG_OP_MAX:
        return isnan(acc) || isnan(v) ? NAN : v > acc ? v : acc;
    default: /* SUM, MEAN */
        return acc + v;
    }
}

/* y = in[0] broadcast, then y = op(y, in[k]) for each further input (one
 * walk per input, so the number of inputs is not bounded). */
static int run_variadic(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                        eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    const eng_op op = nd->op;
    eng_tensor *y = out[0];
    const int dt = y->dtype;
    const int kind = elem_kind(dt);
    for (int k = 0; k < nd->n_in; k++) {
        const eng_tensor *x = in[k];
        elem_walk w;
        int rc = elem_walk_init(&w, y, 1, &x);
        if (rc < 0) return eng_run_fail(nd, eb, rc, "input %d does not broadcast to the output", k);
        for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w)) {
            int64_t o = w.off[0], i = w.off[1];
            if (kind == ELEM_FLOAT) {
                double v = elem_get_f(dt, x->data, i);
                elem_set_f(dt, y->data, o, k == 0 ? v : fold_f(op, elem_get_f(dt, y->data, o), v));
            } else if (kind == ELEM_SIGNED) {
                int64_t v = elem_get_i(dt, x->data, i), acc = k ? elem_get_i(dt, y->data, o) : v;
                int64_t r = op == ENG_OP_MIN   ? (v < acc ? v : acc)
                            : op == ENG_OP_MAX ? (v > acc ? v : acc)
                                               : (int64_t)((uint64_t)acc + (uint64_t)v);
                elem_set_u(dt, y->data, o, k == 0 ? (uint64_t)v : (uint64_t)r);
            } else {
                uint64_t v = elem_get_u(dt, x->data, i), acc = k ? elem_get_u(dt, y->data, o) : v;
                uint64_t r = op == ENG_OP_MIN   ? (v < acc ? v : acc)
                             : op == ENG_OP_MAX ? (v > acc ? v : acc)
                                                : acc + v;
                elem_set_u(dt, y->data, o, k == 0 ? v : r);
            }
        }
    }
    if (op == ENG_OP_MEAN) {
        int64_t n = eng_tensor_numel(y);
        for (int64_t i = 0; i < n; i++)
            elem_set_f(dt, y->data, i, elem_get_f(dt, y->data, i) / nd->n_in);
    }
    return 0;
}

/* --- CastLike --------------------------------------------------------------- */

static int infer_cast_like(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *t = c->in[1];
    unsigned ok = ENG_DTM_ANY;
    int rc = eng_infer_check_dtype(c, 1, ok);
    if (rc < 0) return rc;
    eng_infer_set_out(c, 0, t->dtype, x->rank, x->shape);
    return 0;
}

static int run_cast_like(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                         eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    int rc = ref_cast(in[1]->dtype, in[0], out[0]);
    if (rc < 0)
        return eng_run_fail(nd, eb, rc, "cannot convert %s to %s", eng_dtype_name(in[0]->dtype),
                            eng_dtype_name(in[1]->dtype));
    return 0;
}

/* --- descriptors ------------------------------------------------------------ */

#define UNARY_DESC(var, OP, NAME, SINCE)                                                           \
    static const eng_op_desc var = {                                                               \
        .op = OP,                                                                                  \
        .name = NAME,                                                                              \
        .since = SINCE,                                                                            \
        .min_in = 1,                                                                               \
        .max_in = 1,                                                                               \
        .max_out = 1,                                                                              \
        .in_names = {"X"},                                                                         \
        .dtypes = ENG_DTM_FLOATS,                                                                  \
        .infer = infer_same,                                                                       \
        .run = run_unary_math,                                                                     \
    }

/* Before opset 6 these had the `consumed_inputs` attribute of the old
 * memory model, which the engine does not model: they start at 6. */
UNARY_DESC(op_exp, ENG_OP_EXP, "Exp", 6);
UNARY_DESC(op_log, ENG_OP_LOG, "Log", 6);
UNARY_DESC(op_sin, ENG_OP_SIN, "Sin", 7);
UNARY_DESC(op_cos, ENG_OP_COS, "Cos", 7);
UNARY_DESC(op_tan, ENG_OP_TAN, "Tan", 7);
UNARY_DESC(op_asin, ENG_OP_ASIN, "Asin", 7);
UNARY_DESC(op_acos, ENG_OP_ACOS, "Acos", 7);
UNARY_DESC(op_atan, ENG_OP_ATAN, "Atan", 7);
UNARY_DESC(op_sinh, ENG_OP_SINH, "Sinh", 9);
UNARY_DESC(op_cosh, ENG_OP_COSH, "Cosh", 9);
UNARY_DESC(op_asinh, ENG_OP_ASINH, "Asinh", 9);
UNARY_DESC(op_acosh, ENG_OP_ACOSH, "Acosh", 9);
UNARY_DESC(op_atanh, ENG_OP_ATANH, "Atanh", 9);
UNARY_DESC(op_floor, ENG_OP_FLOOR, "Floor", 6);
UNARY_DESC(op_ceil, ENG_OP_CEIL, "Ceil", 6);
UNARY_DESC(op_round, ENG_OP_ROUND, "Round", 11);
UNARY_DESC(op_reciprocal, ENG_OP_RECIPROCAL, "Reciprocal", 6);
#undef UNARY_DESC

static const eng_op_desc op_sign = {
    .op = ENG_OP_SIGN,
    .name = "Sign",
    .since = 9,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"input"},
    .dtypes = ENG_DTM_NUMERIC,
    .infer = infer_same,
    .run = run_sign,
};

static const eng_op_desc op_mod = {
    .op = ENG_OP_MOD,
    .name = "Mod",
    .since = 10,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"A", "B"},
    .dtypes = ENG_DTM_NUMERIC,
    .parse = parse_mod,
    .check = check_mod,
    .infer = infer_mod,
    .run = run_mod,
};

/* Opsets 6 and 7 required equal shapes, a special case of broadcasting. */
#define VARIADIC_DESC(var, OP, NAME, TYPES)                                                        \
    static const eng_op_desc var = {                                                               \
        .op = OP,                                                                                  \
        .name = NAME,                                                                              \
        .since = 6,                                                                                \
        .min_in = 1,                                                                               \
        .max_in = -1,                                                                              \
        .max_out = 1,                                                                              \
        .in_names = {"data_0"},                                                                    \
        .dtypes = TYPES,                                                                           \
        .infer = infer_variadic,                                                                   \
        .run = run_variadic,                                                                       \
    }

VARIADIC_DESC(op_min, ENG_OP_MIN, "Min", ENG_DTM_NUMERIC);
VARIADIC_DESC(op_max, ENG_OP_MAX, "Max", ENG_DTM_NUMERIC);
VARIADIC_DESC(op_mean, ENG_OP_MEAN, "Mean", ENG_DTM_FLOATS);
VARIADIC_DESC(op_sum, ENG_OP_SUM, "Sum", ENG_DTM_FLOATS);
#undef VARIADIC_DESC

static const eng_op_desc op_cast_like = {
    .op = ENG_OP_CAST_LIKE,
    .name = "CastLike",
    .since = 15,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"input", "target_type"},
    .dtypes = ENG_DTM_ANY,
    .infer = infer_cast_like,
    .run = run_cast_like,
};

const eng_op_desc *const eng_ops_math[] = {
    &op_abs,   &op_neg,   &op_exp,  &op_log,   &op_sin,        &op_cos,   &op_tan,
    &op_asin,  &op_acos,  &op_atan, &op_sinh,  &op_cosh,       &op_asinh, &op_acosh,
    &op_atanh, &op_floor, &op_ceil, &op_round, &op_reciprocal, &op_sign,  &op_mod,
    &op_min,   &op_max,   &op_mean, &op_sum,   &op_cast_like,  NULL,
};
