/*
 * Attribute records of the shape and data-movement ops (ops/shape.c,
 * ops/slice.c, ops/index.c). Plain data: compiled plans store the bytes and
 * the ops' check hooks validate them.
 *
 * Flags are ints holding 0 or 1 (a stored bool of another value would be
 * undefined behaviour to read), checked like every other field.
 *
 * Each record is what the op's parse hook made of the ONNX attributes;
 * after shape inference (`resolved`) some fields are normalized for the
 * concrete shapes, as each record says.
 */
#ifndef ROUSE_ENGINE_OPS_SHAPE_ATTRS_H
#define ROUSE_ENGINE_OPS_SHAPE_ATTRS_H

#include <stdint.h>

#include "engine/tensor.h"

/* Split outputs given by the `split` attribute (before opset 13). */
#define ENG_SPLIT_MAX 16

/* Shape (start/end since opset 15). Resolved: 0 <= start <= end <= rank. */
typedef struct eng_shape_range_attrs {
    int64_t start, end;
    int has_end; /* 0: to the last dim */
} eng_shape_range_attrs;

/* Slice. Before opset 10 starts/ends/axes are attributes (n entries,
 * axes[] as given, ENG_MAX_RANK at most); from opset 10 they are inputs and
 * n is 0 as parsed. Resolved: n = rank, axes[d] = d, and per dim the first
 * element read (starts), the exclusive bound after clamping (ends) and the
 * step; the output extent is the inferred shape. */
typedef struct eng_slice_attrs {
    int n;
    int8_t axes[ENG_MAX_RANK];
    int64_t starts[ENG_MAX_RANK], ends[ENG_MAX_RANK], steps[ENG_MAX_RANK];
} eng_slice_attrs;

/* Split along axis (as given; normalized when resolved). n_split -1 when the
 * sizes are not an attribute (equal parts, or input 'split' from opset 13). */
typedef struct eng_split_attrs {
    int64_t axis;
    int n_split;
    int64_t split[ENG_SPLIT_MAX];
} eng_split_attrs;

/* ConstantOfShape's `value` and EyeLike's output type: one element of
 * dtype, its bytes little-endian in value[] (EyeLike: dtype 0 = the input's
 * type; k is the diagonal). */
typedef struct eng_fill_attrs {
    int dtype;
    int64_t k;
    uint8_t value[8];
} eng_fill_attrs;

/* Pad modes. */
typedef enum eng_pad_mode {
    ENG_PAD_CONSTANT = 0,
    ENG_PAD_REFLECT,
    ENG_PAD_EDGE,
} eng_pad_mode;

/* Pad. Before opset 11 pads (n_pads = 2 * rank: all begins, then all ends)
 * and the fill value are attributes; from opset 11 both are inputs and
 * n_pads is 0 as parsed. Resolved: n_pads = 2 * rank with the pads of the
 * concrete input (they may be negative: cropping). */
typedef struct eng_pad_attrs {
    int mode; /* eng_pad_mode */
    int n_pads;
    int64_t pads[2 * ENG_MAX_RANK];
    float value;
} eng_pad_attrs;

/* Scatter reductions (opset 16). */
typedef enum eng_scatter_reduce {
    ENG_SCATTER_NONE = 0,
    ENG_SCATTER_ADD,
    ENG_SCATTER_MUL,
} eng_scatter_reduce;

/* GatherElements, ScatterElements, OneHot, Compress (axis as given,
 * normalized when resolved; Compress without axis: has_axis false),
 * ScatterND (reduction only), GatherND (batch_dims in axis). */
typedef struct eng_index_attrs {
    int64_t axis;
    int has_axis;  /* 0 or 1 */
    int reduction; /* eng_scatter_reduce */
} eng_index_attrs;

/* DepthToSpace / SpaceToDepth. crd: DepthToSpace mode CRD (else DCR). */
typedef struct eng_block_attrs {
    int64_t blocksize;
    int crd; /* 0 or 1 */
} eng_block_attrs;

/* Trilu: keep the upper (or lower) triangle from diagonal k; k comes from
 * the optional input 'k' at run time. */
typedef struct eng_trilu_attrs {
    int upper; /* 0 or 1 */
} eng_trilu_attrs;

/* ReverseSequence: batch_axis and time_axis, 0 and 1 in some order. */
typedef struct eng_revseq_attrs {
    int64_t batch_axis, time_axis;
} eng_revseq_attrs;

typedef union eng_shape_attrs {
    eng_shape_range_attrs range;
    eng_slice_attrs slice;
    eng_split_attrs split;
    eng_fill_attrs fill;
    eng_pad_attrs pad;
    eng_index_attrs index;
    eng_block_attrs block;
    eng_trilu_attrs trilu;
    eng_revseq_attrs revseq;
} eng_shape_attrs;

#endif
