/*
 * Attribute records of the operators described in src/engine/ops/: one
 * header per family, each declaring the record its ops keep in eng_attrs
 * (a struct, or a union of per-op structs). Records are plain data (no
 * pointers): compiled plans store them byte for byte, and the plan reader
 * validates them with the op's `check` hook.
 */
#ifndef ROUSE_ENGINE_OP_ATTRS_H
#define ROUSE_ENGINE_OP_ATTRS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/tensor.h"

#include "engine/ops/act_attrs.h"
#include "engine/ops/quant_attrs.h"
#include "engine/ops/reduce_attrs.h"
#include "engine/ops/shape_attrs.h"
#include "engine/ops/spatial_attrs.h"

#endif
