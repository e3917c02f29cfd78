/* Attribute records of the logic, comparison, math and activation ops (ops/logic.c, ops/math.c). */
#ifndef ROUSE_ENGINE_OPS_ACT_ATTRS_H
#define ROUSE_ENGINE_OPS_ACT_ATTRS_H

#include <stdint.h>

typedef union eng_act_attrs {
    int64_t unused; /* replaced by the family's per-op records */
} eng_act_attrs;

#endif
