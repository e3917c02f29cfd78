/*
 * Helpers private to the shape and index ops: see ops/shape_util.h.
 *
 * Element conversions follow the engine's Cast (ref/convert.c) and use its
 * half-precision helpers (ref/ref_util.h): float16 and bfloat16 round to
 * nearest even, floats going to integers truncate toward
 * zero and saturate, NaN gives 0, integers wrap.
 */
#include "engine/ops/shape_util.h"

#include "engine/ref/ref_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sx_attr_bad(const eng_node *n, rouse_errbuf *eb, const char *attr, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rouse_err_set(eb, ROUSE_EFORMAT, "node '%s' (%s): attribute '%s' %s",
                         n->name ? n->name : "", eng_op_name(n->op), attr, msg);
}

const void *sx_infer_data(eng_infer_ctx *c, int i, int *rc)
{
    const eng_tensor *t = eng_infer_input(c, i);
    if (!t) {
        *rc = eng_infer_fail(c, ROUSE_EFORMAT, "input '%s' is required", eng_infer_in_name(c, i));
        return NULL;
    }
    if (!t->data) {
        *rc = eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                             "input '%s' must be known when the model is prepared (a constant, a "
                             "graph input, or computed from shapes)",
                             eng_infer_in_name(c, i));
        return NULL;
    }
    *rc = 0;
    return t->data;
}

void sx_strides(int rank, const int64_t *shape, int64_t *strides)
{
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        strides[d] = s;
        s *= shape[d];
    }
}

int64_t sx_index_at(const eng_tensor *t, int64_t i)
{
    if (t->dtype == ENG_DT_INT32) {
        int32_t v;
        memcpy(&v, (const char *)t->data + 4 * i, 4);
        return v;
    }
    int64_t v;
    memcpy(&v, (const char *)t->data + 8 * i, 8);
    return v;
}

bool sx_is_float(int dtype)
{
    return dtype == ENG_DT_FLOAT || dtype == ENG_DT_DOUBLE || dtype == ENG_DT_FLOAT16 ||
           dtype == ENG_DT_BFLOAT16;
}

double sx_load_f64(int dtype, const void *p)
{
    switch (dtype) {
    case ENG_DT_FLOAT: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    case ENG_DT_DOUBLE: {
        double d;
        memcpy(&d, p, 8);
        return d;
    }
    case ENG_DT_FLOAT16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return ref_half_to_double(h);
    }
    case ENG_DT_BFLOAT16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return ref_bf16_to_double(h);
    }
    default:
        return 0.0;
    }
}

void sx_store_f64(int dtype, void *p, double v)
{
    switch (dtype) {
    case ENG_DT_FLOAT: {
        float f = (float)v;
        memcpy(p, &f, 4);
        break;
    }
    case ENG_DT_DOUBLE:
        memcpy(p, &v, 8);
        break;
    case ENG_DT_FLOAT16: {
        uint16_t h = ref_double_to_half(v);
        memcpy(p, &h, 2);
        break;
    }
    case ENG_DT_BFLOAT16: {
        uint16_t h = ref_float_to_bf16((float)v);
        memcpy(p, &h, 2);
        break;
    }
    default:
        break;
    }
}

uint64_t sx_load_bits(int dtype, const void *p)
{
    switch (dtype) {
    case ENG_DT_INT8:
        return (uint64_t)(int64_t) * (const int8_t *)p;
    case ENG_DT_UINT8:
    case ENG_DT_BOOL:
        return *(const uint8_t *)p;
    case ENG_DT_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        return (uint64_t)(int64_t)v;
    }
    case ENG_DT_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case ENG_DT_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        return (uint64_t)(int64_t)v;
    }
    case ENG_DT_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case ENG_DT_INT64:
    case ENG_DT_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    default:
        return 0;
    }
}

void sx_store_bits(int dtype, void *p, uint64_t v)
{
    switch (dtype) {
    case ENG_DT_BOOL:
        *(uint8_t *)p = v != 0;
        break;
    case ENG_DT_INT8:
    case ENG_DT_UINT8:
        *(uint8_t *)p = (uint8_t)v;
        break;
    case ENG_DT_INT16:
    case ENG_DT_UINT16: {
        uint16_t w = (uint16_t)v;
        memcpy(p, &w, 2);
        break;
    }
    case ENG_DT_INT32:
    case ENG_DT_UINT32: {
        uint32_t w = (uint32_t)v;
        memcpy(p, &w, 4);
        break;
    }
    case ENG_DT_INT64:
    case ENG_DT_UINT64:
        memcpy(p, &v, 8);
        break;
    default:
        break;
    }
}

static bool is_unsigned(int dtype)
{
    return dtype == ENG_DT_UINT8 || dtype == ENG_DT_UINT16 || dtype == ENG_DT_UINT32 ||
           dtype == ENG_DT_UINT64 || dtype == ENG_DT_BOOL;
}

double sx_load_num(int dtype, const void *p)
{
    if (sx_is_float(dtype)) return sx_load_f64(dtype, p);
    uint64_t b = sx_load_bits(dtype, p);
    return is_unsigned(dtype) ? (double)b : (double)(int64_t)b;
}

/* v truncated and saturated into [lo, hi]; hi may round up in double, so
 * `>=` keeps the cast in range. */
#define SAT(T, lo, hi, f)                                                                          \
    (isnan(f) ? (T)0 : (f) <= (double)(lo) ? (T)(lo) : (f) >= (double)(hi) ? (T)(hi) : (T)(f))

void sx_store_num(int dtype, void *p, double v)
{
    if (sx_is_float(dtype)) {
        sx_store_f64(dtype, p, v);
        return;
    }
    switch (dtype) {
    case ENG_DT_BOOL:
        *(uint8_t *)p = v != 0.0;
        break;
    case ENG_DT_INT8:
        *(int8_t *)p = SAT(int8_t, INT8_MIN, INT8_MAX, v);
        break;
    case ENG_DT_UINT8:
        *(uint8_t *)p = SAT(uint8_t, 0, UINT8_MAX, v);
        break;
    case ENG_DT_INT16: {
        int16_t w = SAT(int16_t, INT16_MIN, INT16_MAX, v);
        memcpy(p, &w, 2);
        break;
    }
    case ENG_DT_UINT16: {
        uint16_t w = SAT(uint16_t, 0, UINT16_MAX, v);
        memcpy(p, &w, 2);
        break;
    }
    case ENG_DT_INT32: {
        int32_t w = SAT(int32_t, INT32_MIN, INT32_MAX, v);
        memcpy(p, &w, 4);
        break;
    }
    case ENG_DT_UINT32: {
        uint32_t w = SAT(uint32_t, 0, UINT32_MAX, v);
        memcpy(p, &w, 4);
        break;
    }
    case ENG_DT_INT64: {
        int64_t w = SAT(int64_t, INT64_MIN, INT64_MAX, v);
        memcpy(p, &w, 8);
        break;
    }
    case ENG_DT_UINT64: {
        uint64_t w = SAT(uint64_t, 0, UINT64_MAX, v);
        memcpy(p, &w, 8);
        break;
    }
    default:
        break;
    }
}
#undef SAT

bool sx_nonzero(int dtype, const void *p)
{
    if (sx_is_float(dtype)) return sx_load_f64(dtype, p) != 0.0;
    return sx_load_bits(dtype, p) != 0;
}

/* Copies n elements of size es from x (stride xs elements) to dense y. */
static void copy_row(size_t es, const char *x, int64_t xs, char *y, int64_t n)
{
    if (xs == 1) {
        memcpy(y, x, (size_t)n * es);
        return;
    }
    switch (es) {
    case 1:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i * xs];
        return;
    case 2:
        for (int64_t i = 0; i < n; i++)
            memcpy(y + 2 * i, x + 2 * i * xs, 2);
        return;
    case 4:
        for (int64_t i = 0; i < n; i++)
            memcpy(y + 4 * i, x + 4 * i * xs, 4);
        return;
    case 8:
        for (int64_t i = 0; i < n; i++)
            memcpy(y + 8 * i, x + 8 * i * xs, 8);
        return;
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy(y + es * (size_t)i, x + (int64_t)es * i * xs, es);
        return;
    }
}

void sx_copy_strided(int rank, const int64_t *shape, const int64_t *xstrides, int64_t base,
                     size_t es, const void *x, void *y)
{
    int64_t n = eng_shape_numel(rank, shape);
    if (n <= 0) return;
    const char *xb = x;
    char *yb = y;
    if (rank == 0) {
        memcpy(yb, xb + (int64_t)es * base, es);
        return;
    }
    int64_t inner = shape[rank - 1], xs = xstrides[rank - 1];
    int64_t idx[2 * ENG_MAX_RANK] = {0};
    int64_t off = base;
    for (int64_t done = 0; done < n; done += inner) {
        copy_row(es, xb + (int64_t)es * off, xs, yb + (int64_t)es * done, inner);
        /* Next row: advance the odometer over the outer dims. */
        for (int d = rank - 2; d >= 0; d--) {
            off += xstrides[d];
            if (++idx[d] < shape[d]) break;
            off -= xstrides[d] * shape[d];
            idx[d] = 0;
        }
    }
}
