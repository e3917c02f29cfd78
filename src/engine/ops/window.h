/*
 * Convolution and pooling windows for the described ops (ConvTranspose,
 * LpPool, QLinearConv, ConvInteger): parsing of kernel_shape / strides /
 * dilations / pads / auto_pad into an eng_conv_attrs, the check of a stored
 * record, and the output extent of one spatial dim with auto_pad resolved.
 *
 * Guarantees: a record accepted by window_parse or window_valid has
 * 0 <= n_spatial <= ENG_MAX_SPATIAL, kernels, strides and dilations in
 * [1, 2^31], pads in [0, 2^31], group in [1, 2^31] and a known auto_pad.
 */
#ifndef ROUSE_ENGINE_OPS_WINDOW_H
#define ROUSE_ENGINE_OPS_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/op.h"

#define WINDOW_MAX_DIM ((int64_t)1 << 31)

/* Fills a (every field) from the node's window attributes; `group` is read
 * when has_group, otherwise a->group is 1. kernel_shape is required when
 * need_kernel; dilations are read when has_dilations. */
int window_parse(const eng_attr_ctx *c, eng_conv_attrs *a, bool need_kernel, bool has_dilations,
                 bool has_group);

/* The ranges window_parse guarantees. */
bool window_valid(const eng_conv_attrs *a);

/* Output extent of spatial dim `dim` (input extent `size`) of a forward
 * window (Conv, pools): resolves SAME_* and VALID into pad_begin/pad_end.
 * ROUSE_EMISMATCH naming the node when the padded input is smaller than
 * the dilated kernel. */
int window_out(eng_infer_ctx *c, int dim, int64_t size, int64_t kernel, int64_t stride,
               int64_t dilation, int auto_pad, int64_t *pad_begin, int64_t *pad_end, int64_t *out);

#endif
