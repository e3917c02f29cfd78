/*
 * Private helpers of the reduce and norm families (ops/reduce*.c,
 * ops/norm.c): one element of any dense type read as a double or as a
 * 64-bit integer and written back, so that one kernel serves every element
 * type. Half types go through float, as ONNX Runtime computes them (the
 * conversions of ref_util.h).
 * Integers are stored modulo 2^bits (numpy's wrap); doubles going to an
 * integer type are truncated toward zero and saturated (NaN gives 0).
 */
#ifndef ROUSE_ENGINE_OPS_REDUCE_INT_H
#define ROUSE_ENGINE_OPS_REDUCE_INT_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "engine/ops/elem.h"
#include "engine/ref/ref_util.h"
#include "engine/tensor.h"

static inline bool red_is_float(int dt)
{
    return dt == ENG_DT_FLOAT || dt == ENG_DT_DOUBLE || dt == ENG_DT_FLOAT16 ||
           dt == ENG_DT_BFLOAT16;
}

static inline bool red_is_unsigned(int dt)
{
    return dt == ENG_DT_UINT8 || dt == ENG_DT_UINT16 || dt == ENG_DT_UINT32 ||
           dt == ENG_DT_UINT64 || dt == ENG_DT_BOOL;
}

/* Elements are read with elem_get_f / elem_get_i (ops/elem.h); the stores
 * below keep this family's conversions (integers wrap modulo 2^bits). */

/* Stores the integer v (modulo 2^bits) as element i. */
static inline void red_store_i(int dt, void *p, int64_t i, int64_t v)
{
    uint64_t u = (uint64_t)v;
    switch (dt) {
    case ENG_DT_INT8:
    case ENG_DT_UINT8:
        ((uint8_t *)p)[i] = (uint8_t)u;
        break;
    case ENG_DT_BOOL:
        ((uint8_t *)p)[i] = u != 0;
        break;
    case ENG_DT_INT16:
    case ENG_DT_UINT16:
        ((uint16_t *)p)[i] = (uint16_t)u;
        break;
    case ENG_DT_INT32:
    case ENG_DT_UINT32:
        ((uint32_t *)p)[i] = (uint32_t)u;
        break;
    case ENG_DT_INT64:
    case ENG_DT_UINT64:
        ((uint64_t *)p)[i] = u;
        break;
    default:
        break;
    }
}

/* A double converted to an integer type without undefined behaviour. */
static inline int64_t red_f_to_i(int dt, double v)
{
    if (isnan(v)) return 0;
    v = trunc(v);
    if (dt == ENG_DT_UINT64) {
        if (v <= 0) return 0;
        if (v >= 18446744073709551615.0) return (int64_t)UINT64_MAX;
        return (int64_t)(uint64_t)v;
    }
    if (v <= -9223372036854775808.0) return INT64_MIN;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    return (int64_t)v;
}

/* Stores the double v as element i of p (type dt). */
static inline void red_store_f(int dt, void *p, int64_t i, double v)
{
    switch (dt) {
    case ENG_DT_FLOAT:
        ((float *)p)[i] = (float)v;
        break;
    case ENG_DT_DOUBLE:
        ((double *)p)[i] = v;
        break;
    case ENG_DT_FLOAT16:
        ((uint16_t *)p)[i] = ref_double_to_half((float)v);
        break;
    case ENG_DT_BFLOAT16:
        ((uint16_t *)p)[i] = ref_float_to_bf16((float)v);
        break;
    default:
        red_store_i(dt, p, i, red_f_to_i(dt, v));
        break;
    }
}

/* Splits the dims of a dense row-major shape into kept ones (walked by the
 * output index) and reduced ones (walked per output element), each with
 * the input's element strides; adjacent dims of the same kind are merged.
 * The shared geometry of every reduction and normalization here. */
typedef struct red_geom {
    int nk, nr;
    int64_t kshape[ENG_MAX_RANK], kstride[ENG_MAX_RANK];
    int64_t rshape[ENG_MAX_RANK], rstride[ENG_MAX_RANK];
    int64_t n_out, count; /* output elements, elements per reduction */
} red_geom;

static inline void red_geom_init(red_geom *g, int rank, const int64_t *shape, const bool *reduced)
{
    int64_t stride[ENG_MAX_RANK], step = 1;
    for (int d = rank - 1; d >= 0; d--) {
        stride[d] = step;
        step *= shape[d];
    }
    g->nk = g->nr = 0;
    g->n_out = g->count = 1;
    int last = -1; /* kind of the previous dim kept: 0 kept, 1 reduced */
    for (int d = 0; d < rank; d++) {
        if (shape[d] == 1) continue; /* no effect on either walk */
        int kind = reduced[d] ? 1 : 0;
        int64_t *sh = kind ? g->rshape : g->kshape, *st = kind ? g->rstride : g->kstride;
        int *n = kind ? &g->nr : &g->nk;
        if (last == kind && *n > 0) {
            /* Contiguous with the previous dim of this kind: merge. */
            sh[*n - 1] *= shape[d];
            st[*n - 1] = stride[d];
        } else {
            sh[*n] = shape[d];
            st[*n] = stride[d];
            (*n)++;
        }
        last = kind;
        if (kind)
            g->count *= shape[d];
        else
            g->n_out *= shape[d];
    }
}

/* Advances idx over shape (row-major) and keeps *off in step with strides;
 * false once the whole space has been walked. */
static inline bool red_next(int n, const int64_t *shape, const int64_t *stride, int64_t *idx,
                            int64_t *off)
{
    for (int d = n - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) {
            *off += stride[d];
            return true;
        }
        *off -= stride[d] * (shape[d] - 1);
        idx[d] = 0;
    }
    return false;
}

/* Walks the reduced set of the output element at input offset `base`,
 * running BODY with `off` the input offset of each element (nothing when
 * the set is empty). BODY must not contain a top-level comma. */
#define RED_WALK(g, base, BODY)                                                                    \
    do {                                                                                           \
        if ((g)->count <= 0) break;                                                                \
        int nro_ = (g)->nr > 0 ? (g)->nr - 1 : 0;                                                  \
        int64_t len_ = (g)->nr > 0 ? (g)->rshape[(g)->nr - 1] : 1;                                 \
        int64_t st_ = (g)->nr > 0 ? (g)->rstride[(g)->nr - 1] : 0;                                 \
        int64_t ridx_[ENG_MAX_RANK] = {0}, roff_ = 0;                                              \
        do {                                                                                       \
            for (int64_t j_ = 0; j_ < len_; j_++) {                                                \
                int64_t off = (base) + roff_ + j_ * st_;                                           \
                BODY;                                                                              \
            }                                                                                      \
        } while (red_next(nro_, (g)->rshape, (g)->rstride, ridx_, &roff_));                        \
    } while (0)

#endif
