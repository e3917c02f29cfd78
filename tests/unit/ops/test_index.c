/*
 * The index family (ops/index.c): gathers, scatters (with their
 * reductions), OneHot, NonZero, Compress and ReverseSequence on small
 * hand-computed cases, and the run-time index checks: an index out of range
 * is a clear error, never a read or write outside a buffer.
 */
#include "shape_test.h"

/* --- GatherElements, ScatterElements ---------------------------------------- */

static void gather_elements_axes(void **state)
{
    (void)state;
    st_run r;
    eng_tensor in[2] = {st_tensor(ENG_DT_FLOAT, DIMS(2, 2), F32(1, 2, 3, 4)),
                        st_tensor(ENG_DT_INT64, DIMS(2, 2), I64(0, 0, 1, 0))};
    onnx_attr axis1[] = {A_INT("axis", 1), {0}};
    assert_int_equal(st_op(&r, ENG_OP_GATHER_ELEMENTS, 13, axis1, 2, in, 1), 0);
    const float want[] = {1, 1, 4, 3};
    ST_EQ(&r, 0, want);
    st_free(&r);

    /* Axis 0, int32 indices (some negative), indices smaller than data. */
    const int32_t d[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    eng_tensor in0[2] = {st_tensor(ENG_DT_INT32, DIMS(3, 3), d),
                         st_tensor(ENG_DT_INT32, DIMS(2, 3), I32(-1, -2, 0, -2, 0, 0))};
    assert_int_equal(st_op(&r, ENG_OP_GATHER_ELEMENTS, 13, NULL, 2, in0, 1), 0);
    const int32_t want0[] = {7, 5, 3, 4, 2, 3};
    st_assert_shape(&r, 0, ENG_DT_INT32, 2, I64(2, 3));
    ST_EQ(&r, 0, want0);
    st_free(&r);
}

static void gather_elements_errors(void **state)
{
    (void)state;
    st_run r;
    eng_tensor in[2] = {st_tensor(ENG_DT_FLOAT, DIMS(2, 2), F32(1, 2, 3, 4)),
                        st_tensor(ENG_DT_INT64, DIMS(2, 2), I64(0, 0, 2, 0))};
    onnx_attr axis1[] = {A_INT("axis", 1), {0}};
    int rc = st_op(&r, ENG_OP_GATHER_ELEMENTS, 13, axis1, 2, in, 1);
    st_assert_fails(&r, rc, 3, ROUSE_ERANGE,
                    "node 't' (GatherElements): index 2 of input 'indices' is out of range for "
                    "axis 1 of input 'data' (size 2)");
    st_free(&r);
    in[1] = st_tensor(ENG_DT_INT64, DIMS(2, 2), I64(0, 0, -3, 0));
    rc = st_op(&r, ENG_OP_GATHER_ELEMENTS, 13, axis1, 2, in, 1);
    st_assert_fails(&r, rc, 3, ROUSE_ERANGE, "index -3 of input 'indices' is out of range");
    st_free(&r);
    eng_tensor wide[2] = {in[0], st_tensor(ENG_DT_INT64, DIMS(3, 1), I64(0, 0, 0))};
    rc = st_op(&r, ENG_OP_GATHER_ELEMENTS, 13, axis1, 2, wide, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "is larger than input 'data' [2, 2] in dim 0");
    eng_tensor fidx[2] = {in[0], st_tensor(ENG_DT_FLOAT, DIMS(2, 2), F32(0, 0, 0, 0))};
    rc = st_op(&r, ENG_OP_GATHER_ELEMENTS, 13, axis1, 2, fidx, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EUNSUPPORTED, "element type float of input 'indices'");
    onnx_attr far[] = {A_INT("axis", 2), {0}};
    rc = st_op(&r, ENG_OP_GATHER_ELEMENTS, 13, far, 2, in, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "axis 2 is out of range");
}

static void scatter_elements_reductions(void **state)
{
    (void)state;
    st_run r;
    eng_tensor in[3] = {st_tensor(ENG_DT_FLOAT, DIMS(1, 5), F32(1, 2, 3, 4, 5)),
                        st_tensor(ENG_DT_INT64, DIMS(1, 2), I64(1, 3)),
                        st_tensor(ENG_DT_FLOAT, DIMS(1, 2), F32(1.1f, 2.1f))};
    onnx_attr axis1[] = {A_INT("axis", 1), {0}};
    assert_int_equal(st_op(&r, ENG_OP_SCATTER_ELEMENTS, 13, axis1, 3, in, 1), 0);
    const float want[] = {1, 1.1f, 3, 2.1f, 5};
    ST_EQ(&r, 0, want);
    st_free(&r);

    /* Duplicate indices accumulate with add and mul. */
    in[1] = st_tensor(ENG_DT_INT64, DIMS(1, 2), I64(1, -4));
    onnx_attr add[] = {A_INT("axis", 1), A_STR("reduction", "add"), {0}};
    assert_int_equal(st_op(&r, ENG_OP_SCATTER_ELEMENTS, 16, add, 3, in, 1), 0);
    const float *y = r.out[0].data;
    assert_float_equal(y[1], 2 + 1.1f + 2.1f, 1e-6);
    assert_float_equal(y[0], 1, 0);
    st_free(&r);
    eng_tensor ints[3] = {st_tensor(ENG_DT_INT64, DIMS(4), I64(1, 2, 3, 4)),
                          st_tensor(ENG_DT_INT32, DIMS(3), I32(3, 3, 0)),
                          st_tensor(ENG_DT_INT64, DIMS(3), I64(5, -2, 7))};
    onnx_attr mul[] = {A_STR("reduction", "mul"), {0}};
    assert_int_equal(st_op(&r, ENG_OP_SCATTER_ELEMENTS, 16, mul, 3, ints, 1), 0);
    const int64_t wantm[] = {7, 2, 3, -40};
    ST_EQ(&r, 0, wantm);
    st_free(&r);

    /* float16 accumulates through float. */
    eng_tensor half[3] = {st_tensor(ENG_DT_FLOAT16, DIMS(2), (const uint16_t[]){0x3c00, 0x4000}),
                          st_tensor(ENG_DT_INT64, DIMS(2), I64(0, 0)),
                          st_tensor(ENG_DT_FLOAT16, DIMS(2), (const uint16_t[]){0x3800, 0x3800})};
    onnx_attr add0[] = {A_STR("reduction", "add"), {0}};
    assert_int_equal(st_op(&r, ENG_OP_SCATTER_ELEMENTS, 16, add0, 3, half, 1), 0);
    const uint16_t wanth[] = {0x4000, 0x4000}; /* 1 + 0.5 + 0.5, 2 */
    ST_EQ(&r, 0, wanth);
    st_free(&r);
}

static void scatter_elements_errors(void **state)
{
    (void)state;
    st_run r;
    eng_tensor in[3] = {st_tensor(ENG_DT_FLOAT, DIMS(4), F32(1, 2, 3, 4)),
                        st_tensor(ENG_DT_INT64, DIMS(2), I64(0, 4)),
                        st_tensor(ENG_DT_FLOAT, DIMS(2), F32(5, 6))};
    int rc = st_op(&r, ENG_OP_SCATTER_ELEMENTS, 13, NULL, 3, in, 1);
    st_assert_fails(
        &r, rc, 3, ROUSE_ERANGE,
        "index 4 of input 'indices' is out of range for axis 0 of input 'data' (size 4)");
    st_free(&r);
    eng_tensor shape[3] = {in[0], in[1], st_tensor(ENG_DT_FLOAT, DIMS(1), F32(5))};
    rc = st_op(&r, ENG_OP_SCATTER_ELEMENTS, 13, NULL, 3, shape, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH,
                    "input 'updates' [1] must have the shape of input 'indices' [2]");
    eng_tensor type[3] = {in[0], in[1], st_tensor(ENG_DT_DOUBLE, DIMS(2), (const double[]){5, 6})};
    rc = st_op(&r, ENG_OP_SCATTER_ELEMENTS, 13, NULL, 3, type, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "input 'data' is float, input 'updates' is double");
    onnx_attr max[] = {A_STR("reduction", "max"), {0}};
    rc = st_parse(&r, ENG_OP_SCATTER_ELEMENTS, 16, max, 3, 1);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT, "attribute 'reduction' has unknown value 'max'");
    assert_int_equal(st_parse(&r, ENG_OP_SCATTER_ELEMENTS, 16, NULL, 3, 1), 0);
    r.node.attrs.shape.index.reduction = 9;
    assert_int_equal(eng_op_desc_get(ENG_OP_SCATTER_ELEMENTS)->check(&r.node, &r.eb),
                     ROUSE_EFORMAT);
    assert_non_null(strstr(r.eb.msg, "attribute 'reduction' has an unknown value 9"));
}

/* --- GatherND, ScatterND ---------------------------------------------------- */

static void gather_nd_cases(void **state)
{
    (void)state;
    st_run r;
    const int32_t d[] = {0, 1, 2, 3};
    eng_tensor in[2] = {st_tensor(ENG_DT_INT32, DIMS(2, 2), d),
                        st_tensor(ENG_DT_INT64, DIMS(2, 2), I64(0, 0, 1, 1))};
    assert_int_equal(st_op(&r, ENG_OP_GATHER_ND, 13, NULL, 2, in, 1), 0);
    const int32_t elems[] = {0, 3};
    st_assert_shape(&r, 0, ENG_DT_INT32, 1, I64(2));
    ST_EQ(&r, 0, elems);
    st_free(&r);

    in[1] = st_tensor(ENG_DT_INT64, DIMS(2, 1), I64(1, -2));
    assert_int_equal(st_op(&r, ENG_OP_GATHER_ND, 13, NULL, 2, in, 1), 0);
    const int32_t rows[] = {2, 3, 0, 1};
    st_assert_shape(&r, 0, ENG_DT_INT32, 2, I64(2, 2));
    ST_EQ(&r, 0, rows);
    st_free(&r);

    /* batch_dims 1: each batch indexes its own [2, 2]. */
    const float b[] = {0, 1, 2, 3, 4, 5, 6, 7};
    eng_tensor bin[2] = {st_tensor(ENG_DT_FLOAT, DIMS(2, 2, 2), b),
                         st_tensor(ENG_DT_INT64, DIMS(2, 1), I64(1, 0))};
    onnx_attr bd[] = {A_INT("batch_dims", 1), {0}};
    assert_int_equal(st_op(&r, ENG_OP_GATHER_ND, 13, bd, 2, bin, 1), 0);
    const float wantb[] = {2, 3, 4, 5};
    st_assert_shape(&r, 0, ENG_DT_FLOAT, 2, I64(2, 2));
    ST_EQ(&r, 0, wantb);
    st_free(&r);
}

static void gather_nd_errors(void **state)
{
    (void)state;
    st_run r;
    eng_tensor in[2] = {st_tensor(ENG_DT_FLOAT, DIMS(2, 2), F32(0, 1, 2, 3)),
                        st_tensor(ENG_DT_INT64, DIMS(1, 2), I64(0, 2))};
    int rc = st_op(&r, ENG_OP_GATHER_ND, 13, NULL, 2, in, 1);
    st_assert_fails(
        &r, rc, 3, ROUSE_ERANGE,
        "index 2 of input 'indices' is out of range for dim 1 of input 'data' (size 2)");
    st_free(&r);
    eng_tensor deep[2] = {in[0], st_tensor(ENG_DT_INT64, DIMS(1, 3), I64(0, 0, 0))};
    rc = st_op(&r, ENG_OP_GATHER_ND, 13, NULL, 2, deep, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH,
                    "the last dim of input 'indices' (3) must be between 1 and 2");
    onnx_attr bd[] = {A_INT("batch_dims", 1), {0}};
    eng_tensor batch[2] = {in[0], st_tensor(ENG_DT_INT64, DIMS(3, 1), I64(0, 0, 0))};
    rc = st_op(&r, ENG_OP_GATHER_ND, 13, bd, 2, batch, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "batch dim 0 differs: 'data' 2, 'indices' 3");
    onnx_attr neg[] = {A_INT("batch_dims", -1), {0}};
    rc = st_parse(&r, ENG_OP_GATHER_ND, 13, neg, 2, 1);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT, "attribute 'batch_dims' must be between 0 and 7");
}

static void scatter_nd_cases(void **state)
{
    (void)state;
    st_run r;
    eng_tensor in[3] = {st_tensor(ENG_DT_INT32, DIMS(8), I32(1, 2, 3, 4, 5, 6, 7, 8)),
                        st_tensor(ENG_DT_INT64, DIMS(4, 1), I64(4, 3, 1, 7)),
                        st_tensor(ENG_DT_INT32, DIMS(4), I32(9, 10, 11, 12))};
    assert_int_equal(st_op(&r, ENG_OP_SCATTER_ND, 13, NULL, 3, in, 1), 0);
    const int32_t want[] = {1, 11, 3, 10, 9, 6, 7, 12};
    ST_EQ(&r, 0, want);
    st_free(&r);

    /* Slices of rows, duplicates added. */
    eng_tensor rows[3] = {st_tensor(ENG_DT_DOUBLE, DIMS(2, 2), (const double[]){1, 2, 3, 4}),
                          st_tensor(ENG_DT_INT64, DIMS(2, 1), I64(1, -1)),
                          st_tensor(ENG_DT_DOUBLE, DIMS(2, 2), (const double[]){10, 20, 30, 40})};
    onnx_attr add[] = {A_STR("reduction", "add"), {0}};
    assert_int_equal(st_op(&r, ENG_OP_SCATTER_ND, 16, add, 3, rows, 1), 0);
    const double wantr[] = {1, 2, 43, 64};
    ST_EQ(&r, 0, wantr);
    st_free(&r);

    in[1] = st_tensor(ENG_DT_INT64, DIMS(4, 1), I64(4, 3, 8, 7));
    int rc = st_op(&r, ENG_OP_SCATTER_ND, 13, NULL, 3, in, 1);
    st_assert_fails(
        &r, rc, 3, ROUSE_ERANGE,
        "index 8 of input 'indices' is out of range for dim 0 of input 'data' (size 8)");
    st_free(&r);
    eng_tensor bad[3] = {in[0], in[1], st_tensor(ENG_DT_INT32, DIMS(3), I32(9, 10, 11))};
    rc = st_op(&r, ENG_OP_SCATTER_ND, 13, NULL, 3, bad, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "input 'updates' [3] must have shape [4]");
}

/* --- OneHot ----------------------------------------------------------------- */

static void one_hot_axes(void **state)
{
    (void)state;
    st_run r;
    eng_tensor in[3] = {st_tensor(ENG_DT_INT64, DIMS(3), I64(1, -1, 5)),
                        st_tensor(ENG_DT_FLOAT, 0, NULL, F32(4)),
                        st_tensor(ENG_DT_INT32, DIMS(2), I32(2, 7))};
    assert_int_equal(st_op(&r, ENG_OP_ONE_HOT, 11, NULL, 3, in, 1), 0);
    /* 5 is outside [-4, 4): an all-off row, as the spec says. */
    const int32_t want[] = {2, 7, 2, 2, 2, 2, 2, 7, 2, 2, 2, 2};
    st_assert_shape(&r, 0, ENG_DT_INT32, 2, I64(3, 4));
    ST_EQ(&r, 0, want);
    st_free(&r);

    onnx_attr axis0[] = {A_INT("axis", 0), {0}};
    assert_int_equal(st_op(&r, ENG_OP_ONE_HOT, 11, axis0, 3, in, 1), 0);
    const int32_t want0[] = {2, 2, 2, 7, 2, 2, 2, 2, 2, 2, 7, 2};
    st_assert_shape(&r, 0, ENG_DT_INT32, 2, I64(4, 3));
    ST_EQ(&r, 0, want0);
    st_free(&r);

    /* Float indices are truncated. */
    eng_tensor fin[3] = {st_tensor(ENG_DT_FLOAT, DIMS(2), F32(0.9f, 2.5f)),
                         st_tensor(ENG_DT_INT64, DIMS(1), I64(3)),
                         st_tensor(ENG_DT_FLOAT, DIMS(2), F32(0, 1))};
    assert_int_equal(st_op(&r, ENG_OP_ONE_HOT, 11, NULL, 3, fin, 1), 0);
    const float wantf[] = {1, 0, 0, 0, 0, 1};
    ST_EQ(&r, 0, wantf);
    st_free(&r);

    eng_tensor zero[3] = {in[0], st_tensor(ENG_DT_INT64, 0, NULL, I64(0)), in[2]};
    int rc = st_op(&r, ENG_OP_ONE_HOT, 11, NULL, 3, zero, 1);
    st_assert_fails(&r, rc, 2, ROUSE_ERANGE, "input 'depth' must be at least 1, got 0");
    eng_tensor unknown[3] = {in[0], st_tensor(ENG_DT_INT64, 0, NULL, NULL), in[2]};
    rc = st_op(&r, ENG_OP_ONE_HOT, 11, NULL, 3, unknown, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EUNSUPPORTED, "input 'depth' must be known");
    eng_tensor three[3] = {in[0], in[1], st_tensor(ENG_DT_INT32, DIMS(3), I32(1, 2, 3))};
    rc = st_op(&r, ENG_OP_ONE_HOT, 11, NULL, 3, three, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "input 'values' must hold two values");
}

/* --- NonZero, Compress ------------------------------------------------------ */

static void nonzero_positions(void **state)
{
    (void)state;
    st_run r;
    eng_tensor x = st_tensor(ENG_DT_FLOAT, DIMS(2, 2), F32(1, -0.0f, 1, 3));
    assert_int_equal(st_op(&r, ENG_OP_NONZERO, 13, NULL, 1, &x, 1), 0);
    const int64_t want[] = {0, 1, 1, 0, 0, 1};
    st_assert_shape(&r, 0, ENG_DT_INT64, 2, I64(2, 3));
    ST_EQ(&r, 0, want);
    st_free(&r);

    /* The plan is specific to the values: other values are refused. */
    assert_int_equal(st_parse(&r, ENG_OP_NONZERO, 13, NULL, 1, 1), 0);
    const eng_tensor *in_p[1] = {&x};
    assert_int_equal(eng_infer_node(&r.node, in_p, r.out, &r.resolved, &r.eb), 0);
    int64_t buf[6];
    r.out[0].data = buf;
    eng_tensor other = st_tensor(ENG_DT_FLOAT, DIMS(2, 2), F32(1, 1, 1, 1));
    const eng_tensor *other_p[1] = {&other};
    eng_tensor *out_p[1] = {&r.out[0]};
    assert_int_equal(eng_ref_run_node(&r.node, &r.resolved, other_p, out_p, &r.eb),
                     ROUSE_EMISMATCH);
    assert_non_null(
        strstr(r.eb.msg, "input 'X' has 4 non-zero elements, the model was prepared for 3"));

    eng_tensor unknown = st_tensor(ENG_DT_INT8, DIMS(3), NULL);
    int rc = st_op(&r, ENG_OP_NONZERO, 13, NULL, 1, &unknown, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EUNSUPPORTED, "input 'X' must be known");
}

static void compress_axes(void **state)
{
    (void)state;
    st_run r;
    const float x[] = {1, 2, 3, 4, 5, 6};
    eng_tensor in[2] = {st_tensor(ENG_DT_FLOAT, DIMS(3, 2), x),
                        st_tensor(ENG_DT_BOOL, DIMS(3), U8(0, 1, 1))};
    onnx_attr axis0[] = {A_INT("axis", 0), {0}};
    assert_int_equal(st_op(&r, ENG_OP_COMPRESS, 11, axis0, 2, in, 1), 0);
    const float want0[] = {3, 4, 5, 6};
    st_assert_shape(&r, 0, ENG_DT_FLOAT, 2, I64(2, 2));
    ST_EQ(&r, 0, want0);
    st_free(&r);

    eng_tensor in1[2] = {in[0], st_tensor(ENG_DT_BOOL, DIMS(1), U8(1))};
    onnx_attr axism1[] = {A_INT("axis", -1), {0}};
    assert_int_equal(st_op(&r, ENG_OP_COMPRESS, 11, axism1, 2, in1, 1), 0);
    const float want1[] = {1, 3, 5};
    ST_EQ(&r, 0, want1);
    st_free(&r);

    /* No axis: the flattened input; a false past the end is fine. */
    eng_tensor flat[2] = {in[0], st_tensor(ENG_DT_BOOL, DIMS(8), U8(0, 1, 0, 0, 1, 0, 0, 0))};
    assert_int_equal(st_op(&r, ENG_OP_COMPRESS, 11, NULL, 2, flat, 1), 0);
    const float wantf[] = {2, 5};
    ST_EQ(&r, 0, wantf);
    st_free(&r);

    eng_tensor past[2] = {in[0], st_tensor(ENG_DT_BOOL, DIMS(4), U8(0, 0, 0, 1))};
    int rc = st_op(&r, ENG_OP_COMPRESS, 11, axis0, 2, past, 1);
    st_assert_fails(&r, rc, 2, ROUSE_ERANGE,
                    "input 'condition' selects element 3, past the 3 available");
    eng_tensor notbool[2] = {in[0], st_tensor(ENG_DT_INT64, DIMS(1), I64(1))};
    rc = st_op(&r, ENG_OP_COMPRESS, 11, axis0, 2, notbool, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EUNSUPPORTED, "element type int64 of input 'condition'");
}

/* --- ReverseSequence -------------------------------------------------------- */

static void reverse_sequence_axes(void **state)
{
    (void)state;
    st_run r;
    const float x[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    eng_tensor in[2] = {st_tensor(ENG_DT_FLOAT, DIMS(4, 4), x),
                        st_tensor(ENG_DT_INT64, DIMS(4), I64(4, 3, 2, 1))};
    assert_int_equal(st_op(&r, ENG_OP_REVERSE_SEQUENCE, 10, NULL, 2, in, 1), 0);
    const float want[] = {12, 9, 6, 3, 8, 5, 2, 7, 4, 1, 10, 11, 0, 13, 14, 15};
    ST_EQ(&r, 0, want);
    st_free(&r);

    in[1] = st_tensor(ENG_DT_INT64, DIMS(4), I64(1, 2, 3, 4));
    onnx_attr bt[] = {A_INT("batch_axis", 0), A_INT("time_axis", 1), {0}};
    assert_int_equal(st_op(&r, ENG_OP_REVERSE_SEQUENCE, 10, bt, 2, in, 1), 0);
    const float want2[] = {0, 1, 2, 3, 5, 4, 6, 7, 10, 9, 8, 11, 15, 14, 13, 12};
    ST_EQ(&r, 0, want2);
    st_free(&r);

    in[1] = st_tensor(ENG_DT_INT64, DIMS(4), I64(1, 5, 3, 4));
    int rc = st_op(&r, ENG_OP_REVERSE_SEQUENCE, 10, bt, 2, in, 1);
    st_assert_fails(&r, rc, 3, ROUSE_ERANGE,
                    "input 'sequence_lens' has 5 for batch 1, outside [0, 4]");
    st_free(&r);
    onnx_attr same[] = {A_INT("batch_axis", 0), A_INT("time_axis", 0), {0}};
    rc = st_parse(&r, ENG_OP_REVERSE_SEQUENCE, 10, same, 2, 1);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT, "attribute 'time_axis' must be 0 or 1 and differ");
    onnx_attr two[] = {A_INT("batch_axis", 2), {0}};
    rc = st_parse(&r, ENG_OP_REVERSE_SEQUENCE, 10, two, 2, 1);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT, "attribute 'batch_axis' must be 0 or 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gather_elements_axes),
        cmocka_unit_test(gather_elements_errors),
        cmocka_unit_test(scatter_elements_reductions),
        cmocka_unit_test(scatter_elements_errors),
        cmocka_unit_test(gather_nd_cases),
        cmocka_unit_test(gather_nd_errors),
        cmocka_unit_test(scatter_nd_cases),
        cmocka_unit_test(one_hot_axes),
        cmocka_unit_test(nonzero_positions),
        cmocka_unit_test(compress_axes),
        cmocka_unit_test(reverse_sequence_axes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
