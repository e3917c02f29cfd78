/* Attribute records of the resampling, transposed convolution and the extra pools. */
#ifndef ROUSE_ENGINE_OPS_SPATIAL_ATTRS_H
#define ROUSE_ENGINE_OPS_SPATIAL_ATTRS_H

#include <stdint.h>

typedef union eng_spatial_attrs {
    int64_t unused; /* replaced by the family's per-op records */
} eng_spatial_attrs;

#endif
