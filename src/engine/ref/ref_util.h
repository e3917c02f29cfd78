/*
 * Private helpers shared by the reference kernels: broadcast strides, an
 * N-d index odometer, the canonical 3-D window geometry used by conv and
 * pooling, the half-precision conversions, and the scalar activation functions used by both the
 * unary kernels and the post-ops. Nothing here allocates.
 */
#ifndef ROUSE_ENGINE_REF_UTIL_H
#define ROUSE_ENGINE_REF_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/graph.h"
#include "engine/tensor.h"

/* Element strides of a dense row-major tensor of shape[rank] viewed as
 * broadcast (numpy rules: right-aligned, a dim of 1 or a missing dim
 * stretches) to out_shape[out_rank]. strides[out_rank] receives 0 for
 * stretched dims. Returns ROUSE_EMISMATCH when a dim is neither 1 nor the
 * output's, or when rank > out_rank. */
int ref_bcast_strides(int rank, const int64_t *shape, int out_rank, const int64_t *out_shape,
                      int64_t *strides);

/* The numpy broadcast of shapes a[ra] and b[rb] into out[*r_out]
 * (r_out = max(ra, rb)). Returns ROUSE_EMISMATCH when two dims differ and
 * neither is 1. */
int ref_bcast_shape(int ra, const int64_t *a, int rb, const int64_t *b, int *r_out, int64_t *out);

/* Advances the N-d index idx[rank] over shape[] in row-major order and
 * keeps n_ops running offsets in step: off[o] moves by strides[o][d] for
 * each step in dim d. Returns false once the whole index space has been
 * walked (idx and offsets are then back at zero). */
bool ref_index_next(int rank, const int64_t *shape, int64_t *idx, int n_ops,
                    const int64_t *const *strides, int64_t *off);

/* Conv and pooling windows, padded to exactly three spatial dims with
 * leading unit dims (so that 1-D, 2-D and 3-D share one loop nest). */
typedef struct ref_window {
    int64_t in[3], out[3], kernel[3], stride[3], dilation[3], pad_begin[3], pad_end[3];
} ref_window;

/* Fills w from n_spatial dims of attributes and of the input/output
 * spatial shapes. Returns ROUSE_EINVAL for n_spatial outside 1..3 or a
 * kernel, stride or dilation below 1. */
int ref_window_init(ref_window *w, int n_spatial, const int64_t *kernel, const int64_t *stride,
                    const int64_t *dilation, const int64_t *pad_begin, const int64_t *pad_end,
                    const int64_t *in_spatial, const int64_t *out_spatial);

/* Output extent of one spatial dim: floor (or ceil) of
 * (in + pads - dilated kernel) / stride + 1. With ceil, a last window that
 * would start past the input and its begin padding is dropped (ONNX). */
int64_t ref_window_out_dim(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                           int64_t pad_begin, int64_t pad_end, bool ceil_mode);

/* The kernel taps [*k_lo, *k_hi) of output position o in dim d that land
 * inside the input (the others read padding). Empty when *k_lo >= *k_hi. */
void ref_window_taps(const ref_window *w, int d, int64_t o, int64_t *k_lo, int64_t *k_hi);

/* IEEE half precision and bfloat16 <-> double/float, rounding to nearest
 * even (numpy's astype); NaN stays NaN, overflow goes to infinity. */
double ref_half_to_double(uint16_t h);
uint16_t ref_double_to_half(double d);
double ref_bf16_to_double(uint16_t b);
uint16_t ref_float_to_bf16(float f);

/* Scalar activation f(x) for RELU, CLIP (alpha = min, beta = max),
 * LEAKY_RELU (alpha), SIGMOID, TANH, ERF, SQRT, GELU (exact, with erf;
 * computed in double), HARD_SIGMOID (alpha, beta), HARD_SWISH, ELU (alpha),
 * SOFTPLUS, MISH and ABS (computed in double), in float
 * and double: the one definition shared by the ops' reference kernels and
 * their fused post-op forms. Any other op returns x unchanged; callers
 * validate the op first. */
float ref_act_f32(eng_op op, float alpha, float beta, float x);
double ref_act_f64(eng_op op, double alpha, double beta, double x);

/* True for the ops ref_act_* implement. */
bool ref_act_supported(eng_op op);

#endif
