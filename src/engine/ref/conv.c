/*
 * Reference Conv (ONNX Conv): direct convolution over 1-D,
 * 2-D or 3-D spatial dims with groups, strides, dilations and asymmetric
 * explicit pads. Accumulates in double so that it can serve as the
 * yardstick for the oneDNN kernel.
 */
#include "engine/ref/ref.h"

#include "engine/ref/ref_util.h"
#include "rouse/err.h"

/* Checks the shapes the caller inferred against the contract in ref.h. */
static int conv_check(const eng_conv_attrs *a, const eng_tensor *x, const eng_tensor *w,
                      const eng_tensor *b, const eng_tensor *y, ref_window *win)
{
    int ns = a->n_spatial;
    if (ns < 1 || ns > ENG_MAX_SPATIAL) return ROUSE_EINVAL;
    if (x->rank != ns + 2 || w->rank != ns + 2 || y->rank != ns + 2) return ROUSE_EMISMATCH;
    int64_t c = x->shape[1], m = w->shape[0], g = a->group;
    if (g < 1 || c % g != 0 || m % g != 0 || w->shape[1] != c / g) return ROUSE_EMISMATCH;
    if (y->shape[0] != x->shape[0] || y->shape[1] != m) return ROUSE_EMISMATCH;
    if (b && (b->rank != 1 || b->shape[0] != m)) return ROUSE_EMISMATCH;
    for (int d = 0; d < ns; d++)
        if (a->kernel[d] != w->shape[2 + d]) return ROUSE_EMISMATCH;
    int rc = ref_window_init(win, ns, a->kernel, a->stride, a->dilation, a->pad_begin, a->pad_end,
                             x->shape + 2, y->shape + 2);
    if (rc < 0) return rc;
    for (int d = 0; d < 3; d++) {
        int64_t want =
            ref_window_out_dim(win->in[d], win->kernel[d], win->stride[d], win->dilation[d],
                               win->pad_begin[d], win->pad_end[d], false);
        if (win->out[d] != want) return ROUSE_EMISMATCH;
    }
    return 0;
}

/* One output channel of one image: y[o] = bias + sum over the group's input
 * channels and the kernel taps that fall inside the input. */
static void conv_channel(const ref_window *win, int64_t n_ch, const float *x, const float *w,
                         double bias, float *y)
{
    const int64_t in_sp = win->in[0] * win->in[1] * win->in[2];
    const int64_t k_sp = win->kernel[0] * win->kernel[1] * win->kernel[2];
    for (int64_t o0 = 0; o0 < win->out[0]; o0++) {
        int64_t lo0, hi0;
        ref_window_taps(win, 0, o0, &lo0, &hi0);
        for (int64_t o1 = 0; o1 < win->out[1]; o1++) {
            int64_t lo1, hi1;
            ref_window_taps(win, 1, o1, &lo1, &hi1);
            for (int64_t o2 = 0; o2 < win->out[2]; o2++) {
                int64_t lo2, hi2;
                ref_window_taps(win, 2, o2, &lo2, &hi2);
                const int64_t i2_0 = o2 * win->stride[2] - win->pad_begin[2];
                double acc = bias;
                for (int64_t c = 0; c < n_ch; c++) {
                    const float *xc = x + c * in_sp;
                    const float *wc = w + c * k_sp;
                    for (int64_t k0 = lo0; k0 < hi0; k0++) {
                        int64_t i0 =
                            o0 * win->stride[0] - win->pad_begin[0] + k0 * win->dilation[0];
                        for (int64_t k1 = lo1; k1 < hi1; k1++) {
                            int64_t i1 =
                                o1 * win->stride[1] - win->pad_begin[1] + k1 * win->dilation[1];
                            const float *xr = xc + (i0 * win->in[1] + i1) * win->in[2] + i2_0;
                            const float *wr = wc + (k0 * win->kernel[1] + k1) * win->kernel[2];
                            for (int64_t k2 = lo2; k2 < hi2; k2++)
                                acc += (double)wr[k2] * (double)xr[k2 * win->dilation[2]];
                        }
                    }
                }
                y[(o0 * win->out[1] + o1) * win->out[2] + o2] = (float)acc;
            }
        }
    }
}

int ref_conv(const eng_conv_attrs *a, const eng_tensor *x, const eng_tensor *w, const eng_tensor *b,
             eng_tensor *y)
{
    if (x->dtype != ENG_DT_FLOAT || w->dtype != ENG_DT_FLOAT || y->dtype != ENG_DT_FLOAT ||
        (b && b->dtype != ENG_DT_FLOAT))
        return ROUSE_EUNSUPPORTED;
    ref_window win;
    int rc = conv_check(a, x, w, b, y, &win);
    if (rc < 0) return rc;

    const int64_t n_img = x->shape[0], c = x->shape[1], m = y->shape[1];
    const int64_t cg = c / a->group, mg = m / a->group;
    const int64_t in_sp = win.in[0] * win.in[1] * win.in[2];
    const int64_t out_sp = win.out[0] * win.out[1] * win.out[2];
    const int64_t k_sp = win.kernel[0] * win.kernel[1] * win.kernel[2];
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *yd = y->data;
    for (int64_t n = 0; n < n_img; n++) {
        for (int64_t oc = 0; oc < m; oc++) {
            int64_t g = oc / mg;
            conv_channel(&win, cg, xd + (n * c + g * cg) * in_sp, wd + oc * cg * k_sp,
                         bd ? (double)bd[oc] : 0.0, yd + (n * m + oc) * out_sp);
        }
    }
    return 0;
}
