/*
 * Operator descriptors of the shape family (see engine/op.h).
 */
#include <stddef.h>

#include "engine/op.h"

const eng_op_desc *const eng_ops_shape[] = {
    NULL,
};
