/*
 * Plain C reference kernels: one per operator, written for clarity rather
 * than speed. They define what each op computes; the oneDNN kernels are
 * tested against them, and they run ops that have no oneDNN kernel.
 *
 * Contract of every kernel: the caller has inferred the output shape and
 * set y->dtype, y->rank, y->shape and y->data (zeroed or not; the kernel
 * writes every element). Inputs and outputs are dense row-major and must not
 * alias unless a kernel says so. Attributes are the *resolved* ones from
 * eng_infer_node (explicit pads, known bounds). Returns 0, or
 * ROUSE_EUNSUPPORTED for an element type the kernel does not handle.
 * Kernels also check the shapes they are given and return ROUSE_EMISMATCH
 * when they contradict the contract (including output extents that differ
 * from the Conv/pooling formulas), and ROUSE_EINVAL for attributes they
 * cannot run (stride or dilation below 1, a perm that is not a permutation).
 * Float Conv, Gemm, MatMul, pooling and normalisation sums are accumulated
 * in double. Kernels never allocate except where noted.
 */
#ifndef ROUSE_ENGINE_REF_H
#define ROUSE_ENGINE_REF_H

#include "engine/graph.h"
#include "engine/tensor.h"

/* Conv, float. x [N, C, D1..Dn], w [M, C/group, k1..kn], b [M] or NULL,
 * y [N, M, O1..On]. */
int ref_conv(const eng_conv_attrs *a, const eng_tensor *x, const eng_tensor *w, const eng_tensor *b,
             eng_tensor *y);

/* Gemm, float: Y = alpha * op(A) * op(B) + beta * C, C broadcast
 * unidirectionally to [M, N] (C may be NULL). */
int ref_gemm(const eng_gemm_attrs *a, const eng_tensor *A, const eng_tensor *B, const eng_tensor *C,
             eng_tensor *Y);

/* MatMul with numpy semantics (1-D promotion, batch broadcasting); float,
 * double, int32, int64, uint32, uint64 (integer sums wrap modulo 2^bits). */
int ref_matmul(const eng_tensor *a, const eng_tensor *b, eng_tensor *y);

/* Element-wise unary ops: RELU, CLIP (float and all integer types; bounds in
 * attrs->clip), LEAKY_RELU (attrs->alpha), SIGMOID, TANH, ERF, SQRT, GELU on float
 * (and double).
 * y may alias x. attrs may be NULL (no Clip bounds, LeakyRelu alpha 0.01). */
int ref_unary(eng_op op, const eng_attrs *attrs, const eng_tensor *x, eng_tensor *y);

/* ADD, SUB, MUL, DIV with multidirectional broadcasting, for float, double
 * and every integer type (DIV truncates toward zero for integers; integer
 * division by zero yields 0 rather than trapping). */
int ref_binary(eng_op op, const eng_tensor *a, const eng_tensor *b, eng_tensor *y);

/* MaxPool on float, double, int8, uint8 (indices may be NULL; when given it
 * is int64 of y's shape, flattened per ONNX with storage_order). The first
 * maximum in window order wins ties. Output extents use the ONNX ceil_mode
 * rule: a last window that would start past input + begin pad is dropped. */
int ref_maxpool(const eng_pool_attrs *a, const eng_tensor *x, eng_tensor *y, eng_tensor *indices);

/* AveragePool on float (count_include_pad honoured; padding beyond the
 * explicit pads that ceil_mode adds is never counted). A window with nothing
 * to count yields 0. */
int ref_avgpool(const eng_pool_attrs *a, const eng_tensor *x, eng_tensor *y);

/* GlobalAveragePool on float: y [N, C, 1, ..., 1]. */
int ref_global_avgpool(const eng_tensor *x, eng_tensor *y);

/* Transpose of any element size; perm has x->rank entries. */
int ref_transpose(const int64_t *perm, const eng_tensor *x, eng_tensor *y);

/* Concat along axis (already normalized to 0..rank-1) of n inputs, any element size. */
int ref_concat(int64_t axis, int n, const eng_tensor *const *xs, eng_tensor *y);

/* BatchNormalization (inference): y = scale * (x - mean) / sqrt(var + eps) + bias,
 * per channel (dim 1); float. */
int ref_batchnorm(float epsilon, const eng_tensor *x, const eng_tensor *scale,
                  const eng_tensor *bias, const eng_tensor *mean, const eng_tensor *var,
                  eng_tensor *y);

/* LayerNorm on float over the dims [axis, rank) (axis normalized): per
 * group, y = (x - mean) / sqrt(var + epsilon) * scale + bias with the biased
 * variance, in double. scale and bias (either may be NULL) hold one value or
 * one per element of the last dim. */
int ref_layernorm(int64_t axis, float epsilon, const eng_tensor *x, const eng_tensor *scale,
                  const eng_tensor *bias, eng_tensor *y);

/* Softmax on float along axis (normalized); legacy (opset < 13) treats the
 * input as 2-D [prod(dims < axis), prod(dims >= axis)]. Numerically stable
 * (subtracts the max). */
int ref_softmax(int64_t axis, bool legacy, const eng_tensor *x, eng_tensor *y);

/* Byte copy of x into y (Identity, Reshape, Flatten, Unsqueeze, Squeeze,
 * Dropout in inference);
 * sizes must match. y may alias x (then nothing is copied). */
int ref_copy(const eng_tensor *x, eng_tensor *y);

/* Pow with multidirectional broadcasting: base float, double, int32 or
 * int64; exponent any of those or uint32, uint64 (opset >= 12 lets it
 * differ from the base).
 * Computed as pow() in double and rounded once to y's type (integers
 * truncated and saturated). */
int ref_pow(const eng_tensor *a, const eng_tensor *b, eng_tensor *y);

/* Cast between float, double, float16, bfloat16, bool and every integer
 * type (float16 rounds to nearest even, bfloat16 truncates as ONNX's
 * reference does before opset 19; see convert.c
 * for the rules: saturating float -> int, wrapping int -> int, bool is
 * "not zero"). y->dtype must be `to`. */
int ref_cast(int to, const eng_tensor *x, eng_tensor *y);

/* Gather along axis (normalized): y = data[..., indices[...], ...] with
 * indices int32 or int64, negative ones counting from the end. An index
 * outside [-len, len) is ROUSE_ERANGE with its value in *bad_index (may be
 * NULL), and nothing is written. */
int ref_gather(int64_t axis, const eng_tensor *data, const eng_tensor *indices, eng_tensor *y,
               int64_t *bad_index);

/* Where: out = cond ? x : y element-wise, all three broadcast (numpy rules);
 * cond is bool, x and y any element type with a size. */
int ref_where(const eng_tensor *cond, const eng_tensor *x, const eng_tensor *y, eng_tensor *out);

/* ReduceMean over n_axes distinct normalized axes (float, double; sums in
 * double). keepdims keeps reduced dims as 1. n_axes 0 copies x. */
int ref_reduce_mean(int n_axes, const int64_t *axes, bool keepdims, const eng_tensor *x,
                    eng_tensor *y);

/* Applies fused post-ops to y in place (float): ELTWISE f(y), SUM y += in.
 * `sum_src` is the addend for a SUM post-op, already broadcast-compatible
 * with y (same shape). */
int ref_postops(int n_post, const eng_postop *post, const eng_tensor *sum_src, eng_tensor *y);

#endif
