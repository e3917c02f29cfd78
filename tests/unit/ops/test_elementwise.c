/*
 * The element-wise ops that predate the families (ops/elementwise.c):
 * activations, Clip with attribute and input bounds, the arithmetic ops
 * with broadcasting, Pow, Where and Cast, against hand-computed values,
 * and their checks on records a plan could carry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "ops_test.h"

static const float xs[4] = {-2.0f, -0.5f, 0.0f, 3.0f};

static void expect_floats(const eng_tensor *t, const float *want, int n)
{
    assert_int_equal(eng_tensor_numel(t), n);
    for (int i = 0; i < n; i++)
        if (fabsf(((const float *)t->data)[i] - want[i]) > 1e-5f)
            fail_msg("element %d: %.7g, expected %.7g", i, (double)((const float *)t->data)[i],
                     (double)want[i]);
}

static void run_unary(eng_op op, int opset, const onnx_attr *attrs, const float *want)
{
    ot_node t;
    ot_init(&t, op, opset, 1, 1);
    assert_int_equal(ot_parse(&t, attrs), 0);
    eng_tensor x = ot_tensor(ENG_DT_FLOAT, 1, (int64_t[]){4}, xs);
    const eng_tensor *in[1] = {&x};
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    expect_floats(&t.out[0], want, 4);
    ot_fini(&t);
}

static void activations(void **state)
{
    (void)state;
    onnx_attr none[1] = {{0}};
    run_unary(ENG_OP_RELU, 13, none, (const float[]){0, 0, 0, 3});
    onnx_attr alpha[2] = {AT_FLOAT("alpha", 0.1f), {0}};
    run_unary(ENG_OP_LEAKY_RELU, 13, alpha, (const float[]){-0.2f, -0.05f, 0, 3});
    run_unary(ENG_OP_LEAKY_RELU, 13, none, (const float[]){-0.02f, -0.005f, 0, 3});
    run_unary(ENG_OP_SIGMOID, 13, none,
              (const float[]){0.11920292f, 0.37754067f, 0.5f, 0.95257413f});
    run_unary(ENG_OP_TANH, 13, none,
              (const float[]){-0.96402758f, -0.46211716f, 0.0f, 0.99505475f});
    run_unary(ENG_OP_ERF, 13, none, (const float[]){-0.99532227f, -0.52049988f, 0.0f, 0.99997791f});
    onnx_attr bounds[3] = {AT_FLOAT("min", -1.0f), AT_FLOAT("max", 1.0f), {0}};
    run_unary(ENG_OP_CLIP, 6, bounds, (const float[]){-1, -0.5f, 0, 1});

    ot_node t;
    ot_init(&t, ENG_OP_LEAKY_RELU, 13, 1, 1);
    onnx_attr inf[2] = {AT_FLOAT("alpha", INFINITY), {0}};
    assert_int_equal(ot_parse(&t, inf), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "attribute 'alpha' must be finite"));
    /* Sqrt of a negative is NaN, as in numpy. */
    ot_init(&t, ENG_OP_SQRT, 13, 1, 1);
    eng_tensor x = ot_tensor(ENG_DT_FLOAT, 1, (int64_t[]){4}, xs);
    const eng_tensor *in[1] = {&x};
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    assert_true(isnan(((float *)t.out[0].data)[0]));
    assert_true(fabsf(((float *)t.out[0].data)[3] - 1.7320508f) < 1e-6f);
    ot_fini(&t);
    /* Activations are float-only. */
    static const int32_t iv[1] = {1};
    eng_tensor xi = ot_tensor(ENG_DT_INT32, 1, (int64_t[]){1}, iv);
    const eng_tensor *ini[1] = {&xi};
    ot_init(&t, ENG_OP_RELU, 13, 1, 1);
    assert_int_equal(ot_run(&t, ini), ROUSE_EUNSUPPORTED);
    ot_fini(&t);
}

/* Clip-11+: bounds are inputs, known at prepare; integer types too. */
static void clip_bounds_from_inputs(void **state)
{
    (void)state;
    ot_node t;
    ot_init(&t, ENG_OP_CLIP, 13, 3, 1);
    onnx_attr none[1] = {{0}};
    assert_int_equal(ot_parse(&t, none), 0);
    static const int32_t x[4] = {-5, 0, 5, 10}, lo = 0, hi = 6;
    eng_tensor tx = ot_tensor(ENG_DT_INT32, 1, (int64_t[]){4}, x);
    eng_tensor tl = ot_tensor(ENG_DT_INT32, 0, NULL, &lo);
    eng_tensor th = ot_tensor(ENG_DT_INT32, 0, NULL, &hi);
    const eng_tensor *in[3] = {&tx, &tl, &th};
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    const int32_t *y = t.out[0].data;
    assert_int_equal(y[0], 0);
    assert_int_equal(y[2], 5);
    assert_int_equal(y[3], 6);
    ot_fini(&t);
    /* A bound whose value is unknown at prepare is refused, naming it. */
    tl.data = NULL;
    assert_int_equal(ot_run(&t, in), ROUSE_EUNSUPPORTED);
    assert_non_null(strstr(t.eb.msg, "input 'min'"));
    ot_fini(&t);
    /* Before opset 11, Clip has one input. */
    ot_init(&t, ENG_OP_CLIP, 6, 3, 1);
    tl.data = (void *)&lo;
    assert_int_equal(ot_run(&t, in), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "expects 1 input, got 3"));
    ot_fini(&t);
    assert_true(eng_op_desc_get(ENG_OP_CLIP)->value_inputs & (1u << 1));
    t.n.attrs.clip.min = NAN;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
    t.n.attrs.clip.min = 0;
    memset(&t.n.attrs.clip.has_min, 7, 1); /* not a bool: a damaged record */
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
}

static void arithmetic_broadcasts(void **state)
{
    (void)state;
    ot_node t;
    static const int32_t a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, -4};
    eng_tensor ta = ot_tensor(ENG_DT_INT32, 2, (int64_t[]){2, 3}, a);
    eng_tensor tb = ot_tensor(ENG_DT_INT32, 1, (int64_t[]){3}, b);
    const eng_tensor *in[2] = {&ta, &tb};
    static const struct {
        eng_op op;
        int32_t want[6];
    } cases[] = {
        {ENG_OP_ADD, {11, 22, -1, 14, 25, 2}},
        {ENG_OP_SUB, {-9, -18, 7, -6, -15, 10}},
        {ENG_OP_MUL, {10, 40, -12, 40, 100, -24}},
        {ENG_OP_DIV, {0, 0, 0, 0, 0, -1}}, /* truncates toward zero */
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        ot_init(&t, cases[c].op, 13, 2, 1);
        if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
        assert_int_equal(t.out[0].rank, 2);
        assert_memory_equal(t.out[0].data, cases[c].want, sizeof(cases[c].want));
        ot_fini(&t);
    }
    tb.shape[0] = 2;
    ot_init(&t, ENG_OP_ADD, 13, 2, 1);
    assert_int_equal(ot_run(&t, in), ROUSE_EMISMATCH);
    assert_non_null(strstr(t.eb.msg, "cannot be broadcast"));
    ot_fini(&t);
    /* Legacy broadcasting along an axis (opset < 7) is refused. */
    onnx_attr legacy[3] = {AT_INT("broadcast", 1), AT_INT("axis", 0), {0}};
    ot_init(&t, ENG_OP_MUL, 6, 2, 1);
    assert_int_equal(ot_parse(&t, legacy), ROUSE_EUNSUPPORTED);
}

static void pow_where_and_cast(void **state)
{
    (void)state;
    ot_node t;
    static const float base[3] = {2, 3, 4};
    static const int64_t ex[1] = {2};
    eng_tensor tx = ot_tensor(ENG_DT_FLOAT, 1, (int64_t[]){3}, base);
    eng_tensor te = ot_tensor(ENG_DT_INT64, 1, (int64_t[]){1}, ex);
    const eng_tensor *in[2] = {&tx, &te};
    ot_init(&t, ENG_OP_POW, 13, 2, 1);
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    expect_floats(&t.out[0], (const float[]){4, 9, 16}, 3);
    ot_fini(&t);

    static const uint8_t cond[3] = {1, 0, 1};
    static const float other[1] = {-1};
    eng_tensor tc = ot_tensor(ENG_DT_BOOL, 1, (int64_t[]){3}, cond);
    eng_tensor to = ot_tensor(ENG_DT_FLOAT, 0, NULL, other);
    const eng_tensor *inw[3] = {&tc, &tx, &to};
    ot_init(&t, ENG_OP_WHERE, 13, 3, 1);
    if (ot_run(&t, inw) < 0) fail_msg("%s", t.eb.msg);
    expect_floats(&t.out[0], (const float[]){2, -1, 4}, 3);
    ot_fini(&t);
    tc.dtype = ENG_DT_INT32;
    assert_int_equal(ot_run(&t, inw), ROUSE_EUNSUPPORTED);
    ot_fini(&t);

    /* float -> int8 saturates; the target type is checked. */
    static const float big[3] = {300.0f, -1.6f, -300.0f};
    eng_tensor tbig = ot_tensor(ENG_DT_FLOAT, 1, (int64_t[]){3}, big);
    const eng_tensor *inc[1] = {&tbig};
    ot_init(&t, ENG_OP_CAST, 13, 1, 1);
    onnx_attr to8[2] = {AT_INT("to", ENG_DT_INT8), {0}};
    assert_int_equal(ot_parse(&t, to8), 0);
    if (ot_run(&t, inc) < 0) fail_msg("%s", t.eb.msg);
    const int8_t *y = t.out[0].data;
    assert_int_equal(y[0], 127);
    assert_int_equal(y[1], -1);
    assert_int_equal(y[2], -128);
    ot_fini(&t);
    onnx_attr str[2] = {AT_INT("to", ENG_DT_STRING), {0}};
    assert_int_equal(ot_parse(&t, str), ROUSE_EUNSUPPORTED);
    assert_non_null(strstr(t.eb.msg, "attribute 'to' = string is not supported"));
    onnx_attr bad[2] = {AT_INT("to", 99), {0}};
    assert_int_equal(ot_parse(&t, bad), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "has unknown element type 99"));
    onnx_attr none[1] = {{0}};
    assert_int_equal(ot_parse(&t, none), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "attribute 'to' is required"));
    t.n.attrs.cast.to = -3; /* a damaged plan record */
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(activations),
        cmocka_unit_test(clip_bounds_from_inputs),
        cmocka_unit_test(arithmetic_broadcasts),
        cmocka_unit_test(pow_where_and_cast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
