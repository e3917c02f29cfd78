/*
 * Operator descriptors of the reduce family (see engine/op.h).
 */
#include <stddef.h>

#include "engine/op.h"

const eng_op_desc *const eng_ops_reduce[] = {
    NULL,
};
