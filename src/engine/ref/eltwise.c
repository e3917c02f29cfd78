/*
 * Reference element-wise kernels: the unary activations (Relu, Clip,
 * LeakyRelu, Sigmoid, Tanh, Erf, Sqrt), the arithmetic binaries (Add, Sub,
 * Mul, Div) with numpy multidirectional broadcasting, and Pow (whose
 * exponent may have another type than the base).
 *
 * Integer arithmetic never invokes undefined behaviour: sums, differences
 * and products are computed in uint64 and truncated (two's-complement
 * wraparound, as numpy does), division truncates toward zero, x / 0 is 0,
 * and INT_MIN / -1 wraps to INT_MIN.
 */
#include "engine/ref/ref.h"

#include <math.h>

#include "engine/ref/ref_util.h"
#include "rouse/err.h"

/* ---- unary ------------------------------------------------------------- */

/* A double bound saturated into an integer type. The comparisons happen in
 * double, where TMAX may round up (2^63, 2^64), so `>=` keeps the cast in
 * range. */
#define SAT_BOUND(T, TMIN, TMAX, v)                                                                \
    ((v) <= (double)(TMIN) ? (T)(TMIN) : (v) >= (double)(TMAX) ? (T)(TMAX) : (T)(v))

/* RELU and CLIP on an integer type: both are min(max(x, lo), hi). A NaN
 * bound is treated as absent. */
#define UNARY_INT(T, TMIN, TMAX)                                                                   \
    do {                                                                                           \
        const T *xs = x->data;                                                                     \
        T *ys = y->data;                                                                           \
        T lo = (T)(TMIN), hi = (T)(TMAX);                                                          \
        if (op == ENG_OP_RELU) {                                                                   \
            lo = 0;                                                                                \
        } else {                                                                                   \
            if (clip && clip->has_min && !isnan(clip->min)) {                                      \
                double v = ceil(clip->min);                                                        \
                lo = SAT_BOUND(T, TMIN, TMAX, v);                                                  \
            }                                                                                      \
            if (clip && clip->has_max && !isnan(clip->max)) {                                      \
                double v = floor(clip->max);                                                       \
                hi = SAT_BOUND(T, TMIN, TMAX, v);                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T t = xs[i] < lo ? lo : xs[i];                                                         \
            ys[i] = t > hi ? hi : t;                                                               \
        }                                                                                          \
    } while (0)

int ref_unary(eng_op op, const eng_attrs *attrs, const eng_tensor *x, eng_tensor *y)
{
    if (!ref_act_supported(op)) return ROUSE_EUNSUPPORTED;
    if (y->dtype != x->dtype) return ROUSE_EUNSUPPORTED;
    const int64_t n = eng_tensor_numel(x);
    if (n < 0 || eng_tensor_numel(y) != n) return ROUSE_EMISMATCH;

    const eng_clip_attrs *clip = op == ENG_OP_CLIP && attrs ? &attrs->clip : NULL;
    double alpha = 0.0, beta = 0.0;
    if (op == ENG_OP_CLIP) {
        alpha = clip && clip->has_min ? clip->min : -INFINITY;
        beta = clip && clip->has_max ? clip->max : INFINITY;
    } else if (op == ENG_OP_LEAKY_RELU) {
        alpha = attrs ? attrs->alpha.alpha : 0.01;
    }
    const bool int_ok = op == ENG_OP_RELU || op == ENG_OP_CLIP;

    switch (x->dtype) {
    case ENG_DT_FLOAT: {
        const float *xs = x->data;
        float *ys = y->data;
        for (int64_t i = 0; i < n; i++)
            ys[i] = ref_act_f32(op, (float)alpha, (float)beta, xs[i]);
        return 0;
    }
    case ENG_DT_DOUBLE: {
        const double *xs = x->data;
        double *ys = y->data;
        for (int64_t i = 0; i < n; i++)
            ys[i] = ref_act_f64(op, alpha, beta, xs[i]);
        return 0;
    }
    case ENG_DT_INT8:
        if (!int_ok) return ROUSE_EUNSUPPORTED;
        UNARY_INT(int8_t, INT8_MIN, INT8_MAX);
        return 0;
    case ENG_DT_UINT8:
        if (!int_ok) return ROUSE_EUNSUPPORTED;
        UNARY_INT(uint8_t, 0, UINT8_MAX);
        return 0;
    case ENG_DT_INT16:
        if (!int_ok) return ROUSE_EUNSUPPORTED;
        UNARY_INT(int16_t, INT16_MIN, INT16_MAX);
        return 0;
    case ENG_DT_UINT16:
        if (!int_ok) return ROUSE_EUNSUPPORTED;
        UNARY_INT(uint16_t, 0, UINT16_MAX);
        return 0;
    case ENG_DT_INT32:
        if (!int_ok) return ROUSE_EUNSUPPORTED;
        UNARY_INT(int32_t, INT32_MIN, INT32_MAX);
        return 0;
    case ENG_DT_UINT32:
        if (!int_ok) return ROUSE_EUNSUPPORTED;
        UNARY_INT(uint32_t, 0, UINT32_MAX);
        return 0;
    case ENG_DT_INT64:
        if (!int_ok) return ROUSE_EUNSUPPORTED;
        UNARY_INT(int64_t, INT64_MIN, INT64_MAX);
        return 0;
    case ENG_DT_UINT64:
        if (!int_ok) return ROUSE_EUNSUPPORTED;
        UNARY_INT(uint64_t, 0, UINT64_MAX);
        return 0;
    default:
        return ROUSE_EUNSUPPORTED;
    }
}

#undef UNARY_INT
#undef SAT_BOUND

/* ---- binary ------------------------------------------------------------ */

/* One broadcast row: y[i] = a[i * ia] op b[i * ib] for i < n, where the
 * input steps ia/ib are 0 (broadcast) or 1. */
#define DEFINE_ROW_FLOAT(name, T)                                                                  \
    static void name(eng_op op, const T *a, int64_t ia, const T *b, int64_t ib, T *y, int64_t n)   \
    {                                                                                              \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T p = a[i * ia], q = b[i * ib];                                                        \
            switch (op) {                                                                          \
            case ENG_OP_ADD:                                                                       \
                y[i] = p + q;                                                                      \
                break;                                                                             \
            case ENG_OP_SUB:                                                                       \
                y[i] = p - q;                                                                      \
                break;                                                                             \
            case ENG_OP_MUL:                                                                       \
                y[i] = p * q;                                                                      \
                break;                                                                             \
            default:                                                                               \
                y[i] = p / q;                                                                      \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_ROW_FLOAT(row_f32, float)
DEFINE_ROW_FLOAT(row_f64, double)
#undef DEFINE_ROW_FLOAT

/* Integer rows. IS_SIGNED selects the -1 divisor case, the only division
 * that can overflow. */
#define DEFINE_ROW_INT(name, T, IS_SIGNED)                                                         \
    static void name(eng_op op, const T *a, int64_t ia, const T *b, int64_t ib, T *y, int64_t n)   \
    {                                                                                              \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T p = a[i * ia], q = b[i * ib];                                                        \
            switch (op) {                                                                          \
            case ENG_OP_ADD:                                                                       \
                y[i] = (T)((uint64_t)p + (uint64_t)q);                                             \
                break;                                                                             \
            case ENG_OP_SUB:                                                                       \
                y[i] = (T)((uint64_t)p - (uint64_t)q);                                             \
                break;                                                                             \
            case ENG_OP_MUL:                                                                       \
                y[i] = (T)((uint64_t)p * (uint64_t)q);                                             \
                break;                                                                             \
            default:                                                                               \
                if (q == 0)                                                                        \
                    y[i] = 0;                                                                      \
                else if ((IS_SIGNED) && q == (T)-1)                                                \
                    y[i] = (T)(0 - (uint64_t)p);                                                   \
                else                                                                               \
                    y[i] = (T)(p / q);                                                             \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_ROW_INT(row_i8, int8_t, 1)
DEFINE_ROW_INT(row_u8, uint8_t, 0)
DEFINE_ROW_INT(row_i16, int16_t, 1)
DEFINE_ROW_INT(row_u16, uint16_t, 0)
DEFINE_ROW_INT(row_i32, int32_t, 1)
DEFINE_ROW_INT(row_u32, uint32_t, 0)
DEFINE_ROW_INT(row_i64, int64_t, 1)
DEFINE_ROW_INT(row_u64, uint64_t, 0)
#undef DEFINE_ROW_INT

static void row(int dtype, eng_op op, const void *a, int64_t ia, const void *b, int64_t ib, void *y,
                int64_t n)
{
    switch (dtype) {
    case ENG_DT_FLOAT:
        row_f32(op, a, ia, b, ib, y, n);
        break;
    case ENG_DT_DOUBLE:
        row_f64(op, a, ia, b, ib, y, n);
        break;
    case ENG_DT_INT8:
        row_i8(op, a, ia, b, ib, y, n);
        break;
    case ENG_DT_UINT8:
        row_u8(op, a, ia, b, ib, y, n);
        break;
    case ENG_DT_INT16:
        row_i16(op, a, ia, b, ib, y, n);
        break;
    case ENG_DT_UINT16:
        row_u16(op, a, ia, b, ib, y, n);
        break;
    case ENG_DT_INT32:
        row_i32(op, a, ia, b, ib, y, n);
        break;
    case ENG_DT_UINT32:
        row_u32(op, a, ia, b, ib, y, n);
        break;
    case ENG_DT_INT64:
        row_i64(op, a, ia, b, ib, y, n);
        break;
    case ENG_DT_UINT64:
        row_u64(op, a, ia, b, ib, y, n);
        break;
    default:
        break;
    }
}

static bool binary_dtype_ok(int dtype)
{
    switch (dtype) {
    case ENG_DT_FLOAT:
    case ENG_DT_DOUBLE:
    case ENG_DT_INT8:
    case ENG_DT_UINT8:
    case ENG_DT_INT16:
    case ENG_DT_UINT16:
    case ENG_DT_INT32:
    case ENG_DT_UINT32:
    case ENG_DT_INT64:
    case ENG_DT_UINT64:
        return true;
    default:
        return false;
    }
}

int ref_binary(eng_op op, const eng_tensor *a, const eng_tensor *b, eng_tensor *y)
{
    if (op != ENG_OP_ADD && op != ENG_OP_SUB && op != ENG_OP_MUL && op != ENG_OP_DIV)
        return ROUSE_EUNSUPPORTED;
    if (!binary_dtype_ok(a->dtype) || b->dtype != a->dtype || y->dtype != a->dtype)
        return ROUSE_EUNSUPPORTED;

    int r;
    int64_t shape[ENG_MAX_RANK];
    int rc = ref_bcast_shape(a->rank, a->shape, b->rank, b->shape, &r, shape);
    if (rc < 0) return rc;
    if (!eng_shape_equal(r, shape, y->rank, y->shape)) return ROUSE_EMISMATCH;
    if (eng_shape_numel(r, shape) == 0) return 0;

    int64_t sa[ENG_MAX_RANK], sb[ENG_MAX_RANK], sy[ENG_MAX_RANK];
    if ((rc = ref_bcast_strides(a->rank, a->shape, r, shape, sa)) < 0) return rc;
    if ((rc = ref_bcast_strides(b->rank, b->shape, r, shape, sb)) < 0) return rc;
    if ((rc = ref_bcast_strides(r, shape, r, shape, sy)) < 0) return rc;

    /* The innermost dim runs as a row; the outer dims are walked by index.
     * A rank-0 result is a single row of one element. */
    const int outer = r > 0 ? r - 1 : 0;
    const int64_t n = r > 0 ? shape[r - 1] : 1;
    const int64_t ia = r > 0 ? sa[r - 1] : 0, ib = r > 0 ? sb[r - 1] : 0;
    const size_t es = eng_dtype_size(a->dtype);
    const int64_t *const strides[3] = {sa, sb, sy};
    int64_t idx[ENG_MAX_RANK] = {0}, off[3] = {0, 0, 0};
    do {
        row(a->dtype, op, (const char *)a->data + (size_t)off[0] * es, ia,
            (const char *)b->data + (size_t)off[1] * es, ib, (char *)y->data + (size_t)off[2] * es,
            n);
    } while (ref_index_next(outer, shape, idx, 3, strides, off));
    return 0;
}

/* ---- Pow --------------------------------------------------------------- */

static double load_pow(int dtype, const void *base, int64_t i)
{
    switch (dtype) {
    case ENG_DT_FLOAT:
        return ((const float *)base)[i];
    case ENG_DT_DOUBLE:
        return ((const double *)base)[i];
    case ENG_DT_INT32:
        return ((const int32_t *)base)[i];
    case ENG_DT_UINT32:
        return ((const uint32_t *)base)[i];
    case ENG_DT_UINT64:
        return (double)((const uint64_t *)base)[i];
    default:
        return (double)((const int64_t *)base)[i];
    }
}

static bool pow_dtype_ok(int dtype)
{
    return dtype == ENG_DT_FLOAT || dtype == ENG_DT_DOUBLE || dtype == ENG_DT_INT32 ||
           dtype == ENG_DT_INT64;
}

/* Exponents may also be unsigned (opset >= 12). */
static bool pow_exp_dtype_ok(int dtype)
{
    return pow_dtype_ok(dtype) || dtype == ENG_DT_UINT32 || dtype == ENG_DT_UINT64;
}

/* An integer result of pow() saturated into T (NaN gives 0). */
#define SAT_POW(T, TMIN, TMAX, v)                                                                  \
    (isnan(v)                ? (T)0                                                                \
     : (v) <= (double)(TMIN) ? (T)(TMIN)                                                           \
     : (v) >= (double)(TMAX) ? (T)(TMAX)                                                           \
                             : (T)(v))

int ref_pow(const eng_tensor *a, const eng_tensor *b, eng_tensor *y)
{
    if (!pow_dtype_ok(a->dtype) || !pow_exp_dtype_ok(b->dtype) || y->dtype != a->dtype)
        return ROUSE_EUNSUPPORTED;
    int r;
    int64_t shape[ENG_MAX_RANK];
    int rc = ref_bcast_shape(a->rank, a->shape, b->rank, b->shape, &r, shape);
    if (rc < 0) return rc;
    if (!eng_shape_equal(r, shape, y->rank, y->shape)) return ROUSE_EMISMATCH;
    if (eng_shape_numel(r, shape) == 0) return 0;

    int64_t sa[ENG_MAX_RANK], sb[ENG_MAX_RANK], sy[ENG_MAX_RANK];
    if ((rc = ref_bcast_strides(a->rank, a->shape, r, shape, sa)) < 0 ||
        (rc = ref_bcast_strides(b->rank, b->shape, r, shape, sb)) < 0 ||
        (rc = ref_bcast_strides(r, shape, r, shape, sy)) < 0)
        return rc;
    /* The common LayerNorm case, a float squared: x * x rounds exactly as
     * pow() in double does (the square of a float is exact in double). */
    if (a->dtype == ENG_DT_FLOAT && eng_tensor_numel(b) == 1 &&
        load_pow(b->dtype, b->data, 0) == 2.0) {
        const float *xs = a->data;
        float *ys = y->data;
        const int64_t n = eng_tensor_numel(a), total = eng_tensor_numel(y);
        for (int64_t i = 0; i < total; i++) {
            float v = xs[n == total ? i : 0];
            ys[i] = v * v;
        }
        return 0;
    }
    /* Innermost dim as a row, outer dims by index (as ref_binary). */
    const int outer = r > 0 ? r - 1 : 0;
    const int64_t len = r > 0 ? shape[r - 1] : 1;
    const int64_t ia = r > 0 ? sa[r - 1] : 0, ib = r > 0 ? sb[r - 1] : 0;
    const int64_t *const strides[3] = {sa, sb, sy};
    int64_t idx[ENG_MAX_RANK] = {0}, off[3] = {0, 0, 0};
    do {
        for (int64_t i = 0; i < len; i++) {
            /* pow() in double, rounded once: exact for integer powers that
             * fit in 53 bits. */
            double v = pow(load_pow(a->dtype, a->data, off[0] + i * ia),
                           load_pow(b->dtype, b->data, off[1] + i * ib));
            int64_t at = off[2] + i;
            switch (y->dtype) {
            case ENG_DT_FLOAT:
                ((float *)y->data)[at] = (float)v;
                break;
            case ENG_DT_DOUBLE:
                ((double *)y->data)[at] = v;
                break;
            case ENG_DT_INT32:
                ((int32_t *)y->data)[at] = SAT_POW(int32_t, INT32_MIN, INT32_MAX, v);
                break;
            default:
                ((int64_t *)y->data)[at] = SAT_POW(int64_t, INT64_MIN, INT64_MAX, v);
                break;
            }
        }
    } while (ref_index_next(outer, shape, idx, 3, strides, off));
    return 0;
}
#undef SAT_POW
