/*
 * ref_gemm and ref_matmul: transposes, alpha/beta, every way C may
 * broadcast, numpy 1-D promotion, batch broadcasting, integer wraparound
 * and the shape checks.
 */
#include "ref_test.h"

/* Naive Gemm written from the ONNX formula, C given as a function of (i, j). */
static void gemm_naive(int64_t m, int64_t n, int64_t k, bool ta, bool tb, float alpha, float beta,
                       const float *A, const float *B, const float *C, int64_t c_rows,
                       int64_t c_cols, float *Y)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) {
                double av = ta ? A[p * m + i] : A[i * k + p];
                double bv = tb ? B[j * k + p] : B[p * n + j];
                s += av * bv;
            }
            double c = 0;
            if (C) c = C[(c_rows == 1 ? 0 : i) * c_cols + (c_cols == 1 ? 0 : j)];
            Y[i * n + j] = (float)(alpha * s + beta * c);
        }
}

static void gemm_hand_example(void **state)
{
    (void)state;
    /* [[1,2,3],[4,5,6]] x [[1,0],[0,1],[1,1]] = [[4,5],[10,11]] */
    const float A[] = {1, 2, 3, 4, 5, 6}, B[] = {1, 0, 0, 1, 1, 1}, C[] = {100, 200};
    const int64_t as[] = {2, 3}, bs[] = {3, 2}, cs[] = {2}, ys[] = {2, 2};
    float Y[4];
    eng_gemm_attrs a = {.alpha = 2.0f, .beta = 0.5f};
    eng_tensor tA = rt_tensor(ENG_DT_FLOAT, 2, as, A), tB = rt_tensor(ENG_DT_FLOAT, 2, bs, B);
    eng_tensor tC = rt_tensor(ENG_DT_FLOAT, 1, cs, C), tY = rt_tensor(ENG_DT_FLOAT, 2, ys, Y);
    assert_int_equal(ref_gemm(&a, &tA, &tB, &tC, &tY), 0);
    const float want[] = {58, 110, 70, 122};
    RT_CLOSE(Y, want, 4);
    assert_int_equal(ref_gemm(&a, &tA, &tB, NULL, &tY), 0);
    const float want_noc[] = {8, 10, 20, 22};
    RT_CLOSE(Y, want_noc, 4);
}

static void gemm_all_c_shapes_and_transposes(void **state)
{
    (void)state;
    rt_rng rng = {7};
    const int64_t m = 5, n = 7, k = 3;
    /* C shapes: scalar, [1], [N], [1,N], [M,1], [M,N], [1,1]. */
    const struct {
        int rank;
        int64_t shape[2], rows, cols;
    } cshapes[] = {
        {0, {0, 0}, 1, 1}, {1, {1, 0}, 1, 1}, {1, {n, 0}, 1, n}, {2, {1, n}, 1, n},
        {2, {m, 1}, m, 1}, {2, {m, n}, m, n}, {2, {1, 1}, 1, 1},
    };
    float *A = rt_random_floats(&rng, m * k), *B = rt_random_floats(&rng, k * n);
    float *C = rt_random_floats(&rng, m * n);
    float Y[35], want[35];
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t ci = 0; ci < sizeof(cshapes) / sizeof(cshapes[0]); ci++) {
                const int64_t as[] = {ta ? k : m, ta ? m : k}, bs[] = {tb ? n : k, tb ? k : n},
                              ys[] = {m, n};
                eng_gemm_attrs a = {.trans_a = ta, .trans_b = tb, .alpha = 0.75f, .beta = -1.5f};
                eng_tensor tA = rt_tensor(ENG_DT_FLOAT, 2, as, A);
                eng_tensor tB = rt_tensor(ENG_DT_FLOAT, 2, bs, B);
                eng_tensor tC = rt_tensor(ENG_DT_FLOAT, cshapes[ci].rank, cshapes[ci].shape, C);
                eng_tensor tY = rt_tensor(ENG_DT_FLOAT, 2, ys, Y);
                assert_int_equal(ref_gemm(&a, &tA, &tB, &tC, &tY), 0);
                gemm_naive(m, n, k, ta, tb, a.alpha, a.beta, A, B, C, cshapes[ci].rows,
                           cshapes[ci].cols, want);
                RT_CLOSE(Y, want, m * n);
            }
    free(A);
    free(B);
    free(C);
}

static void gemm_rejects_bad_shapes(void **state)
{
    (void)state;
    float buf[64] = {0};
    const int64_t as[] = {2, 3}, bs[] = {4, 2}, bs_ok[] = {3, 2}, ys[] = {2, 2}, cs_bad[] = {3};
    eng_gemm_attrs a = {.alpha = 1, .beta = 1};
    eng_tensor tA = rt_tensor(ENG_DT_FLOAT, 2, as, buf), tB = rt_tensor(ENG_DT_FLOAT, 2, bs, buf);
    eng_tensor tY = rt_tensor(ENG_DT_FLOAT, 2, ys, buf + 32);
    assert_int_equal(ref_gemm(&a, &tA, &tB, NULL, &tY), ROUSE_EMISMATCH);
    eng_tensor tB2 = rt_tensor(ENG_DT_FLOAT, 2, bs_ok, buf);
    eng_tensor tC = rt_tensor(ENG_DT_FLOAT, 1, cs_bad, buf);
    assert_int_equal(ref_gemm(&a, &tA, &tB2, &tC, &tY), ROUSE_EMISMATCH);
    eng_tensor tAi = rt_tensor(ENG_DT_INT32, 2, as, buf);
    assert_int_equal(ref_gemm(&a, &tAi, &tB2, NULL, &tY), ROUSE_EUNSUPPORTED);
}

/* ---- MatMul ------------------------------------------------------------ */

static void matmul_1d_promotion(void **state)
{
    (void)state;
    const float v3[] = {1, 2, 3}, m32[] = {1, 2, 3, 4, 5, 6}, m23[] = {1, 2, 3, 4, 5, 6};
    const int64_t s3[] = {3}, s32[] = {3, 2}, s23[] = {2, 3}, s2[] = {2};
    float y[2];
    eng_tensor tv = rt_tensor(ENG_DT_FLOAT, 1, s3, v3);

    /* [3] x [3] -> scalar 14 */
    eng_tensor ts = rt_tensor(ENG_DT_FLOAT, 0, NULL, y);
    assert_int_equal(ref_matmul(&tv, &tv, &ts), 0);
    assert_float_equal(y[0], 14.0f, 1e-6);

    /* [3] x [3,2] -> [2]: (1*1+2*3+3*5, 1*2+2*4+3*6) = (22, 28) */
    eng_tensor tm32 = rt_tensor(ENG_DT_FLOAT, 2, s32, m32), t2 = rt_tensor(ENG_DT_FLOAT, 1, s2, y);
    assert_int_equal(ref_matmul(&tv, &tm32, &t2), 0);
    const float want_a[] = {22, 28};
    RT_CLOSE(y, want_a, 2);

    /* [2,3] x [3] -> [2]: (14, 32) */
    eng_tensor tm23 = rt_tensor(ENG_DT_FLOAT, 2, s23, m23);
    assert_int_equal(ref_matmul(&tm23, &tv, &t2), 0);
    const float want_b[] = {14, 32};
    RT_CLOSE(y, want_b, 2);

    /* A promoted dim must not appear in the output. */
    const int64_t s12[] = {1, 2};
    eng_tensor t12 = rt_tensor(ENG_DT_FLOAT, 2, s12, y);
    assert_int_equal(ref_matmul(&tv, &tm32, &t12), ROUSE_EMISMATCH);
}

/* Batch broadcasting: a [2,1,3,4] x b [3,4,5] -> [2,3,3,5], and a 1-D b
 * against a batched a: [2,3,4] x [4] -> [2,3]. */
static void matmul_batch_broadcast(void **state)
{
    (void)state;
    rt_rng rng = {99};
    const int64_t as[] = {2, 1, 3, 4}, bs[] = {3, 4, 5}, ys[] = {2, 3, 3, 5};
    float *a = rt_random_floats(&rng, 24), *b = rt_random_floats(&rng, 60);
    float y[90], want[90];
    eng_tensor ta = rt_tensor(ENG_DT_FLOAT, 4, as, a), tb = rt_tensor(ENG_DT_FLOAT, 3, bs, b);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 4, ys, y);
    assert_int_equal(ref_matmul(&ta, &tb, &ty), 0);
    for (int i0 = 0; i0 < 2; i0++)
        for (int i1 = 0; i1 < 3; i1++)
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 5; c++) {
                    double s = 0;
                    for (int p = 0; p < 4; p++)
                        s += (double)a[(i0 * 3 + r) * 4 + p] * b[(i1 * 4 + p) * 5 + c];
                    want[((i0 * 3 + i1) * 3 + r) * 5 + c] = (float)s;
                }
    RT_CLOSE(y, want, 90);

    const int64_t as3[] = {2, 3, 4}, v4[] = {4}, ys2[] = {2, 3};
    eng_tensor ta3 = rt_tensor(ENG_DT_FLOAT, 3, as3, a), tv = rt_tensor(ENG_DT_FLOAT, 1, v4, b);
    eng_tensor ty2 = rt_tensor(ENG_DT_FLOAT, 2, ys2, y);
    assert_int_equal(ref_matmul(&ta3, &tv, &ty2), 0);
    for (int i = 0; i < 6; i++) {
        double s = 0;
        for (int p = 0; p < 4; p++)
            s += (double)a[i * 4 + p] * b[p];
        want[i] = (float)s;
    }
    RT_CLOSE(y, want, 6);

    /* Incompatible batch dims. */
    const int64_t bs_bad[] = {2, 4, 5}, as_bad[] = {3, 3, 4}, ys_bad[] = {3, 3, 5};
    eng_tensor tab = rt_tensor(ENG_DT_FLOAT, 3, as_bad, a),
               tbb = rt_tensor(ENG_DT_FLOAT, 3, bs_bad, b);
    eng_tensor tyb = rt_tensor(ENG_DT_FLOAT, 3, ys_bad, y);
    assert_int_equal(ref_matmul(&tab, &tbb, &tyb), ROUSE_EMISMATCH);
    free(a);
    free(b);
}

/* Wide inner dimension: more than one column tile, and a long K. */
static void matmul_large_tiles(void **state)
{
    (void)state;
    rt_rng rng = {5};
    const int64_t m = 3, k = 300, n = 150;
    const int64_t as[] = {m, k}, bs[] = {k, n}, ys[] = {m, n};
    float *a = rt_random_floats(&rng, m * k), *b = rt_random_floats(&rng, k * n);
    float *y = malloc(sizeof(float) * m * n), *want = malloc(sizeof(float) * m * n);
    assert_true(y && want);
    eng_tensor ta = rt_tensor(ENG_DT_FLOAT, 2, as, a), tb = rt_tensor(ENG_DT_FLOAT, 2, bs, b);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 2, ys, y);
    assert_int_equal(ref_matmul(&ta, &tb, &ty), 0);
    gemm_naive(m, n, k, false, false, 1.0f, 0.0f, a, b, NULL, 1, 1, want);
    RT_CLOSE(y, want, m * n);
    free(a);
    free(b);
    free(y);
    free(want);
}

static void matmul_integer_and_double(void **state)
{
    (void)state;
    const int64_t s22[] = {2, 2};
    /* int32 wraps: 65536 * 65536 = 2^32 -> 0; plus 1 * 7 */
    const int32_t a32[] = {65536, 1, -3, 2}, b32[] = {65536, 0, 7, 5};
    int32_t y32[4];
    eng_tensor ta = rt_tensor(ENG_DT_INT32, 2, s22, a32), tb = rt_tensor(ENG_DT_INT32, 2, s22, b32);
    eng_tensor ty = rt_tensor(ENG_DT_INT32, 2, s22, y32);
    assert_int_equal(ref_matmul(&ta, &tb, &ty), 0);
    assert_int_equal(y32[0], 7);
    assert_int_equal(y32[1], 5);
    assert_int_equal(y32[2], -3 * 65536 + 14);
    assert_int_equal(y32[3], 10);

    const int64_t a64[] = {-5000000000LL, 3, 2, 1}, b64[] = {2, 1, 4, -1};
    int64_t y64[4];
    ta = rt_tensor(ENG_DT_INT64, 2, s22, a64);
    tb = rt_tensor(ENG_DT_INT64, 2, s22, b64);
    ty = rt_tensor(ENG_DT_INT64, 2, s22, y64);
    assert_int_equal(ref_matmul(&ta, &tb, &ty), 0);
    assert_true(y64[0] == -10000000000LL + 12 && y64[1] == -5000000000LL - 3);
    assert_true(y64[2] == 8 && y64[3] == 1);

    const uint64_t au[] = {UINT64_MAX, 1, 2, 3}, bu[] = {2, 0, 1, 1};
    uint64_t yu[4];
    ta = rt_tensor(ENG_DT_UINT64, 2, s22, au);
    tb = rt_tensor(ENG_DT_UINT64, 2, s22, bu);
    ty = rt_tensor(ENG_DT_UINT64, 2, s22, yu);
    assert_int_equal(ref_matmul(&ta, &tb, &ty), 0);
    assert_true(yu[0] == UINT64_MAX - 1 + 1 && yu[1] == 1 && yu[2] == 7 && yu[3] == 3);

    const uint32_t a_u32[] = {4000000000u, 1, 0, 2}, b_u32[] = {2, 0, 0, 3};
    uint32_t y_u32[4];
    ta = rt_tensor(ENG_DT_UINT32, 2, s22, a_u32);
    tb = rt_tensor(ENG_DT_UINT32, 2, s22, b_u32);
    ty = rt_tensor(ENG_DT_UINT32, 2, s22, y_u32);
    assert_int_equal(ref_matmul(&ta, &tb, &ty), 0);
    assert_true(y_u32[0] == 3705032704u /* 8e9 mod 2^32 */ && y_u32[1] == 3 && y_u32[3] == 6);

    const double ad[] = {0.5, 1e-17, 1, 1}, bd[] = {2, 0, 1, 1};
    double yd[4];
    ta = rt_tensor(ENG_DT_DOUBLE, 2, s22, ad);
    tb = rt_tensor(ENG_DT_DOUBLE, 2, s22, bd);
    ty = rt_tensor(ENG_DT_DOUBLE, 2, s22, yd);
    assert_int_equal(ref_matmul(&ta, &tb, &ty), 0);
    assert_true(yd[0] == 1.0 + 1e-17 && yd[1] == 1e-17 && yd[2] == 3.0 && yd[3] == 1.0);

    const int8_t a8[] = {1, 2, 3, 4};
    int8_t y8[4];
    ta = rt_tensor(ENG_DT_INT8, 2, s22, a8);
    ty = rt_tensor(ENG_DT_INT8, 2, s22, y8);
    assert_int_equal(ref_matmul(&ta, &ta, &ty), ROUSE_EUNSUPPORTED);
}

static void matmul_empty_inner_dim(void **state)
{
    (void)state;
    /* K = 0: every output is an empty sum. */
    const int64_t as[] = {2, 0}, bs[] = {0, 3}, ys[] = {2, 3};
    float dummy[1] = {0}, y[6] = {1, 1, 1, 1, 1, 1};
    eng_tensor ta = rt_tensor(ENG_DT_FLOAT, 2, as, dummy),
               tb = rt_tensor(ENG_DT_FLOAT, 2, bs, dummy);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 2, ys, y);
    assert_int_equal(ref_matmul(&ta, &tb, &ty), 0);
    for (int i = 0; i < 6; i++)
        assert_float_equal(y[i], 0.0f, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gemm_hand_example),
        cmocka_unit_test(gemm_all_c_shapes_and_transposes),
        cmocka_unit_test(gemm_rejects_bad_shapes),
        cmocka_unit_test(matmul_1d_promotion),
        cmocka_unit_test(matmul_batch_broadcast),
        cmocka_unit_test(matmul_large_tiles),
        cmocka_unit_test(matmul_integer_and_double),
        cmocka_unit_test(matmul_empty_inner_dim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
