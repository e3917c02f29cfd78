/*
 * Reference pooling: MaxPool (with optional argmax indices), AveragePool
 * and GlobalAveragePool, over 1-D, 2-D or 3-D spatial dims.
 *
 * Window rules (ONNX): output extents follow ref_window_out_dim (floor, or
 * ceil with the last window kept only if it starts inside input + begin
 * pad). MaxPool ignores padding. AveragePool divides by the number of taps
 * inside the input, or with count_include_pad by the number of taps inside
 * input + explicit pads; taps in the extra region that ceil_mode adds past
 * the end pad are never counted. Sums are accumulated in double.
 */
#include "engine/ref/ref.h"

#include <float.h>

#include "engine/ref/ref_util.h"
#include "rouse/err.h"

/* Validates ranks and the output extents against the attributes and fills
 * the canonical window. */
static int pool_check(const eng_pool_attrs *a, const eng_tensor *x, const eng_tensor *y,
                      ref_window *win)
{
    int ns = a->n_spatial;
    if (ns < 1 || ns > ENG_MAX_SPATIAL) return ROUSE_EINVAL;
    if (x->rank != ns + 2 || y->rank != ns + 2) return ROUSE_EMISMATCH;
    if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1]) return ROUSE_EMISMATCH;
    int rc = ref_window_init(win, ns, a->kernel, a->stride, a->dilation, a->pad_begin, a->pad_end,
                             x->shape + 2, y->shape + 2);
    if (rc < 0) return rc;
    for (int d = 0; d < 3; d++) {
        int64_t want =
            ref_window_out_dim(win->in[d], win->kernel[d], win->stride[d], win->dilation[d],
                               win->pad_begin[d], win->pad_end[d], a->ceil_mode != 0);
        if (win->out[d] != want) return ROUSE_EMISMATCH;
    }
    return 0;
}

/* Flat index of input element (i0, i1, i2) of plane `plane` (= n * C + c),
 * as MaxPool's Indices output reports it: row-major over [N, C, D...], or
 * with storage_order 1 column-major over the spatial dims only. */
static int64_t argmax_index(const ref_window *win, int storage_order, int64_t plane, int64_t i0,
                            int64_t i1, int64_t i2)
{
    int64_t in_sp = win->in[0] * win->in[1] * win->in[2];
    int64_t within = storage_order ? (i2 * win->in[1] + i1) * win->in[0] + i0
                                   : (i0 * win->in[1] + i1) * win->in[2] + i2;
    return plane * in_sp + within;
}

/* MaxPool over one element type. The first maximum in row-major window
 * order wins ties. A window with no tap inside the input (possible only
 * when pads reach a whole kernel extent) yields the type's lowest value and
 * index -1. */
#define DEFINE_MAXPOOL(name, T, LOWEST)                                                            \
    static void name(const ref_window *win, int storage_order, int64_t n_planes, const T *x, T *y, \
                     int64_t *ind)                                                                 \
    {                                                                                              \
        const int64_t in_sp = win->in[0] * win->in[1] * win->in[2];                                \
        int64_t yi = 0;                                                                            \
        for (int64_t p = 0; p < n_planes; p++) {                                                   \
            const T *xp = x + p * in_sp;                                                           \
            for (int64_t o0 = 0; o0 < win->out[0]; o0++) {                                         \
                int64_t lo0, hi0;                                                                  \
                ref_window_taps(win, 0, o0, &lo0, &hi0);                                           \
                for (int64_t o1 = 0; o1 < win->out[1]; o1++) {                                     \
                    int64_t lo1, hi1;                                                              \
                    ref_window_taps(win, 1, o1, &lo1, &hi1);                                       \
                    for (int64_t o2 = 0; o2 < win->out[2]; o2++, yi++) {                           \
                        int64_t lo2, hi2;                                                          \
                        ref_window_taps(win, 2, o2, &lo2, &hi2);                                   \
                        T best = (LOWEST);                                                         \
                        int64_t bi0 = -1, bi1 = -1, bi2 = -1;                                      \
                        for (int64_t k0 = lo0; k0 < hi0; k0++) {                                   \
                            int64_t i0 =                                                           \
                                o0 * win->stride[0] - win->pad_begin[0] + k0 * win->dilation[0];   \
                            for (int64_t k1 = lo1; k1 < hi1; k1++) {                               \
                                int64_t i1 = o1 * win->stride[1] - win->pad_begin[1] +             \
                                             k1 * win->dilation[1];                                \
                                for (int64_t k2 = lo2; k2 < hi2; k2++) {                           \
                                    int64_t i2 = o2 * win->stride[2] - win->pad_begin[2] +         \
                                                 k2 * win->dilation[2];                            \
                                    T v = xp[(i0 * win->in[1] + i1) * win->in[2] + i2];            \
                                    if (bi0 < 0 || v > best) {                                     \
                                        best = v;                                                  \
                                        bi0 = i0, bi1 = i1, bi2 = i2;                              \
                                    }                                                              \
                                }                                                                  \
                            }                                                                      \
                        }                                                                          \
                        y[yi] = best;                                                              \
                        if (ind)                                                                   \
                            ind[yi] =                                                              \
                                bi0 < 0 ? -1 : argmax_index(win, storage_order, p, bi0, bi1, bi2); \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_MAXPOOL(maxpool_f32, float, -FLT_MAX)
DEFINE_MAXPOOL(maxpool_f64, double, -DBL_MAX)
DEFINE_MAXPOOL(maxpool_i8, int8_t, INT8_MIN)
DEFINE_MAXPOOL(maxpool_u8, uint8_t, 0)
#undef DEFINE_MAXPOOL

int ref_maxpool(const eng_pool_attrs *a, const eng_tensor *x, eng_tensor *y, eng_tensor *indices)
{
    if (y->dtype != x->dtype || (indices && indices->dtype != ENG_DT_INT64))
        return ROUSE_EUNSUPPORTED;
    ref_window win;
    int rc = pool_check(a, x, y, &win);
    if (rc < 0) return rc;
    if (indices && !eng_shape_equal(indices->rank, indices->shape, y->rank, y->shape))
        return ROUSE_EMISMATCH;
    const int64_t planes = x->shape[0] * x->shape[1];
    int64_t *ind = indices ? indices->data : NULL;
    switch (x->dtype) {
    case ENG_DT_FLOAT:
        maxpool_f32(&win, a->storage_order, planes, x->data, y->data, ind);
        break;
    case ENG_DT_DOUBLE:
        maxpool_f64(&win, a->storage_order, planes, x->data, y->data, ind);
        break;
    case ENG_DT_INT8:
        maxpool_i8(&win, a->storage_order, planes, x->data, y->data, ind);
        break;
    case ENG_DT_UINT8:
        maxpool_u8(&win, a->storage_order, planes, x->data, y->data, ind);
        break;
    default:
        return ROUSE_EUNSUPPORTED;
    }
    return 0;
}

/* Taps of output position o in dim d that fall inside input + explicit pads
 * (the divisor with count_include_pad). Tap 0 never starts before the begin
 * pad, so only the far end can cut the window short. */
static int64_t padded_taps(const ref_window *win, int d, int64_t o)
{
    int64_t room = win->in[d] + win->pad_begin[d] + win->pad_end[d] - o * win->stride[d];
    int64_t n = room <= 0 ? 0 : (room + win->dilation[d] - 1) / win->dilation[d];
    return n < win->kernel[d] ? n : win->kernel[d];
}

int ref_avgpool(const eng_pool_attrs *a, const eng_tensor *x, eng_tensor *y)
{
    if (x->dtype != ENG_DT_FLOAT || y->dtype != ENG_DT_FLOAT) return ROUSE_EUNSUPPORTED;
    ref_window win;
    int rc = pool_check(a, x, y, &win);
    if (rc < 0) return rc;

    const int64_t planes = x->shape[0] * x->shape[1];
    const int64_t in_sp = win.in[0] * win.in[1] * win.in[2];
    const float *xd = x->data;
    float *yd = y->data;
    int64_t yi = 0;
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = xd + p * in_sp;
        for (int64_t o0 = 0; o0 < win.out[0]; o0++) {
            int64_t lo0, hi0;
            ref_window_taps(&win, 0, o0, &lo0, &hi0);
            for (int64_t o1 = 0; o1 < win.out[1]; o1++) {
                int64_t lo1, hi1;
                ref_window_taps(&win, 1, o1, &lo1, &hi1);
                for (int64_t o2 = 0; o2 < win.out[2]; o2++, yi++) {
                    int64_t lo2, hi2;
                    ref_window_taps(&win, 2, o2, &lo2, &hi2);
                    double sum = 0.0;
                    for (int64_t k0 = lo0; k0 < hi0; k0++) {
                        int64_t i0 = o0 * win.stride[0] - win.pad_begin[0] + k0 * win.dilation[0];
                        for (int64_t k1 = lo1; k1 < hi1; k1++) {
                            int64_t i1 =
                                o1 * win.stride[1] - win.pad_begin[1] + k1 * win.dilation[1];
                            for (int64_t k2 = lo2; k2 < hi2; k2++) {
                                int64_t i2 =
                                    o2 * win.stride[2] - win.pad_begin[2] + k2 * win.dilation[2];
                                sum += xp[(i0 * win.in[1] + i1) * win.in[2] + i2];
                            }
                        }
                    }
                    int64_t count;
                    if (a->count_include_pad)
                        count = padded_taps(&win, 0, o0) * padded_taps(&win, 1, o1) *
                                padded_taps(&win, 2, o2);
                    else
                        count = (hi0 > lo0 ? hi0 - lo0 : 0) * (hi1 > lo1 ? hi1 - lo1 : 0) *
                                (hi2 > lo2 ? hi2 - lo2 : 0);
                    /* A window with nothing to count (only possible when the
                     * pads span a whole kernel) averages to 0, not 0/0. */
                    yd[yi] = count > 0 ? (float)(sum / (double)count) : 0.0f;
                }
            }
        }
    }
    return 0;
}

int ref_global_avgpool(const eng_tensor *x, eng_tensor *y)
{
    if (x->dtype != ENG_DT_FLOAT || y->dtype != ENG_DT_FLOAT) return ROUSE_EUNSUPPORTED;
    if (x->rank < 2 || y->rank != x->rank) return ROUSE_EMISMATCH;
    if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1]) return ROUSE_EMISMATCH;
    for (int d = 2; d < y->rank; d++)
        if (y->shape[d] != 1) return ROUSE_EMISMATCH;

    const int64_t planes = x->shape[0] * x->shape[1];
    const int64_t sp = eng_shape_numel(x->rank - 2, x->shape + 2);
    if (sp < 0) return ROUSE_EMISMATCH;
    const float *xd = x->data;
    float *yd = y->data;
    for (int64_t p = 0; p < planes; p++) {
        double sum = 0.0;
        for (int64_t i = 0; i < sp; i++)
            sum += xd[p * sp + i];
        /* An empty plane has no mean; 0 keeps the output finite. */
        yd[p] = sp > 0 ? (float)(sum / (double)sp) : 0.0f;
    }
    return 0;
}
