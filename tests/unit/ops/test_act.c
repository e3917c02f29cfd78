/*
 * The activation family (src/engine/ops/act.c): each activation against
 * hand-computed values with default and given attributes, Softplus and
 * LogSoftmax on large inputs, PRelu's slope broadcast, LogSoftmax and
 * Hardmax along an axis and with the 2-D coercion of opsets before 13, and
 * the errors a user sees.
 */
#include "op_test.h"

static ot_out act(const char *op, int opset, ot_in x, const char *attr, float v)
{
    ob_node *n;
    ob_model *m = ot_model(opset, op, 1, &x, x.dtype, &n);
    if (attr) ob_attr_float(n, attr, v);
    return ot_run_ok(m, 1, &x);
}

static void expect_floats(const char *what, const ot_out *o, const float *want, int n)
{
    const float *y = o->data;
    for (int i = 0; i < n; i++)
        if (!(fabsf(y[i] - want[i]) <= 1e-6f * fmaxf(1.0f, fabsf(want[i]))))
            fail_msg("%s: y[%d] = %.9g, want %.9g", what, i, (double)y[i], (double)want[i]);
}

static void pointwise(void **state)
{
    (void)state;
    const float x[] = {-4.0f, -1.0f, 0.0f, 0.5f, 4.0f};
    ot_in in = ot_t1(ROUSE_DT_FLOAT, 5, x);
    struct {
        const char *op;
        int opset;
        const char *attr;
        float v;
        float want[5];
    } cases[] = {
        {"HardSigmoid", 6, NULL, 0, {0.0f, 0.3f, 0.5f, 0.6f, 1.0f}},
        {"HardSigmoid", 6, "alpha", 0.5f, {0.0f, 0.0f, 0.5f, 0.75f, 1.0f}},
        {"HardSwish", 14, NULL, 0, {-0.0f, -1.0f / 3.0f, 0.0f, 0.5f * (0.5f / 6.0f + 0.5f), 4.0f}},
        {"Elu", 6, NULL, 0, {-0.98168436f, -0.63212056f, 0.0f, 0.5f, 4.0f}},
        {"Elu", 6, "alpha", 2.0f, {-1.9633687f, -1.2642411f, 0.0f, 0.5f, 4.0f}},
        {"Selu", 6, NULL, 0, {-1.7258986f, -1.1113307f, 0.0f, 0.5253505f, 4.202804f}},
        {"Celu", 12, "alpha", 2.0f, {-1.7293294f, -0.7869387f, 0.0f, 0.5f, 4.0f}},
        {"Softplus", 1, NULL, 0, {0.01814993f, 0.31326166f, 0.6931472f, 0.974077f, 4.01815f}},
        {"Softsign", 1, NULL, 0, {-0.8f, -0.5f, 0.0f, 1.0f / 3.0f, 0.8f}},
        {"ThresholdedRelu", 10, NULL, 0, {0.0f, 0.0f, 0.0f, 0.0f, 4.0f}},
        {"ThresholdedRelu", 10, "alpha", 0.25f, {0.0f, 0.0f, 0.0f, 0.5f, 4.0f}},
        {"Shrink", 9, "lambd", 1.5f, {-4.0f, 0.0f, 0.0f, 0.0f, 4.0f}},
        {"Shrink", 9, "bias", 1.0f, {-3.0f, 0.0f, 0.0f, 0.0f, 3.0f}},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        ot_out o = act(cases[c].op, cases[c].opset, in, cases[c].attr, cases[c].v);
        expect_floats(cases[c].op, &o, cases[c].want, 5);
        ot_out_fini(&o);
    }
    /* Softplus does not overflow where exp(x) would. */
    const float big[] = {1000.0f, -1000.0f};
    ot_out o = act("Softplus", 1, ot_t1(ROUSE_DT_FLOAT, 2, big), NULL, 0);
    expect_floats("Softplus", &o, (const float[]){1000.0f, 0.0f}, 2);
    ot_out_fini(&o);
    /* Shrink on integers: x - bias truncated back to int8. */
    const int8_t i8[] = {-5, 0, 5};
    o = act("Shrink", 9, ot_t1(ROUSE_DT_INT8, 3, i8), "bias", 1.5f);
    assert_memory_equal(o.data, ((const int8_t[]){-3, 0, 3}), 3);
    ot_out_fini(&o);
}

static void prelu_broadcast(void **state)
{
    (void)state;
    /* x [2, 3, 1, 2] with slope [3, 1, 1]: one slope per channel. */
    float x[12];
    for (int i = 0; i < 12; i++)
        x[i] = (float)(i - 6);
    const float slope[] = {0.5f, 0.25f, 2.0f};
    ot_in in[2] = {{ROUSE_DT_FLOAT, 4, {2, 3, 1, 2}, x}, {ROUSE_DT_FLOAT, 3, {3, 1, 1}, slope}};
    ot_out o = ot_run_ok(ot_model(16, "PRelu", 2, in, ROUSE_DT_FLOAT, NULL), 2, in);
    float want[12];
    for (int i = 0; i < 12; i++)
        want[i] = x[i] < 0 ? x[i] * slope[(i / 2) % 3] : x[i];
    expect_floats("PRelu", &o, want, 12);
    ot_out_fini(&o);
    const int32_t xi[] = {-3, 4}, si[] = {2};
    ot_in ini[2] = {ot_t1(ROUSE_DT_INT32, 2, xi), ot_t1(ROUSE_DT_INT32, 1, si)};
    o = ot_run_ok(ot_model(16, "PRelu", 2, ini, ROUSE_DT_INT32, NULL), 2, ini);
    assert_memory_equal(o.data, ((const int32_t[]){-6, 4}), 8);
    ot_out_fini(&o);
    /* The slope broadcasts to X, never X to the slope. */
    const float wide[] = {1, 2, 3, 4};
    ot_in bad[2] = {ot_t1(ROUSE_DT_FLOAT, 1, x), ot_t2(ROUSE_DT_FLOAT, 4, 1, wide)};
    ot_expect_error(ot_model(16, "PRelu", 2, bad, ROUSE_DT_FLOAT, NULL), 2, bad, ROUSE_EMISMATCH,
                    "input 'slope' [4, 1] does not broadcast to 'X' [1]");
}

/* x [2, 3]: LogSoftmax along the last axis (opset 13) and, at opset 11
 * with axis 0, over the whole tensor flattened to one row. */
static void log_softmax_axes(void **state)
{
    (void)state;
    const float x[] = {1, 2, 3, 1000, 1000, 1000};
    ot_in in = ot_t2(ROUSE_DT_FLOAT, 2, 3, x);
    ot_out o = ot_run_ok(ot_model(13, "LogSoftmax", 1, &in, ROUSE_DT_FLOAT, NULL), 1, &in);
    const float l3 = logf(expf(-2) + expf(-1) + 1); /* log-sum-exp of {1,2,3} minus 3 */
    expect_floats("LogSoftmax", &o,
                  (const float[]){-2 - l3, -1 - l3, -l3, -logf(3), -logf(3), -logf(3)}, 6);
    ot_out_fini(&o);
    ob_node *n;
    ob_model *m = ot_model(11, "LogSoftmax", 1, &in, ROUSE_DT_FLOAT, &n);
    ob_attr_int(n, "axis", 0);
    o = ot_run_ok(m, 1, &in);
    /* One row of six: the first three are ~ -1000 below the rest. */
    const float *y = o.data;
    assert_true(y[0] < -990.0f && fabsf(y[3] + logf(3)) < 1e-5f);
    ot_out_fini(&o);
    /* Opset 13 along axis 0: each column on its own. */
    m = ot_model(13, "LogSoftmax", 1, &in, ROUSE_DT_FLOAT, &n);
    ob_attr_int(n, "axis", 0);
    o = ot_run_ok(m, 1, &in);
    y = o.data;
    assert_true(y[3] == 0.0f && y[0] == -999.0f);
    ot_out_fini(&o);
}

static void hardmax_first_max(void **state)
{
    (void)state;
    const float x[] = {1, 3, 3, 0, -1, -2, -1, -5};
    ot_in in = ot_t2(ROUSE_DT_FLOAT, 2, 4, x);
    ot_out o = ot_run_ok(ot_model(13, "Hardmax", 1, &in, ROUSE_DT_FLOAT, NULL), 1, &in);
    expect_floats("Hardmax", &o, (const float[]){0, 1, 0, 0, 1, 0, 0, 0}, 8);
    ot_out_fini(&o);
    /* Opset 11, axis 0: one row of all eight. */
    ob_node *n;
    ob_model *m = ot_model(11, "Hardmax", 1, &in, ROUSE_DT_FLOAT, &n);
    ob_attr_int(n, "axis", 0);
    o = ot_run_ok(m, 1, &in);
    expect_floats("Hardmax legacy", &o, (const float[]){0, 1, 0, 0, 0, 0, 0, 0}, 8);
    ot_out_fini(&o);
}

static void errors(void **state)
{
    (void)state;
    const float x[] = {1, 2};
    ot_in in = ot_t1(ROUSE_DT_FLOAT, 2, x);
    ob_node *n;
    ob_model *m = ot_model(12, "Celu", 1, &in, ROUSE_DT_FLOAT, &n);
    ob_attr_float(n, "alpha", 0.0f);
    ot_expect_error(m, 1, &in, ROUSE_EFORMAT,
                    "node 'node0' (Celu): attribute 'alpha' must not be 0");
    m = ot_model(6, "HardSigmoid", 1, &in, ROUSE_DT_FLOAT, &n);
    ob_attr_float(n, "beta", NAN);
    ot_expect_error(m, 1, &in, ROUSE_EFORMAT, "attribute 'beta'");
    m = ot_model(13, "LogSoftmax", 1, &in, ROUSE_DT_FLOAT, &n);
    ob_attr_int(n, "axis", 1);
    ot_expect_error(m, 1, &in, ROUSE_EMISMATCH,
                    "axis 1 is out of range for input 'input' of rank 1");
    m = ot_model(13, "Hardmax", 1, &in, ROUSE_DT_FLOAT, &n);
    ob_attr_int(n, "axis", 1LL << 40);
    ot_expect_error(m, 1, &in, ROUSE_EFORMAT, "attribute 'axis'");
    const int32_t i[] = {1, 2};
    ot_in ii = ot_t1(ROUSE_DT_INT32, 2, i);
    ot_expect_error(ot_model(6, "Elu", 1, &ii, ROUSE_DT_INT32, NULL), 1, &ii, ROUSE_EUNSUPPORTED,
                    "element type int32");
    /* Mish is opset 18, beyond the opsets the engine loads. */
    ot_expect_error(ot_model(17, "Mish", 1, &in, ROUSE_DT_FLOAT, NULL), 1, &in, ROUSE_EUNSUPPORTED,
                    "unsupported operator Mish (opset 17)");
}

static void through_a_compiled_plan(void **state)
{
    (void)state;
    const float x[] = {-1.0f, 0.5f};
    ot_in in = ot_t1(ROUSE_DT_FLOAT, 2, x);
    ob_node *n;
    ob_model *m = ot_model(6, "HardSigmoid", 1, &in, ROUSE_DT_FLOAT, &n);
    ob_attr_float(n, "alpha", 0.25f);
    ob_attr_float(n, "beta", 0.75f);
    ot_out o;
    rouse_errbuf eb;
    if (ot_run_model(m, 1, &in, true, &o, &eb) < 0) fail_msg("plan: %s", eb.msg);
    expect_floats("HardSigmoid", &o, (const float[]){0.5f, 0.875f}, 2);
    ot_out_fini(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pointwise),        cmocka_unit_test(prelu_broadcast),
        cmocka_unit_test(log_softmax_axes), cmocka_unit_test(hardmax_first_max),
        cmocka_unit_test(errors),           cmocka_unit_test(through_a_compiled_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
