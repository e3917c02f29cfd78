/*
 * Operator descriptors of the spatial family, resampling part (see
 * engine/op.h): Resize (opsets 10, 11, 13) and Upsample (opsets 7 and 9).
 * ConvTranspose and the extra pools are in spatial_conv.c.
 *
 * Guarantees: output extents are floor(input * scale) or the given sizes;
 * every coordinate transformation mode of opset 13 (half_pixel,
 * pytorch_half_pixel, align_corners, asymmetric, tf_half_pixel_for_nn,
 * tf_crop_and_resize) with nearest (four rounding rules), n-linear and
 * n-cubic interpolation (cubic_coeff_a, exclude_outside) follows the ONNX
 * reference: neighbours outside the input read its edge, and
 * tf_crop_and_resize writes extrapolation_value where a coordinate falls
 * outside. Resize-10 and Upsample use the older rule (asymmetric
 * coordinates; nearest floors when enlarging and ceils when shrinking).
 * Sampling positions are computed per dim in double. Scales and sizes must
 * be known when the model is prepared (constants or graph inputs); roi is
 * read when the node runs.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/op.h"
#include "engine/ops/elem.h"


/* Output extents above this are refused: no image or feature map is that
 * large, and it keeps floor(in * scale) exact in double. */
#define RESIZE_MAX_DIM ((int64_t)1 << 40)

static const char *const resize_modes[] = {"nearest", "linear", "cubic", NULL};
static const char *const coord_modes[] = {
    "half_pixel", "pytorch_half_pixel",   "align_corners",
    "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize",
    NULL};
static const char *const nearest_modes[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                            "ceil", NULL};

static int parse_resize(const eng_attr_ctx *c, eng_attrs *a)
{
    eng_resize_attrs *r = &a->spatial.resize;
    int rc;
    r->n_scales = -1;
    r->cubic_a = -0.75f;
    if (c->n->opset < 11) {
        static const char *const old_modes[] = {"nearest", "linear", NULL};
        r->coord = ENG_COORD_ASYMMETRIC;
        r->nearest = ENG_NEAREST_SIMPLE;
        return eng_attr_choice(c, "mode", old_modes, ENG_RESIZE_NEAREST, &r->mode);
    }
    if ((rc = eng_attr_choice(c, "mode", resize_modes, ENG_RESIZE_NEAREST, &r->mode)) < 0 ||
        (rc = eng_attr_choice(c, "coordinate_transformation_mode", coord_modes,
                              ENG_COORD_HALF_PIXEL, &r->coord)) < 0 ||
        (rc = eng_attr_choice(c, "nearest_mode", nearest_modes, ENG_NEAREST_ROUND_PREFER_FLOOR,
                              &r->nearest)) < 0 ||
        (rc = eng_attr_finite(c, "cubic_coeff_a", -0.75f, &r->cubic_a)) < 0 ||
        (rc = eng_attr_flag(c, "exclude_outside", 0, &r->exclude_outside)) < 0 ||
        (rc = eng_attr_float(c, "extrapolation_value", 0.0f, &r->extrapolation)) < 0)
        return rc;
    return 0;
}

static int parse_upsample(const eng_attr_ctx *c, eng_attrs *a)
{
    static const char *const modes[] = {"nearest", "linear", "bilinear", NULL};
    eng_resize_attrs *r = &a->spatial.resize;
    int rc;
    if (c->n->opset >= 10)
        return eng_attr_err(c, ROUSE_EUNSUPPORTED, "mode",
                            "belongs to Upsample, which opset 10 removed (use Resize)");
    r->coord = ENG_COORD_ASYMMETRIC;
    r->nearest = ENG_NEAREST_SIMPLE;
    r->cubic_a = -0.75f;
    r->n_scales = -1;
    if ((rc = eng_attr_choice(c, "mode", modes, ENG_RESIZE_NEAREST, &r->mode)) < 0) return rc;
    if (r->mode == 2) r->mode = ENG_RESIZE_LINEAR;
    if (c->n->opset >= 9) return 0;
    float s[ENG_MAX_RANK];
    int n;
    if ((rc = eng_attr_floats(c, "scales", ENG_MAX_RANK, &n, s)) < 0) return rc;
    if (n < 1) return eng_attr_err(c, ROUSE_EFORMAT, "scales", "is required");
    for (int i = 0; i < n; i++)
        if (!(s[i] >= 1.0f) || !isfinite(s[i]))
            return eng_attr_err(c, ROUSE_EFORMAT, "scales", "must hold finite values >= 1");
    r->n_scales = n;
    for (int i = 0; i < n; i++)
        r->scales[i] = s[i];
    return 0;
}

static int check_resize(const eng_node *n, rouse_errbuf *eb)
{
    const eng_resize_attrs *r = &n->attrs.spatial.resize;
    if (r->mode < ENG_RESIZE_NEAREST || r->mode > ENG_RESIZE_CUBIC)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "mode", "has unknown value %d", r->mode);
    if (r->coord < ENG_COORD_HALF_PIXEL || r->coord > ENG_COORD_TF_CROP_AND_RESIZE)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "coordinate_transformation_mode",
                              "has unknown value %d", r->coord);
    if (r->nearest < ENG_NEAREST_ROUND_PREFER_FLOOR || r->nearest > ENG_NEAREST_SIMPLE)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "nearest_mode", "has unknown value %d",
                              r->nearest);
    if (r->exclude_outside != 0 && r->exclude_outside != 1)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "exclude_outside", "must be 0 or 1");
    if (!isfinite(r->cubic_a))
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "cubic_coeff_a", "must be finite");
    if (isnan(r->extrapolation))
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "extrapolation_value", "is NaN");
    if (r->n_scales < -1 || r->n_scales > ENG_MAX_RANK)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "scales", "has %d values", r->n_scales);
    for (int i = 0; i < r->n_scales; i++)
        if (!isfinite(r->scales[i]) || r->scales[i] <= 0)
            return eng_check_fail(n, eb, ROUSE_EFORMAT, "scales",
                                  "must hold positive finite values");
    return 0;
}

static void resize_counts(const eng_node *n, int *min_in, int *max_in, int *max_out)
{
    (void)max_out;
    if (n->op == ENG_OP_UPSAMPLE) {
        *min_in = *max_in = n->opset >= 9 ? 2 : 1;
    } else if (n->opset < 11) {
        *min_in = *max_in = 2;
    } else if (n->opset < 13) {
        *min_in = 3;
    }
}

/* The float values of input i (float, double or float16), known at prepare. */
static int read_floats(eng_infer_ctx *c, int i, const char *name, int max, int *count, double *vals)
{
    const eng_tensor *t = eng_infer_input(c, i);
    *count = 0;
    if (t->dtype != ENG_DT_FLOAT && t->dtype != ENG_DT_DOUBLE && t->dtype != ENG_DT_FLOAT16)
        return eng_infer_fail(c, ROUSE_EFORMAT, "input '%s' must be float, got %s", name,
                              eng_dtype_name(t->dtype));
    int64_t n = eng_tensor_numel(t);
    if (n < 0 || n > max)
        return eng_infer_fail(c, ROUSE_EFORMAT, "input '%s' has %lld values, expected %d", name,
                              (long long)n, max);
    if (n && !t->data)
        return eng_infer_fail(c, ROUSE_EUNSUPPORTED,
                              "input '%s' must be known when the model is prepared (a constant "
                              "or a graph input)",
                              name);
    for (int64_t k = 0; k < n; k++)
        vals[k] = elem_get_f(t->dtype, t->data, k);
    *count = (int)n;
    return 0;
}

static int infer_resize(eng_infer_ctx *c)
{
    const eng_tensor *x = c->in[0];
    eng_resize_attrs *r = &c->res->spatial.resize;
    int rank = x->rank, rc;
    double scales[ENG_MAX_RANK];
    int64_t sizes[ENG_MAX_RANK], out[ENG_MAX_RANK];
    int n_scales = -1, n_sizes = -1;

    if (rank < 1)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "input 'X' must have rank >= 1, got a scalar");
    const bool old = c->n->op == ENG_OP_UPSAMPLE || c->n->opset < 11;
    if (old && r->n_scales >= 0) {
        n_scales = r->n_scales; /* Upsample-7 attribute */
        for (int i = 0; i < n_scales; i++)
            scales[i] = r->scales[i];
    } else if (old) {
        if ((rc = read_floats(c, 1, "scales", rank, &n_scales, scales)) < 0) return rc;
    } else {
        const eng_tensor *ts = eng_infer_input(c, 2), *tz = eng_infer_input(c, 3);
        if (ts && eng_tensor_numel(ts) > 0 &&
            (rc = read_floats(c, 2, "scales", rank, &n_scales, scales)) < 0)
            return rc;
        if (tz && eng_tensor_numel(tz) > 0) {
            if (n_scales >= 0)
                return eng_infer_fail(
                    c, ROUSE_EFORMAT,
                    "inputs 'scales' and 'sizes' are both given; only one may be");
            if ((rc = eng_infer_read_ints(c, 3, rank, &n_sizes, sizes)) < 0) return rc;
        }
        if (n_scales < 0 && n_sizes < 0)
            return eng_infer_fail(c, ROUSE_EFORMAT,
                                  "one of inputs 'scales' and 'sizes' is required");
        const eng_tensor *roi = eng_infer_input(c, 1);
        if (r->coord == ENG_COORD_TF_CROP_AND_RESIZE &&
            (!roi || eng_tensor_numel(roi) != 2 * rank ||
             (roi->dtype != ENG_DT_FLOAT && roi->dtype != ENG_DT_DOUBLE &&
              roi->dtype != ENG_DT_FLOAT16)))
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "tf_crop_and_resize needs input 'roi' with %d float values",
                                  2 * rank);
    }
    if (n_scales >= 0 && n_scales != rank)
        return eng_infer_fail(c, ROUSE_EMISMATCH, "'scales' has %d values, input 'X' has rank %d",
                              n_scales, rank);
    if (n_sizes >= 0 && n_sizes != rank)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input 'sizes' has %d values, input 'X' has rank %d", n_sizes, rank);
    for (int i = 0; i < rank; i++) {
        int64_t in = x->shape[i];
        if (n_scales >= 0) {
            double s = scales[i];
            if (!isfinite(s) || s <= 0 || (c->n->op == ENG_OP_UPSAMPLE && s < 1))
                return eng_infer_fail(c, ROUSE_EFORMAT,
                                      "scale %g at dim %d is not a positive finite number%s", s, i,
                                      c->n->op == ENG_OP_UPSAMPLE ? " >= 1" : "");
            double o = floor((double)in * s);
            if (o > (double)RESIZE_MAX_DIM)
                return eng_infer_fail(c, ROUSE_ETOOBIG, "scale %g makes dim %d too large", s, i);
            out[i] = (int64_t)o;
        } else {
            if (sizes[i] < 0 || sizes[i] > RESIZE_MAX_DIM)
                return eng_infer_fail(c, ROUSE_EFORMAT,
                                      "input 'sizes' has invalid value %lld at %d",
                                      (long long)sizes[i], i);
            out[i] = sizes[i];
            scales[i] = in > 0 ? (double)sizes[i] / (double)in : 1.0;
        }
        if (out[i] > 0 && in == 0)
            return eng_infer_fail(c, ROUSE_EMISMATCH,
                                  "input 'X' is empty at dim %d, output would not be", i);
    }
    r->n_scales = rank;
    for (int i = 0; i < ENG_MAX_RANK; i++)
        r->scales[i] = i < rank ? scales[i] : 0;
    eng_infer_set_out(c, 0, x->dtype, rank, out);
    return 0;
}

/* --- kernel ----------------------------------------------------------------- */

typedef struct taps {
    int n;
    int64_t idx[4];
    double w[4];
    bool outside; /* tf_crop_and_resize: extrapolate */
} taps;

static double cubic_w(double a, double s) /* s = |distance| */
{
    if (s <= 1) return ((a + 2) * s - (a + 3)) * s * s + 1;
    if (s < 2) return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a;
    return 0;
}

static int64_t clampi(int64_t v, int64_t len)
{
    return v < 0 ? 0 : v >= len ? len - 1 : v;
}

/* Drops taps of weight 0 (a dim sampled at whole positions, such as an
 * unresized one, then costs one tap instead of two or four). */
static void compact(taps *t)
{
    int k = 0;
    for (int i = 0; i < t->n; i++) {
        if (t->w[i] == 0) continue;
        t->idx[k] = t->idx[i];
        t->w[k++] = t->w[i];
    }
    if (k == 0) { /* all weights 0: keep one tap, the sum is 0 either way */
        t->w[0] = 0;
        k = 1;
    }
    t->n = k;
}

/* The input taps of output coordinate o in one dim. */
static void dim_taps(const eng_resize_attrs *r, int64_t o, int64_t in, int64_t out, double scale,
                     double roi_lo, double roi_hi, taps *t)
{
    double x = (double)o, xo;
    switch (r->coord) {
    case ENG_COORD_PYTORCH_HALF_PIXEL:
        xo = out > 1 ? (x + 0.5) / scale - 0.5 : 0;
        break;
    case ENG_COORD_ALIGN_CORNERS:
        xo = out == 1 ? 0 : x * (double)(in - 1) / (double)(out - 1);
        break;
    case ENG_COORD_ASYMMETRIC:
        xo = x / scale;
        break;
    case ENG_COORD_TF_HALF_PIXEL_FOR_NN:
        xo = (x + 0.5) / scale;
        break;
    case ENG_COORD_TF_CROP_AND_RESIZE:
        xo = out > 1 ? roi_lo * (double)(in - 1) +
                           x * (roi_hi - roi_lo) * (double)(in - 1) / (double)(out - 1)
                     : 0.5 * (roi_lo + roi_hi) * (double)(in - 1);
        break;
    default:
        xo = (x + 0.5) / scale - 0.5;
        break;
    }
    t->outside = r->coord == ENG_COORD_TF_CROP_AND_RESIZE && (xo < 0 || xo > (double)(in - 1));
    double fl = floor(xo), frac = xo - fl;
    int64_t base = (int64_t)fl;
    if (r->mode == ENG_RESIZE_NEAREST) {
        int64_t k;
        switch (r->nearest) {
        case ENG_NEAREST_ROUND_PREFER_CEIL:
            k = frac >= 0.5 ? base + 1 : base;
            break;
        case ENG_NEAREST_FLOOR:
            k = base;
            break;
        case ENG_NEAREST_CEIL:
            k = frac > 0 ? base + 1 : base;
            break;
        case ENG_NEAREST_SIMPLE:
            k = scale < 1 ? (int64_t)ceil(xo) : (int64_t)trunc(xo);
            break;
        default:
            k = frac > 0.5 ? base + 1 : base;
            break;
        }
        t->n = 1;
        t->idx[0] = clampi(k, in);
        t->w[0] = 1;
        return;
    }
    if (r->mode == ENG_RESIZE_LINEAR) {
        t->n = 2;
        t->idx[0] = clampi(base, in);
        t->idx[1] = clampi(base + 1, in);
        t->w[0] = 1 - frac;
        t->w[1] = frac;
        compact(t);
        return;
    }
    double sum = 0;
    t->n = 4;
    for (int k = 0; k < 4; k++) {
        int64_t i = base - 1 + k;
        double w = cubic_w(r->cubic_a, fabs(xo - (double)i));
        if (r->exclude_outside && (i < 0 || i >= in)) w = 0;
        t->idx[k] = clampi(i, in);
        t->w[k] = w;
        sum += w;
    }
    if (r->exclude_outside && sum != 0)
        for (int k = 0; k < 4; k++)
            t->w[k] /= sum;
    compact(t);
}

/* Element i of x as a double; float read directly. */
static inline double ld(const eng_tensor *x, int64_t i)
{
    return x->dtype == ENG_DT_FLOAT ? ((const float *)x->data)[i]
                                    : elem_get_f(x->dtype, x->data, i);
}

static inline void st(eng_tensor *y, int64_t i, double v)
{
    if (y->dtype == ENG_DT_FLOAT)
        ((float *)y->data)[i] = (float)v;
    else
        elem_set_rounded(y->dtype, y->data, i, v);
}

/* Advances the output index idx over dims [0, n_dims) and recomputes the
 * taps of every dim that moved. */
static void next_index(const eng_resize_attrs *r, const eng_tensor *x, const eng_tensor *y,
                       const double *roi, int n_dims, int64_t *idx, taps *t)
{
    int rank = x->rank;
    for (int d = n_dims - 1; d >= 0; d--) {
        bool carry = ++idx[d] == y->shape[d];
        if (carry) idx[d] = 0;
        dim_taps(r, idx[d], x->shape[d], y->shape[d], r->scales[d], roi[d], roi[rank + d], &t[d]);
        if (!carry) break;
    }
}

/* Every output element as the sum over the product of all dims' taps. t
 * holds the taps of output element 0. */
static void resize_elems(const eng_resize_attrs *r, const eng_tensor *x, eng_tensor *y,
                         const int64_t *xstr, const double *roi, taps *t)
{
    const int rank = x->rank;
    const int64_t n = eng_tensor_numel(y);
    int64_t idx[ENG_MAX_RANK] = {0};
    for (int64_t e = 0; e < n; e++) {
        bool outside = false;
        int64_t cnt = 1;
        for (int d = 0; d < rank; d++) {
            outside |= t[d].outside;
            cnt *= t[d].n;
        }
        double acc = 0;
        if (outside) {
            acc = r->extrapolation;
        } else {
            int k[ENG_MAX_RANK] = {0};
            for (int64_t q = 0; q < cnt; q++) {
                double w = 1;
                int64_t off = 0;
                for (int d = 0; d < rank; d++) {
                    w *= t[d].w[k[d]];
                    off += t[d].idx[k[d]] * xstr[d];
                }
                acc += w * ld(x, off);
                for (int d = rank - 1; d >= 0; d--) {
                    if (++k[d] < t[d].n) break;
                    k[d] = 0;
                }
            }
        }
        st(y, e, acc);
        next_index(r, x, y, roi, rank, idx, t);
    }
}

enum { ROW_TAPS = 256, LAST_TAPS = 256 };

/* Row by row (all dims but the last): the input rows a row reads, with
 * their weights, are gathered once, and the last dim's taps computed once
 * for all rows (when the extent allows). False, with nothing written, when
 * a row reads more than ROW_TAPS input rows: resize_elems then runs. */
static bool resize_rows(const eng_resize_attrs *r, const eng_tensor *x, eng_tensor *y,
                        const int64_t *xstr, const double *roi, taps *t)
{
    const int rank = x->rank, last = rank - 1;
    const int64_t ylast = y->shape[last], xlast = x->shape[last];
    const int64_t rows = eng_tensor_numel(y) / ylast;
    int64_t cnt = 1;
    for (int d = 0; d < last; d++)
        cnt *= 4; /* the most taps a dim can have */
    if (cnt > ROW_TAPS) return false;
    taps lt[LAST_TAPS];
    const bool cached = ylast <= LAST_TAPS;
    for (int64_t o = 0; cached && o < ylast; o++)
        dim_taps(r, o, xlast, ylast, r->scales[last], roi[last], roi[rank + last], &lt[o]);
    int64_t idx[ENG_MAX_RANK] = {0};
    for (int64_t row = 0; row < rows; row++) {
        int64_t roff[ROW_TAPS];
        double rw[ROW_TAPS];
        int nr = 0, k[ENG_MAX_RANK] = {0};
        bool outside = false;
        int64_t combos = 1;
        for (int d = 0; d < last; d++) {
            outside |= t[d].outside;
            combos *= t[d].n;
        }
        for (int64_t q = 0; q < combos; q++) {
            double w = 1;
            int64_t off = 0;
            for (int d = 0; d < last; d++) {
                w *= t[d].w[k[d]];
                off += t[d].idx[k[d]] * xstr[d];
            }
            roff[nr] = off;
            rw[nr++] = w;
            for (int d = last - 1; d >= 0; d--) {
                if (++k[d] < t[d].n) break;
                k[d] = 0;
            }
        }
        for (int64_t o = 0; o < ylast; o++) {
            taps one;
            const taps *tl = &lt[o];
            if (!cached) {
                dim_taps(r, o, xlast, ylast, r->scales[last], roi[last], roi[rank + last], &one);
                tl = &one;
            }
            double acc = 0;
            if (outside || tl->outside) {
                acc = r->extrapolation;
            } else {
                for (int i = 0; i < nr; i++) {
                    double sum = 0;
                    for (int j = 0; j < tl->n; j++)
                        sum += tl->w[j] * ld(x, roff[i] + tl->idx[j]);
                    acc += rw[i] * sum;
                }
            }
            st(y, row * ylast + o, acc);
        }
        next_index(r, x, y, roi, last, idx, t);
    }
    return true;
}

static int run_resize(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                      eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_resize_attrs *r = &a->spatial.resize;
    const eng_tensor *x = in[0];
    eng_tensor *y = out[0];
    const int rank = x->rank;
    double roi[2 * ENG_MAX_RANK];
    if (elem_kind(x->dtype) == ELEM_NONE)
        return eng_run_fail(nd, eb, ROUSE_EUNSUPPORTED, "element type %s is not supported",
                            eng_dtype_name(x->dtype));
    if (r->n_scales != rank || y->rank != rank)
        return eng_run_fail(nd, eb, ROUSE_EINTERNAL, "scales were not resolved");
    for (int i = 0; i < 2 * rank; i++)
        roi[i] = i < rank ? 0 : 1;
    if (r->coord == ENG_COORD_TF_CROP_AND_RESIZE) {
        const eng_tensor *t = nd->n_in > 1 ? in[1] : NULL;
        if (!t || eng_tensor_numel(t) != 2 * rank || !t->data)
            return eng_run_fail(nd, eb, ROUSE_EMISMATCH,
                                "input 'roi' must hold %d values for tf_crop_and_resize", 2 * rank);
        for (int i = 0; i < 2 * rank; i++) {
            roi[i] = elem_get_f(t->dtype, t->data, i);
            if (!isfinite(roi[i]))
                return eng_run_fail(nd, eb, ROUSE_EINVAL, "input 'roi' holds a non-finite value");
        }
    }
    int64_t n = eng_tensor_numel(y);
    if (n == 0) return 0;

    int64_t xstr[ENG_MAX_RANK];
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        xstr[d] = s;
        s *= x->shape[d];
    }
    taps t[ENG_MAX_RANK];
    for (int d = 0; d < rank; d++)
        dim_taps(r, 0, x->shape[d], y->shape[d], r->scales[d], roi[d], roi[rank + d], &t[d]);
    if (rank == 1 || !resize_rows(r, x, y, xstr, roi, t)) resize_elems(r, x, y, xstr, roi, t);
    return 0;
}

static const eng_op_desc op_resize = {
    .op = ENG_OP_RESIZE,
    .name = "Resize",
    .since = 10,
    .min_in = 1,
    .max_in = 4,
    .max_out = 1,
    .in_names = {"X", "roi", "scales", "sizes"},
    .dtypes = ENG_DTM_NUMERIC,
    .value_inputs = (1u << 1) | (1u << 2) | (1u << 3),
    .counts = resize_counts,
    .parse = parse_resize,
    .check = check_resize,
    .infer = infer_resize,
    .run = run_resize,
};

static const eng_op_desc op_upsample = {
    .op = ENG_OP_UPSAMPLE,
    .name = "Upsample",
    .since = 7,
    .min_in = 1,
    .max_in = 2,
    .max_out = 1,
    .in_names = {"X", "scales"},
    .dtypes = ENG_DTM_NUMERIC,
    .value_inputs = 1u << 1,
    .counts = resize_counts,
    .parse = parse_upsample,
    .check = check_resize,
    .infer = infer_resize,
    .run = run_resize,
};

const eng_op_desc *const eng_ops_spatial[] = {
    &op_resize,
    &op_upsample,
    NULL,
};
