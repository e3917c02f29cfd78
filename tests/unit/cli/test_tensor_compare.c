/* The tolerance rule of tensor_compare: |got - ref| <= atol + rtol * |ref|,
 * NaN equals NaN, integers and bools exactly, dtype and shape exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "cli/tensor_compare.h"

static rouse_tensor tensor(int dtype, const void *data, size_t nbytes, int rank, int64_t d0,
                           int64_t d1)
{
    rouse_tensor t = {.name = "t", .dtype = dtype, .rank = rank, .data = data, .nbytes = nbytes};
    t.shape[0] = d0;
    t.shape[1] = d1;
    return t;
}

static int cmp_f(const float *g, const float *r, int n, cli_compare_result *res, rouse_errbuf *eb)
{
    rouse_tensor a = tensor(ROUSE_DT_FLOAT, g, sizeof(float) * (size_t)n, 1, n, 0);
    rouse_tensor b = tensor(ROUSE_DT_FLOAT, r, sizeof(float) * (size_t)n, 1, n, 0);
    rouse_errbuf_clear(eb);
    return cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, res, eb);
}

static void float_tolerance_edges(void **state)
{
    (void)state;
    cli_compare_result res;
    rouse_errbuf eb;
    /* atol alone near zero: 1e-4 passes, 1.2e-4 fails. */
    float r0[1] = {0}, g0[1] = {0.9e-4f};
    assert_int_equal(cmp_f(g0, r0, 1, &res, &eb), 0);
    assert_true(res.max_abs > 0.89e-4 && res.max_abs < 0.91e-4);
    assert_true(res.max_rel == 0); /* ref 0 contributes no relative error */
    g0[0] = 1.2e-4f;
    assert_int_equal(cmp_f(g0, r0, 1, &res, &eb), ROUSE_EMISMATCH);
    assert_int_equal(res.first_bad, 0);

    /* rtol scales with |ref|: at 100 the bound is 1e-4 + 0.1. */
    float r1[2] = {100, -100}, g1[2] = {100.09f, -100.09f};
    assert_int_equal(cmp_f(g1, r1, 2, &res, &eb), 0);
    assert_true(fabs(res.max_rel - 0.0009) < 1e-6);
    g1[1] = -100.2f;
    assert_int_equal(cmp_f(g1, r1, 2, &res, &eb), ROUSE_EMISMATCH);
    assert_int_equal(res.n_bad, 1);
    assert_int_equal(res.first_bad, 1);
    assert_non_null(strstr(eb.msg, "1 of 2 elements"));
    assert_non_null(strstr(eb.msg, "index 1 [1]"));
    assert_non_null(strstr(eb.msg, "expected -100"));
}

static void nan_and_infinity(void **state)
{
    (void)state;
    cli_compare_result res;
    rouse_errbuf eb;
    float r[3] = {NAN, INFINITY, -INFINITY}, g[3] = {NAN, INFINITY, -INFINITY};
    assert_int_equal(cmp_f(g, r, 3, &res, &eb), 0);
    assert_true(res.max_abs == 0);
    g[0] = 1;
    assert_int_equal(cmp_f(g, r, 3, &res, &eb), ROUSE_EMISMATCH);
    g[0] = NAN;
    g[1] = 1e30f;
    assert_int_equal(cmp_f(g, r, 3, &res, &eb), ROUSE_EMISMATCH);
    g[1] = INFINITY;
    g[2] = INFINITY;
    assert_int_equal(cmp_f(g, r, 3, &res, &eb), ROUSE_EMISMATCH);
    float r2[1] = {1}, g2[1] = {NAN};
    assert_int_equal(cmp_f(g2, r2, 1, &res, &eb), ROUSE_EMISMATCH);
}

static void integers_must_be_exact(void **state)
{
    (void)state;
    cli_compare_result res;
    rouse_errbuf eb;
    const int64_t r[3] = {1, -5, INT64_MAX}, g[3] = {1, -5, INT64_MAX - 1};
    rouse_tensor a = tensor(ROUSE_DT_INT64, g, sizeof(g), 1, 3, 0);
    rouse_tensor b = tensor(ROUSE_DT_INT64, r, sizeof(r), 1, 3, 0);
    /* The doubles of INT64_MAX and INT64_MAX-1 are equal: the compare must not use them. */
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), ROUSE_EMISMATCH);
    assert_int_equal(res.first_bad, 2);
    assert_non_null(strstr(eb.msg, "got 9223372036854775806 expected 9223372036854775807"));

    const uint64_t ur[1] = {UINT64_MAX}, ug[1] = {UINT64_MAX};
    a = tensor(ROUSE_DT_UINT64, ug, sizeof(ug), 1, 1, 0);
    b = tensor(ROUSE_DT_UINT64, ur, sizeof(ur), 1, 1, 0);
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), 0);

    /* A difference an atol would forgive still fails for integers. */
    const int32_t ir[2] = {1000, 7}, ig[2] = {1000, 8};
    a = tensor(ROUSE_DT_INT32, ig, sizeof(ig), 2, 1, 2);
    b = tensor(ROUSE_DT_INT32, ir, sizeof(ir), 2, 1, 2);
    cli_tolerance loose = {.atol = 10, .rtol = 1};
    assert_int_equal(cli_tensor_compare(&a, &b, loose, &res, &eb), ROUSE_EMISMATCH);
    assert_non_null(strstr(eb.msg, "[0, 1]"));

    const uint8_t br[2] = {1, 0}, bg[2] = {1, 1};
    a = tensor(ROUSE_DT_BOOL, bg, 2, 1, 2, 0);
    b = tensor(ROUSE_DT_BOOL, br, 2, 1, 2, 0);
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), ROUSE_EMISMATCH);
    assert_non_null(strstr(eb.msg, "got true expected false"));
    a.data = br;
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), 0);

    const int8_t sr[2] = {-128, 127};
    a = tensor(ROUSE_DT_INT8, sr, 2, 1, 2, 0);
    b = tensor(ROUSE_DT_INT8, sr, 2, 1, 2, 0);
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), 0);
}

static void type_and_shape_must_match(void **state)
{
    (void)state;
    cli_compare_result res;
    rouse_errbuf eb;
    const float f[6] = {0};
    rouse_tensor a = tensor(ROUSE_DT_FLOAT, f, sizeof(f), 2, 2, 3);
    rouse_tensor b = tensor(ROUSE_DT_FLOAT, f, sizeof(f), 2, 3, 2);
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), ROUSE_EMISMATCH);
    assert_non_null(strstr(eb.msg, "shape [2, 3] differs from the reference shape [3, 2]"));
    b = tensor(ROUSE_DT_FLOAT, f, sizeof(f), 1, 6, 0);
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), ROUSE_EMISMATCH);
    b = tensor(ROUSE_DT_INT32, f, sizeof(f), 2, 2, 3);
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), ROUSE_EMISMATCH);
    assert_non_null(strstr(eb.msg, "type float differs from the reference type int32"));
    /* nbytes that disagree with the shape are a caller bug, reported as such. */
    b = tensor(ROUSE_DT_FLOAT, f, sizeof(f) - 4, 2, 2, 3);
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), ROUSE_EINVAL);
    /* Scalars compare. */
    a = tensor(ROUSE_DT_FLOAT, f, 4, 0, 0, 0);
    b = tensor(ROUSE_DT_FLOAT, f, 4, 0, 0, 0);
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), 0);
    /* Empty tensors compare. */
    a = tensor(ROUSE_DT_FLOAT, f, 0, 2, 0, 3);
    b = tensor(ROUSE_DT_FLOAT, f, 0, 2, 0, 3);
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), 0);
}

static void half_precision_and_double(void **state)
{
    (void)state;
    cli_compare_result res;
    rouse_errbuf eb;
    /* float16 1.0 = 0x3c00, 1.0009765625 = 0x3c01, 2.0 = 0x4000, subnormal 0x0001. */
    const uint16_t hr[3] = {0x3c00, 0x4000, 0x0001}, hg[3] = {0x3c01, 0x4000, 0x0001};
    rouse_tensor a = tensor(ROUSE_DT_FLOAT16, hg, sizeof(hg), 1, 3, 0);
    rouse_tensor b = tensor(ROUSE_DT_FLOAT16, hr, sizeof(hr), 1, 3, 0);
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), 0);
    assert_true(fabs(res.max_abs - 0.0009765625) < 1e-12);
    assert_true(fabs(cli_elem_as_double(ROUSE_DT_FLOAT16, hr, 2) - ldexp(1, -24)) < 1e-15);
    /* bfloat16 1.0 = 0x3f80; 1.0078125 = 0x3f81 is outside 1e-4 + 1e-3. */
    const uint16_t br[1] = {0x3f80}, bg[1] = {0x3f81};
    a = tensor(ROUSE_DT_BFLOAT16, bg, 2, 1, 1, 0);
    b = tensor(ROUSE_DT_BFLOAT16, br, 2, 1, 1, 0);
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), ROUSE_EMISMATCH);
    const double dr[1] = {1e10}, dg[1] = {1e10 + 1e6};
    a = tensor(ROUSE_DT_DOUBLE, dg, 8, 1, 1, 0);
    b = tensor(ROUSE_DT_DOUBLE, dr, 8, 1, 1, 0);
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), 0);
}

static void unaligned_data(void **state)
{
    (void)state;
    cli_compare_result res;
    rouse_errbuf eb;
    _Alignas(8) unsigned char buf[2 * sizeof(float) + 1];
    const float v[2] = {1.5f, -2.5f};
    memcpy(buf + 1, v, sizeof(v));
    rouse_tensor a = tensor(ROUSE_DT_FLOAT, buf + 1, sizeof(v), 1, 2, 0);
    rouse_tensor b = tensor(ROUSE_DT_FLOAT, v, sizeof(v), 1, 2, 0);
    assert_int_equal(cli_tensor_compare(&a, &b, CLI_TOL_DEFAULT, &res, &eb), 0);
}

static void shape_strings(void **state)
{
    (void)state;
    char buf[32];
    const int64_t s[3] = {1, 3, 224};
    assert_string_equal(cli_shape_str(3, s, buf, sizeof(buf)), "[1, 3, 224]");
    assert_string_equal(cli_shape_str(0, s, buf, sizeof(buf)), "[]");
    char tiny[5];
    cli_shape_str(3, s, tiny, sizeof(tiny));
    assert_int_equal(strlen(tiny), 4); /* truncated, still terminated */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(float_tolerance_edges),
        cmocka_unit_test(nan_and_infinity),
        cmocka_unit_test(integers_must_be_exact),
        cmocka_unit_test(type_and_shape_must_match),
        cmocka_unit_test(half_precision_and_double),
        cmocka_unit_test(unaligned_data),
        cmocka_unit_test(shape_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
