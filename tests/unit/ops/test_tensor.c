/*
 * The data-movement ops that predate the families (ops/tensor.c):
 * Flatten, Reshape, Transpose, Concat, Identity, Dropout, Gather,
 * Unsqueeze and Squeeze, against hand-computed values, Gather's index
 * checks at run time, and the checks on records a plan could carry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ops_test.h"

static const int32_t six[6] = {1, 2, 3, 4, 5, 6};

static void reshape_flatten_and_views(void **state)
{
    (void)state;
    ot_node t;
    static const int64_t shape[2] = {3, -1};
    eng_tensor x = ot_tensor(ENG_DT_INT32, 2, (int64_t[]){2, 3}, six);
    eng_tensor s = ot_tensor(ENG_DT_INT64, 1, (int64_t[]){2}, shape);
    const eng_tensor *in[2] = {&x, &s};
    ot_init(&t, ENG_OP_RESHAPE, 14, 2, 1);
    onnx_attr none[1] = {{0}};
    assert_int_equal(ot_parse(&t, none), 0);
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    assert_int_equal(t.out[0].shape[0], 3);
    assert_int_equal(t.out[0].shape[1], 2);
    assert_memory_equal(t.out[0].data, six, sizeof(six));
    ot_fini(&t);
    s.data = NULL;
    assert_int_equal(ot_run(&t, in), ROUSE_EUNSUPPORTED);
    ot_fini(&t);
    t.n.attrs.reshape.allowzero = 2;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);

    ot_init(&t, ENG_OP_FLATTEN, 13, 1, 1);
    onnx_attr ax0[2] = {AT_INT("axis", 0), {0}};
    assert_int_equal(ot_parse(&t, ax0), 0);
    const eng_tensor *inf[1] = {&x};
    if (ot_run(&t, inf) < 0) fail_msg("%s", t.eb.msg);
    assert_int_equal(t.out[0].shape[0], 1);
    assert_int_equal(t.out[0].shape[1], 6);
    ot_fini(&t);

    ot_init(&t, ENG_OP_IDENTITY, 13, 1, 1);
    if (ot_run(&t, inf) < 0) fail_msg("%s", t.eb.msg);
    assert_memory_equal(t.out[0].data, six, sizeof(six));
    ot_fini(&t);
}

static void transpose_and_concat(void **state)
{
    (void)state;
    ot_node t;
    eng_tensor x = ot_tensor(ENG_DT_INT32, 2, (int64_t[]){2, 3}, six);
    const eng_tensor *in[1] = {&x};
    ot_init(&t, ENG_OP_TRANSPOSE, 13, 1, 1);
    onnx_attr none[1] = {{0}};
    assert_int_equal(ot_parse(&t, none), 0);
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    static const int32_t want[6] = {1, 4, 2, 5, 3, 6};
    assert_memory_equal(t.out[0].data, want, sizeof(want));
    ot_fini(&t);
    onnx_attr dup[2] = {AT_INTS("perm", 0, 0), {0}};
    assert_int_equal(ot_parse(&t, dup), ROUSE_EFORMAT);
    assert_string_equal(t.eb.msg, "node 't' (Transpose): attribute 'perm' is not a permutation");
    t.n.attrs.transpose.n_perm = 9;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);

    ot_init(&t, ENG_OP_CONCAT, 13, 2, 1);
    assert_int_equal(ot_parse(&t, none), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "attribute 'axis' is required"));
    onnx_attr ax[2] = {AT_INT("axis", -1), {0}};
    assert_int_equal(ot_parse(&t, ax), 0);
    const eng_tensor *in2[2] = {&x, &x};
    if (ot_run(&t, in2) < 0) fail_msg("%s", t.eb.msg);
    assert_int_equal(t.out[0].shape[1], 6);
    static const int32_t cat[12] = {1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6};
    assert_memory_equal(t.out[0].data, cat, sizeof(cat));
    ot_fini(&t);
    eng_tensor y = ot_tensor(ENG_DT_INT32, 2, (int64_t[]){3, 2}, six);
    const eng_tensor *bad[2] = {&x, &y};
    assert_int_equal(ot_run(&t, bad), ROUSE_EMISMATCH);
    assert_non_null(strstr(t.eb.msg, "input 'inputs[1]' [3, 2] does not match"));
    ot_fini(&t);
}

static void gather_checks_every_index(void **state)
{
    (void)state;
    ot_node t;
    eng_tensor x = ot_tensor(ENG_DT_INT32, 2, (int64_t[]){2, 3}, six);
    static const int64_t idx[2] = {2, -3};
    eng_tensor ti = ot_tensor(ENG_DT_INT64, 1, (int64_t[]){2}, idx);
    const eng_tensor *in[2] = {&x, &ti};
    ot_init(&t, ENG_OP_GATHER, 13, 2, 1);
    onnx_attr ax[2] = {AT_INT("axis", 1), {0}};
    assert_int_equal(ot_parse(&t, ax), 0);
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    static const int32_t want[4] = {3, 1, 6, 4};
    assert_memory_equal(t.out[0].data, want, sizeof(want));
    ot_fini(&t);
    static const int64_t out_of_range[2] = {0, 3};
    ti.data = (void *)out_of_range;
    assert_int_equal(ot_run(&t, in), ROUSE_ERANGE);
    assert_string_equal(t.eb.msg, "node 't' (Gather): index 3 of input 'indices' is out of range "
                                  "for axis 1 of input 'data' (size 3)");
    ot_fini(&t);
    ti.dtype = ENG_DT_FLOAT;
    assert_int_equal(ot_run(&t, in), ROUSE_EMISMATCH);
    ot_fini(&t);
}

static void unsqueeze_squeeze_and_dropout(void **state)
{
    (void)state;
    ot_node t;
    eng_tensor x = ot_tensor(ENG_DT_INT32, 2, (int64_t[]){1, 6}, six);
    const eng_tensor *in[1] = {&x};
    ot_init(&t, ENG_OP_UNSQUEEZE, 11, 1, 1);
    onnx_attr axes[2] = {AT_INTS("axes", -1, 0), {0}};
    assert_int_equal(ot_parse(&t, axes), 0);
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    assert_int_equal(t.out[0].rank, 4);
    assert_int_equal(t.out[0].shape[0], 1);
    assert_int_equal(t.out[0].shape[2], 6);
    assert_int_equal(t.out[0].shape[3], 1);
    ot_fini(&t);
    t.n.opset = 10; /* negative axes arrived in opset 11 */
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "must not be negative before opset 11"));
    onnx_attr none[1] = {{0}};
    assert_int_equal(ot_parse(&t, none), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "'axes' is required"));

    /* Squeeze-13: axes from input 1, which shapes depend on. */
    ot_init(&t, ENG_OP_SQUEEZE, 13, 2, 1);
    assert_int_equal(ot_parse(&t, none), 0);
    static const int64_t ax0[1] = {0}, ax1[1] = {1};
    eng_tensor ta = ot_tensor(ENG_DT_INT64, 1, (int64_t[]){1}, ax0);
    const eng_tensor *in2[2] = {&x, &ta};
    if (ot_run(&t, in2) < 0) fail_msg("%s", t.eb.msg);
    assert_int_equal(t.out[0].rank, 1);
    ot_fini(&t);
    ta.data = (void *)ax1;
    assert_int_equal(ot_run(&t, in2), ROUSE_EMISMATCH);
    assert_non_null(strstr(t.eb.msg, "cannot squeeze axis 1"));
    ot_fini(&t);
    t.n.attrs.axes.n_axes = 2; /* the attribute form in an opset-13 record */
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);

    /* Dropout in inference: a copy, the mask all true. */
    ot_init(&t, ENG_OP_DROPOUT, 13, 1, 2);
    assert_int_equal(ot_parse(&t, none), 0);
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    assert_memory_equal(t.out[0].data, six, sizeof(six));
    assert_int_equal(t.out[1].dtype, ENG_DT_BOOL);
    assert_int_equal(((uint8_t *)t.out[1].data)[5], 1);
    ot_fini(&t);
    ot_init(&t, ENG_OP_DROPOUT, 10, 1, 1);
    onnx_attr r1[2] = {AT_FLOAT("ratio", 1.0f), {0}};
    assert_int_equal(ot_parse(&t, r1), ROUSE_EFORMAT);
    assert_non_null(strstr(t.eb.msg, "attribute 'ratio' must be in [0, 1)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reshape_flatten_and_views),
        cmocka_unit_test(transpose_and_concat),
        cmocka_unit_test(gather_checks_every_index),
        cmocka_unit_test(unsqueeze_squeeze_and_dropout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
