/*
 * The quantization operators (src/engine/ops/quant.c) against hand-computed
 * values: rounding half to even, saturation, per-axis and per-channel
 * parameters, integer products with zero points and requantization; and
 * their shape and attribute errors, and the bound on the work a model may
 * ask of these plain C kernels.
 */
#include "node_test.h"

static nt_case qcase(int opset, const char *op, int out_dtype)
{
    return (nt_case){.opset = opset, .op = op, .n_out = 1, .out_dtype = {out_dtype}};
}

static void quantize_rounding_saturation(void **state)
{
    (void)state;
    static const float x[] = {0, 1.5f, 2.5f, -1, 300, -300, 3.49f}, one = 1;
    static const uint8_t zu = 10;
    static const int8_t zs = -1;

    nt_case c = qcase(13, "QuantizeLinear", ROUSE_DT_UINT8);
    c.n_in = 3;
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 1, {7}, x, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 0, {0}, &one, true};
    c.in[2] = (nt_in){"z", ROUSE_DT_UINT8, 0, {0}, &zu, true};
    nt_build(&c);
    nt_result r = nt_run_ok(&c);
    assert_int_equal(r.out[0].dtype, ROUSE_DT_UINT8);
    assert_memory_equal(r.out[0].data, ((const uint8_t[]){10, 12, 12, 9, 255, 0, 13}), 7);
    nt_result_free(&r);

    c = qcase(13, "QuantizeLinear", ROUSE_DT_INT8);
    c.n_in = 3;
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 1, {7}, x, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 0, {0}, &one, true};
    c.in[2] = (nt_in){"z", ROUSE_DT_INT8, 0, {0}, &zs, true};
    nt_build(&c);
    r = nt_run_ok(&c);
    assert_int_equal(r.out[0].dtype, ROUSE_DT_INT8);
    assert_memory_equal(r.out[0].data, ((const int8_t[]){-1, 1, 1, -2, 127, -128, 2}), 7);
    nt_result_free(&r);

    /* No zero point: uint8 around 0; 1.25 / 0.5 = 2.5 rounds to 2. */
    static const float x2[] = {1.25f, -1, 0.75f}, half = 0.5f;
    c = qcase(10, "QuantizeLinear", ROUSE_DT_UINT8);
    c.n_in = 2;
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 1, {3}, x2, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 0, {0}, &half, true};
    nt_build(&c);
    r = nt_run_ok(&c);
    assert_memory_equal(r.out[0].data, ((const uint8_t[]){2, 0, 2}), 3);
    nt_result_free(&r);

    /* int32 input: 7 / 2 = 3.5 -> 4, -3.5 -> -4 */
    static const int32_t xi[] = {7, -7};
    static const float two = 2;
    static const int8_t z0 = 0;
    c = qcase(13, "QuantizeLinear", ROUSE_DT_INT8);
    c.n_in = 3;
    c.in[0] = (nt_in){"x", ROUSE_DT_INT32, 1, {2}, xi, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 0, {0}, &two, true};
    c.in[2] = (nt_in){"z", ROUSE_DT_INT8, 0, {0}, &z0, true};
    nt_build(&c);
    r = nt_run_ok(&c);
    assert_memory_equal(r.out[0].data, ((const int8_t[]){4, -4}), 2);
    nt_result_free(&r);
}

static void quantize_per_axis(void **state)
{
    (void)state;
    static const float x[] = {1, 2, 3, 4, 5, 6}, s[] = {1, 2, 4};
    static const uint8_t z[] = {0, 1, 2};
    nt_case c = qcase(13, "QuantizeLinear", ROUSE_DT_UINT8);
    c.n_in = 3;
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 2, {2, 3}, x, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 1, {3}, s, true};
    c.in[2] = (nt_in){"z", ROUSE_DT_UINT8, 1, {3}, z, true};
    nt_build(&c);
    nt_result r = nt_run_ok(&c);
    /* columns: x / 1 + 0; rint(x / 2) + 1; rint(x / 4) + 2 */
    assert_memory_equal(r.out[0].data, ((const uint8_t[]){1, 2, 3, 4, 3, 4}), 6);
    nt_result_free(&r);
}

static void dequantize(void **state)
{
    (void)state;
    static const uint8_t xu[] = {0, 3, 255}, zu = 3;
    static const float half = 0.5f, two = 2;
    nt_case c = qcase(13, "DequantizeLinear", ROUSE_DT_FLOAT);
    c.n_in = 3;
    c.in[0] = (nt_in){"x", ROUSE_DT_UINT8, 1, {3}, xu, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 0, {0}, &half, true};
    c.in[2] = (nt_in){"z", ROUSE_DT_UINT8, 0, {0}, &zu, true};
    nt_build(&c);
    nt_result r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], (const float[]){-1.5f, 0, 126}, 3, 0);
    nt_result_free(&r);

    static const int32_t xi[] = {-4, 10};
    c = qcase(10, "DequantizeLinear", ROUSE_DT_FLOAT);
    c.n_in = 2;
    c.in[0] = (nt_in){"x", ROUSE_DT_INT32, 1, {2}, xi, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 0, {0}, &two, true};
    nt_build(&c);
    r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], (const float[]){-8, 20}, 2, 0);
    nt_result_free(&r);

    /* per axis 0 of an int8 [2, 2] */
    static const int8_t xs[] = {1, -1, 2, -2}, zs[] = {0, 2};
    static const float ss[] = {1, 0.5f};
    c = qcase(13, "DequantizeLinear", ROUSE_DT_FLOAT);
    c.n_in = 3;
    c.in[0] = (nt_in){"x", ROUSE_DT_INT8, 2, {2, 2}, xs, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 1, {2}, ss, true};
    c.in[2] = (nt_in){"z", ROUSE_DT_INT8, 1, {2}, zs, true};
    nt_build(&c);
    ob_attr_int(c.node, "axis", 0);
    r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], (const float[]){1, -1, 0, -2}, 4, 0);
    nt_result_free(&r);
}

static void dynamic_quantize(void **state)
{
    (void)state;
    static const float x[] = {0, 2, -3, 255};
    nt_case c = {.opset = 11,
                 .op = "DynamicQuantizeLinear",
                 .n_in = 1,
                 .n_out = 3,
                 .out_dtype = {ROUSE_DT_UINT8, ROUSE_DT_FLOAT, ROUSE_DT_UINT8}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 1, {4}, x, false};
    nt_build(&c);
    nt_result r = nt_run_ok(&c);
    /* scale (255 + 3) / 255; zero point rint(3 / scale) = 3 */
    assert_memory_equal(r.out[0].data, ((const uint8_t[]){3, 5, 0, 255}), 4);
    nt_expect_floats(&r.out[1], (const float[]){258.0f / 255.0f}, 1, 1e-7f);
    assert_int_equal(*(const uint8_t *)r.out[2].data, 3);
    nt_result_free(&r);

    /* all positive: the range starts at 0; 0.5 / (2 / 255) = 63.75 */
    static const float xp[] = {0.5f, 2};
    c = (nt_case){.opset = 11,
                  .op = "DynamicQuantizeLinear",
                  .n_in = 1,
                  .n_out = 3,
                  .out_dtype = {ROUSE_DT_UINT8, ROUSE_DT_FLOAT, ROUSE_DT_UINT8}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 1, {2}, xp, false};
    nt_build(&c);
    r = nt_run_ok(&c);
    assert_memory_equal(r.out[0].data, ((const uint8_t[]){64, 255}), 2);
    assert_int_equal(*(const uint8_t *)r.out[2].data, 0);
    nt_result_free(&r);

    /* all zeros: scale 0, everything maps to the zero point 0 */
    static const float xz[] = {0, 0};
    c = (nt_case){.opset = 11,
                  .op = "DynamicQuantizeLinear",
                  .n_in = 1,
                  .n_out = 3,
                  .out_dtype = {ROUSE_DT_UINT8, ROUSE_DT_FLOAT, ROUSE_DT_UINT8}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 1, {2}, xz, false};
    nt_build(&c);
    r = nt_run_ok(&c);
    assert_memory_equal(r.out[0].data, ((const uint8_t[]){0, 0}), 2);
    nt_result_free(&r);
}

static void matmul_integer(void **state)
{
    (void)state;
    static const uint8_t a[] = {1, 2, 3, 4, 5, 6}, b[] = {1, 0, 0, 1, 1, 1}, za = 1, zb[] = {0, 1};
    nt_case c = qcase(10, "MatMulInteger", ROUSE_DT_INT32);
    c.n_in = 4;
    c.in[0] = (nt_in){"a", ROUSE_DT_UINT8, 2, {2, 3}, a, false};
    c.in[1] = (nt_in){"b", ROUSE_DT_UINT8, 2, {3, 2}, b, true};
    c.in[2] = (nt_in){"za", ROUSE_DT_UINT8, 0, {0}, &za, true};
    c.in[3] = (nt_in){"zb", ROUSE_DT_UINT8, 1, {2}, zb, true};
    nt_build(&c);
    nt_result r = nt_run_ok(&c);
    assert_int_equal(r.out[0].dtype, ROUSE_DT_INT32);
    assert_memory_equal(r.out[0].data, ((const int32_t[]){2, 0, 8, -3}), 16);
    nt_result_free(&r);

    /* int8 x uint8, batch of 2 broadcast against one B */
    static const int8_t as[] = {-1, 2, 3, 4};
    static const uint8_t bs[] = {3, 4};
    c = qcase(10, "MatMulInteger", ROUSE_DT_INT32);
    c.n_in = 2;
    c.in[0] = (nt_in){"a", ROUSE_DT_INT8, 3, {2, 1, 2}, as, false};
    c.in[1] = (nt_in){"b", ROUSE_DT_UINT8, 2, {2, 1}, bs, false};
    nt_build(&c);
    r = nt_run_ok(&c);
    nt_expect_shape(&r.out[0], 3, (int64_t[]){2, 1, 1});
    assert_memory_equal(r.out[0].data, ((const int32_t[]){5, 25}), 8);
    nt_result_free(&r);
}

static nt_case qlinear_matmul_case(uint8_t yz)
{
    static const uint8_t a[] = {10, 20}, az = 10, b[] = {4, 6}, bz = 2;
    static const float as = 0.5f, bs = 0.25f, ys = 0.1f;
    static uint8_t z;
    z = yz;
    nt_case c = qcase(10, "QLinearMatMul", ROUSE_DT_UINT8);
    c.n_in = 8;
    c.in[0] = (nt_in){"a", ROUSE_DT_UINT8, 2, {1, 2}, a, false};
    c.in[1] = (nt_in){"as", ROUSE_DT_FLOAT, 0, {0}, &as, true};
    c.in[2] = (nt_in){"az", ROUSE_DT_UINT8, 0, {0}, &az, true};
    c.in[3] = (nt_in){"b", ROUSE_DT_UINT8, 2, {2, 1}, b, true};
    c.in[4] = (nt_in){"bs", ROUSE_DT_FLOAT, 0, {0}, &bs, true};
    c.in[5] = (nt_in){"bz", ROUSE_DT_UINT8, 0, {0}, &bz, true};
    c.in[6] = (nt_in){"ys", ROUSE_DT_FLOAT, 0, {0}, &ys, true};
    c.in[7] = (nt_in){"yz", ROUSE_DT_UINT8, 0, {0}, &z, true};
    nt_build(&c);
    return c;
}

static void qlinear_matmul(void **state)
{
    (void)state;
    /* (10 - 10) * (4 - 2) + (20 - 10) * (6 - 2) = 40; 40 * 0.5 * 0.25 / 0.1 = 50 */
    nt_case c = qlinear_matmul_case(5);
    nt_result r = nt_run_ok(&c);
    assert_int_equal(*(const uint8_t *)r.out[0].data, 55);
    nt_result_free(&r);
    c = qlinear_matmul_case(250);
    r = nt_run_ok(&c);
    assert_int_equal(*(const uint8_t *)r.out[0].data, 255); /* saturated */
    nt_result_free(&r);
}

static void conv_integer(void **state)
{
    (void)state;
    static const uint8_t x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[] = {1, 1, 1, 1}, xz = 1;
    nt_case c = qcase(10, "ConvInteger", ROUSE_DT_INT32);
    c.n_in = 3;
    c.in[0] = (nt_in){"x", ROUSE_DT_UINT8, 4, {1, 1, 3, 3}, x, false};
    c.in[1] = (nt_in){"w", ROUSE_DT_UINT8, 4, {1, 1, 2, 2}, w, true};
    c.in[2] = (nt_in){"xz", ROUSE_DT_UINT8, 0, {0}, &xz, true};
    nt_build(&c);
    nt_result r = nt_run_ok(&c);
    nt_expect_shape(&r.out[0], 4, (int64_t[]){1, 1, 2, 2});
    assert_memory_equal(r.out[0].data, ((const int32_t[]){8, 12, 20, 24}), 16);
    nt_result_free(&r);

    /* per output channel weight zero points, 1x1 kernels, padding reads the
     * zero point (contributes nothing) */
    static const uint8_t w2[] = {3, 5}, wz[] = {1, 2};
    c = qcase(10, "ConvInteger", ROUSE_DT_INT32);
    c.n_in = 4;
    c.in[0] = (nt_in){"x", ROUSE_DT_UINT8, 4, {1, 1, 1, 2}, x, false};
    c.in[1] = (nt_in){"w", ROUSE_DT_UINT8, 4, {2, 1, 1, 1}, w2, true};
    c.in[2] = (nt_in){"xz", ROUSE_DT_UINT8, 0, {0}, &xz, true};
    c.in[3] = (nt_in){"wz", ROUSE_DT_UINT8, 1, {2}, wz, true};
    nt_build(&c);
    ob_attr_ints(c.node, "pads", 4, (int64_t[]){0, 1, 0, 0});
    r = nt_run_ok(&c);
    nt_expect_shape(&r.out[0], 4, (int64_t[]){1, 2, 1, 3});
    assert_memory_equal(r.out[0].data, ((const int32_t[]){0, 0, 2, 0, 0, 3}), 24);
    nt_result_free(&r);
}

static void qlinear_conv(void **state)
{
    (void)state;
    static const uint8_t x[] = {2, 4, 6, 8}, xz = 0, w[] = {1, 2}, wz[] = {0, 0}, yz = 1;
    static const float xs = 0.5f, ws[] = {1, 0.5f}, ys = 1;
    static const int32_t b[] = {1, -2};
    nt_case c = qcase(10, "QLinearConv", ROUSE_DT_UINT8);
    c.n_in = 9;
    c.in[0] = (nt_in){"x", ROUSE_DT_UINT8, 4, {1, 1, 2, 2}, x, false};
    c.in[1] = (nt_in){"xs", ROUSE_DT_FLOAT, 0, {0}, &xs, true};
    c.in[2] = (nt_in){"xz", ROUSE_DT_UINT8, 0, {0}, &xz, true};
    c.in[3] = (nt_in){"w", ROUSE_DT_UINT8, 4, {2, 1, 1, 1}, w, true};
    c.in[4] = (nt_in){"ws", ROUSE_DT_FLOAT, 1, {2}, ws, true};
    c.in[5] = (nt_in){"wz", ROUSE_DT_UINT8, 1, {2}, wz, true};
    c.in[6] = (nt_in){"ys", ROUSE_DT_FLOAT, 0, {0}, &ys, true};
    c.in[7] = (nt_in){"yz", ROUSE_DT_UINT8, 0, {0}, &yz, true};
    c.in[8] = (nt_in){"b", ROUSE_DT_INT32, 1, {2}, b, true};
    nt_build(&c);
    nt_result r = nt_run_ok(&c);
    /* channel 0: (x + 1) * 0.5 = 1.5 2.5 3.5 4.5 -> 2 2 4 4, + 1;
     * channel 1: (2x - 2) * 0.25 = 0.5 1.5 2.5 3.5 -> 0 2 2 4, + 1 */
    assert_memory_equal(r.out[0].data, ((const uint8_t[]){3, 3, 5, 5, 1, 3, 3, 5}), 8);
    assert_int_equal(r.stats.ref_macs, 8); /* 8 outputs of one product each */
    nt_result_free(&r);

    /* B of the wrong length */
    c = qcase(10, "QLinearConv", ROUSE_DT_UINT8);
    c.n_in = 9;
    c.in[0] = (nt_in){"x", ROUSE_DT_UINT8, 4, {1, 1, 2, 2}, x, false};
    c.in[1] = (nt_in){"xs", ROUSE_DT_FLOAT, 0, {0}, &xs, true};
    c.in[2] = (nt_in){"xz", ROUSE_DT_UINT8, 0, {0}, &xz, true};
    c.in[3] = (nt_in){"w", ROUSE_DT_UINT8, 4, {2, 1, 1, 1}, w, true};
    c.in[4] = (nt_in){"ws", ROUSE_DT_FLOAT, 1, {2}, ws, true};
    c.in[5] = (nt_in){"wz", ROUSE_DT_UINT8, 1, {2}, wz, true};
    c.in[6] = (nt_in){"ys", ROUSE_DT_FLOAT, 0, {0}, &ys, true};
    c.in[7] = (nt_in){"yz", ROUSE_DT_UINT8, 0, {0}, &yz, true};
    c.in[8] = (nt_in){"b", ROUSE_DT_INT32, 1, {1}, b, true};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EMISMATCH, "input 'B' must be int32 of shape [2]");
}

/* A convolution whose tensors are small but whose work is not (a long pad,
 * a long kernel: 2^33 products and more) is refused when the plan is
 * prepared, naming the node, instead of running for minutes. */
static void reference_work_bound(void **state)
{
    (void)state;
    enum { CH = 64, LEN = 2048 };
    static uint8_t x[CH * LEN], w[CH * LEN];
    nt_case c = qcase(10, "ConvInteger", ROUSE_DT_INT32);
    c.n_in = 2;
    c.in[0] = (nt_in){"x", ROUSE_DT_UINT8, 3, {1, CH, LEN}, x, false};
    c.in[1] = (nt_in){"w", ROUSE_DT_UINT8, 3, {1, CH, LEN}, w, true};
    nt_build(&c);
    ob_attr_ints(c.node, "pads", 2, (int64_t[]){0, 65536});
    nt_run_fails(&c, ROUSE_ETOOBIG,
                 "(ConvInteger): 8.59e+09 multiply-accumulates per run on the reference kernels");

    /* the same node with a short pad runs */
    c = qcase(10, "ConvInteger", ROUSE_DT_INT32);
    c.n_in = 2;
    c.in[0] = (nt_in){"x", ROUSE_DT_UINT8, 3, {1, CH, LEN}, x, false};
    c.in[1] = (nt_in){"w", ROUSE_DT_UINT8, 3, {1, CH, LEN}, w, true};
    nt_build(&c);
    ob_attr_ints(c.node, "pads", 2, (int64_t[]){0, 1});
    nt_result r = nt_run_ok(&c);
    nt_expect_shape(&r.out[0], 3, (int64_t[]){1, 1, 2});
    assert_int_equal(r.stats.ref_macs, 2 * CH * LEN);
    nt_result_free(&r);
}

static void quant_errors(void **state)
{
    (void)state;
    static const float x[] = {1, 2, 3, 4, 5, 6}, s2[] = {1, 2}, one = 1;
    static const int16_t z16 = 0;
    static const int8_t zs = 0;

    nt_case c = qcase(13, "QuantizeLinear", ROUSE_DT_INT16);
    c.n_in = 3;
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 2, {2, 3}, x, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 0, {0}, &one, true};
    c.in[2] = (nt_in){"z", ROUSE_DT_INT16, 0, {0}, &z16, true};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EUNSUPPORTED, "only uint8 and int8");

    c = qcase(13, "QuantizeLinear", ROUSE_DT_UINT8);
    c.n_in = 2;
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 2, {2, 3}, x, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 1, {2}, s2, true};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EMISMATCH, "input 'y_scale' must hold 1 value or 3");

    c = qcase(13, "QuantizeLinear", ROUSE_DT_UINT8);
    c.n_in = 2;
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 2, {2, 3}, x, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 1, {2}, s2, true};
    nt_build(&c);
    ob_attr_int(c.node, "axis", 2);
    nt_run_fails(&c, ROUSE_EMISMATCH, "axis 2 is out of range");

    c = qcase(13, "QuantizeLinear", ROUSE_DT_UINT8);
    c.n_in = 2;
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 2, {2, 3}, x, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 0, {0}, &one, true};
    nt_build(&c);
    ob_attr_int(c.node, "axis", 1000);
    nt_run_fails(&c, ROUSE_EFORMAT, "attribute 'axis' is out of range");

    /* per-axis before opset 13 */
    c = qcase(10, "QuantizeLinear", ROUSE_DT_UINT8);
    c.n_in = 2;
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 2, {3, 2}, x, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 1, {2}, s2, true};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EMISMATCH, "must hold 1 value before opset 13");

    static const uint8_t xu[] = {1, 2};
    c = qcase(13, "DequantizeLinear", ROUSE_DT_FLOAT);
    c.n_in = 3;
    c.in[0] = (nt_in){"x", ROUSE_DT_UINT8, 1, {2}, xu, false};
    c.in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 0, {0}, &one, true};
    c.in[2] = (nt_in){"z", ROUSE_DT_INT8, 0, {0}, &zs, true};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EMISMATCH, "input 'x_zero_point' is int8, input 'x' is uint8");

    c = qcase(10, "MatMulInteger", ROUSE_DT_INT32);
    c.n_in = 2;
    c.in[0] = (nt_in){"a", ROUSE_DT_UINT8, 2, {1, 2}, xu, false};
    c.in[1] = (nt_in){"b", ROUSE_DT_UINT8, 2, {1, 2}, xu, true};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EMISMATCH, "disagree on the inner dim (2 vs 1)");

    c = qcase(10, "MatMulInteger", ROUSE_DT_INT32);
    c.n_in = 2;
    c.in[0] = (nt_in){"a", ROUSE_DT_FLOAT, 2, {1, 2}, x, false};
    c.in[1] = (nt_in){"b", ROUSE_DT_UINT8, 2, {2, 1}, xu, true};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EUNSUPPORTED, "element type float of input 'A' is not supported");

    c = qcase(10, "ConvInteger", ROUSE_DT_INT32);
    c.n_in = 3;
    c.in[0] = (nt_in){"x", ROUSE_DT_UINT8, 4, {1, 2, 1, 1}, xu, false};
    c.in[1] = (nt_in){"w", ROUSE_DT_UINT8, 4, {1, 2, 1, 1}, xu, true};
    c.in[2] = (nt_in){"xz", ROUSE_DT_UINT8, 1, {2}, xu, true};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EMISMATCH, "input 'x_zero_point' must hold 1 value");

    c = qcase(10, "ConvInteger", ROUSE_DT_INT32);
    c.n_in = 2;
    c.in[0] = (nt_in){"x", ROUSE_DT_UINT8, 4, {1, 2, 1, 1}, xu, false};
    c.in[1] = (nt_in){"w", ROUSE_DT_UINT8, 4, {1, 2, 1, 1}, xu, true};
    nt_build(&c);
    ob_attr_ints(c.node, "dilations", 2, (int64_t[]){1, -1});
    nt_run_fails(&c, ROUSE_EFORMAT, "attribute 'dilations' has invalid value -1");

    c = (nt_case){.opset = 11,
                  .op = "DynamicQuantizeLinear",
                  .n_in = 1,
                  .n_out = 3,
                  .out_dtype = {ROUSE_DT_UINT8, ROUSE_DT_FLOAT, ROUSE_DT_UINT8}};
    c.in[0] = (nt_in){"x", ROUSE_DT_UINT8, 1, {2}, xu, false};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EUNSUPPORTED, "element type uint8 of input 'x' is not supported");
}

/* Case *(const int *)arg through a compiled plan and from the .onnx. */
static void make_plan_case(nt_case *c, const void *arg)
{
    static const float x[12] = {0.5f, -1, 2, 0.25f, 3, -2, 1, 0, 1.5f, -0.5f, 2.5f, 4};
    static const float s3[] = {0.5f, 0.25f, 2};
    static const int8_t z3[] = {-3, 0, 7};
    static const uint8_t xq[18] = {1, 9, 4, 200, 33, 7, 0, 255, 128, 12, 99, 3, 5, 6, 70, 8, 1, 2};
    static const int8_t wq[8] = {1, -2, 3, -4, 5, -6, 7, -8};
    static const float xs = 0.1f, ws[] = {0.2f, 0.05f}, ys = 0.3f;
    static const uint8_t xz = 3, yz = 128;
    static const int8_t wz[] = {0, 1};
    int which = *(const int *)arg;
    switch (which) {
    case 0:
        *c = qcase(13, "QuantizeLinear", ROUSE_DT_INT8);
        c->n_in = 3;
        c->in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 2, {4, 3}, x, false};
        c->in[1] = (nt_in){"s", ROUSE_DT_FLOAT, 1, {3}, s3, true};
        c->in[2] = (nt_in){"z", ROUSE_DT_INT8, 1, {3}, z3, true};
        nt_build(c);
        ob_attr_int(c->node, "axis", -1);
        break;
    case 1:
        /* x [1, 2, 3, 3] uint8, w [2, 1, 2, 2] int8, group 2 */
        *c = qcase(10, "QLinearConv", ROUSE_DT_UINT8);
        c->n_in = 8;
        c->in[0] = (nt_in){"x", ROUSE_DT_UINT8, 4, {1, 2, 3, 3}, xq, false};
        c->in[1] = (nt_in){"xs", ROUSE_DT_FLOAT, 0, {0}, &xs, true};
        c->in[2] = (nt_in){"xz", ROUSE_DT_UINT8, 0, {0}, &xz, true};
        c->in[3] = (nt_in){"w", ROUSE_DT_INT8, 4, {2, 1, 2, 2}, wq, true};
        c->in[4] = (nt_in){"ws", ROUSE_DT_FLOAT, 1, {2}, ws, true};
        c->in[5] = (nt_in){"wz", ROUSE_DT_INT8, 1, {2}, wz, true};
        c->in[6] = (nt_in){"ys", ROUSE_DT_FLOAT, 0, {0}, &ys, true};
        c->in[7] = (nt_in){"yz", ROUSE_DT_UINT8, 0, {0}, &yz, true};
        nt_build(c);
        ob_attr_int(c->node, "group", 2);
        ob_attr_ints(c->node, "strides", 2, (int64_t[]){2, 1});
        ob_attr_string(c->node, "auto_pad", "SAME_UPPER");
        break;
    default:
        *c = qcase(10, "ConvInteger", ROUSE_DT_INT32);
        c->n_in = 3;
        c->in[0] = (nt_in){"x", ROUSE_DT_UINT8, 4, {1, 2, 3, 3}, xq, false};
        c->in[1] = (nt_in){"w", ROUSE_DT_INT8, 4, {2, 1, 2, 2}, wq, true};
        c->in[2] = (nt_in){"xz", ROUSE_DT_UINT8, 0, {0}, &xz, true};
        nt_build(c);
        ob_attr_int(c->node, "group", 2);
        ob_attr_ints(c->node, "dilations", 2, (int64_t[]){2, 1});
        ob_attr_ints(c->node, "pads", 4, (int64_t[]){1, 1, 0, 0});
        break;
    }
}

static void records_through_plans(void **state)
{
    (void)state;
    for (int which = 0; which < 3; which++)
        nt_plan_same(make_plan_case, &which);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quantize_rounding_saturation),
        cmocka_unit_test(quantize_per_axis),
        cmocka_unit_test(dequantize),
        cmocka_unit_test(dynamic_quantize),
        cmocka_unit_test(matmul_integer),
        cmocka_unit_test(qlinear_matmul),
        cmocka_unit_test(conv_integer),
        cmocka_unit_test(qlinear_conv),
        cmocka_unit_test(reference_work_bound),
        cmocka_unit_test(quant_errors),
        cmocka_unit_test(records_through_plans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
