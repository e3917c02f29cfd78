/* Shape and type inference: tables of (op, attributes, input shapes) ->
 * output shape, resolved pads, or error code and message, following the
 * cases of the ONNX operator documentation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "helpers.h"

#define MAX_TEST_INPUTS 6
#define MAX_TEST_OUTPUTS 3

/* An input (or an expected output). dtype 0 means float. */
struct tin {
    bool set;
    bool omitted;
    int dtype;
    int rank;
    int64_t shape[ENG_MAX_RANK];
    const void *data;
};

#define T(...)                                                                                     \
    {                                                                                              \
        .set = true, SHAPE(__VA_ARGS__)                                                            \
    }
#define TD(dt, ...)                                                                                \
    {                                                                                              \
        .set = true, .dtype = ENG_DT_##dt, SHAPE(__VA_ARGS__)                                      \
    }
#define SCALAR(dt)                                                                                 \
    {                                                                                              \
        .set = true, .dtype = ENG_DT_##dt, .rank = 0                                               \
    }
#define OMIT                                                                                       \
    {                                                                                              \
        .set = true, .omitted = true                                                               \
    }
/* A known int64 vector: Reshape's shape input. */
#define I64(...)                                                                                   \
    {                                                                                              \
        .set = true, .dtype = ENG_DT_INT64, .rank = 1, .shape = {NINTS(__VA_ARGS__)},              \
        .data = (const int64_t[])                                                                  \
        {                                                                                          \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
#define F32(v)                                                                                     \
    {                                                                                              \
        .set = true, .dtype = ENG_DT_FLOAT, .rank = 0, .data = (const float[])                     \
        {                                                                                          \
            v                                                                                      \
        }                                                                                          \
    }

struct scase {
    const char *what;
    eng_op op;
    int opset; /* 0 = 13 */
    onnx_attr attrs[MAX_TEST_ATTRS];
    struct tin in[MAX_TEST_INPUTS];
    int n_out; /* 0 = 1 */
    int rc;
    const char *msg; /* fragment of the error message */
    struct tin out, out2;
    bool check_pads;
    int64_t pb[ENG_MAX_SPATIAL], pe[ENG_MAX_SPATIAL];
};

#define BIG ((int64_t)1 << 40)

static const struct scase cases[] = {
    /* ---- Conv ---- */
    {"conv resnet stem",
     ENG_OP_CONV,
     0,
     {A_INTS("kernel_shape", 7, 7), A_INTS("strides", 2, 2), A_INTS("pads", 3, 3, 3, 3)},
     {T(1, 3, 224, 224), T(64, 3, 7, 7), T(64)},
     .out = T(1, 64, 112, 112),
     .check_pads = true,
     .pb = {3, 3},
     .pe = {3, 3}},
    {"conv kernel from weight",
     ENG_OP_CONV,
     0,
     {{0}},
     {T(1, 3, 5, 5), T(2, 3, 3, 3), T(2)},
     .out = T(1, 2, 3, 3)},
    {"conv_with_strides_padding",
     ENG_OP_CONV,
     0,
     {A_INTS("kernel_shape", 3, 3), A_INTS("strides", 2, 2), A_INTS("pads", 1, 1, 1, 1)},
     {T(1, 1, 7, 5), T(1, 1, 3, 3)},
     .out = T(1, 1, 4, 3)},
    {"conv_with_strides_no_padding",
     ENG_OP_CONV,
     0,
     {A_INTS("strides", 2, 2)},
     {T(1, 1, 7, 5), T(1, 1, 3, 3)},
     .out = T(1, 1, 3, 2)},
    {"conv_with_strides_and_asymmetric_padding",
     ENG_OP_CONV,
     0,
     {A_INTS("strides", 2, 2), A_INTS("pads", 1, 0, 1, 0)},
     {T(1, 1, 7, 5), T(1, 1, 3, 3)},
     .out = T(1, 1, 4, 2)},
    {"conv SAME_UPPER odd total pad goes to the end",
     ENG_OP_CONV,
     0,
     {A_INTS("strides", 2, 2), A_STR("auto_pad", "SAME_UPPER")},
     {T(1, 1, 6, 6), T(1, 1, 3, 3)},
     .out = T(1, 1, 3, 3),
     .check_pads = true,
     .pb = {0, 0},
     .pe = {1, 1}},
    {"conv SAME_LOWER odd total pad goes to the start",
     ENG_OP_CONV,
     0,
     {A_INTS("strides", 2, 2), A_STR("auto_pad", "SAME_LOWER")},
     {T(1, 1, 6, 6), T(1, 1, 3, 3)},
     .out = T(1, 1, 3, 3),
     .check_pads = true,
     .pb = {1, 1},
     .pe = {0, 0}},
    {"conv SAME_UPPER even kernel",
     ENG_OP_CONV,
     0,
     {A_STR("auto_pad", "SAME_UPPER")},
     {T(1, 1, 5, 7), T(1, 1, 4, 2)},
     .out = T(1, 1, 5, 7),
     .check_pads = true,
     .pb = {1, 0},
     .pe = {2, 1}},
    {"conv SAME_LOWER even kernel",
     ENG_OP_CONV,
     0,
     {A_STR("auto_pad", "SAME_LOWER")},
     {T(1, 1, 5, 7), T(1, 1, 4, 2)},
     .out = T(1, 1, 5, 7),
     .check_pads = true,
     .pb = {2, 1},
     .pe = {1, 0}},
    {"conv SAME_UPPER with dilation",
     ENG_OP_CONV,
     0,
     {A_STR("auto_pad", "SAME_UPPER"), A_INTS("dilations", 2, 2)},
     {T(1, 1, 7, 7), T(1, 1, 3, 3)},
     .out = T(1, 1, 7, 7),
     .check_pads = true,
     .pb = {2, 2},
     .pe = {2, 2}},
    {"conv VALID overrides pads",
     ENG_OP_CONV,
     0,
     {A_INTS("strides", 2, 2), A_STR("auto_pad", "VALID"), A_INTS("pads", 1, 1, 1, 1)},
     {T(1, 1, 5, 5), T(1, 1, 3, 3)},
     .out = T(1, 1, 2, 2),
     .check_pads = true,
     .pb = {0, 0},
     .pe = {0, 0}},
    {"conv dilations",
     ENG_OP_CONV,
     0,
     {A_INTS("dilations", 2, 2)},
     {T(1, 1, 7, 7), T(1, 1, 3, 3)},
     .out = T(1, 1, 3, 3)},
    {"conv group 2",
     ENG_OP_CONV,
     0,
     {A_INT("group", 2)},
     {T(1, 4, 8, 8), T(8, 2, 3, 3)},
     .out = T(1, 8, 6, 6)},
    {"conv depthwise",
     ENG_OP_CONV,
     0,
     {A_INT("group", 32), A_INTS("pads", 1, 1, 1, 1)},
     {T(1, 32, 10, 10), T(32, 1, 3, 3), T(32)},
     .out = T(1, 32, 10, 10)},
    {"conv 1-D",
     ENG_OP_CONV,
     0,
     {A_INTS("strides", 2), A_INTS("pads", 1, 1)},
     {T(2, 2, 10), T(4, 2, 3)},
     .out = T(2, 4, 5)},
    {"conv 3-D",
     ENG_OP_CONV,
     0,
     {{0}},
     {T(1, 1, 4, 4, 4), T(1, 1, 2, 2, 2)},
     .out = T(1, 1, 3, 3, 3)},
    {"conv omitted bias",
     ENG_OP_CONV,
     0,
     {{0}},
     {T(1, 3, 5, 5), T(2, 3, 3, 3), OMIT},
     .out = T(1, 2, 3, 3)},
    {"conv channels",
     ENG_OP_CONV,
     0,
     {{0}},
     {T(1, 4, 5, 5), T(2, 3, 3, 3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "node 'n' (Conv): input 'X' has 4 channels, weight expects 3"},
    {"conv channels with groups",
     ENG_OP_CONV,
     0,
     {A_INT("group", 2)},
     {T(1, 4, 5, 5), T(2, 3, 3, 3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'X' has 4 channels, weight expects 6 (3 per group x 2 groups)"},
    {"conv M not multiple of group",
     ENG_OP_CONV,
     0,
     {A_INT("group", 2)},
     {T(1, 4, 5, 5), T(3, 2, 3, 3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'W' has 3 output channels, not a multiple of group 2"},
    {"conv bias shape",
     ENG_OP_CONV,
     0,
     {{0}},
     {T(1, 3, 5, 5), T(2, 3, 3, 3), T(3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'B' has shape [3], expected [2]"},
    {"conv kernel_shape vs weight",
     ENG_OP_CONV,
     0,
     {A_INTS("kernel_shape", 5, 5)},
     {T(1, 3, 9, 9), T(2, 3, 3, 3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "attribute 'kernel_shape' disagrees with input 'W'"},
    {"conv attribute rank vs input",
     ENG_OP_CONV,
     0,
     {A_INTS("strides", 1)},
     {T(1, 3, 9, 9), T(2, 3, 3, 3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "attributes describe 1 spatial dims, input 'X' [1, 3, 9, 9] has 2"},
    {"conv weight rank",
     ENG_OP_CONV,
     0,
     {{0}},
     {T(1, 3, 9, 9), T(2, 3, 3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'W' [2, 3, 3] has rank 3, input 'X' [1, 3, 9, 9]"},
    {"conv input rank",
     ENG_OP_CONV,
     0,
     {{0}},
     {T(1, 3), T(2, 3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'X' must have rank >= 3"},
    {"conv input smaller than kernel",
     ENG_OP_CONV,
     0,
     {{0}},
     {T(1, 1, 2, 2), T(1, 1, 3, 3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "smaller than the kernel extent 3"},
    {"conv dilated kernel too big",
     ENG_OP_CONV,
     0,
     {A_INTS("dilations", 3, 1)},
     {T(1, 1, 6, 6), T(1, 1, 3, 3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'X' has size 6 (padded 6) at spatial dim 0, smaller than the kernel extent 7"},
    {"conv int64",
     ENG_OP_CONV,
     0,
     {{0}},
     {TD(INT64, 1, 1, 3, 3), TD(INT64, 1, 1, 3, 3)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "node 'n' (Conv): element type int64 of input 'X' is not supported"},
    {"conv weight dtype",
     ENG_OP_CONV,
     0,
     {{0}},
     {T(1, 1, 3, 3), TD(DOUBLE, 1, 1, 3, 3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'W' is double, input 'X' is float"},
    {"conv one input",
     ENG_OP_CONV,
     0,
     {{0}},
     {T(1, 1, 3, 3)},
     .rc = ROUSE_EFORMAT,
     .msg = "expects 2 to 3 inputs, got 1"},
    {"conv omitted weight",
     ENG_OP_CONV,
     0,
     {{0}},
     {T(1, 1, 3, 3), OMIT},
     .rc = ROUSE_EFORMAT,
     .msg = "input 'W' is required"},
    {"conv 4 spatial dims",
     ENG_OP_CONV,
     0,
     {{0}},
     {T(1, 1, 2, 2, 2, 2), T(1, 1, 1, 1, 1, 1)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "input 'X' has 4 spatial dims, at most 3"},
    {"conv two outputs",
     ENG_OP_CONV,
     0,
     {{0}},
     {T(1, 1, 3, 3), T(1, 1, 3, 3)},
     .n_out = 2,
     .rc = ROUSE_EFORMAT,
     .msg = "expects 1 output, got 2"},

    /* ---- MaxPool / AveragePool ---- */
    {"maxpool_2d_ceil",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 3, 3), A_INTS("strides", 2, 2), A_INT("ceil_mode", 1)},
     {T(1, 1, 4, 4)},
     .out = T(1, 1, 2, 2)},
    {"maxpool 4x4 k3 s2 floor",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 3, 3), A_INTS("strides", 2, 2)},
     {T(1, 1, 4, 4)},
     .out = T(1, 1, 1, 1)},
    {"ceil_mode is not an attribute before opset 10",
     ENG_OP_MAXPOOL,
     9,
     {A_INTS("kernel_shape", 3, 3), A_INTS("strides", 2, 2), A_INT("ceil_mode", 1)},
     {T(1, 1, 4, 4)},
     .out = T(1, 1, 1, 1)},
    {"ceil window starting in the right pad is dropped",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 2, 2), A_INTS("strides", 2, 2), A_INTS("pads", 1, 1, 1, 1),
      A_INT("ceil_mode", 1)},
     {T(1, 1, 5, 5)},
     .out = T(1, 1, 3, 3),
     .check_pads = true,
     .pb = {1, 1},
     .pe = {1, 1}},
    {"ceil window starting inside the input is kept",
     ENG_OP_AVGPOOL,
     12,
     {A_INTS("kernel_shape", 3), A_INTS("strides", 2), A_INTS("pads", 1, 1), A_INT("ceil_mode", 1)},
     {T(1, 1, 6)},
     .out = T(1, 1, 4)},
    {"ceil with stride > kernel",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 1), A_INTS("strides", 3), A_INT("ceil_mode", 1)},
     {T(1, 1, 5)},
     .out = T(1, 1, 2)},
    {"ceil with stride > kernel, last window inside",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 1), A_INTS("strides", 3), A_INT("ceil_mode", 1)},
     {T(1, 1, 8)},
     .out = T(1, 1, 3)},
    {"maxpool_2d_dilations",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 2, 2), A_INTS("dilations", 2, 2)},
     {T(1, 1, 4, 4)},
     .out = T(1, 1, 2, 2)},
    {"maxpool_2d_ceil with dilations",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 2, 2), A_INTS("dilations", 2, 2), A_INTS("strides", 2, 2),
      A_INT("ceil_mode", 1)},
     {T(1, 1, 5, 5)},
     .out = T(1, 1, 2, 2)},
    {"maxpool_2d_same_upper",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 3, 3), A_STR("auto_pad", "SAME_UPPER")},
     {T(1, 1, 5, 5)},
     .out = T(1, 1, 5, 5),
     .check_pads = true,
     .pb = {1, 1},
     .pe = {1, 1}},
    {"maxpool_2d_precomputed_same_upper",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 3, 3), A_INTS("strides", 2, 2), A_STR("auto_pad", "SAME_UPPER")},
     {T(1, 1, 5, 5)},
     .out = T(1, 1, 3, 3),
     .check_pads = true,
     .pb = {1, 1},
     .pe = {1, 1}},
    {"averagepool_2d_same_upper",
     ENG_OP_AVGPOOL,
     12,
     {A_INTS("kernel_shape", 2, 2), A_STR("auto_pad", "SAME_UPPER")},
     {T(1, 3, 32, 32)},
     .out = T(1, 3, 32, 32),
     .check_pads = true,
     .pb = {0, 0},
     .pe = {1, 1}},
    {"averagepool_2d_same_lower",
     ENG_OP_AVGPOOL,
     12,
     {A_INTS("kernel_shape", 2, 2), A_STR("auto_pad", "SAME_LOWER")},
     {T(1, 3, 32, 32)},
     .out = T(1, 3, 32, 32),
     .check_pads = true,
     .pb = {1, 1},
     .pe = {0, 0}},
    {"SAME ignores ceil_mode",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 1), A_INTS("strides", 3), A_STR("auto_pad", "SAME_UPPER"),
      A_INT("ceil_mode", 1)},
     {T(1, 1, 5)},
     .out = T(1, 1, 2),
     .check_pads = true,
     .pb = {0},
     .pe = {0}},
    {"averagepool_2d_pads",
     ENG_OP_AVGPOOL,
     12,
     {A_INTS("kernel_shape", 3, 3), A_INTS("pads", 2, 2, 2, 2)},
     {T(1, 3, 28, 28)},
     .out = T(1, 3, 30, 30)},
    {"averagepool_3d_default",
     ENG_OP_AVGPOOL,
     12,
     {A_INTS("kernel_shape", 2, 2, 2)},
     {T(1, 3, 32, 32, 32)},
     .out = T(1, 3, 31, 31, 31)},
    {"maxpool_1d_default",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 2)},
     {T(1, 3, 32)},
     .out = T(1, 3, 31)},
    {"maxpool_2d_uint8",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 5, 5), A_INTS("pads", 2, 2, 2, 2)},
     {TD(UINT8, 1, 1, 5, 5)},
     .out = TD(UINT8, 1, 1, 5, 5)},
    {"maxpool with indices",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 2, 2), A_INTS("strides", 2, 2)},
     {T(1, 1, 4, 4)},
     .n_out = 2,
     .out = T(1, 1, 2, 2),
     .out2 = TD(INT64, 1, 1, 2, 2)},
    {"maxpool indices before opset 8",
     ENG_OP_MAXPOOL,
     7,
     {A_INTS("kernel_shape", 2, 2)},
     {T(1, 1, 4, 4)},
     .n_out = 2,
     .rc = ROUSE_EFORMAT,
     .msg = "expects 1 output, got 2"},
    {"avgpool int8",
     ENG_OP_AVGPOOL,
     12,
     {A_INTS("kernel_shape", 2, 2)},
     {TD(INT8, 1, 1, 4, 4)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "element type int8 of input 'X' is not supported"},
    {"pool kernel rank vs input",
     ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 2, 2)},
     {T(1, 1, 4, 4, 4)},
     .rc = ROUSE_EMISMATCH,
     .msg = "node 'n' (MaxPool): attribute 'kernel_shape' has 2 values, input 'X' [1, 1, 4, 4, 4] "
            "has 3 spatial dims"},
    {"pool kernel too big",
     ENG_OP_AVGPOOL,
     12,
     {A_INTS("kernel_shape", 5, 5)},
     {T(1, 1, 4, 4)},
     .rc = ROUSE_EMISMATCH,
     .msg = "smaller than the kernel extent 5"},

    /* ---- GlobalAveragePool ---- */
    {"gap 2-D", ENG_OP_GLOBAL_AVGPOOL, 0, {{0}}, {T(1, 3, 7, 7)}, .out = T(1, 3, 1, 1)},
    {"gap 1-D", ENG_OP_GLOBAL_AVGPOOL, 0, {{0}}, {T(2, 4, 5)}, .out = T(2, 4, 1)},
    {"gap rank 2",
     ENG_OP_GLOBAL_AVGPOOL,
     0,
     {{0}},
     {T(2, 4)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'X' must have rank >= 3"},

    /* ---- Gemm ---- */
    {"gemm", ENG_OP_GEMM, 0, {{0}}, {T(2, 3), T(3, 4)}, .out = T(2, 4)},
    {"gemm transA", ENG_OP_GEMM, 0, {A_INT("transA", 1)}, {T(3, 2), T(3, 4)}, .out = T(2, 4)},
    {"gemm transB", ENG_OP_GEMM, 0, {A_INT("transB", 1)}, {T(2, 3), T(4, 3), T(4)}, .out = T(2, 4)},
    {"gemm both",
     ENG_OP_GEMM,
     0,
     {A_INT("transA", 1), A_INT("transB", 1)},
     {T(3, 2), T(4, 3), T(2, 4)},
     .out = T(2, 4)},
    {"gemm C column", ENG_OP_GEMM, 0, {{0}}, {T(2, 3), T(3, 4), T(2, 1)}, .out = T(2, 4)},
    {"gemm C [1]", ENG_OP_GEMM, 0, {{0}}, {T(2, 3), T(3, 4), T(1)}, .out = T(2, 4)},
    {"gemm C scalar", ENG_OP_GEMM, 0, {{0}}, {T(2, 3), T(3, 4), SCALAR(FLOAT)}, .out = T(2, 4)},
    {"gemm C wrong",
     ENG_OP_GEMM,
     0,
     {{0}},
     {T(2, 3), T(3, 4), T(3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'C' [3] cannot be broadcast to [2, 4]"},
    {"gemm C not unidirectional",
     ENG_OP_GEMM,
     0,
     {{0}},
     {T(2, 3), T(3, 4), T(4, 4)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'C' [4, 4] cannot be broadcast to [2, 4]"},
    {"gemm K",
     ENG_OP_GEMM,
     0,
     {{0}},
     {T(2, 3), T(4, 4)},
     .rc = ROUSE_EMISMATCH,
     .msg = "node 'n' (Gemm): input 'A' [2, 3] has inner dim 3, input 'B' [4, 4] has 4"},
    {"gemm 3-D",
     ENG_OP_GEMM,
     0,
     {{0}},
     {T(1, 2, 3), T(3, 4)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'A' must be 2-D, got [1, 2, 3]"},

    /* ---- MatMul ---- */
    {"matmul 2-D", ENG_OP_MATMUL, 0, {{0}}, {T(2, 3), T(3, 4)}, .out = T(2, 4)},
    {"matmul 1-D A", ENG_OP_MATMUL, 0, {{0}}, {T(3), T(3, 4)}, .out = T(4)},
    {"matmul 1-D B", ENG_OP_MATMUL, 0, {{0}}, {T(2, 3), T(3)}, .out = T(2)},
    {"matmul 1-D both", ENG_OP_MATMUL, 0, {{0}}, {T(3), T(3)}, .out = {.set = true, .rank = 0}},
    {"matmul 1-D A batched B", ENG_OP_MATMUL, 0, {{0}}, {T(3), T(5, 3, 4)}, .out = T(5, 4)},
    {"matmul batched A 1-D B", ENG_OP_MATMUL, 0, {{0}}, {T(5, 2, 3), T(3)}, .out = T(5, 2)},
    {"matmul batch broadcast",
     ENG_OP_MATMUL,
     0,
     {{0}},
     {T(5, 1, 2, 3), T(4, 3, 2)},
     .out = T(5, 4, 2, 2)},
    {"matmul batch one side", ENG_OP_MATMUL, 0, {{0}}, {T(2, 3), T(7, 3, 4)}, .out = T(7, 2, 4)},
    {"matmul int64",
     ENG_OP_MATMUL,
     0,
     {{0}},
     {TD(INT64, 2, 3), TD(INT64, 3, 4)},
     .out = TD(INT64, 2, 4)},
    {"matmul batch mismatch",
     ENG_OP_MATMUL,
     0,
     {{0}},
     {T(2, 2, 3), T(3, 3, 4)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'A' [2, 2, 3] and input 'B' [3, 3, 4] have batch dims that cannot be broadcast"},
    {"matmul inner mismatch",
     ENG_OP_MATMUL,
     0,
     {{0}},
     {T(2, 3), T(4, 4)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'A' [2, 3] and input 'B' [4, 4] have inner dims 3 and 4"},
    {"matmul scalar",
     ENG_OP_MATMUL,
     0,
     {{0}},
     {SCALAR(FLOAT), T(3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'A' is a scalar"},
    {"matmul dtype",
     ENG_OP_MATMUL,
     0,
     {{0}},
     {T(2, 3), TD(INT64, 3, 4)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'B' is int64, input 'A' is float"},
    {"matmul int8",
     ENG_OP_MATMUL,
     0,
     {{0}},
     {TD(INT8, 2, 3), TD(INT8, 3, 4)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "element type int8 of input 'A' is not supported"},

    /* ---- Add / Sub / Mul / Div ---- */
    {"add trailing", ENG_OP_ADD, 0, {{0}}, {T(2, 3, 4), T(4)}, .out = T(2, 3, 4)},
    {"sub both ways", ENG_OP_SUB, 0, {{0}}, {T(2, 1), T(1, 3)}, .out = T(2, 3)},
    {"mul scalar", ENG_OP_MUL, 0, {{0}}, {SCALAR(FLOAT), T(3)}, .out = T(3)},
    {"div zero dim", ENG_OP_DIV, 0, {{0}}, {T(0, 3), T(1, 3)}, .out = T(0, 3)},
    {"add int32",
     ENG_OP_ADD,
     0,
     {{0}},
     {TD(INT32, 4, 1, 5), TD(INT32, 3, 1)},
     .out = TD(INT32, 4, 3, 5)},
    {"add mismatch",
     ENG_OP_ADD,
     0,
     {{0}},
     {T(2, 3), T(3, 2)},
     .rc = ROUSE_EMISMATCH,
     .msg = "node 'n' (Add): input 'A' [2, 3] and input 'B' [3, 2] cannot be broadcast"},
    {"add zero vs five",
     ENG_OP_ADD,
     0,
     {{0}},
     {T(0), T(5)},
     .rc = ROUSE_EMISMATCH,
     .msg = "cannot be broadcast"},
    {"mul dtypes",
     ENG_OP_MUL,
     0,
     {{0}},
     {T(2), TD(INT64, 2)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'B' is int64, input 'A' is float"},
    {"add bool",
     ENG_OP_ADD,
     0,
     {{0}},
     {TD(BOOL, 2), TD(BOOL, 2)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "element type bool of input 'A' is not supported"},
    {"add numel overflow",
     ENG_OP_ADD,
     0,
     {{0}},
     {T(BIG, 1), T(1, BIG)},
     .rc = ROUSE_ETOOBIG,
     .msg = "output 0 of shape [1099511627776, 1099511627776] is too large"},

    /* ---- Unary ---- */
    {"relu", ENG_OP_RELU, 0, {{0}}, {T(2, 3)}, .out = T(2, 3)},
    {"relu double", ENG_OP_RELU, 0, {{0}}, {TD(DOUBLE, 2, 3)}, .out = TD(DOUBLE, 2, 3)},
    {"relu int32",
     ENG_OP_RELU,
     0,
     {{0}},
     {TD(INT32, 2)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "node 'n' (Relu): element type int32 of input 'X' is not supported"},
    {"sigmoid", ENG_OP_SIGMOID, 0, {{0}}, {T(1, 1000)}, .out = T(1, 1000)},
    {"tanh scalar", ENG_OP_TANH, 0, {{0}}, {SCALAR(FLOAT)}, .out = {.set = true, .rank = 0}},
    {"leakyrelu", ENG_OP_LEAKY_RELU, 0, {A_FLOAT("alpha", 0.1f)}, {T(4, 5)}, .out = T(4, 5)},
    {"relu two inputs",
     ENG_OP_RELU,
     0,
     {{0}},
     {T(2), T(2)},
     .rc = ROUSE_EFORMAT,
     .msg = "expects 1 input, got 2"},
    {"identity bool", ENG_OP_IDENTITY, 0, {{0}}, {TD(BOOL, 7)}, .out = TD(BOOL, 7)},
    {"identity string",
     ENG_OP_IDENTITY,
     0,
     {{0}},
     {TD(STRING, 7)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "element type string of input 'input' is not supported"},

    /* ---- Clip ---- */
    {"clip opset 6",
     ENG_OP_CLIP,
     6,
     {A_FLOAT("min", 0.0f), A_FLOAT("max", 6.0f)},
     {T(2, 3)},
     .out = T(2, 3)},
    {"clip opset 6 with inputs",
     ENG_OP_CLIP,
     6,
     {{0}},
     {T(2, 3), F32(0.0f)},
     .rc = ROUSE_EFORMAT,
     .msg = "expects 1 input, got 2"},
    {"clip opset 13 bounds",
     ENG_OP_CLIP,
     13,
     {{0}},
     {T(2, 3), F32(0.0f), F32(6.0f)},
     .out = T(2, 3)},
    {"clip opset 13 only max", ENG_OP_CLIP, 13, {{0}}, {T(2, 3), OMIT, F32(6.0f)}, .out = T(2, 3)},
    {"clip unknown min",
     ENG_OP_CLIP,
     13,
     {{0}},
     {T(2, 3), SCALAR(FLOAT)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "node 'n' (Clip): input 'min' must be a constant or a graph input"},
    {"clip min dtype",
     ENG_OP_CLIP,
     13,
     {{0}},
     {T(2, 3), SCALAR(INT64)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'min' is int64, input 'input' is float"},
    {"clip min not scalar",
     ENG_OP_CLIP,
     13,
     {{0}},
     {T(2, 3), T(2)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'min' must be a scalar, got [2]"},

    /* ---- Flatten ---- */
    {"flatten axis 0", ENG_OP_FLATTEN, 0, {A_INT("axis", 0)}, {T(2, 3, 4, 5)}, .out = T(1, 120)},
    {"flatten default", ENG_OP_FLATTEN, 0, {{0}}, {T(2, 3, 4, 5)}, .out = T(2, 60)},
    {"flatten axis 3", ENG_OP_FLATTEN, 0, {A_INT("axis", 3)}, {T(2, 3, 4, 5)}, .out = T(24, 5)},
    {"flatten axis r", ENG_OP_FLATTEN, 0, {A_INT("axis", 4)}, {T(2, 3, 4, 5)}, .out = T(120, 1)},
    {"flatten axis -1", ENG_OP_FLATTEN, 0, {A_INT("axis", -1)}, {T(2, 3, 4, 5)}, .out = T(24, 5)},
    {"flatten axis -r", ENG_OP_FLATTEN, 0, {A_INT("axis", -4)}, {T(2, 3, 4, 5)}, .out = T(1, 120)},
    {"flatten int64", ENG_OP_FLATTEN, 0, {{0}}, {TD(INT64, 2, 3)}, .out = TD(INT64, 2, 3)},
    {"flatten axis too big",
     ENG_OP_FLATTEN,
     0,
     {A_INT("axis", 5)},
     {T(2, 3, 4, 5)},
     .rc = ROUSE_EMISMATCH,
     .msg = "node 'n' (Flatten): axis 5 is out of range for input 'input' of rank 4"},
    {"flatten axis too small",
     ENG_OP_FLATTEN,
     0,
     {A_INT("axis", -5)},
     {T(2, 3, 4, 5)},
     .rc = ROUSE_EMISMATCH,
     .msg = "axis -5 is out of range"},
    {"flatten part overflow",
     ENG_OP_FLATTEN,
     0,
     {A_INT("axis", 1)},
     {T(0, BIG, BIG)},
     .rc = ROUSE_ETOOBIG,
     .msg = "flattened shape overflows"},

    /* ---- Reshape ---- */
    {"reshape -1", ENG_OP_RESHAPE, 0, {{0}}, {T(2, 3, 4), I64(4, -1)}, .out = T(4, 6)},
    {"reshape 0 copies", ENG_OP_RESHAPE, 0, {{0}}, {T(2, 3, 4), I64(0, -1)}, .out = T(2, 12)},
    {"reshape 0 and explicit",
     ENG_OP_RESHAPE,
     0,
     {{0}},
     {T(2, 3, 4), I64(0, 0, 2, 2)},
     .out = T(2, 3, 2, 2)},
    {"reshape to scalar",
     ENG_OP_RESHAPE,
     0,
     {{0}},
     {T(1, 1),
      {.set = true, .dtype = ENG_DT_INT64, .rank = 1, .shape = {0}, .data = (const int64_t[]){0}}},
     .out = {.set = true, .rank = 0}},
    {"reshape allowzero",
     ENG_OP_RESHAPE,
     14,
     {A_INT("allowzero", 1)},
     {T(0, 3), I64(3, 0)},
     .out = T(3, 0)},
    {"reshape allowzero before 14 is ignored",
     ENG_OP_RESHAPE,
     13,
     {A_INT("allowzero", 1)},
     {T(2, 3, 4), I64(0, 12)},
     .out = T(2, 12)},
    {"reshape allowzero 0 with -1",
     ENG_OP_RESHAPE,
     14,
     {A_INT("allowzero", 1)},
     {T(0, 3), I64(0, -1)},
     .rc = ROUSE_EMISMATCH,
     .msg = "has both 0 and -1 with allowzero=1"},
    {"reshape two -1",
     ENG_OP_RESHAPE,
     0,
     {{0}},
     {T(2, 3, 4), I64(-1, -1)},
     .rc = ROUSE_EMISMATCH,
     .msg = "node 'n' (Reshape): input 'shape' has more than one -1"},
    {"reshape -2",
     ENG_OP_RESHAPE,
     0,
     {{0}},
     {T(2, 3, 4), I64(-2, 12)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'shape' has invalid value -2 at index 0"},
    {"reshape count",
     ENG_OP_RESHAPE,
     0,
     {{0}},
     {T(2, 3, 4), I64(5, 5)},
     .rc = ROUSE_EMISMATCH,
     .msg = "cannot reshape input 'data' [2, 3, 4] (24 elements) to [5, 5]"},
    {"reshape -1 does not divide",
     ENG_OP_RESHAPE,
     0,
     {{0}},
     {T(2, 3, 4), I64(5, -1)},
     .rc = ROUSE_EMISMATCH,
     .msg = "-1 cannot be inferred"},
    {"reshape -1 beside zero dim",
     ENG_OP_RESHAPE,
     0,
     {{0}},
     {T(0, 3), I64(0, -1)},
     .rc = ROUSE_EMISMATCH,
     .msg = "-1 cannot be inferred"},
    {"reshape 0 past the input rank",
     ENG_OP_RESHAPE,
     0,
     {{0}},
     {T(24), I64(4, 0)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'shape' copies dim 1 (value 0) but input 'data' [24] has rank 1"},
    {"reshape unknown shape",
     ENG_OP_RESHAPE,
     0,
     {{0}},
     {T(2, 3, 4), TD(INT64, 2)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "node 'n' (Reshape): shape input must be a constant or a graph input"},
    {"reshape int32 shape",
     ENG_OP_RESHAPE,
     0,
     {{0}},
     {T(2, 3, 4), TD(INT32, 2)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'shape' must be int64, got int32"},
    {"reshape rank 9",
     ENG_OP_RESHAPE,
     0,
     {{0}},
     {T(1), I64(1, 1, 1, 1, 1, 1, 1, 1, 1)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "output rank 9 exceeds the maximum 8"},

    /* ---- Transpose ---- */
    {"transpose default reverses", ENG_OP_TRANSPOSE, 0, {{0}}, {T(2, 3, 4)}, .out = T(4, 3, 2)},
    {"transpose perm",
     ENG_OP_TRANSPOSE,
     0,
     {A_INTS("perm", 0, 2, 1)},
     {T(2, 3, 4)},
     .out = T(2, 4, 3)},
    {"transpose perm length",
     ENG_OP_TRANSPOSE,
     0,
     {A_INTS("perm", 1, 0)},
     {T(2, 3, 4)},
     .rc = ROUSE_EMISMATCH,
     .msg = "attribute 'perm' has 2 values, input 'data' has rank 3"},

    /* ---- Concat ---- */
    {"concat axis 1",
     ENG_OP_CONCAT,
     0,
     {A_INT("axis", 1)},
     {T(2, 3), T(2, 5), T(2, 1)},
     .out = T(2, 9)},
    {"concat axis -1", ENG_OP_CONCAT, 0, {A_INT("axis", -1)}, {T(2, 3), T(2, 5)}, .out = T(2, 8)},
    {"concat one input", ENG_OP_CONCAT, 0, {A_INT("axis", 0)}, {T(2, 3)}, .out = T(2, 3)},
    {"concat off-axis dims",
     ENG_OP_CONCAT,
     0,
     {A_INT("axis", 1)},
     {T(2, 3), T(2, 5), T(3, 1)},
     .rc = ROUSE_EMISMATCH,
     .msg = "node 'n' (Concat): input 'inputs[2]' [3, 1] does not match input 'inputs[0]' [2, 3] "
            "off axis 1"},
    {"concat ranks",
     ENG_OP_CONCAT,
     0,
     {A_INT("axis", 0)},
     {T(2, 3), T(2)},
     .rc = ROUSE_EMISMATCH,
     .msg = "does not match"},
    {"concat axis range",
     ENG_OP_CONCAT,
     0,
     {A_INT("axis", 2)},
     {T(2, 3), T(2, 3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "axis 2 is out of range for input 'inputs[0]' of rank 2"},
    {"concat dtypes",
     ENG_OP_CONCAT,
     0,
     {A_INT("axis", 0)},
     {T(2, 3), TD(INT64, 2, 3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'inputs[1]' is int64, input 'inputs[0]' is float"},
    {"concat omitted",
     ENG_OP_CONCAT,
     0,
     {A_INT("axis", 0)},
     {T(2, 3), OMIT},
     .rc = ROUSE_EFORMAT,
     .msg = "input 'inputs[1]' is required"},
    {"concat overflow",
     ENG_OP_CONCAT,
     0,
     {A_INT("axis", 0)},
     {T(INT64_MAX / 2 + 1, 0), T(INT64_MAX / 2 + 1, 0)},
     .rc = ROUSE_ETOOBIG,
     .msg = "concatenated dim overflows"},

    /* ---- BatchNormalization ---- */
    {"batchnorm",
     ENG_OP_BATCHNORM,
     15,
     {{0}},
     {T(1, 3, 4, 4), T(3), T(3), T(3), T(3)},
     .out = T(1, 3, 4, 4)},
    {"batchnorm 2-D",
     ENG_OP_BATCHNORM,
     9,
     {{0}},
     {T(8, 3), T(3), T(3), T(3), T(3)},
     .out = T(8, 3)},
    {"batchnorm param",
     ENG_OP_BATCHNORM,
     15,
     {{0}},
     {T(1, 3, 4, 4), T(3), T(4), T(3), T(3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "node 'n' (BatchNormalization): input 'B' has shape [4], input 'X' has 3 channels"},
    {"batchnorm training outputs",
     ENG_OP_BATCHNORM,
     9,
     {{0}},
     {T(1, 3, 4, 4), T(3), T(3), T(3), T(3)},
     .n_out = 3,
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "training outputs (output 1) are not supported"},
    {"batchnorm missing input",
     ENG_OP_BATCHNORM,
     9,
     {{0}},
     {T(1, 3, 4, 4), T(3), T(3), T(3)},
     .rc = ROUSE_EFORMAT,
     .msg = "expects 5 inputs, got 4"},

    /* ---- Softmax ---- */
    {"softmax default", ENG_OP_SOFTMAX, 13, {{0}}, {T(2, 10)}, .out = T(2, 10)},
    {"softmax legacy", ENG_OP_SOFTMAX, 11, {{0}}, {T(2, 3, 4)}, .out = T(2, 3, 4)},
    {"softmax axis",
     ENG_OP_SOFTMAX,
     13,
     {A_INT("axis", 2)},
     {T(2, 10)},
     .rc = ROUSE_EMISMATCH,
     .msg = "node 'n' (Softmax): axis 2 is out of range for input 'input' of rank 2"},

    /* ---- Dropout ---- */
    {"dropout", ENG_OP_DROPOUT, 13, {{0}}, {T(2, 3)}, .out = T(2, 3)},
    {"dropout mask bool",
     ENG_OP_DROPOUT,
     13,
     {{0}},
     {T(2, 3), F32(0.1f)},
     .n_out = 2,
     .out = T(2, 3),
     .out2 = TD(BOOL, 2, 3)},
    {"dropout mask typed before 10",
     ENG_OP_DROPOUT,
     7,
     {{0}},
     {T(2, 3)},
     .n_out = 2,
     .out = T(2, 3),
     .out2 = T(2, 3)},
    {"dropout ratio input before 12",
     ENG_OP_DROPOUT,
     10,
     {{0}},
     {T(2, 3), F32(0.1f)},
     .rc = ROUSE_EFORMAT,
     .msg = "expects 1 input, got 2"},
    {"dropout training",
     ENG_OP_DROPOUT,
     13,
     {{0}},
     {T(2, 3), OMIT, {.set = true, .dtype = ENG_DT_BOOL, .rank = 0, .data = (const uint8_t[]){1}}},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "training_mode = true with ratio 0.5 drops at random"},
    {"dropout inference mode",
     ENG_OP_DROPOUT,
     13,
     {{0}},
     {T(2, 3), OMIT, {.set = true, .dtype = ENG_DT_BOOL, .rank = 0, .data = (const uint8_t[]){0}}},
     .out = T(2, 3)},

    /* ---- Cast, Erf, Sqrt ---- */
    {"cast int64 to float",
     ENG_OP_CAST,
     0,
     {A_INT("to", 1)},
     {TD(INT64, 1, 1, 1, 32)},
     .out = T(1, 1, 1, 32)},
    {"cast float to bool", ENG_OP_CAST, 0, {A_INT("to", 9)}, {T(4)}, .out = TD(BOOL, 4)},
    {"cast bool to bool", ENG_OP_CAST, 0, {A_INT("to", 9)}, {TD(BOOL, 4)}, .out = TD(BOOL, 4)},
    {"cast from string",
     ENG_OP_CAST,
     0,
     {A_INT("to", 1)},
     {TD(STRING, 4)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "element type string of input 'input' is not supported"},
    {"erf", ENG_OP_ERF, 0, {{0}}, {T(2, 512)}, .out = T(2, 512)},
    {"erf int",
     ENG_OP_ERF,
     0,
     {{0}},
     {TD(INT32, 2)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "element type int32 of input 'input' is not supported"},
    {"sqrt double", ENG_OP_SQRT, 0, {{0}}, {TD(DOUBLE, 3, 1)}, .out = TD(DOUBLE, 3, 1)},

    /* ---- Gather ---- */
    {"gather embedding",
     ENG_OP_GATHER,
     0,
     {{0}},
     {T(1000, 128), TD(INT64, 1, 32)},
     .out = T(1, 32, 128)},
    {"gather axis 1 scalar index",
     ENG_OP_GATHER,
     0,
     {A_INT("axis", 1)},
     {T(1, 32, 128), SCALAR(INT64)},
     .out = T(1, 128)},
    {"gather negative axis int32 indices",
     ENG_OP_GATHER,
     0,
     {A_INT("axis", -1)},
     {TD(INT8, 2, 3, 4), TD(INT32, 5, 6)},
     .out = TD(INT8, 2, 3, 5, 6)},
    {"gather axis out of range",
     ENG_OP_GATHER,
     0,
     {A_INT("axis", 2)},
     {T(3, 4), TD(INT64, 2)},
     .rc = ROUSE_EMISMATCH,
     .msg = "axis 2 is out of range for input 'data' of rank 2"},
    {"gather float indices",
     ENG_OP_GATHER,
     0,
     {{0}},
     {T(3, 4), T(2)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'indices' must be int32 or int64, got float"},
    {"gather scalar data",
     ENG_OP_GATHER,
     0,
     {{0}},
     {T(), TD(INT64, 2)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'data' must have rank >= 1"},
    {"gather rank too large",
     ENG_OP_GATHER,
     0,
     {{0}},
     {T(2, 2, 2, 2, 2), TD(INT64, 2, 2, 2, 2, 2)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "output rank 9"},

    /* ---- Pow ---- */
    {"pow scalar exponent", ENG_OP_POW, 0, {{0}}, {T(1, 32, 128), F32(2.0f)}, .out = T(1, 32, 128)},
    {"pow int exponent since 12", ENG_OP_POW, 13, {{0}}, {T(2, 3), TD(INT64, 3)}, .out = T(2, 3)},
    {"pow mixed types before 12",
     ENG_OP_POW,
     11,
     {{0}},
     {T(2, 3), TD(INT64, 3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'Y' is int64, input 'X' is float"},
    {"pow broadcast", ENG_OP_POW, 0, {{0}}, {T(3, 1), T(1, 4)}, .out = T(3, 4)},
    {"pow mismatch",
     ENG_OP_POW,
     0,
     {{0}},
     {T(3, 2), T(4)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'X' [3, 2] and input 'Y' [4] cannot be broadcast"},

    /* ---- ReduceMean ---- */
    {"reduce_mean last keepdims",
     ENG_OP_REDUCE_MEAN,
     0,
     {A_INTS("axes", -1)},
     {T(1, 32, 128)},
     .out = T(1, 32, 1)},
    {"reduce_mean no keepdims",
     ENG_OP_REDUCE_MEAN,
     0,
     {A_INTS("axes", 2, 0), A_INT("keepdims", 0)},
     {T(3, 4, 5)},
     .out = T(4)},
    {"reduce_mean default axes", ENG_OP_REDUCE_MEAN, 0, {{0}}, {T(3, 4, 5)}, .out = T(1, 1, 1)},
    {"reduce_mean all no keepdims",
     ENG_OP_REDUCE_MEAN,
     0,
     {A_INT("keepdims", 0)},
     {T(3, 4)},
     .out = T()},
    {"reduce_mean axis out of range",
     ENG_OP_REDUCE_MEAN,
     0,
     {A_INTS("axes", 3)},
     {T(3, 4, 5)},
     .rc = ROUSE_EMISMATCH,
     .msg = "attribute 'axes' value 3 is out of range for rank 3"},
    {"reduce_mean duplicate axes",
     ENG_OP_REDUCE_MEAN,
     0,
     {A_INTS("axes", 1, -2)},
     {T(3, 4, 5)},
     .rc = ROUSE_EMISMATCH,
     .msg = "appears more than once"},

    /* ---- Unsqueeze / Squeeze ---- */
    {"unsqueeze axes input",
     ENG_OP_UNSQUEEZE,
     13,
     {{0}},
     {TD(INT64, 1, 32), I64(1)},
     .out = TD(INT64, 1, 1, 32)},
    {"unsqueeze negative and unsorted",
     ENG_OP_UNSQUEEZE,
     13,
     {{0}},
     {T(3, 4), I64(-1, 0)},
     .out = T(1, 3, 4, 1)},
    {"unsqueeze attribute before 13",
     ENG_OP_UNSQUEEZE,
     11,
     {A_INTS("axes", 0, 3)},
     {T(3, 4)},
     .out = T(1, 3, 4, 1)},
    {"unsqueeze scalar", ENG_OP_UNSQUEEZE, 13, {{0}}, {SCALAR(FLOAT), I64(0)}, .out = T(1)},
    {"unsqueeze axis out of range",
     ENG_OP_UNSQUEEZE,
     13,
     {{0}},
     {T(3, 4), I64(3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "axis 3 is out of range for rank 3"},
    {"unsqueeze duplicate",
     ENG_OP_UNSQUEEZE,
     13,
     {{0}},
     {T(3), I64(0, -3)},
     .rc = ROUSE_EMISMATCH,
     .msg = "axis 0 appears more than once"},
    {"unsqueeze axes unknown",
     ENG_OP_UNSQUEEZE,
     13,
     {{0}},
     {T(3), TD(INT64, 1)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "input 'axes' must be a constant or a graph input"},
    {"unsqueeze axes missing",
     ENG_OP_UNSQUEEZE,
     13,
     {{0}},
     {T(3)},
     .rc = ROUSE_EFORMAT,
     .msg = "expects 2 inputs, got 1"},
    {"squeeze all ones", ENG_OP_SQUEEZE, 13, {{0}}, {T(1, 3, 1, 4)}, .out = T(3, 4)},
    {"squeeze axes input", ENG_OP_SQUEEZE, 13, {{0}}, {T(1, 3, 1, 4), I64(-2)}, .out = T(1, 3, 4)},
    {"squeeze attribute", ENG_OP_SQUEEZE, 11, {A_INTS("axes", 0)}, {T(1, 3, 1)}, .out = T(3, 1)},
    {"squeeze not one",
     ENG_OP_SQUEEZE,
     13,
     {{0}},
     {T(2, 3), I64(1)},
     .rc = ROUSE_EMISMATCH,
     .msg = "cannot squeeze axis 1 of input 'data' [2, 3]: size is not 1"},

    /* ---- Where ---- */
    {"where attention mask",
     ENG_OP_WHERE,
     0,
     {{0}},
     {TD(BOOL, 1, 1, 1, 32), SCALAR(FLOAT), T(1, 1, 1, 32)},
     .out = T(1, 1, 1, 32)},
    {"where three-way broadcast",
     ENG_OP_WHERE,
     0,
     {{0}},
     {TD(BOOL, 2, 1, 1), TD(INT64, 3, 1), TD(INT64, 4)},
     .out = TD(INT64, 2, 3, 4)},
    {"where condition not bool",
     ENG_OP_WHERE,
     0,
     {{0}},
     {T(2), T(2), T(2)},
     .rc = ROUSE_EUNSUPPORTED,
     .msg = "element type float of input 'condition' is not supported"},
    {"where X and Y types",
     ENG_OP_WHERE,
     0,
     {{0}},
     {TD(BOOL, 2), T(2), TD(INT64, 2)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'Y' is int64, input 'X' is float"},
    {"where condition shape",
     ENG_OP_WHERE,
     0,
     {{0}},
     {TD(BOOL, 3), T(2), T(2)},
     .rc = ROUSE_EMISMATCH,
     .msg = "input 'condition' [3] cannot be broadcast with inputs 'X' and 'Y' ([2])"},
};

/* Fills a tensor from a table row; dtype 0 stands for float. */
static void make_tensor(const struct tin *t, eng_tensor *out)
{
    memset(out, 0, sizeof(*out));
    out->dtype = t->dtype ? t->dtype : ENG_DT_FLOAT;
    out->rank = t->rank;
    memcpy(out->shape, t->shape, sizeof(out->shape));
    out->data = (void *)(uintptr_t)t->data;
}

/* Runs a case through parsing and inference; on success leaves the outputs
 * in out[] and the resolved attributes in *res. */
static int run_case(const struct scase *c, eng_node *n, eng_tensor *out, eng_attrs *res,
                    rouse_errbuf *eb)
{
    onnx_attr attrs[MAX_TEST_ATTRS];
    memcpy(attrs, c->attrs, sizeof(attrs));
    int rc = parse_node(c->op, c->opset ? c->opset : 13, "n", attrs, n, eb);
    if (rc < 0) return rc;

    static int in_ids[MAX_TEST_INPUTS], out_ids[MAX_TEST_OUTPUTS];
    eng_tensor ins[MAX_TEST_INPUTS];
    const eng_tensor *pin[MAX_TEST_INPUTS];
    int n_in = 0;
    while (n_in < MAX_TEST_INPUTS && c->in[n_in].set) {
        in_ids[n_in] = c->in[n_in].omitted ? -1 : n_in;
        make_tensor(&c->in[n_in], &ins[n_in]);
        pin[n_in] = c->in[n_in].omitted ? NULL : &ins[n_in];
        n_in++;
    }
    n->n_in = n_in;
    n->in = in_ids;
    n->n_out = c->n_out ? c->n_out : 1;
    for (int i = 0; i < n->n_out; i++)
        out_ids[i] = 10 + i;
    n->out = out_ids;
    return eng_infer_node(n, pin, out, res, eb);
}

static void check_out(const struct scase *c, const struct tin *want, const eng_tensor *got)
{
    int dtype = want->dtype ? want->dtype : ENG_DT_FLOAT;
    char a[128], b[128];
    if (got->dtype != dtype || !eng_shape_equal(got->rank, got->shape, want->rank, want->shape))
        print_error("%s: got %s %s, want %s %s\n", c->what, eng_dtype_name(got->dtype),
                    eng_shape_str(got->rank, got->shape, a, sizeof(a)), eng_dtype_name(dtype),
                    eng_shape_str(want->rank, want->shape, b, sizeof(b)));
    assert_int_equal(got->dtype, dtype);
    assert_true(eng_shape_equal(got->rank, got->shape, want->rank, want->shape));
}

static void check_pads(const struct scase *c, const eng_attrs *res)
{
    const int64_t *pb, *pe;
    int ns, auto_pad;
    if (c->op == ENG_OP_CONV) {
        pb = res->conv.pad_begin, pe = res->conv.pad_end, ns = res->conv.n_spatial;
        auto_pad = res->conv.auto_pad;
    } else {
        pb = res->pool.pad_begin, pe = res->pool.pad_end, ns = res->pool.n_spatial;
        auto_pad = res->pool.auto_pad;
    }
    assert_int_equal(auto_pad, ENG_AUTOPAD_NOTSET);
    for (int i = 0; i < ns; i++) {
        if (pb[i] != c->pb[i] || pe[i] != c->pe[i])
            print_error("%s: dim %d pads %lld/%lld, want %lld/%lld\n", c->what, i, (long long)pb[i],
                        (long long)pe[i], (long long)c->pb[i], (long long)c->pe[i]);
        assert_int_equal(pb[i], c->pb[i]);
        assert_int_equal(pe[i], c->pe[i]);
    }
}

static void shape_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct scase *c = &cases[i];
        eng_node n;
        eng_tensor out[MAX_TEST_OUTPUTS];
        eng_attrs res;
        rouse_errbuf eb;
        memset(out, 0, sizeof(out));
        rouse_errbuf_clear(&eb);
        int rc = run_case(c, &n, out, &res, &eb);
        if (rc != c->rc || (c->msg && !strstr(eb.msg, c->msg)))
            print_error("%s: rc %s, msg \"%s\"; want %s \"%s\"\n", c->what, rouse_err_name(rc),
                        eb.msg, rouse_err_name(c->rc), c->msg ? c->msg : "");
        assert_int_equal(rc, c->rc);
        if (rc < 0) {
            assert_int_equal(eb.code, rc);
            assert_non_null(strstr(eb.msg, c->msg));
            continue;
        }
        check_out(c, &c->out, &out[0]);
        if (c->out2.set) check_out(c, &c->out2, &out[1]);
        if (c->check_pads) check_pads(c, &res);
    }
}

/* Finds a case by its description, so that the focused tests below reuse rows. */
static const struct scase *find_case(const char *what)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (!strcmp(cases[i].what, what)) return &cases[i];
    fail_msg("no case '%s'", what);
    return NULL;
}

static void resolved_attributes(void **state)
{
    (void)state;
    eng_node n;
    eng_tensor out[MAX_TEST_OUTPUTS];
    eng_attrs res;
    rouse_errbuf eb;

    /* Conv learns its kernel and rank from the weight. */
    assert_int_equal(run_case(find_case("conv kernel from weight"), &n, out, &res, &eb), 0);
    assert_int_equal(n.attrs.conv.n_spatial, 0); /* the node itself is not modified */
    assert_int_equal(res.conv.n_spatial, 2);
    assert_int_equal(res.conv.kernel[0], 3);
    assert_int_equal(res.conv.kernel[1], 3);
    assert_int_equal(res.conv.stride[1], 1);

    /* Clip bounds from constant inputs, read with their type. */
    assert_int_equal(run_case(find_case("clip opset 13 bounds"), &n, out, &res, &eb), 0);
    assert_true(res.clip.has_min && res.clip.has_max);
    assert_true(res.clip.min == 0.0 && res.clip.max == 6.0);
    assert_int_equal(run_case(find_case("clip opset 13 only max"), &n, out, &res, &eb), 0);
    assert_false(res.clip.has_min);
    assert_true(res.clip.has_max && res.clip.max == 6.0);
    assert_true(isinf(res.clip.min) && res.clip.min < 0);
    assert_int_equal(run_case(find_case("clip opset 6"), &n, out, &res, &eb), 0);
    assert_true(res.clip.has_min && res.clip.min == 0.0 && res.clip.max == 6.0);

    /* Transpose's default permutation is spelled out. */
    assert_int_equal(run_case(find_case("transpose default reverses"), &n, out, &res, &eb), 0);
    assert_int_equal(res.transpose.n_perm, 3);
    assert_int_equal(res.transpose.perm[0], 2);
    assert_int_equal(res.transpose.perm[2], 0);

    /* Axes come back normalized. */
    assert_int_equal(run_case(find_case("concat axis -1"), &n, out, &res, &eb), 0);
    assert_int_equal(res.axis.axis, 1);
    assert_int_equal(run_case(find_case("softmax default"), &n, out, &res, &eb), 0);
    assert_int_equal(res.axis.axis, 1);
    assert_false(res.axis.legacy);
    assert_int_equal(run_case(find_case("softmax legacy"), &n, out, &res, &eb), 0);
    assert_int_equal(res.axis.axis, 1);
    assert_true(res.axis.legacy);
    assert_int_equal(run_case(find_case("flatten axis -1"), &n, out, &res, &eb), 0);
    assert_int_equal(res.axis.axis, 3);

    /* Dropout's ratio from its input. */
    assert_int_equal(run_case(find_case("dropout mask bool"), &n, out, &res, &eb), 0);
    assert_true(res.dropout.ratio == 0.1f);

    /* Auto-padded pools resolve to floor mode; explicit ceil mode is kept. */
    assert_int_equal(run_case(find_case("SAME ignores ceil_mode"), &n, out, &res, &eb), 0);
    assert_int_equal(res.pool.ceil_mode, 0);
    assert_int_equal(run_case(find_case("maxpool_2d_ceil"), &n, out, &res, &eb), 0);
    assert_int_equal(res.pool.ceil_mode, 1);
}

static void clip_integer_bounds(void **state)
{
    (void)state;
    eng_node n = {.name = "c", .op = ENG_OP_CLIP, .opset = 13};
    int in_ids[3] = {0, 1, 2}, out_ids[1] = {3};
    /* Unaligned on purpose: graph inputs may come from any buffer. */
    unsigned char buf[2][16];
    int32_t lo = -3, hi = 200;
    memcpy(buf[0] + 1, &lo, sizeof(lo));
    memcpy(buf[1] + 3, &hi, sizeof(hi));
    eng_tensor x = {.dtype = ENG_DT_INT32, .rank = 1, .shape = {4}};
    eng_tensor tmin = {.dtype = ENG_DT_INT32, .rank = 1, .shape = {1}, .data = buf[0] + 1};
    eng_tensor tmax = {.dtype = ENG_DT_INT32, .rank = 0, .data = buf[1] + 3};
    const eng_tensor *in[3] = {&x, &tmin, &tmax};
    eng_tensor out;
    eng_attrs res;
    rouse_errbuf eb;
    n.n_in = 3, n.in = in_ids, n.n_out = 1, n.out = out_ids;
    assert_int_equal(eng_attrs_parse(&(onnx_node){.name = "c", .op_type = "Clip"}, &n, NULL, &eb),
                     0);
    assert_int_equal(eng_infer_node(&n, in, &out, &res, &eb), 0);
    assert_int_equal(out.dtype, ENG_DT_INT32);
    assert_true(res.clip.min == -3.0 && res.clip.max == 200.0);
}

static void omitted_outputs_are_untouched(void **state)
{
    (void)state;
    onnx_attr attrs[] = {A_INTS("kernel_shape", 2, 2), {0}};
    eng_node n;
    rouse_errbuf eb;
    assert_int_equal(parse_node(ENG_OP_MAXPOOL, 12, "p", attrs, &n, &eb), 0);
    int in_ids[1] = {0}, out_ids[2] = {1, -1};
    eng_tensor x = {.dtype = ENG_DT_FLOAT, .rank = 4, .shape = {1, 1, 3, 3}};
    const eng_tensor *in[1] = {&x};
    eng_tensor out[2];
    memset(out, 0x5a, sizeof(out));
    eng_tensor sentinel = out[1];
    n.n_in = 1, n.in = in_ids, n.n_out = 2, n.out = out_ids;
    eng_attrs res;
    assert_int_equal(eng_infer_node(&n, in, out, &res, &eb), 0);
    assert_int_equal(out[0].rank, 4);
    assert_int_equal(out[0].shape[3], 2);
    assert_memory_equal(&out[1], &sentinel, sizeof(sentinel));

    /* A required output cannot be omitted. */
    out_ids[0] = -1;
    assert_int_equal(eng_infer_node(&n, in, out, &res, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "output 0 is required"));
}

static void bad_input_shapes(void **state)
{
    (void)state;
    eng_node n = {.name = "r", .op = ENG_OP_RELU, .opset = 13};
    int in_ids[1] = {0}, out_ids[1] = {1};
    n.n_in = 1, n.in = in_ids, n.n_out = 1, n.out = out_ids;
    eng_tensor x = {.dtype = ENG_DT_FLOAT, .rank = ENG_MAX_RANK + 1};
    const eng_tensor *in[1] = {&x};
    eng_tensor out;
    eng_attrs res;
    rouse_errbuf eb;

    assert_int_equal(eng_infer_node(&n, in, &out, &res, &eb), ROUSE_EUNSUPPORTED);
    assert_string_equal(eb.msg, "node 'r' (Relu): input 'X' has rank 9, at most 8 is supported");

    x.rank = 2, x.shape[0] = 3, x.shape[1] = -1;
    assert_int_equal(eng_infer_node(&n, in, &out, &res, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "input 'X' has an invalid or too large shape"));

    x.shape[0] = BIG, x.shape[1] = BIG;
    assert_int_equal(eng_infer_node(&n, in, &out, &res, &eb), ROUSE_EINVAL);

    /* A float tensor of 2^62 elements has a countable but unallocatable size. */
    x.shape[0] = (int64_t)1 << 31, x.shape[1] = (int64_t)1 << 31;
    assert_int_equal(eng_infer_node(&n, in, &out, &res, &eb), ROUSE_ETOOBIG);

    /* Constant nodes never reach shape inference. */
    eng_node k = {.name = "k", .op = ENG_OP_CONSTANT, .opset = 13, .n_out = 1, .out = out_ids};
    assert_int_equal(eng_infer_node(&k, NULL, &out, &res, &eb), ROUSE_EINTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shape_table),         cmocka_unit_test(resolved_attributes),
        cmocka_unit_test(clip_integer_bounds), cmocka_unit_test(omitted_outputs_are_untouched),
        cmocka_unit_test(bad_input_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
