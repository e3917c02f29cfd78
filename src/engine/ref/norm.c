/*
 * Reference normalisations: BatchNormalization in inference mode, the
 * fused LayerNorm, and Softmax (both the opset >= 13 single-axis form and
 * the legacy coerce-to-2-D form). Intermediate values are computed in
 * double.
 */
#include "engine/ref/ref.h"

#include <math.h>

#include "rouse/err.h"

/* A per-channel parameter: float, 1-D, one value per channel. */
static bool bn_param_ok(const eng_tensor *t, int64_t c)
{
    return t->dtype == ENG_DT_FLOAT && t->rank == 1 && t->shape[0] == c;
}

int ref_batchnorm(float epsilon, const eng_tensor *x, const eng_tensor *scale,
                  const eng_tensor *bias, const eng_tensor *mean, const eng_tensor *var,
                  eng_tensor *y)
{
    if (x->dtype != ENG_DT_FLOAT || y->dtype != ENG_DT_FLOAT) return ROUSE_EUNSUPPORTED;
    if (x->rank < 2 || !eng_shape_equal(x->rank, x->shape, y->rank, y->shape))
        return ROUSE_EMISMATCH;
    const int64_t c = x->shape[1];
    if (!bn_param_ok(scale, c) || !bn_param_ok(bias, c) || !bn_param_ok(mean, c) ||
        !bn_param_ok(var, c))
        return ROUSE_EMISMATCH;

    const int64_t n = x->shape[0];
    const int64_t sp = eng_shape_numel(x->rank - 2, x->shape + 2);
    const float *xd = x->data, *sd = scale->data, *bd = bias->data, *md = mean->data,
                *vd = var->data;
    float *yd = y->data;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t ch = 0; ch < c; ch++) {
            const double inv_std = 1.0 / sqrt((double)vd[ch] + (double)epsilon);
            const int64_t base = (i * c + ch) * sp;
            for (int64_t s = 0; s < sp; s++)
                yd[base + s] =
                    (float)((double)sd[ch] * ((double)xd[base + s] - md[ch]) * inv_std + bd[ch]);
        }
    }
    return 0;
}

/* A LayerNorm parameter: NULL, one value, or one per element of the last dim. */
static bool ln_param_ok(const eng_tensor *t, int64_t last)
{
    if (!t) return true;
    int64_t n = eng_tensor_numel(t);
    return t->dtype == ENG_DT_FLOAT && t->rank <= 1 && (n == 1 || n == last);
}

int ref_layernorm(int64_t axis, float epsilon, const eng_tensor *x, const eng_tensor *scale,
                  const eng_tensor *bias, eng_tensor *y)
{
    if (x->dtype != ENG_DT_FLOAT || y->dtype != ENG_DT_FLOAT) return ROUSE_EUNSUPPORTED;
    if (!eng_shape_equal(x->rank, x->shape, y->rank, y->shape)) return ROUSE_EMISMATCH;
    if (x->rank < 1 || axis < 0 || axis >= x->rank) return ROUSE_EINVAL;
    const int64_t last = x->shape[x->rank - 1];
    if (!ln_param_ok(scale, last) || !ln_param_ok(bias, last)) return ROUSE_EMISMATCH;

    const int64_t outer = eng_shape_numel((int)axis, x->shape);
    const int64_t len = eng_shape_numel(x->rank - (int)axis, x->shape + axis);
    if (len == 0) return 0;
    const float *xd = x->data;
    const float *sd = scale ? scale->data : NULL, *bd = bias ? bias->data : NULL;
    const int64_t s_step = scale && eng_tensor_numel(scale) > 1;
    const int64_t b_step = bias && eng_tensor_numel(bias) > 1;
    float *yd = y->data;
    for (int64_t o = 0; o < outer; o++) {
        const float *xs = xd + o * len;
        float *ys = yd + o * len;
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < len; i++)
            mean += xs[i];
        mean /= (double)len;
        for (int64_t i = 0; i < len; i++)
            var += ((double)xs[i] - mean) * ((double)xs[i] - mean);
        var /= (double)len;
        const double inv_std = 1.0 / sqrt(var + (double)epsilon);
        for (int64_t i = 0; i < len; i++) {
            int64_t c = i % last;
            double v = ((double)xs[i] - mean) * inv_std;
            if (sd) v *= sd[c * s_step];
            if (bd) v += bd[c * b_step];
            ys[i] = (float)v;
        }
    }
    return 0;
}

int ref_softmax(int64_t axis, bool legacy, const eng_tensor *x, eng_tensor *y)
{
    if (x->dtype != ENG_DT_FLOAT || y->dtype != ENG_DT_FLOAT) return ROUSE_EUNSUPPORTED;
    if (!eng_shape_equal(x->rank, x->shape, y->rank, y->shape)) return ROUSE_EMISMATCH;
    /* A scalar has one element along its (only possible) axis 0. */
    if (axis < 0 || (x->rank > 0 && axis >= x->rank) || (x->rank == 0 && axis != 0))
        return ROUSE_EINVAL;

    /* The input is viewed as [outer, len, inner]; softmax runs along len. */
    const int r = x->rank, ax = (int)axis;
    const int64_t outer = eng_shape_numel(ax, x->shape);
    int64_t len, inner;
    if (legacy) {
        len = eng_shape_numel(r - ax, x->shape + ax);
        inner = 1;
    } else {
        len = r > 0 ? x->shape[ax] : 1;
        inner = r > 0 ? eng_shape_numel(r - ax - 1, x->shape + ax + 1) : 1;
    }

    const float *xd = x->data;
    float *yd = y->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t in = 0; in < inner; in++) {
            const float *xs = xd + o * len * inner + in;
            float *ys = yd + o * len * inner + in;
            /* Subtracting the max keeps every exp() at or below 1. */
            double mx = -INFINITY;
            for (int64_t i = 0; i < len; i++)
                if (xs[i * inner] > mx) mx = xs[i * inner];
            double sum = 0.0;
            for (int64_t i = 0; i < len; i++)
                sum += exp((double)xs[i * inner] - mx);
            for (int64_t i = 0; i < len; i++)
                ys[i * inner] = (float)(exp((double)xs[i * inner] - mx) / sum);
        }
    }
    return 0;
}
