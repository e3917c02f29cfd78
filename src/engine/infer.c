/*
 * Concrete shape and type inference for one node, with the ONNX rules.
 *
 * Given the actual shapes (and, where an op needs them, the values) of a
 * node's inputs, computes the dtype and shape of each output and the
 * "resolved" attributes the kernels run with: auto_pad turned into explicit
 * pads, Conv's kernel taken from the weight, Clip's bounds and Dropout's
 * ratio read from constant inputs, Transpose's default permutation spelled
 * out, Unsqueeze/Squeeze axes read from their input (opset >= 13), and
 * axes normalized to 0..rank-1 (lists of axes also sorted).
 *
 * Guarantees: on success every output shape has a dense byte size that fits
 * in int64, every input a kernel reads has the shape and element type the
 * kernel expects, and the resolved pads reproduce the output shape with the
 * plain (floor) window formula, except that pools in ceil mode keep
 * ceil_mode set. Errors name the node, its op and the input at fault:
 * ROUSE_EMISMATCH for shapes and types that disagree, ROUSE_EUNSUPPORTED for
 * element types or features the engine lacks, ROUSE_EFORMAT for a node
 * whose input or output count the op does not allow.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/op.h"

#define DT(x) (1u << ENG_DT_##x)
#define DT_FLOATS (DT(FLOAT) | DT(DOUBLE))
#define DT_INTS                                                                                    \
    (DT(INT8) | DT(UINT8) | DT(INT16) | DT(UINT16) | DT(INT32) | DT(UINT32) | DT(INT64) |          \
     DT(UINT64))
#define DT_ANY (DT_FLOATS | DT_INTS | DT(BOOL) | DT(FLOAT16) | DT(BFLOAT16))

#define MAX_IN_NAMES 5

/* What each op accepts: input/output counts (max_in -1 = variadic), the
 * ONNX names of its inputs for messages, and the element types of input 0
 * the kernels implement. Opset-dependent limits are applied in arity(). */
struct op_info {
    int min_in, max_in, max_out;
    const char *in_names[MAX_IN_NAMES];
    unsigned dtypes;
};

static const struct op_info op_infos[ENG_OP_COUNT] = {
    [ENG_OP_CONV] = {2, 3, 1, {"X", "W", "B"}, DT(FLOAT)},
    [ENG_OP_GEMM] = {2, 3, 1, {"A", "B", "C"}, DT(FLOAT)},
    [ENG_OP_MATMUL] =
        {2, 2, 1, {"A", "B"}, DT_FLOATS | DT(INT32) | DT(INT64) | DT(UINT32) | DT(UINT64)},
    [ENG_OP_RELU] = {1, 1, 1, {"X"}, DT_FLOATS},
    [ENG_OP_CLIP] = {1, 3, 1, {"input", "min", "max"}, DT_FLOATS | DT_INTS},
    [ENG_OP_LEAKY_RELU] = {1, 1, 1, {"X"}, DT_FLOATS},
    [ENG_OP_SIGMOID] = {1, 1, 1, {"X"}, DT_FLOATS},
    [ENG_OP_TANH] = {1, 1, 1, {"X"}, DT_FLOATS},
    [ENG_OP_ADD] = {2, 2, 1, {"A", "B"}, DT_FLOATS | DT_INTS},
    [ENG_OP_SUB] = {2, 2, 1, {"A", "B"}, DT_FLOATS | DT_INTS},
    [ENG_OP_MUL] = {2, 2, 1, {"A", "B"}, DT_FLOATS | DT_INTS},
    [ENG_OP_DIV] = {2, 2, 1, {"A", "B"}, DT_FLOATS | DT_INTS},
    [ENG_OP_MAXPOOL] = {1, 1, 2, {"X"}, DT_FLOATS | DT(INT8) | DT(UINT8)},
    [ENG_OP_AVGPOOL] = {1, 1, 1, {"X"}, DT(FLOAT)},
    [ENG_OP_GLOBAL_AVGPOOL] = {1, 1, 1, {"X"}, DT(FLOAT)},
    [ENG_OP_FLATTEN] = {1, 1, 1, {"input"}, DT_ANY},
    [ENG_OP_RESHAPE] = {2, 2, 1, {"data", "shape"}, DT_ANY},
    [ENG_OP_TRANSPOSE] = {1, 1, 1, {"data"}, DT_ANY},
    [ENG_OP_CONCAT] = {1, -1, 1, {NULL}, DT_ANY},
    [ENG_OP_BATCHNORM] = {5, 5, 5, {"X", "scale", "B", "input_mean", "input_var"}, DT(FLOAT)},
    [ENG_OP_SOFTMAX] = {1, 1, 1, {"input"}, DT(FLOAT)},
    [ENG_OP_IDENTITY] = {1, 1, 1, {"input"}, DT_ANY},
    /* Dropout is a copy in inference, whatever the element type. */
    [ENG_OP_DROPOUT] = {1, 3, 2, {"data", "ratio", "training_mode"}, DT_ANY},
    [ENG_OP_CONSTANT] = {0, 0, 1, {NULL}, 0},
    [ENG_OP_CAST] = {1, 1, 1, {"input"}, DT_ANY},
    [ENG_OP_ERF] = {1, 1, 1, {"input"}, DT_FLOATS},
    [ENG_OP_GATHER] = {2, 2, 1, {"data", "indices"}, DT_ANY},
    [ENG_OP_POW] = {2, 2, 1, {"X", "Y"}, DT_FLOATS | DT(INT32) | DT(INT64)},
    [ENG_OP_REDUCE_MEAN] = {1, 1, 1, {"data"}, DT_FLOATS},
    [ENG_OP_SQRT] = {1, 1, 1, {"X"}, DT_FLOATS},
    [ENG_OP_UNSQUEEZE] = {1, 2, 1, {"data", "axes"}, DT_ANY},
    [ENG_OP_SQUEEZE] = {1, 2, 1, {"data", "axes"}, DT_ANY},
    /* Where's X and Y may have any type; input 0 is the bool condition. */
    [ENG_OP_WHERE] = {3, 3, 1, {"condition", "X", "Y"}, DT(BOOL)},
    [ENG_OP_LAYERNORM] = {1, 3, 1, {"X", "scale", "bias"}, DT(FLOAT)},
    [ENG_OP_GELU] = {1, 1, 1, {"X"}, DT(FLOAT)},
};

/* Helpers take the eng_infer_ctx of engine/op.h; its `names` are scratch
 * for in_name() of variadic inputs. */

static int fail(eng_infer_ctx *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(eng_infer_ctx *c, int rc, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rouse_err_set(c->eb, rc, "node '%s' (%s): %s", c->n->name ? c->n->name : "",
                         eng_op_name(c->n->op), msg);
}

/* The ONNX name of input i ("X", "W"...); for Concat "inputs[i]". Two
 * scratch slots let one message name two inputs. */
static const char *in_name(eng_infer_ctx *c, int i)
{
    const eng_op_desc *d = eng_op_desc_get(c->n->op);
    if (d) {
        if (i < ENG_OP_MAX_IN_NAMES && d->in_names[i]) return d->in_names[i];
    } else {
        const struct op_info *oi = &op_infos[c->n->op];
        if (i < MAX_IN_NAMES && oi->in_names[i]) return oi->in_names[i];
    }
    char *buf = c->names[c->next_name];
    c->next_name ^= 1;
    snprintf(buf, sizeof(c->names[0]), "inputs[%d]", i);
    return buf;
}

static const eng_tensor *input(const eng_infer_ctx *c, int i)
{
    return i < c->n->n_in ? c->in[i] : NULL;
}

static bool want_out(const eng_infer_ctx *c, int i)
{
    return i < c->n->n_out && c->n->out && c->n->out[i] >= 0;
}

static void set_out(eng_infer_ctx *c, int i, int dtype, int rank, const int64_t *shape)
{
    if (!want_out(c, i)) return;
    eng_tensor *o = &c->out[i];
    o->dtype = dtype;
    o->rank = rank;
    for (int d = 0; d < ENG_MAX_RANK; d++)
        o->shape[d] = d < rank ? shape[d] : 0;
}

/* Shape text for messages; `slot` picks one of two buffers per call site. */
struct shapebuf {
    char s[2][160];
};

static const char *shp(struct shapebuf *b, int slot, int rank, const int64_t *shape)
{
    return eng_shape_str(rank, shape, b->s[slot], sizeof(b->s[slot]));
}

/* Normalizes an axis in [-r, r-1] (or [-r, r] when `inclusive`). */
static int norm_axis(eng_infer_ctx *c, int64_t axis, int rank, bool inclusive, int64_t *out)
{
    int64_t hi = inclusive ? rank : rank - 1;
    if (axis < -(int64_t)rank || axis > hi)
        return fail(c, ROUSE_EMISMATCH, "axis %lld is out of range for input '%s' of rank %d",
                    (long long)axis, in_name(c, 0), rank);
    *out = axis < 0 ? axis + rank : axis;
    return 0;
}

static int check_dtype(eng_infer_ctx *c, int i)
{
    int dt = c->in[i]->dtype;
    if (dt > 0 && dt < 32 && (op_infos[c->n->op].dtypes & (1u << dt))) return 0;
    return fail(c, ROUSE_EUNSUPPORTED, "element type %s of input '%s' is not supported",
                eng_dtype_name(dt), in_name(c, i));
}

/* Inputs that share the type variable T of input 0 must have its type. */
static int same_dtype(eng_infer_ctx *c, int i, int j)
{
    if (c->in[i]->dtype == c->in[j]->dtype) return 0;
    const char *a = in_name(c, i);
    const char *b = in_name(c, j);
    return fail(c, ROUSE_EMISMATCH, "input '%s' is %s, input '%s' is %s", a,
                eng_dtype_name(c->in[i]->dtype), b, eng_dtype_name(c->in[j]->dtype));
}

/* Input and output counts, required inputs present, and input shapes that
 * are concrete and sized. */
static int arity(eng_infer_ctx *c)
{
    const eng_node *n = c->n;
    const struct op_info *oi = &op_infos[n->op];
    int max_in = oi->max_in, max_out = oi->max_out;
    int min_in = oi->min_in;
    const eng_op_desc *d = eng_op_desc_get(n->op);
    if (d) {
        min_in = d->min_in;
        max_in = d->max_in;
        max_out = d->max_out;
        if (d->counts) d->counts(n, &min_in, &max_in, &max_out);
    }

    if (n->op == ENG_OP_CLIP && n->opset < 11) max_in = 1;
    if (n->op == ENG_OP_MAXPOOL && n->opset < 8) max_out = 1;
    if (n->op == ENG_OP_DROPOUT && n->opset < 12) max_in = 1;
    if ((n->op == ENG_OP_UNSQUEEZE || n->op == ENG_OP_SQUEEZE) && n->opset < 13) max_in = 1;
    if (n->op == ENG_OP_UNSQUEEZE && n->opset >= 13) min_in = 2;

    if (n->n_in < min_in || (max_in >= 0 && n->n_in > max_in)) {
        if (max_in == min_in)
            return fail(c, ROUSE_EFORMAT, "expects %d input%s, got %d", max_in,
                        max_in == 1 ? "" : "s", n->n_in);
        if (max_in < 0)
            return fail(c, ROUSE_EFORMAT, "expects at least %d inputs, got %d", min_in, n->n_in);
        return fail(c, ROUSE_EFORMAT, "expects %d to %d inputs, got %d", min_in, max_in, n->n_in);
    }
    if (n->n_out < 1 || n->n_out > max_out) {
        if (max_out == 1) return fail(c, ROUSE_EFORMAT, "expects 1 output, got %d", n->n_out);
        return fail(c, ROUSE_EFORMAT, "expects 1 to %d outputs, got %d", max_out, n->n_out);
    }
    if (!want_out(c, 0)) return fail(c, ROUSE_EFORMAT, "output 0 is required");

    int required = n->op == ENG_OP_CONCAT || (d && max_in < 0) ? n->n_in : min_in;
    for (int i = 0; i < n->n_in; i++) {
        const eng_tensor *t = c->in[i];
        if (!t) {
            if (i < required)
                return fail(c, ROUSE_EFORMAT, "input '%s' is required", in_name(c, i));
            continue;
        }
        bool ok = t->rank >= 0 && t->rank <= ENG_MAX_RANK;
        for (int k = 0; ok && k < t->rank; k++)
            ok = t->shape[k] >= 0;
        if (!ok || eng_tensor_numel(t) < 0) {
            if (t->rank > ENG_MAX_RANK)
                return fail(c, ROUSE_EUNSUPPORTED,
                            "input '%s' has rank %d, at most %d is supported", in_name(c, i),
                            t->rank, ENG_MAX_RANK);
            return fail(c, ROUSE_EINVAL, "input '%s' has an invalid or too large shape",
                        in_name(c, i));
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Windows: Conv and the pools. */

struct window {
    int64_t kernel, stride, dilation;
    int64_t *pad_begin, *pad_end;
    int auto_pad;
    int ceil_mode;
};

/* Output size along one spatial dim, resolving auto_pad into explicit pads.
 * Kernel, stride, dilation and pads are <= 2^31 (attribute parsing bounds
 * them, weights cannot be that large in a dense tensor), so only the input
 * size needs overflow care. */
static int window_out(eng_infer_ctx *c, int dim, int64_t size, const struct window *w, int64_t *out)
{
    int64_t ext = (w->kernel - 1) * w->dilation + 1; /* dilated kernel extent */
    int64_t s = w->stride;

    if (w->auto_pad == ENG_AUTOPAD_SAME_UPPER || w->auto_pad == ENG_AUTOPAD_SAME_LOWER) {
        int64_t o = size / s + (size % s != 0);
        int64_t total = o > 0 ? (o - 1) * s + ext - size : 0;
        if (total < 0) total = 0;
        /* SAME_UPPER puts the odd pad at the end, SAME_LOWER at the start. */
        int64_t small = total / 2, big = total - total / 2;
        *w->pad_begin = w->auto_pad == ENG_AUTOPAD_SAME_UPPER ? small : big;
        *w->pad_end = w->auto_pad == ENG_AUTOPAD_SAME_UPPER ? big : small;
        *out = o;
        return 0;
    }
    if (w->auto_pad == ENG_AUTOPAD_VALID) *w->pad_begin = *w->pad_end = 0;

    int64_t padded;
    if (__builtin_add_overflow(size, *w->pad_begin + *w->pad_end, &padded))
        return fail(c, ROUSE_EINVAL, "spatial dim %d of input '%s' is too large", dim,
                    in_name(c, 0));
    if (padded < ext)
        return fail(c, ROUSE_EMISMATCH,
                    "input '%s' has size %lld (padded %lld) at spatial dim %d, smaller than the "
                    "kernel extent %lld",
                    in_name(c, 0), (long long)size, (long long)padded, dim, (long long)ext);
    int64_t span = padded - ext;
    int64_t o = span / s + 1;
    if (w->ceil_mode && w->auto_pad == ENG_AUTOPAD_NOTSET && span % s) {
        o++;
        /* The last window must start inside the input or the left padding
         * (the ONNX and PyTorch rule); otherwise it would cover only padding. */
        if ((o - 1) * s >= size + *w->pad_begin) o--;
    }
    *out = o;
    return 0;
}

static int infer_conv(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *w = c->in[1], *b = input(c, 2);
    eng_conv_attrs *a = &c->res->conv;
    struct shapebuf sb;
    int rc;

    if ((rc = check_dtype(c, 0)) < 0 || (rc = same_dtype(c, 1, 0)) < 0) return rc;
    if (b && (rc = same_dtype(c, 2, 0)) < 0) return rc;
    int r = x->rank, ns = r - 2;
    if (r < 3)
        return fail(c, ROUSE_EMISMATCH, "input 'X' must have rank >= 3 ([N, C, D...]), got %s",
                    shp(&sb, 0, r, x->shape));
    if (ns > ENG_MAX_SPATIAL)
        return fail(c, ROUSE_EUNSUPPORTED,
                    "input 'X' has %d spatial dims, at most %d are supported", ns, ENG_MAX_SPATIAL);
    if (a->n_spatial && a->n_spatial != ns)
        return fail(c, ROUSE_EMISMATCH, "attributes describe %d spatial dims, input 'X' %s has %d",
                    a->n_spatial, shp(&sb, 0, r, x->shape), ns);
    if (w->rank != r)
        return fail(c, ROUSE_EMISMATCH, "input 'W' %s has rank %d, input 'X' %s has rank %d",
                    shp(&sb, 0, w->rank, w->shape), w->rank, shp(&sb, 1, r, x->shape), r);
    for (int i = 0; i < ns; i++) {
        int64_t k = w->shape[2 + i];
        if (k < 1 || k > ((int64_t)1 << 31))
            return fail(c, ROUSE_EMISMATCH, "input 'W' %s has an invalid kernel size",
                        shp(&sb, 0, r, w->shape));
        if (a->kernel[i] && a->kernel[i] != k)
            return fail(c, ROUSE_EMISMATCH,
                        "attribute 'kernel_shape' disagrees with input 'W' %s at spatial dim %d "
                        "(%lld vs %lld)",
                        shp(&sb, 0, r, w->shape), i, (long long)a->kernel[i], (long long)k);
        a->kernel[i] = k;
    }
    a->n_spatial = ns;

    int64_t m = w->shape[0], per_group = w->shape[1], want_c;
    bool overflow = __builtin_mul_overflow(per_group, a->group, &want_c);
    if (overflow || x->shape[1] != want_c) {
        if (overflow)
            return fail(c, ROUSE_EMISMATCH,
                        "input 'X' has %lld channels, weight expects %lld per group x %lld groups",
                        (long long)x->shape[1], (long long)per_group, (long long)a->group);
        if (a->group > 1)
            return fail(c, ROUSE_EMISMATCH,
                        "input 'X' has %lld channels, weight expects %lld (%lld per group x %lld "
                        "groups)",
                        (long long)x->shape[1], (long long)want_c, (long long)per_group,
                        (long long)a->group);
        return fail(c, ROUSE_EMISMATCH, "input 'X' has %lld channels, weight expects %lld",
                    (long long)x->shape[1], (long long)per_group);
    }
    if (m % a->group)
        return fail(c, ROUSE_EMISMATCH,
                    "input 'W' has %lld output channels, not a multiple of group %lld",
                    (long long)m, (long long)a->group);
    if (b && (b->rank != 1 || b->shape[0] != m))
        return fail(c, ROUSE_EMISMATCH, "input 'B' has shape %s, expected [%lld]",
                    shp(&sb, 0, b->rank, b->shape), (long long)m);

    int64_t y[ENG_MAX_RANK] = {x->shape[0], m};
    for (int i = 0; i < ns; i++) {
        struct window win = {a->kernel[i],
                             a->stride[i],
                             a->dilation[i],
                             &a->pad_begin[i],
                             &a->pad_end[i],
                             a->auto_pad,
                             0};
        if ((rc = window_out(c, i, x->shape[2 + i], &win, &y[2 + i])) < 0) return rc;
    }
    a->auto_pad = ENG_AUTOPAD_NOTSET;
    set_out(c, 0, x->dtype, r, y);
    return 0;
}

static int infer_pool(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_pool_attrs *a = &c->res->pool;
    struct shapebuf sb;
    int rc;

    if ((rc = check_dtype(c, 0)) < 0) return rc;
    int r = x->rank, ns = r - 2;
    if (r < 3)
        return fail(c, ROUSE_EMISMATCH, "input 'X' must have rank >= 3 ([N, C, D...]), got %s",
                    shp(&sb, 0, r, x->shape));
    if (a->n_spatial != ns)
        return fail(c, ROUSE_EMISMATCH,
                    "attribute 'kernel_shape' has %d values, input 'X' %s has %d spatial dims",
                    a->n_spatial, shp(&sb, 0, r, x->shape), ns);

    int64_t y[ENG_MAX_RANK] = {x->shape[0], x->shape[1]};
    for (int i = 0; i < ns; i++) {
        struct window win = {a->kernel[i],   a->stride[i], a->dilation[i], &a->pad_begin[i],
                             &a->pad_end[i], a->auto_pad,  a->ceil_mode};
        if ((rc = window_out(c, i, x->shape[2 + i], &win, &y[2 + i])) < 0) return rc;
    }
    /* With auto_pad the output size ignores ceil_mode, and the resolved pads
     * give that size with the floor formula. */
    if (a->auto_pad != ENG_AUTOPAD_NOTSET) a->ceil_mode = 0;
    a->auto_pad = ENG_AUTOPAD_NOTSET;
    set_out(c, 0, x->dtype, r, y);
    set_out(c, 1, ENG_DT_INT64, r, y);
    return 0;
}

static int infer_global_pool(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    struct shapebuf sb;
    int rc;
    if ((rc = check_dtype(c, 0)) < 0) return rc;
    if (x->rank < 3)
        return fail(c, ROUSE_EMISMATCH, "input 'X' must have rank >= 3 ([N, C, D...]), got %s",
                    shp(&sb, 0, x->rank, x->shape));
    int64_t y[ENG_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        y[i] = i < 2 ? x->shape[i] : 1;
    set_out(c, 0, x->dtype, x->rank, y);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Matrix products and broadcasting. */

/* Numpy multidirectional broadcasting of two shapes. */
static bool broadcast(int ra, const int64_t *a, int rb, const int64_t *b, int *r, int64_t *y)
{
    int ry = ra > rb ? ra : rb;
    for (int i = 0; i < ry; i++) {
        int ia = i - (ry - ra), ib = i - (ry - rb);
        int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da == db || db == 1)
            y[i] = da;
        else if (da == 1)
            y[i] = db;
        else
            return false;
    }
    *r = ry;
    return true;
}

static int infer_gemm(eng_infer_ctx *c)
{
    const eng_tensor *A = c->in[0], *B = c->in[1], *C = input(c, 2);
    const eng_gemm_attrs *g = &c->res->gemm;
    struct shapebuf sb;
    int rc;

    if ((rc = check_dtype(c, 0)) < 0 || (rc = same_dtype(c, 1, 0)) < 0) return rc;
    if (C && (rc = same_dtype(c, 2, 0)) < 0) return rc;
    if (A->rank != 2)
        return fail(c, ROUSE_EMISMATCH, "input 'A' must be 2-D, got %s",
                    shp(&sb, 0, A->rank, A->shape));
    if (B->rank != 2)
        return fail(c, ROUSE_EMISMATCH, "input 'B' must be 2-D, got %s",
                    shp(&sb, 0, B->rank, B->shape));
    int64_t m = A->shape[g->trans_a ? 1 : 0], k = A->shape[g->trans_a ? 0 : 1];
    int64_t kb = B->shape[g->trans_b ? 1 : 0], nn = B->shape[g->trans_b ? 0 : 1];
    if (k != kb)
        return fail(c, ROUSE_EMISMATCH,
                    "input 'A' %s has inner dim %lld, input 'B' %s has %lld (transA=%d, transB=%d)",
                    shp(&sb, 0, 2, A->shape), (long long)k, shp(&sb, 1, 2, B->shape), (long long)kb,
                    g->trans_a, g->trans_b);
    int64_t y[2] = {m, nn};
    if (C) {
        /* Unidirectional: C must broadcast to Y without changing Y's shape. */
        bool ok = C->rank <= 2;
        for (int i = 0; ok && i < C->rank; i++) {
            int64_t d = C->shape[C->rank - 1 - i];
            ok = d == 1 || d == y[1 - i];
        }
        if (!ok)
            return fail(c, ROUSE_EMISMATCH, "input 'C' %s cannot be broadcast to %s",
                        shp(&sb, 0, C->rank, C->shape), shp(&sb, 1, 2, y));
    }
    set_out(c, 0, A->dtype, 2, y);
    return 0;
}

static int infer_matmul(eng_infer_ctx *c)
{
    const eng_tensor *A = c->in[0], *B = c->in[1];
    struct shapebuf sb;
    int rc;

    if ((rc = check_dtype(c, 0)) < 0 || (rc = same_dtype(c, 1, 0)) < 0) return rc;
    if (A->rank < 1 || B->rank < 1)
        return fail(c, ROUSE_EMISMATCH, "input '%s' is a scalar; MatMul needs rank >= 1",
                    A->rank < 1 ? "A" : "B");
    /* 1-D operands are promoted to matrices ([K] -> [1, K] for A, [K, 1]
     * for B) and the added dim is removed from the result. */
    int64_t k = A->shape[A->rank - 1];
    int64_t kb = B->rank == 1 ? B->shape[0] : B->shape[B->rank - 2];
    if (k != kb)
        return fail(c, ROUSE_EMISMATCH,
                    "input 'A' %s and input 'B' %s have inner dims %lld and %lld",
                    shp(&sb, 0, A->rank, A->shape), shp(&sb, 1, B->rank, B->shape), (long long)k,
                    (long long)kb);
    int ra = A->rank > 2 ? A->rank - 2 : 0, rb = B->rank > 2 ? B->rank - 2 : 0, r;
    int64_t y[ENG_MAX_RANK];
    if (!broadcast(ra, A->shape, rb, B->shape, &r, y))
        return fail(c, ROUSE_EMISMATCH,
                    "input 'A' %s and input 'B' %s have batch dims that cannot be broadcast",
                    shp(&sb, 0, A->rank, A->shape), shp(&sb, 1, B->rank, B->shape));
    if (A->rank > 1) y[r++] = A->shape[A->rank - 2];
    if (B->rank > 1) y[r++] = B->shape[B->rank - 1];
    set_out(c, 0, A->dtype, r, y);
    return 0;
}

static int infer_binary(eng_infer_ctx *c)
{
    const eng_tensor *A = c->in[0], *B = c->in[1];
    struct shapebuf sb;
    int rc, r;
    int64_t y[ENG_MAX_RANK];

    if ((rc = check_dtype(c, 0)) < 0 || (rc = same_dtype(c, 1, 0)) < 0) return rc;
    if (!broadcast(A->rank, A->shape, B->rank, B->shape, &r, y))
        return fail(c, ROUSE_EMISMATCH, "input 'A' %s and input 'B' %s cannot be broadcast",
                    shp(&sb, 0, A->rank, A->shape), shp(&sb, 1, B->rank, B->shape));
    set_out(c, 0, A->dtype, r, y);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Element-wise and shape ops. */

/* A one-element tensor's value as a double; false for types we cannot read. */
static bool read_scalar(const eng_tensor *t, double *v)
{
    union {
        float f;
        double d;
        int8_t i8;
        uint8_t u8;
        int16_t i16;
        uint16_t u16;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        uint64_t u64;
    } u;
    size_t es = eng_dtype_size(t->dtype);
    if (!t->data || !es || es > sizeof(u)) return false;
    memcpy(&u, t->data, es); /* may be unaligned */
    switch (t->dtype) {
    case ENG_DT_FLOAT:
        *v = u.f;
        return true;
    case ENG_DT_DOUBLE:
        *v = u.d;
        return true;
    case ENG_DT_INT8:
        *v = u.i8;
        return true;
    case ENG_DT_UINT8:
        *v = u.u8;
        return true;
    case ENG_DT_BOOL:
        *v = u.u8 != 0;
        return true;
    case ENG_DT_INT16:
        *v = u.i16;
        return true;
    case ENG_DT_UINT16:
        *v = u.u16;
        return true;
    case ENG_DT_INT32:
        *v = u.i32;
        return true;
    case ENG_DT_UINT32:
        *v = u.u32;
        return true;
    case ENG_DT_INT64:
        *v = (double)u.i64;
        return true;
    case ENG_DT_UINT64:
        *v = (double)u.u64;
        return true;
    default:
        return false;
    }
}

static int infer_clip(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_clip_attrs *a = &c->res->clip;
    struct shapebuf sb;
    int rc;

    if ((rc = check_dtype(c, 0)) < 0) return rc;
    for (int i = 1; i <= 2; i++) {
        const eng_tensor *t = input(c, i);
        if (!t) continue;
        if ((rc = same_dtype(c, i, 0)) < 0) return rc;
        if (t->rank > 1 || eng_tensor_numel(t) != 1)
            return fail(c, ROUSE_EMISMATCH, "input '%s' must be a scalar, got %s", in_name(c, i),
                        shp(&sb, 0, t->rank, t->shape));
        double v;
        if (!t->data)
            return fail(c, ROUSE_EUNSUPPORTED, "input '%s' must be a constant or a graph input",
                        in_name(c, i));
        if (!read_scalar(t, &v) || isnan(v))
            return fail(c, ROUSE_EMISMATCH, "input '%s' is not a number", in_name(c, i));
        if (i == 1) {
            a->min = v;
            a->has_min = true;
        } else {
            a->max = v;
            a->has_max = true;
        }
    }
    set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

static int infer_same(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    int rc;
    if ((rc = check_dtype(c, 0)) < 0) return rc;
    set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

static int infer_softmax(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    int rc;
    if ((rc = check_dtype(c, 0)) < 0) return rc;
    if ((rc = norm_axis(c, c->res->axis.axis, x->rank, false, &c->res->axis.axis)) < 0) return rc;
    set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

/* LayerNorm: scale and bias hold one value, or one per element of the
 * last dim (they broadcast along it). */
static int infer_layernorm(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    struct shapebuf sb;
    int rc;
    if ((rc = check_dtype(c, 0)) < 0) return rc;
    if (x->rank < 1) return fail(c, ROUSE_EMISMATCH, "input 'X' must have rank >= 1, got a scalar");
    if ((rc = norm_axis(c, c->res->norm.axis, x->rank, false, &c->res->norm.axis)) < 0) return rc;
    for (int i = 1; i < c->n->n_in; i++) {
        const eng_tensor *p = c->in[i];
        if (!p) continue;
        if ((rc = same_dtype(c, i, 0)) < 0) return rc;
        int64_t cnt = eng_tensor_numel(p);
        if (p->rank > 1 || (cnt != 1 && cnt != x->shape[x->rank - 1]))
            return fail(c, ROUSE_EMISMATCH, "input '%s' has shape %s, input 'X' has %s",
                        in_name(c, i), shp(&sb, 0, p->rank, p->shape),
                        shp(&sb, 1, x->rank, x->shape));
    }
    set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

static int infer_dropout(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *ratio = input(c, 1), *mode = input(c, 2);
    struct shapebuf sb;
    double v;
    int rc;

    if ((rc = check_dtype(c, 0)) < 0) return rc;
    if (ratio) {
        if (ratio->rank > 1 || eng_tensor_numel(ratio) != 1)
            return fail(c, ROUSE_EMISMATCH, "input 'ratio' must be a scalar, got %s",
                        shp(&sb, 0, ratio->rank, ratio->shape));
        /* The ratio does not affect inference; keep it when known for
         * completeness. */
        if ((ratio->dtype == ENG_DT_FLOAT || ratio->dtype == ENG_DT_DOUBLE) &&
            read_scalar(ratio, &v))
            c->res->dropout.ratio = (float)v;
    }
    if (mode) {
        if (mode->dtype != ENG_DT_BOOL || mode->rank > 1 || eng_tensor_numel(mode) != 1)
            return fail(c, ROUSE_EMISMATCH, "input 'training_mode' must be a bool scalar");
        /* Training mode drops at random, except with ratio 0, where it is
         * the identity (and the mask all true). */
        if (read_scalar(mode, &v) && v != 0 && c->res->dropout.ratio != 0.0f)
            return fail(c, ROUSE_EUNSUPPORTED,
                        "training_mode = true with ratio %g drops at random and is not "
                        "supported for inference",
                        (double)c->res->dropout.ratio);
    }
    set_out(c, 0, x->dtype, x->rank, x->shape);
    /* The mask became bool in opset 10; before that it had the data's type. */
    set_out(c, 1, c->n->opset >= 10 ? ENG_DT_BOOL : x->dtype, x->rank, x->shape);
    return 0;
}

static int infer_flatten(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    int64_t axis = 0;
    int rc;
    if ((rc = check_dtype(c, 0)) < 0) return rc;
    if ((rc = norm_axis(c, c->res->axis.axis, x->rank, true, &axis)) < 0) return rc;
    c->res->axis.axis = axis;
    /* Each part is checked on its own: the whole may be empty (a zero dim)
     * while one side alone overflows. */
    int64_t y[2] = {eng_shape_numel((int)axis, x->shape),
                    eng_shape_numel(x->rank - (int)axis, x->shape + axis)};
    if (y[0] < 0 || y[1] < 0) return fail(c, ROUSE_ETOOBIG, "flattened shape overflows int64");
    set_out(c, 0, x->dtype, 2, y);
    return 0;
}

static int infer_reshape(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *s = c->in[1];
    bool allowzero = c->n->opset >= 14 && c->res->reshape.allowzero;
    struct shapebuf sb;
    int rc;

    if ((rc = check_dtype(c, 0)) < 0) return rc;
    if (s->dtype != ENG_DT_INT64)
        return fail(c, ROUSE_EMISMATCH, "input 'shape' must be int64, got %s",
                    eng_dtype_name(s->dtype));
    if (s->rank != 1)
        return fail(c, ROUSE_EMISMATCH, "input 'shape' must be 1-D, got %s",
                    shp(&sb, 0, s->rank, s->shape));
    if (!s->data)
        return fail(c, ROUSE_EUNSUPPORTED, "shape input must be a constant or a graph input");
    if (s->shape[0] > ENG_MAX_RANK)
        return fail(c, ROUSE_EUNSUPPORTED, "output rank %lld exceeds the maximum %d",
                    (long long)s->shape[0], ENG_MAX_RANK);

    int r = (int)s->shape[0], infer_at = -1;
    int64_t y[ENG_MAX_RANK], known = 1;
    bool has_zero = false;
    for (int i = 0; i < r; i++) {
        int64_t v;
        memcpy(&v, (const char *)s->data + (size_t)i * sizeof(v), sizeof(v));
        if (v == -1) {
            if (infer_at >= 0)
                return fail(c, ROUSE_EMISMATCH, "input 'shape' has more than one -1");
            infer_at = i;
            y[i] = 1;
            continue;
        }
        if (v < -1)
            return fail(c, ROUSE_EMISMATCH, "input 'shape' has invalid value %lld at index %d",
                        (long long)v, i);
        if (v == 0 && !allowzero) {
            if (i >= x->rank)
                return fail(c, ROUSE_EMISMATCH,
                            "input 'shape' copies dim %d (value 0) but input 'data' %s has rank "
                            "%d",
                            i, shp(&sb, 0, x->rank, x->shape), x->rank);
            v = x->shape[i];
        }
        if (v == 0) has_zero = true;
        y[i] = v;
        if (__builtin_mul_overflow(known, v, &known))
            return fail(c, ROUSE_ETOOBIG, "input 'shape' describes more than 2^63 elements");
    }
    if (allowzero && has_zero && infer_at >= 0)
        return fail(c, ROUSE_EMISMATCH, "input 'shape' has both 0 and -1 with allowzero=1");

    int64_t total = eng_tensor_numel(x);
    if (infer_at >= 0) {
        if (known == 0 || total % known)
            return fail(c, ROUSE_EMISMATCH,
                        "cannot reshape input 'data' %s (%lld elements): -1 "
                        "cannot be inferred",
                        shp(&sb, 0, x->rank, x->shape), (long long)total);
        y[infer_at] = total / known;
    } else if (known != total) {
        return fail(c, ROUSE_EMISMATCH, "cannot reshape input 'data' %s (%lld elements) to %s",
                    shp(&sb, 0, x->rank, x->shape), (long long)total, shp(&sb, 1, r, y));
    }
    set_out(c, 0, x->dtype, r, y);
    return 0;
}

static int infer_transpose(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_transpose_attrs *a = &c->res->transpose;
    int rc;

    if ((rc = check_dtype(c, 0)) < 0) return rc;
    if (a->n_perm == 0) {
        a->n_perm = x->rank;
        for (int i = 0; i < x->rank; i++)
            a->perm[i] = x->rank - 1 - i;
    } else if (a->n_perm != x->rank) {
        return fail(c, ROUSE_EMISMATCH, "attribute 'perm' has %d values, input 'data' has rank %d",
                    a->n_perm, x->rank);
    }
    int64_t y[ENG_MAX_RANK];
    bool seen[ENG_MAX_RANK] = {false};
    for (int i = 0; i < x->rank; i++) {
        /* Parsing validated the permutation; a hand-built node may not have been. */
        if (a->perm[i] < 0 || a->perm[i] >= x->rank || seen[a->perm[i]])
            return fail(c, ROUSE_EFORMAT, "attribute 'perm' is not a permutation");
        seen[a->perm[i]] = true;
        y[i] = x->shape[a->perm[i]];
    }
    set_out(c, 0, x->dtype, x->rank, y);
    return 0;
}

static int infer_concat(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    struct shapebuf sb;
    int64_t axis = 0;
    int rc;

    if ((rc = check_dtype(c, 0)) < 0) return rc;
    if (x->rank < 1) return fail(c, ROUSE_EMISMATCH, "cannot concatenate scalars");
    if ((rc = norm_axis(c, c->res->axis.axis, x->rank, false, &axis)) < 0) return rc;
    c->res->axis.axis = axis;
    int64_t y[ENG_MAX_RANK];
    memcpy(y, x->shape, sizeof(y[0]) * (size_t)x->rank);
    for (int i = 1; i < c->n->n_in; i++) {
        const eng_tensor *t = c->in[i];
        if ((rc = same_dtype(c, i, 0)) < 0) return rc;
        bool ok = t->rank == x->rank;
        for (int d = 0; ok && d < x->rank; d++)
            ok = d == axis || t->shape[d] == x->shape[d];
        if (!ok)
            return fail(c, ROUSE_EMISMATCH,
                        "input '%s' %s does not match input '%s' %s off axis %lld", in_name(c, i),
                        shp(&sb, 0, t->rank, t->shape), in_name(c, 0),
                        shp(&sb, 1, x->rank, x->shape), (long long)axis);
        if (__builtin_add_overflow(y[axis], t->shape[axis], &y[axis]))
            return fail(c, ROUSE_ETOOBIG, "concatenated dim overflows int64");
    }
    set_out(c, 0, x->dtype, x->rank, y);
    return 0;
}

static int infer_batchnorm(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    struct shapebuf sb;
    int rc;

    if ((rc = check_dtype(c, 0)) < 0) return rc;
    for (int i = 1; i < c->n->n_out; i++)
        if (want_out(c, i))
            return fail(c, ROUSE_EUNSUPPORTED, "training outputs (output %d) are not supported", i);
    if (x->rank < 2)
        return fail(c, ROUSE_EMISMATCH, "input 'X' must have rank >= 2 ([N, C, ...]), got %s",
                    shp(&sb, 0, x->rank, x->shape));
    for (int i = 1; i < 5; i++) {
        const eng_tensor *p = c->in[i];
        if ((rc = same_dtype(c, i, 0)) < 0) return rc;
        if (p->rank != 1 || p->shape[0] != x->shape[1])
            return fail(c, ROUSE_EMISMATCH, "input '%s' has shape %s, input 'X' has %lld channels",
                        in_name(c, i), shp(&sb, 0, p->rank, p->shape), (long long)x->shape[1]);
    }
    set_out(c, 0, x->dtype, x->rank, x->shape);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Transformer building blocks: Cast, Gather, Pow, ReduceMean, Unsqueeze,
 * Squeeze, Where. */

static int infer_cast(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    int rc;
    if ((rc = check_dtype(c, 0)) < 0) return rc;
    set_out(c, 0, c->res->cast.to, x->rank, x->shape);
    return 0;
}

static int infer_gather(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *idx = c->in[1];
    struct shapebuf sb;
    int64_t axis = 0;
    int rc;

    if (eng_dtype_size(x->dtype) == 0)
        return fail(c, ROUSE_EUNSUPPORTED, "element type %s of input 'data' is not supported",
                    eng_dtype_name(x->dtype));
    if (idx->dtype != ENG_DT_INT64 && idx->dtype != ENG_DT_INT32)
        return fail(c, ROUSE_EMISMATCH, "input 'indices' must be int32 or int64, got %s",
                    eng_dtype_name(idx->dtype));
    if (x->rank < 1)
        return fail(c, ROUSE_EMISMATCH, "input 'data' must have rank >= 1, got a scalar");
    if ((rc = norm_axis(c, c->res->axis.axis, x->rank, false, &axis)) < 0) return rc;
    c->res->axis.axis = axis;
    int r = x->rank - 1 + idx->rank;
    if (r > ENG_MAX_RANK)
        return fail(c, ROUSE_EUNSUPPORTED,
                    "output rank %d (input 'data' %s, input 'indices' %s) exceeds the maximum %d",
                    r, shp(&sb, 0, x->rank, x->shape), shp(&sb, 1, idx->rank, idx->shape),
                    ENG_MAX_RANK);
    if (x->shape[axis] == 0 && eng_tensor_numel(idx) > 0)
        return fail(c, ROUSE_EMISMATCH, "input 'data' %s is empty along axis %lld",
                    shp(&sb, 0, x->rank, x->shape), (long long)axis);
    int64_t y[ENG_MAX_RANK];
    int k = 0;
    for (int d = 0; d < axis; d++)
        y[k++] = x->shape[d];
    for (int d = 0; d < idx->rank; d++)
        y[k++] = idx->shape[d];
    for (int d = (int)axis + 1; d < x->rank; d++)
        y[k++] = x->shape[d];
    set_out(c, 0, x->dtype, r, y);
    return 0;
}

static int infer_pow(eng_infer_ctx *c)
{
    const eng_tensor *A = c->in[0], *B = c->in[1];
    struct shapebuf sb;
    int rc, r;
    int64_t y[ENG_MAX_RANK];

    if ((rc = check_dtype(c, 0)) < 0) return rc;
    /* Before opset 12 the exponent had the base's type. */
    if (c->n->opset < 12 && (rc = same_dtype(c, 1, 0)) < 0) return rc;
    unsigned ok = DT_FLOATS | DT(INT32) | DT(INT64) | DT(UINT32) | DT(UINT64);
    if (B->dtype <= 0 || B->dtype >= 32 || !(ok & (1u << B->dtype)))
        return fail(c, ROUSE_EUNSUPPORTED, "element type %s of input 'Y' is not supported",
                    eng_dtype_name(B->dtype));
    if (!broadcast(A->rank, A->shape, B->rank, B->shape, &r, y))
        return fail(c, ROUSE_EMISMATCH, "input 'X' %s and input 'Y' %s cannot be broadcast",
                    shp(&sb, 0, A->rank, A->shape), shp(&sb, 1, B->rank, B->shape));
    set_out(c, 0, A->dtype, r, y);
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Normalizes n axes in place against `rank`, rejects duplicates, sorts. */
static int norm_axes(eng_infer_ctx *c, const char *what, int64_t *axes, int n, int rank)
{
    for (int i = 0; i < n; i++) {
        if (axes[i] < -(int64_t)rank || axes[i] >= rank)
            return fail(c, ROUSE_EMISMATCH, "%s %lld is out of range for rank %d", what,
                        (long long)axes[i], rank);
        if (axes[i] < 0) axes[i] += rank;
    }
    qsort(axes, (size_t)n, sizeof(axes[0]), cmp_i64);
    for (int i = 1; i < n; i++)
        if (axes[i] == axes[i - 1])
            return fail(c, ROUSE_EMISMATCH, "%s %lld appears more than once", what,
                        (long long)axes[i]);
    return 0;
}

static int infer_reduce_mean(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_axes_attrs *a = &c->res->axes;
    int rc;

    if ((rc = check_dtype(c, 0)) < 0) return rc;
    if (a->n_axes <= 0) { /* absent or empty: every dim */
        a->n_axes = x->rank;
        for (int i = 0; i < x->rank; i++)
            a->axes[i] = i;
    } else if ((rc = norm_axes(c, "attribute 'axes' value", a->axes, a->n_axes, x->rank)) < 0) {
        return rc;
    }
    bool red[ENG_MAX_RANK] = {false};
    for (int i = 0; i < a->n_axes; i++)
        red[a->axes[i]] = true;
    int64_t y[ENG_MAX_RANK];
    int r = 0;
    for (int d = 0; d < x->rank; d++) {
        if (!red[d])
            y[r++] = x->shape[d];
        else if (a->keepdims)
            y[r++] = 1;
    }
    set_out(c, 0, x->dtype, r, y);
    return 0;
}

/* Unsqueeze/Squeeze axes: the attribute before opset 13, input 1 since
 * (which must be known while preparing, like Reshape's shape). */
static int axes_from_input(eng_infer_ctx *c)
{
    const eng_tensor *t = input(c, 1);
    eng_axes_attrs *a = &c->res->axes;
    struct shapebuf sb;
    if (c->n->opset < 13 || !t) return 0;
    if (t->dtype != ENG_DT_INT64)
        return fail(c, ROUSE_EMISMATCH, "input 'axes' must be int64, got %s",
                    eng_dtype_name(t->dtype));
    if (t->rank > 1)
        return fail(c, ROUSE_EMISMATCH, "input 'axes' must be 1-D, got %s",
                    shp(&sb, 0, t->rank, t->shape));
    int64_t n = eng_tensor_numel(t);
    if (n > ENG_MAX_RANK)
        return fail(c, ROUSE_EUNSUPPORTED, "input 'axes' has %lld values, at most %d are supported",
                    (long long)n, ENG_MAX_RANK);
    if (!t->data)
        return fail(c, ROUSE_EUNSUPPORTED, "input 'axes' must be a constant or a graph input");
    memcpy(a->axes, t->data, sizeof(int64_t) * (size_t)n); /* may be unaligned */
    a->n_axes = (int)n;
    return 0;
}

static int infer_unsqueeze(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_axes_attrs *a = &c->res->axes;
    int rc;

    if ((rc = check_dtype(c, 0)) < 0 || (rc = axes_from_input(c)) < 0) return rc;
    if (a->n_axes <= 0) return fail(c, ROUSE_EMISMATCH, "axes must not be empty");
    int r = x->rank + a->n_axes;
    if (r > ENG_MAX_RANK)
        return fail(c, ROUSE_EUNSUPPORTED, "output rank %d exceeds the maximum %d", r,
                    ENG_MAX_RANK);
    if ((rc = norm_axes(c, "axis", a->axes, a->n_axes, r)) < 0) return rc;
    int64_t y[ENG_MAX_RANK];
    for (int d = 0, k = 0, s = 0; d < r; d++) {
        if (k < a->n_axes && a->axes[k] == d) {
            y[d] = 1;
            k++;
        } else {
            y[d] = x->shape[s++];
        }
    }
    set_out(c, 0, x->dtype, r, y);
    return 0;
}

static int infer_squeeze(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_axes_attrs *a = &c->res->axes;
    struct shapebuf sb;
    int rc;

    if ((rc = check_dtype(c, 0)) < 0 || (rc = axes_from_input(c)) < 0) return rc;
    if (a->n_axes <= 0) { /* absent or empty: every dim of size 1 */
        a->n_axes = 0;
        for (int d = 0; d < x->rank; d++)
            if (x->shape[d] == 1) a->axes[a->n_axes++] = d;
    } else if ((rc = norm_axes(c, "axis", a->axes, a->n_axes, x->rank)) < 0) {
        return rc;
    }
    bool drop[ENG_MAX_RANK] = {false};
    for (int i = 0; i < a->n_axes; i++) {
        if (x->shape[a->axes[i]] != 1)
            return fail(c, ROUSE_EMISMATCH,
                        "cannot squeeze axis %lld of input 'data' %s: size is not 1",
                        (long long)a->axes[i], shp(&sb, 0, x->rank, x->shape));
        drop[a->axes[i]] = true;
    }
    int64_t y[ENG_MAX_RANK];
    int r = 0;
    for (int d = 0; d < x->rank; d++)
        if (!drop[d]) y[r++] = x->shape[d];
    set_out(c, 0, x->dtype, r, y);
    return 0;
}

static int infer_where(eng_infer_ctx *c)
{
    const eng_tensor *cond = c->in[0], *X = c->in[1], *Y = c->in[2];
    struct shapebuf sb;
    int rc, r1, r;
    int64_t y1[ENG_MAX_RANK], y[ENG_MAX_RANK];

    if ((rc = check_dtype(c, 0)) < 0) return rc;
    if ((rc = same_dtype(c, 2, 1)) < 0) return rc;
    if (eng_dtype_size(X->dtype) == 0)
        return fail(c, ROUSE_EUNSUPPORTED, "element type %s of input 'X' is not supported",
                    eng_dtype_name(X->dtype));
    if (!broadcast(X->rank, X->shape, Y->rank, Y->shape, &r1, y1))
        return fail(c, ROUSE_EMISMATCH, "input 'X' %s and input 'Y' %s cannot be broadcast",
                    shp(&sb, 0, X->rank, X->shape), shp(&sb, 1, Y->rank, Y->shape));
    if (!broadcast(cond->rank, cond->shape, r1, y1, &r, y))
        return fail(c, ROUSE_EMISMATCH,
                    "input 'condition' %s cannot be broadcast with inputs 'X' and 'Y' (%s)",
                    shp(&sb, 0, cond->rank, cond->shape), shp(&sb, 1, r1, y1));
    set_out(c, 0, X->dtype, r, y);
    return 0;
}

static int infer_legacy(eng_infer_ctx *c);

int eng_infer_node(const eng_node *n, const eng_tensor *const *in, eng_tensor *out,
                   eng_attrs *resolved, rouse_errbuf *eb)
{
    eng_infer_ctx c = {.n = n, .in = in, .out = out, .res = resolved, .eb = eb};
    int rc;

    if ((int)n->op < 0 || n->op >= ENG_OP_COUNT)
        return rouse_err_set(eb, ROUSE_EINVAL, "node '%s': unknown operator number %d",
                             n->name ? n->name : "", (int)n->op);
    if (n->op == ENG_OP_CONSTANT)
        return fail(&c, ROUSE_EINTERNAL, "Constant nodes are folded when the graph is built");
    *resolved = n->attrs;
    if ((rc = arity(&c)) < 0) return rc;

    const eng_op_desc *d = eng_op_desc_get(n->op);
    if (d) {
        if (d->dtypes && in[0] && (rc = eng_infer_check_dtype(&c, 0, d->dtypes)) < 0) return rc;
        rc = d->infer ? d->infer(&c) : fail(&c, ROUSE_EINTERNAL, "no shape inference");
    } else {
        rc = infer_legacy(&c);
    }
    if (rc < 0) return rc;

    /* Every output must be allocatable as one dense buffer. */
    for (int i = 0; i < n->n_out; i++) {
        if (!want_out(&c, i)) continue;
        if (eng_tensor_nbytes(&out[i]) < 0) {
            struct shapebuf sb;
            return fail(&c, ROUSE_ETOOBIG, "output %d of shape %s is too large", i,
                        shp(&sb, 0, out[i].rank, out[i].shape));
        }
    }
    return 0;
}

/* The ops not yet described by an eng_op_desc. */
static int infer_legacy(eng_infer_ctx *c)
{
    int rc;
    switch (c->n->op) {
    case ENG_OP_CONV:
        rc = infer_conv(c);
        break;
    case ENG_OP_GEMM:
        rc = infer_gemm(c);
        break;
    case ENG_OP_MATMUL:
        rc = infer_matmul(c);
        break;
    case ENG_OP_RELU:
    case ENG_OP_LEAKY_RELU:
    case ENG_OP_SIGMOID:
    case ENG_OP_TANH:
    case ENG_OP_IDENTITY:
    case ENG_OP_ERF:
    case ENG_OP_SQRT:
    case ENG_OP_GELU:
        rc = infer_same(c);
        break;
    case ENG_OP_LAYERNORM:
        rc = infer_layernorm(c);
        break;
    case ENG_OP_CAST:
        rc = infer_cast(c);
        break;
    case ENG_OP_GATHER:
        rc = infer_gather(c);
        break;
    case ENG_OP_POW:
        rc = infer_pow(c);
        break;
    case ENG_OP_REDUCE_MEAN:
        rc = infer_reduce_mean(c);
        break;
    case ENG_OP_UNSQUEEZE:
        rc = infer_unsqueeze(c);
        break;
    case ENG_OP_SQUEEZE:
        rc = infer_squeeze(c);
        break;
    case ENG_OP_WHERE:
        rc = infer_where(c);
        break;
    case ENG_OP_CLIP:
        rc = infer_clip(c);
        break;
    case ENG_OP_ADD:
    case ENG_OP_SUB:
    case ENG_OP_MUL:
    case ENG_OP_DIV:
        rc = infer_binary(c);
        break;
    case ENG_OP_MAXPOOL:
    case ENG_OP_AVGPOOL:
        rc = infer_pool(c);
        break;
    case ENG_OP_GLOBAL_AVGPOOL:
        rc = infer_global_pool(c);
        break;
    case ENG_OP_FLATTEN:
        rc = infer_flatten(c);
        break;
    case ENG_OP_RESHAPE:
        rc = infer_reshape(c);
        break;
    case ENG_OP_TRANSPOSE:
        rc = infer_transpose(c);
        break;
    case ENG_OP_CONCAT:
        rc = infer_concat(c);
        break;
    case ENG_OP_BATCHNORM:
        rc = infer_batchnorm(c);
        break;
    case ENG_OP_SOFTMAX:
        rc = infer_softmax(c);
        break;
    case ENG_OP_DROPOUT:
        rc = infer_dropout(c);
        break;
    default:
        rc = fail(c, ROUSE_EINTERNAL, "no shape inference for this operator");
        break;
    }
    return rc;
}

/* --- the inference API of the op descriptors (engine/op.h) ---------------- */

int eng_infer_fail(eng_infer_ctx *c, int rc, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fail(c, rc, "%s", msg);
}

const char *eng_infer_in_name(eng_infer_ctx *c, int i)
{
    return in_name(c, i);
}

const eng_tensor *eng_infer_input(const eng_infer_ctx *c, int i)
{
    return input(c, i);
}

bool eng_infer_want_out(const eng_infer_ctx *c, int i)
{
    return want_out(c, i);
}

void eng_infer_set_out(eng_infer_ctx *c, int i, int dtype, int rank, const int64_t *shape)
{
    set_out(c, i, dtype, rank, shape);
}

int eng_infer_norm_axis(eng_infer_ctx *c, int64_t axis, int rank, bool inclusive, int64_t *out)
{
    return norm_axis(c, axis, rank, inclusive, out);
}

int eng_infer_same_dtype(eng_infer_ctx *c, int i, int j)
{
    return same_dtype(c, i, j);
}

int eng_infer_check_dtype(eng_infer_ctx *c, int i, unsigned mask)
{
    int dt = c->in[i]->dtype;
    if (dt > 0 && dt < 32 && (mask & (1u << dt))) return 0;
    return fail(c, ROUSE_EUNSUPPORTED, "element type %s of input '%s' is not supported",
                eng_dtype_name(dt), in_name(c, i));
}

int eng_infer_read_ints(eng_infer_ctx *c, int i, int max, int *count, int64_t *vals)
{
    const eng_tensor *t = input(c, i);
    *count = 0;
    if (!t) return fail(c, ROUSE_EFORMAT, "input '%s' is required", in_name(c, i));
    if (t->dtype != ENG_DT_INT64 && t->dtype != ENG_DT_INT32)
        return fail(c, ROUSE_EFORMAT, "input '%s' must be int32 or int64, got %s", in_name(c, i),
                    eng_dtype_name(t->dtype));
    if (!t->data)
        return fail(c, ROUSE_EUNSUPPORTED,
                    "input '%s' must be known when the model is prepared (a constant, a graph "
                    "input, or computed from shapes)",
                    in_name(c, i));
    int64_t n = eng_tensor_numel(t);
    if (n < 0 || n > max)
        return fail(c, ROUSE_EFORMAT, "input '%s' has %lld values, at most %d are supported",
                    in_name(c, i), (long long)n, max);
    for (int64_t k = 0; k < n; k++) {
        if (t->dtype == ENG_DT_INT64) {
            int64_t v;
            memcpy(&v, (const char *)t->data + 8 * k, 8);
            vals[k] = v;
        } else {
            int32_t v;
            memcpy(&v, (const char *)t->data + 4 * k, 4);
            vals[k] = v;
        }
    }
    *count = (int)n;
    return 0;
}

bool eng_infer_read_scalar(const eng_infer_ctx *c, int i, double *v)
{
    const eng_tensor *t = input(c, i);
    if (!t || eng_tensor_numel(t) != 1) return false;
    return read_scalar(t, v);
}

bool eng_broadcast_shapes(int ra, const int64_t *a, int rb, const int64_t *b, int *r, int64_t *y)
{
    return broadcast(ra, a, rb, b, r, y);
}
