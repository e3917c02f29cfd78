/*
 * The shape family (ops/shape.c, ops/shape_slice.c): each op parsed,
 * inferred and run on small hand-computed cases, the ONNX corner cases
 * (clamping, negative steps, empty results), and the errors a bad model or
 * a bad compiled plan gets.
 */
#include "shape_test.h"

#include <math.h>

/* --- Shape, Size ---------------------------------------------------------- */

static void shape_reads_only_the_shape(void **state)
{
    (void)state;
    st_run r;
    /* No data: Shape and Size never read it. */
    eng_tensor x = st_tensor(ENG_DT_FLOAT, DIMS(2, 3, 4, 5), NULL);
    assert_int_equal(st_op(&r, ENG_OP_SHAPE, 13, NULL, 1, &x, 1), 0);
    const int64_t all[] = {2, 3, 4, 5};
    st_assert_shape(&r, 0, ENG_DT_INT64, 1, I64(4));
    ST_EQ(&r, 0, all);
    st_free(&r);

    assert_int_equal(st_op(&r, ENG_OP_SIZE, 13, NULL, 1, &x, 1), 0);
    const int64_t size[] = {120};
    st_assert_shape(&r, 0, ENG_DT_INT64, 0, NULL);
    ST_EQ(&r, 0, size);
    st_free(&r);
}

static void shape_start_end_clamp(void **state)
{
    (void)state;
    st_run r;
    eng_tensor x = st_tensor(ENG_DT_INT8, DIMS(2, 3, 4, 5), NULL);
    onnx_attr mid[] = {A_INT("start", 1), A_INT("end", -1), {0}};
    assert_int_equal(st_op(&r, ENG_OP_SHAPE, 15, mid, 1, &x, 1), 0);
    const int64_t want_mid[] = {3, 4};
    ST_EQ(&r, 0, want_mid);
    st_free(&r);

    onnx_attr clip[] = {A_INT("start", -10), {0}};
    assert_int_equal(st_op(&r, ENG_OP_SHAPE, 15, clip, 1, &x, 1), 0);
    const int64_t want_all[] = {2, 3, 4, 5};
    ST_EQ(&r, 0, want_all);
    st_free(&r);

    onnx_attr empty[] = {A_INT("start", 3), A_INT("end", 1), {0}};
    assert_int_equal(st_op(&r, ENG_OP_SHAPE, 15, empty, 1, &x, 1), 0);
    st_assert_shape(&r, 0, ENG_DT_INT64, 1, I64(0));
    st_free(&r);

    /* Before opset 15 start and end do not exist. */
    assert_int_equal(st_op(&r, ENG_OP_SHAPE, 13, mid, 1, &x, 1), 0);
    ST_EQ(&r, 0, want_all);
    st_free(&r);
}

/* --- ConstantOfShape, EyeLike ------------------------------------------------ */

static void constant_of_shape_fills(void **state)
{
    (void)state;
    st_run r;
    int32_t seven = 7;
    int64_t one = 1;
    onnx_tensor v = {.name = "",
                     .data_type = ENG_DT_INT32,
                     .n_dims = 1,
                     .dims = &one,
                     .data = &seven,
                     .nbytes = 4,
                     .n_elems = 1};
    onnx_attr value[] = {{.name = "value", .type = ONNX_ATTR_TENSOR, .t = &v}, {0}};
    eng_tensor shape = st_tensor(ENG_DT_INT64, DIMS(2), I64(2, 3));
    assert_int_equal(st_op(&r, ENG_OP_CONSTANT_OF_SHAPE, 9, value, 1, &shape, 1), 0);
    const int32_t want[] = {7, 7, 7, 7, 7, 7};
    st_assert_shape(&r, 0, ENG_DT_INT32, 2, I64(2, 3));
    ST_EQ(&r, 0, want);
    st_free(&r);

    /* Default: float zeros; an empty shape is a scalar; a zero dim is empty. */
    eng_tensor scalar = st_tensor(ENG_DT_INT64, DIMS(0), I64(0));
    assert_int_equal(st_op(&r, ENG_OP_CONSTANT_OF_SHAPE, 9, NULL, 1, &scalar, 1), 0);
    const float zero[] = {0.0f};
    st_assert_shape(&r, 0, ENG_DT_FLOAT, 0, NULL);
    ST_EQ(&r, 0, zero);
    st_free(&r);
    eng_tensor zdim = st_tensor(ENG_DT_INT64, DIMS(2), I64(4, 0));
    assert_int_equal(st_op(&r, ENG_OP_CONSTANT_OF_SHAPE, 9, NULL, 1, &zdim, 1), 0);
    st_assert_shape(&r, 0, ENG_DT_FLOAT, 2, I64(4, 0));
    st_free(&r);
}

static void constant_of_shape_errors(void **state)
{
    (void)state;
    st_run r;
    eng_tensor neg = st_tensor(ENG_DT_INT64, DIMS(2), I64(2, -1));
    int rc = st_op(&r, ENG_OP_CONSTANT_OF_SHAPE, 9, NULL, 1, &neg, 1);
    st_assert_fails(&r, rc, 2, ROUSE_ERANGE,
                    "node 't' (ConstantOfShape): input 'input' has a negative dim -1");
    /* Unknown at prepare: refused, naming the input. */
    eng_tensor unknown = st_tensor(ENG_DT_INT64, DIMS(2), NULL);
    rc = st_op(&r, ENG_OP_CONSTANT_OF_SHAPE, 9, NULL, 1, &unknown, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EUNSUPPORTED, "input 'input' must be known");
    /* A value of two elements. */
    float two[2] = {1, 2};
    int64_t dims = 2;
    onnx_tensor v = {.name = "",
                     .data_type = ENG_DT_FLOAT,
                     .n_dims = 1,
                     .dims = &dims,
                     .data = two,
                     .nbytes = 8,
                     .n_elems = 2};
    onnx_attr value[] = {{.name = "value", .type = ONNX_ATTR_TENSOR, .t = &v}, {0}};
    rc = st_parse(&r, ENG_OP_CONSTANT_OF_SHAPE, 9, value, 1, 1);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT, "attribute 'value' must hold exactly one element");
    /* A stored record with a type the op cannot fill (a bad plan). */
    assert_int_equal(st_parse(&r, ENG_OP_CONSTANT_OF_SHAPE, 9, NULL, 1, 1), 0);
    r.node.attrs.shape.fill.dtype = ENG_DT_STRING;
    const eng_op_desc *d = eng_op_desc_get(ENG_OP_CONSTANT_OF_SHAPE);
    assert_int_equal(d->check(&r.node, &r.eb), ROUSE_EFORMAT);
    assert_non_null(strstr(r.eb.msg, "attribute 'value' has element type string"));
}

static void eye_like_diagonals(void **state)
{
    (void)state;
    st_run r;
    eng_tensor x = st_tensor(ENG_DT_FLOAT, DIMS(3, 4), NULL);
    onnx_attr k1[] = {A_INT("k", 1), {0}};
    assert_int_equal(st_op(&r, ENG_OP_EYE_LIKE, 9, k1, 1, &x, 1), 0);
    const float want1[] = {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    ST_EQ(&r, 0, want1);
    st_free(&r);

    onnx_attr km2[] = {A_INT("k", -2), A_INT("dtype", ENG_DT_INT32), {0}};
    assert_int_equal(st_op(&r, ENG_OP_EYE_LIKE, 9, km2, 1, &x, 1), 0);
    const int32_t want2[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    st_assert_shape(&r, 0, ENG_DT_INT32, 2, I64(3, 4));
    ST_EQ(&r, 0, want2);
    st_free(&r);

    onnx_attr far[] = {A_INT("k", INT64_MAX), {0}};
    assert_int_equal(st_op(&r, ENG_OP_EYE_LIKE, 9, far, 1, &x, 1), 0);
    const float zeros[12] = {0};
    ST_EQ(&r, 0, zeros);
    st_free(&r);

    onnx_attr bad[] = {A_INT("dtype", ENG_DT_STRING), {0}};
    int rc = st_parse(&r, ENG_OP_EYE_LIKE, 9, bad, 1, 1);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT, "attribute 'dtype' has element type string");
}

/* --- Range ------------------------------------------------------------------ */

static void range_counts_and_values(void **state)
{
    (void)state;
    st_run r;
    eng_tensor f[3] = {st_tensor(ENG_DT_FLOAT, 0, NULL, F32(1)),
                       st_tensor(ENG_DT_FLOAT, 0, NULL, F32(5)),
                       st_tensor(ENG_DT_FLOAT, 0, NULL, F32(0.75f))};
    assert_int_equal(st_op(&r, ENG_OP_RANGE, 11, NULL, 3, f, 1), 0);
    const float wantf[] = {1, 1.75f, 2.5f, 3.25f, 4, 4.75f};
    ST_EQ(&r, 0, wantf);
    st_free(&r);

    eng_tensor i[3] = {st_tensor(ENG_DT_INT32, 0, NULL, I32(10)),
                       st_tensor(ENG_DT_INT32, 0, NULL, I32(4)),
                       st_tensor(ENG_DT_INT32, 0, NULL, I32(-3))};
    assert_int_equal(st_op(&r, ENG_OP_RANGE, 11, NULL, 3, i, 1), 0);
    const int32_t wanti[] = {10, 7};
    ST_EQ(&r, 0, wanti);
    st_free(&r);

    /* The whole int64 line in steps of 2^62: exact, no overflow. */
    eng_tensor big[3] = {st_tensor(ENG_DT_INT64, 0, NULL, I64(INT64_MIN)),
                         st_tensor(ENG_DT_INT64, 0, NULL, I64(INT64_MAX)),
                         st_tensor(ENG_DT_INT64, 0, NULL, I64(INT64_C(1) << 62))};
    assert_int_equal(st_op(&r, ENG_OP_RANGE, 11, NULL, 3, big, 1), 0);
    const int64_t wantb[] = {INT64_MIN, -(INT64_C(1) << 62), 0, INT64_C(1) << 62};
    ST_EQ(&r, 0, wantb);
    st_free(&r);

    /* Empty when the step goes the other way. */
    eng_tensor away[3] = {st_tensor(ENG_DT_INT16, 0, NULL, (const int16_t[]){0}),
                          st_tensor(ENG_DT_INT16, 0, NULL, (const int16_t[]){5}),
                          st_tensor(ENG_DT_INT16, 0, NULL, (const int16_t[]){-1})};
    assert_int_equal(st_op(&r, ENG_OP_RANGE, 11, NULL, 3, away, 1), 0);
    st_assert_shape(&r, 0, ENG_DT_INT16, 1, I64(0));
    st_free(&r);
}

static void range_errors(void **state)
{
    (void)state;
    st_run r;
    eng_tensor zero[3] = {st_tensor(ENG_DT_INT64, 0, NULL, I64(0)),
                          st_tensor(ENG_DT_INT64, 0, NULL, I64(5)),
                          st_tensor(ENG_DT_INT64, 0, NULL, I64(0))};
    int rc = st_op(&r, ENG_OP_RANGE, 11, NULL, 3, zero, 1);
    st_assert_fails(&r, rc, 2, ROUSE_ERANGE, "delta must not be zero");
    eng_tensor mixed[3] = {st_tensor(ENG_DT_INT64, 0, NULL, I64(0)),
                           st_tensor(ENG_DT_INT32, 0, NULL, I32(5)),
                           st_tensor(ENG_DT_INT64, 0, NULL, I64(1))};
    rc = st_op(&r, ENG_OP_RANGE, 11, NULL, 3, mixed, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "input 'limit' is int32");
    eng_tensor huge[3] = {st_tensor(ENG_DT_FLOAT, 0, NULL, F32(0)),
                          st_tensor(ENG_DT_FLOAT, 0, NULL, F32(1e30f)),
                          st_tensor(ENG_DT_FLOAT, 0, NULL, F32(1e-30f))};
    rc = st_op(&r, ENG_OP_RANGE, 11, NULL, 3, huge, 1);
    st_assert_fails(&r, rc, 2, ROUSE_ETOOBIG, "too many elements");
}

/* --- Expand, Tile ------------------------------------------------------------ */

static void expand_broadcasts_both_ways(void **state)
{
    (void)state;
    st_run r;
    eng_tensor in[2] = {st_tensor(ENG_DT_UINT64, DIMS(3, 1), (const uint64_t[]){1, 2, 3}),
                        st_tensor(ENG_DT_INT64, DIMS(3), I64(2, 1, 2))};
    assert_int_equal(st_op(&r, ENG_OP_EXPAND, 13, NULL, 2, in, 1), 0);
    const uint64_t want[] = {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3};
    st_assert_shape(&r, 0, ENG_DT_UINT64, 3, I64(2, 3, 2));
    ST_EQ(&r, 0, want);
    st_free(&r);

    eng_tensor bad[2] = {st_tensor(ENG_DT_FLOAT, DIMS(3, 2), F32(1, 2, 3, 4, 5, 6)),
                         st_tensor(ENG_DT_INT64, DIMS(2), I64(3, 4))};
    int rc = st_op(&r, ENG_OP_EXPAND, 13, NULL, 2, bad, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH,
                    "input 'input' [3, 2] does not broadcast to [3, 4]");
}

static void tile_repeats(void **state)
{
    (void)state;
    st_run r;
    eng_tensor in[2] = {st_tensor(ENG_DT_FLOAT, DIMS(2, 2), F32(1, 2, 3, 4)),
                        st_tensor(ENG_DT_INT64, DIMS(2), I64(2, 3))};
    assert_int_equal(st_op(&r, ENG_OP_TILE, 13, NULL, 2, in, 1), 0);
    const float want[] = {1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4};
    st_assert_shape(&r, 0, ENG_DT_FLOAT, 2, I64(4, 6));
    ST_EQ(&r, 0, want);
    st_free(&r);

    eng_tensor zero[2] = {in[0], st_tensor(ENG_DT_INT64, DIMS(2), I64(0, 3))};
    assert_int_equal(st_op(&r, ENG_OP_TILE, 13, NULL, 2, zero, 1), 0);
    st_assert_shape(&r, 0, ENG_DT_FLOAT, 2, I64(0, 6));
    st_free(&r);

    eng_tensor neg[2] = {in[0], st_tensor(ENG_DT_INT64, DIMS(2), I64(1, -2))};
    int rc = st_op(&r, ENG_OP_TILE, 13, NULL, 2, neg, 1);
    st_assert_fails(&r, rc, 2, ROUSE_ERANGE, "input 'repeats' has a negative value -2");
    eng_tensor shortr[2] = {in[0], st_tensor(ENG_DT_INT64, DIMS(1), I64(2))};
    rc = st_op(&r, ENG_OP_TILE, 13, NULL, 2, shortr, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "input 'repeats' must be 1-D with 2 values");
    eng_tensor huge[2] = {in[0], st_tensor(ENG_DT_INT64, DIMS(2), I64(INT64_MAX, 1))};
    rc = st_op(&r, ENG_OP_TILE, 13, NULL, 2, huge, 1);
    st_assert_fails(&r, rc, 2, ROUSE_ETOOBIG, "too large");
}

/* --- Trilu ------------------------------------------------------------------ */

static void trilu_upper_and_lower(void **state)
{
    (void)state;
    st_run r;
    const int32_t x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    eng_tensor in = st_tensor(ENG_DT_INT32, DIMS(3, 4), x);
    assert_int_equal(st_op(&r, ENG_OP_TRILU, 14, NULL, 1, &in, 1), 0);
    const int32_t upper[] = {1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12};
    ST_EQ(&r, 0, upper);
    st_free(&r);

    onnx_attr lower[] = {A_INT("upper", 0), {0}};
    eng_tensor with_k[2] = {in, st_tensor(ENG_DT_INT64, 0, NULL, I64(-1))};
    assert_int_equal(st_op(&r, ENG_OP_TRILU, 14, lower, 2, with_k, 1), 0);
    const int32_t low[] = {0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0};
    ST_EQ(&r, 0, low);
    st_free(&r);

    /* Batched 2 x [2, 2], k far outside: all kept (lower) or all cleared (upper). */
    const uint8_t b[] = {1, 1, 1, 1, 1, 1, 1, 1};
    eng_tensor batch[2] = {st_tensor(ENG_DT_BOOL, DIMS(2, 2, 2), b),
                           st_tensor(ENG_DT_INT64, DIMS(1), I64(INT64_MIN))};
    assert_int_equal(st_op(&r, ENG_OP_TRILU, 14, lower, 2, batch, 1), 0);
    const uint8_t none[8] = {0};
    ST_EQ(&r, 0, none);
    st_free(&r);
    assert_int_equal(st_op(&r, ENG_OP_TRILU, 14, NULL, 2, batch, 1), 0);
    ST_EQ(&r, 0, b);
    st_free(&r);

    eng_tensor vec = st_tensor(ENG_DT_INT32, DIMS(4), x);
    int rc = st_op(&r, ENG_OP_TRILU, 14, NULL, 1, &vec, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "rank 2 or more");
    /* A stored flag that is neither 0 nor 1 (a bad plan). */
    assert_int_equal(st_parse(&r, ENG_OP_TRILU, 14, NULL, 1, 1), 0);
    r.node.attrs.shape.trilu.upper = 2;
    assert_int_equal(eng_op_desc_get(ENG_OP_TRILU)->check(&r.node, &r.eb), ROUSE_EFORMAT);
    assert_non_null(strstr(r.eb.msg, "attribute 'upper' must be 0 or 1, got 2"));
}

/* --- Slice ------------------------------------------------------------------ */

static void slice_steps_and_axes(void **state)
{
    (void)state;
    st_run r;
    const float x[] = {1, 2, 3, 4, 5, 6, 7, 8};
    eng_tensor in[5] = {
        st_tensor(ENG_DT_FLOAT, DIMS(2, 4), x), st_tensor(ENG_DT_INT64, DIMS(2), I64(1, 0)),
        st_tensor(ENG_DT_INT64, DIMS(2), I64(2, 3)), st_tensor(ENG_DT_INT64, DIMS(2), I64(0, 1)),
        st_tensor(ENG_DT_INT64, DIMS(2), I64(1, 2))};
    assert_int_equal(st_op(&r, ENG_OP_SLICE, 13, NULL, 5, in, 1), 0);
    const float want[] = {5, 7};
    st_assert_shape(&r, 0, ENG_DT_FLOAT, 2, I64(1, 2));
    ST_EQ(&r, 0, want);
    st_free(&r);

    /* Negative axis, int32 indices, ends past the dim, axes/steps omitted. */
    eng_tensor in2[3] = {in[0], st_tensor(ENG_DT_INT32, DIMS(1), I32(0)),
                         st_tensor(ENG_DT_INT32, DIMS(1), I32(1000))};
    assert_int_equal(st_op(&r, ENG_OP_SLICE, 13, NULL, 3, in2, 1), 0);
    ST_EQ(&r, 0, x);
    st_free(&r);
    eng_tensor in3[4] = {in[0], st_tensor(ENG_DT_INT64, DIMS(1), I64(-3)),
                         st_tensor(ENG_DT_INT64, DIMS(1), I64(-1)),
                         st_tensor(ENG_DT_INT64, DIMS(1), I64(-1))};
    assert_int_equal(st_op(&r, ENG_OP_SLICE, 13, NULL, 4, in3, 1), 0);
    const float want3[] = {2, 3, 6, 7};
    ST_EQ(&r, 0, want3);
    st_free(&r);
}

static void slice_negative_steps_clamp(void **state)
{
    (void)state;
    st_run r;
    const int64_t x[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    /* [::-3] from the end past the start: 9, 6, 3, 0. */
    eng_tensor in[5] = {
        st_tensor(ENG_DT_INT64, DIMS(10), x), st_tensor(ENG_DT_INT64, DIMS(1), I64(-1)),
        st_tensor(ENG_DT_INT64, DIMS(1), I64(INT64_MIN)), st_tensor(ENG_DT_INT64, DIMS(1), I64(0)),
        st_tensor(ENG_DT_INT64, DIMS(1), I64(-3))};
    assert_int_equal(st_op(&r, ENG_OP_SLICE, 13, NULL, 5, in, 1), 0);
    const int64_t want[] = {9, 6, 3, 0};
    ST_EQ(&r, 0, want);
    st_free(&r);

    /* A start beyond the end with a negative step is clamped to dim - 1. */
    eng_tensor in2[5] = {in[0], st_tensor(ENG_DT_INT64, DIMS(1), I64(INT64_MAX)),
                         st_tensor(ENG_DT_INT64, DIMS(1), I64(6)), in[3],
                         st_tensor(ENG_DT_INT64, DIMS(1), I64(-1))};
    assert_int_equal(st_op(&r, ENG_OP_SLICE, 13, NULL, 5, in2, 1), 0);
    const int64_t want2[] = {9, 8, 7};
    ST_EQ(&r, 0, want2);
    st_free(&r);

    /* Empty: start after end with a positive step. */
    eng_tensor in3[3] = {in[0], st_tensor(ENG_DT_INT64, DIMS(1), I64(7)),
                         st_tensor(ENG_DT_INT64, DIMS(1), I64(2))};
    assert_int_equal(st_op(&r, ENG_OP_SLICE, 13, NULL, 3, in3, 1), 0);
    st_assert_shape(&r, 0, ENG_DT_INT64, 1, I64(0));
    st_free(&r);

    /* INT64_MIN as a step: one element at most, no overflow. */
    eng_tensor in4[5] = {in[0], in[1], in[2], in[3],
                         st_tensor(ENG_DT_INT64, DIMS(1), I64(INT64_MIN))};
    assert_int_equal(st_op(&r, ENG_OP_SLICE, 13, NULL, 5, in4, 1), 0);
    const int64_t want4[] = {9};
    ST_EQ(&r, 0, want4);
    st_free(&r);
}

static void slice_attribute_form(void **state)
{
    (void)state;
    st_run r;
    const uint8_t x[] = {1, 2, 3, 4, 5, 6};
    eng_tensor in = st_tensor(ENG_DT_UINT8, DIMS(2, 3), x);
    onnx_attr a[] = {A_INTS("starts", 1), A_INTS("ends", 3), A_INTS("axes", -1), {0}};
    assert_int_equal(st_op(&r, ENG_OP_SLICE, 9, a, 1, &in, 1), 0);
    const uint8_t want[] = {2, 3, 5, 6};
    ST_EQ(&r, 0, want);
    st_free(&r);

    onnx_attr noaxes[] = {A_INTS("starts", 1, 0), A_INTS("ends", 2, 1), {0}};
    assert_int_equal(st_op(&r, ENG_OP_SLICE, 1, noaxes, 1, &in, 1), 0);
    const uint8_t want2[] = {4};
    ST_EQ(&r, 0, want2);
    st_free(&r);

    onnx_attr uneven[] = {A_INTS("starts", 1, 0), A_INTS("ends", 2), {0}};
    int rc = st_parse(&r, ENG_OP_SLICE, 9, uneven, 1, 1);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT,
                    "attribute 'ends' must have as many values as starts");
    onnx_attr far[] = {A_INTS("starts", 0), A_INTS("ends", 1), A_INTS("axes", 99), {0}};
    rc = st_parse(&r, ENG_OP_SLICE, 9, far, 1, 1);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT, "attribute 'axes' has a value out of range");
}

static void slice_errors(void **state)
{
    (void)state;
    st_run r;
    eng_tensor x = st_tensor(ENG_DT_FLOAT, DIMS(2, 4), F32(1, 2, 3, 4, 5, 6, 7, 8));
    eng_tensor dup[4] = {x, st_tensor(ENG_DT_INT64, DIMS(2), I64(0, 0)),
                         st_tensor(ENG_DT_INT64, DIMS(2), I64(1, 1)),
                         st_tensor(ENG_DT_INT64, DIMS(2), I64(1, -1))};
    int rc = st_op(&r, ENG_OP_SLICE, 13, NULL, 4, dup, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EFORMAT, "axis 1 is sliced twice");
    eng_tensor far[4] = {x, dup[1], dup[2], st_tensor(ENG_DT_INT64, DIMS(2), I64(0, 2))};
    rc = st_op(&r, ENG_OP_SLICE, 13, NULL, 4, far, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH,
                    "axis 2 is out of range for input 'data' of rank 2");
    eng_tensor zero[5] = {
        x, st_tensor(ENG_DT_INT64, DIMS(1), I64(0)), st_tensor(ENG_DT_INT64, DIMS(1), I64(1)),
        st_tensor(ENG_DT_INT64, DIMS(1), I64(0)), st_tensor(ENG_DT_INT64, DIMS(1), I64(0))};
    rc = st_op(&r, ENG_OP_SLICE, 13, NULL, 5, zero, 1);
    st_assert_fails(&r, rc, 2, ROUSE_ERANGE, "a step is zero");
    eng_tensor uneven[3] = {x, dup[1], st_tensor(ENG_DT_INT64, DIMS(1), I64(1))};
    rc = st_op(&r, ENG_OP_SLICE, 13, NULL, 3, uneven, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "inputs 'starts' and 'ends' differ in length");
    eng_tensor unknown[3] = {x, st_tensor(ENG_DT_INT64, DIMS(1), NULL), uneven[2]};
    rc = st_op(&r, ENG_OP_SLICE, 13, NULL, 3, unknown, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EUNSUPPORTED, "input 'starts' must be known");
    /* A stored record with a zero step (a bad plan). */
    onnx_attr a[] = {A_INTS("starts", 1), A_INTS("ends", 3), {0}};
    assert_int_equal(st_parse(&r, ENG_OP_SLICE, 9, a, 1, 1), 0);
    r.node.attrs.shape.slice.steps[0] = 0;
    assert_int_equal(eng_op_desc_get(ENG_OP_SLICE)->check(&r.node, &r.eb), ROUSE_EFORMAT);
    assert_non_null(strstr(r.eb.msg, "attribute 'steps' has a zero step"));
}

/* --- Split ------------------------------------------------------------------ */

static void split_parts(void **state)
{
    (void)state;
    st_run r;
    const float x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    eng_tensor in[2] = {st_tensor(ENG_DT_FLOAT, DIMS(2, 6), x),
                        st_tensor(ENG_DT_INT64, DIMS(2), I64(2, 4))};
    onnx_attr axis1[] = {A_INT("axis", -1), {0}};
    assert_int_equal(st_op(&r, ENG_OP_SPLIT, 13, axis1, 2, in, 2), 0);
    const float a[] = {1, 2, 7, 8}, b[] = {3, 4, 5, 6, 9, 10, 11, 12};
    st_assert_shape(&r, 0, ENG_DT_FLOAT, 2, I64(2, 2));
    ST_EQ(&r, 0, a);
    ST_EQ(&r, 1, b);
    st_free(&r);

    /* Equal parts along axis 0; a zero-sized part. */
    assert_int_equal(st_op(&r, ENG_OP_SPLIT, 13, NULL, 1, in, 2), 0);
    const float top[] = {1, 2, 3, 4, 5, 6}, bottom[] = {7, 8, 9, 10, 11, 12};
    ST_EQ(&r, 0, top);
    ST_EQ(&r, 1, bottom);
    st_free(&r);
    eng_tensor zero[2] = {in[0], st_tensor(ENG_DT_INT64, DIMS(3), I64(0, 6, 0))};
    assert_int_equal(st_op(&r, ENG_OP_SPLIT, 13, axis1, 2, zero, 3), 0);
    st_assert_shape(&r, 0, ENG_DT_FLOAT, 2, I64(2, 0));
    ST_EQ(&r, 1, x);
    st_assert_shape(&r, 2, ENG_DT_FLOAT, 2, I64(2, 0));
    st_free(&r);

    /* Opset 11: the sizes are an attribute. */
    onnx_attr attr[] = {A_INT("axis", 1), A_INTS("split", 1, 5), {0}};
    assert_int_equal(st_op(&r, ENG_OP_SPLIT, 11, attr, 1, in, 2), 0);
    const float c[] = {1, 7};
    ST_EQ(&r, 0, c);
    st_free(&r);
}

static void split_errors(void **state)
{
    (void)state;
    st_run r;
    eng_tensor in[2] = {st_tensor(ENG_DT_FLOAT, DIMS(5), F32(1, 2, 3, 4, 5)),
                        st_tensor(ENG_DT_INT64, DIMS(2), I64(2, 2))};
    int rc = st_op(&r, ENG_OP_SPLIT, 13, NULL, 1, in, 2);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "does not split into 2 equal parts");
    rc = st_op(&r, ENG_OP_SPLIT, 13, NULL, 2, in, 2);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH,
                    "'split' sizes add up to 4, dim 0 of input 'input' is 5");
    rc = st_op(&r, ENG_OP_SPLIT, 13, NULL, 2, in, 3);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "'split' has 2 sizes for 3 outputs");
    onnx_attr neg[] = {A_INTS("split", 6, -1), {0}};
    rc = st_parse(&r, ENG_OP_SPLIT, 11, neg, 1, 2);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT, "attribute 'split' has a negative size");
    onnx_attr far[] = {A_INT("axis", 8), {0}};
    rc = st_parse(&r, ENG_OP_SPLIT, 13, far, 1, 2);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT, "attribute 'axis' is out of range");
}

/* --- Pad -------------------------------------------------------------------- */

static const float pad_x[] = {1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f}; /* [3, 2] */

static void pad_modes(void **state)
{
    (void)state;
    st_run r;
    eng_tensor in[3] = {st_tensor(ENG_DT_FLOAT, DIMS(3, 2), pad_x),
                        st_tensor(ENG_DT_INT64, DIMS(4), I64(0, 2, 0, 0)),
                        st_tensor(ENG_DT_FLOAT, 0, NULL, F32(9))};
    assert_int_equal(st_op(&r, ENG_OP_PAD, 13, NULL, 3, in, 1), 0);
    const float constant[] = {9, 9, 1.0f, 1.2f, 9, 9, 2.3f, 3.4f, 9, 9, 4.5f, 5.7f};
    st_assert_shape(&r, 0, ENG_DT_FLOAT, 2, I64(3, 4));
    ST_EQ(&r, 0, constant);
    st_free(&r);

    onnx_attr reflect[] = {A_STR("mode", "reflect"), {0}};
    assert_int_equal(st_op(&r, ENG_OP_PAD, 13, reflect, 2, in, 1), 0);
    const float refl[] = {1.0f, 1.2f, 1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f, 4.5f, 5.7f};
    ST_EQ(&r, 0, refl);
    st_free(&r);

    onnx_attr edge[] = {A_STR("mode", "edge"), {0}};
    assert_int_equal(st_op(&r, ENG_OP_PAD, 13, edge, 2, in, 1), 0);
    const float edg[] = {1.0f, 1.0f, 1.0f, 1.2f, 2.3f, 2.3f, 2.3f, 3.4f, 4.5f, 4.5f, 4.5f, 5.7f};
    ST_EQ(&r, 0, edg);
    st_free(&r);

    /* Reflect further than the dim: numpy's repeated reflection. */
    eng_tensor row[2] = {st_tensor(ENG_DT_INT32, DIMS(3), I32(1, 2, 3)),
                         st_tensor(ENG_DT_INT64, DIMS(2), I64(5, 4))};
    assert_int_equal(st_op(&r, ENG_OP_PAD, 13, reflect, 2, row, 1), 0);
    const int32_t far[] = {2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3};
    ST_EQ(&r, 0, far);
    st_free(&r);

    /* Both borders around a copied middle; a crop on one side only. */
    eng_tensor wide[2] = {st_tensor(ENG_DT_INT32, DIMS(1, 4), I32(1, 2, 3, 4)),
                          st_tensor(ENG_DT_INT64, DIMS(4), I64(0, 2, 0, 3))};
    assert_int_equal(st_op(&r, ENG_OP_PAD, 13, edge, 2, wide, 1), 0);
    const int32_t wedge[] = {1, 1, 1, 2, 3, 4, 4, 4, 4};
    ST_EQ(&r, 0, wedge);
    st_free(&r);
    wide[1] = st_tensor(ENG_DT_INT64, DIMS(4), I64(0, -1, 0, 2));
    assert_int_equal(st_op(&r, ENG_OP_PAD, 13, NULL, 2, wide, 1), 0);
    const int32_t wcrop[] = {2, 3, 4, 0, 0};
    ST_EQ(&r, 0, wcrop);
    st_free(&r);

    /* Negative pads crop; default fill 0. */
    eng_tensor crop[2] = {in[0], st_tensor(ENG_DT_INT64, DIMS(4), I64(-1, 1, 0, -1))};
    assert_int_equal(st_op(&r, ENG_OP_PAD, 13, NULL, 2, crop, 1), 0);
    const float cropped[] = {0, 2.3f, 0, 4.5f};
    st_assert_shape(&r, 0, ENG_DT_FLOAT, 2, I64(2, 2));
    ST_EQ(&r, 0, cropped);
    st_free(&r);

    /* Opset 2: pads and value are attributes. */
    onnx_attr old[] = {A_INTS("pads", 1, 0, 0, 0), A_FLOAT("value", -1.5f), {0}};
    assert_int_equal(st_op(&r, ENG_OP_PAD, 2, old, 1, in, 1), 0);
    const float olds[] = {-1.5f, -1.5f, 1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f};
    ST_EQ(&r, 0, olds);
    st_free(&r);
}

static void pad_errors(void **state)
{
    (void)state;
    st_run r;
    eng_tensor in[2] = {st_tensor(ENG_DT_FLOAT, DIMS(3, 2), pad_x),
                        st_tensor(ENG_DT_INT64, DIMS(2), I64(1, 1))};
    int rc = st_op(&r, ENG_OP_PAD, 13, NULL, 2, in, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH,
                    "'pads' has 2 values, input 'data' of rank 2 needs 4");
    eng_tensor over[2] = {in[0], st_tensor(ENG_DT_INT64, DIMS(4), I64(-2, 0, -2, 0))};
    rc = st_op(&r, ENG_OP_PAD, 13, NULL, 2, over, 1);
    st_assert_fails(&r, rc, 2, ROUSE_ERANGE, "do not fit dim 0 of size 3");
    eng_tensor huge[2] = {in[0], st_tensor(ENG_DT_INT64, DIMS(4), I64(INT64_MAX, 0, 0, 0))};
    rc = st_op(&r, ENG_OP_PAD, 13, NULL, 2, huge, 1);
    st_assert_fails(&r, rc, 2, ROUSE_ERANGE, "do not fit");
    onnx_attr wrap[] = {A_STR("mode", "wrap"), {0}};
    rc = st_parse(&r, ENG_OP_PAD, 13, wrap, 2, 1);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT, "attribute 'mode' has unknown value 'wrap'");
    eng_tensor empty[2] = {st_tensor(ENG_DT_FLOAT, DIMS(0), NULL),
                           st_tensor(ENG_DT_INT64, DIMS(2), I64(1, 1))};
    onnx_attr edge[] = {A_STR("mode", "edge"), {0}};
    rc = st_op(&r, ENG_OP_PAD, 13, edge, 2, empty, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "nothing to pad from");
    assert_int_equal(st_parse(&r, ENG_OP_PAD, 13, NULL, 2, 1), 0);
    r.node.attrs.shape.pad.mode = 7;
    assert_int_equal(eng_op_desc_get(ENG_OP_PAD)->check(&r.node, &r.eb), ROUSE_EFORMAT);
    assert_non_null(strstr(r.eb.msg, "attribute 'mode' has an unknown value 7"));
}

/* --- DepthToSpace, SpaceToDepth --------------------------------------------- */

static void depth_to_space_modes(void **state)
{
    (void)state;
    st_run r;
    const float x[] = {0, 1, 2, 3, 4, 5, 6, 7};
    eng_tensor in = st_tensor(ENG_DT_FLOAT, DIMS(1, 8, 1, 1), x);
    onnx_attr dcr[] = {A_INT("blocksize", 2), {0}};
    assert_int_equal(st_op(&r, ENG_OP_DEPTH_TO_SPACE, 13, dcr, 1, &in, 1), 0);
    /* out[c, i, j] = x[(i*2 + j)*2 + c] */
    const float want_dcr[] = {0, 2, 4, 6, 1, 3, 5, 7};
    st_assert_shape(&r, 0, ENG_DT_FLOAT, 4, I64(1, 2, 2, 2));
    ST_EQ(&r, 0, want_dcr);
    st_free(&r);

    onnx_attr crd[] = {A_INT("blocksize", 2), A_STR("mode", "CRD"), {0}};
    assert_int_equal(st_op(&r, ENG_OP_DEPTH_TO_SPACE, 13, crd, 1, &in, 1), 0);
    /* out[c, i, j] = x[c*4 + i*2 + j] */
    ST_EQ(&r, 0, x);
    st_free(&r);

    /* Spatial extent: x [1, 4, 1, 2] -> [1, 1, 2, 4]. */
    const int16_t s[] = {0, 1, 10, 11, 20, 21, 30, 31};
    eng_tensor sp = st_tensor(ENG_DT_INT16, DIMS(1, 4, 1, 2), s);
    assert_int_equal(st_op(&r, ENG_OP_DEPTH_TO_SPACE, 13, dcr, 1, &sp, 1), 0);
    const int16_t want_sp[] = {0, 10, 1, 11, 20, 30, 21, 31};
    ST_EQ(&r, 0, want_sp);
    st_free(&r);
}

/* SpaceToDepth undoes DepthToSpace in DCR mode. */
static void space_to_depth_inverts(void **state)
{
    (void)state;
    st_run r, back;
    const float s[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17,
                       18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35};
    eng_tensor x = st_tensor(ENG_DT_FLOAT, DIMS(1, 1, 6, 6), s);
    onnx_attr b3[] = {A_INT("blocksize", 3), {0}};
    assert_int_equal(st_op(&r, ENG_OP_SPACE_TO_DEPTH, 13, b3, 1, &x, 1), 0);
    st_assert_shape(&r, 0, ENG_DT_FLOAT, 4, I64(1, 9, 2, 2));
    /* Channel (i*3 + j) holds x[h*3 + i, w*3 + j]: channel 1 = x[0,1], x[0,4], x[3,1], x[3,4]. */
    const float *y = r.out[0].data;
    assert_true(y[4] == 1 && y[5] == 4 && y[6] == 19 && y[7] == 22);
    assert_int_equal(st_op(&back, ENG_OP_DEPTH_TO_SPACE, 13, b3, 1, &r.out[0], 1), 0);
    ST_EQ(&back, 0, s);
    st_free(&back);
    st_free(&r);

    onnx_attr b4[] = {A_INT("blocksize", 4), {0}};
    int rc = st_op(&r, ENG_OP_SPACE_TO_DEPTH, 13, b4, 1, &x, 1);
    st_assert_fails(&r, rc, 2, ROUSE_EMISMATCH, "not multiples of blocksize 4");
    onnx_attr b0[] = {A_INT("blocksize", 0), {0}};
    rc = st_parse(&r, ENG_OP_DEPTH_TO_SPACE, 13, b0, 1, 1);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT, "attribute 'blocksize' must be between 1 and");
    rc = st_parse(&r, ENG_OP_DEPTH_TO_SPACE, 13, NULL, 1, 1);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT, "attribute 'blocksize' is required");
    onnx_attr bad_mode[] = {A_INT("blocksize", 2), A_STR("mode", "XYZ"), {0}};
    rc = st_parse(&r, ENG_OP_DEPTH_TO_SPACE, 13, bad_mode, 1, 1);
    st_assert_fails(&r, rc, 1, ROUSE_EFORMAT, "attribute 'mode' has unknown value 'XYZ'");
}

/* Half types move as bytes: Slice and Tile on float16 and bfloat16. */
static void half_types_move_unchanged(void **state)
{
    (void)state;
    st_run r;
    const uint16_t h[] = {0x3c00, 0x4000, 0x4200, 0x4400}; /* 1, 2, 3, 4 */
    eng_tensor in[3] = {st_tensor(ENG_DT_FLOAT16, DIMS(4), h),
                        st_tensor(ENG_DT_INT64, DIMS(1), I64(1)),
                        st_tensor(ENG_DT_INT64, DIMS(1), I64(3))};
    assert_int_equal(st_op(&r, ENG_OP_SLICE, 13, NULL, 3, in, 1), 0);
    const uint16_t want[] = {0x4000, 0x4200};
    ST_EQ(&r, 0, want);
    st_free(&r);
    eng_tensor t[2] = {st_tensor(ENG_DT_BFLOAT16, DIMS(2), h),
                       st_tensor(ENG_DT_INT64, DIMS(1), I64(2))};
    assert_int_equal(st_op(&r, ENG_OP_TILE, 13, NULL, 2, t, 1), 0);
    const uint16_t want_t[] = {0x3c00, 0x4000, 0x3c00, 0x4000};
    ST_EQ(&r, 0, want_t);
    st_free(&r);
    /* EyeLike writes 1 in the output's own encoding. */
    eng_tensor e = st_tensor(ENG_DT_FLOAT16, DIMS(2, 2), NULL);
    assert_int_equal(st_op(&r, ENG_OP_EYE_LIKE, 9, NULL, 1, &e, 1), 0);
    const uint16_t eye[] = {0x3c00, 0, 0, 0x3c00};
    ST_EQ(&r, 0, eye);
    st_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shape_reads_only_the_shape),
        cmocka_unit_test(shape_start_end_clamp),
        cmocka_unit_test(constant_of_shape_fills),
        cmocka_unit_test(constant_of_shape_errors),
        cmocka_unit_test(eye_like_diagonals),
        cmocka_unit_test(range_counts_and_values),
        cmocka_unit_test(range_errors),
        cmocka_unit_test(expand_broadcasts_both_ways),
        cmocka_unit_test(tile_repeats),
        cmocka_unit_test(trilu_upper_and_lower),
        cmocka_unit_test(slice_steps_and_axes),
        cmocka_unit_test(slice_negative_steps_clamp),
        cmocka_unit_test(slice_attribute_form),
        cmocka_unit_test(slice_errors),
        cmocka_unit_test(split_parts),
        cmocka_unit_test(split_errors),
        cmocka_unit_test(pad_modes),
        cmocka_unit_test(pad_errors),
        cmocka_unit_test(depth_to_space_modes),
        cmocka_unit_test(space_to_depth_inverts),
        cmocka_unit_test(half_types_move_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
