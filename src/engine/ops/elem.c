/* Element access and broadcast walks of the element-wise families (see elem.h). */
#include "engine/ops/elem.h"

#include <math.h>

#include "engine/ref/ref_util.h"
#include "rouse/err.h"

int elem_kind(int dtype)
{
    switch (dtype) {
    case ENG_DT_FLOAT:
    case ENG_DT_DOUBLE:
    case ENG_DT_FLOAT16:
    case ENG_DT_BFLOAT16:
        return ELEM_FLOAT;
    case ENG_DT_INT8:
    case ENG_DT_INT16:
    case ENG_DT_INT32:
    case ENG_DT_INT64:
        return ELEM_SIGNED;
    case ENG_DT_UINT8:
    case ENG_DT_UINT16:
    case ENG_DT_UINT32:
    case ENG_DT_UINT64:
    case ENG_DT_BOOL:
        return ELEM_UNSIGNED;
    default:
        return ELEM_NONE;
    }
}

/* A double truncated and saturated into [lo, hi]; the comparisons are in
 * double, where hi may round up (2^63, 2^64), so `>=` keeps the cast in range. */
#define SAT(T, lo, hi, f)                                                                          \
    (isnan(f) ? (T)0 : (f) <= (double)(lo) ? (T)(lo) : (f) >= (double)(hi) ? (T)(hi) : (T)(f))

void elem_set_f(int dtype, void *base, int64_t i, double v)
{
    switch (dtype) {
    case ENG_DT_FLOAT:
        ((float *)base)[i] = (float)v;
        break;
    case ENG_DT_DOUBLE:
        ((double *)base)[i] = v;
        break;
    case ENG_DT_FLOAT16:
        ((uint16_t *)base)[i] = ref_double_to_half(v);
        break;
    case ENG_DT_BFLOAT16:
        ((uint16_t *)base)[i] = ref_float_to_bf16((float)v);
        break;
    case ENG_DT_BOOL:
        ((uint8_t *)base)[i] = v != 0.0;
        break;
    case ENG_DT_INT8:
        ((int8_t *)base)[i] = SAT(int8_t, INT8_MIN, INT8_MAX, v);
        break;
    case ENG_DT_INT16:
        ((int16_t *)base)[i] = SAT(int16_t, INT16_MIN, INT16_MAX, v);
        break;
    case ENG_DT_INT32:
        ((int32_t *)base)[i] = SAT(int32_t, INT32_MIN, INT32_MAX, v);
        break;
    case ENG_DT_INT64:
        ((int64_t *)base)[i] = SAT(int64_t, INT64_MIN, INT64_MAX, v);
        break;
    case ENG_DT_UINT8:
        ((uint8_t *)base)[i] = SAT(uint8_t, 0, UINT8_MAX, v);
        break;
    case ENG_DT_UINT16:
        ((uint16_t *)base)[i] = SAT(uint16_t, 0, UINT16_MAX, v);
        break;
    case ENG_DT_UINT32:
        ((uint32_t *)base)[i] = SAT(uint32_t, 0, UINT32_MAX, v);
        break;
    case ENG_DT_UINT64:
        ((uint64_t *)base)[i] = SAT(uint64_t, 0, UINT64_MAX, v);
        break;
    default:
        break;
    }
}
#undef SAT

void elem_set_rounded(int dtype, void *base, int64_t i, double v)
{
    if (elem_kind(dtype) != ELEM_FLOAT) v = nearbyint(v);
    elem_set_f(dtype, base, i, v);
}

void elem_set_u(int dtype, void *base, int64_t i, uint64_t v)
{
    switch (dtype) {
    case ENG_DT_BOOL:
        ((uint8_t *)base)[i] = v != 0;
        break;
    case ENG_DT_INT8:
    case ENG_DT_UINT8:
        ((uint8_t *)base)[i] = (uint8_t)v;
        break;
    case ENG_DT_INT16:
    case ENG_DT_UINT16:
        ((uint16_t *)base)[i] = (uint16_t)v;
        break;
    case ENG_DT_INT32:
    case ENG_DT_UINT32:
        ((uint32_t *)base)[i] = (uint32_t)v;
        break;
    case ENG_DT_INT64:
    case ENG_DT_UINT64:
        ((uint64_t *)base)[i] = v;
        break;
    default:
        elem_set_f(dtype, base, i, (double)v);
        break;
    }
}

int elem_walk_init(elem_walk *w, const eng_tensor *y, int n, const eng_tensor *const *x)
{
    if (n + 1 > ELEM_MAX_OPS || y->rank < 0 || y->rank > ENG_MAX_RANK) return ROUSE_EINVAL;
    w->rank = y->rank;
    w->n_ops = n + 1;
    for (int d = 0; d < y->rank; d++) {
        w->shape[d] = y->shape[d];
        w->idx[d] = 0;
    }
    int rc = ref_bcast_strides(y->rank, y->shape, y->rank, y->shape, w->strides[0]);
    for (int k = 0; rc == 0 && k < n; k++)
        rc = ref_bcast_strides(x[k]->rank, x[k]->shape, y->rank, y->shape, w->strides[k + 1]);
    if (rc < 0) return rc;
    for (int k = 0; k < w->n_ops; k++) {
        w->sp[k] = w->strides[k];
        w->off[k] = 0;
    }
    w->left = eng_tensor_numel(y);
    if (w->left < 0) return ROUSE_EINVAL;
    return 0;
}

bool elem_walk_next(elem_walk *w)
{
    if (--w->left <= 0) return false;
    ref_index_next(w->rank, w->shape, w->idx, w->n_ops, w->sp, w->off);
    return true;
}
