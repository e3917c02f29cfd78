/*
 * ref_maxpool, ref_avgpool, ref_global_avgpool: the ONNX operator-doc and
 * conformance examples (ceil_mode, pads, dilations, argmax with both
 * storage orders, count_include_pad), a hand-worked case where ceil_mode
 * and count_include_pad interact, and random windows checked against a
 * brute-force version that classifies every tap as input, explicit pad or
 * ceil_mode overhang.
 */
#include "ref_test.h"

#include <float.h>

static eng_pool_attrs attrs2d(int64_t k, int64_t s, int64_t pad, int ceil_mode)
{
    eng_pool_attrs a = {.n_spatial = 2,
                        .kernel = {k, k},
                        .stride = {s, s},
                        .dilation = {1, 1},
                        .pad_begin = {pad, pad},
                        .pad_end = {pad, pad},
                        .ceil_mode = ceil_mode};
    return a;
}

static void iota(float *x, int n, float first)
{
    for (int i = 0; i < n; i++)
        x[i] = first + (float)i;
}

/* ---- MaxPool ----------------------------------------------------------- */

static void maxpool_ceil_mode(void **state)
{
    (void)state;
    float x[16], y[4];
    iota(x, 16, 1);
    const int64_t xs[] = {1, 1, 4, 4}, ys[] = {1, 1, 2, 2}, ys_floor[] = {1, 1, 1, 1};
    eng_pool_attrs a = attrs2d(3, 2, 0, 1);
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, xs, x), ty = rt_tensor(ENG_DT_FLOAT, 4, ys, y);
    assert_int_equal(ref_maxpool(&a, &tx, &ty, NULL), 0);
    const float want[] = {11, 12, 15, 16};
    RT_CLOSE(y, want, 4);
    /* The same shape is wrong without ceil_mode. */
    a.ceil_mode = 0;
    assert_int_equal(ref_maxpool(&a, &tx, &ty, NULL), ROUSE_EMISMATCH);
    eng_tensor tyf = rt_tensor(ENG_DT_FLOAT, 4, ys_floor, y);
    assert_int_equal(ref_maxpool(&a, &tx, &tyf, NULL), 0);
    assert_float_equal(y[0], 11.0f, 0);
}

/* test_maxpool_2d_ceil_output_size_reduce_by_one: a 2x2 input, kernel 1,
 * stride 2, ceil_mode: the second window would start past the input, so
 * the output is 1x1, not 2x2. */
static void maxpool_ceil_reduce_by_one(void **state)
{
    (void)state;
    const float x[] = {1, 2, 3, 4};
    float y[4];
    const int64_t xs[] = {1, 1, 2, 2}, ys[] = {1, 1, 1, 1}, ys_big[] = {1, 1, 2, 2};
    eng_pool_attrs a = attrs2d(1, 2, 0, 1);
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, xs, x), ty = rt_tensor(ENG_DT_FLOAT, 4, ys, y);
    assert_int_equal(ref_maxpool(&a, &tx, &ty, NULL), 0);
    assert_float_equal(y[0], 1.0f, 0);
    eng_tensor tyb = rt_tensor(ENG_DT_FLOAT, 4, ys_big, y);
    assert_int_equal(ref_maxpool(&a, &tx, &tyb, NULL), ROUSE_EMISMATCH);
}

/* test_maxpool_2d_pads / _precomputed_pads and the uint8 variant: 5x5
 * input 1..25, kernel 5, pads 2, with argmax indices. */
static void maxpool_pads_with_indices(void **state)
{
    (void)state;
    float x[25], y[25];
    int64_t ind[25];
    iota(x, 25, 1);
    const int64_t s[] = {1, 1, 5, 5};
    eng_pool_attrs a = attrs2d(5, 1, 2, 0);
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, s, x), ty = rt_tensor(ENG_DT_FLOAT, 4, s, y);
    eng_tensor ti = rt_tensor(ENG_DT_INT64, 4, s, ind);
    assert_int_equal(ref_maxpool(&a, &tx, &ty, &ti), 0);
    const float want[] = {13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25,
                          25, 25, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25};
    RT_CLOSE(y, want, 25);
    for (int i = 0; i < 25; i++)
        assert_int_equal(ind[i], (int64_t)want[i] - 1);

    uint8_t xb[25], yb[25];
    for (int i = 0; i < 25; i++)
        xb[i] = (uint8_t)(i + 1);
    eng_tensor txb = rt_tensor(ENG_DT_UINT8, 4, s, xb), tyb = rt_tensor(ENG_DT_UINT8, 4, s, yb);
    assert_int_equal(ref_maxpool(&a, &txb, &tyb, NULL), 0);
    for (int i = 0; i < 25; i++)
        assert_int_equal(yb[i], (int)want[i]);

    int8_t xi[25], yi[25];
    for (int i = 0; i < 25; i++)
        xi[i] = (int8_t)(-i);
    eng_tensor txi = rt_tensor(ENG_DT_INT8, 4, s, xi), tyi = rt_tensor(ENG_DT_INT8, 4, s, yi);
    assert_int_equal(ref_maxpool(&a, &txi, &tyi, NULL), 0);
    assert_int_equal(yi[0], 0);
    assert_int_equal(yi[24], -12); /* the window at (4,4) starts at (2,2) */

    double xd[25], yd[25];
    for (int i = 0; i < 25; i++)
        xd[i] = x[i];
    eng_tensor txd = rt_tensor(ENG_DT_DOUBLE, 4, s, xd), tyd = rt_tensor(ENG_DT_DOUBLE, 4, s, yd);
    assert_int_equal(ref_maxpool(&a, &txd, &tyd, NULL), 0);
    for (int i = 0; i < 25; i++)
        assert_true(yd[i] == want[i]);

    eng_tensor tx16 = rt_tensor(ENG_DT_INT16, 4, s, x), ty16 = rt_tensor(ENG_DT_INT16, 4, s, y);
    assert_int_equal(ref_maxpool(&a, &tx16, &ty16, NULL), ROUSE_EUNSUPPORTED);
}

/* test_maxpool_with_argmax_2d_precomputed_strides: kernel 2, stride 2,
 * storage_order 1 (column-major indices). */
static void maxpool_argmax_column_major(void **state)
{
    (void)state;
    float x[25], y[4];
    int64_t ind[4];
    iota(x, 25, 1);
    const int64_t xs[] = {1, 1, 5, 5}, ys[] = {1, 1, 2, 2};
    eng_pool_attrs a = attrs2d(2, 2, 0, 0);
    a.storage_order = 1;
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, xs, x), ty = rt_tensor(ENG_DT_FLOAT, 4, ys, y);
    eng_tensor ti = rt_tensor(ENG_DT_INT64, 4, ys, ind);
    assert_int_equal(ref_maxpool(&a, &tx, &ty, &ti), 0);
    const float want[] = {7, 9, 17, 19};
    const int64_t want_ind[] = {6, 16, 8, 18};
    RT_CLOSE(y, want, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(ind[i], want_ind[i]);
}

/* Indices count whole [N, C] planes before the spatial offset; only the
 * spatial part follows storage_order. */
static void maxpool_argmax_plane_offsets(void **state)
{
    (void)state;
    /* 2 images x 2 channels of 2x2 with the max at (row 1, col 0). */
    float x[16];
    for (int p = 0; p < 4; p++) {
        x[p * 4 + 0] = 1;
        x[p * 4 + 1] = 2;
        x[p * 4 + 2] = 9;
        x[p * 4 + 3] = 3;
    }
    float y[4];
    int64_t ind[4];
    const int64_t xs[] = {2, 2, 2, 2}, ys[] = {2, 2, 1, 1};
    eng_pool_attrs a = attrs2d(2, 1, 0, 0);
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, xs, x), ty = rt_tensor(ENG_DT_FLOAT, 4, ys, y);
    eng_tensor ti = rt_tensor(ENG_DT_INT64, 4, ys, ind);
    assert_int_equal(ref_maxpool(&a, &tx, &ty, &ti), 0);
    for (int p = 0; p < 4; p++)
        assert_int_equal(ind[p], p * 4 + 2);
    a.storage_order = 1;
    assert_int_equal(ref_maxpool(&a, &tx, &ty, &ti), 0);
    for (int p = 0; p < 4; p++)
        assert_int_equal(ind[p], p * 4 + 1);
}

/* test_maxpool_2d_dilations and test_maxpool_3d_dilations. */
static void maxpool_dilations(void **state)
{
    (void)state;
    float x[64], y[8];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i % 16 + 1);
    const int64_t xs2[] = {1, 1, 4, 4}, ys2[] = {1, 1, 2, 2};
    eng_pool_attrs a = attrs2d(2, 1, 0, 0);
    a.dilation[0] = a.dilation[1] = 2;
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, xs2, x), ty = rt_tensor(ENG_DT_FLOAT, 4, ys2, y);
    assert_int_equal(ref_maxpool(&a, &tx, &ty, NULL), 0);
    const float want[] = {11, 12, 15, 16, 11, 12, 15, 16};
    RT_CLOSE(y, want, 4);

    const int64_t xs3[] = {1, 1, 4, 4, 4}, ys3[] = {1, 1, 2, 2, 2};
    eng_pool_attrs a3 = {
        .n_spatial = 3, .kernel = {2, 2, 2}, .stride = {1, 1, 1}, .dilation = {2, 2, 2}};
    tx = rt_tensor(ENG_DT_FLOAT, 5, xs3, x);
    ty = rt_tensor(ENG_DT_FLOAT, 5, ys3, y);
    assert_int_equal(ref_maxpool(&a3, &tx, &ty, NULL), 0);
    RT_CLOSE(y, want, 8);
}

/* ---- AveragePool ------------------------------------------------------- */

static void avgpool_pads_both_counts(void **state)
{
    (void)state;
    float x[25], y[25];
    iota(x, 25, 1);
    const int64_t s[] = {1, 1, 5, 5};
    eng_pool_attrs a = attrs2d(5, 1, 2, 0);
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, s, x), ty = rt_tensor(ENG_DT_FLOAT, 4, s, y);

    /* test_averagepool_2d_precomputed_pads */
    assert_int_equal(ref_avgpool(&a, &tx, &ty), 0);
    float want[25];
    for (int i = 0; i < 25; i++)
        want[i] = 7.0f + 0.5f * (float)i;
    RT_CLOSE(y, want, 25);

    /* test_averagepool_2d_precomputed_pads_count_include_pad */
    a.count_include_pad = 1;
    assert_int_equal(ref_avgpool(&a, &tx, &ty), 0);
    const float want_inc[] = {2.52f,  3.6f,  4.8f,  4.08f, 3.24f, 4.56f, 6.4f,  8.4f, 7.04f,
                              5.52f,  7.2f,  10.0f, 13.0f, 10.8f, 8.4f,  6.96f, 9.6f, 12.4f,
                              10.24f, 7.92f, 6.12f, 8.4f,  10.8f, 8.88f, 6.84f};
    RT_CLOSE(y, want_inc, 25);
}

/* test_averagepool_2d_precomputed_same_upper (pads 1 each side),
 * test_averagepool_2d_precomputed_strides and test_averagepool_2d_ceil. */
static void avgpool_strides_and_ceil(void **state)
{
    (void)state;
    float x[25], y[9];
    iota(x, 25, 1);
    const int64_t xs[] = {1, 1, 5, 5}, ys3[] = {1, 1, 3, 3}, ys2[] = {1, 1, 2, 2};
    eng_pool_attrs a = attrs2d(3, 2, 1, 0);
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, xs, x), ty = rt_tensor(ENG_DT_FLOAT, 4, ys3, y);
    assert_int_equal(ref_avgpool(&a, &tx, &ty), 0);
    const float want_same[] = {4, 5.5f, 7, 11.5f, 13, 14.5f, 19, 20.5f, 22};
    RT_CLOSE(y, want_same, 9);

    a = attrs2d(2, 2, 0, 0);
    ty = rt_tensor(ENG_DT_FLOAT, 4, ys2, y);
    assert_int_equal(ref_avgpool(&a, &tx, &ty), 0);
    const float want_strides[] = {4, 6, 14, 16};
    RT_CLOSE(y, want_strides, 4);

    const int64_t xs4[] = {1, 1, 4, 4};
    iota(x, 16, 1);
    a = attrs2d(3, 2, 0, 1);
    tx = rt_tensor(ENG_DT_FLOAT, 4, xs4, x);
    assert_int_equal(ref_avgpool(&a, &tx, &ty), 0);
    const float want_ceil[] = {6, 7.5f, 12, 13.5f};
    RT_CLOSE(y, want_ceil, 4);
}

/* 1-D x = 1..6, kernel 3, stride 2, pads 1/1, ceil_mode: four windows over
 * padded positions [-1..1], [1..3], [3..5], [5..7], where 6 is the explicit
 * end pad and 7 the ceil_mode overhang, which is never counted:
 *   include pad: (0+1+2)/3, (2+3+4)/3, (4+5+6)/3, (6+0)/2 = 1, 3, 5, 3
 *   exclude pad: (1+2)/2,   3,         5,         6/1     = 1.5, 3, 5, 6 */
static void avgpool_ceil_with_count_include_pad(void **state)
{
    (void)state;
    float x[6], y[4];
    iota(x, 6, 1);
    const int64_t xs[] = {1, 1, 6}, ys[] = {1, 1, 4};
    eng_pool_attrs a = {.n_spatial = 1,
                        .kernel = {3},
                        .stride = {2},
                        .dilation = {1},
                        .pad_begin = {1},
                        .pad_end = {1},
                        .ceil_mode = 1,
                        .count_include_pad = 1};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 3, xs, x), ty = rt_tensor(ENG_DT_FLOAT, 3, ys, y);
    assert_int_equal(ref_avgpool(&a, &tx, &ty), 0);
    const float want_inc[] = {1, 3, 5, 3};
    RT_CLOSE(y, want_inc, 4);
    a.count_include_pad = 0;
    assert_int_equal(ref_avgpool(&a, &tx, &ty), 0);
    const float want_exc[] = {1.5f, 3, 5, 6};
    RT_CLOSE(y, want_exc, 4);
}

static void global_avgpool(void **state)
{
    (void)state;
    float x[12], y[3];
    iota(x, 12, 0);
    const int64_t xs[] = {1, 3, 2, 2}, ys[] = {1, 3, 1, 1}, bad[] = {1, 3, 1, 2};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, xs, x), ty = rt_tensor(ENG_DT_FLOAT, 4, ys, y);
    assert_int_equal(ref_global_avgpool(&tx, &ty), 0);
    const float want[] = {1.5f, 5.5f, 9.5f};
    RT_CLOSE(y, want, 3);

    const int64_t xs1[] = {2, 2, 3}, ys1[] = {2, 2, 1};
    float y4[4];
    tx = rt_tensor(ENG_DT_FLOAT, 3, xs1, x);
    ty = rt_tensor(ENG_DT_FLOAT, 3, ys1, y4);
    assert_int_equal(ref_global_avgpool(&tx, &ty), 0);
    const float want1[] = {1, 4, 7, 10};
    RT_CLOSE(y4, want1, 4);

    eng_tensor tb = rt_tensor(ENG_DT_FLOAT, 4, bad, y);
    tx = rt_tensor(ENG_DT_FLOAT, 4, xs, x);
    assert_int_equal(ref_global_avgpool(&tx, &tb), ROUSE_EMISMATCH);
}

/* ---- brute-force cross-check ------------------------------------------- */

typedef struct pool_case {
    int ns;
    int64_t n, c, in[3], k[3], s[3], d[3], pb[3], pe[3];
    int ceil_mode, include_pad, storage_order;
} pool_case;

static int64_t out_dim(const pool_case *pc, int d)
{
    int64_t span = pc->in[d] + pc->pb[d] + pc->pe[d] - (pc->d[d] * (pc->k[d] - 1) + 1);
    if (span < 0) return -1;
    int64_t o = (pc->ceil_mode ? (span + pc->s[d] - 1) / pc->s[d] : span / pc->s[d]) + 1;
    if (pc->ceil_mode && (o - 1) * pc->s[d] >= pc->in[d] + pc->pb[d]) o--;
    return o;
}

static void unflatten(int64_t flat, int n, const int64_t *dims, int64_t *coord)
{
    for (int i = n - 1; i >= 0; i--) {
        coord[i] = flat % dims[i];
        flat /= dims[i];
    }
}

/* Visits every tap of every window and classifies it; no tap ranges. */
static void pool_brute(const pool_case *pc, const int64_t *out, const float *x, float *ymax,
                       int64_t *ind, float *yavg)
{
    int64_t in_sp = 1, out_sp = 1, k_sp = 1;
    for (int d = 0; d < pc->ns; d++) {
        in_sp *= pc->in[d];
        out_sp *= out[d];
        k_sp *= pc->k[d];
    }
    for (int64_t p = 0; p < pc->n * pc->c; p++) {
        for (int64_t o = 0; o < out_sp; o++) {
            int64_t oc[3], kc[3];
            unflatten(o, pc->ns, out, oc);
            float best = -FLT_MAX;
            int64_t best_idx = -1, n_in = 0, n_pad = 0;
            double sum = 0;
            for (int64_t t = 0; t < k_sp; t++) {
                unflatten(t, pc->ns, pc->k, kc);
                bool in_input = true, in_padded = true;
                int64_t pos[3];
                for (int d = 0; d < pc->ns; d++) {
                    pos[d] = oc[d] * pc->s[d] - pc->pb[d] + kc[d] * pc->d[d];
                    if (pos[d] < 0 || pos[d] >= pc->in[d]) in_input = false;
                    if (pos[d] < -pc->pb[d] || pos[d] >= pc->in[d] + pc->pe[d]) in_padded = false;
                }
                if (in_padded && !in_input) n_pad++;
                if (!in_input) continue;
                int64_t rm = 0, cm = 0;
                for (int d = 0; d < pc->ns; d++)
                    rm = rm * pc->in[d] + pos[d];
                for (int d = pc->ns - 1; d >= 0; d--)
                    cm = cm * pc->in[d] + pos[d];
                float v = x[p * in_sp + rm];
                n_in++;
                sum += v;
                if (best_idx < 0 || v > best) {
                    best = v;
                    best_idx = p * in_sp + (pc->storage_order ? cm : rm);
                }
            }
            ymax[p * out_sp + o] = best;
            ind[p * out_sp + o] = best_idx;
            int64_t cnt = pc->include_pad ? n_in + n_pad : n_in;
            yavg[p * out_sp + o] = cnt ? (float)(sum / (double)cnt) : 0.0f;
        }
    }
}

static bool check_pool_case(const pool_case *pc, rt_rng *rng)
{
    int64_t xs[5] = {pc->n, pc->c}, ys[5] = {pc->n, pc->c}, out[3];
    eng_pool_attrs a = {.n_spatial = pc->ns,
                        .ceil_mode = pc->ceil_mode,
                        .count_include_pad = pc->include_pad,
                        .storage_order = pc->storage_order};
    for (int d = 0; d < pc->ns; d++) {
        out[d] = out_dim(pc, d);
        if (out[d] < 1) return false;
        xs[2 + d] = pc->in[d];
        ys[2 + d] = out[d];
        a.kernel[d] = pc->k[d];
        a.stride[d] = pc->s[d];
        a.dilation[d] = pc->d[d];
        a.pad_begin[d] = pc->pb[d];
        a.pad_end[d] = pc->pe[d];
    }
    int64_t nx = 1, ny = 1;
    for (int i = 0; i < pc->ns + 2; i++) {
        nx *= xs[i];
        ny *= ys[i];
    }
    float *x = rt_random_floats(rng, nx);
    float *ymax = calloc((size_t)ny, sizeof(float)), *yavg = calloc((size_t)ny, sizeof(float));
    float *wmax = calloc((size_t)ny, sizeof(float)), *wavg = calloc((size_t)ny, sizeof(float));
    int64_t *ind = calloc((size_t)ny, sizeof(int64_t)), *wind = calloc((size_t)ny, sizeof(int64_t));
    assert_true(ymax && yavg && wmax && wavg && ind && wind);
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, pc->ns + 2, xs, x);
    eng_tensor tmax = rt_tensor(ENG_DT_FLOAT, pc->ns + 2, ys, ymax);
    eng_tensor tavg = rt_tensor(ENG_DT_FLOAT, pc->ns + 2, ys, yavg);
    eng_tensor tind = rt_tensor(ENG_DT_INT64, pc->ns + 2, ys, ind);
    assert_int_equal(ref_maxpool(&a, &tx, &tmax, &tind), 0);
    assert_int_equal(ref_avgpool(&a, &tx, &tavg), 0);
    pool_brute(pc, out, x, wmax, wind, wavg);
    RT_CLOSE(ymax, wmax, ny);
    RT_CLOSE(yavg, wavg, ny);
    for (int64_t i = 0; i < ny; i++)
        assert_int_equal(ind[i], wind[i]);
    free(x);
    free(ymax);
    free(yavg);
    free(wmax);
    free(wavg);
    free(ind);
    free(wind);
    return true;
}

static void random_windows(void **state)
{
    (void)state;
    rt_rng rng = {0xBADC0DEULL};
    int ran = 0;
    for (int iter = 0; iter < 600 && ran < 250; iter++) {
        pool_case pc = {0};
        pc.ns = (int)rt_int(&rng, 1, 3);
        pc.n = rt_int(&rng, 1, 2);
        pc.c = rt_int(&rng, 1, 3);
        for (int d = 0; d < pc.ns; d++) {
            pc.in[d] = rt_int(&rng, 1, pc.ns == 3 ? 6 : 10);
            pc.k[d] = rt_int(&rng, 1, 4);
            pc.s[d] = rt_int(&rng, 1, 3);
            pc.d[d] = rt_int(&rng, 1, 2);
            /* ONNX requires pads smaller than the kernel. */
            pc.pb[d] = rt_int(&rng, 0, pc.k[d] - 1);
            pc.pe[d] = rt_int(&rng, 0, pc.k[d] - 1);
        }
        pc.ceil_mode = (int)rt_int(&rng, 0, 1);
        pc.include_pad = (int)rt_int(&rng, 0, 1);
        pc.storage_order = (int)rt_int(&rng, 0, 1);
        if (check_pool_case(&pc, &rng)) ran++;
    }
    assert_true(ran >= 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(maxpool_ceil_mode),
        cmocka_unit_test(maxpool_ceil_reduce_by_one),
        cmocka_unit_test(maxpool_pads_with_indices),
        cmocka_unit_test(maxpool_argmax_column_major),
        cmocka_unit_test(maxpool_argmax_plane_offsets),
        cmocka_unit_test(maxpool_dilations),
        cmocka_unit_test(avgpool_pads_both_counts),
        cmocka_unit_test(avgpool_strides_and_ceil),
        cmocka_unit_test(avgpool_ceil_with_count_include_pad),
        cmocka_unit_test(global_avgpool),
        cmocka_unit_test(random_windows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
