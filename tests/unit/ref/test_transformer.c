/*
 * The reference kernels a transformer encoder needs beyond convolutions:
 * Cast (every numeric type and bool, saturation and wraparound), Gather
 * (axes, negative indices, bounds), Where (three-way broadcasting, the
 * attention-mask pattern), Pow (float and integer exponents), ReduceMean
 * (axes, keepdims) and the Erf / Sqrt activations, all on known answers.
 */
#include "ref_test.h"

#include <float.h>

static void cast_float_to_ints_saturates(void **state)
{
    (void)state;
    const float x[] = {1.9f, -1.9f, 300.0f, -300.0f, NAN, 1e20f};
    const int64_t s[] = {6};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 1, s, x);
    int8_t i8[6];
    eng_tensor t8 = rt_tensor(ENG_DT_INT8, 1, s, i8);
    assert_int_equal(ref_cast(ENG_DT_INT8, &tx, &t8), 0);
    const int8_t want8[] = {1, -1, 127, -128, 0, 127};
    assert_memory_equal(i8, want8, sizeof(want8));

    uint8_t u8[6];
    eng_tensor tu = rt_tensor(ENG_DT_UINT8, 1, s, u8);
    assert_int_equal(ref_cast(ENG_DT_UINT8, &tx, &tu), 0);
    const uint8_t wantu[] = {1, 0, 255, 0, 0, 255};
    assert_memory_equal(u8, wantu, sizeof(wantu));

    int64_t i64[6];
    eng_tensor t64 = rt_tensor(ENG_DT_INT64, 1, s, i64);
    assert_int_equal(ref_cast(ENG_DT_INT64, &tx, &t64), 0);
    assert_int_equal(i64[0], 1);
    assert_int_equal(i64[1], -1);
    assert_int_equal(i64[4], 0);
    assert_int_equal(i64[5], INT64_MAX);
}

static void cast_ints_wrap_and_bool(void **state)
{
    (void)state;
    const int64_t x[] = {0, 1, -1, 256 + 7, INT64_MIN, 2};
    const int64_t s[] = {2, 3};
    eng_tensor tx = rt_tensor(ENG_DT_INT64, 2, s, x);
    uint8_t u8[6];
    eng_tensor tu = rt_tensor(ENG_DT_UINT8, 2, s, u8);
    assert_int_equal(ref_cast(ENG_DT_UINT8, &tx, &tu), 0);
    const uint8_t wantu[] = {0, 1, 255, 7, 0, 2};
    assert_memory_equal(u8, wantu, sizeof(wantu));

    uint8_t b[6];
    eng_tensor tb = rt_tensor(ENG_DT_BOOL, 2, s, b);
    assert_int_equal(ref_cast(ENG_DT_BOOL, &tx, &tb), 0);
    const uint8_t wantb[] = {0, 1, 1, 1, 1, 1};
    assert_memory_equal(b, wantb, sizeof(wantb));

    /* bool -> float is 0/1; float -> bool is "not zero" (NaN is true). */
    float f[6];
    eng_tensor tf = rt_tensor(ENG_DT_FLOAT, 2, s, f);
    assert_int_equal(ref_cast(ENG_DT_FLOAT, &tb, &tf), 0);
    const float wantf[] = {0, 1, 1, 1, 1, 1};
    assert_memory_equal(f, wantf, sizeof(wantf));
    const float g[] = {0.0f, -0.0f, 0.5f, NAN, -3, INFINITY};
    eng_tensor tg = rt_tensor(ENG_DT_FLOAT, 2, s, g);
    assert_int_equal(ref_cast(ENG_DT_BOOL, &tg, &tb), 0);
    const uint8_t wantg[] = {0, 0, 1, 1, 1, 1};
    assert_memory_equal(b, wantg, sizeof(wantg));

    /* int64 -> double is exact for 2^53; uint32 from a negative wraps. */
    double d[6];
    eng_tensor td = rt_tensor(ENG_DT_DOUBLE, 2, s, d);
    assert_int_equal(ref_cast(ENG_DT_DOUBLE, &tx, &td), 0);
    assert_true(d[4] == -9223372036854775808.0);
    uint32_t u32[6];
    eng_tensor t32 = rt_tensor(ENG_DT_UINT32, 2, s, u32);
    assert_int_equal(ref_cast(ENG_DT_UINT32, &tx, &t32), 0);
    assert_int_equal(u32[2], UINT32_MAX);

    /* float16 rounds to nearest even (bfloat16: below). */
    const float hf[] = {1.0f, -2.5f, 65520.0f, 0x1p-24f, 1.0f + 0x1p-11f, NAN};
    eng_tensor thf = rt_tensor(ENG_DT_FLOAT, 2, s, hf);
    uint16_t h[6];
    eng_tensor th = rt_tensor(ENG_DT_FLOAT16, 2, s, h);
    assert_int_equal(ref_cast(ENG_DT_FLOAT16, &thf, &th), 0);
    const uint16_t wanth[] = {0x3c00, 0xc100, 0x7c00, 0x0001, 0x3c00};
    assert_memory_equal(h, wanth, sizeof(wanth));
    assert_true((h[5] & 0x7c00) == 0x7c00 && (h[5] & 0x3ff));
    assert_int_equal(ref_cast(ENG_DT_FLOAT, &th, &tf), 0);
    assert_true(f[1] == -2.5f && isinf(f[2]) && f[3] == 0x1p-24f && isnan(f[5]));
    eng_tensor tbf = rt_tensor(ENG_DT_BFLOAT16, 2, s, h);
    assert_int_equal(ref_cast(ENG_DT_BFLOAT16, &thf, &tbf), 0);
    assert_int_equal(h[0], 0x3f80);
    assert_int_equal(h[1], 0xc020);
    /* bfloat16 keeps the float's top half: 1 + 2^-8 + 2^-9 is not rounded up. */
    const float bf[] = {1.0f + 0x1p-8f + 0x1p-9f, -(1.0f + 0x1p-7f + 0x1p-8f)};
    const int64_t s2[] = {2};
    eng_tensor tbf_in = rt_tensor(ENG_DT_FLOAT, 1, s2, bf),
               tbf2 = rt_tensor(ENG_DT_BFLOAT16, 1, s2, h);
    assert_int_equal(ref_cast(ENG_DT_BFLOAT16, &tbf_in, &tbf2), 0);
    assert_int_equal(h[0], 0x3f80);
    assert_int_equal(h[1], 0xbf81);

    /* Shape mismatches. */
    const int64_t s5[] = {5};
    eng_tensor tbad = rt_tensor(ENG_DT_FLOAT, 1, s5, f);
    assert_int_equal(ref_cast(ENG_DT_FLOAT, &tx, &tbad), ROUSE_EMISMATCH);
}

/* Embedding lookup: data [4, 2], int64 ids [2, 3] -> [2, 3, 2]. */
static void gather_axis0_embedding(void **state)
{
    (void)state;
    const float w[] = {0, 1, 10, 11, 20, 21, 30, 31};
    const int64_t ids[] = {3, 0, -1, 1, 1, -4};
    float y[12];
    const int64_t ws[] = {4, 2}, is[] = {2, 3}, ys[] = {2, 3, 2};
    eng_tensor tw = rt_tensor(ENG_DT_FLOAT, 2, ws, w), ti = rt_tensor(ENG_DT_INT64, 2, is, ids);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 3, ys, y);
    assert_int_equal(ref_gather(0, &tw, &ti, &ty, NULL), 0);
    const float want[] = {30, 31, 0, 1, 30, 31, 10, 11, 10, 11, 0, 1};
    assert_memory_equal(y, want, sizeof(want));
}

/* axis 1 with a scalar int32 index drops the axis: [2, 3, 2] -> [2, 2]
 * (the pooler's x[:, 0]). */
static void gather_axis1_scalar_index(void **state)
{
    (void)state;
    float x[12];
    for (int i = 0; i < 12; i++)
        x[i] = (float)i;
    const int32_t idx = -2;
    float y[4];
    const int64_t xs[] = {2, 3, 2}, ys[] = {2, 2};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 3, xs, x), ti = rt_tensor(ENG_DT_INT32, 0, NULL, &idx);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 2, ys, y);
    assert_int_equal(ref_gather(1, &tx, &ti, &ty, NULL), 0);
    const float want[] = {2, 3, 8, 9};
    assert_memory_equal(y, want, sizeof(want));
}

static void gather_out_of_range(void **state)
{
    (void)state;
    const float w[] = {1, 2, 3, 4};
    const int64_t ids[] = {1, 2};
    float y[4] = {-7, -7, -7, -7};
    const int64_t ws[] = {2, 2}, is[] = {2}, ys[] = {2, 2};
    eng_tensor tw = rt_tensor(ENG_DT_FLOAT, 2, ws, w), ti = rt_tensor(ENG_DT_INT64, 1, is, ids);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 2, ys, y);
    int64_t bad = 0;
    assert_int_equal(ref_gather(0, &tw, &ti, &ty, &bad), ROUSE_ERANGE);
    assert_int_equal(bad, 2);
    assert_true(y[0] == -7.0f); /* nothing written */
    const int64_t neg[] = {-3};
    const int64_t s1[] = {1}, y1s[] = {1, 2};
    eng_tensor tn = rt_tensor(ENG_DT_INT64, 1, s1, neg), ty1 = rt_tensor(ENG_DT_FLOAT, 2, y1s, y);
    assert_int_equal(ref_gather(0, &tw, &tn, &ty1, &bad), ROUSE_ERANGE);
    assert_int_equal(bad, -3);
    const float f = 0;
    eng_tensor tf = rt_tensor(ENG_DT_FLOAT, 1, s1, &f);
    assert_int_equal(ref_gather(0, &tw, &tf, &ty1, NULL), ROUSE_EUNSUPPORTED);
}

/* The HF attention mask: cond [1,1,1,4] picks a huge negative or the
 * scores' addend 0 from scalars. */
static void where_broadcasts_three_ways(void **state)
{
    (void)state;
    const uint8_t c[] = {0, 1, 1, 0};
    const float lo = -FLT_MAX;
    const float x[] = {5, 6, 7}; /* a float operand for the type checks below */
    const int64_t cs[] = {1, 1, 1, 4}, ys[] = {1, 1, 1, 4};
    float y[4];
    const float zero = 0;
    eng_tensor tc = rt_tensor(ENG_DT_BOOL, 4, cs, c), tl = rt_tensor(ENG_DT_FLOAT, 0, NULL, &lo);
    eng_tensor tz = rt_tensor(ENG_DT_FLOAT, 0, NULL, &zero), ty = rt_tensor(ENG_DT_FLOAT, 4, ys, y);
    assert_int_equal(ref_where(&tc, &tl, &tz, &ty), 0);
    const float want[] = {0, -FLT_MAX, -FLT_MAX, 0};
    assert_memory_equal(y, want, sizeof(want));

    /* cond [2, 1], x [3], y [2, 3] (int64) -> [2, 3]. */
    const uint8_t c2[] = {1, 0};
    const int64_t xi[] = {1, 2, 3}, yi[] = {10, 20, 30, 40, 50, 60};
    int64_t out[6];
    const int64_t c2s[] = {2, 1}, xs[] = {3}, yis[] = {2, 3};
    eng_tensor tc2 = rt_tensor(ENG_DT_BOOL, 2, c2s, c2), txi = rt_tensor(ENG_DT_INT64, 1, xs, xi);
    eng_tensor tyi = rt_tensor(ENG_DT_INT64, 2, yis, yi), to = rt_tensor(ENG_DT_INT64, 2, yis, out);
    assert_int_equal(ref_where(&tc2, &txi, &tyi, &to), 0);
    const int64_t want2[] = {1, 2, 3, 40, 50, 60};
    assert_memory_equal(out, want2, sizeof(want2));
    (void)x;

    /* Types must agree; cond must be bool. */
    eng_tensor tbad = rt_tensor(ENG_DT_FLOAT, 1, xs, x);
    assert_int_equal(ref_where(&tc2, &tbad, &tyi, &to), ROUSE_EUNSUPPORTED);
    assert_int_equal(ref_where(&tbad, &txi, &tyi, &to), ROUSE_EUNSUPPORTED);
    const int64_t bads[] = {3, 3};
    eng_tensor tob = rt_tensor(ENG_DT_INT64, 2, bads, out);
    assert_int_equal(ref_where(&tc2, &txi, &tyi, &tob), ROUSE_EMISMATCH);
}

static void pow_float_and_int_exponents(void **state)
{
    (void)state;
    const float x[] = {-3, 0.5f, 2, 10};
    const float two = 2.0f;
    const int64_t three = 3;
    const float e[] = {0.5f, -1, 3, 0};
    float y[4];
    const int64_t s[] = {4};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 1, s, x), ty = rt_tensor(ENG_DT_FLOAT, 1, s, y);
    eng_tensor t2 = rt_tensor(ENG_DT_FLOAT, 0, NULL, &two);
    assert_int_equal(ref_pow(&tx, &t2, &ty), 0);
    const float sq[] = {9, 0.25f, 4, 100};
    assert_memory_equal(y, sq, sizeof(sq));
    eng_tensor t3 = rt_tensor(ENG_DT_INT64, 0, NULL, &three);
    assert_int_equal(ref_pow(&tx, &t3, &ty), 0);
    const float cube[] = {-27, 0.125f, 8, 1000};
    assert_memory_equal(y, cube, sizeof(cube));
    eng_tensor te = rt_tensor(ENG_DT_FLOAT, 1, s, e);
    assert_int_equal(ref_pow(&tx, &te, &ty), 0);
    assert_true(isnan(y[0])); /* negative base, fractional exponent */
    assert_float_equal(y[1], 2.0f, 0);
    assert_float_equal(y[2], 8.0f, 0);
    assert_float_equal(y[3], 1.0f, 0);

    /* int32 base: [2,3] ** [[2],[3]] broadcast to [2,2]. */
    const int32_t b[] = {2, 3}, p[] = {2, 3};
    int32_t yi[4];
    const int64_t bs[] = {2}, ps[] = {2, 1}, ys[] = {2, 2};
    eng_tensor tb = rt_tensor(ENG_DT_INT32, 1, bs, b), tp = rt_tensor(ENG_DT_INT32, 2, ps, p);
    eng_tensor tyi = rt_tensor(ENG_DT_INT32, 2, ys, yi);
    assert_int_equal(ref_pow(&tb, &tp, &tyi), 0);
    const int32_t want[] = {4, 9, 8, 27};
    assert_memory_equal(yi, want, sizeof(want));
}

static void reduce_mean_axes_keepdims(void **state)
{
    (void)state;
    float x[24];
    for (int i = 0; i < 24; i++)
        x[i] = (float)i;
    const int64_t xs[] = {2, 3, 4};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 3, xs, x);

    /* Last axis, keepdims: [2, 3, 1], each row's mean. */
    float y[24];
    const int64_t last[] = {2}, ys1[] = {2, 3, 1};
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 3, ys1, y);
    assert_int_equal(ref_reduce_mean(1, last, true, &tx, &ty), 0);
    for (int i = 0; i < 6; i++)
        assert_float_equal(y[i], 4.0f * (float)i + 1.5f, 0);

    /* Axes 0 and 2 without keepdims: [3]. */
    const int64_t ax02[] = {0, 2}, ys2[] = {3};
    ty = rt_tensor(ENG_DT_FLOAT, 1, ys2, y);
    assert_int_equal(ref_reduce_mean(2, ax02, false, &tx, &ty), 0);
    for (int j = 0; j < 3; j++)
        assert_float_equal(y[j], (float)(4 * j) + 1.5f + 6.0f, 1e-6);

    /* All axes: a scalar (rank 0) or [1, 1, 1]. */
    const int64_t all[] = {0, 1, 2}, ones[] = {1, 1, 1};
    ty = rt_tensor(ENG_DT_FLOAT, 0, NULL, y);
    assert_int_equal(ref_reduce_mean(3, all, false, &tx, &ty), 0);
    assert_float_equal(y[0], 11.5f, 0);
    ty = rt_tensor(ENG_DT_FLOAT, 3, ones, y);
    assert_int_equal(ref_reduce_mean(3, all, true, &tx, &ty), 0);
    assert_float_equal(y[0], 11.5f, 0);

    /* No axes: a copy. Wrong shapes, duplicate or unnormalized axes fail. */
    ty = rt_tensor(ENG_DT_FLOAT, 3, xs, y);
    assert_int_equal(ref_reduce_mean(0, NULL, true, &tx, &ty), 0);
    assert_memory_equal(x, y, sizeof(x));
    assert_int_equal(ref_reduce_mean(1, last, false, &tx, &ty), ROUSE_EMISMATCH);
    const int64_t dup[] = {1, 1}, neg[] = {-1};
    assert_int_equal(ref_reduce_mean(2, dup, true, &tx, &ty), ROUSE_EINVAL);
    assert_int_equal(ref_reduce_mean(1, neg, true, &tx, &ty), ROUSE_EINVAL);
}

static void erf_and_sqrt(void **state)
{
    (void)state;
    const float x[] = {0, 0.5f, -1, 4, 1e-3f};
    float y[5];
    const int64_t s[] = {5};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 1, s, x), ty = rt_tensor(ENG_DT_FLOAT, 1, s, y);
    assert_int_equal(ref_unary(ENG_OP_ERF, NULL, &tx, &ty), 0);
    const float erfs[] = {0.0f, 0.5204998778f, -0.8427007929f, 0.9999999846f, 0.0011283788f};
    RT_CLOSE(y, erfs, 5);
    assert_int_equal(ref_unary(ENG_OP_SQRT, NULL, &tx, &ty), 0);
    assert_float_equal(y[3], 2.0f, 0);
    assert_true(isnan(y[2]));
    const int32_t xi[] = {4};
    const int64_t s1[] = {1};
    eng_tensor ti = rt_tensor(ENG_DT_INT32, 1, s1, xi), tyi = rt_tensor(ENG_DT_INT32, 1, s1, y);
    assert_int_equal(ref_unary(ENG_OP_SQRT, NULL, &ti, &tyi), ROUSE_EUNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cast_float_to_ints_saturates),
        cmocka_unit_test(cast_ints_wrap_and_bool),
        cmocka_unit_test(gather_axis0_embedding),
        cmocka_unit_test(gather_axis1_scalar_index),
        cmocka_unit_test(gather_out_of_range),
        cmocka_unit_test(where_broadcasts_three_ways),
        cmocka_unit_test(pow_float_and_int_exponents),
        cmocka_unit_test(reduce_mean_axes_keepdims),
        cmocka_unit_test(erf_and_sqrt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
