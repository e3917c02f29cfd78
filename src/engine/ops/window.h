/*
 * The window of the described convolution-like ops that keep an
 * eng_conv_attrs record (ConvTranspose, LpPool, QLinearConv, ConvInteger):
 * parsing, the check of a stored record and the output extent, through the
 * window geometry every family shares (ops_int.h), plus `group`.
 *
 * Guarantees: a record that passes window_check has 0 <= n_spatial <=
 * ENG_MAX_SPATIAL (>= 1 with need_kernel), kernels 0 (from the weight) or
 * in [1, 2^31] (>= 1 with need_kernel), strides and dilations in [1, 2^31],
 * pads in [0, 2^31], group in [1, 2^31] and a known auto_pad.
 */
#ifndef ROUSE_ENGINE_OPS_WINDOW_H
#define ROUSE_ENGINE_OPS_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/op.h"
#include "engine/ops/ops_int.h"

/* Fills a (every field) from the node's window attributes; `group` is read
 * when has_group, otherwise a->group is 1. kernel_shape is required when
 * need_kernel; dilations are read when has_dilations. Ranges are
 * window_check's, which the loader runs after parsing. */
int window_parse(const eng_attr_ctx *c, eng_conv_attrs *a, bool need_kernel, bool has_dilations,
                 bool has_group);

/* The ranges above; ROUSE_EFORMAT naming the node and the attribute. */
int window_check(const eng_node *n, rouse_errbuf *eb, const eng_conv_attrs *a, bool need_kernel);

/* Output extent of spatial dim `dim` (input extent `size`) of a forward
 * window: SAME_* and VALID resolved into *pad_begin / *pad_end. */
int window_out(eng_infer_ctx *c, int dim, int64_t size, int64_t kernel, int64_t stride,
               int64_t dilation, int auto_pad, int64_t *pad_begin, int64_t *pad_end, int64_t *out);

#endif
