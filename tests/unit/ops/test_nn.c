/*
 * The neural-network core ops (ops/nn.c): Conv, Gemm, MatMul, the pools,
 * BatchNormalization, Softmax and ReduceMean, against hand-computed
 * values, and their checks on records a plan could carry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "ops_test.h"

static const float one_to_nine[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

static void expect_floats(const eng_tensor *t, const float *want, int n)
{
    assert_int_equal(eng_tensor_numel(t), n);
    for (int i = 0; i < n; i++)
        if (fabsf(((const float *)t->data)[i] - want[i]) > 1e-5f)
            fail_msg("element %d: %g, expected %g", i, (double)((const float *)t->data)[i],
                     (double)want[i]);
}

/* kernel_shape absent: 2x2 from the weight; pads absent. */
static void conv_takes_its_kernel_from_the_weight(void **state)
{
    (void)state;
    ot_node t;
    ot_init(&t, ENG_OP_CONV, 13, 2, 1);
    onnx_attr none[1] = {{0}};
    assert_int_equal(ot_parse(&t, none), 0);
    static const float w[4] = {1, 1, 1, 1};
    eng_tensor x = ot_tensor(ENG_DT_FLOAT, 4, (int64_t[]){1, 1, 3, 3}, one_to_nine);
    eng_tensor wt = ot_tensor(ENG_DT_FLOAT, 4, (int64_t[]){1, 1, 2, 2}, w);
    const eng_tensor *in[2] = {&x, &wt};
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    expect_floats(&t.out[0], (const float[]){12, 16, 24, 28}, 4);
    ot_fini(&t);

    /* pads without kernel_shape: the plan reader once refused this record. */
    ot_init(&t, ENG_OP_CONV, 13, 2, 1);
    onnx_attr pads[2] = {AT_INTS("pads", 1, 1, 1, 1), {0}};
    assert_int_equal(ot_parse(&t, pads), 0);
    assert_int_equal(t.n.attrs.conv.n_spatial, 2);
    assert_int_equal(t.n.attrs.conv.kernel[0], 0);
    assert_int_equal(ot_check(&t), 0);
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    assert_int_equal(t.out[0].shape[2], 4);
    /* Corner: only x[0][0] = 1 under the window. */
    assert_true(fabsf(((float *)t.out[0].data)[0] - 1.0f) < 1e-6f);
    ot_fini(&t);
}

static void conv_checks_its_stored_record(void **state)
{
    (void)state;
    ot_node t;
    ot_init(&t, ENG_OP_CONV, 13, 2, 1);
    onnx_attr none[1] = {{0}};
    assert_int_equal(ot_parse(&t, none), 0);
    t.n.attrs.conv.stride[1] = 0;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
    assert_string_equal(t.eb.msg, "node 't' (Conv): attribute 'strides' has invalid value 0 at "
                                  "index 1 (must be >= 1)");
    t.n.attrs.conv.stride[1] = 1;
    t.n.attrs.conv.pad_end[0] = -1;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "'pads' has invalid value -1"));
    t.n.attrs.conv.pad_end[0] = 0;
    t.n.attrs.conv.group = 0;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "'group' must be >= 1, got 0"));
    t.n.attrs.conv.group = 1;
    t.n.attrs.conv.auto_pad = 9;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
    t.n.attrs.conv.auto_pad = 0;
    t.n.attrs.conv.n_spatial = 4;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
    t.n.attrs.conv.n_spatial = 0;
    t.n.attrs.conv.kernel[2] = (int64_t)1 << 40;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);

    /* From the model: an explicit kernel of 0 is not "absent". */
    ot_init(&t, ENG_OP_CONV, 13, 2, 1);
    onnx_attr k0[2] = {AT_INTS("kernel_shape", 3, 0), {0}};
    assert_int_equal(ot_parse(&t, k0), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "'kernel_shape' has invalid value 0 at index 1"));
    onnx_attr ap[2] = {AT_STR("auto_pad", "SAME"), {0}};
    assert_int_equal(ot_parse(&t, ap), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "'auto_pad' has unknown value 'SAME'"));
}

static void gemm_with_transposes_alpha_and_beta(void **state)
{
    (void)state;
    ot_node t;
    ot_init(&t, ENG_OP_GEMM, 13, 3, 1);
    onnx_attr a[4] = {AT_INT("transB", 1), AT_FLOAT("alpha", 2.0f), AT_FLOAT("beta", 0.5f), {0}};
    assert_int_equal(ot_parse(&t, a), 0);
    /* A [2x2] = [[1,2],[3,4]], B^T = [[1,0],[1,1]] so B = [[1,1],[0,1]], C [2] = [10, 20]. */
    static const float A[4] = {1, 2, 3, 4}, Bt[4] = {1, 0, 1, 1}, C[2] = {10, 20};
    eng_tensor ta = ot_tensor(ENG_DT_FLOAT, 2, (int64_t[]){2, 2}, A);
    eng_tensor tb = ot_tensor(ENG_DT_FLOAT, 2, (int64_t[]){2, 2}, Bt);
    eng_tensor tc = ot_tensor(ENG_DT_FLOAT, 1, (int64_t[]){2}, C);
    const eng_tensor *in[3] = {&ta, &tb, &tc};
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    /* A*B = [[1,3],[3,7]]; 2*AB + 0.5*C = [[7,16],[11,24]]. */
    expect_floats(&t.out[0], (const float[]){7, 16, 11, 24}, 4);
    ot_fini(&t);

    tb.shape[1] = 3;
    assert_int_equal(ot_run(&t, in), ROUSE_EMISMATCH);
    assert_non_null(strstr(t.eb.msg, "node 't' (Gemm): input 'A' [2, 2] has inner dim 2"));
    ot_fini(&t);
    t.n.attrs.gemm.trans_a = 2;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
    t.n.attrs.gemm.trans_a = 0;
    t.n.attrs.gemm.alpha = INFINITY;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "'alpha' must be finite"));
}

static void matmul_promotes_vectors_and_counts_macs(void **state)
{
    (void)state;
    ot_node t;
    ot_init(&t, ENG_OP_MATMUL, 13, 2, 1);
    static const float v[3] = {1, 2, 3}, m[6] = {1, 0, 0, 1, 1, 1};
    eng_tensor tv = ot_tensor(ENG_DT_FLOAT, 1, (int64_t[]){3}, v);
    eng_tensor tm = ot_tensor(ENG_DT_FLOAT, 2, (int64_t[]){3, 2}, m);
    const eng_tensor *in[2] = {&tv, &tm};
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    assert_int_equal(t.out[0].rank, 1);
    expect_floats(&t.out[0], (const float[]){4, 5}, 2);
    const eng_op_desc *d = eng_op_desc_get(ENG_OP_MATMUL);
    assert_int_equal(d->macs(&t.n, &t.n.attrs, in, t.out), 6);
    ot_fini(&t);

    /* Integer MatMul wraps; mixed types are refused. */
    static const int32_t a32[2] = {3, 4}, b32[2] = {5, 6};
    eng_tensor ta = ot_tensor(ENG_DT_INT32, 2, (int64_t[]){1, 2}, a32);
    eng_tensor tb = ot_tensor(ENG_DT_INT32, 2, (int64_t[]){2, 1}, b32);
    const eng_tensor *ini[2] = {&ta, &tb};
    if (ot_run(&t, ini) < 0) fail_msg("%s", t.eb.msg);
    assert_int_equal(((int32_t *)t.out[0].data)[0], 39);
    ot_fini(&t);
    tb.dtype = ENG_DT_INT64;
    assert_int_equal(ot_run(&t, ini), ROUSE_EMISMATCH);
    ot_fini(&t);
    ta.dtype = tb.dtype = ENG_DT_INT8;
    assert_int_equal(ot_run(&t, ini), ROUSE_EUNSUPPORTED);
    assert_non_null(strstr(t.eb.msg, "element type int8 of input 'A' is not supported"));
    ot_fini(&t);
}

static void pools_with_pads_indices_and_ceil_mode(void **state)
{
    (void)state;
    ot_node t;
    eng_tensor x = ot_tensor(ENG_DT_FLOAT, 4, (int64_t[]){1, 1, 3, 3}, one_to_nine);
    const eng_tensor *in[1] = {&x};

    ot_init(&t, ENG_OP_MAXPOOL, 12, 1, 2);
    onnx_attr mp[3] = {AT_INTS("kernel_shape", 2, 2), AT_INTS("strides", 2, 2), {0}};
    assert_int_equal(ot_parse(&t, mp), 0);
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    expect_floats(&t.out[0], (const float[]){5}, 1);
    assert_int_equal(((int64_t *)t.out[1].data)[0], 4);
    ot_fini(&t);

    onnx_attr mpc[4] = {
        AT_INTS("kernel_shape", 2, 2), AT_INTS("strides", 2, 2), AT_INT("ceil_mode", 1), {0}};
    assert_int_equal(ot_parse(&t, mpc), 0);
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    expect_floats(&t.out[0], (const float[]){5, 6, 8, 9}, 4);
    ot_fini(&t);

    ot_init(&t, ENG_OP_AVGPOOL, 12, 1, 1);
    onnx_attr ap[4] = {AT_INTS("kernel_shape", 2, 2),
                       AT_INTS("pads", 1, 1, 0, 0),
                       AT_INT("count_include_pad", 1),
                       {0}};
    assert_int_equal(ot_parse(&t, ap), 0);
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    /* Corner window: x[0][0] = 1 and three pads, counted: 1/4. */
    assert_int_equal(t.out[0].shape[2], 3);
    assert_true(fabsf(((float *)t.out[0].data)[0] - 0.25f) < 1e-6f);
    ot_fini(&t);

    /* A pool needs its kernel: absent in the model, or 0 in a record. */
    onnx_attr none[1] = {{0}};
    assert_int_equal(ot_parse(&t, none), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "'kernel_shape' is required"));
    assert_int_equal(ot_parse(&t, ap), 0);
    t.n.attrs.pool.kernel[0] = 0;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
    t.n.attrs.pool.kernel[0] = 2;
    t.n.attrs.pool.ceil_mode = 3;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "'ceil_mode' must be 0 or 1, got 3"));

    ot_init(&t, ENG_OP_GLOBAL_AVGPOOL, 13, 1, 1);
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    expect_floats(&t.out[0], (const float[]){5}, 1);
    ot_fini(&t);
}

static void batchnorm_softmax_and_reduce_mean(void **state)
{
    (void)state;
    ot_node t;
    ot_init(&t, ENG_OP_BATCHNORM, 15, 5, 1);
    onnx_attr eps[2] = {AT_FLOAT("epsilon", 0.0f), {0}};
    assert_int_equal(ot_parse(&t, eps), 0);
    static const float x[4] = {1, 2, 3, 4}, sc[2] = {2, 1}, b[2] = {0, 1}, mean[2] = {1, 3},
                       var[2] = {4, 1};
    eng_tensor tx = ot_tensor(ENG_DT_FLOAT, 3, (int64_t[]){1, 2, 2}, x);
    eng_tensor ts = ot_tensor(ENG_DT_FLOAT, 1, (int64_t[]){2}, sc);
    eng_tensor tb = ot_tensor(ENG_DT_FLOAT, 1, (int64_t[]){2}, b);
    eng_tensor tm = ot_tensor(ENG_DT_FLOAT, 1, (int64_t[]){2}, mean);
    eng_tensor tv = ot_tensor(ENG_DT_FLOAT, 1, (int64_t[]){2}, var);
    const eng_tensor *in[5] = {&tx, &ts, &tb, &tm, &tv};
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    /* channel 0: 2*(x-1)/2 = {0, 1}; channel 1: (x-3)/1 + 1 = {1, 2}. */
    expect_floats(&t.out[0], (const float[]){0, 1, 1, 2}, 4);
    ot_fini(&t);
    t.n.attrs.bn.epsilon = -1;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
    onnx_attr train[2] = {AT_INT("training_mode", 1), {0}};
    assert_int_equal(ot_parse(&t, train), ROUSE_EUNSUPPORTED);

    ot_init(&t, ENG_OP_SOFTMAX, 13, 1, 1);
    onnx_attr none[1] = {{0}};
    assert_int_equal(ot_parse(&t, none), 0);
    static const float s[2] = {0, 0};
    eng_tensor tsm = ot_tensor(ENG_DT_FLOAT, 2, (int64_t[]){1, 2}, s);
    const eng_tensor *ins[1] = {&tsm};
    if (ot_run(&t, ins) < 0) fail_msg("%s", t.eb.msg);
    expect_floats(&t.out[0], (const float[]){0.5f, 0.5f}, 2);
    ot_fini(&t);
    onnx_attr ax[2] = {AT_INT("axis", 2), {0}};
    assert_int_equal(ot_parse(&t, ax), 0);
    assert_int_equal(ot_run(&t, ins), ROUSE_EMISMATCH);
    assert_non_null(strstr(t.eb.msg, "axis 2 is out of range"));
    ot_fini(&t);

    ot_init(&t, ENG_OP_REDUCE_MEAN, 13, 1, 1);
    onnx_attr rm[3] = {AT_INTS("axes", -1), AT_INT("keepdims", 0), {0}};
    assert_int_equal(ot_parse(&t, rm), 0);
    eng_tensor tr = ot_tensor(ENG_DT_FLOAT, 2, (int64_t[]){3, 3}, one_to_nine);
    const eng_tensor *inr[1] = {&tr};
    if (ot_run(&t, inr) < 0) fail_msg("%s", t.eb.msg);
    assert_int_equal(t.out[0].rank, 1);
    expect_floats(&t.out[0], (const float[]){2, 5, 8}, 3);
    ot_fini(&t);
    t.n.attrs.axes.keepdims = 5;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_takes_its_kernel_from_the_weight),
        cmocka_unit_test(conv_checks_its_stored_record),
        cmocka_unit_test(gemm_with_transposes_alpha_and_beta),
        cmocka_unit_test(matmul_promotes_vectors_and_counts_macs),
        cmocka_unit_test(pools_with_pads_indices_and_ceil_mode),
        cmocka_unit_test(batchnorm_softmax_and_reduce_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
