/*
 * Helpers private to the shape and index ops (ops/shape.c, ops/slice.c,
 * ops/index.c): element access by type, strides, and a strided copy that
 * carries most data-movement kernels. Nothing here allocates.
 */
#ifndef ROUSE_ENGINE_OPS_SHAPE_UTIL_H
#define ROUSE_ENGINE_OPS_SHAPE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/op.h"
#include "engine/tensor.h"

/* Row-major element strides of shape[rank]. */
void sx_strides(int rank, const int64_t *shape, int64_t *strides);

/* Element i of an int32 or int64 tensor. */
int64_t sx_index_at(const eng_tensor *t, int64_t i);

/* True for float, double, float16 and bfloat16. */
bool sx_is_float(int dtype);

/* A float-type element as double / stored from double (float16 and bfloat16
 * round to nearest even). */
double sx_load_f64(int dtype, const void *p);
void sx_store_f64(int dtype, void *p, double v);

/* An integer or bool element as a 64-bit two's-complement pattern (signed
 * types sign-extended) / stored by taking the low bits (bool: not zero). */
uint64_t sx_load_bits(int dtype, const void *p);
void sx_store_bits(int dtype, void *p, uint64_t v);

/* Any numeric element as double (integers above 2^53 round). */
double sx_load_num(int dtype, const void *p);
/* v stored into any numeric type: floats round, integers truncate toward
 * zero and saturate (NaN gives 0), bool is "not zero". */
void sx_store_num(int dtype, void *p, double v);

/* True when the element is not zero (-0.0 is zero, NaN is not). */
bool sx_nonzero(int dtype, const void *p);

/* "node 'x' (Op): attribute 'attr' <what>" as ROUSE_EFORMAT (eb may be
 * NULL): the check hooks' error. */
int sx_attr_bad(const eng_node *n, rouse_errbuf *eb, const char *attr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The data of input i for shape inference: NULL after setting a
 * ROUSE_EUNSUPPORTED error naming the input when its values are not known
 * at prepare, or a ROUSE_EFORMAT one when it is absent. */
const void *sx_infer_data(eng_infer_ctx *c, int i, int *rc);

/* y (dense, shape[rank], rank at most 2 * ENG_MAX_RANK) from x: element idx of y is x[base + sum
 * idx[d] * xstrides[d]] (strides in elements, may be zero or negative). The caller guarantees every
 * such offset lies inside x. es is the element size. */
void sx_copy_strided(int rank, const int64_t *shape, const int64_t *xstrides, int64_t base,
                     size_t es, const void *x, void *y);

#endif
