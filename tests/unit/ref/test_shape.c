/*
 * ref_transpose, ref_concat, ref_copy: every permutation of a rank-3
 * tensor for several element sizes, concatenation on each axis (including
 * an empty input), and the byte copy with and without aliasing.
 */
#include "ref_test.h"

static const int perms3[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};

/* y[i_perm[0], i_perm[1], i_perm[2]] == x[i0, i1, i2] for all indices,
 * checked element by element through the element's value (its flat index
 * in x). */
static void transpose_all_perms_rank3(void **state)
{
    (void)state;
    const int64_t xs[] = {2, 3, 4};
    float xf[24], yf[24];
    int64_t xl[24], yl[24];
    uint8_t xb[24], yb[24];
    for (int i = 0; i < 24; i++) {
        xf[i] = (float)i;
        xl[i] = 1000000000000LL + i;
        xb[i] = (uint8_t)i;
    }
    for (int p = 0; p < 6; p++) {
        int64_t perm[3], ys[3];
        for (int d = 0; d < 3; d++) {
            perm[d] = perms3[p][d];
            ys[d] = xs[perm[d]];
        }
        eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 3, xs, xf), ty = rt_tensor(ENG_DT_FLOAT, 3, ys, yf);
        assert_int_equal(ref_transpose(perm, &tx, &ty), 0);
        tx = rt_tensor(ENG_DT_INT64, 3, xs, xl);
        ty = rt_tensor(ENG_DT_INT64, 3, ys, yl);
        assert_int_equal(ref_transpose(perm, &tx, &ty), 0);
        tx = rt_tensor(ENG_DT_UINT8, 3, xs, xb);
        ty = rt_tensor(ENG_DT_UINT8, 3, ys, yb);
        assert_int_equal(ref_transpose(perm, &tx, &ty), 0);
        for (int64_t i0 = 0; i0 < 2; i0++)
            for (int64_t i1 = 0; i1 < 3; i1++)
                for (int64_t i2 = 0; i2 < 4; i2++) {
                    const int64_t xi[3] = {i0, i1, i2};
                    int64_t src = (i0 * 3 + i1) * 4 + i2;
                    int64_t dst = (xi[perm[0]] * ys[1] + xi[perm[1]]) * ys[2] + xi[perm[2]];
                    assert_float_equal(yf[dst], (float)src, 0);
                    assert_true(yl[dst] == 1000000000000LL + src);
                    assert_int_equal(yb[dst], src);
                }
    }
}

static void transpose_edge_ranks_and_errors(void **state)
{
    (void)state;
    /* Rank 0 and rank 1 are plain copies. */
    const float s = 3.5f;
    float y[24];
    eng_tensor ts = rt_tensor(ENG_DT_FLOAT, 0, NULL, &s), ty0 = rt_tensor(ENG_DT_FLOAT, 0, NULL, y);
    assert_int_equal(ref_transpose(NULL, &ts, &ty0), 0);
    assert_float_equal(y[0], 3.5f, 0);

    /* Rank 4, perm [3, 0, 2, 1] on [1, 2, 1, 3]: the dims of size 1 are
     * free to move, so y[d, a, 0, 0] = x[0, a, 0, d]. */
    const float x4[] = {0, 1, 2, 3, 4, 5};
    const int64_t xs4[] = {1, 2, 1, 3}, ys4[] = {3, 1, 1, 2}, perm4[] = {3, 0, 2, 1};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, xs4, x4), ty = rt_tensor(ENG_DT_FLOAT, 4, ys4, y);
    assert_int_equal(ref_transpose(perm4, &tx, &ty), 0);
    const float want4[] = {0, 3, 1, 4, 2, 5};
    RT_CLOSE(y, want4, 6);

    const int64_t dup[] = {0, 0, 1, 2}, oob[] = {0, 1, 2, 4}, ys_bad[] = {1, 3, 1, 2};
    assert_int_equal(ref_transpose(dup, &tx, &ty), ROUSE_EINVAL);
    assert_int_equal(ref_transpose(oob, &tx, &ty), ROUSE_EINVAL);
    eng_tensor tyb = rt_tensor(ENG_DT_FLOAT, 4, ys_bad, y);
    assert_int_equal(ref_transpose(perm4, &tx, &tyb), ROUSE_EMISMATCH);
}

/* Three inputs differing along `axis` (sizes 1, 2, 3) of a rank-3 tensor
 * whose other dims are 2 and 3; each element encodes (input, flat index). */
static void concat_each_axis(void **state)
{
    (void)state;
    for (int axis = 0; axis < 3; axis++) {
        float bufs[3][18];
        int64_t shapes[3][3];
        eng_tensor ts[3];
        const eng_tensor *ptrs[3];
        for (int i = 0; i < 3; i++) {
            const int64_t base[3] = {2, 3, 2};
            for (int d = 0; d < 3; d++)
                shapes[i][d] = d == axis ? i + 1 : base[d];
            for (int e = 0; e < 18; e++)
                bufs[i][e] = (float)(100 * i + e);
            ts[i] = rt_tensor(ENG_DT_FLOAT, 3, shapes[i], bufs[i]);
            ptrs[i] = &ts[i];
        }
        int64_t ys[3] = {2, 3, 2};
        ys[axis] = 6;
        float y[36];
        eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 3, ys, y);
        assert_int_equal(ref_concat(axis, 3, ptrs, &ty), 0);
        for (int64_t i0 = 0; i0 < ys[0]; i0++)
            for (int64_t i1 = 0; i1 < ys[1]; i1++)
                for (int64_t i2 = 0; i2 < ys[2]; i2++) {
                    int64_t idx[3] = {i0, i1, i2};
                    /* Along the axis, input k covers [k(k+1)/2, (k+1)(k+2)/2). */
                    int64_t a = idx[axis], k = a < 1 ? 0 : a < 3 ? 1 : 2;
                    idx[axis] = a - k * (k + 1) / 2;
                    const int64_t *s = shapes[k];
                    int64_t flat = (idx[0] * s[1] + idx[1]) * s[2] + idx[2];
                    assert_float_equal(y[(i0 * ys[1] + i1) * ys[2] + i2], (float)(100 * k + flat),
                                       0);
                }
    }
}

static void concat_empty_input_and_errors(void **state)
{
    (void)state;
    const int64_t a[] = {1, 2, 3, 4}, b[] = {5, 6};
    int64_t y[6];
    const int64_t sa[] = {2, 2}, sb[] = {2, 1}, se[] = {2, 0}, sy[] = {2, 3};
    eng_tensor ta = rt_tensor(ENG_DT_INT64, 2, sa, a), tb = rt_tensor(ENG_DT_INT64, 2, sb, b);
    eng_tensor te = rt_tensor(ENG_DT_INT64, 2, se, NULL);
    eng_tensor ty = rt_tensor(ENG_DT_INT64, 2, sy, y);
    const eng_tensor *in[] = {&ta, &te, &tb};
    assert_int_equal(ref_concat(1, 3, in, &ty), 0);
    const int64_t want[] = {1, 2, 5, 3, 4, 6};
    assert_memory_equal(y, want, sizeof(want));

    /* Sizes along the axis must add up; other dims must match. */
    const eng_tensor *two[] = {&ta, &ta};
    assert_int_equal(ref_concat(1, 2, two, &ty), ROUSE_EMISMATCH);
    assert_int_equal(ref_concat(0, 2, in, &ty), ROUSE_EMISMATCH);
    assert_int_equal(ref_concat(2, 3, in, &ty), ROUSE_EINVAL);
    eng_tensor tf = rt_tensor(ENG_DT_FLOAT, 2, sb, b);
    const eng_tensor *mixed[] = {&ta, &tf};
    assert_int_equal(ref_concat(1, 2, mixed, &ty), ROUSE_EUNSUPPORTED);
}

static void copy_reshape_and_alias(void **state)
{
    (void)state;
    const int32_t x[] = {1, 2, 3, 4, 5, 6};
    int32_t y[6] = {0};
    const int64_t xs[] = {2, 3}, ys[] = {3, 1, 2}, bad[] = {5};
    eng_tensor tx = rt_tensor(ENG_DT_INT32, 2, xs, x), ty = rt_tensor(ENG_DT_INT32, 3, ys, y);
    assert_int_equal(ref_copy(&tx, &ty), 0);
    assert_memory_equal(x, y, sizeof(x));
    assert_int_equal(ref_copy(&ty, &ty), 0);
    assert_memory_equal(x, y, sizeof(x));
    eng_tensor tb = rt_tensor(ENG_DT_INT32, 1, bad, y);
    assert_int_equal(ref_copy(&tx, &tb), ROUSE_EMISMATCH);
    eng_tensor tstr = rt_tensor(ENG_DT_STRING, 2, xs, x);
    assert_int_equal(ref_copy(&tstr, &ty), ROUSE_EUNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transpose_all_perms_rank3),
        cmocka_unit_test(transpose_edge_ranks_and_errors),
        cmocka_unit_test(concat_each_axis),
        cmocka_unit_test(concat_empty_input_and_errors),
        cmocka_unit_test(copy_reshape_and_alias),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
