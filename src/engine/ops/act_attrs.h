/* Attribute records of the logic, comparison, math and activation ops (ops/logic.c, ops/math.c,
 * ops/act.c). */
#ifndef ROUSE_ENGINE_OPS_ACT_ATTRS_H
#define ROUSE_ENGINE_OPS_ACT_ATTRS_H

#include <stdint.h>

/* The float parameters of an activation, by op:
 *   HardSigmoid  alpha, beta          Elu, Celu, ThresholdedRelu  alpha
 *   Selu         alpha, gamma         Shrink  bias (alpha), lambd (beta)
 * All finite; Celu's alpha is not 0. */
typedef struct eng_act_params {
    float alpha, beta, gamma;
} eng_act_params;

/* LogSoftmax and Hardmax: axis as given (normalized by shape inference);
 * legacy (opset < 13) coerces the input to 2-D at axis. */
typedef struct eng_act_axis {
    int64_t axis;
    int legacy;
} eng_act_axis;

/* Mod: fmod 0 gives the divisor's sign (integers only), 1 the dividend's. */
typedef struct eng_act_mod {
    int fmod;
} eng_act_mod;

/* BitShift: direction 0 LEFT, 1 RIGHT. */
typedef struct eng_act_shift {
    int right;
} eng_act_shift;

/* IsInf: which infinities are reported (each 0 or 1). */
typedef struct eng_act_isinf {
    int detect_negative, detect_positive;
} eng_act_isinf;

typedef union eng_act_attrs {
    eng_act_params params;
    eng_act_axis axis;
    eng_act_mod mod;
    eng_act_shift shift;
    eng_act_isinf isinf;
} eng_act_attrs;

#endif
