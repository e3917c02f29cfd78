/*
 * Operator descriptors of the shape family, second part (see engine/op.h):
 * ops that cut, pad or rearrange their input without computing on it:
 * Slice, Split, Pad, DepthToSpace, SpaceToDepth.
 *
 * Guarantees: Slice's starts/ends/axes/steps, Split's sizes and Pad's pads
 * are value inputs (known when the model is prepared); shape inference
 * normalizes them for the concrete input (clamped starts and ends, explicit
 * per-dim pads) into the resolved record, and the kernels only follow that
 * record and the inferred shapes, so every read stays inside the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/op.h"
#include "engine/ops/shape_util.h"

static const char *shape_text(char *buf, size_t len, const eng_tensor *t)
{
    return eng_shape_str(t->rank, t->shape, buf, len);
}

/* --- Slice ------------------------------------------------------------------ */

/* Before opset 10: starts, ends and the optional axes are attributes. */
static int parse_slice(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_slice_attrs *s = &a->shape.slice;
    if (c->n->opset >= 10) return 0;
    int ns, ne, na, rc;
    int64_t axes[ENG_MAX_RANK];
    if ((rc = eng_attr_ints(c, "starts", ENG_MAX_RANK, &ns, s->starts)) < 0 ||
        (rc = eng_attr_ints(c, "ends", ENG_MAX_RANK, &ne, s->ends)) < 0 ||
        (rc = eng_attr_ints(c, "axes", ENG_MAX_RANK, &na, axes)) < 0)
        return rc;
    if (ns < 0) return eng_attr_err(c, ROUSE_EFORMAT, "starts", "is required");
    if (ne != ns)
        return eng_attr_err(c, ROUSE_EFORMAT, "ends", "must have as many values as starts");
    if (na >= 0 && na != ns)
        return eng_attr_err(c, ROUSE_EFORMAT, "axes", "must have as many values as starts");
    s->n = ns;
    for (int i = 0; i < ns; i++) {
        int64_t ax = na >= 0 ? axes[i] : i;
        if (ax < -ENG_MAX_RANK || ax >= ENG_MAX_RANK)
            return eng_attr_err(c, ROUSE_EFORMAT, "axes", "has a value out of range");
        s->axes[i] = (int8_t)ax;
        s->steps[i] = 1;
    }
    return 0;
}

static int check_slice(const eng_node *n, rouse_errbuf *eb)
{
    const eng_slice_attrs *s = &n->attrs.shape.slice;
    if (s->n < 0 || s->n > ENG_MAX_RANK || (n->opset >= 10 && s->n != 0))
        return sx_attr_bad(n, eb, "starts", "has %d values", s->n);
    for (int i = 0; i < s->n; i++) {
        if (s->axes[i] < -ENG_MAX_RANK || s->axes[i] >= ENG_MAX_RANK)
            return sx_attr_bad(n, eb, "axes", "has a value out of range");
        if (s->steps[i] == 0) return sx_attr_bad(n, eb, "steps", "has a zero step");
    }
    return 0;
}

/* The first element, the clamped end and the output extent of one sliced
 * dim, per the ONNX rules: negative starts/ends count from the end; with a
 * positive step both are clamped to [0, dim], with a negative one start to
 * [0, dim - 1] and end to [-1, dim - 1]. */
static int64_t slice_dim(int64_t dim, int64_t *start, int64_t *end, int64_t step)
{
    int64_t s = *start, e = *end;
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    __int128 cnt = 0;
    if (step > 0) {
        s = s < 0 ? 0 : s > dim ? dim : s;
        e = e < 0 ? 0 : e > dim ? dim : e;
        if (e > s) cnt = ((__int128)e - s + step - 1) / step;
    } else {
        s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
        e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
        if (s > e) cnt = ((__int128)s - e + -(__int128)step - 1) / -(__int128)step;
    }
    if (dim == 0) cnt = 0;
    *start = s < 0 ? 0 : s;
    *end = e;
    return (int64_t)cnt;
}

static int infer_slice(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_slice_attrs *s = &c->res->shape.slice;
    int64_t starts[ENG_MAX_RANK], ends[ENG_MAX_RANK], axes[ENG_MAX_RANK], steps[ENG_MAX_RANK];
    int n, rc;
    if (c->n->opset < 10) {
        n = s->n;
        for (int i = 0; i < n; i++) {
            starts[i] = s->starts[i];
            ends[i] = s->ends[i];
            axes[i] = s->axes[i];
            steps[i] = 1;
        }
    } else {
        int ne, na, nst;
        if ((rc = eng_infer_read_ints(c, 1, ENG_MAX_RANK, &n, starts)) < 0 ||
            (rc = eng_infer_read_ints(c, 2, ENG_MAX_RANK, &ne, ends)) < 0)
            return rc;
        if (ne != n)
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "inputs 'starts' and 'ends' differ in length");
        if (eng_infer_input(c, 3)) {
            if ((rc = eng_infer_read_ints(c, 3, ENG_MAX_RANK, &na, axes)) < 0) return rc;
            if (na != n)
                return eng_infer_fail(c, ROUSE_EMISMATCH,
                                      "inputs 'starts' and 'axes' differ in length");
        } else {
            for (int i = 0; i < n; i++)
                axes[i] = i;
        }
        if (eng_infer_input(c, 4)) {
            if ((rc = eng_infer_read_ints(c, 4, ENG_MAX_RANK, &nst, steps)) < 0) return rc;
            if (nst != n)
                return eng_infer_fail(c, ROUSE_EMISMATCH,
                                      "inputs 'starts' and 'steps' differ in length");
        } else {
            for (int i = 0; i < n; i++)
                steps[i] = 1;
        }
    }

    int64_t y[ENG_MAX_RANK];
    bool seen[ENG_MAX_RANK] = {false};
    for (int d = 0; d < x->rank; d++) {
        s->axes[d] = (int8_t)d;
        s->starts[d] = 0;
        s->ends[d] = x->shape[d];
        s->steps[d] = 1;
        y[d] = x->shape[d];
    }
    for (int i = 0; i < n; i++) {
        int64_t ax;
        if ((rc = eng_infer_norm_axis(c, axes[i], x->rank, false, &ax)) < 0) return rc;
        if (seen[ax])
            return eng_infer_fail(c, ROUSE_EFORMAT, "axis %lld is sliced twice", (long long)ax);
        seen[ax] = true;
        if (steps[i] == 0) return eng_infer_fail(c, ROUSE_ERANGE, "a step is zero");
        s->starts[ax] = starts[i];
        s->ends[ax] = ends[i];
        s->steps[ax] = steps[i];
        y[ax] = slice_dim(x->shape[ax], &s->starts[ax], &s->ends[ax], steps[i]);
    }
    s->n = x->rank;
    eng_infer_set_out(c, 0, x->dtype, x->rank, y);
    return 0;
}

static int run_slice(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_slice_attrs *s = &a->shape.slice;
    const eng_tensor *x = in[0];
    eng_tensor *y = out[0];
    int64_t xs[ENG_MAX_RANK], st[ENG_MAX_RANK], base = 0;
    if (s->n != x->rank || y->rank != x->rank)
        return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "slice record does not match the input");
    if (eng_tensor_numel(y) == 0) return 0;
    sx_strides(x->rank, x->shape, xs);
    for (int d = 0; d < x->rank; d++) {
        /* The first and last elements read must lie inside the input. */
        int64_t last = s->starts[d] + (y->shape[d] - 1) * s->steps[d];
        if (s->starts[d] < 0 || s->starts[d] >= x->shape[d] || last < 0 || last >= x->shape[d])
            return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "slice of dim %d leaves the input", d);
        base += s->starts[d] * xs[d];
        st[d] = s->steps[d] * xs[d];
    }
    sx_copy_strided(x->rank, y->shape, st, base, eng_dtype_size(x->dtype), x->data, y->data);
    return 0;
}

static void counts_slice(const eng_node *n, int *min_in, int *max_in, int *max_out)
{
    (void)max_out;
    if (n->opset < 10) *min_in = *max_in = 1;
}

/* --- Split ------------------------------------------------------------------ */

static int parse_split(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_split_attrs *s = &a->shape.split;
    int rc;
    if ((rc = eng_attr_int(c, "axis", 0, &s->axis)) < 0) return rc;
    s->n_split = -1;
    if (c->n->opset < 13) return eng_attr_ints(c, "split", ENG_SPLIT_MAX, &s->n_split, s->split);
    return 0;
}

static int check_split(const eng_node *n, rouse_errbuf *eb)
{
    const eng_split_attrs *s = &n->attrs.shape.split;
    if (s->axis < -ENG_MAX_RANK || s->axis >= ENG_MAX_RANK)
        return sx_attr_bad(n, eb, "axis", "is out of range");
    if (s->n_split < -1 || s->n_split > ENG_SPLIT_MAX)
        return sx_attr_bad(n, eb, "split", "has %d values", s->n_split);
    for (int i = 0; i < s->n_split; i++)
        if (s->split[i] < 0) return sx_attr_bad(n, eb, "split", "has a negative size");
    return 0;
}

static void counts_split(const eng_node *n, int *min_in, int *max_in, int *max_out)
{
    (void)min_in;
    (void)max_out;
    if (n->opset < 13) *max_in = 1;
}

static int infer_split(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_split_attrs *s = &c->res->shape.split;
    int n_out = c->n->n_out, n, rc;
    int64_t axis, sizes[ENG_SPLIT_MAX];
    if ((rc = eng_infer_norm_axis(c, s->axis, x->rank, false, &axis)) < 0) return rc;
    int64_t dim = x->shape[axis];
    if (eng_infer_input(c, 1)) {
        if ((rc = eng_infer_read_ints(c, 1, ENG_SPLIT_MAX, &n, sizes)) < 0) return rc;
    } else if (s->n_split >= 0) {
        n = s->n_split;
        memcpy(sizes, s->split, sizeof(sizes));
    } else {
        if (dim % n_out)
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "dim %lld of input 'input' (size %lld) does not split into %d "
                                  "equal parts",
                                  (long long)axis, (long long)dim, n_out);
        n = n_out;
        for (int i = 0; i < n; i++)
            sizes[i] = dim / n_out;
    }
    if (n != n_out)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "'split' has %d sizes for %d outputs", n, n_out);
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] < 0 || sizes[i] > dim)
            return eng_infer_fail(c, ROUSE_ERANGE, "'split' has a size %lld out of range",
                                  (long long)sizes[i]);
        sum += sizes[i];
    }
    if (sum != dim)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "'split' sizes add up to %lld, dim %lld of input 'input' is %lld",
                              (long long)sum, (long long)axis, (long long)dim);
    s->axis = axis;
    s->n_split = n;
    memcpy(s->split, sizes, sizeof(sizes));
    for (int i = 0; i < n; i++) {
        int64_t y[ENG_MAX_RANK];
        memcpy(y, x->shape, sizeof(y));
        y[axis] = sizes[i];
        eng_infer_set_out(c, i, x->dtype, x->rank, y);
    }
    return 0;
}

static int run_split(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_split_attrs *s = &a->shape.split;
    const eng_tensor *x = in[0];
    if (s->axis < 0 || s->axis >= x->rank || s->n_split != nd->n_out)
        return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "split record does not match the input");
    size_t es = eng_dtype_size(x->dtype);
    int64_t outer = eng_shape_numel((int)s->axis, x->shape);
    int64_t inner = eng_shape_numel(x->rank - (int)s->axis - 1, x->shape + s->axis + 1);
    int64_t dim = x->shape[s->axis], off = 0;
    for (int k = 0; k < s->n_split; k++) {
        int64_t ext = s->split[k];
        if (off + ext > dim)
            return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "split sizes exceed the input");
        if (out[k]) {
            size_t row = (size_t)(ext * inner) * es;
            for (int64_t o = 0; o < outer && row; o++)
                memcpy((char *)out[k]->data + (size_t)o * row,
                       (const char *)x->data + (size_t)((o * dim + off) * inner) * es, row);
        }
        off += ext;
    }
    return 0;
}

/* --- Pad -------------------------------------------------------------------- */

static const char *const pad_modes[] = {"constant", "reflect", "edge", NULL};

static int parse_pad(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_pad_attrs *p = &a->shape.pad;
    int rc;
    if ((rc = eng_attr_choice(c, "mode", pad_modes, ENG_PAD_CONSTANT, &p->mode)) < 0) return rc;
    if (c->n->opset >= 11) return 0;
    if ((rc = eng_attr_ints(c, "pads", 2 * ENG_MAX_RANK, &p->n_pads, p->pads)) < 0) return rc;
    if (p->n_pads < 0) return eng_attr_err(c, ROUSE_EFORMAT, "pads", "is required");
    return eng_attr_finite(c, "value", 0.0f, &p->value);
}

static int check_pad(const eng_node *n, rouse_errbuf *eb)
{
    const eng_pad_attrs *p = &n->attrs.shape.pad;
    if (p->mode < ENG_PAD_CONSTANT || p->mode > ENG_PAD_EDGE)
        return sx_attr_bad(n, eb, "mode", "has an unknown value %d", p->mode);
    if (p->n_pads < 0 || p->n_pads > 2 * ENG_MAX_RANK || p->n_pads % 2 ||
        (n->opset >= 11 && p->n_pads != 0))
        return sx_attr_bad(n, eb, "pads", "has %d values", p->n_pads);
    if (p->value != p->value) return sx_attr_bad(n, eb, "value", "is not a number");
    return 0;
}

static void counts_pad(const eng_node *n, int *min_in, int *max_in, int *max_out)
{
    (void)max_out;
    if (n->opset < 11) *min_in = *max_in = 1;
}

static int infer_pad(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_pad_attrs *p = &c->res->shape.pad;
    int64_t pads[2 * ENG_MAX_RANK], y[ENG_MAX_RANK];
    int n = p->n_pads, rc;
    if (c->n->opset >= 11) {
        if ((rc = eng_infer_read_ints(c, 1, 2 * ENG_MAX_RANK, &n, pads)) < 0) return rc;
        const eng_tensor *v = eng_infer_input(c, 2);
        if (v && eng_tensor_numel(v) > 1)
            return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'constant_value' must be a scalar");
        if (v && (rc = eng_infer_same_dtype(c, 0, 2)) < 0) return rc;
    } else {
        memcpy(pads, p->pads, sizeof(pads));
    }
    if (n != 2 * x->rank)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "'pads' has %d values, input 'data' of rank %d needs %d", n, x->rank,
                              2 * x->rank);
    for (int d = 0; d < x->rank; d++) {
        int64_t b = pads[d], e = pads[d + x->rank], dim = x->shape[d];
        if (b > INT64_MAX / 4 || e > INT64_MAX / 4 || b < -dim || e < -dim || dim + b + e < 0)
            return eng_infer_fail(c, ROUSE_ERANGE,
                                  "'pads' %lld and %lld do not fit dim %d of size %lld",
                                  (long long)b, (long long)e, d, (long long)dim);
        y[d] = dim + b + e;
        if (p->mode != ENG_PAD_CONSTANT && dim == 0 && y[d] > 0)
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "dim %d of input 'data' is empty: nothing to pad from", d);
    }
    p->n_pads = 2 * x->rank;
    memcpy(p->pads, pads, sizeof(pads));
    eng_infer_set_out(c, 0, x->dtype, x->rank, y);
    return 0;
}

/* The input index that output index o of a dim reads (dim n, begin pad b),
 * or -1 for the constant. */
static int64_t pad_map(int mode, int64_t o, int64_t b, int64_t n)
{
    int64_t i = o - b;
    if (i >= 0 && i < n) return i;
    if (mode == ENG_PAD_CONSTANT) return -1;
    if (mode == ENG_PAD_EDGE || n == 1) return i < 0 ? 0 : n - 1;
    int64_t period = 2 * (n - 1), m = i % period; /* reflect, repeated as numpy does */
    if (m < 0) m += period;
    return m >= n ? period - m : m;
}

static int run_pad(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                   eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_pad_attrs *p = &a->shape.pad;
    const eng_tensor *x = in[0];
    eng_tensor *y = out[0];
    size_t es = eng_dtype_size(x->dtype);
    int rank = x->rank;
    if (p->n_pads != 2 * rank)
        return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "pad record does not match the input");
    uint8_t fill[8] = {0};
    const eng_tensor *v = nd->n_in > 2 ? in[2] : NULL;
    if (v && eng_tensor_numel(v) == 1)
        memcpy(fill, v->data, es);
    else if (nd->opset < 11)
        sx_store_num(x->dtype, fill, p->value);
    int64_t n = eng_tensor_numel(y);
    if (n == 0) return 0;
    if (rank == 0) {
        memcpy(y->data, x->data, es);
        return 0;
    }
    int64_t xs[ENG_MAX_RANK], idx[ENG_MAX_RANK] = {0};
    sx_strides(rank, x->shape, xs);
    int64_t inner = y->shape[rank - 1], xn = x->shape[rank - 1], b = p->pads[rank - 1];
    const char *src = x->data;
    char *dst = y->data;
    for (int64_t done = 0; done < n; done += inner, dst += (size_t)inner * es) {
        int64_t off = 0;
        bool constant = false;
        for (int d = 0; d < rank - 1; d++) {
            int64_t i = pad_map(p->mode, idx[d], p->pads[d], x->shape[d]);
            if (i < 0) constant = true;
            off += i * xs[d];
        }
        /* The input's row lands in [lo, hi) in one piece; the borders are
         * mapped element by element. */
        int64_t lo = constant ? inner : b < 0 ? 0 : b > inner ? inner : b;
        int64_t hi = constant ? inner : b + xn < lo ? lo : b + xn > inner ? inner : b + xn;
        for (int64_t o = 0; o < inner; o++) {
            if (o == lo && hi > lo) {
                memcpy(dst + (size_t)o * es, src + (size_t)(off + o - b) * es,
                       (size_t)(hi - lo) * es);
                o = hi - 1;
                continue;
            }
            int64_t i = constant ? -1 : pad_map(p->mode, o, b, xn);
            if (i < 0)
                memcpy(dst + (size_t)o * es, fill, es);
            else
                memcpy(dst + (size_t)o * es, src + (size_t)(off + i) * es, es);
        }
        for (int d = rank - 2; d >= 0; d--) {
            if (++idx[d] < y->shape[d]) break;
            idx[d] = 0;
        }
    }
    return 0;
}

/* --- DepthToSpace, SpaceToDepth -------------------------------------------- */

static const char *const d2s_modes[] = {"DCR", "CRD", NULL};

static int parse_block(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_block_attrs *b = &a->shape.block;
    int rc, mode = 0;
    if (!eng_attr_find(c, "blocksize"))
        return eng_attr_err(c, ROUSE_EFORMAT, "blocksize", "is required");
    if ((rc = eng_attr_int(c, "blocksize", 0, &b->blocksize)) < 0) return rc;
    if (c->n->op == ENG_OP_DEPTH_TO_SPACE && c->n->opset >= 11 &&
        (rc = eng_attr_choice(c, "mode", d2s_modes, 0, &mode)) < 0)
        return rc;
    b->crd = mode == 1;
    return 0;
}

static int check_block(const eng_node *n, rouse_errbuf *eb)
{
    const eng_block_attrs *b = &n->attrs.shape.block;
    if (b->blocksize < 1 || b->blocksize > INT32_MAX)
        return sx_attr_bad(n, eb, "blocksize", "must be between 1 and 2^31-1, got %lld",
                           (long long)b->blocksize);
    if (b->crd != 0 && b->crd != 1) return sx_attr_bad(n, eb, "mode", "has a bad value %d", b->crd);
    if (b->crd && n->op != ENG_OP_DEPTH_TO_SPACE)
        return sx_attr_bad(n, eb, "mode", "applies to DepthToSpace only");
    return 0;
}

static int infer_block(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    int64_t b = c->res->shape.block.blocksize, y[4];
    char s[160];
    if (x->rank != 4)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'input' must be 4-D, has rank %d",
                              x->rank);
    if (c->n->op == ENG_OP_DEPTH_TO_SPACE) {
        if (x->shape[1] % (b * b) || x->shape[2] > INT64_MAX / b || x->shape[3] > INT64_MAX / b)
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "input 'input' %s: channels are not a multiple of blocksize^2 "
                                  "(%lld)",
                                  shape_text(s, sizeof(s), x), (long long)(b * b));
        y[0] = x->shape[0];
        y[1] = x->shape[1] / (b * b);
        y[2] = x->shape[2] * b;
        y[3] = x->shape[3] * b;
    } else {
        if (x->shape[2] % b || x->shape[3] % b || x->shape[1] > INT64_MAX / (b * b))
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "input 'input' %s: height and width are not multiples of "
                                  "blocksize %lld",
                                  shape_text(s, sizeof(s), x), (long long)b);
        y[0] = x->shape[0];
        y[1] = x->shape[1] * b * b;
        y[2] = x->shape[2] / b;
        y[3] = x->shape[3] / b;
    }
    eng_infer_set_out(c, 0, x->dtype, 4, y);
    return 0;
}

/* Both ops are a 6-D transposed copy: the output is viewed as six dims
 * whose row-major order is the output's, each with its input stride. */
static int run_block(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)eb;
    const eng_tensor *x = in[0];
    int64_t b = a->shape.block.blocksize;
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t sC = H * W, sN = C * sC, shape[6], st[6];
    if (eng_tensor_numel(x) == 0) return 0;
    if (nd->op == ENG_OP_DEPTH_TO_SPACE) {
        /* out[n, c, h*b + i, w*b + j], viewed as (n, c, h, i, w, j). */
        int64_t Cb = C / (b * b);
        int64_t sc = a->shape.block.crd ? b * b * sC : sC;      /* CRD: c*b*b + i*b + j */
        int64_t si = a->shape.block.crd ? b * sC : b * Cb * sC; /* DCR: (i*b + j)*Cb + c */
        int64_t sj = a->shape.block.crd ? sC : Cb * sC;
        int64_t sh[6] = {N, Cb, H, b, W, b}, ss[6] = {sN, sc, W, si, 1, sj};
        memcpy(shape, sh, sizeof(sh));
        memcpy(st, ss, sizeof(ss));
    } else {
        /* out[n, (i*b + j)*C + c, h, w] = in[n, c, h*b + i, w*b + j],
         * viewed as (n, i, j, c, h, w). */
        int64_t sh[6] = {N, b, b, C, H / b, W / b}, ss[6] = {sN, W, 1, sC, b * W, b};
        memcpy(shape, sh, sizeof(sh));
        memcpy(st, ss, sizeof(ss));
    }
    sx_copy_strided(6, shape, st, 0, eng_dtype_size(x->dtype), x->data, out[0]->data);
    return 0;
}

/* --- descriptors ------------------------------------------------------------ */

static const eng_op_desc op_slice = {
    .op = ENG_OP_SLICE,
    .name = "Slice",
    .since = 1,
    .min_in = 3,
    .max_in = 5,
    .max_out = 1,
    .in_names = {"data", "starts", "ends", "axes", "steps"},
    .dtypes = ENG_DTM_ANY,
    .value_inputs = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4),
    .counts = counts_slice,
    .parse = parse_slice,
    .check = check_slice,
    .infer = infer_slice,
    .run = run_slice,
};

static const eng_op_desc op_split = {
    .op = ENG_OP_SPLIT,
    .name = "Split",
    .since = 2,
    .min_in = 1,
    .max_in = 2,
    .max_out = ENG_SPLIT_MAX,
    .in_names = {"input", "split"},
    .dtypes = ENG_DTM_ANY,
    .value_inputs = 1u << 1,
    .counts = counts_split,
    .parse = parse_split,
    .check = check_split,
    .infer = infer_split,
    .run = run_split,
};

static const eng_op_desc op_pad = {
    .op = ENG_OP_PAD,
    .name = "Pad",
    .since = 2,
    .min_in = 2,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"data", "pads", "constant_value"},
    .dtypes = ENG_DTM_ANY,
    .value_inputs = 1u << 1,
    .counts = counts_pad,
    .parse = parse_pad,
    .check = check_pad,
    .infer = infer_pad,
    .run = run_pad,
};

static const eng_op_desc op_depth_to_space = {
    .op = ENG_OP_DEPTH_TO_SPACE,
    .name = "DepthToSpace",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"input"},
    .dtypes = ENG_DTM_ANY,
    .parse = parse_block,
    .check = check_block,
    .infer = infer_block,
    .run = run_block,
};

static const eng_op_desc op_space_to_depth = {
    .op = ENG_OP_SPACE_TO_DEPTH,
    .name = "SpaceToDepth",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"input"},
    .dtypes = ENG_DTM_ANY,
    .parse = parse_block,
    .check = check_block,
    .infer = infer_block,
    .run = run_block,
};

const eng_op_desc *const eng_ops_shape_slice[] = {
    &op_slice, &op_split, &op_pad, &op_depth_to_space, &op_space_to_depth, NULL,
};
