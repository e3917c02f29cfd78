/* Attribute records of the shape and data-movement ops. */
#ifndef ROUSE_ENGINE_OPS_SHAPE_ATTRS_H
#define ROUSE_ENGINE_OPS_SHAPE_ATTRS_H

#include <stdint.h>

typedef union eng_shape_attrs {
    int64_t unused; /* replaced by the family's per-op records */
} eng_shape_attrs;

#endif
