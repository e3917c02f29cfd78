/* Shared helpers of the reference kernels (see ref_util.h). */
#include "engine/ref/ref_util.h"

#include <math.h>
#include <string.h>

#include "rouse/err.h"

#define REF_SQRT1_2 0.70710678118654752440 /* 1 / sqrt(2) */

int ref_bcast_strides(int rank, const int64_t *shape, int out_rank, const int64_t *out_shape,
                      int64_t *strides)
{
    if (rank > out_rank) return ROUSE_EMISMATCH;
    int64_t step = 1;
    for (int d = out_rank - 1; d >= 0; d--) {
        int sd = d - (out_rank - rank); /* the matching dim of `shape`, if any */
        if (sd < 0) {
            strides[d] = 0;
            continue;
        }
        if (shape[sd] == out_shape[d]) {
            strides[d] = shape[sd] == 1 ? 0 : step;
        } else if (shape[sd] == 1) {
            strides[d] = 0;
        } else {
            return ROUSE_EMISMATCH;
        }
        step *= shape[sd];
    }
    return 0;
}

int ref_bcast_shape(int ra, const int64_t *a, int rb, const int64_t *b, int *r_out, int64_t *out)
{
    int r = ra > rb ? ra : rb;
    for (int d = 0; d < r; d++) {
        int da = d - (r - ra), db = d - (r - rb);
        int64_t ea = da >= 0 ? a[da] : 1, eb = db >= 0 ? b[db] : 1;
        if (ea != eb && ea != 1 && eb != 1) return ROUSE_EMISMATCH;
        out[d] = ea == 1 ? eb : ea;
    }
    *r_out = r;
    return 0;
}

bool ref_index_next(int rank, const int64_t *shape, int64_t *idx, int n_ops,
                    const int64_t *const *strides, int64_t *off)
{
    for (int d = rank - 1; d >= 0; d--) {
        idx[d]++;
        for (int o = 0; o < n_ops; o++)
            off[o] += strides[o][d];
        if (idx[d] < shape[d]) return true;
        for (int o = 0; o < n_ops; o++)
            off[o] -= strides[o][d] * shape[d];
        idx[d] = 0;
    }
    return false;
}

int ref_window_init(ref_window *w, int n_spatial, const int64_t *kernel, const int64_t *stride,
                    const int64_t *dilation, const int64_t *pad_begin, const int64_t *pad_end,
                    const int64_t *in_spatial, const int64_t *out_spatial)
{
    if (n_spatial < 1 || n_spatial > 3) return ROUSE_EINVAL;
    int lead = 3 - n_spatial;
    for (int d = 0; d < 3; d++) {
        if (d < lead) {
            w->in[d] = w->out[d] = w->kernel[d] = w->stride[d] = w->dilation[d] = 1;
            w->pad_begin[d] = w->pad_end[d] = 0;
            continue;
        }
        int s = d - lead;
        if (kernel[s] < 1 || stride[s] < 1 || dilation[s] < 1) return ROUSE_EINVAL;
        w->in[d] = in_spatial[s];
        w->out[d] = out_spatial[s];
        w->kernel[d] = kernel[s];
        w->stride[d] = stride[s];
        w->dilation[d] = dilation[s];
        w->pad_begin[d] = pad_begin[s];
        w->pad_end[d] = pad_end[s];
    }
    return 0;
}

int64_t ref_window_out_dim(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                           int64_t pad_begin, int64_t pad_end, bool ceil_mode)
{
    int64_t span = in + pad_begin + pad_end - ((kernel - 1) * dilation + 1);
    if (span < 0) return 0;
    int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    /* ceil_mode may add a window that starts in the end padding's far side;
     * ONNX drops a last window that would start past input + begin pad. */
    if (ceil_mode && (out - 1) * stride >= in + pad_begin) out--;
    return out;
}

void ref_window_taps(const ref_window *w, int d, int64_t o, int64_t *k_lo, int64_t *k_hi)
{
    int64_t start = o * w->stride[d] - w->pad_begin[d]; /* input coordinate of tap 0 */
    int64_t dil = w->dilation[d];
    int64_t lo = 0, hi = w->kernel[d];
    if (start < 0) lo = (-start + dil - 1) / dil;
    int64_t room = w->in[d] - start; /* taps k with k * dil < room are inside */
    int64_t limit = room <= 0 ? 0 : (room + dil - 1) / dil;
    if (limit < hi) hi = limit;
    *k_lo = lo;
    *k_hi = hi;
}

bool ref_act_supported(eng_op op)
{
    switch (op) {
    case ENG_OP_RELU:
    case ENG_OP_CLIP:
    case ENG_OP_LEAKY_RELU:
    case ENG_OP_SIGMOID:
    case ENG_OP_TANH:
    case ENG_OP_ERF:
    case ENG_OP_SQRT:
    case ENG_OP_GELU:
    case ENG_OP_HARD_SIGMOID:
    case ENG_OP_HARD_SWISH:
    case ENG_OP_ELU:
    case ENG_OP_SOFTPLUS:
    case ENG_OP_MISH:
    case ENG_OP_ABS:
        return true;
    default:
        return false;
    }
}

/* log(1 + exp(x)) without overflow for large x. */
static double softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

float ref_act_f32(eng_op op, float alpha, float beta, float x)
{
    switch (op) {
    case ENG_OP_HARD_SIGMOID:
    case ENG_OP_HARD_SWISH:
    case ENG_OP_ELU:
    case ENG_OP_SOFTPLUS:
    case ENG_OP_MISH:
        return (float)ref_act_f64(op, alpha, beta, x);
    case ENG_OP_ABS:
        return fabsf(x);
    case ENG_OP_RELU:
        return x < 0.0f ? 0.0f : x; /* keeps NaN, like max(x, 0) in numpy */
    case ENG_OP_CLIP: {
        /* min(max(x, lo), hi) as ONNX defines it: with lo > hi the result
         * is hi, and a NaN input stays NaN. */
        float t = x < alpha ? alpha : x;
        return t > beta ? beta : t;
    }
    case ENG_OP_LEAKY_RELU:
        return x < 0.0f ? alpha * x : x;
    case ENG_OP_SIGMOID:
        /* Never exponentiate a large positive number, so neither branch
         * overflows to inf/inf. */
        if (x >= 0.0f)
            return 1.0f / (1.0f + expf(-x));
        else {
            float e = expf(x);
            return e / (1.0f + e);
        }
    case ENG_OP_TANH:
        return tanhf(x);
    case ENG_OP_ERF:
        return erff(x);
    case ENG_OP_SQRT:
        return sqrtf(x); /* NaN for x < 0, as ONNX says */
    case ENG_OP_GELU:
        return (float)(0.5 * (double)x * (1.0 + erf((double)x * REF_SQRT1_2)));
    default:
        return x;
    }
}

double ref_act_f64(eng_op op, double alpha, double beta, double x)
{
    switch (op) {
    case ENG_OP_RELU:
        return x < 0.0 ? 0.0 : x;
    case ENG_OP_CLIP: {
        double t = x < alpha ? alpha : x;
        return t > beta ? beta : t;
    }
    case ENG_OP_LEAKY_RELU:
        return x < 0.0 ? alpha * x : x;
    case ENG_OP_SIGMOID:
        if (x >= 0.0)
            return 1.0 / (1.0 + exp(-x));
        else {
            double e = exp(x);
            return e / (1.0 + e);
        }
    case ENG_OP_TANH:
        return tanh(x);
    case ENG_OP_ERF:
        return erf(x);
    case ENG_OP_SQRT:
        return sqrt(x);
    case ENG_OP_GELU:
        return 0.5 * x * (1.0 + erf(x * REF_SQRT1_2));
    case ENG_OP_HARD_SIGMOID: {
        double v = alpha * x + beta;
        return v < 0 ? 0 : v > 1 ? 1 : v;
    }
    case ENG_OP_HARD_SWISH: {
        double v = x / 6.0 + 0.5;
        return x * (v < 0 ? 0 : v > 1 ? 1 : v);
    }
    case ENG_OP_ELU:
        return x < 0 ? alpha * expm1(x) : x;
    case ENG_OP_SOFTPLUS:
        return softplus(x);
    case ENG_OP_MISH:
        return x * tanh(softplus(x));
    case ENG_OP_ABS:
        return fabs(x);
    default:
        return x;
    }
}

double ref_half_to_double(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
}

uint16_t ref_double_to_half(double d)
{
    uint16_t sign = signbit(d) ? 0x8000 : 0;
    if (isnan(d)) return 0x7e00;
    d = fabs(d);
    if (d >= 65520.0) return sign | 0x7c00; /* past the midpoint above 65504: inf */
    if (d < 0x1p-14) /* subnormal, in units of 2^-24; 1024 is the smallest normal */
        return sign | (uint16_t)nearbyint(d * 0x1p24);
    int e;
    double m = nearbyint((frexp(d, &e) * 2.0 - 1.0) * 1024.0); /* exact scaling */
    int biased = e - 1 + 15;
    if (m == 1024) {
        m = 0;
        biased++;
    }
    if (biased >= 31) return sign | 0x7c00;
    return sign | (uint16_t)(biased << 10) | (uint16_t)m;
}

/* bfloat16 is the top half of a float. */
uint16_t ref_float_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    if (isnan(f)) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

double ref_bf16_to_double(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}
