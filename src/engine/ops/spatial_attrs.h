/* Attribute records of the resampling, transposed convolution and the extra pools. */
#ifndef ROUSE_ENGINE_OPS_SPATIAL_ATTRS_H
#define ROUSE_ENGINE_OPS_SPATIAL_ATTRS_H

#include <stdint.h>

enum { ENG_RESIZE_NEAREST, ENG_RESIZE_LINEAR, ENG_RESIZE_CUBIC };

/* Coordinate transformation modes of Resize (ONNX spellings in spatial.c). */
enum {
    ENG_COORD_HALF_PIXEL,
    ENG_COORD_PYTORCH_HALF_PIXEL,
    ENG_COORD_ALIGN_CORNERS,
    ENG_COORD_ASYMMETRIC,
    ENG_COORD_TF_HALF_PIXEL_FOR_NN,
    ENG_COORD_TF_CROP_AND_RESIZE,
};

/* Rounding of Resize's nearest mode; SIMPLE is the rule before opset 11
 * (Resize-10, Upsample): floor when enlarging, ceil when shrinking. */
enum {
    ENG_NEAREST_ROUND_PREFER_FLOOR,
    ENG_NEAREST_ROUND_PREFER_CEIL,
    ENG_NEAREST_FLOOR,
    ENG_NEAREST_CEIL,
    ENG_NEAREST_SIMPLE,
};

/* Resize and Upsample. n_scales/scales hold Upsample-7's scales attribute
 * as parsed (-1 when absent); after shape inference they hold the scale of
 * every dim of the input (given, or output/input extent when sizes are
 * given), which the coordinate transform divides by. */
typedef struct eng_resize_attrs {
    int mode;    /* ENG_RESIZE_* */
    int coord;   /* ENG_COORD_* */
    int nearest; /* ENG_NEAREST_* */
    int exclude_outside;
    float cubic_a;
    float extrapolation;
    int n_scales;
    double scales[8]; /* ENG_MAX_RANK */
} eng_resize_attrs;

/* ConvTranspose: the window of eng_conv_attrs (pads as given; after shape
 * inference explicit, and possibly negative when output_shape asks for more
 * than the full transposed extent), output_padding, and output_shape when
 * given (n_output_shape 0 otherwise: spatial dims only, or with N and C
 * first as some exporters write, then stripped). */
typedef struct eng_convtr_attrs {
    eng_conv_attrs w;
    int64_t output_padding[3]; /* ENG_MAX_SPATIAL */
    int n_output_shape;
    int64_t output_shape[3];
} eng_convtr_attrs;

/* LpPool (window in w: kernel, strides, pads, auto_pad) and GlobalLpPool. */
typedef struct eng_lppool_attrs {
    eng_conv_attrs w;
    float p;
} eng_lppool_attrs;

typedef union eng_spatial_attrs {
    eng_resize_attrs resize;
    eng_convtr_attrs convtr;
    eng_lppool_attrs lppool;
} eng_spatial_attrs;

#endif
