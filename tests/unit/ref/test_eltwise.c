/*
 * ref_unary and ref_binary: broadcasting shapes (including scalars and
 * rank 0), every arithmetic op on floats, integer wraparound and truncating
 * division, Clip on integers with saturated bounds, and the activations.
 */
#include "ref_test.h"

#include <float.h>

/* a [2,3,4] + b [3,1]: y[i,j,k] = a[i,j,k] + b[j]. */
static void broadcast_3d_with_column(void **state)
{
    (void)state;
    float a[24], b[3], y[24];
    for (int i = 0; i < 24; i++)
        a[i] = (float)i;
    for (int i = 0; i < 3; i++)
        b[i] = (float)(100 * (i + 1));
    const int64_t as[] = {2, 3, 4}, bs[] = {3, 1};
    eng_tensor ta = rt_tensor(ENG_DT_FLOAT, 3, as, a), tb = rt_tensor(ENG_DT_FLOAT, 2, bs, b);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 3, as, y);
    assert_int_equal(ref_binary(ENG_OP_ADD, &ta, &tb, &ty), 0);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                assert_float_equal(y[(i * 3 + j) * 4 + k], a[(i * 3 + j) * 4 + k] + b[j], 0);
    /* Operand order matters for SUB: b - a. */
    assert_int_equal(ref_binary(ENG_OP_SUB, &tb, &ta, &ty), 0);
    for (int i = 0; i < 24; i++)
        assert_float_equal(y[i], b[(i / 4) % 3] - a[i], 0);
}

/* Both operands stretch: a [3,1] * b [1,4] -> [3,4]. */
static void broadcast_both_sides(void **state)
{
    (void)state;
    const float a[] = {1, 2, 3}, b[] = {10, 20, 30, 40};
    float y[12];
    const int64_t as[] = {3, 1}, bs[] = {1, 4}, ys[] = {3, 4};
    eng_tensor ta = rt_tensor(ENG_DT_FLOAT, 2, as, a), tb = rt_tensor(ENG_DT_FLOAT, 2, bs, b);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 2, ys, y);
    assert_int_equal(ref_binary(ENG_OP_MUL, &ta, &tb, &ty), 0);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            assert_float_equal(y[i * 4 + j], a[i] * b[j], 0);
}

/* Rank-0 scalars against tensors and against each other; a [1] tensor too. */
static void broadcast_scalars(void **state)
{
    (void)state;
    const float s = 2.0f, one[] = {4.0f}, m[] = {1, 2, 3, 4, 5, 6};
    float y[6];
    const int64_t ms[] = {2, 3}, s1[] = {1};
    eng_tensor ts = rt_tensor(ENG_DT_FLOAT, 0, NULL, &s), tm = rt_tensor(ENG_DT_FLOAT, 2, ms, m);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 2, ms, y);
    assert_int_equal(ref_binary(ENG_OP_DIV, &tm, &ts, &ty), 0);
    for (int i = 0; i < 6; i++)
        assert_float_equal(y[i], m[i] / 2.0f, 0);
    assert_int_equal(ref_binary(ENG_OP_DIV, &ts, &tm, &ty), 0);
    for (int i = 0; i < 6; i++)
        assert_float_equal(y[i], 2.0f / m[i], 0);

    eng_tensor t0 = rt_tensor(ENG_DT_FLOAT, 0, NULL, y);
    assert_int_equal(ref_binary(ENG_OP_SUB, &ts, &ts, &t0), 0);
    assert_float_equal(y[0], 0.0f, 0);

    eng_tensor t1 = rt_tensor(ENG_DT_FLOAT, 1, s1, one), ty1 = rt_tensor(ENG_DT_FLOAT, 1, s1, y);
    assert_int_equal(ref_binary(ENG_OP_MUL, &ts, &t1, &ty1), 0);
    assert_float_equal(y[0], 8.0f, 0);
    /* scalar op [1] is [1], not a scalar */
    assert_int_equal(ref_binary(ENG_OP_MUL, &ts, &t1, &t0), ROUSE_EMISMATCH);
}

static void broadcast_mismatch(void **state)
{
    (void)state;
    float buf[24] = {0};
    const int64_t as[] = {2, 3, 4}, bs[] = {2, 4}, ys[] = {2, 3, 4}, ys_bad[] = {2, 3, 5};
    eng_tensor ta = rt_tensor(ENG_DT_FLOAT, 3, as, buf), tb = rt_tensor(ENG_DT_FLOAT, 2, bs, buf);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 3, ys, buf);
    assert_int_equal(ref_binary(ENG_OP_ADD, &ta, &tb, &ty), ROUSE_EMISMATCH);
    eng_tensor tyb = rt_tensor(ENG_DT_FLOAT, 3, ys_bad, buf);
    assert_int_equal(ref_binary(ENG_OP_ADD, &ta, &ta, &tyb), ROUSE_EMISMATCH);
    eng_tensor ti = rt_tensor(ENG_DT_INT32, 3, as, buf);
    assert_int_equal(ref_binary(ENG_OP_ADD, &ta, &ti, &ty), ROUSE_EUNSUPPORTED);
    eng_tensor tbool = rt_tensor(ENG_DT_BOOL, 3, as, buf);
    assert_int_equal(ref_binary(ENG_OP_ADD, &tbool, &tbool, &tbool), ROUSE_EUNSUPPORTED);
    assert_int_equal(ref_binary(ENG_OP_RELU, &ta, &ta, &ty), ROUSE_EUNSUPPORTED);
}

static void float_ops_and_ieee_division(void **state)
{
    (void)state;
    const float a[] = {1.5f, -2.0f, 0.0f, 1.0f}, b[] = {0.5f, 4.0f, 0.0f, 0.0f};
    float y[4];
    const int64_t s[] = {4};
    eng_tensor ta = rt_tensor(ENG_DT_FLOAT, 1, s, a), tb = rt_tensor(ENG_DT_FLOAT, 1, s, b);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 1, s, y);
    assert_int_equal(ref_binary(ENG_OP_DIV, &ta, &tb, &ty), 0);
    assert_float_equal(y[0], 3.0f, 0);
    assert_float_equal(y[1], -0.5f, 0);
    assert_true(isnan(y[2]));
    assert_true(isinf(y[3]) && y[3] > 0);

    const double da[] = {1e300, 3.0}, db[] = {1e10, 0.25};
    double dy[2];
    const int64_t s2[] = {2};
    eng_tensor tda = rt_tensor(ENG_DT_DOUBLE, 1, s2, da), tdb = rt_tensor(ENG_DT_DOUBLE, 1, s2, db);
    eng_tensor tdy = rt_tensor(ENG_DT_DOUBLE, 1, s2, dy);
    assert_int_equal(ref_binary(ENG_OP_MUL, &tda, &tdb, &tdy), 0);
    assert_true(isinf(dy[0]) && dy[0] > 0); /* 1e300 * 1e10 overflows */
    assert_true(dy[1] == 0.75);
    assert_int_equal(ref_binary(ENG_OP_SUB, &tda, &tdb, &tdy), 0);
    assert_true(dy[1] == 2.75);
}

/* C-style truncation toward zero, x / 0 = 0, and the one overflowing
 * quotient INT_MIN / -1 wrapping to INT_MIN. */
static void integer_division(void **state)
{
    (void)state;
    const int32_t a[] = {-3, 3, -3, 3, -7, 7, 5, INT32_MIN, INT32_MIN},
                  b[] = {2, 2, -2, -2, 2, -2, 0, -1, 1};
    int32_t y[9];
    const int64_t s[] = {9};
    eng_tensor ta = rt_tensor(ENG_DT_INT32, 1, s, a), tb = rt_tensor(ENG_DT_INT32, 1, s, b);
    eng_tensor ty = rt_tensor(ENG_DT_INT32, 1, s, y);
    assert_int_equal(ref_binary(ENG_OP_DIV, &ta, &tb, &ty), 0);
    const int32_t want[] = {-1, 1, 1, -1, -3, -3, 0, INT32_MIN, INT32_MIN};
    for (int i = 0; i < 9; i++)
        assert_int_equal(y[i], want[i]);

    const int8_t a8[] = {INT8_MIN, -128, 100, 16}, b8[] = {-1, 3, 0, 5};
    int8_t y8[4];
    const int64_t s4[] = {4};
    ta = rt_tensor(ENG_DT_INT8, 1, s4, a8);
    tb = rt_tensor(ENG_DT_INT8, 1, s4, b8);
    ty = rt_tensor(ENG_DT_INT8, 1, s4, y8);
    assert_int_equal(ref_binary(ENG_OP_DIV, &ta, &tb, &ty), 0);
    assert_int_equal(y8[0], INT8_MIN);
    assert_int_equal(y8[1], -42);
    assert_int_equal(y8[2], 0);
    assert_int_equal(y8[3], 3);

    const int64_t a64[] = {INT64_MIN, -9000000000000000001LL}, b64[] = {-1, 1000};
    int64_t y64[2];
    const int64_t s2[] = {2};
    ta = rt_tensor(ENG_DT_INT64, 1, s2, a64);
    tb = rt_tensor(ENG_DT_INT64, 1, s2, b64);
    ty = rt_tensor(ENG_DT_INT64, 1, s2, y64);
    assert_int_equal(ref_binary(ENG_OP_DIV, &ta, &tb, &ty), 0);
    assert_true(y64[0] == INT64_MIN);
    assert_true(y64[1] == -9000000000000000LL);

    /* Unsigned: UINT64_MAX is a divisor like any other, not -1. */
    const uint64_t au[] = {UINT64_MAX, 10, 7}, bu[] = {UINT64_MAX, 3, 0};
    uint64_t yu[3];
    const int64_t s3[] = {3};
    ta = rt_tensor(ENG_DT_UINT64, 1, s3, au);
    tb = rt_tensor(ENG_DT_UINT64, 1, s3, bu);
    ty = rt_tensor(ENG_DT_UINT64, 1, s3, yu);
    assert_int_equal(ref_binary(ENG_OP_DIV, &ta, &tb, &ty), 0);
    assert_true(yu[0] == 1 && yu[1] == 3 && yu[2] == 0);

    const uint16_t a16[] = {65535, 9}, b16[] = {65535, 2};
    uint16_t y16[2];
    ta = rt_tensor(ENG_DT_UINT16, 1, s2, a16);
    tb = rt_tensor(ENG_DT_UINT16, 1, s2, b16);
    ty = rt_tensor(ENG_DT_UINT16, 1, s2, y16);
    assert_int_equal(ref_binary(ENG_OP_DIV, &ta, &tb, &ty), 0);
    assert_true(y16[0] == 1 && y16[1] == 4);
}

/* Sums, differences and products wrap like two's-complement hardware. */
static void integer_wraparound(void **state)
{
    (void)state;
    const int64_t s[] = {3};
    const uint8_t a8[] = {200, 3, 16}, b8[] = {100, 5, 16};
    uint8_t y8[3];
    eng_tensor ta = rt_tensor(ENG_DT_UINT8, 1, s, a8), tb = rt_tensor(ENG_DT_UINT8, 1, s, b8);
    eng_tensor ty = rt_tensor(ENG_DT_UINT8, 1, s, y8);
    assert_int_equal(ref_binary(ENG_OP_ADD, &ta, &tb, &ty), 0);
    assert_true(y8[0] == 44 && y8[1] == 8 && y8[2] == 32);
    assert_int_equal(ref_binary(ENG_OP_SUB, &tb, &ta, &ty), 0);
    assert_true(y8[0] == 156 && y8[1] == 2 && y8[2] == 0);
    assert_int_equal(ref_binary(ENG_OP_MUL, &ta, &tb, &ty), 0);
    assert_true(y8[0] == 32 /* 20000 mod 256 */ && y8[1] == 15 && y8[2] == 0);

    const int8_t ai[] = {127, -128, -7}, bi[] = {1, -1, 3};
    int8_t yi[3];
    ta = rt_tensor(ENG_DT_INT8, 1, s, ai);
    tb = rt_tensor(ENG_DT_INT8, 1, s, bi);
    ty = rt_tensor(ENG_DT_INT8, 1, s, yi);
    assert_int_equal(ref_binary(ENG_OP_ADD, &ta, &tb, &ty), 0);
    assert_true(yi[0] == -128 && yi[1] == 127 && yi[2] == -4);
    assert_int_equal(ref_binary(ENG_OP_MUL, &ta, &tb, &ty), 0);
    assert_true(yi[0] == 127 && yi[1] == -128 && yi[2] == -21);

    const uint16_t au[] = {65535, 300, 1}, bu[] = {65535, 300, 2};
    uint16_t yu[3];
    ta = rt_tensor(ENG_DT_UINT16, 1, s, au);
    tb = rt_tensor(ENG_DT_UINT16, 1, s, bu);
    ty = rt_tensor(ENG_DT_UINT16, 1, s, yu);
    assert_int_equal(ref_binary(ENG_OP_MUL, &ta, &tb, &ty), 0);
    assert_true(yu[0] == 1 && yu[1] == 24464 /* 90000 mod 65536 */ && yu[2] == 2);

    const int32_t a32[] = {INT32_MAX, INT32_MIN, 46341}, b32[] = {1, 1, 46341};
    int32_t y32[3];
    ta = rt_tensor(ENG_DT_INT32, 1, s, a32);
    tb = rt_tensor(ENG_DT_INT32, 1, s, b32);
    ty = rt_tensor(ENG_DT_INT32, 1, s, y32);
    assert_int_equal(ref_binary(ENG_OP_ADD, &ta, &tb, &ty), 0);
    assert_true(y32[0] == INT32_MIN);
    assert_int_equal(ref_binary(ENG_OP_SUB, &ta, &tb, &ty), 0);
    assert_true(y32[1] == INT32_MAX);
    assert_int_equal(ref_binary(ENG_OP_MUL, &ta, &tb, &ty), 0);
    assert_true(y32[2] == -2147479015 /* 46341^2 - 2^32 */);

    const int64_t a64[] = {INT64_MAX, INT64_MIN, 3}, b64[] = {1, -1, -4};
    int64_t y64[3];
    ta = rt_tensor(ENG_DT_INT64, 1, s, a64);
    tb = rt_tensor(ENG_DT_INT64, 1, s, b64);
    ty = rt_tensor(ENG_DT_INT64, 1, s, y64);
    assert_int_equal(ref_binary(ENG_OP_ADD, &ta, &tb, &ty), 0);
    assert_true(y64[0] == INT64_MIN && y64[1] == INT64_MAX && y64[2] == -1);
    assert_int_equal(ref_binary(ENG_OP_MUL, &ta, &tb, &ty), 0);
    assert_true(y64[0] == INT64_MAX && y64[1] == INT64_MIN && y64[2] == -12);

    const int16_t a16[] = {-300, 32767, 2}, b16[] = {200, 2, -3};
    int16_t y16[3];
    ta = rt_tensor(ENG_DT_INT16, 1, s, a16);
    tb = rt_tensor(ENG_DT_INT16, 1, s, b16);
    ty = rt_tensor(ENG_DT_INT16, 1, s, y16);
    assert_int_equal(ref_binary(ENG_OP_MUL, &ta, &tb, &ty), 0);
    assert_true(y16[0] == 5536 /* -60000 + 65536 */ && y16[1] == -2 && y16[2] == -6);

    const uint32_t a_u32[] = {0, 5, 4000000000u}, b_u32[] = {1, 2, 1000000000u};
    uint32_t y_u32[3];
    ta = rt_tensor(ENG_DT_UINT32, 1, s, a_u32);
    tb = rt_tensor(ENG_DT_UINT32, 1, s, b_u32);
    ty = rt_tensor(ENG_DT_UINT32, 1, s, y_u32);
    assert_int_equal(ref_binary(ENG_OP_SUB, &ta, &tb, &ty), 0);
    assert_true(y_u32[0] == UINT32_MAX && y_u32[1] == 3 && y_u32[2] == 3000000000u);
}

/* ---- unary ------------------------------------------------------------- */

static void activations_float(void **state)
{
    (void)state;
    const float x[] = {-100.0f, -2.0f, -0.5f, 0.0f, 0.5f, 2.0f, 100.0f};
    float y[7];
    const int64_t s[] = {7};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 1, s, x), ty = rt_tensor(ENG_DT_FLOAT, 1, s, y);

    assert_int_equal(ref_unary(ENG_OP_RELU, NULL, &tx, &ty), 0);
    for (int i = 0; i < 7; i++)
        assert_float_equal(y[i], x[i] > 0 ? x[i] : 0, 0);

    eng_attrs at = {.alpha = {.alpha = 0.1f}};
    assert_int_equal(ref_unary(ENG_OP_LEAKY_RELU, &at, &tx, &ty), 0);
    for (int i = 0; i < 7; i++)
        assert_float_equal(y[i], x[i] > 0 ? x[i] : 0.1f * x[i], 1e-6);

    assert_int_equal(ref_unary(ENG_OP_SIGMOID, NULL, &tx, &ty), 0);
    for (int i = 0; i < 7; i++) {
        float want = (float)(1.0 / (1.0 + exp(-(double)x[i])));
        RT_CLOSE(&y[i], &want, 1);
        assert_false(isnan(y[i]));
    }
    assert_true(y[0] >= 0.0f && y[6] <= 1.0f);

    assert_int_equal(ref_unary(ENG_OP_TANH, NULL, &tx, &ty), 0);
    for (int i = 0; i < 7; i++) {
        float want = (float)tanh((double)x[i]);
        RT_CLOSE(&y[i], &want, 1);
    }

    /* In place. */
    float z[] = {-1.0f, 3.0f};
    const int64_t s2[] = {2};
    eng_tensor tz = rt_tensor(ENG_DT_FLOAT, 1, s2, z);
    assert_int_equal(ref_unary(ENG_OP_RELU, NULL, &tz, &tz), 0);
    assert_true(z[0] == 0.0f && z[1] == 3.0f);

    /* Double. */
    const double dx[] = {-1.0, 0.25};
    double dy[2];
    eng_tensor tdx = rt_tensor(ENG_DT_DOUBLE, 1, s2, dx), tdy = rt_tensor(ENG_DT_DOUBLE, 1, s2, dy);
    assert_int_equal(ref_unary(ENG_OP_SIGMOID, NULL, &tdx, &tdy), 0);
    assert_true(fabs(dy[0] - 1.0 / (1.0 + exp(1.0))) < 1e-15);
    assert_int_equal(ref_unary(ENG_OP_LEAKY_RELU, &at, &tdx, &tdy), 0);
    assert_true(fabs(dy[0] + 0.1) < 1e-7 && dy[1] == 0.25);
}

static void clip_float(void **state)
{
    (void)state;
    const float x[] = {-3.0f, -1.0f, 0.0f, 1.0f, 3.0f, NAN};
    float y[6];
    const int64_t s[] = {6};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 1, s, x), ty = rt_tensor(ENG_DT_FLOAT, 1, s, y);
    eng_attrs at = {.clip = {.min = -1.5, .max = 2.0, .has_min = true, .has_max = true}};
    assert_int_equal(ref_unary(ENG_OP_CLIP, &at, &tx, &ty), 0);
    const float want[] = {-1.5f, -1.0f, 0.0f, 1.0f, 2.0f, NAN};
    RT_CLOSE(y, want, 6);

    /* Only a lower bound. */
    at.clip.has_max = false;
    assert_int_equal(ref_unary(ENG_OP_CLIP, &at, &tx, &ty), 0);
    assert_float_equal(y[4], 3.0f, 0);
    assert_float_equal(y[0], -1.5f, 0);

    /* No bounds: identity. */
    at.clip.has_min = false;
    assert_int_equal(ref_unary(ENG_OP_CLIP, &at, &tx, &ty), 0);
    RT_CLOSE(y, x, 6);

    /* min > max: every result is max (ONNX: min(max(x, lo), hi)). */
    eng_attrs inv = {.clip = {.min = 2.0, .max = 1.0, .has_min = true, .has_max = true}};
    assert_int_equal(ref_unary(ENG_OP_CLIP, &inv, &tx, &ty), 0);
    for (int i = 0; i < 5; i++)
        assert_float_equal(y[i], 1.0f, 0);
}

static void clip_and_relu_integers(void **state)
{
    (void)state;
    const int8_t x[] = {-128, -6, -5, 0, 5, 6, 127};
    int8_t y[7];
    const int64_t s[] = {7};
    eng_tensor tx = rt_tensor(ENG_DT_INT8, 1, s, x), ty = rt_tensor(ENG_DT_INT8, 1, s, y);
    eng_attrs at = {.clip = {.min = -5, .max = 5, .has_min = true, .has_max = true}};
    assert_int_equal(ref_unary(ENG_OP_CLIP, &at, &tx, &ty), 0);
    const int8_t want[] = {-5, -5, -5, 0, 5, 5, 5};
    assert_memory_equal(y, want, sizeof(want));

    /* Bounds beyond the type saturate; fractional bounds round inward. */
    eng_attrs wide = {.clip = {.min = -1000, .max = 2.5, .has_min = true, .has_max = true}};
    assert_int_equal(ref_unary(ENG_OP_CLIP, &wide, &tx, &ty), 0);
    const int8_t want_wide[] = {-128, -6, -5, 0, 2, 2, 2};
    assert_memory_equal(y, want_wide, sizeof(want_wide));

    /* Only max given: the default min is the type's lowest. */
    eng_attrs maxonly = {.clip = {.max = 0, .has_max = true}};
    assert_int_equal(ref_unary(ENG_OP_CLIP, &maxonly, &tx, &ty), 0);
    const int8_t want_max[] = {-128, -6, -5, 0, 0, 0, 0};
    assert_memory_equal(y, want_max, sizeof(want_max));

    assert_int_equal(ref_unary(ENG_OP_RELU, NULL, &tx, &ty), 0);
    const int8_t want_relu[] = {0, 0, 0, 0, 5, 6, 127};
    assert_memory_equal(y, want_relu, sizeof(want_relu));

    const uint64_t ux[] = {0, 10, UINT64_MAX};
    uint64_t uy[3];
    const int64_t s3[] = {3};
    eng_tensor tux = rt_tensor(ENG_DT_UINT64, 1, s3, ux), tuy = rt_tensor(ENG_DT_UINT64, 1, s3, uy);
    eng_attrs ub = {.clip = {.min = -5, .max = 1e30, .has_min = true, .has_max = true}};
    assert_int_equal(ref_unary(ENG_OP_CLIP, &ub, &tux, &tuy), 0);
    assert_true(uy[0] == 0 && uy[1] == 10 && uy[2] == UINT64_MAX);

    const int64_t ix[] = {INT64_MIN, 0, INT64_MAX};
    int64_t iy[3];
    eng_tensor tix = rt_tensor(ENG_DT_INT64, 1, s3, ix), tiy = rt_tensor(ENG_DT_INT64, 1, s3, iy);
    eng_attrs ib = {.clip = {.min = -1e300, .max = 7, .has_min = true, .has_max = true}};
    assert_int_equal(ref_unary(ENG_OP_CLIP, &ib, &tix, &tiy), 0);
    assert_true(iy[0] == INT64_MIN && iy[1] == 0 && iy[2] == 7);

    const uint8_t bx[] = {0, 100, 255};
    uint8_t by[3];
    eng_tensor tbx = rt_tensor(ENG_DT_UINT8, 1, s3, bx), tby = rt_tensor(ENG_DT_UINT8, 1, s3, by);
    eng_attrs bb = {.clip = {.min = 10, .max = 200, .has_min = true, .has_max = true}};
    assert_int_equal(ref_unary(ENG_OP_CLIP, &bb, &tbx, &tby), 0);
    assert_true(by[0] == 10 && by[1] == 100 && by[2] == 200);

    /* Smooth activations have no integer form. */
    assert_int_equal(ref_unary(ENG_OP_SIGMOID, NULL, &tx, &ty), ROUSE_EUNSUPPORTED);
    assert_int_equal(ref_unary(ENG_OP_ADD, NULL, &tx, &ty), ROUSE_EUNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(broadcast_3d_with_column),
        cmocka_unit_test(broadcast_both_sides),
        cmocka_unit_test(broadcast_scalars),
        cmocka_unit_test(broadcast_mismatch),
        cmocka_unit_test(float_ops_and_ieee_division),
        cmocka_unit_test(integer_division),
        cmocka_unit_test(integer_wraparound),
        cmocka_unit_test(activations_float),
        cmocka_unit_test(clip_float),
        cmocka_unit_test(clip_and_relu_integers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
