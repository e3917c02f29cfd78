/*
 * The logic family (src/engine/ops/logic.c): comparisons exact for every
 * type and broadcast, boolean logic, BitShift past the type's width, IsNaN
 * and IsInf, and the errors a user sees for bad attributes, types and shapes.
 */
#include "op_test.h"

static ot_out cmp(const char *op, int opset, ot_in a, ot_in b)
{
    const ot_in in[2] = {a, b};
    return ot_run_ok(ot_model(opset, op, 2, in, ROUSE_DT_BOOL, NULL), 2, in);
}

static void expect_bools(const ot_out *o, const uint8_t *want, int n)
{
    assert_int_equal(o->dtype, ROUSE_DT_BOOL);
    assert_int_equal(o->nbytes, (size_t)n);
    assert_memory_equal(o->data, want, (size_t)n);
}

/* int64 values a double cannot tell apart still compare exactly. */
static void compare_int64_exact(void **state)
{
    (void)state;
    const int64_t a[] = {9007199254740993LL, -5, INT64_MIN, 7};
    const int64_t b[] = {9007199254740992LL, -5, INT64_MAX, 8};
    ot_in ta = ot_t1(ROUSE_DT_INT64, 4, a), tb = ot_t1(ROUSE_DT_INT64, 4, b);
    ot_out o = cmp("Greater", 13, ta, tb);
    expect_bools(&o, (const uint8_t[]){1, 0, 0, 0}, 4);
    ot_out_fini(&o);
    o = cmp("Equal", 13, ta, tb);
    expect_bools(&o, (const uint8_t[]){0, 1, 0, 0}, 4);
    ot_out_fini(&o);
    o = cmp("LessOrEqual", 16, ta, tb);
    expect_bools(&o, (const uint8_t[]){0, 1, 1, 1}, 4);
    ot_out_fini(&o);
    o = cmp("GreaterOrEqual", 16, ta, tb);
    expect_bools(&o, (const uint8_t[]){1, 1, 0, 0}, 4);
    ot_out_fini(&o);
}

/* uint64 above 2^63 is not negative; uint16 (which ORT lacks for some ops). */
static void compare_unsigned(void **state)
{
    (void)state;
    const uint64_t a[] = {UINT64_MAX, 1}, b[] = {1, UINT64_MAX};
    ot_out o = cmp("Less", 13, ot_t1(ROUSE_DT_UINT64, 2, a), ot_t1(ROUSE_DT_UINT64, 2, b));
    expect_bools(&o, (const uint8_t[]){0, 1}, 2);
    ot_out_fini(&o);
    const uint16_t c[] = {65535, 0, 3}, d[] = {65534, 0, 4};
    o = cmp("Greater", 13, ot_t1(ROUSE_DT_UINT16, 3, c), ot_t1(ROUSE_DT_UINT16, 3, d));
    expect_bools(&o, (const uint8_t[]){1, 0, 0}, 3);
    ot_out_fini(&o);
}

/* [2, 3] against [3]: each row compares with the same vector; NaN is
 * unequal to everything, itself included. */
static void compare_float_broadcast_nan(void **state)
{
    (void)state;
    const float a[] = {1, 2, 3, NAN, 5, -0.0f}, b[] = {1, 5, NAN};
    ot_out o = cmp("Equal", 13, ot_t2(ROUSE_DT_FLOAT, 2, 3, a), ot_t1(ROUSE_DT_FLOAT, 3, b));
    assert_int_equal(o.rank, 2);
    assert_int_equal(o.shape[0], 2);
    assert_int_equal(o.shape[1], 3);
    expect_bools(&o, (const uint8_t[]){1, 0, 0, 0, 1, 0}, 6);
    ot_out_fini(&o);
    o = cmp("Less", 13, ot_t2(ROUSE_DT_FLOAT, 2, 3, a), ot_t1(ROUSE_DT_FLOAT, 3, b));
    expect_bools(&o, (const uint8_t[]){0, 1, 0, 0, 0, 0}, 6);
    ot_out_fini(&o);
    /* float16: 1.0 (0x3c00) < 1.0009765625 (0x3c01). */
    const uint16_t h1[] = {0x3c00, 0xbc00}, h2[] = {0x3c01, 0xbc00};
    o = cmp("Less", 13, ot_t1(ROUSE_DT_FLOAT16, 2, h1), ot_t1(ROUSE_DT_FLOAT16, 2, h2));
    expect_bools(&o, (const uint8_t[]){1, 0}, 2);
    ot_out_fini(&o);
}

static void logic_truth_tables(void **state)
{
    (void)state;
    /* a [4, 1] against b [2]: every pair. */
    const uint8_t a[] = {0, 1, 0, 1}, b[] = {0, 1};
    ot_in in[2] = {{ROUSE_DT_BOOL, 2, {4, 1}, a}, ot_t1(ROUSE_DT_BOOL, 2, b)};
    ot_out o = ot_run_ok(ot_model(7, "And", 2, in, ROUSE_DT_BOOL, NULL), 2, in);
    expect_bools(&o, (const uint8_t[]){0, 0, 0, 1, 0, 0, 0, 1}, 8);
    ot_out_fini(&o);
    o = ot_run_ok(ot_model(7, "Or", 2, in, ROUSE_DT_BOOL, NULL), 2, in);
    expect_bools(&o, (const uint8_t[]){0, 1, 1, 1, 0, 1, 1, 1}, 8);
    ot_out_fini(&o);
    o = ot_run_ok(ot_model(7, "Xor", 2, in, ROUSE_DT_BOOL, NULL), 2, in);
    expect_bools(&o, (const uint8_t[]){0, 1, 1, 0, 0, 1, 1, 0}, 8);
    ot_out_fini(&o);
    o = ot_run_ok(ot_model(1, "Not", 1, in, ROUSE_DT_BOOL, NULL), 1, in);
    expect_bools(&o, (const uint8_t[]){1, 0, 1, 0}, 4);
    ot_out_fini(&o);
}

static void bitshift_both_ways(void **state)
{
    (void)state;
    const uint8_t x[] = {0x81, 0x81, 1, 255}, s[] = {1, 7, 8, 200};
    ot_in in[2] = {ot_t1(ROUSE_DT_UINT8, 4, x), ot_t1(ROUSE_DT_UINT8, 4, s)};
    ob_node *n;
    ob_model *m = ot_model(11, "BitShift", 2, in, ROUSE_DT_UINT8, &n);
    ob_attr_string(n, "direction", "LEFT");
    ot_out o = ot_run_ok(m, 2, in);
    assert_memory_equal(o.data, ((const uint8_t[]){0x02, 0x80, 0, 0}), 4);
    ot_out_fini(&o);
    m = ot_model(11, "BitShift", 2, in, ROUSE_DT_UINT8, &n);
    ob_attr_string(n, "direction", "RIGHT");
    o = ot_run_ok(m, 2, in);
    assert_memory_equal(o.data, ((const uint8_t[]){0x40, 0x01, 0, 0}), 4);
    ot_out_fini(&o);
    /* uint64 by a scalar-like [1] amount. */
    const uint64_t big[] = {1, 3}, sh[] = {63};
    ot_in in64[2] = {ot_t1(ROUSE_DT_UINT64, 2, big), ot_t1(ROUSE_DT_UINT64, 1, sh)};
    m = ot_model(11, "BitShift", 2, in64, ROUSE_DT_UINT64, &n);
    ob_attr_string(n, "direction", "LEFT");
    o = ot_run_ok(m, 2, in64);
    assert_true(((uint64_t *)o.data)[0] == (1ull << 63) && ((uint64_t *)o.data)[1] == (1ull << 63));
    ot_out_fini(&o);
}

static void isnan_isinf(void **state)
{
    (void)state;
    const float x[] = {NAN, INFINITY, -INFINITY, 0.0f, -3.5f};
    ot_in in = ot_t1(ROUSE_DT_FLOAT, 5, x);
    ot_out o = ot_run_ok(ot_model(13, "IsNaN", 1, &in, ROUSE_DT_BOOL, NULL), 1, &in);
    expect_bools(&o, (const uint8_t[]){1, 0, 0, 0, 0}, 5);
    ot_out_fini(&o);
    o = ot_run_ok(ot_model(10, "IsInf", 1, &in, ROUSE_DT_BOOL, NULL), 1, &in);
    expect_bools(&o, (const uint8_t[]){0, 1, 1, 0, 0}, 5);
    ot_out_fini(&o);
    ob_node *n;
    ob_model *m = ot_model(10, "IsInf", 1, &in, ROUSE_DT_BOOL, &n);
    ob_attr_int(n, "detect_positive", 0);
    o = ot_run_ok(m, 1, &in);
    expect_bools(&o, (const uint8_t[]){0, 0, 1, 0, 0}, 5);
    ot_out_fini(&o);
}

static void errors_name_node_and_attribute(void **state)
{
    (void)state;
    const uint8_t x[] = {1, 2};
    ot_in in[2] = {ot_t1(ROUSE_DT_UINT8, 2, x), ot_t1(ROUSE_DT_UINT8, 2, x)};
    ot_expect_error(ot_model(11, "BitShift", 2, in, ROUSE_DT_UINT8, NULL), 2, in, ROUSE_EFORMAT,
                    "node 'node0' (BitShift): attribute 'direction' is required");
    ob_node *n;
    ob_model *m = ot_model(11, "BitShift", 2, in, ROUSE_DT_UINT8, &n);
    ob_attr_string(n, "direction", "UP");
    ot_expect_error(m, 2, in, ROUSE_EFORMAT, "attribute 'direction' has unknown value 'UP'");
    m = ot_model(10, "IsInf", 1, in, ROUSE_DT_BOOL, &n);
    ob_attr_int(n, "detect_negative", 2);
    ot_expect_error(m, 1, in, ROUSE_EFORMAT, "detect_negative");

    /* BitShift on signed integers and And on floats are not defined. */
    const int8_t s8[] = {1, 2};
    ot_in ins[2] = {ot_t1(ROUSE_DT_INT8, 2, s8), ot_t1(ROUSE_DT_INT8, 2, s8)};
    m = ot_model(11, "BitShift", 2, ins, ROUSE_DT_INT8, &n);
    ob_attr_string(n, "direction", "LEFT");
    ot_expect_error(m, 2, ins, ROUSE_EUNSUPPORTED, "element type int8 of input 'X'");
    const float f[] = {1, 2, 3};
    ot_in inf[2] = {ot_t1(ROUSE_DT_FLOAT, 3, f), ot_t1(ROUSE_DT_FLOAT, 2, f)};
    ot_expect_error(ot_model(7, "And", 2, inf, ROUSE_DT_BOOL, NULL), 2, inf, ROUSE_EUNSUPPORTED,
                    "element type float");
    /* Shapes that do not broadcast, and mixed types. */
    ot_expect_error(ot_model(13, "Less", 2, inf, ROUSE_DT_BOOL, NULL), 2, inf, ROUSE_EMISMATCH,
                    "do not broadcast");
    ot_in mixed[2] = {ot_t1(ROUSE_DT_FLOAT, 2, f), ot_t1(ROUSE_DT_UINT8, 2, x)};
    ot_expect_error(ot_model(13, "Equal", 2, mixed, ROUSE_DT_BOOL, NULL), 2, mixed, ROUSE_EMISMATCH,
                    "input 'B' is uint8");
    /* Opset 1 And had legacy broadcasting: not looked up. */
    const uint8_t bl[] = {1, 0};
    ot_in inb[2] = {ot_t1(ROUSE_DT_BOOL, 2, bl), ot_t1(ROUSE_DT_BOOL, 2, bl)};
    ot_expect_error(ot_model(6, "And", 2, inb, ROUSE_DT_BOOL, NULL), 2, inb, ROUSE_EUNSUPPORTED,
                    "unsupported operator And (opset 6)");
}

/* A compiled plan keeps the records (BitShift's direction, IsInf's flags). */
static void through_a_compiled_plan(void **state)
{
    (void)state;
    const uint32_t x[] = {1, 2, 4}, s[] = {2};
    ot_in in[2] = {ot_t1(ROUSE_DT_UINT32, 3, x), ot_t1(ROUSE_DT_UINT32, 1, s)};
    ob_node *n;
    ob_model *m = ot_model(11, "BitShift", 2, in, ROUSE_DT_UINT32, &n);
    ob_attr_string(n, "direction", "RIGHT");
    ot_out o;
    rouse_errbuf eb;
    if (ot_run_model(m, 2, in, true, &o, &eb) < 0) fail_msg("plan: %s", eb.msg);
    assert_memory_equal(o.data, ((const uint32_t[]){0, 0, 1}), 12);
    ot_out_fini(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compare_int64_exact),
        cmocka_unit_test(compare_unsigned),
        cmocka_unit_test(compare_float_broadcast_nan),
        cmocka_unit_test(logic_truth_tables),
        cmocka_unit_test(bitshift_both_ways),
        cmocka_unit_test(isnan_isinf),
        cmocka_unit_test(errors_name_node_and_attribute),
        cmocka_unit_test(through_a_compiled_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
