/*
 * Helpers shared by the operator families under src/engine/ops/ (private to
 * them): the window geometry of Conv and the pools (attribute parsing, the
 * check of a stored record, the output size with auto_pad resolved into
 * explicit pads), shape text for messages, lists of axes, and the sentence
 * a reference kernel's status becomes.
 */
#ifndef ROUSE_ENGINE_OPS_OPS_INT_H
#define ROUSE_ENGINE_OPS_OPS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/op.h"

/* Attribute values above this are rejected: no real kernel, stride or pad is
 * that large, and the bound keeps shape arithmetic far from int64 overflow. */
#define OPS_MAX_DIM ((int64_t)1 << 31)

/* Where a window's fields live in an op's record. Unset fields keep their
 * defaults (kernel 0 = "from the weight", stride 1, dilation 1, pad 0) for
 * all ENG_MAX_SPATIAL dims, so a kernel that learns n_spatial later finds
 * them ready. */
struct ops_window {
    int *n_spatial;
    int64_t *kernel, *stride, *dilation, *pad_begin, *pad_end;
};

/* Reads kernel_shape, strides, dilations (when has_dilations) and pads:
 * the lists must agree on the number of spatial dims; an explicit kernel
 * size must be >= 1. Ranges of the rest are ops_check_window's. */
int ops_parse_window(const eng_attr_ctx *c, const struct ops_window *w, bool need_kernel,
                     bool has_dilations);
/* auto_pad as an eng_auto_pad (NOTSET when absent). */
int ops_parse_auto_pad(const eng_attr_ctx *c, int *out);

/* The stored form of a window (a record from parse or from a plan): every
 * field in range for all ENG_MAX_SPATIAL dims, kernel sizes >= 1 when
 * need_kernel (0 otherwise means "from the weight"), a valid auto_pad.
 * ROUSE_EFORMAT naming the node and the attribute. */
int ops_check_window(const eng_node *n, rouse_errbuf *eb, int n_spatial, const int64_t *kernel,
                     const int64_t *stride, const int64_t *dilation, const int64_t *pad_begin,
                     const int64_t *pad_end, int auto_pad, bool need_kernel);

/* One spatial dim of a window, for ops_window_out. */
struct ops_window_dim {
    int64_t kernel, stride, dilation;
    int64_t *pad_begin, *pad_end;
    int auto_pad;
    int ceil_mode;
};

/* Output size along spatial dim `dim` of input 0 of size `size`, resolving
 * auto_pad into explicit pads. */
int ops_window_out(eng_infer_ctx *c, int dim, int64_t size, const struct ops_window_dim *w,
                   int64_t *out);

/* Shape text for messages; `slot` picks one of two buffers per call site. */
struct ops_shapebuf {
    char s[2][160];
};
const char *ops_shp(struct ops_shapebuf *b, int slot, int rank, const int64_t *shape);

/* Normalizes n axes in place against `rank`, rejects duplicates, sorts. */
int ops_norm_axes(eng_infer_ctx *c, const char *what, int64_t *axes, int n, int rank);

/* The sentence for a reference kernel's status rc (< 0): an element type
 * of input `x` the kernel lacks, or the error's own text. Returns rc. */
int ops_ref_status(const eng_node *n, rouse_errbuf *eb, int rc, const eng_tensor *x);

/* A stored bool or 0/1 int read as bytes: records from plans are not
 * trusted to hold a valid bool. */
bool ops_bool_valid(const bool *b);

#endif
