/*
 * The spatial operators (src/engine/ops/spatial.c, spatial_conv.c): Resize
 * in each mode and coordinate transform, Upsample, ConvTranspose, the extra
 * pools, against hand-computed values; attribute and shape errors; and the
 * oneDNN resampling and deconvolution kernels against the reference ones on
 * random shapes (within 1e-4 + 1e-3 * |ref|).
 */
#include "node_test.h"

#include "engine/op.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static int rand_int(int lo, int hi)
{
    return lo + (int)(next_u32() % (uint32_t)(hi - lo + 1));
}

static float *rand_floats(int64_t n)
{
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    assert_non_null(p);
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)(next_u32() % 20001) / 10000.0f - 1.0f;
    return p;
}

/* Resize of x [1, 1, 1, w] (opset 13) with sizes or scales as initializers. */
static nt_case resize_case(const float *x, int64_t w, const int64_t *sizes, const float *scales,
                           const float *roi)
{
    nt_case c = {.opset = 13, .op = "Resize", .n_in = 4, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 4, {1, 1, 1, w}, x, false};
    c.in[1] = roi ? (nt_in){"roi", ROUSE_DT_FLOAT, 1, {8}, roi, true} : NT_NONE;
    c.in[2] = scales ? (nt_in){"scales", ROUSE_DT_FLOAT, 1, {4}, scales, true} : NT_NONE;
    c.in[3] = sizes ? (nt_in){"sizes", ROUSE_DT_INT64, 1, {4}, sizes, true} : NT_NONE;
    if (!sizes) c.n_in = 3;
    nt_build(&c);
    return c;
}

static void resize_linear_half_pixel(void **state)
{
    (void)state;
    static const float x[] = {1, 2};
    static const float scales[] = {1, 1, 1, 2};
    nt_case c = resize_case(x, 2, NULL, scales, NULL);
    ob_attr_string(c.node, "mode", "linear");
    nt_result r = nt_run_ok(&c);
    /* Sample points -0.25, 0.25, 0.75, 1.25: the outer ones clamp to the edge. */
    static const float want[] = {1, 1.25f, 1.75f, 2};
    nt_expect_shape(&r.out[0], 4, (int64_t[]){1, 1, 1, 4});
    nt_expect_floats(&r.out[0], want, 4, 1e-6f);
    nt_result_free(&r);
}

static void resize_nearest_modes(void **state)
{
    (void)state;
    static const float x[] = {10, 20, 30};
    static const int64_t sizes[] = {1, 1, 1, 6};
    static const struct {
        const char *coord, *nearest;
        float want[6];
    } cases[] = {
        /* asymmetric: o / 2 = 0, .5, 1, 1.5, 2, 2.5 */
        {"asymmetric", "floor", {10, 10, 20, 20, 30, 30}},
        {"asymmetric", "ceil", {10, 20, 20, 30, 30, 30}},
        {"asymmetric", "round_prefer_floor", {10, 10, 20, 20, 30, 30}},
        {"asymmetric", "round_prefer_ceil", {10, 20, 20, 30, 30, 30}},
        /* half_pixel: -0.25, 0.25, 0.75, 1.25, 1.75, 2.25 */
        {"half_pixel", "round_prefer_floor", {10, 10, 20, 20, 30, 30}},
        /* align_corners: o * 2 / 5 = 0, .4, .8, 1.2, 1.6, 2 */
        {"align_corners", "floor", {10, 10, 10, 20, 20, 30}},
        /* tf_half_pixel_for_nn: (o + .5) / 2 = .25, .75, 1.25, ... */
        {"tf_half_pixel_for_nn", "floor", {10, 10, 20, 20, 30, 30}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        nt_case c = resize_case(x, 3, sizes, NULL, NULL);
        ob_attr_string(c.node, "coordinate_transformation_mode", cases[i].coord);
        ob_attr_string(c.node, "nearest_mode", cases[i].nearest);
        nt_result r = nt_run_ok(&c);
        nt_expect_floats(&r.out[0], cases[i].want, 6, 0);
        nt_result_free(&r);
    }
}

static void resize_cubic_align_corners(void **state)
{
    (void)state;
    static const float x[] = {0, 1, 2, 3};
    static const int64_t sizes[] = {1, 1, 1, 7};
    /* Sample points 0, .5, 1, ... 3; at half-integers the A = -0.75 weights
     * are -0.09375, 0.59375, 0.59375, -0.09375 and the edge repeats. */
    nt_case c = resize_case(x, 4, sizes, NULL, NULL);
    ob_attr_string(c.node, "mode", "cubic");
    ob_attr_string(c.node, "coordinate_transformation_mode", "align_corners");
    nt_result r = nt_run_ok(&c);
    static const float want[] = {0, 0.40625f, 1, 1.5f, 2, 2.59375f, 3};
    nt_expect_floats(&r.out[0], want, 7, 1e-6f);
    nt_result_free(&r);

    /* exclude_outside drops the tap at -1 and renormalizes the others. */
    c = resize_case(x, 4, sizes, NULL, NULL);
    ob_attr_string(c.node, "mode", "cubic");
    ob_attr_string(c.node, "coordinate_transformation_mode", "align_corners");
    ob_attr_int(c.node, "exclude_outside", 1);
    r = nt_run_ok(&c);
    static const float want_ex[] = {0, 0.40625f / 1.09375f, 1, 1.5f, 2, 3 - 0.40625f / 1.09375f, 3};
    nt_expect_floats(&r.out[0], want_ex, 7, 1e-6f);
    nt_result_free(&r);
}

static void resize_tf_crop_and_resize(void **state)
{
    (void)state;
    static const float x[] = {0, 1, 2, 3};
    static const int64_t sizes[] = {1, 1, 1, 3};
    /* The last dim's box runs from 0.5 to 1.5 of the extent: samples at
     * 1.5, 3 and 4.5, the last outside (extrapolated). */
    static const float roi[] = {0, 0, 0, 0.5f, 1, 1, 1, 1.5f};
    nt_case c = resize_case(x, 4, sizes, NULL, roi);
    ob_attr_string(c.node, "mode", "linear");
    ob_attr_string(c.node, "coordinate_transformation_mode", "tf_crop_and_resize");
    ob_attr_float(c.node, "extrapolation_value", 9);
    nt_result r = nt_run_ok(&c);
    static const float want[] = {1.5f, 3, 9};
    nt_expect_floats(&r.out[0], want, 3, 1e-6f);
    nt_result_free(&r);
}

static void resize_opset10_and_upsample(void **state)
{
    (void)state;
    static const float x[] = {1, 2, 3, 4};
    /* Resize-10 shrinking: asymmetric, nearest rounds up (0, 2). */
    static const float half[] = {1, 1, 1, 0.5f};
    nt_case c = {.opset = 10, .op = "Resize", .n_in = 2, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 4, {1, 1, 1, 4}, x, false};
    c.in[1] = (nt_in){"scales", ROUSE_DT_FLOAT, 1, {4}, half, true};
    nt_build(&c);
    nt_result r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], (const float[]){1, 3}, 2, 0);
    nt_result_free(&r);

    /* Upsample-9, scales as an input: x [1, 1, 2, 2] -> [1, 1, 4, 2]. */
    static const float up[] = {1, 1, 2, 1};
    c = (nt_case){
        .opset = 9, .op = "Upsample", .n_in = 2, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 4, {1, 1, 2, 2}, x, false};
    c.in[1] = (nt_in){"scales", ROUSE_DT_FLOAT, 1, {4}, up, false};
    nt_build(&c);
    r = nt_run_ok(&c);
    nt_expect_shape(&r.out[0], 4, (int64_t[]){1, 1, 4, 2});
    nt_expect_floats(&r.out[0], (const float[]){1, 2, 1, 2, 3, 4, 3, 4}, 8, 0);
    nt_result_free(&r);

    /* Upsample-7, scales as an attribute, linear (asymmetric). */
    c = (nt_case){
        .opset = 7, .op = "Upsample", .n_in = 1, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 4, {1, 1, 1, 2}, x, false};
    nt_build(&c);
    ob_attr_floats(c.node, "scales", 4, (const float[]){1, 1, 1, 2});
    ob_attr_string(c.node, "mode", "linear");
    r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], (const float[]){1, 1.5f, 2, 2}, 4, 1e-6f);
    nt_result_free(&r);
}

/* Rank 1 and rank 6 take the per-element path of the reference kernel
 * (rows of ranks 2 to 5 the row path): the same linear result. */
static void resize_element_path(void **state)
{
    (void)state;
    static const float x[] = {1, 2};
    static const float s1[] = {2}, s6[] = {1, 1, 1, 1, 1, 2};
    static const float want[] = {1, 1.25f, 1.75f, 2};
    nt_case c = {.opset = 13, .op = "Resize", .n_in = 3, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 1, {2}, x, false};
    c.in[1] = NT_NONE;
    c.in[2] = (nt_in){"scales", ROUSE_DT_FLOAT, 1, {1}, s1, true};
    nt_build(&c);
    ob_attr_string(c.node, "mode", "linear");
    nt_result r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], want, 4, 1e-6f);
    nt_result_free(&r);

    c = (nt_case){
        .opset = 13, .op = "Resize", .n_in = 3, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 6, {1, 1, 1, 1, 1, 2}, x, false};
    c.in[1] = NT_NONE;
    c.in[2] = (nt_in){"scales", ROUSE_DT_FLOAT, 1, {6}, s6, true};
    nt_build(&c);
    ob_attr_string(c.node, "mode", "linear");
    r = nt_run_ok(&c);
    nt_expect_shape(&r.out[0], 6, (int64_t[]){1, 1, 1, 1, 1, 4});
    nt_expect_floats(&r.out[0], want, 4, 1e-6f);
    nt_result_free(&r);
}

static void resize_float16(void **state)
{
    (void)state;
    /* 1.0, 2.0 in IEEE half; nearest doubling. */
    static const uint16_t x[] = {0x3c00, 0x4000};
    static const float scales[] = {1, 2};
    nt_case c = {
        .opset = 13, .op = "Resize", .n_in = 3, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT16}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT16, 2, {1, 2}, x, false};
    c.in[1] = NT_NONE;
    c.in[2] = (nt_in){"scales", ROUSE_DT_FLOAT, 1, {2}, scales, true};
    nt_build(&c);
    ob_attr_string(c.node, "coordinate_transformation_mode", "asymmetric");
    ob_attr_string(c.node, "nearest_mode", "floor");
    nt_result r = nt_run_ok(&c);
    assert_int_equal(r.out[0].dtype, ROUSE_DT_FLOAT16);
    const uint16_t want[] = {0x3c00, 0x3c00, 0x4000, 0x4000};
    assert_memory_equal(r.out[0].data, want, sizeof(want));
    nt_result_free(&r);
}

static void resize_errors(void **state)
{
    (void)state;
    static const float x[] = {1, 2};
    static const float scales[] = {1, 1, 1, 2};
    static const int64_t sizes[] = {1, 1, 1, 4};

    nt_case c = resize_case(x, 2, NULL, scales, NULL);
    ob_attr_string(c.node, "mode", "bilinear");
    nt_run_fails(&c, ROUSE_EFORMAT, "attribute 'mode' has unknown value 'bilinear'");

    c = resize_case(x, 2, NULL, scales, NULL);
    ob_attr_string(c.node, "coordinate_transformation_mode", "half_pixel_symmetric");
    nt_run_fails(&c, ROUSE_EFORMAT, "coordinate_transformation_mode");

    c = resize_case(x, 2, sizes, scales, NULL);
    nt_run_fails(&c, ROUSE_EFORMAT, "only one may be");

    c = resize_case(x, 2, NULL, NULL, NULL);
    nt_run_fails(&c, ROUSE_EFORMAT, "one of inputs 'scales' and 'sizes' is required");

    static const float bad[] = {1, 1, 1, -2};
    c = resize_case(x, 2, NULL, bad, NULL);
    nt_run_fails(&c, ROUSE_EFORMAT, "scale -2 at dim 3");

    static const float huge[] = {1, 1, 1, 1e30f};
    c = resize_case(x, 2, NULL, huge, NULL);
    nt_run_fails(&c, ROUSE_ETOOBIG, "too large");

    static const int64_t neg[] = {1, 1, 1, -4};
    c = resize_case(x, 2, neg, NULL, NULL);
    nt_run_fails(&c, ROUSE_EFORMAT, "input 'sizes' has invalid value -4");

    /* scales of the wrong length */
    c = (nt_case){
        .opset = 13, .op = "Resize", .n_in = 3, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 4, {1, 1, 1, 2}, x, false};
    c.in[1] = NT_NONE;
    c.in[2] = (nt_in){"scales", ROUSE_DT_FLOAT, 1, {2}, scales, true};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EMISMATCH, "'scales' has 2 values, input 'X' has rank 4");

    /* tf_crop_and_resize without roi */
    c = resize_case(x, 2, sizes, NULL, NULL);
    ob_attr_string(c.node, "coordinate_transformation_mode", "tf_crop_and_resize");
    nt_run_fails(&c, ROUSE_EMISMATCH, "needs input 'roi'");

    /* Upsample is gone from opset 10 on. */
    c = (nt_case){
        .opset = 10, .op = "Upsample", .n_in = 2, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 4, {1, 1, 1, 2}, x, false};
    c.in[1] = (nt_in){"scales", ROUSE_DT_FLOAT, 1, {4}, scales, true};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EUNSUPPORTED, "opset 10 removed");

    /* Upsample shrinking */
    static const float down[] = {1, 1, 1, 0.5f};
    c = (nt_case){
        .opset = 9, .op = "Upsample", .n_in = 2, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 4, {1, 1, 1, 2}, x, false};
    c.in[1] = (nt_in){"scales", ROUSE_DT_FLOAT, 1, {4}, down, true};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EFORMAT, ">= 1");
}

/* --- ConvTranspose ------------------------------------------------------------- */

static nt_case convtr_1d(const float *x, int64_t w_in, const float *w, int64_t k, const float *b)
{
    nt_case c = {.opset = 11,
                 .op = "ConvTranspose",
                 .n_in = b ? 3 : 2,
                 .n_out = 1,
                 .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 3, {1, 1, w_in}, x, false};
    c.in[1] = (nt_in){"w", ROUSE_DT_FLOAT, 3, {1, 1, k}, w, true};
    if (b) c.in[2] = (nt_in){"b", ROUSE_DT_FLOAT, 1, {1}, b, true};
    nt_build(&c);
    return c;
}

static void convtr_hand(void **state)
{
    (void)state;
    static const float x[] = {1, 2, 3}, w2[] = {1, 1}, w3[] = {1, 1, 1}, b[] = {0.5f};

    nt_case c = convtr_1d(x, 3, w2, 2, NULL);
    ob_attr_ints(c.node, "strides", 1, (int64_t[]){2});
    nt_result r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], (const float[]){1, 1, 2, 2, 3, 3}, 6, 0);
    nt_result_free(&r);

    c = convtr_1d(x, 3, w2, 2, b);
    r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], (const float[]){1.5f, 3.5f, 5.5f, 3.5f}, 4, 0);
    nt_result_free(&r);

    /* output_padding adds a last element that only the bias reaches. */
    c = convtr_1d(x, 3, w2, 2, b);
    ob_attr_ints(c.node, "strides", 1, (int64_t[]){2});
    ob_attr_ints(c.node, "output_padding", 1, (int64_t[]){1});
    r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], (const float[]){1.5f, 1.5f, 2.5f, 2.5f, 3.5f, 3.5f, 0.5f}, 7, 0);
    nt_result_free(&r);

    /* Full result of k = 3, stride 2: 1 1 3 2 5 3 3. SAME_* keep 6 of 7,
     * dropping the odd unit at the end (UPPER) or the start (LOWER). */
    c = convtr_1d(x, 3, w3, 3, NULL);
    ob_attr_ints(c.node, "strides", 1, (int64_t[]){2});
    ob_attr_string(c.node, "auto_pad", "SAME_UPPER");
    r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], (const float[]){1, 1, 3, 2, 5, 3}, 6, 0);
    nt_result_free(&r);

    c = convtr_1d(x, 3, w3, 3, NULL);
    ob_attr_ints(c.node, "strides", 1, (int64_t[]){2});
    ob_attr_string(c.node, "auto_pad", "SAME_LOWER");
    r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], (const float[]){1, 3, 2, 5, 3, 3}, 6, 0);
    nt_result_free(&r);

    /* output_shape 5: total padding 2, one each side. */
    c = convtr_1d(x, 3, w3, 3, NULL);
    ob_attr_ints(c.node, "strides", 1, (int64_t[]){2});
    ob_attr_ints(c.node, "output_shape", 1, (int64_t[]){5});
    r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], (const float[]){1, 3, 2, 5, 3}, 5, 0);
    nt_result_free(&r);

    /* explicit pads and a dilation of 2: taps at 0, 2, 4 of each input. */
    c = convtr_1d(x, 3, w3, 3, NULL);
    ob_attr_ints(c.node, "dilations", 1, (int64_t[]){2});
    ob_attr_ints(c.node, "pads", 2, (int64_t[]){1, 2});
    r = nt_run_ok(&c);
    /* full: 1 2 4 2 4 2 3 (extent 7); drop 1 at the start, 2 at the end */
    nt_expect_floats(&r.out[0], (const float[]){2, 4, 2, 4}, 4, 0);
    nt_result_free(&r);
}

static void convtr_groups(void **state)
{
    (void)state;
    /* Two groups of one channel, two outputs per group:
     * W [2, 2, 1] = {1, 2}, {3, 4}; x [1, 2, 2] = {1, 2}, {3, 4}. */
    static const float x[] = {1, 2, 3, 4}, w[] = {1, 2, 3, 4};
    nt_case c = {
        .opset = 11, .op = "ConvTranspose", .n_in = 2, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 3, {1, 2, 2}, x, false};
    c.in[1] = (nt_in){"w", ROUSE_DT_FLOAT, 3, {2, 2, 1}, w, true};
    nt_build(&c);
    ob_attr_int(c.node, "group", 2);
    nt_result r = nt_run_ok(&c);
    nt_expect_shape(&r.out[0], 3, (int64_t[]){1, 4, 2});
    nt_expect_floats(&r.out[0], (const float[]){1, 2, 2, 4, 9, 12, 12, 16}, 8, 0);
    nt_result_free(&r);
}

static void convtr_errors(void **state)
{
    (void)state;
    static const float x[] = {1, 2, 3}, w[] = {1, 1};
    nt_case c = convtr_1d(x, 3, w, 2, NULL);
    ob_attr_ints(c.node, "strides", 1, (int64_t[]){0});
    nt_run_fails(&c, ROUSE_EFORMAT, "attribute 'strides' has invalid value 0");

    c = convtr_1d(x, 3, w, 2, NULL);
    ob_attr_ints(c.node, "output_padding", 1, (int64_t[]){1});
    nt_run_fails(&c, ROUSE_EFORMAT, "must be smaller than the stride or the dilation");

    c = convtr_1d(x, 3, w, 2, NULL);
    ob_attr_ints(c.node, "pads", 2, (int64_t[]){2, 2});
    nt_run_fails(&c, ROUSE_EMISMATCH, "pads leave no output");

    c = convtr_1d(x, 3, w, 2, NULL);
    ob_attr_ints(c.node, "kernel_shape", 1, (int64_t[]){3});
    nt_run_fails(&c, ROUSE_EMISMATCH, "disagrees with input 'W'");

    c = convtr_1d(x, 3, w, 2, NULL);
    ob_attr_string(c.node, "auto_pad", "SAME");
    nt_run_fails(&c, ROUSE_EFORMAT, "attribute 'auto_pad' has unknown value 'SAME'");

    c = convtr_1d(x, 3, w, 2, NULL);
    ob_attr_int(c.node, "group", 2);
    nt_run_fails(&c, ROUSE_EMISMATCH, "not a multiple of group 2");
}

/* --- pools ------------------------------------------------------------------------ */

static void pools_hand(void **state)
{
    (void)state;
    static const float x[] = {3, -4, 1, 2, 0, -1, 5, 2, -6};
    nt_case c = {
        .opset = 1, .op = "GlobalMaxPool", .n_in = 1, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 4, {1, 1, 3, 3}, x, false};
    nt_build(&c);
    nt_result r = nt_run_ok(&c);
    nt_expect_shape(&r.out[0], 4, (int64_t[]){1, 1, 1, 1});
    nt_expect_floats(&r.out[0], (const float[]){5}, 1, 0);
    nt_result_free(&r);

    c = (nt_case){
        .opset = 2, .op = "GlobalLpPool", .n_in = 1, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 3, {1, 1, 9}, x, false};
    nt_build(&c);
    ob_attr_int(c.node, "p", 1);
    r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], (const float[]){24}, 1, 1e-6f);
    nt_result_free(&r);

    /* LpPool p = 2, 2x2 windows, stride 1: sqrt of sums of squares. */
    c = (nt_case){
        .opset = 11, .op = "LpPool", .n_in = 1, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 4, {1, 1, 3, 3}, x, false};
    nt_build(&c);
    ob_attr_ints(c.node, "kernel_shape", 2, (int64_t[]){2, 2});
    r = nt_run_ok(&c);
    nt_expect_shape(&r.out[0], 4, (int64_t[]){1, 1, 2, 2});
    nt_expect_floats(&r.out[0],
                     (const float[]){sqrtf(9 + 16 + 4 + 0), sqrtf(16 + 1 + 0 + 1),
                                     sqrtf(4 + 0 + 25 + 4), sqrtf(0 + 1 + 4 + 36)},
                     4, 1e-5f);
    nt_result_free(&r);

    /* padding counts as zeros; SAME_UPPER keeps the extent */
    c = (nt_case){
        .opset = 11, .op = "LpPool", .n_in = 1, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 3, {1, 1, 9}, x, false};
    nt_build(&c);
    ob_attr_ints(c.node, "kernel_shape", 1, (int64_t[]){2});
    ob_attr_int(c.node, "p", 1);
    ob_attr_string(c.node, "auto_pad", "SAME_UPPER");
    r = nt_run_ok(&c);
    nt_expect_floats(&r.out[0], (const float[]){7, 5, 3, 2, 1, 6, 7, 8, 6}, 9, 1e-6f);
    nt_result_free(&r);

    c = (nt_case){
        .opset = 11, .op = "LpPool", .n_in = 1, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 3, {1, 1, 9}, x, false};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EFORMAT, "attribute 'kernel_shape' is required");

    c = (nt_case){
        .opset = 11, .op = "LpPool", .n_in = 1, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 3, {1, 1, 9}, x, false};
    nt_build(&c);
    ob_attr_ints(c.node, "kernel_shape", 1, (int64_t[]){2});
    ob_attr_int(c.node, "p", 0);
    nt_run_fails(&c, ROUSE_EFORMAT, "attribute 'p' must be in 1..64");

    c = (nt_case){
        .opset = 1, .op = "GlobalMaxPool", .n_in = 1, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c.in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 2, {1, 9}, x, false};
    nt_build(&c);
    nt_run_fails(&c, ROUSE_EMISMATCH, "rank >= 3");
}

/* --- oneDNN against the reference kernels --------------------------------------------- */

/* Runs c (built twice by make()) with oneDNN and with the reference kernels
 * and compares output 0; returns the optimized run's oneDNN step count. */
static int both_agree(void (*make)(nt_case *, const void *), const void *arg)
{
    nt_case a, b;
    make(&a, arg);
    make(&b, arg);
    nt_result fast = nt_run(&a, false, 2), ref = nt_run(&b, true, 1);
    if (fast.rc < 0) fail_msg("optimized: %s", fast.eb.msg);
    if (ref.rc < 0) fail_msg("reference: %s", ref.eb.msg);
    assert_int_equal(fast.out[0].rank, ref.out[0].rank);
    assert_memory_equal(fast.out[0].shape, ref.out[0].shape, sizeof(int64_t) * fast.out[0].rank);
    assert_int_equal(fast.out[0].nbytes, ref.out[0].nbytes);
    const float *pf = fast.out[0].data, *pr = ref.out[0].data;
    for (size_t i = 0; i < fast.out[0].nbytes / 4; i++)
        if (!(fabsf(pf[i] - pr[i]) <= 1e-4f + 1e-3f * fabsf(pr[i])))
            fail_msg("element %zu: optimized %g, reference %g", i, (double)pf[i], (double)pr[i]);
    int n = fast.stats.dnnl_steps;
    nt_result_free(&fast);
    nt_result_free(&ref);
    return n;
}

typedef struct resize_rand {
    int rank;
    int64_t in[5], out[5];
    const char *mode, *coord, *nearest;
    bool by_sizes;
    float *x;
    float scales[5];
    int64_t sizes[5];
} resize_rand;

static void make_resize(nt_case *c, const void *arg)
{
    const resize_rand *t = arg;
    *c = (nt_case){.opset = 13,
                   .op = "Resize",
                   .n_in = t->by_sizes ? 4 : 3,
                   .n_out = 1,
                   .out_dtype = {ROUSE_DT_FLOAT}};
    c->in[0] = (nt_in){"x", ROUSE_DT_FLOAT, t->rank, {0}, t->x, false};
    memcpy(c->in[0].dims, t->in, sizeof(int64_t) * (size_t)t->rank);
    c->in[1] = NT_NONE;
    if (t->by_sizes) {
        c->in[2] = NT_NONE;
        c->in[3] = (nt_in){"sizes", ROUSE_DT_INT64, 1, {t->rank}, t->sizes, true};
    } else {
        c->in[2] = (nt_in){"scales", ROUSE_DT_FLOAT, 1, {t->rank}, t->scales, true};
    }
    nt_build(c);
    ob_attr_string(c->node, "mode", t->mode);
    ob_attr_string(c->node, "coordinate_transformation_mode", t->coord);
    ob_attr_string(c->node, "nearest_mode", t->nearest);
}

static void resize_dnnl_random(void **state)
{
    (void)state;
    static const struct {
        const char *mode, *coord, *nearest;
        bool integral; /* oneDNN takes it only with integer factors */
    } kinds[] = {
        {"linear", "half_pixel", "round_prefer_floor", false},
        {"linear", "pytorch_half_pixel", "round_prefer_floor", false},
        {"nearest", "asymmetric", "floor", true},
        {"nearest", "half_pixel", "round_prefer_floor", true},
        {"nearest", "half_pixel", "round_prefer_ceil", true},
    };
    for (int it = 0; it < 40; it++) {
        resize_rand t = {.rank = rand_int(3, 5)};
        int kind = it % 5;
        t.mode = kinds[kind].mode;
        t.coord = kinds[kind].coord;
        t.nearest = kinds[kind].nearest;
        t.by_sizes = !kinds[kind].integral && (it & 1);
        t.in[0] = rand_int(1, 2);
        t.in[1] = rand_int(1, 5);
        t.out[0] = t.in[0];
        t.out[1] = t.in[1];
        t.scales[0] = t.scales[1] = 1;
        t.sizes[0] = t.in[0];
        t.sizes[1] = t.in[1];
        for (int d = 2; d < t.rank; d++) {
            t.in[d] = rand_int(2, t.rank == 5 ? 5 : 9);
            if (t.by_sizes) {
                t.out[d] = rand_int(2, 17); /* shrink or grow by any ratio */
            } else {
                t.out[d] = t.in[d] * rand_int(1, 3);
            }
            t.sizes[d] = t.out[d];
            t.scales[d] = (float)t.out[d] / (float)t.in[d];
        }
        int64_t n = 1;
        for (int d = 0; d < t.rank; d++)
            n *= t.in[d];
        t.x = rand_floats(n);
        int dnnl = both_agree(make_resize, &t);
        assert_int_equal(dnnl, 1); /* the resampling primitive ran */
        free(t.x);
    }
}

typedef struct convtr_rand {
    int ns;
    int64_t n, c, m, group, size[3], k[3], s[3], d[3], pb[3], pe[3], op[3];
    bool bias;
    const char *auto_pad;
    float *x, *w, *b;
} convtr_rand;

static void make_convtr(nt_case *c, const void *arg)
{
    const convtr_rand *t = arg;
    *c = (nt_case){.opset = 11,
                   .op = "ConvTranspose",
                   .n_in = t->bias ? 3 : 2,
                   .n_out = 1,
                   .out_dtype = {ROUSE_DT_FLOAT}};
    c->in[0] = (nt_in){"x", ROUSE_DT_FLOAT, t->ns + 2, {t->n, t->c}, t->x, false};
    c->in[1] = (nt_in){"w", ROUSE_DT_FLOAT, t->ns + 2, {t->c, t->m / t->group}, t->w, true};
    for (int i = 0; i < t->ns; i++) {
        c->in[0].dims[2 + i] = t->size[i];
        c->in[1].dims[2 + i] = t->k[i];
    }
    if (t->bias) c->in[2] = (nt_in){"b", ROUSE_DT_FLOAT, 1, {t->m}, t->b, true};
    nt_build(c);
    int64_t pads[6];
    for (int i = 0; i < t->ns; i++) {
        pads[i] = t->pb[i];
        pads[t->ns + i] = t->pe[i];
    }
    ob_attr_ints(c->node, "strides", t->ns, t->s);
    ob_attr_ints(c->node, "dilations", t->ns, t->d);
    ob_attr_ints(c->node, "output_padding", t->ns, t->op);
    ob_attr_int(c->node, "group", t->group);
    if (t->auto_pad)
        ob_attr_string(c->node, "auto_pad", t->auto_pad);
    else
        ob_attr_ints(c->node, "pads", 2 * t->ns, pads);
}

static void convtr_dnnl_random(void **state)
{
    (void)state;
    for (int it = 0; it < 30; it++) {
        convtr_rand t = {.ns = 1 + it % 3, .n = rand_int(1, 2), .bias = it & 1};
        t.group = rand_int(1, 3);
        t.c = t.group * rand_int(1, 3);
        t.m = t.group * rand_int(1, 3);
        t.auto_pad = it % 7 == 3 ? "SAME_UPPER" : it % 7 == 5 ? "SAME_LOWER" : NULL;
        for (int i = 0; i < t.ns; i++) {
            t.size[i] = rand_int(1, t.ns == 3 ? 4 : 7);
            t.k[i] = rand_int(1, 3);
            t.s[i] = rand_int(1, 3);
            t.d[i] = rand_int(1, 2);
            t.op[i] = rand_int(0, (t.s[i] > t.d[i] ? t.s[i] : t.d[i]) - 1);
            int64_t full = t.s[i] * (t.size[i] - 1) + t.op[i] + (t.k[i] - 1) * t.d[i] + 1;
            t.pb[i] = rand_int(0, (int)(full - 1) / 2);
            t.pe[i] = rand_int(0, (int)(full - 1) / 2);
        }
        int64_t nx = t.n * t.c, nw = t.c * (t.m / t.group);
        for (int i = 0; i < t.ns; i++) {
            nx *= t.size[i];
            nw *= t.k[i];
        }
        t.x = rand_floats(nx);
        t.w = rand_floats(nw);
        t.b = rand_floats(t.m);
        int dnnl = both_agree(make_convtr, &t);
        /* SAME_* may ask for more output than the full transposed extent
         * (a negative begin pad: then the reference kernel runs); explicit
         * pads always fit the deconvolution primitive. */
        if (!t.auto_pad) assert_int_equal(dnnl, 1);
        free(t.x);
        free(t.w);
        free(t.b);
    }
}

/* --- compiled plans ------------------------------------------------------------------ */

static const float plan_x[48] = {0.5f, -1, 2,     0.25f, 3,  -2,   1, 0, 1.5f,  -0.5f, 2.5f, 4,
                                 -3,   1,  0.75f, 2,     -1, 0.5f, 1, 3, -2.5f, 0,     1,    2,
                                 0.5f, -1, 2,     0.25f, 3,  -2,   1, 0, 1.5f,  -0.5f, 2.5f, 4,
                                 -3,   1,  0.75f, 2,     -1, 0.5f, 1, 3, -2.5f, 0,     1,    2};

/* Case *(const int *)arg: one node with most of its attributes set. */
static void make_plan_case(nt_case *c, const void *arg)
{
    static const int64_t sizes[] = {1, 2, 5, 7};
    static const float roi[] = {0, 0, 0.1f, -0.2f, 1, 1, 0.9f, 1.3f};
    static const float w[2 * 3 * 2 * 3] = {1, -1, 0.5f, 2,  0,  1,  -0.5f, 1,     1, 0.25f, 2, -1,
                                           1, 2,  3,    -1, -2, -3, 0.5f,  0.5f,  1, 1,     0, 2,
                                           1, 0,  -1,   2,  1,  0,  0.5f,  -0.5f, 1, 1,     2, 3};
    static const float b[3] = {0.5f, -1, 2};
    int which = *(const int *)arg;
    *c = (nt_case){.opset = 13, .n_out = 1, .out_dtype = {ROUSE_DT_FLOAT}};
    c->in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 4, {1, 2, 4, 6}, plan_x, false};
    switch (which) {
    case 0:
        c->op = "Resize";
        c->n_in = 4;
        c->in[1] = NT_NONE;
        c->in[2] = NT_NONE;
        c->in[3] = (nt_in){"sizes", ROUSE_DT_INT64, 1, {4}, sizes, true};
        nt_build(c);
        ob_attr_string(c->node, "mode", "cubic");
        ob_attr_string(c->node, "coordinate_transformation_mode", "align_corners");
        ob_attr_float(c->node, "cubic_coeff_a", -0.5f);
        ob_attr_int(c->node, "exclude_outside", 1);
        break;
    case 1:
        c->op = "Resize";
        c->n_in = 4;
        c->in[1] = (nt_in){"roi", ROUSE_DT_FLOAT, 1, {8}, roi, true};
        c->in[2] = NT_NONE;
        c->in[3] = (nt_in){"sizes", ROUSE_DT_INT64, 1, {4}, sizes, true};
        nt_build(c);
        ob_attr_string(c->node, "coordinate_transformation_mode", "tf_crop_and_resize");
        ob_attr_string(c->node, "nearest_mode", "round_prefer_ceil");
        ob_attr_float(c->node, "extrapolation_value", -7);
        break;
    case 2:
        c->opset = 7;
        c->op = "Upsample";
        c->n_in = 1;
        nt_build(c);
        ob_attr_floats(c->node, "scales", 4, (const float[]){1, 1, 2, 1.5f});
        ob_attr_string(c->node, "mode", "linear");
        break;
    case 3:
        /* x [1, 2, 4, 6], W [2, 3, 2, 3]: group 2 makes 6 outputs */
        c->op = "ConvTranspose";
        c->n_in = 2;
        c->in[1] = (nt_in){"w", ROUSE_DT_FLOAT, 4, {2, 3, 2, 3}, w, true};
        nt_build(c);
        ob_attr_int(c->node, "group", 2);
        ob_attr_ints(c->node, "strides", 2, (int64_t[]){2, 3});
        ob_attr_ints(c->node, "dilations", 2, (int64_t[]){2, 1});
        ob_attr_ints(c->node, "output_shape", 2, (int64_t[]){9, 17});
        ob_attr_string(c->node, "auto_pad", "SAME_LOWER");
        break;
    case 4:
        c->op = "ConvTranspose";
        c->n_in = 3;
        c->in[0] = (nt_in){"x", ROUSE_DT_FLOAT, 4, {1, 2, 4, 6}, plan_x, false};
        c->in[1] = (nt_in){"w", ROUSE_DT_FLOAT, 4, {2, 3, 2, 3}, w, true};
        c->in[2] = (nt_in){"b", ROUSE_DT_FLOAT, 1, {3}, b, true};
        nt_build(c);
        ob_attr_ints(c->node, "strides", 2, (int64_t[]){2, 2});
        ob_attr_ints(c->node, "pads", 4, (int64_t[]){1, 0, 0, 2});
        ob_attr_ints(c->node, "output_padding", 2, (int64_t[]){1, 1});
        break;
    case 5:
        c->opset = 11;
        c->op = "LpPool";
        c->n_in = 1;
        nt_build(c);
        ob_attr_ints(c->node, "kernel_shape", 2, (int64_t[]){3, 2});
        ob_attr_ints(c->node, "strides", 2, (int64_t[]){1, 2});
        ob_attr_ints(c->node, "pads", 4, (int64_t[]){1, 0, 1, 1});
        ob_attr_int(c->node, "p", 3);
        break;
    case 6:
        c->op = "GlobalLpPool";
        c->n_in = 1;
        nt_build(c);
        ob_attr_int(c->node, "p", 1);
        break;
    default:
        c->op = "GlobalMaxPool";
        c->n_in = 1;
        nt_build(c);
        break;
    }
}

static void records_through_plans(void **state)
{
    (void)state;
    for (int which = 0; which < 8; which++)
        nt_plan_same(make_plan_case, &which);
}

/* A record as a compiled plan could hold it: the op's check hook (the plan
 * reader's) refuses out-of-range values naming the attribute. */
static void expect_record_refused(eng_op op, const eng_attrs *a, const char *fragment)
{
    eng_node n;
    memset(&n, 0, sizeof(n));
    n.name = "n";
    n.op = op;
    n.opset = 13;
    n.attrs = *a;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    const eng_op_desc *d = eng_op_desc_get(op);
    assert_non_null(d);
    assert_non_null(d->check);
    int rc = d->check(&n, &eb);
    if (rc != ROUSE_EFORMAT) fail_msg("expected ROUSE_EFORMAT, got %d", rc);
    if (!strstr(eb.msg, fragment)) fail_msg("message '%s' lacks '%s'", eb.msg, fragment);
}

static void stored_records_checked(void **state)
{
    (void)state;
    eng_attrs good, a;
    memset(&good, 0, sizeof(good));
    good.spatial.resize.n_scales = -1;
    good.spatial.resize.cubic_a = -0.75f;
    a = good;
    a.spatial.resize.mode = 7;
    expect_record_refused(ENG_OP_RESIZE, &a, "attribute 'mode'");
    a = good;
    a.spatial.resize.coord = -1;
    expect_record_refused(ENG_OP_RESIZE, &a, "coordinate_transformation_mode");
    a = good;
    a.spatial.resize.n_scales = 1;
    a.spatial.resize.scales[0] = -2;
    expect_record_refused(ENG_OP_UPSAMPLE, &a, "attribute 'scales'");

    memset(&good, 0, sizeof(good));
    eng_convtr_attrs *t = &good.spatial.convtr;
    t->w.group = 1;
    for (int i = 0; i < 3; i++)
        t->w.stride[i] = t->w.dilation[i] = 1;
    a = good;
    a.spatial.convtr.w.stride[1] = 0;
    expect_record_refused(ENG_OP_CONV_TRANSPOSE, &a, "attribute 'strides'");
    a = good;
    a.spatial.convtr.output_padding[0] = -1;
    expect_record_refused(ENG_OP_CONV_TRANSPOSE, &a, "attribute 'output_padding'");
    a = good;
    a.spatial.convtr.w.group = 0;
    expect_record_refused(ENG_OP_CONV_TRANSPOSE, &a, "attribute 'group'");

    memset(&a, 0, sizeof(a));
    a.spatial.lppool.w.group = 1;
    a.spatial.lppool.w.n_spatial = 1;
    for (int i = 0; i < 3; i++)
        a.spatial.lppool.w.stride[i] = a.spatial.lppool.w.dilation[i] = 1;
    a.spatial.lppool.p = 2;
    expect_record_refused(ENG_OP_LPPOOL, &a, "attribute 'kernel_shape'"); /* kernel 0 */
    a.spatial.lppool.w.kernel[0] = 2;
    a.spatial.lppool.p = 0;
    expect_record_refused(ENG_OP_LPPOOL, &a, "attribute 'p'");

    memset(&a, 0, sizeof(a));
    a.quant.conv.group = 1;
    for (int i = 0; i < 3; i++)
        a.quant.conv.stride[i] = a.quant.conv.dilation[i] = 1;
    a.quant.conv.pad_end[2] = -3;
    expect_record_refused(ENG_OP_QLINEAR_CONV, &a, "attribute 'pads'");
    memset(&a, 0, sizeof(a));
    a.quant.q.axis = 100;
    expect_record_refused(ENG_OP_QUANTIZE_LINEAR, &a, "attribute 'axis'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resize_linear_half_pixel),
        cmocka_unit_test(resize_nearest_modes),
        cmocka_unit_test(resize_cubic_align_corners),
        cmocka_unit_test(resize_tf_crop_and_resize),
        cmocka_unit_test(resize_opset10_and_upsample),
        cmocka_unit_test(resize_element_path),
        cmocka_unit_test(resize_float16),
        cmocka_unit_test(resize_errors),
        cmocka_unit_test(convtr_hand),
        cmocka_unit_test(convtr_groups),
        cmocka_unit_test(convtr_errors),
        cmocka_unit_test(pools_hand),
        cmocka_unit_test(resize_dnnl_random),
        cmocka_unit_test(convtr_dnnl_random),
        cmocka_unit_test(records_through_plans),
        cmocka_unit_test(stored_records_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
