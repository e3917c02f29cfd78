/*
 * Operator descriptors of the spatial family, window part (see
 * engine/op.h): ConvTranspose (1-D, 2-D, 3-D; groups, strides, dilations,
 * pads, output_padding, output_shape, auto_pad), GlobalMaxPool, LpPool and
 * GlobalLpPool. Resize and Upsample are in spatial.c.
 *
 * Guarantees: ConvTranspose's output extent is
 * stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1 - pads,
 * or output_shape (or in * stride with SAME_*), the total padding then
 * split as the ONNX spec says (the odd unit at the end for SAME_UPPER, at
 * the start otherwise); the reference kernel gathers every output element
 * from the input positions that reach it and sums in double. LpPool counts
 * padding as zeros. Float, double, float16 and bfloat16 (through double).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/op.h"
#include "engine/ops/elem.h"
#include "engine/ops/window.h"
#include "engine/ref/ref_util.h"

static int check_float_elem(const eng_node *nd, const eng_tensor *t, rouse_errbuf *eb)
{
    if (t->dtype == ENG_DT_FLOAT || t->dtype == ENG_DT_DOUBLE || t->dtype == ENG_DT_FLOAT16 ||
        t->dtype == ENG_DT_BFLOAT16)
        return 0;
    return eng_run_fail(nd, eb, ROUSE_EUNSUPPORTED, "element type %s is not supported",
                        eng_dtype_name(t->dtype));
}

/* --- ConvTranspose ------------------------------------------------------------ */

static int parse_convtr(const eng_attr_ctx *c, eng_attrs *at)
{
    eng_convtr_attrs *a = &at->spatial.convtr;
    enum { MAXV = ENG_MAX_RANK };
    int64_t v[MAXV];
    int n, rc;
    char what[128];
    if ((rc = window_parse(c, &a->w, false, true, true)) < 0) return rc;
    if ((rc = eng_attr_ints(c, "output_padding", MAXV, &n, v)) < 0) return rc;
    if (n >= 0) {
        if (n < 1 || n > ENG_MAX_SPATIAL || (a->w.n_spatial && n != a->w.n_spatial)) {
            snprintf(what, sizeof(what), "has %d values for %d spatial dims", n, a->w.n_spatial);
            return eng_attr_err(c, ROUSE_EFORMAT, "output_padding", what);
        }
        a->w.n_spatial = n;
        for (int i = 0; i < n; i++) {
            if (v[i] < 0 || v[i] > OPS_MAX_DIM)
                return eng_attr_err(c, ROUSE_EFORMAT, "output_padding",
                                    "holds a negative or too large value");
            a->output_padding[i] = v[i];
        }
    }
    if ((rc = eng_attr_ints(c, "output_shape", MAXV, &n, v)) < 0) return rc;
    if (n >= 0) {
        /* Spatial dims only, or N and C first as some exporters write. */
        int skip = n > ENG_MAX_SPATIAL || (a->w.n_spatial && n == a->w.n_spatial + 2) ? 2 : 0;
        int ns = n - skip;
        if (ns < 1 || ns > ENG_MAX_SPATIAL || (a->w.n_spatial && ns != a->w.n_spatial)) {
            snprintf(what, sizeof(what), "has %d values for %d spatial dims", n, a->w.n_spatial);
            return eng_attr_err(c, ROUSE_EFORMAT, "output_shape", what);
        }
        a->w.n_spatial = ns;
        a->n_output_shape = ns;
        for (int i = 0; i < ns; i++) {
            if (v[skip + i] < 1 || v[skip + i] > OPS_MAX_DIM)
                return eng_attr_err(c, ROUSE_EFORMAT, "output_shape",
                                    "holds a value below 1 or too large");
            a->output_shape[i] = v[skip + i];
        }
    }
    return 0;
}

static int check_convtr(const eng_node *n, rouse_errbuf *eb)
{
    const eng_convtr_attrs *a = &n->attrs.spatial.convtr;
    int rc = window_check(n, eb, &a->w, false);
    if (rc < 0) return rc;
    if (a->n_output_shape != 0 && a->n_output_shape != a->w.n_spatial)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "output_shape", "has %d values for %d dims",
                              a->n_output_shape, a->w.n_spatial);
    for (int i = 0; i < ENG_MAX_SPATIAL; i++) {
        if (a->output_padding[i] < 0 || a->output_padding[i] > OPS_MAX_DIM)
            return eng_check_fail(n, eb, ROUSE_EFORMAT, "output_padding",
                                  "has invalid value %lld at index %d",
                                  (long long)a->output_padding[i], i);
        if (i < a->n_output_shape && (a->output_shape[i] < 1 || a->output_shape[i] > OPS_MAX_DIM))
            return eng_check_fail(n, eb, ROUSE_EFORMAT, "output_shape",
                                  "has invalid value %lld at index %d",
                                  (long long)a->output_shape[i], i);
    }
    return 0;
}

static int infer_convtr(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0], *w = c->in[1], *b = eng_infer_input(c, 2);
    eng_convtr_attrs *a = &c->res->spatial.convtr;
    int rc;
    if ((rc = eng_infer_same_dtype(c, 1, 0)) < 0) return rc;
    if (b && (rc = eng_infer_same_dtype(c, 2, 0)) < 0) return rc;
    int r = x->rank, ns = r - 2;
    if (r < 3 || ns > ENG_MAX_SPATIAL)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                              "input 'X' must have rank 3 to %d ([N, C, D...]), got %d",
                              ENG_MAX_SPATIAL + 2, r);
    if (a->w.n_spatial && a->w.n_spatial != ns)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "attributes describe %d spatial dims, input 'X' has %d",
                              a->w.n_spatial, ns);
    if (w->rank != r)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'W' has rank %d, input 'X' has rank %d",
                              w->rank, r);
    for (int i = 0; i < ns; i++) {
        int64_t k = w->shape[2 + i];
        if (k < 1 || k > OPS_MAX_DIM)
            return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'W' has an invalid kernel size %lld",
                                  (long long)k);
        if (a->w.kernel[i] && a->w.kernel[i] != k)
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "attribute 'kernel_shape' disagrees with input 'W' at spatial "
                                  "dim %d (%lld vs %lld)",
                                  i, (long long)a->w.kernel[i], (long long)k);
        a->w.kernel[i] = k;
    }
    a->w.n_spatial = ns;
    int64_t ch = x->shape[1], g = a->w.group, mg = w->shape[1], m;
    if (w->shape[0] != ch)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'X' has %lld channels, input 'W' %lld",
                              (long long)ch, (long long)w->shape[0]);
    if (ch % g)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'X' has %lld channels, not a multiple of group %lld",
                              (long long)ch, (long long)g);
    if (__builtin_mul_overflow(mg, g, &m) || m > OPS_MAX_DIM)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "too many output channels");
    if (b && (b->rank != 1 || b->shape[0] != m))
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'B' must have shape [%lld]", (long long)m);

    int64_t y[ENG_MAX_RANK] = {x->shape[0], m};
    for (int i = 0; i < ns; i++) {
        int64_t in = x->shape[2 + i], s = a->w.stride[i], d = a->w.dilation[i];
        int64_t op = a->output_padding[i];
        int64_t ext = (a->w.kernel[i] - 1) * d + 1;
        if (op >= s && op >= d)
            return eng_infer_fail(c, ROUSE_EFORMAT,
                                  "attribute 'output_padding' %lld at spatial dim %d must be "
                                  "smaller than the stride or the dilation",
                                  (long long)op, i);
        if (in > OPS_MAX_DIM)
            return eng_infer_fail(c, ROUSE_ETOOBIG, "input 'X' is too large at spatial dim %d", i);
        int64_t full = s * (in > 0 ? in - 1 : 0) + op + ext; /* below 2^63: factors below 2^31 */
        int64_t want = -1;
        if (a->n_output_shape)
            want = a->output_shape[i];
        else if (a->w.auto_pad == ENG_AUTOPAD_SAME_UPPER || a->w.auto_pad == ENG_AUTOPAD_SAME_LOWER)
            want = in * s;
        if (want >= 0) {
            int64_t total = full - want, small = total / 2, big = total - total / 2;
            bool upper = a->w.auto_pad == ENG_AUTOPAD_SAME_UPPER;
            a->w.pad_begin[i] = upper ? small : big;
            a->w.pad_end[i] = upper ? big : small;
            y[2 + i] = want;
        } else {
            if (a->w.auto_pad == ENG_AUTOPAD_VALID) a->w.pad_begin[i] = a->w.pad_end[i] = 0;
            y[2 + i] = full - a->w.pad_begin[i] - a->w.pad_end[i];
            if (y[2 + i] < 1)
                return eng_infer_fail(c, ROUSE_EMISMATCH,
                                      "pads leave no output at spatial dim %d (%lld)", i,
                                      (long long)y[2 + i]);
        }
    }
    a->w.auto_pad = ENG_AUTOPAD_NOTSET;
    eng_infer_set_out(c, 0, x->dtype, r, y);
    return 0;
}

static int run_convtr(const eng_node *nd, const eng_attrs *at, const eng_tensor *const *in,
                      eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_convtr_attrs *a = &at->spatial.convtr;
    const eng_tensor *x = in[0], *w = in[1], *b = nd->n_in > 2 ? in[2] : NULL;
    eng_tensor *y = out[0];
    int rc;
    if ((rc = check_float_elem(nd, x, eb)) < 0) return rc;
    int ns = a->w.n_spatial, lead = 3 - ns;
    if (ns < 1 || ns > 3 || x->rank != ns + 2 || w->rank != ns + 2 || y->rank != ns + 2)
        return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "shapes were not resolved");
    /* Everything as three spatial dims with leading unit dims. */
    int64_t xi[3], yo[3], k[3], s[3], d[3], pb[3];
    for (int i = 0; i < 3; i++) {
        int j = i - lead;
        bool u = j < 0;
        xi[i] = u ? 1 : x->shape[2 + j];
        yo[i] = u ? 1 : y->shape[2 + j];
        k[i] = u ? 1 : w->shape[2 + j];
        s[i] = u ? 1 : a->w.stride[j];
        d[i] = u ? 1 : a->w.dilation[j];
        pb[i] = u ? 0 : a->w.pad_begin[j];
    }
    const int64_t n_img = x->shape[0], ch = x->shape[1], g = a->w.group;
    const int64_t cg = ch / g, m = y->shape[1], mg = m / g;
    const int64_t in_sp = xi[0] * xi[1] * xi[2], out_sp = yo[0] * yo[1] * yo[2];
    const int64_t k_sp = k[0] * k[1] * k[2];
    const bool fast = x->dtype == ENG_DT_FLOAT; /* W has x's type */
    for (int64_t n = 0; n < n_img; n++)
        for (int64_t oc = 0; oc < m; oc++) {
            int64_t gi = oc / mg, mo = oc % mg;
            double bias = b ? elem_get_f(b->dtype, b->data, oc) : 0;
            for (int64_t o = 0; o < out_sp; o++) {
                int64_t op[3] = {o / (yo[1] * yo[2]), (o / yo[2]) % yo[1], o % yo[2]};
                double acc = bias;
                for (int64_t k0 = 0; k0 < k[0]; k0++) {
                    int64_t t0 = op[0] + pb[0] - k0 * d[0];
                    if (t0 < 0 || t0 % s[0] || t0 / s[0] >= xi[0]) continue;
                    for (int64_t k1 = 0; k1 < k[1]; k1++) {
                        int64_t t1 = op[1] + pb[1] - k1 * d[1];
                        if (t1 < 0 || t1 % s[1] || t1 / s[1] >= xi[1]) continue;
                        for (int64_t k2 = 0; k2 < k[2]; k2++) {
                            int64_t t2 = op[2] + pb[2] - k2 * d[2];
                            if (t2 < 0 || t2 % s[2] || t2 / s[2] >= xi[2]) continue;
                            int64_t xoff = ((t0 / s[0]) * xi[1] + t1 / s[1]) * xi[2] + t2 / s[2];
                            int64_t koff = (k0 * k[1] + k1) * k[2] + k2;
                            int64_t xo = (n * ch + gi * cg) * in_sp + xoff;
                            int64_t wo = (gi * cg * mg + mo) * k_sp + koff;
                            if (fast) {
                                const float *xf = (const float *)x->data + xo;
                                const float *wf = (const float *)w->data + wo;
                                for (int64_t ci = 0; ci < cg; ci++)
                                    acc += (double)xf[ci * in_sp] * (double)wf[ci * mg * k_sp];
                                continue;
                            }
                            for (int64_t ci = 0; ci < cg; ci++)
                                acc += elem_get_f(x->dtype, x->data, xo + ci * in_sp) *
                                       elem_get_f(w->dtype, w->data, wo + ci * mg * k_sp);
                        }
                    }
                }
                elem_set_rounded(y->dtype, y->data, (n * m + oc) * out_sp + o, acc);
            }
        }
    return 0;
}

/* --- pools ------------------------------------------------------------------ */

static int infer_global(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    if (x->rank < 3)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'X' must have rank >= 3 ([N, C, D...]), got %d", x->rank);
    int64_t y[ENG_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        y[i] = i < 2 ? x->shape[i] : 1;
        if (i >= 2 && x->shape[i] == 0)
            return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'X' is empty at dim %d", i);
    }
    eng_infer_set_out(c, 0, x->dtype, x->rank, y);
    return 0;
}

static int run_global_max(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                          eng_tensor *const *out, rouse_errbuf *eb)
{
    (void)a;
    const eng_tensor *x = in[0];
    int rc;
    if ((rc = check_float_elem(nd, x, eb)) < 0) return rc;
    int64_t nc = x->shape[0] * x->shape[1];
    int64_t sp = nc ? eng_tensor_numel(x) / nc : 0;
    for (int64_t i = 0; i < nc; i++) {
        double m = -INFINITY;
        for (int64_t j = 0; j < sp; j++) {
            double v = elem_get_f(x->dtype, x->data, i * sp + j);
            if (v > m || isnan(v)) m = v;
            if (isnan(v)) break;
        }
        elem_set_rounded(out[0]->dtype, out[0]->data, i, m);
    }
    return 0;
}

static int parse_p(const eng_attr_ctx *c, float *p)
{
    int rc;
    if (c->n->opset < 2) {
        if ((rc = eng_attr_finite(c, "p", 2.0f, p)) < 0) return rc;
    } else {
        int64_t v;
        if ((rc = eng_attr_int(c, "p", 2, &v)) < 0) return rc;
        if (v < 1 || v > 64) return eng_attr_err(c, ROUSE_EFORMAT, "p", "must be in 1..64");
        *p = (float)v;
    }
    if (!(*p >= 1.0f && *p <= 64.0f))
        return eng_attr_err(c, ROUSE_EFORMAT, "p", "must be in 1..64");
    return 0;
}

static int parse_lppool(const eng_attr_ctx *c, eng_attrs *at)
{
    eng_lppool_attrs *a = &at->spatial.lppool;
    int rc;
    if ((rc = window_parse(c, &a->w, true, false, false)) < 0) return rc;
    return parse_p(c, &a->p);
}

static int parse_global_lp(const eng_attr_ctx *c, eng_attrs *at)
{
    at->spatial.lppool.w.group = 1;
    for (int i = 0; i < ENG_MAX_SPATIAL; i++)
        at->spatial.lppool.w.stride[i] = at->spatial.lppool.w.dilation[i] = 1;
    return parse_p(c, &at->spatial.lppool.p);
}

static int check_lppool(const eng_node *n, rouse_errbuf *eb)
{
    const eng_lppool_attrs *a = &n->attrs.spatial.lppool;
    int rc = window_check(n, eb, &a->w, n->op == ENG_OP_LPPOOL);
    if (rc < 0) return rc;
    if (a->p >= 1.0f && a->p <= 64.0f) return 0;
    return eng_check_fail(n, eb, ROUSE_EFORMAT, "p", "must be in 1..64");
}

static int infer_lppool(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_lppool_attrs *a = &c->res->spatial.lppool;
    int r = x->rank, ns = r - 2, rc;
    if (ns != a->w.n_spatial)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "attribute 'kernel_shape' has %d dims, input 'X' has %d spatial dims",
                              a->w.n_spatial, ns < 0 ? 0 : ns);
    int64_t y[ENG_MAX_RANK] = {x->shape[0], x->shape[1]};
    for (int i = 0; i < ns; i++)
        if ((rc = window_out(c, i, x->shape[2 + i], a->w.kernel[i], a->w.stride[i], 1,
                             a->w.auto_pad, &a->w.pad_begin[i], &a->w.pad_end[i], &y[2 + i])) < 0)
            return rc;
    a->w.auto_pad = ENG_AUTOPAD_NOTSET;
    eng_infer_set_out(c, 0, x->dtype, r, y);
    return 0;
}

static double lp_root(double sum, double p)
{
    return p == 2 ? sqrt(sum) : p == 1 ? sum : pow(sum, 1.0 / p);
}

static double lp_term(double v, double p)
{
    v = fabs(v);
    return p == 2 ? v * v : p == 1 ? v : pow(v, p);
}

static int run_lppool(const eng_node *nd, const eng_attrs *at, const eng_tensor *const *in,
                      eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_lppool_attrs *a = &at->spatial.lppool;
    const eng_tensor *x = in[0];
    eng_tensor *y = out[0];
    int rc;
    if ((rc = check_float_elem(nd, x, eb)) < 0) return rc;
    const double p = a->p;
    ref_window win;
    int64_t dil[3] = {1, 1, 1};
    if (x->rank != a->w.n_spatial + 2 ||
        ref_window_init(&win, a->w.n_spatial, a->w.kernel, a->w.stride, dil, a->w.pad_begin,
                        a->w.pad_end, x->shape + 2, y->shape + 2) < 0)
        return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "window was not resolved");
    const int64_t nc = x->shape[0] * x->shape[1];
    const int64_t in_sp = win.in[0] * win.in[1] * win.in[2];
    const int64_t out_sp = win.out[0] * win.out[1] * win.out[2];
    for (int64_t i = 0; i < nc; i++)
        for (int64_t o = 0; o < out_sp; o++) {
            int64_t op[3] = {o / (win.out[1] * win.out[2]), (o / win.out[2]) % win.out[1],
                             o % win.out[2]};
            int64_t lo[3], hi[3];
            for (int d = 0; d < 3; d++)
                ref_window_taps(&win, d, op[d], &lo[d], &hi[d]);
            double sum = 0;
            for (int64_t k0 = lo[0]; k0 < hi[0]; k0++)
                for (int64_t k1 = lo[1]; k1 < hi[1]; k1++)
                    for (int64_t k2 = lo[2]; k2 < hi[2]; k2++) {
                        int64_t i0 = op[0] * win.stride[0] - win.pad_begin[0] + k0;
                        int64_t i1 = op[1] * win.stride[1] - win.pad_begin[1] + k1;
                        int64_t i2 = op[2] * win.stride[2] - win.pad_begin[2] + k2;
                        double v = elem_get_f(x->dtype, x->data,
                                              i * in_sp + (i0 * win.in[1] + i1) * win.in[2] + i2);
                        sum += lp_term(v, p);
                    }
            elem_set_rounded(y->dtype, y->data, i * out_sp + o, lp_root(sum, p));
        }
    return 0;
}

static int run_global_lp(const eng_node *nd, const eng_attrs *at, const eng_tensor *const *in,
                         eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_tensor *x = in[0];
    int rc;
    if ((rc = check_float_elem(nd, x, eb)) < 0) return rc;
    const double p = at->spatial.lppool.p;
    int64_t nc = x->shape[0] * x->shape[1];
    int64_t sp = nc ? eng_tensor_numel(x) / nc : 0;
    for (int64_t i = 0; i < nc; i++) {
        double sum = 0;
        for (int64_t j = 0; j < sp; j++)
            sum += lp_term(elem_get_f(x->dtype, x->data, i * sp + j), p);
        elem_set_rounded(out[0]->dtype, out[0]->data, i, lp_root(sum, p));
    }
    return 0;
}

static const eng_op_desc op_conv_transpose = {
    .op = ENG_OP_CONV_TRANSPOSE,
    .name = "ConvTranspose",
    .since = 1,
    .min_in = 2,
    .max_in = 3,
    .max_out = 1,
    .in_names = {"X", "W", "B"},
    .dtypes = ENG_DTM_FLOATS,
    .parse = parse_convtr,
    .check = check_convtr,
    .infer = infer_convtr,
    .run = run_convtr,
};

static const eng_op_desc op_global_maxpool = {
    .op = ENG_OP_GLOBAL_MAXPOOL,
    .name = "GlobalMaxPool",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = ENG_DTM_FLOATS,
    .infer = infer_global,
    .run = run_global_max,
};

static const eng_op_desc op_lppool = {
    .op = ENG_OP_LPPOOL,
    .name = "LpPool",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = ENG_DTM_FLOATS,
    .parse = parse_lppool,
    .check = check_lppool,
    .infer = infer_lppool,
    .run = run_lppool,
};

static const eng_op_desc op_global_lppool = {
    .op = ENG_OP_GLOBAL_LPPOOL,
    .name = "GlobalLpPool",
    .since = 1,
    .min_in = 1,
    .max_in = 1,
    .max_out = 1,
    .in_names = {"X"},
    .dtypes = ENG_DTM_FLOATS,
    .parse = parse_global_lp,
    .check = check_lppool,
    .infer = infer_global,
    .run = run_global_lp,
};

const eng_op_desc *const eng_ops_spatial_conv[] = {
    &op_conv_transpose, &op_global_maxpool, &op_lppool, &op_global_lppool, NULL,
};
