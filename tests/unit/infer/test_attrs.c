/* Attribute parsing: ONNX defaults per opset, and one ROUSE_EFORMAT (or
 * ROUSE_EUNSUPPORTED) sentence per kind of bad value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "helpers.h"

static void conv_defaults_and_values(void **state)
{
    (void)state;
    rouse_errbuf eb;
    eng_node n;
    onnx_attr none[1] = {{0}};
    assert_int_equal(parse_node(ENG_OP_CONV, 13, "c", none, &n, &eb), 0);
    const eng_conv_attrs *a = &n.attrs.conv;
    assert_int_equal(a->n_spatial, 0); /* known only from the weight */
    assert_int_equal(a->group, 1);
    assert_int_equal(a->auto_pad, ENG_AUTOPAD_NOTSET);
    for (int i = 0; i < ENG_MAX_SPATIAL; i++) {
        assert_int_equal(a->stride[i], 1);
        assert_int_equal(a->dilation[i], 1);
        assert_int_equal(a->pad_begin[i], 0);
        assert_int_equal(a->pad_end[i], 0);
    }

    onnx_attr attrs[] = {A_INTS("kernel_shape", 3, 5),
                         A_INTS("strides", 2, 1),
                         A_INTS("dilations", 1, 2),
                         A_INTS("pads", 1, 2, 3, 4),
                         A_INT("group", 4),
                         A_STR("auto_pad", "SAME_LOWER"),
                         A_INT("unknown_attr", 7),
                         {0}};
    assert_int_equal(parse_node(ENG_OP_CONV, 11, "c", attrs, &n, &eb), 0);
    assert_int_equal(a->n_spatial, 2);
    assert_int_equal(a->kernel[0], 3);
    assert_int_equal(a->kernel[1], 5);
    assert_int_equal(a->stride[0], 2);
    assert_int_equal(a->stride[1], 1);
    assert_int_equal(a->dilation[1], 2);
    assert_int_equal(a->pad_begin[0], 1);
    assert_int_equal(a->pad_begin[1], 2);
    assert_int_equal(a->pad_end[0], 3);
    assert_int_equal(a->pad_end[1], 4);
    assert_int_equal(a->group, 4);
    assert_int_equal(a->auto_pad, ENG_AUTOPAD_SAME_LOWER);

    /* n_spatial also follows from strides or pads alone. */
    onnx_attr pads_only[] = {A_INTS("pads", 0, 0, 0, 1, 1, 1), {0}};
    assert_int_equal(parse_node(ENG_OP_CONV, 11, "c", pads_only, &n, &eb), 0);
    assert_int_equal(a->n_spatial, 3);
    assert_int_equal(a->pad_end[2], 1);
}

static void pool_defaults_per_opset(void **state)
{
    (void)state;
    rouse_errbuf eb;
    eng_node n;
    onnx_attr attrs[] = {A_INTS("kernel_shape", 2, 2),  A_INT("ceil_mode", 1),
                         A_INTS("dilations", 2, 2),     A_INT("storage_order", 1),
                         A_INT("count_include_pad", 1), {0}};
    const eng_pool_attrs *a = &n.attrs.pool;

    assert_int_equal(parse_node(ENG_OP_MAXPOOL, 12, "p", attrs, &n, &eb), 0);
    assert_int_equal(a->n_spatial, 2);
    assert_int_equal(a->stride[0], 1);
    assert_int_equal(a->ceil_mode, 1);
    assert_int_equal(a->dilation[0], 2);
    assert_int_equal(a->storage_order, 1);
    assert_int_equal(a->count_include_pad, 0); /* not a MaxPool attribute */

    /* MaxPool-8: no ceil_mode or dilations yet. */
    assert_int_equal(parse_node(ENG_OP_MAXPOOL, 8, "p", attrs, &n, &eb), 0);
    assert_int_equal(a->ceil_mode, 0);
    assert_int_equal(a->dilation[0], 1);
    assert_int_equal(a->storage_order, 1);

    /* AveragePool: dilations only from opset 19, so ignored here. */
    assert_int_equal(parse_node(ENG_OP_AVGPOOL, 17, "p", attrs, &n, &eb), 0);
    assert_int_equal(a->dilation[0], 1);
    assert_int_equal(a->count_include_pad, 1);
    assert_int_equal(a->ceil_mode, 1);
    assert_int_equal(a->storage_order, 0);
}

static void scalar_defaults(void **state)
{
    (void)state;
    rouse_errbuf eb;
    eng_node n;
    onnx_attr none[1] = {{0}};

    assert_int_equal(parse_node(ENG_OP_GEMM, 13, "g", none, &n, &eb), 0);
    assert_int_equal(n.attrs.gemm.trans_a, 0);
    assert_int_equal(n.attrs.gemm.trans_b, 0);
    assert_true(n.attrs.gemm.alpha == 1.0f && n.attrs.gemm.beta == 1.0f);

    onnx_attr gemm[] = {A_INT("transB", 1), A_FLOAT("alpha", 0.5f), {0}};
    assert_int_equal(parse_node(ENG_OP_GEMM, 13, "g", gemm, &n, &eb), 0);
    assert_int_equal(n.attrs.gemm.trans_b, 1);
    assert_true(n.attrs.gemm.alpha == 0.5f);

    assert_int_equal(parse_node(ENG_OP_LEAKY_RELU, 16, "l", none, &n, &eb), 0);
    assert_true(n.attrs.alpha.alpha == 0.01f);

    assert_int_equal(parse_node(ENG_OP_SOFTMAX, 11, "s", none, &n, &eb), 0);
    assert_int_equal(n.attrs.axis.axis, 1);
    assert_true(n.attrs.axis.legacy);
    assert_int_equal(parse_node(ENG_OP_SOFTMAX, 13, "s", none, &n, &eb), 0);
    assert_int_equal(n.attrs.axis.axis, -1);
    assert_false(n.attrs.axis.legacy);

    assert_int_equal(parse_node(ENG_OP_FLATTEN, 13, "f", none, &n, &eb), 0);
    assert_int_equal(n.attrs.axis.axis, 1);
    assert_int_equal(parse_node(ENG_OP_CONCAT, 1, "c", none, &n, &eb), 0);
    assert_int_equal(n.attrs.axis.axis, 1);

    assert_int_equal(parse_node(ENG_OP_BATCHNORM, 15, "b", none, &n, &eb), 0);
    assert_true(n.attrs.bn.epsilon == 1e-5f);

    assert_int_equal(parse_node(ENG_OP_DROPOUT, 10, "d", none, &n, &eb), 0);
    assert_true(n.attrs.dropout.ratio == 0.5f);
    onnx_attr ratio[] = {A_FLOAT("ratio", 0.2f), {0}};
    assert_int_equal(parse_node(ENG_OP_DROPOUT, 10, "d", ratio, &n, &eb), 0);
    assert_true(n.attrs.dropout.ratio == 0.2f);

    onnx_attr allowzero[] = {A_INT("allowzero", 1), {0}};
    assert_int_equal(parse_node(ENG_OP_RESHAPE, 14, "r", allowzero, &n, &eb), 0);
    assert_int_equal(n.attrs.reshape.allowzero, 1);
    assert_int_equal(parse_node(ENG_OP_RESHAPE, 13, "r", allowzero, &n, &eb), 0);
    assert_int_equal(n.attrs.reshape.allowzero, 0);

    assert_int_equal(parse_node(ENG_OP_TRANSPOSE, 13, "t", none, &n, &eb), 0);
    assert_int_equal(n.attrs.transpose.n_perm, 0);
    onnx_attr perm[] = {A_INTS("perm", 0, 2, 1), {0}};
    assert_int_equal(parse_node(ENG_OP_TRANSPOSE, 13, "t", perm, &n, &eb), 0);
    assert_int_equal(n.attrs.transpose.n_perm, 3);
    assert_int_equal(n.attrs.transpose.perm[1], 2);
}

static void clip_bounds_by_opset(void **state)
{
    (void)state;
    rouse_errbuf eb;
    eng_node n;
    onnx_attr none[1] = {{0}};
    const eng_clip_attrs *a = &n.attrs.clip;

    assert_int_equal(parse_node(ENG_OP_CLIP, 6, "c", none, &n, &eb), 0);
    assert_true(a->has_min && a->has_max);
    assert_true(a->min == -FLT_MAX && a->max == FLT_MAX);

    onnx_attr bounds[] = {A_FLOAT("min", 0.0f), A_FLOAT("max", 6.0f), {0}};
    assert_int_equal(parse_node(ENG_OP_CLIP, 6, "c", bounds, &n, &eb), 0);
    assert_true(a->min == 0.0 && a->max == 6.0);

    /* From opset 11 the bounds are inputs; attributes named min/max are ignored. */
    assert_int_equal(parse_node(ENG_OP_CLIP, 13, "c", bounds, &n, &eb), 0);
    assert_false(a->has_min || a->has_max);
    assert_true(isinf(a->min) && a->min < 0 && isinf(a->max) && a->max > 0);
}

struct bad_case {
    eng_op op;
    int opset;
    onnx_attr attrs[MAX_TEST_ATTRS];
    int rc;
    const char *msg;
};

static const struct bad_case bad_cases[] = {
    {ENG_OP_CONV,
     13,
     {A_INTS("kernel_shape", 3, 3), A_INTS("strides", 1, 1, 1)},
     ROUSE_EFORMAT,
     "node 'conv1' (Conv): attribute 'strides' must have 2 values, got 3"},
    {ENG_OP_CONV,
     13,
     {A_INTS("kernel_shape", 3, 3), A_INTS("pads", 1, 1)},
     ROUSE_EFORMAT,
     "node 'conv1' (Conv): attribute 'pads' must have 4 values, got 2"},
    {ENG_OP_CONV,
     13,
     {A_INTS("pads", 1, 1, 1)},
     ROUSE_EFORMAT,
     "node 'conv1' (Conv): attribute 'pads' must have an even number of values, got 3"},
    {ENG_OP_CONV,
     13,
     {A_STR("auto_pad", "FOO")},
     ROUSE_EFORMAT,
     "node 'conv1' (Conv): attribute 'auto_pad' has unknown value 'FOO'"},
    {ENG_OP_CONV,
     13,
     {A_INTS("strides", 1, 0)},
     ROUSE_EFORMAT,
     "node 'conv1' (Conv): attribute 'strides' has invalid value 0 at index 1 (must be >= 1)"},
    {ENG_OP_CONV,
     13,
     {A_INTS("dilations", -1, 1)},
     ROUSE_EFORMAT,
     "node 'conv1' (Conv): attribute 'dilations' has invalid value -1 at index 0"},
    {ENG_OP_CONV,
     13,
     {A_INTS("kernel_shape", 0, 3)},
     ROUSE_EFORMAT,
     "node 'conv1' (Conv): attribute 'kernel_shape' has invalid value 0"},
    {ENG_OP_CONV,
     13,
     {A_INTS("pads", 0, -1, 0, 0)},
     ROUSE_EFORMAT,
     "node 'conv1' (Conv): attribute 'pads' has invalid value -1 at index 1 (must be >= 0)"},
    {ENG_OP_CONV,
     13,
     {A_INTS("strides", 1, 4000000000)},
     ROUSE_EFORMAT,
     "attribute 'strides' has invalid value 4000000000"},
    {ENG_OP_CONV,
     13,
     {A_INT("group", 0)},
     ROUSE_EFORMAT,
     "node 'conv1' (Conv): attribute 'group' must be >= 1, got 0"},
    {ENG_OP_CONV,
     13,
     {A_FLOAT("group", 2.0f)},
     ROUSE_EFORMAT,
     "node 'conv1' (Conv): attribute 'group' must be an int"},
    {ENG_OP_CONV,
     13,
     {A_INT("strides", 2)},
     ROUSE_EFORMAT,
     "node 'conv1' (Conv): attribute 'strides' must be a list of ints"},
    {ENG_OP_CONV,
     13,
     {A_INT("auto_pad", 1)},
     ROUSE_EFORMAT,
     "node 'conv1' (Conv): attribute 'auto_pad' must be a string"},
    {ENG_OP_CONV,
     13,
     {A_INTS("kernel_shape", 1, 1, 1, 1)},
     ROUSE_EUNSUPPORTED,
     "node 'conv1' (Conv): attribute 'kernel_shape' has 4 spatial dimensions, at most 3"},
    {ENG_OP_CONV,
     13,
     {{.name = "kernel_shape", .type = ONNX_ATTR_INTS}},
     ROUSE_EFORMAT,
     "attribute 'kernel_shape' must not be empty"},
    {ENG_OP_MAXPOOL,
     12,
     {{0}},
     ROUSE_EFORMAT,
     "node 'conv1' (MaxPool): attribute 'kernel_shape' is required"},
    {ENG_OP_AVGPOOL,
     12,
     {A_INTS("kernel_shape", 2, 2), A_INT("ceil_mode", 2)},
     ROUSE_EFORMAT,
     "node 'conv1' (AveragePool): attribute 'ceil_mode' must be 0 or 1, got 2"},
    {ENG_OP_MAXPOOL,
     12,
     {A_INTS("kernel_shape", 2, 2), A_INT("storage_order", -1)},
     ROUSE_EFORMAT,
     "attribute 'storage_order' must be 0 or 1, got -1"},
    {ENG_OP_GEMM,
     13,
     {A_INT("transA", 3)},
     ROUSE_EFORMAT,
     "node 'conv1' (Gemm): attribute 'transA' must be 0 or 1, got 3"},
    {ENG_OP_GEMM,
     13,
     {A_FLOAT("alpha", INFINITY)},
     ROUSE_EFORMAT,
     "node 'conv1' (Gemm): attribute 'alpha' must be finite"},
    {ENG_OP_LEAKY_RELU,
     13,
     {A_FLOAT("alpha", NAN)},
     ROUSE_EFORMAT,
     "node 'conv1' (LeakyRelu): attribute 'alpha' is NaN"},
    {ENG_OP_CLIP,
     6,
     {A_FLOAT("min", NAN)},
     ROUSE_EFORMAT,
     "node 'conv1' (Clip): attribute 'min' is NaN"},
    {ENG_OP_CONCAT,
     13,
     {{0}},
     ROUSE_EFORMAT,
     "node 'conv1' (Concat): attribute 'axis' is required"},
    {ENG_OP_TRANSPOSE,
     13,
     {A_INTS("perm", 0, 0, 1)},
     ROUSE_EFORMAT,
     "node 'conv1' (Transpose): attribute 'perm' is not a permutation"},
    {ENG_OP_TRANSPOSE,
     13,
     {A_INTS("perm", 0, 3)},
     ROUSE_EFORMAT,
     "attribute 'perm' is not a permutation"},
    {ENG_OP_BATCHNORM,
     15,
     {A_INT("training_mode", 1)},
     ROUSE_EUNSUPPORTED,
     "node 'conv1' (BatchNormalization): attribute 'training_mode' = 1 is not supported"},
    {ENG_OP_BATCHNORM,
     7,
     {A_INT("spatial", 0)},
     ROUSE_EUNSUPPORTED,
     "attribute 'spatial' = 0 is not supported"},
    {ENG_OP_BATCHNORM,
     9,
     {A_FLOAT("epsilon", -1.0f)},
     ROUSE_EFORMAT,
     "attribute 'epsilon' must not be negative"},
    {ENG_OP_DROPOUT,
     10,
     {A_FLOAT("ratio", 1.0f)},
     ROUSE_EFORMAT,
     "attribute 'ratio' must be in [0, 1)"},
    {ENG_OP_RESHAPE,
     14,
     {A_INT("allowzero", 5)},
     ROUSE_EFORMAT,
     "attribute 'allowzero' must be 0 or 1, got 5"},
    {ENG_OP_ADD,
     6,
     {A_INT("broadcast", 1), A_INT("axis", 1)},
     ROUSE_EUNSUPPORTED,
     "node 'conv1' (Add): attribute 'axis' (legacy broadcasting along an axis) is not supported"},
    {ENG_OP_CAST, 13, {{0}}, ROUSE_EFORMAT, "node 'conv1' (Cast): attribute 'to' is required"},
    {ENG_OP_CAST,
     13,
     {A_INT("to", 8)},
     ROUSE_EUNSUPPORTED,
     "attribute 'to' = string is not supported"},
    {ENG_OP_CAST,
     13,
     {A_INT("to", 99)},
     ROUSE_EFORMAT,
     "attribute 'to' has unknown element type 99"},
    {ENG_OP_CAST, 13, {A_STR("to", "FLOAT")}, ROUSE_EFORMAT, "attribute 'to' must be an int"},
    {ENG_OP_REDUCE_MEAN,
     13,
     {A_INT("keepdims", 2)},
     ROUSE_EFORMAT,
     "attribute 'keepdims' must be 0 or 1, got 2"},
    {ENG_OP_REDUCE_MEAN,
     13,
     {A_INT("axes", 1)},
     ROUSE_EFORMAT,
     "attribute 'axes' must be a list of ints"},
    {ENG_OP_UNSQUEEZE,
     11,
     {{0}},
     ROUSE_EFORMAT,
     "node 'conv1' (Unsqueeze): attribute 'axes' is required"},
    {ENG_OP_UNSQUEEZE,
     10,
     {A_INTS("axes", -1)},
     ROUSE_EFORMAT,
     "attribute 'axes' must not be negative before opset 11"},
    {ENG_OP_SQUEEZE,
     11,
     {A_INTS("axes", 0, 1, 2, 3, 4, 5, 6, 7, 8)},
     ROUSE_EUNSUPPORTED,
     "attribute 'axes' has 9 values, at most 8 are supported"},
};

static void bad_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        onnx_attr attrs[MAX_TEST_ATTRS];
        memcpy(attrs, c->attrs, sizeof(attrs));
        rouse_errbuf eb;
        eng_node n;
        int rc = parse_node(c->op, c->opset, "conv1", attrs, &n, &eb);
        if (rc != c->rc || !strstr(eb.msg, c->msg))
            print_error("case %zu: rc %d, msg \"%s\", want \"%s\"\n", i, rc, eb.msg, c->msg);
        assert_int_equal(rc, c->rc);
        assert_int_equal(eb.code, c->rc);
        assert_non_null(strstr(eb.msg, c->msg));
    }
}

static void legacy_binary_without_axis_is_fine(void **state)
{
    (void)state;
    rouse_errbuf eb;
    eng_node n;
    onnx_attr attrs[] = {A_INT("broadcast", 1), {0}};
    assert_int_equal(parse_node(ENG_OP_MUL, 6, "m", attrs, &n, &eb), 0);
    /* From opset 7 the attributes no longer exist and are ignored. */
    onnx_attr both[] = {A_INT("broadcast", 1), A_INT("axis", 1), {0}};
    assert_int_equal(parse_node(ENG_OP_MUL, 7, "m", both, &n, &eb), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_defaults_and_values),
        cmocka_unit_test(pool_defaults_per_opset),
        cmocka_unit_test(scalar_defaults),
        cmocka_unit_test(clip_bounds_by_opset),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(legacy_binary_without_axis_is_fine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
