/*
 * Element access and broadcasting shared by the element-wise families
 * (ops/logic.c, ops/math.c, ops/act.c): one element of any numeric or bool
 * type read as a double or as a 64-bit integer, written back with the
 * numpy conversion, and a walk over a broadcast output that keeps the
 * offset of every input in step.
 *
 * Guarantees: half types go through float/double with round-to-nearest-even
 * (ref_util.h); a double stored into an integer type is truncated toward
 * zero and saturated (NaN gives 0); nothing here allocates.
 */
#ifndef ROUSE_ENGINE_OPS_ELEM_H
#define ROUSE_ENGINE_OPS_ELEM_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/ref/ref_util.h"
#include "engine/tensor.h"

enum elem_kind { ELEM_FLOAT, ELEM_SIGNED, ELEM_UNSIGNED, ELEM_NONE };

/* The arithmetic an element type computes in: float types in double,
 * signed integers in int64, unsigned integers and bool in uint64. */
int elem_kind(int dtype);

/* Element i of base (of type dtype) as a double / int64 / uint64. Inline:
 * the reference kernels of the element-wise, reduce and norm families read
 * every element through them. */
static inline double elem_get_f(int dtype, const void *base, int64_t i);
static inline int64_t elem_get_i(int dtype, const void *base, int64_t i);
static inline uint64_t elem_get_u(int dtype, const void *base, int64_t i);

static inline double elem_get_f(int dtype, const void *base, int64_t i)
{
    switch (dtype) {
    case ENG_DT_FLOAT:
        return ((const float *)base)[i];
    case ENG_DT_DOUBLE:
        return ((const double *)base)[i];
    case ENG_DT_FLOAT16:
        return ref_half_to_double(((const uint16_t *)base)[i]);
    case ENG_DT_BFLOAT16:
        return ref_bf16_to_double(((const uint16_t *)base)[i]);
    case ENG_DT_INT8:
    case ENG_DT_INT16:
    case ENG_DT_INT32:
    case ENG_DT_INT64:
        return (double)elem_get_i(dtype, base, i);
    default:
        return (double)elem_get_u(dtype, base, i);
    }
}

static inline int64_t elem_get_i(int dtype, const void *base, int64_t i)
{
    switch (dtype) {
    case ENG_DT_INT8:
        return ((const int8_t *)base)[i];
    case ENG_DT_INT16:
        return ((const int16_t *)base)[i];
    case ENG_DT_INT32:
        return ((const int32_t *)base)[i];
    case ENG_DT_INT64:
        return ((const int64_t *)base)[i];
    default:
        return (int64_t)elem_get_u(dtype, base, i);
    }
}

static inline uint64_t elem_get_u(int dtype, const void *base, int64_t i)
{
    switch (dtype) {
    case ENG_DT_UINT8:
        return ((const uint8_t *)base)[i];
    case ENG_DT_BOOL:
        return ((const uint8_t *)base)[i] != 0;
    case ENG_DT_UINT16:
        return ((const uint16_t *)base)[i];
    case ENG_DT_UINT32:
        return ((const uint32_t *)base)[i];
    case ENG_DT_UINT64:
        return ((const uint64_t *)base)[i];
    case ENG_DT_INT8:
    case ENG_DT_INT16:
    case ENG_DT_INT32:
    case ENG_DT_INT64:
        return (uint64_t)elem_get_i(dtype, base, i);
    default: {
        double f = elem_get_f(dtype, base, i);
        return isnan(f) || f <= 0 ? 0 : f >= 0x1p64 ? UINT64_MAX : (uint64_t)f;
    }
    }
}

/* Stores v into element i: float types round, integer types truncate and
 * saturate, bool is "not zero". */
void elem_set_f(int dtype, void *base, int64_t i, double v);
/* Stores the low bits of v (two's complement) into an integer or bool element. */
void elem_set_u(int dtype, void *base, int64_t i, uint64_t v);
/* Stores v rounded half to even first for integer types (then saturated,
 * as elem_set_f does), as is for float types: the resampling and pooling
 * kernels' conversion. */
void elem_set_rounded(int dtype, void *base, int64_t i, double v);

#define ELEM_MAX_OPS 8 /* the output and up to 7 inputs per walk */

/* A broadcast walk: off[0] is the output's element offset, off[k] input
 * k-1's, for each output element in row-major order. */
typedef struct elem_walk {
    int rank, n_ops;
    int64_t shape[ENG_MAX_RANK];
    int64_t strides[ELEM_MAX_OPS][ENG_MAX_RANK];
    const int64_t *sp[ELEM_MAX_OPS];
    int64_t idx[ENG_MAX_RANK];
    int64_t off[ELEM_MAX_OPS];
    int64_t left; /* output elements not yet visited */
} elem_walk;

/* Prepares a walk of y over n inputs x[0..n) that broadcast to y's shape
 * (n < ELEM_MAX_OPS). ROUSE_EMISMATCH when one does not. */
int elem_walk_init(elem_walk *w, const eng_tensor *y, int n, const eng_tensor *const *x);

/* True while w->off holds the offsets of an output element not yet
 * visited; advances past it on the next call. Use as
 * `for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w))`. */
static inline bool elem_walk_first(const elem_walk *w)
{
    return w->left > 0;
}
bool elem_walk_next(elem_walk *w);

#endif
