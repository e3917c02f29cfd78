/* Attribute records of the reductions, index selection, normalizations and Einsum. */
#ifndef ROUSE_ENGINE_OPS_REDUCE_ATTRS_H
#define ROUSE_ENGINE_OPS_REDUCE_ATTRS_H

#include <stdint.h>

#include "engine/tensor.h"

/* ReduceSum, ReduceMax, ... (axes from the attribute, or from input 1 for
 * ReduceSum since opset 13). As parsed, n_axes is -1 when the attribute is
 * absent and axes may be negative. After shape inference (`resolved`) the
 * axes are normalized to 0..rank-1, sorted and unique; n_axes 0 then means
 * "reduce nothing" (noop_with_empty_axes with empty axes): every output
 * element is the reduction of a one-element set. */
typedef struct eng_reduce_axes_attrs {
    int n_axes;
    int64_t axes[ENG_MAX_RANK];
    int keepdims;
    int noop_with_empty_axes;
} eng_reduce_axes_attrs;

/* ArgMax / ArgMin: axis normalized by shape inference. */
typedef struct eng_arg_attrs {
    int64_t axis;
    int keepdims;
    int select_last_index;
} eng_arg_attrs;

/* TopK: k is the attribute before opset 10 and input 1 since; shape
 * inference stores the value in `resolved` along with the normalized axis. */
typedef struct eng_topk_attrs {
    int64_t axis;
    int64_t k;
    int largest;
    int sorted;
} eng_topk_attrs;

/* CumSum: the axis comes from input 1 (normalized into `resolved`). */
typedef struct eng_cumsum_attrs {
    int64_t axis;
    int exclusive;
    int reverse;
} eng_cumsum_attrs;

/* LayerNormalization (the ONNX op of opset 17): normalizes over the dims
 * from `axis` on; Mean and InvStdDev are float (stash_type 1, the only
 * type the engine computes in). axis normalized by shape inference. */
typedef struct eng_lnorm_attrs {
    int64_t axis;
    float epsilon;
    int stash_type;
} eng_lnorm_attrs;

/* InstanceNormalization: epsilon. */
typedef struct eng_inorm_attrs {
    float epsilon;
} eng_inorm_attrs;

/* LpNormalization: axis (normalized by shape inference) and p (1 or 2). */
typedef struct eng_lpnorm_attrs {
    int64_t axis;
    int p;
} eng_lpnorm_attrs;

/* MeanVarianceNormalization: the axes of the mean and variance (default
 * 0, 2, 3); normalized and sorted by shape inference. */
typedef struct eng_mvn_attrs {
    int n_axes;
    int64_t axes[ENG_MAX_RANK];
} eng_mvn_attrs;

#define ENG_EINSUM_EQ_MAX 120 /* bytes of the equation, terminator included */

/* Einsum: the equation with spaces removed, NUL-terminated. It is parsed
 * again by shape inference and by the kernel (a few dozen characters). */
typedef struct eng_einsum_attrs {
    char equation[ENG_EINSUM_EQ_MAX];
} eng_einsum_attrs;

typedef union eng_reduce_attrs {
    eng_reduce_axes_attrs red;
    eng_arg_attrs arg;
    eng_topk_attrs topk;
    eng_cumsum_attrs cumsum;
    eng_lnorm_attrs lnorm;
    eng_inorm_attrs inorm;
    eng_lpnorm_attrs lpnorm;
    eng_mvn_attrs mvn;
    eng_einsum_attrs einsum;
} eng_reduce_attrs;

#endif
