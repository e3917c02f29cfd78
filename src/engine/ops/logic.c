/*
 * Operator descriptors of the logic family (see engine/op.h): comparisons
 * (Equal, Less, Greater, LessOrEqual, GreaterOrEqual), boolean logic (And,
 * Or, Xor, Not), BitShift and the float classifiers IsNaN and IsInf.
 *
 * Guarantees: binary ops broadcast both inputs (numpy rules) and require
 * them to share an element type; comparisons are exact for every type
 * (integers compare as 64-bit integers, never through a double; float16
 * and bfloat16 widen exactly) and false when either side is NaN, except
 * that NaN is not equal to itself. A shift by at least the type's width
 * gives 0.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/op.h"
#include "engine/ops/elem.h"

/* --- shape inference -------------------------------------------------------- */

/* Two inputs of one type broadcast together; the output is `dtype`, or the
 * inputs' type when dtype is 0. */
static int infer_bcast2(eng_infer_ctx *c, int dtype)
{
    const eng_tensor *a = c->in[0], *b = c->in[1];
    int rc = eng_infer_same_dtype(c, 0, 1);
    if (rc < 0) return rc;
    int r;
    int64_t y[ENG_MAX_RANK];
    if (!eng_broadcast_shapes(a->rank, a->shape, b->rank, b->shape, &r, y)) {
        char sa[160], sb[160];
        return eng_infer_fail(c, ROUSE_EMISMATCH, "inputs '%s' %s and '%s' %s do not broadcast",
                              eng_infer_in_name(c, 0), eng_shape_str(a->rank, a->shape, sa, 160),
                              eng_infer_in_name(c, 1), eng_shape_str(b->rank, b->shape, sb, 160));
    }
    eng_infer_set_out(c, 0, dtype ? dtype : a->dtype, r, y);
    return 0;
}

static int infer_bcast_bool(eng_infer_ctx *c)
{
    return infer_bcast2(c, ENG_DT_BOOL);
}

static int infer_bcast_same(eng_infer_ctx *c)
{
    return infer_bcast2(c, 0);
}

static int infer_bool_like(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_infer_set_out(c, 0, ENG_DT_BOOL, x->rank, x->shape);
    return 0;
}

/* --- kernels -------------------------------------------------------------- */

static bool compare_f(eng_op op, double p, double q)
{
    switch (op) {
    case ENG_OP_EQUAL:
        return p == q;
    case ENG_OP_LESS:
        return p < q;
    case ENG_OP_GREATER:
        return p > q;
    case ENG_OP_LESS_OR_EQUAL:
        return p <= q;
    default:
        return p >= q;
    }
}

#define COMPARE_INT(op, p, q)                                                                      \
    ((op) == ENG_OP_EQUAL           ? (p) == (q)                                                   \
     : (op) == ENG_OP_LESS          ? (p) < (q)                                                    \
     : (op) == ENG_OP_GREATER       ? (p) > (q)                                                    \
     : (op) == ENG_OP_LESS_OR_EQUAL ? (p) <= (q)                                                   \
                                    : (p) >= (q))

static int run_compare(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                       eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    const eng_tensor *x = in[0], *z = in[1];
    uint8_t *y = out[0]->data;
    elem_walk w;
    int rc = elem_walk_init(&w, out[0], 2, in);
    if (rc < 0) return eng_run_fail(nd, eb, rc, "inputs do not broadcast to the output");
    const eng_op op = nd->op;
    const int dt = x->dtype;
    if (dt == ENG_DT_FLOAT) {
        const float *p = x->data, *q = z->data;
        for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w))
            y[w.off[0]] = compare_f(op, p[w.off[1]], q[w.off[2]]);
        return 0;
    }
    switch (elem_kind(dt)) {
    case ELEM_FLOAT:
        for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w))
            y[w.off[0]] =
                compare_f(op, elem_get_f(dt, x->data, w.off[1]), elem_get_f(dt, z->data, w.off[2]));
        return 0;
    case ELEM_SIGNED:
        for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w)) {
            int64_t p = elem_get_i(dt, x->data, w.off[1]), q = elem_get_i(dt, z->data, w.off[2]);
            y[w.off[0]] = COMPARE_INT(op, p, q);
        }
        return 0;
    case ELEM_UNSIGNED:
        for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w)) {
            uint64_t p = elem_get_u(dt, x->data, w.off[1]), q = elem_get_u(dt, z->data, w.off[2]);
            y[w.off[0]] = COMPARE_INT(op, p, q);
        }
        return 0;
    default:
        return eng_run_fail(nd, eb, ROUSE_EUNSUPPORTED, "element type %s is not supported",
                            eng_dtype_name(dt));
    }
}
#undef COMPARE_INT

static int run_logic(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    const uint8_t *p = in[0]->data, *q = in[1]->data;
    uint8_t *y = out[0]->data;
    elem_walk w;
    int rc = elem_walk_init(&w, out[0], 2, in);
    if (rc < 0) return eng_run_fail(nd, eb, rc, "inputs do not broadcast to the output");
    for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w)) {
        bool u = p[w.off[1]] != 0, v = q[w.off[2]] != 0;
        y[w.off[0]] = nd->op == ENG_OP_AND ? (u && v) : nd->op == ENG_OP_OR ? (u || v) : (u != v);
    }
    return 0;
}

static int run_not(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                   eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)nd, (void)a, (void)eb;
    const uint8_t *x = in[0]->data;
    uint8_t *y = out[0]->data;
    int64_t n = eng_tensor_numel(in[0]);
    for (int64_t i = 0; i < n; i++)
        y[i] = !x[i];
    return 0;
}

static int run_bitshift(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                        eng_tensor *const *out, rouse_errbuf *eb)
{
    const int dt = in[0]->dtype;
    const uint64_t bits = 8 * (uint64_t)eng_dtype_size(dt);
    const bool right = a->act.shift.right != 0;
    elem_walk w;
    int rc = elem_walk_init(&w, out[0], 2, in);
    if (rc < 0) return eng_run_fail(nd, eb, rc, "inputs do not broadcast to the output");
    for (bool go = elem_walk_first(&w); go; go = elem_walk_next(&w)) {
        uint64_t v = elem_get_u(dt, in[0]->data, w.off[1]);
        uint64_t s = elem_get_u(dt, in[1]->data, w.off[2]);
        uint64_t r = s >= bits ? 0 : right ? v >> s : v << s;
        elem_set_u(dt, out[0]->data, w.off[0], r);
    }
    return 0;
}

static int run_isnan(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)nd, (void)a, (void)eb;
    const eng_tensor *x = in[0];
    uint8_t *y = out[0]->data;
    int64_t n = eng_tensor_numel(x);
    for (int64_t i = 0; i < n; i++)
        y[i] = isnan(elem_get_f(x->dtype, x->data, i)) != 0;
    return 0;
}

static int run_isinf(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)nd, (void)eb;
    const eng_tensor *x = in[0];
    uint8_t *y = out[0]->data;
    const bool neg = a->act.isinf.detect_negative, pos = a->act.isinf.detect_positive;
    int64_t n = eng_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        double v = elem_get_f(x->dtype, x->data, i);
        y[i] = (pos && v == INFINITY) || (neg && v == -INFINITY);
    }
    return 0;
}

/* --- attributes ----------------------------------------------------------- */

static int parse_bitshift(const eng_attr_ctx *c, eng_attrs *a)
{
    static const char *const dirs[] = {"LEFT", "RIGHT", NULL};
    if (!eng_attr_find(c, "direction"))
        return eng_attr_err(c, ROUSE_EFORMAT, "direction", "is required (LEFT or RIGHT)");
    return eng_attr_choice(c, "direction", dirs, 0, &a->act.shift.right);
}

static int check_bitshift(const eng_node *n, rouse_errbuf *eb)
{
    int r = n->attrs.act.shift.right;
    if (r == 0 || r == 1) return 0;
    return rouse_err_set(eb, ROUSE_EFORMAT, "node '%s' (BitShift): bad direction %d", n->name, r);
}

static int parse_isinf(const eng_attr_ctx *c, eng_attrs *a)
{
    int rc = eng_attr_flag(c, "detect_negative", 1, &a->act.isinf.detect_negative);
    if (rc == 0) rc = eng_attr_flag(c, "detect_positive", 1, &a->act.isinf.detect_positive);
    return rc;
}

static int check_isinf(const eng_node *n, rouse_errbuf *eb)
{
    const eng_act_isinf *f = &n->attrs.act.isinf;
    if ((f->detect_negative & ~1) == 0 && (f->detect_positive & ~1) == 0) return 0;
    return rouse_err_set(eb, ROUSE_EFORMAT, "node '%s' (IsInf): detect flags must be 0 or 1",
                         n->name);
}

/* --- descriptors ---------------------------------------------------------- */

#define COMPARE_DESC(var, OP, NAME, SINCE)                                                         \
    static const eng_op_desc var = {                                                               \
        .op = OP,                                                                                  \
        .name = NAME,                                                                              \
        .since = SINCE,                                                                            \
        .min_in = 2,                                                                               \
        .max_in = 2,                                                                               \
        .max_out = 1,                                                                              \
        .in_names = {"A", "B"},                                                                    \
        .dtypes = ENG_DTM_ANY,                                                                     \
        .infer = infer_bcast_bool,                                                                 \
        .run = run_compare,                                                                        \
    }

COMPARE_DESC(op_equal, ENG_OP_EQUAL, "Equal", 7);
COMPARE_DESC(op_less, ENG_OP_LESS, "Less", 7);
COMPARE_DESC(op_greater, ENG_OP_GREATER, "Greater", 7);
COMPARE_DESC(op_less_or_equal, ENG_OP_LESS_OR_EQUAL, "LessOrEqual", 12);
COMPARE_DESC(op_greater_or_equal, ENG_OP_GREATER_OR_EQUAL, "GreaterOrEqual", 12);
#undef COMPARE_DESC

/* Opset 1-6 And/Or/Xor broadcast only with the legacy `broadcast`/`axis`
 * attributes, hence 7. */
#define LOGIC_DESC(var, OP, NAME)                                                                  \
    static const eng_op_desc var = {                                                               \
        .op = OP,                                                                                  \
        .name = NAME,                                                                              \
        .since = 7,                                                                                \
        .min_in = 2,                                                                               \
        .max_in = 2,                                                                               \
        .max_out = 1,                                                                              \
        .in_names = {"A", "B"},                                                                    \
        .dtypes = ENG_DTM(BOOL),                                                                   \
        .infer = infer_bcast_bool,                                                                 \
        .run = run_logic,                                                                          \
    }

LOGIC_DESC(op_and, ENG_OP_AND, "And");
LOGIC_DESC(op_or, ENG_OP_OR, "Or");
LOGIC_DESC(op_xor, ENG_OP_XOR, "Xor");
#undef LOGIC_DESC

static const eng_op_desc op_not = {
    .op = ENG_OP_NOT,
    .name = "Not",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = ENG_DTM(BOOL),
    .infer = infer_bool_like,
    .run = run_not,
};

static const eng_op_desc op_bitshift = {
    .op = ENG_OP_BITSHIFT,
    .name = "BitShift",
    .since = 11,
    .min_in = 2,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"X", "Y"},
    .dtypes = ENG_DTM_UINTS,
    .parse = parse_bitshift,
    .check = check_bitshift,
    .infer = infer_bcast_same,
    .run = run_bitshift,
};

static const eng_op_desc op_isnan = {
    .op = ENG_OP_ISNAN,
    .name = "IsNaN",
    .since = 9,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = ENG_DTM_FLOATS,
    .infer = infer_bool_like,
    .run = run_isnan,
};

static const eng_op_desc op_isinf = {
    .op = ENG_OP_ISINF,
    .name = "IsInf",
    .since = 10,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = ENG_DTM_FLOATS,
    .parse = parse_isinf,
    .check = check_isinf,
    .infer = infer_bool_like,
    .run = run_isinf,
};

const eng_op_desc *const eng_ops_logic[] = {
    &op_equal, &op_less,  &op_greater, &op_less_or_equal, &op_greater_or_equal,
    &op_and,   &op_or,    &op_xor,     &op_not,           &op_bitshift,
    &op_isnan, &op_isinf, NULL,
};
