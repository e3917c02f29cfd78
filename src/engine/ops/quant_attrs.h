/* Attribute records of the quantization ops. */
#ifndef ROUSE_ENGINE_OPS_QUANT_ATTRS_H
#define ROUSE_ENGINE_OPS_QUANT_ATTRS_H

#include <stdint.h>

typedef union eng_quant_attrs {
    int64_t unused; /* replaced by the family's per-op records */
} eng_quant_attrs;

#endif
