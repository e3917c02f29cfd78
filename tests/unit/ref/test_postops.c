/*
 * ref_postops: each element-wise post-op against its unfused kernel, a
 * SUM followed by an activation (the residual-block pattern), and the
 * checks that leave y untouched when the list is invalid.
 */
#include "ref_test.h"

static const float xs_vals[] = {-4.0f, -1.0f, -0.25f, 0.0f, 0.5f, 2.0f, 7.0f};
enum { NV = 7 };

/* Post-op `po` on a copy of xs_vals must equal ref_unary(op, attrs). */
static void check_eltwise(eng_postop po, const eng_attrs *attrs)
{
    float y[NV], want[NV];
    memcpy(y, xs_vals, sizeof(y));
    const int64_t s[] = {NV};
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 1, s, y);
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 1, s, xs_vals),
               tw = rt_tensor(ENG_DT_FLOAT, 1, s, want);
    assert_int_equal(ref_postops(1, &po, NULL, &ty), 0);
    assert_int_equal(ref_unary(po.eltwise, attrs, &tx, &tw), 0);
    rt_assert_close(y, want, NV, 0, 0);
}

static void eltwise_matches_unfused(void **state)
{
    (void)state;
    check_eltwise((eng_postop){.kind = ENG_POST_ELTWISE, .eltwise = ENG_OP_RELU}, NULL);
    check_eltwise((eng_postop){.kind = ENG_POST_ELTWISE, .eltwise = ENG_OP_SIGMOID}, NULL);
    check_eltwise((eng_postop){.kind = ENG_POST_ELTWISE, .eltwise = ENG_OP_TANH}, NULL);
    eng_attrs leaky = {.alpha = {.alpha = 0.2f}};
    check_eltwise(
        (eng_postop){.kind = ENG_POST_ELTWISE, .eltwise = ENG_OP_LEAKY_RELU, .alpha = 0.2f},
        &leaky);
    eng_attrs clip = {.clip = {.min = 0.0, .max = 6.0, .has_min = true, .has_max = true}};
    check_eltwise(
        (eng_postop){.kind = ENG_POST_ELTWISE, .eltwise = ENG_OP_CLIP, .alpha = 0.0f, .beta = 6.0f},
        &clip);
}

static void sum_then_relu_and_clip(void **state)
{
    (void)state;
    float y[NV];
    memcpy(y, xs_vals, sizeof(y));
    const float add[NV] = {1, 1, 1, 1, 1, 1, 1};
    const int64_t s[] = {NV};
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 1, s, y), ta = rt_tensor(ENG_DT_FLOAT, 1, s, add);
    const eng_postop post[] = {
        {.kind = ENG_POST_SUM, .sum_input = 2},
        {.kind = ENG_POST_ELTWISE, .eltwise = ENG_OP_RELU},
        {.kind = ENG_POST_ELTWISE, .eltwise = ENG_OP_CLIP, .alpha = 0.5f, .beta = 3.0f},
    };
    assert_int_equal(ref_postops(3, post, &ta, &ty), 0);
    /* x + 1 = -3, 0, 0.75, 1, 1.5, 3, 8 -> relu -> clip [0.5, 3] */
    const float want[NV] = {0.5f, 0.5f, 0.75f, 1.0f, 1.5f, 3.0f, 3.0f};
    rt_assert_close(y, want, NV, 0, 0);

    /* No post-ops: y unchanged. */
    assert_int_equal(ref_postops(0, NULL, NULL, &ty), 0);
    rt_assert_close(y, want, NV, 0, 0);
}

static void invalid_lists_leave_y_alone(void **state)
{
    (void)state;
    float y[NV];
    memcpy(y, xs_vals, sizeof(y));
    const int64_t s[] = {NV}, s_bad[] = {NV - 1};
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 1, s, y);
    const eng_postop relu_then_sum[] = {
        {.kind = ENG_POST_ELTWISE, .eltwise = ENG_OP_RELU},
        {.kind = ENG_POST_SUM},
    };
    assert_int_equal(ref_postops(2, relu_then_sum, NULL, &ty), ROUSE_EINVAL);
    eng_tensor tshort = rt_tensor(ENG_DT_FLOAT, 1, s_bad, xs_vals);
    assert_int_equal(ref_postops(2, relu_then_sum, &tshort, &ty), ROUSE_EMISMATCH);
    const eng_postop bad_op[] = {
        {.kind = ENG_POST_ELTWISE, .eltwise = ENG_OP_RELU},
        {.kind = ENG_POST_ELTWISE, .eltwise = ENG_OP_SOFTMAX},
    };
    assert_int_equal(ref_postops(2, bad_op, NULL, &ty), ROUSE_EUNSUPPORTED);
    rt_assert_close(y, xs_vals, NV, 0, 0);

    eng_tensor tyd = rt_tensor(ENG_DT_DOUBLE, 1, s, y);
    assert_int_equal(ref_postops(1, bad_op, NULL, &tyd), ROUSE_EUNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(eltwise_matches_unfused),
        cmocka_unit_test(sum_then_relu_and_clip),
        cmocka_unit_test(invalid_lists_leave_y_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
