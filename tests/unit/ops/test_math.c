/*
 * The math family (src/engine/ops/math.c): unary float math (rounding half
 * to even, float16 through float), Sign on every kind of type, Mod with
 * both sign rules and division by zero, the variadic Min/Max/Mean/Sum with
 * broadcasting and NaN, CastLike, and the errors a user sees.
 */
#include "op_test.h"

static ot_out unary(const char *op, int opset, ot_in x)
{
    return ot_run_ok(ot_model(opset, op, 1, &x, x.dtype, NULL), 1, &x);
}

static void unary_float_math(void **state)
{
    (void)state;
    const float x[] = {0.0f, 1.0f, -2.0f, 0.5f};
    ot_in in = ot_t1(ROUSE_DT_FLOAT, 4, x);
    struct {
        const char *op;
        float want[4];
    } cases[] = {
        {"Exp", {1.0f, 2.7182817f, 0.13533528f, 1.6487213f}},
        {"Sin", {0.0f, 0.84147096f, -0.9092974f, 0.47942555f}},
        {"Cos", {1.0f, 0.5403023f, -0.41614684f, 0.87758255f}},
        {"Tan", {0.0f, 1.5574077f, 2.1850398f, 0.5463025f}},
        {"Atan", {0.0f, 0.7853982f, -1.1071488f, 0.4636476f}},
        {"Sinh", {0.0f, 1.1752012f, -3.6268604f, 0.5210953f}},
        {"Cosh", {1.0f, 1.5430806f, 3.7621956f, 1.127626f}},
        {"Asinh", {0.0f, 0.8813736f, -1.4436355f, 0.4812118f}},
        {"Floor", {0.0f, 1.0f, -2.0f, 0.0f}},
        {"Ceil", {0.0f, 1.0f, -2.0f, 1.0f}},
        {"Reciprocal", {INFINITY, 1.0f, -0.5f, 2.0f}},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        ot_out o = unary(cases[c].op, 13, in);
        const float *y = o.data;
        for (int i = 0; i < 4; i++)
            if (!(fabsf(y[i] - cases[c].want[i]) <= 1e-6f * fmaxf(1.0f, fabsf(cases[c].want[i])) ||
                  y[i] == cases[c].want[i]))
                fail_msg("%s(%g) = %g, want %g", cases[c].op, (double)x[i], (double)y[i],
                         (double)cases[c].want[i]);
        ot_out_fini(&o);
    }
    /* Log and the inverse functions outside their domains give NaN / -inf. */
    const float d[] = {0.0f, -1.0f, 1.0f, 2.0f};
    ot_out o = unary("Log", 13, ot_t1(ROUSE_DT_FLOAT, 4, d));
    const float *y = o.data;
    assert_true(y[0] == -INFINITY && isnan(y[1]) && y[2] == 0.0f);
    ot_out_fini(&o);
    o = unary("Acos", 7, ot_t1(ROUSE_DT_FLOAT, 4, d));
    y = o.data;
    assert_true(isnan(y[3]) && y[2] == 0.0f);
    ot_out_fini(&o);
    o = unary("Atanh", 9, ot_t1(ROUSE_DT_FLOAT, 4, d));
    y = o.data;
    assert_true(y[0] == 0.0f && y[2] == INFINITY && isnan(y[3]));
    ot_out_fini(&o);
}

static void round_half_to_even(void **state)
{
    (void)state;
    const double x[] = {0.5, 1.5, 2.5, -2.5, -0.5, 2.4999, -1.6};
    const double want[] = {0.0, 2.0, 2.0, -2.0, -0.0, 2.0, -2.0};
    ot_out o = unary("Round", 11, ot_t1(ROUSE_DT_DOUBLE, 7, x));
    assert_memory_equal(o.data, want, sizeof(want));
    ot_out_fini(&o);
}

/* float16 math rounds once: exp(1) = 2.71875 (0x4170) in half precision. */
static void half_types(void **state)
{
    (void)state;
    const uint16_t h[] = {0x3c00, 0xc000}; /* 1, -2 */
    ot_out o = unary("Exp", 13, ot_t1(ROUSE_DT_FLOAT16, 2, h));
    assert_int_equal(((uint16_t *)o.data)[0], 0x4170);
    ot_out_fini(&o);
    o = unary("Abs", 13, ot_t1(ROUSE_DT_FLOAT16, 2, h));
    assert_int_equal(((uint16_t *)o.data)[1], 0x4000);
    ot_out_fini(&o);
    const uint16_t b[] = {0x3f80, 0xc000}; /* bfloat16 1, -2 */
    o = unary("Neg", 13, ot_t1(ROUSE_DT_BFLOAT16, 2, b));
    assert_int_equal(((uint16_t *)o.data)[0], 0xbf80);
    assert_int_equal(((uint16_t *)o.data)[1], 0x4000);
    ot_out_fini(&o);
}

static void sign_every_kind(void **state)
{
    (void)state;
    const float f[] = {-3.0f, 0.0f, 2.0f, NAN};
    ot_out o = unary("Sign", 13, ot_t1(ROUSE_DT_FLOAT, 4, f));
    const float *y = o.data;
    assert_true(y[0] == -1.0f && y[1] == 0.0f && y[2] == 1.0f && isnan(y[3]));
    ot_out_fini(&o);
    const int8_t i8[] = {-128, 0, 127};
    o = unary("Sign", 13, ot_t1(ROUSE_DT_INT8, 3, i8));
    assert_memory_equal(o.data, ((const int8_t[]){-1, 0, 1}), 3);
    ot_out_fini(&o);
    const uint32_t u[] = {0, 7};
    o = unary("Sign", 13, ot_t1(ROUSE_DT_UINT32, 2, u));
    assert_memory_equal(o.data, ((const uint32_t[]){0, 1}), 8);
    ot_out_fini(&o);
}

static ot_out mod(int fmod_attr, ot_in a, ot_in b)
{
    const ot_in in[2] = {a, b};
    ob_node *n;
    ob_model *m = ot_model(13, "Mod", 2, in, a.dtype, &n);
    if (fmod_attr >= 0) ob_attr_int(n, "fmod", fmod_attr);
    return ot_run_ok(m, 2, in);
}

static void mod_sign_rules(void **state)
{
    (void)state;
    const int32_t a[] = {-7, 7, -7, 7, 5, INT32_MIN};
    const int32_t b[] = {3, -3, -3, 3, 0, -1};
    ot_in ta = ot_t1(ROUSE_DT_INT32, 6, a), tb = ot_t1(ROUSE_DT_INT32, 6, b);
    /* Python's rule (sign of the divisor); x % 0 and MIN % -1 give 0. */
    ot_out o = mod(-1, ta, tb);
    assert_memory_equal(o.data, ((const int32_t[]){2, -2, -1, 1, 0, 0}), 24);
    ot_out_fini(&o);
    /* C's rule (sign of the dividend). */
    o = mod(1, ta, tb);
    assert_memory_equal(o.data, ((const int32_t[]){-1, 1, -1, 1, 0, 0}), 24);
    ot_out_fini(&o);
    const float fa[] = {-7.5f, 7.5f}, fb[] = {2.0f};
    o = mod(1, ot_t1(ROUSE_DT_FLOAT, 2, fa), ot_t1(ROUSE_DT_FLOAT, 1, fb));
    assert_memory_equal(o.data, ((const float[]){-1.5f, 1.5f}), 8);
    ot_out_fini(&o);
    const uint8_t ua[] = {250, 9}, ub[] = {7, 0};
    o = mod(0, ot_t1(ROUSE_DT_UINT8, 2, ua), ot_t1(ROUSE_DT_UINT8, 2, ub));
    assert_memory_equal(o.data, ((const uint8_t[]){5, 0}), 2);
    ot_out_fini(&o);
}

static void variadic_broadcast(void **state)
{
    (void)state;
    /* a [2, 1], b [3], c scalar [1] -> [2, 3]. */
    const float a[] = {1, 10}, b[] = {0, 5, NAN}, c[] = {3};
    ot_in in[3] = {
        {ROUSE_DT_FLOAT, 2, {2, 1}, a}, ot_t1(ROUSE_DT_FLOAT, 3, b), ot_t1(ROUSE_DT_FLOAT, 1, c)};
    ot_out o = ot_run_ok(ot_model(13, "Max", 3, in, ROUSE_DT_FLOAT, NULL), 3, in);
    assert_int_equal(o.rank, 2);
    const float *y = o.data;
    assert_true(y[0] == 3 && y[1] == 5 && isnan(y[2]) && y[3] == 10 && y[4] == 10 && isnan(y[5]));
    ot_out_fini(&o);
    o = ot_run_ok(ot_model(13, "Min", 3, in, ROUSE_DT_FLOAT, NULL), 3, in);
    y = o.data;
    assert_true(y[0] == 0 && y[1] == 1 && isnan(y[2]) && y[3] == 0 && y[4] == 3);
    ot_out_fini(&o);
    o = ot_run_ok(ot_model(13, "Sum", 3, in, ROUSE_DT_FLOAT, NULL), 3, in);
    y = o.data;
    assert_true(y[0] == 4 && y[1] == 9 && y[3] == 13 && y[4] == 18);
    ot_out_fini(&o);
    o = ot_run_ok(ot_model(13, "Mean", 3, in, ROUSE_DT_FLOAT, NULL), 3, in);
    y = o.data;
    assert_true(fabsf(y[1] - 3.0f) < 1e-6f && fabsf(y[4] - 6.0f) < 1e-6f);
    ot_out_fini(&o);
    /* int16 and uint16 (which ONNX Runtime does not implement for Min/Max). */
    const int16_t s[] = {-300, 300}, t[] = {-400, 200};
    ot_in ins[2] = {ot_t1(ROUSE_DT_INT16, 2, s), ot_t1(ROUSE_DT_INT16, 2, t)};
    o = ot_run_ok(ot_model(13, "Min", 2, ins, ROUSE_DT_INT16, NULL), 2, ins);
    assert_memory_equal(o.data, ((const int16_t[]){-400, 200}), 4);
    ot_out_fini(&o);
    const uint16_t u[] = {65535, 1}, v[] = {2};
    ot_in inu[2] = {ot_t1(ROUSE_DT_UINT16, 2, u), ot_t1(ROUSE_DT_UINT16, 1, v)};
    o = ot_run_ok(ot_model(13, "Max", 2, inu, ROUSE_DT_UINT16, NULL), 2, inu);
    assert_memory_equal(o.data, ((const uint16_t[]){65535, 2}), 4);
    ot_out_fini(&o);
    /* Nine inputs: no bound on the count. */
    const float one[] = {1.0f}, two[] = {2.0f, -2.0f};
    ot_in nine[9];
    for (int k = 0; k < 9; k++)
        nine[k] = k == 4 ? ot_t1(ROUSE_DT_FLOAT, 2, two) : ot_t1(ROUSE_DT_FLOAT, 1, one);
    ob_model *m9 = ob_model_new(13);
    const char *names9[9] = {"i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7", "i8"};
    for (int k = 0; k < 9; k++)
        ob_input(m9, names9[k], ROUSE_DT_FLOAT, 1, nine[k].shape);
    const char *y9 = "y";
    ob_add_node(m9, "Sum", "sum9", 9, names9, 1, &y9);
    ob_output_any(m9, "y", ROUSE_DT_FLOAT);
    o = ot_run_named(m9, 9, names9, nine);
    assert_memory_equal(o.data, ((const float[]){10.0f, 6.0f}), 8);
    ot_out_fini(&o);
    /* One input is a copy. */
    o = ot_run_ok(ot_model(13, "Max", 1, inu, ROUSE_DT_UINT16, NULL), 1, inu);
    assert_memory_equal(o.data, u, 4);
    ot_out_fini(&o);
}

static void cast_like(void **state)
{
    (void)state;
    const float x[] = {1.9f, -1.9f, 1.0f + 0x1p-8f + 0x1p-9f};
    const int32_t like_i[] = {0};
    ot_in in[2] = {ot_t1(ROUSE_DT_FLOAT, 3, x), ot_t1(ROUSE_DT_INT32, 1, like_i)};
    ot_out o = ot_run_ok(ot_model(15, "CastLike", 2, in, ROUSE_DT_INT32, NULL), 2, in);
    assert_int_equal(o.dtype, ROUSE_DT_INT32);
    assert_memory_equal(o.data, ((const int32_t[]){1, -1, 1}), 12);
    ot_out_fini(&o);
    const uint16_t like_b[] = {0};
    in[1] = ot_t1(ROUSE_DT_BFLOAT16, 1, like_b);
    o = ot_run_ok(ot_model(15, "CastLike", 2, in, ROUSE_DT_BFLOAT16, NULL), 2, in);
    assert_int_equal(o.dtype, ROUSE_DT_BFLOAT16);
    assert_int_equal(((uint16_t *)o.data)[2], 0x3f80); /* truncated, as Cast */
    ot_out_fini(&o);
}

static void errors(void **state)
{
    (void)state;
    const float f[] = {1, 2};
    ot_in in[2] = {ot_t1(ROUSE_DT_FLOAT, 2, f), ot_t1(ROUSE_DT_FLOAT, 2, f)};
    ob_node *n;
    ob_model *m = ot_model(13, "Mod", 2, in, ROUSE_DT_FLOAT, &n);
    ot_expect_error(m, 2, in, ROUSE_EFORMAT, "attribute 'fmod' must be 1 for floating-point");
    m = ot_model(13, "Mod", 2, in, ROUSE_DT_FLOAT, &n);
    ob_attr_int(n, "fmod", 2);
    ot_expect_error(m, 2, in, ROUSE_EFORMAT, "node 'node0' (Mod): attribute 'fmod'");
    const int32_t i[] = {1, 2};
    ot_in ii = ot_t1(ROUSE_DT_INT32, 2, i);
    ot_expect_error(ot_model(13, "Exp", 1, &ii, ROUSE_DT_INT32, NULL), 1, &ii, ROUSE_EUNSUPPORTED,
                    "element type int32 of input 'X' is not supported");
    ot_in mixed[2] = {ot_t1(ROUSE_DT_FLOAT, 2, f), ot_t1(ROUSE_DT_INT32, 2, i)};
    ot_expect_error(ot_model(13, "Max", 2, mixed, ROUSE_DT_FLOAT, NULL), 2, mixed, ROUSE_EMISMATCH,
                    "is int32");
    const float three[] = {1, 2, 3};
    ot_in bad[2] = {ot_t1(ROUSE_DT_FLOAT, 2, f), ot_t1(ROUSE_DT_FLOAT, 3, three)};
    ot_expect_error(ot_model(13, "Sum", 2, bad, ROUSE_DT_FLOAT, NULL), 2, bad, ROUSE_EMISMATCH,
                    "input 1 does not broadcast");
    ot_expect_error(ot_model(13, "Sum", 0, bad, ROUSE_DT_FLOAT, NULL), 0, bad, ROUSE_EFORMAT,
                    "expects at least 1 inputs");
}

static void through_a_compiled_plan(void **state)
{
    (void)state;
    const int64_t a[] = {-7, 7}, b[] = {3};
    ot_in in[2] = {ot_t1(ROUSE_DT_INT64, 2, a), ot_t1(ROUSE_DT_INT64, 1, b)};
    ob_node *n;
    ob_model *m = ot_model(13, "Mod", 2, in, ROUSE_DT_INT64, &n);
    ob_attr_int(n, "fmod", 1);
    ot_out o;
    rouse_errbuf eb;
    if (ot_run_model(m, 2, in, true, &o, &eb) < 0) fail_msg("plan: %s", eb.msg);
    assert_memory_equal(o.data, ((const int64_t[]){-1, 1}), 16);
    ot_out_fini(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unary_float_math),
        cmocka_unit_test(round_half_to_even),
        cmocka_unit_test(half_types),
        cmocka_unit_test(sign_every_kind),
        cmocka_unit_test(mod_sign_rules),
        cmocka_unit_test(variadic_broadcast),
        cmocka_unit_test(cast_like),
        cmocka_unit_test(errors),
        cmocka_unit_test(through_a_compiled_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
