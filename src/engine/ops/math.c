/*
 * Operator descriptors of the math family (see engine/op.h): element-wise
 * unary arithmetic. Each op is one descriptor; its shape rule, its
 * reference kernel and its accepted types sit next to it.
 *
 * Guarantees: outputs have the input's shape and type; integer negation and
 * absolute value wrap modulo 2^bits, as in numpy.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/op.h"

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
    .dtypes = ENG_DTM(FLOAT) | ENG_DTM(DOUBLE) | ENG_DTM_INTS,
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
    .dtypes = ENG_DTM(FLOAT) | ENG_DTM(DOUBLE) | ENG_DTM_SINTS,
    .infer = infer_same,
    .run = run_neg,
};

const eng_op_desc *const eng_ops_math[] = {
    &op_abs,
    &op_neg,
    NULL,
};
