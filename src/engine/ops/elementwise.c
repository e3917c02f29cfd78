/*
 * Operator descriptors of the element-wise ops that predate the families
 * (see engine/op.h): activations (Relu, LeakyRelu, Sigmoid, Tanh, Erf,
 * Sqrt, Clip), the four arithmetic ops, Pow, Where and Cast. Their
 * kernels are the plain C ones of src/engine/ref/; oneDNN builds and the
 * optimizer's fusions stay keyed by eng_op.
 *
 * Guarantees: outputs broadcast per numpy; Clip's bounds are explicit
 * numbers once shape inference has read its optional inputs.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/op.h"
#include "engine/ops/ops_int.h"
#include "engine/ref/ref.h"

/* --- attributes ----------------------------------------------------------- */

static int parse_clip(const eng_attr_ctx *c, eng_attrs *at)
{
    eng_clip_attrs *a = &at->clip;
    a->min = -INFINITY;
    a->max = INFINITY;
    a->has_min = a->has_max = false;
    if (c->n->opset >= 11) return 0; /* bounds are inputs, resolved by shape inference */
    float lo, hi;
    int rc;
    if ((rc = eng_attr_float(c, "min", -FLT_MAX, &lo)) < 0) return rc;
    if ((rc = eng_attr_float(c, "max", FLT_MAX, &hi)) < 0) return rc;
    a->min = lo;
    a->max = hi;
    a->has_min = a->has_max = true;
    return 0;
}

/* Before opset 7 the binary ops broadcast only when asked, and `axis` aligned
 * B at an arbitrary dimension of A. Without `axis` the alignment is the
 * trailing one, which numpy broadcasting reproduces; with it, the result can
 * differ, so we refuse rather than compute something else. */
static int parse_legacy_binary(const eng_attr_ctx *c, eng_attrs *a)
{
    (void)a;
    if (c->n->opset >= 7) return 0;
    int64_t bcast;
    int rc;
    if ((rc = eng_attr_int(c, "broadcast", 0, &bcast)) < 0) return rc;
    if (bcast && eng_attr_find(c, "axis"))
        return eng_attr_err(c, ROUSE_EUNSUPPORTED, "axis",
                            "(legacy broadcasting along an axis) is not supported");
    return 0;
}

/* Cast's target: the element types the Cast kernel converts between. */
static int parse_cast(const eng_attr_ctx *c, eng_attrs *a)
{
    int64_t to;
    int rc;
    if (!eng_attr_find(c, "to")) return eng_attr_err(c, ROUSE_EFORMAT, "to", "is required");
    if ((rc = eng_attr_int(c, "to", 0, &to)) < 0) return rc;
    if (to < INT32_MIN || to > INT32_MAX) {
        char what[96];
        snprintf(what, sizeof(what), "has unknown element type %lld", (long long)to);
        return eng_attr_err(c, ROUSE_EFORMAT, "to", what);
    }
    a->cast.to = (int)to;
    return 0;
}

static int check_cast(const eng_node *n, rouse_errbuf *eb)
{
    int to = n->attrs.cast.to;
    switch (to) {
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
    case ENG_DT_BOOL:
    case ENG_DT_FLOAT16:
    case ENG_DT_BFLOAT16:
        return 0;
    case ENG_DT_STRING:
    case ENG_DT_COMPLEX64:
    case ENG_DT_COMPLEX128:
        return eng_check_fail(n, eb, ROUSE_EUNSUPPORTED, "to", "= %s is not supported",
                              eng_dtype_name(to));
    default:
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "to", "has unknown element type %d", to);
    }
}

static int check_clip(const eng_node *n, rouse_errbuf *eb)
{
    const eng_clip_attrs *a = &n->attrs.clip;
    if (!ops_bool_valid(&a->has_min) || !ops_bool_valid(&a->has_max))
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "min", "has a bad form");
    if (isnan(a->min)) return eng_check_fail(n, eb, ROUSE_EFORMAT, "min", "is NaN");
    if (isnan(a->max)) return eng_check_fail(n, eb, ROUSE_EFORMAT, "max", "is NaN");
    return 0;
}

static int parse_leaky_relu(const eng_attr_ctx *c, eng_attrs *a)
{
    return eng_attr_finite(c, "alpha", 0.01f, &a->alpha.alpha);
}

static int check_leaky_relu(const eng_node *n, rouse_errbuf *eb)
{
    if (!isfinite(n->attrs.alpha.alpha))
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "alpha", "must be finite");
    return 0;
}

/* --- shape inference ------------------------------------------------------ */

static int infer_same(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

static int infer_clip(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_clip_attrs *a = &c->res->clip;
    struct ops_shapebuf sb;
    int rc;

    for (int i = 1; i <= 2; i++) {
        const eng_tensor *t = eng_infer_input(c, i);
        if (!t) continue;
        if ((rc = eng_infer_same_dtype(c, i, 0)) < 0) return rc;
        if (t->rank > 1 || eng_tensor_numel(t) != 1)
            return eng_infer_fail(c, ROUSE_EMISMATCH, "input '%s' must be a scalar, got %s",
                                  eng_infer_in_name(c, i), ops_shp(&sb, 0, t->rank, t->shape));
        double v;
        if (!t->data)
            return eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                                  "input '%s' must be a constant or a graph input",
                                  eng_infer_in_name(c, i));
        if (!eng_infer_read_scalar(c, i, &v) || isnan(v))
            return eng_infer_fail(c, ROUSE_EMISMATCH, "input '%s' is not a number",
                                  eng_infer_in_name(c, i));
        if (i == 1) {
            a->min = v;
            a->has_min = true;
        } else {
            a->max = v;
            a->has_max = true;
        }
    }
    eng_infer_set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

static int infer_binary(eng_infer_ctx *c)
{
    const eng_tensor *A = c->in[0], *B = c->in[1];
    struct ops_shapebuf sb;
    int rc, r;
    int64_t y[ENG_MAX_RANK];

    if ((rc = eng_infer_same_dtype(c, 1, 0)) < 0) return rc;
    if (!eng_broadcast_shapes(A->rank, A->shape, B->rank, B->shape, &r, y))
        return eng_infer_fail(
            c, ROUSE_EMISMATCH, "input 'A' %s and input 'B' %s cannot be broadcast",
            ops_shp(&sb, 0, A->rank, A->shape), ops_shp(&sb, 1, B->rank, B->shape));
    eng_infer_set_out(c, 0, A->dtype, r, y);
    return 0;
}

static int infer_pow(eng_infer_ctx *c)
{
    const eng_tensor *A = c->in[0], *B = c->in[1];
    struct ops_shapebuf sb;
    int rc, r;
    int64_t y[ENG_MAX_RANK];

    /* Before opset 12 the exponent had the base's type. */
    if (c->n->opset < 12 && (rc = eng_infer_same_dtype(c, 1, 0)) < 0) return rc;
    unsigned ok = (ENG_DTM(FLOAT) | ENG_DTM(DOUBLE)) | ENG_DTM(INT32) | ENG_DTM(INT64) |
                  ENG_DTM(UINT32) | ENG_DTM(UINT64);
    if (B->dtype <= 0 || B->dtype >= 32 || !(ok & (1u << B->dtype)))
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                              "element type %s of input 'Y' is not supported",
                              eng_dtype_name(B->dtype));
    if (!eng_broadcast_shapes(A->rank, A->shape, B->rank, B->shape, &r, y))
        return eng_infer_fail(
            c, ROUSE_EMISMATCH, "input 'X' %s and input 'Y' %s cannot be broadcast",
            ops_shp(&sb, 0, A->rank, A->shape), ops_shp(&sb, 1, B->rank, B->shape));
    eng_infer_set_out(c, 0, A->dtype, r, y);
    return 0;
}

static int infer_where(eng_infer_ctx *c)
{
    const eng_tensor *cond = c->in[0], *X = c->in[1], *Y = c->in[2];
    struct ops_shapebuf sb;
    int rc, r1, r;
    int64_t y1[ENG_MAX_RANK], y[ENG_MAX_RANK];

    if ((rc = eng_infer_same_dtype(c, 2, 1)) < 0) return rc;
    if (eng_dtype_size(X->dtype) == 0)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                              "element type %s of input 'X' is not supported",
                              eng_dtype_name(X->dtype));
    if (!eng_broadcast_shapes(X->rank, X->shape, Y->rank, Y->shape, &r1, y1))
        return eng_infer_fail(
            c, ROUSE_EMISMATCH, "input 'X' %s and input 'Y' %s cannot be broadcast",
            ops_shp(&sb, 0, X->rank, X->shape), ops_shp(&sb, 1, Y->rank, Y->shape));
    if (!eng_broadcast_shapes(cond->rank, cond->shape, r1, y1, &r, y))
        return eng_infer_fail(
            c, ROUSE_EMISMATCH,
            "input 'condition' %s cannot be broadcast with inputs 'X' and 'Y' (%s)",
            ops_shp(&sb, 0, cond->rank, cond->shape), ops_shp(&sb, 1, r1, y1));
    eng_infer_set_out(c, 0, X->dtype, r, y);
    return 0;
}

/* Transformer building blocks: Cast, Gather, Pow, ReduceMean, Unsqueeze,
 * Squeeze, Where. */

static int infer_cast(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_infer_set_out(c, 0, c->res->cast.to, x->rank, x->shape);
    return 0;
}

/* --- reference kernels ---------------------------------------------------- */

static int run_unary(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    int rc = ref_unary(n->op, a, in[0], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_binary(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                      eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    int rc = ref_binary(n->op, in[0], in[1], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_pow(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                   eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    int rc = ref_pow(in[0], in[1], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_where(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    int rc = ref_where(in[0], in[1], in[2], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

static int run_cast(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                    eng_tensor *const *out, rouse_errbuf *eb)
{
    int rc = ref_cast(a->cast.to, in[0], out[0]);
    return rc < 0 ? ops_ref_status(n, eb, rc, in[0]) : 0;
}

/* --- descriptors ---------------------------------------------------------- */

#define FLOATS (ENG_DTM(FLOAT) | ENG_DTM(DOUBLE))
#define ALL (FLOATS | ENG_DTM_INTS | ENG_DTM(BOOL) | ENG_DTM(FLOAT16) | ENG_DTM(BFLOAT16))

/* A one-input float activation with no attributes. */
#define UNARY(var, OP, NAME, SINCE, INNAME)                                                        \
    static const eng_op_desc var = {                                                               \
        .op = OP,                                                                                  \
        .name = NAME,                                                                              \
        .since = SINCE,                                                                            \
        .min_in = 1,                                                                               \
        .max_in = 1,                                                                               \
        .max_out = 1,                                                                              \
        .in_names = {INNAME},                                                                      \
        .dtypes = FLOATS,                                                                          \
        .infer = infer_same,                                                                       \
        .run = run_unary,                                                                          \
    }

UNARY(op_relu, ENG_OP_RELU, "Relu", 1, "X");
UNARY(op_sigmoid, ENG_OP_SIGMOID, "Sigmoid", 1, "X");
UNARY(op_tanh, ENG_OP_TANH, "Tanh", 1, "X");
UNARY(op_sqrt, ENG_OP_SQRT, "Sqrt", 1, "X");
/* Erf arrived in opset 9. */
UNARY(op_erf, ENG_OP_ERF, "Erf", 9, "input");

static const eng_op_desc op_leaky_relu = {
    .op = ENG_OP_LEAKY_RELU,
    .name = "LeakyRelu",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = FLOATS,
    .parse = parse_leaky_relu,
    .check = check_leaky_relu,
    .infer = infer_same,
    .run = run_unary,
};

/* Clip's bounds were attributes before opset 11, inputs since. */
static void counts_clip(const eng_node *n, int *min_in, int *max_in, int *max_out)
{
    (void)min_in;
    (void)max_out;
    if (n->opset < 11) *max_in = 1;
}

static const eng_op_desc op_clip = {
    .op = ENG_OP_CLIP,
    .name = "Clip",
    .since = 1,
    .min_in = 1,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"input", "min", "max"},
    .dtypes = FLOATS | ENG_DTM_INTS,
    .value_inputs = 1u << 1 | 1u << 2,
    .counts = counts_clip,
    .parse = parse_clip,
    .check = check_clip,
    .infer = infer_clip,
    .run = run_unary,
};

#define BINARY(var, OP, NAME)                                                                      \
    static const eng_op_desc var = {                                                               \
        .op = OP,                                                                                  \
        .name = NAME,                                                                              \
        .since = 1,                                                                                \
        .min_in = 2,                                                                               \
        .max_in = 2,                                                                               \
        .max_out = 1,                                                                              \
        .in_names = {"A", "B"},                                                                    \
        .dtypes = FLOATS | ENG_DTM_INTS,                                                           \
        .parse = parse_legacy_binary,                                                              \
        .infer = infer_binary,                                                                     \
        .run = run_binary,                                                                         \
    }

BINARY(op_add, ENG_OP_ADD, "Add");
BINARY(op_sub, ENG_OP_SUB, "Sub");
BINARY(op_mul, ENG_OP_MUL, "Mul");
BINARY(op_div, ENG_OP_DIV, "Div");

/* Before opset 7 Pow had the legacy broadcast attributes. */
static const eng_op_desc op_pow = {
    .op = ENG_OP_POW,
    .name = "Pow",
    .since = 7,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"X", "Y"},
    .dtypes = FLOATS | ENG_DTM(INT32) | ENG_DTM(INT64),
    .infer = infer_pow,
    .run = run_pow,
};

/* X and Y may have any type; input 0 is the bool condition. */
static const eng_op_desc op_where = {
    .op = ENG_OP_WHERE,
    .name = "Where",
    .since = 9,
    .min_in = 3,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"condition", "X", "Y"},
    .dtypes = ENG_DTM(BOOL),
    .infer = infer_where,
    .run = run_where,
};

/* Before opset 6 Cast named its target type with a string. */
static const eng_op_desc op_cast = {
    .op = ENG_OP_CAST,
    .name = "Cast",
    .since = 6,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"input"},
    .dtypes = ALL,
    .parse = parse_cast,
    .check = check_cast,
    .infer = infer_cast,
    .run = run_cast,
};

const eng_op_desc *const eng_ops_elementwise[] = {
    &op_relu, &op_clip, &op_leaky_relu, &op_sigmoid, &op_tanh,  &op_erf,  &op_sqrt, &op_add,
    &op_sub,  &op_mul,  &op_div,        &op_pow,     &op_where, &op_cast, NULL,
};
