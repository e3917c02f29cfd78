/*
 * Attribute parsing: turns the ONNX attributes of a node into the typed
 * eng_attrs of its op, with the ONNX defaults of the model's opset.
 *
 * Guarantees: on success every field the op uses holds a value that the rest
 * of the engine can compute with (strides, dilations and kernels >= 1, pads
 * >= 0, flags 0 or 1, finite floats, a valid auto_pad, a permutation for
 * Transpose), so shape inference and the kernels never re-check them. Every
 * rejected value is a ROUSE_EFORMAT naming the node and the attribute; valid
 * ONNX that the engine does not implement (training mode, legacy axis
 * broadcasting) is ROUSE_EUNSUPPORTED. Unknown attributes are ignored.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/onnx/onnx.h"
#include "engine/op.h"

/* Attribute values above this are rejected: no real kernel, stride or pad is
 * that large, and the bound keeps shape arithmetic far from int64 overflow. */
#define ATTR_MAX_DIM ((int64_t)1 << 31)

/* The helpers below take an eng_attr_ctx (engine/op.h): what they need to
 * name the culprit in a message. */

static int attr_err(const eng_attr_ctx *c, int rc, const char *attr, const char *what)
{
    return rouse_err_set(c->eb, rc, "node '%s' (%s): attribute '%s' %s",
                         c->n->name ? c->n->name : "", eng_op_name(c->n->op), attr, what);
}

/* Looked up here rather than through the decoder so that attribute parsing
 * depends only on the onnx_node layout. The last occurrence wins, as in the
 * protobuf merge rules. */
static const onnx_attr *find_attr(const struct onnx_node *on, const char *name)
{
    const onnx_attr *found = NULL;
    for (int i = 0; i < on->n_attrs; i++)
        if (on->attrs[i].name && !strcmp(on->attrs[i].name, name)) found = &on->attrs[i];
    return found;
}

static const char *type_word(int type)
{
    switch (type) {
    case ONNX_ATTR_FLOAT:
        return "a float";
    case ONNX_ATTR_INT:
        return "an int";
    case ONNX_ATTR_STRING:
        return "a string";
    case ONNX_ATTR_INTS:
        return "a list of ints";
    case ONNX_ATTR_FLOATS:
        return "a list of floats";
    default:
        return "of another type";
    }
}

static int check_type(const eng_attr_ctx *c, const onnx_attr *a, int want)
{
    if (a->type == want) return 0;
    char what[96];
    snprintf(what, sizeof(what), "must be %s", type_word(want));
    return attr_err(c, ROUSE_EFORMAT, a->name, what);
}

/* *out keeps `def` when the attribute is absent. */
static int get_int(const eng_attr_ctx *c, const char *name, int64_t def, int64_t *out)
{
    const onnx_attr *a = find_attr(c->on, name);
    *out = def;
    if (!a) return 0;
    int rc = check_type(c, a, ONNX_ATTR_INT);
    if (rc < 0) return rc;
    *out = a->i;
    return 0;
}

/* A 0/1 flag; anything else is a malformed model, not "true". */
static int get_flag(const eng_attr_ctx *c, const char *name, int def, int *out)
{
    int64_t v;
    int rc = get_int(c, name, def, &v);
    if (rc < 0) return rc;
    if (v != 0 && v != 1) {
        char what[96];
        snprintf(what, sizeof(what), "must be 0 or 1, got %lld", (long long)v);
        return attr_err(c, ROUSE_EFORMAT, name, what);
    }
    *out = (int)v;
    return 0;
}

static int get_float(const eng_attr_ctx *c, const char *name, float def, float *out)
{
    const onnx_attr *a = find_attr(c->on, name);
    *out = def;
    if (!a) return 0;
    int rc = check_type(c, a, ONNX_ATTR_FLOAT);
    if (rc < 0) return rc;
    if (isnan(a->f)) return attr_err(c, ROUSE_EFORMAT, name, "is NaN");
    *out = a->f;
    return 0;
}

/* A finite float, for values that feed arithmetic (alpha, epsilon). */
static int get_finite(const eng_attr_ctx *c, const char *name, float def, float *out)
{
    int rc = get_float(c, name, def, out);
    if (rc < 0) return rc;
    if (!isfinite(*out)) return attr_err(c, ROUSE_EFORMAT, name, "must be finite");
    return 0;
}

/* An INTS attribute with at most `max` values; *count is -1 when absent. */
static int get_ints(const eng_attr_ctx *c, const char *name, int max, int *count, int64_t *vals)
{
    const onnx_attr *a = find_attr(c->on, name);
    *count = -1;
    if (!a) return 0;
    int rc = check_type(c, a, ONNX_ATTR_INTS);
    if (rc < 0) return rc;
    if (a->n_ints < 0 || a->n_ints > max || (a->n_ints && !a->ints)) {
        char what[96];
        snprintf(what, sizeof(what), "has %d values, at most %d are supported", a->n_ints, max);
        return attr_err(c, ROUSE_EUNSUPPORTED, name, what);
    }
    for (int i = 0; i < a->n_ints; i++)
        vals[i] = a->ints[i];
    *count = a->n_ints;
    return 0;
}

static int get_auto_pad(const eng_attr_ctx *c, int *out)
{
    static const struct {
        const char *s;
        int v;
    } names[] = {
        {"NOTSET", ENG_AUTOPAD_NOTSET},
        {"SAME_UPPER", ENG_AUTOPAD_SAME_UPPER},
        {"SAME_LOWER", ENG_AUTOPAD_SAME_LOWER},
        {"VALID", ENG_AUTOPAD_VALID},
    };
    const onnx_attr *a = find_attr(c->on, "auto_pad");
    *out = ENG_AUTOPAD_NOTSET;
    if (!a) return 0;
    int rc = check_type(c, a, ONNX_ATTR_STRING);
    if (rc < 0) return rc;
    const char *s = a->s ? a->s : "";
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].s) == a->s_len && !memcmp(names[i].s, s, a->s_len)) {
            *out = names[i].v;
            return 0;
        }
    }
    char what[160];
    snprintf(what, sizeof(what), "has unknown value '%.100s'", s);
    return attr_err(c, ROUSE_EFORMAT, "auto_pad", what);
}

/* Geometry shared by Conv and the pools. Unset fields keep their defaults
 * (stride 1, dilation 1, pad 0) for all ENG_MAX_SPATIAL dims, so a kernel
 * that learns n_spatial later finds them ready. */
struct window {
    int *n_spatial;
    int64_t *kernel, *stride, *dilation, *pad_begin, *pad_end;
};

/* Settles n_spatial from the first list that gives it and checks that the
 * others agree; `expect_mul` is 2 for pads ([begin..., end...]). */
static int agree_count(const eng_attr_ctx *c, const char *name, int count, int expect_mul,
                       int *n_spatial)
{
    if (count < 0) return 0;
    if (count % expect_mul) {
        char what[96];
        snprintf(what, sizeof(what), "must have an even number of values, got %d", count);
        return attr_err(c, ROUSE_EFORMAT, name, what);
    }
    int n = count / expect_mul;
    if (n == 0) {
        return attr_err(c, ROUSE_EFORMAT, name, "must not be empty");
    }
    if (*n_spatial == 0) {
        if (n > ENG_MAX_SPATIAL) {
            char what[128];
            snprintf(what, sizeof(what), "has %d spatial dimensions, at most %d are supported", n,
                     ENG_MAX_SPATIAL);
            return attr_err(c, ROUSE_EUNSUPPORTED, name, what);
        }
        *n_spatial = n;
        return 0;
    }
    if (n != *n_spatial) {
        char what[96];
        snprintf(what, sizeof(what), "must have %d values, got %d", *n_spatial * expect_mul, count);
        return attr_err(c, ROUSE_EFORMAT, name, what);
    }
    return 0;
}

static int check_range(const eng_attr_ctx *c, const char *name, const int64_t *v, int count,
                       int64_t lo)
{
    for (int i = 0; i < count; i++) {
        if (v[i] < lo || v[i] > ATTR_MAX_DIM) {
            char what[128];
            snprintf(what, sizeof(what), "has invalid value %lld at index %d (must be %s)",
                     (long long)v[i], i, lo > 0 ? ">= 1" : ">= 0");
            return attr_err(c, ROUSE_EFORMAT, name, what);
        }
    }
    return 0;
}

static int parse_window(const eng_attr_ctx *c, const struct window *w, bool need_kernel,
                        bool has_dilations)
{
    /* Room for more values than any supported window, so that a wrong count
     * is reported as such rather than as a generic limit. */
    enum { MAXV = 2 * ENG_MAX_RANK };
    int64_t k[MAXV], s[MAXV], d[MAXV], p[MAXV];
    int nk, ns, nd = -1, np, rc;

    if ((rc = get_ints(c, "kernel_shape", MAXV, &nk, k)) < 0) return rc;
    if ((rc = get_ints(c, "strides", MAXV, &ns, s)) < 0) return rc;
    if (has_dilations && (rc = get_ints(c, "dilations", MAXV, &nd, d)) < 0) return rc;
    if ((rc = get_ints(c, "pads", MAXV, &np, p)) < 0) return rc;

    if (need_kernel && nk < 0) return attr_err(c, ROUSE_EFORMAT, "kernel_shape", "is required");
    *w->n_spatial = 0;
    if ((rc = agree_count(c, "kernel_shape", nk, 1, w->n_spatial)) < 0) return rc;
    if ((rc = agree_count(c, "strides", ns, 1, w->n_spatial)) < 0) return rc;
    if ((rc = agree_count(c, "dilations", nd, 1, w->n_spatial)) < 0) return rc;
    if ((rc = agree_count(c, "pads", np, 2, w->n_spatial)) < 0) return rc;

    if ((rc = check_range(c, "kernel_shape", k, nk, 1)) < 0) return rc;
    if ((rc = check_range(c, "strides", s, ns, 1)) < 0) return rc;
    if ((rc = check_range(c, "dilations", d, nd, 1)) < 0) return rc;
    if ((rc = check_range(c, "pads", p, np, 0)) < 0) return rc;

    int n = *w->n_spatial;
    for (int i = 0; i < ENG_MAX_SPATIAL; i++) {
        w->kernel[i] = nk > 0 && i < n ? k[i] : 0;
        w->stride[i] = ns > 0 && i < n ? s[i] : 1;
        w->dilation[i] = nd > 0 && i < n ? d[i] : 1;
        w->pad_begin[i] = np > 0 && i < n ? p[i] : 0;
        w->pad_end[i] = np > 0 && i < n ? p[n + i] : 0;
    }
    return 0;
}

static int parse_conv(const eng_attr_ctx *c, eng_conv_attrs *a)
{
    struct window w = {&a->n_spatial, a->kernel, a->stride, a->dilation, a->pad_begin, a->pad_end};
    int rc;
    if ((rc = parse_window(c, &w, false, true)) < 0) return rc;
    if ((rc = get_int(c, "group", 1, &a->group)) < 0) return rc;
    if (a->group < 1 || a->group > ATTR_MAX_DIM) {
        char what[96];
        snprintf(what, sizeof(what), "must be >= 1, got %lld", (long long)a->group);
        return attr_err(c, ROUSE_EFORMAT, "group", what);
    }
    return get_auto_pad(c, &a->auto_pad);
}

static int parse_pool(const eng_attr_ctx *c, eng_pool_attrs *a)
{
    bool max = c->n->op == ENG_OP_MAXPOOL;
    int opset = c->n->opset;
    struct window w = {&a->n_spatial, a->kernel, a->stride, a->dilation, a->pad_begin, a->pad_end};
    int rc;
    /* Dilations arrived in MaxPool-10 and only in AveragePool-19, which is
     * past the opsets we accept. */
    if ((rc = parse_window(c, &w, true, max && opset >= 10)) < 0) return rc;
    if ((rc = get_auto_pad(c, &a->auto_pad)) < 0) return rc;
    if (opset >= 10 && (rc = get_flag(c, "ceil_mode", 0, &a->ceil_mode)) < 0) return rc;
    if (!max && opset >= 7 && (rc = get_flag(c, "count_include_pad", 0, &a->count_include_pad)) < 0)
        return rc;
    if (max && opset >= 8 && (rc = get_flag(c, "storage_order", 0, &a->storage_order)) < 0)
        return rc;
    return 0;
}

static int parse_gemm(const eng_attr_ctx *c, eng_gemm_attrs *a)
{
    int rc;
    if ((rc = get_flag(c, "transA", 0, &a->trans_a)) < 0) return rc;
    if ((rc = get_flag(c, "transB", 0, &a->trans_b)) < 0) return rc;
    if ((rc = get_finite(c, "alpha", 1.0f, &a->alpha)) < 0) return rc;
    return get_finite(c, "beta", 1.0f, &a->beta);
}

static int parse_clip(const eng_attr_ctx *c, eng_clip_attrs *a)
{
    a->min = -INFINITY;
    a->max = INFINITY;
    a->has_min = a->has_max = false;
    if (c->n->opset >= 11) return 0; /* bounds are inputs, resolved by shape inference */
    float lo, hi;
    int rc;
    if ((rc = get_float(c, "min", -FLT_MAX, &lo)) < 0) return rc;
    if ((rc = get_float(c, "max", FLT_MAX, &hi)) < 0) return rc;
    a->min = lo;
    a->max = hi;
    a->has_min = a->has_max = true;
    return 0;
}

static int parse_axis(const eng_attr_ctx *c, eng_axis_attrs *a)
{
    int opset = c->n->opset;
    a->legacy = false;
    switch (c->n->op) {
    case ENG_OP_SOFTMAX:
        a->legacy = opset < 13;
        return get_int(c, "axis", opset < 13 ? 1 : -1, &a->axis);
    case ENG_OP_FLATTEN:
        return get_int(c, "axis", 1, &a->axis);
    case ENG_OP_GATHER:
        return get_int(c, "axis", 0, &a->axis);
    case ENG_OP_CONCAT:
        /* Concat-1 defaulted to axis 1; from opset 4 the axis is required. */
        if (opset < 4) return get_int(c, "axis", 1, &a->axis);
        if (!find_attr(c->on, "axis")) return attr_err(c, ROUSE_EFORMAT, "axis", "is required");
        return get_int(c, "axis", 0, &a->axis);
    default:
        return 0;
    }
}

static int parse_transpose(const eng_attr_ctx *c, eng_transpose_attrs *a)
{
    int64_t perm[ENG_MAX_RANK];
    int n, rc;
    if ((rc = get_ints(c, "perm", ENG_MAX_RANK, &n, perm)) < 0) return rc;
    a->n_perm = n < 0 ? 0 : n;
    bool seen[ENG_MAX_RANK] = {false};
    for (int i = 0; i < a->n_perm; i++) {
        if (perm[i] < 0 || perm[i] >= a->n_perm || seen[perm[i]])
            return attr_err(c, ROUSE_EFORMAT, "perm", "is not a permutation");
        seen[perm[i]] = true;
        a->perm[i] = perm[i];
    }
    return 0;
}

static int parse_batchnorm(const eng_attr_ctx *c, eng_bn_attrs *a)
{
    int opset = c->n->opset;
    int64_t v;
    int rc;
    if ((rc = get_finite(c, "epsilon", 1e-5f, &a->epsilon)) < 0) return rc;
    if (a->epsilon < 0) return attr_err(c, ROUSE_EFORMAT, "epsilon", "must not be negative");
    if (opset >= 14) {
        if ((rc = get_int(c, "training_mode", 0, &v)) < 0) return rc;
        if (v != 0) return attr_err(c, ROUSE_EUNSUPPORTED, "training_mode", "= 1 is not supported");
    }
    /* spatial = 0 (opsets 6..8) means per-activation statistics of shape
     * [C, D1...], which the kernels do not implement. */
    if (opset < 9) {
        if ((rc = get_int(c, "spatial", 1, &v)) < 0) return rc;
        if (v == 0) return attr_err(c, ROUSE_EUNSUPPORTED, "spatial", "= 0 is not supported");
    }
    return 0;
}

static int parse_dropout(const eng_attr_ctx *c, eng_dropout_attrs *a)
{
    int rc;
    a->ratio = 0.5f;
    if (c->n->opset >= 12) return 0;
    if ((rc = get_finite(c, "ratio", 0.5f, &a->ratio)) < 0) return rc;
    if (a->ratio < 0 || a->ratio >= 1)
        return attr_err(c, ROUSE_EFORMAT, "ratio", "must be in [0, 1)");
    return 0;
}

/* Cast's target: the element types the Cast kernel converts between. */
static int parse_cast(const eng_attr_ctx *c, eng_cast_attrs *a)
{
    int64_t to;
    int rc;
    if (!find_attr(c->on, "to")) return attr_err(c, ROUSE_EFORMAT, "to", "is required");
    if ((rc = get_int(c, "to", 0, &to)) < 0) return rc;
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
        a->to = (int)to;
        return 0;
    case ENG_DT_STRING:
    case ENG_DT_COMPLEX64:
    case ENG_DT_COMPLEX128: {
        char what[96];
        snprintf(what, sizeof(what), "= %s is not supported", eng_dtype_name((int)to));
        return attr_err(c, ROUSE_EUNSUPPORTED, "to", what);
    }
    default: {
        char what[96];
        snprintf(what, sizeof(what), "has unknown element type %lld", (long long)to);
        return attr_err(c, ROUSE_EFORMAT, "to", what);
    }
    }
}

/* ReduceMean, Unsqueeze and Squeeze. Range and duplicate checks need the
 * input rank and happen in shape inference. */
static int parse_axes(const eng_attr_ctx *c, eng_axes_attrs *a)
{
    int opset = c->n->opset, rc;
    a->n_axes = -1;
    a->keepdims = 1;
    switch (c->n->op) {
    case ENG_OP_REDUCE_MEAN:
        if ((rc = get_ints(c, "axes", ENG_MAX_RANK, &a->n_axes, a->axes)) < 0) return rc;
        return get_flag(c, "keepdims", 1, &a->keepdims);
    case ENG_OP_UNSQUEEZE:
        if (opset >= 13) return 0; /* axes are input 1 */
        if ((rc = get_ints(c, "axes", ENG_MAX_RANK, &a->n_axes, a->axes)) < 0) return rc;
        if (a->n_axes < 0) return attr_err(c, ROUSE_EFORMAT, "axes", "is required");
        if (a->n_axes == 0) return attr_err(c, ROUSE_EFORMAT, "axes", "must not be empty");
        break;
    case ENG_OP_SQUEEZE:
        if (opset >= 13) return 0;
        if ((rc = get_ints(c, "axes", ENG_MAX_RANK, &a->n_axes, a->axes)) < 0) return rc;
        break;
    default:
        return 0;
    }
    /* Negative axes arrived in opset 11. */
    for (int i = 0; opset < 11 && i < a->n_axes; i++)
        if (a->axes[i] < 0)
            return attr_err(c, ROUSE_EFORMAT, "axes", "must not be negative before opset 11");
    return 0;
}

/* Before opset 7 the binary ops broadcast only when asked, and `axis` aligned
 * B at an arbitrary dimension of A. Without `axis` the alignment is the
 * trailing one, which numpy broadcasting reproduces; with it, the result can
 * differ, so we refuse rather than compute something else. */
static int parse_legacy_binary(const eng_attr_ctx *c)
{
    if (c->n->opset >= 7) return 0;
    int64_t bcast;
    int rc;
    if ((rc = get_int(c, "broadcast", 0, &bcast)) < 0) return rc;
    if (bcast && find_attr(c->on, "axis"))
        return attr_err(c, ROUSE_EUNSUPPORTED, "axis",
                        "(legacy broadcasting along an axis) is not supported");
    return 0;
}

/* --- the attribute API of the op descriptors (engine/op.h) --------------- */

const onnx_attr *eng_attr_find(const eng_attr_ctx *c, const char *name)
{
    return find_attr(c->on, name);
}

int eng_attr_err(const eng_attr_ctx *c, int rc, const char *name, const char *what)
{
    return attr_err(c, rc, name, what);
}

int eng_attr_int(const eng_attr_ctx *c, const char *name, int64_t def, int64_t *out)
{
    return get_int(c, name, def, out);
}

int eng_attr_flag(const eng_attr_ctx *c, const char *name, int def, int *out)
{
    return get_flag(c, name, def, out);
}

int eng_attr_float(const eng_attr_ctx *c, const char *name, float def, float *out)
{
    return get_float(c, name, def, out);
}

int eng_attr_finite(const eng_attr_ctx *c, const char *name, float def, float *out)
{
    return get_finite(c, name, def, out);
}

int eng_attr_ints(const eng_attr_ctx *c, const char *name, int max, int *count, int64_t *vals)
{
    return get_ints(c, name, max, count, vals);
}

int eng_attr_floats(const eng_attr_ctx *c, const char *name, int max, int *count, float *vals)
{
    const onnx_attr *a = find_attr(c->on, name);
    *count = -1;
    if (!a) return 0;
    int rc = check_type(c, a, ONNX_ATTR_FLOATS);
    if (rc < 0) return rc;
    if (a->n_floats < 0 || a->n_floats > max || (a->n_floats && !a->floats)) {
        char what[96];
        snprintf(what, sizeof(what), "has %d values, at most %d are supported", a->n_floats, max);
        return attr_err(c, ROUSE_EUNSUPPORTED, name, what);
    }
    for (int i = 0; i < a->n_floats; i++) {
        if (isnan(a->floats[i])) return attr_err(c, ROUSE_EFORMAT, name, "holds NaN");
        vals[i] = a->floats[i];
    }
    *count = a->n_floats;
    return 0;
}

int eng_attr_choice(const eng_attr_ctx *c, const char *name, const char *const *choices, int def,
                    int *out)
{
    const onnx_attr *a = find_attr(c->on, name);
    *out = def;
    if (!a) return 0;
    int rc = check_type(c, a, ONNX_ATTR_STRING);
    if (rc < 0) return rc;
    const char *s = a->s ? a->s : "";
    for (int i = 0; choices[i]; i++) {
        if (strlen(choices[i]) == a->s_len && !memcmp(choices[i], s, a->s_len)) {
            *out = i;
            return 0;
        }
    }
    char what[160];
    snprintf(what, sizeof(what), "has unknown value '%.100s'", s);
    return attr_err(c, ROUSE_EFORMAT, name, what);
}

int eng_attr_tensor(const eng_attr_ctx *c, const char *name, const onnx_tensor **out)
{
    const onnx_attr *a = find_attr(c->on, name);
    *out = NULL;
    if (!a) return 0;
    int rc = check_type(c, a, ONNX_ATTR_TENSOR);
    if (rc < 0) return rc;
    if (!a->t) return attr_err(c, ROUSE_EFORMAT, name, "has no tensor");
    *out = a->t;
    return 0;
}

int eng_attrs_parse(const struct onnx_node *on, eng_node *n, rouse_arena *arena, rouse_errbuf *eb)
{
    (void)arena; /* every attribute fits in eng_attrs */
    eng_attr_ctx c = {on, n, eb};
    eng_attrs *a = &n->attrs;
    memset(a, 0, sizeof(*a));

    const eng_op_desc *d = eng_op_desc_get(n->op);
    if (d) {
        int rc = 0;
        if (d->parse) rc = d->parse(&c, a);
        if (rc == 0 && d->check) rc = d->check(n, eb);
        return rc;
    }

    switch (n->op) {
    case ENG_OP_CONV:
        return parse_conv(&c, &a->conv);
    case ENG_OP_MAXPOOL:
    case ENG_OP_AVGPOOL:
        return parse_pool(&c, &a->pool);
    case ENG_OP_GEMM:
        return parse_gemm(&c, &a->gemm);
    case ENG_OP_CLIP:
        return parse_clip(&c, &a->clip);
    case ENG_OP_LEAKY_RELU:
        return get_finite(&c, "alpha", 0.01f, &a->alpha.alpha);
    case ENG_OP_SOFTMAX:
    case ENG_OP_FLATTEN:
    case ENG_OP_CONCAT:
    case ENG_OP_GATHER:
        return parse_axis(&c, &a->axis);
    case ENG_OP_CAST:
        return parse_cast(&c, &a->cast);
    case ENG_OP_REDUCE_MEAN:
    case ENG_OP_UNSQUEEZE:
    case ENG_OP_SQUEEZE:
        return parse_axes(&c, &a->axes);
    case ENG_OP_TRANSPOSE:
        return parse_transpose(&c, &a->transpose);
    case ENG_OP_BATCHNORM:
        return parse_batchnorm(&c, &a->bn);
    case ENG_OP_RESHAPE:
        if (n->opset >= 14) return get_flag(&c, "allowzero", 0, &a->reshape.allowzero);
        return 0;
    case ENG_OP_DROPOUT:
        return parse_dropout(&c, &a->dropout);
    case ENG_OP_ADD:
    case ENG_OP_SUB:
    case ENG_OP_MUL:
    case ENG_OP_DIV:
        return parse_legacy_binary(&c);
    case ENG_OP_MATMUL:
    case ENG_OP_RELU:
    case ENG_OP_SIGMOID:
    case ENG_OP_TANH:
    case ENG_OP_GLOBAL_AVGPOOL:
    case ENG_OP_IDENTITY:
    case ENG_OP_ERF:
    case ENG_OP_POW:
    case ENG_OP_SQRT:
    case ENG_OP_WHERE:
    case ENG_OP_CONSTANT: /* the graph builder reads its value itself */
        return 0;
    default:
        return rouse_err_set(eb, ROUSE_EINVAL, "node '%s': unknown operator number %d",
                             n->name ? n->name : "", (int)n->op);
    }
}
