/*
 * Reference kernels for the transformer building blocks that are neither
 * arithmetic nor pure data movement: Cast, Gather, Where and ReduceMean.
 *
 * Cast never invokes undefined behaviour: floats going to an integer type
 * are truncated toward zero and saturated to the type's range (NaN gives 0),
 * integers going to a narrower integer wrap (two's complement, as numpy
 * does), and anything going to bool is "not zero" (NaN is true).
 * Gather checks every index against the data and reports the first one out
 * of range instead of reading outside the buffer.
 */
#include "engine/ref/ref.h"

#include <math.h>
#include <string.h>

#include "engine/ref/ref_util.h"
#include "rouse/err.h"

/* ---- Cast -------------------------------------------------------------- */

/* Cast to bfloat16 keeps the float's upper half (truncation), the rule of
 * ONNX's reference for Cast before opset 19 (every opset the engine loads);
 * a NaN stays a quiet NaN. */
static uint16_t bf16_truncate(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return (uint16_t)(u >> 16) | (isnan(f) ? 0x40 : 0);
}

enum num_kind { NUM_FLOAT, NUM_SIGNED, NUM_UNSIGNED };

/* One element, widened without loss to the kind's 64-bit carrier. */
typedef struct num {
    int kind;
    double f;
    int64_t i;
    uint64_t u;
} num;

static bool load_num(int dtype, const void *p, num *v)
{
    switch (dtype) {
    case ENG_DT_FLOAT:
        *v = (num){NUM_FLOAT, *(const float *)p, 0, 0};
        return true;
    case ENG_DT_DOUBLE:
        *v = (num){NUM_FLOAT, *(const double *)p, 0, 0};
        return true;
    case ENG_DT_INT8:
        *v = (num){NUM_SIGNED, 0, *(const int8_t *)p, 0};
        return true;
    case ENG_DT_INT16:
        *v = (num){NUM_SIGNED, 0, *(const int16_t *)p, 0};
        return true;
    case ENG_DT_INT32:
        *v = (num){NUM_SIGNED, 0, *(const int32_t *)p, 0};
        return true;
    case ENG_DT_INT64:
        *v = (num){NUM_SIGNED, 0, *(const int64_t *)p, 0};
        return true;
    case ENG_DT_UINT8:
        *v = (num){NUM_UNSIGNED, 0, 0, *(const uint8_t *)p};
        return true;
    case ENG_DT_UINT16:
        *v = (num){NUM_UNSIGNED, 0, 0, *(const uint16_t *)p};
        return true;
    case ENG_DT_UINT32:
        *v = (num){NUM_UNSIGNED, 0, 0, *(const uint32_t *)p};
        return true;
    case ENG_DT_UINT64:
        *v = (num){NUM_UNSIGNED, 0, 0, *(const uint64_t *)p};
        return true;
    case ENG_DT_BOOL:
        *v = (num){NUM_UNSIGNED, 0, 0, *(const uint8_t *)p != 0};
        return true;
    case ENG_DT_FLOAT16:
        *v = (num){NUM_FLOAT, ref_half_to_double(*(const uint16_t *)p), 0, 0};
        return true;
    case ENG_DT_BFLOAT16:
        *v = (num){NUM_FLOAT, ref_bf16_to_double(*(const uint16_t *)p), 0, 0};
        return true;
    default:
        return false;
    }
}

/* A float truncated and saturated into [lo, hi]; the comparisons are in
 * double, where hi may round up (2^63, 2^64), so `>=` keeps the cast in range. */
#define SAT(T, lo, hi, f)                                                                          \
    (isnan(f) ? (T)0 : (f) <= (double)(lo) ? (T)(lo) : (f) >= (double)(hi) ? (T)(hi) : (T)(f))

/* The value as the bit pattern of a 64-bit two's-complement integer: the
 * narrower integer types take its low bits. */
static uint64_t as_bits(const num *v)
{
    return v->kind == NUM_SIGNED ? (uint64_t)v->i : v->u; /* floats go through SAT */
}

static bool is_zero(const num *v)
{
    return v->kind == NUM_FLOAT ? v->f == 0.0 : v->kind == NUM_SIGNED ? v->i == 0 : v->u == 0;
}

static double as_double(const num *v)
{
    return v->kind == NUM_FLOAT ? v->f : v->kind == NUM_SIGNED ? (double)v->i : (double)v->u;
}

static bool store_num(int dtype, const num *v, void *p)
{
    bool fl = v->kind == NUM_FLOAT;
    double f = v->f;
    switch (dtype) {
    case ENG_DT_FLOAT:
        /* int64 -> float directly, not through double, so it rounds once. */
        *(float *)p = v->kind == NUM_SIGNED     ? (float)v->i
                      : v->kind == NUM_UNSIGNED ? (float)v->u
                                                : (float)f;
        return true;
    case ENG_DT_DOUBLE:
        *(double *)p = as_double(v);
        return true;
    case ENG_DT_FLOAT16:
        *(uint16_t *)p = ref_double_to_half(as_double(v));
        return true;
    case ENG_DT_BFLOAT16:
        *(uint16_t *)p = bf16_truncate(v->kind == NUM_SIGNED     ? (float)v->i
                                       : v->kind == NUM_UNSIGNED ? (float)v->u
                                                                 : (float)f);
        return true;
    case ENG_DT_BOOL:
        *(uint8_t *)p = !is_zero(v);
        return true;
    case ENG_DT_INT8:
        *(int8_t *)p = fl ? SAT(int8_t, INT8_MIN, INT8_MAX, f) : (int8_t)as_bits(v);
        return true;
    case ENG_DT_UINT8:
        *(uint8_t *)p = fl ? SAT(uint8_t, 0, UINT8_MAX, f) : (uint8_t)as_bits(v);
        return true;
    case ENG_DT_INT16:
        *(int16_t *)p = fl ? SAT(int16_t, INT16_MIN, INT16_MAX, f) : (int16_t)as_bits(v);
        return true;
    case ENG_DT_UINT16:
        *(uint16_t *)p = fl ? SAT(uint16_t, 0, UINT16_MAX, f) : (uint16_t)as_bits(v);
        return true;
    case ENG_DT_INT32:
        *(int32_t *)p = fl ? SAT(int32_t, INT32_MIN, INT32_MAX, f) : (int32_t)as_bits(v);
        return true;
    case ENG_DT_UINT32:
        *(uint32_t *)p = fl ? SAT(uint32_t, 0, UINT32_MAX, f) : (uint32_t)as_bits(v);
        return true;
    case ENG_DT_INT64:
        *(int64_t *)p = fl ? SAT(int64_t, INT64_MIN, INT64_MAX, f) : (int64_t)as_bits(v);
        return true;
    case ENG_DT_UINT64:
        *(uint64_t *)p = fl ? SAT(uint64_t, 0, UINT64_MAX, f) : as_bits(v);
        return true;
    default:
        return false;
    }
}
#undef SAT

int ref_cast(int to, const eng_tensor *x, eng_tensor *y)
{
    const size_t xs = eng_dtype_size(x->dtype), ys = eng_dtype_size(to);
    num probe;
    uint8_t zero[8] = {0};
    if (!xs || !ys || y->dtype != to || !load_num(x->dtype, zero, &probe) ||
        !store_num(to, &probe, zero))
        return ROUSE_EUNSUPPORTED;
    const int64_t n = eng_tensor_numel(x);
    if (n < 0 || !eng_shape_equal(x->rank, x->shape, y->rank, y->shape)) return ROUSE_EMISMATCH;
    if (x->dtype == to) return ref_copy(x, y);
    const char *src = x->data;
    char *dst = y->data;
    for (int64_t i = 0; i < n; i++) {
        num v = {0};
        load_num(x->dtype, src + (size_t)i * xs, &v);
        store_num(to, &v, dst + (size_t)i * ys);
    }
    return 0;
}

/* ---- Gather ------------------------------------------------------------ */

int ref_gather(int64_t axis, const eng_tensor *data, const eng_tensor *indices, eng_tensor *y,
               int64_t *bad_index)
{
    const size_t es = eng_dtype_size(data->dtype);
    if (!es || y->dtype != data->dtype) return ROUSE_EUNSUPPORTED;
    if (indices->dtype != ENG_DT_INT64 && indices->dtype != ENG_DT_INT32) return ROUSE_EUNSUPPORTED;
    const int r = data->rank, q = indices->rank;
    if (axis < 0 || axis >= r || y->rank != r - 1 + q) return ROUSE_EINVAL;
    for (int d = 0; d < y->rank; d++) {
        int64_t want = d < axis       ? data->shape[d]
                       : d < axis + q ? indices->shape[d - axis]
                                      : data->shape[d - q + 1];
        if (y->shape[d] != want) return ROUSE_EMISMATCH;
    }

    /* data viewed as [outer, len, inner], y as [outer, n_idx, inner]. */
    const int64_t outer = eng_shape_numel((int)axis, data->shape);
    const int64_t len = data->shape[axis];
    const int64_t inner = eng_shape_numel(r - (int)axis - 1, data->shape + axis + 1);
    const int64_t n_idx = eng_tensor_numel(indices);
    const size_t run = (size_t)inner * es;
    /* Check every index before writing anything. */
    for (int64_t j = 0; j < n_idx; j++) {
        int64_t k = indices->dtype == ENG_DT_INT64 ? ((const int64_t *)indices->data)[j]
                                                   : ((const int32_t *)indices->data)[j];
        if (k < -len || k >= len) {
            if (bad_index) *bad_index = k;
            return ROUSE_ERANGE;
        }
    }
    const char *src = data->data;
    char *dst = y->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < n_idx; j++) {
            int64_t k = indices->dtype == ENG_DT_INT64 ? ((const int64_t *)indices->data)[j]
                                                       : ((const int32_t *)indices->data)[j];
            if (k < 0) k += len;
            memcpy(dst + (size_t)((o * n_idx + j) * inner) * es,
                   src + (size_t)((o * len + k) * inner) * es, run);
        }
    }
    return 0;
}

/* ---- Where ------------------------------------------------------------- */

int ref_where(const eng_tensor *cond, const eng_tensor *x, const eng_tensor *yv, eng_tensor *out)
{
    const size_t es = eng_dtype_size(x->dtype);
    if (cond->dtype != ENG_DT_BOOL || !es || yv->dtype != x->dtype || out->dtype != x->dtype)
        return ROUSE_EUNSUPPORTED;
    int r1, r;
    int64_t s1[ENG_MAX_RANK], shape[ENG_MAX_RANK];
    int rc = ref_bcast_shape(x->rank, x->shape, yv->rank, yv->shape, &r1, s1);
    if (rc < 0) return rc;
    if ((rc = ref_bcast_shape(cond->rank, cond->shape, r1, s1, &r, shape)) < 0) return rc;
    if (!eng_shape_equal(r, shape, out->rank, out->shape)) return ROUSE_EMISMATCH;
    if (eng_shape_numel(r, shape) == 0) return 0;

    int64_t sc[ENG_MAX_RANK], sx[ENG_MAX_RANK], sy[ENG_MAX_RANK], so[ENG_MAX_RANK];
    if ((rc = ref_bcast_strides(cond->rank, cond->shape, r, shape, sc)) < 0 ||
        (rc = ref_bcast_strides(x->rank, x->shape, r, shape, sx)) < 0 ||
        (rc = ref_bcast_strides(yv->rank, yv->shape, r, shape, sy)) < 0 ||
        (rc = ref_bcast_strides(r, shape, r, shape, so)) < 0)
        return rc;
    const int64_t *const strides[4] = {sc, sx, sy, so};
    int64_t idx[ENG_MAX_RANK] = {0}, off[4] = {0, 0, 0, 0};
    const uint8_t *c = cond->data;
    const char *xs = x->data, *ys = yv->data;
    char *os = out->data;
    do {
        const char *src = c[off[0]] ? xs + (size_t)off[1] * es : ys + (size_t)off[2] * es;
        memcpy(os + (size_t)off[3] * es, src, es);
    } while (ref_index_next(r, shape, idx, 4, strides, off));
    return 0;
}

/* ---- ReduceMean -------------------------------------------------------- */

int ref_reduce_mean(int n_axes, const int64_t *axes, bool keepdims, const eng_tensor *x,
                    eng_tensor *y)
{
    if ((x->dtype != ENG_DT_FLOAT && x->dtype != ENG_DT_DOUBLE) || y->dtype != x->dtype)
        return ROUSE_EUNSUPPORTED;
    const int r = x->rank;
    if (n_axes < 0 || n_axes > r) return ROUSE_EINVAL;
    bool red[ENG_MAX_RANK] = {false};
    for (int i = 0; i < n_axes; i++) {
        if (axes[i] < 0 || axes[i] >= r || red[axes[i]]) return ROUSE_EINVAL;
        red[axes[i]] = true;
    }

    /* Split x's dims into kept (walked by the output index) and reduced
     * (walked per output element), each with x's strides. */
    int64_t xstride[ENG_MAX_RANK], step = 1;
    for (int d = r - 1; d >= 0; d--) {
        xstride[d] = step;
        step *= x->shape[d];
    }
    int nk = 0, nr = 0;
    int64_t kshape[ENG_MAX_RANK], kstride[ENG_MAX_RANK], rshape[ENG_MAX_RANK],
        rstride[ENG_MAX_RANK];
    int64_t yshape[ENG_MAX_RANK];
    int yr = 0;
    for (int d = 0; d < r; d++) {
        if (red[d]) {
            rshape[nr] = x->shape[d];
            rstride[nr++] = xstride[d];
            if (keepdims) yshape[yr++] = 1;
        } else {
            kshape[nk] = x->shape[d];
            kstride[nk++] = xstride[d];
            yshape[yr++] = x->shape[d];
        }
    }
    if (!eng_shape_equal(yr, yshape, y->rank, y->shape)) return ROUSE_EMISMATCH;
    const int64_t n_out = eng_shape_numel(nk, kshape), count = eng_shape_numel(nr, rshape);
    if (n_out == 0) return 0;

    const int64_t *const ks[1] = {kstride}, *const rs[1] = {rstride};
    int64_t kidx[ENG_MAX_RANK] = {0}, koff = 0;
    int64_t o = 0;
    do {
        double sum = 0.0;
        if (count > 0) {
            int64_t ridx[ENG_MAX_RANK] = {0}, roff = 0;
            do {
                int64_t at = koff + roff;
                sum += x->dtype == ENG_DT_FLOAT ? (double)((const float *)x->data)[at]
                                                : ((const double *)x->data)[at];
            } while (ref_index_next(nr, rshape, ridx, 1, rs, &roff));
        }
        /* An empty reduction is 0 / 0 = NaN, as numpy's mean. */
        double mean = count > 0 ? sum / (double)count : NAN;
        if (y->dtype == ENG_DT_FLOAT)
            ((float *)y->data)[o] = (float)mean;
        else
            ((double *)y->data)[o] = mean;
        o++;
    } while (ref_index_next(nk, kshape, kidx, 1, ks, &koff));
    return 0;
}
