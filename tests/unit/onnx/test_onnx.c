/*
 * ONNX decoder: a hand-built model covering every field we read, every class
 * of malformed input (truncation at each byte, bad lengths and varints,
 * impossible tensors, unsupported features), and the real models in
 * ../shared/models when that folder exists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/onnx/onnx.h"
#include "engine/tensor.h"
#include "enc.h"

#ifndef ROUSE_SHARED_MODELS
#define ROUSE_SHARED_MODELS "../shared/models"
#endif

/* ---- builders ----------------------------------------------------------- */

/* TensorProto header: name, data_type, dims (packed). */
static void tensor_head(enc *t, const char *name, int dt, const int64_t *dims, size_t n_dims)
{
    if (name) enc_str(t, 8, name);
    if (dt) enc_int(t, 2, dt);
    if (n_dims) enc_packed_ints(t, 1, dims, n_dims);
}

static void value_info(enc *g, uint32_t field, const char *name, int elem_type,
                       const char *const *params, const int64_t *dims, int rank)
{
    enc vi = {0}, type = {0}, tt = {0}, shape = {0};
    enc_str(&vi, 1, name);
    enc_int(&tt, 1, elem_type);
    if (rank >= 0) {
        for (int i = 0; i < rank; i++) {
            enc dim = {0};
            if (params && params[i])
                enc_str(&dim, 2, params[i]);
            else
                enc_int(&dim, 1, dims[i]);
            enc_int(&dim, 3, 0); /* an unknown field where denotation lives: skipped */
            enc_msg(&shape, 1, &dim);
        }
        enc_msg(&tt, 2, &shape);
    }
    enc_msg(&type, 1, &tt);
    enc_msg(&vi, 2, &type);
    enc_msg(g, field, &vi);
}

/* Unknown fields of every wire type, which every message must skip. */
static void unknown_fields(enc *e)
{
    enc_int(e, 999, 12345);
    enc_fixed64(e, 998, 1);
    enc_str(e, 997, "ignored");
    enc_fixed32(e, 996, 2);
}

static const float w_vals[2] = {0.5f, -1.0f};

/* The model every positive test decodes and every truncation test cuts. */
static enc build_model(void)
{
    enc m = {0}, g = {0}, n = {0}, a = {0}, t = {0}, op = {0};

    enc_int(&m, 1, 8);
    enc_str(&m, 2, "rouse-test");
    enc_str(&m, 3, "0.1");
    unknown_fields(&m);
    enc_str(&op, 1, "com.example");
    enc_int(&op, 2, 1);
    enc_msg(&m, 8, &op);
    enc_str(&op, 1, "");
    enc_int(&op, 2, 17);
    enc_msg(&m, 8, &op);

    enc_str(&g, 2, "main");
    unknown_fields(&g);

    /* node 0: Conv with attributes of every kind. */
    enc_str(&n, 1, "x");
    enc_str(&n, 1, "W");
    enc_str(&n, 1, "B");
    enc_str(&n, 2, "y");
    enc_str(&n, 3, "conv0");
    enc_str(&n, 4, "Conv");
    unknown_fields(&n);

    const int64_t strides[2] = {2, 3};
    enc_str(&a, 1, "strides");
    enc_packed_ints(&a, 8, strides, 2);
    enc_int(&a, 20, 7);
    enc_msg(&n, 5, &a);

    /* No type: inferred from the populated field. Unpacked ints. */
    enc_str(&a, 1, "pads");
    for (int i = 0; i < 4; i++)
        enc_int(&a, 8, i - 1);
    unknown_fields(&a);
    enc_msg(&n, 5, &a);

    enc_str(&a, 1, "alpha");
    enc_float(&a, 2, 0.25f);
    enc_int(&a, 20, 1);
    enc_msg(&n, 5, &a);

    enc_str(&a, 1, "group");
    enc_int(&a, 3, -4);
    enc_msg(&n, 5, &a);

    enc_str(&a, 1, "auto_pad");
    enc_len(&a, 4, "SAME\0X", 6);
    enc_int(&a, 20, 3);
    enc_msg(&n, 5, &a);

    const float scales[2] = {1.5f, 2.5f};
    enc_str(&a, 1, "scales");
    enc_packed_floats(&a, 7, scales, 2);
    enc_float(&a, 7, 3.5f);
    enc_msg(&n, 5, &a);

    enc_str(&a, 1, "names");
    enc_str(&a, 9, "a");
    enc_str(&a, 9, "");
    enc_str(&a, 9, "ccc");
    enc_int(&a, 20, 8);
    enc_msg(&n, 5, &a);

    enc_str(&a, 1, "value");
    tensor_head(&t, "v", ENG_DT_INT64, NULL, 0);
    enc_int(&t, 7, 42);
    enc_msg(&a, 5, &t);
    enc_msg(&n, 5, &a);

    enc_str(&a, 1, "body");
    enc_str(&a, 6, "\x0a\x01z"); /* never decoded */
    enc_int(&a, 20, 5);
    enc_msg(&n, 5, &a);

    enc_str(&a, 1, "many");
    const int64_t d2[1] = {2};
    tensor_head(&t, "m0", ENG_DT_FLOAT, d2, 1);
    enc_len(&t, 9, w_vals, sizeof(w_vals));
    enc_msg(&a, 10, &t);
    tensor_head(&t, "", ENG_DT_UINT8, d2, 1);
    enc_len(&t, 9, "\x07\x09", 2);
    enc_msg(&a, 10, &t);
    enc_msg(&n, 5, &a);

    enc_msg(&g, 1, &n);

    /* node 1: no name, an omitted optional input, a domain. */
    enc_str(&n, 1, "y");
    enc_str(&n, 1, "");
    enc_str(&n, 2, "z");
    enc_str(&n, 4, "Relu");
    enc_str(&n, 7, "ai.onnx");
    enc_msg(&g, 1, &n);

    /* Initializers in every encoding. */
    const int64_t wd[4] = {2, 1, 1, 1};
    tensor_head(&t, "W", ENG_DT_FLOAT, wd, 4);
    unknown_fields(&t);
    enc_len(&t, 9, w_vals, sizeof(w_vals));
    enc_msg(&g, 5, &t);

    const float bv[2] = {0.25f, 0.75f};
    tensor_head(&t, "B", ENG_DT_FLOAT, d2, 1);
    enc_packed_floats(&t, 4, bv, 2);
    enc_msg(&g, 5, &t);

    const int64_t d3[1] = {3};
    tensor_head(&t, "C", ENG_DT_FLOAT, d3, 1);
    enc_float(&t, 4, 1.0f);
    enc_float(&t, 4, 2.0f);
    enc_float(&t, 4, 3.0f);
    enc_msg(&g, 5, &t);

    /* dims unpacked, int64_data packed. */
    const int64_t sv[2] = {-1, 5};
    enc_str(&t, 8, "S");
    enc_int(&t, 2, ENG_DT_INT64);
    enc_int(&t, 1, 2);
    enc_packed_ints(&t, 7, sv, 2);
    enc_msg(&g, 5, &t);

    const int64_t i8v[2] = {-3, 127};
    tensor_head(&t, "I8", ENG_DT_INT8, d2, 1);
    enc_packed_ints(&t, 5, i8v, 2);
    enc_msg(&g, 5, &t);

    const int64_t one[1] = {1};
    tensor_head(&t, "H", ENG_DT_FLOAT16, one, 1);
    enc_int(&t, 5, 0x3c00);
    enc_msg(&g, 5, &t);

    tensor_head(&t, "D", ENG_DT_DOUBLE, NULL, 0);
    enc_double(&t, 10, 1.25);
    enc_msg(&g, 5, &t);

    tensor_head(&t, "U", ENG_DT_UINT32, d2, 1);
    enc_int(&t, 11, 7);
    enc_int(&t, 11, 0xffffffff);
    enc_msg(&g, 5, &t);

    const int64_t d0[2] = {3, 0};
    tensor_head(&t, "E", ENG_DT_FLOAT, d0, 2);
    enc_msg(&g, 5, &t);

    const char *const xp[4] = {"N", NULL, NULL, NULL};
    const int64_t xd[4] = {0, 3, 4, 4};
    value_info(&g, 11, "x", ENG_DT_FLOAT, xp, xd, 4);
    /* A sequence input: not a tensor. */
    enc vi = {0}, type = {0}, seq = {0};
    enc_str(&vi, 1, "seq");
    enc_int(&seq, 1, 0);
    enc_msg(&type, 4, &seq);
    enc_msg(&vi, 2, &type);
    enc_msg(&g, 11, &vi);
    value_info(&g, 12, "z", ENG_DT_FLOAT, NULL, NULL, -1);
    value_info(&g, 13, "y", ENG_DT_FLOAT, NULL, NULL, 0);

    enc_msg(&m, 7, &g);
    enc_len(&m, 25, "", 0);
    return m;
}

/* ---- helpers ------------------------------------------------------------ */

static bool inside(const void *p, const enc *e)
{
    const uint8_t *b = p;
    return b >= e->p && b < e->p + e->len;
}

static float f32_at(const void *p, size_t i)
{
    float f;
    memcpy(&f, (const uint8_t *)p + 4 * i, 4);
    return f;
}

static int64_t i64_at(const void *p, size_t i)
{
    int64_t v;
    memcpy(&v, (const uint8_t *)p + 8 * i, 8);
    return v;
}

static const onnx_tensor *init_named(const onnx_graph *g, const char *name)
{
    for (int i = 0; i < g->n_initializers; i++)
        if (!strcmp(g->initializers[i].name, name)) return &g->initializers[i];
    fail_msg("no initializer '%s'", name);
    return NULL;
}

/* Decodes bytes expecting rc, with `want` somewhere in the message. */
static void expect_model_err(const enc *e, int rc, const char *want)
{
    onnx_model m;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int got = onnx_model_decode(e->p, e->len, &m, &eb);
    if (got != rc || eb.code != rc || !strstr(eb.msg, want))
        fail_msg("want %s containing \"%s\", got %s: \"%s\"", rouse_err_name(rc), want,
                 rouse_err_name(got), eb.msg);
    assert_null(m.arena.head);
}

/* A model whose graph holds just the given initializer. Frees t. */
static enc model_with_init(enc *t)
{
    enc m = {0}, g = {0};
    enc_msg(&g, 5, t);
    enc_msg(&m, 7, &g);
    return m;
}

static void expect_init_err(enc *t, int rc, const char *want)
{
    enc m = model_with_init(t);
    expect_model_err(&m, rc, want);
    enc_free(&m);
}

/* A model whose only node holds the given attribute. Frees a. */
static void expect_attr_err(enc *a, int rc, const char *want)
{
    enc m = {0}, g = {0}, n = {0};
    enc_str(&n, 3, "Conv_3");
    enc_str(&n, 4, "Conv");
    enc_msg(&n, 5, a);
    enc_msg(&g, 1, &n);
    enc_msg(&m, 7, &g);
    expect_model_err(&m, rc, want);
    enc_free(&m);
}

/* ---- the valid model ---------------------------------------------------- */

static void decodes_every_field(void **state)
{
    (void)state;
    enc e = build_model();
    onnx_model m;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = onnx_model_decode(e.p, e.len, &m, &eb);
    if (rc) fail_msg("decode: %s", eb.msg);

    assert_int_equal(m.ir_version, 8);
    assert_string_equal(m.producer_name, "rouse-test");
    assert_string_equal(m.producer_version, "0.1");
    assert_true(m.has_functions);
    assert_int_equal(m.n_opsets, 2);
    assert_string_equal(m.opsets[0].domain, "com.example");
    assert_int_equal(onnx_model_default_opset(&m), 17);

    const onnx_graph *g = &m.graph;
    assert_string_equal(g->name, "main");
    assert_int_equal(g->n_nodes, 2);

    const onnx_node *n = &g->nodes[0];
    assert_string_equal(n->name, "conv0");
    assert_string_equal(n->op_type, "Conv");
    assert_string_equal(n->domain, "");
    assert_int_equal(n->n_inputs, 3);
    assert_string_equal(n->inputs[2], "B");
    assert_int_equal(n->n_outputs, 1);
    assert_string_equal(n->outputs[0], "y");
    assert_int_equal(n->n_attrs, 10);
    assert_null(onnx_node_attr(n, "nope"));

    const onnx_attr *a = onnx_node_attr(n, "strides");
    assert_non_null(a);
    assert_int_equal(a->type, ONNX_ATTR_INTS);
    assert_int_equal(a->n_ints, 2);
    assert_int_equal(a->ints[1], 3);

    a = onnx_node_attr(n, "pads");
    assert_int_equal(a->type, ONNX_ATTR_INTS);
    assert_int_equal(a->n_ints, 4);
    assert_int_equal(a->ints[0], -1);
    assert_int_equal(a->ints[3], 2);

    a = onnx_node_attr(n, "alpha");
    assert_int_equal(a->type, ONNX_ATTR_FLOAT);
    assert_true(a->f == 0.25f);

    a = onnx_node_attr(n, "group");
    assert_int_equal(a->type, ONNX_ATTR_INT);
    assert_int_equal(a->i, -4);

    a = onnx_node_attr(n, "auto_pad");
    assert_int_equal(a->type, ONNX_ATTR_STRING);
    assert_int_equal(a->s_len, 6);
    assert_memory_equal(a->s, "SAME\0X", 7);

    a = onnx_node_attr(n, "scales");
    assert_int_equal(a->type, ONNX_ATTR_FLOATS);
    assert_int_equal(a->n_floats, 3);
    assert_true(a->floats[0] == 1.5f && a->floats[2] == 3.5f);

    a = onnx_node_attr(n, "names");
    assert_int_equal(a->type, ONNX_ATTR_STRINGS);
    assert_int_equal(a->n_strings, 3);
    assert_string_equal(a->strings[1], "");
    assert_string_equal(a->strings[2], "ccc");

    a = onnx_node_attr(n, "value");
    assert_int_equal(a->type, ONNX_ATTR_TENSOR);
    assert_non_null(a->t);
    assert_string_equal(a->t->name, "v");
    assert_int_equal(a->t->n_dims, 0);
    assert_int_equal(a->t->n_elems, 1);
    assert_int_equal(a->t->nbytes, 8);
    assert_false(a->t->in_place);
    assert_int_equal(i64_at(a->t->data, 0), 42);

    a = onnx_node_attr(n, "body");
    assert_int_equal(a->type, ONNX_ATTR_GRAPH);
    assert_true(a->has_graph);

    a = onnx_node_attr(n, "many");
    assert_int_equal(a->type, ONNX_ATTR_TENSORS);
    assert_int_equal(a->n_tensors, 2);
    assert_true(a->tensors[0].in_place && inside(a->tensors[0].data, &e));
    assert_true(f32_at(a->tensors[0].data, 1) == -1.0f);
    assert_string_equal(a->tensors[1].name, "");
    assert_memory_equal(a->tensors[1].data, "\x07\x09", 2);

    n = &g->nodes[1];
    assert_string_equal(n->name, "");
    assert_string_equal(n->domain, "ai.onnx");
    assert_int_equal(n->n_inputs, 2);
    assert_string_equal(n->inputs[1], "");
    assert_int_equal(n->n_attrs, 0);

    assert_int_equal(g->n_initializers, 9);
    const onnx_tensor *t = init_named(g, "W");
    assert_int_equal(t->data_type, ENG_DT_FLOAT);
    assert_int_equal(t->n_dims, 4);
    assert_int_equal(t->dims[0], 2);
    assert_int_equal(t->n_elems, 2);
    assert_int_equal(t->nbytes, 8);
    assert_true(t->in_place && inside(t->data, &e));
    assert_memory_equal(t->data, w_vals, 8);

    t = init_named(g, "B");
    assert_true(t->in_place && inside(t->data, &e));
    assert_true(f32_at(t->data, 1) == 0.75f);

    t = init_named(g, "C");
    assert_false(t->in_place);
    assert_int_equal(t->nbytes, 12);
    assert_true(f32_at(t->data, 0) == 1.0f && f32_at(t->data, 2) == 3.0f);

    t = init_named(g, "S");
    assert_int_equal(t->n_dims, 1);
    assert_int_equal(t->dims[0], 2);
    assert_false(t->in_place);
    assert_int_equal(i64_at(t->data, 0), -1);
    assert_int_equal(i64_at(t->data, 1), 5);

    t = init_named(g, "I8");
    assert_int_equal(t->nbytes, 2);
    assert_memory_equal(t->data, "\xfd\x7f", 2);

    t = init_named(g, "H");
    assert_int_equal(t->nbytes, 2);
    assert_memory_equal(t->data, "\x00\x3c", 2);

    t = init_named(g, "D");
    assert_int_equal(t->n_dims, 0);
    assert_int_equal(t->n_elems, 1);
    double dv;
    memcpy(&dv, t->data, 8);
    assert_true(dv == 1.25);

    t = init_named(g, "U");
    assert_int_equal(t->nbytes, 8);
    assert_memory_equal(t->data, "\x07\0\0\0\xff\xff\xff\xff", 8);

    t = init_named(g, "E");
    assert_int_equal(t->n_elems, 0);
    assert_int_equal(t->nbytes, 0);
    assert_non_null(t->data);

    assert_int_equal(g->n_inputs, 2);
    const onnx_value_info *vi = &g->inputs[0];
    assert_string_equal(vi->name, "x");
    assert_true(vi->is_tensor);
    assert_int_equal(vi->elem_type, ENG_DT_FLOAT);
    assert_int_equal(vi->rank, 4);
    assert_int_equal(vi->dims[0].value, -1);
    assert_string_equal(vi->dims[0].param, "N");
    assert_int_equal(vi->dims[1].value, 3);
    assert_null(vi->dims[1].param);
    vi = &g->inputs[1];
    assert_string_equal(vi->name, "seq");
    assert_false(vi->is_tensor);
    assert_int_equal(vi->elem_type, 0);
    assert_int_equal(vi->rank, -1);
    assert_int_equal(g->n_outputs, 1);
    assert_int_equal(g->outputs[0].rank, -1);
    assert_true(g->outputs[0].is_tensor);
    assert_int_equal(g->n_value_infos, 1);
    assert_int_equal(g->value_infos[0].rank, 0);

    onnx_model_fini(&m);
    assert_null(m.arena.head);
    onnx_model_fini(&m); /* twice is harmless */
    enc_free(&e);
}

static void standalone_tensor(void **state)
{
    (void)state;
    enc t = {0};
    const int64_t dims[2] = {1, 2};
    tensor_head(&t, "input_ids", ENG_DT_INT64, dims, 2);
    const int64_t vals[2] = {7, 8};
    enc_len(&t, 9, vals, sizeof(vals));

    rouse_arena arena;
    rouse_arena_init(&arena, 0);
    onnx_tensor out;
    rouse_errbuf eb;
    assert_int_equal(onnx_tensor_decode(t.p, t.len, &arena, &out, &eb), 0);
    assert_string_equal(out.name, "input_ids");
    assert_int_equal(out.n_elems, 2);
    assert_true(out.in_place && inside(out.data, &t));
    assert_int_equal(i64_at(out.data, 1), 8);

    /* Every prefix: an error or a tensor, never a crash. */
    for (size_t len = 0; len < t.len; len++) {
        int rc = onnx_tensor_decode(t.p, len, &arena, &out, &eb);
        assert_true(rc == 0 || (rc == ROUSE_EFORMAT && eb.msg[0]));
    }
    assert_int_equal(onnx_tensor_decode(t.p, 0, &arena, &out, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "data_type is missing"));
    assert_int_equal(onnx_tensor_decode(NULL, 4, &arena, &out, &eb), ROUSE_EINVAL);
    rouse_arena_fini(&arena);
    enc_free(&t);
}

/* ---- malformed input ---------------------------------------------------- */

static void every_truncation_fails_cleanly(void **state)
{
    (void)state;
    enc e = build_model();
    size_t ok = 0;
    for (size_t len = 0; len < e.len; len++) {
        /* A fresh copy of exactly len bytes so that ASan sees any overread. */
        uint8_t *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, e.p, len);
        onnx_model m;
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        int rc = onnx_model_decode(copy, len, &m, &eb);
        if (rc == 0) {
            ok++;
            onnx_model_fini(&m);
        } else {
            assert_true(rc == ROUSE_EFORMAT);
            assert_true(eb.msg[0] != '\0');
        }
        free(copy);
    }
    /* Cutting inside the graph always breaks it; only the fields after it
     * (functions) may be cut cleanly. */
    assert_true(ok <= 3);
    enc_free(&e);
}

static void every_byte_corruption_fails_cleanly(void **state)
{
    (void)state;
    enc e = build_model();
    const uint8_t repl[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    uint8_t *copy = malloc(e.len);
    assert_non_null(copy);
    for (size_t i = 0; i < e.len; i++) {
        for (size_t k = 0; k < sizeof(repl) + 1; k++) {
            memcpy(copy, e.p, e.len);
            copy[i] = k < sizeof(repl) ? repl[k] : (uint8_t)(e.p[i] ^ 0x40);
            onnx_model m;
            rouse_errbuf eb;
            int rc = onnx_model_decode(copy, e.len, &m, &eb);
            if (rc == 0)
                onnx_model_fini(&m);
            else
                assert_true(eb.msg[0] != '\0');
        }
    }
    free(copy);
    enc_free(&e);
}

static void bad_wire_structure(void **state)
{
    (void)state;
    enc m = {0};

    /* A graph whose declared length runs past the end of the file. */
    enc_tag(&m, 7, 2);
    enc_varint(&m, 100);
    enc_bytes(&m, "\x0a\x00", 2);
    expect_model_err(&m, ROUSE_EFORMAT, "length 100 at offset 1 runs past the end");
    enc_free(&m);

    /* An ir_version varint of 11 bytes. */
    enc_tag(&m, 1, 0);
    for (int i = 0; i < 10; i++)
        enc_byte(&m, 0x81);
    enc_byte(&m, 0x00);
    expect_model_err(&m, ROUSE_EFORMAT, "varint longer than 10 bytes at offset 1");
    enc_free(&m);

    enc_tag(&m, 1, 0);
    for (int i = 0; i < 9; i++)
        enc_byte(&m, 0xff);
    enc_byte(&m, 0x03);
    expect_model_err(&m, ROUSE_EFORMAT, "overflows 64 bits");
    enc_free(&m);

    /* A known field with the wrong wire type. */
    enc_int(&m, 2, 5);
    expect_model_err(&m, ROUSE_EFORMAT, "producer_name (field 2) at offset 0 has wire type varint");
    enc_free(&m);

    enc_tag(&m, 5, 3);
    expect_model_err(&m, ROUSE_EFORMAT, "group");
    enc_free(&m);

    enc_byte(&m, 0x00);
    expect_model_err(&m, ROUSE_EFORMAT, "invalid field number 0");
    enc_free(&m);

    expect_model_err(&m, ROUSE_EFORMAT, "model has no graph");

    enc g = {0};
    enc_msg(&m, 7, &g);
    enc_msg(&m, 7, &g);
    expect_model_err(&m, ROUSE_EFORMAT, "graph (field 7) appears twice");
    enc_free(&m);

    /* int32 fields reject values outside int32. */
    enc t = {0};
    enc_int(&t, 2, 1ll << 40);
    expect_init_err(&t, ROUSE_EFORMAT, "data_type at offset");

    onnx_model om;
    rouse_errbuf eb;
    assert_int_equal(onnx_model_decode(NULL, 5, &om, &eb), ROUSE_EINVAL);
}

static void bad_tensors(void **state)
{
    (void)state;
    enc t = {0};
    const int64_t conv[4] = {64, 3, 7, 7};
    tensor_head(&t, "conv1.weight", ENG_DT_FLOAT, conv, 4);
    uint8_t zeros[200] = {0};
    enc_len(&t, 9, zeros, 100);
    expect_init_err(&t, ROUSE_EFORMAT,
                    "initializer 'conv1.weight': raw_data has 100 bytes, dims [64, 3, 7, 7] "
                    "need 37632");

    const int64_t neg[2] = {2, -3};
    tensor_head(&t, "n", ENG_DT_FLOAT, neg, 2);
    expect_init_err(&t, ROUSE_EFORMAT, "initializer 'n': dims[1] is negative (-3)");

    const int64_t huge[3] = {1ll << 40, 1ll << 40, 4};
    tensor_head(&t, "h", ENG_DT_FLOAT, huge, 3);
    enc_len(&t, 9, zeros, 4);
    expect_init_err(&t, ROUSE_EFORMAT, "element count overflows");

    /* Count fits int64, but the byte size does not fit size_t / int64. */
    const int64_t big[2] = {1ll << 31, 1ll << 31};
    tensor_head(&t, "b", ENG_DT_DOUBLE, big, 2);
    expect_init_err(&t, ROUSE_EFORMAT, "element count overflows");

    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    tensor_head(&t, "r", ENG_DT_FLOAT, nine, 9);
    enc_len(&t, 9, zeros, 4);
    expect_init_err(&t, ROUSE_EFORMAT, "rank 9 exceeds the limit of 8");

    const int64_t d4[1] = {4};
    tensor_head(&t, "missing", ENG_DT_FLOAT, d4, 1);
    expect_init_err(&t, ROUSE_EFORMAT, "initializer 'missing': no data, dims [4] need 4 values");

    tensor_head(&t, "scalar", ENG_DT_FLOAT, NULL, 0);
    expect_init_err(&t, ROUSE_EFORMAT, "no data, dims [] need 1 values");

    tensor_head(&t, "ext", ENG_DT_FLOAT, d4, 1);
    enc_int(&t, 14, 1);
    expect_init_err(&t, ROUSE_EFORMAT,
                    "initializer 'ext': data_location is EXTERNAL but external_data is empty");

    enc kv = {0};
    enc_str(&kv, 1, "location");
    enc_str(&kv, 2, "weights.bin");
    tensor_head(&t, "ext2", ENG_DT_FLOAT, d4, 1);
    enc_msg(&t, 13, &kv);
    expect_init_err(&t, ROUSE_EFORMAT, "external_data is set but data_location is not EXTERNAL");

    /* Well-formed external data decodes; what it names is checked when the
     * files are mapped (tests/unit/engine/test_external.c). Without a
     * location it is refused here. */
    enc kv2 = {0};
    enc_str(&kv2, 1, "offset");
    enc_str(&kv2, 2, "0");
    tensor_head(&t, "ext3", ENG_DT_FLOAT, d4, 1);
    enc_msg(&t, 13, &kv2);
    enc_int(&t, 14, 1);
    expect_init_err(&t, ROUSE_EFORMAT, "initializer 'ext3': external_data has no 'location'");

    tensor_head(&t, "str", ENG_DT_STRING, d4, 1);
    enc_str(&t, 6, "a");
    expect_init_err(&t, ROUSE_EUNSUPPORTED, "string tensors");

    tensor_head(&t, "c64", ENG_DT_COMPLEX64, d4, 1);
    expect_init_err(&t, ROUSE_EUNSUPPORTED, "data_type 14 (complex64) is not supported");

    tensor_head(&t, "odd", 1000, d4, 1);
    expect_init_err(&t, ROUSE_EUNSUPPORTED, "data_type 1000");

    tensor_head(&t, "notype", 0, d4, 1);
    enc_len(&t, 9, zeros, 16);
    expect_init_err(&t, ROUSE_EFORMAT, "initializer 'notype': data_type is missing");

    tensor_head(&t, "negtype", -2, d4, 1);
    expect_init_err(&t, ROUSE_EFORMAT, "data_type is invalid");

    const float f4[4] = {1, 2, 3, 4};
    tensor_head(&t, "both", ENG_DT_FLOAT, d4, 1);
    enc_len(&t, 9, zeros, 16);
    enc_packed_floats(&t, 4, f4, 4);
    expect_init_err(&t, ROUSE_EFORMAT, "both raw_data and float_data");

    tensor_head(&t, "mixed", ENG_DT_FLOAT, d4, 1);
    enc_packed_floats(&t, 4, f4, 2);
    enc_int(&t, 7, 1);
    expect_init_err(&t, ROUSE_EFORMAT, "both float_data and int64_data");

    tensor_head(&t, "wrongfield", ENG_DT_INT64, d4, 1);
    enc_packed_floats(&t, 4, f4, 4);
    expect_init_err(&t, ROUSE_EFORMAT, "float_data cannot hold int64 values");

    tensor_head(&t, "short", ENG_DT_FLOAT, d4, 1);
    enc_packed_floats(&t, 4, f4, 3);
    expect_init_err(&t, ROUSE_EFORMAT, "float_data has 3 values, dims [4] need 4");

    tensor_head(&t, "ragged", ENG_DT_FLOAT, d4, 1);
    enc_len(&t, 4, zeros, 15);
    expect_init_err(&t, ROUSE_EFORMAT, "not a multiple of 4");

    /* A packed float_data whose length claims far more than the file holds. */
    tensor_head(&t, "liar", ENG_DT_FLOAT, d4, 1);
    enc_tag(&t, 4, 2);
    enc_varint(&t, 1ull << 40);
    expect_init_err(&t, ROUSE_EFORMAT, "runs past the end");

    tensor_head(&t, "cut", ENG_DT_INT64, d4, 1);
    enc_len(&t, 7, "\x01\x02\x03\x84", 4);
    expect_init_err(&t, ROUSE_EFORMAT, "initializer 'cut': int64_data: truncated varint");

    tensor_head(&t, NULL, ENG_DT_FLOAT, d4, 1);
    enc_len(&t, 8, "a\0b", 3);
    expect_init_err(&t, ROUSE_EFORMAT, "name at offset");

    /* A tensor that cannot be named is identified by its index. */
    tensor_head(&t, NULL, ENG_DT_FLOAT, d4, 1);
    expect_init_err(&t, ROUSE_EFORMAT, "initializer 0: no data");
}

static void bad_graphs_nodes_attrs(void **state)
{
    (void)state;
    enc m = {0}, g = {0}, n = {0}, a = {0}, t = {0};

    enc_msg(&g, 15, &t);
    enc_msg(&m, 7, &g);
    expect_model_err(&m, ROUSE_EUNSUPPORTED, "sparse_initializer is not supported");
    enc_free(&m);

    enc_str(&n, 3, "nameless");
    enc_msg(&g, 1, &n);
    enc_msg(&m, 7, &g);
    expect_model_err(&m, ROUSE_EFORMAT, "node 0 ('nameless'): op_type is missing");
    enc_free(&m);

    /* An attribute whose packed ints end mid-varint: the message names the
     * node, the attribute and the byte. */
    enc_str(&a, 1, "strides");
    enc_len(&a, 8, "\x02\x82", 2);
    expect_attr_err(&a, ROUSE_EFORMAT,
                    "node 0 ('Conv_3'): attribute 'strides': ints: truncated varint at offset");

    enc_str(&a, 1, "alpha");
    enc_int(&a, 2, 1);
    expect_attr_err(&a, ROUSE_EFORMAT, "attribute 'alpha': f (field 2)");

    enc_str(&a, 1, "ref");
    enc_str(&a, 21, "outer");
    expect_attr_err(&a, ROUSE_EUNSUPPORTED, "ref_attr_name");

    enc_int(&a, 3, 1);
    expect_attr_err(&a, ROUSE_EFORMAT, "attribute 0: name is missing");

    enc_str(&a, 1, "value");
    tensor_head(&t, "v", ENG_DT_FLOAT, NULL, 0);
    enc_msg(&a, 5, &t);
    expect_attr_err(&a, ROUSE_EFORMAT, "attribute 'value': t 'v': no data");

    enc_str(&a, 1, "two");
    enc_msg(&a, 5, &t);
    enc_msg(&a, 5, &t);
    expect_attr_err(&a, ROUSE_EFORMAT, "t (field 5) appears twice");

    enc_str(&a, 1, "ts");
    tensor_head(&t, NULL, ENG_DT_FLOAT, NULL, 0);
    enc_msg(&a, 10, &t);
    expect_attr_err(&a, ROUSE_EFORMAT, "attribute 'ts': tensors 0: no data");

    /* value_info with too many dims. */
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    value_info(&g, 11, "deep", ENG_DT_FLOAT, NULL, nine, 9);
    enc_msg(&m, 7, &g);
    expect_model_err(&m, ROUSE_EFORMAT, "input 0 ('deep'): type: tensor_type: shape: rank 9");
    enc_free(&m);

    const int64_t negdim[1] = {-1};
    value_info(&g, 12, "old", ENG_DT_FLOAT, NULL, negdim, 1);
    enc_msg(&m, 7, &g);
    onnx_model om;
    rouse_errbuf eb;
    assert_int_equal(onnx_model_decode(m.p, m.len, &om, &eb), 0);
    assert_int_equal(om.graph.outputs[0].dims[0].value, -1);
    assert_int_equal(onnx_model_default_opset(&om), -1);
    onnx_model_fini(&om);
    enc_free(&m);

    /* opset_import with a string where the version belongs. */
    enc op = {0};
    enc_str(&op, 2, "17");
    enc_msg(&m, 8, &op);
    enc_msg(&m, 7, &g);
    expect_model_err(&m, ROUSE_EFORMAT, "opset_import 0: version (field 2)");
    enc_free(&m);
}

/* ---- real models -------------------------------------------------------- */

static bool have_models(void)
{
    struct stat st;
    if (stat(ROUSE_SHARED_MODELS, &st) == 0 && S_ISDIR(st.st_mode)) return true;
    printf("skipped: ../shared/models not found\n");
    return false;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

typedef struct model_facts {
    const char *dir;
    int n_nodes, n_initializers;
    int64_t n_params; /* float values across initializers */
    const char *inputs[3], *outputs[3];
    const char *op; /* one op type and its count */
    int op_count;
} model_facts;

static const model_facts facts[] = {
    {"mlp", 3, 4, 203530, {"input"}, {"logits"}, "Gemm", 2},
    {"mnist_cnn", 12, 10, 61706, {"input"}, {"logits"}, "Relu", 4},
    {"squeezenet1_1", 83, 34, 1233288, {"input"}, {"logits"}, "Identity", 18},
    {"mobilenet_v2", 170, 106, 3487816, {"input"}, {"logits"}, "Constant", 70},
    {"resnet18", 49, 42, 11684712, {"input"}, {"logits"}, "Conv", 20},
    {"resnet18_dynbatch", 49, 42, 11684712, {"input"}, {"logits"}, "Conv", 20},
    {"bert_tiny",
     157,
     39,
     545664,
     {"input_ids", "attention_mask"},
     {"last_hidden_state", "pooler_output"},
     "MatMul",
     16},
};

static void check_real_model(const model_facts *mf)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s/model.onnx", ROUSE_SHARED_MODELS, mf->dir);
    size_t len = 0;
    uint8_t *buf = read_file(path, &len);
    if (!buf) fail_msg("cannot read %s", path);
    onnx_model m;
    rouse_errbuf eb;
    if (onnx_model_decode(buf, len, &m, &eb)) fail_msg("%s: %s", path, eb.msg);
    const onnx_graph *g = &m.graph;

    assert_int_equal(m.ir_version, 7);
    assert_string_equal(m.producer_name, "pytorch");
    assert_int_equal(onnx_model_default_opset(&m), 13);
    assert_int_equal(g->n_nodes, mf->n_nodes);
    assert_int_equal(g->n_initializers, mf->n_initializers);
    int n_in = 0, n_out = 0;
    while (n_in < 3 && mf->inputs[n_in])
        n_in++;
    while (n_out < 3 && mf->outputs[n_out])
        n_out++;
    assert_int_equal(g->n_inputs, n_in);
    assert_int_equal(g->n_outputs, n_out);
    for (int i = 0; i < n_in; i++) {
        assert_string_equal(g->inputs[i].name, mf->inputs[i]);
        assert_true(g->inputs[i].is_tensor);
    }
    for (int i = 0; i < n_out; i++)
        assert_string_equal(g->outputs[i].name, mf->outputs[i]);

    int op_count = 0;
    for (int i = 0; i < g->n_nodes; i++)
        op_count += !strcmp(g->nodes[i].op_type, mf->op);
    assert_int_equal(op_count, mf->op_count);

    int64_t n_params = 0;
    for (int i = 0; i < g->n_initializers; i++) {
        const onnx_tensor *t = &g->initializers[i];
        if (t->data_type == ENG_DT_FLOAT) n_params += t->n_elems;
        /* Weights are referenced inside the file, never copied. */
        if (t->nbytes >= 64) {
            assert_true(t->in_place);
            assert_true((const uint8_t *)t->data >= buf &&
                        (const uint8_t *)t->data + t->nbytes <= buf + len);
        }
    }
    assert_int_equal(n_params, mf->n_params);

    if (!strcmp(mf->dir, "resnet18_dynbatch")) {
        assert_int_equal(g->inputs[0].rank, 4);
        assert_string_equal(g->inputs[0].dims[0].param, "batch");
        assert_int_equal(g->inputs[0].dims[1].value, 3);
    } else if (!strcmp(mf->dir, "resnet18")) {
        assert_int_equal(g->inputs[0].rank, 4);
        assert_int_equal(g->inputs[0].dims[0].value, 1);
        assert_int_equal(g->inputs[0].elem_type, ENG_DT_FLOAT);
    }
    onnx_model_fini(&m);
    free(buf);
}

static void real_models(void **state)
{
    (void)state;
    if (!have_models()) skip();
    for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++)
        check_real_model(&facts[i]);
}

static void real_test_data(void **state)
{
    (void)state;
    if (!have_models()) skip();
    char path[1024];
    snprintf(path, sizeof(path), "%s/bert_tiny/test_data_set_0/input_0.pb", ROUSE_SHARED_MODELS);
    size_t len = 0;
    uint8_t *buf = read_file(path, &len);
    if (!buf) fail_msg("cannot read %s", path);
    rouse_arena arena;
    rouse_arena_init(&arena, 0);
    onnx_tensor t;
    rouse_errbuf eb;
    if (onnx_tensor_decode(buf, len, &arena, &t, &eb)) fail_msg("%s: %s", path, eb.msg);
    assert_string_equal(t.name, "input_ids");
    assert_int_equal(t.data_type, ENG_DT_INT64);
    assert_int_equal(t.n_dims, 2);
    assert_int_equal(t.dims[0], 1);
    assert_int_equal(t.dims[1], 32);
    assert_true(t.in_place);
    assert_int_equal(t.nbytes, 32 * 8);
    rouse_arena_fini(&arena);
    free(buf);

    snprintf(path, sizeof(path), "%s/resnet18/test_data_set_0/output_0.pb", ROUSE_SHARED_MODELS);
    buf = read_file(path, &len);
    if (!buf) fail_msg("cannot read %s", path);
    rouse_arena_init(&arena, 0);
    if (onnx_tensor_decode(buf, len, &arena, &t, &eb)) fail_msg("%s: %s", path, eb.msg);
    assert_string_equal(t.name, "logits");
    assert_int_equal(t.n_elems, 1000);
    rouse_arena_fini(&arena);
    free(buf);
}

/* Every ONNX node conformance model and its tensors decode, or are declined
 * as unsupported; none is called malformed. */
static void conformance_models(void **state)
{
    (void)state;
    if (!have_models()) skip();
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/onnx-node", ROUSE_SHARED_MODELS);
    DIR *d = opendir(dir);
    if (!d) {
        printf("skipped: %s not found\n", dir);
        skip();
    }
    int n_models = 0, n_ok = 0, n_tensors = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "test_", 5) != 0) continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s/model.onnx", dir, de->d_name);
        size_t len = 0;
        uint8_t *buf = read_file(path, &len);
        if (!buf) continue;
        onnx_model m;
        rouse_errbuf eb;
        int rc = onnx_model_decode(buf, len, &m, &eb);
        if (rc != 0 && rc != ROUSE_EUNSUPPORTED) fail_msg("%s: %s", path, eb.msg);
        n_models++;
        if (rc != 0) {
            free(buf);
            continue;
        }
        n_ok++;
        assert_true(m.graph.n_nodes >= 1);
        /* Inputs of sequence or optional type are stored as other messages. */
        for (int i = 0; i < m.graph.n_inputs && i < 8; i++) {
            if (!m.graph.inputs[i].is_tensor) continue;
            char tpath[2048];
            snprintf(tpath, sizeof(tpath), "%s/%s/test_data_set_0/input_%d.pb", dir, de->d_name, i);
            size_t tlen = 0;
            uint8_t *tbuf = read_file(tpath, &tlen);
            if (!tbuf) break;
            rouse_arena arena;
            rouse_arena_init(&arena, 0);
            onnx_tensor t;
            rc = onnx_tensor_decode(tbuf, tlen, &arena, &t, &eb);
            if (rc != 0 && rc != ROUSE_EUNSUPPORTED) fail_msg("%s: %s", tpath, eb.msg);
            n_tensors += rc == 0;
            rouse_arena_fini(&arena);
            free(tbuf);
        }
        onnx_model_fini(&m);
        free(buf);
    }
    closedir(d);
    printf("conformance: %d of %d models decoded, %d input tensors\n", n_ok, n_models, n_tensors);
    assert_true(n_models > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_every_field),
        cmocka_unit_test(standalone_tensor),
        cmocka_unit_test(every_truncation_fails_cleanly),
        cmocka_unit_test(every_byte_corruption_fails_cleanly),
        cmocka_unit_test(bad_wire_structure),
        cmocka_unit_test(bad_tensors),
        cmocka_unit_test(bad_graphs_nodes_attrs),
        cmocka_unit_test(real_models),
        cmocka_unit_test(real_test_data),
        cmocka_unit_test(conformance_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
