/*
 * OIP v2 codec against real engine sessions on small models built in C:
 * JSON data flat and nested, the binary tensor extension both ways, every
 * datatype the engine takes on inputs (Add on the numeric types, Identity on
 * BOOL/FP16/BF16), output selection, id echo, model metadata, and every
 * decoding error with its message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "onnx_builder.h"
#include "rouse/engine.h"
#include "worker/oip.h"

/* A loaded model with the bytes it borrows. */
typedef struct test_model {
    rouse_buf bytes;
    rouse_model *m;
    rouse_session *s;
} test_model;

static void tm_load(test_model *t, ob_model *om)
{
    rouse_errbuf eb;
    rouse_buf_init(&t->bytes);
    ob_serialize(om, &t->bytes);
    ob_model_free(om);
    if (rouse_model_load_memory(t->bytes.data, t->bytes.len, &t->m, &eb) < 0)
        fail_msg("load: %s", eb.msg);
    rouse_session_options o = {.threads = 1, .reference_kernels = 1};
    if (rouse_session_create(t->m, &o, &t->s, &eb) < 0) fail_msg("session: %s", eb.msg);
}

static void tm_free(test_model *t)
{
    rouse_session_destroy(t->s);
    rouse_model_destroy(t->m);
    rouse_buf_fini(&t->bytes);
}

/* y = Relu(x), x: FP32 [-1,3]. */
static void relu_model(test_model *t)
{
    ob_model *om = ob_model_new(13);
    int64_t d[2] = {-1, 3};
    ob_input(om, "x", ROUSE_DT_FLOAT, 2, d);
    const char *x = "x", *y = "y";
    ob_add_node(om, "Relu", "relu", 1, &x, 1, &y);
    ob_output(om, "y", ROUSE_DT_FLOAT, 2, d);
    tm_load(t, om);
}

/* sum = a + b, diff = a - b, a and b of dtype [2,2]. */
static void add_sub_model(test_model *t, int dtype)
{
    ob_model *om = ob_model_new(13);
    int64_t d[2] = {2, 2};
    ob_input(om, "a", dtype, 2, d);
    ob_input(om, "b", dtype, 2, d);
    const char *ab[2] = {"a", "b"}, *sum = "sum", *diff = "diff";
    ob_add_node(om, "Add", "add", 2, ab, 1, &sum);
    ob_add_node(om, "Sub", "sub", 2, ab, 1, &diff);
    ob_output(om, "sum", dtype, 2, d);
    ob_output(om, "diff", dtype, 2, d);
    tm_load(t, om);
}

/* y = Identity(x), x of dtype [-1] (Relu after it keeps it a real node). */
static void identity_model(test_model *t, int dtype)
{
    ob_model *om = ob_model_new(13);
    int64_t d[1] = {-1};
    ob_input(om, "x", dtype, 1, d);
    const char *x = "x", *y = "y";
    ob_add_node(om, "Identity", "id", 1, &x, 1, &y);
    ob_output(om, "y", dtype, 1, d);
    tm_load(t, om);
}

typedef struct ctx {
    rouse_arena arena;
    oip_request req;
    rouse_errbuf eb;
    rouse_buf out;
    int64_t json_len;
    json_value *resp;
} ctx;

static void ctx_init(ctx *c)
{
    memset(c, 0, sizeof(*c));
    rouse_arena_init(&c->arena, 0);
    rouse_buf_init(&c->out);
}

static void ctx_fini(ctx *c)
{
    rouse_arena_fini(&c->arena);
    rouse_buf_fini(&c->out);
}

static int decode_bin(ctx *c, const test_model *t, const char *body, size_t len, int64_t json_len)
{
    rouse_errbuf_clear(&c->eb);
    return oip_decode_request(body, len, json_len, t->m, &c->arena, &c->req, &c->eb);
}

static int decode(ctx *c, const test_model *t, const char *json)
{
    return decode_bin(c, t, json, strlen(json), -1);
}

static void decode_ok(ctx *c, const test_model *t, const char *json)
{
    if (decode(c, t, json) < 0) fail_msg("decode: %s", c->eb.msg);
}

static void expect_error(const test_model *t, const char *json, int rc, const char *msg)
{
    ctx c;
    ctx_init(&c);
    int got = decode(&c, t, json);
    if (got != rc || strcmp(c.eb.msg, msg) != 0)
        fail_msg("%s\n  got %s \"%s\"\n  want %s \"%s\"", json, rouse_err_name(got), c.eb.msg,
                 rouse_err_name(rc), msg);
    ctx_fini(&c);
}

/* Runs the decoded request and encodes the response; parses its JSON part. */
static void run_encode(ctx *c, test_model *t)
{
    if (rouse_session_run(t->s, c->req.inputs, c->req.n_inputs, &c->eb) < 0)
        fail_msg("run: %s", c->eb.msg);
    rouse_buf_clear(&c->out);
    if (oip_encode_response(&c->req, "mymodel", "3", t->m, t->s, &c->out, &c->json_len, &c->eb) < 0)
        fail_msg("encode: %s", c->eb.msg);
    size_t jl = c->json_len < 0 ? c->out.len : (size_t)c->json_len;
    if (json_parse(c->out.data, jl, &c->arena, &c->resp, &c->eb) < 0)
        fail_msg("response JSON: %s", c->eb.msg);
}

static const json_value *resp_output(const ctx *c, size_t k)
{
    const json_value *outs = json_get(c->resp, "outputs");
    assert_non_null(outs);
    assert_int_equal(outs->type, JSON_ARRAY);
    assert_true(k < outs->u.arr.n);
    return outs->u.arr.items[k];
}

static double item_d(const json_value *arr, size_t i)
{
    assert_int_equal(arr->type, JSON_ARRAY);
    assert_true(i < arr->u.arr.n);
    assert_int_equal(arr->u.arr.items[i]->type, JSON_NUMBER);
    return arr->u.arr.items[i]->u.num.d;
}

/* ---- JSON data --------------------------------------------------------------- */

static void json_flat_and_nested(void **state)
{
    (void)state;
    test_model t;
    relu_model(&t);
    static const char *const bodies[] = {
        "{\"id\":\"req-7\",\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\","
        "\"data\":[-1.5,2,-3,4.25,0,1e-3]}]}",
        "{\"id\":\"req-7\",\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\","
        "\"data\":[[-1.5,2,-3],[4.25,0,1e-3]]}]}",
    };
    for (int b = 0; b < 2; b++) {
        ctx c;
        ctx_init(&c);
        decode_ok(&c, &t, bodies[b]);
        assert_string_equal(c.req.id, "req-7");
        assert_int_equal(c.req.n_inputs, 1);
        assert_int_equal(c.req.n_outputs, 0);
        const rouse_tensor *x = &c.req.inputs[0];
        assert_string_equal(x->name, "x");
        assert_int_equal(x->dtype, ROUSE_DT_FLOAT);
        assert_int_equal(x->rank, 2);
        assert_int_equal(x->shape[0], 2);
        assert_int_equal(x->shape[1], 3);
        assert_int_equal(x->nbytes, 24);
        const float want[6] = {-1.5f, 2, -3, 4.25f, 0, 1e-3f};
        assert_memory_equal(x->data, want, sizeof(want));
        run_encode(&c, &t);
        assert_int_equal(c.json_len, -1);
        assert_string_equal(json_as_string(json_get(c.resp, "model_name")), "mymodel");
        assert_string_equal(json_as_string(json_get(c.resp, "model_version")), "3");
        assert_string_equal(json_as_string(json_get(c.resp, "id")), "req-7");
        const json_value *y = resp_output(&c, 0);
        assert_string_equal(json_as_string(json_get(y, "name")), "y");
        assert_string_equal(json_as_string(json_get(y, "datatype")), "FP32");
        const json_value *shape = json_get(y, "shape");
        assert_int_equal(shape->u.arr.n, 2);
        assert_true(item_d(shape, 0) == 2 && item_d(shape, 1) == 3);
        const json_value *data = json_get(y, "data");
        assert_int_equal(data->u.arr.n, 6);
        const float relu[6] = {0, 2, 0, 4.25f, 0, 1e-3f};
        for (int i = 0; i < 6; i++)
            assert_true((float)item_d(data, (size_t)i) == relu[i]);
        assert_null(json_get(y, "parameters"));
        ctx_fini(&c);
    }
    /* Without an id, none is echoed; an empty tensor works too. */
    ctx c;
    ctx_init(&c);
    decode_ok(&c, &t,
              "{\"inputs\":[{\"name\":\"x\",\"shape\":[0,3],\"datatype\":\"FP32\",\"data\":[]}]}");
    assert_null(c.req.id);
    assert_int_equal(c.req.inputs[0].nbytes, 0);
    run_encode(&c, &t);
    assert_null(json_get(c.resp, "id"));
    assert_int_equal(json_get(resp_output(&c, 0), "data")->u.arr.n, 0);
    ctx_fini(&c);
    tm_free(&t);
}

static void nested_shape_errors(void **state)
{
    (void)state;
    test_model t;
    relu_model(&t);
#define X_IN(shape, data)                                                                          \
    "{\"inputs\":[{\"name\":\"x\",\"shape\":" shape ",\"datatype\":\"FP32\",\"data\":" data "}]}"
    expect_error(&t, X_IN("[2,3]", "[[1,2,3],[4,5]]"), ROUSE_EMISMATCH,
                 "input 'x': nested 'data' does not match shape [2,3] (an array at depth 2 has 2 "
                 "elements, expected 3)");
    expect_error(&t, X_IN("[2,3]", "[[1,2,3]]"), ROUSE_EMISMATCH,
                 "input 'x': nested 'data' does not match shape [2,3] (an array at depth 1 has 1 "
                 "elements, expected 2)");
    expect_error(&t, X_IN("[2,3]", "[[1,2,3],7]"), ROUSE_EMISMATCH,
                 "input 'x': nested 'data' does not match shape [2,3] (an array at depth 2 has no "
                 "array but 0 elements, expected 3)");
    expect_error(&t, X_IN("[2,3]", "[[1,2,[3]],[4,5,6]]"), ROUSE_EMISMATCH,
                 "input 'x': nested 'data' is deeper than shape [2,3]");
    expect_error(&t, X_IN("[2,3]", "[1,2,3,4,5]"), ROUSE_EMISMATCH,
                 "input 'x': 'data' has 5 elements, but shape [2,3] needs 6");
    expect_error(&t, X_IN("[2,3]", "[1,2,3,4,5,[6]]"), ROUSE_EMISMATCH,
                 "input 'x': element 5 is array, not a number");
    expect_error(&t, X_IN("[2,3]", "{\"a\":1}"), ROUSE_EFORMAT,
                 "input 'x': 'data' must be an array, got object");
    expect_error(&t, X_IN("[2,3]", "[1,2,3,4,5,null]"), ROUSE_EMISMATCH,
                 "input 'x': element 5 is null, not a number");
    expect_error(&t, X_IN("[1,3]", "[1,true,3]"), ROUSE_EMISMATCH,
                 "input 'x': element 1 is boolean, not a number");
    expect_error(&t, X_IN("[1,3]", "[1,1e39,3]"), ROUSE_EMISMATCH,
                 "input 'x': element 1: 1e+39 is out of range for FP32");
    tm_free(&t);
}

/* ---- every datatype -------------------------------------------------------- */

typedef struct dt_case {
    int dtype;
    const char *name;
    const char *a, *b; /* JSON data of a and b, [2,2] */
    double sum[4];     /* expected a + b */
} dt_case;

static void numeric_datatypes(void **state)
{
    (void)state;
    static const dt_case cases[] = {
        {ROUSE_DT_INT8, "INT8", "[-128,127,5,-5]", "[0,0,1,2]", {-128, 127, 6, -3}},
        {ROUSE_DT_UINT8, "UINT8", "[0,255,5,200]", "[0,0,1,2]", {0, 255, 6, 202}},
        {ROUSE_DT_INT16, "INT16", "[-32768,32767,5,-5]", "[0,0,1,2]", {-32768, 32767, 6, -3}},
        {ROUSE_DT_UINT16, "UINT16", "[0,65535,5,2.0]", "[0,0,1,2]", {0, 65535, 6, 4}},
        {ROUSE_DT_INT32,
         "INT32",
         "[-2147483648,2147483647,5,-5]",
         "[0,0,1,2]",
         {-2147483648.0, 2147483647.0, 6, -3}},
        {ROUSE_DT_UINT32,
         "UINT32",
         "[0,4294967295,5,1e3]",
         "[0,0,1,2]",
         {0, 4294967295.0, 6, 1002}},
        {ROUSE_DT_INT64,
         "INT64",
         "[-9223372036854775808,9223372036854775807,5,-5]",
         "[0,0,1,2]",
         {-9223372036854775808.0, 9223372036854775807.0, 6, -3}},
        {ROUSE_DT_UINT64,
         "UINT64",
         "[0,18446744073709551615,5,7]",
         "[0,0,1,2]",
         {0, 18446744073709551615.0, 6, 9}},
        {ROUSE_DT_FLOAT, "FP32", "[0.5,-1e30,3.25,1]", "[0.25,0,1,-2]", {0.75, -1e30f, 4.25, -1}},
        {ROUSE_DT_DOUBLE,
         "FP64",
         "[0.1,1e300,3.25,1]",
         "[0.2,0,1,-2]",
         {0.1 + 0.2, 1e300, 4.25, -1}},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const dt_case *dc = &cases[k];
        test_model t;
        add_sub_model(&t, dc->dtype);
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"inputs\":[{\"name\":\"b\",\"shape\":[2,2],\"datatype\":\"%s\",\"data\":%s},"
                 "{\"name\":\"a\",\"shape\":[2,2],\"datatype\":\"%s\",\"data\":%s}],"
                 "\"outputs\":[{\"name\":\"sum\"}]}",
                 dc->name, dc->b, dc->name, dc->a);
        ctx c;
        ctx_init(&c);
        decode_ok(&c, &t, body);
        /* Inputs come out in the model's order. */
        assert_string_equal(c.req.inputs[0].name, "a");
        assert_string_equal(c.req.inputs[1].name, "b");
        assert_int_equal(c.req.inputs[0].nbytes, 4 * rouse_dtype_size(dc->dtype));
        run_encode(&c, &t);
        const json_value *outs = json_get(c.resp, "outputs");
        assert_int_equal(outs->u.arr.n, 1);
        const json_value *o = outs->u.arr.items[0];
        assert_string_equal(json_as_string(json_get(o, "name")), "sum");
        assert_string_equal(json_as_string(json_get(o, "datatype")), dc->name);
        const json_value *data = json_get(o, "data");
        for (size_t i = 0; i < 4; i++) {
            double got = item_d(data, i), want = dc->sum[i];
            if (dc->dtype == ROUSE_DT_FLOAT) got = (float)got, want = (float)want;
            if (got != want)
                fail_msg("%s element %zu: got %.17g want %.17g", dc->name, i, got, want);
        }
        /* Integers are written exactly (not through a double). */
        if (dc->dtype == ROUSE_DT_INT64) {
            int64_t v;
            assert_true(json_as_int64(data->u.arr.items[0], &v) && v == INT64_MIN);
            assert_true(json_as_int64(data->u.arr.items[1], &v) && v == INT64_MAX);
        }
        if (dc->dtype == ROUSE_DT_UINT64) {
            uint64_t v;
            assert_true(json_as_uint64(data->u.arr.items[1], &v) && v == UINT64_MAX);
        }
        ctx_fini(&c);
        tm_free(&t);
    }
}

static void small_float_and_bool_datatypes(void **state)
{
    (void)state;
    /* FP16: exact values, rounding to nearest even, subnormals, the largest. */
    {
        test_model t;
        identity_model(&t, ROUSE_DT_FLOAT16);
        ctx c;
        ctx_init(&c);
        decode_ok(&c, &t,
                  "{\"inputs\":[{\"name\":\"x\",\"shape\":[7],\"datatype\":\"FP16\","
                  "\"data\":[1,-2.5,65504,5.960464477539063e-8,1.00048828125,0.1,-0.0]}]}");
        const uint16_t want[7] = {0x3C00, 0xC100, 0x7BFF, 0x0001, 0x3C00, 0x2E66, 0x8000};
        assert_memory_equal(c.req.inputs[0].data, want, sizeof(want));
        run_encode(&c, &t);
        const json_value *d = json_get(resp_output(&c, 0), "data");
        assert_true(item_d(d, 0) == 1 && item_d(d, 1) == -2.5 && item_d(d, 2) == 65504);
        assert_true((float)item_d(d, 3) == 5.960464477539063e-8f);
        assert_true((float)item_d(d, 5) == 0.0999755859375f);
        ctx_fini(&c);
        expect_error(&t,
                     "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP16\","
                     "\"data\":[65520]}]}",
                     ROUSE_EMISMATCH, "input 'x': element 0: 65520 is out of range for FP16");
        tm_free(&t);
    }
    /* BF16 */
    {
        test_model t;
        identity_model(&t, ROUSE_DT_BFLOAT16);
        ctx c;
        ctx_init(&c);
        decode_ok(&c, &t,
                  "{\"inputs\":[{\"name\":\"x\",\"shape\":[4],\"datatype\":\"BF16\","
                  "\"data\":[1,-3.5,1.00390625,3e38]}]}");
        const uint16_t want[4] = {0x3F80, 0xC060, 0x3F80, 0x7F62};
        assert_memory_equal(c.req.inputs[0].data, want, sizeof(want));
        run_encode(&c, &t);
        const json_value *d = json_get(resp_output(&c, 0), "data");
        assert_true(item_d(d, 0) == 1 && item_d(d, 1) == -3.5);
        assert_string_equal(json_as_string(json_get(resp_output(&c, 0), "datatype")), "BF16");
        ctx_fini(&c);
        expect_error(&t,
                     "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"BF16\","
                     "\"data\":[1e39]}]}",
                     ROUSE_EMISMATCH, "input 'x': element 0: 1e+39 is out of range for BF16");
        tm_free(&t);
    }
    /* BOOL: one byte per element, true/false only. */
    {
        test_model t;
        identity_model(&t, ROUSE_DT_BOOL);
        ctx c;
        ctx_init(&c);
        decode_ok(&c, &t,
                  "{\"inputs\":[{\"name\":\"x\",\"shape\":[3],\"datatype\":\"BOOL\","
                  "\"data\":[true,false,true]}]}");
        assert_memory_equal(c.req.inputs[0].data, "\1\0\1", 3);
        run_encode(&c, &t);
        const json_value *d = json_get(resp_output(&c, 0), "data");
        assert_int_equal(d->u.arr.n, 3);
        assert_int_equal(d->u.arr.items[0]->type, JSON_TRUE);
        assert_int_equal(d->u.arr.items[1]->type, JSON_FALSE);
        assert_int_equal(d->u.arr.items[2]->type, JSON_TRUE);
        ctx_fini(&c);
        expect_error(&t,
                     "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"BOOL\","
                     "\"data\":[true,1]}]}",
                     ROUSE_EMISMATCH,
                     "input 'x': element 1 is number, but BOOL needs true or false");
        tm_free(&t);
    }
}

static void element_range_errors(void **state)
{
    (void)state;
    static const struct {
        int dtype;
        const char *name, *data, *msg;
    } cases[] = {
        {ROUSE_DT_UINT8, "UINT8", "[1,2,300,4]",
         "input 'a': element 2: 300 is out of range for UINT8"},
        {ROUSE_DT_UINT8, "UINT8", "[1,-1,3,4]",
         "input 'a': element 1: -1 is out of range for UINT8"},
        {ROUSE_DT_INT8, "INT8", "[[1,2],[-129,4]]",
         "input 'a': element 2: -129 is out of range for INT8"},
        {ROUSE_DT_INT32, "INT32", "[1,2,3,2.5]",
         "input 'a': element 3: 2.5 is not an integer (INT32)"},
        {ROUSE_DT_INT32, "INT32", "[1,2147483648,3,4]",
         "input 'a': element 1: 2147483648 is out of range for INT32"},
        {ROUSE_DT_INT32, "INT32", "[\"1\",2,3,4]", "input 'a': element 0 is string, not a number"},
        {ROUSE_DT_UINT32, "UINT32", "[1,2,3,1e10]",
         "input 'a': element 3: 10000000000 is out of range for UINT32"},
        {ROUSE_DT_INT64, "INT64", "[1,2,3,9223372036854775808]",
         "input 'a': element 3: 9223372036854775808 is out of range for INT64"},
        {ROUSE_DT_INT64, "INT64", "[1,9e18,3,4]",
         "input 'a': element 1: 9e+18 is not exact for INT64 (write large integers without a "
         "fraction or exponent)"},
        {ROUSE_DT_UINT64, "UINT64", "[1,2,18446744073709551616,4]",
         "input 'a': element 2: 1.8446744073709552e+19 is out of range for UINT64"},
        {ROUSE_DT_UINT64, "UINT64", "[1,-2,3,4]",
         "input 'a': element 1: -2 is out of range for UINT64"},
        {ROUSE_DT_UINT16, "UINT16", "[1,2,3,0.5]",
         "input 'a': element 3: 0.5 is not an integer (UINT16)"},
        {ROUSE_DT_DOUBLE, "FP64", "[1,2,3,false]", "input 'a': element 3 is boolean, not a number"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        test_model t;
        add_sub_model(&t, cases[k].dtype);
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"inputs\":[{\"name\":\"a\",\"shape\":[2,2],\"datatype\":\"%s\",\"data\":%s},"
                 "{\"name\":\"b\",\"shape\":[2,2],\"datatype\":\"%s\",\"data\":[0,0,0,0]}]}",
                 cases[k].name, cases[k].data, cases[k].name);
        expect_error(&t, body, ROUSE_EMISMATCH, cases[k].msg);
        tm_free(&t);
    }
}

/* ---- binary extension --------------------------------------------------------- */

static void binary_inputs(void **state)
{
    (void)state;
    test_model t;
    add_sub_model(&t, ROUSE_DT_INT32);
    const char *hdr = "{\"inputs\":[{\"name\":\"a\",\"shape\":[2,2],\"datatype\":\"INT32\","
                      "\"parameters\":{\"binary_data_size\":16}},"
                      "{\"name\":\"b\",\"shape\":[2,2],\"datatype\":\"INT32\","
                      "\"parameters\":{\"binary_data_size\":16}}]}";
    const int32_t a[4] = {1, -2, 300000, 4}, b[4] = {10, 20, 30, -40};
    /* Every offset of the binary part, aligned or not. */
    for (size_t pad = 0; pad < 8; pad++) {
        rouse_buf body;
        rouse_buf_init(&body);
        rouse_buf_append_str(&body, hdr);
        for (size_t i = 0; i < pad; i++)
            rouse_buf_append_byte(&body, ' ');
        size_t jl = body.len;
        rouse_buf_append(&body, a, sizeof(a));
        rouse_buf_append(&body, b, sizeof(b));
        ctx c;
        ctx_init(&c);
        if (decode_bin(&c, &t, body.data, body.len, (int64_t)jl) < 0) fail_msg("%s", c.eb.msg);
        assert_memory_equal(c.req.inputs[0].data, a, sizeof(a));
        assert_memory_equal(c.req.inputs[1].data, b, sizeof(b));
        assert_int_equal((uintptr_t)c.req.inputs[0].data % 4, 0);
        run_encode(&c, &t);
        const json_value *d = json_get(resp_output(&c, 0), "data");
        assert_true(item_d(d, 0) == 11 && item_d(d, 1) == 18 && item_d(d, 2) == 300030 &&
                    item_d(d, 3) == -36);
        ctx_fini(&c);
        rouse_buf_fini(&body);
    }
    /* A JSON input and a binary one mixed. */
    {
        rouse_buf body;
        rouse_buf_init(&body);
        rouse_buf_append_str(&body, "{\"inputs\":[{\"name\":\"a\",\"shape\":[2,2],\"datatype\":"
                                    "\"INT32\",\"data\":[1,2,3,4]},{\"name\":\"b\",\"shape\":[2,2],"
                                    "\"datatype\":\"INT32\",\"parameters\":{\"binary_data_size\":"
                                    "16}}]}");
        size_t jl = body.len;
        rouse_buf_append(&body, b, sizeof(b));
        ctx c;
        ctx_init(&c);
        if (decode_bin(&c, &t, body.data, body.len, (int64_t)jl) < 0) fail_msg("%s", c.eb.msg);
        assert_memory_equal(c.req.inputs[1].data, b, sizeof(b));
        /* The body without its last byte; with one byte too many. */
        assert_int_equal(decode_bin(&c, &t, body.data, body.len - 1, (int64_t)jl), ROUSE_EMISMATCH);
        assert_string_equal(c.eb.msg, "input 'b': its 16 bytes of binary data run past the end of "
                                      "the body (15 bytes left)");
        rouse_buf_append_byte(&body, 0);
        assert_int_equal(decode_bin(&c, &t, body.data, body.len, (int64_t)jl), ROUSE_EMISMATCH);
        assert_string_equal(c.eb.msg, "the inputs' binary_data_size values add up to 16 bytes, but "
                                      "the body carries 17 bytes after the JSON");
        assert_int_equal(decode_bin(&c, &t, body.data, body.len, (int64_t)body.len + 1),
                         ROUSE_EFORMAT);
        char want[128];
        snprintf(want, sizeof(want), "the JSON header length %zu exceeds the body (%zu bytes)",
                 body.len + 1, body.len);
        assert_string_equal(c.eb.msg, want);
        /* A JSON header that is cut short is invalid JSON. */
        assert_int_equal(decode_bin(&c, &t, body.data, body.len, (int64_t)jl - 1), ROUSE_EFORMAT);
        assert_non_null(strstr(c.eb.msg, "invalid JSON: at byte "));
        /* binary_data_size without a binary part. */
        assert_int_equal(decode_bin(&c, &t, body.data, jl, -1), ROUSE_EMISMATCH);
        assert_string_equal(c.eb.msg, "input 'b': its 16 bytes of binary data run past the end of "
                                      "the body (0 bytes left)");
        ctx_fini(&c);
        rouse_buf_fini(&body);
    }
    expect_error(&t,
                 "{\"inputs\":[{\"name\":\"a\",\"shape\":[2,2],\"datatype\":\"INT32\","
                 "\"parameters\":{\"binary_data_size\":12}}]}",
                 ROUSE_EMISMATCH,
                 "input 'a': binary_data_size is 12 bytes, but shape [2,2] of INT32 needs 16");
    expect_error(&t,
                 "{\"inputs\":[{\"name\":\"a\",\"shape\":[2,2],\"datatype\":\"INT32\","
                 "\"data\":[1,2,3,4],\"parameters\":{\"binary_data_size\":16}}]}",
                 ROUSE_EFORMAT, "input 'a' has both 'data' and 'binary_data_size'");
    expect_error(&t,
                 "{\"inputs\":[{\"name\":\"a\",\"shape\":[2,2],\"datatype\":\"INT32\","
                 "\"parameters\":{\"binary_data_size\":-16}}]}",
                 ROUSE_EFORMAT, "input 'a': binary_data_size must be a non-negative integer");
    tm_free(&t);

    /* BOOL binary data: one byte per element. */
    identity_model(&t, ROUSE_DT_BOOL);
    const char bhdr[] = "{\"inputs\":[{\"name\":\"x\",\"shape\":[3],\"datatype\":\"BOOL\","
                        "\"parameters\":{\"binary_data_size\":3}}]}";
    char body[sizeof(bhdr) + 2];
    memcpy(body, bhdr, sizeof(bhdr) - 1);
    memcpy(body + sizeof(bhdr) - 1, "\1\0\1", 3);
    ctx c;
    ctx_init(&c);
    if (decode_bin(&c, &t, body, sizeof(body), (int64_t)sizeof(bhdr) - 1) < 0)
        fail_msg("%s", c.eb.msg);
    assert_int_equal(c.req.inputs[0].nbytes, 3);
    assert_memory_equal(c.req.inputs[0].data, "\1\0\1", 3);
    ctx_fini(&c);
    tm_free(&t);
}

static void binary_outputs_and_selection(void **state)
{
    (void)state;
    test_model t;
    add_sub_model(&t, ROUSE_DT_FLOAT);
    const char *in = "\"inputs\":[{\"name\":\"a\",\"shape\":[2,2],\"datatype\":\"FP32\","
                     "\"data\":[1,2,3,4]},{\"name\":\"b\",\"shape\":[2,2],\"datatype\":\"FP32\","
                     "\"data\":[0.5,0.5,0.5,0.5]}]";
    const float sum[4] = {1.5f, 2.5f, 3.5f, 4.5f}, diff[4] = {0.5f, 1.5f, 2.5f, 3.5f};
    char body[1024];

    /* binary_data_output: every output binary, in model order. */
    snprintf(body, sizeof(body), "{\"id\":\"b1\",\"parameters\":{\"binary_data_output\":true},%s}",
             in);
    ctx c;
    ctx_init(&c);
    decode_ok(&c, &t, body);
    assert_true(c.req.binary_default);
    run_encode(&c, &t);
    assert_true(c.json_len > 0);
    assert_int_equal(c.out.len, (size_t)c.json_len + 32);
    assert_memory_equal(c.out.data + c.json_len, sum, 16);
    assert_memory_equal(c.out.data + c.json_len + 16, diff, 16);
    for (size_t k = 0; k < 2; k++) {
        const json_value *o = resp_output(&c, k);
        assert_null(json_get(o, "data"));
        int64_t n;
        assert_true(json_as_int64(json_get(json_get(o, "parameters"), "binary_data_size"), &n));
        assert_int_equal(n, 16);
    }
    assert_string_equal(json_as_string(json_get(resp_output(&c, 1), "name")), "diff");
    ctx_fini(&c);

    /* Selection in request order: diff as binary, sum as JSON (per-output
     * binary_data overrides the default). */
    snprintf(body, sizeof(body),
             "{\"parameters\":{\"binary_data_output\":true},%s,\"outputs\":[{\"name\":\"diff\"},"
             "{\"name\":\"sum\",\"parameters\":{\"binary_data\":false}}]}",
             in);
    ctx_init(&c);
    decode_ok(&c, &t, body);
    assert_int_equal(c.req.n_outputs, 2);
    assert_string_equal(c.req.outputs[0].name, "diff");
    assert_true(c.req.outputs[0].binary);
    assert_false(c.req.outputs[1].binary);
    run_encode(&c, &t);
    assert_int_equal(c.out.len, (size_t)c.json_len + 16);
    assert_memory_equal(c.out.data + c.json_len, diff, 16);
    const json_value *s = resp_output(&c, 1);
    assert_string_equal(json_as_string(json_get(s, "name")), "sum");
    assert_true(item_d(json_get(s, "data"), 3) == 4.5);
    ctx_fini(&c);

    /* Only one output, JSON. */
    snprintf(body, sizeof(body), "{%s,\"outputs\":[{\"name\":\"diff\"}]}", in);
    ctx_init(&c);
    decode_ok(&c, &t, body);
    run_encode(&c, &t);
    assert_int_equal(c.json_len, -1);
    assert_int_equal(json_get(c.resp, "outputs")->u.arr.n, 1);
    assert_true(item_d(json_get(resp_output(&c, 0), "data"), 0) == 0.5);
    ctx_fini(&c);

    snprintf(body, sizeof(body), "{%s,\"outputs\":[{\"name\":\"prod\"}]}", in);
    expect_error(&t, body, ROUSE_EINVAL,
                 "unknown output 'prod' (the model's outputs are 'sum', 'diff')");
    snprintf(body, sizeof(body), "{%s,\"outputs\":[{\"name\":\"sum\"},{\"name\":\"sum\"}]}", in);
    expect_error(&t, body, ROUSE_EINVAL, "output 'sum' is requested twice");
    snprintf(body, sizeof(body), "{%s,\"outputs\":[\"sum\"]}", in);
    expect_error(&t, body, ROUSE_EFORMAT, "outputs[0] must be an object, got string");
    snprintf(body, sizeof(body), "{%s,\"outputs\":{}}", in);
    expect_error(&t, body, ROUSE_EFORMAT, "'outputs' must be an array, got object");
    snprintf(body, sizeof(body), "{%s,\"outputs\":[{\"nam\":\"sum\"}]}", in);
    expect_error(&t, body, ROUSE_EFORMAT, "outputs[0] has no 'name' string");
    snprintf(body, sizeof(body),
             "{%s,\"outputs\":[{\"name\":\"sum\",\"parameters\":{\"binary_data\":1}}]}", in);
    expect_error(&t, body, ROUSE_EFORMAT, "output 'sum': binary_data must be true or false");
    snprintf(body, sizeof(body), "{%s,\"outputs\":[{\"name\":\"sum\",\"parameters\":[]}]}", in);
    expect_error(&t, body, ROUSE_EFORMAT, "output 'sum': 'parameters' must be an object");
    snprintf(body, sizeof(body), "{\"parameters\":{\"binary_data_output\":\"yes\"},%s}", in);
    expect_error(&t, body, ROUSE_EFORMAT, "'binary_data_output' must be true or false");
    snprintf(body, sizeof(body), "{\"parameters\":7,%s}", in);
    expect_error(&t, body, ROUSE_EFORMAT, "'parameters' must be an object, got number");
    snprintf(body, sizeof(body), "{\"id\":12,%s}", in);
    expect_error(&t, body, ROUSE_EFORMAT, "'id' must be a string, got number");
    tm_free(&t);
}

/* ---- request errors ------------------------------------------------------------ */

static void request_errors(void **state)
{
    (void)state;
    test_model t;
    add_sub_model(&t, ROUSE_DT_FLOAT);
#define A_IN(fields) "{\"name\":\"a\"," fields "}"
#define B_OK "{\"name\":\"b\",\"shape\":[2,2],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}"
#define REQ(...) "{\"inputs\":[" __VA_ARGS__ "]}"
    expect_error(&t, "{\"inputs\":[", ROUSE_EFORMAT,
                 "invalid JSON: at byte 11: expected a value, got end of input");
    expect_error(&t, "[1]", ROUSE_EFORMAT, "the request must be a JSON object, got array");
    expect_error(&t, "{}", ROUSE_EFORMAT, "the request has no 'inputs' array");
    expect_error(&t, "{\"inputs\":{}}", ROUSE_EFORMAT, "the request has no 'inputs' array");
    expect_error(&t, REQ("3"), ROUSE_EFORMAT, "inputs[0] must be an object, got number");
    expect_error(&t, REQ(B_OK ",{\"shape\":[2,2]}"), ROUSE_EFORMAT,
                 "inputs[1] has no 'name' string");
    expect_error(&t, REQ("{\"name\":\"c\",\"shape\":[2,2],\"datatype\":\"FP32\",\"data\":[]}"),
                 ROUSE_EINVAL, "unknown input 'c' (the model's inputs are 'a', 'b')");
    expect_error(&t, REQ(B_OK "," B_OK), ROUSE_EINVAL, "input 'b' is given twice");
    expect_error(&t, REQ(B_OK), ROUSE_EINVAL, "missing input 'a'");
    expect_error(&t, REQ(), ROUSE_EINVAL, "missing inputs 'a', 'b'");
    expect_error(&t, REQ(A_IN("\"shape\":[2,2],\"data\":[1,2,3,4]")), ROUSE_EFORMAT,
                 "input 'a' has no 'datatype' string");
    expect_error(&t, REQ(A_IN("\"shape\":[2,2],\"datatype\":\"FP64\",\"data\":[1,2,3,4]")),
                 ROUSE_EMISMATCH, "input 'a': datatype FP64 does not match the model's FP32");
    expect_error(&t, REQ(A_IN("\"shape\":[2,2],\"datatype\":\"BYTES\",\"data\":[1,2,3,4]")),
                 ROUSE_EMISMATCH,
                 "input 'a': datatype BYTES is not supported (the model wants FP32)");
    expect_error(&t, REQ(A_IN("\"shape\":[2,2],\"datatype\":\"fp32\",\"data\":[1,2,3,4]")),
                 ROUSE_EFORMAT, "input 'a': unknown datatype 'fp32'");
    expect_error(&t, REQ(A_IN("\"datatype\":\"FP32\",\"data\":[1,2,3,4]")), ROUSE_EFORMAT,
                 "input 'a' has no 'shape' array");
    expect_error(&t, REQ(A_IN("\"shape\":[2,-2],\"datatype\":\"FP32\",\"data\":[1,2,3,4]")),
                 ROUSE_EFORMAT, "input 'a': shape[1] must be a non-negative integer");
    expect_error(&t, REQ(A_IN("\"shape\":[2,\"2\"],\"datatype\":\"FP32\",\"data\":[1,2,3,4]")),
                 ROUSE_EFORMAT, "input 'a': shape[1] must be a non-negative integer");
    expect_error(&t, REQ(A_IN("\"shape\":[4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]")),
                 ROUSE_EMISMATCH, "input 'a': shape [4] does not match the model's [2,2]");
    expect_error(&t, REQ(A_IN("\"shape\":[2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]")),
                 ROUSE_EMISMATCH, "input 'a': shape [2,3] does not match the model's [2,2]");
    expect_error(&t, REQ(A_IN("\"shape\":[1,1,1,1,1,1,1,1,1],\"datatype\":\"FP32\",\"data\":[1]")),
                 ROUSE_EMISMATCH, "input 'a': shape has 9 dims, at most 8");
    expect_error(&t, REQ(A_IN("\"shape\":[2,2],\"datatype\":\"FP32\"")), ROUSE_EFORMAT,
                 "input 'a' has no 'data'");
    expect_error(&t,
                 REQ(A_IN("\"shape\":[2,2],\"datatype\":\"FP32\",\"parameters\":1,\"data\":[]")),
                 ROUSE_EFORMAT, "input 'a': 'parameters' must be an object");
    tm_free(&t);

    /* Dynamic dims are free; a huge element count is refused before any
     * allocation. */
    relu_model(&t);
    expect_error(&t,
                 "{\"inputs\":[{\"name\":\"x\",\"shape\":[4294967296,3],\"datatype\":\"FP32\","
                 "\"data\":[1]}]}",
                 ROUSE_EMISMATCH,
                 "input 'x': 'data' has 1 elements, but shape [4294967296,3] needs "
                 "12884901888");
    expect_error(&t,
                 "{\"inputs\":[{\"name\":\"x\",\"shape\":[9223372036854775807,3],\"datatype\":"
                 "\"FP32\",\"data\":[1]}]}",
                 ROUSE_EMISMATCH, "input 'x': shape [9223372036854775807,3] has too many elements");
    expect_error(&t,
                 "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\","
                 "\"data\":[1,2,3]}],\"extra\":[1,{}]}",
                 0, "");
    tm_free(&t);
}

/* A 224x224x3 image as JSON: decoded exactly. The time is printed for
 * information only. */
static void large_image_body(void **state)
{
    (void)state;
    test_model t;
    relu_model(&t);
    enum { N = 224 * 224 * 3 };
    rouse_buf body;
    rouse_buf_init(&body);
    rouse_buf_append_str(&body, "{\"inputs\":[{\"name\":\"x\",\"shape\":[50176,3],"
                                "\"datatype\":\"FP32\",\"data\":[");
    for (int i = 0; i < N; i++) {
        if (i) rouse_buf_append_byte(&body, ',');
        json_write_float(&body, (float)((i * 7919) % 256) / 255.0f - 0.5f);
    }
    rouse_buf_append_str(&body, "]}]}");
    ctx c;
    ctx_init(&c);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (decode(&c, &t, body.data) < 0) fail_msg("%s", c.eb.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const float *x = c.req.inputs[0].data;
    for (int i = 0; i < N; i++)
        assert_true(x[i] == (float)((i * 7919) % 256) / 255.0f - 0.5f);
    print_message("decoded %zu bytes (%d floats) in %.1f ms\n", body.len, N,
                  (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    ctx_fini(&c);
    rouse_buf_fini(&body);
    tm_free(&t);
}

/* ---- metadata ------------------------------------------------------------------ */

static void model_metadata(void **state)
{
    (void)state;
    test_model t;
    relu_model(&t);
    rouse_buf b;
    rouse_buf_init(&b);
    const int64_t versions[2] = {1, 3};
    assert_int_equal(oip_model_metadata(t.m, "relu \"net\"", versions, 2, &b), 0);
    assert_string_equal(b.data, "{\"name\":\"relu \\\"net\\\"\",\"versions\":[\"1\",\"3\"],"
                                "\"platform\":\"onnx\",\"inputs\":[{\"name\":\"x\",\"datatype\":"
                                "\"FP32\",\"shape\":[-1,3]}],\"outputs\":[{\"name\":\"y\","
                                "\"datatype\":\"FP32\",\"shape\":[-1,3]}]}");
    rouse_buf_fini(&b);
    tm_free(&t);
    assert_string_equal(oip_datatype_name(ROUSE_DT_BFLOAT16), "BF16");
    assert_null(oip_datatype_name(8));
    assert_int_equal(oip_datatype_parse("UINT16"), ROUSE_DT_UINT16);
    assert_int_equal(oip_datatype_parse("BYTES"), -1);
    assert_int_equal(oip_datatype_parse(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_flat_and_nested),
        cmocka_unit_test(nested_shape_errors),
        cmocka_unit_test(numeric_datatypes),
        cmocka_unit_test(small_float_and_bool_datatypes),
        cmocka_unit_test(element_range_errors),
        cmocka_unit_test(binary_inputs),
        cmocka_unit_test(binary_outputs_and_selection),
        cmocka_unit_test(request_errors),
        cmocka_unit_test(large_image_body),
        cmocka_unit_test(model_metadata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
