/*
 * ref_conv: the ONNX operator-doc examples, then random shapes (1-D/2-D/3-D,
 * groups, depthwise, asymmetric pads, strides, dilations, bias) checked
 * against an explicit im2col + matrix product written here, which shares no
 * code or loop structure with the kernel. Ends with a timing guard on a
 * ResNet-sized first layer.
 */
#include "ref_test.h"

#include <time.h>

/* ---- ONNX documentation examples: x = 0..24 as 5x5, w = 3x3 of ones ---- */

static void run_doc_case(const int64_t pads[4], int64_t stride, const int64_t *yshape,
                         const float *want)
{
    float x[25], w[9];
    for (int i = 0; i < 25; i++)
        x[i] = (float)i;
    for (int i = 0; i < 9; i++)
        w[i] = 1.0f;
    const int64_t xs[] = {1, 1, 5, 5}, ws[] = {1, 1, 3, 3};
    eng_conv_attrs a = {.n_spatial = 2,
                        .kernel = {3, 3},
                        .stride = {stride, stride},
                        .dilation = {1, 1},
                        .pad_begin = {pads[0], pads[1]},
                        .pad_end = {pads[2], pads[3]},
                        .group = 1};
    float y[25];
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, xs, x), tw = rt_tensor(ENG_DT_FLOAT, 4, ws, w);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 4, yshape, y);
    assert_int_equal(ref_conv(&a, &tx, &tw, NULL, &ty), 0);
    RT_CLOSE(y, want, yshape[2] * yshape[3]);
}

static void doc_examples(void **state)
{
    (void)state;
    const int64_t p0[4] = {0, 0, 0, 0}, p1[4] = {1, 1, 1, 1};
    const float with_pad[] = {12,  21, 27, 33,  24,  33,  54,  63, 72,  51,  63,  99, 108,
                              117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84};
    const float without_pad[] = {54, 63, 72, 99, 108, 117, 144, 153, 162};
    const float strided_pad[] = {12, 27, 24, 63, 108, 81, 72, 117, 84};
    const float strided_nopad[] = {54, 72, 144, 162};
    run_doc_case(p1, 1, (const int64_t[]){1, 1, 5, 5}, with_pad);
    run_doc_case(p0, 1, (const int64_t[]){1, 1, 3, 3}, without_pad);
    run_doc_case(p1, 2, (const int64_t[]){1, 1, 3, 3}, strided_pad);
    run_doc_case(p0, 2, (const int64_t[]){1, 1, 2, 2}, strided_nopad);
}

/* Asymmetric pads, from the ONNX doc: x = 0..34 as 7x5, pads [1, 0, 1, 0]
 * (top, left, bottom, right), stride 2. */
static void doc_asymmetric_pads(void **state)
{
    (void)state;
    float x[35], w[9], y[8];
    for (int i = 0; i < 35; i++)
        x[i] = (float)i;
    for (int i = 0; i < 9; i++)
        w[i] = 1.0f;
    const int64_t xs[] = {1, 1, 7, 5}, ws[] = {1, 1, 3, 3}, ys[] = {1, 1, 4, 2};
    eng_conv_attrs a = {.n_spatial = 2,
                        .kernel = {3, 3},
                        .stride = {2, 2},
                        .dilation = {1, 1},
                        .pad_begin = {1, 0},
                        .pad_end = {1, 0},
                        .group = 1};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, xs, x), tw = rt_tensor(ENG_DT_FLOAT, 4, ws, w);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 4, ys, y);
    assert_int_equal(ref_conv(&a, &tx, &tw, NULL, &ty), 0);
    const float want[] = {21, 33, 99, 117, 189, 207, 171, 183};
    RT_CLOSE(y, want, 8);
}

/* ---- im2col cross-check ------------------------------------------------ */

typedef struct conv_case {
    int ns;
    int64_t n, c, m, g;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3];
    bool bias;
} conv_case;

static int64_t prod(int n, const int64_t *v)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        p *= v[i];
    return p;
}

/* Splits a row-major flat index into coordinates over dims[n]. */
static void unflatten(int64_t flat, int n, const int64_t *dims, int64_t *coord)
{
    for (int i = n - 1; i >= 0; i--) {
        coord[i] = flat % dims[i];
        flat /= dims[i];
    }
}

/* For each image and group: col[(ci, tap), out_pos] holds the input value
 * each tap sees (0 in padding), then y = W_g x col + bias. */
static void conv_im2col(const conv_case *cc, const int64_t *out, const float *x, const float *w,
                        const float *b, float *y)
{
    const int ns = cc->ns;
    const int64_t in_sp = prod(ns, cc->in), k_sp = prod(ns, cc->k), out_sp = prod(ns, out);
    const int64_t cg = cc->c / cc->g, mg = cc->m / cc->g, rows = cg * k_sp;
    double *col = calloc((size_t)(rows * out_sp), sizeof(*col));
    assert_non_null(col);
    for (int64_t n = 0; n < cc->n; n++) {
        for (int64_t g = 0; g < cc->g; g++) {
            for (int64_t r = 0; r < rows; r++) {
                int64_t ci = r / k_sp, kc[3], oc[3];
                unflatten(r % k_sp, ns, cc->k, kc);
                for (int64_t o = 0; o < out_sp; o++) {
                    unflatten(o, ns, out, oc);
                    int64_t flat = 0;
                    bool inside = true;
                    for (int d = 0; d < ns; d++) {
                        int64_t pos = oc[d] * cc->s[d] - cc->pb[d] + kc[d] * cc->d[d];
                        if (pos < 0 || pos >= cc->in[d]) inside = false;
                        flat = flat * cc->in[d] + pos;
                    }
                    col[r * out_sp + o] =
                        inside ? x[(n * cc->c + g * cg + ci) * in_sp + flat] : 0.0;
                }
            }
            for (int64_t mo = 0; mo < mg; mo++) {
                int64_t oc = g * mg + mo;
                for (int64_t o = 0; o < out_sp; o++) {
                    double acc = b ? b[oc] : 0.0;
                    for (int64_t r = 0; r < rows; r++)
                        acc += w[oc * rows + r] * col[r * out_sp + o];
                    y[(n * cc->m + oc) * out_sp + o] = (float)acc;
                }
            }
        }
    }
    free(col);
}

/* Runs one case through both formulations; returns false (and skips) when
 * the dilated kernel does not fit in the padded input. */
static bool check_case(const conv_case *cc, rt_rng *rng)
{
    const int ns = cc->ns;
    int64_t out[3];
    for (int d = 0; d < ns; d++) {
        int64_t span = cc->in[d] + cc->pb[d] + cc->pe[d] - (cc->d[d] * (cc->k[d] - 1) + 1);
        if (span < 0) return false;
        out[d] = span / cc->s[d] + 1;
    }
    int64_t xs[5] = {cc->n, cc->c}, ws[5] = {cc->m, cc->c / cc->g}, ys[5] = {cc->n, cc->m},
            bs[1] = {cc->m};
    eng_conv_attrs a = {.n_spatial = ns, .group = cc->g};
    for (int d = 0; d < ns; d++) {
        xs[2 + d] = cc->in[d];
        ws[2 + d] = cc->k[d];
        ys[2 + d] = out[d];
        a.kernel[d] = cc->k[d];
        a.stride[d] = cc->s[d];
        a.dilation[d] = cc->d[d];
        a.pad_begin[d] = cc->pb[d];
        a.pad_end[d] = cc->pe[d];
    }
    const int64_t nx = prod(ns + 2, xs), nw = prod(ns + 2, ws), ny = prod(ns + 2, ys);
    float *x = rt_random_floats(rng, nx), *w = rt_random_floats(rng, nw);
    float *b = cc->bias ? rt_random_floats(rng, cc->m) : NULL;
    float *y = calloc((size_t)ny, sizeof(*y)), *want = calloc((size_t)ny, sizeof(*want));
    assert_true(y && want);
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, ns + 2, xs, x),
               tw = rt_tensor(ENG_DT_FLOAT, ns + 2, ws, w);
    eng_tensor tb = rt_tensor(ENG_DT_FLOAT, 1, bs, b), ty = rt_tensor(ENG_DT_FLOAT, ns + 2, ys, y);
    assert_int_equal(ref_conv(&a, &tx, &tw, b ? &tb : NULL, &ty), 0);
    conv_im2col(cc, out, x, w, b, want);
    RT_CLOSE(y, want, ny);
    free(x);
    free(w);
    free(b);
    free(y);
    free(want);
    return true;
}

static void named_cases(void **state)
{
    (void)state;
    rt_rng rng = {0x1234567ULL};
    const conv_case cases[] = {
        /* depthwise 3x3, stride 2, asymmetric pads */
        {2, 2, 4, 4, 4, {7, 6}, {3, 3}, {2, 2}, {1, 1}, {1, 0}, {0, 2}, true},
        /* depthwise with channel multiplier 2 */
        {2, 1, 3, 6, 3, {5, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, false},
        /* 1-D, dilation 2, odd everything */
        {1, 1, 3, 5, 1, {11}, {3}, {1}, {2}, {2}, {1}, true},
        /* 3-D, two groups, stride 2 on one dim */
        {3, 1, 4, 6, 2, {4, 5, 3}, {2, 3, 1}, {1, 2, 1}, {1, 1, 1}, {0, 1, 0}, {1, 1, 0}, true},
        /* 1x1 convolution (pointwise) */
        {2, 2, 5, 3, 1, {3, 4}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, true},
        /* kernel as large as the padded input */
        {2, 1, 2, 2, 1, {3, 3}, {5, 5}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, false},
        /* stride larger than the kernel */
        {2, 1, 2, 3, 1, {9, 8}, {2, 2}, {3, 4}, {1, 1}, {0, 0}, {0, 0}, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_true(check_case(&cases[i], &rng));
}

static void random_cases(void **state)
{
    (void)state;
    rt_rng rng = {0xC0FFEEULL};
    int ran = 0;
    for (int iter = 0; iter < 300 && ran < 120; iter++) {
        conv_case cc = {0};
        cc.ns = (int)rt_int(&rng, 1, 3);
        cc.n = rt_int(&rng, 1, 2);
        switch (rt_int(&rng, 0, 2)) {
        case 0:
            cc.g = 1;
            break;
        case 1:
            cc.g = rt_int(&rng, 2, 3);
            break;
        default:
            cc.g = rt_int(&rng, 2, 4);
            break; /* depthwise below */
        }
        cc.c = cc.g * rt_int(&rng, 1, 3);
        cc.m = cc.g * rt_int(&rng, 1, 3);
        if (iter % 3 == 2) cc.c = cc.g; /* depthwise: one input channel per group */
        int64_t max_in = cc.ns == 3 ? 5 : 9;
        for (int d = 0; d < cc.ns; d++) {
            cc.in[d] = rt_int(&rng, 1, max_in);
            cc.k[d] = rt_int(&rng, 1, 3);
            cc.s[d] = rt_int(&rng, 1, 3);
            cc.d[d] = rt_int(&rng, 1, 2);
            cc.pb[d] = rt_int(&rng, 0, 2);
            cc.pe[d] = rt_int(&rng, 0, 2);
        }
        cc.bias = rt_int(&rng, 0, 1);
        if (check_case(&cc, &rng)) ran++;
    }
    assert_true(ran >= 100);
}

static void rejects_bad_input(void **state)
{
    (void)state;
    float x[16] = {0}, w[9] = {0}, y[4];
    const int64_t xs[] = {1, 1, 4, 4}, ws[] = {1, 1, 3, 3}, ys[] = {1, 1, 2, 2},
                  bad_ys[] = {1, 1, 3, 2}, ws_c2[] = {1, 2, 3, 3};
    eng_conv_attrs a = {
        .n_spatial = 2, .kernel = {3, 3}, .stride = {1, 1}, .dilation = {1, 1}, .group = 1};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, xs, x), tw = rt_tensor(ENG_DT_FLOAT, 4, ws, w);
    eng_tensor ty = rt_tensor(ENG_DT_FLOAT, 4, ys, y);
    assert_int_equal(ref_conv(&a, &tx, &tw, NULL, &ty), 0);
    eng_tensor tbad = rt_tensor(ENG_DT_FLOAT, 4, bad_ys, y);
    assert_int_equal(ref_conv(&a, &tx, &tw, NULL, &tbad), ROUSE_EMISMATCH);
    eng_tensor tw2 = rt_tensor(ENG_DT_FLOAT, 4, ws_c2, w);
    assert_int_equal(ref_conv(&a, &tx, &tw2, NULL, &ty), ROUSE_EMISMATCH);
    eng_tensor td = rt_tensor(ENG_DT_DOUBLE, 4, xs, x);
    assert_int_equal(ref_conv(&a, &td, &tw, NULL, &ty), ROUSE_EUNSUPPORTED);
    a.stride[0] = 0;
    assert_int_equal(ref_conv(&a, &tx, &tw, NULL, &ty), ROUSE_EINVAL);
}

/* ResNet's first layer (3 -> 64 channels, 7x7, stride 2, pad 3 on 224x224)
 * must stay cheap enough to run whole networks through the reference. */
static void resnet_stem_is_fast(void **state)
{
    (void)state;
    rt_rng rng = {42};
    const int64_t xs[] = {1, 3, 224, 224}, ws[] = {64, 3, 7, 7}, ys[] = {1, 64, 112, 112},
                  bs[] = {64};
    float *x = rt_random_floats(&rng, 3 * 224 * 224), *w = rt_random_floats(&rng, 64 * 3 * 49);
    float *b = rt_random_floats(&rng, 64), *y = malloc(64 * 112 * 112 * sizeof(float));
    assert_non_null(y);
    eng_conv_attrs a = {.n_spatial = 2,
                        .kernel = {7, 7},
                        .stride = {2, 2},
                        .dilation = {1, 1},
                        .pad_begin = {3, 3},
                        .pad_end = {3, 3},
                        .group = 1};
    eng_tensor tx = rt_tensor(ENG_DT_FLOAT, 4, xs, x), tw = rt_tensor(ENG_DT_FLOAT, 4, ws, w);
    eng_tensor tb = rt_tensor(ENG_DT_FLOAT, 1, bs, b), ty = rt_tensor(ENG_DT_FLOAT, 4, ys, y);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ref_conv(&a, &tx, &tw, &tb, &ty), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    print_message("stem conv: %.3f s\n", secs);
    /* Generous enough for sanitizer builds on a loaded machine. */
    assert_true(secs < 20.0);
    /* Spot-check one interior output against a direct sum. */
    double acc = b[5];
    for (int c = 0; c < 3; c++)
        for (int kh = 0; kh < 7; kh++)
            for (int kw = 0; kw < 7; kw++)
                acc += (double)w[((5 * 3 + c) * 7 + kh) * 7 + kw] *
                       x[(c * 224 + (40 * 2 - 3 + kh)) * 224 + (50 * 2 - 3 + kw)];
    float want = (float)acc;
    RT_CLOSE(&y[(5 * 112 + 40) * 112 + 50], &want, 1);
    free(x);
    free(w);
    free(b);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(doc_examples),      cmocka_unit_test(doc_asymmetric_pads),
        cmocka_unit_test(named_cases),       cmocka_unit_test(random_cases),
        cmocka_unit_test(rejects_bad_input), cmocka_unit_test(resnet_stem_is_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
