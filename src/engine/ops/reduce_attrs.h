/* Attribute records of the reductions, index selection, normalizations and Einsum. */
#ifndef ROUSE_ENGINE_OPS_REDUCE_ATTRS_H
#define ROUSE_ENGINE_OPS_REDUCE_ATTRS_H

#include <stdint.h>

typedef union eng_reduce_attrs {
    int64_t unused; /* replaced by the family's per-op records */
} eng_reduce_attrs;

#endif
