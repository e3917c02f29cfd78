/*
 * ref_batchnorm and ref_softmax: per-channel normalisation worked by hand,
 * and softmax along each axis in both the opset-13 (single axis) and the
 * legacy (flatten to 2-D at axis) semantics, including inputs large enough
 * to overflow exp() without the max subtraction.
 */
#include "ref_test.h"

static void batchnorm_by_hand(void **state)
{
    (void)state;
    /* x [2, 2, 1, 2]; channel 0: (x - 1) / 2; channel 1: 2 (x + 1) / 0.5 + 1 */
    const float x[] = {1, 3, 0, 1, -1, 5, -1, 2};
    const float scale[] = {1, 2}, bias[] = {0, 1}, mean[] = {1, -1}, var[] = {4, 0.25f};
    float y[8];
    const int64_t xs[] = {2, 2, 1, 2}, cs[] = {2};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, xs, x), ty = rt_tensor(ENG_DT_FLOAT, 4, xs, y);
    eng_tensor ts = rt_tensor(ENG_DT_FLOAT, 1, cs, scale),
               tb = rt_tensor(ENG_DT_FLOAT, 1, cs, bias);
    eng_tensor tm = rt_tensor(ENG_DT_FLOAT, 1, cs, mean), tv = rt_tensor(ENG_DT_FLOAT, 1, cs, var);
    assert_int_equal(ref_batchnorm(0.0f, &tx, &ts, &tb, &tm, &tv, &ty), 0);
    const float want[] = {0, 1, 5, 9, -1, 2, 1, 13};
    RT_CLOSE(y, want, 8);

    /* epsilon enters under the square root: var 4 + eps 5 = 9 -> /3. */
    assert_int_equal(ref_batchnorm(5.0f, &tx, &ts, &tb, &tm, &tv, &ty), 0);
    assert_float_equal(y[1], (3.0f - 1.0f) / 3.0f, 1e-6);

    /* [N, C] input (no spatial dims). */
    const int64_t xs2[] = {1, 2};
    eng_tensor tx2 = rt_tensor(ENG_DT_FLOAT, 2, xs2, x), ty2 = rt_tensor(ENG_DT_FLOAT, 2, xs2, y);
    assert_int_equal(ref_batchnorm(0.0f, &tx2, &ts, &tb, &tm, &tv, &ty2), 0);
    assert_float_equal(y[0], 0.0f, 1e-6);
    assert_float_equal(y[1], 17.0f, 1e-5); /* 4 (3 + 1) + 1 */

    const int64_t c3[] = {3};
    eng_tensor tbad = rt_tensor(ENG_DT_FLOAT, 1, c3, scale);
    assert_int_equal(ref_batchnorm(0.0f, &tx, &tbad, &tb, &tm, &tv, &ty), ROUSE_EMISMATCH);
}

/* Expected softmax over groups: element e belongs to group g(e); written
 * directly from the definition exp(x) / sum exp(x) (inputs are small). */
static void softmax_expect(const float *x, int64_t n, int64_t (*group)(int64_t, const void *),
                           const void *ctx, float *want)
{
    for (int64_t e = 0; e < n; e++) {
        double sum = 0;
        for (int64_t f = 0; f < n; f++)
            if (group(f, ctx) == group(e, ctx)) sum += exp((double)x[f]);
        want[e] = (float)(exp((double)x[e]) / sum);
    }
}

typedef struct sm_ctx {
    int64_t shape[3];
    int axis;
    bool legacy;
} sm_ctx;

/* Group id of flat element e of a [2, 3, 4] tensor: all coordinates except
 * the softmax axis (new), or the coordinates before the axis (legacy). */
static int64_t sm_group(int64_t e, const void *p)
{
    const sm_ctx *c = p;
    int64_t idx[3] = {e / 12, (e / 4) % 3, e % 4};
    int64_t g = 0;
    for (int d = 0; d < 3; d++) {
        bool reduced = c->legacy ? d >= c->axis : d == c->axis;
        g = g * 10 + (reduced ? 0 : idx[d] + 1);
    }
    return g;
}

static void softmax_axes_new_and_legacy(void **state)
{
    (void)state;
    rt_rng rng = {11};
    float x[24], y[24], want[24];
    for (int i = 0; i < 24; i++)
        x[i] = 3.0f * rt_uniform(&rng);
    const int64_t xs[] = {2, 3, 4};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 3, xs, x), ty = rt_tensor(ENG_DT_FLOAT, 3, xs, y);
    for (int legacy = 0; legacy < 2; legacy++)
        for (int axis = 0; axis < 3; axis++) {
            sm_ctx c = {{2, 3, 4}, axis, legacy != 0};
            assert_int_equal(ref_softmax(axis, legacy != 0, &tx, &ty), 0);
            softmax_expect(x, 24, sm_group, &c, want);
            RT_CLOSE(y, want, 24);
        }

    /* The two semantics differ on a middle axis... */
    float y_legacy[24];
    eng_tensor tyl = rt_tensor(ENG_DT_FLOAT, 3, xs, y_legacy);
    assert_int_equal(ref_softmax(1, false, &tx, &ty), 0);
    assert_int_equal(ref_softmax(1, true, &tx, &tyl), 0);
    double s_new = 0, s_legacy = 0;
    for (int j = 0; j < 3; j++) {
        s_new += y[j * 4];
        s_legacy += y_legacy[j * 4];
    }
    assert_true(fabs(s_new - 1.0) < 1e-5);
    assert_true(s_legacy < 0.99);
    /* ...and agree on the last one. */
    assert_int_equal(ref_softmax(2, true, &tx, &tyl), 0);
    assert_int_equal(ref_softmax(2, false, &tx, &ty), 0);
    RT_CLOSE(y_legacy, y, 24);

    assert_int_equal(ref_softmax(3, false, &tx, &ty), ROUSE_EINVAL);
}

/* test_softmax_large_number: exp(10003) overflows a double, so this only
 * passes if the max is subtracted first. */
static void softmax_large_numbers(void **state)
{
    (void)state;
    const float x[] = {0, 1, 2, 3, 10000, 10001, 10002, 10003};
    float y[8];
    const int64_t xs[] = {2, 4};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 2, xs, x), ty = rt_tensor(ENG_DT_FLOAT, 2, xs, y);
    assert_int_equal(ref_softmax(1, false, &tx, &ty), 0);
    const float want[] = {0.032058604f, 0.087144318f, 0.236882818f, 0.643914260f,
                          0.032058604f, 0.087144318f, 0.236882818f, 0.643914260f};
    RT_CLOSE(y, want, 8);
    assert_int_equal(ref_softmax(1, true, &tx, &ty), 0);
    RT_CLOSE(y, want, 8);

    /* A scalar is its own single-element softmax. */
    const float s = 42.0f;
    eng_tensor ts = rt_tensor(ENG_DT_FLOAT, 0, NULL, &s), tys = rt_tensor(ENG_DT_FLOAT, 0, NULL, y);
    assert_int_equal(ref_softmax(0, false, &ts, &tys), 0);
    assert_float_equal(y[0], 1.0f, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batchnorm_by_hand),
        cmocka_unit_test(softmax_axes_new_and_legacy),
        cmocka_unit_test(softmax_large_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
