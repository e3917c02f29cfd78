/*
 * Concrete shape and type inference for one node, with the ONNX rules:
 * the checks every op shares (input and output counts from its descriptor,
 * required inputs present, concrete shapes, input 0's element type, dense
 * outputs) around the op's own infer hook (engine/op.h), and the helpers
 * those hooks use.
 *
 * Given the actual shapes (and, where an op needs them, the values) of a
 * node's inputs, the hooks compute the dtype and shape of each output and
 * the "resolved" attributes the kernels run with: auto_pad turned into
 * explicit pads, Conv's kernel taken from the weight, Clip's bounds and
 * Dropout's ratio read from constant inputs, Transpose's default
 * permutation spelled out, Unsqueeze/Squeeze axes read from their input
 * (opset >= 13), and axes normalized to 0..rank-1 (lists of axes also
 * sorted).
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

/* Helpers take the eng_infer_ctx of engine/op.h; its `names` are scratch
 * for in_name() of variadic inputs. */

static int fail(eng_infer_ctx *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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
    if (d && i >= 0 && i < ENG_OP_MAX_IN_NAMES && d->in_names[i]) return d->in_names[i];
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
static int arity(eng_infer_ctx *c, const eng_op_desc *d)
{
    const eng_node *n = c->n;
    int min_in = d->min_in, max_in = d->max_in, max_out = d->max_out;
    if (d->counts) d->counts(n, &min_in, &max_in, &max_out);

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

    int required = max_in < 0 ? n->n_in : min_in; /* variadic: all */
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

int eng_infer_node(const eng_node *n, const eng_tensor *const *in, eng_tensor *out,
                   eng_attrs *resolved, rouse_errbuf *eb)
{
    eng_infer_ctx c = {.n = n, .in = in, .out = out, .res = resolved, .eb = eb};
    int rc;

    const eng_op_desc *d = eng_op_desc_get(n->op);
    if (!d)
        return rouse_err_set(eb, ROUSE_EINVAL, "node '%s': unknown operator number %d",
                             n->name ? n->name : "", (int)n->op);
    if (n->op == ENG_OP_CONSTANT)
        return fail(&c, ROUSE_EINTERNAL, "Constant nodes are folded when the graph is built");
    *resolved = n->attrs;
    if ((rc = arity(&c, d)) < 0) return rc;
    if (d->dtypes && in[0] && (rc = eng_infer_check_dtype(&c, 0, d->dtypes)) < 0) return rc;
    rc = d->infer ? d->infer(&c) : fail(&c, ROUSE_EINTERNAL, "no shape inference");
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
