/* Attribute records of the quantization operators. */
#ifndef ROUSE_ENGINE_OPS_QUANT_ATTRS_H
#define ROUSE_ENGINE_OPS_QUANT_ATTRS_H

#include <stdint.h>

/* QuantizeLinear / DequantizeLinear: the axis of per-axis scales (as given;
 * normalized by shape inference). */
typedef struct eng_qaxis_attrs {
    int64_t axis;
} eng_qaxis_attrs;

typedef union eng_quant_attrs {
    eng_qaxis_attrs q;
    eng_conv_attrs conv; /* QLinearConv, ConvInteger: Conv's window and group */
} eng_quant_attrs;

#endif
